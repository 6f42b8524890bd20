"""The ``flagaudit`` command line: a thin layer over :mod:`flagaudit.audit`.

Every command runs inside the guard both auditors share (:class:`auditcore.cli.CommandLine`):
bad input prints one line (``error: ...``) and exits 2, a bug one line and exit 1 with its
traceback saved to a file, Ctrl-C/SIGTERM 130/143; nothing is half-written (the results folder
is atomic).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from auditcore import run_then_exit
from auditcore.cli import App, CommandLine
from auditcore.errors import InputError

app = App(styled=False, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
          rich_markup_mode=None,
          help="Audit automated flagging of social-media posts: false flags on protected speech, "
               "per test, group and language, with intervals; what that means per day and through network expansion.")


def _print_summary(results: dict, out: Path) -> None:
    """The terminal summary: per suite (never mixed), the same base rate and sentences as the report."""
    from flagaudit.report import margin, span_words, suite_name, test_name

    for w in results.get("warnings") or []:  # before any figure, as the report's banner
        print(f"warning: {w['text'] if isinstance(w, dict) else w}")
    per_suite = results.get("per_suite") or {}
    for key, s in per_suite.items():
        ff, miss = s["false_flag"], s["miss"]
        if ff.get("trials"):
            rate = (f"{ff['value']:.2%} [{ff['ci_low']:.2%}, {ff['ci_high']:.2%}]" if ff["errors"]
                    else f"at most {ff['ci_high']:.2%} (95% upper bound)")
            print(f"{suite_name(key)}: false-flag rate: {rate} ({ff['errors']:,}/{ff['trials']:,} benign cases, "
                  f"{ff['templates']:,} templates)")
        if miss.get("trials"):
            print(f"{suite_name(key)}: miss rate: {miss['value']:.2%} [{miss['ci_low']:.2%}, {miss['ci_high']:.2%}] "
                  f"({miss['errors']:,}/{miss['trials']:,} threat cases)")
        head = (s.get("volume") or {}).get("headline")
        if head:
            print(f"  per day at this suite's rate: {head['sentence']}")
    if not results["rates"]["miss"]["overall"].get("trials"):
        print("miss rate: undefined (no threat cases in these suites)")
    tests = sorted(((k, v) for k, v in results["rates"]["false_flag"]["functionality"]["groups"].items()
                    if v.get("trials")), key=lambda kv: -kv[1]["value"])[:3]
    if tests:
        print("flagged most: " + "; ".join(f"{test_name(k)} {v['value']:.1%}" for k, v in tests))
    cf = results.get("counterfactual") or {}
    for key, s in (cf.get("suites") or {}).items():
        c = s["templates_changed"]
        if c.get("count"):
            print(f"{suite_name(key)}: the flag changes with only the group, variety or place in {c['count']} of "
                  f"{c['of']} templates ({c['value']:.1%} [{c['ci_low']:.1%}, {c['ci_high']:.1%}])")
    b = results.get("bias") or {}
    for f in (b.get("findings") or [])[:2]:
        print(f"{suite_name(f['suite'])}: {f['metric'].replace('_auc', ' AUC').replace('_', '-')} for {f['group']} "
              f"{f['value']:.2f}, {f['direction']} than {f['null']:.2f} by at least {margin(f['at_least'])} "
              f"(simultaneous over {b['comparisons']:,} group metrics)")
    net = results.get("network")
    if net and net.get("per_day"):
        row = next((r for r in net["per_day"] if r["base_rate"] == net.get("headline_base_rate")), None)
        if row and row.get("distinct"):
            d = row["distinct"]["2"]
            print(f"network: at a base rate of {row['base_rate'] * 100:.3g}%, one day's false flags name "
                  f"{span_words(d['low'], d['high'])} distinct accounts within two hops "
                  f"({d['share']:.0%} of {net['n_nodes']:,} accounts"
                  + ("; close to everyone: limited by the population, not by the flagger)" if d["share"] >= 0.5 else ")"))
    print(f"report: {out / 'report.html'}")


def audit(
    suite: list[str] = typer.Option(..., "--suite", help="hatecheck, mhc, mhc-<language> or benign-traps (repeatable)."),
    out: Path = typer.Option(..., help="Results folder to write (atomically)."),
    keywords: Path | None = typer.Option(None, help="Keyword/regex flagger file (see docs)."),
    model: Path | None = typer.Option(None, help="scikit-learn pipeline saved with skops (.skops); never pickle."),
    flags: Path | None = typer.Option(None, help="Flags a system produced: CSV/Parquet with case_id, flagged[, score]."),
    endpoint: str | None = typer.Option(None, help="A flagging system behind HTTP: the ONE base URL every request "
                                                      "goes to (with --adapter)."),
    adapter: Path | None = typer.Option(None, help="Adapter file (TOML) for --endpoint: request, where the flag and "
                                                      "score are in the answer (docs/adapters/flagger-example.toml)."),
    journal: Path | None = typer.Option(None, help="--endpoint: journal (default OUT.journal.jsonl); rerun to resume."),
    concurrency: int = typer.Option(4, min=1, help="--endpoint: requests in flight at once."),
    rate: float | None = typer.Option(None, help="--endpoint: at most this many requests per second."),
    timeout: float = typer.Option(30.0, help="--endpoint: seconds before a request is retried as timed out "
                                             "(connecting, sending and the whole answer, in all)."),
    max_attempts: int = typer.Option(6, min=1, help="--endpoint: attempts per request (timeouts, 429, 5xx, bad JSON)."),
    ca_bundle: Path | None = typer.Option(None, help="--endpoint: CA certificates to verify its TLS certificate."),
    allow_plain_http: bool = typer.Option(False, "--allow-plain-http",
                                          help="--endpoint: send the adapter's credentials over plain http:// to a "
                                               "host that is not this machine (refused by default: use https)."),
    data: Path | None = typer.Option(None, help="Folder holding hatecheck/ (for hatecheck and mhc suites)."),
    posts_per_day: float = typer.Option(1_000_000, help="Posts the system reads per day."),
    base_rate: list[float] | None = typer.Option(None, help="Share of genuinely threatening posts, in (0, 1) "
                                                               "(repeatable; default 1e-5, 1e-4, 1e-3, 1e-2)."),
    graph: Path | None = typer.Option(None, help="Your own social graph: an edge list, two account ids a line."),
    degrees: Path | None = typer.Option(None, help="Or: a degree sequence (one whole number a line), wired as a "
                                                       "configuration model with communities."),
    mean_degree: float | None = typer.Option(None, help="Or: a model graph with this mean degree (--graph-model)."),
    graph_model: str = typer.Option("communities", help="communities: power-law degrees (hubs) and communities; "
                                                        "gnp: Erdős–Rényi (no hubs, no communities)."),
    degree_exponent: float = typer.Option(2.5, help="communities: exponent of the power-law degrees (above 2)."),
    community_size: int = typer.Option(1000, min=1, help="communities: accounts per community."),
    mixing: float = typer.Option(0.2, help="communities: share of each account's ties outside its community."),
    posts_per_account: float = typer.Option(2.0, help="Posts per account and day: the model graph has "
                                                      "posts-per-day / this accounts (unless --graph-nodes)."),
    graph_nodes: int | None = typer.Option(None, help="Accounts in the model graph (default: implied by the volume)."),
    n_boot: int = typer.Option(2000, help="Template-bootstrap resamples."),
    seed: int = typer.Option(0, help="Seed of the bootstrap, random graph and sampled accounts."),
    min_trials: int = typer.Option(20, min=1, help="Fewest cases for a group to be ranked in differentials."),
    system_name: str | None = typer.Option(None, help="The system under test's name (recorded in the report)."),
    system_version: str | None = typer.Option(None, help="Its version (recorded in the report)."),
    overwrite: bool = typer.Option(False, help="Replace a results folder flagaudit wrote earlier."),
) -> None:
    """Run a system on test suites and write results.json, cases.parquet and report.html."""
    options = dict(locals())
    fa, out_ = run_audit_command(options, _command())
    _print_summary(fa.results, out_)


def _command() -> list[str] | None:
    """The command being run as a person types it (``flagaudit demo --out X``), also when started as
    ``python -m flagaudit`` (whose command path click reports as ``python -m flagaudit``)."""
    from auditcore.provenance import command_from_context

    argv = command_from_context("flagaudit")
    if argv and argv[1:3] == ["-m", "flagaudit"]:
        argv = [argv[0], *argv[3:]]
    return argv


def _suite_inputs(prov) -> list[tuple[str, object]]:
    from importlib import resources

    pairs = []
    for p in prov:
        if p.files:
            pairs += [(f"suite {p.name.split(' (')[0]}", f) for f in p.files]
        else:  # shipped with the package: its folder
            pairs.append((f"suite {p.name}", str(resources.files("flagaudit").joinpath("suites", "benign_traps"))))
    return pairs


def run_audit_command(options: dict, argv: list[str] | None, *, flags_from=None, recorded_results: dict | None = None):
    """The body of ``flagaudit audit`` from its options (every option by name; ``flagaudit verify``
    re-runs a recorded audit through here). ``flags_from``: a per-case table whose flags and scores
    replace the endpoint's (verify of an ``--endpoint`` audit re-computes from the recorded answers;
    ``recorded_results``: that folder's results, whose record of the HTTP collection is kept)."""
    import os

    from auditcore.provenance import collect, inputs_from
    from flagaudit import volume as vol
    from flagaudit.audit import run_audit, write_results
    from flagaudit.suites import load_suites
    from flagaudit.systems import Flags, KeywordFlagger, SkopsModel, read_flags

    o = dict(options)
    p = {k: (Path(o[k]) if o.get(k) is not None else None)
         for k in ("out", "keywords", "model", "flags", "adapter", "journal", "ca_bundle", "data", "graph", "degrees")}
    out, keywords, model, flags, adapter = p["out"], p["keywords"], p["model"], p["flags"], p["adapter"]
    endpoint = o.get("endpoint")
    given = [x for x in (keywords, model, flags, endpoint) if x is not None]
    if len(given) != 1:
        raise InputError("give exactly one system under test: --keywords FILE, --model FILE, --flags FILE or "
                         "--endpoint URL --adapter FILE")
    if (endpoint is None) != (adapter is None):
        raise InputError("--endpoint URL and --adapter FILE go together")
    if sum(x is not None for x in (p["graph"], p["degrees"], o.get("mean_degree"))) > 1:
        raise InputError("give one of --graph FILE, --degrees FILE or --mean-degree K")
    rates = vol.check_base_rates(o.get("base_rate") or vol.DEFAULT_BASE_RATES)
    vol.check_posts_per_day(o["posts_per_day"])
    if o["n_boot"] < 1:
        raise InputError(f"--n-boot must be at least 1, got {o['n_boot']}")
    if o.get("graph_model", "communities") not in ("communities", "gnp"):
        raise InputError(f"--graph-model is communities or gnp, got {o['graph_model']!r}")
    if not (0 <= o.get("mixing", 0.2) <= 1):
        raise InputError(f"--mixing must be within [0, 1], got {o['mixing']:g}")
    # check the system file before the suites are read
    system = KeywordFlagger.from_file(keywords) if keywords else SkopsModel.from_file(model) if model else None
    http = None
    if endpoint is not None:
        from flagaudit.endpoint import load_flag_adapter
        system = load_flag_adapter(adapter)
    cases, prov = load_suites(o["suite"], p["data"])
    inputs = inputs_from([("keyword list", keywords), ("model", model), ("flags", flags), ("adapter", adapter),
                          ("graph", p["graph"]), ("degree sequence", p["degrees"]), *_suite_inputs(prov)])
    recorded = {k: v for k, v in o.items()}
    provenance = collect(argv, recorded, inputs, system={"name": o.get("system_name"),
                                                         "version": o.get("system_version")},
                         model={"file": str(model)} if model else None)
    provenance["working_directory"] = os.getcwd()
    if flags_from is not None:
        ids = flags_from["case_id"].astype(str).tolist()
        if ids != cases["case_id"].astype(str).tolist():
            raise InputError("the recorded cases.parquet does not hold the suites' cases in order")
        sc = flags_from["score"].to_numpy(dtype=float)
        system_rec = (recorded_results or {}).get("system") or {}
        result = Flags(flags_from["flagged"].to_numpy(dtype=bool), None if np.isnan(sc).all() else sc,
                       system_rec.get("threshold"), system_rec.get("description", "recorded answers"))
        http = (recorded_results or {}).get("http")  # how the answers were collected: part of the record
        kind = "HTTP endpoint"
    elif flags is not None:
        result, kind = read_flags(flags, cases["case_id"]), "imported flags"
    elif endpoint is not None:
        from flagaudit.endpoint import query_cli
        result, http = query_cli(system, endpoint, cases, out, journal=p["journal"], concurrency=o["concurrency"],
                                 rate=o["rate"], timeout=o["timeout"], max_attempts=o["max_attempts"],
                                 ca_bundle=p["ca_bundle"], overwrite=o["overwrite"],
                                 allow_plain_http=o["allow_plain_http"])
        kind = "HTTP endpoint"
    else:
        result = system.run(cases["text"].tolist())
        kind = "keyword flagger" if keywords else "scikit-learn model"
    fa = run_audit(cases, result, prov, system=kind, posts_per_day=o["posts_per_day"], base_rates=rates,
                   graph_file=p["graph"], mean_degree=o.get("mean_degree"), n_boot=o["n_boot"], seed=o["seed"],
                   min_trials=o["min_trials"], graph_nodes=o.get("graph_nodes"), degrees_file=p["degrees"],
                   graph_model=o.get("graph_model", "communities"), degree_exponent=o.get("degree_exponent", 2.5),
                   community_size=o.get("community_size", 1000), mixing=o.get("mixing", 0.2),
                   posts_per_account=o.get("posts_per_account", 2.0), provenance_block=provenance)
    extra = {}
    if http is not None:
        fa.results["http"] = http
        if flags_from is None:
            extra["requests.jsonl"] = Path(http["request_log"]).read_bytes()
    write_results(fa, out, overwrite=o["overwrite"], extra=extra)
    return fa, out


def demo(out: Path = typer.Option(Path("flagaudit-demo"), help="Results folder to write."),
         mean_degree: float = typer.Option(20, help="Mean degree of the demo's graph (hubs and communities)."),
         posts_per_day: float = typer.Option(100_000, help="Posts a day (the graph has half as many accounts)."),
         overwrite: bool = typer.Option(True, help="Replace an existing demo folder flagaudit wrote.")) -> None:
    """Offline: the bundled keyword list on the shipped benign-traps suite, with a model social graph."""
    fa = run_demo_command({"out": out, "mean_degree": mean_degree, "posts_per_day": posts_per_day,
                           "overwrite": overwrite}, _command())
    _print_summary(fa.results, out)


def run_demo_command(options: dict, argv: list[str] | None):
    """The body of ``flagaudit demo`` (``flagaudit verify`` re-runs it)."""
    import os
    from importlib import resources

    from auditcore.provenance import collect, inputs_from
    from flagaudit.audit import run_audit, write_results
    from flagaudit.suites import load_suites
    from flagaudit.systems import KeywordFlagger

    kw = resources.files("flagaudit").joinpath("data", "demo_keywords.txt")
    flagger = KeywordFlagger.from_lines(kw.read_text(encoding="utf-8").splitlines(), source="bundled demo_keywords.txt")
    cases, prov = load_suites(["benign-traps"])
    provenance = collect(argv, options, inputs_from([("keyword list", str(kw)), *_suite_inputs(prov)]),
                         system={"name": "bundled demo keyword list", "version": None})
    provenance["working_directory"] = os.getcwd()
    fa = run_audit(cases, flagger.run(cases["text"].tolist()), prov, system="keyword flagger (bundled demo list)",
                   mean_degree=options["mean_degree"], posts_per_day=options.get("posts_per_day", 100_000),
                   provenance_block=provenance)
    write_results(fa, Path(options["out"]), overwrite=options["overwrite"])
    return fa


def verify(results_dir: Path = typer.Argument(..., help="A results folder written by flagaudit audit or demo.")) -> None:
    """Re-check a results folder: input hashes, then re-run the recorded audit and compare every figure.

    Exit 0: every input as recorded and every figure identical; 1: something differs (listed, with
    what differs between the two runs); 2: bad input (not a results folder, no provenance)."""
    from auditcore.verify import verify_folder

    found = verify_folder(results_dir, lambda prov, tmp: _rerun(prov, tmp, Path(results_dir).resolve()),
                          compare_files=_compare_cases, program="flagaudit")
    for line in found.lines():
        print(line)
    if not found.identical:
        raise typer.Exit(1)


def _compare_cases(folder: Path, tmp: Path) -> list[str]:
    """cases.parquet (every case's flag and score) recorded against re-run, cell by cell."""
    import pandas as pd

    old, new = Path(folder) / "cases.parquet", tmp / "results" / "cases.parquet"
    if not old.exists() or not new.exists():
        return [] if old.exists() == new.exists() else ["cases.parquet: present in only one of the two folders"]
    try:
        a, b = pd.read_parquet(old), pd.read_parquet(new)
    except (OSError, ValueError) as exc:
        return [f"cases.parquet: cannot be read ({exc.__class__.__name__})"]
    if list(a.columns) != list(b.columns) or a.shape != b.shape:
        return [f"cases.parquet: {a.shape[0]:,} rows x {a.shape[1]} columns -> {b.shape[0]:,} x {b.shape[1]}"]
    cols = [c for c in a.columns if not a[c].equals(b[c])]
    return [f"cases.parquet: values differ in column(s) {', '.join(map(str, cols))}"] if cols else []


def _rerun(provenance: dict, tmp: Path, folder: Path) -> dict:
    import json
    import os

    command = provenance.get("command") or []
    name = command[1] if len(command) > 1 else None
    if name not in ("audit", "demo"):
        what = " ".join(command[:2]) if command else "a library call (no command recorded)"
        raise InputError(f"verify re-runs `flagaudit audit` or `flagaudit demo`; this folder was written by {what}")
    options = dict(provenance.get("options") or {})
    cwd = provenance.get("working_directory")
    here = Path(cwd) if cwd and Path(cwd).is_dir() else None
    if here is None:  # the recorded absolute paths
        by_path = {str(r["path"]): r["resolved"] for r in provenance.get("inputs") or [] if r.get("resolved")}
        options = {k: by_path.get(v, v) if isinstance(v, str) else v for k, v in options.items()}
    options["out"] = tmp / "results"
    options["overwrite"] = False
    before = os.getcwd()
    if here is not None:
        os.chdir(here)
    try:
        if name == "demo":
            run_demo_command(options, list(command))
        else:
            flags_from = None
            if options.get("endpoint"):  # never re-query a service: re-compute from the recorded answers
                import pandas as pd
                flags_from = pd.read_parquet(folder.resolve() / "cases.parquet")
                options["journal"] = None
                recorded = json.loads((folder.resolve() / "results.json").read_text(encoding="utf-8"))
            run_audit_command(options, list(command), flags_from=flags_from,
                              recorded_results=recorded if flags_from is not None else None)
    finally:
        os.chdir(before)
    return json.loads((options["out"] / "results.json").read_text(encoding="utf-8"))


def cases(suite: list[str] = typer.Option(..., "--suite", help="Suite name (repeatable)."),
          out: Path = typer.Option(..., help="CSV to write: case_id, language, text (feed it to your system)."),
          data: Path | None = typer.Option(None, help="Folder holding hatecheck/.")) -> None:
    """Export the suites' case ids and texts, for a system whose flags you will import with --flags."""
    from flagaudit.suites import load_suites

    df, _ = load_suites(suite, data)
    if out.exists():
        raise InputError("file exists; choose a new name", out)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        df[["case_id", "language", "text"]].to_csv(tmp, index=False)
        tmp.replace(out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write here ({exc.strerror})", out) from None
    print(f"{len(df):,} cases written to {out}")


guard = CommandLine("flagaudit", memory_hint="use fewer suites or a smaller --graph",
                    stop_note="nothing was written (no results folder, no temporary files; an --endpoint "
                              "journal is kept so that the same command resumes)", styled=False)
guard.register(app, {"audit": audit, "demo": demo, "cases": cases, "verify": verify})


def main() -> None:
    """Console entry point (``flagaudit``): the guarded app, ended through :func:`run_then_exit`."""
    guard.main(app, run=run_then_exit)


if __name__ == "__main__":
    main()

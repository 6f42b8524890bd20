"""The ``flagaudit`` command line: a thin layer over :mod:`flagaudit.audit`.

Every command runs inside the guard both auditors share (:class:`auditcore.cli.CommandLine`):
bad input prints one line (``error: ...``) and exits 2, a bug one line and exit 1 with its
traceback saved to a file, Ctrl-C/SIGTERM 130/143; nothing is half-written (the results folder
is atomic).
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from auditcore import run_then_exit
from auditcore.cli import App, CommandLine
from auditcore.errors import InputError

app = App(styled=False, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
          rich_markup_mode=None,
          help="Audit automated flagging of social-media posts: false flags on protected speech, "
               "per test, group and language, with intervals; what that means per day and through network expansion.")


def _print_summary(results: dict, out: Path) -> None:
    ff = results["rates"]["false_flag"]["overall"]
    miss = results["rates"]["miss"]["overall"]
    if ff.get("trials"):
        print(f"false-flag rate: {ff['value']:.4g} [{ff['ci_low']:.4g}, {ff['ci_high']:.4g}] "
              f"({ff['errors']}/{ff['trials']} benign cases, {ff['templates']} templates)")
    if miss.get("trials"):
        print(f"miss rate: {miss['value']:.4g} [{miss['ci_low']:.4g}, {miss['ci_high']:.4g}] "
              f"({miss['errors']}/{miss['trials']} threat cases)")
    else:
        print("miss rate: undefined (no threat cases in these suites)")
    for s in results["volume"].get("sentences", [])[:1]:
        print(s)
    print(f"report: {out / 'report.html'}")


def audit(
    suite: List[str] = typer.Option(..., "--suite", help="hatecheck, mhc, mhc-<language> or benign-traps (repeatable)."),
    out: Path = typer.Option(..., help="Results folder to write (atomically)."),
    keywords: Optional[Path] = typer.Option(None, help="Keyword/regex flagger file (see docs)."),
    model: Optional[Path] = typer.Option(None, help="scikit-learn pipeline saved with skops (.skops); never pickle."),
    flags: Optional[Path] = typer.Option(None, help="Flags a system produced: CSV/Parquet with case_id, flagged[, score]."),
    endpoint: Optional[str] = typer.Option(None, help="A flagging system behind HTTP: the ONE base URL every request "
                                                      "goes to (with --adapter)."),
    adapter: Optional[Path] = typer.Option(None, help="Adapter file (TOML) for --endpoint: request, where the flag and "
                                                      "score are in the answer (docs/adapters/flagger-example.toml)."),
    journal: Optional[Path] = typer.Option(None, help="--endpoint: journal (default OUT.journal.jsonl); rerun to resume."),
    concurrency: int = typer.Option(4, min=1, help="--endpoint: requests in flight at once."),
    rate: Optional[float] = typer.Option(None, help="--endpoint: at most this many requests per second."),
    timeout: float = typer.Option(30.0, help="--endpoint: seconds before a request is retried as timed out "
                                             "(connecting, sending and the whole answer, in all)."),
    max_attempts: int = typer.Option(6, min=1, help="--endpoint: attempts per request (timeouts, 429, 5xx, bad JSON)."),
    ca_bundle: Optional[Path] = typer.Option(None, help="--endpoint: CA certificates to verify its TLS certificate."),
    allow_plain_http: bool = typer.Option(False, "--allow-plain-http",
                                          help="--endpoint: send the adapter's credentials over plain http:// to a "
                                               "host that is not this machine (refused by default: use https)."),
    data: Optional[Path] = typer.Option(None, help="Folder holding hatecheck/ (for hatecheck and mhc suites)."),
    posts_per_day: float = typer.Option(1_000_000, help="Posts the system reads per day."),
    base_rate: Optional[List[float]] = typer.Option(None, help="Share of genuinely threatening posts, in (0, 1) "
                                                               "(repeatable; default 1e-5, 1e-4, 1e-3, 1e-2)."),
    graph: Optional[Path] = typer.Option(None, help="Your own social graph: an edge list, two account ids a line."),
    mean_degree: Optional[float] = typer.Option(None, help="Or: a random (Erdős–Rényi) graph with this mean degree."),
    graph_nodes: int = typer.Option(20_000, help="Accounts in the random graph."),
    n_boot: int = typer.Option(2000, help="Template-bootstrap resamples."),
    seed: int = typer.Option(0, help="Seed of the bootstrap, random graph and sampled accounts."),
    min_trials: int = typer.Option(20, min=1, help="Fewest cases for a group to be ranked in differentials."),
    overwrite: bool = typer.Option(False, help="Replace a results folder flagaudit wrote earlier."),
) -> None:
    """Run a system on test suites and write results.json, cases.parquet and report.html."""
    from flagaudit import volume as vol
    from flagaudit.audit import run_audit, write_results
    from flagaudit.suites import load_suites
    from flagaudit.systems import KeywordFlagger, SkopsModel, read_flags

    given = [x for x in (keywords, model, flags, endpoint) if x is not None]
    if len(given) != 1:
        raise InputError("give exactly one system under test: --keywords FILE, --model FILE, --flags FILE or "
                         "--endpoint URL --adapter FILE")
    if (endpoint is None) != (adapter is None):
        raise InputError("--endpoint URL and --adapter FILE go together")
    if graph is not None and mean_degree is not None:
        raise InputError("give --graph FILE or --mean-degree K, not both")
    rates = vol.check_base_rates(base_rate or vol.DEFAULT_BASE_RATES)
    vol.check_posts_per_day(posts_per_day)
    if n_boot < 1:
        raise InputError(f"--n-boot must be at least 1, got {n_boot}")
    # check the system file before the suites are read
    system = KeywordFlagger.from_file(keywords) if keywords else SkopsModel.from_file(model) if model else None
    http = None
    if endpoint is not None:
        from flagaudit.endpoint import load_flag_adapter
        system = load_flag_adapter(adapter)
    cases, prov = load_suites(suite, data)
    if flags is not None:
        result, kind = read_flags(flags, cases["case_id"]), "imported flags"
    elif endpoint is not None:
        from flagaudit.endpoint import query_cli
        result, http = query_cli(system, endpoint, cases, out, journal=journal, concurrency=concurrency, rate=rate,
                                 timeout=timeout, max_attempts=max_attempts, ca_bundle=ca_bundle, overwrite=overwrite,
                                 allow_plain_http=allow_plain_http)
        kind = "HTTP endpoint"
    else:
        result = system.run(cases["text"].tolist())
        kind = "keyword flagger" if keywords else "scikit-learn model"
    fa = run_audit(cases, result, prov, system=kind, posts_per_day=posts_per_day, base_rates=rates,
                   graph_file=graph, mean_degree=mean_degree, n_boot=n_boot, seed=seed, min_trials=min_trials,
                   graph_nodes=graph_nodes)
    extra = {}
    if http is not None:
        fa.results["http"] = http
        extra["requests.jsonl"] = Path(http["request_log"]).read_bytes()
    write_results(fa, out, overwrite=overwrite, extra=extra)
    _print_summary(fa.results, out)


def demo(out: Path = typer.Option(Path("flagaudit-demo"), help="Results folder to write."),
         mean_degree: float = typer.Option(20, help="Mean degree of the demo's random graph."),
         overwrite: bool = typer.Option(True, help="Replace an existing demo folder flagaudit wrote.")) -> None:
    """Offline: the bundled keyword list on the shipped benign-traps suite, with a random graph."""
    from importlib import resources

    from flagaudit.audit import run_audit, write_results
    from flagaudit.suites import load_suites
    from flagaudit.systems import KeywordFlagger

    kw = resources.files("flagaudit").joinpath("data", "demo_keywords.txt")
    flagger = KeywordFlagger.from_lines(kw.read_text(encoding="utf-8").splitlines(), source="bundled demo_keywords.txt")
    cases, prov = load_suites(["benign-traps"])
    fa = run_audit(cases, flagger.run(cases["text"].tolist()), prov, system="keyword flagger (bundled demo list)",
                   mean_degree=mean_degree)
    write_results(fa, out, overwrite=overwrite)
    _print_summary(fa.results, out)


def cases(suite: List[str] = typer.Option(..., "--suite", help="Suite name (repeatable)."),
          out: Path = typer.Option(..., help="CSV to write: case_id, language, text (feed it to your system)."),
          data: Optional[Path] = typer.Option(None, help="Folder holding hatecheck/.")) -> None:
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
guard.register(app, {"audit": audit, "demo": demo, "cases": cases})


def main() -> None:
    """Console entry point (``flagaudit``): the guarded app, ended through :func:`run_then_exit`."""
    guard.main(app, run=run_then_exit)


if __name__ == "__main__":
    main()

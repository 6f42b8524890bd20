"""``faceaudit demo``, ``audit``, ``explain`` and ``report``: the template audit's commands
(registered, guarded, on the app in :mod:`faceaudit.cli`).

Progress (one line per phase, with counts, rate and time left) goes to stderr and only when
stderr is a terminal; results go to stdout.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import List, Optional

import typer

from auditcore.cli import console
from auditcore.errors import InputError
from faceaudit.cli.progress import Phases


def count(minimum: int | None = None):
    """A parser for an option that takes a count: ``20``, ``1e6``, ``1,000,000`` or ``1_000_000``
    (a whole number, at least ``minimum``); anything else is a one-line usage error."""
    def parse(text) -> int:
        if isinstance(text, int):
            value = text
        else:
            cleaned = str(text).strip().replace(",", "").replace("_", "")
            try:
                number = float(cleaned)
            except ValueError:
                raise typer.BadParameter(f"expected a whole number such as 20, 1e6 or 1,000,000, got {text!r}") from None
            if not math.isfinite(number) or number != int(number):
                raise typer.BadParameter(f"expected a whole number such as 20, 1e6 or 1,000,000, got {text!r}")
            value = int(cleaned) if cleaned.lstrip("+-").isdigit() else int(number)  # exact for plain digits
        if minimum is not None and value < minimum:
            raise typer.BadParameter(f"{value} is not in the range x>={minimum}")
        return value
    return parse


def _score_text(value, score: str) -> str:
    """A threshold in the user's units: a distance for neg_euclidean."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if score == "neg_euclidean":
        return f"distance <= {-value:.4g}"
    return f"{value:.4g}"


def _ci(rate: dict) -> list:
    return rate.get("ci") or [rate.get("ci_low"), rate.get("ci_high")]


def _pct(rate: dict) -> str:
    """``10.00% (400/4,000) [9.09-10.97]``: value, counts, 95% interval in percent."""
    if rate is None or rate.get("value") is None:
        return "undefined (no trials)"
    lo, hi = _ci(rate)
    text = f"{rate['value']:.2%} ({rate['errors']:,}/{rate['trials']:,})"
    if lo is not None and hi is not None:
        text += f" [{lo * 100:.2f}-{hi * 100:.2f}]"
    return text


def _print_summary(results: dict, out: Path) -> None:
    """The report's summary as a compact table on stdout, then where the report is."""
    from rich.console import Console
    from rich.table import Table
    stdout = Console(highlight=False, soft_wrap=False)
    score = results.get("input", {}).get("score", "cosine")
    stdout.print(_score_line(results), soft_wrap=True)
    ident = results["identification"]
    table = Table(title="faceaudit summary: rate (errors/trials) [95% interval, %]", title_justify="left",
                  show_lines=False, box=None, header_style="bold", pad_edge=False)
    table.add_column("figure", overflow="fold")
    table.add_column("threshold", overflow="fold")
    table.add_column("value", overflow="fold")
    for op in ident["operating_points"]:
        if op.get("threshold") is None:
            table.add_row(f"operating point FPIR <= {op['target_fpir']:g}", "-", "not reachable with these searches")
            continue
        table.add_row(f"FPIR (target {op['target_fpir']:g})", _score_text(op["threshold"], score), _pct(op["fpir"]))
        table.add_row("  FNIR rank 1 there", "", _pct(op["fnir"]["1"]))
    r1 = ident.get("rank1_identification_rate") or {}
    if r1.get("rate") is not None:
        miss = r1["misses"]
        lo, hi = _ci(miss)
        hits = miss["trials"] - miss["errors"]
        ci_text = f" [{(1 - hi) * 100:.2f}-{(1 - lo) * 100:.2f}]" if lo is not None else ""
        table.add_row("rank-1 hit rate, no threshold", "none", f"{r1['rate']:.2%} ({hits:,}/{miss['trials']:,}){ci_text}")
    fte = results.get("failure_to_enrol") or {}
    if fte:
        table.add_row("failure to enrol", "", f"{fte.get('rate', 0):.2%} ({fte.get('failed', 0):,}/{fte.get('attempts', 0):,})"
                      + ("; counted as misses" if fte.get("counted_as_misses") and fte.get("failed") else ""))
    for line in _section_lines(results):
        table.add_row(*line)
    stdout.print(table)
    if "synthetic" in results:
        checks = results["synthetic"]["checks"]
        inside = sum(c["inside_ci"] for c in checks)
        stdout.print(f"synthetic self-check: true rate inside the 95% CI for {inside} of {len(checks)} checks",
                     soft_wrap=True)
    for warning in results.get("warnings") or []:
        stdout.print(f"warning: {warning.get('text')}", soft_wrap=True)
    stdout.print(f"report: {out / 'report.html'}", soft_wrap=True)  # a path is never wrapped


def _score_line(results: dict) -> str:
    """The summary's first line: the score and its units, why it was used, the system audited."""
    inp = results.get("input") or {}
    score = inp.get("score", "cosine")
    units = ("neg_euclidean, thresholds shown as distances: a match at or below the distance"
             if score == "neg_euclidean" else f"{score}: a match at or above the threshold")
    prov = results.get("provenance") or {}
    why = (prov.get("options") or {}).get("score_reason")
    system = prov.get("system") or {}
    named = " ".join(str(v) for v in (system.get("name"), system.get("version")) if v)
    return (f"score: {units}" + (f" ({why})" if why else "") + (f"; system: {named}" if named else ""))


def _people(n: float) -> str:
    """A gallery size in words: ``1 million``, ``10 billion``, ``835``."""
    for size, word in ((1e12, "trillion"), (1e9, "billion"), (1e6, "million")):
        if n >= size and (n / size) == int(n / size):
            return f"{int(n / size):,} {word}"
    return f"{n:,.0f}"


def _section_lines(results: dict) -> list:
    """Rows for the demographics and scale findings, as the report's summary states them."""
    rows = []
    score = results.get("input", {}).get("score", "")
    ops = [op for op in results["identification"]["operating_points"] if op.get("threshold") is not None]
    op = min(ops, key=lambda o: abs(math.log(o["target_fpir"] / 0.01))) if ops else None
    demo = results.get("demographics")
    if demo:
        heads = [a["headline"] for a in demo.get("analyses", []) if a.get("headline")]
        best = max(heads, key=lambda h: h["strength"], default=None)
        rows.append(("largest group differential", _score_text(demo.get("threshold"), score),
                     best["sentence"] if best else "none clear from these data (see the report)"))
    seen = set()
    from faceaudit.report.bands import fpir_statement, lookalike_statement  # the report's own wording
    if op is not None:
        for r in results.get("lookalikes") or []:
            if r["threshold"] == op["threshold"] and ("look", r["gallery_size"]) not in seen:
                seen.add(("look", r["gallery_size"]))
                lo, hi = r["expected_ci"]
                rows.append((f"look-alikes per search, {_people(r['gallery_size'])}", _score_text(op["threshold"], score),
                             f"non-mates at or above it: {lookalike_statement(r['expected'], lo, hi, r.get('fmr_count'))['text']}"))
    scale = results.get("scale")
    if scale and op is not None:
        for r in scale.get("extrapolation", []):
            if r.get("threshold") == op["threshold"] and r.get("gallery_size") == 1e6 and "fpir" not in seen:
                seen.add("fpir")
                st = fpir_statement(r)
                rows.append(("FPIR, 1 million (extrapolated)", _score_text(op["threshold"], score),
                             "these data cannot say (see the report)" if st["kind"] == "cannot_say" else
                             f"{st['text']}; assumptions in the report"))
    return rows


def demo(out: Path = typer.Option(Path("faceaudit-demo"), help="Results folder to write."),
         seed: int = typer.Option(0, help="Seed of the synthetic population."),
         overwrite: bool = typer.Option(True, help="Replace the folder if an earlier faceaudit run wrote it "
                                                   "(a folder faceaudit did not write is never replaced).")) -> None:
    """Audit a bundled synthetic population with known error rates (a self-check), write a report."""
    options = dict(locals())  # every option's value, defaults included (provenance)
    from auditcore.provenance import command_from_context
    result = run_demo_command(options, command_from_context("faceaudit"))
    _print_summary(result.results, out)


def run_demo_command(options: dict, argv: list[str] | None):
    """The body of ``faceaudit demo`` from its options (``faceaudit verify`` re-runs it)."""
    from auditcore.outdir import check_target
    from auditcore.provenance import collect
    from faceaudit.analyses.scale import add_scale
    from faceaudit.audit import write_results
    from faceaudit.demo import run_demo
    out, seed, overwrite = Path(options["out"]), options["seed"], options["overwrite"]
    check_target(out, overwrite=overwrite)
    with Phases(console) as phases:
        with phases.phase("searching", unit="probes") as progress:
            audit = run_demo(seed=seed, progress=progress, scale=False)
        audit.results["provenance"] = collect(  # a synthetic population: no input files
            argv, {**options, "score_reason": "the demo's synthetic templates are compared by cosine"}, [])
        with phases.phase("scale", unit="passes") as progress:
            add_scale(audit, n_seeds=3, seed=seed, progress=progress)
        with phases.phase("writing results"):
            write_results(audit, out, overwrite=overwrite)
    return audit


def audit(
    templates: Optional[Path] = typer.Option(None, help="Templates: .npy (n x d) or Parquet."),
    manifest: Optional[Path] = typer.Option(None, help="Manifest: CSV or Parquet with template_id, subject_id."),
    evalset: Optional[Path] = typer.Option(None, help="A folder from `faceaudit embed` (templates.npy, manifest.csv, failures.csv)."),
    out: Path = typer.Option(..., help="Results folder to write (atomically)."),
    protocol: Optional[Path] = typer.Option(None, help="Explicit protocol file (template_id, role=gallery|probe)."),
    enrol_fraction: float = typer.Option(0.5, help="Generated protocol: share of eligible subjects enrolled."),
    gallery_per_subject: int = typer.Option(1, parser=count(1), help="Generated protocol: gallery templates per enrolled subject."),
    seed: int = typer.Option(0, help="Generated protocol: seed."),
    score: Optional[str] = typer.Option(None, help="cosine or neg_euclidean (dlib, whose threshold is a distance). "
                                                   "Default: the score recorded by `faceaudit embed` in --evalset "
                                                   "(the model's makers' own), else cosine; the summary says which."),
    top_k: int = typer.Option(20, parser=count(1), help="Candidate list length."),
    fpir: List[float] = typer.Option([0.1, 0.01, 0.001], help="Target FPIR operating points (repeatable)."),
    threshold: List[float] = typer.Option([], help="Also report at these thresholds (repeatable)."),
    failures: Optional[Path] = typer.Option(None, help="failures.csv from `faceaudit embed` (failure to enrol)."),
    fta_as_miss: bool = typer.Option(True, help="Count failed searches as misses (ISO/IEC 19795-1 generalised rates)."),
    group_by: List[str] = typer.Option([], help="Demographics: manifest column(s) to group by; 'a*b' for a combination."),
    min_group_size: int = typer.Option(30, parser=count(1), help="Demographics: groups with fewer searches than this are shown greyed."),
    per_person: bool = typer.Option(False, help="Demographics: count each person once (a group's rate is the mean of its "
                                                "people's rates) instead of each search or comparison."),
    caveat: List[str] = typer.Option([], help="Demographics: COLUMN=TEXT, where a column's labels came from, printed next to "
                                               "every figure from that column (also read from manifest columns caveat_COLUMN)."),
    scale: bool = typer.Option(False, help="Also measure and extrapolate FPIR against gallery size."),
    distractors: Optional[Path] = typer.Option(None, help="Scale: extra gallery templates (.npy, n x d) of people never searched for."),
    claimed_gallery_size: Optional[float] = typer.Option(None, help="A gallery size someone claims to search (e.g. 1e10): expected look-alikes per search there, in the summary."),
    system_name: Optional[str] = typer.Option(None, help="The system under test's name, recorded in results.json (provenance.system)."),
    system_version: Optional[str] = typer.Option(None, help="The system under test's version, recorded in results.json (provenance.system)."),
    memory_mb: int = typer.Option(256, parser=count(1), help="Memory for everything the engine holds, MiB (with --workers/--scheduler: per worker)."),
    overwrite: bool = typer.Option(False, help="Replace the results folder if an earlier faceaudit run wrote it "
                                               "(a folder faceaudit did not write is never replaced)."),
    workers: Optional[int] = typer.Option(None, parser=count(), help="Search on a local Dask cluster of N worker processes (pip install 'faceaudit[dask]'); same results."),
    scheduler: Optional[str] = typer.Option(None, help="Search on an existing Dask cluster (scheduler address); its workers must reach the templates' path."),
) -> None:
    """Audit templates against a protocol and write results.json, Parquet tables and report.html."""
    options = dict(locals())  # every option's value, defaults included (provenance)
    from auditcore.provenance import command_from_context
    result = run_audit_command(options, command_from_context("faceaudit"))
    _print_summary(result.results, out)


def run_audit_command(options: dict, argv: list[str] | None, *, phases_console=None):
    """The body of ``faceaudit audit`` from its options (every option by name, as the command
    receives them; ``faceaudit verify`` re-runs a recorded audit through here): check the inputs,
    run the audit, write the folder; return the :class:`~faceaudit.analyses.base.Audit`. Prints
    nothing on stdout (the command prints the summary, whose first line names the score and why);
    progress on stderr."""
    from auditcore.outdir import check_target
    from auditcore.provenance import collect, inputs_from
    from auditcore.validation import finite
    from faceaudit.audit import model_record, run_audit, write_results
    from faceaudit.data.evalset import load_evaluation_set, read_embed_info, resolve_evalset_paths, score_for
    from faceaudit.data.protocol import generate_protocol, load_protocol
    o = dict(options)
    evalset, protocol, out = o["evalset"], o["protocol"], Path(o["out"])
    threshold, fpir, group_by = list(o["threshold"]), list(o["fpir"]), list(o["group_by"])
    finite("--threshold", threshold)
    finite("--fpir", fpir)
    finite("--enrol-fraction", [o["enrol_fraction"]])
    templates, manifest, failures = resolve_evalset_paths(evalset, o["templates"], o["manifest"], o["failures"])
    info = read_embed_info(evalset)
    score, why = score_for(o["score"], info, evalset=evalset)
    check_target(out, overwrite=o["overwrite"])  # before the long work: a refused folder costs nothing
    say = phases_console or console  # the score and why: the summary's first line (stdout)
    has_embed = evalset is not None and (Path(evalset) / "embed.json").exists()
    inputs = inputs_from([("templates", templates), ("manifest", manifest), ("protocol", protocol),
                          ("failures", failures), ("distractors", o["distractors"]),
                          ("embed metadata", Path(evalset) / "embed.json" if has_embed else None)])
    metadata = {"model": info.get("model")} if has_embed else {}  # as results.json has always held it
    recorded = {**o, "score_reason": why}  # score as given (None: from the evaluation set); results' input.score is used
    provenance = collect(argv, recorded, inputs, system={"name": o["system_name"], "version": o["system_version"]},
                         model=model_record(metadata.get("model")))
    backend = None
    workers, scheduler = o["workers"], o["scheduler"]
    try:
        with Phases(say) as phases:
            with phases.phase("loading templates and manifest"):
                es = load_evaluation_set(templates, manifest)
            with phases.phase("checking the protocol"):
                proto = (load_protocol(es, protocol) if protocol is not None else
                         generate_protocol(es, enrol_fraction=o["enrol_fraction"],
                                           gallery_per_subject=o["gallery_per_subject"], seed=o["seed"]))
                fail_table = _read_failures(failures) if failures is not None else None
                caveats = _parse_caveats(o["caveat"])  # checked before the long work, like every input
                extra = _read_distractors(o["distractors"]) if o["distractors"] is not None else None
                if group_by:
                    from faceaudit.analyses.demographics import group_labels
                    for spec in group_by:
                        group_labels(es.manifest, spec)
            if workers is not None or scheduler is not None:
                from faceaudit.engine.dask_backend import cluster_backend
                with phases.phase("starting the Dask cluster" if workers is not None else "connecting to the Dask scheduler"):
                    backend = cluster_backend(workers, scheduler).__enter__()
            with phases.phase("searching", unit="probes") as progress:
                result = run_audit(es, proto, score=score, top_k=o["top_k"], fpir_targets=fpir, thresholds=threshold,
                                   failures=fail_table, fta_as_miss=o["fta_as_miss"],
                                   memory_budget=o["memory_mb"] * 2**20, progress=progress, metadata=metadata,
                                   backend=backend, provenance=provenance)
            if group_by:
                from faceaudit.analyses.demographics import add_demographics
                with phases.phase("demographics", unit="passes") as progress:
                    add_demographics(result, group_by, min_group_size=o["min_group_size"], caveats=caveats,
                                     per_person=o["per_person"], progress=progress)
            if o["scale"] or o["distractors"] is not None:
                from faceaudit.analyses.scale import add_scale
                with phases.phase("scale", unit="passes") as progress:
                    add_scale(result, distractors=extra, claimed_gallery_size=o["claimed_gallery_size"],
                              progress=progress)
            if o["claimed_gallery_size"] is not None:
                from faceaudit.analyses.scale import add_claimed_gallery_size
                add_claimed_gallery_size(result, o["claimed_gallery_size"])
            with phases.phase("writing results"):
                write_results(result, out, overwrite=o["overwrite"])
    finally:
        if backend is not None:  # the cluster served the demographics and scale passes too
            backend.close()
    return result


def _parse_caveats(items: List[str]) -> dict:
    caveats = {}
    for item in items:
        column, sep, text = item.partition("=")
        if not sep or not column.strip() or not text.strip():
            raise InputError(f"--caveat must be COLUMN=TEXT, got '{item}'")
        caveats[column.strip()] = text.strip()
    return caveats


def _read_distractors(path: Path):
    from faceaudit.data.evalset import _read_templates
    if not path.exists():
        raise InputError("distractor file not found", path)
    return _read_templates(path)


def _read_failures(path: Path):
    from faceaudit.data.evalset import read_failures
    return read_failures(path)


def explain(
    results: Path = typer.Option(..., help="A results folder written by faceaudit (scores.npz)."),
    score: Optional[float] = typer.Option(None, help="The top candidate's score (same score kind as the audit; on a "
                                                     "distance audit, neg_euclidean, give --distance instead)."),
    distance: Optional[float] = typer.Option(None, help="The top candidate's distance, on an audit that compares by "
                                                        "distance (--score neg_euclidean)."),
    gallery_size: str = typer.Option(..., help="Number of people in the searched gallery (1000000, 1e6 or 1,000,000)."),
    prior: float = typer.Option(0.5, help="Chance, before the search, that the person is in the gallery at all."),
) -> None:
    """How likely is a top candidate at this score the searched person rather than a look-alike?"""
    from faceaudit.analyses.explain import explain_from_results
    out = explain_from_results(results, score, gallery_size, prior, distance=distance)
    print(out["headline"])
    if (out.get("calibration_check") or {}).get("calibrated_for_new_people") is False:
        print("warning: this audit's own check found explain not calibrated for new people on this data "
              "(see the report's section on the case-level calculator)")
    print(out["paragraph"])


def report(results_dir: Path = typer.Argument(..., help="A results folder written by faceaudit.")) -> None:
    """Re-render report.html from a results folder's results.json."""
    from auditcore.outdir import write_file_into
    from faceaudit.data.results import load_results
    from faceaudit.report.html import write_report
    results = load_results(results_dir)
    with Phases(console, compiles=False) as phases, phases.phase("rendering report"):
        try:
            path = write_file_into(results_dir, "report.html", lambda p: write_report(results, p))
        except (KeyError, TypeError, IndexError, ValueError, AttributeError) as exc:
            # a section of another shape (a list where a table is expected, ...): the file's fault
            what = str(exc).splitlines()[0][:200] if str(exc) else ""
            raise InputError(f"results.json is incomplete or from another faceaudit version "
                             f"({exc.__class__.__name__}{': ' + what if what else ''}); re-run the audit",
                             Path(results_dir) / "results.json") from None
    print(f"report: {path}")

"""The ``faceaudit`` command line: a thin layer over the library API."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from faceaudit.errors import InputError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Audit face identification (1:N search) systems: FPIR, FNIR, CMC, DET, with intervals.")
console = Console(stderr=True)


def fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


@contextmanager
def engine_progress(label: str = "searching") -> Iterator:
    """A rich progress bar (rate, ETA) fed by the engine's ``progress(done, total)`` callback."""
    columns = (TextColumn(f"[bold]{label}"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,} probes"),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _print_summary(results: dict, out: Path) -> None:
    ident = results["identification"]
    for op in ident["operating_points"]:
        if op.get("threshold") is None:
            continue
        f, m = op["fpir"], op["fnir"]["1"]
        print(f"FPIR target {op['target_fpir']:g}: threshold {op['threshold']:.5g}, "
              f"FPIR {f['value']:.4g} ({f['errors']}/{f['trials']}), FNIR@1 {m['value']:.4g} ({m['errors']}/{m['trials']})")
    print(f"report: {out / 'report.html'}")


@app.command()
def demo(out: Path = typer.Option(Path("faceaudit-demo"), help="Results folder to write."),
         seed: int = typer.Option(0, help="Seed of the synthetic population."),
         overwrite: bool = typer.Option(True, help="Replace an existing results folder.")) -> None:
    """Audit a bundled synthetic population with known error rates (a self-check), write a report."""
    from faceaudit.audit import write_results
    from faceaudit.demo import run_demo
    try:
        with engine_progress() as progress:
            audit = run_demo(seed=seed, progress=progress)
        write_results(audit, out, overwrite=overwrite)
    except InputError as exc:
        fail(str(exc))
    checks = audit.results["synthetic"]["checks"]
    inside = sum(c["inside_ci"] for c in checks)
    print(f"synthetic self-check: true rate inside the 95% CI for {inside} of {len(checks)} checks")
    _print_summary(audit.results, out)


@app.command()
def audit(
    templates: Optional[Path] = typer.Option(None, help="Templates: .npy (n x d) or Parquet."),
    manifest: Optional[Path] = typer.Option(None, help="Manifest: CSV or Parquet with template_id, subject_id."),
    evalset: Optional[Path] = typer.Option(None, help="A folder from `faceaudit embed` (templates.npy, manifest.csv, failures.csv)."),
    out: Path = typer.Option(..., help="Results folder to write (atomically)."),
    protocol: Optional[Path] = typer.Option(None, help="Explicit protocol file (template_id, role=gallery|probe)."),
    enrol_fraction: float = typer.Option(0.5, help="Generated protocol: share of eligible subjects enrolled."),
    gallery_per_subject: int = typer.Option(1, help="Generated protocol: gallery templates per enrolled subject."),
    seed: int = typer.Option(0, help="Generated protocol: seed."),
    score: str = typer.Option("cosine", help="cosine or neg_euclidean (for dlib, whose threshold is a distance)."),
    top_k: int = typer.Option(20, help="Candidate list length."),
    fpir: List[float] = typer.Option([0.1, 0.01, 0.001], help="Target FPIR operating points (repeatable)."),
    threshold: List[float] = typer.Option([], help="Also report at these thresholds (repeatable)."),
    failures: Optional[Path] = typer.Option(None, help="failures.csv from `faceaudit embed` (failure to enrol)."),
    fta_as_miss: bool = typer.Option(True, help="Count failed searches as misses (ISO/IEC 19795-1 generalised rates)."),
    group_by: List[str] = typer.Option([], help="Demographics: manifest column(s) to group by; 'a*b' for a combination."),
    min_group_size: int = typer.Option(30, help="Demographics: groups with fewer searches than this are shown greyed."),
    caveat: List[str] = typer.Option([], help="Demographics: COLUMN=TEXT, printed next to every figure from that column (e.g. classifier-derived labels)."),
    scale: bool = typer.Option(False, help="Also measure and extrapolate FPIR against gallery size."),
    distractors: Optional[Path] = typer.Option(None, help="Scale: extra gallery templates (.npy, n x d) of people never searched for."),
    memory_mb: int = typer.Option(256, help="Memory for one block of scores, MiB."),
    overwrite: bool = typer.Option(False, help="Replace an existing results folder."),
    workers: Optional[int] = typer.Option(None, help="Search on a local Dask cluster of N worker processes (pip install 'faceaudit[dask]'); same results."),
    scheduler: Optional[str] = typer.Option(None, help="Search on an existing Dask cluster (scheduler address); its workers must reach the templates' path."),
) -> None:
    """Audit templates against a protocol and write results.json, Parquet tables and report.html."""
    from faceaudit.audit import run_audit, write_results
    from faceaudit.evalset import load_evaluation_set
    from faceaudit.protocol import generate_protocol, load_protocol
    backend = None
    try:
        if evalset is not None:
            templates = templates or evalset / "templates.npy"
            manifest = manifest or evalset / "manifest.csv"
            if failures is None and (evalset / "failures.csv").exists():
                failures = evalset / "failures.csv"
        if templates is None or manifest is None:
            raise InputError("give --evalset DIR, or both --templates and --manifest")
        es = load_evaluation_set(templates, manifest)
        proto = (load_protocol(es, protocol) if protocol is not None else
                 generate_protocol(es, enrol_fraction=enrol_fraction, gallery_per_subject=gallery_per_subject, seed=seed))
        fail_table = _read_failures(failures) if failures is not None else None
        metadata = _embed_metadata(evalset)
        caveats = _parse_caveats(caveat)  # checked before the long work, like every input
        extra = _read_distractors(distractors) if distractors is not None else None
        if group_by:
            from faceaudit.demographics import group_labels
            for spec in group_by:
                group_labels(es.manifest, spec)
        from faceaudit.dask_backend import cluster_backend
        backend = cluster_backend(workers, scheduler).__enter__()  # None without --workers/--scheduler
        with engine_progress() as progress:
            result = run_audit(es, proto, score=score, top_k=top_k, fpir_targets=fpir, thresholds=threshold,
                               failures=fail_table, fta_as_miss=fta_as_miss, memory_budget=memory_mb * 2**20,
                               progress=progress, metadata=metadata, backend=backend)
        if group_by:
            from faceaudit.demographics import add_demographics
            add_demographics(result, group_by, min_group_size=min_group_size, caveats=caveats)
        if scale or distractors is not None:
            from faceaudit.scale import add_scale
            add_scale(result, distractors=extra)
        write_results(result, out, overwrite=overwrite)
    except InputError as exc:
        fail(str(exc))
    finally:
        if backend is not None:  # the cluster served the demographics and scale passes too
            backend.close()
    _print_summary(result.results, out)


def _parse_caveats(items: List[str]) -> dict:
    caveats = {}
    for item in items:
        column, sep, text = item.partition("=")
        if not sep or not column.strip() or not text.strip():
            raise InputError(f"--caveat must be COLUMN=TEXT, got '{item}'")
        caveats[column.strip()] = text.strip()
    return caveats


def _read_distractors(path: Path):
    from faceaudit.evalset import _read_templates
    if not path.exists():
        raise InputError("distractor file not found", path)
    return _read_templates(path)


def _read_failures(path: Path):
    import pandas as pd
    if not path.exists():
        raise InputError("failures file not found", path)
    try:
        table = pd.read_csv(path, dtype=str)
    except pd.errors.EmptyDataError:
        return pd.DataFrame({"subject_id": []})
    if "subject_id" not in table.columns:
        raise InputError("missing required column subject_id", path)
    return table


def _embed_metadata(evalset_dir: Optional[Path]) -> dict:
    import json
    if evalset_dir is None or not (evalset_dir / "embed.json").exists():
        return {}
    with open(evalset_dir / "embed.json") as fh:
        info = json.load(fh)
    return {"model": info.get("model")}


from faceaudit.cli_embed import embed as _embed_command  # noqa: E402

app.command("embed")(_embed_command)


@app.command()
def explain(
    results: Path = typer.Option(..., help="A results folder written by faceaudit (scores.npz)."),
    score: float = typer.Option(..., help="The top candidate's score (same score kind as the audit)."),
    gallery_size: int = typer.Option(..., help="Number of people in the searched gallery."),
    prior: float = typer.Option(0.5, help="Chance, before the search, that the person is in the gallery at all."),
) -> None:
    """How likely is a top candidate at this score the searched person rather than a look-alike?"""
    from faceaudit.explain import explain_from_results
    try:
        out = explain_from_results(results, score, gallery_size, prior)
    except InputError as exc:
        fail(str(exc))
    lo, hi = out["interval"]
    print(f"P(top candidate is the person searched for) = {out['p_top_is_mate']:.4f} (95% interval {lo:.4f}-{hi:.4f})")
    print(out["paragraph"])


@app.command()
def report(results_dir: Path = typer.Argument(..., help="A results folder written by faceaudit.")) -> None:
    """Re-render report.html from a results folder's results.json."""
    from faceaudit.audit import load_results
    from faceaudit.report import write_report
    try:
        path = write_report(load_results(results_dir), results_dir / "report.html")
    except InputError as exc:
        fail(str(exc))
    print(f"report: {path}")


def main() -> None:
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()

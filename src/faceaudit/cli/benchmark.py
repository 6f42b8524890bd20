"""``faceaudit benchmark lfw|blufr``: published protocols on any templates keyed by LFW image name
(registered, guarded, on the app in :mod:`faceaudit.cli`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from auditcore.cli import console
from auditcore.errors import InputError

_TEMPLATES = typer.Option(None, help="Templates: .npy (n x d) or Parquet.")
_MANIFEST = typer.Option(None, help="Manifest (CSV/Parquet) with template_id = LFW image name, same row order.")
_EVALSET = typer.Option(None, help="A folder from `faceaudit embed` (templates.npy, manifest.csv, failures.csv).")
_DATA = typer.Option(None, help="The LFW folder (or its parent) holding pairs.txt and blufr_lfw_config.mat; "
                               "default: $FACEAUDIT_DATA or ../shared/data.")
_SCORE = typer.Option("cosine", help="cosine, or neg_euclidean for models published with a distance (dlib).")
_OVERWRITE = typer.Option(False, help="Replace an existing results folder written by faceaudit.")




def _templates(templates, manifest, evalset):
    from faceaudit.benchmarks.templates import load
    return load(templates, manifest, evalset)


def _check_score(score: str) -> None:
    if score not in ("cosine", "neg_euclidean"):
        raise InputError(f"--score must be cosine or neg_euclidean, got '{score}'")


def lfw(templates: Optional[Path] = _TEMPLATES, manifest: Optional[Path] = _MANIFEST,
        evalset: Optional[Path] = _EVALSET, data: Optional[Path] = _DATA,
        out: Path = typer.Option(..., help="Results folder to write (atomically)."),
        score: str = _SCORE,
        threshold: Optional[float] = typer.Option(None, help="Also report every fold at this fixed threshold "
                                                             "(same if score >= T; dlib's distance 0.6 is -0.6)."),
        overwrite: bool = _OVERWRITE) -> None:
    """LFW View 2: 10-fold accuracy on pairs.txt, threshold chosen on the other nine folds."""
    from auditcore.outdir import check_target
    from faceaudit.benchmarks import run
    _check_score(score)
    check_target(out, overwrite=overwrite)
    folder = run.lfw_folder(data, run.PAIRS_FILE)
    results, table = run.run_lfw(_templates(templates, manifest, evalset), folder, score=score, threshold=threshold)
    run.write_lfw(results, table, out, overwrite=overwrite)
    print("\n".join(run.lfw_lines(results)))
    print(f"written: {out}/ (results.json, folds.csv, pairs.csv, summary.txt)")


def blufr(templates: Optional[Path] = _TEMPLATES, manifest: Optional[Path] = _MANIFEST,
          evalset: Optional[Path] = _EVALSET, data: Optional[Path] = _DATA,
          out: Path = typer.Option(..., help="Results folder to write (atomically)."),
          score: str = _SCORE,
          trials: Optional[int] = typer.Option(None, min=1, help="Run only the first N of the 10 trials (the "
                                                                  "benchmark figure needs all 10)."),
          overwrite: bool = _OVERWRITE) -> None:
    """BLUFR: VR at FAR 0.1% and rank-1 DIR at FAR 1% per trial and as mean - std, by BLUFR's own rule."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from auditcore.outdir import check_target
    from faceaudit.benchmarks import run
    _check_score(score)
    check_target(out, overwrite=overwrite)
    folder = run.lfw_folder(data, run.BLUFR_FILE)
    lt = _templates(templates, manifest, evalset)
    columns = (TextColumn("[bold]BLUFR trials"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("trials", total=None)
        results = run.run_blufr(lt, folder, score=score, trials=trials,
                                progress=lambda done, total: bar.update(task, completed=done, total=total))
    run.write_blufr(results, out, overwrite=overwrite)
    print("\n".join(run.blufr_lines(results)))
    print(f"written: {out}/ (results.json, trials.csv, summary.txt)")

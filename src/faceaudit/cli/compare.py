"""``faceaudit compare``: audits of several systems on the same searches, side by side
(registered, guarded, on the app in :mod:`faceaudit.cli`)."""

from __future__ import annotations

from pathlib import Path
from typing import List

import typer


def compare(
    results: List[Path] = typer.Argument(..., help="Two or more results folders on the same searches, from `faceaudit audit` or `faceaudit audit-lists` (black-box); or two `faceaudit quality` studies of the same images (two models, level by level)."),
    out: Path = typer.Option(..., help="Comparison folder to write (atomically): comparison.json, summary.txt, report.html."),
    name: List[str] = typer.Option([], help="A display name per results folder, in order (default: folder names)."),
    fpir: List[float] = typer.Option([0.1, 0.01, 0.001], help="FPIR operating points to compare at (repeatable)."),
    n_boot: int = typer.Option(1000, min=100, help="Bootstrap resamples (over probe subjects)."),
    seed: int = typer.Option(0, help="Bootstrap seed."),
    overwrite: bool = typer.Option(False, help="Replace an existing comparison folder written by faceaudit."),
    series: bool = typer.Option(False, "--series", help="The folders are one system's versions, in order: each headline per version, the change between consecutive versions (paired), one plot per headline (series.json, summary.txt, report.html)."),
) -> None:
    """Compare systems: paired differences with intervals, McNemar tests, DET/CMC overlaid, per group.

    Black-box audits (candidate lists) are compared where both systems' lists determine a figure;
    anything else is reported as not measurable, with the reason.
    """
    from auditcore.outdir import check_target
    from auditcore.validation import rate_targets
    from faceaudit.analyses.compare import compare as run_compare
    from faceaudit.analyses.compare import write_comparison
    rate_targets("--fpir", fpir)
    check_target(out, overwrite=overwrite)
    from faceaudit.analyses.quality_compare import is_quality_study
    studies = [is_quality_study(p) for p in results]
    if any(studies):  # `faceaudit quality` folders: two models' studies of the same images, level by level
        from auditcore.errors import InputError
        from faceaudit.analyses import quality_compare as qc
        if not all(studies) or len(results) != 2 or series:
            what = next(p for p, st in zip(results, studies) if not st) if not all(studies) else None
            raise InputError(f"{what} is not a quality study: compare two `faceaudit quality` folders, or audits"
                             if what else "compare exactly two `faceaudit quality` folders (no --series)")
        result = qc.compare_studies(results[0], results[1], names=name or None, n_boot=n_boot, seed=seed)
        qc.write_study_comparison(result, out, overwrite=overwrite)
        for line in result["summary"]:
            print(line)
        print(f"report: {out / 'report.html'}")
        return
    if series:
        from faceaudit.analyses.series import series as run_series
        from faceaudit.analyses.series import write_series
        result = run_series(results, names=name or None, fpir_targets=fpir, n_boot=n_boot, seed=seed)
        write_series(result, out, overwrite=overwrite)
        print(f"versions labelled by {result['labels_from']}: {' -> '.join(v['version'] for v in result['versions'])}")
        for line in result["summary"]:
            print(line)
        print(f"report: {out / 'report.html'}")
        return
    result = run_compare(results, names=name or None, fpir_targets=fpir, n_boot=n_boot, seed=seed)
    write_comparison(result, out, overwrite=overwrite)
    for line in result["summary"]:
        print(line)
    print(f"report: {out / 'report.html'}")

"""``faceaudit quality``: the probe-quality study (registered, guarded, on the app in :mod:`faceaudit.cli`)."""

from __future__ import annotations

from pathlib import Path

import typer


def quality(
    evalset_images: Path = typer.Option(..., help="Images: a folder of subject sub-folders, or a manifest "
                                                  "(.csv/.parquet) with image and subject_id columns."),
    out: Path = typer.Option(..., help="Output folder: results.json, searches.parquet, report.html."),
    degrade: list[str] = typer.Option(..., help="Probe degradation levels, e.g. size:112,64,32,24,16 (face width, px), "
                                                "jpeg:90,50,20, blur:1,2,4 (sigma px), motion:5,9,15 (px), "
                                                "noise:5,10,20 (grey levels), dark:1,2,3 (stops), grey, "
                                                "eyes:0.25 (band, face heights), mask:0.5 (lower fraction). Repeatable."),
    model: str = typer.Option("sface", help="dlib or sface (or an installed plug-in)."),
    upsample: int = typer.Option(1, help="dlib: HOG detector upsampling."),
    yunet_threshold: float = typer.Option(0.9, help="sface: YuNet's minimum face score."),
    score: str | None = typer.Option(None, help="Comparison score (default: the model's: neg_euclidean for dlib, "
                                                   "cosine otherwise)."),
    fpir: list[float] = typer.Option([0.1, 0.01, 0.001], help="FPIR targets: thresholds set on the clean probes."),
    top_k: int = typer.Option(20, min=1, help="Candidate-list length (FNIR at rank 1 and 20 needs 20)."),
    enrol_fraction: float = typer.Option(0.5, help="Share of eligible subjects enrolled in the gallery."),
    group_by: list[str] = typer.Option([], help="A manifest column: figures per group at each level. Repeatable."),
    seed: int = typer.Option(0, help="Seed: protocol, noise, bootstrap."),
    n_boot: int = typer.Option(1000, min=50, help="People-bootstrap resamples for the paired comparisons."),
    workers: int = typer.Option(2, min=1, help="Worker processes for embedding."),
    report: bool = typer.Option(True, help="Write report.html."),
    overwrite: bool = typer.Option(False, help="Replace an existing output folder written by faceaudit."),
) -> None:
    """How each error grows as the searched photo gets worse: an audit per degradation level."""
    from auditcore.cli import console
    from faceaudit.analyses.quality import check_output, run_quality_study, write_study
    from faceaudit.audit import run_audit
    from faceaudit.cli.progress import Phases
    from faceaudit.models import registry
    from faceaudit.models.degrade import parse_specs
    levels = parse_specs(degrade, seed)
    check_output(out, overwrite=overwrite)
    options = {k: v for k, v in registry.options_for(model, {"upsample": upsample, "yunet_threshold": yunet_threshold,
                                                             "jitter": 0, "fast_detect": False}).items()
               if v is not None}
    with Phases(console) as phases:
        study = run_quality_study(evalset_images, model, levels, run_audit=run_audit, model_options=options,
                                  score=score, seed=seed, enrol_fraction=enrol_fraction, top_k=top_k,
                                  fpir_targets=fpir, group_by=group_by, workers=workers, n_boot=n_boot,
                                  phases=phases)
        with phases.phase("writing results"):
            write_study(study, out, overwrite=overwrite, report=report)
    r = study.results
    print(f"{r['input']['images']:,} images, {r['protocol']['n_gallery_templates']:,} gallery templates, "
          f"{r['levels'][0]['identification']['n_mated_searches']:,} mated and "
          f"{r['levels'][0]['identification']['n_nonmated_searches']:,} non-mated searches per level; "
          f"{len(r['levels']) - 1} degraded levels + clean ({r['provenance']['seconds']:.0f} s)")
    target = r["deployed_thresholds"][min(1, len(r["deployed_thresholds"]) - 1)]
    print(f"at the threshold set on clean probes for FPIR {target['target_fpir']:g} "
          f"(T = {target['threshold']:.4g}):")
    print(f"  {'level':<12} {'probe FTE':>9} {'FPIR':>8} {'FNIR(1)':>8} {'FNIR(20)':>8}")
    for e in r["levels"]:
        op = next(o for o in e["identification"]["operating_points"] if o["target_fpir"] == target["target_fpir"])
        fn = op.get("fnir", {})

        def pct(x):  # a rate with no error is shown as its upper bound, never 0
            if not x or x.get("value") is None:
                return "    -"
            return f"<={100 * x['ci_high']:.2g}%" if x["errors"] == 0 else f"{100 * x['value']:7.2f}%"
        print(f"  {e['label']:<12} {pct(e['failure_to_enrol']['probes'])!s:>9} {pct(op.get('fpir'))!s:>8} "
              f"{pct(fn.get('1'))!s:>8} {pct(fn.get(str(top_k)) if top_k != 20 else fn.get('20'))!s:>8}")
    for sentence in r["summary"]["sentences"]:
        print(sentence)
    print(f"wrote {out}/ (results.json, searches.parquet{', report.html' if report else ''})")

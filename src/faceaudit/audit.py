"""The audit: evaluation set + protocol -> engine -> metrics -> a results folder.

``run_audit`` returns an :class:`Audit` (the engine's counts plus a JSON-ready ``results``
dict); ``write_results`` writes the folder atomically: everything goes to a temporary folder
beside the target, which is renamed into place only when complete, so a failed run leaves no
half-written folder. Folder contents:

* ``results.json``: every figure with its interval, counts and the conventions;
* ``searches.parquet``: one row per search (probe): best non-mate score, mate score and rank;
* ``candidates.parquet``: the top-K candidate list of every search;
* ``scores.npz``: exact genuine scores, best non-mate scores and the impostor histogram
  (bin edges and counts), enough to recompute every figure and to run ``faceaudit explain``;
* ``report.html``: the self-contained report (see :mod:`faceaudit.report`).
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from auditcore.outdir import atomic_folder
from auditcore.provenance import SCHEMA_VERSION, collect, inputs_from
from auditcore.serialize import thin, to_json
from auditcore.validation import rate_targets
from faceaudit import __version__
from faceaudit.analyses.base import Audit
from faceaudit.data.evalset import EvaluationSet
from faceaudit.data.protocol import Protocol
from faceaudit.data.sizes import small_audit_warning
from faceaudit.engine.counts import SearchResult, hist_edges
from faceaudit.engine.local import search
from faceaudit.metrics import identification as ident
from faceaudit.metrics import verification as verif
from faceaudit.metrics.conventions import CONVENTIONS, DEFAULT_FMR_TARGETS, DEFAULT_FPIR_TARGETS, ranks_for


def _failed_searches(failures: pd.DataFrame | None, gallery_subjects: np.ndarray) -> tuple[int, int]:
    """(mated, non-mated) searches lost to failure to enrol, by whether the subject is enrolled."""
    if failures is None or len(failures) == 0:
        return 0, 0
    enrolled = failures["subject_id"].astype(str).isin(set(gallery_subjects))
    return int(enrolled.sum()), int((~enrolled).sum())


def _identification(res: SearchResult, fpir_targets, thresholds, top_k: int,
                    failed: tuple[int, int], fta_as_miss: bool) -> dict:
    mated = res.is_mated
    best = res.best_nonmate[~mated].astype(np.float32)
    mate_score, mate_rank = res.mate_score[mated], res.mate_rank[mated]
    if fta_as_miss:  # a failed search returns no candidate: a miss if mated, never a false positive
        best = np.concatenate([best, np.full(failed[1], -np.inf, np.float32)])
        mate_score = np.concatenate([mate_score, np.full(failed[0], -np.inf, np.float32)])
        mate_rank = np.concatenate([mate_rank, np.full(failed[0], np.iinfo(np.int32).max)])
    ranks = ranks_for(top_k)

    def point(threshold: float) -> dict:
        return {"threshold": threshold,
                "fpir": ident.fpir(best, threshold).to_dict(),
                "fnir": {str(r): ident.fnir(mate_score, mate_rank, threshold, rank=r).to_dict() for r in ranks}}

    operating = []
    for target in fpir_targets:
        op = ident.threshold_at_fpir(best, target)
        entry = {"target_fpir": target, "allowed_errors": op.allowed_errors}
        entry.update(point(op.threshold) if op.threshold is not None else {"threshold": None})
        operating.append(entry)
    curve = ident.identification_curve(best, mate_score, mate_rank, rank=1)
    keep = thin(curve.thresholds.size)
    from auditcore.intervals import clopper_pearson
    fnir_ci = np.array([clopper_pearson(int(m), curve.n_mated) if curve.n_mated else (np.nan, np.nan)
                        for m in curve.misses[keep]]).reshape(-1, 2)
    cmc = ident.cmc(mate_rank, top_k)
    return {
        "n_nonmated_searches": int(best.size), "n_mated_searches": int(mate_score.size),
        "ranks": ranks,
        "operating_points": operating,
        "at_thresholds": [point(float(t)) for t in thresholds],
        "rank1_identification_rate": {"rate": None if not mate_rank.size else float(cmc[0]),
                                      "misses": ident.fnir(mate_score, mate_rank, -np.inf, rank=1).to_dict()},
        "cmc": {"rank": list(range(1, top_k + 1)), "identification_rate": [None if np.isnan(v) else float(v) for v in cmc],
                "misses": [ident.fnir(mate_score, mate_rank, -np.inf, rank=r).to_dict() for r in (1, top_k)]},
        "curve": {"threshold": curve.thresholds[keep].tolist(), "fpir": curve.fpir[keep].tolist(),
                  "fnir_rank1": curve.fnir[keep].tolist(),
                  "fnir_rank1_ci_low": fnir_ci[:, 0].tolist(), "fnir_rank1_ci_high": fnir_ci[:, 1].tolist(),
                  "note": "thinned to at most ~600 of the distinct observed scores"},
    }


def _verification(res: SearchResult, fmr_targets) -> dict:
    curve = verif.verification_curve(res.genuine_scores, res.impostor_hist, score=res.score,
                                     fine_from=res.hist_fine_from)
    from auditcore.intervals import beta_interval

    keep = thin(curve.thresholds.size)
    n_gen = curve.n_genuine
    misses = np.rint(curve.fnmr[keep] * n_gen) if n_gen else np.zeros(keep.size)  # whole counts: FNMR = misses / n
    fnmr_lo, fnmr_hi = (beta_interval(misses, np.full(keep.size, n_gen)) if n_gen
                        else (np.full(keep.size, np.nan), np.full(keep.size, np.nan)))
    edges = hist_edges()
    fine_from = float(edges[res.hist_fine_from]) if 0 < res.hist_fine_from < edges.size else None
    grid = "2^-8 apart" if res.score == "cosine" else "1/32 of a binade apart"
    return {
        "n_genuine": curve.n_genuine, "n_impostor": curve.n_impostor,
        "thresholds": {"fine_from": fine_from,
                       "note": ("impostor counts are exact at every histogram edge (2^-11 of the score's binade "
                                "apart)" + ("" if fine_from is None else
                                            f" from {fine_from:.6g} up, where FMR is at most 1%, and at "
                                            f"coarse edges ({grid}) below it"))},
        "eer": verif.equal_error_rate(curve).to_dict(),
        "fnmr_at_fmr": [verif.fnmr_at_fmr(curve, t).to_dict() for t in fmr_targets],
        "curve": {"threshold": curve.thresholds[keep].tolist(), "fmr": curve.fmr[keep].tolist(),
                  "fnmr": curve.fnmr[keep].tolist(),
                  "fnmr_ci_low": fnmr_lo.tolist(), "fnmr_ci_high": fnmr_hi.tolist(),
                  "note": ("thinned; thresholds are bin edges; the FNMR band is pointwise 95% Clopper-Pearson "
                           "over this audit's genuine comparisons")},
    }


def _distributions(res: SearchResult, n_bins: int = 80) -> dict:
    """Score densities for the report's plot, on one common grid."""
    edges_all = hist_edges()
    imp_bins = np.flatnonzero(res.impostor_hist)
    mated = res.is_mated
    pieces = [res.genuine_scores, res.best_nonmate[~mated]]
    if imp_bins.size:
        pieces.append(edges_all[imp_bins[[0, -1]]])
    values = np.concatenate([p[np.isfinite(p)] for p in pieces if p.size])
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        hi = lo + 1e-6
    grid = np.linspace(lo, hi, n_bins + 1)
    imp_counts, _ = np.histogram(edges_all[imp_bins], bins=grid, weights=res.impostor_hist[imp_bins])
    gen_counts, _ = np.histogram(res.genuine_scores, bins=grid)
    best_counts, _ = np.histogram(res.best_nonmate[~mated], bins=grid)
    return {"edges": grid.tolist(), "genuine": gen_counts.tolist(), "impostor": imp_counts.astype(int).tolist(),
            "best_nonmate": best_counts.tolist()}


def run_audit(evalset: EvaluationSet, protocol: Protocol, *, score: str = "cosine", top_k: int = 20,
              fpir_targets: Sequence[float] = DEFAULT_FPIR_TARGETS,
              fmr_targets: Sequence[float] = DEFAULT_FMR_TARGETS, thresholds: Sequence[float] = (),
              failures: pd.DataFrame | None = None, fta_as_miss: bool = True,
              memory_budget: int | None = None, progress: Callable[[int, int], None] | None = None,
              metadata: dict | None = None, backend=None, provenance: dict | None = None) -> Audit:
    """Run the engine once and compute every figure. See the module docstring for outputs.

    ``failures``: images that failed to enrol (``subject_id`` column at least, as written by
    ``faceaudit embed``). Their searches count as misses / non-false-positives when
    ``fta_as_miss`` (ISO/IEC 19795-1 generalised rates), else they are left out and reported.
    ``backend``: runs the search instead of the single-process engine (an object with the
    engine's ``search`` signature, e.g. :class:`faceaudit.engine.dask_backend.DaskBackend`); the
    result is the same.
    ``provenance``: the ``provenance`` block (:func:`auditcore.provenance.collect`) the command
    line builds; a library call gets one with ``command`` None, these arguments as its options
    and, as inputs, the files the evaluation set and protocol were read from (when they were).

    Besides the figures, ``results`` holds ``schema_version``, ``provenance`` and ``warnings``
    (``small_audit`` below :data:`faceaudit.data.sizes.SMALL_AUDIT`).
    """
    rate_targets("FPIR target", fpir_targets)
    kwargs = {} if memory_budget is None else {"memory_budget": memory_budget}
    res = (search if backend is None else backend.search)(evalset, protocol, score=score, top_k=top_k, progress=progress, **kwargs)
    failed = _failed_searches(failures, res.gallery_subjects)
    n_attempts = evalset.n + (0 if failures is None else len(failures))
    results = {
        "faceaudit_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "conventions": CONVENTIONS,
        "input": {"source": evalset.source, "n_templates": evalset.n, "dim": evalset.dim,
                  "score": score, "top_k": top_k, **(metadata or {})},
        "protocol": {**protocol.description, "n_gallery_templates": int(protocol.gallery.size),
                     "gallery_size": res.gallery_size, "n_mated_probes": int(protocol.mated.size),
                     "n_nonmated_probes": int(protocol.nonmated.size),
                     "n_comparisons": res.n_comparisons},
        "failure_to_enrol": {
            "failed": 0 if failures is None else len(failures), "attempts": n_attempts,
            "rate": (0 if failures is None else len(failures)) / n_attempts,
            "failed_mated_searches": failed[0], "failed_nonmated_searches": failed[1],
            "counted_as_misses": bool(fta_as_miss),
        },
        "identification": _identification(res, fpir_targets, thresholds, top_k, failed, fta_as_miss),
        "verification": _verification(res, fmr_targets),
        "distributions": _distributions(res),
    }
    from faceaudit.analyses.explain import calibration_check, lookalikes  # explain checked on this audit's own searches
    results["explain_calibration"] = calibration_check(res, n_gallery_templates=int(protocol.gallery.size))
    results["lookalikes"] = lookalikes(res, [op["threshold"] for op in results["identification"]["operating_points"]],
                                       n_gallery_templates=int(protocol.gallery.size), evalset=evalset, protocol=protocol)
    from faceaudit.analyses.lookalikes import verification_fmr_people  # FMR intervals from people (#26)
    verification_fmr_people(results["verification"], res, evalset, protocol)
    small = small_audit_warning(int(res.gallery_size), results["identification"]["n_mated_searches"],
                                results["identification"]["n_nonmated_searches"])
    results["warnings"] = [] if small is None else [small]
    if provenance is None:
        provenance = library_provenance(evalset, protocol, metadata, {
            "score": score, "top_k": top_k, "fpir_targets": list(fpir_targets), "fmr_targets": list(fmr_targets),
            "thresholds": list(thresholds), "failures": None if failures is None else f"{len(failures)} rows",
            "fta_as_miss": fta_as_miss, "memory_budget": memory_budget,
            "backend": None if backend is None else type(backend).__name__})
    results["provenance"] = provenance
    return Audit(evalset, protocol, res, results, failures, backend=backend)


def library_provenance(evalset: EvaluationSet, protocol: Protocol, metadata: dict | None, options: dict) -> dict:
    """The provenance of a library call (no command line): ``options`` as given, the evaluation
    set's and protocol's files as inputs where they were read from files, the model where the
    metadata names one."""
    pairs = []
    for role, path in (("templates", evalset.source), ("manifest", evalset.manifest_source),
                       ("protocol", protocol.description.get("path"))):
        if path and Path(path).exists():
            pairs.append((role, path))
    return collect(None, options, inputs_from(pairs), model=model_record((metadata or {}).get("model")))


def model_record(info: dict | None) -> dict | None:
    """provenance.model from an embed.json's ``model`` (``{"name", "version", "options"}``):
    name, version, options, ``weights`` (file name: sha256) and ``weights_sha256`` where
    ``faceaudit embed`` recorded them (:func:`faceaudit.models.embed.model_weights`), else None."""
    if not isinstance(info, dict):
        return None
    return {"name": info.get("name"), "version": info.get("version"),
            "weights_sha256": info.get("weights_sha256"), "weights": info.get("weights"),
            "options": info.get("options")}


def _searches_table(audit: Audit) -> pd.DataFrame:
    res, man = audit.search, audit.evalset.manifest
    table = man.iloc[res.probe_rows].reset_index(drop=True).copy()
    table["mated"] = res.is_mated
    table["best_nonmate_score"] = res.best_nonmate
    table["mate_score"] = res.mate_score
    table["mate_rank"] = res.mate_rank
    return table


def _candidates_table(audit: Audit) -> pd.DataFrame:
    res = audit.search
    n, k = res.candidates_subject.shape
    subj = res.candidates_subject.ravel()
    valid = subj >= 0
    probe = np.repeat(np.arange(n), k)[valid]
    cand = res.gallery_subjects[subj[valid]]
    tids = audit.evalset.template_ids_at(res.probe_rows)
    return pd.DataFrame({
        "probe_template_id": tids[probe], "probe_subject_id": res.probe_subjects[probe],
        "rank": np.tile(np.arange(1, k + 1), n)[valid], "candidate_subject_id": cand,
        "score": res.candidates_score.ravel()[valid],
        "is_mate": cand == res.probe_subjects[probe]})


def write_results(audit: Audit, out_dir: str | Path, *, overwrite: bool = False,
                  report: bool = True) -> Path:
    """Write the results folder atomically; return its path."""
    out = Path(out_dir)
    with atomic_folder(out, overwrite=overwrite, kind="audit") as tmp:
        res = audit.search
        with open(tmp / "results.json", "w") as fh:
            json.dump(to_json(audit.results), fh, indent=1, allow_nan=False)
        _searches_table(audit).to_parquet(tmp / "searches.parquet", index=False)
        _candidates_table(audit).to_parquet(tmp / "candidates.parquet", index=False)
        bins = np.flatnonzero(res.impostor_hist)
        np.savez_compressed(tmp / "scores.npz", genuine=res.genuine_scores,
                            best_nonmate=res.best_nonmate[~res.is_mated],
                            mate_score=res.mate_score[res.is_mated], mate_rank=res.mate_rank[res.is_mated],
                            impostor_bin=bins, impostor_edge=hist_edges()[bins],
                            impostor_count=res.impostor_hist[bins], gallery_size=res.gallery_size,
                            impostor_fine_from=res.hist_fine_from)
        for name, writer in audit.extra_files.items():
            writer(tmp / name)
        if report:
            from faceaudit.report.html import write_report
            write_report(to_json(audit.results), tmp / "report.html")
    return out

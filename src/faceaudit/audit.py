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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from faceaudit import __version__
from faceaudit.engine import SearchResult, hist_edges, search
from faceaudit.errors import InputError
from faceaudit.evalset import EvaluationSet
from faceaudit.metrics import identification as ident
from faceaudit.metrics import verification as verif
from faceaudit.outdir import atomic_folder
from faceaudit.protocol import Protocol
from auditcore.serialize import to_json  # noqa: F401 (part of this module's API)

CONVENTIONS = {
    "match": "a comparison score >= threshold T is a match; higher scores mean more alike",
    "fpir": "FPIR(T) = non-mated searches returning at least one candidate with score >= T, "
            "divided by the number of non-mated searches (one error per search)",
    "fnir": "FNIR(R, T) = mated searches whose mate is not in the top R candidates or scores "
            "below T, divided by the number of mated searches",
    "cmc": "identification rate at rank r = 1 - FNIR(r, -inf)",
    "ties": "a mate tied with a non-mate takes the worse rank",
    "subject_score": "a gallery subject's score is the maximum over its gallery templates",
    "operating_point": "'at rate x' = the lowest threshold whose error count is <= floor(x * n); "
                       "never interpolated, never the nearest point",
    "undefined": "a rate with no trials is undefined (null), never 0",
    "verification": "FMR/FNMR over probe-vs-gallery template comparisons; impostor scores are "
                    "counted exactly at float32 bin edges (11 mantissa bits), so verification "
                    "thresholds lie on those edges",
    "intervals": "two-sided 95% Clopper-Pearson intervals on every rate unless stated",
}

DEFAULT_FPIR_TARGETS = (0.1, 0.01, 0.001)
DEFAULT_FMR_TARGETS = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)


@dataclass
class Audit:
    """An audit's counts (``search``) and its JSON-ready ``results``."""

    evalset: EvaluationSet
    protocol: Protocol
    search: SearchResult
    results: dict
    failures: pd.DataFrame | None = None
    extra_files: dict = field(default_factory=dict)
    backend: object = None  # what ran the search (None: the single-process engine); later passes use it too

    @property
    def searcher(self):
        """``search`` as this audit ran it: the backend's, or :func:`faceaudit.engine.search`."""
        return search if self.backend is None else self.backend.search


def _ranks(top_k: int) -> list[int]:
    return sorted({r for r in (1, 5, 10, 20, top_k) if r <= top_k})


def _thin(n: int, limit: int = 600) -> np.ndarray:
    """Indices 0..n-1 thinned to about ``limit``, dense at both ends (log-spaced)."""
    if n <= limit:
        return np.arange(n)
    half = limit // 2
    low = np.unique(np.geomspace(1, n, half).astype(np.int64) - 1)
    high = n - 1 - low
    mid = np.linspace(0, n - 1, limit // 4).astype(np.int64)
    return np.unique(np.concatenate([low, high, mid]))


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
    ranks = _ranks(top_k)

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
    keep = _thin(curve.thresholds.size)
    from faceaudit.metrics.intervals import clopper_pearson
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
    keep = _thin(curve.thresholds.size)
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
                  "fnmr": curve.fnmr[keep].tolist(), "note": "thinned; thresholds are bin edges"},
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
              metadata: dict | None = None, backend=None) -> Audit:
    """Run the engine once and compute every figure. See the module docstring for outputs.

    ``failures``: images that failed to enrol (``subject_id`` column at least, as written by
    ``faceaudit embed``). Their searches count as misses / non-false-positives when
    ``fta_as_miss`` (ISO/IEC 19795-1 generalised rates), else they are left out and reported.
    ``backend``: runs the search instead of the single-process engine (an object with the
    engine's ``search`` signature, e.g. :class:`faceaudit.dask_backend.DaskBackend`); the
    result is the same.
    """
    for t in fpir_targets:
        if not 0 < t < 1:
            raise InputError(f"FPIR target must be between 0 and 1, got {t}")
    kwargs = {} if memory_budget is None else {"memory_budget": memory_budget}
    res = (search if backend is None else backend.search)(evalset, protocol, score=score, top_k=top_k, progress=progress, **kwargs)
    failed = _failed_searches(failures, res.gallery_subjects)
    n_attempts = evalset.n + (0 if failures is None else len(failures))
    results = {
        "faceaudit_version": __version__,
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
    from faceaudit.explain import calibration_check, lookalikes  # explain checked on this audit's own searches
    results["explain_calibration"] = calibration_check(res, n_gallery_templates=int(protocol.gallery.size))
    results["lookalikes"] = lookalikes(res, [op["threshold"] for op in results["identification"]["operating_points"]],
                                       n_gallery_templates=int(protocol.gallery.size))
    return Audit(evalset, protocol, res, results, failures, backend=backend)


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
            from faceaudit.report import write_report
            write_report(to_json(audit.results), tmp / "report.html")
    return out


def load_results(results_dir: str | Path) -> dict:
    """Read and check ``results.json`` from a results folder (InputError if it is not one)."""
    folder = Path(results_dir)
    if not folder.is_dir():
        raise InputError("results folder not found" if not folder.exists() else
                         "expected a results folder written by faceaudit, got a file", folder)
    path = folder / "results.json"
    if not path.exists():
        raise InputError("no results.json here; is this a faceaudit results folder?", results_dir)
    try:
        with open(path, encoding="utf-8") as fh:
            results = json.load(fh)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid JSON ({exc.__class__.__name__}: {exc}); is this a faceaudit results.json?", path) from None
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror or exc})", path) from None
    if not isinstance(results, dict) or "faceaudit_version" not in results or "identification" not in results:
        raise InputError("not a faceaudit results.json (no faceaudit_version / identification entries)", path)
    return results

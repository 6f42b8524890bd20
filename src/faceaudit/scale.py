"""How false positives grow with gallery size: measured, modelled, validated, extrapolated.

* **Measured**: nested random galleries of increasing size N (enrolled subjects plus any
  distractor templates, each distractor a subject of its own), repeated over seeds. For a
  gallery, mated searches are the probes whose subject is in it; non-mated searches are the
  audit's non-mated probes (never enrolled). At each fixed threshold: FPIR(N), FNIR(1, T)(N)
  and the rank-1 identification rate. Values are means over seeds; the interval is
  Clopper-Pearson on the seed-mean count with the number of searches as n (the seeds reuse
  the same probes, so pooling them would overstate the evidence); min and max over seeds are
  given too.
* **Independence model**: FPIR(N, T) = 1 - (1 - FMR(T))^N, with FMR(T) the share of impostor
  comparisons ``>= T`` (exact counts) and N the number of gallery templates.
* **Tail model**: the same with FMR from a generalised Pareto fit to the impostor tail
  (:mod:`faceaudit.metrics.tail`), for thresholds beyond the measured impostor scores.
* **Validation**: both models are fitted on a gallery about 1/8 of the largest and predict the
  largest measured gallery, each prediction with its own interval (from the FMR count, or the
  tail bootstrap); they *agree* when that interval overlaps the measured one. The report says
  where they do not (look-alikes, relatives or duplicates make searches correlated; the independence
  model then overstates growth for some probes and understates it for others).
* **Extrapolation** to N = 1e6..1e10: FPIR and the expected number of impostors scoring above
  threshold per search, N x FMR(T), with bands. This is extrapolation: it assumes the
  deployment's faces resemble the audit's, that non-mate scores of one search are independent,
  and (beyond the measured scores) that the fitted tail holds.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from faceaudit.audit import Audit
from faceaudit.engine import search
from faceaudit.evalset import EvaluationSet
from faceaudit.metrics.intervals import rate
from faceaudit.metrics.tail import fit_tail
from faceaudit.protocol import Protocol

EXTRAPOLATION_SIZES = (1e6, 1e7, 1e8, 1e9, 1e10)

ASSUMPTIONS = [
    "The people searched for and the people in the gallery resemble those of this audit "
    "(age, image quality, demographics, capture conditions).",
    "A search's non-mate scores are independent draws from the audited impostor distribution; "
    "look-alikes, twins, relatives and duplicate enrolments break this.",
    "Beyond the highest measured impostor scores, the fitted generalised Pareto tail holds.",
    "The threshold stays fixed as the gallery grows.",
]


def fpir_independent(fmr, n) -> np.ndarray:
    """1 - (1 - FMR)^N, computed stably (``log1p``/``expm1``)."""
    fmr = np.asarray(fmr, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.expm1(np.asarray(n, dtype=float) * np.log1p(-np.clip(fmr, 0, 1)))


def _augment(evalset: EvaluationSet, distractors: np.ndarray | None) -> tuple[EvaluationSet, np.ndarray]:
    if distractors is None or len(distractors) == 0:
        return evalset, np.empty(0, dtype=np.int64)
    d = np.asarray(distractors, dtype=np.float32)
    if d.ndim != 2 or d.shape[1] != evalset.dim:
        from faceaudit.errors import InputError
        raise InputError(f"distractors must be n x {evalset.dim}, got shape {d.shape}")
    if not np.isfinite(d).all() or (~np.any(d != 0, axis=1)).any():
        from faceaudit.errors import InputError
        raise InputError("distractors contain NaN, infinite or all-zero templates")
    extra = pd.DataFrame({"template_id": [f"__distractor_{i}" for i in range(len(d))],
                          "subject_id": [f"__distractor_{i}" for i in range(len(d))]})
    manifest = pd.concat([evalset.manifest[["template_id", "subject_id"]], extra], ignore_index=True)
    es = EvaluationSet(np.ascontiguousarray(np.vstack([evalset.templates, d])), manifest, evalset.source)
    return es, np.arange(evalset.n, es.n)


def default_sizes(n_max: int, n_sizes: int = 8, n_min: int = 25) -> list[int]:
    n_min = min(n_min, n_max)
    return sorted({int(round(v)) for v in np.geomspace(n_min, n_max, n_sizes)})


def measure_growth(evalset: EvaluationSet, protocol: Protocol, thresholds: Sequence[float], *,
                   score: str = "cosine", sizes: Sequence[int] | None = None, n_seeds: int = 5,
                   distractors: np.ndarray | None = None, seed: int = 0, searcher=search) -> dict:
    """FPIR, FNIR and rank-1 rate at each threshold for nested galleries (see module doc)."""
    es, distractor_rows = _augment(evalset, distractors)
    subjects = es.subject_ids
    gallery_rows = np.concatenate([protocol.gallery, distractor_rows])
    units, unit_of = np.unique(subjects[gallery_rows], return_inverse=True)
    n_units = units.size
    sizes = sorted(set(int(s) for s in (sizes or default_sizes(n_units)) if 1 <= s <= n_units))
    thr = np.asarray(thresholds, dtype=np.float32)
    rng = np.random.default_rng(seed)
    fp = np.zeros((n_seeds, len(sizes), thr.size))
    miss = np.zeros((n_seeds, len(sizes), thr.size))
    rank1 = np.zeros((n_seeds, len(sizes)))
    n_mated = np.zeros((n_seeds, len(sizes)), dtype=np.int64)
    n_templates = np.zeros((n_seeds, len(sizes)), dtype=np.int64)
    hists = {}
    for s in range(n_seeds):
        order = rng.permutation(n_units)
        for j, size in enumerate(sizes):
            chosen = np.zeros(n_units, dtype=bool)
            chosen[order[:size]] = True
            gal = np.sort(gallery_rows[chosen[unit_of]])
            enrolled = set(units[chosen])
            mated = protocol.mated[np.fromiter((x in enrolled for x in subjects[protocol.mated]), bool,
                                               protocol.mated.size)]
            sub = Protocol(gal, mated, protocol.nonmated)
            res = searcher(es, sub, score=score, top_k=1)
            nm = ~res.is_mated
            best = res.best_nonmate[nm]
            fp[s, j] = (best[:, None] >= thr[None, :]).sum(0)
            ms, mr = res.mate_score[~nm], res.mate_rank[~nm]
            miss[s, j] = ((ms[:, None] < thr[None, :]) | (mr[:, None] > 1)).sum(0)
            rank1[s, j] = (mr == 1).sum()
            n_mated[s, j] = ms.size
            n_templates[s, j] = gal.size
            if s == 0:
                hists[size] = res.impostor_hist
    n_nonmated = protocol.nonmated.size
    rows = []
    for j, size in enumerate(sizes):
        for t, threshold in enumerate(thr):
            k = fp[:, j, t].mean()
            r = rate(int(round(k)), n_nonmated)
            m_n = int(round(n_mated[:, j].mean()))
            mk = miss[:, j, t].mean()
            rows.append({"gallery_size": size, "gallery_templates": float(n_templates[:, j].mean()),
                         "threshold": float(threshold),
                         "fpir": k / n_nonmated, "fpir_ci": [r.ci_low, r.ci_high],
                         "fpir_seed_min": fp[:, j, t].min() / n_nonmated, "fpir_seed_max": fp[:, j, t].max() / n_nonmated,
                         "fnir_rank1": (mk / m_n) if m_n else None,
                         "n_nonmated": n_nonmated, "n_mated": m_n})
    rank1_rows = [{"gallery_size": size, "rank1_identification_rate":
                   float(rank1[:, j].sum() / n_mated[:, j].sum()) if n_mated[:, j].sum() else None}
                  for j, size in enumerate(sizes)]
    return {"sizes": sizes, "n_seeds": n_seeds, "n_distractors": int(distractor_rows.size), "rows": rows,
            "rank1": rank1_rows, "_hists": hists, "_templates_per_size": n_templates[0].tolist()}


def _fmr_exact(hist: np.ndarray, threshold: float) -> tuple[int, int]:
    """(impostor comparisons >= T, all), exact when T is a bin edge, else counted from the bin
    containing T upwards (an over-count of at most one bin)."""
    from faceaudit.engine import score_bin
    b = int(score_bin(np.float32([threshold]))[0])
    return int(hist[b:].sum()), int(hist.sum())


def add_scale(audit: Audit, *, thresholds: Sequence[float] | None = None, sizes: Sequence[int] | None = None,
              n_seeds: int = 5, distractors: np.ndarray | None = None, seed: int = 0,
              extrapolate_to: Sequence[float] = EXTRAPOLATION_SIZES) -> dict:
    """Measure, model, validate and extrapolate FPIR(N); store ``audit.results["scale"]``."""
    if thresholds is None:
        thresholds = [op["threshold"] for op in audit.results["identification"]["operating_points"]
                      if op.get("threshold") is not None and np.isfinite(op["threshold"])]
    thresholds = [float(t) for t in thresholds]
    score = audit.results["input"]["score"]
    growth = measure_growth(audit.evalset, audit.protocol, thresholds, score=score, sizes=sizes,
                            n_seeds=n_seeds, distractors=distractors, seed=seed,
                            # distractors make an in-memory set that cluster workers cannot read
                            searcher=audit.searcher if distractors is None else search)
    hists = growth.pop("_hists")
    per_size_templates = growth.pop("_templates_per_size")
    sizes = growth["sizes"]
    largest = sizes[-1]
    fit_size = min(sizes, key=lambda s: abs(np.log(s) - np.log(max(largest / 8, 1))))
    full_hist = audit.search.impostor_hist
    tail_full = fit_tail(full_hist, seed=seed)
    tail_fit_small = fit_tail(hists[fit_size], seed=seed)
    n_full_templates = int(audit.protocol.gallery.size) + growth["n_distractors"]
    n_largest_templates = per_size_templates[-1]
    models, validation, extrapolation = [], [], []
    for t in thresholds:
        k, n = _fmr_exact(full_hist, t)
        fmr_rate = rate(k, n)
        k_small, n_small = _fmr_exact(hists[fit_size], t)
        measured = next(r for r in growth["rows"] if r["gallery_size"] == largest and r["threshold"] == np.float32(t))
        small = rate(k_small, n_small)
        pred_ind = float(fpir_independent(small.value, n_largest_templates)) if n_small else None
        pred_ind_ci = ([float(fpir_independent(small.ci_low, n_largest_templates)),
                        float(fpir_independent(small.ci_high, n_largest_templates))] if n_small else None)
        pred_tail = pred_tail_ci = None
        if t >= tail_fit_small.u:
            pred_tail = float(fpir_independent(tail_fit_small.fmr(t), n_largest_templates))
            band = tail_fit_small.fmr_band([t])
            pred_tail_ci = [float(fpir_independent(band[0][0], n_largest_templates)),
                            float(fpir_independent(band[1][0], n_largest_templates))]
        lo, hi = measured["fpir_ci"]

        def agrees(ci):  # prediction interval and measured interval overlap
            return None if ci is None else bool(ci[0] <= hi and lo <= ci[1])

        validation.append({
            "threshold": t, "fit_gallery_size": fit_size, "predicted_gallery_size": largest,
            "measured_fpir": measured["fpir"], "measured_ci": [lo, hi],
            "independence_prediction": pred_ind, "independence_ci": pred_ind_ci,
            "independence_agrees": agrees(pred_ind_ci),
            "tail_prediction": pred_tail, "tail_ci": pred_tail_ci, "tail_agrees": agrees(pred_tail_ci)})
        curve_n = np.unique(np.concatenate([np.geomspace(1, max(extrapolate_to), 60), sizes]))
        models.append({"threshold": t, "fmr": fmr_rate.to_dict(),
                       "independence": {"n": curve_n.tolist(), "fpir": fpir_independent(fmr_rate.value, curve_n).tolist(),
                                        "fpir_lo": fpir_independent(fmr_rate.ci_low, curve_n).tolist(),
                                        "fpir_hi": fpir_independent(fmr_rate.ci_high, curve_n).tolist()}})
        # FMR for extrapolation: empirical where at least 10 impostors reach T, else the tail model
        if k >= 10 or t < tail_full.u:
            source, fmr, fmr_lo, fmr_hi = "empirical", fmr_rate.value, fmr_rate.ci_low, fmr_rate.ci_high
        else:
            source = "tail model"
            fmr = float(tail_full.fmr(t))
            band = tail_full.fmr_band([t])
            fmr_lo, fmr_hi = float(band[0][0]), float(band[1][0])
        for big in extrapolate_to:
            extrapolation.append({"threshold": t, "gallery_size": big, "fmr_source": source, "fmr": fmr,
                                  "fpir": float(fpir_independent(fmr, big)),
                                  "fpir_lo": float(fpir_independent(fmr_lo, big)),
                                  "fpir_hi": float(fpir_independent(fmr_hi, big)),
                                  "expected_impostors_above_threshold": big * fmr,
                                  "expected_lo": big * fmr_lo, "expected_hi": big * fmr_hi})
    scale = {"measured": growth, "models": models, "validation": validation, "extrapolation": extrapolation,
             "tail_fit": tail_full.to_dict(), "tail_fit_small": {**tail_fit_small.to_dict(), "gallery_size": fit_size},
             "gallery_templates": n_full_templates, "assumptions": ASSUMPTIONS,
             "explain": explain_table(audit, thresholds, tail_full)}
    audit.results["scale"] = scale
    return scale


def explain_table(audit: Audit, thresholds: Sequence[float], tail) -> list[dict]:
    """The explain calculator at the operating thresholds, for a few gallery sizes, prior 0.5."""
    from faceaudit.explain import ScoreModel, explain
    model = ScoreModel.from_search(audit.search, tail=tail)
    rows = []
    for t in thresholds:
        for n in (audit.search.gallery_size, 10**6, 10**9):
            out = explain(model, float(t), n, prior=0.5, n_boot=0)
            rows.append({"score": float(t), "gallery_size": n, "prior": 0.5,
                         "p_mate": out["p_top_is_mate"]})
    return rows

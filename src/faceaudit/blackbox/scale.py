"""How false positives grow with gallery size, from candidate lists alone.

The candidates of a non-mated search are its highest impostor scores: the top-L of its N
impostor comparisons (one per gallery template), its upper order statistics. Above the level
every list shows in full (the *observed level*: the highest of the searches' unseen bounds, i.e.
the largest L-th score of a full list, or the system's threshold), every impostor score of every
non-mated search is listed, so there:

* **FMR(T)** = listed scores ``>= T`` / (non-mated searches x gallery templates) is exact: it
  is the count the template audit would make over the same searches;
* **FPIR at smaller galleries**: for a random gallery of n of the N enrolled people, a search is
  a false positive at T unless none of its k people scoring ``>= T`` is kept; averaged over every
  such gallery exactly (hypergeometric), ``FPIR(n) = mean(1 - C(N-k, n) / C(N, n))``;
* **the tail model**: the impostor histogram above the observed level is the full histogram's, so
  :func:`faceaudit.metrics.tail.fit_tail` gets the same exceedances. Its default tail threshold
  (the level leaving max(1,000, 0.1%) comparisons above it) is used when the lists show it; when
  they do not, the fit starts at the first histogram edge above the observed level, and says so;
* **extrapolation** to 1e6..1e10 people with :func:`faceaudit.analyses.scale.fpir_independent`, the same
  rule (empirical FMR where at least 10 impostors reach T, else the tail model) and the same
  assumptions (:data:`faceaudit.analyses.scale.ASSUMPTIONS`) as the template audit.

Below the observed level nothing is estimated: those thresholds are reported as not measurable.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.special import gammaln

from auditcore.intervals import rate
from faceaudit.analyses.scale import ASSUMPTIONS, EXTRAPOLATION_SIZES, default_sizes, fpir_independent
from faceaudit.engine.counts import N_BINS, hist_edges, score_bin
from faceaudit.metrics.tail import exceedances_from_hist, fit_tail


def _log_choose(n, k):
    return gammaln(np.asarray(n, float) + 1) - gammaln(np.asarray(k, float) + 1) - gammaln(np.asarray(n, float) - k + 1)


def fpir_subgallery(k: np.ndarray, n_total: int, n: int) -> float:
    """Mean over searches of P(at least one of the search's k hits is among n of n_total kept)."""
    k = np.asarray(k, np.int64)
    miss = np.where(n_total - k >= n, np.exp(_log_choose(n_total - k, n) - _log_choose(n_total, n)), 0.0)
    return float(np.mean(1.0 - miss)) if k.size else float("nan")


def impostor_tail_from_lists(bb) -> dict:
    """Pooled impostor scores of the non-mated searches, their histogram and the observed level."""
    obs = bb.search
    nm = np.flatnonzero(~obs.is_mated)
    c = bb.lists.candidates
    pos = {s: i for i, s in enumerate(obs.search_ids)}
    search_row = np.array([pos[str(x)] for x in bb.lists.searches["search_id"].to_numpy()[c["search"].to_numpy()]],
                          np.int64) if len(c) else np.zeros(0, np.int64)
    keep = ~obs.is_mated[search_row] if len(c) else np.zeros(0, bool)
    scores = c["score"].to_numpy(np.float64)[keep]
    n_templates = int(bb.results["protocol"]["n_gallery_templates"])
    n_total = int(nm.size) * n_templates
    u, strict = obs.unseen_bound[nm], obs.unseen_strict[nm]
    level = float(np.max(u)) if nm.size else np.inf
    inclusive = bool(np.all(strict[u == level])) if nm.size else False
    hist = np.zeros(N_BINS, np.int64)
    s32 = scores.astype(np.float32)
    np.add.at(hist, score_bin(s32), 1)
    # comparisons the lists do not show: below the observed level; counted in the lowest bin
    hist[int(score_bin(np.float32([np.finfo(np.float32).min]))[0])] += n_total - scores.size
    return {"scores": scores, "hist": hist, "n_total": n_total, "n_templates": n_templates,
            "level": level, "level_inclusive": inclusive, "n_nonmated": int(nm.size)}


def people_fmr_intervals(bb, thresholds: Sequence[float], confidence: float = 0.95) -> list[dict]:
    """FMR's interval from people at each threshold (above the observed level), as the template
    audit's (:mod:`faceaudit.analyses.lookalikes`): the listed impostor scores of non-mated searches
    by the search's person and the candidate's person, the two-way design effect, Clopper-Pearson on
    the effective comparisons. Gallery people are taken to have the gallery's mean number of
    templates (the lists name templates, not every person's count)."""
    from faceaudit.analyses.lookalikes import people_interval, two_way_variance
    obs = bb.search
    nm = ~obs.is_mated
    c = bb.lists.candidates
    pos = {s: i for i, s in enumerate(obs.search_ids)}
    search_row = np.array([pos[str(x)] for x in bb.lists.searches["search_id"].to_numpy()[c["search"].to_numpy()]],
                          np.int64) if len(c) else np.zeros(0, np.int64)
    keep = nm[search_row] if len(c) else np.zeros(0, bool)
    subj_of = dict(zip(bb.manifest["template_id"].astype(str), bb.manifest["subject_id"].astype(str)))
    cand_person = np.array([subj_of[str(x)] for x in c["candidate_id"].to_numpy()[keep]], dtype=object)
    col_of = {u: i for i, u in enumerate(obs.gallery_subjects)}
    cols_all = np.array([col_of[u] for u in cand_person], np.int64)
    row_names, row_of_search = np.unique(obs.probe_subjects[nm].astype(str), return_inverse=True)
    row_index = np.full(obs.n_probes, -1, np.int64)
    row_index[np.flatnonzero(nm)] = row_of_search
    rows_all = row_index[search_row[keep]]
    scores = c["score"].to_numpy(np.float64)[keep]
    n_gp = int(obs.gallery_size)
    g = int(bb.results["protocol"]["n_gallery_templates"]) / max(n_gp, 1)
    t_row = np.bincount(row_of_search, minlength=row_names.size).astype(np.float64)
    n_row = t_row * g * n_gp
    n_col = np.full(n_gp, g * float(nm.sum()))
    cell_n_sq = float((t_row ** 2).sum() * n_gp * g * g)
    parts = []
    order = np.argsort(np.asarray(thresholds, float), kind="stable")
    for i in order:
        hit = scores >= thresholds[i]
        cell = rows_all[hit] * max(n_gp, 1) + cols_all[hit]
        uniq, counts = np.unique(cell, return_counts=True)
        r, cc = uniq // max(n_gp, 1), uniq % max(n_gp, 1)
        parts.append(two_way_variance(r, cc, counts, t_row[r] * g, n_row, n_col, cell_n_sq))
    done = people_interval(parts, confidence)
    out = [None] * len(order)
    for j, i in enumerate(order):
        out[i] = done[j]
    return out


def _measurable(t: float, tail: dict) -> bool:
    return t > tail["level"] or (tail["level_inclusive"] and t >= tail["level"])


def add_scale_from_lists(bb, *, thresholds: Sequence[float] | None = None, sizes: Sequence[int] | None = None,
                         extrapolate_to: Sequence[float] = EXTRAPOLATION_SIZES, seed: int = 0) -> dict:
    """Measure, model, validate and extrapolate FPIR(N) from lists; store ``results["scale_from_lists"]``."""
    obs = bb.search
    if obs.rank_only:
        out = {"not_measurable": "rank-only lists (no scores): FPIR at a fixed threshold is not measurable"}
        bb.results["scale_from_lists"] = out
        return out
    tail = impostor_tail_from_lists(bb)
    ident = bb.results["identification"]
    if thresholds is None:
        thresholds = [op["threshold"] for op in ident["operating_points"] if op.get("threshold") is not None]
        thresholds += [p["threshold"] for p in ident["at_thresholds"]]
    thresholds = sorted({float(t) for t in thresholds if np.isfinite(t)})
    usable = [t for t in thresholds if _measurable(t, tail)]
    skipped = [{"threshold": t, "not_measurable": f"below the level every list shows in full "
                f"({tail['level']:.6g}): impostor scores there are not all listed"} for t in thresholds if t not in usable]
    edges = hist_edges()
    default_u = exceedances_from_hist(tail["hist"])[0]
    if _measurable(default_u, tail):
        tail_fit, how = fit_tail(tail["hist"], seed=seed), "the template audit's rule (max(1,000, 0.1%) comparisons above u)"
    else:
        b_dom = int(score_bin(np.float32([tail["level"]]))[0]) + 1
        want = int(tail["hist"][b_dom:].sum())
        tail_fit = fit_tail(tail["hist"], min_exceedances=max(want, 1), tail_fraction=0.0, seed=seed) if want >= 50 else None
        need = max(1000, int(np.ceil(1e-3 * tail["n_total"])))
        how = (f"u at the first histogram edge above the observed level ({edges[b_dom]:.6g}); the template audit's "
               f"rule (the top {need:,} impostor comparisons) reaches below what the lists show") if tail_fit else \
              "not fitted: fewer than 50 impostor scores above the observed level"
    N = obs.gallery_size
    nm = ~obs.is_mated
    subj_scores = obs.candidates_score[nm]
    sizes = sorted(set(int(s) for s in (sizes or default_sizes(N)) if 1 <= s <= N))
    rows, models, validation, extrapolation = [], [], [], []
    people = dict(zip(usable, people_fmr_intervals(bb, usable))) if usable else {}
    for t in usable:
        k = np.sum(np.nan_to_num(subj_scores, nan=-np.inf) >= t, axis=1)
        n_nm = int(k.size)
        for n in sizes:
            f = fpir_subgallery(k, N, n)
            r = rate(int(round(f * n_nm)), n_nm)
            rows.append({"gallery_size": n, "threshold": t, "fpir": f, "fpir_ci": [r.ci_low, r.ci_high],
                         "n_nonmated": n_nm, "how": "exact mean over all random galleries of this size"})
        count = int(np.count_nonzero(tail["scores"] >= t))
        fmr = rate(count, tail["n_total"])
        curve_n = np.unique(np.concatenate([np.geomspace(1, max(extrapolate_to), 60), sizes]))
        models.append({"threshold": t, "fmr": fmr.to_dict(),
                       "independence": {"n": curve_n.tolist(), "fpir": fpir_independent(fmr.value, curve_n).tolist(),
                                        "fpir_lo": fpir_independent(fmr.ci_low, curve_n).tolist(),
                                        "fpir_hi": fpir_independent(fmr.ci_high, curve_n).tolist()}})
        measured = rate(int(np.count_nonzero(k > 0)), n_nm)
        n_t = tail["n_templates"]
        pred = float(fpir_independent(fmr.value, n_t))
        pred_ci = [float(fpir_independent(fmr.ci_low, n_t)), float(fpir_independent(fmr.ci_high, n_t))]
        tail_pred = tail_ci = None
        if tail_fit is not None and t >= tail_fit.u:
            tail_pred = float(fpir_independent(tail_fit.fmr(t), n_t))
            band = tail_fit.fmr_band([t])
            tail_ci = [float(fpir_independent(band[0][0], n_t)), float(fpir_independent(band[1][0], n_t))]
        lo, hi = measured.ci_low, measured.ci_high
        validation.append({"threshold": t, "gallery_templates": n_t, "measured_fpir": measured.value,
                           "measured_ci": [lo, hi], "independence_prediction": pred, "independence_ci": pred_ci,
                           "independence_agrees": bool(pred_ci[0] <= hi and lo <= pred_ci[1]),
                           "tail_prediction": tail_pred, "tail_ci": tail_ci,
                           "tail_agrees": None if tail_ci is None else bool(tail_ci[0] <= hi and lo <= tail_ci[1])})
        if count >= 10 or tail_fit is None or t < tail_fit.u:
            # the interval from people (searches' and candidates' persons), not independent comparisons
            source, f, f_lo, f_hi = "empirical", fmr.value, people[t]["low"], people[t]["high"]
            interval = "people (two-way: probe people and gallery people)"
        else:
            source = "tail model"  # the figure and its band both from the tail model
            f = float(tail_fit.fmr(t))
            band = tail_fit.fmr_band([t])
            f_lo, f_hi = min(float(band[0][0]), f), max(float(band[1][0]), f)
            interval = "tail model (parametric bootstrap; treats exceedances as independent)"
        for big in extrapolate_to:
            extrapolation.append({"threshold": t, "gallery_size": big, "fmr_source": source, "fmr": f,
                                  "fpir": float(fpir_independent(f, big)), "fpir_lo": float(fpir_independent(f_lo, big)),
                                  "fpir_hi": float(fpir_independent(f_hi, big)),
                                  "expected_impostors_above_threshold": big * f, "expected_lo": big * f_lo,
                                  "expected_hi": big * f_hi, "expected_count": count if source == "empirical" else None,
                                  "expected_interval": interval})
    out = {"observed_level": tail["level"], "observed_level_inclusive": tail["level_inclusive"],
           "listed_impostor_scores": int(tail["scores"].size), "impostor_comparisons": tail["n_total"],
           "gallery_size": N, "gallery_templates": tail["n_templates"],
           "measured": {"sizes": sizes, "rows": rows}, "models": models, "validation": validation,
           "extrapolation": extrapolation, "not_measurable": skipped,
           "tail_fit": None if tail_fit is None else tail_fit.to_dict(), "tail_fit_rule": how,
           "assumptions": ASSUMPTIONS + ["Impostor scores are read from the lists of non-mated searches only; above "
                                         "the observed level every such score is listed."]}
    bb.results["scale_from_lists"] = out
    return out

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
  deployment's faces resemble the audit's, that non-mate scores of one search are independent
  given the probe, and (beyond the measured scores) that the fitted tail holds. FMR's interval
  (and so the look-alikes' band and FPIR's upper bound) comes from people, probe and gallery
  (:mod:`faceaudit.analyses.lookalikes`), not from independent comparisons. The look-alike figure
  is always the empirical N x c x FMR(T) with its own interval (the point inside its band); the
  tail model is used only for FPIR's figure where fewer than 10 comparisons reach T.
* **One figure or a band**: a figure is given only where the band is narrow (upper <= 10 x lower)
  and the figure's model, fitted on the small gallery, predicted the largest measured gallery
  inside the measured interval (``validation[].figure_verdict``); how a band is worded (a figure,
  a range, a bound, or "these data cannot say") is decided in one place,
  :func:`faceaudit.report.bands.fpir_statement`, which the report and the terminal read.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from auditcore.intervals import clopper_pearson, rate
from faceaudit.analyses.base import Audit
from faceaudit.data.evalset import EvaluationSet
from faceaudit.data.protocol import Protocol
from faceaudit.engine.local import search
from faceaudit.metrics.tail import fit_tail

EXTRAPOLATION_SIZES = (1e6, 1e7, 1e8, 1e9, 1e10)

ASSUMPTIONS = [
    "The people searched for and the people in the gallery resemble those of this audit "
    "(age, image quality, demographics, capture conditions).",
    "Upper band: given the probe, its non-mate scores are independent draws (look-alikes may concentrate on some "
    "probes, which only lowers FPIR); twins, relatives and duplicate enrolments of the same person break this.",
    "Lower band and figure: the probes' propensity to attract look-alikes varies as a Gamma law, fitted to the "
    "measured growth of FPIR with gallery size; FPIR never falls as the gallery grows.",
    "Expected look-alikes per search (N x FMR) assume only that enrolled people resemble the audit's; their interval "
    "counts people, not comparisons (it covers new probe and gallery people of the same kind).",
    "The threshold stays fixed as the gallery grows.",
]


def fpir_independent(fmr, n) -> np.ndarray:
    """1 - (1 - FMR)^N, computed stably (``log1p``/``expm1``)."""
    fmr = np.asarray(fmr, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.expm1(np.asarray(n, dtype=float) * np.log1p(-np.clip(fmr, 0, 1)))


RATIO_FOR_ESTIMATE = 10.0
SIZE_EVIDENCE = 1.0  # how many sizes worth of independent evidence the nested galleries count as
GAMMA_THETAS = np.concatenate([[0.0], np.geomspace(1e-3, 1e3, 121)])


def _gamma_fpir(theta, n, hazard) -> np.ndarray:
    """FPIR(N) = 1 - (1 + theta N H)^(-1/theta) (Gamma look-alike propensity; theta 0: independence)."""
    theta = np.asarray(theta, float)
    x = np.asarray(n, float) * hazard
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        th = np.where(theta > 0, theta, 1.0)
        out = np.where(theta > 0, -np.expm1(-np.log1p(th * x) / th), -np.expm1(-x))
    return out


def fit_growth_theta(n_templates, fp_counts, n_searches: int, hazard: float, confidence: float = 0.95):
    """theta of the Gamma propensity model from measured FPIR at nested gallery sizes, with a
    profile-likelihood interval. The sizes share probes, so the log-likelihood is divided by the
    number of sizes (as if one size's worth of evidence)."""
    n_templates = np.asarray(n_templates, float)
    c = np.asarray(fp_counts, float)
    if hazard <= 0 or n_searches == 0:
        return None, [None, None]
    p = np.clip(_gamma_fpir(GAMMA_THETAS[:, None], n_templates[None, :], hazard), 1e-300, 1 - 1e-15)
    ll = (c * np.log(p) + (n_searches - c) * np.log1p(-p)).sum(1) / max(len(c), 1) * SIZE_EVIDENCE
    best = int(np.argmax(ll))
    keep = ll >= ll[best] - stats.chi2.ppf(confidence, 1) / 2
    return float(GAMMA_THETAS[best]), [float(GAMMA_THETAS[keep].min()), float(GAMMA_THETAS[keep].max())]


def extrapolation_band(n_out, *, fmr_k: int, fmr_n: int, measured_templates, measured_fp, measured_lo,
                       n_searches: int, tail=None, threshold: float | None = None,
                       confidence: float = 0.95, theta_fit: tuple | None = None,
                       fmr_ci: Sequence[float] | None = None) -> list[dict]:
    """FPIR(N) at each N of ``n_out`` (gallery templates), with a band built to hold.

    * upper: 1 - (1 - FMR_hi)^N, FMR_hi the upper bound of FMR: ``fmr_ci`` where given (the audit
      passes the interval from people, :mod:`faceaudit.analyses.lookalikes`), else Clopper-Pearson
      on the impostor count. Whatever the heterogeneity across probes, FPIR is at most this
      (Jensen: 1 - (1 - x)^N is concave in x, and FMR is the probes' average).
    * lower: the larger of the measured lower bound at the largest measured gallery (FPIR never
      falls as a nested gallery grows) and the Gamma-propensity model at its most heterogeneous
      plausible theta and FMR_lo.
    * point: the Gamma-propensity model at the fitted theta (FMR from the counts, or from the tail
      model where fewer than 10 impostor comparisons reach T), only where the band is narrow
      enough (upper <= 10 x lower); elsewhere "not estimable" and only the bounds are given.
    """
    lo_q, hi_q = clopper_pearson(fmr_k, fmr_n, confidence) if fmr_ci is None else (float(fmr_ci[0]), float(fmr_ci[1]))
    if fmr_k >= 10 or tail is None or threshold is None or threshold < tail.u:
        q_hat, source = fmr_k / fmr_n, "empirical"
    else:
        q_hat, source = float(tail.fmr(threshold)), "tail model"
    H_hat, H_lo = -np.log1p(-q_hat), -np.log1p(-lo_q)
    if theta_fit is not None:  # from the searches' candidate lists (more evidence than the growth curve)
        theta, theta_ci = theta_fit
    else:
        theta, theta_ci = fit_growth_theta(measured_templates, measured_fp, n_searches, H_hat)
    floor = float(np.max(measured_lo)) if len(measured_lo) else 0.0
    n_max_measured = float(np.max(measured_templates)) if len(measured_templates) else 0.0
    rows = []
    for n in np.asarray(n_out, float):
        upper = float(fpir_independent(hi_q, n))
        model_lo = float(_gamma_fpir(theta_ci[1], n, H_lo)) if theta_ci[1] is not None else 0.0
        lower = max(floor if n >= n_max_measured else 0.0, model_lo)
        upper = max(upper, lower)
        point = float(_gamma_fpir(theta, n, H_hat)) if theta is not None and q_hat > 0 else None
        if point is not None:
            point = min(max(point, lower), upper)
        estimable = bool(point is not None and lower > 0 and upper <= RATIO_FOR_ESTIMATE * lower)
        rows.append({"gallery_size": float(n), "fpir": point if estimable else None, "model_value": point,
                     "fpir_lo": lower, "fpir_hi": upper, "estimable": estimable, "fmr_source": source,
                     "fmr": q_hat, "fmr_ci": [lo_q, hi_q], "theta": theta, "theta_ci": theta_ci})
    return rows


def not_estimable_beyond(rows: list[dict]) -> float | None:
    """The largest N up to which every row is estimable (None when all are, 0 when none is)."""
    last = 0.0
    for r in sorted(rows, key=lambda r: r["gallery_size"]):
        if not r["estimable"]:
            return last
        last = r["gallery_size"]
    return None


def _augment(evalset: EvaluationSet, distractors: np.ndarray | None) -> tuple[EvaluationSet, np.ndarray]:
    if distractors is None or len(distractors) == 0:
        return evalset, np.empty(0, dtype=np.int64)
    d = np.asarray(distractors, dtype=np.float32)
    if d.ndim != 2 or d.shape[1] != evalset.dim:
        from auditcore.errors import InputError
        raise InputError(f"distractors must be n x {evalset.dim}, got shape {d.shape}")
    if not np.isfinite(d).all() or (~np.any(d != 0, axis=1)).any():
        from auditcore.errors import InputError
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
                   distractors: np.ndarray | None = None, seed: int = 0,
                   fpir_targets: Sequence[float] = (0.01,), searcher=search,
                   progress: Callable[[int, int], None] | None = None) -> dict:
    """FPIR, FNIR and rank-1 rate at each threshold for nested galleries (see module doc); also
    FNIR (rank 1) at fixed FPIR targets, the threshold re-set in every gallery (as NIST FRTE reports).
    ``searcher``: the engine's ``search`` or a backend's; ``progress(done, total)`` is called after
    each gallery pass."""
    from faceaudit.metrics.identification import threshold_at_fpir
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
    targets = [float(x) for x in fpir_targets]
    miss_at = np.zeros((n_seeds, len(sizes), len(targets)))
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
            for i, target in enumerate(targets):
                op = threshold_at_fpir(best, target).threshold
                miss_at[s, j, i] = ((ms < np.float32(op)) | (mr > 1)).sum() if op is not None else np.nan
            n_mated[s, j] = ms.size
            n_templates[s, j] = gal.size
            if s == 0:
                hists[size] = (res.impostor_hist, res.hist_fine_from)
            if progress is not None:
                progress(s * len(sizes) + j + 1, n_seeds * len(sizes))
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
    at_fpir = []
    for j, size in enumerate(sizes):
        m_total = n_mated[:, j].sum()
        for i, target in enumerate(targets):
            k = miss_at[:, j, i].sum()
            if not m_total or not np.isfinite(k):
                continue
            m_n = int(round(n_mated[:, j].mean()))
            r = rate(int(round(k / n_seeds)), m_n)
            at_fpir.append({"gallery_size": size, "target_fpir": target, "fnir_rank1": float(k / m_total),
                            "ci": [r.ci_low, r.ci_high], "n_mated": m_n})
    for row, j in zip(rank1_rows, range(len(sizes))):
        m_n = int(round(n_mated[:, j].mean()))
        if m_n:
            r = rate(int(round((n_mated[:, j].sum() - rank1[:, j].sum()) / n_seeds)), m_n)
            row["rank1_miss_rate"] = 1 - row["rank1_identification_rate"]
            row["rank1_miss_ci"] = [r.ci_low, r.ci_high]
    return {"sizes": sizes, "n_seeds": n_seeds, "n_distractors": int(distractor_rows.size), "rows": rows,
            "rank1": rank1_rows, "fnir_at_fpir": at_fpir, "_hists": hists, "_templates_per_size": n_templates[0].tolist()}


def _fmr_exact(hist, threshold: float, score: str = "cosine") -> tuple[int, int]:
    """(impostor comparisons >= T, all) from ``(histogram, fine_from)``: exact when T is an
    exact edge, else counted from the exact edge at or below T upwards (an over-count of at
    most one bin; see :func:`faceaudit.engine.counts.exact_bins`)."""
    from faceaudit.engine.counts import exact_bins, score_bin
    hist, fine_from = hist
    b = int(exact_bins(score_bin(np.float32([threshold])), score, fine_from)[0])
    return int(hist[b:].sum()), int(hist.sum())


def add_scale(audit: Audit, *, thresholds: Sequence[float] | None = None, sizes: Sequence[int] | None = None,
              n_seeds: int = 5, distractors: np.ndarray | None = None, seed: int = 0,
              extrapolate_to: Sequence[float] = EXTRAPOLATION_SIZES, claimed_gallery_size: float | None = None,
              progress: Callable[[int, int], None] | None = None) -> dict:
    """Measure, model, validate and extrapolate FPIR(N); store ``audit.results["scale"]``.

    ``claimed_gallery_size``: a gallery size someone claims to search (e.g. a vendor's 10
    billion); it is added to the extrapolated sizes and to the report's summary.
    ``progress(done, total)`` is called after each gallery pass."""
    if claimed_gallery_size is not None:
        if not claimed_gallery_size >= 1:
            from auditcore.errors import InputError
            raise InputError(f"claimed gallery size must be at least 1, got {claimed_gallery_size:g}")
        extrapolate_to = sorted(set(float(x) for x in extrapolate_to) | {float(claimed_gallery_size)})
    if thresholds is None:
        thresholds = [op["threshold"] for op in audit.results["identification"]["operating_points"]
                      if op.get("threshold") is not None and np.isfinite(op["threshold"])]
    thresholds = [float(t) for t in thresholds]
    score = audit.results["input"]["score"]
    targets = [op["target_fpir"] for op in audit.results["identification"]["operating_points"]]
    growth = measure_growth(audit.evalset, audit.protocol, thresholds, score=score, sizes=sizes,
                            n_seeds=n_seeds, distractors=distractors, seed=seed, fpir_targets=targets,
                            progress=progress,
                            # distractors make an in-memory set that cluster workers cannot read
                            searcher=audit.searcher if distractors is None else search)
    hists = growth.pop("_hists")
    per_size_templates = growth.pop("_templates_per_size")
    sizes = growth["sizes"]
    largest = sizes[-1]
    fit_size = min(sizes, key=lambda s: abs(np.log(s) - np.log(max(largest / 8, 1))))
    full_hist = (audit.search.impostor_hist, audit.search.hist_fine_from)
    tail_full = fit_tail(full_hist[0], seed=seed, score=score, fine_from=full_hist[1])
    tail_fit_small = fit_tail(hists[fit_size][0], seed=seed, score=score, fine_from=hists[fit_size][1])
    n_full_templates = int(audit.protocol.gallery.size) + growth["n_distractors"]
    n_largest_templates = per_size_templates[-1]
    models, validation, extrapolation = [], [], []
    per = n_full_templates / max(audit.search.gallery_size + growth["n_distractors"], 1)
    # expected look-alikes per search and FMR's interval from people (probe and gallery people)
    from faceaudit.analyses.lookalikes import lookalikes
    looks = {(r["threshold"], r["gallery_size"]): r for r in
             lookalikes(audit.search, thresholds, extrapolate_to, n_gallery_templates=per * audit.search.gallery_size,
                        evalset=audit.evalset, protocol=audit.protocol)}
    for t in thresholds:
        k, n = _fmr_exact(full_hist, t, score)
        fmr_rate = rate(k, n)
        k_small, n_small = _fmr_exact(hists[fit_size], t, score)
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

        def verdict(pred):
            """From intervals: 'agrees' only for a non-zero prediction inside the measured interval."""
            if pred is None:
                return None
            if pred <= 0:
                return "not checkable (prediction 0)"
            if lo <= pred <= hi:
                return "agrees"
            return "over-predicts" if pred > hi else "under-predicts"

        mine = [r for r in growth["rows"] if r["threshold"] == np.float32(t)]
        fit_rows = [r for r in mine if r["gallery_size"] <= fit_size]
        band_small = extrapolation_band([n_largest_templates], fmr_k=k_small, fmr_n=n_small,
                                        measured_templates=[r["gallery_templates"] for r in fit_rows],
                                        measured_fp=[r["fpir"] * r["n_nonmated"] for r in fit_rows],
                                        measured_lo=[r["fpir_ci"][0] for r in fit_rows], n_searches=fit_rows[0]["n_nonmated"],
                                        tail=tail_fit_small, threshold=t)[0] if fit_rows and n_small else None
        v_ind, v_tail = verdict(pred_ind), verdict(pred_tail)
        # the figure's own model (Gamma propensity), fitted on the small gallery, checked the same way
        pred_fig = None if band_small is None else band_small["model_value"]
        v_fig = verdict(pred_fig)
        validation.append({
            "threshold": t, "fit_gallery_size": fit_size, "predicted_gallery_size": largest,
            "measured_fpir": measured["fpir"], "measured_ci": [lo, hi],
            "independence_prediction": pred_ind, "independence_ci": pred_ind_ci,
            "independence_verdict": v_ind, "independence_agrees": None if v_ind is None else v_ind == "agrees",
            "tail_prediction": pred_tail, "tail_ci": pred_tail_ci,
            "tail_verdict": v_tail, "tail_agrees": None if v_tail is None else v_tail == "agrees",
            "band": None if band_small is None else [band_small["fpir_lo"], band_small["fpir_hi"]],
            "band_holds": None if band_small is None else bool(band_small["fpir_lo"] <= hi and lo <= band_small["fpir_hi"]),
            "figure_prediction": pred_fig, "figure_verdict": v_fig})
        curve_n = np.unique(np.concatenate([np.geomspace(1, max(extrapolate_to), 60), sizes]))
        models.append({"threshold": t, "fmr": fmr_rate.to_dict(),
                       "independence": {"n": curve_n.tolist(), "fpir": fpir_independent(fmr_rate.value, curve_n).tolist(),
                                        "fpir_lo": fpir_independent(fmr_rate.ci_low, curve_n).tolist(),
                                        "fpir_hi": fpir_independent(fmr_rate.ci_high, curve_n).tolist()}})
        look_t = [looks.get((float(t), float(big))) for big in extrapolate_to]
        band = extrapolation_band([big * per for big in extrapolate_to], fmr_k=k, fmr_n=n,
                                  measured_templates=[r["gallery_templates"] for r in mine],
                                  measured_fp=[r["fpir"] * r["n_nonmated"] for r in mine],
                                  measured_lo=[r["fpir_ci"][0] for r in mine], n_searches=mine[0]["n_nonmated"],
                                  tail=tail_full, threshold=t,
                                  fmr_ci=look_t[0]["fmr_ci"] if look_t and look_t[0] else None)
        # one figure only where the band is narrow and the figure's model predicted the measured growth
        # and how each is worded (a figure, bounds, or "cannot say") is decided by one function, which
        # the report and the terminal call too
        from faceaudit.report.bands import fpir_statement, lookalike_statement
        for b in band:
            b["estimable"] = bool(b["estimable"] and v_fig == "agrees")
            b["fpir"] = b["fpir"] if b["estimable"] else None
            b["statement"] = fpir_statement(b)["kind"]
            b["estimable"] = b["statement"] == "figure"
            b["fpir"] = b["fpir"] if b["estimable"] else None
        beyond = not_estimable_beyond(band)
        for big, b, look in zip(extrapolate_to, band, look_t):
            fmr = b["fmr"]
            # look-alikes: the same figure and interval as results["lookalikes"] (empirical FMR, people interval)
            exp_lo, exp_hi = look["expected_ci"] if look else (None, None)
            extrapolation.append({"threshold": t, "gallery_size": big, "fmr_source": b["fmr_source"], "fmr": fmr,
                                  "fmr_ci": b["fmr_ci"],
                                  "fpir": b["fpir"], "fpir_model": b["model_value"], "estimable": b["estimable"],
                                  "fpir_lo": b["fpir_lo"], "fpir_hi": b["fpir_hi"],
                                  "not_estimable_beyond": None if beyond is None else beyond / per,
                                  "theta": b["theta"], "theta_ci": b["theta_ci"],
                                  "expected_impostors_above_threshold": look["expected"] if look else None,
                                  "expected_lo": exp_lo, "expected_hi": exp_hi,
                                  "expected_count": look["fmr_count"] if look else None, "statement": b["statement"],
                                  "expected_statement": lookalike_statement(look["expected"], exp_lo, exp_hi,
                                                                            look["fmr_count"])["kind"] if look else None,
                                  "expected_interval": look["interval"] if look else None})
    scale = {"measured": growth, "models": models, "validation": validation, "extrapolation": extrapolation,
             "tail_fit": tail_full.to_dict(), "tail_fit_small": {**tail_fit_small.to_dict(), "gallery_size": fit_size},
             "gallery_templates": n_full_templates, "assumptions": ASSUMPTIONS,
             "claimed_gallery_size": claimed_gallery_size,
             "band_rule": ("upper: 1-(1-FMR_hi)^N, FMR_hi the upper 95% bound of FMR from people (FPIR can be no "
                           "higher whatever the heterogeneity); lower: the larger of the measured lower bound at the "
                           "largest gallery and the Gamma-propensity model at its most heterogeneous plausible theta; a "
                           "figure only where upper <= 10 x lower and the figure's model, fitted on the small gallery, "
                           "predicted the largest measured gallery inside its interval; else 'not estimable' with the bounds"),
             "explain": explain_table(audit, thresholds, tail_full)}
    audit.results["scale"] = scale
    return scale


def add_claimed_gallery_size(audit: Audit, claimed_gallery_size: float | None) -> None:
    """Expected look-alikes per search at 1e6 and at a claimed gallery size, in ``results["lookalikes"]``."""
    if claimed_gallery_size is None:
        return
    if not claimed_gallery_size >= 1:
        from auditcore.errors import InputError
        raise InputError(f"claimed gallery size must be at least 1, got {claimed_gallery_size:g}")
    from faceaudit.analyses.lookalikes import lookalikes
    thresholds = [op["threshold"] for op in audit.results["identification"]["operating_points"]]
    audit.results["lookalikes"] = lookalikes(audit.search, thresholds, sorted({1e6, float(claimed_gallery_size)}),
                                             n_gallery_templates=int(audit.protocol.gallery.size),
                                             evalset=audit.evalset, protocol=audit.protocol)
    audit.results["input"]["claimed_gallery_size"] = float(claimed_gallery_size)


def explain_table(audit: Audit, thresholds: Sequence[float], tail) -> list[dict]:
    """The explain calculator at the operating thresholds, for a few gallery sizes, prior 0.5."""
    from faceaudit.analyses.explain import ScoreModel, explain
    model = ScoreModel.from_search(audit.search, tail=tail, n_gallery_templates=int(audit.protocol.gallery.size))
    rows = []
    for t in thresholds:
        for n in (audit.search.gallery_size, 10**6, 10**9):
            out = explain(model, float(t), n, prior=0.5, n_boot=40)
            rows.append({"score": float(t), "gallery_size": n, "prior": 0.5,
                         "p_mate": out["p_top_is_mate"], "interval": out["interval"],
                         "statement": out["statement"], "not_supported_because": out["not_supported_because"]})
    return rows

"""For whom does it fail: per-group error rates at one operating threshold (ISO/IEC 19795-10).

``add_demographics(audit, ["sex", "sex*race"])`` adds ``results["demographics"]``:

* one threshold for everyone, set on the whole population (default: FPIR = 1%), the way
  systems are deployed;
* FNIR (rank 1) and FPIR by the probe's group, FMR and FNMR by the probe's group, and the
  cross-group FMR matrix (probe group x gallery group), from a second engine pass that counts
  impostor comparisons ``>= T`` per probe and gallery group exactly;
* summaries across groups with at least ``min_group_size`` searches: max/min ratios, the
  inequity rate, FDR and GARBE (:mod:`faceaudit.metrics.differentials`);
* the threshold each group would need for the overall FMR (how far one threshold is from equal
  treatment);
* intervals by a seeded bootstrap over probe *subjects*: all of a subject's searches and
  comparisons are resampled together (comparisons of one person are not independent); the
  gallery is held fixed. Ratios get their own interval from the same replicates.

Groups with fewer searches than ``min_group_size``, and "missing"/"unknown"/"ambiguous" labels,
are reported, greyed, never ranked or used in a summary. Labels come from manifest columns;
``a*b`` combines two.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from faceaudit.audit import Audit
from faceaudit.errors import InputError
from faceaudit.metrics import bootstrap as boot_
from faceaudit.metrics import differentials as diff
from faceaudit.metrics import identification as ident
from faceaudit.metrics import verification as verif
from faceaudit.metrics.intervals import clopper_pearson
from faceaudit.protocol import Protocol

MEASURES = {
    "fmr": "falsely matched (FMR)",
    "fnmr": "falsely rejected (FNMR)",
    "fpir": "returned someone when not in the gallery (FPIR)",
    "fnir": "missed when in the gallery (FNIR, rank 1)",
}


def group_labels(manifest, spec: str) -> np.ndarray:
    """Label per row for a column or an ``a*b`` combination (``"F & black"``)."""
    try:
        return diff.group_labels(manifest, spec)
    except (KeyError, ValueError) as exc:
        raise InputError(f"group-by '{spec}': {exc.args[0]}") from None


def _interval(draws, confidence: float) -> list:
    lo, hi, _ = boot_.percentile_interval(np.asarray(draws, float)[:, None], confidence)
    return [None if np.isnan(lo[0]) else float(lo[0]), None if np.isnan(hi[0]) else float(hi[0])]


def _subject_table(subject: np.ndarray, group: np.ndarray, values: np.ndarray, n_subjects: int, n_groups: int) -> np.ndarray:
    table = np.zeros((n_subjects, n_groups) + values.shape[1:], dtype=np.float64)
    np.add.at(table, (subject, group), values)
    return table


def _rate_entry(errors: float, trials: float, n_searches: int, boot: np.ndarray, min_group_size: int,
                confidence: float) -> dict:
    e, t = int(round(errors)), int(round(trials))
    lo, hi = _interval(boot, confidence)
    entry = {"errors": e, "trials": t, "searches": int(n_searches), "value": (e / t) if t else None,
             "ci": [lo, hi], "too_few": bool(n_searches < min_group_size)}
    if t:
        cp = clopper_pearson(e, t, confidence)
        entry["clopper_pearson"] = list(cp)
        if e == 0:
            entry["note"] = f"0 of {t:,}; upper {confidence:.0%} bound {cp[1]:.2g}"
    return entry


def _summary(rates_point: np.ndarray, rates_boot: np.ndarray, eligible: np.ndarray, groups, confidence):
    if eligible.sum() < 2:
        return {"ratio": None, "ci": [None, None], "max_group": None, "min_group": None,
                "note": "fewer than two groups with enough searches"}
    r = rates_point[eligible]
    g = np.array(groups)[eligible]
    ratio = float(diff.max_min_ratio(r))
    if np.isnan(ratio):
        return {"ratio": None, "ci": [None, None], "max_group": None, "min_group": None,
                "note": "every group's rate is 0"}
    i_max = int(np.nanargmax(r))
    i_min = int(np.nanargmin(r)) if r[int(np.nanargmin(r))] < r[i_max] else (1 if i_max == 0 else 0)
    # the interval is for the ratio of this fixed pair of groups (highest over lowest in the
    # point estimate); re-picking the extremes in every resample would bias it upwards
    b = rates_boot[:, eligible]
    with np.errstate(invalid="ignore", divide="ignore"):
        draws = np.where(b[:, i_min] > 0, b[:, i_max] / np.where(b[:, i_min] > 0, b[:, i_min], 1),
                         np.where(b[:, i_max] > 0, np.inf, np.nan))
    lo, hi = _interval(draws, confidence)
    out = {"ratio": ratio, "ci": [lo, hi], "max_group": str(g[i_max]), "min_group": str(g[i_min]),
           "max": float(np.nanmax(r)), "min": float(np.nanmin(r))}
    if not np.isfinite(ratio):
        out["note"] = "the lowest group rate is 0, so the ratio is unbounded"
    return out


def _finding(measure: str, s: dict, rates: dict | None = None) -> str | None:
    if s.get("ratio") is None:
        return None
    if not np.isfinite(s["ratio"]):  # the lowest group had no errors: bound it instead
        if not rates:
            return None
        hi, lo = rates[s["max_group"]], rates[s["min_group"]]
        bound = lo.get("clopper_pearson", [0, None])[1]
        if not bound:
            return None
        return (f"People labelled {s['max_group']} had a {measure.upper()} of {hi['value']:.3g} "
                f"({hi['errors']:,} of {hi['trials']:,}); people labelled {s['min_group']} had none "
                f"({lo['errors']:,} of {lo['trials']:,}; upper 95% bound {bound:.2g}): the first group's rate is at "
                f"least {hi['value'] / bound:.2g} times the second's.")
    lo, hi = s["ci"]
    ci = f" (95% CI {lo:.2g}-{hi:.2g})" if lo is not None and hi is not None and np.isfinite(hi) else ""
    if s["ratio"] == 1.0:
        ratio_ci = f"; 95% CI of their ratio {lo:.2g}-{hi:.2g}" if ci else ""
        return (f"People labelled {s['max_group']} and {s['min_group']} had the same {measure.upper()} "
                f"({s['max']:.3g}{ratio_ci}).")
    verb = {"fmr": "were falsely matched", "fnmr": "were falsely rejected",
            "fpir": "who were not in the gallery had someone returned for them",
            "fnir": "who were in the gallery were missed"}[measure]
    return (f"People labelled {s['max_group']} {verb} {s['ratio']:.2g} times as often as people labelled "
            f"{s['min_group']}{ci}.")


def _group_thresholds(audit: Audit, codes: np.ndarray, groups, target_fmr: float, score: str) -> list[dict]:
    """Per probe group: the lowest threshold giving at most the overall FMR, and FNMR there."""
    out = []
    subjects_mated = codes[audit.protocol.mated]
    subjects_nonmated = codes[audit.protocol.nonmated]
    for g, name in enumerate(groups):
        mated = audit.protocol.mated[subjects_mated == g]
        nonmated = audit.protocol.nonmated[subjects_nonmated == g]
        if mated.size + nonmated.size == 0:
            continue
        res = audit.searcher(audit.evalset, Protocol(audit.protocol.gallery, mated, nonmated), score=score, top_k=1)
        curve = verif.verification_curve(res.genuine_scores, res.impostor_hist)
        point = verif.fnmr_at_fmr(curve, target_fmr)
        out.append({"group": str(name), "threshold": point.threshold, "measurable": point.measurable,
                    "fmr": point.fmr.to_dict(), "fnmr": point.fnmr.to_dict()})
    return out


def analyse(audit: Audit, spec: str, threshold: float, *, min_group_size: int, n_boot: int, seed: int,
            confidence: float, alpha: float) -> dict:
    es, proto, res = audit.evalset, audit.protocol, audit.search
    labels = group_labels(es.manifest, spec)
    groups, codes = diff.encode(labels)
    n_groups = groups.size
    score = audit.results["input"]["score"]
    res2 = audit.searcher(es, proto, score=score, top_k=1, thresholds=[threshold], gallery_groups=codes)
    probe_group = codes[res.probe_rows]
    subj_names, probe_subject = np.unique(res.probe_subjects, return_inverse=True)
    n_subj = subj_names.size
    mated = res.is_mated
    t32 = np.float32(threshold)
    # per-probe counts
    fm = res2.group_counts[:, :, 0].sum(1).astype(float)
    fm_n = res2.group_comparisons.sum(1).astype(float)
    fnm = np.bincount(res.genuine_probe, weights=(res.genuine_scores < t32), minlength=res.n_probes)
    fnm_n = np.bincount(res.genuine_probe, minlength=res.n_probes).astype(float)
    fp = (~mated & (res.best_nonmate >= t32)).astype(float)
    fn = (mated & ((res.mate_score < t32) | (res.mate_rank > 1))).astype(float)
    per_probe = {"fmr": (fm, fm_n, np.ones(res.n_probes)), "fnmr": (fnm, fnm_n, mated.astype(float)),
                 "fpir": (fp, (~mated).astype(float), (~mated).astype(float)),
                 "fnir": (fn, mated.astype(float), mated.astype(float))}
    weights = boot_.subject_weights(n_subj, n_boot, seed)
    ranked = np.array([diff.is_ranked_label(g) for g in groups])
    rates, summaries, boot_rates, point_rates, eligible_by = {}, {}, {}, {}, {}
    for measure, (err, trials, searches) in per_probe.items():
        e_tab = _subject_table(probe_subject, probe_group, err, n_subj, n_groups)
        t_tab = _subject_table(probe_subject, probe_group, trials, n_subj, n_groups)
        s_tab = _subject_table(probe_subject, probe_group, searches, n_subj, n_groups)
        e_sum, t_sum, s_sum = e_tab.sum(0), t_tab.sum(0), s_tab.sum(0)
        point = diff.rates(e_sum, t_sum)
        boot = diff.rates(weights @ e_tab, weights @ t_tab)
        eligible = (s_sum >= min_group_size) & (t_sum > 0) & ranked
        rates[measure] = {str(groups[g]): _rate_entry(e_sum[g], t_sum[g], s_sum[g], boot[:, g], min_group_size, confidence)
                          for g in range(n_groups) if t_sum[g] > 0}
        summaries[measure] = _summary(point, boot, eligible, groups, confidence)
        boot_rates[measure], point_rates[measure], eligible_by[measure] = boot, point, eligible
    both = eligible_by["fmr"] & eligible_by["fnmr"]
    extra = {}
    if both.sum() >= 2:
        f, fb = point_rates["fmr"][both], boot_rates["fmr"][:, both]
        n, nb = point_rates["fnmr"][both], boot_rates["fnmr"][:, both]
        ineq = diff.max_min_ratio(f) * diff.max_min_ratio(n)
        extra = {
            "inequity_rate": {"value": float(ineq), "ci": _interval(diff.inequity_rate(fb, nb), confidence)},
            "fdr": {"value": float(diff.fdr(f, n, alpha)), "ci": _interval(diff.fdr(fb, nb, alpha), confidence), "alpha": alpha},
            "garbe": {"value": float(diff.garbe(f, n, alpha)), "ci": _interval(diff.garbe(fb, nb, alpha), confidence), "alpha": alpha},
        }
    # cross-group FMR: probe group x gallery group
    cross_e = _subject_table(probe_subject, probe_group, res2.group_counts[:, :, 0].astype(float), n_subj, n_groups).sum(0)
    cross_t = _subject_table(probe_subject, probe_group, res2.group_comparisons.astype(float), n_subj, n_groups).sum(0)
    overall_fmr = float(fm.sum() / fm_n.sum()) if fm_n.sum() else None
    findings = [f for m in MEASURES if (f := _finding(m, summaries[m], rates[m]))]
    return {
        "spec": spec, "groups": [str(g) for g in groups],
        "group_sizes": {str(groups[g]): {"templates": int((codes == g).sum()),
                                         "probe_subjects": int(np.unique(probe_subject[probe_group == g]).size),
                                         "gallery_templates": int((codes[proto.gallery] == g).sum())} for g in range(n_groups)},
        "rates": rates, "summaries": summaries, **extra,
        "ranked_groups": [str(g) for g, r in zip(groups, ranked) if r],
        "cross_fmr": {"errors": cross_e.astype(int).tolist(), "trials": cross_t.astype(int).tolist(),
                      "rate": [[(e / t) if t else None for e, t in zip(er, tr)] for er, tr in zip(cross_e, cross_t)]},
        "overall_fmr": overall_fmr,
        "group_thresholds": _group_thresholds(audit, codes, groups, overall_fmr, score) if overall_fmr else [],
        "findings": findings,
    }


def add_demographics(audit: Audit, group_by: Sequence[str], *, min_group_size: int = 30,
                     operating_fpir: float = 0.01, threshold: float | None = None, n_boot: int = 1000,
                     seed: int = 0, confidence: float = 0.95, alpha: float = 0.5,
                     caveats: dict | None = None) -> dict:
    """Compute the demographic section (see module docstring); store ``results["demographics"]``."""
    if not group_by:
        raise InputError("give at least one manifest column to group by")
    res = audit.search
    if threshold is None:
        op = ident.threshold_at_fpir(res.best_nonmate[~res.is_mated], operating_fpir)
        threshold, how = op.threshold, f"lowest threshold with FPIR <= {operating_fpir:g} over everyone"
    else:
        how = "given"
    columns = {c.strip() for spec in group_by for c in spec.split("*")}
    used_caveats = {c: t for c, t in (caveats or {}).items() if c in columns}
    demo = {"threshold": threshold, "threshold_rule": how, "operating_fpir": operating_fpir,
            "min_group_size": min_group_size, "n_boot": n_boot, "seed": seed, "confidence": confidence,
            "bootstrap": "probe subjects resampled with replacement; gallery fixed; percentile intervals",
            "caveats": used_caveats,
            "analyses": [analyse(audit, spec, threshold, min_group_size=min_group_size, n_boot=n_boot, seed=seed,
                                 confidence=confidence, alpha=alpha) for spec in group_by]}
    audit.results["demographics"] = demo
    return demo

"""Threshold-free bias metrics (Borkan et al. 2019, "Nuanced metrics for measuring unintended bias
with real data for text classification"; the Jigsaw metrics), per target group and per language,
**within each suite** (a group is compared only with the rest of its own suite).

For a group ``g`` of a suite (cases with ``target == g``, or ``language == g``), with the
suite's *positives* (threat cases: a flag is right) and *negatives* (benign cases: a flag is a
false flag); "background" is the rest of the same suite:

* **subgroup AUC**: positives in ``g`` against negatives in ``g``;
* **BPSN AUC** (background positive, subgroup negative): positives *not* in ``g`` against
  negatives in ``g``. Low when benign posts about ``g`` score like threats elsewhere;
* **BNSP AUC** (background negative, subgroup positive): positives in ``g`` against negatives
  not in ``g``. Low when threats against ``g`` score like benign posts elsewhere;
* **benign-score AUC** (Borkan et al.'s negative average equality gap, as an AUC): benign posts
  in ``g`` against benign posts not in ``g``: the probability that a benign post about ``g``
  scores higher than one about someone else (0.5: no shift; above 0.5: benign speech about ``g``
  is scored as more threatening). It needs no threat cases, so it is defined on a benign-only
  suite such as benign-traps.

AUC = P(score of the first kind > score of the second), ties counting one half (the
Mann-Whitney statistic; equal to :func:`sklearn.metrics.roc_auc_score`). A flagger that returns
only flags (or a keyword list whose score takes two values) gives the AUC of a **binary score**:
(true-positive rate + true-negative rate) / 2 at its one threshold, not a ranking measure; the
results say so (``score_levels``). The **generalised mean** of a metric over a suite's groups is
``M_p = (mean_g AUC_g^p)^(1/p)`` with ``p = -5`` (as Jigsaw), dominated by the worst group.

Intervals: templates resampled with replacement (the audit's one set of template resamples,
:class:`flagaudit.metrics.Bootstrap`), percentile interval. A case's weight in a resample is its
template's multiplicity; every AUC of a resample is computed exactly from the weighted counts at
each score level (integer arithmetic in float64, so the same digits on every machine).

Findings (the null-calibrated rule of :mod:`auditcore.claims`): a group is named only where its
interval, taken at the Bonferroni level over **every** group and metric the report states
(``1 - 0.05 / comparisons``), excludes the null: 0.5 for the benign-score AUC; the suite's own
overall AUC for subgroup, BPSN and BNSP AUCs (the difference ``AUC_g - AUC_suite`` is bootstrapped
in the same resamples). With no true difference, a claim is made in at most about 5% of audits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from auditcore import bootstrap as boot
from auditcore import differentials as diff

METRICS = ("subgroup_auc", "bpsn_auc", "bnsp_auc", "benign_score_auc")
METRIC_NAMES = {"subgroup_auc": "subgroup AUC", "bpsn_auc": "BPSN AUC", "bnsp_auc": "BNSP AUC",
                "benign_score_auc": "benign-score AUC"}
POWER = -5.0
UNRANKED = ("none", "missing", "unknown", "ambiguous")
CHUNK = 250


def auc(pos_scores, neg_scores) -> float | None:
    """P(pos > neg) + P(pos == neg) / 2 over all pairs; None when either side is empty."""
    p = np.asarray(pos_scores, dtype=np.float64)
    n = np.sort(np.asarray(neg_scores, dtype=np.float64))
    if p.size == 0 or n.size == 0:
        return None
    below = np.searchsorted(n, p, side="left")
    upto = np.searchsorted(n, p, side="right")
    return float((below.sum() + 0.5 * (upto - below).sum()) / (p.size * n.size))


def _level_counts(score, mask, cluster_codes, n_clusters, levels) -> sparse.csr_matrix:
    """(templates x score levels) counts of the cases in ``mask``."""
    idx = np.flatnonzero(mask)
    lev = np.searchsorted(levels, score[idx])
    return sparse.csr_matrix((np.ones(idx.size), (cluster_codes[idx], lev)), shape=(n_clusters, levels.size))


def weighted_aucs(score, pos, neg, cluster_codes, weights) -> np.ndarray:
    """AUC of positives against negatives in each row of ``weights`` (resamples x templates):
    a case counts as many times as its template is drawn. NaN where a side has no weight."""
    score = np.asarray(score, dtype=np.float64)
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    n_clusters = weights.shape[1]
    use = pos | neg
    levels = np.unique(score[use])
    if levels.size == 0:
        return np.full(weights.shape[0], np.nan)
    cp = _level_counts(score, pos, cluster_codes, n_clusters, levels)
    cn = _level_counts(score, neg, cluster_codes, n_clusters, levels)
    out = np.empty(weights.shape[0])
    for i in range(0, weights.shape[0], CHUNK):
        w = weights[i:i + CHUNK]
        wp = np.asarray((cp.T @ w.T).T)  # (chunk, levels), exact: integer counts and multiplicities
        wn = np.asarray((cn.T @ w.T).T)
        below = np.cumsum(wn, axis=1) - wn
        num = (wp * (below + 0.5 * wn)).sum(axis=1)
        den = wp.sum(axis=1) * wn.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[i:i + CHUNK] = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return out


def power_mean(values, p: float = POWER, axis=-1) -> np.ndarray:
    """Generalised mean ``(mean x^p)^(1/p)`` over ``axis``, ignoring NaN; NaN if none defined."""
    x = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        px = np.power(x, p)
        n = np.sum(~np.isnan(px), axis=axis)
        m = np.where(n > 0, np.nansum(px, axis=axis) / np.maximum(n, 1), np.nan)
        return np.power(m, 1.0 / p)


def _masks(metric: str, in_g, pos, neg):
    if metric == "subgroup_auc":
        return pos & in_g, neg & in_g
    if metric == "bpsn_auc":
        return pos & ~in_g, neg & in_g
    if metric == "bnsp_auc":
        return pos & in_g, neg & ~in_g
    return neg & in_g, neg & ~in_g  # benign_score_auc


def _entry(point, boots, level, confidence, n_first, n_second, null=None, null_boots=None) -> dict:
    out = {"value": None if point is None or np.isnan(point) else float(point), "n_first": int(n_first),
           "n_second": int(n_second)}
    if out["value"] is None:
        out.update(ci_low=None, ci_high=None)
        return out
    lo, hi, undef = boot.percentile_interval(boots[:, None], confidence)
    out.update(ci_low=None if np.isnan(lo[0]) else float(lo[0]), ci_high=None if np.isnan(hi[0]) else float(hi[0]),
               undefined_resamples=int(undef[0]))
    if null is not None:
        d = boots - (null_boots if null_boots is not None else null)
        slo, shi, _ = boot.percentile_interval(d[:, None], level)
        out["null"] = float(null)
        out["difference_from_null"] = float(point - null)
        out["simultaneous_low"] = None if np.isnan(slo[0]) else float(slo[0])
        out["simultaneous_high"] = None if np.isnan(shi[0]) else float(shi[0])
    return out


def bias_metrics(cases: pd.DataFrame, score, *, bs, binary_source: str | None = None, min_cases: int = 1,
                 confidence: float | None = None) -> dict:
    """Every threshold-free bias metric of one score, per suite, per target group and per language.

    ``bs``: the audit's :class:`flagaudit.metrics.Bootstrap`; ``binary_source``: set when the
    score is the flag itself (a system with no score). Groups with fewer than ``min_cases``
    cases on a side of an AUC get no value for it."""
    score = np.asarray(score, dtype=np.float64)
    confidence = bs.confidence if confidence is None else confidence
    role = cases["role"].to_numpy()
    pos_all, neg_all = role == "threat", role == "benign"
    suites = cases["suite"].to_numpy(dtype=object)
    codes, weights = bs.cluster_codes, bs.weights
    ones = np.ones((1, weights.shape[1]))
    out = {"positives": "threat cases (a flag is right)", "negatives": "benign cases (a flag is a false flag)",
           "background": "the other cases of the same suite", "power": POWER, "confidence": confidence,
           "score_levels": int(np.unique(score[pos_all | neg_all]).size),
           "score_source": binary_source or "the system's score", "suites": {}}
    out["binary_score"] = out["score_levels"] <= 2
    plan = []  # (suite, by, group, metric, point, boots, n1, n2, null kind)
    for suite in sorted(pd.unique(suites)):
        in_s = suites == suite
        pos, neg = pos_all & in_s, neg_all & in_s
        overall = weighted_aucs(score, pos, neg, codes, ones)[0] if pos.any() and neg.any() else np.nan
        overall_b = weighted_aucs(score, pos, neg, codes, weights) if not np.isnan(overall) else None
        sec = {"overall_auc": _entry(overall, overall_b, confidence, confidence, pos.sum(), neg.sum())
               if overall_b is not None else {"value": None, "n_first": int(pos.sum()), "n_second": int(neg.sum())}}
        for by in ("target", "language"):
            labels = cases[by].to_numpy(dtype=object)
            groups = [g for g in sorted(pd.unique(labels[in_s]))
                      if str(g).lower() not in UNRANKED and diff.is_ranked_label(str(g))]
            tab = {}
            for g in groups:
                in_g = in_s & (labels == g)
                tab[str(g)] = {}
                for metric in METRICS:
                    a, b = _masks(metric, in_g, pos, neg)
                    a, b = a & in_s, b & in_s
                    if a.sum() < min_cases or b.sum() < min_cases:
                        tab[str(g)][metric] = {"value": None, "n_first": int(a.sum()), "n_second": int(b.sum())}
                        continue
                    point = weighted_aucs(score, a, b, codes, ones)[0]
                    boots = weighted_aucs(score, a, b, codes, weights)
                    null_kind = "half" if metric == "benign_score_auc" else ("suite" if overall_b is not None else None)
                    plan.append((suite, by, str(g), metric, point, boots, a.sum(), b.sum(), null_kind))
            sec[by] = tab
        out["suites"][str(suite)] = {"sections": sec, "overall_boots": overall_b, "overall": overall}
    comparisons = max(sum(1 for p in plan if p[8] is not None), 1)
    level = 1.0 - (1.0 - confidence) / comparisons
    out["comparisons"] = comparisons
    out["per_comparison_level"] = level
    findings = []
    for suite, by, g, metric, point, boots, n1, n2, null_kind in plan:
        s = out["suites"][suite]
        if null_kind == "half":
            e = _entry(point, boots, level, confidence, n1, n2, null=0.5)
        elif null_kind == "suite":
            e = _entry(point, boots, level, confidence, n1, n2, null=s["overall"], null_boots=s["overall_boots"])
        else:
            e = _entry(point, boots, level, confidence, n1, n2)
        s["sections"][by][g][metric] = e
        lo, hi = e.get("simultaneous_low"), e.get("simultaneous_high")
        if lo is not None and (lo > 0 or (hi is not None and hi < 0)):
            findings.append({"suite": suite, "by": by, "group": g, "metric": metric, "value": e["value"],
                             "null": e["null"], "direction": "higher" if lo > 0 else "lower",
                             "at_least": lo if lo > 0 else -hi})
    for suite, s in out["suites"].items():
        sec = s.pop("sections")
        s.pop("overall_boots")
        s.pop("overall")
        sec["power_mean"] = {}
        for by in ("target", "language"):
            sec["power_mean"][by] = {}
            tab = sec[by]
            for metric in METRICS:
                names = [g for g in tab if tab[g][metric]["value"] is not None]
                if len(names) < 2:
                    continue
                # recompute the groups' resampled AUCs from the plan (kept in order)
                pts = [tab[g][metric]["value"] for g in names]
                bmat = np.column_stack([p[5] for p in plan if p[0] == suite and p[1] == by and p[3] == metric
                                        and p[2] in names])
                e = _entry(float(power_mean(pts)), power_mean(bmat, axis=1), confidence, confidence, len(names), 0)
                del e["n_first"], e["n_second"]
                e["groups"] = len(names)
                sec["power_mean"][by][metric] = e
        s.update(sec)
    out["findings"] = sorted(findings, key=lambda f: -f["at_least"])
    out["rule"] = (f"a group is named where its {confidence:.0%} interval, taken at the Bonferroni level over all "
                   f"{comparisons:,} group metrics stated ({level:.5g} each), excludes the null: 0.5 for the benign-score "
                   "AUC, the suite's overall AUC for subgroup, BPSN and BNSP AUCs")
    return out


def score_distributions(cases: pd.DataFrame, score, *, by: str = "target", max_groups: int = 20) -> dict:
    """Per suite and group, benign (and threat) scores summarised for the report's plots:
    quartiles, 5th/95th percentiles, mean and count (the report draws them as box plots)."""
    score = np.asarray(score, dtype=np.float64)
    out = {}
    for suite in sorted(pd.unique(cases["suite"])):
        in_s = (cases["suite"] == suite).to_numpy()
        rows = []
        for g in sorted(pd.unique(cases.loc[in_s, by].astype(str))):
            in_g = in_s & (cases[by].astype(str) == g).to_numpy()
            for role in ("benign", "threat"):
                x = score[in_g & (cases["role"] == role).to_numpy()]
                if x.size:
                    q = np.percentile(x, [5, 25, 50, 75, 95])
                    rows.append({"group": g, "role": role, "n": int(x.size), "mean": float(x.mean()),
                                 "p05": float(q[0]), "q1": float(q[1]), "median": float(q[2]), "q3": float(q[3]),
                                 "p95": float(q[4])})
        out[str(suite)] = rows[: 2 * max_groups]
    return out

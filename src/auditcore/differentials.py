"""Demographic differentials (ISO/IEC 19795-10): one disaggregation layer over the engine's counts.

Like fairlearn's ``MetricFrame``, grouping is not baked into any metric: every per-unit error
and trial count (a search, a genuine comparison, a probe's impostor comparisons) is summed by
group with :func:`by_group`; rates and differential summaries are small pure functions of those
sums. All summary functions work along the *last* axis, so the same code gives the point
estimate (shape ``(n_groups,)``) and every bootstrap resample at once (``(n_boot, n_groups)``).

Summaries (definitions, sources and worked examples in ``docs/demographics.md``):

* :func:`max_min_ratio`: ``max_g r_g / min_g r_g`` (``inf`` when the minimum is 0 and the
  maximum is not; undefined when both are 0);
* :func:`max_difference`: ``max_{i,j} |r_i - r_j| = max_g r_g - min_g r_g``;
* :func:`inequity_rate`: ``ratio(FMR) ** a * ratio(FNMR) ** b`` (default ``a = b = 1``, the
  product of the two max/min ratios);
* :func:`fdr`: Fairness Discrepancy Rate, ``1 - (a A + (1 - a) B)``, ``A``/``B`` the largest
  pairwise FMR/FNMR differences (de Freitas Pereira and Marcel, IEEE T-BIOM 2021);
* :func:`gini`: the sample-corrected Gini coefficient
  ``n/(n-1) * sum_i sum_j |x_i - x_j| / (2 n^2 mean(x))`` and :func:`garbe`,
  ``a Gini(FMR) + (1 - a) Gini(FNMR)`` (Howard et al., arXiv 2203.05051).

These summaries describe the spread of one sample's group rates. Recomputed in every bootstrap
resample, the largest gap is biased upwards (with no true difference it is still above 0), so
its percentile interval is not a test of equal rates: claims that groups differ come from
:mod:`auditcore.claims` (bounds simultaneous over every pair of groups).

A group takes part in a summary only when it is *ranked*: it has at least ``min_trials``
trials and its label is a real group (not ``missing``/``unknown``/``ambiguous``). Other groups
are still reported, greyed, never hidden.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MISSING = "missing"
UNRANKED_LABELS = ("missing", "unknown", "ambiguous")
COMBINE = " & "


def parse_spec(spec: str) -> list[str]:
    """``"sex*race"`` -> ``["sex", "race"]``; ``"sex"`` -> ``["sex"]`` (at most two columns)."""
    cols = [c.strip() for c in str(spec).split("*")]
    if not 1 <= len(cols) <= 2 or not all(cols):
        raise ValueError(f"group spec must be a column or 'a*b', got {spec!r}")
    return cols


def group_labels(manifest: pd.DataFrame, spec: str) -> np.ndarray:
    """One label per manifest row: the column's value as text (``"missing"`` where empty), or
    ``"a & b"`` for a combination ``a*b``."""
    cols = parse_spec(spec)
    missing = [c for c in cols if c not in manifest.columns]
    if missing:
        raise KeyError(f"no manifest column {', '.join(map(repr, missing))} "
                       f"(have: {', '.join(map(str, manifest.columns))})")
    parts = []
    for c in cols:
        col = manifest[c]
        text = col.astype(str).str.strip()
        text = text.where(col.notna() & (text != "") & (text.str.lower() != "nan"), MISSING)
        parts.append(text.to_numpy(dtype=object))
    labels = parts[0] if len(parts) == 1 else np.array([f"{a}{COMBINE}{b}" for a, b in zip(*parts)], dtype=object)
    return labels


def encode(labels) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct names, int code per label)."""
    names, codes = np.unique(np.asarray(labels, dtype=str), return_inverse=True)
    return names, codes.astype(np.int64)


def is_ranked_label(name: str) -> bool:
    """False for ``missing``/``unknown``/``ambiguous`` (or a combination containing one)."""
    return not any(p.strip().lower() in UNRANKED_LABELS for p in str(name).split(COMBINE))


def by_group(codes, values, n_groups: int) -> np.ndarray:
    """Sum ``values`` (per unit; extra trailing axes allowed) by group code -> ``(n_groups, ...)``."""
    codes = np.asarray(codes, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    out = np.zeros((n_groups,) + values.shape[1:], dtype=np.float64)
    np.add.at(out, codes, values)
    return out


def rates(errors, trials) -> np.ndarray:
    """``errors / trials`` elementwise, NaN (undefined) where there are no trials, never 0."""
    errors = np.asarray(errors, dtype=np.float64)
    trials = np.asarray(trials, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(trials > 0, errors / np.where(trials > 0, trials, 1), np.nan)


def _select(values, ranked) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if ranked is None:
        return values
    return values[..., np.asarray(ranked, dtype=bool)]


def max_min_ratio(values, ranked=None) -> np.ndarray:
    """``max / min`` over the ranked groups (last axis). ``inf`` when min is 0 < max; NaN
    (undefined) when fewer than 2 groups, any rate is undefined, or all rates are 0."""
    x = _select(values, ranked)
    if x.shape[-1] < 2:
        return np.full(x.shape[:-1], np.nan)
    hi, lo = x.max(axis=-1), x.min(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(lo > 0, hi / np.where(lo > 0, lo, 1), np.where(hi > 0, np.inf, np.nan))
    return np.where(np.isnan(hi) | np.isnan(lo), np.nan, out)


def max_difference(values, ranked=None) -> np.ndarray:
    """Largest pairwise absolute difference ``max_{i,j} |x_i - x_j|`` (= max - min)."""
    x = _select(values, ranked)
    if x.shape[-1] < 2:
        return np.full(x.shape[:-1], np.nan)
    return x.max(axis=-1) - x.min(axis=-1)


def gini(values, ranked=None) -> np.ndarray:
    """Sample-corrected Gini: ``n/(n-1) * sum_i sum_j |x_i - x_j| / (2 n^2 mean(x))``.

    0 when all groups are equal, 1 when one group holds every error (for any n). Undefined
    (NaN) for fewer than 2 groups or a mean of 0.

    >>> float(gini([1.0, 2.0, 3.0, 4.0]))  # 4/3 * 20 / (2 * 16 * 2.5)
    0.3333333333333333
    """
    x = _select(values, ranked)
    n = x.shape[-1]
    if n < 2:
        return np.full(x.shape[:-1], np.nan)
    s = np.sort(x, axis=-1)
    coef = 2 * np.arange(n) - n + 1  # sum_{i<j} (s_j - s_i) = sum_i (2i - n + 1) s_i
    pair_sum = 2 * (s * coef).sum(axis=-1)  # the double sum counts each pair twice
    mean = x.mean(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mean > 0, n / (n - 1) * pair_sum / (2 * n * n * np.where(mean > 0, mean, 1)), np.nan)


def fdr(fmr, fnmr, alpha: float = 0.5, ranked_fmr=None, ranked_fnmr=None) -> np.ndarray:
    """Fairness Discrepancy Rate ``1 - (alpha A + (1 - alpha) B)``; A, B the largest pairwise
    differences of FMR and FNMR across groups. 1 = no differential."""
    return 1.0 - (alpha * max_difference(fmr, ranked_fmr) + (1 - alpha) * max_difference(fnmr, ranked_fnmr))


def garbe(fmr, fnmr, alpha: float = 0.5, ranked_fmr=None, ranked_fnmr=None) -> np.ndarray:
    """Gini Aggregation Rate for Biometric Equitability ``alpha G(FMR) + (1 - alpha) G(FNMR)``.
    0 = no differential."""
    return alpha * gini(fmr, ranked_fmr) + (1 - alpha) * gini(fnmr, ranked_fnmr)


def inequity_rate(fmr, fnmr, ranked_fmr=None, ranked_fnmr=None, a: float = 1.0, b: float = 1.0) -> np.ndarray:
    """``(max/min FMR) ** a * (max/min FNMR) ** b``; 1 = no differential."""
    with np.errstate(invalid="ignore"):
        return max_min_ratio(fmr, ranked_fmr) ** a * max_min_ratio(fnmr, ranked_fnmr) ** b


def extremes(values, ranked, names) -> tuple[str | None, str | None]:
    """Names of the ranked groups with the highest and lowest value (None if undefined)."""
    x = np.asarray(values, dtype=np.float64)
    idx = np.flatnonzero(np.asarray(ranked, dtype=bool) & np.isfinite(x))
    if idx.size < 2:
        return None, None
    return str(names[idx[np.argmax(x[idx])]]), str(names[idx[np.argmin(x[idx])]])


SUMMARIES = {
    "max_min_ratio": max_min_ratio,
    "max_difference": max_difference,
    "gini": gini,
}


# ------------------------------------------------------------------ intervals for new people
#
# The summaries above are functions of the groups' rates. Given a box of group intervals that hold
# *simultaneously* (every group's true rate inside its interval with probability >= 1 - alpha:
# Korn-Graubard intervals from people at a Bonferroni level, :func:`auditcore.claims.summary_box`),
# the true summary lies between its smallest and largest value over the box, with at least the same
# probability. These functions compute that range exactly (the projection of the box).

MAX_VERTICES = 14  # Gini's maximum is at a vertex of the box: enumerated up to 2^14 vertices


def range_bounds(low, high) -> tuple[float, float]:
    """Smallest and largest ``max - min`` over the box ``[low_g, high_g]``: ``max(0, max low - min
    high)`` (all groups at a common level where the intervals overlap) and ``max high - min low``."""
    lo, hi = np.asarray(low, np.float64), np.asarray(high, np.float64)
    return float(max(0.0, lo.max() - hi.min())), float(hi.max() - lo.min())


def ratio_bounds(low, high) -> tuple[float, float]:
    """Smallest and largest ``max / min`` over the box: ``max(1, max low / min high)`` and
    ``max high / min low`` (``inf`` when some group's lower limit is 0)."""
    lo, hi = np.asarray(low, np.float64), np.asarray(high, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        least = max(1.0, float(lo.max() / hi.min())) if hi.min() > 0 else float("inf")
        most = float(hi.max() / lo.min()) if lo.min() > 0 else float("inf")
    return least, most


def gini_bounds(low, high) -> tuple[float, float]:
    """Smallest and largest Gini coefficient (:func:`gini`) over the box.

    With ``y = x / sum(x)`` the Gini is ``sum_{i<j} |y_i - y_j| / (n - 1)``: its minimum over the
    box is a linear-fractional programme, solved exactly as a linear one (Charnes-Cooper,
    ``scipy.optimize.linprog``); it is quasi-convex, so its maximum is at a vertex of the box
    (enumerated up to :data:`MAX_VERTICES` groups; beyond, the bound from the largest pairwise
    gaps over the smallest total, which is not below the maximum)."""
    lo, hi = np.asarray(low, np.float64), np.asarray(high, np.float64)
    n = lo.size
    if n < 2:
        return float("nan"), float("nan")
    if hi.max() <= 0:
        return float("nan"), float("nan")
    # minimum: 0 where one level lies in every interval
    if lo.max() <= hi.min():
        least = 0.0
    else:
        from scipy.optimize import linprog
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
        n_var = n + 1 + len(pairs)          # y (n), z, d (pairs)
        c = np.zeros(n_var)
        c[n + 1:] = 1.0
        a_ub, b_ub = [], []
        for k, (i, j) in enumerate(pairs):  # d_k >= y_i - y_j and d_k >= y_j - y_i
            for s in (1.0, -1.0):
                row = np.zeros(n_var)
                row[i], row[j], row[n + 1 + k] = s, -s, -1.0
                a_ub.append(row)
                b_ub.append(0.0)
        for i in range(n):                  # lo_i z <= y_i <= hi_i z
            row = np.zeros(n_var)
            row[i], row[n] = -1.0, lo[i]
            a_ub.append(row)
            b_ub.append(0.0)
            row = np.zeros(n_var)
            row[i], row[n] = 1.0, -hi[i]
            a_ub.append(row)
            b_ub.append(0.0)
        a_eq = np.zeros((1, n_var))
        a_eq[0, :n] = 1.0
        res = linprog(c, A_ub=np.array(a_ub), b_ub=np.array(b_ub), A_eq=a_eq, b_eq=[1.0],
                      bounds=[(0, None)] * n_var, method="highs")
        least = max(0.0, float(res.fun) / (n - 1)) if res.status == 0 else 0.0
    if n <= MAX_VERTICES:
        corners = np.array(np.meshgrid(*[[a, b] for a, b in zip(lo, hi)], indexing="ij")).reshape(n, -1).T
        most = float(np.nanmax(gini(corners)))
    else:
        gaps = np.maximum(np.abs(hi[:, None] - lo[None, :]), np.abs(hi[None, :] - lo[:, None]))
        total = lo.sum()
        most = float(np.triu(gaps, 1).sum() / ((n - 1) * total)) if total > 0 else 1.0
    return least, min(most, 1.0)


def projected_summaries(fmr_low, fmr_high, fnmr_low, fnmr_high, alpha: float = 0.5) -> dict:
    """Ranges of FDR, GARBE and the inequity rate over a box of FMR and FNMR group intervals
    (each summary separates into an FMR part and an FNMR part, so its range is the combination of
    the parts' ranges). Returns name -> ``[low, high]`` (``high`` None where unbounded)."""
    a_lo, a_hi = range_bounds(fmr_low, fmr_high)
    b_lo, b_hi = range_bounds(fnmr_low, fnmr_high)
    g1, g2 = gini_bounds(fmr_low, fmr_high), gini_bounds(fnmr_low, fnmr_high)
    r1, r2 = ratio_bounds(fmr_low, fmr_high), ratio_bounds(fnmr_low, fnmr_high)
    ineq_hi = r1[1] * r2[1]

    def num(x):
        return None if x is None or not np.isfinite(x) else float(x)

    return {"fdr": [num(1 - (alpha * a_hi + (1 - alpha) * b_hi)), num(1 - (alpha * a_lo + (1 - alpha) * b_lo))],
            "garbe": [num(alpha * g1[0] + (1 - alpha) * g2[0]), num(alpha * g1[1] + (1 - alpha) * g2[1])],
            "inequity_rate": [num(r1[0] * r2[0]), num(ineq_hi)]}

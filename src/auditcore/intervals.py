"""Error rates as counts with confidence intervals.

A :class:`Rate` keeps the integer counts it came from. With no trials it is *undefined*:
``value``, ``ci_low`` and ``ci_high`` are ``None``, never 0.
Intervals: Clopper-Pearson (exact, two-sided, conservative; default) or Wilson score.

For trials that come in clusters (a person's searches, a template's cases), :func:`korn_graubard`
gives the Clopper-Pearson interval on the *effective* sample size (Korn and Graubard 1998);
:func:`beta_interval` is Clopper-Pearson for real-valued (effective) counts, vectorised.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from fractions import Fraction

import numpy as np
from scipy import special

METHODS = ("clopper-pearson", "wilson")


@dataclass(frozen=True)
class Rate:
    """``errors`` out of ``trials``, with a two-sided interval at ``confidence``."""

    errors: int
    trials: int
    value: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float = 0.95
    method: str = "clopper-pearson"

    @property
    def defined(self) -> bool:
        return self.trials > 0

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self, digits: int = 3) -> str:
        """``"0.0123 (95% CI 0.0100-0.0150; 123 of 10000)"``, or ``"undefined (0 trials)"``."""
        if not self.defined:
            return "undefined (0 trials)"
        pct = int(round(self.confidence * 100))
        return (f"{self.value:.{digits}g} ({pct}% CI {self.ci_low:.{digits}g}-{self.ci_high:.{digits}g}; "
                f"{self.errors} of {self.trials})")


def clopper_pearson(errors: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval from the beta distribution (bounds 0 and 1 at the extremes).

    The beta quantile is ``scipy.special.betaincinv``, the function ``scipy.stats.beta.ppf``
    evaluates (the same digits; tested), without importing ``scipy.stats`` (half a second).
    """
    alpha = 1.0 - confidence
    lo = 0.0 if errors == 0 else float(special.betaincinv(errors, trials - errors + 1, alpha / 2))
    hi = 1.0 if errors == trials else float(special.betaincinv(errors + 1, trials - errors, 1 - alpha / 2))
    return lo, hi


def wilson(errors: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval."""
    from scipy import stats

    z = float(stats.norm.ppf(1 - (1 - confidence) / 2))
    p = errors / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def rate(errors: int, trials: int, *, confidence: float = 0.95, method: str = "clopper-pearson") -> Rate:
    """Build a :class:`Rate` from integer counts; undefined when ``trials == 0``."""
    errors, trials = int(errors), int(trials)
    if method not in METHODS:
        raise ValueError(f"unknown interval method '{method}' (choose from {', '.join(METHODS)})")
    if trials < 0 or errors < 0 or errors > trials:
        raise ValueError(f"need 0 <= errors <= trials, got {errors} of {trials}")
    if trials == 0:
        return Rate(0, 0, None, None, None, confidence, method)
    lo, hi = (clopper_pearson if method == "clopper-pearson" else wilson)(errors, trials, confidence)
    return Rate(errors, trials, errors / trials, lo, hi, confidence, method)


def allowed_errors(target: float, trials: int) -> int:
    """``floor(target * trials)`` in exact decimal arithmetic.

    The target is read as the decimal it prints as, so ``0.29 * 100`` gives 29 (the float
    product is 28.999999999999996) and ``0.07 * 100`` gives 7.
    """
    return int(math.floor(Fraction(repr(float(target))) * int(trials)))


def beta_interval(errors, trials, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Clopper-Pearson for real-valued counts (effective counts), elementwise.

    ``low = B(alpha/2; x, n - x + 1)`` and ``high = B(1 - alpha/2; x + 1, n - x)``, B the beta
    quantile; 0 and 1 at ``x = 0`` and ``x = n``; NaN where ``n = 0``. For whole numbers it
    equals :func:`clopper_pearson` (tested).
    """
    x = np.asarray(errors, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    x, n = np.broadcast_arrays(x, n)
    alpha = 1.0 - confidence
    ok = n > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(x > 0, special.betaincinv(np.where(x > 0, x, 1.0), np.maximum(n - x + 1, 1e-300), alpha / 2), 0.0)
        hi = np.where(x < n, special.betaincinv(x + 1, np.where(x < n, n - x, 1.0), 1 - alpha / 2), 1.0)
    return np.where(ok, lo, np.nan), np.where(ok, hi, np.nan)


def t_quantile(q: float, df) -> np.ndarray:
    """Student's t quantile (``scipy.special.stdtrit``; the normal quantile beyond 1e7 df)."""
    df = np.asarray(df, dtype=np.float64)
    return np.where(df > 1e7, special.ndtri(q), special.stdtrit(np.minimum(np.maximum(df, 1.0), 1e7), q))


def design_effects(errors_by_cluster, trials_by_cluster) -> tuple[np.ndarray, np.ndarray, float]:
    """Design effects of per-group proportions from cluster-level counts.

    ``errors_by_cluster`` and ``trials_by_cluster`` are ``(clusters, groups)``; a cluster takes
    part in a group where it has trials there. For group g with m clusters, n trials, x errors
    and ``p = x / n``, the variance of p from its clusters (the ratio estimator's linearisation,
    what a cluster bootstrap estimates) is ``v = m / (m - 1) * sum_i (e_i - p t_i)^2 / n^2``; the
    design effect is ``v / (p (1 - p) / n)``. It is estimable where ``0 < p < 1`` and ``m >= 2``.

    Returns ``(clusters per group, own design effect (NaN where not estimable), pooled design
    effect)``: the pooled one is ``sum_g m/(m-1) sum_i (e_i - p_g t_i)^2 / sum_g p_g (1 - p_g) n_g``
    over the groups where it is estimable (NaN if none), i.e. the clustering of the whole table.
    """
    e = np.asarray(errors_by_cluster, dtype=np.float64)
    t = np.asarray(trials_by_cluster, dtype=np.float64)
    if e.ndim == 1:
        e, t = e[:, None], t[:, None]
    has = t > 0
    m = has.sum(0)
    x, n = e.sum(0), t.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(n > 0, x / np.where(n > 0, n, 1.0), np.nan)
        resid = np.where(has, e - np.nan_to_num(p) * t, 0.0)
        ss = np.where(m >= 2, m / np.maximum(m - 1, 1) * (resid ** 2).sum(0), np.nan)
        binomial = p * (1 - p) * n
        ok = (m >= 2) & (binomial > 0)
        own = np.where(ok, ss / np.where(ok, binomial, 1.0), np.nan)
    pooled = float(ss[ok].sum() / binomial[ok].sum()) if ok.any() else float("nan")
    return m, own, pooled


def korn_graubard(errors_by_cluster, trials_by_cluster, confidence: float = 0.95, *,
                  design_effect=None, degrees_of_freedom=None, source=None) -> dict:
    """Per-group intervals for proportions of clustered trials (Korn and Graubard 1998).

    Clopper-Pearson on the effective sample size ``n_eff = n / deff`` with ``x_eff = p n_eff``,
    with their degrees-of-freedom adjustment ``n_eff * (t_{n-1} / t_{df})^2`` (t quantiles at
    ``1 - alpha/2``; ``df`` the degrees of freedom of the variance behind the design effect: the
    group's clusters less one for its own, every pooled group's clusters less one each for the
    pooled one), and ``n_eff`` capped at ``n``. The design effect used is
    ``design_effect`` if given, else the larger of the group's own and the table's pooled one
    (:func:`design_effects`), at least 1: a group with no errors (or very few) cannot show its own
    clustering, so it takes the clustering measured over every group of the table, but never more
than the group's largest cluster (``source`` "largest cluster"): k trials of one cluster vary at
most as k copies of one trial, so ``n / k`` trials are worth at least that many independent
ones whatever their dependence. Where no group
    shows any, each cluster counts once (``n_eff`` = clusters), the bound that holds however the
    trials of a cluster depend on each other.

    A given ``design_effect`` (per group) is used as it is (at least 1), with no degrees-of-freedom
    adjustment unless ``degrees_of_freedom`` (per group) is given too; ``source`` (per group) then
    names where it came from (default "given"). A caller whose trials cluster in more than one way
    (probe people and gallery people) measures the design effect itself and passes it here.

    Returns arrays: ``value``, ``low``, ``high``, ``design_effect``, ``effective_trials``,
    ``clusters``, ``source`` (how the design effect was found: "own", "pooled", "largest cluster",
    "clusters", "given"), ``own_design_effect``, ``pooled_design_effect``.
    """
    e = np.asarray(errors_by_cluster, dtype=np.float64)
    t = np.asarray(trials_by_cluster, dtype=np.float64)
    if e.ndim == 1:
        e, t = e[:, None], t[:, None]
    m, own, pooled = design_effects(e, t)
    x, n = e.sum(0), t.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(n > 0, x / np.where(n > 0, n, 1.0), np.nan)
    if design_effect is not None:
        deff = np.maximum(np.broadcast_to(np.asarray(design_effect, np.float64), n.shape), 1.0)
        source = (np.full(n.shape, "given", dtype=object) if source is None else
                  np.array(np.broadcast_to(np.asarray(source, dtype=object), n.shape), dtype=object))
        estimated = np.ones(n.shape, bool)
    else:
        best = np.fmax(own, pooled)  # NaN only where neither is estimable
        estimated = ~np.isnan(best)
        source = np.where(np.isnan(own) | (pooled > own), "pooled", "own").astype(object)
        source[~estimated] = "clusters"
        with np.errstate(invalid="ignore", divide="ignore"):
            deff = np.where(estimated, np.maximum(np.nan_to_num(best, nan=1.0), 1.0),
                            np.maximum(n / np.maximum(m, 1), 1.0))
        # a design effect borrowed from the table never exceeds the group's largest cluster: a
        # cluster of k trials varies at most as k copies of one trial (Var(T) <= k^2 mu (1 - mu)),
        # so n_eff >= n / k whatever the dependence (one case per template: no inflation at all)
        largest = np.maximum(t.max(0), 1.0)
        capped = (source == "pooled") & (deff > largest)
        deff = np.where(capped, largest, deff)
        source[capped] = "largest cluster"
    # degrees of freedom of the variance behind the design effect used: the group's clusters less
    # one for its own; for the pooled one, the clusters of every group it pools less one per group
    own_ok = ~np.isnan(own)
    df = np.where(source == "own", np.maximum(m - 1, 1), max(int((m[own_ok] - 1).sum()), 1) if own_ok.any() else 1)
    q = 1 - (1 - confidence) / 2
    adjust = estimated & (source != "given") & (source != "largest cluster") if design_effect is None else np.zeros(n.shape, bool)
    if design_effect is not None and degrees_of_freedom is not None:
        df = np.maximum(np.broadcast_to(np.asarray(degrees_of_freedom, np.float64), n.shape), 1.0)
        adjust = np.ones(n.shape, bool)
    df_factor = np.where(adjust, (t_quantile(q, n - 1) / t_quantile(q, df)) ** 2, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        n_eff = np.minimum(n / deff * df_factor, n)
    lo, hi = beta_interval(np.nan_to_num(p) * n_eff, n_eff, confidence)
    # exactly 0 or all errors: the bound at that end is exact
    lo = np.where(x == 0, 0.0, lo)
    hi = np.where((x == n) & (n > 0), 1.0, hi)
    return {"value": p, "low": lo, "high": hi, "design_effect": deff, "effective_trials": n_eff, "clusters": m,
            "source": source, "own_design_effect": own, "pooled_design_effect": pooled,
            "errors": x, "trials": n}


def paired_difference(errors_a_by_cluster, errors_b_by_cluster, trials_by_cluster, confidence: float = 0.95) -> dict:
    """Difference of two rates on the *same* clustered trials (two systems on the same searches,
    a person's searches one cluster), with an interval that holds for new people.

    Each rate gets its :func:`korn_graubard` interval from the clusters (so a rare rate keeps a
    floor: a nonzero count never a lower limit of 0, a zero count an upper limit above 0), and the
    two are combined by MOVER for correlated estimates (Newcombe 1998, method 10; Zou and Donner
    2008): with ``d = p_a - p_b`` and ``phi`` the correlation of the two estimates across clusters,

        low  = d - sqrt((p_a - l_a)^2 - 2 phi (p_a - l_a)(u_b - p_b) + (u_b - p_b)^2)
        high = d + sqrt((u_a - p_a)^2 - 2 phi (u_a - p_a)(p_b - l_b) + (p_b - l_b)^2)

    ``phi`` is the clusters' covariance of ``e_a - p_a t`` and ``e_b - p_b t`` over the square root
    of their variances (0 where either has no errors: no correlation can be measured, and 0 gives
    the wider interval when the rates move together). Never ``[0, 0]``: with no errors on either
    side the interval is ``[-u_b, u_a]``.

    Inputs are per cluster (1-D, one group). Returns ``difference``, ``low``, ``high``, ``phi``
    and each rate's ``value``/``low``/``high``/``design_effect``.
    """
    ea = np.asarray(errors_a_by_cluster, np.float64).ravel()
    eb = np.asarray(errors_b_by_cluster, np.float64).ravel()
    t = np.asarray(trials_by_cluster, np.float64).ravel()
    keep = t > 0
    ea, eb, t = ea[keep], eb[keep], t[keep]
    n = float(t.sum())
    if n == 0:
        return {"difference": None, "low": None, "high": None, "phi": None, "a": None, "b": None}
    # each system's interval from its own clusters (not pooled with the other system's: a system's
    # rate and interval do not depend on what it is compared with)
    ka, kb = korn_graubard(ea, t, confidence), korn_graubard(eb, t, confidence)
    kg = {k: np.array([ka[k][0], kb[k][0]], dtype=object if k == "source" else np.float64)
          for k in ("value", "low", "high", "design_effect", "source")}
    pa, pb = float(kg["value"][0]), float(kg["value"][1])
    la, lb = float(kg["low"][0]), float(kg["low"][1])
    ua, ub = float(kg["high"][0]), float(kg["high"][1])
    ra, rb = ea - pa * t, eb - pb * t
    va, vb = float((ra * ra).sum()), float((rb * rb).sum())
    phi = float(np.clip((ra * rb).sum() / np.sqrt(va * vb), -1.0, 1.0)) if va > 0 and vb > 0 else 0.0
    d = pa - pb
    low = d - math.sqrt(max((pa - la) ** 2 - 2 * phi * (pa - la) * (ub - pb) + (ub - pb) ** 2, 0.0))
    high = d + math.sqrt(max((ua - pa) ** 2 - 2 * phi * (ua - pa) * (pb - lb) + (pb - lb) ** 2, 0.0))

    def side(i):
        return {"value": float(kg["value"][i]), "low": float(kg["low"][i]), "high": float(kg["high"][i]),
                "design_effect": float(kg["design_effect"][i]), "design_effect_source": str(kg["source"][i])}

    return {"difference": d, "low": max(low, -1.0), "high": min(high, 1.0), "phi": phi, "a": side(0), "b": side(1),
            "clusters": int(keep.sum()), "trials": n}

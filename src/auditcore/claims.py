"""Claims about differences between groups: simultaneous bounds for every pairwise contrast.

Both auditors say things like "people labelled a were missed at least 2.2 times as often as
people labelled c" or "false-flag rates differ by at least 5 percentage points between the most-
and least-flagged groups". The pair named is chosen *after* looking at the data (the highest and
the lowest group), and a report names several (every measure, every grouping). An interval for
that one pair, as if it had been fixed in advance, claims a difference most of the time when there
is none. Here every claim is a bound that holds **simultaneously for every pair of ranked groups
and every measure the report compares**, so it holds for the pair that was picked, whichever it
is. With no true difference anywhere, a report built on these bounds claims one with probability
at most 1 - ``confidence`` (5%); ``tests/test_claims_null.py`` measures it.

Method (one family per report; ``n_comparisons`` = the number of pairwise contrasts in it):

1. Per group, the Korn-Graubard interval (:func:`auditcore.intervals.korn_graubard`): trials
   come in clusters (people, templates), so each group's count is Clopper-Pearson on its
   effective sample size, at the *per-comparison* level ``1 - alpha / n_comparisons``
   (Bonferroni). A group with no errors keeps an upper bound; one with errors a lower bound above 0.
2. Per pair, the MOVER combination of the two groups' limits (Newcombe 1998, Zou and Donner
   2008): the difference ``p_a - p_b`` has lower bound ``d - sqrt((p_a - l_a)^2 + (u_b - p_b)^2)``
   and upper bound ``d + sqrt((u_a - p_a)^2 + (p_b - l_b)^2)``; the ratio the same on the log
   scale. When b had no errors the ratio has only a lower bound, ``l_a / u_b``, and no upper one
   (that is the one case an upper end is "unbounded"); when a had none, ``u_a / l_b`` bounds it
   above.
3. Bonferroni over the family: each contrast at ``1 - alpha / n_comparisons``, so all of them
   hold together with probability at least ``1 - alpha``. The groups of one grouping are
   different people (clusters), so the two limits of a pair are independent; across measures the
   same people appear, which Bonferroni does not need to know.

Why not the cluster bootstrap for this: a group with no errors, or a few from a few clusters,
has resamples with no errors (the percentile lower bound is 0, a ratio's upper end infinite)
and no resample can show more errors than the clusters observed had; the effective-sample-size
interval keeps both ends honest at counts 0-10 (``tests/test_rare_rates.py`` measures coverage).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from auditcore.intervals import korn_graubard

METHOD = ("Bonferroni over every pairwise contrast of the report; each contrast the MOVER combination of the two "
          "groups' Korn-Graubard (effective sample size) intervals at the per-comparison level")


def n_pairs(k: int) -> int:
    """Unordered pairs among ``k`` groups."""
    k = int(k)
    return k * (k - 1) // 2


@dataclass(frozen=True)
class Family:
    """The comparisons a report makes together: ``n_comparisons`` contrasts, all of whose bounds
    hold simultaneously with probability at least ``confidence``."""

    n_comparisons: int
    confidence: float = 0.95

    @property
    def level(self) -> float:
        """Per-comparison confidence level (Bonferroni): ``1 - (1 - confidence) / n_comparisons``."""
        return 1.0 - (1.0 - self.confidence) / max(int(self.n_comparisons), 1)

    def to_dict(self) -> dict:
        return {"method": METHOD, "comparisons": int(self.n_comparisons), "confidence": self.confidence,
                "per_comparison_level": self.level}


class GroupRates:
    """Errors and trials of each group, from per-cluster counts ``(clusters, groups)``, with the
    Korn-Graubard interval at any level (:meth:`interval`) and pairwise contrasts (:meth:`contrast`).

    ``design_effect``/``degrees_of_freedom``/``source`` (per group, optional): a design effect the
    caller measured itself (trials that cluster in two ways, e.g. impostor comparisons by probe
    people and gallery people) and its degrees of freedom, passed to :func:`korn_graubard`; every
    interval and contrast at every level then uses it."""

    def __init__(self, errors_by_cluster, trials_by_cluster, *, design_effect=None, degrees_of_freedom=None,
                 source=None):
        self.errors_by_cluster = np.asarray(errors_by_cluster, dtype=np.float64)
        self.trials_by_cluster = np.asarray(trials_by_cluster, dtype=np.float64)
        self._given = {} if design_effect is None else {
            "design_effect": design_effect, "degrees_of_freedom": degrees_of_freedom, "source": source}
        self._cache: dict[float, dict] = {}
        base = self.at(0.95)
        self.errors, self.trials, self.value = base["errors"], base["trials"], base["value"]
        self.clusters = base["clusters"]
        self.design_effect, self.source = base["design_effect"], base["source"]
        self.pooled_design_effect = base["pooled_design_effect"]

    def at(self, confidence: float) -> dict:
        """:func:`korn_graubard` at ``confidence`` (cached)."""
        key = float(confidence)
        if key not in self._cache:
            self._cache[key] = korn_graubard(self.errors_by_cluster, self.trials_by_cluster, key, **self._given)
        return self._cache[key]

    def interval(self, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        kg = self.at(confidence)
        return kg["low"], kg["high"]

    def contrast(self, a, b, level: float) -> dict:
        """Bounds for group(s) ``a`` against ``b`` at the per-comparison ``level`` (arrays over pairs):
        ``difference`` (a - b) with ``difference_low``/``_high``; ``ratio`` (a / b; NaN when b is 0)
        with ``ratio_low``/``_high`` (``inf`` upper end only when b had no errors); ``measurable``
        False when neither group had an error (no ratio can be bounded)."""
        a, b = np.atleast_1d(np.asarray(a, np.int64)), np.atleast_1d(np.asarray(b, np.int64))
        lo, hi = self.interval(level)
        pa, pb = self.value[a], self.value[b]
        la, ua, lb, ub = lo[a], hi[a], lo[b], hi[b]
        d = pa - pb
        d_lo = d - np.sqrt((pa - la) ** 2 + (ub - pb) ** 2)
        d_hi = d + np.sqrt((ua - pa) ** 2 + (pb - lb) ** 2)
        both = (pa > 0) & (pb > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            lr = np.log(np.where(both, pa, 1.0)) - np.log(np.where(both, pb, 1.0))
            r_lo_both = np.exp(lr - np.sqrt(np.log(pa / la) ** 2 + np.log(ub / pb) ** 2))
            r_hi_both = np.exp(lr + np.sqrt(np.log(ua / pa) ** 2 + np.log(pb / lb) ** 2))
            ratio = np.where(pb > 0, pa / np.where(pb > 0, pb, 1.0), np.nan)
            r_lo = np.where(both, r_lo_both, np.where(pa > 0, la / ub, 0.0))
            r_hi = np.where(both, r_hi_both, np.where(pb > 0, ua / np.where(lb > 0, lb, np.nan), np.inf))
        measurable = (pa > 0) | (pb > 0)
        return {"difference": d, "difference_low": d_lo, "difference_high": d_hi, "ratio": ratio,
                "ratio_low": np.where(measurable, r_lo, np.nan), "ratio_high": np.where(measurable, r_hi, np.nan),
                "measurable": measurable}


def family_text(k: int, family: Family) -> str:
    """How a contrast among ``k`` groups was adjusted, in words: "adjusted for choosing the pair
    among 6 and for all 24 comparisons of this report" (with 2 groups: "the only pair, adjusted
    for all 4 comparisons of this report")."""
    pairs = n_pairs(k)
    others = family.n_comparisons != pairs
    if pairs == 1:
        return ("the only pair, adjusted for all "
                f"{family.n_comparisons:,} comparisons of this report") if others else "the only pair"
    text = f"adjusted for choosing the pair among {pairs:,}"
    return text + (f" and for all {family.n_comparisons:,} comparisons of this report" if others else "")


SUMMARY_METHOD = ("the range of the summary over the groups' Korn-Graubard intervals (from people), all of them "
                  "simultaneous (Bonferroni over every group of both rates): it holds the summary of the groups' "
                  "true rates, for new people of the same kind, with at least the stated confidence")


def summary_box(first: GroupRates, first_groups, second: GroupRates, second_groups,
                confidence: float = 0.95) -> dict:
    """Simultaneous intervals for the groups ``first_groups`` of one rate and ``second_groups`` of
    another (indices), for summaries of both (FDR, GARBE, inequity rate): each group's
    Korn-Graubard interval at ``1 - (1 - confidence) / k``, k the number of intervals, so that all
    hold together with probability at least ``confidence``. Returns ``first_low``/``first_high``,
    ``second_low``/``second_high``, ``level`` and ``intervals``."""
    i1, i2 = np.asarray(first_groups, np.int64), np.asarray(second_groups, np.int64)
    k = int(i1.size + i2.size)
    level = 1.0 - (1.0 - confidence) / max(k, 1)
    lo1, hi1 = first.interval(level)
    lo2, hi2 = second.interval(level)
    return {"first_low": lo1[i1], "first_high": hi1[i1], "second_low": lo2[i2], "second_high": hi2[i2],
            "level": level, "intervals": k, "confidence": confidence}

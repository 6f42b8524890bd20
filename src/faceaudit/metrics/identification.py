"""Open-set identification metrics (ISO/IEC 19795-1), from per-search counts.

Inputs are the engine's per-search results, never a full score matrix:

* non-mated searches: ``best_nonmate``, the highest score among all gallery subjects;
* mated searches: ``mate_score`` (the mate subject's score) and ``mate_rank`` (1 + the number
  of non-mate subjects scoring ``>=`` the mate: ties go against the mate).

Definitions (score ``>= T`` is a match):

* **FPIR(T)**: share of non-mated searches that return at least one candidate with score
  ``>= T``: one error per *search*, however many non-mates pass, normalised by the number of
  non-mated searches.
* **FNIR(R, T)**: share of mated searches whose mate is not among the top ``R`` candidates or
  scores below ``T``.
* **CMC(r)**: identification rate at rank ``r`` with no threshold, ``1 - FNIR(r, -inf)``.
* **Threshold at FPIR = x**: the lowest float32 threshold whose FPIR count is at most
  ``floor(x * n_nonmated)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from auditcore.intervals import Rate, allowed_errors, rate
from auditcore.validation import as_1d, mated_arrays, rate_target


def fpir(best_nonmate, threshold: float, **interval) -> Rate:
    """FPIR(T): non-mated searches whose best candidate scores ``>= threshold``.

    >>> fpir([0.2, 0.5, 0.7], 0.5).errors
    2
    """
    best = as_1d("best_nonmate", best_nonmate, np.float64)
    return rate(int(np.count_nonzero(best >= threshold)), best.size, **interval)


def fnir(mate_score, mate_rank, threshold: float = -np.inf, *, rank: int = 1, **interval) -> Rate:
    """FNIR(R, T): mated searches with the mate below ``threshold`` or ranked worse than ``rank``.

    >>> fnir([0.9, 0.4, 0.8], [1, 1, 2], 0.5, rank=1).errors
    2
    """
    scores, ranks = mated_arrays(mate_score, mate_rank)
    missed = (scores < threshold) | (ranks > rank)
    return rate(int(np.count_nonzero(missed)), scores.size, **interval)


def cmc(mate_rank, max_rank: int) -> np.ndarray:
    """Identification rate at ranks ``1..max_rank`` (no threshold). NaN if there are no searches.

    >>> cmc([1, 2, 2, 5], 3).tolist()
    [0.25, 0.75, 0.75]
    """
    ranks = as_1d("mate_rank", mate_rank, np.int64)
    if ranks.size == 0:
        return np.full(max_rank, np.nan)
    hits = np.bincount(np.minimum(ranks, max_rank + 1), minlength=max_rank + 2)[1:max_rank + 1]
    return np.cumsum(hits) / ranks.size


@dataclass(frozen=True)
class OperatingPoint:
    """A threshold chosen for a target rate, with the rate it achieves (never above target)."""

    target: float
    threshold: float | None
    achieved: Rate
    allowed_errors: int

    def to_dict(self) -> dict:
        return {"target": self.target, "threshold": self.threshold,
                "allowed_errors": self.allowed_errors, "achieved": self.achieved.to_dict()}


def threshold_at_fpir(best_nonmate, target: float, **interval) -> OperatingPoint:
    """Lowest float32 threshold ``T`` with ``#(best_nonmate >= T) <= floor(target * n)``.

    That is just above the ``(c + 1)``-th highest best non-mate score, ``c`` the allowed count,
    so ties at that score are all excluded and FPIR never exceeds the target. When every search
    may be a false positive, ``T = -inf``. Undefined (``threshold None``) with no searches.

    >>> op = threshold_at_fpir([0.1, 0.2, 0.3, 0.3, 0.9], 0.2)
    >>> op.allowed_errors, op.achieved.errors, op.threshold > 0.3
    (1, 1, True)
    """
    best = as_1d("best_nonmate", best_nonmate, np.float32)
    rate_target("target", target)
    n = best.size
    if n == 0:
        return OperatingPoint(target, None, rate(0, 0, **interval), 0)
    allowed = allowed_errors(target, n)
    if allowed >= n:
        threshold = -np.inf
    else:
        kth = np.partition(best, n - 1 - allowed)[n - 1 - allowed]  # (allowed+1)-th highest
        threshold = float(np.nextafter(np.float32(kth), np.float32(np.inf)))
    return OperatingPoint(target, threshold, fpir(best, threshold, **interval), allowed)


@dataclass(frozen=True)
class IdentificationCurve:
    """FPIR and FNIR(R, T) at every distinct observed score T (ascending), from counts."""

    thresholds: np.ndarray
    false_positives: np.ndarray
    n_nonmated: int
    misses: np.ndarray
    n_mated: int
    rank: int

    @property
    def fpir(self) -> np.ndarray:
        return self.false_positives / self.n_nonmated if self.n_nonmated else np.full(self.thresholds.size, np.nan)

    @property
    def fnir(self) -> np.ndarray:
        return self.misses / self.n_mated if self.n_mated else np.full(self.thresholds.size, np.nan)


def identification_curve(best_nonmate, mate_score, mate_rank, *, rank: int = 1) -> IdentificationCurve:
    """Counts behind the identification DET and the rate-vs-threshold plots.

    Thresholds are the distinct values of ``best_nonmate`` and ``mate_score``; at each,
    ``false_positives = #(best_nonmate >= T)`` and ``misses = #(mate < T or rank > R)``.
    """
    best = np.sort(as_1d("best_nonmate", best_nonmate, np.float64))
    scores, ranks = mated_arrays(mate_score, mate_rank)
    thresholds = np.unique(np.concatenate([best, scores]))
    false_positives = best.size - np.searchsorted(best, thresholds, side="left")
    ranked_out = int(np.count_nonzero(ranks > rank))
    in_rank = np.sort(scores[ranks <= rank])
    misses = ranked_out + np.searchsorted(in_rank, thresholds, side="left")
    return IdentificationCurve(thresholds, false_positives.astype(np.int64), best.size,
                               misses.astype(np.int64), scores.size, rank)


def float32_threshold_at_fpir(best: np.ndarray, target: float):
    """:func:`threshold_at_fpir`, made safe for scores finer than float32: if rounding the
    (c+1)-th highest score to float32 left it at or above the threshold, step to the next float32."""
    op = threshold_at_fpir(best, target)
    if op.threshold is None or not np.isfinite(op.threshold):
        return op
    t = np.float32(op.threshold)
    while fpir(best, float(t)).errors > op.allowed_errors:
        t = np.nextafter(t, np.float32(np.inf))
    if float(t) == op.threshold:
        return op
    return OperatingPoint(target, float(t), fpir(best, float(t)), op.allowed_errors)

"""Verification (1:1) metrics on the same comparisons: FMR, FNMR, DET, EER, FNMR at FMR.

Genuine comparison scores are exact; impostor comparisons arrive as a histogram over exact
float32 bin edges (see :mod:`faceaudit.engine.counts`), so thresholds live on those edges, where
every count is exact: every fine edge from ``fine_from`` up, and below it (the bulk, where
FMR is above 1%) the coarse edges only. Definitions (score ``>= T`` is a match):

* **FMR(T)** = impostor comparisons with score ``>= T`` / impostor comparisons;
* **FNMR(T)** = genuine comparisons with score ``< T`` / genuine comparisons;
* **FNMR at FMR = x**: at the lowest edge T whose false-match count is ``<= floor(x * n)``;
  only *measurable* when ``floor(x * n) >= 1`` (otherwise no trial could show a rate of x);
* **EER**: at the edge where ``|FMR - FNMR|`` is smallest, ``eer_midpoint = (FMR + FNMR) / 2``
  there; both rates are reported beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from auditcore.intervals import Rate, allowed_errors, rate
from faceaudit.engine.counts import exact_bins, hist_edges, next_exact_bins, score_bin


@dataclass(frozen=True)
class VerificationCurve:
    """Counts at each candidate threshold (ascending bin edges)."""

    thresholds: np.ndarray
    false_matches: np.ndarray
    n_impostor: int
    false_non_matches: np.ndarray
    n_genuine: int

    @property
    def fmr(self) -> np.ndarray:
        return self.false_matches / self.n_impostor if self.n_impostor else np.full(self.thresholds.size, np.nan)

    @property
    def fnmr(self) -> np.ndarray:
        return self.false_non_matches / self.n_genuine if self.n_genuine else np.full(self.thresholds.size, np.nan)


def verification_curve(genuine_scores, impostor_hist, *, score: str = "cosine",
                       fine_from: int = 0) -> VerificationCurve:
    """FMR and FNMR counts at every exact edge that holds a genuine or impostor score (moved
    down to an exact edge: :func:`faceaudit.engine.counts.exact_bins`), and at the exact edge just
    above every impostor bin (the lowest threshold that excludes that bin).

    ``impostor_hist`` is the engine's histogram (length ``N_BINS``); ``score`` and
    ``fine_from`` are the search's (``SearchResult.score``/``hist_fine_from``).
    """
    genuine = np.sort(np.asarray(genuine_scores, dtype=np.float32))
    hist = np.asarray(impostor_hist, dtype=np.int64)
    edges = hist_edges()
    filled = np.flatnonzero(hist)
    used = np.union1d(np.union1d(filled, next_exact_bins(filled, score, fine_from)),
                      exact_bins(score_bin(genuine), score, fine_from))
    if used.size == 0:
        return VerificationCurve(np.empty(0), np.empty(0, np.int64), 0, np.empty(0, np.int64), 0)
    used = np.union1d(used, next_exact_bins(used[-1:], score, fine_from))
    used = used[used < hist.size]
    tail = np.cumsum(hist[::-1])[::-1]  # tail[b] = impostors in bins >= b
    tail = np.append(tail, 0)
    thresholds = edges[used].astype(np.float64)
    false_matches = tail[used]
    false_non_matches = np.searchsorted(genuine, edges[used], side="left")
    return VerificationCurve(thresholds, false_matches.astype(np.int64), int(hist.sum()),
                             false_non_matches.astype(np.int64), genuine.size)


def fmr(curve: VerificationCurve, threshold: float, **interval) -> Rate:
    """FMR at the highest candidate edge ``<= threshold`` (exact when ``threshold`` is an edge)."""
    i = _edge_index(curve, threshold)
    return rate(curve.false_matches[i] if i >= 0 else curve.n_impostor, curve.n_impostor, **interval)


def fnmr(curve: VerificationCurve, threshold: float, **interval) -> Rate:
    """FNMR at the same edge as :func:`fmr`."""
    i = _edge_index(curve, threshold)
    return rate(curve.false_non_matches[i] if i >= 0 else 0, curve.n_genuine, **interval)


def _edge_index(curve: VerificationCurve, threshold: float) -> int:
    return int(np.searchsorted(curve.thresholds, threshold, side="right")) - 1


@dataclass(frozen=True)
class VerificationPoint:
    target_fmr: float
    measurable: bool
    threshold: float | None
    fmr: Rate
    fnmr: Rate
    allowed_errors: int

    def to_dict(self) -> dict:
        return {"target_fmr": self.target_fmr, "measurable": self.measurable,
                "threshold": self.threshold, "allowed_errors": self.allowed_errors,
                "fmr": self.fmr.to_dict(), "fnmr": self.fnmr.to_dict()}


def fnmr_at_fmr(curve: VerificationCurve, target: float, **interval) -> VerificationPoint:
    """FNMR at the lowest edge whose false-match count is ``<= floor(target * n_impostor)``."""
    allowed = allowed_errors(target, curve.n_impostor)
    if allowed < 1 or curve.n_genuine == 0:
        undefined = rate(0, 0, **interval)
        return VerificationPoint(target, False, None, undefined, undefined, allowed)
    i = int(np.argmax(curve.false_matches <= allowed))  # counts fall with T: first is lowest
    return VerificationPoint(target, True, float(curve.thresholds[i]),
                             rate(curve.false_matches[i], curve.n_impostor, **interval),
                             rate(curve.false_non_matches[i], curve.n_genuine, **interval), allowed)


@dataclass(frozen=True)
class EqualErrorRate:
    threshold: float | None
    eer_midpoint: float | None
    fmr: Rate
    fnmr: Rate

    def to_dict(self) -> dict:
        return {"threshold": self.threshold, "eer_midpoint": self.eer_midpoint,
                "fmr": self.fmr.to_dict(), "fnmr": self.fnmr.to_dict()}


def equal_error_rate(curve: VerificationCurve, **interval) -> EqualErrorRate:
    """EER: the edge where FMR and FNMR are closest; ``eer_midpoint`` is their mean there."""
    if curve.n_impostor == 0 or curve.n_genuine == 0:
        undefined = rate(0, 0, **interval)
        return EqualErrorRate(None, None, undefined, undefined)
    gap = np.abs(curve.fmr - curve.fnmr)
    i = int(np.argmin(gap))
    a = rate(curve.false_matches[i], curve.n_impostor, **interval)
    b = rate(curve.false_non_matches[i], curve.n_genuine, **interval)
    return EqualErrorRate(float(curve.thresholds[i]), (a.value + b.value) / 2, a, b)

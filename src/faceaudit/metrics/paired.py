"""Paired comparisons of two systems on the same searches.

* :func:`mcnemar_exact`: McNemar's exact test on the discordant counts of one rate at fixed
  thresholds: ``b`` searches wrong for A only, ``c`` for B only; under "no difference" each
  discordant search is wrong for A with probability 1/2, so the two-sided p-value is
  ``min(1, 2 * P(X <= min(b, c)))``, ``X ~ Binomial(b + c, 1/2)`` (1 when ``b + c = 0``). It treats
  searches as independent, which several searches of one person are not: the subject
  bootstrap below does not assume it.
* :func:`subject_bootstrap_difference`: the difference of two rates on the same trials, with a
  percentile interval from resampling *subjects* (all of a person's searches move together, as in
  :mod:`auditcore.bootstrap`).
* :func:`weighted_threshold_at_fpir`: faceaudit's operating-point rule on a resample (search
  weights = multiplicities), so that a difference "at FPIR x" re-estimates each system's
  threshold in every resample.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from auditcore import bootstrap as boot_
from auditcore.intervals import allowed_errors


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts ``b`` and ``c``.

    >>> round(mcnemar_exact(8, 3), 4)   # 2 * (1 + 11 + 55 + 165) / 2048
    0.2266
    """
    b, c = int(b), int(c)
    if b < 0 or c < 0:
        raise ValueError("discordant counts must be >= 0")
    if b + c == 0:
        return 1.0
    return float(min(1.0, 2.0 * stats.binom.cdf(min(b, c), b + c, 0.5)))


def discordant(wrong_a, wrong_b) -> tuple[int, int]:
    """(b, c): trials wrong for A only, for B only."""
    a, b = np.asarray(wrong_a, bool), np.asarray(wrong_b, bool)
    return int(np.count_nonzero(a & ~b)), int(np.count_nonzero(~a & b))


def subject_bootstrap_difference(wrong_a, wrong_b, subject, *, n_boot: int = 1000, seed: int = 0,
                                 confidence: float = 0.95, weights: np.ndarray | None = None) -> dict:
    """Rate of A minus rate of B on the same trials, with a subject-bootstrap percentile interval.

    ``subject``: integer code (0..S-1) of each trial's person; ``weights``: precomputed
    ``(n_boot, S)`` multiplicities (so several comparisons can share resamples).
    """
    a, b = np.asarray(wrong_a, float), np.asarray(wrong_b, float)
    subject = np.asarray(subject, np.int64)
    if a.size == 0:
        return {"difference": None, "ci": [None, None], "n": 0}
    n_subj = int(subject.max()) + 1
    w = boot_.subject_weights(n_subj, n_boot, seed) if weights is None else weights
    sums = np.stack([np.bincount(subject, a, n_subj), np.bincount(subject, b, n_subj),
                     np.bincount(subject, minlength=n_subj).astype(float)], axis=1)
    tot = w[:, :n_subj] @ sums
    with np.errstate(invalid="ignore", divide="ignore"):
        draws = np.where(tot[:, 2] > 0, (tot[:, 0] - tot[:, 1]) / tot[:, 2], np.nan)
    lo, hi, _ = boot_.percentile_interval(draws[:, None], confidence)
    return {"difference": float((a.sum() - b.sum()) / a.size),
            "ci": [None if np.isnan(lo[0]) else float(lo[0]), None if np.isnan(hi[0]) else float(hi[0])],
            "n": int(a.size)}


def weighted_threshold_at_fpir(best_desc_unique: np.ndarray, counts: np.ndarray, target: float) -> float:
    """faceaudit's rule on weighted searches: the lowest float32 threshold with at most
    ``floor(target * total)`` weighted searches scoring ``>=`` it.

    ``best_desc_unique``: distinct best non-mate scores, descending; ``counts``: the total weight
    of the searches at each (integers for a bootstrap resample).
    """
    total = int(round(float(np.sum(counts))))
    allowed = allowed_errors(target, total)
    if allowed >= total:
        return -np.inf
    cum = np.cumsum(counts)
    i = int(np.searchsorted(cum, allowed + 0.5))  # first distinct score whose count >= it passes the allowance
    return float(np.nextafter(np.float32(best_desc_unique[i]), np.float32(np.inf)))

"""Error rates as counts with confidence intervals.

A :class:`Rate` keeps the integer counts it came from. With no trials it is *undefined*:
``value``, ``ci_low`` and ``ci_high`` are ``None``, never 0.
Intervals: Clopper-Pearson (exact, two-sided, conservative; default) or Wilson score.
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

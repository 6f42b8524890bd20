"""Input validation declared once, for both auditors: each helper checks one kind of input and
raises :class:`~auditcore.errors.InputError` (a ``ValueError``) with one line naming the input.

A public function checks its inputs at the top with these helpers, and its body then assumes
valid input; the messages live here, so the same mistake reads the same everywhere.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from auditcore.errors import InputError


def as_1d(name: str, values, dtype=None) -> np.ndarray:
    """``values`` as a 1-d array (of ``dtype``); InputError naming ``name`` if it is not 1-d."""
    array = np.asarray(values, dtype=dtype)
    if array.ndim != 1:
        raise InputError(f"{name} must be 1-d, got shape {array.shape}")
    return array


def mated_arrays(mate_score, mate_rank) -> tuple[np.ndarray, np.ndarray]:
    """Mated searches' mate scores (float64) and 1-based ranks (int64), checked: 1-d, the same
    length, every rank at least 1."""
    scores = as_1d("mate_score", mate_score, np.float64)
    ranks = as_1d("mate_rank", mate_rank, np.int64)
    if scores.shape != ranks.shape:
        raise InputError(f"mate_score and mate_rank differ in length: {scores.size} vs {ranks.size}")
    if ranks.size and ranks.min() < 1:
        raise InputError("mate ranks are 1-based and must be >= 1")
    return scores, ranks


def rate_targets(name: str, targets: Iterable[float]) -> list[float]:
    """Target or assumed rates (an FPIR target, ``--fpir``, flagaudit's base rates): each strictly
    between 0 and 1 (0 asks for no error at all, 1 for no threshold: neither is an operating
    point to report), as floats."""
    out = []
    for t in targets:
        t = float(t)
        if not 0 < t < 1:  # NaN fails too
            raise InputError(f"{name} must be strictly between 0 and 1, got {t:g}")
        out.append(t)
    return out


def rate_target(name: str, target: float) -> float:
    """One target rate for an operating-point search, in [0, 1] (0: no error allowed; 1: every
    trial may be an error, so the threshold is -inf)."""
    if not 0.0 <= target <= 1.0:
        raise InputError(f"{name} must be in [0, 1], got {target}")
    return target


def finite(name: str, values: Iterable[float]) -> None:
    """Every value a finite number (thresholds, scores typed by a user)."""
    for v in values:
        if not math.isfinite(v):
            raise InputError(f"{name} must be a finite number, got {v}")

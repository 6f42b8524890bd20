"""JSON-ready copies of results, shared by both auditors."""

from __future__ import annotations

import math

import numpy as np


def to_json(value):
    """JSON-ready copy: numpy scalars and arrays to Python, +-inf to "inf"/"-inf", NaN to null;
    objects with ``to_dict()`` (rates, intervals) as their dicts."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_json(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if hasattr(value, "to_dict"):
        return to_json(value.to_dict())
    return value


def thin(n: int, limit: int = 600) -> np.ndarray:
    """Indices 0..n-1 thinned to about ``limit``, dense at both ends (log-spaced)."""
    if n <= limit:
        return np.arange(n)
    half = limit // 2
    low = np.unique(np.geomspace(1, n, half).astype(np.int64) - 1)
    high = n - 1 - low
    mid = np.linspace(0, n - 1, limit // 4).astype(np.int64)
    return np.unique(np.concatenate([low, high, mid]))

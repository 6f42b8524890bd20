"""Subject-level (cluster) bootstrap, vectorised.

Searches and comparisons of one person are not independent trials: a person who is hard to
recognise is missed in all of their searches. The bootstrap therefore resamples *probe
subjects* with replacement and moves all of a subject's searches and comparisons together:

1. :func:`per_subject_sums`: every count needed (errors and trials of each rate in each group,
   and of each cell of the cross-group matrix) summed per subject -> ``S`` (subjects x columns);
2. :func:`subject_weights`: ``W`` (resamples x subjects), row ``b`` the multiplicity of each
   subject in resample ``b`` (a multinomial draw of ``n_subjects`` from equal probabilities);
3. ``W @ S``: every count of every resample in one matrix product.

Intervals are percentile intervals (:func:`percentile_interval`), computed from the resamples
where the statistic is defined; the number of undefined resamples is reported beside them.
Same seed, same resamples.
"""

from __future__ import annotations

import numpy as np


def subject_weights(n_subjects: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """``(n_boot, n_subjects)`` resampling multiplicities; each row sums to ``n_subjects``."""
    if n_subjects < 1 or n_boot < 1:
        raise ValueError(f"need at least one subject and one resample, got {n_subjects}, {n_boot}")
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_subjects, np.full(n_subjects, 1.0 / n_subjects), size=n_boot).astype(np.float64)


def per_subject_sums(subject, columns, values, n_subjects: int, n_columns: int) -> np.ndarray:
    """``S[s, c] = sum of values over units of subject s assigned to column c``.

    ``subject``, ``columns`` and ``values`` broadcast together (one entry per unit, or per unit
    and group for matrix counts).
    """
    subject, columns, values = np.broadcast_arrays(np.asarray(subject, np.int64), np.asarray(columns, np.int64),
                                                   np.asarray(values, np.float64))
    flat = subject.ravel() * n_columns + columns.ravel()
    return np.bincount(flat, weights=values.ravel(), minlength=n_subjects * n_columns).reshape(n_subjects, n_columns)


def resample_totals(weights: np.ndarray, sums: np.ndarray) -> np.ndarray:
    """``(n_boot, n_columns)`` totals of every resample."""
    return weights @ sums


def percentile_interval(samples, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile interval along axis 0, ignoring undefined (NaN) resamples.

    Returns ``(low, high, n_undefined)``; the bounds are order statistics of the defined
    resamples (``inverted_cdf``: no interpolation, so an infinite ratio stays infinite).
    Bounds are NaN where fewer than half the resamples are defined.
    """
    x = np.asarray(samples, dtype=np.float64)
    alpha = 1.0 - confidence
    defined = ~np.isnan(x)
    n_def = defined.sum(axis=0)
    filled = np.where(defined, x, np.inf)
    s = np.sort(filled, axis=0)
    k_lo = np.clip(np.ceil(alpha / 2 * n_def).astype(np.int64) - 1, 0, None)
    k_hi = np.clip(np.ceil((1 - alpha / 2) * n_def).astype(np.int64) - 1, 0, None)
    lo = np.take_along_axis(s, k_lo[None, ...], axis=0)[0]
    hi = np.take_along_axis(s, k_hi[None, ...], axis=0)[0]
    enough = n_def * 2 >= x.shape[0]
    return np.where(enough, lo, np.nan), np.where(enough, hi, np.nan), x.shape[0] - n_def


def weighted_sums(weights: np.ndarray, sums: np.ndarray) -> np.ndarray:
    """``weights @ sums`` with the same digits on every machine.

    When ``sums`` holds whole numbers (counts) the BLAS product is exact in any order and is used;
    otherwise (e.g. per-person rates) an explicit sum in a fixed order replaces BLAS, whose last
    digits depend on the machine's BLAS kernel.
    """
    weights = np.asarray(weights, np.float64)
    sums = np.asarray(sums, np.float64)
    if np.all(sums == np.round(sums)) and np.abs(sums).sum() * max(1.0, float(weights.max(initial=0))) < 2.0**52:
        return weights @ sums
    flat = sums.reshape(sums.shape[0], -1)
    out = np.empty((weights.shape[0], flat.shape[1]))
    for i in range(0, weights.shape[0], 32):
        out[i:i + 32] = (weights[i:i + 32, :, None] * flat[None, :, :]).sum(1)
    return out.reshape((weights.shape[0],) + sums.shape[1:])

"""The engine's hot loop: one fused pass over a block of raw similarity scores.

Isolated here so that another backend (GPU, distributed) can replace it without touching
metrics or reports. Everything a metric needs is reduced in this single pass over each
probe row of ``probe_block @ gallery.T``; nothing is sorted.

Score histogram keys: a float32 score ``s`` is mapped to the unsigned integer ``key(s)`` that
orders like the float (negatives: ``2**32 - bits``; non-negatives: ``bits | 2**31``; so -0.0
and 0.0 share a key); the bin is ``key >> HIST_SHIFT``. Each bin's lowest value is an exact
float32 (its *edge*) and "score >= edge" is decided exactly by "bin >= edge bin": counts at
edges are exact, not approximate. Edges include every float32 whose lowest HIST_SHIFT
mantissa bits are zero, of either sign (e.g. all multiples of 1/64 in [-1, 1]).
"""

from __future__ import annotations

import numba as nb
import numpy as np

HIST_SHIFT = 12
N_BINS = 1 << (32 - HIST_SHIFT)

COSINE = 0
NEG_EUCLIDEAN = 1


@nb.njit(cache=True, inline="always")
def _bin_of(bits: np.uint32) -> np.int64:
    """Histogram bin of a float32 given as its bit pattern (see the module docstring)."""
    b = np.uint64(bits)
    neg = b >> np.uint64(31)
    # negatives: two's-complement negation of the bits (so -0.0 lands with +0.0 and values
    # with zero low mantissa bits, such as -1.0, start their bin); non-negatives: set the
    # sign bit. Branch-free, in uint64 so that numba never promotes to a signed type.
    key = (b ^ ((neg * np.uint64(0x7FFFFFFF)) | np.uint64(0x80000000))) + neg
    return np.int64(key >> np.uint64(HIST_SHIFT))


@nb.njit(cache=True, inline="always")
def _insert(top_s, top_u, filled, k, m, u):
    """Insert subject ``u`` with score ``m`` into the descending top-k list (after equal
    scores, so earlier subjects win ties); return the new fill count."""
    pos = filled if filled < k else k - 1
    while pos > 0 and top_s[pos - 1] < m:
        top_s[pos] = top_s[pos - 1]
        top_u[pos] = top_u[pos - 1]
        pos -= 1
    top_s[pos] = m
    top_u[pos] = u
    return filled + 1 if filled < k else filled


@nb.njit(cache=True, parallel=True, fastmath=False)
def search_block(scores, bits, kind, probe_sqnorm, gallery_sqnorm, mate_subject, gallery_start,
                 gen_offset, thresholds, gallery_group, k,
                 best_nonmate, mate_score, n_nonmate_ge_mate, cand_subject, cand_score,
                 gen_scores, group_counts, hist):
    """Reduce one block of raw scores (rows = probes, columns = gallery sorted by subject).

    ``scores`` holds dot products on entry; for ``kind == NEG_EUCLIDEAN`` it is turned in place
    into ``-sqrt(max(|p|^2 + |g|^2 - 2 p.g, 0))``. ``bits`` is ``scores.view(uint32)``.
    A subject's score is the max over its gallery templates. For each row (probe) it writes:
    the best non-mate subject score, the mate subject score, the number of non-mate subjects
    scoring ``>=`` the mate (ties count against the mate), the top-``k`` candidates with the
    mate inserted at its tie-pessimistic rank, the exact genuine template scores, and (if
    ``thresholds`` is non-empty) per gallery group the impostor comparisons ``>= T``.
    Impostor template scores are added to ``hist[chunk]``.
    """
    n_rows = scores.shape[0]
    n_subjects = gallery_start.shape[0] - 1
    n_chunks = hist.shape[0]
    n_thr = thresholds.shape[0]
    single = gallery_start[n_subjects] == n_subjects
    for c in nb.prange(n_chunks):
        top_s = np.empty(k, dtype=np.float32)
        top_u = np.empty(k, dtype=np.int32)
        lo = (n_rows * c) // n_chunks
        hi = (n_rows * (c + 1)) // n_chunks
        for r in range(lo, hi):
            row = scores[r]
            if kind == NEG_EUCLIDEAN:
                pn = probe_sqnorm[r]
                for j in range(row.shape[0]):
                    d2 = pn + gallery_sqnorm[j] - np.float32(2.0) * row[j]
                    row[j] = -np.sqrt(max(d2, np.float32(0.0)))
            brow = bits[r]
            mu = mate_subject[r]
            mate = np.float32(-np.inf)
            if mu >= 0:
                off = gen_offset[r]
                for j in range(gallery_start[mu], gallery_start[mu + 1]):
                    s = row[j]
                    gen_scores[off + j - gallery_start[mu]] = s
                    if s > mate:
                        mate = s
            best = np.float32(-np.inf)
            n_ge = 0
            filled = 0
            h = hist[c]
            if single and n_thr == 0:
                # fast path, one template per subject: column j is subject j; skip the mate
                skip_lo = mu if mu >= 0 else n_subjects
                skip_hi = mu + 1 if mu >= 0 else n_subjects
                for seg in range(2):
                    a = 0 if seg == 0 else skip_hi
                    b = skip_lo if seg == 0 else n_subjects
                    for j in range(a, b):
                        m = row[j]
                        h[_bin_of(brow[j])] += 1
                        if m > best:
                            best = m
                        if m >= mate:
                            n_ge += 1
                        if filled < k or m > top_s[k - 1]:
                            filled = _insert(top_s, top_u, filled, k, m, j)
            else:
                for u in range(n_subjects):
                    if u == mu:
                        continue
                    m = np.float32(-np.inf)
                    for j in range(gallery_start[u], gallery_start[u + 1]):
                        s = row[j]
                        if s > m:
                            m = s
                        h[_bin_of(brow[j])] += 1
                        if n_thr > 0:
                            g = gallery_group[j]
                            for t in range(n_thr):
                                if s >= thresholds[t]:
                                    group_counts[r, g, t] += 1
                    if m > best:
                        best = m
                    if m >= mate:
                        n_ge += 1
                    if filled < k or m > top_s[k - 1]:
                        filled = _insert(top_s, top_u, filled, k, m, u)
            best_nonmate[r] = best
            if mu >= 0:
                mate_score[r] = mate
                n_nonmate_ge_mate[r] = n_ge
            # candidate list: non-mates in order, mate inserted at rank n_ge + 1 (1-based)
            out = 0
            src = 0
            while out < k:
                if mu >= 0 and out == n_ge:
                    cand_subject[r, out] = mu
                    cand_score[r, out] = mate
                elif src < filled:
                    cand_subject[r, out] = top_u[src]
                    cand_score[r, out] = top_s[src]
                    src += 1
                else:
                    cand_subject[r, out] = -1
                    cand_score[r, out] = np.nan
                out += 1

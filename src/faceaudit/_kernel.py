"""The engine's hot loop: reference scores, the BLAS screen's error bound, and one fused pass.

**Reference score.** The score of a pair is defined by the stored float32 vectors alone, in a way
that does not depend on the order of any sum, so every machine and every implementation that
computes it correctly gets the same float32:

* ``cosine``: each template ``x`` is normalised once to ``u = RN32(x / n)`` with
  ``n = sqrt(sum_k x_k^2)`` computed in float64 in index order (IEEE operations, no fused
  multiply-add: the same everywhere). The score is ``RN32(sum_k u_pk * u_gk)``, the exact real
  dot product rounded once to the nearest float32 (ties to even), clamped to [-1, 1]; two
  templates with identical ``u`` score exactly 1.0.
* ``neg_euclidean``: ``-RN32(sqrt(sum_k (p_k - g_k)^2))``, the exact real distance rounded once.

It is computed in two tiers: a float64 dot product in any order (vectorised), whose error is at
most ``(d + 2) 2^-52 |p||g|`` (products of float32 are exact in float64); when the float32
rounding of its whole error interval is one value, that value is the reference. Otherwise
(rare: the float64 value lies within about 1e-14 of a float32 rounding boundary) an exact
computation decides: the exact products summed as a floating-point expansion
(Shewchuk's error-free two-sum), compared exactly with the rounding boundaries.

**Screen.** The block's scores come from BLAS (float32 ``probes @ gallery.T``), which rounds
differently on every machine. Its error bound is derived in ``docs/engine.md`` (:func:`cosine_bound`,
:func:`euclid_bound`); any decision the screen cannot take with certainty (a histogram bin, a
comparison with the mate's score, a threshold, the top-K boundary) is taken on reference scores,
and every reported score is a reference score.

Score histogram keys: see :mod:`faceaudit.counts` (bins with exact float32 lower edges).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from faceaudit.counts import HIST_SHIFT, N_BINS

COSINE = 0
NEG_EUCLIDEAN = 1
U32 = 2.0**-24  # float32 unit roundoff
TINY = 2.0**-120


def cosine_bound(d: int) -> float:
    """Bound on |BLAS float32 dot of normalised templates - reference cosine| (docs/engine.md)."""
    gamma = d * U32 / (1 - d * U32)
    return (gamma * (1 + 2**-22) + d * 2.0**-126 + 2.0**-21) * 1.01


def euclid_bound(d: int, sq_p: np.ndarray, sq_g_max: float) -> np.ndarray:
    """Per probe: bound E on |screen squared distance - exact squared distance| (docs/engine.md)."""
    gamma = d * U32 / (1 - d * U32)
    return (gamma + 5 * U32) * (np.asarray(sq_p, np.float64) + sq_g_max) * 1.01 + d * 2.0**-126


@nb.njit(cache=True, inline="always")
def _row_sq(x, r):
    """``sum_k x[r, k]^2`` in float64, summed in index order (the reference order)."""
    s = 0.0
    for k in range(x.shape[1]):
        v = np.float64(x[r, k])
        s += v * v
    return s


@nb.njit(cache=True)
def normalise_rows(x, rows, out):
    """``out[i] = RN32(x[rows[i]] / n)``, ``n`` = float64 norm summed in index order."""
    d = x.shape[1]
    for i in range(rows.shape[0]):
        r = rows[i]
        n = math.sqrt(_row_sq(x, r))
        for k in range(d):
            out[i, k] = np.float32(np.float64(x[r, k]) / n)


@nb.njit(cache=True)
def sq_norms(x, rows, out):
    """``out[i] = sum_k x[rows[i], k]^2`` in float64, index order."""
    for i in range(rows.shape[0]):
        out[i] = _row_sq(x, rows[i])


@nb.njit(cache=True, inline="always")
def _bin_of32(fb, ub, s):
    """Histogram bin of a float32 value, bit-cast through the 1-element buffers fb/ub."""
    fb[0] = s
    return _bin_of(ub[0])


@nb.njit(cache=True, inline="always")
def _bin_of(bits: np.uint32) -> np.int64:
    b = np.uint64(bits)
    neg = b >> np.uint64(31)
    key = (b ^ ((neg * np.uint64(0x7FFFFFFF)) | np.uint64(0x80000000))) + neg
    return np.int64(key >> np.uint64(HIST_SHIFT))


# ---- exact arithmetic (rare path) --------------------------------------------------------

@nb.njit(cache=True, inline="always")
def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@nb.njit(cache=True)
def _grow(e, n, b):
    """Add ``b`` to the nonoverlapping expansion ``e[:n]`` (Shewchuk); return the new length."""
    q = b
    for i in range(n):
        q, h = _two_sum(q, e[i])
        e[i] = h
    e[n] = q
    return n + 1


@nb.njit(cache=True)
def _sign_minus(e, n, m, tmp):
    """Sign of (exact sum of e[:n]) - m."""
    for i in range(n):
        tmp[i] = e[i]
    n2 = _grow(tmp, n, -m)
    for i in range(n2 - 1, -1, -1):
        if tmp[i] > 0:
            return 1
        if tmp[i] < 0:
            return -1
    return 0


@nb.njit(cache=True)
def _odd32(c):
    return (np.array([c], dtype=np.float32).view(np.uint32)[0] & np.uint32(1)) == 1


@nb.njit(cache=True)
def _exact_cosine(p, g, approx):
    """RN32 of the exact dot product of float32 vectors ``p`` and ``g``."""
    d = p.shape[0]
    e = np.zeros(d + 2)
    tmp = np.zeros(d + 3)
    n = 0
    for k in range(d):
        n = _grow(e, n, np.float64(p[k]) * np.float64(g[k]))
    c = np.float32(approx)
    while True:
        up = np.float32(np.nextafter(c, np.float32(np.inf)))
        s = _sign_minus(e, n, (np.float64(c) + np.float64(up)) * 0.5, tmp)
        if s > 0 or (s == 0 and _odd32(c)):
            c = up
            continue
        down = np.float32(np.nextafter(c, np.float32(-np.inf)))
        s = _sign_minus(e, n, (np.float64(c) + np.float64(down)) * 0.5, tmp)
        if s < 0 or (s == 0 and _odd32(c)):
            c = down
            continue
        return c


@nb.njit(cache=True)
def _exact_distance(p, g, approx):
    """RN32 of the exact Euclidean distance of float32 vectors ``p`` and ``g``."""
    d = p.shape[0]
    e = np.zeros(3 * d + 2)
    tmp = np.zeros(3 * d + 3)
    n = 0
    for k in range(d):
        a = np.float64(p[k])
        b = np.float64(g[k])
        n = _grow(e, n, a * a)
        n = _grow(e, n, b * b)
        n = _grow(e, n, -2.0 * (a * b))
    c = np.float32(approx)
    while True:
        up = np.float32(np.nextafter(c, np.float32(np.inf)))
        m = (np.float64(c) + np.float64(up)) * 0.5
        s = _sign_minus(e, n, m * m, tmp)
        if s > 0 or (s == 0 and _odd32(c)):
            c = up
            continue
        if c > 0:
            down = np.float32(np.nextafter(c, np.float32(-np.inf)))
            m = (np.float64(c) + np.float64(down)) * 0.5
            s = _sign_minus(e, n, m * m, tmp)
            if s < 0 or (s == 0 and _odd32(c)):
                c = down
                continue
        return c


# ---- reference score (fast tier + exact tier) ----------------------------------------------

@nb.njit(cache=True, fastmath={"reassoc", "contract"})
def _dot64(p, g):
    acc = 0.0
    for k in range(p.shape[0]):
        acc += np.float64(p[k]) * np.float64(g[k])
    return acc


@nb.njit(cache=True, fastmath={"reassoc", "contract"})
def _dist64(p, g):
    acc = 0.0
    for k in range(p.shape[0]):
        t = np.float64(p[k]) - np.float64(g[k])
        acc += t * t
    return acc


@nb.njit(cache=True)
def reference(kind, p, g):
    """Reference score of one pair (see the module docstring). Returns (score, exact_tier_used)."""
    d = p.shape[0]
    if kind == COSINE:
        v = _dot64(p, g)
        err = (d + 2) * 2.0**-52 * 1.0001 + 2.0**-1000
        lo = np.float32(v - err)
        hi = np.float32(v + err)
        tier = 0
        if lo == hi:
            c = lo
        else:
            c = _exact_cosine(p, g, v)
            tier = 1
        if c >= np.float32(1.0) - np.float32(2.0**-20):
            same = True
            for k in range(d):
                if p[k] != g[k]:
                    same = False
                    break
            if same:
                return np.float32(1.0), tier
        if c > np.float32(1.0):
            c = np.float32(1.0)
        elif c < np.float32(-1.0):
            c = np.float32(-1.0)
        return c, tier
    v = _dist64(p, g)
    eps = (d + 6) * 2.0**-53
    r = math.sqrt(v)
    lo = np.float32(r * (1.0 - 2.0 * eps))
    hi = np.float32(r * (1.0 + 2.0 * eps))
    if lo == hi:
        return -lo, 0
    return -_exact_distance(p, g, r), 1


@nb.njit(cache=True, parallel=True)
def reference_pairs(kind, P, G, pi, gi, out):
    """Reference scores of pairs (P[pi[i]], G[gi[i]]) into ``out`` (for tests and tools)."""
    for i in nb.prange(pi.shape[0]):
        out[i] = reference(kind, P[pi[i]], G[gi[i]])[0]


@nb.njit(cache=True, parallel=True)
def genuine_block(kind, P, G, mate_subject, gallery_start, gen_offset, gen_scores, mate_score):
    """Reference scores of every probe row vs its mate's gallery templates; mate = their max."""
    for r in nb.prange(P.shape[0]):
        mu = mate_subject[r]
        if mu < 0:
            continue
        m = np.float32(-np.inf)
        off = gen_offset[r]
        for j in range(gallery_start[mu], gallery_start[mu + 1]):
            s = reference(kind, P[r], G[j])[0]
            gen_scores[off + j - gallery_start[mu]] = s
            if s > m:
                m = s
        mate_score[r] = m


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


@nb.njit(cache=True)
def _bound_tables(kind, beta, e_row, dtab, mtab):
    """Per float32 exponent field E: ``dtab[E]`` bounds |screen - reference| for screen scores
    of that binade (padded for the float64 arithmetic that uses it); ``mtab[E]`` is that bound
    in units of the binade's ulp, rounded up, plus one (so a score whose histogram key is fewer
    than ``mtab[E]`` ulps from a bin edge may lie on the other side of it)."""
    sqrt_e = math.sqrt(e_row)
    for e in range(256):
        lo_mag = 0.0 if e == 0 else 2.0 ** (e - 127)
        hi_mag = 2.0 ** (e - 126)
        if kind == COSINE:
            dl = beta
        else:
            dl = sqrt_e
            if lo_mag > 0.0:
                q = e_row / lo_mag * 1.01
                if q < dl:
                    dl = q
            dl = dl + 2.2 * U32 * hi_mag
        dl = dl * (1.0 + 2.0**-20) + 2.0**-22 * hi_mag + TINY
        dtab[e] = dl
        ulp = 2.0 ** (max(e, 1) - 150)
        m = dl / ulp
        mtab[e] = 4097 if (e == 255 or m > 4096.0) else np.int64(m) + 1


@nb.njit(cache=True, fastmath={"reassoc", "contract"})
def _dot_row(p64, G, j):
    acc = 0.0
    for k in range(p64.shape[0]):
        acc += p64[k] * np.float64(G[j, k])
    return acc


@nb.njit(cache=True, fastmath={"reassoc", "contract"})
def _dist_row(p64, G, j):
    acc = 0.0
    for k in range(p64.shape[0]):
        t = p64[k] - np.float64(G[j, k])
        acc += t * t
    return acc


@nb.njit(cache=True, inline="always")
def _ref_fast(kind, p, p64, G, j):
    """Reference score of (p, G[j]): the float64 tier inline, :func:`reference` when undecided."""
    d = p64.shape[0]
    if kind == COSINE:
        v = _dot_row(p64, G, j)
        err = (d + 2) * 2.0**-52 * 1.0001 + 2.0**-1000
        lo = np.float32(v - err)
        if lo == np.float32(v + err) and lo < np.float32(1.0) - np.float32(2.0**-20) and lo >= np.float32(-1.0):
            return lo
        return reference(kind, p, G[j])[0]
    v = _dist_row(p64, G, j)
    eps = (d + 6) * 2.0**-53
    r = math.sqrt(v)
    lo = np.float32(r * (1.0 - 2.0 * eps))
    if lo == np.float32(r * (1.0 + 2.0 * eps)):
        return -lo
    return reference(kind, p, G[j])[0]


@nb.njit(cache=True, inline="always")
def _ref_cached(kind, p, p64, G, j, row, known, touched, nt, counter):
    """Reference score of column j, computed once per row. ``known``: 0 not computed, 1 computed,
    2 waiting for the histogram batch, 3 computed and waiting for the histogram batch."""
    st = known[j]
    if st == 0 or st == 2:
        row[j] = _ref_fast(kind, p, p64, G, j)
        counter[0] += 1
        if st == 0:
            touched[nt] = j
            nt += 1
            known[j] = 1
        else:
            known[j] = 3
    return row[j], nt


@nb.njit(cache=True, parallel=True)
def euclid_transform(scores, probe_sq, gallery_sq):
    """Dot products to the screen's negated distances, in place: ``-sqrt(max(|p|^2 + |g|^2 - 2 p.g, 0))``."""
    for r in nb.prange(scores.shape[0]):
        pn = probe_sq[r]
        row = scores[r]
        for j in range(row.shape[0]):
            d2 = pn + gallery_sq[j] - np.float32(2.0) * row[j]
            row[j] = -np.sqrt(max(d2, np.float32(0.0)))


@nb.njit(cache=True)
def row_tables(kind, beta, e_rows, dtabs, mtabs):
    """:func:`_bound_tables` for every row."""
    for r in range(dtabs.shape[0]):
        _bound_tables(kind, beta, e_rows[r], dtabs[r], mtabs[r])


@nb.njit(cache=True, parallel=True)
def resolve_bins(scores, bits, kind, P, P64, G, mtabs, marks, recomputed, tile):
    """Replace, in place, every screen score whose histogram bin the screen cannot decide by its
    reference score, and mark it. Gallery tiles outermost, so a tile of templates is read from
    memory once for all rows of the block (the recomputation is otherwise bound by memory)."""
    n_rows, n_g = scores.shape
    for t0 in range(0, n_g, tile):
        t1 = min(t0 + tile, n_g)
        for r in nb.prange(n_rows):
            mtab = mtabs[r]
            brow = bits[r]
            row = scores[r]
            cnt = 0
            for j in range(t0, t1):
                bj = np.uint64(brow[j])
                ex = (bj >> np.uint64(23)) & np.uint64(0xFF)
                neg = bj >> np.uint64(31)
                key = (bj ^ ((neg * np.uint64(0x7FFFFFFF)) | np.uint64(0x80000000))) + neg
                low = np.int64(key & np.uint64(0xFFF))
                mg = mtab[ex]
                if not (low >= mg and 4096 - low > mg):
                    row[j] = _ref_fast(kind, P[r], P64[r], G, j)
                    marks[r, j] = 1
                    cnt += 1
            recomputed[nb.get_thread_id(), 0] += cnt


@nb.njit(cache=True, parallel=True)
def search_block(scores, bits, kind, P, G, P64, dtabs, mtabs, marks, mate_subject, mate_score,
                 gallery_start, subject_offset, thresholds, gallery_group, k,
                 best_out, n_ge_out, top_subject, top_score, group_counts, hist, scratch_f, scratch_i,
                 scratch_b, recomputed):
    """Reduce one block of BLAS screen scores against one gallery shard.

    Rows are probes; columns are the shard's gallery templates sorted by subject
    (``gallery_start``: subject boundaries within the shard; ``subject_offset``: global index
    of the shard's first subject). ``scores`` holds float32 dot products on entry (turned in
    place into distances for NEG_EUCLIDEAN, and reference scores where computed). Writes per
    row: the best non-mate subject reference score, the number of non-mate subjects whose
    reference score is ``>=`` ``mate_score`` (global mate index ``mate_subject``, -1 if none),
    the top-``k`` non-mates by reference score (ties: lower subject index first), per gallery
    group the impostor comparisons ``>= thresholds``, and the reference impostor histogram
    (``hist[thread]``). Scratch arrays are per thread.
    """
    n_rows = scores.shape[0]
    n_subjects = gallery_start.shape[0] - 1
    n_thr = thresholds.shape[0]
    for r in nb.prange(n_rows):
        tid = nb.get_thread_id()
        h = hist[tid]
        lower = scratch_f[tid, 0]
        upper = scratch_f[tid, 1]
        known = scratch_b[tid]
        touched = scratch_i[tid]
        counter = recomputed[tid]
        nt = 0
        fb = np.empty(1, np.float32)
        ub = fb.view(np.uint32)
        row = scores[r]
        p = P[r]
        p64 = P64[r]
        brow = bits[r]
        mrow = marks[r]
        dtab = dtabs[r]
        mtab = mtabs[r]
        mu = mate_subject[r] - subject_offset
        mate = np.float64(mate_score[r])
        has_mate = mate_subject[r] >= 0
        # top-k of the screen's lower bounds: its k-th value bounds the reference top-k from below
        top_lo = np.full(k, -np.inf)
        filled_lo = 0
        for u in range(n_subjects):
            if u == mu:
                continue
            lo_u = -np.inf
            hi_u = -np.inf
            for j in range(gallery_start[u], gallery_start[u + 1]):
                s = np.float64(row[j])
                if mrow[j]:  # a reference score already (resolve_bins)
                    h[_bin_of32(fb, ub, row[j])] += 1
                    known[j] = 1
                    touched[nt] = j
                    nt += 1
                    if s > lo_u:
                        lo_u = s
                    if s > hi_u:
                        hi_u = s
                    if n_thr > 0:
                        gg = gallery_group[j]
                        for t in range(n_thr):
                            if row[j] >= thresholds[t]:
                                group_counts[r, gg, t] += 1
                    continue
                bj = np.uint64(brow[j])
                ex = (bj >> np.uint64(23)) & np.uint64(0xFF)
                dl = dtab[ex]
                a = s - dl
                b = s + dl
                neg = bj >> np.uint64(31)
                key = (bj ^ ((neg * np.uint64(0x7FFFFFFF)) | np.uint64(0x80000000))) + neg
                low = np.int64(key & np.uint64(0xFFF))
                mg = mtab[ex]
                if low >= mg and 4096 - low > mg:
                    h[np.int64(key >> np.uint64(HIST_SHIFT))] += 1
                elif known[j] == 0:  # binned after this pass, in one batch
                    known[j] = 2
                    touched[nt] = j
                    nt += 1
                if n_thr > 0:
                    gg = gallery_group[j]
                    for t in range(n_thr):
                        tt = np.float64(thresholds[t])
                        if a >= tt:
                            group_counts[r, gg, t] += 1
                        elif b >= tt:
                            v, nt = _ref_cached(kind, p, p64, G, j, row, known, touched, nt, counter)
                            if v >= thresholds[t]:
                                group_counts[r, gg, t] += 1
                if known[j] == 1 or known[j] == 3:
                    a = np.float64(row[j])
                    b = a
                if a > lo_u:
                    lo_u = a
                if b > hi_u:
                    hi_u = b
            lower[u] = lo_u
            upper[u] = hi_u
            if filled_lo < k or lo_u > top_lo[k - 1]:
                pos = filled_lo if filled_lo < k else k - 1
                while pos > 0 and top_lo[pos - 1] < lo_u:
                    top_lo[pos] = top_lo[pos - 1]
                    pos -= 1
                top_lo[pos] = lo_u
                if filled_lo < k:
                    filled_lo += 1
        kth = top_lo[k - 1] if filled_lo == k else -np.inf
        # the histogram's undecided comparisons, in one batch (vectorised float64 tier)
        for i in range(nt):
            j = touched[i]
            st = known[j]
            if st == 2:
                row[j] = _ref_fast(kind, p, p64, G, j)
                counter[0] += 1
                st = 3
            if st == 3:
                h[_bin_of32(fb, ub, row[j])] += 1
                known[j] = 1
        # second pass over subjects: reference scores where the bounds cannot decide
        ts = top_score[r]
        tu = top_subject[r]
        filled = 0
        n_ge = 0
        for u in range(n_subjects):
            if u == mu:
                continue
            need_top = upper[u] >= kth
            ge_sure = has_mate and lower[u] >= mate
            need_rank = has_mate and (not ge_sure) and upper[u] >= mate
            if need_top or need_rank:
                m = np.float32(-np.inf)
                for j in range(gallery_start[u], gallery_start[u + 1]):
                    v, nt = _ref_cached(kind, p, p64, G, j, row, known, touched, nt, counter)
                    if v > m:
                        m = v
                if need_rank and m >= mate_score[r]:
                    n_ge += 1
                if need_top and (filled < k or m > ts[k - 1]):
                    filled = _insert(ts, tu, filled, k, m, u + subject_offset)
            if ge_sure:
                n_ge += 1
        for i in range(filled, k):
            ts[i] = np.nan
            tu[i] = -1
        best_out[r] = ts[0] if filled > 0 else np.float32(-np.inf)
        n_ge_out[r] = n_ge
        for i in range(nt):
            known[touched[i]] = 0


@nb.njit(cache=True)
def assemble_candidates(top_u, top_s, mate_subject, mate_score, n_ge, cand_u, cand_s):
    """Candidate lists: the non-mates in order with the mate inserted at rank ``n_ge + 1``."""
    k = top_u.shape[1]
    for r in range(top_u.shape[0]):
        mu = mate_subject[r]
        src = 0
        for out in range(k):
            if mu >= 0 and out == n_ge[r]:
                cand_u[r, out] = mu
                cand_s[r, out] = mate_score[r]
            else:
                cand_u[r, out] = top_u[r, src]
                cand_s[r, out] = top_s[r, src]
                src += 1

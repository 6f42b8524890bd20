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

It is computed in tiers: a float64 dot product in any order (vectorised), whose error is at
most ``(d + 2) 2^-52 |p||g|`` (products of float32 are exact in float64); when the float32
rounding of its whole error interval is one value, that value is the reference. Otherwise
(rare: the float64 value lies within about 1e-14 of a float32 rounding boundary, mostly scores
near 0, where float32 values are that close) a compensated sum of the exact products, with an
error bound of about ``(d u)^2`` of the sum of their magnitudes, decides the same way
(:func:`_compensated`); and when that cannot (a value on or within about 1e-28 of a rounding
boundary) an exact computation decides: the exact products summed as a floating-point
expansion (Shewchuk's error-free two-sum), compared exactly with the rounding boundaries.

**Screen.** A tile's scores come from BLAS (float32 ``probes @ gallery.T``), which rounds
differently on every machine. Its error bound is derived in ``docs/engine.md`` (:func:`cosine_bound`,
:func:`euclid_bound`); any decision the screen cannot take with certainty (a histogram bin, a
comparison with the mate's score, a threshold, the top-K boundary) is taken on reference scores,
and every reported score is a reference score.

Score histogram keys: see :mod:`faceaudit.engine.counts` (fine and coarse bins with exact float32
lower edges). :func:`reduce_tile` is the hot loop.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from faceaudit.engine.counts import HIST_SHIFT

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
    n = np.int64(0)  # not the literal 0: _grow and _sign_minus are compiled for int64 only
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
    n = np.int64(0)  # not the literal 0: _grow and _sign_minus are compiled for int64 only
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

@nb.njit(cache=True)
def _compensated(kind, p, g):
    """The middle tier: the exact float64 terms (products of float32 are exact) summed with
    cascaded error-free two-sums (Ogita, Rump & Oishi's Sum2, the sum kept as ``s + sigma``).
    ``|s + sigma - exact sum| <= gamma_{n-2} gamma_{n-1} sum|terms| <= (n u)^2 sum|terms|``
    (u = 2^-53, n terms), taken twice for the rounding of ``sum|terms|``. Returns (decided,
    RN32 of the cosine or of the distance): decided when the float32 rounding of the whole
    interval is one value; near a score of 0, where the float64 tier's absolute error spans
    float32 values, this settles what the exact tier otherwise would, about 50 times faster."""
    d = p.shape[0]
    s = 0.0
    sig = 0.0
    mag = 0.0
    n = 0
    for k in range(d):
        a = np.float64(p[k])
        b = np.float64(g[k])
        if kind == COSINE:
            s, q = _two_sum(s, a * b)
            sig += q
            mag += abs(a * b)
            n += 1
        else:
            for t in (a * a, b * b, -2.0 * (a * b)):
                s, q = _two_sum(s, t)
                sig += q
                mag += abs(t)
            n += 3
    nu = n * 2.0**-53
    bound = 2.0 * nu * nu * mag * 1.01 + 2.0**-1000
    t = s + sig
    r = bound * (1.0 + 2.0**-50) + 2.0**-51 * abs(t) + 2.0**-1000  # also the roundings of t and t -/+ r
    lo = t - r
    hi = t + r
    if kind == COSINE:
        c = np.float32(lo)
        return c == np.float32(hi), c
    dlo = math.sqrt(max(lo, 0.0)) * (1.0 - 2.0**-51)
    dhi = math.sqrt(max(hi, 0.0)) * (1.0 + 2.0**-51)
    c = np.float32(dlo)
    return c == np.float32(dhi), c



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
    """Reference score of one pair (see the module docstring). Returns (score, tier): 0 the
    float64 tier decided it, 2 the compensated one (:func:`_compensated`), 1 the exact one."""
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
            ok, c = _compensated(kind, p, g)
            tier = 2
            if not ok:
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
    ok, c = _compensated(kind, p, g)
    if ok:
        return -c, 2
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
    v = _dot_row(p64, G, j) if kind == COSINE else _dist_row(p64, G, j)
    return _ref_from(kind, v, p, G, j)


@nb.njit(cache=True, fastmath={"reassoc", "contract"})
def _dot4(kind, p64, G, j0, j1, j2, j3):
    """The float64 tier's sums (:func:`_dot_row` or :func:`_dist_row`) for four gallery rows at
    once: four independent chains instead of one, so the recomputations of a row overlap. The
    order of the sums differs from one call to another, which the tier's bound allows: it holds
    for any order of summation (fused multiply-adds included), see :func:`reference`."""
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    if kind == COSINE:
        for k in range(p64.shape[0]):
            pk = p64[k]
            a0 += pk * np.float64(G[j0, k])
            a1 += pk * np.float64(G[j1, k])
            a2 += pk * np.float64(G[j2, k])
            a3 += pk * np.float64(G[j3, k])
    else:
        for k in range(p64.shape[0]):
            pk = p64[k]
            t0 = pk - np.float64(G[j0, k])
            t1 = pk - np.float64(G[j1, k])
            t2 = pk - np.float64(G[j2, k])
            t3 = pk - np.float64(G[j3, k])
            a0 += t0 * t0
            a1 += t1 * t1
            a2 += t2 * t2
            a3 += t3 * t3
    return a0, a1, a2, a3


@nb.njit(cache=True, inline="always")
def _ref_from(kind, v, p, G, j):
    """Reference score of (p, G[j]) from ``v``, the float64 tier's sum (a dot product, or a
    squared distance) in any order: its float32 rounding when the tier's error interval rounds
    to one value, else :func:`reference`."""
    d = p.shape[0]
    if kind == COSINE:
        err = (d + 2) * 2.0**-52 * 1.0001 + 2.0**-1000
        lo = np.float32(v - err)
        if lo == np.float32(v + err) and lo < np.float32(1.0) - np.float32(2.0**-20) and lo >= np.float32(-1.0):
            return lo
        return reference(kind, p, G[j])[0]
    eps = (d + 6) * 2.0**-53
    r = math.sqrt(v)
    lo = np.float32(r * (1.0 - 2.0 * eps))
    if lo == np.float32(r * (1.0 + 2.0 * eps)):
        return -lo
    return reference(kind, p, G[j])[0]


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


# ---- the tiled pass: one BLAS tile at a time, reduced while it is in cache ----------------
#
# Histogram of impostor scores at two resolutions (see faceaudit.engine.counts): every comparison is
# counted in a *coarse* bin (cosine: 2^-COARSE_BITS wide, absolute; neg_euclidean: groups of
# 2^COARSE_SHIFT fine bins), and comparisons in coarse bins ``>= floor`` also in their *fine*
# bin; ``floor`` is fixed before the pass, below the final split (the engine checks it).
# ``ch`` has a few interleaved copies of the coarse counts (consecutive increments of one
# counter would wait on each other).

COARSE_BITS = 8
COARSE_SHIFT = 6
N_COARSE_COS = (1 << (COARSE_BITS + 1)) + 1
N_COARSE_EUC = 1 << (32 - HIST_SHIFT - COARSE_SHIFT)
N_COPIES = 4


@nb.njit(cache=True, inline="always")
def _key(bits):
    b = np.uint64(bits)
    neg = b >> np.uint64(31)
    return (b ^ ((neg * np.uint64(0x7FFFFFFF)) | np.uint64(0x80000000))) + neg


@nb.njit(cache=True, inline="always")
def coarse_of(kind, v):
    """Coarse bin of a reference score ``v`` (float32), exactly."""
    if kind == COSINE:  # v * 2^COARSE_BITS is exact in float64, and so is its floor
        return np.int64(math.floor(np.float64(v) * 2.0**COARSE_BITS)) + (1 << COARSE_BITS)
    return np.int64(_key(np.float32(v).view(np.uint32)) >> np.uint64(HIST_SHIFT + COARSE_SHIFT))


@nb.njit(cache=True)
def tile_tables(kind, beta, e_rows, g_max, psq, dl_row, mtab_fine, mtab_coarse):
    """Per probe row: ``dl_row`` bounds |screen - reference| for any score of the row (used for
    subject maxima and thresholds); ``mtab_fine[r, E]``/``mtab_coarse[r, E]``: that bound for
    screen scores of float32 exponent field E in ulps, rounded up, plus one (a score whose key
    is fewer ulps from a fine/coarse bin edge may lie on the other side of it)."""
    dtab = np.empty(256)
    mtab = np.empty(256, np.int64)
    wc = 1 << (HIST_SHIFT + COARSE_SHIFT)
    for r in range(dl_row.shape[0]):
        _bound_tables(kind, beta, e_rows[r], dtab, mtab)
        if kind == COSINE:
            top = 2.0
        else:  # the screen distance is at most about |p| + |g|
            top = 2.0 * (math.sqrt(np.float64(psq[r])) + math.sqrt(g_max)) + 1.0
        worst = 0.0
        for e in range(256):
            mtab_fine[r, e] = mtab[e]
            ulp = 2.0 ** (max(e, 1) - 150)
            m = dtab[e] / ulp
            mtab_coarse[r, e] = wc + 1 if (e == 255 or m > wc) else np.int64(m) + 1
            lo_mag = 0.0 if e == 0 else 2.0 ** (e - 127)
            if lo_mag <= top and dtab[e] > worst:
                worst = dtab[e]
        dl_row[r] = worst


@nb.njit(cache=True, inline="always")
def _subject(kind, p, p64, G, j0, j1):
    """Reference score of a subject: the max over its templates ``G[j0:j1]``."""
    m = np.float32(-np.inf)
    for j in range(j0, j1):
        v = _ref_fast(kind, p, p64, G, j)
        if v > m:
            m = v
    return m


@nb.njit(cache=True, inline="always")
def _fine_ref(kind, v, fh):
    fh[np.int64(_key(np.float32(v).view(np.uint32)) >> np.uint64(HIST_SHIFT))] += 1


LOOK = 1 << 30  # added to a coarse bin: the score needs a closer look (subject gate, thresholds)
UND = 1 << 29  # added to the never-read bin: the screen cannot decide the coarse bin
BIN_MASK = UND - 1


@nb.njit(cache=True, nogil=True)
def _screen_cosine(row, n, mc, gate, tmin, cbv, n_coarse):
    """Vectorised: each screen score's coarse bin (``n_coarse``, a bin never read, when the
    screen cannot decide it), plus ``LOOK`` when it needs a closer look (not decided, or at the
    subject gate or a threshold)."""
    dummy = np.int32(n_coarse + UND)
    look = np.int32(LOOK)
    # float32 arithmetic (twice the lanes): x is off by at most 2^-15 (s * 2^8 is exact, the
    # sum is rounded once below 2^10), which the margin absorbs
    m32 = np.float32(mc + 2.0**-14)
    hi32 = np.float32(1.0) - m32
    top = np.float32(n_coarse)
    g32 = np.float32(max(min(gate, 4.0), -4.0))  # |s| < 2: the clamp keeps every decision
    t32 = np.float32(max(min(tmin, 4.0), -4.0))
    g32 = np.float32(np.nextafter(g32, np.float32(-np.inf)))  # at or below the gate: flags a superset
    t32 = np.float32(np.nextafter(t32, np.float32(-np.inf)))
    for j in range(n):
        s = row[j]
        x = s * np.float32(2.0**COARSE_BITS) + np.float32(2.0**COARSE_BITS)
        ci = np.int32(x)
        fr = x - np.float32(ci)
        ok = (fr > m32) & (fr < hi32) & (x >= np.float32(0.0)) & (x < top)
        c = ci if ok else dummy
        cbv[j] = c + (look if ((s >= g32) | (s >= t32)) else np.int32(0))


@nb.njit(cache=True, nogil=True)
def _screen_euclid(row, n, pn, gsq, mct, top, gate, tmin, cbv, n_coarse):
    """As :func:`_screen_cosine` for neg_euclidean; turns the row's dot products into the
    screen's negated distances in place. The margins in ulps (``mct``, per float32 exponent
    field) are read for the four binades below ``top`` (a bound on the row's distances; any
    other exponent counts as undecided), by selects rather than a table look-up, so that the
    loop vectorises."""
    wc = np.uint32(1 << (HIST_SHIFT + COARSE_SHIFT))
    sh = np.uint32(HIST_SHIFT + COARSE_SHIFT)
    g32 = np.float32(np.nextafter(np.float32(max(gate, -3e38)), np.float32(-np.inf)))  # flags a superset
    t32 = np.float32(np.nextafter(np.float32(max(tmin, -3e38)), np.float32(-np.inf)))
    look = np.int32(LOOK)
    dummy = np.int32(n_coarse + UND)
    big = np.uint32(wc + np.uint32(1))
    e_hi = np.int64((np.float32(top).view(np.uint32) >> np.uint32(23)) & np.uint32(0xFF))
    e_lo = min(max(e_hi - 3, 1), 251)
    m0 = np.uint32(mct[e_lo])
    m1 = np.uint32(mct[e_lo + 1])
    m2 = np.uint32(mct[e_lo + 2])
    m3 = np.uint32(mct[e_lo + 3])
    el = np.uint32(e_lo)
    for j in range(n):
        d2 = pn + gsq[j] - np.float32(2.0) * row[j]
        s = -np.sqrt(max(d2, np.float32(0.0)))
        row[j] = s
        # 32-bit integers throughout (numba widens integer arithmetic to 64 bits; the casts let
        # the compiler use twice the lanes); no step wraps differently in 32 bits
        b = np.float32(s).view(np.uint32)
        kb = np.uint32(np.uint32(~b) + np.uint32(1))  # s <= 0: its histogram key (see _key), < 2^32
        i = np.uint32(np.uint32(np.uint32(b >> np.uint32(23)) & np.uint32(0xFF)) - el)
        mg = m0 if i == np.uint32(0) else (m1 if i == np.uint32(1) else (m2 if i == np.uint32(2) else (m3 if i == np.uint32(3) else big)))
        lowc = np.uint32(kb & np.uint32(wc - np.uint32(1)))
        ok = (lowc >= mg) & (np.uint32(wc - lowc) > mg)
        c = np.int32(np.uint32(kb >> sh)) if ok else dummy
        cbv[j] = c + (look if ((s >= g32) | (s >= t32)) else np.int32(0))


@nb.njit(cache=True, inline="always")
def _col(e):
    """The column of an entry of ``und`` in :func:`reduce_tile`: ``j`` (the coarse bin is
    undecided) or ``~j`` (only the fine bin)."""
    return e ^ (e >> 63)


@nb.njit(cache=True, inline="always")
def _low_bit(m):
    """Index of the lowest set bit of ``m`` (uint64, not 0): the exponent of its lowest bit
    as a float64 (a power of two up to 2^63, exact)."""
    low = m & (~m + np.uint64(1))
    return np.int64(np.float64(low).view(np.uint64) >> np.uint64(52)) - 1023


@nb.njit(cache=True, nogil=True)
def _kth_screen(kind, row, pn, gsq, gstart, c0, s_lo, s_hi, mu, kv):
    """The ``kv.size``-th largest screen score among the tile's non-mate subjects' maxima (each
    subject counted once; ``-inf`` if fewer). neg_euclidean: from the row's dot products, by the
    screen's own float32 arithmetic (:func:`_screen_euclid`)."""
    k = kv.shape[0]
    n = 0
    for u in range(s_lo, s_hi):
        if u == mu:
            continue
        mx = np.float32(-np.inf)
        for j in range(gstart[u] - c0, gstart[u + 1] - c0):
            if kind == COSINE:
                s = row[j]
            else:
                d2 = pn + gsq[j] - np.float32(2.0) * row[j]
                s = -np.sqrt(max(d2, np.float32(0.0)))
            if s > mx:
                mx = s
        if n < k or mx > kv[k - 1]:
            pos = n if n < k else k - 1
            while pos > 0 and kv[pos - 1] < mx:
                kv[pos] = kv[pos - 1]
                pos -= 1
            kv[pos] = mx
            if n < k:
                n += 1
    return np.float64(kv[k - 1]) if n == k else -np.inf


@nb.njit(cache=True, nogil=True)
def reduce_tile(kind, scores, n_rows, P, P64, psq, G, gsq, c0, gstart, col_subject, s_lo, s_hi, subject_offset,
                mate_subject, mate_score, dl_row, mtab_fine, mtab_coarse, thresholds, gallery_group,
                k, top_s, top_u, filled, n_ge, group_counts, ch, fh, floor, cbv, und, spec, counter):
    """Reduce one BLAS tile: rows ``0:n_rows`` of ``scores`` (probe rows) against the shard's
    columns ``c0:c0 + scores.shape[1]``, which hold its subjects ``s_lo:s_hi`` (``gstart``:
    subject bounds in shard columns, ``col_subject``: each shard column's subject;
    ``G``/``gsq``: the tile's vectors and float32 squared norms).

    Per row it keeps, across tiles: the top-``k`` non-mate subjects by reference score
    (``top_s``/``top_u``/``filled``; ties: the lower subject index first), the number of
    non-mate subjects whose reference score is ``>=`` the mate's (``n_ge``), per gallery group
    the impostor comparisons ``>= thresholds``; every impostor comparison in the coarse
    histogram ``ch`` and, from coarse bin ``floor`` up, in the fine histogram ``fh``. Whatever
    the screen cannot decide within its bound (``dl_row`` for subject maxima and thresholds;
    ``mtab_*`` in ulps for histogram bins) is decided on reference scores.

    Per row: a vectorised pass gives each score its coarse bin (with ``UND`` where the screen
    cannot decide it, ``LOOK`` where it needs a closer look: the gates, thresholds); a tight pass
    counts the bins; a vectorised pass of 64-column bit masks lists the flagged and fine-region
    columns (``spec``); a branch-free pass over those counts the fine bins the screen decides and
    splits the rest into what waits for a reference score (``und``) and what is marked (compacted
    into ``spec``), which is then looked at closer. The histogram bins the screen cannot decide
    are recomputed at the end of the row, in a batch (the float64 tier four at a time). While a row's top-``k`` list is not yet full (its
    first tile of the shard), the screen's gate comes from the tile itself: no subject whose
    screen maximum is more than ``2 dl`` below the ``k``-th largest non-mate subject's can reach
    the top ``k`` (see :func:`_kth_screen`).
    """
    n_cols = scores.shape[1]
    n_thr = thresholds.shape[0]
    cosine = kind == COSINE
    n_coarse = ch.shape[1] - 1  # the last bin takes what the screen could not decide; never read
    mask = np.int32(BIN_MASK)
    und_bit = np.int32(UND)
    look_bit = np.int32(LOOK)
    mc = dl_row[0] * 2.0**COARSE_BITS * (1 + 2.0**-20) + 2.0**-40  # cosine: margin in coarse bins
    lim = np.int32(min(floor, n_coarse))  # at or above: a closer look (n_coarse: the mate or undecided)
    n_rec = 0
    kv = np.empty(k, np.float32)
    vals = np.empty(n_cols)
    gmax = 0.0
    if not cosine:
        for j in range(n_cols):
            gmax = max(gmax, np.float64(gsq[j]))
    for r in range(n_rows):
        row = scores[r]
        bits = row.view(np.uint32)
        p = P[r]
        p64 = P64[r]
        dl = dl_row[r]
        mft = mtab_fine[r]
        has_mate = mate_subject[r] >= 0
        mu = mate_subject[r] - subject_offset
        ms = np.float64(mate_score[r]) if has_mate else np.inf
        ts = top_s[r]
        tu = top_u[r]
        fl = filled[r]
        kth = np.float64(ts[k - 1]) if fl == k else -np.inf
        gate = min(ms, kth) - dl - 1e-12
        sgate = gate  # the screen's gate
        if fl < k:  # the top k is not full yet: the tile's own k-th subject bounds it
            ks = _kth_screen(kind, row, psq[r], gsq, gstart, c0, s_lo, s_hi, mu, kv)
            sgate = min(ms - dl, ks - 2.0 * dl - abs(ks) * 2.0**-20) - 1e-12
        tmin = np.inf
        for t in range(n_thr):
            tmin = min(tmin, np.float64(thresholds[t]) - dl - 1e-12)
        if cosine:
            _screen_cosine(row, n_cols, mc, sgate, tmin, cbv, n_coarse)
        else:
            top = 2.0 * (math.sqrt(np.float64(psq[r])) + math.sqrt(gmax)) + 1.0  # > any distance
            _screen_euclid(row, n_cols, psq[r], gsq, mtab_coarse[r], top, sgate, tmin, cbv, n_coarse)
        if mu >= s_lo and mu < s_hi:  # the mate's templates are no impostors: the never-read bin
            for j in range(gstart[mu] - c0, gstart[mu + 1] - c0):
                cbv[j] = n_coarse
        for j in range(n_cols):  # count every bin
            ch[j & (N_COPIES - 1), cbv[j] & mask] += 1
        # list what needs more: marked (c >= LOOK), undecided (UND) or in the fine region; a
        # 64-column bit mask at a time (vectorised), then its set bits
        ns = 0
        nw = n_cols >> 6
        for w in range(nw):
            m = np.uint64(0)
            for b in range(64):
                m |= np.uint64(cbv[w * 64 + b] >= lim) << np.uint64(b)
            while m != np.uint64(0):
                spec[ns] = w * 64 + _low_bit(m)
                ns += 1
                m &= m - np.uint64(1)
        for j in range(nw * 64, n_cols):
            spec[ns] = j
            ns += cbv[j] >= lim
        nu = 0
        nl = 0
        for jx in range(ns):  # branch-free: fine bins, what waits for a reference score, what needs a look
            j = spec[jx]
            c = cbv[j]
            cb = c & mask
            bj = bits[j]
            kb = _key(bj)
            low = np.int64(kb & np.uint64(0xFFF))
            mg = mft[np.int64((np.uint64(bj) >> np.uint64(23)) & np.uint64(0xFF))]
            fok = (low >= mg) & (4096 - low > mg)  # the screen decides the fine bin
            fin = (cb >= floor) & (cb < n_coarse)  # coarse bin decided, in the fine region
            uc = (c & und_bit) != 0  # coarse bin undecided (the mate: n_coarse, neither)
            fh[np.int64(kb >> np.uint64(HIST_SHIFT))] += np.int64(fin & fok)
            und[nu] = j if uc else ~j
            nu += np.int64(uc | (fin & (not fok)))
            spec[nl] = j  # in place: nl <= jx
            nl += np.int64(c >= look_bit)
        last_u = -1
        for jx in range(nl):  # marked: at a threshold or at the subject gate
            j = spec[jx]
            s = row[j]
            if n_thr > 0 and np.float64(s) >= tmin:
                gg = gallery_group[j + c0]
                for t in range(n_thr):
                    tt = np.float64(thresholds[t])
                    if np.float64(s) - dl >= tt:
                        group_counts[r, gg, t] += 1
                    elif np.float64(s) + dl >= tt:
                        v = _ref_fast(kind, p, p64, G, j)
                        n_rec += 1
                        if v >= thresholds[t]:
                            group_counts[r, gg, t] += 1
            u = col_subject[j + c0] - subject_offset
            if np.float64(s) >= gate and u != last_u:  # may be >= the mate's score, or in the top k
                last_u = u
                j0 = gstart[u] - c0
                j1 = gstart[u + 1] - c0
                mx = np.float32(-np.inf)
                for jj in range(j0, j1):
                    if row[jj] > mx:
                        mx = row[jj]
                sure = np.float64(mx) - dl >= ms
                if sure:
                    n_ge[r] += 1
                hi = np.float64(mx) + dl
                if (hi >= ms and not sure) or hi > kth:
                    m = _subject(kind, p, p64, G, j0, j1)
                    n_rec += j1 - j0
                    if has_mate and not sure and m >= mate_score[r]:
                        n_ge[r] += 1
                    if fl < k or m > ts[k - 1]:
                        fl = _insert(ts, tu, fl, k, m, u + subject_offset)
                        if fl == k:
                            kth = np.float64(ts[k - 1])
                            gate = min(ms, kth) - dl - 1e-12
        filled[r] = fl
        i = 0  # the float64 tier of every undecided one first, four at a time
        while i + 4 <= nu:
            a0, a1, a2, a3 = _dot4(kind, p64, G, _col(und[i]), _col(und[i + 1]), _col(und[i + 2]), _col(und[i + 3]))
            vals[i] = a0
            vals[i + 1] = a1
            vals[i + 2] = a2
            vals[i + 3] = a3
            i += 4
        for i in range(i, nu):
            vals[i] = _dot_row(p64, G, _col(und[i])) if cosine else _dist_row(p64, G, _col(und[i]))
        for i in range(nu):  # histogram bins the screen left undecided, on reference scores
            j = und[i]
            isc = j >= 0  # the coarse bin (and the fine one if in the fine region); else the fine bin
            v = _ref_from(kind, vals[i], p, G, _col(j))
            cr = coarse_of(kind, v)
            ch[0, cr] += np.int64(isc)
            fh[np.int64(_key(np.float32(v).view(np.uint32)) >> np.uint64(HIST_SHIFT))] += np.int64((not isc) | (cr >= floor))
        n_rec += nu
    counter[0] += n_rec

"""The reduction's inner passes against independent computations (docs/engine.md, "What limits
the engine now"): the batched float64 tier (four gallery rows at a time, its own summation
order) within the tier's bound of exact rational arithmetic and deciding the same reference
scores; the 64-column bit-mask listing; the ``und`` list's column encoding; and both screens'
bins and marks against a plain numpy rewrite of the documented rule (the neg_euclidean screen
now works in 32-bit integers, the marks keep "undecided" apart from "needs a look")."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from test_exact_engine import adversarial, exact_cosine, exact_neg_distance, normalised

from faceaudit.engine import _kernel
from faceaudit.engine.counts import HIST_SHIFT


def _exact_sum(kind: int, p: np.ndarray, g: np.ndarray) -> Fraction:
    if kind == _kernel.COSINE:
        return sum(Fraction(float(a)) * Fraction(float(b)) for a, b in zip(p, g))
    return sum((Fraction(float(a)) - Fraction(float(b))) ** 2 for a, b in zip(p, g))


@pytest.mark.parametrize("kind", [_kernel.COSINE, _kernel.NEG_EUCLIDEAN])
@pytest.mark.parametrize("d", [4, 16, 128])
def test_batched_float64_tier_is_within_its_bound_and_decides_the_reference(kind, d):
    """``_dot4`` sums four rows in an order of its own (vectorised, fused multiply-adds); the
    float64 tier's bound is for any order: (d + 2) 2^-52 sum|p_k g_k| for the dot product,
    (d + 6) 2^-53 relative for the squared distance (the kernel uses twice that on the root).
    Each lane must be its own row's sum (a swapped or shifted lane is far outside the bound), and
    ``_ref_from`` on it must give the reference score, equal to exact rational arithmetic."""
    x = adversarial(48, d, seed=d + 7 * kind)
    if kind == _kernel.COSINE:
        x = normalised(x)
    P, G = x[:8], x[8:]
    rng = np.random.default_rng(d)
    for r in range(P.shape[0]):
        p64 = P[r].astype(np.float64)
        js = rng.choice(G.shape[0], size=4, replace=False)
        vals = _kernel._dot4(kind, p64, G, *[int(j) for j in js])
        for v, j in zip(vals, js):
            exact = _exact_sum(kind, P[r], G[j])
            if kind == _kernel.COSINE:
                bound = Fraction((d + 2) * 2.0**-52) * sum(abs(Fraction(float(a)) * Fraction(float(b)))
                                                          for a, b in zip(P[r], G[j]))
            else:
                bound = Fraction((d + 6) * 2.0**-53) * exact
            assert abs(Fraction(float(v)) - exact) <= bound
            want = exact_cosine(P[r], G[j]) if kind == _kernel.COSINE else exact_neg_distance(P[r], G[j])
            got = _kernel._ref_from(kind, v, P[r], G, int(j))
            assert np.float32(got).view(np.uint32) == np.float32(want).view(np.uint32)


def test_low_bit_and_column_encoding():
    for b in range(64):
        assert _kernel._low_bit(np.uint64(1) << np.uint64(b)) == b
        assert _kernel._low_bit(~np.uint64(0) << np.uint64(b)) == b
    rng = np.random.default_rng(0)
    for m in rng.integers(1, 2**63, size=200, dtype=np.int64).astype(np.uint64):
        bits = []
        while m:
            bits.append(_kernel._low_bit(m))
            m &= m - np.uint64(1)
        assert bits == sorted(bits) and len(bits) == len(set(bits))
    for j in [0, 1, 5, 1023, 2**40]:
        assert _kernel._col(np.int64(j)) == j
        assert _kernel._col(np.int64(~j)) == j


def _marks(s32: np.ndarray, gate: float, tmin: float) -> np.ndarray:
    g32 = np.nextafter(np.float32(gate), np.float32(-np.inf))
    t32 = np.nextafter(np.float32(tmin), np.float32(-np.inf))
    return np.where((s32 >= g32) | (s32 >= t32), _kernel.LOOK, 0)


def test_cosine_screen_bins_and_marks_follow_the_rule():
    rng = np.random.default_rng(1)
    n_coarse = _kernel.N_COARSE_COS
    edges = (np.arange(-256, 257) / 256).astype(np.float32)
    row = np.concatenate([rng.uniform(-1.2, 1.2, 3000), edges, np.nextafter(edges, 2), np.nextafter(edges, -2),
                          edges + np.float32(7e-6), edges - np.float32(7e-6), [-3.0, 3.0, 0.0]]).astype(np.float32)
    mc = _kernel.cosine_bound(128) * 256 * (1 + 2.0**-20) + 2.0**-40
    for gate, tmin in [(0.3, np.inf), (-np.inf, np.inf), (0.9, -0.2)]:
        cbv = np.empty(row.size, np.int32)
        _kernel._screen_cosine(row, row.size, mc, gate, tmin, cbv, n_coarse)
        # the rule, in float64: decided when 256 s + 256 is more than the margin (padded by
        # 2^-14 for the float32 arithmetic) from an integer and inside the histogram
        x = row.astype(np.float64) * 256 + 256
        fr = x - np.floor(x)
        margin = np.float32(mc + 2.0**-14)
        sure = (fr > margin + 2.0**-14) & (fr < 1 - margin - 2.0**-14) & (x >= 0) & (x < n_coarse)
        unsure = (np.abs(fr - np.round(fr)) < margin - 2.0**-14) | (x < 0) | (x >= n_coarse)
        bins = cbv & _kernel.BIN_MASK
        assert np.all(bins[sure] == np.floor(x[sure]))
        assert np.all(bins[unsure] == n_coarse) and np.all(cbv[unsure] & _kernel.UND)
        assert np.all((cbv & _kernel.UND != 0) == (bins == n_coarse))
        assert np.array_equal(cbv & _kernel.LOOK, _marks(row, gate, tmin))


def _screen_euclid_numpy(dots, pn, gsq, mct, top, gate, tmin, n_coarse):
    """The neg_euclidean screen's rule in numpy, 64-bit integers."""
    wc = 1 << (HIST_SHIFT + _kernel.COARSE_SHIFT)
    d2 = (np.float32(pn) + gsq) - np.float32(2.0) * dots
    s = -np.sqrt(np.maximum(d2, np.float32(0.0)))
    b = s.view(np.uint32).astype(np.int64)
    kb = ((~b) + 1) & 0xFFFFFFFF
    e_hi = int((np.float32(top).view(np.uint32) >> 23) & 0xFF)
    e_lo = min(max(e_hi - 3, 1), 251)
    e = (b >> 23) & 0xFF
    i = e - e_lo
    mg = np.where((i >= 0) & (i <= 3), mct[np.clip(e, 0, 255)], wc + 1)
    lowc = kb & (wc - 1)
    ok = (lowc >= mg) & (wc - lowc > mg)
    c = np.where(ok, kb >> (HIST_SHIFT + _kernel.COARSE_SHIFT), n_coarse + _kernel.UND)
    g = max(gate, -3e38)
    t = max(tmin, -3e38)
    return s, c + _marks(s, g, t)


def test_euclid_screen_bins_and_marks_follow_the_rule():
    """Distances across several binades (the four the screen reads margins for, and outside
    them), exact zeros (d2 <= 0), and scores on coarse edges."""
    rng = np.random.default_rng(2)
    n_coarse = _kernel.N_COARSE_EUC
    n = 4096
    gsq = rng.uniform(0.0, 4.0, n).astype(np.float32)
    pn = np.float32(1.5)
    dots = rng.uniform(-2.5, 2.5, n).astype(np.float32)
    dots[:50] = (pn + gsq[:50]) / np.float32(2.0)  # distance 0 (or d2 slightly negative)
    dots[50:100] = np.float32(3.0)  # d2 < 0
    top = 2.0 * (np.sqrt(np.float64(pn)) + 2.0) + 1.0
    mct = np.empty((1, 256), np.int64)
    dl = np.empty(1)
    mf = np.empty((1, 256), np.int64)
    e_rows = _kernel.euclid_bound(64, np.array([pn], np.float64), 4.0)
    _kernel.tile_tables(_kernel.NEG_EUCLIDEAN, _kernel.cosine_bound(64), e_rows, 4.0,
                        np.array([pn], np.float32), dl, mf, mct)
    # scores whose keys lie exactly at, and one ulp either side of, each margin in the four
    # binades the screen reads (and the binades next to them): pn = 0, dot 0, |g|^2 = RN32(s^2),
    # so the screen's distance is exactly |s| (sqrt(RN32(s^2)) = |s| for float32)
    wc = 1 << (HIST_SHIFT + _kernel.COARSE_SHIFT)
    e_hi = int((np.float32(top).view(np.uint32) >> 23) & 0xFF)
    keys = []
    for e in range(e_hi - 5, e_hi + 2):
        mg = int(mct[0, e])
        for low in {0, 1, mg - 1, mg, mg + 1, wc - mg - 1, wc - mg, wc - mg + 1, wc - 1}:
            if 0 <= low < wc:
                keys.append(((0x80000000 - ((e << 23) | 5 * wc)) & ~(wc - 1)) + low)
    bits = (np.uint64(2**32) - np.array(keys, np.uint64)).astype(np.uint32)
    s_exact = bits.view(np.float32)
    assert np.all(s_exact < 0)
    gsq_t = (s_exact.astype(np.float32) * s_exact).astype(np.float32)
    for gate, tmin in [(-1.0, np.inf), (-np.inf, np.inf)]:
        row = np.zeros(gsq_t.size, np.float32)
        cbv = np.empty(gsq_t.size, np.int32)
        _kernel._screen_euclid(row, row.size, np.float32(0.0), gsq_t, mct[0], top, gate, tmin, cbv, n_coarse)
        assert np.array_equal(row.view(np.uint32), bits)
        _, want = _screen_euclid_numpy(np.zeros(gsq_t.size, np.float32), 0.0, gsq_t, mct[0], top, gate, tmin, n_coarse)
        assert np.array_equal(cbv.astype(np.int64), want)
    for gate, tmin in [(-1.0, np.inf), (-np.inf, np.inf), (-2.5, -0.5)]:
        row = dots.copy()
        cbv = np.empty(n, np.int32)
        _kernel._screen_euclid(row, n, pn, gsq, mct[0], top, gate, tmin, cbv, n_coarse)
        s, want = _screen_euclid_numpy(dots, pn, gsq, mct[0], top, gate, tmin, n_coarse)
        assert np.array_equal(row.view(np.uint32), s.view(np.uint32))
        assert np.array_equal(cbv.astype(np.int64), want)
        assert 0 < (cbv & _kernel.UND != 0).sum() < n // 2  # some undecided, most decided

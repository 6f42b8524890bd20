"""Identification and verification metrics: hand-worked cases, brute force, and sklearn."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_curve

from auditcore.intervals import allowed_errors, rate
from faceaudit.engine.counts import hist_edges, score_bin
from faceaudit.metrics import identification as ident
from faceaudit.metrics import verification as verif


# ---------------------------------------------------------------- identification, by hand
def test_fpir_counts_one_error_per_search():
    # 4 non-mated searches; their best non-mate scores. At T = 0.5, searches 2 and 3 return
    # someone (however many non-mates passed in each): FPIR = 2/4, never "#non-mates above T"
    best = [0.1, 0.6, 0.5, 0.3]
    r = ident.fpir(best, 0.5)
    assert (r.errors, r.trials, r.value) == (2, 4, 0.5)


def test_fnir_rank_and_threshold_by_hand():
    # mate scores and ranks of 5 mated searches
    mate = [0.9, 0.8, 0.4, 0.7, 0.95]
    rank = [1, 2, 1, 1, 3]
    # rank 1, T = 0.5: search 2 (rank 2), 3 (score .4 < .5), 5 (rank 3) are misses -> 3/5
    assert ident.fnir(mate, rank, 0.5, rank=1).errors == 3
    # rank 2, T = 0.5: misses are search 3 (score) and 5 (rank 3) -> 2/5
    assert ident.fnir(mate, rank, 0.5, rank=2).errors == 2
    # no threshold, rank 3: nobody is missed
    assert ident.fnir(mate, rank, -np.inf, rank=3).errors == 0
    # a score equal to T is a match
    assert ident.fnir(mate, rank, 0.4, rank=5).errors == 0
    np.testing.assert_allclose(ident.cmc(rank, 4), [3 / 5, 4 / 5, 1.0, 1.0])


def test_threshold_at_fpir_is_lowest_and_never_above_target_with_ties():
    # 10 non-mated searches, ties at 0.8. Target 0.2 allows floor(0.2*10) = 2 false positives.
    best = np.float32([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 0.8, 0.8, 0.9])
    op = ident.threshold_at_fpir(best, 0.2)
    assert op.allowed_errors == 2
    # T = 0.8 would give 4 false positives (ties): the threshold must sit above 0.8
    assert op.threshold > 0.8 and op.achieved.errors == 1
    lower = np.nextafter(np.float32(op.threshold), np.float32(-np.inf))
    assert ident.fpir(best, lower).errors > 2  # the next lower float32 exceeds the allowed count
    # target 0.4 allows 4: T just above 0.6 gives exactly 4
    op = ident.threshold_at_fpir(best, 0.4)
    assert op.achieved.errors == 4 and 0.6 < op.threshold < 0.8
    # target 1 allows everything
    assert ident.threshold_at_fpir(best, 1.0).threshold == -np.inf


@pytest.mark.parametrize("target,n,want", [(0.29, 100, 29), (0.07, 100, 7), (0.1, 30, 3), (1e-3, 999, 0),
                                           (0.001, 1000, 1), (0.57, 100, 57)])
def test_allowed_errors_exact_floor(target, n, want):
    assert allowed_errors(target, n) == want


def test_threshold_at_fpir_brute_force_random():
    rng = np.random.default_rng(0)
    for trial in range(50):
        best = np.round(rng.standard_normal(rng.integers(1, 60)) * 4).astype(np.float32) / 4  # many ties
        target = float(rng.choice([0.01, 0.05, 0.1, 0.29, 0.5]))
        op = ident.threshold_at_fpir(best, target)
        allowed = int(np.floor(round(target * best.size, 9)))
        candidates = np.unique(np.concatenate([best, np.nextafter(best, np.float32(np.inf))]))
        ok = [t for t in candidates if (best >= t).sum() <= allowed]
        want = min(ok) if (best >= -np.inf).sum() > allowed else -np.inf
        assert op.threshold == want
        assert op.achieved.errors <= allowed


def test_undefined_rates_have_no_value():
    assert ident.fpir([], 0.5).value is None
    assert ident.fnir([], [], 0.5).value is None
    assert rate(0, 0).ci_low is None
    assert np.isnan(ident.cmc([], 3)).all()
    assert ident.threshold_at_fpir([], 0.01).threshold is None


def test_identification_curve_matches_direct_counts():
    rng = np.random.default_rng(2)
    best = np.round(rng.normal(0, 1, 300) * 8) / 8
    mate = np.round(rng.normal(2, 1, 200) * 8) / 8
    rank = rng.integers(1, 4, 200)
    curve = ident.identification_curve(best, mate, rank, rank=1)
    for i in range(0, curve.thresholds.size, 5):
        t = curve.thresholds[i]
        assert curve.false_positives[i] == ident.fpir(best, t).errors
        assert curve.misses[i] == ident.fnir(mate, rank, t, rank=1).errors


# ---------------------------------------------------------------- verification vs sklearn
def _impostor_hist(scores):
    return np.bincount(score_bin(np.float32(scores)), minlength=hist_edges().size)


def test_multiples_of_1_64_are_bin_edges():
    values = np.float32(np.arange(-64, 65) / 64)
    edges = hist_edges()
    assert np.array_equal(edges[score_bin(values)], values)


def test_verification_curve_matches_sklearn_roc():
    rng = np.random.default_rng(4)
    genuine = np.round(rng.normal(0.5, 0.2, 400).clip(-1, 1) * 64) / 64  # exact bin edges, ties
    impostor = np.round(rng.normal(0.0, 0.2, 5000).clip(-1, 1) * 64) / 64
    curve = verif.verification_curve(genuine, _impostor_hist(impostor))
    y = np.r_[np.ones(genuine.size), np.zeros(impostor.size)]
    fpr, tpr, thr = roc_curve(y, np.r_[genuine, impostor], drop_intermediate=False)
    for f, t, th in zip(fpr[1:], tpr[1:], thr[1:]):  # sklearn: score >= th is positive
        i = np.flatnonzero(curve.thresholds == th)
        assert i.size == 1
        assert curve.false_matches[i[0]] == round(f * impostor.size)
        assert curve.false_non_matches[i[0]] == round((1 - t) * genuine.size)
    # and FMR/FNMR by direct counting at every candidate threshold
    for i, t in enumerate(curve.thresholds):
        assert curve.false_matches[i] == (impostor >= t).sum()
        assert curve.false_non_matches[i] == (genuine < t).sum()


def test_fnmr_at_fmr_lowest_threshold_despite_ties():
    # 100 impostors: 95 at 0, 5 tied at 0.5. Genuine at 0.25, 0.5, 0.75, 1.
    impostor = np.r_[np.zeros(95), np.full(5, 0.5)]
    genuine = np.float32([0.25, 0.5, 0.75, 1.0])
    curve = verif.verification_curve(genuine, _impostor_hist(impostor))
    # FMR = 0.01 allows 1 false match: T = 0.5 gives 5 (ties), so the threshold is the next
    # edge above 0.5, where 0 impostors match; FNMR there is 2/4
    p = verif.fnmr_at_fmr(curve, 0.01)
    assert p.measurable and p.threshold > 0.5 and p.fmr.errors == 0 and p.fnmr.errors == 2
    # FMR = 0.05 allows 5: the lowest threshold is the edge just above 0 (excluding the 95
    # zeros), far below 0.25 and 0.5; FNMR there is 0/4
    p = verif.fnmr_at_fmr(curve, 0.05)
    edges = hist_edges()
    assert p.threshold == edges[score_bin(np.float32([0.0]))[0] + 1]
    assert 0 < p.threshold < 1e-30 and p.fmr.errors == 5 and p.fnmr.errors == 0
    # FMR = 1e-3 needs >= 1000 impostors: not measurable
    assert not verif.fnmr_at_fmr(curve, 1e-3).measurable


def test_eer_hand_worked():
    # impostors 0, .25, .5, .75 ; genuines .5, .75, 1, 1. For T in (0.5, 0.75]: FMR 1/4 and
    # FNMR 1/4; the lowest such candidate is the edge just above 0.5
    curve = verif.verification_curve(np.float32([0.5, 0.75, 1, 1]), _impostor_hist([0, 0.25, 0.5, 0.75]))
    eer = verif.equal_error_rate(curve)
    assert 0.5 < eer.threshold < 0.5005 and eer.fmr.errors == 1 and eer.fnmr.errors == 1
    assert eer.eer_midpoint == 0.25


# ---------------------------------------------------------------- intervals
@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (17, 2000), (1, 1)])
def test_intervals_match_scipy(k, n):
    ref = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    r = rate(k, n)
    assert r.ci_low == pytest.approx(ref.low, abs=1e-9) and r.ci_high == pytest.approx(ref.high, abs=1e-9)
    ref = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    w = rate(k, n, method="wilson")
    assert w.ci_low == pytest.approx(ref.low, abs=1e-9) and w.ci_high == pytest.approx(ref.high, abs=1e-9)

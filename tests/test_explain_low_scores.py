"""explain at low top scores, where a large audit's impostor histogram is folded into coarse bins.

Below the fine tail, a folded histogram keeps only coarse bins (neg_euclidean: 64 fine bins, about
0.016 wide at distance 0.8), wider than the impostor density's window (+-h, Silverman's h: about
0.003 with 1e8 comparisons). The window then held no bin edge at half the scores there, the
impostor density read 0, the posterior exactly 1 (nothing but the mate could score there), and
pooling adjacent violators spread those ones over every lower score: on the full LFW with dlib,
explain said 28% where 0.1% of the top candidates were the person (calibration bin 0.612-0.705).

Here the score distributions are known (mate distance N(0.5, 0.1), impostor distance N(1, 0.1)),
the histogram holds their exact expected counts, folded as an audit folds it, and explain's answer
(no candidate lists: the independence model) is checked against the independence model's exact
posterior from those distributions (scipy.stats), far below the mates and in the fine region."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from faceaudit.analyses.explain import ScoreModel, explain_curves
from faceaudit.engine.counts import COARSE_SHIFT, hist_edges, score_bin

MATE = stats.norm(0.5, 0.1)  # distances
IMPOSTOR = stats.norm(1.0, 0.1)
N_IMPOSTOR = 10**8
GALLERY = 50
PRIOR = 0.5


def _bin(x: float) -> int:
    return int(score_bin(np.float32(x)))


def _folded_hist(fine_from: int) -> np.ndarray:
    """Expected impostor counts (scores = -distance) in a histogram with fine bins from ``fine_from``
    up and coarse bins (64 fine bins, counted at their lower edge) below it, as an audit folds it."""
    edges = hist_edges()  # float32 (its NaN bins are not cast: some are signalling NaNs)
    hist = np.zeros(edges.size, np.int64)

    def mass(lo, hi):  # P(lo <= score < hi) = P(-hi < distance <= -lo)
        return IMPOSTOR.cdf(-lo.astype(float)) - IMPOSTOR.cdf(-hi.astype(float))

    fine = np.arange(fine_from, _bin(-0.01) + 1)  # no impostor mass closer than 0.01
    hist[fine] = np.rint(N_IMPOSTOR * mass(edges[fine], edges[fine + 1]))
    coarse = np.arange(_bin(-2.0) >> COARSE_SHIFT, fine_from >> COARSE_SHIFT) << COARSE_SHIFT
    upper = np.minimum(coarse + (1 << COARSE_SHIFT), fine_from)
    hist[coarse] = np.rint(N_IMPOSTOR * mass(edges[coarse], edges[upper]))
    return hist


def _model():
    fine_from = (_bin(-0.75) >> COARSE_SHIFT) << COARSE_SHIFT  # coarse below distance 0.75
    mates = MATE.ppf((np.arange(4000) + 0.5) / 4000)  # the mate distances' quantiles: 0.13 to 0.87
    return ScoreModel(-mates, _folded_hist(fine_from), None, None, GALLERY, 1.0, None, "neg_euclidean", fine_from)


@pytest.fixture(scope="module")
def curves():
    return explain_curves(_model(), GALLERY, PRIOR, n_boot=50)


def exact(d: float) -> float:
    """The independence model's P(top is the mate | top distance d) from the true distributions:
    P f_g G_{N-1} / (P f_g G_{N-1} + P F_g g_{N-1} + (1 - P) g_N), G_M = F_i^M, g_M = M f_i F_i^(M-1)
    (in the score, -distance: F_i(S) = P(impostor distance > d), F_g(S) = P(mate distance > d))."""
    f_g, F_g = MATE.pdf(d), MATE.sf(d)
    f_i, F_i = IMPOSTOR.pdf(d), IMPOSTOR.sf(d)
    n = GALLERY
    mate = PRIOR * f_g * F_i ** (n - 1)
    look_alike = PRIOR * F_g * (n - 1) * f_i * F_i ** (n - 2)
    absent = (1 - PRIOR) * n * f_i * F_i ** (n - 1)
    return mate / (mate + look_alike + absent)


def at(curves, d: float, key: str = "point") -> float:
    return float(np.interp(-d, curves["grid"], curves[key]))


def test_the_histogram_is_folded_coarser_than_the_density_window():
    # the situation of the defect: below the fine region a bin is several windows wide
    edges = hist_edges()
    b = (_bin(-0.8) >> COARSE_SHIFT) << COARSE_SHIFT
    width = float(edges[b + (1 << COARSE_SHIFT)]) - float(edges[b])
    h = 1.06 * 0.1 * N_IMPOSTOR ** -0.2
    assert width > 4 * h


@pytest.mark.parametrize("d", [0.78, 0.8, 0.82, 0.85])
def test_far_below_the_mates_the_answer_follows_the_model(curves, d):
    # exact: 0.3% to 5% here; the old fold-blind window pooled ones into about 40% (a flat plateau)
    truth = exact(d)
    got = at(curves, d)
    assert 1e-4 < truth < 0.06
    assert abs(np.log(got / truth)) < np.log(2), (d, got, truth)


@pytest.mark.parametrize("d", [0.55, 0.6, 0.65, 0.7, 0.745, 0.75, 0.755])
def test_in_the_fine_region_and_at_the_fold_the_answer_follows_the_model(curves, d):
    # 0.745 to 0.755: the density window straddles the fold (fine bins above distance 0.75, coarse
    # below); left as +-h it missed the coarse bin below and put the answer 1.5 times too high
    truth = exact(d)
    got = at(curves, d)
    assert abs(np.log(got / truth)) < np.log(1.3), (d, got, truth)


def test_no_plateau_and_still_monotone(curves):
    point = curves["point"]
    assert np.all(np.diff(point) >= 0)
    # from distance 0.9 to 0.7 the exact answer rises from 1e-5 to 0.19; a pooled plateau is flat
    assert exact(0.7) > 1000 * exact(0.9)
    assert at(curves, 0.7) > 1000 * at(curves, 0.9)
    assert at(curves, 0.9) < 1e-4


def test_below_every_mate_the_answer_is_near_0_with_an_upper_bound_above_the_truth(curves):
    # the lowest mate distance is 0.87; at 0.9 the exact answer is 1.1e-5
    truth = exact(0.9)
    assert curves["low"][0] <= at(curves, 0.9, "low") <= truth <= at(curves, 0.9, "high") < 1e-4

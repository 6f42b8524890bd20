"""explain on heterogeneous populations: the calibration check, Monte Carlo at other sizes."""

from __future__ import annotations

import numpy as np
import pytest

from faceaudit.analyses.explain import ScoreModel, calibration_check, explain, posterior_terms
from faceaudit.analyses.simscores import ScorePopulation
from faceaudit.audit import run_audit
from faceaudit.data.synthetic import make_population
from faceaudit.metrics.tail import fit_tail


def test_gamma_model_reduces_to_independence_formula():
    # theta = 0 is exactly P f_g F_i / (P f_g F_i + P (N-1) f_i F_g + (1-P) N f_i F_i), by hand
    f_g, F_g, f_i, F_i, n, prior = 1.3, 0.2, 0.7, 0.999, 50, 0.3
    hand = prior * f_g * F_i / (prior * f_g * F_i + prior * (n - 1) * f_i * F_g + (1 - prior) * n * f_i * F_i)
    assert float(posterior_terms(f_g, F_g, F_i, f_i, n, prior, 0.0)) == pytest.approx(hand, rel=1e-9)
    # a tiny theta is a continuous limit
    assert float(posterior_terms(f_g, F_g, F_i, f_i, n, prior, 1e-7)) == pytest.approx(hand, rel=1e-4)


def test_gamma_best_of_matches_monte_carlo_mixture():
    # G_M(s) = E[(1-q)^(M lambda)] with lambda ~ Gamma(1/theta, theta): closed form vs simulation
    from faceaudit.analyses.explain import _log_best_of
    rng = np.random.default_rng(0)
    theta, m, q = 3.0, 1000, 1e-3
    lam = rng.gamma(1 / theta, theta, 400_000)
    mc = np.mean((1 - q) ** (m * lam))
    H = -np.log1p(-q)
    logG, _ = _log_best_of(m, H, 1.0, theta)
    assert np.exp(logG) == pytest.approx(mc, abs=3e-3)


@pytest.fixture(scope="module")
def two_point():
    pop = ScorePopulation("light", "two_point", rho=0.05, d=0.15)
    res, _ = pop.simulate(n_gallery=1000, n_nonmated=3000, n_mated=3000, seed=1)
    res.candidates_score = None
    return pop, res


def test_heterogeneous_population_calibrated_where_independence_fails(two_point):
    # 5% of probes attract look-alikes (offset +0.15): the independence model understates the
    # chance that the top candidate is the person; the fitted model holds on the audit's own searches
    pop, res = two_point
    cal = calibration_check(res, n_boot=60)
    rows = cal["bins"]
    assert len(rows) == 8
    assert cal["bins_overlapping"] >= 7, rows
    assert cal["bins_independence_inside"] <= 5, rows
    # in the contested bin the independence answer is far below what was observed
    contested = [r for r in rows if 0.1 < r["observed"] < 0.9]
    assert any(r["independence_model"] < r["observed_ci"][0] / 2 for r in contested)


def test_heterogeneous_carry_to_larger_gallery_brackets_monte_carlo(two_point):
    pop, res = two_point
    model = ScoreModel.from_search(res, tail=fit_tail(res.impostor_hist, n_boot=40))
    n = 10_000
    top, is_mate = pop.search_top(n, 300_000, 0.5, seed=3)
    inside = total = 0
    for s in np.quantile(top, [0.3, 0.5, 0.7]):
        near = np.abs(top - s) < 0.005
        truth = is_mate[near].mean()
        out = explain(model, float(s), n, prior=0.5, n_boot=40)
        lo, hi = out["interval"]
        inside += lo - 0.02 <= truth <= hi + 0.02
        total += 1
        if out["p_top_is_mate"] is None:  # no point estimate: the paragraph says why
            assert "cannot pin down" in out["paragraph"] and out["not_supported_because"]
    assert inside == total


def test_independent_population_still_agrees_with_monte_carlo():
    pop = ScorePopulation("light")
    res, _ = pop.simulate(n_gallery=1000, n_nonmated=3000, n_mated=3000, seed=2)
    cal = calibration_check(res, n_boot=40)
    assert cal["bins_overlapping"] >= 7
    model = ScoreModel.from_search(res, tail=fit_tail(res.impostor_hist, n_boot=40))
    top, is_mate = pop.search_top(5000, 300_000, 0.5, seed=4)
    for s in np.quantile(top, [0.4, 0.6]):
        near = np.abs(top - s) < 0.005
        out = explain(model, float(s), 5000, prior=0.5, n_boot=40)
        assert out["p_top_is_mate"] is not None, out["not_supported_because"]
        assert abs(out["p_top_is_mate"] - is_mate[near].mean()) < 0.06


def test_every_audit_carries_the_calibration_check():
    es, proto, _ = make_population(n_enrolled=300, n_nonenrolled=600, probes_per_nonenrolled=1, seed=0)
    cal = run_audit(es, proto).results["explain_calibration"]
    assert cal["bins"] and cal["prior"] == pytest.approx(600 / 1200)
    # observed shares recomputed by hand from the search table
    res = run_audit(es, proto).search
    top_is_mate = res.is_mated & (res.mate_rank == 1)
    top = np.where(top_is_mate, res.mate_score, res.best_nonmate)
    b = cal["bins"][len(cal["bins"]) // 2]
    inside = (top >= b["score_low"]) & (top < b["score_high"])
    assert b["searches"] == inside.sum() and b["top_was_mate"] == top_is_mate[inside].sum()


def test_far_tail_gives_no_point_estimate():
    es, proto, _ = make_population(n_enrolled=500, n_nonenrolled=1000, probes_per_nonenrolled=1, seed=0)
    audit = run_audit(es, proto)
    model = ScoreModel.from_search(audit.search, tail=fit_tail(audit.search.impostor_hist, n_boot=40))
    out = explain(model, model.max_impostor() + 0.05, 10**9, n_boot=40)
    assert out["p_top_is_mate"] is None
    assert "above every impostor score" in out["paragraph"] and "no single figure" in out["paragraph"]
    assert "not estimable" in out["headline"]

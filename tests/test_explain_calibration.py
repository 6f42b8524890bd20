"""explain on heterogeneous populations: the calibration check, Monte Carlo at other sizes."""

from __future__ import annotations

import numpy as np
import pytest

from faceaudit.analyses.explain import (
    ScoreModel,
    calibration_check,
    explain,
    posterior_terms,
)
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
            assert ("cannot pin down" in out["paragraph"] or "cannot say" in out["paragraph"]) and out["not_supported_because"]
            if out["interval"][1] - out["interval"][0] > 0.5:  # a band over most of [0, 1] is not a figure
                assert out["statement"] == "cannot_say" and "these data cannot say" in out["headline"]
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
    # the engine's lists name every candidate's person: held out on both sides, checked against
    # half galleries; every search once per split (weighted 1/splits), a few lists cannot say
    assert cal["held_out"] == "probe and gallery people" and cal["gallery_size"] == 150
    assert 2 * 1200 - 20 <= cal["observations"] <= 2 * 1200
    assert abs(sum(b["searches"] for b in cal["bins"]) - 1200) <= 10
    for b in cal["bins"]:
        assert b["observed"] == pytest.approx(b["top_was_mate"] / b["searches"], abs=0.01)


def _lists_population(n_enrolled, n_other, top_k, seed):
    """Score-level searches with named people, the full score matrix kept (for brute force)."""
    from types import SimpleNamespace
    rng = np.random.default_rng(seed)
    person = np.r_[np.arange(n_enrolled), np.repeat(n_enrolled + np.arange(n_other), 2)]
    mated = person < n_enrolled
    n = person.size
    scores = rng.normal(0, 0.1, (n, n_enrolled))
    rows = np.flatnonzero(mated)
    scores[rows, person[mated]] = rng.normal(0.35, 0.1, rows.size)  # mates: often, not always, on top
    scores[rng.random(scores.shape) < 0.02] = 0.3  # ties
    order = np.argsort(-scores, axis=1, kind="stable")[:, :top_k]
    nonmate = scores.copy()
    nonmate[rows, person[mated]] = -np.inf
    mate = np.where(mated, scores[np.arange(n), np.minimum(person, n_enrolled - 1)], np.nan)
    ids = np.array([f"p{i}" for i in range(n_enrolled + n_other)])
    res = SimpleNamespace(is_mated=mated, probe_subjects=ids[person], gallery_subjects=ids[:n_enrolled],
                          best_nonmate=nonmate.max(1), mate_score=mate,
                          mate_rank=np.where(mated, 1 + (nonmate >= mate[:, None]).sum(1), 0),
                          candidates_subject=order, candidates_score=np.take_along_axis(scores, order, axis=1),
                          gallery_size=n_enrolled)
    return res, scores, nonmate, mate, mated, person


@pytest.mark.parametrize("top_k", [5, 60])
def test_outcomes_against_half_a_gallery_match_brute_force(top_k):
    # the check re-scores held-out searches against the held-out gallery from the candidate lists:
    # best non-mate among those gallery people, and whether the mate beat it (a tie goes to the
    # non-mate); where the lists cannot say, the search is left out, never guessed
    from faceaudit.analyses.explain import _outcomes_among, people_from_search
    res, _scores, nonmate, mate, mated, person = _lists_population(60, 60, top_k, seed=top_k)
    p = people_from_search(res)
    keep = np.random.default_rng(1).random(60) < 0.5  # the gallery people held out
    members = np.zeros(p.n_people, bool)
    members[p.person[:60][keep]] = True  # search j < 60 is of gallery subject j
    top, y, ok = _outcomes_among(p, members)
    best = np.max(np.where(keep[None, :], nonmate, -np.inf), axis=1)
    y_bf = mated & (mate > best)
    top_bf = np.where(y_bf, mate, best)
    checked = ~mated | keep[np.minimum(person, 59)]  # the check's searches: of held-out people
    if top_k == 60:  # lists of the whole gallery always say
        assert ok.all()
    assert ok[checked].mean() >= 0.8
    assert np.array_equal(y[ok & checked], y_bf[ok & checked]) and np.allclose(top[ok & checked], top_bf[ok & checked])
    assert (y_bf[checked] != (res.mate_rank[checked] == 1)).any() or top_k == 5  # half a gallery changes outcomes


def test_theta_counts_only_the_gallery_people_it_is_given():
    # the check's fit on half of the gallery counts only that half's listed candidates (censored
    # where the whole list lies at or above the score), against a gallery of that half's size
    from faceaudit.analyses.explain import (
        PeopleFit,
        explain_grid,
        lean_tail,
        people_from_search,
    )
    from faceaudit.engine.counts import hist_edges, score_bin

    res, scores, nonmate, mate, mated, _person = _lists_population(60, 200, 60, seed=3)
    nm = nonmate[np.isfinite(nonmate)].astype(np.float32)
    res.score, res.hist_fine_from, res.genuine_scores = "cosine", 0, mate[mated]
    res.impostor_hist = np.bincount(score_bin(nm), minlength=hist_edges().size).astype(np.int64)
    model = ScoreModel.from_search(res, tail=lean_tail(res.impostor_hist))
    p = people_from_search(res)
    pf = PeopleFit(model, p, explain_grid(model))
    half = np.zeros(p.n_people, bool)
    half[p.person[:60][::2]] = True
    ones = np.ones((1, p.n_people))
    pf.fit(ones, ones * half, theta_gallery=half)
    people, per_person = pf._cache[("theta_codes", np.packbits(half).tobytes())]
    S, K = pf.theta_s, pf.K
    assert S.size and K == 60
    codes = per_person.reshape(people.size, S.size, K + 1, 2)
    assert codes[..., 1].sum() == 0  # lists of the whole gallery: never censored
    # brute force from the score matrix: each non-mated search's half-gallery scores at or above s
    for k, pid in enumerate(people):
        rows = np.flatnonzero(~mated & (p.person == pid))
        want = np.zeros((S.size, K + 1))
        for i in rows:
            for g, sg in enumerate(S):
                want[g, int((scores[i, ::2] >= sg).sum())] += 1
        assert np.array_equal(codes[k, :, :, 0], want)


def test_far_tail_gives_no_point_estimate():
    es, proto, _ = make_population(n_enrolled=500, n_nonenrolled=1000, probes_per_nonenrolled=1, seed=0)
    audit = run_audit(es, proto)
    model = ScoreModel.from_search(audit.search, tail=fit_tail(audit.search.impostor_hist, n_boot=40))
    out = explain(model, model.max_impostor() + 0.05, 10**9, n_boot=40)
    assert out["p_top_is_mate"] is None
    assert "above every impostor score" in out["paragraph"] and "no single figure" in out["paragraph"]
    assert "not estimable" in out["headline"] or "these data cannot say" in out["headline"]

"""Scale: measured FPIR(N) against exact truth, the tail fit, and the explain calculation."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import with_options
from scipy import stats
from typer.testing import CliRunner

from faceaudit.analyses.explain import ScoreModel, explain, posterior
from faceaudit.analyses.scale import add_scale, fpir_independent, measure_growth
from faceaudit.audit import run_audit, write_results
from faceaudit.cli import app
from faceaudit.data.synthetic import make_population
from faceaudit.metrics.tail import fit_tail


def test_fpir_independent_matches_direct_formula():
    assert fpir_independent(0.01, 1) == pytest.approx(0.01)
    assert fpir_independent(1e-3, 100) == pytest.approx(1 - 0.999**100, rel=1e-12)
    assert fpir_independent(1e-12, 1e9) == pytest.approx(1 - np.exp(1e9 * np.log1p(-1e-12)), rel=1e-9)


@pytest.mark.parametrize("xi,sigma", [(0.1, 0.05), (-0.1, 0.02), (0.0, 0.03)])
def test_tail_fit_recovers_known_gpd(xi, sigma):
    rng = np.random.default_rng(7)
    x = stats.genpareto.rvs(xi, scale=sigma, size=20000, random_state=rng) + 0.4
    fit = fit_tail(scores=x, u=0.4, n_boot=40, seed=1)
    assert fit.xi == pytest.approx(xi, abs=0.03)
    assert fit.sigma == pytest.approx(sigma, rel=0.05)
    lo, hi = np.quantile(fit.boot_xi, [0.005, 0.995])
    assert lo - 0.01 <= xi <= hi + 0.01
    assert fit.ks_pvalue > 0.001


def test_tail_fit_from_histogram_predicts_synthetic_fmr():
    es, proto, truth = make_population(n_enrolled=600, n_nonenrolled=1500, probes_per_nonenrolled=1, seed=4)
    audit = run_audit(es, proto)
    fit = fit_tail(audit.search.impostor_hist, n_boot=60)
    assert fit.n_exceed >= 1000
    # beyond the fit threshold, the tail model's FMR matches the exact synthetic FMR within its band
    for t in (fit.u + 0.02, fit.u + 0.05):
        lo, hi = fit.fmr_band([t], confidence=0.99)
        true = truth.fmr(t)
        assert lo[0] * 0.8 <= true <= hi[0] * 1.25, (t, lo, hi, true)


def test_measured_growth_matches_exact_truth():
    es, proto, truth = make_population(n_enrolled=800, n_nonenrolled=3000, probes_per_nonenrolled=1, seed=2)
    thresholds = [0.3, 0.34]
    growth = measure_growth(es, proto, thresholds, sizes=[50, 200, 800], n_seeds=2, seed=0)
    inside, total = 0, 0
    for row in growth["rows"]:
        true = truth.fpir(row["threshold"], gallery_size=row["gallery_size"])
        lo, hi = row["fpir_ci"]
        inside += lo <= true <= hi
        total += 1
    assert inside >= total - 1, growth["rows"]
    assert growth["sizes"] == [50, 200, 800]
    rank1 = [r["rank1_identification_rate"] for r in growth["rank1"]]
    assert rank1[0] >= rank1[-1]  # more people, more chances to be outranked


def test_add_scale_validation_and_extrapolation_against_truth():
    es, proto, truth = make_population(n_enrolled=1000, n_nonenrolled=3000, probes_per_nonenrolled=1, seed=5)
    audit = run_audit(es, proto, fpir_targets=(0.1, 0.01))
    scale = add_scale(audit, n_seeds=2, seed=1)
    for v in scale["validation"]:
        lo, hi = v["measured_ci"]
        ci = v["independence_ci"]
        assert ci[0] <= hi and lo <= ci[1], v  # independent synthetic data: the model's interval overlaps
        assert v["independence_verdict"] in ("agrees", "over-predicts", "under-predicts")
        assert v["band_holds"] is True, v
    for r in scale["extrapolation"]:
        true = truth.fpir(r["threshold"], gallery_size=r["gallery_size"])
        assert r["fpir_lo"] <= true <= r["fpir_hi"] + 1e-12
        true_fmr = truth.fmr(r["threshold"])
        assert r["expected_lo"] <= r["gallery_size"] * true_fmr <= r["expected_hi"] * 1.0000001
    assert scale["assumptions"] and scale["explain"]


def test_distractors_enlarge_the_gallery():
    es, proto, _ = make_population(n_enrolled=100, n_nonenrolled=300, probes_per_nonenrolled=1, seed=1)
    rng = np.random.default_rng(0)
    d = rng.standard_normal((200, es.dim)).astype(np.float32)
    growth = measure_growth(es, proto, [0.3], n_seeds=1, distractors=d)
    assert growth["sizes"][-1] == 300 and growth["n_distractors"] == 200


# ------------------------------------------------------------------ explain
def _simulate(prior, n, gen, imp, s, half_width, m, rng):
    """Monte Carlo searches: share of those with a top score near s whose top is the mate."""
    enrolled = rng.random(m) < prior
    mate = gen.rvs(size=m, random_state=rng)
    # max of k iid impostors by inverse transform: F^-1(U^(1/k))
    k = np.where(enrolled, n - 1, n)
    best_imp = imp.ppf(rng.random(m) ** (1.0 / k))
    top_is_mate = enrolled & (mate > best_imp)
    top = np.where(top_is_mate, mate, best_imp)
    near = np.abs(top - s) < half_width
    return top_is_mate[near].mean(), near.sum()


@pytest.mark.parametrize("s,n,prior", [(2.6, 100, 0.5), (3.0, 1000, 0.2), (2.2, 50, 0.8)])
def test_explain_formula_agrees_with_monte_carlo(s, n, prior):
    gen, imp = stats.norm(3.0, 0.5), stats.norm(0.0, 1.0)
    rng = np.random.default_rng(11)
    p_mc, hits = _simulate(prior, n, gen, imp, s, 0.02, 2_000_000, rng)
    p = posterior(gen.pdf(s), gen.cdf(s), imp.pdf(s), imp.cdf(s), n, prior)
    se = np.sqrt(p * (1 - p) / hits)
    assert hits > 500
    assert abs(p - p_mc) < 4 * se + 0.01, (p, p_mc, hits)


def test_explain_estimated_from_scores_close_to_exact():
    rng = np.random.default_rng(3)
    gen, imp = stats.norm(0.6, 0.1), stats.norm(0.0, 0.1)
    genuine = gen.rvs(size=4000, random_state=rng)
    from faceaudit.engine.counts import hist_edges, score_bin
    impostor = imp.rvs(size=400_000, random_state=rng).astype(np.float32)
    hist = np.bincount(score_bin(impostor), minlength=hist_edges().size)
    model = ScoreModel(genuine, hist, fit_tail(hist))
    for s, n in [(0.3, 100), (0.4, 1000)]:  # both inside the observed impostor range
        out = explain(model, s, n, prior=0.5, n_boot=50)
        exact = posterior(gen.pdf(s), gen.cdf(s), imp.pdf(s), imp.cdf(s), n, 0.5)
        assert abs(out["p_top_is_mate"] - exact) < 0.05 + 0.3 * exact * (1 - exact), (s, out["p_top_is_mate"], exact)
        lo, hi = out["interval"]
        assert lo <= out["p_top_is_mate"] <= hi
        assert "gallery of" in out["paragraph"]


def test_explain_cli_and_bad_input(tmp_path):
    es, proto, _ = make_population(n_enrolled=300, n_nonenrolled=600, probes_per_nonenrolled=1, seed=0)
    out = write_results(run_audit(es, proto), tmp_path / "res")
    runner = CliRunner()
    ok = runner.invoke(app, ["explain", "--results", str(out), "--score", "0.35", "--gallery-size", "1000"])
    assert ok.exit_code == 0, ok.output
    assert "P(top candidate is the person searched for)" in ok.output
    for args, words in [(["--prior", "1.5"], "prior"), (["--gallery-size", "0"], "gallery-size"),
                        (["--score", "7"], "outside the range")]:
        cmd = ["explain", *with_options({"--results": out, "--score": 0.35, "--gallery-size": 1000}, args)]
        res = runner.invoke(app, cmd)
        assert res.exit_code == 2 and words in res.output, res.output
    res = runner.invoke(app, ["explain", "--results", str(tmp_path / "nope"), "--score", "0.3", "--gallery-size", "10"])
    assert res.exit_code == 2 and "not found" in res.output


# ------------------------------------------------------------------ extrapolation bands
def test_extrapolation_bands_hold_in_small_simulation_study():
    # populations with exactly known FPIR(N): light, heavy and bounded tails, independent and
    # heterogeneous probes; bands to N = 1e10 must hold the truth in >= 90% of cases at every N
    from faceaudit.analyses.simscores import POPULATIONS, extrapolation_study
    rows = extrapolation_study(populations=POPULATIONS[::2], seeds=(5,), n_gallery=400, n_nonmated=1000,
                               fpir_targets=(0.1, 0.01), n_out=(1e4, 1e6, 1e8, 1e10))
    by_n = {}
    for r in rows:
        by_n.setdefault(r["n"], []).append(r["covered"])
        if r["point"] is not None:  # a figure is only given inside its band
            assert r["lo"] <= r["point"] <= r["hi"]
            assert r["hi"] <= 10 * r["lo"] + 1e-12
    assert len(by_n) == 4
    for n, cov in by_n.items():
        assert np.mean(cov) >= 0.9, (n, np.mean(cov))


def test_band_upper_bound_is_jensen_bound_and_lower_is_monotone():
    from faceaudit.analyses.scale import extrapolation_band, not_estimable_beyond
    rows = extrapolation_band([1e3, 1e6], fmr_k=50, fmr_n=10**6, measured_templates=[10, 100],
                              measured_fp=[5, 40], measured_lo=[0.002, 0.03], n_searches=1000)
    from auditcore.intervals import clopper_pearson
    hi_q = clopper_pearson(50, 10**6)[1]
    for r in rows:
        assert r["fpir_hi"] == pytest.approx(1 - (1 - hi_q) ** r["gallery_size"], rel=1e-9)
        assert r["fpir_lo"] >= 0.03  # never below what was measured at a smaller nested gallery
    assert not_estimable_beyond([{"gallery_size": 1, "estimable": True}, {"gallery_size": 10, "estimable": False}]) == 1


def test_validation_never_agrees_with_zero_or_outside_prediction():
    es, proto, truth = make_population(n_enrolled=600, n_nonenrolled=2000, probes_per_nonenrolled=1, seed=5)
    audit = run_audit(es, proto, fpir_targets=(0.1, 0.01))
    scale = add_scale(audit, n_seeds=1, seed=1, thresholds=[0.3, 0.99])  # 0.99: nobody reaches it
    for v in scale["validation"]:
        lo, hi = v["measured_ci"]
        for key in ("independence", "tail"):
            pred, verdict = v[f"{key}_prediction"], v[f"{key}_verdict"]
            if verdict == "agrees":
                assert pred > 0 and lo <= pred <= hi
            if pred is not None and pred == 0:
                assert verdict == "not checkable (prediction 0)"

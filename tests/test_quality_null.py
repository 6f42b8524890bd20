"""The probe-quality study's claims of a difference (#30): rare when there is none, and the sentences
say what the rule says.

A small version of ``benchmarks/quality_null.py`` (docs/quality.md has the full one): the same
searches at two levels with exchangeable outcomes given the person, 2% of people making most
errors, through the real ``compare_rates`` and the real rules; the rule before #30 (the ratio's
people-bootstrap interval alone) is run beside them to show the simulation catches it. The rules
themselves against hand-worked cases (scipy's binomial test and beta quantiles).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import load_benchmark
from scipy import stats

from auditcore import bootstrap as boot_
from auditcore.intervals import rate
from faceaudit.analyses import quality as q
from faceaudit.analyses.compare import _compare_rate


def _bench():
    return load_benchmark("quality_null")


# ------------------------------------------------------------------ under the null
def test_claims_under_the_null_are_rare_and_the_old_ratio_rule_is_caught():
    """50 people x 5 searches, FPIR 1%, 2% of people carrying most errors (the setting where the
    bootstrap-only rule claimed most often): the rules quoted claim in at most 5% of studies (the
    upper end of the Clopper-Pearson interval over studies, a bound the old rule fails: its
    interval lies above 5%)."""
    bench = _bench()
    n_studies = 1500
    claims = dict.fromkeys(bench.RULES, 0)
    weights = [boot_.subject_weights(50, 1000, s) for s in range(bench.WEIGHT_SEEDS)]
    for seed in range(n_studies):
        rng = np.random.default_rng([7, seed])
        a, b, subject = bench.simulate(rng, 50, "5", 0.01, "few")
        cmp = q.compare_rates(a, b, subject, weights[seed % bench.WEIGHT_SEEDS])
        for name, claimed in bench.rules(cmp).items():
            claims[name] += claimed
    got = {name: rate(k, n_studies) for name, k in claims.items()}
    print({name: f"{100 * r.value:.1f}% [{100 * r.ci_low:.1f}, {100 * r.ci_high:.1f}]" for name, r in got.items()})
    assert got["fnir"].ci_high <= 0.05 and got["fpir"].ci_high <= 0.05
    assert got["fpir_old"].ci_low > 0.05  # the simulation does catch a rule that claims too often


def test_the_rules_have_power():
    """A true difference (the degraded level's search rate twice the clean one, 400 people, 5%): the
    rules claim it in most studies, the right way."""
    bench = _bench()
    weights = boot_.subject_weights(400, 1000, 0)
    more = 0
    for seed in range(60):
        rng = np.random.default_rng([9, seed])
        a, b, subject = bench.simulate(rng, 400, "1-5", 0.05, "some", ratio=2.0)
        cmp = q.compare_rates(a, b, subject, weights)
        assert q.difference_verdict(cmp) != "less"
        more += q.difference_verdict(cmp) == "more" and q.fpir_claims_change(cmp)
    assert more >= 45


def test_the_null_is_exact_in_the_simulation():
    """Exchangeable outcomes: over many studies, as many searches wrong only at the degraded level
    as only at the clean one (a binomial test at p = 1/2), and errors cluster in people."""
    bench = _bench()
    only_a = only_b = 0
    for seed in range(300):
        rng = np.random.default_rng([11, seed])
        a, b, subject = bench.simulate(rng, 150, "1-5", 0.05, "few")
        only_a += int((a & ~b).sum())
        only_b += int((~a & b).sum())
    assert stats.binomtest(only_a, only_a + only_b, 0.5).pvalue > 0.01
    rng = np.random.default_rng(0)
    for population, base, heavy in (("few", 0.01, 0.02), ("few-hard", 0.05, 0.05)):
        a, b, subject = bench.simulate(rng, 4000, "5", base, population)
        per_person = np.bincount(subject, a)
        top = np.sort(per_person)[::-1]
        assert top[: int(4000 * heavy)].sum() > 0.6 * per_person.sum()  # 2% (5%) of people: most errors


# ------------------------------------------------------------------ the rules, by hand
def _cmp(lo, hi, p, n=100, ratio_ci=(None, None)):
    return {"n": n, "difference": {"value": 0.0 if lo is None else (lo + hi) / 2, "ci": [lo, hi]},
            "mcnemar_p": p, "ratio": {"value": 1.5, "ci": list(ratio_ci)}}


def test_difference_verdict_on_its_boundaries():
    assert q.difference_verdict(_cmp(0.01, 0.05, 0.01)) == "more"
    assert q.difference_verdict(_cmp(-0.05, -0.01, 0.01)) == "less"
    assert q.difference_verdict(_cmp(0.01, 0.05, 0.05)) is None        # p must be below 0.05
    assert q.difference_verdict(_cmp(0.0, 0.05, 0.001)) is None         # the interval touching 0 includes it
    assert q.difference_verdict(_cmp(-0.01, 0.05, 0.001)) is None
    assert q.difference_verdict(_cmp(None, None, 0.001)) is None
    assert q.difference_verdict(_cmp(0.01, 0.05, 0.01, n=0)) is None
    assert q.difference_verdict(None) is None
    # FPIR: the same rule, and the ratio interval quoted beside it must not contradict it
    assert q.fpir_claims_change(_cmp(0.01, 0.05, 0.01, ratio_ci=(1.2, 3.0)))
    assert q.fpir_claims_change(_cmp(0.01, 0.05, 0.01))                  # no ratio interval: the rule alone
    assert not q.fpir_claims_change(_cmp(0.01, 0.05, 0.01, ratio_ci=(0.9, 3.0)))
    assert not q.fpir_claims_change(_cmp(-0.01, 0.05, 0.01, ratio_ci=(1.2, 3.0)))  # the old rule would claim


def test_a_hand_worked_difference_is_claimed():
    """40 people, one search each; 14 wrong at the level, 2 (of the same people) at the reference:
    12 discordant searches all one way, McNemar p = 2 / 2^12; the people interval recomputed here
    (Clopper-Pearson on 39 effective searches each, the design effect 40/39 of one search per
    person; MOVER with the correlation across people) excludes 0."""
    subject = np.arange(40)
    a = np.arange(40) < 14
    b = np.arange(40) < 2
    cmp = q.compare_rates(a, b, subject, boot_.subject_weights(40, 1000, 0))
    assert cmp["mcnemar_p"] == pytest.approx(2 / 2 ** 12) == pytest.approx(stats.binomtest(12, 12, 0.5).pvalue)
    n_eff = 39.0

    def cp(x):  # Clopper-Pearson on real-valued counts, scipy's beta quantiles
        return stats.beta.ppf(0.025, x, n_eff - x + 1), stats.beta.ppf(0.975, x + 1, n_eff - x)
    pa, pb = 14 / 40, 2 / 40
    la, ua = cp(pa * n_eff)
    lb, ub = cp(pb * n_eff)
    phi = np.corrcoef(a - pa, b - pb)[0, 1]
    low = pa - pb - math.sqrt((pa - la) ** 2 - 2 * phi * (pa - la) * (ub - pb) + (ub - pb) ** 2)
    high = pa - pb + math.sqrt((ua - pa) ** 2 - 2 * phi * (ua - pa) * (pb - lb) + (pb - lb) ** 2)
    assert cmp["difference"]["ci"] == pytest.approx([low, high], rel=1e-6)
    assert low > 0
    assert q.difference_verdict(cmp) == "more"
    swapped = q.compare_rates(b, a, subject, boot_.subject_weights(40, 1000, 0))
    assert q.difference_verdict(swapped) == "less"


# ------------------------------------------------------------------ the sentences follow the rules
def _results(cmp_fpir, cmp_fnir):
    return {"levels": [{"label": "clean", "degradation": "none", "severity": None},
                       {"label": "size:24", "degradation": "size", "severity": 24,
                        "failure_to_enrol": {"probes": {"failed": 0, "attempts": 100}}}],
            "deployed_thresholds": [{"target_fpir": 0.01, "threshold": 0.5}],
            "comparisons": [{"level": "size:24", "against": "clean", "target_fpir": 0.01,
                             "fpir": cmp_fpir, "fnir_rank1": cmp_fnir}]}


def test_a_bootstrap_ratio_interval_above_1_alone_is_no_longer_a_claim():
    """60 people, one search each: 10 wrong at both levels, 4 more at the degraded one only. The
    people bootstrap's ratio interval lies above 1 (a resample missing all 4 is rarer than 2.5%), so
    the old rule said "1.4 times as often" as a change; McNemar's p is 2 / 2^4 = 0.125, so the
    sentence now says these data cannot tell it from no change, and why."""
    subject = np.arange(60)
    b = np.arange(60) < 10
    a = np.arange(60) < 14
    cmp = q.compare_rates(a, b, subject, boot_.subject_weights(60, 1000, 0))
    assert cmp["ratio"]["ci"][0] > 1  # what the old rule read as a change
    assert cmp["mcnemar_p"] == pytest.approx(0.125)
    assert q.difference_verdict(cmp) is None and not q.fpir_claims_change(cmp)
    fp, fn = q.summary_sentences(_results(cmp, cmp))
    assert "1.4 times as often" in fp and "cannot tell it from no change: difference +6.7 points" in fp
    assert "McNemar p = 0.12" in fp
    assert fn.endswith(": these data cannot tell it from the clean photo.")


def test_a_claimed_change_reads_as_one():
    subject = np.arange(40)
    a = np.arange(40) < 14
    b = np.arange(40) < 2
    cmp = q.compare_rates(a, b, subject, boot_.subject_weights(40, 1000, 0))
    assert q.fpir_claims_change(cmp)
    fp, fn = q.summary_sentences(_results(cmp, cmp))
    assert "7.0 times as often" in fp and "cannot tell" not in fp
    assert fn.endswith(": missed more often than with the clean photo.")


def test_sentences_agree_with_the_rules_on_simulated_studies():
    """On simulated studies (null and not), each sentence claims a change exactly where its rule does."""
    bench = _bench()
    weights = boot_.subject_weights(80, 300, 0)
    seen = set()
    for seed in range(150):
        rng = np.random.default_rng([13, seed])
        a, b, subject = bench.simulate(rng, 80, "1-5", 0.2, "some", ratio=(1.0, 1.6, 2.5)[seed % 3])
        cmp = q.compare_rates(a, b, subject, weights)
        fp, fn = q.summary_sentences(_results(cmp, cmp))
        verdict = q.difference_verdict(cmp)
        assert (f"missed {verdict} often" in fn) if verdict else ("cannot tell it from the clean photo" in fn)
        if "times as often" in fp:
            assert ("cannot tell" not in fp) == q.fpir_claims_change(cmp)
            seen.add(q.fpir_claims_change(cmp))
        seen.add(verdict)
        two = _compare_rate(a, b, subject, weights, 300, 0)  # two studies compared: the same rule
        assert (two["verdict"] == "significant") == (verdict is not None)
    assert {True, False, "more", None} <= seen

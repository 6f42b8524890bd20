"""Per-group rates at rare counts: Korn-Graubard effective-sample-size intervals (auditcore.intervals).

A group with errors never gets a lower bound of 0, a group with none never "0 [0, 0]", and a
ratio whose denominator group has errors is never "unbounded". Coverage is measured by simulation
with known truth: clustered trials (per-cluster rates drawn from a beta distribution, so a few
clusters carry most errors) at expected counts 0.5-10 in the group of interest. The old interval
(the people bootstrap's percentile interval) is computed beside it, to show the simulation catches
it. Figures print with ``pytest -s``; docs/demographics.md quotes them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from auditcore import bootstrap as boot_
from auditcore.claims import Family, GroupRates
from auditcore.intervals import beta_interval, clopper_pearson, design_effects, korn_graubard


@pytest.mark.parametrize("x, n", [(0, 10), (3, 10), (10, 10), (5, 64), (4, 5992), (0, 1)])
def test_beta_interval_is_clopper_pearson_for_whole_counts(x, n):
    lo, hi = beta_interval(x, n)
    ref = stats.binomtest(x, n).proportion_ci(confidence_level=0.95, method="exact")
    assert (float(lo), float(hi)) == pytest.approx(clopper_pearson(x, n), abs=1e-12)
    assert float(lo) == pytest.approx(ref.low, abs=1e-9) and float(hi) == pytest.approx(ref.high, abs=1e-9)


def _kg_by_hand(e, t, confidence, deff, df):
    """Korn-Graubard written out with scipy.stats (beta and t quantiles), independent of auditcore."""
    n, x = t.sum(), e.sum()
    p = x / n
    q = 1 - (1 - confidence) / 2
    neff = min(n / deff * (stats.t.ppf(q, n - 1) / stats.t.ppf(q, df)) ** 2, n)
    lo = stats.beta.ppf((1 - confidence) / 2, p * neff, neff - p * neff + 1) if x > 0 else 0.0
    hi = stats.beta.ppf(q, p * neff + 1, neff - p * neff) if x < n else 1.0
    return lo, hi, neff


def test_korn_graubard_hand_worked():
    # group 0: 6 people with 5, 5, 10, 10, 20, 50 trials and 0, 0, 1, 0, 5, 2 errors (8 of 100);
    # group 1: 5 people, 20 trials each, 1 error in one of them (1 of 100);
    # group 2: 4 people, 25 trials each, no error (0 of 100).
    t0, e0 = np.array([5, 5, 10, 10, 20, 50.]), np.array([0, 0, 1, 0, 5, 2.])
    t1, e1 = np.full(5, 20.), np.array([1, 0, 0, 0, 0.])
    t2, e2 = np.full(4, 25.), np.zeros(4)
    E, T = np.zeros((15, 3)), np.zeros((15, 3))
    E[:6, 0], T[:6, 0], E[6:11, 1], T[6:11, 1], E[11:, 2], T[11:, 2] = e0, t0, e1, t1, e2, t2
    ss0 = 6 / 5 * ((e0 - 0.08 * t0) ** 2).sum()
    ss1 = 5 / 4 * ((e1 - 0.01 * t1) ** 2).sum()
    own0, own1 = ss0 / (0.08 * 0.92 * 100), ss1 / (0.01 * 0.99 * 100)
    pooled = (ss0 + ss1) / (0.08 * 0.92 * 100 + 0.01 * 0.99 * 100)
    m, own, pool = design_effects(E, T)
    assert list(m) == [6, 5, 4] and own[:2] == pytest.approx([own0, own1]) and np.isnan(own[2])
    assert pool == pytest.approx(pooled)
    kg = korn_graubard(E, T, 0.95)
    # group 0 uses its own design effect (the larger) with its own 5 df; groups 1 and 2 the pooled
    # one with the pooled df (5 + 4), the cap n_eff <= n applying where the design effect is below 1
    assert own0 > pooled > own1
    for g, (e, t, deff, df) in enumerate(((e0, t0, own0, 5), (e1, t1, max(pooled, 1.0), 9), (e2, t2, max(pooled, 1.0), 9))):
        lo, hi, neff = _kg_by_hand(e, t, 0.95, deff, df)
        assert kg["low"][g] == pytest.approx(lo, rel=1e-7, abs=1e-15) and kg["high"][g] == pytest.approx(hi, rel=1e-7)
        assert kg["effective_trials"][g] == pytest.approx(neff, rel=1e-9)
    assert list(kg["source"]) == ["own", "pooled", "pooled"]
    assert kg["low"][2] == 0 and kg["high"][2] > 0 and kg["low"][1] > 0
    # nobody anywhere has an error: no design effect can be measured, each person counts once
    z = korn_graubard(np.zeros((4, 1)), np.full((4, 1), 25.0))
    assert z["source"][0] == "clusters" and z["high"][0] == pytest.approx(clopper_pearson(0, 4)[1])


def _people(rng, n_people, trials, hit_people, errors_each=1):
    """Per-person counts: ``trials`` each; the first ``hit_people`` with ``errors_each`` errors."""
    t = np.full(n_people, float(trials))
    e = np.zeros(n_people)
    e[:hit_people] = errors_each
    return e, t


def test_the_issues_rare_examples():
    # white FPIR 4/5,992 (two people with two false positives each, among 2,996 people with 2
    # searches): a people-bootstrap lower bound of 0; here a positive one
    e, t = _people(None, 2996, 2, 2, errors_each=2)
    kg = korn_graubard(e, t)
    assert kg["low"][0] > 0 and kg["high"][0] < 0.0025
    w = boot_.subject_weights(e.size, 1000, 0)
    old = boot_.percentile_interval(((w @ e) / (w @ t))[:, None])
    assert old[0][0] == 0  # the old interval's lower bound
    # white FMR: 5 false matches among 7.46M comparisons of 2,500 people, a person with 2 of them
    e, t = np.zeros(2500), np.full(2500, 2984.0)
    e[:4] = [2, 1, 1, 1]
    kg = korn_graubard(e, t)
    assert 0 < kg["low"][0] < 5 / t.sum() < kg["high"][0]
    # a group with none: an upper bound, never [0, 0]
    both = GroupRates(np.c_[e, np.zeros(2500)], np.c_[t, t])
    lo, hi = both.interval()
    assert lo[1] == 0 and hi[1] > 0
    # a ratio whose denominator group has 5 false matches is bounded above (the old interval was
    # "unbounded" because some resamples had none)
    other = np.zeros(2500)
    other[:20] = 1  # 20 false matches
    r = GroupRates(np.c_[other, e], np.c_[t, t]).contrast(0, 1, Family(6).level)
    assert np.isfinite(r["ratio_high"][0]) and r["ratio_low"][0] > 0


def test_flagaudit_five_of_64_has_a_positive_lower_bound():
    from flagaudit import metrics as fm
    from flagaudit.report import fmt_r
    from flagaudit.suites import COLUMNS
    # test "t" with 64 cases from 16 templates (4 each), 5 flagged in 3 templates; test "u" none of 64
    rows = [(f"c{tp}_{i}", "s", "english", f, "none", f"s:english:{f}{tp}", "benign", "")
            for f in ("t", "u") for tp in range(16) for i in range(4)]
    cases = pd.DataFrame(rows, columns=COLUMNS)
    flagged = np.zeros(len(cases), bool)
    flagged[[0, 1, 4, 5, 8]] = True
    bs = fm.Bootstrap.over(cases["cluster"], n_boot=500, seed=0)
    g = fm.rate_table(cases, flagged, np.ones(len(cases), bool), "functionality", bs)["groups"]
    t, u = g["t"], g["u"]
    assert (t["errors"], t["trials"]) == (5, 64) and t["boot_low"] == 0  # the old reported lower end
    assert t["ci_low"] > 0 and t["interval_method"] == "korn-graubard"
    assert u["ci_low"] == 0 and u["ci_high"] > 0
    assert "0.0%" not in fmt_r(t) and fmt_r(u).startswith("at most ")


def test_zero_count_is_printed_as_a_bound():
    from faceaudit.report.demographics_section import _cell
    entry = {"errors": 0, "trials": 5992, "value": 0.0, "ci": [0.0, 0.0016], "too_few": False, "unit": "trial"}
    html = _cell(entry)
    assert "at most 1 in 620" in html and "[0, 0" not in html and "95% upper bound" in html  # 1/0.0016 = 625, rounded down to 2 digits
    # a results folder written before this rule: its bootstrap interval [0, 0] is not shown either
    old = {**entry, "ci": [0.0, 0.0], "upper_bound_from_people": 0.025}
    assert "at most 2.5%" in _cell(old) and "[0, 0" not in _cell(old)


# ------------------------------------------------------------------ coverage at counts 0-10

COVERAGE_REGIMES = {
    # name: people per group, trials per person, intra-cluster correlation, other groups' rates as multiples
    "searches (1-10 a person, ICC 0.2)": ((100, 200, 150, 50), lambda r, k: 1 + r.poisson(4, k), 0.2, (5, 2, 10)),
    "comparisons (300 a person, ICC 0.05)": ((100, 100, 100, 100), lambda r, k: np.full(k, 300), 0.05, (1, 2, 0.5)),
    "templates (8 cases each, ICC 0.2)": ((30, 40, 20, 30), lambda r, k: np.full(k, 8), 0.2, (1, 2, 0.5)),
}
EXPECTED_COUNTS = (0.5, 1, 2, 4, 7, 10)
REPS = 500


@pytest.mark.parametrize("regime", list(COVERAGE_REGIMES))
def test_coverage_at_counts_0_to_10(regime):
    people, trials, icc, others = COVERAGE_REGIMES[regime]
    rng = np.random.default_rng(99)
    c = 1 / icc - 1
    # the trials a person has do not depend on the rates: fix the expected trials of group 0 for the truth
    mean_trials = float(np.mean(trials(np.random.default_rng(0), 100000)))
    by_count = np.zeros((11, 2))
    cover, cover_old = {}, {}
    w = boot_.subject_weights(sum(people), 200, 1)
    for mu in EXPECTED_COUNTS:
        p = mu / (people[0] * mean_trials)
        rates = [p] + [p * k for k in others]
        inside = inside_old = 0
        for _ in range(REPS):
            E, T = np.zeros((sum(people), 4)), np.zeros((sum(people), 4))
            start = 0
            for g, (rate, k) in enumerate(zip(rates, people)):
                n = trials(rng, k)
                T[start:start + k, g] = n
                E[start:start + k, g] = rng.binomial(n, rng.beta(rate * c, (1 - rate) * c, size=k))
                start += k
            kg = korn_graubard(E, T)
            hit = kg["low"][0] <= p <= kg["high"][0]
            inside += hit
            x = int(E[:, 0].sum())
            if x <= 10:
                by_count[x] += (hit, 1)
            be, bt = w @ E[:, 0], w @ T[:, 0]
            lo, hi, _ = boot_.percentile_interval((be / bt)[:, None])
            inside_old += lo[0] <= p <= hi[0]
        cover[mu], cover_old[mu] = round(inside / REPS, 3), round(inside_old / REPS, 3)
    shown = {x: f"{h / n:.2f} of {int(n)}" for x, (h, n) in enumerate(by_count) if n}
    print(f"\n[coverage, {regime}] by expected count: {cover}; people bootstrap (old): {cover_old}; "
          f"by observed count 0-10 (all truths together): {shown}")
    assert min(cover.values()) >= 0.93
    assert min(cover_old.values()) < 0.9  # the old interval fails here


def test_rates_of_a_faceaudit_section_never_zero_low_with_errors():
    """End to end through the code add_demographics uses: every group with errors has a lower bound
    above 0; every group without has an upper bound above 0."""
    from faceaudit.analyses.demographics import group_figures
    rng = np.random.default_rng(4)
    subject = np.repeat(np.arange(400), 3)
    group = rng.choice(3, 400)[subject]
    err = (rng.random(subject.size) < np.array([0.002, 0.02, 0.0])[group]).astype(float)
    one = np.ones(subject.size)
    fig = group_figures({"fnir": (err, one, one)}, subject, group, np.array(["x", "y", "z"]),
                        boot_.subject_weights(400, 100, 0), min_group_size=30, confidence=0.95)
    for g, r in fig["rates"]["fnir"].items():
        assert (r["ci"][0] > 0) if r["errors"] else (r["ci"][0] == 0 and r["ci"][1] > 0 and "upper 95% bound" in r["note"])
    assert fig["rates"]["fnir"]["z"]["errors"] == 0


def test_borrowed_design_effect_never_exceeds_the_groups_largest_cluster():
    """A group whose clusters hold one trial each (a suite's templates in a language with one case
    each) cannot vary more than independent trials: the table's design effect is not lent to it,
    and its interval is Clopper-Pearson's exactly. A group with clusters of 3 gets at most 3."""
    from scipy.stats import beta

    from auditcore.intervals import korn_graubard
    rng = np.random.default_rng(0)
    # group 0: 40 clusters of 10 trials, strongly clustered errors (all or nothing): pooled deff ~10
    e0 = np.repeat(rng.random(40) < 0.3, 1).astype(float) * 10
    t0 = np.full(40, 10.0)
    # group 1: 20 clusters of one trial, no errors; group 2: 20 clusters of 3 trials, no errors
    e = np.zeros((80, 3))
    t = np.zeros((80, 3))
    e[:40, 0], t[:40, 0] = e0, t0
    t[40:60, 1] = 1.0
    t[60:80, 2] = 3.0
    kg = korn_graubard(e, t)
    assert kg["pooled_design_effect"] > 5
    assert kg["source"][1] == "largest cluster" and kg["design_effect"][1] == 1.0
    assert kg["high"][1] == pytest.approx(beta.ppf(0.975, 1, 20), rel=1e-9)  # 0 of 20: [0, 16.8%]
    assert kg["source"][2] == "largest cluster" and kg["design_effect"][2] == 3.0
    assert kg["effective_trials"][2] == pytest.approx(20.0)
    assert kg["source"][0] == "own"

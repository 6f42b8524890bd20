"""Differential claims under the null and their power, for both auditors (auditcore.claims).

With no true difference between groups, a report may claim one ("at least x times", "differ by at
least y points") in at most 5% of runs; with a large true difference it should claim it in most.
Each test runs many seeds (200 under the null) with groups of unequal size, clustered trials (a
person's searches, a template's cases) and rare-event rates, and prints its figures (``pytest -s``);
docs/demographics.md and docs/flagaudit.md quote them.

The old rule (an unadjusted percentile interval from a cluster bootstrap for the pair that was
highest and lowest) is recomputed beside the new one where it is cheap, to show that these
simulations do catch it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from auditcore import bootstrap as boot_
from auditcore import differentials as diff
from auditcore.claims import Family, GroupRates, n_pairs

N_NULL = 200


def clustered(rng, rates, people, trials, icc):
    """Per-cluster errors and trials ``(clusters, groups)``: cluster i of group g has ``trials(k)``
    trials and its own rate drawn from a beta distribution with mean ``rates[g]`` and intra-cluster
    correlation ``icc`` (so a few clusters carry most errors when the rate is small)."""
    c = 1 / icc - 1
    e, t = np.zeros((sum(people), len(rates))), np.zeros((sum(people), len(rates)))
    start = 0
    for g, (p, k) in enumerate(zip(rates, people)):
        n = trials(rng, k)
        q = rng.beta(p * c, (1 - p) * c, size=k)
        e[start:start + k, g], t[start:start + k, g] = rng.binomial(n, q), n
        start += k
    return e, t


def any_claim(e, t, family: Family) -> tuple[bool, bool]:
    """(ratio claim, difference claim) for any pair: the most either auditor could claim."""
    rates = GroupRates(e, t)
    k = e.shape[1]
    a, b = np.array([(i, j) for i in range(k) for j in range(k) if i != j]).T
    c = rates.contrast(a, b, family.level)
    return bool(np.any(c["ratio_low"] > 1)), bool(np.any(c["difference_low"] > 0))


def old_rule_claims(e, t, rng, n_boot=400) -> bool:
    """The rule this replaces: highest over lowest group in the point estimate, percentile
    interval of that fixed pair's ratio from a cluster bootstrap, claim if its lower end > 1."""
    point = diff.rates(e.sum(0), t.sum(0))
    if np.all(point == 0):
        return False
    hi, lo = int(np.argmax(point)), int(np.argmin(point))
    w = boot_.subject_weights(e.shape[0], n_boot, int(rng.integers(1 << 30)))
    be, bt = w @ e, w @ t
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (be[:, hi] / bt[:, hi]) / (be[:, lo] / bt[:, lo])
    low = boot_.percentile_interval(np.where(np.isnan(r), np.nan, r)[:, None])[0][0]
    return bool(low > 1)


REGIMES = {
    # name: (rate, people per group (unequal), trials per person, intra-cluster correlation)
    "common, clustered": (0.10, (200, 120, 60, 30), lambda r, k: 1 + r.poisson(4, k), 0.2),
    "rare: 1-30 errors a group": (0.02, (300, 150, 60, 30), lambda r, k: 1 + r.poisson(2, k), 0.2),
    "FMR-like: 300 comparisons a person, 0-10 errors": (1e-4, (200, 120, 60, 30), lambda r, k: np.full(k, 300), 0.02),
}


@pytest.mark.parametrize("regime", list(REGIMES))
def test_core_claims_under_the_null_at_most_5_percent(regime):
    rate, people, trials, icc = REGIMES[regime]
    rng = np.random.default_rng(20260101)
    family = Family(n_pairs(4))  # one measure, 4 groups: 6 pairs
    ratio = difference = old = 0
    counts = []
    for _ in range(N_NULL):
        e, t = clustered(rng, [rate] * 4, people, trials, icc)
        r, d = any_claim(e, t, family)
        ratio, difference = ratio + r, difference + d
        old += old_rule_claims(e, t, rng)
        counts.append(e.sum(0))
    print(f"\n[null, auditcore, {regime}] errors per group (median) {np.median(counts, 0)}; any pair claimed: "
          f"ratio {ratio}/{N_NULL}, difference {difference}/{N_NULL}; old rule {old}/{N_NULL}")
    assert ratio <= 0.05 * N_NULL and difference <= 0.05 * N_NULL
    if regime.startswith("common"):
        assert old > 0.1 * N_NULL  # the simulation does catch the rule it replaces


def test_every_bound_holds_simultaneously_with_true_differences():
    """With true differences (so no claim is 'false' by default), every pair's difference and ratio
    interval contains the truth together in at least 95% of runs: the family counts one comparison
    per pair, its difference and ratio being two readings of it."""
    rng = np.random.default_rng(3)
    a, b = np.array([(i, j) for i in range(4) for j in range(4) if i < j]).T
    cases = {"common": ([0.05, 0.05, 0.15, 0.08], (200, 120, 60, 30), lambda r, k: 1 + r.poisson(4, k), 0.2),
             "rare": ([0.01, 0.02, 0.005, 0.03], (300, 150, 60, 30), lambda r, k: 1 + r.poisson(2, k), 0.2),
             "FMR-like": ([1e-4, 2e-4, 5e-5, 3e-4], (200, 120, 60, 30), lambda r, k: np.full(k, 300), 0.02),
             "templates": ([0.1, 0.3, 0.1, 0.2], (45, 35, 25, 15), lambda r, k: 1 + r.integers(0, 4, k), 0.25)}
    shown = {}
    for name, (rates, people, trials, icc) in cases.items():
        p, ok = np.array(rates), 0
        for _ in range(N_NULL):
            e, t = clustered(rng, rates, people, trials, icc)
            c = GroupRates(e, t).contrast(a, b, Family(n_pairs(4)).level)
            d, r = p[a] - p[b], p[a] / p[b]
            ok += bool(np.all((c["difference_low"] <= d) & (d <= c["difference_high"]))
                       and np.all(~c["measurable"] | ((c["ratio_low"] <= r) & (r <= c["ratio_high"]))))
        shown[name] = ok / N_NULL
    print(f"\n[simultaneous coverage, 6 pairs x (difference, ratio)] {shown}")
    assert min(shown.values()) >= 0.95


def test_core_power_at_a_stated_difference():
    """One group of 60 people (of 4 groups, 410 people) has k times the others' rate (0.05 a trial,
    clustered, ICC 0.2). Power: the claim is made with that group higher, for the extreme pair, or
    for some pair (every pair is bounded simultaneously, so any may be named). Stated: k = 3."""
    family = Family(n_pairs(4))
    a, b = np.array([(i, j) for i in range(4) for j in range(4) if i != j]).T
    power = {}
    for k in (2, 3, 4):
        rng = np.random.default_rng(7)
        extreme = some = 0
        n = 100
        for _ in range(n):
            e, t = clustered(rng, [0.05, 0.05, 0.05 * k, 0.05], (200, 120, 60, 30), lambda r, m: 1 + r.poisson(4, m), 0.2)
            rates = GroupRates(e, t)
            hi = int(np.argmax(rates.value))
            others = [g for g in range(4) if g != hi]
            lo = others[int(np.argmin(rates.value[others]))]
            extreme += bool(hi == 2 and rates.contrast(hi, lo, family.level)["ratio_low"][0] > 1)
            c = rates.contrast(a, b, family.level)
            some += bool(np.any((c["ratio_low"] > 1) & (a == 2)))
        power[k] = (extreme / n, some / n)
    print(f"\n[power, auditcore] group of 60 people of 410 at k x 0.05 (extreme pair, some pair): {power}")
    assert power[3][1] >= 0.8 and power[4][0] >= 0.8


# --------------------------------------------------------------------------- faceaudit

@pytest.fixture(scope="module")
def face_counts():
    """The issue's setting: synthetic templates, 600 enrolled, 400 mated and 400 non-mated searches,
    at the threshold for FPIR 1% (so FPIR and FMR are rare-event rates); errors per probe."""
    from faceaudit.analyses.demographics import per_probe_counts
    from faceaudit.analyses.lookalikes import probe_pairs
    from faceaudit.audit import run_audit
    from faceaudit.data.protocol import Protocol
    from faceaudit.data.synthetic import make_population
    from faceaudit.metrics import identification as ident
    es, proto, _ = make_population(n_enrolled=600, probes_per_enrolled=1, n_nonenrolled=400, probes_per_nonenrolled=1,
                                   dim=32, genuine_a=80, genuine_b=12, seed=0)
    proto = Protocol(proto.gallery, proto.mated[:400], proto.nonmated)
    audit = run_audit(es, proto, fpir_targets=(0.01,))
    res = audit.search
    threshold = ident.threshold_at_fpir(res.best_nonmate[~res.is_mated], 0.01).threshold
    counts = per_probe_counts(audit, threshold)
    # the comparisons >= T by probe and gallery person: per-group FMR's two-way design effects
    counts["pairs"] = probe_pairs(res, es, proto, [np.float32(threshold)])
    return es, audit, threshold, counts


def _face_claims(per_probe, probe_subject, probe_group, n_subjects, groups, seed, measures=None, pairs=None):
    from faceaudit.analyses.demographics import (
        add_claims,
        fmr_design_effects,
        group_figures,
    )

    per_probe = per_probe if measures is None else {m: per_probe[m] for m in measures}
    weights = boot_.subject_weights(n_subjects, 50, seed)
    two_way = None if pairs is None else {"fmr": fmr_design_effects(pairs, probe_group, len(groups))}
    fig = group_figures(per_probe, probe_subject, probe_group, np.asarray(groups), weights, min_group_size=30,
                        confidence=0.95, design_effects=two_way)
    a = {"spec": "grp", "groups": list(groups), "rates": fig["rates"]}
    family = add_claims([a], [fig["claim_input"]], 0.95)
    claimed = [c for s in a["summaries"].values() for c in (s.get("extreme_pair"), s.get("strongest_versus_reference"))
               if c and ((c["at_least"] or 0) > 1 or (c["at_most"] is not None and c["at_most"] < 1))]
    return a, family, claimed


def test_faceaudit_claims_under_the_null_at_most_5_percent(face_counts):
    """Group labels drawn at random for each person (4 groups of unequal size): no true difference
    in any measure. The issue measured a headline in 5 of 8 seeds."""
    es, audit, threshold, counts = face_counts
    res = audit.search
    subjects = np.unique(res.probe_subjects)
    reports, headlines, errors = 0, 0, []
    for seed in range(N_NULL):
        rng = np.random.default_rng(seed)
        person_group = rng.choice(4, size=subjects.size, p=[0.4, 0.3, 0.2, 0.1])
        probe_group = person_group[counts["probe_subject"]]
        a, family, claimed = _face_claims(counts["per_probe"], counts["probe_subject"], probe_group,
                                          counts["n_subjects"], ["a", "b", "c", "d"], seed, pairs=counts["pairs"])
        reports += bool(claimed or a["findings"] and any("at least" in f and "do not show" not in f and
                                                          "cannot say" not in f for f in a["findings"]))
        headlines += a["headline"] is not None
        errors.append([sum(r["errors"] for r in a["rates"][m].values()) for m in ("fnir", "fpir", "fmr", "fnmr")])
    print(f"\n[null, faceaudit] errors in all (FNIR, FPIR, FMR, FNMR): {errors[0]}; {family.n_comparisons} comparisons; "
          f"reports claiming a difference {reports}/{N_NULL}; headlines {headlines}/{N_NULL}")
    assert reports <= 0.05 * N_NULL and headlines <= reports


def test_faceaudit_fast_path_is_what_add_demographics_writes(face_counts):
    from faceaudit.analyses.demographics import add_demographics
    es, audit, threshold, counts = face_counts
    res = audit.search
    subjects = np.unique(res.probe_subjects)
    person_group = np.random.default_rng(3).choice(list("abcd"), size=subjects.size, p=[0.4, 0.3, 0.2, 0.1])
    es.manifest["grp"] = pd.Series(dict(zip(subjects, person_group))).reindex(es.manifest.subject_id).to_numpy()
    d = add_demographics(audit, ["grp"], threshold=threshold, n_boot=50, seed=3, min_group_size=30)
    full = d["analyses"][0]
    codes = np.searchsorted(["a", "b", "c", "d"], person_group)
    a, family, _ = _face_claims(counts["per_probe"], counts["probe_subject"], codes[counts["probe_subject"]],
                                counts["n_subjects"], ["a", "b", "c", "d"], 3, pairs=counts["pairs"])
    assert full["summaries"] == a["summaries"] and full["findings"] == a["findings"]
    assert d["claims"]["comparisons"] == family.n_comparisons == 4 * 6
    assert "adjusted for choosing the pair among 6 and for all 24 comparisons" in " ".join(full["findings"])


def test_faceaudit_power_at_a_stated_difference():
    """Known truth, per person: 4 groups (300, 150, 100, 50 people; 1-3 mated searches each, a
    person's misses correlated, ICC 0.3); group c is missed k times as often (FNIR 0.05 k against
    0.05); non-mated searches return someone at 1% in every group. Claims go through the same
    code as add_demographics (FNIR and FPIR: 12 comparisons); power is the share of reports that
    say group c is missed more often (highest against lowest, or against the reference group).
    Stated: k = 4."""
    power = {}
    for k in (2, 3, 4):
        hits, n = 0, 100
        for seed in range(n):
            rng = np.random.default_rng(1000 + seed)
            people = np.array([300, 150, 100, 50])
            group = np.repeat(np.arange(4), people)
            fnir = np.array([0.05, 0.05, 0.05 * k, 0.05])[group]
            c = 1 / 0.3 - 1
            q = rng.beta(fnir * c, (1 - fnir) * c)
            searches = 1 + rng.poisson(1, group.size).clip(0, 2)
            subject = np.repeat(np.arange(group.size), searches)
            miss = (rng.random(subject.size) < q[subject]).astype(float)
            # one non-mated search per person of the same groups (other people: subjects after the mated ones)
            nm_subject = group.size + np.arange(group.size)
            fp = (rng.random(group.size) < 0.01).astype(float)
            probe_subject = np.r_[subject, nm_subject]
            probe_group = np.r_[group[subject], group]
            mated = np.r_[np.ones(subject.size), np.zeros(group.size)]
            per_probe = {"fnir": (np.r_[miss, np.zeros(group.size)], mated, mated),
                         "fpir": (np.r_[np.zeros(subject.size), fp], 1 - mated, 1 - mated)}
            a, family, claimed = _face_claims(per_probe, probe_subject, probe_group, 2 * group.size,
                                              ["a", "b", "c", "d"], seed)
            hits += any(c["group"] == "c" and (c["at_least"] or 0) > 1 for c in claimed)
        power[k] = hits / n
    print(f"\n[power, faceaudit] FNIR k times as high (0.05 k against 0.05) in a group of 100 people of 600: "
          f"share of reports claiming it {power} ({family.n_comparisons} comparisons)")
    assert power[4] >= 0.8


# --------------------------------------------------------------------------- flagaudit

def synthetic_suite(rng, sizes=(("A", 45), ("B", 35), ("C", 25), ("D", 15), ("none", 30))) -> pd.DataFrame:
    """Templates of unequal numbers per target group, 1-4 cases each, English or Spanish."""
    from flagaudit.suites import COLUMNS
    rows, t = [], 0
    for target, n_templates in sizes:
        for _ in range(n_templates):
            lang = "english" if rng.random() < 0.6 else "spanish"
            for c in range(int(rng.integers(1, 5))):
                rows.append((f"syn:{t}:{c}", "syn", lang, "t", target, f"syn:{lang}:{t}", "benign", ""))
            t += 1
    return pd.DataFrame(rows, columns=COLUMNS)


def _flag_report_claims(cases, flagged, bs) -> tuple[bool, dict]:
    from flagaudit import metrics as fm
    from flagaudit.report import _ratio_text
    m = fm.flag_metrics(cases, flagged, bs=bs, min_trials=20)
    ff = m["false_flag"]
    texts = [_ratio_text(ff[by]["differential"], what, ff[by]["groups"])
             for by, what in (("target", "target groups"), ("language", "languages"))]
    return any("differ by at least" in x or "is flagged more often than" in x for x in texts), ff


def _old_flag_rule(ff_tab_groups, cases, flagged, bs) -> bool:
    """The rule this replaces: percentile interval of max - min recomputed in every resample."""
    benign = (cases["role"] == "benign").to_numpy()
    names, codes = diff.encode(cases["target"].to_numpy(dtype=object))
    e = bs.totals(codes, (flagged & benign).astype(float), len(names))
    t = bs.totals(codes, benign.astype(float), len(names))
    ranked = np.array([n != "none" for n in names]) & (t.mean(0) >= 20)
    lo = boot_.percentile_interval(diff.max_difference(diff.rates(e, t), ranked)[:, None])[0][0]
    return bool(lo > 0)


@pytest.mark.parametrize("mean_rate", [0.15, 0.03])
def test_flagaudit_claims_under_the_null_at_most_5_percent(mean_rate):
    """Every template draws its flag probability from the same beta distribution (concentration 3:
    strongly clustered), whatever its target group or language."""
    from flagaudit import metrics as fm
    rng = np.random.default_rng(11)
    cases = synthetic_suite(rng)
    codes = pd.factorize(cases["cluster"])[0]
    bs = fm.Bootstrap.over(cases["cluster"], n_boot=200, seed=1)
    claims = old = 0
    gaps = []
    for _ in range(N_NULL):
        q = rng.beta(mean_rate * 3, (1 - mean_rate) * 3, size=codes.max() + 1)
        flagged = rng.random(len(cases)) < q[codes]
        claimed, ff = _flag_report_claims(cases, flagged, bs)
        claims += claimed
        old += _old_flag_rule(ff, cases, flagged, bs)
        gaps.append(ff["target"]["differential"]["max_difference"]["value"])
    print(f"\n[null, flagaudit, mean flag rate {mean_rate}] median gap between target groups {np.median(gaps):.1%}; "
          f"reports claiming a difference {claims}/{N_NULL}; old rule {old}/{N_NULL}")
    assert claims <= 0.05 * N_NULL
    if mean_rate > 0.1:
        assert old > 0.5 * N_NULL  # the failure, reproduced by this simulation


def test_flagaudit_claims_under_the_null_on_the_shipped_benign_traps_suite():
    from flagaudit import metrics as fm
    from flagaudit.suites import load_benign_traps
    cases, _ = load_benign_traps()
    rng = np.random.default_rng(5)
    codes = pd.factorize(cases["cluster"])[0]
    bs = fm.Bootstrap.over(cases["cluster"], n_boot=200, seed=2)
    claims = sum(_flag_report_claims(cases, rng.random(len(cases)) < rng.beta(0.45, 2.55, codes.max() + 1)[codes], bs)[0]
                 for _ in range(N_NULL))
    print(f"\n[null, flagaudit, benign-traps suite] reports claiming a difference {claims}/{N_NULL}")
    assert claims <= 0.05 * N_NULL


def test_flagaudit_power_at_a_stated_difference():
    """Target group B's templates (35 of 150) are flagged k times as often as the others' (mean 0.10,
    same clustering: beta concentration 3); power is the share of reports that claim B is flagged
    more (the most- against least-flagged pair, or the pair with the strongest evidence). Stated: k = 4."""
    from flagaudit import metrics as fm
    rng = np.random.default_rng(12)
    cases = synthetic_suite(rng)
    codes = pd.factorize(cases["cluster"])[0]
    template_target = cases.groupby(codes)["target"].first().to_numpy()
    bs = fm.Bootstrap.over(cases["cluster"], n_boot=100, seed=1)
    power = {}
    for k in (2, 3, 4, 5):
        mean = np.where(template_target == "B", 0.10 * k, 0.10)
        hits, n = 0, 100
        for _ in range(n):
            q = rng.beta(mean * 3, (1 - mean) * 3)
            claimed, ff = _flag_report_claims(cases, rng.random(len(cases)) < q[codes], bs)
            d = ff["target"]["differential"]
            s = d.get("strongest_pair") or {}
            hits += bool((d["highest"] == "B" and d["max_difference"]["ci_low"] > 0) or s.get("higher") == "B")
        power[k] = hits / n
    print(f"\n[power, flagaudit] target B flagged k times as often as the others (0.10): {power}")
    assert power[4] >= 0.8

"""Demographic findings: ratios from people, a reference group, no infinity, per-person counting."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from scipy import stats

from auditcore.claims import Family, GroupRates
from auditcore.serialize import to_json
from faceaudit.analyses.demographics import _contrast, add_demographics
from faceaudit.audit import run_audit
from faceaudit.data.synthetic import make_population


@pytest.fixture(scope="module")
def three_groups():
    es, proto, _ = make_population(n_enrolled=300, n_nonenrolled=600, probes_per_nonenrolled=2, dim=32, seed=3)
    subj = es.manifest.subject_id
    codes = pd.Series(pd.factorize(subj)[0] % 10, index=es.manifest.index)
    es.manifest["grp"] = np.where(codes < 6, "big", np.where(codes < 9, "mid", "small"))
    return es, proto, run_audit(es, proto, fpir_targets=(0.1,))


def test_reference_group_is_the_largest_and_contrasts_have_no_infinity(three_groups):
    es, proto, audit = three_groups
    d = add_demographics(audit, ["grp"], threshold=0.3, n_boot=200, min_group_size=10)
    a = d["analyses"][0]
    for m, s in a["summaries"].items():
        if s.get("extreme_pair"):
            assert s["reference_group"] == "big"  # most people
            assert {c["group"] for c in s["versus_reference"]} == {"mid", "small"}
    text = json.dumps(to_json(d))
    assert "inf" not in text.replace("information", "") and "\u221e" not in text
    assert a["findings"]


def _kg_by_hand(e, t, level, pooled, pooled_df):
    """Korn-Graubard for one group, written out with scipy.stats (independent of auditcore): the
    larger of the group's own and the pooled design effect, with the degrees of freedom of the one used."""
    has = t > 0
    m, n, x = has.sum(), t.sum(), e.sum()
    p = x / n
    q = 1 - (1 - level) / 2
    own = (m / (m - 1) * ((e - p * t)[has] ** 2).sum() / n ** 2) / (p * (1 - p) / n) if 0 < p < 1 else np.nan
    deff, df = (own, m - 1) if own > pooled else (pooled, pooled_df)
    deff = max(deff, 1.0)
    neff = min(n / deff * (stats.t.ppf(q, n - 1) / stats.t.ppf(q, df)) ** 2, n)
    lo = stats.beta.ppf((1 - level) / 2, p * neff, neff - p * neff + 1) if x > 0 else 0.0
    hi = stats.beta.ppf(q, p * neff + 1, neff - p * neff)
    return p, lo, hi


def test_contrast_bounds_are_simultaneous_and_from_people():
    # hand-built people: A has 50 people with 10 comparisons each, 10 of them with 2 errors (20/500);
    # B has 40 people with 10 each, 4 of them with 1 error (4/400). The ratio's bounds are the MOVER
    # combination of the two groups' Korn-Graubard limits at the per-comparison level 1 - 0.05/6
    # (6 comparisons in the family); a group with no errors is bounded from its people's design effect.
    e, t = np.zeros((90, 2)), np.zeros((90, 2))
    t[:50, 0], e[:10, 0] = 10, 2
    t[50:, 1], e[50:54, 1] = 10, 1
    family = Family(6)
    level = 1 - 0.05 / 6
    assert family.level == pytest.approx(level)
    ss = [50 / 49 * ((e[:50, 0] - 0.04 * 10) ** 2).sum(), 40 / 39 * ((e[50:, 1] - 0.01 * 10) ** 2).sum()]
    pooled = sum(ss) / (0.04 * 0.96 * 500 + 0.01 * 0.99 * 400)
    pa, la, ua = _kg_by_hand(e[:50, 0], t[:50, 0], level, pooled, 49 + 39)  # A: its own (1.70 > 1.57)
    pb, lb, ub = _kg_by_hand(e[50:, 1], t[50:, 1], level, pooled, 49 + 39)  # B: the pooled one
    c = _contrast(0, 1, GroupRates(e, t), np.array(["A", "B"]), family)
    want_lo = np.exp(np.log(pa / pb) - np.sqrt(np.log(pa / la) ** 2 + np.log(ub / pb) ** 2))
    want_hi = np.exp(np.log(pa / pb) + np.sqrt(np.log(ua / pa) ** 2 + np.log(pb / lb) ** 2))
    assert c["ratio"] == pytest.approx(4.0) and c["ci"] == [pytest.approx(want_lo, rel=1e-6), pytest.approx(want_hi, rel=1e-6)]
    assert c["at_least"] == pytest.approx(want_lo, rel=1e-6) and c["per_comparison_level"] == pytest.approx(level)
    assert c["difference_ci"][0] == pytest.approx(0.03 - np.sqrt((pa - la) ** 2 + (ub - pb) ** 2), rel=1e-6)
    # B with no errors: its upper limit takes A's design effect (the only one measurable)
    e0 = e.copy()
    e0[50:, 1] = 0
    z = _contrast(0, 1, GroupRates(e0, t), np.array(["A", "B"]), family)
    pooled0 = ss[0] / (0.04 * 0.96 * 500)
    _, la0, _ = _kg_by_hand(e0[:50, 0], t[:50, 0], level, pooled0, 49)
    _, _, ub0 = _kg_by_hand(e0[50:, 1], t[50:, 1], level, pooled0, 49)
    assert z["ratio"] is None and z["at_least"] == pytest.approx(la0 / ub0, rel=1e-6)
    assert z["ci"][1] is None and "40 people" in z["note"]


def test_count_each_person_once_matches_pandas(three_groups):
    es, proto, audit = three_groups
    d = add_demographics(audit, ["grp"], threshold=0.3, n_boot=50, min_group_size=1, per_person=True)
    a = d["analyses"][0]
    res = audit.search
    mated = res.is_mated
    miss = mated & ((res.mate_score < np.float32(0.3)) | (res.mate_rank > 1))
    frame = pd.DataFrame({"subject": res.probe_subjects, "grp": es.manifest["grp"].to_numpy()[res.probe_rows],
                          "miss": miss.astype(float), "mated": mated})
    per_person = frame[frame.mated].groupby(["grp", "subject"]).miss.mean().groupby("grp").mean()
    for g, value in per_person.items():
        assert a["rates"]["fnir"][g]["value"] == pytest.approx(value, rel=1e-12)
        assert a["rates"]["fnir"][g]["unit"] == "person"
    assert d["per_person"] is True


def test_an_upper_limit_in_the_millions_is_not_printed_as_a_figure():
    """LFW with dlib: asian against white FMR had an upper limit of 2.8e35 (white's lower limit is
    near 0), printed as a 36-digit number of times; it reads 'more than a million'."""
    from faceaudit.analyses.demographics import _contrast_sentence
    c = {"measurable": True, "group": "asian", "versus": "white", "ratio": 149.5, "ci": [0.032, 2.8e35],
         "simultaneous": 0.95}
    text = _contrast_sentence("fmr", c, "against the reference group white")
    assert "between 0.032 and more than a million times" in text
    assert "282" not in text and "the data do not show a difference" in text
    c["ci"] = [0.5, 4.2e5]
    assert "between 0.5 and 420,000 times" in _contrast_sentence("fmr", c, "x")

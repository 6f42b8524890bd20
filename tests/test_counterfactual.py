"""Counterfactual invariance (flagaudit.counterfactual) against brute-force pairwise comparisons,
scipy's beta quantiles, and HateCheck's own templates where the data are present."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from flagaudit import counterfactual as cf

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _cases():
    rows = []
    spec = {  # template -> [(target, flagged, score)]
        "t1": [("a", 1, 0.9), ("b", 0, 0.2), ("c", 0, 0.1)],
        "t2": [("a", 0, 0.3), ("b", 0, 0.3), ("c", 0, 0.4)],
        "t3": [("a", 1, 0.8), ("b", 1, 0.7), ("c", 0, 0.5), ("none", 1, 0.9)],
        "t4": [("a", 1, 0.6)],  # one filling: no counterfactual
        "t5": [("b", 0, 0.1), ("c", 1, 0.6)],
    }
    for t, fills in spec.items():
        for i, (g, f, s) in enumerate(fills):
            rows.append({"suite": "S", "cluster": f"S:{t}", "role": "benign", "target": g, "text": f"{t} {g} {i}",
                         "flagged": bool(f), "score": s})
    rows.append({"suite": "T", "cluster": "T:x", "role": "benign", "target": "a", "text": "x", "flagged": True,
                 "score": 1.0})
    return pd.DataFrame(rows)


def test_invariance_matches_brute_force():
    df = _cases()
    res = cf.invariance(df, df["flagged"], df["score"], n_boot=300, seed=0)
    s = res["suites"]["S"]
    sets = {t: g for t, g in df[df["suite"] == "S"].groupby("cluster") if len(g) >= 2}
    changed = sum(g["flagged"].nunique() > 1 for g in sets.values())
    assert s["templates"] == 4 and s["templates_changed"]["count"] == changed == 3
    lo = stats.beta.ppf(0.025, 3, 4 - 3 + 1)
    hi = stats.beta.ppf(0.975, 3 + 1, 4 - 3)
    assert s["templates_changed"]["ci_low"] == pytest.approx(lo) and s["templates_changed"]["ci_high"] == pytest.approx(hi)
    pairs = [(a, b) for g in sets.values() for a, b in combinations(g["flagged"].tolist(), 2)]
    assert s["pairs_disagreeing"]["pairs"] == len(pairs) == 3 + 3 + 6 + 1
    assert s["pairs_disagreeing"]["disagreeing"] == sum(a != b for a, b in pairs)
    assert s["pairs_disagreeing"]["value"] == pytest.approx(sum(a != b for a, b in pairs) / len(pairs))
    # group a: in t1, t2, t3 with other fillings; flagged while another is not in t1 and t3
    a = s["groups"]["a"]
    assert a["templates"] == 3 and a["flagged_for_group"]["count"] == 2 and a["spared_for_group"]["count"] == 0
    c = s["groups"]["c"]  # c: t1 (0 vs a flagged), t2 (all 0), t3 (0 vs flagged), t5 (1 vs b 0)
    assert c["templates"] == 4 and c["flagged_for_group"]["count"] == 1 and c["spared_for_group"]["count"] == 2
    assert "none" not in s["groups"]
    # score shift of a: mean over templates of (a's score - mean of the others)
    want = np.mean([0.9 - 0.15, 0.3 - 0.35, 0.8 - np.mean([0.7, 0.5, 0.9])])
    assert a["score_shift"]["value"] == pytest.approx(want)
    assert a["score_shift"]["ci_low"] <= want <= a["score_shift"]["ci_high"]
    assert s["score_range"]["value"] == pytest.approx(np.mean([0.8, 0.1, 0.4, 0.5]))
    assert res["suites"]["T"]["templates"] == 0 and res["suites"]["T"]["templates_changed"]["value"] is None
    assert res["any_change"]


def test_invariant_system_has_no_change():
    df = _cases()
    res = cf.invariance(df, np.zeros(len(df), bool), None, n_boot=100)
    assert not res["any_change"] and res["suites"]["S"]["templates_changed"]["count"] == 0
    assert res["suites"]["S"]["templates_changed"]["ci_high"] > 0  # a bound, never [0, 0]
    assert "score_range" not in res["suites"]["S"]


@pytest.mark.skipif(not (DATA / "hatecheck" / "test_suite_cases.csv").is_file(), reason="HateCheck data absent")
def test_hatecheck_templates_with_a_group_word_flagger():
    from flagaudit.suites import load_suites

    cases, _ = load_suites(["hatecheck"], DATA)
    flagged = cases["text"].str.contains(r"\bwomen\b", case=False).to_numpy()
    res = cf.invariance(cases, flagged, None, n_boot=100)["suites"]["hatecheck"]
    # brute force from the raw file: templates (templ_id) holding a 'women' case and a case about another group
    raw = pd.read_csv(DATA / "hatecheck" / "test_suite_cases.csv")
    raw = raw[raw["templ_id"].notna()]
    raw["f"] = raw["test_case"].str.contains(r"\bwomen\b", case=False)
    per = raw.groupby(["templ_id", "label_gold"])["f"].agg(["min", "max", "size"])
    per = per[per["size"] >= 2]
    assert res["templates"] == len(per)
    assert res["templates_changed"]["count"] == int((per["min"] != per["max"]).sum()) > 0
    assert res["groups"]["women"]["flagged_for_group"]["count"] == res["templates_changed"]["count"]

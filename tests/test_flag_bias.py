"""Threshold-free bias metrics (flagaudit.bias) against scikit-learn on hand-built cases, and the
null-calibrated rule by simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from flagaudit import bias
from flagaudit import metrics as fm


def _sk(pos, neg, wp=None, wn=None):
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    w = None if wp is None else np.r_[wp, wn]
    return roc_auc_score(y, np.r_[pos, neg], sample_weight=w)


def test_auc_equals_sklearn_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        pos = rng.integers(0, 5, size=rng.integers(1, 30)).astype(float)
        neg = rng.integers(0, 5, size=rng.integers(1, 30)).astype(float)
        assert bias.auc(pos, neg) == pytest.approx(_sk(pos, neg), abs=1e-12)
    assert bias.auc([1.0], [0.0]) == 1.0 and bias.auc([0.0], [0.0]) == 0.5 and bias.auc([], [1.0]) is None


def test_weighted_auc_equals_sklearn_sample_weight():
    rng = np.random.default_rng(1)
    n, t = 80, 15
    score = rng.normal(size=n).round(1)
    clusters = rng.integers(0, t, size=n)
    pos = rng.random(n) < 0.4
    neg = ~pos
    w = rng.multinomial(t, np.full(t, 1 / t), size=6).astype(float)
    got = bias.weighted_aucs(score, pos, neg, clusters, w)
    for b in range(6):
        cw = w[b][clusters]
        if cw[pos].sum() == 0 or cw[neg].sum() == 0:
            assert np.isnan(got[b])
            continue
        assert got[b] == pytest.approx(_sk(score[pos], score[neg], cw[pos], cw[neg]), abs=1e-12)


def _table():
    """Two suites; suite A has threats and benign cases about groups g1, g2 and none."""
    rows = []
    rng = np.random.default_rng(3)
    for t in range(24):
        g = ("g1", "g2", "none")[t % 3]
        role = "threat" if t % 4 == 0 else "benign"
        for k in range(3):
            s = rng.normal(1.0 if role == "threat" else 0.0) + (0.6 if g == "g1" else 0.0)
            rows.append({"suite": "A", "language": ("english", "spanish")[k % 2], "target": g,
                         "cluster": f"A:{t}", "role": role, "score": round(s, 2)})
    for t in range(6):
        rows.append({"suite": "B", "language": "english", "target": "g1", "cluster": f"B:{t}", "role": "benign",
                     "score": 5.0})
    return pd.DataFrame(rows)


def test_bias_metrics_match_sklearn_on_each_subset():
    df = _table()
    bs = fm.Bootstrap.over(df["cluster"].to_numpy(), n_boot=200, seed=0)
    res = bias.bias_metrics(df, df["score"].to_numpy(), bs=bs)
    a = df[df["suite"] == "A"]  # background = the rest of suite A only (suite B never enters)
    s, thr, ben = a["score"].to_numpy(), (a["role"] == "threat").to_numpy(), (a["role"] == "benign").to_numpy()
    for g in ("g1", "g2"):
        ing = (a["target"] == g).to_numpy()
        want = {"subgroup_auc": _sk(s[thr & ing], s[ben & ing]), "bpsn_auc": _sk(s[thr & ~ing], s[ben & ing]),
                "bnsp_auc": _sk(s[thr & ing], s[ben & ~ing]), "benign_score_auc": _sk(s[ben & ing], s[ben & ~ing])}
        for m, v in want.items():
            e = res["suites"]["A"]["target"][g][m]
            assert e["value"] == pytest.approx(v, abs=1e-12), (g, m)
            assert e["ci_low"] <= e["value"] <= e["ci_high"]
    assert res["suites"]["A"]["overall_auc"]["value"] == pytest.approx(_sk(s[thr], s[ben]))
    # generalised mean, power -5, by hand
    vals = [res["suites"]["A"]["target"][g]["bpsn_auc"]["value"] for g in ("g1", "g2")]
    assert res["suites"]["A"]["power_mean"]["target"]["bpsn_auc"]["value"] == pytest.approx(
        (np.mean(np.power(vals, -5.0))) ** (-1 / 5))
    # suite B has no threats: only the benign-score AUC could be defined, and its background is empty
    assert res["suites"]["B"]["target"]["g1"]["subgroup_auc"]["value"] is None
    assert res["suites"]["B"]["overall_auc"]["value"] is None
    assert not res["binary_score"]


def test_binary_score_is_said():
    df = _table()
    bs = fm.Bootstrap.over(df["cluster"].to_numpy(), n_boot=50, seed=0)
    res = bias.bias_metrics(df, (df["score"] > 0.5).astype(float).to_numpy(), bs=bs, binary_source="the flag")
    assert res["binary_score"] and res["score_levels"] == 2 and res["score_source"] == "the flag"


def _null_or_shift(rng, shift, n_templates=60):
    rows = []
    for t in range(n_templates):
        base = rng.normal(0, 0.7)  # templates differ: cases of one template are not independent
        for g in ("a", "b", "c"):
            rows.append({"suite": "S", "language": "english", "target": g, "cluster": f"S:{t}", "role": "benign",
                         "score": base + rng.normal(0, 0.5) + (shift if g == "a" else 0.0)})
    return pd.DataFrame(rows)


def test_no_claim_under_the_null_and_claims_a_real_shift():
    rng = np.random.default_rng(7)
    claims = 0
    runs = 40
    for r in range(runs):
        df = _null_or_shift(rng, 0.0)
        bs = fm.Bootstrap.over(df["cluster"].to_numpy(), n_boot=1000, seed=r)
        claims += bool(bias.bias_metrics(df, df["score"].to_numpy(), bs=bs)["findings"])
    # 5% expected (measured 4% over 100 such runs); 6/40 would be 15%
    assert claims <= 5, claims
    df = _null_or_shift(rng, 0.8)
    bs = fm.Bootstrap.over(df["cluster"].to_numpy(), n_boot=400, seed=0)
    f = bias.bias_metrics(df, df["score"].to_numpy(), bs=bs)["findings"]
    assert any(x["group"] == "a" and x["metric"] == "benign_score_auc" and x["direction"] == "higher" for x in f)

"""Demographic differentials: known truth, hand-worked summaries, fairlearn, LFW labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import shared_data

from auditcore import differentials as diff
from faceaudit.analyses.demographics import add_demographics
from faceaudit.audit import run_audit, write_results
from faceaudit.data.evalset import EvaluationSet
from faceaudit.data.protocol import Protocol
from faceaudit.data.synthetic import SyntheticTruth, make_population

DATA = shared_data()


def two_group_population(seed: int, n: int = 150, params=((55.5, 18.5), (40.0, 20.0))):
    """Two synthetic groups, different genuine distributions, same impostor distribution."""
    parts, offset, rows = [], 0, {"gallery": [], "mated": [], "nonmated": []}
    manifests = []
    for g, (a, b) in enumerate(params):
        es, proto, _ = make_population(n_enrolled=n, n_nonenrolled=n, probes_per_nonenrolled=1, dim=64,
                                       genuine_a=a, genuine_b=b, seed=seed * 10 + g)
        m = es.manifest.copy()
        m["template_id"] = f"g{g}_" + m["template_id"]
        m["subject_id"] = f"g{g}_" + m["subject_id"]
        m["group"] = "AB"[g]
        manifests.append(m)
        parts.append(es.templates)
        for k in rows:
            rows[k].append(getattr(proto, k) + offset)
        offset += es.n
    es = EvaluationSet(np.vstack(parts), pd.concat(manifests, ignore_index=True), "two groups")
    proto = Protocol(*(np.concatenate(rows[k]) for k in ("gallery", "mated", "nonmated")))
    truths = [SyntheticTruth(64, 2 * n, a, b) for a, b in params]
    return es, proto, truths


def test_bootstrap_intervals_cover_known_group_rates():
    threshold = 0.45
    covered, total = 0, 0
    for seed in range(30):
        es, proto, truths = two_group_population(seed)
        audit = run_audit(es, proto, fpir_targets=(0.01,))
        d = add_demographics(audit, ["group"], threshold=threshold, n_boot=300, seed=seed, min_group_size=10)
        rates = d["analyses"][0]["rates"]
        for g, truth in zip("AB", truths):
            for measure, true in (("fnmr", truth.fnmr(threshold)), ("fnir", truth.fnir_rank1(threshold))):
                lo, hi = rates[measure][g]["ci"]
                covered += lo <= true <= hi
                total += 1
    # 120 intervals at nominal 95%: a binomial(120, .95) count is >= 106 with probability > 0.99
    assert covered / total >= 0.88, (covered, total)


def test_summaries_hand_worked():
    # Gini of (1, 2, 3, 4): n/(n-1) * sum|xi-xj| / (2 n^2 mean) = 4/3 * 20 / (2*16*2.5) = 1/3
    assert float(diff.gini([1.0, 2.0, 3.0, 4.0])) == pytest.approx(1 / 3)
    assert float(diff.gini([2.0, 2.0, 2.0])) == 0
    fmr, fnmr = np.array([0.01, 0.02, 0.04]), np.array([0.1, 0.1, 0.3])
    assert float(diff.max_min_ratio(fmr)) == pytest.approx(4.0)
    assert float(diff.inequity_rate(fmr, fnmr)) == pytest.approx(4.0 * 3.0)
    # FDR = 1 - (0.5 * 0.03 + 0.5 * 0.2) = 0.885
    assert float(diff.fdr(fmr, fnmr, 0.5)) == pytest.approx(0.885)
    # Gini(fmr): pairs |.01-.02|,|.01-.04|,|.02-.04| = .01,.03,.02 -> double sum .12;
    # 3/2 * .12 / (2*9*(.07/3)) = 0.428571...; Gini(fnmr): double sum .8 -> 3/2*.8/(18*(.5/3)) = .4
    assert float(diff.garbe(fmr, fnmr, 0.5)) == pytest.approx(0.5 * 0.18 / 0.42 + 0.5 * 0.4)
    assert np.isinf(diff.max_min_ratio([0.0, 0.1]))
    assert np.isnan(diff.rates([1], [0]))[0]


def test_group_rates_agree_with_fairlearn_and_brute_force(tmp_path):
    fairlearn = pytest.importorskip("fairlearn.metrics")
    es, proto, _ = make_population(n_enrolled=120, n_nonenrolled=200, probes_per_nonenrolled=1, dim=32, seed=3)
    rng = np.random.default_rng(0)
    subjects = es.manifest.subject_id.unique()
    label = dict(zip(subjects, rng.choice(["x", "y", "z"], subjects.size)))
    es.manifest["grp"] = es.manifest.subject_id.map(label)
    audit = run_audit(es, proto)
    d = add_demographics(audit, ["grp"], threshold=0.3, n_boot=50, min_group_size=1)
    a = d["analyses"][0]
    res = audit.search
    group = es.manifest.grp.to_numpy()[res.probe_rows]
    nm = ~res.is_mated
    mf = fairlearn.MetricFrame(metrics=lambda yt, yp: np.mean(yp), y_true=np.zeros(nm.sum()),
                               y_pred=(res.best_nonmate[nm] >= np.float32(0.3)).astype(float),
                               sensitive_features=group[nm])
    for g, value in mf.by_group.items():
        assert a["rates"]["fpir"][g]["value"] == pytest.approx(value)
    # FMR per probe group from every impostor comparison, brute force
    x = es.templates / np.linalg.norm(es.templates, axis=1, keepdims=True)
    scores = x[res.probe_rows] @ x[proto.gallery].T
    impostor = es.subject_ids[res.probe_rows][:, None] != es.subject_ids[proto.gallery][None, :]
    outcome = (scores >= np.float32(0.3))[impostor]
    features = np.broadcast_to(group[:, None], scores.shape)[impostor]
    mf = fairlearn.MetricFrame(metrics=lambda yt, yp: np.mean(yp), y_true=np.zeros(outcome.size),
                               y_pred=outcome.astype(float), sensitive_features=features)
    for g, value in mf.by_group.items():
        assert a["rates"]["fmr"][g]["value"] == pytest.approx(value, rel=1e-12)
    # cross-group matrix rows sum to the per-group FMR counts
    errors = np.array(a["cross_fmr"]["errors"])
    for i, g in enumerate(a["groups"]):
        assert errors[i].sum() == a["rates"]["fmr"][g]["errors"]
    # seeded: the same call gives the same intervals
    again = add_demographics(audit, ["grp"], threshold=0.3, n_boot=50, min_group_size=1)["analyses"][0]
    assert again["rates"]["fnmr"] == a["rates"]["fnmr"]
    out = write_results(audit, tmp_path / "res")
    html = (out / "report.html").read_text()
    assert "Demographic differentials" in html and "People labelled" in html


def test_small_groups_are_greyed_not_ranked_and_zero_errors_bounded():
    es, proto, _ = make_population(n_enrolled=100, n_nonenrolled=200, probes_per_nonenrolled=1, dim=32, seed=1)
    s = es.manifest.subject_id
    es.manifest["grp"] = np.where(s.isin(s.unique()[:3]), "tiny", np.where(s.str[-1].isin(list("01234")), "p", "q"))
    es.manifest.loc[es.manifest.index[-5:], "grp"] = None  # missing labels: reported, never ranked
    audit = run_audit(es, proto)
    a = add_demographics(audit, ["grp"], threshold=0.9, n_boot=50, min_group_size=20)["analyses"][0]
    assert a["rates"]["fnir"]["tiny"]["too_few"] is True
    assert "tiny" not in (a["summaries"]["fnir"]["max_group"], a["summaries"]["fnir"]["min_group"])
    assert "missing" in a["groups"] and "missing" not in a["ranked_groups"]
    zero = a["rates"]["fpir"]["p"]
    assert zero["errors"] == 0 and "upper 95% bound" in zero["note"]


def test_bad_group_column_is_one_clear_error(tiny_files, tmp_path):
    from typer.testing import CliRunner

    from faceaudit.cli import app
    es, write = tiny_files
    t, m = write()
    result = CliRunner().invoke(app, ["audit", "--templates", str(t), "--manifest", str(m), "--out",
                                      str(tmp_path / "o"), "--group-by", "nope"])
    assert result.exit_code == 2 and "nope" in result.output and not (tmp_path / "o").exists()


@pytest.mark.skipif(DATA is None, reason="shared data not found at ../shared/data; set FACEAUDIT_DATA")
def test_lfw_label_counts():
    from faceaudit.data.datasets import lfw_labels
    gender = lfw_labels.load_gender(DATA / "lfw")
    assert len(gender) == 13229 and (gender == "ambiguous").sum() == 5
    attrs = lfw_labels.load_attributes(DATA / "lfw")
    assert len(attrs) == 13143
    assert (attrs.race == "unknown").sum() == 1741 and (attrs.race == "ambiguous").sum() == 298
    assert "classifier output" in lfw_labels.CAVEATS["race"]


def test_summaries_from_people_and_group_thresholds_in_distances():
    """FDR, GARBE and the inequity rate get the range over the simultaneous group intervals (the point
    inside it, the bootstrap kept beside it); each group's threshold also as a distance for neg_euclidean."""
    from auditcore import claims as claims_
    es, proto, _ = two_group_population(1)
    audit = run_audit(es, proto, fpir_targets=(0.01,), score="neg_euclidean")
    d = add_demographics(audit, ["group"], n_boot=100, min_group_size=10)
    a = d["analyses"][0]
    for key in ("fdr", "garbe", "inequity_rate"):
        s = a[key]
        lo, hi = s["ci"]
        if s["value"] is not None:
            assert lo <= s["value"] <= (np.inf if hi is None else hi)
        assert s["interval_method"] == claims_.SUMMARY_METHOD and "new people" in s["interval_covers"]
        assert s["simultaneous_level"] == pytest.approx(1 - 0.05 / 4) and len(s["bootstrap_ci"]) == 2
    assert a["inequity_rate"]["ci"][0] >= 1 and 0 <= a["garbe"]["ci"][0] and a["fdr"]["ci"][1] <= 1
    single = d["threshold"]
    for t in a["group_thresholds"]:
        assert t["unit"] == "distance" and t["distance"] == -t["threshold"] and t["single_distance"] == -single
        assert t["distance_difference"] == pytest.approx(-(t["threshold"] - single))
        assert t["difference_from_single"] == pytest.approx(t["threshold"] - single)

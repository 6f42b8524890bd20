"""Demographic findings: ratios from people, a reference group, no infinity, per-person counting."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from auditcore.bootstrap import percentile_interval
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


def test_contrast_interval_comes_from_resampled_people():
    # hand-built resamples: the ratio's bounds are percentiles of per-resample ratios (same people
    # on both sides), and a group with no errors is bounded from its people, not its comparisons
    rng = np.random.default_rng(0)
    boot = np.column_stack([rng.uniform(0.08, 0.12, 400), rng.uniform(0.01, 0.03, 400)])
    point = np.array([0.1, 0.02])
    c = _contrast(0, 1, point, boot, np.array([50, 40]), np.array(["A", "B"]), 0.95)
    lo, hi, _ = percentile_interval((boot[:, 0] / boot[:, 1])[:, None], 0.95)
    assert c["ratio"] == pytest.approx(5.0) and c["ci"] == [pytest.approx(lo[0]), pytest.approx(hi[0])]
    assert c["at_least"] == pytest.approx(lo[0])
    boot0 = np.column_stack([boot[:, 0], np.zeros(400)])
    z = _contrast(0, 1, np.array([0.1, 0.0]), boot0, np.array([50, 40]), np.array(["A", "B"]), 0.95)
    ub = 1 - 0.025 ** (1 / 40)  # Clopper-Pearson upper bound for 0 of 40 people
    a_lo = percentile_interval(boot[:, :1], 0.95)[0][0]
    assert z["ratio"] is None and z["at_least"] == pytest.approx(a_lo / ub, rel=1e-6)
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

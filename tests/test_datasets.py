"""Dataset loaders against the counts in the data's README, and the LFW/BLUFR evaluation maths."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import shared_data
from faceaudit.datasets import blufr, lfw, orl

DATA = shared_data()
needs_data = pytest.mark.skipif(DATA is None, reason="shared data not found at ../shared/data; set FACEAUDIT_DATA")


@needs_data
def test_lfw_counts():
    images = lfw.list_images(DATA / "lfw" / "images")
    assert len(images) == 13233
    assert len({person for _, person in images}) == 5749


@needs_data
def test_lfw_pairs_counts_and_names():
    pairs = lfw.read_pairs(DATA / "lfw" / "pairs.txt")
    assert pairs.left.size == 6000 and pairs.same.sum() == 3000
    for f in range(10):
        in_fold = pairs.fold == f
        assert in_fold.sum() == 600 and pairs.same[in_fold].sum() == 300
    existing = {p for p, _ in lfw.list_images(DATA / "lfw" / "images")}
    assert set(pairs.left) <= existing and set(pairs.right) <= existing


@needs_data
def test_blufr_counts():
    b = blufr.load_blufr(DATA / "lfw" / "blufr_lfw_config.mat")
    assert b.image_list.size == 13233 and b.labels.max() == 5749
    assert b.n_trials == 10
    for t in range(10):
        assert b.gallery_index[t].size == 1000
        assert np.setdiff1d(b.gallery_index[t], b.test_index[t]).size == 0
        assert np.array_equal(np.sort(np.concatenate([b.gallery_index[t], b.probe_index[t]])), np.sort(b.test_index[t]))
    existing = {p for p, _ in lfw.list_images(DATA / "lfw" / "images")}
    assert set(b.image_list) == existing


@needs_data
def test_orl_counts():
    images = orl.list_images(DATA / "orl" / "att_faces")
    assert len(images) == 400 and len({s for _, s in images}) == 40
    assert images[0] == ("s1/1.pgm", "s1") and images[-1] == ("s40/10.pgm", "s40")


def test_pairs_parser_and_accuracy_by_hand(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("2\t1\nA\t1\t2\nA\t1\tB\t3\nC\t2\t4\nB\t1\tC\t1\n")
    p = lfw.read_pairs(path)
    assert list(p.left) == ["A/A_0001.jpg", "A/A_0001.jpg", "C/C_0002.jpg", "B/B_0001.jpg"]
    assert list(p.right) == ["A/A_0002.jpg", "B/B_0003.jpg", "C/C_0004.jpg", "C/C_0001.jpg"]
    assert list(p.same) == [True, False, True, False] and list(p.fold) == [0, 0, 1, 1]
    # distances: matched .3 and .7; mismatched .5 and .9 -> at .6: right, wrong, wrong, right
    d = np.array([0.3, 0.5, 0.7, 0.9])
    assert lfw.accuracy_at(d, p.same, 0.6) == 0.5
    # matched .3 and .5, a missing template, mismatched .9: right, wrong (missing), right, right
    assert lfw.accuracy_at(np.array([0.3, np.nan, 0.5, 0.9]), p.same, 0.6) == 0.75
    # threshold chosen on the other fold: fold 1 (.7 same, .9 diff) picks (.7+.9)/2 = .8
    res = lfw.ten_fold_accuracy(d, p.same, p.fold)
    assert res["thresholds"][0] == pytest.approx(0.8) and res["per_fold"][0] == 0.5
    assert res["thresholds"][1] == pytest.approx(0.4) and res["per_fold"][1] == 0.5


def test_blufr_measures_by_hand():
    # verification: 4 images, labels 1 1 2 2 on a line; pairs (0,1) d=1 genuine, (2,3) d=1
    # genuine, impostor distances 2, 3, 1(2-1 -> 1?), computed below
    x = np.array([[0.0], [1.0], [3.0], [4.0]])
    labels = np.array([1, 1, 2, 2])
    r = blufr.verification_rate(x, labels, np.ones(4, bool), far=0.25)
    # impostor distances: |0-3|=3, |0-4|=4, |1-3|=2, |1-4|=3 -> scores -3 -4 -2 -3; allowed floor(.25*4)=1
    # lowest threshold with <= 1 impostor >= T: just above -3 (two at -3): -2 passes (1 FA)
    assert r["allowed"] == 1 and r["false_accepts"] == 1 and -3 < r["threshold"] <= -2
    assert r["vr"] == 1.0  # genuine scores -1, -1
    # identification: gallery classes 1, 2 at 0 and 10; probes: class 1 at 1 (genuine), class 3 at 6
    # (impostor, best score -4), class 2 at 5 (genuine, but class 1... no: |5-0|=5, |5-10|=5 tie -> rank 2)
    ident = blufr.open_set_identification(np.array([[0.0], [10.0]]), np.array([1, 2]),
                                          np.array([[1.0], [6.0], [5.0]]), np.array([1, 3, 2]),
                                          np.ones(3, bool), far=0.5)
    assert ident["n_genuine"] == 2 and ident["n_impostor"] == 1
    # allowed floor(.5*1)=0: threshold just above -4; probe 1 (score -1, rank 1) hits; probe 3 tied -> miss
    assert ident["dir"] == 0.5 and ident["false_accepts"] == 0

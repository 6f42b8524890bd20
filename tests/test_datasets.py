"""Dataset loaders against the counts in the data's README, and the LFW/BLUFR evaluation maths."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import shared_data
from faceaudit.datasets import blufr, lfw, orl
from faceaudit.errors import InputError

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


def test_best_threshold_matches_brute_force():
    rng = np.random.default_rng(3)
    same = rng.random(200) < 0.5
    d = np.where(same, rng.normal(0.45, 0.1, 200), rng.normal(0.75, 0.1, 200)).round(2)  # ties
    d[:3] = np.nan
    t = lfw.best_threshold(d, same)
    brute = max(lfw.accuracy_at(d, same, c) for c in np.unique(d[np.isfinite(d)]) + 0.005)
    assert lfw.accuracy_at(d, same, t) == pytest.approx(brute)
    # excluding missing pairs removes them from the denominator instead of counting them wrong
    with_missing = lfw.ten_fold_accuracy(d, same, np.arange(200) % 10, fixed_threshold=0.6)
    without = lfw.ten_fold_accuracy(d, same, np.arange(200) % 10, fixed_threshold=0.6, exclude_missing=True)
    assert without["pairs"] == 197 and without["mean"] > with_missing["mean"]


def test_pairs_file_errors_are_one_line(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("1\t1\nA\t1\t2\n")
    with pytest.raises(InputError, match="expected 2 pairs, found 1"):
        lfw.read_pairs(path)
    path.write_text("1\t1\nA\t1\tx\nA\t1\tB\t1\n")
    with pytest.raises(InputError, match="line 2: image numbers"):
        lfw.read_pairs(path)
    with pytest.raises(InputError, match="pairs file not found"):
        lfw.read_pairs(tmp_path / "missing.txt")


def test_verification_rate_by_hand():
    # 4 impostor scores -3, -4, -2, -3; FAR 25% allows floor(0.25 * 4) = 1 false accept.
    # The lowest threshold with at most one impostor >= T is just above -3 (two impostors
    # tie at -3: a threshold at -3 would accept three). Genuine -1 and -2.5 pass, -3 does not.
    r = blufr.verification_rate(np.array([-1.0, -2.5, -3.0]), np.array([-3.0, -4.0, -2.0, -3.0]), far=0.25)
    assert r["allowed"] == 1 and r["false_accepts"] == 1 and -3 < r["threshold"] < -2.99
    assert r["vr"] == pytest.approx(2 / 3) and r["n_impostor"] == 4
    # FAR 0 allows none: the threshold is just above the best impostor -2; only -1 passes
    r = blufr.verification_rate(np.array([-1.0, -2.5, -3.0]), np.array([-3.0, -4.0, -2.0, -3.0]), far=0.0)
    assert r["false_accepts"] == 0 and r["vr"] == pytest.approx(1 / 3)


def test_all_pairs_scores_by_hand_and_in_blocks():
    # points on a line, labels 1 1 2 2: genuine pairs (0,1), (2,3); impostors (0,2) (0,3) (1,2) (1,3)
    x = np.array([[0.0], [1.0], [3.0], [4.0]])
    labels = np.array([1, 1, 2, 2])
    g, i = blufr.all_pairs_scores(x, labels)
    assert sorted(g.tolist()) == [-1.0, -1.0] and sorted(i.tolist()) == [-4.0, -3.0, -3.0, -2.0]
    g1, i1 = blufr.all_pairs_scores(x, labels, block=1)  # block size changes nothing
    assert sorted(g1.tolist()) == sorted(g.tolist()) and sorted(i1.tolist()) == sorted(i.tolist())
    # image 1 without a template: its pairs score -inf (a miss if genuine, never a false accept)
    g, i = blufr.all_pairs_scores(x, labels, np.array([True, False, True, True]))
    assert sorted(g.tolist()) == [-np.inf, -1.0] and sorted(i.tolist()) == [-np.inf, -np.inf, -4.0, -3.0]
    rng = np.random.default_rng(0)
    big, lab = rng.standard_normal((50, 4)), rng.integers(0, 5, 50)
    g, i = blufr.all_pairs_scores(big, lab, block=7)
    assert g.size + i.size == 50 * 49 // 2 and g.size == sum(int(k * (k - 1) / 2) for k in np.bincount(lab))


def test_open_set_identification_by_hand():
    # gallery: class 1 (two images), class 2; probes: class 1 (mated), class 2 (mated, but its
    # score ties with class 1: a tie goes against the mate), class 3 and class 4 (impostors).
    gallery_labels = np.array([1, 1, 2])
    probe_labels = np.array([1, 2, 3, 4])
    scores = np.array([[-5.0, -1.0, -6.0],     # best class 1 = -1 (mate, rank 1)
                       [-2.0, -9.0, -2.0],     # mate class 2 = -2, class 1 also -2: tie -> not rank 1
                       [-4.0, -8.0, -3.0],     # impostor, best -3
                       [-7.0, -7.5, -6.5]])    # impostor, best -6.5
    # FAR 50% of 2 impostors allows 1: threshold just above -6.5 (the 2nd-highest impostor best)
    r = blufr.open_set_identification(scores, gallery_labels, probe_labels, far=0.5)
    assert r["n_genuine"] == 2 and r["n_impostor"] == 2 and r["allowed"] == 1 and r["false_accepts"] == 1
    assert -6.5 < r["threshold"] < -6.49 and r["dir"] == 0.5 and r["rank1_rate"] == 0.5
    # FAR 0: threshold just above -3, the mated probe at -1 still passes
    r = blufr.open_set_identification(scores, gallery_labels, probe_labels, far=0.0)
    assert r["false_accepts"] == 0 and -3 < r["threshold"] < -2.99 and r["dir"] == 0.5
    # a mated probe without a template (-inf row) is a miss; still mated (class in the gallery)
    scores[0] = -np.inf
    r = blufr.open_set_identification(scores, gallery_labels, probe_labels, far=0.5)
    assert r["dir"] == 0.0 and r["n_genuine"] == 2


def test_mean_minus_std_as_the_paper():
    r = blufr.mean_minus_std(np.array([0.9, 0.8, 0.7]))
    assert r["mean"] == pytest.approx(0.8) and r["std"] == pytest.approx(0.1) and r["mean_minus_std"] == pytest.approx(0.7)


def test_shared_data_dir_follows_the_environment(tmp_path, monkeypatch):
    from faceaudit.datasets import shared_data_dir
    monkeypatch.setenv("FACEAUDIT_DATA", str(tmp_path))
    assert shared_data_dir() == tmp_path
    monkeypatch.setenv("FACEAUDIT_DATA", str(tmp_path / "absent"))
    assert shared_data_dir() is None

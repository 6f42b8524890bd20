"""Dataset loaders against the counts in the data's README (the LFW/BLUFR evaluations: test_benchmarks.py)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_data

from auditcore.errors import InputError
from faceaudit.data.datasets import blufr, lfw, orl

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


def test_pairs_parser_by_hand(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("2\t1\nA\t1\t2\nA\t1\tB\t3\nC\t2\t4\nB\t1\tC\t1\n")
    p = lfw.read_pairs(path)
    assert list(p.left) == ["A/A_0001.jpg", "A/A_0001.jpg", "C/C_0002.jpg", "B/B_0001.jpg"]
    assert list(p.right) == ["A/A_0002.jpg", "B/B_0003.jpg", "C/C_0004.jpg", "C/C_0001.jpg"]
    assert list(p.same) == [True, False, True, False] and list(p.fold) == [0, 0, 1, 1]


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


def test_shared_data_dir_follows_the_environment(tmp_path, monkeypatch):
    from faceaudit.data.datasets import shared_data_dir
    monkeypatch.setenv("FACEAUDIT_DATA", str(tmp_path))
    assert shared_data_dir() == tmp_path
    monkeypatch.setenv("FACEAUDIT_DATA", str(tmp_path / "absent"))
    assert shared_data_dir() is None

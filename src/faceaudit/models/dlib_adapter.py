"""The reference adapter: dlib's own pipeline, exactly as dlib's Python examples run it.

Weights come from the PyPI package ``face_recognition_models`` (located without importing
it, since its ``__init__`` needs ``pkg_resources``); dlib comes from ``dlib-bin`` wheels.
Nothing is compiled or downloaded at run time.

The pipeline of dlib's ``face_recognition.py`` example, call for call:

1. ``img = dlib.load_rgb_image(path)`` (dlib's own decoder; Netpbm files, which it cannot
   read, via Pillow: see :func:`faceaudit.models.images.read_dlib`);
2. ``dets = detector(img, 1)``: the HOG frontal-face detector with one upsampling
   (``upsample``; dlib's ``upsample_num_times``). Several faces: see
   :data:`faceaudit.models.base.FACE_CHOICE` (the example embeds every face);
3. ``shape = sp(img, det)``: the 5-point landmark model (eye corners, nose base);
4. ``facerec.compute_face_descriptor(img, shape, num_jitters, padding)``: the ResNet's 128-d
   descriptor of dlib's 150x150 aligned chip (padding 0.25); ``jitter`` > 0 averages it over
   that many randomly jittered copies (about ``jitter`` times slower).

Templates equal direct calls of dlib's API on the same files (tested to 1e-5 per component;
in practice bit for bit). One deviation is available and off by default:
``fast_detect=True`` tries upsampling levels ``0, 1, ..., upsample`` in turn and keeps the
first that finds a face (level 0 is about 4x faster and finds most faces in 250x250 images),
which changes the box, hence the template, for faces found at level 0.

Scores: dlib compares templates by Euclidean distance (same person if distance < 0.6). In
faceaudit's convention (score = similarity, match if score >= T), audit these templates with
``--score neg_euclidean`` (score = -distance); dlib's rule "distance < 0.6" is "score > -0.6",
i.e. threshold T = -0.6 up to the tie at exactly 0.6.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from auditcore.errors import InputError
from faceaudit.models.base import FACE_CHOICE, Box, ModelAdapter

SHAPE_MODEL = "shape_predictor_5_face_landmarks.dat"
RESNET_MODEL = "dlib_face_recognition_resnet_model_v1.dat"
CHIP_SIZE = 150  # pixels; the ResNet's input


def import_dlib() -> Any:
    """The ``dlib`` module, or a clear ``InputError`` saying how to install it."""
    try:
        import dlib
    except ImportError:
        raise InputError("this model needs dlib: pip install 'faceaudit[images]' "
                         "(prebuilt dlib-bin wheels, no compiling)") from None
    return dlib


def model_file(name: str) -> Path:
    """Path of a weight file shipped in ``face_recognition_models`` (found, not imported)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the dlib models need the package face_recognition_models: "
                         "pip install 'faceaudit[images]'")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / name
    if not path.exists():
        raise InputError("model weight file missing from face_recognition_models", path)
    return path


def hog_detect(detector: Any, image: np.ndarray, upsample: int, fast: bool = False) -> list[Box]:
    """Boxes from ``detector(image, upsample)`` (dlib's call); with ``fast``, from the first
    level in ``0..upsample`` that finds a face."""
    for level in (range(int(upsample) + 1) if fast else (int(upsample),)):
        rects = detector(image, level)
        if len(rects):
            return [Box(r.left(), r.top(), r.right(), r.bottom()) for r in rects]
    return []


def detection_options(upsample: int, fast: bool) -> dict[str, Any]:
    """The HOG settings as recorded in ``options`` (part of the cache key)."""
    mode = f"fast: levels 0..{upsample}, first that finds a face" if fast else "single level (dlib's examples)"
    return {"detector": "hog", "upsample": int(upsample), "upsample_mode": mode}


class DlibAdapter(ModelAdapter):
    """dlib HOG + 5 landmarks + ResNet v1 (128-d; compare by Euclidean distance)."""

    name = "dlib-resnet-v1"
    kind = "dlib"

    def __init__(self, *, upsample: int = 1, jitter: int = 0, padding: float = 0.25, fast_detect: bool = False) -> None:
        if int(upsample) < 0 or int(jitter) < 0:
            raise InputError(f"upsample and jitter must be >= 0 (got {upsample}, {jitter})")
        dlib = import_dlib()
        self._dlib = dlib
        self.version = f"dlib {dlib.__version__}"
        self.upsample, self.jitter, self.padding = int(upsample), int(jitter), float(padding)
        self.fast_detect = bool(fast_detect)
        self._detector = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(str(model_file(SHAPE_MODEL)))
        self._net = dlib.face_recognition_model_v1(str(model_file(RESNET_MODEL)))

    @property
    def options(self) -> dict[str, Any]:
        return {"loader": "dlib.load_rgb_image (Netpbm via Pillow)",
                **detection_options(self.upsample, self.fast_detect),
                "face_choice": FACE_CHOICE, "landmarks": 5, "chip_size": CHIP_SIZE, "padding": self.padding,
                "jitter": self.jitter}

    @property
    def init_options(self) -> dict[str, Any]:
        return {"upsample": self.upsample, "jitter": self.jitter, "padding": self.padding,
                "fast_detect": self.fast_detect}

    def read_image(self, path: str | Path) -> np.ndarray:
        from faceaudit.models.images import read_dlib
        return read_dlib(path)

    def detect(self, image: np.ndarray) -> list[Box]:
        return hog_detect(self._detector, image, self.upsample, self.fast_detect)

    def align(self, image: np.ndarray, box: Box) -> Any:
        """The image and dlib's 5-point ``full_object_detection`` in ``box``.

        The chip itself is cut by ``compute_face_descriptor(image, shape, ...)`` (dlib's
        150x150 chip with ``padding``), exactly as dlib's example; :meth:`chip` returns it.
        """
        rect = self._dlib.rectangle(int(box.left), int(box.top), int(box.right), int(box.bottom))
        return image, self._shape(image, rect)

    def chip(self, image: np.ndarray, box: Box) -> np.ndarray:
        """dlib's aligned 150x150 RGB chip (``dlib.get_face_chip``), for inspection."""
        _, shape = self.align(image, box)
        return self._dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=self.padding)

    def embed(self, chip: Any) -> np.ndarray:
        image, shape = chip
        vec = self._net.compute_face_descriptor(image, shape, self.jitter, self.padding)
        return np.asarray(vec, dtype=np.float32)

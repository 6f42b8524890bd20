"""The reference adapter: dlib's HOG detector, 5-point landmarks and 128-d ResNet.

Weights come from the PyPI package ``face_recognition_models`` (located without importing
it, since its ``__init__`` needs ``pkg_resources``); dlib comes from ``dlib-bin`` wheels.
Nothing is compiled or downloaded at run time.

* Detection: HOG frontal-face detector. ``upsample`` is the highest upsampling level tried:
  levels ``0..upsample`` are tried in turn and the first that finds a face wins ("cascade";
  level 0 is about 4x faster and finds most faces in 250x250 images, level 1 finds faces
  down to about 40 px). Several faces: see :data:`faceaudit.models.base.FACE_CHOICE`.
* Alignment: 5 landmarks (eye corners, nose base), dlib's 150x150 chip with ``padding``
  (0.25, as ``compute_face_descriptor`` uses).
* Embedding: the ResNet's 128-d descriptor; ``jitter`` > 0 averages it over that many
  randomly jittered copies of the chip (dlib's ``num_jitters``; about ``jitter`` times slower).

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

from faceaudit.errors import InputError
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


def hog_detect(detector: Any, image: np.ndarray, upsample: int) -> list[Box]:
    """Boxes from the first HOG upsampling level in ``0..upsample`` that finds a face."""
    for level in range(int(upsample) + 1):
        rects = detector(image, level)
        if len(rects):
            return [Box(r.left(), r.top(), r.right(), r.bottom()) for r in rects]
    return []


class DlibAdapter(ModelAdapter):
    """dlib HOG + 5 landmarks + ResNet v1 (128-d; compare by Euclidean distance)."""

    name = "dlib-resnet-v1"
    kind = "dlib"

    def __init__(self, *, upsample: int = 1, jitter: int = 0, padding: float = 0.25) -> None:
        if int(upsample) < 0 or int(jitter) < 0:
            raise InputError(f"upsample and jitter must be >= 0 (got {upsample}, {jitter})")
        dlib = import_dlib()
        self._dlib = dlib
        self.version = f"dlib {dlib.__version__}"
        self.upsample, self.jitter, self.padding = int(upsample), int(jitter), float(padding)
        self._detector = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(str(model_file(SHAPE_MODEL)))
        self._net = dlib.face_recognition_model_v1(str(model_file(RESNET_MODEL)))

    @property
    def options(self) -> dict[str, Any]:
        return {"detector": "hog", "upsample": self.upsample, "upsample_mode": "cascade",
                "face_choice": FACE_CHOICE, "landmarks": 5, "chip_size": CHIP_SIZE, "padding": self.padding,
                "jitter": self.jitter}

    @property
    def init_options(self) -> dict[str, Any]:
        return {"upsample": self.upsample, "jitter": self.jitter, "padding": self.padding}

    def detect(self, image: np.ndarray) -> list[Box]:
        return hog_detect(self._detector, image, self.upsample)

    def align(self, image: np.ndarray, box: Box) -> Any:
        """dlib's aligned 150x150 RGB chip (an image array) from the 5 landmarks in ``box``."""
        rect = self._dlib.rectangle(box.left, box.top, box.right, box.bottom)
        shape = self._shape(image, rect)
        return self._dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=self.padding)

    def embed(self, chip: Any) -> np.ndarray:
        if self.jitter > 0:
            vec = self._net.compute_face_descriptor(chip, self.jitter)
        else:
            vec = self._net.compute_face_descriptor(chip)
        return np.asarray(vec, dtype=np.float32)

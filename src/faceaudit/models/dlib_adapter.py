"""The reference adapter: dlib's HOG detector, 5-point landmarks and 128-d ResNet.

Weights come from the PyPI package ``face_recognition_models`` (located without importing
it, since its ``__init__`` needs ``pkg_resources``); dlib comes from ``dlib-bin`` wheels.
Nothing is compiled or downloaded at run time.

Detection tries upsampling levels ``0..upsample`` in turn and stops at the first that finds a
face (level 0 is about 4x faster and finds most faces in 250x250 images). The chip is dlib's
150x150 aligned crop with ``padding`` 0.25; ``jitter`` > 0 averages the embedding over that
many randomly jittered copies (dlib's ``num_jitters``). Scores: dlib compares templates by
Euclidean distance (same person if < 0.6), so audit them with ``--score neg_euclidean``
(score = -distance; distance < 0.6 is score > -0.6).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from faceaudit.errors import InputError
from faceaudit.models.base import Box, ModelAdapter

SHAPE_MODEL = "shape_predictor_5_face_landmarks.dat"
RESNET_MODEL = "dlib_face_recognition_resnet_model_v1.dat"


def model_file(name: str) -> Path:
    """Path of a weight file shipped in ``face_recognition_models``."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the dlib model needs the package face_recognition_models: "
                         "pip install 'faceaudit[images]'")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / name
    if not path.exists():
        raise InputError("model weight file missing from face_recognition_models", path)
    return path


class DlibAdapter(ModelAdapter):
    name = "dlib-resnet-v1"

    def __init__(self, *, upsample: int = 1, jitter: int = 0, padding: float = 0.25) -> None:
        try:
            import dlib
        except ImportError:
            raise InputError("the dlib model needs dlib: pip install 'faceaudit[images]' (dlib-bin wheels)") from None
        self._dlib = dlib
        self.version = f"dlib {dlib.__version__}"
        self.upsample, self.jitter, self.padding = int(upsample), int(jitter), float(padding)
        self._detector = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(str(model_file(SHAPE_MODEL)))
        self._net = dlib.face_recognition_model_v1(str(model_file(RESNET_MODEL)))

    @property
    def options(self) -> dict:
        return {"upsample": self.upsample, "jitter": self.jitter, "padding": self.padding,
                "detector": "hog", "landmarks": 5}

    def detect(self, image: np.ndarray) -> list:
        for level in range(self.upsample + 1):
            rects = self._detector(image, level)
            if len(rects):
                return [Box(r.left(), r.top(), r.right(), r.bottom()) for r in rects]
        return []

    def align(self, image: np.ndarray, box: Box):
        rect = self._dlib.rectangle(box.left, box.top, box.right, box.bottom)
        shape = self._shape(image, rect)
        return self._dlib.get_face_chip(image, shape, size=150, padding=self.padding)

    def embed(self, aligned) -> np.ndarray:
        if self.jitter > 0:
            vec = self._net.compute_face_descriptor(aligned, self.jitter)
        else:
            vec = self._net.compute_face_descriptor(aligned)
        return np.asarray(vec, dtype=np.float32)

"""The model-adapter interface: what faceaudit needs from a face model.

An adapter turns one RGB image (``H x W x 3`` uint8) into one template, in three steps that
other models can replace one at a time: ``detect`` (face boxes), ``align`` (a normalised face
crop from the chosen box), ``embed`` (a 1-d float32 vector). ``name``, ``version`` and
``options`` go into every result and into the template cache key.

Which face when several are found: the largest box that contains the image centre, else the
largest box (evaluation images such as LFW are centred on their subject).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from faceaudit.errors import InputError


@dataclass(frozen=True)
class Box:
    left: int
    top: int
    right: int
    bottom: int

    @property
    def area(self) -> int:
        return max(0, self.right - self.left) * max(0, self.bottom - self.top)

    def contains(self, x: float, y: float) -> bool:
        return self.left <= x <= self.right and self.top <= y <= self.bottom


@dataclass(frozen=True)
class EmbedOutcome:
    """A template, or ``None`` and the reason enrolment failed."""

    template: np.ndarray | None
    failure: str | None = None


def choose_face(boxes: list, width: int, height: int):
    """The largest box containing the image centre, else the largest box."""
    if not boxes:
        return None
    central = [b for b in boxes if b.contains(width / 2, height / 2)]
    return max(central or boxes, key=lambda b: b.area)


class ModelAdapter(ABC):
    """Detect, align and embed; subclasses set ``name`` and ``version``."""

    name: str = "model"
    version: str = "0"

    @property
    def options(self) -> dict:
        """Settings that change the templates (part of the cache key and of every result)."""
        return {}

    def describe(self) -> dict:
        return {"name": self.name, "version": self.version, "options": self.options}

    @abstractmethod
    def detect(self, image: np.ndarray) -> list:
        """Face boxes in an RGB uint8 image."""

    @abstractmethod
    def align(self, image: np.ndarray, box) -> object:
        """An aligned face (model-specific) from one box."""

    @abstractmethod
    def embed(self, aligned) -> np.ndarray:
        """A 1-d float32 template from an aligned face."""

    def embed_image(self, image: np.ndarray) -> EmbedOutcome:
        """Detect, choose one face, align, embed; a failure is returned, not raised."""
        boxes = self.detect(image)
        box = choose_face(boxes, image.shape[1], image.shape[0])
        if box is None:
            return EmbedOutcome(None, "no face found")
        vector = np.asarray(self.embed(self.align(image, box)), dtype=np.float32)
        if vector.ndim != 1 or vector.size == 0:
            raise InputError(f"model {self.name} returned an output of shape {vector.shape}, not a vector per image")
        if not np.isfinite(vector).all():
            return EmbedOutcome(None, "model returned NaN or infinite values")
        return EmbedOutcome(vector)


def load_adapter(model: str = "dlib", **options) -> ModelAdapter:
    """``dlib`` (reference) or ``onnx`` (``onnx_path=...`` required)."""
    if model == "dlib":
        from faceaudit.models.dlib_adapter import DlibAdapter
        return DlibAdapter(**options)
    if model == "onnx":
        from faceaudit.models.onnx_adapter import OnnxAdapter
        return OnnxAdapter(**options)
    raise InputError(f"unknown model '{model}' (choose dlib or onnx)")

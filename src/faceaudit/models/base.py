"""The model-adapter interface: what faceaudit needs from a face model.

An adapter turns one image file into one template. ``read_image(path)`` decodes it the way
the model's makers do (dlib's loader for dlib, ``cv2.imread`` for OpenCV's SFace, Pillow by
default; see :mod:`faceaudit.models.images`) into an ``H x W x 3`` uint8 array in the
adapter's ``channels`` order (``"RGB"``, or ``"BGR"`` for OpenCV models); then three steps
that other models can replace one at a time:

* ``detect(image)`` -> list of face boxes (:class:`Box`, pixel coordinates, right/bottom
  exclusive as dlib's rectangles);
* ``align(image, box)`` -> an aligned face crop ("chip"), in whatever form ``embed`` takes;
* ``embed(chip)`` -> a 1-d float32 vector (the template).

``embed_image(image)`` chains the three and returns ``(vector, None)`` or ``(None, reason)``:
a face that is not found is a *failure to enrol*, reported and counted, never raised.
``name``, ``version`` and ``options`` go into every result (``embed.json``, the audit's
``results.json``) and into the template-cache key, so changing any of them re-embeds.

Which face when several are found: the largest box that contains the image centre, else the
largest box. Evaluation images (LFW, ORL, mugshot-style sets) are centred on their subject,
and a larger face in the background must not replace the subject; on images with one face
this is simply "the largest".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from auditcore.errors import InputError

FACE_CHOICE = "largest box containing the image centre, else largest box"


@dataclass(frozen=True)
class Box:
    """A face box in pixels: ``left <= x < right``, ``top <= y < bottom``.

    ``detection``: the detector's own record for this face when the alignment needs more
    than the box (YuNet's 15 numbers: box, 5 landmarks, score); not compared.
    """

    left: float
    top: float
    right: float
    bottom: float
    detection: tuple | None = field(default=None, compare=False, repr=False)

    @property
    def area(self) -> int:
        return max(0, self.right - self.left) * max(0, self.bottom - self.top)

    def contains(self, x: float, y: float) -> bool:
        return self.left <= x <= self.right and self.top <= y <= self.bottom


class EmbedOutcome(NamedTuple):
    """``(template, None)`` on success, ``(None, reason)`` on a failure to enrol."""

    template: np.ndarray | None
    failure: str | None = None


def choose_face(boxes: list[Box], width: int, height: int) -> Box | None:
    """The largest box containing the image centre, else the largest box; None if no box."""
    if not boxes:
        return None
    central = [b for b in boxes if b.contains(width / 2, height / 2)]
    return max(central or boxes, key=lambda b: b.area)


def check_image(image: np.ndarray) -> np.ndarray:
    """An ``H x W x 3`` uint8 C-contiguous array, or an ``InputError``."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f"adapters take H x W x 3 uint8 images, got {image.shape} {image.dtype}")
    return np.ascontiguousarray(image)


class ModelAdapter(ABC):
    """Detect, align and embed. Subclasses set ``name``, ``version`` and ``kind``.

    ``kind`` and ``init_options`` let worker processes rebuild an equal adapter with
    ``load_adapter(kind, **init_options)`` (dlib's objects cannot be pickled).
    """

    name: str = "model"
    version: str = "0"
    kind: str = "model"
    channels: str = "RGB"   # colour order of the arrays read_image returns and detect/embed_image take

    @property
    def options(self) -> dict[str, Any]:
        """Settings that change the templates (part of the cache key and of every result)."""
        return {}

    @property
    def init_options(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this adapter through :func:`load_adapter`."""
        return {}

    def describe(self) -> dict[str, Any]:
        """``{"name", "version", "options"}``: what produced the templates."""
        return {"name": self.name, "version": self.version, "options": self.options}

    def read_image(self, path: str | Path) -> np.ndarray:
        """Decode one image file as this model's pipeline does (default: Pillow, RGB).

        Raises ``ValueError(reason)`` for a file that is not a readable image (a failure to
        enrol); ``OSError`` when the file cannot be opened.
        """
        from faceaudit.models.images import read_pillow
        return read_pillow(path)

    @abstractmethod
    def detect(self, image: np.ndarray) -> list[Box]:
        """Face boxes in a uint8 image in ``channels`` order (empty list: no face)."""

    @abstractmethod
    def align(self, image: np.ndarray, box: Box) -> Any:
        """An aligned face (model-specific form) from one box."""

    @abstractmethod
    def embed(self, chip: Any) -> np.ndarray:
        """A 1-d float32 template from an aligned face."""

    def embed_image(self, image: np.ndarray) -> EmbedOutcome:
        """Detect, choose one face (see module docstring), align, embed.

        A missing face or a non-finite template is returned as a failure; a model whose
        output is not one vector per image raises ``InputError`` (no image can enrol).
        """
        image = check_image(image)
        box = choose_face(self.detect(image), image.shape[1], image.shape[0])
        if box is None:
            return EmbedOutcome(None, "no face found")
        vector = np.asarray(self.embed(self.align(image, box)), dtype=np.float32)
        if vector.ndim != 1 or vector.size == 0:
            raise InputError(f"model {self.name} returned an output of shape {vector.shape}, "
                             "expected one vector per image")
        if not np.isfinite(vector).all():
            return EmbedOutcome(None, "model returned NaN or infinite values")
        if not np.any(vector != 0):
            return EmbedOutcome(None, "model returned an all-zero template")
        return EmbedOutcome(vector, None)

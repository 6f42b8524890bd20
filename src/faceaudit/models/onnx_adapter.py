"""Any ONNX face-embedding model the user supplies, run with onnxruntime on the CPU.

* Images are decoded with Pillow (EXIF orientation applied; greyscale, palette, CMYK and
  16-bit converted to 8-bit RGB): this adapter is faceaudit's own generic pipeline, not a
  maker's.
* Detection and landmarks: dlib's HOG detector (``upsample``, one level by default, or
  ``fast_detect`` levels 0..upsample) and 5-point predictor, as the reference adapter.
* Alignment: a similarity transform (rotation, uniform scale, translation), fitted by least
  squares (Umeyama 1991) from the detected points to a canonical 5-point template scaled to
  ``input_size`` pixels, then a bilinear warp with Pillow. dlib's 5 points are the outer and
  inner corner of each eye and the base of the nose; the template (:data:`CANONICAL_112`)
  puts them where the widely used 112x112 ArcFace crop puts the face (eye centres at
  (38.3, 51.7) and (73.5, 51.5), nose near (56, 72)).
* Pre-processing: ``(pixel - mean) / std`` in ``channel_order`` (RGB or BGR), laid out NCHW or
  NHWC, batch of one, float32.
* The model must return one vector per image (first output of shape ``(1, d)`` or ``(d,)``);
  this is checked once when the adapter is built, on a blank input, so a wrong model fails
  at once with one clear line instead of once per image.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from auditcore.errors import InputError
from faceaudit.models.base import FACE_CHOICE, Box, ModelAdapter
from faceaudit.models.dlib_adapter import SHAPE_MODEL, detection_options, hog_detect, import_dlib, model_file

# dlib 5-point order: outer then inner corner of the eye on the image's right (the subject's
# left eye), outer then inner corner of the eye on the image's left, nose base. Positions in a
# 112x112 crop chosen so that the eye centres and nose fall on the ArcFace template's.
CANONICAL_112 = np.array([
    [73.5318 + 9.0, 51.5014],   # image-right eye, outer corner
    [73.5318 - 9.0, 51.5014],   # image-right eye, inner corner
    [38.2946 - 9.0, 51.6963],   # image-left eye, outer corner
    [38.2946 + 9.0, 51.6963],   # image-left eye, inner corner
    [56.0252, 78.0],            # nose base (below the ArcFace nose tip at y = 71.7)
])


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 matrix ``M`` of the least-squares similarity mapping ``src`` points onto ``dst``.

    ``dst ~= M[:, :2] @ src + M[:, 2]`` with ``M[:, :2]`` a scaled rotation (no reflection).
    """
    src, dst = np.asarray(src, float), np.asarray(dst, float)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    cov = b.T @ a / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    rot = u @ np.diag(d) @ vt
    scale = (s * d).sum() / a.var(0).sum()
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]])


def warp(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Apply a 2x3 forward transform to an RGB image; output ``size x size x 3`` uint8."""
    from PIL import Image
    full = np.vstack([matrix, [0, 0, 1]])
    inv = np.linalg.inv(full)[:2].ravel()
    out = Image.fromarray(image).transform((size, size), Image.Transform.AFFINE, tuple(inv),
                                           resample=Image.Resampling.BILINEAR)
    return np.asarray(out)


def vector_output(out: np.ndarray) -> np.ndarray:
    """The one vector in a model output of shape ``(1, d)`` or ``(d,)``, else ``InputError``."""
    out = np.asarray(out)
    if out.ndim == 2 and out.shape[0] == 1 and out.shape[1] > 0:
        return out[0]
    if out.ndim == 1 and out.size > 1:
        return out
    raise InputError(f"ONNX model output has shape {out.shape}; expected one vector per image, (1, d)")


class OnnxAdapter(ModelAdapter):
    """A user-supplied ONNX embedding model behind dlib detection and 5-point alignment."""

    kind = "onnx"

    def __init__(self, *, onnx_path: str | Path | None = None, input_size: int = 112, channel_order: str = "RGB",
                 mean: float = 127.5, std: float = 127.5, layout: str = "NCHW", upsample: int = 1,
                 fast_detect: bool = False) -> None:
        if not onnx_path:
            raise InputError("the onnx model needs --onnx-path")
        path = Path(onnx_path)
        if not path.is_file():
            raise InputError("ONNX model file not found", path)
        channel_order, layout = str(channel_order).upper(), str(layout).upper()
        if channel_order not in ("RGB", "BGR"):
            raise InputError(f"channel order must be RGB or BGR, got {channel_order}")
        if layout not in ("NCHW", "NHWC"):
            raise InputError(f"layout must be NCHW or NHWC, got {layout}")
        if int(upsample) < 0:
            raise InputError(f"upsample must be >= 0 (got {upsample})")
        if int(input_size) < 16 or float(std) == 0:
            raise InputError(f"input size must be >= 16 and std non-zero (got {input_size}, {std})")
        try:
            import onnxruntime as ort
        except ImportError:
            raise InputError("the onnx model needs onnxruntime: pip install 'faceaudit[images]'") from None
        dlib = import_dlib()
        try:
            self._session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - any load failure is one line
            raise InputError(f"cannot load ONNX model ({str(exc).splitlines()[0]})", path) from None
        self.onnx_path = str(path)
        self.name = f"onnx:{path.name}"
        self.version = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        self.input_size, self.channel_order, self.layout = int(input_size), channel_order, layout
        self.mean, self.std, self.upsample = float(mean), float(std), int(upsample)
        self.fast_detect = bool(fast_detect)
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(str(model_file(SHAPE_MODEL)))
        self._input = self._session.get_inputs()[0].name
        self._check_output(path)

    def _check_output(self, path: Path) -> None:
        """Run a blank face through the model: it must give one vector."""
        blank = np.full((self.input_size, self.input_size, 3), 128, np.uint8)
        try:
            out = self._run(blank)
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - shape/type mismatches from onnxruntime
            raise InputError(f"ONNX model rejects a {self.layout} 1x{self.input_size}x{self.input_size}x3 "
                             f"float32 input ({str(exc).splitlines()[0][:200]})", path) from None
        try:
            vector_output(out)
        except InputError as exc:
            raise InputError(exc.problem, path) from None

    @property
    def options(self) -> dict[str, Any]:
        return {"loader": "Pillow (RGB, EXIF orientation)", **detection_options(self.upsample, self.fast_detect),
                "face_choice": FACE_CHOICE, "landmarks": 5, "alignment": "similarity-5pt",
                "input_size": self.input_size, "channel_order": self.channel_order,
                "mean": self.mean, "std": self.std, "layout": self.layout}

    @property
    def init_options(self) -> dict[str, Any]:
        return {"onnx_path": self.onnx_path, "input_size": self.input_size, "channel_order": self.channel_order,
                "mean": self.mean, "std": self.std, "layout": self.layout, "upsample": self.upsample,
                "fast_detect": self.fast_detect}

    def detect(self, image: np.ndarray) -> list[Box]:
        return hog_detect(self._detector, image, self.upsample, self.fast_detect)

    def landmarks(self, image: np.ndarray, box: Box) -> np.ndarray:
        """dlib's 5 points (x, y in pixels) in ``box``, shape (5, 2)."""
        shape = self._shape(image, self._dlib.rectangle(box.left, box.top, box.right, box.bottom))
        return np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], float)

    def align(self, image: np.ndarray, box: Box) -> np.ndarray:
        """``input_size`` square RGB crop, the 5 points mapped onto the canonical template."""
        dst = CANONICAL_112 * (self.input_size / 112.0)
        return warp(image, similarity_transform(self.landmarks(image, box), dst), self.input_size)

    def _run(self, chip: np.ndarray) -> np.ndarray:
        x = chip.astype(np.float32)
        if self.channel_order == "BGR":
            x = x[..., ::-1]
        x = (x - self.mean) / self.std
        x = x[None] if self.layout == "NHWC" else x.transpose(2, 0, 1)[None]
        return np.asarray(self._session.run(None, {self._input: np.ascontiguousarray(x, dtype=np.float32)})[0])

    def embed(self, chip: np.ndarray) -> np.ndarray:
        return vector_output(self._run(chip)).astype(np.float32)

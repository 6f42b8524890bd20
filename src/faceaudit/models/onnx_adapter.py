"""Any ONNX face-embedding model the user supplies, run with onnxruntime on the CPU.

Detection and landmarks are dlib's (HOG + 5 points, as the reference adapter); alignment is a
similarity transform (rotation, uniform scale, translation; least squares, Umeyama 1991) of
the two eye centres and the nose base onto canonical positions of the 112x112 ArcFace
template, scaled to ``input_size``. Pre-processing: ``(pixel - mean) / std`` in
``channel_order`` (RGB or BGR), laid out NCHW or NHWC, batch of one. The model must return
one vector per image (output shape ``(1, d)`` or ``(d,)``); anything else is an error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from faceaudit.errors import InputError
from faceaudit.models.base import Box, ModelAdapter
from faceaudit.models.dlib_adapter import SHAPE_MODEL, model_file

# ArcFace 112x112 canonical positions: left eye centre, right eye centre, nose (base)
CANONICAL_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 75.0]])


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 matrix ``M`` of the least-squares similarity mapping ``src`` points to ``dst``."""
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
    """Apply a 2x3 forward transform to an RGB image, output ``size x size``."""
    from PIL import Image
    full = np.vstack([matrix, [0, 0, 1]])
    inv = np.linalg.inv(full)[:2].ravel()
    out = Image.fromarray(image).transform((size, size), Image.Transform.AFFINE, tuple(inv),
                                           resample=Image.Resampling.BILINEAR)
    return np.asarray(out)


class OnnxAdapter(ModelAdapter):
    def __init__(self, *, onnx_path: str | None = None, input_size: int = 112, channel_order: str = "RGB",
                 mean: float = 127.5, std: float = 127.5, layout: str = "NCHW", upsample: int = 1) -> None:
        if not onnx_path:
            raise InputError("the onnx model needs --onnx-path")
        path = Path(onnx_path)
        if not path.is_file():
            raise InputError("ONNX model file not found", path)
        try:
            import dlib
            import onnxruntime as ort
        except ImportError as exc:
            raise InputError(f"the onnx model needs {exc.name}: pip install 'faceaudit[images]'") from None
        try:
            self._session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - any load failure is one line
            raise InputError(f"cannot load ONNX model ({str(exc).splitlines()[0]})", path) from None
        if channel_order.upper() not in ("RGB", "BGR") or layout.upper() not in ("NCHW", "NHWC"):
            raise InputError("channel order must be RGB or BGR, layout NCHW or NHWC")
        import hashlib
        self.name = f"onnx:{path.name}"
        self.version = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        self.input_size, self.channel_order, self.layout = int(input_size), channel_order.upper(), layout.upper()
        self.mean, self.std, self.upsample = float(mean), float(std), int(upsample)
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(str(model_file(SHAPE_MODEL)))
        self._input = self._session.get_inputs()[0].name

    @property
    def options(self) -> dict:
        return {"input_size": self.input_size, "channel_order": self.channel_order, "mean": self.mean,
                "std": self.std, "layout": self.layout, "upsample": self.upsample}

    def detect(self, image: np.ndarray) -> list:
        for level in range(self.upsample + 1):
            rects = self._detector(image, level)
            if len(rects):
                return [Box(r.left(), r.top(), r.right(), r.bottom()) for r in rects]
        return []

    def align(self, image: np.ndarray, box: Box) -> np.ndarray:
        shape = self._shape(image, self._dlib.rectangle(box.left, box.top, box.right, box.bottom))
        pts = np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], float)
        eyes = sorted([pts[0:2].mean(0), pts[2:4].mean(0)], key=lambda p: p[0])
        src = np.array([eyes[0], eyes[1], pts[4]])
        dst = CANONICAL_112 * (self.input_size / 112.0)
        return warp(image, similarity_transform(src, dst), self.input_size)

    def embed(self, aligned: np.ndarray) -> np.ndarray:
        x = aligned.astype(np.float32)
        if self.channel_order == "BGR":
            x = x[..., ::-1]
        x = (x - self.mean) / self.std
        x = x[None] if self.layout == "NHWC" else x.transpose(2, 0, 1)[None]
        out = np.asarray(self._session.run(None, {self._input: np.ascontiguousarray(x, dtype=np.float32)})[0])
        if out.ndim == 2 and out.shape[0] == 1:
            return out[0]
        if out.ndim == 1 and out.size > 1:
            return out
        raise InputError(f"ONNX model output has shape {out.shape}; expected one vector per image, (1, d)")

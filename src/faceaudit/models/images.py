"""Image loaders: each model reads image files the way its makers' own pipeline does.

A loader takes a file path and returns an ``H x W x 3`` uint8 array in the adapter's colour
order, or raises ``ValueError(reason)`` (the reason goes into ``failures.csv``); ``OSError``
(a file that cannot be opened) propagates and is recorded as "unreadable file".

* :func:`read_pillow`: Pillow, EXIF orientation applied, greyscale/palette/CMYK/16-bit
  converted to 8-bit RGB (the generic ONNX adapter and test doubles; see
  :func:`read_rgb`).
* :func:`read_dlib`: ``dlib.load_rgb_image``, as dlib's Python examples (JPEG, PNG, GIF, BMP,
  DNG, WebP; no EXIF orientation). dlib's loader does not read the Netpbm formats
  (PGM/PPM/PBM, e.g. the ORL faces); those, and only those, are decoded by Pillow. Netpbm
  stores raw pixel values, so any decoder gives the same pixels; a greyscale image is
  replicated into three channels, as dlib's loader does for a greyscale PNG or JPEG.
* :func:`read_opencv`: ``cv2.imread(path, cv2.IMREAD_COLOR)``, BGR, as OpenCV's samples.

JPEG decoders differ: Pillow's and dlib's decoders give pixels that differ by up to 39 grey
levels on LFW (issue 11's measurement; 11-17 on the five images of the tests), enough to move a
dlib template by about 0.01 per component. So a faithful pipeline uses the makers' own loader,
never "any decoder".
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

NETPBM_MAGIC = (b"P1", b"P2", b"P3", b"P4", b"P5", b"P6")


def _header(path: Path) -> bytes:
    """The first bytes of the file (OSError if it cannot be opened); ValueError if empty."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    if not head:
        raise ValueError("empty (zero-byte) file")
    return head


def read_rgb(data: bytes) -> np.ndarray:
    """Decode image bytes to an ``H x W x 3`` uint8 RGB array.

    Greyscale, palette, CMYK and 16-bit images are converted; EXIF orientation is applied.
    Raises ``ValueError`` with the reason (zero-byte, not an image, corrupt) otherwise.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError
    if not data:
        raise ValueError("empty (zero-byte) file")
    try:
        with Image.open(io.BytesIO(data)) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float64)
                im = Image.fromarray(np.uint8(np.clip(arr / max(arr.max(), 1) * 255, 0, 255)))
            return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))
    except UnidentifiedImageError:
        raise ValueError("not an image Pillow can read") from None
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValueError(f"corrupt image ({exc})") from None


def read_pillow(path: str | Path) -> np.ndarray:
    """RGB via Pillow (see :func:`read_rgb`)."""
    return read_rgb(Path(path).read_bytes())


def read_dlib(path: str | Path) -> np.ndarray:
    """RGB via ``dlib.load_rgb_image``; Netpbm files (which dlib cannot read) via Pillow."""
    import dlib
    path = Path(path)
    head = _header(path)
    if head[:2] in NETPBM_MAGIC:
        return read_pillow(path)
    try:
        image = dlib.load_rgb_image(str(path))
    except RuntimeError as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "Unknown image file format" in message:
            raise ValueError("not an image dlib's loader can read") from None
        raise ValueError(f"corrupt image ({message[:200]})") from None
    return np.ascontiguousarray(image, dtype=np.uint8)


def read_opencv(path: str | Path) -> np.ndarray:
    """BGR via ``cv2.imread(path, cv2.IMREAD_COLOR)`` (greyscale replicated, alpha dropped)."""
    import cv2
    path = Path(path)
    _header(path)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("not an image OpenCV can read (unknown format or corrupt)")
    return np.ascontiguousarray(image, dtype=np.uint8)

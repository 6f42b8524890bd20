"""Probe degradations: what a surveillance still does to a clean photo, one operation at a time.

Each degradation is an image operation with a severity scale, applied to a *probe* image in
memory (the original file is never touched, and nothing is written to disk). Every operation
is a plain Pillow/OpenCV/numpy call, listed with its parameters by :meth:`Degradation.record`
so that a results folder says exactly what was done:

=========  ===================  ==========================================================
name       severity             operation
=========  ===================  ==========================================================
size       face width N (px)    shrink the whole image so the face box is N px wide
                                (``cv2.resize``, ``INTER_AREA``), then enlarge it back to its
                                original size (``INTER_LINEAR``): the model sees the image it
                                expects, with the detail of an N-px face. No change when the
                                face is already at most N px wide.
blur       sigma (px)           Gaussian blur, ``cv2.GaussianBlur(ksize=(0, 0), sigma)``,
                                borders reflected (``BORDER_REFLECT_101``)
motion     length L (px)        linear motion blur: ``cv2.filter2D`` with a horizontal line
                                kernel of L ones / L (borders reflected)
jpeg       quality q (1-100)    one JPEG round trip, ``cv2.imencode(".jpg", quality=q)``
                                (libjpeg, 4:2:0 chroma), then ``cv2.imdecode``
noise      sigma (grey levels)  additive Gaussian sensor noise, independent per pixel and
                                channel, rounded and clipped to 0..255; seeded per image
dark       stops (EV)           under-exposure: linear light (gamma 2.2) times 2^-EV,
                                back to gamma 2.2, rounded
grey       1                    grey-scale: ITU-R BT.601 luma (``cv2.cvtColor``), copied
                                into the three channels
eyes       band height (face    an opaque black band across the face box at the eye line
           heights)             (sunglasses), ``severity`` x face-box height tall
mask       covered fraction     an opaque grey (128) band over the lower face: from
           of the face box      ``bottom - severity x height`` to the image bottom, across
                                the face box
=========  ===================  ==========================================================

The face (box and eye line) comes from the model's own detector on the clean image
(:class:`Face`): the degradation is aimed where the model found the face.

Determinism: every operation but ``noise`` is a fixed function of the pixels. ``noise`` draws
from ``numpy.random.default_rng([seed, crc32(image key)])``, so the same seed and image give the
same bytes, whichever process or order they are made in.

Specs (the command line's ``--degrade``): ``size:112,64,32`` = three levels of ``size``;
``grey`` (no severity) = ``grey:1``. :func:`parse_specs` checks names and ranges.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from auditcore.errors import InputError

# name -> (what the severity means, unit, lowest allowed, highest allowed, worse when the severity is "lower"/"higher")
KINDS: dict[str, dict[str, Any]] = {
    "size": {"severity": "face width", "unit": "px", "min": 2, "max": 4096, "worse": "lower", "integer": True},
    "blur": {"severity": "Gaussian sigma", "unit": "px", "min": 0.1, "max": 100, "worse": "higher", "integer": False},
    "motion": {"severity": "motion blur length", "unit": "px", "min": 2, "max": 200, "worse": "higher", "integer": True},
    "jpeg": {"severity": "JPEG quality", "unit": "", "min": 1, "max": 100, "worse": "lower", "integer": True},
    "noise": {"severity": "noise sigma", "unit": "grey levels", "min": 0.1, "max": 255, "worse": "higher",
              "integer": False},
    "dark": {"severity": "under-exposure", "unit": "stops", "min": 0.1, "max": 10, "worse": "higher", "integer": False},
    "grey": {"severity": "grey-scale", "unit": "", "min": 1, "max": 1, "worse": "higher", "integer": True},
    "eyes": {"severity": "band height", "unit": "face heights", "min": 0.01, "max": 1, "worse": "higher",
             "integer": False},
    "mask": {"severity": "covered fraction", "unit": "of the face height", "min": 0.01, "max": 1, "worse": "higher",
             "integer": False},
}
GAMMA = 2.2
EYE_FILL = 0
MASK_FILL = 128
EYE_LINE_FALLBACK = 0.4  # fraction of the box height from its top, when the detector gives no eye landmarks


@dataclass(frozen=True)
class Face:
    """Where the face is in the clean image: its box (pixels) and the eye line's y.

    ``eye_source`` says how the eye line was found: ``"landmarks"`` (the detector's eye
    points) or ``"box"`` (``top + 0.4 x height``, when it gives none).
    """

    left: float
    top: float
    width: float
    height: float
    eye_y: float
    eye_source: str = "box"

    @classmethod
    def from_box(cls, left: float, top: float, right: float, bottom: float, eye_y: float | None = None) -> Face:
        h = bottom - top
        if eye_y is None:
            return cls(left, top, right - left, h, top + EYE_LINE_FALLBACK * h, "box")
        return cls(left, top, right - left, h, float(eye_y), "landmarks")


@dataclass(frozen=True)
class Degradation:
    """One level: an operation (``kind``) at one ``severity``; ``seed`` for the noise."""

    kind: str
    severity: float
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"unknown degradation '{self.kind}' (choose from {', '.join(KINDS)})")
        spec = KINDS[self.kind]
        sev = float(self.severity)
        if not np.isfinite(sev) or not spec["min"] <= sev <= spec["max"]:
            raise InputError(f"{self.kind}: severity {self.severity} outside {spec['min']}..{spec['max']} "
                             f"({spec['severity']}{', ' + spec['unit'] if spec['unit'] else ''})")
        if spec["integer"] and sev != int(sev):
            raise InputError(f"{self.kind}: severity must be a whole number, got {self.severity}")

    @property
    def label(self) -> str:
        return f"{self.kind}:{_fmt(self.severity)}"

    def record(self) -> dict:
        """The exact operation and parameters, JSON-ready (goes into the results' provenance)."""
        spec = KINDS[self.kind]
        base = {"degradation": self.kind, "severity": _num(self.severity), "severity_means": spec["severity"],
                "unit": spec["unit"], "worse_when": spec["worse"]}
        ops = {
            "size": {"operation": "cv2.resize to scale N / face-box width (INTER_AREA), then cv2.resize back to "
                                  "the original size (INTER_LINEAR); unchanged when the face is at most N px wide",
                     "face_width": "width of the model's own face box on the clean image"},
            "blur": {"operation": "cv2.GaussianBlur(ksize=(0, 0), sigmaX=sigmaY=severity, BORDER_REFLECT_101)"},
            "motion": {"operation": "cv2.filter2D with a 1 x L kernel of 1/L (horizontal), BORDER_REFLECT_101"},
            "jpeg": {"operation": "cv2.imencode('.jpg', IMWRITE_JPEG_QUALITY=q) then cv2.imdecode (libjpeg, 4:2:0)"},
            "noise": {"operation": "pixel + N(0, sigma^2) per pixel and channel, rounded half to even, clipped 0..255",
                      "rng": "numpy.random.default_rng([seed, zlib.crc32(image key)]).standard_normal",
                      "seed": self.seed},
            "dark": {"operation": f"255 * ((x/255)^{GAMMA} * 2^-EV)^(1/{GAMMA}), rounded half to even"},
            "grey": {"operation": "cv2.cvtColor to grey (ITU-R BT.601: 0.299 R + 0.587 G + 0.114 B), "
                                  "copied into three channels"},
            "eyes": {"operation": f"pixels set to {EYE_FILL} in rows eye_y +- severity*height/2, across the face box",
                     "eye_line": "the detector's eye landmarks, else top + 0.4 x box height"},
            "mask": {"operation": f"pixels set to {MASK_FILL} from bottom - severity*height to the image bottom, "
                                  "across the face box"},
        }
        return {**base, **ops[self.kind]}

    def apply(self, image: np.ndarray, face: Face | None = None, *, channels: str = "RGB",
              key: str = "") -> np.ndarray:
        """The degraded copy of ``image`` (``H x W x 3`` uint8 in ``channels`` order).

        ``face``: needed by ``size``, ``eyes`` and ``mask``; ``key``: the image's name, for
        the noise's seed. The input array is not modified.
        """
        image = _check(image)
        sev = float(self.severity)
        if self.kind in ("size", "eyes", "mask") and face is None:
            raise InputError(f"{self.kind} needs the face's position (found on the clean image)")
        if self.kind == "size":
            return resize_face(image, face.width, int(sev))
        if self.kind == "blur":
            return gaussian_blur(image, sev)
        if self.kind == "motion":
            return motion_blur(image, int(sev))
        if self.kind == "jpeg":
            return jpeg(image, int(sev), channels=channels)
        if self.kind == "noise":
            return sensor_noise(image, sev, rng_for(self.seed, key))
        if self.kind == "dark":
            return under_expose(image, sev)
        if self.kind == "grey":
            return grey(image, channels=channels)
        if self.kind == "eyes":
            return band(image, face, face.eye_y - sev * face.height / 2, face.eye_y + sev * face.height / 2, EYE_FILL)
        return band(image, face, face.top + face.height * (1 - sev), image.shape[0], MASK_FILL)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x) == int(x) else f"{x:g}"


def _num(x: float) -> int | float:
    return int(x) if float(x) == int(x) else float(x)


def _check(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f"degradations take H x W x 3 uint8 images, got {image.shape} {image.dtype}")
    return image


def rng_for(seed: int, key: str) -> np.random.Generator:
    """The noise generator of one image: the same (seed, key) gives the same draws anywhere."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(key.encode("utf-8"))])


# ------------------------------------------------------------------ the operations
def shrink(image: np.ndarray, face_width: float, target: int) -> np.ndarray:
    """The image shrunk so that a face ``face_width`` px wide becomes ``target`` px wide
    (``INTER_AREA``); the image itself when the face is already at most ``target`` px."""
    import cv2
    if face_width <= target:
        return image.copy()
    scale = target / float(face_width)
    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def resize_face(image: np.ndarray, face_width: float, target: int) -> np.ndarray:
    """:func:`shrink`, then back to the original size (``INTER_LINEAR``)."""
    import cv2
    small = shrink(image, face_width, target)
    if small.shape == image.shape:
        return small
    return cv2.resize(small, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    import cv2
    return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)


def motion_kernel(length: int) -> np.ndarray:
    """A ``1 x length`` kernel of ``1/length``: horizontal linear motion."""
    return np.full((1, int(length)), 1.0 / int(length), np.float32)


def motion_blur(image: np.ndarray, length: int) -> np.ndarray:
    import cv2
    return cv2.filter2D(image, -1, motion_kernel(length), borderType=cv2.BORDER_REFLECT_101)


def jpeg_bytes(image: np.ndarray, quality: int, *, channels: str = "RGB") -> bytes:
    """The JPEG file OpenCV writes at ``quality`` (its size is what a compressed still weighs)."""
    import cv2
    bgr = image[:, :, ::-1] if channels == "RGB" else image
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(bgr), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise InputError("OpenCV could not encode a JPEG")
    return buf.tobytes()


def jpeg(image: np.ndarray, quality: int, *, channels: str = "RGB") -> np.ndarray:
    import cv2
    data = jpeg_bytes(image, quality, channels=channels)
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return np.ascontiguousarray(bgr[:, :, ::-1] if channels == "RGB" else bgr)


def sensor_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    noisy = image.astype(np.float64) + sigma * rng.standard_normal(image.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def under_expose(image: np.ndarray, stops: float) -> np.ndarray:
    """Fewer photons: linear light scaled by ``2^-stops`` (a 256-entry table)."""
    levels = np.arange(256, dtype=np.float64) / 255.0
    table = np.rint(255.0 * (levels ** GAMMA * 2.0 ** (-stops)) ** (1.0 / GAMMA)).astype(np.uint8)
    return table[image]


def grey(image: np.ndarray, *, channels: str = "RGB") -> np.ndarray:
    import cv2
    code = cv2.COLOR_RGB2GRAY if channels == "RGB" else cv2.COLOR_BGR2GRAY
    g = cv2.cvtColor(np.ascontiguousarray(image), code)
    return np.repeat(g[:, :, None], 3, axis=2)


def band_rows(image_height: int, y0: float, y1: float) -> tuple[int, int]:
    """Rows ``[r0, r1)`` covered by a band from ``y0`` to ``y1`` (pixel ``r`` spans ``[r, r+1)``;
    covered when its centre ``r + 0.5`` lies in the band), clipped to the image."""
    r0 = int(np.clip(np.ceil(y0 - 0.5), 0, image_height))
    r1 = int(np.clip(np.ceil(y1 - 0.5), 0, image_height))
    return r0, max(r0, r1)


def band(image: np.ndarray, face: Face, y0: float, y1: float, fill: int) -> np.ndarray:
    """A copy with an opaque band of ``fill`` over rows ``y0..y1`` and the face box's columns."""
    out = image.copy()
    r0, r1 = band_rows(image.shape[0], y0, y1)
    c0, c1 = band_rows(image.shape[1], face.left, face.left + face.width)
    out[r0:r1, c0:c1] = fill
    return out


# ------------------------------------------------------------------ specs
def parse_spec(text: str, seed: int = 0) -> list[Degradation]:
    """``"size:112,64,32"`` -> three :class:`Degradation` levels; ``"grey"`` -> ``grey:1``."""
    text = str(text).strip()
    name, _, values = text.partition(":")
    name = name.strip().lower()
    if name not in KINDS:
        raise InputError(f"--degrade {text!r}: unknown degradation '{name}' (choose from {', '.join(KINDS)})")
    if not values.strip():
        if name == "grey":
            return [Degradation("grey", 1, seed)]
        raise InputError(f"--degrade {text!r}: give severities, e.g. {name}:{_example(name)}")
    out = []
    for part in values.split(","):
        part = part.strip()
        try:
            value = float(part)
        except ValueError:
            raise InputError(f"--degrade {text!r}: '{part}' is not a number") from None
        try:
            out.append(Degradation(name, value, seed))
        except InputError as exc:
            raise InputError(f"--degrade {text!r}: {exc.problem}") from None
    if len({d.severity for d in out}) != len(out):
        raise InputError(f"--degrade {text!r}: a severity is listed twice")
    return out


def _example(name: str) -> str:
    return {"size": "64,32,16", "blur": "1,2,4", "motion": "5,9,15", "jpeg": "50,20,10", "noise": "5,10,20",
            "dark": "1,2,3", "eyes": "0.2,0.3", "mask": "0.4,0.6"}.get(name, "1")


def parse_specs(texts, seed: int = 0) -> list[Degradation]:
    """Every level of every ``--degrade`` spec, in the order given; a level listed twice is refused."""
    levels: list[Degradation] = []
    for text in texts:
        levels.extend(parse_spec(text, seed))
    labels = [d.label for d in levels]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise InputError(f"--degrade: level {dup[0]} listed twice")
    if not levels:
        raise InputError("--degrade: no degradation given (e.g. --degrade size:64,32,16)")
    return levels


# ------------------------------------------------------------------ the model's face on the clean image
def face_of(adapter, image: np.ndarray):
    """``(box, Face)`` of the face the model would embed in a clean image, or ``(None, None)``.

    The eye line is the mean y of the detector's eye landmarks where the detection carries
    them (YuNet: right and left eye centres), or dlib's 5-point eye corners, else
    ``top + 0.4 x height``.
    """
    from faceaudit.models.base import choose_face
    box = choose_face(adapter.detect(image), image.shape[1], image.shape[0])
    if box is None:
        return None, None
    eye_y = None
    if box.detection is not None and len(box.detection) >= 8:  # YuNet: x, y, w, h, re_x, re_y, le_x, le_y, ...
        eye_y = (box.detection[5] + box.detection[7]) / 2.0
    return box, Face.from_box(box.left, box.top, box.right, box.bottom, eye_y)


def _eye_line_from_chip(chip, face: Face) -> Face:
    """dlib's chip is ``(image, full_object_detection)``: eye corners are parts 0-3."""
    shape = chip[1] if isinstance(chip, tuple) and len(chip) == 2 else None
    if face.eye_source == "landmarks" or shape is None or not hasattr(shape, "part"):
        return face
    try:
        ys = [shape.part(i).y for i in range(4)]
    except (IndexError, RuntimeError, AttributeError):
        return face
    return Face(face.left, face.top, face.width, face.height, float(np.mean(ys)), "landmarks")


def embed_with_face(adapter, image: np.ndarray):
    """The clean pass: ``(template | None, failure | None, Face | None)``, the same template as
    ``adapter.embed_image`` (detect, choose, align, embed), plus where the face is."""
    from faceaudit.models.base import EmbedOutcome, check_image
    image = check_image(image)
    box, face = face_of(adapter, image)
    if box is None:
        return None, "no face found", None
    chip = adapter.align(image, box)
    face = _eye_line_from_chip(chip, face)
    vector = np.asarray(adapter.embed(chip), dtype=np.float32)
    if vector.ndim != 1 or vector.size == 0:
        raise InputError(f"model {adapter.name} returned an output of shape {vector.shape}, "
                         "expected one vector per image")
    outcome = EmbedOutcome(vector, None)
    if not np.isfinite(vector).all():
        outcome = EmbedOutcome(None, "model returned NaN or infinite values")
    elif not np.any(vector != 0):
        outcome = EmbedOutcome(None, "model returned an all-zero template")
    return outcome.template, outcome.failure, face


# ------------------------------------------------------------------ the study's two passes, in worker processes
def _read(adapter, path) -> tuple[np.ndarray | None, str | None]:
    try:
        return adapter.read_image(path), None
    except OSError as exc:
        return None, f"unreadable file ({exc.strerror or exc})"
    except ValueError as exc:
        return None, str(exc)


def _guarded(call):
    try:
        return call()
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - one image's model error must not stop the run
        text = str(exc).splitlines()[0][:200] if str(exc) else ""
        return None, f"model error ({type(exc).__name__}: {text})"


def clean_image(adapter, path) -> tuple[np.ndarray | None, str | None, Face | None]:
    """One clean image: ``(template, failure, face)`` (see :func:`embed_with_face`)."""
    image, failure = _read(adapter, path)
    if image is None:
        return None, failure, None
    out = _guarded(lambda: embed_with_face(adapter, image))
    return out if len(out) == 3 else (out[0], out[1], None)


def degraded_probe(adapter, path, face: Face | None, levels, key: str) -> list[tuple[np.ndarray | None, str | None]]:
    """One probe at every level: ``[(template, failure), ...]`` in the order of ``levels``.

    The file is read once with the model's loader, each level degrades a fresh copy in memory
    and runs the model's whole pipeline on it (detection included: a face the detector no
    longer finds is a failure to enrol at that level)."""
    image, failure = _read(adapter, path)
    if image is None:
        return [(None, failure)] * len(levels)
    out = []
    for level in levels:
        if face is None and level.kind in ("size", "eyes", "mask"):
            out.append((None, "no face found in the clean image"))
            continue
        degraded = level.apply(image, face, channels=adapter.channels, key=key)
        out.append(_guarded(lambda d=degraded: tuple(adapter.embed_image(d))))
    return out


_WORKER: dict[str, Any] = {}


def _init_worker(kind: str, options: dict, levels) -> None:
    from faceaudit.models.registry import load_adapter
    _WORKER["adapter"] = load_adapter(kind, **options)
    _WORKER["levels"] = levels


def _clean_job(job):
    index, path = job
    return (index, *clean_image(_WORKER["adapter"], path))


def _probe_job(job):
    index, path, face, key = job
    return index, degraded_probe(_WORKER["adapter"], path, face, _WORKER["levels"], key)


def run_jobs(adapter, jobs: list, which: str, levels, workers: int, record) -> None:
    """Run ``clean`` jobs ``(index, path)`` or ``probe`` jobs ``(index, path, face, key)`` in this
    process or in ``workers`` spawned processes (dlib and OpenCV are not fork-safe), calling
    ``record(*result)`` as each finishes."""
    if workers <= 1 or len(jobs) < 2 * workers:
        for job in jobs:
            if which == "clean":
                record(job[0], *clean_image(adapter, job[1]))
            else:
                record(job[0], degraded_probe(adapter, job[1], job[2], levels, job[3]))
        return
    import multiprocessing as mp
    ctx = mp.get_context("spawn")
    func = _clean_job if which == "clean" else _probe_job
    with ctx.Pool(workers, initializer=_init_worker, initargs=(adapter.kind, adapter.init_options, levels)) as pool:
        for result in pool.imap_unordered(func, jobs, chunksize=4):
            record(*result)

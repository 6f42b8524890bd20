"""Labeled Faces in the Wild: folder layout and the View 2 ``pairs.txt`` protocol.

``images/<Name>/<Name>_NNNN.jpg`` (13,233 images of 5,749 people). ``pairs.txt``: first line
``10\\t300``, then 10 folds of 300 matched pairs (``name n1 n2``) and 300 mismatched pairs
(``name1 n1 name2 n2``); image numbers are 1-based, zero-padded to 4 digits in file names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceaudit.errors import InputError


def image_name(person: str, number: int) -> str:
    """``Name/Name_0001.jpg`` (the template_id faceaudit embed gives LFW images)."""
    return f"{person}/{person}_{int(number):04d}.jpg"


def list_images(images_dir: str | Path) -> list[tuple[str, str]]:
    """(relative path, person) for every image, sorted."""
    root = Path(images_dir)
    if not root.is_dir():
        raise InputError("LFW images folder not found", root)
    return [(p.relative_to(root).as_posix(), p.parent.name) for p in sorted(root.glob("*/*.jpg"))]


@dataclass(frozen=True)
class Pairs:
    """``left``/``right``: image names; ``same``: matched pair; ``fold``: 0..9."""

    left: np.ndarray
    right: np.ndarray
    same: np.ndarray
    fold: np.ndarray


def read_pairs(path: str | Path) -> Pairs:
    path = Path(path)
    if not path.exists():
        raise InputError("pairs file not found", path)
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    try:
        n_folds, per = int(lines[0][0]), int(lines[0][1])
    except (IndexError, ValueError):
        raise InputError("first line must be '<folds> <pairs per class>'", path) from None
    rows = lines[1:]
    if len(rows) != n_folds * 2 * per:
        raise InputError(f"expected {n_folds * 2 * per} pairs, found {len(rows)}", path)
    left, right, same = [], [], []
    for i, parts in enumerate(rows):
        if not all(x.isdigit() for x in parts[1:len(parts) - 1:2] + parts[-1:]):
            raise InputError(f"line {i + 2}: image numbers must be whole numbers ({' '.join(parts)})", path)
        if len(parts) == 3:
            left.append(image_name(parts[0], parts[1]))
            right.append(image_name(parts[0], parts[2]))
            same.append(True)
        elif len(parts) == 4:
            left.append(image_name(parts[0], parts[1]))
            right.append(image_name(parts[2], parts[3]))
            same.append(False)
        else:
            raise InputError(f"line {i + 2}: expected 3 or 4 fields, got {len(parts)}", path)
    fold = np.repeat(np.arange(n_folds), 2 * per)
    return Pairs(np.array(left), np.array(right), np.array(same), fold)


def pair_distances(pairs: Pairs, templates: np.ndarray, template_ids) -> np.ndarray:
    """Euclidean distance of each pair; NaN where an image has no template (failure to enrol)."""
    index = {t: i for i, t in enumerate(template_ids)}
    li = np.array([index.get(t, -1) for t in pairs.left])
    ri = np.array([index.get(t, -1) for t in pairs.right])
    ok = (li >= 0) & (ri >= 0)
    dist = np.full(li.size, np.nan)
    x = np.asarray(templates, dtype=np.float64)
    dist[ok] = np.linalg.norm(x[li[ok]] - x[ri[ok]], axis=1)
    return dist


def accuracy_at(distance: np.ndarray, same: np.ndarray, threshold: float) -> float:
    """Share of pairs classified right by dlib's rule "same person if distance < threshold".

    In faceaudit's convention (score = -distance, match if score >= T) this is T = -threshold
    with the tie at exactly ``threshold`` going to "different". A pair with a missing template
    (NaN distance) counts as wrong.
    """
    distance, same = np.asarray(distance, float), np.asarray(same, bool)
    predicted = distance < threshold
    return float(np.mean(np.where(np.isnan(distance), False, predicted == same)))


def best_threshold(distance: np.ndarray, same: np.ndarray) -> float:
    """The distance threshold maximising :func:`accuracy_at` on these pairs.

    Candidates: midpoints between neighbouring distinct distances, and just below the
    smallest / above the largest; on ties, the lowest candidate wins.
    """
    distance, same = np.asarray(distance, float), np.asarray(same, bool)
    ok = np.isfinite(distance)
    d = np.unique(distance[ok])
    if d.size == 0:
        raise ValueError("no pair has two templates")
    candidates = np.concatenate([[d[0] - 1e-6], (d[:-1] + d[1:]) / 2, [d[-1] + 1e-6]])
    pos, neg = np.sort(distance[ok & same]), np.sort(distance[ok & ~same])
    right = np.searchsorted(pos, candidates, "left") + (neg.size - np.searchsorted(neg, candidates, "left"))
    return float(candidates[int(np.argmax(right))])


def ten_fold_accuracy(distance: np.ndarray, same: np.ndarray, fold: np.ndarray, *,
                      fixed_threshold: float | None = None, exclude_missing: bool = False) -> dict:
    """Per-fold accuracy, mean and sample std (ddof 1) over the folds.

    ``fixed_threshold``: dlib's rule at that distance (0.6 for dlib's model); None: each fold's
    threshold is the one maximising accuracy on the other nine folds (the standard protocol).
    ``exclude_missing``: drop pairs with a missing template instead of counting them wrong.
    """
    distance, same, fold = np.asarray(distance, float), np.asarray(same, bool), np.asarray(fold)
    if exclude_missing:
        keep = np.isfinite(distance)
        distance, same, fold = distance[keep], same[keep], fold[keep]
    accs, thresholds = [], []
    for f in np.unique(fold):
        test = fold == f
        t = fixed_threshold if fixed_threshold is not None else best_threshold(distance[~test], same[~test])
        thresholds.append(float(t))
        accs.append(accuracy_at(distance[test], same[test], t))
    accs = np.array(accs)
    return {"per_fold": accs.tolist(), "mean": float(accs.mean()), "std": float(accs.std(ddof=1)),
            "thresholds": thresholds, "pairs": int(distance.size)}

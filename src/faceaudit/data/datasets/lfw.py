"""Labeled Faces in the Wild: folder layout and the View 2 ``pairs.txt`` protocol.

``images/<Name>/<Name>_NNNN.jpg`` (13,233 images of 5,749 people). ``pairs.txt``: first line
``10\\t300``, then 10 folds of 300 matched pairs (``name n1 n2``) and 300 mismatched pairs
(``name1 n1 name2 n2``); image numbers are 1-based, zero-padded to 4 digits in file names.

The 10-fold evaluation on any templates is in :mod:`faceaudit.benchmarks.lfw`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from auditcore.errors import InputError
from faceaudit.data.reading import shown


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
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError("pairs file is not UTF-8 text", path) from None
    lines = [line.split() for line in text.splitlines() if line.strip()]
    try:
        n_folds, per = int(lines[0][0]), int(lines[0][1])
    except (IndexError, ValueError):
        raise InputError("first line must be '<folds> <pairs per class>'", path) from None
    if n_folds < 1 or per < 1:
        raise InputError(f"first line must be '<folds> <pairs per class>', two positive numbers, got {n_folds} {per}",
                         path)
    rows = lines[1:]
    if len(rows) != n_folds * 2 * per:
        raise InputError(f"expected {n_folds * 2 * per} pairs, found {len(rows)}", path)
    left, right, same = [], [], []
    for i, parts in enumerate(rows):
        if not all(x.isdecimal() for x in parts[1:len(parts) - 1:2] + parts[-1:]):
            raise InputError(f"line {i + 2}: image numbers must be whole numbers ({shown(' '.join(parts))})", path)
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

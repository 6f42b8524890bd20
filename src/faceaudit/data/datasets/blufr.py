"""The BLUFR benchmark protocol on LFW (Liao, Lei, Yi and Li, IJCB 2014): the loader.

``blufr_lfw_config.mat``: ``imageList`` (13,233 file names, no folders), ``labels`` (class
1..5,749) and 10-trial cell arrays ``testIndex``, ``galIndex`` (1,000 gallery images each) and
``probIndex``. Indices are 1-based in the file and 0-based here; the gallery and probe orders
of the file are kept (BLUFR's evaluation breaks score ties by gallery order).

The evaluation itself (BLUFR's rule, and faceaudit's beside it) is in
:mod:`faceaudit.benchmarks.blufr`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from auditcore.errors import InputError


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

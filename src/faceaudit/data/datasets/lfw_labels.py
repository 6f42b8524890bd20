"""Demographic labels for LFW images, keyed by ``Name/Name_NNNN.jpg`` (faceaudit's template id).

* ``gender`` from the hand-checked lists of Afifi and Abdelhamed (2017),
  ``gender_male_names.txt`` / ``gender_female_names.txt``; an image in both is "ambiguous",
  in neither "unknown".
* ``race`` and ``age`` from ``lfw_attributes_73.mat``, binarised outputs of the attribute
  classifiers of Kumar et al. (ICCV 2009): race from Asian / White / Black / Indian (none set:
  "unknown", several: "ambiguous"); age from Baby / Child / Youth / Middle_Aged / Senior
  (same rule). These are classifier outputs, not self-reported identity: :data:`CAVEATS`
  must be printed next to every figure derived from them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from auditcore.errors import InputError

RACE_COLUMNS = ("Asian", "White", "Black", "Indian")
AGE_COLUMNS = ("Baby", "Child", "Youth", "Middle_Aged", "Senior")
CLASSIFIER_CAVEAT = ("classifier output, not self-reported (binarised Kumar et al. 2009 attribute "
                     "classifiers, LFWA+ release)")
CAVEATS = {"race": CLASSIFIER_CAVEAT, "age": CLASSIFIER_CAVEAT,
           "gender": "hand-checked labels of perceived gender (Afifi and Abdelhamed 2017), not self-reported"}


def _image_id(file_name: str) -> str:
    name = file_name.strip().replace("\\", "/").split("/")[-1]
    return f"{name.rsplit('_', 1)[0]}/{name}"


def load_gender(lfw_dir: str | Path) -> pd.Series:
    """Gender label per image id ("male", "female", "ambiguous")."""
    lfw_dir = Path(lfw_dir)
    labels: dict[str, str] = {}
    for gender in ("male", "female"):
        path = lfw_dir / f"gender_{gender}_names.txt"
        if not path.exists():
            raise InputError("gender list not found", path)
        for line in path.read_text().splitlines():
            if line.strip():
                key = _image_id(line)
                labels[key] = "ambiguous" if key in labels and labels[key] != gender else gender
    return pd.Series(labels, name="gender")


def _one_of(table: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    count = table.sum(axis=1)
    chosen = np.array(names, dtype=object)[table.argmax(axis=1)]
    return np.where(count == 0, "unknown", np.where(count > 1, "ambiguous", chosen)).astype(object)


def load_attributes(lfw_dir: str | Path) -> pd.DataFrame:
    """``race`` and ``age`` per image id from the binarised attribute file."""
    from scipy.io import loadmat
    path = Path(lfw_dir) / "lfw_attributes_73.mat"
    if not path.exists():
        raise InputError("attribute file not found", path)
    mat = loadmat(path)
    names = [str(np.asarray(a).ravel()[0]) for a in mat["AttrName"].ravel()]
    label = np.asarray(mat["label"]) > 0
    col = {n: i for i, n in enumerate(names)}
    ids = [_image_id(str(np.asarray(n).ravel()[0])) for n in mat["name"].ravel()]
    race = _one_of(label[:, [col[c] for c in RACE_COLUMNS]], tuple(c.lower() for c in RACE_COLUMNS))
    age = _one_of(label[:, [col[c] for c in AGE_COLUMNS]], tuple(c.lower() for c in AGE_COLUMNS))
    return pd.DataFrame({"race": race, "age": age}, index=pd.Index(ids, name="template_id"))


def lfw_labels(lfw_dir: str | Path) -> pd.DataFrame:
    """All labels, one row per image id that has any (missing values "unknown")."""
    gender = load_gender(lfw_dir)
    attrs = load_attributes(lfw_dir)
    table = attrs.join(gender, how="outer")
    return table.fillna("unknown")


def merge_into_manifest(manifest: pd.DataFrame, lfw_dir: str | Path) -> pd.DataFrame:
    """The manifest with ``gender``, ``race`` and ``age`` columns ("unknown" where unlabelled)
    and ``caveat_<column>`` columns holding :data:`CAVEATS`, which
    :func:`faceaudit.analyses.demographics.add_demographics` prints beside every figure from that column
    (they survive a CSV round trip, so ``faceaudit audit --group-by race`` keeps them)."""
    labels = lfw_labels(lfw_dir)
    merged = manifest.join(labels, on="template_id")
    for c in ("gender", "race", "age"):
        merged[c] = merged[c].fillna("unknown")
        merged[f"caveat_{c}"] = CAVEATS[c]
    return merged

"""Templates keyed by LFW image name, from any system.

A benchmark needs to find the template of each image a protocol names. Any evaluation set
works whose ``template_id`` values are LFW image names: ``Name/Name_NNNN.jpg`` (what
``faceaudit embed`` writes for the LFW images folder), a longer path ending in it
(``lfw/images/Name/Name_NNNN.jpg``), or the bare file name ``Name_NNNN.jpg`` (BLUFR's
``imageList`` style); the ``.jpg`` may be left out. Ids that are not LFW names are ignored and
counted (a set may hold other templates too); two ids naming the same image are refused.

An image the protocol needs but that has no template is *missing*. It is a failure to enrol
when the evaluation set's ``failures.csv`` lists it, otherwise simply absent; both are treated
alike by the benchmarks (see their modules) and counted apart in the results.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from auditcore.errors import InputError

_NAME = re.compile(r"^(?P<person>.+)_(?P<number>\d{4})(?:\.jpg)?$", re.IGNORECASE)


def lfw_key(template_id: str) -> str | None:
    """``Name/Name_NNNN.jpg`` for an id naming an LFW image, else None.

    >>> lfw_key("lfw/images/Aaron_Peirsol/Aaron_Peirsol_0002.jpg"), lfw_key("Aaron_Peirsol_0002")
    ('Aaron_Peirsol/Aaron_Peirsol_0002.jpg', 'Aaron_Peirsol/Aaron_Peirsol_0002.jpg')
    >>> lfw_key("t000001") is None
    True
    """
    name = str(template_id).replace("\\", "/").rsplit("/", 1)[-1]
    m = _NAME.match(name)
    if m is None:
        return None
    return f"{m['person']}/{m['person']}_{m['number']}.jpg"


@dataclass(frozen=True)
class LfwTemplates:
    """Templates (float64, one row per LFW image that has one) and their LFW names."""

    templates: np.ndarray
    names: np.ndarray
    failed: frozenset = field(default_factory=frozenset)
    ignored_ids: int = 0
    source: str = "in-memory"

    def rows(self, names) -> np.ndarray:
        """Row of each name's template, -1 where the image has none."""
        index = pd.Index(self.names)
        return index.get_indexer(pd.Index(np.asarray(names, dtype=object)))

    def missing_report(self, names) -> dict:
        """How many of ``names`` have no template, split into failures to enrol and absent."""
        names = np.unique(np.asarray(names, dtype=object))
        missing = names[self.rows(names) < 0]
        failed = int(sum(n in self.failed for n in missing))
        return {"images": int(names.size), "missing": int(missing.size), "failed_to_enrol": failed,
                "absent": int(missing.size) - failed, "examples": [str(n) for n in missing[:5]]}


def from_arrays(templates: np.ndarray, template_ids, *, failed_ids=(), source: str = "in-memory") -> LfwTemplates:
    """Index ``templates`` (n x d) by the LFW names of ``template_ids`` (see module docstring)."""
    keys = [lfw_key(t) for t in template_ids]
    keep = np.array([k is not None for k in keys], dtype=bool)
    if not keep.any():
        example = str(template_ids[0]) if len(template_ids) else "none"
        raise InputError(f"no template_id names an LFW image (Name/Name_NNNN.jpg), e.g. '{example}'", source)
    names = np.array([k for k in keys if k is not None], dtype=object)
    uniq, counts = np.unique(names, return_counts=True)
    if (counts > 1).any():
        raise InputError(f"two template_ids name the same LFW image {uniq[counts > 1][0]}", source)
    failed = frozenset(k for k in (lfw_key(t) for t in failed_ids) if k is not None)
    return LfwTemplates(np.asarray(templates, dtype=np.float64)[keep], names, failed,
                        int((~keep).sum()), source)


def load(templates: str | Path | None = None, manifest: str | Path | None = None,
         evalset: str | Path | None = None, failures: str | Path | None = None) -> LfwTemplates:
    """From ``--templates/--manifest`` or an ``--evalset`` folder (templates.npy, manifest.csv,
    failures.csv). The templates are validated as for an audit (no NaN, inf or all-zero rows)."""
    from faceaudit.data.evalset import load_evaluation_set, resolve_evalset_paths
    templates, manifest, failures = resolve_evalset_paths(evalset, templates, manifest, failures)
    es = load_evaluation_set(templates, manifest)
    failed_ids: list = []
    if failures is not None:
        failed_ids = _failed_ids(Path(failures))
    return from_arrays(es.templates, es.template_ids, failed_ids=failed_ids, source=str(manifest))


def _failed_ids(path: Path) -> list:
    if not path.exists():
        raise InputError("failures file not found", path)
    try:
        table = pd.read_csv(path, dtype=str)
    except pd.errors.EmptyDataError:
        return []
    for column in ("template_id", "image"):
        if column in table.columns:
            return table[column].dropna().tolist()
    raise InputError("failures file needs a template_id or image column", path)

"""Search protocols: which templates form the gallery and which are mated / non-mated probes.

A *mated* probe's subject is enrolled in the gallery; a *non-mated* probe's subject is not
(ISO/IEC 19795-1). A probe template is never also a gallery template, so no probe is ever
searched against itself.

Two ways to get one:

* :func:`generate_protocol`: seeded; enrols a fraction of the subjects that have more templates
  than ``gallery_per_subject`` (so every enrolled subject leaves at least one mated probe), with
  ``gallery_per_subject`` randomly chosen templates each; their other templates are mated probes;
  every template of a subject not enrolled is a non-mated probe.
* :func:`load_protocol`: a CSV/Parquet file with columns ``template_id`` and ``role``
  (``gallery`` or ``probe``); templates not listed are not used. Whether a probe is mated is
  derived from whether its subject has a gallery template.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from auditcore.errors import InputError
from faceaudit.data.evalset import EvaluationSet, release_freed_memory
from faceaudit.data.reading import read_parquet, reason, shown


@dataclass(frozen=True)
class Protocol:
    """Row indices into an :class:`EvaluationSet`, each sorted ascending."""

    gallery: np.ndarray
    mated: np.ndarray
    nonmated: np.ndarray
    description: dict = field(default_factory=dict)

    @property
    def probes(self) -> np.ndarray:
        """Mated probes first, then non-mated probes (the engine's probe order)."""
        return np.concatenate([self.mated, self.nonmated])


def _check(evalset: EvaluationSet, gallery: np.ndarray, probes: np.ndarray,
           source: str | Path | None) -> Protocol:
    codes = evalset.subject_codes
    if gallery.size == 0:
        raise InputError("empty gallery: no template is enrolled", source)
    overlap = np.intersect1d(gallery, probes)
    if overlap.size:
        tid = evalset.template_ids_at(overlap[:1])[0]
        raise InputError(f"{overlap.size} template(s) are both gallery and probe, e.g. {shown(tid)}; "
                         "a probe must never be searched against its own template", source)
    is_enrolled = np.zeros(int(codes.max()) + 1 if codes.size else 0, dtype=bool)
    is_enrolled[codes[gallery]] = True  # linear: subject codes, not string comparisons
    enrolled = is_enrolled[codes[probes]]
    mated, nonmated = np.sort(probes[enrolled]), np.sort(probes[~enrolled])
    if nonmated.size == 0:
        raise InputError("no non-mated probes: every probe's subject is enrolled, so FPIR "
                         "cannot be measured; leave some subjects out of the gallery", source)
    if mated.size == 0:
        raise InputError("no mated probes: no probe's subject is enrolled, so FNIR "
                         "cannot be measured", source)
    return Protocol(np.sort(gallery), mated, nonmated)


def generate_protocol(evalset: EvaluationSet, *, enrol_fraction: float = 0.5,
                      gallery_per_subject: int = 1, seed: int = 0) -> Protocol:
    """Seeded random protocol (see module docstring). Same inputs and seed, same protocol."""
    if not 0.0 < enrol_fraction < 1.0:
        raise InputError(f"enrol_fraction must be strictly between 0 and 1, got {enrol_fraction}")
    if gallery_per_subject < 1:
        raise InputError(f"gallery_per_subject must be at least 1, got {gallery_per_subject}")
    rng = np.random.default_rng(seed)
    # subject codes rank subjects in id order: the same subjects, order and counts as np.unique of the ids
    subjects, codes, counts = np.unique(evalset.subject_codes, return_inverse=True, return_counts=True)
    eligible = np.flatnonzero(counts > gallery_per_subject)
    n_enrol = int(round(enrol_fraction * eligible.size))
    if n_enrol == 0:
        raise InputError(f"empty gallery: no subject has more than {gallery_per_subject} "
                         "template(s), so none can be enrolled with a mated probe left", evalset.source)
    enrolled = np.sort(rng.choice(eligible, size=n_enrol, replace=False))
    is_enrolled = np.zeros(subjects.size, dtype=bool)
    is_enrolled[enrolled] = True
    order = np.argsort(codes, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)])
    gallery = [rng.permutation(order[starts[u]:starts[u + 1]])[:gallery_per_subject] for u in enrolled]
    gallery = np.concatenate(gallery)
    probes = np.setdiff1d(np.arange(evalset.n), gallery)
    protocol = _check(evalset, gallery, probes, evalset.source)
    desc = {"kind": "generated", "seed": seed, "enrol_fraction": enrol_fraction,
            "gallery_per_subject": gallery_per_subject, "eligible_subjects": int(eligible.size),
            "enrolled_subjects": n_enrol}
    return Protocol(protocol.gallery, protocol.mated, protocol.nonmated, desc)


def load_protocol(evalset: EvaluationSet, path: str | Path) -> Protocol:
    """Read an explicit protocol file (``template_id``, ``role`` in {gallery, probe})."""
    path = Path(path)
    if not path.exists():
        raise InputError("protocol file not found", path)
    try:
        table = (pd.read_csv(path, dtype=str) if path.suffix.lower() == ".csv"
                 else read_parquet(path, "protocol"))
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is one clear line
        raise InputError(f"cannot read protocol ({reason(exc)})", path) from None
    missing = [c for c in ("template_id", "role") if c not in table.columns]
    if missing:
        raise InputError(f"missing required column(s) {', '.join(missing)}", path)
    # ids stay in their column (no array of Python strings); hash look-ups (linear time), never
    # element-wise string comparisons
    roles = table["role"].astype(str).str.strip().str.lower()
    is_gallery, is_probe = (roles == "gallery").to_numpy(bool), (roles == "probe").to_numpy(bool)
    del roles
    bad = ~(is_gallery | is_probe)
    if bad.any():
        raise InputError(f"role must be 'gallery' or 'probe', got '{shown(table['role'][bad].iloc[0])}'", path)
    ids = table["template_id"].astype(str)
    del table
    dup = ids.duplicated().to_numpy(bool)
    if dup.any():
        raise InputError(f"template_id listed twice, e.g. {shown(ids[dup].iloc[0])}", path)
    rows = pd.Index(evalset.manifest["template_id"]).get_indexer(ids)
    unknown = rows < 0
    if unknown.any():
        raise InputError(f"{int(unknown.sum())} template_id(s) not in the manifest, "
                         f"e.g. {shown(ids[unknown].iloc[0])}", path)
    del ids, dup
    protocol = _check(evalset, rows[is_gallery], rows[is_probe], path)
    release_freed_memory()
    return Protocol(protocol.gallery, protocol.mated, protocol.nonmated,
                    {"kind": "file", "path": str(path)})

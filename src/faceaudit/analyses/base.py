"""What every analysis reads and extends: an :class:`Audit`, the engine's counts of one audit with
its evaluation set, protocol and JSON-ready ``results`` (made by :func:`faceaudit.audit.run_audit`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from faceaudit.data.evalset import EvaluationSet
from faceaudit.data.protocol import Protocol
from faceaudit.engine.counts import SearchResult
from faceaudit.engine.local import search


@dataclass
class Audit:
    """An audit's counts (``search``) and its JSON-ready ``results``."""

    evalset: EvaluationSet
    protocol: Protocol
    search: SearchResult
    results: dict
    failures: pd.DataFrame | None = None
    extra_files: dict = field(default_factory=dict)
    backend: object = None  # what ran the search (None: the single-process engine); later passes use it too

    @property
    def searcher(self):
        """``search`` as this audit ran it: the backend's, or :func:`faceaudit.engine.local.search`."""
        return search if self.backend is None else self.backend.search

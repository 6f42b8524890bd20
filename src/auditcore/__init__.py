"""auditcore: the statistics and output core shared by both auditors (``faceaudit``, ``flagaudit``).

It imports neither auditor. One module per concern:

* :mod:`auditcore.intervals`: the :class:`Rate` type, Clopper-Pearson and Wilson intervals, and
  ``allowed_errors`` (the ``floor(x * n)`` rule for operating points on integer counts);
* :mod:`auditcore.bootstrap`: the cluster bootstrap (people for faces, templates for posts);
* :mod:`auditcore.differentials`: disaggregation by group and differential summaries;
* :mod:`auditcore.report`: the HTML report's shell (page skeleton, CSS, figure embedding);
* :mod:`auditcore.outdir`: the atomic, marker-based results-folder writer;
* :mod:`auditcore.errors`: :class:`InputError`, one line and exit status 2 in either CLI.
* :mod:`auditcore.http_runner`: the HTTP runner for a system under test (one endpoint, retries,
  rate, journal, request log): ``faceaudit query`` and ``flagaudit audit --endpoint``.
"""

from __future__ import annotations

import importlib
import sys


def alias_modules(package: str, names: dict[str, str]) -> None:
    """Make ``package.old`` an alias of ``auditcore.new`` for every ``old: new`` in ``names``.

    Used by the auditors' packages for modules that moved here, so that every earlier import
    (``from faceaudit.metrics.intervals import rate``, ``import faceaudit.outdir``) keeps working
    and refers to the very same module object (monkeypatching included).
    """
    parent = sys.modules[package]
    for old, new in names.items():
        module = importlib.import_module(f"auditcore.{new}")
        sys.modules.setdefault(f"{package}.{old}", module)
        setattr(parent, old, module)

"""auditcore: the statistics and output core shared by both auditors (``faceaudit``, ``flagaudit``).

It imports neither auditor. One module per concern:

* :mod:`auditcore.intervals`: the :class:`Rate` type, Clopper-Pearson and Wilson intervals, and
  ``allowed_errors`` (the ``floor(x * n)`` rule for operating points on integer counts);
* :mod:`auditcore.bootstrap`: the cluster bootstrap (people for faces, templates for posts);
* :mod:`auditcore.differentials`: disaggregation by group and differential summaries;
* :mod:`auditcore.claims`: claims of a difference between groups, with bounds simultaneous over
  every comparison a report makes (at most 5% of audits claim one when there is none);
* :mod:`auditcore.report`: the HTML report's shell (page skeleton, CSS, figure embedding);
* :mod:`auditcore.outdir`: the atomic, marker-based results-folder writer;
* :mod:`auditcore.errors`: :class:`InputError`, one line and exit status 2 in either CLI.
* :mod:`auditcore.http_runner`: the HTTP runner for a system under test (one endpoint, retries,
  rate, journal, request log): ``faceaudit query`` and ``flagaudit audit --endpoint``.

* :mod:`auditcore.validation`: input checks declared once (helpers raising :class:`InputError`);
* :mod:`auditcore.paths`: files named inside a file stay under the folder the user named;
* :mod:`auditcore.cli`: the command-line guard both CLIs run in (one-line errors, signals, the
  one stderr console).

:func:`run_then_exit` runs either CLI's command from its console entry point.
"""

from __future__ import annotations

import gc
from typing import Callable

FULL_COLLECTION_EVERY = 100  # younger collections between two full ones in a console command (Python's default: 10)


def run_then_exit(command: Callable[[], object]) -> None:
    """Run a console command (a CLI's entry point, which ends the process), then freeze the cyclic
    garbage collector's view of every object still alive (:func:`gc.freeze`).

    The interpreter's teardown then skips its collection passes over the libraries' long-lived
    objects (numba's type registries, matplotlib, pandas): about 0.4 CPU-s of every ``faceaudit
    audit``, measured. Nothing is lost: outputs are written in ``with`` blocks and renamed into place
    before this point, the standard streams are flushed by the interpreter as always, and atexit
    handlers still run. Only for entry points: in a long-lived process the frozen garbage would
    never be collected.

    It also makes the collector's full passes rarer while the command runs (one per
    ``FULL_COLLECTION_EVERY`` younger collections instead of 10): during start-up those passes walk
    the libraries' growing module state and find next to nothing (measured on ``faceaudit audit``:
    4 passes, 0.21 CPU-s, 91 objects freed); younger cycles are still collected as before."""
    first, second, _ = gc.get_threshold()
    gc.set_threshold(first, second, FULL_COLLECTION_EVERY)
    try:
        command()
    finally:
        gc.freeze()

"""faceaudit: audit face identification (1:N search) systems.

The pipeline, one module each:

``evalset`` (templates + manifest) -> ``protocol`` (gallery, mated and non-mated probes)
-> ``engine`` (one blockwise pass: scores to counts) -> ``metrics`` (pure functions of counts)
-> ``audit`` (results folder) -> ``report`` (HTML from results) -> ``cli`` (thin).
"""

import os

# OpenBLAS threads spin for ~2^28 cycles after each call, which steals both cores from the
# engine's numba pass that follows every matrix multiply (measured: the pass ran 1.6x slower).
# A short spin only takes effect if set before numpy loads OpenBLAS; an explicit setting wins.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

# errors and outdir moved to the shared core (auditcore); the old module paths stay importable.
from auditcore import alias_modules  # noqa: E402

alias_modules(__name__, {"errors": "errors", "outdir": "outdir"})

from faceaudit.errors import InputError  # noqa: E402

__version__ = "0.1.0"

__all__ = ["InputError", "__version__"]

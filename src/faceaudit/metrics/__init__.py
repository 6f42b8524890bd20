"""Metrics: small pure functions of the engine's counts, one module per family.

* :mod:`~faceaudit.metrics.intervals`: the :class:`Rate` type and confidence intervals (in :mod:`auditcore`);
* :mod:`~faceaudit.metrics.identification`: FPIR, FNIR, CMC, identification DET (ISO/IEC 19795-1);
* :mod:`~faceaudit.metrics.verification`: FMR, FNMR, DET, EER, FNMR at FMR.

Conventions, everywhere: a score ``>= T`` is a match; an operating point "at rate x" is the
lowest threshold whose measured rate, an integer count compared with ``floor(x * n)``, is at
most x; a mate tied with a non-mate takes the worse rank; a rate with no trials is undefined
(``value is None``), never 0.
"""

# intervals, bootstrap and differentials moved to the shared core (auditcore); the old module
# paths stay importable as aliases of the same modules.
from auditcore import alias_modules

alias_modules(__name__, {"intervals": "intervals", "bootstrap": "bootstrap", "differentials": "differentials"})

from faceaudit.metrics.intervals import Rate, rate  # noqa: E402

__all__ = ["Rate", "rate"]

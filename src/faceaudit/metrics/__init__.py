"""Metrics: small pure functions of the engine's counts, one module per family.

* :mod:`~faceaudit.metrics.intervals`: the :class:`Rate` type and confidence intervals;
* :mod:`~faceaudit.metrics.identification`: FPIR, FNIR, CMC, identification DET (ISO/IEC 19795-1);
* :mod:`~faceaudit.metrics.verification`: FMR, FNMR, DET, EER, FNMR at FMR.

Conventions, everywhere: a score ``>= T`` is a match; an operating point "at rate x" is the
lowest threshold whose measured rate, an integer count compared with ``floor(x * n)``, is at
most x; a mate tied with a non-mate takes the worse rank; a rate with no trials is undefined
(``value is None``), never 0.
"""

from faceaudit.metrics.intervals import Rate, rate

__all__ = ["Rate", "rate"]

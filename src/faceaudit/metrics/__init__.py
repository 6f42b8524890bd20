"""Metrics: small pure functions of the engine's counts, one module per family.

* :mod:`~faceaudit.metrics.conventions`: the conventions every figure follows, stated once;
* :mod:`~faceaudit.metrics.identification`: FPIR, FNIR, CMC, identification DET (ISO/IEC 19795-1);
* :mod:`~faceaudit.metrics.verification`: FMR, FNMR, DET, EER, FNMR at FMR;
* :mod:`~faceaudit.metrics.tail`: the impostor tail beyond the observed scores;
* :mod:`~faceaudit.metrics.paired`: paired comparisons of two systems on the same searches.

Rates and their intervals (:class:`auditcore.intervals.Rate`), the cluster bootstrap and the
differential summaries are shared with flagaudit and live in :mod:`auditcore`.

Conventions, everywhere: a score ``>= T`` is a match; an operating point "at rate x" is the
lowest threshold whose measured rate, an integer count compared with ``floor(x * n)``, is at
most x; a mate tied with a non-mate takes the worse rank; a rate with no trials is undefined
(``value is None``), never 0.

May import: :mod:`faceaudit.engine.counts` (the engine's output type and histogram convention)
and :mod:`auditcore`; never the engine's implementation, analyses or anything above.
"""

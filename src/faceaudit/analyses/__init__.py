"""Analyses: what an audit's counts mean, beyond the headline rates.

* :mod:`~faceaudit.analyses.base`: :class:`Audit`, what every analysis reads and extends;
* :mod:`~faceaudit.analyses.demographics`: per-group rates and differentials (ISO/IEC 19795-10);
* :mod:`~faceaudit.analyses.scale`: FPIR against gallery size, measured and extrapolated;
* :mod:`~faceaudit.analyses.lookalikes`: non-mates at or above a threshold per search, with intervals from people;
* :mod:`~faceaudit.analyses.explain`: what one top candidate at a given score is worth;
* :mod:`~faceaudit.analyses.compare`: several systems on the same searches, paired;
* :mod:`~faceaudit.analyses.simscores`: simulated score populations that check the extrapolation.

May import: :mod:`faceaudit.metrics`, :mod:`faceaudit.engine`, :mod:`faceaudit.data`,
:mod:`faceaudit.report` (to write a comparison's page) and :mod:`auditcore`.
"""

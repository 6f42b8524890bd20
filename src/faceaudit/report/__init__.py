"""The HTML report: reads a results dict, never computes a metric.

:mod:`~faceaudit.report.html` (``render_report``, ``write_report``) and its sections, one module
each; :mod:`~faceaudit.report.compare_html` for ``faceaudit compare``.

May import: :mod:`auditcore.report` and itself; never the engine, metrics, analyses or data.
"""

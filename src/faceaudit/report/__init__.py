"""The HTML report: reads a results dict, never computes a metric."""

from faceaudit.report.html import render_report, write_report

__all__ = ["render_report", "write_report"]

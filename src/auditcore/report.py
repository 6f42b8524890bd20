"""The HTML report's shell, shared by both auditors: page skeleton, CSS, escaping, and figures
embedded as PNG data URIs (one self-contained file that works offline). Sections, and how each
auditor formats its rates and thresholds, belong to the auditor; nothing here computes a metric.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Iterable

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1060px;margin:0 auto;
padding:24px 28px;color:#222;line-height:1.45}
h1{font-size:1.7em;margin-bottom:0.1em} h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:1.8em}
.sub{color:#666;margin-top:0} .summary{background:#f4f6fb;border-left:5px solid #2c3e80;padding:12px 18px;
font-size:1.08em} .summary p{margin:0.5em 0} .warn{background:#fff6e5;border-left:5px solid #e67e22;
padding:8px 14px} table{border-collapse:collapse;margin:10px 0;font-size:0.92em}
th,td{border:1px solid #ddd;padding:4px 9px;text-align:right;vertical-align:top} th{background:#f2f2f2}
td:first-child,th:first-child{text-align:left} .grid{display:flex;flex-wrap:wrap;gap:12px}
.grid figure{margin:0;flex:1 1 460px} .grid img{width:100%;max-width:520px}
.wide figure{margin:0} .wide img{width:100%}
figcaption{font-size:0.85em;color:#555} .muted{color:#999} code{background:#f2f2f2;padding:0 3px}
dl.conv dt{font-weight:600;margin-top:6px} dl.conv dd{margin-left:18px}
"""


def esc(value) -> str:
    return html.escape(str(value))


def figure(uri: str, caption: str) -> str:
    return f'<figure><img src="{uri}" alt="{esc(caption)}"><figcaption>{esc(caption)}</figcaption></figure>'


def to_data_uri(fig, dpi: int = 110) -> str:
    """PNG data URI of a matplotlib figure (then closed), so the report is one self-contained file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def page(title: str, subtitle_html: str, sections: Iterable[str], *, lang: str = "en") -> str:
    """The whole document: ``<head>`` with the shared CSS, ``<h1>``, a subtitle line (already
    escaped HTML) and the sections in order."""
    return (f"<!DOCTYPE html><html lang='{esc(lang)}'><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{esc(title)}</h1>"
            f"<p class='sub'>{subtitle_html}</p>" + "".join(sections) + "</body></html>")

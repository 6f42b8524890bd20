"""The HTML report's shell, shared by both auditors: page skeleton, CSS, escaping, and figures
embedded as PNG data URIs (one self-contained file that works offline). Sections, and how each
auditor formats its rates and thresholds, belong to the auditor; nothing here computes a metric.

Figures are made with :func:`subplots` (matplotlib's ``Figure``, without pyplot: no GUI backend
to import, no global figure list to close) and embedded with :func:`to_data_uri`, which draws
each figure once.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import re
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


MARGIN_INCHES = 2.0  # canvas drawn around a figure, so that whatever sticks out of it is drawn too
PAD_INCHES = 0.1  # white space kept around the ink (as savefig's pad_inches)


def subplots(nrows: int = 1, ncols: int = 1, *, figsize=None, **kwargs):
    """``matplotlib.pyplot.subplots`` without pyplot: ``(figure, axes)``, for drawing off-screen."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kwargs)


_SUPERSCRIPT = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")


def plain_log_label(label: str) -> str:
    """A log-axis tick label of matplotlib's (``$\\mathdefault{2\\times10^{-3}}$``) as plain
    Unicode text (``2×10⁻³``): the same label, drawn without parsing mathtext. A label of any
    other form is returned unchanged."""
    match = re.fullmatch(r"\$\\mathdefault\{(-?)(?:([0-9.]+)\\times)?([0-9.]+)(?:\^\{(-?[0-9]+)\})?\}\$", label)
    if match is None:
        return label
    sign, coeff, base, exponent = match.groups()
    return (("\u2212" if sign else "") + (coeff + "\u00d7" if coeff else "") + base
            + (exponent.translate(_SUPERSCRIPT) if exponent is not None else ""))


@functools.lru_cache(maxsize=None)
def _plain_log_formatter():
    from matplotlib.ticker import LogFormatterSciNotation

    class PlainLogFormatter(LogFormatterSciNotation):
        """matplotlib's log-axis formatter, its labels as plain text (see :func:`plain_log_label`)."""

        def __call__(self, x, pos=None):
            return plain_log_label(super().__call__(x, pos))

    return LogFormatterSciNotation, PlainLogFormatter


def plain_log_ticks(fig) -> None:
    """Every log axis of ``fig`` (colour bars included) labelled in plain text rather than mathtext:
    the same labels (``10⁻³``, ``2×10⁻¹``), without the cost of parsing each one as TeX (~10 ms)."""
    base, plain = _plain_log_formatter()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for formatter in (axis.get_major_formatter(), axis.get_minor_formatter()):
                if type(formatter) is base:  # matplotlib's default for a log scale; it has no other state
                    formatter.__class__ = plain


@functools.lru_cache(maxsize=None)
def _clipped_log_locator():
    from matplotlib.ticker import LogLocator

    class ClippedLogLocator(LogLocator):
        """matplotlib's log-axis locator, less the locations outside the view limits: matplotlib
        makes a tick (five artists) for every location it is given and then draws only those
        inside, and a log locator gives a decade beyond each end. The test is matplotlib's own
        (``Axis._update_ticks``: inside the limits in the axis' transformed units, to a relative
        1e-10), so that the ticks kept are exactly those it draws."""

        def __call__(self):
            import numpy as np

            locs = np.asarray(super().__call__(), dtype=float)
            if locs.size == 0:
                return locs
            transform = self.axis.get_transform()
            low, high = self.axis.get_view_interval()
            if low > high:
                low, high = high, low
            low, high = transform.transform([low, high])
            if low > high:
                low, high = high, low
            slack = (high - low) * 1e-10
            where = np.asarray(transform.transform(locs), dtype=float)
            return locs[(low - slack <= where) & (where <= high + slack)]

    return LogLocator, ClippedLogLocator


def lean_log_ticks(fig) -> None:
    """The ticks of every log axis of ``fig`` made cheaper to draw, without changing a pixel:

    * locations outside the view limits are not made into ticks (see ``ClippedLogLocator``);
    * unlabelled minor ticks (all of them on an axis over more than a decade) are drawn by one
      matplotlib tick moved to each location in turn, right after the axis' other ticks (where
      matplotlib draws them, in the same order), instead of a tick of five artists made, laid
      out and measured several times per location (a DET over nine decades has 80). Minor ticks
      carrying a label (a log axis shorter than a decade) are left as they are.

    Call it once the figure is complete (it fixes each Axes' view limits)."""
    import numpy as np
    from matplotlib.ticker import NullLocator

    base, clipped = _clipped_log_locator()
    flattened = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_scale() != "log":
                continue
            for ticker in (axis.major, axis.minor):
                if type(ticker.locator) is base:  # matplotlib's default for a log scale
                    ticker.locator.__class__ = clipped
            if type(axis.minor.locator) is not clipped or not axis.get_visible():
                continue
            locs = np.asarray(axis.minor.locator(), dtype=float)  # at the final view limits
            if locs.size == 0 or not np.isfinite(locs).all() or any(axis.minor.formatter.format_ticks(locs)):
                continue
            flattened.append((axis, locs))
    # only now: Axes sharing an axis share its locator, so none is replaced before all are read
    for axis, locs in flattened:
        tick = axis.get_minor_ticks(1)[0]  # matplotlib's own minor tick, drawn at every location
        tick.label1.set_text("")
        tick.label2.set_text("")
        axis.draw = functools.partial(_draw_then, axis.draw, tick, locs)  # right after the axis' ticks
        axis.set_minor_locator(NullLocator())


def _draw_then(draw, tick, locs, renderer, *args, **kwargs):
    """The axis (``draw``), then one tick drawn at each of ``locs``: what the axis drew for its
    minor ticks, in the same order, without a Tick per location."""
    draw(renderer, *args, **kwargs)
    for loc in locs:
        tick.update_position(loc)
        tick.draw(renderer)


def to_data_uri(fig, dpi: int = 110) -> str:
    """PNG data URI of a matplotlib figure (then closed), so the report is one self-contained file.

    The figure is cropped to its ink plus ``PAD_INCHES``, like ``savefig(bbox_inches="tight")``, but
    drawn once instead of twice: it is drawn on a canvas ``MARGIN_INCHES`` larger on every side
    (artists keep their places and sizes in inches) and the white border is cut off the pixels.
    A figure with an Axes, text or legend placed beyond that margin, or whose ink reaches the
    larger canvas's edge, is drawn the usual way instead. Log axes' ticks are made cheaper to draw
    first (:func:`lean_log_ticks`: the same pixels).
    """
    from matplotlib.transforms import Bbox

    plain_log_ticks(fig)
    for ax in fig.axes:  # what savefig's first "tight" draw would do: fix each Axes' aspect ratio
        ax.apply_aspect()
    lean_log_ticks(fig)
    width, height = fig.get_size_inches()
    box = Bbox.from_extents(-MARGIN_INCHES, -MARGIN_INCHES, width + MARGIN_INCHES, height + MARGIN_INCHES)
    png = None
    if _placed_within(fig, box):
        raw = io.BytesIO()
        fig.savefig(raw, format="rgba", dpi=dpi, bbox_inches=box)
        png = _crop_to_png(raw.getbuffer(), box.width * dpi, box.height * dpi, round(PAD_INCHES * dpi))
    if png is None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", pad_inches=PAD_INCHES)
        png = buf.getvalue()
    _close(fig)
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _placed_within(fig, box) -> bool:
    """Whether every Axes, and the anchor of every text, annotation and legend, lies inside ``box``
    (inches, figure coordinates); cheap: nothing is laid out. An artist wholly outside the canvas
    leaves no ink on it, so this is what catches it."""
    from matplotlib.text import Annotation

    inside = box.transformed(fig.dpi_scale_trans)  # display units at the figure's dpi
    width, height = fig.get_size_inches()

    def within(points) -> bool:
        return all(inside.x0 < x < inside.x1 and inside.y0 < y < inside.y1 for x, y in points)

    for ax in fig.axes:
        if not within(ax.get_position().transformed(fig.transFigure).corners()):
            return False
    frames = {"data": None, "axes fraction": "transAxes", "figure fraction": "transFigure"}
    for text in list(fig.texts) + [t for ax in fig.axes for t in ax.texts]:
        if not text.get_visible() or not text.get_text():
            continue
        if isinstance(text, Annotation):
            coords = text.anncoords if text.anncoords in frames else text.xycoords
            where = text.xyann if text.anncoords in frames else text.xy
            if coords not in frames or not (text.anncoords in frames or str(text.anncoords).startswith("offset")):
                return False  # placed some other way: let savefig find where
            owner = text.axes if coords != "figure fraction" else fig
            transform = owner.transData if coords == "data" else getattr(owner, frames[coords])
            if not within(transform.transform([where])):
                return False
        elif not within(text.get_transform().transform([text.get_unitless_position()])):
            return False
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    return all(within(legend.get_bbox_to_anchor().corners()) for legend in legends)


def _crop_to_png(rgba, width: float, height: float, pad: int) -> bytes | None:
    """PNG of the RGBA pixels cropped to their non-white part plus ``pad`` pixels; None when the
    ink touches the canvas edge (something may lie beyond it) or the size cannot be read."""
    import numpy as np
    from PIL import Image

    pixels = np.frombuffer(rgba, dtype=np.uint8)
    for w in sorted({int(width), int(round(width))}):  # Agg's canvas is the truncated size
        if w and pixels.size % (4 * w) == 0 and abs(pixels.size // (4 * w) - height) < 1.5:
            break
    else:
        return None
    image = pixels.reshape(-1, w, 4)
    ink = image.view(np.uint32)[..., 0] != np.frombuffer(b"\xff\xff\xff\xff", np.uint32)[0]
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if rows.size == 0 or rows[0] == 0 or cols[0] == 0 or rows[-1] == image.shape[0] - 1 or cols[-1] == w - 1:
        return None
    top, bottom = max(rows[0] - pad, 0), min(rows[-1] + pad + 1, image.shape[0])
    left, right = max(cols[0] - pad, 0), min(cols[-1] + pad + 1, w)
    crop = image[top:bottom, left:right]
    opaque = bool((crop[..., 3] == 255).all())
    out = io.BytesIO()
    # zlib level 3, not 6: a third less time encoding (the same pixels), the file 2% larger
    Image.fromarray(np.ascontiguousarray(crop[..., :3] if opaque else crop), "RGB" if opaque else "RGBA").save(
        out, format="png", compress_level=3)
    return out.getvalue()


def _close(fig) -> None:
    """Release a figure: through pyplot if pyplot made it (and is loaded), else nothing to do."""
    import sys

    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close(fig)


def page(title: str, subtitle_html: str, sections: Iterable[str], *, lang: str = "en") -> str:
    """The whole document: ``<head>`` with the shared CSS, ``<h1>``, a subtitle line (already
    escaped HTML) and the sections in order."""
    return (f"<!DOCTYPE html><html lang='{esc(lang)}'><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{esc(title)}</h1>"
            f"<p class='sub'>{subtitle_html}</p>" + "".join(sections) + "</body></html>")

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
.banner{background:#fdecea;border:2px solid #c0392b;border-left-width:6px;padding:8px 14px;margin:12px 0}
.banner p{margin:0.3em 0} .banner b.code{font-family:monospace;font-weight:600;color:#922}
.first{font-size:1.05em;margin:0.2em 0 0.6em 0} .first b{color:#2c3e80}
.prov{background:#fafafa;border:1px solid #ddd;padding:8px 14px;margin:12px 0;font-size:0.92em}
.prov p{margin:0.35em 0} .prov h3{margin:0.2em 0 0.4em 0;font-size:1.05em}
pre.cmd,code.cmd{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:0.9em;background:#f2f2f2;
white-space:pre-wrap;word-break:break-all;padding:4px 6px;display:block;margin:4px 0}
td.mono,span.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:0.9em;word-break:break-all}
td.l,th.l{text-align:left} .printonly{display:none}
@media print{
@page{size:auto;margin:12mm 11mm}
body{max-width:none;margin:0;padding:0;font-size:10pt;line-height:1.3}
h1{font-size:16pt;margin-top:0} h2{font-size:13pt;margin-top:1.1em;break-after:avoid;page-break-after:avoid}
h3{font-size:11pt;break-after:avoid;page-break-after:avoid}
table{font-size:8.5pt;break-inside:auto} th,td{padding:2px 5px}
thead{display:table-header-group} tr,figure,img,.summary p,.banner,.warn,.prov p,pre.cmd{break-inside:avoid;
page-break-inside:avoid}
table.short,.prov table{break-inside:avoid;page-break-inside:avoid}
figure{break-inside:avoid;page-break-inside:avoid} figcaption{font-size:8pt}
.grid{display:flex;flex-wrap:wrap;gap:8px} .grid figure{flex:1 1 48%;max-width:49%} .grid>div{flex:1 1 100%}
.grid img{width:100%;max-width:none;max-height:95mm;object-fit:contain}
.wide img,figure img[style]{max-height:120mm;object-fit:contain} figure.natural img{max-height:110mm}
.summary{background:none;border:1px solid #2c3e80;border-left-width:4px;font-size:10pt}
tr.more,.screenonly{display:none} .printonly{display:block} tr.printonly{display:table-row}
a{color:inherit;text-decoration:none}
}
"""


def esc(value) -> str:
    return html.escape(str(value))


def figure(uri: str, caption: str) -> str:
    return f'<figure><img src="{uri}" alt="{esc(caption)}"><figcaption>{esc(caption)}</figcaption></figure>'


def png_size(uri: str) -> tuple[int, int]:
    """Width and height in pixels of a PNG data URI (from its IHDR header)."""
    head = base64.b64decode(uri.split(",", 1)[1][:44])
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def figure_natural(uri: str, caption: str) -> str:
    """A figure shown at its own pixel size, never wider than the page: for a figure whose text is
    sized for it (a heatmap's cells), which shrinking would make unreadable."""
    width, _ = png_size(uri)
    return (f'<figure class="natural"><img src="{uri}" style="width:{width}px;max-width:100%" alt="{esc(caption)}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


MARGIN_INCHES = 2.0  # canvas drawn around a figure, so that whatever sticks out of it is drawn too
PAD_INCHES = 0.1  # white space kept around the ink (as savefig's pad_inches)


def subplots(nrows: int = 1, ncols: int = 1, *, figsize=None, **kwargs):
    """``matplotlib.pyplot.subplots`` without pyplot: ``(figure, axes)``, for drawing off-screen."""
    import matplotlib
    from matplotlib.figure import Figure

    # no offset or multiplier in an axis corner ("0.6" with "1e-2" far away): each tick says its value
    with matplotlib.rc_context({"axes.formatter.useoffset": False, "axes.formatter.limits": (-7, 9)}):
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


_HEADER_ROW = re.compile(r"<table([^>]*)>(<tr>(?:<th[^>]*>(?:(?!</th>).)*</th>)+</tr>)", re.DOTALL)


def with_thead(document: str) -> str:
    """Every table whose first row is all header cells gets it as a ``<thead>``, which a browser
    repeats at the top of each printed page the table runs onto (the rest of the rows go in the
    ``<tbody>`` the browser adds). Tables that already have a ``<thead>`` are left alone."""
    return _HEADER_ROW.sub(lambda m: f"<table{m.group(1)}><thead>{m.group(2)}</thead>", document)


def limit_rows(rows: list[str], columns: int, *, keep: int = 12, where: str = "results.json") -> str:
    """Table rows (each one ``<tr>...``) with all but the first ``keep`` left out of the printed page
    (class ``more``; still on screen), and in print one row saying how many were left out and where
    they are. Fewer rows than ``keep + 3``: all printed."""
    if len(rows) <= keep + 2:
        return "".join(rows)
    hidden = [r.replace("<tr", "<tr class='more'", 1) if r.startswith(("<tr>", "<tr ")) else r
              for r in rows[keep:]]
    note = (f"<tr class='printonly'><td colspan='{columns}' class='l muted'>{len(rows) - keep:,} more rows not "
            f"printed: see report.html on screen, or {esc(where)}.</td></tr>")
    return "".join(rows[:keep]) + "".join(hidden) + note


def warnings_banner(warnings) -> str:
    """A results folder's ``warnings`` (``[{"code", "text"}]``, or plain strings) as one red banner
    above the summary, or ``""`` when there are none."""
    items = [w if isinstance(w, dict) else {"text": w} for w in (warnings or []) if w]  # a bare string: its text
    items = [w for w in items if w.get("text")]
    if not items:
        return ""
    body = "".join(f"<p><b>{esc(_sentence(w['text']))}</b>"
                   + (f" <span class='muted'>({esc(w['code'])})</span>" if w.get("code") else "") + "</p>"
                   for w in items)
    head = "Read this first" if len(items) == 1 else f"Read these {len(items)} warnings first"
    return f"<div class='banner' role='alert'><p><b>{head}.</b></p>{body}</div>"


def _sentence(text: str) -> str:
    text = str(text).strip()
    return text[:1].upper() + text[1:]


def short_hash(digest) -> str:
    """A sha256 as its first 12 hex digits, the whole of it in a tooltip (``title``) for copying."""
    if not digest:
        return "<span class='muted'>not recorded (not found)</span>"
    return f"<span class='mono' title='sha256 {esc(digest)}'>{esc(str(digest)[:12])}&hellip;</span>"


def fmt_bytes(n) -> str:
    if n is None:
        return "<span class='muted'>&ndash;</span>"
    n = int(n)
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:,.1f} {unit} <span class='muted'>({n:,} bytes)</span>"
    return f"{n:,} bytes"


def human_key(key, labels: dict | None = None) -> str:
    """The reader's name for a results key: from ``labels``, else the key with ``n_`` read as a
    count and underscores as spaces (``n_gallery_templates`` -> ``Number of gallery templates``)."""
    key = str(key)
    if labels and key in labels:
        return labels[key]
    words = key.removeprefix("n_").replace("_", " ").strip()
    text = ("Number of " + words) if key.startswith("n_") else words
    return text[:1].upper() + text[1:]


def fmt_value(value, labels: dict | None = None) -> str:
    """A results value for a table, escaped: integers with thousands separators, floats to 6
    significant digits, lists comma-separated, dictionaries as a nested table; never a Python repr."""
    if value is None:
        return "<span class='muted'>&ndash;</span>"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value == int(value) and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:.6g}"
    if isinstance(value, dict):
        return dict_table(value, labels, cls="inner")
    if isinstance(value, (list, tuple)):
        if all(not isinstance(v, (dict, list, tuple)) for v in value):
            return ", ".join(fmt_value(v, labels) for v in value) or "<span class='muted'>none</span>"
        return "<br>".join(fmt_value(v, labels) for v in value)
    return esc(value)


def dict_table(d: dict, labels: dict | None = None, *, cls: str = "short") -> str:
    """A dictionary as a two-column table of human names and formatted values (see :func:`fmt_value`)."""
    rows = "".join(f"<tr><td>{esc(human_key(k, labels))}</td><td class='l'>{fmt_value(v, labels)}</td></tr>"
                   for k, v in d.items())
    return f"<table class='{cls}'>{rows}</table>"


def _system_line(prov: dict) -> str:
    system = prov.get("system") or {}
    name, version = system.get("name"), system.get("version")
    if not name and not version:
        return "not named (give the system's name and version when auditing)"
    return esc(name or "unnamed") + (f" version {esc(version)}" if version else " (version not given)")


def _system_html(prov: dict) -> str:
    """The system-under-test line; none where the provenance says ``"system": None`` (a comparison:
    its systems are listed by the page itself)."""
    if "system" in prov and prov["system"] is None:
        return ""
    return f"<p><b>System under test:</b> {_system_line(prov)}.</p>"


RERUN_ONLY = ("run the command again from the folder it was run in: it recomputes every figure from the inputs, "
              "whose sha256 above shows whether they changed")


def provenance_essentials(prov: dict | None, verify_command: str | None, *, tool: str) -> str:
    """The few provenance lines a reader needs on the first page: the system, each input with a
    short hash, the exact command and how to re-check (``verify_command`` None: by re-running the
    command). ``""`` for results that hold no provenance."""
    if not prov:
        return ""
    inputs = "; ".join(f"{esc(i.get('role', 'input'))} <code>{esc(i.get('path', ''))}</code> "
                       f"(sha256 {short_hash(i.get('sha256'))})" for i in prov.get("inputs") or [])
    cmd = prov.get("command_line")
    command = (f"<p><b>Command:</b></p><pre class='cmd'>{esc(cmd)}</pre>" if cmd else
               "<p><b>Command:</b> <span class='muted'>none: made by a library call (the options are listed in "
               "the section on how to re-run it)</span></p>")
    recheck = (f"<p><b>To re-check:</b> {RERUN_ONLY} (details, environment and every option: the last section of "
               f"this {esc(tool)} report).</p>" if not verify_command else
               f"<p><b>To re-check:</b> <code>{esc(verify_command)}</code> re-hashes every input, re-runs this "
               f"audit and lists any figure that differs (details, environment and every option: the last section "
               f"of this {esc(tool)} report).</p>")
    return ("<div class='prov'><h3>What was audited, and how to re-run it</h3>"
            + _system_html(prov)
            + (f"<p><b>Inputs:</b> {inputs}.</p>" if inputs else "")
            + command + recheck + "</div>")


PROVENANCE_LABELS = {"role": "role", "path": "path as given", "resolved": "resolved path", "sha256": "sha256",
                     "bytes": "size", "python": "Python", "implementation": "Python implementation",
                     "platform": "Platform", "machine": "Machine", "packages": "Packages", "blas": "BLAS",
                     "library": "Library", "version": "Version", "kernel": "Kernel",
                     "OPENBLAS_CORETYPE": "OPENBLAS_CORETYPE (forced kernel)", "name": "Name"}


def provenance_section(prov: dict | None, verify_command: str | None, *, labels: dict | None = None) -> str:
    """The full section "What was audited, and how to re-run it": system, model, every input with
    its whole sha256, the exact command, every option's value, and the environment. For results
    written before provenance was recorded, one sentence saying so."""
    if not prov:
        return ("<h2>How to re-run it</h2><p class='muted'>This results folder was written before inputs, "
                "options and environment were recorded (no <code>provenance</code> in results.json); re-run the "
                "audit with the current version to get them.</p>")
    merged = {**PROVENANCE_LABELS, **(labels or {})}
    inputs = "".join(
        f"<tr><td>{esc(i.get('role', ''))}</td><td class='mono l'>{esc(i.get('path', ''))}"
        + (f"<br><span class='muted'>{esc(i['resolved'])}</span>" if i.get("resolved") and i.get("resolved") != i.get("path") else "")
        + f"</td><td class='mono l'>{esc(i.get('sha256') or 'not found')}</td><td>{fmt_bytes(i.get('bytes'))}</td></tr>"
        for i in prov.get("inputs") or [])
    env = dict(prov.get("environment") or {})
    packages = env.pop("packages", None) or {}
    blas = env.pop("blas", None) or {}
    pkg_rows = "".join(f"<tr><td>{esc(k)}</td><td class='mono l'>{esc(v)}</td></tr>" for k, v in packages.items())
    cmd = prov.get("command_line")
    model = prov.get("model")
    parts = ["<h2>What was audited, and how to re-run it</h2>", _system_html(prov)]
    if model:
        parts.append(f"<p><b>Model:</b></p>{dict_table(model, merged)}")
    if inputs:
        parts.append("<p><b>Input files</b> (sha256 of each file's bytes; of a folder, of its files' paths and hashes):"
                     "</p><table><tr><th>role</th><th class='l'>path</th><th class='l'>sha256</th><th>size</th></tr>"
                     f"{inputs}</table>")
    parts.append(f"<p><b>Exact command</b> (paste into a terminal, from the folder it was run in):</p><pre class='cmd'>{esc(cmd)}</pre>"
                 if cmd else "<p><b>Command:</b> none: the audit was made by a library call with the options below.</p>")
    parts.append(f"<p><b>To re-check:</b> {RERUN_ONLY}.</p>" if not verify_command else
                 f"<p><b>To re-check this audit:</b> <code>{esc(verify_command)}</code> re-hashes every input "
                 "above, re-runs the audit with the recorded options and confirms that every figure is identical, or "
                 "lists what differs and why (a changed input, another version of a package or BLAS kernel).</p>")
    if prov.get("options"):
        parts.append(f"<p><b>Every option's value</b> (defaults included):</p>{dict_table(prov['options'], merged)}")
    env_rows = {**env, **({"blas": blas} if blas else {})}
    if env_rows or pkg_rows:
        parts.append("<p><b>Where it was computed</b> (the same inputs and versions give byte-identical results):</p>"
                     f"<div class='grid'><div>{dict_table(env_rows, merged)}</div>"
                     + (f"<div><table class='short'><tr><th>package</th><th class='l'>version</th></tr>{pkg_rows}</table></div>"
                        if pkg_rows else "") + "</div>")
    return "".join(parts)


def page(title: str, subtitle_html: str, sections: Iterable[str], *, lang: str = "en", extra_css: str = "") -> str:
    """The whole document: ``<head>`` with the shared CSS (screen and print), ``<h1>``, a subtitle
    line (already escaped HTML) and the sections in order; tables' header rows repeat on every
    printed page (:func:`with_thead`)."""
    return with_thead(
        f"<!DOCTYPE html><html lang='{esc(lang)}'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{esc(title)}</title>"
        f"<style>{CSS}{extra_css}</style></head><body><h1>{esc(title)}</h1>"
        f"<p class='sub'>{subtitle_html}</p>" + "".join(sections) + "</body></html>")

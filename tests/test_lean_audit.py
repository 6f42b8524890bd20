"""What keeps ``faceaudit audit`` cheap end to end, and that it changes no figure and no picture:

* an audit loads neither ``scipy.stats`` nor ``matplotlib.pyplot`` (half a second and a tenth of
  one of start-up), so the pieces that replace them must give scipy.stats' digits exactly;
* report figures are drawn once (a canvas larger than the figure, cropped to the ink) and must
  cover what ``savefig(bbox_inches="tight")`` covers; log tick labels are plain text.
"""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import REPO
from PIL import Image
from scipy import stats

from auditcore import report as core_report
from auditcore.intervals import clopper_pearson
from faceaudit.analyses import explain


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         cwd=REPO, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_an_audit_with_its_report_loads_neither_scipy_stats_nor_pyplot(tmp_path):
    out = _run(f"""
        import sys
        import numpy as np, pandas as pd
        import faceaudit.cli
        from faceaudit.audit import run_audit, write_results
        from faceaudit.data.evalset import validate
        from faceaudit.data.protocol import generate_protocol
        rng = np.random.default_rng(0)
        centres = rng.normal(size=(60, 32)).astype(np.float32)
        x = np.repeat(centres, 3, axis=0) + 0.7 * rng.normal(size=(180, 32)).astype(np.float32)
        man = pd.DataFrame({{"template_id": [f"t{{i}}" for i in range(180)],
                            "subject_id": np.repeat([f"s{{i}}" for i in range(60)], 3)}})
        es = validate(x, man)
        audit = run_audit(es, generate_protocol(es, seed=0), thresholds=[0.5])
        assert audit.results["explain_calibration"]["bins"], "the calibration check ran"
        write_results(audit, {str(tmp_path / 'out')!r})
        print(sorted(m for m in ("scipy.stats", "matplotlib.pyplot") if m in sys.modules))
    """)
    assert out.strip() == "[]"
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 6


def test_clopper_pearson_has_scipy_stats_digits():
    for trials in (1, 2, 7, 100, 501, 10**6, 10**9):
        for errors in sorted({0, 1, 2, trials // 3, trials // 2, trials - 1, trials} - {-1}):
            if 0 <= errors <= trials:
                for confidence in (0.95, 0.99, 0.5):
                    a = 1 - confidence
                    lo = 0.0 if errors == 0 else float(stats.beta.ppf(a / 2, errors, trials - errors + 1))
                    hi = 1.0 if errors == trials else float(stats.beta.ppf(1 - a / 2, errors + 1, trials - errors))
                    assert clopper_pearson(errors, trials, confidence) == (lo, hi), (errors, trials, confidence)


def test_explains_count_probabilities_have_scipy_stats_digits():
    c = np.arange(20)
    mus = np.concatenate([[1e-300, 1e-12, 0.5, 1.0, 7.25, 40.0, 1e6, np.inf, np.nan, 0.0], np.geomspace(1e-9, 1e4, 60)])
    theta = np.concatenate([np.geomspace(1e-3, 200, 40), [1e-300]])[:, None]
    for mu in mus:
        np.testing.assert_array_equal(explain._poisson_logpmf(c, mu), stats.poisson.logpmf(c, mu))
        np.testing.assert_array_equal(explain._poisson_logsf(19, mu), stats.poisson.logsf(19, mu))
        with np.errstate(all="ignore"):
            r, p = 1 / theta, 1 / (1 + theta * mu)
        np.testing.assert_array_equal(explain._nbinom_logpmf(c[None, :], r, p), stats.nbinom.logpmf(c[None, :], r, p))
        np.testing.assert_array_equal(explain._nbinom_logsf(19, r, p), stats.nbinom.logsf(19, r, p))
    bad = np.array([[0.0], [-1.0], [np.nan]])  # invalid n, and p outside (0, 1]: NaN, as scipy.stats
    np.testing.assert_array_equal(explain._nbinom_logpmf(c[None, :3], bad, 0.5), stats.nbinom.logpmf(c[None, :3], bad, 0.5))
    np.testing.assert_array_equal(explain._nbinom_logsf(2, 2.0, np.array([0.0, 1.5, 1.0])),
                                  stats.nbinom.logsf(2, 2.0, np.array([0.0, 1.5, 1.0])))
    np.testing.assert_array_equal(explain._poisson_logpmf(c, -1.0), stats.poisson.logpmf(c, -1.0))


def _png(uri: str) -> np.ndarray:
    assert uri.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"))


def _tight(fig, dpi=110) -> np.ndarray:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", pad_inches=core_report.PAD_INCHES)
    return np.asarray(Image.open(buf).convert("RGB"))


def _ink_box(img: np.ndarray) -> tuple[int, int]:
    """Height and width of the non-white part."""
    ink = (img != 255).any(axis=2)
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def _figure_sticking_out():
    fig, ax = core_report.subplots(figsize=(4, 3))
    ax.plot([1e-6, 1e-3, 1], [0.5, 0.2, 0.1], label="a curve")
    ax.set_xscale("log")
    ax.set_title("a title")
    ax.set_ylabel("a rate, a long label")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2))  # below the axes, outside the figure
    return fig


def test_drawn_once_covers_what_tight_bbox_covers():
    fig = _figure_sticking_out()
    tight = _tight(fig)
    once = _png(core_report.to_data_uri(_figure_sticking_out()))
    # the same ink, to a pixel or two (the grid of pixels starts at another sub-pixel offset)
    assert np.allclose(_ink_box(once), _ink_box(tight), atol=2)
    pad = round(core_report.PAD_INCHES * 110)
    assert abs(once.shape[0] - _ink_box(once)[0] - 2 * pad) <= 1 and abs(once.shape[1] - _ink_box(once)[1] - 2 * pad) <= 1
    # nothing cut: the legend below the axes, outside the figure, is in the picture
    assert once.shape[0] > 3 * 110


def test_ink_beyond_the_margin_falls_back_to_tight():
    def far():
        fig = _figure_sticking_out()
        fig.text(0.5, -1.0, "far away")  # 3 in below the figure: beyond the margin drawn around it
        return fig

    tight = _tight(far())
    once = _png(core_report.to_data_uri(far()))
    assert once.shape == tight.shape
    assert once.shape[0] > 6 * 110  # the far text is in


@pytest.mark.parametrize("label,plain", [
    (r"$\mathdefault{10^{-3}}$", "10\u207b\u00b3"),
    (r"$\mathdefault{10^{0}}$", "10\u2070"),
    (r"$\mathdefault{10^{12}}$", "10\u00b9\u00b2"),
    (r"$\mathdefault{2\times10^{-1}}$", "2\u00d710\u207b\u00b9"),
    (r"$\mathdefault{-10^{4}}$", "\u221210\u2074"),
    (r"$\mathdefault{0}$", "0"),
    ("", ""),
    (r"$\mathdefault{1e-05}$", r"$\mathdefault{1e-05}$"),  # not a form it knows: left to mathtext
])
def test_plain_log_labels(label, plain):
    assert core_report.plain_log_label(label) == plain


def test_log_axes_labelled_in_plain_text():
    from matplotlib.ticker import LogFormatterSciNotation

    fig, ax = core_report.subplots(figsize=(4, 3))
    ax.plot([1e-4, 1], [0.3, 0.6])
    ax.set_xscale("log")
    ax.set_yscale("log")
    core_report.plain_log_ticks(fig)
    formatter = ax.xaxis.get_major_formatter()
    assert isinstance(formatter, LogFormatterSciNotation)
    assert formatter(1e-3) == "10\u207b\u00b3" and "$" not in formatter(1e-2)
    minor = ax.yaxis.get_minor_formatter()
    minor.set_locs([0.3, 0.4, 0.5, 0.6])
    assert "$" not in "".join(minor(v) for v in (0.3, 0.4, 0.5, 0.6))
    assert any(minor(v) for v in (0.3, 0.4, 0.5, 0.6))  # minor labels still shown on a short log axis


def _log_figures():
    """Log axes of every kind the reports draw: many decades (unlabelled minor ticks, grid on
    both), less than a decade (labelled minor ticks), ticks on all four sides, a log colour bar,
    Axes sharing their axes (and so their locators), an inverted axis, base 2, a twin Axes, and a
    figure drawn the "tight" way."""
    from matplotlib.colors import LogNorm

    def wide():
        fig, ax = core_report.subplots(figsize=(5.4, 4.2))
        x = np.geomspace(3e-9, 1, 40)
        ax.fill_between(x, x ** 0.3 / 3, x ** 0.2, alpha=0.15, lw=0)
        ax.plot(x, x ** 0.25, "o--", ms=3)
        ax.axhline(0.9, color="#555", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.set_title("nine decades")
        return fig

    def short():
        fig, ax = core_report.subplots(figsize=(4, 3))
        ax.plot([0.12, 0.2, 0.45], [1, 2, 3])
        ax.set_xscale("log")
        ax.grid(True, which="both", alpha=0.3)
        return fig

    def four_sides():
        fig, ax = core_report.subplots(figsize=(4, 3))
        ax.plot([1e-4, 1e2], [1e3, 1e-1], drawstyle="steps-post")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.tick_params(which="both", direction="in", top=True, right=True)
        ax.grid(True, which="minor", ls="--", alpha=0.5)
        return fig

    def colour_bar():
        fig, ax = core_report.subplots(figsize=(4, 3))
        im = ax.imshow(np.geomspace(1e-6, 1e-1, 16).reshape(4, 4), norm=LogNorm(vmin=1e-6, vmax=1e-1))
        fig.colorbar(im, ax=ax, label="rate (log scale)")
        return fig

    def shared():
        fig, axes = core_report.subplots(1, 2, figsize=(8, 3), sharex=True, sharey=True)
        for k, ax in enumerate(axes):
            ax.plot([1e-5, 1e-1], [1e-3 * (k + 1), 1e2])
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
        return fig

    def inverted_twin_base2():
        fig, ax = core_report.subplots(figsize=(4, 3))
        ax.plot([1e-5, 1], [1, 1024])
        ax.set_xscale("log")
        ax.set_yscale("log", base=2)
        ax.invert_xaxis()
        ax.grid(True, which="both", alpha=0.3)
        twin = ax.twinx()
        twin.plot([1e-5, 1], [1e-2, 1e3])
        twin.set_yscale("log")
        twin.grid(True, which="minor", color="red", alpha=0.2)
        return fig

    def beyond_margin():  # drawn the "tight" way (twice): the minor ticks must be drawn there too
        fig, ax = core_report.subplots(figsize=(4, 3))
        ax.plot([1e-6, 1e-3, 1], [0.5, 0.2, 0.1])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        fig.text(0.5, -1.0, "far away")
        return fig

    return [wide, short, four_sides, colour_bar, shared, inverted_twin_base2, beyond_margin]


@pytest.mark.parametrize("make", _log_figures(), ids=lambda f: f.__name__)
def test_lean_log_ticks_change_no_pixel(make, monkeypatch):
    lean = make()
    lean_png = _png(core_report.to_data_uri(lean))
    with monkeypatch.context() as m:
        m.setattr(core_report, "lean_log_ticks", lambda fig: None)
        plain_png = _png(core_report.to_data_uri(make()))
    assert lean_png.shape == plain_png.shape
    assert (lean_png == plain_png).all(), f"{(lean_png != plain_png).any(axis=2).sum()} pixels differ"


def test_lean_log_ticks_make_no_tick_per_minor_location():
    wide = _log_figures()[0]()
    core_report.to_data_uri(wide)
    ax = wide.axes[0]
    # matplotlib alone makes a tick for each of the 80 minor locations in view, and 16 beyond
    assert len(ax.xaxis.minorTicks) == 1 and len(ax.yaxis.minorTicks) == 1
    view = ax.get_xlim()
    assert all(view[0] * (1 - 1e-9) <= loc <= view[1] * (1 + 1e-9) for loc in ax.xaxis.get_majorticklocs())
    # a short log axis keeps its labelled minor ticks as matplotlib's own
    short = _log_figures()[1]()
    core_report.to_data_uri(short)
    assert len(short.axes[0].xaxis.minorTicks) > 1

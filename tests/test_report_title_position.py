"""The report's titles are placed at a fixed height (``axes.titley`` 1.0, set in
``faceaudit.report.plots``) rather than by matplotlib's automatic placement, which measures every
y tick label of each figure once more before drawing it (#31: about 0.02 CPU-s of a report's six
figures). The two give the same pixels wherever the automatic placement would leave the title at
1.0, that is wherever no x tick label, x label or offset text sits above the Axes: checked here on
every figure of a report with demographics and scale sections, against matplotlib's own placement,
and (the check's control) shown to differ on a figure with tick labels on top."""

from __future__ import annotations

import re

import matplotlib
import numpy as np
import pytest

from auditcore import report as core
from faceaudit.data.evalset import EvaluationSet
from faceaudit.data.synthetic import make_population
from faceaudit.report import html as rhtml
from faceaudit.report import plots

AUTOMATIC = {"axes.titley": None}  # matplotlib's default: the title moved above whatever overlaps it


def payloads(page: str) -> list[str]:
    return re.findall(r"data:image/png;base64,[A-Za-z0-9+/=]+", page)


@pytest.fixture(scope="module")
def results():
    from faceaudit.analyses.demographics import add_demographics
    from faceaudit.analyses.scale import add_scale
    from faceaudit.audit import run_audit

    es, proto, _ = make_population(n_enrolled=120, n_nonenrolled=240, probes_per_nonenrolled=1, dim=32, seed=5)
    manifest = es.manifest.copy()
    rng = np.random.default_rng(2)
    people = manifest["subject_id"].unique()
    group = dict(zip(people, rng.choice(["a", "b", "c"], size=len(people)), strict=True))
    manifest["group"] = manifest["subject_id"].map(group)
    a = run_audit(EvaluationSet(es.templates, manifest, source=es.source), proto, score="cosine")
    add_demographics(a, ["group"], min_group_size=10, n_boot=20)
    add_scale(a, n_seeds=1, seed=0, sizes=[30, 60, 120])
    return a.results


def test_the_report_sets_a_fixed_title_height():
    assert matplotlib.rcParams["axes.titley"] == 1.0  # plots is imported: its settings are in force


def test_every_figure_as_with_automatic_title_placement(results):
    fixed = payloads(rhtml.render_report(results))
    with matplotlib.rc_context(AUTOMATIC):
        automatic = payloads(rhtml.render_report(results))
    assert len(fixed) >= 9  # identification, verification, calibration, demographics and scale figures
    assert len(fixed) == len(automatic)
    for i, (a, b) in enumerate(zip(fixed, automatic, strict=True)):
        assert a == b, f"figure {i} differs from matplotlib's automatic title placement"


def _titled_figure(top_ticks: bool) -> str:
    fig, ax = core.subplots(figsize=(4.0, 3.0))
    ax.plot([0, 1], [0, 1])
    ax.set_title("a title")
    if top_ticks:
        ax.xaxis.tick_top()
    return plots.to_data_uri(fig)


def test_the_comparison_sees_a_title_that_automatic_placement_moves():
    # the control: with tick labels above the Axes the automatic placement lifts the title, the
    # fixed height does not, and the images differ; without them they are the same
    with matplotlib.rc_context(AUTOMATIC):
        auto_plain, auto_top = _titled_figure(False), _titled_figure(True)
    assert _titled_figure(False) == auto_plain
    assert _titled_figure(True) != auto_top

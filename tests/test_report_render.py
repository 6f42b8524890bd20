"""The report as a reader sees it (#27): provenance and warnings rendered, human labels, one unit
per audit, plots log-log with bands, no corner multipliers, text at least 10 px on a 1280 px page,
histograms without aliasing combs. No browser needed (tests/test_report_print.py prints)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy import stats

from auditcore import provenance as prov
from auditcore import report as core
from faceaudit.data.evalset import EvaluationSet
from faceaudit.data.synthetic import make_population
from faceaudit.report import compare_html, demographics_section, plots, scale_section
from faceaudit.report import html as rhtml

DPI = 110  # auditcore.report.to_data_uri's default
SHOWN = {"grid": 520, "wide": 1060}  # CSS px an image takes at a 1280 px window (max-width 1060 body, 520 grid img)


@pytest.fixture(scope="module")
def audit():
    from faceaudit.analyses.demographics import add_demographics
    from faceaudit.analyses.scale import add_scale
    from faceaudit.audit import run_audit

    es, proto, _ = make_population(n_enrolled=240, n_nonenrolled=480, probes_per_nonenrolled=1, dim=32, seed=3)
    manifest = es.manifest.copy()
    rng = np.random.default_rng(1)
    people = manifest["subject_id"].unique()
    race = dict(zip(people, rng.choice(["asian", "black", "indian", "white"], size=len(people)), strict=True))
    manifest["race"] = manifest["subject_id"].map(race)
    es = EvaluationSet(es.templates, manifest, source=es.source)
    a = run_audit(es, proto, score="neg_euclidean")
    add_demographics(a, ["race"], min_group_size=10, n_boot=50, caveats={"race": "drawn at random (synthetic)"})
    add_scale(a, n_seeds=1, seed=0, sizes=[60, 120, 240])
    return a


def _with_provenance(results: dict, tmp_path) -> dict:
    data = tmp_path / "templates.npy"
    data.write_bytes(b"\x93NUMPY fake bytes for a hash")
    out = dict(results)
    out["schema_version"] = 2
    argv = ["faceaudit", "audit", "--templates", str(data), "--out", "res dir", "--score", "neg_euclidean"]
    out["provenance"] = prov.collect(argv, {"templates": str(data), "out": "res dir", "score": "neg_euclidean",
                                            "top_k": 20}, prov.inputs_from([("templates", data)]),
                                     system={"name": "Acme Face", "version": "3.1"},
                                     model={"name": "resnet", "version": "2", "weights_sha256": "ab" * 32})
    out["input"] = {**results["input"], "model": {"name": "dlib_resnet", "version": "19.24", "options": {"jitter": 1}}}
    out["warnings"] = [{"code": "small_audit", "text": "only 240 people are enrolled: figures below 1 in 240 are bounds"}]
    return out


def test_provenance_warnings_and_first_line(audit, tmp_path):
    results = _with_provenance(audit.results, tmp_path)
    page = rhtml.render_report(results)
    data = results["provenance"]["inputs"][0]
    # the first line under the title names the score and which way a match goes
    sub = re.search(r"<p class='sub'>(.*?)</p>", page).group(1)
    assert "Score: <b>distance</b> (neg_euclidean), a match when distance &le; T" in sub
    assert "Acme Face 3.1" in sub
    # the banner comes before the summary; the provenance essentials right after it
    banner, summary = page.index("class='banner'"), page.index('class="summary"')
    assert banner < summary < page.index("What was audited, and how to re-run it")
    assert "Only 240 people are enrolled" in page
    # every input's whole hash (full section) and its short form (first page, whole in a tooltip)
    assert data["sha256"] in page and f">{data['sha256'][:12]}&hellip;<" in page
    assert f"title='sha256 {data['sha256']}'" in page
    assert rhtml.esc(results["provenance"]["command_line"]) in page and "&#x27;res dir&#x27;" in page
    assert "faceaudit verify res dir" in page
    env = results["provenance"]["environment"]
    assert f">{env['python']}<" in page and f">{env['packages']['numpy']}<" in page
    # a model's metadata as a table, never a Python dict's repr
    assert "{'" not in page and "dlib_resnet" in page and "Jitter" in page


def test_old_results_without_provenance_still_render(audit):
    old = {k: v for k, v in audit.results.items() if k not in ("provenance", "warnings", "schema_version")}
    page = rhtml.render_report(old)  # no provenance, no warnings: a folder written before #27
    assert "class='banner'" not in page
    assert "written before inputs, options and environment were recorded" in page


def test_labels_and_thousands_separators(audit):
    page = rhtml.render_report(audit.results)
    proto = audit.results["protocol"]
    setup = page[page.index("The evaluation set and protocol"):]
    for raw in ("n_nonmated_probes", "n_mated_probes", "n_comparisons", "top_k", "n_templates"):
        assert f">{raw}<" not in setup
    assert "Non-mated searches (of people not enrolled)" in setup
    assert f">{proto['n_comparisons']:,}<" in setup and proto["n_comparisons"] >= 1000
    assert rhtml.human_key("n_gallery_templates", rhtml.LABELS) == "Gallery templates"
    assert core.human_key("n_foo_bar") == "Number of foo bar"
    assert core.fmt_value(1234567) == "1,234,567" and core.fmt_value(2.0e6) == "2,000,000"


def test_summary_sentences_never_mix_percentages_and_fractions(audit):
    text = re.sub(r"<[^>]+>", "", rhtml.summary(audit.results))
    for sentence in re.split(r"(?<=[.)])\s+(?=[A-Z])", text):
        has_pct = bool(re.search(r"\d%", sentence))
        # a share written as a fraction (a distance or score is not a share)
        has_fraction = bool(re.search(r"(?<!distance )(?<!threshold )(?<![\d.])0\.\d{2,}(?!\d*%)", sentence))
        assert not (has_pct and has_fraction), sentence


def test_one_unit_per_audit_group_thresholds_as_distances(audit):
    d = audit.results["demographics"]
    page = demographics_section.render(audit.results)
    single = d["threshold"]
    for t in d["analyses"][0]["group_thresholds"]:
        if t["threshold"] is None:
            continue
        # the difference of two distances, worked by hand: distance_group - distance_single
        want = f"distance {(-t['threshold']) - (-single):+.4g}"
        assert want in page
    thresholds_table = page[page.index("Threshold each group would need"):]
    assert not re.search(r"<td>[+-]\d", thresholds_table)  # no bare score difference


def test_heatmap_values_fit_or_table(audit):
    a = audit.results["demographics"]["analyses"][0]
    assert "<img" in demographics_section._cross_fmr(a)
    many = dict(a)
    groups = [f"g{i}" for i in range(demographics_section.HEATMAP_MAX_GROUPS + 1)]
    n = len(groups)
    many["groups"] = groups
    many["cross_fmr"] = {"rate": [[1e-4] * n] * n, "errors": [[3] * n] * n, "trials": [[30000] * n] * n}
    table = demographics_section._cross_fmr(many)
    assert "<img" not in table and table.count("(3/30,000)") == n * n


def test_dealiased_histogram_has_no_comb_and_matches_the_density():
    # a normal density counted in fine bins 2.5 report bins apart (as the engine's binade-wide bins
    # re-binned on a linear grid): every other report bin empty
    edges = np.linspace(-4, 4, 161)
    fine = np.arange(-4, 4, 2.5 * (edges[1] - edges[0]))
    mass = np.diff(stats.norm.cdf(np.append(fine, 4.0))) * 1e6
    counts, _ = np.histogram(fine, bins=edges, weights=mass)
    body = (edges[:-1] > -2) & (edges[1:] < 2)
    assert (counts[body] == 0).sum() > 20  # the comb
    cells, cell_edges = plots.dealiased(counts, edges)
    assert cells.sum() == counts.sum() and cell_edges[0] == edges[0] and cell_edges[-1] == edges[-1]
    density = cells / cells.sum() / np.diff(cell_edges)
    mids = (cell_edges[:-1] + cell_edges[1:]) / 2
    inner = (mids > -2) & (mids < 2)
    assert (cells[inner] > 0).all()
    # smooth where the comb was (a comb's neighbours differ by 0 or 2x) and close to the true density
    # (within the half fine bin by which a count sits at its fine bin's lower edge)
    ratio = density[inner][1:] / density[inner][:-1]
    assert ((ratio > 0.75) & (ratio < 1.33)).all()
    assert np.allclose(density[inner], stats.norm.pdf(mids[inner]), rtol=0.25)
    raw = counts / counts.sum() / np.diff(edges)
    assert np.abs(np.diff(raw[body])).max() > 5 * np.abs(np.diff(density[inner])).max()
    # a histogram with no comb, or with gaps only where counts are few, is left as it is
    plain = np.array([0, 1, 0, 0, 2, 50, 80, 60, 0, 3, 0], float)
    same, same_edges = plots.dealiased(plain, np.arange(12.0))
    assert np.array_equal(same, plain) and np.array_equal(same_edges, np.arange(12.0))


def _figures(audit):
    """(name, figure, where it is shown) for every figure the report draws."""
    r = audit.results
    units = r["input"]["score"]
    ident, a = r["identification"], r["demographics"]["analyses"][0]
    figs = [("det_identification", plots.det_identification(ident), "grid"),
            ("rates_vs_threshold", plots.rates_vs_threshold(ident, units), "grid"),
            ("cmc", plots.cmc(ident), "grid"),
            ("score_distributions", plots.score_distributions(r["distributions"], units), "grid"),
            ("det_verification", plots.det_verification(r["verification"]), "grid"),
            ("calibration", plots.calibration(r["explain_calibration"], units), "grid"),
            ("bars", demographics_section.bars(a, 10), "wide"),
            ("heatmap", demographics_section.heatmap(a), "natural"),
            ("growth", scale_section.growth_plot(r["scale"]), "grid"),
            ("extrapolation", scale_section.extrapolation_plot(r["scale"]), "grid"),
            ("report_card", scale_section.report_card_plots(r["scale"]), "wide")]
    systems = _systems(ident)
    captured = []
    real = plots.to_data_uri
    try:
        plots.to_data_uri = lambda fig: captured.append(fig) or "data:,"
        compare_html._det(systems, ident["n_mated_searches"])
        compare_html._cmc(systems)
    finally:
        plots.to_data_uri = real
    figs += [("compare_det", captured[0], "grid"), ("compare_cmc", captured[1], "grid")]
    return figs


def _systems(ident):
    c = ident["curve"]
    op = ident["operating_points"][1]
    system = {"det": {"fpir": c["fpir"], "fnir_rank1": c["fnir_rank1"], "fnir_rank1_ci_low": c["fnir_rank1_ci_low"],
                      "fnir_rank1_ci_high": c["fnir_rank1_ci_high"]}, "cmc": ident["cmc"],
              "operating_points": [{"fpir": op["fpir"], "fnir": op["fnir"]["1"]}]}
    return [{**system, "name": "A"}, {**system, "name": "B"}]


def test_dets_are_log_log(audit):
    figs = {name: fig for name, fig, _ in _figures(audit)}
    for name in ("det_identification", "det_verification", "compare_det"):
        ax = figs[name].axes[0]
        assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log"), name
        assert any(type(c).__name__ in ("PolyCollection", "FillBetweenPolyCollection") for c in ax.collections), name


def test_verification_band_is_clopper_pearson(audit):
    from auditcore.intervals import clopper_pearson

    v = audit.results["verification"]  # the audit stores the band; the report only draws it
    fnmr = np.array(v["curve"]["fnmr"], float)
    lo, hi = np.array(v["curve"]["fnmr_ci_low"], float), np.array(v["curve"]["fnmr_ci_high"], float)
    assert lo.shape == hi.shape == fnmr.shape
    k = len(fnmr) // 2
    want = clopper_pearson(round(fnmr[k] * v["n_genuine"]), v["n_genuine"])
    assert (lo[k], hi[k]) == pytest.approx(want) and lo[k] <= fnmr[k] <= hi[k]


def test_no_corner_multiplier_and_text_at_least_10px(audit):
    for name, fig, where in _figures(audit):
        fig.canvas.draw()  # lays out the ticks: their labels and any offset text are set
        texts = [t for t in fig.findobj(lambda o: hasattr(o, "get_fontsize") and hasattr(o, "get_text"))
                 if t.get_visible() and t.get_text().strip()]
        for ax in fig.axes:
            for axis in (ax.xaxis, ax.yaxis):
                assert axis.get_offset_text().get_text() == "", (name, axis.get_offset_text().get_text())
        smallest = min(t.get_fontsize() for t in texts)
        width, _ = core.png_size(core.to_data_uri(fig, dpi=DPI))
        shown = min(width, SHOWN["wide"]) if where == "natural" else SHOWN[where]
        px = smallest / 72 * DPI * shown / width
        assert px >= 10, f"{name}: smallest text {px:.1f} px on a 1280 px page"


def test_warnings_banner_takes_records_and_strings():
    banner = core.warnings_banner([{"code": "small_audit", "text": "only 2 people enrolled"}, "a <b> plain one"])
    assert "Read these 2 warnings first" in banner and "Only 2 people enrolled" in banner
    assert "A &lt;b&gt; plain one" in banner and "small_audit" in banner
    assert core.warnings_banner([]) == "" and core.warnings_banner(None) == ""


def test_thead_and_limited_rows():
    doc = core.with_thead("<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table>")
    assert doc.startswith("<table><thead><tr><th>a</th><th>b</th></tr></thead><tr><td>1")
    rows = [f"<tr><td>{i}</td></tr>" for i in range(20)]
    out = core.limit_rows(rows, 1, keep=12)
    assert out.count("<tr class='more'>") == 8 and "8 more rows not printed" in out
    assert core.limit_rows(rows[:14], 1, keep=12).count("more") == 0
    assert "@media print" in core.CSS and "break-inside:avoid" in core.CSS
    assert "thead{display:table-header-group}" in core.CSS


# --- the report renders what the analyses now write (helper R2) -------------------------------------

def test_explain_rows_stated_as_explain_states_them(audit):
    results = dict(audit.results)
    scale = dict(results["scale"])
    base = {"score": -0.4, "gallery_size": 1_000_000, "prior": 0.5, "not_supported_because": []}
    scale["explain"] = [
        {**base, "p_mate": None, "interval": [0.02, 0.91], "statement": "cannot_say",
         "not_supported_because": ["look-alikes may concentrate"]},
        {**base, "p_mate": None, "interval": [0.2, 0.3], "statement": "range"},
        {**base, "p_mate": 0.25, "interval": [0.2, 0.3], "statement": "figure"},
    ]
    results["scale"] = scale
    page = scale_section.render(results)
    table = page[page.index("What one search result means"):]
    rows = re.findall(r"<tr>(.*?)</tr>", table)[1:]
    assert "these data cannot say" in rows[0] and "0.91" in rows[0] and "<sup>1</sup>" in rows[0]
    assert "cannot say" not in rows[1] and "no single figure: between 0.2 and 0.3" in rows[1]
    assert "0.25 [0.2, 0.3]" in rows[2] and "no single figure" not in rows[2]
    assert "not estimable as one figure" not in page
    assert "<li>look-alikes may concentrate</li>" in table  # the reason, once, under the table


def _people_calibration(cal: dict, calibrated: bool) -> dict:
    out = dict(cal)
    n = len(out["bins"])
    agreeing = [[b["score_low"], b["score_high"]] for b in out["bins"][: n - 1 if not calibrated else n]]
    out.update(calibrated_for_new_people=calibrated, held_out="probe and gallery people", splits=2, resamples=30,
               bins_agreeing=len(agreeing), bins_agreeing_list=agreeing,
               verdict="explain did not hold for people it was not fitted on: 1 score bin disagrees")
    out["bins"] = [{**b, "agree": [b["score_low"], b["score_high"]] in agreeing, "people": 10,
                    "difference": 0.0, "difference_ci_simultaneous": [-0.1, 0.1]} for b in out["bins"]]
    return out


def test_calibration_check_held_out_and_verdict(audit):
    cal = audit.results.get("explain_calibration")
    if not cal or not cal.get("bins"):
        pytest.skip("no calibration bins in this audit")
    results = dict(audit.results)
    results["explain_calibration"] = _people_calibration(cal, calibrated=False)
    section = rhtml.calibration_section(results)
    summary = rhtml.summary(results)
    assert "probe and gallery people held out" in section and "random split(s) of the people" in section and "held-out half's gallery size" in section
    assert "class='warn'><b>Explain did not hold for people it was not fitted on" in section
    last = cal["bins"][-1]
    spans = section[section.index("Score bins that agreed out of sample"):]
    assert f"({len(cal['bins']) - 1} of {len(cal['bins'])})" in spans
    assert rhtml.fmt_threshold(cal["bins"][0]["score_low"]) in spans.split("</p>")[0]
    assert rhtml.fmt_threshold(last["score_high"]) not in spans.split("</p>")[0]
    assert "not calibrated for new people" in summary and "explain did not hold" in summary
    # calibrated: no list of every bin, the verdict still shown
    results["explain_calibration"] = _people_calibration(cal, calibrated=True)
    assert "Score bins that agreed" not in rhtml.calibration_section(results)


def test_verification_says_what_its_intervals_cover(audit):
    results = dict(audit.results)
    v = dict(results["verification"])
    v["fmr_interval"] = {"covers": "new probe people and new gallery people of the same kind", "method": "two-way people"}
    rows = [dict(p) for p in v["fnmr_at_fmr"]]
    k = next(i for i, p in enumerate(rows) if p["measurable"])
    rows[k]["fmr"] = {**rows[k]["fmr"], "method": "two-way people (Korn-Graubard), design effect borrowed from the "
                                                   "threshold with a split by person"}
    v["fnmr_at_fmr"] = rows
    results["verification"] = v
    page = rhtml.verification_section(results)
    assert "they cover new probe people and new gallery people of the same kind" in page
    assert page.count("design effect borrowed from the threshold") == 1
    old = dict(v)
    del old["fmr_interval"]
    assert "they cover this audit's comparisons, not new people" in rhtml.verification_section({**results, "verification": old})


def test_group_cells_write_every_number_in_one_kind():
    from faceaudit.analyses.demographics import rate_words as analysis_words
    for x in (0.25, 0.05, 0.0099, 0.0084, 1 / 120, 3.3e-4, 5.76e-05, 1.2e-7, 1.1e-9, 4.7e-13, 9.0e-26):
        assert demographics_section.rate_words([x]) == [analysis_words(x)]
    # LFW/dlib's female FMR: [4.7e-13, 1.0e-4] was printed "[1 in 2,100,000,000,000, 1 in 9,800]"
    tiny = {"errors": 12, "trials": 2272105, "value": 5.3e-06, "ci": [4.7e-13, 1.0e-4], "too_few": False}
    assert "1 in 190,000 [below 1 in 1,000,000,000, 1 in 10,000]" in demographics_section._cell(tiny)
    zero = {"errors": 0, "trials": 4000, "value": 0.0, "ci": [0.0, 1 / 120], "too_few": False, "upper_bound": 1 / 120,
            "note": "0 of 4,000; upper 95% bound 1 in 120 (the trials count as 480 independent ones)"}
    cell = demographics_section._cell(zero)
    assert "at most 1 in 120" in cell and "0.0083" not in cell
    some = {"errors": 2, "trials": 34702, "value": 5.76e-05, "ci": [1.0e-06, 3.47e-04], "too_few": False}
    assert "1 in 17,000 [1 in 1,000,000, 1 in 2,900]" in demographics_section._cell(some)
    wide = {"errors": 1, "trials": 192, "value": 0.0052, "ci": [1.4e-05, 0.042], "too_few": False}
    text = re.sub(r"<[^>]+>", "", demographics_section._cell(wide))
    assert "0.52% [0.0014%, 4.2%]" in text and "1 in" not in text  # one kind in a cell: its largest end decides


def test_demographic_intervals_as_the_results_describe_them(audit):
    results = dict(audit.results)
    d = dict(results["demographics"])
    a = dict(d["analyses"][0])
    about = {"interval_method": "the range over simultaneous intervals", "interval_covers": "the summary for new people"}
    a["inequity_rate"] = {"value": 3.0, "ci": [1.2, None], "ci_note": "no upper end: some group had no errors", **about}
    a["fdr"] = {"value": 0.9, "ci": [0.8, 1.0], "alpha": 0.5, **about}
    a["fmr_interval"] = {"method": "two-way people", "covers": "new probe people and new gallery people"}
    d["analyses"] = [a]
    results["demographics"] = d
    page = demographics_section.render(results)
    assert "their intervals cover the summary for new people (how: the range over simultaneous intervals)" in page
    assert "not tests" not in page
    assert "[1.2, no upper end]" in page and "no upper end: some group had no errors" in page
    assert "FMR intervals: two-way people; they cover new probe people and new gallery people" in page


def test_flagaudit_report_shows_warnings_and_provenance(tmp_path):
    import json
    import subprocess
    import sys

    from flagaudit.report import render_report
    out = tmp_path / "flag"
    subprocess.run([sys.executable, "-m", "flagaudit", "demo", "--out", str(out)], check=True, capture_output=True,
                   timeout=300)
    results = json.loads((out / "results.json").read_text())
    results["warnings"] = [{"code": "unreviewed", "text": "913 templates await review"}, "a plain warning"]
    page = render_report(results)
    banner = page.index("class='banner'")
    assert banner < page.index('What was audited, and how to re-run it') and "913 templates await review" in page
    assert "A plain warning" in page and "Read these 2 warnings first" in page
    digest = results["provenance"]["inputs"][0]["sha256"]
    assert digest in page and "flagaudit verify" in page
    assert "class='banner'" not in render_report({k: v for k, v in results.items() if k != "warnings"})


def test_calibration_bins_at_the_edges_are_bounds(audit):
    cal = audit.results.get("explain_calibration")
    if not cal or not cal.get("bins"):
        pytest.skip("no calibration bins in this audit")
    people = _people_calibration(cal, calibrated=True)
    b0 = {**people["bins"][0], "observed": 1.0, "top_was_mate": 500, "searches": 500, "observed_ci": [0.985, 1.0]}
    b1 = {**people["bins"][1], "observed": 0.0, "top_was_mate": 0, "searches": 500, "observed_ci": [0.0, 0.0074]}
    # rounded weighted counts: the share shown is results' observed, not their ratio
    b2 = {**people["bins"][2], "observed": 0.412, "top_was_mate": 207, "searches": 500, "observed_ci": [0.37, 0.45]}
    section = rhtml.calibration_section({**audit.results, "explain_calibration": {**people, "bins": [b0, b1, b2]}})
    assert "at least 0.985 <span class='muted'>(95% lower bound)" in section and "1.000 [" not in section
    assert "at most 0.007 <span class='muted'>(95% upper bound)" in section and "0.000 [" not in section
    assert "0.412" in section and "0.414" not in section


def test_cross_group_zero_cell_is_its_bound_and_big_ratios_have_separators(audit):
    a = audit.results["demographics"]["analyses"][0]
    n = len(a["groups"])
    cross = {"rate": [[0.0] + [1e-4] * (n - 1)] + [[1e-4] * n] * (n - 1), "errors": [[0] + [3] * (n - 1)] + [[3] * n] * (n - 1),
             "trials": [[30000] * n] * n, "ci_high": [[2.3e-4] + [3e-4] * (n - 1)] + [[3e-4] * n] * (n - 1),
             "ci_low": [[0.0] + [2e-5] * (n - 1)] + [[2e-5] * n] * (n - 1)}
    fig = demographics_section.heatmap({**a, "cross_fmr": cross})
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts[0].startswith("\u22642.3e-04") and not any(t.split("\n")[0] == "0" for t in texts)
    assert demographics_section._g(11671.2, 3) == "11,700" and demographics_section._g(2.29, 3) == "2.29"


def test_scale_text_names_what_the_table_gives_at_each_size():
    from faceaudit.report.bands import figure_sizes_sentence, fpir_statement
    say = {"gallery_size": 1e9, "fpir": None, "fpir_lo": 0.01, "fpir_hi": 0.95, "estimable": False}
    least = {"gallery_size": 1e8, "fpir": None, "fpir_lo": 0.6, "fpir_hi": 1.0, "estimable": False}
    fig = {"gallery_size": 1e6, "fpir": 0.015, "fpir_lo": 0.01, "fpir_hi": 0.02, "estimable": True}
    assert [fpir_statement(r)["kind"] for r in (say, least, fig)] == ["cannot_say", "at_least", "figure"]
    text = figure_sizes_sentence([say, least, fig], "0.4")
    assert text == ("At threshold 0.4, FPIR is given as one figure at N = 1,000,000; given only as a bound at "
                    "N = 100,000,000; not given: these data cannot say at N = 1,000,000,000")
    assert figure_sizes_sentence([say, {**say, "gallery_size": 1e6}], "0.4") == \
        "At threshold 0.4, FPIR is not given: these data cannot say at all sizes shown"
    assert "bound" not in figure_sizes_sentence([say], "0.4")


def test_lookalike_summary_says_when_its_design_effect_is_borrowed(audit):
    results = dict(audit.results)
    op = results["identification"]["operating_points"][1]
    row = {"threshold": op["threshold"], "gallery_size": 1e6, "expected": 3.1, "expected_ci": [2.0, 4.6], "fmr_count": 4,
           "design_effect_source": "lower threshold"}
    text = rhtml.summary({**results, "lookalikes": [row]})
    assert "design effect borrowed from a lower threshold" in text
    assert "borrowed" not in rhtml.summary({**results, "lookalikes": [{**row, "design_effect_source": "own"}]})


def test_report_computes_no_interval():
    """report/ reads results and never computes (docs/architecture.md): no interval function is
    imported anywhere in it; bands come stored beside their curves."""
    import pathlib
    import re

    import faceaudit.report as rep
    for path in pathlib.Path(rep.__file__).parent.glob("*.py"):
        text = path.read_text()
        assert not re.search(r"auditcore\.intervals|clopper_pearson|beta_interval|korn_graubard", text), path.name


def test_a_greyed_groups_interval_does_not_set_the_bars_axis():
    """LFW/dlib by gender: 'ambiguous' (4 people, FMR at most 6%) and 'unknown' (3) set the FMR
    panel's axis to 60% and left the ranked groups' bars (about 1e-5) invisible."""
    def entry(v, lo, hi, few=False):
        return {"value": v, "ci": [lo, hi], "too_few": few}
    rates = {"fmr": {"ambiguous": entry(0.0, 0.0, 0.06, True), "female": entry(5.3e-6, 4.7e-13, 1.0e-4),
                     "male": entry(2.5e-5, 5.9e-6, 7.0e-5), "unknown": entry(0.0, 0.0, 0.6, True)}}
    a = {"groups": ["ambiguous", "female", "male", "unknown"], "ranked_groups": ["female", "male"], "rates": rates}
    ax = demographics_section.bars(a, 30).axes[0]
    assert ax.get_xlim()[1] == pytest.approx(1.15 * 1.0e-4)
    arrows = [c for c in ax.texts if getattr(c, "arrow_patch", None) is not None]
    assert len(arrows) == 2  # one per greyed group whose interval runs past the axis
    # with no greyed group past the ranked ones, matplotlib's own limits stay
    rates["fmr"]["unknown"] = entry(0.0, 0.0, 5e-5, True)
    rates["fmr"]["ambiguous"] = entry(0.0, 0.0, 5e-5, True)
    ax = demographics_section.bars(a, 30).axes[0]
    assert ax.get_xlim()[1] < 1.15 * 1.0e-4 * 1.2 and not [c for c in ax.texts if getattr(c, "arrow_patch", None)]

"""Expected look-alikes per search: counts by person against brute force, the interval from people
against exact truth in heterogeneous populations (a small version of benchmarks/lookalike_coverage.py),
and one wording of every scale figure for the report's tables, text, summary and the terminal."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from conftest import load_benchmark

from faceaudit.analyses.lookalikes import (INTERVAL_INDEPENDENT, INTERVAL_TWO_WAY, lookalikes, people_counts,
                                           people_interval, two_way_variance)
from faceaudit.data.evalset import validate
from faceaudit.data.protocol import generate_protocol
from faceaudit.engine.counts import exact_bins, hist_edges, score_bin
from faceaudit.engine.local import reference_scores, search
from faceaudit.report.bands import fpir_statement, lookalike_statement


def _study():
    return load_benchmark("lookalike_coverage")


def _hub_evalset(seed: int = 0, n_subj: int = 300, dim: int = 24):
    """People with 1-4 templates; 6% of them near one 'hub' face, so that they attract many
    look-alikes (full candidate lists), on both sides of the search."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_subj, dim))
    hub = rng.standard_normal(dim)
    is_hub = rng.random(n_subj) < 0.06
    centres[is_hub] = hub + 0.6 * rng.standard_normal((int(is_hub.sum()), dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    n_t = rng.integers(1, 5, n_subj)
    x = np.concatenate([centres[i] + 0.3 * rng.standard_normal((n_t[i], dim)) / np.sqrt(dim) for i in range(n_subj)])
    subjects = np.repeat([f"S{i:04d}" for i in range(n_subj)], n_t)
    man = pd.DataFrame({"template_id": [f"t{i}" for i in range(len(subjects))], "subject_id": subjects})
    return validate(x.astype(np.float32), man)


@pytest.mark.parametrize("score,top_k", [("cosine", 5), ("cosine", 1), ("neg_euclidean", 3)])
def test_people_counts_equal_brute_force_and_the_histogram(score, top_k):
    es = _hub_evalset()
    proto = generate_protocol(es, enrol_fraction=0.5, gallery_per_subject=2, seed=1)
    res = search(es, proto, score=score, top_k=top_k)
    probes, gal = res.probe_rows, proto.gallery
    p, g = np.meshgrid(probes, gal, indexing="ij")
    s = reference_scores(es, p.ravel(), g.ravel(), score).reshape(p.shape)
    codes = es.subject_codes
    imp = codes[probes][:, None] != codes[gal][None, :]
    q = np.quantile(s[imp], [0.9, 0.99, 0.999, 0.9999]).astype(np.float32)
    edges = hist_edges()[exact_bins(score_bin(q), score, res.hist_fine_from)].astype(np.float32)
    pc = people_counts(res, es, proto, edges)
    above = np.cumsum(res.impostor_hist[::-1])[::-1]
    _, p_person = np.unique(codes[probes], return_inverse=True)
    _, g_person = np.unique(codes[gal], return_inverse=True)
    pr, gc = np.repeat(p_person, gal.size), np.tile(g_person, probes.size)
    n_cells = np.zeros((p_person.max() + 1, g_person.max() + 1))
    np.add.at(n_cells, (pr, gc), imp.ravel())
    assert np.allclose(pc.n_row, n_cells.sum(1)) and np.allclose(pc.n_col, n_cells.sum(0))
    assert pc.cell_n_sq == pytest.approx((n_cells ** 2).sum())
    for t, e in enumerate(edges):
        hit = imp & (s >= e)
        cells = np.zeros_like(n_cells)
        np.add.at(cells, (pr, gc), hit.ravel())
        mine = np.zeros_like(n_cells)
        np.add.at(mine, (pc.rows, pc.cols), pc.counts[:, t])
        assert (mine == cells).all()
        assert pc.totals()[t] == hit.sum() == above[score_bin(np.float32([e]))[0]]  # the engine's own count


def test_two_way_design_effect_sees_both_kinds_of_people():
    rng = np.random.default_rng(0)
    m_r, m_c = 2000, 1000
    n_row, n_col = np.full(m_r, float(m_c)), np.full(m_c, float(m_r))
    # independent comparisons: design effect about 1
    k = 3000
    cells = rng.choice(m_r * m_c, k, replace=False)
    ind = two_way_variance(cells // m_c, cells % m_c, np.ones(k), np.ones(k), n_row, n_col, float(m_r * m_c))
    assert 0.85 < ind["design_effect"] < 1.2
    # the same count carried by 10 probe people (300 each), or by 10 gallery people
    rows = np.repeat(np.arange(10), 300)
    cols = np.concatenate([rng.choice(m_c, 300, replace=False) for _ in range(10)])
    by_probe = two_way_variance(rows, cols, np.ones(k), np.ones(k), n_row, n_col, float(m_r * m_c))
    by_gallery = two_way_variance(cols, rows, np.ones(k), np.ones(k), np.full(m_c, float(m_r)), np.full(m_r, float(m_c)),
                                  float(m_r * m_c))
    for v in (by_probe, by_gallery):
        assert v["design_effect"] > 200  # about 300: each person carries 300 comparisons
        assert v["degrees_of_freedom"] < 15  # about the ten people who carry the variance
    (iv,) = people_interval([by_probe])
    (ii,) = people_interval([ind])
    assert iv["low"] <= iv["value"] <= iv["high"] and iv["high"] / iv["low"] > 4 > 1.1 > ii["high"] / ii["low"]


def test_coverage_in_heterogeneous_populations_small_study():
    """Small version of ``python benchmarks/lookalike_coverage.py`` (docs/scale.md has the full one):
    where a few probe or gallery people attract most look-alikes, Clopper-Pearson on comparisons
    misses the exact truth most of the time; the interval from people holds it."""
    lc = _study()
    pops = {p.name: p for p in lc.POPULATIONS}
    chosen = ["independent", "0.5% of probes +0.3 (most look-alikes)", "0.5% of gallery people +0.3",
              "0.5% of probes and 0.5% of gallery people +0.3"]
    start = time.perf_counter()
    rows = pd.DataFrame(lc.study([pops[c] for c in chosen], galleries=(1000,), probes=3000, reps=60))
    elapsed = time.perf_counter() - start
    assert elapsed < 40, elapsed  # bounded: the sparse simulation draws only comparisons near the thresholds
    cover = rows.groupby("population")[["old_covered", "new_covered"]].mean()
    assert (cover.new_covered >= 0.9).all(), cover  # 60 audits x 3 thresholds each; the full study: >= 95%
    assert cover.loc["0.5% of probes +0.3 (most look-alikes)", "old_covered"] < 0.7, cover
    assert cover.loc["independent", "old_covered"] >= 0.9
    assert rows.point_inside.all()  # the point always inside its own band


def test_point_inside_band_and_zero_counts_are_bounds():
    es = _hub_evalset(seed=2)
    proto = generate_protocol(es, enrol_fraction=0.5, gallery_per_subject=2, seed=0)
    res = search(es, proto, score="cosine", top_k=20)
    top = float(np.max(res.best_nonmate))
    thresholds = [float(np.quantile(res.best_nonmate, q)) for q in (0.5, 0.9, 0.99)] + [top, top + 0.01]
    rows = lookalikes(res, thresholds, (1e6, 1e9), evalset=es, protocol=proto, n_gallery_templates=proto.gallery.size)
    assert {r["interval"] for r in rows} == {INTERVAL_TWO_WAY}
    for r in rows:
        lo, hi = r["expected_ci"]
        assert lo <= r["expected"] <= hi and hi > 0
        st = lookalike_statement(r["expected"], lo, hi, r["fmr_count"])
        if r["fmr_count"] == 0:
            assert lo == 0 and st["kind"] == "at_most" and "upper bound" in st["text"]
            assert " 0 " not in f" {st['text']} "
    # without people (no evaluation set): Clopper-Pearson, and it says so
    plain = lookalikes(res, thresholds[:1], (1e6,))
    assert plain[0]["interval"] == INTERVAL_INDEPENDENT and plain[0]["expected_ci"] == plain[0]["independent_ci"]


def test_wording_of_bands():
    assert fpir_statement({"fpir": None, "fpir_lo": 0.055, "fpir_hi": 1.0, "estimable": False})["kind"] == "cannot_say"
    st = fpir_statement({"fpir": None, "fpir_lo": 0.9996, "fpir_hi": 1.0, "estimable": False})
    assert st["kind"] == "at_least" and st["text"].startswith("at least 0.999")
    st = fpir_statement({"fpir": None, "fpir_lo": 0.0, "fpir_hi": 9.7e-5, "estimable": False})
    assert st["text"] == "fewer than 1 in 10,000 (95% upper bound)"  # 1/10,000 >= 9.7e-5: a valid bound
    assert fpir_statement({"fpir": 0.02, "fpir_lo": 0.011, "fpir_hi": 0.05, "estimable": True})["kind"] == "figure"
    assert fpir_statement({"fpir_lo": 0.011, "fpir_hi": 0.05})["kind"] == "range"  # no figure given
    # an older folder's look-alike row whose figure came from the tail model, outside its band
    assert lookalike_statement(7.41, 0.86, 3.94)["kind"] == "range"
    assert lookalike_statement(0.0, 0.0, 0.37, 0)["text"] == "fewer than 0.37 per search (95% upper bound)"
    assert lookalike_statement(0.0, 0.0, 0.037, 0)["text"] == "fewer than one per 27 searches (95% upper bound)"
    assert lookalike_statement(0.0, 0.0, 37.2, 0)["text"] == "fewer than 37.2 per search (95% upper bound)"
    assert lookalike_statement(18.7, 16.1, 21.5, 120)["text"] == "18.7 per search (95% interval 16.1 to 21.5)"


@pytest.fixture(scope="module")
def scaled():
    from faceaudit.analyses.scale import add_scale
    from faceaudit.audit import run_audit
    from faceaudit.data.synthetic import make_population
    es, proto, truth = make_population(n_enrolled=300, n_nonenrolled=900, probes_per_nonenrolled=1, seed=3)
    a = run_audit(es, proto, fpir_targets=(0.1, 0.01))
    add_scale(a, n_seeds=1, seed=0, sizes=[25, 60, 150, 300])
    return a, truth


def test_tables_text_summary_and_terminal_agree(scaled):
    from faceaudit.cli.audit import _section_lines
    from faceaudit.report import html as rhtml
    a, truth = scaled
    res = a.results
    for r in res["scale"]["extrapolation"]:
        st = fpir_statement(r)
        assert st["kind"] == r["statement"] and (r["fpir"] is not None) == (st["kind"] == "figure") == r["estimable"]
        assert r["expected_lo"] <= r["expected_impostors_above_threshold"] <= r["expected_hi"]
        assert r["expected_lo"] <= r["gallery_size"] * truth.fmr(r["threshold"]) <= r["expected_hi"]
    for r in res["lookalikes"]:
        assert r["interval"] == INTERVAL_TWO_WAY and r["expected_ci"][0] <= r["expected"] <= r["expected_ci"][1]
    page = rhtml.render_report(res)
    for r in res["scale"]["extrapolation"]:
        assert rhtml.esc(fpir_statement(r)["text"]) in page
    if all(fpir_statement(r)["kind"] != "figure" for r in res["scale"]["extrapolation"]):
        assert "one figure at N =" not in page and "every size shown" not in page
    op = min(res["identification"]["operating_points"], key=lambda o: abs(np.log(o["target_fpir"] / 0.01)))
    at_1e6 = next(r for r in res["scale"]["extrapolation"] if r["threshold"] == op["threshold"] and r["gallery_size"] == 1e6)
    st = fpir_statement(at_1e6)
    terminal = dict((name, value) for name, _, value in _section_lines(res))
    summary = rhtml.summary(res)
    if st["kind"] == "cannot_say":
        assert "cannot say" in terminal["FPIR, 1 million (extrapolated)"] and "cannot say" in summary
    else:
        assert st["text"] in terminal["FPIR, 1 million (extrapolated)"] and rhtml.esc(st["text"]) in summary
    look = next(r for r in res["lookalikes"] if r["threshold"] == op["threshold"])
    words = lookalike_statement(look["expected"], *look["expected_ci"], look["fmr_count"])["text"]
    assert words in terminal["look-alikes per search, 1 million"] and rhtml.esc(words) in summary


def test_older_results_folders_still_render(scaled):
    import copy

    from faceaudit.report import html as rhtml
    a, _ = scaled
    old = copy.deepcopy(a.results)
    for r in old["lookalikes"]:
        for key in ("fmr_ci", "interval", "independent_ci", "design_effect", "effective_comparisons",
                    "probe_people", "gallery_people", "design_effect_source"):
            r.pop(key, None)
    for r in old["scale"]["extrapolation"]:
        for key in ("statement", "expected_statement", "expected_count", "expected_interval", "fmr_ci"):
            r.pop(key, None)
        r["fpir"], r["estimable"] = r["fpir_model"], True  # an old folder's figure, whatever its band
    for v in old["scale"]["validation"]:
        v.pop("figure_prediction", None)
        v.pop("figure_verdict", None)
    bad = old["scale"]["extrapolation"][0]
    bad["expected_impostors_above_threshold"], bad["expected_lo"], bad["expected_hi"] = 7.41, 0.86, 3.94
    page = rhtml.render_report(old)
    assert "7.41" not in page and "between 0.86 and 3.94 per search" in page

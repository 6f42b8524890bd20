"""Two models' quality studies compared (faceaudit.analyses.quality_compare, ``faceaudit compare STUDY_A STUDY_B``).

Two fake models (no data needed: the fake of tests/test_quality.py, and a coarser one) run the
same study on the same synthetic people, and SFace against SFace-with-noisier-templates on ORL; every paired figure is recounted here from the two
``searches.parquet`` files with pandas (a failed search a miss and never a false positive),
McNemar against scipy's binomtest, the people interval from per-person counts made here.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from test_quality import _DarkBlind, _people, needs_orl_sface
from test_quality import _items as _orl_items
from typer.testing import CliRunner

from auditcore.intervals import paired_difference
from faceaudit.analyses import quality as q
from faceaudit.analyses import quality_compare as qc
from faceaudit.models import degrade as deg

LEVELS = ["size:16,8", "blur:1", "dark:6"]


class _Coarse:
    """A second fake model: the same face finder, a 4 x 4 template of block means."""

    def __new__(cls):
        adapter = _DarkBlind()

        def embed(chip):
            g = chip.astype(np.float32).mean(axis=2)
            return g.reshape(4, 8, 4, 8).mean(axis=(1, 3)).ravel() - 90.0
        adapter.embed = embed
        adapter.name = adapter.kind = "coarse"
        return adapter


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    from faceaudit.audit import run_audit
    images = _people(tmp_path_factory.mktemp("people"), n_people=12, per=4)
    out = tmp_path_factory.mktemp("studies")
    paths = []
    for name, model in (("fine", _DarkBlind()), ("coarse", _Coarse())):
        study = q.run_quality_study(images, model, deg.parse_specs(LEVELS), run_audit=run_audit, workers=1, n_boot=100)
        paths.append(q.write_study(study, out / name, report=False))
    return paths


@pytest.fixture(scope="module")
def result(studies):
    return qc.compare_studies(*studies, n_boot=200, seed=1)


def _errors(table: pd.DataFrame, threshold: float, rank: int = 1) -> tuple[pd.Series, pd.Series]:
    f = table["failed"]
    hit = (table["mate_score"] >= threshold) & (table["mate_rank"] <= rank) & ~f
    fp = (table["best_nonmate_score"] >= threshold) & ~f
    return table["mated"] & ~hit, ~table["mated"] & fp


def test_paired_differences_equal_counts_from_the_two_tables(studies, result):
    assert [e["label"] for e in result["levels"]] == ["clean", "size:16", "size:8", "blur:1", "dark:6"]
    assert _check_against_tables(studies, result) == 5 * 3 * 3
    dark = result["levels"][-1]  # every probe fails in the dark: both models miss every mate, no candidate
    for point in dark["paired"]:
        assert point["fnir_rank1"]["a"]["errors"] == point["fnir_rank1"]["a"]["trials"] > 0
        assert point["fpir"]["a"]["errors"] == point["fpir"]["b"]["errors"] == 0
        assert point["fpir"]["ci"][0] < 0 < point["fpir"]["ci"][1]  # never [0, 0]
    assert dark["models"][0]["failure_to_enrol"]["failed"] == dark["models"][0]["failure_to_enrol"]["attempts"]


def _check_against_tables(studies, result) -> int:
    """Every paired figure recounted from the two searches.parquet files; returns how many were checked."""
    ra, rb = (json.loads((p / "results.json").read_text()) for p in studies)
    ta, tb = (pd.read_parquet(p / "searches.parquet") for p in studies)
    checked = 0
    for k, level in enumerate(result["levels"]):
        la = ta[ta["level"] == level["label"]].set_index("template_id")
        lb = tb[tb["level"] == level["label"]].set_index("template_id").loc[la.index]
        mated = la["mated"].to_numpy()
        for j, point in enumerate(level["paired"]):
            thr_a, thr_b = ra["deployed_thresholds"][j]["threshold"], rb["deployed_thresholds"][j]["threshold"]
            assert point["threshold_a"] == thr_a and point["threshold_b"] == thr_b
            for key, rank in (("fnir_rank1", 1), ("fnir_rank20", 20), ("fpir", None)):
                (ma, fa), (mb, fb) = _errors(la, thr_a, rank or 1), _errors(lb, thr_b, rank or 1)
                sel = mated if rank else ~mated
                wa, wb = (ma if rank else fa).to_numpy()[sel], (mb if rank else fb).to_numpy()[sel]
                c = point[key]
                assert c["a"]["errors"] == wa.sum() and c["b"]["errors"] == wb.sum() and c["a"]["trials"] == sel.sum()
                assert c["difference"] == pytest.approx((wa.sum() - wb.sum()) / sel.sum())
                only_a, only_b = int((wa & ~wb).sum()), int((wb & ~wa).sum())
                assert (c["only_a_wrong"], c["only_b_wrong"]) == (only_a, only_b)
                p = 1.0 if only_a + only_b == 0 else stats.binomtest(only_a, only_a + only_b, 0.5).pvalue
                assert c["mcnemar_p"] == pytest.approx(p)
                people = pd.DataFrame({"s": la["subject_id"].to_numpy()[sel], "a": wa, "b": wb}).groupby("s")
                ref = paired_difference(people["a"].sum(), people["b"].sum(), people.size(), 0.95)
                assert c["ci"] == pytest.approx([ref["low"], ref["high"]])
                assert c["ci"][0] <= c["difference"] <= c["ci"][1]
                checked += 1
            # each model's side is its own study's figure, and equals the counts from its table
            for side, (r, table) in enumerate(((ra, la), (rb, lb))):
                op = level["models"][side]["operating_points"][j]
                study_op = r["levels"][k]["identification"]["operating_points"][j]
                assert op["fpir"] == study_op["fpir"] and op["fnir_rank1"] == study_op["fnir"]["1"]
                miss, fp = _errors(table, study_op["threshold"])
                assert op["fnir_rank1"]["errors"] == miss.sum() and op["fpir"]["errors"] == fp.sum()
    return checked


@needs_orl_sface
def test_on_orl_sface_against_sface_with_a_noisier_template(tmp_path):
    """ORL (4 people x 8 photos), SFace and a fake second system: SFace's detector and alignment, its
    template plus seeded noise (so the same images enrol and the protocol is the same)."""
    import zlib

    from faceaudit.audit import run_audit
    from faceaudit.models.registry import load_adapter
    noisy = load_adapter("sface")
    base_embed = noisy.embed

    def embed(chip):
        t = np.asarray(base_embed(chip), np.float64)
        z = np.random.default_rng(zlib.crc32(np.ascontiguousarray(chip).tobytes())).normal(size=t.size)
        return (t + 0.8 * np.linalg.norm(t) / np.sqrt(t.size) * z).astype(np.float32)
    noisy.embed = embed
    paths = []
    for name, model in (("sface", "sface"), ("noisy", noisy)):
        study = q.run_quality_study(_orl_items(), model, deg.parse_specs(["size:24,16", "jpeg:10"]),
                                    run_audit=run_audit, workers=1, n_boot=100)
        paths.append(q.write_study(study, tmp_path / name, report=False))
    result = qc.compare_studies(*paths, n_boot=200)
    assert _check_against_tables(paths, result) == 4 * 3 * 3
    errors = [p["fnir_rank1"]["only_a_wrong"] + p["fnir_rank1"]["only_b_wrong"] + p["fpir"]["only_a_wrong"]
              + p["fpir"]["only_b_wrong"] for e in result["levels"] for p in e["paired"]]
    assert sum(errors) > 0  # the two systems differ on some searches: the pairing is exercised


def test_one_sentence_per_level_follows_from_the_figures(result):
    assert len(result["summary"]) == len(result["levels"])
    assert result["summary"][1].startswith("With the face 16 pixels wide (each model at the threshold set for FPIR 1%")
    for level, sentence in zip(result["levels"], result["summary"]):
        c = next(p for p in level["paired"] if p["target_fpir"] == 0.01)["fnir_rank1"]
        if c["verdict"] == "significant":
            assert "errs more often" in sentence
        elif c["verdict"] == "not significant":
            assert "cannot tell the two models apart" in sentence
        side = next(o for o in level["models"][0]["operating_points"] if o["target_fpir"] == 0.01)["fnir_rank1"]
        if side["errors"] == 0:  # no error: the study's own bound over its searches, never 0
            assert f"none of {side['trials']} searches (at most {q._pct(side['ci_high'])})" in sentence
        else:
            assert f"{q._pct(side['value'])} of searches ({side['errors']} of {side['trials']})" in sentence


def test_cli_writes_the_folder_and_report(studies, tmp_path):
    from faceaudit.cli import app
    out = tmp_path / "cmp"
    r = CliRunner().invoke(app, ["compare", str(studies[0]), str(studies[1]), "--out", str(out), "--n-boot", "200"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["comparison.json", "report.html", "summary.txt"]
    data = json.loads((out / "comparison.json").read_text())
    assert data["kind"] == "quality_comparison"
    html = (out / "report.html").read_text()
    assert html.count("<img") == 3 * 3  # size, blur and dark x three headlines (one level is plotted too)
    assert "fine" in html and "coarse" in html and data["summary"][0] in html.replace("&#x27;", "'")


def _invoke(*args):
    from faceaudit.cli import app
    return CliRunner().invoke(app, ["compare", *map(str, args)])


def test_different_studies_are_one_line_exit_2(studies, tmp_path):
    a, b = studies
    other = tmp_path / "other"
    shutil.copytree(b, other)
    res = json.loads((b / "results.json").read_text())
    res["levels"] = [e for e in res["levels"] if e["label"] != "blur:1"]
    (other / "results.json").write_text(json.dumps(res))
    r = _invoke(a, other, "--out", tmp_path / "x")
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1
    assert "level blur:1 is there and not here" in r.output
    res = json.loads((b / "results.json").read_text())
    res["protocol"]["seed"] = 7
    (other / "results.json").write_text(json.dumps(res))
    r = _invoke(a, other, "--out", tmp_path / "x")
    assert r.exit_code == 2 and "not the same protocol" in r.output and "seed" in r.output
    res = json.loads((b / "results.json").read_text())
    res["provenance"]["degradations"][0]["operation"] = "something else"
    (other / "results.json").write_text(json.dumps(res))
    r = _invoke(a, other, "--out", tmp_path / "x")
    assert r.exit_code == 2 and "level size:16's operation" in r.output
    audit = tmp_path / "audit"
    audit.mkdir()
    (audit / "results.json").write_text(json.dumps({"kind": "audit"}))
    r = _invoke(a, audit, "--out", tmp_path / "x")
    assert r.exit_code == 2 and "is not a quality study" in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()

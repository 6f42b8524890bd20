"""The CLI end to end: demo, audit, and every bad input of issue 2 (one line, exit 2, no output)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import with_options
from typer.testing import CliRunner

from faceaudit.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_demo_writes_results_that_recompute(tmp_path):
    out = tmp_path / "demo"
    result = run("demo", "--out", out)
    assert result.exit_code == 0, result.output
    assert "report:" in result.output and str(out) in result.output
    for name in ("results.json", "searches.parquet", "candidates.parquet", "scores.npz", "report.html"):
        assert (out / name).is_file(), name
    results = json.loads((out / "results.json").read_text())
    searches = pd.read_parquet(out / "searches.parquet")
    nonmated = searches[~searches.mated]
    mated = searches[searches.mated]
    for op in results["identification"]["operating_points"]:
        t = op["threshold"]
        assert op["fpir"]["errors"] == int((nonmated.best_nonmate_score >= t).sum())
        assert op["fpir"]["trials"] == len(nonmated)
        assert op["fpir"]["errors"] <= np.floor(op["target_fpir"] * len(nonmated))
        misses = (mated.mate_score < t) | (mated.mate_rank > 1)
        assert op["fnir"]["1"]["errors"] == int(misses.sum())
    # candidates: rank-1 candidate of each search is its best-scoring subject
    cands = pd.read_parquet(out / "candidates.parquet")
    top = cands[cands["rank"] == 1].set_index("probe_template_id")["score"]
    best = searches.set_index("template_id")
    expect = np.where(best.mated, np.maximum(best.mate_score, best.best_nonmate_score), best.best_nonmate_score)
    np.testing.assert_allclose(top.loc[best.index].to_numpy(), expect, rtol=0, atol=0)
    html = (out / "report.html").read_text()
    assert "searches of people not in the gallery returned someone anyway" in html
    assert "Synthetic data" in html
    assert "http://" not in html and "https://" not in html  # self-contained, offline
    checks = results["synthetic"]["checks"]
    assert sum(c["inside_ci"] for c in checks) >= len(checks) - 3


def test_audit_end_to_end_and_fte(tiny_files, tmp_path):
    es, write = tiny_files
    t, m = write()
    out = tmp_path / "out"
    result = run("audit", "--templates", t, "--manifest", m, "--out", out, "--seed", 3)
    assert result.exit_code == 0, result.output
    base = json.loads((out / "results.json").read_text())
    # failures: one of an enrolled subject, two of people not enrolled
    searches = pd.read_parquet(out / "searches.parquet")
    enrolled = searches[searches.mated].subject_id.iloc[0]
    other = searches[~searches.mated].subject_id.iloc[0]
    failures = pd.DataFrame({"template_id": ["f1", "f2", "f3"], "subject_id": [enrolled, other, other],
                             "reason": ["no face found"] * 3})
    fpath = tmp_path / "failures.csv"
    failures.to_csv(fpath, index=False)
    out2 = tmp_path / "out2"
    result = run("audit", "--templates", t, "--manifest", m, "--out", out2, "--seed", 3, "--failures", fpath)
    assert result.exit_code == 0, result.output
    with_fte = json.loads((out2 / "results.json").read_text())
    b, w = base["identification"], with_fte["identification"]
    assert w["n_mated_searches"] == b["n_mated_searches"] + 1
    assert w["n_nonmated_searches"] == b["n_nonmated_searches"] + 2
    b_thr = b["at_thresholds"]
    op_b, op_w = b["operating_points"][0], w["operating_points"][0]
    assert op_w["fnir"]["1"]["trials"] == op_b["fnir"]["1"]["trials"] + 1
    assert with_fte["failure_to_enrol"]["failed"] == 3
    out3 = tmp_path / "out3"
    result = run("audit", "--templates", t, "--manifest", m, "--out", out3, "--seed", 3, "--failures", fpath,
                 "--no-fta-as-miss", "--threshold", 0.5)
    assert result.exit_code == 0, result.output
    left_out = json.loads((out3 / "results.json").read_text())
    assert left_out["identification"]["n_mated_searches"] == b["n_mated_searches"]
    assert left_out["identification"]["at_thresholds"][0]["threshold"] == 0.5
    assert b_thr == []


def _bad_cases(es):
    man = es.manifest
    nan = es.templates.copy()
    nan[2, 0] = np.nan
    inf = es.templates.copy()
    inf[1, 3] = np.inf
    zero = es.templates.copy()
    zero[4] = 0
    dup = man.copy()
    dup.loc[3, "template_id"] = dup.loc[2, "template_id"]
    one_subject_each = man.copy()
    one_subject_each["subject_id"] = [f"p{i}" for i in range(len(man))]
    return {
        "mismatched rows": (es.templates[:-1], man, "rows"),
        "NaN": (nan, man, "NaN"),
        "infinite": (inf, man, "infinite"),
        "all-zero": (zero, man, "all zeros"),
        "duplicate id": (es.templates, dup, "duplicate template_id"),
        "missing column": (es.templates, man.drop(columns=["subject_id"]), "subject_id"),
        "empty gallery": (es.templates, one_subject_each, "empty gallery"),
    }


@pytest.mark.parametrize("case", ["mismatched rows", "NaN", "infinite", "all-zero", "duplicate id",
                                  "missing column", "empty gallery"])
def test_bad_input_one_line_exit_2_no_output(tiny_files, tmp_path, case):
    es, write = tiny_files
    templates, manifest, words = _bad_cases(es)[case]
    t, m = write(templates, manifest, name=case.replace(" ", "_"))
    out = tmp_path / "out"
    result = run("audit", "--templates", t, "--manifest", m, "--out", out)
    assert result.exit_code == 2
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert words in lines[0]
    assert (str(t) in lines[0]) or (str(m) in lines[0])
    assert not out.exists()
    assert not list(tmp_path.glob(".out.tmp-*"))


def test_no_nonmated_probes_and_bad_paths(tiny_files, tmp_path):
    es, write = tiny_files
    t, m = write()
    out = tmp_path / "out"
    # every probe's subject enrolled: explicit protocol with all subjects in the gallery
    first = es.manifest.groupby("subject_id").head(1)
    proto = pd.DataFrame({"template_id": es.manifest.template_id,
                          "role": np.where(es.manifest.template_id.isin(first.template_id), "gallery", "probe")})
    ppath = tmp_path / "proto.csv"
    proto.to_csv(ppath, index=False)
    for args, words in [
        (["--protocol", ppath], "no non-mated probes"),
        (["--templates", tmp_path / "nope.npy"], "not found"),
        (["--manifest", tmp_path / "nope.csv"], "not found"),
    ]:
        cmd = ["audit", *with_options({"--templates": t, "--manifest": m, "--out": out}, args)]
        result = run(*cmd)
        assert result.exit_code == 2 and words in result.output, result.output
        assert not out.exists()


@pytest.mark.parametrize("content,suffix,words", [
    (b"hello", ".txt", "unsupported template format"),
    (b"not a numpy file", ".npy", "cannot read templates"),
    (None, ".npy", "2-d"),
])
def test_wrong_format(tiny_files, tmp_path, content, suffix, words):
    es, write = tiny_files
    _, m = write()
    bad = tmp_path / f"bad{suffix}"
    if content is None:
        np.save(bad, np.zeros(5, np.float32))
    else:
        bad.write_bytes(content)
    result = run("audit", "--templates", bad, "--manifest", m, "--out", tmp_path / "out")
    assert result.exit_code == 2 and words in result.output and str(bad) in result.output
    assert not (tmp_path / "out").exists()


def test_failed_write_leaves_nothing(tiny_files, tmp_path, monkeypatch):
    import faceaudit.report.html as report
    es, write = tiny_files
    t, m = write()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(report, "write_report", boom)
    out = tmp_path / "out"
    monkeypatch.setenv("FACEAUDIT_CACHE", str(tmp_path / "cache"))
    result = run("audit", "--templates", t, "--manifest", m, "--out", out)
    assert result.exit_code == 1 and "internal error" in result.output
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []
    # the traceback went to the cache folder named by the environment, not the user's home
    assert [p.name.startswith("faceaudit-crash-") for p in (tmp_path / "cache").iterdir()] == [True]

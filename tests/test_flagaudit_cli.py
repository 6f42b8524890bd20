"""flagaudit's command line as a person runs it: in a pseudo-terminal (pexpect), exit status,
one-line errors for bad input with nothing half-written, and no traceback ever."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pexpect
import pytest

from conftest import REPO, shared_data

KEYWORDS = REPO / "src" / "flagaudit" / "data" / "demo_keywords.txt"


def run_pty(*args, timeout=240):
    """Run ``python -m flagaudit ARGS`` in a pty; return (exit status, output)."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), COLUMNS="120")
    child = pexpect.spawn(sys.executable, ["-m", "flagaudit", *map(str, args)], env=env, encoding="utf-8",
                          timeout=timeout, dimensions=(40, 120))
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, child.before


def test_demo_in_a_terminal(tmp_path):
    out = tmp_path / "demo"
    status, text = run_pty("demo", "--out", out)
    assert status == 0, text
    assert "Traceback" not in text
    assert "false-flag rate:" in text and "report:" in text
    for name in ("results.json", "cases.parquet", "report.html"):
        assert (out / name).is_file()
    res = json.loads((out / "results.json").read_text())
    cases = pd.read_parquet(out / "cases.parquet")
    benign = cases[cases["role"] == "benign"]
    # the results folder recomputes: overall and per-test false-flag counts from the per-case table
    assert res["rates"]["false_flag"]["overall"]["errors"] == int(benign["flagged"].sum())
    for test, g in benign.groupby("functionality"):
        assert res["rates"]["false_flag"]["functionality"]["groups"][test]["errors"] == int(g["flagged"].sum())
    assert res["network"]["hops"]["1"]["mean"] > 0
    assert "Network expansion" in (out / "report.html").read_text()
    _new_figures_and_verify(out, text, tmp_path)


def _write_flags(path: Path, ids, flagged, score=None):
    df = pd.DataFrame({"case_id": ids, "flagged": np.asarray(flagged).astype(int)})
    if score is not None:
        df["score"] = score
    df.to_csv(path, index=False)


def test_flags_import_and_cases_export(tmp_path):
    cases_csv = tmp_path / "cases.csv"
    status, text = run_pty("cases", "--suite", "benign-traps", "--out", cases_csv)
    assert status == 0 and "Traceback" not in text, text
    ids = pd.read_csv(cases_csv)["case_id"]
    rng = np.random.default_rng(0)
    flagged = rng.random(len(ids)) < 0.25
    _write_flags(tmp_path / "flags.csv", ids, flagged, score=rng.random(len(ids)))
    out = tmp_path / "res"
    status, text = run_pty("audit", "--suite", "benign-traps", "--flags", tmp_path / "flags.csv", "--out", out,
                           "--base-rate", "0.001", "--base-rate", "0.01", "--posts-per-day", "50000", "--n-boot", "200")
    assert status == 0 and "Traceback" not in text, text
    res = json.loads((out / "results.json").read_text())
    assert res["rates"]["false_flag"]["overall"]["errors"] == int(flagged.sum())
    assert [r["base_rate"] for r in res["volume"]["rows"]] == [0.001, 0.01]
    assert res["scores"]["operating_points"][0]["threshold"] is not None


BAD = {
    "unknown suite": (["--suite", "hatecheq", "--keywords", KEYWORDS], "unknown suite 'hatecheq'"),
    "bad regex": (["--suite", "benign-traps", "--keywords", "BADRE"], "regular expression does not compile"),
    "base rate": (["--suite", "benign-traps", "--keywords", KEYWORDS, "--base-rate", "1.5"],
                  "base rate must be strictly between 0 and 1"),
    "base rate zero": (["--suite", "benign-traps", "--keywords", KEYWORDS, "--base-rate", "0"],
                       "base rate must be strictly between 0 and 1"),
    "graph": (["--suite", "benign-traps", "--keywords", KEYWORDS, "--graph", "BADGRAPH"], "an edge needs two account ids"),
    "flags missing": (["--suite", "benign-traps", "--flags", "SHORTFLAGS"], "have no flag"),
    "flags extra": (["--suite", "benign-traps", "--flags", "EXTRAFLAGS"], "not in the suite"),
    "two systems": (["--suite", "benign-traps", "--keywords", KEYWORDS, "--flags", "SHORTFLAGS"],
                    "give exactly one system under test"),
    "no data": (["--suite", "hatecheck", "--keywords", KEYWORDS], "give --data DIR"),
    "not skops": (["--suite", "benign-traps", "--model", "NOTSKOPS"], "not a skops model file"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, case):
    args, message = BAD[case]
    (tmp_path / "bad_re.txt").write_text("kill\nre:(unclosed\n")
    (tmp_path / "graph.txt").write_text("a b\nlonely\n")
    (tmp_path / "model.skops").write_bytes(b"\x80\x04not a zip")
    from flagaudit.suites import load_benign_traps
    ids = load_benign_traps()[0]["case_id"]
    _write_flags(tmp_path / "short.csv", ids[:-3], np.zeros(len(ids) - 3))
    _write_flags(tmp_path / "extra.csv", list(ids) + ["benign-traps:nope-1"], np.zeros(len(ids) + 1))
    subst = {"BADRE": tmp_path / "bad_re.txt", "BADGRAPH": tmp_path / "graph.txt", "SHORTFLAGS": tmp_path / "short.csv",
             "EXTRAFLAGS": tmp_path / "extra.csv", "NOTSKOPS": tmp_path / "model.skops"}
    args = [subst.get(a, a) if isinstance(a, str) else a for a in args]
    out = tmp_path / "out"
    status, text = run_pty("audit", *args, "--out", out, "--n-boot", "50")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert status == 2, text
    assert "Traceback" not in text
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], text
    assert not out.exists()
    assert not list(tmp_path.glob(".out.tmp-*"))


@pytest.mark.skipif(shared_data() is None or not (shared_data() / "hatecheck").is_dir(),
                    reason="HateCheck data not found (../shared/data/hatecheck or $FACEAUDIT_DATA)")
def test_audit_hatecheck_with_keywords_in_a_terminal(tmp_path):
    out = tmp_path / "hc"
    status, text = run_pty("audit", "--suite", "hatecheck", "--suite", "benign-traps", "--keywords", KEYWORDS,
                           "--data", shared_data(), "--out", out, "--n-boot", "300", "--mean-degree", "10",
                           "--graph-nodes", "2000")
    assert status == 0 and "Traceback" not in text, text
    res = json.loads((out / "results.json").read_text())
    cases = pd.read_parquet(out / "cases.parquet")
    threats = cases[cases["role"] == "threat"]
    assert len(threats) == 273
    assert res["rates"]["miss"]["overall"]["errors"] == int((~threats["flagged"]).sum())


def test_skops_model_in_a_terminal(tmp_path):
    sio = pytest.importorskip("skops.io")
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    texts = ["I will kill you", "we will shoot them all", "lovely day", "going to the rally", "I will hurt them",
             "pray for peace", "they must die", "my visa arrived", "te voy a matar", "que tengas buen día"]
    y = [1, 1, 0, 0, 1, 0, 1, 0, 1, 0]
    model = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, y)
    sio.dump(model, tmp_path / "m.skops")
    out = tmp_path / "res"
    status, text = run_pty("audit", "--suite", "benign-traps", "--model", tmp_path / "m.skops", "--out", out,
                           "--n-boot", "100")
    assert status == 0 and "Traceback" not in text, text
    res = json.loads((out / "results.json").read_text())
    cases = pd.read_parquet(out / "cases.parquet")
    assert cases["flagged"].tolist() == model.predict(cases["text"].tolist()).astype(bool).tolist()
    assert np.allclose(cases["score"], model.predict_proba(cases["text"].tolist())[:, 1])
    assert res["system"]["has_scores"] and res["scores"]["curve"]["n_benign"] == len(cases)


def _new_figures_and_verify(out, text, tmp_path):
    """The demo's new figures (#29, #27.7), then flagaudit verify on its folder."""
    import jsonschema

    res = json.loads((out / "results.json").read_text())
    schema = json.loads((REPO / "src" / "flagaudit" / "results.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(res)
    html = (out / "report.html").read_text()
    assert res["schema_version"] == 2 and res["provenance"]["command"][:2] == ["flagaudit", "demo"]
    assert all(i["sha256"] for i in res["provenance"]["inputs"])
    # one base rate in terminal and report, per suite
    head = res["per_suite"]["benign-traps"]["volume"]["headline"]["sentence"]
    assert head in text.replace("\r\n", "\n").replace("\n  ", " ") or head.split(",")[0] in text
    assert head.split(" posts a day")[0] in html
    assert "counter_ref_nh" not in html and "Threshold-free bias" in html and "counterfactual invariance" in html
    # every chart at its own pixel size and narrower than the page at 1280 px (1,004 px of content):
    # text drawn at >= 8 pt at 110 dpi is then >= 12 px on screen
    import re
    widths = [int(w) for w in re.findall(r'<img src="data:image/png;base64,[^"]*" style="width:(\d+)px', html)]
    assert widths and len(widths) == html.count("<img ") and max(widths) <= 1004
    n = res["network"]
    assert n["n_nodes"] == 50_000 and all(r["distinct"][h]["high"] <= n["n_nodes"] for r in n["per_day"]
                                             for h in ("1", "2", "3"))
    # verify: identical (exit 0), then a changed figure (exit 1)
    status, text = run_pty("verify", out)
    assert status == 0 and "identical" in text, text
    res["rates"]["false_flag"]["overall"]["errors"] += 1
    (out / "results.json").write_text(json.dumps(res))
    cases = pd.read_parquet(out / "cases.parquet")
    cases.loc[0, "flagged"] = not cases.loc[0, "flagged"]
    cases.to_parquet(out / "cases.parquet", index=False)
    status, text = run_pty("verify", out)
    assert status == 1 and "rates.false_flag.overall.errors" in text, text
    assert "cases.parquet: values differ in column(s) flagged" in text, text
    status, text = run_pty("verify", tmp_path)
    assert status == 2 and "error:" in text

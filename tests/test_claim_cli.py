"""``faceaudit claim`` as typed: verdict lines, --json, the --out report, bad claims one line (exit 2), in a pty."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO
from test_vendor_claims import cp, world  # noqa: F401  (the module's fixture)
from typer.testing import CliRunner

from faceaudit.cli import app


def _op(folder, i=1):
    return json.loads((folder / "results.json").read_text())["identification"]["operating_points"][i]


def test_json_output_has_every_field(world):  # noqa: F811
    op = _op(world["tmpl"])
    t = repr(op["threshold"])
    r = CliRunner().invoke(app, ["claim", str(world["tmpl"]), "--fpir", "10%", "--fpir", "1 in 1000", "--threshold", t,
                                 "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert len(data) == 2
    for e in data:
        assert {"claim", "figure", "threshold", "errors", "trials", "value", "ci_low", "ci_high", "verdict",
                "trials_needed"} <= set(e)
        assert (e["errors"], e["trials"]) == (op["fpir"]["errors"], op["fpir"]["trials"])
    lo, hi = cp(op["fpir"]["errors"], op["fpir"]["trials"])
    assert data[0]["verdict"] == ("supported" if hi <= 0.1 else "not shown")
    assert data[1]["verdict"] == ("contradicted" if lo > 0.001 else "not shown")
    assert data[0]["claim"] == f"FPIR at most 10% at threshold {op['threshold']:.6g}"


def test_out_writes_a_small_report_atomically(world, tmp_path):  # noqa: F811
    op = _op(world["tmpl"])
    out = tmp_path / "claims"
    args = ["claim", str(world["tmpl"]), "--fnir", "0.9", "--at-fpir", "0.01", "--group", "sex", "--out", str(out)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == [".faceaudit-output.json", "claims.html", "claims.json"]
    data = json.loads((out / "claims.json").read_text())
    assert data["claims"][0]["errors"] == op["fnir"]["1"]["errors"]
    html = (out / "claims.html").read_text()
    assert "per sex" in html and "NIST SP 800-63A-4" in html and "http" not in html
    # an existing report is replaced only with --overwrite
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2 and r.output.count("\n") == 1
    assert CliRunner().invoke(app, [*args, "--overwrite"]).exit_code == 0


@pytest.mark.parametrize("args,msg", [
    (["--fpir", "1.5", "--threshold", "0.5"], "a rate must be between 0 and 1"),
    (["--fpir", "ten percent", "--threshold", "0.5"], "cannot read 'ten percent'"),
    (["--fpir", "0.1", "--threshold", "7"], "outside the scores this audit observed"),
    (["--fmr", "0.1", "--threshold", "0.7"], "did not measure FMR"),
    (["--fpir", "0.1", "--distance", "0.5"], "--distance is for a distance audit"),
    (["--fpir", "0.1"], "give the threshold the claim is stated at"),
    (["--fpir", "0.1", "--threshold", "0.7", "--group", "race"], "not 'race'"),
    (["--fpir", "0.1", "--threshold", "0.7", "--operational-gallery-size", "lots"], "cannot read 'lots'"),
])
def test_bad_claims_one_line_exit_2(world, args, msg):  # noqa: F811
    r = CliRunner().invoke(app, ["claim", str(world["bb"]), *args])
    assert r.exit_code == 2, r.output
    assert r.output.count("\n") == 1 and msg in r.output and "Traceback" not in r.output


def test_in_a_terminal(world):  # noqa: F811
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    t = repr(_op(world["tmpl"])["threshold"])
    cmd = (f"{sys.executable} -m faceaudit.cli claim {world['tmpl']} --fpir 0.1 --fpir 0.01 --fpir 0.001 --threshold {t} "
           "--operational-gallery-size 1e6")
    run = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = [x for x in run.stdout.splitlines() if x.startswith("- ")]
    assert len(lines) == 3 and "NIST SP 800-63A-4" in lines[0] and "Traceback" not in run.stdout
    for bad in ("--fpir 2", "--fpir 0.1 --bogus"):  # a bad claim; a mistyped option (the parser's own error)
        cmd = f"{sys.executable} -m faceaudit.cli claim {world['tmpl']} {bad} --threshold {t}"
        run = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True, env=env, timeout=120, check=False)
        assert run.returncode == 2 and len(run.stdout.strip().splitlines()) == 1 and "error" in run.stdout, run.stdout


def test_a_damaged_results_json_is_one_line(world, tmp_path):  # noqa: F811
    r = json.loads((world["tmpl"] / "results.json").read_text())
    t = r["identification"]["operating_points"][0]["threshold"]
    for damage in ({"threshold": "x"}, {"fpir": {"errors": "3"}}, {"fpir": {"errors": 0, "trials": 0}}):
        bad = json.loads(json.dumps(r))
        bad["identification"]["operating_points"][0].update(damage)
        (tmp_path / "results.json").write_text(json.dumps(bad))
        out = CliRunner().invoke(app, ["claim", str(tmp_path), "--fpir", "0.1", "--threshold", repr(t)])
        assert out.exit_code == 2 and out.output.count("\n") == 1 and "error:" in out.output, out.output


def test_the_worked_example_of_docs_claims_md(tmp_path):
    """The demo's operating point for FPIR 0.1% (4 of 4,000): 1% supported, 0.1% not shown, 0.01% contradicted;
    0.2% needs 7,633 non-mated searches (docs/claims.md quotes these lines)."""
    from faceaudit.audit import write_results
    from faceaudit.demo import run_demo
    folder = write_results(run_demo(seed=0, scale=False), tmp_path / "faceaudit-demo", report=False)
    r = CliRunner().invoke(app, ["claim", str(folder), "--fpir", "1%", "--fpir", "0.1%", "--fpir", "0.01%",
                                 "--fpir", "0.2%", "--threshold", "0.4092", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert [(e["errors"], e["trials"]) for e in data] == [(4, 4000)] * 4
    assert [e["verdict"] for e in data] == ["supported", "not shown", "contradicted", "not shown"]
    assert data[3]["trials_needed"]["trials"] == 7633 and data[3]["trials_needed"]["people"] == 7633
    docs = (REPO / "docs" / "claims.md").read_text()
    for e in data:
        assert e["sentence"] in docs

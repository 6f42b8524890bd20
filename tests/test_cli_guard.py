"""Command-line mistakes are one line in a real terminal; a replacement killed half-way loses
nothing and leaves nothing behind; flagaudit's refusals name flagaudit."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run_pty(*argv, timeout: int = 120) -> tuple[int, list[str]]:
    """A command in a pseudo-terminal, as a person runs it: exit status and non-empty lines."""
    child = pexpect.spawn(sys.executable, ["-m", *map(str, argv)], encoding="utf-8", timeout=timeout,
                          dimensions=(40, 100))
    child.expect(pexpect.EOF)
    child.close()
    text = ANSI.sub("", child.before or "")
    return child.exitstatus, [ln for ln in text.replace("\r", "").splitlines() if ln.strip()]


@pytest.mark.parametrize("argv, message", [
    (["faceaudit", "audit", "--templates", "t.npy", "--manifest", "m.csv", "--out", "o", "--memory-mb", "0"],
     "Invalid value for '--memory-mb'"),
    (["faceaudit", "audit", "--templates", "t.npy", "--manifest", "m.csv"], "Missing option '--out'"),
    (["faceaudit", "audti"], "No such command 'audti'"),
    (["faceaudit", "explain", "--results", "r", "--score", "abc", "--gallery-size", "10"], "'--score'"),
    (["flagaudit.cli", "audit", "--suite", "benign-traps", "--out", "o", "--base-rate", "abc"],
     "Invalid value for '--base-rate'"),
    (["flagaudit.cli", "audit", "--suite", "benign-traps", "--out", "o", "--min-trials", "-1"],
     "Invalid value for '--min-trials'"),
    (["flagaudit.cli", "audit", "--suite", "benign-traps", "--out", "o", "--no-such-flag"], "No such option"),
])
def test_usage_errors_are_one_line_in_a_terminal(tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    status, lines = run_pty(*argv)
    assert status == 2 and len(lines) == 1, lines
    assert lines[0].startswith("error: ") and message in lines[0] and "--help" in lines[0], lines
    assert not (tmp_path / "o").exists()


def test_help_and_a_bare_command_are_unchanged(tmp_path):
    status, lines = run_pty("faceaudit", "--help")
    assert status == 0 and lines[0].startswith("Usage:")
    status, lines = run_pty("faceaudit")  # no arguments: the help, exit 2 (click's rule, as before)
    assert status == 2 and lines[0].startswith("Usage:") and any("audit" in ln for ln in lines)


def test_brackets_in_a_message_are_text():
    """A message naming ``[auth]`` or ``[bold]`` prints them; rich markup never eats them."""
    import typer

    from auditcore.cli import CommandLine

    guard = CommandLine("faceaudit", stop_note="-", memory_hint="-")
    with guard.console.capture() as seen, pytest.raises(typer.Exit):
        guard.fail("adapter.toml: [auth] must be a table; [bold]x")
    assert seen.get().strip() == "error: adapter.toml: [auth] must be a table; [bold]x"


# ---------------------------------------------------------------- a replacement killed half-way
KILLED_REPLACEMENT = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import auditcore.outdir as outdir
    out, when = Path(sys.argv[1]), sys.argv[2]
    real_replace, real_rmtree = os.replace, outdir.shutil.rmtree
    def replace(a, b):
        real_replace(a, b)
        if when == "between-renames" and Path(b).name == "x":
            os.kill(os.getpid(), signal.SIGKILL)   # the previous results moved aside, the new not yet in
    def rmtree(path, *a, **k):
        if when == "before-cleanup" and ".old-" in str(path):
            os.kill(os.getpid(), signal.SIGKILL)   # the new results in place, the previous not yet removed
        return real_rmtree(path, *a, **k)
    outdir.os.replace = replace
    outdir.shutil.rmtree = rmtree
    with outdir.atomic_folder(out, overwrite=True, kind="audit") as tmp:
        (tmp / "results.json").write_text('{"run": "second"}')
""")


def _first_run(out: Path) -> None:
    from auditcore.outdir import atomic_folder

    with atomic_folder(out, kind="audit") as tmp:
        (tmp / "results.json").write_text('{"run": "first"}')


@pytest.mark.parametrize("when, survivor", [("between-renames", "first"), ("before-cleanup", "second")])
def test_a_kill_during_overwrite_loses_nothing_and_is_cleaned_up(tmp_path, when, survivor):
    from auditcore.outdir import atomic_folder

    out = tmp_path / "res"
    _first_run(out)
    script = tmp_path / "kill.py"
    script.write_text(KILLED_REPLACEMENT)
    proc = subprocess.run([sys.executable, str(script), str(out), when], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert [p.name for p in tmp_path.glob(".res.old-*")], "the kill left the previous results aside"
    # the next run into the same place: the previous results are back (or the finished run's
    # are kept), the hidden folder is gone, and the run replaces what it should
    with atomic_folder(out, overwrite=True, kind="audit") as tmp:
        assert json.loads((out / "results.json").read_text())["run"] == survivor
        (tmp / "results.json").write_text('{"run": "third"}')
    assert json.loads((out / "results.json").read_text())["run"] == "third"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kill.py", "res"]


def test_a_folder_aside_that_is_not_ours_is_never_touched(tmp_path):
    from auditcore.outdir import remove_stale_temporaries

    out = tmp_path / "res"
    mine = tmp_path / ".res.old-abc"
    (mine / "x").mkdir(parents=True)
    (mine / "x" / "precious.txt").write_text("the user's")  # no output marker: not faceaudit's results
    (mine / ".faceaudit-tmp").write_text("999999999")
    remove_stale_temporaries(out)
    assert (mine / "x" / "precious.txt").read_text() == "the user's" and not out.exists()


def test_flagaudit_names_itself_when_it_refuses_a_folder(tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    proc = subprocess.run([sys.executable, "-m", "flagaudit.cli", "demo", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "not written by flagaudit" in proc.stderr and "faceaudit" not in proc.stderr

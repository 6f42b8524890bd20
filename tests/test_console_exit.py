"""The console entry points end the process through ``auditcore.run_then_exit``: the command runs,
its exit status and errors pass through unchanged, the collector's full passes are rarer while it
runs, and its view is frozen before the interpreter's teardown (which otherwise spends about 0.4
CPU-s of a short audit collecting the libraries' long-lived objects)."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest

from auditcore import FULL_COLLECTION_EVERY, run_then_exit


@pytest.fixture(autouse=True)
def _unfreeze():
    gc.unfreeze()
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()  # this test process lives on: let the collector see those objects again
    gc.set_threshold(*thresholds)


def test_command_runs_and_its_exit_passes_through_then_frozen():
    calls = []

    def command():
        calls.append((gc.get_freeze_count(), gc.get_threshold()[2]))
        raise SystemExit(3)

    gc.set_threshold(700, 10, 10)
    with pytest.raises(SystemExit) as stop:
        run_then_exit(command)
    assert stop.value.code == 3 and calls == [(0, FULL_COLLECTION_EVERY)] and FULL_COLLECTION_EVERY > 10
    assert gc.get_freeze_count() > 0


def test_errors_pass_through_and_still_frozen():
    with pytest.raises(KeyError):
        run_then_exit(lambda: {}["missing"])
    assert gc.get_freeze_count() > 0


@pytest.mark.parametrize("module", ["faceaudit.cli", "flagaudit.cli"])
def test_both_clis_end_through_it(module, monkeypatch):
    mod = __import__(module, fromlist=["main"])
    seen = []
    monkeypatch.setattr(mod, "run_then_exit", lambda command: seen.append(command) or run_then_exit(command))
    monkeypatch.setattr(sys, "argv", [module.split(".")[0], "--help"])
    with pytest.raises(SystemExit) as stop:
        mod.main()
    assert stop.value.code == 0 and seen == [mod.app] and gc.get_freeze_count() > 0


def test_a_real_audit_still_writes_everything_and_exits_0(tmp_path):
    out = tmp_path / "res"
    run = subprocess.run([sys.executable, "-m", "faceaudit.cli", "demo", "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    for name in ("results.json", "searches.parquet", "candidates.parquet", "scores.npz", "report.html"):
        assert (out / name).stat().st_size > 0, name

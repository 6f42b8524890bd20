"""benchmarks/bench_vs_bob.py: the end-to-end comparison with numpy + bob.measure runs and prints its
table (faceaudit half always; the bob.measure half only where its own environment exists, never
created in CI). No timing is asserted."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO

SCRIPT = REPO / "benchmarks" / "bench_vs_bob.py"
_spec = importlib.util.spec_from_file_location("bench_vs_bob", SCRIPT)
bvb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bvb)

BOB_VENV = Path(os.environ.get("FACEAUDIT_BOB_VENV", bvb.DEFAULT_BOB_VENV))


def _bob_available() -> bool:
    python = BOB_VENV / "bin" / "python"
    return python.exists() and subprocess.run([str(python), "-c", "import bob.measure, pandas, pyarrow"],
                                              capture_output=True).returncode == 0


def _run(args, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, str(SCRIPT), *args, "--json", str(tmp_path / "out.json")],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=600)


def test_quick_faceaudit_half_prints_the_table_in_a_terminal(tmp_path):
    # as a person runs it: in a real terminal (script(1) gives it a pty)
    cmd = f"{sys.executable} {SCRIPT} --quick --no-bob --json {tmp_path / 'out.json'}"
    run = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO / "src")}, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert "Traceback" not in out + run.stderr
    assert "OPENBLAS_CORETYPE=" in out and "bob.measure half not run: --no-bob" in out
    assert "| run " in out and "| faceaudit audit " in out and "1e+06" in out and "4e+06" in out
    assert "DIR rank 1 at T=0.4375" in out and "numpy + bob.measure" not in out
    rep = json.loads((tmp_path / "out.json").read_text())
    assert len(rep["runs"]["faceaudit"]) == 1 and rep["runs"]["bob"] == []
    assert "(fixed cost)" in out and len(rep["runs"]["tiny"]) == 1 and rep["fixed_cost_cpu_s"] > 0
    # the libraries' share of it: a Python that only imports the command's modules
    assert "imports only (its modules, no work)" in out and len(rep["runs"]["imports"]) == 1
    assert 0 < rep["imports_cpu_s"] < rep["fixed_cost_cpu_s"]
    assert rep["big"]["faceaudit"]["rc"] == 0 and rep["big"]["faceaudit"]["peak_rss_mib"] > 0


@pytest.mark.skipif(not _bob_available(),
                    reason=f"no bob.measure environment at {BOB_VENV} (set FACEAUDIT_BOB_VENV; the benchmark "
                           "creates one on demand, CI does not)")
def test_quick_with_bob_measure_agrees(tmp_path):
    run = _run(["--quick", "--skip-big", "--bob-venv", str(BOB_VENV)], tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "| numpy + bob.measure " in run.stdout and "bob / faceaudit" in run.stdout
    rep = json.loads((tmp_path / "out.json").read_text())
    figures = {r["figure"]: r for r in rep["figures"]}
    assert all(r["ok"] for r in rep["figures"]), rep["figures"]
    assert any(k.startswith("EER") for k in figures) and "CMC rank 20" in figures
    dir_row = figures["DIR rank 1 at T=0.4375 (1 - FNIR)"]
    assert 0 < dir_row["faceaudit"] < 1  # a figure with something to agree on


def test_agreement_bounds_reject_a_count_outside_them():
    fa = {"dir_misses": 5, "dir_amb": 1, "dir_rank1": 0.95, "fpir_errors": 3, "fpir_amb": 0, "fpir": 0.03,
          "cmc": [0.96], "cmc_misses": [4], "cmc_amb": 0}
    bob = {"dir_misses": 6, "dir_rank1": 0.94, "fpir_errors": 3, "fpir": 0.03, "cmc": [0.96], "cmc_misses": [4]}
    rows = bvb.compare(fa, bob, 0.5, 1e-5)
    assert [r["ok"] for r in rows] == [True, True, True]  # one search within eps of a decision may flip
    bob["dir_misses"] = 7
    bob["cmc_misses"] = [3]
    assert [r["ok"] for r in bvb.compare(fa, bob, 0.5, 1e-5)] == [False, True, False]


def test_impostor_and_genuine_bounds_by_hand():
    # sparse histogram: bins starting at these edges; threshold 0.5 is an edge
    fa = {"_edge": np.array([0.25, 0.4999, 0.5, 0.5001, 0.75]), "_count": np.array([10, 3, 2, 4, 1]),
          "_gen": np.array([0.49995, 0.5, 0.6, 0.2])}
    # eps 1e-6: bins at or above 0.500001 surely count (5); the bin at 0.5 may hold a score a numpy
    # rounding puts below 0.5, and the bin at 0.4999 may reach up to 0.5: at most 5 + 2 + 3
    assert bvb.impostor_bounds(fa, 0.5, 1e-6) == (4 + 1, 4 + 1 + 2 + 3)
    assert bvb.impostor_bounds(fa, 0.5, 2e-4) == (1, 20)
    assert bvb.genuine_bounds(fa, 0.5, 1e-6) == (2, 3)  # 0.5 itself may round either way
    assert bvb.genuine_bounds(fa, 0.5, 1e-4) == (1, 3)


def test_synthetic_set_has_the_designed_scores(tmp_path):
    bvb.write_set(tmp_path, n_gallery=2000, n_probes=400, dim=128, seed=3)
    x = np.load(tmp_path / "templates.npy").astype(np.float64)
    assert np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-6)
    genuine = np.einsum("pd,pd->p", x[2000:2200], x[:200])  # mated probes vs their gallery templates
    assert abs(genuine.mean() - 0.5) < 0.02 and 0.07 < genuine.std() < 0.13  # 2 Beta(55.5, 18.5) - 1
    impostor = x[2200:] @ x[:2000].T  # non-mated probes: uniform, so s.d. 1/sqrt(128)
    assert abs(impostor.mean()) < 0.005 and abs(impostor.std() - 128**-0.5) < 0.005


def test_an_uncreatable_bob_venv_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    python, reason = bvb.ensure_bob_venv(blocker / "venv")
    assert python is None and "\n" not in reason and "venv" in reason

"""The engine's kernels compiled ahead of time by the build (setup.py's build_py): the first command
after install compiles nothing.

Builds the package with setup.py's hook into a temporary folder (what ``pip install .`` puts in the
wheel), then runs ``faceaudit audit`` from that folder with numba's cache where an installed
package has it (``__pycache__`` beside ``_kernel.py``, no ``NUMBA_CACHE_DIR``), counting numba's
compilations in the command's process: none, for both scores, with per-group thresholds (the
demographics) and the scale passes. With one kernel's cache files removed, the same count sees
that kernel compile (the check can fail).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import exact_evalset, load_benchmark

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("setuptools", reason="setup.py's build hook needs setuptools")

@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The package as setup.py's build_py leaves it (kernels compiled into its __pycache__)."""
    dest = tmp_path_factory.mktemp("built")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    proc = subprocess.run([sys.executable, "setup.py", "-q", "build_py", "-d", str(dest)], check=False, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "numba compilations of the engine's kernels cached" in proc.stdout, proc.stdout + proc.stderr[-2000:]
    return dest


@pytest.fixture(scope="module")
def labelled_set(tmp_path_factory):
    folder = tmp_path_factory.mktemp("set")
    es = exact_evalset(n_subjects=40, per_subject=4)
    man = es.manifest.copy()
    man["sex"] = np.where(man.subject_id.str[1:].astype(int) % 2 == 0, "F", "M")
    np.save(folder / "t.npy", es.templates)
    man.to_csv(folder / "m.csv", index=False)
    return folder


def run_counting(built: Path, args: list, tmp_path: Path) -> dict:
    """Runs one faceaudit command from ``built`` in a child, with bench_startup.py's probe of
    numba's compile events; returns ``compiled``, the kernels compiled (once per compilation)."""
    probe = load_benchmark("bench_startup")._COMPILE_PROBE
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "NUMBA_DISABLE_JIT")}
    env["PYTHONPATH"] = str(built)
    report = tmp_path / "compiled.json"
    proc = subprocess.run([sys.executable, "-c", probe, str(report), *map(str, args)], check=False, cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(report.read_text())
    assert Path(res["faceaudit_file"]).resolve().is_relative_to(built.resolve())  # the built copy ran
    return {"compiled": [name for name, sigs in res["signatures"].items() for _ in sigs]}


def test_the_build_carries_every_kernel_compiled(built):
    cache = built / "faceaudit" / "engine" / "__pycache__"
    indexes = {p.name.split("-")[0] for p in cache.glob("_kernel.*.nbi")}
    for name in ("reduce_tile", "genuine_block", "assemble_candidates", "reference_pairs", "normalise_rows",
                 "sq_norms", "tile_tables"):
        assert f"_kernel.{name}" in indexes
    assert list(cache.glob("_kernel.reduce_tile-*.nbc"))


@pytest.mark.parametrize("score, extra", [
    ("cosine", ["--group-by", "sex", "--min-group-size", "5", "--scale"]),
    ("neg_euclidean", []),
])
def test_first_command_after_the_build_compiles_nothing(built, labelled_set, tmp_path, score, extra):
    res = run_counting(built, ["audit", "--templates", labelled_set / "t.npy", "--manifest", labelled_set / "m.csv",
                               "--score", score, "--out", tmp_path / "out", *extra], tmp_path)
    assert res["compiled"] == []
    assert (tmp_path / "out" / "report.html").exists()


def test_a_kernel_missing_from_the_cache_is_seen_compiling(built, labelled_set, tmp_path):
    copy = tmp_path / "built"
    shutil.copytree(built, copy)
    for p in (copy / "faceaudit" / "engine" / "__pycache__").glob("_kernel.assemble_candidates-*"):
        p.unlink()
    res = run_counting(copy, ["audit", "--templates", labelled_set / "t.npy", "--manifest", labelled_set / "m.csv",
                              "--out", tmp_path / "out"], tmp_path)
    assert res["compiled"] == ["assemble_candidates"]


def test_an_installed_faceaudit_carries_its_kernels_compiled():
    """What pip installed (the wheel's RECORD, not files numba wrote since) holds the compiled
    kernels: the build hook ran in pip's isolated build environment. An editable install has no
    package files in its RECORD (numba caches beside the source on first use): skipped."""
    from importlib.metadata import files

    recorded = [str(f) for f in files("faceaudit") or []]
    if not any(f.endswith("faceaudit/engine/_kernel.py") for f in recorded):
        pytest.skip("faceaudit is installed in editable mode: no wheel, nothing compiled at build")
    cached = [f for f in recorded if "faceaudit/engine/__pycache__/_kernel." in f]
    for name in ("reduce_tile", "genuine_block", "reference_pairs", "normalise_rows"):
        assert any(f"_kernel.{name}-" in f and f.endswith(".nbi") for f in cached), (name, cached)
        assert any(f"_kernel.{name}-" in f and f.endswith(".nbc") for f in cached), (name, cached)

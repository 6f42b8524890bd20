"""The engine benchmarks run and print every figure (tiny sizes; no timing is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_bench_engine_prints_ratios_against_blas_on_its_tiles_and_in_large_calls(tmp_path):
    out = tmp_path / "figures.json"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_engine.py"), "--gallery", "3000",
                           "--probes", "300", "--dim", "32", "--repeat", "1", "--coretypes", "default",
                           "--json", str(out)], check=False, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "engine / BLAS tiles" in proc.stdout and "OPENBLAS_CORETYPE default" in proc.stdout
    fig = json.loads(out.read_text())["default"]
    for score in ("cosine", "neg_euclidean"):
        f = fig[score]
        assert f["comparisons"] == 3000 * 300
        assert f["engine_M_per_cpu_s"] > 0 and f["blas_tiles_M_per_cpu_s"] > 0
        assert 0 <= f["recomputed_fraction"] <= 1
    assert fig["blas"], "the OpenBLAS kernel that ran is reported"


def test_bench_reduce_prints_blas_and_reduction_per_comparison(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_reduce.py"), "--gallery", "3000",
                           "--rows", "64", "--dim", "32", "--repeat", "1", "--audit-probes", "300",
                           "--json", str(tmp_path / "reduce.json")],
                          check=False, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    fig = json.loads((tmp_path / "reduce.json").read_text())  # what bench_all.py's targets read
    assert fig["dim"] == 32 and fig["blas"]
    for f in fig["scores"].values():
        assert f["at_floor"] == pytest.approx(fig["floor_ns"] / f["engine_ns"])
        assert f["at_blas"] == pytest.approx(f["blas_ns"] / f["engine_ns"])
        assert 0 <= f["recomputed"] <= 1
    every = [ln for ln in proc.stdout.splitlines() if "ns/comparison" in ln]
    lines = [ln for ln in every if "of its floor" not in ln]
    assert [ln.split()[0] for ln in lines] == ["cosine", "floor", "neg_euclidean"]
    # issue 31's ratio: the engine's tile time against the floor's, each score once, and it is
    # the quotient of the two times printed beside it
    ratios = [ln for ln in every if "of its floor" in ln]
    assert [ln.split()[0] for ln in ratios] == ["cosine", "neg_euclidean"]
    for ln in ratios:
        ratio = float(ln.split("at ")[1].split()[0])
        floor_ns = float(ln.split("bin and count ")[1].split()[0])
        engine_ns = float(ln.split("engine ")[1].split(")")[0])
        assert ratio == pytest.approx(floor_ns / engine_ns, abs=0.002)
    for ln in lines[::2]:
        assert "BLAS / (BLAS + reduction)" in ln and "recomputed" in ln
    # the floor: BLAS on the same tiles, then only binning and counting each score; it costs
    # something, and less than the engine's whole reduction of the same tiles
    def figure(line, label):
        return float(line.split(label)[1].split()[0].rstrip(";):"))
    floor, cosine = lines[1], lines[0]
    assert "BLAS + bin and count only" in floor and "ceiling" in floor
    assert 0 < figure(floor, "(counting") < figure(cosine, "(reduction")
    assert 0 < figure(floor, "BLAS / (BLAS + counting)") <= 1


def test_bench_all_states_each_target_of_issue_31_against_the_run():
    from conftest import load_benchmark

    bench_all = load_benchmark("bench_all")
    fig = {"dim": 128, "blas": ["openblas", "SkylakeX"], "floor_ns": 3.6,
           "scores": {"cosine": {"at_floor": 0.9, "at_blas": 0.7}, "neg_euclidean": {"at_floor": 0.899, "at_blas": 0.7}}}
    big = {**fig, "dim": 512, "scores": {"cosine": {"at_floor": 0.8, "at_blas": 0.85},
                                         "neg_euclidean": {"at_floor": 0.8, "at_blas": 0.84}}}
    text = bench_all._targets({"reduce_json": {"default d=128": fig, "default d=512": big},
                               "startup": {"median_cpu_s": {"warm": 1.01}, "installed_over_warm": 1.5}})
    lines = text.splitlines()[1:]
    assert [ln.rsplit(", ", 1)[1] for ln in lines] == ["met", "not met", "met", "not met", "not met", "met"]
    assert "0.900 of its floor" in lines[0] and "0.840 of BLAS" in lines[3] and "1.01 CPU-s" in lines[4]

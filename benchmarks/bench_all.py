"""Every engine figure of docs/engine.md in one run: speed, scale, memory, end to end.

    python benchmarks/bench_all.py [--quick] [--big] [--bob-venv PATH | --no-bob] [--json FILE]

Runs, one after the other (each in its own processes, so their peaks do not mix):

1. ``bench_engine.py`` for the OpenBLAS kernel as the environment has it and with
   ``OPENBLAS_CORETYPE`` unset (``default,unset``; on a machine where it is preset these differ):
   BLAS alone on the engine's tiles and in large calls, the engine, their ratio in CPU-seconds;
   then ``bench_reduce.py``: the hot loop alone (one thread, BLAS on a tile against its reduction,
   per comparison), and the floor (BLAS, then only binning and counting every score), with the
   engine's ratio to its floor and to BLAS: at d = 128 with the OpenBLAS kernel as the environment
   has it and with ``OPENBLAS_CORETYPE`` unset, and at d = 512;
   then ``bench_startup.py``: ``faceaudit audit`` on 20 x 200 warm (the fixed cost), as first run
   after ``pip install .`` (the kernels compiled by the build) and with an empty numba cache (the
   first run of a wheel built on another CPU), per kernel's compile time and per phase;
2. ``bench_scale.py``: loading a 1,000,000-row evaluation set and the whole ``faceaudit audit``
   at 10,000 x 1,000,000 x 128-d (1e10), peak resident memory; with ``--big`` also 100,000 probes
   (1e11, about 6 minutes of 2 cores);
3. ``bench_vs_bob.py``: ``faceaudit audit`` against numpy + bob.measure at 1e8 (and faceaudit
   alone at 1e9), when a bob.measure environment exists or can be made (``--bob-venv``).

and prints one summary at the end, headed by the machine's CPU, its BLAS kernel and the load
average. ``--quick`` shrinks every size (a smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _run(cmd: list[str], env: dict | None = None) -> str:
    print("$", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env)
    sys.stdout.write(proc.stdout)
    if proc.returncode:
        sys.stdout.write(proc.stderr[-3000:])
        return ""
    return proc.stdout


def _targets(figures: dict) -> str:
    """#31's targets against this run's figures, one line each."""
    lines = ["targets (#31), this run:"]
    red = figures.get("reduce_json", {})

    def verdict(x, target, higher=True):
        ok = x >= target if higher else x <= target
        return "met" if ok else "not met"

    for key, fig in red.items():
        for score, f in fig["scores"].items():
            if fig["dim"] == 128 and f.get("at_floor") is not None:
                lines.append(f"  engine at {f['at_floor']:.3f} of its floor, {key} ({fig['blas'][1] if fig['blas'] else '?'}), "
                             f"{score}: target 0.9, {verdict(f['at_floor'], 0.9)}")
            if fig["dim"] == 512:
                lines.append(f"  engine at {f['at_blas']:.3f} of BLAS, {key} ({fig['blas'][1] if fig['blas'] else '?'}), "
                             f"{score}: target 0.85, {verdict(f['at_blas'], 0.85)}")
    st = figures.get("startup")
    if st:
        med = st["median_cpu_s"]
        lines.append(f"  warm fixed cost of `faceaudit audit` 20 x 200: {med['warm']:.2f} CPU-s: target 1.0, "
                     f"{verdict(med['warm'], 1.0, higher=False)}")
        lines.append(f"  first run after `pip install .`: {st['installed_over_warm']:.2f}x the warm run: target 1.5x, "
                     f"{verdict(st['installed_over_warm'], 1.5, higher=False)}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--big", action="store_true", help="also the 1e11-comparison audit")
    ap.add_argument("--bob-venv", default=None)
    ap.add_argument("--no-bob", action="store_true", help="bench_vs_bob.py's faceaudit half only")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    py = sys.executable
    figures: dict = {"preset_OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE")}
    with tempfile.TemporaryDirectory() as tmp:
        eng = Path(tmp) / "engine.json"
        size = ["--gallery", "20000", "--probes", "300", "--repeat", "1"] if args.quick else ["--probes", "1000"]
        if _run([py, str(HERE / "bench_engine.py"), *size, "--coretypes", "default,unset", "--json", str(eng)]):
            figures["engine"] = json.loads(eng.read_text())
        quick = ["--gallery", "20000", "--repeat", "1"] if args.quick else []
        unset = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
        figures["reduce"], figures["reduce_json"] = [], {}
        for setting, dim, env in (("default", 128, None), ("unset", 128, unset), ("default", 512, None)):
            rj = Path(tmp) / f"reduce_{setting}_{dim}.json"
            red = _run([py, str(HERE / "bench_reduce.py"), "--dim", str(dim), *quick, "--json", str(rj)], env=env)
            figures["reduce"] += [f"[{setting} OpenBLAS kernel, d = {dim}] {ln.strip()}" for ln in red.splitlines()
                                  if "ns/comparison" in ln or ln.startswith(("256 ", f"{256} "))]
            if red and rj.exists():
                figures["reduce_json"][f"{setting} d={dim}"] = json.loads(rj.read_text())
        out = _run([py, str(HERE / "bench_startup.py"), "--rounds", "1" if args.quick else "3",
                    "--json", str(Path(tmp) / "startup.json")])
        if out and (Path(tmp) / "startup.json").exists():
            figures["startup"] = json.loads((Path(tmp) / "startup.json").read_text())
        scales = [("1e10", ["--probes", "10000"])] if not args.quick else [("quick", ["--gallery", "20000", "--probes", "500"])]
        if args.big and not args.quick:
            scales.append(("1e11", ["--probes", "100000"]))
        for name, extra in scales:
            out = _run([py, str(HERE / "bench_scale.py"), *extra])
            lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
            figures[f"scale_{name}"] = {k: v for d in lines for k, v in d.items()}
        bob = Path(tmp) / "bob.json"
        cmd = [py, str(HERE / "bench_vs_bob.py"), "--json", str(bob)]
        if args.quick:
            cmd.append("--quick")
        if args.bob_venv:
            cmd += ["--bob-venv", args.bob_venv]
        if args.no_bob:
            cmd.append("--no-bob")
        if _run(cmd) and bob.exists():
            figures["vs_bob"] = json.loads(bob.read_text())

    machine = figures.get("startup", {}).get("machine", {})
    print(f"\n== summary (CPU {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores; BLAS "
          f"{machine.get('blas', '?')}; OPENBLAS_CORETYPE preset: {figures['preset_OPENBLAS_CORETYPE']}; "
          f"load average {figures.get('startup', {}).get('load_after', '?')})")
    for setting in ("default", "unset"):
        fig = figures.get("engine", {}).get(setting)
        if not fig:
            continue
        for score in ("cosine", "neg_euclidean"):
            f = fig[score]
            print(f"engine {setting:8s} {score:14s} kernel {fig['blas'][0][1] if fig['blas'] else '?'}: "
                  f"engine / BLAS on its tiles {f['engine_over_blas_tiles']}, engine / faster BLAS "
                  f"{f['engine_over_best_blas']} ({f['engine_M_per_cpu_s']} M comparisons per CPU-s)")
    for line in figures.get("reduce", []):
        print(f"hot loop alone (one thread): {line}")
    st = figures.get("startup")
    if st:
        med = st["median_cpu_s"]
        print(f"faceaudit audit on 20 x 200: warm {med['warm']:.2f} CPU-s (target 1.0), first run after `pip install .` "
              f"{med['installed']:.2f} ({st['installed_over_warm']:.2f}x warm; target 1.5x), first run with an empty "
              f"numba cache (a wheel built on another CPU) {med['cold']:.2f} ({st['cold_over_warm']:.1f}x warm), "
              f"imports alone {med['imports']:.2f}")
    print(_targets(figures))
    for key, val in figures.items():
        if key.startswith("scale_") and "audit" in val:
            a = val["audit"]
            print(f"{key:10s} faceaudit audit {a.get('n_comparisons', 0):.3g} comparisons: {a.get('wall_s')} s wall, "
                  f"{a.get('cpu_s')} CPU-s, peak {a.get('peak_rss_mib')} MiB; loading {val.get('loading', {})}")
    if "vs_bob" in figures:
        b = figures["vs_bob"]
        if "ratio_cpu" in b:
            print(f"vs numpy + bob.measure (1e8, or smaller with --quick): bob / faceaudit {b['ratio_cpu']:.2f}x in CPU-s, "
                  f"{b['ratio_wall']:.2f}x in wall time")
        if "imports_cpu_s" in b:
            print(f"faceaudit audit's fixed cost {b['fixed_cost_cpu_s']:.2f} CPU-s, of which importing its modules "
                  f"{b['imports_cpu_s']:.2f}" + (f"; a 10x margin: {b['runs_bob_cpu_s'] / 10:.2f} CPU-s in all"
                                                  if b.get("runs_bob_cpu_s") else ""))
        big = b.get("big", {}).get("faceaudit")
        if big:
            print(f"faceaudit audit at {b['big'].get('n', 0):.0e}: peak {big.get('peak_rss_mib', 0):.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str))


if __name__ == "__main__":
    main()

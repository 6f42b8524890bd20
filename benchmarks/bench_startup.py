"""A command's fixed cost, and the first run after install against later ones (CPU-seconds).

    python benchmarks/bench_startup.py [--rounds 3] [--demo] [--baseline SRC] [--json FILE]

Times, in fresh processes, interleaved and repeated (the order reversed every other round):

* **warm**: ``faceaudit audit`` on 20 probes x 200 templates (``bench_vs_bob.TINY``), with numba's
  compiled kernels already in its cache (``NUMBA_CACHE_DIR``, filled by an untimed run): the
  command's fixed cost;
* **installed**: the first run of the package as ``pip install .`` builds it: ``setup.py``'s
  ``build_py`` (its hook compiles the engine's kernels into the build, ``faceaudit.engine.precompile``)
  into a folder, untimed, then per round a fresh copy of that folder, its bytecode compiled as pip
  does at install, run once with numba's cache where an installed package has it (no
  ``NUMBA_CACHE_DIR``);
* **cold**: the same command with an empty ``NUMBA_CACHE_DIR``, as the first run after installing
  a wheel built elsewhere is (another CPU, so numba ignores the wheel's kernels): numba compiles
  every kernel the command calls, then caches it;
* **imports**: a Python that only imports what ``faceaudit audit`` loads (``bench_vs_bob.IMPORTS``);
* with ``--demo``, ``faceaudit demo`` warm and cold too (about 20 s each on 2 cores);
* with ``--baseline SRC``, the warm command once more per round run from another copy of the
  source (``SRC`` goes first on ``PYTHONPATH``, e.g. ``git archive HEAD~1 src | tar -x -C /tmp/b``
  then ``--baseline /tmp/b/src``), with its own warm numba cache: a change's before and after,
  interleaved in the same rounds.

Python's bytecode cache is kept under the benchmark's folder and written by an untimed run
(``bench_vs_bob.faceaudit_env``), as an installed package has it. Then, in one more cold child,
the CPU-seconds numba spends compiling each kernel (its ``numba:compile`` events; a kernel's
time excludes the kernels compiled inside it), and, in a warm child, the CPU-seconds of each
import and phase of the command. Every figure is user + system CPU of the whole process
(``wait4``), so the load of other processes on the machine inflates it less than wall time;
the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_vs_bob import (
    IMPORTS,
    TINY,
    faceaudit_cmd,
    faceaudit_env,
    run_child,
    write_set,
)

# numba's compile events, per kernel, in a child that runs the command in-process (also
# tests/test_precompile.py's count of what a command compiles)
_COMPILE_PROBE = r"""
import atexit, collections, json, resource, sys
from numba.core import event
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
stack, child = [], []
own, sigs = collections.defaultdict(float), collections.defaultdict(list)
class Compiles(event.Listener):
    def on_start(self, ev):
        stack.append(cpu()); child.append(0.0)
    def on_end(self, ev):
        t = cpu() - stack.pop()
        name = ev.data["dispatcher"].py_func.__name__
        own[name] += t - child.pop()
        if child:
            child[-1] += t
        sigs[name].append(str(ev.data["args"]))
event.register("numba:compile", Compiles())
report = sys.argv[1]
@atexit.register
def _write():
    with open(report, "w") as f:
        json.dump({"process_cpu_s": cpu(), "own_cpu_s": own, "signatures": sigs,
                   "faceaudit_file": getattr(sys.modules.get("faceaudit"), "__file__", None)}, f)
sys.argv = ["faceaudit", *sys.argv[2:]]
import faceaudit.cli
faceaudit.cli.main()
"""

# the CPU-seconds of each import and phase of `faceaudit audit`, in a warm child
_PHASE_PROBE = r"""
import atexit, functools, json, resource, sys
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
marks, last = {}, [0.0]
def mark(name):
    now = cpu(); marks[name] = marks.get(name, 0.0) + now - last[0]; last[0] = now
mark("the interpreter's start-up")
import faceaudit; mark("import faceaudit")  # first, as the command: it sets OPENBLAS_THREAD_TIMEOUT before numpy loads OpenBLAS
import numpy; mark("import numpy")
import faceaudit.cli; mark("import faceaudit.cli (typer, rich)")
import pandas; mark("import pandas")
import numba; mark("import numba")
import scipy.special; mark("import scipy.special")
import pyarrow.parquet; mark("import pyarrow.parquet")
import faceaudit.audit as A; mark("import faceaudit.audit (the rest)")
import matplotlib.figure, matplotlib.backends.backend_agg; mark("import matplotlib (figure, Agg)")
import faceaudit.report.html as H; mark("import faceaudit.report (the rest)")
import faceaudit.engine.local as L
def wrap(mod, name, label):
    f = getattr(mod, name)
    @functools.wraps(f)
    def g(*a, **k):
        mark("the rest: parsing options, reading inputs, writing results.json and Parquet")
        try:
            return f(*a, **k)
        finally:
            mark(label)
    setattr(mod, name, g)
wrap(A, "run_audit", "run_audit: numba start-up, search, figures")
wrap(H, "write_report", "write_report: the report's figures and page")
report = sys.argv[1]
@atexit.register
def _write():
    mark("after the command")
    with open(report, "w") as f:
        json.dump(marks, f)
sys.argv = ["faceaudit", *sys.argv[2:]]
faceaudit.cli.main()
"""


def machine() -> dict:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    code = ("import numpy, threadpoolctl; print(', '.join(f\"{i['internal_api']} {i.get('architecture')}\" "
            "for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas'))")
    blas = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "blas": blas or "?",
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE")}


def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--demo", action="store_true", help="also `faceaudit demo`, warm and cold")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="a source folder (holding faceaudit/ and auditcore/) to time the warm command from too")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    info = machine()
    load_before = load()
    print(f"CPU {info['cpu']} ({info['cores']} cores), BLAS {info['blas']}, OPENBLAS_CORETYPE "
          f"{info['OPENBLAS_CORETYPE'] or 'not set'}; load average {load_before}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_startup_") as tmp:
        base = Path(tmp)
        data = base / "tiny"
        write_set(data, TINY[1], TINY[0], 128, seed=2)
        env = faceaudit_env(base)
        warm_env = {**env, "NUMBA_CACHE_DIR": str(base / "numba-warm")}
        outs = iter(range(10**6))

        def cold_env() -> dict:
            return {**env, "NUMBA_CACHE_DIR": tempfile.mkdtemp(prefix="numba-cold-", dir=base)}

        def audit(e: dict) -> dict:
            return run_child(faceaudit_cmd(data, base / f"out{next(outs)}", 0.4375), env=e)

        def demo(e: dict) -> dict:
            return run_child([sys.executable, "-m", "faceaudit.cli", "demo", "--out", str(base / f"demo{next(outs)}")],
                             env=e)

        imports_cmd = [sys.executable, "-c", "import " + ", ".join(IMPORTS)]
        kinds = {"warm": lambda: audit(warm_env)}
        warmups = [lambda: audit(warm_env)]
        if args.baseline is not None:
            src = args.baseline.resolve()
            if not (src / "faceaudit" / "__init__.py").exists():
                sys.exit(f"--baseline {src}: no faceaudit/__init__.py there")
            base_env = {**warm_env, "NUMBA_CACHE_DIR": str(base / "numba-baseline"),
                        "PYTHONPATH": os.pathsep.join([str(src), *filter(None, [env.get("PYTHONPATH")])])}
            kinds["baseline"] = lambda: audit(base_env)
            warmups.append(lambda: audit(base_env))
        built = base / "built"
        res = subprocess.run([sys.executable, "setup.py", "-q", "build_py", "-d", str(built)], check=False, cwd=HERE.parent,
                             env={k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"},
                             capture_output=True, text=True)
        if res.returncode or not list((built / "faceaudit" / "engine" / "__pycache__").glob("*.nbi")):
            sys.exit(f"setup.py build_py did not compile the kernels:\n{res.stdout[-2000:]}{res.stderr[-2000:]}")

        def installed() -> dict:  # a fresh copy of the build, bytecode compiled as pip does, run once
            copy = base / f"installed{next(outs)}"
            shutil.copytree(built, copy)
            e = {k: v for k, v in warm_env.items() if k != "NUMBA_CACHE_DIR"}
            e["PYTHONPATH"] = os.pathsep.join([str(copy), *filter(None, [env.get("PYTHONPATH")])])
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(copy)], env=e, check=True)
            return audit(e)

        kinds.update({"installed": installed, "cold": lambda: audit(cold_env()),
                      "imports": lambda: run_child(imports_cmd, env=warm_env)})
        if args.demo:
            kinds.update({"demo warm": lambda: demo(warm_env), "demo cold": lambda: demo(cold_env())})
            warmups.append(lambda: demo(warm_env))
        # untimed: bytecode cache, page cache, the warm numba cache (the demo compiles what the audit does not)
        for warmup in warmups:
            res = warmup()
            if res["rc"]:
                sys.exit(f"warm-up failed:\n{res['output'][-3000:]}")
        runs: dict[str, list[dict]] = {k: [] for k in kinds}
        for rnd in range(args.rounds):
            order = list(kinds) if rnd % 2 == 0 else list(kinds)[::-1]
            for k in order:
                res = kinds[k]()
                if res["rc"]:
                    sys.exit(f"{k} failed:\n{res['output'][-3000:]}")
                runs[k].append(res)
                print(f"round {rnd + 1} {k:10s} {res['cpu_s']:6.2f} CPU-s {res['wall_s']:6.2f} s wall", flush=True)
        # per kernel: what numba compiles, and for how long, on a first run
        report = base / "compile.json"
        res = run_child([sys.executable, "-c", _COMPILE_PROBE, str(report),
                         *faceaudit_cmd(data, base / "out_compile", 0.4375)[3:]], env=cold_env())
        compiles = json.loads(report.read_text()) if report.exists() else {}
        report = base / "phases.json"
        run_child([sys.executable, "-c", _PHASE_PROBE, str(report),
                   *faceaudit_cmd(data, base / "out_phases", 0.4375)[3:]], env=warm_env)
        phases = json.loads(report.read_text()) if report.exists() else {}
    load_after = load()

    med = {k: statistics.median(r["cpu_s"] for r in v) for k, v in runs.items()}
    rng = {k: (min(r["cpu_s"] for r in v), max(r["cpu_s"] for r in v)) for k, v in runs.items()}
    print(f"\n== faceaudit audit, {TINY[0]} probes x {TINY[1]} templates; CPU-s (user + sys), median "
          f"[min-max] of {args.rounds} interleaved rounds; load average {load_before} before, {load_after} after")
    for k in kinds:
        print(f"{k:10s} {med[k]:6.2f} [{rng[k][0]:.2f}-{rng[k][1]:.2f}]")
    print(f"first run after `pip install .` / warm run (installed / warm): {med['installed'] / med['warm']:.2f}x "
          f"(target: 1.5x); first run of a wheel built on another CPU (cold / warm): "
          f"{med['cold'] / med['warm']:.1f}x; warm fixed cost {med['warm']:.2f} CPU-s (target: 1.0)")
    if args.demo:
        print(f"demo: first run / warm run {med['demo cold'] / med['demo warm']:.1f}x")
    if args.baseline is not None:
        diffs = [b["cpu_s"] - w["cpu_s"] for w, b in zip(runs["warm"], runs["baseline"])]
        print(f"warm: baseline - this source, per round: {' '.join(f'{d:+.2f}' for d in diffs)} CPU-s "
              f"(median {statistics.median(diffs):+.2f})")
    own = compiles.get("own_cpu_s", {})
    if own:
        print(f"\nnumba compiling on a first run: {sum(own.values()):.2f} CPU-s of {compiles['process_cpu_s']:.2f} "
              "(each kernel's own time, without the kernels compiled inside it)")
        for name, t in sorted(own.items(), key=lambda kv: -kv[1]):
            n = len(compiles["signatures"][name])
            print(f"  {t:6.2f} {name}" + (f"  ({n} specialisations)" if n > 1 else ""))
    if phases:
        print("\nwhere a warm run's CPU goes (one run, CPU-s):")
        for name, t in phases.items():
            print(f"  {t:6.3f} {name}")
        print(f"  {sum(phases.values()):6.3f} in all")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "load_before": load_before, "load_after": load_after,
                                         "median_cpu_s": med, "range_cpu_s": rng,
                                         "cold_over_warm": med["cold"] / med["warm"],
                                         "installed_over_warm": med["installed"] / med["warm"],
                                         "compile_own_cpu_s": own, "phases_cpu_s": phases}, indent=1))


if __name__ == "__main__":
    main()

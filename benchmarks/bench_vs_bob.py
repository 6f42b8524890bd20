"""End to end: `faceaudit audit` against numpy + bob.measure on the same data, same figures.

    python benchmarks/bench_vs_bob.py                 # 1,000 x 100,000 (1e8), 3 rounds; then 1,000 x 1,000,000 (1e9)
    python benchmarks/bench_vs_bob.py --quick         # small smoke run (seconds)
    python benchmarks/bench_vs_bob.py --no-bob        # faceaudit half only
    python benchmarks/bench_vs_bob.py --bob-venv PATH --bob-cap-gib 8 --rounds 3 --skip-big

Writes a synthetic evaluation set to a temporary folder (``templates.npy``, ``manifest.parquet``,
``protocol.parquet``: one gallery template per enrolled subject; half the probes mated, the rest from
subjects never enrolled; 128-d unit vectors built as in ``faceaudit.data.synthetic``: impostor
scores ``2 Beta(63.5, 63.5) - 1``, genuine scores ``2 Beta(55.5, 18.5) - 1``, mean 0.5), then
times, interleaved and repeated (the order alternates each round):

(a) the whole ``faceaudit audit`` command with default settings plus ``--threshold T`` (a
    subprocess with pipes, not a terminal),
(b) ``benchmarks/bob_pipeline.py`` in a virtual environment of its own (``--bob-venv``, created on
    demand with ``python -m venv`` and ``pip install 'numpy<2' bob.measure pandas 'pyarrow<22'
    threadpoolctl``; pyarrow 22 needs numpy 2):
    numpy float32 cosine scores + bob.measure's DIR, FPIR (false alarm rate), CMC, FAR/FRR and EER.

and (c) the same ``faceaudit audit`` command on a tiny set (20 probes x 200 gallery): its fixed cost
(imports, numba's start-up, loading, a report with every figure), which no speed-up of the search
can remove; (d) a Python that only imports the modules that command loads (``IMPORTS``: numpy,
numba, pyarrow, pandas, scipy.special, matplotlib and faceaudit's own), no work at all: the part of
the fixed cost that comes with the libraries the project builds on.

faceaudit's children keep Python's bytecode cache under the benchmark's folder
(``PYTHONPYCACHEPREFIX``; see ``faceaudit_env``), as an installed package has it.

For each: wall time, CPU-seconds (user + system of the child, ``os.wait4``) and peak resident
memory of the child; medians over rounds and the ratio bob / faceaudit. It then checks that the
figures agree (see *Conventions* below) and prints both side by side.

At the larger size (default 1,000 x 1,000,000: 1e9 comparisons) it runs faceaudit once and the bob
pipeline once under an address-space cap (``--bob-cap-gib``, ``RLIMIT_AS``) so that it cannot take
the machine's memory; the pipeline's need is also extrapolated from its measured peak at 1e8 (its
arrays grow with probes x gallery).

Conventions (why the figures agree, and within what):

* faceaudit: a score ``>= T`` is a match; FNIR(1, T) = mated searches whose mate is not rank 1 or
  scores below T; a mate tied with a non-mate takes the worse rank. bob.measure's
  ``detection_identification_rate(cmc_scores, T, rank=1)`` counts a mated probe correct when
  ``max(pos) >= T`` and ``sum(neg >= max(pos)) < 1``: the same rule, so DIR = 1 - FNIR(1, T).
* ``false_alarm_rate(cmc_scores, T)``: probes with no mate whose ``max(neg) >= T`` = FPIR(T).
* ``cmc(mated)[r - 1]`` = share of mated probes with fewer than r non-mates ``>=`` the mate
  = faceaudit's CMC at rank r (no threshold; ties to the worse rank in both).
* ``farfrr(negatives, positives, T)``: FAR = impostor comparisons ``>= T``, FRR = genuine
  comparisons ``< T`` = faceaudit's verification FMR(T), FNMR(T) (T = 0.4375 lies on one of
  faceaudit's exact histogram edges, so its count at T is exact).
* EER: bob's threshold is the midpoint between two adjacent scores where |FAR - FRR| is smallest,
  EER = (FAR + FRR) / 2 there; faceaudit's is the histogram edge (float32 grid, 2^-11 relative)
  where |FMR - FNMR| is smallest, ``eer_midpoint`` = (FMR + FNMR) / 2 there. The two thresholds
  differ, and so may the two EERs: by at most half the impostor and genuine shares between them.
* Scores: faceaudit's are reference scores (the exact dot product of the normalised float32
  templates, rounded once); numpy's float32 product and float32 normalisation differ from them by
  at most ``eps = 2.5 d 2^-24`` (about 1.9e-5 at d = 128, over twice the worst-case rounding of a
  d-term float32 dot product of unit vectors). So a count may differ only by comparisons that lie
  within eps of the threshold (or, for ranks, of the mate's score). Each check allows exactly the
  searches or comparisons that faceaudit's own outputs (searches.parquet, candidates.parquet,
  scores.npz) place within eps, and prints how many differed.

The machine this runs on may be shared: CPU-seconds are the fairer comparison; the wall times
are printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_scale import write_tables  # noqa: E402  (the same manifest and protocol layout)

BOB_SCRIPT = HERE / "bob_pipeline.py"
BOB_PACKAGES = ["numpy<2", "bob.measure", "pandas", "pyarrow<22", "threadpoolctl"]
DEFAULT_BOB_VENV = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "faceaudit" / "bob-venv"
TINY = (20, 200)  # probes x gallery of the set that measures faceaudit's fixed cost
# what `faceaudit audit` imports (its modules, which load numpy, numba, pyarrow, pandas, scipy.special
# and matplotlib), without numba's start-up on the first compiled call or any work
IMPORTS = ("faceaudit.cli", "faceaudit.audit", "faceaudit.analyses.explain", "faceaudit.report", "pyarrow.parquet",
           "matplotlib.figure", "matplotlib.backends.backend_agg")
GENUINE_A, GENUINE_B = 55.5, 18.5  # genuine score 2 Beta(a, b) - 1: mean 0.5, s.d. about 0.1


# ------------------------------------------------------------------ data
def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def write_set(folder: Path, n_gallery: int, n_probes: int, dim: int, seed: int = 0) -> None:
    """Gallery: one uniform unit template per enrolled subject. Probes: the first half mated with
    gallery subjects 0.. (genuine score drawn exactly, as in ``faceaudit.data.synthetic``), the rest
    uniform unit templates of subjects never enrolled."""
    rng = np.random.default_rng(seed)
    n = n_gallery + n_probes
    folder.mkdir(parents=True, exist_ok=True)
    x = np.lib.format.open_memmap(folder / "templates.npy", mode="w+", dtype=np.float32, shape=(n, dim))
    step = 100_000
    for start in range(0, n_gallery, step):
        stop = min(start + step, n_gallery)
        x[start:stop] = _unit(rng.standard_normal((stop - start, dim)))
    n_mated = n_probes // 2
    g = np.asarray(x[:n_mated], dtype=np.float64)
    cos_a = 2 * rng.beta(GENUINE_A, GENUINE_B, size=n_mated) - 1
    w = rng.standard_normal((n_mated, dim))
    w = _unit(w - np.einsum("pd,pd->p", w, g)[:, None] * g)
    x[n_gallery:n_gallery + n_mated] = cos_a[:, None] * g + np.sqrt(1 - cos_a**2)[:, None] * w
    x[n_gallery + n_mated:] = _unit(rng.standard_normal((n_probes - n_mated, dim)))
    x.flush()
    del x
    write_tables(folder, n_gallery, n_probes)


# ------------------------------------------------------------------ running a child
# Linux keeps a process's peak RSS across exec, and a child started with vfork (what subprocess
# does) takes its parent's peak as its own at exec: measured straight from this process, a child's
# peak would be at least this benchmark's (which writes the 1e9 set). So each command is started
# by a small launcher (python -S, about 10 MiB), which forks it afresh and reports its rusage.
_LAUNCH = """import os, sys, json, resource
cap, report, argv = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
pid = os.fork()
if pid == 0:
    if cap:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
with open(report, "w") as f:
    json.dump({"cpu_s": ru.ru_utime + ru.ru_stime, "maxrss_kib": ru.ru_maxrss}, f)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_child(cmd: list[str], env: dict | None = None, cap_bytes: int | None = None) -> dict:
    """Run ``cmd`` with its output to a file; wall, CPU-seconds (user + sys) and peak RSS of the
    command itself (``wait4`` in a small launcher, see ``_LAUNCH``)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "rusage.json"
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-S", "-c", _LAUNCH, str(cap_bytes or 0), str(report), *cmd],
                              stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env)
        wall = time.perf_counter() - t0
        out.seek(0)
        text = out.read().decode(errors="replace")
        ru = json.loads(report.read_text()) if report.exists() else {"cpu_s": float("nan"), "maxrss_kib": 0}
    return {"rc": proc.returncode, "wall_s": wall, "cpu_s": ru["cpu_s"],
            "peak_rss_mib": ru["maxrss_kib"] / 1024, "output": text}


def faceaudit_cmd(folder: Path, out: Path, threshold: float) -> list[str]:
    return [sys.executable, "-m", "faceaudit.cli", "audit", "--templates", str(folder / "templates.npy"),
            "--manifest", str(folder / "manifest.parquet"), "--protocol", str(folder / "protocol.parquet"),
            "--out", str(out), "--threshold", repr(threshold)]


def faceaudit_env(base: Path) -> dict:
    """faceaudit's environment: this one, but with Python's bytecode cache kept under ``base``
    (``PYTHONPYCACHEPREFIX``), written by the untimed warm-up run even where
    ``PYTHONDONTWRITEBYTECODE`` is set. An installed faceaudit has its bytecode compiled at
    install, as bob.measure's environment has; a checkout with ``pip install -e`` and that
    variable set would otherwise compile faceaudit's own modules from source on every run
    (about 0.05 CPU-s), a cost no user of an installed package pays."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(base / "pycache")
    return env


def bob_cmd(python: Path, folder: Path, out: Path, threshold: float) -> list[str]:
    return [str(python), str(BOB_SCRIPT), str(folder), "--threshold", repr(threshold), "--out", str(out)]


def ensure_bob_venv(venv: Path) -> tuple[Path | None, str]:
    """The bob venv's python, creating the venv if needed; (None, one-line reason) if it cannot."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import bob.measure, pandas, pyarrow, numpy; print(numpy.__version__)"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python, "existing"
    print(f"creating the bob.measure environment at {venv} (python -m venv; pip install "
          f"{' '.join(repr(p) for p in BOB_PACKAGES)}) ...", flush=True)
    base = getattr(sys, "_base_executable", None) or shutil.which("python3") or sys.executable
    for cmd in ([base, "-m", "venv", str(venv)],
                [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *BOB_PACKAGES]):
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            lines = [ln for ln in (r.stderr + r.stdout).splitlines() if ln.strip() and "is ignored" not in ln]
            return None, f"`{' '.join(cmd[:4])} ...` failed: {lines[-1] if lines else 'exit ' + str(r.returncode)}"
    r = subprocess.run(probe, capture_output=True, text=True)
    if r.returncode != 0:
        lines = r.stderr.strip().splitlines()
        return None, f"bob.measure does not import in {venv}: {lines[-1] if lines else 'exit ' + str(r.returncode)}"
    return python, "created"


# ------------------------------------------------------------------ figures
def eps_for(dim: int) -> float:
    return 2.5 * dim * 2.0**-24


def faceaudit_figures(res_dir: Path, threshold: float, eps: float) -> dict:
    """faceaudit's figures from its results folder, and for each the number of searches or
    comparisons that lie within eps of a decision (what a numpy float32 score could flip)."""
    r = json.loads((res_dir / "results.json").read_text())
    ident, verif = r["identification"], r["verification"]
    at = next(a for a in ident["at_thresholds"] if abs(a["threshold"] - threshold) < 1e-12)
    s = pd.read_parquet(res_dir / "searches.parquet")
    mated = s[s["mated"]]
    nonm = s[~s["mated"]]
    mate, best = mated["mate_score"].to_numpy(np.float64), mated["best_nonmate_score"].to_numpy(np.float64)
    near_t = np.abs(mate - threshold) <= eps
    near_tie = np.abs(mate - best) <= eps
    cand = pd.read_parquet(res_dir / "candidates.parquet")
    c = cand.merge(mated[["template_id", "mate_score"]], left_on="probe_template_id", right_on="template_id")
    c = c[~c["is_mate"]]
    close = set(c.loc[np.abs(c["score"].astype(np.float64) - c["mate_score"]) <= eps, "probe_template_id"])
    rank_amb = int((near_tie | mated["template_id"].isin(close).to_numpy()).sum())
    out = {
        "n_mated": ident["n_mated_searches"], "n_nonmated": ident["n_nonmated_searches"],
        "dir_misses": at["fnir"]["1"]["errors"], "dir_rank1": 1 - at["fnir"]["1"]["value"],
        "dir_amb": int((near_t | near_tie).sum()),
        "fpir_errors": at["fpir"]["errors"], "fpir": at["fpir"]["value"],
        "fpir_amb": int((np.abs(nonm["best_nonmate_score"].to_numpy(np.float64) - threshold) <= eps).sum()),
        "cmc_rank": ident["cmc"]["rank"], "cmc": ident["cmc"]["identification_rate"],
        "cmc_misses": [ident["n_mated_searches"] - round(v * ident["n_mated_searches"])
                       for v in ident["cmc"]["identification_rate"]], "cmc_amb": rank_amb,
        "eer": verif["eer"]["eer_midpoint"], "eer_threshold": verif["eer"]["threshold"],
        "n_genuine": verif["n_genuine"], "n_impostor": verif["n_impostor"],
    }
    z = np.load(res_dir / "scores.npz")
    if {"genuine", "impostor_edge", "impostor_count"} <= set(z.files):
        gen = z["genuine"].astype(np.float64)
        edge, count = z["impostor_edge"].astype(np.float64), z["impostor_count"].astype(np.int64)
        out["_gen"], out["_edge"], out["_count"] = gen, edge, count
        out["far_errors"] = int(count[edge >= threshold].sum())
        out["frr_errors"] = int((gen < threshold).sum())
        out["far"] = out["far_errors"] / out["n_impostor"]
        out["frr"] = out["frr_errors"] / out["n_genuine"]
        try:
            from faceaudit.engine.counts import hist_edges
            out["threshold_is_edge"] = bool(np.isin(np.float32(threshold), hist_edges()))
        except Exception:  # the histogram's layout may change; the check is then skipped
            out["threshold_is_edge"] = None
    return out


def impostor_bounds(fa: dict, t: float, eps: float) -> tuple[int, int]:
    """Bounds on the number of impostor comparisons a numpy score would put >= t, from faceaudit's
    exact histogram: every bin at or above t + eps counts; any bin that may reach t - eps may."""
    edge, count = fa["_edge"], fa["_count"]
    lo = int(count[edge >= t + eps].sum())
    below = np.flatnonzero(edge < t - eps)
    hi = int(count[edge >= t - eps].sum()) + (int(count[below[-1]]) if below.size else 0)
    return lo, hi


def genuine_bounds(fa: dict, t: float, eps: float) -> tuple[int, int]:
    """Bounds on the number of genuine comparisons a numpy score would put below t."""
    gen = fa["_gen"]
    return int((gen < t - eps).sum()), int((gen < t + eps).sum())


def compare(fa: dict, bob: dict, threshold: float, eps: float) -> list[dict]:
    rows = []

    def add(figure, fa_val, bob_val, fa_cnt, bob_cnt, lo, hi, convention):
        rows.append({"figure": figure, "faceaudit": fa_val, "bob": bob_val, "faceaudit_count": fa_cnt,
                     "bob_count": bob_cnt, "allowed": f"[{lo}, {hi}]", "ok": lo <= bob_cnt <= hi,
                     "convention": convention})

    d = fa["dir_misses"]
    add(f"DIR rank 1 at T={threshold:g} (1 - FNIR)", fa["dir_rank1"], bob["dir_rank1"], d, bob["dir_misses"],
        d - fa["dir_amb"], d + fa["dir_amb"], "misses: mate < T or a non-mate >= mate")
    d = fa["fpir_errors"]
    add(f"FPIR at T (bob false_alarm_rate)", fa["fpir"], bob["fpir"], d, bob["fpir_errors"],
        d - fa["fpir_amb"], d + fa["fpir_amb"], "non-mated searches with a score >= T")
    for r in (1, 5, 10, 20):
        if r <= len(fa["cmc"]) and r <= len(bob["cmc"]):
            d = fa["cmc_misses"][r - 1]
            add(f"CMC rank {r}", fa["cmc"][r - 1], bob["cmc"][r - 1], d, bob["cmc_misses"][r - 1],
                d - fa["cmc_amb"], d + fa["cmc_amb"], "misses: >= r non-mates >= mate")
    if "far_errors" not in fa:
        print("note: scores.npz has no sparse impostor histogram (impostor_edge, impostor_count): "
              "FAR, FRR and EER are not compared")
    else:
        lo, hi = impostor_bounds(fa, threshold, eps)
        add("FAR at T (faceaudit FMR)", fa["far"], bob["far"], fa["far_errors"], bob["far_errors"], lo, hi,
            "impostor comparisons >= T")
        lo, hi = genuine_bounds(fa, threshold, eps)
        add("FRR at T (faceaudit FNMR)", fa["frr"], bob["frr"], fa["frr_errors"], bob["frr_errors"], lo, hi,
            "genuine comparisons < T")
        tb = bob["eer_threshold"]
        lo, hi = impostor_bounds(fa, tb, eps)
        add(f"FAR at bob's EER threshold {tb:.6g}", None, bob["eer_far"], None, bob["eer_far_errors"], lo, hi,
            "faceaudit's counts at bob's threshold")
        lo, hi = genuine_bounds(fa, tb, eps)
        add("FRR at bob's EER threshold", None, bob["eer_frr"], None, bob["eer_frr_errors"], lo, hi,
            "faceaudit's counts at bob's threshold")
        # EER: the two rules pick different thresholds; the EERs differ by at most half the
        # impostor and genuine shares between them (scores within eps of either end included).
        tf = fa["eer_threshold"]
        a, b = min(tf, tb), max(tf, tb)
        imp = impostor_bounds(fa, a, eps)[1] - impostor_bounds(fa, b, eps)[0]
        gen = genuine_bounds(fa, b, eps)[1] - genuine_bounds(fa, a, eps)[0]
        tol = 0.5 * (imp / fa["n_impostor"] + gen / fa["n_genuine"])
        diff = abs(fa["eer"] - bob["eer"])
        rows.append({"figure": f"EER (faceaudit edge {tf:.6g}, bob midpoint {tb:.6g})", "faceaudit": fa["eer"],
                     "bob": bob["eer"], "faceaudit_count": None, "bob_count": None,
                     "allowed": f"|diff| {diff:.2g} <= {tol:.2g}", "ok": diff <= tol + 1e-15,
                     "convention": "(FMR + FNMR) / 2 where they are closest"})
    return rows


# ------------------------------------------------------------------ report
def fmt_rate(v) -> str:
    return "-" if v is None else f"{v:.6g}"


def print_table(headers: list[str], rows: list[list]) -> None:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    print(line(headers))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells:
        print(line(r))


def median(xs):
    return float(np.median(xs)) if xs else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--gallery", type=int, default=100_000)
    parser.add_argument("--big-gallery", type=int, default=1_000_000, help="gallery for the large run (1e9 by default)")
    parser.add_argument("--skip-big", action="store_true", help="skip the large run")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=0.4375)
    parser.add_argument("--bob-venv", type=Path, default=DEFAULT_BOB_VENV,
                        help=f"bob.measure's own environment, created if missing (default {DEFAULT_BOB_VENV})")
    parser.add_argument("--no-bob", action="store_true", help="faceaudit half only")
    parser.add_argument("--bob-cap-gib", type=float, default=8.0,
                        help="address-space cap for the bob pipeline at the large size (0: none)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 200 x 5,000, large run 200 x 20,000, 1 round")
    parser.add_argument("--openblas-coretype", default=None, metavar="NAME|unset",
                        help="run both children with OPENBLAS_CORETYPE=NAME, or without it ('unset'); "
                             "default: the environment as it is")
    parser.add_argument("--keep", type=Path, default=None, help="write data and results here and keep them")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure here")
    args = parser.parse_args(argv)
    if args.quick:
        args.probes, args.gallery, args.big_gallery, args.rounds = 200, 5000, 20_000, 1
    if args.keep is not None and args.keep.exists() and not args.keep.is_dir():
        parser.error(f"--keep {args.keep}: not a folder")

    if args.openblas_coretype == "unset":
        os.environ.pop("OPENBLAS_CORETYPE", None)
    elif args.openblas_coretype:
        os.environ["OPENBLAS_CORETYPE"] = args.openblas_coretype
    env_note = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS",
                                                "OMP_NUM_THREADS")}
    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB RAM; "
          f"load average {os.getloadavg()[0]:.2f} at start (a shared machine: compare CPU-seconds)")
    print("environment: " + ", ".join(f"{k}={'(unset)' if v is None else v}" for k, v in env_note.items()))
    probe = ("import faceaudit, numpy, threadpoolctl; print('; '.join(f\"{i['internal_api']} {i.get('version')} "
             "{i.get('architecture')} x{i['num_threads']}\" for i in threadpoolctl.threadpool_info() "
             "if i['user_api'] == 'blas'))")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    print(f"faceaudit's BLAS (in a child with this environment): {r.stdout.strip() or 'unknown'}")

    bob_python, bob_reason = None, "--no-bob"
    if not args.no_bob:
        bob_python, bob_reason = ensure_bob_venv(args.bob_venv)
        if bob_python is None:
            print(f"bob.measure half skipped: {bob_reason}")
        else:
            r = subprocess.run([str(bob_python), "-c", "import numpy, bob.measure, importlib.metadata as m; "
                                "print('bob.measure', m.version('bob.measure'), 'numpy', numpy.__version__)"],
                               capture_output=True, text=True)
            print(f"bob environment: {args.bob_venv} ({bob_reason}): {r.stdout.strip()}")

    eps = eps_for(args.dim)
    report: dict = {"environment": env_note, "eps": eps}
    tmp = tempfile.TemporaryDirectory(prefix="bench_vs_bob_")
    base = args.keep or Path(tmp.name)
    ok = True
    try:
        folder = base / f"set_{args.probes}x{args.gallery}x{args.dim}"
        if not (folder / "protocol.parquet").exists():
            t = time.perf_counter()
            write_set(folder, args.gallery, args.probes, args.dim)
            print(f"wrote {folder} ({args.probes:,} probes x {args.gallery:,} gallery x {args.dim}-d) "
                  f"in {time.perf_counter() - t:.1f} s")
        n_cmp = args.probes * args.gallery
        # the command's fixed cost: the same command on a tiny set (imports, numba's start-up, loading,
        # a report with every figure), so that the table shows what start-up alone leaves of a target
        tiny = base / f"set_{TINY[0]}x{TINY[1]}x{args.dim}"
        if not (tiny / "protocol.parquet").exists():
            write_set(tiny, TINY[1], TINY[0], args.dim, seed=2)
        runs_dir = Path(tempfile.mkdtemp(prefix="runs_", dir=base))  # fresh results folders on every invocation
        fa_env = faceaudit_env(base)

        def run_faceaudit(data: Path, name: str) -> dict:
            return run_child(faceaudit_cmd(data, runs_dir / name, args.threshold), env=fa_env)

        # warm-up (numba's on-disk cache, the page cache, the bytecode cache): not timed
        run_faceaudit(folder, "warmup_fa")
        run_faceaudit(tiny, "warmup_tiny")
        imports_cmd = [sys.executable, "-c", "import " + ", ".join(IMPORTS)]
        run_child(imports_cmd, env=fa_env)
        runs: dict[str, list[dict]] = {"faceaudit": [], "bob": [], "tiny": [], "imports": []}
        for rnd in range(args.rounds):
            order = ["faceaudit", "tiny", "imports", "bob"]
            for who in (order if rnd % 2 == 0 else order[::-1]):
                if who == "faceaudit":
                    res = run_faceaudit(folder, f"fa_{rnd}")
                elif who == "tiny":
                    res = run_faceaudit(tiny, f"tiny_{rnd}")
                elif who == "imports":
                    res = run_child(imports_cmd, env=fa_env)
                elif bob_python is not None:
                    res = run_child(bob_cmd(bob_python, folder, runs_dir / f"bob_{rnd}.json", args.threshold))
                else:
                    continue
                if res["rc"] != 0:
                    print(f"{who} failed (exit {res['rc']}):\n{res['output'][-3000:]}")
                    return 1
                runs[who].append(res)
                name = {"tiny": f"faceaudit, {TINY[0]} x {TINY[1]}", "imports": "imports only"}.get(who, who)
                print(f"round {rnd + 1}/{args.rounds} {name}: {res['wall_s']:.2f} s wall, {res['cpu_s']:.2f} CPU-s, "
                      f"peak {res['peak_rss_mib']:.0f} MiB", flush=True)

        last = args.rounds - 1
        fa = faceaudit_figures(runs_dir / f"fa_{last}", args.threshold, eps)
        bob_fig = None
        if runs["bob"]:
            bob_out = json.loads((runs_dir / f"bob_{last}.json").read_text())
            bob_fig = bob_out["figures"]
            report["bob_steps"] = bob_out["steps"]
            report["bob_versions"] = bob_out.get("versions")
            report["bob_blas"] = bob_out.get("blas")
            print(f"bob pipeline's BLAS (numpy {bob_out.get('versions', {}).get('numpy')}): "
                  + "; ".join(bob_out.get("blas") or ["unknown"]))

        # ---- figures
        print(f"\nFigures on the same {n_cmp:.0e}-comparison set (faceaudit: last round's results.json, "
              f"searches.parquet, scores.npz; bob: last round), eps = {eps:.2g}:")
        if fa.get("threshold_is_edge") is not None:
            print(f"T = {args.threshold} is {'' if fa['threshold_is_edge'] else 'NOT '}an edge of faceaudit's "
                  f"impostor histogram ({'exact' if fa['threshold_is_edge'] else 'approximate'} FMR at T)")
        if bob_fig is not None:
            rows = compare(fa, bob_fig, args.threshold, eps)
            report["figures"] = [{k: v for k, v in r.items()} for r in rows]
            print_table(["figure", "faceaudit", "bob.measure", "faceaudit count", "bob count", "bob count allowed",
                         "agrees"],
                        [[r["figure"], fmt_rate(r["faceaudit"]), fmt_rate(r["bob"]),
                          "-" if r["faceaudit_count"] is None else r["faceaudit_count"],
                          "-" if r["bob_count"] is None else r["bob_count"], r["allowed"],
                          "yes" if r["ok"] else "NO"] for r in rows])
            differ = [r["figure"] for r in rows if r["faceaudit_count"] is not None
                      and r["faceaudit_count"] != r["bob_count"]]
            print(f"counts that differ at all: {differ or 'none'}")
            ok = all(r["ok"] for r in rows)
            if not ok:
                print("FIGURES DISAGREE beyond what the conventions and float32 rounding allow")
        else:
            print_table(["figure", "faceaudit"],
                        [[f"DIR rank 1 at T={args.threshold:g}", fmt_rate(fa["dir_rank1"])],
                         ["FPIR at T", fmt_rate(fa["fpir"])],
                         ["CMC rank 1", fmt_rate(fa["cmc"][0])],
                         ["FAR at T", fmt_rate(fa.get("far"))], ["FRR at T", fmt_rate(fa.get("frr"))],
                         ["EER", fmt_rate(fa["eer"])]])
            print(f"(bob.measure half not run: {bob_reason})")

        # ---- the large run
        big = None
        if not args.skip_big:
            bfolder = base / f"set_{args.probes}x{args.big_gallery}x{args.dim}"
            if not (bfolder / "protocol.parquet").exists():
                t = time.perf_counter()
                write_set(bfolder, args.big_gallery, args.probes, args.dim, seed=1)
                print(f"\nwrote {bfolder} in {time.perf_counter() - t:.1f} s")
            big = {"n": args.probes * args.big_gallery}
            res = run_faceaudit(bfolder, "fa_big")
            big["faceaudit"] = res
            print(f"large run faceaudit: exit {res['rc']}, {res['wall_s']:.1f} s wall, {res['cpu_s']:.1f} CPU-s, "
                  f"peak {res['peak_rss_mib']:.0f} MiB", flush=True)
            if res["rc"] != 0:
                print(res["output"][-3000:])
                ok = False
            if bob_python is not None:
                cap = int(args.bob_cap_gib * 2**30) if args.bob_cap_gib > 0 else None
                res = run_child(bob_cmd(bob_python, bfolder, runs_dir / "bob_big.json", args.threshold), cap_bytes=cap)
                big["bob"] = res
                try:
                    bo = json.loads((runs_dir / "bob_big.json").read_text())
                except (OSError, ValueError):
                    bo = {"error": f"no output (exit {res['rc']}): {res['output'].strip().splitlines()[-1:]}"}
                big["bob_out"] = bo
                print(f"large run bob (cap {args.bob_cap_gib:g} GiB address space): exit {res['rc']}, "
                      f"{res['wall_s']:.1f} s wall, {res['cpu_s']:.1f} CPU-s, peak {res['peak_rss_mib']:.0f} MiB; "
                      f"{bo.get('error', 'completed')}", flush=True)

        # ---- one table
        fr, br = runs["faceaudit"], runs["bob"]
        print(f"\nTimes: median of {args.rounds} interleaved round(s); CPU-s = user + system of the whole child "
              f"process; peak = its maximum resident set")
        header = ["run", "comparisons", "wall s", "CPU-s", "peak MiB", "bob / faceaudit (wall)",
                  "bob / faceaudit (CPU-s)"]
        rows = []
        fw, fc = median([r["wall_s"] for r in fr]), median([r["cpu_s"] for r in fr])
        rows.append(["faceaudit audit", f"{n_cmp:.0e}", f"{fw:.2f}", f"{fc:.2f}",
                     f"{max(r['peak_rss_mib'] for r in fr):.0f}", "", ""])
        if br:
            bw, bc = median([r["wall_s"] for r in br]), median([r["cpu_s"] for r in br])
            rows.append(["numpy + bob.measure", f"{n_cmp:.0e}", f"{bw:.2f}", f"{bc:.2f}",
                         f"{max(r['peak_rss_mib'] for r in br):.0f}", f"{bw / fw:.2f}x", f"{bc / fc:.2f}x"])
            report["ratio_wall"], report["ratio_cpu"] = bw / fw, bc / fc
            report["runs_bob_cpu_s"] = bc
        tw, tc = median([r["wall_s"] for r in runs["tiny"]]), median([r["cpu_s"] for r in runs["tiny"]])
        rows.append([f"faceaudit audit, {TINY[0]} x {TINY[1]} (fixed cost)", f"{TINY[0] * TINY[1]:.0e}",
                     f"{tw:.2f}", f"{tc:.2f}", f"{max(r['peak_rss_mib'] for r in runs['tiny']):.0f}", "", ""])
        report["fixed_cost_cpu_s"] = tc
        iw, ic = median([r["wall_s"] for r in runs["imports"]]), median([r["cpu_s"] for r in runs["imports"]])
        rows.append(["imports only (its modules, no work)", "0", f"{iw:.2f}", f"{ic:.2f}",
                     f"{max(r['peak_rss_mib'] for r in runs['imports']):.0f}", "", ""])
        report["imports_cpu_s"] = ic
        if big:
            f = big["faceaudit"]
            rows.append(["faceaudit audit", f"{big['n']:.0e}", f"{f['wall_s']:.1f}", f"{f['cpu_s']:.1f}",
                         f"{f['peak_rss_mib']:.0f}", "", ""])
            if "bob" in big:
                b = big["bob"]
                peak_small = max(r["peak_rss_mib"] for r in br)
                fixed = next((s["peak_rss_mib"] for s in report.get("bob_steps", []) if s["step"] == "import"), 0)
                need = fixed + (peak_small - fixed) * big["n"] / n_cmp
                status = "completed" if b["rc"] == 0 else big["bob_out"].get("error", f"exit {b['rc']}")
                short = status.split(":")[0] if b["rc"] != 0 else status
                rows.append([f"numpy + bob.measure, cap {args.bob_cap_gib:g} GiB", f"{big['n']:.0e}",
                             f"{b['wall_s']:.1f}", f"{b['cpu_s']:.1f}", f"{b['peak_rss_mib']:.0f}",
                             short, ""])
                print(f"bob pipeline's need at {big['n']:.0e}: about {need / 1024:.1f} GiB (its peak at {n_cmp:.0e}, "
                      f"{peak_small:.0f} MiB, less the {fixed:.0f} MiB it holds after its imports, times "
                      f"{big['n'] / n_cmp:g}: its score matrix, genuine/impostor split and per-probe lists all grow "
                      f"with probes x gallery)")
                report["bob_need_big_gib"] = need / 1024
        print_table(header, rows)
        print(f"faceaudit's fixed cost (the same command on {TINY[0]} x {TINY[1]}: imports, numba's start-up, "
              f"loading, the report) is {tc:.2f} CPU-s of its {fc:.2f} at {n_cmp:.0e}; the {n_cmp:.0e} work itself "
              f"takes about {fc - tc:.2f}")
        if br:
            print(f"bob / 10 = {bc / 10:.2f} CPU-s: a 10x margin leaves {bc / 10 - tc:.2f} CPU-s beyond the fixed cost "
                  f"for work that now takes {fc - tc:.2f}; importing the command's modules alone (no work) takes "
                  f"{ic:.2f} CPU-s, {'more' if ic > bc / 10 else 'less'} than that whole margin")
        if big and "bob" in big and big["bob"]["rc"] != 0:
            print(f"numpy + bob.measure at {big['n']:.0e}: {status}")
        if br:
            steps = report.get("bob_steps", [])
            print("bob pipeline's steps (last round): " + "; ".join(
                f"{s['step']} {s['s']:.2f} s (peak {s['peak_rss_mib']} MiB)" for s in steps))
        report["runs"] = {k: [{kk: vv for kk, vv in r.items() if kk != "output"} for r in v] for k, v in runs.items()}
        if big:
            report["big"] = {k: ({kk: vv for kk, vv in v.items() if kk != "output"} if isinstance(v, dict) else v)
                             for k, v in big.items()}
        print("environment: " + ", ".join(f"{k}={'(unset)' if v is None else v}" for k, v in env_note.items())
              + f"; load average {os.getloadavg()[0]:.2f} at end")
        if args.json:
            args.json.write_text(json.dumps(report, indent=1, default=str))
    finally:
        tmp.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Loading time and whole-command peak memory at scale, measured in one run.

    python benchmarks/bench_scale.py [--gallery 1000000] [--probes 10000] [--dim 128] [--skip-audit]

Writes a synthetic evaluation set to a temporary folder (``templates.npy``, ``manifest.parquet``,
``protocol.parquet``: ``gallery`` one template per subject, ``probes`` half mated), then prints:

* the time to load and check it (``load_evaluation_set`` + ``load_protocol``), in this process;
* the wall time, CPU time and peak resident memory of the whole ``faceaudit audit`` command
  on it with default settings, run under ``/usr/bin/time -v`` (the peak counts every page the
  process touched, including the memory-mapped templates).

The default is 10,000 probes x 1,000,000 gallery templates x 128-d: 1e10 comparisons.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def write_set(folder: Path, n_gallery: int, n_probes: int, dim: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    n = n_gallery + n_probes
    x = np.lib.format.open_memmap(folder / "templates.npy", mode="w+", dtype=np.float32, shape=(n, dim))
    step = 100_000
    for start in range(0, n_gallery, step):
        stop = min(start + step, n_gallery)
        x[start:stop] = rng.standard_normal((stop - start, dim), dtype=np.float32)
    n_mated = n_probes // 2
    x[n_gallery:n_gallery + n_mated] = x[:n_mated] + 0.5 * rng.standard_normal((n_mated, dim), dtype=np.float32)
    x[n_gallery + n_mated:] = rng.standard_normal((n_probes - n_mated, dim), dtype=np.float32)
    x.flush()
    del x
    write_tables(folder, n_gallery, n_probes)


def write_tables(folder: Path, n_gallery: int, n_probes: int) -> None:
    """``manifest.parquet`` and ``protocol.parquet`` of a synthetic set laid out as gallery rows
    (subject ``i`` each), then mated probes (subjects ``0..``), then probes of subjects never
    enrolled; ids ``t0000000`` / ``s0000000``."""
    n = n_gallery + n_probes
    n_mated = n_probes // 2
    subjects = np.concatenate([np.arange(n_gallery), np.arange(n_mated), n_gallery + np.arange(n_probes - n_mated)])
    ids = pd.Series(np.arange(n)).map("t{:07d}".format)
    pd.DataFrame({"template_id": ids, "subject_id": pd.Series(subjects).map("s{:07d}".format)}).to_parquet(
        folder / "manifest.parquet", index=False)
    roles = np.where(np.arange(n) < n_gallery, "gallery", "probe")
    pd.DataFrame({"template_id": ids, "role": roles}).to_parquet(folder / "protocol.parquet", index=False)


def time_loading(folder: Path) -> dict:
    from faceaudit.data.evalset import load_evaluation_set
    from faceaudit.data.protocol import load_protocol
    t0 = time.perf_counter()
    es = load_evaluation_set(folder / "templates.npy", folder / "manifest.parquet")
    t1 = time.perf_counter()
    proto = load_protocol(es, folder / "protocol.parquet")
    t2 = time.perf_counter()
    return {"rows": es.n, "load_evaluation_set_s": round(t1 - t0, 2), "load_protocol_s": round(t2 - t1, 2),
            "gallery": int(proto.gallery.size), "probes": int(proto.probes.size),
            "templates_memory_mapped": isinstance(es.templates, np.memmap) or isinstance(es.templates.base, np.memmap)}


def time_audit(folder: Path, extra: list[str]) -> dict:
    out = folder / "results"
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "faceaudit.cli", "audit",
           "--templates", str(folder / "templates.npy"), "--manifest", str(folder / "manifest.parquet"),
           "--protocol", str(folder / "protocol.parquet"), "--out", str(out), "--overwrite", *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"error": proc.stderr[-3000:]}
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    user = float(re.search(r"User time \(seconds\): ([\d.]+)", proc.stderr).group(1))
    system = float(re.search(r"System time \(seconds\): ([\d.]+)", proc.stderr).group(1))
    res = json.loads((out / "results.json").read_text())
    return {"wall_s": round(wall, 1), "cpu_s": round(user + system, 1), "peak_rss_mib": round(rss / 1024),
            "n_comparisons": res["protocol"]["n_comparisons"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gallery", type=int, default=1_000_000)
    parser.add_argument("--probes", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--skip-audit", action="store_true")
    parser.add_argument("--audit-args", default="", help="extra arguments for faceaudit audit")
    parser.add_argument("--keep", type=Path, default=None, help="write the data here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / "protocol.parquet").exists():
            write_set(folder, args.gallery, args.probes, args.dim)
        print(json.dumps({"loading": time_loading(folder)}), flush=True)
        if not args.skip_audit:
            print(json.dumps({"audit": time_audit(folder, args.audit_args.split())}), flush=True)
    print(json.dumps({"env": {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS", "NUMBA"))}}))


if __name__ == "__main__":
    main()

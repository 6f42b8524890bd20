"""The Dask backend against the single-process engine, on the same data, in one run.

    python benchmarks/bench_dask.py [--gallery 50000] [--probes 2000] [--dim 128] [--workers 1 2]

Writes synthetic templates to a temporary ``.npy`` (the workers read it memory-mapped), then
times the search (``engine.search`` / ``DaskBackend.search``; the protocol and the metrics are
the same for both and not timed):

* the single-process engine with 1 thread (numba and BLAS) and with its default threads;
* the Dask backend on a fresh ``LocalCluster`` of N worker processes (1 thread each) for each N
  in ``--workers``, with ``--probes-per-task`` and ``--shard-templates`` (small tasks, so that
  there is work for every worker), and once with 1 worker and the backend's default task sizes;
  cluster start-up is timed separately.

For each: wall seconds, comparisons per wall second, CPU seconds of the process(es) doing the
work (the engine process, or the sum over the workers), comparisons per CPU second, and peak
resident memory (per worker for Dask: ``ru_maxrss`` of each worker process). CPU seconds are
the fairer figure on a shared machine; the load average is printed. Each Dask result is
checked to be identical to the engine's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import faceaudit  # noqa: F401  (first: sets OpenBLAS's spin timeout before numpy loads it)


def make(folder: Path, n_gallery: int, n_probes: int, dim: int, seed: int = 0):
    from faceaudit.data.evalset import validate
    from faceaudit.data.protocol import Protocol
    rng = np.random.default_rng(seed)
    n_mated = n_probes // 2
    gallery = rng.standard_normal((n_gallery, dim), dtype=np.float32)
    mated = gallery[:n_mated] + 0.5 * rng.standard_normal((n_mated, dim), dtype=np.float32)
    nonmated = rng.standard_normal((n_probes - n_mated, dim), dtype=np.float32)
    x = np.concatenate([gallery, mated, nonmated])
    del gallery, mated, nonmated
    path = folder / "templates.npy"
    np.save(path, x)
    subjects = np.concatenate([np.arange(n_gallery), np.arange(n_mated), n_gallery + np.arange(n_probes - n_mated)])
    manifest = pd.DataFrame({"template_id": np.arange(x.shape[0]).astype(str), "subject_id": subjects.astype(str)})
    es = validate(np.load(path, mmap_mode="r"), manifest, templates_path=path)
    proto = Protocol(np.arange(n_gallery), n_gallery + np.arange(n_mated), n_gallery + np.arange(n_mated, n_probes))
    return es, proto


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _maxrss() -> int:
    """Peak resident memory of this process: VmHWM (Linux; ru_maxrss would include the parent's
    peak, which survives fork and exec)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def same(a, b) -> bool:
    names = ("best_nonmate", "mate_score", "mate_rank", "candidates_subject", "candidates_score",
             "genuine_scores", "impostor_hist")
    return all(np.array_equal(getattr(a, n), getattr(b, n), equal_nan=getattr(a, n).dtype.kind == "f") for n in names)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gallery", type=int, default=50_000)
    ap.add_argument("--probes", type=int, default=2_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--memory-mb", type=int, default=256, help="memory per worker (and the engine's budget)")
    ap.add_argument("--probes-per-task", type=int, default=250)
    ap.add_argument("--shard-templates", type=int, default=25_000)
    ap.add_argument("--dask-only", action="store_true",
                    help="only the Dask runs with the given task sizes (a large audit: no single-process baseline, "
                         "no identity check; CPU ratios are then against the first Dask run)")
    args = ap.parse_args()

    import distributed
    import numba
    import threadpoolctl

    from faceaudit.data.protocol import Protocol
    from faceaudit.engine.dask_backend import DaskBackend
    from faceaudit.engine.local import search

    n_cmp = args.gallery * args.probes
    memory = args.memory_mb * 2**20
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        es, proto = make(Path(tmp), args.gallery, args.probes, args.dim)
        search(es, Protocol(proto.gallery[:2_000], proto.mated[:0], proto.nonmated[:64]), top_k=20)  # compile

        default_threads = numba.get_num_threads()
        for threads in (() if args.dask_only else (1, default_threads)):
            numba.set_num_threads(threads)
            with threadpoolctl.threadpool_limits(threads, user_api="blas"):
                c0, t0 = _cpu(), time.perf_counter()
                ref = search(es, proto, top_k=20, memory_budget=memory)
                wall, cpu = time.perf_counter() - t0, _cpu() - c0
            rows.append({"run": f"engine, {threads} thread(s)", "wall_s": wall, "cpu_s": cpu,
                         "peak_rss_mib": _maxrss() / 2**20})
        numba.set_num_threads(default_threads)

        configs = [(n, args.probes_per_task, args.shard_templates) for n in args.workers]
        if not args.dask_only:
            configs.append((1, None, None))
        ref = None if args.dask_only else ref
        for n, per_task, shard in configs:
            t0 = time.perf_counter()
            cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                               dashboard_address=":0", silence_logs=40)
            client = distributed.Client(cluster)
            startup = time.perf_counter() - t0
            backend = DaskBackend(client=client, memory_per_worker=memory, probes_per_task=per_task,
                                  shard_templates=shard)
            # warm-up: numba's cache loads and the first tasks, on a small slice
            small = Protocol(proto.gallery[:2_000], proto.mated[:0], proto.nonmated[:2 * n])
            backend.search(es, small, top_k=20)
            c0 = sum(client.run(_cpu).values())
            t0 = time.perf_counter()
            res = backend.search(es, proto, top_k=20)
            wall = time.perf_counter() - t0
            cpu = sum(client.run(_cpu).values()) - c0
            peaks = client.run(_maxrss)
            rows.append({"run": f"dask, {n} worker(s)" + ("" if per_task else ", default tasks"), "wall_s": wall, "cpu_s": cpu, "startup_s": startup,
                         "peak_rss_mib_per_worker": [round(v / 2**20) for v in peaks.values()],
                         "plan": backend.last_plan, "identical": None if ref is None else same(ref, res)})
            client.close()
            cluster.close()

    base_wall = rows[0]["wall_s"]
    base_cpu = rows[0]["cpu_s"]
    print(f"{args.probes:,} probes x {args.gallery:,} gallery x {args.dim}-d = {n_cmp:.3g} comparisons; "
          f"memory per worker {args.memory_mb} MiB; load average {os.getloadavg()}; cpus {os.cpu_count()}")
    print(f"{'run':34s} {'wall s':>8s} {'M cmp/s':>9s} {'CPU s':>8s} {'M cmp/CPU-s':>12s} {'CPU vs 1-thr engine':>20s}")
    for r in rows:
        r["cmp_per_s"] = n_cmp / r["wall_s"]
        r["cmp_per_cpu_s"] = n_cmp / r["cpu_s"]
        r["cpu_overhead_vs_engine_1thread"] = r["cpu_s"] / base_cpu
        r["wall_vs_engine_1thread"] = r["wall_s"] / base_wall
        print(f"{r['run']:34s} {r['wall_s']:8.2f} {r['cmp_per_s'] / 1e6:9.1f} {r['cpu_s']:8.2f} "
              f"{r['cmp_per_cpu_s'] / 1e6:12.1f} {r['cpu_overhead_vs_engine_1thread']:20.2f}")
    print(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()

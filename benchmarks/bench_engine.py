"""Engine throughput against the raw float32 matrix-multiply rate, measured in one run.

    python benchmarks/bench_engine.py [--gallery 100000] [--probes 10000] [--dim 128]

Prints comparisons per second of (a) BLAS ``probe_block @ gallery.T`` alone over the same
blocks the engine uses (the baseline) and (b) the full engine pass (matmul + the fused
reduction: best non-mate, mate score and rank, top-K, genuine scores, impostor histogram),
their ratio, and the peak resident memory of the engine run (measured in a child process so
the baseline does not count). The default is 1e9 comparisons.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time

import faceaudit  # noqa: F401  (first: sets OpenBLAS's spin timeout before numpy loads it)
import numpy as np
import pandas as pd


def make(n_gallery: int, n_probes: int, dim: int, seed: int = 0):
    from faceaudit.evalset import validate
    from faceaudit.protocol import Protocol
    rng = np.random.default_rng(seed)
    n_mated = n_probes // 2
    gallery = rng.standard_normal((n_gallery, dim), dtype=np.float32)
    mated = gallery[:n_mated] + 0.5 * rng.standard_normal((n_mated, dim), dtype=np.float32)
    nonmated = rng.standard_normal((n_probes - n_mated, dim), dtype=np.float32)
    x = np.concatenate([gallery, mated, nonmated])
    subjects = np.concatenate([np.arange(n_gallery), np.arange(n_mated), n_gallery + np.arange(n_probes - n_mated)])
    manifest = pd.DataFrame({"template_id": np.arange(x.shape[0]).astype(str), "subject_id": subjects.astype(str)})
    es = validate(x, manifest)
    proto = Protocol(np.arange(n_gallery), n_gallery + np.arange(n_mated), n_gallery + np.arange(n_mated, n_probes))
    return es, proto


def run_engine(args, queue):
    try:
        queue.put(_engine(args))
    except BaseException as exc:  # report instead of leaving the parent waiting
        queue.put({"error": repr(exc)})


def _engine(args) -> dict:
    from faceaudit.engine import search
    es, proto = make(args.gallery, args.probes, args.dim)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    search(es, proto, block_size=64)  # compile / warm up on a slice
    t0 = time.perf_counter()
    res = search(es, proto, memory_budget=args.memory_mb * 2**20)
    elapsed = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": elapsed, "peak_rss_mib": peak / 1024, "rss_before_mib": base / 1024,
            "comparisons": res.n_comparisons}


def run_matmul(args) -> dict:
    from faceaudit.engine import _prepare, block_rows, raw_scores
    es, proto = make(args.gallery, args.probes, args.dim)
    x, _ = _prepare(es.templates, "cosine")
    gallery = np.ascontiguousarray(x[proto.gallery])
    probes = x[proto.probes]
    rows = block_rows(gallery.shape[0], args.memory_mb * 2**20)
    _ = probes[:rows] @ gallery.T
    t0 = time.perf_counter()
    for start in range(0, probes.shape[0], rows):  # plain BLAS, one call per engine block
        block = probes[start:start + rows] @ gallery.T
    elapsed = time.perf_counter() - t0
    del block
    return {"seconds": elapsed, "comparisons": probes.shape[0] * gallery.shape[0], "block_rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gallery", type=int, default=100_000)
    parser.add_argument("--probes", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--memory-mb", type=int, default=256)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=run_engine, args=(args, queue))
    child.start()
    engine = queue.get()
    child.join()
    if "error" in engine:
        raise SystemExit(f"engine run failed: {engine['error']}")
    matmul = run_matmul(args)
    rate_mm = matmul["comparisons"] / matmul["seconds"]
    rate_engine = engine["comparisons"] / engine["seconds"]
    figures = {"shape": {"gallery": args.gallery, "probes": args.probes, "dim": args.dim},
               "comparisons": engine["comparisons"], "block_rows": matmul["block_rows"],
               "matmul_comparisons_per_s": rate_mm, "engine_comparisons_per_s": rate_engine,
               "engine_over_matmul": rate_engine / rate_mm, "engine_seconds": engine["seconds"],
               "matmul_seconds": matmul["seconds"], "engine_peak_rss_mib": engine["peak_rss_mib"],
               "rss_before_search_mib": engine["rss_before_mib"]}
    print(f"comparisons:            {engine['comparisons']:.3g} ({args.probes:,} probes x {args.gallery:,} gallery, d={args.dim})")
    print(f"raw float32 matmul:     {rate_mm / 1e6:,.0f} M comparisons/s ({matmul['seconds']:.2f} s)")
    print(f"faceaudit engine:       {rate_engine / 1e6:,.0f} M comparisons/s ({engine['seconds']:.2f} s)")
    print(f"engine / matmul:        {rate_engine / rate_mm:.2f}")
    print(f"engine peak memory:     {engine['peak_rss_mib']:,.0f} MiB (process peak RSS, incl. {engine['rss_before_mib']:,.0f} MiB before the search)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(figures, fh, indent=1)


if __name__ == "__main__":
    main()

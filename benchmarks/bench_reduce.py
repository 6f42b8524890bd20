"""The engine's hot loop alone: BLAS on one tile against the reduction of that tile, per comparison.

    python benchmarks/bench_reduce.py [--gallery 100000] [--rows 256] [--dim 128] [--repeat 11]

One thread, no pool: 256 probe rows (non-mated, as most comparisons are) against the gallery in
the engine's tiles (``engine.tiles``), each tile written by one float32 BLAS call
(``numpy.matmul``, one BLAS thread) and reduced by ``_kernel.reduce_tile``: ``engine.shard_unit``
itself, against the same BLAS calls alone. Prints, per score, CPU nanoseconds per comparison of BLAS alone
and of BLAS + reduction (the minimum over interleaved repeats: this isolates the loop from
gallery preparation, threads and the rest of a search, which ``bench_engine.py`` includes), the
reduction's share, the ratio BLAS / (BLAS + reduction), and the share of comparisons recomputed
with the reference computation. The fine histogram starts where it would in an audit of
``--audit-probes`` probes against this gallery.

It also measures a floor, on the same tiles and interleaved with the rest: BLAS followed by the
least any exact impostor histogram must do, binning every score (cosine's coarse bins, 2^-8 wide)
and counting it in four interleaved int64 counters as the kernel does, with nothing else (no
screen bound, no recomputation, no top K, no listing). ``BLAS / (BLAS + that)`` is then a ceiling
on the ratio an engine that counts every comparison can reach on this machine with numba's
scatter into counters: where BLAS is fast, counting alone takes most of a 0.8 target's budget.
Last, per score, the engine "at x of its floor": the floor's time per comparison over the engine's
(BLAS + bin and count over BLAS + reduction, the same tiles, interleaved; neg_euclidean against
the same cosine floor), and at y of BLAS.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import faceaudit  # noqa: F401  (first: sets OpenBLAS's spin timeout before numpy loads it)

sys.path.insert(0, str(Path(__file__).resolve().parent))


def count_only():
    """The floor's pass, compiled on first use: each score's cosine coarse bin (the kernel's
    width), then one increment in the kernel's interleaved counters (``ch``: ``N_COPIES`` rows)."""
    import numba as nb

    from faceaudit.engine._kernel import COARSE_BITS, N_COPIES

    scale = np.float32(2.0**COARSE_BITS)
    copy_mask = N_COPIES - 1

    @nb.njit(nogil=True)
    def bin_and_count(scores, n_rows, ch, cbv):
        n = scores.shape[1]
        for r in range(n_rows):
            row = scores[r]
            for j in range(n):  # vectorised
                cbv[j] = np.int32(row[j] * scale + scale)
            for j in range(n):  # a scatter: one increment per comparison
                ch[j & copy_mask, cbv[j]] += 1
    return bin_and_count


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gallery", type=int, default=100_000)
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("--audit-probes", type=int, default=1000,
                    help="the fine histogram's floor as in an audit of this many probes (default 1,000: 1e8 comparisons)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = ap.parse_args(argv)
    import threadpoolctl
    from bench_engine import make

    from faceaudit.engine import local as engine
    from faceaudit.engine.counts import tail_budget

    rows = args.rows
    bin_and_count = count_only()
    es, proto = make(args.gallery, 2 * rows, args.dim)
    n_cmp = rows * args.gallery
    print(f"{rows} non-mated probe rows x {args.gallery:,} gallery x {args.dim}-d, one thread, "
          f"tiles of {engine.TILE_ROWS} x about {engine.TILE_COLS}; BLAS: "
          f"{threadpoolctl.threadpool_info()[0].get('internal_api')} {threadpoolctl.threadpool_info()[0].get('architecture')}")
    ns = {}  # per score: BLAS alone, BLAS + reduction; "floor": BLAS + bin and count (cosine's tiles)
    shares = {}  # per score: the share of comparisons recomputed
    for score in ("cosine", "neg_euclidean"):
        kind = engine.SCORE_KINDS[score]
        gal = engine._Gallery(es, proto.gallery, score, None)
        P, psq = engine._gather(es.templates, proto.probes[rows:2 * rows], score)
        blk = engine._Block(kind, P, psq, gal.sq_max, np.full(rows, -1, np.int32), np.full(rows, np.nan, np.float32))
        work = engine.Work(kind, engine.max_width(gal))
        thr = np.empty(0, np.float32)
        n_audit = args.audit_probes * args.gallery
        floor = engine.fine_floor(es, proto.probes, gal.rows, score, tail_budget(n_audit), n_audit)
        tiles = engine.tiles(gal.start)

        with_floor = score == "cosine"  # the floor's bins are cosine's
        ch, cbv = np.zeros_like(work.ch), np.empty_like(work.cbv)  # the floor's own, shaped as the engine's
        recomputed = [0.0]

        def run(what: str) -> float:
            out = engine._empty_shard(rows, 20, 0, 0)
            filled = np.zeros(rows, np.int64)
            work.counter[:] = 0
            t = time.process_time()
            if what == "engine":  # the engine's own unit: each tile's BLAS call, then its reduction
                engine.shard_unit(kind, gal, blk, 0, rows, out, filled, thr, 20, floor, work)
                recomputed[0] = work.counter[0] / n_cmp
            else:  # the same BLAS calls alone, or each followed by the floor's pass
                for lo, hi in tiles:
                    c0, c1 = int(gal.start[lo]), int(gal.start[hi])
                    tile = work.flat[:rows * (c1 - c0)].reshape(rows, c1 - c0)
                    np.matmul(blk.P, gal.vectors[c0:c1].T, out=tile)
                    if what == "floor":
                        bin_and_count(tile, rows, ch, cbv)
            return (time.process_time() - t) / n_cmp * 1e9

        with threadpoolctl.threadpool_limits(1, user_api="blas"):
            run("engine")
            if with_floor:
                run("floor")
            blas, full, least = [], [], []
            for _ in range(args.repeat):
                blas.append(run("blas"))
                full.append(run("engine"))
                if with_floor:
                    least.append(run("floor"))
        b, f = min(blas), min(full)
        ns[score] = (b, f)
        shares[score] = recomputed[0]
        print(f"  {score:14s} BLAS {b:.2f} ns/comparison, BLAS + reduction {f:.2f} (reduction {f - b:.2f}); "
              f"BLAS / (BLAS + reduction) {b / f:.3f}; recomputed {recomputed[0]:.2%}")
        if least:
            c = min(least)
            ns["floor"] = c
            print(f"  {'floor':14s} BLAS {b:.2f} ns/comparison, BLAS + bin and count only {c:.2f} (counting "
                  f"{c - b:.2f}); BLAS / (BLAS + counting) {b / c:.3f}: the ceiling for an engine that counts "
                  f"every comparison in a histogram")
    if "floor" in ns:  # the measure: the engine's time per tile against the floor's, same tiles, same run
        for score in ("cosine", "neg_euclidean"):
            print(f"  {score:14s} at {ns['floor'] / ns[score][1]:.3f} of its floor (floor's tile time / the "
                  f"engine's: BLAS + bin and count {ns['floor']:.2f} ns/comparison, engine {ns[score][1]:.2f}); "
                  f"at {ns[score][0] / ns[score][1]:.3f} of BLAS ({args.dim}-d)")
    if args.json:
        info = sorted((i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"),  # not OpenMP
                      key=lambda i: "numpy" not in i.get("filepath", ""))  # numpy's BLAS first (the one timed)
        args.json.write_text(json.dumps({
            "dim": args.dim, "gallery": args.gallery, "rows": rows,
            "blas": [info[0].get("internal_api"), info[0].get("architecture")] if info else None,
            "floor_ns": ns.get("floor"),
            "scores": {sc: {"blas_ns": ns[sc][0], "engine_ns": ns[sc][1], "recomputed": shares[sc],
                            "at_blas": ns[sc][0] / ns[sc][1],
                            "at_floor": ns["floor"] / ns[sc][1] if "floor" in ns else None}
                       for sc in ("cosine", "neg_euclidean")}}, indent=1))


if __name__ == "__main__":
    main()

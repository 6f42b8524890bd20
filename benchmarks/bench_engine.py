"""Engine throughput against the raw float32 matrix-multiply rate, measured in one run.

    python benchmarks/bench_engine.py [--gallery 100000] [--probes 2000] [--dim 128] [--repeat 3]
                                      [--coretypes default,unset,Haswell]

For each OpenBLAS kernel setting (``default``: the environment as it is; ``unset``: without
``OPENBLAS_CORETYPE``; a name: ``OPENBLAS_CORETYPE=name``) a child process prints, for each
score: CPU-seconds (all threads, ``resource.getrusage``) of (a) BLAS alone on the engine's own
tiles (same shapes, one BLAS thread per worker thread), (b) BLAS alone in large calls (512
probe rows x the whole gallery, all BLAS threads) and (c) the full engine search (gallery
preparation included), interleaved and repeated; comparisons per CPU-second; the ratios
engine / (a) and engine / the faster of (a) and (b) (medians over repeats); the fraction of
comparisons the screen could not decide (recomputed with the reference computation); where
the fine histogram starts; the OpenBLAS kernel that ran (``threadpoolctl``); and the engine
process's peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd

import faceaudit  # noqa: F401  (first: sets OpenBLAS's spin timeout before numpy loads it)


def make(n_gallery: int, n_probes: int, dim: int, seed: int = 0):
    from faceaudit.data.evalset import validate
    from faceaudit.data.protocol import Protocol
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


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _tiled_blas(P, G, threads: int) -> None:
    """BLAS alone on exactly the engine's tiles (TILE_ROWS probe rows x about TILE_COLS gallery
    templates, one BLAS thread per worker thread, the same thread pool shape)."""
    from concurrent.futures import ThreadPoolExecutor

    import threadpoolctl

    from faceaudit.engine.local import TILE_COLS, TILE_ROWS

    def unit(a):
        buf = np.empty(TILE_ROWS * TILE_COLS, np.float32)
        p = P[a:a + TILE_ROWS]
        for c in range(0, G.shape[0], TILE_COLS):
            g = G[c:c + TILE_COLS]
            np.matmul(p, g.T, out=buf[:p.shape[0] * g.shape[0]].reshape(p.shape[0], g.shape[0]))

    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        with ThreadPoolExecutor(threads) as ex:
            list(ex.map(unit, range(0, P.shape[0], TILE_ROWS)))


def child(args) -> dict:
    import numba
    import threadpoolctl

    from faceaudit.engine.counts import hist_edges
    from faceaudit.engine.local import _gather, raw_scores, search
    es, proto = make(args.gallery, args.probes, args.dim)
    search(es, proto, block_size=8)  # compile
    search(es, proto, block_size=8, score="neg_euclidean")
    out = {"blas": [(i["internal_api"], i.get("architecture"), i["num_threads"])
                    for i in threadpoolctl.threadpool_info() if i["internal_api"] == "openblas"],
           "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"), "threads": numba.get_num_threads()}
    budget = args.memory_mb * 2**20
    for score in ("cosine", "neg_euclidean"):
        P, _ = _gather(es.templates, proto.probes, score)
        G, _ = _gather(es.templates, proto.gallery, score)
        big = np.empty((512, G.shape[0]), np.float32)
        tiles_s, big_s, en_s, wall = [], [], [], []
        for _ in range(args.repeat):
            c0 = _cpu()
            _tiled_blas(P, G, numba.get_num_threads())  # BLAS alone, on the engine's tiles
            c1 = _cpu()
            for start in range(0, P.shape[0], 512):  # BLAS alone, large calls (all its threads)
                n = min(512, P.shape[0] - start)
                raw_scores(P[start:start + n], G, out=big[:n])
            c2 = _cpu()
            w = time.perf_counter()
            res = search(es, proto, score=score, memory_budget=budget)
            wall.append(time.perf_counter() - w)
            c3 = _cpu()
            tiles_s.append(c1 - c0)
            big_s.append(c2 - c1)
            en_s.append(c3 - c2)
        del big, P, G
        n = res.n_comparisons
        best_blas = min(np.median(tiles_s), np.median(big_s))
        out[score] = {"comparisons": n,
                      "blas_tiles_M_per_cpu_s": round(n / np.median(tiles_s) / 1e6, 1),
                      "blas_large_calls_M_per_cpu_s": round(n / np.median(big_s) / 1e6, 1),
                      "engine_M_per_cpu_s": round(n / np.median(en_s) / 1e6, 1),
                      "engine_over_blas_tiles": round(float(np.median(np.array(tiles_s) / np.array(en_s))), 3),
                      "engine_over_best_blas": round(float(best_blas / np.median(en_s)), 3),
                      "ratios_tiles": [round(t / e, 3) for t, e in zip(tiles_s, en_s)],
                      "engine_wall_s": [round(w, 2) for w in wall],
                      "recomputed_fraction": round(res.n_recomputed / n, 4),
                      "fine_histogram_from": float(hist_edges()[res.hist_fine_from]) if res.hist_fine_from else None}
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gallery", type=int, default=100_000)
    parser.add_argument("--probes", type=int, default=2_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--memory-mb", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--coretypes", default="default,unset")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    figures = {"preset_OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
               "shape": {"gallery": args.gallery, "probes": args.probes, "dim": args.dim}}
    for setting in args.coretypes.split(","):
        env = dict(os.environ)
        if setting == "unset":
            env.pop("OPENBLAS_CORETYPE", None)
        elif setting != "default":
            env["OPENBLAS_CORETYPE"] = setting
        cmd = [sys.executable, __file__, "--child", "--gallery", str(args.gallery), "--probes", str(args.probes),
               "--dim", str(args.dim), "--memory-mb", str(args.memory_mb), "--repeat", str(args.repeat)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(proc.stderr[-3000:])
        fig = json.loads(proc.stdout.strip().splitlines()[-1])
        figures[setting] = fig
        print(f"== OPENBLAS_CORETYPE {setting} -> kernel {fig['blas']}, engine peak RSS {fig['peak_rss_mib']} MiB")
        for score in ("cosine", "neg_euclidean"):
            f = fig[score]
            print(f"  {score:14s} {f['comparisons']:.3g} comparisons, {fig['threads']} threads: "
                  f"BLAS on the engine's tiles {f['blas_tiles_M_per_cpu_s']} M/cpu-s, BLAS in large calls "
                  f"{f['blas_large_calls_M_per_cpu_s']} M/cpu-s, engine {f['engine_M_per_cpu_s']} M/cpu-s; "
                  f"engine / BLAS tiles {f['engine_over_blas_tiles']} (runs {f['ratios_tiles']}), "
                  f"engine / faster BLAS {f['engine_over_best_blas']}; recomputed "
                  f"{100 * f['recomputed_fraction']:.2f}% of comparisons; fine bins from {f['fine_histogram_from']}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(figures, fh, indent=1)


if __name__ == "__main__":
    main()

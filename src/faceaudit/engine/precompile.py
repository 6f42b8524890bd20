"""Compile the engine's kernels ahead of time, into numba's cache beside them.

    python -m faceaudit.engine.precompile [--quiet]

numba compiles each kernel of :mod:`faceaudit.engine._kernel` on its first call and caches the
machine code on disk (``@njit(cache=True)``: ``__pycache__`` beside ``_kernel.py`` when that
folder is writable, else the user's cache folder, or ``NUMBA_CACHE_DIR``). Without this, the
first command after install spends about 10 CPU-seconds compiling. Building faceaudit from
source (``pip install .``) runs this module on the freshly built package (``setup.py``), so the
wheel carries the compiled kernels for the machine that built it, and the first run loads them
like any later run. numba keys its cache by the CPU (name and features), its own version and the
kernels' source: on another CPU, or with another numba, the entries are ignored and the first
run compiles as before (nothing breaks).

It compiles by running what a command runs (no list of signatures to drift from the code): the
engine's search on a tiny in-memory population, for both scores, with read-only templates (as a
memory-mapped ``.npy`` file gives them) and writable ones (as a notebook's arrays are), with
per-group threshold counts, and the reference scores of pairs. ``tests/test_precompile.py``
checks that a ``faceaudit audit`` after it compiles nothing.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _population(seed: int, *, read_only: bool):
    """A tiny evaluation set (20 enrolled subjects, 2 of them with two gallery templates, mated
    and non-mated probes) and its protocol, built without reading any file."""
    import pandas as pd

    from faceaudit.data.evalset import EvaluationSet
    from faceaudit.data.protocol import Protocol

    rng = np.random.default_rng(seed)
    n_enrolled, dim = 20, 16
    base = rng.standard_normal((n_enrolled, dim))
    gallery = np.concatenate([base, base[:2] + 0.3 * rng.standard_normal((2, dim))])
    mated = base + 0.5 * rng.standard_normal(base.shape)
    others = rng.standard_normal((12, dim))
    templates = np.ascontiguousarray(np.concatenate([gallery, mated, others]), np.float32)
    subjects = ([f"E{i:02d}" for i in range(n_enrolled)] + ["E00", "E01"]
                + [f"E{i:02d}" for i in range(n_enrolled)] + [f"N{i:02d}" for i in range(12)])
    manifest = pd.DataFrame({"template_id": [f"t{i:03d}" for i in range(len(subjects))], "subject_id": subjects})
    if read_only:
        templates.setflags(write=False)
    n_g = gallery.shape[0]
    protocol = Protocol(np.arange(n_g), np.arange(n_g, n_g + n_enrolled),
                        np.arange(n_g + n_enrolled, len(subjects)))
    return EvaluationSet(templates, manifest, source="precompile"), protocol


def compile_kernels() -> int:
    """Run every kernel a command calls once, so that numba compiles (or loads) and caches it;
    return how many compilations numba ran (0 when every kernel was already cached)."""
    from numba.core import event

    from faceaudit.engine.local import reference_scores, search

    compiled = []

    class _Count(event.Listener):
        def on_start(self, ev):
            compiled.append(ev)

        def on_end(self, ev):
            pass

    listener = _Count()
    event.register("numba:compile", listener)
    try:
        for read_only in (True, False):
            evalset, protocol = _population(0, read_only=read_only)
            groups = (np.arange(evalset.n) % 2).astype(np.int64)
            for score in ("cosine", "neg_euclidean"):
                search(evalset, protocol, score=score, top_k=3, thresholds=np.array([0.5, 0.9], np.float32),
                       gallery_groups=groups)
                search(evalset, protocol, score=score, top_k=3)
                reference_scores(evalset, protocol.probes[:4], protocol.gallery[:4], score)
    finally:
        event.unregister("numba:compile", listener)
    return len(compiled)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m faceaudit.engine.precompile", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quiet", action="store_true", help="print nothing")
    args = ap.parse_args(argv)
    t0, c0 = time.perf_counter(), time.process_time()
    n = compile_kernels()
    if not args.quiet:
        print(f"faceaudit: {n} numba compilations of the engine's kernels cached "
              f"({time.perf_counter() - t0:.1f} s, {time.process_time() - c0:.1f} CPU-s)")


if __name__ == "__main__":
    main()

"""Scoring engine: every probe against every gallery template, in blocks, reduced to counts.

One pass over ``probes @ gallery.T`` (float32, computed by BLAS one block of probe rows at a
time, the block height set by a memory budget) keeps, and only keeps:

* per probe: the best non-mate *subject* score (a subject's score is the max over its gallery
  templates), the mate's subject score and its rank (1 + the number of non-mate subjects with a
  score ``>=`` the mate's: a mate tied with a non-mate takes the worse rank), and the top-K
  candidate list (subject, score, rank);
* every genuine comparison score exactly (probe template vs each gallery template of its mate);
* every impostor comparison in a histogram whose bin edges are exact float32 values (see
  :mod:`faceaudit._kernel`), so that FMR at each edge is an exact count;
* optionally, per probe and gallery group, the impostor comparisons ``>=`` given thresholds
  (for demographic differentials).

Scores: ``cosine`` (templates L2-normalised, then dot product) or ``neg_euclidean``
(``-||p - g||``). Higher always means more alike. Every score is a *reference score*, defined
from the float32 templates independently of the order of any sum (see :mod:`faceaudit._kernel`);
the BLAS product only screens, and whatever it cannot decide within its error bound is
recomputed. So the result does not depend on the block size, memory budget, thread counts,
gallery sharding or the BLAS kernel (tested byte for byte); memory does not grow with the
number of comparisons. The output type, bin convention and merge functions live in
:mod:`faceaudit.counts` (re-exported here).
"""

from __future__ import annotations

from typing import Callable

import numba
import numpy as np

from faceaudit import _kernel
from faceaudit.counts import (N_BINS, SearchResult, ShardResult, hist_edges, merge_gallery_shards,  # noqa: F401
                              merge_probe_splits, score_bin)
from faceaudit.errors import InputError
from faceaudit.evalset import EvaluationSet, drop_pages
from faceaudit.protocol import Protocol

SCORE_KINDS = {"cosine": _kernel.COSINE, "neg_euclidean": _kernel.NEG_EUCLIDEAN}
DEFAULT_MEMORY_BUDGET = 256 * 2**20
RESOLVE_TILE = 1024  # gallery templates per tile when recomputing (512 KiB at d = 128)


def _gather(x: np.ndarray, rows: np.ndarray, score: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``x`` as the engine scores them: normalised (cosine, see :mod:`faceaudit._kernel`)
    or as they are (neg_euclidean), one float32 copy; and their squared norms (float64)."""
    x = np.asarray(x)  # a memory map reads through, no copy of the whole matrix
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    out = np.empty((rows.size, x.shape[1]), dtype=np.float32)
    sq = np.empty(rows.size, dtype=np.float64)
    step = 1 << 16  # in chunks, letting a memory map's pages go after each: never two copies resident
    for a in range(0, rows.size, step):
        b = min(a + step, rows.size)
        if score == "cosine":
            _kernel.normalise_rows(x, rows[a:b], out[a:b])
            sq[a:b] = 1.0
        else:
            np.take(x, rows[a:b], axis=0, out=out[a:b])
            _kernel.sq_norms(x, rows[a:b], sq[a:b])
        if rows.size > step:
            drop_pages(x)
    return out, sq


def _prepare(templates: np.ndarray, score: str) -> tuple[np.ndarray, np.ndarray]:
    """All rows of ``templates`` as the engine scores them, with float32 squared norms."""
    out, sq = _gather(templates, np.arange(templates.shape[0]), score)
    return out, sq.astype(np.float32)


def reference_scores(evalset: EvaluationSet, probe_rows, gallery_rows, score: str = "cosine") -> np.ndarray:
    """Reference score (see :mod:`faceaudit._kernel`) of each pair ``(probe_rows[i], gallery_rows[i])``."""
    pi, gi = np.asarray(probe_rows, np.int64).ravel(), np.asarray(gallery_rows, np.int64).ravel()
    P, _ = _gather(evalset.templates, pi, score)
    G, _ = _gather(evalset.templates, gi, score)
    out = np.empty(pi.size, np.float32)
    idx = np.arange(pi.size)
    _kernel.reference_pairs(SCORE_KINDS[score], P, G, idx, idx, out)
    return out


def matmul_rows(n_gallery: int) -> int:
    """Rows per BLAS call: a power of two in [8, 512], about 256 MiB of scores per call.

    It depends on the gallery size only, never on the block size or memory budget.
    """
    rows = 2 ** int(np.floor(np.log2(max(1.0, 2**28 / (4 * max(n_gallery, 1))))))
    return int(min(512, max(8, rows)))


def engine_overhead(n_gallery: int, n_subjects: int, dim: int, n_threads: int | None = None) -> int:
    """Bytes the engine holds besides the block of scores: the gallery copy (float32), the
    per-thread histograms and scratch (subject bounds, recomputation marks)."""
    t = n_threads or numba.get_num_threads()
    return int(4 * n_gallery * dim + 16 * n_gallery + t * (8 * N_BINS + 16 * n_subjects + 5 * n_gallery + 64))


def block_rows(n_gallery: int, memory_budget: int, overhead: int = 0) -> int:
    """Probe rows per block: a multiple of :func:`matmul_rows` whose float32 scores fit what is
    left of ``memory_budget`` bytes after ``overhead`` (at least one BLAS call's worth)."""
    tile = matmul_rows(n_gallery)
    rows = int((memory_budget - overhead) // (5 * max(n_gallery, 1)))  # scores + marks
    return max(tile, min(65536, rows - rows % tile))


def raw_scores(probes: np.ndarray, gallery: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``probes @ gallery.T`` in float32, computed in BLAS calls of exactly
    :func:`matmul_rows` rows (the last one zero-padded), into ``out`` if given.

    BLAS may round a row differently depending on the shape of the call it is in (small
    calls take other code paths); calls of one fixed shape make every score independent of
    the engine's block size.
    """
    n = probes.shape[0]
    if out is None:
        out = np.empty((n, gallery.shape[0]), dtype=np.float32)
    tile = matmul_rows(gallery.shape[0])
    gt = gallery.T
    full = n - n % tile
    for start in range(0, full, tile):
        np.matmul(probes[start:start + tile], gt, out=out[start:start + tile])
    if full < n:
        pad = np.zeros((tile, probes.shape[1]), dtype=np.float32)
        pad[:n - full] = probes[full:]
        out[full:n] = (pad @ gt)[:n - full]
    return out


class _Gallery:
    """The gallery as the engine scores it: templates sorted by subject, with subject bounds."""

    def __init__(self, evalset: EvaluationSet, rows: np.ndarray, score: str,
                 gallery_groups: np.ndarray | None):
        subjects = evalset.subject_ids
        self.subject_ids, codes = np.unique(subjects[rows], return_inverse=True)
        order = np.argsort(codes, kind="stable")
        self.rows, codes = rows[order], codes[order]
        self.start = np.searchsorted(codes, np.arange(self.subject_ids.size + 1)).astype(np.int64)
        self.vectors, sq = _gather(evalset.templates, self.rows, score)
        drop_pages(evalset.templates)
        self.sq32 = sq.astype(np.float32)
        self.sq_max = float(sq.max()) if sq.size else 0.0
        if gallery_groups is not None:
            self.groups = np.ascontiguousarray(np.asarray(gallery_groups)[self.rows], dtype=np.int32)
        else:
            self.groups = np.zeros(self.rows.size, dtype=np.int32)

    def shard(self, lo: int, hi: int) -> "_Gallery":
        """Subjects ``lo:hi`` as a gallery of their own (subject indices stay global)."""
        g = object.__new__(_Gallery)
        a, b = self.start[lo], self.start[hi]
        g.subject_ids, g.rows = self.subject_ids, self.rows[a:b]
        g.start = self.start[lo:hi + 1] - a
        g.vectors, g.sq32, g.sq_max, g.groups = self.vectors[a:b], self.sq32[a:b], self.sq_max, self.groups[a:b]
        g.offset = lo
        return g

    offset = 0


def _scratch(n_gallery: int, n_subjects: int):
    t = numba.get_num_threads()
    return (np.zeros((t, _kernel.N_BINS), np.int64), np.empty((t, 2, max(n_subjects, 1))),
            np.empty((t, max(n_gallery, 1)), np.int32), np.zeros((t, max(n_gallery, 1)), np.uint8),
            np.zeros((t, 1), np.int64))


def _shard_pass(kind: int, score: str, gal: _Gallery, P: np.ndarray, psq: np.ndarray, mate_subject: np.ndarray,
                mate_score: np.ndarray, thr: np.ndarray, n_groups: int, k: int, buffer: np.ndarray,
                marks_buffer: np.ndarray, work=None) -> ShardResult:
    """Screen one probe block against one gallery shard and reduce it (reference scores)."""
    n = P.shape[0]
    n_g = gal.rows.size
    d = P.shape[1]
    hist, sf, si, sb, rec = work if work is not None else _scratch(n_g, gal.start.size - 1)
    hist[:] = 0
    rec[:] = 0
    best = np.empty(n, np.float32)
    n_ge = np.zeros(n, np.int64)
    top_u = np.empty((n, k), np.int32)
    top_s = np.empty((n, k), np.float32)
    gcounts = np.zeros((n, max(n_groups, 1) if thr.size else 1, max(thr.size, 1)), np.int64)
    e_rows = (_kernel.euclid_bound(d, psq, gal.sq_max) if kind == _kernel.NEG_EUCLIDEAN
              else np.zeros(n, np.float64))
    block = raw_scores(P, gal.vectors, out=buffer.reshape(-1)[:n * n_g].reshape(n, n_g)) if n_g \
        else np.empty((n, 0), np.float32)
    marks = marks_buffer.reshape(-1)[:n * n_g].reshape(n, n_g)
    marks[:] = 0
    if kind == _kernel.NEG_EUCLIDEAN:
        _kernel.euclid_transform(block, psq.astype(np.float32), gal.sq32)
    dtabs, mtabs = np.empty((n, 256)), np.empty((n, 256), np.int64)
    _kernel.row_tables(kind, _kernel.cosine_bound(d), e_rows, dtabs, mtabs)
    P64 = P.astype(np.float64)
    bits = block.view(np.uint32)
    _kernel.resolve_bins(block, bits, kind, P, P64, gal.vectors, mtabs, marks, rec, RESOLVE_TILE)
    mate_k = np.where(mate_subject >= 0, mate_score, -np.inf).astype(np.float32)
    _kernel.search_block(block, bits, kind, P, gal.vectors, P64, dtabs, mtabs, marks, mate_subject, mate_k,
                         gal.start, gal.offset, thr, gal.groups, k, best, n_ge, top_u, top_s, gcounts,
                         hist, sf, si, sb, rec)
    return ShardResult(best=best, n_ge=n_ge, top_subject=top_u, top_score=top_s, hist=hist.sum(axis=0),
                       group_counts=gcounts, n_recomputed=int(rec.sum()))


def search(evalset: EvaluationSet, protocol: Protocol, *, score: str = "cosine", top_k: int = 20,
           memory_budget: int = DEFAULT_MEMORY_BUDGET, block_size: int | None = None,
           thresholds: np.ndarray | None = None, gallery_groups: np.ndarray | None = None,
           progress: Callable[[int, int], None] | None = None,
           gallery_shards: int = 1) -> SearchResult:
    """Search every probe of ``protocol`` against its gallery; return the counts.

    ``block_size`` (probe rows per block) overrides ``memory_budget`` (bytes for everything
    the engine holds: the gallery copy, one block of scores, per-thread histograms and scratch;
    at least one BLAS call's worth of rows is used whatever the budget). ``gallery_groups``: an
    int group code per *evaluation-set row* (only gallery rows are read); with ``thresholds`` it
    yields ``group_counts``. ``progress(done, total)`` is called after each block with probe
    counts. ``gallery_shards`` > 1 splits the gallery by subject and merges the shards'
    summaries (:func:`faceaudit.counts.merge_gallery_shards`), as a distributed backend would;
    the result is identical.
    """
    if score not in SCORE_KINDS:
        raise InputError(f"unknown score '{score}' (choose from {', '.join(SCORE_KINDS)})")
    if top_k < 1:
        raise InputError(f"top_k must be at least 1, got {top_k}")
    thr = np.asarray([] if thresholds is None else thresholds, dtype=np.float32).ravel()
    if thr.size and gallery_groups is None:
        raise InputError("thresholds need gallery_groups")
    kind = SCORE_KINDS[score]
    subjects = evalset.subject_ids
    gal = _Gallery(evalset, protocol.gallery, score, gallery_groups)
    n_subjects = gal.subject_ids.size
    n_g = gal.rows.size
    n_groups = int(gal.groups.max()) + 1 if (gallery_groups is not None and n_g) else 0

    probe_rows = protocol.probes
    n_probes = probe_rows.size
    n_mated = protocol.mated.size
    mate_subject = np.full(n_probes, -1, dtype=np.int32)
    mate_subject[:n_mated] = np.searchsorted(gal.subject_ids, subjects[protocol.mated])
    safe = np.maximum(mate_subject, 0)
    mate_n = np.where(mate_subject >= 0, gal.start[safe + 1] - gal.start[safe], 0)
    gen_offset = np.concatenate([[0], np.cumsum(mate_n)]).astype(np.int64)

    k = int(top_k)
    best = np.empty(n_probes, np.float32)
    mate = np.full(n_probes, np.nan, np.float32)
    n_ge = np.zeros(n_probes, np.int64)
    cand_u = np.empty((n_probes, k), np.int32)
    cand_s = np.empty((n_probes, k), np.float32)
    gen = np.empty(int(gen_offset[-1]), np.float32)
    gcounts = np.zeros((n_probes, max(n_groups, 1) if thr.size else 1, max(thr.size, 1)), np.int64)
    hist = np.zeros(_kernel.N_BINS, np.int64)
    n_recomputed = 0

    bounds = np.linspace(0, n_subjects, max(1, int(gallery_shards)) + 1).round().astype(int)
    shards = [gal.shard(a, b) for a, b in zip(bounds[:-1], bounds[1:])] if gallery_shards > 1 else [gal]
    dim = evalset.templates.shape[1]
    rows_per_block = block_size or block_rows(n_g, memory_budget, engine_overhead(n_g, n_subjects, dim))
    rows_per_block = max(1, min(rows_per_block, n_probes))
    buffer = np.empty((rows_per_block, n_g), dtype=np.float32)
    marks = np.empty((rows_per_block, n_g), dtype=np.uint8)
    work = _scratch(n_g, n_subjects)
    for start in range(0, n_probes, rows_per_block):
        stop = min(start + rows_per_block, n_probes)
        P, psq = _gather(evalset.templates, probe_rows[start:stop], score)
        blk = slice(start, stop)
        _kernel.genuine_block(kind, P, gal.vectors, mate_subject[blk], gal.start, gen_offset[blk], gen, mate[blk])
        parts = [_shard_pass(kind, score, sh, P, psq, mate_subject[blk], mate[blk], thr, n_groups, k, buffer,
                             marks, work)
                 for sh in shards]
        merged = merge_gallery_shards(parts) if len(parts) > 1 else parts[0]
        best[blk], n_ge[blk] = merged.best, merged.n_ge
        _kernel.assemble_candidates(merged.top_subject, merged.top_score, mate_subject[blk], mate[blk],
                                    merged.n_ge, cand_u[blk], cand_s[blk])
        hist += merged.hist
        gcounts[blk] = merged.group_counts
        n_recomputed += merged.n_recomputed
        if progress is not None:
            progress(stop, n_probes)
    del buffer, marks, work

    n_impostor = int(hist.sum())
    rank = np.where(mate_subject >= 0, n_ge + 1, 0)
    group_counts = group_comparisons = None
    if n_groups:
        per_group = np.bincount(gal.groups, minlength=n_groups)
        group_comparisons = np.tile(per_group, (n_probes, 1)).astype(np.int64)
        for r in range(n_mated):
            u = mate_subject[r]
            np.subtract.at(group_comparisons[r], gal.groups[gal.start[u]:gal.start[u + 1]], 1)
        group_counts = gcounts if thr.size else None
    return SearchResult(
        score=score, probe_rows=probe_rows, is_mated=mate_subject >= 0,
        probe_subjects=subjects[probe_rows], gallery_subjects=gal.subject_ids,
        best_nonmate=best, mate_score=mate, mate_rank=rank.astype(np.int64),
        candidates_subject=cand_u, candidates_score=cand_s,
        genuine_scores=gen, genuine_probe=np.repeat(np.arange(n_probes), mate_n),
        impostor_hist=hist, n_impostor=n_impostor,
        n_comparisons=int(n_probes * n_g), thresholds=thr,
        group_counts=group_counts, group_comparisons=group_comparisons, n_recomputed=n_recomputed)

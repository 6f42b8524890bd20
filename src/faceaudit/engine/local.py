"""Scoring engine: every probe against every gallery template, in blocks, reduced to counts.

One pass over ``probes @ gallery.T`` keeps, and only keeps (the work: blocks of probe rows sized
by a memory budget; within a block, units of 256 rows x a gallery shard taken by one worker
thread per core; within a unit, BLAS tiles of 256 x about 1,024 scores reduced by
:func:`faceaudit.engine._kernel.reduce_tile` while they are in cache):

* per probe: the best non-mate *subject* score (a subject's score is the max over its gallery
  templates), the mate's subject score and its rank (1 + the number of non-mate subjects with a
  score ``>=`` the mate's: a mate tied with a non-mate takes the worse rank), and the top-K
  candidate list (subject, score, rank);
* every genuine comparison score exactly (probe template vs each gallery template of its mate);
* every impostor comparison in a histogram whose bin edges are exact float32 values, fine in
  the tail and coarse in the bulk (see :mod:`faceaudit.engine.counts`), so that FMR at each of its
  edges is an exact count;
* optionally, per probe and gallery group, the impostor comparisons ``>=`` given thresholds
  (for demographic differentials).

Scores: ``cosine`` (templates L2-normalised, then dot product) or ``neg_euclidean``
(``-||p - g||``). Higher always means more alike. Every score is a *reference score*, defined
from the float32 templates independently of the order of any sum (see :mod:`faceaudit.engine._kernel`);
the BLAS product only screens, and whatever it cannot decide within its error bound is
recomputed. So the result does not depend on the block size, memory budget, thread counts,
gallery sharding or the BLAS kernel (tested byte for byte); memory does not grow with the
number of comparisons. The output type, bin convention and merge functions live in
:mod:`faceaudit.engine.counts` (re-exported here).
"""

from __future__ import annotations

import contextlib
from typing import Callable

import numba
import numpy as np

from auditcore.errors import InputError
from faceaudit.data.evalset import EvaluationSet, drop_pages, is_mapped, release_freed_memory
from faceaudit.data.protocol import Protocol
from faceaudit.engine import _kernel
from faceaudit.engine.counts import (
    N_BINS,
    SearchResult,
    ShardResult,
    coarse_bin,
    coarse_edge_bins,
    fold_histogram,
    merge_gallery_shards,
    tail_budget,
    tau_of,
)

SCORE_KINDS = {"cosine": _kernel.COSINE, "neg_euclidean": _kernel.NEG_EUCLIDEAN}
DEFAULT_MEMORY_BUDGET = 256 * 2**20


GATHER_SPAN = 16 * 2**20  # bytes of a memory-mapped file one chunk of a gather reads from (see _gather)


def _gather(x: np.ndarray, rows: np.ndarray, score: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``x`` as the engine scores them: normalised (cosine, see :mod:`faceaudit.engine._kernel`)
    or as they are (neg_euclidean), one float32 copy; and their squared norms (float64).

    From a memory map, rows are read in chunks of at most ``GATHER_SPAN`` bytes of the file (in
    file order) and the map's pages are let go after each chunk: the pages the OS maps around
    each row read (read-ahead) would otherwise stay in resident memory, up to the whole file
    for a few hundred rows spread over it."""
    x = np.asarray(x)  # a memory map reads through, no copy of the whole matrix
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    out = np.empty((rows.size, x.shape[1]), dtype=np.float32)
    sq = np.empty(rows.size, dtype=np.float64)

    def fill(r, o, q):
        if score == "cosine":
            _kernel.normalise_rows(x, r, o)
            q[:] = 1.0
        else:
            np.take(x, r, axis=0, out=o)
            _kernel.sq_norms(x, r, q)

    step = 1 << 16
    if not is_mapped(x) or rows.size == 0:
        for a in range(0, rows.size, step):
            fill(rows[a:a + step], out[a:a + step], sq[a:a + step])
        return out, sq
    ordered = bool(np.all(rows[1:] >= rows[:-1]))
    order = None if ordered else np.argsort(rows, kind="stable")
    srows = rows if ordered else rows[order]
    span = max(1, GATHER_SPAN // max(1, x.strides[0]))  # rows of the file per chunk
    a = 0
    while a < rows.size:
        b = min(a + step, int(np.searchsorted(srows, srows[a] + span, side="left")))
        b = max(b, a + 1)
        if ordered:
            fill(srows[a:b], out[a:b], sq[a:b])
        else:
            o, q = np.empty((b - a, x.shape[1]), np.float32), np.empty(b - a)
            fill(srows[a:b], o, q)
            out[order[a:b]], sq[order[a:b]] = o, q
        drop_pages(x)  # the whole map: read-ahead maps pages beyond the rows read
        a = b
    return out, sq


def _prepare(templates: np.ndarray, score: str) -> tuple[np.ndarray, np.ndarray]:
    """All rows of ``templates`` as the engine scores them, with float32 squared norms."""
    out, sq = _gather(templates, np.arange(templates.shape[0]), score)
    return out, sq.astype(np.float32)


def reference_scores(evalset: EvaluationSet, probe_rows, gallery_rows, score: str = "cosine") -> np.ndarray:
    """Reference score (see :mod:`faceaudit.engine._kernel`) of each pair ``(probe_rows[i], gallery_rows[i])``."""
    pi, gi = np.asarray(probe_rows, np.int64).ravel(), np.asarray(gallery_rows, np.int64).ravel()
    P, _ = _gather(evalset.templates, pi, score)
    G, _ = _gather(evalset.templates, gi, score)
    out = np.empty(pi.size, np.float32)
    idx = np.arange(pi.size)
    _kernel.reference_pairs(SCORE_KINDS[score], P, G, idx, idx, out)
    return out


def matmul_rows(n_gallery: int) -> int:
    """Rows per BLAS call of :func:`raw_scores`: a power of two in [8, 512], about 256 MiB of
    scores per call (a tool for tests and benchmarks; the engine itself works in tiles)."""
    rows = 2 ** int(np.floor(np.log2(max(1.0, 2**28 / (4 * max(n_gallery, 1))))))
    return int(min(512, max(8, rows)))


TILE_ROWS = 256    # probe rows per BLAS tile
TILE_COLS = 1024   # gallery templates per BLAS tile (whole subjects): 1 MiB of scores, in cache


def _threads() -> int:
    return max(1, int(numba.get_num_threads()))


def engine_overhead(n_gallery: int, n_subjects: int, dim: int, n_threads: int | None = None,
                    tile_cols: int | None = None) -> int:
    """Bytes the engine holds besides the probe block: the gallery copy (float32 vectors, norms,
    rows, groups, subject bounds) and per thread one tile of scores and the histograms."""
    t = n_threads or _threads()
    return int((4 * dim + 24) * n_gallery + 8 * n_subjects + t * thread_bytes(tile_cols or TILE_COLS))


def thread_bytes(width: int) -> int:
    """Bytes of one worker thread's :class:`Work` for tiles ``width`` templates wide: its tile of
    scores, per-column scratch (bins, undecided and listed columns) and both histograms."""
    return int(4 * TILE_ROWS * width + 20 * width + 8 * N_BINS + 8 * _kernel.N_COPIES * (_kernel.N_COARSE_EUC + 1))


def row_bytes(dim: int, top_k: int, n_groups: int = 1, n_thresholds: int = 0, shards: int = 1) -> int:
    """Bytes per probe row of a block: the row (float32 and float64), its bound tables, and its
    per-shard summaries."""
    per_shard = 12 * top_k + 16 + 8 * max(n_groups, 1) * max(n_thresholds, 1)
    return int(12 * dim + 2 * 8 * 256 + 64 + shards * per_shard)


def block_rows(n_gallery: int, memory_budget: int, overhead: int = 0, per_row: int = 4096) -> int:
    """Probe rows per block: what fits in ``memory_budget`` bytes after ``overhead`` (at least
    one tile's worth of rows, at most 65,536)."""
    rows = int((memory_budget - overhead) // max(per_row, 1))
    return max(TILE_ROWS, min(65536, rows))


def raw_scores(probes: np.ndarray, gallery: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``probes @ gallery.T`` in float32, in BLAS calls of :func:`matmul_rows` rows (the last
    one zero-padded), into ``out`` if given: the screen as one array (tests and benchmarks)."""
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
    """The gallery as the engine scores it: templates sorted by subject, with subject bounds.

    ``gather=False`` keeps only the layout (rows, subject bounds, norms, groups); the vectors of
    a range of subjects are then gathered on demand (:meth:`gathered`), so that a gallery
    larger than the memory budget is held one part at a time.
    """

    def __init__(self, evalset: EvaluationSet, rows: np.ndarray, score: str,
                 gallery_groups: np.ndarray | None, gather: bool = True):
        rows = np.asarray(rows, np.int64)
        # subjects sorted by id through their integer codes (which rank the ids), never a sort of strings
        self.subject_codes, codes = np.unique(evalset.subject_codes[rows], return_inverse=True)
        self._evalset = evalset
        order = np.argsort(codes, kind="stable")
        self.rows, codes = rows[order], codes[order]
        self.start = np.searchsorted(codes, np.arange(self.subject_codes.size + 1)).astype(np.int64)
        del codes, order
        self._templates, self._score = evalset.templates, score
        if gather:
            self.vectors, sq = _gather(evalset.templates, self.rows, score)
        else:
            self.vectors = None
            if score == "cosine":
                sq = np.ones(self.rows.size)
            else:
                sq = np.empty(self.rows.size)
                step = 1 << 16
                for a in range(0, self.rows.size, step):
                    _kernel.sq_norms(evalset.templates, np.ascontiguousarray(self.rows[a:a + step], np.int64),
                                     sq[a:a + step])
                    drop_pages(evalset.templates)
        self.sq32 = sq.astype(np.float32)
        self.sq_max = float(sq.max()) if sq.size else 0.0
        if gallery_groups is not None:
            self.groups = np.ascontiguousarray(np.asarray(gallery_groups)[self.rows], dtype=np.int32)
        else:
            self.groups = np.zeros(self.rows.size, dtype=np.int32)
        self.col_subject = np.repeat(np.arange(self.subject_codes.size, dtype=np.int32), np.diff(self.start))

    @property
    def subject_ids(self) -> np.ndarray:
        """The gallery's subject ids in sorted order (an object array of strings), built on first
        use (after the search, so that the strings are not held through it)."""
        ids = self.__dict__.get("_subject_ids")
        if ids is None:
            ids = self._evalset.subjects_of_codes(self.subject_codes)
            self.__dict__["_subject_ids"] = ids
        return ids

    @subject_ids.setter
    def subject_ids(self, value: np.ndarray) -> None:
        self.__dict__["_subject_ids"] = value

    def shard(self, lo: int, hi: int) -> "_Gallery":
        """Subjects ``lo:hi`` (of this gallery) as a gallery of their own (subject indices stay
        global); their vectors are views if this gallery holds its vectors, else not loaded."""
        g = object.__new__(_Gallery)
        a, b = self.start[lo], self.start[hi]
        g.subject_codes, g._evalset, g.rows = self.subject_codes, self._evalset, self.rows[a:b]
        if "_subject_ids" in self.__dict__:
            g.subject_ids = self.subject_ids
        g.start = self.start[lo:hi + 1] - a
        g.vectors = None if self.vectors is None else self.vectors[a:b]
        g.sq32, g.sq_max, g.groups = self.sq32[a:b], self.sq_max, self.groups[a:b]
        g.col_subject = self.col_subject[a:b]
        g._templates, g._score = self._templates, self._score
        g.offset = self.offset + lo
        return g

    def gathered(self) -> "_Gallery":
        """This gallery with its vectors in memory (gathered now if they are not)."""
        if self.vectors is not None:
            return self
        g = object.__new__(_Gallery)
        g.__dict__.update(self.__dict__)
        g.vectors, _ = _gather(self._templates, self.rows, self._score)  # (lets a map's pages go)
        return g

    offset = 0


def mate_layout(start: np.ndarray, mate_subject: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mates of one probe block in a gallery with subject bounds ``start``: (the mates'
    template positions in the gallery, their subject bounds among them, each probe's mate as
    an index into those subjects or -1)."""
    ms = np.asarray(mate_subject)
    uniq = np.unique(ms[ms >= 0])
    idx = np.concatenate([np.arange(start[u], start[u + 1]) for u in uniq]) if uniq.size \
        else np.empty(0, np.int64)
    bounds = np.concatenate([[0], np.cumsum(start[uniq + 1] - start[uniq])]).astype(np.int64)
    local = np.where(ms >= 0, np.searchsorted(uniq, ms), -1).astype(np.int32)
    return idx, bounds, local


def _mate_vectors(gal: _Gallery, mate_subject: np.ndarray):
    """The mates' gallery templates for one probe block (:func:`mate_layout`, with the vectors
    instead of positions), without the rest of the gallery."""
    idx, bounds, local = mate_layout(gal.start, mate_subject)
    if gal.vectors is not None:
        G = gal.vectors[idx]
    else:
        G, _ = _gather(gal._templates, gal.rows[idx], gal._score)
    return np.ascontiguousarray(G, np.float32), bounds, local


def subject_ranges(start: np.ndarray, most: int) -> list[tuple[int, int]]:
    """Subject ranges of at most ``most`` templates each (a subject with more gets a range of
    its own)."""
    out, lo, n = [], 0, start.size - 1
    while lo < n:
        hi = int(np.searchsorted(start, start[lo] + most, side="right")) - 1
        hi = min(max(hi, lo + 1), n)
        out.append((lo, hi))
        lo = hi
    return out


def resident_templates(memory_budget: int, dim: int, n_threads: int | None = None) -> int:
    """Gallery templates the engine holds in memory at once under ``memory_budget``: what is
    left after the per-thread tiles and histograms, at ``4 dim + 24`` bytes a template, and at
    least four tiles' worth."""
    t = n_threads or _threads()
    per_thread = thread_bytes(TILE_COLS) + 4 * TILE_ROWS * TILE_COLS  # and BLAS's packed copy of a tile
    free = memory_budget - t * per_thread
    return int(max(4 * TILE_COLS, free // (4 * dim + 24)))


def layout_bytes(n_gallery: int, n_subjects: int) -> int:
    """Bytes of the gallery's layout, held through the search whether or not its vectors are:
    per template its row (int64), norm, group and subject (4 bytes each); per subject its code
    and bounds (int64)."""
    return int(20 * n_gallery + 16 * n_subjects)


def gallery_plan(memory_budget: int, dim: int, n_gallery: int, n_subjects: int, n_probes: int, per_row: int,
                 n_threads: int | None = None, block_size: int | None = None) -> tuple[int, int]:
    """(gallery templates held in memory at once, probe rows per block) under ``memory_budget``.

    The gallery is held whole if it fits in three quarters of the budget after its layout
    (:func:`layout_bytes`, :func:`resident_templates`), else in parts of whole subjects of that
    size, one at a time; the probe block takes what is left (:func:`block_rows`). (Parts are not
    made smaller when every probe fits one block, though each is then gathered once whatever its
    size: each part starts its top-K afresh, so smaller parts recompute more comparisons, about
    a fifth more at 1e10 with 32 MiB parts, and the command's peak lies elsewhere.)
    """
    t = n_threads or _threads()
    layout = layout_bytes(n_gallery, n_subjects)
    resident = resident_templates(memory_budget * 3 // 4 - layout, dim, t)
    held = min(n_gallery, resident)
    rows = block_size or block_rows(n_gallery, memory_budget,
                                    layout + engine_overhead(held, min(n_subjects, held), dim, t), per_row)
    rows = max(1, min(rows, max(n_probes, 1)))
    return int(held), int(rows)


def tiles(start: np.ndarray, width: int = TILE_COLS) -> list[tuple[int, int]]:
    """The BLAS tiles' subject ranges: at most ``width`` templates each (whole subjects; a
    subject with more gets a tile of its own)."""
    return subject_ranges(start, width)


class Work:
    """One thread's scratch and histograms: a tile of scores with its coarse bins and marks, the
    coarse and fine impostor histograms (see :mod:`faceaudit.engine.counts`; the coarse one with
    interleaved copies and a last bin for what the screen left undecided), and a count of
    recomputed comparisons."""

    def __init__(self, kind: int, width: int):
        self.kind = kind
        self.width = max(int(width), 1)
        self.flat = np.empty(TILE_ROWS * self.width, np.float32)
        self.cbv = np.empty(self.width, np.int32)
        self.und = np.empty(self.width, np.int64)
        self.spec = np.empty(self.width, np.int64)
        n_coarse = _kernel.N_COARSE_COS if kind == _kernel.COSINE else _kernel.N_COARSE_EUC
        self.ch = np.zeros((_kernel.N_COPIES, n_coarse + 1), np.int64)
        self.fh = np.zeros(N_BINS, np.int64)
        self.counter = np.zeros(1, np.int64)

    def coarse(self) -> np.ndarray:
        return self.ch[:, :-1].sum(axis=0)


def _row_tables(kind: int, d: int, psq: np.ndarray, sq_max: float):
    n = psq.size
    e_rows = (_kernel.euclid_bound(d, psq, sq_max) if kind == _kernel.NEG_EUCLIDEAN else np.zeros(n))
    dl, mf, mc = np.empty(n), np.empty((n, 256), np.int64), np.empty((n, 256), np.int64)
    _kernel.tile_tables(kind, _kernel.cosine_bound(d), e_rows, float(sq_max), psq.astype(np.float32), dl, mf, mc)
    return dl, mf, mc


class _Block:
    """One probe block, prepared for tiles: rows (float32 and float64), squared norms, bound
    tables, the mates' subjects and reference scores."""

    def __init__(self, kind: int, P: np.ndarray, psq: np.ndarray, sq_max: float, mate_subject: np.ndarray,
                 mate_score: np.ndarray):
        self.P = np.ascontiguousarray(P, np.float32)
        self.P64 = self.P.astype(np.float64)
        self.psq = np.asarray(psq, np.float32)
        self.dl, self.mf, self.mc = _row_tables(kind, self.P.shape[1], np.asarray(psq, np.float64), sq_max)
        self.mate_subject = np.ascontiguousarray(mate_subject, np.int32)
        self.mate_score = np.where(self.mate_subject >= 0, mate_score, -np.inf).astype(np.float32)


def _empty_shard(n: int, k: int, n_groups: int, n_thr: int) -> ShardResult:
    return ShardResult(best=np.empty(n, np.float32), n_ge=np.zeros(n, np.int64),
                       top_subject=np.full((n, k), -1, np.int32), top_score=np.full((n, k), np.nan, np.float32),
                       hist=None, group_counts=np.zeros((n, max(n_groups, 1) if n_thr else 1, max(n_thr, 1)), np.int64))


def shard_unit(kind: int, gal: _Gallery, blk: _Block, a: int, b: int, out: ShardResult, filled: np.ndarray,
               thr: np.ndarray, k: int, floor: int, work: Work) -> None:
    """Rows ``a:b`` of the block against one gallery shard, tile by tile, into ``out``'s rows
    and ``work``'s histograms (every reported score a reference score)."""
    n = b - a
    thr32 = np.ascontiguousarray(thr, np.float32)
    for lo, hi in tiles(gal.start, TILE_COLS):
        c0, c1 = int(gal.start[lo]), int(gal.start[hi])
        w = c1 - c0
        if w > work.width:
            raise AssertionError("tile wider than the scratch")
        buf = work.flat[:n * w].reshape(n, w)
        np.matmul(blk.P[a:b], gal.vectors[c0:c1].T, out=buf)
        _kernel.reduce_tile(kind, buf, n, blk.P[a:b], blk.P64[a:b], blk.psq[a:b], gal.vectors[c0:c1],
                            gal.sq32[c0:c1], c0, gal.start, gal.col_subject, lo, hi, gal.offset,
                            blk.mate_subject[a:b], blk.mate_score[a:b], blk.dl[a:b], blk.mf[a:b], blk.mc[a:b],
                            thr32, gal.groups, k, out.top_score[a:b], out.top_subject[a:b], filled[a:b],
                            out.n_ge[a:b], out.group_counts[a:b], work.ch, work.fh, floor, work.cbv, work.und, work.spec,
                            work.counter)


def _finish_shard(out: ShardResult, filled: np.ndarray) -> ShardResult:
    out.best[:] = np.where(filled > 0, out.top_score[:, 0], -np.inf)
    return out


def max_width(gal: _Gallery) -> int:
    """The widest tile of the gallery (a subject with more templates than a tile widens it)."""
    widths = [int(gal.start[hi] - gal.start[lo]) for lo, hi in tiles(gal.start, TILE_COLS)]
    return max(widths, default=1)


def run_units(kind: int, shards: list[_Gallery], blk: _Block, thr: np.ndarray, n_groups: int, k: int,
              floor: int, pool, works) -> list[ShardResult]:
    """Every (row tile x shard) unit of one block on the thread pool; one result per shard."""
    n = blk.P.shape[0]
    outs = [_empty_shard(n, k, n_groups, thr.size) for _ in shards]
    filled = [np.zeros(n, np.int64) for _ in shards]
    units = [(si, a, min(a + TILE_ROWS, n)) for a in range(0, n, TILE_ROWS) for si in range(len(shards))]

    def one(unit):
        si, a, b = unit
        work = works.get()
        try:
            shard_unit(kind, shards[si], blk, a, b, outs[si], filled[si], thr, k, floor, work)
        finally:
            works.put(work)

    if pool is None:
        for u in units:
            one(u)
    else:
        for f in [pool.submit(one, u) for u in units]:
            f.result()
    return [_finish_shard(o, f) for o, f in zip(outs, filled)]


@contextlib.contextmanager
def worker_threads(kind: int, width: int, threads: int):
    """``threads`` worker threads for :func:`run_units`: (the pool, or ``None`` for one thread;
    a queue of their :class:`Work` scratch; the list of it, for :func:`histograms`)."""
    import queue
    from concurrent.futures import ThreadPoolExecutor
    all_works = [Work(kind, width) for _ in range(max(1, threads))]
    works: queue.SimpleQueue = queue.SimpleQueue()
    for w in all_works:
        works.put(w)
    pool = ThreadPoolExecutor(threads, thread_name_prefix="faceaudit-engine") if threads > 1 else None
    try:
        yield pool, works, all_works
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def histograms(works) -> tuple[np.ndarray, np.ndarray]:
    """The fine and coarse impostor histograms summed over threads."""
    works = list(works)
    fine = np.sum([w.fh for w in works], axis=0)
    coarse = np.sum([w.coarse() for w in works], axis=0)
    return fine, coarse


def finish_search(*, evalset: EvaluationSet, protocol: Protocol, score: str, gallery_subject_ids: np.ndarray,
                  gallery_groups_sorted: np.ndarray, gallery_start: np.ndarray, n_gallery: int,
                  mate_subject: np.ndarray, mate_n: np.ndarray, best: np.ndarray, mate: np.ndarray,
                  n_ge: np.ndarray, cand_u: np.ndarray, cand_s: np.ndarray, gen: np.ndarray,
                  fine: np.ndarray, coarse: np.ndarray, budget: int, thr: np.ndarray, gcounts: np.ndarray,
                  n_groups: int, n_recomputed: int) -> SearchResult:
    """The :class:`SearchResult` from merged per-probe arrays and summed histograms: ranks, the
    impostor histogram folded at the final ``tau`` (:func:`faceaudit.engine.counts.fold_histogram`),
    per-group comparison counts. Shared by the local engine and the Dask backend."""
    probe_rows = protocol.probes
    n_probes, n_mated = probe_rows.size, protocol.mated.size
    rank = np.where(mate_subject >= 0, n_ge + 1, 0)
    hist, fine_from = fold_histogram(fine, coarse, score, budget)
    group_counts = group_comparisons = None
    if n_groups:
        per_group = np.bincount(gallery_groups_sorted, minlength=n_groups)
        group_comparisons = np.tile(per_group, (n_probes, 1)).astype(np.int64)
        for r in range(n_mated):
            u = mate_subject[r]
            np.subtract.at(group_comparisons[r], gallery_groups_sorted[gallery_start[u]:gallery_start[u + 1]], 1)
        group_counts = gcounts if thr.size else None
    return SearchResult(
        score=score, probe_rows=probe_rows, is_mated=mate_subject >= 0,
        probe_subjects=evalset.subject_ids_at(probe_rows), gallery_subjects=gallery_subject_ids,
        best_nonmate=best, mate_score=mate, mate_rank=rank.astype(np.int64),
        candidates_subject=cand_u, candidates_score=cand_s,
        genuine_scores=gen, genuine_probe=np.repeat(np.arange(n_probes), mate_n),
        impostor_hist=hist, n_impostor=int(hist.sum()), hist_fine_from=int(fine_from),
        n_comparisons=int(n_probes * n_gallery), thresholds=thr,
        group_counts=group_counts, group_comparisons=group_comparisons, n_recomputed=int(n_recomputed))


FLOOR_SAMPLE = 512   # probes and gallery templates (each) in the sample that places the fine floor
FLOOR_SAFETY = 1.5   # the floor goes where the sample has this many times the fine budget above it


def fine_floor(evalset: EvaluationSet, probe_rows: np.ndarray, gallery_rows: np.ndarray, score: str,
               budget: int, n_impostor: int) -> int:
    """The coarse bin from which the engine counts impostor scores finely: where a fixed,
    evenly spaced sample of impostor pairs (reference scores) has ``FLOOR_SAFETY`` times the
    fine budget's share at or above it. It only has to lie at or below the final split
    (:func:`faceaudit.engine.counts.tau_of` of all the counts), which the engine checks; a sample
    that placed it too high (very unlikely) costs a second pass, never a different result.
    """
    if budget >= n_impostor or probe_rows.size == 0 or gallery_rows.size == 0:
        return 0
    pi = np.unique(np.linspace(0, probe_rows.size - 1, min(FLOOR_SAMPLE, probe_rows.size)).round().astype(int))
    gi = np.unique(np.linspace(0, gallery_rows.size - 1, min(FLOOR_SAMPLE, gallery_rows.size)).round().astype(int))
    prow, grow = probe_rows[pi], gallery_rows[gi]
    P, _ = _gather(evalset.templates, prow, score)
    G, _ = _gather(evalset.templates, grow, score)
    a, b = np.meshgrid(np.arange(prow.size), np.arange(grow.size), indexing="ij")
    codes = evalset.subject_codes
    keep = (codes[prow][:, None] != codes[grow][None, :]).ravel()
    a, b = a.ravel()[keep], b.ravel()[keep]
    if a.size == 0:
        return 0
    v = np.empty(a.size, np.float32)
    _kernel.reference_pairs(SCORE_KINDS[score], P, G, a, b, v)
    counts = np.bincount(coarse_bin(v, score), minlength=coarse_edge_bins(score).size)
    return tau_of(counts, int(FLOOR_SAFETY * budget * a.size // n_impostor))


def _passes(kind, score, evalset, gal, parts_of_gallery, split, probe_rows, rows_per_block, mate_subject, gen_offset,
            gen, mate, best, n_ge, cand_u, cand_s, gcounts, thr, n_groups, k, floor, width, threads, progress):
    """One pass over every probe block (results into the per-probe arrays); returns the summed
    fine and coarse histograms and the number of recomputed comparisons. ``parts_of_gallery``:
    the gallery in the parts held in memory one at a time (one part, gathered, if it fits the
    budget); each is split into ``split`` shards for the threads."""
    import threadpoolctl
    n_probes = probe_rows.size
    with worker_threads(kind, width, threads) as (pool, works, all_works):
        for start in range(0, n_probes, rows_per_block):
            stop = min(start + rows_per_block, n_probes)
            P, psq = _gather(evalset.templates, probe_rows[start:stop], score)
            blk = slice(start, stop)
            G_m, start_m, local_m = _mate_vectors(gal, mate_subject[blk])
            _kernel.genuine_block(kind, P, G_m, local_m, start_m, gen_offset[blk], gen, mate[blk])
            del G_m
            block = _Block(kind, P, psq, gal.sq_max, mate_subject[blk], mate[blk])
            parts = []
            for part in parts_of_gallery:
                held = part.gathered()
                n_sub = held.start.size - 1
                bounds = np.linspace(0, n_sub, min(split, max(n_sub, 1)) + 1).round().astype(int)
                shards = [held.shard(a, b) for a, b in zip(bounds[:-1], bounds[1:])] if split > 1 else [held]
                with threadpoolctl.threadpool_limits(1, user_api="blas"):
                    parts += run_units(kind, shards, block, thr, n_groups, k, floor, pool, works)
                del held, shards
            merged = merge_gallery_shards(parts) if len(parts) > 1 else parts[0]
            best[blk], n_ge[blk] = merged.best, merged.n_ge
            _kernel.assemble_candidates(merged.top_subject, merged.top_score, mate_subject[blk], mate[blk],
                                        merged.n_ge, cand_u[blk], cand_s[blk])
            gcounts[blk] = merged.group_counts
            if progress is not None:
                progress(stop, n_probes)
    fine, coarse = histograms(all_works)
    return fine, coarse, int(sum(int(w.counter[0]) for w in all_works))


def search(evalset: EvaluationSet, protocol: Protocol, *, score: str = "cosine", top_k: int = 20,
           memory_budget: int = DEFAULT_MEMORY_BUDGET, block_size: int | None = None,
           thresholds: np.ndarray | None = None, gallery_groups: np.ndarray | None = None,
           progress: Callable[[int, int], None] | None = None,
           gallery_shards: int = 1, fine_budget: int | None = None,
           fine_floor_bin: int | None = None) -> SearchResult:
    """Search every probe of ``protocol`` against its gallery; return the counts.

    ``block_size`` (probe rows per block) overrides ``memory_budget`` (bytes for everything
    the engine holds: the gallery copy, the probe block, per-thread tiles and histograms).
    ``gallery_groups``: an int group code per *evaluation-set row* (only gallery rows are
    read); with ``thresholds`` it yields ``group_counts``. ``progress(done, total)`` is called
    after each block with probe counts. ``gallery_shards`` > 1 splits the gallery by subject
    and merges the shards' summaries (:func:`faceaudit.engine.counts.merge_gallery_shards`), as a
    distributed backend would; the result is identical. ``fine_budget``: impostor comparisons
    the fine histogram must cover from the top (default :func:`faceaudit.engine.counts.tail_budget`);
    ``fine_floor_bin``: the coarse bin from which to count finely (default :func:`fine_floor`;
    for tests: a floor above the final split makes a second pass, with the same result).
    """
    if score not in SCORE_KINDS:
        raise InputError(f"unknown score '{score}' (choose from {', '.join(SCORE_KINDS)})")
    if top_k < 1:
        raise InputError(f"top_k must be at least 1, got {top_k}")
    thr = np.asarray([] if thresholds is None else thresholds, dtype=np.float32).ravel()
    if thr.size and gallery_groups is None:
        raise InputError("thresholds need gallery_groups")
    kind = SCORE_KINDS[score]
    dim = evalset.templates.shape[1]
    threads = _threads()
    probe_rows = protocol.probes
    n_probes = probe_rows.size
    n_rows_g = int(np.asarray(protocol.gallery).size)
    n_subj_g = int(np.count_nonzero(np.bincount(evalset.subject_codes[protocol.gallery]))) if n_rows_g else 0
    n_groups_max = int(np.asarray(gallery_groups)[protocol.gallery].max()) + 1 \
        if (gallery_groups is not None and n_rows_g) else 0
    per_row = row_bytes(dim, int(top_k), n_groups_max, thr.size, max(1, int(gallery_shards)))
    resident, rows_per_block = gallery_plan(memory_budget, dim, n_rows_g, n_subj_g, n_probes, per_row, threads,
                                            block_size)
    gal = _Gallery(evalset, protocol.gallery, score, gallery_groups, gather=n_rows_g <= resident)
    n_subjects = gal.subject_codes.size
    n_g = gal.rows.size
    n_groups = int(gal.groups.max()) + 1 if (gallery_groups is not None and n_g) else 0
    n_mated = protocol.mated.size
    mate_subject = np.full(n_probes, -1, dtype=np.int32)
    mate_subject[:n_mated] = np.searchsorted(gal.subject_codes, evalset.subject_codes[protocol.mated])
    safe = np.maximum(mate_subject, 0)
    mate_n = np.where(mate_subject >= 0, gal.start[safe + 1] - gal.start[safe], 0)
    gen_offset = np.concatenate([[0], np.cumsum(mate_n)]).astype(np.int64)
    n_impostor = int(n_probes) * int(n_g) - int(gen_offset[-1])
    budget = tail_budget(n_impostor) if fine_budget is None else int(fine_budget)

    k = int(top_k)
    best = np.empty(n_probes, np.float32)
    mate = np.full(n_probes, np.nan, np.float32)
    n_ge = np.zeros(n_probes, np.int64)
    cand_u = np.empty((n_probes, k), np.int32)
    cand_s = np.empty((n_probes, k), np.float32)
    gen = np.empty(int(gen_offset[-1]), np.float32)
    gcounts = np.zeros((n_probes, max(n_groups, 1) if thr.size else 1, max(thr.size, 1)), np.int64)

    n_shards = max(1, int(gallery_shards))
    tiles_per_block = -(-rows_per_block // TILE_ROWS)
    if tiles_per_block * n_shards < 2 * threads:  # few probes: split the gallery to keep every thread busy
        n_shards = max(n_shards, min(-(-2 * threads // tiles_per_block), max(n_subjects, 1)))
    # the gallery in parts that fit the budget, held one at a time (one part when it all fits)
    parts_of_gallery = [gal] if gal.vectors is not None else \
        [gal.shard(lo, hi) for lo, hi in subject_ranges(gal.start, resident)]
    width = max(TILE_COLS, int(np.diff(gal.start).max(initial=1)))  # the widest tile any split can make
    floor = fine_floor(evalset, probe_rows, gal.rows, score, budget, n_impostor) if fine_floor_bin is None \
        else int(fine_floor_bin)
    release_freed_memory()  # what loading and the layout freed, before the pass holds its most
    while True:
        fine, coarse, n_recomputed = _passes(kind, score, evalset, gal, parts_of_gallery, n_shards, probe_rows,
                                             rows_per_block, mate_subject, gen_offset, gen, mate, best, n_ge,
                                             cand_u, cand_s, gcounts, thr, n_groups, k, floor, width, threads,
                                             progress)
        if floor == 0 or tau_of(coarse, budget) >= floor:
            break
        floor = 0  # the sample put the fine floor above the split: count everything finely (rare)
    return finish_search(evalset=evalset, protocol=protocol, score=score, gallery_subject_ids=gal.subject_ids,
                         gallery_groups_sorted=gal.groups, gallery_start=gal.start, n_gallery=n_g,
                         mate_subject=mate_subject, mate_n=mate_n, best=best, mate=mate, n_ge=n_ge,
                         cand_u=cand_u, cand_s=cand_s, gen=gen, fine=fine, coarse=coarse, budget=budget,
                         thr=thr, gcounts=gcounts, n_groups=n_groups, n_recomputed=n_recomputed)

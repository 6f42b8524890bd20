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
(``-||p - g||``). Higher always means more alike. The result does not depend on the block
size (tested), memory does not grow with the number of comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numba
import numpy as np

from faceaudit import _kernel
from faceaudit.errors import InputError
from faceaudit.evalset import EvaluationSet
from faceaudit.protocol import Protocol

SCORE_KINDS = {"cosine": _kernel.COSINE, "neg_euclidean": _kernel.NEG_EUCLIDEAN}
DEFAULT_MEMORY_BUDGET = 256 * 2**20


@dataclass
class SearchResult:
    """Counts from one engine pass. Probe order: ``protocol.probes`` (mated first).

    Arrays per probe (length ``n_probes``): ``best_nonmate`` (float32), ``mate_score`` (float32,
    NaN for non-mated probes), ``mate_rank`` (int64, 1-based, 0 for non-mated), ``is_mated``.
    ``candidates_subject``/``candidates_score``: n_probes x K (subject index into
    ``gallery_subjects``, -1 and NaN where the gallery has fewer than K subjects).
    ``genuine_scores``: every genuine comparison, float32; ``genuine_probe``: its probe row.
    ``impostor_hist``: counts per exact float32 bin (``n_impostor`` in all).
    ``group_counts``: n_probes x n_groups x n_thresholds impostor comparisons ``>= T``
    (empty unless thresholds and gallery groups were given); ``group_comparisons``:
    n_probes x n_groups impostor comparisons in all.
    """

    score: str
    probe_rows: np.ndarray
    is_mated: np.ndarray
    probe_subjects: np.ndarray
    gallery_subjects: np.ndarray
    best_nonmate: np.ndarray
    mate_score: np.ndarray
    mate_rank: np.ndarray
    candidates_subject: np.ndarray
    candidates_score: np.ndarray
    genuine_scores: np.ndarray
    genuine_probe: np.ndarray
    impostor_hist: np.ndarray
    n_impostor: int
    n_comparisons: int
    thresholds: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))
    group_counts: np.ndarray | None = None
    group_comparisons: np.ndarray | None = None

    @property
    def n_probes(self) -> int:
        return int(self.probe_rows.size)

    @property
    def gallery_size(self) -> int:
        """Number of enrolled subjects (the N of 1:N)."""
        return int(self.gallery_subjects.size)


def hist_edges() -> np.ndarray:
    """Lower edge (float32) of every histogram bin, in increasing order of score.

    The edge of bin ``b`` is the smallest float32 in it, so ``score >= edges[b]`` exactly when
    ``score_bin(score) >= b``. Bins of NaN bit patterns have NaN edges; finite scores never
    fall in them.
    """
    keys = (np.arange(_kernel.N_BINS, dtype=np.uint64) << np.uint64(_kernel.HIST_SHIFT))
    negative = keys < np.uint64(0x80000000)
    bits = np.where(negative, (np.uint64(2**32) - keys) & np.uint64(0xFFFFFFFF), keys & np.uint64(0x7FFFFFFF))
    edges = bits.astype(np.uint32).view(np.float32).copy()
    edges[0] = np.nan  # key 0 is no float; the rest of bin 0 are NaN patterns
    return edges


def score_bin(scores: np.ndarray) -> np.ndarray:
    """Histogram bin of each float32 score (same mapping as the kernel)."""
    bits = np.asarray(scores, dtype=np.float32).view(np.uint32).astype(np.uint64)
    keys = np.where(bits >= np.uint64(0x80000000), np.uint64(2**32) - bits, bits | np.uint64(0x80000000))
    return (keys >> np.uint64(_kernel.HIST_SHIFT)).astype(np.int64)


def _prepare(templates: np.ndarray, score: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.ascontiguousarray(templates, dtype=np.float32)
    if score == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = np.ascontiguousarray(x / norms, dtype=np.float32)
    sq = np.einsum("ij,ij->i", x, x, dtype=np.float32)
    return x, sq.astype(np.float32)


def matmul_rows(n_gallery: int) -> int:
    """Rows per BLAS call: a power of two in [8, 512], about 256 MiB of scores per call.

    It depends on the gallery size only, never on the block size or memory budget.
    """
    rows = 2 ** int(np.floor(np.log2(max(1.0, 2**28 / (4 * max(n_gallery, 1))))))
    return int(min(512, max(8, rows)))


def block_rows(n_gallery: int, memory_budget: int) -> int:
    """Probe rows per block: a multiple of :func:`matmul_rows` whose float32 scores fit
    ``memory_budget`` bytes (at least one BLAS call's worth)."""
    tile = matmul_rows(n_gallery)
    rows = int(memory_budget // (4 * max(n_gallery, 1)))
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


def search(evalset: EvaluationSet, protocol: Protocol, *, score: str = "cosine", top_k: int = 20,
           memory_budget: int = DEFAULT_MEMORY_BUDGET, block_size: int | None = None,
           thresholds: np.ndarray | None = None, gallery_groups: np.ndarray | None = None,
           progress: Callable[[int, int], None] | None = None) -> SearchResult:
    """Search every probe of ``protocol`` against its gallery; return the counts.

    ``block_size`` (probe rows per block) overrides ``memory_budget`` (bytes for one block of
    scores). ``gallery_groups``: an int group code per *evaluation-set row* (only gallery rows
    are read); with ``thresholds`` it yields ``group_counts``. ``progress(done, total)`` is
    called after each block with probe counts.
    """
    if score not in SCORE_KINDS:
        raise InputError(f"unknown score '{score}' (choose from {', '.join(SCORE_KINDS)})")
    if top_k < 1:
        raise InputError(f"top_k must be at least 1, got {top_k}")
    subjects = evalset.subject_ids
    gal_rows = protocol.gallery
    gal_subject_ids, gal_codes = np.unique(subjects[gal_rows], return_inverse=True)
    order = np.argsort(gal_codes, kind="stable")
    gal_rows, gal_codes = gal_rows[order], gal_codes[order]
    gallery_start = np.searchsorted(gal_codes, np.arange(gal_subject_ids.size + 1)).astype(np.int64)

    probe_rows = protocol.probes
    n_mated = protocol.mated.size
    code_of = {s: i for i, s in enumerate(gal_subject_ids)}
    mate_subject = np.full(probe_rows.size, -1, dtype=np.int32)
    mate_subject[:n_mated] = [code_of[s] for s in subjects[protocol.mated]]
    mate_n = np.where(mate_subject >= 0,
                      gallery_start[mate_subject + 1] - gallery_start[np.maximum(mate_subject, 0)], 0)
    gen_offset = np.concatenate([[0], np.cumsum(mate_n)]).astype(np.int64)

    x, sq = _prepare(evalset.templates, score)
    gallery = np.ascontiguousarray(x[gal_rows])
    gallery_sq = np.ascontiguousarray(sq[gal_rows])
    kind = SCORE_KINDS[score]

    thr = np.asarray([] if thresholds is None else thresholds, dtype=np.float32).ravel()
    if thr.size and gallery_groups is None:
        raise InputError("thresholds need gallery_groups")
    if gallery_groups is not None:
        ggroup = np.ascontiguousarray(np.asarray(gallery_groups)[gal_rows], dtype=np.int32)
        n_groups = int(ggroup.max()) + 1 if ggroup.size else 0
    else:
        ggroup = np.zeros(gal_rows.size, dtype=np.int32)
        n_groups = 0
    n_probes = probe_rows.size
    k = int(top_k)
    best = np.empty(n_probes, np.float32)
    mate = np.full(n_probes, np.nan, np.float32)
    n_ge = np.zeros(n_probes, np.int64)
    cand_u = np.empty((n_probes, k), np.int32)
    cand_s = np.empty((n_probes, k), np.float32)
    gen = np.empty(int(gen_offset[-1]), np.float32)
    gcounts = np.zeros((n_probes, max(n_groups, 1) if thr.size else 1, max(thr.size, 1)), np.int64)
    n_chunks = max(1, numba.get_num_threads())
    hist = np.zeros((n_chunks, _kernel.N_BINS), np.int64)

    rows_per_block = block_size or block_rows(gal_rows.size, memory_budget)
    buffer = np.empty((min(rows_per_block, n_probes), gal_rows.size), dtype=np.float32)
    for start in range(0, n_probes, rows_per_block):
        stop = min(start + rows_per_block, n_probes)
        block = raw_scores(x[probe_rows[start:stop]], gallery, out=buffer[:stop - start])
        _kernel.search_block(
            block, block.view(np.uint32), kind, sq[probe_rows[start:stop]], gallery_sq,
            mate_subject[start:stop], gallery_start, gen_offset[start:stop], thr, ggroup, k,
            best[start:stop], mate[start:stop], n_ge[start:stop], cand_u[start:stop],
            cand_s[start:stop], gen, gcounts[start:stop], hist)
        if progress is not None:
            progress(stop, n_probes)

    impostor_hist = hist.sum(axis=0)
    n_impostor = int(impostor_hist.sum())
    rank = np.where(mate_subject >= 0, n_ge + 1, 0)
    group_counts = group_comparisons = None
    if n_groups:
        per_group = np.bincount(ggroup, minlength=n_groups)
        group_comparisons = np.tile(per_group, (n_probes, 1)).astype(np.int64)
        if n_mated:
            mated_rows = np.arange(n_mated)
            mate_groups = [ggroup[gallery_start[u]:gallery_start[u + 1]] for u in mate_subject[:n_mated]]
            for r, groups in zip(mated_rows, mate_groups):
                np.subtract.at(group_comparisons[r], groups, 1)
        group_counts = gcounts if thr.size else None
    return SearchResult(
        score=score, probe_rows=probe_rows, is_mated=mate_subject >= 0,
        probe_subjects=subjects[probe_rows], gallery_subjects=gal_subject_ids,
        best_nonmate=best, mate_score=mate, mate_rank=rank.astype(np.int64),
        candidates_subject=cand_u, candidates_score=cand_s,
        genuine_scores=gen, genuine_probe=np.repeat(np.arange(n_probes), mate_n),
        impostor_hist=impostor_hist, n_impostor=n_impostor,
        n_comparisons=int(n_probes * gal_rows.size), thresholds=thr,
        group_counts=group_counts, group_comparisons=group_comparisons)

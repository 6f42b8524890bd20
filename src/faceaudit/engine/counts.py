"""The engine's output (:class:`SearchResult`), its histogram bin convention, and merging.

Everything an engine pass produces is a per-probe record or a sum: per-probe arrays are
concatenated when the probes are split across workers; the impostor histogram, the impostor
counts and the comparison counts add up. :func:`merge_probe_splits` combines results computed on
disjoint probe blocks; :func:`merge_gallery_shards` combines per-shard partial results
(:class:`ShardResult`) computed on disjoint gallery shards: best non-mate by max, counts by
addition, top-K lists by merging, ranks by adding the per-shard counts of non-mates scoring
``>=`` the mate. Both reproduce a single pass bit for bit, because every reported score is a
reference score (see :mod:`faceaudit.engine._kernel`) that does not depend on how the work was split.

Histogram convention: a float32 score ``s`` is mapped to the unsigned integer ``key(s)`` that
orders like the float (negatives: ``2**32 - bits``; non-negatives: ``bits | 2**31``; so -0.0
and 0.0 share a key); the *fine* bin is ``key >> HIST_SHIFT`` (2^-11 of the score's binade
wide). Each bin's lowest value is an exact float32 (its *edge*) and ``score >= edge`` is
decided exactly by ``bin >= edge bin``.

Fine bins are needed where figures read thresholds off the histogram: the upper tail (FMR of
1e-2 and below, the tail fit). Elsewhere the impostor histogram is *coarse*: ``cosine`` scores
in bins ``2**-COARSE_BITS`` wide on an absolute grid (``floor(s * 256) / 256``),
``neg_euclidean`` scores in groups of ``2**COARSE_SHIFT`` fine bins (1/32 of a binade); every
coarse edge is a fine edge. The split ``tau`` is the lowest coarse edge with at most
:func:`tail_budget` impostor comparisons at or above it, a function of the counts alone (so of
the data, not of how the work was split). :func:`fold_histogram` gives the engine's histogram:
fine counts from ``tau`` up (``SearchResult.hist_fine_from`` is its fine bin), and below it
each coarse bin's count at its edge's fine bin. Thresholds are exact at every fine edge from
``hist_fine_from`` up and at every coarse edge below it (:func:`exact_bins`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace

import numpy as np

HIST_SHIFT = 12
N_BINS = 1 << (32 - HIST_SHIFT)
COARSE_BITS = 8      # cosine: coarse bins 2^-8 wide
COARSE_SHIFT = 6     # neg_euclidean: 64 fine bins per coarse bin
TAIL_PERCENT = 1       # the fine histogram covers more than the top 1% of impostor comparisons (FMR 1e-2)
TAIL_MIN = 1 << 20      # ... and at least this many


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
    n_probes x n_groups impostor comparisons in all. Every score is a reference score.
    ``n_recomputed``: comparisons the BLAS screen could not decide, recomputed (diagnostic).
    ``hist_fine_from``: the fine bin from which ``impostor_hist`` has fine bins; below it only
    coarse edges hold counts (see the module docstring and :func:`exact_bins`).
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
    n_recomputed: int = 0
    hist_fine_from: int = 0

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
    fall in them. Built once (4 MiB) and shared: read-only.
    """
    return _hist_edges()


@functools.lru_cache(maxsize=1)
def _hist_edges() -> np.ndarray:
    keys = (np.arange(N_BINS, dtype=np.uint64) << np.uint64(HIST_SHIFT))
    negative = keys < np.uint64(0x80000000)
    bits = np.where(negative, (np.uint64(2**32) - keys) & np.uint64(0xFFFFFFFF), keys & np.uint64(0x7FFFFFFF))
    edges = bits.astype(np.uint32).view(np.float32).copy()
    edges[0] = np.nan  # key 0 is no float; the rest of bin 0 are NaN patterns
    edges.flags.writeable = False
    return edges


def score_bin(scores: np.ndarray) -> np.ndarray:
    """Histogram bin of each float32 score (same mapping as the kernel)."""
    bits = np.asarray(scores, dtype=np.float32).view(np.uint32).astype(np.uint64)
    keys = np.where(bits >= np.uint64(0x80000000), np.uint64(2**32) - bits, bits | np.uint64(0x80000000))
    return (keys >> np.uint64(HIST_SHIFT)).astype(np.int64)


def tail_budget(n_impostor: int) -> int:
    """Impostor comparisons the fine histogram covers at least, counted from the top."""
    return max(int(n_impostor) * TAIL_PERCENT // 100 + 1, TAIL_MIN)


def coarse_edge_bins(score: str) -> np.ndarray:
    """Fine bin of each coarse bin's lower edge, in coarse-bin order (increasing score)."""
    if score == "cosine":
        c = np.arange((1 << (COARSE_BITS + 1)) + 1)
        return score_bin((c - (1 << COARSE_BITS)).astype(np.float32) / np.float32(1 << COARSE_BITS))
    return np.arange(1 << (32 - HIST_SHIFT - COARSE_SHIFT), dtype=np.int64) << COARSE_SHIFT


def coarse_bin(scores: np.ndarray, score: str) -> np.ndarray:
    """Coarse bin of each float32 score (the kernel's ``coarse_of``)."""
    s = np.asarray(scores, dtype=np.float32)
    if score == "cosine":
        return np.floor(s.astype(np.float64) * 2.0**COARSE_BITS).astype(np.int64) + (1 << COARSE_BITS)
    return score_bin(s) >> COARSE_SHIFT


def tau_of(coarse: np.ndarray, budget: int) -> int:
    """The lowest coarse bin with at most ``budget`` counts at or above it."""
    above = np.cumsum(np.asarray(coarse, np.int64)[::-1])[::-1]
    over = np.flatnonzero(above > budget)
    return int(over[-1]) + 1 if over.size else 0


def fold_histogram(fine: np.ndarray, coarse: np.ndarray, score: str, budget: int) -> tuple[np.ndarray, int]:
    """The impostor histogram from fine counts (complete at and above ``tau``) and coarse counts:
    fine bins from ``tau``'s edge up, each coarse bin below ``tau`` at its edge. Returns the
    histogram and the fine bin of ``tau``'s edge (``hist_fine_from``)."""
    coarse = np.asarray(coarse, np.int64)
    tau = tau_of(coarse, budget)
    edges = coarse_edge_bins(score)
    fine_from = 0 if tau == 0 else (int(edges[tau]) if tau < edges.size else N_BINS)
    hist = np.zeros(N_BINS, np.int64)
    hist[fine_from:] = np.asarray(fine, np.int64)[fine_from:]
    np.add.at(hist, edges[:tau], coarse[:tau])
    return hist, fine_from


def fold_scores(scores: np.ndarray, score: str, budget: int | None = None) -> tuple[np.ndarray, int]:
    """What the engine's histogram is for these impostor reference scores (brute force, for tests
    and for histograms built from exact scores)."""
    s = np.asarray(scores, dtype=np.float32).ravel()
    n_coarse = coarse_edge_bins(score).size
    coarse = np.bincount(coarse_bin(s, score), minlength=n_coarse)
    fine = np.bincount(score_bin(s), minlength=N_BINS)
    return fold_histogram(fine, coarse, score, tail_budget(s.size) if budget is None else budget)


def exact_bins(bins: np.ndarray, score: str, fine_from: int) -> np.ndarray:
    """Each fine bin moved down to the nearest bin whose edge is an exact threshold of a folded
    histogram: itself from ``fine_from`` up, the coarse edge at or below it under that."""
    bins = np.asarray(bins, np.int64)
    if fine_from <= 0:
        return bins
    return np.where(bins >= fine_from, bins, coarse_edge_bins(score)[coarse_of_bins(bins, score)])


def next_exact_bins(bins: np.ndarray, score: str, fine_from: int) -> np.ndarray:
    """The lowest exact threshold bin above each (exact) bin: the next fine bin from
    ``fine_from`` up, the next coarse edge below it."""
    bins = np.asarray(bins, np.int64)
    if fine_from <= 0:
        return bins + 1
    edges = np.append(coarse_edge_bins(score), N_BINS)
    nxt = edges[np.minimum(np.searchsorted(edges, bins, side="right"), edges.size - 1)]
    return np.where(bins >= fine_from, bins + 1, np.minimum(nxt, fine_from))


_PER_PROBE = ("probe_rows", "is_mated", "probe_subjects", "best_nonmate", "mate_score", "mate_rank",
              "candidates_subject", "candidates_score")


def coarse_of_bins(bins: np.ndarray, score: str) -> np.ndarray:
    """Coarse bin holding each fine bin."""
    edges = coarse_edge_bins(score)
    return np.maximum(np.searchsorted(edges, np.asarray(bins, np.int64), side="right") - 1, 0)


def merge_probe_splits(parts: list[SearchResult]) -> SearchResult:
    """One result from results over consecutive, disjoint probe blocks (same gallery).

    Per-probe arrays are concatenated, genuine scores concatenated (their probe index shifted),
    counts added, and the impostor histograms added and folded again at the ``tau`` of the
    merged counts (:func:`fold_histogram`). That needs the fine counts from the merged ``tau``
    up, which every part has unless the merged ``tau`` lies below a part's own (then
    ``ValueError``: merge the engine's unfolded summaries instead, as its backends do).
    """
    if not parts:
        raise ValueError("nothing to merge")
    first = parts[0]
    cat = {name: np.concatenate([getattr(p, name) for p in parts]) for name in _PER_PROBE}
    offsets = np.cumsum([0] + [p.n_probes for p in parts[:-1]])
    gen_probe = np.concatenate([p.genuine_probe + o for p, o in zip(parts, offsets)])
    gc = None if first.group_counts is None else np.concatenate([p.group_counts for p in parts])
    gcomp = None if first.group_comparisons is None else np.concatenate([p.group_comparisons for p in parts])
    total = np.sum([p.impostor_hist for p in parts], axis=0)
    n_imp = sum(p.n_impostor for p in parts)
    filled = np.flatnonzero(total)
    coarse = np.bincount(coarse_of_bins(filled, first.score), weights=total[filled],
                         minlength=coarse_edge_bins(first.score).size).astype(np.int64)
    hist, fine_from = fold_histogram(total, coarse, first.score, tail_budget(n_imp))
    if fine_from < max(p.hist_fine_from for p in parts):
        raise ValueError("these parts' histograms are coarse where the merged one needs fine bins")
    return replace(first, **cat, genuine_scores=np.concatenate([p.genuine_scores for p in parts]),
                   genuine_probe=gen_probe, impostor_hist=hist, hist_fine_from=fine_from,
                   n_impostor=n_imp, n_comparisons=sum(p.n_comparisons for p in parts),
                   group_counts=gc, group_comparisons=gcomp, n_recomputed=sum(p.n_recomputed for p in parts))


@dataclass
class ShardResult:
    """What one gallery shard contributes for a set of probes (subject indices are global).

    ``n_ge``: non-mate subjects of the shard scoring ``>=`` the probe's mate score (which every
    shard is given, computed from the mate's templates); ``best``: the shard's best non-mate
    score (-inf if none); ``top_subject``/``top_score``: the shard's top-K non-mates, ties by
    subject index; ``hist`` (fine, complete at and above the shard's own ``tau``, which is never
    above the final one) and ``coarse``/``group_counts``/``n_recomputed``: sums over the shard.
    """

    best: np.ndarray
    n_ge: np.ndarray
    top_subject: np.ndarray
    top_score: np.ndarray
    hist: np.ndarray
    group_counts: np.ndarray
    n_recomputed: int = 0
    coarse: np.ndarray | None = None


def _add(parts):
    return None if any(p is None for p in parts) else np.sum(parts, axis=0)


def merge_gallery_shards(shards: list[ShardResult]) -> ShardResult:
    """Combine gallery shards: max, sums, and the top-K of the union of top-K lists."""
    best = np.maximum.reduce([s.best for s in shards])
    n_ge = np.sum([s.n_ge for s in shards], axis=0)
    k = shards[0].top_subject.shape[1]
    subj = np.concatenate([s.top_subject for s in shards], axis=1)
    score = np.concatenate([s.top_score for s in shards], axis=1)
    # order: score descending, then subject ascending; empty slots (-1, NaN) last
    key_score = np.where(subj >= 0, -score.astype(np.float64), np.inf)
    key_subj = np.where(subj >= 0, subj, np.iinfo(np.int32).max)
    order = np.lexsort((key_subj, key_score), axis=1)[:, :k]
    return ShardResult(best=best, n_ge=n_ge, top_subject=np.take_along_axis(subj, order, 1),
                       top_score=np.take_along_axis(score, order, 1),
                       hist=_add([s.hist for s in shards]), coarse=_add([s.coarse for s in shards]),
                       group_counts=np.sum([s.group_counts for s in shards], axis=0),
                       n_recomputed=sum(s.n_recomputed for s in shards))

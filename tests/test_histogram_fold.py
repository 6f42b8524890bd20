"""The impostor histogram at two resolutions: fine bins in the tail, coarse bins in the bulk.

Checked against brute force: every impostor comparison's reference score, binned by the
documented convention (:func:`faceaudit.engine.counts.fold_scores`, written from the definitions:
the split is the lowest coarse edge with at most the fine budget at or above it), and FMR at
every threshold the verification curve reports counted directly from those scores.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from faceaudit.data.evalset import validate
from faceaudit.data.protocol import generate_protocol
from faceaudit.engine import counts
from faceaudit.engine.local import fine_floor, reference_scores, search
from faceaudit.metrics import verification as verif


def _data(d: int = 32, n_subjects: int = 400, per: int = 2, seed: int = 4):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_subjects, d)).astype(np.float32)
    x = (np.repeat(centres, per, axis=0) + np.float32(0.8) * rng.standard_normal((n_subjects * per, d))).astype(np.float32)
    x[:6] = x[10:16]  # identical templates under other subjects
    man = pd.DataFrame({"template_id": [f"t{i}" for i in range(x.shape[0])],
                        "subject_id": [f"s{i // per}" for i in range(x.shape[0])]})
    es = validate(x, man)
    return es, generate_protocol(es, enrol_fraction=0.5, gallery_per_subject=1, seed=1)


def _impostor_scores(es, proto, score):
    p, g = np.repeat(proto.probes, proto.gallery.size), np.tile(proto.gallery, proto.probes.size)
    s = reference_scores(es, p, g, score)
    return s[es.subject_ids[p] != es.subject_ids[g]]


@pytest.mark.parametrize("score", ["cosine", "neg_euclidean"])
@pytest.mark.parametrize("budget", [150, 2000, 10**9])
def test_folded_histogram_equals_brute_force(score, budget):
    es, proto = _data()
    imp = _impostor_scores(es, proto, score)
    want, want_from = counts.fold_scores(imp, score, budget)
    res = search(es, proto, score=score, top_k=3, fine_budget=budget)
    assert res.n_impostor == imp.size
    assert res.hist_fine_from == want_from
    assert np.array_equal(res.impostor_hist, want)
    if budget < imp.size:
        assert res.hist_fine_from > 0  # really folded
        # the split: the lowest coarse edge with at most `budget` comparisons at or above it
        edge = counts.hist_edges()[res.hist_fine_from]
        assert (imp >= edge).sum() <= budget
        below = counts.hist_edges()[counts.coarse_edge_bins(score)]
        lower = below[below < edge].max()
        assert (imp >= lower).sum() > budget
    # every threshold the verification curve reports is exact, counted from the scores
    curve = verif.verification_curve(res.genuine_scores, res.impostor_hist, score=score,
                                     fine_from=res.hist_fine_from)
    assert curve.thresholds.size > 5
    for t, fm in zip(curve.thresholds, curve.false_matches):
        assert fm == (imp >= np.float32(t)).sum(), t
    fnm = [(res.genuine_scores < np.float32(t)).sum() for t in curve.thresholds]
    assert np.array_equal(curve.false_non_matches, fnm)


def test_fmr_targets_of_one_percent_and_below_lie_in_the_fine_region():
    es, proto = _data(n_subjects=700, seed=6)
    n = int(proto.probes.size) * int(proto.gallery.size)
    budget = counts.tail_budget(n)  # the default budget rule, at this size with a small minimum
    res = search(es, proto, top_k=2, fine_budget=max(n // 100 + 1, 1))
    assert res.hist_fine_from > 0
    curve = verif.verification_curve(res.genuine_scores, res.impostor_hist, score="cosine",
                                     fine_from=res.hist_fine_from)
    split = counts.hist_edges()[res.hist_fine_from]
    for target in (1e-2, 1e-3):
        point = verif.fnmr_at_fmr(curve, target)
        assert point.measurable and point.threshold >= split, (target, point.threshold, split)
    assert budget >= n // 100 + 1


@pytest.mark.parametrize("score", ["cosine", "neg_euclidean"])
def test_same_histogram_whatever_blocks_shards_and_fine_floor(score):
    es, proto = _data(seed=9)
    kw = dict(score=score, top_k=4, fine_budget=500, thresholds=[0.1, 0.3], gallery_groups=np.arange(es.n) % 2)
    one = search(es, proto, **kw)
    assert one.hist_fine_from > 0
    floor = fine_floor(es, proto.probes, proto.gallery, score, 500, one.n_impostor)
    for extra in (dict(block_size=7, gallery_shards=3), dict(fine_floor_bin=0),
                  dict(fine_floor_bin=10**6),  # above the split: a second pass, the same result
                  dict(fine_floor_bin=max(floor - 3, 0), block_size=1)):
        other = search(es, proto, **kw, **extra)
        for name in ("impostor_hist", "hist_fine_from", "best_nonmate", "mate_rank", "candidates_subject",
                     "candidates_score", "group_counts", "n_impostor"):
            assert np.array_equal(getattr(one, name), getattr(other, name), equal_nan=True), (name, extra)


def test_exact_bins_and_next_exact_bins_follow_the_coarse_grid():
    edges = counts.coarse_edge_bins("cosine")
    fine_from = int(edges[300])
    bins = np.array([edges[10] + 5, edges[299], edges[299] + 1, fine_from - 1, fine_from, fine_from + 7])
    assert counts.exact_bins(bins, "cosine", fine_from).tolist() == [edges[10], edges[299], edges[299], edges[299],
                                                                     fine_from, fine_from + 7]
    assert counts.next_exact_bins(counts.exact_bins(bins, "cosine", fine_from), "cosine", fine_from).tolist() == \
        [edges[11], fine_from, fine_from, fine_from, fine_from + 1, fine_from + 8]
    # no folding: every bin is exact
    assert counts.exact_bins(bins, "cosine", 0).tolist() == bins.tolist()
    # coarse edges of cosine are the multiples of 2^-8 in [-1, 1], all exact float32 fine edges
    values = counts.hist_edges()[edges]
    assert np.array_equal(values, (np.arange(513) - 256) / 256)
    assert np.array_equal(counts.score_bin(values), edges)

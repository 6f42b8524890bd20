"""The blockwise engine against an independent brute-force implementation."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import exact_evalset

from faceaudit.data.protocol import generate_protocol
from faceaudit.engine.counts import hist_edges, score_bin
from faceaudit.engine.local import search


def brute_force(es, proto, score: str, k: int):
    """Full score matrix in float64, subject scores by max, ranks with ties against the mate."""
    x = es.templates.astype(np.float64)
    if score == "cosine":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        full = x[proto.probes] @ x[proto.gallery].T
    else:
        diff = x[proto.probes][:, None, :] - x[proto.gallery][None, :, :]
        full = -np.sqrt((diff**2).sum(-1))
    subj = es.subject_ids
    gal_subj = subj[proto.gallery]
    names = np.unique(gal_subj)
    out = {"best": [], "mate": [], "rank": [], "cands": [], "genuine": [], "impostor": []}
    for i, p in enumerate(proto.probes):
        per_subject = {s: full[i, gal_subj == s].max() for s in names}
        mine = subj[p]
        nonmate = {s: v for s, v in per_subject.items() if s != mine}
        out["best"].append(max(nonmate.values()))
        out["genuine"].extend(full[i, gal_subj == mine].tolist())
        out["impostor"].extend(full[i, gal_subj != mine].tolist())
        # candidate order: score desc; non-mate before mate on ties; then subject id
        order = sorted(per_subject.items(), key=lambda kv: (-kv[1], kv[0] == mine, kv[0]))
        out["cands"].append([(s, v) for s, v in order[:k]])
        if mine in per_subject:
            m = per_subject[mine]
            out["mate"].append(m)
            out["rank"].append(1 + sum(v >= m for v in nonmate.values()))
        else:
            out["mate"].append(np.nan)
            out["rank"].append(0)
    return {key: np.array(v, dtype=object if key == "cands" else None) for key, v in out.items()}


@pytest.mark.parametrize("score", ["cosine", "neg_euclidean"])
@pytest.mark.parametrize("per_gallery", [1, 2])
def test_engine_equals_brute_force_with_ties(score, per_gallery):
    es = exact_evalset(n_subjects=40, per_subject=4, seed=3)
    proto = generate_protocol(es, enrol_fraction=0.6, gallery_per_subject=per_gallery, seed=1)
    k = 7
    res = search(es, proto, score=score, top_k=k, block_size=5)
    ref = brute_force(es, proto, score, k)
    # exact data: every score is exact in float32 (cosine) or a sqrt of an integer (euclidean)
    np.testing.assert_allclose(res.best_nonmate, ref["best"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(res.mate_score, ref["mate"].astype(float), rtol=0, atol=1e-6)
    assert np.array_equal(res.mate_rank, ref["rank"])
    assert (res.mate_rank[res.is_mated] > 1).any(), "test data should produce rank > 1 (ties)"
    ties = [i for i in range(res.n_probes) if res.is_mated[i]
            and np.isclose(ref["best"][i], ref["mate"][i])]
    assert ties, "test data should contain mates tied with a non-mate"
    for i in ties:  # a tie goes against the mate
        assert res.mate_rank[i] >= 2
    for i in range(res.n_probes):
        got = [(res.gallery_subjects[u], s) for u, s in zip(res.candidates_subject[i], res.candidates_score[i]) if u >= 0]
        want = ref["cands"][i]
        assert [g[0] for g in got] == [w[0] for w in want]
        np.testing.assert_allclose([g[1] for g in got], [w[1] for w in want], atol=1e-6)
    np.testing.assert_allclose(np.sort(res.genuine_scores), np.sort(ref["genuine"]), atol=1e-6)
    assert res.n_impostor == len(ref["impostor"])
    assert res.n_impostor + res.genuine_scores.size == res.n_comparisons
    # the histogram holds exactly the impostor scores
    want_hist = np.bincount(score_bin(np.float32(ref["impostor"])), minlength=res.impostor_hist.size)
    assert np.array_equal(res.impostor_hist, want_hist)


@pytest.mark.parametrize("score", ["cosine", "neg_euclidean"])
def test_block_size_does_not_change_any_output(score):
    rng = np.random.default_rng(0)
    es = exact_evalset(n_subjects=60, per_subject=3, seed=5)
    # also real-valued data, where BLAS rounding could depend on the call shape
    from faceaudit.data.evalset import validate
    es_real = validate(rng.standard_normal((es.n, 32)).astype(np.float32), es.manifest)
    for data in (es, es_real):
        proto = generate_protocol(data, enrol_fraction=0.5, gallery_per_subject=2, seed=2)
        groups = np.arange(data.n) % 3
        results = [search(data, proto, score=score, top_k=5, block_size=b, thresholds=[0.0, 0.5],
                          gallery_groups=groups) for b in (1, 3, 17, 10_000)]
        first = results[0]
        for other in results[1:]:
            for name in ("best_nonmate", "mate_score", "mate_rank", "candidates_subject", "candidates_score",
                         "genuine_scores", "impostor_hist", "group_counts", "group_comparisons"):
                assert np.array_equal(getattr(first, name), getattr(other, name), equal_nan=True), name


def test_group_counts_match_brute_force():
    es = exact_evalset(n_subjects=30, per_subject=3, seed=9)
    proto = generate_protocol(es, enrol_fraction=0.5, gallery_per_subject=1, seed=0)
    groups = np.arange(es.n) % 2
    thresholds = [0.0, 0.25, 0.5]
    res = search(es, proto, thresholds=thresholds, gallery_groups=groups, block_size=4)
    x = es.templates / np.linalg.norm(es.templates, axis=1, keepdims=True)
    full = x[proto.probes] @ x[proto.gallery].T
    impostor = es.subject_ids[proto.probes][:, None] != es.subject_ids[proto.gallery][None, :]
    for g in (0, 1):
        in_group = groups[proto.gallery] == g
        assert np.array_equal(res.group_comparisons[:, g], (impostor & in_group).sum(1))
        for t, thr in enumerate(thresholds):
            want = (impostor & in_group & (full >= np.float32(thr))).sum(1)
            assert np.array_equal(res.group_counts[:, g, t], want)


def test_probe_never_scored_against_itself():
    from faceaudit.data.evalset import validate
    base = exact_evalset(n_subjects=20, per_subject=3, duplicates=0)
    rng = np.random.default_rng(0)
    es = validate(rng.standard_normal((base.n, 24)).astype(np.float32), base.manifest)
    proto = generate_protocol(es, enrol_fraction=0.5, seed=4)
    assert np.intersect1d(proto.gallery, proto.probes).size == 0
    res = search(es, proto)
    # random real vectors: a score of (almost) exactly 1 can only come from a self-comparison
    assert np.all(res.genuine_scores < 0.9999)
    assert np.all(res.best_nonmate < 0.9999)


def test_histogram_edges_are_exact():
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.standard_normal(20000).astype(np.float32),
                             np.float32([0.0, -0.0, 1.0, -1.0, 1e-30, -1e-30, 0.5, -0.5])])
    edges = hist_edges()
    bins = score_bin(values)
    for b in np.unique(bins)[::7]:
        assert np.array_equal(values >= edges[b], bins >= b)
    assert score_bin(np.float32([-0.0]))[0] == score_bin(np.float32([0.0]))[0]
    finite = edges[np.isfinite(edges)]
    assert np.all(np.diff(finite) > 0)

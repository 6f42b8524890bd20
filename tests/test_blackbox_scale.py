"""Scale from candidate lists: on synthetic data with exact truth, the estimate from the top-L of
each list matches the one from the full scores (same FMR counts, same tail fit, same extrapolation)."""

from __future__ import annotations

import numpy as np
import pytest
from test_blackbox import engine_lists

from faceaudit.analyses.scale import fpir_independent
from faceaudit.audit import run_audit
from faceaudit.blackbox.audit import audit_lists
from faceaudit.blackbox.scale import add_scale_from_lists, fpir_subgallery
from faceaudit.data.protocol import Protocol
from faceaudit.data.synthetic import make_population
from faceaudit.engine.local import search
from faceaudit.metrics.tail import fit_tail


@pytest.fixture(scope="module")
def world():
    es, proto, truth = make_population(n_enrolled=400, n_nonenrolled=300, dim=24, seed=11)
    audit = run_audit(es, proto, top_k=400)
    # the full scores of the non-mated searches (every impostor comparison), from the engine
    full = search(es, Protocol(proto.gallery, np.zeros(0, np.int64), proto.nonmated), top_k=400)
    return es, proto, truth, audit, full


def test_fpir_subgallery_is_the_exact_mean_over_random_galleries():
    rng = np.random.default_rng(0)
    k = rng.integers(0, 6, size=50)
    N, n = 40, 7
    hits = np.zeros((50, N), bool)
    for i, ki in enumerate(k):
        hits[i, rng.choice(N, ki, replace=False)] = True
    draws = [np.mean(hits[:, rng.choice(N, n, replace=False)].any(axis=1)) for _ in range(20000)]
    assert fpir_subgallery(k, N, n) == pytest.approx(np.mean(draws), abs=3 * np.std(draws) / np.sqrt(len(draws)) + 1e-4)
    assert fpir_subgallery(k, N, N) == pytest.approx(np.mean(k > 0))


def test_scale_from_lists_matches_the_full_scores(world):
    es, proto, truth, audit, full = world
    bb = audit_lists(engine_lists(es, proto, audit, 20, None), es.manifest, es.template_ids[proto.gallery],
                     thresholds=[0.6, 0.7, 0.8])
    sc = add_scale_from_lists(bb)
    assert "template audit's rule" in sc["tail_fit_rule"]
    ref = fit_tail(full.impostor_hist, seed=0)  # the template audit's fit on the same searches' full scores
    got = sc["tail_fit"]
    assert (got["u"], got["n_exceed"], got["n_total"]) == (ref.u, ref.n_exceed, ref.n_total)
    assert got["xi"] == ref.xi and got["sigma"] == ref.sigma
    all_scores = full.candidates_score  # every impostor score of every non-mated search (400 subjects)
    assert np.isfinite(all_scores).all() and all_scores.shape == (proto.nonmated.size, 400)
    level = sc["observed_level"]
    assert level < min(m["threshold"] for m in sc["models"])
    for m in sc["models"]:
        t = m["threshold"]
        count = int(np.count_nonzero(all_scores >= np.float32(t)))
        assert m["fmr"]["errors"] == count and m["fmr"]["trials"] == all_scores.size
        lo, hi = m["fmr"]["ci_low"], m["fmr"]["ci_high"]
        assert lo <= truth.fmr(t) <= hi  # the exact synthetic FMR lies in the interval
    for r in sc["measured"]["rows"]:
        k = np.sum(all_scores >= np.float32(r["threshold"]), axis=1)
        assert r["fpir"] == pytest.approx(fpir_subgallery(k, 400, r["gallery_size"]), rel=1e-12)
    for e in sc["extrapolation"]:
        if e["fmr_source"] == "empirical":
            count = int(np.count_nonzero(all_scores >= np.float32(e["threshold"])))
            assert e["fpir"] == pytest.approx(float(fpir_independent(count / all_scores.size, e["gallery_size"])))
    for v in sc["validation"]:  # at the full gallery the independence model holds here (synthetic)
        assert v["independence_agrees"]


def test_short_lists_fit_above_what_they_show_and_refuse_below(world):
    es, proto, truth, audit, full = world
    bb = audit_lists(engine_lists(es, proto, audit, 2, None), es.manifest, es.template_ids[proto.gallery],
                     thresholds=[0.3, 0.75])
    sc = add_scale_from_lists(bb, thresholds=[0.3, 0.75])
    level = sc["observed_level"]
    assert 0.3 < level < 0.75
    assert [x["threshold"] for x in sc["not_measurable"]] == [0.3]
    assert sc["tail_fit"] is None or sc["tail_fit"]["u"] > level
    if sc["tail_fit"] is not None:
        assert "reaches below what the lists show" in sc["tail_fit_rule"]
        # exceedances above that u are exactly the full scores above it
        assert sc["tail_fit"]["n_exceed"] == int(np.count_nonzero(full.candidates_score >= np.float32(sc["tail_fit"]["u"])))
    m = next(m for m in sc["models"] if m["threshold"] == 0.75)
    assert m["fmr"]["errors"] == int(np.count_nonzero(full.candidates_score >= np.float32(0.75)))

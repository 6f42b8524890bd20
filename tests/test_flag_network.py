"""Network figures bounded by the population (flagaudit.network): the community graph model, the
distinct accounts one day's false flags put on lead lists, against networkx and by simulation."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from scipy import sparse

from auditcore.errors import InputError
from flagaudit import network as net


def test_power_law_degrees_mean_and_tail():
    d = net.power_law_degrees(20_000, 20, 2.5, seed=1)
    assert abs(d.mean() - 20) < 0.2
    assert d.max() > 15 * d.mean()  # hubs
    assert d.max() <= np.sqrt(20_000 * 20) and d.min() >= 1
    # the tail follows the exponent: P(D >= k) ~ k^-(exponent - 1), checked on the log-log slope
    ks = np.array([40, 80, 160])
    surv = np.array([(d >= k).mean() for k in ks])
    slope = np.polyfit(np.log(ks), np.log(surv), 1)[0]
    assert -1.8 < slope < -1.2
    with pytest.raises(InputError, match="exponent must be above 2"):
        net.power_law_degrees(100, 5, 1.9)


def test_community_graph_structure():
    deg = net.power_law_degrees(3000, 8, 2.5, seed=2)
    adj = net.community_graph(deg, community_size=300, mixing=0.0, seed=2)
    assert (adj != adj.T).nnz == 0 and adj.diagonal().sum() == 0 and set(np.unique(adj.data)) == {1.0}
    got = np.asarray(adj.sum(axis=1)).ravel()
    assert (got <= deg).all() and got.sum() > 0.9 * deg.sum()  # only self-loops, repeats and odd stubs dropped
    r, c = adj.nonzero()
    assert (r // 300 == c // 300).all()  # mixing 0: every tie inside a community
    mixed = net.community_graph(deg, community_size=300, mixing=0.3, seed=2)
    r, c = mixed.nonzero()
    assert 0.2 < (r // 300 != c // 300).mean() < 0.4
    # networkx agrees on the graph it sees
    g = nx.from_scipy_sparse_array(mixed)
    assert g.number_of_edges() == mixed.nnz // 2 and nx.number_of_selfloops(g) == 0


def test_distinct_reached_against_networkx_and_never_above_population():
    g = nx.connected_watts_strogatz_graph(400, 6, 0.1, seed=3)
    adj = nx.to_scipy_sparse_array(g, nodelist=list(range(400)), format="csr", dtype=np.float32)
    got = net.distinct_reached(adj, 7, draws=3, seed=5)
    rng = np.random.default_rng(5)
    for d in range(3):
        authors = set(rng.integers(0, 400, size=7).tolist())
        for j, h in enumerate((1, 2, 3)):
            want = len(nx.multi_source_dijkstra_path_length(g, authors, cutoff=h))
            assert got[d, j] == want
    many = net.distinct_reached(adj, 10_000, draws=2, seed=0)
    assert many.max() <= 400 and many[:, 2].min() == 400


def test_distinct_authors_by_simulation():
    # no ties: the accounts named are the distinct authors; k posts from n accounts drawn uniformly
    # name n (1 - (1 - 1/n)^k) of them on average
    n, k = 1000, 800
    adj = sparse.csr_matrix((n, n), dtype=np.float32)
    got = net.distinct_reached(adj, k, draws=40, seed=1)[:, 0]
    assert abs(got.mean() - n * (1 - (1 - 1 / n) ** k)) < 6
    per = net.distinct_per_day(adj, 400, 800, 1600, draws=20, seed=1)
    assert per["1"]["low"] <= per["1"]["value"] <= per["1"]["high"] <= n
    assert per["1"]["share"] == per["1"]["value"] / n


def test_reach_interval_includes_account_sampling():
    deg = net.power_law_degrees(5000, 10, 2.5, seed=0)
    adj = net.community_graph(deg, 500, 0.2, seed=0)
    r = net.reach(adj, n_seeds=100, seed=0)
    g = nx.from_scipy_sparse_array(adj)
    picks = np.random.default_rng(0).choice(5000, size=100, replace=False)
    brute = [len(nx.single_source_shortest_path_length(g, int(p), cutoff=2)) - 1 for p in picks]
    assert r["hops"]["2"]["mean"] == pytest.approx(np.mean(brute))
    assert r["hops"]["2"]["mean_low"] < r["hops"]["2"]["mean"] < r["hops"]["2"]["mean_high"]
    # the population-wide mean reach falls inside the interval from 100 sampled accounts
    true = np.mean([len(nx.single_source_shortest_path_length(g, int(p), cutoff=1)) - 1 for p in range(5000)])
    assert r["hops"]["1"]["mean_low"] <= true <= r["hops"]["1"]["mean_high"]


def test_section_scales_to_volume_and_reads_degrees(tmp_path):
    s = net.network_section(mean_degree=6, posts_per_day=8000, posts_per_account=2, n_seeds=20)
    assert s["n_nodes"] == 4000 == s["accounts_implied_by_volume"]
    assert s["model"]["kind"] == "configuration model with communities"
    (tmp_path / "deg.txt").write_text("# degrees\n" + "\n".join(["3"] * 200) + "\n")
    s = net.network_section(degrees_file=tmp_path / "deg.txt", posts_per_day=8000, n_seeds=20, community_size=50)
    assert s["n_nodes"] == 200 and s["model"]["file"].endswith("deg.txt")
    (tmp_path / "bad.txt").write_text("3\n-1\n")
    with pytest.raises(InputError, match="line 2"):
        net.read_degrees(tmp_path / "bad.txt")
    with pytest.raises(InputError, match="one of"):
        net.network_section(mean_degree=3, degrees_file=tmp_path / "deg.txt")

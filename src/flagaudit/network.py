"""Network expansion: how many accounts a "network analysis" lead list pulls in, bounded by the
population it is drawn from.

The graph: the user's own edge list (``--graph FILE``: two account ids per line, whitespace- or
comma-separated, ``#`` comments; undirected), the user's degree sequence (``--degrees FILE``) wired
as a configuration model with communities, or a model (``--mean-degree K``):

* ``communities`` (default): power-law degrees ``P(d) ~ d^-2.5`` scaled to mean ``K``
  (:func:`power_law_degrees`), wired as a configuration model whose accounts sit in communities of
  1,000 with a share 0.8 of each account's ties inside its community (:func:`community_graph`,
  the construction of the LFR benchmark): hubs and communities, as social graphs have;
* ``gnp``: the Erdős–Rényi G(n, p) of earlier versions (no hubs, no communities).

A model graph has as many accounts as the stated volume implies: posts per day divided by posts
per account and day (``--posts-per-account``, default 2), unless ``--graph-nodes`` says otherwise.

Two figures:

* **reach per flagged account**: accounts within 1, 2, 3 hops (author excluded) of accounts drawn
  uniformly at random, by breadth-first search; the mean's 95% interval resamples the sampled
  accounts (the error of sampling 200 of them);
* **distinct accounts named per day** (:func:`distinct_per_day`): the day's posts flagged for
  nothing get authors drawn uniformly (with replacement: an account can post twice), and one
  breadth-first search from all of them at once counts every account within h hops, authors
  included: never more than the population. The interval joins the false-flag rate's interval
  with the draws of authors. Lead-list *entries* (flags x mean reach, an account counted once per
  list it is on) are kept beside it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from auditcore.errors import InputError

HOPS = (1, 2, 3)


def read_edge_list(path: str | Path):
    import networkx as nx

    path = Path(path)
    if not path.is_file():
        raise InputError("graph file not found", path)
    g = nx.Graph()
    try:
        with path.open(encoding="utf-8") as fh:
            for no, line in enumerate(fh, start=1):
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                parts = line.replace(",", " ").split()
                if len(parts) < 2:
                    raise InputError(f"line {no}: an edge needs two account ids, got {line!r}", path)
                if len(parts) > 3:
                    raise InputError(f"line {no}: expected 'a b' (or 'a,b'), got {len(parts)} fields", path)
                if g.number_of_edges() == 0 and [p.lower() for p in parts[:2]] in (
                        ["source", "target"], ["u", "v"], ["from", "to"]):
                    continue  # a header line before the first edge
                g.add_edge(parts[0], parts[1])
    except UnicodeDecodeError:
        raise InputError("graph file is not UTF-8 text", path) from None
    if g.number_of_nodes() == 0:
        raise InputError("graph file holds no edges", path)
    g.remove_edges_from(nx.selfloop_edges(g))
    return g


def random_graph(mean_degree: float, n_nodes: int = 20_000, seed: int = 0):
    """Erdős–Rényi G(n, p = K / (n - 1)) (networkx, seeded): no hubs, no communities."""
    import networkx as nx

    if not (mean_degree > 0) or mean_degree >= n_nodes - 1:
        raise InputError(f"mean degree must be positive and below the graph size ({n_nodes:,}), got {mean_degree:g}")
    return nx.fast_gnp_random_graph(n_nodes, mean_degree / (n_nodes - 1), seed=seed)


def power_law_degrees(n: int, mean_degree: float, exponent: float = 2.5, seed: int = 0) -> np.ndarray:
    """``n`` degrees from a discrete power law ``P(d) ~ d^-exponent`` (Pareto draws, rounded up, capped
    at ``sqrt(n * mean_degree)``, the structural cut-off of an uncorrelated graph), scaled so that their
    mean is ``mean_degree`` (bisection on the scale)."""
    if not (exponent > 2):
        raise InputError(f"the degree exponent must be above 2 (a finite mean degree), got {exponent:g}")
    if not (1 <= mean_degree < n - 1):
        raise InputError(f"mean degree must be at least 1 and below the number of accounts ({n:,}), got {mean_degree:g}")
    rng = np.random.default_rng(seed)
    x = rng.random(n) ** (-1.0 / (exponent - 1.0))  # Pareto(exponent - 1), x >= 1
    cap = max(2.0, min(n - 1.0, np.sqrt(n * mean_degree)))

    def degrees(scale):
        return np.minimum(np.ceil(scale * x), cap)

    lo, hi = 1e-6, float(mean_degree)
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if degrees(mid).mean() < mean_degree else (lo, mid)
    return degrees(hi).astype(np.int64)


def community_graph(degrees, community_size: int = 1000, mixing: float = 0.2, seed: int = 0):
    """A configuration model with communities (a degree-corrected planted partition, as the LFR
    benchmark builds it): accounts in communities of ``community_size`` (consecutive ids), each
    account's stubs kept inside its community with probability ``1 - mixing``; stubs paired at random
    (inside each community, and across the graph for the others); self-loops and repeated edges
    dropped. Returns the symmetric adjacency (scipy CSR, float32)."""
    from scipy import sparse

    deg = np.asarray(degrees, dtype=np.int64)
    n = deg.size
    if n < 2 or (deg < 0).any():
        raise InputError("a degree sequence needs at least two accounts and no negative degree")
    if not (0 <= mixing <= 1):
        raise InputError(f"mixing must be within [0, 1], got {mixing:g}")
    rng = np.random.default_rng(seed)
    comm = np.arange(n) // max(int(community_size), 1)
    owner = np.repeat(np.arange(n), deg)
    outside = rng.random(owner.size) < mixing
    pairs = []
    ins = rng.permutation(owner[~outside])
    ins = ins[np.argsort(comm[ins], kind="stable")]  # grouped by community, in random order within each
    c = comm[ins]
    starts = np.r_[0, np.flatnonzero(np.diff(c)) + 1]
    sizes = np.diff(np.r_[starts, ins.size])
    pos = np.arange(ins.size) - np.repeat(starts, sizes)
    even = (pos % 2 == 0) & (pos + 1 < np.repeat(sizes, sizes))  # pair 0-1, 2-3, ... within a community
    first = np.flatnonzero(even)
    pairs.append(np.column_stack([ins[first], ins[first + 1]]))
    out = rng.permutation(owner[outside])
    m = out.size // 2 * 2
    pairs.append(out[:m].reshape(-1, 2))
    e = np.concatenate(pairs)
    e = e[e[:, 0] != e[:, 1]]
    adj = sparse.coo_matrix((np.ones(2 * len(e), np.float32), (np.r_[e[:, 0], e[:, 1]], np.r_[e[:, 1], e[:, 0]])),
                            shape=(n, n)).tocsr()  # converting sums repeated edges ...
    adj.data[:] = 1.0  # ... which then count once
    return adj


def read_degrees(path: str | Path) -> np.ndarray:
    """A degree sequence: one non-negative integer a line (``#`` comments)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("degree file not found", path)
    out = []
    try:
        for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            if not line.isdigit() or len(line) > 9:
                raise InputError(f"line {no}: a degree is a non-negative whole number, got {line[:40]!r}", path)
            out.append(int(line))
    except UnicodeDecodeError:
        raise InputError("degree file is not UTF-8 text", path) from None
    if len(out) < 2:
        raise InputError("degree file needs at least two accounts", path)
    return np.asarray(out, dtype=np.int64)


def _adjacency(g):
    """Adjacency (CSR, float32) of a networkx graph, or the matrix itself."""
    from scipy import sparse

    if sparse.issparse(g):
        return sparse.csr_matrix(g, dtype=np.float32)
    import networkx as nx

    return nx.to_scipy_sparse_array(g, nodelist=list(g.nodes()), format="csr", dtype=np.float32)


def reach(g, n_seeds: int = 200, seed: int = 0, hops=HOPS, chunk: int = 32) -> dict:
    """Accounts within h hops of randomly drawn flagged accounts (author excluded).

    Breadth-first search for a block of seeds at once, as sparse matrix products on the
    adjacency matrix (scipy): one product per hop and block.
    """
    adj = _adjacency(g)
    n = adj.shape[0]
    rng = np.random.default_rng(seed)
    picks = rng.choice(n, size=min(n_seeds, n), replace=False)
    counts = np.zeros((picks.size, len(hops)), dtype=np.int64)
    max_h = max(hops)
    for start in range(0, picks.size, chunk):
        block = picks[start:start + chunk]
        seen = np.zeros((n, block.size), dtype=bool)
        seen[block, np.arange(block.size)] = True
        frontier = seen.copy()
        for h in range(1, max_h + 1):
            new = (adj @ frontier.astype(np.float32)) > 0
            new &= ~seen
            seen |= new
            frontier = new
            if h in hops:
                counts[start:start + block.size, list(hops).index(h)] = seen.sum(axis=0) - 1
    degrees = np.asarray(adj.sum(axis=1)).ravel()
    out = {"n_nodes": int(n), "n_edges": int(adj.nnz // 2), "mean_degree": float(degrees.mean()),
           "n_flagged_accounts_sampled": int(picks.size), "hops": {}}
    boot = rng.integers(0, picks.size, size=(1000, picks.size))  # the sampled accounts, resampled
    for j, h in enumerate(hops):
        c = counts[:, j]
        means = c[boot].mean(axis=1)
        out["hops"][str(h)] = {"mean": float(c.mean()), "median": float(np.median(c)),
                               "p05": float(np.percentile(c, 5)), "p95": float(np.percentile(c, 95)),
                               "max": int(c.max()),
                               "mean_low": float(np.quantile(means, 0.025, method="inverted_cdf")),
                               "mean_high": float(np.quantile(means, 0.975, method="inverted_cdf"))}
    return out


def per_day(reach_result: dict, false_flags_low: float, false_flags: float, false_flags_high: float) -> dict:
    """Lead-list entries per day from posts flagged for nothing: flags x mean reach within h hops.

    An account is counted once per list it is on (overlaps are not removed), so this bounds the
    distinct innocent accounts named from above; that number can never exceed the graph's size.
    """
    out = {}
    for h, r in reach_result["hops"].items():
        out[h] = {k: float(v) * r["mean"] for k, v in
                  (("low", false_flags_low), ("value", false_flags), ("high", false_flags_high))}
    return out


def distinct_reached(adj, n_flagged: int, draws: int = 10, seed: int = 0, hops=HOPS) -> np.ndarray:
    """``(draws, len(hops))`` distinct accounts on one day's lead lists: ``n_flagged`` flagged posts,
    their authors drawn uniformly with replacement (an account can post more than one), and every
    account within h hops of any author (authors included) found by one breadth-first search from
    all authors at once. Never more than the accounts in the graph."""
    adj = _adjacency(adj)
    n = adj.shape[0]
    rng = np.random.default_rng(seed)
    out = np.zeros((draws, len(hops)), dtype=np.int64)
    k = max(0, round(float(n_flagged)))
    if k == 0:
        return out
    for d in range(draws):
        seen = np.zeros(n, dtype=bool)
        seen[rng.integers(0, n, size=k)] = True
        frontier = seen.copy()
        for h in range(1, max(hops) + 1):
            new = (adj @ frontier.astype(np.float32)) > 0
            new &= ~seen
            seen |= new
            frontier = new
            if h in hops:
                out[d, list(hops).index(h)] = int(seen.sum())
    return out


def distinct_per_day(adj, false_flags_low: float, false_flags: float, false_flags_high: float, *, draws: int = 10,
                     seed: int = 0, hops=HOPS) -> dict:
    """Distinct accounts named per day within h hops, at the false-flag count and its interval's ends;
    the interval joins the false-flag interval with the draws of authors (2.5th percentile of the
    draws at the low count, 97.5th at the high count)."""
    n = _adjacency(adj).shape[0]
    at = {key: distinct_reached(adj, v, draws, seed, hops) for key, v in
          (("low", false_flags_low), ("value", false_flags), ("high", false_flags_high))}
    out = {}
    for j, h in enumerate(hops):
        value = float(np.median(at["value"][:, j]))
        out[str(h)] = {"value": value, "low": float(np.quantile(at["low"][:, j], 0.025, method="inverted_cdf")),
                       "high": float(np.quantile(at["high"][:, j], 0.975, method="inverted_cdf")),
                       "share": value / n, "share_high": float(np.quantile(at["high"][:, j], 0.975,
                                                                          method="inverted_cdf")) / n}
    return out


MODEL_DEFAULTS = {"exponent": 2.5, "community_size": 1000, "mixing": 0.2, "posts_per_account": 2.0}


def implied_accounts(posts_per_day: float, posts_per_account: float) -> int:
    """Accounts that post on a day: posts a day / posts per account and day (stated by the user)."""
    if not (posts_per_account > 0):
        raise InputError(f"posts per account must be positive, got {posts_per_account:g}")
    return max(2, round(posts_per_day / posts_per_account))


def network_section(graph_file=None, mean_degree=None, n_nodes: int | None = None, seed: int = 0,
                    n_seeds: int = 200, *, degrees_file=None, model: str = "communities",
                    posts_per_day: float | None = None, exponent: float = MODEL_DEFAULTS["exponent"],
                    community_size: int = MODEL_DEFAULTS["community_size"], mixing: float = MODEL_DEFAULTS["mixing"],
                    posts_per_account: float = MODEL_DEFAULTS["posts_per_account"]) -> dict | None:
    """The graph (the user's edge list or degree sequence, or a model) and reach per flagged account.

    Models (``--mean-degree K``): ``communities`` (default) a configuration model with power-law
    degrees (``exponent``) and communities (``community_size``, ``mixing``) as
    :func:`community_graph`; ``gnp`` the Erdős–Rényi graph of earlier versions. The number of accounts
    is ``n_nodes`` when given, else the accounts the stated volume implies
    (``posts_per_day / posts_per_account``)."""
    given = [x is not None for x in (graph_file, mean_degree, degrees_file)]
    if sum(given) > 1:
        raise InputError("give one of --graph FILE, --degrees FILE or --mean-degree K")
    if not any(given):
        return None
    implied = implied_accounts(posts_per_day, posts_per_account) if posts_per_day else None
    if graph_file is not None:
        g = read_edge_list(graph_file)
        desc = {"kind": "edge list", "file": str(graph_file)}
    elif degrees_file is not None:
        deg = read_degrees(degrees_file)
        g = community_graph(deg, community_size, mixing, seed)
        desc = {"kind": "configuration model with communities, your degree sequence", "file": str(degrees_file),
                "n_nodes": int(deg.size), "community_size": int(community_size), "mixing": float(mixing), "seed": seed}
    else:
        n = int(n_nodes) if n_nodes else (implied or 20_000)
        if model == "gnp":
            g = random_graph(float(mean_degree), n, seed)
            desc = {"kind": "Erdős–Rényi G(n, p)", "n_nodes": n, "p": float(mean_degree) / (n - 1),
                    "stated_mean_degree": float(mean_degree), "seed": seed,
                    "note": "no clustering and no hubs: 2- and 3-hop counts of real social graphs differ"}
        elif model == "communities":
            deg = power_law_degrees(n, float(mean_degree), exponent, seed)
            g = community_graph(deg, community_size, mixing, seed)
            desc = {"kind": "configuration model with communities", "n_nodes": n,
                    "stated_mean_degree": float(mean_degree), "degree_exponent": float(exponent),
                    "max_degree": int(deg.max()), "community_size": int(community_size), "mixing": float(mixing),
                    "seed": seed,
                    "note": "power-law degrees (hubs) and communities (a share 1 - mixing of each account's ties inside "
                            "its community); self-loops and repeated ties dropped, so the measured mean degree is a "
                            "little below the stated one"}
        else:
            raise InputError(f"unknown graph model {model!r} (communities or gnp)")
    adj = _adjacency(g)
    r = reach(adj, n_seeds=n_seeds, seed=seed)
    r["model"] = desc
    r["accounts_implied_by_volume"] = implied
    r["posts_per_account"] = float(posts_per_account) if implied else None
    r["_adjacency"] = adj  # used by the audit for the per-day distinct counts; never written
    return r

"""Network expansion: how many accounts a "network analysis" lead list pulls in per flagged post.

The graph is either the user's own edge list (``--graph FILE``: two account ids per line,
whitespace- or comma-separated, ``#`` comments; undirected) or a documented random graph
(``--mean-degree K``): an Erdős–Rényi graph G(n, p) with ``p = K / (n - 1)`` (networkx
``fast_gnp_random_graph``, seeded), whose mean degree is K. A random graph has no clustering
and no hubs; real social graphs have both, so its 2- and 3-hop counts are a rough guide only.

Flagged accounts are drawn uniformly at random from the graph's nodes (the assumption: a
flagged post's author is like any account). For each, the accounts within 1, 2 and 3 hops
(excluding the author) are counted by breadth-first search. Per day, with ``F`` posts flagged
for nothing, ``F x mean(reach)`` is the number of lead-list entries (an account counted once per
list it is on): an upper bound on the distinct innocent accounts pulled in, which can never
exceed the graph's size.
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
    import networkx as nx

    if not (mean_degree > 0) or mean_degree >= n_nodes - 1:
        raise InputError(f"mean degree must be positive and below the graph size ({n_nodes:,}), got {mean_degree:g}")
    return nx.fast_gnp_random_graph(n_nodes, mean_degree / (n_nodes - 1), seed=seed)


def reach(g, n_seeds: int = 200, seed: int = 0, hops=HOPS, chunk: int = 32) -> dict:
    """Accounts within h hops of randomly drawn flagged accounts (author excluded).

    Breadth-first search for a block of seeds at once, as sparse matrix products on the
    adjacency matrix (scipy): one product per hop and block.
    """
    import networkx as nx

    nodes = list(g.nodes())
    n = len(nodes)
    adj = nx.to_scipy_sparse_array(g, nodelist=nodes, format="csr", dtype=np.float32)
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
    out = {"n_nodes": g.number_of_nodes(), "n_edges": g.number_of_edges(), "mean_degree": float(degrees.mean()),
           "n_flagged_accounts_sampled": int(picks.size), "hops": {}}
    for j, h in enumerate(hops):
        c = counts[:, j]
        out["hops"][str(h)] = {"mean": float(c.mean()), "median": float(np.median(c)),
                               "p05": float(np.percentile(c, 5)), "p95": float(np.percentile(c, 95)),
                               "max": int(c.max())}
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


def network_section(graph_file=None, mean_degree=None, n_nodes: int = 20_000, seed: int = 0,
                    n_seeds: int = 200) -> dict | None:
    if graph_file is not None and mean_degree is not None:
        raise InputError("give --graph FILE or --mean-degree K, not both")
    if graph_file is not None:
        g = read_edge_list(graph_file)
        model = {"kind": "edge list", "file": str(graph_file)}
    elif mean_degree is not None:
        g = random_graph(float(mean_degree), n_nodes, seed)
        model = {"kind": "Erdős–Rényi G(n, p)", "n_nodes": n_nodes, "p": float(mean_degree) / (n_nodes - 1),
                 "stated_mean_degree": float(mean_degree), "seed": seed,
                 "note": "no clustering and no hubs: 2- and 3-hop counts of real social graphs differ"}
    else:
        return None
    r = reach(g, n_seeds=n_seeds, seed=seed)
    r["model"] = model
    return r

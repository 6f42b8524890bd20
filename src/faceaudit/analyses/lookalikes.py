"""Expected look-alikes per search, N x c x FMR(T), with an interval that respects people.

The figure: in one search of a gallery of N people with c templates each, the expected number of
non-mates scoring at or above T is N c FMR(T) (linearity of expectation: no independence
needed). FMR(T) is the audit's share of impostor comparisons ``>= T``, from the engine's exact
counts (T taken down to the exact histogram edge at or below it, ``counted_from_edge``).

**The interval.** Impostor comparisons are not independent trials: they come in *crossed*
clusters, by the probe's person (some people attract many look-alikes) and by the gallery
person (some enrolled people look like many others). Clopper-Pearson on the comparison count
treats them as independent and is far too narrow when people differ (in simulation it held the
truth in 3 of 9 cases where 0.5% of probes attract most look-alikes). Here the variance of the
count is the two-way cluster-robust one (Cameron, Gelbach and Miller 2011; the same quantity
Owen's 2007 pigeonhole bootstrap estimates, less its double-counted cell term):

    V = V_probe people + V_gallery people - V_cells,   V_x = m/(m-1) sum over clusters (x - p n)^2

(m clusters; x the cluster's comparisons ``>= T``, n its comparisons; cells are (probe person,
gallery person) pairs), never less than either one-way variance. Its design effect
``deff = V / (p (1 - p) n)`` (at least 1) gives an effective number of comparisons
``n / deff`` with the degrees-of-freedom adjustment of Korn and Graubard (1998; ``df`` = the
smaller number of people less one), and the interval is Clopper-Pearson on the effective counts
(:func:`auditcore.intervals.beta_interval`). It behaves like an exact Poisson interval on the
number of people carrying the look-alikes, which is what limits the evidence when few people
carry most of them. A threshold with fewer than :data:`RARE` comparisons ``>= T`` cannot show its
own clustering: it takes the larger of its own design effect and that of the nearest lower
threshold with more; with none, each person counts once (``n_eff`` = the smaller number of
people). The point always lies inside its band (both come from the same counts).

**People counts without touching the engine.** Per-person counts at the few thresholds needed are
read from what every audit already has: a search's candidate list holds every gallery person
scoring ``>= T`` unless the list is full down to T; the templates of a listed person with several
gallery templates are scored again (:func:`faceaudit.engine.local.reference_scores`); the few
searches whose lists are full down to T are scored again against the whole gallery (a float64
screen, then reference scores for every pair near T). The engine, its counts and its speed are
untouched. The counts are the engine's to the comparison: they must add up to the histogram's
count, or the interval falls back to counting each person once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from auditcore.intervals import beta_interval, clopper_pearson, t_quantile
from faceaudit.engine.counts import exact_bins, hist_edges, score_bin

RARE = 10            # fewer comparisons >= T than this: the design effect is borrowed from a lower threshold

INTERVAL_TWO_WAY = "people (two-way: probe people and gallery people)"
INTERVAL_INDEPENDENT = "independent comparisons (no per-person counts: too narrow when people differ)"
INTERVAL_CLUSTERS = "each person counted once (the counts could not be split by person)"


@dataclass
class PeopleCounts:
    """Impostor comparisons by probe person (rows) and gallery person (columns).

    ``n_row``/``n_col``: comparisons per person; ``t_row``/``g_col``: probe / gallery templates per
    person; ``cell_n_sq``: sum over every (probe person, gallery person) cell of its comparisons
    squared; ``rows``/``cols``/``counts``: the cells with a comparison ``>= edges[t]`` (counts is
    cells x thresholds)."""

    edges: np.ndarray
    n_row: np.ndarray
    n_col: np.ndarray
    t_row: np.ndarray
    g_col: np.ndarray
    cell_n_sq: float
    rows: np.ndarray
    cols: np.ndarray
    counts: np.ndarray

    def totals(self) -> np.ndarray:
        return self.counts.sum(0) if self.counts.size else np.zeros(self.edges.size, np.int64)


def two_way_variance(rows, cols, counts, cell_n, n_row, n_col, cell_n_sq: float) -> dict:
    """The variance of a comparison count from its people (see the module doc), at one threshold."""
    counts = np.asarray(counts, np.float64)
    cell_n = np.asarray(cell_n, np.float64)
    n_row, n_col = np.asarray(n_row, np.float64), np.asarray(n_col, np.float64)
    n = float(n_row.sum())
    x = float(counts.sum())
    p = x / n if n > 0 else 0.0
    m_r, m_c = int(np.count_nonzero(n_row)), int(np.count_nonzero(n_col))
    x_row = np.bincount(rows, weights=counts, minlength=n_row.size)
    x_col = np.bincount(cols, weights=counts, minlength=n_col.size)
    v_row = m_r / max(m_r - 1, 1) * float(((x_row - p * n_row) ** 2).sum())
    v_col = m_c / max(m_c - 1, 1) * float(((x_col - p * n_col) ** 2).sum())
    # cells: the nonzero ones exactly, every other cell contributes (p n_ij)^2
    v_cell = float(((counts - p * cell_n) ** 2 - (p * cell_n) ** 2).sum() + p * p * cell_n_sq)
    v = max(v_row + v_col - v_cell, v_row, v_col)
    binomial = p * (1 - p) * n
    # the variance's degrees of freedom (Satterthwaite): about the number of people who carry it
    e2 = ((x_row - p * n_row) ** 2).sum() + ((x_col - p * n_col) ** 2).sum()
    e4 = ((x_row - p * n_row) ** 4).sum() + ((x_col - p * n_col) ** 4).sum()
    df = float(e2 * e2 / e4) if e4 > 0 else float(max(min(m_r, m_c) - 1, 1))
    return {"count": x, "comparisons": n, "value": p, "variance": v, "variance_probe_people": v_row,
            "variance_gallery_people": v_col, "variance_cells": v_cell, "binomial_variance": binomial,
            "design_effect": (max(v / binomial, 1.0) if binomial > 0 else None),
            "probe_people": m_r, "gallery_people": m_c, "degrees_of_freedom": df}


def people_interval(parts: list[dict], confidence: float = 0.95) -> list[dict]:
    """Intervals for the rates of :func:`two_way_variance` at several thresholds (in increasing
    order of threshold): Clopper-Pearson on the effective comparisons (see the module doc)."""
    out = []
    borrowed = None
    q = 1 - (1 - confidence) / 2
    for part in parts:
        x, n, p = part["count"], part["comparisons"], part["value"]
        own = part["design_effect"]
        if x >= RARE and own is not None:
            deff, source = own, "own"
            borrowed = own
        elif borrowed is not None:
            deff, source = max(own or 1.0, borrowed), "own" if (own or 1.0) >= borrowed else "lower threshold"
        else:
            deff, source = None, "people"
        people = min(part["probe_people"], part["gallery_people"])
        if deff is None:  # nothing to measure clustering on: each person counts once
            n_eff = float(min(max(people, 1), n)) if n > 0 else 0.0
        else:
            df = max(min(people - 1, part.get("degrees_of_freedom", people - 1)), 1.0)
            factor = float((t_quantile(q, max(n - 1, 1)) / t_quantile(q, df)) ** 2)
            n_eff = min(n / deff * factor, n)
        if n <= 0:
            lo = hi = None
        else:
            lo_a, hi_a = beta_interval(p * n_eff, n_eff, confidence)
            lo, hi = float(lo_a), float(hi_a)
            lo = 0.0 if x == 0 else min(lo, p)  # the point always inside its band
            hi = max(hi, p)
        out.append({**part, "design_effect_used": deff, "design_effect_source": source,
                    "effective_comparisons": n_eff, "low": lo, "high": hi})
    return out


# ------------------------------------------------------------------ counts by person, from the engine

def _gallery_layout(evalset, protocol):
    codes = evalset.subject_codes
    g_rows = np.asarray(protocol.gallery, np.int64)
    g_codes, g_person = np.unique(codes[g_rows], return_inverse=True)
    g_templates = np.bincount(g_person, minlength=g_codes.size)
    order = np.argsort(g_person, kind="stable")
    start = np.concatenate([[0], np.cumsum(g_templates)])
    return g_rows, g_codes, g_person, g_templates, g_rows[order], start


def people_counts(res, evalset, protocol, edges, *, score: str | None = None) -> PeopleCounts:
    """Impostor comparisons ``>= edges`` by probe person and gallery person (see the module doc).

    ``edges``: float32 thresholds (exact histogram edges, so that the counts are the histogram's).
    Uses the search's candidate lists, reference scores for listed people with several gallery
    templates, and a second engine search of the probes whose lists are full at the lowest edge."""
    pairs = probe_pairs(res, evalset, protocol, edges, score=score)
    lay = pairs["layout"]
    n_gp, p_person, edges = lay["gallery_people"], lay["probe_person"], pairs["edges"]
    pp, gp, cc = pairs["probe"], pairs["person"], pairs["counts"]
    if pp.size:
        cell = p_person[pp].astype(np.int64) * max(n_gp, 1) + gp
        uniq, inv = np.unique(cell, return_inverse=True)
        counts = np.zeros((uniq.size, edges.size), np.int64)
        np.add.at(counts, inv, cc)
        rows, cols = uniq // max(n_gp, 1), uniq % max(n_gp, 1)
    else:
        rows = cols = np.zeros(0, np.int64)
        counts = np.zeros((0, edges.size), np.int64)
    return PeopleCounts(edges, lay["n_row"], lay["n_col"], lay["t_row"], lay["g_templates"], lay["cell_n_sq"],
                        rows, cols, counts)


def probe_pairs(res, evalset, protocol, edges, *, score: str | None = None, gallery_codes=None) -> dict:
    """Impostor comparisons ``>= edges`` by *probe* (index in ``res``), gallery person and the group
    of the gallery template (``gallery_codes``: a code per evaluation-set row; all 0 if None), read
    as :func:`people_counts` reads them. Returns ``probe``, ``person``, ``group``, ``counts``
    (pairs x edges, every pair with a count), ``edges`` and ``layout`` (the people of the search:
    ``probe_person``, ``mate`` (each probe's gallery person or -1), ``g_templates``, ``gallery_people``,
    ``n_row``, ``n_col``, ``t_row``, ``cell_n_sq`` as in :class:`PeopleCounts`)."""
    from faceaudit.engine.local import reference_scores

    score = score or res.score
    edges = np.asarray(edges, np.float32).ravel()
    e_min = np.float32(edges.min()) if edges.size else np.float32(np.inf)
    codes = evalset.subject_codes
    g_rows, g_codes, g_person, g_templates, rows_by_person, start = _gallery_layout(evalset, protocol)
    t_group = (np.zeros(evalset.n, np.int64) if gallery_codes is None else np.asarray(gallery_codes, np.int64))
    n_gp = g_codes.size
    probe_rows = np.asarray(res.probe_rows, np.int64)
    p_codes = codes[probe_rows]
    r_codes, p_person = np.unique(p_codes, return_inverse=True)
    t_row = np.bincount(p_person, minlength=r_codes.size)
    # each probe's mate (gallery person index) or -1
    pos = np.searchsorted(g_codes, p_codes)
    pos_c = np.minimum(pos, max(n_gp - 1, 0))
    mate = np.where((n_gp > 0) & (g_codes[pos_c] == p_codes), pos_c, -1)
    n_g_templates = g_rows.size
    mate_t = np.where(mate >= 0, g_templates[np.maximum(mate, 0)], 0)
    n_row = np.bincount(p_person, weights=(n_g_templates - mate_t).astype(np.float64), minlength=r_codes.size)
    probes_of_person = np.bincount(mate[mate >= 0], minlength=n_gp)
    n_col = g_templates.astype(np.float64) * (probe_rows.size - probes_of_person)
    # sum over cells of comparisons^2: every (row person, gallery person) pair, less the genuine ones
    r_mate = np.full(r_codes.size, -1, np.int64)
    r_mate[p_person[mate >= 0]] = mate[mate >= 0]
    genuine_sq = float(((t_row[r_mate >= 0] * g_templates[r_mate[r_mate >= 0]]).astype(np.float64) ** 2).sum())
    cell_n_sq = float((t_row.astype(np.float64) ** 2).sum() * (g_templates.astype(np.float64) ** 2).sum() - genuine_sq)
    layout = {"probe_person": p_person, "mate": mate, "g_templates": g_templates, "gallery_people": n_gp,
              "gallery_rows": g_rows, "gallery_person": g_person, "n_row": n_row, "n_col": n_col, "t_row": t_row,
              "cell_n_sq": cell_n_sq}

    cand_u = np.asarray(res.candidates_subject)
    cand_s = np.asarray(res.candidates_score, np.float32)
    k = cand_u.shape[1] if cand_u.ndim == 2 else 0
    pairs_probe, pairs_person, pairs_group, pairs_count = [], [], [], []
    if edges.size:
        valid = cand_u >= 0 if k else np.zeros((probe_rows.size, 0), bool)
        nonmate = valid & (cand_u != mate[:, None]) if k else valid
        listed = nonmate & (cand_s >= e_min) if k else valid
        # hidden non-mates possible: the list shows fewer non-mates than the gallery has and its last
        # entry (mate or not) reaches the lowest edge (lists are in decreasing order of score)
        last = np.where(valid, cand_s, np.inf).min(1) if k else np.full(probe_rows.size, np.inf)
        available = n_gp - (mate >= 0)
        full = (nonmate.sum(1) < available) & (last >= e_min)
        li, lj = np.nonzero(listed & ~full[:, None])
        person = cand_u[li, lj].astype(np.int64)
        s_subject = cand_s[li, lj]
        single = g_templates[person] == 1
        # listed people with one gallery template: the subject's score is the comparison's
        c1 = (s_subject[single, None] >= edges[None, :]).astype(np.int64)
        pairs_probe.append(li[single])
        pairs_person.append(person[single])
        pairs_group.append(t_group[rows_by_person[start[person[single]]]])
        pairs_count.append(c1)
        # several templates: score each of them again
        multi = np.flatnonzero(~single)
        if multi.size:
            reps = g_templates[person[multi]]
            pr = np.repeat(probe_rows[li[multi]], reps)
            first = start[person[multi]]
            offs = np.arange(int(reps.sum())) - np.repeat(np.cumsum(reps) - reps, reps)
            gr = rows_by_person[np.repeat(first, reps) + offs]
            s = reference_scores(evalset, pr, gr, score)
            hit = (s[:, None] >= edges[None, :]).astype(np.int64)
            # one pair per (listed person, template group)
            n_codes = int(t_group.max(initial=0)) + 1
            owner = np.repeat(np.arange(multi.size), reps) * n_codes + t_group[gr]
            uo, inv = np.unique(owner, return_inverse=True)
            cm = np.zeros((uo.size, edges.size), np.int64)
            np.add.at(cm, inv, hit)
            pairs_probe.append(li[multi][uo // n_codes])
            pairs_person.append(person[multi][uo // n_codes])
            pairs_group.append(uo % n_codes)
            pairs_count.append(cm)
        full_rows = np.flatnonzero(full)
        if full_rows.size:
            fp, fg, fgr, fc = _score_again(evalset, probe_rows[full_rows], mate[full_rows], g_rows, g_person, edges,
                                           score, t_group)
            pairs_probe.append(full_rows[fp])
            pairs_person.append(fg)
            pairs_group.append(fgr)
            pairs_count.append(fc)
    if pairs_probe:
        pp = np.concatenate(pairs_probe).astype(np.int64)
        gp = np.concatenate(pairs_person).astype(np.int64)
        gg = np.concatenate(pairs_group).astype(np.int64)
        cc = np.concatenate(pairs_count).reshape(-1, edges.size)
        keep = cc.sum(1) > 0
        pp, gp, gg, cc = pp[keep], gp[keep], gg[keep], cc[keep]
    else:
        pp = gp = gg = np.zeros(0, np.int64)
        cc = np.zeros((0, edges.size), np.int64)
    return {"probe": pp, "person": gp, "group": gg, "counts": cc, "edges": edges, "layout": layout}


def _score_again(evalset, probe_rows, mate, g_rows, g_person, edges, score, t_group=None):
    """Every impostor comparison ``>= edges`` of these probes (whose lists are full): a float64
    screen of each probe against the whole gallery, in blocks, and reference scores
    (:func:`faceaudit.engine.local.reference_scores`) for every pair the screen puts within a
    generous margin of the lowest edge, so that each decision is the engine's. Returns (probe
    index, gallery person, template group (``t_group`` of the gallery row; 0 if None), counts per
    edge) per (probe, gallery template) with a count."""
    from faceaudit.engine.local import reference_scores

    e_min = float(np.min(edges))
    margin = 1e-5 * max(1.0, abs(e_min))  # the screen is within ~1e-7 of the reference score
    x = evalset.templates

    def rows64(r):
        v = np.asarray(x[np.sort(r)], np.float64)[np.argsort(np.argsort(r))]
        if score == "cosine":
            v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-300)
        return v

    P = rows64(probe_rows)
    psq = (P * P).sum(1)
    out_p, out_g, out_t, out_c = [], [], [], []
    g_chunk = 1 << 15
    p_block = max(1, (1 << 23) // g_chunk)
    for a in range(0, g_rows.size, g_chunk):
        gr, gp = g_rows[a:a + g_chunk], g_person[a:a + g_chunk]
        G = rows64(gr)
        gsq = (G * G).sum(1)
        for b in range(0, probe_rows.size, p_block):
            dots = P[b:b + p_block] @ G.T
            if score == "cosine":
                s = dots
            else:
                s = -np.sqrt(np.maximum(psq[b:b + p_block, None] + gsq[None, :] - 2 * dots, 0.0))
            near = (s >= e_min - margin) & (gp[None, :] != mate[b:b + p_block, None])
            i, j = np.nonzero(near)
            if i.size == 0:
                continue
            ref = reference_scores(evalset, probe_rows[b + i], gr[j], score)
            hit = (ref[:, None] >= edges[None, :]).astype(np.int64)
            keep = hit.any(1)
            out_p.append(b + i[keep])
            out_g.append(gp[j[keep]].astype(np.int64))
            out_t.append(np.zeros(int(keep.sum()), np.int64) if t_group is None else t_group[gr[j[keep]]])
            out_c.append(hit[keep])
    if not out_p:
        z = np.zeros(0, np.int64)
        return z, z, z, np.zeros((0, edges.size), np.int64)
    return np.concatenate(out_p), np.concatenate(out_g), np.concatenate(out_t), np.concatenate(out_c)


def intervals_from_counts(pc: PeopleCounts, confidence: float = 0.95) -> list[dict]:
    """People intervals at each of ``pc.edges`` (returned in the edges' order)."""
    order = np.argsort(pc.edges, kind="stable")
    cell_n = (pc.t_row[pc.rows] * pc.g_col[pc.cols]).astype(np.float64)
    parts = [two_way_variance(pc.rows, pc.cols, pc.counts[:, t] if pc.counts.size else np.zeros(0), cell_n,
                              pc.n_row, pc.n_col, pc.cell_n_sq) for t in order]
    done = people_interval(parts, confidence)
    out = [None] * len(order)
    for i, t in enumerate(order):
        out[t] = done[i]
    return out


def people_stats(people: PeopleCounts | None, edge, ks, n: int, confidence: float = 0.95
                 ) -> tuple[str, list[dict] | None]:
    """(interval kind, per-threshold intervals or None) for ``ks`` impostor comparisons ``>= edge``
    out of ``n``, from ``people`` (counts at those edges): the two-way people interval when the
    split by person adds up to the engine's counts, else each person counted once; None (and
    :data:`INTERVAL_INDEPENDENT`) without people counts. Shared by look-alikes and verification FMR."""
    if people is None:
        return INTERVAL_INDEPENDENT, None
    edge = np.asarray(edge, np.float32)
    ks = np.asarray(ks, np.int64)
    uniq = np.asarray(people.edges, np.float32)
    where = np.searchsorted(uniq, edge)
    if not (np.all(uniq[np.minimum(where, uniq.size - 1)] == edge) and abs(people.n_row.sum() - n) < 0.5):
        return INTERVAL_INDEPENDENT, None
    if np.array_equal(people.totals()[where], ks):
        every = intervals_from_counts(people, confidence)
        return INTERVAL_TWO_WAY, [every[w] for w in where]
    # the split by person does not add up: count each person once (conservative)
    m = int(min(np.count_nonzero(people.n_row), np.count_nonzero(people.n_col)))
    stats = []
    for k in ks:
        lo_a, hi_a = beta_interval(k / n * m, m, confidence)
        stats.append({"low": 0.0 if k == 0 else min(float(lo_a), k / n), "high": max(float(hi_a), k / n),
                      "design_effect_used": n / max(m, 1), "effective_comparisons": float(m)})
    return INTERVAL_CLUSTERS, stats


# ------------------------------------------------------------------ the figure

def lookalikes(res, thresholds, sizes=(1e6,), *, n_gallery_templates: int | None = None,
               confidence: float = 0.95, evalset=None, protocol=None,
               people: PeopleCounts | None = None) -> list[dict]:
    """Expected number of non-mates scoring at or above each threshold in one search of a gallery
    of N people: N x (templates per person) x FMR(T), FMR from the exact impostor counts.

    Needs no independence assumption (linearity of expectation); it does assume the enrolled
    people resemble the audit's. The interval (``expected_ci``, ``fmr_ci``) respects that
    comparisons cluster by probe person and gallery person (module doc) when ``evalset`` and
    ``protocol`` are given (or ``people``, counts at these thresholds' edges); otherwise it is
    Clopper-Pearson on the comparison count, marked as such in ``interval``. Impostor counts are
    exact at the engine's histogram edges; T is taken down to the exact edge at or below it (at
    most one bin more: 2^-11 relative in the tail, coarse in the bulk, see
    :mod:`faceaudit.engine.counts`), reported as ``counted_from_edge``."""
    hist = np.asarray(res.impostor_hist)
    above = np.cumsum(hist[::-1])[::-1]
    n = int(above[0])
    per = (n_gallery_templates / res.gallery_size) if n_gallery_templates and res.gallery_size else 1.0
    use = [float(t) for t in thresholds if t is not None and np.isfinite(t)] if n else []
    if not use:
        return []
    edges_all = hist_edges()  # once, not per threshold (a million edges)
    bins = exact_bins(score_bin(np.float32(use)), res.score, getattr(res, "hist_fine_from", 0)).astype(np.int64)
    edge = edges_all[bins].astype(np.float32)
    ks = above[bins].astype(np.int64)
    if people is None and evalset is not None and protocol is not None:
        people = people_counts(res, evalset, protocol, np.unique(edge))
    kind, stats = people_stats(people, edge, ks, n, confidence)
    rows = []
    for i, t in enumerate(use):
        k = int(ks[i])
        cp_lo, cp_hi = clopper_pearson(k, n, confidence)
        if stats is not None:
            lo, hi = stats[i]["low"], stats[i]["high"]
        else:
            lo, hi = cp_lo, cp_hi
        extra = {} if stats is None else {
            "design_effect": stats[i].get("design_effect_used"),
            "effective_comparisons": stats[i].get("effective_comparisons"),
            **({k2: stats[i][k2] for k2 in ("probe_people", "gallery_people", "design_effect_source")
                if k2 in stats[i]})}
        for size in sizes:
            rows.append({"threshold": t, "gallery_size": float(size), "fmr": k / n, "fmr_count": k,
                         "comparisons": n, "fmr_ci": [lo, hi], "expected": size * per * k / n,
                         "expected_ci": [size * per * lo, size * per * hi], "interval": kind,
                         "independent_ci": [size * per * cp_lo, size * per * cp_hi],
                         "templates_per_person": per, "counted_from_edge": float(edge[i]), **extra})
    return rows


# ------------------------------------------------------------------ verification FMR from people

FMR_PEOPLE_METHOD = ("two-way people interval: Clopper-Pearson on the effective number of impostor comparisons "
                     "(comparisons divided by the design effect from probe people and gallery people; Korn-Graubard "
                     "degrees of freedom), as for look-alikes per search")


RESCORE_FLOOR = 5e7  # comparisons a split by person may always score again (a few seconds)


def _rescore_cost(res, n_gallery_templates: int, threshold: float) -> float:
    """Comparisons :func:`people_counts` would score again at ``threshold``: the gallery times the
    probes whose candidate lists are full down to it (every slot filled, the last at or above T;
    an over-count by the lists whose mate fills a slot)."""
    cand_s = np.asarray(res.candidates_score, np.float32)
    cand_u = np.asarray(res.candidates_subject)
    if cand_s.ndim != 2 or cand_s.shape[1] == 0:
        return 0.0
    full = (cand_u >= 0).all(1) & (cand_s[:, -1] >= np.float32(threshold))
    return float(full.sum()) * float(n_gallery_templates)


def verification_fmr_people(verification: dict, res, evalset, protocol, confidence: float = 0.95) -> dict:
    """The verification section's FMR intervals from people (in place; returns ``verification``).

    Every measured FMR (``fnmr_at_fmr`` points and the EER's) keeps its counts and point; its
    ``ci_low``/``ci_high`` become the two-way people interval (:func:`people_stats`: the impostor
    comparisons cluster by probe person and by gallery person), ``method`` says so, and the
    Clopper-Pearson interval over comparisons (which treats them as independent) stays beside it
    as ``ci_independent``. The counts at each threshold are the engine's (checked: they must add up
    to the histogram's, else each person counts once)."""
    rates = [p["fmr"] for p in verification.get("fnmr_at_fmr", []) if p.get("measurable") and p.get("threshold") is not None]
    thresholds = [p["threshold"] for p in verification.get("fnmr_at_fmr", [])
                  if p.get("measurable") and p.get("threshold") is not None]
    eer = verification.get("eer") or {}
    if eer.get("threshold") is not None:
        rates.append(eer["fmr"])
        thresholds.append(eer["threshold"])
    # rates above 1% (an EER in the bulk) would score a large share of all comparisons again: those
    # keep the interval over comparisons (their method says so)
    keep = [i for i, r in enumerate(rates) if r["trials"] and r["errors"] <= 0.01 * r["trials"]]
    rates, thresholds = [rates[i] for i in keep], [thresholds[i] for i in keep]
    if not rates:
        return verification
    n = int(verification["n_impostor"])
    # splitting the counts by person scores again every probe whose candidate list is full down to
    # T: thresholds that would score again more than a quarter of the audit's comparisons (at least
    # RESCORE_FLOOR allowed) borrow the design effect of the nearest threshold that did not
    budget = max(RESCORE_FLOOR, 0.25 * n)
    cost = np.array([_rescore_cost(res, int(protocol.gallery.size), t) for t in thresholds])
    split = cost <= budget
    if not split.any():
        return verification
    edge = np.asarray(thresholds, np.float32)
    ks = np.asarray([r["errors"] for r in rates], np.int64)
    people = people_counts(res, evalset, protocol, np.unique(edge[split]))
    kind, stats = people_stats(people, edge[split], ks[split], n, confidence)
    if stats is None:
        return verification
    done = dict(zip(np.flatnonzero(split).tolist(), stats))
    q = 1 - (1 - confidence) / 2
    for i, r in enumerate(rates):
        r["ci_independent"] = [r["ci_low"], r["ci_high"]]
        if i in done:
            st = done[i]
            r["method"] = "two-way people (Korn-Graubard)" if kind == INTERVAL_TWO_WAY else kind
        else:  # the design effect of the split threshold nearest in count
            j = min(done, key=lambda j2: abs(np.log((ks[j2] + 1) / (ks[i] + 1))))
            deff = max(float(done[j].get("design_effect_used") or 1.0), 1.0)
            df = max(float(done[j].get("degrees_of_freedom", 1.0)), 1.0)
            n_eff = min(n / deff * float((t_quantile(q, max(n - 1, 1)) / t_quantile(q, df)) ** 2), n)
            p = ks[i] / n
            lo_a, hi_a = beta_interval(p * n_eff, n_eff, confidence)
            st = {"low": min(float(lo_a), p), "high": max(float(hi_a), p), "design_effect_used": deff,
                  "effective_comparisons": n_eff}
            r["method"] = ("two-way people (Korn-Graubard), design effect borrowed from the threshold with "
                           f"{int(ks[j]):,} false matches (splitting this one by person would score again "
                           f"{int(cost[i]):,} comparisons)")
        r["ci_low"], r["ci_high"] = float(st["low"]), float(st["high"])
        r["design_effect"] = st.get("design_effect_used")
        r["effective_comparisons"] = st.get("effective_comparisons")
        for k in ("probe_people", "gallery_people"):
            if k in st:
                r[k] = st[k]
    verification["fmr_interval"] = {
        "covers": "new probe people and new gallery people of the same kind (comparisons cluster by both)",
        "method": FMR_PEOPLE_METHOD if kind == INTERVAL_TWO_WAY else kind,
        "independent": "ci_independent: Clopper-Pearson over comparisons as if independent (this audit's "
                       "comparisons only; too narrow when people differ)"}
    return verification


# ------------------------------------------------------------------ per-group FMR from people (demographics)

GROUP_FMR_METHOD = ("two-way people: Korn-Graubard (Clopper-Pearson on the effective number of impostor comparisons) "
                    "with the design effect from probe people and gallery people (the larger of the group's own and "
                    "the one pooled over the groups; each person counted once where no group had a false match)")


def group_parts(pairs: dict, probe_group, gallery_codes, probe_groups, gallery_groups=None, edge: int = 0) -> list[dict]:
    """:func:`two_way_variance` of the impostor comparisons ``>= pairs["edges"][edge]`` of the probes
    in each probe group of ``probe_groups`` against the gallery templates in ``gallery_groups``
    (a group code each, or None: the whole gallery), one part per entry.

    ``pairs``: :func:`probe_pairs` with ``gallery_codes`` (a code per evaluation-set row);
    ``probe_group``: each probe's group code. The clusters of a part are the people who take part
    in it: a probe person with probes in several groups counts, in each group, with the probes he
    has there; a gallery person, in each gallery group, with his templates of that group."""
    lay = pairs["layout"]
    p_person, mate, n_gp = lay["probe_person"], lay["mate"], lay["gallery_people"]
    probe_group = np.asarray(probe_group, np.int64)
    t_group = np.asarray(gallery_codes, np.int64)[lay["gallery_rows"]]
    n_codes = int(max(t_group.max(initial=0), pairs["group"].max(initial=0), probe_group.max(initial=0))) + 1
    by_group = np.zeros((max(n_gp, 1), n_codes), np.float64)   # gallery templates per (person, group)
    np.add.at(by_group, (lay["gallery_person"], t_group), 1.0)
    n_rows = lay["t_row"].size
    pp, gp, gg = pairs["probe"], pairs["person"], pairs["group"]
    cc = pairs["counts"][:, edge] if pairs["counts"].size else np.zeros(0, np.int64)
    out = []
    for a, b in zip(probe_groups, gallery_groups if gallery_groups is not None else [None] * len(probe_groups)):
        in_a = probe_group == a
        g_b = by_group.sum(1) if b is None else by_group[:, b]
        g_b = g_b[:n_gp]
        mate_b = np.where(mate >= 0, g_b[np.maximum(mate, 0)] if n_gp else 0.0, 0.0)
        n_row = np.bincount(p_person[in_a], weights=(g_b.sum() - mate_b[in_a]), minlength=n_rows)
        t_a = np.bincount(p_person[in_a], minlength=n_rows).astype(np.float64)
        mated_a = mate[in_a]
        n_col = g_b * (in_a.sum() - np.bincount(mated_a[mated_a >= 0], minlength=n_gp))
        r_mate = np.full(n_rows, -1, np.int64)
        r_mate[p_person[mate >= 0]] = mate[mate >= 0]
        has = (r_mate >= 0) & (t_a > 0)
        genuine_sq = float(((t_a[has] * g_b[r_mate[has]]) ** 2).sum())
        cell_n_sq = float((t_a ** 2).sum() * (g_b ** 2).sum() - genuine_sq)
        sel = in_a[pp] & (True if b is None else gg == b) & (cc > 0)
        cell = p_person[pp[sel]].astype(np.int64) * max(n_gp, 1) + gp[sel]
        uniq, inv = np.unique(cell, return_inverse=True)
        counts = np.bincount(inv, weights=cc[sel], minlength=uniq.size)
        rows, cols = uniq // max(n_gp, 1), uniq % max(n_gp, 1)
        out.append(two_way_variance(rows, cols, counts, t_a[rows] * g_b[cols], n_row, n_col, cell_n_sq))
    return out


def group_design_effects(parts: list[dict]) -> dict:
    """Design effects for Korn-Graubard intervals of several groups' rates from their
    :func:`two_way_variance` parts, the way :func:`auditcore.intervals.korn_graubard` chooses them
    for one-way clusters: the larger of the group's own and the pooled one (every group with a
    false match: summed variances over summed binomial variances), the degrees of freedom of the
    variance used (Satterthwaite's for the pooled sum); where no group had a false match, each
    person counts once (the comparisons over the smaller number of people taking part).
    Returns arrays ``design_effect``, ``degrees_of_freedom``, ``source`` ("two-way own",
    "two-way pooled", "two-way clusters")."""
    own = np.array([p["design_effect"] if p["design_effect"] is not None else np.nan for p in parts], float)
    df_own = np.array([p["degrees_of_freedom"] for p in parts], float)
    v = np.array([p["variance"] for p in parts], float)
    b = np.array([p["binomial_variance"] for p in parts], float)
    ok = ~np.isnan(own) & (b > 0)
    if ok.any():
        pooled = max(float(v[ok].sum() / b[ok].sum()), 1.0)
        # Satterthwaite: (sum v)^2 / sum(v^2 / df)
        df_pooled = float(v[ok].sum() ** 2 / np.sum(v[ok] ** 2 / np.maximum(df_own[ok], 1.0))) if v[ok].sum() > 0 else 1.0
    else:
        pooled, df_pooled = np.nan, 1.0
    use_own = ok & ~(pooled > own)
    deff = np.where(use_own, own, pooled)
    df = np.where(use_own, df_own, df_pooled)
    source = np.where(use_own, "two-way own", "two-way pooled").astype(object)
    for i, p in enumerate(parts):
        if not ok.any():
            people = max(min(p["probe_people"], p["gallery_people"]), 1)
            deff[i] = max(p["comparisons"] / people, 1.0) if p["comparisons"] > 0 else 1.0
            df[i], source[i] = 1e9, "two-way clusters"  # no degrees-of-freedom shrinkage, as one-way

    return {"design_effect": np.maximum(np.nan_to_num(deff, nan=1.0), 1.0), "degrees_of_freedom": np.maximum(df, 1.0),
            "source": source}

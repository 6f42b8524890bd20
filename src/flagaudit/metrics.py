"""Flagging metrics: small pure functions of per-case flags, disaggregated with the shared core.

* **false-flag rate** (FFR): share of *benign* cases flagged, overall and per functional test,
  target group, language and suite;
* **miss rate**: share of *threat* cases (HateCheck/MHC ``threat_dir_h``, ``threat_norm_h``)
  not flagged;
* **flag rate** of other hateful cases (reported, neither a false flag nor a miss);
* differentials between groups and languages (:mod:`auditcore.differentials`);
* for score-based systems: the threshold at a target FFR (lowest threshold ``T``, a score
  ``>= T`` being a flag, whose false-flag count is at most ``floor(x * n_benign)``) and the
  trade-off curve (FFR and miss rate at every distinct score).

Intervals. Cases generated from one template are not independent (a flagger that fires on
"I'm so done with {AGENCY}" fires for every agency), so templates are the independent units.
Overall rates: a seeded **cluster bootstrap over templates** (:mod:`auditcore.bootstrap`:
templates resampled with replacement, all their cases moving together; percentile intervals),
joined with the exact Clopper-Pearson interval on the counts (the bootstrap collapses to a point
when no case, or every case, is flagged). Per group, test, language and suite, where counts are
small: Clopper-Pearson on the effective number of cases, the design effect measured from the
templates (Korn and Graubard 1998; :func:`auditcore.intervals.korn_graubard`), so 5 flags out
of 64 never read "0.0%-26.3%" and 0 flags read as an upper bound. Differentials: bounds
simultaneous over every pair of ranked groups (:mod:`auditcore.claims`). A rate with no trials
is undefined (None), never 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from auditcore import bootstrap as boot
from auditcore import claims as claims_
from auditcore import differentials as diff
from auditcore.intervals import allowed_errors, clopper_pearson

GROUPINGS = ("functionality", "target", "language", "suite")
UNRANKED = ("none", "missing", "unknown", "ambiguous")


@dataclass
class Bootstrap:
    """One set of template resamples shared by every table (so differentials are consistent)."""

    cluster_codes: np.ndarray
    weights: np.ndarray  # (n_boot, n_clusters)
    n_boot: int
    seed: int
    confidence: float

    @classmethod
    def over(cls, clusters, n_boot: int = 2000, seed: int = 0, confidence: float = 0.95) -> Bootstrap:
        names, codes = diff.encode(clusters)
        return cls(codes, boot.subject_weights(len(names), n_boot, seed), n_boot, seed, confidence)

    def sums(self, group_codes, values, n_groups: int) -> np.ndarray:
        """``(n_templates, n_groups)`` sums of ``values`` per template and group."""
        return boot.per_subject_sums(self.cluster_codes, group_codes, values, self.weights.shape[1], n_groups)

    def totals(self, group_codes, values, n_groups: int) -> np.ndarray:
        """``(n_boot, n_groups)`` resampled sums of ``values`` per group."""
        return boot.resample_totals(self.weights, self.sums(group_codes, values, n_groups))


def rate_entry(errors: int, trials: int, boot_rates: np.ndarray | None, confidence: float, n_templates: int,
               kg: dict | None = None) -> dict:
    """One rate: value, Clopper-Pearson and bootstrap intervals, and the reported interval.

    Overall rates (``kg`` None) report the union of the two. A group's rate (``kg``: its entry of
    :func:`auditcore.intervals.korn_graubard`, keys ``low``, ``high``, ``design_effect``,
    ``effective_trials``, ``source``) reports the Korn-Graubard interval: Clopper-Pearson on the
    effective number of cases (cases divided by the design effect measured from the templates), so a
    group with flags never gets a lower bound of 0 and one with none gets an upper bound (the
    percentile bootstrap gives [0, x] to 5 flags from few templates, [0, 0] to none)."""
    errors, trials = int(errors), int(trials)
    out = {"errors": errors, "trials": trials, "templates": int(n_templates), "confidence": confidence}
    if trials == 0:
        out.update(value=None, ci_low=None, ci_high=None, cp_low=None, cp_high=None, boot_low=None, boot_high=None)
        return out
    cp_lo, cp_hi = clopper_pearson(errors, trials, confidence)
    b_lo = b_hi = np.nan
    if boot_rates is not None:
        lo, hi, _ = boot.percentile_interval(boot_rates[:, None], confidence)
        b_lo, b_hi = float(lo[0]), float(hi[0])
    if kg is None:
        lo = cp_lo if np.isnan(b_lo) else min(cp_lo, b_lo)
        hi = cp_hi if np.isnan(b_hi) else max(cp_hi, b_hi)
        method = "union of the template bootstrap and Clopper-Pearson"
    else:
        lo, hi = float(kg["low"]), float(kg["high"])
        method = "korn-graubard"
    out.update(value=errors / trials, ci_low=float(lo), ci_high=float(hi), cp_low=float(cp_lo), cp_high=float(cp_hi),
               boot_low=None if np.isnan(b_lo) else b_lo, boot_high=None if np.isnan(b_hi) else b_hi,
               interval_method=method)
    if kg is not None:
        out.update(design_effect=float(kg["design_effect"]), effective_trials=float(kg["effective_trials"]),
                   design_effect_source=str(kg["source"]))
    return out


@dataclass
class _Table:
    """One disaggregation: group names, per-template counts (as :class:`GroupRates`), template
    counts and resampled rates."""

    names: np.ndarray
    rates: claims_.GroupRates
    templates: list
    boot_rates: np.ndarray

    @property
    def err(self) -> np.ndarray:
        return self.rates.errors

    @property
    def tri(self) -> np.ndarray:
        return self.rates.trials


def _table(cases: pd.DataFrame, errors: np.ndarray, mask: np.ndarray, by: str | None, bs: Bootstrap) -> _Table:
    """Per-group error/trial counts by template, template counts and resampled rates, over cases in ``mask``."""
    labels = np.full(len(cases), "all", dtype=object) if by is None else cases[by].to_numpy(dtype=object)
    names, codes = diff.encode(labels)
    g = len(names)
    m = mask.astype(np.float64)
    e_tab = bs.sums(codes, errors.astype(np.float64) * m, g)
    t_tab = bs.sums(codes, m, g)
    b_err = boot.resample_totals(bs.weights, e_tab)
    b_tri = boot.resample_totals(bs.weights, t_tab)
    templates = [int(pd.unique(cases["cluster"].to_numpy()[mask & (codes == i)]).size) for i in range(g)]
    return _Table(names, claims_.GroupRates(e_tab, t_tab), templates, diff.rates(b_err, b_tri))


def _ranked(names, tri, min_trials: int) -> np.ndarray:
    return np.array([str(n).lower() not in UNRANKED and diff.is_ranked_label(str(n)) for n in names],
                    dtype=bool) & (np.asarray(tri) >= min_trials) & (np.asarray(tri) > 0)


def _comparisons(tab: _Table, min_trials: int) -> int:
    """Comparisons a differential of this table makes: one for each pair of ranked groups (its
    difference and its ratio are two readings of the same comparison, bounded at the same level)."""
    return claims_.n_pairs(int(_ranked(tab.names, tab.tri, min_trials).sum()))


def rate_table(cases: pd.DataFrame, errors, mask, by: str | None, bs: Bootstrap, min_trials: int = 1,
               family: claims_.Family | None = None) -> dict:
    """Rate of ``errors`` among cases in ``mask``, per value of column ``by`` (or overall).

    The differential's bounds are simultaneous over ``family`` (default: this table's own pairs)."""
    errors = np.asarray(errors, dtype=bool)
    mask = np.asarray(mask, dtype=bool)
    return _rate_table(_table(cases, errors, mask, by, bs), by, bs, min_trials, family)


def _rate_table(tab: _Table, by: str | None, bs: Bootstrap, min_trials: int, family: claims_.Family | None) -> dict:
    keep = tab.tri > 0
    kg = tab.rates.at(bs.confidence)
    groups = {}
    for i, name in enumerate(tab.names):
        if keep[i]:
            groups[str(name)] = rate_entry(tab.err[i], tab.tri[i], tab.boot_rates[:, i], bs.confidence, tab.templates[i],
                                           None if by is None else {k: kg[k][i] for k in
                                                                    ("low", "high", "design_effect", "effective_trials",
                                                                     "source")})
    if by is None:
        return groups["all"] if groups else rate_entry(0, 0, None, bs.confidence, 0)
    if family is None:
        family = claims_.Family(max(_comparisons(tab, min_trials), 1), bs.confidence)
    return {"by": by, "groups": groups, "differential": differential(tab, min_trials, family)}


def differential(tab: _Table, min_trials: int, family: claims_.Family) -> dict:
    """Largest difference and ratio of the rate across ranked groups (real groups with at least
    ``min_trials`` cases): the most- against the least-flagged group in the point estimate, with
    bounds simultaneous over every pair of ranked groups and every comparison of ``family``, so
    they hold for the pair picked whichever it is (:mod:`auditcore.claims`)."""
    names = tab.names
    ranked = _ranked(names, tab.tri, min_trials)
    point = tab.rates.value
    k = int(ranked.sum())
    out = {"ranked_groups": [str(n) for n, r in zip(names, ranked) if r], "min_trials": int(min_trials)}
    hi_name, lo_name = diff.extremes(point, ranked, names) if k >= 2 else (None, None)
    out.update(highest=hi_name, lowest=lo_name)
    empty = {"value": None, "ci_low": None, "ci_high": None, "undefined_resamples": None}
    if hi_name is None:
        out.update(max_min_ratio=dict(empty), max_difference=dict(empty))
        return out
    i_hi = int(np.flatnonzero(names == hi_name)[0])
    i_lo = int(np.flatnonzero(names == lo_name)[0])
    c = {key: v[0] for key, v in tab.rates.contrast(i_hi, i_lo, family.level).items()}

    def num(x):
        x = float(x)
        return None if np.isnan(x) else x

    ratio = float(diff.max_min_ratio(point, ranked))
    out["max_min_ratio"] = {"value": None if np.isnan(ratio) else ratio,  # inf when the lowest group had no flags
                            "ci_low": num(c["ratio_low"]) if c["measurable"] else None,
                            "ci_high": num(c["ratio_high"]) if c["measurable"] else None,  # inf: lowest had none
                            "undefined_resamples": None}
    out["max_difference"] = {"value": float(point[i_hi] - point[i_lo]), "ci_low": num(c["difference_low"]),
                             "ci_high": num(c["difference_high"]), "undefined_resamples": None}
    # every pair is bounded at the same simultaneous level, so the pair with the strongest evidence
    # may be named too (when the most- and least-flagged pair is not established)
    idx = np.flatnonzero(ranked)
    a, b = np.array([(i, j) for i in idx for j in idx if i != j]).T
    every = tab.rates.contrast(a, b, family.level)
    best = int(np.nanargmax(every["difference_low"]))
    strongest = None
    if every["difference_low"][best] > 0:
        strongest = {"higher": str(names[a[best]]), "lower": str(names[b[best]]),
                     "difference": float(every["difference"][best]),
                     "difference_low": num(every["difference_low"][best]),
                     "difference_high": num(every["difference_high"][best]),
                     "ratio": num(every["ratio"][best]), "ratio_low": num(every["ratio_low"][best]),
                     "ratio_high": num(every["ratio_high"][best])}
    out["strongest_pair"] = strongest
    out.update(family.to_dict())
    out.update(groups_compared=k, pairs=claims_.n_pairs(k),
               selection=f"most- against least-flagged of {k} groups in the point estimate",
               adjusted_for=claims_.family_text(k, family))
    return out


# --------------------------------------------------------------------- score-based systems

def tradeoff_curve(score: np.ndarray, benign: np.ndarray, threat: np.ndarray) -> dict:
    """False-flag and threat-flag counts at every distinct score used as threshold (``>=``).

    Like scikit-learn's ``_binary_clf_curve``: one sort, cumulative counts; thresholds descending.
    """
    score = np.asarray(score, dtype=np.float64)
    use = benign | threat
    s, b, t = score[use], benign[use].astype(np.int64), threat[use].astype(np.int64)
    order = np.argsort(-s, kind="mergesort")
    s, b, t = s[order], b[order], t[order]
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1] if s.size else np.array([], dtype=np.int64)
    return {"threshold": s[last], "false_flags": np.cumsum(b)[last], "threats_flagged": np.cumsum(t)[last],
            "n_benign": int(b.sum()), "n_threat": int(t.sum())}


def threshold_at_ffr(score, benign, threat, target: float) -> float | None:
    """Lowest threshold whose false-flag count is at most ``floor(target * n_benign)``.

    Candidates are the distinct scores of benign and threat cases, and the smallest float above
    the largest score (flags nothing). None when there are no benign cases.
    """
    curve = tradeoff_curve(score, benign, threat)
    n = curve["n_benign"]
    if n == 0:
        return None
    k = allowed_errors(target, n)
    ok = curve["false_flags"] <= k  # thresholds descending, counts non-decreasing
    if not ok.any():
        return float(np.nextafter(curve["threshold"][0], np.inf))
    return float(curve["threshold"][np.flatnonzero(ok)[-1]])


# --------------------------------------------------------------------- everything at once

WITHIN_SUITE = ("target", "language")
CLAIMED = (("false_flag", "target_within_suite"), ("false_flag", "language_within_suite"), ("false_flag", "suite"))


def flag_metrics(cases: pd.DataFrame, flagged, *, bs: Bootstrap, min_trials: int = 20) -> dict:
    """Every rate of one set of flags (see the module docstring).

    The differentials the report states (false-flag rate by target group and by language *within
    each suite*, ``false_flag.target_within_suite[suite]``, and by suite: ``CLAIMED``) form one
    family: every difference and ratio bound among them holds simultaneously at ``bs.confidence``.
    Other tables' differentials (among them the all-suites target and language tables, which
    mix groups from different suites and are not stated in the report) are simultaneous over
    their own table only."""
    flagged = np.asarray(flagged, dtype=bool)
    role = cases["role"].to_numpy()
    benign, threat, hateful = role == "benign", role == "threat", role == "hateful"
    out = {
        "false_flag": {"overall": rate_table(cases, flagged, benign, None, bs)},
        "miss": {"overall": rate_table(cases, ~flagged, threat, None, bs)},
        "hateful_flag": {"overall": rate_table(cases, flagged, hateful, None, bs)},
    }
    tables = {("false_flag", by): _table(cases, flagged, benign, by, bs) for by in GROUPINGS}
    tables.update({("miss", by): _table(cases, ~flagged, threat, by, bs) for by in ("language", "functionality", "target")})
    tables[("hateful_flag", "functionality")] = _table(cases, flagged, hateful, "functionality", bs)
    # groups are compared only within a suite: each suite's cases say different things about them
    suite = cases["suite"].to_numpy(dtype=object)
    suites = sorted(pd.unique(suite[benign]))
    within = {(by, str(s)): _table(cases, flagged, benign & (suite == s), by, bs)
              for by in WITHIN_SUITE for s in suites}
    n_claimed = (sum(_comparisons(tab, min_trials) for tab in within.values())
                 + _comparisons(tables[("false_flag", "suite")], min_trials))
    claimed = claims_.Family(max(n_claimed, 1), bs.confidence)
    for (what, by), tab in tables.items():
        stated = (what, by) == ("false_flag", "suite")
        out[what][by] = _rate_table(tab, by, bs, min_trials, claimed if stated else None)
        if stated:
            out[what][by]["differential"]["stated_in_report"] = True
    for by in WITHIN_SUITE:
        out["false_flag"][f"{by}_within_suite"] = {}
        for s in suites:
            t = _rate_table(within[(by, str(s))], by, bs, min_trials, claimed)
            t["differential"]["stated_in_report"] = True
            t["suite"] = str(s)
            out["false_flag"][f"{by}_within_suite"][str(s)] = t
    out["methods"] = METHODS
    return out


METHODS = {
    "intervals": "overall rates: the union of a percentile template bootstrap and Clopper-Pearson on the cases; "
                 "per group, test, language and suite: Clopper-Pearson on the effective number of cases (Korn and "
                 "Graubard 1998: cases divided by the design effect measured from the templates, or from every group's "
                 "templates when larger or when the group has no flags), 95%",
    "differentials": "the most- against the least-flagged ranked group (real groups with at least min_trials cases): "
                     "difference and ratio with bounds simultaneous over every pair of ranked groups of the false-flag "
                     "differentials by target and language within each suite, and by suite (Bonferroni over the pairs; MOVER from the groups' "
                     "limits); with no true difference the report claims one in at most 5% of audits",
}


def score_metrics(cases: pd.DataFrame, score, *, bs: Bootstrap, targets=(0.01, 0.05, 0.1), max_points: int = 400) -> dict:
    """Thresholds at target false-flag rates (with both rates there) and the trade-off curve."""
    score = np.asarray(score, dtype=np.float64)
    role = cases["role"].to_numpy()
    benign, threat = role == "benign", role == "threat"
    points = []
    for x in targets:
        t = threshold_at_ffr(score, benign, threat, x)
        if t is None:
            points.append({"target_ffr": x, "threshold": None})
            continue
        f = score >= t
        points.append({"target_ffr": x, "threshold": t, "allowed_false_flags": allowed_errors(x, int(benign.sum())),
                       "above_every_score": bool(t > np.max(score[benign | threat])),
                       "false_flag": rate_table(cases, f, benign, None, bs),
                       "miss": rate_table(cases, ~f, threat, None, bs)})
    curve = tradeoff_curve(score, benign, threat)
    idx = np.arange(curve["threshold"].size)
    if idx.size > max_points:  # thin evenly for the report; endpoints kept
        idx = np.unique(np.r_[np.linspace(0, idx.size - 1, max_points).round().astype(int)])
    nb, nt = curve["n_benign"], curve["n_threat"]
    return {"operating_points": points,
            "curve": {"threshold": curve["threshold"][idx].tolist(),
                      "false_flags": curve["false_flags"][idx].tolist(),
                      "threats_flagged": curve["threats_flagged"][idx].tolist(),
                      "ffr": (curve["false_flags"][idx] / nb).tolist() if nb else None,
                      "miss_rate": (1 - curve["threats_flagged"][idx] / nt).tolist() if nt else None,
                      "n_benign": nb, "n_threat": nt}}

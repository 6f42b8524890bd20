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
"I'm so done with {AGENCY}" fires for every agency), so every interval comes from a seeded
**cluster bootstrap over templates** (:mod:`auditcore.bootstrap`: templates resampled with
replacement, all their cases moving together; percentile intervals). A percentile bootstrap
collapses to a point when no case (or every case) is flagged, so the interval reported is the
union of the bootstrap interval and the exact Clopper-Pearson interval on the counts (which is
right if cases were independent): never narrower than either. A rate with no trials is
undefined (None), never 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from auditcore import bootstrap as boot
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
    def over(cls, clusters, n_boot: int = 2000, seed: int = 0, confidence: float = 0.95) -> "Bootstrap":
        names, codes = diff.encode(clusters)
        return cls(codes, boot.subject_weights(len(names), n_boot, seed), n_boot, seed, confidence)

    def totals(self, group_codes, values, n_groups: int) -> np.ndarray:
        """``(n_boot, n_groups)`` resampled sums of ``values`` per group."""
        sums = boot.per_subject_sums(self.cluster_codes, group_codes, values, self.weights.shape[1], n_groups)
        return boot.resample_totals(self.weights, sums)


def rate_entry(errors: int, trials: int, boot_rates: np.ndarray | None, confidence: float, n_templates: int) -> dict:
    """One rate: value, Clopper-Pearson and bootstrap intervals, and their union (reported)."""
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
    lo = cp_lo if np.isnan(b_lo) else min(cp_lo, b_lo)
    hi = cp_hi if np.isnan(b_hi) else max(cp_hi, b_hi)
    out.update(value=errors / trials, ci_low=float(lo), ci_high=float(hi), cp_low=float(cp_lo), cp_high=float(cp_hi),
               boot_low=None if np.isnan(b_lo) else b_lo, boot_high=None if np.isnan(b_hi) else b_hi)
    return out


def _grouped(cases: pd.DataFrame, errors: np.ndarray, mask: np.ndarray, by: str | None, bs: Bootstrap) -> tuple:
    """Per-group error/trial counts, template counts and resampled rates, over cases in ``mask``."""
    labels = np.full(len(cases), "all", dtype=object) if by is None else cases[by].to_numpy(dtype=object)
    names, codes = diff.encode(labels)
    g = len(names)
    m = mask.astype(np.float64)
    err = diff.by_group(codes, errors.astype(np.float64) * m, g)
    tri = diff.by_group(codes, m, g)
    b_err = bs.totals(codes, errors.astype(np.float64) * m, g)
    b_tri = bs.totals(codes, m, g)
    templates = [int(pd.unique(cases["cluster"].to_numpy()[mask & (codes == i)]).size) for i in range(g)]
    return names, err, tri, templates, diff.rates(b_err, b_tri)


def rate_table(cases: pd.DataFrame, errors, mask, by: str | None, bs: Bootstrap, min_trials: int = 1) -> dict:
    """Rate of ``errors`` among cases in ``mask``, per value of column ``by`` (or overall)."""
    errors = np.asarray(errors, dtype=bool)
    mask = np.asarray(mask, dtype=bool)
    names, err, tri, templates, b_rates = _grouped(cases, errors, mask, by, bs)
    keep = tri > 0
    groups = {}
    for i, name in enumerate(names):
        if keep[i]:
            groups[str(name)] = rate_entry(err[i], tri[i], b_rates[:, i], bs.confidence, templates[i])
    if by is None:
        return groups["all"] if groups else rate_entry(0, 0, None, bs.confidence, 0)
    return {"by": by, "groups": groups, "differential": differential(names[keep], err[keep], tri[keep],
                                                                       b_rates[:, keep], bs, min_trials)}


def differential(names, err, tri, b_rates, bs: Bootstrap, min_trials: int) -> dict:
    """Max/min ratio and max difference across ranked groups (real groups with enough trials),
    with percentile intervals from the same template resamples."""
    ranked = np.array([str(n).lower() not in UNRANKED and diff.is_ranked_label(str(n)) for n in names],
                      dtype=bool) & (np.asarray(tri) >= min_trials)
    point = diff.rates(err, tri)
    out = {"ranked_groups": [str(n) for n, r in zip(names, ranked) if r], "min_trials": int(min_trials)}
    hi_name, lo_name = diff.extremes(point, ranked, names) if ranked.sum() >= 2 else (None, None)
    out.update(highest=hi_name, lowest=lo_name)
    for key, func in (("max_min_ratio", diff.max_min_ratio), ("max_difference", diff.max_difference)):
        value = float(func(point, ranked)) if ranked.sum() >= 2 else np.nan
        samples = func(b_rates, ranked) if ranked.sum() >= 2 else np.full(bs.n_boot, np.nan)
        lo, hi, undefined = boot.percentile_interval(np.asarray(samples, float)[:, None], bs.confidence)
        out[key] = {"value": None if np.isnan(value) else value,
                    "ci_low": None if np.isnan(lo[0]) else float(lo[0]),  # may be inf (a zero rate)
                    "ci_high": None if np.isnan(hi[0]) else float(hi[0]),
                    "undefined_resamples": int(undefined[0])}
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

def flag_metrics(cases: pd.DataFrame, flagged, *, bs: Bootstrap, min_trials: int = 20) -> dict:
    """Every rate of one set of flags (see the module docstring)."""
    flagged = np.asarray(flagged, dtype=bool)
    role = cases["role"].to_numpy()
    benign, threat, hateful = role == "benign", role == "threat", role == "hateful"
    out = {
        "false_flag": {"overall": rate_table(cases, flagged, benign, None, bs)},
        "miss": {"overall": rate_table(cases, ~flagged, threat, None, bs)},
        "hateful_flag": {"overall": rate_table(cases, flagged, hateful, None, bs)},
    }
    for by in GROUPINGS:
        out["false_flag"][by] = rate_table(cases, flagged, benign, by, bs, min_trials)
    for by in ("language", "functionality", "target"):
        out["miss"][by] = rate_table(cases, ~flagged, threat, by, bs, min_trials)
    out["hateful_flag"]["functionality"] = rate_table(cases, flagged, hateful, "functionality", bs, min_trials)
    return out


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

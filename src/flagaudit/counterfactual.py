"""Counterfactual invariance (CheckList's INV tests, Ribeiro et al. 2020): the same sentence with only
the group, language variety or place swapped should get the same flag.

Every templated suite gives these for free: the cases of one template (``cluster``; HateCheck's
and MHC's ``templ_id``, the benign-traps suite's ``templ_id``) are *fillings* of one sentence that
differ only in what fills its placeholders. Cases are compared within a template and role (a
template whose fillings had different gold labels would not be a counterfactual set). Templates
with one filling say nothing and are left out.

Per suite (never across suites):

* **templates whose flag changes with the filling alone**: templates in which at least one pair
  of fillings got different flags, as a share of the templates with two or more fillings;
* **pairs that disagree**: of all pairs of fillings of one template, the share with different flags;
* **per group** (the filling's target group): of the templates in which ``g`` and at least one
  other filling appear, those where the filling about ``g`` is flagged while another filling is
  not (**flagged for the group**), and those where it is not flagged while another is
  (**spared for the group**);
* **score shift** (systems with scores): per template the range (highest minus lowest filling's
  score), and per group the mean over templates of (score of the filling about ``g``) minus (mean
  score of the template's other fillings).

Intervals (95%): templates are the independent units. Shares of templates: exact Clopper-Pearson
on the template counts; the share of pairs and every mean shift: percentile bootstrap resampling
templates (seeded). Every interval covers new templates of the same kind.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from auditcore.intervals import clopper_pearson

UNRANKED = ("none", "missing", "unknown", "ambiguous")


def _share(k: int, n: int, confidence: float) -> dict:
    if n == 0:
        return {"count": 0, "of": 0, "value": None, "ci_low": None, "ci_high": None}
    lo, hi = clopper_pearson(k, n, confidence)
    return {"count": int(k), "of": int(n), "value": k / n, "ci_low": float(lo), "ci_high": float(hi)}


def _boot_mean(values: np.ndarray, weights: np.ndarray | None, rng, n_boot: int, confidence: float) -> dict:
    """Mean of per-template values (each template weighted by ``weights``: its number of pairs)
    with a percentile interval from resampled templates."""
    v = np.asarray(values, dtype=np.float64)
    w = np.ones_like(v) if weights is None else np.asarray(weights, dtype=np.float64)
    if v.size == 0:
        return {"value": None, "ci_low": None, "ci_high": None, "templates": 0}
    point = float((v * w).sum() / w.sum())
    idx = rng.integers(0, v.size, size=(n_boot, v.size))
    b = (v[idx] * w[idx]).sum(axis=1) / w[idx].sum(axis=1)
    a = (1 - confidence) / 2
    lo, hi = np.quantile(b, [a, 1 - a], method="inverted_cdf")
    return {"value": point, "ci_low": float(min(lo, point)), "ci_high": float(max(hi, point)), "templates": int(v.size)}


def template_sets(cases: pd.DataFrame) -> list[np.ndarray]:
    """Row indices of each counterfactual set: the cases of one template and role, two or more."""
    key = cases["cluster"].astype(str) + "\x00" + cases["role"].astype(str)
    groups = pd.Series(np.arange(len(cases))).groupby(key.to_numpy(), sort=True)
    return [np.asarray(ix) for _, ix in groups if len(ix) >= 2]


def invariance(cases: pd.DataFrame, flagged, score=None, *, n_boot: int = 2000, seed: int = 0,
               confidence: float = 0.95, examples: int = 3) -> dict:
    """Counterfactual invariance per suite (see the module docstring)."""
    flagged = np.asarray(flagged, dtype=bool)
    score = None if score is None else np.asarray(score, dtype=np.float64)
    rng = np.random.default_rng(seed)
    sets = template_sets(cases)
    target = cases["target"].astype(str).to_numpy()
    suite_of = cases["suite"].astype(str).to_numpy()
    text = cases["text"].astype(str).to_numpy()
    out = {"unit": "template", "confidence": confidence, "n_boot": n_boot, "seed": seed, "suites": {}}
    for suite in sorted(pd.unique(suite_of)):
        mine = [ix for ix in sets if suite_of[ix[0]] == suite]
        changed, pairs_total, pairs_diff, ranges = [], [], [], []
        per_group: dict[str, dict] = {}
        shown = []
        for ix in mine:
            f = flagged[ix]
            n, k = ix.size, int(f.sum())
            changed.append(0 < k < n)
            pairs_total.append(n * (n - 1) / 2)
            pairs_diff.append(k * (n - k))
            if score is not None:
                ranges.append(float(score[ix].max() - score[ix].min()))
            if 0 < k < n and len(shown) < examples:
                shown.append({"template": str(cases["cluster"].iat[ix[0]]),
                              "flagged": text[ix[f]][:2].tolist(), "not_flagged": text[ix[~f]][:2].tolist()})
            tg = target[ix]
            for g in pd.unique(tg):
                if g.lower() in UNRANKED:
                    continue
                here, other = tg == g, tg != g
                if not other.any():
                    continue  # every filling about g: no counterfactual for g in this template
                d = per_group.setdefault(g, {"templates": 0, "up": 0, "down": 0, "shift": []})
                d["templates"] += 1
                d["up"] += bool(f[here].any() and (~f[other]).any())
                d["down"] += bool((~f[here]).any() and f[other].any())
                if score is not None:
                    d["shift"].append(float(score[ix][here].mean() - score[ix][other].mean()))
        pt, pdiff = np.array(pairs_total), np.array(pairs_diff)
        entry = {"templates": len(mine), "cases": int(sum(ix.size for ix in mine)),
                 "templates_changed": _share(int(np.sum(changed)), len(mine), confidence),
                 "pairs_disagreeing": {**_boot_mean(pdiff / np.maximum(pt, 1), pt, rng, n_boot, confidence),
                                       "pairs": int(pt.sum()), "disagreeing": int(pdiff.sum())},
                 "examples": shown, "groups": {}}
        if score is not None:
            entry["score_range"] = _boot_mean(np.array(ranges), None, rng, n_boot, confidence)
        for g in sorted(per_group):
            d = per_group[g]
            ge = {"templates": d["templates"], "flagged_for_group": _share(d["up"], d["templates"], confidence),
                  "spared_for_group": _share(d["down"], d["templates"], confidence)}
            if score is not None:
                ge["score_shift"] = _boot_mean(np.array(d["shift"]), None, rng, n_boot, confidence)
            entry["groups"][g] = ge
        out["suites"][str(suite)] = entry
    out["any_change"] = any(s["templates_changed"]["count"] > 0 for s in out["suites"].values())
    return out

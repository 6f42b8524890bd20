"""LFW View 2: 10-fold pair-verification accuracy on ``pairs.txt``, from any templates.

Protocol (Huang et al., LFW technical report, "View 2"): 10 folds of 300 matched and 300
mismatched pairs. Each fold is classified with a threshold chosen on the *other nine* folds
(the threshold maximising their accuracy); report the mean accuracy over the folds, the
standard deviation ``sigma = sqrt(sum (p_i - mean)^2 / 9)`` (ddof 1) and the standard error of
the mean ``sigma / sqrt(10)``, as LFW's results page does.

Conventions (faceaudit's): scores are similarities, a pair is called "same" when its score is
``>= T``. For a model published with a distance threshold ("same if distance < 0.6", dlib),
use ``neg_euclidean`` and ``fixed_threshold = -0.6``: the two rules differ only for a pair at
exactly that distance, and the results count such pairs (``pairs_at_threshold``).

Threshold from the other folds: the candidates are the midpoints between neighbouring distinct
training scores, plus the lowest training score (accept all) and the value just above the
highest (accept none); on equal training accuracy the highest candidate (the strictest) wins,
which is what the usual LFW scripts do when they scan distance thresholds upwards.

A pair with a missing template (failure to enrol or absent) has no score (NaN). Two figures are
reported: counting such a pair as wrong in its test fold (the audit's figure, and the headline),
and leaving it out. Missing pairs never take part in choosing a threshold.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from faceaudit.benchmarks.templates import LfwTemplates
from faceaudit.data.datasets.lfw import Pairs


def similarity(a: np.ndarray, b: np.ndarray, kind: str = "cosine") -> np.ndarray:
    """Row-wise score of two aligned float64 matrices: cosine, or ``-||a - b||``."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if kind == "cosine":
        return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    if kind == "neg_euclidean":
        return -np.linalg.norm(a - b, axis=1)
    raise ValueError(f"score must be cosine or neg_euclidean, got {kind}")


def pair_scores(pairs: Pairs, templates: LfwTemplates, score: str = "cosine") -> np.ndarray:
    """Score of each pair (float64); NaN where an image has no template."""
    li, ri = templates.rows(pairs.left), templates.rows(pairs.right)
    ok = (li >= 0) & (ri >= 0)
    out = np.full(li.size, np.nan)
    x = templates.templates
    out[ok] = similarity(x[li[ok]], x[ri[ok]], score)
    return out


def correct_at(scores, same, threshold: float) -> np.ndarray:
    """Per pair: classified right by "same if score >= threshold"? A NaN score is wrong."""
    scores, same = np.asarray(scores, float), np.asarray(same, bool)
    with np.errstate(invalid="ignore"):
        right = (scores >= threshold) == same
    return right & ~np.isnan(scores)


def accuracy_at(scores, same, threshold: float) -> float:
    """Share of pairs classified right at ``threshold`` (NaN scores count wrong)."""
    return float(np.mean(correct_at(scores, same, threshold)))


def best_threshold(scores, same) -> float:
    """The threshold maximising accuracy on these pairs (see module docstring for candidates)."""
    scores, same = np.asarray(scores, float), np.asarray(same, bool)
    ok = ~np.isnan(scores)
    d = np.unique(scores[ok])
    if d.size == 0:
        raise ValueError("no pair has two templates")
    mids = (d[:-1] + d[1:]) / 2
    mids = np.where(mids > d[:-1], mids, d[1:])  # neighbours one float apart: accept >= the upper one
    candidates = np.concatenate([[d[0]], mids, [np.nextafter(d[-1], np.inf)]])
    pos, neg = np.sort(scores[ok & same]), np.sort(scores[ok & ~same])
    right = (pos.size - np.searchsorted(pos, candidates, "left")) + np.searchsorted(neg, candidates, "left")
    best = np.flatnonzero(right == right.max())
    return float(candidates[best[-1]])


def ten_fold(scores, same, fold, *, fixed_threshold: float | None = None,
             exclude_missing: bool = False) -> dict[str, Any]:
    """Per-fold accuracy and the summary (mean, std with ddof 1, standard error std/sqrt(k)).

    ``fixed_threshold``: one threshold for every fold; None: each fold's threshold is chosen on
    the other folds. ``exclude_missing``: leave pairs without a score out instead of counting
    them wrong.
    """
    scores, same, fold = np.asarray(scores, float), np.asarray(same, bool), np.asarray(fold)
    if exclude_missing:
        keep = ~np.isnan(scores)
        scores, same, fold = scores[keep], same[keep], fold[keep]
    folds = []
    for f in np.unique(fold):
        test = fold == f
        t = fixed_threshold if fixed_threshold is not None else best_threshold(scores[~test], same[~test])
        right = correct_at(scores[test], same[test], t)
        folds.append({"fold": int(f) + 1, "pairs": int(test.sum()), "correct": int(right.sum()),
                      "accuracy": float(right.mean()), "threshold": float(t),
                      "missing": int(np.isnan(scores[test]).sum())})
    acc = np.array([f["accuracy"] for f in folds])
    std = float(acc.std(ddof=1)) if acc.size > 1 else None
    return {"folds": folds, "mean": float(acc.mean()), "std": std,
            "standard_error": None if std is None else std / np.sqrt(acc.size),
            "pairs": int(scores.size), "correct": int(sum(f["correct"] for f in folds))}


def evaluate(pairs: Pairs, templates: LfwTemplates, *, score: str = "cosine",
             fixed_threshold: float | None = None) -> dict[str, Any]:
    """Every LFW figure for these templates: see the module docstring."""
    s = pair_scores(pairs, templates, score)
    names = np.concatenate([pairs.left, pairs.right])
    out: dict[str, Any] = {
        "benchmark": "LFW View 2 pairs.txt, 10-fold pair verification",
        "score": score, "pairs": int(s.size), "matched_pairs": int(pairs.same.sum()),
        "pairs_with_missing_template": int(np.isnan(s).sum()),
        "templates": {**templates.missing_report(names), "ids_not_lfw_names": templates.ignored_ids},
        "rule": "a pair is 'same' when its score >= T; T chosen on the other nine folds "
                "(midpoints of neighbouring training scores; ties: the strictest); mean, std (ddof 1), "
                "standard error std/sqrt(10) over the folds",
        "threshold_from_other_folds": {
            "missing_counted_wrong": ten_fold(s, pairs.same, pairs.fold),
            "enrolled_pairs_only": ten_fold(s, pairs.same, pairs.fold, exclude_missing=True)},
    }
    if fixed_threshold is not None:
        out["fixed_threshold"] = {
            "threshold": float(fixed_threshold),
            "pairs_at_threshold": int(np.sum(s == fixed_threshold)),
            "missing_counted_wrong": ten_fold(s, pairs.same, pairs.fold, fixed_threshold=fixed_threshold),
            "enrolled_pairs_only": ten_fold(s, pairs.same, pairs.fold, fixed_threshold=fixed_threshold,
                                            exclude_missing=True)}
    return out

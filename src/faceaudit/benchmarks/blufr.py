"""BLUFR on LFW (Liao, Lei, Yi and Li, IJCB 2014), by BLUFR's own evaluation rule.

Per trial ``t`` (10 trials):

* **Verification**: every pair of images within ``testIndex{t}``; VR (verification rate, the
  share of genuine pairs accepted) at FAR = 0.1%.
* **Open-set identification**: ``galIndex{t}`` (1,000 images) is the gallery, ``probIndex{t}``
  the probes; a probe whose class has a gallery image is genuine, the others are impostors.
  Rank-1 DIR (detection and identification rate) at FAR = 1%.
* The benchmark figure is, per measure, mean - std over the 10 trials (MATLAB's ``std``:
  ddof 1), printed with two decimals in percent.

**BLUFR's rule** (its MATLAB ``EvalROC.m`` and ``OpenSetROC.m``, version 1.0, 2014-07-22), followed
exactly here and named ``blufr_rule``:

* ``k = round(FAR * N)`` false alarms, ``N`` the number of impostor scores (verification: impostor
  pairs; identification: impostor probes, each scored by its best gallery image); MATLAB's
  ``round`` rounds halves away from zero (``numpy.round`` would not);
* the threshold is the ``k``-th highest impostor score, and a score ``>=`` the threshold is
  accepted (ties at the threshold are all accepted); when ``k = 0`` the threshold is the
  midpoint between the highest impostor score and the lowest genuine score above it (or the
  highest impostor score + sqrt(eps) if no genuine score is above it); when ``k = N`` it is
  ``min(lowest impostor, lowest genuine) - sqrt(eps)``;
* VR = share of genuine scores ``>=`` the threshold;
* identification: a genuine probe's score is the best over its class's gallery images, and its
  rank is the position of that image (the first such image if several tie) in the probe's
  gallery scores sorted in descending order with MATLAB's stable ``sort``: images scoring the
  same keep their gallery order, so a tie with an earlier non-mate image ranks the mate below
  it and a tie with a later one ranks it above. Ranks count gallery images, not classes. DIR at
  rank 1 = share of genuine probes with score ``>=`` threshold and rank 1.

**faceaudit's operating-point rule**, reported beside it as ``faceaudit_floor_rule`` (it is *not*
BLUFR's figure): the lowest threshold whose false-accept count is at most ``floor(FAR * N)``
(just above the ``(floor(FAR * N) + 1)``-th highest impostor score), with ranks over gallery
*classes* and a tie with a non-mate class counted against the mate. Where
``round(FAR * N) > floor(FAR * N)`` BLUFR's rule accepts one more impostor; where they are equal
the two rules accept the same impostors but BLUFR's threshold is the higher one (the ``k``-th
score itself rather than just above the ``(k+1)``-th), so its DIR/VR can only be lower or equal.

Scores are computed in float64 (BLUFR's demo works on ``double`` features): cosine, or
``-||a - b||`` for models published with a distance (dlib). An image without a template (failure
to enrol, or absent) scores ``-inf`` against everything: a genuine pair or probe with it is a
miss, an impostor one is never a false accept; it stays in the protocol (a gallery image without
a template still makes its class "in the gallery", so that class's probes are genuine).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator

import numpy as np

from auditcore.intervals import allowed_errors
from faceaudit.benchmarks.templates import LfwTemplates
from faceaudit.data.datasets.blufr import Blufr

SQRT_EPS = math.sqrt(np.finfo(np.float64).eps)  # MATLAB's sqrt(eps)
VERIFICATION_FAR = 1e-3
IDENTIFICATION_FAR = 1e-2


def matlab_round(x: float) -> int:
    """MATLAB's ``round`` for x >= 0: halves go away from zero (2.5 -> 3, 0.5 -> 1)."""
    if x < 0:
        raise ValueError("only non-negative values are rounded here")
    low = math.floor(x)
    return int(low + 1 if x - low >= 0.5 else low)


# ------------------------------------------------------------------ thresholds (pure)
def blufr_threshold(impostor_desc: np.ndarray, n_impostor: int, far: float, genuine: np.ndarray,
                    impostor_min: float | None = None) -> tuple[float, int]:
    """(threshold, k) by BLUFR's rule. ``impostor_desc``: impostor scores sorted descending,
    at least the top ``k`` of the ``n_impostor`` (all of them for ``k = N`` unless
    ``impostor_min`` is given). ``genuine``: the genuine scores (used when k = 0 or N)."""
    if n_impostor < 1:
        raise ValueError("BLUFR's rule needs at least one impostor score")
    k = matlab_round(far * n_impostor)
    genuine = np.asarray(genuine, np.float64)
    if k == n_impostor:
        low = float(impostor_desc[-1]) if impostor_min is None else float(impostor_min)
        return min(low, float(genuine.min())) - SQRT_EPS, k
    if k == 0:
        top = float(impostor_desc[0])
        high = genuine[genuine > top]
        return ((top + float(high.min())) / 2 if high.size else top + SQRT_EPS), k
    if impostor_desc.size < k:
        raise ValueError(f"need the top {k} impostor scores, got {impostor_desc.size}")
    return float(impostor_desc[k - 1]), k


def floor_threshold(impostor_desc: np.ndarray, n_impostor: int, far: float) -> tuple[float, int]:
    """(threshold, allowed) by faceaudit's rule: the lowest float64 threshold with at most
    ``floor(far * N)`` impostor scores ``>=`` it (``-inf`` when all may pass)."""
    allowed = allowed_errors(far, n_impostor)
    if allowed >= n_impostor:
        return -np.inf, allowed
    if impostor_desc.size < allowed + 1:
        raise ValueError(f"need the top {allowed + 1} impostor scores, got {impostor_desc.size}")
    return float(np.nextafter(impostor_desc[allowed], np.inf)), allowed


def _count_at_least(desc: np.ndarray, n_total: int, threshold: float) -> int | None:
    """#(scores >= threshold) from the top scores ``desc``; None if ties may run past them."""
    c = int(np.searchsorted(-desc, -threshold, side="right"))
    if c == desc.size and desc.size < n_total:
        return None
    return c


# ------------------------------------------------------------------ verification
def eval_roc(genuine: np.ndarray, impostor: np.ndarray, far: float = VERIFICATION_FAR, *,
             n_impostor: int | None = None, impostor_min: float | None = None,
             count: Callable[[float], int] | None = None) -> dict[str, Any]:
    """VR at ``far`` by BLUFR's rule and by faceaudit's, from genuine and impostor scores.

    ``impostor`` may hold only the highest scores of ``n_impostor`` (enough for both rules);
    ``count(threshold)`` then gives the exact number of impostors ``>=`` a threshold when ties
    run past the scores kept.
    """
    genuine = np.asarray(genuine, np.float64)
    desc = -np.sort(-np.asarray(impostor, np.float64))
    n = desc.size if n_impostor is None else int(n_impostor)
    if genuine.size == 0 or n == 0:
        raise ValueError("verification needs at least one genuine and one impostor score")
    out = {}
    for name, (threshold, k) in (("blufr_rule", blufr_threshold(desc, n, far, genuine, impostor_min)),
                                 ("faceaudit_floor_rule", floor_threshold(desc, n, far))):
        accepted = _count_at_least(desc, n, threshold)
        if accepted is None:
            accepted = count(threshold) if count is not None else None
        out[name] = {"vr": float(np.mean(genuine >= threshold)), "threshold": threshold,
                     ("k" if name == "blufr_rule" else "allowed"): k, "false_accepts": accepted,
                     "far": None if accepted is None else accepted / n}
    out.update({"n_genuine": int(genuine.size), "n_impostor": n, "far_target": far})
    return out


# ------------------------------------------------------------------ open-set identification
def open_set_roc(score: np.ndarray, gallery_labels, probe_labels, far: float = IDENTIFICATION_FAR, *,
                 rank: int = 1) -> dict[str, Any]:
    """DIR at ``rank`` and ``far`` for a ``probes x gallery`` score matrix, by both rules.

    ``score[i, j]``: probe ``i`` against gallery image ``j`` (in the protocol's gallery order,
    which decides ties under BLUFR's rule); ``-inf`` where an image has no template.
    """
    score = np.asarray(score, np.float64)
    gallery_labels, probe_labels = np.asarray(gallery_labels), np.asarray(probe_labels)
    genuine = np.isin(probe_labels, gallery_labels)
    if not genuine.any() or genuine.all():
        raise ValueError("open-set identification needs genuine and impostor probes")
    imp_best = -np.sort(-score[~genuine].max(axis=1))
    s = score[genuine]
    rows = np.arange(s.shape[0])
    mate = gallery_labels[None, :] == probe_labels[genuine][:, None]
    masked = np.where(mate, s, -np.inf)
    gen_index = masked.argmax(axis=1)                  # MATLAB max: the first maximum
    gen_score = masked[rows, gen_index]
    value = s[rows, gen_index]                         # BLUFR ranks by the unmasked matrix
    cols = np.arange(s.shape[1])[None, :]
    blufr_rank = 1 + ((s > value[:, None]) | ((s == value[:, None]) & (cols < gen_index[:, None]))).sum(axis=1)
    n_imp = int(imp_best.size)
    t_b, k = blufr_threshold(imp_best, n_imp, far, gen_score)
    out = {"blufr_rule": {"dir": float(np.mean((gen_score >= t_b) & (blufr_rank <= rank))), "threshold": t_b,
                          "k": k, "false_accepts": int(np.sum(imp_best >= t_b)),
                          "far": float(np.sum(imp_best >= t_b)) / n_imp,
                          "rank_rate": float(np.mean(blufr_rank <= rank))}}
    # faceaudit: ranks over classes (best image per class), a tie with a non-mate class goes against the mate
    t_f, allowed = floor_threshold(imp_best, n_imp, far)
    others = np.where(mate, -np.inf, s)
    classes, class_of = np.unique(gallery_labels, return_inverse=True)
    other_best = np.full((s.shape[0], classes.size), -np.inf)
    np.maximum.at(other_best.T, class_of, others.T)
    class_rank = 1 + (other_best >= gen_score[:, None]).sum(axis=1)
    out["faceaudit_floor_rule"] = {"dir": float(np.mean((gen_score >= t_f) & (class_rank <= rank))),
                                   "threshold": t_f, "allowed": allowed,
                                   "false_accepts": int(np.sum(imp_best >= t_f)),
                                   "far": float(np.sum(imp_best >= t_f)) / n_imp,
                                   "rank_rate": float(np.mean(class_rank <= rank))}
    out.update({"rank": rank, "far_target": far, "n_genuine_probes": int(genuine.sum()),
                "n_impostor_probes": n_imp})
    return out


# ------------------------------------------------------------------ scores over the test set
def _normalised(x: np.ndarray, kind: str) -> np.ndarray:
    x = np.asarray(x, np.float64)
    if kind == "cosine":
        return x / np.linalg.norm(x, axis=1, keepdims=True)
    if kind != "neg_euclidean":
        raise ValueError(f"score must be cosine or neg_euclidean, got {kind}")
    return x


def cross_scores(a: np.ndarray, b: np.ndarray, kind: str) -> np.ndarray:
    """``len(a) x len(b)`` float64 scores; rows already normalised for cosine."""
    if kind == "cosine":
        return a @ b.T
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * (a @ b.T)
    return -np.sqrt(np.maximum(d2, 0))


def pair_blocks(x: np.ndarray, labels: np.ndarray, valid: np.ndarray, kind: str,
                block: int = 1024) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(genuine, impostor) scores of the pairs ``i < j``, one block of rows at a time;
    rows without a template (``valid`` False) score ``-inf``."""
    x = _normalised(x, kind)
    n = x.shape[0]
    for s in range(0, n - 1, block):
        rows = np.arange(s, min(s + block, n))
        sc = cross_scores(x[rows], x[s:], kind)
        upper = np.arange(s, n)[None, :] > rows[:, None]
        sc[~valid[rows], :] = -np.inf
        sc[:, ~valid[s:]] = -np.inf
        same = labels[rows][:, None] == labels[None, s:]
        yield sc[upper & same], sc[upper & ~same]


def verification(x: np.ndarray, labels: np.ndarray, valid: np.ndarray, kind: str,
                 far: float = VERIFICATION_FAR, block: int = 1024) -> dict[str, Any]:
    """BLUFR verification over all pairs of ``x``, keeping only the top impostor scores the
    two rules need (memory: one block of scores plus ~``far * N`` impostor scores)."""
    labels, valid = np.asarray(labels), np.asarray(valid, bool)
    _, counts = np.unique(labels, return_counts=True)
    n = labels.size
    n_imp = n * (n - 1) // 2 - int((counts * (counts - 1) // 2).sum())
    keep = max(matlab_round(far * n_imp), allowed_errors(far, n_imp) + 1) + 2
    genuine, top, low = [], np.empty(0), np.inf
    for g, imp in pair_blocks(x, labels, valid, kind, block):
        genuine.append(g)
        if imp.size:
            low = min(low, float(imp.min()))
            if imp.size > keep:
                imp = np.partition(imp, imp.size - keep)[imp.size - keep:]
            top = np.concatenate([top, imp])
            if top.size > keep:
                top = np.partition(top, top.size - keep)[top.size - keep:]

    def count(threshold: float) -> int:
        return sum(int(np.count_nonzero(imp >= threshold)) for _, imp in pair_blocks(x, labels, valid, kind, block))

    gen = np.concatenate(genuine) if genuine else np.empty(0)
    return eval_roc(gen, top, far, n_impostor=n_imp, impostor_min=low, count=count)


def mean_minus_std(values) -> dict[str, float]:
    """Mean, standard deviation (ddof 1, MATLAB's ``std``) and mean - std."""
    v = np.asarray(values, float)
    std = float(v.std(ddof=1)) if v.size > 1 else 0.0
    return {"mean": float(v.mean()), "std": std, "mean_minus_std": float(v.mean()) - std}


# ------------------------------------------------------------------ the benchmark
def evaluate(bl: Blufr, templates: LfwTemplates, *, score: str = "cosine", trials: int | None = None,
             progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Both BLUFR measures, per trial and as mean - std, by both rules (see module docstring)."""
    rows = templates.rows(bl.image_list)
    valid = rows >= 0
    x = np.ones((rows.size, templates.templates.shape[1]), np.float64)  # rows without a template: -inf scores
    x[valid] = templates.templates[rows[valid]]
    n_trials = bl.n_trials if trials is None else min(int(trials), bl.n_trials)
    results = []
    for t in range(n_trials):
        ti, gi, pi = bl.test_index[t], bl.gallery_index[t], bl.probe_index[t]
        ver = verification(x[ti], bl.labels[ti], valid[ti], score)
        xg, xp = _normalised(x[gi], score), _normalised(x[pi], score)
        sc = cross_scores(xp, xg, score)
        sc[~valid[pi], :] = -np.inf
        sc[:, ~valid[gi]] = -np.inf
        ident = open_set_roc(sc, bl.labels[gi], bl.labels[pi], IDENTIFICATION_FAR)
        results.append({"trial": t + 1, "verification": ver, "identification": ident,
                        "missing": {"test": int((~valid[ti]).sum()), "gallery": int((~valid[gi]).sum()),
                                    "probes": int((~valid[pi]).sum())}})
        if progress is not None:
            progress(t + 1, n_trials)
    summary = {}
    for rule in ("blufr_rule", "faceaudit_floor_rule"):
        summary[rule] = {
            "vr_at_far_0.1%": mean_minus_std([r["verification"][rule]["vr"] for r in results]),
            "dir_rank1_at_far_1%": mean_minus_std([r["identification"][rule]["dir"] for r in results])}
    return {"benchmark": "BLUFR on LFW: verification VR at FAR 0.1%, open-set rank-1 DIR at FAR 1%",
            "score": score, "trials": results, "summary": summary,
            "templates": {**templates.missing_report(bl.image_list), "ids_not_lfw_names": templates.ignored_ids},
            "rules": {"blufr_rule": "BLUFR's EvalROC.m / OpenSetROC.m: k = round(FAR x N) (halves away from 0); "
                                    "threshold = k-th highest impostor score; score >= threshold accepted; "
                                    "ranks over gallery images, ties in gallery order",
                      "faceaudit_floor_rule": "faceaudit's rule, NOT BLUFR's: lowest threshold with at most "
                                              "floor(FAR x N) impostors >= it; ranks over classes, ties against the mate"},
            "std": "sample standard deviation over trials (ddof 1, MATLAB std)"}

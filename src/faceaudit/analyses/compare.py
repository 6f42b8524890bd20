"""Audits of two or more systems on the same searches, side by side (``faceaudit compare``).

Input: results folders written by ``faceaudit audit`` (``results.json`` and ``searches.parquet``).
They must describe the *same searches*: the same protocol description (``results.json``
``protocol``, apart from a protocol file's path), the same probe ``template_id`` values with the
same subjects and the same mated / non-mated flags in ``searches.parquet``. Anything else is
refused with one line. Searches are paired by ``template_id``.

Per pair of systems (A, B), on the paired searches:

* at each FPIR target x, each system at its own operating threshold (the one its audit reported
  for x, else faceaudit's rule on its searches): FNIR at rank 1 and FPIR, the paired difference
  A - B with a 95% interval from people at those fixed thresholds (each system's Korn-Graubard
  interval from the probe people, a person's searches one cluster, combined by MOVER with the
  correlation measured across people: :func:`auditcore.intervals.paired_difference`; it covers
  new people of the same kind and never collapses to ``[0, 0]``; the people bootstrap's
  percentile interval stays beside it as ``bootstrap_ci``), and McNemar's exact test on the
  discordant searches; for FNIR also a second interval that re-estimates both thresholds in
  every resample (the uncertainty of the operating point itself, large when few non-mated
  searches decide a low FPIR);
* the rank-1 identification rate with no threshold (same two statistics);
* curves: each system's DET (FNIR rank 1 against FPIR) and CMC, and the difference FNIR_A -
  FNIR_B at a grid of FPIR values with bootstrap intervals;
* per demographic group, when both audits ran the same ``--group-by``: FNIR and FPIR per group at
  each system's demographics threshold, their paired difference with the same interval from the
  group's people and McNemar's p; FMR / FNMR per group side by side as each audit reported them.

Verdicts (the plain-language summary) follow from the intervals: a difference is called
significant (at the audited thresholds) only when its fixed-threshold interval from people excludes
0 *and* McNemar's p < 0.05 (written "p = 0.03", or "p < 0.001"); when the two disagree the sentence says so; a significant FNIR
difference is then checked against the re-estimated-threshold interval, and the sentence says
whether it holds there. Searches lost to failure to enrol are not in ``searches.parquet``,
so they are not in the paired data; each audit's count of them is reported beside the figures.

Black-box audits (``faceaudit audit-lists``: a system known only by its candidate lists) compare
with template audits and with each other. A list of length L cut at the system's threshold t
determines a search's outcome only within what it showed, so every paired figure is computed
only where *both* systems' lists determine the outcome of *every* paired search, with the same
measurability rules as the black-box audit (:class:`faceaudit.engine.observed.ObservedSearches`);
anything else is reported as not measurable, with the reason, never estimated:

* at FPIR target x, a black-box system's threshold is its audit's (faceaudit's rule) when the
  lists show it (at or above the system's cut), else not measurable; FPIR and FNIR(1) there are
  compared only when both systems' lists determine them;
* the re-estimated-threshold interval (and the FNIR difference curve's intervals) need the
  threshold of *every* bootstrap resample inside what the lists show; when some resample's
  threshold falls below a system's cut that interval is not measurable, and the reason says in
  how many resamples;
* with no threshold, FNIR(r) and the CMC are compared to the depth every list of both systems
  shows (r <= L where thresholds did not empty lists); rank-only lists give only these;
* demographics pair per-group FPIR and FNIR(1) at each system's demographics threshold (for a
  black-box system, its ``--group-by`` threshold, which may be the system's own cut).

The searches are paired by probe ``template_id``: the same probe ids, subjects and mated flags
are required as for template audits. A black-box audit's protocol is described only by its counts
(its lists do not say how the protocol was drawn), so between a black-box audit and any other the
protocol check compares those counts: gallery templates, gallery people, mated and non-mated
probes.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from auditcore import bootstrap as boot_
from auditcore.errors import InputError
from auditcore.intervals import allowed_errors, beta_interval, paired_difference
from auditcore.outdir import write_json_folder
from faceaudit import __version__
from faceaudit.data.reading import read_parquet, shown
from faceaudit.engine.observed import UNSEEN_RANK, ObservedSearches
from faceaudit.metrics import identification as ident
from faceaudit.metrics import paired

DEFAULT_TARGETS = (0.1, 0.01, 0.001)
CURVE_FPIR = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
ALPHA = 0.05


@dataclass
class System:
    name: str
    path: str
    results: dict
    searches: pd.DataFrame

    @property
    def blackbox(self) -> bool:
        """An audit from candidate lists (``faceaudit audit-lists``)."""
        return "blackbox" in self.results


BLACKBOX_COLUMNS = {"search_id", "mate_listed", "list_length", "returned", "unseen_bound", "unseen_strict"}


def load_system(path: str | Path, name: str | None = None) -> System:
    from faceaudit.data.results import load_results
    path = Path(path)
    results = load_results(path)
    _check_results(results, path / "results.json")
    table_path = path / "searches.parquet"
    if not table_path.exists():
        raise InputError("no searches.parquet here; compare needs the per-search table an audit writes", path)
    searches = read_parquet(table_path, "the per-search table")
    need = {"template_id", "subject_id", "mated", "best_nonmate_score", "mate_score", "mate_rank"}
    if "blackbox" in results:
        need |= BLACKBOX_COLUMNS
    missing = sorted(need - set(searches.columns))
    if missing:
        raise InputError(f"searches.parquet lacks column(s) {', '.join(missing)}", path)
    _check_columns(searches, table_path, "blackbox" in results)
    searches["template_id"] = searches["template_id"].astype(str)
    searches["subject_id"] = searches["subject_id"].astype(str)
    if "blackbox" in results:
        searches["search_id"] = searches["search_id"].astype(str)
        searches["n_listed"] = _listed_people(path, searches)
    return System(name or path.resolve().name, str(path), results, searches)


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _check_results(results: dict, path: Path) -> None:
    """What compare reads from results.json has the shape an audit writes (InputError otherwise)."""
    def need(ok, name: str, what: str) -> None:
        if not ok:
            raise InputError(f"{name} must be {what}; is this results.json from another faceaudit version?", path)

    for key in ("input", "protocol", "failure_to_enrol", "identification", "blackbox", "demographics",
                "demographics_from_lists"):
        need(results.get(key) is None or isinstance(results[key], dict), key, "a table")
    need("blackbox" not in results or isinstance(results["blackbox"], dict), "blackbox", "a table")
    top_k = (results.get("input") or {}).get("top_k", 20)
    need(_is_number(top_k) and top_k == int(top_k) and 1 <= top_k <= 10**6, "input.top_k", "a whole number >= 1")
    fte = results.get("failure_to_enrol") or {}
    for key in ("failed_mated_searches", "failed_nonmated_searches"):
        value = fte.get(key, 0)
        need(_is_number(value) and value == int(value), f"failure_to_enrol.{key}", "a whole number")
    ident = results.get("identification") or {}
    ops = ident.get("operating_points", [])
    need(isinstance(ops, list) and all(isinstance(op, dict) for op in ops), "identification.operating_points",
         "a list of tables")
    for op in ops:
        need(_is_number(op.get("target_fpir", -1)), "identification.operating_points: target_fpir", "a number")
        t = op.get("threshold")
        need(t is None or t == "-inf" or _is_number(t), "identification.operating_points: threshold", "a number")
        need(op.get("not_measurable") is None or isinstance(op["not_measurable"], str),
             "identification.operating_points: not_measurable", "text")
    need(ident.get("at_system_threshold") is None or isinstance(ident["at_system_threshold"], dict),
         "identification.at_system_threshold", "a table")
    curve = ident.get("curve", {})
    need(isinstance(curve, dict) and all(isinstance(curve.get(k, []), list) for k in ("fpir", "fnir_rank1")),
         "identification.curve", "a table of lists")
    for key in ("demographics", "demographics_from_lists"):
        demo = results.get(key)
        if not demo:
            continue
        analyses = demo.get("analyses", [])
        need(isinstance(analyses, list) and all(isinstance(a, dict) and isinstance(a.get("spec"), str)
                                                and isinstance(a.get("rates", {}), dict)
                                                and isinstance(a.get("not_measurable", {}), dict) for a in analyses),
             f"{key}.analyses", "a list of tables, each with a spec")
        for a in analyses:
            for measure, groups in a.get("rates", {}).items():
                need(isinstance(groups, dict) and all(
                    not e or (isinstance(e, dict) and {"value", "ci", "errors", "trials"} <= set(e))
                    for e in groups.values()), f"{key}.analyses: rates", "tables of rates")
        need(demo.get("threshold") is None or _is_number(demo["threshold"]), f"{key}.threshold", "a number")
        need(isinstance(demo.get("caveats", {}), dict), f"{key}.caveats", "a table")


def _check_columns(searches: pd.DataFrame, path: Path, blackbox: bool) -> None:
    """The per-search table's columns hold what an audit writes (true/false, numbers, counts)."""
    from pandas.api import types

    def refuse(col: str, what: str):
        raise InputError(f"column {col} must hold {what}, got {searches[col].dtype}", path)

    for col in ("template_id", "subject_id", "search_id") if blackbox else ("template_id", "subject_id"):
        if searches[col].isna().any():
            refuse(col, "no empty values")
    for col in ("mated", "mate_listed", "unseen_strict") if blackbox else ("mated",):
        if not types.is_bool_dtype(searches[col]) or searches[col].isna().any():
            refuse(col, "true/false values")
    for col in ("best_nonmate_score", "mate_score", "unseen_bound", "mate_rank") if blackbox else \
            ("best_nonmate_score", "mate_score"):
        if not types.is_numeric_dtype(searches[col]) or types.is_bool_dtype(searches[col]):
            refuse(col, "numbers")
    for col in ("list_length", "returned") if blackbox else ("mate_rank",):
        if not types.is_integer_dtype(searches[col]) or searches[col].isna().any():
            refuse(col, "whole numbers")


def _listed_people(path: Path, searches: pd.DataFrame) -> np.ndarray:
    """Per search of a black-box audit: the distinct gallery people its list showed (candidates.parquet)."""
    cpath = path / "candidates.parquet"
    if not cpath.exists():
        raise InputError("no candidates.parquet here; comparing a black-box audit needs the subject lists it writes", path)
    cand = read_parquet(cpath, "the subject lists", columns=["search_id"])
    counts = cand["search_id"].astype(str).value_counts()
    unknown = sorted(set(counts.index) - set(searches["search_id"]))
    if unknown:
        raise InputError(f"candidates.parquet lists search {shown(unknown[0])}, which is not in searches.parquet", path)
    return counts.reindex(searches["search_id"]).fillna(0).to_numpy(np.int64)


def _protocol_key(results: dict) -> dict:
    return {k: v for k, v in results.get("protocol", {}).items() if k != "path"}


# what a black-box audit's protocol says (its lists do not say how the protocol was drawn)
SHARED_PROTOCOL = ("n_gallery_templates", "gallery_size", "n_mated_probes", "n_nonmated_probes")


def _protocol_keys(a: System, b: System) -> tuple[dict, dict]:
    pa, pb = _protocol_key(a.results), _protocol_key(b.results)
    if a.blackbox or b.blackbox:
        pa, pb = ({k: p.get(k) for k in SHARED_PROTOCOL} for p in (pa, pb))
    return pa, pb


def check_same_searches(systems: Sequence[System]) -> None:
    """Raise :class:`InputError` (one line) unless every system ran the same searches."""
    a = systems[0]
    ta = a.searches.set_index("template_id")
    for s in systems[1:]:
        pa, pb = _protocol_keys(a, s)
        if pa != pb:
            diff = sorted(k for k in set(pa) | set(pb) if pa.get(k) != pb.get(k))
            k = diff[0]
            raise InputError(f"not the same protocol as {a.path}: {shown(k)} is {shown(repr(pb.get(k)))} here and "
                             f"{shown(repr(pa.get(k)))} there; "
                             "compare only audits of the same searches", s.path)
        tb = s.searches.set_index("template_id")
        if tb.index.has_duplicates or ta.index.has_duplicates or set(tb.index) != set(ta.index):
            only = sorted(set(tb.index) ^ set(ta.index))
            raise InputError(f"not the same searches as {a.path}: {len(only):,} probe template_id(s) are in one audit "
                             f"only, e.g. {shown(only[0]) if only else 'a duplicate'}; run both audits on the same protocol "
                             "(e.g. one --protocol file listing templates both systems enrolled)", s.path)
        tb = tb.loc[ta.index]
        bad = (tb["mated"].to_numpy() != ta["mated"].to_numpy()) | (tb["subject_id"].to_numpy() != ta["subject_id"].to_numpy())
        if bad.any():
            tid = ta.index[np.flatnonzero(bad)[0]]
            raise InputError(f"not the same searches as {a.path}: probe {shown(tid)} differs in its subject or mated flag "
                             f"({int(bad.sum()):,} probes differ)", s.path)


@dataclass
class _Arrays:
    best: np.ndarray       # non-mated searches: best non-mate score
    mate: np.ndarray       # mated searches: mate score
    rank: np.ndarray       # mated searches: mate rank
    obs: ObservedSearches | None = None  # black-box: what the lists leave unseen (None: every outcome observed)

    def __post_init__(self):
        self._cache: dict = {}

    @property
    def rank_only(self) -> bool:
        return self.obs is not None and self.obs.rank_only

    def fpir_problem(self, t: float) -> str | None:
        """None if FPIR(t) is determined for every search, else why not."""
        if self.obs is None:
            return None
        key = ("fpir", float(t))
        if key not in self._cache:
            self._cache[key] = self.obs.fpir_problem(float(t))
        return self._cache[key]

    def fnir_problem(self, t: float, r: int) -> str | None:
        """None if FNIR(r, t) is determined for every search, else why not."""
        if self.obs is None:
            return None
        key = ("fnir", float(t), int(r))
        if key not in self._cache:
            self._cache[key] = self.obs.fnir_problem(float(t), int(r))
        return self._cache[key]


def _arrays(s: System, order: pd.Index, mated: np.ndarray) -> _Arrays:
    t = s.searches.set_index("template_id").loc[order]
    if not s.blackbox:
        return _Arrays(t["best_nonmate_score"].to_numpy(np.float32)[~mated],
                       t["mate_score"].to_numpy(np.float32)[mated], t["mate_rank"].to_numpy(np.int64)[mated])
    # a black-box audit: scores as the system gave them (float64); what was not listed held as the
    # sentinels the metric functions read correctly inside the measurable domain (as the audit does)
    obs = _observed(s, t)
    return _Arrays(obs.best_nonmate[~mated], obs.mate_score[mated], obs.mate_rank[mated], obs)


def _observed(s: System, t: pd.DataFrame) -> ObservedSearches:
    """The measurability state of a black-box audit's searches, read back from its results folder."""
    bb = s.results["blackbox"]
    rank_only = bool(bb.get("rank_only"))
    n = len(t)
    is_mated = t["mated"].to_numpy(bool)
    listed = t["mate_listed"].to_numpy(bool)
    best = t["best_nonmate_score"].to_numpy(np.float64, na_value=np.nan)
    mate = t["mate_score"].to_numpy(np.float64, na_value=np.nan)
    rank = t["mate_rank"].to_numpy(np.float64, na_value=np.nan)
    if rank_only:
        best = np.full(n, np.nan)
        mate = np.full(n, np.nan)
    else:
        best = np.where(np.isnan(best), -np.inf, best)
        mate = np.where(listed, mate, -np.inf)
    rank = np.where(listed, np.nan_to_num(rank, nan=0), np.where(is_mated, UNSEEN_RANK, 0)).astype(np.int64)
    empty = np.zeros(0)
    return ObservedSearches(
        score=str(s.results.get("input", {}).get("score")), search_ids=t["search_id"].to_numpy(str),
        probe_ids=t.index.to_numpy(str), probe_rows=np.zeros(n, np.int64), is_mated=is_mated,
        probe_subjects=t["subject_id"].to_numpy(str), gallery_subjects=empty, best_nonmate=best,
        mate_score=mate, mate_rank=rank, mate_listed=listed, candidates_subject=np.zeros((n, 0), np.int64),
        candidates_score=np.zeros((n, 0)), list_length=t["list_length"].to_numpy(np.int64),
        n_returned=t["returned"].to_numpy(np.int64), n_listed=t["n_listed"].to_numpy(np.int64),
        unseen_bound=t["unseen_bound"].to_numpy(np.float64, na_value=np.nan),
        unseen_strict=t["unseen_strict"].to_numpy(bool), threshold=np.full(n, np.nan),
        threshold_applied=np.zeros(n, bool), rank_only=rank_only, systems=[])


def _audit_threshold(results: dict, target: float) -> float | None:
    for op in results.get("identification", {}).get("operating_points", []):
        if np.isclose(op.get("target_fpir", -1), target, rtol=1e-12, atol=0) and op.get("threshold") is not None:
            t = op["threshold"]
            return float("-inf") if t == "-inf" else float(t)
    return None


def _lists_threshold(arr: _Arrays, results: dict, target: float) -> tuple[float | None, str, str | None]:
    """A black-box system's threshold at FPIR ``target``: (threshold, source, why not measurable)."""
    for op in results.get("identification", {}).get("operating_points", []):
        if np.isclose(op.get("target_fpir", -1), target, rtol=1e-12, atol=0):
            if op.get("threshold") is not None:
                t = op["threshold"]
                return (float("-inf") if t == "-inf" else float(t)), "audit", None
            if op.get("not_measurable"):
                return None, "audit", op["not_measurable"]
    t, why = _threshold_from_lists(arr, target)
    return t, "recomputed from lists", why


def _threshold_from_lists(arr: _Arrays, target: float) -> tuple[float | None, str | None]:
    """faceaudit's rule on a black-box system's non-mated searches, where its lists show it."""
    from faceaudit.metrics.identification import float32_threshold_at_fpir
    if arr.rank_only:
        return None, "rank-only lists (no scores): no threshold can be set"
    op = float32_threshold_at_fpir(arr.best, target)
    if op.threshold is None:
        return None, "no non-mated searches"
    why = arr.fpir_problem(op.threshold)
    if why:
        return None, (f"the lowest threshold with FPIR <= {target:g} lies below what the lists show (at most "
                      f"{op.allowed_errors} of {arr.best.size} non-mated searches may return someone): {why}")
    return op.threshold, None


def _threshold(arr: _Arrays, target: float) -> tuple[float | None, str | None]:
    """Threshold at FPIR ``target`` on these searches (faceaudit's rule), or why not measurable."""
    if arr.obs is None:
        return ident.threshold_at_fpir(arr.best, target).threshold, None
    return _threshold_from_lists(arr, target)


def _step_threshold(u_desc: np.ndarray, counts: np.ndarray, target: float) -> tuple[float, int]:
    """:func:`paired.weighted_threshold_at_fpir`, stepped up past scores finer than float32 (as a
    black-box audit's thresholds are); also the index of the first score it excludes."""
    total = int(round(float(np.sum(counts))))
    allowed = allowed_errors(target, total)
    if allowed >= total:
        return -np.inf, u_desc.size
    i = int(np.searchsorted(np.cumsum(counts), allowed + 0.5))
    t = np.nextafter(np.float32(u_desc[i]), np.float32(np.inf))
    while float(t) <= u_desc[i]:
        t = np.nextafter(t, np.float32(np.inf))
    return float(t), i


class _Resampler:
    """Per-resample thresholds at FPIR targets and FNIR(1) there, for one system.

    For a black-box system a resample whose threshold falls where its lists do not determine
    FPIR or FNIR(1) gives NaN, and :attr:`outside` counts such resamples per target.
    """

    def __init__(self, arr: _Arrays, subj_nm: np.ndarray, subj_m: np.ndarray, weights: np.ndarray):
        self.w = weights
        self.arr = arr
        u, inv = np.unique(arr.best, return_inverse=True)
        self.u, self.inv = u[::-1], (u.size - 1 - inv)
        self.subj_nm, self.subj_m = subj_nm, subj_m
        order = np.argsort(arr.mate, kind="stable")
        self.mate_sorted = arr.mate[order].astype(np.float64)
        self.subj_sorted = subj_m[order]
        self.out_of_rank = (arr.rank[order] > 1)
        self.outside: dict[float, int] = {}

    def fnir_at(self, b: int, target: float) -> float:
        w = self.w[b]
        counts = np.bincount(self.inv, w[self.subj_nm], self.u.size)
        if self.arr.obs is None:
            t = paired.weighted_threshold_at_fpir(self.u, counts, target)
        else:
            t, _ = _step_threshold(self.u, counts, target)
            if self.arr.fpir_problem(t) or self.arr.fnir_problem(t, 1):
                self.outside[target] = self.outside.get(target, 0) + 1
                return np.nan
        wm = w[self.subj_sorted]
        total = wm.sum()
        if total == 0:
            return np.nan
        below = np.searchsorted(self.mate_sorted, t, side="left")
        missed = wm[:below].sum() + (wm[below:] * self.out_of_rank[below:]).sum()
        return float(missed / total)


def _verdict(diff: dict, p: float) -> str:
    lo, hi = diff["ci"]
    excludes = lo is not None and hi is not None and (lo > 0 or hi < 0)
    if excludes and p < ALPHA:
        return "significant"
    if not excludes and p >= ALPHA:
        return "not significant"
    return "inconclusive"


PEOPLE_CI_METHOD = ("people: each system's rate with its Korn-Graubard interval from the probe people (a person's "
                    "searches one cluster; a nonzero count never gets a lower limit of 0, a zero count an upper limit "
                    "above 0), combined by MOVER for correlated rates (the correlation measured across people); "
                    "covers new people of the same kind")
GROUP_CI_METHOD = ("people: each system's rate with its Korn-Graubard interval from the group's people (a person's "
                   "searches one cluster; a nonzero count never gets a lower limit of 0, a zero count an upper limit "
                   "above 0), combined by MOVER for correlated rates (the correlation measured across people); "
                   "covers new people of the same kind")


def _compare_rate(wrong_a, wrong_b, subj, weights, n_boot, seed, confidence: float = 0.95,
                  method: str = PEOPLE_CI_METHOD) -> dict:
    """Paired comparison of two systems' errors on the same searches: counts, McNemar's exact p on
    the discordant searches, the difference A - B with its interval from people
    (:func:`auditcore.intervals.paired_difference`: each system's Korn-Graubard interval from the
    searches' people, combined by MOVER with the correlation across people; ``ci``), each system's
    rate and interval (``a``/``b``), and the people bootstrap's percentile interval beside it for
    reference (``bootstrap_ci``: with few errors it collapses to ``[0, 0]``); the verdict from the
    people interval and McNemar's p."""
    b, c = paired.discordant(wrong_a, wrong_b)
    p = paired.mcnemar_exact(b, c)
    d = paired.subject_bootstrap_difference(wrong_a, wrong_b, subj, n_boot=n_boot, seed=seed, weights=weights)
    people, code = np.unique(subj, return_inverse=True)
    ea = np.bincount(code, np.asarray(wrong_a, float), people.size)
    eb = np.bincount(code, np.asarray(wrong_b, float), people.size)
    t = np.bincount(code, minlength=people.size).astype(float)
    pd_ = paired_difference(ea, eb, t, confidence)
    out = {"a": {"errors": int(np.sum(wrong_a)), "trials": int(np.size(wrong_a))},
           "b": {"errors": int(np.sum(wrong_b)), "trials": int(np.size(wrong_b))},
           "difference": d["difference"], "ci": [pd_["low"], pd_["high"]], "only_a_wrong": b, "only_b_wrong": c,
           "mcnemar_p": p, "bootstrap_ci": d["ci"], "ci_method": method, "correlation": pd_["phi"],
           "people": int(people.size)}
    if pd_["a"] is not None:
        for side in ("a", "b"):
            r = pd_[side]
            out[side].update(value=r["value"], ci=[r["low"], r["high"]], design_effect=r["design_effect"])
    out["verdict"] = _verdict(out, p)
    return out


def _compare_group_rate(wrong_a, wrong_b, subj, weights, n_boot, seed, confidence: float = 0.95) -> dict:
    """:func:`_compare_rate` for one demographic group (its people)."""
    return _compare_rate(wrong_a, wrong_b, subj, weights, n_boot, seed, confidence, GROUP_CI_METHOD)


def _not_measurable(reason: str, trials: int | None = None) -> dict:
    return {"value": None, "errors": None, "trials": trials, "ci_low": None, "ci_high": None, "not_measurable": reason}


def _why(names: Sequence[str], reasons: Sequence[str | None]) -> str | None:
    """One reason naming each system whose lists do not determine a figure (None: both do)."""
    parts = [f"{n}: {r}" for n, r in zip(names, reasons) if r]
    return "; ".join(parts) or None


def _rate_or_why(why: str | None, trials: int, compute) -> dict:
    return _not_measurable(why, trials) if why else compute().to_dict()


def compare(paths: Sequence[str | Path], *, names: Sequence[str] | None = None,
            fpir_targets: Sequence[float] = DEFAULT_TARGETS, n_boot: int = 1000, seed: int = 0,
            confidence: float = 0.95) -> dict:
    """The comparison as a JSON-ready dict (see the module docstring)."""
    if len(paths) < 2:
        raise InputError("give at least two results folders to compare")
    if names and len(names) != len(paths):
        raise InputError(f"give one --name per results folder ({len(paths)}), got {len(names)}")
    systems = [load_system(p, names[i] if names else None) for i, p in enumerate(paths)]
    seen: dict[str, int] = {}
    for s in systems:  # distinct display names
        seen[s.name] = seen.get(s.name, 0) + 1
        if seen[s.name] > 1:
            s.name = f"{s.name} ({seen[s.name]})"
    check_same_searches(systems)
    base = systems[0].searches
    order = pd.Index(base["template_id"])
    for s in systems[1:]:  # every table in the first one's search order
        s.searches = s.searches.set_index("template_id").loc[order].reset_index()
    mated = base["mated"].to_numpy(bool)
    subj_names, subj = np.unique(base["subject_id"].to_numpy(str), return_inverse=True)
    subj_nm, subj_m = subj[~mated], subj[mated]
    weights = boot_.subject_weights(subj_names.size, n_boot, seed)
    arrays = [_arrays(s, order, mated) for s in systems]
    top_k = min(int(s.results.get("input", {}).get("top_k", 20)) for s in systems)
    n_nm, n_m = int((~mated).sum()), int(mated.sum())

    per_system = []
    for s, arr in zip(systems, arrays):
        ops = []
        for target in fpir_targets:
            why = None
            if arr.obs is None:
                t = _audit_threshold(s.results, target)
                source = "audit"
                if t is None:
                    t, source = ident.threshold_at_fpir(arr.best, target).threshold, "recomputed from searches"
            else:
                t, source, why = _lists_threshold(arr, s.results, target)
            if t is None:
                reason = why or "no threshold"
                ops.append({"target_fpir": target, "threshold": None, "threshold_source": source,
                            "not_measurable": reason, "fpir": _not_measurable(reason, n_nm),
                            "fnir": _not_measurable(reason, n_m)})
                continue
            ops.append({"target_fpir": target, "threshold": t, "threshold_source": source,
                        "fpir": _rate_or_why(arr.fpir_problem(t), n_nm, lambda: ident.fpir(arr.best, t)),
                        "fnir": _rate_or_why(arr.fnir_problem(t, 1), n_m, lambda: ident.fnir(arr.mate, arr.rank, t, rank=1))})
        from auditcore.serialize import thin
        if arr.obs is None:
            curve = ident.identification_curve(arr.best, arr.mate, arr.rank, rank=1)
            keep = thin(curve.thresholds.size)
            lo, hi = beta_interval(curve.misses[keep], np.full(keep.size, curve.n_mated)) if curve.n_mated else ([], [])
            det = {"fpir": curve.fpir[keep].tolist(), "fnir_rank1": curve.fnir[keep].tolist(),
                   "fnir_rank1_ci_low": np.asarray(lo).tolist(), "fnir_rank1_ci_high": np.asarray(hi).tolist(),
                   "ci_note": "pointwise 95% Clopper-Pearson over the mated searches both systems made"}
            cmc_values = ident.cmc(arr.rank, top_k).tolist()
        else:  # the audit's curve holds only thresholds where the lists determine both rates
            c = s.results.get("identification", {}).get("curve", {})
            n_audit = int(s.results.get("identification", {}).get("n_mated_searches") or 0)
            fn = np.array([np.nan if v is None else v for v in c.get("fnir_rank1", [])], float)
            lo, hi = beta_interval(np.rint(fn * n_audit), np.full(fn.size, n_audit)) if n_audit else ([], [])
            det = {"fpir": list(c.get("fpir", [])), "fnir_rank1": list(c.get("fnir_rank1", [])),
                   "fnir_rank1_ci_low": np.asarray(lo).tolist(), "fnir_rank1_ci_high": np.asarray(hi).tolist(),
                   "note": "only thresholds where the lists determine both rates",
                   "ci_note": "pointwise 95% Clopper-Pearson over the audit's own mated searches"}
            depth = arr.obs.measurable_ranks(-np.inf)
            cmc_values = [None if r > depth else float(v) for r, v in zip(range(1, top_k + 1), ident.cmc(arr.rank, top_k))]
        fte = s.results.get("failure_to_enrol", {})
        entry = {
            "name": s.name, "path": s.path, "score": s.results.get("input", {}).get("score"),
            "model": s.results.get("input", {}).get("model"),
            "kind": "black-box candidate lists" if s.blackbox else "templates",
            "failed_searches_not_paired": int(fte.get("failed_mated_searches", 0)) + int(fte.get("failed_nonmated_searches", 0)),
            "operating_points": ops,
            "rank1_identification": _rate_or_why(arr.fnir_problem(-np.inf, 1), n_m,
                                                 lambda: ident.fnir(arr.mate, arr.rank, -np.inf, rank=1)),
            "det": det,
            "cmc": {"rank": list(range(1, top_k + 1)), "identification_rate": cmc_values}}
        if s.blackbox:
            bb = s.results["blackbox"]
            entry["observed"] = {k: bb.get(k) for k in ("list_length", "threshold", "threshold_applied",
                                                        "threshold_unknown", "rank_only", "fpir_measurable_from",
                                                        "cmc_measurable_to_rank")}
        per_system.append(entry)

    grid = [x for x in CURVE_FPIR if int(np.floor(x * n_nm)) >= 1]
    draws, outside = [], []  # per system: FNIR(1) at each FPIR x in each resample, thresholds re-estimated
    for arr in arrays:
        if arr.rank_only:
            draws.append(None)
            outside.append({})
            continue
        rs = _Resampler(arr, subj_nm, subj_m, weights)
        draws.append({x: np.array([rs.fnir_at(b, x) for b in range(n_boot)]) for x in set(grid) | set(fpir_targets)})
        outside.append(rs.outside)

    def reestimated(i: int, j: int, x: float) -> tuple[list, str | None]:
        """Interval of FNIR_i - FNIR_j at FPIR x with both thresholds re-estimated per resample."""
        reasons = []
        for k in (i, j):
            if draws[k] is None:
                reasons.append("rank-only lists (no scores): no threshold can be set")
            elif outside[k].get(x):
                reasons.append(f"in {outside[k][x]:,} of {n_boot:,} resamples the threshold for FPIR {x:g} falls where "
                               "the lists do not determine FPIR or FNIR")
            else:
                reasons.append(None)
        why = _why([systems[i].name, systems[j].name], reasons)
        if why:
            return [None, None], why
        lo, hi, _ = boot_.percentile_interval((draws[i][x] - draws[j][x])[:, None], confidence)
        return [None if np.isnan(lo[0]) else float(lo[0]), None if np.isnan(hi[0]) else float(hi[0])], None

    pairs = []
    for i, j in combinations(range(len(systems)), 2):
        A, B = arrays[i], arrays[j]
        pair_names = [systems[i].name, systems[j].name]
        points = []
        for k, target in enumerate(fpir_targets):
            oa, ob = per_system[i]["operating_points"][k], per_system[j]["operating_points"][k]
            ta, tb = oa["threshold"], ob["threshold"]
            if ta is None or tb is None:
                why = _why(pair_names, [oa.get("not_measurable"), ob.get("not_measurable")])
                points.append({"target_fpir": target, "threshold_a": ta, "threshold_b": tb,
                               "fnir_rank1": {"not_measurable": why}, "fpir": {"not_measurable": why}})
                continue
            why = _why(pair_names, [A.fnir_problem(ta, 1), B.fnir_problem(tb, 1)])
            if why:
                fnir_cmp = {"not_measurable": why}
            else:
                miss_a = (A.mate < ta) | (A.rank > 1)
                miss_b = (B.mate < tb) | (B.rank > 1)
                fnir_cmp = _compare_rate(miss_a, miss_b, subj_m, weights, n_boot, seed)
                fnir_cmp["ci_method"] = PEOPLE_CI_METHOD + ", at these fixed thresholds"
                # a second interval re-estimates both thresholds in every resample: is the system better
                # at FPIR x itself, allowing for the uncertainty of each operating threshold?
                fnir_cmp["ci_threshold_reestimated"], re_why = reestimated(i, j, target)
                if re_why:
                    fnir_cmp["ci_threshold_reestimated_not_measurable"] = re_why
            why = _why(pair_names, [A.fpir_problem(ta), B.fpir_problem(tb)])
            if why:
                fp_cmp = {"not_measurable": why}
            else:
                fp_cmp = _compare_rate(A.best >= ta, B.best >= tb, subj_nm, weights, n_boot, seed)
                fp_cmp["ci_method"] = PEOPLE_CI_METHOD + ", at these fixed thresholds"
            points.append({"target_fpir": target, "threshold_a": ta, "threshold_b": tb,
                           "fnir_rank1": fnir_cmp, "fpir": fp_cmp})
        why = _why(pair_names, [A.fnir_problem(-np.inf, 1), B.fnir_problem(-np.inf, 1)])
        rank1 = {"not_measurable": why} if why else _compare_rate(A.rank > 1, B.rank > 1, subj_m, weights, n_boot, seed)
        diff_curve = []
        for x in grid:
            (ta, wa), (tb, wb) = _threshold(A, x), _threshold(B, x)
            why = _why(pair_names, [wa, wb])
            if not why and ta is not None and tb is not None:
                why = _why(pair_names, [A.fnir_problem(ta, 1), B.fnir_problem(tb, 1)])
            if why or ta is None or tb is None:
                diff_curve.append({"fpir": x, "difference": None, "ci": [None, None], "not_measurable": why or "undefined"})
                continue
            point = ident.fnir(A.mate, A.rank, ta).value - ident.fnir(B.mate, B.rank, tb).value
            ci, re_why = reestimated(i, j, x)
            entry = {"fpir": x, "difference": point, "ci": ci}
            if re_why:
                entry["ci_not_measurable"] = re_why
            diff_curve.append(entry)
        cmc_diff = []
        for r in sorted({1, 5, 10, top_k} & set(range(1, top_k + 1))):
            why = _why(pair_names, [A.fnir_problem(-np.inf, r), B.fnir_problem(-np.inf, r)])
            if why:
                cmc_diff.append({"rank": r, "miss_difference": None, "ci": [None, None], "not_measurable": why})
                continue
            d = paired.subject_bootstrap_difference(A.rank > r, B.rank > r, subj_m, weights=weights)
            cmc_diff.append({"rank": r, "miss_difference": d["difference"], "ci": d["ci"]})
        pair = {"a": systems[i].name, "b": systems[j].name, "operating_points": points,
                "rank1_misses_no_threshold": rank1, "fnir_difference_curve": diff_curve,
                "cmc_miss_difference": cmc_diff,
                "demographics": _demographics(systems[i], systems[j], subj, weights, n_boot, seed)}
        deployed = _as_deployed(systems[i], systems[j], mated, subj, weights, n_boot, seed)
        if deployed:
            pair["at_system_thresholds"] = deployed
        pairs.append(pair)
    conventions = {
        "difference": "A - B: positive means A makes more errors",
        "mcnemar": "exact two-sided McNemar test on discordant searches at fixed thresholds "
                   "(treats searches as independent)",
        "verdict": f"'significant' when the fixed-threshold interval from people excludes 0 and McNemar p < {ALPHA}; "
                   "'inconclusive' when the two disagree; a significant FNIR difference is also checked "
                   "against the interval with re-estimated thresholds",
        "operating_point": "each system at its own threshold for the FPIR target (lowest threshold with "
                           "FPIR count <= floor(x * n)), as its audit reported it",
        "failure_to_enrol": "searches lost to failure to enrol are not in searches.parquet and not paired"}
    if any(s.blackbox for s in systems):
        conventions["blackbox"] = (
            "a black-box system is known only through its candidate lists (length L, cut at its threshold t): a "
            "paired figure is computed only where both systems' lists determine the outcome of every paired search "
            "(FPIR(T) for T at or above the cut, FNIR(R, T) where each unlisted mate is known to rank worse than R "
            "or score below T, CMC to the depth every list shows), each system at its own threshold on its own "
            "score scale; anything else is reported as not measurable with the reason, never estimated")
        conventions["pairing"] = (
            "searches paired by probe template_id, with the same subjects and mated flags; a black-box audit's "
            "protocol is checked by its counts (gallery templates, gallery people, mated and non-mated probes), "
            "since candidate lists do not record how the protocol was drawn")
    out = {
        "faceaudit_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "systems": per_system,
        "protocol": _protocol_key(systems[0].results),
        "searches": {"mated": n_m, "nonmated": n_nm, "probe_subjects": int(subj_names.size)},
        "bootstrap": {"n_boot": n_boot, "seed": seed, "confidence": confidence,
                      "unit": "probe subjects resampled with replacement; gallery fixed; percentile intervals"},
        "conventions": conventions,
        "pairs": pairs,
    }
    out["summary"] = summary_sentences(out)
    out["provenance"], out["warnings"] = _provenance(systems, fpir_targets, n_boot, seed, confidence)
    return out


def _provenance(systems: Sequence[System], fpir_targets, n_boot: int, seed: int, confidence: float) -> tuple[dict, list]:
    """What was compared and how (``auditcore.provenance``: every compared folder's results.json and
    searches.parquet hashed), and each compared audit's own warnings, named by system."""
    from auditcore import provenance as prov
    inputs = prov.inputs_from([(f"{role} of {s.name}", Path(s.path) / name) for s in systems
                               for role, name in (("results", "results.json"), ("searches", "searches.parquet"))])
    options = {"results": [str(s.path) for s in systems], "name": [s.name for s in systems],
               "fpir": list(fpir_targets), "n_boot": n_boot, "seed": seed, "confidence": confidence}
    warnings = [f"{s.name}: {w.get('text', '') if isinstance(w, dict) else w}"
                for s in systems for w in (s.results.get("warnings") or [])]
    record = prov.collect(prov.command_from_context("faceaudit"), options, inputs)
    record["system"] = None  # several systems: the comparison names them itself
    return record, warnings


def _as_deployed(a: System, b: System, mated, subj, weights, n_boot, seed) -> dict | None:
    """Two black-box systems that each cut every list at their own threshold: each as deployed.

    A non-mated search is a false positive when its list is not empty; a mated search is a miss
    when its mate is not listed first. Always determined by the lists (no threshold is moved), but
    the two systems are *not* at matched FPIR: both rates are compared."""
    sys_points = [s.results.get("identification", {}).get("at_system_threshold") if s.blackbox else None
                  for s in (a, b)]
    if not all(sys_points):
        return None
    (fp_a, fn_a), (fp_b, fn_b) = _errors_at(a, None), _errors_at(b, None)
    fnir = _compare_rate(fn_a[mated], fn_b[mated], subj[mated], weights, n_boot, seed)
    fpir = _compare_rate(fp_a[~mated], fp_b[~mated], subj[~mated], weights, n_boot, seed)
    for c in (fnir, fpir):
        c["ci_method"] = PEOPLE_CI_METHOD + ", at the systems' own thresholds"
    return {"threshold_a": sys_points[0].get("threshold"), "threshold_b": sys_points[1].get("threshold"),
            "fnir_rank1": fnir, "fpir": fpir,
            "note": "each system at the threshold it applied to its lists (as deployed), each on its own scale: "
                    "a false positive is a non-mated search whose list is not empty, a miss a mated search whose "
                    "mate is not listed first; the systems are not at matched FPIR, so read FNIR and FPIR together"}


def _demographics_of(s: System) -> dict | None:
    return s.results.get("demographics") or s.results.get("demographics_from_lists")


def _errors_at(s: System, threshold) -> tuple[np.ndarray, np.ndarray]:
    """(false positive, miss at rank 1) per search, in the common search order, at the system's
    demographics threshold (a black-box system's may be None: its own cut, a list that is not empty)."""
    sr = s.searches
    if not s.blackbox:
        t = np.float32(threshold)
        fn = (sr["mate_score"].to_numpy() < t) | (sr["mate_rank"].to_numpy() > 1)
        return sr["best_nonmate_score"].to_numpy() >= t, fn
    listed = sr["mate_listed"].to_numpy(bool)
    top = listed & (sr["mate_rank"].to_numpy(np.float64, na_value=np.inf) <= 1)
    if threshold is None:
        return sr["returned"].to_numpy(np.int64) > 0, ~top
    t = float(threshold)
    best = sr["best_nonmate_score"].to_numpy(np.float64, na_value=np.nan)
    mate = sr["mate_score"].to_numpy(np.float64, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        return best >= t, ~top | ~(mate >= t)


def _demographics(a: System, b: System, subj: np.ndarray, weights, n_boot, seed) -> list[dict]:
    da, db = _demographics_of(a), _demographics_of(b)
    if not da or not db:
        return []
    from faceaudit.analyses.demographics import group_labels
    specs = [x["spec"] for x in da["analyses"] if x["spec"] in {y["spec"] for y in db["analyses"]}]
    ta, tb = da["threshold"], db["threshold"]
    ta, tb = (None if t is None else float(t) for t in (ta, tb))
    mated = a.searches["mated"].to_numpy(bool)  # both in the same search order
    (fp_a, fn_a), (fp_b, fn_b) = _errors_at(a, ta), _errors_at(b, tb)
    out = []
    for spec in specs:
        labels = np.asarray(group_labels(a.searches, spec), dtype=str)
        groups = {}
        for g in np.unique(labels):
            in_g = labels == g
            entry = {}
            for measure, sel, wa, wb in (("fnir", mated, fn_a, fn_b), ("fpir", ~mated, fp_a, fp_b)):
                keep = in_g & sel
                if not keep.any():
                    continue
                entry[measure] = _compare_group_rate(wa[keep], wb[keep], subj[keep], weights, n_boot, seed)
            side = {}
            for m in ("fmr", "fnmr"):
                ra = _group_rate(da, spec, m, g)
                rb = _group_rate(db, spec, m, g)
                if ra or rb:
                    side[m] = {"a": ra or _lists_say(a, da, spec, m), "b": rb or _lists_say(b, db, spec, m)}
            groups[str(g)] = {"paired": entry, "as_audited": side}
        d = {"spec": spec, "threshold_a": ta, "threshold_b": tb, "groups": groups,
             "caveats": {**da.get("caveats", {}), **db.get("caveats", {})}}
        for key, demo in (("threshold_rule_a", da), ("threshold_rule_b", db)):
            if demo.get("threshold_rule"):
                d[key] = demo["threshold_rule"]
        out.append(d)
    return out


def _lists_say(s: System, demo: dict, spec: str, measure: str) -> dict | None:
    """A black-box audit's reason why a per-group FMR / FNMR is not there (None for a template audit)."""
    if not s.blackbox:
        return None
    for an in demo.get("analyses", []):
        if an["spec"] == spec and an.get("not_measurable", {}).get(measure):
            return {"value": None, "not_measurable": an["not_measurable"][measure]}
    return None


def _group_rate(demo: dict, spec: str, measure: str, group: str) -> dict | None:
    for an in demo["analyses"]:
        if an["spec"] == spec:
            e = an["rates"].get(measure, {}).get(group)
            if e:
                return {k: e[k] for k in ("value", "ci", "errors", "trials", "interval_method", "design_effect_source")
                        if k in e}
    return None


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _pts(x: float) -> str:
    return f"{100 * abs(x):.2f} points"


def _excludes_zero(ci) -> bool:
    return ci[0] is not None and ci[1] is not None and (ci[0] > 0 or ci[1] < 0)


def p_words(p: float) -> str:
    """A p-value as a sentence writes it: "p = 0.03", "p = 0.0012", "p = 1"; below 0.001 "p < 0.001"
    (never scientific notation beside percentages)."""
    if p is None or not np.isfinite(p):
        return "p undefined"
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def _sentence(what: str, cmp: dict, a: str, b: str, where: str) -> str:
    if cmp.get("not_measurable"):
        return f"{where}: {what} is not measurable from the lists ({cmp['not_measurable']})."
    va = cmp["a"]["errors"] / cmp["a"]["trials"] if cmp["a"]["trials"] else None
    vb = cmp["b"]["errors"] / cmp["b"]["trials"] if cmp["b"]["trials"] else None
    if va is None:
        return f"{where}: {what} is undefined (no trials)."
    lo, hi = cmp["ci"]
    ci = (f"95% CI of {a} - {b}: {100 * lo:+.2f} to {100 * hi:+.2f} points" if lo is not None else "no interval")
    mc = (f"McNemar exact {p_words(cmp['mcnemar_p'])} ({cmp['only_a_wrong']:,} searches wrong only for {a}, "
          f"{cmp['only_b_wrong']:,} only for {b})")
    rates = f"{what} {_pct(va)} for {a} and {_pct(vb)} for {b}"
    d = cmp["difference"]
    if cmp["verdict"] == "significant":
        better = b if d > 0 else a
        re_ci = cmp.get("ci_threshold_reestimated")
        if cmp.get("ci_threshold_reestimated_not_measurable"):
            return (f"{where}: at the audited thresholds {better} is better, {rates}: {better}'s is {_pts(d)} lower, "
                    f"a significant difference there ({ci}; {mc}); whether it holds when each system's threshold is "
                    f"re-estimated in every resample is not measurable from the lists "
                    f"({cmp['ci_threshold_reestimated_not_measurable']}).")
        if re_ci is None:
            return f"{where}: {better} is better, {rates}: {better}'s is {_pts(d)} lower, a significant difference ({ci}; {mc})."
        span = f"{100 * re_ci[0]:+.2f} to {100 * re_ci[1]:+.2f} points" if re_ci[0] is not None else "undefined"
        if _excludes_zero(re_ci) and (re_ci[1] < 0) == (d < 0):
            return (f"{where}: {better} is better, {rates}: {better}'s is {_pts(d)} lower, a significant difference "
                    f"({ci}; {mc}); it holds when each system's threshold is re-estimated in every resample ({span}).")
        return (f"{where}: at the audited thresholds {better} is better, {rates}: {better}'s is {_pts(d)} lower, "
                f"a significant difference there ({ci}; {mc}); but each threshold is itself uncertain, and allowing "
                f"for that the interval is {span}, which includes 0: more non-mated searches are needed to say which "
                f"system is better at this FPIR itself.")
    if cmp["verdict"] == "not significant":
        return (f"{where}: no significant difference, {rates} ({ci}, which includes 0; {mc}).")
    return (f"{where}: inconclusive, {rates}: the interval from people and McNemar's test disagree "
            f"({ci}; {mc}); McNemar treats a person's several searches as independent, the interval from people "
            "does not.")


def summary_sentences(result: dict) -> list[str]:
    """Plain-language findings, one per pair and operating point; each follows from the figures."""
    lines = []
    for p in result["pairs"]:
        a, b = p["a"], p["b"]
        ops = p["operating_points"]
        k = 0
        while k < len(ops):
            op = ops[k]
            why = op["fnir_rank1"].get("not_measurable")
            same = [op]  # operating points not measurable for the same reason: one sentence
            while why and k + len(same) < len(ops) and ops[k + len(same)]["fnir_rank1"].get("not_measurable") == why:
                same.append(ops[k + len(same)])
            targets = [f"{100 * o['target_fpir']:g}%" for o in same]  # percentages, as the rates beside them
            at = targets[0] if len(targets) == 1 else ", ".join(targets[:-1]) + " and " + targets[-1]
            where = f"At FPIR {at} (each system at its own threshold)"
            lines.append(_sentence("FNIR at rank 1", op["fnir_rank1"], a, b, where))
            k += len(same)
        lines.append(_sentence("the share of mated searches whose mate is not at rank 1",
                               p["rank1_misses_no_threshold"], a, b, "With no threshold"))
        dep = p.get("at_system_thresholds")
        if dep:
            where = "At each system's own threshold (as deployed, not at matched FPIR)"
            lines.append(_sentence("FNIR at rank 1", dep["fnir_rank1"], a, b, where))
            lines.append(_sentence("FPIR", dep["fpir"], a, b, where))
    return lines


def write_comparison(result: dict, out: str | Path, *, overwrite: bool = False, report: bool = True) -> Path:
    """``comparison.json``, ``summary.txt`` and ``report.html``, atomically."""
    from auditcore.serialize import to_json
    pages = ()
    if report:
        from faceaudit.report.compare_html import render
        pages = (("report.html", render),)
    return write_json_folder(out, "comparison.json", to_json(result), kind="compare", overwrite=overwrite,
                             summary=result["summary"], pages=pages)

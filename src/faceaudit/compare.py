"""Audits of two or more systems on the same searches, side by side (``faceaudit compare``).

Input: results folders written by ``faceaudit audit`` (``results.json`` and ``searches.parquet``).
They must describe the *same searches*: the same protocol description (``results.json``
``protocol``, apart from a protocol file's path), the same probe ``template_id`` values with the
same subjects and the same mated / non-mated flags in ``searches.parquet``. Anything else is
refused with one line. Searches are paired by ``template_id``.

Per pair of systems (A, B), on the paired searches:

* at each FPIR target x, each system at its own operating threshold (the one its audit reported
  for x, else faceaudit's rule on its searches): FNIR at rank 1 and FPIR, the paired difference
  A - B with a 95% percentile interval from a bootstrap over probe subjects (all of a person's
  searches resampled together) at those fixed thresholds, and McNemar's exact test on the
  discordant searches; for FNIR also a second interval that re-estimates both thresholds in
  every resample (the uncertainty of the operating point itself, large when few non-mated
  searches decide a low FPIR);
* the rank-1 identification rate with no threshold (same two statistics);
* curves: each system's DET (FNIR rank 1 against FPIR) and CMC, and the difference FNIR_A -
  FNIR_B at a grid of FPIR values with bootstrap intervals;
* per demographic group, when both audits ran the same ``--group-by``: FNIR and FPIR per group at
  each system's demographics threshold, their paired difference with a subject-bootstrap interval
  and McNemar's p; FMR / FNMR per group side by side as each audit reported them.

Verdicts (the plain-language summary) follow from the intervals: a difference is called
significant (at the audited thresholds) only when its fixed-threshold bootstrap interval excludes
0 *and* McNemar's p < 0.05; when the two disagree the sentence says so; a significant FNIR
difference is then checked against the re-estimated-threshold interval, and the sentence says
whether it holds there. Searches lost to failure to enrol are not in ``searches.parquet``,
so they are not in the paired data; each audit's count of them is reported beside the figures.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from faceaudit import __version__
from faceaudit.errors import InputError
from faceaudit.metrics import bootstrap as boot_
from faceaudit.metrics import identification as ident
from faceaudit.metrics import paired
from faceaudit.outdir import atomic_folder

DEFAULT_TARGETS = (0.1, 0.01, 0.001)
CURVE_FPIR = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
ALPHA = 0.05


@dataclass
class System:
    name: str
    path: str
    results: dict
    searches: pd.DataFrame


def load_system(path: str | Path, name: str | None = None) -> System:
    from faceaudit.audit import load_results
    path = Path(path)
    results = load_results(path)
    if "blackbox" in results:
        # a black-box audit knows some searches' outcomes only within what the lists showed;
        # pairing those needs the observed domains of both systems, which compare does not do yet
        raise InputError("this is a black-box audit (from candidate lists); faceaudit compare does not "
                         "compare black-box audits yet, only template audits", path)
    table_path = path / "searches.parquet"
    if not table_path.exists():
        raise InputError("no searches.parquet here; compare needs the per-search table an audit writes", path)
    try:
        searches = pd.read_parquet(table_path)
    except Exception as exc:  # noqa: BLE001 - any reader failure is one line
        raise InputError(f"cannot read searches.parquet ({exc})", path) from None
    need = {"template_id", "subject_id", "mated", "best_nonmate_score", "mate_score", "mate_rank"}
    missing = sorted(need - set(searches.columns))
    if missing:
        raise InputError(f"searches.parquet lacks column(s) {', '.join(missing)}", path)
    searches["template_id"] = searches["template_id"].astype(str)
    searches["subject_id"] = searches["subject_id"].astype(str)
    return System(name or path.resolve().name, str(path), results, searches)


def _protocol_key(results: dict) -> dict:
    return {k: v for k, v in results.get("protocol", {}).items() if k != "path"}


def check_same_searches(systems: Sequence[System]) -> None:
    """Raise :class:`InputError` (one line) unless every system ran the same searches."""
    a = systems[0]
    ta = a.searches.set_index("template_id")
    for s in systems[1:]:
        pa, pb = _protocol_key(a.results), _protocol_key(s.results)
        if pa != pb:
            diff = sorted(k for k in set(pa) | set(pb) if pa.get(k) != pb.get(k))
            k = diff[0]
            raise InputError(f"not the same protocol as {a.path}: {k} is {pb.get(k)!r} here and {pa.get(k)!r} there; "
                             "compare only audits of the same searches", s.path)
        tb = s.searches.set_index("template_id")
        if tb.index.has_duplicates or ta.index.has_duplicates or set(tb.index) != set(ta.index):
            only = sorted(set(tb.index) ^ set(ta.index))
            raise InputError(f"not the same searches as {a.path}: {len(only):,} probe template_id(s) are in one audit "
                             f"only, e.g. {only[0] if only else 'a duplicate'}; run both audits on the same protocol "
                             "(e.g. one --protocol file listing templates both systems enrolled)", s.path)
        tb = tb.loc[ta.index]
        bad = (tb["mated"].to_numpy() != ta["mated"].to_numpy()) | (tb["subject_id"].to_numpy() != ta["subject_id"].to_numpy())
        if bad.any():
            tid = ta.index[np.flatnonzero(bad)[0]]
            raise InputError(f"not the same searches as {a.path}: probe {tid} differs in its subject or mated flag "
                             f"({int(bad.sum()):,} probes differ)", s.path)


@dataclass
class _Arrays:
    best: np.ndarray       # non-mated searches: best non-mate score
    mate: np.ndarray       # mated searches: mate score
    rank: np.ndarray       # mated searches: mate rank


def _arrays(s: System, order: pd.Index, mated: np.ndarray) -> _Arrays:
    t = s.searches.set_index("template_id").loc[order]
    return _Arrays(t["best_nonmate_score"].to_numpy(np.float32)[~mated],
                   t["mate_score"].to_numpy(np.float32)[mated], t["mate_rank"].to_numpy(np.int64)[mated])


def _audit_threshold(results: dict, target: float) -> float | None:
    for op in results.get("identification", {}).get("operating_points", []):
        if np.isclose(op.get("target_fpir", -1), target, rtol=1e-12, atol=0) and op.get("threshold") is not None:
            t = op["threshold"]
            return float("-inf") if t == "-inf" else float(t)
    return None


class _Resampler:
    """Per-resample thresholds at FPIR targets and FNIR(1) there, for one system."""

    def __init__(self, arr: _Arrays, subj_nm: np.ndarray, subj_m: np.ndarray, weights: np.ndarray):
        self.w = weights
        u, inv = np.unique(arr.best, return_inverse=True)
        self.u, self.inv = u[::-1], (u.size - 1 - inv)
        self.subj_nm, self.subj_m = subj_nm, subj_m
        order = np.argsort(arr.mate, kind="stable")
        self.mate_sorted = arr.mate[order].astype(np.float64)
        self.subj_sorted = subj_m[order]
        self.out_of_rank = (arr.rank[order] > 1)

    def fnir_at(self, b: int, target: float) -> float:
        w = self.w[b]
        counts = np.bincount(self.inv, w[self.subj_nm], self.u.size)
        t = paired.weighted_threshold_at_fpir(self.u, counts, target)
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


def _compare_rate(wrong_a, wrong_b, subj, weights, n_boot, seed) -> dict:
    b, c = paired.discordant(wrong_a, wrong_b)
    p = paired.mcnemar_exact(b, c)
    d = paired.subject_bootstrap_difference(wrong_a, wrong_b, subj, n_boot=n_boot, seed=seed, weights=weights)
    return {"a": {"errors": int(np.sum(wrong_a)), "trials": int(np.size(wrong_a))},
            "b": {"errors": int(np.sum(wrong_b)), "trials": int(np.size(wrong_b))},
            "difference": d["difference"], "ci": d["ci"], "only_a_wrong": b, "only_b_wrong": c,
            "mcnemar_p": p, "verdict": _verdict(d, p)}


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

    per_system = []
    for s, arr in zip(systems, arrays):
        ops = []
        for target in fpir_targets:
            t = _audit_threshold(s.results, target)
            source = "audit"
            if t is None:
                t, source = ident.threshold_at_fpir(arr.best, target).threshold, "recomputed from searches"
            ops.append({"target_fpir": target, "threshold": t, "threshold_source": source,
                        "fpir": ident.fpir(arr.best, t).to_dict(),
                        "fnir": ident.fnir(arr.mate, arr.rank, t, rank=1).to_dict()})
        curve = ident.identification_curve(arr.best, arr.mate, arr.rank, rank=1)
        from faceaudit.audit import _thin
        keep = _thin(curve.thresholds.size)
        cmc = ident.cmc(arr.rank, top_k)
        fte = s.results.get("failure_to_enrol", {})
        per_system.append({
            "name": s.name, "path": s.path, "score": s.results.get("input", {}).get("score"),
            "model": s.results.get("input", {}).get("model"),
            "failed_searches_not_paired": int(fte.get("failed_mated_searches", 0)) + int(fte.get("failed_nonmated_searches", 0)),
            "operating_points": ops,
            "rank1_identification": ident.fnir(arr.mate, arr.rank, -np.inf, rank=1).to_dict(),
            "det": {"fpir": curve.fpir[keep].tolist(), "fnir_rank1": curve.fnir[keep].tolist()},
            "cmc": {"rank": list(range(1, top_k + 1)), "identification_rate": cmc.tolist()}})

    n_nm = int((~mated).sum())
    grid = [x for x in CURVE_FPIR if int(np.floor(x * n_nm)) >= 1]
    draws = []  # per system: FNIR(1) at each FPIR x in each resample, thresholds re-estimated
    for arr in arrays:
        rs = _Resampler(arr, subj_nm, subj_m, weights)
        draws.append({x: np.array([rs.fnir_at(b, x) for b in range(n_boot)]) for x in set(grid) | set(fpir_targets)})
    pairs = []
    for i, j in combinations(range(len(systems)), 2):
        A, B = arrays[i], arrays[j]
        points = []
        for k, target in enumerate(fpir_targets):
            ta, tb = per_system[i]["operating_points"][k]["threshold"], per_system[j]["operating_points"][k]["threshold"]
            miss_a = (A.mate < ta) | (A.rank > 1)
            miss_b = (B.mate < tb) | (B.rank > 1)
            fnir_cmp = _compare_rate(miss_a, miss_b, subj_m, weights, n_boot, seed)
            fnir_cmp["ci_method"] = "subject bootstrap at the fixed thresholds"
            # a second interval re-estimates both thresholds in every resample: is the system better
            # at FPIR x itself, allowing for the uncertainty of each operating threshold?
            lo, hi, _ = boot_.percentile_interval((draws[i][target] - draws[j][target])[:, None], confidence)
            fnir_cmp["ci_threshold_reestimated"] = [None if np.isnan(lo[0]) else float(lo[0]),
                                                    None if np.isnan(hi[0]) else float(hi[0])]
            fp_cmp = _compare_rate(A.best >= ta, B.best >= tb, subj_nm, weights, n_boot, seed)
            fp_cmp["ci_method"] = "subject bootstrap at the fixed thresholds"
            points.append({"target_fpir": target, "threshold_a": ta, "threshold_b": tb,
                           "fnir_rank1": fnir_cmp, "fpir": fp_cmp})
        rank1 = _compare_rate(A.rank > 1, B.rank > 1, subj_m, weights, n_boot, seed)
        diff_curve = []
        for x in grid:
            ta = ident.threshold_at_fpir(A.best, x).threshold
            tb = ident.threshold_at_fpir(B.best, x).threshold
            point = ident.fnir(A.mate, A.rank, ta).value - ident.fnir(B.mate, B.rank, tb).value
            lo, hi, _ = boot_.percentile_interval((draws[i][x] - draws[j][x])[:, None], confidence)
            diff_curve.append({"fpir": x, "difference": point, "ci": [float(lo[0]), float(hi[0])]})
        cmc_diff = []
        for r in sorted({1, 5, 10, top_k} & set(range(1, top_k + 1))):
            d = paired.subject_bootstrap_difference(A.rank > r, B.rank > r, subj_m, weights=weights)
            cmc_diff.append({"rank": r, "miss_difference": d["difference"], "ci": d["ci"]})
        pairs.append({"a": systems[i].name, "b": systems[j].name, "operating_points": points,
                      "rank1_misses_no_threshold": rank1, "fnir_difference_curve": diff_curve,
                      "cmc_miss_difference": cmc_diff,
                      "demographics": _demographics(systems[i], systems[j], subj, weights, n_boot, seed)})
    out = {
        "faceaudit_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "systems": per_system,
        "protocol": _protocol_key(systems[0].results),
        "searches": {"mated": int(mated.sum()), "nonmated": n_nm, "probe_subjects": int(subj_names.size)},
        "bootstrap": {"n_boot": n_boot, "seed": seed, "confidence": confidence,
                      "unit": "probe subjects resampled with replacement; gallery fixed; percentile intervals"},
        "conventions": {
            "difference": "A - B: positive means A makes more errors",
            "mcnemar": "exact two-sided McNemar test on discordant searches at fixed thresholds "
                       "(treats searches as independent)",
            "verdict": f"'significant' when the fixed-threshold bootstrap interval excludes 0 and McNemar p < {ALPHA}; "
                       "'inconclusive' when the two disagree; a significant FNIR difference is also checked "
                       "against the interval with re-estimated thresholds",
            "operating_point": "each system at its own threshold for the FPIR target (lowest threshold with "
                               "FPIR count <= floor(x * n)), as its audit reported it",
            "failure_to_enrol": "searches lost to failure to enrol are not in searches.parquet and not paired"},
        "pairs": pairs,
    }
    out["summary"] = summary_sentences(out)
    return out


def _demographics(a: System, b: System, subj: np.ndarray, weights, n_boot, seed) -> list[dict]:
    da, db = a.results.get("demographics"), b.results.get("demographics")
    if not da or not db:
        return []
    from faceaudit.demographics import group_labels
    specs = [x["spec"] for x in da["analyses"] if x["spec"] in {y["spec"] for y in db["analyses"]}]
    ta, tb = float(da["threshold"]), float(db["threshold"])
    sa, sb = a.searches, b.searches  # both in the same search order
    mated = sa["mated"].to_numpy(bool)
    out = []
    for spec in specs:
        labels = np.asarray(group_labels(a.searches, spec), dtype=str)
        groups = {}
        for g in np.unique(labels):
            in_g = labels == g
            entry = {}
            for measure, sel, wrong in (
                    ("fnir", mated, lambda t, s: (s["mate_score"].to_numpy() < t) | (s["mate_rank"].to_numpy() > 1)),
                    ("fpir", ~mated, lambda t, s: s["best_nonmate_score"].to_numpy() >= t)):
                keep = in_g & sel
                if not keep.any():
                    continue
                entry[measure] = _compare_rate(wrong(np.float32(ta), sa)[keep], wrong(np.float32(tb), sb)[keep],
                                               subj[keep], weights, n_boot, seed)
            side = {}
            for m in ("fmr", "fnmr"):
                ra = _group_rate(da, spec, m, g)
                rb = _group_rate(db, spec, m, g)
                if ra or rb:
                    side[m] = {"a": ra, "b": rb}
            groups[str(g)] = {"paired": entry, "as_audited": side}
        out.append({"spec": spec, "threshold_a": ta, "threshold_b": tb, "groups": groups,
                    "caveats": {**da.get("caveats", {}), **db.get("caveats", {})}})
    return out


def _group_rate(demo: dict, spec: str, measure: str, group: str) -> dict | None:
    for an in demo["analyses"]:
        if an["spec"] == spec:
            e = an["rates"].get(measure, {}).get(group)
            if e:
                return {k: e[k] for k in ("value", "ci", "errors", "trials")}
    return None


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _pts(x: float) -> str:
    return f"{100 * abs(x):.2f} points"


def _excludes_zero(ci) -> bool:
    return ci[0] is not None and ci[1] is not None and (ci[0] > 0 or ci[1] < 0)


def _sentence(what: str, cmp: dict, a: str, b: str, where: str) -> str:
    va = cmp["a"]["errors"] / cmp["a"]["trials"] if cmp["a"]["trials"] else None
    vb = cmp["b"]["errors"] / cmp["b"]["trials"] if cmp["b"]["trials"] else None
    if va is None:
        return f"{where}: {what} is undefined (no trials)."
    lo, hi = cmp["ci"]
    ci = (f"95% CI of {a} - {b}: {100 * lo:+.2f} to {100 * hi:+.2f} points" if lo is not None else "no interval")
    mc = (f"McNemar exact p = {cmp['mcnemar_p']:.2g} ({cmp['only_a_wrong']:,} searches wrong only for {a}, "
          f"{cmp['only_b_wrong']:,} only for {b})")
    rates = f"{what} {_pct(va)} for {a} and {_pct(vb)} for {b}"
    d = cmp["difference"]
    if cmp["verdict"] == "significant":
        better = b if d > 0 else a
        re_ci = cmp.get("ci_threshold_reestimated")
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
    return (f"{where}: inconclusive, {rates}: the subject-bootstrap interval and McNemar's test disagree "
            f"({ci}; {mc}); McNemar treats a person's several searches as independent, the bootstrap does not.")


def summary_sentences(result: dict) -> list[str]:
    """Plain-language findings, one per pair and operating point; each follows from the figures."""
    lines = []
    for p in result["pairs"]:
        a, b = p["a"], p["b"]
        for op in p["operating_points"]:
            where = f"At FPIR {op['target_fpir']:g} (each system at its own threshold)"
            lines.append(_sentence("FNIR at rank 1", op["fnir_rank1"], a, b, where))
        lines.append(_sentence("the share of mated searches whose mate is not at rank 1",
                               p["rank1_misses_no_threshold"], a, b, "With no threshold"))
    return lines


def write_comparison(result: dict, out: str | Path, *, overwrite: bool = False, report: bool = True) -> Path:
    """``comparison.json``, ``summary.txt`` and ``report.html``, atomically."""
    from faceaudit.audit import to_json
    with atomic_folder(out, overwrite=overwrite, kind="compare") as tmp:
        data = to_json(result)
        with open(tmp / "comparison.json", "w") as fh:
            json.dump(data, fh, indent=1, allow_nan=False)
        (tmp / "summary.txt").write_text("\n".join(result["summary"]) + "\n")
        if report:
            from faceaudit.report.compare_html import write_compare_report
            write_compare_report(data, tmp / "report.html")
    return Path(out)

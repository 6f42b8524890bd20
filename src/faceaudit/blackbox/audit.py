"""The black-box audit: candidate lists -> observed counts -> the same metrics -> a results folder.

:func:`audit_lists` computes every figure that the lists determine with the metric functions of
:mod:`faceaudit.metrics.identification` (the same ones the template audit uses, on the same
per-search arrays) and reports every other figure as not measurable, with the reason. The results
dict has the template audit's layout (``identification``, ``verification``, ...), so the report,
``faceaudit report`` and tools reading results.json work unchanged; ``results["blackbox"]`` says
what was observed (list lengths, thresholds, rank-only, measurable domains).
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from auditcore.errors import InputError
from auditcore.intervals import rate
from auditcore.outdir import atomic_folder
from auditcore.provenance import SCHEMA_VERSION, collect, inputs_from
from auditcore.serialize import thin, to_json
from auditcore.validation import rate_targets
from faceaudit import __version__
from faceaudit.data.candidates import CandidateLists, write_lists
from faceaudit.data.sizes import small_audit_warning
from faceaudit.engine.observed import ObservedSearches, observe
from faceaudit.metrics import identification as ident
from faceaudit.metrics.conventions import CONVENTIONS, DEFAULT_FPIR_TARGETS, ranks_for

NOT_MEASURABLE_FROM_LISTS = {
    "verification": "verification FMR/FNMR/DET need every impostor comparison score; candidate lists show only "
                    "the top of each search, so the impostor distribution below it is not observed",
    "score_distributions": "only listed scores are observed: the genuine distribution is shown for listed mates, "
                           "the impostor distribution is not observed",
}

BLACKBOX_CONVENTIONS = {
    **CONVENTIONS,
    "blackbox": "figures read from the system's candidate lists: a list of length L cut at the system's "
                "threshold t shows FPIR(T) only for T >= t, FNIR(R, T) only where each missing mate is known to "
                "rank worse than R or score below T (R <= L or T >= t), CMC to the depth every list shows; "
                "anything else is reported as not measurable, never estimated",
    "system_threshold": "'at the system's threshold': a non-mated search is a false positive when its list is not "
                        "empty; a mated search is a miss at rank R when its mate is not listed within rank R",
    "subject_lists": "a list of gallery templates is read as a list of subjects: a subject's score is its best "
                     "listed template's score, its position its first appearance",
    "list_trust": "the audit trusts that the system returned, in rank order, every candidate at or above its "
                  "threshold up to the list length; a mate at the very end of a full list may have unlisted "
                  "non-mates tied with it, so its true rank may be worse (ties go against the mate)",
}


@dataclass
class BlackboxAudit:
    """Observed counts, the lists they came from, and the JSON-ready results."""

    lists: CandidateLists
    manifest: pd.DataFrame
    search: ObservedSearches
    results: dict
    extra_files: dict = field(default_factory=dict)


def _not_measurable(reason: str, trials: int | None = None) -> dict:
    return {"value": None, "errors": None, "trials": trials, "ci_low": None, "ci_high": None,
            "not_measurable": reason}


def _cut(domain: dict) -> str:
    return "unknown" if domain["from"] is None else f"{domain['from']:.6g}"


def _system_point(obs: ObservedSearches, ranks: list[int]) -> dict | None:
    """FPIR and FNIR at the system's own threshold (wherever the lists were cut by one)."""
    if not obs.threshold_applied.all():
        return None
    nm, m = ~obs.is_mated, obs.is_mated
    fp = rate(int(np.count_nonzero(obs.n_returned[nm] > 0)), int(nm.sum()))
    fnir = {}
    for r in ranks:
        rows = np.flatnonzero(m & ~obs.mate_listed)
        full = obs.n_returned[rows] >= obs.list_length[rows]
        unknown = rows[full & (obs.n_listed[rows] < r)]
        if unknown.size:
            fnir[str(r)] = _not_measurable(f"{unknown.size} mated search(es) returned full lists of fewer than {r} "
                                           f"people without the mate (e.g. search {obs.search_ids[unknown[0]]})",
                                           int(m.sum()))
            continue
        hit = m & obs.mate_listed & (obs.mate_rank <= r)
        fnir[str(r)] = rate(int(m.sum() - hit.sum()), int(m.sum())).to_dict()
    known = np.unique(obs.threshold[np.isfinite(obs.threshold)])
    return {"system_threshold": True,
            "threshold": float(known[0]) if known.size == 1 else None,
            "threshold_known": bool(known.size == 1 and np.isfinite(obs.threshold).all()),
            "fpir": fp.to_dict(), "fnir": fnir}


def _decision_point(obs: ObservedSearches) -> dict | None:
    """FPIR and FNIR by the system's own match decisions (where it gave them)."""
    if not obs.has_decisions:
        return None
    nm, m = ~obs.is_mated, obs.is_mated
    return {"system_decision": True,
            "fpir": rate(int(np.count_nonzero(obs.decided_any[nm])), int(nm.sum())).to_dict(),
            "fnir": rate(int(np.count_nonzero(~obs.mate_decided[m])), int(m.sum())).to_dict(),
            "note": "a non-mated search is a false positive when the system declared any candidate a match; a mated "
                    "search is a miss when it did not declare the mate a match; a candidate not returned counts as "
                    "not declared"}


def identification_from_lists(obs: ObservedSearches, *, fpir_targets: Sequence[float] = DEFAULT_FPIR_TARGETS,
                              thresholds: Sequence[float] = ()) -> dict:
    """The ``identification`` results block, from observed counts (see the module docstring)."""
    nm, m = ~obs.is_mated, obs.is_mated
    best = obs.best_nonmate[nm]
    mate_score, mate_rank = obs.mate_score[m], obs.mate_rank[m]
    n_nm, n_m = int(nm.sum()), int(m.sum())
    depth = int(obs.list_length.max())
    ranks = ranks_for(depth)

    def fpir_at(t: float) -> dict:
        why = obs.fpir_problem(t)
        return _not_measurable(why, n_nm) if why else ident.fpir(best, t).to_dict()

    def fnir_at(t: float, r: int) -> dict:
        why = obs.fnir_problem(t, r)
        return _not_measurable(why, n_m) if why else ident.fnir(mate_score, mate_rank, t, rank=r).to_dict()

    def point(t: float) -> dict:
        return {"threshold": t, "fpir": fpir_at(t), "fnir": {str(r): fnir_at(t, r) for r in ranks}}

    operating = []
    for target in fpir_targets:
        entry = {"target_fpir": target}
        if obs.rank_only:
            entry.update(threshold=None, not_measurable="rank-only lists (no scores): no threshold can be set")
            entry["allowed_errors"] = int(np.floor(target * n_nm))
        else:
            op = ident.float32_threshold_at_fpir(best, target)
            entry["allowed_errors"] = op.allowed_errors
            why = None if op.threshold is None else obs.fpir_problem(op.threshold)
            if op.threshold is None:
                entry.update(threshold=None)
            elif why:
                dom = obs.fpir_domain()
                k = int(np.count_nonzero(np.isfinite(best)))
                entry.update(threshold=None, not_measurable=(
                    f"the lowest threshold with FPIR <= {target:g} lies below what the lists show: only {k} of "
                    f"{n_nm} non-mated searches returned anyone at the system's cut "
                    f"({_cut(dom)}), within the "
                    f"{op.allowed_errors} allowed, so FPIR({target:g}) is reached at or below that cut"))
            else:
                entry.update(point(op.threshold))
        operating.append(entry)
    cmc_depth = obs.measurable_ranks(-np.inf)
    cmc = ident.cmc(mate_rank, depth)
    cmc_values = [None if (r > cmc_depth or np.isnan(v)) else float(v) for r, v in zip(range(1, depth + 1), cmc)]
    rank1 = fnir_at(-np.inf, 1)
    fpir_dom = obs.fpir_domain()
    if obs.rank_only:
        curve = {"threshold": [], "fpir": [], "fnir_rank1": [],
                 "note": "rank-only lists: no threshold curve"}
    else:
        c = ident.identification_curve(best, mate_score, mate_rank, rank=1)
        ok = np.array([obs.fpir_problem(t) is None for t in c.thresholds], bool) if c.thresholds.size else np.zeros(0, bool)
        # FNIR(1, T) too must be measurable along the curve
        if ok.any():
            ok &= np.array([obs.fnir_problem(t, 1) is None if o else False for t, o in zip(c.thresholds, ok)], bool)
        idx = np.flatnonzero(ok)
        keep = idx[thin(idx.size)]
        curve = {"threshold": c.thresholds[keep].tolist(), "fpir": c.fpir[keep].tolist(),
                 "fnir_rank1": c.fnir[keep].tolist(),
                 "note": "only thresholds where the lists determine both rates; thinned to ~600"}
    out = {
        "n_nonmated_searches": n_nm, "n_mated_searches": n_m, "ranks": ranks,
        "operating_points": operating,
        "at_thresholds": [point(float(t)) for t in thresholds],
        "rank1_identification_rate": {"rate": None if rank1.get("value") is None else 1 - rank1["value"],
                                      "misses": rank1},
        "cmc": {"rank": list(range(1, depth + 1)), "identification_rate": cmc_values,
                "measurable_to_rank": cmc_depth,
                "misses": [fnir_at(-np.inf, r) for r in (1, depth)]},
        "curve": curve,
        "fpir_measurable_from": fpir_dom,
    }
    sys_point = _system_point(obs, ranks)
    if sys_point:
        out["at_system_threshold"] = sys_point
    decision = _decision_point(obs)
    if decision:
        out["at_system_decision"] = decision
    return out


def _distributions(obs: ObservedSearches, n_bins: int = 80) -> dict:
    gen = obs.mate_score[obs.is_mated & obs.mate_listed]
    best = obs.best_nonmate[~obs.is_mated]
    best = best[np.isfinite(best)]
    values = np.concatenate([gen[np.isfinite(gen)], best])
    if values.size == 0:
        return {"edges": [0.0, 1.0], "genuine": [0], "impostor": [0], "best_nonmate": [0],
                "note": NOT_MEASURABLE_FROM_LISTS["score_distributions"]}
    lo, hi = float(values.min()), float(values.max())
    hi = hi if hi > lo else lo + 1e-6
    grid = np.linspace(lo, hi, n_bins + 1)
    return {"edges": grid.tolist(), "genuine": np.histogram(gen, bins=grid)[0].tolist(),
            "impostor": [0] * n_bins, "best_nonmate": np.histogram(best, bins=grid)[0].tolist(),
            "note": NOT_MEASURABLE_FROM_LISTS["score_distributions"]}


def _observed_summary(obs: ObservedSearches, lists: CandidateLists) -> dict:
    s = lists.searches
    thr = obs.threshold
    return {
        "systems": [{"system": name,
                     "versions": sorted(set(s.loc[s["system"] == name, "system_version"].dropna().astype(str))),
                     "score_scale": (s.loc[s["system"] == name, "score_scale"].dropna().astype(str).unique().tolist()
                                     or [None])[0]} for name in obs.systems],
        "n_searches": obs.n_probes,
        "list_length": sorted(set(obs.list_length.tolist())),
        "threshold": sorted(set(thr[np.isfinite(thr)].tolist())),
        "threshold_applied": bool(obs.threshold_applied.any()),
        "threshold_unknown": bool((obs.threshold_applied & ~np.isfinite(thr)).any()),
        "rank_only": obs.rank_only,
        "full_lists": int(np.count_nonzero(obs.n_returned >= obs.list_length)),
        "empty_lists": int(np.count_nonzero(obs.n_returned == 0)),
        "candidates": int(obs.n_returned.sum()),
        "mates_listed": int(np.count_nonzero(obs.mate_listed)),
        "fpir_measurable_from": obs.fpir_domain(),
        "cmc_measurable_to_rank": obs.measurable_ranks(-np.inf),
        "not_measurable": NOT_MEASURABLE_FROM_LISTS,
    }


def audit_lists(lists: CandidateLists, manifest: pd.DataFrame, gallery_ids, *,
                fpir_targets: Sequence[float] = DEFAULT_FPIR_TARGETS, thresholds: Sequence[float] = (),
                metadata: dict | None = None, system_name: str | None = None, system_version: str | None = None,
                provenance: dict | None = None) -> BlackboxAudit:
    """Audit a system from its candidate lists. ``gallery_ids``: the enrolled template ids.

    ``system_name``/``system_version``: the system under test as the user names it (recorded in
    ``results["provenance"]["system"]``). The versions the lists record (``system_version``
    column, e.g. Rekognition's ``FaceModelVersion`` read by the adapter) must be one per system
    within an audit, and agree with ``system_version`` when both are given
    (:func:`check_system_version`); when only the lists record one, it is the one recorded.
    ``provenance``: the block the command line builds; a library call gets one with ``command``
    None and the lists' file (when read from one) as input."""
    rate_targets("FPIR target", fpir_targets)
    system_version = check_system_version(lists, system_version)
    obs = observe(lists, manifest, gallery_ids)
    gallery_ids = np.asarray(list(gallery_ids), dtype=str)
    results = {
        "faceaudit_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "conventions": BLACKBOX_CONVENTIONS,
        "input": {"source": lists.source, "kind": "black-box candidate lists", "score": obs.score,
                  "top_k": int(obs.list_length.max()), **(metadata or {})},
        "protocol": {"kind": "candidate lists", "n_gallery_templates": int(gallery_ids.size),
                     "gallery_size": obs.gallery_size, "n_mated_probes": int(obs.is_mated.sum()),
                     "n_nonmated_probes": int((~obs.is_mated).sum()), "n_comparisons": None},
        "failure_to_enrol": {"failed": 0, "attempts": obs.n_probes, "rate": 0.0, "failed_mated_searches": 0,
                             "failed_nonmated_searches": 0, "counted_as_misses": True},
        "identification": identification_from_lists(obs, fpir_targets=fpir_targets, thresholds=thresholds),
        "verification": {"not_measurable": NOT_MEASURABLE_FROM_LISTS["verification"]},
        "distributions": _distributions(obs),
        "blackbox": _observed_summary(obs, lists),
    }
    ident_ = results["identification"]
    small = small_audit_warning(int(obs.gallery_size), int(ident_.get("n_mated_searches", obs.is_mated.sum())),
                                int(ident_.get("n_nonmated_searches", (~obs.is_mated).sum())))
    results["warnings"] = [] if small is None else [small]
    system = {"name": system_name, "version": system_version}
    if provenance is None:
        source = Path(str(lists.source))
        inputs = inputs_from([("candidate lists", source if source.is_file() else None)])
        provenance = collect(None, {"fpir_targets": list(fpir_targets), "thresholds": list(thresholds),
                                    "system_name": system_name, "system_version": system_version},
                             inputs, system=system)
    else:
        provenance = {**provenance, "system": system}
    results["provenance"] = provenance
    return BlackboxAudit(lists, manifest, obs, results)


def _where(lists: CandidateLists) -> str | None:
    return None if lists.source in (None, "in-memory") else lists.source


def check_system_version(lists: CandidateLists, given: str | None) -> str | None:
    """The system's version for this audit: the one the lists record (one per system; several
    versions of one system in one audit are refused, naming them), checked against ``given``
    (``--system-version``) when both exist; ``given`` when the lists record none."""
    s = lists.searches
    if "system_version" not in s.columns:
        return given
    seen: set[str] = set()
    for name, versions in s.groupby(s["system"].astype(str), sort=True)["system_version"]:
        found = sorted(set(versions.dropna().astype(str)) - {""})
        if len(found) > 1:
            shown = ", ".join(found[:5]) + (f" and {len(found) - 5:,} more" if len(found) > 5 else "")
            raise InputError(f"the candidate lists of {name} record {len(found):,} system versions ({shown}); "
                             "an audit covers one version: split the lists by system_version",
                             _where(lists))
        seen.update(found)
    if given is not None and seen and seen != {str(given)}:
        raise InputError(f"--system-version {given} disagrees with the version the candidate lists record "
                         f"({', '.join(sorted(seen))})", _where(lists))
    if given is None and len(seen) == 1:
        return next(iter(seen))
    return given


def _searches_table(audit: BlackboxAudit) -> pd.DataFrame:
    obs, man = audit.search, audit.manifest
    table = man.iloc[obs.probe_rows].reset_index(drop=True).copy()
    table.insert(0, "search_id", obs.search_ids)
    table["mated"] = obs.is_mated
    table["best_nonmate_score"] = np.where(np.isfinite(obs.best_nonmate), obs.best_nonmate, np.nan)
    table["mate_listed"] = obs.mate_listed
    table["mate_score"] = np.where(obs.mate_listed, obs.mate_score, np.nan)
    table["mate_rank"] = pd.array(np.where(obs.mate_listed, obs.mate_rank, 0), dtype="Int64")
    table.loc[~obs.mate_listed, "mate_rank"] = pd.NA
    table["list_length"] = obs.list_length
    table["returned"] = obs.n_returned
    table["unseen_bound"] = obs.unseen_bound
    table["unseen_strict"] = obs.unseen_strict
    return table


def _candidates_table(audit: BlackboxAudit) -> pd.DataFrame:
    obs = audit.search
    n, k = obs.candidates_subject.shape
    subj = obs.candidates_subject.ravel()
    valid = subj >= 0
    probe = np.repeat(np.arange(n), k)[valid]
    cand = obs.gallery_subjects[subj[valid]]
    return pd.DataFrame({
        "search_id": obs.search_ids[probe], "probe_template_id": obs.probe_ids[probe],
        "probe_subject_id": obs.probe_subjects[probe].astype(str),
        "rank": np.tile(np.arange(1, k + 1), n)[valid], "candidate_subject_id": cand,
        "score": obs.candidates_score.ravel()[valid], "is_mate": cand == obs.probe_subjects[probe]})


def write_blackbox_results(audit: BlackboxAudit, out_dir: str | Path, *, overwrite: bool = False,
                           report: bool = True) -> Path:
    """Write the results folder atomically: results.json, searches.parquet, candidates.parquet
    (subject lists), lists.parquet (the imported lists in the schema), report.html."""
    out = Path(out_dir)
    with atomic_folder(out, overwrite=overwrite, kind="blackbox-audit") as tmp:
        with open(tmp / "results.json", "w") as fh:
            json.dump(to_json(audit.results), fh, indent=1, allow_nan=False)
        _searches_table(audit).to_parquet(tmp / "searches.parquet", index=False)
        _candidates_table(audit).to_parquet(tmp / "candidates.parquet", index=False)
        write_lists(audit.lists, tmp / "lists.parquet")
        for name, writer in audit.extra_files.items():
            writer(tmp / name)
        if report:
            from faceaudit.report.html import write_report
            write_report(to_json(audit.results), tmp / "report.html")
    return out

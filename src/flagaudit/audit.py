"""Run an audit (suites x system -> per-case table + results dict) and write the results folder.

The folder (written atomically by :func:`auditcore.outdir.atomic_folder`): ``results.json``,
``cases.parquet`` (one row per case: suite, language, functional test, target, template, role,
text, flagged, score) and ``report.html``.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from auditcore.errors import InputError
from auditcore.outdir import atomic_folder
from auditcore.provenance import SCHEMA_VERSION
from auditcore.serialize import to_json
from flagaudit import __version__
from flagaudit import bias as fb
from flagaudit import counterfactual as fcf
from flagaudit import metrics as fm
from flagaudit import network as net
from flagaudit import volume as vol
from flagaudit.suites import Provenance, load_suites
from flagaudit.systems import Flags

CONVENTIONS = {
    "false flag": "a benign case (gold label non-hateful / benign by construction) that the system flags",
    "miss": "a threat case (HateCheck/MHC threat_dir_h, threat_norm_h) that the system does not flag",
    "flag": "a score >= the threshold is a flag",
    "threshold at a target false-flag rate x": "the lowest threshold whose false-flag count is at most floor(x * n_benign)",
    "intervals": fm.METHODS["intervals"],
    "undefined": "a rate with no trials is undefined (null), never 0",
    "differentials": fm.METHODS["differentials"],  # stated once, where the figures are made
}


@dataclass
class FlagAudit:
    cases: pd.DataFrame
    results: dict
    provenance: list = field(default_factory=list)


def run_audit(cases: pd.DataFrame, flags: Flags, provenance: list[Provenance], *, system: str,
              posts_per_day: float = vol.DEFAULT_POSTS_PER_DAY, base_rates=vol.DEFAULT_BASE_RATES,
              graph_file=None, mean_degree=None, n_boot: int = 2000, seed: int = 0, min_trials: int = 20,
              graph_nodes: int | None = None, degrees_file=None, graph_model: str = "communities",
              degree_exponent: float = net.MODEL_DEFAULTS["exponent"],
              community_size: int = net.MODEL_DEFAULTS["community_size"], mixing: float = net.MODEL_DEFAULTS["mixing"],
              posts_per_account: float = net.MODEL_DEFAULTS["posts_per_account"],
              provenance_block: dict | None = None) -> FlagAudit:
    """Every figure of one audit from the suite cases and the system's flags.

    ``provenance_block``: what was audited and how (:func:`auditcore.provenance.collect`), written
    as ``results["provenance"]`` (``schema_version`` 2)."""
    n = len(cases)
    flagged = np.asarray(flags.flagged, dtype=bool)
    if flagged.shape != (n,):
        raise InputError(f"system returned {flagged.shape} flags for {n} cases")
    if flags.score is not None and np.asarray(flags.score).shape != (n,):
        raise InputError(f"system returned {np.asarray(flags.score).shape} scores for {n} cases")
    posts_per_day = vol.check_posts_per_day(posts_per_day)
    base_rates = vol.check_base_rates(base_rates)
    bs = fm.Bootstrap.over(cases["cluster"].to_numpy(), n_boot=n_boot, seed=seed)
    rates = fm.flag_metrics(cases, flagged, bs=bs, min_trials=min_trials)
    results = {
        "schema_version": SCHEMA_VERSION,
        "flagaudit_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "system": {"kind": system, "description": flags.description,
                   "threshold": flags.threshold, "has_scores": flags.score is not None},
        "suites": [asdict(p) for p in provenance],
        "counts": {"cases": n, "benign": int((cases["role"] == "benign").sum()),
                   "threat": int((cases["role"] == "threat").sum()),
                   "hateful_other": int((cases["role"] == "hateful").sum()),
                   "templates": int(cases["cluster"].nunique()),
                   "languages": sorted(cases["language"].unique().tolist())},
        "bootstrap": {"n_boot": n_boot, "seed": seed, "unit": "template", "min_trials": min_trials},
        "rates": rates,
        "conventions": CONVENTIONS,
    }
    if flags.score is not None:
        results["scores"] = fm.score_metrics(cases, flags.score, bs=bs)
        results["score_distributions"] = fb.score_distributions(cases, flags.score)
    score = flags.score if flags.score is not None else flagged.astype(np.float64)
    results["bias"] = fb.bias_metrics(cases, score, bs=bs,
                                      binary_source=None if flags.score is not None else "the flag (no score given)")
    results["counterfactual"] = fcf.invariance(cases, flagged, flags.score, n_boot=n_boot, seed=seed)
    table = vol.volume_table(rates["false_flag"]["overall"], rates["miss"]["overall"], posts_per_day, base_rates)
    table["sentences"] = vol.sentences(table)
    table["headline"] = vol.headline(table)
    results["volume"] = table
    role = cases["role"].to_numpy()
    per_suite = {}
    for suite in sorted(cases["suite"].unique()):
        in_s = (cases["suite"] == suite).to_numpy()
        ff = fm.rate_table(cases, flagged, (role == "benign") & in_s, None, bs)
        miss = fm.rate_table(cases, ~flagged, (role == "threat") & in_s, None, bs)
        t = vol.volume_table(ff, miss, posts_per_day, base_rates)
        t["sentences"] = vol.sentences(t)
        t["headline"] = vol.headline(t)
        per_suite[str(suite)] = {"false_flag": ff, "miss": miss, "volume": t}
    results["per_suite"] = per_suite
    reach = net.network_section(graph_file, mean_degree, n_nodes=graph_nodes, seed=seed, degrees_file=degrees_file,
                                model=graph_model, posts_per_day=posts_per_day, exponent=degree_exponent,
                                community_size=community_size, mixing=mixing, posts_per_account=posts_per_account)
    if reach is not None:
        adj = reach.pop("_adjacency")
        reach["per_day"] = [{"base_rate": r["base_rate"],
                             **net.per_day(reach, r["false_flags_low"], r["false_flags"], r["false_flags_high"]),
                             "distinct": net.distinct_per_day(adj, r["false_flags_low"], r["false_flags"],
                                                              r["false_flags_high"], seed=seed)}
                            for r in table["rows"] if r["false_flags"] is not None]
        reach["headline_base_rate"] = table["headline"]["base_rate"] if table.get("headline") else None
        results["network"] = reach
    results["warnings"] = [{"code": "unreviewed_suite", "text": p.warning} for p in provenance if getattr(p, "warning", "")]
    if provenance_block is not None:
        results["provenance"] = provenance_block
    per_case = cases.copy()
    per_case["flagged"] = flagged
    per_case["score"] = np.nan if flags.score is None else np.asarray(flags.score, dtype=float)
    return FlagAudit(per_case, results, provenance)


def write_results(audit: FlagAudit, out: str | Path, *, overwrite: bool = False, extra: dict | None = None) -> Path:
    """Write the results folder; ``extra``: more files (name -> bytes), e.g. an HTTP run's request log."""
    from flagaudit.report import render_report

    out = Path(out)
    results = to_json(audit.results)
    html = render_report(results)  # before anything is written: a failure leaves nothing behind
    with atomic_folder(out, overwrite=overwrite, kind="flagaudit") as tmp:
        (tmp / "results.json").write_text(json.dumps(results, indent=1, ensure_ascii=False, allow_nan=False),
                                          encoding="utf-8")
        audit.cases.to_parquet(tmp / "cases.parquet", index=False)
        (tmp / "report.html").write_text(html, encoding="utf-8")
        for name, data in (extra or {}).items():
            (tmp / name).write_bytes(data)
    return out


def audit_suites(suites, flagger_factory, *, data=None, **kwargs) -> FlagAudit:
    """Load ``suites``, run the system made by ``flagger_factory(cases)`` on them, compute."""
    cases, prov = load_suites(suites, data)
    flags, kind = flagger_factory(cases)
    return run_audit(cases, flags, prov, system=kind, **kwargs)

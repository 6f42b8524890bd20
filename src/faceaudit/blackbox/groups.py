"""Demographic differentials from candidate lists: per-group FPIR and FNIR (rank 1) at one threshold.

The same computation as :mod:`faceaudit.analyses.demographics` (its helpers: per-group rates with
intervals from people, claims simultaneous over every pair and measure of the section, findings)
on the observed per-search counts. FMR, FNMR, the
cross-group FMR matrix and per-group thresholds need every impostor and genuine comparison and
are reported as not measurable. The threshold is the lowest with FPIR <= ``operating_fpir`` over
everyone when the lists show it, else the system's own threshold (its decision: a list that is
not empty), and ``threshold_rule`` says which.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from auditcore import bootstrap as boot_
from auditcore import differentials as diff
from auditcore.errors import InputError
from faceaudit.analyses import demographics as demo_

NOT_FROM_LISTS = "not measurable from candidate lists (needs every impostor and genuine comparison)"


def _per_probe(obs, threshold):
    """(false positive, miss) per search at ``threshold`` (None: the system's own threshold)."""
    mated = obs.is_mated
    if threshold is None:
        fp = ~mated & (obs.n_returned > 0)
        fn = mated & ~(obs.mate_listed & (obs.mate_rank <= 1))
    else:
        t = float(threshold)
        fp = ~mated & (obs.best_nonmate >= t)
        fn = mated & ((obs.mate_score < t) | (obs.mate_rank > 1))
    return fp.astype(float), fn.astype(float)


def add_demographics_from_lists(bb, group_by: Sequence[str], *, min_group_size: int = 30,
                                operating_fpir: float = 0.01, n_boot: int = 1000, seed: int = 0,
                                confidence: float = 0.95, caveats: dict | None = None) -> dict:
    """Store ``results["demographics_from_lists"]`` (see the module docstring)."""
    if not group_by:
        raise InputError("give at least one manifest column to group by")
    obs = bb.search
    op = next((o for o in bb.results["identification"]["operating_points"]
               if o.get("target_fpir") == operating_fpir and o.get("threshold") is not None
               and not o["fnir"]["1"].get("not_measurable")), None)
    if op is None:
        from faceaudit.metrics.identification import float32_threshold_at_fpir
        if not obs.rank_only:
            cand = float32_threshold_at_fpir(obs.best_nonmate[~obs.is_mated], operating_fpir)
            if cand.threshold is not None and obs.fpir_problem(cand.threshold) is None \
                    and obs.fnir_problem(cand.threshold, 1) is None:
                op = {"threshold": cand.threshold}
    if op is not None:
        threshold, rule = float(op["threshold"]), f"lowest threshold with FPIR <= {operating_fpir:g} over everyone"
    elif obs.threshold_applied.all():
        threshold, rule = None, (f"the system's own threshold (FPIR {operating_fpir:g} is not reached within what "
                                 "the lists show)")
    else:
        raise InputError(f"demographics: no threshold with FPIR <= {operating_fpir:g} is measurable from these lists "
                         "and the system applied no threshold of its own")
    fp, fn = _per_probe(obs, threshold)
    manifest = bb.manifest.iloc[obs.probe_rows].reset_index(drop=True)
    subj_names, probe_subject = np.unique(obs.probe_subjects.astype(str), return_inverse=True)
    weights = boot_.subject_weights(subj_names.size, n_boot, seed)
    mated = obs.is_mated.astype(float)
    analyses, claim_inputs = [], []
    for spec in group_by:
        labels = demo_.group_labels(manifest, spec)
        groups, codes = diff.encode(labels)
        per_probe = {"fpir": (fp, 1 - mated, 1 - mated), "fnir": (fn, mated, mated)}
        fig = demo_.group_figures(per_probe, probe_subject, codes, groups, weights, min_group_size=min_group_size,
                                  confidence=confidence)
        rates, ranked = fig["rates"], fig["ranked"]
        for measure in ("fmr", "fnmr"):
            rates[measure] = {}
        summaries = {m: {"ratio": None, "ci": [None, None], "max_group": None, "min_group": None, "note": NOT_FROM_LISTS}
                     for m in ("fmr", "fnmr")}
        analyses.append({"spec": spec, "groups": [str(g) for g in groups], "rates": rates, "summaries": summaries,
                         "ranked_groups": [str(g) for g, r in zip(groups, ranked) if r],
                         "group_sizes": {str(groups[g]): {"probe_subjects": int(np.unique(probe_subject[codes == g]).size),
                                                         "searches": int((codes == g).sum())} for g in range(groups.size)},
                         "findings": [], "not_measurable": {"fmr": NOT_FROM_LISTS, "fnmr": NOT_FROM_LISTS,
                                                            "cross_group_fmr": NOT_FROM_LISTS,
                                                            "group_thresholds": NOT_FROM_LISTS}})
        claim_inputs.append(fig["claim_input"])
    columns = sorted({c.strip() for spec in group_by for c in spec.split("*")})
    provenance = demo_.label_provenance(bb.manifest, columns, caveats)
    for a in analyses:  # where the labels came from travels with every figure from them
        a["label_provenance"] = {c.strip(): provenance[c.strip()] for c in a["spec"].split("*")}
        a["label_provenance_text"] = demo_.provenance_line(a["label_provenance"])
    # every claim of this section simultaneous with all the others (one family)
    family = demo_.add_claims(analyses, claim_inputs, confidence)
    out = {"threshold": threshold, "threshold_rule": rule, "operating_fpir": operating_fpir,
           "min_group_size": min_group_size, "n_boot": n_boot, "seed": seed, "confidence": confidence,
           "bootstrap": ("per group, Clopper-Pearson on the effective number of searches (Korn-Graubard: the design effect "
                         "from the people); contrasts simultaneous over every pair of ranked groups and measure "
                         "(Bonferroni); the probe-subject bootstrap (gallery fixed) kept for reference"),
           "intervals": demo_.INTERVALS, "claims": family.to_dict(),
           "caveats": {c: t for c, t in provenance.items() if t}, "analyses": analyses}
    bb.results["demographics_from_lists"] = out
    return out

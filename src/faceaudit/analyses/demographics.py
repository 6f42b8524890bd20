"""For whom does it fail: per-group error rates at one operating threshold (ISO/IEC 19795-10).

``add_demographics(audit, ["sex", "sex*race"])`` adds ``results["demographics"]``:

* one threshold for everyone, set on the whole population (default: FPIR = 1%), the way
  systems are deployed;
* FNIR (rank 1) and FPIR by the probe's group, FMR and FNMR by the probe's group, and the
  cross-group FMR matrix (probe group x gallery group), from a second engine pass that counts
  impostor comparisons ``>= T`` per probe and gallery group exactly;
* summaries across groups with at least ``min_group_size`` searches: max/min ratios, the
  inequity rate, FDR and GARBE (:mod:`auditcore.differentials`);
* the threshold each group would need for the overall FMR (how far one threshold is from equal
  treatment);
* per-group intervals from *people*, not comparisons (a person's searches and comparisons are
  not independent): Clopper-Pearson on the effective number of trials, the trials divided by the
  design effect measured from the people (Korn and Graubard 1998; :mod:`auditcore.claims`), so
  that a group with a few errors never gets a lower bound of 0 and one with none gets an upper
  bound; the seeded people bootstrap (gallery fixed) is kept beside it for reference
  (``bootstrap_ci``); FMR, whose comparisons cluster by gallery person too (a few enrolled people
  can attract most false matches), takes the two-way design effect of probe people and gallery
  people, per group and per cell of the cross-group matrix (:func:`fmr_people`);
* FDR, GARBE and the inequity rate with the range they take over the groups' simultaneous
  intervals (:func:`auditcore.claims.summary_box`), which covers the summary of the true rates;
* claims ("at least x times") from bounds that hold simultaneously over every pair of ranked
  groups and every measure of the section (:func:`add_claims`), so the pair picked for being
  highest and lowest, or against the reference group, is covered whichever it is; with no
  true difference the section claims one in at most 5% of audits (``tests/test_claims_null.py``).

Groups with fewer searches than ``min_group_size``, and "missing"/"unknown"/"ambiguous" labels,
are reported, greyed, never ranked or used in a summary. Labels come from manifest columns;
``a*b`` combines two.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from auditcore import bootstrap as boot_
from auditcore import claims as claims_
from auditcore import differentials as diff
from auditcore.errors import InputError
from auditcore.intervals import clopper_pearson
from faceaudit.analyses.base import Audit
from faceaudit.data.protocol import Protocol
from faceaudit.metrics import identification as ident
from faceaudit.metrics import verification as verif

MEASURES = {
    "fmr": "falsely matched (FMR)",
    "fnmr": "falsely rejected (FNMR)",
    "fpir": "returned someone when not in the gallery (FPIR)",
    "fnir": "missed when in the gallery (FNIR, rank 1)",
}


def group_labels(manifest, spec: str) -> np.ndarray:
    """Label per row for a column or an ``a*b`` combination (``"F & black"``)."""
    try:
        return diff.group_labels(manifest, spec)
    except (KeyError, ValueError) as exc:
        raise InputError(f"group-by '{spec}': {exc.args[0]}") from None


def _interval(draws, confidence: float) -> list:
    lo, hi, _ = boot_.percentile_interval(np.asarray(draws, float)[:, None], confidence)
    return [None if np.isnan(lo[0]) else float(lo[0]), None if np.isnan(hi[0]) else float(hi[0])]


def _subject_table(subject: np.ndarray, group: np.ndarray, values: np.ndarray, n_subjects: int, n_groups: int) -> np.ndarray:
    table = np.zeros((n_subjects, n_groups) + values.shape[1:], dtype=np.float64)
    np.add.at(table, (subject, group), values)
    return table


def _num(x) -> float | None:
    x = float(x)
    return None if np.isnan(x) else x


def _rate_entry(rates: claims_.GroupRates, g: int, n_searches: int, boot: np.ndarray, min_group_size: int,
                confidence: float, per_person: bool = False) -> dict:
    """One group's rate: counts, the Korn-Graubard interval from its people (``ci``), the people
    bootstrap's percentile interval for reference (``bootstrap_ci``) and, counting trials as
    independent, Clopper-Pearson (``clopper_pearson``)."""
    kg = rates.at(confidence)
    errors, trials, people = float(rates.errors[g]), float(rates.trials[g]), int(rates.clusters[g])
    lo, hi = float(kg["low"][g]), float(kg["high"][g])
    if per_person:  # each person counts once: errors = sum of per-person rates, trials = people
        entry = {"errors": errors, "trials": int(round(trials)), "searches": int(n_searches),
                 "value": (errors / trials) if trials else None, "ci": [lo, hi], "too_few": bool(n_searches < min_group_size),
                 "people": people, "unit": "person"}
    else:
        e, t = int(round(errors)), int(round(trials))
        entry = {"errors": e, "trials": t, "searches": int(n_searches), "value": (e / t) if t else None,
                 "ci": [lo, hi], "too_few": bool(n_searches < min_group_size), "people": people, "unit": "trial"}
        if t:
            entry["clopper_pearson"] = list(clopper_pearson(e, t, confidence))
    n_eff, deff, source = float(kg["effective_trials"][g]), float(kg["design_effect"][g]), str(kg["source"][g])
    entry.update(interval_method="korn-graubard", design_effect=deff, design_effect_source=source,
                 effective_trials=n_eff, bootstrap_ci=_interval(boot, confidence))
    if trials and errors == 0:
        entry["upper_bound"] = hi
        if people:
            entry["upper_bound_from_people"] = _people_upper(people, confidence)
        how = {"own": "its own people", "pooled": "the people of every group of this grouping",
               "clusters": "no group's errors (none had any), so each person counts once",
               "largest cluster": "the people of every group of this grouping, capped at this group's largest "
                                  "person (never more than one person's trials count as one)",
               "given": "a given design effect",
               "two-way own": "its own probe people and gallery people",
               "two-way pooled": "the probe people and gallery people of every group of this grouping",
               "two-way clusters": "no group's false matches (none had any), so each person counts once"}[source]
        entry["note"] = (f"0 of {int(round(trials)):,}; upper {confidence:.0%} bound {rate_words(hi)} (the trials count as "
                         f"{n_eff:,.0f} independent ones: design effect {deff:.3g}, from {how})")
    return entry


INTERVALS = ("per group: Clopper-Pearson on the effective number of trials (Korn and Graubard 1998: trials divided "
             "by the design effect measured from the group's people, or from every group's people when larger or "
             "when the group has no errors; for FMR from probe people and gallery people), 95%; contrasts between groups: simultaneous over every pair of ranked "
             "groups and every measure of the section (Bonferroni; MOVER from the groups' limits); FDR, GARBE and "
             "the inequity rate: the range of the summary over every group's interval, all simultaneous (Bonferroni), "
             "so it covers the summary of the groups' true rates for new people of the same kind")


VERBS = {"fmr": "were falsely matched in comparisons with other people (FMR, a rate per comparison, not per search)",
         "fnmr": "were falsely rejected in comparisons with their own enrolled images (FNMR, a rate per comparison)",
         "fpir": "who were not in the gallery had someone returned for them (FPIR, a rate per search)",
         "fnir": "who were in the gallery were missed (FNIR at rank 1, a rate per search)"}
RATE_NAMES = {"fmr": "FMR (false matches per impostor comparison)", "fnmr": "FNMR (false rejections per genuine comparison)",
              "fpir": "FPIR (searches of people not in the gallery that returned someone)",
              "fnir": "FNIR at rank 1 (searches of enrolled people that missed them)"}


TINY_RATE = 1e-9  # below it a rate is written as a bound (report/demographics_section.rate_words, its twin)


def rate_words(x: float | None) -> str:
    """A rate in words with one kind of number: "1 in 240,000" below 1%, else a percentage
    ("5.2%"); "0" and "undefined" as such (a sentence never mixes fractions and percentages)."""
    if x is None or not np.isfinite(x):
        return "undefined"
    if x <= 0:
        return "0"
    if x < TINY_RATE:  # an interval's lower end from a handful of effective trials: no 13-digit "1 in N"
        return "below 1 in 1,000,000,000"
    if x < 0.01:
        n = 1.0 / x
        digits = max(int(np.floor(np.log10(n))) - 1, 0)
        return f"1 in {round(n, -digits):,.0f}"
    return f"{100 * x:.2g}%" if x < 0.1 else f"{100 * x:.3g}%"


def _people_upper(n_people: int, confidence: float) -> float | None:
    """Upper bound on a rate whose group had no errors if each person's trials were all errors or
    none (the most that clustering can do): Clopper-Pearson for 0 errors in ``n_people``."""
    return clopper_pearson(0, int(n_people), confidence)[1] if n_people else None


def _contrast(a: int, b: int, rates: claims_.GroupRates, groups, family: claims_.Family) -> dict:
    """Rate of group ``a`` over group ``b`` with bounds that hold simultaneously over every contrast
    of the report (``family``): the point ratio, its simultaneous interval (``ci``), and what can
    be said for sure ("at least" / "at most"), with no infinity anywhere: an unbounded side is
    ``None`` and explained (only when ``b`` had no errors)."""
    level = family.level
    c = {k: v[0] for k, v in rates.contrast(a, b, level).items()}
    ra, rb = float(rates.value[a]), float(rates.value[b])
    out = {"group": str(groups[a]), "versus": str(groups[b]), "rate": ra, "versus_rate": rb,
           "ratio": None, "ci": [None, None], "at_least": None, "at_most": None, "measurable": True, "note": None,
           "difference": ra - rb, "difference_ci": [_num(c["difference_low"]), _num(c["difference_high"])],
           "per_comparison_level": level, "simultaneous": family.confidence}
    if not c["measurable"]:
        out.update(measurable=False, note="not measurable: neither group had an error")
        return out
    if rb == 0:  # no errors in b: only a lower bound, a's lower limit over b's upper limit
        ub = float(rates.interval(level)[1][b])
        out["note"] = (f"people labelled {groups[b]} had no errors; their rate is at most {rate_words(ub)} "
                       f"(0 errors among {int(rates.clusters[b]):,} people, at the simultaneous level)")
        lo = float(c["ratio_low"])
        out["at_least"] = lo if lo > 0 else None
        out["ci"] = [out["at_least"], None]
        return out
    out["ratio"] = ra / rb
    lo, hi = float(c["ratio_low"]), float(c["ratio_high"])
    out["ci"] = [lo, hi if np.isfinite(hi) else None]
    out["at_least"] = lo
    out["at_most"] = out["ci"][1]
    return out


def _times(x: float) -> str:
    return f"{x:.2g}" if x < 1 else (f"{x:.1f}" if x < 10 else f"{x:,.0f}")


def _contrast_sentence(measure: str, c: dict, how: str) -> str | None:
    m = measure.upper()
    conf = f"{c.get('simultaneous', CONF):.0%}"
    if not c["measurable"]:
        return f"{m}, people labelled {c['group']} against {c['versus']} ({how}): {c['note']}."
    verb = VERBS[measure]
    if c["ratio"] is None:  # the comparison group had no errors
        if c["at_least"] is None or c["at_least"] <= 1:
            return (f"People labelled {c['group']} {verb} at a rate of {rate_words(c['rate'])}; {c['note']}, so the data cannot "
                    f"say how many times higher the first group's rate is ({how}).")
        return (f"People labelled {c['group']} {verb} at a rate of {rate_words(c['rate'])}; {c['note']}: the first group's rate "
                f"is at least {_times(c['at_least'])} times the second's ({how}; with {conf} confidence for people of "
                "the same kind, simultaneous over those comparisons: the first group's lower bound over the second's "
                "upper bound).")
    lo, hi = c["ci"]
    # an upper limit in the millions only says that the second group's lower limit is near 0: a
    # 36-digit figure would read as a measurement
    upper = "more than a million" if hi is not None and hi > 1e6 else (None if hi is None else _times(hi))
    ci = (f"with {conf} confidence for people of the same kind, simultaneous over those comparisons, between "
          f"{_times(lo)} and {upper} times" if lo is not None and hi is not None else
          f"with {conf} confidence for people of the same kind, simultaneous over those comparisons, at least "
          f"{_times(lo)} times, with no upper end" if lo is not None else "no interval")
    base = (f"People labelled {c['group']} {verb} {_times(c['ratio'])} times as often as people labelled "
            f"{c['versus']} ({how}; {ci})")
    if lo is not None and lo > 1:
        return base + f": at least {_times(lo)} times."
    if hi is not None and hi < 1:
        return base + f": at most {_times(hi)} times, i.e. less often."
    return base + ": the data do not show a difference."


CONF = 0.95


def _summary(rates: claims_.GroupRates, eligible: np.ndarray, groups, family: claims_.Family) -> dict:
    """The extreme pair (highest against lowest ranked group in the point estimate) and each ranked
    group against the reference group, every bound simultaneous over the report's ``family``."""
    people = rates.clusters
    point = rates.value
    if eligible.sum() < 2:
        return {"ratio": None, "ci": [None, None], "max_group": None, "min_group": None,
                "note": "fewer than two groups with enough searches"}
    idx = np.flatnonzero(eligible)
    r = point[idx]
    if np.all(r == 0):
        return {"ratio": None, "ci": [None, None], "max_group": None, "min_group": None,
                "note": "not measurable: no ranked group had an error"}
    i_max = int(idx[np.nanargmax(r)])
    lowest = idx[r == np.nanmin(r)]
    i_min = int(lowest[0]) if lowest[0] != i_max else int(idx[idx != i_max][0])
    # the pair is chosen from the data (highest and lowest); its bounds hold because every pair's do
    extreme = _contrast(i_max, i_min, rates, groups, family)
    # reference group: the ranked group with the most people (stated rule)
    ref = int(idx[np.argmax(people[idx])])
    versus_ref = [_contrast(int(g), ref, rates, groups, family) for g in idx if g != ref]

    def strength(c):
        if c["at_least"] is not None and c["at_least"] > 1:
            return np.log(c["at_least"])
        if c["at_most"] is not None and 0 < c["at_most"] < 1:
            return -np.log(c["at_most"])
        return 0.0

    strongest = max(versus_ref, key=strength) if versus_ref else None
    k = int(idx.size)
    out = {"ratio": extreme["ratio"], "ci": extreme["ci"], "at_least": extreme["at_least"],
           "max_group": str(groups[i_max]), "min_group": str(groups[i_min]),
           "max": float(point[i_max]), "min": float(point[i_min]),
           "extreme_pair": extreme, "reference_group": str(groups[ref]),
           "reference_rule": "the ranked group with the most people searched",
           "versus_reference": versus_ref, "strongest_versus_reference": strongest,
           "adjustment": {**family.to_dict(), "groups_compared": k, "pairs": claims_.n_pairs(k),
                          "selection": f"highest against lowest of {k} groups in the point estimate",
                          "adjusted_for": claims_.family_text(k, family)}}
    if extreme["note"]:
        out["note"] = extreme["note"]
    return out


def _how(s: dict, which: str) -> str:
    adj = s.get("adjustment") or {}
    k, text = adj.get("groups_compared"), adj.get("adjusted_for")
    if which == "extreme":
        head = f"highest against lowest of {k} groups" if k else "highest against lowest group"
    else:
        head = f"against the reference group {s.get('reference_group')}, the group with the most people"
    return f"{head}, {text}" if text else head


def _finding(measure: str, s: dict, rates: dict | None = None) -> list[str]:
    if not s.get("extreme_pair"):
        return []
    out = [_contrast_sentence(measure, s["extreme_pair"], _how(s, "extreme"))]
    c = s.get("strongest_versus_reference")
    if c and {c["group"], c["versus"]} != {s["max_group"], s["min_group"]}:
        out.append(_contrast_sentence(measure, c, _how(s, "reference")))
    return [x for x in out if x]


def group_figures(per_probe: dict, probe_subject: np.ndarray, probe_group: np.ndarray, groups, weights: np.ndarray, *,
                  min_group_size: int, confidence: float, per_person: bool = False,
                  design_effects: dict | None = None) -> dict:
    """Per-group rates of every measure from per-probe counts (no claims yet: :func:`add_claims`).

    ``per_probe``: measure -> (errors, trials, searches) per probe; ``probe_subject``: the probe's
    person (0..n-1), ``probe_group``: its group code; ``weights``: the people bootstrap's
    ``(n_boot, n_people)`` multiplicities. Returns ``rates`` (the results' per-group entries),
    ``boot``/``point``/``eligible`` per measure, and ``claim_input`` (measure -> (GroupRates, eligible)).
    ``design_effects``: measure -> ``{"design_effect", "degrees_of_freedom", "source"}`` per group,
    measured by the caller where trials cluster in more than one way (FMR: probe people and gallery
    people, :func:`fmr_people`); each group then uses the larger of it and the probe-people one.
    """
    n_subj, n_groups = weights.shape[1], len(groups)
    ranked = np.array([diff.is_ranked_label(g) for g in groups])
    rates, boots, points, eligibles, claim_input = {}, {}, {}, {}, {}
    for measure, (err, trials, searches) in per_probe.items():
        e_tab = _subject_table(probe_subject, probe_group, np.asarray(err, float), n_subj, n_groups)
        t_tab = _subject_table(probe_subject, probe_group, np.asarray(trials, float), n_subj, n_groups)
        s_tab = _subject_table(probe_subject, probe_group, np.asarray(searches, float), n_subj, n_groups)
        if per_person:  # a person's searches as one unit: the group rate is the mean of per-person rates
            has = t_tab > 0
            e_tab = np.where(has, e_tab / np.where(has, t_tab, 1), 0.0)
            t_tab = has.astype(float)
        e_sum, t_sum, s_sum = e_tab.sum(0), t_tab.sum(0), s_tab.sum(0)
        group_rates = claims_.GroupRates(e_tab, t_tab)
        given = (design_effects or {}).get(measure)
        if given is not None and not per_person:
            one_way, two = group_rates.design_effect, np.asarray(given["design_effect"], float)
            source = np.where(one_way > two, group_rates.source, np.asarray(given["source"], dtype=object))
            group_rates = claims_.GroupRates(e_tab, t_tab, design_effect=np.fmax(two, one_way),
                                             degrees_of_freedom=given["degrees_of_freedom"], source=source)
        point = diff.rates(e_sum, t_sum)
        boot = diff.rates(boot_.weighted_sums(weights, e_tab), boot_.weighted_sums(weights, t_tab))
        eligible = (s_sum >= min_group_size) & (t_sum > 0) & ranked
        rates[measure] = {str(groups[g]): _rate_entry(group_rates, g, s_sum[g], boot[:, g], min_group_size, confidence,
                                                     per_person)
                          for g in range(n_groups) if t_sum[g] > 0}
        boots[measure], points[measure], eligibles[measure] = boot, point, eligible
        claim_input[measure] = (group_rates, eligible)
    return {"rates": rates, "boot": boots, "point": points, "eligible": eligibles, "ranked": ranked,
            "claim_input": claim_input}


def family_size(claim_inputs) -> int:
    """Pairwise contrasts in a report: over every analysis and measure, pairs of ranked groups."""
    return sum(claims_.n_pairs(int(eligible.sum())) for ci in claim_inputs for _, eligible in ci.values()
               if eligible.sum() >= 2)


def add_claims(analyses: list[dict], claim_inputs: list[dict], confidence: float) -> claims_.Family:
    """Summaries, findings and the headline of each analysis, every bound simultaneous over all the
    pairwise contrasts of all the analyses (one family: the report)."""
    family = claims_.Family(max(family_size(claim_inputs), 1), confidence)
    for a, ci in zip(analyses, claim_inputs):
        groups = np.asarray(a["groups"], dtype=object)
        summaries = {m: _summary(rates, eligible, groups, family) for m, (rates, eligible) in ci.items()}
        a["summaries"] = {**a.get("summaries", {}), **summaries}
        a["findings"] = [f for m in MEASURES if m in summaries for f in _finding(m, summaries[m])]
        headline = None
        for m in MEASURES:
            s_m = summaries.get(m)
            if not s_m:
                continue
            for c, which in ((s_m.get("extreme_pair"), "extreme"), (s_m.get("strongest_versus_reference"), "reference")):
                if c and c["at_least"] is not None and c["at_least"] > 1:
                    strength = float(np.log(c["at_least"]))
                    if headline is None or strength > headline["strength"]:
                        headline = {"measure": m, "strength": strength, "at_least": c["at_least"],
                                    "rate": RATE_NAMES[m],
                                    "sentence": f"Grouped by {a['spec']}: " + _contrast_sentence(m, c, _how(s_m, which))}
        if headline is not None:  # the caveat recorded for the labels stands next to the figure
            headline["caveat"] = caveat_sentence(a["spec"], a.get("label_provenance"))
            headline["sentence"] += " " + headline["caveat"]
        a["headline"] = headline
        a["claims"] = family.to_dict()
    return family


def _group_thresholds(audit: Audit, codes: np.ndarray, groups, target_fmr: float, score: str,
                      tick: Callable[[], None] | None = None) -> list[dict]:
    """Per probe group: the lowest threshold giving at most the overall FMR, and FNMR there."""
    out = []
    subjects_mated = codes[audit.protocol.mated]
    subjects_nonmated = codes[audit.protocol.nonmated]
    for g, name in enumerate(groups):
        mated = audit.protocol.mated[subjects_mated == g]
        nonmated = audit.protocol.nonmated[subjects_nonmated == g]
        if mated.size + nonmated.size == 0:
            continue
        res = audit.searcher(audit.evalset, Protocol(audit.protocol.gallery, mated, nonmated), score=score, top_k=1)
        if tick is not None:
            tick()
        curve = verif.verification_curve(res.genuine_scores, res.impostor_hist, score=res.score,
                                         fine_from=res.hist_fine_from)
        point = verif.fnmr_at_fmr(curve, target_fmr)
        out.append({"group": str(name), "threshold": point.threshold, "measurable": point.measurable,
                    "fmr": point.fmr.to_dict(), "fnmr": point.fnmr.to_dict()})
    return out


def _in_units(rows: list[dict], single: float, score: str) -> list[dict]:
    """Each group's threshold against the single one in the audit's unit: ``difference_from_single``
    (score units) always; for ``neg_euclidean`` also ``distance`` and ``distance_difference`` (the
    group's distance minus the single threshold's: negative = the group needs a stricter, smaller
    distance), so that a distance is never shown beside a difference in score units."""
    for r in rows:
        t = r["threshold"]
        r["difference_from_single"] = None if t is None else float(t) - float(single)
        if score == "neg_euclidean":
            r["unit"] = "distance"
            r["single_distance"] = -float(single)
            r["distance"] = None if t is None else -float(t)
            r["distance_difference"] = None if t is None else (-float(t)) - (-float(single))
    return rows


FMR_ONE_WAY = ("probe people only (Korn-Graubard): the comparisons were not split by gallery person ({why}); "
               "too narrow if a few enrolled people attract most false matches")


def fmr_design_effects(pairs: dict, probe_group: np.ndarray, n_groups: int, codes=None) -> dict:
    """Two-way design effects (probe people and gallery people) of each probe group's FMR, for
    :func:`group_figures`, from the split of the comparisons by probe and gallery person
    (:func:`faceaudit.analyses.lookalikes.probe_pairs`): arrays ``design_effect``,
    ``degrees_of_freedom``, ``source`` over the ``n_groups`` groups (a group with no probes: 1)."""
    from faceaudit.analyses import lookalikes as look

    probe_group = np.asarray(probe_group, np.int64)
    codes = np.zeros(int(np.max(pairs["layout"]["gallery_rows"], initial=0)) + 1, np.int64) if codes is None else codes
    present = np.flatnonzero(np.bincount(probe_group, minlength=n_groups) > 0)
    groups = look.group_design_effects(look.group_parts(pairs, probe_group, codes, present))
    full = {k: np.full(n_groups, v, dtype=object if k == "source" else float)
            for k, v in (("design_effect", 1.0), ("degrees_of_freedom", 1e9), ("source", "two-way clusters"))}
    for k, arr in full.items():
        arr[present] = groups[k]
    return full


def fmr_people(audit: Audit, threshold: float, codes: np.ndarray, probe_group: np.ndarray, g_counts: np.ndarray,
               g_comps: np.ndarray, n_groups: int, confidence: float) -> dict:
    """Per-group FMR and cross-group FMR intervals from probe people *and* gallery people.

    Impostor comparisons cluster twice: by the probe's person and by the gallery person (a few
    enrolled people can attract most false matches). The comparisons ``>= threshold`` are split
    by (probe, gallery person, gallery template's group) the way the verification FMR's are
    (:func:`faceaudit.analyses.lookalikes.probe_pairs`), checked against the engine's per-group
    counts to the comparison, and each probe group (and each cell of the cross-group matrix) gets
    the two-way design effect of its own people (:func:`~faceaudit.analyses.lookalikes.group_parts`,
    :func:`~faceaudit.analyses.lookalikes.group_design_effects`). Returns ``groups`` (design effects
    per probe group, for :func:`group_figures`; None where the split could not be made), ``cross``
    (the matrix's ``ci``, ``design_effect``, ``interval``) and ``about`` (what the intervals cover)."""
    from auditcore.intervals import korn_graubard
    from faceaudit.analyses import lookalikes as look

    res = audit.search
    n = float(g_comps.sum())
    covers = ("new probe people and new gallery people of the same kind (comparisons cluster by both); the "
              "cross-group cells are each at the stated confidence, not simultaneous")
    cost = look._rescore_cost(res, int(audit.protocol.gallery.size), threshold)
    why = None
    if n <= 0:
        why = "no impostor comparisons"
    elif cost > max(look.RESCORE_FLOOR, 0.25 * n):
        why = f"splitting them by person would score again {int(cost):,} comparisons"
    if why is None:
        pairs = look.probe_pairs(res, audit.evalset, audit.protocol, [np.float32(threshold)], gallery_codes=codes,
                                 score=audit.results["input"]["score"])
        check = np.zeros_like(g_counts)
        if pairs["probe"].size:
            np.add.at(check, (pairs["probe"], pairs["group"]), pairs["counts"][:, 0])
        if not np.array_equal(check, g_counts):
            why = "the split by person did not add up to the engine's counts"
    if why is not None:
        return {"groups": None, "cross": {"interval": FMR_ONE_WAY.format(why=why)},
                "about": {"method": FMR_ONE_WAY.format(why=why), "covers": "new probe people of the same kind"}}
    probe_group = np.asarray(probe_group, np.int64)
    full = fmr_design_effects(pairs, probe_group, n_groups, codes)
    # the cross-group matrix: a cell per (probe group, gallery group) with comparisons
    cells = [(a, b) for a in range(n_groups) for b in range(n_groups) if g_comps[probe_group == a, b].sum() > 0]
    lo = [[None] * n_groups for _ in range(n_groups)]
    hi = [[None] * n_groups for _ in range(n_groups)]
    de = [[None] * n_groups for _ in range(n_groups)]
    if cells:
        parts = look.group_parts(pairs, probe_group, codes, [a for a, _ in cells], [b for _, b in cells])
        d = look.group_design_effects(parts)
        e = np.array([[p["count"] for p in parts]])
        t = np.array([[p["comparisons"] for p in parts]])
        kg = korn_graubard(e, t, confidence, design_effect=d["design_effect"], degrees_of_freedom=d["degrees_of_freedom"],
                           source=d["source"])
        for i, (a, b) in enumerate(cells):
            lo[a][b], hi[a][b], de[a][b] = float(kg["low"][i]), float(kg["high"][i]), float(kg["design_effect"][i])
    cross = {"ci_low": lo, "ci_high": hi, "design_effect": de,
             "interval": f"{look.GROUP_FMR_METHOD}; each cell at {confidence:.0%}, not simultaneous"}
    return {"groups": full, "cross": cross, "about": {"method": look.GROUP_FMR_METHOD, "covers": covers}}


def per_probe_counts(audit: Audit, threshold: float, codes: np.ndarray | None = None) -> dict:
    """Errors and trials of every measure per probe at ``threshold`` (one engine pass, which also
    counts each probe's impostor comparisons ``>= T`` by gallery group ``codes``; all one group if
    None). ``per_probe``: measure -> (errors, trials, searches) per probe; ``probe_subject``: each
    probe's person as 0..n_subjects-1. A probe's errors do not depend on anyone's group label."""
    es, proto, res = audit.evalset, audit.protocol, audit.search
    codes = np.zeros(es.n, np.int64) if codes is None else np.asarray(codes, np.int64)
    n_groups = int(codes.max(initial=0)) + 1
    score = audit.results["input"]["score"]
    res2 = audit.searcher(es, proto, score=score, top_k=1, thresholds=[threshold], gallery_groups=codes)
    # the engine sizes its per-group counts by the gallery's groups: a group present only among
    # probes (nobody enrolled) gets zero columns here, so every group has a row and a column
    g_counts = np.zeros((res2.n_probes, n_groups), np.int64)
    g_comps = np.zeros((res2.n_probes, n_groups), np.int64)
    g_counts[:, :res2.group_counts.shape[1]] = res2.group_counts[:, :, 0]
    g_comps[:, :res2.group_comparisons.shape[1]] = res2.group_comparisons
    subj_names, probe_subject = np.unique(res.probe_subjects, return_inverse=True)
    mated = res.is_mated
    t32 = np.float32(threshold)
    fm = g_counts.sum(1).astype(float)
    fm_n = g_comps.sum(1).astype(float)
    fnm = np.bincount(res.genuine_probe, weights=(res.genuine_scores < t32), minlength=res.n_probes)
    fnm_n = np.bincount(res.genuine_probe, minlength=res.n_probes).astype(float)
    fp = (~mated & (res.best_nonmate >= t32)).astype(float)
    fn = (mated & ((res.mate_score < t32) | (res.mate_rank > 1))).astype(float)
    per_probe = {"fmr": (fm, fm_n, np.ones(res.n_probes)), "fnmr": (fnm, fnm_n, mated.astype(float)),
                 "fpir": (fp, (~mated).astype(float), (~mated).astype(float)),
                 "fnir": (fn, mated.astype(float), mated.astype(float))}
    return {"per_probe": per_probe, "probe_subject": probe_subject, "n_subjects": int(subj_names.size),
            "group_counts": g_counts, "group_comparisons": g_comps}


SUMMARY_COVERS = ("the same summary of the groups' true rates, for new people of the same kind (probe people "
                  "resampled; gallery as audited), with at least the stated confidence")
BOOTSTRAP_NOTE = ("bootstrap_ci: the people bootstrap's percentile interval, kept for reference; it describes this "
                  "sample's spread and does not cover the true summary (with no true difference it still excludes "
                  "equality)")


def _summary_figures(fig: dict, both: np.ndarray, point_rates: dict, boot_rates: dict, alpha: float,
                     confidence: float) -> dict:
    """FDR, GARBE and the inequity rate over the groups ranked for both FMR and FNMR, each with the
    range it takes over the groups' simultaneous intervals from people (``ci``,
    :func:`auditcore.differentials.projected_summaries`) and the people bootstrap's percentile
    interval beside it (``bootstrap_ci``)."""
    f, fb = point_rates["fmr"][both], boot_rates["fmr"][:, both]
    n, nb = point_rates["fnmr"][both], boot_rates["fnmr"][:, both]
    idx = np.flatnonzero(both)
    box = claims_.summary_box(fig["claim_input"]["fmr"][0], idx, fig["claim_input"]["fnmr"][0], idx, confidence)
    proj = diff.projected_summaries(box["first_low"], box["first_high"], box["second_low"], box["second_high"], alpha)
    method = {"interval_method": claims_.SUMMARY_METHOD, "interval_covers": SUMMARY_COVERS,
              "simultaneous_level": box["level"], "intervals_combined": box["intervals"],
              "bootstrap_note": BOOTSTRAP_NOTE}
    ineq = diff.max_min_ratio(f) * diff.max_min_ratio(n)
    ineq_boot = [None if v is None or not np.isfinite(v) else v for v in _interval(diff.inequity_rate(fb, nb), confidence)]
    out = {
        "inequity_rate": {"value": float(ineq) if np.isfinite(ineq) else None, "ci": proj["inequity_rate"],
                          "bootstrap_ci": ineq_boot, **method,
                          **({} if np.isfinite(ineq) else
                             {"note": "not measurable as a number: a group had no FMR or FNMR errors"})},
        "fdr": {"value": float(diff.fdr(f, n, alpha)), "ci": proj["fdr"],
                "bootstrap_ci": _interval(diff.fdr(fb, nb, alpha), confidence), "alpha": alpha, **method},
        "garbe": {"value": float(diff.garbe(f, n, alpha)), "ci": proj["garbe"],
                  "bootstrap_ci": _interval(diff.garbe(fb, nb, alpha), confidence), "alpha": alpha, **method},
    }
    if out["inequity_rate"]["ci"][1] is None:
        out["inequity_rate"]["ci_note"] = ("no upper end: some group's lower limit is 0 (it had no errors), so the "
                                           "ratio of rates can be arbitrarily large")
    return out


def analyse(audit: Audit, spec: str, threshold: float, *, min_group_size: int, n_boot: int, seed: int,
            confidence: float, alpha: float, per_person: bool = False, tick: Callable[[], None] | None = None) -> dict:
    es, proto, res = audit.evalset, audit.protocol, audit.search
    labels = group_labels(es.manifest, spec)
    groups, codes = diff.encode(labels)
    n_groups = groups.size
    score = audit.results["input"]["score"]
    counts = per_probe_counts(audit, threshold, codes)
    if tick is not None:
        tick()
    per_probe, probe_subject, n_subj = counts["per_probe"], counts["probe_subject"], counts["n_subjects"]
    g_counts, g_comps = counts["group_counts"], counts["group_comparisons"]
    fm, fm_n = per_probe["fmr"][0], per_probe["fmr"][1]
    probe_group = codes[res.probe_rows]
    weights = boot_.subject_weights(n_subj, n_boot, seed)
    two_way = fmr_people(audit, threshold, codes, probe_group, g_counts, g_comps, n_groups, confidence)
    if per_person and two_way.get("groups") is not None:  # a group's FMR is a mean over its probe people
        two_way["about"] = {**two_way["about"], "method": "per group: each probe person once (per_person); cross-group "
                            "cells: " + two_way["about"]["method"]}
    fig = group_figures(per_probe, probe_subject, probe_group, groups, weights, min_group_size=min_group_size,
                        confidence=confidence, per_person=per_person,
                        design_effects=None if two_way.get("groups") is None else {"fmr": two_way["groups"]})
    rates, ranked = fig["rates"], fig["ranked"]
    boot_rates, point_rates, eligible_by = fig["boot"], fig["point"], fig["eligible"]
    both = eligible_by["fmr"] & eligible_by["fnmr"]
    extra = {}
    if both.sum() >= 2:
        extra = _summary_figures(fig, both, point_rates, boot_rates, alpha, confidence)
    # cross-group FMR: probe group x gallery group
    cross_e = _subject_table(probe_subject, probe_group, g_counts.astype(float), n_subj, n_groups).sum(0)
    cross_t = _subject_table(probe_subject, probe_group, g_comps.astype(float), n_subj, n_groups).sum(0)
    overall_fmr = float(fm.sum() / fm_n.sum()) if fm_n.sum() else None
    return {
        "spec": spec, "groups": [str(g) for g in groups],
        "group_sizes": {str(groups[g]): {"templates": int((codes == g).sum()),
                                         "probe_subjects": int(np.unique(probe_subject[probe_group == g]).size),
                                         "gallery_templates": int((codes[proto.gallery] == g).sum())} for g in range(n_groups)},
        "rates": rates, "summaries": {}, **extra,
        "ranked_groups": [str(g) for g, r in zip(groups, ranked) if r],
        "cross_fmr": {"errors": cross_e.astype(int).tolist(), "trials": cross_t.astype(int).tolist(),
                      "rate": [[(e / t) if t else None for e, t in zip(er, tr)] for er, tr in zip(cross_e, cross_t)],
                      **two_way["cross"]},
        "fmr_interval": two_way["about"],
        "overall_fmr": overall_fmr,
        "group_thresholds": _in_units(_group_thresholds(audit, codes, groups, overall_fmr, score, tick), threshold, score)
        if overall_fmr else [],
        "findings": [], "headline": None, "_claim_input": fig["claim_input"],
    }


def label_provenance(manifest, columns: Sequence[str], caveats: dict | None = None) -> dict:
    """Where each grouping column's labels came from: ``--caveat`` text, else the manifest's
    ``caveat_<column>`` column (its distinct values), else None (not stated)."""
    out = {}
    for c in columns:
        text = (caveats or {}).get(c)
        if text is None and f"caveat_{c}" in manifest.columns:
            values = [str(v) for v in manifest[f"caveat_{c}"].dropna().unique() if str(v).strip()]
            text = "; ".join(values) or None
        out[c] = text
    return out


def caveat_sentence(spec: str, provenance: dict | None) -> str:
    """The caveat of a grouping's labels as one sentence for a headline: the ``--caveat`` text (or
    the manifest's ``caveat_<column>``) of each column, or that it is not stated."""
    cols = [c.strip() for c in spec.split("*")]
    provenance = provenance or {}
    parts = [f"labels in '{c}': {provenance[c]}" if provenance.get(c) else
             f"where the labels in '{c}' came from is not stated" for c in cols]
    return "Caveat on the labels: " + "; ".join(parts) + "."


def provenance_line(provenance: dict) -> str:
    """One sentence on where a grouping's labels came from, neutral where it is not stated."""
    parts = []
    for c, text in provenance.items():
        parts.append(f"'{c}': {text}" if text else f"where the labels in column '{c}' came from is not stated")
    return "Labels: " + "; ".join(parts) + ". Every figure from these labels inherits this."


def add_demographics(audit: Audit, group_by: Sequence[str], *, min_group_size: int = 30,
                     operating_fpir: float = 0.01, threshold: float | None = None, n_boot: int = 1000,
                     seed: int = 0, confidence: float = 0.95, alpha: float = 0.5,
                     caveats: dict | None = None, per_person: bool = False,
                     progress: Callable[[int, int], None] | None = None) -> dict:
    """Compute the demographic section (see module docstring); store ``results["demographics"]``.

    ``caveats``: COLUMN -> where its labels came from (overrides a manifest ``caveat_COLUMN``
    column); it is stored with every analysis that uses the column. ``progress(done, total)``
    is called after each engine pass.
    """
    if not group_by:
        raise InputError("give at least one manifest column to group by")
    res = audit.search
    if threshold is None:
        op = ident.threshold_at_fpir(res.best_nonmate[~res.is_mated], operating_fpir)
        threshold, how = op.threshold, f"lowest threshold with FPIR <= {operating_fpir:g} over everyone"
    else:
        how = "given"
    manifest = audit.evalset.manifest
    columns = sorted({c.strip() for spec in group_by for c in spec.split("*")})
    provenance = label_provenance(manifest, columns, caveats)
    total = sum(1 + np.unique(group_labels(manifest, spec)).size for spec in group_by)
    done = [0]

    def tick() -> None:
        done[0] += 1
        if progress is not None:
            progress(min(done[0], total), total)

    analyses = []
    for spec in group_by:
        a = analyse(audit, spec, threshold, min_group_size=min_group_size, n_boot=n_boot, seed=seed,
                    confidence=confidence, alpha=alpha, per_person=per_person, tick=tick)
        cols = [c.strip() for c in spec.split("*")]
        a["label_provenance"] = {c: provenance[c] for c in cols}
        a["label_provenance_text"] = provenance_line(a["label_provenance"])
        analyses.append(a)
    # one family for the whole section: every claim's bound holds together with all the others
    family = add_claims(analyses, [a.pop("_claim_input") for a in analyses], confidence)
    demo = {"threshold": threshold, "threshold_rule": how, "operating_fpir": operating_fpir,
            "min_group_size": min_group_size, "n_boot": n_boot, "seed": seed, "confidence": confidence,
            "bootstrap": "probe subjects resampled with replacement; gallery fixed; percentile intervals",
            "intervals": INTERVALS, "claims": family.to_dict(),
            "caveats": {c: t for c, t in provenance.items() if t},
            "unit": ("each person once: a group's rate is the mean of its people's rates" if per_person
                     else "each search or comparison; intervals still resample people"),
            "per_person": per_person,
            "analyses": analyses}
    audit.results["demographics"] = demo
    return demo

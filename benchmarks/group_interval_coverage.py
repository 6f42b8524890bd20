"""Simulation study: do the demographic and compare intervals hold the exact truth for new people?

Three figures, each against populations of *people* whose rates are known exactly:

1. **Summaries across groups** (FDR, GARBE, inequity rate; ``results["demographics"]``): the range
   of the summary over the groups' simultaneous Korn-Graubard intervals
   (:func:`auditcore.claims.summary_box`, :func:`auditcore.differentials.projected_summaries`),
   against the people bootstrap's percentile interval it replaces.
2. **Per-group paired differences in compare** (FNIR/FPIR of system A minus system B on the same
   searches): the MOVER interval from people (:func:`auditcore.intervals.paired_difference`),
   against the people bootstrap's percentile interval it replaces.
3. **Verification FMR at an FMR target** (``results["verification"]``): the two-way people interval
   (:func:`faceaudit.analyses.lookalikes.people_interval`) at the threshold faceaudit picks for the
   target, against Clopper-Pearson over comparisons; score-level populations from
   ``benchmarks/lookalike_coverage.py``.

4. **Per-group FMR and the cross-group FMR matrix** (``results["demographics"]``): two-way
   (probe people and gallery people) design effects per group
   (:func:`faceaudit.analyses.lookalikes.group_parts`) against probe people only, in populations
   where 0.5-2% of gallery people (hubs) or 2% of probe people attract most false matches, with
   per-image labels (one person in several groups); coverage of each group's true FMR, of each
   cross-group cell's, and how often the section's FMR ratio claims are made and wrong.

People: each person's error probability is drawn from a law with an exact mean (all equal;
Beta; or a "few people attract most errors" mixture where 2% of people have a rate 0.3 and carry
about three quarters of the errors), and each person has a random number of trials, so a group's
true rate (what a new sample of people of the same kind estimates) is the law's mean.

    python benchmarks/group_interval_coverage.py [--reps 400] [--which summaries paired fmr group_fmr]

Prints coverage (share of runs whose interval holds the truth) by population and method.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from auditcore import bootstrap as boot_
from auditcore import claims as claims_
from auditcore import differentials as diff
from auditcore.intervals import clopper_pearson, paired_difference


@dataclass(frozen=True)
class PersonLaw:
    """A person's error probability: ``kind`` "fixed" (everyone ``mean``), "beta" (Beta with this
    mean and concentration 2: strongly unequal people) or "few" (a share ``share`` of people at
    ``high``, the rest at the rate that makes the mean exact)."""

    kind: str
    mean: float
    share: float = 0.02
    high: float = 0.3

    def draw(self, rng, n: int) -> np.ndarray:
        if self.kind == "fixed":
            return np.full(n, self.mean)
        if self.kind == "beta":
            c = 2.0
            return rng.beta(self.mean * c, (1 - self.mean) * c, n)
        high = min(self.high, 0.9)
        low = (self.mean - self.share * high) / (1 - self.share)
        if low < 0:  # the carriers alone give the mean
            high, low = self.mean / self.share, 0.0
        return np.where(rng.random(n) < self.share, high, low)


def _clustered(rng, law: PersonLaw, people: int, trials_per_person) -> tuple[np.ndarray, np.ndarray]:
    """(errors, trials) per person: trials uniform on ``trials_per_person`` (lo, hi)."""
    lo, hi = trials_per_person
    t = rng.integers(lo, hi + 1, people)
    return rng.binomial(t, law.draw(rng, people)).astype(float), t.astype(float)


# ------------------------------------------------------------------ 1. summaries across groups

SUMMARY_SETTINGS = {
    # name: (FMR law kind, FNMR law kind, FMR group means, FNMR group means)
    "equal rates, independent": ("fixed", "fixed", [1e-3] * 4, [0.05] * 4),
    "equal rates, unequal people (Beta)": ("beta", "beta", [1e-3] * 4, [0.05] * 4),
    "equal rates, few people carry most errors": ("few", "few", [1e-3] * 4, [0.05] * 4),
    "3x differences, unequal people": ("beta", "beta", [1e-3, 2e-3, 3e-3, 1e-3], [0.03, 0.09, 0.05, 0.05]),
    "3x differences, few people carry most errors": ("few", "few", [1e-3, 2e-3, 3e-3, 1e-3],
                                                     [0.03, 0.09, 0.05, 0.05]),
}
GROUP_PEOPLE = (120, 300, 500, 900)  # unequal group sizes


def one_summary_audit(setting: str, seed: int, n_boot: int = 300, alpha: float = 0.5, confidence: float = 0.95,
                      fmr_trials=(200, 400), fnmr_trials=(1, 4)) -> dict:
    kind_f, kind_n, mf, mn = SUMMARY_SETTINGS[setting]
    rng = np.random.default_rng(seed)
    k, people = len(mf), sum(GROUP_PEOPLE)
    ef, tf, en, tn = (np.zeros((people, k)) for _ in range(4))
    start = 0
    for g, m in enumerate(GROUP_PEOPLE):
        rows = slice(start, start + m)
        ef[rows, g], tf[rows, g] = _clustered(rng, PersonLaw(kind_f, mf[g]), m, fmr_trials)
        en[rows, g], tn[rows, g] = _clustered(rng, PersonLaw(kind_n, mn[g]), m, fnmr_trials)
        start += m
    rf, rn = claims_.GroupRates(ef, tf), claims_.GroupRates(en, tn)
    idx = np.arange(k)
    box = claims_.summary_box(rf, idx, rn, idx, confidence)
    proj = diff.projected_summaries(box["first_low"], box["first_high"], box["second_low"], box["second_high"], alpha)
    truth = {"fdr": float(diff.fdr(np.array(mf), np.array(mn), alpha)),
             "garbe": float(diff.garbe(np.array(mf), np.array(mn), alpha)),
             "inequity_rate": float(diff.inequity_rate(np.array(mf), np.array(mn)))}
    w = boot_.subject_weights(people, n_boot, seed + 1)
    bf = diff.rates(w @ ef, w @ tf)
    bn = diff.rates(w @ en, w @ tn)
    boots = {"fdr": diff.fdr(bf, bn, alpha), "garbe": diff.garbe(bf, bn, alpha), "inequity_rate": diff.inequity_rate(bf, bn)}
    out = {}
    for name in truth:
        lo, hi = proj[name]
        hi = np.inf if hi is None else hi
        blo, bhi, _ = boot_.percentile_interval(np.asarray(boots[name], float)[:, None], confidence)
        out[name] = {"truth": truth[name], "new": (lo <= truth[name] <= hi),
                     "old": bool(blo[0] <= truth[name] <= bhi[0]), "new_width": hi - lo}
    return out


def summary_study(reps: int = 200, seed0: int = 0) -> dict:
    res = {}
    for setting in SUMMARY_SETTINGS:
        runs = [one_summary_audit(setting, seed0 + 101 * r) for r in range(reps)]
        res[setting] = {name: {"new": float(np.mean([x[name]["new"] for x in runs])),
                               "old": float(np.mean([x[name]["old"] for x in runs]))} for name in runs[0]}
    return res


# ------------------------------------------------------------------ 2. paired differences (compare)

PAIRED_SETTINGS = {
    # name: (law of A's per-person rate, P(B wrong | A wrong), P(B wrong | A right))
    "equal systems, independent people, 5%": (PersonLaw("fixed", 0.05), 0.6, 0.05 * 0.4 / 0.95),
    "A worse, unequal people (Beta), 5%": (PersonLaw("beta", 0.05), 0.5, 0.01),
    "equal systems, few people carry most errors, 1%": (PersonLaw("few", 0.01), 0.7, 0.01 * 0.3 / 0.99),
    "rare: A 0.5%, B unrelated 0.2%": (PersonLaw("few", 0.005), 0.002, 0.002),
    "rare: both 0.2%, mostly the same searches": (PersonLaw("few", 0.002), 0.8, 0.002 * 0.2 / 0.998),
}


def one_paired_audit(setting: str, seed: int, people: int = 300, trials=(1, 4), n_boot: int = 300,
                     confidence: float = 0.95) -> dict:
    law, b_if_a, b_if_not = PAIRED_SETTINGS[setting]
    rng = np.random.default_rng(seed)
    t = rng.integers(trials[0], trials[1] + 1, people)
    pa = law.draw(rng, people)
    subj = np.repeat(np.arange(people), t)
    a = rng.random(subj.size) < pa[subj]
    b = np.where(a, rng.random(subj.size) < b_if_a, rng.random(subj.size) < b_if_not)
    truth = law.mean - (law.mean * b_if_a + (1 - law.mean) * b_if_not)
    ea = np.bincount(subj, a.astype(float), people)
    eb = np.bincount(subj, b.astype(float), people)
    new = paired_difference(ea, eb, t.astype(float), confidence)
    w = boot_.subject_weights(people, n_boot, seed + 1)
    draws = (w @ ea - w @ eb) / (w @ t)
    blo, bhi, _ = boot_.percentile_interval(draws[:, None], confidence)
    return {"truth": truth, "new": bool(new["low"] <= truth <= new["high"]),
            "old": bool(blo[0] <= truth <= bhi[0]), "zero_width_old": bool(blo[0] == bhi[0]),
            "new_width": new["high"] - new["low"]}


def paired_study(reps: int = 400, seed0: int = 0) -> dict:
    res = {}
    for setting in PAIRED_SETTINGS:
        runs = [one_paired_audit(setting, seed0 + 37 * r) for r in range(reps)]
        res[setting] = {"new": float(np.mean([x["new"] for x in runs])), "old": float(np.mean([x["old"] for x in runs])),
                        "old_zero_width": float(np.mean([x["zero_width_old"] for x in runs]))}
    return res


# ------------------------------------------------------------------ 3. verification FMR at FMR targets

def _lookalike_study():
    path = Path(__file__).with_name("lookalike_coverage.py")
    spec = importlib.util.spec_from_file_location("lookalike_coverage", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("lookalike_coverage", mod)
    spec.loader.exec_module(mod)
    return mod


def one_fmr_audit(pop, probe_people: int, gallery_people: int, seed: int, t0: float,
                  targets=(1e-3, 1e-4, 1e-5), confidence: float = 0.95) -> list[dict]:
    """FMR at the threshold faceaudit picks for each FMR target (lowest threshold with at most
    floor(x n) impostor comparisons at or above it), its two-way people interval and Clopper-Pearson."""
    from auditcore.intervals import allowed_errors
    from faceaudit.analyses.lookalikes import people_interval, two_way_variance
    rng = np.random.default_rng(seed)
    pi, gi, sc, _ = pop.simulate(probe_people, gallery_people, rng, t0)
    tp, tg = pop.probe_templates, pop.gallery_templates
    n_probe_t, n_gal_t = probe_people * tp, gallery_people * tg
    n = n_probe_t * n_gal_t
    s32 = np.sort(sc.astype(np.float32))[::-1]
    thresholds = []
    for x in targets:
        allowed = allowed_errors(x, n)
        if allowed >= s32.size or allowed < 1:
            continue
        # the lowest float32 threshold with at most `allowed` comparisons >= it
        thresholds.append((x, float(np.nextafter(s32[allowed], np.float32(np.inf)))))
    n_row = np.full(probe_people, float(tp * n_gal_t))
    n_col = np.full(gallery_people, float(tg * n_probe_t))
    cell_n_sq = float(probe_people * gallery_people * (tp * tg) ** 2)
    parts = []
    thresholds.sort(key=lambda p: p[1])
    for _, t in thresholds:
        hit = sc.astype(np.float32) >= np.float32(t)
        cell = (pi[hit] // tp) * gallery_people + gi[hit] // tg
        uniq, counts = np.unique(cell, return_counts=True)
        parts.append(two_way_variance(uniq // gallery_people, uniq % gallery_people, counts,
                                      np.full(uniq.size, float(tp * tg)), n_row, n_col, cell_n_sq))
    out = []
    for (x, t), part in zip(thresholds, people_interval(parts, confidence)):
        truth = pop.fmr(t)
        cp = clopper_pearson(int(part["count"]), int(n), confidence)
        out.append({"population": pop.name, "gallery_people": gallery_people, "target": x, "count": int(part["count"]),
                    "truth": truth, "new": bool(part["low"] <= truth <= part["high"]), "old": bool(cp[0] <= truth <= cp[1])})
    return out


def fmr_study(reps: int = 100, galleries=(300, 1000), probes: int = 2000, seed0: int = 0) -> list[dict]:
    lc = _lookalike_study()
    rows = []
    for pop in lc.POPULATIONS:
        probe_people = max(1, probes // pop.probe_templates)
        for g in galleries:
            t0 = pop.low_level(g)
            for r in range(reps):
                rows.extend(one_fmr_audit(pop, probe_people, g, seed0 + 7919 * r + g, t0))
    return rows


# ------------------------------------------------------------------ 4. per-group FMR and its claims

@dataclass(frozen=True)
class HubPopulation:
    """Impostor comparisons with exact per-group FMR, clustered by probe people and gallery people.

    A comparison of a probe image of group ``a`` (its probe person ``r``) with a template of gallery
    person ``j`` is a false match with probability ``q_a * u_r * v_j``: ``u`` is a probe person's
    attraction (a share ``probe_share`` at ``probe_high``, the rest at the level that makes its mean
    1), ``v`` a gallery person's (a share ``hub_share`` of *hubs* at ``hub_high``, the rest making
    the mean 1). Every law has mean 1, so group ``a``'s true FMR (what new probe people and new
    gallery people of the same kind give) is exactly ``q_a``, and a cross-group cell's is ``q_a``.
    ``mixed``: the share of probe people whose images carry different group labels (per-image
    labels such as age), each image drawn at random."""

    name: str
    q: tuple
    hub_share: float = 0.0
    hub_high: float = 1.0
    probe_share: float = 0.0
    probe_high: float = 1.0
    mixed: float = 0.0

    @staticmethod
    def _law(rng, n, share, high):
        if share <= 0 or high <= 1:
            return np.ones(n)
        low = (1 - share * high) / (1 - share)
        return np.where(rng.random(n) < share, high, max(low, 0.0))

    def simulate(self, rng, probe_people: int, gallery_people: int, probe_images=(1, 3), gallery_images=(1, 2)):
        k = len(self.q)
        u = self._law(rng, probe_people, self.probe_share, self.probe_high)
        v = self._law(rng, gallery_people, self.hub_share, self.hub_high)
        tp = rng.integers(probe_images[0], probe_images[1] + 1, probe_people)
        tg = rng.integers(gallery_images[0], gallery_images[1] + 1, gallery_people)
        person = np.repeat(np.arange(probe_people), tp)
        home = rng.integers(0, k, probe_people)
        mixed_people = rng.random(probe_people) < self.mixed
        group = np.where(mixed_people[person], rng.integers(0, k, person.size), home[person])
        g_person = np.repeat(np.arange(gallery_people), tg)
        g_group = rng.integers(0, k, gallery_people)[g_person]
        # per (probe image, gallery template): counts by (probe image, gallery person, template group)
        p = np.minimum(np.asarray(self.q)[group][:, None] * u[person][:, None] * v[g_person][None, :], 1.0)
        hits = rng.random(p.shape) < p
        pi, gi = np.nonzero(hits)
        return {"person": person, "group": group, "g_person": g_person, "g_group": g_group, "hit_probe": pi,
                "hit_template": gi, "tg": tg}


HUB_POPULATIONS = [
    HubPopulation("equal groups, independent", (1e-3,) * 3),
    HubPopulation("equal groups, 2% of probe people attract most", (1e-3,) * 3, probe_share=0.02, probe_high=40.0),
    HubPopulation("equal groups, 0.5% gallery hubs attract most", (1e-3,) * 3, hub_share=0.005, hub_high=150.0),
    HubPopulation("equal groups, 2% gallery hubs attract most", (1e-3,) * 3, hub_share=0.02, hub_high=40.0),
    HubPopulation("equal groups, 1% hubs, per-image labels", (1e-3,) * 3, hub_share=0.01, hub_high=80.0, mixed=0.3),
    HubPopulation("3x difference, 1% gallery hubs", (1e-3, 1e-3, 3e-3), hub_share=0.01, hub_high=80.0),
]


def one_group_fmr_audit(pop: HubPopulation, seed: int, probe_people: int = 400, gallery_people: int = 400,
                        confidence: float = 0.95) -> dict:
    """Per-group FMR intervals and the FMR claims of a demographic section, both ways: two-way
    (probe people and gallery people: what the audit does) and probe people only (before)."""
    from faceaudit.analyses import demographics as dem
    from faceaudit.analyses import lookalikes as look

    rng = np.random.default_rng(seed)
    sim = pop.simulate(rng, probe_people, gallery_people)
    k = len(pop.q)
    person, group, g_person, g_group = sim["person"], sim["group"], sim["g_person"], sim["g_group"]
    n_gal_t = g_person.size
    # the engine's per-probe, per-gallery-group counts and comparisons (no mates: all non-enrolled)
    comps = np.zeros((person.size, k))
    comps[:] = np.bincount(g_group, minlength=k)[None, :]
    counts = np.zeros((person.size, k))
    np.add.at(counts, (sim["hit_probe"], g_group[sim["hit_template"]]), 1.0)
    # the split lookalikes.probe_pairs gives: (probe, gallery person, template group) with a count
    key = (sim["hit_probe"] * gallery_people + g_person[sim["hit_template"]]) * k + g_group[sim["hit_template"]]
    uk, cnt = np.unique(key, return_counts=True)
    layout = {"probe_person": person, "mate": np.full(person.size, -1), "g_templates": sim["tg"],
              "gallery_people": gallery_people, "gallery_rows": np.arange(n_gal_t), "gallery_person": g_person,
              "t_row": np.bincount(person, minlength=probe_people)}
    pairs = {"probe": uk // k // gallery_people, "person": (uk // k) % gallery_people, "group": uk % k,
             "counts": cnt[:, None], "edges": np.zeros(1, np.float32), "layout": layout}
    groups = np.array([f"g{i}" for i in range(k)], dtype=object)
    present = np.arange(k)
    given = look.group_design_effects(look.group_parts(pairs, group, g_group, present))
    per_probe = {"fmr": (counts.sum(1), comps.sum(1), np.ones(person.size))}
    w = np.ones((1, probe_people))
    out = {}
    for name, de in (("two-way", {"fmr": given}), ("probe people", None)):
        fig = dem.group_figures(per_probe, person, group, groups, w, min_group_size=1, confidence=confidence,
                                design_effects=de)
        rates, _ = fig["claim_input"]["fmr"]
        lo, hi = rates.interval(confidence)
        covered = [bool(lo[g] <= pop.q[g] <= hi[g]) for g in range(k)]
        family = claims_.Family(claims_.n_pairs(k), confidence)
        a, b = np.triu_indices(k, 1)
        c = rates.contrast(a, b, family.level)
        truth = np.log(np.asarray(pop.q)[a] / np.asarray(pop.q)[b])
        wrong = ((np.log(np.maximum(c["ratio_low"], 1e-300)) > truth) | (np.log(c["ratio_high"]) < truth))
        out[name] = {"covered": covered, "claim": bool(np.any((c["ratio_low"] > 1) | (c["ratio_high"] < 1))),
                     "false_claim": bool(np.any(wrong)), "deff": float(np.mean(rates.design_effect))}
    # the cross-group cells (two-way): each at the stated confidence
    cells = [(a, b) for a in range(k) for b in range(k)]
    parts = look.group_parts(pairs, group, g_group, [a for a, _ in cells], [b for _, b in cells])
    d = look.group_design_effects(parts)
    from auditcore.intervals import korn_graubard
    kg = korn_graubard(np.array([[p["count"] for p in parts]]), np.array([[p["comparisons"] for p in parts]]),
                       confidence, **d)
    out["cells"] = [bool(kg["low"][i] <= pop.q[a] <= kg["high"][i]) for i, (a, _) in enumerate(cells)]
    return out


def group_fmr_study(reps: int = 100, seed0: int = 0, populations=HUB_POPULATIONS, galleries=(400, 1500, 4000),
                    **kw) -> dict:
    """Coverage and claim rates per (population, gallery people)."""
    res = {}
    for pop in populations:
        for g in galleries:
            runs = [one_group_fmr_audit(pop, seed0 + 1009 * r + g, gallery_people=g, **kw) for r in range(reps)]
            res[(pop.name, g)] = {
                **{f"{m} coverage": float(np.mean([x[m]["covered"] for x in runs])) for m in ("two-way", "probe people")},
                **{f"{m} claims": float(np.mean([x[m]["claim"] for x in runs])) for m in ("two-way", "probe people")},
                **{f"{m} wrong claims": float(np.mean([x[m]["false_claim"] for x in runs])) for m in ("two-way", "probe people")},
                "cells coverage": float(np.mean([x["cells"] for x in runs])),
                "design effect": float(np.mean([x["two-way"]["deff"] for x in runs]))}
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=400)
    ap.add_argument("--which", nargs="+", default=["summaries", "paired", "fmr", "group_fmr"])
    args = ap.parse_args()
    t = time.time()
    if "summaries" in args.which:
        print(f"1. FDR / GARBE / inequity rate: coverage of the true summary ({args.reps} runs each; 4 groups of "
              f"{', '.join(map(str, GROUP_PEOPLE))} people)")
        for setting, r in summary_study(args.reps).items():
            print(f"  {setting:48s} " + "  ".join(f"{k}: new {v['new']:.3f} old {v['old']:.3f}" for k, v in r.items()))
    if "paired" in args.which:
        print(f"2. compare, per-group paired difference A - B: coverage ({args.reps} runs each; 300 people, "
              "1-4 searches each)")
        for setting, r in paired_study(args.reps).items():
            print(f"  {setting:50s} new {r['new']:.3f}  old {r['old']:.3f}  (old interval [x, x]: {r['old_zero_width']:.3f})")
    if "fmr" in args.which:
        import pandas as pd
        reps = max(args.reps // 4, 10)
        rows = pd.DataFrame(fmr_study(reps))
        print(f"3. verification FMR at FMR targets 1e-3, 1e-4, 1e-5: coverage ({reps} runs per population and gallery)")
        tab = rows.groupby(["population", "gallery_people"])[["new", "old"]].mean()
        print(tab.to_string(float_format=lambda v: f"{v:.3f}"))
        print(f"  all {len(rows):,} cases: new {rows['new'].mean():.3f}, old {rows['old'].mean():.3f}; "
              f"by target: {rows.groupby('target')['new'].mean().round(3).to_dict()}")
    if "group_fmr" in args.which:
        reps = max(args.reps // 4, 10)
        import pandas as pd
        print(f"4. per-group FMR (3 groups; 400 probe people with 1-3 images, gallery people with 1-2 templates): "
              f"coverage of each group's true FMR and of each cross-group cell's; share of runs with an FMR ratio "
              f"claim (any pair, simultaneous) and with a wrong one ({reps} runs per population and gallery)")
        tab = pd.DataFrame(group_fmr_study(reps)).T
        tab.index.names = ["population", "gallery people"]
        with pd.option_context("display.width", 250, "display.max_columns", 20):
            print(tab.to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"({time.time() - t:.0f} s)")


if __name__ == "__main__":
    main()

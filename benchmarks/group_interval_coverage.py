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

People: each person's error probability is drawn from a law with an exact mean (all equal;
Beta; or a "few people attract most errors" mixture where 2% of people have a rate 0.3 and carry
about three quarters of the errors), and each person has a random number of trials, so a group's
true rate (what a new sample of people of the same kind estimates) is the law's mean.

    python benchmarks/group_interval_coverage.py [--reps 400] [--which summaries paired fmr]

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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=400)
    ap.add_argument("--which", nargs="+", default=["summaries", "paired", "fmr"])
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
    print(f"({time.time() - t:.0f} s)")


if __name__ == "__main__":
    main()

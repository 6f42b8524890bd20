"""Simulation study: does the interval on "expected look-alikes per search" (N x c x FMR(T)) hold
the exact truth when people differ?

Score-level populations of *people* with an exactly known FMR(T): the score of a probe template of
person i against a gallery template of person j is ``X + a_i + b_j``, X i.i.d. from a base law
(light: normal(0, 0.1); heavy: Student t(4) x 0.07), ``a_i`` the probe person's offset and ``b_j``
the gallery person's (0 for everyone; or a share of people shifted: "a small share of probes,
or of gallery people, attract most look-alikes"; or normal offsets, as a 9-point Gauss-Hermite
law so that the truth stays exact). Then, exactly, FMR(T) = sum_ab w_a w_b q(T - a - b), q the
base exceedance, and the expected look-alikes per search at any N is N c FMR(T).

One audit: ``probe_people`` people with ``probe_templates`` non-mated searches each, a gallery
of ``gallery_people`` people with ``gallery_templates`` templates each. Only the comparisons that
matter are drawn: for every pair of offset levels, how many of its comparisons reach a low
level T0 (binomial), which ones (uniformly), and their scores (the base law above T0, by inverse
transform); below T0 nothing is needed. T0 lies where the population's FPIR is 35%, so every
operating threshold (measured FPIR 10%, 1%, 0.1%, chosen from the audit's own searches, as
faceaudit does) lies above it. At each threshold the study computes the old interval
(Clopper-Pearson on the comparison count) and the new one
(:mod:`faceaudit.analyses.lookalikes`: two-way people design effect), and whether each holds the
exact FMR(T) (coverage is the same at every gallery size N the figure is carried to: N c FMR
scales both ends).

    python benchmarks/lookalike_coverage.py [--reps 400] [--gallery 300 1000 3000] [--probes 3000]

Prints coverage by population and audited gallery size, old and new, and the intervals' widths.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from auditcore.intervals import clopper_pearson
from faceaudit.analyses.lookalikes import people_interval, two_way_variance

BASES = {"light": lambda: stats.norm(0.0, 0.1), "heavy": lambda: stats.t(4, 0.0, 0.07)}


def _levels(share: float, shift: float, sd: float):
    if sd > 0:
        x, w = special.roots_hermitenorm(9)
        return x * sd, w / w.sum()
    if share > 0:
        return np.array([0.0, shift]), np.array([1 - share, share])
    return np.array([0.0]), np.array([1.0])


@dataclass(frozen=True)
class PeoplePopulation:
    name: str
    base: str = "light"
    probe_share: float = 0.0
    probe_shift: float = 0.0
    probe_sd: float = 0.0
    gallery_share: float = 0.0
    gallery_shift: float = 0.0
    gallery_sd: float = 0.0
    probe_templates: int = 1
    gallery_templates: int = 1

    def probe_levels(self):
        return _levels(self.probe_share, self.probe_shift, self.probe_sd)

    def gallery_levels(self):
        return _levels(self.gallery_share, self.gallery_shift, self.gallery_sd)

    def fmr(self, t: float) -> float:
        """Exact FMR(T): the share of impostor comparisons >= T over new people of the same kind."""
        (a, wa), (b, wb) = self.probe_levels(), self.gallery_levels()
        q = BASES[self.base]().sf(t - a[:, None] - b[None, :])
        return float((wa[:, None] * wb[None, :] * q).sum())

    def fpir(self, t: float, gallery_people: int) -> float:
        """Exact FPIR(T) of one search at this gallery size (gallery people drawn independently)."""
        (a, wa), (b, wb) = self.probe_levels(), self.gallery_levels()
        q = BASES[self.base]().sf(t - a[:, None] - b[None, :])
        none_one_person = (wb[None, :] * (1 - q) ** self.gallery_templates).sum(1)
        return float(1 - (wa * none_one_person ** gallery_people).sum())

    def low_level(self, gallery_people: int, fpir: float = 0.35) -> float:
        lo, hi = -1.0, 3.0
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if self.fpir(mid, gallery_people) > fpir else (lo, mid)
        return lo

    def simulate(self, probe_people: int, gallery_people: int, rng, t0: float):
        """The comparisons >= t0 of one audit: (probe template, gallery template, score), and its layout."""
        (a, wa), (b, wb) = self.probe_levels(), self.gallery_levels()
        base = BASES[self.base]()
        la = rng.choice(a.size, probe_people, p=wa)
        lb = rng.choice(b.size, gallery_people, p=wb)
        tp, tg = self.probe_templates, self.gallery_templates
        p_level = np.repeat(la, tp)   # per probe template
        g_level = np.repeat(lb, tg)   # per gallery template
        pi, gi, sc = [], [], []
        for i in range(a.size):
            rows = np.flatnonzero(p_level == i)
            for j in range(b.size):
                cols = np.flatnonzero(g_level == j)
                n_pairs = rows.size * cols.size
                if n_pairs == 0:
                    continue
                q0 = float(base.sf(t0 - a[i] - b[j]))
                k = int(rng.binomial(n_pairs, q0))
                if k == 0:
                    continue
                at = rng.choice(n_pairs, k, replace=False)
                pi.append(rows[at // cols.size])
                gi.append(cols[at % cols.size])
                sc.append(a[i] + b[j] + base.isf(rng.random(k) * q0))
        def cat(xs, dt):
            return np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)

        # people at the top offset level (those who attract most look-alikes, in a two-point law)
        carriers = (int((la == a.size - 1).sum()) if a.size == 2 else None,
                    int((lb == b.size - 1).sum()) if b.size == 2 else None)
        return cat(pi, np.int64), cat(gi, np.int64), cat(sc, np.float64), carriers


POPULATIONS = [
    PeoplePopulation("independent"),
    PeoplePopulation("5% of probes +0.15", probe_share=0.05, probe_shift=0.15),
    PeoplePopulation("0.5% of probes +0.3 (most look-alikes)", probe_share=0.005, probe_shift=0.3),
    PeoplePopulation("0.5% of gallery people +0.3", gallery_share=0.005, gallery_shift=0.3),
    PeoplePopulation("0.5% of probes and 0.5% of gallery people +0.3", probe_share=0.005, probe_shift=0.3,
                     gallery_share=0.005, gallery_shift=0.3),
    PeoplePopulation("normal offsets, both sides, sd 0.04", probe_sd=0.04, gallery_sd=0.04),
    PeoplePopulation("heavy tail, 1% of probes +0.2", base="heavy", probe_share=0.01, probe_shift=0.2),
    PeoplePopulation("1% of people +0.3, 3 images a probe person, 2 a gallery person", probe_share=0.01,
                     probe_shift=0.3, gallery_share=0.01, gallery_shift=0.3, probe_templates=3, gallery_templates=2),
]


def one_audit(pop: PeoplePopulation, probe_people: int, gallery_people: int, seed: int, t0: float,
              targets=(0.1, 0.01, 0.001), confidence: float = 0.95) -> list[dict]:
    """The old and new intervals at each operating threshold of one simulated audit."""
    from faceaudit.metrics.identification import threshold_at_fpir
    rng = np.random.default_rng(seed)
    pi, gi, sc, carriers = pop.simulate(probe_people, gallery_people, rng, t0)
    tp, tg = pop.probe_templates, pop.gallery_templates
    n_probe_t, n_gal_t = probe_people * tp, gallery_people * tg
    best = np.full(n_probe_t, -np.inf)
    np.maximum.at(best, pi, sc)
    thresholds = []
    for target in targets:
        t = threshold_at_fpir(best.astype(np.float32), target).threshold
        if t is not None and np.isfinite(t) and t > t0:
            thresholds.append(float(t))
    thresholds = sorted(set(thresholds))
    n_row = np.full(probe_people, float(tp * n_gal_t))
    n_col = np.full(gallery_people, float(tg * n_probe_t))
    cell_n_sq = float(probe_people * gallery_people * (tp * tg) ** 2)
    n = float(n_probe_t * n_gal_t)
    parts = []
    for t in thresholds:
        hit = sc >= np.float32(t)
        cell = (pi[hit] // tp) * gallery_people + gi[hit] // tg
        uniq, counts = np.unique(cell, return_counts=True)
        rows, cols = uniq // gallery_people, uniq % gallery_people
        parts.append(two_way_variance(rows, cols, counts, np.full(uniq.size, float(tp * tg)), n_row, n_col, cell_n_sq))
    out = []
    for t, target, part in zip(thresholds, sorted(targets, reverse=True), people_interval(parts, confidence)):
        truth = pop.fmr(t)
        k = int(part["count"])
        cp = clopper_pearson(k, int(n), confidence)
        out.append({"population": pop.name, "gallery_people": gallery_people, "seed": seed, "target": target,
                    "threshold": t, "count": k, "truth": truth, "point": k / n,
                    "old_lo": cp[0], "old_hi": cp[1], "new_lo": part["low"], "new_hi": part["high"],
                    "old_covered": bool(cp[0] <= truth <= cp[1]),
                    "new_covered": bool(part["low"] <= truth <= part["high"]),
                    "point_inside": bool(part["low"] <= k / n <= part["high"]),
                    "design_effect": part["design_effect_used"], "probe_carriers": carriers[0],
                    "gallery_carriers": carriers[1]})
    return out


def study(populations=POPULATIONS, galleries=(300, 1000, 3000), probes: int = 3000, reps: int = 400,
          seed0: int = 0) -> list[dict]:
    rows = []
    for pop in populations:
        probe_people = max(1, probes // pop.probe_templates)
        for g in galleries:
            gallery_people = max(1, g)
            t0 = pop.low_level(gallery_people)
            for r in range(reps):
                rows.extend(one_audit(pop, probe_people, gallery_people, seed0 + 7919 * r + g, t0))
    return rows


def main() -> None:
    import pandas as pd
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=400)
    ap.add_argument("--gallery", type=int, nargs="+", default=[300, 1000, 3000])
    ap.add_argument("--probes", type=int, default=3000)
    ap.add_argument("--detail", action="store_true", help="also by operating threshold within each population and gallery")
    args = ap.parse_args()
    t0 = time.time()
    df = pd.DataFrame(study(galleries=tuple(args.gallery), probes=args.probes, reps=args.reps))
    pd.set_option("display.width", 220)
    pd.set_option("display.max_colwidth", 70)
    print(f"{len(df)} (population, gallery, audit, threshold) cases, {args.reps} audits each, {time.time() - t0:.0f} s")
    df["old_width"] = (df.old_hi - df.old_lo) / df.truth
    df["new_width"] = (df.new_hi - df.new_lo) / df.truth
    print("\ncoverage of the 95% interval on FMR (and on N x c x FMR at every N), old (Clopper-Pearson on comparisons) "
          "and new (two-way people), by population and audited gallery size:")
    tab = df.groupby(["population", "gallery_people"]).agg(old=("old_covered", "mean"), new=("new_covered", "mean"),
                                                          old_width=("old_width", "median"),
                                                          new_width=("new_width", "median"))
    print(tab.round(3).to_string())
    if args.detail:
        print(df.groupby(["population", "gallery_people", "target"])[["old_covered", "new_covered", "count"]].mean()
              .round(3).to_string())
    print("\nby operating threshold (measured FPIR):")
    print(df.groupby("target")[["old_covered", "new_covered"]].mean().round(3).to_string())
    shifted = df[df.gallery_carriers.notna()]
    if len(shifted):
        print("\ngallery-side populations: coverage by whether the audited gallery holds any of the people who attract "
              "most look-alikes (none: the data cannot show them):")
        print(shifted.assign(any_in_gallery=shifted.gallery_carriers > 0)
              .groupby(["population", "gallery_people", "any_in_gallery"])
              .agg(audits=("new_covered", "size"), new=("new_covered", "mean")).round(3).to_string())
    print(f"\nall: old {df.old_covered.mean():.3f}, new {df.new_covered.mean():.3f}; lowest new coverage of any "
          f"(population, gallery): {tab.new.min():.3f}; point inside its band: {df.point_inside.mean():.3f}")


if __name__ == "__main__":
    main()

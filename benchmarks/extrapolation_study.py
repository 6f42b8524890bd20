"""Simulation study: do faceaudit's extrapolated FPIR(N) bands hold the exact truth?

Populations with exactly known FPIR(N) (light, heavy and bounded impostor tails; probes
independent, or heterogeneous: a share of probes shifted towards look-alikes, or normal
offsets), each audited at a gallery of N0 people with nested sub-galleries, then extrapolated
to N = 1e4 .. 1e10 at the thresholds where the measured FPIR is 10%, 1% and 0.1%.

    python benchmarks/extrapolation_study.py [--seeds 3] [--gallery 1000] [--nonmated 3000]

Prints coverage of the 95% bands by N and by population, the share of cases with a figure
(band narrow enough), and how close those figures are to the truth.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from faceaudit.analyses.simscores import POPULATIONS, extrapolation_study


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--gallery", type=int, default=1000)
    ap.add_argument("--nonmated", type=int, default=3000)
    args = ap.parse_args()
    t0 = time.time()
    df = pd.DataFrame(extrapolation_study(seeds=tuple(range(args.seeds)), n_gallery=args.gallery,
                                          n_nonmated=args.nonmated))
    pd.set_option("display.width", 200)
    print(f"{len(df)} (population, seed, threshold, N) cases, {time.time() - t0:.0f} s")
    print("\ncoverage of the 95% band and share with a figure, by N:")
    print(df.groupby("n")[["covered", "estimable"]].mean().round(3).to_string())
    print("\nby population:")
    print(df.groupby("population")[["covered", "estimable"]].mean().round(3).to_string())
    est = df[df.estimable]
    print(f"\ncases with a figure: {len(est)}; figure within 2x of the truth: {est.point_within_2x.mean():.3f}; "
          f"band covers: {est.covered.mean():.3f}")
    missed = df[~df.covered]
    if len(missed):
        print("\nmisses:")
        print(missed[["population", "seed", "target", "n", "truth", "lo", "hi"]].to_string())


if __name__ == "__main__":
    main()

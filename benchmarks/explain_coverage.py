"""explain's coverage for new people, on score-level populations with exact answers.

The population and its exact answer for new people are tests/test_explain_people.py's
(``PeoplePopulation``: 800 people, 400 enrolled, ~2,300 searches, 5% of people prone to
look-alikes, 2% of enrolled people attracting look-alikes from everyone). One audit per seed;
explain fitted on it; its interval checked against the exact answer at 8 scores where that
answer lies between 3% and 97%, at each gallery size. Prints per size: cases, intervals that
hold the truth, how many answers say "these data cannot say" (band wider than half of [0, 1])
and the median width.

    python benchmarks/explain_coverage.py --seeds 6 --resamples 200 --sizes 400 10000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_explain_people import POP, _scores_to_check

from faceaudit.analyses.explain import ScoreModel, explain, lean_tail


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--resamples", type=int, default=200)
    ap.add_argument("--sizes", type=int, nargs="+", default=[400, 10_000])
    ap.add_argument("--resample", default="people", choices=["people", "searches"])
    args = ap.parse_args()
    t0 = time.time()
    rows = {n: [] for n in args.sizes}
    for seed in range(args.seeds):
        res = POP.audit(seed=seed)
        model = ScoreModel.from_search(res, tail=lean_tail(res.impostor_hist))
        for n in args.sizes:
            for s in _scores_to_check(POP, n):
                out = explain(model, float(s), n, prior=0.5, n_boot=args.resamples, resample=args.resample)
                lo, hi = out["interval"]
                truth = float(POP.truth(s, n)[0])
                rows[n].append((lo <= truth <= hi, out["statement"], hi - lo))
    for n, r in rows.items():
        held = sum(x[0] for x in r)
        said = [x for x in r if x[1] != "cannot_say"]
        print(f"N = {n:>9,}: interval holds the exact answer for new people in {held}/{len(r)} ({held / len(r):.0%}); "
              f"'these data cannot say' in {len(r) - len(said)}; among the rest {sum(x[0] for x in said)}/{len(said)}; "
              f"median width {np.median([x[2] for x in r]):.3f}")
    print(f"({args.seeds} audits, {args.resamples} resamples of {args.resample}, {time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()

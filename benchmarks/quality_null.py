"""How often `faceaudit quality` claims a difference when there is none (issue #30).

    nice python benchmarks/quality_null.py               # 108 settings x 1000 seeds, about 3 minutes
    python benchmarks/quality_null.py --seeds 200 --quick

The same searches at a clean and a degraded level, simulated so that the null holds exactly: the
two outcomes of a search are exchangeable given the person. Person i has an error propensity
``q_i``; each search has its own latent ``r ~ Beta(q_i c, (1 - q_i) c)`` shared by its two levels
(``c`` small: a hard search stays hard at both; ``c`` infinite: ``r = q_i``) and its two outcomes
are independent Bernoulli(``r``) draws. So outcomes are correlated within a person and across
levels, yet neither level is worse. Populations (``q_i``):

* ``few``: 2% of people (drawn per study, so some studies have none, some several) carry up to
  90% of the errors (their ``q = min(0.9, 0.9 * rate / 0.02)``), the rest a beta with the
  remaining mean and intra-person correlation 0.2; a person's searches independent given ``q_i``;
* ``few-hard``: 5% of people carry up to 90%, ``c = 4``;
* ``some``: 3% carry up to 60%, ``c = 1``;
* ``none``: no heavy tail (the beta for everyone), ``c = 1``.

People 50, 150, 400; searches per person 1, 1 to 5 (uniform) or 5; rates 1%, 5%, 20%.

Each simulated study goes through the real :func:`faceaudit.analyses.quality.compare_rates` with
the weights the study builds (:func:`auditcore.bootstrap.subject_weights`, 1000 resamples, the
study's seed: here one of 20 seeds per setting, reused in turn to keep the run short), and the
sentence rules of :func:`faceaudit.analyses.quality.summary_sentences`:

* ``fnir``: :func:`~faceaudit.analyses.quality.difference_verdict` ("missed more/less often";
  the same rule, on the same interval, gives ``faceaudit compare``'s verdict on two studies);
* ``fpir``: :func:`~faceaudit.analyses.quality.fpir_claims_change` ("returned a candidate X times
  as often" with no "cannot tell it from no change"), in the sentence's branch (errors at both
  levels, some search changed outcome);
* ``fpir_old``: the FPIR rule before #30 (the ratio's people-bootstrap percentile interval
  excludes 1), kept here to show that the simulation catches a rule that claims too often.

FNIR and FPIR searches differ only in which rule reads them, so each simulated study is read by
every rule. Printed per setting: how often each rule claimed a difference, with a 95%
Clopper-Pearson interval over the studies; a rule fails a setting where the interval lies above
5%. Exit status 1 if ``fnir`` or ``fpir`` fails any. A last block has a true difference (the
degraded level's search rate ``ratio`` times the clean one) to show the rules are not blind.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time

import numpy as np

from auditcore import bootstrap as boot_
from auditcore.intervals import rate
from faceaudit.analyses import quality as q

N_BOOT = 1000
WEIGHT_SEEDS = 20
RULES = ("fnir", "fpir", "fpir_old")
POWER = [("some", 150, "1-5", 0.05, 2.0), ("some", 400, "1-5", 0.05, 2.0), ("some", 400, "1-5", 0.01, 3.0),
         ("some", 150, "1-5", 0.20, 1.5), ("few", 400, "1-5", 0.05, 2.0)]


def old_fpir_rule(cmp: dict) -> bool:
    """The FPIR rule before #30: a change claimed where the ratio's bootstrap interval excludes 1."""
    ci = (cmp.get("ratio") or {}).get("ci") or [None, None]
    return not (ci[0] is None or ci[1] is None or ci[0] <= 1 <= ci[1])


def rules(cmp: dict) -> dict:
    """Which rules claim a difference on one comparison, as summary_sentences reads it."""
    fp_sentence = (cmp["n"] and cmp["b"]["errors"] > 0 and cmp["a"]["errors"] > 0
                   and (cmp["discordant"]["a_only"] or cmp["discordant"]["b_only"]))  # the ratio branch
    return {"fnir": q.difference_verdict(cmp) is not None,
            "fpir": bool(fp_sentence) and q.fpir_claims_change(cmp),
            "fpir_old": bool(fp_sentence) and old_fpir_rule(cmp)}


def searches_per_person(rng, people: int, per: str) -> np.ndarray:
    if per == "1-5":
        return rng.integers(1, 6, people)
    return np.full(people, int(per))


POPULATIONS = {  # name: (share of heavy people, share of errors they carry at most, search concentration c)
    "few": (0.02, 0.9, np.inf),
    "few-hard": (0.05, 0.9, 4.0),
    "some": (0.03, 0.6, 1.0),
    "none": (0.0, 0.0, 1.0),
}


def propensities(rng, people: int, base: float, heavy: float, share: float, icc: float = 0.2) -> np.ndarray:
    """Per-person error propensity: a share ``heavy`` of people at a rate carrying up to ``share`` of
    the errors (at most 0.9), the rest from a beta with the remaining mean."""
    is_heavy = rng.random(people) < heavy
    high = min(0.9, share * base / heavy) if heavy > 0 else 0.0
    mean = (base - heavy * high) / (1 - heavy)
    c = 1 / icc - 1
    rest = rng.beta(mean * c, (1 - mean) * c, people)
    return np.where(is_heavy, high, rest)


def simulate(rng, people: int, per: str, base: float, population: str, ratio: float = 1.0):
    """(wrong at the degraded level, wrong at the clean level, person code) for one study. With
    ``ratio`` 1 the two outcomes of a search are exchangeable; otherwise the degraded level's search
    rate is ``min(1, ratio * r)``."""
    heavy, share, concentration = POPULATIONS[population]
    k = searches_per_person(rng, people, per)
    subject = np.repeat(np.arange(people), k)
    qi = np.clip(propensities(rng, people, base, heavy, share)[subject], 1e-9, 1 - 1e-9)
    r = qi if np.isinf(concentration) else rng.beta(qi * concentration, (1 - qi) * concentration)
    clean = rng.random(subject.size) < r
    degraded = rng.random(subject.size) < np.minimum(1.0, ratio * r)
    return degraded, clean, subject


def run_setting(people: int, per: str, base: float, population: str, seeds: int, ratio: float = 1.0,
                setting: int = 0) -> dict:
    weights = [boot_.subject_weights(people, N_BOOT, s) for s in range(WEIGHT_SEEDS)]
    claims = dict.fromkeys(RULES, 0)
    errors = 0
    for seed in range(seeds):
        rng = np.random.default_rng([setting, seed])
        a, b, subject = simulate(rng, people, per, base, population, ratio)
        errors += int(b.sum())
        cmp = q.compare_rates(a, b, subject, weights[seed % WEIGHT_SEEDS])
        for name, claimed in rules(cmp).items():
            claims[name] += claimed
    return {"claims": claims, "seeds": seeds, "clean_rate": errors / max(1, seeds)}


def settings(quick: bool):
    people = (50, 400) if quick else (50, 150, 400)
    per = ("1", "1-5", "5")
    bases = (0.01, 0.05, 0.2)
    populations = ("few", "some") if quick else tuple(POPULATIONS)
    return list(itertools.product(populations, people, per, bases))


def _cells(out: dict) -> tuple[str, dict]:
    rates = {name: rate(out["claims"][name], out["seeds"]) for name in RULES}
    return "  ".join(f"{100 * c.value:5.1f}% [{100 * c.ci_low:4.1f}, {100 * c.ci_high:4.1f}]".rjust(20)
                     for c in rates.values()), rates


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=1000, help="simulated studies per setting (default 1000)")
    ap.add_argument("--quick", action="store_true", help="fewer settings (populations 'few' and 'some' only)")
    ap.add_argument("--power-seeds", type=int, default=300, help="simulated studies per non-null setting")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    print(f"claims of a difference under the null: {args.seeds} simulated studies per setting, {N_BOOT} "
          "people-bootstrap resamples; [95% Clopper-Pearson interval over studies]")
    head = f"{'population':>10} {'people':>6} {'per':>4} {'rate':>5}  " + "  ".join(f"{r:>20}" for r in RULES)
    print(head)
    worst = {name: None for name in RULES}
    above = {name: [] for name in RULES}
    for i, (population, people, per, base) in enumerate(settings(args.quick)):
        out = run_setting(people, per, base, population, args.seeds, setting=i)
        text, rates = _cells(out)
        label = f"{population:>10} {people:>6} {per:>4} {base:>5.2f}"
        print(f"{label}  {text}", flush=True)
        for name, c in rates.items():
            if worst[name] is None or c.value > worst[name][0].value:
                worst[name] = (c, label.split())
            if c.ci_low > 0.05:
                above[name].append(" ".join(label.split()))
    print()
    for name in RULES:
        c, where = worst[name]
        print(f"{name}: highest {100 * c.value:.1f}% [{100 * c.ci_low:.1f}, {100 * c.ci_high:.1f}] ({' '.join(where)}); "
              f"settings whose interval lies above 5%: {len(above[name])}"
              + (f" ({'; '.join(above[name])})" if above[name] else ""))
    print(f"\npower: a true difference (the degraded level's search rate = ratio x the clean one), "
          f"{args.power_seeds} studies each")
    print(head + "  ratio")
    for j, (population, people, per, base, ratio) in enumerate(POWER):
        out = run_setting(people, per, base, population, args.power_seeds, ratio=ratio, setting=1000 + j)
        text, _ = _cells(out)
        print(f"{population:>10} {people:>6} {per:>4} {base:>5.2f}  {text}  {ratio:>5.1f}", flush=True)
    print(f"\n{time.perf_counter() - started:.0f} s")
    return 1 if above["fnir"] or above["fpir"] else 0


if __name__ == "__main__":
    sys.exit(main())

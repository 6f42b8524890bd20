"""Is ``faceaudit explain`` calibrated for new people? LFW split into two halves of people.

    python benchmarks/explain_lfw_halves.py --data ../shared/data --model sface --images 6000 \
        --seed 0 --splits 4 --out /tmp/explain-lfw-sface

Issue 26, item 1, checked independently of the audit's own ``explain_calibration``:

1. Subset (deterministic, as ``benchmarks/quality_study.py`` picks one): LFW people sorted by name;
   ``k`` people with at least two images, evenly spaced through the list, with their first 3
   images (sorted), plus ``round(5 k / 8)`` people with one image, evenly spaced (only ever
   non-mated probes); ``k`` is the largest that keeps the subset within ``--images`` images. The
   manifest (absolute paths, images read in place) is ``<out>/subset.csv``.
2. ``faceaudit embed <out>/subset.csv --model M --out <out>/emb`` (templates come from the cache
   on a second run), then ``faceaudit audit --evalset <out>/emb --out <out>/audit-all``: the
   audit's own out-of-sample check is its results.json ``explain_calibration``.
3. The people who enrolled are split in two halves with nobody in common (seeded: ``--seed``,
   then ``--seed`` + 1, ... for ``--splits`` splits; people with two or more templates and people
   with one split separately): evaluation sets ``<out>/split-SEED/A`` and ``.../B``, each
   audited with ``faceaudit audit --seed SEED`` (its own generated protocol: half of the
   eligible people enrolled).
4. explain is fitted on A's results only (``ScoreModel.from_results`` and its people, as
   ``faceaudit explain <out>/audit-A`` builds them; the people bootstrap, ``--boot`` resamples) and
   asked about B's gallery: gallery size = B's enrolled people, prior = B's share of mated
   searches. For each of B's searches: its top score (the higher of the mate's score and the best
   non-mate's) and whether its top candidate was the mate (a tie goes to the non-mate).
   Searches are binned at quantiles of the top score (``--bins``); per bin, explain's
   prediction is the mean over the bin's searches of explain's answer at each search's top
   score (its 95% interval: the means of the interval's ends), and the observed share has a
   Clopper-Pearson 95% interval (searches taken as independent; a person with several searches
   makes it somewhat narrow). Counted: bins where the two intervals overlap, and bins where the
   observed share lies inside explain's interval (and, as the issue did, where explain's point
   lies inside the observed interval). Also B on A (fitted on B, checked on A), so ``--splits S``
   gives ``2 S`` checks of ``--bins`` bins each.

Nothing is asserted: the figures are printed and written to ``<out>/halves.json``. Everything
is written under ``--out`` (never into the repository).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

SCORE = {"dlib": "neg_euclidean", "sface": "cosine"}


def spaced(seq: list, k: int) -> list:
    k = min(k, len(seq))
    return [seq[i] for i in np.linspace(0, len(seq) - 1, k).round().astype(int)] if k else []


def subset(lfw: Path, images: int, per_person: int = 3) -> pd.DataFrame:
    """The largest evenly spaced subset of at most ``images`` images (see the module docstring)."""
    names = sorted(d.name for d in lfw.iterdir() if d.is_dir())
    files = {n: sorted(p.name for p in (lfw / n).iterdir() if p.suffix.lower() == ".jpg") for n in names}
    multi = [n for n in names if len(files[n]) >= 2]
    single = [n for n in names if len(files[n]) == 1]

    def size(k: int) -> int:
        return sum(min(per_person, len(files[n])) for n in spaced(multi, k)) + len(spaced(single, round(5 * k / 8)))

    lo, hi = 1, len(multi)
    while lo < hi:  # the largest k whose subset fits
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if size(mid) <= images else (lo, mid - 1)
    k = lo
    rows = [(str((lfw / n / f).resolve()), n, f"{n}/{f}") for n in spaced(multi, k) for f in files[n][:per_person]]
    rows += [(str((lfw / n / files[n][0]).resolve()), n, f"{n}/{files[n][0]}") for n in spaced(single, round(5 * k / 8))]
    return pd.DataFrame(rows, columns=["image", "subject_id", "template_id"])


def run(cmd: list[str]) -> float:
    print("$ " + " ".join(cmd), flush=True)
    started = time.perf_counter()
    code = subprocess.call(cmd)
    if code:
        sys.exit(f"command failed with exit status {code}")
    return time.perf_counter() - started


def split(emb: Path, out: Path, seed: int) -> dict:
    """Two evaluation sets with no person in common (templates, manifest and failures)."""
    templates = np.load(emb / "templates.npy")
    man = pd.read_csv(emb / "manifest.csv", dtype=str, keep_default_na=False)
    fail = pd.read_csv(emb / "failures.csv", dtype=str, keep_default_na=False) if (emb / "failures.csv").exists() else None
    counts = man["subject_id"].value_counts()
    rng = np.random.default_rng(seed)
    side = {}
    for group in (sorted(counts.index[counts >= 2]), sorted(counts.index[counts < 2])):
        order = rng.permutation(len(group))
        for rank, i in enumerate(order):
            side[group[i]] = "A" if rank < len(group) // 2 else "B"
    sizes = {}
    for half in ("A", "B"):
        keep = man["subject_id"].map(side).eq(half).to_numpy()
        d = out / half
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        np.save(d / "templates.npy", templates[keep])
        man[keep].to_csv(d / "manifest.csv", index=False)
        if fail is not None:
            fail[fail["subject_id"].map(side).eq(half)].to_csv(d / "failures.csv", index=False)
        sizes[half] = {"templates": int(keep.sum()), "people": int(man.loc[keep, "subject_id"].nunique())}
    return sizes


def outcomes(results: Path) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Each search's top score and whether its top candidate was the mate; prior; gallery size."""
    s = pd.read_parquet(results / "searches.parquet")
    mated = s["mated"].to_numpy(bool)
    mate = s["mate_score"].to_numpy(float)
    best = s["best_nonmate_score"].to_numpy(float)
    with np.errstate(invalid="ignore"):
        y = mated & np.isfinite(mate) & ~(best >= mate)  # a tie goes to the non-mate
    top = np.where(y, mate, best)
    ok = np.isfinite(top)
    res = json.loads((results / "results.json").read_text())
    n = int(res["protocol"]["enrolled_subjects"]) if "enrolled_subjects" in res.get("protocol", {}) else None
    if n is None:
        n = int(s.loc[mated, "subject_id"].nunique())
    return top[ok], y[ok], float(mated.mean()), n


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    a = (1 - confidence) / 2
    lo = 0.0 if k == 0 else float(stats.beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def check(fitted: Path, tested: Path, n_bins: int, n_boot: int, seed: int) -> dict:
    """explain fitted on ``fitted``'s results, checked on ``tested``'s searches (module docstring, 4)."""
    from faceaudit.analyses.explain import (
        ScoreModel,
        explain,
        explain_curves,
        people_from_folder,
    )

    top, y, prior, n = outcomes(tested)
    model = ScoreModel.from_results(fitted)
    model.people = people_from_folder(fitted, model)
    c = explain_curves(model, n, prior, n_boot=n_boot, seed=seed)
    lo_s, hi_s = model.score_range()
    # explain refuses scores outside what the fitted audit observed: those searches are reported apart
    inside = (top >= lo_s) & (top <= hi_s + 0.25 * (hi_s - lo_s))
    pt = np.interp(top, c["grid"], c["point"])
    plo = np.interp(top, c["grid"], c["low"])
    phi = np.interp(top, c["grid"], c["high"])
    edges = np.unique(np.quantile(top, np.linspace(0, 1, n_bins + 1)))
    which = np.clip(np.searchsorted(edges, top, side="right") - 1, 0, edges.size - 2)
    rows = []
    for j in range(edges.size - 1):
        m = which == j
        k, t = int(y[m].sum()), int(m.sum())
        olo, ohi = clopper_pearson(k, t)
        o = k / t
        e, elo, ehi = float(pt[m].mean()), float(plo[m].mean()), float(phi[m].mean())
        # the CLI's own answer at the bin's median top score (the same curves, one score)
        s_med = float(np.median(top[m]))
        cli = explain(model, s_med, n, prior=prior, n_boot=n_boot, seed=seed) if lo_s <= s_med else None
        rows.append({"score_low": float(edges[j]), "score_high": float(edges[j + 1]), "searches": t,
                     "top_was_mate": k, "observed": o, "observed_ci": [olo, ohi],
                     "explain": e, "explain_ci": [elo, ehi],
                     "outside_fitted_range": int((m & ~inside).sum()),
                     "overlap": bool(elo <= ohi and olo <= ehi), "observed_in_explain_ci": bool(elo <= o <= ehi),
                     "explain_in_observed_ci": bool(olo <= e <= ohi),
                     "explain_at_median_score": None if cli is None else {
                         "score": s_med, "value": cli["model_value"], "interval": cli["interval"],
                         "supported": cli["supported"], "display": cli["display"]}})
    return {"fitted_on": str(fitted), "checked_on": str(tested), "gallery_size": n, "prior": prior,
            "searches": int(top.size), "resamples": n_boot, "bins": rows,
            "bins_overlapping": sum(r["overlap"] for r in rows),
            "bins_observed_in_explain_ci": sum(r["observed_in_explain_ci"] for r in rows),
            "bins_explain_in_observed_ci": sum(r["explain_in_observed_ci"] for r in rows)}


def show(name: str, chk: dict, score: str) -> None:
    print(f"\n{name}: gallery {chk['gallery_size']:,} people, prior {chk['prior']:.3f}, {chk['searches']:,} searches")
    unit = "distance" if score == "neg_euclidean" else "score"
    print(f"{'top ' + unit:>22} {'searches':>8} {'observed [CP 95%]':>24} {'explain [95%]':>24}  overlap  obs-in-explain")
    for r in chk["bins"]:
        lo, hi = (-r["score_high"], -r["score_low"]) if score == "neg_euclidean" else (r["score_low"], r["score_high"])
        print(f"{lo:>10.4f} to {hi:<8.4f} {r['searches']:>8} {r['observed']:>8.1%} [{r['observed_ci'][0]:.1%}, "
              f"{r['observed_ci'][1]:.1%}] {r['explain']:>8.1%} [{r['explain_ci'][0]:.1%}, {r['explain_ci'][1]:.1%}]"
              f"  {'yes' if r['overlap'] else 'NO':>7}  {'yes' if r['observed_in_explain_ci'] else 'NO':>14}")
    nb = len(chk["bins"])
    print(f"intervals overlap in {chk['bins_overlapping']} of {nb} bins; observed share inside explain's interval in "
          f"{chk['bins_observed_in_explain_ci']} of {nb}; explain's point inside the observed interval in "
          f"{chk['bins_explain_in_observed_ci']} of {nb}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="the folder holding lfw/")
    parser.add_argument("--model", default="sface", choices=sorted(SCORE))
    parser.add_argument("--images", type=int, default=2533, help="at most this many LFW images")
    parser.add_argument("--seed", type=int, default=0, help="the halves' split and the audits' protocols")
    parser.add_argument("--splits", type=int, default=1, help="halves drawn with seeds SEED, SEED+1, ...")
    parser.add_argument("--bins", type=int, default=8)
    parser.add_argument("--boot", type=int, default=200, help="explain's people resamples (its default)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 2))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    table = subset(args.data / "lfw" / "images", args.images)
    manifest = args.out / "subset.csv"
    table.to_csv(manifest, index=False)
    print(f"{len(table):,} images of {table['subject_id'].nunique():,} people -> {manifest}", flush=True)
    score = SCORE[args.model]
    timings = {"embed": run(["faceaudit", "embed", str(manifest), "--model", args.model, "--workers",
                             str(args.workers), "--out", str(args.out / "emb"), "--overwrite"])}
    timings["audit_all"] = run(["faceaudit", "audit", "--evalset", str(args.out / "emb"), "--score", score,
                                "--seed", str(args.seed), "--out", str(args.out / "audit-all"), "--overwrite"])
    own = json.loads((args.out / "audit-all" / "results.json").read_text()).get("explain_calibration")
    if isinstance(own, dict):
        print(f"\naudit-all explain_calibration: {own.get('bins_agreeing')} of {len(own.get('bins', []))} bins agree "
              f"out of sample ({own.get('held_out')}); overlapping {own.get('bins_overlapping')}\n{own.get('verdict')}")
    checks, sizes = [], {}
    timings["audits_halves"] = timings["explain_checks"] = 0.0
    for seed in range(args.seed, args.seed + args.splits):
        d = args.out / f"split-{seed}"
        sizes[seed] = split(args.out / "emb", d, seed)
        for half in ("A", "B"):
            timings["audits_halves"] += run(["faceaudit", "audit", "--evalset", str(d / half), "--score", score,
                                             "--seed", str(seed), "--out", str(d / f"audit-{half}"), "--overwrite"])
        t0 = time.perf_counter()
        for fit, test in (("A", "B"), ("B", "A")):
            chk = check(d / f"audit-{fit}", d / f"audit-{test}", args.bins, args.boot, seed)
            chk["split_seed"], chk["direction"] = seed, f"{fit} on {test}"
            show(f"split seed {seed}: fitted on {fit}, checked on {test}", chk, score)
            checks.append(chk)
        timings["explain_checks"] += time.perf_counter() - t0
    timings["total"] = time.perf_counter() - started
    bins = [r for c in checks for r in c["bins"]]
    total = {"checks": len(checks), "bins": len(bins), "overlapping": sum(r["overlap"] for r in bins),
             "observed_in_explain_ci": sum(r["observed_in_explain_ci"] for r in bins),
             "explain_in_observed_ci": sum(r["explain_in_observed_ci"] for r in bins)}
    print(f"\nover {total['checks']} checks ({args.splits} splits x 2 directions), {total['bins']} bins: intervals "
          f"overlap in {total['overlapping']}; observed share inside explain's interval in "
          f"{total['observed_in_explain_ci']}; explain's point inside the observed interval in "
          f"{total['explain_in_observed_ci']}")
    out = {"model": args.model, "score": score, "images": len(table), "seed": args.seed, "splits": args.splits,
           "halves": sizes, "audit_explain_calibration": own, "checks": checks, "total": total,
           "seconds": timings, "load_average": os.getloadavg()[0]}
    (args.out / "halves.json").write_text(json.dumps(out, indent=1, default=float))
    print(f"\nwall time {timings['total']:.0f} s (" + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()
                                                     if k != "total") + f") -> {args.out / 'halves.json'}")


if __name__ == "__main__":
    main()

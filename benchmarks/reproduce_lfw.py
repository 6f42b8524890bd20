"""Reproduce published LFW figures with faceaudit's model adapters (dlib or SFace).

    python benchmarks/reproduce_lfw.py --data ../shared/data --out results/lfw-dlib            # dlib
    python benchmarks/reproduce_lfw.py --model sface --out results/lfw-sface                 # OpenCV's SFace
    python benchmarks/reproduce_lfw.py --evalset results/lfw-sface                           # re-score only
    python benchmarks/reproduce_lfw.py --jitter 10 --folds 1     # dlib jitter on a subset only

Embeds the LFW images (deep-funneled release; all 13,233, or with ``--folds K`` only those in
the first K folds of ``pairs.txt``) with :func:`faceaudit.embed.embed_images` (2 workers,
cached: a second run is free, an interrupted one resumes), or reads an existing embedding
folder (``--evalset``, e.g. one from ``faceaudit embed``), then reports:

(a) LFW View 2 ``pairs.txt`` 10-fold verification accuracy, at the model makers' fixed
    threshold and with each fold's threshold chosen on the other nine folds; each both
    counting a pair with a missing template (failure to enrol) as an error, and on the
    pairs where both images enrolled. dlib: "same if Euclidean distance < 0.6" (in
    faceaudit's convention score = -distance, match if score >= T: T = -0.6 with the tie at
    exactly 0.6 going to "different"). SFace: OpenCV's "same if cosine >= 0.363", computed as
    distance = -cosine, "same if distance < -0.363" (a pair at exactly 0.363 would go to
    "different"; the number of such ties is reported, and is 0 on LFW);
(b) BLUFR (all of LFW only): VR at FAR = 0.1% and rank-1 DIR at FAR = 1%, per trial and as
    mean - std over the 10 trials, with faceaudit's operating-point rule (see
    docs/reproduction.md: the DIR figure is not computed with BLUFR's own rule);
(c) enrolment time per image (wall clock with the workers used, from ``embed.json``).

Figures are printed and written to ``<out>/reproduction.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="folder holding lfw/")
    parser.add_argument("--model", choices=("dlib", "sface"), default="dlib")
    parser.add_argument("--out", type=Path, default=None, help="embedding folder (default results/lfw-<model>...)")
    parser.add_argument("--evalset", type=Path, default=None,
                        help="score an existing embedding folder (templates.npy, manifest.csv, embed.json); no embedding")
    parser.add_argument("--jitter", type=int, default=0, help="dlib num_jitters (100 in dlib's published figure)")
    parser.add_argument("--upsample", type=int, default=1, help="dlib: HOG upsampling (1 as dlib's examples)")
    parser.add_argument("--fast-detect", action="store_true", help="dlib: try upsampling 0 first (not dlib's pipeline)")
    parser.add_argument("--no-blufr", action="store_true", help="skip BLUFR (slow: 10 trials of ~50M scores)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache-dir", type=Path, default=None, help="template cache ($FACEAUDIT_CACHE by default)")
    parser.add_argument("--folds", type=int, default=10, help="embed and score only the first K pairs.txt folds")
    return parser.parse_args()


#: model -> (score kind, the makers' fixed threshold as a "distance" for lfw.ten_fold_accuracy, its label)
RULES = {"dlib": ("neg_euclidean", 0.6, "threshold_0.6"), "sface": ("cosine", -0.363, "threshold_cosine_0.363")}


def pair_scores(pairs, templates: np.ndarray, ids, kind: str) -> np.ndarray:
    """A "distance" per pair for lfw.ten_fold_accuracy (smaller = more alike): Euclidean
    distance (dlib) or -cosine (SFace); NaN where an image has no template."""
    from faceaudit.datasets import lfw
    if kind == "neg_euclidean":
        return lfw.pair_distances(pairs, templates, ids)
    x = np.asarray(templates, np.float64)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    index = {t: i for i, t in enumerate(ids)}
    li = np.array([index.get(t, -1) for t in pairs.left])
    ri = np.array([index.get(t, -1) for t in pairs.right])
    ok = (li >= 0) & (ri >= 0)
    dist = np.full(li.size, np.nan)
    dist[ok] = -(x[li[ok]] * x[ri[ok]]).sum(1)
    return dist


def _pairs_report(lfw, pairs, dist: np.ndarray, full: bool, model: str) -> dict:
    """Accuracy at the makers' threshold and (with all 10 folds) with thresholds from the other folds."""
    _, fixed, label = RULES[model]
    out = {"pairs": int(dist.size), "pairs_missing_template": int(np.isnan(dist).sum()),
           "pairs_tied_at_fixed_threshold": int((dist == fixed).sum())}
    for name, exclude in (("missing_counted_wrong", False), ("enrolled_pairs_only", True)):
        out[f"{label}_{name}"] = lfw.ten_fold_accuracy(dist, pairs.same, pairs.fold, fixed_threshold=fixed,
                                                       exclude_missing=exclude)
        if full:
            out[f"threshold_from_other_folds_{name}"] = lfw.ten_fold_accuracy(dist, pairs.same, pairs.fold,
                                                                              exclude_missing=exclude)
    return out


def main() -> None:
    args = _args()
    from faceaudit.datasets import blufr, lfw
    from faceaudit.embed import DEFAULT, ImageItem, embed_images
    from faceaudit.models import load_adapter

    lfw_dir = args.data / "lfw"
    suffix = "" if args.folds == 10 else f"-folds{args.folds}"
    tag = f"dlib-j{args.jitter}" if args.model == "dlib" else args.model
    out = args.evalset or args.out or Path("results") / f"lfw-{tag}{suffix}"
    pairs = lfw.read_pairs(lfw_dir / "pairs.txt")
    if args.folds < 10:
        keep = pairs.fold < args.folds
        pairs = lfw.Pairs(pairs.left[keep], pairs.right[keep], pairs.same[keep], pairs.fold[keep])
        wanted = set(pairs.left) | set(pairs.right)
        images = [(p, s) for p, s in lfw.list_images(lfw_dir / "images") if p in wanted]
    else:
        images = lfw.list_images(lfw_dir / "images")
    items = [ImageItem(lfw_dir / "images" / p, p, s) for p, s in images]
    started = time.perf_counter()
    if args.evalset is not None:
        info = json.loads((out / "embed.json").read_text())
        model = "sface" if info["model"]["name"].startswith("opencv-sface") else "dlib"
    else:
        model = args.model
        options = ({"upsample": args.upsample, "jitter": args.jitter, "fast_detect": args.fast_detect}
                   if model == "dlib" else {})
        info = embed_images(items, load_adapter(model, **options), out, workers=args.workers,
                            cache_dir=args.cache_dir or DEFAULT, overwrite=True)
    wall = time.perf_counter() - started
    templates = np.load(out / "templates.npy")
    ids = pd.read_csv(out / "manifest.csv").template_id.to_numpy()
    kind = RULES[model][0]
    dist = pair_scores(pairs, templates, ids, kind)
    report = {"model": model, "score": kind, "embedding": info, "wall_seconds_this_run": round(wall, 1),
              "folds": args.folds, "lfw_pairs": _pairs_report(lfw, pairs, dist, args.folds == 10, model)}
    if info.get("embedded"):
        report["seconds_per_image_wall"] = info["seconds"] / info["embedded"]
    if args.folds == 10 and not args.no_blufr:
        report["blufr"] = blufr.evaluate(blufr.load_blufr(lfw_dir / "blufr_lfw_config.mat"), templates, ids,
                                         kind=kind)
        report["blufr"]["operating_point_rule"] = ("faceaudit's (at most floor(FAR x n) false accepts), "
                                                   "not BLUFR's own code's")
    (out / "reproduction.json").write_text(json.dumps(report, indent=1))
    _print(report, out)


def _print(report: dict, out: Path) -> None:
    info, p = report["embedding"], report["lfw_pairs"]
    print(f"model: {info['model']['name']} ({info['model']['version']}); options {info['model']['options']}")
    print(f"images: {info['images']:,}, enrolled {info['enrolled']:,}, failed {info['failed']} "
          f"(FTE {info['fte_rate']:.2%}: {info['failure_reasons']}); embedding {info['seconds']:.0f} s with "
          f"{info['workers']} workers, {info['from_cache']:,} from cache"
          + (f"; {report['seconds_per_image_wall'] * 1000:.0f} ms per image (wall)" if "seconds_per_image_wall" in report
             else ""))
    print(f"pairs (folds 1-{report['folds']}): {p['pairs']:,}, with a missing template: {p['pairs_missing_template']}")
    for key, value in p.items():
        if isinstance(value, dict):
            print(f"LFW accuracy, {key.replace('_', ' ')}: {value['mean']:.2%} +- {value['std']:.2%} "
                  f"(per fold {', '.join(f'{a:.1%}' for a in value['per_fold'])})")
    if "blufr" in report:
        bl = report["blufr"]
        for key in ("vr_at_far_0.1%", "dir_rank1_at_far_1%"):
            v = bl[key]
            print(f"BLUFR {key} (faceaudit's operating-point rule): mean {v['mean']:.2%}, std {v['std']:.2%}, mean-std {v['mean_minus_std']:.2%}")
        print("BLUFR per trial (VR / DIR): " + ", ".join(
            f"{t['verification']['vr']:.1%}/{t['identification']['dir']:.1%}" for t in bl["trials"]))
    print(f"written: {out / 'reproduction.json'}")


if __name__ == "__main__":
    main()

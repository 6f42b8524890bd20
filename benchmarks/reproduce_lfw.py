"""Reproduce published LFW figures with faceaudit's dlib reference adapter.

    python benchmarks/reproduce_lfw.py --data ../shared/data --out lfw-dlib [--jitter 0]

Embeds all 13,233 LFW images (deep-funneled release) with ``faceaudit embed`` (cached: a
second run is free), then reports:

(a) LFW View 2 ``pairs.txt`` 10-fold verification accuracy, at dlib's fixed Euclidean
    distance threshold 0.6 and with the threshold chosen on the other nine folds;
(b) BLUFR: VR at FAR = 0.1% and rank-1 DIR at FAR = 1%, per trial and as mean - std.

Pairs or BLUFR images whose face was not found count as errors (a missing template never
matches). Figures are printed and written to ``<out>/reproduction.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("lfw-dlib"), help="embedding folder (reused if present)")
    parser.add_argument("--jitter", type=int, default=0)
    parser.add_argument("--upsample", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from faceaudit.datasets import blufr, lfw
    from faceaudit.embed import embed_images, items_from_folder

    lfw_dir = args.data / "lfw"
    if not (args.out / "embed.json").exists():
        started = time.perf_counter()
        items = items_from_folder(lfw_dir / "images")
        embed_images(items, args.out, model="dlib", model_options={"upsample": args.upsample, "jitter": args.jitter},
                     workers=args.workers)
        print(f"embedded in {time.perf_counter() - started:.0f} s")
    info = json.loads((args.out / "embed.json").read_text())
    templates = np.load(args.out / "templates.npy")
    ids = pd.read_csv(args.out / "manifest.csv").template_id.to_numpy()

    pairs = lfw.read_pairs(lfw_dir / "pairs.txt")
    dist = lfw.pair_distances(pairs, templates, ids)
    fixed = lfw.ten_fold_accuracy(dist, pairs.same, pairs.fold, fixed_threshold=0.6)
    chosen = lfw.ten_fold_accuracy(dist, pairs.same, pairs.fold)
    both = ~np.isnan(dist)  # the same figures on the pairs where both images enrolled
    fixed_enrolled = lfw.ten_fold_accuracy(dist[both], pairs.same[both], pairs.fold[both], fixed_threshold=0.6)
    bl = blufr.evaluate(blufr.load_blufr(lfw_dir / "blufr_lfw_config.mat"), templates, ids)

    report = {"embedding": info, "pairs_missing_template": int(np.isnan(dist).sum()),
              "lfw_accuracy_threshold_0.6": fixed, "lfw_accuracy_threshold_from_other_folds": chosen,
              "lfw_accuracy_threshold_0.6_enrolled_pairs_only": fixed_enrolled,
              "blufr": bl}
    (args.out / "reproduction.json").write_text(json.dumps(report, indent=1))
    print(f"model: {info['model']['name']} {info['model']['version']} {info['model']['options']}")
    print(f"images: {info['images']:,}, enrolled {info['enrolled']:,}, failure to enrol {info['fte_rate']:.2%}; "
          f"embedding time {info['seconds']:.0f} s with {info['workers']} workers ({info['from_cache']:,} from cache)")
    print(f"pairs with a missing template: {report['pairs_missing_template']} of 6,000 (counted as errors)")
    print(f"LFW 10-fold accuracy at distance 0.6:          {fixed['mean']:.4f} +- {fixed['std']:.4f}")
    print(f"  same, only the {int(both.sum()):,} pairs where both images enrolled: "
          f"{fixed_enrolled['mean']:.4f} +- {fixed_enrolled['std']:.4f}")
    print(f"LFW 10-fold accuracy, threshold from 9 folds: {chosen['mean']:.4f} +- {chosen['std']:.4f} "
          f"(thresholds {min(chosen['thresholds']):.3f}-{max(chosen['thresholds']):.3f})")
    v, d = bl["vr_at_far_0.1%"], bl["dir_rank1_at_far_1%"]
    print(f"BLUFR VR @ FAR=0.1%:   mean {v['mean']:.4f}, std {v['std']:.4f}, mean-std {v['mean_minus_std']:.4f}")
    print(f"BLUFR DIR @ FAR=1%:    mean {d['mean']:.4f}, std {d['std']:.4f}, mean-std {d['mean_minus_std']:.4f}")
    print(f"written: {args.out / 'reproduction.json'}")


if __name__ == "__main__":
    main()

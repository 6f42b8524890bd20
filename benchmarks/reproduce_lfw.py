"""Reproduce published LFW figures with faceaudit's model adapters (dlib or SFace).

    python benchmarks/reproduce_lfw.py --data ../shared/data --out results/lfw-dlib            # dlib
    python benchmarks/reproduce_lfw.py --model sface --out results/lfw-sface                 # OpenCV's SFace
    python benchmarks/reproduce_lfw.py --evalset results/lfw-sface                           # re-score only
    python benchmarks/reproduce_lfw.py --jitter 10 --folds 1     # dlib jitter on a subset only

Embeds the LFW images (deep-funneled release; all 13,233, or with ``--folds K`` only those in
the first K folds of ``pairs.txt``) with :func:`faceaudit.models.embed.embed_images` (2 workers,
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
    mean - std over the 10 trials, by BLUFR's own rule (and faceaudit's floor rule beside it);
(c) enrolment time per image (wall clock with the workers used, from ``embed.json``).

The evaluation is the one behind ``faceaudit benchmark lfw|blufr`` (:mod:`faceaudit.benchmarks`);
this script only adds the embedding step. With templates already embedded, run those commands.

Figures are printed and written to ``<out>.reproduction.json`` (beside the embedding folder).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


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


#: model -> (score kind, the makers' fixed threshold in faceaudit's score units)
#: dlib: "same if Euclidean distance < 0.6", i.e. score = -distance >= -0.6 except at exactly 0.6 (counted);
#: SFace: OpenCV's "same if cosine >= 0.363", faceaudit's own convention.
RULES = {"dlib": ("neg_euclidean", -0.6), "sface": ("cosine", 0.363)}


def main() -> None:
    args = _args()
    from faceaudit.data.datasets import blufr, lfw
    from faceaudit.models.embed import DEFAULT, ImageItem, embed_images
    from faceaudit.models.registry import load_adapter

    lfw_dir = args.data / "lfw"
    suffix = "" if args.folds == 10 else f"-folds{args.folds}"
    out = args.evalset or args.out or Path("results") / f"lfw-{args.model}-j{args.jitter}{suffix}"
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
    from faceaudit.benchmarks import blufr as blufr_eval
    from faceaudit.benchmarks import lfw as lfw_eval
    from faceaudit.benchmarks import templates as lfw_templates
    score, fixed = RULES[model]
    lt = lfw_templates.load(evalset=out)
    lfw_results = lfw_eval.evaluate(pairs, lt, score=score, fixed_threshold=fixed)
    report = {"model": model, "score": score, "embedding": info, "wall_seconds_this_run": round(wall, 1),
              "folds": args.folds, "lfw_pairs": lfw_results}
    if info.get("embedded"):
        report["seconds_per_image_wall"] = info["seconds"] / info["embedded"]
    if args.folds == 10 and not args.no_blufr:
        report["blufr"] = blufr_eval.evaluate(blufr.load_blufr(lfw_dir / "blufr_lfw_config.mat"), lt, score=score)
    from auditcore.serialize import to_json
    # beside the embedding folder, not inside it: faceaudit only replaces folders holding what it wrote
    written = out.with_name(out.name + ".reproduction.json")
    written.write_text(json.dumps(to_json(report), indent=1))
    _print(report, written)


def _print(report: dict, written: Path) -> None:
    from faceaudit.benchmarks.run import blufr_lines, lfw_lines
    info = report["embedding"]
    print(f"model: {info['model']['name']} ({info['model']['version']}); options {info['model'].get('options')}")
    print(f"images: {info['images']:,}, enrolled {info['enrolled']:,}, failed {info['failed']} "
          f"(FTE {info['fte_rate']:.2%}: {info['failure_reasons']}); embedding {info['seconds']:.0f} s with "
          f"{info['workers']} workers, {info['from_cache']:,} from cache"
          + (f"; {report['seconds_per_image_wall'] * 1000:.0f} ms per image (wall)" if "seconds_per_image_wall" in report
             else ""))
    print(f"pairs.txt folds 1-{report['folds']}:")
    print("\n".join(lfw_lines(report["lfw_pairs"])))
    if "blufr" in report:
        print("\n".join(blufr_lines(report["blufr"])))
    print(f"written: {written}")


if __name__ == "__main__":
    main()

"""Time per image of each model adapter, stage by stage, in one process.

    python benchmarks/bench_models.py --data ../shared/data --images 200

Takes the first ``--images`` LFW images (sorted by name, 250x250 JPEG) and times, per image,
reading the file with the model's own loader, detection, alignment and embedding, for the
dlib reference adapter (exact pipeline, and with ``fast_detect``) and for SFace. Prints the
median and mean milliseconds per stage and the total; nothing is asserted (speed is measured,
never tested). The machine's load changes these figures: report them with the load average.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="folder holding lfw/")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--models", default="dlib,dlib-fast,sface")
    return parser.parse_args()


def bench(adapter, paths) -> dict:
    from faceaudit.models.base import choose_face
    stages = {"read": [], "detect": [], "align": [], "embed": []}
    for path in paths:
        t0 = time.perf_counter()
        image = adapter.read_image(path)
        t1 = time.perf_counter()
        box = choose_face(adapter.detect(image), image.shape[1], image.shape[0])
        t2 = time.perf_counter()
        stages["read"].append(t1 - t0)
        stages["detect"].append(t2 - t1)
        if box is None:
            continue
        chip = adapter.align(image, box)
        t3 = time.perf_counter()
        adapter.embed(chip)
        t4 = time.perf_counter()
        stages["align"].append(t3 - t2)
        stages["embed"].append(t4 - t3)
    return {k: np.array(v) * 1000 for k, v in stages.items()}


def main() -> None:
    args = _args()
    from faceaudit.data.datasets import lfw
    from faceaudit.models.registry import load_adapter
    root = args.data / "lfw" / "images"
    paths = [root / p for p, _ in lfw.list_images(root)[: args.images]]
    print(f"{len(paths)} LFW images; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    specs = {"dlib": ("dlib", {}), "dlib-fast": ("dlib", {"fast_detect": True}), "sface": ("sface", {})}
    for name in args.models.split(","):
        kind, options = specs[name]
        adapter = load_adapter(kind, **options)
        bench(adapter, paths[:3])  # warm-up
        ms = bench(adapter, paths)
        total = sum(v.mean() for v in ms.values())
        print(f"{name:10s} " + "  ".join(f"{k} {np.median(v):6.1f} / {v.mean():6.1f}" for k, v in ms.items())
              + f"  ms (median / mean); total mean {total:.0f} ms per image")


if __name__ == "__main__":
    main()

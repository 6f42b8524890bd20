"""The probe-quality study on an LFW subset, as ``faceaudit quality`` runs it.

    python benchmarks/quality_study.py --data ../shared/data --people 350 --singles 150 \
        --model sface --out /tmp/quality-lfw-sface

Subset (deterministic, no randomness): LFW people sorted by name; ``--people`` of those with
at least two images, evenly spaced through the list, with their first ``--per-person`` images
(sorted), plus ``--singles`` people with one image, evenly spaced (never enrolled: non-mated
probes). The manifest (absolute image paths, images read in place, never copied) is written to
``<out>.manifest.csv``, then the command below runs and its wall time is printed:

    faceaudit quality --evalset-images <manifest> --model <model> --degrade <each level> --out <out>

``--exclude-failed-in STUDY`` (repeatable) leaves out the images that failed to enrol clean in an
earlier study: the way to run two models on the same images, which ``faceaudit compare`` needs.

Default levels: ``size:64,32,24,16``, ``jpeg:50,20``, ``blur:3`` (the levels docs/quality.md
reports). Nothing is asserted: the figures are in ``<out>/results.json`` and ``report.html``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

LEVELS = ["size:64,32,24,16", "jpeg:50,20", "blur:3"]


def subset(lfw: Path, people: int, singles: int, per_person: int) -> pd.DataFrame:
    names = sorted(d.name for d in lfw.iterdir() if d.is_dir())
    files = {n: sorted(p.name for p in (lfw / n).iterdir() if p.suffix.lower() == ".jpg") for n in names}
    multi = [n for n in names if len(files[n]) >= 2]
    single = [n for n in names if len(files[n]) == 1]

    def spaced(seq, k):
        k = min(k, len(seq))
        return [seq[i] for i in np.linspace(0, len(seq) - 1, k).round().astype(int)] if k else []
    rows = [(str((lfw / n / f).resolve()), n, f"{n}/{f}") for n in spaced(multi, people) for f in files[n][:per_person]]
    rows += [(str((lfw / n / files[n][0]).resolve()), n, f"{n}/{files[n][0]}") for n in spaced(single, singles)]
    return pd.DataFrame(rows, columns=["image", "subject_id", "template_id"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--people", type=int, default=350)
    parser.add_argument("--singles", type=int, default=150)
    parser.add_argument("--per-person", type=int, default=3)
    parser.add_argument("--model", default="sface")
    parser.add_argument("--degrade", action="append", default=None)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--exclude-failed-in", type=Path, action="append", default=[], metavar="STUDY",
                        help="leave out the images that failed to enrol clean in this earlier study (repeatable): "
                             "run each model once, then both again on the images every model enrols, so that "
                             "`faceaudit compare` can pair them (the same protocol needs the same images)")
    args = parser.parse_args()
    for study in args.exclude_failed_in:
        if not (study / "searches.parquet").is_file():
            parser.error(f"--exclude-failed-in {study}: not a faceaudit quality folder (no searches.parquet)")
    if not (args.data / "lfw" / "images").is_dir():
        parser.error(f"--data {args.data}: no lfw/images there")
    table = subset(args.data / "lfw" / "images", args.people, args.singles, args.per_person)
    for study in args.exclude_failed_in:
        searches = pd.read_parquet(study / "searches.parquet", columns=["level", "template_id", "failed"])
        failed = set(searches.loc[(searches["level"] == "clean") & searches["failed"], "template_id"])
        table = table[~table["template_id"].isin(failed)]
        print(f"left out {len(failed):,} images that failed to enrol clean in {study}", flush=True)
    manifest = args.out.with_name(args.out.name + ".manifest.csv")
    table.to_csv(manifest, index=False)
    print(f"{len(table):,} images of {table['subject_id'].nunique():,} people -> {manifest}", flush=True)
    cmd = ["faceaudit", "quality", "--evalset-images", str(manifest), "--model", args.model,
           "--workers", str(args.workers), "--out", str(args.out), "--overwrite"]
    for spec in args.degrade or LEVELS:
        cmd += ["--degrade", spec]
    print(" ".join(cmd), flush=True)
    started = time.perf_counter()
    code = subprocess.call(cmd)
    print(f"wall time {time.perf_counter() - started:.0f} s; load average {os.getloadavg()[0]:.2f}", flush=True)
    sys.exit(code)


if __name__ == "__main__":
    main()

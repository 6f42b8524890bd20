"""Two models on the same LFW pairs.txt pairs, pair by pair, at each maker's own threshold.

    python benchmarks/compare_lfw_pairs.py /work/notes/lfw-dlib-folds2 /work/notes/lfw-sface --folds 2

Each argument is an embedding folder (``templates.npy``, ``manifest.csv``, ``embed.json``) whose
``template_id``s are LFW image names. The model is read from ``embed.json``: dlib (same if
Euclidean distance < 0.6) or SFace (same if cosine >= 0.363). For the pairs of the first
``--folds`` folds it prints each model's accuracy and the exact McNemar test on the discordant
pairs (two-sided binomial test of b vs c), twice: with a pair that lacks a template counted
wrong for that model, and on the pairs both models enrolled. This is a quick check for the
reproduction notes; ``faceaudit compare`` is the tool for audits.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import binomtest

sys.path.insert(0, str(Path(__file__).parent))
from reproduce_lfw import RULES, pair_scores  # noqa: E402


def correct(folder: Path, pairs) -> tuple[str, np.ndarray, np.ndarray]:
    """Model name, per-pair right/wrong at the maker's threshold, and which pairs have templates."""
    info = json.loads((folder / "embed.json").read_text())
    model = "sface" if info["model"]["name"].startswith("opencv-sface") else "dlib"
    kind, fixed, _ = RULES[model]
    x = np.load(folder / "templates.npy")
    ids = pd.read_csv(folder / "manifest.csv").template_id.to_numpy()
    dist = pair_scores(pairs, x, ids, kind)
    present = ~np.isnan(dist)
    same = np.where(present, dist < fixed, False) if model == "dlib" else np.where(present, -dist >= -fixed, False)
    return model, np.where(present, same == pairs.same, False), present


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--folds", type=int, default=10)
    args = parser.parse_args()
    from faceaudit.data.datasets import lfw
    pairs = lfw.read_pairs(args.data / "lfw" / "pairs.txt")
    keep = pairs.fold < args.folds
    pairs = lfw.Pairs(pairs.left[keep], pairs.right[keep], pairs.same[keep], pairs.fold[keep])
    name_a, ra, pa = correct(args.a, pairs)
    name_b, rb, pb = correct(args.b, pairs)
    print(f"{pairs.same.size:,} pairs (folds 1-{args.folds}); missing templates: {name_a} {(~pa).sum()}, "
          f"{name_b} {(~pb).sum()}")
    for label, m in (("missing counted wrong", np.ones(pairs.same.size, bool)), ("pairs both enrolled", pa & pb)):
        b, c = int((ra & ~rb & m).sum()), int((~ra & rb & m).sum())
        p = binomtest(b, b + c, 0.5).pvalue if b + c else float("nan")
        print(f"{label}: n = {m.sum():,}; {name_a} {ra[m].sum():,} right ({ra[m].mean():.2%}), {name_b} "
              f"{rb[m].sum():,} right ({rb[m].mean():.2%}); only {name_a} right {b}, only {name_b} right {c}; "
              f"exact McNemar p = {p:.3g}")


if __name__ == "__main__":
    main()

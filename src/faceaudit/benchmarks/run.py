"""``faceaudit benchmark lfw|blufr`` as a library: evaluate, print, write a results folder.

Folder contents (written atomically with :func:`auditcore.outdir.atomic_folder`):

* ``results.json``: every figure (per fold / per trial, both rules for BLUFR) and the summary;
* ``summary.txt``: the lines the command printed;
* LFW: ``folds.csv`` (one row per fold and variant) and ``pairs.csv`` (every pair's score);
* BLUFR: ``trials.csv`` (one row per trial and rule).
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

import pandas as pd

from auditcore.errors import InputError
from auditcore.outdir import atomic_folder
from faceaudit import __version__
from faceaudit.benchmarks import blufr as blufr_eval
from faceaudit.benchmarks import lfw as lfw_eval
from faceaudit.benchmarks.templates import LfwTemplates

PAIRS_FILE = "pairs.txt"
BLUFR_FILE = "blufr_lfw_config.mat"


def lfw_folder(data: str | Path | None, needs: str) -> Path:
    """The LFW folder holding ``needs``: ``data`` itself or ``data/lfw``; by default the shared
    data (``$FACEAUDIT_DATA`` or ``../shared/data``, as the tests find it)."""
    if data is None:
        from faceaudit.data.datasets import shared_data_dir
        root = shared_data_dir()
        if root is None:
            raise InputError(f"give --data DIR: the LFW folder holding {needs} (no shared data found; "
                             "$FACEAUDIT_DATA is not set)")
        data = root
    data = Path(data)
    for folder in (data, data / "lfw"):
        if (folder / needs).is_file():
            return folder
    raise InputError(f"no {needs} here or in its lfw/ folder", data)


def _header(kind: str, templates: LfwTemplates, data: Path, score: str) -> dict[str, Any]:
    return {"faceaudit_version": __version__, "benchmark": kind,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "input": {"templates": templates.source, "data": str(data), "score": score,
                      "dim": int(templates.templates.shape[1])}}


def _pct(x: float | None) -> str:
    return "undefined" if x is None else f"{100 * x:.2f}%"


def _missing_line(t: dict, what: str) -> str:
    if not t["missing"]:
        return f"every one of the {t['images']:,} {what} has a template"
    return (f"{t['missing']:,} of the {t['images']:,} {what} have no template ({t['failed_to_enrol']:,} failed to "
            f"enrol per failures.csv, {t['absent']:,} absent; e.g. {', '.join(t['examples'][:2])})")


# ------------------------------------------------------------------ LFW
def run_lfw(templates: LfwTemplates, data: str | Path | None = None, *, score: str = "cosine",
            threshold: float | None = None) -> tuple[dict, pd.DataFrame]:
    """(results, per-pair table) for LFW View 2."""
    from faceaudit.data.datasets.lfw import read_pairs
    folder = lfw_folder(data, PAIRS_FILE)
    pairs = read_pairs(folder / PAIRS_FILE)
    results = {**_header("lfw", templates, folder, score),
               **lfw_eval.evaluate(pairs, templates, score=score, fixed_threshold=threshold)}
    table = pd.DataFrame({"fold": pairs.fold + 1, "left": pairs.left, "right": pairs.right, "same": pairs.same,
                          "score": lfw_eval.pair_scores(pairs, templates, score)})
    return results, table


def _fold_lines(res: dict, label: str) -> list[str]:
    lines = [label]
    for f in res["folds"]:
        miss = f", {f['missing']} with a missing template" if f["missing"] else ""
        lines.append(f"  fold {f['fold']:2d}: {_pct(f['accuracy'])} ({f['correct']}/{f['pairs']}{miss}; "
                     f"threshold {f['threshold']:.6g})")
    lines.append(f"  mean {_pct(res['mean'])}, standard deviation {_pct(res['std'])}, "
                 f"standard error {_pct(res['standard_error'])} over {len(res['folds'])} folds "
                 f"({res['correct']:,} of {res['pairs']:,} pairs right)")
    return lines


def lfw_lines(results: dict) -> list[str]:
    lines = [f"LFW View 2 (pairs.txt), score {results['score']}: {results['pairs']:,} pairs, "
             f"{results['pairs_with_missing_template']:,} with a missing template",
             "  " + _missing_line(results["templates"], "images in pairs.txt")]
    variants = [("threshold_from_other_folds", "threshold chosen on the other nine folds")]
    if "fixed_threshold" in results:
        ft = results["fixed_threshold"]
        variants.append(("fixed_threshold", f"fixed threshold: same if score >= {ft['threshold']:g} "
                                            f"({ft['pairs_at_threshold']} pairs score exactly {ft['threshold']:g})"))
    for key, label in variants:
        v = results[key]
        lines += _fold_lines(v["missing_counted_wrong"], f"{label}; a pair with a missing template counted wrong:")
        if results["pairs_with_missing_template"]:
            lines += _fold_lines(v["enrolled_pairs_only"], f"{label}; only the pairs where both images have a template:")
    return lines


def write_lfw(results: dict, table: pd.DataFrame, out: str | Path, *, overwrite: bool = False) -> Path:
    rows = []
    for key in ("threshold_from_other_folds", "fixed_threshold"):
        for variant in ("missing_counted_wrong", "enrolled_pairs_only"):
            if key in results:
                rows += [{"threshold_rule": key, "missing_pairs": variant, **f} for f in results[key][variant]["folds"]]
    with atomic_folder(out, overwrite=overwrite, kind="benchmark-lfw") as tmp:
        _write_json(results, tmp / "results.json")
        pd.DataFrame(rows).to_csv(tmp / "folds.csv", index=False)
        table.to_csv(tmp / "pairs.csv", index=False)
        (tmp / "summary.txt").write_text("\n".join(lfw_lines(results)) + "\n")
    return Path(out)


# ------------------------------------------------------------------ BLUFR
def run_blufr(templates: LfwTemplates, data: str | Path | None = None, *, score: str = "cosine",
              trials: int | None = None, progress=None) -> dict:
    from faceaudit.data.datasets.blufr import load_blufr
    folder = lfw_folder(data, BLUFR_FILE)
    bl = load_blufr(folder / BLUFR_FILE)
    return {**_header("blufr", templates, folder, score),
            **blufr_eval.evaluate(bl, templates, score=score, trials=trials, progress=progress)}


def trial_table(results: dict) -> pd.DataFrame:
    rows = []
    for r in results["trials"]:
        for rule in ("blufr_rule", "faceaudit_floor_rule"):
            v, i = r["verification"], r["identification"]
            rows.append({"trial": r["trial"], "rule": rule,
                         "vr_at_far_0.1%": v[rule]["vr"], "vr_threshold": v[rule]["threshold"],
                         "vr_false_accepts": v[rule]["false_accepts"], "impostor_pairs": v["n_impostor"],
                         "genuine_pairs": v["n_genuine"],
                         "dir_rank1_at_far_1%": i[rule]["dir"], "dir_threshold": i[rule]["threshold"],
                         "dir_false_accepts": i[rule]["false_accepts"], "impostor_probes": i["n_impostor_probes"],
                         "genuine_probes": i["n_genuine_probes"], "rank1_rate": i[rule]["rank_rate"],
                         "missing_test_images": r["missing"]["test"], "missing_gallery_images": r["missing"]["gallery"]})
    return pd.DataFrame(rows)


def blufr_lines(results: dict) -> list[str]:
    lines = [f"BLUFR on LFW, score {results['score']}, {len(results['trials'])} trial(s)",
             "  " + _missing_line(results["templates"], "BLUFR images")]
    lines.append("trial  VR@FAR=0.1%  DIR@FAR=1%,rank 1  (BLUFR's rule)   |  faceaudit floor rule: VR   DIR")
    for r in results["trials"]:
        v, i = r["verification"], r["identification"]
        lines.append(f"  {r['trial']:2d}   {_pct(v['blufr_rule']['vr']):>9}   {_pct(i['blufr_rule']['dir']):>9}"
                     f"   (k = {v['blufr_rule']['k']:,} of {v['n_impostor']:,} pairs; "
                     f"{i['blufr_rule']['k']} of {i['n_impostor_probes']:,} probes)"
                     f"  |  {_pct(v['faceaudit_floor_rule']['vr']):>7} {_pct(i['faceaudit_floor_rule']['dir']):>7}")
    for rule, label in (("blufr_rule", "BLUFR (its rule, mean - std)"),
                        ("faceaudit_floor_rule", "faceaudit's floor rule, not BLUFR's figure (mean - std)")):
        s = results["summary"][rule]
        vr, dr = s["vr_at_far_0.1%"], s["dir_rank1_at_far_1%"]
        lines.append(f"{label}: VR@FAR=0.1% {_pct(vr['mean_minus_std'])} (mean {_pct(vr['mean'])}, std {_pct(vr['std'])}); "
                     f"DIR@FAR=1% rank 1 {_pct(dr['mean_minus_std'])} (mean {_pct(dr['mean'])}, std {_pct(dr['std'])})")
    return lines


def write_blufr(results: dict, out: str | Path, *, overwrite: bool = False) -> Path:
    with atomic_folder(out, overwrite=overwrite, kind="benchmark-blufr") as tmp:
        _write_json(results, tmp / "results.json")
        trial_table(results).to_csv(tmp / "trials.csv", index=False)
        (tmp / "summary.txt").write_text("\n".join(blufr_lines(results)) + "\n")
    return Path(out)


def _write_json(results: dict, path: Path) -> None:
    from auditcore.serialize import to_json
    with open(path, "w") as fh:
        json.dump(to_json(results), fh, indent=1, allow_nan=False)

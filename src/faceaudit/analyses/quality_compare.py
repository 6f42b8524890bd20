"""Two models' probe-quality studies side by side (``faceaudit compare STUDY_A/ STUDY_B/``).

Input: two folders written by ``faceaudit quality`` (``results.json`` with ``kind:
"quality_study"`` and ``searches.parquet``: one row per level and search) for the *same study*:
the same degradation levels with the same operations and parameters, the same FPIR targets and
the same protocol (the same images and seed give the same gallery and searches). Anything else is
refused with one line naming the difference.

Per level:

* each model as its own study reported it, at the thresholds it would have been deployed with
  (set on its own clean probes for each FPIR target): probe failure to enrol, FPIR, FNIR at rank
  1 and 20, each with its Clopper-Pearson interval over that study's searches;
* the paired difference A - B on the searches both studies made (paired by probe
  ``template_id``; a search whose probe failed to enrol is in the pair as each study counts it: a
  miss, no candidate), each model at its own deployed threshold, with
  :func:`faceaudit.analyses.compare._compare_rate` (the comparison of two systems that ``faceaudit
  compare`` makes: the interval from people by :func:`auditcore.intervals.paired_difference`,
  McNemar's exact test on the discordant searches, the people bootstrap's interval beside it,
  and the verdict from both);
* one sentence in the study's style.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from auditcore import bootstrap as boot_
from auditcore.errors import InputError
from auditcore.outdir import write_json_folder
from faceaudit import __version__
from faceaudit.analyses import quality as q
from faceaudit.analyses.compare import _compare_rate, _protocol_key, p_words
from faceaudit.data.reading import read_parquet, shown

SEARCH_COLUMNS = ("level", "template_id", "subject_id", "mated", "failed", "mate_score", "mate_rank",
                  "best_nonmate_score")
HEADLINES = (("fnir_rank1", "FNIR at rank 1"), ("fnir_rank20", "FNIR at rank 20"), ("fpir", "FPIR"))


def is_quality_study(path: str | Path) -> bool:
    """True when ``path/results.json`` was written by ``faceaudit quality``."""
    f = Path(path) / "results.json"
    if not f.is_file():
        return False
    try:
        with open(f) as fh:
            return json.load(fh).get("kind") == "quality_study"
    except (OSError, ValueError, AttributeError):
        return False


def _load(path: str | Path, name: str | None) -> dict:
    path = Path(path)
    if not is_quality_study(path):
        raise InputError("not a quality study (results.json from `faceaudit quality`); compare two studies, or two "
                         "audits", path)
    with open(path / "results.json") as fh:
        results = json.load(fh)
    table_path = path / "searches.parquet"
    if not table_path.exists():
        raise InputError("no searches.parquet here; comparing studies needs the per-search table the study writes",
                         path)
    table = read_parquet(table_path, "the per-search table")
    missing = [c for c in SEARCH_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"searches.parquet lacks column(s) {', '.join(missing)}", path)
    table["template_id"] = table["template_id"].astype(str)
    table["subject_id"] = table["subject_id"].astype(str)
    table["level"] = table["level"].astype(str)
    return {"name": name or path.resolve().name, "path": str(path), "results": results, "searches": table}


def _levels_key(results: dict) -> list[tuple]:
    return [(e["label"], e["degradation"], e["severity"]) for e in results["levels"]]


def check_same_study(a: dict, b: dict) -> None:
    """Raise :class:`InputError` (one line, naming the difference) unless both are the same study."""
    ra, rb = a["results"], b["results"]
    la, lb = [k[0] for k in _levels_key(ra)], [k[0] for k in _levels_key(rb)]
    if la != lb:
        only_a = [x for x in la if x not in lb]
        only_b = [x for x in lb if x not in la]
        what = (f"level {shown(only_b[0])} is here and not there" if only_b else
                f"level {shown(only_a[0])} is there and not here" if only_a else "the levels are in another order")
        raise InputError(f"not the same degradation levels as {a['path']}: {what} ({', '.join(lb)} here, "
                         f"{', '.join(la)} there); compare only studies run with the same --degrade", b["path"])
    da = (ra.get("provenance") or {}).get("degradations") or []
    db = (rb.get("provenance") or {}).get("degradations") or []
    for x, y in zip(da, db):
        if x != y:
            k = min(key for key in set(x) | set(y) if x.get(key) != y.get(key))
            raise InputError(f"not the same degradations as {a['path']}: level {shown(str(x.get('degradation')) + ':' + str(x.get('severity')))}'s {k} is "
                             f"{shown(repr(y.get(k)))} here and {shown(repr(x.get(k)))} there", b["path"])
    ta = [d["target_fpir"] for d in ra["deployed_thresholds"]]
    tb = [d["target_fpir"] for d in rb["deployed_thresholds"]]
    if ta != tb:
        raise InputError(f"not the same FPIR targets as {a['path']}: {ta} there, {tb} here; run both studies with the "
                         "same --fpir", b["path"])
    pa, pb = _protocol_key(ra), _protocol_key(rb)
    if pa != pb:
        k = min(key for key in set(pa) | set(pb) if pa.get(key) != pb.get(key))
        fa, fb = (set(s["searches"].loc[(s["searches"]["level"] == q.CLEAN) & s["searches"]["failed"].astype(bool),
                                        "template_id"]) for s in (a, b))
        why = ("" if fa == fb else
               f" ({len(fb):,} images failed to enrol clean here and {len(fa):,} there, {len(fa ^ fb):,} not the same: "
               "run both studies on a manifest of the images both models enrol; the failed ones are searches.parquet's "
               "rows with level 'clean' and failed true)")
        raise InputError(f"not the same protocol as {a['path']}: {shown(k)} is {shown(repr(pb.get(k)))} here and "
                         f"{shown(repr(pa.get(k)))} there{why}; compare only studies of the same images and seed",
                         b["path"])


def _threshold(t) -> float | None:
    if t is None:
        return None
    return float(t)  # "-inf" / "inf" strings from JSON as floats


def _level_arrays(table: pd.DataFrame, label: str, order: pd.Index) -> q.Level:
    t = table[table["level"] == label].set_index("template_id").loc[order]
    return q.Level(label, "", None, t["failed"].to_numpy(bool), t["mate_score"].to_numpy(np.float64),
                   t["mate_rank"].to_numpy(np.int64), t["best_nonmate_score"].to_numpy(np.float64))


def _model_side(entry: dict, target: float) -> dict:
    op = next((o for o in (entry.get("identification") or {}).get("operating_points", [])
               if o.get("target_fpir") == target), None) or {}
    fn = op.get("fnir") or {}
    return {"threshold": op.get("threshold"), "fpir": op.get("fpir"), "fnir_rank1": fn.get("1"),
            "fnir_rank20": fn.get("20")}


def compare_studies(path_a: str | Path, path_b: str | Path, *, names: Sequence[str] | None = None,
                    n_boot: int = 1000, seed: int = 0, confidence: float = 0.95) -> dict:
    """The comparison of two studies as a JSON-ready dict (see the module docstring)."""
    if names and len(names) != 2:
        raise InputError(f"give one --name per study (2), got {len(names)}")
    a, b = (_load(p, names[i] if names else None) for i, p in enumerate((path_a, path_b)))
    if a["name"] == b["name"]:
        b["name"] = f"{b['name']} (2)"
    check_same_study(a, b)
    clean_a = a["searches"][a["searches"]["level"] == q.CLEAN].set_index("template_id")
    clean_b = b["searches"][b["searches"]["level"] == q.CLEAN].set_index("template_id")
    for s, c in ((a, clean_a), (b, clean_b)):
        if c.index.has_duplicates:
            raise InputError("searches.parquet lists a probe twice in one level", s["path"])
    order = clean_a.index[clean_a.index.isin(clean_b.index)]
    if order.size == 0:
        raise InputError(f"no search in common with {a['path']} (no probe template_id in both)", b["path"])
    ca, cb = clean_a.loc[order], clean_b.loc[order]
    bad = (ca["mated"].to_numpy() != cb["mated"].to_numpy()) | (ca["subject_id"].to_numpy() != cb["subject_id"].to_numpy())
    if bad.any():
        raise InputError(f"not the same searches as {a['path']}: probe {shown(order[np.flatnonzero(bad)[0]])} differs "
                         f"in its subject or mated flag ({int(bad.sum()):,} probes differ)", b["path"])
    mated = ca["mated"].to_numpy(bool)
    subj_names, subj = np.unique(ca["subject_id"].to_numpy(str), return_inverse=True)
    weights = boot_.subject_weights(subj_names.size, n_boot, seed)
    targets = [d["target_fpir"] for d in a["results"]["deployed_thresholds"]]
    deployed = [[_threshold(d["threshold"]) for d in s["results"]["deployed_thresholds"]] for s in (a, b)]
    top_k = min(int((s["results"].get("input") or {}).get("top_k", 20)) for s in (a, b))

    levels = []
    for k, entry_a in enumerate(a["results"]["levels"]):
        entry_b = b["results"]["levels"][k]
        label = entry_a["label"]
        arr_a, arr_b = _level_arrays(a["searches"], label, order), _level_arrays(b["searches"], label, order)
        paired = []
        for j, target in enumerate(targets):
            ta, tb = deployed[0][j], deployed[1][j]
            point = {"target_fpir": target, "threshold_a": ta, "threshold_b": tb}
            if ta is None or tb is None:
                point["not_measurable"] = "no deployed threshold for " + (a["name"] if ta is None else b["name"])
                paired.append(point)
                continue
            miss_a, fp_a = q.errors_at(arr_a, mated, ta)
            miss_b, fp_b = q.errors_at(arr_b, mated, tb)
            point["fnir_rank1"] = _compare_rate(miss_a[mated], miss_b[mated], subj[mated], weights, n_boot, seed,
                                                confidence)
            if top_k >= 20:
                m20a, _ = q.errors_at(arr_a, mated, ta, rank=20)
                m20b, _ = q.errors_at(arr_b, mated, tb, rank=20)
                point["fnir_rank20"] = _compare_rate(m20a[mated], m20b[mated], subj[mated], weights, n_boot, seed,
                                                     confidence)
            point["fpir"] = _compare_rate(fp_a[~mated], fp_b[~mated], subj[~mated], weights, n_boot, seed, confidence)
            paired.append(point)
        models = []
        for s, e in ((a, entry_a), (b, entry_b)):
            models.append({"name": s["name"], "failure_to_enrol": (e.get("failure_to_enrol") or {}).get("probes"),
                           "operating_points": [{"target_fpir": t, **_model_side(e, t)} for t in targets]})
        levels.append({"label": label, "degradation": entry_a["degradation"], "severity": entry_a["severity"],
                       "models": models, "paired": paired})

    out = {
        "faceaudit_version": __version__, "kind": "quality_comparison",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "models": [{"name": s["name"], "path": s["path"], "model": (s["results"].get("input") or {}).get("model"),
                    "score": (s["results"].get("input") or {}).get("score"),
                    "deployed_thresholds": s["results"]["deployed_thresholds"]} for s in (a, b)],
        "protocol": _protocol_key(a["results"]),
        "degradations": (a["results"].get("provenance") or {}).get("degradations"),
        "fpir_targets": targets, "top_k": top_k,
        "searches": {"paired_mated": int(mated.sum()), "paired_nonmated": int((~mated).sum()),
                     "probe_subjects": int(subj_names.size),
                     "only_in_a": int((~clean_a.index.isin(clean_b.index)).sum()),
                     "only_in_b": int((~clean_b.index.isin(clean_a.index)).sum())},
        "bootstrap": {"n_boot": n_boot, "seed": seed, "confidence": confidence,
                      "unit": "probe subjects resampled with replacement; gallery fixed; percentile intervals"},
        "thresholds_note": "each model at the threshold it would have been deployed with: set by faceaudit's rule on "
                           "its own clean probes for each FPIR target (the models' scores are not on one scale)",
        "levels": levels,
    }
    out["summary"] = summary_sentences(out)
    return out


# ------------------------------------------------------------------ wording
def sentence_target(result: dict) -> float:
    targets = result["fpir_targets"]
    return 0.01 if 0.01 in targets else targets[len(targets) // 2]


def _rate_words(errors: int, trials: int, ci_high: float | None) -> str:
    if errors == 0:
        return f"none of {trials:,} searches (at most {q._pct(ci_high)})"
    return f"{q._pct(errors / trials)} of searches ({errors:,} of {trials:,})"


def _bound(side: dict | None, c: dict, key: str) -> float | None:
    """A rate's upper bound for the sentence: the study's own (Clopper-Pearson over its searches) when
    the paired searches are the study's, else the people interval's."""
    if side and side.get("trials") == c[key]["trials"] and side.get("errors") == c[key]["errors"]:
        return side["ci_high"]
    return (c[key].get("ci") or [None, None])[1]


def _level_sentence(level: dict, a: str, b: str, target: float) -> str:
    where = "With the clean photos" if level["label"] == q.CLEAN else q._where(level)
    point = next(p for p in level["paired"] if p["target_fpir"] == target)
    thr = f"each model at the threshold set for FPIR {q._pct(target)} on its clean photos"
    if point.get("not_measurable"):
        return f"{where}: not compared at FPIR {q._pct(target)} ({point['not_measurable']})."
    parts = []
    for key, what in (("fnir_rank1", "missed the person searched for at rank 1 in"),
                      ("fpir", "returned a candidate for someone not in the gallery in")):
        c = point[key]
        if not c["a"]["trials"]:
            continue
        sides = [next(o for o in m["operating_points"] if o["target_fpir"] == target).get(key)
                 for m in level["models"]]
        ra = _rate_words(c["a"]["errors"], c["a"]["trials"], _bound(sides[0], c, "a"))
        rb = _rate_words(c["b"]["errors"], c["b"]["trials"], _bound(sides[1], c, "b"))
        lo, hi = c["ci"]
        ci = "" if lo is None else f", 95% interval over people {100 * lo:+.1f} to {100 * hi:+.1f}"
        if c["verdict"] == "significant":
            tail = f": {a if c['difference'] > 0 else b} errs more often"
        elif c["verdict"] == "not significant":
            tail = ": these data cannot tell the two models apart"
        else:
            tail = ": the interval from people and McNemar's test disagree, so these data do not settle it"
        parts.append(f"{a} {what} {ra} and {b} in {rb} (difference {100 * c['difference']:+.1f} points"
                     f"{ci}; McNemar {p_words(c['mcnemar_p'])}){tail}")
    if not parts:
        return f"{where}: no search to compare."
    return f"{where} ({thr}), " + "; ".join(parts) + "."


def summary_sentences(result: dict) -> list[str]:
    """One sentence per level, at the middle FPIR target: FNIR at rank 1 and FPIR of both models,
    their paired difference with its interval from people, McNemar's p, and what follows."""
    a, b = (m["name"] for m in result["models"])
    target = sentence_target(result)
    return [_level_sentence(level, a, b, target) for level in result["levels"]]


def write_study_comparison(result: dict, out: str | Path, *, overwrite: bool = False, report: bool = True) -> Path:
    """``comparison.json``, ``summary.txt`` and ``report.html``, atomically."""
    from auditcore.serialize import to_json
    pages = ()
    if report:
        from faceaudit.report.quality_compare_html import render
        pages = (("report.html", render),)
    return write_json_folder(out, "comparison.json", to_json(result), kind="compare", overwrite=overwrite,
                             summary=result["summary"], pages=pages)

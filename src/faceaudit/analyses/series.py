"""One system followed across versions (``faceaudit compare --series v1/ v2/ v3/``).

Input: results folders of audits of the *same protocol* (the same searches), in version order.
Each headline figure is reported per version with the audit's interval (FNIR at rank 1 and FPIR
at each FPIR target, each version at its own threshold for that target; the rank-1
identification rate with no threshold), and the change from one version to the next with a
paired interval from :func:`faceaudit.analyses.compare.compare` (a bootstrap over probe
subjects at the fixed thresholds, McNemar's exact test on the discordant searches, and for FNIR
the interval with both thresholds re-estimated), per demographic group where both audits ran
the same ``--group-by``. The paired machinery is compare's, called, not copied: a series is the
comparison of its versions, read along consecutive pairs.

Version labels: ``names`` when given, else each audit's recorded system version
(``results["provenance"]["system"]["version"]``, written by ``--system-version``), else the
folder names (the result says which).

A change is "later minus earlier": negative means the later version makes fewer errors.
"""

from __future__ import annotations

import datetime as _dt
import itertools
from collections.abc import Sequence
from pathlib import Path

from auditcore.errors import InputError
from auditcore.outdir import write_json_folder
from faceaudit import __version__
from faceaudit.analyses.compare import DEFAULT_TARGETS, compare, p_words
from faceaudit.data.results import load_results


def version_labels(paths: Sequence[str | Path], names: Sequence[str] | None = None) -> tuple[list[str], str]:
    """Labels for the versions, and where they came from."""
    if names:
        if len(names) != len(paths):
            raise InputError(f"give one --name per results folder ({len(paths)}), got {len(names)}")
        return list(names), "given with --name"
    versions, systems = [], set()
    for p in paths:
        prov = load_results(p).get("provenance")
        system = prov.get("system") if isinstance(prov, dict) else None
        system = system if isinstance(system, dict) else {}
        versions.append(system.get("version"))
        systems.add(system.get("name"))
    if all(isinstance(v, str) and v for v in versions) and len(set(versions)) == len(versions):
        name = next(iter(systems)) if len(systems) == 1 else None
        return [str(v) for v in versions], ("the system version each audit recorded (--system-version)"
                                            + (f" of {name}" if name else ""))
    missing = sum(1 for v in versions if not v)
    why = (f"{missing} of {len(paths)} audits recorded no --system-version" if missing else
           "the audits recorded the same --system-version twice")
    return [Path(p).resolve().name for p in paths], f"the folder names ({why})"


def _flip(cmp: dict) -> dict:
    """compare's A - B (earlier minus later) as a change later minus earlier."""
    if not cmp or cmp.get("not_measurable"):
        return {"not_measurable": (cmp or {}).get("not_measurable", "not compared")}
    out = {"earlier": cmp["a"], "later": cmp["b"], "change": -cmp["difference"],
           "ci": [None if cmp["ci"][1] is None else -cmp["ci"][1], None if cmp["ci"][0] is None else -cmp["ci"][0]],
           "mcnemar_p": cmp["mcnemar_p"], "only_earlier_wrong": cmp["only_a_wrong"],
           "only_later_wrong": cmp["only_b_wrong"], "verdict": cmp["verdict"]}
    re_ci = cmp.get("ci_threshold_reestimated")
    if re_ci is not None:
        out["ci_threshold_reestimated"] = [None if re_ci[1] is None else -re_ci[1], None if re_ci[0] is None else -re_ci[0]]
    if cmp.get("ci_threshold_reestimated_not_measurable"):
        out["ci_threshold_reestimated_not_measurable"] = cmp["ci_threshold_reestimated_not_measurable"]
    return out


def _headlines(system: dict) -> dict:
    return {"operating_points": [{"target_fpir": op["target_fpir"], "threshold": op["threshold"],
                                  "fpir": op["fpir"], "fnir_rank1": op["fnir"]} for op in system["operating_points"]],
            "rank1_identification": system["rank1_identification"]}


def _groups(results: dict) -> list[dict]:
    """Each group's FNIR and FPIR as the audit reported them (its threshold, its interval)."""
    demo = results.get("demographics") or results.get("demographics_from_lists") or {}
    out = []
    for a in demo.get("analyses", []):
        rates = {m: {g: {k: e.get(k) for k in ("errors", "trials", "value", "ci", "interval_method")}
                     for g, e in (a.get("rates", {}).get(m) or {}).items() if e}
                 for m in ("fnir", "fpir")}
        out.append({"spec": a["spec"], "threshold": demo.get("threshold"),
                    "threshold_rule": demo.get("threshold_rule"), "rates": rates})
    return out


def series(paths: Sequence[str | Path], *, names: Sequence[str] | None = None,
           fpir_targets: Sequence[float] = DEFAULT_TARGETS, n_boot: int = 1000, seed: int = 0) -> dict:
    """The series as a JSON-ready dict (see the module docstring)."""
    if len(paths) < 2:
        raise InputError("give at least two results folders (versions, in order) for --series")
    labels, source = version_labels(paths, names)
    if len(set(labels)) != len(labels):
        raise InputError(f"two versions share the label {max(labels, key=labels.count)!r}; give --name per folder")
    cmp = compare(paths, names=labels, fpir_targets=fpir_targets, n_boot=n_boot, seed=seed)
    pairs = {(p["a"], p["b"]): p for p in cmp["pairs"]}
    versions = [{"version": s["name"], "path": s["path"], "kind": s["kind"], "score": s["score"], **_headlines(s),
                 "groups": _groups(load_results(p))} for s, p in zip(cmp["systems"], paths)]
    steps = []
    for earlier, later in itertools.pairwise(labels):
        p = pairs[(earlier, later)]
        step = {"from": earlier, "to": later,
                "operating_points": [{"target_fpir": op["target_fpir"], "threshold_earlier": op["threshold_a"],
                                      "threshold_later": op["threshold_b"], "fnir_rank1": _flip(op["fnir_rank1"]),
                                      "fpir": _flip(op["fpir"])} for op in p["operating_points"]],
                "rank1_misses": _flip(p["rank1_misses_no_threshold"]), "demographics": []}
        for d in p.get("demographics", []):
            step["demographics"].append({
                "spec": d["spec"], "threshold_earlier": d["threshold_a"], "threshold_later": d["threshold_b"],
                "groups": {g: {m: _flip(c) for m, c in e["paired"].items()} for g, e in d["groups"].items()}})
        steps.append(step)
    out = {"faceaudit_version": __version__,
           "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
           "labels_from": source, "versions": versions, "steps": steps,
           "searches": cmp["searches"], "protocol": cmp["protocol"], "bootstrap": cmp["bootstrap"],
           "conventions": {**cmp["conventions"],
                           "change": "later minus earlier: negative means the later version makes fewer errors; "
                                     "the interval is compare's paired interval, sign flipped"}}
    out["summary"] = summary_sentences(out)
    return out


def _pct(x) -> str:
    return "undefined" if x is None else f"{100 * x:.2f}%"


def _change_sentence(what: str, c: dict, earlier: str, later: str) -> str:
    if c.get("not_measurable"):
        return f"{earlier} -> {later}: {what} not compared ({c['not_measurable']})."
    a, b = c["earlier"], c["later"]
    va = a["errors"] / a["trials"] if a["trials"] else None
    vb = b["errors"] / b["trials"] if b["trials"] else None
    lo, hi = c["ci"]
    ci = f"95% CI {100 * lo:+.2f} to {100 * hi:+.2f} points" if lo is not None else "no interval"
    word = {"significant": "a significant change", "not significant": "no significant change",
            "inconclusive": "inconclusive (the interval from people and McNemar's test disagree)"}[c["verdict"]]
    move = "fell" if c["change"] < 0 else "rose" if c["change"] > 0 else "stayed"
    text = (f"{earlier} -> {later}: {what} {move} from {_pct(va)} to {_pct(vb)} ({100 * c['change']:+.2f} points, {ci}, "
            f"McNemar's {p_words(c['mcnemar_p'])}): {word}")
    re_ci = c.get("ci_threshold_reestimated")
    if c["verdict"] == "significant" and re_ci and re_ci[0] is not None:
        holds = re_ci[0] > 0 or re_ci[1] < 0
        text += (f"; {'it holds' if holds else 'it does not hold'} with the thresholds re-estimated "
                 f"({100 * re_ci[0]:+.2f} to {100 * re_ci[1]:+.2f} points)")
    return text + "."


def summary_sentences(result: dict) -> list[str]:
    lines = []
    for s in result["steps"]:
        for op in s["operating_points"]:
            lines.append(_change_sentence(f"FNIR at rank 1 at FPIR {op['target_fpir']:g}", op["fnir_rank1"],
                                          s["from"], s["to"]))
        lines.append(_change_sentence("the share of mated searches whose mate is not at rank 1 (no threshold)",
                                      s["rank1_misses"], s["from"], s["to"]))
    return lines


def write_series(result: dict, out: str | Path, *, overwrite: bool = False) -> Path:
    """``series.json``, ``summary.txt`` and ``report.html``, atomically."""
    from auditcore.serialize import to_json
    from faceaudit.report.series_html import render
    return write_json_folder(out, "series.json", to_json(result), kind="compare", overwrite=overwrite,
                             summary=result["summary"], pages=(("report.html", render),))

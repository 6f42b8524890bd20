"""The series report (``faceaudit compare --series``): each headline over versions; reads the series dict only."""

from __future__ import annotations

import numpy as np

from auditcore.report import esc, figure, page, subplots, to_data_uri


def _pct(x) -> str:
    return "undefined" if x is None else f"{100 * float(x):.2f}%"


def _rate(r: dict) -> str:
    if r.get("not_measurable"):
        return f"not measurable ({esc(r['not_measurable'])})"
    if r.get("value") is None:
        return "undefined"
    return (f"{_pct(r['value'])} ({r['errors']:,} of {r['trials']:,}) [{_pct(r['ci_low'])} to "
            f"{_pct(r['ci_high'])}]")


def _plot(labels: list, series: list[tuple[str, list[dict]]], ylabel: str, *, invert: bool = False) -> str:
    """One headline over versions: a line per operating point, the audit's 95% interval as bars."""
    fig, ax = subplots(figsize=(6.4, 3.6))
    x = np.arange(len(labels))
    for k, (name, rates) in enumerate(series):
        v = np.array([np.nan if r.get("value") is None else (1 - r["value"] if invert else r["value"]) for r in rates])
        lo = np.array([np.nan if r.get("ci_low") is None else (1 - r["ci_high"] if invert else r["ci_low"]) for r in rates])
        hi = np.array([np.nan if r.get("ci_high") is None else (1 - r["ci_low"] if invert else r["ci_high"]) for r in rates])
        off = (k - (len(series) - 1) / 2) * 0.06
        ax.errorbar(x + off, 100 * v, yerr=[100 * (v - lo), 100 * (hi - v)], marker="o", capsize=3, label=name)
    ax.set_xticks(x)
    ax.set_xticklabels(labels)
    ax.set_xlabel("version")
    ax.set_ylabel(ylabel)
    if len(series) > 1:
        ax.legend(fontsize=8)
    return to_data_uri(fig)


def _thr(t) -> str:
    return "the system's own" if t is None else f"{float(t):.6g}"


def _pts(x: float) -> str:
    """Percentage points with a sign, 0 without one (never '-0.00')."""
    x = 100 * float(x)
    return "0.00" if abs(x) < 0.005 else f"{x:+.2f}"


def _change(c: dict) -> str:
    if c.get("not_measurable"):
        return f"<td colspan='4'>not compared ({esc(c['not_measurable'])})</td>"
    lo, hi = c["ci"]
    ci = f"{_pts(lo)} to {_pts(hi)}" if lo is not None else "undefined"
    re_ci = c.get("ci_threshold_reestimated")
    re_txt = (f"{100 * re_ci[0]:+.2f} to {100 * re_ci[1]:+.2f}" if re_ci and re_ci[0] is not None else
              esc(c.get("ci_threshold_reestimated_not_measurable") or ""))
    return (f"<td>{_pts(c['change'])} [{ci}]</td><td>{re_txt}</td><td>{c['mcnemar_p']:.2g}</td>"
            f"<td>{esc(c['verdict'])}</td>")


def render(result: dict) -> str:
    versions = result["versions"]
    labels = [v["version"] for v in versions]
    targets = [op["target_fpir"] for op in versions[0]["operating_points"]]
    fnir = [(f"FPIR {t:g}", [v["operating_points"][i]["fnir_rank1"] for v in versions]) for i, t in enumerate(targets)]
    fpir = [(f"FPIR {t:g}", [v["operating_points"][i]["fpir"] for v in versions]) for i, t in enumerate(targets)]
    rank1 = [("no threshold", [v["rank1_identification"] for v in versions])]
    figs = (figure(_plot(labels, fnir, "FNIR at rank 1 (%)"), "FNIR at rank 1 at each FPIR operating point, per "
                   "version (each version at its own threshold), with the audit's 95% interval.")
            + figure(_plot(labels, fpir, "FPIR (%)"), "FPIR at each operating point, per version, with its 95% interval.")
            + figure(_plot(labels, rank1, "rank-1 identification rate (%)", invert=True),
                     "Rank-1 identification rate (no threshold), per version, with its 95% interval."))
    head = "".join(f"<th>{esc(x)}</th>" for x in labels)
    rows = "".join(f"<tr><td>FNIR at rank 1, FPIR {t:g}</td>"
                   + "".join(f"<td>{_rate(v['operating_points'][i]['fnir_rank1'])}</td>" for v in versions) + "</tr>"
                   + f"<tr><td>FPIR, target {t:g}</td>"
                   + "".join(f"<td>{_rate(v['operating_points'][i]['fpir'])}</td>" for v in versions) + "</tr>"
                   for i, t in enumerate(targets))
    misses = [v["rank1_identification"] for v in versions]
    rows += ("<tr><td>rank-1 misses (no threshold)</td>" + "".join(f"<td>{_rate(m)}</td>" for m in misses) + "</tr>")
    group_html = ""
    specs = [g["spec"] for g in versions[0].get("groups", [])]
    for spec in specs:
        per = [next((g for g in v.get("groups", []) if g["spec"] == spec), None) for v in versions]
        names = sorted({name for g in per if g for m in ("fnir", "fpir") for name in g["rates"].get(m, {})})
        g_rows = ""
        for name in names:
            for m in ("fnir", "fpir"):
                cells = ""
                for g in per:
                    e = (g or {}).get("rates", {}).get(m, {}).get(name)
                    cells += (f"<td>{_pct(e['value'])} ({e['errors']:,} of {e['trials']:,}) [{_pct(e['ci'][0])} to "
                              f"{_pct(e['ci'][1])}]</td>" if e and e.get("value") is not None and e.get("ci") else
                              "<td>not reported</td>")
                g_rows += f"<tr><td>{esc(name)}: {m.upper()}</td>{cells}</tr>"
        thresholds = ", ".join(_thr(g["threshold"]) if g else "none" for g in per)
        group_html += (f"<h3>Per group: {esc(spec)}, each version</h3><p>Each version at its demographics threshold "
                       f"({esc(thresholds)}), with the audit's own per-group interval.</p><table><tr><th>group: rate</th>"
                       f"{head}</tr>{g_rows}</table>")
    step_html = []
    for s in result["steps"]:
        body = "".join(f"<tr><td>FNIR at rank 1, FPIR {op['target_fpir']:g}</td>{_change(op['fnir_rank1'])}</tr>"
                       f"<tr><td>FPIR, target {op['target_fpir']:g}</td>{_change(op['fpir'])}</tr>"
                       for op in s["operating_points"])
        body += f"<tr><td>rank-1 misses (no threshold)</td>{_change(s['rank1_misses'])}</tr>"
        groups = ""
        for d in s["demographics"]:
            g_rows = "".join(f"<tr><td>{esc(g)}: {esc(m.upper())}</td>{_change(c)}</tr>"
                             for g, e in d["groups"].items() for m, c in e.items())
            groups += (f"<h3>Per group: {esc(d['spec'])}</h3><p>Each version at its demographics threshold "
                       f"({_thr(d['threshold_earlier'])} and {_thr(d['threshold_later'])}).</p><table><tr><th>group: rate</th>"
                       f"<th>change, points [95% CI]</th><th>thresholds re-estimated</th><th>McNemar p</th>"
                       f"<th>verdict</th></tr>{g_rows}</table>")
        step_html.append(f"<h2>{esc(s['from'])} &rarr; {esc(s['to'])}</h2><table><tr><th>figure</th>"
                         "<th>change, points [95% CI]</th><th>thresholds re-estimated</th><th>McNemar p</th>"
                         f"<th>verdict</th></tr>{body}</table>{groups}")
    srch = result["searches"]
    conv = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in result["conventions"].items())
    findings = "".join(f"<li>{esc(x)}</li>" for x in result["summary"])
    sections = [
        (f"<div class='summary'><p>The same {srch['mated']:,} mated and {srch['nonmated']:,} non-mated searches "
        f"({srch['probe_subjects']:,} people) in every version. Versions labelled by {esc(result['labels_from'])}. "
        "A change is later minus earlier, in percentage points (negative: fewer errors).</p>"
        f"<ul class='find'>{findings}</ul></div>"),
        f"<h2>Each version</h2><table><tr><th>figure</th>{head}</tr>{rows}</table><div class='grid'>{figs}</div>"
        + group_html,
        *step_html,
        f"<h2>Conventions</h2><dl class='conv'>{conv}</dl>",
    ]
    return page("faceaudit series", esc(" → ".join(labels)) + f" &middot; faceaudit {esc(result['faceaudit_version'])}",
                sections)

"""Report section for black-box audits: what the lists showed, and what they could not show."""

from __future__ import annotations

from faceaudit.report.html import esc, fmt_rate, fmt_threshold


def _system_point(ident: dict) -> str:
    p = ident.get("at_system_threshold")
    if not p:
        return ""
    ranks = ident["ranks"]
    head = "".join(f"<th>FNIR rank {r}</th>" for r in ranks)
    cells = "".join(f"<td>{fmt_rate(p['fnir'][str(r)])}</td>" for r in ranks)
    t = fmt_threshold(p["threshold"]) if p.get("threshold_known") else "applied, value not known"
    return ("<h3>At the system's own threshold</h3>"
            "<p>What the system did as deployed: a search of someone not in the gallery is a false positive when "
            "its list is not empty; a search of someone enrolled is a miss at rank R when the mate is not listed "
            "within rank R.</p>"
            f"<table><tr><th>threshold</th><th>FPIR</th>{head}</tr><tr><td>{t}</td><td>{fmt_rate(p['fpir'])}</td>"
            f"{cells}</tr></table>")


def render(results: dict) -> str:
    bb = results["blackbox"]
    ident = results["identification"]
    systems = "; ".join(f"{esc(s['system'])}" + (f" ({esc(', '.join(s['versions']))})" if s["versions"] else "")
                        + (f", scores on {esc(s['score_scale'])}" if s.get("score_scale") else "")
                        for s in bb["systems"])
    thr = ("none" if not bb["threshold_applied"] else
           ("applied, value unknown (bounded by the lowest score returned)" if bb["threshold_unknown"]
            else ", ".join(f"{t:.6g}" for t in bb["threshold"])))
    dom = bb["fpir_measurable_from"]
    if dom["from"] is None:
        fpir_dom = "nowhere (rank-only lists)"
    elif dom["from"] in ("-inf", float("-inf")):
        fpir_dom = "at every threshold (every non-mated search returned a list or nothing was cut)"
    else:
        fpir_dom = f"for T {'&ge;' if dom['inclusive'] else '&gt;'} {float(dom['from']):.6g}"
    nm = "".join(f"<li>{esc(k.replace('_', ' '))}: {esc(v)}</li>" for k, v in bb["not_measurable"].items())
    rows = (f"<tr><td>system</td><td>{systems}</td></tr>"
            f"<tr><td>searches</td><td>{bb['n_searches']:,}</td></tr>"
            f"<tr><td>list length asked for (L)</td><td>{', '.join(map(str, bb['list_length']))}</td></tr>"
            f"<tr><td>system threshold (t)</td><td>{thr}</td></tr>"
            f"<tr><td>scores</td><td>{'none (rank-only lists)' if bb['rank_only'] else 'given'}</td></tr>"
            f"<tr><td>full lists (L returned) / empty lists</td><td>{bb['full_lists']:,} / {bb['empty_lists']:,}</td></tr>"
            f"<tr><td>candidates returned</td><td>{bb['candidates']:,}</td></tr>"
            f"<tr><td>FPIR(T) measurable</td><td>{fpir_dom}</td></tr>"
            f"<tr><td>CMC measurable to rank</td><td>{bb['cmc_measurable_to_rank']}</td></tr>")
    return ("<h2>Black-box audit: what the candidate lists show</h2>"
            "<p class='warn'>These figures were read from the candidate lists the system returned, not computed from "
            "its scores. A list of length L cut at the system's threshold t shows FPIR(T) only for T &ge; t and "
            "FNIR(R, T) only for R &le; L or T &ge; t; every figure outside that is marked <i>not measurable</i> "
            "(hover for the reason), never estimated.</p>"
            f"<table>{rows}</table>" + _system_point(ident)
            + f"<h3>Not measurable from candidate lists</h3><ul>{nm}</ul>")

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


def _scale(results: dict) -> str:
    sc = results.get("scale_from_lists")
    if not sc:
        return ""
    if sc.get("not_measurable"):
        return f"<h3>Scale from the lists</h3><p class='muted'>Not measurable: {esc(sc['not_measurable'])}.</p>"
    from faceaudit.report import plots
    from faceaudit.report.bands import fpir_statement, lookalike_statement
    from faceaudit.report.scale_section import _pct, extrapolation_plot, growth_plot
    val = "".join(
        f"<tr><td>{fmt_threshold(v['threshold'])}</td><td>{_pct(v['measured_fpir'])} [{_pct(v['measured_ci'][0])}, "
        f"{_pct(v['measured_ci'][1])}]</td><td>{_pct(v['independence_prediction'])} [{_pct(v['independence_ci'][0])}, "
        f"{_pct(v['independence_ci'][1])}] {'agrees' if v['independence_agrees'] else '<b>disagrees</b>'}</td></tr>"
        for v in sc["validation"])
    ext = "".join(
        f"<tr><td>{fmt_threshold(r['threshold'])}</td><td>{r['gallery_size']:,.0f}</td><td>{esc(r['fmr_source'])}</td>"
        f"<td>{esc(fpir_statement(r)['text'])}</td>"
        f"<td>{esc(lookalike_statement(r['expected_impostors_above_threshold'], r['expected_lo'], r['expected_hi'], r.get('expected_count'))['text'])}</td></tr>"
        for r in sc["extrapolation"])
    skipped = "".join(f"<li>T = {fmt_threshold(x['threshold'])}: {esc(x['not_measurable'])}</li>" for x in sc["not_measurable"])
    tf = sc.get("tail_fit")
    tail = (f"<p>Tail model: generalised Pareto above u = {tf['u']:.4g} ({tf['n_exceed']:,} of {tf['n_total']:,} "
            f"impostor comparisons), shape {tf['xi']:.3g}, scale {tf['sigma']:.3g}; u by {esc(sc['tail_fit_rule'])}.</p>"
            if tf else f"<p class='muted'>Tail model {esc(sc['tail_fit_rule'])}.</p>")
    assumptions = "".join(f"<li>{esc(a)}</li>" for a in sc["assumptions"])
    figs = ""
    if sc["models"]:
        figs = (f'<div class="grid"><figure><img src="{plots.to_data_uri(growth_plot(sc))}" alt="FPIR against gallery size">'
                "<figcaption>FPIR(N) for random galleries of N of the enrolled people (exact mean over all such galleries, "
                "from the listed scores); lines: 1-(1-FMR)^N.</figcaption></figure>"
                f'<figure><img src="{plots.to_data_uri(extrapolation_plot(sc))}" alt="extrapolation">'
                "<figcaption>EXTRAPOLATED: expected non-mates scoring at or above T per search, N &times; FMR(T).</figcaption>"
                "</figure></div>")
    return ("<h3>Scale from the lists: false positives against gallery size</h3>"
            f"<p>The lists of the {sc['gallery_size']:,}-person gallery show every impostor score at or above "
            f"{sc['observed_level']:.6g} ({sc['listed_impostor_scores']:,} of {sc['impostor_comparisons']:,} impostor "
            "comparisons of the non-mated searches): above that level FMR and FPIR at smaller galleries are exact.</p>"
            + (f"<ul>{skipped}</ul>" if skipped else "") + figs
            + "<table><tr><th>threshold</th><th>measured FPIR [95% CI]</th><th>independence model from FMR</th></tr>"
            f"{val}</table>{tail}"
            "<table><tr><th>threshold</th><th>gallery size</th><th>FMR from</th><th>FPIR (extrapolated) [band]</th>"
            f"<th>expected look-alikes &ge; T per search [band]</th></tr>{ext}</table>"
            f"<p><b>Assumptions behind every extrapolated figure:</b></p><ul>{assumptions}</ul>")


def _groups(results: dict) -> str:
    d = results.get("demographics_from_lists")
    if not d:
        return ""
    from faceaudit.report import plots
    from faceaudit.report.demographics_section import _cell, bars
    thr = "the system's own threshold" if d["threshold"] is None else fmt_threshold(d["threshold"])
    out = [f"<h3>Demographic differentials from the lists</h3><p>At {thr} ({esc(d['threshold_rule'])}); intervals: "
           f"{esc(d['bootstrap'])}. FMR, FNMR, cross-group FMR and per-group thresholds are not measurable from "
           "candidate lists.</p>"]
    for a in d["analyses"]:
        rows = "".join(f"<tr><td>{esc(g)}</td><td>{a['group_sizes'][g]['probe_subjects']:,}</td>"
                       f"{_cell(a['rates']['fnir'].get(g))}{_cell(a['rates']['fpir'].get(g))}</tr>" for g in a["groups"])
        findings = "".join(f"<li>{esc(f)}</li>" for f in a["findings"]) or "<li>No ranked pair of groups to compare.</li>"
        out.append(f"<h4>Grouped by {esc(a['spec'])}</h4><ul>{findings}</ul>"
                   "<table><tr><th>group</th><th>probe people</th><th>FNIR rank 1</th><th>FPIR</th></tr>"
                   f"{rows}</table>"
                   f'<figure><img style="width:100%" src="{plots.to_data_uri(bars(a, d["min_group_size"]))}" '
                   'alt="per-group rates"></figure>')
    return "".join(out)


def _decision_point(ident: dict) -> str:
    p = ident.get("at_system_decision")
    if not p:
        return ""
    return ("<h3>By the system's own match decisions</h3>"
            f"<p>{esc(p['note'])}.</p><table><tr><th>FPIR</th><th>FNIR</th></tr>"
            f"<tr><td>{fmt_rate(p['fpir'])}</td><td>{fmt_rate(p['fnir'])}</td></tr></table>")


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
            f"<table>{rows}</table>" + _system_point(ident) + _decision_point(ident)
            + f"<h3>Not measurable from candidate lists</h3><ul>{nm}</ul>" + _groups(results) + _scale(results))

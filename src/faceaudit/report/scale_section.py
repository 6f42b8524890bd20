"""Report section: FPIR against gallery size, measured, modelled, validated and extrapolated."""

from __future__ import annotations

from matplotlib.ticker import NullFormatter
import numpy as np

from faceaudit.report import plots
# how a band is stated: one place, read by every table, text and the terminal (re-exported here)
from faceaudit.report.bands import (  # noqa: F401
    CANNOT_SAY_WIDTH, COUNT_RANGE_RATIO, figure_sizes_sentence, fpir_statement, lookalike_statement)
from faceaudit.report.html import esc, fmt_threshold

COLOURS = ["#2c3e80", "#c0392b", "#1e8449", "#8e44ad", "#d35400"]


def _thr(t: float) -> str:
    from faceaudit.report.html import UNITS
    return f"distance {-t:.4g}" if UNITS["score"] == "neg_euclidean" else f"T={t:.4g}"


def _num(v):
    return np.array([np.nan if x is None or isinstance(x, str) else float(x) for x in v], dtype=float)


def growth_plot(scale: dict):
    fig, ax = plots.subplots(figsize=(6.2, 4.3))
    rows = scale["measured"]["rows"]
    for i, model in enumerate(scale["models"]):
        t = model["threshold"]
        colour = COLOURS[i % len(COLOURS)]
        mine = [r for r in rows if np.isclose(r["threshold"], t, rtol=0, atol=1e-7)]
        n = np.array([r["gallery_size"] for r in mine], float)
        y = _num([r["fpir"] for r in mine])
        lo = _num([r["fpir_ci"][0] for r in mine])
        hi = _num([r["fpir_ci"][1] for r in mine])
        ax.errorbar(n, y, yerr=[np.clip(y - lo, 0, None), np.clip(hi - y, 0, None)], fmt="o", ms=4, color=colour,
                    capsize=2, label=f"measured, {_thr(t)}")
        ind = model["independence"]
        m_n = np.array(ind["n"], float)
        keep = m_n <= n.max() * 1.5
        ax.plot(m_n[keep], _num(ind["fpir"])[keep], "-", color=colour, lw=1, alpha=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("gallery size N (enrolled people)")
    ax.set_ylabel("FPIR at fixed threshold")
    ax.set_title("Measured FPIR(N) (dots, 95% CI) and 1-(1-FMR)^N (lines)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=9)
    return fig


def extrapolation_plot(scale: dict):
    fig, ax = plots.subplots(figsize=(6.2, 4.3))
    thresholds = sorted({r["threshold"] for r in scale["extrapolation"]})
    for i, t in enumerate(thresholds):
        colour = COLOURS[i % len(COLOURS)]
        rows = [r for r in scale["extrapolation"] if r["threshold"] == t]
        n = np.array([r["gallery_size"] for r in rows], float)
        e = _num([r["expected_impostors_above_threshold"] for r in rows])
        lo = _num([r["expected_lo"] for r in rows])
        hi = _num([r["expected_hi"] for r in rows])
        ax.plot(n, e, "o--", color=colour, ms=4, label=_thr(t))
        ax.fill_between(n, np.maximum(lo, 1e-12), np.maximum(hi, 1e-12), color=colour, alpha=0.15)
    ax.axhline(1, color="#555", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("gallery size N (EXTRAPOLATED)")
    ax.set_ylabel("expected non-mates scoring >= T per search")
    ax.set_title("Extrapolation: look-alikes above threshold per search")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=9)
    return fig


def report_card_plots(scale: dict):
    """NIST-FRTE-style: FNIR (rank 1) at fixed FPIR against gallery size, and the rank-1 miss rate
    (no threshold) against gallery size, each with 95% intervals."""
    m = scale["measured"]
    fig, axes = plots.subplots(1, 2, figsize=(10.4, 4.2))
    ax = axes[0]
    targets = sorted({r["target_fpir"] for r in m.get("fnir_at_fpir", [])}, reverse=True)
    for i, target in enumerate(targets):
        rows = [r for r in m["fnir_at_fpir"] if r["target_fpir"] == target]
        n = np.array([r["gallery_size"] for r in rows], float)
        y = np.array([r["fnir_rank1"] for r in rows], float)
        lo = _num([r["ci"][0] for r in rows])
        hi = _num([r["ci"][1] for r in rows])
        ax.errorbar(n, y, yerr=[np.clip(y - lo, 0, None), np.clip(hi - y, 0, None)], fmt="o-", ms=4, capsize=2,
                    color=COLOURS[i % len(COLOURS)], label=f"FPIR = {target:g}")
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("gallery size N (enrolled people)")
    ax.set_ylabel("FNIR at rank 1 (mated searches missed)")
    ax.set_title("FNIR at fixed FPIR (threshold re-set at each N)")
    ax.grid(True, which="both", alpha=0.3)
    if targets:
        ax.legend(loc="best")
    ax = axes[1]
    rows = [r for r in m["rank1"] if r.get("rank1_miss_rate") is not None]
    n = np.array([r["gallery_size"] for r in rows], float)
    y = np.array([r["rank1_miss_rate"] for r in rows], float)
    lo = _num([r["rank1_miss_ci"][0] for r in rows])
    hi = _num([r["rank1_miss_ci"][1] for r in rows])
    ax.errorbar(n, y, yerr=[np.clip(y - lo, 0, None), np.clip(hi - y, 0, None)], fmt="o-", ms=4, capsize=2,
                color=COLOURS[1])
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("gallery size N (enrolled people)")
    ax.set_ylabel("rank-1 miss rate (no threshold)")
    ax.set_title("Rank-1 miss rate against gallery size")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def _pct(v):
    if v is None:
        return '<span class="muted">n/a</span>'
    if v > 0.9995:
        return "&gt;0.999"
    return f"{v:.3g}"


def render(results: dict) -> str:
    scale = results["scale"]
    m = scale["measured"]
    val_rows = ""
    notes = []
    for v in scale["validation"]:
        def cell(pred, ci, verdict):
            if pred is None:
                return '<td class="muted">n/a (below tail threshold)</td>'
            mark = "agrees" if verdict == "agrees" else f"<b>{esc(verdict)}</b>"
            return f"<td>{_pct(pred)} [{_pct(ci[0])}, {_pct(ci[1])}] {mark}</td>"
        val_rows += (f"<tr><td>{fmt_threshold(v['threshold'])}</td><td>{v['fit_gallery_size']:,} &rarr; {v['predicted_gallery_size']:,}</td>"
                     f"<td>{_pct(v['measured_fpir'])} [{_pct(v['measured_ci'][0])}, {_pct(v['measured_ci'][1])}]</td>"
                     + cell(v["independence_prediction"], v["independence_ci"], v.get("independence_verdict"))
                     + cell(v["tail_prediction"], v["tail_ci"], v.get("tail_verdict"))
                     + ("<td class='muted'>n/a</td>" if v.get("band") is None else
                        f"<td>[{_pct(v['band'][0])}, {_pct(v['band'][1])}] {'holds' if v['band_holds'] else '<b>misses</b>'}"
                        + ("" if v.get("figure_prediction") is None else
                           f"; figure {_pct(v['figure_prediction'])} "
                           + ("agrees" if v.get("figure_verdict") == "agrees" else f"<b>{esc(v.get('figure_verdict') or '')}</b>"
                              " (so no figure is given at this threshold)"))
                        + "</td>")
                     + "</tr>")
        bad = [(v[f"{k}_prediction"], v.get(f"{k}_verdict")) for k in ("independence", "tail")
               if v.get(f"{k}_verdict") in ("over-predicts", "under-predicts")]
        if bad:
            pred = bad[0][0]
            direction = "more" if bad[0][1] == "over-predicts" else "fewer"
            consequence = ("so the extrapolated FPIR below is probably too high at this threshold"
                           if direction == "more" else "so the extrapolated FPIR below is probably too low at this threshold")
            notes.append(f"At threshold {fmt_threshold(v['threshold'])}, a model fitted on {v['fit_gallery_size']:,} people predicted "
                         f"{direction} false positives at {v['predicted_gallery_size']:,} people than were measured "
                         f"({pred:.3g} against {v['measured_fpir']:.3g}, outside the measured interval "
                         f"{_pct(v['measured_ci'][0])} to {_pct(v['measured_ci'][1])}). A likely cause, when it persists "
                         "across thresholds: searches are not independent draws; some probes attract many high non-mate "
                         "scores (look-alikes, relatives, duplicates, poor images) while most attract none, "
                         f"{consequence}. With few false positives it can also be chance. faceaudit's band does not rely "
                         "on independence, nor does the expected number of look-alikes per search (N x FMR).")
    ext_rows = ""
    claimed = scale.get("claimed_gallery_size")
    for r in scale["extrapolation"]:
        st = fpir_statement(r)
        fp = (esc(st["text"]) if st["kind"] != "cannot_say" else
              f"<span class='muted'>{esc(st['text'])} ({esc(st['detail'])})</span>")
        if st["kind"] not in ("figure", "cannot_say"):
            fp = f"<span class='muted'>{fp}</span>"
        size = f"{r['gallery_size']:,.0f}" + (" (claimed)" if claimed and r["gallery_size"] == claimed else "")
        look = lookalike_statement(r.get("expected_impostors_above_threshold"), r.get("expected_lo"), r.get("expected_hi"),
                                   r.get("expected_count"))
        ext_rows += (f"<tr><td>{fmt_threshold(r['threshold'])}</td><td>{size}</td><td>{esc(r['fmr_source'])}</td>"
                     f"<td>{fp}</td><td>{esc(look['text'])}</td></tr>")
    beyond_txt = [figure_sizes_sentence([r for r in scale["extrapolation"] if r["threshold"] == t], fmt_threshold(t))
                  for t in sorted({r["threshold"] for r in scale["extrapolation"]})]

    from faceaudit.report.chance import chance_text, resolution
    ident = results.get("identification") or {}
    finest = resolution(ident.get("n_mated_searches", 0) + ident.get("n_nonmated_searches", 0))

    reasons: list[str] = []

    def _why(e) -> str:
        """A footnote mark for why explain gives no single figure (the reasons listed under the table)."""
        marks = []
        for why in e.get("not_supported_because") or []:
            if why not in reasons:
                reasons.append(why)
            marks.append(str(reasons.index(why) + 1))
        return f"<sup>{','.join(marks)}</sup>" if marks else ""

    def _p(e):
        """explain's answer as explain states it (``statement``: figure, bound, range, cannot_say),
        never finer than the audit resolves (a bound below 1 in its searches)."""
        lo, hi = (e.get("interval") or [None, None])
        if lo is None:
            return f"{e['p_mate']:.3g}" if e["p_mate"] is not None else "<span class='muted'>not estimable</span>"
        text = esc(chance_text(e["p_mate"], lo, hi, finest))
        if e.get("statement") == "cannot_say":
            return f"<span class='muted'>these data cannot say: {text}</span>{_why(e)}"
        if e["p_mate"] is not None or text.split(" ")[0] in ("less", "more", "at"):
            return text + _why(e)
        return f"<span class='muted'>no single figure: {text}</span>{_why(e)}"

    exp_rows = "".join(
        f"<tr><td>{fmt_threshold(e['score'])}</td><td>{e['gallery_size']:,}</td><td>{e['prior']:.0%}</td>"
        f"<td>{_p(e)}</td></tr>" for e in scale.get("explain", []))
    why_html = "".join(f"<li>{esc(w)}</li>" for w in reasons)
    why_html = f"<ol class='sub'>{why_html}</ol>" if why_html else ""
    tf = scale["tail_fit"]
    assumptions = "".join(f"<li>{esc(a)}</li>" for a in scale["assumptions"])
    rank1 = ", ".join(f"N={r['gallery_size']:,}: {r['rank1_identification_rate']:.3g}" for r in m["rank1"]
                      if r["rank1_identification_rate"] is not None)
    note_html = "".join(f"<p class='warn'>{esc(n)}</p>" for n in notes)
    return (
        "<h2>Scale: false positives against gallery size</h2>"
        f"<p>Nested random galleries of {', '.join(f'{s:,}' for s in m['sizes'])} people "
        f"({m['n_seeds']} seeds{', with ' + format(m['n_distractors'], ',') + ' distractors' if m['n_distractors'] else ''}); "
        "thresholds fixed at the audit's operating points. At a fixed threshold every person added to the gallery "
        "is one more chance for a stranger's search to return someone.</p>"
        f"<p>Rank-1 identification rate (no threshold) against N: {rank1}.</p>"
        f'<figure><img style="width:100%" src="{plots.to_data_uri(report_card_plots(scale))}" alt="FNIR at fixed FPIR and rank-1 miss rate against gallery size">'
        "<figcaption>Left: FNIR at rank 1 at fixed FPIR, the threshold re-set in every gallery (as NIST FRTE reports). "
        "Right: rank-1 miss rate with no threshold. Means over seeds; 95% Clopper-Pearson intervals.</figcaption></figure>"
        f'<div class="grid"><figure><img src="{plots.to_data_uri(growth_plot(scale))}" alt="FPIR against gallery size">'
        "<figcaption>Measured FPIR(N) with 95% intervals; lines: the independence model 1-(1-FMR(T))^N with FMR "
        "from all impostor comparisons.</figcaption></figure></div>"
        "<h3>Do the models predict what was measured?</h3>"
        "<table><tr><th>threshold</th><th>fit on &rarr; predict</th><th>measured FPIR [95% CI]</th>"
        "<th>independence model [interval]</th><th>tail model [interval]</th><th>faceaudit's band (fitted on the small gallery)</th></tr>"
        f"{val_rows}</table>{note_html}"
        f"<p>Tail model: generalised Pareto beyond u = {fmt_threshold(tf['u'])} ({tf['n_exceed']:,} of {tf['n_total']:,} impostor "
        f"comparisons), shape {tf['xi']:.3g} [{tf['xi_ci'][0]:.3g}, {tf['xi_ci'][1]:.3g}], scale {tf['sigma']:.3g}; "
        f"Kolmogorov-Smirnov p = {tf['ks_pvalue']:.3g} (approximate; a small p means the tail model fits poorly).</p>"
        "<h3>Extrapolation (not measured)</h3>"
        f'<div class="grid"><figure><img src="{plots.to_data_uri(extrapolation_plot(scale))}" alt="extrapolation">'
        "<figcaption>EXTRAPOLATED: expected number of non-mates scoring at or above the threshold in one search, "
        "N &times; FMR(T) from the audit's counts, with 95% intervals from people (probe and gallery people as "
        "clusters, not independent comparisons).</figcaption></figure>"
        f"<div><p><b>Assumptions behind every extrapolated figure:</b></p><ul>{assumptions}</ul></div></div>"
        f"<p>Band rule: {esc(scale.get('band_rule', ''))}. {esc('. '.join(beyond_txt)) + '.' if beyond_txt else ''}</p>"
        "<table><tr><th>threshold</th><th>gallery size</th><th>FMR for the FPIR figure from</th><th>FPIR (extrapolated)</th>"
        f"<th>expected look-alikes &ge; T per search</th></tr>{ext_rows}</table>"
        "<p class='sub'>What the intervals cover: the look-alike interval covers new searches of new people against a "
        "gallery of new people of the same kind as this audit's (people, probe and gallery, count as the units, so a few "
        "people who attract many look-alikes widen it); it does not cover another kind of gallery or population, and it "
        "cannot see a kind of person the audit does not contain. The FPIR band adds the extrapolation's assumptions "
        "(above). Measured coverage: docs/scale.md.</p>"
        "<h3>What one search result means</h3>"
        "<p>Chance that a top candidate at this score is the person searched for rather than a look-alike, when "
        "before the search it was 50/50 whether the person is in the gallery at all (<code>faceaudit explain</code> "
        "gives intervals and other priors).</p>"
        f"<table><tr><th>top score</th><th>gallery size</th><th>prior</th><th>P(top candidate is the person)</th></tr>{exp_rows}</table>"
        f"{why_html}")

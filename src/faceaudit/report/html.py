"""One self-contained ``report.html`` (inline CSS, PNG figures as data URIs; works offline).

Sections are plain functions of the results dict. Later sections (demographics, scale) plug in
through :data:`EXTRA_SECTIONS`: ``(results key, module, function)`` rendered when the key exists.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from faceaudit.report import plots

EXTRA_SECTIONS = [
    ("demographics", "faceaudit.report.demographics_section", "render"),
    ("scale", "faceaudit.report.scale_section", "render"),
]

# The page shell (CSS, escaping, figure embedding, page skeleton) lives in the shared core.
from auditcore.report import CSS, esc, figure as _figure, page  # noqa: E402,F401


def fmt_rate(r: dict | None, digits: int = 3) -> str:
    """``0.0123 [0.0100, 0.0150] (123/10000)``, or ``undefined (0 trials)``."""
    if not r or r.get("trials", 0) == 0 or r.get("value") is None:
        return '<span class="muted">undefined (0 trials)</span>'
    return (f"{r['value']:.{digits}g} <span class='muted'>[{r['ci_low']:.{digits}g}, "
            f"{r['ci_high']:.{digits}g}] ({r['errors']}/{r['trials']})</span>")


def fmt_threshold(t) -> str:
    if t is None:
        return '<span class="muted">undefined</span>'
    if isinstance(t, str):
        return esc(t)
    return f"{t:.6g}"


def one_in(value: float | None) -> str:
    if value is None:
        return "an undefined share of"
    if value == 0:
        return "none of the"
    return f"1 in {1 / value:,.0f}" if value < 0.2 else f"{value:.0%} of"


def summary(results: dict) -> str:
    ident = results["identification"]
    proto = results["protocol"]
    ops = [op for op in ident["operating_points"] if op.get("threshold") is not None]
    parts = []
    if ops:
        op = ops[len(ops) // 2] if len(ops) > 1 else ops[0]
        f, m = op["fpir"], op["fnir"]["1"]
        parts.append(
            f"<p>At threshold <b>{fmt_threshold(op['threshold'])}</b> (set so that at most "
            f"{op['target_fpir'] * 100:g}% of non-mated searches return a candidate), <b>{one_in(f['value'])} searches of "
            f"people not in the gallery returned someone anyway</b> ({f['errors']:,} of {f['trials']:,} searches; "
            f"FPIR {fmt_rate(f)}).</p>")
        parts.append(
            f"<p>At the same threshold, <b>{one_in(m['value'])} searches of people who were in the gallery "
            f"did not return them as the top candidate</b> ({m['errors']:,} of {m['trials']:,}; FNIR at rank 1 "
            f"{fmt_rate(m)}).</p>")
    parts.append(f"<p>Gallery: {proto['gallery_size']:,} enrolled people; {ident['n_mated_searches']:,} searches of "
                 f"enrolled people and {ident['n_nonmated_searches']:,} of people not enrolled. "
                 "Brackets give 95% confidence intervals and counts.</p>")
    return '<div class="summary">' + "".join(parts) + "</div>"


def _synthetic_note(results: dict) -> str:
    syn = results.get("synthetic")
    if not syn:
        return ""
    rows = "".join(
        f"<tr><td>{esc(c['measure'])}</td><td>{fmt_threshold(c['threshold'])}</td><td>{c['true']:.4g}</td>"
        f"<td>{fmt_rate(c['measured'])}</td><td>{'yes' if c['inside_ci'] else '<b>no</b>'}</td></tr>"
        for c in syn.get("checks", []))
    return (f'<p class="warn"><b>Synthetic data.</b> {esc(syn.get("description", ""))} No real face or person is '
            "involved. Its true error rates are known exactly, so this run checks the tool itself: at thresholds where the "
            "true FPIR is 10%, 1% and 0.1%, each measured rate's 95% interval should contain the true value about 95% "
            "of the time.</p>"
            "<table><tr><th>measure</th><th>threshold</th><th>true value</th><th>measured [95% CI]</th>"
            f"<th>truth inside CI</th></tr>{rows}</table>")


def identification_section(results: dict) -> str:
    ident = results["identification"]
    ranks = ident["ranks"]
    head = "".join(f"<th>FNIR rank {r}</th>" for r in ranks)
    rows = ""
    for op in ident["operating_points"] + ident.get("at_thresholds", []):
        label = f"FPIR target {op['target_fpir']:g}" if "target_fpir" in op else "given threshold"
        if op.get("threshold") is None:
            rows += f"<tr><td>{label}</td><td colspan='{len(ranks) + 2}' class='muted'>undefined</td></tr>"
            continue
        cells = "".join(f"<td>{fmt_rate(op['fnir'][str(r)])}</td>" for r in ranks)
        rows += f"<tr><td>{label}</td><td>{fmt_threshold(op['threshold'])}</td><td>{fmt_rate(op['fpir'])}</td>{cells}</tr>"
    r1 = ident["rank1_identification_rate"]
    figs = "".join([
        _figure(plots.to_data_uri(plots.det_identification(ident)), "Identification DET: FNIR (rank 1) against FPIR as the threshold varies; dots: operating points."),
        _figure(plots.to_data_uri(plots.rates_vs_threshold(ident)), "FPIR and FNIR (rank 1) against threshold; dotted: operating thresholds."),
        _figure(plots.to_data_uri(plots.cmc(ident)), "CMC: share of mated searches with the mate within rank r (no threshold)."),
        _figure(plots.to_data_uri(plots.score_distributions(results["distributions"])), "Genuine and impostor score distributions, and each non-mated search's best score (what FPIR thresholds)."),
    ])
    rate = r1["rate"]
    return (
        "<h2>Open-set identification (ISO/IEC 19795-1)</h2>"
        "<p>FPIR(T): share of non-mated searches returning at least one candidate with score &ge; T (one error per search). "
        "FNIR(R, T): share of mated searches whose mate is not in the top R or scores below T. "
        "Operating thresholds are the lowest thresholds whose FPIR count is at most floor(target &times; searches).</p>"
        f"<table><tr><th>operating point</th><th>threshold</th><th>FPIR</th>{head}</tr>{rows}</table>"
        f"<p>Rank-1 identification rate with no threshold: <b>{'undefined' if rate is None else f'{rate:.4g}'}</b> "
        f"(misses {fmt_rate(r1['misses'])}).</p>"
        f'<div class="grid">{figs}</div>')


def verification_section(results: dict) -> str:
    v = results["verification"]
    rows = ""
    for p in v["fnmr_at_fmr"]:
        if not p["measurable"]:
            rows += (f"<tr><td>{p['target_fmr']:g}</td><td colspan='3' class='muted'>not measurable: needs at least "
                     f"{1 / p['target_fmr']:,.0f} impostor comparisons, have {v['n_impostor']:,}</td></tr>")
        else:
            rows += (f"<tr><td>{p['target_fmr']:g}</td><td>{fmt_threshold(p['threshold'])}</td>"
                     f"<td>{fmt_rate(p['fmr'])}</td><td>{fmt_rate(p['fnmr'])}</td></tr>")
    eer = v["eer"]
    eer_txt = ("undefined" if eer["threshold"] is None else
               f"{eer['eer_midpoint']:.4g} at threshold {fmt_threshold(eer['threshold'])} "
               f"(FMR {fmt_rate(eer['fmr'])}, FNMR {fmt_rate(eer['fnmr'])}; midpoint of the two where they are closest)")
    return (
        "<h2>Verification on the same comparisons</h2>"
        f"<p>{v['n_genuine']:,} genuine and {v['n_impostor']:,} impostor probe-gallery comparisons. "
        "FMR(T): impostor comparisons with score &ge; T; FNMR(T): genuine comparisons with score &lt; T.</p>"
        f"<p>EER: {eer_txt}.</p>"
        f"<table><tr><th>target FMR</th><th>threshold</th><th>FMR</th><th>FNMR</th></tr>{rows}</table>"
        f'<div class="grid">{_figure(plots.to_data_uri(plots.det_verification(v)), "Verification DET: FNMR against FMR.")}</div>')


def fte_section(results: dict) -> str:
    fte = results.get("failure_to_enrol") or {}
    if not fte.get("failed"):
        return ""
    how = ("counted as misses (mated) and as searches returning no one (non-mated), ISO/IEC 19795-1 generalised rates"
           if fte["counted_as_misses"] else "left out of FPIR and FNIR")
    return (f"<p class='warn'><b>Failure to enrol:</b> {fte['failed']:,} of {fte['attempts']:,} images "
            f"({fte['rate']:.2%}) produced no template; {fte['failed_mated_searches']:,} were searches of enrolled "
            f"people and {fte['failed_nonmated_searches']:,} of others, {how}.</p>")


def setup_section(results: dict) -> str:
    inp, proto = results["input"], results["protocol"]
    rows = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in {**inp, **proto}.items())
    conv = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in results["conventions"].items())
    return (f"<h2>What was audited</h2><table>{rows}</table>"
            f"<h2>Definitions and conventions</h2><dl class='conv'>{conv}</dl>")


def render_report(results: dict) -> str:
    """The report as one HTML string."""
    sections = [summary(results), _synthetic_note(results), fte_section(results),
                identification_section(results), verification_section(results)]
    for key, module, func in EXTRA_SECTIONS:
        if results.get(key):
            sections.append(getattr(importlib.import_module(module), func)(results))
    sections.append(setup_section(results))
    title = "faceaudit report"
    sub = (f"{esc(results['input'].get('source', ''))} &middot; score: {esc(results['input']['score'])} "
           f"&middot; faceaudit {esc(results['faceaudit_version'])} &middot; {esc(results['created'])}")
    return page(title, sub, sections)


def write_report(results: dict, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(render_report(results), encoding="utf-8")
    return path

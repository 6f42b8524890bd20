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
    ("blackbox", "faceaudit.report.blackbox_section", "render"),
]

# The page shell (CSS, escaping, figure embedding, page skeleton) lives in the shared core.
from auditcore.report import (  # noqa: F401
    CSS,
    dict_table,
    esc,
    fmt_value,
    human_key,
    page,
    provenance_essentials,
    provenance_section,
    warnings_banner,
)
from auditcore.report import figure as _figure


def _no_rate(r: dict | None) -> str | None:
    """Why a rate cell shows no figure (not measurable from the lists; no trials), else None."""
    if r and r.get("not_measurable"):
        return f'<span class="muted" title="{esc(r["not_measurable"])}">not measurable from the lists</span>'
    if not r or r.get("trials", 0) == 0 or r.get("value") is None:
        return '<span class="muted">undefined (0 trials)</span>'
    return None


def fmt_rate(r: dict | None, digits: int = 3) -> str:
    """``0.0123 [0.0100, 0.0150] (123/10000)``, or ``undefined (0 trials)``, or why it is not measurable."""
    if (why := _no_rate(r)) is not None:
        return why
    return (f"{r['value']:.{digits}g} <span class='muted'>[{r['ci_low']:.{digits}g}, "
            f"{r['ci_high']:.{digits}g}] ({r['errors']:,}/{r['trials']:,})</span>")


def pct(x, digits: int = 3) -> str:
    """A share as a percentage (``0.0302`` -> ``3.02%``), for sentences, which never mix a percentage
    with a fraction."""
    if x is None:
        return "undefined"
    if x == 0:
        return "0%"
    return f"{100 * x:.{digits}g}%"


def fmt_rate_pct(r: dict | None) -> str:
    """:func:`fmt_rate` in percentages: ``1.00% [0.715%, 1.36%] (40 of 4,000)``."""
    if (why := _no_rate(r)) is not None:
        return why
    return (f"{pct(r['value'])} <span class='muted'>[{pct(r['ci_low'])}, {pct(r['ci_high'])}] "
            f"({r['errors']:,} of {r['trials']:,})</span>")


# The reader's names for the keys of results["input"] and results["protocol"] (any other key: its
# words, see auditcore.report.human_key).
LABELS = {
    "source": "Templates from", "n_templates": "Templates", "dim": "Template dimension",
    "score": "Comparison score", "top_k": "Candidate list length", "model": "Model",
    "claimed_gallery_size": "Claimed gallery size", "manifest": "Manifest", "templates": "Templates file",
    "evalset": "Evaluation set", "failures": "Failures file", "protocol": "Protocol file",
    "kind": "Protocol", "seed": "Seed", "enrol_fraction": "Share of eligible people enrolled",
    "gallery_per_subject": "Gallery templates per person", "eligible_subjects": "People eligible for enrolment",
    "enrolled_subjects": "Enrolled people", "n_gallery_templates": "Gallery templates",
    "gallery_size": "Gallery size (enrolled people)", "n_mated_probes": "Mated searches (of enrolled people)",
    "n_nonmated_probes": "Non-mated searches (of people not enrolled)", "n_comparisons": "Comparisons (search x gallery)",
    "n_mated_searches": "Mated searches", "n_nonmated_searches": "Non-mated searches",
    "name": "Name", "version": "Version", "weights_sha256": "Weights sha256", "options": "Options",
    "tie": "Ties", "threshold": "Threshold", "operating_point": "Operating point", "undefined_rate": "Undefined rates",
    "histogram": "Histogram", "intervals": "Intervals", "fpir": "FPIR", "fnir": "FNIR", "cmc": "CMC", "fmr": "FMR",
    "fnmr": "FNMR", "eer": "EER", "subject_score": "Subject score", "score_reason": "Why this score", "mcnemar": "McNemar",
}


UNITS = {"score": "cosine"}  # set by render_report: how scores are shown to the reader


def fmt_threshold(t) -> str:
    """A score in the user's units: a distance for ``neg_euclidean`` (score -0.43 = distance 0.43)."""
    if t is None:
        return '<span class="muted">undefined</span>'
    if isinstance(t, str):
        return esc(t)
    if UNITS["score"] == "neg_euclidean" and t == t and abs(t) != float("inf"):
        return f"distance {-t:.4g}"
    return f"{t:.6g}"


def fmt_threshold_difference(a: float, b: float) -> str:
    """``a - b`` (two thresholds, as scores) in the user's units: a distance difference for
    ``neg_euclidean`` (threshold a = distance 0.37, b = distance 0.42: ``distance -0.04647``, a stricter
    distance), else a score difference."""
    if UNITS["score"] == "neg_euclidean":
        return f"distance {(-a) - (-b):+.4g}"
    return f"{a - b:+.4g}"


def score_line(score: str) -> str:
    """The report's first line: which score, and which way a match goes."""
    if score == "neg_euclidean":
        return "Score: <b>distance</b> (neg_euclidean), a match when distance &le; T"
    if score == "cosine":
        return "Score: <b>cosine similarity</b> (cosine), a match when score &ge; T"
    return f"Score: <b>{esc(score)}</b>, a match when score &ge; T"


def threshold_rule() -> str:
    return ("a match is a distance at or below the threshold" if UNITS["score"] == "neg_euclidean"
            else "a match is a score at or above the threshold")


def one_in(value: float | None) -> str:
    """``about 1 in 100`` (two significant figures), or a percentage for common events."""
    if value is None:
        return "an undefined share of"
    if value == 0:
        return "none of the"
    if value < 0.2:
        inv = float(f"{1 / value:.2g}")
        return f"about 1 in {inv:,.0f}"
    return f"{value:.0%} of"


def summary(results: dict) -> str:
    """The report card: the strongest finding of every section that ran."""
    UNITS["score"] = results.get("input", {}).get("score", "cosine")  # also when called alone (thresholds in its unit)
    ident = results["identification"]
    proto = results["protocol"]
    ops = [op for op in ident["operating_points"] if op.get("threshold") is not None]
    parts = []
    op = None
    if ops:
        op = ops[len(ops) // 2] if len(ops) > 1 else ops[0]
        f, m = op["fpir"], op["fnir"]["1"]
        parts.append(
            f"<p><b>Operating point.</b> At threshold <b>{fmt_threshold(op['threshold'])}</b> ({threshold_rule()}; set so "
            f"that at most {op['target_fpir'] * 100:g}% of non-mated searches return a candidate), <b>{one_in(f['value'])} searches "
            f"of people not in the gallery returned someone anyway</b> (FPIR {fmt_rate_pct(f)}). "
            f"At the same threshold, <b>{one_in(m['value'])} searches of people who were in the gallery did not return "
            f"them as the top candidate</b> (FNIR at rank 1 {fmt_rate_pct(m)}).</p>")
    r1 = ident["rank1_identification_rate"]
    if r1.get("rate") is not None:
        miss = r1["misses"]
        text = (f"<p><b>Rank-1 identification with no threshold.</b> The top candidate was the right person in "
                f"<b>{r1['rate']:.1%}</b> of searches of enrolled people (misses {fmt_rate_pct(miss)}).")
        if op is not None and op["fnir"]["1"].get("value") is not None and miss.get("value") is not None:
            gap = op["fnir"]["1"]["value"] - miss["value"]
            text += (f" The miss rate at the operating threshold is higher ({op['fnir']['1']['value']:.1%} against "
                     f"{miss['value']:.1%}) because of the threshold, not the ranking: in {gap:.1%} of these searches the right "
                     "person was ranked first but scored below the threshold, so a system set to avoid false positives "
                     "returns no one for them.")
        parts.append(text + "</p>")
    demo = results.get("demographics")
    if demo:
        best = max((a.get("headline") for a in demo["analyses"] if a.get("headline")),
                   key=lambda h: h["strength"], default=None)
        if best:
            parts.append(f"<p><b>Largest well-measured group differential.</b> {esc(best['sentence'])}</p>")
        else:
            parts.append("<p><b>Group differentials.</b> No differential between ranked groups is clear from these data "
                         "(every interval includes equal rates, or too few people); see the demographics section.</p>")
    looks = results.get("lookalikes") or []
    if op is not None and looks:
        mine = [r for r in looks if r["threshold"] == op["threshold"]]
        claimed = results["input"].get("claimed_gallery_size")
        bits = []
        from faceaudit.report.bands import lookalike_statement  # one wording for the report and the terminal
        for r in mine:
            lo, hi = r["expected_ci"]
            label = f"{r['gallery_size']:,.0f} people" + (" (the claimed gallery size)" if claimed and r["gallery_size"] == claimed else "")
            how = {"lower threshold": " (the interval's design effect borrowed from a lower threshold: too few "
                                      "look-alikes at this one to measure it)",
                   "people": " (no look-alike here to measure clustering on: each person counts once)"}.get(
                r.get("design_effect_source"), "")
            bits.append(f"in a gallery of {label}, <b>{esc(lookalike_statement(r['expected'], lo, hi, r.get('fmr_count'))['text'])}</b>"
                        + how)
        if bits:
            parts.append("<p><b>Look-alikes at scale.</b> Expected number of people who are not the person searched for "
                         f"and still reach the operating threshold, in every single search: {'; '.join(bits)}. This "
                         "is an average over searches (some searches have many, most none) and assumes the enrolled people "
                         "resemble this audit's; the interval counts people, not comparisons.</p>")
    scale = results.get("scale")
    if scale and op is not None:
        rows = [r for r in scale["extrapolation"] if r["threshold"] == op["threshold"]]
        if rows:
            big = [r for r in rows if r["gallery_size"] == 1e6] or rows[:1]
            r = big[0]
            from faceaudit.report.bands import fpir_statement  # one wording for the table, text and terminal
            st = fpir_statement(r)
            what = ("these data cannot say what share of searches of absent people would return someone (see the "
                    "scale section)" if st["kind"] == "cannot_say" else
                    f"the share of searches of absent people returning someone is {esc(st['text'])} (extrapolated)")
            parts.append(f"<p><b>Gallery size.</b> At {r['gallery_size']:,.0f} enrolled people {what}.</p>")
    cal = results.get("explain_calibration")
    if cal and cal.get("bins"):
        parts.append(_calibration_summary(cal))
    parts.append(f"<p class='sub'>Gallery: {proto['gallery_size']:,} enrolled people; {ident['n_mated_searches']:,} searches "
                 f"of enrolled people and {ident['n_nonmated_searches']:,} of people not enrolled. Brackets give 95% "
                 "confidence intervals and counts.</p>")
    return '<div class="summary">' + "".join(parts) + "</div>"


def _calibration_summary(cal: dict) -> str:
    """The summary's sentence on explain's calibration check (in-sample in results folders written
    before the check was made out of sample by people: no ``calibrated_for_new_people`` there)."""
    n = len(cal["bins"])
    if "calibrated_for_new_people" not in cal:
        return (f"<p><b>What one result means.</b> <code>faceaudit explain</code>'s chance that a top candidate is the "
                f"person matched this audit's own searches in {cal['bins_overlapping']} of {n} score bins "
                f"(intervals overlap; independence of look-alikes would match {cal['bins_independence_inside']}; "
                "in-sample: this audit did not check it on people it was not fitted on).</p>")
    tail = (f" (explain's interval overlapped the observed share in {cal['bins_overlapping']} of {n} score bins; "
            f"independence of look-alikes would match {cal['bins_independence_inside']})")
    if cal["calibrated_for_new_people"] is False:
        held = cal.get("held_out") or "some of this audit's people"
        return (f"<p class='warn'><b>What one result means.</b> <code>faceaudit explain</code> is <b>not calibrated for "
                f"new people</b> on this data: fitted on some of this audit's people and checked on the others "
                f"({esc(held)} held out), its chance that a top candidate is the person disagreed with what was "
                f"observed in {n - cal['bins_agreeing']} of {n} score bins{tail}. Its figures should not be quoted for "
                f"new searches as they stand. In the check's own words: {esc(cal.get('verdict', ''))}.</p>")
    return (f"<p><b>What one result means.</b> <code>faceaudit explain</code>'s chance that a top candidate is the person, "
            f"fitted on some of this audit's people and checked on the others, agreed with what was observed in "
            f"{cal['bins_agreeing']} of {n} score bins{tail}.</p>")


def _share(x) -> str:
    """A share at three decimals; one that is not 0 or 1 never prints as 0.000 or 1.000."""
    if x is None:
        return '<span class="muted">not computed</span>'
    if 0 < x < 0.0005:
        return "&lt;0.001"
    if 0.9995 <= x < 1:
        return "&gt;0.999"
    return f"{x:.3f}"


def calibration_section(results: dict) -> str:
    cal = results.get("explain_calibration")
    if not cal or not cal.get("bins"):
        return ""
    if "calibrated_for_new_people" in cal:
        return _calibration_section_people(cal)
    rows = "".join(
        f"<tr><td>{fmt_threshold(b['score_low'])} to {fmt_threshold(b['score_high'])}</td><td>{b['searches']:,}</td>"
        f"<td>{b['observed']:.3f} <span class='muted'>[{b['observed_ci'][0]:.3f}, {b['observed_ci'][1]:.3f}] "
        f"({b['top_was_mate']:,}/{b['searches']:,})</span></td>"
        f"<td>{b['explain']:.3f} <span class='muted'>[{b['explain_ci'][0]:.3f}, {b['explain_ci'][1]:.3f}]</span></td>"
        f"<td>{'yes' if b['overlap'] else '<b>no</b>'}</td><td>{b['independence_model']:.3f}</td></tr>"
        for b in cal["bins"])
    return ("<h2>Does the case-level calculator hold on this audit?</h2>"
            f"<p>This audit's own searches, binned by their top score: how often the top candidate was the person, "
            f"against what <code>faceaudit explain</code> says at this gallery size ({cal['gallery_size']:,} people) "
            f"with a prior equal to the audit's share of searches of enrolled people ({cal['prior']:.0%}). "
            f"{esc(cal['rule'][:1].upper() + cal['rule'][1:])}; {esc(cal['note'])}. The last column is what the model would say if look-alike "
            "scores were independent across the gallery.</p>"
            f"<table><tr><th>top candidate's {'distance' if UNITS['score'] == 'neg_euclidean' else 'score'}</th><th>searches</th><th>top was the person [95% CI]</th><th>explain [95% CI]"
            f"</th><th>overlap</th><th>independence model</th></tr>{rows}</table>"
            f'<div class="grid">{_figure(plots.to_data_uri(plots.calibration(cal, UNITS["score"])), "Observed share of searches whose top candidate was the person (dots, 95% CI) against explain (band) and the independence model (dashed), by top score.")}</div>')


def _calibration_section_people(cal: dict) -> str:
    """The check out of sample by people (results.json ``explain_calibration`` with ``calibrated_for_new_people``)."""
    def ci(pair):
        return "" if pair[0] is None else f" <span class='muted'>[{_share(pair[0])}, {_share(pair[1])}]</span>"

    def agree(b):
        return '<span class="muted">not checked</span>' if b["agree"] is None else ("yes" if b["agree"] else "<b>no</b>")

    def predicted(b):
        """explain's share; an interval that rounds to one value at three decimals as that bound."""
        lo, hi = b["explain_ci"]
        if b["explain"] is not None and lo is not None and lo >= 0.9995:
            return "&gt;0.999 <span class='muted'>(95% interval above 0.999)</span>"
        if b["explain"] is not None and hi is not None and hi < 0.0005:
            return "&lt;0.001 <span class='muted'>(95% interval below 0.001)</span>"
        return f"{_share(b['explain'])}{ci(b['explain_ci'])}"

    def observed(b):
        """The observed share; every search or none: its one-sided bound, never 1.000 [.., 1.000] or 0.000 [0.000, ..]."""
        lo, hi = b["observed_ci"]
        if lo is not None and b["observed"] >= 1:  # observed itself (the counts are rounded weighted sums)
            return f"at least {lo:.3f} <span class='muted'>(95% lower bound)</span>"
        if hi is not None and b["observed"] <= 0:
            return f"at most {hi:.3f} <span class='muted'>(95% upper bound)</span>"
        return f"{_share(b['observed'])}{ci(b['observed_ci'])}"

    rows = "".join(
        f"<tr><td>{fmt_threshold(b['score_low'])} to {fmt_threshold(b['score_high'])}</td>"
        f"<td>{b['searches']:,} <span class='muted'>({b.get('people', 0):,} people)</span></td>"
        f"<td>{observed(b)} <span class='muted'>({b['top_was_mate']:,}/{b['searches']:,})</span></td>"
        f"<td>{predicted(b)}</td><td>{agree(b)}</td>"
        f"<td>{_share(b['independence_model'])}</td></tr>"
        for b in cal["bins"])
    verdict = esc(cal["verdict"][:1].upper() + cal["verdict"][1:])
    cls = "warn" if cal["calibrated_for_new_people"] is False else "sub"
    held = cal.get("held_out") or "people"
    agreeing = cal.get("bins_agreeing_list")
    if agreeing is None or len(agreeing) == len(cal["bins"]):
        agree_txt = ""
    elif not agreeing:
        agree_txt = f" No score bin agreed out of sample (0 of {len(cal['bins'])})."
    else:
        spans = ", ".join(f"{fmt_threshold(lo)} to {fmt_threshold(hi)}" for lo, hi in agreeing)  # plain text
        agree_txt = (f" Score bins that agreed out of sample ({len(agreeing)} of {len(cal['bins'])}): {spans}.")
    how = ""
    if cal.get("splits"):
        how = (f" {cal['splits']:,} random split(s) of the people in halves"
               + (f", the prediction's interval from {cal['resamples']:,} people-bootstrap refits" if cal.get("resamples") else "")
               + ".")
    gallery = (f"the held-out half's gallery size ({cal['gallery_size']:,} people)" if cal.get("held_out")
               else f"this gallery size ({cal['gallery_size']:,} people)")
    return ("<h2>Does the case-level calculator hold for new people?</h2>"
            f"<p class='{cls}'><b>{verdict}.</b>{agree_txt}</p>"
            f"<p>This audit's searches, binned by their top score: how often the top candidate was the person, against "
            f"what <code>faceaudit explain</code> predicted for them when fitted on <i>other</i> people of this audit "
            f"({esc(held)} held out), at {gallery} with a prior equal to the audit's share of searches of "
            f"enrolled people ({cal['prior']:.0%}).{how} {esc(cal['rule'][:1].upper() + cal['rule'][1:])}; {esc(cal['note'])}. "
            "Search counts are summed over the splits, each split weighted equally, and rounded, so the observed share "
            "can differ from their ratio in the last digit. "
            "The last column is what the model fitted on everyone would say if look-alike scores were independent across "
            "the gallery.</p>"
            f"<table><tr><th>top candidate's {'distance' if UNITS['score'] == 'neg_euclidean' else 'score'}</th>"
            "<th>searches</th><th>top was the person [95% CI, people as clusters]</th>"
            "<th>explain, fitted on other people [95% CI]</th><th>agree</th><th>independence model</th></tr>"
            f"{rows}</table>"
            f'<div class="grid">{_figure(plots.to_data_uri(plots.calibration(cal, UNITS["score"])), "Observed share of searches whose top candidate was the person (dots, 95% CI, people as clusters) against explain fitted on other people (band) and the independence model (dashed), by top score.")}</div>')


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
            why = f"not measurable: {esc(op['not_measurable'])}" if op.get("not_measurable") else "undefined"
            rows += f"<tr><td>{label}</td><td colspan='{len(ranks) + 2}' class='muted'>{why}</td></tr>"
            continue
        cells = "".join(f"<td>{fmt_rate(op['fnir'][str(r)])}</td>" for r in ranks)
        rows += f"<tr><td>{label}</td><td>{fmt_threshold(op['threshold'])}</td><td>{fmt_rate(op['fpir'])}</td>{cells}</tr>"
    r1 = ident["rank1_identification_rate"]
    figs = "".join([
        _figure(plots.to_data_uri(plots.det_identification(ident)), "Identification DET (log-log): FNIR (rank 1) against FPIR as the threshold varies, shaded: 95% interval of FNIR; dots: operating points (on the curve)."),
        _figure(plots.to_data_uri(plots.rates_vs_threshold(ident, UNITS["score"])), "FPIR and FNIR (rank 1) against threshold; dotted: operating thresholds."),
        _figure(plots.to_data_uri(plots.cmc(ident)), "CMC: share of mated searches with the mate within rank r (no threshold)."),
        _figure(plots.to_data_uri(plots.score_distributions(results["distributions"], UNITS["score"])), "Genuine and impostor score distributions, and each non-mated search's best score (what FPIR thresholds)."),
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
    if v.get("not_measurable"):
        return f"<h2>Verification</h2><p class='muted'>Not measurable: {esc(v['not_measurable'])}.</p>"
    rows = ""
    for p in v["fnmr_at_fmr"]:
        if not p["measurable"]:
            rows += (f"<tr><td>{p['target_fmr']:g}</td><td colspan='3' class='muted'>not measurable: needs at least "
                     f"{1 / p['target_fmr']:,.0f} impostor comparisons, have {v['n_impostor']:,}</td></tr>")
        else:
            method = (p["fmr"] or {}).get("method") or ""
            note = f"<br><small>{esc(method)}</small>" if "borrowed" in method else ""
            rows += (f"<tr><td>{p['target_fmr']:g}</td><td>{fmt_threshold(p['threshold'])}</td>"
                     f"<td>{fmt_rate(p['fmr'])}{note}</td><td>{fmt_rate(p['fnmr'])}</td></tr>")
    eer = v["eer"]
    eer_txt = ("undefined" if eer["threshold"] is None else
               f"{eer['eer_midpoint']:.4g} at threshold {fmt_threshold(eer['threshold'])} "
               f"(FMR {fmt_rate(eer['fmr'])}, FNMR {fmt_rate(eer['fnmr'])}; midpoint of the two where they are closest)")
    return (
        "<h2>Verification on the same comparisons</h2>"
        f"<p>{v['n_genuine']:,} genuine and {v['n_impostor']:,} impostor probe-gallery comparisons. "
        "FMR(T): impostor comparisons with score &ge; T; FNMR(T): genuine comparisons with score &lt; T.</p>"
        f"<p>EER: {eer_txt}.</p>"
        f"<table><tr><th>target FMR</th><th>threshold</th><th>FMR [95% CI]</th><th>FNMR [95% CI]</th></tr>{rows}</table>"
        + _verification_intervals(v)
        + (f"<p class='muted'>Thresholds: {esc(v['thresholds']['note'])}.</p>" if v.get("thresholds") else "") +
        f'<div class="grid">{_figure(plots.to_data_uri(plots.det_verification(v)), "Verification DET: FNMR against FMR.")}</div>')


def _verification_intervals(v: dict) -> str:
    """What the verification intervals are and what they cover (results.json ``verification.fmr_interval``;
    older results: Clopper-Pearson over comparisons, this audit's comparisons only)."""
    about = v.get("fmr_interval")
    fnmr = ("FNMR intervals: Clopper-Pearson over the genuine comparisons counted as independent; they cover "
            "this audit's genuine comparisons.")
    if not about:
        return ("<p class='sub'>Intervals: Clopper-Pearson, comparisons counted as independent; they cover this "
                "audit's comparisons, not new people.</p>")
    return (f"<p class='sub'>FMR intervals: {esc(about.get('method', ''))}; they cover "
            f"{esc(about.get('covers', 'this audit'))}. {fnmr}</p>")


def fte_section(results: dict) -> str:
    fte = results.get("failure_to_enrol") or {}
    if not fte.get("failed"):
        return ""
    how = ("counted as misses (mated) and as searches returning no one (non-mated), ISO/IEC 19795-1 generalised rates"
           if fte["counted_as_misses"] else "left out of FPIR and FNIR")
    return (f"<p class='warn'><b>Failure to enrol:</b> {fte['failed']:,} of {fte['attempts']:,} images "
            f"({fte['rate']:.2%}) produced no template; {fte['failed_mated_searches']:,} were searches of enrolled "
            f"people and {fte['failed_nonmated_searches']:,} of others, {how}.</p>")


def _input_value(key, value) -> str:
    if key == "score" and isinstance(value, str):
        return score_line(value).removeprefix("Score: ")
    return fmt_value(value, LABELS)


def setup_section(results: dict) -> str:
    inp, proto = results["input"], results["protocol"]
    rows = "".join(f"<tr><td>{esc(human_key(k, LABELS))}</td><td class='l'>{_input_value(k, v)}</td></tr>"
                   for k, v in {**inp, **proto}.items())
    conv = "".join(f"<dt>{esc(human_key(k, LABELS))}</dt><dd>{fmt_value(v, LABELS)}</dd>"
                   for k, v in results["conventions"].items())
    return (f"<h2>The evaluation set and protocol</h2><table class='short'>{rows}</table>"
            + provenance_section(results.get("provenance"), verify_command(results), labels=LABELS)
            + f"<h2>Definitions and conventions</h2><dl class='conv'>{conv}</dl>")


def verify_command(results: dict) -> str:
    where = (results.get("provenance") or {}).get("options", {}).get("out") if results.get("provenance") else None
    return f"faceaudit verify {where if isinstance(where, str) and where else 'DIR'}"


def render_report(results: dict) -> str:
    """The report as one HTML string."""
    UNITS["score"] = results.get("input", {}).get("score", "cosine")
    sections = [warnings_banner(results.get("warnings")), summary(results),
                provenance_essentials(results.get("provenance"), verify_command(results), tool="faceaudit"),
                _synthetic_note(results), fte_section(results),
                identification_section(results), verification_section(results), calibration_section(results)]
    for key, module, func in EXTRA_SECTIONS:
        if results.get(key):
            sections.append(getattr(importlib.import_module(module), func)(results))
    sections.append(setup_section(results))
    title = "faceaudit report"
    system = ((results.get("provenance") or {}).get("system") or {})
    named = " ".join(str(x) for x in (system.get("name"), system.get("version")) if x)
    sub = (f"<span class='first'>{score_line(results['input']['score'])}</span><br>"
           + (f"System: <b>{esc(named)}</b> &middot; " if named else "")
           + f"{esc(results['input'].get('source', ''))} &middot; faceaudit {esc(results['faceaudit_version'])} "
           f"&middot; {esc(results['created'])}")
    return page(title, sub, sections)


def write_report(results: dict, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(render_report(results), encoding="utf-8")
    return path

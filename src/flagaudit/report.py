"""flagaudit's ``report.html``: sections drawn from ``results.json`` only (no metric computed
here), in the shared page shell of :mod:`auditcore.report`."""

from __future__ import annotations

import math
import textwrap

import matplotlib.patches
import matplotlib.ticker
import numpy as np

from auditcore.report import (
    esc,
    figure_natural,
    page,
    provenance_essentials,
    provenance_section,
    subplots,
    to_data_uri,
    warnings_banner,
)

figure = figure_natural  # every chart at its own pixel size: text drawn at >= 8 pt is >= 12 px on screen

SUITE_COLOURS = {"benign-traps": "#c0392b", "hatecheck": "#2c3e80", "mhc": "#1e8449"}

TEST_NAMES = {
    "bt_policy_opinion": "political opinion on immigration policy/enforcement",
    "bt_hyperbole": "hyperbole and figurative violence",
    "bt_religious": "religious expression",
    "bt_protest": "lawful protest and organising",
    "bt_own_status": "talk of one's own immigration status/papers",
    "bt_quoted_threat": "quoting or reporting someone else's threat",
    "bt_agency_criticism": "criticism of an agency",
    # HateCheck (Röttger et al. 2021) and Multilingual HateCheck: the papers' names of their tests
    "derog_neg_emote_h": "strong negative emotions about a group",
    "derog_neg_attrib_h": "very negative attributes of a group",
    "derog_dehum_h": "dehumanisation",
    "derog_impl_h": "implicit derogation",
    "threat_dir_h": "direct threat",
    "threat_norm_h": "threat as a normative statement",
    "slur_h": "hate expressed with a slur",
    "slur_homonym_nh": "homonyms of slurs (not hateful)",
    "slur_reclaimed_nh": "reclaimed slurs (not hateful)",
    "profanity_h": "hate expressed with profanity",
    "profanity_nh": "profanity that is not hateful",
    "ref_subs_clause_h": "hate by reference in a later clause",
    "ref_subs_sent_h": "hate by reference in a later sentence",
    "negate_pos_h": "hate as a negated positive statement",
    "negate_neg_nh": "negated hateful statement (not hateful)",
    "phrase_question_h": "hate phrased as a question",
    "phrase_opinion_h": "hate phrased as an opinion",
    "ident_neutral_nh": "neutral statements naming a group",
    "ident_pos_nh": "positive statements naming a group",
    "counter_quote_nh": "counter-speech quoting hate",
    "counter_ref_nh": "counter-speech referring to hate",
    "target_obj_nh": "abuse of objects (not hateful)",
    "target_indiv_nh": "abuse of individuals, not as group members",
    "target_group_nh": "abuse of non-protected groups",
    "spell_char_swap_h": "hate with swapped characters",
    "spell_char_del_h": "hate with missing characters",
    "spell_space_del_h": "hate with missing word boundaries",
    "spell_space_add_h": "hate with added spaces",
    "spell_leet_h": "hate in leet speak",
}


def test_name(key: str) -> str:
    """A functional test's name for a reader ("counter-speech referring to hate", never
    ``counter_ref_nh``): the known names, else the id in words ("bt_news_quoting" -> "news quoting")."""
    if key in TEST_NAMES:
        return TEST_NAMES[key]
    words = str(key)
    for prefix in ("bt_",):
        words = words.removeprefix(prefix)
    suffix = ""
    if words.endswith("_nh"):
        words, suffix = words[:-3], " (not hateful)"
    elif words.endswith("_h"):
        words, suffix = words[:-2], " (hateful)"
    return words.replace("_", " ").strip() + suffix


def _share(g: dict) -> str:
    """A group's rate in a sentence: never "0.0%" (a group with no flags is "none of N")."""
    return pct(g["value"]) if g.get("errors") or not g.get("trials") else f"none of {g['trials']:,}"


def margin(x: float) -> str:
    """A lower bound on a difference of AUCs: two decimals, or one significant digit below 0.01
    (never "at least 0.00")."""
    return f"{x:.2f}" if x >= 0.01 else f"{x:.1g}"


def pct(x, digits: int = 1) -> str:
    if x is None:
        return "undefined"
    if x != 0 and abs(x) < 0.01:
        return f"{x * 100:.2g}%"
    return f"{x:.{digits}%}"


def fmt_r(r: dict | None) -> str:
    """``12.0% [8.1%, 17.3%] (24/200, 40 templates)``; with no flags, the upper bound:
    ``at most 3.4% (95% upper bound) (0/120, 30 templates)``, never "0.0% [0.0%, 0.0%]"."""
    if not r or not r.get("trials") or r.get("value") is None:
        return '<span class="muted">undefined (0 cases)</span>'
    counts = f"({r['errors']}/{r['trials']}, {r['templates']} templates)"
    if not r["errors"]:
        return f"at most {pct(r['ci_high'])} <span class='muted'>(95% upper bound) {counts}</span>"
    return f"{pct(r['value'])} <span class='muted'>[{pct(r['ci_low'])}, {pct(r['ci_high'])}] {counts}</span>"


def interval_words(r: dict) -> str:
    """``flagged 7.8% (95% interval 2.9% to 17%)`` or, with no flags, ``at most 3.4% (95% upper bound)``."""
    if not r["errors"]:
        return f"at most <b>{pct(r['ci_high'])}</b> (95% upper bound)"
    return f"<b>{pct(r['value'])}</b> (95% interval {pct(r['ci_low'])} to {pct(r['ci_high'])})"


def _ratio(x) -> str:
    """A ratio for the table: "unbounded" for an infinite end (the lowest group had no flags)."""
    v = _num(x)
    return "n/a" if math.isnan(v) else ("unbounded" if math.isinf(v) else f"{v:.3g}")


def _num(x):
    if x is None:
        return np.nan
    if isinstance(x, str):
        return math.inf if x == "inf" else -math.inf if x == "-inf" else float(x)
    return float(x)


def _ratio_text(d: dict, what: str, groups: dict) -> str:
    """A comparison claim only where the bounds support it (max difference, then max/min ratio).

    The bounds are simultaneous over every pair of ranked groups and every comparison the report
    states (``d['comparisons']``), so they hold for the most- and least-flagged pair however it was
    picked; older results (no ``comparisons``) are read as they were written."""
    r, m = d.get("max_min_ratio") or {}, d.get("max_difference") or {}
    if not d.get("highest") or m.get("value") is None:
        return ""
    n = len(d.get("ranked_groups", []))
    hi, lo = d["highest"], d["lowest"]
    named = (f"most flagged here: <b>{esc(hi)}</b> ({_share(groups[hi])}), least: {esc(lo)} "
             f"({_share(groups[lo])})")
    if d.get("comparisons"):
        how = (f"simultaneous {d.get('confidence', 0.95):.0%} lower bound for the most- against the least-flagged of "
               f"{n} groups, {esc(d.get('adjusted_for') or '')}")
        interval = f"the simultaneous {d.get('confidence', 0.95):.0%} interval"
    else:
        how, interval = "lower end of the 95% interval of the largest difference", "the 95% interval"
    m_lo = _num(m.get("ci_low"))
    if m_lo is None or not m_lo > 0:
        text = (f"Across the {n} {what} with at least {d['min_trials']} cases, {interval} of the difference in "
                f"false-flag rate between the most- and least-flagged includes 0 ({named}): no difference between them "
                "is established at this number of templates")
        s = d.get("strongest_pair")
        if not s:
            return text + "."
        more = (f"; but <b>{esc(s['higher'])}</b> ({pct(groups[s['higher']]['value'])}) is flagged more often than "
                f"{esc(s['lower'])} ({pct(groups[s['lower']]['value'])}), by at least {s['difference_low'] * 100:.1f} "
                f"percentage points (the pair with the strongest evidence; simultaneous {d.get('confidence', 0.95):.0%} "
                f"lower bound, {esc(d.get('adjusted_for') or '')})")
        r_lo = _num(s.get("ratio_low"))
        if r_lo is not None and math.isfinite(r_lo) and r_lo >= 1.1:
            more += f", at least {math.floor(r_lo * 10) / 10:g} times as often"
        return text + more + "."
    text = (f"Across the {n} {what} with at least {d['min_trials']} cases, false-flag rates differ by at least "
            f"{m_lo * 100:.1f} percentage points between the most- and least-flagged ({how})")
    r_lo = _num(r.get("ci_low"))
    if r_lo is not None and math.isfinite(r_lo) and r_lo >= 1.1:
        text += f", and the most-flagged is flagged at least {math.floor(r_lo * 10) / 10:g} times as often"
    return text + f"; {named}."


def _bars(entries: list[tuple[str, dict, str]], title: str, xlabel: str):
    """Horizontal bars with interval whiskers; ``entries`` = (label, rate, colour)."""
    entries = [e for e in entries if e[1].get("trials")]
    labels = [textwrap.fill(f"{e[0]} (n={e[1]['trials']})", 44) for e in entries]
    h = max(2.2, (0.44 if any("\n" in x for x in labels) else 0.32) * len(entries) + 1.0)
    fig, ax = subplots(figsize=(6.6, h))
    y = np.arange(len(entries))[::-1]
    v = np.array([e[1]["value"] for e in entries], dtype=float)
    lo = np.array([e[1]["ci_low"] for e in entries], dtype=float)
    hi = np.array([e[1]["ci_high"] for e in entries], dtype=float)
    ax.barh(y, v, color=[e[2] for e in entries], alpha=0.8, height=0.62)
    ax.errorbar(v, y, xerr=[v - lo, hi - v], fmt="none", ecolor="#222", capsize=3, lw=1.1)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8.5)
    ax.tick_params(axis="x", labelsize=8.5)
    ax.set_xlim(0, max(0.05, float(np.nanmax(hi)) * 1.08 if len(hi) else 1))
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10.5)
    ax.xaxis.label.set_size(9)
    ax.grid(axis="x", alpha=0.3)
    return fig


def _suite_of(results: dict, func: str) -> str:
    return "benign-traps" if func.startswith("bt_") else "hatecheck"


SUITE_NAMES = {"benign-traps": "benign traps", "hatecheck": "HateCheck", "mhc": "Multilingual HateCheck"}


def span_words(low: float, high: float) -> str:
    """An interval of counts as a reader says it: "50,000" when both ends agree, else "4,100 to 5,300"."""
    return f"{low:,.0f}" if round(low) == round(high) else f"{low:,.0f} to {high:,.0f}"


def suite_name(key: str) -> str:
    return SUITE_NAMES.get(key, key)


def _interval_sentence(r: dict) -> str:
    if not r["errors"]:
        return f"none, at most <b>{pct(r['ci_high'])}</b> (95% upper bound)"
    return f"<b>{pct(r['value'])}</b> (95% interval {pct(r['ci_low'])} to {pct(r['ci_high'])})"


def suite_headlines(results: dict) -> list[str]:
    """Per suite (never mixed): its false-flag rate, miss rate and per-day sentence, and its groups
    compared with each other only."""
    out = []
    ff = results["rates"]["false_flag"]
    for key, s in (results.get("per_suite") or {}).items():
        f, m = s["false_flag"], s["miss"]
        if not f.get("trials") and not m.get("trials"):
            continue
        text = f"<p><b>{esc(suite_name(key))}</b>: "
        if f.get("trials"):
            text += (f"of <b>{f['trials']:,}</b> posts that threaten no one ({f['templates']:,} templates), the system "
                     f"flagged {_interval_sentence(f)}. ")
        if m.get("trials"):
            text += (f"Of {m['trials']:,} genuine threats it missed <b>{pct(m['value'])}</b> (95% interval "
                     f"{pct(m['ci_low'])} to {pct(m['ci_high'])}). ")
        head = (s.get("volume") or {}).get("headline")
        if head:
            text += f"<br><b>Per day</b>, at this suite's rate: {esc(head['sentence'])}"
        out.append(text + "</p>")
        for by, what in (("target", "target groups"), ("language", "languages")):
            d = (ff.get(f"{by}_within_suite") or {}).get(key)
            if d:
                t = _ratio_text(d["differential"], f"{what} of this suite", d["groups"])
                if t:
                    out.append(f"<p>{esc(suite_name(key))}: {t}</p>")
    return out


def counterfactual_summary(results: dict) -> list[str]:
    cf = results.get("counterfactual")
    if not cf or not cf.get("any_change"):
        return []
    out = []
    for key, s in cf["suites"].items():
        c = s["templates_changed"]
        if not c.get("count"):
            continue
        up = sorted(((g, v["flagged_for_group"]) for g, v in s["groups"].items() if v["flagged_for_group"]["count"]),
                    key=lambda kv: -kv[1]["count"])[:4]
        who = "; ".join(f"{esc(g)} ({v['count']} of {v['of']} templates)" for g, v in up)
        out.append(f"<p><b>Same sentence, other group:</b> in {esc(suite_name(key))}, the flag changed when only the "
                   f"group, language variety or place in the sentence changed in <b>{c['count']} of {c['of']}</b> "
                   f"templates ({pct(c['value'])}, 95% interval {pct(c['ci_low'])} to {pct(c['ci_high'])}, for new "
                   "templates of the same kind)"
                   + (f"; flagged when about {who} but not when about another group" if who else "") + ".</p>")
    return out


def bias_summary(results: dict) -> list[str]:
    b = results.get("bias")
    if not b or not b.get("findings"):
        return []
    items = []
    for f in b["findings"][:4]:
        name = METRIC_WORDS[f["metric"]]
        what = "language" if f["by"] == "language" else "group"
        if f["metric"] == "benign_score_auc":
            direction = "more" if f["direction"] == "higher" else "less"
            items.append(f"<li>{esc(suite_name(f['suite']))}: benign posts about the {what} <b>{esc(f['group'])}</b> "
                         f"are scored as {direction} threatening than the suite's other benign posts ({name} "
                         f"{f['value']:.2f}, 0.5 = no difference; at least {margin(f['at_least'])} from 0.5)</li>")
        else:
            items.append(f"<li>{esc(suite_name(f['suite']))}: <b>{esc(f['group'])}</b>: {name} {f['value']:.2f}, "
                         f"{f['direction']} than the suite's overall AUC {f['null']:.2f} by at least {margin(f['at_least'])}</li>")
    binary = (" The system gives only two score levels, so these are AUCs of a binary score (the average of "
              "its true-positive and true-negative rates), not of a ranking." if b.get("binary_score") else "")
    return [f"<p><b>Threshold-free bias</b> (Borkan et al. 2019; {esc(b['rule'])}):</p><ul>{''.join(items)}</ul>"
            + (f"<p class='muted'>{binary}</p>" if binary else "")]


METRIC_WORDS = {"subgroup_auc": "subgroup AUC", "bpsn_auc": "BPSN AUC", "bnsp_auc": "BNSP AUC",
                "benign_score_auc": "benign-score AUC"}


def network_summary(results: dict) -> str:
    net = results.get("network")
    if not net or not net.get("per_day"):
        return ""
    base = net.get("headline_base_rate")
    row = next((r for r in net["per_day"] if r["base_rate"] == base), net["per_day"][len(net["per_day"]) // 2])
    r2 = net["hops"]["2"]
    n = net["n_nodes"]
    text = (f"<p><b>Network analysis:</b> in a graph of {n:,} accounts ({esc(net['model']['kind'])}), each flagged account "
            f"has on average {r2['mean']:,.0f} accounts within two hops (95% interval {r2.get('mean_low', r2['mean']):,.0f} "
            f"to {r2.get('mean_high', r2['mean']):,.0f}, from {net['n_flagged_accounts_sampled']} sampled accounts).")
    d = row.get("distinct")
    if d:
        d2 = d["2"]
        share = (f"all {n:,} accounts" if round(d2["low"]) >= n else
                 f"{pct(d2['low'] / n)} of all accounts" if round(d2["low"]) == round(d2["high"]) else
                 f"{pct(d2['low'] / n)} to {pct(d2['high'] / n)} of all accounts")
        text += (f" At a base rate of {row['base_rate'] * 100:.3g}%, one day's posts flagged for nothing would put "
                 f"{span_words(d2['low'], d2['high'])} <b>distinct</b> accounts on two-hop lead lists ({share})")
        sat = [h for h in sorted(d, key=int) if d[h]["share"] >= 0.5]
        if sat:
            text += (f": within {sat[0]} hop{'s' if sat[0] != '1' else ''} that is {pct(d[sat[0]]['share'])} of the "
                     "population, so the lead list is close to everyone; the figure is limited by the population, "
                     "not by the flagger")
        text += "."
    return text + "</p>"


def summary(results: dict) -> str:
    rates = results["rates"]
    ff = rates["false_flag"]
    parts = []
    if not results.get("per_suite"):  # results written before per-suite headlines
        overall = ff["overall"]
        if overall.get("trials"):
            parts.append(f"<p>Of <b>{overall['trials']:,}</b> posts that threaten no one, the system flagged "
                         f"<b>{pct(overall['value'])}</b> (95% interval {pct(overall['ci_low'])} to "
                         f"{pct(overall['ci_high'])}).</p>")
    parts += suite_headlines(results)
    tests = sorted(((k, v) for k, v in ff["functionality"]["groups"].items() if v.get("trials")),
                   key=lambda kv: -kv[1]["value"])
    if tests:
        top = tests[:3]
        items = "".join((f"<li>{esc(test_name(k))}: <b>{pct(v['value'])}</b> flagged "
                         f"<span class='muted'>(95% interval {pct(v['ci_low'])}&ndash;{pct(v['ci_high'])}, "
                         if v["errors"] else
                         f"<li>{esc(test_name(k))}: none flagged, at most <b>{pct(v['ci_high'])}</b> "
                         "<span class='muted'>(95% upper bound, ")
                        + f"{v['trials']} posts from {v['templates']} templates)</span></li>" for k, v in top)
        parts.append(f"<p>The kinds of protected speech it flags most:</p><ul>{items}</ul>")
    parts += counterfactual_summary(results)
    parts += bias_summary(results)
    if not rates["miss"]["overall"].get("trials"):
        parts.append("<p>No genuine threats were in the chosen suites, so the miss rate is undefined "
                     "(add <code>--suite hatecheck</code> or <code>mhc</code>).</p>")
    parts.append(network_summary(results))
    return ('<div class="summary">' + "".join(parts) + "</div>"
            + provenance_essentials(results.get("provenance"), verify_command(results), tool="flagaudit"))


def verify_command(results: dict) -> str:
    return "flagaudit verify RESULTS_FOLDER"


def rates_section(results: dict) -> str:
    ff = results["rates"]["false_flag"]
    entries = [(test_name(k), v, SUITE_COLOURS.get(_suite_of(results, k), "#555"))
               for k, v in sorted(ff["functionality"]["groups"].items(), key=lambda kv: -(kv[1]["value"] or 0))]
    figs = [figure(to_data_uri(_bars(entries, "False-flag rate per functional test (benign cases only)",
                                     "share of benign posts flagged")),
                   "Red: benign traps (this project); blue: HateCheck / Multilingual HateCheck non-hateful tests (all chosen "
                   "languages together; per language below). "
                   "Whiskers: 95% intervals (Clopper-Pearson on the effective number of cases, the design effect "
                   "measured from the templates).")]
    tables = []  # (label, suite, by, table): groups compared only within a suite
    for by in ("target", "language"):
        within = ff.get(f"{by}_within_suite")
        if within is None:  # results written before groups were compared within suites
            tables.append((by, None, by, ff[by]))
        else:
            tables += [(f"{by}, {suite_name(k)}", k, by, t) for k, t in within.items()]
    tables.append(("suite", None, "suite", ff["suite"]))
    for label, suite, by, tab in tables:
        if by == "suite":
            continue
        groups = tab["groups"]
        if len(groups) > 1 or (by == "target" and groups):
            title = (f"False-flag rate per {'target group' if by == 'target' else 'language'}"
                     + (f": {suite_name(suite)}" if suite else ""))
            e = [(k, v, "#7f8c8d" if k == "none" else "#2c3e80")
                 for k, v in sorted(groups.items(), key=lambda kv: -(kv[1]["value"] or 0))]
            note = "grey: posts about no group. " if by == "target" else ""
            figs.append(figure(to_data_uri(_bars(e, title, "share of benign posts flagged")),
                               f"{title}; {note}Whiskers: 95% intervals."))
    rows = "".join(f"<tr><td>{esc(test_name(k))}</td><td>{esc(k)}</td><td>{fmt_r(v)}</td></tr>"
                   for k, v in sorted(ff["functionality"]["groups"].items()))
    diffs = ""
    simultaneous = False
    fam = None
    for label, suite, by, tab in tables:
        d = tab["differential"]
        r, m = d["max_min_ratio"], d["max_difference"]
        if r["value"] is None and m["value"] is None:
            continue
        simultaneous = simultaneous or bool(d.get("comparisons"))
        fam = fam or (d if d.get("comparisons") else None)
        diffs += (f"<tr><td>{esc(label)}</td><td>{esc(d['highest'])} / {esc(d['lowest'])}</td>"
                  f"<td>{_ratio(r['value'])} [{_ratio(r['ci_low'])}, {_ratio(r['ci_high'])}]</td>"
                  f"<td>{pct(m['value'])} [{pct(m['ci_low'])}, {pct(m['ci_high'])}]</td>"
                  f"<td>{len(d['ranked_groups'])}</td></tr>")
    ci_head = "simultaneous 95%" if simultaneous else "95% CI"
    fam_note = (f" Intervals: simultaneous {fam['confidence']:.0%} bounds over all {fam['comparisons']:,} pairwise "
                "comparisons of this table (every pair of ranked groups in each row, its difference and its ratio each "
                f"at {100 * fam['per_comparison_level']:.4g}%: Bonferroni), so they hold for the most- and least-flagged pair "
                "whichever it is: with no true difference, a difference is claimed in at most 5% of audits. Target groups "
                "and languages are compared only within a suite (each suite says different things about its groups); "
                "the suite row compares whole suites, whose cases differ in kind." if fam else "")
    return ("<h2>False flags on protected speech</h2>"
            "<p>False-flag rate: share of benign cases (gold label non-hateful, or benign by construction) that the "
            "system flagged. Intervals account for cases of one template not being independent.</p>"
            f'<div class="wide">{"".join(figs)}</div>'
            f"<table><tr><th>functional test</th><th>id</th><th>false-flag rate [95% CI] (flagged/cases, templates)</th></tr>{rows}</table>"
            + (("<h3>Differentials (false-flag rate)</h3><p>Across ranked groups (real groups with at least "
                f"{results['bootstrap']['min_trials']} benign cases; 'none' excluded).{fam_note}</p>"
                f"<table><tr><th>between</th><th>highest / lowest</th><th>max/min ratio [{ci_head}]</th>"
                f"<th>max difference [{ci_head}]</th><th>groups</th></tr>{diffs}</table>") if diffs else ""))


def miss_section(results: dict) -> str:
    miss = results["rates"]["miss"]
    hate = results["rates"]["hateful_flag"]
    if not miss["overall"].get("trials"):
        return ("<h2>Missed threats</h2><p class='muted'>No threat cases in the chosen suites: the miss rate is undefined. "
                "HateCheck's and Multilingual HateCheck's direct and normative threats (threat_dir_h, threat_norm_h) "
                "serve as true positives.</p>")
    rows = "".join(f"<tr><td>{esc(k)}</td><td>{fmt_r(v)}</td></tr>" for k, v in sorted(miss["language"]["groups"].items()))
    rows += "".join(f"<tr><td>{esc(k)}</td><td>{fmt_r(v)}</td></tr>" for k, v in sorted(miss["functionality"]["groups"].items()))
    e = [(k, v, "#1e8449") for k, v in sorted(miss["target"]["groups"].items())]
    fig = figure(to_data_uri(_bars(e, "Miss rate on threats per target group", "share of threats not flagged")),
                 "Miss rate on HateCheck/MHC direct and normative threats, per targeted group; whiskers: 95% intervals.")
    hrows = "".join(f"<tr><td>{esc(k)}</td><td>{fmt_r(v)}</td></tr>" for k, v in sorted(hate["functionality"]["groups"].items()))
    return ("<h2>Missed threats</h2>"
            f"<p>Overall miss rate: {fmt_r(miss['overall'])}.</p>"
            f"<table><tr><th>language / threat test</th><th>miss rate [95% CI]</th></tr>{rows}</table>"
            f'<div class="wide">{fig}</div>'
            + (("<h3>Other hateful cases</h3><p>Abuse that threatens no one: a threat flagger is neither right nor wrong "
                "to flag it; its flag rate is shown for completeness.</p>"
                f"<table><tr><th>functional test</th><th>flag rate [95% CI]</th></tr>{hrows}</table>") if hrows else ""))


def score_section(results: dict) -> str:
    sc = results.get("scores")
    if not sc:
        return ""
    rows = ""
    for op in sc["operating_points"]:
        if op.get("threshold") is None:
            rows += f"<tr><td>{op['target_ffr']:g}</td><td colspan='3' class='muted'>undefined</td></tr>"
            continue
        thr = (f"above every score ({_num(op['threshold']):.6g}): flags nothing" if op.get("above_every_score")
               else f"{_num(op['threshold']):.6g}")
        rows += (f"<tr><td>{op['target_ffr']:g}</td><td>{thr}</td>"
                 f"<td>{fmt_r(op['false_flag'])}</td><td>{fmt_r(op['miss'])}</td></tr>")
    c = sc["curve"]
    fig_html = ""
    if c.get("ffr") and c.get("miss_rate"):
        fig, ax = subplots(figsize=(5.4, 4))
        ax.plot(c["ffr"], c["miss_rate"], color="#2c3e80", lw=1.8, drawstyle="steps-post")
        for op in sc["operating_points"]:
            if op.get("threshold") is not None and op["miss"].get("value") is not None:
                ax.plot(op["false_flag"]["value"], op["miss"]["value"], "o", color="#c0392b")
        ax.set_xlabel("false-flag rate (benign cases)")
        ax.set_ylabel("miss rate (threat cases)")
        ax.set_title("Trade-off as the threshold varies", fontsize=10.5)
        ax.grid(alpha=0.3)
        fig_html = f'<div class="wide">{figure(to_data_uri(fig), "Each point a threshold (score >= T flags); dots: thresholds at the target false-flag rates.")}</div>'
    return ("<h2>Thresholds (score-based system)</h2>"
            "<p>Threshold at a target false-flag rate x: the lowest threshold whose false-flag count is at most "
            "floor(x &times; benign cases).</p>"
            f"<table><tr><th>target false-flag rate</th><th>threshold</th><th>false-flag rate</th><th>miss rate</th></tr>{rows}</table>"
            + fig_html)


def _auc(e: dict | None) -> str:
    if not e or e.get("value") is None:
        return "<span class='muted'>n/a</span>"
    lo, hi = e.get("ci_low"), e.get("ci_high")
    iv = f" <span class='muted'>[{lo:.2f}, {hi:.2f}]</span>" if lo is not None and hi is not None else ""
    return f"{e['value']:.2f}{iv}"


def _score_plot(rows: list[dict], title: str):
    groups = list(dict.fromkeys(r["group"] for r in rows))
    fig, ax = subplots(figsize=(7.4, max(2.4, 0.36 * len(groups) + 1.2)))
    for r in rows:
        y = groups[::-1].index(r["group"]) + (0.17 if r["role"] == "benign" else -0.17)
        colour = "#2c3e80" if r["role"] == "benign" else "#c0392b"
        ax.plot([r["p05"], r["p95"]], [y, y], color=colour, lw=1)
        ax.add_patch(matplotlib.patches.Rectangle(
            (r["q1"], y - 0.13), max(r["q3"] - r["q1"], 1e-9), 0.26, facecolor=colour, alpha=0.35, edgecolor=colour))
        ax.plot([r["median"]] * 2, [y - 0.13, y + 0.13], color=colour, lw=2)
    ax.set_yticks(range(len(groups)))
    ax.set_yticklabels(groups[::-1], fontsize=8.5)
    ax.tick_params(axis="x", labelsize=8.5)
    ax.set_xlabel("score (benign: blue, upper; threats: red, lower)", fontsize=9)
    ax.set_title(title, fontsize=10.5)
    ax.set_ylim(-0.7, len(groups) - 0.3)
    ax.grid(axis="x", alpha=0.3)
    return fig


def bias_section(results: dict) -> str:
    b = results.get("bias")
    if not b:
        return ""
    parts = ["<h2>Threshold-free bias (AUCs per group, within each suite)</h2>",
             ("<p>Borkan et al. (2019): <b>subgroup AUC</b> (threats against benign posts, both about the group), "
             "<b>BPSN AUC</b> (threats about others against benign posts about the group: low when benign speech about "
             "the group is scored like threats), <b>BNSP AUC</b> (threats about the group against benign posts about "
             "others), and the <b>benign-score AUC</b> (benign posts about the group against other benign posts: 0.5 "
             "when the group does not move the score; defined without threat cases). AUC: the chance that the first "
             "kind scores above the second, ties counting half. Background: the rest of the same suite. Intervals: "
             f"95%, templates resampled. Findings: {esc(b['rule'])}.</p>")]
    if b.get("binary_score"):
        parts.append("<p class='warn'>The score takes only two values (" + esc(b.get("score_source", "")) + "): these "
                     "AUCs are of a binary score, the average of the true-positive and true-negative rates at its one "
                     "threshold, not a measure of ranking.</p>")
    for suite, sec in b["suites"].items():
        rows = ""
        for by in ("target", "language"):
            for g, e in (sec.get(by) or {}).items():
                rows += (f"<tr><td>{esc(g)}</td><td>{by}</td>" + "".join(f"<td>{_auc(e.get(m))}</td>"
                                                                         for m in METRIC_WORDS) + "</tr>")
            pm = (sec.get("power_mean") or {}).get(by) or {}
            if pm:
                rows += (f"<tr><td><i>generalised mean (power {b['power']:g})</i></td><td>{by}</td>"
                         + "".join(f"<td>{_auc(pm.get(m))}</td>" for m in METRIC_WORDS) + "</tr>")
        if not rows:
            continue
        ov = sec.get("overall_auc") or {}
        parts.append(f"<h3>{esc(suite_name(suite))}</h3><p>Overall AUC (threats against benign posts): {_auc(ov)}.</p>"
                     "<table><tr><th>group</th><th>by</th>" + "".join(f"<th>{w}</th>" for w in METRIC_WORDS.values())
                     + f"</tr>{rows}</table>")
    dist = results.get("score_distributions") or {}
    figs = [figure(to_data_uri(_score_plot(rows, f"Scores per target group: {suite_name(k)}")),
                   "Box: quartiles; thick line: median; whiskers: 5th to 95th percentile.")
            for k, rows in dist.items() if rows]
    if figs:
        parts.append(f'<div class="wide">{"".join(figs)}</div>')
    return "".join(parts)


def counterfactual_section(results: dict) -> str:
    cf = results.get("counterfactual")
    if not cf:
        return ""
    parts = ["<h2>Same sentence, another group (counterfactual invariance)</h2>",
             ("<p>The fillings of one template are the same sentence with only the group, language variety or place "
             "changed (CheckList's invariance test). A template <i>changes</i> when two of its fillings get different "
             "flags. Intervals: 95%, templates as the units (Clopper-Pearson on template counts; bootstrap over "
             "templates for pairs and score shifts); they cover new templates of the same kind.</p>")]
    for suite, s in cf["suites"].items():
        if not s["templates"]:
            continue
        c, p = s["templates_changed"], s["pairs_disagreeing"]
        head = (f"<h3>{esc(suite_name(suite))}</h3><p>{c['count']} of {c['of']} templates change with the filling "
                f"alone: {pct(c['value'])} [{pct(c['ci_low'])}, {pct(c['ci_high'])}]"
                if c["count"] else f"<h3>{esc(suite_name(suite))}</h3><p>No template changes with the filling alone "
                f"(0 of {c['of']}; at most {pct(c['ci_high'])}, 95% upper bound)")
        head += (f"; {p['disagreeing']:,} of {p['pairs']:,} pairs of fillings disagree "
                 f"({pct(p['value'])} [{pct(p['ci_low'])}, {pct(p['ci_high'])}])" if p["disagreeing"] else
                 f"; none of {p['pairs']:,} pairs of fillings disagrees")
        if s.get("score_range"):
            r = s["score_range"]
            head += (f"; mean score range within a template {r['value']:.3g} [{r['ci_low']:.3g}, {r['ci_high']:.3g}]"
                     if r["ci_high"] else "; no filling changes the score")
        parts.append(head + ".</p>")
        rows = ""
        for g, v in s["groups"].items():
            up, down = v["flagged_for_group"], v["spared_for_group"]
            shift = v.get("score_shift")
            rows += (f"<tr><td>{esc(g)}</td><td>{v['templates']}</td><td>{up['count']} ({pct(up['value'])} "
                     f"[{pct(up['ci_low'])}, {pct(up['ci_high'])}])</td><td>{down['count']} ({pct(down['value'])} "
                     f"[{pct(down['ci_low'])}, {pct(down['ci_high'])}])</td>"
                     + (("<td>0 <span class='muted'>(no change)</span></td>" if not (shift["ci_low"] or shift["ci_high"])
                         else f"<td>{shift['value']:+.3g} [{shift['ci_low']:+.3g}, {shift['ci_high']:+.3g}]</td>")
                        if shift else "")
                     + "</tr>")
        if rows:
            sh = "<th>score shift [95%]</th>" if any("score_shift" in v for v in s["groups"].values()) else ""
            parts.append("<table><tr><th>group</th><th>templates with another group</th><th>flagged about it, not "
                         f"about another [95%]</th><th>not flagged about it, flagged about another [95%]</th>{sh}</tr>"
                         f"{rows}</table>")
        if s["examples"]:
            ex = "".join(f"<li>flagged: <i>{esc(e['flagged'][0])}</i><br>not flagged: <i>{esc(e['not_flagged'][0])}</i></li>"
                         for e in s["examples"])
            parts.append(f"<p>Examples:</p><ul>{ex}</ul>")
    return "".join(parts)


def volume_section(results: dict) -> str:
    v = results["volume"]
    rows = ""
    for r in v["rows"]:
        if r["false_flags"] is None:
            continue
        ppv = (f"{pct(r['ppv'])} [{pct(r['ppv_low'])}, {pct(r['ppv_high'])}]" if r["miss_rate_known"]
               else f"at most {pct(r['ppv_high'])}")
        tf = (f"{r['true_flags']:,.0f} [{r['true_flags_low']:,.0f}, {r['true_flags_high']:,.0f}]" if r["miss_rate_known"]
              else f"at most {r['true_flags_high']:,.0f}")
        rows += (f"<tr><td>{r['base_rate']:g}</td><td>{r['threat_posts']:,.0f}</td>"
                 f"<td><b>{r['false_flags']:,.0f}</b> [{r['false_flags_low']:,.0f}, {r['false_flags_high']:,.0f}]</td>"
                 f"<td>{tf}</td><td>{ppv}</td></tr>")
    sents = "".join(f"<li>{esc(s)}</li>" for s in v.get("sentences", []))
    assumptions = "".join(f"<li>{esc(a)}</li>" for a in v["assumptions"])
    return ("<h2>From rates to people: per day</h2>"
            f"<p>At <b>{v['posts_per_day']:,.0f}</b> posts a day. The base rate (share of posts that are genuine threats) "
            "is not measured: it is stated, and shown over a range.</p>"
            "<table><tr><th>base rate</th><th>genuine threats / day</th><th>posts flagged for nothing / day [95% CI]</th>"
            f"<th>threats flagged / day</th><th>share of flags that are right (PPV)</th></tr>{rows}</table>"
            f"<ul>{sents}</ul><p class='muted'>Model assumptions:</p><ul class='muted'>{assumptions}</ul>")


NETWORK_CAPTION = ("Left: accounts within 1, 2, 3 hops of a flagged account. Right: distinct accounts named by one "
                   "day's posts flagged for nothing (bands: the false-flag interval and the draws of authors); "
                   "dotted: all accounts.")


def network_section(results: dict) -> str:
    n = results.get("network")
    if not n:
        return ("<h2>Network expansion</h2><p class='muted'>Not computed: give <code>--graph FILE</code> (your own edge "
                "list), <code>--degrees FILE</code> (a degree sequence) or <code>--mean-degree K</code> (a graph with hubs and "
                "communities).</p>")
    hops = n["hops"]
    fig, axes = subplots(1, 2, figsize=(8.4, 3.6))
    hs = sorted(hops, key=int)
    mean = np.array([hops[h]["mean"] for h in hs])
    p05 = np.array([hops[h]["p05"] for h in hs])
    p95 = np.array([hops[h]["p95"] for h in hs])
    axes[0].bar(hs, mean, color="#2c3e80", alpha=0.85)
    axes[0].errorbar(hs, mean, yerr=[mean - p05, p95 - mean], fmt="none", ecolor="#222", capsize=4)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("hops from a flagged account")
    axes[0].set_ylabel("accounts pulled in (log)")
    axes[0].set_title("Per flagged post (mean; whiskers 5th-95th pct)", fontsize=10)
    per_day = n.get("per_day", [])
    distinct = all(r.get("distinct") for r in per_day)
    for h, colour in zip(hs, ("#1e8449", "#e67e22", "#c0392b")):
        x = [r["base_rate"] for r in per_day]
        src = [r["distinct"][h] if distinct else r[h] for r in per_day]
        axes[1].plot(x, [max(v["value"], 1) for v in src], "o-", color=colour, label=f"within {h} hop(s)")
        axes[1].fill_between(x, [max(v["low"], 1) for v in src], [max(v["high"], 1) for v in src], color=colour,
                             alpha=0.15)
    axes[1].axhline(n["n_nodes"], color="#999", ls=":", lw=1, label="all accounts")
    axes[1].set_xscale("log")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("base rate")
    axes[1].set_ylabel("distinct accounts named / day" if distinct else "lead-list entries / day")
    axes[1].set_title("Named by one day's posts flagged for nothing", fontsize=10)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    model = n["model"]
    if model["kind"] == "edge list":
        desc = f"your edge list ({esc(model.get('file', ''))})"
    elif model["kind"].startswith("Erdős"):
        desc = (f"an Erdős–Rényi random graph, {model['n_nodes']:,} accounts, stated mean degree "
                f"{model['stated_mean_degree']:g}, seed {model['seed']} ({esc(model['note'])})")
    elif "degree sequence" in model["kind"]:
        desc = (f"a configuration model of your degree sequence ({esc(model.get('file', ''))}) with communities of "
                f"{model['community_size']:,} accounts, mixing {model['mixing']:g}, seed {model['seed']}")
    else:
        desc = (f"a configuration model with communities: {model['n_nodes']:,} accounts, power-law degrees "
                f"(exponent {model['degree_exponent']:g}, stated mean {model['stated_mean_degree']:g}, largest "
                f"{model['max_degree']:,}), communities of {model['community_size']:,} accounts, a share "
                f"{model['mixing']:g} of each account's ties outside its community, seed {model['seed']} "
                f"({esc(model['note'])})")
    implied = n.get("accounts_implied_by_volume")
    scale = (f" The stated volume implies {implied:,} accounts posting on a day ({results['volume']['posts_per_day']:,.0f} "
             f"posts a day / {n['posts_per_account']:g} posts per account)" + (
                 "; the graph has that many." if implied == n["n_nodes"] else
                 f"; the graph has {n['n_nodes']:,}, so per-day figures are for a population of that size.")
             if implied else "")
    rows = "".join(f"<tr><td>{h}</td><td>{hops[h]['mean']:,.1f}"
                   + (f" [{hops[h]['mean_low']:,.1f}, {hops[h]['mean_high']:,.1f}]" if "mean_low" in hops[h] else "")
                   + f"</td><td>{hops[h]['median']:,.0f}</td>"
                   f"<td>{hops[h]['p05']:,.0f}&ndash;{hops[h]['p95']:,.0f}</td></tr>" for h in hs)
    drows = ""
    sat = ""
    for r in per_day:
        d = r.get("distinct")
        if not d:
            continue
        drows += f"<tr><td>{r['base_rate']:g}</td>" + "".join(
            f"<td>{d[h]['value']:,.0f} [{d[h]['low']:,.0f}, {d[h]['high']:,.0f}] <span class='muted'>"
            f"({pct(d[h]['share'])})</span></td>" for h in hs) + "</tr>"
    head = next((r for r in per_day if r["base_rate"] == n.get("headline_base_rate")), None)
    if head and head.get("distinct"):
        full = [h for h in hs if head["distinct"][h]["share"] >= 0.5]
        if full:
            sat = (f"<p class='warn'>At a base rate of {head['base_rate']:g}, one day's posts flagged for nothing put "
                   f"{pct(head['distinct'][full[0]]['share'])} of all {n['n_nodes']:,} accounts within {full[0]} "
                   "hop(s) of a flagged author: the lead list is close to the whole population, and the figure is "
                   "limited by the population's size, not by the flagger.</p>")
    dtable = ("<p><b>Distinct accounts named per day</b> (authors of the day's posts flagged for nothing, drawn "
              "uniformly with replacement, and every account within h hops of any of them, by one breadth-first "
              "search; never more than the population). Interval: the false-flag rate's 95% interval joined with "
              "10 draws of the authors; share of all accounts in brackets.</p>"
              "<table><tr><th>base rate</th>" + "".join(f"<th>within {h} hop(s)</th>" for h in hs)
              + f"</tr>{drows}</table>") if drows else ""
    return ("<h2>Network expansion</h2>" + sat +
            f"<p>Graph: {desc}; {n['n_nodes']:,} accounts, {n['n_edges']:,} edges, measured mean degree "
            f"{n['mean_degree']:.2f}.{scale} {n['n_flagged_accounts_sampled']} flagged accounts drawn uniformly at "
            "random; accounts within h hops counted by breadth-first search (the author excluded); the mean's 95% "
            "interval resamples the sampled accounts.</p>"
            f"<table><tr><th>hops</th><th>mean accounts [95%]</th><th>median</th><th>5th&ndash;95th pct</th></tr>{rows}</table>"
            + dtable +
            f'<div class="wide">{figure(to_data_uri(fig), NETWORK_CAPTION)}</div>'
            "<p class='muted'>Assumptions: a flagged post's author is like a random account; lead-list entries add "
            "lists without removing overlaps (an account counted once per list it is on); the distinct counts "
            "remove them.</p>")


def http_note(http: dict | None) -> str:
    """How the flags of a system behind HTTP were collected (``flagaudit audit --endpoint``)."""
    if not http:
        return ""
    return (f"<p>Flags collected over HTTP from <b>{esc(http['endpoint'])}</b> only, one request per case "
            f"({http['cases']:,} cases; "
            + (f"{http['cases_from_journal']:,} answered in an earlier, interrupted run and read from its journal; "
               if http["cases_from_journal"] else "")
            + f"{http['requests_this_run']:,} requests in the last run, {http['retries_this_run']:,} "
            f"of them retries). Adapter {esc(http['adapter'])}, sha256 {esc(http['adapter_sha256'][:16])}&hellip;. "
            "Every request is logged in <code>requests.jsonl</code> beside this report: time, status, latency and "
            "hashes of what was sent and received, never credentials.</p>")


def suites_section(results: dict) -> str:
    items = "".join(
        f"<li><b>{esc(s['name'])}</b>: {esc(s['notes'])} Source: {esc(s['source'])}. Licence: <b>{esc(s['licence'])}</b>. "
        f"Cite: {esc(s['citation'])}</li>" for s in results["suites"])
    sysd = results["system"]
    # the metrics state how their intervals and differentials were made (rates.methods) where they
    # differ from the conventions written when the audit ran
    conventions = {**results["conventions"], **(results["rates"].get("methods") or {})}
    conv = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in conventions.items())
    c = results["counts"]
    return ("<h2>What was audited</h2>"
            f"<p>System: {esc(sysd['kind'])} &mdash; {esc(sysd['description'])}.</p>"
            + http_note(results.get("http")) +
            f"<p>{c['cases']:,} cases from {c['templates']:,} templates ({c['benign']:,} benign, {c['threat']:,} threats, "
            f"{c['hateful_other']:,} other hateful) in {', '.join(map(esc, c['languages']))}. Bootstrap: "
            f"{results['bootstrap']['n_boot']:,} resamples of templates, seed {results['bootstrap']['seed']}.</p>"
            f"<h2>Suites: provenance and licences</h2><ul>{items}</ul>"
            + ("<p class='muted'>HateCheck and Multilingual HateCheck are CC-BY-4.0 test suites (attribution above) and "
               "contain offensive language by design.</p>" if any("HateCheck" in s["name"] for s in results["suites"]) else "")
            + "<p class='muted'>flagaudit reads test suites and the user's own files only; it never monitors accounts "
            "or collects posts" + (", and it sent the suites' cases to the one endpoint named above and nowhere else"
                                   if results.get("http") else "") + ".</p>"
            f"<h2>Definitions and conventions</h2><dl class='conv'>{conv}</dl>")


def render_report(results: dict) -> str:
    # the warnings the audit recorded (results["warnings"]: records or plain strings) before anything else
    sections = [warnings_banner(results.get("warnings")), summary(results), rates_section(results), counterfactual_section(results), bias_section(results),
                miss_section(results), score_section(results), volume_section(results), network_section(results),
                suites_section(results),
                provenance_section(results.get("provenance"), verify_command(results))]
    sub = (f"{esc(results['system']['kind'])} &middot; suites: {esc(', '.join(s['name'] for s in results['suites']))} "
           f"&middot; flagaudit {esc(results['flagaudit_version'])} &middot; {esc(results['created'])}")
    return page("flagaudit report: false flags on protected speech", sub, sections)

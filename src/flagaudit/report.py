"""flagaudit's ``report.html``: sections drawn from ``results.json`` only (no metric computed
here), in the shared page shell of :mod:`auditcore.report`."""

from __future__ import annotations

import math

import matplotlib.ticker
import numpy as np

from auditcore.report import esc, figure, page, subplots, to_data_uri

SUITE_COLOURS = {"benign-traps": "#c0392b", "hatecheck": "#2c3e80", "mhc": "#1e8449"}

TEST_NAMES = {
    "bt_policy_opinion": "political opinion on immigration policy/enforcement",
    "bt_hyperbole": "hyperbole and figurative violence",
    "bt_religious": "religious expression",
    "bt_protest": "lawful protest and organising",
    "bt_own_status": "talk of one's own immigration status/papers",
    "bt_quoted_threat": "quoting or reporting someone else's threat",
    "bt_agency_criticism": "criticism of an agency",
}


def test_name(key: str) -> str:
    return TEST_NAMES.get(key, key)


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
    named = (f"most flagged here: <b>{esc(hi)}</b> ({pct(groups[hi]['value'])}), least: {esc(lo)} "
             f"({pct(groups[lo]['value'])})")
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
    h = max(2.2, 0.32 * len(entries) + 1.0)
    fig, ax = subplots(figsize=(8.6, h))
    y = np.arange(len(entries))[::-1]
    v = np.array([e[1]["value"] for e in entries], dtype=float)
    lo = np.array([e[1]["ci_low"] for e in entries], dtype=float)
    hi = np.array([e[1]["ci_high"] for e in entries], dtype=float)
    ax.barh(y, v, color=[e[2] for e in entries], alpha=0.8, height=0.62)
    ax.errorbar(v, y, xerr=[v - lo, hi - v], fmt="none", ecolor="#222", capsize=3, lw=1.1)
    ax.set_yticks(y)
    ax.set_yticklabels([f"{e[0]} (n={e[1]['trials']})" for e in entries], fontsize=8.5)
    ax.set_xlim(0, max(0.05, float(np.nanmax(hi)) * 1.08 if len(hi) else 1))
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10.5)
    ax.grid(axis="x", alpha=0.3)
    return fig


def _suite_of(results: dict, func: str) -> str:
    return "benign-traps" if func.startswith("bt_") else "hatecheck"


def summary(results: dict) -> str:
    rates = results["rates"]
    ff = rates["false_flag"]
    parts = []
    overall = ff["overall"]
    if overall.get("trials"):
        parts.append(f"<p>Of <b>{overall['trials']:,}</b> posts that threaten no one, the system flagged "
                     f"<b>{pct(overall['value'])}</b> (95% interval {pct(overall['ci_low'])} to {pct(overall['ci_high'])}).</p>")
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
    for by, what in (("target", "target groups"), ("language", "languages")):
        t = _ratio_text(ff[by]["differential"], what, ff[by]["groups"])
        if t:
            parts.append(f"<p>{t}</p>")
    miss = rates["miss"]["overall"]
    if miss.get("trials"):
        parts.append(f"<p>Of <b>{miss['trials']:,}</b> genuine threats (HateCheck's direct and normative threats), "
                     f"it missed <b>{pct(miss['value'])}</b> (95% interval {pct(miss['ci_low'])} to {pct(miss['ci_high'])}).</p>")
    else:
        parts.append("<p>No genuine threats were in the chosen suites, so the miss rate is undefined "
                     "(add <code>--suite hatecheck</code> or <code>mhc</code>).</p>")
    sents = results.get("volume", {}).get("sentences", [])
    if sents:
        parts.append(f"<p><b>Per day:</b> {esc(sents[len(sents) // 2])}</p>")
    net = results.get("network")
    if net and net.get("per_day"):
        row = net["per_day"][len(net["per_day"]) // 2]
        r2 = net["hops"]["2"]
        parts.append(f"<p><b>Network analysis:</b> each flagged account has on average {r2['mean']:,.0f} accounts within "
                     f"two hops in the {esc(net['model']['kind'])} graph ({net['n_nodes']:,} accounts); at that base rate "
                     f"({row['base_rate']:g}) a two-hop lead list on every post flagged for nothing would put "
                     f"{row['2']['low']:,.0f} to {row['2']['high']:,.0f} names on lead lists a day (an account counted "
                     "each time it appears; the same account can be on many lists).</p>")
    return '<div class="summary">' + "".join(parts) + "</div>"


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
    for by, title in (("target", "False-flag rate per target group"), ("language", "False-flag rate per language")):
        groups = ff[by]["groups"]
        if len(groups) > 1 or by == "target":
            e = [(k, v, "#7f8c8d" if k == "none" else "#2c3e80")
                 for k, v in sorted(groups.items(), key=lambda kv: -(kv[1]["value"] or 0))]
            note = ("grey: posts about no group. Groups come from different suites (benign traps: groups named in "
                    "posts about immigration and faith; HateCheck/MHC: the protected groups of their tests), so a "
                    "difference between groups can reflect what the suites say about them. " if by == "target" else "")
            figs.append(figure(to_data_uri(_bars(e, title, "share of benign posts flagged")),
                               f"{title}; {note}Whiskers: 95% intervals."))
    rows = "".join(f"<tr><td>{esc(test_name(k))}</td><td>{esc(k)}</td><td>{fmt_r(v)}</td></tr>"
                   for k, v in sorted(ff["functionality"]["groups"].items()))
    diffs = ""
    simultaneous = False
    for by in ("target", "language", "suite"):
        d = ff[by]["differential"]
        r, m = d["max_min_ratio"], d["max_difference"]
        if r["value"] is None and m["value"] is None:
            continue
        simultaneous = simultaneous or bool(d.get("comparisons"))
        diffs += (f"<tr><td>{by}</td><td>{esc(d['highest'])} / {esc(d['lowest'])}</td>"
                  f"<td>{_ratio(r['value'])} [{_ratio(r['ci_low'])}, {_ratio(r['ci_high'])}]</td>"
                  f"<td>{pct(m['value'])} [{pct(m['ci_low'])}, {pct(m['ci_high'])}]</td>"
                  f"<td>{len(d['ranked_groups'])}</td></tr>")
    fam = next((ff[by]["differential"] for by in ("target", "language", "suite")
                if ff[by]["differential"].get("comparisons")), None)
    ci_head = "simultaneous 95%" if simultaneous else "95% CI"
    fam_note = (f" Intervals: simultaneous {fam['confidence']:.0%} bounds over all {fam['comparisons']:,} pairwise "
                "comparisons of this table (every pair of ranked groups in each row, its difference and its ratio each "
                f"at {100 * fam['per_comparison_level']:.4g}%: Bonferroni), so they hold for the most- and least-flagged pair "
                "whichever it is: with no true difference, a difference is claimed in at most 5% of audits." if fam else "")
    return ("<h2>False flags on protected speech</h2>"
            "<p>False-flag rate: share of benign cases (gold label non-hateful, or benign by construction) that the "
            "system flagged. Intervals account for cases of one template not being independent.</p>"
            f'<div class="grid">{"".join(figs)}</div>'
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
            f'<div class="grid">{fig}</div>'
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
        fig_html = f'<div class="grid">{figure(to_data_uri(fig), "Each point a threshold (score >= T flags); dots: thresholds at the target false-flag rates.")}</div>'
    return ("<h2>Thresholds (score-based system)</h2>"
            "<p>Threshold at a target false-flag rate x: the lowest threshold whose false-flag count is at most "
            "floor(x &times; benign cases).</p>"
            f"<table><tr><th>target false-flag rate</th><th>threshold</th><th>false-flag rate</th><th>miss rate</th></tr>{rows}</table>"
            + fig_html)


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


def network_section(results: dict) -> str:
    n = results.get("network")
    if not n:
        return ("<h2>Network expansion</h2><p class='muted'>Not computed: give <code>--graph FILE</code> (your own edge "
                "list) or <code>--mean-degree K</code> (a random graph).</p>")
    hops = n["hops"]
    fig, axes = subplots(1, 2, figsize=(10, 3.6))
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
    for h, colour in zip(hs, ("#1e8449", "#e67e22", "#c0392b")):
        x = [r["base_rate"] for r in per_day]
        axes[1].plot(x, [r[h]["value"] for r in per_day], "o-", color=colour, label=f"within {h} hop(s)")
        axes[1].fill_between(x, [r[h]["low"] for r in per_day], [r[h]["high"] for r in per_day], color=colour, alpha=0.15)
    axes[1].axhline(n["n_nodes"], color="#999", ls=":", lw=1, label="accounts in the graph")
    axes[1].set_xscale("log")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("base rate")
    axes[1].set_ylabel("lead-list entries / day")
    axes[1].set_title("Pulled in by posts flagged for nothing", fontsize=10)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    model = n["model"]
    desc = (f"your edge list ({esc(model.get('file', ''))})" if model["kind"] == "edge list" else
            f"an Erdős–Rényi random graph, {model['n_nodes']:,} accounts, stated mean degree {model['stated_mean_degree']:g}, "
            f"seed {model['seed']} ({esc(model['note'])})")
    rows = "".join(f"<tr><td>{h}</td><td>{hops[h]['mean']:,.1f}</td><td>{hops[h]['median']:,.0f}</td>"
                   f"<td>{hops[h]['p05']:,.0f}&ndash;{hops[h]['p95']:,.0f}</td></tr>" for h in hs)
    sat = ""
    if hops[hs[-1]]["p95"] >= 0.5 * n["n_nodes"]:
        sat = (f"<p class='warn'>Within {hs[-1]} hops a flagged account reaches a large share of this "
               f"{n['n_nodes']:,}-account graph: that count is limited by the graph's size, and would be larger "
               "in a larger graph of the same mean degree.</p>")
    return ("<h2>Network expansion</h2>" + sat +
            f"<p>Graph: {desc}; {n['n_nodes']:,} accounts, {n['n_edges']:,} edges, measured mean degree "
            f"{n['mean_degree']:.2f}. {n['n_flagged_accounts_sampled']} flagged accounts drawn uniformly at random; "
            "accounts within h hops counted by breadth-first search (the author excluded).</p>"
            f"<table><tr><th>hops</th><th>mean accounts</th><th>median</th><th>5th&ndash;95th pct</th></tr>{rows}</table>"
            f'<div class="wide">{figure(to_data_uri(fig), "Accounts within 1, 2, 3 hops of a flagged account; and per day, lead-list entries from posts flagged for nothing: flags x mean reach (bands from the false-flag interval; an account counted once per list it is on). Dotted: all accounts in the graph.")}</div>'
            "<p class='muted'>Assumptions: a flagged post's author is like a random account; per-day counts add lead "
            "lists without removing overlaps or repeat authors: they count list entries, and bound from above the "
            "distinct accounts named (which can never exceed the accounts in the graph).</p>")


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


def provenance_section(results: dict) -> str:
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
    sections = [summary(results), rates_section(results), miss_section(results), score_section(results),
                volume_section(results), network_section(results), provenance_section(results)]
    sub = (f"{esc(results['system']['kind'])} &middot; suites: {esc(', '.join(s['name'] for s in results['suites']))} "
           f"&middot; flagaudit {esc(results['flagaudit_version'])} &middot; {esc(results['created'])}")
    return page("flagaudit report: false flags on protected speech", sub, sections)

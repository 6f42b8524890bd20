"""Report section: who bears the errors (ISO/IEC 19795-10 demographic differentials)."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.ticker import FuncFormatter, MaxNLocator

from faceaudit.report import plots
from auditcore.report import figure_natural, limit_rows
from faceaudit.report.html import esc, fmt_threshold, fmt_threshold_difference

HEATMAP_MAX_GROUPS = 8  # more groups than this: the cross-group FMR as a table (cells' text would not fit)

LABELS = {"fmr": "FMR (impostor comparisons matched)", "fnmr": "FNMR (genuine comparisons rejected)",
          "fpir": "FPIR (non-mated searches returning someone)", "fnir": "FNIR rank 1 (mated searches missed)"}


def heatmap(analysis: dict):
    groups = analysis["groups"]
    rate = np.array([[np.nan if v is None else v for v in row] for row in analysis["cross_fmr"]["rate"]], float)
    n = len(groups)
    # about 1.05 in a cell: its two lines of 9 pt text fit; shown at its own size (no shrinking) up to 8 groups
    fig, ax = plots.subplots(figsize=(2.6 + 1.05 * n, 1.9 + 0.8 * n))
    positive = rate[np.isfinite(rate) & (rate > 0)]
    floor = positive.min() / 2 if positive.size else 1e-9
    shown = np.where(np.isfinite(rate), np.maximum(rate, floor), np.nan)
    top = np.nanmax(shown) if np.isfinite(shown).any() else 1.0
    im = ax.imshow(shown, cmap="magma_r", norm=LogNorm(vmin=floor, vmax=max(top, floor * 10)))
    highs = analysis["cross_fmr"].get("ci_high")
    errors = np.array(analysis["cross_fmr"]["errors"], float)
    trials = np.array(analysis["cross_fmr"]["trials"], float)

    def short(x):
        return f"{x:,.0f}" if x < 1e4 else (f"{x / 1e3:,.0f}k" if x < 1e7 else f"{x / 1e6:,.0f}M")

    for i in range(n):
        for j in range(n):
            v = rate[i, j]
            text = "n/a" if not np.isfinite(v) else ("0" if v == 0 else f"{v:.1e}")
            if v == 0 and highs is not None and highs[i][j] is not None:  # no false match: its bound, never 0
                text = f"\u2264{highs[i][j]:.1e}"
            if trials[i, j] > 0:
                text += f"\n{short(errors[i, j])}/{short(trials[i, j])}"
            ax.text(j, i, text, ha="center", va="center", fontsize=9,
                    color="white" if np.isfinite(v) and v > 0 and np.log(max(v, floor)) > (np.log(floor) + np.log(top)) / 2 else "black")
    ax.set_xticks(range(n), groups, rotation=35, ha="right", fontsize=10)
    ax.set_yticks(range(n), groups, fontsize=10)
    ax.set_xlabel("gallery (enrolled) group")
    ax.set_ylabel("probe group")
    ax.set_title("FMR by probe group x gallery group\n(cells: rate or its 95% upper bound (≤), matched/compared)", fontsize=11)
    fig.colorbar(im, ax=ax, shrink=0.8, label="FMR (log scale)")
    return fig


def bars(analysis: dict, min_size: int):
    measures = [m for m in ("fnir", "fpir", "fmr", "fnmr") if analysis["rates"].get(m)]
    n_rows = (len(measures) + 1) // 2
    fig, axes = plots.subplots(n_rows, 2, figsize=(10.0, n_rows * (1.4 + 0.42 * len(analysis["groups"]))),
                               squeeze=False)
    for ax in axes.ravel()[len(measures):]:
        ax.axis("off")
    ranked = set(analysis.get("ranked_groups", analysis["groups"]))
    for ax, m in zip(axes.ravel(), measures):
        entries = analysis["rates"][m]
        names = list(entries)
        vals = np.array([entries[g]["value"] or 0 for g in names], float)
        lo = np.array([entries[g]["ci"][0] if entries[g]["ci"][0] is not None else np.nan for g in names], float)
        hi = np.array([entries[g]["ci"][1] if entries[g]["ci"][1] is not None else np.nan for g in names], float)
        grey = [entries[g]["too_few"] or g not in ranked for g in names]
        colours = ["#cccccc" if g else "#2c3e80" for g in grey]
        y = np.arange(len(names))
        ax.barh(y, vals, color=colours)
        err = np.vstack([np.clip(vals - lo, 0, None), np.clip(hi - vals, 0, None)])
        ax.errorbar(vals, y, xerr=np.nan_to_num(err), fmt="none", ecolor="#333", capsize=2, lw=0.8)
        # the axis is set by the ranked groups: a greyed group's interval (a handful of people,
        # up to 100%) would otherwise squash every ranked bar to nothing; where it runs past the
        # axis it ends in an arrow at the edge
        shown = [max(v, h if np.isfinite(h) else v) for v, h, g in zip(vals, hi, grey) if not g]
        if shown and max(shown) > 0 and np.nanmax(np.where(np.isfinite(hi), hi, vals)) > 1.15 * max(shown):
            right = 1.15 * max(shown)
            ax.set_xlim(0, right)
            for yy, h, v in zip(y, hi, vals):
                if max(v, h if np.isfinite(h) else v) > right:
                    ax.annotate("", xy=(right, yy), xytext=(0.93 * right, yy), annotation_clip=False,
                                arrowprops={"arrowstyle": "->", "color": "#333", "lw": 0.8})
        ax.set_yticks(y, names, fontsize=10)
        ax.set_title(LABELS[m], fontsize=11)
        ax.tick_params(axis="x", labelsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        # percentages, every tick its own value: no multiplier in the axis corner
        ax.xaxis.set_major_formatter(FuncFormatter(_percent_tick))
        ax.invert_yaxis()
    fig.suptitle(f"Per group at one threshold; bars: 95% intervals from people; grey: fewer than {min_size} "
                 "searches or unranked label (an arrow: its interval runs past the axis)", fontsize=10)
    fig.tight_layout()
    return fig


def _percent_tick(x: float, _pos=None) -> str:
    """A rate's tick as a percentage with no more digits than it needs (0.0004%, 15%, 0)."""
    return "0" if x == 0 else f"{100 * x:.2g}%"


def rate_words(values) -> list[str]:
    """Rates in one kind of number, as the demographic sentences write them: all "1 in N" when the
    largest is below 1%, else all percentages; 0 as "0", a missing end as "n/a"."""
    finite = [v for v in values if isinstance(v, (int, float)) and np.isfinite(v)]
    one_in = bool(finite) and max(finite) < 0.01
    out = []
    for v in values:
        if v is None or isinstance(v, str) or not np.isfinite(v):
            out.append("unbounded" if v == "inf" or v == float("inf") else "n/a")
        elif v <= 0:
            out.append("0")
        elif v < 1e-9:  # as faceaudit.analyses.demographics.rate_words (report reads, never imports analyses)
            out.append("below 1 in 1,000,000,000")
        elif one_in:
            n = 1.0 / v
            digits = max(int(np.floor(np.log10(n))) - 1, 0)
            out.append(f"1 in {round(n, -digits):,.0f}")
        else:
            out.append(f"{100 * v:.2g}%" if v < 0.1 else f"{100 * v:.3g}%")
    return out


def _cell(entry: dict | None) -> str:
    if not entry:
        return '<td class="muted">no trials</td>'
    style = ' style="color:#999"' if entry["too_few"] else ""
    lo, hi = entry["ci"]
    note = f"<br><small>{esc(entry['note'])}</small>" if entry.get("note") else ""
    few = "<br><small>too few trials</small>" if entry["too_few"] else ""
    if entry.get("unit") == "person":
        counts = f"({entry['trials']:,} people)"
    else:
        counts = f"({entry['errors']:,}/{entry['trials']:,})"
    # no errors: the figure is the bound, never "0 [0, 0]" (older results: the bound from people);
    # every number of a cell in one kind (the note beside it writes its bound the same way)
    bound = entry.get("upper_bound") or entry.get("upper_bound_from_people") or hi
    if not entry["errors"] and bound:
        figure = f"at most {rate_words([bound])[0]} <span class='muted'>(95% upper bound)</span>"
    elif lo is not None:
        v, a, b = rate_words([entry["value"], lo, hi])
        figure = f"{v} [{a}, {b}]"
    else:
        figure = rate_words([entry["value"]])[0]
    return f"<td{style}>{figure} <span class='muted'>{counts}</span>{note}{few}</td>"


def _g(value, digits: int = 3) -> str:
    """A number as text; JSON's "inf" strings and None pass through readably."""
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return "unbounded" if value == "inf" else esc(value)
    if abs(value) >= 1e4 and np.isfinite(value):  # 11,700, never 1.17e+04
        return f"{float(f'{value:.{digits}g}'):,.0f}"
    return f"{value:.{digits}g}"


def _ratio_text(c: dict) -> str:
    """A contrast without infinity: ratio [CI], or "at least x" with the reason, or not measurable."""
    if not c["measurable"]:
        return f"<span class='muted'>{esc(c['note'])}</span>"
    lo, hi = c["ci"]
    if c["ratio"] is None:
        bound = f"at least {_g(c['at_least'], 3)}" if c["at_least"] else "no bound"
        return f"{bound}<br><small>{esc(c['note'])}</small>"
    ci = f" [{_g(lo, 3)}, {_g(hi, 3) if hi is not None else 'unbounded'}]" if lo is not None else ""
    return f"{_g(c['ratio'], 3)}{ci}"


def _threshold_row(t: dict, single: float) -> str:
    shown = fmt_threshold(t["threshold"]) if t["measurable"] else "not measurable"
    delta = "" if t["threshold"] is None else fmt_threshold_difference(t["threshold"], single)
    fnmr = "" if t["fnmr"]["value"] is None else rate_words([t["fnmr"]["value"]])[0]
    return f"<tr><td>{esc(t['group'])}</td><td>{shown}</td><td>{delta}</td><td>{fnmr}</td></tr>"


def _intervals_text(d: dict) -> str:
    """What the intervals are, from the results (older results folders: the bootstrap alone)."""
    claims = d.get("claims")
    if not claims:
        return (f"Intervals: {d['confidence']:.0%} percentile intervals from {d['n_boot']:,} bootstrap resamples of "
                f"probe subjects (seed {d['seed']}; {esc(d['bootstrap'])}).")
    return (f"Per-group intervals ({d['confidence']:.0%}): Clopper-Pearson on the effective number of trials, the "
            "trials discounted by the design effect measured from the people (Korn-Graubard), so they cover the rate "
            "of new people of the same kind, not only of the people in this audit; a group with no errors shows its "
            f"upper bound. Contrasts between groups: simultaneous {claims['confidence']:.0%} bounds over all "
            f"{claims['comparisons']:,} pairwise comparisons of this section (every pair of ranked groups, every "
            f"measure, every grouping; Bonferroni, each at {100 * claims['per_comparison_level']:.4g}%), so a claim about the "
            "highest and lowest group holds whichever pair that turned out to be; with no true difference the section "
            "claims one in at most 5% of audits." + _summary_intervals_text(d))


def _summary_intervals_text(d: dict) -> str:
    """How FDR, GARBE and the inequity rate's intervals are made and what they cover, as the results
    say (``interval_method``, ``interval_covers``); older results: a people bootstrap's spread."""
    about = next((a[k] for a in d["analyses"] for k in ("fdr", "garbe", "inequity_rate")
                  if isinstance(a.get(k), dict) and a[k].get("interval_method")), None)
    if about is None:
        return (" FDR, GARBE and the inequity rate describe the spread of these groups' rates; their intervals "
                f"({d['n_boot']:,} people-bootstrap resamples, seed {d['seed']}) describe this sample's spread and "
                "are not tests of equal rates.")
    return (" FDR, GARBE and the inequity rate describe the spread of these groups' rates; their intervals cover "
            f"{esc(about.get('interval_covers', 'this audit'))} (how: {esc(about['interval_method'])}).")


def render(results: dict) -> str:
    d = results["demographics"]
    caveats = d.get("caveats") or {}
    out = ["<h2>Demographic differentials (ISO/IEC 19795-10)</h2>",
           f"<p>One threshold for everyone, <b>{fmt_threshold(d['threshold'])}</b> ({esc(d['threshold_rule'])}), "
           f"as deployed systems use. {_intervals_text(d)} Groups with fewer than "
           f"{d['min_group_size']} searches, and missing/unknown/ambiguous labels, are shown greyed and never ranked.</p>"]
    ci_head = "simultaneous 95%" if d.get("claims") else "95% CI"
    for a in d["analyses"]:
        cols = [c.strip() for c in a["spec"].split("*")]
        prov = a.get("label_provenance") or {c: caveats.get(c) for c in cols}
        cav = [f"<b>{esc(c)}</b>: {esc(t)}" if t else f"where the labels in column <b>{esc(c)}</b> came from is not stated"
               for c, t in prov.items()]
        caveat_html = (f"<p class='{'warn' if any(prov.values()) else 'muted'}'>Labels: {'; '.join(cav)}. "
                       "Every figure below inherits this.</p>")
        rows = limit_rows([f"<tr><td>{esc(g)}</td><td>{a['group_sizes'][g]['probe_subjects']:,}</td>"
                           + "".join(_cell(a["rates"][m].get(g)) for m in ("fnir", "fpir", "fmr", "fnmr")) + "</tr>"
                           for g in a["groups"]], 6, keep=12)
        summ = ""
        for m in ("fnir", "fpir", "fmr", "fnmr"):
            s = a["summaries"][m]
            c = s.get("extreme_pair")
            if not c:
                summ += f"<tr><td>{LABELS[m]}</td><td colspan='4' class='muted'>{esc(s.get('note', 'undefined'))}</td></tr>"
                continue
            ref = s.get("strongest_versus_reference")
            summ += (f"<tr><td>{LABELS[m]}</td><td>{_ratio_text(c)}</td><td>{esc(c['group'])} / {esc(c['versus'])}</td>"
                     f"<td>{_ratio_text(ref) if ref else '<span class=muted>n/a</span>'}</td>"
                     f"<td>{esc(ref['group']) + ' / ' + esc(ref['versus']) if ref else ''}</td></tr>")
        extra = ""
        for key, label in (("inequity_rate", "inequity rate (FMR ratio x FNMR ratio)"),
                           ("fdr", "FDR (1 = no differential)"), ("garbe", "GARBE (0 = no differential)")):
            if key in a:
                lo, hi = a[key]["ci"]
                ci = "" if lo is None else f" [{_g(lo, 3)}, {_g(hi, 3)}]"
                if lo is not None and hi is None and a[key].get("ci_note"):  # no upper end: say why, not "n/a"
                    ci = f" [{_g(lo, 3)}, no upper end] <br><small>{esc(a[key]['ci_note'])}</small>"
                value = _g(a[key]["value"], 3) if a[key]["value"] is not None else f"<span class='muted'>{esc(a[key].get('note', 'not measurable'))}</span>"
                extra += f"<tr><td>{label}</td><td colspan='4'>{value}{ci}</td></tr>"
        thr = limit_rows([_threshold_row(t, d["threshold"]) for t in a["group_thresholds"]], 4, keep=12)
        findings = "".join(f"<li>{esc(f)}</li>" for f in a["findings"]) or "<li>No ranked pair of groups to compare.</li>"
        out.append(
            f"<h3>Grouped by {esc(a['spec'])}</h3>{caveat_html}<ul>{findings}</ul>"
            "<table><tr><th>group</th><th>probe people</th><th>FNIR rank 1</th><th>FPIR</th><th>FMR</th><th>FNMR</th></tr>"
            f"{rows}</table>{_fmr_interval_text(a)}"
            f'<figure><img style="width:100%" src="{plots.to_data_uri(bars(a, d["min_group_size"]))}" alt="per-group rates"></figure>'
            + _cross_fmr(a) +
            "<div><p><b>Differential summaries</b> (ranked groups only)</p>"
            f"<table><tr><th>measure</th><th>highest / lowest [{ci_head}]</th><th>groups</th><th>largest against the "
            f"reference group [{ci_head}]</th><th>groups</th></tr>"
            f"{summ}{extra}</table>"
            f"<p><b>Threshold each group would need</b> for the overall FMR ({rate_words([a['overall_fmr']])[0]}):</p>"
            "<table><tr><th>probe group</th><th>threshold</th><th>vs the single threshold</th><th>FNMR there</th></tr>"
            f"{thr}</table></div>")
    return "".join(out)


CROSS_CAPTION = ("Impostor comparisons matched, by the probe's group (rows) and the enrolled person's group (columns). "
                 "Same-group pairs (diagonal) often match more: look-alikes are likelier within a group.")


def _fmr_interval_text(a: dict) -> str:
    """How the per-group FMR intervals are made and what they cover (``fmr_interval``: two-way from
    probe and gallery people, or from probe people alone and why); nothing for older results."""
    about = a.get("fmr_interval")
    if not about:
        return ""
    return (f"<p class='sub'>FMR intervals: {esc(about.get('method', ''))}; they cover "
            f"{esc(about.get('covers', 'this audit'))}.</p>")


def _cross_caption(a: dict) -> str:
    """The cross-group caption, with how the cells' intervals were made where the results say."""
    how = a["cross_fmr"].get("interval")
    if not how:
        return CROSS_CAPTION
    where = "" if len(a["groups"]) > HEATMAP_MAX_GROUPS else " (in results.json: demographics, cross_fmr)"
    return f"{CROSS_CAPTION} Each cell's 95% interval{where}: {how}."


def _cross_fmr(a: dict) -> str:
    """The cross-group FMR: a heatmap whose cells' text fits (up to :data:`HEATMAP_MAX_GROUPS` groups,
    shown at its own size, never shrunk), else a table of the same figures."""
    groups = a["groups"]
    if len(groups) <= HEATMAP_MAX_GROUPS:
        return figure_natural(plots.to_data_uri(heatmap(a)), _cross_caption(a))
    cross = a["cross_fmr"]
    head = "".join(f"<th>{esc(g)}</th>" for g in groups)
    rows = []
    for i, g in enumerate(groups):
        cells = ""
        for j in range(len(groups)):
            v, e, n = cross["rate"][i][j], cross["errors"][i][j], cross["trials"][i][j]
            lo = (cross.get("ci_low") or [[None] * len(groups)] * len(groups))[i][j]
            hi = (cross.get("ci_high") or [[None] * len(groups)] * len(groups))[i][j]
            if v is None or not n:
                cells += "<td class='muted'>n/a</td>"
                continue
            if not e and hi is not None:
                text = f"at most {rate_words([hi])[0]}"
            elif lo is not None and hi is not None:
                w = rate_words([v, lo, hi])
                text = f"{w[0]} [{w[1]}, {w[2]}]"
            else:
                text = rate_words([v])[0]
            cells += f"<td>{text} <span class='muted'>({int(e):,}/{int(n):,})</span></td>"
        rows.append(f"<tr><td>{esc(g)}</td>{cells}</tr>")
    return (f"<p><b>FMR by probe group (rows) and enrolled group (columns)</b>: {esc(_cross_caption(a))}"
            f"</p><table><tr><th>probe \\ enrolled</th>{head}</tr>{limit_rows(rows, len(groups) + 1, keep=12)}</table>")

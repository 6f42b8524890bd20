"""The comparison report: one self-contained ``report.html`` from ``comparison.json`` (reads, never computes)."""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullFormatter

from auditcore.report import (
    page,
    provenance_essentials,
    provenance_section,
    warnings_banner,
)
from faceaudit.report import plots
from faceaudit.report.html import (
    LABELS,
    UNITS,
    esc,
    fmt_threshold,
    fmt_value,
    human_key,
    score_line,
)

PALETTE = ["#2c3e80", "#c0392b", "#1e8449", "#8e44ad", "#d35400", "#7f8c8d"]
EXTRA_CSS = (".sig{color:#1e8449;font-weight:600} .ns{color:#777} .inc{color:#b9770e;font-weight:600} "
             ".nm{color:#8e44ad;font-weight:600} ul.find li{margin:6px 0} td small{display:inline-block;max-width:40em} "
             "td.nmc{text-align:left}")


def _pct(x, digits: int = 2) -> str:
    """A share in percent: two decimals from 1% up, else three significant digits (an FMR of
    0.00012 is 0.012%, never 0.00%)."""
    if x is None:
        return '<span class="muted">undefined</span>'
    return f"{_points(x, digits)}%"


def _points(x: float, digits: int = 2, sign: str = "") -> str:
    """``100 x`` (a share or a difference of shares, in percent or percentage points), as :func:`_pct`."""
    v = 100 * x
    if v == 0 or abs(v) >= 1:
        return f"{v:{sign}.{digits}f}"
    return f"{v:{sign}#.3g}"


def _nm(reason: str) -> str:
    """A figure the lists do not determine: said so, with the reason."""
    return f"<span class='nm'>not measurable</span><br><small class='muted'>{esc(reason)}</small>"


def _rate(r: dict) -> str:
    if r and r.get("not_measurable"):
        return _nm(r["not_measurable"])
    if not r or not r.get("trials"):
        return '<span class="muted">undefined (0 trials)</span>'
    if not r["errors"] and r.get("ci_high") is not None:  # no errors: the bound, never 0.00% [0.00%, ...]
        return f"at most {_pct(r['ci_high'])} <span class='muted'>(95% upper bound; 0/{r['trials']:,})</span>"
    return (f"{_pct(r['value'])} <span class='muted'>[{_pct(r['ci_low'])}, {_pct(r['ci_high'])}] "
            f"({r['errors']:,}/{r['trials']:,})</span>")


def _ci_points(ci) -> str:
    lo, hi = ci
    if lo is None or hi is None:
        return '<span class="muted">no interval</span>'
    return f"[{_points(lo, sign='+')}, {_points(hi, sign='+')}]"


def _verdict(v: str) -> str:
    cls = {"significant": "sig", "not significant": "ns", "inconclusive": "inc"}[v]
    return f"<span class='{cls}'>{esc(v)}</span>"


def _num(values) -> np.ndarray:
    return np.array([np.nan if v is None or isinstance(v, str) else float(v) for v in values], float)


def _det(systems: list, n_mated: int) -> str:
    """Log-log DET of every system, each with the pointwise 95% Clopper-Pearson band of FNIR from
    the mated searches they share; an FNIR of 0 is drawn at half of one in those searches."""
    fig, ax = plots.subplots(figsize=(5.0, 4.0))
    floor_y = 0.5 / max(n_mated, 1)
    for k, s in enumerate(systems):
        fp, fn = _num(s["det"]["fpir"]), _num(s["det"]["fnir_rank1"])
        ok = (fp > 0) & np.isfinite(fn)
        if not ok.any():
            ax.plot([], [], color=PALETTE[k % 6], label=f"{s['name']} (not measurable)")
            continue
        lo, hi = plots._stored_band(s["det"], "fnir_rank1_ci_low", "fnir_rank1_ci_high", ok)
        if np.isfinite(lo).any():
            ax.fill_between(fp[ok], np.maximum(lo, floor_y), np.maximum(hi, floor_y), color=PALETTE[k % 6], alpha=0.15,
                            lw=0, step="post")
        ax.plot(fp[ok], np.maximum(fn[ok], floor_y), color=PALETTE[k % 6], lw=1.8, drawstyle="steps-post",
                label=s["name"])
        for op in s["operating_points"]:
            f, m = op["fpir"].get("value"), op["fnir"].get("value")
            if f and m is not None:
                ax.plot(f, max(m, floor_y), "o", color=PALETTE[k % 6], ms=5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("FPIR (share of non-mated searches returning someone)")
    ax.set_ylabel("FNIR at rank 1 (share of mated searches missed)")
    ax.set_title("Identification DET (dots: operating points;\nshaded: 95% intervals of FNIR)", fontsize=10)
    _fpir_ticks(ax)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=9, loc="lower left")
    return plots.to_data_uri(fig)


def _cmc(systems: list) -> str:
    fig, ax = plots.subplots(figsize=(5.0, 4.0))
    lows = []
    for k, s in enumerate(systems):
        rate = _num(s["cmc"]["identification_rate"])
        shown = np.isfinite(rate)
        lows.append(np.nanmin(rate) if shown.any() else 1.0)
        label = s["name"] if shown.all() else (f"{s['name']} (not measurable)" if not shown.any() else
                                               f"{s['name']} (to rank {int(np.flatnonzero(shown).max()) + 1})")
        ax.plot(s["cmc"]["rank"], rate, "o-", ms=3, color=PALETTE[k % 6], label=label)
    if all(low == 1.0 for low in lows) and not any(np.isfinite(_num(s["cmc"]["identification_rate"])).any()
                                                   for s in systems):
        ax.text(0.5, 0.5, "not measurable from the lists\n(no threshold: see the table)", ha="center", va="center",
                transform=ax.transAxes, color="#8e44ad")
    ax.set_ylim(max(0, min(lows) - 0.05) if min(lows) < 1.0 else 0.0, 1.0)
    top = max((max(s["cmc"]["rank"]) for s in systems if s["cmc"]["rank"]), default=1)
    ax.set_xlim(0.5, top + 0.5)
    ax.set_xlabel("rank")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("identification rate (mate within rank, no threshold)")
    ax.set_title("CMC, overlaid")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=9)
    return plots.to_data_uri(fig)


def _diff_curve(pair: dict) -> str:
    """The FNIR difference at matched FPIR (called only when some point is measurable)."""
    pts = [p for p in pair["fnir_difference_curve"] if p.get("difference") is not None]
    fig, ax = plots.subplots(figsize=(5.0, 4.0))
    if pts:
        x = np.array([p["fpir"] for p in pts])
        d = 100 * _num([p["difference"] for p in pts])
        lo = 100 * _num([p["ci"][0] for p in pts])
        hi = 100 * _num([p["ci"][1] for p in pts])
        ax.fill_between(x, lo, hi, color="#2c3e80", alpha=0.2, label="95% subject-bootstrap interval")
        ax.plot(x, d, "o-", color="#2c3e80", ms=4, label=f"FNIR {pair['a']} - FNIR {pair['b']}")
        ax.set_xscale("log")
        _fpir_ticks(ax)
        ax.legend(fontsize=9)
    ax.axhline(0, color="#333", lw=0.8)
    ax.set_xlabel("FPIR (each system at its own threshold)")
    ax.set_ylabel("difference in FNIR at rank 1 (points)")
    ax.set_title(f"{pair['a']} - {pair['b']}: above 0 = {pair['a']} misses more", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    return plots.to_data_uri(fig)


def _fpir_ticks(ax) -> None:
    """FPIR ticks at 1, 2, 5 x 10^k within the shown range, as percentages (readable when a black-box
    system's curve spans less than a decade), minor labels off."""
    lo, hi = ax.get_xlim()
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo <= 0:
        return
    mults = (1, 2, 5) if np.log10(hi / lo) < 1.5 else (1,)
    ticks = [m * 10.0 ** e for e in range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)
             for m in mults if lo <= m * 10.0 ** e <= hi]
    if len(ticks) >= 2:
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{100 * x:g}%"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _figure(uri: str, caption: str) -> str:
    return f'<figure><img src="{uri}" alt="{esc(caption)}"><figcaption>{esc(caption)}</figcaption></figure>'


def _operating_table(systems: list) -> str:
    rows = ""
    for k in range(len(systems[0]["operating_points"])):
        for s in systems:
            op = s["operating_points"][k]
            src = "" if op["threshold_source"] == "audit" else " <span class='muted'>(recomputed)</span>"
            if op["threshold"] is None and op.get("not_measurable"):
                rows += (f"<tr><td>{op['target_fpir']:g}</td><td>{esc(s['name'])}</td>"
                         f"<td colspan='3' class='nmc'>{_nm(op['not_measurable'])}</td></tr>")
                continue
            rows += (f"<tr><td>{op['target_fpir']:g}</td><td>{esc(s['name'])}</td><td>{_system_threshold(op['threshold'], s)}{src}</td>"
                     f"<td>{_rate(op['fpir'])}</td><td>{_rate(op['fnir'])}</td></tr>")
    for s in systems:
        r = s["rank1_identification"]
        if r.get("not_measurable"):
            rows += (f"<tr><td>no threshold</td><td>{esc(s['name'])}</td><td>&ndash;</td><td>&ndash;</td>"
                     f"<td class='nmc'>mate not at rank 1: {_nm(r['not_measurable'])}</td></tr>")
            continue
        rows += (f"<tr><td>no threshold</td><td>{esc(s['name'])}</td><td>&ndash;</td><td>&ndash;</td>"
                 f"<td>{_rate(r)} <span class='muted'>(mate not at rank 1)</span></td></tr>")
    return ("<table><tr><th>FPIR target</th><th>system</th><th>threshold</th><th>FPIR [95% CI]</th>"
            f"<th>FNIR rank 1 [95% CI]</th></tr>{rows}</table>")


def _system_threshold(t, system: dict) -> str:
    """A threshold in its own system's unit (a distance for a neg_euclidean system), whatever the others use."""
    if system.get("score") == "neg_euclidean" and isinstance(t, (int, float)) and abs(t) != float("inf"):
        return f"distance {-t:.4g}"
    return fmt_threshold(t)


def _cmp_row(label: str, c: dict) -> str:
    if c.get("not_measurable"):
        return f"<tr><td>{label}</td><td colspan='7' class='nmc'>{_nm(c['not_measurable'])}</td></tr>"
    d = c["difference"]
    re_ci = (f"<br><small class='muted'>thresholds re-estimated: {_ci_points(c['ci_threshold_reestimated'])}</small>"
             if "ci_threshold_reestimated" in c else "")
    if c.get("ci_threshold_reestimated_not_measurable"):
        re_ci = ("<br><small class='muted'>thresholds re-estimated: <span class='nm'>not measurable</span> "
                 f"({esc(c['ci_threshold_reestimated_not_measurable'])})</small>")
    return (f"<tr><td>{label}</td><td>{_one_side(c['a'])}</td><td>{_one_side(c['b'])}</td>"
            f"<td>{'' if d is None else _points(d, sign='+')} {_ci_points(c['ci'])}{re_ci}</td>"
            f"<td>{c['only_a_wrong']:,}</td><td>{c['only_b_wrong']:,}</td><td>{c['mcnemar_p']:.2g}</td>"
            f"<td>{_verdict(c['verdict'])}</td></tr>")


def _one_side(r: dict) -> str:
    """One system's rate in a paired row: a share, or with no errors its 95% upper bound from
    people where the comparison gives one (never a bare 0.00%)."""
    if not r["trials"]:
        return _pct(None)
    hi = (r.get("ci") or [None, None])[1]
    if not r["errors"] and hi is not None:
        return f"at most {_pct(hi)} <span class='muted'>(95% upper bound; 0/{r['trials']:,})</span>"
    return _pct(r["errors"] / r["trials"])


def _pair_section(pair: dict) -> str:
    a, b = esc(pair["a"]), esc(pair["b"])
    rows = ""
    for op in pair["operating_points"]:
        rows += _cmp_row(f"FNIR rank 1 at FPIR {op['target_fpir']:g}", op["fnir_rank1"])
        rows += _cmp_row(f"FPIR at FPIR target {op['target_fpir']:g}", op["fpir"])
    rows += _cmp_row("mate not at rank 1 (no threshold)", pair["rank1_misses_no_threshold"])
    dep = pair.get("at_system_thresholds")
    if dep:
        own = (f" <small class='muted'>({a}: {fmt_threshold(dep['threshold_a'])}, {b}: "
               f"{fmt_threshold(dep['threshold_b'])}; not at matched FPIR)</small>")
        rows += _cmp_row("FNIR rank 1 at each system's own threshold (as deployed)" + own, dep["fnir_rank1"])
        rows += _cmp_row("FPIR at each system's own threshold (as deployed)" + own, dep["fpir"])
    cmc = "".join(f"<tr><td>{c['rank']}</td><td>{_points(c['miss_difference'], sign='+')} {_ci_points(c['ci'])}</td></tr>"
                  if c["miss_difference"] is not None else
                  f"<tr><td>{c['rank']}</td><td class='nmc'>{_nm(c['not_measurable']) if c.get('not_measurable') else '&ndash;'}</td></tr>"
                  for c in pair["cmc_miss_difference"])
    if any(p.get("difference") is not None for p in pair["fnir_difference_curve"]):
        curve = _figure(_diff_curve(pair), "Difference in FNIR (rank 1) at matched FPIR, with 95% subject-bootstrap "
                        "intervals." + _curve_gaps(pair))
    else:
        gone = pair["fnir_difference_curve"]
        why = gone[0].get("not_measurable", "undefined") if gone else "no FPIR value with an allowed false positive"
        curve = (f"<div><p>Difference in FNIR (rank 1) at matched FPIR: <span class='nm'>not measurable</span> at any "
                 f"FPIR <small class='muted'>({esc(why)})</small>.</p></div>")
    people = ", from people" if _ci_about(pair).startswith("people") else ""
    return (f"<h2>{a} against {b}</h2>"
            "<p>Difference = rate of A minus rate of B, in percentage points (positive: A errs more), with its 95% "
            f"interval at each system's fixed threshold ({_ci_about(pair)}); McNemar's exact test uses "
            "the searches that only one system got wrong at those thresholds. For FNIR at an FPIR target a second "
            "interval re-estimates both thresholds in every resample of a bootstrap over probe people: it answers whether one system is better at that "
            "FPIR itself, and is wide when few non-mated searches decide a low FPIR.</p>"
            f"<table><tr><th>rate</th><th>A = {a}</th><th>B = {b}</th><th>A - B, points [95% CI{people}]</th>"
            f"<th>wrong only for A</th><th>wrong only for B</th><th>McNemar p</th><th>verdict</th></tr>{rows}</table>"
            f"<div class='grid'>{curve}"
            f"<div><p>Misses at rank r with no threshold, A - B (points) [95% CI]:</p><table><tr><th>rank</th>"
            f"<th>A - B</th></tr>{cmc}</table></div></div>" + _demographics(pair))


def _curve_gaps(pair: dict) -> str:
    """Say which FPIR values of the difference curve the lists do not determine (left out of the plot)."""
    gone = [p for p in pair["fnir_difference_curve"] if p.get("difference") is None]
    no_ci = [p for p in pair["fnir_difference_curve"] if p.get("ci_not_measurable")]
    text = ""
    if gone:
        xs = ", ".join(f"{p['fpir']:g}" for p in gone)
        text += f" Not measurable, left out: FPIR {xs} ({gone[0].get('not_measurable', 'undefined')})."
    if no_ci:
        xs = ", ".join(f"{p['fpir']:g}" for p in no_ci)
        text += f" No interval at FPIR {xs} ({no_ci[0]['ci_not_measurable']})."
    return text


def _demo_threshold(t, rule: str | None) -> str:
    if t is None:
        return "the system's own threshold (a false positive: a list that is not empty; a miss: the mate not listed first)"
    return fmt_threshold(t) + (f" <span class='muted'>({esc(rule)})</span>" if rule else "")


def _observed(systems: list) -> str:
    """What each black-box system's lists show: the domain its figures come from."""
    rows = ""
    for s in systems:
        o = s.get("observed")
        if not o:
            continue
        dom = o.get("fpir_measurable_from") or {}
        frm = dom.get("from")
        if frm is None:
            fpir_from = "nowhere (rank-only lists)"
        elif frm in ("-inf", float("-inf")):
            fpir_from = "every threshold"
        else:
            fpir_from = ("&ge; " if dom.get("inclusive") else "&gt; ") + fmt_threshold(frm)
        thr = ", ".join(f"{t:g}" for t in o.get("threshold") or []) or (
            "applied, value unknown" if o.get("threshold_unknown") else "none")
        rows += (f"<tr><td>{esc(s['name'])}</td><td>{', '.join(str(x) for x in o.get('list_length') or [])}</td>"
                 f"<td>{thr}</td><td>{'yes' if o.get('rank_only') else 'no'}</td><td>{fpir_from}</td>"
                 f"<td>{o.get('cmc_measurable_to_rank')}</td></tr>")
    if not rows:
        return ""
    return ("<h2>What the black-box systems' lists show</h2><p>A black-box system is known only through its candidate "
            "lists: L candidates at most, cut at its own threshold t. A paired figure is computed only where both "
            "systems' lists determine the outcome of every search; elsewhere it is shown as <span class='nm'>not "
            "measurable</span>, with the reason, and never estimated.</p>"
            "<table><tr><th>system</th><th>list length L</th><th>its threshold t</th><th>rank only</th>"
            f"<th>FPIR measurable at thresholds</th><th>CMC measurable to rank</th></tr>{rows}</table>")


def _side(r: dict | None) -> str:
    """A per-group FMR or FNMR as its audit reported it, every number in one kind (``1 in N`` when
    the largest is below 1%, else percentages; as the audits' demographic sentences write them), a
    group with no errors as its upper bound, never ``0.00% [0.00%, ...]``."""
    from faceaudit.report.demographics_section import rate_words
    if r and r.get("not_measurable"):
        return _nm(r["not_measurable"])
    if not r or r.get("value") is None:
        return '<span class="muted">&ndash;</span>'
    lo, hi = r["ci"]
    counts = f" ({r['errors']:,}/{r['trials']:,})"
    if not r["errors"] and hi is not None:
        return f"at most {rate_words([hi])[0]}<span class='muted'> (95% upper bound){counts}</span>"
    if lo is None or hi is None:
        return f"{rate_words([r['value']])[0]}<span class='muted'>{counts}</span>"
    v, a, b = rate_words([r["value"], lo, hi])
    return f"{v}<span class='muted'> [{a}, {b}]{counts}</span>"


def _ci_about(pair: dict) -> str:
    """How the paired intervals were made, as comparison.json says (``ci_method``); older
    comparisons: a bootstrap over probe subjects."""
    for op in pair.get("operating_points", []):
        method = (op.get("fnir_rank1") or {}).get("ci_method")
        if method:
            return esc(method.removesuffix(", at these fixed thresholds"))
    return "a bootstrap over probe subjects"


def _from_people(d: dict) -> str:
    """``", from people"`` when the per-group paired intervals are from people (``ci_method``)."""
    for e in d["groups"].values():
        for c in e["paired"].values():
            if str(c.get("ci_method", "")).startswith("people"):
                return ", from people"
    return ""


def _as_audited_about(d: dict) -> str:
    """How each audit made its per-group FMR and FNMR intervals (``interval_method`` and
    ``design_effect_source`` where the comparison carries them; older comparisons: not stated)."""
    parts = []
    for m in ("fmr", "fnmr"):
        rs = [r for e in d["groups"].values() for r in (e["as_audited"].get(m) or {}).values() if r and r.get("value") is not None]
        if not rs or any(r.get("interval_method") != "korn-graubard" for r in rs):
            continue
        two_way = all(str(r.get("design_effect_source", "")).startswith("two-way") for r in rs)
        parts.append(f"{m.upper()}: Korn-Graubard from {'probe people and gallery people' if two_way else 'the people searched'}")
    if not parts:
        return "as that audit's report states them"
    return "; ".join(parts) + "; they cover new people of the same kind"


def _significance_rule(result: dict) -> str:
    """When a difference is called significant, as comparison.json's conventions say."""
    verdict = (result.get("conventions") or {}).get("verdict", "")
    if "interval from people" in verdict:
        return "only when its 95% interval from people excludes 0 and McNemar's exact p &lt; 0.05"
    return "only when its 95% subject-bootstrap interval excludes 0 and McNemar's exact p &lt; 0.05"


def _demographics(pair: dict) -> str:
    html_parts = []
    for d in pair.get("demographics", []):
        rows = ""
        for g, e in d["groups"].items():
            for m in ("fnir", "fpir"):
                if m in e["paired"]:
                    rows += _cmp_row(f"{esc(g)}: {m.upper()}", e["paired"][m])
        side = ""
        for g, e in d["groups"].items():
            for m, v in e["as_audited"].items():
                cells = "".join(f"<td class='nmc'>{_side(r)}</td>" if r and r.get("not_measurable") else f"<td>{_side(r)}</td>"
                                for r in (v["a"], v["b"]))
                side += f"<tr><td>{esc(g)}</td><td>{m.upper()}</td>{cells}</tr>"
        cav = "".join(f"<p class='warn'><b>{esc(c)}</b>: {esc(t)}</p>" for c, t in d.get("caveats", {}).items())
        html_parts.append(
            f"<h3>Per group: {esc(d['spec'])}</h3>{cav}"
            f"<p>FNIR and FPIR per group at each system's demographics threshold ({esc(pair['a'])}: "
            f"{_demo_threshold(d['threshold_a'], d.get('threshold_rule_a'))}; {esc(pair['b'])}: "
            f"{_demo_threshold(d['threshold_b'], d.get('threshold_rule_b'))}), paired as above.</p>"
            f"<table><tr><th>group: rate</th><th>A</th><th>B</th><th>A - B, points [95% CI{_from_people(d)}]</th><th>wrong only for A</th>"
            f"<th>wrong only for B</th><th>McNemar p</th><th>verdict</th></tr>{rows}</table>"
            + (f"<p>FMR and FNMR per group as each audit reported them, each with its own audit's 95% interval "
               f"({_as_audited_about(d)}); not paired: the two systems' per-group rates are not differenced here.</p><table><tr><th>group</th><th>rate</th><th>A = {esc(pair['a'])}</th>"
               f"<th>B = {esc(pair['b'])}</th></tr>{side}</table>" if side else ""))
    return "".join(html_parts)


def render(result: dict) -> str:
    systems = result["systems"]
    # thresholds in the systems' own unit: a distance when every system scored by neg_euclidean
    UNITS["score"] = "neg_euclidean" if all(s.get("score") == "neg_euclidean" for s in systems) else "cosine"
    names = ", ".join(esc(s["name"]) for s in systems)
    findings = "".join(f"<li>{esc(line)}</li>" for line in result["summary"])
    fte = [s for s in systems if s.get("failed_searches_not_paired")]
    warn = "".join(f"<p class='warn'><b>Failure to enrol:</b> {esc(s['name'])}'s audit counted "
                   f"{s['failed_searches_not_paired']:,} searches lost to failure to enrol; they are not in its "
                   "searches.parquet, so they are not in the paired figures here.</p>" for s in fte)
    srch = result["searches"]
    setup_rows = "".join(
        f"<tr><td>{esc(s['name'])}</td><td>{esc(s.get('kind', 'templates'))}</td><td>{esc(s['path'])}</td><td>{esc(s['score'])}</td>"
        f"<td>{esc((s.get('model') or {}).get('name', '') if isinstance(s.get('model'), dict) else s.get('model') or '')}</td></tr>"
        for s in systems)
    proto = "".join(f"<tr><td>{esc(human_key(k, LABELS))}</td><td class='l'>{fmt_value(v, LABELS)}</td></tr>"
                    for k, v in result["protocol"].items())
    conv = "".join(f"<dt>{esc(human_key(k, LABELS))}</dt><dd>{fmt_value(v, LABELS)}</dd>"
                   for k, v in result["conventions"].items())
    b = result["bootstrap"]
    figs = (_figure(_det(systems, srch["mated"]), "Identification DET of every system (log-log): FNIR at rank 1 "
                    "against FPIR, shaded: 95% Clopper-Pearson interval of FNIR.")
            + _figure(_cmc(systems), "CMC of every system (no threshold)."))
    body = (
        f"<div class='summary'><p>The same {srch['mated']:,} mated and {srch['nonmated']:,} non-mated searches "
        f"({srch['probe_subjects']:,} people) were run by every system. Findings (a difference is called significant "
        f"{_significance_rule(result)}; CI = 95% confidence interval of the difference, in percentage points):</p>"
        f"<ul class='find'>{findings}</ul></div>"
        + provenance_essentials(result.get("provenance"), None, tool="faceaudit compare")
        + f"{warn}"
        f"{_observed(systems)}<h2>Each system at each operating point</h2>{_operating_table(systems)}"
        f"<div class='grid'>{figs}</div>"
        + "".join(_pair_section(p) for p in result["pairs"])
        + f"<h2>What was compared</h2><table><tr><th>system</th><th>audit of</th><th>results folder</th><th>score</th><th>model</th></tr>"
        f"{setup_rows}</table><table>{proto}</table>"
        f"<p>Bootstrap: {b['n_boot']:,} resamples, seed {b['seed']}; {esc(b['unit'])}.</p>"
        f"<h2>Conventions</h2><dl class='conv'>{conv}</dl>"
        + (provenance_section(result["provenance"], None, labels=LABELS) if result.get("provenance") else ""))
    sub = (f"{_score_line(systems)}<br>{names} &middot; faceaudit {esc(result['faceaudit_version'])} "
           f"&middot; {esc(result['created'])}")
    return page("faceaudit comparison", sub, [warnings_banner(result.get("warnings")), body], extra_css=EXTRA_CSS)


def _score_line(systems: list) -> str:
    scores = sorted({str(s.get("score")) for s in systems})
    if len(scores) == 1:
        return f"<span class='first'>{score_line(scores[0])}</span>"
    return f"<span class='first'>Scores: {esc(', '.join(scores))} (one per system; thresholds in each system's own)</span>"

"""Two models' probe-quality studies side by side: reads the comparison dict, computes nothing.

One plot per degradation and headline (FNIR at rank 1, FNIR at rank 20, FPIR): each model's rate
against the severity at the threshold it would have been deployed with (set on its own clean
probes), 95% Clopper-Pearson bands, log axes where the scale is multiplicative, each model's
clean level dashed; a rate with no error drawn as its upper bound (a downward triangle). Then per
level the two models side by side and their paired difference, and one sentence per level.
"""

from __future__ import annotations

import numpy as np

from auditcore.report import esc, figure, page, subplots, to_data_uri
from faceaudit.report.quality_html import AXIS, EXTRA_CSS, LOG_X, _rate, _thr, degradations_table

COLOURS = ("#2166ac", "#b2182b")
HEADLINES = (("fnir_rank1", "FNIR at rank 1"), ("fnir_rank20", "FNIR at rank 20"), ("fpir", "FPIR"))


def _target(result: dict) -> float:
    targets = result["fpir_targets"]
    return 0.01 if 0.01 in targets else targets[len(targets) // 2]


def _side(level: dict, k: int, target: float) -> dict:
    return next(o for o in level["models"][k]["operating_points"] if o["target_fpir"] == target)


def _plot(result: dict, kind: str, key: str, title: str, target: float) -> str | None:
    entries = sorted([e for e in result["levels"] if e["degradation"] == kind], key=lambda e: e["severity"])
    clean = result["levels"][0]
    fig, ax = subplots(figsize=(4.6, 3.4))
    ys = []
    drawn = False
    for k, m in enumerate(result["models"]):
        x, v, lo, hi, zero = [], [], [], [], []
        for e in entries:
            r = _side(e, k, target).get(key)
            if not r or not r.get("trials"):
                continue
            x.append(float(e["severity"]))
            v.append(np.nan if r["errors"] == 0 else r["value"])
            lo.append(max(r["ci_low"], 1e-5))
            hi.append(r["ci_high"])
            zero.append(r["errors"] == 0)
        if not x:
            continue
        drawn = True
        x, v, lo, hi, zero = (np.array(t, float) for t in (x, v, lo, hi, zero))
        zero = zero.astype(bool)
        c = COLOURS[k % len(COLOURS)]
        ax.fill_between(x, lo, hi, color=c, alpha=0.15, linewidth=0)
        ax.vlines(x, lo, hi, color=c, linewidth=1.2, alpha=0.6)
        ax.plot(x, v, "o-", color=c, label=m["name"])
        if zero.any():
            ax.plot(x[zero], hi[zero], "v", color=c, markersize=8)
        r0 = _side(clean, k, target).get(key)
        if r0 and r0.get("trials"):
            y = r0["value"] if r0["errors"] else r0["ci_high"]
            ax.axhline(y, color=c, linestyle="--", linewidth=1)
            ys.append(y)
        ys += [h for h in hi if h > 0] + [w for w in v[~np.isnan(v)] if w > 0]
    if not drawn:
        return None
    ax.set_yscale("log")
    if ys:
        ax.set_ylim(max(1e-4, min(ys) / 3), min(1.0, max(ys) * 1.6))
    xs = [float(e["severity"]) for e in entries]
    if kind in LOG_X:
        ax.set_xscale("log")
    ax.set_xticks(xs)
    ax.set_xticklabels([f"{x:g}" for x in xs])
    if kind in LOG_X:
        ax.minorticks_off()
    if kind in ("size", "jpeg"):
        ax.invert_xaxis()  # worse to the right
    ax.set_xlabel(AXIS.get(kind, kind) + ("  (worse \u2192)" if kind in ("size", "jpeg") else ""))
    ax.set_ylabel(f"{title} (log)")
    ax.legend(fontsize=7, loc="best")
    ax.grid(True, which="major", alpha=0.3)
    return to_data_uri(fig)


def p_words(p) -> str:
    if p is None or not np.isfinite(p):
        return "p undefined"
    return "p &lt; 0.001" if p < 0.001 else f"p = {p:.2g}"


def _diff(c: dict | None) -> str:
    if not c:
        return "&ndash;"
    if c.get("difference") is None:
        return "undefined (no searches)"
    lo, hi = c["ci"]
    ci = "" if lo is None else f" [{100 * lo:+.2f}, {100 * hi:+.2f}]"
    return (f"{100 * c['difference']:+.2f} pts{ci}; {c['only_a_wrong']:,} / {c['only_b_wrong']:,} discordant; "
            f"McNemar {p_words(c['mcnemar_p'])}; {esc(c['verdict'])}")


def _level_table(result: dict, target: float) -> str:
    a, b = (esc(m["name"]) for m in result["models"])
    rows = []
    for e in result["levels"]:
        point = next(p for p in e["paired"] if p["target_fpir"] == target)
        n_rows = 1 + len(HEADLINES)
        rows.append(f"<tr><td rowspan='{n_rows}'>{esc(e['label'])}</td><td>probe failure to enrol</td>"
                    f"<td class='num'>{_rate(e['models'][0]['failure_to_enrol'])}</td>"
                    f"<td class='num'>{_rate(e['models'][1]['failure_to_enrol'])}</td><td>&ndash;</td></tr>")
        for key, name in HEADLINES:
            ra, rb = _side(e, 0, target).get(key), _side(e, 1, target).get(key)
            cell = esc(point["not_measurable"]) if point.get("not_measurable") else _diff(point.get(key))
            rows.append(f"<tr><td>{name}</td><td class='num'>{_rate(ra)}</td><td class='num'>{_rate(rb)}</td>"
                        f"<td class='num'>{cell}</td></tr>")
    return (f"<table class='q'><tr><th>level</th><th>rate</th><th>{a}</th><th>{b}</th>"
            f"<th>paired difference {a} &minus; {b} [95% interval from people], same searches</th></tr>"
            + "".join(rows) + "</table>")


def render(result: dict) -> str:
    target = _target(result)
    a, b = result["models"]
    kinds = []
    for e in result["levels"][1:]:
        if e["degradation"] not in kinds:
            kinds.append(e["degradation"])
    figs = []
    for kind in kinds:
        for key, name in HEADLINES:
            uri = _plot(result, kind, key, name, target)
            if uri:
                figs.append(figure(uri, f"{name} against {AXIS.get(kind, kind)}, each model at the threshold set on "
                                        f"its own clean probes for FPIR {target:g}; bands: 95% Clopper-Pearson over "
                                        "each study's searches; dashed: each model's clean photos; triangles: upper "
                                        "bound where no error was seen."))
    sentences = "".join(f"<p class='lead'>{esc(s)}</p>" for s in result["summary"])
    thr = "; ".join(f"{esc(m['name'])}: " + ", ".join(f"FPIR {d['target_fpir']:g}: T = {esc(_thr(d['threshold']))}"
                                                      for d in m["deployed_thresholds"]) for m in result["models"])
    s = result["searches"]
    others = []
    for key, name in (("fnir_rank1", "FNIR at rank 1"), ("fpir", "FPIR")):
        for t in result["fpir_targets"]:
            if t == target:
                continue
            cells = []
            for e in result["levels"]:
                p = next(p for p in e["paired"] if p["target_fpir"] == t)
                cells.append(f"<tr><td>{esc(e['label'])}</td><td>{name}</td>"
                             f"<td class='num'>{_rate(_side(e, 0, t).get(key))}</td>"
                             f"<td class='num'>{_rate(_side(e, 1, t).get(key))}</td>"
                             f"<td class='num'>{esc(p['not_measurable']) if p.get('not_measurable') else _diff(p.get(key))}"
                             "</td></tr>")
            others.append(f"<h3>FPIR target {t:g}: {name}</h3><table class='q'><tr><th>level</th><th>rate</th>"
                          f"<th>{esc(a['name'])}</th><th>{esc(b['name'])}</th><th>paired difference</th></tr>"
                          + "".join(cells) + "</table>")
    body = (
        f"<div class='summary'>{sentences}<p>The same study (same images, protocol, degradations) run with two "
        f"models. Each model is at the threshold it would have been deployed with, set on its own clean probes "
        f"({thr}); the scores are not on one scale. Rates: each study's figure with its 95% Clopper-Pearson interval "
        "over its searches. Paired difference: on the searches both studies made "
        f"({s['paired_mated']:,} mated and {s['paired_nonmated']:,} non-mated, {s['probe_subjects']:,} probe people), "
        "a probe that failed to enrol counted as its study counts it (a miss, no candidate); its 95% interval comes "
        "from people (each model's Korn-Graubard interval combined by MOVER) and covers new people of the same "
        "kind photographed the same way; McNemar's exact test treats searches as independent.</p></div>"
        f"<h2>Error against probe quality, both models</h2><div class='grid'>{''.join(figs)}</div>"
        f"<h2>Every level at FPIR {target:g}</h2>{_level_table(result, target)}"
        f"<h2>At the other FPIR targets</h2>{''.join(others)}"
        f"<h2>What was compared</h2><p>{esc(a['name'])}: {esc(a['path'])} (model "
        f"{esc((a.get('model') or {}).get('name', ''))}, score {esc(a.get('score'))}); {esc(b['name'])}: "
        f"{esc(b['path'])} (model {esc((b.get('model') or {}).get('name', ''))}, score {esc(b.get('score'))}). "
        f"Searches in one study only: {s['only_in_a']:,} ({esc(a['name'])}), {s['only_in_b']:,} ({esc(b['name'])}). "
        f"Bootstrap: {result['bootstrap']['n_boot']:,} resamples of probe people, seed {result['bootstrap']['seed']}."
        f"</p>{degradations_table(result.get('degradations'))}")
    sub = (f"{esc(a['name'])} vs {esc(b['name'])} &middot; faceaudit {esc(result['faceaudit_version'])} &middot; "
           f"{esc(result['created'])}")
    return page("faceaudit probe-quality study: two models", sub, [body], extra_css=EXTRA_CSS)

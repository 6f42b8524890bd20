"""The probe-quality study's report (``faceaudit quality``): reads its results dict, computes nothing.

One plot per degradation: FPIR and FNIR at rank 1 against the severity (face width in pixels,
JPEG quality, blur...), log axes where the scale is multiplicative, 95% Clopper-Pearson bands, at
the threshold deployed on the clean probes; the clean level as a dashed reference. A rate with
no error is drawn as its upper bound (a downward triangle), never as 0.
"""

from __future__ import annotations

import numpy as np

from auditcore.report import esc, figure, page, subplots, to_data_uri

LOG_X = {"size", "jpeg", "blur", "motion", "noise"}
AXIS = {"size": "face width (pixels)", "jpeg": "JPEG quality", "blur": "Gaussian blur sigma (pixels)",
        "motion": "motion blur length (pixels)", "noise": "sensor noise sigma (grey levels)",
        "dark": "under-exposure (stops)", "grey": "grey-scale", "eyes": "eye band height (face heights)",
        "mask": "lower face covered (fraction)"}
EXTRA_CSS = (".q td{text-align:left}.q td.num{text-align:right;font-variant-numeric:tabular-nums}"
             ".lead{font-size:1.15em}")


def _pct(x, digits: int = 2) -> str:
    if x is None:
        return "&ndash;"
    x = float(x)
    return f"{100 * x:.{digits}g}%" if x < 0.1 else f"{100 * x:.1f}%"


def _rate(r: dict | None) -> str:
    """A rate with its interval; no error: the upper bound only (the data cannot resolve lower)."""
    if not r or not r.get("trials"):
        return "undefined (no searches)"
    if r["errors"] == 0:
        return f"&le; {_pct(r['ci_high'])} (0 of {r['trials']:,})"
    return f"{_pct(r['value'])} [{_pct(r['ci_low'])}, {_pct(r['ci_high'])}] ({r['errors']:,} of {r['trials']:,})"


def _target(results: dict) -> float:
    targets = [d["target_fpir"] for d in results["deployed_thresholds"]]
    return 0.01 if 0.01 in targets else targets[len(targets) // 2]


def _op(entry: dict, target: float, key: str = "identification") -> dict | None:
    block = entry.get(key) or {}
    return next((o for o in block.get("operating_points", []) if o.get("target_fpir") == target), None)


def _series(entries: list[dict], target: float, measure: str) -> tuple:
    x, v, lo, hi, zero = [], [], [], [], []
    for e in entries:
        op = _op(e, target)
        r = None if op is None else (op.get("fpir") if measure == "fpir" else (op.get("fnir") or {}).get("1"))
        if not r or not r.get("trials"):
            continue
        x.append(float(e["severity"]))
        v.append(np.nan if r["errors"] == 0 else r["value"])
        lo.append(r["ci_low"])
        hi.append(r["ci_high"])
        zero.append(r["errors"] == 0)
    return np.array(x), np.array(v, float), np.array(lo, float), np.array(hi, float), np.array(zero, bool)


def _plot(results: dict, kind: str, target: float) -> str:
    entries = sorted([e for e in results["levels"] if e["degradation"] == kind], key=lambda e: e["severity"])
    clean = results["levels"][0]
    fig, ax = subplots(figsize=(5.2, 3.6))
    colours = {"fpir": "#b2182b", "fnir": "#2166ac"}
    names = {"fpir": "FPIR (a non-mated search returns a candidate)", "fnir": "FNIR rank 1 (the mate is missed)"}
    floor = []
    for measure in ("fpir", "fnir"):
        x, v, lo, hi, zero = _series(entries, target, measure)
        if x.size == 0:
            continue
        c = colours[measure]
        ax.fill_between(x, np.maximum(lo, 1e-5), hi, color=c, alpha=0.18, linewidth=0)
        ax.plot(x, v, "o-", color=c, label=names[measure])
        ax.vlines(x, np.maximum(lo, 1e-5), hi, color=c, linewidth=1.2, alpha=0.6)  # the interval, also for one level
        if zero.any():
            ax.plot(x[zero], hi[zero], "v", color=c, markersize=8)
        op = _op(clean, target)
        r = None if op is None else (op.get("fpir") if measure == "fpir" else (op.get("fnir") or {}).get("1"))
        if r and r.get("trials"):
            y = r["value"] if r["errors"] else r["ci_high"]
            ax.axhline(y, color=c, linestyle="--", linewidth=1)
            floor.append(y)
        floor += [h for h in hi if h > 0] + [w for w in v[~np.isnan(v)] if w > 0]
    ax.set_yscale("log")
    if floor:
        ax.set_ylim(max(1e-4, min(floor) / 3), min(1.0, max(floor) * 1.6))
    if kind in LOG_X and entries:
        ax.set_xscale("log")
    if entries:
        xs = [float(e["severity"]) for e in entries]
        ax.set_xticks(xs)
        ax.set_xticklabels([f"{x:g}" for x in xs])
        if kind in LOG_X:
            ax.minorticks_off()
        if kind in ("size", "jpeg"):
            ax.invert_xaxis()  # worse to the right
    ax.set_xlabel(AXIS.get(kind, kind) + ("  (worse \u2192)" if kind in ("size", "jpeg") else ""))
    ax.set_ylabel("error rate (log)")
    ax.legend(fontsize=7, loc="best")
    ax.grid(True, which="major", alpha=0.3)
    return to_data_uri(fig)


def _thr(t) -> str:
    if t is None:
        return "none"
    if isinstance(t, str):
        return t
    if abs(float(t)) > 1e30:  # the lowest float32: every search may pass at this target
        return "-inf (no threshold needed)" if t < 0 else "+inf"
    return f"{float(t):.4g}"


def _explained(x: dict | None) -> str:
    if not x:
        return "not fitted"
    if not x.get("done"):
        return f"not fitted ({esc(x.get('reason', ''))})"
    return esc(x.get("display") or "")


def _level_rows(results: dict, target: float) -> str:
    rows = []
    for e in results["levels"]:
        op, rt = _op(e, target), _op(e, target, "identification_retuned")
        fn = (op or {}).get("fnir") or {}
        rfn = ((rt or {}).get("fnir") or {}).get("1")
        thr = (rt or {}).get("threshold")
        rows.append(
            f"<tr><td>{esc(e['label'])}</td><td class='num'>{_rate(e['failure_to_enrol'].get('probes'))}</td>"
            f"<td class='num'>{_rate((op or {}).get('fpir'))}</td><td class='num'>{_rate(fn.get('1'))}</td>"
            f"<td class='num'>{_rate(fn.get('20'))}</td>"
            f"<td class='num'>{esc(_thr(thr))}</td><td class='num'>{_rate(rfn)}</td>"
            f"<td>{_explained(e.get('explain'))}</td></tr>")
    return ("<table class='q'><tr><th>level</th><th>probe failure to enrol</th><th>FPIR</th><th>FNIR rank 1</th>"
            "<th>FNIR rank 20</th><th>threshold re-set for this level</th><th>FNIR rank 1 there</th>"
            "<th>a top candidate at the deployed threshold is the person (explain, prior 0.5)</th></tr>"
            + "".join(rows) + "</table>")


def _short(r: dict) -> str:
    """A rate in a few characters; no error: its upper bound."""
    if not r or not r.get("trials"):
        return "&ndash;"
    return f"&le; {_pct(r['ci_high'])}" if r["errors"] == 0 else _pct(r["value"])


def _ci(ci, scale: float = 100.0, unit: str = " pts") -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return "&ndash;"
    return f"[{scale * ci[0]:+.1f}, {scale * ci[1]:+.1f}]{unit}"


def _ratio(r: dict) -> str:
    v, ci = r.get("value"), r.get("ci") or [None, None]

    def f(x):
        if x is None:
            return "?"
        return "&infin;" if x == float("inf") or x == "inf" else f"{float(x):.2g}"
    if v is None:
        return "undefined (no error at the reference)"
    if ci[0] is None or ci[1] is None:
        return f"{f(v)}&times; (no interval: {r.get('note', 'not estimable')})"
    return f"{f(v)}&times; [{f(ci[0])}, {f(ci[1])}]"


def _ratio_cell(m: dict) -> str:
    if m["a"]["errors"] == 0:
        return "&ndash; (no error at this level)"
    return _ratio(m["ratio"])


def _comparison_rows(results: dict, target: float) -> str:
    rows = []
    for c in results["comparisons"]:
        if c["target_fpir"] != target:
            continue
        for name, key in (("FPIR", "fpir"), ("FNIR rank 1", "fnir_rank1")):
            m = c[key]
            if not m.get("n"):
                continue
            same = m["discordant"]["a_only"] == 0 and m["discordant"]["b_only"] == 0
            diff = ("no search changed outcome" if same else
                    f"{100 * m['difference']['value']:+.1f} pts {_ci(m['difference']['ci'])}")
            rows.append(f"<tr><td>{esc(c['level'])}</td><td>{esc(c['against'])}</td><td>{name}</td>"
                        f"<td class='num'>{_short(m['a'])} vs {_short(m['b'])}</td>"
                        f"<td class='num'>{diff}</td>"
                        f"<td class='num'>{_ratio_cell(m)}</td>"
                        f"<td class='num'>{m['discordant']['a_only']} / {m['discordant']['b_only']}</td>"
                        f"<td class='num'>{m['mcnemar_p']:.2g}</td></tr>")
    return ("<table class='q'><tr><th>level</th><th>against</th><th>rate</th><th>level vs reference</th>"
            "<th>difference [95% people interval]</th><th>ratio [95% people interval]</th>"
            "<th>discordant (level only / reference only)</th><th>McNemar exact p</th></tr>" + "".join(rows) + "</table>")


def _groups(results: dict, target: float) -> str:
    groups = results.get("groups")
    if not groups:
        return ""
    parts = [("<h2>Per group</h2><p>At the threshold deployed on clean probes. Rates per group over searches "
             "(Clopper-Pearson, which treats a person's searches as independent); the gap between the highest and "
             "lowest group with a 95% interval from resampling people.</p>")]
    for col, rows in groups.items():
        body = []
        for r in rows:
            if r["target_fpir"] != target:
                continue
            for measure, name in (("fpir", "FPIR"), ("fnir_rank1", "FNIR rank 1")):
                g = r["groups"][measure]
                per = "; ".join(f"{esc(k)}: {_rate(v)}" for k, v in g["per_group"].items())
                gap = g["gap"]
                gap_s = "&ndash;" if not gap else (f"{esc(gap['highest'])} &minus; {esc(gap['lowest'])}: "
                                                   f"{100 * gap['value']:+.1f} pts {_ci(gap['ci'])}")
                body.append(f"<tr><td>{esc(r['level'])}</td><td>{name}</td><td>{per}</td><td>{gap_s}</td></tr>")
        parts.append(f"<h3>{esc(col)}</h3><table class='q'><tr><th>level</th><th>rate</th><th>per group</th>"
                     f"<th>gap</th></tr>{''.join(body)}</table>")
    return "".join(parts)


def degradations_table(degradations) -> str:
    """The exact operation and parameters of each level, as provenance records them (a study's and
    a comparison of two studies' reports)."""
    rows = "".join(f"<tr><td>{esc(d.get('degradation', ''))}</td><td>{esc(d.get('severity', ''))}</td>"
                   f"<td>{esc(d.get('operation', ''))}</td></tr>" for d in degradations or [])
    return f"<table class='q'><tr><th>degradation</th><th>severity</th><th>operation</th></tr>{rows}</table>"


def render(results: dict) -> str:
    target = _target(results)
    thr = next(d["threshold"] for d in results["deployed_thresholds"] if d["target_fpir"] == target)
    kinds = []
    for e in results["levels"][1:]:
        if e["degradation"] not in kinds:
            kinds.append(e["degradation"])
    figs = "".join(figure(_plot(results, k, target),
                          f"{AXIS.get(k, k)}: FPIR and FNIR at rank 1 at the threshold set on clean probes for FPIR "
                          f"{target:g}; bands: 95% Clopper-Pearson; dashed: the clean photos; triangles: upper bound "
                          "where no error was seen.") for k in kinds)
    sentences = "".join(f"<p class='lead'>{esc(s)}</p>" for s in results["summary"]["sentences"])
    inp, proto, prov = results["input"], results["protocol"], results["provenance"]
    model = inp.get("model") or {}
    faces = results.get("faces") or {}
    w = faces.get("width_px") or {}
    deployed = ", ".join(f"FPIR {d['target_fpir']:g}: T = {_thr(d['threshold'])}" for d in results["deployed_thresholds"])
    body = (
        f"<div class='summary'>{sentences}<p>Each level is an audit of the same searches: the gallery as enrolled "
        f"from clean photos, every probe degraded as listed below. Figures are at the thresholds the system would "
        f"have been deployed with, set on the clean probes ({esc(deployed)}); a deployed system does not re-tune "
        "per photo. The re-tuned threshold and its FNIR are shown beside them. Intervals: 95%; a rate's interval "
        "covers this audit's searches (Clopper-Pearson); a paired difference or ratio's interval covers new "
        "people of the same kind (people bootstrap).</p></div>"
        f"<h2>Error against probe quality</h2><div class='grid'>{figs}</div>"
        f"<h2>Every level at FPIR {target:g} (threshold {esc(_thr(thr))})</h2>{_level_rows(results, target)}"
        "<p>Probe failure to enrol: the level's probes whose face the detector no longer found (counted as the "
        "audit counts failures, ISO/IEC 19795-1: a failed mated search is a miss, a failed non-mated search "
        "returns no candidate).</p>"
        f"<h2>Paired comparisons (same searches)</h2>{_comparison_rows(results, target)}"
        f"{_groups(results, target)}"
        f"<h2>What was done</h2><p>Model {esc(model.get('name', ''))} ({esc(model.get('version', ''))}), score "
        f"{esc(inp.get('score'))}; {inp.get('images', 0):,} images; gallery {proto.get('n_gallery_templates', 0):,} "
        f"templates; {proto.get('n_mated_probes', 0):,} mated and {proto.get('n_nonmated_probes', 0):,} non-mated "
        f"probes enrolled clean. Face box width on the clean photos (the model's detector): median "
        f"{w.get('median', float('nan')):.0f} px (10th-90th percentile {w.get('p10', float('nan')):.0f}-"
        f"{w.get('p90', float('nan')):.0f}). Degradations ({esc(prov['applied_to'])}; seed {prov['seed']}):</p>"
        f"{degradations_table(prov['degradations'])}"
        f"<p>{esc(results.get('explain', {}).get('note', ''))}</p>")
    sub = (f"{esc(model.get('name', ''))} &middot; faceaudit {esc(results['faceaudit_version'])} &middot; "
           f"{esc(results['created'])}")
    return page("faceaudit probe-quality study", sub, [body], extra_css=EXTRA_CSS)

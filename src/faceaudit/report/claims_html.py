"""The claims report (``faceaudit claim ... --out DIR``): reads the claims dict only, never computes."""

from __future__ import annotations

from auditcore.report import esc, page

VERDICT_CLASS = {"supported": "ok", "contradicted": "bad", "not shown": "warn"}
EXTRA_CSS = (".ok{color:#116611;font-weight:bold}.bad{color:#aa1111;font-weight:bold}"
             ".warn{color:#8a5a00;font-weight:bold}td.v{white-space:nowrap}")


def _pct(x) -> str:
    if x is None:
        return "undefined"
    x = 100 * float(x)
    if x == 0:
        return "0%"
    return f"{x:.3g}%"


def _verdict(v) -> str:
    if v is None:
        return ""
    return f"<span class='{VERDICT_CLASS.get(v, '')}'>{esc(v)}</span>"


def _needed(need) -> str:
    if not need:
        return ""
    if need.get("trials") is None:
        return esc(need.get("why", ""))
    people = f", at least {need['people']:,} people" if need.get("people") else ""
    extra = f" (rule of 3: {need['rule_of_3']:,})" if need.get("rule_of_3") else ""
    return esc(f"{need['trials']:,} to {need['to']}{people}{extra}")


def _claim_rows(claims: list) -> str:
    op_n = next((c["operational"]["gallery_size"] for c in claims if c.get("operational")), None)
    has_groups = any(c.get("groups") for c in claims)
    rows = []
    for c in claims:
        thr = "" if c.get("threshold") is None else f"{float(c['threshold']):.6g}"
        extra = ""
        if has_groups:
            extra += f"<td class='v'>{_verdict((c.get('groups') or {}).get('verdict'))}</td>"
        if op_n is not None:
            op = c.get("operational") or {}
            extra += f"<td class='v'>{_verdict(op.get('verdict')) or esc('as measured')}</td>"
        rows.append(
            f"<tr><td>{esc(c['claim'])}</td><td class='v'>{_verdict(c['verdict_measured'])}</td>{extra}"
            f"<td>{esc(thr)}</td><td>{_pct(c['value'])} ({c['errors']:,} of {c['trials']:,})</td>"
            f"<td>{_pct(c['ci_low'])} to {_pct(c['ci_high'])}</td><td>{_needed(c.get('trials_needed'))}</td></tr>")
    head = ("<th>every group</th>" if has_groups else "") + (
        f"<th>at {op_n:,.0f} people</th>" if op_n is not None else "")
    return ("<table><tr><th>claim</th><th>this audit</th>" + head + "<th>threshold</th><th>measured</th>"
            "<th>95% interval</th><th>trials needed (this audit)</th></tr>" + "".join(rows) + "</table>")


def _groups(c: dict) -> str:
    g = c.get("groups")
    if not g:
        return ""
    rows = "".join(
        f"<tr><td>{esc(e['group'])}</td><td class='v'>{_verdict(e['verdict'])}</td>"
        f"<td>{_pct(e['value'])} ({e['errors']:,} of {e['trials']:,})</td><td>{_pct(e['ci_low'])} to "
        f"{_pct(e['ci_high'])}</td><td>{esc(e.get('method') or '')}</td><td>{_needed(e.get('trials_needed'))}</td></tr>"
        for e in g["groups"])
    return (f"<h3>{esc(c['claim'])}: per {esc(g['by'])}</h3><p>Overall {_verdict(g['verdict'])} (supported only when "
            f"supported for every group). At threshold {float(g['threshold']):.6g}"
            f"{' (' + esc(g['threshold_rule']) + ')' if g.get('threshold_rule') else ''}.</p>"
            "<table><tr><th>group</th><th>verdict</th><th>measured</th><th>95% interval</th><th>interval</th>"
            f"<th>trials needed</th></tr>{rows}</table>")


def _operational(claims: list) -> str:
    ops = [(c, c["operational"]) for c in claims if c.get("operational")]
    if not ops:
        return ""
    n = ops[0][1]["gallery_size"]
    items = "".join(f"<li>{esc(c['claim'])}: {_verdict(op.get('verdict')) or 'as measured'}; {esc(op.get('reason', ''))}"
                    + (f" (band {_pct(op['fpir_lo'])} to {_pct(op['fpir_hi'])})" if op.get("fpir_hi") is not None else "")
                    + ".</li>" for c, op in ops)
    audited = ops[0][1].get("audited_gallery_size")
    share = (f"The audited gallery ({audited:,} people) is {_pct(audited / n)} of the operational {n:,.0f}: "
             + ("at least" if audited >= 0.9 * n * (1 - 1e-12) else "less than")
             + " the 90% NIST SP 800-63A-4 asks of a test of a 1:N claim." if audited else "")
    assumptions = next((op.get("assumptions") for _, op in ops if op.get("assumptions")), None) or []
    listed = "".join(f"<li>{esc(a)}</li>" for a in assumptions)
    return (f"<h2>At the operational gallery ({n:,.0f} people)</h2><p>{esc(share)}</p><ul>{items}</ul>"
            + (f"<p>The scale band's assumptions:</p><ul>{listed}</ul>" if listed else ""))


def render(result: dict) -> str:
    system = result.get("system") or {}
    name = " ".join(x for x in (system.get("name"), system.get("version")) if x) or "system not named"
    sentences = "".join(f"<li>{esc(c['sentence'])}</li>" for c in result["claims"])
    rules = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in result["rules"].items())
    sections = [
        f"<div class='summary'><ul class='find'>{sentences}</ul></div>",
        "<h2>Claims</h2>" + _claim_rows(result["claims"]),
        "".join(_groups(c) for c in result["claims"]) + _operational(result["claims"]),
        (f"<h2>What was tested</h2><p>Results folder {esc(result['results'])} ({esc(result['kind'])}; score "
        f"{esc(result['score'])}); gallery of {result.get('gallery_size') or 0:,} people; "
        f"{result.get('n_mated_searches') or 0:,} mated and {result.get('n_nonmated_searches') or 0:,} non-mated "
        "searches.</p>"),
        (f"<h2>Rules</h2><dl class='conv'>{rules}</dl>"
        "<p>Sources: biometric certification protection profiles (a claimed error rate passes only when the upper "
        "confidence bound does not exceed it); NIST SP 800-63A-4 (a 1:N test gallery of at least 90% of the "
        "operational size); the rule of 3 (Hanley and Lippman-Hand 1983). See docs/claims.md.</p>"),
    ]
    return page("faceaudit claims", esc(name), sections, extra_css=EXTRA_CSS)

"""How a scale figure's band is stated: a figure, a range, a bound, or "these data cannot say".

Every extrapolated FPIR and every expected look-alike count is worded by :func:`fpir_statement`
and :func:`lookalike_statement`: the scale analysis stores their verdict (``statement``) in
results.json, and the report's tables, its text, its summary, the black-box section and the
terminal all call them, so that no two places disagree on whether a figure is given. They read
only the row, so they word older results folders the same way. Pure functions (numpy only):
importing this module draws nothing.
"""

from __future__ import annotations

import numpy as np

CANNOT_SAY_WIDTH = 0.5   # an FPIR band wider than half of [0, 1] says nothing: "these data cannot say"
COUNT_RANGE_RATIO = 100  # a look-alike interval whose ends differ more than 100-fold gives no single figure


def _sig(x: float, up: bool, digits: int = 3) -> float:
    """``x`` to ``digits`` significant digits, rounded up (an upper bound) or down (a lower one)."""
    if x <= 0 or not np.isfinite(x):
        return float(x)
    e = int(np.floor(np.log10(x))) - digits + 1
    scaled = x / 10.0 ** e
    r = np.ceil(scaled - 1e-9) if up else np.floor(scaled + 1e-9)
    return float(r * 10.0 ** e)


def _num_text(x: float) -> str:
    """Three significant digits; thousands with separators (130,000, not 130,281 nor 1.3e+05)."""
    return f"{float(f'{x:.3g}'):,.0f}" if x >= 1000 else f"{x:.3g}"


def _one_in(hi: float) -> str:
    """'1 in M' with 1/M >= hi (a valid upper bound): M rounded down to two significant digits."""
    m = _sig(1.0 / hi, up=False, digits=2)
    return f"1 in {m:,.0f}"


def fpir_statement(row: dict) -> dict:
    """How an extrapolated FPIR row (``fpir``, ``fpir_lo``, ``fpir_hi``, ``estimable``) is stated.

    ``kind``: "figure" (a value with its band: the band is narrow and the figure's model passed
    validation), "range" (between two bounds), "at_most" (an upper bound: the lower one is 0, so
    below what the audit can resolve), "at_least" (a lower bound: the upper one is 1),
    "cannot_say" (the band spans more than half of [0, 1]), or "n/a". ``text``: plain words."""
    lo, hi = row.get("fpir_lo"), row.get("fpir_hi")
    point = row.get("fpir") if row.get("estimable", row.get("fpir") is not None) else None
    if lo is None or hi is None:
        return {"kind": "n/a", "text": "not available"}
    if hi - lo > CANNOT_SAY_WIDTH:
        return {"kind": "cannot_say", "text": "these data cannot say",
                "detail": f"the 95% band runs from {_sig(lo, False):.3g} to {_sig(hi, True):.3g}, most of the possible range"}
    if hi >= 0.9995 and lo > 0:
        return {"kind": "at_least", "text": f"at least {_sig(lo, False):.3g} (95% lower bound)"}
    if lo <= 0:
        text = (f"fewer than {_one_in(hi)} (95% upper bound)" if hi < 0.1 else
                f"at most {_sig(hi, True):.3g} (95% upper bound)")
        return {"kind": "at_most", "text": text}
    if point is not None:
        return {"kind": "figure", "text": f"{point:.3g} (95% band {_sig(lo, False):.3g} to {_sig(hi, True):.3g})"}
    return {"kind": "range", "text": f"between {_sig(lo, False):.3g} and {_sig(hi, True):.3g} (95% band)"}


def lookalike_statement(expected, lo, hi, count=None) -> dict:
    """How an expected look-alike count per search with its interval is stated (``kind`` as in
    :func:`fpir_statement`; "at_most" where no comparison reached the threshold or the lower end
    is 0: a 95% upper bound, never 0)."""
    if expected is None or lo is None or hi is None:
        return {"kind": "n/a", "text": "not available"}
    if (count is not None and count == 0) or lo <= 0 or expected <= 0:
        text = (f"fewer than one per {_sig(1.0 / hi, False, 2):,.0f} searches (95% upper bound)" if hi < 0.1 else
                f"fewer than {_num_text(_sig(hi, True))} per search (95% upper bound)")
        return {"kind": "at_most", "text": text}
    if not lo <= expected <= hi:  # an older results folder: the figure came from another model than its band
        return {"kind": "range", "text": f"between {_num_text(_sig(lo, False))} and {_num_text(_sig(hi, True))} per search "
                                          "(95% interval)"}
    if hi > COUNT_RANGE_RATIO * lo:
        return {"kind": "range", "text": f"between {_num_text(_sig(lo, False))} and {_num_text(_sig(hi, True))} per search "
                                          "(95% interval)"}
    return {"kind": "figure", "text": f"{_num_text(expected)} per search (95% interval {_num_text(_sig(lo, False))} to "
                                      f"{_num_text(_sig(hi, True))})"}


def figure_sizes_sentence(rows: list[dict], threshold_text: str) -> str:
    """One sentence per threshold, from the same statements as the table: at which sizes FPIR is one
    figure, only a bound, only a range, or something these data cannot say."""
    kinds = [(r["gallery_size"], fpir_statement(r)["kind"]) for r in sorted(rows, key=lambda r: r["gallery_size"])]
    words = {"figure": "given as one figure", "at_least": "given only as a bound", "at_most": "given only as a bound",
             "range": "given only as a range", "cannot_say": "not given: these data cannot say",
             "n/a": "not available"}
    groups: dict[str, list] = {}
    for n, k in kinds:
        groups.setdefault(words[k], []).append(n)
    if len(groups) == 1:
        only = next(iter(groups))
        return f"At threshold {threshold_text}, FPIR is {only} at {'every size' if only == words['figure'] else 'all sizes'} shown"
    parts = [f"{w} at N = {', '.join(f'{n:,.0f}' for n in ns)}" for w, ns in groups.items()]
    return f"At threshold {threshold_text}, FPIR is " + "; ".join(parts)

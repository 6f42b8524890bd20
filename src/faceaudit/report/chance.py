"""How a chance is written: never more precise than the data that measured it.

Shared by ``faceaudit explain`` (its headline and paragraph) and the report (explain's table and
calibration section). Pure formatting: nothing here computes a figure.

The *resolution* of an audit is the smallest share it could have seen at all: one in the number
of its searches, rounded up to a power of ten (13,000 searches: 1 in 10,000). A chance whose 95%
upper bound is below it is written as a bound ("less than 1 in 10,000 (95% upper bound)"), never
as ``0 [0, 0]`` or ``1.3e-23``; likewise at the top ("more than 99.99% (95% lower bound)"). An
interval end beyond the resolution is written as that bound; the two ends never print alike.
"""

from __future__ import annotations

import math


def resolution(n_searches: int | float | None) -> float:
    """1 / (searches), rounded up to a power of ten; at most 0.01 (an audit of under 100 searches)."""
    if not n_searches or n_searches < 1:
        return 0.01
    return min(10.0 ** math.ceil(math.log10(1.0 / float(n_searches))), 0.01)


def one_in_text(r: float) -> str:
    """``1 in 10,000`` for 1e-4."""
    return f"1 in {round(1 / r):,}"


def _pct(x: float, r: float, others=()) -> str:
    """A percentage with enough digits for the resolution (1e-4: two decimals), more where two
    different numbers would print alike."""
    digits = max(0, -int(math.floor(math.log10(r))) - 2)
    for d in range(digits, digits + 6):
        s = f"{100 * x:.{d}f}%"
        if all(s != f"{100 * o:.{d}f}%" for o in others if o is not None and o != x):
            return s
    return s


def _num(x: float, others=()) -> str:
    """Three significant figures, more where that would make two different numbers print alike."""
    for d in (3, 4, 5, 6, 8):
        s = f"{x:.{d}g}"
        if (float(s) != 1 or x == 1) and all(s != f"{o:.{d}g}" for o in others if o is not None and o != x):
            return s
    return f"{x:.10g}"


def chance_text(p, lo, hi, r: float, *, style: str = "number") -> str:
    """The chance ``p`` with its 95% interval ``[lo, hi]`` at resolution ``r``.

    ``style``: "number" (``0.0531 [0.0402, 0.0811]``) or "percent" (``5.3% (95% interval 4.0% to
    8.1%)``). ``p`` may be None (no single figure): then only the interval or the bound is written.
    """
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return "not determined" if p is None else (_num(p) if style == "number" else _pct(p, r))
    if hi < r:
        return f"less than {one_in_text(r)} (95% upper bound)"
    if lo > 1 - r:
        return f"more than {_pct(1 - r, r)} (95% lower bound)"
    if (p is None or p < r) and lo < r:
        return (f"at most {_num(hi)} (95% upper bound)" if style == "number"
                else f"at most {_pct(hi, r)} (95% upper bound)")
    if (p is None or p > 1 - r) and hi > 1 - r:
        return (f"at least {_num(lo)} (95% lower bound)" if style == "number"
                else f"at least {_pct(lo, r)} (95% lower bound)")
    lo_txt = (f"less than {one_in_text(r)}" if lo < r else _num(lo, (hi, p))) if style == "number" else \
        (f"less than {one_in_text(r)}" if lo < r else _pct(lo, r, (hi, p)))
    hi_txt = (f"more than {_pct(1 - r, r)}" if hi > 1 - r else _num(hi, (lo, p))) if style == "number" else \
        (f"more than {_pct(1 - r, r)}" if hi > 1 - r else _pct(hi, r, (lo, p)))
    if style == "number":
        if p is None:
            return f"between {lo_txt} and {hi_txt} (95% interval)"
        return f"{_num(p, (lo, hi))} [{lo_txt}, {hi_txt}]"
    if p is None:
        return f"somewhere between {lo_txt} and {hi_txt} (95% interval)"
    return f"about {_pct(p, r, (lo, hi))} (95% interval {lo_txt} to {hi_txt})"

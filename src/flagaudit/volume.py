"""From rates to people: what a false-flag rate means at a stated volume of posts.

Model (its assumptions are printed beside its numbers in the report):

* ``N`` posts a day, of which a share ``p`` (the *base rate*) are genuinely threatening;
* benign posts are flagged at the audit's overall false-flag rate ``f`` and threatening ones
  are missed at its miss rate ``m`` (i.e. the suites' mix stands for the posts the system sees);
* then, per day: ``N (1 - p) f`` posts flagged for nothing, ``N p (1 - m)`` threats flagged, and
  the share of flags that are right (positive predictive value)
  ``PPV = p (1 - m) / (p (1 - m) + (1 - p) f)``.

Intervals follow from the intervals of ``f`` and ``m`` shown in the report: each count is
monotone in one rate, and PPV is lowest at (``f`` high, ``m`` high) and highest at (``f`` low,
``m`` low); those corners give its interval. With no threat cases (``m`` undefined) the miss
rate is taken anywhere in [0, 1]: PPV then has only an upper bound (no threat missed).
"""

from __future__ import annotations

import math

import numpy as np

from auditcore.errors import InputError
from auditcore.validation import rate_targets

DEFAULT_BASE_RATES = (1e-5, 1e-4, 1e-3, 1e-2)
DEFAULT_POSTS_PER_DAY = 1_000_000


def check_base_rates(base_rates) -> list[float]:
    return rate_targets("base rate", base_rates)


def check_posts_per_day(n) -> float:
    n = float(n)
    if not (n > 0 and math.isfinite(n)):
        raise InputError(f"posts per day must be a positive number, got {n:g}")
    return n


def ppv(p: float, f: float, m: float) -> float | None:
    tp, fp = p * (1 - m), (1 - p) * f
    return None if tp + fp == 0 else tp / (tp + fp)


def volume_row(n: float, p: float, ffr: dict, miss: dict) -> dict:
    """Expected daily counts and PPV for one base rate, with intervals from the rates' intervals."""
    f, f_lo, f_hi = ffr["value"], ffr["ci_low"], ffr["ci_high"]
    m_known = miss.get("trials", 0) > 0 and miss.get("value") is not None
    m, m_lo, m_hi = (miss["value"], miss["ci_low"], miss["ci_high"]) if m_known else (None, 0.0, 1.0)
    benign, threats = n * (1 - p), n * p
    row = {"base_rate": p, "posts_per_day": n, "benign_posts": benign, "threat_posts": threats,
           "miss_rate_known": m_known}
    if f is None:
        row.update(false_flags=None, false_flags_low=None, false_flags_high=None)
    else:
        row.update(false_flags=benign * f, false_flags_low=benign * f_lo, false_flags_high=benign * f_hi)
    row.update(true_flags=None if m is None else threats * (1 - m), true_flags_low=threats * (1 - m_hi),
               true_flags_high=threats * (1 - m_lo))
    if f is None:
        row.update(ppv=None, ppv_low=None, ppv_high=None)
    else:
        row.update(ppv=None if m is None else ppv(p, f, m), ppv_low=ppv(p, f_hi, m_hi), ppv_high=ppv(p, f_lo, m_lo))
        if row["ppv_low"] is None:
            row["ppv_low"] = 0.0
    return row


def volume_table(ffr: dict, miss: dict, posts_per_day: float = DEFAULT_POSTS_PER_DAY,
                 base_rates=DEFAULT_BASE_RATES) -> dict:
    n = check_posts_per_day(posts_per_day)
    rates = check_base_rates(base_rates)
    return {"posts_per_day": n, "rows": [volume_row(n, p, ffr, miss) for p in rates],
            "assumptions": [
                ("benign posts are flagged at the audit's overall false-flag rate, threats missed at its miss rate: "
                 "the test suites' mix of cases stands for the posts the system sees"),
                "the base rate (share of genuinely threatening posts) is stated by the user, not measured",
                ("intervals: each count from the false-flag (or miss) rate's interval; PPV from the corners "
                 "(both rates at their worst, both at their best)")]}


def share(x: float) -> str:
    """A share as a percentage with enough digits to be non-zero when it is (0.0049%, 12.3%)."""
    if x == 0:
        return "0%"
    return f"{x * 100:.2g}%" if x < 0.01 else f"{x:.1%}"


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 10 else f"{x:.2g}"


def sentences(table: dict) -> list[str]:
    """Plain-language sentences, each following from the intervals in ``table``."""
    out = []
    for r in table["rows"]:
        if r["false_flags"] is None:
            continue
        who = f"If {r['base_rate'] * 100:.3g}% of {r['posts_per_day']:,.0f} posts a day were genuinely threatening"
        s = (f"{who}, the system would flag between {_fmt(r['false_flags_low'])} and {_fmt(r['false_flags_high'])} "
             f"posts a day for nothing (95% interval)")
        if r["ppv_high"] is not None:
            if r["miss_rate_known"]:
                s += f", and between {share(r['ppv_low'])} and {share(r['ppv_high'])} of its flags would be right"
                if r["ppv_high"] < 0.5:
                    wrong = 1 / r["ppv_high"] - 1 if r["ppv_high"] > 0 else math.inf
                    s += (f": at least {math.floor(wrong):,} wrong flags for every right one" if math.isfinite(wrong)
                          and wrong >= 1 else "")
            else:
                s += f", and at most {share(r['ppv_high'])} of its flags would be right (no threat cases were tested)"
        out.append(s + ".")
    return out


def headline(table: dict) -> dict | None:
    """The one base rate the terminal and the report both quote, with its sentence: the
    ``len // 2``-th of the stated ones (1e-3 of the defaults 1e-5, 1e-4, 1e-3, 1e-2)."""
    rows = [r for r in table["rows"] if r["false_flags"] is not None]
    if not rows:
        return None
    sents = sentences({"rows": rows})
    i = len(rows) // 2
    return {"base_rate": rows[i]["base_rate"], "sentence": sents[i]}


def ppv_monte_carlo(p: float, f: float, m: float, n: int, rng=None) -> float:
    """Share of flags that are right among ``n`` simulated posts (used by the tests)."""
    rng = np.random.default_rng(rng)
    threat = rng.random(n) < p
    flagged = np.where(threat, rng.random(n) >= m, rng.random(n) < f)
    return float((flagged & threat).sum() / max(flagged.sum(), 1))

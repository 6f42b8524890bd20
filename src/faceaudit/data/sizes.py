"""How small an audit may be before its figures say little: the ``small_audit`` warning.

Below :data:`SMALL_AUDIT` (100 enrolled people, 100 mated searches or 100 non-mated searches)
a results.json carries ``{"code": "small_audit", "text": ...}`` in ``results["warnings"]``, and
the terminal and the report show it. Why 100 (Clopper-Pearson 95% intervals, as every figure):

* fewer than 100 non-mated searches: an FPIR target of 1% allows no false positive at all
  (``floor(0.01 n) = 0``), and an FPIR of 0 of 99 still has an upper bound of 3.7%;
* fewer than 100 mated searches: an FNIR of 5 in 100 has the interval [1.6%, 11.3%], wider than
  the rate itself, and it only widens below;
* fewer than 100 enrolled people: the look-alike counts, what a top candidate is worth
  (``faceaudit explain``) and the extrapolation to larger galleries rest on the non-mate scores of
  so few people that one unusual face sets them, and groups of people are too small to compare.
  Measured on LFW with dlib (``benchmarks/explain_lfw_halves.py``, docs/scale.md): fitted on one
  half of the people and checked on the other, explain's interval missed the observed share in 2
  of 64 score bins with 94-person galleries (top bins: 96.6% [91.7, 99.8] predicted, 76.2%
  [63.8, 86.0] observed) and in none of 64 with 199-person galleries.

The intervals stay correct for this audit's own searches; the warning says what they cannot
carry beyond them.
"""

from __future__ import annotations

SMALL_AUDIT = {"enrolled_people": 100, "mated_searches": 100, "nonmated_searches": 100}


def _s(n: int) -> str:
    return "search" if n == 1 else "searches"


def small_audit_warning(enrolled_people: int, mated_searches: int, nonmated_searches: int) -> dict | None:
    """``{"code": "small_audit", "text": one sentence}`` when any count is below
    :data:`SMALL_AUDIT`, saying which figures cannot be trusted and why; else ``None``."""
    people = f"{enrolled_people:,} enrolled {'person' if enrolled_people == 1 else 'people'}"
    counts = f"{people}, {mated_searches:,} mated and {nonmated_searches:,} non-mated {_s(nonmated_searches)}"
    figures = []
    if nonmated_searches < SMALL_AUDIT["nonmated_searches"]:
        figures.append(f"FPIR and the thresholds set for FPIR targets rest on {nonmated_searches:,} non-mated {_s(nonmated_searches)}")
    if mated_searches < SMALL_AUDIT["mated_searches"]:
        figures.append(f"FNIR and the rank-1 rate rest on {mated_searches:,} mated {_s(mated_searches)}")
    if enrolled_people < SMALL_AUDIT["enrolled_people"]:
        figures.append(f"the look-alike counts, what a top candidate is worth (explain), the extrapolation to "
                       f"larger galleries and group comparisons "
                       f"rest on a gallery of {people.replace(' enrolled', '')}")
    if not figures:
        return None
    if len(figures) > 1:
        figures[-1] = "and " + figures[-1]
    return {"code": "small_audit",
            "text": (f"Small audit ({counts}; faceaudit warns below 100 of each): {', '.join(figures)}: "
                     "too few to trust beyond this audit's own searches.")}

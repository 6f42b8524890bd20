"""The conventions every figure follows, stated once: written into every results.json and used by
every audit (template, black-box, comparison) to pick its operating points and ranks."""

from __future__ import annotations

CONVENTIONS = {
    "match": "a comparison score >= threshold T is a match; higher scores mean more alike",
    "fpir": "FPIR(T) = non-mated searches returning at least one candidate with score >= T, "
            "divided by the number of non-mated searches (one error per search)",
    "fnir": "FNIR(R, T) = mated searches whose mate is not in the top R candidates or scores "
            "below T, divided by the number of mated searches",
    "cmc": "identification rate at rank r = 1 - FNIR(r, -inf)",
    "ties": "a mate tied with a non-mate takes the worse rank",
    "subject_score": "a gallery subject's score is the maximum over its gallery templates",
    "operating_point": "'at rate x' = the lowest threshold whose error count is <= floor(x * n); "
                       "never interpolated, never the nearest point",
    "undefined": "a rate with no trials is undefined (null), never 0",
    "verification": "FMR/FNMR over probe-vs-gallery template comparisons; impostor scores are "
                    "counted exactly at float32 bin edges (11 mantissa bits), so verification "
                    "thresholds lie on those edges",
    "intervals": "two-sided 95% Clopper-Pearson intervals on every rate unless stated",
}

DEFAULT_FPIR_TARGETS = (0.1, 0.01, 0.001)
DEFAULT_FMR_TARGETS = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)


def ranks_for(top_k: int) -> list[int]:
    """The ranks reported for candidate lists of length ``top_k``: 1, 5, 10, 20 and ``top_k``, up to ``top_k``."""
    return sorted({r for r in (1, 5, 10, 20, top_k) if r <= top_k})

"""What one search result means: is the top candidate the searched person or a look-alike?

Works from an audit's score distributions only; it takes no image and names no one.

Model (one search of a gallery of N subjects; a stated prior P that the searched person is
enrolled at all; the mate's score has the audited genuine density f_g and distribution F_g;
each non-mate's score has the impostor density f_i and distribution F_i, independently).
Given that the top candidate scores S:

* enrolled, and the top candidate is the mate:    P * f_g(S) * F_i(S)^(N-1)
* enrolled, but a non-mate beat the mate:         P * (N-1) * f_i(S) * F_i(S)^(N-2) * F_g(S)
* not enrolled (every candidate is a non-mate):   (1-P) * N * f_i(S) * F_i(S)^(N-1)

so, dividing by F_i(S)^(N-2),

    P(top candidate is the person | S) = P f_g F_i / (P f_g F_i + P (N-1) f_i F_g + (1-P) N f_i F_i).

Estimates: f_g is a Gaussian kernel density of the exact genuine scores (Scott's bandwidth),
F_g their empirical distribution; F_i(S) = 1 - FMR(S) from the impostor counts; f_i(S) is the
impostor mass within +-h of S divided by 2h (h by Silverman's rule), or, above the tail
threshold u, the generalised Pareto tail density. The interval is a percentile bootstrap over
the genuine scores and the tail parameters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from faceaudit.engine import hist_edges, score_bin
from faceaudit.errors import InputError
from faceaudit.metrics.tail import TailFit, fit_tail

MAX_KDE_POINTS = 20_000


@dataclass
class ScoreModel:
    genuine: np.ndarray
    impostor_hist: np.ndarray
    tail: TailFit | None = None

    @classmethod
    def from_search(cls, res, tail: TailFit | None = None) -> "ScoreModel":
        return cls(np.asarray(res.genuine_scores, float), np.asarray(res.impostor_hist), tail)

    @classmethod
    def from_results(cls, results_dir: str | Path) -> "ScoreModel":
        path = Path(results_dir) / "scores.npz"
        if not path.exists():
            raise InputError("no scores.npz here; is this a faceaudit results folder?", results_dir)
        data = np.load(path)
        hist = np.zeros(hist_edges().size, dtype=np.int64)
        hist[data["impostor_bin"]] = data["impostor_count"]
        if data["genuine"].size < 2 or hist.sum() < 2:
            raise InputError("too few genuine or impostor scores to explain a score", path)
        model = cls(np.asarray(data["genuine"], float), hist)
        model.tail = fit_tail(hist) if hist.sum() >= 1000 else None
        return model

    # -- impostor side
    def _edges_counts(self):
        bins = np.flatnonzero(self.impostor_hist)
        return hist_edges()[bins].astype(float), self.impostor_hist[bins]

    def impostor_cdf(self, s: float) -> float:
        """F_i(S) = 1 - FMR(S) (FMR from the tail model above u)."""
        if self.tail is not None and s >= self.tail.u:
            return float(1 - self.tail.fmr(s))
        b = int(score_bin(np.float32([s]))[0])
        return float(1 - self.impostor_hist[b:].sum() / self.impostor_hist.sum())

    def impostor_pdf(self, s: float) -> float:
        if self.tail is not None and s >= self.tail.u:
            return float(self.tail.density(s))
        edges, counts = self._edges_counts()
        n = counts.sum()
        mean = np.average(edges, weights=counts)
        sd = np.sqrt(np.average((edges - mean) ** 2, weights=counts))
        h = max(1.06 * sd * n ** (-0.2), 1e-4)
        inside = (edges >= s - h) & (edges < s + h)
        return float(counts[inside].sum() / n / (2 * h))

    def score_range(self) -> tuple[float, float]:
        edges, _ = self._edges_counts()
        return float(min(edges.min(), self.genuine.min())), float(max(edges.max(), self.genuine.max()))


def _genuine_terms(genuine: np.ndarray, s: float) -> tuple[float, float]:
    g = genuine if genuine.size <= MAX_KDE_POINTS else np.random.default_rng(0).choice(genuine, MAX_KDE_POINTS, replace=False)
    kde = stats.gaussian_kde(g)
    return float(kde(s)[0]), float(np.mean(genuine < s))


def posterior(f_g: float, F_g: float, f_i: float, F_i: float, n: int, prior: float) -> float:
    """P(top candidate is the mate | top score), from the four terms (see module doc)."""
    mate = prior * f_g * F_i
    lookalike = prior * (n - 1) * f_i * F_g
    absent = (1 - prior) * n * f_i * F_i
    total = mate + lookalike + absent
    return float(mate / total) if total > 0 else float("nan")


def explain(model: ScoreModel | str | Path, score: float, gallery_size: int, *, prior: float = 0.5,
            n_boot: int = 200, seed: int = 0, confidence: float = 0.95) -> dict:
    """How likely a top candidate at ``score`` from a gallery of ``gallery_size`` is the person."""
    if not isinstance(model, ScoreModel):
        model = ScoreModel.from_results(model)
    if not np.isfinite(score):
        raise InputError(f"score must be a finite number, got {score}")
    if gallery_size < 1:
        raise InputError(f"gallery size must be at least 1, got {gallery_size}")
    if not 0 < prior < 1:
        raise InputError(f"prior must be strictly between 0 and 1, got {prior}")
    lo, hi = model.score_range()
    if score < lo or score > hi + 0.25 * (hi - lo):
        raise InputError(f"score {score:g} is outside the range this audit observed ({lo:.4g} to {hi:.4g})")
    f_g, F_g = _genuine_terms(model.genuine, score)
    f_i, F_i = model.impostor_pdf(score), model.impostor_cdf(score)
    p = posterior(f_g, F_g, f_i, F_i, gallery_size, prior)
    interval = [None, None]
    if n_boot:
        rng = np.random.default_rng(seed)
        draws = []
        for b in range(n_boot):
            g = rng.choice(model.genuine, model.genuine.size, replace=True)
            bf_g, bF_g = _genuine_terms(g, score)
            bf_i, bF_i = f_i, F_i
            if model.tail is not None and score >= model.tail.u:
                xi, sig = model.tail.boot_xi[b % model.tail.boot_xi.size], model.tail.boot_sigma[b % model.tail.boot_sigma.size]
                bf_i = float(model.tail.n_exceed / model.tail.n_total * stats.genpareto.pdf(score - model.tail.u, xi, 0, sig))
                bF_i = float(1 - model.tail.fmr(score, xi, sig))
            draws.append(posterior(bf_g, bF_g, bf_i, bF_i, gallery_size, prior))
        a = (1 - confidence) / 2
        interval = [float(np.nanquantile(draws, a)), float(np.nanquantile(draws, 1 - a))]
    expected = gallery_size * (1 - F_i)
    out = {"score": score, "gallery_size": int(gallery_size), "prior": prior, "p_top_is_mate": p,
           "interval": interval, "confidence": confidence,
           "terms": {"genuine_density": f_g, "genuine_below": F_g, "impostor_density": f_i, "impostor_below": F_i},
           "expected_impostors_at_or_above_score": expected}
    out["paragraph"] = paragraph(out)
    return out


def paragraph(out: dict) -> str:
    p, (lo, hi) = out["p_top_is_mate"], out["interval"]
    rng = f" (95% interval {lo:.1%} to {hi:.1%})" if lo is not None else ""
    return (
        f"Suppose a search of a gallery of {out['gallery_size']:,} people returns a top candidate with score "
        f"{out['score']:.4g}, and that before the search there was a {out['prior']:.0%} chance that the person "
        f"searched for is in the gallery at all. Using the score distributions measured in this audit, the chance "
        f"that this candidate is that person is about {p:.1%}{rng}; otherwise the candidate is someone who merely "
        f"looks alike to this system. In a gallery this size, about {out['expected_impostors_at_or_above_score']:.3g} "
        "people who are not the person would be expected to score at least this high in a single search. "
        "This figure assumes that the people searched and enrolled resemble those of the audit, that the score "
        "distributions measured here hold for them, and that the prior is right; it changes with each of these. "
        "A score alone is not proof of identity: it says how often this system produces such a score for the "
        "right person compared with a stranger.")


def explain_from_results(results_dir: str | Path, score: float, gallery_size: int, prior: float = 0.5) -> dict:
    """Library entry point used by ``faceaudit explain``."""
    path = Path(results_dir)
    if not path.is_dir():
        raise InputError("results folder not found", path)
    out = explain(ScoreModel.from_results(path), score, gallery_size, prior=prior)
    results_json = path / "results.json"
    if results_json.exists():
        out["audited"] = json.loads(results_json.read_text()).get("input", {})
    return out

"""What one search result means: is the top candidate the searched person or a look-alike?

Works from an audit's score distributions only; it takes no image and names no one.

Model (one search of a gallery of N subjects; a stated prior P that the searched person is
enrolled at all). The mate's score has the audited density f_g and distribution F_g (the
mated searches' mate scores). The top *non-mate* score of a search among M non-mate subjects
has distribution G_M and density g_M. Given that the top candidate scores S:

* enrolled, and the top candidate is the mate:    P * f_g(S) * G_{N-1}(S)
* enrolled, but a non-mate beat the mate:         P * g_{N-1}(S) * F_g(S)
* not enrolled (every candidate is a non-mate):   (1-P) * g_N(S)

    P(top candidate is the person | S) = mate / (mate + look-alike + not enrolled).

**Look-alikes concentrate on some probes.** Non-mate scores are *not* independent across a
gallery: some people (and some images) attract many high non-mate scores, most attract none.
So G_M is modelled with probe-to-probe heterogeneity: given the probe, its non-mate scores are
independent with exceedance ``1 - (1 - q(s))^lambda`` (cumulative hazard ``lambda H(s)``,
``H = -log(1 - q)``, q the audited FMR), and the probe's look-alike propensity ``lambda`` varies
across probes as a Gamma law with mean 1 and variance ``theta``. Then, exactly,

    G_M(s) = (1 + theta M c H(s)) ** (-1/theta),   g_M = dG_M/ds,

with c the gallery templates per subject; ``theta = 0`` is the independence model
(``G_M = (1 - q)^(M c)``). ``theta`` is fitted (binomial pseudo-likelihood) to the audit's own
non-mated searches: the share whose best non-mate reaches each of several scores at the
audited gallery size. The same ``theta`` then carries G to other gallery sizes.

Estimates: f_g a Gaussian kernel density of the mate scores (Scott's bandwidth), F_g their
empirical distribution; q(S) = FMR(S) from the exact impostor counts; f_i (the impostor
density) the impostor mass within +-h of S over 2h (Silverman's h), or above the tail threshold
u the generalised Pareto tail. Interval: percentile bootstrap over mate scores, non-mated
searches (``theta`` refitted) and tail parameters.

Where the data cannot support a number (the score lies above every impostor score the audit
observed, so the impostor density there is extrapolated; or the interval is wider than 50
percentage points) no point estimate is given, only the interval and the reason.

:func:`calibration_check` bins the audit's own searches by top score and compares the share
whose top candidate was the mate with this model's answer at the audited gallery size (and
with the independence model's), so every audit shows whether the model holds on its data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import special

from auditcore.errors import InputError
from auditcore.intervals import clopper_pearson
from faceaudit.engine.counts import exact_bins, hist_edges, score_bin
from faceaudit.metrics.tail import TailFit, fit_tail

MAX_KDE_POINTS = 20_000
MAX_WIDTH_FOR_POINT = 0.5
MAX_CARRY_DISAGREEMENT = 0.1
MAX_CARRY_ODDS_RATIO = 2.0
THETA_MAX = 200.0

ASSUMPTIONS = [
    "The people searched for and the people enrolled resemble those of this audit (age, image quality, "
    "demographics, capture conditions), and the score distributions measured here hold for them.",
    "Look-alikes are not spread evenly: each probe has its own propensity to attract high non-mate scores, "
    "modelled as varying across probes by a Gamma law fitted to this audit's non-mated searches; given the probe, "
    "its non-mate scores are independent draws.",
    "A probe's propensity to attract look-alikes does not depend on how well it matches its own mate.",
    "The same propensity law holds at other gallery sizes (it is fitted at the audited size only).",
    "Above the highest impostor score observed, the fitted generalised Pareto tail holds.",
    "The prior (the chance, before the search, that the person is enrolled at all) is right.",
]


# ----------------------------------------------------------------------------- model pieces
# Poisson and negative binomial log-probabilities, for whole counts k >= 0: scipy.stats'
# formulas (poisson_gen, nbinom_gen in scipy/stats/_discrete_distns.py; the same digits,
# tested against scipy.stats) from scipy.special, so that an audit does not import scipy.stats
# (half a second). Invalid parameters give NaN, as in scipy.stats.
def _poisson_logpmf(k, mu):
    with np.errstate(invalid="ignore"):
        return np.where(mu >= 0, special.xlogy(k, mu) - special.gammaln(k + 1) - mu, np.nan)


def _poisson_logsf(k, mu):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mu >= 0, np.log(special.pdtrc(np.floor(k), mu)), np.nan)


def _nbinom_valid(n, p):
    return (n > 0) & (p > 0) & (p <= 1)


def _nbinom_logpmf(k, n, p):
    with np.errstate(divide="ignore", invalid="ignore"):
        coeff = special.gammaln(n + k) - special.gammaln(k + 1) - special.gammaln(n)
        return np.where(_nbinom_valid(n, p), coeff + n * np.log(p) + special.xlog1py(k, -p), np.nan)


def _nbinom_logsf(k, n, p):
    try:  # the negative binomial survival function that scipy.stats.nbinom.sf evaluates
        from scipy.special._ufuncs import _nbinom_sf
    except ImportError:  # a scipy without it: scipy.stats itself
        from scipy.stats import nbinom
        _nbinom_sf = nbinom.sf
    k, n, p = np.broadcast_arrays(np.floor(k), n, p)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(_nbinom_valid(n, p), np.log(_nbinom_sf(k, n, p)), np.nan)


def _log_best_of(m, H, h, theta, slope=0.0):
    """log G_M and log g_M for M comparisons per search (arrays broadcast; theta may vary).

    ``slope`` is d theta / ds where theta depends on the score: g_M = dG_M/ds then has a second
    term, dG_M/dtheta * slope."""
    m = np.asarray(m, float)
    theta = np.asarray(theta, float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        small = theta <= 1e-9
        th = np.where(small, 1.0, theta)
        x = np.log1p(th * m * H)
        logG = np.where(small, -m * H, -x / th)
        base = m * h * np.exp(np.where(small, -m * H, -(1 / th + 1) * x))
        # d log G / d theta = log(1 + theta M H) / theta^2 - M H / (theta (1 + theta M H))
        dlogG = np.where(small, (m * H) ** 2 / 2, x / th**2 - m * H / (th * (1 + th * m * H)))
        g = base + np.exp(logG) * dlogG * np.asarray(slope, float)
        logg = np.log(np.maximum(g, 1e-300))
    return logG, logg


def posterior_terms(f_g, F_g, F_i, f_i, n, prior, theta=0.0, per_subject=1.0, scores=None, slope=0.0):
    """P(top is the mate | S) from the densities and distributions at S (arrays allowed).

    ``theta``: a number (Gamma heterogeneity with that variance; 0 = independence) or a fitted
    fitted object with ``log_best_of`` (then ``scores`` are the S values)."""
    f_g, F_g, F_i, f_i = (np.asarray(v, float) for v in (f_g, F_g, F_i, f_i))
    with np.errstate(divide="ignore", invalid="ignore"):
        H = -np.log(np.clip(F_i, 1e-300, 1.0))
        h = f_i / np.clip(F_i, 1e-300, None)
        if hasattr(theta, "log_best_of"):
            logG1, logg1 = theta.log_best_of((n - 1) * per_subject, scores, H, h)
            _, logg0 = theta.log_best_of(n * per_subject, scores, H, h)
        else:
            logG1, logg1 = _log_best_of((n - 1) * per_subject, H, h, theta, slope)
            _, logg0 = _log_best_of(n * per_subject, H, h, theta, slope)
        terms = np.stack(np.broadcast_arrays(np.log(prior) + np.log(f_g) + logG1,
                                             np.log(prior) + np.log(F_g) + logg1,
                                             np.log(1 - prior) + logg0))
        finite = np.isfinite(terms)
        top = np.max(np.where(finite, terms, -np.inf), axis=0)
        w = np.where(finite, np.exp(terms - np.where(np.isfinite(top), top, 0)), 0.0)
        total = w.sum(0)
    return np.where(total > 0, w[0] / np.where(total > 0, total, 1), np.nan)


def posterior(f_g: float, F_g: float, f_i: float, F_i: float, n: int, prior: float, theta: float = 0.0) -> float:
    """P(top candidate is the mate | top score), from the four terms (see module doc).

    ``theta = 0`` is the independence model:
    P f_g F_i / (P f_g F_i + P (N-1) f_i F_g + (1-P) N f_i F_i).
    """
    return float(posterior_terms(f_g, F_g, F_i, f_i, n, prior, theta))


THETA_GRID = np.concatenate([[0.0], np.geomspace(1e-3, THETA_MAX, 70)])


@dataclass
class ThetaCurve:
    """theta(s) on a grid of scores; ``s_top``: the highest score with enough exceedances to fit it."""

    grid: np.ndarray
    values: np.ndarray

    @property
    def s_top(self) -> float:
        return float(self.grid[-1]) if self.grid.size else np.inf

    def __call__(self, s) -> np.ndarray:
        if self.grid.size == 0:
            return np.zeros_like(np.asarray(s, float))
        return np.interp(np.asarray(s, float), self.grid, self.values)

    def slope(self, s) -> np.ndarray:
        """d theta / ds of the piecewise-linear curve (0 outside the fitted grid)."""
        s = np.asarray(s, float)
        if self.grid.size < 2:
            return np.zeros_like(s)
        d = np.diff(self.values) / np.diff(self.grid)
        i = np.clip(np.searchsorted(self.grid, s, side="right") - 1, 0, d.size - 1)
        inside = (s >= self.grid[0]) & (s <= self.grid[-1])
        return np.where(inside, d[i], 0.0)


def _smooth(values: np.ndarray) -> np.ndarray:
    """Running median of three on log(1 + theta): removes single-point jumps of the per-score fit."""
    if values.size < 3:
        return values
    x = np.log1p(values)
    padded = np.concatenate([[x[0]], x, [x[-1]]])
    med = np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)
    return np.expm1(med)


class HeterogeneityData:
    """Per-search exceedance counts of the non-mated searches' candidate lists on a score grid
    (censored at the list length K) and the negative-binomial log-likelihood table, so that
    theta(s) can be refitted for any resampling weights in one matrix product."""

    def __init__(self, topk: np.ndarray, hazard, m: float, n_grid: int = 16, min_exceed: int = 40, grid=None):
        topk = np.asarray(topk, float)
        if topk.ndim == 1:
            topk = topk[:, None]
        topk = np.where(np.isfinite(topk), topk, -np.inf)
        self.n, self.k = topk.shape
        pooled = np.sort(topk[np.isfinite(topk)])
        best = topk.max(1)
        best = best[np.isfinite(best)]
        if pooled.size < min_exceed or best.size < 20:
            self.grid = np.empty(0)
            return
        if grid is None:
            lo = float(np.quantile(best, 0.3))
            hi = float(pooled[-min_exceed])
            self.grid = np.unique(np.linspace(lo, max(hi, lo), n_grid))
        else:
            self.grid = np.atleast_1d(np.asarray(grid, float))
        counts = (topk[:, None, :] >= self.grid[None, :, None]).sum(-1)  # n x G; K = censored
        onehot = np.zeros((self.n, self.grid.size, self.k + 1))
        np.put_along_axis(onehot, counts[..., None], 1.0, axis=-1)
        self.onehot = onehot.reshape(self.n, -1)
        mu = np.maximum(m * hazard(self.grid), 1e-300)  # expected exceedances per search
        table = np.empty((self.grid.size, THETA_GRID.size, self.k + 1))
        c = np.arange(self.k)
        for g, mu_g in enumerate(mu):
            table[g, 0, :-1] = _poisson_logpmf(c, mu_g)
            table[g, 0, -1] = _poisson_logsf(self.k - 1, mu_g)
            r = 1 / THETA_GRID[1:, None]
            p = 1 / (1 + THETA_GRID[1:, None] * mu_g)
            table[g, 1:, :-1] = _nbinom_logpmf(c[None, :], r, p)
            table[g, 1:, -1] = _nbinom_logsf(self.k - 1, r, p)[:, 0]
        self.table = np.where(np.isfinite(table), table, -1e300)

    def fit(self, weights: np.ndarray | None = None):
        """theta(s) by maximum likelihood on THETA_GRID; ``weights`` (B x n) gives one curve per row."""
        if self.grid.size == 0:
            empty = ThetaCurve(np.empty(0), np.empty(0))
            return empty if weights is None else [empty] * len(weights)
        w = np.ones((1, self.n)) if weights is None else np.atleast_2d(weights)
        # counts are whole numbers, so this product is exact in any summation order
        hist = (w @ self.onehot).reshape(len(w), self.grid.size, self.k + 1)
        # an explicit sum, not einsum/BLAS: the same digits whatever BLAS kernel the machine runs
        ll = np.stack([(h[:, None, :] * self.table).sum(-1) for h in hist])
        curves = [ThetaCurve(self.grid, _smooth(THETA_GRID[np.argmax(row, axis=1)])) for row in ll]
        return curves[0] if weights is None else curves


@dataclass
class ScoreModel:
    genuine: np.ndarray  # mate (subject) scores of mated searches, or genuine comparisons
    impostor_hist: np.ndarray
    tail: TailFit | None = None
    best_nonmate: np.ndarray | None = None  # non-mated searches' best non-mate at the audited size
    gallery_size: int | None = None
    per_subject: float = 1.0  # gallery templates per enrolled subject
    nonmated_topk: np.ndarray | None = None  # non-mated searches' candidate scores (n x K)
    score: str = "cosine"  # the histogram's convention (faceaudit.engine.counts): score kind and fine bins' start
    fine_from: int = 0

    @classmethod
    def from_search(cls, res, tail: TailFit | None = None, n_gallery_templates: int | None = None) -> "ScoreModel":
        mate = np.asarray(res.mate_score[res.is_mated], float)
        mate = mate[np.isfinite(mate)]
        genuine = mate if mate.size >= 2 else np.asarray(res.genuine_scores, float)
        per = (n_gallery_templates / res.gallery_size) if n_gallery_templates and res.gallery_size else 1.0
        topk = getattr(res, "candidates_score", None)
        topk = None if topk is None else np.asarray(topk, float)[~np.asarray(res.is_mated, bool)]
        return cls(genuine, np.asarray(res.impostor_hist), tail,
                   np.asarray(res.best_nonmate[~res.is_mated], float), int(res.gallery_size), float(per), topk,
                   getattr(res, "score", "cosine"), int(getattr(res, "hist_fine_from", 0)))

    @classmethod
    def from_results(cls, results_dir: str | Path) -> "ScoreModel":
        path = Path(results_dir) / "scores.npz"
        if not path.exists():
            raise InputError("no scores.npz here; is this a faceaudit results folder?", results_dir)
        data = np.load(path)
        hist = np.zeros(hist_edges().size, dtype=np.int64)
        hist[data["impostor_bin"]] = data["impostor_count"]
        genuine = np.asarray(data["genuine"], float)
        if "mate_score" in data.files:
            mate = np.asarray(data["mate_score"], float)
            mate = mate[np.isfinite(mate)]
            if mate.size >= 2:
                genuine = mate
        if genuine.size < 2 or hist.sum() < 2:
            raise InputError("too few genuine or impostor scores to explain a score", path)
        best = np.asarray(data["best_nonmate"], float) if "best_nonmate" in data.files else None
        n_gal = int(data["gallery_size"]) if "gallery_size" in data.files else None
        per = 1.0
        kind = "cosine"
        rj = Path(results_dir) / "results.json"
        if rj.exists():
            try:
                saved = json.loads(rj.read_text())
                kind = str(saved.get("input", {}).get("score", "cosine"))
                if n_gal:
                    per = float(saved.get("protocol", {}).get("n_gallery_templates", n_gal)) / n_gal
            except (ValueError, TypeError, AttributeError):
                per = 1.0
        fine_from = int(data["impostor_fine_from"]) if "impostor_fine_from" in data.files else 0
        model = cls(genuine, hist, None, best, n_gal, per, _topk_from_folder(Path(results_dir)), kind, fine_from)
        model.tail = fit_tail(hist, score=kind, fine_from=fine_from) if hist.sum() >= 1000 else None
        return model

    # -- impostor side (vectorised)
    def _edges_counts(self):
        cache = self.__dict__.setdefault("_cache", {})
        if "edges" not in cache:
            bins = np.flatnonzero(self.impostor_hist)
            cache["edges"] = (hist_edges()[bins].astype(float), self.impostor_hist[bins])
            cache["above"] = np.cumsum(self.impostor_hist[::-1])[::-1]
        return cache["edges"]

    def _above(self) -> np.ndarray:
        self._edges_counts()
        return self.__dict__["_cache"]["above"]

    def max_impostor(self) -> float:
        edges, _ = self._edges_counts()
        return float(edges.max())

    def fmr(self, s) -> np.ndarray:
        s = np.atleast_1d(np.asarray(s, float))
        above = self._above()  # comparisons in bins >= b
        b = exact_bins(score_bin(s.astype(np.float32)), self.score, self.fine_from)
        out = above[b] / above[0]
        if self.tail is not None:
            in_tail = s >= self.tail.u
            if in_tail.any():
                out = np.where(in_tail, self.tail.fmr(np.where(in_tail, s, self.tail.u)), out)
        return out

    def impostor_cdf(self, s):
        """F_i(S) = 1 - FMR(S) (FMR from the tail model above u)."""
        out = 1 - self.fmr(s)
        return float(out[0]) if np.ndim(s) == 0 else out

    def impostor_pdf(self, s):
        s_arr = np.atleast_1d(np.asarray(s, float))
        edges, counts = self._edges_counts()
        n = counts.sum()
        mean = np.average(edges, weights=counts)
        sd = np.sqrt(np.average((edges - mean) ** 2, weights=counts))
        h = max(1.06 * sd * n ** (-0.2), 1e-4)
        cum = np.concatenate([[0], np.cumsum(counts)])
        inside = cum[np.searchsorted(edges, s_arr + h, side="left")] - cum[np.searchsorted(edges, s_arr - h, side="left")]
        out = inside / n / (2 * h)
        if self.tail is not None:
            in_tail = s_arr >= self.tail.u
            out = np.where(in_tail, self.tail.density(np.where(in_tail, s_arr, self.tail.u)), out)
        return float(out[0]) if np.ndim(s) == 0 else out

    def hazard(self, s) -> np.ndarray:
        return -np.log1p(-np.clip(self.fmr(s), 0, 1 - 1e-16))

    @property
    def heterogeneity_data(self) -> HeterogeneityData | None:
        cache = self.__dict__.setdefault("_cache", {})
        if "het" not in cache:
            rows = self.nonmated_topk if self.nonmated_topk is not None else self.best_nonmate
            if rows is None or not self.gallery_size:
                cache["het"] = None
            else:
                cache["het"] = HeterogeneityData(rows, self.hazard, self.gallery_size * self.per_subject)
        return cache["het"]

    @property
    def theta(self) -> ThetaCurve:
        """theta(s): fitted variance of the probes' look-alike propensity at each score."""
        cache = self.__dict__.setdefault("_cache", {})
        if "theta" not in cache:
            het = self.heterogeneity_data
            cache["theta"] = het.fit() if het is not None else ThetaCurve(np.empty(0), np.empty(0))
        return cache["theta"]

    def theta_boot(self, n_boot: int, seed: int = 0) -> list:
        het = self.heterogeneity_data
        if het is None or het.grid.size == 0:
            return [self.theta] * n_boot
        rng = np.random.default_rng(seed + 1)
        w = rng.multinomial(het.n, np.full(het.n, 1 / het.n), size=n_boot).astype(float)
        return het.fit(w)

    def score_range(self) -> tuple[float, float]:
        edges, _ = self._edges_counts()
        return float(min(edges.min(), self.genuine.min())), float(max(edges.max(), self.genuine.max()))


def theta_at(model: "ScoreModel", threshold: float, n_boot: int = 200, seed: int = 0,
             confidence: float = 0.95) -> tuple[float, list[float]] | None:
    """theta (Gamma propensity variance) at one score from the searches' candidate lists, with a
    bootstrap interval over searches (people searched). None without candidate lists."""
    rows = model.nonmated_topk if model.nonmated_topk is not None else model.best_nonmate
    if rows is None or not model.gallery_size:
        return None
    het = HeterogeneityData(rows, model.hazard, model.gallery_size * model.per_subject, grid=[threshold])
    if het.grid.size == 0:
        return None
    point = float(het.fit().values[0])
    rng = np.random.default_rng(seed)
    w = rng.multinomial(het.n, np.full(het.n, 1 / het.n), size=n_boot).astype(float)
    draws = np.array([c.values[0] for c in het.fit(w)])
    a = (1 - confidence) / 2
    return point, [float(np.quantile(draws, a)), float(np.quantile(draws, 1 - a))]


def _topk_from_folder(path: Path) -> np.ndarray | None:
    """Non-mated searches' candidate scores (n x K) from candidates.parquet and searches.parquet."""
    try:
        import pandas as pd
        cand = pd.read_parquet(path / "candidates.parquet", columns=["probe_template_id", "rank", "score"])
        searches = pd.read_parquet(path / "searches.parquet", columns=["template_id", "mated"])
    except Exception:  # noqa: BLE001 - optional: fall back to best non-mate scores only
        return None
    nonmated = searches.loc[~searches["mated"].astype(bool), "template_id"].astype(str)
    cand = cand[cand["probe_template_id"].astype(str).isin(set(nonmated))]
    if cand.empty:
        return None
    k = int(cand["rank"].max())
    table = cand.pivot_table(index="probe_template_id", columns="rank", values="score", aggfunc="first")
    table = table.reindex(columns=range(1, k + 1))
    return table.to_numpy(dtype=float)


def _kde_points(genuine: np.ndarray, limit: int = MAX_KDE_POINTS) -> np.ndarray:
    return genuine if genuine.size <= limit else np.random.default_rng(0).choice(genuine, limit, replace=False)


def gaussian_kde_1d(points: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Gaussian kernel density of ``points`` at ``s``, Scott's bandwidth (``n ** -0.2`` times the
    sample standard deviation), as ``scipy.stats.gaussian_kde`` computes it in one dimension, but
    with elementwise numpy only: scipy's version goes through BLAS and LAPACK, whose last digits
    depend on the machine's BLAS kernel, and every figure here must be the same on any machine."""
    x = np.asarray(points, float)
    h = float(np.std(x, ddof=1)) * x.size ** -0.2
    if not h > 0:
        h = 1e-6
    out = np.empty(s.size)
    for i in range(0, s.size, 256):
        z = (s[i:i + 256, None] - x[None, :]) / h
        out[i:i + 256] = np.exp(-0.5 * z * z).sum(1)
    return out / (x.size * h * np.sqrt(2 * np.pi))


def _genuine_terms(genuine: np.ndarray, s, limit: int = MAX_KDE_POINTS):
    s_arr = np.atleast_1d(np.asarray(s, float))
    sorted_g = np.sort(genuine)
    F = np.searchsorted(sorted_g, s_arr, side="left") / genuine.size
    f = gaussian_kde_1d(_kde_points(genuine, limit), s_arr)
    if np.ndim(s) == 0:
        return float(f[0]), float(F[0])
    return f, F


def posterior_curve(model: ScoreModel, scores, gallery_size: int, prior: float, theta=None,
                    genuine: np.ndarray | None = None, kde_limit: int = MAX_KDE_POINTS) -> np.ndarray:
    """The model's P(top is the mate | S) at each score S (vectorised)."""
    scores = np.asarray(scores, float)
    theta = model.theta if theta is None else theta
    f_g, F_g = _genuine_terms(model.genuine if genuine is None else genuine, scores, kde_limit)
    f_i, F_i = model.impostor_pdf(scores), model.impostor_cdf(scores)
    th = theta(scores) if callable(theta) else theta
    slope = theta.slope(scores) if callable(theta) else 0.0
    return posterior_terms(f_g, F_g, F_i, f_i, gallery_size, prior, th, model.per_subject, slope=slope)


# ----------------------------------------------------------------------------- explain
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
    curve = model.theta
    theta = float(curve(score))
    f_g, F_g = _genuine_terms(model.genuine, score)
    f_i, F_i = float(model.impostor_pdf(score)), float(model.impostor_cdf(score))

    def post(fg, Fg, Fi, fi, th, slope=0.0):
        return float(np.ravel(posterior_terms(fg, Fg, Fi, fi, gallery_size, prior, th, model.per_subject, score,
                                              slope))[0])

    p = post(f_g, F_g, F_i, f_i, theta, float(curve.slope(score)))
    p_ind = post(f_g, F_g, F_i, f_i, 0.0)
    interval, theta_ci = [None, None], [None, None]
    in_tail = model.tail is not None and score >= model.tail.u
    beyond_theta = curve.grid.size > 0 and score > curve.s_top
    a = (1 - confidence) / 2
    if n_boot:
        rng = np.random.default_rng(seed)
        draws, thetas = [], []
        boot_curves = model.theta_boot(n_boot, seed)
        for b in range(n_boot):
            g = rng.choice(model.genuine, model.genuine.size, replace=True)
            bf_g, bF_g = _genuine_terms(g, score, 5000)
            bt = float(boot_curves[b](score))
            bslope = float(boot_curves[b].slope(score))
            thetas.append(bt)
            bf_i, bF_i = f_i, F_i
            if in_tail:
                xi, sig = model.tail.boot_xi[b % model.tail.boot_xi.size], model.tail.boot_sigma[b % model.tail.boot_sigma.size]
                from scipy import stats

                bf_i = float(model.tail.n_exceed / model.tail.n_total * stats.genpareto.pdf(score - model.tail.u, xi, 0, sig))
                bF_i = float(1 - model.tail.fmr(score, xi, sig))
            draws.append(post(bf_g, bF_g, bF_i, bf_i, bt, bslope))
        interval = [float(np.nanquantile(draws, a)), float(np.nanquantile(draws, 1 - a))]
        theta_ci = [float(np.quantile(thetas, a)), float(np.quantile(thetas, 1 - a))]
    if beyond_theta:
        # heterogeneity is not measured this high: anything from independence to the most
        # concentrated pattern seen at lower scores is possible
        worst = float(max(np.max(curve.values), theta_ci[1] or 0.0))
        ends = [post(f_g, F_g, F_i, f_i, 0.0), post(f_g, F_g, F_i, f_i, worst)]
        interval = [min([v for v in [interval[0], *ends] if v is not None]),
                    max([v for v in [interval[1], *ends] if v is not None])]
    reasons = []
    n0 = model.gallery_size
    def logit(x):
        x = min(max(x, 1e-12), 1 - 1e-12)
        return np.log(x / (1 - x))

    if n0 and gallery_size != n0 and (abs(p - p_ind) > MAX_CARRY_DISAGREEMENT
                                      or abs(logit(p) - logit(p_ind)) > np.log(MAX_CARRY_ODDS_RATIO)):
        # carried to another gallery size, the answer depends on how look-alikes concentrate on
        # probes beyond what the audit can see: bracket it by independence and the fitted model
        interval = [min(v for v in (interval[0], p, p_ind) if v is not None),
                    max(v for v in (interval[1], p, p_ind) if v is not None)]
        reasons.append(f"at {gallery_size:,} people (the audit measured {n0:,}) the answer depends on how look-alikes "
                       f"concentrate on some probes: {p:.1%} if as fitted at the audited size, {p_ind:.1%} if they were "
                       "spread evenly, and the audit cannot tell which holds at this size")
    if score > model.max_impostor():
        reasons.append(f"the score is above every impostor score this audit observed ({model.max_impostor():.4g}), "
                       "so how often strangers reach it is extrapolated from a fitted tail")
    if interval[0] is not None and interval[1] - interval[0] > MAX_WIDTH_FOR_POINT:
        reasons.append(f"the {confidence:.0%} interval spans {interval[0]:.0%} to {interval[1]:.0%}")
    fmr = 1 - F_i
    out = {"score": score, "gallery_size": int(gallery_size), "prior": prior,
           "p_top_is_mate": None if reasons else p, "model_value": p, "supported": not reasons,
           "not_supported_because": reasons, "interval": interval, "confidence": confidence,
           "independence_model_value": p_ind,
           "heterogeneity": {"theta": theta, "theta_ci": theta_ci, "audited_gallery_size": model.gallery_size,
                             "templates_per_subject": model.per_subject,
                             "measured_up_to_score": curve.s_top if curve.grid.size else None,
                             "beyond_measured": bool(beyond_theta),
                             "meaning": "variance across probes of the propensity to attract look-alikes at this "
                                        "score (mean 1); 0 = non-mate scores independent across the gallery"},
           "terms": {"genuine_density": f_g, "genuine_below": F_g, "impostor_density": f_i, "impostor_below": F_i},
           "expected_impostors_at_or_above_score": gallery_size * model.per_subject * fmr,
           "assumptions": ASSUMPTIONS}
    out["headline"] = headline(out)
    out["paragraph"] = paragraph(out)
    return out


def headline(out: dict) -> str:
    lo, hi = out["interval"]
    if out["p_top_is_mate"] is not None:
        ci = f" (95% interval {lo:.4f}-{hi:.4f})" if lo is not None else ""
        return f"P(top candidate is the person searched for) = {out['p_top_is_mate']:.4f}{ci}"
    return (f"P(top candidate is the person searched for): not estimable as one number here; "
            f"95% interval {lo:.4f}-{hi:.4f}" if lo is not None else
            "P(top candidate is the person searched for): not estimable here")


def paragraph(out: dict) -> str:
    p, (lo, hi) = out["p_top_is_mate"], out["interval"]
    if out.get("score_kind") == "neg_euclidean":
        shown = f"at distance {-out['score']:.4g} (score {out['score']:.4g})"
    else:
        shown = f"with score {out['score']:.4g}"
    head = (f"Suppose a search of a gallery of {out['gallery_size']:,} people returns a top candidate {shown}, and that before the search there was a {out['prior']:.0%} chance that the person "
            "searched for is in the gallery at all. ")
    if p is not None:
        rng = f" (95% interval {lo:.1%} to {hi:.1%})" if lo is not None else ""
        body = (f"Using the score distributions measured in this audit, the chance that this candidate is that person "
                f"is about {p:.1%}{rng}; otherwise the candidate is someone who merely looks alike to this system. ")
    else:
        rng = f"somewhere between {lo:.1%} and {hi:.1%}" if lo is not None else "not determined"
        body = (f"This audit's data cannot pin down the chance that this candidate is that person: "
                f"{'; '.join(out['not_supported_because'])}. The chance is {rng} (95% interval); no single "
                "figure should be quoted. ")
    exp = out["expected_impostors_at_or_above_score"]
    exp_txt = f"{exp:.3g}" if exp >= 0.001 else f"fewer than 0.001 ({exp:.2g})"
    het = out["heterogeneity"]
    clear = het["theta"] > 0 and (het["theta_ci"][0] is None or het["theta_ci"][0] > 0)
    het_txt = ("This audit shows no clear sign that look-alikes concentrate on some searches at this score. " if not clear else
               "Look-alikes concentrated on some searches in this audit (a few probes attract many high-scoring "
               "strangers, most attract none); the figure accounts for that. ")
    if het["beyond_measured"]:
        het_txt += (f"How look-alikes concentrate was measured only up to score {het['measured_up_to_score']:.4g}; the "
                    "interval covers everything from evenly spread look-alikes to the strongest concentration seen. ")
    assumptions = " ".join(f"({i}) {a}" for i, a in enumerate(out["assumptions"], 1))
    return (head + body +
            f"In a gallery this size, on average about {exp_txt} people who are not the person would "
            + ("be at least this close" if out.get("score_kind") == "neg_euclidean" else "score at least this high")
            + " in a single search. " + het_txt +
            f"The figure rests on these assumptions: {assumptions} "
            "A score alone is not proof of identity: it says how often this system produces such a score for the "
            "right person compared with a stranger.")


# ----------------------------------------------------------------------------- calibration
def calibration_check(res, **kwargs) -> dict | None:
    """:func:`_calibration_check`, never failing an audit: a numerical problem is recorded instead."""
    try:
        return _calibration_check(res, **kwargs)
    except (ValueError, IndexError, FloatingPointError, ZeroDivisionError, np.linalg.LinAlgError) as exc:
        return {"bins": [], "error": f"calibration check not computed: {exc}"}


def _calibration_check(res, *, n_gallery_templates: int | None = None, tail: TailFit | None = None,
                       n_bins: int = 8, n_boot: int = 60, seed: int = 0, confidence: float = 0.95) -> dict | None:
    """The audit's own searches, binned by top score: share whose top candidate was the mate,
    against explain's answer at the audited gallery size (prior = the audit's share of mated
    searches). Also the independence model's answer, for comparison."""
    mated = np.asarray(res.is_mated, bool)
    n_m, n_nm = int(mated.sum()), int((~mated).sum())
    if n_m < 10 or n_nm < 10:
        return None
    model = ScoreModel.from_search(res, tail=tail, n_gallery_templates=n_gallery_templates)
    if model.genuine.size < 2 or model.impostor_hist.sum() < 2:
        return None
    top_is_mate = mated & (np.asarray(res.mate_rank) == 1)
    top = np.where(top_is_mate, res.mate_score, res.best_nonmate).astype(float)
    ok = np.isfinite(top)
    top, top_is_mate = top[ok], top_is_mate[ok]
    prior = n_m / (n_m + n_nm)
    edges = np.unique(np.quantile(top, np.linspace(0, 1, n_bins + 1)))
    if edges.size < 3:
        return None
    which = np.clip(np.searchsorted(edges, top, side="right") - 1, 0, edges.size - 2)
    grid = np.linspace(top.min(), top.max(), 120)
    n = res.gallery_size

    def curve(theta, genuine=None, limit=MAX_KDE_POINTS):
        values = np.nan_to_num(posterior_curve(model, grid, n, prior, theta, genuine, limit), nan=0.0)
        return np.clip(np.interp(top, grid, values), 0, 1)

    def per_bin(values):
        s = np.bincount(which, weights=values, minlength=edges.size - 1)
        c = np.bincount(which, minlength=edges.size - 1)
        return np.where(c > 0, s / np.maximum(c, 1), np.nan)

    pred = per_bin(curve(model.theta))
    pred_ind = per_bin(curve(0.0))
    rng = np.random.default_rng(seed)
    curves = model.theta_boot(n_boot, seed) if n_boot else []
    boot = np.array([per_bin(curve(c, rng.choice(model.genuine, model.genuine.size, replace=True), 2000))
                     for c in curves]) if n_boot else np.empty((0, edges.size - 1))
    a = (1 - confidence) / 2
    rows = []
    for j in range(edges.size - 1):
        inside = which == j
        k, m = int(top_is_mate[inside].sum()), int(inside.sum())
        if m == 0:
            continue
        olo, ohi = clopper_pearson(k, m, confidence)
        plo, phi = (float(np.nanquantile(boot[:, j], a)), float(np.nanquantile(boot[:, j], 1 - a))) if n_boot else (None, None)
        rows.append({"score_low": float(edges[j]), "score_high": float(edges[j + 1]), "searches": m,
                     "top_was_mate": k, "observed": k / m, "observed_ci": [olo, ohi],
                     "explain": float(pred[j]), "explain_ci": [plo, phi],
                     "independence_model": float(pred_ind[j]),
                     "overlap": None if plo is None else bool(plo <= ohi and olo <= phi)})
    th = model.theta
    return {"gallery_size": int(n), "prior": prior, "bins": rows,
            "heterogeneity": {"score": th.grid.tolist(), "theta": th.values.tolist()}
            if th.grid.size else None,
            "bins_overlapping": sum(bool(r["overlap"]) for r in rows),
            "bins_independence_inside": sum(r["observed_ci"][0] <= r["independence_model"] <= r["observed_ci"][1]
                                            for r in rows),
            "rule": "searches binned at quantiles of their top score; observed share with a Clopper-Pearson interval; "
                    "explain's answer averaged over the bin's searches, its interval from a bootstrap over mate scores "
                    "and non-mated searches; prior = the audit's share of mated searches",
            "note": "in-sample: the model was fitted to these same searches; the check tests its structure"}


def explain_from_results(results_dir: str | Path, score: float, gallery_size: int, prior: float = 0.5) -> dict:
    """Library entry point used by ``faceaudit explain``."""
    path = Path(results_dir)
    if not path.is_dir():
        raise InputError("results folder not found", path)
    if not (path / "scores.npz").exists() and (path / "results.json").exists():
        try:
            kind = json.loads((path / "results.json").read_text()).get("input", {}).get("kind")
        except (OSError, ValueError, AttributeError):
            kind = None
        if kind == "black-box candidate lists":
            raise InputError("this is a black-box audit: explain needs the genuine and impostor score "
                             "distributions, which candidate lists do not give (see docs/blackbox.md)", path)
    out = explain(ScoreModel.from_results(path), score, gallery_size, prior=prior)
    results_json = path / "results.json"
    if results_json.exists():
        out["audited"] = json.loads(results_json.read_text()).get("input", {})
        out["score_kind"] = out["audited"].get("score")
        out["paragraph"] = paragraph(out)
    return out


# expected look-alikes per search, with intervals from people: its own module (re-exported here)
from faceaudit.analyses.lookalikes import lookalikes  # noqa: E402,F401

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
density) the impostor mass within +-h of S over 2h (Silverman's h; where the histogram's bins there
are wider than 2h, the window widened outward to the histogram's own thresholds, over its width:
:func:`_density_window`), or above the tail threshold u the generalised Pareto tail.

**The interval covers new people of the same kind** (:class:`PeopleFit`): *people* are
resampled, not searches (enrolled people with their gallery entry and mated searches, and the
people searched but not enrolled with all their searches), and the whole fit is redone in each
resample: the mate-score density (its own bandwidth), the non-mated searches and theta, the
impostor counts and the generalised Pareto tail above the same u. The impostor histogram is one
sum over all comparisons; the comparisons some candidate list shows (the top K non-mates of
every search) are given to their probe person and gallery person, the rest of each bin (deep in
the bulk) to the resample's average comparison. theta is refitted to the resampled probe people
with the gallery as audited (a gallery person drawn twice would add look-alikes in pairs, a
dispersion that belongs to no probe). A results folder that does not say who each search was of
gives no figure for new people, only the interval over its searches and the reason.

**Monotone in the score by construction** (:func:`explain_curves`): everything is computed on one
fixed grid of scores; every resample's curve is projected onto the non-decreasing functions
(pool adjacent violators), so the point and the percentile interval never fall as the score
rises; widenings (beyond the scores where theta was measured, carried to another gallery size)
keep that, a bound being carried along the score where it would fall. The answer at a score is
read off the grid by linear interpolation (non-decreasing too).

Where the data cannot support a number (the score lies above every impostor score the audit
observed, so the impostor density there is extrapolated; the interval is wider than 50
percentage points; the figure is finer than the audit resolves, one in its number of searches
rounded up to a power of ten; too few people) no point estimate is given, only the interval or
a bound (:mod:`faceaudit.report.chance`: "less than 1 in 10,000 (95% upper bound)") and the reason.

:func:`calibration_check` checks the same model out of sample by people: it fits explain on
half of the audit's people and predicts the other half's searches (several random splits),
bins them by top score and says per bin whether the observed share agrees with the prediction
(simultaneously over the bins), so every audit shows whether explain holds for new people.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import special

from auditcore.errors import InputError
from faceaudit.data.reading import read_parquet, reason
from faceaudit.engine.counts import exact_bins, hist_edges, next_exact_bins, score_bin
from faceaudit.metrics.tail import TailFit
from faceaudit.report.chance import chance_text, one_in_text, resolution

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
    term, dG_M/dtheta * slope (g_M kept at least half the fixed-theta density: see below)."""
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
        # where theta falls with the score the second term is negative; a fitted theta curve that
        # falls steeply would make the density negative (G_M decreasing: no distribution at all),
        # so the density is kept at least half the fixed-theta one
        g = np.maximum(base + np.exp(logG) * dlogG * np.asarray(slope, float), base / 2)
        logg = np.log(np.maximum(g, 1e-300))
    return logG, logg


def _density_window(s, h: float, score: str, fine_from: int):
    """The impostor density's window at each score ``s``: [s - h, s + h), width 2h; but where an end
    of it falls in a histogram bin wider than 2h (a folded histogram's coarse bins), such a window
    can hold no bin edge at all and read a density of 0 between the edges (many times too high
    where it holds one, too low where it straddles the fold): there it is widened outward to the
    histogram's own thresholds (the edge of the bin holding s - h, the edge above the bin holding
    s + h) and the density is the mass between them over their distance. Returns (lo, hi, width)."""
    s = np.asarray(s, float)
    edges = hist_edges()

    def bin_of(x):  # (lower edge, next exact edge) of the exact bin holding each x
        b = exact_bins(score_bin(np.asarray(x, np.float32)), score, fine_from)
        return edges[b].astype(float), edges[next_exact_bins(b, score, fine_from)].astype(float)

    (lo_edge, lo_next), (hi_edge, hi_next) = bin_of(s - h), bin_of(s + h)
    wide = ((lo_next - lo_edge) > 2 * h) | ((hi_next - hi_edge) > 2 * h)
    if not wide.any():
        return s - h, s + h, np.full(s.shape, 2 * h)
    lo, hi = np.where(wide, lo_edge, s - h), np.where(wide, hi_next, s + h)
    return lo, hi, np.where(wide, hi - lo, 2 * h)


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
    people: "PeopleData | None" = None  # who each search and candidate was (resampling people, not searches)

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
                   getattr(res, "score", "cosine"), int(getattr(res, "hist_fine_from", 0)), people_from_search(res))

    @classmethod
    def from_results(cls, results_dir: str | Path) -> "ScoreModel":
        folder = Path(results_dir)
        data = _read_scores(folder)
        path = folder / "scores.npz"
        hist = np.zeros(hist_edges().size, dtype=np.int64)
        hist[data["impostor_bin"]] = data["impostor_count"]
        genuine = np.asarray(data["genuine"], float)
        if "mate_score" in data:
            mate = np.asarray(data["mate_score"], float)
            mate = mate[np.isfinite(mate)]
            if mate.size >= 2:
                genuine = mate
        if genuine.size < 2 or hist.sum() < 2:
            raise InputError("too few genuine or impostor scores to explain a score", path)
        best = np.asarray(data["best_nonmate"], float) if "best_nonmate" in data else None
        n_gal = int(data["gallery_size"]) if "gallery_size" in data else None
        per = 1.0
        saved = _saved_results(folder)
        kind = str(_table(saved, "input").get("score", "cosine"))
        if n_gal:
            try:
                per = float(_table(saved, "protocol").get("n_gallery_templates", n_gal)) / n_gal
            except (ValueError, TypeError, OverflowError):
                per = 1.0
            per = per if np.isfinite(per) and per > 0 else 1.0
        fine_from = int(data["impostor_fine_from"]) if "impostor_fine_from" in data else 0
        model = cls(genuine, hist, None, best, n_gal, per, _topk_from_folder(folder), kind, fine_from)
        model.tail = lean_tail(hist, kind, fine_from)  # the maximum-likelihood tail, as the audit's check fits it
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
        if self.tail is not None:  # the tail model above u (closed form: no scipy.stats in an audit)
            in_tail = s >= self.tail.u
            if in_tail.any():
                t = self.tail
                out = np.where(in_tail, t.n_exceed / t.n_total * _gpd_sf(np.where(in_tail, s - t.u, 0.0), t.xi, t.sigma), out)
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
        lo, hi, width = _density_window(s_arr, h, self.score, self.fine_from)
        inside = cum[np.searchsorted(edges, hi, side="left")] - cum[np.searchsorted(edges, lo, side="left")]
        out = inside / n / width
        if self.tail is not None:
            t = self.tail
            in_tail = s_arr >= t.u
            out = np.where(in_tail, t.n_exceed / t.n_total * _gpd_pdf(np.where(in_tail, s_arr - t.u, 0.0), t.xi, t.sigma), out)
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


# --------------------------------------------------------------------- reading a results folder
_SCORE_ARRAYS = {"genuine": True, "impostor_bin": True, "impostor_count": True, "mate_score": False,
                 "best_nonmate": False, "gallery_size": False, "impostor_fine_from": False}  # name: required


def _read_scores(folder: Path) -> dict:
    """The arrays of a results folder's ``scores.npz`` (see :func:`faceaudit.audit.write_results`),
    checked; InputError naming the file for anything else. A file of Python objects is refused
    unread (never unpickled)."""
    path = folder / "scores.npz"
    if not path.exists():
        raise InputError("no scores.npz here; is this a faceaudit results folder?", folder)
    out = {}
    try:
        with np.load(path, allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise InputError("not an .npz archive (numpy.savez); is this a faceaudit results folder?", path)
            for name, required in _SCORE_ARRAYS.items():
                if name in data.files:
                    out[name] = np.asarray(data[name])
                elif required:
                    raise InputError(f"holds no '{name}' array; is this a faceaudit results folder?", path)
    except (InputError, MemoryError):
        raise
    except ValueError as exc:
        if "pickle" in str(exc):
            raise InputError("holds Python objects (pickled data), and faceaudit never unpickles a file", path) from None
        raise InputError(f"cannot read scores ({reason(exc)})", path) from None
    except Exception as exc:  # noqa: BLE001 - a damaged archive fails in many ways (BadZipFile, EOFError, zlib...)
        raise InputError(f"cannot read scores ({reason(exc)})", path) from None
    for name, x in out.items():
        if x.dtype.kind not in ("iu" if name in ("impostor_bin", "impostor_count", "gallery_size",
                                                "impostor_fine_from") else "iuf"):
            raise InputError(f"'{name}' must hold {'integers' if x.dtype.kind not in 'iuf' else 'whole numbers'}, "
                             f"got dtype {x.dtype}", path)
        if name in ("gallery_size", "impostor_fine_from") and x.ndim != 0:
            raise InputError(f"'{name}' must be one number, got shape {x.shape}", path)
        if name not in ("gallery_size", "impostor_fine_from") and x.ndim != 1:
            raise InputError(f"'{name}' must be a list of numbers (1-d), got shape {x.shape}", path)
    n_bins = hist_edges().size
    bins, counts = out["impostor_bin"], out["impostor_count"]
    if bins.shape != counts.shape:
        raise InputError(f"'impostor_bin' and 'impostor_count' differ in length ({bins.size} and {counts.size})", path)
    if bins.size and (bins.min() < 0 or bins.max() >= n_bins or np.isnan(hist_edges()[bins]).any()):
        raise InputError(f"'impostor_bin' holds bins that are not histogram bins (0 to {n_bins - 1} of scores)", path)
    if np.unique(bins).size != bins.size:
        raise InputError("'impostor_bin' lists a bin twice", path)
    if counts.size and (counts.min() < 0 or counts.sum(dtype=float) >= 2.0**62):
        raise InputError("'impostor_count' holds negative or impossibly large counts", path)
    if not np.isfinite(out["genuine"]).all():
        raise InputError("'genuine' holds NaN or infinite scores", path)
    if "gallery_size" in out and out["gallery_size"] < 1:
        raise InputError(f"'gallery_size' must be at least 1, got {int(out['gallery_size'])}", path)
    if "impostor_fine_from" in out and not 0 <= out["impostor_fine_from"] <= n_bins:
        raise InputError(f"'impostor_fine_from' must be a histogram bin (0 to {n_bins}), "
                         f"got {int(out['impostor_fine_from'])}", path)
    return out


def _saved_results(folder: Path) -> dict:
    """The folder's results.json ({} when there is none); InputError when it is damaged."""
    if not (folder / "results.json").exists():
        return {}
    from faceaudit.data.results import load_results
    return load_results(folder)


def _table(saved: dict, key: str) -> dict:
    """``saved[key]`` when it is a table, else {} (what an older or partial results.json lacks)."""
    value = saved.get(key)
    return value if isinstance(value, dict) else {}


def _topk_from_folder(path: Path) -> np.ndarray | None:
    """Non-mated searches' candidate scores (n x K) from candidates.parquet and searches.parquet."""
    if not (path / "candidates.parquet").is_file() or not (path / "searches.parquet").is_file():
        return None
    try:
        cand = read_parquet(path / "candidates.parquet", "candidates", ["probe_template_id", "rank", "score"])
        searches = read_parquet(path / "searches.parquet", "searches", ["template_id", "mated"])
    except InputError:  # optional: fall back to best non-mate scores only
        return None
    from pandas.api import types
    if not (types.is_bool_dtype(searches["mated"]) and types.is_integer_dtype(cand["rank"])
            and types.is_numeric_dtype(cand["score"]) and not types.is_bool_dtype(cand["score"])):
        return None  # not the tables an audit writes: as if there were none
    try:
        nonmated = searches.loc[~searches["mated"].astype(bool), "template_id"].astype(str)
        cand = cand[cand["probe_template_id"].astype(str).isin(set(nonmated))]
    except (ValueError, TypeError):  # text that is not text (bytes of another encoding)
        return None
    if cand.empty or cand["rank"].isna().any() or cand["rank"].min() < 1 or cand["rank"].max() > len(cand):
        return None  # ranks 1..K, each listed: K is at most the number of rows
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


# ----------------------------------------------------------------------------- people
@dataclass
class PeopleData:
    """Who each search and each candidate was, so that *people* can be resampled, not searches.

    Per search (``n``): ``person`` (index into the people), ``mated``, ``mate_score`` (NaN when
    non-mated or not scored), ``top_score`` and ``top_is_mate`` (the audit's own top candidate).
    Candidate lists, ``n x K`` best first: ``cand_score`` (NaN padding), ``cand_person`` (index
    into the people; -1 where the list does not say) and ``cand_is_mate``. ``gallery``: the people
    index of every enrolled subject (``gallery_size`` of them; one never seen in a list or a
    search has an index of its own). ``source``: "people" (the audit names each search's person),
    "searches" (it names none: each search is taken as a person of its own; right for score-level
    simulations, too narrow where people searched several times) or "unknown" (a results folder
    that does not say: no figure for new people)."""

    source: str
    person: np.ndarray
    mated: np.ndarray
    mate_score: np.ndarray
    top_score: np.ndarray
    top_is_mate: np.ndarray
    cand_score: np.ndarray
    cand_person: np.ndarray
    cand_is_mate: np.ndarray
    gallery: np.ndarray
    n_people: int

    @property
    def n(self) -> int:
        return int(self.person.size)

    @property
    def gallery_known(self) -> bool:
        return bool((self.cand_person >= 0).any())

    def counts(self) -> dict:
        """People and searches, as explain reports them."""
        mated_people = np.unique(self.person[self.mated]).size
        other = np.unique(self.person[~self.mated]).size
        return {"searches": self.n, "people_searched_enrolled": int(mated_people),
                "people_searched_not_enrolled": int(other), "gallery_people": int(self.gallery.size),
                "gallery_people_resampled": self.gallery_known}

    def strata(self) -> list[np.ndarray]:
        """Groups of people resampled separately: enrolled people (the gallery, with their mated
        searches), people searched but not enrolled, and (without person ids) mated searchers."""
        enrolled = np.zeros(self.n_people, bool)
        enrolled[self.gallery] = True
        searched = np.zeros(self.n_people, bool)
        searched[self.person] = True
        mated_p = np.zeros(self.n_people, bool)
        mated_p[self.person[self.mated]] = True
        groups = [np.flatnonzero(enrolled), np.flatnonzero(searched & ~enrolled & mated_p),
                  np.flatnonzero(searched & ~enrolled & ~mated_p)]
        return [g for g in groups if g.size]

    def weights(self, n_boot: int, seed: int = 0) -> np.ndarray:
        """``(1 + n_boot) x people`` multiplicities: row 0 all ones (the audit itself), then a
        multinomial resample of each stratum's people (:func:`auditcore.bootstrap.subject_weights`)."""
        from auditcore.bootstrap import subject_weights
        w = np.ones((1 + n_boot, self.n_people))
        if n_boot:
            for i, g in enumerate(self.strata()):
                w[1:, g] = subject_weights(g.size, n_boot, seed=seed * 7919 + i)
        return w

    def as_searches(self) -> "PeopleData":
        """The same searches with each taken as a person of its own and the gallery not resampled
        (the bootstrap over searches that explain used before people were resampled)."""
        n = self.n
        n_gal = self.gallery.size
        return PeopleData("searches", np.arange(n), self.mated, self.mate_score, self.top_score, self.top_is_mate,
                          self.cand_score, np.full(self.cand_person.shape, -1), self.cand_is_mate,
                          n + np.arange(n_gal), n + n_gal)


def _people(subjects, mated, mate_score, best_nonmate, mate_rank, cand_ids, cand_score, gallery_ids,
            gallery_size, source: str) -> PeopleData:
    """PeopleData from per-search arrays; ``subjects`` None: each search a person of its own;
    ``cand_ids`` (n x K subject ids, None where empty) may be None: lists that name nobody."""
    mated = np.asarray(mated, bool)
    n = mated.size
    mate_score = np.asarray(mate_score, float)
    best = np.asarray(best_nonmate, float)
    rank = np.asarray(mate_rank)
    if cand_score is None:
        cand_score = best[:, None]
        cand_ids = None
    cand_score = np.asarray(cand_score, float).reshape(n, -1)
    import pandas as pd
    if subjects is None:
        subj = np.array([f"\0search{i}" for i in range(n)], dtype=object)
    else:
        subj = np.asarray(subjects).astype(str).astype(object)
    cid = None
    if cand_ids is not None:
        cid = np.asarray(cand_ids, dtype=object).reshape(n, -1)
        have = np.array([c is not None and c == c for c in cid.ravel()]).reshape(cid.shape)
        cid = np.where(have, cid.astype(str), None)
    gal = None if gallery_ids is None else np.asarray(gallery_ids).astype(str).astype(object)
    pool = [subj]
    if cid is not None:
        pool.append(cid[cid != None])  # noqa: E711 - object array
    if gal is not None:
        pool.append(gal)
    codes, uniques = pd.factorize(np.concatenate(pool))
    person = codes[:n]
    n_people = len(uniques)
    cand_person = np.full(cand_score.shape, -1, np.int64)
    cand_is_mate = np.zeros(cand_score.shape, bool)
    if cid is not None:
        known = cid != None  # noqa: E711
        cand_person[known] = codes[n:n + int(known.sum())]
        cand_is_mate = known & (cand_person == person[:, None])
    if gal is not None:
        gallery = codes[n + (0 if cid is None else int((cid != None).sum())):]  # noqa: E711
    else:  # the enrolled people seen: in a list, or searched for with a mate (when searches name people)
        seen = np.unique(np.concatenate([cand_person[cand_person >= 0], person[mated] if subjects is not None
                                         else np.empty(0, np.int64)]))
        extra = max(int(gallery_size or 0) - seen.size, 0)
        gallery = np.concatenate([seen, n_people + np.arange(extra)])
        n_people += extra
    gallery = np.unique(gallery)
    top_is_mate = mated & (rank == 1) & np.isfinite(mate_score)
    top = np.where(top_is_mate, mate_score, best)
    return PeopleData(source, person.astype(np.int64), mated, np.where(mated, mate_score, np.nan), top,
                      top_is_mate, cand_score, cand_person, cand_is_mate, gallery.astype(np.int64), int(n_people))


def people_from_search(res) -> PeopleData:
    """From an engine :class:`~faceaudit.engine.counts.SearchResult` (or a score-level namespace
    that names no people: each search is then a person of its own)."""
    subjects = getattr(res, "probe_subjects", None)
    cand_score = getattr(res, "candidates_score", None)
    cand_ids = None
    gallery = getattr(res, "gallery_subjects", None)
    if cand_score is not None and getattr(res, "candidates_subject", None) is not None and gallery is not None:
        idx = np.asarray(res.candidates_subject)
        g = np.asarray(gallery).astype(object)
        cand_ids = np.where(idx >= 0, g[np.maximum(idx, 0)], None)
    return _people(subjects, res.is_mated, res.mate_score, res.best_nonmate, res.mate_rank, cand_ids,
                   cand_score, gallery, getattr(res, "gallery_size", None),
                   "people" if subjects is not None else "searches")


def people_from_folder(folder: str | Path, model: "ScoreModel") -> PeopleData:
    """From a results folder's ``searches.parquet`` (each search's person) and
    ``candidates.parquet`` (each candidate's person); without them, the model's own arrays with
    ``source = "unknown"`` (no figure for new people)."""
    import pandas as pd
    folder = Path(folder)
    try:
        s = pd.read_parquet(folder / "searches.parquet",
                            columns=["template_id", "subject_id", "mated", "best_nonmate_score", "mate_score", "mate_rank"])
        mated = s["mated"].to_numpy(bool)
        cand_score = cand_ids = None
        if (folder / "candidates.parquet").is_file():
            try:
                c = pd.read_parquet(folder / "candidates.parquet",
                                    columns=["probe_template_id", "rank", "candidate_subject_id", "score"])
                row = pd.Index(s["template_id"].astype(str)).get_indexer(c["probe_template_id"].astype(str))
                rank = c["rank"].to_numpy(np.int64)
                ok = (row >= 0) & (rank >= 1)
                k = int(rank[ok].max()) if ok.any() else 0
                if k:
                    cand_score = np.full((len(s), k), np.nan)
                    cand_ids = np.full((len(s), k), None, dtype=object)
                    cand_score[row[ok], rank[ok] - 1] = c["score"].to_numpy(float)[ok]
                    cand_ids[row[ok], rank[ok] - 1] = c["candidate_subject_id"].astype(str).to_numpy(object)[ok]
            except (OSError, ValueError, KeyError, TypeError, ImportError):
                cand_score = cand_ids = None
        return _people(s["subject_id"].to_numpy(), mated, s["mate_score"].to_numpy(float),
                       s["best_nonmate_score"].to_numpy(float), s["mate_rank"].to_numpy(np.int64),
                       cand_ids, cand_score, None, model.gallery_size, "people")
    except (OSError, ValueError, KeyError, TypeError, ImportError):
        return people_from_model(model, "unknown")


def people_from_model(model: "ScoreModel", source: str = "searches") -> PeopleData:
    """From a model's own arrays (mate scores; non-mated searches' lists or best non-mates): each
    search a person of its own."""
    g = np.asarray(model.genuine, float)
    lists = model.nonmated_topk if model.nonmated_topk is not None else (
        None if model.best_nonmate is None else np.asarray(model.best_nonmate, float)[:, None])
    lists = np.empty((0, 1)) if lists is None else np.asarray(lists, float)
    k = lists.shape[1]
    n_m, n_nm = g.size, lists.shape[0]
    best = np.concatenate([np.full(n_m, np.nan), np.nanmax(np.where(np.isfinite(lists), lists, -np.inf), axis=1)
                           if n_nm else np.empty(0)])
    cand = np.concatenate([np.full((n_m, k), np.nan), lists])
    mated = np.r_[np.ones(n_m, bool), np.zeros(n_nm, bool)]
    return _people(None, mated, np.r_[g, np.full(n_nm, np.nan)], best, np.r_[np.zeros(n_m, int), np.zeros(n_nm, int)],
                   None, cand, None, model.gallery_size, source)


def _gpd_sf(y, xi, sigma):
    """Generalised Pareto survival function (location 0), elementwise; closed form (no scipy.stats)."""
    y = np.maximum(np.asarray(y, float), 0.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        z = 1 + xi * y / sigma
        small = np.abs(xi) < 1e-9
        out = np.where(small, np.exp(-y / sigma), np.where(z > 0, np.exp(-np.log(np.where(z > 0, z, 1.0)) / np.where(small, 1.0, xi)), 0.0))
    return out


def _gpd_pdf(y, xi, sigma):
    y = np.maximum(np.asarray(y, float), 0.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        z = 1 + xi * y / sigma
        small = np.abs(xi) < 1e-9
        logz = np.log(np.where(z > 0, z, 1.0))
        out = np.where(small, np.exp(-y / sigma), np.where(z > 0, np.exp(-(1 / np.where(small, 1.0, xi) + 1) * logz), 0.0))
    return out / sigma


def fit_gpd(x: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood generalised Pareto (location 0) of exceedances ``x`` with per-row
    weights ``counts`` (``rows x len(x)``): one fit per row, vectorised; no scipy.stats.

    The profile likelihood in ``t = xi / sigma`` (Grimshaw 1993): ``xi(t) = mean log(1 + t x)``,
    ``l(t) = -n log(xi(t) / t) - n - n xi(t)``, maximised on a grid of ``log(1 + t x_max)`` and
    refined by golden-section search. The same likelihood as ``scipy.stats.genpareto.fit(x,
    floc=0)`` (tested: equal to 1e-3 of the parameters)."""
    x = np.asarray(x, float)
    c = np.atleast_2d(np.asarray(counts, float))
    n = c.sum(1)
    xmax = float(x.max()) if x.size else 0.0
    if xmax <= 0 or not np.all(n > 0):
        return np.zeros(len(c)), np.full(len(c), max(float(np.average(x, weights=c[0]) if n[0] > 0 else 1e-3), 1e-6))
    mean = (c * x).sum(1) / n

    def prof(z):
        """Profile log-likelihood at z = log(1 + t x_max), z of shape rows x m."""
        out = np.empty(z.shape)
        for j in range(z.shape[1]):
            t = np.expm1(z[:, j]) / xmax
            small = np.abs(t) < 1e-12
            ts = np.where(small, 1e-12, t)
            xi = (np.log1p(ts[:, None] * x) * c).sum(1) / n
            ratio = np.where(small, mean, xi / ts)
            with np.errstate(divide="ignore", invalid="ignore"):
                ll = -n * (np.log(ratio) + 1 + np.where(small, 0.0, xi))
            out[:, j] = np.where(np.isfinite(ll) & (ratio > 0), ll, -np.inf)
        return out

    grid = np.linspace(-4.0, 4.0, 33)
    ll = prof(np.broadcast_to(grid, (len(c), grid.size)))
    best = np.argmax(ll, axis=1)
    a = grid[np.maximum(best - 1, 0)]
    b = grid[np.minimum(best + 1, grid.size - 1)]
    g = (np.sqrt(5) - 1) / 2
    for _ in range(30):
        x1, x2 = b - g * (b - a), a + g * (b - a)
        f = prof(np.stack([x1, x2], 1))
        left = f[:, 0] >= f[:, 1]
        b = np.where(left, x2, b)
        a = np.where(left, a, x1)
    z = (a + b) / 2
    t = np.expm1(z) / xmax
    small = np.abs(t) < 1e-12
    ts = np.where(small, 1.0, t)
    xi = np.where(small, 0.0, (np.log1p(ts[:, None] * x) * c).sum(1) / n)
    sigma = np.where(small, mean, xi / ts)
    return xi, sigma


def lean_tail(hist: np.ndarray, score: str = "cosine", fine_from: int = 0) -> TailFit | None:
    """The generalised Pareto tail that :meth:`ScoreModel.from_results` fits (the same threshold u
    and the same likelihood as :func:`faceaudit.metrics.tail.fit_tail`), by :func:`fit_gpd`, with
    no parameter bootstrap and without loading scipy.stats: what an audit's calibration check uses,
    so that the check tests the model ``faceaudit explain`` uses. None under 1,000 comparisons."""
    from faceaudit.metrics.tail import exceedances_from_hist
    hist = np.asarray(hist)
    if hist.sum() < 1000:
        return None
    u, mids, counts, n_u = exceedances_from_hist(hist, score=score, fine_from=fine_from)
    xi, sigma = fit_gpd(np.maximum(mids - u, 0.0), counts[None, :].astype(float))
    return TailFit(float(u), float(xi[0]), float(sigma[0]), int(n_u), int(hist.sum()), float("nan"),
                   np.array([xi[0]]), np.array([sigma[0]]))


def _theta_scores(lists: np.ndarray, n_grid: int = 16, min_exceed: int = 40) -> np.ndarray:
    """The scores at which theta is fitted: :class:`HeterogeneityData`'s rule."""
    lists = np.where(np.isfinite(lists), lists, -np.inf)
    pooled = np.sort(lists[np.isfinite(lists)])
    best = lists.max(1) if lists.size else np.empty(0)
    best = best[np.isfinite(best)]
    if pooled.size < min_exceed or best.size < 20:
        return np.empty(0)
    lo = float(np.quantile(best, 0.3))
    hi = float(pooled[-min_exceed])
    return np.unique(np.linspace(lo, max(hi, lo), n_grid))


def _pava(y: np.ndarray) -> np.ndarray:
    """The closest non-decreasing sequence to ``y`` in least squares (pool adjacent violators)."""
    if np.all(np.diff(y) >= 0):
        return y
    vals, wts = [], []
    for v in y.tolist():
        vals.append(v)
        wts.append(1)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            w = wts[-2] + wts[-1]
            vals[-2] = (vals[-2] * wts[-2] + vals[-1] * wts[-1]) / w
            wts[-2] = w
            vals.pop()
            wts.pop()
    return np.repeat(vals, wts)


def _monotone(rows: np.ndarray) -> np.ndarray:
    """Each row projected onto the non-decreasing sequences (pool adjacent violators: the least-
    squares projection; a row that is already non-decreasing is unchanged). NaN is first carried
    from the nearest defined value on the left (0 before the first)."""
    x = np.array(rows, float, ndmin=2)
    bad = ~np.isfinite(x)
    if bad.any():
        idx = np.where(~bad, np.arange(x.shape[1]), 0)
        np.maximum.accumulate(idx, axis=1, out=idx)
        x = np.where(bad, np.take_along_axis(np.where(bad, 0.0, x), idx, axis=1), x)
        x = np.where(bad & (np.cumsum(~bad, axis=1) == 0), 0.0, x)
    return np.stack([_pava(r) for r in x])


class PeopleFit:
    """explain's whole fit, redone for any weights on people, on one fixed grid of scores.

    ``fit(probe_w, gallery_w)`` (rows x people; row 0 of explain's is all ones) gives per row and
    grid score: the mate-score density f_g (Gaussian kernel, Scott's bandwidth of the row's own
    weighted scores, linearly binned on the grid) and distribution F_g; the impostor distribution
    F_i and density f_i; theta(s) and its slope, refitted to the row's non-mated searches with the
    row's gallery weights and FMR; the generalised Pareto tail refitted above the same u.

    The impostor histogram is one sum over every comparison: only the comparisons that some
    candidate list shows (non-mates in the top K of a search) can be given to a probe person and a
    gallery person. Those are weighted by the two people's weights; the rest of each bin (deep in
    the bulk, where no list reaches) by the row's average pair weight."""

    def __init__(self, model: "ScoreModel", people: PeopleData, grid: np.ndarray):
        self.model, self.people, self.grid = model, people, np.asarray(grid, float)
        self._cache = {}
        p = people
        self.per = float(model.per_subject)
        self.n_gallery = int(p.gallery.size)
        # mate scores
        ok = p.mated & np.isfinite(p.mate_score)
        self.mate_x, self.mate_person = p.mate_score[ok], p.person[ok]
        step = self.grid[1] - self.grid[0]
        pos = (self.mate_x - self.grid[0]) / step
        self.mate_j = np.clip(np.floor(pos).astype(np.int64), 0, self.grid.size - 2)
        self.mate_t = np.clip(pos - self.mate_j, 0.0, 1.0)
        self.mate_below = np.searchsorted(self.grid, self.mate_x, side="right")  # x < grid[k] iff k >= this
        # impostor histogram
        hist = np.asarray(model.impostor_hist)
        nz = np.flatnonzero(hist)
        self.edges = hist_edges()[nz].astype(float)
        counts = hist[nz].astype(float)
        self.n_total = float(counts.sum())
        self.above_all = np.concatenate([np.cumsum(counts[::-1])[::-1], [0.0]])
        # comparisons the lists show: non-mates, by probe person and gallery person
        cs, cp = p.cand_score, p.cand_person
        show = np.isfinite(cs) & ~p.cand_is_mate
        rows, _ = np.nonzero(show)
        a_bins = exact_bins(score_bin(cs[show].astype(np.float32)), model.score, model.fine_from)
        self.a_edge = hist_edges()[a_bins].astype(float)
        self.a_probe = p.person[rows]
        self.a_gallery = cp[show]
        self.search_person = p.person
        # node sets: FMR at each grid score (counts at or above its exact edge), the impostor
        # density's window (+-h, Silverman's h of the whole histogram, widened to the histogram's
        # thresholds where its bins are wider than 2h: _density_window), the theta scores
        mean = np.average(self.edges, weights=counts)
        sd = np.sqrt(np.average((self.edges - mean) ** 2, weights=counts))
        self.h_i = max(1.06 * sd * self.n_total ** (-0.2), 1e-4)
        g32 = self.grid.astype(np.float32)
        fmr_nodes = hist_edges()[exact_bins(score_bin(g32), model.score, model.fine_from)].astype(float)
        # theta: non-mated searches' lists
        nm = ~p.mated
        lists = np.where(np.isfinite(cs[nm]), cs[nm], -np.inf)
        order = np.argsort(-lists, axis=1, kind="stable")
        self.lists = np.take_along_axis(lists, order, axis=1)
        self.list_person = np.take_along_axis(cp[nm], order, axis=1)
        self.list_searcher = p.person[nm]
        self.theta_s = _theta_scores(self.lists)
        th_nodes = (hist_edges()[exact_bins(score_bin(self.theta_s.astype(np.float32)), model.score, model.fine_from)]
                    .astype(float) if self.theta_s.size else np.empty(0))
        self.K = self.lists.shape[1]
        self.j_theta = (self.lists[:, :, None] >= self.theta_s[None, None, :]).sum(1)  # n_nm x G
        f_lo, f_hi, self.f_width = _density_window(self.grid, self.h_i, model.score, model.fine_from)
        self.nodes = {"fmr": fmr_nodes, "lo": f_lo, "hi": f_hi, "theta": th_nodes}
        allnodes = np.concatenate(list(self.nodes.values()))
        self.node_order = np.argsort(allnodes, kind="stable")
        self.sorted_nodes = allnodes[self.node_order]
        self.a_J = np.searchsorted(self.sorted_nodes, self.a_edge, side="right")  # counted at sorted nodes < J
        above_nodes = self.above_all[np.searchsorted(self.edges, allnodes, side="left")]
        a_unit = self._attributed(np.ones((1, self.a_J.size)))[0]
        self.resid_nodes = np.maximum(above_nodes - a_unit, 0.0)
        # theta's own FMR: probe people resampled, the gallery as audited (see _theta)
        self.th_order = np.argsort(th_nodes, kind="stable")
        self.th_J = np.searchsorted(th_nodes[self.th_order], self.a_edge, side="right")
        self.th_resid = self.resid_nodes[-th_nodes.size:] if th_nodes.size else np.empty(0)
        self.a_total = float(self.a_J.size)
        # the tail: bins at or above u, as the tail fit reads them
        self.tail = model.tail
        if self.tail is not None:
            tb = nz[self.edges >= self.tail.u]
            self.tail_edges = hist_edges()[tb].astype(float)
            nxt = hist_edges()[next_exact_bins(tb, model.score, model.fine_from)].astype(float)
            self.tail_x = np.maximum((self.tail_edges + nxt) / 2, self.tail.u) - self.tail.u
            in_tail = self.a_edge >= self.tail.u
            self.a_tail = np.where(in_tail, np.searchsorted(self.tail_edges, self.a_edge), -1)
            unit = np.bincount(self.a_tail[in_tail], minlength=tb.size).astype(float)
            self.tail_resid = np.maximum(hist[tb].astype(float) - unit, 0.0)

    # -- pieces
    def _attributed(self, pair_w: np.ndarray, J=None, order=None) -> np.ndarray:
        """Weighted count of shown comparisons at or above each node (rows x nodes, original order)."""
        J = self.a_J if J is None else J
        order = self.node_order if order is None else order
        n_nodes = order.size
        out = np.empty((len(pair_w), n_nodes))
        key = ("idx", id(J), n_nodes)
        if key not in self._cache:
            self._cache[key] = (np.arange(16)[:, None] * (n_nodes + 1) + J[None, :]).ravel()
        full = self._cache[key]
        for i in range(0, len(pair_w), 16):
            w = pair_w[i:i + 16]
            idx = full[:len(w) * J.size]
            c = np.bincount(idx, weights=w.ravel(), minlength=len(w) * (n_nodes + 1)).reshape(len(w), n_nodes + 1)
            above = c[:, ::-1].cumsum(1)[:, ::-1]  # at node k: sum over J > k
            res = np.empty((len(w), n_nodes))
            res[:, order] = above[:, 1:]
            out[i:i + 16] = res
        return out

    def fit(self, probe_w: np.ndarray, gallery_w: np.ndarray, point_tail: bool = False,
            theta_gallery: np.ndarray | None = None) -> dict:
        """Per-row arrays on the grid (see the class doc). ``point_tail``: row 0 keeps the model's
        own tail fit (explain's point estimate) instead of refitting it. ``theta_gallery`` (a mask
        over people): theta counts only the listed candidates of those gallery people, against a
        gallery of their number (the calibration check's fit on some of the gallery people)."""
        probe_w = np.atleast_2d(np.asarray(probe_w, float))
        gallery_w = np.atleast_2d(np.asarray(gallery_w, float))
        R, G = len(probe_w), self.grid.size
        grid = self.grid
        # ---- mate scores: weighted, linearly binned Gaussian kernel density; exact distribution
        w = probe_w[:, self.mate_person]
        wsum = w.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = (w * self.mate_x).sum(1) / wsum
            var = (w * (self.mate_x - mean[:, None]) ** 2).sum(1) / np.maximum(wsum - 1, 1e-12)
        hg = np.sqrt(np.maximum(var, 0)) * np.maximum(wsum, 1) ** -0.2
        hg = np.where(hg > 0, hg, 1e-6)
        step = grid[1] - grid[0]
        off = (np.arange(R)[:, None] * (G + 1))
        binned = (np.bincount((off + self.mate_j).ravel(), (w * (1 - self.mate_t)).ravel(), R * (G + 1))
                  + np.bincount((off + self.mate_j + 1).ravel(), (w * self.mate_t).ravel(), R * (G + 1))).reshape(R, G + 1)[:, :G]
        f_g = np.empty((R, G))
        for r in range(R):
            L = int(min(np.ceil(6 * hg[r] / step), G))
            k = np.exp(-0.5 * (np.arange(-L, L + 1) * step / hg[r]) ** 2)
            # the kernel is symmetric: f_g[i] = sum_d binned[i + d] k[L + d]; an elementwise sum,
            # not np.convolve, whose float64 inner products go through BLAS (ddot) and so end in
            # digits that depend on the machine's BLAS kernel
            windows = np.lib.stride_tricks.sliding_window_view(np.pad(binned[r], L), 2 * L + 1)
            f_g[r] = (windows * k).sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            f_g = f_g / (wsum[:, None] * hg[:, None] * np.sqrt(2 * np.pi))
            F_g = (np.bincount((off + self.mate_below).ravel(), w.ravel(), R * (G + 1)).reshape(R, G + 1)
                   .cumsum(1)[:, :G]) / wsum[:, None]
        # ---- impostor side
        gw = gallery_w
        v_tot = gw[:, self.people.gallery].sum(1)
        gbar = v_tot / max(self.n_gallery, 1)
        s_w = probe_w[:, self.search_person].sum(1) / max(self.people.n, 1)
        omega = s_w * gbar  # average weight of a comparison the lists do not show
        n_nodes = self.sorted_nodes.size
        att = np.empty((R, n_nodes))
        pair_sum = np.empty(R)
        nth = self.th_order.size
        att_p = np.empty((R, nth))
        pair_sum_p = np.empty(R)
        tw = np.zeros((R, self.tail_x.size)) if self.tail is not None else None
        tw_p = np.zeros((R, self.tail_x.size)) if self.tail is not None else None
        sel = self.a_tail >= 0 if self.tail is not None else None
        step_rows = max(1, int(4e6 // max(self.a_J.size, 1)))
        for i in range(0, R, step_rows):
            j = slice(i, i + step_rows)
            pw_p = probe_w[j][:, self.a_probe]
            pw = pw_p * np.where(self.a_gallery >= 0, gw[j][:, np.maximum(self.a_gallery, 0)], gbar[j, None])
            att[j] = self._attributed(pw)
            pair_sum[j] = pw.sum(1)
            pair_sum_p[j] = pw_p.sum(1)
            if nth:
                att_p[j] = self._attributed(pw_p, self.th_J, self.th_order)
            if tw is not None:
                rr = pw.shape[0]
                nt = self.tail_x.size
                idx = (np.arange(rr)[:, None] * nt + self.a_tail[sel][None, :]).ravel()
                tw[j] = np.bincount(idx, pw[:, sel].ravel(), rr * nt).reshape(rr, nt)
                tw_p[j] = np.bincount(idx, pw_p[:, sel].ravel(), rr * nt).reshape(rr, nt)
        counts = att + self.resid_nodes[None, :] * omega[:, None]
        n_b = pair_sum + (self.n_total - self.a_total) * omega
        n_p = pair_sum_p + (self.n_total - self.a_total) * s_w
        sizes = [v.size for v in self.nodes.values()]
        c_fmr, c_lo, c_hi, c_th = np.split(counts, np.cumsum(sizes)[:-1], axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            fmr = c_fmr / n_b[:, None]
            f_i = (c_lo - c_hi) / n_b[:, None] / self.f_width[None, :]
            fmr_th = (att_p + self.th_resid[None, :] * s_w[:, None]) / n_p[:, None]
        xi = sig = nu = None
        if self.tail is not None:
            tw += self.tail_resid[None, :] * omega[:, None]
            xi, sig = fit_gpd(self.tail_x, tw)
            with np.errstate(invalid="ignore", divide="ignore"):  # a resample with no impostor mass: NaN, left out
                nu = tw.sum(1) / n_b                            # downstream as the fmr above (no warning)
            if point_tail:
                xi[0], sig[0], nu[0] = self.tail.xi, self.tail.sigma, self.tail.n_exceed / self.tail.n_total
            u = self.tail.u
            in_t = grid >= u
            y = np.where(in_t, grid - u, 0.0)[None, :]
            fmr = np.where(in_t[None, :], nu[:, None] * _gpd_sf(y, xi[:, None], sig[:, None]), fmr)
            f_i = np.where(in_t[None, :], nu[:, None] * _gpd_pdf(y, xi[:, None], sig[:, None]), f_i)
            in_th = self.theta_s >= u
            if in_th.any():
                tw_p += self.tail_resid[None, :] * s_w[:, None]
                xi_p, sig_p = fit_gpd(self.tail_x, tw_p)
                nu_p = tw_p.sum(1) / n_p
                if point_tail:
                    xi_p[0], sig_p[0], nu_p[0] = xi[0], sig[0], nu[0]
                yt = np.where(in_th, self.theta_s - u, 0.0)[None, :]
                fmr_th = np.where(in_th[None, :], nu_p[:, None] * _gpd_sf(yt, xi_p[:, None], sig_p[:, None]), fmr_th)
        F_i = 1 - np.clip(fmr, 0, 1)
        n_theta = self.n_gallery if theta_gallery is None else int(theta_gallery[self.people.gallery].sum())
        theta, slope = self._theta(probe_w, fmr_th, np.full(R, float(n_theta)), theta_gallery)
        return {"f_g": f_g, "F_g": F_g, "F_i": F_i, "f_i": np.maximum(f_i, 0), "theta": theta, "slope": slope,
                "theta_at_scores": self._cache.get("last_theta"), "tail_xi": xi, "tail_sigma": sig}

    def _theta(self, probe_w, fmr_th, v_tot, gallery_mask=None):
        """theta(s) per row (negative binomial, censored at the list length; :class:`HeterogeneityData`)
        on the grid, and its slope; ``gallery_mask``: count only those gallery people's candidates."""
        R, G = len(probe_w), self.grid.size
        S = self.theta_s
        if S.size == 0:
            self._cache["last_theta"] = np.zeros((R, 0))
            return np.zeros((R, G)), np.zeros((R, G))
        K = self.K
        nS = S.size
        # each non-mated search's count at each theta score (censored when its whole list is at or
        # above it), as it was audited: the gallery is not resampled here, since a person drawn
        # twice into a gallery would add look-alikes in pairs (overdispersion that is no probe's)
        key = "theta_codes" if gallery_mask is None else ("theta_codes", np.packbits(gallery_mask).tobytes())
        if key not in self._cache:
            if gallery_mask is None:
                cnt = np.minimum(self.j_theta, K)
            else:  # a search's count among those people only; censored as before (its whole list at or above)
                mine = (self.list_person >= 0) & gallery_mask[np.maximum(self.list_person, 0)]
                cnt = ((self.lists[:, :, None] >= self.theta_s[None, None, :]) & mine[:, :, None]).sum(1)
            code = (np.arange(nS)[None, :] * (K + 1) + cnt) * 2 + (self.j_theta >= K)
            people, inv = np.unique(self.list_searcher, return_inverse=True)
            n_codes = nS * (K + 1) * 2
            per_person = np.zeros((people.size, n_codes))
            np.add.at(per_person, (np.repeat(inv, nS), code.ravel()), 1.0)
            if gallery_mask is not None and len(self._cache) > 64:
                for k in [k for k in self._cache if isinstance(k, tuple) and k[0] == "theta_codes"]:
                    del self._cache[k]
            self._cache[key] = (people, per_person)
        people, per_person = self._cache[key]
        hist = (probe_w[:, people] @ per_person).reshape(R, nS, K + 1, 2)  # whole numbers: exact in any order
        H = -np.log1p(-np.clip(fmr_th, 0, 1 - 1e-16))
        mu = np.maximum(v_tot[:, None] * self.per * H, 1e-300)  # R x nS
        th = THETA_GRID[1:]
        cc = np.arange(K + 1)
        # log pmf: Poisson (theta 0) and negative binomial with r = 1/theta, p = 1/(1 + theta mu)
        lp = np.empty((R, nS, THETA_GRID.size, K + 1))
        lp[:, :, 0, :] = special.xlogy(cc, mu[..., None]) - special.gammaln(cc + 1) - mu[..., None]
        r_ = 1 / th
        tm = th[None, None, :] * mu[..., None]  # R x nS x T
        const = special.gammaln(r_[:, None] + cc) - special.gammaln(cc + 1) - special.gammaln(r_)[:, None]
        lp[:, :, 1:, :] = (const[None, None] - (r_[None, None, :] * np.log1p(tm))[..., None]
                           + cc * (np.log(tm) - np.log1p(tm))[..., None])
        lp = np.where(np.isfinite(lp), lp, -1e300)
        ll = (hist[..., 0][:, :, None, :] * lp).sum(-1)
        cens_any = hist[..., 1].sum(0) > 0  # (nS, K+1)
        if cens_any.any():
            gi, ci = np.nonzero(cens_any)
            m = mu[:, gi]  # R x P
            sf0 = special.pdtrc(ci[None, :] - 1, m)  # P(X >= c) for Poisson
            pp = 1 / (1 + th[None, None, :] * m[..., None])
            sfn = special.betainc(np.maximum(ci, 1e-300)[None, :, None], r_[None, None, :], 1 - pp)
            sfn = np.where(ci[None, :, None] == 0, 1.0, sfn)
            sf = np.concatenate([np.where(ci == 0, 1.0, sf0)[..., None], sfn], axis=2)  # R x P x T
            with np.errstate(divide="ignore"):
                lsf = np.where(sf > 0, np.log(np.where(sf > 0, sf, 1.0)), -1e300)
            wc = hist[:, gi, ci, 1]  # R x P
            np.add.at(ll, (slice(None), gi), wc[..., None] * lsf)
        vals = THETA_GRID[np.argmax(ll, axis=2)]  # R x nS
        vals = np.stack([_smooth(v) for v in vals])
        self._cache["last_theta"] = vals
        theta = np.stack([np.interp(self.grid, S, v) for v in vals])
        if nS < 2:
            return theta, np.zeros((R, G))
        d = np.diff(vals, axis=1) / np.diff(S)
        i = np.clip(np.searchsorted(S, self.grid, side="right") - 1, 0, nS - 2)
        inside = (self.grid >= S[0]) & (self.grid <= S[-1])
        return theta, np.where(inside[None, :], d[:, i], 0.0)

    def posterior(self, fit: dict, gallery_size: float, prior: float, theta=None, slope=None) -> np.ndarray:
        """P(top is the mate | S) per row and grid score (not yet made monotone)."""
        th = fit["theta"] if theta is None else theta
        sl = fit["slope"] if slope is None else slope
        with np.errstate(all="ignore"):
            p = posterior_terms(fit["f_g"], fit["F_g"], fit["F_i"], fit["f_i"], gallery_size, prior, th, self.per,
                                slope=sl)
        # above the (resampled) mate scores the kernel density runs out (exactly 0 beyond 6
        # bandwidths): no answer there but the last one (made monotone, it carries on)
        mid = np.median(self.mate_x) if self.mate_x.size else -np.inf  # a resample's own top may be lower
        top = max(self.mate_x.max() if self.mate_x.size else -np.inf, self.edges.max())
        # above every score the audit saw, the answer is the one at the highest (the model's
        # extrapolated tails, mate and impostor, say nothing there)
        return np.where(((fit["f_g"] <= 0) & (self.grid > mid)[None, :]) | (self.grid > top)[None, :], np.nan, p)


def explain_grid(model: "ScoreModel") -> np.ndarray:
    """The fixed grid on which explain is computed: the scores it accepts (the audit's range and a
    quarter beyond its top), at least 1,024 points and fine enough for the mate-score kernel."""
    lo, hi = model.score_range()
    top = hi + 0.25 * (hi - lo)
    g = np.asarray(model.genuine, float)
    h = float(np.std(g, ddof=1)) * g.size ** -0.2 if g.size > 1 else (top - lo) / 100
    n = int(np.clip(np.ceil((top - lo) / max(h / 5, 1e-12)) + 1, 1024, 8192))
    return np.linspace(lo, top, n)


# ----------------------------------------------------------------------------- explain
MIN_PEOPLE = 10  # fewer people searched (enrolled, or not) than this: no figure for new people

INTERVAL_COVERS = (
    "new people of the same kind as this audit's, searched against a gallery of people of the same kind: "
    "the people searched and the enrolled people were resampled (mate scores, non-mated searches, look-alike "
    "concentration and the impostor tail all refitted each time). It does not cover people of another kind "
    "(another population, image quality or capture), another system, or a wrong prior; carried to another gallery "
    "size it also rests on the look-alike model holding there.")


def _people_of(model: ScoreModel, resample: str) -> PeopleData:
    if resample not in ("people", "searches"):
        raise InputError(f"resample must be 'people' or 'searches', got {resample!r}")
    people = model.people if model.people is not None else people_from_model(model)
    return people.as_searches() if resample == "searches" else people


def _people_fit(model: ScoreModel, n_boot: int, seed: int, resample: str):
    """The fit on every resample of people (row 0: the audit itself), cached on the model."""
    cache = model.__dict__.setdefault("_cache", {})
    key = ("people_fit", resample, int(n_boot), int(seed))
    if key not in cache:
        people = _people_of(model, resample)
        pf = PeopleFit(model, people, explain_grid(model))
        w = people.weights(n_boot, seed)
        cache[key] = (pf, pf.fit(w, w, point_tail=True))
    return cache[key]


def explain_curves(model: ScoreModel, gallery_size: float, prior: float = 0.5, *, n_boot: int = 200, seed: int = 0,
                   confidence: float = 0.95, resample: str = "people") -> dict:
    """explain's answer at every score of its fixed grid (:func:`explain_grid`), non-decreasing in
    the score by construction: each resample's curve is made monotone (:func:`_monotone`), the
    point is the audit's own (row 0), the interval the percentiles of the resamples' curves,
    widened where the look-alike model cannot be told from independence (beyond the scores where
    theta was measured; carried to another gallery size); where that widening makes an end fall
    as the score rises, the end is carried from the lower score (the lower end's running maximum
    from the left, the upper end's running minimum from the right: the truth never decreases in
    the score, so a bound at one score holds beyond it). ``resample``: "people" (probe and gallery people) or "searches" (each search
    a person of its own, the gallery fixed: what explain did before)."""
    cache = model.__dict__.setdefault("_cache", {})
    key = ("curves", resample, int(n_boot), int(seed), float(gallery_size), float(prior), float(confidence))
    if key in cache:
        return cache[key]
    pf, fit = _people_fit(model, n_boot, seed, resample)
    rows = _monotone(pf.posterior(fit, gallery_size, prior))
    point = rows[0]
    a = (1 - confidence) / 2
    if n_boot:
        lo, hi = np.nanquantile(rows[1:], a, axis=0), np.nanquantile(rows[1:], 1 - a, axis=0)
    else:
        lo, hi = point.copy(), point.copy()
    zeros = np.zeros((1, pf.grid.size))
    ind = _monotone(pf.posterior({k: v[:1] if isinstance(v, np.ndarray) and v.ndim == 2 else v for k, v in fit.items()},
                                 gallery_size, prior, zeros, zeros))[0]
    s_top = float(pf.theta_s[-1]) if pf.theta_s.size else np.inf
    beyond = pf.grid > s_top
    theta_rows = fit["theta_at_scores"]
    worst = 0.0
    if theta_rows is not None and theta_rows.size:
        worst = float(max(theta_rows[0].max(), np.quantile(theta_rows.max(1), 1 - a)))
    if beyond.any():
        one = {k: v[:1] if isinstance(v, np.ndarray) and v.ndim == 2 else v for k, v in fit.items()}
        strong = _monotone(pf.posterior(one, gallery_size, prior, np.full_like(zeros, worst), zeros))[0]
        lo = np.where(beyond, np.fmin(lo, np.fmin(ind, strong)), lo)
        hi = np.where(beyond, np.fmax(hi, np.fmax(ind, strong)), hi)
    n0 = model.gallery_size
    carry = np.zeros(pf.grid.size, bool)
    if n0 and gallery_size != n0:
        def logit(x):
            x = np.clip(x, 1e-12, 1 - 1e-12)
            return np.log(x / (1 - x))
        carry = (np.abs(point - ind) > MAX_CARRY_DISAGREEMENT) | (np.abs(logit(point) - logit(ind)) > np.log(MAX_CARRY_ODDS_RATIO))
        lo = np.where(carry, np.fmin(lo, np.fmin(point, ind)), lo)
        hi = np.where(carry, np.fmax(hi, np.fmax(point, ind)), hi)
        # where the look-alike law matters, its shape beyond the audited size is not measured: for
        # any law of the probes' propensity, P(no look-alike among M) = E[(1 - q)^M] lies between
        # independence (Jensen) and its value at the audited size (look-alikes all on the same
        # searches), so the answer lies between independence at this size and the answer at the
        # audited size (the interval there). The band spans both (see INTERVAL_COVERS)
        if n_boot:
            audited = explain_curves(model, n0, prior, n_boot=n_boot, seed=seed, confidence=confidence,
                                     resample=resample)
            if gallery_size > n0:
                hi = np.where(carry, np.fmax(hi, audited["high"]), hi)
            else:
                lo = np.where(carry, np.fmin(lo, audited["low"]), lo)
    # the truth never decreases with the score, so a lower bound at one score bounds every higher
    # score too, and an upper bound every lower one: the running maximum of the lower end from the
    # left and the running minimum of the upper end from the right (where a widening above made an
    # end fall), then each end moved to the point where the point lies beyond it
    lo = np.fmin(np.fmax.accumulate(lo), point)
    hi = np.fmax(np.fmin.accumulate(hi[::-1])[::-1], point)
    out = {"grid": pf.grid, "point": point, "low": lo, "high": hi, "independence": ind, "carry": carry,
           "theta": fit["theta"], "s_top": s_top, "worst_theta": worst, "people": pf.people, "fit": pf}
    if sum(1 for k in cache if k[0] == "curves") >= 16:  # a few gallery sizes and priors at a time
        for k in [k for k in cache if k[0] == "curves"]:
            del cache[k]
    cache[key] = out
    return out


def explain(model: ScoreModel | str | Path, score: float, gallery_size: int, *, prior: float = 0.5,
            n_boot: int = 200, seed: int = 0, confidence: float = 0.95, resample: str = "people") -> dict:
    """How likely a top candidate at ``score`` from a gallery of ``gallery_size`` is the person.

    The answer and its interval come from :func:`explain_curves` (non-decreasing in the score);
    the interval covers new people of the same kind (``INTERVAL_COVERS``)."""
    folder = None
    if not isinstance(model, ScoreModel):
        folder = Path(model)
        model = ScoreModel.from_results(folder)
    if not np.isfinite(score):
        raise InputError(f"score must be a finite number, got {score}")
    if gallery_size < 1:
        raise InputError(f"gallery size must be at least 1, got {gallery_size}")
    if not 0 < prior < 1:
        raise InputError(f"prior must be strictly between 0 and 1, got {prior}")
    lo_s, hi_s = model.score_range()
    if score < lo_s or score > hi_s + 0.25 * (hi_s - lo_s):
        if model.score == "neg_euclidean":  # in the audit's unit: a distance
            raise InputError(f"distance {-score:g} is outside the range this audit observed ({-hi_s:.4g} to {-lo_s:.4g})")
        raise InputError(f"score {score:g} is outside the range this audit observed ({lo_s:.4g} to {hi_s:.4g})")
    if folder is not None and model.people is None:
        model.people = people_from_folder(folder, model)
    c = explain_curves(model, gallery_size, prior, n_boot=n_boot, seed=seed, confidence=confidence, resample=resample)
    grid = c["grid"]

    def at(y):
        return float(np.interp(score, grid, y))

    p, p_ind = at(c["point"]), at(c["independence"])
    interval = [at(c["low"]), at(c["high"])] if n_boot else [None, None]
    theta_rows = c["theta"]
    thetas = np.array([np.interp(score, grid, r) for r in theta_rows])
    theta = float(thetas[0])
    a = (1 - confidence) / 2
    theta_ci = [float(np.quantile(thetas[1:], a)), float(np.quantile(thetas[1:], 1 - a))] if n_boot else [None, None]
    beyond_theta = bool(np.isfinite(c["s_top"]) and score > c["s_top"])
    people = c["people"]
    counts = people.counts()
    res_floor = resolution(people.n)
    reasons = []
    n0 = model.gallery_size

    def logit(x):
        x = min(max(x, 1e-12), 1 - 1e-12)
        return np.log(x / (1 - x))

    if people.source == "unknown":
        reasons.append("this results folder does not say who each search was of (its searches.parquet is missing or "
                       "unreadable), so how much the answer varies from one set of people to another cannot be measured")
    elif resample == "people" and any(0 < counts[k] < MIN_PEOPLE or (k == "people_searched_enrolled" and counts[k] == 0)
                                      for k in ("people_searched_enrolled", "people_searched_not_enrolled")):
        reasons.append(f"the audit searched too few people ({counts['people_searched_enrolled']} enrolled, "
                       f"{counts['people_searched_not_enrolled']} not enrolled; at least {MIN_PEOPLE} of each are needed) "
                       "to say how the answer varies between people")
    if n0 and gallery_size != n0 and (abs(p - p_ind) > MAX_CARRY_DISAGREEMENT
                                      or abs(logit(p) - logit(p_ind)) > np.log(MAX_CARRY_ODDS_RATIO)):
        reasons.append(f"at {gallery_size:,} people (the audit measured {n0:,}) the answer depends on how look-alikes "
                       f"concentrate on some probes: {_pct_text(p, res_floor)} if as fitted at the audited size, "
                       f"{_pct_text(p_ind, res_floor)} if they were spread evenly, and the audit cannot tell which holds "
                       "at this size")
    if score > model.max_impostor():
        reasons.append((f"the distance is below every impostor distance this audit observed ({-model.max_impostor():.4g}), "
                        if model.score == "neg_euclidean" else
                        f"the score is above every impostor score this audit observed ({model.max_impostor():.4g}), ")
                       + "so how often strangers come this close is extrapolated from a fitted tail")
    if interval[0] is not None and interval[1] - interval[0] > MAX_WIDTH_FOR_POINT:
        reasons.append(f"the {confidence:.0%} interval spans {interval[0]:.0%} to {interval[1]:.0%}")
    if interval[0] is not None and (p < res_floor or p > 1 - res_floor):
        reasons.append(f"the figure is finer than this audit can resolve: with {people.n:,} searches it cannot tell a "
                       f"chance below {one_in_text(res_floor)} from one of {one_in_text(res_floor)} "
                       "(or above the same distance from certainty)")
    F_i = float(model.impostor_cdf(score))
    fmr = 1 - F_i
    supported = not reasons
    out = {"score": score, "gallery_size": int(gallery_size), "prior": prior,
           "p_top_is_mate": p if supported else None, "model_value": p, "supported": supported,
           "not_supported_because": reasons, "interval": interval, "confidence": confidence,
           "resolution": res_floor,
           "display": chance_text(p if supported else None, *interval, res_floor) if interval[0] is not None
           else ("not determined" if not supported else f"{p:.3g}"),
           "interval_covers": INTERVAL_COVERS if resample == "people" and people.source == "people" else
           ("this audit's searches, each taken as a different person" if people.source != "unknown"
            else "this audit's searches only (the folder does not say who they were of)"),
           "resample": resample, "people": {**counts, "source": people.source},
           "independence_model_value": p_ind,
           "heterogeneity": {"theta": theta, "theta_ci": theta_ci, "audited_gallery_size": model.gallery_size,
                             "templates_per_subject": model.per_subject,
                             "measured_up_to_score": c["s_top"] if np.isfinite(c["s_top"]) else None,
                             "beyond_measured": beyond_theta,
                             "meaning": "variance across probes of the propensity to attract look-alikes at this "
                                        "score (mean 1); 0 = non-mate scores independent across the gallery"},
           "monotone": "the answer and both interval ends never decrease as the score rises (computed on a fixed grid "
                       "of scores and made monotone)",
           "expected_impostors_at_or_above_score": gallery_size * model.per_subject * fmr,
           "assumptions": ASSUMPTIONS}
    if folder is not None:  # what this audit's own check found (results folders written since it is out of sample)
        cal = _saved_calibration(folder)
        if isinstance(cal, dict) and "calibrated_for_new_people" in cal:
            out["calibration_check"] = {"calibrated_for_new_people": cal.get("calibrated_for_new_people"),
                                        "verdict": cal.get("verdict")}
        small = [w for w in (_readable_results(folder) or {}).get("warnings") or []
                 if isinstance(w, dict) and w.get("code") == "small_audit"]
        if small:  # the audit's own warning travels with every answer drawn from it
            out["warnings"] = small
    out["statement"] = statement(out)
    out["headline"] = headline(out)
    out["paragraph"] = paragraph(out)
    return out


def _readable_results(folder: Path) -> dict | None:
    """The results folder's results.json, or None where it is missing or damaged (what explain
    adds from it is optional; :func:`_saved_results` is the strict reader)."""
    if not (folder / "results.json").is_file():
        return None
    try:
        from faceaudit.data.results import load_results
        saved = load_results(folder)
    except (InputError, OSError, ValueError):
        return None
    return saved if isinstance(saved, dict) else None


def _saved_calibration(folder: Path) -> dict | None:
    """The results folder's ``explain_calibration`` (None without a readable results.json)."""
    return (_readable_results(folder) or {}).get("explain_calibration")


def _pct_text(x: float, r: float) -> str:
    if x < r:
        return f"less than {one_in_text(r)}"
    if x > 1 - r:
        return f"more than {100 * (1 - r):.{max(0, -int(np.floor(np.log10(r))) - 2)}f}%"
    return f"{x:.1%}"


def statement(out: dict) -> str:
    """How explain's answer is stated: "figure" (a value with its interval), "bound" (below or
    above what the audit resolves: a one-sided bound), "range" (no single figure; the interval),
    "cannot_say" (no single figure and an interval wider than half of [0, 1], the rule of
    :mod:`faceaudit.report.bands`), or "n/a" (no interval computed)."""
    lo, hi = out["interval"]
    r = out.get("resolution", 1e-4)
    if lo is None:
        return "figure" if out["p_top_is_mate"] is not None else "n/a"
    if hi < r or lo > 1 - r:
        return "bound"
    if out["p_top_is_mate"] is None and hi - lo > MAX_WIDTH_FOR_POINT:
        return "cannot_say"
    if out["p_top_is_mate"] is not None:
        return "figure"
    if lo < r or hi > 1 - r:  # no single figure and an end beyond the resolution: written as a bound
        return "bound"
    return "range"


def _wide_text(lo: float, hi: float, r: float) -> str:
    return (f"these data cannot say (the 95% interval runs from {_pct_text(lo, r)} to {_pct_text(hi, r)}, "
            "most of the possible range)")


def headline(out: dict) -> str:
    """One line, in percentages (never fractions beside percentages)."""
    lo, hi = out["interval"]
    r = out.get("resolution", 1e-4)
    name = "P(top candidate is the person searched for)"
    kind = out.get("statement") or statement(out)
    if lo is None:
        return f"{name} = {out['p_top_is_mate']:.1%}" if out["p_top_is_mate"] is not None else f"{name}: not estimable here"
    if kind == "cannot_say":
        return f"{name}: {_wide_text(lo, hi, r)}"
    text = chance_text(out["p_top_is_mate"], lo, hi, r, style="percent")
    if kind == "figure":
        over = ("new people of the same kind" if out.get("resample", "people") == "people"
                and out.get("people", {}).get("source") == "people" else "this audit's searches")
        return f"{name} = {text}; the interval covers {over}"
    if kind == "bound" and (hi < r or lo > 1 - r or (out["model_value"] < r and lo < r)
                            or (out["model_value"] > 1 - r and hi > 1 - r)):
        return f"{name}: {text}"
    return f"{name}: not estimable as one number here; {text}"


def paragraph(out: dict) -> str:
    p, (lo, hi) = out["p_top_is_mate"], out["interval"]
    r = out.get("resolution", 1e-4)
    if out.get("score_kind") == "neg_euclidean":
        shown = f"at distance {-out['score']:.4g}"
    else:
        shown = f"with score {out['score']:.4g}"
    head = (f"Suppose a search of a gallery of {out['gallery_size']:,} people returns a top candidate {shown}, and that before the search there was a {out['prior']:.0%} chance that the person "
            "searched for is in the gallery at all. ")
    covers = out.get("interval_covers", "")
    if p is not None:
        rng = chance_text(p, lo, hi, r, style="percent") if lo is not None else f"about {p:.1%}"
        body = (f"Using the score distributions measured in this audit, the chance that this candidate is that person "
                f"is {rng}; otherwise the candidate is someone who merely looks alike to this system. "
                + (f"The interval covers {covers} " if covers else ""))
    elif (out.get("statement") or statement(out)) == "cannot_say":
        body = (f"These data cannot say how likely this candidate is to be that person: "
                f"{'; '.join(out['not_supported_because'])}. The 95% interval runs from {_pct_text(lo, r)} to "
                f"{_pct_text(hi, r)}, most of the possible range; no single figure should be quoted. "
                + (f"The interval covers {covers} " if covers else ""))
    else:
        rng = chance_text(None, lo, hi, r, style="percent") if lo is not None else "not determined"
        body = (f"This audit's data cannot pin down the chance that this candidate is that person: "
                f"{'; '.join(out['not_supported_because'])}. The chance is {rng}; no single "
                "figure should be quoted. " + (f"The interval covers {covers} " if covers else ""))
    exp = out["expected_impostors_at_or_above_score"]
    exp_txt = f"about {exp:.3g}" if exp >= 0.001 else "fewer than 0.001"
    het = out["heterogeneity"]
    clear = het["theta"] > 0 and (het["theta_ci"][0] is None or het["theta_ci"][0] > 0)
    het_txt = ("This audit shows no clear sign that look-alikes concentrate on some searches at this score. " if not clear else
               "Look-alikes concentrated on some searches in this audit (a few probes attract many high-scoring "
               "strangers, most attract none); the figure accounts for that. ")
    if het["beyond_measured"]:
        het_txt += ("How look-alikes concentrate was measured only "
                    + (f"down to distance {-het['measured_up_to_score']:.4g}" if out.get("score_kind") == "neg_euclidean"
                       else f"up to score {het['measured_up_to_score']:.4g}")
                    + "; the interval covers everything from evenly spread look-alikes to the strongest concentration seen. ")
    assumptions = " ".join(f"({i}) {a}" for i, a in enumerate(out["assumptions"], 1))
    if out.get("score_kind") == "neg_euclidean":  # one unit per audit: distances
        het_txt = het_txt.replace("at this score", "at this distance")
        assumptions = assumptions.replace("Above the highest impostor score observed",
                                          "Closer than the closest impostor distance observed")
    for w in out.get("warnings") or []:
        body += f"Caution: {w['text']} "
    check = out.get("calibration_check") or {}
    if check.get("calibrated_for_new_people") is False:
        body += ("Caution: this audit's own check found explain NOT calibrated for new people on this data (fitted on "
                 "some of its people, it missed what happened to the others), so the figure and its interval may be off "
                 "for new searches. ")
    return (head + body +
            f"In a gallery this size, on average {exp_txt} people who are not the person would "
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
                       n_bins: int = 8, n_boot: int = 30, n_splits: int = 2, seed: int = 0,
                       confidence: float = 0.95) -> dict | None:
    """explain checked on people it was not fitted on (see :func:`calibration_against`).

    The model is built as ``faceaudit explain`` builds it from the results folder (the same mate
    scores, candidate lists and impostor histogram; the generalised Pareto tail above the same u
    when there are 1,000 impostor comparisons, by :func:`lean_tail`). The people searched are split
    in two at random (enrolled and not enrolled separately), ``n_splits`` times; each half's
    searches are predicted by the whole explain fit redone on the other half (the gallery as
    audited), so every search gets an out-of-sample prediction in every split, averaged over the
    splits. Searches are binned at quantiles of their top score; per bin: the share whose top
    candidate was the person (Korn-Graubard interval, people as clusters), explain's prediction
    (interval: percentiles over a bootstrap of people that redoes the splits' fits), and whether
    they agree: the difference's interval (MOVER) at the simultaneous level over the bins
    (Bonferroni), so that a model that holds fails no bin in at least 95% of audits."""
    mated = np.asarray(res.is_mated, bool)
    n_m, n_nm = int(mated.sum()), int((~mated).sum())
    if n_m < 10 or n_nm < 10:
        return None
    model = ScoreModel.from_search(res, tail=tail, n_gallery_templates=n_gallery_templates)
    if model.genuine.size < 2 or model.impostor_hist.sum() < 2:
        return None
    if tail is None:
        model.tail = lean_tail(model.impostor_hist, model.score, model.fine_from)
    return calibration_against(model, None, n_bins=n_bins, n_boot=n_boot, n_splits=n_splits, seed=seed,
                               confidence=confidence)


def calibration_against(model: ScoreModel, held_out=None, *, gallery_size: int | None = None, n_bins: int = 8,
                        n_boot: int = 30, n_splits: int = 2, seed: int = 0, confidence: float = 0.95) -> dict | None:
    """Does explain's answer hold for people it was not fitted on?

    ``held_out`` None: the model's own people, split in halves ``n_splits`` times (each half
    predicted by the fit on the other). ``held_out`` a :class:`PeopleData` (another audit's searches,
    e.g. of another population at the same gallery size): predicted by the fit on all of the
    model's people, at ``gallery_size`` (that audit's; default the model's). See
    :func:`_calibration_check` for the rule."""
    from auditcore.intervals import korn_graubard
    own = model.people if model.people is not None else people_from_model(model)
    test = own if held_out is None else held_out
    n = int(gallery_size or model.gallery_size or own.gallery.size)
    prior = float(test.mated.mean())
    pf = PeopleFit(model, own, explain_grid(model))
    grid = pf.grid
    w_own = own.weights(n_boot, seed)
    two_way = held_out is None and own.gallery_known
    if held_out is None:
        # observations: (split, search) pairs, each search once per split (weight 1 / splits)
        rng = np.random.default_rng(seed + 17)
        strata = own.strata()
        idx, tops, ys, preds, wts, sizes = [], [], [], [], [], []
        for _ in range(n_splits):
            side = np.zeros(own.n_people, bool)
            for g in strata:
                side[rng.permutation(g)[: g.size // 2]] = True
            for half in (side, ~side):
                test_people = ~half
                if two_way:  # fitted on these probe and gallery people; checked on the others, among themselves
                    fit = pf.fit(w_own * half[None, :], w_own * half[None, :], theta_gallery=half)
                    top, y, ok = _outcomes_among(own, test_people)
                    size = int(test_people[own.gallery].sum())
                else:  # lists that name nobody: the gallery as audited
                    fit = pf.fit(w_own * half[None, :], w_own)
                    top, y, ok = own.top_score, own.top_is_mate, np.isfinite(own.top_score)
                    size = n
                out = np.flatnonzero(test_people[own.person] & ok)
                curves = _monotone(pf.posterior(fit, size, prior))
                idx.append(out)
                tops.append(top[out])
                ys.append(y[out])
                preds.append(np.stack([np.interp(top[out], grid, c) for c in curves]))
                wts.append(np.full(out.size, 1.0 / n_splits))
                sizes.append(np.full(out.size, size))
        idx, top, y = np.concatenate(idx), np.concatenate(tops), np.concatenate(ys).astype(bool)
        pred, wt, size_of = np.concatenate(preds, axis=1), np.concatenate(wts), np.concatenate(sizes)
        w_test = w_own[:, test.person[idx]] * wt[None, :]
    else:
        ok = np.isfinite(test.top_score)
        idx = np.flatnonzero(ok)
        top, y = test.top_score[idx], test.top_is_mate[idx].astype(bool)
        fit = pf.fit(w_own, w_own, point_tail=True)
        curves = _monotone(pf.posterior(fit, n, prior))
        pred = np.stack([np.interp(top, grid, c) for c in curves])
        wt = np.ones(idx.size)
        size_of = np.full(idx.size, n)
        w_test = np.concatenate([np.ones((1, test.n)), test.weights(n_boot, seed + 1)[1:][:, test.person]])[:, idx]
    if idx.size < 20:
        return None
    edges = np.unique(np.quantile(top, np.linspace(0, 1, n_bins + 1)))
    if edges.size < 3:
        return None
    nb = edges.size - 1
    which = np.clip(np.searchsorted(edges, top, side="right") - 1, 0, nb - 1)
    n_checked = round(float(np.mean(size_of)))
    full = pf.fit(np.ones((1, own.n_people)), np.ones((1, own.n_people)), point_tail=True)
    zeros = np.zeros((1, grid.size))
    ind_curve = _monotone(pf.posterior(full, n_checked, prior, zeros, zeros))[0]
    off = (np.arange(len(w_test))[:, None] * nb + which[None, :]).ravel()
    tot = np.bincount(off, w_test.ravel(), len(w_test) * nb).reshape(-1, nb)
    with np.errstate(invalid="ignore", divide="ignore"):
        obs = np.bincount(off, (w_test * y).ravel(), len(w_test) * nb).reshape(-1, nb) / tot
        prd = np.bincount(off, (w_test * pred).ravel(), len(w_test) * nb).reshape(-1, nb) / tot
    diff = obs - prd
    a = (1 - confidence) / 2
    z = float(special.ndtri(1 - a / nb))
    # observed: people as clusters (Korn-Graubard); a search seen in several splits counts once in all
    pid, pinv = np.unique(test.person[idx], return_inverse=True)
    cells = pinv * nb + which
    e = np.bincount(cells, wt * y, pid.size * nb).reshape(pid.size, nb)
    t = np.bincount(cells, wt, pid.size * nb).reshape(pid.size, nb)
    kg = korn_graubard(e, t, confidence)
    kg_sim = korn_graubard(e, t, 1 - 2 * a / nb)  # simultaneous over the bins (Bonferroni)
    ind_pred = np.interp(top, grid, ind_curve)
    rows = []
    for j in range(nb):
        inside = which == j
        m_w = float(wt[inside].sum())
        if m_w == 0:
            continue
        k_w = float((wt * y)[inside].sum())
        o = k_w / m_w
        olo, ohi = float(kg["low"][j]), float(kg["high"][j])
        if n_boot:
            plo, phi = float(np.nanquantile(prd[1:, j], a)), float(np.nanquantile(prd[1:, j], 1 - a))
            # the difference's interval (MOVER, Newcombe): the observed share's Korn-Graubard limits
            # and the prediction's bootstrap spread, both at the simultaneous level
            sp = float(np.nanstd(prd[1:, j], ddof=1))
            d = float(diff[0, j])
            slo, shi = float(kg_sim["low"][j]), float(kg_sim["high"][j])
            dci = [d - float(np.hypot(o - slo, z * sp)), d + float(np.hypot(shi - o, z * sp))]
            agree = bool(dci[0] <= 0 <= dci[1])
        else:
            plo = phi = None
            dci = [None, None]
            agree = None
        rows.append({"score_low": float(edges[j]), "score_high": float(edges[j + 1]), "searches": round(m_w),
                     "top_was_mate": round(k_w), "observed": o, "observed_ci": [olo, ohi],
                     "people": int((t[:, j] > 0).sum()),
                     "explain": float(prd[0, j]), "explain_ci": [plo, phi],
                     "difference": float(diff[0, j]), "difference_ci_simultaneous": dci,
                     "agree": agree,
                     "independence_model": float(ind_pred[inside].mean()),
                     "overlap": None if plo is None else bool(plo <= ohi and olo <= phi)})
    disagree = [r for r in rows if r["agree"] is False]
    agreeing = [r for r in rows if r["agree"]]
    th = full["theta_at_scores"]
    whom = ("people (probe and gallery) it was not fitted on" if two_way else
            "people searched it was not fitted on" if held_out is None else "another audit's people")
    if not n_boot:
        verdict = "explain's calibration for new people was not checked (no resamples)"
    elif not disagree:
        verdict = (f"explain held for {whom}: in all {len(rows)} score bins the share of searches whose top candidate "
                   "was the person agrees with what explain predicted")
    else:
        verdict = (f"explain is NOT calibrated for new people on this data: checked on {whom}, in {len(disagree)} of "
                   f"{len(rows)} score bins the share of searches whose top candidate was the person differs from what "
                   "explain predicted (" + "; ".join(
                       f"top {'distance' if model.score == 'neg_euclidean' else 'score'} "
                       + (f"{-r['score_high']:.4g} to {-r['score_low']:.4g}" if model.score == "neg_euclidean"
                          else f"{r['score_low']:.4g} to {r['score_high']:.4g}")
                       + f": observed {r['observed']:.1%}, predicted {r['explain']:.1%}" for r in disagree)
                   + f"); it agreed in {len(agreeing)}. Do not rely on explain's figures for new people from this audit")
    if two_way:
        rule_split = ("all people (the enrolled people, who are both gallery entries and searchers, and the people "
                      "searched but not enrolled, separately) split in halves at random")
        rule_fit = ("each half's searches re-scored against that half's gallery only (top candidate and whether it "
                    "was the person, from the candidate lists) and predicted by explain fitted on the other half's "
                    "people alone (their searches, their gallery entries' impostor comparisons and look-alike counts) "
                    "at the half gallery's size")
        note = ("out of sample by people on both sides: each prediction is checked on searches of people, against a "
                "gallery of people, that its fit never saw; only the bulk of the impostor histogram (comparisons no "
                "candidate list shows, far below any top score) cannot be split by person and enters every fit")
    elif held_out is None:
        rule_split = "the people searched split in halves at random (enrolled and not enrolled separately)"
        rule_fit = ("each half's searches predicted by explain fitted on the other half (the gallery as audited: the "
                    "candidate lists do not say who each candidate was)")
        note = ("out of sample by probe people only: the candidate lists do not name gallery people, so the gallery "
                "is the audit's in every fit")
    else:
        rule_split, rule_fit, note = "another audit's searches", "predicted by explain fitted on all of this audit's people", (
            "out of sample: another audit's people")
    return {"gallery_size": int(n_checked), "prior": prior, "bins": rows,
            "heterogeneity": {"score": pf.theta_s.tolist(), "theta": th[0].tolist()} if pf.theta_s.size else None,
            "bins_overlapping": sum(bool(r["overlap"]) for r in rows),
            "bins_agreeing": len(agreeing),
            "bins_agreeing_list": [[r["score_low"], r["score_high"]] for r in agreeing],
            "calibrated_for_new_people": None if not n_boot else not disagree,
            "verdict": verdict,
            "bins_independence_inside": sum(r["observed_ci"][0] <= r["independence_model"] <= r["observed_ci"][1]
                                            for r in rows),
            "out_of_sample": ("people" if two_way else "probe people") if held_out is None else "another audit",
            "held_out": ("probe and gallery people" if two_way else "probe people") if held_out is None
            else "another audit",
            "observations": int(idx.size),
            "splits": n_splits if held_out is None else None, "resamples": n_boot,
            "people": {**own.counts(), "source": own.source},
            "rule": (f"{rule_split}, {n_splits if held_out is None else 1} time(s); {rule_fit} (the same model and fit "
                     "as faceaudit explain: mate-score density, look-alike concentration, impostor tail); every (split, "
                     "search) pair an observation weighted 1/splits; observations binned at quantiles of their top "
                     "score; observed share with a Korn-Graubard interval (people as clusters); predicted share's "
                     f"interval from a bootstrap of people ({n_boot} resamples) that redoes every fit; a bin agrees when "
                     "the interval of the difference (MOVER: the observed share's Korn-Graubard limits and "
                     f"{z:.2f} bootstrap standard deviations of the prediction) holds 0, 95% simultaneously over the "
                     f"{nb} bins; prior = the share of mated searches"),
            "note": note}


def _outcomes_among(people: PeopleData, members: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each search's top score and whether its top candidate was the person, had the gallery held
    only the gallery people in ``members`` (a mask over people), from the candidate lists: the
    best listed non-mate among them against the mate's score (a tie goes to the non-mate). ``ok``
    is False where the lists cannot say (no listed non-mate among them and the list full: the best
    one lies below the list, and a mated search's mate does not beat the list's lowest score)."""
    cs, cp = people.cand_score, people.cand_person
    finite = np.isfinite(cs)
    mine = finite & (cp >= 0) & members[np.maximum(cp, 0)] & ~people.cand_is_mate
    best = np.max(np.where(mine, cs, -np.inf), axis=1)
    full = finite.all(1)  # K candidates listed: more may lie below the list
    lowest = np.min(np.where(finite, cs, np.inf), axis=1)
    unseen = ~mine.any(1) & full
    mate = people.mate_score
    mated = people.mated & np.isfinite(mate)
    with np.errstate(invalid="ignore"):
        y = mated & (mate > best) & (~unseen | (mate > lowest))
    top = np.where(y, mate, best)
    ok = (people.mated == mated) & np.where(unseen, y, np.isfinite(top))
    return top, y, ok


def parse_count(text, what: str) -> int:
    """A count as people write it: ``1000000``, ``1e6``, ``1,000,000``, ``1_000_000``; a whole
    number of at least 1 (``1.5`` or ``0`` is one line)."""
    if isinstance(text, (int, np.integer)) and not isinstance(text, bool):
        value = float(text)
    else:
        s = str(text).strip().replace(",", "").replace("_", "")
        try:
            value = float(s)
        except ValueError:
            raise InputError(f"{what}: cannot read {str(text)[:40]!r} as a count (write e.g. 1000000, 1e6 or "
                             "1,000,000)") from None
    if not np.isfinite(value) or value != np.floor(value):
        raise InputError(f"{what} must be a whole number of people, got {str(text)[:40]}")
    if value < 1:
        raise InputError(f"{what} must be at least 1, got {str(text)[:40]}")
    if value > 1e15:
        raise InputError(f"{what} must be at most 1e15, got {str(text)[:40]}")
    return int(value)


def score_of(kind: str, score: float | None, distance: float | None) -> float:
    """The score explain works in, from what the user gave in the audit's own unit: a distance for
    an audit that compares by distance (``neg_euclidean``: the score is minus the distance)."""
    if score is not None and distance is not None:
        raise InputError("give the top candidate's --score or its --distance, not both")
    if score is None and distance is None:
        raise InputError("give the top candidate's --score" + (" or, on this distance audit, its --distance"
                                                                if kind == "neg_euclidean" else ""))
    given = score if score is not None else distance
    if not np.isfinite(given):
        raise InputError(f"{'--score' if score is not None else '--distance'} must be a finite number, got {given}")
    if distance is not None:
        if kind != "neg_euclidean":
            raise InputError(f"--distance is for audits that compare by distance (--score neg_euclidean); this audit's "
                             f"score is {kind}: give the top candidate's --score")
        if distance < 0:
            raise InputError(f"a distance is at least 0, got --distance {distance:g}")
        return -float(distance)
    if kind == "neg_euclidean" and score > 0:
        raise InputError(f"this audit compares by distance (its score, neg_euclidean, is minus the distance, so never "
                         f"above 0): a distance of {score:g} is --distance {score:g} (or --score {-score:g})")
    return float(score)


def explain_from_results(results_dir: str | Path, score: float | None, gallery_size, prior: float = 0.5, *,
                         distance: float | None = None) -> dict:
    """Library entry point used by ``faceaudit explain``: ``score`` or, on a distance audit,
    ``distance``; ``gallery_size`` a count (``1e6`` allowed, see :func:`parse_count`)."""
    path = Path(results_dir)
    if not path.is_dir():
        raise InputError("results folder not found" if not path.exists() else
                         "expected a results folder written by faceaudit, got a file", path)
    saved = _saved_results(path)
    if not (path / "scores.npz").exists() and _table(saved, "input").get("kind") == "black-box candidate lists":
        raise InputError("this is a black-box audit: explain needs the genuine and impostor score "
                         "distributions, which candidate lists do not give (see docs/blackbox.md)", path)
    kind = str(_table(saved, "input").get("score", "cosine"))
    score = score_of(kind, score, distance)
    gallery_size = parse_count(gallery_size, "--gallery-size")
    out = explain(path, score, gallery_size, prior=prior)  # the folder: its people are read too
    out["score_kind"] = _table(saved, "input").get("score")  # None where the folder does not say
    if kind == "neg_euclidean":
        out["distance"] = -score
    if (path / "results.json").exists():
        out["audited"] = _table(saved, "input")
    out["headline"] = headline(out)
    out["paragraph"] = paragraph(out)
    return out


# expected look-alikes per search, with intervals from people: its own module (re-exported here)
from faceaudit.analyses.lookalikes import lookalikes  # noqa: E402,F401

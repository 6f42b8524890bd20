"""The upper tail of the impostor score distribution: a generalised Pareto model.

Peaks over threshold (Pickands-Balkema-de Haan): above a high tail threshold ``u`` the
exceedances ``s - u`` of impostor scores are modelled as generalised Pareto with shape ``xi``
and scale ``sigma``, so for ``T > u``

    FMR_tail(T) = (n_u / n) * (1 + xi (T - u) / sigma) ** (-1 / xi)

with ``n_u`` the impostor comparisons ``>= u`` out of ``n``. Choice of ``u`` (documented in
docs/scale.md): the histogram edge that leaves at least ``max(min_exceedances, tail_fraction *
n)`` comparisons above it (defaults 1,000 and 0.1%). Exceedances are reconstructed from the
engine's histogram at bin midpoints (bins are 2^-11 relative wide, far below the tail's
scale). The fit is maximum likelihood (``scipy.stats.genpareto.fit`` with ``loc = 0``);
intervals come from a parametric bootstrap; goodness of fit is a Kolmogorov-Smirnov test of
the exceedances against the fitted law (approximate: the parameters were fitted on the same
data, which makes the p-value conservative in the sense of rejecting too rarely).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faceaudit.engine.counts import exact_bins, hist_edges, next_exact_bins

MAX_FIT_POINTS = 100_000


@dataclass(frozen=True)
class TailFit:
    u: float
    xi: float
    sigma: float
    n_exceed: int
    n_total: int
    ks_pvalue: float
    boot_xi: np.ndarray
    boot_sigma: np.ndarray

    def fmr(self, threshold, xi: float | None = None, sigma: float | None = None) -> np.ndarray:
        """Modelled FMR at thresholds ``>= u`` (NaN below ``u``, where the data speak)."""
        xi = self.xi if xi is None else xi
        sigma = self.sigma if sigma is None else sigma
        from scipy import stats  # here, not at import: an audit that fits no tail never loads scipy.stats

        t = np.asarray(threshold, dtype=float)
        sf = stats.genpareto.sf(t - self.u, xi, loc=0, scale=sigma)
        return np.where(t >= self.u, self.n_exceed / self.n_total * sf, np.nan)

    def fmr_band(self, threshold, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Percentile bootstrap band of :meth:`fmr` (parameter uncertainty)."""
        t = np.atleast_1d(np.asarray(threshold, dtype=float))
        draws = np.array([self.fmr(t, x, s) for x, s in zip(self.boot_xi, self.boot_sigma)])
        a = (1 - confidence) / 2
        return np.nanquantile(draws, a, axis=0), np.nanquantile(draws, 1 - a, axis=0)

    def density(self, score) -> np.ndarray:
        """Impostor score density above ``u`` (per unit score)."""
        from scipy import stats

        s = np.asarray(score, dtype=float)
        return self.n_exceed / self.n_total * stats.genpareto.pdf(s - self.u, self.xi, loc=0, scale=self.sigma)

    def to_dict(self) -> dict:
        return {"u": self.u, "xi": self.xi, "sigma": self.sigma, "n_exceed": self.n_exceed,
                "n_total": self.n_total, "ks_pvalue": self.ks_pvalue,
                "xi_ci": np.quantile(self.boot_xi, [0.025, 0.975]).tolist(),
                "sigma_ci": np.quantile(self.boot_sigma, [0.025, 0.975]).tolist()}


def exceedances_from_hist(impostor_hist: np.ndarray, *, min_exceedances: int = 1000,
                          tail_fraction: float = 1e-3, score: str = "cosine",
                          fine_from: int = 0) -> tuple[float, np.ndarray, np.ndarray, int]:
    """(u, bin midpoints above u, their counts, n_u) from the engine's impostor histogram
    (``score``/``fine_from``: the search's, see :mod:`faceaudit.engine.counts`; u is an exact edge)."""
    hist = np.asarray(impostor_hist, dtype=np.int64)
    n = int(hist.sum())
    if n == 0:
        raise ValueError("no impostor comparisons")
    want = max(min_exceedances, int(np.ceil(tail_fraction * n)))
    tail = np.cumsum(hist[::-1])[::-1]
    candidates = np.flatnonzero(tail >= min(want, n))
    exact = exact_bins(candidates, score, fine_from)
    b_u = int(exact[exact == candidates].max())  # the highest exact edge that leaves enough above it
    edges = hist_edges()
    bins = np.flatnonzero(hist[b_u:]) + b_u
    mids = (edges[bins].astype(float) + edges[next_exact_bins(bins, score, fine_from)].astype(float)) / 2
    mids[bins == b_u] = np.maximum(mids[bins == b_u], edges[b_u])
    return float(edges[b_u]), mids, hist[bins], int(tail[b_u])


def fit_tail(impostor_hist: np.ndarray | None = None, *, scores: np.ndarray | None = None, u: float | None = None,
             min_exceedances: int = 1000, tail_fraction: float = 1e-3, n_boot: int = 100,
             seed: int = 0, score: str = "cosine", fine_from: int = 0) -> TailFit:
    """Fit the GPD tail, from the engine's histogram or (for tests) raw ``scores`` above ``u``."""
    from scipy import stats

    rng = np.random.default_rng(seed)
    if impostor_hist is not None:
        u, mids, counts, n_u = exceedances_from_hist(impostor_hist, min_exceedances=min_exceedances,
                                                     tail_fraction=tail_fraction, score=score, fine_from=fine_from)
        n_total = int(np.asarray(impostor_hist).sum())
        x = np.repeat(mids - u, counts)
    else:
        scores = np.asarray(scores, dtype=float)
        n_total = scores.size
        if u is None:
            k = max(min_exceedances, int(np.ceil(tail_fraction * n_total)))
            u = float(np.sort(scores)[-k])
        x = scores[scores >= u] - u
        n_u = x.size
    if x.size > MAX_FIT_POINTS:
        x = np.sort(rng.choice(x, MAX_FIT_POINTS, replace=False))
    x = np.maximum(x, 0.0)
    xi, _, sigma = stats.genpareto.fit(x, floc=0)
    ks = float(stats.kstest(x, stats.genpareto(xi, loc=0, scale=sigma).cdf).pvalue)
    m = min(x.size, 2000)
    boot = []
    for _ in range(n_boot):
        sample = stats.genpareto.rvs(xi, loc=0, scale=sigma, size=m, random_state=rng)
        bx, _, bs = stats.genpareto.fit(sample, floc=0)
        boot.append((bx, bs))
    boot = np.array(boot).reshape(-1, 2)
    if x.size > m and boot.size:  # bootstrap on m points: shrink the spread to the full sample size
        centre = np.array([xi, sigma])
        boot = centre + (boot - centre) * np.sqrt(m / x.size)
    return TailFit(float(u), float(xi), float(sigma), int(n_u), int(n_total), ks,
                   boot[:, 0] if boot.size else np.array([xi]), boot[:, 1] if boot.size else np.array([sigma]))

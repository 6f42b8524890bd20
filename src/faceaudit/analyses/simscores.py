"""Score-level synthetic populations with exactly known FPIR(N), including heterogeneous probes.

Used by the tests and by ``benchmarks/extrapolation_study.py`` to check explain's calibration
and the extrapolation bands against exact truth. No templates, no faces: scores are drawn
directly.

A population: every non-mate score of probe j is ``X + delta_j`` with X i.i.d. from a *base*
law (light: normal; heavy: Student t; bounded: scaled Beta) and ``delta_j`` the probe's offset
(0 for everyone: independent non-mates; else a two-point law, a share ``rho`` of probes
shifted by ``d``: "some probes with many look-alikes", or a normal law). With q the base
exceedance, exactly:

    FMR(T)     = E_delta[ q(T - delta) ]
    FPIR(N, T) = 1 - E_delta[ (1 - q(T - delta))^N ]

(two-point: a two-term sum; normal: 80-point Gauss-Hermite quadrature, in log space).
Mate scores are drawn from their own law, independently of the offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
from scipy import special, stats

from faceaudit.engine.counts import hist_edges, score_bin

BASES = {
    "light": lambda: stats.norm(0.0, 0.1),
    "heavy": lambda: stats.t(4, 0.0, 0.07),
    "bounded": lambda: stats.beta(30, 30, loc=-1, scale=2),
}


@dataclass(frozen=True)
class ScorePopulation:
    base: str = "light"
    offset: str = "none"  # none | two_point | normal
    rho: float = 0.05  # two_point: share of probes shifted
    d: float = 0.15  # two_point: shift; normal: standard deviation
    mate_mean: float = 0.6
    mate_sd: float = 0.1

    @property
    def name(self) -> str:
        extra = "" if self.offset == "none" else (f", {self.rho:.0%} of probes shifted +{self.d:g}"
                                                  if self.offset == "two_point" else f", offsets N(0, {self.d:g})")
        return f"{self.base} tail{extra}"

    def _base(self):
        return BASES[self.base]()

    def _offsets(self):
        """(offsets, weights) of the mixing law."""
        if self.offset == "none":
            return np.array([0.0]), np.array([1.0])
        if self.offset == "two_point":
            return np.array([0.0, self.d]), np.array([1 - self.rho, self.rho])
        x, w = special.roots_hermitenorm(80)
        return x * self.d, w / w.sum()

    def fmr(self, t) -> np.ndarray:
        t = np.atleast_1d(np.asarray(t, float))
        off, w = self._offsets()
        return (self._base().sf(t[:, None] - off[None, :]) * w).sum(1)

    def fpir(self, t, n) -> np.ndarray:
        """Exact FPIR at thresholds t (vector) and gallery sizes n (vector): shape (len(t), len(n))."""
        t = np.atleast_1d(np.asarray(t, float))
        n = np.atleast_1d(np.asarray(n, float))
        off, w = self._offsets()
        logq_c = self._base().logsf(t[:, None] - off[None, :])  # log q
        log_surv = np.log1p(-np.exp(logq_c))  # log(1 - q), (len t, n_off)
        none = (np.exp(log_surv[:, None, :] * n[None, :, None]) * w).sum(-1)
        return 1 - none

    def draw_offsets(self, n: int, rng) -> np.ndarray:
        if self.offset == "none":
            return np.zeros(n)
        if self.offset == "two_point":
            return np.where(rng.random(n) < self.rho, self.d, 0.0)
        return rng.normal(0, self.d, n)

    def simulate(self, n_gallery: int = 1000, n_nonmated: int = 3000, n_mated: int = 3000, seed: int = 0):
        """An audit's counts in score space: a SearchResult-like namespace, plus the non-mated
        searches' full score matrix (for nested galleries: the first m columns are a gallery of m)."""
        rng = np.random.default_rng(seed)
        base = self._base()
        nm = (base.rvs(size=(n_nonmated, n_gallery), random_state=rng)
              + self.draw_offsets(n_nonmated, rng)[:, None]).astype(np.float32)
        # mated searches: a mate plus n_gallery - 1 non-mates, offsets as for anyone
        m_nonmates = (base.rvs(size=(n_mated, n_gallery - 1), random_state=rng)
                      + self.draw_offsets(n_mated, rng)[:, None]).astype(np.float32)
        mate = rng.normal(self.mate_mean, self.mate_sd, n_mated).astype(np.float32)
        best_m = m_nonmates.max(1)
        rank = 1 + (m_nonmates >= mate[:, None]).sum(1)
        hist = np.bincount(score_bin(np.concatenate([nm.ravel(), m_nonmates.ravel()])), minlength=hist_edges().size)
        is_mated = np.r_[np.ones(n_mated, bool), np.zeros(n_nonmated, bool)]
        res = SimpleNamespace(
            is_mated=is_mated, gallery_size=n_gallery,
            best_nonmate=np.r_[best_m, nm.max(1)].astype(np.float32),
            mate_score=np.r_[mate, np.full(n_nonmated, np.nan, np.float32)],
            mate_rank=np.r_[rank, np.zeros(n_nonmated, int)],
            genuine_scores=mate, impostor_hist=hist.astype(np.int64))
        return res, nm

    def search_top(self, n_gallery: int, m: int, prior: float, seed: int = 0):
        """Monte Carlo searches at any gallery size (inverse transform of the per-probe maximum):
        (top score, top candidate is the mate)."""
        rng = np.random.default_rng(seed)
        base = self._base()
        enrolled = rng.random(m) < prior
        delta = self.draw_offsets(m, rng)
        k = np.where(enrolled, n_gallery - 1, n_gallery)
        u = rng.random(m)
        # max of k i.i.d. base draws: F^-1(U^(1/k)), computed as isf(-expm1(log U / k)) for precision
        best = base.isf(-np.expm1(np.log(u) / np.maximum(k, 1))) + delta
        best = np.where(k > 0, best, -np.inf)
        mate = rng.normal(self.mate_mean, self.mate_sd, m)
        top_is_mate = enrolled & (mate > best)
        return np.where(top_is_mate, mate, best), top_is_mate


POPULATIONS = [
    ScorePopulation("light"), ScorePopulation("heavy"), ScorePopulation("bounded"),
    ScorePopulation("light", "two_point", 0.05, 0.15), ScorePopulation("light", "two_point", 0.01, 0.3),
    ScorePopulation("light", "normal", d=0.03), ScorePopulation("heavy", "two_point", 0.05, 0.1),
    ScorePopulation("heavy", "normal", d=0.03), ScorePopulation("bounded", "two_point", 0.05, 0.1),
    ScorePopulation("bounded", "normal", d=0.03),
]


def extrapolation_study(populations=POPULATIONS, seeds=(0,), n_gallery: int = 1000, n_nonmated: int = 2000,
                        fpir_targets=(0.1, 0.01, 0.001), n_out=(1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10),
                        n_sizes: int = 6, candidate_lists: bool = False, top_k: int = 20) -> list[dict]:
    """Coverage of :func:`faceaudit.analyses.scale.extrapolation_band` against exact FPIR(N): one row per
    (population, seed, threshold, N)."""
    from auditcore.intervals import clopper_pearson
    from faceaudit.analyses.scale import extrapolation_band
    from faceaudit.metrics.identification import threshold_at_fpir
    from faceaudit.metrics.tail import fit_tail

    rows = []
    for pop in populations:
        for seed in seeds:
            rng = np.random.default_rng(seed)
            nm = (pop._base().rvs(size=(n_nonmated, n_gallery), random_state=rng)
                  + pop.draw_offsets(n_nonmated, rng)[:, None]).astype(np.float32)
            hist = np.bincount(score_bin(nm.ravel()), minlength=hist_edges().size)
            tail = fit_tail(hist, n_boot=20, seed=seed)
            sizes = sorted({int(round(v)) for v in np.geomspace(25, n_gallery, n_sizes)})
            best_at = {m: nm[:, :m].max(1) for m in sizes}
            model = None
            if candidate_lists:
                from faceaudit.analyses.explain import ScoreModel
                topk = -np.sort(-nm, axis=1)[:, :top_k]
                model = ScoreModel(np.zeros(2), hist, tail, best_at[n_gallery].astype(float), n_gallery, 1.0, topk)
            for target in fpir_targets:
                t = threshold_at_fpir(best_at[n_gallery], target).threshold
                if t is None or not np.isfinite(t):
                    continue
                k, n = int((nm >= np.float32(t)).sum()), nm.size
                fp = np.array([(best_at[m] >= np.float32(t)).sum() for m in sizes])
                lo = np.array([clopper_pearson(int(c), n_nonmated)[0] for c in fp])
                theta_fit = None
                if model is not None:
                    from faceaudit.analyses.explain import theta_at
                    theta_fit = theta_at(model, t, n_boot=100, seed=seed)
                band = extrapolation_band(n_out, fmr_k=k, fmr_n=n, measured_templates=sizes, measured_fp=fp,
                                          measured_lo=lo, n_searches=n_nonmated, tail=tail, threshold=t,
                                          theta_fit=theta_fit)
                truth = pop.fpir([t], n_out)[0]
                for b, true in zip(band, truth):
                    rows.append({"population": pop.name, "seed": seed, "target": target, "threshold": float(t),
                                 "n": b["gallery_size"], "truth": float(true), "lo": b["fpir_lo"], "hi": b["fpir_hi"],
                                 "point": b["fpir"], "estimable": b["estimable"],
                                 "covered": bool(b["fpir_lo"] <= true <= b["fpir_hi"]),
                                 "point_within_2x": None if b["fpir"] is None else bool(b["fpir"] / 2 <= true <= 2 * b["fpir"])})
    return rows

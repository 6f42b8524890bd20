"""A synthetic population whose true error rates are known exactly (for the demo and tests).

Construction (all templates unit vectors in ``dim`` dimensions):

* every enrolled subject's gallery template ``g`` is uniform on the sphere;
* a mated probe is ``cos(a) g + sin(a) w`` with ``w`` a uniform unit vector orthogonal to ``g``
  and ``cos(a)`` drawn from ``2 * Beta(genuine_a, genuine_b) - 1``: so the genuine score is
  exactly that draw;
* a non-enrolled subject has a uniform centre, and its templates are noisy copies of it.

Because gallery templates of different subjects are independent and uniform, the score of any
probe against a non-mate gallery template is distributed as the dot product of two independent
uniform unit vectors, ``2 * Beta((d-1)/2, (d-1)/2) - 1``, independently for every non-mate and
independently of the mate's score. Hence, exactly, with ``q(T) = P(impostor >= T)``, gallery
size ``N`` and genuine density ``f``:

* FMR(T) = q(T); FNMR(T) = P(genuine < T);
* FPIR(T) = 1 - (1 - q(T))^N;
* FNIR(1, T) = 1 - integral_T^1 f(s) (1 - q(s))^(N-1) ds.

The population is synthetic: no face, no person.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import integrate, stats

from faceaudit.data.evalset import EvaluationSet, validate
from faceaudit.data.protocol import Protocol


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@dataclass(frozen=True)
class SyntheticTruth:
    """Exact error rates of a :func:`make_population` population."""

    dim: int
    gallery_size: int
    genuine_a: float
    genuine_b: float

    def _impostor(self):
        half = (self.dim - 1) / 2
        return stats.beta(half, half, loc=-1, scale=2)

    def _genuine(self):
        return stats.beta(self.genuine_a, self.genuine_b, loc=-1, scale=2)

    def fmr(self, threshold: float) -> float:
        return float(self._impostor().sf(threshold))

    def fnmr(self, threshold: float) -> float:
        return float(self._genuine().cdf(threshold))

    def fpir(self, threshold: float, gallery_size: int | None = None) -> float:
        n = self.gallery_size if gallery_size is None else gallery_size
        with np.errstate(divide="ignore"):
            return float(-np.expm1(n * np.log1p(-self.fmr(threshold))))

    def fnir_rank1(self, threshold: float) -> float:
        imp, gen, n = self._impostor(), self._genuine(), self.gallery_size
        integrand = lambda s: gen.pdf(s) * imp.cdf(s) ** (n - 1)  # noqa: E731
        hit, _ = integrate.quad(integrand, max(threshold, -1.0), 1.0, limit=200, points=[gen.mean()])
        return float(1.0 - hit)


def make_population(*, n_enrolled: int = 1000, probes_per_enrolled: int = 2,
                    n_nonenrolled: int = 1000, probes_per_nonenrolled: int = 2, dim: int = 128,
                    genuine_a: float = 55.5, genuine_b: float = 18.5, nonmated_noise: float = 0.5,
                    seed: int = 0) -> tuple[EvaluationSet, Protocol, SyntheticTruth]:
    """Templates, manifest, an explicit protocol (one gallery template per enrolled subject),
    and the exact truth. Defaults give genuine scores with mean 0.5 and s.d. about 0.1.
    """
    rng = np.random.default_rng(seed)
    gallery = _unit(rng.standard_normal((n_enrolled, dim)))
    cos_a = 2 * rng.beta(genuine_a, genuine_b, size=(n_enrolled, probes_per_enrolled)) - 1
    w = rng.standard_normal((n_enrolled, probes_per_enrolled, dim))
    w -= np.einsum("spd,sd->sp", w, gallery)[..., None] * gallery[:, None, :]
    w = _unit(w)
    sin_a = np.sqrt(np.clip(1 - cos_a**2, 0, None))
    mated = cos_a[..., None] * gallery[:, None, :] + sin_a[..., None] * w
    centres = _unit(rng.standard_normal((n_nonenrolled, dim)))
    noise = rng.standard_normal((n_nonenrolled, probes_per_nonenrolled, dim)) * nonmated_noise / np.sqrt(dim)
    nonmated = _unit(centres[:, None, :] + noise)

    templates = np.concatenate([gallery, mated.reshape(-1, dim), nonmated.reshape(-1, dim)]).astype(np.float32)
    enrolled_ids = [f"E{i:05d}" for i in range(n_enrolled)]
    other_ids = [f"N{i:05d}" for i in range(n_nonenrolled)]
    subjects = (enrolled_ids + list(np.repeat(enrolled_ids, probes_per_enrolled))
                + list(np.repeat(other_ids, probes_per_nonenrolled)))
    manifest = pd.DataFrame({"template_id": [f"t{i:06d}" for i in range(len(subjects))],
                             "subject_id": subjects})
    evalset = validate(templates, manifest)
    evalset = EvaluationSet(evalset.templates, evalset.manifest, source="synthetic population")
    n_mated = n_enrolled * probes_per_enrolled
    protocol = Protocol(np.arange(n_enrolled), np.arange(n_enrolled, n_enrolled + n_mated),
                        np.arange(n_enrolled + n_mated, len(subjects)),
                        {"kind": "synthetic", "seed": seed})
    truth = SyntheticTruth(dim, n_enrolled, genuine_a, genuine_b)
    return evalset, protocol, truth

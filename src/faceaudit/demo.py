"""``faceaudit demo``: audit a synthetic population with known error rates (a self-check)."""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import optimize

from faceaudit.analyses.base import Audit
from faceaudit.audit import run_audit
from faceaudit.data.synthetic import SyntheticTruth, make_population
from faceaudit.metrics import identification as ident
from faceaudit.metrics import verification as verif


def truth_checks(audit: Audit, truth: SyntheticTruth, fpir_targets=(0.1, 0.01, 0.001)) -> list[dict]:
    """Measured rates against exact truth at the thresholds where the *true* FPIR is each target.

    The thresholds come from the truth, not from the data, so that each measured count is a
    plain binomial draw and its 95% interval should hold the true value about 95% of the time
    (a threshold chosen on the same data would bias the check).
    """
    res = audit.search
    mated = res.is_mated
    curve = verif.verification_curve(res.genuine_scores, res.impostor_hist, score=res.score,
                                     fine_from=res.hist_fine_from)
    checks = []
    for target in fpir_targets:
        t = float(np.float32(optimize.brentq(lambda x: truth.fpir(x) - target, -1.0, 1.0, xtol=1e-10)))
        pairs = [
            ("FPIR", truth.fpir(t), ident.fpir(res.best_nonmate[~mated], t)),
            ("FNIR rank 1", truth.fnir_rank1(t), ident.fnir(res.mate_score[mated], res.mate_rank[mated], t)),
            ("FMR", None, verif.fmr(curve, t)),
            ("FNMR", None, verif.fnmr(curve, t)),
        ]
        for name, true, measured in pairs:
            if true is None:  # verification: evaluate truth at the bin edge actually used
                edge = float(curve.thresholds[np.searchsorted(curve.thresholds, t, side="right") - 1])
                true = truth.fmr(edge) if name == "FMR" else truth.fnmr(edge)
            checks.append({"measure": name, "threshold": t, "true": true, "measured": measured.to_dict(),
                           "inside_ci": bool(measured.ci_low <= true <= measured.ci_high)})
    return checks


def run_demo(*, seed: int = 0, n_enrolled: int = 2000, n_nonenrolled: int = 4000, scale: bool = True,
             progress: Callable[[int, int], None] | None = None) -> Audit:
    """The demo audit. One search per non-enrolled subject, so that non-mated searches are
    independent and the binomial intervals of the self-check are honest (two searches of the
    same person are correlated, which widens the true uncertainty; see the demographics
    section's subject bootstrap)."""
    evalset, protocol, truth = make_population(n_enrolled=n_enrolled, n_nonenrolled=n_nonenrolled,
                                               probes_per_nonenrolled=1, seed=seed)
    if progress is not None:  # the count from the start: 0 of every search, before the engine's first block
        progress(0, int(protocol.mated.size + protocol.nonmated.size))
    audit = run_audit(evalset, protocol, progress=progress)
    audit.results["synthetic"] = {
        "description": (f"{n_enrolled:,} enrolled synthetic subjects (random directions in {truth.dim} dimensions), "
                        f"{n_nonenrolled:,} not enrolled; genuine scores drawn from 2*Beta({truth.genuine_a}, "
                        f"{truth.genuine_b})-1, seed {seed}."),
        "checks": truth_checks(audit, truth),
    }
    if scale:
        from faceaudit.analyses.scale import add_scale
        add_scale(audit, n_seeds=3, seed=seed)
    return audit

"""faceaudit: audit face identification (1:N search) systems.

The public API, one import away (``from faceaudit import run_audit``); the stages, one folder each:

``data`` (evaluation sets, protocols, candidate lists, public datasets) -> ``engine`` (scores to
counts) -> ``metrics`` (pure functions of counts) -> ``analyses`` (demographics, scale, explain,
compare) -> ``audit`` (the results folder) -> ``report`` (HTML from results) -> ``cli`` (thin).
``models`` turns images into an evaluation set; ``blackbox`` audits systems seen only through
their candidate lists; ``benchmarks`` runs LFW and BLUFR. See ``docs/architecture.md``.

>>> import faceaudit as fa                                               # doctest: +SKIP
>>> es = fa.load_evaluation_set("templates.npy", "manifest.csv")
>>> audit = fa.run_audit(es, fa.generate_protocol(es, seed=0), score="cosine")
>>> fa.write_results(audit, "results/")

Names are imported when first used, so ``import faceaudit`` stays cheap (no numba, no pandas).
"""

import os
from importlib import import_module

# OpenBLAS threads spin for ~2^28 cycles after each call, which steals both cores from the
# engine's numba pass that follows every matrix multiply (measured: the pass ran 1.6x slower).
# A short spin only takes effect if set before numpy loads OpenBLAS; an explicit setting wins.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

from auditcore.errors import InputError  # noqa: E402,F401 (public: in __all__)

__version__ = "0.1.0"

# public name -> the module that defines it
_API = {
    "EvaluationSet": "faceaudit.data.evalset",
    "load_evaluation_set": "faceaudit.data.evalset",
    "Protocol": "faceaudit.data.protocol",
    "generate_protocol": "faceaudit.data.protocol",
    "load_protocol": "faceaudit.data.protocol",
    "load_results": "faceaudit.data.results",
    "read_lists": "faceaudit.data.candidates",
    "search": "faceaudit.engine.local",
    "SearchResult": "faceaudit.engine.counts",
    "Audit": "faceaudit.analyses.base",
    "run_audit": "faceaudit.audit",
    "write_results": "faceaudit.audit",
    "add_demographics": "faceaudit.analyses.demographics",
    "add_scale": "faceaudit.analyses.scale",
    "explain": "faceaudit.analyses.explain",
    "compare": "faceaudit.analyses.compare",
    "write_comparison": "faceaudit.analyses.compare",
    "audit_lists": "faceaudit.blackbox.audit",
    "write_blackbox_results": "faceaudit.blackbox.audit",
    "load_adapter": "faceaudit.models.registry",
    "embed_images": "faceaudit.models.embed",
    "write_report": "faceaudit.report.html",
}

__all__ = sorted([*_API, "InputError", "__version__"])


def __getattr__(name: str):
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'faceaudit' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__

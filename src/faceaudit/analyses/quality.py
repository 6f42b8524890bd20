"""The probe-quality study (``faceaudit quality``): how each error grows as the searched photo gets worse.

One command, one evaluation set of images, one model:

1. **Clean pass**: every image is embedded once with the model's own pipeline (the gallery is
   never degraded), and the model's face box on each clean image is kept (the ``size``,
   ``eyes`` and ``mask`` degradations are aimed at it). A seeded protocol
   (:func:`faceaudit.data.protocol.generate_protocol`) picks the gallery and the probes.
2. **Degraded passes**: every probe image is read once, degraded at every level
   (:mod:`faceaudit.models.degrade`, in memory; originals untouched, nothing written) and
   run through the model's whole pipeline, detection included. A probe whose face is no
   longer found is a failure to enrol at that level.
3. **An audit per level** (the caller's ``run_audit``, i.e. :func:`faceaudit.audit.run_audit`,
   which sits above this layer): the gallery as enrolled, the level's probe templates, the
   level's failures counted as the audit counts them (ISO/IEC 19795-1 generalised rates: a
   failed mated search is a miss, a failed non-mated search returns no candidate).

Per level (``results["levels"]``): ``failure_to_enrol`` (the audit's block, plus ``probes``: the
level's probe failures alone); ``identification``: the audit's block with its
``operating_points`` at the thresholds **deployed on the clean probes** (one per FPIR target,
set by faceaudit's rule on the clean level: a deployed system does not re-tune per photo);
``identification_retuned``: the operating points re-set on the level's own non-mated searches.

Paired comparisons (``results["comparisons"]``): the same searches at two levels (each level
against the clean photos, and against the next milder level of the same degradation), at the
deployed thresholds: FNIR at rank 1 and FPIR, their difference with a 95% interval from people
(:func:`auditcore.intervals.paired_difference`, as ``faceaudit compare``: never [0, 0]; the
percentile interval from resampling *people* kept as ``bootstrap_ci``), the ratio of the two
rates with a people-bootstrap percentile interval (none where every resample gives the same), and McNemar's exact test on the discordant searches (which treats
searches as independent; the people interval does not). A search lost to failure to enrol is
in the pair as the audit counts it (a miss / no candidate).
"""

from __future__ import annotations

import datetime as _dt
import json
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from auditcore import bootstrap as boot_
from auditcore.errors import InputError
from auditcore.intervals import rate
from auditcore.outdir import atomic_folder, check_target
from auditcore.serialize import to_json
from auditcore.validation import rate_targets
from faceaudit import __version__
from faceaudit.data.evalset import EvaluationSet
from faceaudit.data.protocol import Protocol, generate_protocol
from faceaudit.metrics.conventions import DEFAULT_FPIR_TARGETS, ranks_for
from faceaudit.metrics.paired import discordant, mcnemar_exact
from faceaudit.models import degrade as deg
from faceaudit.models.embed import ImageItem, collect_items

CLEAN = "clean"
NO_RANK = np.iinfo(np.int64).max


@dataclass
class Level:
    """One level's searches, in the study's search order (see :class:`Study`)."""

    label: str
    degradation: str
    severity: float | None
    failed: np.ndarray          # bool per search: the probe failed to enrol at this level
    mate_score: np.ndarray      # -inf for non-mated or failed searches
    mate_rank: np.ndarray       # NO_RANK for non-mated or failed searches
    best_nonmate: np.ndarray    # -inf for mated or failed searches
    reasons: list = field(default_factory=list)


@dataclass
class Study:
    """What ``run_quality_study`` returns: the JSON-ready ``results`` and the per-search table."""

    results: dict
    searches: pd.DataFrame
    levels: list[Level]


@contextmanager
def _silent(label: str, *, unit: str = "", total: int | None = None):
    yield lambda done, total=None: None


def _phase(phases):
    return _silent if phases is None else phases.phase


def _manifest(items: Sequence[ImageItem], rows, attrs: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame({"template_id": [items[i].template_id for i in rows],
                          "subject_id": [items[i].subject_id for i in rows],
                          "image": [str(items[i].path) for i in rows]}, dtype=object)
    for j, a in enumerate(attrs):
        frame[a] = [items[i].attributes[j] for i in rows]
    return frame


def _level_arrays(res, n_search: int, search_of_row: dict, failed: np.ndarray, mated: np.ndarray) -> tuple:
    """Per-search arrays from one engine result (failed searches: no candidate)."""
    mate_score = np.full(n_search, -np.inf)
    mate_rank = np.full(n_search, NO_RANK, np.int64)
    best = np.full(n_search, -np.inf)
    idx = np.array([search_of_row[int(r)] for r in res.probe_rows], np.int64)
    m = res.is_mated
    mate_score[idx[m]] = res.mate_score[m]
    mate_rank[idx[m]] = res.mate_rank[m]
    best[idx[~m]] = res.best_nonmate[~m]
    if np.any(mated[idx] != m):
        raise AssertionError("the engine's mated flags differ from the study's")
    return mate_score, mate_rank, best


def _deployed_points(points: list[dict], targets: Sequence[float]) -> list[dict]:
    return [{"target_fpir": t, "threshold_set_on": CLEAN, **p} for t, p in zip(targets, points)]


def run_quality_study(source: str | Path | Sequence[ImageItem], model, levels: Sequence[deg.Degradation], *,
                      run_audit: Callable, model_options: dict | None = None, attributes: list[str] | None = None,
                      score: str | None = None, seed: int = 0, enrol_fraction: float = 0.5,
                      gallery_per_subject: int = 1, top_k: int = 20,
                      fpir_targets: Sequence[float] = DEFAULT_FPIR_TARGETS, group_by: Sequence[str] = (),
                      workers: int = 2, n_boot: int = 1000, confidence: float = 0.95, phases=None) -> Study:
    """Run the study (see the module docstring); return a :class:`Study`.

    ``source``: a folder of subject sub-folders, a manifest, or ``ImageItem``s; ``model``: a
    model name (with ``model_options``) or a :class:`~faceaudit.models.base.ModelAdapter`;
    ``levels``: :class:`~faceaudit.models.degrade.Degradation`s (e.g. from
    :func:`~faceaudit.models.degrade.parse_specs`); ``run_audit``: :func:`faceaudit.audit.run_audit`
    (passed in: the audit sits above the analyses). ``phases``: an object with a
    ``phase(label, unit=, total=)`` context manager yielding ``update(done, total=None)``
    (:class:`faceaudit.cli.progress.Phases`), or None.
    """
    from faceaudit.models import registry
    from faceaudit.models.base import ModelAdapter
    rate_targets("FPIR target", fpir_targets)
    levels = list(levels)
    if not levels:
        raise InputError("no degradation levels given (e.g. --degrade size:64,32,16)")
    if len({lv.label for lv in levels}) != len(levels):
        raise InputError("a degradation level is listed twice")
    started = time.perf_counter()
    phase = _phase(phases)
    if isinstance(source, (str, Path)):
        items, found = collect_items(source)
        attributes = found if attributes is None else attributes
    else:
        items = list(source)
    attrs = list(attributes or [])
    for g in group_by:
        if g not in attrs:
            raise InputError(f"--group-by {g}: no such column in the manifest (columns: {', '.join(attrs) or 'none'})")
    adapter = model if isinstance(model, ModelAdapter) else registry.load_adapter(str(model), **(model_options or {}))
    if score is None:
        score = getattr(adapter, "score", None) or _registered_score(registry, str(model) if isinstance(model, str)
                                                                     else adapter.kind)
    n = len(items)

    # 1. the clean pass: every image once
    templates: list = [None] * n
    failures: list = [None] * n
    faces: list = [None] * n
    with phase("embedding clean images", unit="images", total=n) as update:
        done = 0

        def record_clean(i, template, failure, face):
            nonlocal done
            templates[i], failures[i], faces[i] = template, failure, face
            done += 1
            update(done, n)

        deg.run_jobs(adapter, [(i, str(it.path)) for i, it in enumerate(items)], "clean", levels, workers,
                     record_clean)
    ok = [i for i in range(n) if templates[i] is not None]
    bad = [i for i in range(n) if templates[i] is None]
    if len(ok) < 3:
        raise InputError(f"only {len(ok)} of {n} images enrolled: too few for a study")
    dims = {templates[i].shape[0] for i in ok}
    if len(dims) > 1:
        raise InputError(f"model returned templates of different lengths {sorted(dims)}")
    clean_matrix = np.ascontiguousarray(np.stack([templates[i] for i in ok]).astype(np.float32))
    manifest = _manifest(items, ok, attrs)
    evalset0 = EvaluationSet(clean_matrix, manifest, source=str(source) if isinstance(source, (str, Path)) else "items")
    fail0 = _manifest(items, bad, attrs)
    fail0["reason"] = [failures[i] for i in bad]
    protocol = generate_protocol(evalset0, enrol_fraction=enrol_fraction, gallery_per_subject=gallery_per_subject,
                                 seed=seed)

    # the searches: the clean protocol's probes (mated first), then the clean failures (no template at any level)
    probe_rows = protocol.probes
    gallery_subjects = set(evalset0.subject_ids_at(protocol.gallery).astype(str))
    fail_mated = fail0["subject_id"].astype(str).isin(gallery_subjects).to_numpy()
    n_probe = probe_rows.size
    n_search = n_probe + len(bad)
    search_item = np.concatenate([np.asarray(ok, np.int64)[probe_rows], np.asarray(bad, np.int64)])
    mated = np.concatenate([np.arange(n_probe) < protocol.mated.size, fail_mated])
    search_of_row = {int(r): k for k, r in enumerate(probe_rows)}

    # 2. the degraded passes: every probe once, all levels
    level_templates = np.zeros((len(levels), n_probe, clean_matrix.shape[1]), np.float32)
    level_fail: list[list] = [[None] * n_probe for _ in levels]
    jobs = [(k, str(items[search_item[k]].path), faces[search_item[k]], items[search_item[k]].template_id)
            for k in range(n_probe)]
    with phase(f"degrading and embedding probes x {len(levels)} levels", unit="probes", total=n_probe) as update:
        done = 0

        def record_probe(k, outs):
            nonlocal done
            for j, (t, f) in enumerate(outs):
                if t is None:
                    level_fail[j][k] = f or "failed"
                else:
                    level_templates[j, k] = t
            done += 1
            update(done, n_probe)

        deg.run_jobs(adapter, jobs, "probe", levels, workers, record_probe)

    # 3. an audit per level
    common = {"score": score, "top_k": top_k, "fpir_targets": tuple(fpir_targets)}
    with phase("auditing each level", unit="levels", total=len(levels) + 1) as update:
        audit0 = run_audit(evalset0, protocol, failures=fail0, **common)
        update(1)
        ops0 = audit0.results["identification"]["operating_points"]
        deployed = [op["threshold"] for op in ops0]
        entries = [_clean_entry(audit0, fpir_targets, n_probe)]
        entries[0]["explain"] = _explain_at(audit0, deployed, fpir_targets, n_boot, seed)
        failed0 = np.arange(n_search) >= n_probe  # the clean failures: no template at any level
        arrays = [Level(CLEAN, "none", None, failed0,
                        *_level_arrays(audit0.search, n_search, search_of_row, failed0, mated),
                        [None] * n_probe + list(fail0["reason"]))]
        for j, level in enumerate(levels):
            entry, arr = _level_audit(run_audit, common, (n_boot, seed), level, level_templates[j], level_fail[j], evalset0, protocol,
                                      fail0, items, search_item, attrs, deployed, fpir_targets, n_search,
                                      search_of_row, mated)
            entries.append(entry)
            arrays.append(arr)
            update(j + 2)

    probe_widths = np.array([faces[search_item[k]].width for k in range(n_probe)])
    for entry, level in zip(entries[1:], levels):
        if level.kind == "size":  # the shrink does nothing to a face already at most N px wide
            entry["probes_unchanged"] = int((probe_widths <= level.severity).sum())

    # 4. paired comparisons and the summary
    subjects = pd.Series(np.concatenate([evalset0.subject_ids_at(probe_rows).astype(str),
                                         fail0["subject_id"].astype(str).to_numpy()]))
    subject_code = pd.factorize(subjects, sort=True)[0].astype(np.int64)
    weights = boot_.subject_weights(int(subject_code.max()) + 1, n_boot, seed)
    with phase("paired comparisons", unit="pairs"):
        comparisons = paired_comparisons(arrays, levels, deployed, fpir_targets, mated, subject_code, weights,
                                         confidence)
    groups = None
    if group_by:
        table = pd.concat([evalset0.manifest.iloc[probe_rows].reset_index(drop=True),
                           fail0.drop(columns=["reason"])], ignore_index=True)
        groups = group_figures(arrays, deployed, fpir_targets, mated, subject_code, weights,
                               {g: table[g].astype(str).to_numpy() for g in group_by}, confidence)
    widths = np.array([faces[i].width for i in ok if faces[i] is not None])
    eye_sources = pd.Series([faces[i].eye_source for i in ok if faces[i] is not None]).value_counts()
    results = {
        "faceaudit_version": __version__, "kind": "quality_study",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "conventions": audit0.results["conventions"],
        "input": {**audit0.results["input"], "images": n, "model": adapter.describe()},
        "protocol": audit0.results["protocol"],
        "deployed_thresholds": [{"target_fpir": t, "threshold": th} for t, th in zip(fpir_targets, deployed)],
        "levels": entries,
        "comparisons": comparisons,
        "groups": groups,
        "explain": {"done": True, "where": "levels[i].explain",
                    "note": "explain fitted on each level's own searches (people bootstrap, prior 0.5): how likely a "
                            "top candidate scoring exactly the threshold deployed on clean probes is the person "
                            "searched for, at this audit's gallery size"},
        "faces": {"n": int(widths.size), "width_px": _quantiles(widths), "eye_line": {str(k): int(v) for k, v in
                                                                                       eye_sources.items()},
                  "note": "the model's own face box on the clean images (where size, eyes and mask are aimed)"},
        "provenance": {
            "degradations": [lv.record() for lv in levels], "seed": seed,
            "applied_to": "probe images only, in memory (originals untouched, no degraded image written); "
                          "the gallery is embedded once from the clean images",
            "model": adapter.describe(), "score": score, "workers": workers, "n_boot": n_boot,
            "protocol": protocol.description, "seconds": round(time.perf_counter() - started, 1),
        },
    }
    results["summary"] = {"sentences": summary_sentences(results)}
    table = searches_table(arrays, items, search_item, mated)
    return Study(results, table, arrays)


def _explain_at(audit, deployed, fpir_targets, n_boot: int, seed: int) -> dict:
    """explain fitted on this level's searches: how likely a top candidate scoring exactly the
    threshold deployed for the middle FPIR target is the person searched for (prior 0.5)."""
    from faceaudit.analyses.explain import ScoreModel, explain
    j = list(fpir_targets).index(0.01) if 0.01 in fpir_targets else len(fpir_targets) // 2
    threshold = deployed[j]
    n_gallery = int(audit.protocol.gallery.size)
    if threshold is None or not np.isfinite(threshold):
        return {"done": False, "reason": "no finite deployed threshold"}
    try:
        model = ScoreModel.from_search(audit.search, n_gallery_templates=n_gallery)
        out = explain(model, float(threshold), n_gallery, n_boot=min(n_boot, 200), seed=seed)
    except (InputError, ValueError, FloatingPointError) as exc:
        return {"done": False, "reason": str(exc).splitlines()[0][:200]}
    keep = ("score", "gallery_size", "prior", "p_top_is_mate", "interval", "confidence", "display", "supported",
            "not_supported_because", "headline", "interval_covers")
    return {"done": True, "target_fpir": fpir_targets[j], **{k: out.get(k) for k in keep}}


def _registered_score(registry, name: str) -> str:
    """The score a registered model's templates are made for (cosine for an unregistered adapter)."""
    try:
        return registry.get(name).score
    except InputError:
        return "cosine"


def _quantiles(x: np.ndarray) -> dict | None:
    if x.size == 0:
        return None
    q = np.quantile(x, [0.0, 0.1, 0.5, 0.9, 1.0])
    return {"min": float(q[0]), "p10": float(q[1]), "median": float(q[2]), "p90": float(q[3]), "max": float(q[4])}


def _probe_fte(failed: int, attempts: int) -> dict:
    return {"failed": failed, "attempts": attempts, **rate(failed, attempts).to_dict()}


def _clean_entry(audit, fpir_targets, n_probe: int) -> dict:
    ident = dict(audit.results["identification"])
    retuned = ident["operating_points"]
    ident["operating_points"] = _deployed_points(
        [{k: op[k] for k in ("threshold", "fpir", "fnir") if k in op} for op in retuned], fpir_targets)
    fte = dict(audit.results["failure_to_enrol"])
    fte["probes"] = _probe_fte(0, n_probe)
    return {"label": CLEAN, "degradation": "none", "severity": None, "failure_to_enrol": fte,
            "identification": ident, "identification_retuned": {"operating_points": retuned},
            "explain_calibration": audit.results.get("explain_calibration")}


def _level_audit(run_audit, common, common_boot, level, probe_templates, probe_fail, evalset0, protocol, fail0, items,
                 search_item, attrs, deployed, fpir_targets, n_search, search_of_row, mated):
    """The audit of one level: the gallery as enrolled, the level's probes, its failures."""
    n_probe = probe_templates.shape[0]
    probe_rows = protocol.probes
    failed_probe = np.array([f is not None for f in probe_fail], bool)
    keep = np.ones(evalset0.n, bool)
    keep[probe_rows[failed_probe]] = False
    templates = evalset0.templates.copy()
    templates[probe_rows[~failed_probe]] = probe_templates[~failed_probe]
    new_index = np.cumsum(keep) - 1
    evalset = EvaluationSet(np.ascontiguousarray(templates[keep]), evalset0.manifest[keep].reset_index(drop=True),
                            source=f"{evalset0.source} [{level.label}]")
    kept_mated = protocol.mated[keep[protocol.mated]]
    kept_non = protocol.nonmated[keep[protocol.nonmated]]
    lost = _manifest(items, search_item[:n_probe][failed_probe], attrs)
    lost["reason"] = [probe_fail[k] for k in np.flatnonzero(failed_probe)]
    fail = pd.concat([fail0, lost], ignore_index=True)
    fte_probes = _probe_fte(int(failed_probe.sum()), n_probe)
    failed = np.concatenate([failed_probe, np.ones(n_search - n_probe, bool)])
    reasons = list(probe_fail) + list(fail0["reason"])
    if kept_mated.size == 0 and kept_non.size == 0:
        # every probe failed: no search to run; the audit would count them all as failed
        arr = Level(level.label, level.kind, level.severity, failed, np.full(n_search, -np.inf),
                    np.full(n_search, NO_RANK, np.int64), np.full(n_search, -np.inf), reasons)
        entry = {"label": level.label, "degradation": level.kind, "severity": deg._num(level.severity),
                 "failure_to_enrol": {"failed": len(fail), "attempts": evalset0.n + len(fail0),
                                      "rate": len(fail) / (evalset0.n + len(fail0)), "probes": fte_probes},
                 "identification": _all_failed(mated, deployed, fpir_targets, ranks_for(common["top_k"])),
                 "identification_retuned": None, "note": "every probe failed to enrol"}
        return entry, arr
    level_protocol = Protocol(new_index[protocol.gallery], new_index[kept_mated], new_index[kept_non],
                              {**protocol.description, "probes_degraded": level.label})
    audit = run_audit(evalset, level_protocol, failures=fail, thresholds=[float(t) for t in deployed
                                                                         if t is not None], **common)
    ident = dict(audit.results["identification"])
    retuned = ident["operating_points"]
    at = iter(ident.pop("at_thresholds"))
    points = [next(at) if t is not None else {"threshold": None} for t in deployed]
    ident["operating_points"] = _deployed_points(points, fpir_targets)
    ident["at_thresholds"] = []
    fte = dict(audit.results["failure_to_enrol"])
    fte["probes"] = fte_probes
    # level rows -> the study's search order
    row_of = {int(new_index[r]): k for r, k in search_of_row.items() if keep[r]}
    arr = Level(level.label, level.kind, level.severity, failed,
                *_level_arrays(audit.search, n_search, row_of, failed, mated), reasons)
    return ({"label": level.label, "degradation": level.kind, "severity": deg._num(level.severity),
             "failure_to_enrol": fte, "identification": ident,
             "identification_retuned": {"operating_points": retuned},
             "explain": _explain_at(audit, deployed, fpir_targets, common_boot[0], common_boot[1]),
             "explain_calibration": audit.results.get("explain_calibration")}, arr)


def _all_failed(mated, deployed, fpir_targets, ranks) -> dict:
    """Every mated (or every non-mated) probe failed: no search ran; the failed ones count as the audit counts them."""
    points = []
    n_m, n_n = int(mated.sum()), int((~mated).sum())
    for t, th in zip(fpir_targets, deployed):
        points.append({"target_fpir": t, "threshold_set_on": CLEAN, "threshold": th,
                       "fpir": rate(0, n_n).to_dict(), "fnir": {str(r): rate(n_m, n_m).to_dict() for r in ranks}})
    return {"n_nonmated_searches": int((~mated).sum()), "n_mated_searches": int(mated.sum()),
            "operating_points": points}


# ------------------------------------------------------------------ paired comparisons
def errors_at(level: Level, mated: np.ndarray, threshold: float, rank: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(missed at ``rank``, false positive) per search at ``threshold``; a failed search is a miss and
    never a false positive."""
    hit = (level.mate_score >= threshold) & (level.mate_rank <= rank) & ~level.failed
    fp = (level.best_nonmate >= threshold) & ~level.failed
    return mated & ~hit, ~mated & fp


def _ratio_draws(wa, wb, subject, weights):
    n_subj = weights.shape[1]
    sa = np.bincount(subject, wa.astype(float), n_subj)
    sb = np.bincount(subject, wb.astype(float), n_subj)
    ta, tb = weights @ sa, weights @ sb
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tb > 0, ta / np.where(tb > 0, tb, 1), np.where(ta > 0, np.inf, np.nan))


def compare_rates(wrong_a, wrong_b, subject, weights, confidence: float = 0.95) -> dict:
    """Level A against level B on the same trials: both rates, A - B and A / B with people-bootstrap
    percentile intervals (shared resamples), McNemar's exact p on the discordant trials."""
    a, b = np.asarray(wrong_a, bool), np.asarray(wrong_b, bool)
    n = int(a.size)
    if n == 0:
        return {"n": 0, "a": None, "b": None, "difference": None, "ratio": None, "mcnemar_p": None}
    n_subj = weights.shape[1]
    counts = np.bincount(subject, minlength=n_subj).astype(float)
    tot = weights @ counts
    sa = weights @ np.bincount(subject, a.astype(float), n_subj)
    sb = weights @ np.bincount(subject, b.astype(float), n_subj)
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = np.where(tot > 0, (sa - sb) / tot, np.nan)
    lo, hi, _ = boot_.percentile_interval(diff[:, None], confidence)
    rlo, rhi, undefined = boot_.percentile_interval(_ratio_draws(a, b, subject, weights)[:, None], confidence)
    n_b, n_c = discordant(a, b)
    ea, eb = int(a.sum()), int(b.sum())

    def num(x):
        x = float(x)
        return None if np.isnan(x) else x
    # the difference's interval from people, as compare's (Korn-Graubard per level, MOVER with the
    # correlation across people): never [0, 0], which a people bootstrap gives when every search
    # that changed outcome belongs to a person whose other search changed the other way
    from auditcore.intervals import paired_difference
    people = paired_difference(np.bincount(subject, a.astype(float), n_subj), np.bincount(subject, b.astype(float), n_subj),
                               counts, confidence)
    ratio_ci = [num(rlo[0]), num(rhi[0])]
    flat = ratio_ci[0] is not None and ratio_ci[0] == ratio_ci[1]
    return {"n": n, "a": rate(ea, n).to_dict(), "b": rate(eb, n).to_dict(),
            "difference": {"value": (ea - eb) / n, "ci": [num(people["low"]), num(people["high"])],
                           "interval_method": "people (Korn-Graubard per level, MOVER with the correlation across people)",
                           "bootstrap_ci": [num(lo[0]), num(hi[0])]},
            "ratio": {"value": None if eb == 0 else ea / eb, "ci": [None, None] if flat else ratio_ci,
                      "undefined_resamples": int(undefined[0]),
                      **({"note": "every people-bootstrap resample gave the same ratio: no interval"} if flat else {})},
            "discordant": {"a_only": n_b, "b_only": n_c}, "mcnemar_p": mcnemar_exact(n_b, n_c),
            "interval_covers": "people of the kind searched (people bootstrap); McNemar treats searches as independent"}


def _reference_pairs(levels: Sequence[deg.Degradation]) -> list[tuple[int, int]]:
    """(level, reference) index pairs into [clean] + levels: each level against clean, and
    against the next milder level of the same degradation."""
    pairs = [(j + 1, 0) for j in range(len(levels))]
    by_kind: dict[str, list[int]] = {}
    for j, lv in enumerate(levels):
        by_kind.setdefault(lv.kind, []).append(j)
    for kind, idx in by_kind.items():
        worse_high = deg.KINDS[kind]["worse"] == "higher"
        order = sorted(idx, key=lambda j: levels[j].severity if worse_high else -levels[j].severity)
        pairs += [(order[i] + 1, order[i - 1] + 1) for i in range(1, len(order))]
    return pairs


def paired_comparisons(arrays: list[Level], levels, deployed, fpir_targets, mated, subject, weights,
                       confidence: float = 0.95) -> list[dict]:
    out = []
    for a, b in _reference_pairs(levels):
        for target, th in zip(fpir_targets, deployed):
            if th is None:
                continue
            miss_a, fp_a = errors_at(arrays[a], mated, th)
            miss_b, fp_b = errors_at(arrays[b], mated, th)
            out.append({"level": arrays[a].label, "against": arrays[b].label, "target_fpir": target,
                        "threshold": th, "threshold_set_on": CLEAN,
                        "fnir_rank1": compare_rates(miss_a[mated], miss_b[mated], subject[mated], weights, confidence),
                        "fpir": compare_rates(fp_a[~mated], fp_b[~mated], subject[~mated], weights, confidence)})
    return out


def group_figures(arrays: list[Level], deployed, fpir_targets, mated, subject, weights, labels: dict,
                  confidence: float = 0.95) -> dict:
    """Per group label column, per level, at each deployed threshold: FNIR(1) and FPIR per group
    (Clopper-Pearson over searches) and the gap between the highest and lowest group with a
    people-bootstrap interval (the groups fixed as in the clean level)."""
    out = {}
    n_subj = weights.shape[1]
    for col, lab in labels.items():
        names = sorted(set(lab))
        rows = []
        for arr in arrays:
            for target, th in zip(fpir_targets, deployed):
                if th is None:
                    continue
                miss, fp = errors_at(arr, mated, th)
                entry = {"level": arr.label, "target_fpir": target, "threshold": th, "groups": {}}
                for measure, wrong, trials in (("fnir_rank1", miss, mated), ("fpir", fp, ~mated)):
                    per, draws = {}, []
                    for g in names:
                        sel = trials & (lab == g)
                        per[g] = rate(int(wrong[sel].sum()), int(sel.sum())).to_dict()
                        e = weights @ np.bincount(subject[sel], wrong[sel].astype(float), n_subj)
                        t = weights @ np.bincount(subject[sel], minlength=n_subj).astype(float)
                        with np.errstate(invalid="ignore", divide="ignore"):
                            draws.append(np.where(t > 0, e / t, np.nan))
                    values = [per[g]["value"] for g in names]
                    gap = None
                    if len(names) >= 2 and all(v is not None for v in values):
                        hi_g, lo_g = int(np.argmax(values)), int(np.argmin(values))
                        d = draws[hi_g] - draws[lo_g]
                        lo, hi, _ = boot_.percentile_interval(d[:, None], confidence)
                        gap = {"highest": names[hi_g], "lowest": names[lo_g], "value": values[hi_g] - values[lo_g],
                               "ci": [None if np.isnan(lo[0]) else float(lo[0]),
                                      None if np.isnan(hi[0]) else float(hi[0])]}
                    entry["groups"][measure] = {"per_group": per, "gap": gap}
                rows.append(entry)
        out[col] = rows
    return out


# ------------------------------------------------------------------ wording
def _pct(x: float | None) -> str:
    if x is None:
        return "undefined"
    return f"{100 * x:.2g}%" if x < 0.1 else f"{100 * x:.0f}%"


def _times(x: float | None) -> str:
    if x is None:
        return "?"
    if np.isinf(x):
        return "infinitely many"
    return f"{x:.1f}" if x < 10 else f"{x:.0f}"


def headline_level(results: dict) -> dict | None:
    """The level the one-sentence summary speaks of: size 24 px if studied, else the smallest face,
    else the most severe level of the first degradation."""
    levels = [e for e in results["levels"] if e["label"] != CLEAN]
    if not levels:
        return None
    sizes = [e for e in levels if e["degradation"] == "size"]
    for e in sizes:
        if e["severity"] == 24:
            return e
    if sizes:
        return min(sizes, key=lambda e: e["severity"])
    kind = levels[0]["degradation"]
    same = [e for e in levels if e["degradation"] == kind]
    high = deg.KINDS[kind]["worse"] == "higher"
    return (max if high else min)(same, key=lambda e: e["severity"])


def _where(entry: dict) -> str:
    sev, kind = entry["severity"], entry["degradation"]
    return {"size": f"With the face {sev} pixels wide", "jpeg": f"With the photo saved as a JPEG of quality {sev}",
            "blur": f"With the photo blurred (Gaussian sigma {sev} px)", "motion": f"With {sev}-pixel motion blur",
            "noise": f"With sensor noise of {sev} grey levels", "dark": f"With the photo {sev} stops under-exposed",
            "grey": "With the photo in grey-scale", "eyes": "With the eyes covered by a band",
            "mask": f"With the lower {_pct(sev)} of the face covered"}.get(kind, f"At {entry['label']}")


ALPHA = 0.05  # McNemar's level, as faceaudit compare's


def difference_verdict(cmp: dict | None) -> str | None:
    """The rule by which a sentence of this study says a level's rate differs from its reference's
    (one rate of :func:`compare_rates`): "more" or "less" where the interval over people of the
    difference (:func:`auditcore.intervals.paired_difference`) excludes 0 AND McNemar's exact p <
    0.05, the rule of ``faceaudit compare``; None (no claim) otherwise, and where no search changed
    outcome (p = 1). Simulated under no difference: benchmarks/quality_null.py, docs/quality.md."""
    if not cmp or not cmp.get("n") or cmp.get("mcnemar_p") is None:
        return None
    lo, hi = (cmp.get("difference") or {}).get("ci") or (None, None)
    if lo is None or hi is None or not cmp["mcnemar_p"] < ALPHA:
        return None
    return "more" if lo > 0 else "less" if hi < 0 else None


def fpir_claims_change(cmp: dict | None) -> bool:
    """Whether the FPIR sentence ("returned a candidate X times as often") states a change, i.e.
    goes without "(these data cannot tell it from no change)": where :func:`difference_verdict`
    claims one and the ratio's people-bootstrap interval, where there is one, excludes 1 (the
    interval quoted never contradicts the claim). The bootstrap interval alone is not the rule: it
    claimed a change in up to 7.7% of studies with none where a few people make most errors (#30)."""
    if difference_verdict(cmp) is None:
        return False
    ci = (cmp.get("ratio") or {}).get("ci") or [None, None]
    return ci[0] is None or ci[1] is None or not ci[0] <= 1 <= ci[1]


def _fte_note(cmp: dict, entry: dict) -> str:
    """Why fewer false candidates may not be good news: searches that found no face return none."""
    failed = (entry.get("failure_to_enrol") or {}).get("probes") or {}
    if failed.get("failed"):
        return (f" (but {failed['failed']} of {failed['attempts']} probes no longer had a face found, and a search "
                "that finds no face returns no candidate)")
    return ""


def summary_sentences(results: dict) -> list[str]:
    """The one sentence a reader needs (false candidates for people not in the gallery, as a
    multiple of the clean photos', with its people interval), and the same for missed mates."""
    entry = headline_level(results)
    if entry is None:
        return []
    targets = [d["target_fpir"] for d in results["deployed_thresholds"]]
    target = 0.01 if 0.01 in targets else targets[len(targets) // 2]
    cmp = next((c for c in results["comparisons"] if c["level"] == entry["label"] and c["against"] == CLEAN
                and c["target_fpir"] == target), None)
    if cmp is None:
        return []
    where = _where(entry)
    conf = "95%"
    fp = cmp["fpir"]
    thr = f"the threshold set for FPIR {_pct(target)} on clean photos"
    out = []
    if fp["n"] and fp["b"]["errors"] > 0 and fp["a"]["errors"] == 0:
        out.append(f"{where}, no search of someone not in the gallery returned a candidate (0 of {fp['n']}; at most "
                   f"{_pct(fp['a']['ci_high'])}), against {_pct(fp['b']['value'])} ({fp['b']['errors']} of {fp['n']}) "
                   f"with the clean photo, at {thr}{_fte_note(cmp, entry)}.")
    elif fp["n"] and fp["b"]["errors"] > 0 and not (fp.get("discordant") or {}).get("a_only") \
            and not (fp.get("discordant") or {}).get("b_only"):
        out.append(f"{where}, the same {fp['a']['errors']} of {fp['n']} searches of someone not in the gallery returned "
                   f"a candidate as with the clean photo (at {thr}): no search changed outcome, so these data show "
                   f"no change and cannot bound one by a ratio.")
    elif fp["n"] and fp["b"]["errors"] > 0:
        r, ci = fp["ratio"]["value"], fp["ratio"]["ci"]
        tail = "" if fpir_claims_change(fp) else " (these data cannot tell it from no change)"
        if tail and ci[0] is not None and ci[1] is not None and not ci[0] <= 1 <= ci[1]:
            # the bootstrap's ratio interval excludes 1 but the rule (#30) does not claim a change: say why
            dlo, dhi = fp["difference"]["ci"]
            p = fp["mcnemar_p"]
            tail = (f" (these data cannot tell it from no change: difference {100 * fp['difference']['value']:+.1f} "
                    "points" + ("" if dlo is None or dhi is None else
                                f", {conf} interval over people {100 * dlo:+.1f} to {100 * dhi:+.1f}")
                    + f"; McNemar {'p < 0.001' if p < 0.001 else f'p = {p:.2g}'})")
        over = (f"{conf} interval over people {_times(ci[0])} to {_times(ci[1])}" if ci[0] is not None and ci[1] is not None
                else "the people bootstrap gives no interval for the ratio")
        out.append(f"{where}, a search of someone not in the gallery returned a candidate {_times(r)} times as often "
                   f"as with the clean photo ({over}; "
                   f"{_pct(fp['a']['value'])} against {_pct(fp['b']['value'])}, at {thr}){tail}.")
    elif fp["n"] and fp["a"]["errors"] > 0:
        out.append(f"{where}, a search of someone not in the gallery returned a candidate in {_pct(fp['a']['value'])} "
                   f"of searches ({fp['a']['errors']} of {fp['n']}), against none of {fp['n']} with the clean "
                   f"photos at {thr}: the clean rate is at most {_pct(fp['b']['ci_high'])}, so no ratio can be given.")
    elif fp["n"]:
        out.append(f"{where}, no search of someone not in the gallery returned a candidate, nor with the clean photos "
                   f"(0 of {fp['n']} each, at {thr}): both rates are at most {_pct(fp['a']['ci_high'])}, and these "
                   "data cannot say whether the degradation changes them.")
    fn = cmp["fnir_rank1"]
    if fn["n"] and fn["a"]["errors"] == 0 and fn["b"]["errors"] == 0:
        out.append(f"{where}, no search of someone in the gallery missed them at rank 1, nor with the clean photo "
                   f"(0 of {fn['n']} each, at {thr}): both rates are at most {_pct(fn['a']['ci_high'])}.")
    elif fn["n"] and fn["discordant"]["a_only"] == 0 and fn["discordant"]["b_only"] == 0:
        out.append(f"{where}, the same {fn['a']['errors']} of {fn['n']} searches of someone in the gallery missed them "
                   f"at rank 1 as with the clean photo (at {thr}): no search changed outcome.")
    elif fn["n"]:
        d = fn["difference"]
        lo, hi = d["ci"]
        verdict = difference_verdict(fn)
        if verdict is not None:
            tail = f": missed {verdict} often than with the clean photo"
        else:
            tail = ": these data cannot tell it from the clean photo"
        ci = "" if lo is None or hi is None else f", {conf} interval over people {100 * lo:+.1f} to {100 * hi:+.1f}"
        def share(side: dict) -> str:  # never "0%": no miss is "none of N (at most X%)"
            return (f"{_pct(side['value'])}" if side["errors"] else
                    f"none of {fn['n']} (at most {_pct(side['ci_high'])})")
        p = fn["mcnemar_p"]
        p_text = "p < 0.001" if p < 0.001 else f"p = {p:.2g}"
        out.append(f"{where}, the person searched for was missed at rank 1 in {share(fn['a'])} of searches "
                   f"against {share(fn['b'])} with the clean photo (difference {100 * d['value']:+.1f} points"
                   f"{ci}; McNemar {p_text}; at {thr}){tail}.")
    return out


# ------------------------------------------------------------------ output
def searches_table(arrays: list[Level], items, search_item, mated) -> pd.DataFrame:
    """One row per (level, search): enough to recompute every level's figure at any threshold."""
    tids = np.array([items[i].template_id for i in search_item], dtype=object)
    subj = np.array([items[i].subject_id for i in search_item], dtype=object)
    frames = []
    for arr in arrays:
        frames.append(pd.DataFrame({
            "level": arr.label, "degradation": arr.degradation,
            "severity": np.nan if arr.severity is None else float(arr.severity),
            "template_id": tids, "subject_id": subj, "mated": mated, "failed": arr.failed,
            "failure_reason": [None if r is None else str(r) for r in arr.reasons],
            "mate_score": arr.mate_score, "mate_rank": arr.mate_rank, "best_nonmate_score": arr.best_nonmate}))
    return pd.concat(frames, ignore_index=True)


def write_study(study: Study, out_dir: str | Path, *, overwrite: bool = False, report: bool = True) -> Path:
    """Write ``results.json``, ``searches.parquet`` and ``report.html`` into ``out_dir`` atomically."""
    out = Path(out_dir)
    with atomic_folder(out, overwrite=overwrite, kind="quality") as tmp:
        results = to_json(study.results)
        with open(tmp / "results.json", "w") as fh:
            json.dump(results, fh, indent=1, allow_nan=False)
        study.searches.to_parquet(tmp / "searches.parquet", index=False)
        if report:
            from faceaudit.report.quality_html import render
            (tmp / "report.html").write_text(render(results), encoding="utf-8")
    return out


def check_output(out_dir: str | Path, *, overwrite: bool) -> None:
    """Refuse a target folder before the long work (the same rule as the final write)."""
    check_target(Path(out_dir), overwrite=overwrite)

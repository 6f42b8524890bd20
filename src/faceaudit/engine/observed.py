"""What candidate lists show, as the engine's per-search counts plus what was *not* observed.

A black-box audit is an audit whose engine output was read instead of computed.
:func:`observe` turns validated :class:`~faceaudit.data.candidates.CandidateLists` and the
evaluation set's manifest into :class:`ObservedSearches`: the same per-search arrays as the
engine's :class:`~faceaudit.engine.local.SearchResult` (``best_nonmate``, ``mate_score``, ``mate_rank``,
``is_mated``, candidate lists by gallery *subject*) plus, per search, what the list leaves unseen:

* ``n_listed``: the distinct gallery subjects listed (a template list is reduced to subjects: a
  subject's score is its best-listed template's, as in the engine);
* ``unseen_bound`` and ``unseen_strict``: every gallery subject *not* listed scores ``<
  unseen_bound`` (strict) or ``<= unseen_bound``. A list that returned fewer than its length L
  was cut only by the system's threshold t (strict bound t; an applied threshold of unknown value
  is bounded by the lowest score that system returned); a full list (L candidates) may have cut
  anything at or below its last score (non-strict bound: its last score); a list with neither cut
  saw everything (bound -inf). Rank-only lists have no bound (NaN).

Values that were not observed are held as the sentinels the metric functions read correctly
*inside the measurable domain*: a missing best non-mate is ``-inf``, a missing mate has score
``-inf`` and rank :data:`UNSEEN_RANK`. Whether a figure lies in that domain is decided per search:

* FPIR(T) is measurable when every non-mated search with no candidate has all unseen subjects
  below T;
* FNIR(R, T) (and CMC(R) = 1 - FNIR(R, -inf)) is measurable when every mated search whose mate
  is not listed has at least R subjects listed (the mate is ranked worse than R) or all unseen
  subjects below T (the mate scores below T).

For lists of length L cut at t this is exactly "FPIR(T) for T >= t; FNIR(R, T) for R <= L or
T >= t"... and figures outside are reported as not measurable with the reason, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from auditcore.errors import InputError
from faceaudit.data.candidates import CandidateLists

UNSEEN_RANK = np.iinfo(np.int32).max


@dataclass
class ObservedSearches:
    """Per-search counts read from lists (probe order: as in the lists, mated and non-mated mixed).

    Same names and meanings as :class:`faceaudit.engine.local.SearchResult` where they are observed;
    ``score`` is the system's scale (text). Scores are float64 as the system gave them.
    """

    score: str
    search_ids: np.ndarray
    probe_ids: np.ndarray
    probe_rows: np.ndarray
    is_mated: np.ndarray
    probe_subjects: np.ndarray
    gallery_subjects: np.ndarray
    best_nonmate: np.ndarray
    mate_score: np.ndarray
    mate_rank: np.ndarray
    mate_listed: np.ndarray
    candidates_subject: np.ndarray
    candidates_score: np.ndarray
    list_length: np.ndarray
    n_returned: np.ndarray
    n_listed: np.ndarray
    unseen_bound: np.ndarray
    unseen_strict: np.ndarray
    threshold: np.ndarray
    threshold_applied: np.ndarray
    rank_only: bool
    systems: list
    has_decisions: bool = False
    decided_any: np.ndarray | None = None
    mate_decided: np.ndarray | None = None

    @property
    def n_probes(self) -> int:
        return int(self.is_mated.size)

    @property
    def gallery_size(self) -> int:
        return int(self.gallery_subjects.size)

    # --- what is measurable -------------------------------------------------------------
    def _beyond(self, threshold: float, rows: np.ndarray) -> np.ndarray:
        """Per search in ``rows``: are all unseen subjects known to score below ``threshold``?"""
        u, strict = self.unseen_bound[rows], self.unseen_strict[rows]
        with np.errstate(invalid="ignore"):
            return (threshold > u) | (strict & (threshold >= u))

    def fpir_problem(self, threshold: float) -> str | None:
        """None if FPIR(threshold) is measurable, else the reason."""
        if self.rank_only:
            return "rank-only lists (no scores): no figure at a threshold is measurable"
        rows = np.flatnonzero(~self.is_mated & ~np.isfinite(self.best_nonmate))
        bad = rows[~self._beyond(threshold, rows)]
        if bad.size == 0:
            return None
        return (f"{bad.size} non-mated search(es) returned no candidate, so their best non-mate is only known to score "
                f"{'below' if self.unseen_strict[bad[0]] else 'at most'} {_fmt(self.unseen_bound[bad[0]])} "
                f"(e.g. search {self.search_ids[bad[0]]}); FPIR is measurable only at thresholds at or above "
                f"the system's cut")

    def fnir_problem(self, threshold: float, rank: int) -> str | None:
        """None if FNIR(rank, threshold) is measurable, else the reason."""
        rows = np.flatnonzero(self.is_mated & ~self.mate_listed)
        if self.rank_only and np.isfinite(threshold):
            return "rank-only lists (no scores): no figure at a threshold is measurable"
        short = rows[self.n_listed[rows] < rank]
        if short.size == 0:
            return None
        if not self.rank_only:
            short = short[~self._beyond(threshold, short)]
            if short.size == 0:
                return None
        r = short[0]
        if self.n_returned[r] >= self.list_length[r]:
            why = f"their lists were cut at length {self.list_length[r]}"
        else:
            why = f"their lists were cut at the system's threshold ({_fmt(self.unseen_bound[r])})"
        listed = "listed nobody" if rank == 1 else f"listed fewer than {rank} people"
        return (f"{short.size} mated search(es) did not list the mate and {listed} "
                f"(e.g. search {self.search_ids[r]}: {self.n_listed[r]}); {why}, so whether the mate is within "
                f"rank {rank}{'' if not np.isfinite(threshold) else f' at threshold {_fmt(threshold)}'} is not observed")

    def measurable_ranks(self, threshold: float = -np.inf) -> int:
        """Largest R with FNIR(r, threshold) measurable for every r <= R (0 if none)."""
        top = int(self.list_length.max()) if self.list_length.size else 0
        best = 0
        for r in range(1, top + 1):
            if self.fnir_problem(threshold, r) is not None:
                break
            best = r
        return best

    def fpir_domain(self) -> dict:
        """The lowest threshold at which FPIR is measurable (``None``: nowhere)."""
        if self.rank_only:
            return {"from": None, "inclusive": False}
        rows = np.flatnonzero(~self.is_mated & ~np.isfinite(self.best_nonmate))
        if rows.size == 0:
            return {"from": -np.inf, "inclusive": True}
        u = self.unseen_bound[rows]
        top = float(np.max(u))
        inclusive = bool(np.all(self.unseen_strict[rows][u == top]))
        return {"from": top, "inclusive": inclusive}


def _fmt(value) -> str:
    return "unknown" if value is None or np.isnan(value) else f"{value:.6g}"


def read_manifest(path) -> pd.DataFrame:
    """The evaluation set's manifest (CSV/Parquet with template_id, subject_id), validated."""
    from pathlib import Path

    from faceaudit.data.evalset import REQUIRED_COLUMNS, _read_table
    from faceaudit.data.reading import check_unique_columns, shown
    path = Path(path)
    if not path.exists():
        raise InputError("manifest file not found", path)
    if path.is_dir():
        raise InputError("manifest path is a folder, expected a file", path)
    table = _read_table(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"missing required column(s) {', '.join(missing)}", path)
    check_unique_columns(table, REQUIRED_COLUMNS, path)
    for col in REQUIRED_COLUMNS:
        if table[col].isna().any():
            row = int(np.flatnonzero(table[col].isna().to_numpy())[0])
            raise InputError(f"empty {col} in row {row + 2 if path.suffix.lower() == '.csv' else row}", path)
        table[col] = table[col].astype(str)
    dup = table["template_id"].duplicated()
    if dup.any():
        raise InputError(f"duplicate template_id, e.g. {shown(table['template_id'][dup].iloc[0])}", path)
    return table.reset_index(drop=True)


def read_gallery(path, manifest: pd.DataFrame) -> np.ndarray:
    """Gallery template ids from a protocol file (``template_id``, ``role``; rows with role
    ``gallery``). Other roles are ignored: the lists say which probes were searched."""
    from pathlib import Path

    from faceaudit.data.reading import read_parquet, reason, shown
    path = Path(path)
    if not path.exists():
        raise InputError("protocol file not found", path)
    if path.is_dir():
        raise InputError("protocol path is a folder, expected a file", path)
    try:
        table = pd.read_csv(path, dtype=str) if path.suffix.lower() == ".csv" else read_parquet(path, "protocol")
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is one clear line
        raise InputError(f"cannot read protocol ({reason(exc)})", path) from None
    for col in ("template_id", "role"):
        if col not in table.columns:
            raise InputError(f"missing required column {col}", path)
    roles = table["role"].astype(str).str.strip().str.lower()
    bad = ~roles.isin(["gallery", "probe"])
    if bad.any():
        raise InputError(f"row {int(np.flatnonzero(bad)[0]) + 2}: role must be 'gallery' or 'probe', "
                         f"got '{shown(table['role'][bad].iloc[0])}'", path)
    ids = table["template_id"].astype(str)[(roles == "gallery").to_numpy()]
    unknown = ~ids.isin(set(manifest["template_id"]))
    if unknown.any():
        raise InputError(f"{int(unknown.sum())} gallery template_id(s) not in the manifest, "
                         f"e.g. {shown(ids[unknown].iloc[0])}", path)
    if ids.empty:
        raise InputError("empty gallery: no row has role 'gallery'", path)
    return ids.to_numpy()


def observe(lists: CandidateLists, manifest: pd.DataFrame, gallery_ids) -> ObservedSearches:
    """Read lists into :class:`ObservedSearches` (see the module docstring).

    Raises :class:`InputError` naming the lists file and search for: a probe or candidate id not
    in the manifest, a probe that is a gallery template, a candidate that is not a gallery
    template.
    """
    src = lists.source
    tids = manifest["template_id"].astype(str).to_numpy()
    subj_of = dict(zip(tids, manifest["subject_id"].astype(str).to_numpy()))
    row_of = {t: i for i, t in enumerate(tids)}
    gallery_ids = set(map(str, gallery_ids))
    gallery_subjects = np.unique([subj_of[t] for t in gallery_ids])
    enrolled = set(gallery_subjects.tolist())
    s = lists.searches
    n = len(s)
    probe_ids = s["probe_id"].astype(str).to_numpy()
    search_ids = s["search_id"].astype(str).to_numpy()
    for sid, p in zip(search_ids, probe_ids):
        if p not in row_of:
            raise InputError(f"search {sid}: probe_id {p} is not in the manifest", src)
        if p in gallery_ids:
            raise InputError(f"search {sid}: probe {p} is a gallery template; a probe must never be searched "
                             "against its own template", src)
    probe_subjects = np.array([subj_of[p] for p in probe_ids], dtype=object)
    is_mated = np.array([x in enrolled for x in probe_subjects], dtype=bool)
    if not (~is_mated).any():
        raise InputError("no non-mated searches: every searched probe's subject is enrolled, so FPIR cannot be measured", src)
    if not is_mated.any():
        raise InputError("no mated searches: no searched probe's subject is enrolled, so FNIR cannot be measured", src)
    c = lists.candidates
    cids = c["candidate_id"].astype(str).to_numpy()
    csearch = c["search"].to_numpy()
    for sid_row, cid in zip(csearch, cids):
        if cid not in row_of:
            raise InputError(f"search {search_ids[sid_row]}: candidate {cid} is not in the manifest", src)
        if cid not in gallery_ids:
            raise InputError(f"search {search_ids[sid_row]}: candidate {cid} is not a gallery template of the protocol", src)
    cscore = c["score"].to_numpy(np.float64)
    cdecision = c["decision"].to_numpy(object)
    has_decisions = bool(len(c)) and any(d is not None and d is not pd.NA for d in cdecision)
    decided = np.array([bool(d) if d is not None and d is not pd.NA else False for d in cdecision], bool)
    rank_only = bool(len(c)) and bool(np.isnan(cscore).all())
    length = s["list_length"].to_numpy(np.int64)
    thr = s["threshold"].to_numpy(np.float64) if s["threshold"].notna().any() else np.full(n, np.nan)
    applied = s["threshold_applied"].to_numpy(bool)
    systems = s["system"].astype(str).to_numpy()
    # an applied threshold of unknown value is at most the lowest score its system returned
    sys_min = {}
    for name in np.unique(systems):
        scores = cscore[np.isin(csearch, np.flatnonzero(systems == name))]
        sys_min[name] = float(np.nanmin(scores)) if scores.size and np.isfinite(scores).any() else np.inf
    k_max = int(length.max())
    cand_u = np.full((n, k_max), -1, np.int64)
    cand_s = np.full((n, k_max), np.nan)
    best = np.full(n, -np.inf)
    mate_score = np.where(is_mated, -np.inf, np.nan)
    mate_rank = np.where(is_mated, UNSEEN_RANK, 0).astype(np.int64)
    mate_listed = np.zeros(n, bool)
    n_returned = np.bincount(csearch, minlength=n).astype(np.int64)
    n_listed = np.zeros(n, np.int64)
    bound = np.full(n, -np.inf)
    strict = np.ones(n, bool)
    code_of = {u: i for i, u in enumerate(gallery_subjects)}
    starts = np.searchsorted(csearch, np.arange(n + 1))
    decided_any = np.zeros(n, bool)
    mate_decided = np.zeros(n, bool)
    for i in range(n):
        lo, hi = starts[i], starts[i + 1]
        if has_decisions:
            decided_any[i] = decided[lo:hi].any()
            mate_decided[i] = bool(is_mated[i]) and any(decided[j] and subj_of[cids[j]] == probe_subjects[i]
                                                         for j in range(lo, hi))
        seen, subj_scores = [], []
        for j in range(lo, hi):
            u = subj_of[cids[j]]
            if u in seen:
                continue  # a later template of a listed subject: the subject's score is its best
            seen.append(u)
            subj_scores.append(cscore[j])
        m = len(seen)
        n_listed[i] = m
        cand_u[i, :m] = [code_of[u] for u in seen]
        cand_s[i, :m] = subj_scores
        sc = np.asarray(subj_scores, float)
        nonmate = np.array([u != probe_subjects[i] for u in seen], bool)
        if nonmate.any() and not rank_only:
            best[i] = sc[nonmate].max()
        if is_mated[i] and probe_subjects[i] in seen:
            pos = seen.index(probe_subjects[i])
            mate_listed[i] = True
            if rank_only:
                mate_rank[i] = pos + 1
            else:
                mate_score[i] = sc[pos]
                mate_rank[i] = 1 + int(np.count_nonzero(sc[nonmate] >= sc[pos]))
        if rank_only:
            bound[i], strict[i] = np.nan, False
        elif n_returned[i] >= length[i]:
            bound[i], strict[i] = cscore[hi - 1], False
        elif applied[i]:
            bound[i] = thr[i] if np.isfinite(thr[i]) else sys_min[systems[i]]
    if rank_only:
        best[:] = np.nan
        mate_score = np.where(is_mated, np.nan, np.nan)
    scale = s["score_scale"].dropna()
    return ObservedSearches(
        score=("rank only" if rank_only else (f"system scale {scale.iloc[0]}" if len(scale) else "system scale")),
        search_ids=search_ids, probe_ids=probe_ids, probe_rows=np.array([row_of[p] for p in probe_ids], np.int64),
        is_mated=is_mated, probe_subjects=probe_subjects, gallery_subjects=gallery_subjects,
        best_nonmate=best, mate_score=mate_score, mate_rank=mate_rank, mate_listed=mate_listed,
        candidates_subject=cand_u, candidates_score=cand_s, list_length=length, n_returned=n_returned,
        n_listed=n_listed, unseen_bound=bound, unseen_strict=strict, threshold=thr, threshold_applied=applied,
        rank_only=rank_only, systems=sorted(set(systems.tolist())), has_decisions=has_decisions,
        decided_any=decided_any, mate_decided=mate_decided)

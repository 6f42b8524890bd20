"""The candidate-list schema: what a black-box system returned for each search.

One row per (search, candidate). CSV, Parquet or JSON Lines (``.csv``, ``.parquet``, ``.jsonl``).

Per candidate:

* ``search_id`` (text, required): one search;
* ``probe_id`` (text, required): the probe's ``template_id`` in the evaluation set's manifest;
* ``rank`` (integer >= 1): the candidate's position in the list (1 = best). Empty, together with
  ``candidate_id``, on the single row of a search that returned no candidate;
* ``candidate_id`` (text): the gallery template the system returned (a ``template_id`` of the
  manifest, or an id translated to one by an id map);
* ``score`` (number, may be empty): the system's similarity; a system either scores every
  candidate or none (*rank-only*);
* ``decision`` (true/false, optional): the system's own match decision for the candidate.

Per search (the same on every row of a search):

* ``list_length`` (integer >= 1, required): the longest list the search asked for (L);
* ``threshold`` (number, optional): the system's own threshold t, if it applied one and said which;
* ``threshold_applied`` (true/false, optional; default: whether ``threshold`` is given): true with an
  empty ``threshold`` means a threshold was applied but its value is unknown;
* ``system``, ``system_version`` (text; ``system`` defaults to "system"), ``score_scale`` (text,
  optional, ``"LO-HI"`` such as ``"0-100"``): every score must lie in it, and one system has one scale.

In JSON Lines, one line per search: the per-search fields plus ``candidates``, a list of objects
with ``rank`` (optional: list order), ``candidate_id``, ``score`` and ``decision``.

:func:`read_lists` validates everything and raises :class:`~auditcore.errors.InputError` naming the
file and row (CSV: line number; Parquet: row index from 0; JSON Lines: line number) for: a missing
column, an empty id, a rank that is not a positive integer, duplicate or missing ranks, scores that
rise with rank (not in rank order), a candidate listed twice in one search, per-search fields that
differ between rows of one search, scores on different scales (or outside the declared scale)
within one system, a system that scores some candidates and not others, more candidates than the
list length, and a probe searched twice.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from auditcore.errors import InputError
from faceaudit.data.reading import check_unique_columns, read_parquet, reason, shown

CANDIDATE_COLUMNS = ("search_id", "probe_id", "rank", "candidate_id", "score", "decision")
SEARCH_COLUMNS = ("list_length", "threshold", "threshold_applied", "system", "system_version", "score_scale")
REQUIRED = ("search_id", "probe_id", "rank", "candidate_id", "list_length")
COLUMNS = CANDIDATE_COLUMNS + SEARCH_COLUMNS


@dataclass(frozen=True)
class CandidateLists:
    """Validated lists: ``searches`` (one row per search, in file order) and ``candidates``
    (one row per candidate, sorted by search then rank; ``search`` is the row of ``searches``)."""

    searches: pd.DataFrame
    candidates: pd.DataFrame
    source: str = "in-memory"

    @property
    def n_searches(self) -> int:
        return len(self.searches)

    def to_frame(self) -> pd.DataFrame:
        """The flat schema (one row per candidate; one empty row per search with no candidate)."""
        s = self.searches.reset_index(drop=True)
        c = self.candidates
        rows = s.loc[c["search"].to_numpy()].reset_index(drop=True)
        flat = pd.concat([rows, c[["rank", "candidate_id", "score", "decision"]].reset_index(drop=True)], axis=1)
        flat["_row"] = c["search"].to_numpy()
        has = np.zeros(len(s), bool)
        has[c["search"].to_numpy()] = True
        empty = s.loc[~has].copy()
        empty["_row"] = np.flatnonzero(~has)
        flat = pd.concat([flat, empty], ignore_index=True) if len(empty) else flat
        flat = flat.sort_values(["_row", "rank"], kind="stable", na_position="first")
        flat["rank"] = flat["rank"].astype("Int64")
        flat["list_length"] = flat["list_length"].astype("Int64")
        flat["decision"] = flat["decision"].astype("boolean")
        return flat[list(COLUMNS)].reset_index(drop=True)


def _row_label(path, kind: str, index: int) -> str:
    if kind == "csv":
        return f"line {index + 2}"
    if kind == "jsonl":
        return f"line {index + 1}"
    return f"row {index}"


def _parse_scale(text: str, where: str, path) -> tuple[float, float]:
    m = re.fullmatch(r"\s*(-?[0-9.eE+]+)\s*(?:-|to|\.\.)\s*(-?[0-9.eE+]+)\s*", str(text))
    if not m:
        raise InputError(f"{where}: score_scale must be 'LO-HI' (e.g. 0-100), got '{shown(text)}'", path)
    lo, hi = float(m.group(1)), float(m.group(2))
    if not lo < hi:
        raise InputError(f"{where}: score_scale '{shown(text)}' is empty", path)
    return lo, hi


def _bool(value, where: str, path):
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "t"):
        return True
    if text in ("false", "0", "no", "f"):
        return False
    if text == "":
        return None
    raise InputError(f"{where}: expected true or false, got '{shown(value)}'", path)


def _read_jsonl(path: Path) -> pd.DataFrame:
    rows = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read candidate lists ({exc})", path) from None
    for i, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as exc:
            why = shown(getattr(exc, "msg", None) or reason(exc))  # an integer of 5,000 digits has no msg
            raise InputError(f"line {i + 1}: not valid JSON ({why})", path) from None
        except RecursionError:
            raise InputError(f"line {i + 1}: not valid JSON (nested too deeply)", path) from None
        if not isinstance(rec, dict):
            raise InputError(f"line {i + 1}: expected a JSON object (one search)", path)
        cands = rec.get("candidates", [])
        if not isinstance(cands, list):
            raise InputError(f"line {i + 1}: 'candidates' must be a list", path)
        rows.extend(_search_rows(rec, cands, i, path, "a JSON object"))
    if not rows:
        raise InputError("no searches in this file", path)
    return pd.DataFrame(rows)


def _search_rows(rec: dict, cands, line: int, source, an_object: str) -> list[dict]:
    """One search record's rows of the long table: one per candidate, or one row without a
    candidate for an empty list (JSON Lines files and in-memory records alike)."""
    base = {k: rec.get(k) for k in ("search_id", "probe_id") + SEARCH_COLUMNS}
    if not cands:
        return [{**base, "rank": None, "candidate_id": None, "score": None, "decision": None, "_line": line}]
    rows = []
    for j, c in enumerate(cands):
        if not isinstance(c, dict):
            raise InputError(f"line {line + 1}: candidate {j + 1} must be {an_object}", source)
        rows.append({**base, "rank": c.get("rank", j + 1), "candidate_id": c.get("candidate_id"),
                     "score": c.get("score"), "decision": c.get("decision"), "_line": line})
    return rows


def _read_any(path: Path) -> tuple[pd.DataFrame, str]:
    if not path.exists():
        raise InputError("candidate-list file not found", path)
    if path.is_dir():
        raise InputError("candidate-list path is a folder, expected a file", path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""]), "csv"
        if suffix in (".parquet", ".pq"):
            return read_parquet(path, "candidate lists"), "parquet"
    except (pd.errors.EmptyDataError, pd.errors.ParserError, OSError, ValueError) as exc:
        raise InputError(f"cannot read candidate lists ({exc.__class__.__name__}: {reason(exc)})", path) from None
    if suffix in (".jsonl", ".ndjson"):
        return _read_jsonl(path), "jsonl"
    raise InputError(f"unsupported candidate-list format '{suffix}' (use .csv, .parquet or .jsonl)", path)


def _text(value) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _number(value, what: str, where: str, path) -> float | None:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = float(value)
        except ValueError:
            raise InputError(f"{where}: {what} is not a number: '{shown(value)}'", path) from None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{where}: {what} is not a number: '{shown(value)}'", path) from None
    if math.isnan(number):
        return None
    if not math.isfinite(number):
        raise InputError(f"{where}: {what} is not finite", path)
    return number


MAX_INTEGER = 2**31 - 1  # a rank or list length beyond this is not a list any system returned


def _integer(value, what: str, where: str, path, minimum: int = 1) -> int | None:
    number = _number(value, what, where, path)
    if number is None:
        return None
    if number != int(number) or number < minimum:
        raise InputError(f"{where}: {what} must be an integer >= {minimum}, got '{shown(value)}'", path)
    if number > MAX_INTEGER:
        raise InputError(f"{where}: {what} {shown(value)} is too large (at most {MAX_INTEGER:,})", path)
    return int(number)


def from_frame(frame: pd.DataFrame, source="in-memory", *, kind: str = "parquet") -> CandidateLists:
    """Validate a flat table in the schema (see the module docstring)."""
    path = source
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise InputError(f"missing required column(s) {', '.join(missing)} "
                         f"(found: {shown(', '.join(map(str, frame.columns)), 200) or 'none'})", path)
    check_unique_columns(frame, COLUMNS + ("_line",), path)
    if len(frame) == 0:
        raise InputError("no searches: the table has no rows", path)
    frame = frame.reset_index(drop=True)
    # "_line": the line of each row in a JSON Lines file (set by the readers; a table's own column is data)
    lines = frame["_line"].to_numpy() if "_line" in frame.columns and kind == "jsonl" else np.arange(len(frame))
    get = {c: (frame[c].tolist() if c in frame.columns else [None] * len(frame)) for c in COLUMNS}
    searches: dict[str, dict] = {}
    order: list[str] = []
    cands: dict[str, list] = {}
    for i in range(len(frame)):
        where = _row_label(path, kind, int(lines[i]))
        sid = _text(get["search_id"][i])
        if sid is None:
            raise InputError(f"{where}: empty search_id", path)
        probe = _text(get["probe_id"][i])
        if probe is None:
            raise InputError(f"{where}: empty probe_id", path)
        length = _integer(get["list_length"][i], "list_length", where, path)
        if length is None:
            raise InputError(f"{where}: empty list_length (the list length the search asked for)", path)
        threshold = _number(get["threshold"][i], "threshold", where, path)
        applied = _bool(get["threshold_applied"][i], where, path)
        applied = (threshold is not None) if applied is None else applied
        if threshold is not None and not applied:
            raise InputError(f"{where}: threshold given but threshold_applied is false", path)
        system = _text(get["system"][i]) or "system"
        info = {"search_id": sid, "probe_id": probe, "list_length": length, "threshold": threshold,
                "threshold_applied": applied, "system": system,
                "system_version": _text(get["system_version"][i]), "score_scale": _text(get["score_scale"][i])}
        if sid not in searches:
            searches[sid] = {**info, "_where": where}
            order.append(sid)
            cands[sid] = []
        else:
            first = searches[sid]
            for key, value in info.items():
                if first[key] != value and not (key == "threshold" and value is not None and first[key] is not None
                                                and np.isclose(value, first[key], rtol=0, atol=0)):
                    raise InputError(f"{where}: search {shown(sid)} has {key} '{shown(value)}' here but '{shown(first[key])}' "
                                     f"at {first['_where']}", path)
        rank = _integer(get["rank"][i], "rank", where, path)
        cid = _text(get["candidate_id"][i])
        score = _number(get["score"][i], "score", where, path)
        if rank is None and cid is None:
            if score is not None:
                raise InputError(f"{where}: a score without a candidate", path)
            cands[sid].append(None)  # marks "no candidate" row
            continue
        if rank is None:
            raise InputError(f"{where}: candidate {shown(cid)} has no rank", path)
        if cid is None:
            raise InputError(f"{where}: rank {rank} has no candidate_id", path)
        cands[sid].append({"rank": rank, "candidate_id": cid, "score": score,
                           "decision": _bool(get["decision"][i], where, path), "_where": where})
    search_rows, cand_rows = [], []
    scales: dict[str, tuple] = {}
    scored: dict[str, tuple] = {}
    probes: dict[str, str] = {}
    for index, sid in enumerate(order):
        info = searches[sid]
        if info["probe_id"] in probes:
            raise InputError(f"{info['_where']}: probe {shown(info['probe_id'])} is searched twice (searches "
                             f"{shown(probes[info['probe_id']])} and {shown(sid)}); each probe may be searched once", path)
        probes[info["probe_id"]] = sid
        entries = cands[sid]
        real = [c for c in entries if c is not None]
        if real and len(real) != len(entries):
            raise InputError(f"{info['_where']}: search {shown(sid)} has both candidates and an empty row", path)
        if len(entries) - len(real) > 1:
            raise InputError(f"{info['_where']}: search {shown(sid)} has more than one empty row", path)
        real.sort(key=lambda c: c["rank"])
        seen_rank, seen_cand = {}, {}
        for c in real:
            if c["rank"] in seen_rank:
                raise InputError(f"{c['_where']}: duplicate rank {c['rank']} in search {shown(sid)} "
                                 f"(also at {seen_rank[c['rank']]})", path)
            seen_rank[c["rank"]] = c["_where"]
            if c["candidate_id"] in seen_cand:
                raise InputError(f"{c['_where']}: candidate {shown(c['candidate_id'])} listed twice in search {shown(sid)} "
                                 f"(also at {seen_cand[c['candidate_id']]})", path)
            seen_cand[c["candidate_id"]] = c["_where"]
        for expect, c in enumerate(real, start=1):
            if c["rank"] != expect:
                raise InputError(f"{c['_where']}: search {shown(sid)} has rank {c['rank']} but no rank {expect}; "
                                 "ranks must be 1, 2, 3, ...", path)
        if len(real) > info["list_length"]:
            raise InputError(f"{real[-1]['_where']}: search {shown(sid)} returned {len(real)} candidates but asked for "
                             f"at most list_length {info['list_length']}", path)
        system = info["system"]
        scale = info["score_scale"]
        if system in scales and scales[system][0] != scale:
            raise InputError(f"{info['_where']}: system {shown(system)} has scores on scale '{shown(scale)}' here but "
                             f"'{shown(scales[system][0])}' at {scales[system][1]}; one system has one score scale", path)
        scales.setdefault(system, (scale, info["_where"]))
        bounds = _parse_scale(scale, info["_where"], path) if scale else None
        for prev, c in zip([None] + real[:-1], real):
            has = c["score"] is not None
            if system in scored and scored[system][0] != has:
                raise InputError(f"{c['_where']}: system {shown(system)} gives a score here but not at {scored[system][1]}"
                                 if has else f"{c['_where']}: no score here, but system {shown(system)} gives scores "
                                 f"(e.g. {scored[system][1]}); a system scores every candidate or none", path)
            scored.setdefault(system, (has, c["_where"]))
            if has and bounds and not bounds[0] <= c["score"] <= bounds[1]:
                raise InputError(f"{c['_where']}: score {c['score']:g} is outside system {shown(system)}'s scale "
                                 f"'{shown(scale)}'", path)
            if has and prev is not None and c["score"] > prev["score"]:
                raise InputError(f"{c['_where']}: search {shown(sid)} is not in rank order: rank {c['rank']} scores "
                                 f"{c['score']:g}, above rank {prev['rank']} ({prev['score']:g})", path)
            if has and info["threshold"] is not None and c["score"] < info["threshold"]:
                raise InputError(f"{c['_where']}: score {c['score']:g} is below the system's threshold "
                                 f"{info['threshold']:g} for search {shown(sid)}", path)
            cand_rows.append({"search": index, "rank": c["rank"], "candidate_id": c["candidate_id"],
                              "score": np.nan if c["score"] is None else c["score"], "decision": c["decision"]})
        if bounds and info["threshold"] is not None and not bounds[0] <= info["threshold"] <= bounds[1]:
            raise InputError(f"{info['_where']}: threshold {info['threshold']:g} is outside the scale '{shown(scale)}'", path)
        search_rows.append({k: v for k, v in info.items() if k != "_where"})
    searches_df = pd.DataFrame(search_rows, columns=["search_id", "probe_id"] + list(SEARCH_COLUMNS))
    cand_df = pd.DataFrame(cand_rows, columns=["search", "rank", "candidate_id", "score", "decision"])
    cand_df = cand_df.astype({"search": np.int64, "rank": np.int64, "score": np.float64})
    return CandidateLists(searches_df, cand_df, str(source))


def read_lists(path: str | Path) -> CandidateLists:
    """Read and validate a candidate-list file (CSV, Parquet or JSON Lines)."""
    path = Path(path)
    frame, kind = _read_any(path)
    return from_frame(frame, path, kind=kind)


def write_lists(lists: CandidateLists, path: str | Path) -> Path:
    """Write lists in the flat schema; the format follows the suffix (.csv, .parquet, .jsonl)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        with open(path, "w", encoding="utf-8") as fh:
            for record in lists_to_records(lists):
                fh.write(json.dumps(record, allow_nan=False) + "\n")
        return path
    flat = lists.to_frame()
    if suffix == ".csv":
        flat.to_csv(path, index=False)
    elif suffix in (".parquet", ".pq"):
        flat.to_parquet(path, index=False)
    else:
        raise InputError(f"unsupported candidate-list format '{suffix}' (use .csv, .parquet or .jsonl)", path)
    return path


def _clean(value):
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def lists_to_records(lists: CandidateLists) -> list[dict]:
    """One JSON-ready record per search (the JSON Lines form)."""
    groups = {k: g for k, g in lists.candidates.groupby("search")}
    out = []
    for i, row in enumerate(lists.searches.itertuples(index=False)):
        rec = {k: _clean(v) for k, v in row._asdict().items()}
        g = groups.get(i)
        rec["candidates"] = [] if g is None else [
            {"rank": int(r.rank), "candidate_id": r.candidate_id, "score": _clean(r.score), "decision": _clean(r.decision)}
            for r in g.itertuples(index=False)]
        out.append(rec)
    return out


def records_to_lists(records: list[dict], source="in-memory") -> CandidateLists:
    """Validate JSON-ready per-search records (the JSON Lines form)."""
    if isinstance(records, (str, bytes, dict)) or not isinstance(records, Iterable):
        raise InputError("expected a list of searches (one object per search)", source)
    rows = []
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise InputError(f"line {i + 1}: expected an object (one search)", source)
        line = rec.get("_line", i)
        line = line if isinstance(line, int) and not isinstance(line, bool) else i
        cands = rec.get("candidates") or []
        if not isinstance(cands, (list, tuple)):
            raise InputError(f"line {line + 1}: 'candidates' must be a list", source)
        rows.extend(_search_rows(rec, cands, line, source, "an object"))
    if not rows:
        raise InputError("no searches", source)
    return from_frame(pd.DataFrame(rows), source, kind="jsonl")

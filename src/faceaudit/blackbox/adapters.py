"""Response bodies of search services -> candidate lists in the schema.

An adapter is declarative: where the candidates are in a response body, which field of each is
the gallery id, the score and (optionally) a validity flag, the score scale, and which request
parameters set the list length and the threshold. Three are built in:

* ``rekognition``: AWS Rekognition ``SearchFacesByImage``: ``FaceMatches[]``, id
  ``Face.ExternalImageId``, score ``Similarity`` on 0-100; the list is cut by ``MaxFaces``
  (default 80) and ``FaceMatchThreshold`` (default 80); version from ``FaceModelVersion``;
* ``azure``: Azure Face ``identify`` for one face: ``[0].candidates[]``, id ``personId``, score
  ``confidence`` on 0-1; cut by ``maxNumOfCandidatesReturned`` (default 10) and
  ``confidenceThreshold`` (when the request did not set it, a threshold of unknown value applied);
  ``personId`` is the system's id, translated to a manifest ``template_id`` with an id map;
* ``nist``: NIST FRTE 1:N style: ``candidates[]`` of ``{templateId, score, isAssigned}``, exactly
  L entries, no threshold; entries with ``isAssigned`` false are padding and are dropped.

A user-defined adapter is a TOML file with the same keys under ``[response]`` (see
docs/blackbox.md); :func:`parse_response` applies one to a body. Saved responses are imported from
JSON Lines, one search per line: ``{"search_id", "probe_id", "request": {...}, "response": ...}``
(``request`` holds the parameters that were sent, so that L and t are known).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from auditcore.errors import InputError
from auditcore.http_runner import get_path  # noqa: F401 (dotted paths in responses, shared with flagaudit)
from faceaudit.data.candidates import CandidateLists, records_to_lists
from faceaudit.data.reading import reason, shown

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib


@dataclass(frozen=True)
class ResponseSpec:
    """Where a response body keeps its candidate list (dotted paths; integers index lists)."""

    name: str
    candidates: str
    id: str
    score: str | None = None
    valid: str | None = None
    decision: str | None = None
    score_scale: str | None = None
    version: str | None = None
    list_length_param: str | None = None
    threshold_param: str | None = None
    default_list_length: int | None = None
    default_threshold: float | None = None
    threshold_always: bool = False
    system: str | None = None
    extra: dict = field(default_factory=dict)


BUILTIN = {
    "rekognition": ResponseSpec(
        name="rekognition", candidates="FaceMatches", id="Face.ExternalImageId", score="Similarity",
        score_scale="0-100", version="FaceModelVersion", list_length_param="MaxFaces",
        threshold_param="FaceMatchThreshold", default_list_length=80, default_threshold=80.0,
        system="AWS Rekognition SearchFacesByImage"),
    "azure": ResponseSpec(
        name="azure", candidates="0.candidates", id="personId", score="confidence", score_scale="0-1",
        list_length_param="maxNumOfCandidatesReturned", threshold_param="confidenceThreshold",
        default_list_length=10, threshold_always=True, system="Azure Face identify"),
    "nist": ResponseSpec(
        name="nist", candidates="candidates", id="templateId", score="score", valid="isAssigned",
        list_length_param="candidateListLength", system="NIST FRTE 1:N style"),
}

_SPEC_KEYS = {"candidates", "id", "score", "valid", "decision", "score_scale", "version", "list_length_param",
              "threshold_param", "default_list_length", "default_threshold", "threshold_always", "system"}


_TEXT_KEYS = ("score", "valid", "decision", "score_scale", "version", "list_length_param", "threshold_param", "system")


def spec_from_table(table: dict, name: str, source=None) -> ResponseSpec:
    """A :class:`ResponseSpec` from a TOML ``[response]`` table (unknown keys and values of the wrong
    type are refused)."""
    if not isinstance(table, dict):
        raise InputError("[response] must be a table", source)
    unknown = set(table) - _SPEC_KEYS
    if unknown:
        raise InputError(f"[response]: unknown key(s) {shown(', '.join(sorted(map(str, unknown))), 200)}", source)
    for key in ("candidates", "id"):
        if not isinstance(table.get(key), str) or not table[key]:
            raise InputError(f"[response]: '{key}' (a dotted path) is required", source)
    for key in _TEXT_KEYS:
        if key in table and not isinstance(table[key], str):
            raise InputError(f"[response]: '{key}' must be text (a string)", source)
    length = table.get("default_list_length")
    if length is not None and (not isinstance(length, int) or isinstance(length, bool) or length < 1):
        raise InputError("[response]: 'default_list_length' must be an integer >= 1", source)
    threshold = table.get("default_threshold")
    if threshold is not None and (not isinstance(threshold, (int, float)) or isinstance(threshold, bool)
                                  or not math.isfinite(threshold)):
        raise InputError("[response]: 'default_threshold' must be a finite number", source)
    if not isinstance(table.get("threshold_always", False), bool):
        raise InputError("[response]: 'threshold_always' must be true or false", source)
    return ResponseSpec(name=name, **table)


def load_spec(name_or_path: str) -> ResponseSpec:
    """A built-in adapter by name, or the ``[response]`` table of an adapter TOML file."""
    if name_or_path in BUILTIN:
        return BUILTIN[name_or_path]
    path = Path(name_or_path)
    try:
        is_file = path.is_file()
    except (OSError, ValueError):  # a name no file can have (a NUL byte, too long)
        is_file = False
    if not is_file:
        raise InputError(f"unknown adapter '{shown(name_or_path)}' (built in: {', '.join(BUILTIN)}; "
                         "or an adapter .toml file)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:  # TOMLDecodeError, UnicodeDecodeError, an integer of 5,000 digits
        raise InputError(f"cannot read adapter file ({reason(exc)})", path) from None
    except RecursionError:
        raise InputError("cannot read adapter file (nested too deeply)", path) from None
    if "response" not in data or not isinstance(data["response"], dict):
        raise InputError("adapter file has no [response] table", path)
    return spec_from_table(data["response"], path.stem, path)


def parse_response(spec: ResponseSpec, body, request: dict | None = None, *, where: str = "response") -> dict:
    """One search's response body -> a schema record without ``search_id``/``probe_id``.

    ``request``: the parameters sent (list length and threshold are read from them, else the
    adapter's defaults). Raises :class:`InputError` naming ``where`` if the body does not have the
    shape the adapter describes.
    """
    request = request or {}
    if not isinstance(request, dict):
        raise InputError(f"{where}: the request parameters must be an object, got {shown(type(request).__name__)}")
    try:
        items = get_path(body, spec.candidates)
    except KeyError:
        raise InputError(f"{where}: no candidate list at '{spec.candidates}' in the response") from None
    if not isinstance(items, list):
        raise InputError(f"{where}: '{spec.candidates}' is not a list in the response")
    length = request.get(spec.list_length_param) if spec.list_length_param else None
    length = spec.default_list_length if length is None else length
    if length is None:
        raise InputError(f"{where}: the list length is unknown (the request has no '{spec.list_length_param}' "
                         "and the adapter no default); give it")
    threshold = request.get(spec.threshold_param) if spec.threshold_param else None
    threshold = spec.default_threshold if threshold is None else threshold
    candidates = []
    for j, item in enumerate(items):
        if spec.valid is not None:
            valid = get_path(item, spec.valid, None) if isinstance(item, (dict, list)) else None
            if valid is False:
                continue
        try:
            cid = get_path(item, spec.id)
            score = get_path(item, spec.score) if spec.score else None
        except KeyError as exc:
            raise InputError(f"{where}: candidate {j + 1} has no '{shown(exc.args[0])}'") from None
        if not isinstance(cid, (str, int)) or isinstance(cid, bool) or cid == "":
            raise InputError(f"{where}: candidate {j + 1} has an empty or non-text id")
        if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
            raise InputError(f"{where}: candidate {j + 1}'s score is not a number: {shown(repr(score))}")
        try:
            score = None if score is None else float(score)
        except OverflowError:
            raise InputError(f"{where}: candidate {j + 1}'s score is not a finite number") from None
        entry = {"candidate_id": str(cid), "score": score}
        if spec.decision:
            entry["decision"] = get_path(item, spec.decision, None)
        candidates.append(entry)
    version = get_path(body, spec.version, None) if spec.version else None
    return {"list_length": length, "threshold": threshold,
            "threshold_applied": True if spec.threshold_always or threshold is not None else None,
            "system": spec.system or spec.name, "system_version": None if version is None else str(version),
            "score_scale": spec.score_scale, "candidates": candidates}


def read_id_map(path) -> dict:
    """``system_id`` -> ``template_id`` from a CSV with those two columns."""
    import pandas as pd
    path = Path(path)
    if not path.exists():
        raise InputError("id map not found", path)
    try:
        table = pd.read_csv(path, dtype=str)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, OSError, ValueError) as exc:
        raise InputError(f"cannot read id map ({reason(exc)})", path) from None
    for col in ("system_id", "template_id"):
        if col not in table.columns:
            raise InputError(f"missing required column {col}", path)
        empty = table[col].isna().to_numpy()
        if empty.any():
            raise InputError(f"line {int(empty.nonzero()[0][0]) + 2}: empty {col}", path)
    dup = table["system_id"].duplicated()
    if dup.any():
        raise InputError(f"line {int(dup.to_numpy().nonzero()[0][0]) + 2}: system_id "
                         f"{shown(table['system_id'][dup].iloc[0])} listed twice", path)
    return dict(zip(table["system_id"], table["template_id"]))


def apply_id_map(record: dict, id_map: dict | None, where: str) -> dict:
    if not id_map:
        return record
    for c in record["candidates"]:
        if c["candidate_id"] not in id_map:
            raise InputError(f"{where}: candidate id {shown(c['candidate_id'])} is not in the id map")
        c["candidate_id"] = id_map[c["candidate_id"]]
    return record


def import_responses(path, adapter: str, *, list_length: int | None = None, threshold: float | None = None,
                     id_map: dict | None = None, system_version: str | None = None) -> CandidateLists:
    """Saved responses (JSON Lines, see the module docstring) -> validated candidate lists.

    ``list_length``/``threshold`` fill in what a line's ``request`` does not say.
    """
    spec = load_spec(adapter)
    path = Path(path)
    if not path.is_file():
        raise InputError("responses file not found", path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read responses ({exc})", path) from None
    records = []
    for i, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        where = f"{path}: line {i + 1}"
        try:
            rec = json.loads(line)
        except ValueError as exc:
            why = shown(getattr(exc, "msg", None) or reason(exc))
            raise InputError(f"line {i + 1}: the response record does not parse as JSON ({why})", path) from None
        except RecursionError:
            raise InputError(f"line {i + 1}: the response record is nested too deeply to read", path) from None
        if not isinstance(rec, dict) or "response" not in rec:
            raise InputError(f"line {i + 1}: expected an object with search_id, probe_id, request, response", path)
        if not isinstance(rec.get("request") or {}, dict):
            raise InputError(f"line {i + 1}: 'request' must be an object (the parameters sent)", path)
        request = dict(rec.get("request") or {})
        if list_length is not None and spec.list_length_param:
            request.setdefault(spec.list_length_param, list_length)
        if threshold is not None and spec.threshold_param:
            request.setdefault(spec.threshold_param, threshold)
        body = rec["response"]
        if isinstance(body, str):  # a raw body saved as text
            try:
                body = json.loads(body)
            except ValueError as exc:
                why = shown(getattr(exc, "msg", None) or reason(exc))
                raise InputError(f"line {i + 1}: the response body does not parse as JSON ({why})", path) from None
            except RecursionError:
                raise InputError(f"line {i + 1}: the response body is nested too deeply to read", path) from None
        parsed = parse_response(spec, body, request, where=where)
        if list_length is not None and not spec.list_length_param:
            parsed["list_length"] = list_length
        if system_version and not parsed["system_version"]:
            parsed["system_version"] = system_version
        apply_id_map(parsed, id_map, where)
        records.append({"search_id": rec.get("search_id", f"line{i + 1}"), "probe_id": rec.get("probe_id"), **parsed,
                        "_line": i})
    if not records:
        raise InputError("no responses in this file", path)
    return records_to_lists(records, path)

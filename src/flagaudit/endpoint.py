"""A flagging system under test behind an HTTP endpoint (``flagaudit audit --endpoint URL --adapter FILE``).

Each suite case's text is sent to the one endpoint the user names, one request per case, through
the runner the face audit's ``faceaudit query`` uses (:mod:`auditcore.http_runner`): the endpoint is
printed before the first request, redirects are never followed, TLS is verified, credentials come
only from the environment variables the adapter names and go only over https or to this machine
(unless ``--allow-plain-http``), a request not done within ``--timeout`` seconds in all, transport
faults (refused, reset or dropped connections, a body short of its length, a status line that is
not HTTP), 429/5xx and answers that are not JSON are retried with backoff, an answer larger than
``max_response_mib`` (8 MiB) or nested deeper than 200 levels stops the run at once, every attempt
is logged (time, status, latency, sha256 of the bodies; never headers), and every answered case is
journaled (fsync'd) before it counts, so a killed run, rerun with the same command, sends only the
cases not in the journal: none is repeated or lost.

The adapter is a TOML file (example: ``docs/adapters/flagger-example.toml``)::

    name = "my-moderation-api"
    [system]                      # optional, shown in the report
    name = "Example moderation API"
    version = "2024-05"
    [request]
    method = "POST"               # POST (default) or PUT: the text travels in the JSON body
    path = "/v1/classify"         # a path on the endpoint, never a URL
    [request.body]                # JSON body; {{case_id}}, {{text}}, {{language}} are filled in
    id = "{{case_id}}"
    input = "{{text}}"
    [response]                    # dotted paths into the JSON answer (integers index lists)
    flagged = "result.flagged"    # true/false, 1/0, or a label listed below
    positive_labels = ["threat"]  # only when 'flagged' holds labels: the labels that are a flag ...
    negative_labels = ["ok"]      # ... and those that are not (any other label stops the run)
    score = "result.score"        # optional: a number
    score_range = [0, 1]          # optional: a score outside it is a broken answer
    threshold = 0.5               # optional: the system's threshold on the score; required when there
                                  # is no 'flagged' path (then flagged = score >= threshold)
    [auth]                        # optional; the credential is read from the environment
    header = "Authorization"
    env = "FLAGGER_TOKEN"
    prefix = "Bearer "
    [limits]                      # optional: concurrency, rate, timeout_s, max_attempts, backoff_s, backoff_max_s,
                                  # max_response_mib (the largest answer accepted, default 8)

An answer that parses but does not hold what the adapter says (no flag at the path, an unknown
label, a score that is not a number or off its range) stops the run with one line naming the
request; the results folder is not written, the journal keeps what was answered before.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from auditcore.errors import InputError
from auditcore.http_runner import (Client, Fatal, Journal, QueryConfig, RequestSpec, announce_line, apply_limits,
                                   auth_entries, check_credentials_transport, check_endpoint, check_limits, fill,
                                   get_path, journal_paths, read_toml, request_spec, run_parallel, sha256_bytes)
from flagaudit.systems import Flags

PLACEHOLDERS = ("case_id", "text", "language")
_TEXT_MARK = "<the case text 7f3a>"
_RESPONSE_KEYS = {"flagged", "positive_labels", "negative_labels", "score", "score_range", "threshold"}


@dataclass(frozen=True)
class FlagAdapter:
    """A flagging system's adapter file (see the module docstring)."""

    name: str
    sha256: str
    request: RequestSpec
    flagged: str | None = None
    positive_labels: tuple = ()
    negative_labels: tuple = ()
    score: str | None = None
    score_range: tuple | None = None
    threshold: float | None = None
    auth: tuple = ()
    system: str | None = None
    system_version: str | None = None
    limits: dict = field(default_factory=dict)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _labels(table: dict, key: str, path) -> tuple:
    labels = table.get(key, [])
    if not isinstance(labels, list) or not all(isinstance(x, str) and x.strip() for x in labels):
        raise InputError(f"[response] {key} must be a list of labels (strings)", path)
    return tuple(x.strip().lower() for x in labels)


def load_flag_adapter(path) -> FlagAdapter:
    """Read and check a flagging adapter file (TOML); every problem is one line naming the file."""
    path = Path(path)
    data, raw = read_toml(path)
    for key in ("request", "response"):
        if not isinstance(data.get(key), dict):
            raise InputError(f"adapter file has no [{key}] table", path)
    req = request_spec(dict(data["request"]), "request", path)
    if req.method == "GET":
        raise InputError("[request] method must be POST or PUT (the case text travels in the JSON body)", path)
    try:  # every placeholder known, and the text really sent: checked before any request
        probe = fill(req.body, {"case_id": "<id>", "text": _TEXT_MARK, "language": "<language>"})
    except KeyError as exc:
        raise InputError(f"[request] body uses an unknown placeholder {{{{{exc.args[0]}}}}} "
                         f"(known: {', '.join(PLACEHOLDERS)})", path) from None
    except ValueError:
        raise InputError("[request] body has a '{{' without its '}}'", path) from None
    if _TEXT_MARK not in json.dumps(probe):
        raise InputError("[request] body never sends the case text: put \"{{text}}\" in it", path)
    resp = data["response"]
    unknown = set(resp) - _RESPONSE_KEYS
    if unknown:
        raise InputError(f"[response]: unknown key(s) {', '.join(sorted(unknown))}", path)
    for key in ("flagged", "score"):
        if key in resp and (not isinstance(resp[key], str) or not resp[key]):
            raise InputError(f"[response] {key} must be a dotted path (a string)", path)
    flagged, score = resp.get("flagged"), resp.get("score")
    threshold = resp.get("threshold")
    if threshold is not None and not _number(threshold):
        raise InputError("[response] threshold must be a number", path)
    if flagged is None and (score is None or threshold is None):
        raise InputError("[response] needs 'flagged' (a path to the flag), or 'score' and 'threshold' "
                         "(flagged = score >= threshold)", path)
    if threshold is not None and score is None:
        raise InputError("[response] threshold is given but no 'score' path", path)
    score_range = resp.get("score_range")
    if score_range is not None:
        if (not isinstance(score_range, list) or len(score_range) != 2 or not all(_number(x) for x in score_range)
                or score_range[0] >= score_range[1]):
            raise InputError("[response] score_range must be [low, high] with low < high", path)
        score_range = (float(score_range[0]), float(score_range[1]))
    pos, neg = _labels(resp, "positive_labels", path), _labels(resp, "negative_labels", path)
    if bool(pos) != bool(neg):
        raise InputError("[response] give both positive_labels and negative_labels (or neither)", path)
    if set(pos) & set(neg):
        raise InputError(f"[response] label(s) both positive and negative: {', '.join(sorted(set(pos) & set(neg)))}",
                         path)
    system = data.get("system", {})
    if not isinstance(system, dict):
        raise InputError("[system] must be a table", path)
    return FlagAdapter(name=str(data.get("name", path.stem)), sha256=sha256_bytes(raw), request=req, flagged=flagged,
                       positive_labels=pos, negative_labels=neg, score=score, score_range=score_range,
                       threshold=None if threshold is None else float(threshold), auth=auth_entries(data, path),
                       system=system.get("name"), system_version=system.get("version"),
                       limits=check_limits(data.get("limits", {}), path))


def parse_flag(adapter: FlagAdapter, answer, where: str) -> tuple[bool, float | None]:
    """One answer -> (flagged, score); :class:`Fatal` naming ``where`` when it breaks the adapter."""
    score = None
    if adapter.score:
        try:
            score = get_path(answer, adapter.score)
        except KeyError:
            raise Fatal(f"{where}: no score at '{adapter.score}' in the response") from None
        if not _number(score):
            raise Fatal(f"{where}: the score at '{adapter.score}' is not a finite number: {str(score)[:40]!r}")
        score = float(score)
        if adapter.score_range and not adapter.score_range[0] <= score <= adapter.score_range[1]:
            raise Fatal(f"{where}: score {score:g} is outside the adapter's score_range "
                        f"[{adapter.score_range[0]:g}, {adapter.score_range[1]:g}]")
    if adapter.flagged is None:
        return score >= adapter.threshold, score
    try:
        value = get_path(answer, adapter.flagged)
    except KeyError:
        raise Fatal(f"{where}: no flag at '{adapter.flagged}' in the response") from None
    if isinstance(value, bool):
        return value, score
    if _number(value) and value in (0, 1):
        return bool(value), score
    if isinstance(value, str) and adapter.positive_labels:
        label = value.strip().lower()
        if label in adapter.positive_labels:
            return True, score
        if label in adapter.negative_labels:
            return False, score
        raise Fatal(f"{where}: label {value[:40]!r} at '{adapter.flagged}' is in neither positive_labels "
                    "nor negative_labels")
    raise Fatal(f"{where}: the flag at '{adapter.flagged}' is not true/false, 1/0 or a listed label: "
                f"{str(value)[:40]!r}")


def cases_sha256(cases: pd.DataFrame) -> str:
    """What the journal is about: the case ids and texts, in order."""
    return sha256_bytes(json.dumps(list(zip(cases["case_id"].astype(str), cases["text"].astype(str))),
                                   ensure_ascii=False).encode("utf-8"))


def query_flags(adapter: FlagAdapter, endpoint: str, cases: pd.DataFrame, out, *, journal_path=None,
                config: QueryConfig | None = None, overwrite: bool = False,
                announce: Callable[[str], None] = print,
                progress: Callable[[int, int], None] | None = None) -> tuple[Flags, dict]:
    """Send every case to the endpoint (resuming from the journal); the :class:`Flags` and a summary.

    ``out`` is the results folder the caller will write: checked first (so that a long run does
    not end on a folder it may not replace) and it names the default journal and request log
    beside it (``OUT.journal.jsonl``, ``OUT.requests.jsonl``).
    """
    from auditcore.outdir import check_target

    check_endpoint(endpoint)
    check_credentials_transport(endpoint, adapter.auth, bool(config and config.allow_plain_http))
    out = Path(out)
    check_target(out, overwrite=overwrite, program="flagaudit")
    if cases["case_id"].duplicated().any():
        raise InputError("case ids repeat across the suites")
    cfg = apply_limits(config or QueryConfig(endpoint), adapter.limits)
    journal_path, log_path = journal_paths(out, journal_path)
    header = {"kind": "run", "tool": "flagaudit", "endpoint": endpoint, "adapter": adapter.name,
              "adapter_sha256": adapter.sha256, "cases_sha256": cases_sha256(cases), "cases": len(cases),
              "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    journal_path.parent.mkdir(parents=True, exist_ok=True)
    client = Client(cfg, adapter, log_path)  # checks the credentials first
    try:
        journal = Journal(journal_path, header, keys=("endpoint", "adapter_sha256", "cases_sha256"),
                          who="flagaudit audit")
    except InputError:
        client.close()
        raise
    done: dict[str, tuple[bool, float | None]] = {}
    for e in journal.entries[1:]:
        if e.get("kind") == "case":
            done[e["case_id"]] = (bool(e["flagged"]), e.get("score"))
    ids = cases["case_id"].astype(str).tolist()
    row_of = {c: i for i, c in enumerate(ids)}
    todo = [c for c in ids if c not in done]
    texts, langs = cases["text"].astype(str).tolist(), cases["language"].astype(str).tolist()
    announce(announce_line(endpoint, f"{len(todo):,} case(s), one request each", len(done), journal_path))
    url = client.base + adapter.request.path

    def do_case(cid: str) -> None:
        i = row_of[cid]
        label = f"case {cid}"
        body = fill(adapter.request.body, {"case_id": cid, "text": texts[i], "language": langs[i]})
        answer = client.send(adapter.request, body, label)
        flagged, score = parse_flag(adapter, answer, f"request {label} to {url}")
        journal.append({"kind": "case", "case_id": cid, "flagged": bool(flagged), "score": score})
        done[cid] = (bool(flagged), score)

    started = time.monotonic()
    try:
        run_parallel(do_case, todo, client, cfg.concurrency, len(ids) - len(todo), len(ids), progress)
    except Fatal as exc:
        raise InputError(f"{exc} (answers so far are kept in the journal; rerun the same command to resume)",
                         journal_path) from None
    finally:
        client.close()
        journal.close()
    flagged = np.array([done[c][0] for c in ids], dtype=bool)
    scores = None
    if adapter.score:
        scores = np.array([done[c][1] for c in ids], dtype=float)
    system = " ".join(x for x in (adapter.system, adapter.system_version) if x)
    desc = ((f"{system} at " if system else "the system at ") + endpoint
            + f", adapter {adapter.name} (sha256 {adapter.sha256[:12]})"
            + ("" if adapter.threshold is None else f", threshold {adapter.threshold:g}"))
    summary = {"endpoint": endpoint, "adapter": adapter.name, "adapter_sha256": adapter.sha256,
               "system": adapter.system, "system_version": adapter.system_version, "cases": len(ids),
               "cases_from_journal": len(ids) - len(todo), "requests_this_run": client.counts["requests"],
               "retries_this_run": client.counts["retries"], "seconds_this_run": round(time.monotonic() - started, 3),
               "journal": str(journal_path), "request_log": str(log_path)}
    return Flags(flagged, scores, adapter.threshold, desc), summary


def query_cli(adapter: FlagAdapter, endpoint: str, cases: pd.DataFrame, out, *, journal=None, concurrency=4,
              rate=None, timeout=30.0, max_attempts=6, ca_bundle=None, overwrite=False,
              allow_plain_http=False) -> tuple[Flags, dict]:
    """:func:`query_flags` for the command line: the endpoint line on stdout, progress on stderr in a terminal."""
    import sys

    config = QueryConfig(endpoint, concurrency=concurrency, rate=rate, timeout_s=timeout, max_attempts=max_attempts,
                         ca_bundle=None if ca_bundle is None else str(ca_bundle), allow_plain_http=allow_plain_http)
    tty = sys.stderr.isatty()
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if tty and (done == total or now - last[0] > 0.2):
            last[0] = now
            print(f"\rquerying: {done:,}/{total:,} cases", end="\n" if done == total else "", file=sys.stderr,
                  flush=True)

    def announce(line: str) -> None:
        print(line, flush=True)

    try:
        flags, summary = query_flags(adapter, endpoint, cases, out, journal_path=journal, config=config,
                                     overwrite=overwrite, announce=announce, progress=progress)
    except BaseException:
        if tty and last[0]:  # end the progress line before the error line
            print(file=sys.stderr, flush=True)
        raise
    print(f"{summary['cases']:,} cases answered ({summary['cases_from_journal']:,} from the journal; "
          f"{summary['requests_this_run']:,} requests this run, {summary['retries_this_run']:,} retried)", flush=True)
    return flags, summary

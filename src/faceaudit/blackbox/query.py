"""The live runner: send an evaluation set to a system under test over HTTP, collect its lists.

``run_query`` (``faceaudit query``) enrols the gallery where the adapter says how, then sends one
search per probe, and writes a results folder with the candidate lists in the schema
(``lists.parquet``), the request log (``requests.jsonl``) and a summary (``query.json``).

Rules it keeps (the generic part, one endpoint, retries, rate, journal and request log, lives in
:mod:`auditcore.http_runner`, shared with ``flagaudit audit --endpoint``):

* **Checked before the first request**: every placeholder of the adapter's bodies is known
  (:func:`load_adapter`), ``{{template}}`` has templates and ``{{image_base64}}`` an ``image``
  column, and every image path the run will read lies inside the images folder
  (``--images-root``, default the manifest's folder; :func:`auditcore.paths.resolve_under`)
  unless the user allows otherwise (``allow_images_outside``).
* **One endpoint.** Every request goes to the ``endpoint`` the user names plus a path from the
  adapter file (a path, never a URL: a path with a scheme, a host, ``..`` or a query is refused).
  Redirects are never followed, environment proxies are ignored, TLS certificates are verified (a
  CA bundle may be given, verification cannot be switched off). The endpoint is printed before the
  first request.
* **Credentials** come only from the environment variables the adapter names (``[auth]``); they
  go into request headers and nowhere else: the log holds the time, status, latency and the sha256
  of each request and response *body*, never headers. They go only over https or to this machine,
  unless the user allows plain HTTP (``allow_plain_http`` in the config).
* **Faults.** A request not done within ``timeout_s`` in all, every transport fault (refused,
  reset or dropped connections, a body short of its length, a status line that is not HTTP),
  HTTP 429 and 5xx and a 2xx answer that is not JSON are retried with exponential backoff (with
  jitter; ``Retry-After`` is honoured up to the backoff cap), up to ``max_attempts`` per request;
  then the run stops with one line naming the request. Any other status, an answer larger than
  the adapter's ``max_response_mib`` (8 MiB), JSON nested deeper than 200 levels, or a response
  that parses but breaks the schema (not in rank order, off its scale), stops the run at once.
* **Journal.** Every finished enrolment and search is appended to a journal (JSON lines, flushed
  and fsync'd) before it counts. A killed run, rerun with the same arguments, reads it and sends
  only what is not in it: no finished search is repeated or lost (one in flight when the run died
  is sent again, since its answer was never recorded). A partial last line (killed mid-write) is
  dropped. The journal records the endpoint and the adapter's hash and refuses a resume against
  another one.
* **Concurrency and rate**: ``concurrency`` requests at a time, at most ``rate`` request starts
  per second.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from auditcore.errors import InputError

# the generic runner (one endpoint, retries, rate, journal, request log) is shared with flagaudit
from auditcore.http_runner import (  # noqa: F401
    RETRY_STATUS,
    Client,
    Fatal,
    Journal,
    QueryConfig,
    RateLimiter,
    RequestSpec,
    apply_limits,
    auth_entries,
    check_credentials_transport,
    check_endpoint,
    check_limits,
    check_path,
    fill,
    journal_paths,
    placeholders,
    read_toml,
    request_spec,
    run_parallel,
)
from auditcore.outdir import atomic_folder
from auditcore.paths import resolve_under
from faceaudit.blackbox.adapters import ResponseSpec, get_path, parse_response, spec_from_table
from faceaudit.data.candidates import lists_to_records, records_to_lists, write_lists

_Fatal = Fatal  # earlier private names
_check_path, _request_spec = check_path, request_spec

PLACEHOLDERS = ("template_id", "probe_id", "search_id", "list_length", "threshold", "template", "image_base64")


def _check_placeholders(spec: RequestSpec, where: str, source) -> None:
    """Every ``{{name}}`` of a body is one :data:`PLACEHOLDERS` names: checked before any request."""
    try:
        names = placeholders(spec.body)
    except ValueError:
        raise InputError(f"[{where}] body has a '{{{{' without its '}}}}'", source) from None
    unknown = sorted(names - set(PLACEHOLDERS))
    if unknown:
        raise InputError(f"[{where}] body uses an unknown placeholder {{{{{unknown[0]}}}}} "
                         f"(known: {', '.join(PLACEHOLDERS)})", source)


@dataclass(frozen=True)
class Adapter:
    """A declarative adapter file (TOML): see docs/blackbox.md."""

    name: str
    sha256: str
    search: RequestSpec
    response: ResponseSpec
    enrol: RequestSpec | None = None
    enrol_id: str | None = None
    auth: tuple = ()
    list_length: int = 20
    threshold: float | None = None
    system: str | None = None
    system_version: str | None = None
    limits: dict = field(default_factory=dict)


def load_adapter(path) -> Adapter:
    """Read and check an adapter file (TOML)."""
    path = Path(path)
    data, raw = read_toml(path)
    for key in ("search", "response"):
        if key not in data:
            raise InputError(f"adapter file has no [{key}] table", path)
    for key in ("search", "response", "enrol"):
        if key in data and not isinstance(data[key], dict):
            raise InputError(f"[{key}] must be a table, got {type(data[key]).__name__} ({key} = ...)", path)
    search = dict(data["search"])
    list_length = search.pop("list_length", 20)
    threshold = search.pop("threshold", None)
    if not isinstance(list_length, int) or list_length < 1:
        raise InputError("[search] list_length must be an integer >= 1", path)
    if threshold is not None and not isinstance(threshold, (int, float)):
        raise InputError("[search] threshold must be a number", path)
    enrol = enrol_id = None
    if "enrol" in data:
        table = dict(data["enrol"])
        enrol_id = table.pop("id", None)
        enrol = _request_spec(table, "enrol", path)
    auth = auth_entries(data, path)
    system = data.get("system", {})
    if not isinstance(system, dict):
        raise InputError("[system] must be a table", path)
    limits = check_limits(data.get("limits", {}), path)
    search_spec = _request_spec(search, "search", path)
    _check_placeholders(search_spec, "search", path)
    if enrol is not None:
        _check_placeholders(enrol, "enrol", path)
    return Adapter(name=str(data.get("name", path.stem)), sha256=hashlib.sha256(raw).hexdigest(),
                   search=search_spec,
                   response=spec_from_table(data["response"], str(data.get("name", path.stem)), path),
                   enrol=enrol, enrol_id=enrol_id, auth=auth,
                   list_length=list_length, threshold=threshold, system=system.get("name"),
                   system_version=system.get("version"), limits=limits)


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _template_values(templates: np.ndarray | None, row: int) -> list | None:
    return None if templates is None else [float(v) for v in templates[row]]


def _image_paths(manifest: pd.DataFrame, rows, root: Path, manifest_path: Path, allow_outside: bool) -> dict:
    """Row -> the image file to send, each inside ``root`` (or anywhere, when allowed): checked
    before the first request, so that a manifest cannot make the run send a file outside it."""
    images = manifest["image"]
    return {row: resolve_under(root, str(images.iloc[row]), allow_outside=allow_outside,
                               what=f"image of {manifest['template_id'].iloc[row]}", source=manifest_path)
            for row in rows}


def _image_b64(path: Path, template_id: str) -> str:
    try:
        return base64.b64encode(path.read_bytes()).decode("ascii")
    except OSError as exc:
        raise InputError(f"cannot read image for {template_id} ({exc.strerror})", path) from None


def run_query(adapter: Adapter, endpoint: str, manifest_path, protocol_path, out, *, templates_path=None,
              images_root=None, journal_path=None, enrol: bool = True, overwrite: bool = False,
              config: QueryConfig | None = None, announce: Callable[[str], None] = print,
              progress: Callable[[int, int], None] | None = None, allow_images_outside: bool = False) -> dict:
    """Send every probe of the protocol to the system (see the module docstring); return a summary.

    ``images_root``: the folder the manifest's relative ``image`` paths start from (default: the
    manifest's folder); an image path that is absolute or leads outside it is refused before any
    request unless ``allow_images_outside``.
    """
    from auditcore.outdir import check_target
    from faceaudit.engine.observed import read_gallery, read_manifest
    check_endpoint(endpoint)
    check_credentials_transport(endpoint, adapter.auth, bool(config and config.allow_plain_http))
    out = Path(out)
    check_target(out, overwrite=overwrite)
    manifest_path, protocol_path = Path(manifest_path), Path(protocol_path)
    manifest = read_manifest(manifest_path)
    gallery = read_gallery(protocol_path, manifest)
    proto = pd.read_csv(protocol_path, dtype=str) if protocol_path.suffix.lower() == ".csv" else pd.read_parquet(protocol_path)
    probes = proto["template_id"].astype(str)[proto["role"].astype(str).str.strip().str.lower() == "probe"].tolist()
    if not probes:
        raise InputError("no probes: no row has role 'probe'", protocol_path)
    row_of = {t: i for i, t in enumerate(manifest["template_id"])}
    missing = [p for p in probes if p not in row_of]
    if missing:
        raise InputError(f"{len(missing)} probe template_id(s) not in the manifest, e.g. {missing[0]}", protocol_path)
    # everything the bodies need, checked before the first request
    enrolling = bool(enrol and adapter.enrol)
    search_uses = placeholders(adapter.search.body)
    enrol_uses = placeholders(adapter.enrol.body) if enrolling else set()
    if "template" in search_uses | enrol_uses and templates_path is None:
        raise InputError("the adapter sends {{template}} but no --templates were given")
    image_paths: dict = {}
    if "image_base64" in search_uses | enrol_uses:
        if "image" not in manifest.columns:
            raise InputError("the adapter sends {{image_base64}} but the manifest has no 'image' column", manifest_path)
        rows = ([row_of[p] for p in probes] if "image_base64" in search_uses else []) + \
            ([row_of[g] for g in gallery] if "image_base64" in enrol_uses else [])
        image_paths = _image_paths(manifest, rows, Path(images_root) if images_root else manifest_path.parent,
                                   manifest_path, allow_images_outside)
    templates = None
    if templates_path is not None:
        from faceaudit.data.evalset import load_evaluation_set
        templates = load_evaluation_set(templates_path, manifest_path).templates
    cfg = config or QueryConfig(endpoint)
    apply_limits(cfg, adapter.limits)
    journal_path, log_path = journal_paths(out, journal_path)
    header = {"kind": "run", "endpoint": endpoint, "adapter": adapter.name, "adapter_sha256": adapter.sha256,
              "manifest_sha256": _sha256_file(manifest_path), "protocol_sha256": _sha256_file(protocol_path),
              "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    journal_path.parent.mkdir(parents=True, exist_ok=True)
    client = Client(cfg, adapter, log_path)  # checks the credentials first
    try:
        journal = Journal(journal_path, header)
    except InputError:
        client.close()
        raise
    done_enrol = {e["template_id"]: e.get("system_id") for e in journal.entries if e.get("kind") == "enrol"}
    done_search = {e["search_id"]: e["record"] for e in journal.entries if e.get("kind") == "search"}
    todo_enrol = [g for g in gallery if g not in done_enrol] if (enrol and adapter.enrol) else []
    todo_search = [p for p in probes if p not in done_search]
    parts = urlsplit(endpoint)
    announce(f"sending to {parts.scheme}://{parts.netloc} only ({endpoint}): {len(todo_enrol):,} enrolment(s) and "
             f"{len(todo_search):,} search(es)" + (f"; {len(done_search):,} searches already in the journal "
                                                   f"{journal_path}" if done_search else ""))

    def values(row: int) -> dict:
        v = {"template_id": manifest["template_id"].iloc[row], "probe_id": manifest["template_id"].iloc[row],
             "search_id": manifest["template_id"].iloc[row], "list_length": adapter.list_length,
             "threshold": adapter.threshold}
        if templates is not None:
            v["template"] = _template_values(templates, row)
        return v

    def body_for(spec: RequestSpec, row: int, uses: set) -> dict:
        v = values(row)
        if "image_base64" in uses:
            v["image_base64"] = _image_b64(image_paths[row], manifest["template_id"].iloc[row])
        return fill(spec.body, v)  # every placeholder was checked before the first request

    def do_enrol(tid: str) -> None:
        body = body_for(adapter.enrol, row_of[tid], enrol_uses)
        answer = client.send(adapter.enrol, body, f"enrol {tid}")
        system_id = None
        if adapter.enrol_id:
            system_id = get_path(answer, adapter.enrol_id, None)
            if system_id is None:
                raise _Fatal(f"request enrol {tid}: no id at '{adapter.enrol_id}' in the response")
        journal.append({"kind": "enrol", "template_id": tid, "system_id": None if system_id is None else str(system_id)})
        done_enrol[tid] = system_id

    id_map: dict = {}

    def do_search(pid: str) -> None:
        label = f"search {pid}"
        body = body_for(adapter.search, row_of[pid], search_uses)
        answer = client.send(adapter.search, body, label)
        request = {k: v for k, v in (body.items() if isinstance(body, dict) else [])
                   if k in (adapter.response.list_length_param, adapter.response.threshold_param)}
        if adapter.response.list_length_param and adapter.response.list_length_param not in request:
            request[adapter.response.list_length_param] = adapter.list_length
        if adapter.response.threshold_param and adapter.response.threshold_param not in request and adapter.threshold is not None:
            request[adapter.response.threshold_param] = adapter.threshold
        try:
            rec = parse_response(adapter.response, answer, request, where=f"request {label} to {client.base}{adapter.search.path}")
        except InputError as exc:
            raise _Fatal(str(exc)) from None
        if not adapter.response.list_length_param:
            rec["list_length"] = adapter.list_length
        if adapter.system:
            rec["system"] = adapter.system
        if adapter.system_version and not rec.get("system_version"):
            rec["system_version"] = adapter.system_version
        for c in rec["candidates"]:
            c["candidate_id"] = id_map.get(c["candidate_id"], c["candidate_id"])
        record = {"search_id": pid, "probe_id": pid, **rec}
        try:
            records_to_lists([record], f"request {label}")
        except InputError as exc:
            raise _Fatal(str(exc)) from None
        journal.append({"kind": "search", "search_id": pid, "record": record})
        done_search[pid] = record

    def run_all(func, items, total_done: int, total: int) -> None:
        run_parallel(func, items, client, cfg.concurrency, total_done, total, progress)

    started = time.monotonic()
    try:
        run_all(do_enrol, todo_enrol, 0, len(todo_enrol))
        id_map.update({str(v): k for k, v in done_enrol.items() if v is not None})
        run_all(do_search, todo_search, len(probes) - len(todo_search), len(probes))
    except _Fatal as exc:
        raise InputError(f"{exc} (progress is kept in the journal; rerun the same command to resume)",
                         journal_path) from None
    finally:
        client.close()
        journal.close()
    records = [done_search[p] for p in probes]
    for rec in records:  # candidates journaled before the id map was known
        for c in rec["candidates"]:
            c["candidate_id"] = id_map.get(c["candidate_id"], c["candidate_id"])
    lists = records_to_lists(records, journal_path)
    summary = {"endpoint": endpoint, "adapter": adapter.name, "adapter_sha256": adapter.sha256,
               "searches": len(records), "enrolled": len(done_enrol), "gallery_templates": len(gallery),
               "requests_this_run": client.counts["requests"], "retries_this_run": client.counts["retries"],
               "seconds_this_run": round(time.monotonic() - started, 3), "journal": str(journal_path),
               "request_log": str(log_path)}
    with atomic_folder(out, overwrite=overwrite, kind="query") as tmp:
        write_lists(lists, tmp / "lists.parquet")
        with open(tmp / "lists.jsonl", "w", encoding="utf-8") as fh:
            for rec in lists_to_records(lists):
                fh.write(json.dumps(rec, allow_nan=False) + "\n")
        (tmp / "requests.jsonl").write_bytes(log_path.read_bytes())
        (tmp / "query.json").write_text(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use `faceaudit query`")

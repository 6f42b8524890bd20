"""The live runner: send an evaluation set to a system under test over HTTP, collect its lists.

``run_query`` (``faceaudit query``) enrols the gallery where the adapter says how, then sends one
search per probe, and writes a results folder with the candidate lists in the schema
(``lists.parquet``), the request log (``requests.jsonl``) and a summary (``query.json``).

Rules it keeps:

* **One endpoint.** Every request goes to the ``endpoint`` the user names plus a path from the
  adapter file (a path, never a URL: a path with a scheme, a host, ``..`` or a query is refused).
  Redirects are refused, environment proxies are ignored, TLS certificates are verified (a CA
  bundle may be given, verification cannot be switched off). The endpoint is printed before the
  first request.
* **Credentials** come only from the environment variables the adapter names (``[auth]``); they
  go into request headers and nowhere else: the log holds the time, status, latency and the sha256
  of each request and response *body*, never headers.
* **Faults.** Timeouts, connection failures, HTTP 429 and 5xx and a response that does not parse
  are retried with exponential backoff (with jitter; ``Retry-After`` is honoured up to the
  backoff cap), up to ``max_attempts`` per request; then the run stops with one line naming the
  request. Any other status, or a response that parses but breaks the schema (not in rank order,
  off its scale), stops the run at once.
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
import os
import random
import socket
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from faceaudit.blackbox.adapters import ResponseSpec, get_path, parse_response, spec_from_table
from faceaudit.blackbox.schema import lists_to_records, records_to_lists, write_lists
from faceaudit.errors import InputError

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib
from faceaudit.outdir import atomic_folder

RETRY_STATUS = {429, 500, 502, 503, 504}


@dataclass(frozen=True)
class RequestSpec:
    method: str
    path: str
    body: object
    headers: dict = field(default_factory=dict)


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


def _check_path(path, where: str, source) -> str:
    if not isinstance(path, str) or not path.startswith("/") or path.startswith("//"):
        raise InputError(f"{where}: path must start with a single '/' (a path on the endpoint, not a URL)", source)
    parts = urlsplit(path)
    if parts.scheme or parts.netloc or ".." in path.split("/") or "?" in path or "#" in path or "\\" in path:
        raise InputError(f"{where}: path '{path}' must be a plain path on the endpoint (no host, '..' or query)", source)
    return path


def _request_spec(table, where: str, source) -> RequestSpec:
    if not isinstance(table, dict):
        raise InputError(f"[{where}] must be a table", source)
    method = str(table.get("method", "POST")).upper()
    if method not in ("POST", "PUT", "GET"):
        raise InputError(f"[{where}] method must be POST, PUT or GET", source)
    headers = table.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise InputError(f"[{where}] headers must be a table of strings", source)
    return RequestSpec(method, _check_path(table.get("path"), f"[{where}]", source), table.get("body", {}), headers)


def load_adapter(path) -> Adapter:
    """Read and check an adapter file (TOML)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("adapter file not found", path)
    raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read adapter file ({exc})", path) from None
    for key in ("search", "response"):
        if key not in data:
            raise InputError(f"adapter file has no [{key}] table", path)
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
    auth = data.get("auth", [])
    auth = [auth] if isinstance(auth, dict) else auth
    for a in auth:
        if not isinstance(a, dict) or not isinstance(a.get("env"), str) or not isinstance(a.get("header"), str):
            raise InputError("[auth] needs 'header' and 'env' (the environment variable holding the credential)", path)
    system = data.get("system", {})
    limits = data.get("limits", {})
    unknown = set(limits) - {"concurrency", "rate", "timeout_s", "max_attempts", "backoff_s", "backoff_max_s"}
    if unknown:
        raise InputError(f"[limits]: unknown key(s) {', '.join(sorted(unknown))}", path)
    return Adapter(name=str(data.get("name", path.stem)), sha256=hashlib.sha256(raw).hexdigest(),
                   search=_request_spec(search, "search", path),
                   response=spec_from_table(data["response"], str(data.get("name", path.stem)), path),
                   enrol=enrol, enrol_id=enrol_id, auth=tuple((a["header"], a["env"], a.get("prefix", "")) for a in auth),
                   list_length=list_length, threshold=threshold, system=system.get("name"),
                   system_version=system.get("version"), limits=limits)


def fill(template, values: dict):
    """The request body template with ``{{name}}`` placeholders filled in.

    A string that is exactly one placeholder takes the value's own JSON type (a number, a list);
    placeholders inside longer strings are replaced by text. An unknown placeholder is an error.
    """
    if isinstance(template, dict):
        return {k: fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, values) for v in template]
    if isinstance(template, str) and "{{" in template:
        stripped = template.strip()
        if stripped.startswith("{{") and stripped.endswith("}}") and stripped.count("{{") == 1:
            key = stripped[2:-2].strip()
            if key not in values:
                raise KeyError(key)
            return values[key]
        out = template
        while "{{" in out:
            start = out.index("{{")
            end = out.index("}}", start)
            key = out[start + 2:end].strip()
            if key not in values:
                raise KeyError(key)
            out = out[:start] + str(values[key]) + out[end + 2:]
        return out
    return template


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D401 - urllib hook
        raise urllib.error.HTTPError(req.full_url, code, f"redirect refused (to another address: {newurl})", headers, fp)


class RateLimiter:
    """At most ``rate`` request starts per second (``None``: no limit), shared by threads."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 0.0 if not rate else 1.0 / rate
        self.next = time.monotonic()
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            slot = max(now, self.next)
            self.next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


class Journal:
    """Append-only JSON lines, each flushed and fsync'd before the call returns."""

    def __init__(self, path: Path, header: dict) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.entries = []
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(path, "a+b")
        try:  # one run per journal at a time
            import fcntl
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - not POSIX
            pass
        except OSError:
            self.fh.close()
            raise InputError("another faceaudit query is using this journal right now", path) from None
        self.fh.seek(0)
        data = self.fh.read()
        cut = data.rfind(b"\n") + 1
        if cut < len(data):  # a partial last line from a killed run: drop it
            self.fh.truncate(cut)
            self.fh.flush()
            os.fsync(self.fh.fileno())
            data = data[:cut]
        for i, line in enumerate(data.decode("utf-8", errors="replace").splitlines()):
            try:
                self.entries.append(json.loads(line))
            except ValueError:
                self.fh.close()
                raise InputError(f"line {i + 1}: the journal is damaged (not JSON); move it away to start "
                                 "afresh", path) from None
        if self.entries:
            old = self.entries[0]
            for key in ("endpoint", "adapter_sha256", "manifest_sha256", "protocol_sha256"):
                if old.get(key) != header.get(key):
                    self.fh.close()
                    raise InputError(f"this journal belongs to another run ({key} differs: "
                                     f"{old.get(key)} vs {header.get(key)}); use another --journal or --out", path)
        else:
            self.append(header)

    def append(self, entry: dict) -> None:
        line = (json.dumps(entry, allow_nan=False) + "\n").encode("utf-8")
        with self.lock:
            self.fh.write(line)
            self.fh.flush()
            os.fsync(self.fh.fileno())

    def close(self) -> None:
        self.fh.close()


class _Fatal(Exception):
    pass


@dataclass
class QueryConfig:
    endpoint: str
    concurrency: int = 4
    rate: float | None = None
    timeout_s: float = 30.0
    max_attempts: int = 6
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    ca_bundle: str | None = None


class Client:
    """Sends requests to the one endpoint, with retries; logs every attempt."""

    def __init__(self, config: QueryConfig, adapter: Adapter, log_path: Path) -> None:
        self.config = config
        self.base = config.endpoint.rstrip("/")
        context = ssl.create_default_context(cafile=config.ca_bundle)
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect(),
                                                  urllib.request.HTTPSHandler(context=context))
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        for header, env, prefix in adapter.auth:
            value = os.environ.get(env)
            if not value:
                raise InputError(f"the adapter needs the credential in environment variable {env}, which is not set")
            self.headers[header] = prefix + value
        self.limiter = RateLimiter(config.rate)
        self.log = open(log_path, "a", encoding="utf-8")
        self.log_lock = threading.Lock()
        self.stop = threading.Event()
        self.counts = {"requests": 0, "retries": 0}

    def _log(self, entry: dict) -> None:
        with self.log_lock:
            self.counts["requests"] += 1
            self.log.write(json.dumps(entry) + "\n")
            self.log.flush()

    def send(self, spec: RequestSpec, body: dict, label: str) -> object:
        """The parsed JSON response of one request, retried on transient faults."""
        data = json.dumps(body, allow_nan=False).encode("utf-8")
        req_hash = hashlib.sha256(data).hexdigest()
        url = self.base + spec.path
        last = ""
        for attempt in range(1, self.config.max_attempts + 1):
            if self.stop.is_set():
                raise _Fatal("stopped")
            self.limiter.wait()
            request = urllib.request.Request(url, data=None if spec.method == "GET" else data,
                                             headers={**self.headers, **spec.headers}, method=spec.method)
            started = time.monotonic()
            stamp = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")
            status, payload, retry_after, error = None, b"", None, None
            try:
                with self.opener.open(request, timeout=self.config.timeout_s) as resp:
                    status = resp.status
                    payload = resp.read()
            except urllib.error.HTTPError as exc:
                status = exc.code
                try:
                    payload = exc.read() or b""
                except (OSError, ValueError):
                    payload = b""
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
                error = f"HTTP {exc.code}"
            except (TimeoutError, socket.timeout):
                error = "timeout"
            except urllib.error.URLError as exc:
                error = "timeout" if isinstance(exc.reason, (TimeoutError, socket.timeout)) else f"connection: {exc.reason}"
            except (ConnectionError, OSError) as exc:  # reset, refused, incomplete read
                error = f"connection: {exc.__class__.__name__}"
            latency = time.monotonic() - started
            parsed, parse_error = None, None
            if status is not None and 200 <= status < 300:
                try:
                    parsed = json.loads(payload.decode("utf-8"))
                except (ValueError, UnicodeDecodeError) as exc:
                    parse_error = f"response does not parse as JSON ({exc.__class__.__name__})"
                    error = parse_error
            self._log({"time": stamp, "request": label, "method": spec.method, "path": spec.path,
                       "attempt": attempt, "status": status, "latency_s": round(latency, 4),
                       "request_sha256": req_hash, "response_sha256": hashlib.sha256(payload).hexdigest()
                       if status is not None else None, "response_bytes": len(payload), "error": error})
            if status is not None and 200 <= status < 300 and parse_error is None:
                return parsed
            transient = (status is None or status in RETRY_STATUS or parse_error is not None)
            last = error or f"HTTP {status}"
            if not transient:
                raise _Fatal(f"request {label} to {url}: {last}; not retried")
            if attempt == self.config.max_attempts:
                break
            with self.log_lock:
                self.counts["retries"] += 1
            delay = min(self.config.backoff_max_s, self.config.backoff_s * 2 ** (attempt - 1)) * (0.5 + random.random())
            if retry_after:
                try:
                    delay = min(self.config.backoff_max_s, max(delay, float(retry_after)))
                except ValueError:
                    pass
            if self.stop.wait(delay):
                raise _Fatal("stopped")
        raise _Fatal(f"request {label} to {url}: {last} after {self.config.max_attempts} attempts")

    def close(self) -> None:
        self.log.close()


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _template_values(templates: np.ndarray | None, row: int) -> list | None:
    return None if templates is None else [float(v) for v in templates[row]]


def _image_b64(manifest: pd.DataFrame, row: int, root: Path | None) -> str:
    if "image" not in manifest.columns:
        raise KeyError("image_base64")
    path = Path(str(manifest["image"].iloc[row]))
    if not path.is_absolute() and root is not None:
        path = root / path
    try:
        return base64.b64encode(path.read_bytes()).decode("ascii")
    except OSError as exc:
        raise InputError(f"cannot read image for {manifest['template_id'].iloc[row]} ({exc.strerror})", path) from None


def check_endpoint(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InputError(f"endpoint must be an http(s) URL with a host, got '{endpoint}'")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise InputError("endpoint must not carry a query, a fragment or credentials (credentials come from the "
                         "environment variables the adapter names)")
    return endpoint


def run_query(adapter: Adapter, endpoint: str, manifest_path, protocol_path, out, *, templates_path=None,
              images_root=None, journal_path=None, enrol: bool = True, overwrite: bool = False,
              config: QueryConfig | None = None, announce: Callable[[str], None] = print,
              progress: Callable[[int, int], None] | None = None) -> dict:
    """Send every probe of the protocol to the system (see the module docstring); return a summary."""
    from faceaudit.blackbox.observed import read_gallery, read_manifest
    from faceaudit.outdir import check_target
    check_endpoint(endpoint)
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
    templates = None
    if templates_path is not None:
        from faceaudit.evalset import load_evaluation_set
        templates = load_evaluation_set(templates_path, manifest_path).templates
    cfg = config or QueryConfig(endpoint)
    for key, value in adapter.limits.items():
        if getattr(cfg, key) == getattr(QueryConfig(endpoint), key):  # command-line options win
            setattr(cfg, key, value)
    journal_path = Path(journal_path) if journal_path else out.parent / f"{out.name}.journal.jsonl"
    log_path = journal_path.with_name(journal_path.name.replace(".journal.jsonl", "") + ".requests.jsonl") \
        if journal_path.name.endswith(".journal.jsonl") else journal_path.with_suffix(".requests.jsonl")
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

    def body_for(spec: RequestSpec, row: int, label: str) -> dict:
        v = values(row)
        try:
            return fill(spec.body, v)
        except KeyError as exc:
            if exc.args[0] == "image_base64":
                v["image_base64"] = _image_b64(manifest, row, Path(images_root) if images_root else manifest_path.parent)
                return fill(spec.body, v)
            if exc.args[0] == "template":
                raise InputError("the adapter sends {{template}} but no --templates were given") from None
            raise InputError(f"the adapter's body uses an unknown placeholder {{{{{exc.args[0]}}}}} "
                             "(known: template_id, probe_id, search_id, list_length, threshold, template, "
                             "image_base64)") from None

    def do_enrol(tid: str) -> None:
        body = body_for(adapter.enrol, row_of[tid], f"enrol {tid}")
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
        body = body_for(adapter.search, row_of[pid], label)
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
        if progress:
            progress(total_done, total)
        if not items:
            return
        done = [total_done]
        lock = threading.Lock()

        def task(item):
            func(item)
            with lock:
                done[0] += 1
                if progress:
                    progress(done[0], total)

        with ThreadPoolExecutor(max_workers=max(1, cfg.concurrency)) as pool:
            futures = [pool.submit(task, item) for item in items]
            try:
                finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
            except BaseException:  # Ctrl-C, SIGTERM: send nothing more; finished work is in the journal
                client.stop.set()
                for f in futures:
                    f.cancel()
                raise
            failed = [f for f in finished if f.exception() is not None]
            if failed:
                client.stop.set()
                for f in futures:
                    f.cancel()
                exc = failed[0].exception()
                wait(futures)
                raise exc

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

"""The HTTP runner both auditors use to query a system under test (``faceaudit query``, ``flagaudit audit --endpoint``).

It holds what is generic about talking to one endpoint; what to send and how to read the answers
is each auditor's adapter (``faceaudit.blackbox.query``: candidate lists; ``flagaudit.http``:
flags and scores). Rules it keeps:

* **One endpoint.** Every request goes to the ``endpoint`` the user names plus a path from the
  adapter file (a path, never a URL: a path with a scheme, a host, ``..`` or a query is refused,
  :func:`check_path`). Redirects are refused, environment proxies are ignored, TLS certificates
  are verified (a CA bundle may be given; verification cannot be switched off). The endpoint
  must be a plain http(s) URL without credentials (:func:`check_endpoint`).
* **Credentials** come only from the environment variables the adapter names (``[auth]``); they
  go into request headers and nowhere else: the log holds the time, status, latency and the
  sha256 of each request and response *body*, never headers.
* **Faults** (:class:`Client`): timeouts, connection failures, HTTP 429 and 5xx and a response
  that does not parse as JSON are retried with exponential backoff (with jitter; ``Retry-After``
  is honoured up to the backoff cap), up to ``max_attempts``; then :class:`Fatal` names the
  request. Any other status stops at once.
* **Journal** (:class:`Journal`): JSON lines, each flushed and fsync'd before it counts; one run
  per journal at a time (a lock); a partial last line (a killed run) is dropped; the first line
  records what the run is (endpoint, adapter hash, inputs' hashes) and a resume against another
  run is refused.
* **Concurrency and rate** (:func:`run_parallel`, :class:`RateLimiter`).

It imports neither auditor.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import random
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from auditcore.errors import InputError

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

RETRY_STATUS = {429, 500, 502, 503, 504}


@dataclass(frozen=True)
class RequestSpec:
    method: str
    path: str
    body: object
    headers: dict = field(default_factory=dict)



def check_path(path, where: str, source) -> str:
    if not isinstance(path, str) or not path.startswith("/") or path.startswith("//"):
        raise InputError(f"{where}: path must start with a single '/' (a path on the endpoint, not a URL)", source)
    parts = urlsplit(path)
    if parts.scheme or parts.netloc or ".." in path.split("/") or "?" in path or "#" in path or "\\" in path:
        raise InputError(f"{where}: path '{path}' must be a plain path on the endpoint (no host, '..' or query)", source)
    return path


def request_spec(table, where: str, source) -> RequestSpec:
    if not isinstance(table, dict):
        raise InputError(f"[{where}] must be a table", source)
    method = str(table.get("method", "POST")).upper()
    if method not in ("POST", "PUT", "GET"):
        raise InputError(f"[{where}] method must be POST, PUT or GET", source)
    headers = table.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise InputError(f"[{where}] headers must be a table of strings", source)
    return RequestSpec(method, check_path(table.get("path"), f"[{where}]", source), table.get("body", {}), headers)



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

    def __init__(self, path: Path, header: dict,
                 keys=("endpoint", "adapter_sha256", "manifest_sha256", "protocol_sha256"),
                 who: str = "faceaudit query") -> None:
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
            raise InputError(f"another {who} is using this journal right now", path) from None
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
            for key in keys:
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


class Fatal(Exception):
    """A request that cannot succeed (or a stop): the run ends with one line naming it."""


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

    def __init__(self, config: QueryConfig, adapter, log_path: Path) -> None:
        """``adapter``: anything with ``auth``, a tuple of (header, environment variable, prefix)."""
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
                raise Fatal("stopped")
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
                raise Fatal(f"request {label} to {url}: {last}; not retried")
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
                raise Fatal("stopped")
        raise Fatal(f"request {label} to {url}: {last} after {self.config.max_attempts} attempts")

    def close(self) -> None:
        self.log.close()



def check_endpoint(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InputError(f"endpoint must be an http(s) URL with a host, got '{endpoint}'")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise InputError("endpoint must not carry a query, a fragment or credentials (credentials come from the "
                         "environment variables the adapter names)")
    return endpoint




LIMIT_KEYS = ("concurrency", "rate", "timeout_s", "max_attempts", "backoff_s", "backoff_max_s")


def read_toml(path) -> tuple[dict, bytes]:
    """An adapter file's TOML table and its raw bytes (for the adapter hash the journal records)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("adapter file not found", path)
    raw = path.read_bytes()
    try:
        return tomllib.loads(raw.decode("utf-8")), raw
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read adapter file ({exc})", path) from None


def auth_entries(data: dict, source) -> tuple:
    """The ``[auth]`` table(s) of an adapter: ``(header, environment variable, prefix)`` each."""
    auth = data.get("auth", [])
    auth = [auth] if isinstance(auth, dict) else auth
    if not isinstance(auth, list):
        raise InputError("[auth] must be a table", source)
    for a in auth:
        if not isinstance(a, dict) or not isinstance(a.get("env"), str) or not isinstance(a.get("header"), str):
            raise InputError("[auth] needs 'header' and 'env' (the environment variable holding the credential)", source)
    return tuple((a["header"], a["env"], a.get("prefix", "")) for a in auth)


def check_limits(limits, source) -> dict:
    """An adapter's ``[limits]`` table (unknown keys refused)."""
    if not isinstance(limits, dict):
        raise InputError("[limits] must be a table", source)
    unknown = set(limits) - set(LIMIT_KEYS)
    if unknown:
        raise InputError(f"[limits]: unknown key(s) {', '.join(sorted(unknown))}", source)
    return limits


def apply_limits(config: QueryConfig, limits: dict) -> QueryConfig:
    """The adapter's ``[limits]`` where the command line left the default (command-line options win)."""
    default = QueryConfig(config.endpoint)
    for key, value in limits.items():
        if getattr(config, key) == getattr(default, key):
            setattr(config, key, value)
    return config


_MISSING = object()


def get_path(body, path: str, default=_MISSING):
    """``body`` at a dotted path (``"0.candidates"``, ``"Face.ExternalImageId"``); integers index lists."""
    value = body
    for part in path.split("."):
        if isinstance(value, list) and part.lstrip("-").isdigit():
            index = int(part)
            if -len(value) <= index < len(value):
                value = value[index]
                continue
        elif isinstance(value, dict) and part in value:
            value = value[part]
            continue
        if default is _MISSING:
            raise KeyError(path)
        return default
    return value


def journal_paths(out: Path, journal_path=None) -> tuple[Path, Path]:
    """The journal (default ``OUT.journal.jsonl`` beside OUT) and the request log beside it."""
    out = Path(out)
    journal_path = Path(journal_path) if journal_path else out.parent / f"{out.name}.journal.jsonl"
    log_path = journal_path.with_name(journal_path.name.replace(".journal.jsonl", "") + ".requests.jsonl") \
        if journal_path.name.endswith(".journal.jsonl") else journal_path.with_suffix(".requests.jsonl")
    return journal_path, log_path


def announce_line(endpoint: str, what: str, done: int = 0, journal_path=None) -> str:
    """The line printed before the first request: where everything goes."""
    parts = urlsplit(endpoint)
    return (f"sending to {parts.scheme}://{parts.netloc} only ({endpoint}): {what}"
            + (f"; {done:,} already in the journal {journal_path}" if done else ""))


def run_parallel(func, items, client: Client, concurrency: int, total_done: int, total: int,
                 progress: Callable[[int, int], None] | None = None) -> None:
    """``func(item)`` for every item, ``concurrency`` at a time; the first failure stops the rest.

    On Ctrl-C/SIGTERM or a failure nothing more is sent (``client.stop``); what finished is in the
    journal (``func`` writes it), and the exception is raised again.
    """
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

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
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


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

"""The HTTP runner both auditors use to query a system under test (``faceaudit query``, ``flagaudit audit --endpoint``).

It holds what is generic about talking to one endpoint; what to send and how to read the answers
is each auditor's adapter (``faceaudit.blackbox.query``: candidate lists; ``flagaudit.http``:
flags and scores). Rules it keeps:

* **One endpoint.** Every request goes to the ``endpoint`` the user names plus a path from the
  adapter file (a path, never a URL: a path with a scheme, a host, ``..`` or a query is refused,
  :func:`check_path`). Requests are sent with :mod:`http.client`, which never follows a redirect:
  a 3xx answer stops the run, naming where it pointed; environment proxies are never used; TLS
  certificates are verified (a CA bundle may be given; verification cannot be switched off). The
  endpoint must be a plain http(s) URL without credentials (:func:`check_endpoint`).
* **Credentials** come only from the environment variables the adapter names (``[auth]``); they
  go into request headers and nowhere else: the log holds the time, status, latency and the
  sha256 of each request and response *body*, never headers. They are sent only over ``https://``
  or to a loopback address, unless the user allows plain HTTP (:func:`check_credentials_transport`).
* **Faults** (:class:`Client`): a request that does not finish within ``timeout_s`` *in all*
  (connect, send, wait, read: one deadline, not a limit per read), any transport fault (connection
  refused, reset or dropped, a body shorter than its ``Content-Length``, a status line that is not
  HTTP: every :class:`OSError` and :class:`http.client.HTTPException`), HTTP 429 and 5xx, and a 2xx
  answer that is not JSON (declared as another content type, or not parsing) are retried with
  exponential backoff (with jitter; ``Retry-After`` is honoured up to the backoff cap), up to
  ``max_attempts``; then :class:`Fatal` names the request. Any other status stops at once, and so
  does an answer larger than ``max_response_mib`` (8 MiB unless the adapter's ``[limits]`` say
  otherwise) or JSON nested deeper than :data:`MAX_JSON_DEPTH` levels (checked by a linear scan
  before parsing).
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
import http.client
import io
import ipaddress
import json
import os
import random
import socket
import ssl
import sys
import threading
import time
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
MAX_JSON_DEPTH = 200  # deeper answers are refused before parsing (no service's answer nests this deep)
DEFAULT_MAX_RESPONSE_MIB = 8.0  # larger answers are refused; an adapter's [limits] max_response_mib raises it
_USER_AGENT = f"Python-urllib/{sys.version_info[0]}.{sys.version_info[1]}"  # what the runner sent before it used http.client


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



def _scan(text: str):
    """``(literal, name)`` pairs of a template string, then ``(rest, None)``; ValueError for a '{{' without '}}'."""
    pos = 0
    while True:
        start = text.find("{{", pos)
        if start < 0:
            yield text[pos:], None
            return
        end = text.find("}}", start)
        if end < 0:
            raise ValueError("'{{' without its '}}'")
        yield text[pos:start], text[start + 2:end].strip()
        pos = end + 2


def placeholders(template) -> set:
    """Every ``{{name}}`` in a body template (ValueError for a '{{' without its '}}')."""
    if isinstance(template, dict):
        return set().union(*(placeholders(v) for v in template.values()))
    if isinstance(template, list):
        return set().union(*(placeholders(v) for v in template))
    if isinstance(template, str) and "{{" in template:
        return {name for _, name in _scan(template) if name is not None}
    return set()


def fill(template, values: dict):
    """The request body template with ``{{name}}`` placeholders filled in.

    A string that is exactly one placeholder takes the value's own JSON type (a number, a list);
    placeholders inside longer strings are replaced by text. An unknown placeholder is an error
    (KeyError); a '{{' without its '}}' too (ValueError). The values are inserted as they are: a
    value holding ``{{...}}`` (a case's text, an id) is never read as a placeholder.
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
        out = []
        for literal, key in _scan(template):
            out.append(literal)
            if key is not None:
                if key not in values:
                    raise KeyError(key)
                out.append(str(values[key]))
        return "".join(out)
    return template


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
    timeout_s: float = 30.0  # one deadline per attempt, in all: connect, send, wait, read
    max_attempts: int = 6
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    ca_bundle: str | None = None
    max_response_mib: float = DEFAULT_MAX_RESPONSE_MIB
    allow_plain_http: bool = False  # credentials over http:// to a host that is not this machine


def _printable(text, limit: int = 80) -> str:
    """A value from the server, safe to print in one line: printable ASCII only, cut to ``limit``."""
    text = "".join(c if " " <= c <= "~" else "?" for c in str(text))
    return text if len(text) <= limit else text[:limit] + "..."


def _is_json_type(content_type: str) -> bool:
    # text/plain: services that label their JSON as text are common and harmless
    return (content_type in ("application/json", "text/json", "text/plain", "text/javascript")
            or content_type.endswith("+json"))


_NOT_STRUCTURAL = bytes(sorted(set(range(256)) - set(b'"[]{}')))


def json_too_deep(data: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a JSON text nests arrays and objects deeper than ``limit`` levels.

    A linear scan of the brackets outside strings, without recursion (so a hostile answer nested
    200,000 deep costs one pass over its bytes, never Python's stack); cheap for ordinary answers,
    which have fewer brackets than ``limit`` in all. Invalid JSON is left to the parser.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    # escaped backslashes, then escaped quotes: what is left of '"' delimits strings
    bare = data.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_STRUCTURAL)
    depth = 0
    for i, part in enumerate(bare.split(b'"')):
        if i % 2:  # inside a string
            continue
        for c in part:
            if c == 91 or c == 123:  # [ {
                depth += 1
                if depth > limit:
                    return True
            else:
                depth -= 1
    return False


def _is_loopback(host: str) -> bool:
    host = host.lower()
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def check_credentials_transport(endpoint: str, credentials, allow_plain_http: bool = False) -> None:
    """Credentials go over ``https://`` (TLS verified) or to this machine (127.0.0.0/8, ::1,
    localhost) only; plain ``http://`` elsewhere is refused with one line unless the user allows it
    (``--allow-plain-http``). ``credentials``: the adapter's ``[auth]`` entries ((header,
    environment variable, prefix) each), or a bool; without credentials nothing is refused here."""
    parts = urlsplit(endpoint)
    if not credentials or allow_plain_http or parts.scheme != "http" or _is_loopback(parts.hostname or ""):
        return
    names = [] if isinstance(credentials, bool) else [a[1] for a in credentials]
    what = f"the credential in {', '.join(names)} (the adapter's [auth])" if names else "the adapter's [auth] credential"
    raise InputError(f"{what} would go over plain http:// to {parts.hostname}, readable by anyone on the way: use "
                     "an https:// endpoint, or pass --allow-plain-http if you accept that")



def _time_left(deadline: float) -> float:
    """Seconds left before ``deadline`` (a ``time.monotonic()`` time); TimeoutError when none."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the request's time ran out")
    return left

class _DeadlineSocket:
    """A connected socket whose every send and receive ends by one deadline (the request's time in all).

    ``http.client`` reads through :meth:`makefile`; each read waits at most the time left, so a
    server that sends a byte at a time cannot hold a request past its deadline. Closing is left to
    :meth:`Client._exchange`, which owns the real socket."""

    def __init__(self, sock, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline

    def left(self) -> float:
        return _time_left(self.deadline)

    def sendall(self, data) -> None:
        self.sock.settimeout(self.left())
        self.sock.sendall(data)

    def makefile(self, mode: str = "rb", *args, **kwargs):
        return io.BufferedReader(_DeadlineReader(self))

    def close(self) -> None:
        pass

    def __getattr__(self, name):
        return getattr(self.sock, name)


class _DeadlineReader(io.RawIOBase):
    def __init__(self, owner: _DeadlineSocket) -> None:
        self.owner = owner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self.owner.sock.settimeout(self.owner.left())
        return self.owner.sock.recv_into(buffer)


class _Connection(http.client.HTTPConnection):
    """One request's connection: connect (and TLS handshake) within the deadline; no proxy, no redirect."""

    def __init__(self, host: str, port: int, deadline: float, context: ssl.SSLContext | None) -> None:
        super().__init__(host, port)
        self.deadline = deadline
        self.context = context
        self.raw = None

    def connect(self) -> None:
        left = _time_left(self.deadline)
        sock = self.raw = socket.create_connection((self.host, self.port), left)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        if self.context is not None:
            sock.settimeout(max(1e-3, self.deadline - time.monotonic()))  # the handshake, in all
            sock = self.raw = self.context.wrap_socket(sock, server_hostname=self.host)
        self.sock = _DeadlineSocket(sock, self.deadline)


class Client:
    """Sends requests to the one endpoint, with retries; logs every attempt."""

    def __init__(self, config: QueryConfig, adapter, log_path: Path) -> None:
        """``adapter``: anything with ``auth``, a tuple of (header, environment variable, prefix)."""
        self.config = config
        self.base = config.endpoint.rstrip("/")
        parts = urlsplit(self.base)
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path
        self.context = ssl.create_default_context(cafile=config.ca_bundle) if parts.scheme == "https" else None
        self.limit = int(config.max_response_mib * (1 << 20))
        self.headers = {"Content-Type": "application/json", "Accept": "application/json",
                        "User-Agent": _USER_AGENT, "Connection": "close"}
        for header, env, prefix in adapter.auth:
            value = os.environ.get(env)
            if not value:
                raise InputError(f"the adapter needs the credential in environment variable {env}, which is not set")
            if any(c in value + prefix for c in "\r\n\0"):
                raise InputError(f"the credential in environment variable {env} holds a line break or NUL")
            self.headers[header] = prefix + value
        check_credentials_transport(config.endpoint, adapter.auth, config.allow_plain_http)
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

    def _limit_text(self) -> str:
        return f"{self.config.max_response_mib:g} MiB"

    def _exchange(self, method: str, target: str, data: bytes | None, headers: dict, deadline: float):
        """One attempt: ``(status, headers, body, too_large)``; transport faults raise."""
        conn = _Connection(self.host, self.port, deadline, self.context)
        try:
            conn.request(method, target, body=data, headers=headers)
            resp = conn.getresponse()
            if resp.length is not None and resp.length > self.limit:  # refused before reading
                return resp.status, resp.headers, b"", True
            body = bytearray()
            while len(body) <= self.limit:
                chunk = resp.read(min(1 << 16, self.limit + 1 - len(body)))
                if not chunk:
                    break
                body += chunk
            if len(body) > self.limit:
                return resp.status, resp.headers, bytes(body), True
            if resp.length:  # the connection ended short of Content-Length
                raise http.client.IncompleteRead(bytes(body), resp.length)
            return resp.status, resp.headers, bytes(body), False
        finally:
            conn.close()
            if conn.raw is not None:
                conn.raw.close()

    def send(self, spec: RequestSpec, body: dict, label: str) -> object:
        """The parsed JSON response of one request, retried on transient faults."""
        data = json.dumps(body, allow_nan=False).encode("utf-8")
        req_hash = hashlib.sha256(data).hexdigest()
        url = self.base + spec.path
        target = self.prefix + spec.path
        headers = {**self.headers, **spec.headers}
        last = ""
        for attempt in range(1, self.config.max_attempts + 1):
            if self.stop.is_set():
                raise Fatal("stopped")
            self.limiter.wait()
            started = time.monotonic()
            stamp = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")
            status, payload, retry_after, error, refused, answer = None, b"", None, None, None, None
            try:
                status, got, payload, too_large = self._exchange(spec.method, target, None if spec.method == "GET"
                                                                 else data, headers, started + self.config.timeout_s)
            except TimeoutError:  # the deadline, or a read or connect that outlived it
                error = "timeout"
            except http.client.HTTPException as exc:  # short body, not an HTTP status line, dropped connection
                error = f"connection: {exc.__class__.__name__}"
            except OSError as exc:  # refused, reset, unreachable, TLS
                error = f"connection: {exc.__class__.__name__}"
            else:
                if too_large:
                    error = f"response larger than {self._limit_text()}"
                    refused = (f"the response is larger than {self._limit_text()}, the limit for one answer; if the "
                               "service's answers really are this large, raise max_response_mib in the adapter "
                               "file's [limits]; not retried")
                elif 200 <= status < 300:
                    kind = (got.get("Content-Type") or "").split(";")[0].strip().lower()
                    if kind and not _is_json_type(kind):
                        error = f"response is not JSON (Content-Type {_printable(kind, 40)})"
                    elif json_too_deep(payload):
                        error = f"response JSON nests deeper than {MAX_JSON_DEPTH} levels"
                        refused = (f"the response's JSON nests deeper than {MAX_JSON_DEPTH} levels (a broken or "
                                   "hostile service); not retried")
                    else:
                        try:
                            answer = json.loads(payload.decode("utf-8"))
                        except (ValueError, UnicodeDecodeError) as exc:
                            error = f"response does not parse as JSON ({exc.__class__.__name__})"
                        except RecursionError:  # pragma: no cover - json_too_deep comes first
                            error = f"response JSON nests deeper than {MAX_JSON_DEPTH} levels"
                            refused = "the response's JSON nests too deep (a broken or hostile service); not retried"
                else:
                    error = f"HTTP {status}"
                    retry_after = got.get("Retry-After")
                    if 300 <= status < 400:
                        try:
                            where = urlsplit(got.get("Location") or "").netloc
                        except ValueError:  # not even a URL
                            where = ""
                        refused = (f"HTTP {status}; not retried (a redirect"
                                   + (f" to {_printable(where)}" if where else "")
                                   + ": redirects are never followed)")
            latency = time.monotonic() - started
            self._log({"time": stamp, "request": label, "method": spec.method, "path": spec.path,
                       "attempt": attempt, "status": status, "latency_s": round(latency, 4),
                       "request_sha256": req_hash, "response_sha256": hashlib.sha256(payload).hexdigest()
                       if status is not None else None, "response_bytes": len(payload), "error": error})
            if error is None:
                return answer
            if refused:
                raise Fatal(f"request {label} to {url}: {refused}")
            last = error
            transient = status is None or status in RETRY_STATUS or 200 <= status < 300
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
    try:
        _ = parts.port
    except ValueError:
        raise InputError(f"endpoint must be an http(s) URL with a valid port, got '{endpoint}'") from None
    if any(c <= " " or c == "\x7f" for c in endpoint):
        raise InputError("endpoint must not contain spaces or control characters")
    return endpoint




LIMIT_KEYS = ("concurrency", "rate", "timeout_s", "max_attempts", "backoff_s", "backoff_max_s", "max_response_mib")


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
    except RecursionError:
        raise InputError("cannot read adapter file (nested too deeply)", path) from None
    except ValueError as exc:  # an integer of thousands of digits (Python's int conversion limit)
        raise InputError(f"cannot read adapter file ({str(exc).splitlines()[0][:200]})", path) from None


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
        shown = ", ".join(k if k.isprintable() else repr(k) for k in sorted(unknown))
        raise InputError(f"[limits]: unknown key(s) {shown}", source)
    mib = limits.get("max_response_mib", DEFAULT_MAX_RESPONSE_MIB)
    if isinstance(mib, bool) or not isinstance(mib, (int, float)) or not 0 < mib < 1 << 20:
        raise InputError("[limits] max_response_mib must be a number of MiB above 0 (the largest answer "
                         "accepted; default 8)", source)
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
    first: list = []  # the first failure in time: what the run reports (later ones are "stopped")

    def task(item):
        if client.stop.is_set():  # a failure or a stop elsewhere: nothing more is sent
            return
        try:
            func(item)
        except BaseException as exc:
            with lock:
                if not first:
                    first.append(exc)
            client.stop.set()  # at once, in the worker: before it takes the next item
            raise
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
            wait(futures)
            raise first[0] if first else failed[0].exception()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

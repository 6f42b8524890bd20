"""The HTTP runner against a hostile or broken server (127.0.0.1 only, raw sockets).

``HostileServer`` answers each request well or with one fault, chosen per request id (a search id
or a case id) for its first attempts, or for every attempt (``always``). Fault classes:

* transport faults, retried with backoff and logged like any other fault: a body short of its
  ``Content-Length`` (``truncated``), a status line that is not HTTP (``badstatus``), a connection
  reset (``reset``), a server that reads the request and never answers (``hang``), a valid answer
  sent a byte at a time, slower in total than the deadline (``drip``), a 2xx page that is not JSON
  (``html``, Content-Type text/html), a 503;
* refused at once, with one line: JSON nested 200,000 deep (``deep``), a ``Content-Length`` of
  300 MB (``huge``), a 12 MiB answer with no length (``big``, over the 8 MiB default limit), a
  redirect to another host (``redirect``).

With intermittent faults every search (faceaudit) and every case (flagaudit) is answered, listed,
journaled and counted exactly once. Before any request: unknown placeholders, credentials over plain
http to a non-local host and image paths outside the images folder are refused with one line.
"""

from __future__ import annotations

import base64
import json
import socket
import struct
import threading
import time
import zlib
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from auditcore.errors import InputError
from auditcore.http_runner import QueryConfig, fill
from faceaudit.blackbox.query import load_adapter, run_query

TOKEN = "h0stile-s3cret-token"
GALLERY = [f"g{i:02d}" for i in range(6)]
PROBES = [f"p{i:02d}" for i in range(12)]
runner = CliRunner()

SEARCH_ADAPTER = """
name = "hostile-nist"
[search]
path = "/search"
list_length = 3
[search.body]
search_id = "{{search_id}}"
candidateListLength = "{{list_length}}"
[response]
candidates = "candidates"
id = "templateId"
score = "score"
list_length_param = "candidateListLength"
[auth]
header = "Authorization"
env = "HOSTILE_TOKEN"
prefix = "Bearer "
"""

FLAG_ADAPTER = """
name = "hostile-flagger"
[request]
path = "/v1/classify"
[request.body]
id = "{{case_id}}"
input = "{{text}}"
[response]
flagged = "result.flagged"
score = "result.score"
[auth]
header = "Authorization"
env = "HOSTILE_TOKEN"
prefix = "Bearer "
"""


# ---------------------------------------------------------------------------------------- the server
def expected_answer(path: str, body: dict) -> dict:
    """The good answer: three gallery candidates per search (by probe), or a flag per case (by text)."""
    if "search_id" in body:
        k = zlib.crc32(body["search_id"].encode()) % len(GALLERY)
        ids = [GALLERY[(k + j) % len(GALLERY)] for j in range(3)]
        return {"candidates": [{"templateId": t, "score": s} for t, s in zip(ids, (0.9, 0.6, 0.3))]}
    text = str(body.get("input", ""))
    return {"id": body.get("id"), "result": {"flagged": "kill" in text.lower(), "score": float(len(text) % 7)}}


def _response(status: int, body: bytes, *, ctype: str = "application/json", length: int | None = None,
              extra: tuple = ()) -> bytes:
    reason = {200: "OK", 302: "Found", 503: "Service Unavailable"}.get(status, "X")
    head = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {ctype}", "Connection: close", *extra]
    if length != -1:
        head.append(f"Content-Length: {len(body) if length is None else length}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class HostileServer:
    """Raw sockets on ``host``: http.server cannot send a short body, a non-HTTP status line or a reset."""

    def __init__(self, *, faults: dict | None = None, always: str | None = None, host: str = "127.0.0.1",
                 drip_s: float = 0.02, drip_max_s: float = 3.0, redirect_to: str = "") -> None:
        self.faults = {k: list(v) for k, v in (faults or {}).items()}
        self.always = always
        self.host = host
        self.drip_s, self.drip_max_s = drip_s, drip_max_s
        self.redirect_to = redirect_to
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.served: dict[str, int] = {}  # request id -> good answers sent
        self.connections = 0
        self.stopping = threading.Event()
        self.sock = None

    def start(self) -> str:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((self.host, 0))
        self.sock.listen(64)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self.stopping.set()
        if self.sock is not None:
            self.sock.close()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    @staticmethod
    def _read_request(conn):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        n = int(headers.get("content-length", 0))
        while len(body) < n:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        return lines[0].split(" ")[1], headers, body[:n]

    def _handle(self, conn) -> None:
        conn.settimeout(10)
        try:
            req = self._read_request(conn)
            if req is None:
                return
            path, headers, raw = req
            body = json.loads(raw) if raw else {}
            rid = str(body.get("search_id", body.get("id")))
            with self.lock:
                queue = self.faults.get(rid)
                fault = queue.pop(0) if queue else self.always
                self.requests.append({"path": path, "id": rid, "fault": fault, "body": body,
                                      "auth": headers.get("authorization")})
            good = json.dumps(expected_answer(path, body)).encode()
            if fault is None:
                conn.sendall(_response(200, good))
                with self.lock:
                    self.served[rid] = self.served.get(rid, 0) + 1
            else:
                self._fault(conn, fault, good)
        except OSError:
            pass  # the client gave up
        finally:
            conn.close()

    def _fault(self, conn, fault: str, good: bytes) -> None:
        if fault == "truncated":  # the whole answer, but 50 bytes short of what Content-Length says
            conn.sendall(_response(200, good, length=len(good) + 50))
        elif fault == "badstatus":
            conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        elif fault == "reset":  # RST instead of an answer
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif fault == "hang":  # accepts, reads, never answers
            self.stopping.wait(10)
        elif fault == "drip":  # a valid answer, one byte at a time: slower in total than the deadline
            started = time.monotonic()
            for b in _response(200, good):
                conn.send(bytes([b]))
                if self.stopping.wait(self.drip_s) or time.monotonic() - started > self.drip_max_s:
                    return
        elif fault == "html":  # a login page where an answer should be
            conn.sendall(_response(200, b"<html><body>Please sign in</body></html>", ctype="text/html"))
        elif fault == "503":
            conn.sendall(_response(503, b'{"message": "busy"}'))
        elif fault == "deep":
            conn.sendall(_response(200, b"[" * 200_000 + b"]" * 200_000))
        elif fault == "huge":  # says 300 MB; sends up to 16 MiB while the client keeps reading
            conn.sendall(_response(200, b"", length=300_000_000))
            chunk = b"0" * (1 << 20)
            for _ in range(16):
                conn.sendall(chunk)
        elif fault == "big":  # a valid answer padded to 12 MiB, no Content-Length (ends at close)
            answer = json.loads(good)
            answer["pad"] = "x" * (12 << 20)
            conn.sendall(_response(200, json.dumps(answer).encode(), length=-1))
        elif fault == "redirect":
            conn.sendall(_response(302, b"", extra=(f"Location: {self.redirect_to}",)))
        else:  # pragma: no cover - a typo in a test
            raise AssertionError(fault)


class Elsewhere:
    """Another host (127.0.0.2): counts the connections it gets (there must be none)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.2", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stopping = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.close()

    def stop(self) -> None:
        self.stopping.set()
        self.sock.close()


@pytest.fixture
def serve():
    servers = []

    def start(**kw) -> tuple[HostileServer, str]:
        server = HostileServer(**kw)
        servers.append(server)
        return server, server.start()

    yield start
    for s in servers:
        s.stop()


@pytest.fixture
def token(monkeypatch):
    monkeypatch.setenv("HOSTILE_TOKEN", TOKEN)


# ------------------------------------------------------------------------------------------ inputs
@pytest.fixture
def evalset(tmp_path) -> Path:
    """manifest.csv, protocol.csv and one small image per template, in ``tmp_path/data``."""
    folder = tmp_path / "data"
    (folder / "images").mkdir(parents=True)
    ids = GALLERY + PROBES
    for t in ids:
        (folder / "images" / f"{t}.jpg").write_bytes(f"image of {t}".encode())
    pd.DataFrame({"template_id": ids, "subject_id": [f"s{i:02d}" for i in range(6)] + [f"s{i:02d}" for i in range(12)],
                  "image": [f"images/{t}.jpg" for t in ids]}).to_csv(folder / "manifest.csv", index=False)
    pd.DataFrame({"template_id": ids, "role": ["gallery"] * len(GALLERY) + ["probe"] * len(PROBES)}).to_csv(
        folder / "protocol.csv", index=False)
    return folder


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def config(endpoint: str, **kw) -> QueryConfig:
    return QueryConfig(endpoint, concurrency=kw.pop("concurrency", 4), timeout_s=kw.pop("timeout_s", 2.0),
                       max_attempts=kw.pop("max_attempts", 4), backoff_s=0.01, backoff_max_s=0.2, **kw)


def log_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def faceaudit_cli(*args):
    from faceaudit.cli import app
    return runner.invoke(app, [str(a) for a in args])


def flagaudit_cli(*args):
    from flagaudit.cli import app
    return runner.invoke(app, [str(a) for a in args])


def query_args(evalset: Path, adapter: Path, endpoint: str, out: Path, *extra) -> list:
    return ["query", "--endpoint", endpoint, "--adapter", adapter, "--manifest", evalset / "manifest.csv",
            "--protocol", evalset / "protocol.csv", "--out", out, "--concurrency", "1", "--max-attempts", "2",
            "--backoff", "0.01", "--timeout", "1", *extra]


def one_error_line(result, *words) -> str:
    """Exit 2 and exactly one line on stderr besides the announcement of where requests go."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip() and not ln.startswith("sending to ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert "\x1b" not in result.output and TOKEN not in result.output
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


# ---------------------------------------------------------------- intermittent faults: retried, nothing lost
INTERMITTENT = {"p00": ["truncated"], "p01": ["badstatus"], "p02": ["reset"], "p03": ["hang"], "p04": ["drip"],
                "p05": ["html"], "p06": ["truncated", "reset"], "p07": ["503", "badstatus"]}
ERROR_OF = {"truncated": "connection: IncompleteRead", "badstatus": "connection: BadStatusLine",
            "reset": "connection: ConnectionResetError", "hang": "timeout", "drip": "timeout",
            "html": "response is not JSON (Content-Type text/html)", "503": "HTTP 503"}


def test_faceaudit_query_retries_every_transport_fault_and_loses_or_doubles_no_search(evalset, tmp_path, serve,
                                                                                      token):
    server, endpoint = serve(faults=INTERMITTENT)
    out = tmp_path / "collected"
    started = time.monotonic()
    summary = run_query(load_adapter(write(tmp_path / "a.toml", SEARCH_ADAPTER)), endpoint,
                        evalset / "manifest.csv", evalset / "protocol.csv", out, config=config(endpoint),
                        announce=lambda s: None)
    assert time.monotonic() - started < 30
    n_faults = sum(len(v) for v in INTERMITTENT.values())
    assert summary["retries_this_run"] == n_faults and summary["requests_this_run"] == len(PROBES) + n_faults
    log = log_of(out / "requests.jsonl")
    for pid in PROBES:  # each fault logged as an attempt, then one answer
        attempts = [e for e in log if e["request"] == f"search {pid}"]
        assert [e["attempt"] for e in attempts] == list(range(1, len(INTERMITTENT.get(pid, [])) + 2))
        assert [e["error"] for e in attempts] == [ERROR_OF[f] for f in INTERMITTENT.get(pid, [])] + [None]
        assert attempts[-1]["status"] == 200
    # the deadline is per request, in total: a byte at a time cannot hold a request past it
    slow = [e for e in log if e["error"] == "timeout"]
    assert len(slow) == 2 and all(2.0 <= e["latency_s"] < 3.0 for e in slow)
    # every search answered once, journaled once, listed once, with the answer the server gave
    assert server.served == {p: 1 for p in PROBES}
    journal = [json.loads(x) for x in (tmp_path / "collected.journal.jsonl").read_text().splitlines()]
    assert sorted(e["search_id"] for e in journal if e["kind"] == "search") == PROBES
    lists = [json.loads(x) for x in (out / "lists.jsonl").read_text().splitlines()]
    assert sorted(r["search_id"] for r in lists) == PROBES
    for r in lists:
        want = expected_answer("/search", {"search_id": r["search_id"]})["candidates"]
        assert [(c["candidate_id"], c["score"]) for c in r["candidates"]] == [(w["templateId"], w["score"]) for w in want]
    assert all(r["auth"] == f"Bearer {TOKEN}" for r in server.requests)
    for path in [*out.iterdir(), tmp_path / "collected.journal.jsonl"]:
        assert TOKEN.encode() not in path.read_bytes()


def test_flagaudit_endpoint_retries_every_transport_fault_and_loses_or_doubles_no_case(tmp_path, serve, token):
    from flagaudit.endpoint import load_flag_adapter, query_flags
    from flagaudit.suites import load_benign_traps
    cases = load_benign_traps()[0].iloc[:16].reset_index(drop=True)
    ids = cases["case_id"].tolist()
    kinds = ["truncated", "badstatus", "reset", "hang", "drip", "html", "503"]
    faults = {c: [kinds[i]] for i, c in enumerate(ids[: len(kinds)])}
    faults[ids[10]] = ["badstatus", "truncated"]
    server, endpoint = serve(faults=faults)
    flags, summary = query_flags(load_flag_adapter(write(tmp_path / "f.toml", FLAG_ADAPTER)), endpoint, cases,
                                 tmp_path / "res", config=config(endpoint), announce=lambda s: None)
    n_faults = sum(len(v) for v in faults.values())
    assert summary["retries_this_run"] == n_faults and summary["cases"] == len(ids)
    log = log_of(tmp_path / "res.requests.jsonl")
    assert len(log) == len(ids) + n_faults
    for cid in ids:
        attempts = [e for e in log if e["request"] == f"case {cid}"]
        assert [e["error"] for e in attempts] == [ERROR_OF[f] for f in faults.get(cid, [])] + [None]
    assert server.served == {c: 1 for c in ids}
    journal = [json.loads(x) for x in (tmp_path / "res.journal.jsonl").read_text().splitlines()]
    assert sorted(e["case_id"] for e in journal if e["kind"] == "case") == sorted(ids)
    want = [expected_answer("/v1/classify", {"input": t})["result"] for t in cases["text"]]
    assert flags.flagged.tolist() == [w["flagged"] for w in want]
    assert flags.score.tolist() == [w["score"] for w in want]


# ------------------------------------------------------------ persistent faults: one line after the attempts
@pytest.mark.parametrize("fault,words", [
    ("truncated", ["connection: IncompleteRead after 2 attempts"]),
    ("badstatus", ["connection: BadStatusLine after 2 attempts"]),
    ("drip", ["timeout after 2 attempts"]),
    ("html", ["response is not JSON (Content-Type text/html) after 2 attempts"]),
])
def test_faceaudit_query_persistent_fault_is_one_line_exit_2(evalset, tmp_path, serve, token, fault, words):
    _server, endpoint = serve(always=fault)
    out = tmp_path / "o"
    result = faceaudit_cli(*query_args(evalset, write(tmp_path / "a.toml", SEARCH_ADAPTER), endpoint, out))
    one_error_line(result, "request search p00", "rerun the same command to resume", *words)
    log = log_of(tmp_path / "o.requests.jsonl")
    assert [e["attempt"] for e in log if e["request"] == "search p00"] == [1, 2] and all(e["error"] for e in log)
    assert len(log) <= 3  # at most the next search's first attempt, started as the run stopped
    assert all(e["latency_s"] < 2.5 for e in log) and not out.exists()


@pytest.mark.parametrize("fault,words", [
    ("truncated", ["connection: IncompleteRead after 2 attempts"]),
    ("badstatus", ["connection: BadStatusLine after 2 attempts"]),
    ("drip", ["timeout after 2 attempts"]),
])
def test_flagaudit_audit_persistent_fault_is_one_line_exit_2(tmp_path, serve, token, fault, words):
    _server, endpoint = serve(always=fault)
    out = tmp_path / "res"
    result = flagaudit_cli("audit", "--suite", "benign-traps", "--endpoint", endpoint, "--adapter",
                           write(tmp_path / "f.toml", FLAG_ADAPTER), "--out", out, "--concurrency", "1",
                           "--max-attempts", "2", "--timeout", "1")
    line = one_error_line(result, "request case benign-traps:", "kept in the journal", *words)
    log = log_of(tmp_path / "res.requests.jsonl")
    first = log[0]["request"]
    assert f"request {first} to" in line and [e["attempt"] for e in log if e["request"] == first] == [1, 2]
    assert len(log) <= 3 and not out.exists()


# ------------------------------------------------------------------------- refused at once, one line
@pytest.mark.parametrize("fault,words", [
    ("deep", ["JSON nests deeper than 200 levels", "not retried"]),
    ("huge", ["larger than 8 MiB", "max_response_mib", "not retried"]),
    ("big", ["larger than 8 MiB", "max_response_mib", "not retried"]),
    ("redirect", ["HTTP 302; not retried", "127.0.0.2", "redirects are never followed"]),
])
def test_faceaudit_query_refuses_a_hostile_answer_at_once(evalset, tmp_path, serve, token, fault, words):
    elsewhere = Elsewhere()
    try:
        _server, endpoint = serve(always=fault, redirect_to=f"http://127.0.0.2:{elsewhere.port}/\x1b[31msteal")
        out = tmp_path / "o"
        started = time.monotonic()
        result = faceaudit_cli(*query_args(evalset, write(tmp_path / "a.toml", SEARCH_ADAPTER), endpoint, out))
        one_error_line(result, "request search p00", *words)
        assert time.monotonic() - started < 10
    finally:
        elsewhere.stop()
    assert elsewhere.connections == 0  # nothing followed
    log = log_of(tmp_path / "o.requests.jsonl")
    assert [e["attempt"] for e in log if e["request"] == "search p00"] == [1]  # nothing retried
    assert len(log) <= 2 and all(e["error"] and e["response_bytes"] <= (8 << 20) + 1 for e in log)


@pytest.mark.parametrize("fault,words", [
    ("deep", ["JSON nests deeper than 200 levels", "not retried"]),
    ("huge", ["larger than 8 MiB", "max_response_mib", "not retried"]),
])
def test_flagaudit_audit_refuses_a_hostile_answer_at_once(tmp_path, serve, token, fault, words):
    server, endpoint = serve(always=fault)
    out = tmp_path / "res"
    result = flagaudit_cli("audit", "--suite", "benign-traps", "--endpoint", endpoint, "--adapter",
                           write(tmp_path / "f.toml", FLAG_ADAPTER), "--out", out, "--concurrency", "1",
                           "--timeout", "5")
    one_error_line(result, "request case benign-traps:", *words)
    assert len(server.requests) <= 2 and not out.exists()
    assert all(e["attempt"] == 1 for e in log_of(tmp_path / "res.requests.jsonl"))  # nothing retried


def test_the_response_limit_is_an_adapter_key(evalset, tmp_path, serve, token):
    _server, endpoint = serve(faults={"p03": ["big"]})
    adapter = write(tmp_path / "a.toml", SEARCH_ADAPTER + "[limits]\nmax_response_mib = 16\n")
    summary = run_query(load_adapter(adapter), endpoint, evalset / "manifest.csv", evalset / "protocol.csv",
                        tmp_path / "o", config=config(endpoint, timeout_s=10), announce=lambda s: None)
    assert summary["searches"] == len(PROBES) and summary["retries_this_run"] == 0
    for bad in ("0", "-1", '"8"', "true"):
        with pytest.raises(InputError, match="max_response_mib"):
            load_adapter(write(tmp_path / "b.toml", SEARCH_ADAPTER + f"[limits]\nmax_response_mib = {bad}\n"))


# ----------------------------------------------------------------------- refused before any request
def test_unknown_placeholder_refused_before_anything_is_sent(evalset, tmp_path, serve, token):
    server, endpoint = serve()
    enrol = '[enrol]\npath = "/enrol"\n[enrol.body]\nexternalId = "{{template_id}}"\nimage = "{{image_base64}}"\n'
    typo = SEARCH_ADAPTER.replace('candidateListLength = "{{list_length}}"',
                                  'candidateListLength = "{{list_length}}"\nimage = "{{image_base64}}"\n'
                                  'maxFaces = "{{max_faces}}"') + enrol
    adapter = write(tmp_path / "typo.toml", typo)
    result = faceaudit_cli(*query_args(evalset, adapter, endpoint, tmp_path / "o"))
    one_error_line(result, str(adapter), "[search]", "unknown placeholder {{max_faces}}")
    in_enrol = write(tmp_path / "typo2.toml", SEARCH_ADAPTER + enrol.replace("{{template_id}}", "id-{{templat_id}}"))
    one_error_line(faceaudit_cli(*query_args(evalset, in_enrol, endpoint, tmp_path / "o")), str(in_enrol),
                   "[enrol]", "unknown placeholder {{templat_id}}")
    unclosed = write(tmp_path / "typo3.toml", SEARCH_ADAPTER.replace('"{{search_id}}"', '"{{search_id"'))
    one_error_line(faceaudit_cli(*query_args(evalset, unclosed, endpoint, tmp_path / "o")), str(unclosed), "'{{'")
    no_templates = write(tmp_path / "t.toml", SEARCH_ADAPTER.replace('"{{search_id}}"', '"{{search_id}}"\n'
                                                                     'template = "{{template}}"'))
    one_error_line(faceaudit_cli(*query_args(evalset, no_templates, endpoint, tmp_path / "o")), "--templates")
    pd.read_csv(evalset / "manifest.csv").drop(columns="image").to_csv(evalset / "manifest.csv", index=False)
    with_images = write(tmp_path / "i.toml", SEARCH_ADAPTER + enrol)
    one_error_line(faceaudit_cli(*query_args(evalset, with_images, endpoint, tmp_path / "o")),
                   "{{image_base64}}", "no 'image' column")
    assert server.connections == 0 and not (tmp_path / "o.journal.jsonl").exists()


def test_credentials_never_cross_plain_http_to_another_host(evalset, tmp_path, serve, token):
    from auditcore.http_runner import check_credentials_transport
    for ok in ("https://search.example.org", "http://127.0.0.1:8080", "http://127.9.9.9", "http://localhost:1",
               "http://LOCALHOST", "http://[::1]:8080"):
        check_credentials_transport(ok, True, False)
    for bad in ("http://search.example.org", "http://10.0.0.5:8080", "http://128.0.0.1", "http://localhost.evil.org",
                "http://127.0.0.1.nip.io", "http://[::2]"):
        with pytest.raises(InputError, match="--allow-plain-http"):
            check_credentials_transport(bad, True, False)
        check_credentials_transport(bad, False, False)  # nothing secret to send
        check_credentials_transport(bad, True, True)  # the user said so
    adapter = write(tmp_path / "a.toml", SEARCH_ADAPTER)
    result = faceaudit_cli(*query_args(evalset, adapter, "http://search.example.org", tmp_path / "o"))
    one_error_line(result, "plain http://", "search.example.org", "HOSTILE_TOKEN", "--allow-plain-http")
    assert "sending to" not in result.output and not (tmp_path / "o.journal.jsonl").exists()
    result = flagaudit_cli("audit", "--suite", "benign-traps", "--endpoint", "http://search.example.org:8080",
                           "--adapter", write(tmp_path / "f.toml", FLAG_ADAPTER), "--out", tmp_path / "res")
    one_error_line(result, "plain http://", "--allow-plain-http")
    assert "sending to" not in result.output and not (tmp_path / "res.journal.jsonl").exists()
    # allowed explicitly: it is sent (to a documentation address that leads nowhere), and fails as a transport fault
    result = faceaudit_cli(*query_args(evalset, adapter, "http://192.0.2.1:9", tmp_path / "o2", "--allow-plain-http",
                                       "--max-attempts", "1"))
    one_error_line(result, "after 1 attempts")


def test_image_paths_stay_inside_the_images_folder(evalset, tmp_path, serve, token):
    secret = tmp_path / "id_rsa"
    secret.write_bytes(b"PRIVATE KEY")
    (evalset / "images" / "link.jpg").symlink_to(secret)
    adapter = write(tmp_path / "img.toml", SEARCH_ADAPTER.replace('"{{search_id}}"', '"{{search_id}}"\n'
                                                                  'image = "{{image_base64}}"'))
    manifest = pd.read_csv(evalset / "manifest.csv")
    server, endpoint = serve()
    for bad, why in [("../id_rsa", "leads outside"), (str(secret), "absolute"), ("images/link.jpg", "leads outside"),
                     ("images/../../../id_rsa", "leads outside")]:
        m = manifest.copy()
        m.loc[m.template_id == "p05", "image"] = bad
        m.to_csv(evalset / "manifest.csv", index=False)
        line = one_error_line(faceaudit_cli(*query_args(evalset, adapter, endpoint, tmp_path / "o")),
                              "p05", why, "--allow-images-outside")
        assert str(evalset) in line
        assert server.connections == 0
    # --images-root is the folder then: the manifest's own folder is outside it
    manifest.to_csv(evalset / "manifest.csv", index=False)
    m = manifest.assign(image=manifest.image.str.replace("images/", "", regex=False))
    m.loc[m.template_id == "p05", "image"] = "../manifest.csv"
    m.to_csv(evalset / "manifest.csv", index=False)
    one_error_line(faceaudit_cli(*query_args(evalset, adapter, endpoint, tmp_path / "o", "--images-root",
                                             evalset / "images")), "p05", "leads outside", str(evalset / "images"))
    assert server.connections == 0
    # allowed explicitly: that file is sent
    m.loc[m.template_id == "p05", "image"] = str(secret)
    m.to_csv(evalset / "manifest.csv", index=False)
    result = faceaudit_cli(*query_args(evalset, adapter, endpoint, tmp_path / "o", "--images-root",
                                       evalset / "images", "--allow-images-outside"))
    assert result.exit_code == 0, result.output
    sent = {r["id"]: base64.b64decode(r["body"]["image"]) for r in server.requests}
    assert sent["p05"] == b"PRIVATE KEY" and sent["p04"] == b"image of p04"


def test_resolve_under(tmp_path):
    from auditcore.paths import resolve_under
    root = tmp_path / "imgs"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.jpg").write_bytes(b"x")
    (tmp_path / "out.jpg").write_bytes(b"o")
    (root / "in-link.jpg").symlink_to(root / "a" / "x.jpg")
    (root / "out-link.jpg").symlink_to(tmp_path / "out.jpg")
    alias = tmp_path / "alias"
    alias.symlink_to(root)
    assert resolve_under(root, "a/x.jpg") == (root / "a" / "x.jpg").resolve()
    assert resolve_under(root, "a/../a/x.jpg") == (root / "a" / "x.jpg").resolve()
    assert resolve_under(root, "in-link.jpg") == (root / "a" / "x.jpg").resolve()
    assert resolve_under(alias, "a/x.jpg") == (root / "a" / "x.jpg").resolve()  # the root may be a link
    assert resolve_under(root, "missing.jpg") == root.resolve() / "missing.jpg"  # existence is the reader's business
    for bad in ("../out.jpg", "out-link.jpg", str(tmp_path / "out.jpg"), "a/../../out.jpg", "/etc/passwd", ".."):
        with pytest.raises(InputError) as err:
            resolve_under(root, bad, what="image of t1", source="m.csv")
        assert str(err.value).startswith("m.csv: image of t1") and "--allow-images-outside" in str(err.value)
        assert "\n" not in str(err.value)
        assert resolve_under(root, bad, allow_outside=True) == (root / bad).resolve()


def test_fill_does_not_read_placeholders_inside_the_values():
    assert fill({"x": "id-{{case_id}}", "y": ["{{text}}"]}, {"case_id": "{{text}}", "text": "a {{ b"}) == \
        {"x": "id-{{text}}", "y": ["a {{ b"]}
    assert fill("{{a}}{{b}}", {"a": "{{b}}", "b": 1}) == "{{b}}1"


def _depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab,:\n\x00é'),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                         st.text(alphabet='[]{}"\\k', max_size=3), inner, max_size=4), max_leaves=40)


@settings(max_examples=300, deadline=None)
@given(value=_JSON, ascii_only=st.booleans(), limit=st.integers(0, 6))
def test_depth_scan_agrees_with_the_parsed_depth(value, ascii_only, limit):
    from auditcore.http_runner import json_too_deep
    data = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8")
    assert json_too_deep(data, limit) == (_depth(value) > limit)

"""A local flagging service for tests (127.0.0.1 only): a keyword flagger behind HTTP.

``POST /v1/classify`` with ``{"id": case id, "input": text}`` answers
``{"id", "result": {"flagged": bool, "score": float, "label": "threat"|"ok"}}``, where flagged and
score are :class:`flagaudit.systems.KeywordFlagger`'s own for the same keyword lines, so an audit
over HTTP must give exactly the figures of the same flagger run locally.

Faults are injected per case id: ``faults[case_id]`` is a list of faults for its first attempts
(``timeout``, ``429``, ``500``, ``503``, ``malformed``, ``truncated``, ``drop``, ``400``, ``noflag``,
``badscore``). The service is test code: flagaudit ships no flagging service.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from flagaudit.systems import KeywordFlagger

KEYWORDS = ["kill", "[2] bomb", "shoot", "deport", "re:\\bfight\\w*", "burn", "storm", "jihad", "threshold: 1"]


class FlagService:
    def __init__(self, keywords=KEYWORDS, *, token: str | None = None, faults: dict | None = None,
                 timeout_sleep: float = 3.0, delay: float = 0.0) -> None:
        self.flagger = KeywordFlagger.from_lines(keywords, source="fixture")
        self.token = token
        self.faults = {k: list(v) for k, v in (faults or {}).items()}
        self.timeout_sleep = timeout_sleep
        self.delay = delay
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.served: dict[str, int] = {}  # case id -> successful answers
        self.server = None
        self.port = 0

    def start(self, port: int = 0) -> str:
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, payload: bytes, headers: dict | None = None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self):  # noqa: N802 - http.server API
                n = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(n)
                with service.lock:
                    service.requests.append({"path": self.path, "headers": dict(self.headers), "body": raw})
                if service.token and self.headers.get("Authorization") != f"Bearer {service.token}":
                    return self._send(401, b'{"message": "unauthorized"}')
                if self.path.startswith("/redirect"):
                    return self._send(302, b"", {"Location": "http://127.0.0.2:9/elsewhere"})
                if self.path != "/v1/classify":
                    return self._send(404, b'{"message": "no such path"}')
                try:
                    body = json.loads(raw)
                except ValueError:
                    return self._send(400, b'{"message": "bad json"}')
                cid = body.get("id")
                with service.lock:
                    queue = service.faults.get(cid)
                    fault = queue.pop(0) if queue else None
                if service.delay:
                    time.sleep(service.delay)
                if fault == "timeout":  # answer too late: the client has given up and will ask again
                    time.sleep(service.timeout_sleep)
                    self.close_connection = True
                    return
                if fault in ("429", "500", "503", "400"):
                    return self._send(int(fault), b'{"message": "injected"}', {"Retry-After": "0"} if fault == "429" else None)
                if fault == "drop":
                    self.close_connection = True
                    return
                score = float(service.flagger.scores([body["input"]])[0])
                flagged = bool(score >= service.flagger.threshold)
                answer = {"id": cid, "result": {"flagged": flagged, "score": score, "label": "threat" if flagged else "ok"}}
                if fault == "noflag":
                    answer = {"id": cid, "result": {"score": score}}
                if fault == "badscore":
                    answer["result"]["score"] = "high"
                payload = json.dumps(answer).encode()
                if fault == "malformed":
                    return self._send(200, b'{"id": "x", "result": {"flagged": tr')
                if fault == "truncated":
                    return self._send(200, payload[: len(payload) // 2])
                with service.lock:
                    service.served[cid] = service.served.get(cid, 0) + 1
                return self._send(200, payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


FLAG_ADAPTER = """
name = "fixture-flagger"
[system]
name = "fixture keyword flagger"
version = "fixture-1"
[request]
method = "POST"
path = "/v1/classify"
[request.body]
id = "{{case_id}}"
input = "{{text}}"
lang = "{{language}}"
[response]
flagged = "result.flagged"
score = "result.score"
score_range = [0, 100]
threshold = 1
[auth]
header = "Authorization"
env = "FLAGGER_TOKEN"
prefix = "Bearer "
"""

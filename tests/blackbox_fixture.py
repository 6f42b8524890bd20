"""A local face search service for tests (127.0.0.1 only), built on faceaudit's own engine.

It enrols templates and answers searches in a Rekognition-like format (``/rekognition/search``:
``FaceMatches[].Similarity`` = 100 x score, ``Face.ExternalImageId``, cut by ``MaxFaces`` and
``FaceMatchThreshold``) or a NIST FRTE 1:N-like format (``/nist/search``: exactly
``candidateListLength`` entries ``{templateId, score, isAssigned}``, padded with unassigned ones).
Scores are the engine's own reference scores (``engine._prepare`` + ``_kernel.reference_pairs``,
gallery in the engine's order), so its lists are the template audit's lists.

Faults are injected per search id: ``faults[search_id]`` is a list of faults for its first
attempts (``timeout``, ``429``, ``500``, ``503``, ``malformed``, ``truncated``, ``drop``,
``unordered``, ``400``). The service is test code: faceaudit itself ships no search service.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from faceaudit.engine import local as engine


class SearchService:
    def __init__(self, *, score: str = "cosine", token: str | None = None, faults: dict | None = None,
                 timeout_sleep: float = 1.0) -> None:
        self.score = score
        self.token = token
        self.faults = {k: list(v) for k, v in (faults or {}).items()}
        self.timeout_sleep = timeout_sleep
        self.gallery: dict[str, np.ndarray] = {}
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.served: dict[str, int] = {}  # search id -> successful answers
        self.server = None
        self.port = 0

    # --- scoring with the engine's arithmetic ------------------------------------------
    def _scores(self, probe: list) -> tuple[list, np.ndarray]:
        with self.lock:
            ids = sorted(self.gallery)
            gal = np.stack([self.gallery[i] for i in ids]) if ids else np.zeros((0, len(probe)), np.float32)
        if self.score != "cosine":
            raise NotImplementedError(self.score)
        # the engine's reference score of every (probe, gallery template) pair: what an audit reports
        x, _ = engine._prepare(np.vstack([np.asarray(probe, np.float32)[None, :], gal]), self.score)
        n = x.shape[0] - 1
        s = np.empty(n, np.float32)
        engine._kernel.reference_pairs(engine.SCORE_KINDS[self.score], x[:1], np.ascontiguousarray(x[1:]),
                                       np.zeros(n, np.int64), np.arange(n, dtype=np.int64), s)
        return ids, s

    def _ranked(self, probe) -> list[tuple[str, float]]:
        ids, s = self._scores(probe)
        order = np.argsort(-s, kind="stable")
        return [(ids[i], float(s[i])) for i in order]

    # --- HTTP ----------------------------------------------------------------------------
    def start(self, port: int = 0) -> str:
        service = self
        # compile the engine's scoring before serving: a first request must not spend seconds in
        # numba's compiler (a fresh checkout has no compiled cache) and look like a timeout
        engine._kernel.reference_pairs(engine.SCORE_KINDS["cosine"], np.ones((1, 4), np.float32) / 2,
                                       np.ones((1, 4), np.float32) / 2, np.zeros(1, np.int64),
                                       np.zeros(1, np.int64), np.empty(1, np.float32))

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, payload: bytes, headers: dict | None = None, length: int | None = None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload) if length is None else length))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self):  # noqa: N802 - http.server API
                n = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(n)
                with service.lock:
                    service.requests.append({"path": self.path, "headers": dict(self.headers), "bytes": len(raw)})
                if service.token and self.headers.get("Authorization") != f"Bearer {service.token}":
                    return self._send(401, b'{"message": "unauthorized"}')
                try:
                    body = json.loads(raw)
                except ValueError:
                    return self._send(400, b'{"message": "bad json"}')
                if self.path.startswith("/redirect"):
                    return self._send(302, b"", {"Location": "http://127.0.0.2:9/elsewhere"})
                if self.path == "/enrol":
                    with service.lock:
                        service.gallery[body["template_id"]] = np.asarray(body["template"], np.float32)
                    return self._send(200, json.dumps({"FaceRecords": [{"Face": {
                        "FaceId": "F-" + body["template_id"], "ExternalImageId": body["template_id"]}}]}).encode())
                sid = body.get("search_id")
                with service.lock:
                    queue = service.faults.get(sid)
                    fault = queue.pop(0) if queue else None
                if fault == "timeout":  # answer too late: the client has given up and will ask again
                    time.sleep(service.timeout_sleep)
                    self.close_connection = True
                    return
                elif fault in ("429", "500", "503", "400"):
                    return self._send(int(fault), b'{"message": "injected"}', {"Retry-After": "0"} if fault == "429" else None)
                elif fault == "drop":
                    self.close_connection = True
                    return
                ranked = service._ranked(body["template"])
                if self.path == "/rekognition/search":
                    t = float(body.get("FaceMatchThreshold", 80.0))
                    k = int(body.get("MaxFaces", 80))
                    matches = [{"Similarity": 100.0 * s, "Face": {"FaceId": "F-" + i, "ExternalImageId": i}}
                               for i, s in ranked if 100.0 * s >= t][:k]
                    if fault == "unordered":
                        matches = matches[::-1]
                    answer = {"SearchedFaceConfidence": 99.9, "FaceMatches": matches, "FaceModelVersion": "fixture-1"}
                elif self.path == "/nist/search":
                    k = int(body["candidateListLength"])
                    cands = [{"templateId": i, "score": s, "isAssigned": True} for i, s in ranked[:k]]
                    cands += [{"templateId": "", "score": 0.0, "isAssigned": False}] * (k - len(cands))
                    answer = {"candidates": cands}
                else:
                    return self._send(404, b'{"message": "no such path"}')
                payload = json.dumps(answer).encode()
                if fault == "malformed":
                    return self._send(200, b'{"FaceMatches": [{"Similarity": 9')
                if fault == "truncated":
                    cut = payload[: len(payload) // 2]
                    return self._send(200, cut)
                with service.lock:
                    service.served[sid] = service.served.get(sid, 0) + 1
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

    def restart(self) -> str:
        """Come back on the same port with the same gallery (a crash and restart)."""
        port = self.port
        self.stop()
        ThreadingHTTPServer.allow_reuse_address = True
        return self.start(port)


REKOGNITION_ADAPTER = """
name = "fixture-rekognition"
[system]
name = "fixture (Rekognition-like)"
[search]
path = "/rekognition/search"
list_length = {L}
threshold = {t}
[search.body]
search_id = "{{{{search_id}}}}"
template = "{{{{template}}}}"
MaxFaces = "{{{{list_length}}}}"
FaceMatchThreshold = "{{{{threshold}}}}"
[enrol]
path = "/enrol"
id = "FaceRecords.0.Face.FaceId"
[enrol.body]
template_id = "{{{{template_id}}}}"
template = "{{{{template}}}}"
[response]
candidates = "FaceMatches"
id = "Face.ExternalImageId"
score = "Similarity"
score_scale = "0-100"
version = "FaceModelVersion"
list_length_param = "MaxFaces"
threshold_param = "FaceMatchThreshold"
[auth]
header = "Authorization"
env = "FIXTURE_TOKEN"
prefix = "Bearer "
"""

NIST_ADAPTER = """
name = "fixture-nist"
[system]
name = "fixture (NIST-like)"
version = "fixture-1"
[search]
path = "/nist/search"
list_length = {L}
[search.body]
search_id = "{{{{search_id}}}}"
template = "{{{{template}}}}"
candidateListLength = "{{{{list_length}}}}"
[enrol]
path = "/enrol"
[enrol.body]
template_id = "{{{{template_id}}}}"
template = "{{{{template}}}}"
[response]
candidates = "candidates"
id = "templateId"
score = "score"
valid = "isAssigned"
list_length_param = "candidateListLength"
[auth]
header = "Authorization"
env = "FIXTURE_TOKEN"
prefix = "Bearer "
"""


if __name__ == "__main__":  # a local service for the worked example in docs/blackbox.md (127.0.0.1 only)
    import argparse

    parser = argparse.ArgumentParser(description="test search service on 127.0.0.1 (faceaudit's engine)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token", default=None, help="require 'Authorization: Bearer TOKEN'")
    args = parser.parse_args()
    service = SearchService(token=args.token)
    print(f"serving on {service.start(args.port)} (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        service.stop()

"""The live runner against a real local HTTP service (127.0.0.1 only) built on faceaudit's engine.

The black-box audit of the service gives the template audit's figures wherever both are defined,
and across timeouts, 429s, 5xx, malformed and truncated answers, dropped connections, a killed
runner and a killed server, no search is lost or counted twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from blackbox_fixture import NIST_ADAPTER, REKOGNITION_ADAPTER, SearchService
from conftest import assert_nothing_more_sent
from test_blackbox import same_where_defined

from auditcore.errors import InputError
from faceaudit.audit import run_audit
from faceaudit.blackbox.audit import audit_lists
from faceaudit.blackbox.query import QueryConfig, load_adapter, run_query
from faceaudit.data.candidates import read_lists
from faceaudit.data.synthetic import make_population
from faceaudit.engine.observed import read_gallery, read_manifest

TOKEN = "s3cret-token-for-tests"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("evalset")
    es, proto, _ = make_population(n_enrolled=40, n_nonenrolled=40, dim=16, seed=5)
    np.save(folder / "templates.npy", es.templates)
    es.manifest.to_csv(folder / "manifest.csv", index=False)
    roles = pd.DataFrame({"template_id": es.template_ids[np.concatenate([proto.gallery, proto.probes])],
                          "role": ["gallery"] * proto.gallery.size + ["probe"] * proto.probes.size})
    roles.to_csv(folder / "protocol.csv", index=False)
    audit = run_audit(es, proto, top_k=10, thresholds=[0.5, 0.7])
    return es, proto, audit, folder


def adapter_file(tmp_path: Path, text: str, **kw) -> Path:
    path = tmp_path / "adapter.toml"
    path.write_text(text.format(**kw))
    return path


def query(folder, adapter, endpoint, out, **kw):
    cfg = QueryConfig(endpoint, concurrency=kw.pop("concurrency", 4), timeout_s=kw.pop("timeout_s", 0.6),
                      max_attempts=kw.pop("max_attempts", 5), backoff_s=kw.pop("backoff_s", 0.01),
                      backoff_max_s=0.5, rate=kw.pop("rate", None))
    return run_query(load_adapter(adapter), endpoint, folder / "manifest.csv", folder / "protocol.csv", out,
                     templates_path=folder / "templates.npy", config=cfg, announce=kw.pop("announce", lambda s: None), **kw)


def blackbox_results(folder, lists_path, thresholds):
    man = read_manifest(folder / "manifest.csv")
    return audit_lists(read_lists(lists_path), man, read_gallery(folder / "protocol.csv", man), thresholds=thresholds)


@pytest.fixture
def token(monkeypatch):
    monkeypatch.setenv("FIXTURE_TOKEN", TOKEN)


def no_secret_in(folder: Path, *files: Path):
    for path in list(folder.iterdir()) + list(files):
        assert TOKEN.encode() not in path.read_bytes(), path


def test_nist_like_service_with_every_fault_gives_the_template_figures(setup, tmp_path, token):
    es, proto, audit, folder = setup
    probes = es.template_ids[proto.probes]
    kinds = ["timeout", "429", "500", "503", "malformed", "truncated", "drop"]
    faults = {p: [kinds[i % len(kinds)]] * (1 + i % 2) for i, p in enumerate(probes[::4])}
    service = SearchService(token=TOKEN, faults=faults, timeout_sleep=1.2)
    endpoint = service.start()
    lines = []
    try:
        out = tmp_path / "collected"
        summary = query(folder, adapter_file(tmp_path, NIST_ADAPTER, L=10), endpoint, out, announce=lines.append)
    finally:
        service.stop()
    assert lines and f"sending to http://127.0.0.1:{service.port} only" in lines[0]
    n_faults = sum(len(v) for v in faults.values())
    assert summary["retries_this_run"] == n_faults
    log = [json.loads(x) for x in (out / "requests.jsonl").read_text().splitlines()]
    assert len(log) == proto.gallery.size + proto.probes.size + n_faults
    assert {e["error"].split(" (")[0] for e in log if e["error"]} >= {"timeout", "HTTP 429", "HTTP 500",
                                                                     "response does not parse as JSON"}
    assert all(len(e["request_sha256"]) == 64 for e in log)
    # every search answered exactly once and listed exactly once
    assert sorted(service.served) == sorted(probes) and set(service.served.values()) == {1}
    lists = read_lists(out / "lists.parquet")
    assert sorted(lists.searches.probe_id) == sorted(probes)
    assert all(h.get("Authorization") == f"Bearer {TOKEN}" for h in (r["headers"] for r in service.requests))
    no_secret_in(out, tmp_path / "collected.journal.jsonl", tmp_path / "collected.requests.jsonl")
    bb = blackbox_results(folder, out / "lists.parquet", [0.5, 0.7])
    n = same_where_defined(audit.results, bb.results)
    assert n["equal"] >= 20 and bb.results["identification"]["cmc"]["measurable_to_rank"] == 10


def test_rekognition_like_service_cut_at_threshold(setup, tmp_path, token):
    es, proto, audit, folder = setup
    service = SearchService(token=TOKEN)
    endpoint = service.start()
    try:
        out = tmp_path / "rek"
        query(folder, adapter_file(tmp_path, REKOGNITION_ADAPTER, L=5, t=55.0), endpoint, out)
    finally:
        service.stop()
    lists = read_lists(out / "lists.parquet")
    assert set(lists.searches.threshold) == {55.0} and set(lists.searches.system_version) == {"fixture-1"}
    bb = blackbox_results(folder, out / "lists.parquet", [50.0, 70.0])
    n = same_where_defined(audit.results, bb.results, scale=100.0)
    assert n["equal"] >= 5 and n["not_measurable"] >= 1
    at = bb.results["identification"]["at_thresholds"]
    assert at[0]["fpir"]["not_measurable"] and at[1]["fpir"]["errors"] == audit.results["identification"]["at_thresholds"][1]["fpir"]["errors"]


def _journal_searches(path: Path) -> list[str]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("kind") == "search":
            out.append(e["search_id"])
    return out


def test_killed_runner_resumes_without_repeating_or_losing_a_search(setup, tmp_path):
    es, proto, audit, folder = setup
    service = SearchService()
    endpoint = service.start()
    adapter = tmp_path / "a.toml"
    adapter.write_text(NIST_ADAPTER.format(L=10).replace('[auth]\nheader = "Authorization"\nenv = "FIXTURE_TOKEN"\nprefix = "Bearer "\n', ""))
    out = tmp_path / "run"
    journal = tmp_path / "run.journal.jsonl"
    cmd = [sys.executable, "-m", "faceaudit.cli", "query", "--endpoint", endpoint, "--adapter", str(adapter),
           "--manifest", str(folder / "manifest.csv"), "--protocol", str(folder / "protocol.csv"),
           "--templates", str(folder / "templates.npy"), "--out", str(out), "--rate", "60", "--concurrency", "2"]
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 60
        while len(_journal_searches(journal)) < 30 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        before = _journal_searches(journal)
        assert 30 <= len(before) < proto.probes.size and not out.exists()
        served_before = dict(service.served)
        done = subprocess.run(["script", "-qec", " ".join(cmd), "/dev/null"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"sending to {endpoint} only" in done.stdout
        assert f"{len(before)} searches already in the journal" in done.stdout
    finally:
        service.stop()
    after = _journal_searches(journal)
    assert sorted(after) == sorted(es.template_ids[proto.probes])  # none lost, none twice
    assert all(service.served[s] == 1 for s in before)  # finished searches were not sent again
    in_flight = [s for s in service.served if service.served[s] > 1]
    assert len(in_flight) <= 2 and all(s not in before for s in in_flight)
    assert sum(served_before.values()) >= len(before)
    assert len(read_lists(out / "lists.parquet").searches) == proto.probes.size


def test_killed_server_run_stops_cleanly_then_resumes(setup, tmp_path, token):
    es, proto, audit, folder = setup
    service = SearchService(token=TOKEN)
    endpoint = service.start()
    adapter = adapter_file(tmp_path, NIST_ADAPTER, L=10)
    out = tmp_path / "srv"
    errors = []

    def go():
        try:
            query(folder, adapter, endpoint, out, rate=80, concurrency=2, max_attempts=3, backoff_s=0.05)
        except InputError as exc:
            errors.append(str(exc))

    worker = threading.Thread(target=go)
    worker.start()
    journal = tmp_path / "srv.journal.jsonl"
    deadline = time.monotonic() + 30
    while len(_journal_searches(journal)) < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    service.stop()  # the server dies and stays down: the run gives up with one line
    worker.join(60)
    assert errors and "after 3 attempts" in errors[0] and "rerun the same command to resume" in errors[0]
    assert "\n" not in errors[0] and not out.exists()
    before = _journal_searches(journal)
    service.restart()
    try:
        # a crash and restart during the run: retried through
        summary = query(folder, adapter, endpoint, out, max_attempts=8, backoff_s=0.05)
    finally:
        service.stop()
    assert summary["searches"] == proto.probes.size
    after = _journal_searches(journal)
    assert sorted(after) == sorted(es.template_ids[proto.probes]) and len(set(after)) == len(after)
    assert all(service.served[s] == 1 for s in before)
    bb = blackbox_results(folder, out / "lists.parquet", [0.5])
    same_where_defined(audit.results, bb.results)


def test_a_bad_answer_stops_the_run_naming_the_request(setup, tmp_path, token):
    es, proto, audit, folder = setup
    probe = es.template_ids[proto.probes][7]
    for fault, message in [("unordered", "not in rank order"), ("400", "HTTP 400; not retried")]:
        service = SearchService(token=TOKEN, faults={probe: [fault]})
        endpoint = service.start()
        out = tmp_path / f"bad-{fault}"
        try:
            with pytest.raises(InputError) as err:
                query(folder, adapter_file(tmp_path, REKOGNITION_ADAPTER, L=5, t=0.0), endpoint, out, concurrency=1)
        finally:
            service.stop()
        assert f"search {probe}" in str(err.value) and message in str(err.value)
        assert not out.exists()


def test_one_endpoint_only_and_credentials_from_the_environment(setup, tmp_path, monkeypatch):
    es, proto, audit, folder = setup
    text = NIST_ADAPTER.format(L=3)
    for bad in ('path = "http://elsewhere.example/search"', 'path = "//elsewhere.example/x"', 'path = "/a/../../x"'):
        path = tmp_path / "x.toml"
        path.write_text(text.replace('path = "/nist/search"', bad))
        with pytest.raises(InputError, match="path"):
            load_adapter(path)
    monkeypatch.delenv("FIXTURE_TOKEN", raising=False)
    with pytest.raises(InputError, match="environment variable FIXTURE_TOKEN, which is not set"):
        query(folder, adapter_file(tmp_path, NIST_ADAPTER, L=3), "http://127.0.0.1:9", tmp_path / "o")
    with pytest.raises(InputError, match="must not carry"):
        query(folder, adapter_file(tmp_path, NIST_ADAPTER, L=3), "http://user:pw@127.0.0.1:9", tmp_path / "o")


def test_redirects_refused_journal_of_another_run_refused_partial_line_dropped(setup, tmp_path, token):
    es, proto, audit, folder = setup
    service = SearchService(token=TOKEN)
    endpoint = service.start()
    try:
        redirect = tmp_path / "r.toml"
        redirect.write_text(NIST_ADAPTER.format(L=3).replace('path = "/nist/search"', 'path = "/redirect/search"'))
        with pytest.raises(InputError, match="HTTP 302; not retried"):
            query(folder, redirect, endpoint, tmp_path / "r", enrol=False)
        assert not any(r["path"] == "/elsewhere" for r in service.requests)
        out = tmp_path / "ok"
        adapter = adapter_file(tmp_path, NIST_ADAPTER, L=3)
        query(folder, adapter, endpoint, out)
        journal = tmp_path / "ok.journal.jsonl"
        with open(journal, "a") as fh:
            fh.write('{"kind": "search", "search_id": "t0')  # killed mid-write
        n_requests = len(service.requests)
        summary = query(folder, adapter, endpoint, tmp_path / "ok2", journal_path=journal)
        assert summary["requests_this_run"] == 0 and len(service.requests) == n_requests
        assert journal.read_text().endswith("\n")
        other = tmp_path / "other.toml"
        other.write_text(NIST_ADAPTER.format(L=4))
        with pytest.raises(InputError, match="belongs to another run"):
            query(folder, other, endpoint, tmp_path / "ok3", journal_path=journal)
    finally:
        service.stop()


def test_one_run_per_journal(tmp_path):
    from faceaudit.blackbox.query import Journal
    header = {"kind": "run", "endpoint": "http://127.0.0.1:1"}
    first = Journal(tmp_path / "j.jsonl", header)
    try:
        with pytest.raises(InputError, match="another faceaudit query is using this journal"):
            Journal(tmp_path / "j.jsonl", header)
    finally:
        first.close()
    again = Journal(tmp_path / "j.jsonl", header)
    assert again.entries == [header]
    again.close()


def test_ctrl_c_stops_sending_at_once(setup, tmp_path):
    es, proto, audit, folder = setup
    service = SearchService()
    endpoint = service.start()
    adapter = tmp_path / "a.toml"
    adapter.write_text(NIST_ADAPTER.format(L=5).replace('[auth]\nheader = "Authorization"\nenv = "FIXTURE_TOKEN"\nprefix = "Bearer "\n', ""))
    journal = tmp_path / "c.journal.jsonl"
    cmd = [sys.executable, "-m", "faceaudit.cli", "query", "--endpoint", endpoint, "--adapter", str(adapter),
           "--manifest", str(folder / "manifest.csv"), "--protocol", str(folder / "protocol.csv"),
           "--templates", str(folder / "templates.npy"), "--out", str(tmp_path / "c"), "--rate", "40"]
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 60
        while len(_journal_searches(journal)) < 10 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
        assert_nothing_more_sent(service)
    finally:
        service.stop()
    assert proc.returncode == 130
    assert len(_journal_searches(journal)) < proto.probes.size and not (tmp_path / "c").exists()

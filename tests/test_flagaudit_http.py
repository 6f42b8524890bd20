"""flagaudit's HTTP system under test against a real local flagging service (127.0.0.1 only).

The service (tests/flag_fixture.py) is a keyword flagger; auditing it over HTTP must give exactly
the figures of auditing the same keyword flagger locally, across timeouts, 429s, 5xx, malformed and
truncated answers, dropped connections and a killed run resumed: no case lost or counted twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pexpect
import pytest

from conftest import REPO, assert_nothing_more_sent
from flag_fixture import FLAG_ADAPTER, KEYWORDS, FlagService

from auditcore.errors import InputError
from auditcore.http_runner import QueryConfig
from flagaudit.audit import run_audit
from flagaudit.endpoint import load_flag_adapter, query_flags
from flagaudit.suites import Provenance, load_benign_traps
from flagaudit.systems import KeywordFlagger

TOKEN = "fl4g-s3cret-token-for-tests"
N_BT = len(load_benign_traps()[0])  # cases in the shipped benign-traps suite


def cases_with_threats() -> tuple[pd.DataFrame, list]:
    """The shipped benign traps plus 12 threat cases in 4 templates (so the miss rate is defined)."""
    bt, prov = load_benign_traps()
    texts = ["I will kill {} tonight.", "Someone should shoot {}.", "I am going to bomb {} tomorrow.",
             "{} deserve to be hurt."]
    rows = []
    for t, tpl in enumerate(texts):
        for j, who in enumerate(["the mayor", "my neighbour", "them"]):
            rows.append({"case_id": f"x:t{t}-{j}", "suite": "x", "language": "english", "functionality": "threat_dir_h",
                         "target": "none", "cluster": f"x:english:t{t}", "role": "threat", "text": tpl.format(who)})
    cases = pd.concat([bt, pd.DataFrame(rows, columns=bt.columns)], ignore_index=True)
    return cases, [prov, Provenance("x", "test", "none", "none")]


def adapter_file(tmp_path: Path, text: str = FLAG_ADAPTER) -> Path:
    path = tmp_path / "flagger.toml"
    path.write_text(text)
    return path


def config(endpoint, **kw) -> QueryConfig:
    # generous timeouts: the test machine has 2 busy cores
    return QueryConfig(endpoint, concurrency=kw.pop("concurrency", 4), timeout_s=kw.pop("timeout_s", 3.0),
                       max_attempts=kw.pop("max_attempts", 5), backoff_s=0.01, backoff_max_s=0.5, **kw)


@pytest.fixture
def token(monkeypatch):
    monkeypatch.setenv("FLAGGER_TOKEN", TOKEN)


def figures(results: dict) -> dict:
    """Everything an audit reports except what names the system and the time."""
    out = {k: v for k, v in results.items() if k not in ("system", "created", "http")}
    return json.loads(json.dumps(out, sort_keys=True, default=str))


def test_http_audit_with_every_fault_gives_the_local_figures(tmp_path, token):
    cases, prov = cases_with_threats()
    ids = cases["case_id"].tolist()
    kinds = ["429", "500", "503", "malformed", "truncated", "drop"]
    faults = {c: [kinds[i % len(kinds)]] * (1 + i % 2) for i, c in enumerate(ids[::11])}
    for c in ids[5:300:100]:  # three timeouts: the service answers long after the client gave up
        faults[c] = ["timeout"]
    service = FlagService(token=TOKEN, faults=faults, timeout_sleep=9.0)
    endpoint = service.start()
    lines = []
    out = tmp_path / "res"
    try:
        flags, summary = query_flags(load_flag_adapter(adapter_file(tmp_path)), endpoint, cases, out,
                                     config=config(endpoint, timeout_s=4.0), announce=lines.append)
    finally:
        service.stop()
    assert lines and lines[0].startswith(f"sending to http://127.0.0.1:{service.port} only") and f"{len(ids):,} case(s)" in lines[0]
    n_faults = sum(len(v) for v in faults.values())
    assert summary["retries_this_run"] == n_faults and summary["cases"] == len(ids)
    log = [json.loads(x) for x in (tmp_path / "res.requests.jsonl").read_text().splitlines()]
    assert len(log) == len(ids) + n_faults
    assert {e["error"] for e in log if e["error"]} >= {"timeout", "HTTP 429", "HTTP 500", "HTTP 503",
                                                      "response does not parse as JSON (JSONDecodeError)"}
    assert all(len(e["request_sha256"]) == 64 and e["time"] and e["latency_s"] >= 0 for e in log)
    # every case answered exactly once, journaled exactly once
    assert sorted(service.served) == sorted(ids) and set(service.served.values()) == {1}
    journal = [json.loads(x) for x in (tmp_path / "res.journal.jsonl").read_text().splitlines()]
    journaled = [e["case_id"] for e in journal if e["kind"] == "case"]
    assert sorted(journaled) == sorted(ids)
    assert all(r["headers"].get("Authorization") == f"Bearer {TOKEN}" for r in service.requests)
    for path in (tmp_path / "res.requests.jsonl", tmp_path / "res.journal.jsonl"):
        assert TOKEN.encode() not in path.read_bytes()
    # exactly the local keyword flagger's flags and scores, and so exactly its figures
    local = KeywordFlagger.from_lines(KEYWORDS).run(cases["text"].tolist())
    np.testing.assert_array_equal(flags.flagged, local.flagged)
    np.testing.assert_array_equal(flags.score, local.score)
    assert flags.threshold == local.threshold == 1.0
    assert 0 < local.flagged[cases["role"].to_numpy() == "benign"].sum() < (cases["role"] == "benign").sum()
    via_http = run_audit(cases, flags, prov, system="HTTP endpoint", n_boot=300)
    direct = run_audit(cases, local, prov, system="keyword flagger", n_boot=300)
    assert figures(via_http.results) == figures(direct.results)
    ff, miss = via_http.results["rates"]["false_flag"]["overall"], via_http.results["rates"]["miss"]["overall"]
    assert ff["errors"] == int(local.flagged[cases["role"].to_numpy() == "benign"].sum())
    assert miss["trials"] == 12 and miss["errors"] == 3  # "{} deserve to be hurt." has no keyword
    assert "scores" in via_http.results


def _journal_cases(path: Path) -> list:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("kind") == "case":
            out.append(e["case_id"])
    return out


def _cli(*args) -> list:
    return [sys.executable, "-m", "flagaudit", "audit", *map(str, args)]


def test_killed_run_resumes_without_repeating_or_losing_a_case(tmp_path):
    service = FlagService(token=TOKEN, delay=0.01)
    endpoint = service.start()
    adapter = adapter_file(tmp_path)
    out = tmp_path / "res"
    env = dict(os.environ, FLAGGER_TOKEN=TOKEN, PYTHONPATH=str(REPO / "src"))
    args = ["--suite", "benign-traps", "--endpoint", endpoint, "--adapter", adapter, "--out", out, "--rate", "40",
            "--concurrency", "2", "--timeout", "10", "--n-boot", "100"]
    journal = tmp_path / "res.journal.jsonl"
    try:
        proc = subprocess.Popen(_cli(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        deadline = time.monotonic() + 120
        while len(_journal_cases(journal)) < 60 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # killed: no chance to clean up
        proc.wait(timeout=30)
        first = set(_journal_cases(journal))
        assert 60 <= len(first) < N_BT and not out.exists()
        with open(journal, "a") as fh:  # as if killed in the middle of writing a line
            fh.write('{"kind": "case", "case_id": "benign-traps:es-a')
        n_before = len(service.requests)
        done = subprocess.run(_cli(*args), env=env, capture_output=True, text=True, timeout=300)
    finally:
        service.stop()
    assert done.returncode == 0, done.stderr
    assert f"{len(first):,} already in the journal" in done.stdout
    second = [json.loads(r["body"])["id"] for r in service.requests[n_before:]]
    assert not set(second) & first  # nothing already journaled is sent again
    assert len(second) == len(set(second)) == N_BT - len(first)
    journaled = _journal_cases(journal)
    assert len(journaled) == len(set(journaled)) == N_BT  # no case lost or counted twice
    res = json.loads((out / "results.json").read_text())
    cases = pd.read_parquet(out / "cases.parquet")
    local = KeywordFlagger.from_lines(KEYWORDS).run(cases["text"].tolist())
    np.testing.assert_array_equal(cases["flagged"].to_numpy(), local.flagged)
    np.testing.assert_array_equal(cases["score"].to_numpy(), local.score)
    assert res["rates"]["false_flag"]["overall"]["errors"] == int(local.flagged.sum())
    assert res["rates"]["false_flag"]["overall"]["trials"] == N_BT
    assert res["http"]["cases_from_journal"] == len(first) and res["system"]["kind"] == "HTTP endpoint"
    for path in [*out.iterdir(), journal, tmp_path / "res.requests.jsonl"]:
        assert TOKEN.encode() not in path.read_bytes(), path
    assert (out / "requests.jsonl").read_bytes() == (tmp_path / "res.requests.jsonl").read_bytes()


BAD_ADAPTERS = {
    "no text sent": (FLAG_ADAPTER.replace('input = "{{text}}"', 'input = "{{case_id}}"'), "never sends the case text"),
    "unknown placeholder": (FLAG_ADAPTER.replace('lang = "{{language}}"', 'lang = "{{lang}}"'),
                            "unknown placeholder {{lang}}"),
    "url as path": (FLAG_ADAPTER.replace('path = "/v1/classify"', 'path = "https://elsewhere.example/v1"'), "path"),
    "dotdot path": (FLAG_ADAPTER.replace('path = "/v1/classify"', 'path = "/v1/../../x"'), "plain path"),
    "GET": (FLAG_ADAPTER.replace('method = "POST"', 'method = "GET"'), "must be POST or PUT"),
    "no flag or threshold": (FLAG_ADAPTER.replace('flagged = "result.flagged"\n', "").replace("threshold = 1\n", ""),
                             "needs 'flagged'"),
    "unknown key": (FLAG_ADAPTER.replace("threshold = 1\n", "threshold = 1\nflaged = 'x'\n"), "unknown key(s) flaged"),
    "one label list": (FLAG_ADAPTER.replace("threshold = 1\n", "threshold = 1\npositive_labels = ['threat']\n"),
                       "give both positive_labels and negative_labels"),
    "bad range": (FLAG_ADAPTER.replace("score_range = [0, 100]", "score_range = [1, 0]"), "score_range"),
    "not toml": ("name = [unclosed", "cannot read adapter file"),
    "auth without env": (FLAG_ADAPTER.replace('env = "FLAGGER_TOKEN"\n', ""), "[auth] needs 'header' and 'env'"),
}


@pytest.mark.parametrize("case", list(BAD_ADAPTERS))
def test_bad_adapter_files(tmp_path, case):
    text, message = BAD_ADAPTERS[case]
    with pytest.raises(InputError) as err:
        load_flag_adapter(adapter_file(tmp_path, text))
    assert message in str(err.value) and "flagger.toml" in str(err.value)
    assert "\n" not in str(err.value)


def _one_line_error(proc, out: Path, message: str):
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr
    assert not out.exists() and not list(out.parent.glob(f".{out.name}.tmp-*"))


@pytest.mark.parametrize("fault,message", [
    ("noflag", "no flag at 'result.flagged' in the response"),
    ("badscore", "the score at 'result.score' is not a finite number: 'high'"),
    ("400", "HTTP 400; not retried"),
])
def test_unusable_answer_one_line_naming_the_request_exit_2(tmp_path, fault, message):
    bad = "benign-traps:en-ag-3-2"
    service = FlagService(token=TOKEN, faults={bad: [fault]})
    endpoint = service.start()
    out = tmp_path / "res"
    env = dict(os.environ, FLAGGER_TOKEN=TOKEN, PYTHONPATH=str(REPO / "src"))
    try:
        proc = subprocess.run(_cli("--suite", "benign-traps", "--endpoint", endpoint, "--adapter", adapter_file(tmp_path),
                                   "--out", out, "--concurrency", "1", "--timeout", "10"),
                              env=env, capture_output=True, text=True, timeout=300)
    finally:
        service.stop()
    _one_line_error(proc, out, message)
    assert f"request case {bad} to {endpoint}/v1/classify" in proc.stderr
    assert "kept in the journal" in proc.stderr
    assert TOKEN not in proc.stderr + proc.stdout


def test_persistent_malformed_answers_stop_after_max_attempts(tmp_path, token):
    cases, _ = load_benign_traps()
    bad = cases["case_id"].iloc[7]
    service = FlagService(token=TOKEN, faults={bad: ["malformed"] * 10})
    endpoint = service.start()
    try:
        with pytest.raises(InputError) as err:
            query_flags(load_flag_adapter(adapter_file(tmp_path)), endpoint, cases, tmp_path / "o",
                        config=config(endpoint, concurrency=1, max_attempts=3), announce=lambda s: None)
    finally:
        service.stop()
    assert f"request case {bad}" in str(err.value) and "after 3 attempts" in str(err.value)
    assert not (tmp_path / "o").exists()


def test_one_endpoint_credentials_from_environment_redirects_and_other_runs_refused(tmp_path, monkeypatch):
    cases, _ = load_benign_traps()
    adapter = load_flag_adapter(adapter_file(tmp_path))
    monkeypatch.delenv("FLAGGER_TOKEN", raising=False)
    with pytest.raises(InputError, match="environment variable FLAGGER_TOKEN, which is not set"):
        query_flags(adapter, "http://127.0.0.1:9", cases, tmp_path / "o", announce=lambda s: None)
    for bad in ("http://user:pw@127.0.0.1:9", "http://127.0.0.1:9/?key=1", "ftp://127.0.0.1/", "127.0.0.1:9"):
        with pytest.raises(InputError, match="endpoint must"):
            query_flags(adapter, bad, cases, tmp_path / "o", announce=lambda s: None)
    monkeypatch.setenv("FLAGGER_TOKEN", TOKEN)
    service = FlagService(token=TOKEN)
    endpoint = service.start()
    try:
        redirect = load_flag_adapter(adapter_file(tmp_path, FLAG_ADAPTER.replace("/v1/classify", "/redirect/x")))
        with pytest.raises(InputError, match="HTTP 302; not retried"):
            query_flags(redirect, endpoint, cases, tmp_path / "r", config=config(endpoint), announce=lambda s: None)
        small = cases.iloc[:30].reset_index(drop=True)
        flags, summary = query_flags(adapter, endpoint, small, tmp_path / "ok", config=config(endpoint),
                                     announce=lambda s: None)
        assert summary["requests_this_run"] == 30
        again, summary = query_flags(adapter, endpoint, small, tmp_path / "ok", config=config(endpoint),
                                     announce=lambda s: None)
        assert summary["requests_this_run"] == 0 and summary["cases_from_journal"] == 30
        np.testing.assert_array_equal(flags.flagged, again.flagged)
        other = load_flag_adapter(adapter_file(tmp_path, FLAG_ADAPTER.replace("threshold = 1", "threshold = 2")))
        with pytest.raises(InputError, match="belongs to another run"):
            query_flags(other, endpoint, small, tmp_path / "ok", config=config(endpoint), announce=lambda s: None)
        with pytest.raises(InputError, match="belongs to another run"):  # other cases: refused too
            query_flags(adapter, endpoint, cases.iloc[:31], tmp_path / "ok", config=config(endpoint),
                        announce=lambda s: None)
    finally:
        service.stop()
    assert not any(r["path"] == "/elsewhere" for r in service.requests)


def test_labels_and_score_only_adapters(tmp_path, token):
    cases, _ = load_benign_traps()
    local = KeywordFlagger.from_lines(KEYWORDS).run(cases["text"].tolist())
    service = FlagService(token=TOKEN)
    endpoint = service.start()
    try:
        labels = FLAG_ADAPTER.replace('flagged = "result.flagged"', 'flagged = "result.label"\n'
                                      'positive_labels = ["Threat"]\nnegative_labels = ["ok"]')
        flags, _ = query_flags(load_flag_adapter(adapter_file(tmp_path, labels)), endpoint, cases, tmp_path / "a",
                               config=config(endpoint), announce=lambda s: None)
        np.testing.assert_array_equal(flags.flagged, local.flagged)
        score_only = FLAG_ADAPTER.replace('flagged = "result.flagged"\n', "").replace("threshold = 1", "threshold = 2")
        flags, _ = query_flags(load_flag_adapter(adapter_file(tmp_path, score_only)), endpoint, cases, tmp_path / "b",
                               config=config(endpoint), announce=lambda s: None)
        np.testing.assert_array_equal(flags.flagged, local.score >= 2)
        assert flags.threshold == 2.0
        # the example adapter shipped in docs/ works against this service as written
        example = load_flag_adapter(REPO / "docs" / "adapters" / "flagger-example.toml")
        assert example.limits["rate"] == 20 and example.auth == (("Authorization", "FLAGGER_TOKEN", "Bearer "),)
        flags, summary = query_flags(example, endpoint, cases.iloc[:30], tmp_path / "c", announce=lambda s: None)
        np.testing.assert_array_equal(flags.flagged, local.flagged[:30])
        assert summary["requests_this_run"] == 30
    finally:
        service.stop()


def test_http_audit_in_a_terminal(tmp_path):
    service = FlagService(token=TOKEN, faults={"benign-traps:es-qt-1-2": ["503"]})
    endpoint = service.start()
    out = tmp_path / "res"
    env = dict(os.environ, FLAGGER_TOKEN=TOKEN, PYTHONPATH=str(REPO / "src"), COLUMNS="100")
    try:
        child = pexpect.spawn(sys.executable, ["-m", "flagaudit", *map(str, [
            "audit", "--suite", "benign-traps", "--endpoint", endpoint, "--adapter", adapter_file(tmp_path), "--out",
            out, "--timeout", "10", "--n-boot", "200"])], env=env, encoding="utf-8", timeout=300, dimensions=(40, 100))
        child.expect(pexpect.EOF)
        child.close()
    finally:
        service.stop()
    text = child.before.replace("\r", "\n")
    assert child.exitstatus == 0, text
    assert "Traceback" not in text and TOKEN not in text
    assert f"sending to http://127.0.0.1:{service.port} only" in text
    assert f"querying: {N_BT:,}/{N_BT:,} cases" in text  # progress, shown in a terminal (thousands separators)
    assert f"{N_BT:,} cases answered (0 from the journal; {N_BT + 1:,} requests this run, 1 retried)" in text
    assert "false-flag rate:" in text and "report:" in text
    assert {p.name for p in out.iterdir()} >= {"results.json", "cases.parquet", "report.html", "requests.jsonl"}
    html = (out / "report.html").read_text()
    assert "HTTP endpoint" in html and f"Flags collected over HTTP from <b>{endpoint}</b> only" in html
    assert TOKEN not in html
    assert TOKEN not in (out / "results.json").read_text()
    # verify never queries the service again (it is stopped): figures from the recorded answers
    child = pexpect.spawn(sys.executable, ["-m", "flagaudit", "verify", str(out)], env=env, encoding="utf-8",
                          timeout=300, dimensions=(40, 100))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0 and "identical" in child.before, child.before


def test_ctrl_c_stops_sending_at_once_and_one_run_per_journal(tmp_path):
    service = FlagService(token=TOKEN)
    endpoint = service.start()
    out = tmp_path / "res"
    journal = tmp_path / "res.journal.jsonl"
    env = dict(os.environ, FLAGGER_TOKEN=TOKEN, PYTHONPATH=str(REPO / "src"))
    common = ["--suite", "benign-traps", "--endpoint", endpoint, "--adapter", adapter_file(tmp_path), "--rate", "40",
              "--timeout", "10"]
    try:
        proc = subprocess.Popen(_cli(*common, "--out", out), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        deadline = time.monotonic() + 120
        while len(_journal_cases(journal)) < 20 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        # a second run on the same journal while the first is running is refused
        second = subprocess.run(_cli(*common, "--out", tmp_path / "other", "--journal", journal),
                                env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2 and "another flagaudit audit is using this journal" in second.stderr
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert_nothing_more_sent(service)
    finally:
        service.stop()
    assert proc.returncode == 130 and b"Traceback" not in err
    assert 20 <= len(_journal_cases(journal)) < N_BT and not out.exists() and not (tmp_path / "other").exists()

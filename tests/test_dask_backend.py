"""The Dask backend: the same search, split into (probe block x gallery shard) tasks on a local
cluster of 2 worker processes, gives the single-process engine's result bit for bit (any shard
size, block size and task order, a worker killed mid-run included), the CLI's results folder is
byte-identical, and bad clusters fail with one clear line and exit 2."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

from auditcore.errors import InputError  # noqa: E402
from faceaudit.audit import run_audit, write_results  # noqa: E402
from faceaudit.data.evalset import load_evaluation_set  # noqa: E402
from faceaudit.data.protocol import generate_protocol  # noqa: E402
from faceaudit.engine import local as engine  # noqa: E402
from faceaudit.engine.dask_backend import DaskBackend, gallery_layout, shard_bounds  # noqa: E402
from faceaudit.engine.local import search  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FIELDS = ("probe_rows", "is_mated", "probe_subjects", "gallery_subjects", "best_nonmate", "mate_score", "mate_rank",
          "candidates_subject", "candidates_score", "genuine_scores", "genuine_probe", "impostor_hist",
          "group_counts", "group_comparisons", "n_impostor", "n_comparisons", "hist_fine_from")


def _real_valued(n_subj: int = 150, per: int = 3, d: int = 48, seed: int = 5):
    """Real-valued templates (subject centre + noise), float64 on disk (cast to float32 on load),
    with 20 templates duplicated under other subjects (exact ties)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_subj, d))
    x = np.repeat(centres, per, axis=0) + 0.9 * rng.standard_normal((n_subj * per, d))
    x[30:50] = x[0:20]
    manifest = pd.DataFrame({"template_id": [f"t{i}" for i in range(x.shape[0])],
                             "subject_id": [f"s{i // per}" for i in range(x.shape[0])]})
    return x, manifest


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dask_data")
    x, manifest = _real_valued()
    np.save(folder / "templates.npy", x)
    manifest.to_csv(folder / "manifest.csv", index=False)
    pd.DataFrame(x.astype(np.float32), columns=[f"f{i}" for i in range(x.shape[1])]).to_parquet(
        folder / "templates.parquet", row_group_size=64)
    return folder


@pytest.fixture(scope="module")
def evalset(files):
    es = load_evaluation_set(files / "templates.npy", files / "manifest.csv")
    return es, generate_protocol(es, enrol_fraction=0.5, gallery_per_subject=2, seed=0)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0")
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def assert_same(a, b, label=""):
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype, (label, name)
            assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), (label, name)
        else:
            assert x == y, (label, name)


def test_gallery_layout_is_the_engines(evalset):
    es, proto = evalset
    groups = np.arange(es.n) % 4
    for score in ("cosine", "neg_euclidean"):
        lay = gallery_layout(es, proto.gallery, score, groups)
        gal = engine._Gallery(es, proto.gallery, score, groups)
        for name in ("subject_ids", "rows", "start", "groups"):
            assert np.array_equal(getattr(lay, name), getattr(gal, name)), name
        assert lay.sq_max == gal.sq_max


def test_shard_bounds_cover_subjects_with_at_most_n_templates():
    start = np.array([0, 2, 3, 9, 10, 12])  # subject 2 has 6 templates
    assert shard_bounds(start, 3) == [(0, 2), (2, 3), (3, 5)]
    assert shard_bounds(start, 100) == [(0, 5)]
    assert shard_bounds(start, 1) == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]


@pytest.mark.parametrize("small_tail", [False, True])
@pytest.mark.parametrize("score", ["cosine", "neg_euclidean"])
def test_same_result_whatever_shards_blocks_and_task_order(client, evalset, score, small_tail, monkeypatch):
    es, proto = evalset
    if small_tail:  # a fine budget far below the comparisons: the histogram is folded (coarse bulk)
        monkeypatch.setattr("faceaudit.engine.counts.TAIL_MIN", 300)
    groups = np.arange(es.n) % 3
    kw = dict(score=score, top_k=6, thresholds=[0.0, 0.4], gallery_groups=groups)
    one = search(es, proto, **kw)
    seen = set()
    for shard_templates, per_task, seed in ((37, 60, 1), (10**6, 23, None), (90, 1000, 7)):
        backend = DaskBackend(client=client, shard_templates=shard_templates, probes_per_task=per_task,
                              shuffle_seed=seed)
        done = []
        res = backend.search(es, proto, progress=lambda d, t: done.append((d, t)), **kw)
        assert_same(one, res, (shard_templates, per_task))
        assert (one.hist_fine_from > 0) == small_tail
        seen.add((backend.last_plan["shards"], backend.last_plan["blocks"]))
        assert done[-1] == (proto.probes.size, proto.probes.size)
        assert [d for d, _ in done] == sorted(d for d, _ in done)
    assert len(seen) == 3 and any(s > 1 for s, _ in seen)  # really split three different ways


def _digests(folder: Path) -> dict:
    """Every output byte for byte; results.json without its creation time; scores.npz member by
    member (numpy stamps each zip entry with the time of writing)."""
    out = {}
    obj = json.loads((folder / "results.json").read_text())
    obj.pop("created")
    obj.pop("provenance")  # records the backend option and the input's path: differs by design
    out["results.json"] = json.dumps(obj, sort_keys=True)
    for name in ("searches.parquet", "candidates.parquet"):
        out[name] = (folder / name).read_bytes()
    with zipfile.ZipFile(folder / "scores.npz") as z:
        out["scores.npz"] = {i.filename: (z.read(i.filename), i.CRC) for i in z.infolist()}
    return out


def test_results_folder_byte_identical_npy_and_parquet(client, files, evalset, tmp_path):
    es, proto = evalset
    ref = run_audit(es, proto, top_k=10, thresholds=[0.3])
    write_results(ref, tmp_path / "single", report=False)
    expected = _digests(tmp_path / "single")
    es_pq = load_evaluation_set(files / "templates.parquet", files / "manifest.csv")
    for name, data in (("npy", es), ("parquet", es_pq)):
        backend = DaskBackend(client=client, shard_templates=70, probes_per_task=80, shuffle_seed=3)
        audit = run_audit(data, proto, top_k=10, thresholds=[0.3], backend=backend)
        write_results(audit, tmp_path / name, report=False)
        got = _digests(tmp_path / name)
        if name == "parquet":  # the source path is part of results.json's input section
            got["results.json"] = got["results.json"].replace("templates.parquet", "templates.npy")
        assert got == expected, name


def test_bad_clusters_and_paths_fail_with_one_line(client, files, evalset, tmp_path):
    es, proto = evalset
    with pytest.raises(InputError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        DaskBackend(scheduler="tcp://127.0.0.1:9", connect_timeout=1).start()
    with pytest.raises(InputError, match="cannot use the templates: templates not found on this worker"):
        DaskBackend(client=client, templates_path=tmp_path / "nowhere.npy").search(es, proto)
    other = np.load(files / "templates.npy")
    other[5, 0] += 1.0
    np.save(tmp_path / "other.npy", other)  # same shape, one value differs
    with pytest.raises(InputError, match="different .* templates at this path"):
        DaskBackend(client=client, templates_path=tmp_path / "other.npy").search(es, proto)
    with pytest.raises(InputError, match="has a memory limit of .* MiB, less than"):
        DaskBackend(client=client, memory_per_worker=2**40).search(es, proto)
    with pytest.raises(InputError, match="too little for one task"):
        DaskBackend(client=client, memory_per_worker=2**20).search(es, proto)
    from faceaudit.data.evalset import validate
    with pytest.raises(InputError, match="not loaded from one"):
        DaskBackend(client=client).search(validate(es.templates, es.manifest), proto)


def _cli(args, env_extra=None, tty=False):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "FACEAUDIT_DASK_TIMEOUT": "2", **(env_extra or {})}
    cmd = [sys.executable, "-m", "faceaudit.cli", *map(str, args)]
    if tty:  # as a person types it, in a real terminal
        import shlex
        cmd = ["script", "-qec", shlex.join(cmd), "/dev/null"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def test_cli_errors_exit_2_without_results_folder(client, files, tmp_path):
    base = ["audit", "--templates", files / "templates.npy", "--manifest", files / "manifest.csv"]
    cases = {
        "unreachable": (["--scheduler", "tcp://127.0.0.1:9"], "cannot reach the Dask scheduler at tcp://127.0.0.1:9"),
        "memory": (["--scheduler", client.scheduler.address, "--memory-mb", "1000000"], "has a memory limit of"),
        "both": (["--scheduler", client.scheduler.address, "--workers", "2"], "not both"),
    }
    for name, (extra, message) in cases.items():
        out = tmp_path / name
        proc = _cli([*base, "--out", out, *extra])
        assert proc.returncode == 2, (name, proc.stderr[-1500:])
        lines = [x for x in proc.stderr.strip().splitlines() if x.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], (name, proc.stderr)
        assert "Traceback" not in proc.stderr and not out.exists(), name


def test_cli_scheduler_and_workers_give_the_single_process_folder(client, files, tmp_path):
    base = ["audit", "--templates", files / "templates.npy", "--manifest", files / "manifest.csv",
            "--top-k", "8", "--threshold", "0.3"]
    single = _cli([*base, "--out", tmp_path / "single"])
    assert single.returncode == 0, single.stderr[-2000:]
    on_cluster = _cli([*base, "--out", tmp_path / "scheduler", "--scheduler", client.scheduler.address])
    assert on_cluster.returncode == 0, on_cluster.stderr[-2000:]
    # as a person types it, in a terminal: progress lines for the cluster start and the search
    local = _cli([*base, "--out", tmp_path / "workers", "--workers", "2"], tty=True)
    assert local.returncode == 0, (local.stdout + local.stderr)[-2000:]
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", local.stdout + local.stderr)
    assert "Traceback" not in screen and "report:" in screen
    assert "done starting the Dask cluster" in screen and "done searching" in screen
    expected = _digests(tmp_path / "single")
    assert _digests(tmp_path / "scheduler") == expected
    assert _digests(tmp_path / "workers") == expected
    assert single.stdout.splitlines()[:-1] == on_cluster.stdout.splitlines()[:-1]


def test_worker_killed_mid_run_same_result_nothing_counted_twice(client, evalset, caplog):
    import logging
    caplog.set_level(logging.INFO, logger="distributed.scheduler")
    es, proto = evalset
    one = search(es, proto, top_k=5)
    pids = client.run(os.getpid)
    killed = []

    def progress(done, total):
        if done and not killed:  # after the first merged block: kill a worker while the rest is in flight
            victim = max(pids.values())
            os.kill(victim, signal.SIGKILL)
            killed.append((victim, done, total))

    backend = DaskBackend(client=client, shard_templates=40, probes_per_task=20)
    res = backend.search(es, proto, top_k=5, progress=progress)
    assert killed and killed[0][1] < killed[0][2]  # the run went on after the kill
    # the scheduler saw the worker go (in this run it typically also reports "lose already
    # computed task(s), which will be recomputed elsewhere": shard results held by that worker)
    assert any("Remove worker" in r.getMessage() for r in caplog.records)
    assert_same(one, res, "killed")
    assert res.n_impostor == one.n_impostor == int(one.impostor_hist.sum())
    client.wait_for_workers(2, timeout=60)
    assert killed[0][0] not in client.run(os.getpid).values()  # the nanny started a new process


def test_demographics_and_scale_passes_run_on_the_backend(client, files, evalset):
    from auditcore.serialize import to_json
    from faceaudit.analyses.demographics import add_demographics
    from faceaudit.analyses.scale import add_scale
    es, proto = evalset

    class Counting(DaskBackend):
        calls = 0

        def search(self, *args, **kwargs):
            Counting.calls += 1
            return super().search(*args, **kwargs)

    es.manifest["group"] = np.where(pd.factorize(es.manifest["subject_id"])[0] % 2 == 0, "a", "b")
    outputs, calls = [], []
    try:
        for backend in (None, Counting(client=client, shard_templates=100)):
            audit = run_audit(es, proto, top_k=5, backend=backend)
            calls.append(Counting.calls)
            add_demographics(audit, ["group"], min_group_size=5, n_boot=50)
            calls.append(Counting.calls)
            add_scale(audit, sizes=[20, 75], n_seeds=2)
            calls.append(Counting.calls)
            results = to_json(audit.results)
            results.pop("created")
            results.pop("provenance")  # records the backend option: differs by design
            outputs.append(json.dumps(results, sort_keys=True))
    finally:
        del es.manifest["group"]
    assert "demographics" in outputs[0] and "scale" in outputs[0]
    assert outputs[0] == outputs[1]
    assert calls[:3] == [0, 0, 0]  # the single-process run never used the backend
    # with the backend: the search, then at least the cross-group pass, then 2 sizes x 2 seeds
    assert calls[3] == 1 and calls[4] >= 2 and calls[5] == calls[4] + 4, calls

"""auditcore.provenance and auditcore.verify: hashes against hashlib, credentials never recorded,
differences named by JSON path, reasons named from two provenance blocks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from auditcore import provenance as prov
from auditcore import verify


def test_sha256_file_matches_hashlib_over_chunks(tmp_path):
    data = bytes(range(256)) * 9000  # 2.3 MB: three 1 MiB chunks, the last one partial
    path = tmp_path / "a.bin"
    path.write_bytes(data)
    assert prov.sha256_file(path) == hashlib.sha256(data).hexdigest()
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert prov.sha256_file(empty) == hashlib.sha256(b"").hexdigest()


def test_input_record_file_and_folder(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "x.txt").write_bytes(b"x")
    (tmp_path / "d" / "sub" / "y.txt").write_bytes(b"yy")
    rec = prov.input_record("templates", tmp_path / "d" / "x.txt")
    assert rec["sha256"] == hashlib.sha256(b"x").hexdigest() and rec["bytes"] == 1
    assert rec["path"] == str(tmp_path / "d" / "x.txt") and rec["role"] == "templates"
    folder = prov.input_record("evalset", tmp_path / "d")
    # the documented folder hash, computed independently
    lines = sorted([f"sub/y.txt\0{hashlib.sha256(b'yy').hexdigest()}\n",
                    f"x.txt\0{hashlib.sha256(b'x').hexdigest()}\n"])
    assert folder["sha256"] == hashlib.sha256("".join(lines).encode()).hexdigest()
    assert folder["bytes"] == 3 and folder["kind"] == "folder"
    (tmp_path / "d" / "sub" / "y.txt").write_bytes(b"yz")  # one byte changed: another hash
    assert prov.input_record("evalset", tmp_path / "d")["sha256"] != folder["sha256"]
    missing = prov.input_record("protocol", tmp_path / "nope.csv")
    assert missing["sha256"] is None and missing["bytes"] is None


def test_relative_path_kept_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("m.csv").write_text("a\n")
    rec = prov.input_record("manifest", "m.csv")
    assert rec["path"] == "m.csv" and rec["resolved"] == str(tmp_path.resolve() / "m.csv")


def test_environment_names_packages_and_blas():
    env = prov.environment()
    import numpy
    assert env["packages"]["numpy"] == numpy.__version__
    assert "faceaudit" in env["packages"]
    assert set(env["blas"]) == {"library", "version", "kernel", "OPENBLAS_CORETYPE"}
    from threadpoolctl import threadpool_info
    blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
    numpys = [p for p in blas if "numpy" in str(p.get("filepath", ""))]  # scipy may load a second BLAS
    if numpys:  # the BLAS numpy's matrix products run on, whichever was loaded first
        assert env["blas"]["library"] == numpys[0]["internal_api"]
        assert env["blas"]["kernel"] == numpys[0].get("architecture")
    elif blas:
        assert env["blas"]["library"] == blas[0]["internal_api"]
    json.dumps(env)


def test_environment_records_openblas_coretype(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    assert prov.environment()["blas"]["OPENBLAS_CORETYPE"] == "Haswell"
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    assert prov.environment()["blas"]["OPENBLAS_CORETYPE"] is None


@pytest.mark.parametrize("name", ["token", "api_key", "api-key", "--api-key", "auth_token", "password",
                                  "client_secret", "AWS_SECRET_ACCESS_KEY", "bearer", "cookie", "key"])
def test_credentials_look_secret(name):
    assert prov.is_secret(name)


@pytest.mark.parametrize("name", ["keywords", "top_k", "seed", "templates", "monkey", "authority_list", "sessions_per_day"])
def test_ordinary_options_are_not_secret(name):
    assert not prov.is_secret(name)


def test_collect_never_records_a_credential(tmp_path):
    secret = "s3cr3t-VALUE-123"
    argv = ["faceaudit", "query", "--api-key", secret, f"--token={secret}", "--out", str(tmp_path / "o")]
    block = prov.collect(argv, {"api_key": secret, "token": secret, "password": None, "out": tmp_path / "o",
                                "fpir": (0.1, 0.01)}, [], system={"name": "S", "version": "2"})
    text = json.dumps(block)
    assert secret not in text
    assert block["options"]["api_key"] == prov.REDACTED and block["options"]["password"] is None
    assert block["options"]["out"] == str(tmp_path / "o") and block["options"]["fpir"] == [0.1, 0.01]
    assert block["command"][3] == prov.REDACTED and block["command"][4] == f"--token={prov.REDACTED}"
    assert block["command_line"].startswith("faceaudit query --api-key")
    assert block["system"] == {"name": "S", "version": "2"} and block["model"] is None
    assert set(block) == {"command", "command_line", "working_directory", "options", "inputs", "system", "model",
                          "environment"}


def test_library_call_has_no_command():
    block = prov.collect(None, {"score": "cosine"}, [])
    assert block["command"] is None and block["command_line"] is None
    assert block["system"] == {"name": None, "version": None}


def test_command_line_is_shell_quoted():
    block = prov.collect(["faceaudit", "audit", "--caveat", "race=labels from a vendor's tool"], {}, [])
    import shlex
    assert shlex.split(block["command_line"]) == block["command"]


# ---- verify ----------------------------------------------------------------------------------------


def test_check_inputs_finds_changed_and_missing(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.npy"
    a.write_text("x\n")
    b.write_bytes(b"\x00" * 10)
    block = prov.collect(None, {}, prov.inputs_from([("manifest", a), ("templates", b), ("protocol", None)]))
    assert verify.check_inputs(block) == []
    a.write_text("y\n")
    b.unlink()
    problems = verify.check_inputs(block)
    assert len(problems) == 2
    assert problems[0].startswith(f"manifest {a}: contents changed")
    assert problems[1].startswith(f"templates {b}: not found")


def test_diff_results_names_each_difference_by_json_path():
    old = {"created": "t1", "provenance": {"x": 1},
           "identification": {"operating_points": [{"fpir": {"errors": 4, "value": 0.001}}, {"fpir": {"errors": 40}}]},
           "n": 1, "gone": True, "odd key": 1}
    new = json.loads(json.dumps(old))
    assert verify.diff_results(old, new) == []
    new["created"], new["provenance"] = "t2", {"x": 2}  # ignored
    assert verify.diff_results(old, new) == []
    new["identification"]["operating_points"][0]["fpir"]["value"] = 0.0010000000000000002  # one ulp
    new["identification"]["operating_points"][1]["fpir"]["errors"] = 41
    new["n"] = 1.0  # an int written as a float is not the same figure
    del new["gone"]
    new["extra"] = [1]
    new["odd key"] = 2
    diff = verify.diff_results(old, new)
    assert diff == [
        "identification.operating_points[0].fpir.value: 0.001 -> 0.0010000000000000002",
        "identification.operating_points[1].fpir.errors: 40 -> 41",
        "n: 1 -> 1.0",
        "gone: true -> (missing)",
        '["odd key"]: 1 -> 2',
        "extra: (missing) -> [1]",
    ]
    assert verify.diff_results({"a": [1, 2]}, {"a": [1]}) == ["a: 2 entries -> 1 entries"]
    assert verify.diff_results({"a": {"b": 1}}, {"a": 1}) == ['a: {"b": 1} -> 1']
    many = verify.diff_results({"a": list(range(10))}, {"a": list(range(1, 11))}, limit=3)
    assert many[-1] == "... and 7 more" and len(many) == 4


def test_explain_difference_names_versions_blas_inputs_options():
    old = {"environment": {"python": "3.11.1", "platform": "Linux", "machine": "x86_64",
                           "packages": {"numpy": "2.0.0", "faceaudit": "0.1.0"},
                           "blas": {"library": "openblas", "version": "0.3.27", "kernel": "Haswell",
                                    "OPENBLAS_CORETYPE": None}},
           "inputs": [{"role": "templates", "path": "t.npy", "sha256": "a" * 64}],
           "options": {"seed": 0, "top_k": 20}}
    assert verify.explain_difference(old, json.loads(json.dumps(old))) == []
    new = json.loads(json.dumps(old))
    new["environment"]["packages"]["numpy"] = "2.1.0"
    new["environment"]["blas"]["kernel"] = "SkylakeX"
    new["inputs"][0]["sha256"] = "b" * 64
    new["options"]["seed"] = 1
    reasons = verify.explain_difference(old, new)
    assert reasons == [
        "another version of numpy: 2.0.0 when recorded, 2.1.0 now",
        "another BLAS kernel: Haswell when recorded, SkylakeX now",
        f"a changed input: templates t.npy (sha256 {'a' * 12}... when recorded, {'b' * 12}... now)",
        "another value of the option seed: 0 when recorded, 1 now",
    ]


def test_verify_folder_generic(tmp_path):
    data = tmp_path / "in.txt"
    data.write_text("3\n")

    def audit(path: Path) -> dict:  # a toy auditor: the figure is the number in the file
        return {"created": "now", "figure": int(path.read_text()),
                "provenance": prov.collect(None, {"input": str(path)}, [prov.input_record("data", path)])}

    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(audit(data)))
    before = (folder / "results.json").read_bytes()
    calls = []

    def rerun(provenance: dict, tmp: Path) -> dict:
        calls.append(tmp)
        assert tmp.is_dir() and not any(tmp.iterdir()) and tmp != folder
        return audit(Path(provenance["options"]["input"]))

    found = verify.verify_folder(folder, rerun)
    assert found.identical and found.differences == [] and found.input_problems == []
    data.write_text("4\n")
    found = verify.verify_folder(folder, rerun)
    assert not found.identical
    assert found.input_problems[0].startswith(f"data {data}: contents changed")
    assert found.differences == ["figure: 3 -> 4"]
    assert any(r.startswith("a changed input: data") for r in found.reasons)
    assert (folder / "results.json").read_bytes() == before  # only read
    data.unlink()
    found = verify.verify_folder(folder, rerun)
    assert not found.rerun and not found.identical and len(calls) == 2
    with pytest.raises(verify.InputError, match="no provenance"):
        (folder / "results.json").write_text(json.dumps({"figure": 3}))
        verify.verify_folder(folder, rerun)
    with pytest.raises(verify.InputError, match="no results.json"):
        verify.verify_folder(tmp_path, rerun)

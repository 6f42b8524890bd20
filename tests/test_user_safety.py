"""Nothing faceaudit is given can destroy a user's files, and every failure is one clear line (issue 8)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import exact_evalset
from typer.testing import CliRunner

from auditcore.errors import InputError
from auditcore.outdir import MARKER, TMP_MARKER, atomic_folder, check_target, remove_stale_temporaries
from faceaudit.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_error_line(result, *words):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert "Traceback" not in result.output


@pytest.fixture
def files(tmp_path):
    es = exact_evalset(n_subjects=12, per_subject=3)
    np.save(tmp_path / "t.npy", es.templates)
    es.manifest.to_csv(tmp_path / "m.csv", index=False)
    return tmp_path / "t.npy", tmp_path / "m.csv"


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_overwrite_never_deletes_a_users_folder(tmp_path, files):
    t, m = files
    data = tmp_path / "DATA"
    data.mkdir()
    np.save(data / "templates.npy", np.ones((3, 4), np.float32))
    (data / "manifest.csv").write_text("template_id,subject_id\n")
    (data / "notes.txt").write_text("my notes")
    before = snapshot(data)
    for extra in ([], ["--overwrite"]):
        one_error_line(run("audit", "--templates", t, "--manifest", m, "--out", data, *extra),
                       str(data), "not written by faceaudit")
        assert snapshot(data) == before
    # the demo overwrites by default, but only its own folders
    one_error_line(run("demo", "--out", data), "not written by faceaudit")
    assert snapshot(data) == before


def test_only_folders_faceaudit_wrote_are_replaced(tmp_path, files):
    t, m = files
    out = tmp_path / "res"
    assert run("audit", "--templates", t, "--manifest", m, "--out", out).exit_code == 0
    marker = json.loads((out / MARKER).read_text())
    assert set(marker["files"]) == {p.name for p in out.iterdir()} - {MARKER}
    one_error_line(run("audit", "--templates", t, "--manifest", m, "--out", out), "--overwrite")
    first = (out / "results.json").read_text()
    assert run("audit", "--templates", t, "--manifest", m, "--out", out, "--overwrite", "--seed", 5).exit_code == 0
    assert (out / "results.json").read_text() != first
    # a file the user added to a results folder makes it theirs: never replaced
    (out / "my-notes.md").write_text("keep me")
    one_error_line(run("audit", "--templates", t, "--manifest", m, "--out", out, "--overwrite"), "my-notes.md")
    assert (out / "my-notes.md").read_text() == "keep me"
    # an empty folder may be written into
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run("audit", "--templates", t, "--manifest", m, "--out", empty).exit_code == 0
    assert (empty / "results.json").is_file()


def test_unusable_output_paths_are_one_line(tmp_path, files):
    t, m = files
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    one_error_line(run("audit", "--templates", t, "--manifest", m, "--out", a_file), "not a folder")
    assert a_file.read_text() == "x"
    one_error_line(run("audit", "--templates", t, "--manifest", m, "--out", a_file / "sub"), "is a file")
    # a read-only place: /proc refuses new folders even to root
    one_error_line(run("audit", "--templates", t, "--manifest", m, "--out", "/proc/faceaudit-test"), "cannot write")


def test_unwritable_folder_when_not_root(tmp_path, monkeypatch):
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == tmp_path else real_access(p, mode))
    with pytest.raises(InputError, match="permission denied"):
        check_target(tmp_path / "out", overwrite=False)


def test_report_on_a_folder_that_is_not_a_faceaudit_result(tmp_path):
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "results.json").write_text('{"a": 1}')
    one_error_line(run("report", folder), "not a faceaudit results.json")
    (folder / "results.json").write_text("not json {")
    one_error_line(run("report", folder), "not valid JSON")
    one_error_line(run("report", tmp_path / "missing"), "not found")
    assert sorted(p.name for p in folder.iterdir()) == ["results.json"]  # nothing written


def test_report_never_overwrites_a_users_report(tmp_path, files):
    t, m = files
    out = tmp_path / "res"
    assert run("audit", "--templates", t, "--manifest", m, "--out", out).exit_code == 0
    assert run("report", out).exit_code == 0
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "results.json").write_text((out / "results.json").read_text())
    (foreign / "report.html").write_text("the user's own page")
    one_error_line(run("report", foreign), "will not be replaced")
    assert (foreign / "report.html").read_text() == "the user's own page"


@pytest.mark.parametrize("flags,words", [
    (["--memory-mb", "0"], "memory-mb"), (["--memory-mb", "-5"], "memory-mb"),
    (["--threshold", "nan"], "--threshold must be a finite number"),
    (["--threshold", "inf"], "--threshold must be a finite number"),
    (["--top-k", "0"], "top-k"),
])
def test_nonsense_numbers_are_refused(tmp_path, files, flags, words):
    t, m = files
    result = run("audit", "--templates", t, "--manifest", m, "--out", tmp_path / "o", *flags)
    assert result.exit_code == 2 and words in result.output and "Traceback" not in result.output, result.output
    assert not (tmp_path / "o").exists()


def test_text_file_named_npy_is_not_called_pickled(tmp_path, files):
    _, m = files
    text = tmp_path / "text.npy"
    text.write_text("0.1, 0.2\n0.3, 0.4\n")
    one_error_line(run("audit", "--templates", text, "--manifest", m, "--out", tmp_path / "o"), "not a NumPy .npy file")
    assert "pickled" not in run("audit", "--templates", text, "--manifest", m, "--out", tmp_path / "o").output
    obj = tmp_path / "obj.npy"
    np.save(obj, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    one_error_line(run("audit", "--templates", obj, "--manifest", m, "--out", tmp_path / "o"), "pickled")
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    one_error_line(run("audit", "--templates", empty, "--manifest", m, "--out", tmp_path / "o"), "empty")


def test_internal_error_is_one_line_with_a_saved_traceback(tmp_path, files, monkeypatch):
    t, m = files
    monkeypatch.setenv("FACEAUDIT_CACHE", str(tmp_path / "cache"))

    def broken(*args, **kwargs):
        raise RuntimeError("something impossible happened")

    monkeypatch.setattr("faceaudit.audit.run_audit", broken)
    result = run("audit", "--templates", t, "--manifest", m, "--out", tmp_path / "o")
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "internal error" in lines[0] and "bug" in lines[0], result.output
    crash = Path(lines[0].split("saved to ")[1].split(";")[0])
    assert crash.is_file() and "something impossible happened" in crash.read_text()
    assert "Traceback" in crash.read_text() and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_group_present_only_among_probes(tmp_path):
    """Issue 8 item 7: the alphabetically last group has nobody in the gallery."""
    es = exact_evalset(n_subjects=12, per_subject=3)
    man = es.manifest.copy()
    proto = pd.DataFrame({"template_id": man.template_id, "role": "probe"})
    # subjects s000-s005 enrolled (first template), s006-s011 never enrolled
    subj = man.subject_id.str[1:].astype(int).to_numpy()
    first = man.groupby("subject_id").cumcount().to_numpy() == 0
    proto.loc[(subj < 6) & first, "role"] = "gallery"
    man["grp"] = np.where(subj >= 9, "zzz-probes-only", np.where(subj % 2 == 0, "a", "b"))
    np.save(tmp_path / "t.npy", es.templates)
    man.to_csv(tmp_path / "m.csv", index=False)
    proto.to_csv(tmp_path / "p.csv", index=False)
    out = tmp_path / "o"
    result = run("audit", "--templates", tmp_path / "t.npy", "--manifest", tmp_path / "m.csv", "--protocol",
                 tmp_path / "p.csv", "--group-by", "grp", "--min-group-size", 1, "--out", out)
    assert result.exit_code == 0, result.output
    a = json.loads((out / "results.json").read_text())["demographics"]["analyses"][0]
    assert a["groups"] == ["a", "b", "zzz-probes-only"]
    assert a["group_sizes"]["zzz-probes-only"]["gallery_templates"] == 0
    trials = np.array(a["cross_fmr"]["trials"])
    assert trials.shape == (3, 3) and (trials[:, 2] == 0).all()  # nobody enrolled: no comparisons
    assert all(r is None for r in np.array(a["cross_fmr"]["rate"], dtype=object)[:, 2])
    # the per-row totals still equal every impostor comparison of that probe group (brute force)
    gal = proto.role.eq("gallery").to_numpy()
    gal_subjects = man.subject_id.to_numpy()[gal]
    for gi, g in enumerate(a["groups"]):
        probes = (~gal) & (man.grp.to_numpy() == g)
        expect = sum(int((gal_subjects != s).sum()) for s in man.subject_id.to_numpy()[probes])
        assert trials[gi].sum() == expect


def test_label_provenance_travels_with_the_labels(tmp_path):
    es = exact_evalset(n_subjects=20, per_subject=3)
    man = es.manifest.copy()
    subj = man.subject_id.str[1:].astype(int)
    man["race"] = np.where(subj % 2 == 0, "x", "y")
    man["caveat_race"] = "classifier output (LFWA+ attributes), not self-reported"
    man["sex"] = np.where(subj % 3 == 0, "F", "M")
    np.save(tmp_path / "t.npy", es.templates)
    man.to_csv(tmp_path / "m.csv", index=False)
    out = tmp_path / "o"
    result = run("audit", "--templates", tmp_path / "t.npy", "--manifest", tmp_path / "m.csv", "--group-by", "race",
                 "--group-by", "sex", "--min-group-size", 1, "--out", out)
    assert result.exit_code == 0, result.output
    demo = json.loads((out / "results.json").read_text())["demographics"]
    race, sex = demo["analyses"]
    assert race["label_provenance"] == {"race": "classifier output (LFWA+ attributes), not self-reported"}
    assert "classifier output" in race["label_provenance_text"]
    assert sex["label_provenance"] == {"sex": None}
    assert "where the labels in column 'sex' came from is not stated" in sex["label_provenance_text"]
    html = (out / "report.html").read_text()
    assert "classifier output (LFWA+ attributes), not self-reported" in html
    assert "came from is not stated" in html
    # --caveat overrides the manifest's column
    out2 = tmp_path / "o2"
    result = run("audit", "--templates", tmp_path / "t.npy", "--manifest", tmp_path / "m.csv", "--group-by", "race",
                 "--caveat", "race=annotated by hand", "--min-group-size", 1, "--out", out2)
    assert result.exit_code == 0, result.output
    demo = json.loads((out2 / "results.json").read_text())["demographics"]
    assert demo["analyses"][0]["label_provenance"] == {"race": "annotated by hand"}


SLOW_WRITER = textwrap.dedent("""
    import sys, time
    import faceaudit.audit as audit
    original = audit._candidates_table
    def slow(a):
        print("WRITING", flush=True)
        time.sleep(60)
        return original(a)
    audit._candidates_table = slow
    from faceaudit.cli import main
    sys.argv = ["faceaudit", "audit", "--templates", sys.argv[1], "--manifest", sys.argv[2], "--out", sys.argv[3]]
    main()
""")


def start_slow_writer(tmp_path, t, m, out):
    """``faceaudit audit`` in a subprocess, paused while writing its results (temporary folder present)."""
    script = tmp_path / "slow.py"
    script.write_text(SLOW_WRITER)
    proc = subprocess.Popen([sys.executable, str(script), str(t), str(m), str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "WRITING"
    return proc


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_while_writing_leaves_nothing(tmp_path, files, sig, code):
    t, m = files
    out = tmp_path / "out"
    proc = start_slow_writer(tmp_path, t, m, out)
    assert list(tmp_path.glob(".out.tmp-*"))  # the temporary folder exists now
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err and "nothing was written" in err
    assert not out.exists() and not list(tmp_path.glob(".out.*"))


def test_stale_temporaries_of_a_killed_run_are_removed_next_time(tmp_path, files):
    t, m = files
    out = tmp_path / "out"
    proc = start_slow_writer(tmp_path, t, m, out)
    proc.kill()  # SIGKILL: no chance to clean up
    proc.wait(timeout=30)
    stale = list(tmp_path.glob(".out.tmp-*"))
    assert len(stale) == 1 and (stale[0] / TMP_MARKER).is_file()
    # a look-alike folder that faceaudit did not mark is never touched
    lookalike = tmp_path / ".out.tmp-users"
    lookalike.mkdir()
    (lookalike / "keep.txt").write_text("keep")
    assert run("audit", "--templates", t, "--manifest", m, "--out", out).exit_code == 0
    assert not stale[0].exists() and (lookalike / "keep.txt").read_text() == "keep"
    assert (out / "results.json").is_file()


def test_atomic_folder_library_rules(tmp_path):
    out = tmp_path / "x"
    with atomic_folder(out) as tmp:
        (tmp / "a.txt").write_text("1")
    assert (out / "a.txt").read_text() == "1"
    with pytest.raises(RuntimeError):
        with atomic_folder(out, overwrite=True) as tmp:
            (tmp / "a.txt").write_text("2")
            raise RuntimeError("boom")
    assert (out / "a.txt").read_text() == "1"  # a failed run leaves the old folder as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]
    # a live process's temporary folder is not stale
    live = tmp_path / ".x.tmp-live"
    live.mkdir()
    (live / TMP_MARKER).write_text(str(os.getppid()))
    assert remove_stale_temporaries(out) == [] and live.exists()

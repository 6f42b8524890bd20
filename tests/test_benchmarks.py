"""faceaudit benchmark lfw|blufr: BLUFR's rule and LFW's 10-fold accuracy against hand-worked
cases and brute force; end to end on templates keyed by LFW names."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, shared_data
from typer.testing import CliRunner

from auditcore.errors import InputError
from faceaudit.benchmarks import blufr, lfw
from faceaudit.benchmarks.templates import from_arrays, lfw_key
from faceaudit.cli import app
from faceaudit.data.datasets.lfw import read_pairs

DATA = shared_data()
needs_data = pytest.mark.skipif(DATA is None, reason="shared data not found at ../shared/data; set FACEAUDIT_DATA")
SQRT_EPS = math.sqrt(np.finfo(float).eps)


# ------------------------------------------------------------------ BLUFR's rule
def test_matlab_round_goes_away_from_zero_on_halves():
    assert [blufr.matlab_round(x) for x in (0.4, 0.5, 1.5, 2.5, 44.5, 44.49)] == [0, 1, 2, 3, 45, 44]
    assert round(2.5) == 2  # Python and numpy round halves to even: not BLUFR's rule


def test_blufr_rule_where_round_and_floor_differ():
    # 3 impostors, FAR 50%: round(1.5) = 2 false alarms under BLUFR, floor(1.5) = 1 under faceaudit.
    # BLUFR: threshold = 2nd highest impostor score 4, accepted if >= 4: genuine 4 and 6 pass.
    # faceaudit: at most one impostor may pass: just above 4, so genuine 4 fails.
    r = blufr.eval_roc(np.array([4.0, 3.5, 6.0]), np.array([5.0, 4.0, 3.0]), far=0.5)
    b, f = r["blufr_rule"], r["faceaudit_floor_rule"]
    assert b["k"] == 2 and b["threshold"] == 4.0 and b["false_accepts"] == 2 and b["vr"] == pytest.approx(2 / 3)
    assert f["allowed"] == 1 and 4.0 < f["threshold"] < 4.0 + 1e-12 and f["false_accepts"] == 1
    assert f["vr"] == pytest.approx(1 / 3)


def test_blufr_rule_half_rounds_up_not_to_even():
    # 5 impostors, FAR 50%: 2.5 -> k = 3 (MATLAB); numpy.round would give 2 (threshold 8, VR 1/3)
    r = blufr.eval_roc(np.array([7.0, 7.5, 8.5]), np.array([9.0, 8.0, 7.0, 6.0, 5.0]), far=0.5)
    assert r["blufr_rule"]["k"] == 3 and r["blufr_rule"]["threshold"] == 7.0 and r["blufr_rule"]["vr"] == 1.0


def test_blufr_rule_when_round_equals_floor_takes_the_higher_threshold():
    # 4 impostors, FAR 25%: k = 1 = floor. BLUFR: threshold = the highest impostor 5;
    # faceaudit: just above the 2nd highest (4). Genuine 4.5 passes only faceaudit's.
    r = blufr.eval_roc(np.array([4.5]), np.array([5.0, 4.0, 3.0, 2.0]), far=0.25)
    assert r["blufr_rule"]["threshold"] == 5.0 and r["blufr_rule"]["vr"] == 0.0
    assert r["faceaudit_floor_rule"]["vr"] == 1.0 and r["faceaudit_floor_rule"]["false_accepts"] == 1


def test_blufr_rule_ties_zero_and_one_far():
    # ties at the threshold are all accepted: k = 2, threshold 4, three impostors >= 4
    r = blufr.eval_roc(np.array([4.0]), np.array([5.0, 4.0, 4.0, 3.0]), far=0.5)
    assert r["blufr_rule"]["false_accepts"] == 3 and r["blufr_rule"]["vr"] == 1.0
    # k = 0: midway between the top impostor and the lowest genuine score above it
    t, k = blufr.blufr_threshold(np.array([5.0, 4.0]), 2, 0.1, np.array([6.0, 7.0, 3.0]))
    assert k == 0 and t == 5.5
    t, k = blufr.blufr_threshold(np.array([5.0, 4.0]), 2, 0.1, np.array([3.0]))
    assert t == 5.0 + SQRT_EPS
    # k = N: below everything
    t, k = blufr.blufr_threshold(np.array([5.0, 4.0]), 2, 1.0, np.array([3.0]))
    assert k == 2 and t == 3.0 - SQRT_EPS


def test_open_set_roc_by_hand():
    # gallery classes in gallery order: images 0..3 of classes 1, 2, 1, 3
    gallery = np.array([1, 2, 1, 3])
    probes = np.array([1, 2, 3, 1, 3, 7, 8, 9])
    s = np.array([[0.9, 0.5, 0.2, 0.1],    # mate .9, rank 1
                  [0.7, 0.7, 0.1, 0.2],    # mate .7 ties an EARLIER non-mate image: BLUFR rank 2
                  [0.1, 0.2, 0.3, 0.3],    # mate .3 ties an earlier non-mate: rank 2 (and below threshold)
                  [0.6, 0.6, 0.0, 0.0],    # mate .6 ties a LATER non-mate: BLUFR rank 1; faceaudit (ties against mate) 2
                  [0.0, 0.1, 0.2, 0.4],    # mate .4 = BLUFR's threshold: accepted by >=; faceaudit's is above it
                  [0.5, 0.0, 0.0, 0.0],    # impostors: best .5, .4, .35
                  [0.0, 0.4, 0.0, 0.0],
                  [0.0, 0.0, 0.35, 0.0]])
    # 3 impostor probes, FAR 50%: BLUFR k = round(1.5) = 2 -> threshold .4; faceaudit allows 1 -> just above .4
    r = blufr.open_set_roc(s, gallery, probes, far=0.5)
    assert r["n_genuine_probes"] == 5 and r["n_impostor_probes"] == 3
    b, f = r["blufr_rule"], r["faceaudit_floor_rule"]
    assert b["k"] == 2 and b["threshold"] == 0.4 and b["false_accepts"] == 2
    assert b["dir"] == pytest.approx(3 / 5)     # probes 0, 3, 4
    assert b["rank_rate"] == pytest.approx(3 / 5)
    assert f["allowed"] == 1 and f["false_accepts"] == 1
    assert f["dir"] == pytest.approx(1 / 5)     # probe 0 only
    assert f["rank_rate"] == pytest.approx(2 / 5)


def _matlab_open_set(score, gal, prob, far):
    """A direct transcription of OpenSetROC.m (stable descending sort per probe), for rank 1."""
    gen = np.isin(prob, gal)
    imp = np.sort(score[~gen].max(axis=1))[::-1]
    k = blufr.matlab_round(far * imp.size)
    hits = []
    for i in np.flatnonzero(gen):
        order = np.argsort(-score[i], kind="stable")
        masked = np.where(gal == prob[i], score[i], -np.inf)
        j = int(np.argmax(masked))
        rank = int(np.flatnonzero(order == j)[0]) + 1
        hits.append((masked[j], rank))
    gs = np.array([h[0] for h in hits])
    if k == 0:
        high = gs[gs > imp[0]]
        t = (imp[0] + high.min()) / 2 if high.size else imp[0] + SQRT_EPS
    elif k == imp.size:
        t = min(imp[-1], gs.min()) - SQRT_EPS
    else:
        t = imp[k - 1]
    return np.mean([(g >= t) and (r <= 1) for g, r in hits])


@pytest.mark.parametrize("seed", range(6))
def test_open_set_roc_matches_a_transcription_of_blufr_code_with_ties(seed):
    rng = np.random.default_rng(seed)
    gal = rng.integers(0, 15, 40)
    prob = rng.integers(0, 30, 120)
    score = rng.integers(0, 8, (120, 40)).astype(float)  # many ties
    score[rng.random(score.shape) < 0.05] = -np.inf         # missing templates
    for far in (0.0, 0.01, 0.1, 0.5, 1.0):
        if far == 1.0 and not np.isfinite(score[np.isin(prob, gal)]).any():
            continue
        assert blufr.open_set_roc(score, gal, prob, far)["blufr_rule"]["dir"] == pytest.approx(
            _matlab_open_set(score, gal, prob, far)), far


def test_streamed_verification_equals_full_arrays_with_ties_and_missing():
    rng = np.random.default_rng(1)
    x = rng.integers(-2, 3, (90, 3)).astype(float)  # integer points: tied distances
    x[np.all(x == 0, axis=1)] = 1
    labels = rng.integers(0, 12, 90)
    valid = rng.random(90) > 0.1
    gen, imp = map(np.concatenate, zip(*blufr.pair_blocks(x, labels, valid, "neg_euclidean", block=7)))
    assert gen.size + imp.size == 90 * 89 // 2
    for far in (0.001, 0.01, 0.3):
        full = blufr.eval_roc(gen, imp, far)
        streamed = blufr.verification(x, labels, valid, "neg_euclidean", far, block=7)
        for rule in ("blufr_rule", "faceaudit_floor_rule"):
            assert streamed[rule] == full[rule]
    # brute force on the full arrays: BLUFR's threshold is the k-th highest impostor
    k = blufr.matlab_round(0.3 * imp.size)
    t = np.sort(imp)[::-1][k - 1]
    assert blufr.eval_roc(gen, imp, 0.3)["blufr_rule"]["vr"] == np.mean(gen >= t)


# ------------------------------------------------------------------ LFW
def test_lfw_folds_by_hand():
    # fold 0: matched .7, .3; mismatched .5, .1   fold 1: matched .9, NaN (missing); mismatched .2, .6
    s = np.array([0.7, 0.3, 0.5, 0.1, 0.9, np.nan, 0.2, 0.6])
    same = np.array([1, 1, 0, 0, 1, 1, 0, 0], bool)
    fold = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    # threshold for fold 0 from fold 1 (.9 same; .2, .6 diff): best candidates .75 (3 right) -> fold 0 at .75:
    # .7 same wrong, .3 wrong, .5 right, .1 right = 2/4
    # threshold for fold 1 from fold 0 (.7, .3 same; .5, .1 diff): .2 -> 3 right, .6 -> 3 right; ties: strictest .6
    # fold 1 at .6: .9 right, NaN wrong, .2 right, .6 >= .6 called same: wrong = 2/4
    r = lfw.ten_fold(s, same, fold)
    assert [f["threshold"] for f in r["folds"]] == pytest.approx([0.75, 0.6])
    assert [f["correct"] for f in r["folds"]] == [2, 2] and r["mean"] == 0.5 and r["std"] == 0.0
    r = lfw.ten_fold(s, same, fold, exclude_missing=True)
    assert [f["pairs"] for f in r["folds"]] == [4, 3] and r["folds"][1]["correct"] == 2
    # fixed threshold .4: fold 0 right, wrong, wrong, right; fold 1 right, wrong (missing), right, wrong
    r = lfw.ten_fold(s, same, fold, fixed_threshold=0.4)
    assert [f["correct"] for f in r["folds"]] == [2, 2]
    r = lfw.ten_fold(s, same, fold, fixed_threshold=0.25)
    assert [f["accuracy"] for f in r["folds"]] == [0.75, 0.5]
    assert r["std"] == pytest.approx(np.std([0.75, 0.5], ddof=1))
    assert r["standard_error"] == pytest.approx(r["std"] / np.sqrt(2))


def test_best_threshold_matches_brute_force():
    rng = np.random.default_rng(3)
    same = rng.random(300) < 0.5
    s = np.where(same, rng.normal(0.6, 0.1, 300), rng.normal(0.3, 0.1, 300)).round(2)  # ties
    s[:3] = np.nan
    t = lfw.best_threshold(s, same)
    grid = np.unique(s[np.isfinite(s)])
    brute = max(lfw.accuracy_at(s, same, c) for c in np.concatenate([grid, [grid[-1] + 1]]))
    assert lfw.accuracy_at(s, same, t) == pytest.approx(brute)


def test_lfw_key_and_template_index():
    assert lfw_key("images/Ann_Smith/Ann_Smith_0012.jpg") == "Ann_Smith/Ann_Smith_0012.jpg"
    assert lfw_key("Ann_Smith_0012") == lfw_key("Ann_Smith_0012.JPG") == "Ann_Smith/Ann_Smith_0012.jpg"
    assert lfw_key("t0001") is None and lfw_key("Ann_Smith_12.jpg") is None
    lt = from_arrays(np.eye(3), ["x/A_B_0001.jpg", "other", "A_B_0002.jpg"], failed_ids=["A_B/A_B_0003.jpg"])
    assert lt.ignored_ids == 1 and list(lt.rows(["A_B/A_B_0002.jpg", "A_B/A_B_0003.jpg"])) == [1, -1]
    rep = lt.missing_report(["A_B/A_B_0001.jpg", "A_B/A_B_0003.jpg", "C/C_0001.jpg"])
    assert rep["missing"] == 2 and rep["failed_to_enrol"] == 1 and rep["absent"] == 1
    with pytest.raises(InputError, match="no template_id names an LFW image"):
        from_arrays(np.eye(2), ["t1", "t2"])
    with pytest.raises(InputError, match="name the same LFW image"):
        from_arrays(np.eye(2), ["A/A_0001.jpg", "A_0001.jpg"])


# ------------------------------------------------------------------ end to end
def _write_set(folder, names, x):
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "templates.npy", x.astype(np.float32))
    pd.DataFrame({"template_id": names, "subject_id": [n.split("/")[0] for n in names]}).to_csv(
        folder / "manifest.csv", index=False)


def test_benchmark_lfw_cli_on_a_hand_made_pairs_file(tmp_path):
    data = tmp_path / "lfw"
    data.mkdir()
    (data / "pairs.txt").write_text("2\t2\nA\t1\t2\nB\t1\t2\nA\t1\tB\t1\nA\t2\tC\t1\n"
                                    "C\t1\t2\nD\t1\t2\nC\t2\tD\t1\nB\t2\tD\t2\n")
    names = ["A/A_0001.jpg", "A/A_0002.jpg", "B/B_0001.jpg", "B/B_0002.jpg", "C/C_0001.jpg", "C/C_0002.jpg",
             "D/D_0001.jpg"]  # D_0002 has no template
    x = np.array([[1, 0], [1, 0.1], [0, 1], [0.5, 1], [-1, 0], [-1, -0.2], [0, -1]], float)
    _write_set(tmp_path / "set", names, x)
    out = tmp_path / "res"
    result = CliRunner().invoke(app, ["benchmark", "lfw", "--evalset", str(tmp_path / "set"), "--data", str(tmp_path),
                                      "--out", str(out), "--threshold", "0.9"])
    assert result.exit_code == 0, result.output
    assert "fold  1" in result.output and "standard error" in result.output
    res = json.loads((out / "results.json").read_text())
    assert res["pairs_with_missing_template"] == 2 and res["templates"]["absent"] == 1
    # by hand at T = 0.9 (cosine). Fold 1: A1-A2 .995 same: right; B1-B2 .894: wrong; A1-B1 0: right;
    # A2-C1 -.995: right. Fold 2: C1-C2 .981: right; D1-D2 missing: wrong; C2-D1 .196: right; B2-D2 missing: wrong
    folds = res["fixed_threshold"]["missing_counted_wrong"]["folds"]
    assert [f["correct"] for f in folds] == [3, 2] and [f["missing"] for f in folds] == [0, 2]
    only = res["fixed_threshold"]["enrolled_pairs_only"]["folds"]
    assert [(f["correct"], f["pairs"]) for f in only] == [(3, 4), (2, 2)]
    table = pd.read_csv(out / "folds.csv")
    assert set(table.threshold_rule) == {"threshold_from_other_folds", "fixed_threshold"}
    assert len(pd.read_csv(out / "pairs.csv")) == 8
    # a second run into the same folder is refused without --overwrite, with one line
    again = CliRunner().invoke(app, ["benchmark", "lfw", "--evalset", str(tmp_path / "set"), "--data", str(tmp_path),
                                     "--out", str(out)])
    assert again.exit_code == 2 and "--overwrite" in again.output


def _synthetic_lfw(names, seed=0, noise=0.8, dim=32):
    rng = np.random.default_rng(seed)
    persons = np.array([n.split("/")[0] for n in names])
    u, inv = np.unique(persons, return_inverse=True)
    return rng.standard_normal((u.size, dim))[inv] + noise * rng.standard_normal((len(names), dim))


@needs_data
def test_benchmark_lfw_and_blufr_end_to_end_in_a_terminal(tmp_path):
    from faceaudit.data.datasets.blufr import load_blufr
    bl = load_blufr(DATA / "lfw" / "blufr_lfw_config.mat")
    names = list(bl.image_list)
    x = _synthetic_lfw(names)
    _write_set(tmp_path / "set", names[1:], x[1:])  # the first image has no template
    out = tmp_path / "lfw-res"
    cmd = (f"{sys.executable} -m faceaudit.cli benchmark lfw --evalset {tmp_path / 'set'} --data {DATA} "
           f"--out {out}")
    run = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True, cwd=REPO,
                         env={**__import__("os").environ, "PYTHONPATH": str(REPO / "src")}, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "fold 10" in run.stdout and "Traceback" not in run.stdout
    res = json.loads((out / "results.json").read_text())
    pairs = read_pairs(DATA / "lfw" / "pairs.txt")
    lt = from_arrays(x[1:], names[1:])
    s = lfw.pair_scores(pairs, lt, "cosine")
    # independent recomputation of one fold: threshold from the other nine by brute force
    test = pairs.fold == 3
    cands = np.unique(s[~test & np.isfinite(s)])
    acc = [lfw.accuracy_at(s[~test], pairs.same[~test], c) for c in cands]
    best = cands[int(np.argmax(acc))]
    f4 = res["threshold_from_other_folds"]["missing_counted_wrong"]["folds"][3]
    assert lfw.accuracy_at(s[~test], pairs.same[~test], f4["threshold"]) == pytest.approx(max(acc))
    assert abs(f4["accuracy"] - lfw.accuracy_at(s[test], pairs.same[test], best)) <= 2 / 600
    # BLUFR, first trial only
    out = tmp_path / "blufr-res"
    cmd = (f"{sys.executable} -m faceaudit.cli benchmark blufr --evalset {tmp_path / 'set'} --data {DATA} "
           f"--out {out} --trials 1")
    run = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True, cwd=REPO,
                         env={**__import__("os").environ, "PYTHONPATH": str(REPO / "src")}, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "BLUFR (its rule, mean - std)" in run.stdout
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 2 and set(trials.rule) == {"blufr_rule", "faceaudit_floor_rule"}
    res = json.loads((out / "results.json").read_text())
    t1 = res["trials"][0]
    assert t1["verification"]["n_impostor"] + t1["verification"]["n_genuine"] == \
        bl.test_index[0].size * (bl.test_index[0].size - 1) // 2
    k = t1["verification"]["blufr_rule"]["k"]
    assert k == blufr.matlab_round(0.001 * t1["verification"]["n_impostor"])


def test_benchmark_errors_are_one_line(tmp_path):
    names = ["t1", "t2"]
    folder = tmp_path / "set"
    folder.mkdir()
    np.save(folder / "templates.npy", np.eye(2, dtype=np.float32))
    pd.DataFrame({"template_id": names, "subject_id": ["a", "b"]}).to_csv(folder / "manifest.csv", index=False)
    (tmp_path / "pairs.txt").write_text("1\t1\nA\t1\t2\nA\t1\tB\t1\n")
    r = CliRunner().invoke(app, ["benchmark", "lfw", "--evalset", str(folder), "--data", str(tmp_path),
                                 "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "no template_id names an LFW image" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["benchmark", "blufr", "--evalset", str(folder), "--data", str(tmp_path),
                                 "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "no blufr_lfw_config.mat here" in r.output
    r = CliRunner().invoke(app, ["benchmark", "lfw", "--evalset", str(folder), "--data", str(tmp_path),
                                 "--out", str(tmp_path / "o"), "--score", "dot"])
    assert r.exit_code == 2 and "--score must be" in r.output
    assert not (tmp_path / "o").exists()


def test_data_folder_defaults_to_the_shared_data_and_accepts_its_parent(tmp_path, monkeypatch):
    from faceaudit.benchmarks.run import lfw_folder
    (tmp_path / "lfw").mkdir()
    (tmp_path / "lfw" / "pairs.txt").write_text("1\t1\nA\t1\t2\nA\t1\tB\t1\n")
    monkeypatch.setenv("FACEAUDIT_DATA", str(tmp_path))
    assert lfw_folder(None, "pairs.txt") == tmp_path / "lfw"
    assert lfw_folder(tmp_path / "lfw", "pairs.txt") == tmp_path / "lfw"
    with pytest.raises(InputError, match="no blufr_lfw_config.mat here"):
        lfw_folder(None, "blufr_lfw_config.mat")
    monkeypatch.setenv("FACEAUDIT_DATA", str(tmp_path / "absent"))
    with pytest.raises(InputError, match="give --data DIR"):
        lfw_folder(None, "pairs.txt")

"""faceaudit compare with black-box audits (from candidate lists): paired figures where both systems'
lists determine them, equal to the template audits' own comparison and to a brute-force recount;
"not measurable" with the reason elsewhere; rank-only lists; the command in a terminal; bad input.

Exact truth: the black-box audit is of the *same templates* as a template audit (its lists are the
engine's own search results cut at length L and threshold t), so wherever the lists determine a
paired figure, comparing it must give exactly what comparing the template audit gives.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import REPO
from scipy import stats
from test_blackbox import engine_lists
from typer.testing import CliRunner

from auditcore import bootstrap as boot_
from auditcore.errors import InputError
from faceaudit.analyses.compare import compare
from faceaudit.analyses.demographics import add_demographics
from faceaudit.audit import run_audit, write_results
from faceaudit.blackbox.audit import audit_lists, write_blackbox_results
from faceaudit.blackbox.groups import add_demographics_from_lists
from faceaudit.cli import app
from faceaudit.data.candidates import write_lists
from faceaudit.data.evalset import validate
from faceaudit.data.protocol import generate_protocol
from faceaudit.metrics.identification import threshold_at_fpir

N_BOOT = 200
TARGETS = (0.1, 0.03, 0.01, 0.001)


def _population(noise: float, seed: int, n_subj: int = 240, per: int = 3, dim: int = 24):
    """The same people and template ids; ``noise`` and ``seed`` make another system's templates."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((n_subj, dim))
    sex = np.repeat(rng.choice(["F", "M"], n_subj), per)
    man = pd.DataFrame({"template_id": [f"t{i:05d}" for i in range(n_subj * per)],
                        "subject_id": np.repeat([f"p{i:04d}" for i in range(n_subj)], per), "sex": sex})
    x = np.repeat(centres, per, axis=0) + noise * np.random.default_rng(seed).standard_normal((n_subj * per, dim))
    return validate(x.astype(np.float32), man)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Two template audits of the same searches (systems 1 and 2) and helpers to black-box them."""
    root = tmp_path_factory.mktemp("cmpbb")
    out = {"root": root}
    for k, (noise, seed) in {1: (0.8, 100), 2: (0.95, 107)}.items():
        es = _population(noise, seed)
        proto = generate_protocol(es, seed=0)
        audit = run_audit(es, proto, score="cosine", top_k=20, fpir_targets=TARGETS)
        add_demographics(audit, ["sex"], n_boot=N_BOOT)
        out[k] = {"es": es, "proto": proto, "audit": audit,
                  "folder": write_results(audit, root / f"template{k}", report=False)}
    return out


def blackbox(world, k: int, L: int, t: float | None, name: str, *, scale: float = 1.0, rank_only=False,
             demographics=True, keep=None):
    w = world[k]
    es, proto = w["es"], w["proto"]
    lists = engine_lists(es, proto, w["audit"], L, t, scale=scale, rank_only=rank_only, keep=keep)
    bb = audit_lists(lists, es.manifest, es.template_ids[proto.gallery], fpir_targets=TARGETS)
    if demographics:
        add_demographics_from_lists(bb, ["sex"], n_boot=N_BOOT)
    return write_blackbox_results(bb, world["root"] / name, overwrite=True, report=False)


def _strip(cmp: dict) -> dict:
    return {k: v for k, v in cmp.items() if k not in ("ci_method",)}


def _reference(world):
    """Template audit of system 2 against template audit of system 1 (the comparison with every score)."""
    if "ref" not in world:
        world["ref"] = compare([world[2]["folder"], world[1]["folder"]], n_boot=N_BOOT, fpir_targets=TARGETS)
    return world["ref"]


def _cut_lists_by_hand(res, L: int, t: float | None):
    """From the engine's own arrays: per search, people listed and whether the mate is listed."""
    score = res.candidates_score[:, :L].astype(np.float64)
    shown = (res.candidates_subject[:, :L] >= 0) & (np.ones_like(score, bool) if t is None else score >= t)
    shown &= np.cumprod(shown, axis=1).astype(bool)  # a list is cut at its first unshown candidate
    n_listed = shown.sum(1)
    mate_listed = res.is_mated & (res.mate_rank <= n_listed)
    return n_listed, mate_listed


@pytest.mark.parametrize("L,t", [(20, None), (5, None), (5, 0.6), (20, 0.65), (10, 0.7)])
def test_black_box_against_template_equals_the_template_comparison_where_defined(world, L, t):
    """Exact truth: system 1 black-boxed (lists cut at L and t) against system 2's template audit gives
    the template comparison's figures wherever the lists determine them, and says why elsewhere."""
    ref = _reference(world)["pairs"][0]
    bb = blackbox(world, 1, L, t, f"bb-{L}-{t}")
    got = compare([world[2]["folder"], bb], n_boot=N_BOOT, fpir_targets=TARGETS)
    pair = got["pairs"][0]
    res1 = world[1]["audit"].search
    ops1 = world[1]["audit"].results["identification"]["operating_points"]
    n_listed, mate_listed = _cut_lists_by_hand(res1, L, t)
    # the bootstrap resamples, by hand: subjects coded by name, as compare codes them
    s2 = pd.read_parquet(world[2]["folder"] / "searches.parquet")
    names, code = np.unique(s2["subject_id"].astype(str), return_inverse=True)
    weights = boot_.subject_weights(names.size, N_BOOT, 0)
    by_tid = pd.Series(np.arange(res1.n_probes), index=world[1]["es"].template_ids[res1.probe_rows])
    i1 = by_tid.loc[s2["template_id"]].to_numpy()        # system 1's search for each row of s2
    mated = s2["mated"].to_numpy()
    counted = {"measurable": 0, "not": 0}
    for k, target in enumerate(TARGETS):
        op, ref_op = pair["operating_points"][k], ref["operating_points"][k]
        thr1 = ops1[k]["threshold"]
        measurable = t is None or thr1 >= t   # every list shows all people at or above the cut
        assert ("not_measurable" not in op["fnir_rank1"]) == measurable, (target, op["fnir_rank1"])
        assert ("not_measurable" not in op["fpir"]) == measurable
        if not measurable:
            counted["not"] += 1
            assert op["threshold_b"] is None and "below what the lists show" in op["fnir_rank1"]["not_measurable"]
            assert op["fnir_rank1"]["not_measurable"].startswith(f"{bb.name}: ")
            continue
        counted["measurable"] += 1
        assert op["threshold_b"] == thr1 and op["threshold_a"] == ref_op["threshold_a"]
        for m in ("fnir_rank1", "fpir"):
            fixed = {k2: v for k2, v in op[m].items() if not k2.startswith("ci_threshold_reestimated")}
            assert fixed == {k2: v for k2, v in ref_op[m].items() if not k2.startswith("ci_threshold_reestimated")}
        # brute force from the engine's scores: discordant searches, difference, McNemar
        miss1 = ((res1.mate_score < np.float32(thr1)) | (res1.mate_rank > 1))[i1][mated]
        thr2 = op["threshold_a"]
        miss2 = ((s2.mate_score < thr2) | (s2.mate_rank > 1)).to_numpy()[mated]
        f = op["fnir_rank1"]
        assert (f["only_a_wrong"], f["only_b_wrong"]) == (int((miss2 & ~miss1).sum()), int((~miss2 & miss1).sum()))
        assert f["difference"] == pytest.approx(miss2.mean() - miss1.mean(), abs=1e-15)
        n_disc = f["only_a_wrong"] + f["only_b_wrong"]
        assert f["mcnemar_p"] == pytest.approx(stats.binomtest(f["only_a_wrong"], n_disc).pvalue if n_disc else 1.0)
        fp1 = (res1.best_nonmate >= np.float32(thr1))[i1][~mated]
        assert op["fpir"]["b"]["errors"] == int(fp1.sum())
        # re-estimated thresholds: measurable only when every resample's threshold for system 1 is at
        # or above the cut; count the resamples below it by hand (non-mated searches repeated)
        best1 = res1.best_nonmate[i1][~mated]
        below = 0 if t is None else sum(
            threshold_at_fpir(np.repeat(best1, weights[b][code[~mated]].astype(int)), target).threshold < t
            for b in range(N_BOOT))
        if below:
            assert f["ci_threshold_reestimated"] == [None, None]
            assert f"{bb.name}: in {below:,} of {N_BOOT} resamples" in f["ci_threshold_reestimated_not_measurable"]
        else:
            assert f["ci_threshold_reestimated"] == ref_op["fnir_rank1"]["ci_threshold_reestimated"]
    assert counted["measurable"] >= 1 and (t is None or counted["not"] >= 1)
    # no threshold: FNIR(r) and CMC only to the depth every list shows
    for c, rc in zip(pair["cmc_miss_difference"], ref["cmc_miss_difference"]):
        r = c["rank"]
        assert r <= L
        unknown = int((res1.is_mated & ~mate_listed & (n_listed < r)).sum())
        if unknown:
            assert c["miss_difference"] is None and c["not_measurable"].startswith(f"{bb.name}: {unknown} mated search(es)")
        else:
            assert c == rc
    unknown1 = int((res1.is_mated & ~mate_listed & (n_listed < 1)).sum())
    rank1 = pair["rank1_misses_no_threshold"]
    assert ("not_measurable" in rank1) == (unknown1 > 0)
    if not unknown1:
        assert rank1 == ref["rank1_misses_no_threshold"]
    # the FNIR difference curve: the reference's point wherever both thresholds are shown
    for c, rc in zip(pair["fnir_difference_curve"], ref["fnir_difference_curve"]):
        if c["difference"] is not None:
            assert c["difference"] == rc["difference"]
            assert c["ci"] == rc["ci"] or (c["ci"] == [None, None] and "resamples" in c["ci_not_measurable"])
        else:
            assert t is not None and threshold_at_fpir(best1, c["fpir"]).threshold < t
    # per group: paired at each system's demographics threshold (system 1's is the same as its template
    # audit's where the lists show FPIR 1%, else the system's own cut: a list that is not empty)
    demo, ref_demo = pair["demographics"][0], ref["demographics"][0]
    for g in demo["groups"]:  # FMR / FNMR per group: the template audit's, and why the lists cannot give them
        side = demo["groups"][g]["as_audited"]
        assert side["fmr"]["a"] == ref_demo["groups"][g]["as_audited"]["fmr"]["a"]
        assert side["fmr"]["b"]["value"] is None and "not measurable from candidate lists" in side["fmr"]["b"]["not_measurable"]
    if demo["threshold_b"] is not None:
        assert demo["threshold_b"] == ref_demo["threshold_b"]
        for g in demo["groups"]:
            assert demo["groups"][g]["paired"] == ref_demo["groups"][g]["paired"]
    else:
        assert "system's own threshold" in demo["threshold_rule_b"]
        sex = s2["sex"].to_numpy()
        nonempty = (n_listed > 0)[i1]
        first = ((res1.mate_rank <= 1) & (res1.mate_score >= t))[i1]  # the mate listed first, at or above the cut
        for g in demo["groups"]:
            assert demo["groups"][g]["paired"]["fpir"]["b"]["errors"] == int((nonempty & ~mated & (sex == g)).sum())
            assert demo["groups"][g]["paired"]["fnir"]["b"]["errors"] == int((~first & mated & (sex == g)).sum())
            assert demo["groups"][g]["paired"]["fnir"]["a"] == ref_demo["groups"][g]["paired"]["fnir"]["a"]
    # one sentence per operating point (or per run of them not measurable for one reason), and one more
    assert len(got["summary"]) == len(TARGETS) + 1
    for target, op in zip(TARGETS, pair["operating_points"]):
        line = next(x for x in got["summary"] if x.startswith(f"At FPIR {100 * target:g}% "))
        assert ("own threshold): FNIR at rank 1 is not measurable from the lists (" in line) == \
            ("not_measurable" in op["fnir_rank1"])


def test_two_black_box_systems_on_different_scales(world):
    """Black box against black box: system 2 answers on 0-100 with lists of 10 cut at 62, system 1 on 0-1
    with lists of 5 cut at 0.6. Each is taken at its own threshold on its own scale; a figure is paired
    only where both lists determine it, and there it is the template comparison's."""
    ref = _reference(world)["pairs"][0]
    a = blackbox(world, 2, 10, 0.62, "bb2-scaled", scale=100.0)
    b = blackbox(world, 1, 5, 0.6, "bb1")
    got = compare([a, b], n_boot=N_BOOT, fpir_targets=TARGETS)
    pair = got["pairs"][0]
    ops1 = world[1]["audit"].results["identification"]["operating_points"]
    ops2 = world[2]["audit"].results["identification"]["operating_points"]
    seen = set()
    for k, target in enumerate(TARGETS):
        op, ref_op = pair["operating_points"][k], ref["operating_points"][k]
        ok_a, ok_b = ops2[k]["threshold"] >= 0.62, ops1[k]["threshold"] >= 0.6
        f = op["fnir_rank1"]
        assert ("not_measurable" not in f) == (ok_a and ok_b)
        seen.add((ok_a, ok_b))
        if not (ok_a and ok_b):
            # the reason names each system whose lists do not show the operating point, and only those
            assert (f"{a.name}:" in f["not_measurable"]) == (not ok_a) and (f"{b.name}:" in f["not_measurable"]) == (not ok_b)
            continue
        assert op["threshold_a"] > 1  # system 2's own scale
        for m in ("fnir_rank1", "fpir"):
            for key in ("a", "b", "difference", "ci", "only_a_wrong", "only_b_wrong", "mcnemar_p", "verdict"):
                assert op[m][key] == ref_op[m][key], (target, m, key)
    assert (True, True) in seen and (False, False) in seen
    systems = {s["name"]: s for s in got["systems"]}
    assert systems["bb2-scaled"]["observed"]["list_length"] == [10] and systems["bb1"]["observed"]["threshold"] == [0.6]
    assert "not measurable" in got["summary"][0]
    # each system as deployed (at the threshold it cut its lists at): always determined, recounted by hand
    res1, res2 = world[1]["audit"].search, world[2]["audit"].search
    s1 = pd.read_parquet(world[1]["folder"] / "searches.parquet")
    order = pd.Series(np.arange(res1.n_probes), index=world[1]["es"].template_ids[res1.probe_rows])
    rows = order.loc[pd.read_parquet(a / "searches.parquet")["template_id"]].to_numpy()
    dep = pair["at_system_thresholds"]
    mated = res1.is_mated[rows]
    for res, t, side in ((res2, 0.62, "a"), (res1, 0.6, "b")):
        fp = (res.best_nonmate.astype(np.float64) >= t)[rows][~mated]
        first = ((res.mate_rank <= 1) & (res.mate_score.astype(np.float64) >= t))[rows][mated]
        assert dep["fpir"][side]["errors"] == int(fp.sum()) and dep["fnir_rank1"][side]["errors"] == int((~first).sum())
    assert (dep["threshold_a"], dep["threshold_b"]) == (62.0, 0.6) and len(s1) == mated.size
    assert got["summary"][-2].startswith("At each system's own threshold (as deployed, not at matched FPIR): ")
    # a template audit has no threshold of its own: nothing "as deployed" against it
    assert "at_system_thresholds" not in compare([world[2]["folder"], b], n_boot=N_BOOT)["pairs"][0]


def test_a_target_the_black_box_audit_did_not_report_is_recomputed_from_its_lists(world):
    """compare --fpir 0.03 on a black-box audit run with the default targets: faceaudit's rule on the
    lists gives the template audit's threshold where the lists show it, else not measurable."""
    ops1 = {o["target_fpir"]: o for o in world[1]["audit"].results["identification"]["operating_points"]}
    for t in (0.6, 0.65):  # the 3% threshold (0.632) is above the first cut and below the second
        w = world[1]
        lists = engine_lists(w["es"], w["proto"], w["audit"], 20, t)
        bb = write_blackbox_results(audit_lists(lists, w["es"].manifest, w["es"].template_ids[w["proto"].gallery]),
                                    world["root"] / f"bb-default-{t}", overwrite=True, report=False)
        got = compare([world[2]["folder"], bb], n_boot=N_BOOT, fpir_targets=[0.03])
        op = got["systems"][1]["operating_points"][0]
        assert op["threshold_source"] == "recomputed from lists"
        if ops1[0.03]["threshold"] >= t:
            assert op["threshold"] == ops1[0.03]["threshold"]
            assert op["fnir"]["errors"] == ops1[0.03]["fnir"]["1"]["errors"]
        else:
            assert op["threshold"] is None and "lies below what the lists show" in op["not_measurable"]
            assert "not_measurable" in got["pairs"][0]["operating_points"][0]["fpir"]


def test_rank_only_lists_compare_only_rank_figures(world):
    ref = _reference(world)["pairs"][0]
    bb = blackbox(world, 1, 10, None, "bb-rank-only", rank_only=True, demographics=False)
    got = compare([world[2]["folder"], bb], n_boot=N_BOOT, fpir_targets=TARGETS)
    pair = got["pairs"][0]
    for op in pair["operating_points"]:
        for m in ("fnir_rank1", "fpir"):
            assert "rank-only lists (no scores)" in op[m]["not_measurable"]
    assert pair["rank1_misses_no_threshold"] == ref["rank1_misses_no_threshold"]
    # CMC compared to the depth of the lists (10), each rank equal to the template comparison's
    assert [c["rank"] for c in pair["cmc_miss_difference"]] == [1, 5, 10]
    for c in pair["cmc_miss_difference"]:
        assert c == next(rc for rc in ref["cmc_miss_difference"] if rc["rank"] == c["rank"])
    assert all(c["difference"] is None for c in pair["fnir_difference_curve"])
    bb_sys = got["systems"][1]
    assert bb_sys["cmc"]["identification_rate"] == world[1]["audit"].results["identification"]["cmc"]["identification_rate"][:10]
    assert bb_sys["det"]["fpir"] == [] and pair["demographics"] == []  # no --group-by on the black box
    assert got["summary"][0].startswith("At FPIR 10%, 3%, 1% and 0.1% (each system at its own threshold): FNIR at "
                                        "rank 1 is not measurable from the lists (bb-rank-only: rank-only lists")
    assert len(got["summary"]) == 2


def test_refuses_other_searches_and_broken_folders(world, tmp_path):
    # lists for only some of the probes: other searches (the protocol's counts differ first)
    half = blackbox(world, 1, 5, None, "bb-half", demographics=False, keep=lambda i: i % 2 == 0)
    with pytest.raises(InputError, match="not the same protocol as .*: n_mated_probes is"):
        compare([world[2]["folder"], half])
    # the same counts, but one probe swapped for another person's: other searches
    bb = blackbox(world, 1, 5, None, "bb-swapped", demographics=False)
    table = pd.read_parquet(bb / "searches.parquet")
    table.loc[0, "template_id"] = "somebody-else"
    table.to_parquet(bb / "searches.parquet", index=False)
    with pytest.raises(InputError, match="not the same searches as .* 2 probe template_id"):
        compare([world[2]["folder"], bb])
    bb = blackbox(world, 1, 5, None, "bb-nocand", demographics=False)
    (bb / "candidates.parquet").unlink()
    with pytest.raises(InputError, match="no candidates.parquet here"):
        compare([bb, world[2]["folder"]])
    r = CliRunner().invoke(app, ["compare", str(world[2]["folder"]), str(half), "--out", str(tmp_path / "cmp")])
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "not the same protocol" in r.output
    assert "Traceback" not in r.output and not (tmp_path / "cmp").exists()


def test_commands_end_to_end_in_a_terminal(world, tmp_path):
    """import lists -> `faceaudit audit-lists` -> `faceaudit compare` against a template audit, as typed."""
    w = world[1]
    es, proto = w["es"], w["proto"]
    man = tmp_path / "manifest.csv"
    es.manifest.to_csv(man, index=False)
    pro = tmp_path / "protocol.csv"
    pd.DataFrame({"template_id": es.template_ids[np.concatenate([proto.gallery, proto.probes])],
                  "role": ["gallery"] * proto.gallery.size + ["probe"] * proto.probes.size}).to_csv(pro, index=False)
    lists = write_lists(engine_lists(es, proto, w["audit"], 10, 62.0 / 100, scale=100.0), tmp_path / "lists.csv")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    bb = tmp_path / "vendor"
    cmd = (f"{sys.executable} -m faceaudit.cli audit-lists --lists {lists} --manifest {man} --protocol {pro} "
           f"--out {bb} --group-by sex")
    done = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True, env=env, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    out = tmp_path / "cmp"
    cmd = (f"{sys.executable} -m faceaudit.cli compare {world[2]['folder']} {bb} --name model-2 --name vendor "
           f"--fpir 0.1 --fpir 0.01 --n-boot {N_BOOT} --out {out}")
    run = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True, cwd=REPO, env=env,
                         timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stdout
    assert "At FPIR 10% (each system at its own threshold): FNIR at rank 1 is not measurable from the lists (vendor: " in run.stdout
    assert "At FPIR 1% (each system at its own threshold): " in run.stdout
    data = json.loads((out / "comparison.json").read_text())
    assert (out / "summary.txt").read_text().splitlines() == data["summary"]
    assert data["systems"][1]["kind"] == "black-box candidate lists" and "blackbox" in data["conventions"]
    op = data["pairs"][0]["operating_points"][1]
    assert op["threshold_b"] == pytest.approx(100 * w["audit"].results["identification"]["operating_points"][2]["threshold"], rel=1e-6)
    assert op["fnir_rank1"]["b"]["errors"] == w["audit"].results["identification"]["operating_points"][2]["fnir"]["1"]["errors"]
    html = (out / "report.html").read_text()
    assert "not measurable" in html and "What the black-box systems' lists show" in html and "Per group: sex" in html
    assert html.count("data:image/png;base64,") >= 3 and "http://" not in html and "https://" not in html
    # bad input in the terminal: other searches -> one line, exit 2, nothing written
    half = blackbox(world, 1, 5, None, "bb-half-cli", demographics=False, keep=lambda i: i % 3 == 0)
    cmd = f"{sys.executable} -m faceaudit.cli compare {world[2]['folder']} {half} --out {tmp_path / 'bad'}"
    run = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True, cwd=REPO, env=env,
                         timeout=180)
    assert run.returncode == 2 and "not the same protocol" in run.stdout and "Traceback" not in run.stdout
    assert len(run.stdout.strip().splitlines()) == 1 and not (tmp_path / "bad").exists()

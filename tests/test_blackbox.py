"""Black-box audits from candidate lists: schema, adapters, observed metrics, the audit-lists command.

The key property: lists cut from the engine's own output at length L and threshold t give the
template audit's figures wherever the lists determine them, and "not measurable" elsewhere.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from auditcore.errors import InputError
from faceaudit.audit import run_audit
from faceaudit.blackbox.adapters import BUILTIN, import_responses, parse_response
from faceaudit.blackbox.audit import audit_lists, write_blackbox_results
from faceaudit.cli import app
from faceaudit.data.candidates import read_lists, records_to_lists, write_lists
from faceaudit.data.synthetic import make_population

runner = CliRunner()


@pytest.fixture(scope="module")
def population():
    es, proto, _ = make_population(n_enrolled=150, n_nonenrolled=150, dim=24, seed=3)
    audit = run_audit(es, proto, top_k=20, thresholds=[0.45, 0.6])
    return es, proto, audit


def engine_lists(es, proto, audit, L: int, t: float | None, *, scale: float = 1.0, rank_only: bool = False,
                 keep=None):
    """The lists a system with the engine's scores returns: top L subjects, cut at t (only the
    searches ``i`` with ``keep(i)`` true, if ``keep`` is given)."""
    res = audit.search
    tids = es.template_ids
    gal_tid = {s: tids[r] for r, s in zip(proto.gallery, es.subject_ids[proto.gallery])}
    recs = []
    for i in range(res.n_probes):
        if keep is not None and not keep(i):
            continue
        cands = []
        for k in range(L):
            u, s = res.candidates_subject[i, k], float(res.candidates_score[i, k])
            if u < 0 or (t is not None and s < t):
                break
            cands.append({"candidate_id": gal_tid[res.gallery_subjects[u]], "score": None if rank_only else scale * s})
        recs.append({"search_id": f"q{i}", "probe_id": tids[res.probe_rows[i]], "list_length": L,
                     "threshold": None if t is None or rank_only else scale * t,
                     "threshold_applied": t is not None, "system": "engine", "candidates": cands})
    return records_to_lists(recs)


def same_where_defined(a: dict, b: dict, *, scale: float = 1.0) -> dict:
    """Assert every figure measurable from lists equals the template audit's; count them."""
    ia, ib = a["identification"], b["identification"]
    n = {"equal": 0, "not_measurable": 0}
    for oa, ob in zip(ia["operating_points"], ib["operating_points"]):
        if ob["threshold"] is None:
            assert ob["not_measurable"]
            n["not_measurable"] += 1
            continue
        if scale == 1.0:
            assert ob["threshold"] == oa["threshold"]
        assert ob["fpir"]["errors"] == oa["fpir"]["errors"] and ob["fpir"]["trials"] == oa["fpir"]["trials"]
        n["equal"] += 1
        for r in ib["ranks"]:
            fb = ob["fnir"][str(r)]
            if str(r) not in oa["fnir"]:
                continue
            if fb.get("not_measurable"):
                n["not_measurable"] += 1
                continue
            assert (fb["errors"], fb["trials"]) == (oa["fnir"][str(r)]["errors"], oa["fnir"][str(r)]["trials"]), (oa["target_fpir"], r)
            n["equal"] += 1
    for pa, pb in zip(ia["at_thresholds"], ib["at_thresholds"]):
        for key in ["fpir"] + [f"fnir{r}" for r in ib["ranks"]]:
            if key != "fpir" and key[4:] not in pa["fnir"]:
                continue
            fa = pa["fpir"] if key == "fpir" else pa["fnir"][key[4:]]
            fb = pb["fpir"] if key == "fpir" else pb["fnir"][key[4:]]
            if fb.get("not_measurable"):
                n["not_measurable"] += 1
                continue
            assert (fb["errors"], fb["trials"]) == (fa["errors"], fa["trials"]), (pa["threshold"], key)
            n["equal"] += 1
    for r, (ca, cb) in enumerate(zip(ia["cmc"]["identification_rate"], ib["cmc"]["identification_rate"]), start=1):
        if cb is None:
            assert r > ib["cmc"]["measurable_to_rank"]
            n["not_measurable"] += 1
        else:
            assert cb == pytest.approx(ca, abs=0), r
            n["equal"] += 1
    return n


@pytest.mark.parametrize("L,t", [(20, None), (10, None), (5, 0.45), (20, 0.65), (1, 0.3)])
def test_lists_give_the_template_audit_figures_where_defined(population, L, t):
    es, proto, audit = population
    lists = engine_lists(es, proto, audit, L, t)
    bb = audit_lists(lists, es.manifest, es.template_ids[proto.gallery], thresholds=[0.45, 0.6])
    n = same_where_defined(audit.results, bb.results)
    assert n["equal"] >= 5
    ib = bb.results["identification"]
    if t is None:  # no threshold: every threshold figure, CMC to exactly L
        assert ib["cmc"]["measurable_to_rank"] == L
        assert all(op["threshold"] is not None for op in ib["operating_points"])
    else:  # FPIR only at T >= t; CMC past what every list shows is not measurable
        for p in ib["at_thresholds"]:
            assert (p["fpir"].get("not_measurable") is None) == (p["threshold"] >= t)
        assert ib["cmc"]["measurable_to_rank"] < L or L == 1
    if L < 20:  # FNIR beyond L at a threshold below the cut is never guessed
        assert "20" not in ib["ranks"] and max(ib["ranks"]) <= L
    assert bb.results["verification"]["not_measurable"]


def test_threshold_below_the_cut_is_not_measurable_with_reason(population):
    es, proto, audit = population
    bb = audit_lists(engine_lists(es, proto, audit, 20, 0.65), es.manifest, es.template_ids[proto.gallery],
                     fpir_targets=[0.1, 0.01], thresholds=[0.6])
    ib = bb.results["identification"]
    low = ib["operating_points"][0]  # FPIR 10% needs a threshold (0.604) below the cut 0.65
    assert low["threshold"] is None and "below what the lists show" in low["not_measurable"]
    assert ib["at_thresholds"][0]["fpir"]["not_measurable"].startswith(
        f"{int(((audit.search.best_nonmate[~audit.search.is_mated]) < np.float32(0.65)).sum())} non-mated search(es) returned no candidate")
    # at the system's own threshold: FPIR = non-empty lists, equal to FPIR(t) of the template audit
    best = audit.search.best_nonmate[~audit.search.is_mated]
    assert ib["at_system_threshold"]["fpir"]["errors"] == int((best >= np.float32(0.65)).sum())
    assert ib["operating_points"][1]["threshold"] == audit.results["identification"]["operating_points"][1]["threshold"]


def test_rank_only_lists_give_cmc_and_fnir_at_rank_but_no_threshold_figure(population):
    es, proto, audit = population
    bb = audit_lists(engine_lists(es, proto, audit, 10, None, rank_only=True), es.manifest,
                     es.template_ids[proto.gallery], thresholds=[0.5])
    ib = bb.results["identification"]
    assert all(op["threshold"] is None and "rank-only" in op["not_measurable"] for op in ib["operating_points"])
    assert "rank-only" in ib["at_thresholds"][0]["fpir"]["not_measurable"]
    np.testing.assert_array_equal(ib["cmc"]["identification_rate"],
                                  audit.results["identification"]["cmc"]["identification_rate"][:10])
    assert ib["rank1_identification_rate"]["misses"]["errors"] == audit.results["identification"]["rank1_identification_rate"]["misses"]["errors"]


def test_rekognition_scale_and_template_lists(population):
    """Scores on 0-100 and several gallery templates per subject (a template list read as subjects)."""
    es, proto, audit = population
    lists = engine_lists(es, proto, audit, 10, 0.4, scale=100.0)
    bb = audit_lists(lists, es.manifest, es.template_ids[proto.gallery], thresholds=[45.0, 60.0])
    n = same_where_defined(audit.results, bb.results, scale=100.0)
    assert n["equal"] >= 5
    assert bb.results["input"]["top_k"] == 10


def test_templates_of_one_subject_collapse_to_the_subject():
    man = pd.DataFrame({"template_id": ["g1", "g1b", "g2", "p1", "p3"], "subject_id": ["A", "A", "B", "A", "C"]})
    recs = [{"search_id": "s1", "probe_id": "p1", "list_length": 3, "candidates": [
                {"candidate_id": "g2", "score": 0.9}, {"candidate_id": "g1", "score": 0.8}, {"candidate_id": "g1b", "score": 0.7}]},
            {"search_id": "s2", "probe_id": "p3", "list_length": 3, "candidates": [{"candidate_id": "g1b", "score": 0.6}]}]
    bb = audit_lists(records_to_lists(recs), man, ["g1", "g1b", "g2"], thresholds=[0.5])
    obs = bb.search
    assert obs.n_listed.tolist() == [2, 1] and obs.mate_rank[0] == 2 and obs.mate_score[0] == 0.8
    # s1 is a full list (3 of 3): the mate is listed, so FNIR at any rank is known
    assert bb.results["identification"]["at_thresholds"][0]["fnir"]["1"]["errors"] == 1


# --- bad input: one line naming file and row, nothing written ----------------------------------

GOOD = ("search_id,probe_id,rank,candidate_id,score,list_length,threshold,system,score_scale\n"
        "s1,p1,1,g2,0.9,3,,sys,0-1\ns1,p1,2,g1,0.8,3,,sys,0-1\ns2,p3,,,,3,,sys,0-1\n")
BAD = {
    "not in rank order": ("s1,p1,2,g1,0.8,", "s1,p1,2,g1,0.95,", "line 3: search s1 is not in rank order"),
    "duplicate rank": ("s1,p1,2,g1,0.8,", "s1,p1,1,g1,0.8,", "duplicate rank 1 in search s1"),
    "missing rank": ("s1,p1,2,g1,0.8,", "s1,p1,3,g1,0.8,", "has rank 3 but no rank 2"),
    "bad rank": ("s1,p1,2,g1,0.8,", "s1,p1,two,g1,0.8,", "line 3: rank is not a number"),
    "two scales": ("s2,p3,,,,3,,sys,0-1", "s2,p3,,,,3,,sys,0-100", "has scores on scale '0-100' here but '0-1'"),
    "off scale": ("s1,p1,1,g2,0.9,", "s1,p1,1,g2,90,", "line 2: score 90 is outside system sys's scale '0-1'"),
    "score missing": ("s1,p1,2,g1,0.8,", "s1,p1,2,g1,,", "a system scores every candidate or none"),
    "too long": ("3,,sys,0-1\ns1,p1,2", "1,,sys,0-1\ns1,p1,2", "search s1 has list_length '3' here but '1'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_lists_name_file_and_row(tmp_path, case):
    old, new, message = BAD[case]
    assert old in GOOD
    path = tmp_path / "lists.csv"
    path.write_text(GOOD.replace(old, new, 1))
    with pytest.raises(InputError) as err:
        read_lists(path)
    assert message in str(err.value) and str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_ids_not_in_manifest_or_gallery(tmp_path):
    man = pd.DataFrame({"template_id": ["g1", "g2", "p1", "p3"], "subject_id": ["A", "B", "A", "C"]})
    for text, message in [(GOOD.replace("g2", "zz"), "candidate zz is not in the manifest"),
                          (GOOD.replace("p3", "zz"), "probe_id zz is not in the manifest"),
                          (GOOD.replace("g2", "p3"), "candidate p3 is not a gallery template")]:
        path = tmp_path / "l.csv"
        path.write_text(text)
        with pytest.raises(InputError, match=message):
            audit_lists(read_lists(path), man, ["g1", "g2"])


def test_schema_round_trip_in_every_format(tmp_path, population):
    es, proto, audit = population
    lists = engine_lists(es, proto, audit, 5, 0.5)
    base = audit_lists(lists, es.manifest, es.template_ids[proto.gallery]).results["identification"]
    for suffix in ("csv", "parquet", "jsonl"):
        path = write_lists(lists, tmp_path / f"lists.{suffix}")
        again = read_lists(path)
        assert again.n_searches == lists.n_searches and len(again.candidates) == len(lists.candidates)
        ident = audit_lists(again, es.manifest, es.template_ids[proto.gallery]).results["identification"]
        assert json.dumps(ident["operating_points"]) == json.dumps(base["operating_points"])


# --- adapters ----------------------------------------------------------------------------------

def test_adapters_read_each_service_body():
    rek = {"FaceMatches": [{"Similarity": 99.5, "Face": {"FaceId": "f1", "ExternalImageId": "g1"}},
                           {"Similarity": 91.0, "Face": {"FaceId": "f2", "ExternalImageId": "g2"}}],
           "FaceModelVersion": "7.0"}
    r = parse_response(BUILTIN["rekognition"], rek, {"MaxFaces": 5, "FaceMatchThreshold": 90})
    assert (r["list_length"], r["threshold"], r["score_scale"], r["system_version"]) == (5, 90, "0-100", "7.0")
    assert [c["candidate_id"] for c in r["candidates"]] == ["g1", "g2"]
    r = parse_response(BUILTIN["rekognition"], {"FaceMatches": []})  # service defaults: 80 faces, 80%
    assert (r["list_length"], r["threshold"]) == (80, 80.0)
    az = [{"faceId": "x", "candidates": [{"personId": "P1", "confidence": 0.91}]}]
    r = parse_response(BUILTIN["azure"], az, {})
    assert (r["list_length"], r["threshold"], r["threshold_applied"]) == (10, None, True)  # unknown threshold
    nist = {"candidates": [{"templateId": "g1", "score": 3.2, "isAssigned": True},
                           {"templateId": "", "score": 0, "isAssigned": False}]}
    r = parse_response(BUILTIN["nist"], nist, {"candidateListLength": 2})
    assert [c["candidate_id"] for c in r["candidates"]] == ["g1"] and r["threshold"] is None
    with pytest.raises(InputError, match="no candidate list at 'FaceMatches'"):
        parse_response(BUILTIN["rekognition"], {"Matches": []}, where="request 7")
    with pytest.raises(InputError, match="candidate 1's score is not a number"):
        parse_response(BUILTIN["nist"], {"candidates": [{"templateId": "g", "score": "high"}]}, {"candidateListLength": 1})


def test_import_responses_with_id_map_and_unknown_threshold(tmp_path):
    lines = [{"search_id": "s1", "probe_id": "p1", "request": {"maxNumOfCandidatesReturned": 2},
              "response": [{"faceId": "x", "candidates": [{"personId": "P-B", "confidence": 0.7},
                                                          {"personId": "P-A", "confidence": 0.6}]}]},
             {"search_id": "s2", "probe_id": "p3", "request": {"maxNumOfCandidatesReturned": 2},
              "response": [{"faceId": "y", "candidates": [{"personId": "P-A", "confidence": 0.65}]}]},
             {"search_id": "s3", "probe_id": "p4", "request": {"maxNumOfCandidatesReturned": 2},
              "response": [{"faceId": "z", "candidates": []}]}]
    path = tmp_path / "azure.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines))
    lists = import_responses(path, "azure", id_map={"P-A": "g1", "P-B": "g2"})
    man = pd.DataFrame({"template_id": ["g1", "g2", "p1", "p3", "p4"], "subject_id": ["A", "B", "A", "C", "D"]})
    bb = audit_lists(lists, man, ["g1", "g2"], thresholds=[0.6, 0.65])
    ident = bb.results["identification"]
    # the unknown threshold is at most 0.6 (the lowest score returned): FPIR measurable from there
    assert bb.results["blackbox"]["threshold_unknown"]
    assert ident["at_thresholds"][0]["fpir"]["errors"] == 1 and ident["at_thresholds"][1]["fpir"]["errors"] == 1
    assert ident["at_system_threshold"]["fpir"]["errors"] == 1 and ident["at_system_threshold"]["threshold"] is None
    path.write_text(json.dumps(lines[0]) + "\n{not json\n")
    with pytest.raises(InputError, match="line 2: the response record does not parse"):
        import_responses(path, "azure", id_map={"P-A": "g1", "P-B": "g2"})
    path.write_text(json.dumps(lines[0]))
    with pytest.raises(InputError, match="candidate id P-B is not in the id map"):
        import_responses(path, "azure", id_map={"P-A": "g1"})


# --- the commands, as a person types them --------------------------------------------------------

def _files(tmp_path, es, proto, lists):
    man = tmp_path / "manifest.csv"
    es.manifest.assign(site=np.where(np.arange(es.n) % 2, "north", "south")).to_csv(man, index=False)
    pro = tmp_path / "protocol.csv"
    roles = pd.DataFrame({"template_id": es.template_ids[np.concatenate([proto.gallery, proto.probes])],
                          "role": ["gallery"] * proto.gallery.size + ["probe"] * proto.probes.size})
    roles.to_csv(pro, index=False)
    path = write_lists(lists, tmp_path / "lists.parquet")
    return man, pro, path


def test_audit_lists_command_in_a_terminal(tmp_path, population):
    es, proto, audit = population
    man, pro, path = _files(tmp_path, es, proto, engine_lists(es, proto, audit, 10, 0.65))
    out = tmp_path / "results"
    cmd = (f"{sys.executable} -m faceaudit.cli audit-lists --lists {path} --manifest {man} --protocol {pro} "
           f"--out {out} --threshold 0.7 --group-by site --scale")
    done = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FPIR target 0.1: not measurable" in done.stdout and "at the system's own threshold" in done.stdout
    results = json.loads((out / "results.json").read_text())
    searches = pd.read_parquet(out / "searches.parquet")
    assert len(searches) == proto.probes.size and searches.search_id.is_unique
    op = results["identification"]["operating_points"][1]
    nonmated = searches[~searches.mated]
    assert op["fpir"]["errors"] == int((nonmated.best_nonmate_score >= op["threshold"]).sum())
    html = (out / "report.html").read_text()
    assert "what the candidate lists show" in html and "not measurable from the lists" in html
    assert "Verification</h2><p class='muted'>Not measurable" in html
    assert "Demographic differentials from the lists" in html and "Scale from the lists" in html
    assert results["demographics_from_lists"]["analyses"][0]["groups"] == ["north", "south"]
    assert results["scale_from_lists"]["models"]
    # bad input: one line, exit 2, nothing written
    bad = tmp_path / "bad.csv"
    bad.write_text(GOOD.replace("s1,p1,2,g1,0.8,", "s1,p1,2,g1,0.95,"))
    out2 = tmp_path / "results2"
    result = runner.invoke(app, ["audit-lists", "--lists", str(bad), "--manifest", str(man), "--protocol", str(pro),
                                 "--out", str(out2)])
    assert result.exit_code == 2 and "not in rank order" in result.output and "Traceback" not in result.output
    assert not out2.exists()


def test_import_lists_command(tmp_path):
    body = {"FaceMatches": [{"Similarity": 95.0, "Face": {"ExternalImageId": "g1"}}], "FaceModelVersion": "7"}
    src = tmp_path / "resp.jsonl"
    src.write_text(json.dumps({"search_id": "s1", "probe_id": "p1", "request": {"MaxFaces": 3}, "response": body}) + "\n")
    out = tmp_path / "lists.csv"
    result = runner.invoke(app, ["import-lists", str(src), "--adapter", "rekognition", "--out", str(out)])
    assert result.exit_code == 0, result.output
    flat = pd.read_csv(out)
    assert flat.loc[0, ["candidate_id", "list_length", "threshold", "score_scale"]].tolist() == ["g1", 3, 80.0, "0-100"]
    result = runner.invoke(app, ["import-lists", str(src), "--adapter", "rekognition", "--out", str(out)])
    assert result.exit_code == 2 and "use --overwrite" in result.output


def test_written_folder_is_atomic_and_marked(tmp_path, population):
    es, proto, audit = population
    bb = audit_lists(engine_lists(es, proto, audit, 5, None), es.manifest, es.template_ids[proto.gallery])
    out = write_blackbox_results(bb, tmp_path / "r", report=False)
    assert (out / ".faceaudit-output.json").is_file() and (out / "lists.parquet").is_file()
    with pytest.raises(InputError, match="use --overwrite"):
        write_blackbox_results(bb, out, report=False)


def test_demographics_from_lists_equal_the_template_audit_for_fpir_and_fnir(population):
    from faceaudit.analyses.demographics import add_demographics
    from faceaudit.blackbox.groups import add_demographics_from_lists
    es, proto, audit = population
    rng = np.random.default_rng(1)
    subjects = es.manifest.subject_id.unique()
    label = dict(zip(subjects, rng.choice(["a", "b", "c"], subjects.size)))
    man = es.manifest.assign(group=es.manifest.subject_id.map(label))
    es2 = type(es)(es.templates, man, es.source)
    ref = run_audit(es2, proto, top_k=20)
    ref_demo = add_demographics(ref, ["group"], n_boot=200)
    bb = audit_lists(engine_lists(es, proto, audit, 20, None), man, es.template_ids[proto.gallery])
    demo = add_demographics_from_lists(bb, ["group"], n_boot=200)
    assert demo["threshold"] == ref_demo["threshold"]
    a, b = ref_demo["analyses"][0], demo["analyses"][0]
    # the claims' bounds are simultaneous over each section's comparisons: 4 measures in the template
    # audit, 2 from lists (FMR and FNMR are not measurable there), so only the bounds differ
    assert b["claims"]["comparisons"] < a["claims"]["comparisons"]
    point = ("group", "versus", "rate", "versus_rate", "ratio", "difference", "measurable")
    for m in ("fpir", "fnir"):
        assert b["rates"][m] == a["rates"][m]
        sa, sb = a["summaries"][m], b["summaries"][m]
        assert {k: sb.get(k) for k in ("max_group", "min_group", "ratio", "reference_group")} == \
            {k: sa.get(k) for k in ("max_group", "min_group", "ratio", "reference_group")}
        for ca, cb in zip([sa.get("extreme_pair")] + sa.get("versus_reference", []),
                          [sb.get("extreme_pair")] + sb.get("versus_reference", [])):
            assert (ca is None) == (cb is None)
            if ca:
                assert {k: cb[k] for k in point} == {k: ca[k] for k in point}
    assert b["rates"]["fmr"] == {} and "not measurable" in b["summaries"]["fmr"]["note"]


def test_system_decisions_give_their_own_operating_point():
    man = pd.DataFrame({"template_id": ["g1", "g2", "p1", "p2", "p3", "p4"], "subject_id": ["A", "B", "A", "B", "C", "D"]})
    recs = [{"search_id": "s1", "probe_id": "p1", "list_length": 2, "candidates": [
                {"candidate_id": "g1", "score": 0.9, "decision": True}, {"candidate_id": "g2", "score": 0.4, "decision": False}]},
            {"search_id": "s2", "probe_id": "p2", "list_length": 2, "candidates": [
                {"candidate_id": "g1", "score": 0.7, "decision": True}, {"candidate_id": "g2", "score": 0.6, "decision": False}]},
            {"search_id": "s3", "probe_id": "p3", "list_length": 2, "candidates": [
                {"candidate_id": "g2", "score": 0.8, "decision": True}]},
            {"search_id": "s4", "probe_id": "p4", "list_length": 2, "candidates": [
                {"candidate_id": "g2", "score": 0.5, "decision": False}]}]
    point = audit_lists(records_to_lists(recs), man, ["g1", "g2"]).results["identification"]["at_system_decision"]
    assert (point["fpir"]["errors"], point["fpir"]["trials"]) == (1, 2)   # s3 declared a match for a stranger
    assert (point["fnir"]["errors"], point["fnir"]["trials"]) == (1, 2)   # s2's mate (B) not declared


@pytest.mark.parametrize("gallery_per_subject", [1, 2])
@pytest.mark.parametrize("L,t", [(20, None), (5, None), (3, 0.25), (5, 0.5), (1, None)])
def test_same_figures_with_ties_everywhere(gallery_per_subject, L, t):
    """Scores that are multiples of 1/4 (ties abound, duplicate templates): still the template audit's figures."""
    from conftest import exact_evalset

    from faceaudit.data.protocol import generate_protocol
    es = exact_evalset(n_subjects=40, per_subject=3, duplicates=3)
    proto = generate_protocol(es, enrol_fraction=0.5, seed=0, gallery_per_subject=gallery_per_subject)
    audit = run_audit(es, proto, top_k=20, thresholds=[0.25, 0.5])
    bb = audit_lists(engine_lists(es, proto, audit, L, t), es.manifest, es.template_ids[proto.gallery],
                     thresholds=[0.25, 0.5])
    assert same_where_defined(audit.results, bb.results)["equal"] >= 11


def test_explain_on_a_black_box_folder_says_why_not(tmp_path):
    folder = tmp_path / "bb"
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps({"faceaudit_version": "0", "identification": {},
                                                     "input": {"kind": "black-box candidate lists"}}))
    result = runner.invoke(app, ["explain", "--results", str(folder), "--score", "0.5", "--gallery-size", "1000"])
    assert result.exit_code == 2 and "black-box audit" in result.output and "Traceback" not in result.output

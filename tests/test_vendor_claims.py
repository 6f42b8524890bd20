"""Vendor claims (#28): verdicts against intervals computed independently (scipy), the 2.5% rule by
simulation, trials_needed against scipy's binomial / beta on hand-worked cases, per-group verdicts on
a hand-built audit, the operational-gallery rule, black-box results folders."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from auditcore.errors import InputError
from faceaudit.analyses import vendor_claims as vc
from faceaudit.analyses.vendor_claims import (
    Claim,
    evaluate,
    make_claims,
    trials_needed,
    verdict,
)


def cp(k: int, n: int, conf: float = 0.95) -> tuple[float, float]:
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=conf, method="exact")
    return ci.low, ci.high


# ----------------------------------------------------------------------------- a small real audit
@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A template audit (with groups by sex) and a black-box audit of the same searches (lists of 10)."""
    import sys

    from conftest import REPO
    sys.path.insert(0, str(REPO / "tests"))
    from test_blackbox import engine_lists

    from faceaudit.analyses.demographics import add_demographics
    from faceaudit.audit import run_audit, write_results
    from faceaudit.blackbox.audit import audit_lists, write_blackbox_results
    from faceaudit.blackbox.groups import add_demographics_from_lists
    from faceaudit.data.evalset import validate
    from faceaudit.data.protocol import generate_protocol
    root = tmp_path_factory.mktemp("claims")
    n_subj, per, dim = 240, 3, 24
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((n_subj, dim))
    man = pd.DataFrame({"template_id": [f"t{i:05d}" for i in range(n_subj * per)],
                        "subject_id": np.repeat([f"p{i:04d}" for i in range(n_subj)], per),
                        "sex": np.repeat(rng.choice(["F", "M"], n_subj), per)})
    x = np.repeat(centres, per, axis=0) + 0.8 * np.random.default_rng(100).standard_normal((n_subj * per, dim))
    es = validate(x.astype(np.float32), man)
    proto = generate_protocol(es, seed=0)
    audit = run_audit(es, proto, score="cosine", top_k=20, fpir_targets=(0.1, 0.01))
    add_demographics(audit, ["sex"], n_boot=100)
    tmpl = write_results(audit, root / "tmpl", report=False)
    bb = audit_lists(engine_lists(es, proto, audit, 10, None), es.manifest, es.template_ids[proto.gallery],
                     fpir_targets=(0.1, 0.01))
    add_demographics_from_lists(bb, ["sex"], n_boot=100)
    cut = audit_lists(engine_lists(es, proto, audit, 10, 0.6), es.manifest, es.template_ids[proto.gallery],
                      fpir_targets=(0.1, 0.01))
    return {"tmpl": tmpl, "bb": write_blackbox_results(bb, root / "bb", overwrite=True, report=False), "root": root,
            "bb_cut": write_blackbox_results(cut, root / "bb_cut", overwrite=True, report=False)}


def _results(folder):
    return json.loads((folder / "results.json").read_text())


# ----------------------------------------------------------------------------- verdicts
def test_verdict_rule_against_scipy_intervals():
    for k, n, c, want in [(4, 4000, 0.01, "supported"), (4, 4000, 0.001, "not shown"), (4, 4000, 0.0001, "contradicted"),
                          (0, 3688, 0.001, "supported"), (0, 3687, 0.001, "not shown"), (50, 4000, 0.01, "not shown")]:
        lo, hi = cp(k, n)
        assert verdict(lo, hi, c) == want, (k, n, c)
    # 'at least' claims (rank-1 rate): the success rate's interval
    lo, hi = cp(3879, 4000)  # the demo's rank-1 hits
    assert verdict(lo, hi, 0.96, at_least=True) == "supported"
    assert verdict(lo, hi, 0.97, at_least=True) == "not shown"
    assert verdict(lo, hi, 0.99, at_least=True) == "contradicted"
    assert verdict(None, None, 0.1) == "not shown"


def test_claims_on_a_template_audit_match_scipy_and_brute_force_counts(world):
    folder = world["tmpl"]
    r = _results(folder)
    s = pd.read_parquet(folder / "searches.parquet")
    best = s.loc[~s.mated, "best_nonmate_score"].to_numpy(np.float32)
    op = r["identification"]["operating_points"][1]
    t_op = op["threshold"]
    # a tabulated threshold: the audit's own figure; an untabulated one: counted from searches.parquet
    for t in (t_op, 0.55, 0.6123):
        k, n = int(np.count_nonzero(best >= np.float32(t))), best.size
        lo, hi = cp(k, n)
        claims = [0.0005, k / n, min(1.0, hi * 1.01), lo * 0.99]
        out = evaluate(folder, [Claim("fpir", c, threshold=t) for c in claims])["claims"]
        for c, e in zip(claims, out):
            assert (e["errors"], e["trials"]) == (k, n)
            assert e["ci_low"] == pytest.approx(lo, rel=1e-9, abs=1e-15) and e["ci_high"] == pytest.approx(hi, rel=1e-9)
            assert e["verdict"] == ("supported" if hi <= c else "contradicted" if lo > c else "not shown")
        assert out[2]["verdict"] == "supported"
    # FNIR at rank 1 at the operating point for FPIR 0.01 (tabulated) and 0.05 (counted with faceaudit's rule)
    mated = s[s.mated]
    for x in (0.01, 0.05):
        allowed = math.floor(x * best.size)
        t = np.sort(best)[::-1][allowed]  # the lowest threshold with at most `allowed` errors sits just above it
        t = np.nextafter(t, np.float32(np.inf))
        assert np.count_nonzero(best >= t) <= allowed
        miss = int(((mated.mate_score.to_numpy(np.float32) < t) | (mated.mate_rank.to_numpy() > 1)).sum())
        e = evaluate(folder, make_claims(fnir=["0.5"], at_fpir=str(x)))["claims"][0]
        assert (e["errors"], e["trials"]) == (miss, len(mated))
        lo, hi = cp(miss, len(mated))
        assert e["ci_low"] == pytest.approx(lo, rel=1e-9) and e["ci_high"] == pytest.approx(hi, rel=1e-9)
        assert e["verdict"] == verdict(lo, hi, 0.5)
    # rank-1 identification rate: 1 - misses, its interval flipped
    hits = int((mated.mate_rank == 1).sum())
    e = evaluate(folder, make_claims(rank1=["0.2"]))["claims"][0]
    lo, hi = cp(hits, len(mated))
    assert e["value"] == pytest.approx(hits / len(mated)) and e["ci_low"] == pytest.approx(lo, rel=1e-9)
    assert e["verdict"] == "supported" and e["trials_needed"] is None


def test_fmr_and_fnmr_claims_against_the_score_tables(world):
    folder = world["tmpl"]
    z = np.load(folder / "scores.npz")
    genuine = z["genuine"]
    for t in (0.3, 0.45):
        e = evaluate(folder, make_claims(fnmr=["0.5"], threshold=str(t)))["claims"][0]
        k = int(np.count_nonzero(genuine < np.float32(t)))
        assert (e["errors"], e["trials"]) == (k, genuine.size)
        assert e["ci_high"] == pytest.approx(cp(k, genuine.size)[1], rel=1e-9)
    # FMR at a tabulated threshold (FNMR at FMR 1%): the audit's own counts
    p = next(p for p in _results(folder)["verification"]["fnmr_at_fmr"] if p["measurable"])
    e = evaluate(folder, make_claims(fmr=["0.5"], threshold=repr(p["threshold"])))["claims"][0]
    assert (e["errors"], e["trials"]) == (p["fmr"]["errors"], p["fmr"]["trials"])
    assert e["verdict"] == "supported"
    # FMR between histogram edges: the interval runs from the count above T (lower end) to the count below
    t = p["threshold"] + 1e-5
    e = evaluate(folder, make_claims(fmr=["0.5"], threshold=repr(t)))["claims"][0]
    assert e["threshold"] <= t and "not a histogram edge" in e["note"]


def test_supported_at_most_2_5_percent_when_the_true_rate_equals_the_claim():
    """Simulation over many seeds, and the exact probability from the binomial."""
    from auditcore.intervals import rate
    for n, c in [(400, 0.01), (4000, 0.001), (1000, 0.05), (200, 0.3)]:
        supported = 0
        runs = 2000
        ks = np.random.default_rng(n).binomial(n, c, size=runs)
        for k in ks:
            r = rate(int(k), n)
            supported += verdict(r.ci_low, r.ci_high, c) == "supported"
        assert supported / runs <= 0.025 + 3 * math.sqrt(0.025 * 0.975 / runs)
        # exactly: P(upper bound <= c) summed over the binomial
        exact = sum(stats.binom.pmf(k, n, c) for k in range(n + 1) if rate(k, n).ci_high <= c)
        assert exact <= 0.025
        if n * c < 10:
            continue
        # and the rule is not vacuous: at a quarter of the claim, most runs are supported
        ks = np.random.default_rng(1).binomial(n, c / 4, size=200)
        rates = [rate(int(k), n) for k in ks]
        assert np.mean([verdict(r.ci_low, r.ci_high, c) == "supported" for r in rates]) > 0.5


# ----------------------------------------------------------------------------- trials needed
def test_trials_needed_zero_errors_is_3688_for_one_in_a_thousand():
    need = trials_needed(0, 1000, 0.001)
    assert need["trials"] == 3688 and need["to"] == "support"
    assert cp(0, 3688)[1] <= 0.001 < cp(0, 3687)[1]
    assert need["rule_of_3"] == 3000  # one-sided 95%: 3 / c


def test_trials_needed_real_valued_counts_against_scipy_beta():
    # observed 0.1%, claim 0.2%: the smallest n whose upper bound on 0.001 n errors is at most 0.002
    need = trials_needed(4, 4000, 0.002)
    n = need["trials"]
    assert 7000 < n < 8000 and need["to"] == "support"
    upper = lambda n, p=0.001: stats.beta.ppf(0.975, p * n + 1, n - p * n)
    assert upper(n) <= 0.002 < upper(n - 1)
    # with whole counts near that n the interval also lands below the claim (hand-worked: 8 of 8,000)
    assert cp(8, 8000)[1] <= 0.002 and cp(7, 7000)[1] > 0.002
    # to contradict: measured 1.25% (50 of 4,000), claim 1%
    need = trials_needed(50, 4000, 0.01)
    n = need["trials"]
    lower = lambda n, p=0.0125: stats.beta.ppf(0.025, p * n, n - p * n + 1)
    assert need["to"] == "contradict" and lower(n) > 0.01 >= lower(n - 1)
    # all errors: closed form, checked with scipy
    need = trials_needed(5, 5, 0.5)
    assert cp(need["trials"], need["trials"])[0] > 0.5 >= cp(need["trials"] - 1, need["trials"] - 1)[0]
    # the rate equals the claim: no number of trials settles it
    assert trials_needed(4, 4000, 0.001)["trials"] is None
    # an 'at least' claim on a success rate: read as misses <= 1 - c
    need = trials_needed(121, 4000, 0.96, at_least=True)
    assert need["to"] == "support" and need["trials"] == trials_needed(121, 4000, 0.04)["trials"]
    assert trials_needed(0, 0, 0.1) is None


def test_trials_needed_in_people_on_the_audit(world):
    folder = world["tmpl"]
    s = pd.read_parquet(folder / "searches.parquet")
    best = s.loc[~s.mated, "best_nonmate_score"].to_numpy(np.float32)
    t = float(np.sort(best)[::-1][3])  # 4 errors at this threshold
    k = int(np.count_nonzero(best >= np.float32(t)))
    e = evaluate(folder, [Claim("fpir", 2 * k / best.size, threshold=t)])["claims"][0]
    need = e["trials_needed"]
    assert e["verdict"] == "not shown" and need["trials"] == trials_needed(k, best.size, 2 * k / best.size)["trials"]
    per = best.size / s.loc[~s.mated, "subject_id"].nunique()
    assert need["people"] == math.ceil(need["trials"] / per)
    assert f"about {need['trials']:,} non-mated searches, of at least {need['people']:,} people" in e["sentence"]


# ----------------------------------------------------------------------------- groups
def _hand_built(tmp_path, rates: dict, threshold=0.5) -> str:
    """A results folder written by hand: one operating point, per-group FPIR at ``threshold``."""
    groups = {}
    for g, (k, n) in rates.items():
        lo, hi = cp(k, n)
        groups[g] = {"errors": k, "trials": n, "value": k / n, "ci": [lo, hi], "people": n // 2,
                     "interval_method": "clopper-pearson", "too_few": False}
    k_all, n_all = sum(k for k, _ in rates.values()), sum(n for _, n in rates.values())
    lo, hi = cp(k_all, n_all)
    results = {
        "faceaudit_version": "0", "input": {"score": "cosine"},
        "protocol": {"gallery_size": 1000, "n_mated_probes": 0, "n_nonmated_probes": n_all},
        "identification": {"operating_points": [{"target_fpir": 0.01, "threshold": threshold, "fpir": {
            "errors": k_all, "trials": n_all, "value": k_all / n_all, "ci_low": lo, "ci_high": hi}}],
            "curve": {"threshold": [0.0, 1.0]}},
        "demographics": {"threshold": threshold, "operating_fpir": 0.01, "confidence": 0.95,
                         "threshold_rule": "lowest threshold with FPIR <= 0.01 over everyone",
                         "analyses": [{"spec": "race", "rates": {"fpir": groups}}]}}
    folder = tmp_path / "hand"
    folder.mkdir(exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results))
    return folder


def test_per_group_verdicts_on_a_hand_built_audit(tmp_path):
    # A: 0 of 2,000 (upper 0.18%), B: 30 of 1,000 (lower 2.0%), C: 2 of 300 (upper 2.4%)
    folder = _hand_built(tmp_path, {"A": (0, 2000), "B": (30, 1000), "C": (2, 300)})
    claim = [Claim("fpir", 0.01, threshold=0.5)]
    e = evaluate(folder, claim, group="race")["claims"][0]
    g = {x["group"]: x for x in e["groups"]["groups"]}
    for name, (k, n) in {"A": (0, 2000), "B": (30, 1000), "C": (2, 300)}.items():
        assert g[name]["verdict"] == verdict(*cp(k, n), 0.01)
    assert [g[x]["verdict"] for x in "ABC"] == ["supported", "contradicted", "not shown"]
    assert e["verdict"] == "contradicted" and e["groups"]["failing"] == ["B"] and e["groups"]["not_shown"] == ["C"]
    assert "contradicted for B (3.00%, interval 2.03% to 4.26%); not shown for C (0.667%, interval 0.0808% to 2.39%)" in e["sentence"]
    assert g["C"]["trials_needed"]["trials"] == trials_needed(2, 300, 0.01)["trials"]
    # every group supported -> supported overall; one not shown -> not shown overall
    folder = _hand_built(tmp_path, {"A": (0, 2000), "B": (1, 3000)})
    assert evaluate(folder, claim, group="race")["claims"][0]["verdict"] == "supported"
    folder = _hand_built(tmp_path, {"A": (0, 2000), "B": (2, 300)})
    e = evaluate(folder, claim, group="race")["claims"][0]
    assert e["verdict"] == "not shown" and e["groups"]["not_shown"] == ["B"]
    # the pooled figure alone would be supported: the per-group test is stricter
    assert e["verdict_measured"] == "supported"
    # another threshold, or a column the audit did not group by: one line each
    with pytest.raises(InputError, match="per-group figures are at threshold 0.5"):
        evaluate(folder, [Claim("fpir", 0.01, threshold=0.6)], group="race")
    with pytest.raises(InputError, match="groups are by race, not 'sex'"):
        evaluate(folder, claim, group="sex")


def test_per_group_on_real_template_and_black_box_audits(world):
    for key in ("tmpl", "bb"):
        r = _results(world[key])
        demo = r.get("demographics") or r["demographics_from_lists"]
        t0 = demo["threshold"]
        e = evaluate(world[key], [Claim("fpir", 0.05, threshold=t0)], group="sex")["claims"][0]
        rates = demo["analyses"][0]["rates"]["fpir"]
        for x in e["groups"]["groups"]:
            assert [x["ci_low"], x["ci_high"]] == rates[x["group"]]["ci"]
            assert x["verdict"] == verdict(*rates[x["group"]]["ci"], 0.05)
        # FNIR per group at the demographics operating point
        e = evaluate(world[key], make_claims(fnir=["0.9"], at_fpir=str(demo["operating_fpir"])), group="sex")["claims"][0]
        assert {x["group"] for x in e["groups"]["groups"]} == {"F", "M"}


# ----------------------------------------------------------------------------- black box, refusals, gallery
def test_black_box_claims(world):
    bb = world["bb"]
    r = _results(bb)
    op = r["identification"]["operating_points"][1]
    e = evaluate(bb, [Claim("fpir", 0.05, threshold=op["threshold"])])["claims"][0]
    assert (e["errors"], e["trials"]) == (op["fpir"]["errors"], op["fpir"]["trials"])
    assert e["verdict"] == verdict(op["fpir"]["ci_low"], op["fpir"]["ci_high"], 0.05)
    # an untabulated threshold inside what the lists show: counted from the lists' table, equal to the template audit
    t = 0.7
    a = evaluate(bb, [Claim("fpir", 0.05, threshold=t)])["claims"][0]
    b = evaluate(world["tmpl"], [Claim("fpir", 0.05, threshold=t)])["claims"][0]
    assert (a["errors"], a["trials"]) == (b["errors"], b["trials"])
    with pytest.raises(InputError, match="did not measure FMR"):
        evaluate(bb, make_claims(fmr=["0.01"], threshold="0.7"))
    # lists cut at the system's own threshold (0.6): a claim with no threshold is tested as deployed, and
    # equals the template audit's figure at 0.6 (a non-mated search is a false positive when its list is not empty)
    cut = world["bb_cut"]
    sys_point = _results(cut)["identification"]["at_system_threshold"]
    e = evaluate(cut, make_claims(fpir=["0.5"]))["claims"][0]
    assert (e["errors"], e["trials"]) == (sys_point["fpir"]["errors"], sys_point["fpir"]["trials"])
    t = evaluate(world["tmpl"], make_claims(fpir=["0.5"], threshold="0.6"))["claims"][0]
    assert (e["errors"], e["trials"]) == (t["errors"], t["trials"])
    with pytest.raises(InputError, match="below every score the lists show .* the lists do not determine"):
        evaluate(cut, make_claims(fpir=["0.5"], threshold="0.55"))
    with pytest.raises(InputError, match="did not report FPIR 0.05; rerun faceaudit audit-lists with --fpir 0.05"):
        evaluate(bb, make_claims(fnir=["0.5"], at_fpir="0.05"))


def test_bad_claims_are_refused(world):
    for kwargs, msg in [({"fpir": ["1.5"], "threshold": "0.5"}, "between 0 and 1"),
                        ({"fpir": ["-0.1"], "threshold": "0.5"}, "between 0 and 1"),
                        ({"fpir": ["abc"], "threshold": "0.5"}, "cannot read 'abc'"),
                        ({"fpir": ["0.1"], "threshold": "nan"}, "not a finite number"),
                        ({}, "no claim given"),
                        ({"fpir": ["0.1"], "at_fpir": "0.01"}, "give --threshold"),
                        ({"rank1": ["0.9"], "threshold": "0.5"}, "no threshold")]:
        with pytest.raises(InputError, match=msg):
            make_claims(**kwargs)
    with pytest.raises(InputError, match="threshold 5 is outside the scores this audit observed"):
        evaluate(world["tmpl"], make_claims(fpir=["0.1"], threshold="5"))
    with pytest.raises(InputError, match="--distance is for a distance audit"):
        evaluate(world["tmpl"], make_claims(fpir=["0.1"], distance="0.6"))
    with pytest.raises(InputError, match="reports FNIR at ranks 1, 5, 10, 20, not rank 3"):
        evaluate(world["tmpl"], make_claims(fnir=["0.1"], at_fpir="0.01", rank=3))
    assert vc.parse_number("1,000,000", "x") == 1e6 and vc.parse_rate("1 in 1,000", "x") == 0.001
    assert vc.parse_rate("0.1%", "x") == pytest.approx(0.001) and vc.parse_rate("1/1000", "x") == 0.001


def test_operational_gallery_rule(world, tmp_path):
    folder = world["tmpl"]
    r = _results(folder)
    t = r["identification"]["operating_points"][1]["threshold"]
    g = r["protocol"]["gallery_size"]
    e = evaluate(folder, [Claim("fpir", 0.05, threshold=t)], operational_gallery_size=g / 0.9)["claims"][0]
    assert e["operational"]["meets_90_percent"] and e["verdict"] == e["verdict_measured"]
    e = evaluate(folder, [Claim("fpir", 0.05, threshold=t)], operational_gallery_size=g / 0.89)["claims"][0]
    assert e["operational"]["meets_90_percent"] is False and e["verdict"] == "not shown"
    assert "no scale section" in e["operational"]["reason"]
    # against a scale band (hand-built rows): estimable -> tested; 'cannot say' -> not shown
    res = dict(r)
    res["scale"] = {"assumptions": ["A1"], "extrapolation": [
        {"threshold": t, "gallery_size": 1e6, "fpir_lo": 0.02, "fpir_hi": 0.04, "fpir": 0.03, "estimable": True,
         "statement": "figure"},
        {"threshold": t, "gallery_size": 1e7, "fpir_lo": 0.05, "fpir_hi": 0.9, "fpir": None, "estimable": False,
         "statement": "cannot_say"},
        {"threshold": t, "gallery_size": 1e8, "fpir_lo": 0.3, "fpir_hi": 1.0, "fpir": None, "estimable": False,
         "statement": "at_least"}]}
    hand = tmp_path / "scaled"
    hand.mkdir()
    (hand / "results.json").write_text(json.dumps(res))
    for n, c, want in [(1e6, 0.05, "supported"), (1e6, 0.01, "contradicted"), (1e6, 0.03, "not shown"),
                       (1e7, 0.99, "not shown"), (1e8, 0.1, "contradicted"), (1e8, 0.5, "not shown"),
                       (3e6, 0.5, "not shown")]:
        e = evaluate(hand, [Claim("fpir", c, threshold=t)], operational_gallery_size=n)["claims"][0]
        assert e["operational"]["verdict"] == want and e["verdict"] == want, (n, c)
    assert "has no band at this threshold and 3,000,000 people" in e["operational"]["reason"]
    assert e["operational"]["assumptions"] == ["A1"]


def test_distance_audit_claims_use_distance(tmp_path):
    from faceaudit.audit import run_audit, write_results
    from faceaudit.data.evalset import validate
    from faceaudit.data.protocol import generate_protocol
    rng = np.random.default_rng(0)
    c = rng.standard_normal((150, 16))
    man = pd.DataFrame({"template_id": [f"t{i}" for i in range(450)],
                        "subject_id": np.repeat([f"p{i}" for i in range(150)], 3)})
    es = validate((np.repeat(c, 3, 0) + 0.5 * rng.standard_normal((450, 16))).astype(np.float32), man)
    folder = write_results(run_audit(es, generate_protocol(es, seed=0), score="neg_euclidean", top_k=5,
                                     fpir_targets=(0.1,)), tmp_path / "dist", report=False)
    s = pd.read_parquet(folder / "searches.parquet")
    dist = -s.loc[~s.mated, "best_nonmate_score"].to_numpy(np.float32)
    e = evaluate(folder, make_claims(fpir=["0.2"], distance="2.5"))["claims"][0]
    k = int(np.count_nonzero(dist <= np.float32(2.5)))  # a match: distance at most D
    assert (e["errors"], e["trials"]) == (k, dist.size) and e["ci_high"] == pytest.approx(cp(k, dist.size)[1])
    assert "at distance 2.5" in e["claim"] and "distance 2.5)" in e["sentence"]
    with pytest.raises(InputError, match="a distance audit: give --distance"):
        evaluate(folder, make_claims(fpir=["0.2"], threshold="2.5"))


def test_counts_include_searches_lost_to_failure_to_enrol(world, tmp_path):
    """At an untabulated threshold the counts come from searches.parquet, which holds no failed searches: they
    are added as the audit counts them (never a false positive; a miss if mated)."""
    import shutil
    folder = tmp_path / "fte"
    shutil.copytree(world["tmpl"], folder)
    r = _results(folder)
    r["failure_to_enrol"].update(failed_mated_searches=3, failed_nonmated_searches=5, counted_as_misses=True)
    (folder / "results.json").write_text(json.dumps(r))
    a = evaluate(world["tmpl"], make_claims(fpir=["0.5"], fnir=["0.9"], threshold="0.6123"))["claims"]
    b = evaluate(folder, make_claims(fpir=["0.5"], fnir=["0.9"], threshold="0.6123"))["claims"]
    assert (b[0]["errors"], b[0]["trials"]) == (a[0]["errors"], a[0]["trials"] + 5)
    assert (b[1]["errors"], b[1]["trials"]) == (a[1]["errors"] + 3, a[1]["trials"] + 3)

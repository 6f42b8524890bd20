"""flagaudit: every rate against a hand computation, bootstrap coverage with synthetic flaggers
of known rates, systems under test, suites, volume and network figures."""

from __future__ import annotations

import json
import math

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from auditcore.errors import InputError
from auditcore.intervals import clopper_pearson
from flagaudit import metrics as fm
from flagaudit import network as net
from flagaudit import volume as vol
from flagaudit.audit import run_audit, write_results
from flagaudit.suites import COLUMNS, expand_benign_traps, load_benign_traps, load_suites, read_benign_trap_templates
from flagaudit.systems import Flags, KeywordFlagger, SkopsModel, read_flags

from conftest import shared_data


def small_suite() -> pd.DataFrame:
    """12 cases, hand-checkable: 3 benign templates (2 tests), 1 threat template, 1 hateful."""
    rows = [
        # case, functionality, target, cluster, role
        ("a1", "t_opinion", "Mexicans", "s:english:A", "benign"),
        ("a2", "t_opinion", "Haitians", "s:english:A", "benign"),
        ("a3", "t_opinion", "none", "s:english:A", "benign"),
        ("b1", "t_opinion", "Mexicans", "s:english:B", "benign"),
        ("b2", "t_opinion", "Haitians", "s:english:B", "benign"),
        ("c1", "t_hyper", "none", "s:spanish:C", "benign"),
        ("c2", "t_hyper", "none", "s:spanish:C", "benign"),
        ("c3", "t_hyper", "Mexicans", "s:spanish:C", "benign"),
        ("d1", "threat_dir_h", "Mexicans", "s:english:D", "threat"),
        ("d2", "threat_dir_h", "Haitians", "s:english:D", "threat"),
        ("d3", "threat_dir_h", "none", "s:english:D", "threat"),
        ("e1", "derog_h", "Haitians", "s:english:E", "hateful"),
    ]
    df = pd.DataFrame(rows, columns=["case_id", "functionality", "target", "cluster", "role"])
    df["suite"] = "s"
    df["language"] = df["cluster"].str.split(":").str[1]
    df["text"] = df["case_id"]
    return df[COLUMNS]


FLAGS = np.array([1, 1, 0,  0, 1,  1, 0, 0,  1, 0, 0,  1], dtype=bool)


def test_rates_match_hand_computation():
    cases = small_suite()
    bs = fm.Bootstrap.over(cases["cluster"], n_boot=300, seed=1)
    m = fm.flag_metrics(cases, FLAGS, bs=bs, min_trials=1)
    ff = m["false_flag"]
    # benign: a1 a2 b2 c1 flagged of 8
    assert (ff["overall"]["errors"], ff["overall"]["trials"], ff["overall"]["templates"]) == (4, 8, 3)
    assert ff["overall"]["value"] == 0.5
    assert ff["functionality"]["groups"]["t_opinion"]["errors"] == 3
    assert ff["functionality"]["groups"]["t_opinion"]["trials"] == 5
    assert ff["functionality"]["groups"]["t_hyper"]["value"] == pytest.approx(1 / 3)
    # targets among benign: Mexicans a1(1) b1(0) c3(0) -> 1/3; Haitians a2(1) b2(1) -> 2/2; none a3 c1 c2 -> 1/3
    g = ff["target"]["groups"]
    assert (g["Mexicans"]["errors"], g["Mexicans"]["trials"]) == (1, 3)
    assert (g["Haitians"]["errors"], g["Haitians"]["trials"]) == (2, 2)
    assert (g["none"]["errors"], g["none"]["trials"]) == (1, 3)
    # language: english a1 a2 a3 b1 b2 -> 3/5; spanish c1 c2 c3 -> 1/3
    assert ff["language"]["groups"]["english"]["value"] == pytest.approx(0.6)
    assert ff["language"]["groups"]["spanish"]["value"] == pytest.approx(1 / 3)
    # differential on target: 'none' is not ranked -> Haitians / Mexicans = 1 / (1/3) = 3, difference 2/3
    d = ff["target"]["differential"]
    assert d["ranked_groups"] == ["Haitians", "Mexicans"]
    assert d["max_min_ratio"]["value"] == pytest.approx(3.0)
    assert d["max_difference"]["value"] == pytest.approx(2 / 3)
    assert (d["highest"], d["lowest"]) == ("Haitians", "Mexicans")
    # miss: threat d2 d3 not flagged -> 2/3; hateful e1 flagged 1/1
    assert (m["miss"]["overall"]["errors"], m["miss"]["overall"]["trials"]) == (2, 3)
    assert m["hateful_flag"]["overall"]["value"] == 1.0
    # intervals: the union of Clopper-Pearson and the bootstrap interval
    lo, hi = clopper_pearson(4, 8)
    o = ff["overall"]
    assert (o["cp_low"], o["cp_high"]) == pytest.approx((lo, hi))
    assert o["ci_low"] == min(lo, o["boot_low"]) and o["ci_high"] == max(hi, o["boot_high"])


def test_bootstrap_interval_matches_brute_force_resampling():
    cases = small_suite()
    bs = fm.Bootstrap.over(cases["cluster"], n_boot=400, seed=3)
    m = fm.flag_metrics(cases, FLAGS, bs=bs, min_trials=1)
    names, codes = np.unique(cases["cluster"], return_inverse=True)
    benign = (cases["role"] == "benign").to_numpy()
    rates = []
    for w in bs.weights:  # each resample: template multiplicities
        e = sum(w[codes[i]] for i in range(len(cases)) if benign[i] and FLAGS[i])
        t = sum(w[codes[i]] for i in range(len(cases)) if benign[i])
        rates.append(e / t if t else np.nan)
    rates = np.sort(np.array(rates)[~np.isnan(rates)])
    k_lo = math.ceil(0.025 * rates.size) - 1
    k_hi = math.ceil(0.975 * rates.size) - 1
    assert m["false_flag"]["overall"]["boot_low"] == pytest.approx(rates[k_lo])
    assert m["false_flag"]["overall"]["boot_high"] == pytest.approx(rates[k_hi])


def test_undefined_rate_is_null_not_zero():
    cases = small_suite()
    cases = cases[cases["role"] == "benign"].reset_index(drop=True)
    bs = fm.Bootstrap.over(cases["cluster"], n_boot=50)
    m = fm.flag_metrics(cases, np.zeros(len(cases), bool), bs=bs)
    assert m["miss"]["overall"]["trials"] == 0 and m["miss"]["overall"]["value"] is None
    # nothing flagged: the bootstrap collapses to [0, 0] but the reported interval keeps Clopper-Pearson's width
    o = m["false_flag"]["overall"]
    assert o["value"] == 0 and o["boot_high"] == 0 and o["ci_high"] == pytest.approx(clopper_pearson(0, 8)[1])


def _clustered_flags(rng, n_templates, per_template, p, concentration):
    q = rng.beta(p * concentration, (1 - p) * concentration, size=n_templates)  # template-level rates, mean p
    flagged = rng.random((n_templates, per_template)) < q[:, None]
    return flagged.ravel()


@pytest.mark.parametrize("p", [0.1, 0.3])
def test_template_bootstrap_coverage_with_known_rate(p):
    """Synthetic flagger whose rate varies by template (mean p): the reported interval covers p
    at about the nominal 95%; the naive Clopper-Pearson interval, which ignores clustering, does
    not (so this test would catch an interval that ignores templates)."""
    rng = np.random.default_rng(7)
    n_templates, per = 30, 8
    cases = pd.DataFrame({"case_id": [f"c{i}" for i in range(n_templates * per)], "suite": "syn",
                          "language": "english", "functionality": "t", "target": "none",
                          "cluster": np.repeat([f"syn:english:{t}" for t in range(n_templates)], per),
                          "role": "benign", "text": ""})
    bs = fm.Bootstrap.over(cases["cluster"], n_boot=400, seed=11)
    reps, inside, inside_cp = 200, 0, 0
    for _ in range(reps):
        f = _clustered_flags(rng, n_templates, per, p, concentration=3.0)
        r = fm.rate_table(cases, f, np.ones(len(cases), bool), None, bs)
        inside += r["ci_low"] <= p <= r["ci_high"]
        inside_cp += r["cp_low"] <= p <= r["cp_high"]
    assert inside / reps >= 0.90, inside / reps
    assert inside_cp / reps < 0.85, inside_cp / reps  # clustering matters at this design


def test_independent_flagger_coverage_and_rates():
    """Cases independent (no template effect): coverage near nominal, not wildly conservative."""
    rng = np.random.default_rng(3)
    n_templates, per, p = 40, 5, 0.2
    cases = pd.DataFrame({"case_id": np.arange(n_templates * per).astype(str), "suite": "syn", "language": "english",
                          "functionality": "t", "target": "none",
                          "cluster": np.repeat(np.arange(n_templates).astype(str), per), "role": "benign", "text": ""})
    bs = fm.Bootstrap.over(cases["cluster"], n_boot=400, seed=5)
    inside = 0
    for _ in range(200):
        f = rng.random(len(cases)) < p
        r = fm.rate_table(cases, f, np.ones(len(cases), bool), None, bs)
        inside += r["ci_low"] <= p <= r["ci_high"]
    assert 0.92 <= inside / 200 <= 1.0


def test_threshold_at_target_ffr_brute_force():
    rng = np.random.default_rng(0)
    score = np.round(rng.random(200) * 20) / 20  # many ties
    role = np.where(rng.random(200) < 0.7, "benign", "threat")
    benign, threat = role == "benign", role == "threat"
    n = benign.sum()
    for target in (0.0, 0.01, 0.05, 0.1, 0.29, 0.5, 1.0):
        t = fm.threshold_at_ffr(score, benign, threat, target)
        k = math.floor(round(target * 100) * n / 100)
        cands = sorted(set(score.tolist()) | {float(np.nextafter(score.max(), np.inf))})
        ok = [c for c in cands if (score[benign] >= c).sum() <= k]
        assert t == min(ok)
    c = fm.tradeoff_curve(score, benign, threat)
    for thr, ffc, tfc in zip(c["threshold"], c["false_flags"], c["threats_flagged"]):
        assert ffc == (score[benign] >= thr).sum() and tfc == (score[threat] >= thr).sum()


# ------------------------------------------------------------------------------ systems

def test_keyword_flagger_terms_weights_regex_threshold():
    kw = KeywordFlagger.from_lines([
        "# comment", "threshold: 1.5   # two weak or one strong", "kill", "[0.5] ICE", "[0.5] re:\\bdeport\\w*",
        "cut their throats", "[2] bomb"])
    texts = ["This exam is killing me", "I will kill", "ICE deported him", "ICE again", "police", "Cut  their throats",
             "a BOMB", "skill"]
    s = kw.scores(texts)
    assert s.tolist() == [0, 1, 1, 0.5, 0, 1, 2, 0]  # whole words: 'killing' and 'skill' are not 'kill'
    assert kw.run(texts).flagged.tolist() == [False, False, False, False, False, False, True, False]
    assert kw.threshold == 1.5


@pytest.mark.parametrize("lines, msg", [
    (["re:(unclosed"], "line 1: regular expression does not compile"),
    (["threshold: lots"], "threshold is not a number"),
    (["[x] term"], "weight is a number"),
    (["# only comments"], "lists no terms"),
])
def test_keyword_file_errors(lines, msg):
    with pytest.raises(InputError, match=msg.replace("(", r"\(")):
        KeywordFlagger.from_lines(lines, source="k.txt")


def test_read_flags_aligns_and_rejects_bad_files(tmp_path):
    ids = ["x:1", "x:2", "x:3"]
    p = tmp_path / "f.csv"
    p.write_text("case_id,flagged,score\nx:3,yes,0.9\nx:1,0,0.1\nx:2,TRUE,0.7\n")
    f = read_flags(p, ids)
    assert f.flagged.tolist() == [False, True, True] and f.score.tolist() == [0.1, 0.7, 0.9]
    pq = tmp_path / "f.parquet"
    pd.DataFrame({"case_id": ids, "flagged": [True, False, True]}).to_parquet(pq)
    assert read_flags(pq, ids).flagged.tolist() == [True, False, True]
    cases = {
        "missing.csv": ("case_id,flagged\nx:1,1\nx:2,0\n", "1 suite case\\(s\\) have no flag, first 'x:3'"),
        "extra.csv": ("case_id,flagged\nx:1,1\nx:2,0\nx:3,0\nx:9,1\n", "not in the suite"),
        "dup.csv": ("case_id,flagged\nx:1,1\nx:1,0\nx:3,0\n", "appears more than once"),
        "bad.csv": ("case_id,flagged\nx:1,maybe\nx:2,0\nx:3,0\n", "row 2: flagged must be"),
        "nocol.csv": ("case_id,label\nx:1,1\n", "missing required column flagged"),
        "score.csv": ("case_id,flagged,score\nx:1,1,high\nx:2,0,1\nx:3,0,1\n", "score is not a number"),
    }
    for name, (text, msg) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(InputError, match=msg):
            read_flags(tmp_path / name, ids)


def _train_pipeline():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    texts = ["I will kill you", "we will shoot them all", "lovely day", "going to the rally", "I will hurt them",
             "pray for peace", "they must die", "my visa arrived"]
    y = [1, 1, 0, 0, 1, 0, 1, 0]
    return make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, y)


def test_skops_model_loads_safely_and_scores(tmp_path):
    sio = pytest.importorskip("skops.io")
    model = _train_pipeline()
    path = tmp_path / "m.skops"
    sio.dump(model, path)
    sm = SkopsModel.from_file(path)
    texts = ["I will kill them", "lovely rally"]
    f = sm.run(texts)
    assert f.flagged.tolist() == model.predict(texts).astype(bool).tolist()
    assert f.score == pytest.approx(model.predict_proba(texts)[:, 1])
    # a pickle (or anything not skops) is refused, never unpickled
    import pickle
    bad = tmp_path / "m.pkl"
    bad.write_bytes(pickle.dumps(model))
    with pytest.raises(InputError, match="not a skops model file"):
        SkopsModel.from_file(bad)


def test_skops_refuses_untrusted_types(tmp_path):
    sio = pytest.importorskip("skops.io")
    from sklearn.preprocessing import FunctionTransformer

    path = tmp_path / "evil.skops"
    sio.dump(FunctionTransformer(func=json.dumps), path)  # asks for json.dumps: not trusted
    with pytest.raises(InputError, match="refused: .*json"):
        SkopsModel.from_file(path)


class _WrongShape:
    def predict(self, texts):
        return np.zeros((len(texts), 2))


def test_model_with_wrong_output_shape():
    with pytest.raises(InputError, match="shape \\(3, 2\\), expected \\(3,\\)"):
        SkopsModel(_WrongShape(), "m.skops").run(["a", "b", "c"])


# ------------------------------------------------------------------------------ suites

def test_benign_traps_expansion_by_construction():
    templates = [{"templ_id": "en-x-1", "language": "english", "functionality": "f", "target": "",
                  "template": "{AGENCY} lost my file. {TASK} is killing me."},
                 {"templ_id": "en-x-2", "language": "english", "functionality": "f", "target": "Muslims",
                  "template": "Fasting today."}]
    placeholders = [{"language": "english", "slot": "AGENCY", "value": v, "target": t}
                    for v, t in (("ICE", ""), ("the Border Patrol", ""), ("USCIS", ""))]
    placeholders += [{"language": "english", "slot": "TASK", "value": v, "target": ""} for v in ("this exam", "work")]
    df = expand_benign_traps(templates, placeholders)
    assert df["text"].tolist() == ["ICE lost my file. This exam is killing me.",
                                   "The Border Patrol lost my file. Work is killing me.",
                                   "USCIS lost my file. This exam is killing me.", "Fasting today."]
    assert (df["role"] == "benign").all() and df["target"].tolist() == ["none"] * 3 + ["Muslims"]
    assert df["cluster"].nunique() == 2


ORIGINAL_TESTS = ("bt_policy_opinion", "bt_hyperbole", "bt_religious", "bt_protest", "bt_own_status",
                  "bt_quoted_threat", "bt_agency_criticism")


def test_shipped_benign_traps_suite_and_review():
    df, prov = load_benign_traps()
    templates, _ = read_benign_trap_templates()
    assert {"english", "spanish"} <= set(df["language"])  # more languages and tests: tests/test_benign_traps_suite.py
    assert df["functionality"].nunique() >= 7 and df["case_id"].is_unique
    assert not df["text"].str.contains(r"[{}]").any()  # every placeholder filled
    # every template of the first seven tests, and so every case, has a recorded independent second-pass
    # review of exactly the texts shipped now (a template or placeholder changed after its review fails
    # here); the machine-drafted ones awaiting review: tests/test_benign_traps_suite.py
    templates = [t for t in templates if t["functionality"] in ORIGINAL_TESTS and t["language"] in ("english", "spanish")
                 and int(t["templ_id"].rsplit("-", 1)[1]) <= 7]
    df = df[df["cluster"].isin([f"benign-traps:{t['language']}:{t['templ_id']}" for t in templates])]
    import hashlib
    from importlib import resources
    review = pd.read_csv(resources.files("flagaudit").joinpath("suites", "benign_traps", "review.csv").open(),
                         dtype=str, keep_default_na=False)
    assert set(review["stage"]) == {"author self-review", "second pass"}
    assert set(review["result"]) <= {"pass", "revised", "removed"}
    second = review[review["stage"] == "second pass"]
    assert len(second) == 98 and sorted(df["functionality"].unique()) == sorted(ORIGINAL_TESTS)
    assert sorted(second["templ_id"]) == sorted(t["templ_id"] for t in templates)  # one each
    assert not second["reviewer"].str.contains("author").any()
    assert set(second["result"]) <= {"pass", "revised"}  # nothing shipped that review removed
    covered = []
    for _, r in second.iterrows():
        t = next(t for t in templates if t["templ_id"] == r["templ_id"])
        g = df[df["cluster"] == f"benign-traps:{t['language']}:{r['templ_id']}"]
        assert r["case_ids"].split() == [c.split(":", 1)[1] for c in g["case_id"]], r["templ_id"]
        assert r["texts_sha256"] == hashlib.sha256("\n".join(g["text"]).encode("utf-8")).hexdigest(), \
            f"{r['templ_id']} changed after its review: review it again and record a new line"
        assert r["notes"].strip() and r["rules_checked"].startswith("G1-G6")
        covered += r["case_ids"].split()
    assert sorted(covered) == sorted(c.split(":", 1)[1] for c in df["case_id"])  # every case reviewed once
    assert prov.licence


def test_unknown_suite_and_missing_data():
    with pytest.raises(InputError, match="unknown suite 'hatecheq'"):
        load_suites(["hatecheq"])
    with pytest.raises(InputError, match="give --data"):
        load_suites(["hatecheck"])


@pytest.mark.skipif(shared_data() is None or not (shared_data() / "hatecheck").is_dir(),
                    reason="HateCheck data not found (../shared/data/hatecheck or $FACEAUDIT_DATA)")
def test_hatecheck_and_mhc_loaders():
    df, _ = load_suites(["hatecheck", "mhc-spanish"], shared_data())
    hc = df[df["suite"] == "hatecheck"]
    assert len(hc) == 3728 and hc["functionality"].nunique() == 29
    assert (hc["role"] == "threat").sum() == 133 + 140
    raw = pd.read_csv(shared_data() / "hatecheck" / "test_suite_cases.csv")
    assert (hc["role"] == "benign").sum() == (raw["label_gold"] == "non-hateful").sum()
    assert hc["cluster"].nunique() == raw["templ_id"].nunique()
    es = df[df["suite"] == "mhc"]
    assert len(es) == 3745 and set(es["language"]) == {"spanish"} and (es["role"] == "threat").sum() == 285


# ------------------------------------------------------------------------------ volume, network

def test_volume_hand_computation_and_monte_carlo():
    ffr = {"value": 0.02, "ci_low": 0.01, "ci_high": 0.04, "trials": 500}
    miss = {"value": 0.3, "ci_low": 0.2, "ci_high": 0.4, "trials": 100}
    r = vol.volume_row(1_000_000, 0.001, ffr, miss)
    assert r["false_flags"] == pytest.approx(999_000 * 0.02)
    assert (r["false_flags_low"], r["false_flags_high"]) == pytest.approx((9_990, 39_960))
    assert r["true_flags"] == pytest.approx(1000 * 0.7)
    ppv = 0.001 * 0.7 / (0.001 * 0.7 + 0.999 * 0.02)
    assert r["ppv"] == pytest.approx(ppv)
    assert r["ppv_low"] == pytest.approx(0.001 * 0.6 / (0.001 * 0.6 + 0.999 * 0.04))
    assert r["ppv_high"] == pytest.approx(0.001 * 0.8 / (0.001 * 0.8 + 0.999 * 0.01))
    assert vol.ppv_monte_carlo(0.05, 0.02, 0.3, 2_000_000, rng=1) == pytest.approx(vol.ppv(0.05, 0.02, 0.3), abs=0.005)
    # miss rate unknown: only an upper bound
    r = vol.volume_row(1000, 0.01, ffr, {"trials": 0, "value": None})
    assert r["ppv"] is None and r["ppv_low"] == 0.0 and r["ppv_high"] == pytest.approx(0.01 / (0.01 + 0.99 * 0.01))
    for bad in (0, 1, -0.1, 1.5):
        with pytest.raises(InputError, match="base rate must be strictly between 0 and 1"):
            vol.check_base_rates([bad])


def test_volume_sentences_follow_from_intervals():
    ffr = {"value": 0.02, "ci_low": 0.01, "ci_high": 0.04, "trials": 500}
    miss = {"value": 0.3, "ci_low": 0.2, "ci_high": 0.4, "trials": 100}
    t = vol.volume_table(ffr, miss, 1_000_000, [0.001])
    s = vol.sentences(t)[0]
    assert "between 9,990 and 39,960 posts a day for nothing" in s
    # best case (f low, m low): wrong per right = 0.999 * 0.01 / (0.001 * 0.8) = 12.49 -> "at least 12"
    assert "at least 12 wrong flags for every right one" in s
    assert "between 1.5% and 7.4% of its flags would be right" in s


def test_network_reach_against_hand_counts(tmp_path):
    g = nx.path_graph(7)  # 0-1-2-3-4-5-6
    r = net.reach(g, n_seeds=7, seed=0)
    # accounts within h hops (author excluded) of each node of a 7-path, by hand
    within = {1: [1, 2, 2, 2, 2, 2, 1], 2: [2, 3, 4, 4, 4, 3, 2], 3: [3, 4, 5, 6, 5, 4, 3]}
    for h, counts in within.items():
        assert r["hops"][str(h)]["mean"] == pytest.approx(np.mean(counts))
    # block BFS by sparse products == networkx's breadth-first search, on a random graph
    rg = nx.gnm_random_graph(300, 700, seed=2)
    r = net.reach(rg, n_seeds=50, seed=4, chunk=7)
    nodes = list(rg.nodes())
    picks = np.random.default_rng(4).choice(len(nodes), size=50, replace=False)
    for h in (1, 2, 3):
        brute = [sum(1 for d in nx.single_source_shortest_path_length(rg, nodes[k], cutoff=h).values() if d >= 1)
                 for k in picks]
        assert r["hops"][str(h)]["mean"] == pytest.approx(np.mean(brute))
        assert r["hops"][str(h)]["max"] == max(brute)
    p = tmp_path / "edges.txt"
    p.write_text("# a comment\nsource,target\nalice,bob\nbob carol\n")
    g2 = net.read_edge_list(p)
    assert sorted(g2.nodes()) == ["alice", "bob", "carol"] and g2.number_of_edges() == 2
    (tmp_path / "bad.txt").write_text("alice\n")
    with pytest.raises(InputError, match="line 1: an edge needs two account ids"):
        net.read_edge_list(tmp_path / "bad.txt")
    rg = net.random_graph(10, n_nodes=4000, seed=1)
    mean_deg = 2 * rg.number_of_edges() / rg.number_of_nodes()
    assert abs(mean_deg - 10) < 0.5
    pd_ = net.per_day({"n_nodes": 100, "hops": {"1": {"mean": 3.0}}}, 1, 10, 50)
    assert pd_["1"] == {"low": 3.0, "value": 30.0, "high": 150.0}  # list entries: not capped


def test_run_audit_writes_folder(tmp_path):
    cases = small_suite()
    fa = run_audit(cases, Flags(FLAGS, np.linspace(0, 1, len(cases)), 0.5, "test"), [], system="test",
                   base_rates=[0.01], mean_degree=4, graph_nodes=300, n_boot=100, min_trials=1)
    out = write_results(fa, tmp_path / "res")
    res = json.loads((out / "results.json").read_text())
    assert res["rates"]["false_flag"]["overall"]["errors"] == 4
    assert res["scores"]["operating_points"][0]["threshold"] is not None
    assert res["network"]["hops"]["1"]["mean"] > 0
    assert "<h2>Network expansion</h2>" in (out / "report.html").read_text()
    back = pd.read_parquet(out / "cases.parquet")
    assert back["flagged"].tolist() == FLAGS.tolist()
    with pytest.raises(InputError, match="not empty"):
        write_results(fa, tmp_path / "res")


def test_target_spelling_and_report_claims_follow_intervals():
    from flagaudit.report import _ratio_text
    from flagaudit.suites import canonical_target

    assert [canonical_target(x) for x in ("jews", "Jewish people", "Black people", "immigrant", None, " ")] == \
        ["Jews", "Jews", "black people", "immigrants", "none", "none"]
    groups = {"a": {"value": 0.3}, "b": {"value": 0.1}}
    base = {"highest": "a", "lowest": "b", "ranked_groups": ["a", "b"], "min_trials": 20}
    no = _ratio_text({**base, "max_difference": {"value": 0.2, "ci_low": 0.0, "ci_high": 0.4},
                      "max_min_ratio": {"value": 3.0, "ci_low": 0.8, "ci_high": 9.0}}, "target groups", groups)
    assert "no difference between them is established" in no and "times" not in no
    yes = _ratio_text({**base, "max_difference": {"value": 0.2, "ci_low": 0.05, "ci_high": 0.4},
                       "max_min_ratio": {"value": 3.0, "ci_low": 1.27, "ci_high": 9.0}}, "target groups", groups)
    assert "differ by at least 5.0 percentage points" in yes and "at least 1.2 times as often" in yes


def test_groups_compared_only_within_a_suite_and_test_names():
    from flagaudit.report import test_name

    rows = []
    for suite, groups in (("benign-traps", ("Mexicans", "Haitians")), ("hatecheck", ("women", "Mexicans", "gay people"))):
        for t in range(30):
            g = groups[t % len(groups)]
            rows.append({"case_id": f"{suite}:{t}", "suite": suite, "language": "english", "functionality": "f",
                         "target": g, "cluster": f"{suite}:{t}", "role": "benign", "text": "x"})
    cases = pd.DataFrame(rows)
    flagged = np.arange(len(cases)) % 3 == 0
    bs = fm.Bootstrap.over(cases["cluster"].to_numpy(), n_boot=50, seed=0)
    r = fm.flag_metrics(cases, flagged, bs=bs, min_trials=1)["false_flag"]
    within = r["target_within_suite"]
    assert set(within["benign-traps"]["groups"]) == {"Mexicans", "Haitians"}
    assert set(within["hatecheck"]["groups"]) == {"women", "Mexicans", "gay people"}
    # each suite's Mexicans counted on that suite's cases only
    m = cases[(cases["suite"] == "hatecheck") & (cases["target"] == "Mexicans")]
    assert within["hatecheck"]["groups"]["Mexicans"]["errors"] == int(flagged[m.index].sum())
    # the stated family: pairs within each suite (1 + 3) for targets, none for one language, 1 suite pair
    d = within["hatecheck"]["differential"]
    assert d["comparisons"] == 1 + 3 + 1 and d["stated_in_report"]
    assert not r["target"]["differential"].get("stated_in_report")
    assert test_name("counter_ref_nh") == "counter-speech referring to hate"
    assert test_name("bt_news_report") == "news report" and test_name("xyz_thing_nh") == "xyz thing (not hateful)"

"""faceaudit compare: McNemar against scipy's binomial test, the subject bootstrap against known
differences, the paired figures against the audits' own, refusals, the CLI in a terminal."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import REPO
from scipy import stats
from typer.testing import CliRunner

from auditcore.errors import InputError
from faceaudit.analyses.compare import compare
from faceaudit.audit import run_audit, write_results
from faceaudit.cli import app
from faceaudit.data.evalset import validate
from faceaudit.data.protocol import generate_protocol
from faceaudit.metrics import paired
from faceaudit.metrics.identification import threshold_at_fpir


@pytest.mark.parametrize("b,c", [(8, 3), (0, 0), (0, 9), (5, 5), (1, 12), (40, 61), (300, 250)])
def test_mcnemar_exact_equals_scipy_binomtest(b, c):
    expected = 1.0 if b + c == 0 else stats.binomtest(b, b + c, 0.5).pvalue
    assert paired.mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12)


def test_mcnemar_by_hand():
    # 8 vs 3 discordant: 2 * P(X <= 3), X ~ Bin(11, 1/2) = 2 * (1 + 11 + 55 + 165) / 2048
    assert paired.mcnemar_exact(8, 3) == pytest.approx(464 / 2048)
    assert paired.mcnemar_exact(3, 8) == paired.mcnemar_exact(8, 3)
    assert paired.discordant([1, 1, 0, 0, 1], [1, 0, 1, 0, 0]) == (2, 1)


def test_subject_bootstrap_covers_a_known_difference():
    rng = np.random.default_rng(0)
    n, reps, covered = 1000, 30, 0
    for r in range(reps):
        a = rng.random(n) < 0.30
        b = rng.random(n) < 0.20
        d = paired.subject_bootstrap_difference(a, b, np.arange(n), n_boot=300, seed=r)
        assert d["difference"] == pytest.approx(a.mean() - b.mean())
        covered += d["ci"][0] <= 0.10 <= d["ci"][1]
    assert covered >= 0.85 * reps  # nominal 95%
    # width close to the normal approximation for independent trials
    se = np.sqrt((0.3 * 0.7 + 0.2 * 0.8) / n)
    assert (d["ci"][1] - d["ci"][0]) == pytest.approx(2 * 1.96 * se, rel=0.2)


def test_subject_bootstrap_widens_for_clustered_searches():
    # 300 people x 6 searches; a person's errors share one draw: the effective sample is 300 people
    rng = np.random.default_rng(1)
    subj = np.repeat(np.arange(300), 6)
    hard_a = np.repeat(rng.random(300) < 0.3, 6)
    hard_b = np.repeat(rng.random(300) < 0.2, 6)
    d = paired.subject_bootstrap_difference(hard_a, hard_b, subj, n_boot=800)
    iid = paired.subject_bootstrap_difference(hard_a, hard_b, np.arange(subj.size), n_boot=800)
    assert (d["ci"][1] - d["ci"][0]) > 2 * (iid["ci"][1] - iid["ci"][0])


def test_weighted_threshold_equals_the_rule_on_repeated_searches():
    rng = np.random.default_rng(2)
    best = rng.integers(0, 30, 200).astype(np.float32) / 7   # ties
    mult = rng.integers(0, 4, 200)                             # bootstrap multiplicities
    u, inv = np.unique(best, return_inverse=True)
    counts = np.bincount(u.size - 1 - inv, mult, u.size)
    for target in (0.0, 0.01, 0.05, 0.2, 0.5, 0.99):
        expected = threshold_at_fpir(np.repeat(best, mult), target).threshold
        assert paired.weighted_threshold_at_fpir(u[::-1], counts, target) == expected


# ------------------------------------------------------------------ comparing audits
def _population(noise: float, seed: int = 0, n_subj: int = 240, per: int = 3, dim: int = 24):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_subj, dim))
    sex = np.repeat(rng.choice(["F", "M"], n_subj), per)
    man = pd.DataFrame({"template_id": [f"t{i:05d}" for i in range(n_subj * per)],
                        "subject_id": np.repeat([f"p{i:04d}" for i in range(n_subj)], per), "sex": sex})
    x = np.repeat(centres, per, axis=0) + noise * np.random.default_rng(seed + 100).standard_normal((n_subj * per, dim))
    return validate(x.astype(np.float32), man)


def _audit(tmp_path, name, noise, seed=0, protocol_seed=0, group_by=True):
    from faceaudit.analyses.demographics import add_demographics
    es = _population(noise, seed)
    audit = run_audit(es, generate_protocol(es, seed=protocol_seed), score="cosine")
    if group_by:
        add_demographics(audit, ["sex"], n_boot=200)
    return write_results(audit, tmp_path / name, report=False)


def test_compare_pairs_the_audits_figures(tmp_path):
    a = _audit(tmp_path, "a", 0.8, seed=0)
    b = _audit(tmp_path, "b", 0.95, seed=7)  # same people and ids, other noise: another "system"
    res = compare([a, b], n_boot=300)
    ra, rb = (json.loads((p / "results.json").read_text()) for p in (a, b))
    sa, sb = pd.read_parquet(a / "searches.parquet"), pd.read_parquet(b / "searches.parquet")
    for k, target in enumerate((0.1, 0.01, 0.001)):
        # each system's rates at its operating point are its audit's own counts
        for sys_res, audit in zip(res["systems"], (ra, rb)):
            op = audit["identification"]["operating_points"][k]
            assert sys_res["operating_points"][k]["fnir"]["errors"] == op["fnir"]["1"]["errors"]
            assert sys_res["operating_points"][k]["fpir"]["errors"] == op["fpir"]["errors"]
        # discordant counts recomputed independently from the two tables
        ta = ra["identification"]["operating_points"][k]["threshold"]
        tb = rb["identification"]["operating_points"][k]["threshold"]
        m = sa.mated.to_numpy()
        miss_a = ((sa.mate_score < ta) | (sa.mate_rank > 1)).to_numpy()[m]
        sb2 = sb.set_index("template_id").loc[sa.template_id]
        miss_b = ((sb2.mate_score < tb) | (sb2.mate_rank > 1)).to_numpy()[m]
        f = res["pairs"][0]["operating_points"][k]["fnir_rank1"]
        assert (f["only_a_wrong"], f["only_b_wrong"]) == (int((miss_a & ~miss_b).sum()), int((~miss_a & miss_b).sum()))
        assert f["mcnemar_p"] == pytest.approx(stats.binomtest(f["only_a_wrong"], f["only_a_wrong"] + f["only_b_wrong"]).pvalue
                                               if f["only_a_wrong"] + f["only_b_wrong"] else 1.0)
        assert f["difference"] == pytest.approx(miss_a.mean() - miss_b.mean())
        lo, hi = f["ci"]
        assert lo <= f["difference"] <= hi
        # the interval is from people: per-person counts recomputed with pandas, the bootstrap's beside it
        from auditcore.intervals import paired_difference
        from faceaudit.analyses.compare import PEOPLE_CI_METHOD
        per = (pd.DataFrame({"s": sa.subject_id.to_numpy()[m], "a": miss_a, "b": miss_b})
               .groupby("s").agg(a=("a", "sum"), b=("b", "sum"), n=("a", "size")))
        want = paired_difference(per.a, per.b, per.n)
        assert f["ci"] == [pytest.approx(want["low"]), pytest.approx(want["high"])]
        assert f["ci_method"].startswith(PEOPLE_CI_METHOD) and len(f["bootstrap_ci"]) == 2
        assert f["people"] == len(per) and f["a"]["ci"][0] <= f["a"]["value"] <= f["a"]["ci"][1]
    assert res["pairs"][0]["demographics"][0]["spec"] == "sex"
    groups = res["pairs"][0]["demographics"][0]["groups"]
    assert set(groups) == {"F", "M"} and "fnir" in groups["F"]["paired"]
    # per group: the difference's interval from people (per-person counts from the tables by pandas)
    from auditcore.intervals import paired_difference
    from faceaudit.analyses.compare import GROUP_CI_METHOD
    demo = res["pairs"][0]["demographics"][0]
    ta, tb = np.float32(demo["threshold_a"]), np.float32(demo["threshold_b"])
    both = sa.assign(miss_a=(sa.mate_score < ta) | (sa.mate_rank > 1),
                     miss_b=((sb2.mate_score < tb) | (sb2.mate_rank > 1)).to_numpy())
    for g in ("F", "M"):
        f = groups[g]["paired"]["fnir"]
        assert f["ci_method"] == GROUP_CI_METHOD and len(f["bootstrap_ci"]) == 2
        per = both[both.mated & (both.sex == g)].groupby("subject_id")[["miss_a", "miss_b"]].agg(["sum", "count"])
        want = paired_difference(per[("miss_a", "sum")], per[("miss_b", "sum")], per[("miss_a", "count")])
        assert f["ci"] == [pytest.approx(want["low"]), pytest.approx(want["high"])]
        assert f["ci"][0] <= f["difference"] <= f["ci"][1] and f["a"]["ci"][0] <= f["a"]["value"] <= f["a"]["ci"][1]
    # a sentence per operating point, and its verdict follows from the interval and the p-value
    assert len(res["summary"]) == 4
    for op, line in zip(res["pairs"][0]["operating_points"], res["summary"]):
        f = op["fnir_rank1"]
        excludes = f["ci"][0] > 0 or f["ci"][1] < 0
        assert ("significant difference" in line and "no significant" not in line) == (excludes and f["mcnemar_p"] < 0.05)
        # McNemar's p written as the percentages beside it are: "p = 0.002" or "p < 0.001", never 1.6e-05
        want_p = "p < 0.001" if f["mcnemar_p"] < 0.001 else f"p = {f['mcnemar_p']:.2g}"
        assert f"McNemar exact {want_p} (" in line and not re.search(r"\de-\d", line)


def test_compare_refuses_other_protocols_and_searches(tmp_path):
    a = _audit(tmp_path, "a", 0.8, group_by=False)
    other_seed = _audit(tmp_path, "b", 0.8, protocol_seed=1, group_by=False)
    with pytest.raises(InputError, match="not the same protocol .* seed is 1 here and 0 there"):
        compare([a, other_seed])
    es = _population(0.8)
    keep = np.arange(es.n) != 5  # one template fewer: fewer comparisons, other searches
    es2 = validate(es.templates[keep], es.manifest[keep])
    audit = run_audit(es2, generate_protocol(es, seed=0).__class__(*_same_protocol(es, es2)), score="cosine")
    fewer = write_results(audit, tmp_path / "c", report=False)
    with pytest.raises(InputError, match="not the same protocol .* n_comparisons"):
        compare([a, fewer])
    # same protocol description, but the searches differ: a probe id, then a mated flag
    same = _audit(tmp_path, "d", 0.9, group_by=False)
    table = pd.read_parquet(same / "searches.parquet")
    renamed = table.copy()
    renamed.loc[3, "template_id"] = "somebody-else"
    renamed.to_parquet(same / "searches.parquet", index=False)
    with pytest.raises(InputError, match="not the same searches .* 2 probe template_id"):
        compare([a, same])
    flipped = table.copy()
    flipped.loc[3, "mated"] = not flipped.loc[3, "mated"]
    flipped.to_parquet(same / "searches.parquet", index=False)
    with pytest.raises(InputError, match="differs in its subject or mated flag"):
        compare([a, same])
    r = CliRunner().invoke(app, ["compare", str(a), str(other_seed), "--out", str(tmp_path / "cmp")])
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "not the same protocol" in r.output
    assert not (tmp_path / "cmp").exists()


def _same_protocol(es, es2):
    """es's generated protocol (seed 0), restricted to es2's templates, with the same description."""
    p = generate_protocol(es, seed=0)
    ids = es.template_ids
    index = {t: i for i, t in enumerate(es2.template_ids)}
    rows = lambda r: np.array(sorted(index[ids[i]] for i in r if ids[i] in index))  # noqa: E731
    return rows(p.gallery), rows(p.mated), rows(p.nonmated), p.description


def test_compare_cli_in_a_terminal_and_report(tmp_path):
    a = _audit(tmp_path, "a", 0.8, seed=0)
    b = _audit(tmp_path, "b", 0.95, seed=7)
    out = tmp_path / "cmp"
    cmd = f"{sys.executable} -m faceaudit.cli compare {a} {b} --name A --name B --n-boot 200 --out {out}"
    run = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO / "src")}, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "At FPIR 1% (each system at its own threshold)" in run.stdout and "Traceback" not in run.stdout
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 3 and "A against B" in html and "Per group: sex" in html
    assert "http://" not in html and "https://" not in html  # self-contained
    data = json.loads((out / "comparison.json").read_text())
    assert (out / "summary.txt").read_text().splitlines() == data["summary"]


def test_a_broken_black_box_folder_is_refused_in_one_line(tmp_path):
    """Black-box audits are compared (tests/test_compare_blackbox.py); one whose folder lacks what
    pairing needs (the lists' observed domain) is refused in one line, nothing written."""
    import json as _json

    from typer.testing import CliRunner

    from faceaudit.cli import app
    folder = tmp_path / "bb"
    folder.mkdir()
    (folder / "results.json").write_text(_json.dumps({"faceaudit_version": "0", "identification": {}, "blackbox": {}}))
    pd.DataFrame({"template_id": ["p1"], "subject_id": ["A"], "mated": [True], "best_nonmate_score": [0.1],
                  "mate_score": [0.9], "mate_rank": [1]}).to_parquet(folder / "searches.parquet")
    result = CliRunner().invoke(app, ["compare", str(folder), str(folder), "--out", str(tmp_path / "c")])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "Traceback" not in result.output
    assert "searches.parquet lacks column(s) list_length, mate_listed, returned, search_id" in result.output
    assert not (tmp_path / "c").exists()


def test_compare_records_provenance_and_its_report_shows_it(tmp_path):
    import hashlib

    from faceaudit.report.compare_html import render
    a = _audit(tmp_path, "a", 0.8, seed=0)
    b = _audit(tmp_path, "b", 0.95, seed=7)
    data = json.loads((b / "results.json").read_text())
    data["warnings"] = [{"code": "small_audit", "text": "only 120 people are enrolled"}]
    (b / "results.json").write_text(json.dumps(data))
    res = compare([a, b], names=["A", "B"], n_boot=200)
    prov = res["provenance"]
    # every compared folder's results.json and searches.parquet, hashed (hashlib, independently)
    want = {str(p / f): hashlib.sha256((p / f).read_bytes()).hexdigest()
            for p in (a, b) for f in ("results.json", "searches.parquet")}
    assert {i["path"]: i["sha256"] for i in prov["inputs"]} == want
    assert prov["options"]["n_boot"] == 200 and prov["options"]["name"] == ["A", "B"] and prov["system"] is None
    assert res["warnings"] == ["B: only 120 people are enrolled"]
    page = render(json.loads(json.dumps(res)))
    assert "class='banner'" in page and "B: only 120 people are enrolled" in page
    assert page.index("What was audited, and how to re-run it") < page.index("Each system at each operating point")
    assert want[str(a / "results.json")] in page and "System under test" not in page
    # intervals said as comparison.json gives them; no rate printed as 0.00% [0.00%, ...]
    assert "subject-bootstrap intervals; not paired" not in page and "0.00% [0.00%" not in page
    assert page.count("[95% CI, from people]") == 2 and "interval from people excludes 0" in page
    assert "interval from a bootstrap over probe subjects at each" not in page

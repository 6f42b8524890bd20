"""Reference scores and reproducibility: every figure is the same on any machine.

The reference score of a pair is the exact real dot product (or distance) of the stored float32
vectors, rounded once to float32 (see faceaudit.engine._kernel). These tests check it against an
independent computation in Python's exact rational arithmetic, check the BLAS screen's error
bound on adversarial data, and check that results folders are byte-identical across block sizes,
memory budgets, gallery shards, BLAS and numba thread counts and OpenBLAS kernels.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import exact_evalset

from faceaudit.data.evalset import validate
from faceaudit.data.protocol import Protocol, generate_protocol
from faceaudit.engine import _kernel
from faceaudit.engine.local import _gather, raw_scores, reference_scores, search

REPO = Path(__file__).resolve().parents[1]


def rn32(value: Fraction) -> np.float32:
    """Round an exact rational to the nearest float32, ties to even (independent of the kernel)."""
    c = np.float32(float(value))
    while True:
        up = np.nextafter(c, np.float32(np.inf))
        down = np.nextafter(c, np.float32(-np.inf))
        mid_up = (Fraction(float(c)) + Fraction(float(up))) / 2
        mid_down = (Fraction(float(c)) + Fraction(float(down))) / 2
        odd = int(np.float32(c).view(np.uint32)) & 1
        if value > mid_up or (value == mid_up and odd):
            c = up
        elif value < mid_down or (value == mid_down and odd):
            c = down
        else:
            return c


def normalised(x: np.ndarray) -> np.ndarray:
    """The documented normalisation, written independently: float64 sum in index order."""
    x64 = x.astype(np.float64)
    s = np.zeros(x.shape[0])
    for k in range(x.shape[1]):
        s = s + x64[:, k] * x64[:, k]
    return (x64 / np.sqrt(s)[:, None]).astype(np.float32)


def exact_cosine(u: np.ndarray, v: np.ndarray) -> np.float32:
    if np.array_equal(u, v):
        return np.float32(1.0)
    c = rn32(sum(Fraction(float(a)) * Fraction(float(b)) for a, b in zip(u, v)))
    return np.float32(min(max(c, -1.0), 1.0))


def exact_neg_distance(p: np.ndarray, g: np.ndarray) -> np.float32:
    d2 = sum((Fraction(float(a)) - Fraction(float(b))) ** 2 for a, b in zip(p, g))
    # RN32(sqrt(d2)): start from the float64 root, then compare squares of midpoints exactly
    c = np.float32(np.sqrt(float(d2)))
    while True:
        up = np.nextafter(c, np.float32(np.inf))
        mid = (Fraction(float(c)) + Fraction(float(up))) / 2
        odd = int(np.float32(c).view(np.uint32)) & 1
        if d2 > mid**2 or (d2 == mid**2 and odd):
            c = up
            continue
        if c > 0:
            down = np.nextafter(c, np.float32(-np.inf))
            mid = (Fraction(float(c)) + Fraction(float(down))) / 2
            if d2 < mid**2 or (d2 == mid**2 and odd):
                c = down
                continue
        return -c


def adversarial(n: int, d: int, seed: int) -> np.ndarray:
    """Hard cases for rounding: wide dynamic range, near-duplicates, near-orthogonal pairs,
    exact midpoints between float32 values, large cancellation."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    x[: n // 4] *= np.float32(2.0) ** rng.integers(-20, 20, size=(n // 4, d)).astype(np.float32)
    base = x[n // 4]
    for i in range(n // 4 + 1, n // 2):  # near-duplicates: a few ulps apart
        x[i] = base + np.float32(1e-7) * rng.integers(-3, 4, size=d).astype(np.float32) * np.abs(base)
    x[n // 2: 3 * n // 4] = np.float32(1.0) + rng.integers(0, 2, size=(n // 4, d)).astype(np.float32) * np.float32(2**-23)
    x[3 * n // 4:] = rng.integers(-3, 4, size=(n - 3 * n // 4, d)).astype(np.float32)
    x[x.sum(axis=1) == 0, 0] = 1
    return x


def _evalset(x: np.ndarray, subjects) -> "validate":
    manifest = pd.DataFrame({"template_id": [f"t{i}" for i in range(x.shape[0])],
                             "subject_id": [str(s) for s in subjects]})
    return validate(x, manifest)


@pytest.mark.parametrize("d", [4, 16, 128])
def test_reference_equals_exact_rational_arithmetic(d):
    x = adversarial(48, d, seed=d)
    es = _evalset(x, range(48))
    u = normalised(x)
    got_u, _ = _gather(x, np.arange(48), "cosine")
    assert np.array_equal(got_u.view(np.uint32), u.view(np.uint32)), "normalisation differs from the spec"
    pi, gi = np.divmod(np.arange(48 * 48), 48)
    cos = reference_scores(es, pi, gi, "cosine")
    euc = reference_scores(es, pi, gi, "neg_euclidean")
    rng = np.random.default_rng(0)
    for i in rng.choice(pi.size, size=400 if d < 128 else 150, replace=False):
        assert cos[i] == exact_cosine(u[pi[i]], u[gi[i]]), (pi[i], gi[i])
        assert euc[i].view(np.uint32) == exact_neg_distance(x[pi[i]], x[gi[i]]).view(np.uint32), (pi[i], gi[i])
    # identical directions: exactly 1.0; every self-distance is 0
    assert np.all(cos[pi == gi] == np.float32(1.0))
    assert np.all(euc[pi == gi] == 0)


def test_exact_tier_decides_float32_rounding_ties():
    # dot products that land exactly on a float32 rounding boundary need the exact tier
    p = np.float32([1.0, 2.0**-24, 0, 0])
    g = np.float32([1.0, 1.0, 0, 0])
    # exact dot 1 + 2^-24 is halfway between 1 and 1 + 2^-23: ties to even -> 1.0
    v, tier = _kernel.reference(_kernel.COSINE, p, g)
    assert v == np.float32(1.0) and tier == 1
    g2 = np.float32([1.0, 3.0, 0, 0])  # 1 + 3 * 2^-24 is halfway too: even is 1 + 2^-22
    v, tier = _kernel.reference(_kernel.COSINE, p, g2)
    assert v == np.float32(1.0) and tier == 1  # clamped to [-1, 1]
    v, tier = _kernel.reference(_kernel.COSINE, -p, g2)
    assert v == np.float32(-1.0)
    q = np.float32([0.5, 2.0**-25, 0, 0])
    v, tier = _kernel.reference(_kernel.COSINE, q, np.float32([1.0, 1.0, 0, 0]))
    assert v == np.float32(0.5) and tier == 1  # 0.5 + 2^-25: halfway to 0.5 + 2^-24, even is 0.5
    v, tier = _kernel.reference(_kernel.COSINE, q, np.float32([1.0, 1.5, 0, 0]))
    assert v == np.nextafter(np.float32(0.5), np.float32(1))  # just above halfway: rounds up


@pytest.mark.parametrize("d", [16, 128, 512])
def test_screen_error_bound_holds_on_adversarial_data(d):
    x = adversarial(256, d, seed=7 + d)
    u, _ = _gather(x, np.arange(256), "cosine")
    es = _evalset(x, range(256))
    screen = raw_scores(u[:128], u[128:])
    pi, gi = np.divmod(np.arange(128 * 128), 128)
    ref = reference_scores(es, pi, 128 + gi, "cosine").reshape(128, 128)
    err = np.abs(screen.astype(np.float64) - ref)
    bound = _kernel.cosine_bound(d)
    assert err.max() <= bound
    assert err.max() > 0  # the screen does round differently from the reference here
    # neg_euclidean: the screen's squared distance against the exact one
    sq = (x.astype(np.float64) ** 2).sum(1)
    dots = raw_scores(x[:128], x[128:])
    d2_screen = (sq[:128, None].astype(np.float32) + sq[None, 128:].astype(np.float32)
                 - np.float32(2) * dots).astype(np.float32)
    exact_d2 = np.array([[float(sum((Fraction(float(a)) - Fraction(float(b))) ** 2 for a, b in zip(x[i], x[128 + j])))
                          for j in range(0, 128, 16)] for i in range(0, 128, 16)])
    e = _kernel.euclid_bound(d, sq[:128:16], sq[128:].max())
    assert np.all(np.abs(d2_screen[::16, ::16] - exact_d2) <= e[:, None])


def _duplicated_gallery(d: int, n: int = 100, seed: int = 0):
    """Every gallery template enrolled twice, under two subjects; n mated probes near them."""
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((n, d)).astype(np.float32)
    probes = g + np.float32(0.3) * rng.standard_normal((n, d)).astype(np.float32)
    others = rng.standard_normal((10, d)).astype(np.float32)
    x = np.concatenate([g, g, probes, others])
    subjects = [f"a{i}" for i in range(n)] + [f"b{i}" for i in range(n)] + [f"a{i}" for i in range(n)] + \
        [f"z{i}" for i in range(10)]
    es = _evalset(x, subjects)
    proto = Protocol(np.arange(2 * n), np.arange(2 * n, 3 * n), np.arange(3 * n, 3 * n + 10))
    return es, proto


@pytest.mark.parametrize("score", ["cosine", "neg_euclidean"])
@pytest.mark.parametrize("d", [4, 64, 128])
def test_identical_templates_always_tie(score, d):
    es, proto = _duplicated_gallery(d)
    res = search(es, proto, score=score, top_k=3)
    mated = res.is_mated
    # by the tie rule no mate can be rank 1: its twin under another subject scores the same
    assert np.all(res.mate_rank[mated] >= 2)
    assert np.array_equal(res.best_nonmate[mated] >= res.mate_score[mated], np.ones(mated.sum(), bool))
    # the candidate just before the mate ties with it (its twin, or another tie)
    for i in np.flatnonzero(mated & (res.mate_rank <= 3)):
        r = res.mate_rank[i]
        assert res.candidates_score[i, r - 1] == res.mate_score[i]
        assert res.candidates_score[i, r - 2] == res.mate_score[i]


def test_cosine_self_score_is_exactly_one_and_meets_threshold_one():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 128)).astype(np.float32)
    x[30:] = x[:10] * np.float32(3.0)  # same directions, scaled, under other subjects
    es = _evalset(x, list(range(30)) + [f"n{i}" for i in range(10)])
    proto = Protocol(np.arange(30), np.empty(0, np.int64), np.arange(30, 40))
    res = search(es, proto, top_k=1)
    assert np.all(res.best_nonmate == np.float32(1.0))
    assert np.all(res.best_nonmate >= 1.0)  # so --threshold 1.0 matches identical templates
    assert np.all(reference_scores(es, np.arange(40), np.arange(40)) == np.float32(1.0))


def test_gallery_shards_merge_to_the_same_result():
    es = exact_evalset(n_subjects=50, per_subject=4, seed=11)
    rng = np.random.default_rng(1)
    es_real = validate(rng.standard_normal((es.n, 24)).astype(np.float32), es.manifest)
    for data in (es, es_real):
        proto = generate_protocol(data, enrol_fraction=0.6, gallery_per_subject=2, seed=3)
        groups = np.arange(data.n) % 3
        for score in ("cosine", "neg_euclidean"):
            one = search(data, proto, score=score, top_k=6, thresholds=[0.0, 0.5], gallery_groups=groups)
            for shards in (2, 3, 7):
                split = search(data, proto, score=score, top_k=6, thresholds=[0.0, 0.5], gallery_groups=groups,
                               gallery_shards=shards, block_size=5)
                for name in ("best_nonmate", "mate_score", "mate_rank", "candidates_subject", "candidates_score",
                             "genuine_scores", "impostor_hist", "group_counts", "group_comparisons"):
                    assert np.array_equal(getattr(one, name), getattr(split, name), equal_nan=True), (name, shards)


def test_probe_splits_merge_to_the_same_result():
    from faceaudit.engine.counts import merge_probe_splits
    es = exact_evalset(n_subjects=40, per_subject=3, seed=2)
    proto = generate_protocol(es, enrol_fraction=0.5, seed=1)
    whole = search(es, proto, top_k=4)
    cut = proto.mated.size // 2
    a = search(es, Protocol(proto.gallery, proto.mated[:cut], np.empty(0, np.int64)), top_k=4)
    b = search(es, Protocol(proto.gallery, proto.mated[cut:], proto.nonmated), top_k=4)
    merged = merge_probe_splits([a, b])
    for name in ("best_nonmate", "mate_score", "mate_rank", "candidates_subject", "candidates_score",
                 "genuine_scores", "genuine_probe", "impostor_hist"):
        assert np.array_equal(getattr(whole, name), getattr(merged, name), equal_nan=True), name


# ---- results folders, byte for byte, across machines' BLAS -------------------------------------

_RUN = r"""
import hashlib, json, sys
import numpy as np, pandas as pd, threadpoolctl
from faceaudit.audit import run_audit, write_results
from faceaudit.engine.local import _gather, raw_scores
from faceaudit.data.evalset import validate
from faceaudit.data.protocol import generate_protocol
import faceaudit.engine.counts
faceaudit.engine.counts.TAIL_MIN = 2000  # a fine budget well below the comparisons: the bulk is binned coarsely
out, budget = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(5)
n_subj, per = 300, 3
centres = rng.standard_normal((n_subj, 128)).astype(np.float32)
x = (np.repeat(centres, per, axis=0) + np.float32(0.9) * rng.standard_normal((n_subj * per, 128))).astype(np.float32)
x[30:60] = x[0:30]  # identical templates under other subjects
man = pd.DataFrame({"template_id": [f"t{i}" for i in range(x.shape[0])],
                    "subject_id": [f"s{i // per}" for i in range(x.shape[0])]})
es = validate(x, man)
proto = generate_protocol(es, enrol_fraction=0.5, gallery_per_subject=1, seed=0)
audit = run_audit(es, proto, memory_budget=budget, thresholds=[0.2, 0.5], top_k=10,
                  score=sys.argv[3])
write_results(audit, out, report=False)
u, _ = _gather(x, proto.probes[:100], "cosine")
g, _ = _gather(x, proto.gallery, "cosine")
info = [(i["internal_api"], i.get("architecture"), i["num_threads"]) for i in threadpoolctl.threadpool_info()]
import numba
print(json.dumps({"blas": info, "numba_threads": numba.get_num_threads(),
                  "screen": hashlib.sha256(raw_scores(u, g).tobytes()).hexdigest()}))
"""


def _run(tmp: Path, name: str, env: dict, budget: int, score: str) -> tuple[dict, Path]:
    out = tmp / name
    full = {**os.environ, "PYTHONPATH": str(REPO / "src"), **env}
    proc = subprocess.run([sys.executable, "-c", _RUN, str(out), str(budget), score], env=full,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), out


def _digest(folder: Path) -> dict:
    digests = {}
    for name in ("results.json", "searches.parquet", "candidates.parquet", "scores.npz"):
        data = (folder / name).read_bytes()
        if name == "results.json":
            obj = json.loads(data)
            obj.pop("created")
            obj.pop("provenance")  # records each run's options (memory budget) and BLAS kernel: differs by design
            data = json.dumps(obj, sort_keys=True).encode()
        digests[name] = hashlib.sha256(data).hexdigest()
    return digests


@pytest.mark.parametrize("score", ["cosine", "neg_euclidean"])
def test_results_byte_identical_across_blas_kernels_threads_and_budgets(tmp_path, score):
    configs = {
        "default": ({}, 256 * 2**20),
        "blas1_numba1_small_blocks": ({"OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}, 1),
        "haswell": ({"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_NUM_THREADS": "2"}, 300_000),
        "skylakex": ({"OPENBLAS_CORETYPE": "SkylakeX", "NUMBA_NUM_THREADS": "2"}, 2**40),
        "sandybridge": ({"OPENBLAS_CORETYPE": "Sandybridge"}, 123_457),
    }
    runs = {name: _run(tmp_path, name, env, budget, score) for name, (env, budget) in configs.items()}
    digests = {name: _digest(out) for name, (_, out) in runs.items()}
    folded = json.loads((runs["default"][1] / "results.json").read_text())["verification"]["thresholds"]
    assert folded["fine_from"] is not None  # the run really binned its bulk coarsely
    first = digests["default"]
    for name, dg in digests.items():
        assert dg == first, f"{name} differs from default: {dg} vs {first}"
    kernels = {arch for n in runs for api, arch, _ in runs[n][0]["blas"] if api == "openblas"}
    assert {"Haswell", "Sandybridge"} <= kernels, kernels  # the kernel we asked for really ran
    screens = {runs[n][0]["screen"] for n in runs}
    # the kernels (FMA or not, AVX2 or AVX-512) round differently: the screen really varied,
    # so identical outputs are the reference computation's doing
    assert len(kernels) < 2 or len(screens) >= 2, (kernels, len(screens))


def test_gallery_larger_than_the_budget_is_held_in_parts_with_the_same_result():
    from faceaudit.engine import local as engine
    rng = np.random.default_rng(8)
    x = rng.standard_normal((12_300, 16)).astype(np.float32)
    subjects = np.concatenate([np.arange(12_000) // 2, np.arange(150) // 2, 10**6 + np.arange(150)])
    es = _evalset(x, subjects)
    proto = Protocol(np.arange(12_000), 12_000 + np.arange(150), 12_150 + np.arange(150))
    assert engine.resident_templates(1, 16) < 12_000  # a 1-byte budget holds the gallery in parts
    for score in ("cosine", "neg_euclidean"):
        whole = search(es, proto, score=score, top_k=5, fine_budget=5000)
        for kw in (dict(memory_budget=1), dict(memory_budget=1, block_size=37, gallery_shards=3)):
            parts = search(es, proto, score=score, top_k=5, fine_budget=5000, **kw)
            for name in ("impostor_hist", "hist_fine_from", "best_nonmate", "mate_score", "mate_rank",
                         "candidates_subject", "candidates_score", "genuine_scores"):
                assert np.array_equal(getattr(whole, name), getattr(parts, name), equal_nan=True), (score, name, kw)


@pytest.mark.parametrize("score", ["cosine", "neg_euclidean"])
@pytest.mark.parametrize("per_subject", [1, 3])
def test_engine_equals_reference_brute_force_over_several_tiles(score, per_subject):
    """Several BLAS tiles per row (so each row's first tile sets its screen gate from the tile's
    own K-th subject, later tiles from the top K so far), mated and non-mated probes, subjects
    with several templates: every per-probe figure and the candidate lists equal a brute force
    over all reference scores, and the histogram equals the impostor reference scores folded."""
    rng = np.random.default_rng(7)
    n_gallery, n_probes, d, k = 3000, 120, 24, 20
    gallery = rng.standard_normal((n_gallery, d), dtype=np.float32)
    n_mated = n_probes // 2
    mated = gallery[:n_mated * per_subject:per_subject] + 0.6 * rng.standard_normal((n_mated, d), dtype=np.float32)
    x = np.concatenate([gallery, mated, rng.standard_normal((n_probes - n_mated, d), dtype=np.float32)])
    subjects = np.concatenate([np.arange(n_gallery) // per_subject, np.arange(n_mated),
                               10**6 + np.arange(n_probes - n_mated)])
    es = validate(x, pd.DataFrame({"template_id": np.arange(x.shape[0]).astype(str),
                                   "subject_id": [f"s{v:07d}" for v in subjects]}))
    proto = Protocol(np.arange(n_gallery), n_gallery + np.arange(n_mated),
                     n_gallery + np.arange(n_mated, n_probes))
    res = search(es, proto, score=score, top_k=k, fine_budget=20_000)
    assert_equals_brute_force(es, proto, res, score, k, 20_000)


def assert_equals_brute_force(es, proto, res, score: str, k: int, fine_budget: int) -> None:
    """Every per-probe figure of ``res`` (a search of ``proto`` on ``es``), its candidate lists
    and its folded impostor histogram equal a brute force over all reference scores."""
    from faceaudit.engine import counts
    P, G = proto.probes, proto.gallery
    S = reference_scores(es, np.repeat(P, G.size), np.tile(G, P.size), score).reshape(P.size, G.size)
    names, code = np.unique(es.subject_ids[G], return_inverse=True)
    per = np.full((P.size, names.size), -np.inf, np.float32)
    for c in range(names.size):
        per[:, c] = S[:, code == c].max(axis=1)
    impostors = []
    for i, p in enumerate(P):
        is_mate = names == es.subject_ids[p]
        non = np.flatnonzero(~is_mate)
        order = non[np.lexsort((non, -per[i, non].astype(np.float64)))]
        if non.size:
            assert res.best_nonmate[i] == per[i, order[0]], i
        cands = list(order[:k])
        if is_mate.any():
            m = int(np.flatnonzero(is_mate)[0])
            n_ge = int((per[i, non] >= per[i, m]).sum())
            assert res.mate_score[i] == per[i, m] and res.mate_rank[i] == n_ge + 1, i
            cands.insert(n_ge, m)
        cands = cands[:k]
        listed = res.candidates_subject[i]
        assert list(res.gallery_subjects[listed[listed >= 0]]) == list(names[cands]), i
        assert np.array_equal(res.candidates_score[i][:len(cands)], per[i, cands]), i
        impostors.append(S[i][~is_mate[code]])
    hist, fine_from = counts.fold_scores(np.concatenate(impostors), score, fine_budget)
    assert fine_from == res.hist_fine_from and np.array_equal(hist, res.impostor_hist)


def _random_case(rng):
    """A small search with awkward shapes: 1-130 dimensions, galleries of 1 to 3,000 templates
    (tile and 64-column mask edges), 1-7 templates a subject, exact copies of gallery templates
    under other subjects and as mated probes, values on a half-integer grid (many exact ties),
    distances at other scales, tiny and huge fine budgets, blocks of a few probes, a gallery held
    in parts."""
    n_gallery = int(rng.choice([1, 2, 63, 64, 65, 1023, 1025, 3000]))
    n_probes, d = int(rng.choice([1, 7, 33, 130])), int(rng.choice([1, 2, 3, 8, 33, 128, 130]))
    per_subject, k = int(rng.choice([1, 2, 3, 7])), int(rng.choice([1, 5, 20]))
    score = str(rng.choice(["cosine", "neg_euclidean"]))
    gallery = rng.standard_normal((n_gallery, d), dtype=np.float32)
    if rng.random() < 0.4 and n_gallery > 1:
        half = n_gallery // 2
        gallery[half:half + half // 2] = gallery[:half // 2]
    if rng.random() < 0.3:
        gallery = np.round(gallery * 2) / 2
        gallery[np.all(gallery == 0, axis=1), 0] = 1.0
    n_mated = min(n_probes // 2, n_gallery // per_subject)
    mated = gallery[:n_mated * per_subject:per_subject] + 0.6 * rng.standard_normal((n_mated, d), dtype=np.float32)
    if rng.random() < 0.3 and n_mated:
        copies = max(1, n_mated // 3)
        mated[:copies] = gallery[:copies * per_subject:per_subject]
    x = np.concatenate([gallery, mated, rng.standard_normal((n_probes - n_mated, d), dtype=np.float32)])
    if score == "neg_euclidean" and rng.random() < 0.5:
        x *= np.float32(rng.choice([1e-3, 7.0, 300.0]))
    subjects = np.concatenate([np.arange(n_gallery) // per_subject, np.arange(n_mated),
                               10**6 + np.arange(n_probes - n_mated)])
    es = validate(x, pd.DataFrame({"template_id": np.arange(x.shape[0]).astype(str),
                                   "subject_id": [f"s{v:07d}" for v in subjects]}))
    proto = Protocol(np.arange(n_gallery), n_gallery + np.arange(n_mated), n_gallery + np.arange(n_mated, n_probes))
    kw = {"fine_budget": int(rng.choice([1, 100, 5000, 10**9]))}
    if rng.random() < 0.3:
        kw["memory_budget"] = 1
    if rng.random() < 0.3:
        kw["block_size"] = int(rng.choice([1, 3, 37]))
    return es, proto, score, k, kw


@pytest.mark.parametrize("seed", range(6))
def test_engine_equals_brute_force_on_awkward_shapes(seed):
    """Random small searches with awkward shapes (see ``_random_case``), four per seed: the
    engine equals the brute force on every one."""
    rng = np.random.default_rng(1000 + seed)
    for _ in range(4):
        es, proto, score, k, kw = _random_case(rng)
        res = search(es, proto, score=score, top_k=k, **kw)
        assert_equals_brute_force(es, proto, res, score, k, kw["fine_budget"])


@pytest.mark.parametrize("d", [16, 128])
def test_compensated_tier_equals_exact_rational_arithmetic(d):
    """Near-orthogonal pairs (cosine near 0, where float32 values are closer together than the
    float64 tier's error) and near-duplicates (distance near 0): the compensated tier decides
    most of them, and every reference score equals exact rational arithmetic."""
    rng = np.random.default_rng(d)
    tiers = []
    for _ in range(60):
        p = normalised(rng.standard_normal((1, d)).astype(np.float32))[0]
        q = rng.standard_normal(d)
        q64 = q - (q @ p.astype(np.float64)) * p.astype(np.float64)
        g = normalised(q64.astype(np.float32)[None, :])[0]
        v, tier = _kernel.reference(_kernel.COSINE, p, g)
        assert v == exact_cosine(p, g)
        tiers.append(tier)
        x = rng.standard_normal(d).astype(np.float32)
        y = x.copy()
        y[rng.integers(d)] = np.nextafter(y[0], np.float32(np.inf)) if rng.random() < 0.5 else y[0]
        y[rng.integers(d)] += np.float32(1e-6)
        v, tier = _kernel.reference(_kernel.NEG_EUCLIDEAN, x, y)
        assert np.float32(v).view(np.uint32) == exact_neg_distance(x, y).view(np.uint32)
        tiers.append(tier)
    tiers = np.array(tiers)
    assert (tiers == 2).sum() >= len(tiers) // 4, np.bincount(tiers)

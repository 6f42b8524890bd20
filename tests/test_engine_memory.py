"""Memory handling that must not change a result: pages of memory-mapped templates let go in
chunks, subjects ordered through integer codes, the gallery planned into parts.

Memory itself is measured in benchmarks (benchmarks/bench_scale.py), never asserted here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from faceaudit.data.evalset import drop_pages, is_mapped, load_evaluation_set, validate
from faceaudit.data.protocol import Protocol, generate_protocol, load_protocol
from faceaudit.engine import local as engine
from faceaudit.engine.local import _gather, gallery_plan, layout_bytes, search

# ids whose order differs between naive byte, case-folded and code-point orders
ODD_IDS = ["b", "B", "a", "é", "e", "Z", "z", "日本", "ä", "10", "9", "a b", "ab", "\u00e9x", "A"]


def _mapped_set(tmp_path, n=3000, d=16, seed=0, subjects=None):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    np.save(tmp_path / "t.npy", x)
    subjects = np.arange(n) // 2 if subjects is None else subjects
    pd.DataFrame({"template_id": [f"t{i}" for i in range(n)],
                  "subject_id": [str(s) for s in subjects]}).to_csv(tmp_path / "m.csv", index=False)
    return x, load_evaluation_set(tmp_path / "t.npy", tmp_path / "m.csv")


@pytest.mark.parametrize("score", ["cosine", "neg_euclidean"])
def test_gather_from_a_memory_map_in_file_chunks_equals_gather_in_memory(tmp_path, monkeypatch, score):
    x, es = _mapped_set(tmp_path)
    assert is_mapped(es.templates) and not is_mapped(x)
    monkeypatch.setattr(engine, "GATHER_SPAN", 4 * 16 * 37)  # 37 rows of the file per chunk: many chunks
    rng = np.random.default_rng(1)
    for rows in (np.arange(3000), rng.integers(0, 3000, 500), np.array([2999, 0, 5, 5, 1500, 3]),
                 np.array([17]), np.arange(0, 3000, 401)[::-1]):
        got, sq = _gather(es.templates, rows, score)
        want, sq_want = _gather(x, rows, score)
        assert np.array_equal(got, want), rows[:5]
        assert np.array_equal(sq, sq_want)
    # the reference rows themselves, independently of _gather: the right rows in the right order
    rows = np.array([9, 2, 2, 700, 1])
    got, _ = _gather(es.templates, rows, "neg_euclidean")
    assert np.array_equal(got, x[rows])


def test_drop_pages_keeps_the_data_and_never_touches_a_copy_on_write_map(tmp_path):
    x = np.arange(4096 * 8, dtype=np.float32).reshape(4096, 8)
    np.save(tmp_path / "a.npy", x)
    m = np.load(tmp_path / "a.npy", mmap_mode="r")
    assert float(m.sum(dtype=np.float64)) == float(x.sum(dtype=np.float64))
    view = m[100:3000:1]
    for rows in (None, slice(0, 10), slice(5, 2900), slice(2800, 10**9), slice(50, 40)):
        drop_pages(view, rows)
        assert np.array_equal(m, x)  # read again from the file after the pages went
    c = np.load(tmp_path / "a.npy", mmap_mode="c")  # a private map: its changes live only in its pages
    c[7, 3] = -1.0
    assert not is_mapped(c)
    drop_pages(c)
    drop_pages(c, slice(0, 100))
    assert c[7, 3] == -1.0  # MADV_DONTNEED here would have silently restored the file's value
    drop_pages(x)  # an in-memory array: nothing to do
    assert x[7, 3] == 7 * 8 + 3


def test_subject_codes_rank_ids_in_string_order():
    rng = np.random.default_rng(2)
    ids = rng.choice(ODD_IDS, 400)
    es = validate(rng.standard_normal((400, 4)).astype(np.float32),
                  pd.DataFrame({"template_id": [f"t{i}" for i in range(400)], "subject_id": ids}))
    uniq, inverse = np.unique(ids.astype(object), return_inverse=True)  # Python's string order
    assert np.array_equal(es.subject_codes, inverse)
    assert list(es.subjects_of_codes(np.arange(uniq.size))) == list(uniq)
    rows = np.array([5, 0, 399, 5])
    assert list(es.subject_ids_at(rows)) == list(ids[rows])
    assert list(es.template_ids_at(rows)) == ["t5", "t0", "t399", "t5"]


def _odd_id_evalset(seed: int, n: int, prefix: str, n_plain: int, dim: int):
    """An evaluation set whose subject ids mix ODD_IDS with ``n_plain`` plain ones; (rng, ids, set)."""
    rng = np.random.default_rng(seed)
    ids = rng.choice(ODD_IDS + [f"{prefix}{i}" for i in range(n_plain)], n)
    es = validate(rng.standard_normal((n, dim)).astype(np.float32),
                  pd.DataFrame({"template_id": [f"t{i}" for i in range(n)], "subject_id": ids}))
    return rng, ids, es


def test_gallery_layout_through_codes_equals_the_string_sort():
    n = 600
    rng, ids, es = _odd_id_evalset(3, n, "s", 60, 8)
    rows = np.sort(rng.choice(n, 350, replace=False))
    gal = engine._Gallery(es, rows, "cosine", None)
    # the layout as it was computed from the id strings
    uniq, codes = np.unique(ids[rows].astype(object), return_inverse=True)
    order = np.argsort(codes, kind="stable")
    assert list(gal.subject_ids) == list(uniq)
    assert np.array_equal(gal.rows, rows[order])
    assert np.array_equal(gal.start, np.searchsorted(codes[order], np.arange(uniq.size + 1)))
    assert np.array_equal(gal.col_subject, codes[order])


def test_generated_protocol_is_the_one_string_ids_gave():
    n = 500
    _, ids, es = _odd_id_evalset(4, n, "p", 80, 4)
    proto = generate_protocol(es, enrol_fraction=0.4, seed=11)
    # the documented draw, written out from the id strings
    g = np.random.default_rng(11)
    subjects, codes, counts = np.unique(ids.astype(object), return_inverse=True, return_counts=True)
    eligible = np.flatnonzero(counts > 1)
    enrolled = np.sort(g.choice(eligible, size=int(round(0.4 * eligible.size)), replace=False))
    order = np.argsort(codes, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)])
    gallery = np.sort(np.concatenate([g.permutation(order[starts[u]:starts[u + 1]])[:1] for u in enrolled]))
    assert np.array_equal(proto.gallery, gallery)


def test_load_protocol_rows_and_errors(tmp_path):
    x, es = _mapped_set(tmp_path, n=40, d=4)
    table = pd.DataFrame({"template_id": [f"t{i}" for i in (31, 2, 0, 1, 3, 5, 30)],
                          "role": ["gallery", " Gallery", "GALLERY", "probe", "probe", "probe ", "probe"]})
    table.to_csv(tmp_path / "p.csv", index=False)
    proto = load_protocol(es, tmp_path / "p.csv")
    assert list(proto.gallery) == [0, 2, 31]
    assert list(proto.mated) == [1, 3, 30] and list(proto.nonmated) == [5]
    from auditcore.errors import InputError
    for bad, msg in ((table.assign(role=["gallery"] * 6 + ["probes"]), "got 'probes'"),
                     (pd.concat([table, table.iloc[[3]]]), "template_id listed twice, e.g. t1"),
                     (table.assign(template_id=list(table.template_id[:-1]) + ["nope"]), "e.g. nope")):
        bad.to_csv(tmp_path / "bad.csv", index=False)
        with pytest.raises(InputError, match=msg):
            load_protocol(es, tmp_path / "bad.csv")


def test_gallery_plan():
    d, mib = 128, 2**20
    per_row = engine.row_bytes(d, 20)
    # a gallery that fits is held whole, next to the largest block the rest allows
    held, rows = gallery_plan(256 * mib, d, 100_000, 100_000, 1000, per_row, 2)
    assert held == 100_000 and rows == 1000
    # too large: in parts that leave the layout and tiles inside three quarters of the budget
    held, rows = gallery_plan(256 * mib, d, 10**6, 10**6, 50_000, per_row, 2)
    assert held < 10**6 and rows < 50_000
    assert layout_bytes(10**6, 10**6) + held * (4 * d + 24) <= 192 * mib
    assert held == engine.resident_templates(192 * mib - layout_bytes(10**6, 10**6), d, 2)
    # the budget covers the layout: a block next to the part in what is left
    assert layout_bytes(10**6, 10**6) + engine.engine_overhead(held, held, d, 2) + rows * per_row <= 256 * mib
    # an explicit block size is kept (within the probes)
    assert gallery_plan(256 * mib, d, 10**6, 10**6, 1000, per_row, 2, block_size=300)[1] == 300


@pytest.mark.parametrize("score", ["cosine", "neg_euclidean"])
def test_small_parts_from_a_memory_map_give_the_same_result(tmp_path, monkeypatch, score):
    subjects = np.concatenate([np.arange(2400) // 3, 10**5 + np.arange(600)])
    x, es = _mapped_set(tmp_path, n=3000, d=16, seed=5, subjects=subjects)
    # 250 probes: one block of the minimum 256 rows even under a 1-byte budget (parts of 4 tiles)
    proto = Protocol(np.arange(0, 2400, 3).repeat(2) + np.tile([0, 1], 800), np.arange(2, 600, 3),
                     2400 + np.arange(50))
    mem = validate(x, es.manifest)  # the same set in memory, gathered whole
    whole = search(mem, proto, score=score, top_k=7, fine_budget=3000)
    monkeypatch.setattr(engine, "GATHER_SPAN", 4 * 16 * 100)
    monkeypatch.setattr(engine, "TILE_COLS", 64)
    for kw in (dict(memory_budget=1), dict(memory_budget=1, block_size=97)):
        held, rows = gallery_plan(1, 16, 1600, 800, 250, engine.row_bytes(16, 7), block_size=kw.get("block_size"))
        assert held < 1600 and (rows == 250) == ("block_size" not in kw)  # in parts; one block, or several
        parts = search(es, proto, score=score, top_k=7, fine_budget=3000, **kw)
        for name in ("impostor_hist", "hist_fine_from", "best_nonmate", "mate_score", "mate_rank",
                     "candidates_subject", "candidates_score", "genuine_scores", "genuine_probe"):
            assert np.array_equal(getattr(whole, name), getattr(parts, name), equal_nan=True), (name, kw)
        assert list(parts.gallery_subjects) == list(whole.gallery_subjects)
        assert list(parts.probe_subjects) == list(whole.probe_subjects)


def test_integer_subject_ids_of_an_unvalidated_set_keep_their_type_and_order():
    from faceaudit.data.evalset import EvaluationSet
    ids = np.array([5, 3, 5, 10, 100, 3])  # numeric order differs from string order
    es = EvaluationSet(np.eye(6, dtype=np.float32), pd.DataFrame({"template_id": list("abcdef"), "subject_id": ids}))
    gal = engine._Gallery(es, np.array([0, 1, 3, 4]), "cosine", None)
    want = np.unique(ids[[0, 1, 3, 4]])
    assert gal.subject_ids.dtype == want.dtype and np.array_equal(gal.subject_ids, want)
    assert np.array_equal(es.subject_ids_at([2, 5]), ids[[2, 5]]) and es.subject_ids_at([2]).dtype == ids.dtype

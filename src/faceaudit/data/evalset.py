"""Evaluation sets: an n x d template matrix plus a manifest, validated on load.

Templates come from ``.npy`` (an n x d float array) or Parquet (one float column per
dimension, or a single list column). The manifest (CSV or Parquet) has one row per template,
in the same order, with columns ``template_id`` and ``subject_id``; an ``image`` column and any
demographic attribute columns are optional and carried along.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from auditcore.errors import InputError
from faceaudit.data.reading import check_unique_columns, read_parquet, reason, shown

REQUIRED_COLUMNS = ("template_id", "subject_id")


@dataclass(frozen=True)
class EvaluationSet:
    """Templates (float32, C-contiguous, n x d) and their manifest (n rows, same order)."""

    templates: np.ndarray
    manifest: pd.DataFrame
    source: str = "in-memory"
    manifest_source: str | None = None  # the manifest's path as given, when read from a file (provenance)

    @property
    def n(self) -> int:
        return int(self.templates.shape[0])

    @property
    def dim(self) -> int:
        return int(self.templates.shape[1])

    @property
    def template_ids(self) -> np.ndarray:
        return self.manifest["template_id"].to_numpy()

    @property
    def subject_ids(self) -> np.ndarray:
        return self.manifest["subject_id"].to_numpy()

    @cached_property
    def subject_codes(self) -> np.ndarray:
        """An int code per row for its subject, computed once (``pandas.factorize``): the rank of the
        subject id among the distinct ids in string order, so that sorting codes sorts subjects as
        their ids sort (as ``numpy.unique`` of the id strings would), without comparing strings."""
        codes, uniques = pd.factorize(self.manifest["subject_id"], sort=True)
        self.__dict__["_subject_uniques"] = uniques
        return codes.astype(np.int64)

    def subjects_of_codes(self, codes: np.ndarray) -> np.ndarray:
        """The subject ids of subject codes (see :attr:`subject_codes`), as ``subject_ids`` holds them."""
        self.subject_codes  # noqa: B018 - computes the distinct ids once
        return np.asarray(self.__dict__["_subject_uniques"].take(np.asarray(codes, np.int64)).to_numpy())

    def subject_ids_at(self, rows: np.ndarray) -> np.ndarray:
        """``subject_ids[rows]`` without building the whole column as Python strings."""
        return self.manifest["subject_id"].iloc[np.asarray(rows, np.int64)].to_numpy()

    def template_ids_at(self, rows: np.ndarray) -> np.ndarray:
        """``template_ids[rows]`` without building the whole column as Python strings."""
        return self.manifest["template_id"].iloc[np.asarray(rows, np.int64)].to_numpy()

    def attribute_columns(self) -> list[str]:
        """Manifest columns other than the required ones and ``image``."""
        skip = set(REQUIRED_COLUMNS) | {"image"}
        return [c for c in self.manifest.columns if c not in skip]


def _read_only_map(x: np.ndarray):
    """The read-only ``mmap`` under a memory-mapped array (``numpy.load(..., mmap_mode="r")``), or
    None (an in-memory array, or a copy-on-write map whose pages may hold changes)."""
    base = x
    while base is not None and not isinstance(base, np.memmap):
        base = getattr(base, "base", None)
    if base is None or getattr(base, "mode", None) != "r":
        return None
    return getattr(base, "_mmap", None)


def is_mapped(x: np.ndarray) -> bool:
    """Whether ``x`` reads through a read-only memory map (its pages count in resident memory)."""
    return _read_only_map(x) is not None


def drop_pages(x: np.ndarray, rows: slice | None = None) -> None:
    """Let the OS drop a memory-mapped array's pages from this process's resident memory (they
    stay in the page cache and are read again on access): all of the map's, or only those of
    ``rows`` (a slice of ``x``'s first axis, step 1). No-op for in-memory arrays."""
    import mmap
    mm = _read_only_map(x)
    if mm is None or not hasattr(mm, "madvise") or not hasattr(mmap, "MADV_DONTNEED") or len(mm) == 0:
        return
    start, length = 0, len(mm)
    if rows is not None:
        x = np.asarray(x)
        a, b, _ = rows.indices(x.shape[0])
        if b <= a or x.size == 0:
            return
        if x.ndim == 0 or any(s < 0 for s in x.strides):
            rows = None  # an unusual view: drop the whole map
        else:
            origin = np.frombuffer(mm, np.uint8, count=1).ctypes.data
            lo = x.ctypes.data + a * x.strides[0] - origin
            hi = x.ctypes.data + (b - 1) * x.strides[0] + sum((n - 1) * s for n, s in zip(x.shape[1:], x.strides[1:]))
            hi += x.itemsize - origin
            start = max(0, lo - lo % mmap.PAGESIZE)
            length = min(len(mm), hi) - start
            if length <= 0:
                return
    try:
        mm.madvise(mmap.MADV_DONTNEED, start, length)
    except (OSError, ValueError):
        pass


def release_freed_memory() -> None:
    """Hand memory freed by large temporaries (hash tables, string columns) back to the OS: the
    C library's and Arrow's allocators keep it otherwise, and it counts in resident memory."""
    import sys
    if "pyarrow" in sys.modules:
        try:
            sys.modules["pyarrow"].default_memory_pool().release_unused()
        except Exception:  # noqa: BLE001 - best effort, never an error
            pass
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            ctypes.CDLL(None).malloc_trim(0)
        except (OSError, AttributeError):
            pass


def _read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path, dtype={"template_id": str, "subject_id": str})
        if suffix in (".parquet", ".pq"):
            return read_parquet(path, "table")
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
        raise InputError(f"cannot read table ({exc.__class__.__name__}: {reason(exc)})", path) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read table ({reason(exc)})", path) from None
    raise InputError(f"unsupported manifest format '{suffix}' (use .csv or .parquet)", path)


def _check_npy_header(path: Path) -> None:
    """A ``.npy`` file starts with NumPy's magic bytes and declares a numeric dtype."""
    with open(path, "rb") as fh:
        head = fh.read(6)
        if head != b"\x93NUMPY":
            kind = "the file is empty" if not head else "not a NumPy .npy file (no .npy header)"
            raise InputError(f"cannot read templates: {kind}; save them with numpy.save, or use Parquet", path)
        fh.seek(0)
        try:
            version = np.lib.format.read_magic(fh)
            _, _, dtype = (np.lib.format.read_array_header_1_0(fh) if version == (1, 0)
                           else np.lib.format.read_array_header_2_0(fh))
        except Exception as exc:  # noqa: BLE001 - a damaged header fails in many ways (ValueError, TokenError...)
            raise InputError(f"cannot read templates: damaged .npy header ({reason(exc)})", path) from None
    if dtype.hasobject:
        raise InputError("cannot read templates: the file holds Python objects (pickled data), and faceaudit "
                         "never unpickles a file; save a plain float array", path)


def _read_templates(path: Path) -> np.ndarray:
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            _check_npy_header(path)
            array = np.load(path, allow_pickle=False, mmap_mode="r")  # read lazily, never copied
        elif suffix in (".parquet", ".pq"):
            frame = read_parquet(path, "templates")
            if frame.shape[1] == 1 and frame.dtypes.iloc[0] == object:
                array = np.stack(frame.iloc[:, 0].to_numpy())
            else:
                array = frame.to_numpy()
        else:
            raise InputError(f"unsupported template format '{suffix}' (use .npy or .parquet)", path)
    except (InputError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file fails in many ways (ValueError, EOFError, TypeError...)
        raise InputError(f"cannot read templates ({reason(exc)})", path) from None
    if array.ndim != 2:
        raise InputError(f"templates must be a 2-d n x d array, got shape {array.shape}", path)
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise InputError(f"templates must be real numbers, got dtype {array.dtype}", path)
    return array


def validate(templates: np.ndarray, manifest: pd.DataFrame, *, templates_path: str | Path | None = None,
             manifest_path: str | Path | None = None) -> EvaluationSet:
    """Check templates and manifest against each other; return a validated ``EvaluationSet``.

    Raises ``InputError`` naming the file and the problem for: a missing column, empty
    ``template_id``/``subject_id`` values, duplicate ``template_id``, a row-count mismatch,
    NaN or infinite values, and all-zero templates (which have no direction).
    """
    tpath = templates_path
    mpath = manifest_path
    templates = np.asarray(templates)
    if templates.ndim != 2:
        raise InputError(f"templates must be a 2-d n x d array, got shape {templates.shape}", tpath)
    if templates.shape[0] == 0 or templates.shape[1] == 0:
        raise InputError(f"templates are empty (shape {templates.shape})", tpath)
    if templates.dtype.kind not in "biuf":
        raise InputError(f"templates must be real numbers, got dtype {templates.dtype}", tpath)
    missing = [c for c in REQUIRED_COLUMNS if c not in manifest.columns]
    if missing:
        raise InputError(f"missing required column(s) {', '.join(missing)} "
                         f"(found: {shown(', '.join(map(str, manifest.columns)), 200) or 'none'})", mpath)
    check_unique_columns(manifest, REQUIRED_COLUMNS, mpath)
    if len(manifest) != templates.shape[0]:
        raise InputError(f"manifest has {len(manifest)} rows but templates have {templates.shape[0]}; "
                         "they must match row for row", mpath)
    manifest = manifest.reset_index(drop=True).copy()
    for col in REQUIRED_COLUMNS:
        if manifest[col].isna().any():
            row = int(np.flatnonzero(manifest[col].isna().to_numpy())[0])
            raise InputError(f"empty {col} in row {row + 2 if str(mpath).endswith('.csv') else row}", mpath)
        manifest[col] = manifest[col].astype(str)
    dup = manifest["template_id"].duplicated(keep=False)
    if dup.any():
        ids = manifest.loc[dup, "template_id"].unique()[:3]
        raise InputError(f"duplicate template_id ({int(dup.sum())} rows), e.g. {', '.join(map(shown, ids))}", mpath)
    with np.errstate(over="ignore"):  # values beyond float32 become inf, refused below
        templates = np.ascontiguousarray(templates, dtype=np.float32)  # no copy if already float32
    finite = np.empty(templates.shape[0], dtype=bool)
    nonzero = np.empty(templates.shape[0], dtype=bool)
    step = max(1, (16 << 20) // (4 * templates.shape[1]))  # checked in chunks: no n x d temporaries
    for start in range(0, templates.shape[0], step):
        chunk = templates[start:start + step]
        finite[start:start + step] = np.isfinite(chunk).all(axis=1)
        nonzero[start:start + step] = np.any(chunk != 0, axis=1)
        drop_pages(templates, slice(0, start + step))  # read once, in order: the pages read so far can go
    drop_pages(templates)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise InputError(f"{bad.size} template(s) contain NaN or infinite values, e.g. row {bad[0]} "
                         f"(template_id {shown(manifest['template_id'].iloc[bad[0]])})", tpath)
    zero = ~nonzero
    if zero.any():
        bad = np.flatnonzero(zero)
        raise InputError(f"{bad.size} template(s) are all zeros, e.g. row {bad[0]} "
                         f"(template_id {shown(manifest['template_id'].iloc[bad[0]])})", tpath)
    return EvaluationSet(templates=templates, manifest=manifest,
                         source=str(tpath) if tpath is not None else "in-memory",
                         manifest_source=None if mpath is None else str(mpath))


def load_evaluation_set(templates_path: str | Path, manifest_path: str | Path) -> EvaluationSet:
    """Load and validate templates (``.npy``/Parquet) and manifest (CSV/Parquet)."""
    tpath, mpath = Path(templates_path), Path(manifest_path)
    for p, what in ((tpath, "templates"), (mpath, "manifest")):
        if not p.exists():
            raise InputError(f"{what} file not found", p)
        if p.is_dir():
            raise InputError(f"{what} path is a folder, expected a file", p)
    templates = _read_templates(tpath)
    manifest = _read_table(mpath)
    evalset = validate(templates, manifest, templates_path=tpath, manifest_path=mpath)
    del manifest
    release_freed_memory()
    return evalset


def read_failures(path: str | Path) -> pd.DataFrame:
    """``failures.csv`` from ``faceaudit embed``: one row per image that failed to enrol, each with its
    ``subject_id`` (the failure-to-enrol count); an empty file is no failure."""
    path = Path(path)
    if not path.exists():
        raise InputError("failures file not found", path)
    if path.is_dir():
        raise InputError("failures path is a folder, expected a file", path)
    try:
        table = pd.read_csv(path, dtype=str)
    except pd.errors.EmptyDataError:
        return pd.DataFrame({"subject_id": []})
    except (pd.errors.ParserError, OSError, ValueError) as exc:
        raise InputError(f"cannot read failures ({reason(exc)})", path) from None
    if "subject_id" not in table.columns:
        raise InputError("missing required column subject_id", path)
    empty = table["subject_id"].isna().to_numpy()
    if empty.any():
        raise InputError(f"line {int(np.flatnonzero(empty)[0]) + 2}: empty subject_id", path)
    return table


def resolve_evalset_paths(evalset: str | Path | None, templates: str | Path | None, manifest: str | Path | None,
                          failures: str | Path | None = None) -> tuple[Path, Path, Path | None]:
    """Templates, manifest and failures paths from ``--evalset DIR`` (a ``faceaudit embed`` folder:
    ``templates.npy``, ``manifest.csv``, ``failures.csv`` if present) or from explicit
    ``--templates`` and ``--manifest``. Both at once contradict each other (which templates were
    audited?) and are refused; ``--failures`` may replace the folder's failures.csv."""
    if evalset is not None:
        given = [name for name, value in (("--templates", templates), ("--manifest", manifest)) if value is not None]
        if given:
            raise InputError(f"give --evalset DIR or {' and '.join(given)}, not both: "
                             "the evaluation set folder already names its templates and manifest")
        evalset = Path(evalset)
        if not evalset.is_dir():
            raise InputError("evaluation set folder not found" if not evalset.exists() else
                             "--evalset must be a folder written by `faceaudit embed`", evalset)
        templates = evalset / "templates.npy"
        manifest = evalset / "manifest.csv"
        if failures is None and (evalset / "failures.csv").exists():
            failures = evalset / "failures.csv"
    if templates is None or manifest is None:
        raise InputError("give --evalset DIR, or both --templates and --manifest")
    return Path(templates), Path(manifest), None if failures is None else Path(failures)


SCORES = ("cosine", "neg_euclidean")


def read_embed_info(evalset: str | Path | None) -> dict:
    """The ``embed.json`` of an evaluation set folder (``{}`` when there is none, or no folder).

    Its ``score`` (written by ``faceaudit embed`` since schema 2) is the comparison score the
    model's makers use (dlib: ``neg_euclidean``, SFace: ``cosine``; :mod:`faceaudit.models.registry`);
    older folders lack it (see :func:`score_for`)."""
    import json
    if evalset is None:
        return {}
    path = Path(evalset) / "embed.json"
    if not path.exists():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"cannot read embed.json ({reason(exc)})", path) from None
    return info if isinstance(info, dict) else {}


def score_for(given: str | None, info: dict, *, evalset: str | Path | None = None) -> tuple[str, str]:
    """The score an audit uses and why, in words for the terminal: ``(score, reason)``.

    ``--score`` when given; else the score the evaluation set's ``embed.json`` records; else, for
    an older evaluation set, the score of the model it names when faceaudit knows that model;
    else ``cosine`` (faceaudit's default), saying so."""
    if given is not None:
        if given not in SCORES:
            raise InputError(f"--score must be cosine or neg_euclidean, got '{shown(given)}'")
        recorded = info.get("score")
        if recorded in SCORES and recorded != given:
            return given, (f"given with --score, although the evaluation set records {recorded} "
                           "(the score its model's makers use)")
        return given, "given with --score"
    recorded = info.get("score")
    if recorded is not None:
        if recorded not in SCORES:
            raise InputError(f"embed.json records score '{shown(recorded)}', expected cosine or neg_euclidean; "
                             "give --score", Path(evalset or ".") / "embed.json")
        model = (info.get("model") or {}).get("name") if isinstance(info.get("model"), dict) else None
        return recorded, f"recorded by faceaudit embed{f' for {model}' if model else ''}, the score its makers use"
    model = info.get("model") if isinstance(info.get("model"), dict) else {}
    known = _known_model_score(model)
    if known is not None:
        return known, (f"the evaluation set records no score (older faceaudit); {model.get('name')}'s makers "
                       "use it; --score chooses another")
    if evalset is not None:
        return "cosine", ("the evaluation set records no score and names no model faceaudit knows: faceaudit's "
                          "default; give --score neg_euclidean if its model compares by distance")
    return "cosine", ("no --score given: faceaudit's default; give --score neg_euclidean "
                      "if the templates' model compares by distance (dlib)")


def _known_model_score(model: dict) -> str | None:
    """The score of a built-in model named in an older embed.json (by its adapter's name)."""
    name = str(model.get("name") or "")
    if not name:
        return None
    lowered = name.lower()
    if lowered.startswith("dlib"):
        return "neg_euclidean"
    if "sface" in lowered:
        return "cosine"
    return None

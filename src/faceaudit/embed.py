"""Images to templates: ``faceaudit embed``.

Input: a folder with one sub-folder per subject (``<subject>/<image>``), or a manifest
(CSV/Parquet) with an ``image`` column (paths relative to the manifest's folder), a
``subject_id`` column and optional attribute columns, which are carried through.

Output folder (written atomically): ``templates.npy`` and ``manifest.csv`` for images that
enrolled (``template_id`` = image path relative to the input), ``failures.csv`` for those
that did not (no face found, unreadable, corrupt, zero-byte or non-image file), and
``embed.json`` (model, options, counts, failure-to-enrol rate, time). Failures are recorded,
never dropped silently; ``faceaudit audit --evalset`` reads them.

Work runs in worker processes (2 by default) with a progress bar. Templates are cached on disk
keyed by the SHA-256 of the image bytes and the model's name, version and options, so a second
run over the same images costs nothing and an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from faceaudit.errors import InputError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".bmp", ".tif", ".tiff", ".webp", ".gif"}


@dataclass(frozen=True)
class ImageItem:
    path: Path
    template_id: str
    subject_id: str
    attributes: tuple = ()


def items_from_folder(folder: str | Path) -> list[ImageItem]:
    """One item per file under ``folder/<subject>/`` (subject = sub-folder name).

    Every regular file is listed (non-image files are recorded as failures, not skipped), but
    a folder holding no file with an image suffix is an error.
    """
    root = Path(folder)
    if not root.exists():
        raise InputError("image folder not found", root)
    if not root.is_dir():
        raise InputError("expected a folder of subject sub-folders (or a manifest .csv/.parquet)", root)
    items = [ImageItem(p, p.relative_to(root).as_posix(), p.parent.name)
             for sub in sorted(d for d in root.iterdir() if d.is_dir())
             for p in sorted(sub.iterdir()) if p.is_file() and not p.name.startswith(".")]
    if not any(i.path.suffix.lower() in IMAGE_SUFFIXES for i in items):
        raise InputError("no images found (expected <folder>/<subject>/<image> files)", root)
    return items


def items_from_manifest(path: str | Path) -> tuple[list[ImageItem], list[str]]:
    """Items from a manifest with ``image`` and ``subject_id`` columns; returns the attribute names."""
    path = Path(path)
    if not path.exists():
        raise InputError("manifest not found", path)
    table = pd.read_csv(path, dtype=str) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    missing = [c for c in ("image", "subject_id") if c not in table.columns]
    if missing:
        raise InputError(f"missing required column(s) {', '.join(missing)}", path)
    if table.empty:
        raise InputError("manifest lists no images", path)
    attrs = [c for c in table.columns if c not in ("image", "subject_id", "template_id")]
    items = []
    for row in table.itertuples(index=False):
        image = Path(getattr(row, "image"))
        full = image if image.is_absolute() else path.parent / image
        tid = getattr(row, "template_id", None) if "template_id" in table.columns else None
        items.append(ImageItem(full, str(tid or image.as_posix()), str(getattr(row, "subject_id")),
                               tuple(getattr(row, a) for a in attrs)))
    return items, attrs


def read_rgb(data: bytes) -> np.ndarray:
    """Decode image bytes to an RGB uint8 array (greyscale and palette images converted)."""
    import io

    from PIL import Image, UnidentifiedImageError
    if not data:
        raise ValueError("empty (zero-byte) file")
    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))
    except UnidentifiedImageError:
        raise ValueError("not an image Pillow can read") from None
    except OSError as exc:
        raise ValueError(f"corrupt image ({exc})") from None


class TemplateCache:
    """Templates on disk under ``root/<model key>/<sha[:2]>/<sha>.npy`` (failures as ``.fail``)."""

    def __init__(self, root: str | Path | None, model_info: dict) -> None:
        self.enabled = root is not None
        key = hashlib.sha256(json.dumps(model_info, sort_keys=True).encode()).hexdigest()[:16]
        self.root = Path(root) / key if root is not None else None
        if self.root is not None:
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / "model.json").write_text(json.dumps(model_info, indent=1))

    def _path(self, digest: str, suffix: str) -> Path:
        return self.root / digest[:2] / f"{digest}{suffix}"

    def get(self, digest: str):
        """(template, None), (None, reason) or None when not cached."""
        if not self.enabled:
            return None
        path = self._path(digest, ".npy")
        if path.exists():
            return np.load(path), None
        fail = self._path(digest, ".fail")
        if fail.exists():
            return None, fail.read_text()
        return None

    def put(self, digest: str, template, failure) -> None:
        if not self.enabled:
            return
        path = self._path(digest, ".npy" if template is not None else ".fail")
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
        if template is not None:
            with open(tmp, "wb") as fh:
                np.save(fh, template)
        else:
            tmp.write_text(failure)
        os.replace(tmp, path)


def default_cache_dir() -> Path:
    return Path(os.environ.get("FACEAUDIT_CACHE", Path.home() / ".cache" / "faceaudit"))


# ---------------------------------------------------------------- worker processes
_ADAPTER = None


def _init_worker(model: str, options: dict) -> None:
    global _ADAPTER
    from faceaudit.models import load_adapter
    _ADAPTER = load_adapter(model, **options)


def _embed_bytes(job: tuple[int, bytes]):
    index, data = job
    try:
        image = read_rgb(data)
    except ValueError as exc:
        return index, None, str(exc)
    outcome = _ADAPTER.embed_image(image)
    return index, outcome.template, outcome.failure


def _read(item: ImageItem) -> tuple[bytes | None, str | None]:
    try:
        return item.path.read_bytes(), None
    except OSError as exc:
        return None, f"unreadable file ({exc.strerror or exc})"


def embed_images(items: Iterable[ImageItem], out_dir: str | Path, *, model: str = "dlib",
                 model_options: dict | None = None, attributes: list[str] | None = None,
                 workers: int = 2, cache_dir: str | Path | None = "default", overwrite: bool = False,
                 progress: Callable[[int, int], None] | None = None) -> dict:
    """Embed every image; write the output folder (see module docstring); return ``embed.json``."""
    from faceaudit.models import load_adapter
    items = list(items)
    if not items:
        raise InputError("no images to embed")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise InputError("output folder exists and is not empty (use --overwrite)", out)
    options = dict(model_options or {})
    adapter = load_adapter(model, **options)  # fails early and clearly if the model is missing
    info = adapter.describe()
    cache = TemplateCache(default_cache_dir() if cache_dir == "default" else cache_dir, info)
    started = time.perf_counter()
    templates: list = [None] * len(items)
    failures: list = [None] * len(items)
    pending: list[tuple[int, bytes]] = []
    digests: list = [None] * len(items)
    done = 0
    for i, item in enumerate(items):
        data, error = _read(item)
        if data is None:
            failures[i] = error
            done += 1
            continue
        digests[i] = hashlib.sha256(data).hexdigest()
        hit = cache.get(digests[i])
        if hit is not None:
            templates[i], failures[i] = hit
            done += 1
        else:
            pending.append((i, data))
    cached = done
    if progress:
        progress(done, len(items))

    def record(index, template, failure):
        nonlocal done
        templates[index], failures[index] = template, failure
        cache.put(digests[index], template, failure)
        done += 1
        if progress:
            progress(done, len(items))

    if pending:
        if workers <= 1 or len(pending) < 4:
            _init_worker(model, options)
            for job in pending:
                record(*_embed_bytes(job))
        else:
            ctx = mp.get_context("spawn")
            with ctx.Pool(workers, initializer=_init_worker, initargs=(model, options)) as pool:
                for result in pool.imap_unordered(_embed_bytes, pending, chunksize=4):
                    record(*result)
    elapsed = time.perf_counter() - started

    ok = [i for i in range(len(items)) if templates[i] is not None]
    bad = [i for i in range(len(items)) if templates[i] is None]
    dims = {templates[i].shape[0] for i in ok}
    if len(dims) > 1:
        raise InputError(f"model returned templates of different lengths {sorted(dims)}")
    attrs = list(attributes or [])

    def table(rows, extra):
        frame = pd.DataFrame({"template_id": [items[i].template_id for i in rows],
                              "subject_id": [items[i].subject_id for i in rows],
                              "image": [str(items[i].path) for i in rows], **extra})
        for j, a in enumerate(attrs):
            frame[a] = [items[i].attributes[j] for i in rows]
        return frame

    summary = {"model": info, "images": len(items), "enrolled": len(ok), "failed": len(bad),
               "fte_rate": len(bad) / len(items), "from_cache": cached, "embedded": len(pending),
               "seconds": round(elapsed, 2), "workers": workers,
               "failure_reasons": pd.Series([failures[i].split(" (")[0] for i in bad], dtype=str).value_counts().to_dict()}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        matrix = np.stack([templates[i] for i in ok]).astype(np.float32) if ok else np.zeros((0, 0), np.float32)
        np.save(tmp / "templates.npy", matrix)
        table(ok, {}).to_csv(tmp / "manifest.csv", index=False)
        table(bad, {"reason": [failures[i] for i in bad]}).to_csv(tmp / "failures.csv", index=False)
        (tmp / "embed.json").write_text(json.dumps(summary, indent=1))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary

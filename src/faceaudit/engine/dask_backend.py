"""The engine on a Dask cluster: the same search, split into tasks, merged into the same result.

``DaskBackend`` implements :func:`faceaudit.engine.local.search`'s interface (``backend.search``) on a
``dask.distributed`` cluster (``pip install 'faceaudit[dask]'``): a local one it starts
(``workers=N``: N worker processes on this machine, one thread each) or an existing one
(``scheduler="tcp://host:8786"``: ``dask scheduler`` / ``dask worker``, dask-jobqueue,
Kubernetes...). Use it with ``run_audit(..., backend=DaskBackend(...))`` or ``faceaudit audit
--workers N`` / ``--scheduler ADDRESS``.

The work graph (plain Dask futures; Dask schedules, moves results between workers and
re-runs the tasks of a worker that dies):

* the gallery, sorted by subject exactly as the engine sorts it, is cut at subject boundaries
  into *shards* of at most ``shard_templates`` templates; the probes into *blocks* of
  ``probes_per_task`` rows;
* per probe block, one *genuine* task: reference scores of each probe against its mate's
  gallery templates (:func:`faceaudit.engine._kernel.genuine_block`), giving the mate scores;
* per (probe block x gallery shard), one *shard* task: the engine's own tiled pass
  (:func:`faceaudit.engine.local.run_units`) on that shard, returning a
  :class:`faceaudit.engine.counts.ShardResult` (best non-mate, count of non-mates ``>=`` the mate,
  top-K, fine and coarse impostor histograms, per-group counts);
* per probe block, one *merge* task: :func:`faceaudit.engine.counts.merge_gallery_shards`; the
  client puts the merged blocks in place exactly as the engine's own loop does, and ends with
  the engine's own :func:`faceaudit.engine.local.finish_search` (ranks, the folded histogram).

Every reported score is a reference score (:mod:`faceaudit.engine._kernel`) and every summary merges
by max, addition or an exact top-K union, so the result is bit for bit the single-process
engine's whatever the number of workers, the shard and block sizes and the order in which
tasks run (tested). A task is a pure function of its inputs: if Dask re-runs it after a worker
died, its result is the same and it is merged once.

Workers read the templates themselves, only the rows a task needs, from a path they can reach
(a memory-mapped ``.npy`` or a Parquet file, read by row groups); templates never travel
through the scheduler. Each task checks a digest of the rows it read against the rows the
client loaded, so a worker that sees another file at that path fails with one clear line.
No task holds more than one gallery shard, and ``memory_per_worker`` bounds what a task holds
(the shard, its tiles, histograms and the probe block), as ``memory_budget`` does on one
machine; a worker whose memory limit is below it is refused before any work starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from auditcore.errors import InputError
from faceaudit.engine import _kernel
from faceaudit.engine import local as engine
from faceaudit.engine.counts import N_BINS, SearchResult, ShardResult, merge_gallery_shards

DEFAULT_MEMORY_PER_WORKER = engine.DEFAULT_MEMORY_BUDGET
WORKER_BASELINE = 512 * 2**20  # a worker process (~190 MiB idle) and what it holds beyond a task's budget (measured: peak = budget + 300-560 MiB)
TARGET_TASK_COMPARISONS = 2e9   # a few seconds of work per task on one core


# ---- reading templates on a worker ---------------------------------------------------------------

@dataclass(frozen=True)
class TemplateSource:
    """Where workers read the templates: an absolute path to ``.npy`` or Parquet, and the shape
    the client loaded (rows are cast to float32 exactly as :func:`faceaudit.data.evalset.validate` does)."""

    path: str
    n: int
    dim: int

    @property
    def kind(self) -> str:
        suffix = Path(self.path).suffix.lower()
        return "npy" if suffix == ".npy" else "parquet"

    def check(self) -> dict:
        """Open the file and check its shape (run on every worker before any work)."""
        p = Path(self.path)
        if not p.is_file():
            raise InputError("templates not found on this worker (workers must reach the same path)", self.path)
        if self.kind == "npy":
            shape = self._npy().shape
        else:
            import pyarrow.parquet as pq
            try:
                meta = pq.ParquetFile(self.path).metadata
            except Exception as exc:  # noqa: BLE001 - any reader failure is one clear line
                raise InputError(f"worker cannot read templates ({exc})", self.path) from None
            shape = (meta.num_rows, None)
        if shape[0] != self.n or (shape[1] is not None and shape[1] != self.dim):
            raise InputError(f"workers see templates of shape {shape}, the client loaded ({self.n}, {self.dim}); "
                             "they must read the same file", self.path)
        return {"pid": os.getpid()}

    def _npy(self) -> np.ndarray:
        try:
            x = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputError(f"worker cannot read templates ({exc})", self.path) from None
        if x.ndim != 2:
            raise InputError(f"templates must be a 2-d n x d array, got shape {x.shape}", self.path)
        return x

    def rows(self, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` (in that order) as a C-contiguous float32 array."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.kind == "npy":
            from faceaudit.data.evalset import drop_pages
            x = self._npy()
            out = np.ascontiguousarray(x[rows], dtype=np.float32)
            drop_pages(x)  # the mapped file pages would otherwise count in the worker's RSS
            return out
        return self._parquet_rows(rows)

    def _parquet_rows(self, rows: np.ndarray) -> np.ndarray:
        import pyarrow.parquet as pq

        from faceaudit.data.evalset import _read_templates  # noqa: F401  (same conversion, see _frame_array)
        pf = pq.ParquetFile(self.path)
        sizes = np.array([pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)], np.int64)
        first = np.concatenate([[0], np.cumsum(sizes)])
        out = np.empty((rows.size, self.dim), np.float32)
        group_of = np.searchsorted(first, rows, side="right") - 1
        for g in np.unique(group_of):
            frame = pf.read_row_group(int(g)).to_pandas()
            block = _frame_array(frame)
            take = np.flatnonzero(group_of == g)
            out[take] = block[rows[take] - first[g]]
        return out


def _frame_array(frame) -> np.ndarray:
    """A Parquet template frame as an array, as :func:`faceaudit.data.evalset._read_templates` reads it."""
    if frame.shape[1] == 1 and frame.dtypes.iloc[0] == object:
        return np.stack(frame.iloc[:, 0].to_numpy())
    return frame.to_numpy()


def _digest(x: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(x, dtype=np.float32).tobytes(), digest_size=16).hexdigest()


def _read_checked(source: TemplateSource, rows: np.ndarray, digest: str, what: str) -> np.ndarray:
    x = source.rows(rows)
    if _digest(x) != digest:
        raise InputError(f"a worker read different {what} templates at this path than the client loaded; "
                         "workers must read the same file", source.path)
    return x


# ---- the gallery as the engine lays it out (client side, no template copy) -----------------------

def gallery_layout(evalset, gallery_rows: np.ndarray, score: str, gallery_groups=None) -> "engine._Gallery":
    """Subjects, row order, subject bounds, groups and norms exactly as the engine lays the
    gallery out: :class:`faceaudit.engine.local._Gallery` without gathering the templates."""
    return engine._Gallery(evalset, np.asarray(gallery_rows), score, gallery_groups, gather=False)


shard_bounds = engine.subject_ranges  # subject ranges of at most ``shard_templates`` templates


# ---- tasks (run on workers; pure functions of their arguments) -----------------------------------

@dataclass(frozen=True)
class _Job:
    source: TemplateSource
    score: str
    top_k: int
    thresholds: np.ndarray
    n_groups: int
    memory: int
    threads: int
    sq_max: float
    floor: int = 0


def _set_threads(n: int) -> None:
    import numba
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    try:
        import threadpoolctl
        threadpoolctl.threadpool_limits(n, user_api="blas")
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn / distributed
        pass


def _genuine_task(job: _Job, block: dict, mates: dict) -> dict:
    """Reference scores of each probe of the block against its mate's gallery templates."""
    _set_threads(job.threads)
    P, _ = engine._gather(_read_checked(job.source, block["rows"], block["digest"], "probe"),
                          np.arange(block["rows"].size), job.score)
    G, _ = engine._gather(_read_checked(job.source, mates["rows"], mates["digest"], "gallery"),
                          np.arange(mates["rows"].size), job.score)
    n = block["rows"].size
    gen = np.empty(int(mates["gen_offset"][-1]), np.float32)
    mate = np.full(n, np.nan, np.float32)
    _kernel.genuine_block(engine.SCORE_KINDS[job.score], P, G, mates["local"], mates["start"],
                          mates["gen_offset"][:-1], gen, mate)
    return {"genuine": gen, "mate_score": mate}


def _shard_task(job: _Job, block: dict, genuine: dict, shard: dict) -> ShardResult:
    """One probe block against one gallery shard: the engine's own tiled pass
    (:func:`faceaudit.engine.local.run_units`), returning a :class:`ShardResult` with its fine
    histogram stored sparse and its coarse histogram."""
    _set_threads(job.threads)
    kind = engine.SCORE_KINDS[job.score]
    n = block["rows"].size
    P, psq = engine._gather(_read_checked(job.source, block["rows"], block["digest"], "probe"),
                            np.arange(n), job.score)
    raw = _read_checked(job.source, shard["rows"], shard["digest"], "gallery")
    gal = object.__new__(engine._Gallery)
    gal.vectors, sq = engine._gather(raw, np.arange(raw.shape[0]), job.score)
    del raw
    gal.subject_ids = np.empty(0, dtype=object)
    gal.rows, gal.start, gal.groups = shard["rows"], shard["start"], shard["groups"]
    gal.sq32, gal.sq_max, gal.offset = sq.astype(np.float32), job.sq_max, shard["offset"]
    gal.col_subject = (np.repeat(np.arange(gal.start.size - 1, dtype=np.int32), np.diff(gal.start))
                       + np.int32(gal.offset))
    blk = engine._Block(kind, P, psq, job.sq_max, block["mate_subject"], genuine["mate_score"])
    import threadpoolctl
    with engine.worker_threads(kind, engine.max_width(gal), job.threads) as (pool, works, all_works):
        with threadpoolctl.threadpool_limits(1, user_api="blas"):
            (part,) = engine.run_units(kind, [gal], blk, job.thresholds, job.n_groups, job.top_k, job.floor,
                                       pool, works)
    fine, coarse = engine.histograms(all_works)
    part = replace(part, hist=fine, coarse=coarse, n_recomputed=int(sum(int(w.counter[0]) for w in all_works)))
    return _sparse(part)


def _spec(x):
    """A task whose result is its argument: metadata that Dask keeps (and can recompute)."""
    return x


def _sparse(r: ShardResult) -> ShardResult:
    """The same result with its 2**20-bin histogram as (bins, counts): small to move."""
    bins = np.flatnonzero(r.hist)
    return replace(r, hist=(bins, r.hist[bins]))


def _merge_task(genuine: dict, *parts: ShardResult) -> dict:
    """Merge one probe block's shard results with the engine's own merge
    (:func:`faceaudit.engine.counts.merge_gallery_shards`), the sparse histograms summed into one."""
    hist = np.zeros(N_BINS, np.int64)
    for p in parts:
        bins, counts = p.hist
        hist[bins] += counts
    merged = merge_gallery_shards([replace(p, hist=np.zeros(1, np.int64)) for p in parts])
    return {"merged": _sparse(replace(merged, hist=hist)), **genuine}


# ---- the backend -----------------------------------------------------------------------------------

def task_bytes(shard: int, dim: int, threads: int = 1, probes: int = 1024, top_k: int = 20) -> int:
    """What one shard task holds at its peak: the engine's overhead for the shard (its float32
    copy, per-thread tiles and histograms), the rows as read, and the probe block with its
    per-row summaries (:func:`faceaudit.engine.local.row_bytes`)."""
    return int(engine.engine_overhead(shard, shard, dim, threads) + 4 * dim * shard
               + probes * engine.row_bytes(dim, top_k))


class DaskBackend:
    """Run :func:`faceaudit.engine.local.search` on a Dask cluster; see the module docstring.

    ``workers``: start a local cluster of that many worker processes (one thread each);
    ``scheduler``: connect to an existing scheduler; ``client``: use a ``distributed.Client``
    you made (it is not closed). ``memory_per_worker``: bytes one task may hold (default: the
    search's ``memory_budget``); ``shard_templates``: gallery templates per shard (default: the
    largest whose task fits ``memory_per_worker``, see :func:`task_bytes`); ``probes_per_task``:
    probe rows per task (default: about 2e9 comparisons per shard task); ``threads_per_task``: numba/BLAS threads
    in a task. ``templates_path``: where the workers read the templates (default: the file the
    evaluation set was loaded from). ``shuffle_seed``: submit tasks in a random order (tests).
    ``connect_timeout``: seconds to reach the scheduler and for a worker to join (default
    ``$FACEAUDIT_DASK_TIMEOUT`` or 10).
    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, *, workers: int | None = None, scheduler: str | None = None, client=None,
                 memory_per_worker: int | None = None, shard_templates: int | None = None,
                 probes_per_task: int | None = None, threads_per_task: int = 1,
                 templates_path: str | os.PathLike | None = None, shuffle_seed: int | None = None,
                 connect_timeout: float | None = None, worker_memory_limit: str | int = "auto"):
        if sum(x is not None for x in (workers, scheduler, client)) != 1:
            raise InputError("give exactly one of workers (a local cluster), scheduler (an address) or client")
        if workers is not None and workers < 1:
            raise InputError(f"--workers must be at least 1, got {workers}")
        if memory_per_worker is not None and memory_per_worker <= 0:
            raise InputError(f"memory per worker must be positive, got {memory_per_worker}")
        self.workers, self.scheduler, self.memory_per_worker = workers, scheduler, memory_per_worker
        self.shard_templates, self.probes_per_task = shard_templates, probes_per_task
        self.threads_per_task, self.templates_path, self.shuffle_seed = int(threads_per_task), templates_path, shuffle_seed
        self.connect_timeout = float(connect_timeout if connect_timeout is not None
                                     else os.environ.get("FACEAUDIT_DASK_TIMEOUT", 10))
        self.worker_memory_limit = worker_memory_limit
        self._client, self._own_client, self._cluster = client, False, None
        self.last_plan: dict = {}

    # -- cluster lifecycle
    def start(self):
        """Connect (or start the local cluster); return the ``distributed.Client``."""
        if self._client is not None:
            return self._client
        try:
            import distributed
        except ImportError:
            raise InputError("the Dask backend needs Dask: pip install 'faceaudit[dask]'") from None
        import logging
        if self.workers is not None:
            self._cluster = distributed.LocalCluster(
                n_workers=self.workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                memory_limit=self.worker_memory_limit, silence_logs=logging.ERROR)
            self._client = distributed.Client(self._cluster)
        else:
            try:
                self._client = distributed.Client(self.scheduler, timeout=self.connect_timeout)
            except (OSError, TimeoutError, ValueError) as exc:
                raise InputError(f"cannot reach the Dask scheduler at {self.scheduler} "
                                 f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no answer'})") from None
        self._own_client = True
        return self._client

    def close(self) -> None:
        if self._own_client and self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def __enter__(self) -> "DaskBackend":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def client(self):
        return self.start()

    # -- the search
    def search(self, evalset, protocol, *, score: str = "cosine", top_k: int = 20,
               memory_budget: int | None = None, block_size: int | None = None,
               thresholds=None, gallery_groups=None, progress: Callable[[int, int], None] | None = None,
               gallery_shards: int | None = None, fine_floor_bin: int | None = None) -> SearchResult:
        """Same arguments and result as :func:`faceaudit.engine.local.search` (``block_size`` and
        ``gallery_shards`` set the probe rows per task and the number of shards if given)."""
        if score not in engine.SCORE_KINDS:
            raise InputError(f"unknown score '{score}' (choose from {', '.join(engine.SCORE_KINDS)})")
        if top_k < 1:
            raise InputError(f"top_k must be at least 1, got {top_k}")
        thr = np.asarray([] if thresholds is None else thresholds, dtype=np.float32).ravel()
        if thr.size and gallery_groups is None:
            raise InputError("thresholds need gallery_groups")
        source = self._source(evalset)
        if progress is not None:
            progress(0, protocol.probes.size)
        memory = int(self.memory_per_worker or memory_budget or DEFAULT_MEMORY_PER_WORKER)
        client = self.client
        self._check_workers(client, source, memory)

        lay = gallery_layout(evalset, protocol.gallery, score, gallery_groups)
        n_g, dim = lay.rows.size, evalset.dim
        n_groups = int(lay.groups.max()) + 1 if (gallery_groups is not None and n_g) else 0
        probe_rows = protocol.probes
        n_probes, n_mated = probe_rows.size, protocol.mated.size
        mate_subject = np.full(n_probes, -1, dtype=np.int32)
        # through the integer subject codes, as the engine does (never a search among strings)
        mate_subject[:n_mated] = np.searchsorted(lay.subject_codes, evalset.subject_codes[protocol.mated])
        safe = np.maximum(mate_subject, 0)
        mate_n = np.where(mate_subject >= 0, lay.start[safe + 1] - lay.start[safe], 0)

        threads = self.threads_per_task
        if gallery_shards:
            shard_templates = -(-n_g // int(gallery_shards))
        elif self.shard_templates:
            shard_templates = int(self.shard_templates)
        else:  # the largest shard (from a quarter of the memory down) whose task fits the memory
            shard_templates = max(1, (memory // 4) // (4 * dim + 21 * threads + 16))
            while shard_templates > 1 and task_bytes(shard_templates, dim, threads) > memory:
                shard_templates = int(shard_templates * 0.9)
        need = task_bytes(min(shard_templates, max(n_g, 1)), dim, threads)
        if need > memory:
            raise InputError(f"memory per worker {memory / 2**20:.0f} MiB is too little for one task "
                             f"(a gallery shard of {shard_templates:,} templates and one BLAS call's scores need "
                             f"about {need / 2**20:.0f} MiB); give workers more memory or use smaller shards")
        bounds = shard_bounds(lay.start, shard_templates)
        per_task = block_size or self.probes_per_task or int(  # about 2e9 comparisons per shard task
            np.clip(TARGET_TASK_COMPARISONS // max(min(shard_templates, n_g), 1), 64, 65536))
        per_task = max(1, min(int(per_task), n_probes))
        blocks = [(a, min(a + per_task, n_probes)) for a in range(0, n_probes, per_task)]
        n_impostor = int(n_probes) * int(n_g) - int(mate_n.sum())
        budget = engine.tail_budget(n_impostor)
        floor = engine.fine_floor(evalset, probe_rows, lay.rows, score, budget, n_impostor) \
            if fine_floor_bin is None else int(fine_floor_bin)
        job = _Job(source, score, int(top_k), thr, n_groups, memory, threads, lay.sq_max, floor)
        self.last_plan = {"shards": len(bounds), "blocks": len(blocks), "probes_per_task": per_task,
                          "shard_templates": int(shard_templates), "memory_per_worker": memory,
                          "tasks": len(blocks) * (len(bounds) + 2)}

        # shard metadata (row indices, never templates), each a task of its own so that Dask can
        # recompute it if the worker holding it dies (scattered data would be lost with it)
        tpl = evalset.templates
        shard_specs = []
        for lo, hi in bounds:
            a, b = lay.start[lo], lay.start[hi]
            rows = lay.rows[a:b]
            shard_specs.append({"rows": rows, "start": lay.start[lo:hi + 1] - a, "offset": int(lo),
                                "groups": lay.groups[a:b], "digest": _digest(tpl[rows])})
        shard_futures = [client.submit(_spec, spec, pure=False) for spec in shard_specs]

        order = list(range(len(blocks)))
        shard_order = list(range(len(bounds)))
        if self.shuffle_seed is not None:
            rng = np.random.default_rng(self.shuffle_seed)
            order = list(rng.permutation(order))
            shard_order = list(rng.permutation(shard_order))
        pending = {}
        for b in order:
            start, stop = blocks[b]
            rows = probe_rows[start:stop]
            ms = mate_subject[start:stop]
            block = {"rows": rows, "mate_subject": ms, "digest": _digest(tpl[rows])}
            idx, m_start, local = engine.mate_layout(lay.start, ms)
            m_rows = lay.rows[idx]
            mates = {"rows": m_rows, "start": m_start, "local": local, "digest": _digest(tpl[m_rows]),
                     "gen_offset": np.concatenate([[0], np.cumsum(mate_n[start:stop])]).astype(np.int64)}
            block_f = client.submit(_spec, block, pure=False)
            gen_f = client.submit(_genuine_task, job, block_f, mates, pure=False)
            parts = [client.submit(_shard_task, job, block_f, gen_f, shard_futures[s], pure=False)
                     for s in shard_order]
            pending[client.submit(_merge_task, gen_f, *parts, pure=False)] = b
        del shard_futures

        best = np.empty(n_probes, np.float32)
        mate = np.full(n_probes, np.nan, np.float32)
        n_ge = np.zeros(n_probes, np.int64)
        cand_u = np.empty((n_probes, top_k), np.int32)
        cand_s = np.empty((n_probes, top_k), np.float32)
        gen_parts: dict[int, np.ndarray] = {}
        gcounts = np.zeros((n_probes, max(n_groups, 1) if thr.size else 1, max(thr.size, 1)), np.int64)
        fine = np.zeros(N_BINS, np.int64)
        coarse = None
        n_recomputed, done = 0, 0
        from distributed import as_completed
        try:
            for fut in as_completed(list(pending)):
                b = pending.pop(fut)
                out = self._result(fut, memory)
                fut.release()
                start, stop = blocks[b]
                blk = slice(start, stop)
                merged = out["merged"]
                mate[blk] = out["mate_score"]
                gen_parts[b] = out["genuine"]
                best[blk], n_ge[blk] = merged.best, merged.n_ge
                _kernel.assemble_candidates(merged.top_subject, merged.top_score, mate_subject[blk], mate[blk],
                                            merged.n_ge, cand_u[blk], cand_s[blk])
                bins, counts = merged.hist
                fine[bins] += counts
                coarse = merged.coarse if coarse is None else coarse + merged.coarse
                gcounts[blk] = merged.group_counts
                n_recomputed += merged.n_recomputed
                done += stop - start
                if progress is not None:
                    progress(done, n_probes)
        finally:
            for fut in pending:
                fut.cancel()
        gen = np.concatenate([gen_parts[b] for b in range(len(blocks))]) if blocks else np.empty(0, np.float32)
        if coarse is None:
            coarse = np.zeros(engine.coarse_edge_bins(score).size, np.int64)
        if floor > 0 and engine.tau_of(coarse, budget) < floor:  # the sample placed the floor too high (rare)
            return self.search(evalset, protocol, score=score, top_k=top_k, memory_budget=memory_budget,
                               block_size=block_size, thresholds=thresholds, gallery_groups=gallery_groups,
                               progress=progress, gallery_shards=gallery_shards, fine_floor_bin=0)
        return engine.finish_search(
            evalset=evalset, protocol=protocol, score=score, gallery_subject_ids=lay.subject_ids,
            gallery_groups_sorted=lay.groups, gallery_start=lay.start, n_gallery=n_g, mate_subject=mate_subject,
            mate_n=mate_n, best=best, mate=mate, n_ge=n_ge, cand_u=cand_u, cand_s=cand_s, gen=gen, fine=fine,
            coarse=coarse, budget=budget, thr=thr, gcounts=gcounts, n_groups=n_groups, n_recomputed=n_recomputed)

    # -- checks and errors
    def _source(self, evalset) -> TemplateSource:
        path = self.templates_path or evalset.source
        if path in (None, "in-memory") or not (self.templates_path or Path(path).is_file()):
            raise InputError("the Dask backend reads templates from a file every worker can reach (.npy or "
                             "Parquet); this evaluation set was not loaded from one (give templates_path)")
        return TemplateSource(str(Path(path).absolute()), evalset.n, evalset.dim)

    def _check_workers(self, client, source: TemplateSource, memory: int) -> None:
        try:
            client.wait_for_workers(1, timeout=self.connect_timeout)
        except (TimeoutError, OSError):
            raise InputError(f"no Dask worker joined the scheduler {client.scheduler.address} "
                             f"within {self.connect_timeout:g} s") from None
        info = client.scheduler_info(n_workers=-1)["workers"] if _accepts_n_workers(client) else \
            client.scheduler_info()["workers"]
        for addr, w in sorted(info.items()):
            limit = w.get("memory_limit") or 0
            if limit and limit < memory + WORKER_BASELINE:
                raise InputError(f"Dask worker {addr} has a memory limit of {limit / 2**20:.0f} MiB, less than the "
                                 f"{(memory + WORKER_BASELINE) / 2**20:.0f} MiB a task needs ({memory / 2**20:.0f} MiB "
                                 f"memory per worker + {WORKER_BASELINE / 2**20:.0f} MiB for the process); give "
                                 "workers more memory or lower the memory per worker (--memory-mb)")
        try:
            client.run(source.check)
        except InputError as exc:
            raise InputError(f"a Dask worker cannot use the templates: {exc.problem}", source.path) from None
        except Exception as exc:  # noqa: BLE001 - any worker-side failure is one clear line
            raise InputError(f"a Dask worker cannot read the templates ({type(exc).__name__}: {exc})",
                             source.path) from None

    def _result(self, fut, memory: int):
        from distributed import KilledWorker
        try:
            return fut.result()
        except InputError:
            raise
        except KilledWorker:
            raise InputError(f"Dask workers died running the same task repeatedly (killed, or out of memory with "
                             f"{memory / 2**20:.0f} MiB per task: give workers more memory or lower --memory-mb)") from None
        except MemoryError:
            raise InputError(f"a Dask worker ran out of memory ({memory / 2**20:.0f} MiB per task: give workers "
                             "more memory or lower --memory-mb)") from None


def _accepts_n_workers(client) -> bool:
    import inspect
    return "n_workers" in inspect.signature(client.scheduler_info).parameters


def cluster_backend(workers: int | None, scheduler: str | None, **options):
    """A context manager giving a started :class:`DaskBackend` for ``--workers``/``--scheduler``,
    or ``None`` (the single-process engine) when neither is given."""
    if workers is None and scheduler is None:
        return contextlib.nullcontext(None)
    if workers is not None and scheduler is not None:
        raise InputError("give --workers (a local cluster) or --scheduler (an existing one), not both")
    return DaskBackend(workers=workers, scheduler=scheduler, **options)

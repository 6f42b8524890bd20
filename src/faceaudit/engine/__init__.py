"""The engine: scores to counts, in one blockwise pass, exact.

* :mod:`~faceaudit.engine.counts`: the engine's output type (:class:`SearchResult`: per-search
  best non-mate, mate score and rank, candidate lists, genuine scores, the impostor histogram)
  and its bin convention (``hist_edges``, ``score_bin``); partial results merge by addition or
  max (``merge_probe_splits``, ``merge_gallery_shards``). Everything downstream reads this type;
* :mod:`~faceaudit.engine.local`: the single-process engine (``search``), memory-budgeted blocks;
* :mod:`~faceaudit.engine._kernel`: the hot loop (numba), used only by the two backends;
* :mod:`~faceaudit.engine.dask_backend`: the same blocks on a Dask cluster, merged the same way;
* :mod:`~faceaudit.engine.observed`: a black-box system's candidate lists as the same per-search
  counts (read instead of computed), with what the lists cannot show.

May import: :mod:`faceaudit.data` and :mod:`auditcore`.
"""

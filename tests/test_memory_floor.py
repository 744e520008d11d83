"""Too-small worker memory limits are refused with one line (issue 14): at 300 MB or 400 MB per worker, Dask
paused every worker at its idle size and the run hung without a word."""

from __future__ import annotations

import time

import psutil
import pytest
from distributed import Client, LocalCluster

from genotex_dask import cluster


@pytest.mark.parametrize("limit", ["300MB", "400MB", "0.000001", 100 * 2**20])
def test_small_limits_are_refused_before_any_process_starts(limit):
    t = time.perf_counter()
    with pytest.raises(cluster.MemoryLimitError) as ei:
        with cluster.connect(workers=2, memory_limit=limit, quiet=True):
            pass
    msg = str(ei.value)
    assert "\n" not in msg and "per worker" in msg and "fewer --workers" in msg
    assert time.perf_counter() - t < 2


def test_usable_limits_pass_and_garbage_is_named():
    assert cluster.check_memory_limit("2GB", 2) == 2 * 10**9
    assert cluster.check_memory_limit(None, 2) is None
    with pytest.raises(cluster.MemoryLimitError, match="not a size"):
        cluster.check_memory_limit("lots", 2)


def _rss_after_imports() -> float:
    import anndata  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import zarr  # noqa: F401

    import genotex_dask.io.geo  # noqa: F401
    import genotex_dask.pipelines.analyze  # noqa: F401
    import genotex_dask.pipelines.ingest  # noqa: F401
    import genotex_dask.pipelines.preprocess  # noqa: F401

    return psutil.Process().memory_info().rss


def _slow(x):
    time.sleep(0.2)
    return x


@pytest.mark.timeout(90)
def test_a_cluster_paused_for_good_is_an_error_not_a_hang(monkeypatch):
    """Every worker paused by its memory monitor (pause fraction forced tiny) with work pending: the stage's
    wait loop raises ClusterPausedError naming the cause instead of waiting forever."""
    import dask

    from genotex_dask.progress import as_completed_with_progress

    monkeypatch.setattr(cluster, "PAUSED_ERROR_AFTER_S", 1.0)
    with dask.config.set({"distributed.worker.memory.pause": 0.001, "distributed.worker.memory.spill": False,
                          "distributed.worker.memory.target": False,
                          "distributed.worker.memory.monitor-interval": "50ms"}):
        with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, memory_limit="2GB",
                          dashboard_address=None) as lc, Client(lc) as c:
            futs = [c.submit(_slow, i, pure=False) for i in range(3)]
            with pytest.raises(cluster.ClusterPausedError, match="all 1 workers paused .* raise --memory-limit"):
                list(as_completed_with_progress(futs, "t", enabled=False))
            # the floor is grounded in a measurement: a worker process's RSS after the engine's imports (client.run
            # reaches a paused worker) stays below the 80% of MIN_WORKER_MEMORY where Dask would pause it
            (rss,) = c.run(_rss_after_imports).values()
    assert rss < 0.8 * cluster.MIN_WORKER_MEMORY, rss / 2**20
    assert rss < 1.5 * cluster.WORKER_IDLE_BYTES

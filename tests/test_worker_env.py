"""The embedded cluster's worker processes get the malloc settings of ``cluster.WORKER_MALLOC_ENV`` on top of
Dask's own pre-spawn environment (one BLAS thread each), as the cluster's connect() starts them."""

from __future__ import annotations

import os

import dask
import pytest

from genotex_dask import cluster


def _env() -> dict:
    keys = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS", "GENOTEX_TEST_MARK")
    return {k: os.environ.get(k) for k in keys}


@pytest.mark.timeout(120)
def test_workers_start_with_the_malloc_settings_and_keep_dask_environment():
    extra = {**dask.config.get("distributed.nanny.pre-spawn-environ"), "GENOTEX_TEST_MARK": "kept"}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": extra}), \
            cluster.connect(workers=1, threads=1, memory_limit=None, quiet=True) as client:
        (env,) = client.run(_env).values()
    assert env == {"MALLOC_MMAP_THRESHOLD_": str(4 * 2**20), "MALLOC_TRIM_THRESHOLD_": str(8 * 2**20),
                   "OMP_NUM_THREADS": "1", "GENOTEX_TEST_MARK": "kept"}

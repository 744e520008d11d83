"""Settings under dask.config's genotex_dask namespace: shipped defaults, the environment (DASK_GENOTEX_DASK__...,
DASK_SCHEDULER_ADDRESS) and dask.config.set all reach the code that uses them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import dask.config
import numpy as np
import pandas as pd
import zarr
from distributed import LocalCluster

from genotex_dask import cluster, config
from genotex_dask.io import store


def test_defaults_are_registered():
    assert config.get("preprocess.block-samples") == 128
    assert config.get("store.chunks") == [64, 8192]
    assert config.get("cluster.threads") == 1


def test_environment_reaches_the_namespace():
    code = ("import json, genotex_dask.config as c; "
            "print(json.dumps([c.get('preprocess.block-samples'), c.get('cluster.memory-limit'), "
            "c.positive_int('analyze.cohorts-per-worker'), c.scheduler_address()]))")
    env = dict(os.environ, DASK_GENOTEX_DASK__PREPROCESS__BLOCK_SAMPLES="7",
               DASK_GENOTEX_DASK__CLUSTER__MEMORY_LIMIT="3GiB", DASK_GENOTEX_DASK__ANALYZE__COHORTS_PER_WORKER="5",
               DASK_SCHEDULER_ADDRESS="tcp://127.0.0.1:1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [7, "3GiB", 5, "tcp://127.0.0.1:1"]


def test_config_set_changes_store_chunks(tmp_path):
    X = np.arange(20 * 40, dtype=np.float32).reshape(20, 40)
    obs = pd.DataFrame({"title": [f"s{i}" for i in range(20)]}, index=[f"GSM{i}" for i in range(20)])
    var = pd.DataFrame({"Gene Symbol": ["A"] * 40}, index=[f"p{i}" for i in range(40)])
    url = str(tmp_path / "c.zarr")
    with dask.config.set({"genotex_dask.store.chunks": [8, 16]}):
        store.write_cohort(url, X, obs, var, {}, {})
    arr = zarr.open_array(store.zarr_store(url, read_only=True), path="X", mode="r")
    assert arr.chunks == (8, 16)
    np.testing.assert_array_equal(arr[:], X)


def test_bad_value_is_one_line():
    with dask.config.set({"genotex_dask.preprocess.block-samples": "many"}):
        try:
            config.positive_int("preprocess.block-samples")
        except ValueError as e:
            assert str(e) == "dask config genotex_dask.preprocess.block-samples: expected a positive integer, got 'many'"
        else:
            raise AssertionError("no error")


def test_connect_honours_scheduler_address_and_cluster_settings():
    with LocalCluster(n_workers=1, processes=False, protocol="tcp://", host="127.0.0.1",
                      dashboard_address=None) as lc:
        with dask.config.set({"scheduler-address": lc.scheduler_address}):
            env = os.environ.pop(cluster.SCHEDULER_ENV, None)
            try:
                with cluster.connect(quiet=True) as c:
                    assert c.scheduler.address == lc.scheduler_address
            finally:
                if env is not None:
                    os.environ[cluster.SCHEDULER_ENV] = env
    with dask.config.set({"genotex_dask.cluster.workers": 1, "genotex_dask.cluster.threads": 2,
                          "genotex_dask.cluster.memory-limit": "1GiB"}):
        with cluster.connect(quiet=True) as c:
            info = c.scheduler_info(n_workers=-1)["workers"]
            assert [w["nthreads"] for w in info.values()] == [2]
            assert [w["memory_limit"] for w in info.values()] == [2**30]

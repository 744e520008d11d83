"""genotex_dask.cluster.connect against real `dask scheduler`/`dask worker` processes and a LocalCluster."""

from __future__ import annotations

import os
import re

import fsspec.config
import pytest
from dask.utils import parse_bytes

from genotex_dask import cluster

pytestmark = pytest.mark.integration


def _check_external(client, dask_cluster) -> None:
    assert client.scheduler.address == dask_cluster.address
    # builtins only: the workers cannot import test modules
    assert sorted(client.gather(client.map(pow, range(6), [2] * 6))) == [0, 1, 4, 9, 16, 25]
    info = client.scheduler_info(n_workers=-1)["workers"]
    assert len(info) == 2 and {w["nthreads"] for w in info.values()} == {1}


def test_connect_by_address_prints_dashboard(dask_cluster, capsys, monkeypatch):
    monkeypatch.delenv(cluster.SCHEDULER_ENV, raising=False)
    with cluster.connect(scheduler=dask_cluster.address) as client:
        _check_external(client, dask_cluster)
    out = capsys.readouterr().out
    assert "(2 workers now)" in out
    assert re.search(r"dashboard: http://127\.0\.0\.1:\d+/status", out), out
    # The external cluster is left running for the next user.
    dask_cluster.wait_for_workers(2, timeout=5)
    assert dask_cluster.scheduler.poll() is None


def test_connect_from_environment_and_scheduler_file(dask_cluster, monkeypatch):
    monkeypatch.setenv(cluster.SCHEDULER_ENV, dask_cluster.address)
    with cluster.connect(quiet=True) as client:
        _check_external(client, dask_cluster)
    monkeypatch.delenv(cluster.SCHEDULER_ENV)
    with cluster.connect(scheduler=dask_cluster.scheduler_file, quiet=True) as client:
        _check_external(client, dask_cluster)


def test_local_cluster_options(monkeypatch, capsys):
    monkeypatch.delenv(cluster.SCHEDULER_ENV, raising=False)
    # An fsspec option set in this process at run time (not in the environment) reaches the workers.
    monkeypatch.setitem(fsspec.config.conf, "gtxprobe", {"endpoint_url": "http://127.0.0.1:9", "anon": True})
    with cluster.connect(workers=2, threads=1, memory_limit="700MiB") as client:
        seen = client.run(cluster.worker_fsspec_conf, "gtxprobe")
        assert list(seen.values()) == [{"endpoint_url": "http://127.0.0.1:9", "anon": True}] * 2
        info = client.scheduler_info(n_workers=-1)["workers"]
        assert len(info) == 2
        assert {w["nthreads"] for w in info.values()} == {1}
        assert {w["memory_limit"] for w in info.values()} == {parse_bytes("700MiB")}
        assert all(addr.startswith("tcp://127.0.0.1:") for addr in info)
        assert set(client.run(os.environ.get, "OMP_NUM_THREADS").values()) == {"1"}
        # glibc read the worker malloc settings at the workers' start (Dask's trim threshold kept beside them)
        for name, value in {**cluster.WORKER_MALLOC_ENV, "MALLOC_TRIM_THRESHOLD_": 65536}.items():
            assert set(client.run(os.environ.get, name).values()) == {str(value)}, name
        local = client.cluster
    assert local.status.name == "closed"
    out = capsys.readouterr().out
    assert "LocalCluster: 2 workers x 1 thread(s)" in out and "dashboard: http://127.0.0.1:" in out

"""The embedded LocalCluster's batch settings reach the processes whose periodic work they slow down: the worker's
and the nanny's memory checks, the scheduler's and the worker's system monitor, the client's scheduler-info refresh;
a site's genotex_dask.cluster.* values win over the shipped ones."""

from __future__ import annotations

import os

import dask.config

from genotex_dask import cluster


def _worker_intervals(dask_worker) -> dict:
    pcs = dask_worker.periodic_callbacks
    return {"memory": pcs["memory_monitor"].callback_time, "monitor": pcs["monitor"].callback_time}


def _intervals(client) -> dict:
    local = client.cluster
    (nanny,) = local.workers.values()
    (worker,) = client.run(_worker_intervals).values()
    return {"worker_memory": worker["memory"], "worker_monitor": worker["monitor"],
            "nanny_memory": nanny.periodic_callbacks["memory_monitor"].callback_time,
            "scheduler_monitor": local.scheduler.periodic_callbacks["monitor"].callback_time,
            "client_info": client._periodic_callbacks["scheduler-info"].callback_time}


def test_embedded_cluster_settings_reach_every_process(monkeypatch):
    monkeypatch.delenv(cluster.SCHEDULER_ENV, raising=False)
    with dask.config.set({"scheduler-address": None}):
        with cluster.connect(workers=1, threads=1, memory_limit="700MiB", quiet=True) as client:
            shipped = _intervals(client)
        with dask.config.set({"genotex_dask.cluster.memory-monitor-interval": "250ms",
                              "genotex_dask.cluster.system-monitor-interval": "1s"}):
            with cluster.connect(workers=1, threads=1, memory_limit="700MiB", quiet=True) as client:
                site = _intervals(client)
    assert shipped == {"worker_memory": 500, "worker_monitor": 2000, "nanny_memory": 500,
                       "scheduler_monitor": 2000, "client_info": 10000}
    assert site == {"worker_memory": 250, "worker_monitor": 1000, "nanny_memory": 250,
                    "scheduler_monitor": 1000, "client_info": 10000}
    # outside the embedded cluster's block, Dask's own defaults are back (a later external client is not affected)
    assert dask.config.get("distributed.worker.memory.monitor-interval") == "100ms"
    assert os.environ.get(cluster.SCHEDULER_ENV) is None

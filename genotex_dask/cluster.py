"""Where the work runs: an embedded LocalCluster by default, or an existing Dask scheduler.

We never schedule anything ourselves; the pipelines take a ``distributed.Client`` from here.
One thread per worker process is the default layout because the science (BLAS, scikit-learn
coordinate descent, pandas) releases the GIL unevenly and BLAS threads slow small solves down.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager

import dask.config
import fsspec.config
from distributed import Client, LocalCluster

from genotex_dask import config as gconfig

SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"

# Environment for worker processes: one BLAS thread each, so processes (not threads) give the parallelism.
SINGLE_THREAD_BLAS = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


def default_worker_count() -> int:
    return max(1, os.cpu_count() or 1)


def fsspec_env() -> dict[str, str]:
    """This process's fsspec settings (``fsspec.config.conf``) as ``FSSPEC_<PROTOCOL>`` JSON variables.

    LocalCluster workers are new processes that read fsspec settings from their environment at import;
    an endpoint or option set in the client process at run time (e.g. in a notebook) would otherwise
    not reach them.  Settings that are not JSON (objects) cannot travel and are left out.
    """
    out = {}
    for proto, opts in fsspec.config.conf.items():
        if "_" in proto or not isinstance(opts, dict):
            continue  # fsspec reads FSSPEC_<A>_<B> as option B of protocol A
        try:
            out[f"FSSPEC_{proto.upper()}"] = json.dumps(opts)
        except TypeError:
            continue
    return out


def _connect_existing(address: str) -> Client:
    """A Client for a scheduler address (tcp://host:8786) or a scheduler file written by
    ``dask scheduler --scheduler-file`` (how HPC sites share the address on a shared file system)."""
    if "://" not in address and (address.endswith(".json") or os.path.isfile(address)):
        return Client(scheduler_file=address)
    return Client(address)


# Batch settings for the embedded LocalCluster.  Measured idle cost of a 1-worker LocalCluster: 0.13 CPU-s per
# second with Dask's defaults, 0.04 with these -- about 0.1 CPU-s per 1-second cohort.  The 20 ms event-loop tick
# only feeds the "event loop blocked" diagnostics, and the statistical profiler only the dashboard's profile
# page; work stealing and memory monitoring keep their defaults.  An external cluster keeps its own config.
EMBEDDED_CONFIG = {
    "distributed.admin.tick.interval": "200ms",
    "distributed.worker.profile.enabled": False,
}
FROM_CONFIG = "config"  # connect()'s defaults: take the value from dask.config genotex_dask.cluster.*


def embedded_config() -> dict:
    """EMBEDDED_CONFIG with the site's genotex_dask.cluster.tick-interval / profile settings."""
    return {"distributed.admin.tick.interval": gconfig.get("cluster.tick-interval", "200ms"),
            "distributed.worker.profile.enabled": bool(gconfig.get("cluster.profile", False))}


@contextmanager
def connect(
    scheduler: str | None = None,
    workers: int | None = None,
    threads: int | None = None,
    memory_limit: str | None = FROM_CONFIG,
    quiet: bool = False,
) -> Iterator[Client]:
    """Yield a Client: to ``scheduler`` (or $DASK_SCHEDULER_ADDRESS) if given, else to a new LocalCluster.

    ``scheduler`` is an address (``tcp://host:8786``) or a scheduler-file path; with it, ``workers``,
    ``threads`` and ``memory_limit`` are ignored (the deployment sets them, see cluster/README.md).
    The LocalCluster is closed on exit; an external cluster is left running.  Without arguments the address
    is dask's own ``scheduler-address`` setting, and the LocalCluster's size the ``genotex_dask.cluster.*``
    settings (:mod:`genotex_dask.config`).
    """
    address = scheduler or os.environ.get(SCHEDULER_ENV) or gconfig.scheduler_address()
    if address:
        client = _connect_existing(address)
        try:
            if not quiet:
                n = len(client.scheduler_info(n_workers=-1).get("workers", {}))
                print(f"connected to scheduler {client.scheduler.address} ({n} workers now); "
                      f"dashboard: {client.dashboard_link}", flush=True)
            yield client
        finally:
            client.close()
        return
    for k, v in SINGLE_THREAD_BLAS.items():
        os.environ.setdefault(k, v)
    workers = workers or gconfig.get("cluster.workers") or default_worker_count()
    threads = threads or gconfig.positive_int("cluster.threads")
    if memory_limit == FROM_CONFIG:
        memory_limit = gconfig.get("cluster.memory-limit", "auto")
    with dask.config.set(embedded_config()):
        cluster = LocalCluster(
            n_workers=int(workers),
            threads_per_worker=threads,
            memory_limit=memory_limit,
            processes=True,
            dashboard_address="127.0.0.1:0",
            host="127.0.0.1",
            env=fsspec_env(),
        )
    client = Client(cluster)
    try:
        if not quiet:
            print(
                f"LocalCluster: {len(cluster.workers)} workers x {threads} thread(s); "
                f"dashboard: {client.dashboard_link}",
                flush=True,
            )
        yield client
    finally:
        client.close()
        cluster.close()


def worker_fsspec_conf(protocol: str) -> dict | None:
    """The fsspec settings of ``protocol`` as seen by the process this runs in (``client.run`` it on workers
    to check that endpoints and options reached them)."""
    return fsspec.config.conf.get(protocol)

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


# glibc settings for the worker processes, on top of Dask's own pre-spawn environment (MALLOC_TRIM_THRESHOLD_=65536,
# kept: idle workers still give freed heap back).  That setting alone also pins glibc's mmap threshold at 128 KiB, so
# a cohort's mid-size temporaries (the store's compressed chunks, Blosc scratch, the AnnData objects) were fresh
# mmaps, zeroed and faulted in 4 KiB at a time, then unmapped: ~15,300 minor faults per 54,675 x 167 ingest and
# ~11,100 per preprocess, ~2.1 us each on this machine.  With allocations below 4 MiB served from the heap and the top
# 32 MiB of each heap kept when it is trimmed: ~230 and ~4,700 (the latter the preprocess stage's first cohort
# faulting in the buffers released at the end of the previous stage).  Blocks of 4 MiB and more (X, the gene matrix,
# the CSV text: numpy asks for huge pages there) are still mapped and unmapped.  What a worker keeps between tasks
# is bounded by the pad (32 MiB per malloc arena, one per worker thread).  Measured (wkr20, issue 12; 1-worker
# LocalCluster, both settings alive in one run, 6-8 interleaved repetitions): ingest + preprocess of a
# known-platform cohort min 0.61-0.66 -> 0.40-0.42 CPU-s, median 0.70-0.81 -> 0.50-0.59; bench_preprocess's
# 1,000-sample polled worker peak 744 -> 751 MB.  Earlier measurements: mmap 4 MiB + trim 8 MiB (a trim threshold
# that keeps every freed block, not a bounded pad) cost +11-18% of that peak; mmap 1 MiB + trim 2 MiB, 32 MiB
# thresholds and glibc's dynamic threshold were no better than Dask's own.
WORKER_MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": 4 << 20,
    "MALLOC_TOP_PAD_": 32 << 20,
}
_PRE_SPAWN = "distributed.nanny.pre-spawn-environ"

# Batch settings for the embedded LocalCluster.  Measured idle cost of a 1-worker LocalCluster: 0.13 CPU-s per
# second with Dask's defaults, 0.04 with the first two -- about 0.1 CPU-s per 1-second cohort.  The 20 ms event-loop
# tick only feeds the "event loop blocked" diagnostics, and the statistical profiler only the dashboard's profile
# page.  The client process also hosts the scheduler and the nannies, and with as many workers as cores what it
# spends steals from a worker (with fewer workers it runs on the spare core): a memory check of every worker by its
# nanny and by itself every 500 ms instead of 100 ms (pause / spill / restart react within half a second instead
# of a tenth), the system monitor's samples (dashboard plots, heartbeat metrics) every 2 s instead of 0.5 s and the
# client's refresh of the scheduler's identity every 10 s instead of 2 s cut a 2-worker cluster's idle cost from
# ~16-20 to ~9-11 ms/s in the client process and from ~6-9 to ~3-5 ms/s per worker (session 22, ana22).  Work
# stealing keeps its default (1 s): analyze's routed tasks rely on it when a worker's queue runs dry.  An
# external cluster keeps its own config (its workers' environment is the deployment's: cluster/README.md).
EMBEDDED_CONFIG = {
    "distributed.admin.tick.interval": "200ms",
    "distributed.worker.profile.enabled": False,
    "distributed.worker.memory.monitor-interval": "500ms",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.client.scheduler-info-interval": "10s",
    **{f"{_PRE_SPAWN}.{k}": v for k, v in WORKER_MALLOC_ENV.items()},
}
FROM_CONFIG = "config"  # connect()'s defaults: take the value from dask.config genotex_dask.cluster.*


def embedded_config() -> dict:
    """EMBEDDED_CONFIG with the site's genotex_dask.cluster.tick-interval / profile / memory-monitor-interval /
    system-monitor-interval settings."""
    return {**EMBEDDED_CONFIG,
            "distributed.admin.tick.interval": gconfig.get("cluster.tick-interval", "200ms"),
            "distributed.worker.profile.enabled": bool(gconfig.get("cluster.profile", False)),
            "distributed.worker.memory.monitor-interval": gconfig.get("cluster.memory-monitor-interval", "500ms"),
            "distributed.admin.system-monitor.interval": gconfig.get("cluster.system-monitor-interval", "2s")}


# A worker's resident size right after the engine's imports (pandas, pyarrow, anndata, zarr, scikit-learn, numba),
# measured on a LocalCluster worker: ~370 MB.  Dask pauses a worker at 80% of its limit, so a limit below
# ~460 MB pauses it before its first task and it never resumes (a silent hang); the floor (pause at 512 MiB)
# adds ~140 MiB for a cohort's working set.
WORKER_IDLE_BYTES = 370 * 2**20
MIN_WORKER_MEMORY = 640 * 2**20


class MemoryLimitError(ValueError):
    """A per-worker memory limit too small for a worker to run anything (refused before the cluster starts)."""


def check_memory_limit(memory_limit: str | float | int | None, workers: int) -> int | None:
    """The per-worker limit in bytes (None: unlimited); a limit below :data:`MIN_WORKER_MEMORY` raises
    :class:`MemoryLimitError` with a one-line cause (``auto`` too, when the machine's share per worker is
    that small)."""
    import logging

    from distributed.worker_memory import parse_memory_limit

    try:
        limit = parse_memory_limit(memory_limit, 1, total_cores=max(workers, 1),
                                   logger=logging.getLogger("genotex_dask"))
    except (ValueError, TypeError) as exc:
        raise MemoryLimitError(f"--memory-limit {memory_limit!r}: not a size such as 4GB ({exc})") from None
    if limit is not None and limit < MIN_WORKER_MEMORY:
        raise MemoryLimitError(
            f"--memory-limit {memory_limit} gives {limit / 2**20:.0f} MiB per worker, below the "
            f"{MIN_WORKER_MEMORY // 2**20} MiB a worker needs (~{WORKER_IDLE_BYTES // 2**20} MiB idle after "
            "imports; Dask pauses a worker at 80% of its limit and it would never resume): raise the limit or "
            "use fewer --workers")
    return limit


PAUSED_ERROR_AFTER_S = 120.0  # every worker paused this long with work pending: an error, not a silent hang
PAUSE_CHECK_S = 5.0


class ClusterPausedError(RuntimeError):
    """Every worker stayed paused (memory above Dask's pause fraction) while tasks waited: nothing could run."""


def _worker_states(dask_scheduler=None) -> dict:
    return {addr: (ws.status.name, ws.memory_limit or 0, int(getattr(getattr(ws, "memory", None), "process", 0) or 0))
            for addr, ws in dask_scheduler.workers.items()}


class PauseWatch:
    """Turns a cluster whose every worker stays paused into :class:`ClusterPausedError` (call :meth:`check`
    while waiting for futures; it asks the scheduler at most every ``PAUSE_CHECK_S`` seconds)."""

    def __init__(self, client, after_s: float | None = None):
        self.client = client
        self.after_s = PAUSED_ERROR_AFTER_S if after_s is None else after_s
        self.since: float | None = None
        self.last = 0.0

    def check(self) -> None:
        import time

        now = time.monotonic()
        if now - self.last < min(PAUSE_CHECK_S, max(self.after_s / 4, 0.1)):
            return
        self.last = now
        try:
            states = self.client.run_on_scheduler(_worker_states)
        except Exception:  # noqa: BLE001 - a scheduler that refuses run_on_scheduler is not watched
            return
        if not states or any(st != "paused" for st, _, _ in states.values()):
            self.since = None
            return
        self.since = self.since or now
        if now - self.since >= self.after_s:
            limit = max(lim for _, lim, _ in states.values())
            used = max(mem for _, _, mem in states.values())
            raise ClusterPausedError(
                f"all {len(states)} workers paused for {now - self.since:.0f} s at their memory limit (up to "
                f"{used / 2**20:.0f} of {limit / 2**20:.0f} MiB in use) with work pending: raise --memory-limit "
                "or use fewer workers")


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
    workers = workers or gconfig.get("cluster.workers") or default_worker_count()
    threads = threads or gconfig.positive_int("cluster.threads")
    if memory_limit == FROM_CONFIG:
        memory_limit = gconfig.get("cluster.memory-limit", "auto")
    check_memory_limit(memory_limit, int(workers))  # refused before any process starts
    for k, v in SINGLE_THREAD_BLAS.items():
        os.environ.setdefault(k, v)
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
        client = Client(cluster)  # in the block: the client's own periodic settings (scheduler-info-interval)
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

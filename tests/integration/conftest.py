"""Real processes on 127.0.0.1 for the integration tests: a moto S3 server and a Dask cluster.

* ``moto_s3`` (session): moto's S3 server on a free port in a thread of the test process, with the
  process environment set as a user would (AWS_* credentials, ``FSSPEC_S3_ENDPOINT_URL``) so that every
  process started afterwards, Dask workers included, reaches it without any code-level configuration.
* ``dask_cluster`` (module): ``dask scheduler`` plus two ``dask worker --nthreads 1`` processes (with
  their nannies), started through the venv's ``dask`` command exactly as the cluster guide says; every
  wait is bounded and every process group is terminated (then killed) on teardown.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import fsspec.config
import pytest

BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # _chaos is imported by name here and in the worker processes
    sys.path.insert(0, str(HERE))
DASK = str(BIN / "dask")
START_TIMEOUT = 60.0

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class MotoS3:
    endpoint: str

    def new_bucket(self) -> str:
        """A fresh, empty bucket; returns its s3:// URL."""
        from fsspec.core import url_to_fs

        name = f"gtx-{uuid.uuid4().hex[:12]}"
        s3, _ = url_to_fs(f"s3://{name}")
        s3.mkdir(name)
        s3.invalidate_cache()
        return f"s3://{name}"


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = dict(S3_ENV, FSSPEC_S3_ENDPOINT_URL=endpoint)
    saved_env = {k: os.environ.get(k) for k in env}
    saved_conf = fsspec.config.conf.get("s3")
    os.environ.update(env)
    # This process imported fsspec before the variable existed: apply it as fsspec does at import.
    fsspec.config.conf["s3"] = {**(saved_conf or {}), "endpoint_url": endpoint}
    try:
        yield MotoS3(endpoint)
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if saved_conf is None:
            fsspec.config.conf.pop("s3", None)
        else:
            fsspec.config.conf["s3"] = saved_conf
        server.stop()


def _stop(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """Terminate the process group we started (nanny + worker), then kill it if it lingers."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


@dataclass
class DaskProcesses:
    address: str
    scheduler_file: str
    scheduler: subprocess.Popen
    workers: list[subprocess.Popen] = field(default_factory=list)
    logs: Path | None = None

    def client(self, **kw):
        from distributed import Client

        return Client(self.address, **kw)

    def worker_pids(self) -> dict[str, int]:
        """Worker address -> pid of the worker process itself (the nanny's child)."""
        with self.client(timeout=30) as c:
            return c.run(os.getpid)

    def wait_for_workers(self, n: int, timeout: float = START_TIMEOUT) -> None:
        with self.client(timeout=30) as c:
            c.wait_for_workers(n, timeout=timeout)


def _start_dask(tmp: Path, n_workers: int, env: dict[str, str]) -> DaskProcesses:
    sched_file = tmp / "scheduler.json"
    logs = tmp / "logs"
    logs.mkdir()
    common = {"env": env, "start_new_session": True, "stdin": subprocess.DEVNULL}
    sched = subprocess.Popen(
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address", "127.0.0.1:0",
         "--scheduler-file", str(sched_file)],
        stdout=open(logs / "scheduler.log", "wb"), stderr=subprocess.STDOUT, **common)
    procs = DaskProcesses(address="", scheduler_file=str(sched_file), scheduler=sched, logs=logs)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not sched_file.exists() or not sched_file.read_text().strip():
            if sched.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dask scheduler did not start: {(logs / 'scheduler.log').read_text()}")
            time.sleep(0.1)
        procs.address = json.loads(sched_file.read_text())["address"]
        for i in range(n_workers):
            procs.workers.append(subprocess.Popen(
                [DASK, "worker", procs.address, "--name", f"w{i}", "--nthreads", "1",
                 "--memory-limit", "2GiB", "--host", "127.0.0.1", "--no-dashboard",
                 "--local-directory", str(tmp / f"w{i}"), "--death-timeout", "60"],
                stdout=open(logs / f"worker{i}.log", "wb"), stderr=subprocess.STDOUT, **common))
        procs.wait_for_workers(n_workers)
    except BaseException:
        for p in [*procs.workers, sched]:
            _stop(p)
        raise
    return procs


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory, moto_s3) -> Iterator[DaskProcesses]:
    """A scheduler and two single-threaded workers on 127.0.0.1, environment as a deployment sets it."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH", "")) if p)
    env.pop("DASK_SCHEDULER_ADDRESS", None)
    procs = _start_dask(tmp_path_factory.mktemp("dask"), 2, env)
    try:
        yield procs
    finally:
        for p in [*procs.workers, procs.scheduler]:
            _stop(p)

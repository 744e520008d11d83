"""Failure injection for the integration tests, importable by `dask worker` processes (PYTHONPATH).

``KillOnce`` is a worker plugin: the first worker to start executing a task whose key contains
``match`` SIGKILLs its own process, exactly once per flag file across the whole cluster (and across the
worker the nanny restarts).  Killing at the start of a task makes "a worker died in the middle of the
stage with work in flight" deterministic, independent of how fast the tiny test corpus is.
"""

from __future__ import annotations

import os
import signal

from distributed.diagnostics.plugin import WorkerPlugin


class KillOnce(WorkerPlugin):
    def __init__(self, match: str, flag: str) -> None:
        self.match = match
        self.flag = flag
        self.name = f"kill-once-{match}"

    def transition(self, key, start, finish, **kwargs) -> None:
        if finish != "executing" or self.match not in str(key):
            return
        try:
            fd = os.open(self.flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(fd, f"{os.getpid()} {key}\n".encode())
        os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)


def running_tasks(dask_worker) -> int:
    """Tasks occupying a thread of this worker, including ones the scheduler has already released (a
    disconnected client's tasks keep running to completion): ``client.run`` it to wait for real idleness."""
    return len(dask_worker.state.all_running_tasks)


class KillEachOnce(WorkerPlugin):
    """Every worker (by its name, which its nanny keeps across restarts) SIGKILLs itself the first time it
    starts a task whose key contains ``match``: all workers of an idle cluster die at about the same moment,
    so the scheduler loses every worker at once (flag files ``<flag_dir>/<worker name>``)."""

    def __init__(self, match: str, flag_dir: str) -> None:
        self.match = match
        self.flag_dir = flag_dir
        self.name = f"kill-each-once-{match}"
        self.worker_name = ""

    def setup(self, worker) -> None:
        self.worker_name = str(worker.name)

    def transition(self, key, start, finish, **kwargs) -> None:
        if finish != "executing" or self.match not in str(key):
            return
        try:
            fd = os.open(os.path.join(self.flag_dir, self.worker_name), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(fd, f"{os.getpid()} {key}\n".encode())
        os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)

"""Where a task's CPU goes: user and system CPU and minor page faults per phase, each phase exclusive of the
phases nested in it, measured by wrapping module attributes (``bench_ingest --phases``, ``bench_preprocess
--phases``).

Why a process-wide rusage and not a profiler: the cost this project chases is system time (page-cache pages,
inodes) that a Python profiler does not see, and the phases are few and coarse.  The child process runs with the
Dask workers' malloc settings (:func:`run_child`), so allocations behave as on a worker.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import resource
import subprocess
import sys
from collections.abc import Iterable


def usage() -> tuple[float, float, float]:
    """(user CPU s, system CPU s, minor faults) of this process so far."""
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime, u.ru_stime, float(u.ru_minflt)


def delta(u0: tuple[float, float, float], u1: tuple[float, float, float]) -> dict:
    """One run's record: user and system CPU and minor faults between two :func:`usage` readings."""
    return {"user_s": round(u1[0] - u0[0], 4), "sys_s": round(u1[1] - u0[1], 4), "minflt": int(u1[2] - u0[2])}


class PhaseTimer:
    """Accumulates (user, sys, faults) per phase label; a wrapped call nested in another wrapped call is
    subtracted from its parent, so each label counts its own work only."""

    def __init__(self) -> None:
        self.acc: dict[str, list[float]] = {}
        self._stack: list[list[float]] = []

    def wrap(self, label: str, owner, name: str) -> None:
        """Replace ``owner.name`` by a timed wrapper booking its exclusive cost to ``label``."""
        fn = getattr(owner, name)

        @functools.wraps(fn)
        def timed(*a, **k):
            self._stack.append([0.0, 0.0, 0.0])
            u0 = usage()
            try:
                return fn(*a, **k)
            finally:
                u1 = usage()
                child = self._stack.pop()
                tot = [b - a_ for a_, b in zip(u0, u1)]
                row = self.acc.setdefault(label, [0.0, 0.0, 0.0])
                for i in range(3):
                    row[i] += tot[i] - child[i]
                if self._stack:
                    for i in range(3):
                        self._stack[-1][i] += tot[i]

        setattr(owner, name, timed)

    def wrap_all(self, phases: Iterable[tuple[str, str, str]]) -> None:
        """Wrap every (label, module, attribute) -- the attribute may be dotted (``Class.method``); one the code
        does not have (an older version) is left out."""
        for label, mod, attr in phases:
            owner = importlib.import_module(mod)
            *path, name = attr.split(".")
            for p in path:
                owner = getattr(owner, p)
            if hasattr(owner, name):
                self.wrap(label, owner, name)

    def rows(self, runs: int) -> dict:
        """Mean per run of each phase."""
        return {k: {"user_s": round(v[0] / runs, 4), "sys_s": round(v[1] / runs, 4), "minflt": round(v[2] / runs)}
                for k, v in self.acc.items()}


def child_record(module: str, flag: str, args: list[str]):
    """Run ``python -m module flag *args`` with the Dask workers' malloc settings and return the JSON it prints
    last; a failed child stops the benchmark with the end of its error output."""
    from genotex_dask.cluster import WORKER_MALLOC_ENV

    env = {**os.environ, **{k: str(v) for k, v in WORKER_MALLOC_ENV.items()}}
    proc = subprocess.run([sys.executable, "-m", module, flag, *args], env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_child(module: str, args: list[str]) -> dict:
    """:func:`child_record` of ``--phases-child``, with the machine's load average once it is done."""
    res = child_record(module, "--phases-child", args)
    res["load_avg"] = os.getloadavg()
    return res


def markdown_rows(res: dict, runs: int) -> list[str]:
    """The phase table, most expensive first, with the mean total and the per-run records."""
    tot = {k: sum(r[k] for r in res["runs"]) / runs for k in ("user_s", "sys_s")}
    lines = ["| phase | user s | sys s | minor faults |", "|---|---:|---:|---:|"]
    for k, v in sorted(res["phases"].items(), key=lambda kv: -(kv[1]["user_s"] + kv[1]["sys_s"])):
        lines.append(f"| {k} | {v['user_s']} | {v['sys_s']} | {v['minflt']} |")
    lines.append(f"| **total (mean of {runs})** | {tot['user_s']:.4f} | {tot['sys_s']:.4f} | |")
    lines += ["", "per run (user, sys, minor faults): " + ", ".join(
        f"({r['user_s']}, {r['sys_s']}, {r['minflt']})" for r in res["runs"])]
    return lines

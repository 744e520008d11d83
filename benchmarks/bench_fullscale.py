"""The whole pipeline at GenoTEX's scale: synth -> ingest -> specs -> preprocess -> analyze -> evaluate.

    .venv/bin/python -m benchmarks.bench_fullscale [--fraction 1/4] [--check 1/8] [--scaling 1/16]
                                                  [--workers 2] [--corpora benchmarks/results/tmp]

The corpus is ``genotex-dask synth --scale genotex`` (132 traits, 911 cohorts, 1,384 problems; ~20 GB of gz) or a
stratified 1/k sample of it (``--fraction``: every k-th trait with all its cohorts and problems, the same bytes
as in the full corpus).  Every stage runs on a fresh LocalCluster of ``--workers`` single-threaded worker
processes; per stage it records wall time, worker CPU, client+scheduler CPU (the LocalCluster's scheduler lives
in this process), busy cores, peak RSS per worker (polled every 0.25 s), the number of tasks and their compute
durations (Dask's task stream), bytes of task results, and at the end the disk used by the store and outputs
and the planted-truth F1.

Projection: the measured task durations of the sample, repeated k times and scaled so each stage holds the full
corpus's work, are scheduled longest-first on 8, 64 and 256 workers.  The work is taken from synth's plan of both
corpora, not assumed to be k times the sample's: ingest ~ gz bytes, preprocess ~ samples x features, analyze ~
problems x (largest usable cohort's samples)^beta with beta fitted on the sample's problems (seconds vs samples), since a
1/k sample of 132 traits holds only roughly 1/k of the problems and of the big TCGA cohorts.  A stage cannot end before its longest task (preprocess: its longest cohort chain prepare -> block -> finalize),
nor before the scheduler has handled every task (client+scheduler CPU per task, serial); the stage's measured
fixed overhead (wall minus the same model at the measured size) is added.  ``--check 1/16`` measures a second,
smaller sample and projects the bigger one's 2-worker wall time from it: the error of that prediction is the
model's error at 2x scale.  ``--scaling 1/16`` runs that sample on 1 and on 2 workers.

Corpora are generated under ``--corpora`` (default benchmarks/results/tmp, gitignored) and reused when present.
Writes benchmarks/results/fullscale.json and fullscale.md.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path

from distributed.diagnostics.plugin import WorkerPlugin

RESULTS = Path(__file__).resolve().parent / "results"
STAGES = ("ingest", "specs", "preprocess", "analyze", "evaluate")
PROJECT_WORKERS = (8, 64, 256)
# ext4 without a journal (this machine's root file system) does not reuse an inode deleted in the last 60 s (300 s
# while its table block is dirty): it scans past each one, so a run creating ~40k files right after a run's ~40k were
# deleted pays kernel time the first run did not (session 22: an ingest right after a deleted tree cost 0.39 instead
# of 0.25 CPU-s).  --drop-outputs therefore waits this long after deleting, unmeasured.  It does not cover all of it:
# session 23 measured new inodes near a large delete at 80-200 us instead of ~17 for more than five minutes; the
# pairs alternate 1 and 2 workers, so both pay alike.
DROP_SETTLE_S = 60.0


def _frac(text: str) -> int:
    num, _, den = text.partition("/")
    if num != "1" or not den.isdigit():
        raise argparse.ArgumentTypeError(f"expected 1/k, got {text!r}")
    return int(den)


def _cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _rusage() -> tuple[float, int, int]:
    """(system CPU s, minor page faults, involuntary context switches) of this process: a worker preempted by
    other processes shows the last grow; memory first touched by a process shows the second."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_stime, r.ru_minflt, r.ru_nivcsw


def _warm() -> int:
    import importlib

    for name in ("genotex_dask.pipelines.ingest", "genotex_dask.pipelines.preprocess",
                 "genotex_dask.pipelines.analyze", "genotex_dask.kernels", "anndata", "zarr"):
        importlib.import_module(name)
    from genotex_dask import kernels

    kernels.warm_up()  # loads the cached kernels (compiled at install), so no stage pays numba's import
    return os.getpid()


class RssPoller:
    """Peak RSS of the given processes, polled in a thread (ru_maxrss can be inherited from the parent)."""

    def __init__(self, pids: list[int], every: float = 0.25):
        import psutil

        self.procs = {p: psutil.Process(p) for p in pids}
        self.peak = {p: 0 for p in pids}
        self.every = every
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            for p, proc in self.procs.items():
                try:
                    self.peak[p] = max(self.peak[p], proc.memory_info().rss)
                except Exception:  # a worker restarted: keep the peak seen
                    pass
            self._stop.wait(self.every)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


class TaskCpu(WorkerPlugin):
    """Worker plugin: the worker process's CPU seconds while each task executes (one thread per worker, so this
    is the task's CPU plus the worker's own event-loop work during it).  Task-stream durations are wall times,
    inflated when the core is shared; these are not."""

    name = "bench-task-cpu"

    def setup(self, worker):
        self.t0: dict = {}
        self.cpu: dict = {}

    def transition(self, key, start, finish, **kwargs):
        if finish == "executing":
            self.t0[key] = _cpu()
        elif start == "executing" and key in self.t0:
            self.cpu[str(key)] = self.cpu.get(str(key), 0.0) + _cpu() - self.t0.pop(key)


def _take_task_cpu(dask_worker) -> dict:
    plugin = dask_worker.plugins.get(TaskCpu.name)
    if plugin is None:
        return {}
    out, plugin.cpu = plugin.cpu, {}
    return out


def idle_decomposition(tasks: list[dict], start: float, stop: float, workers: list[str]) -> dict:
    """Per worker, where its share of the stage's wall time went: running tasks, waiting before its first task
    (``head``: client planning, submission), between tasks (``gaps``: scheduler round trips, dependencies), and
    after its last task while the stage still ran (``tail``: another worker's longer queue or longest task,
    then the client's summary).  Seconds on the workers' clock (the same machine's)."""
    out = {}
    for w in workers:
        mine = sorted((t for t in tasks if t["worker"] == w), key=lambda t: t["start"])
        busy = sum(t["seconds"] for t in mine)
        if not mine:
            out[w] = {"busy": 0.0, "head": round(stop - start, 3), "gaps": 0.0, "tail": 0.0}
            continue
        gaps, end = 0.0, mine[0]["start"]
        for t in mine:
            gaps += max(0.0, t["start"] - end)
            end = max(end, t["stop"])
        out[w] = {"busy": round(busy, 3), "head": round(max(0.0, mine[0]["start"] - start), 3),
                  "gaps": round(gaps, 3), "tail": round(max(0.0, stop - end), 3)}
    return out


_MEM_KERNEL = """
import time, numpy as np
a = np.random.default_rng(0).random((700, 19700)); v = np.ones(19700)
t = time.process_time()
for _ in range(40):
    r = a @ v; s = (a * 1.0001).sum()
print(time.process_time() - t)
"""
_ALU_KERNEL = """
import time
t = time.process_time(); s = 0
for i in range(8_000_000):
    s += i * i % 7
print(time.process_time() - t)
"""


def contention_factors() -> dict[str, float]:
    """CPU seconds of a kernel run by two processes at once over the same kernel run alone (best of two each):
    a memory-bound one (a TCGA-size gene matrix streamed, as the analysis's gene scans do) and a cache-resident
    one.  On a machine whose cores share memory bandwidth the first exceeds 1: each of 2 workers then pays that
    much more CPU for the same work, a bound on the 2-worker speed-up no scheduling removes."""
    import subprocess

    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

    def run(code: str, n: int) -> float:
        procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
                 for _ in range(n)]
        return sum(float(p.communicate()[0]) for p in procs) / n

    out = {}
    for name, code in (("memory_bound", _MEM_KERNEL), ("cache_resident", _ALU_KERNEL)):
        solo = min(run(code, 1) for _ in range(2))
        pair = min(run(code, 2) for _ in range(2))
        out[name] = round(pair / solo, 3)
    return out


def _stage_parts(s: dict) -> dict[str, float]:
    """A stage's worker-seconds (workers x wall) split into task CPU, time a running task was off CPU (task wall -
    task CPU: waiting for a core, or for the disk), and idle worker time (head / gaps / tail)."""
    pw = s.get("per_worker") or {}
    busy = sum(w["busy"] for w in pw.values())
    cpu = s.get("task_cpu_s_sum", 0.0)
    parts = {"task_cpu": cpu, "task_wait": busy - cpu}
    for part in ("head", "gaps", "tail"):
        parts[part] = sum(w[part] for w in pw.values())
    return parts


def _off_cpu(run: dict) -> float:
    """Seconds the run's tasks spent off CPU, over all stages: on a shared machine, mostly other jobs' share
    of the cores.  The reported pair is the one with the least (not the best ratio: a 1-worker run slowed by
    other jobs inflates it)."""
    return sum(_stage_parts(s)["task_wait"] for s in run["stages"].values() if s.get("per_worker"))


def scaling_decomposition(one: dict, two: dict) -> dict:
    """Why 2 workers are not 2x: per stage, the 2-worker wall time minus half the 1-worker one, split exactly
    (n x wall = task CPU + task off-CPU time + idle, per run) into extra task CPU, extra off-CPU time in tasks (the
    client, scheduler and other jobs share the 2 cores), and extra idle worker time (before the first task,
    between tasks, after the last one), each divided by 2."""
    out = {}
    for stage in STAGES:
        a, b = one["stages"].get(stage), two["stages"].get(stage)
        if not a or not b:
            continue
        pa, pb = _stage_parts(a), _stage_parts(b)
        row = {"wall_1": a["wall_s"], "wall_2": b["wall_s"], "loss_s": round(b["wall_s"] - a["wall_s"] / 2, 2)}
        if not a["n_tasks"]:  # client-only: all of it is lost on 2 workers
            row.update(extra_cpu=0.0, extra_wait=0.0, extra_idle=row["loss_s"])
        else:
            row["extra_cpu"] = round((pb["task_cpu"] - pa["task_cpu"]) / 2, 2)
            row["extra_wait"] = round((pb["task_wait"] - pa["task_wait"]) / 2, 2)
            row["extra_idle"] = round(sum(pb[k] - pa[k] for k in ("head", "gaps", "tail")) / 2, 2)
            for k in ("head", "gaps", "tail"):
                row[f"idle_{k}_2"] = round(pb[k] / 2, 2)
            row["task_cpu_1"], row["task_cpu_2"] = round(pa["task_cpu"], 2), round(pb["task_cpu"], 2)
        row["client_scheduler_cpu_2"] = b["client_scheduler_cpu_s"]
        out[stage] = row
    tot = {k: round(sum(r.get(k, 0.0) for r in out.values()), 2)
           for k in ("wall_1", "wall_2", "loss_s", "extra_cpu", "extra_wait", "extra_idle")}
    tot["speedup"] = round(tot["wall_1"] / tot["wall_2"], 3) if tot["wall_2"] else None
    out["total"] = tot
    return out


def _du(path: Path) -> int:
    """Bytes of the files under ``path``, each inode once: a local store's cohorts of one platform hard-link
    their var files from the platform entry (``store._link_same``)."""
    seen: dict[tuple[int, int], int] = {}
    for p in path.rglob("*") if path.exists() else ():
        if p.is_file():
            st = p.stat()
            seen[(st.st_dev, st.st_ino)] = st.st_size
    return sum(seen.values())


def _chain_group(key: str) -> str:
    """Preprocess keys name their cohort: prepare-T/C-fp, apply-T/C-fp-i, finalize-T/C-fp-token."""
    for prefix, cut in (("prepare-", 1), ("apply-", 2), ("finalize-", 2)):
        if key.startswith(prefix):
            return key[len(prefix):].rsplit("-", cut)[0]
    return key


def _task_records(ts_data: list[dict]) -> list[dict]:
    out = []
    for t in ts_data:
        comp = [s for s in t.get("startstops", ()) if s.get("action") == "compute"]
        if not comp:
            continue
        key = t["key"] if isinstance(t["key"], str) else str(t["key"])
        out.append({"key": key, "worker": t.get("worker"), "start": comp[0]["start"], "stop": comp[-1]["stop"],
                    "seconds": sum(s["stop"] - s["start"] for s in comp), "nbytes": int(t.get("nbytes") or 0),
                    "transfers": sum(1 for s in t.get("startstops", ()) if s.get("action") == "transfer")})
    return out


def cold_corpus(corpus: Path) -> dict:
    """Drop the corpus's files from the page cache before a run, so every run reads its inputs the same way.

    Why: runs go back to back, and a corpus that fits in memory was otherwise cold for the first run of a pair
    and warm for the second (in 3 of the last 4 pairs on the 1/8 sample, the 2-worker run, always second, spent
    2.7-5.0 CPU-s less system time in ingest than the 1-worker run, of ~28).  Cold is also the state of a corpus
    too big for the page cache (the full one, ~21 GB)."""
    from benchmarks.bench_linked_reads import make_cold

    files = [str(p) for p in sorted(corpus.rglob("*")) if p.is_file()]
    make_cold(files)
    return {"files": len(files), "gb": round(sum(os.path.getsize(f) for f in files) / 1e9, 2)}


def run_pipeline(corpus: Path, out: Path, n_workers: int, mode: str = "fast",
                 only: tuple[str, ...] = (), dump: Path | None = None, drop: bool = False) -> dict:
    import dask
    from distributed import Client, LocalCluster, get_task_stream

    from genotex_dask import api
    from genotex_dask.cluster import EMBEDDED_CONFIG, SINGLE_THREAD_BLAS

    if only:  # rerun these stages on an earlier run's outputs (their own outputs removed first)
        for stage in only:
            if stage in ("analyze", "evaluate"):
                shutil.rmtree(out / ("regress" if stage == "analyze" else "report"), ignore_errors=True)
    elif out.exists():
        shutil.rmtree(out)
    store, specs = out / "store", out / "specs"
    rec: dict = {"workers": n_workers, "stages": {}}
    if not only:
        rec["corpus_cold"] = cold_corpus(corpus)
    rec["load_avg_before"] = os.getloadavg()
    # the embedded LocalCluster's settings (200 ms tick, no statistical profiler, one BLAS thread), as the CLI
    with dask.config.set(EMBEDDED_CONFIG), \
            LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, memory_limit="4GiB",
                         host="127.0.0.1", dashboard_address=None, env=SINGLE_THREAD_BLAS) as cluster, \
            Client(cluster) as client:
        pids = list(client.run(_warm).values())
        client.register_plugin(TaskCpu())
        steps = {
            "ingest": lambda: api.ingest(str(corpus), str(store), client=client, progress=False),
            "specs": lambda: api.suggest_specs(str(corpus), str(specs), store=str(store), client=client),
            "preprocess": lambda: api.preprocess(str(corpus), str(specs), str(out), store=str(store), client=client,
                                                 progress=False),
            "analyze": lambda: api.analyze(str(corpus), str(out), mode=mode, client=client, progress=False),
            "evaluate": lambda: api.evaluate(str(out), truth=str(corpus / "truth.json"),
                                             report=str(out / "report"), client=client),
        }
        for stage in only or STAGES:
            client.run(_take_task_cpu)
            w0, c0, r0 = client.run(_cpu), _cpu(), client.run(_rusage)
            t0, e0 = time.perf_counter(), time.time()
            with RssPoller(pids) as poll, get_task_stream(client) as ts:
                summary = steps[stage]()
            wall, e1 = time.perf_counter() - t0, time.time()
            w1, c1, r1 = client.run(_cpu), _cpu(), client.run(_rusage)
            rdelta = [sum(r1[k][i] - r0.get(k, r1[k])[i] for k in r1) for i in range(3)]
            tasks = _task_records(ts.data)
            task_cpu = {k: v for d in client.run(_take_task_cpu).values() for k, v in d.items()}
            steals = [m for t, m in client.get_events("stealing") if e0 <= t <= e1 and m and m[0] == "confirm"]
            for t in tasks:
                t["cpu"] = task_cpu.get(t["key"])
            wcpu = sum(w1[k] - w0.get(k, 0.0) for k in w1)
            secs = [t["seconds"] for t in tasks]
            chains: dict[str, list[dict]] = {}
            for t in tasks:
                chains.setdefault(_chain_group(t["key"]), []).append(t)
            chain_len = {g: _chain_seconds(v) for g, v in chains.items()}
            rec["stages"][stage] = {
                "wall_s": round(wall, 3), "worker_cpu_s": round(wcpu, 2), "client_scheduler_cpu_s": round(c1 - c0, 2),
                "busy_cores": round(wcpu / wall, 2) if wall else None,
                "peak_rss_mb_per_worker": sorted(round(v / 1e6) for v in poll.peak.values()),
                "n_tasks": len(tasks), "task_seconds_sum": round(sum(secs), 2),
                "task_seconds_max": round(max(secs), 3) if secs else 0.0,
                "critical_chain_s": round(max(chain_len.values()), 3) if chain_len else 0.0,
                "result_bytes_per_task": round(sum(t["nbytes"] for t in tasks) / len(tasks)) if tasks else 0,
                "transfers": sum(t["transfers"] for t in tasks),
                "task_cpu_s_sum": round(sum(t["cpu"] or 0.0 for t in tasks), 2),
                "worker_sys_cpu_s": round(rdelta[0], 2), "worker_minor_faults": int(rdelta[1]),
                "worker_involuntary_switches": int(rdelta[2]),
                "per_worker": idle_decomposition(tasks, e0, e1, sorted(w1)),
                "steals": len(steals),  # tasks the scheduler moved to another worker than the one chosen
                "groups": [round(v, 4) for v in sorted(_group_work(chains).values(), reverse=True)],
                "chains": [round(v, 4) for v in sorted(chain_len.values(), reverse=True)],
                "summary": _small(summary),
                "load_avg_end": os.getloadavg(),
            }
            s = rec["stages"][stage]
            s["overhead_share"] = round(1 - s["task_seconds_sum"] / (wall * n_workers), 3) if wall and tasks else None
            print(f"{n_workers} worker(s) {stage}: wall {s['wall_s']} s, worker CPU {s['worker_cpu_s']} s, "
                  f"{s['n_tasks']} tasks, load {s['load_avg_end'][0]:.1f}", file=sys.stderr, flush=True)
            if stage == "analyze":
                s["problem_costs"] = problem_costs(out, summary)
                from genotex_dask.pipelines.analyze import cache_stats
                s["cohort_cache_per_worker"] = [client.run(cache_stats)[w] for w in sorted(w1)]
            if dump is not None:
                dump.mkdir(parents=True, exist_ok=True)
                (dump / f"tasks_w{n_workers}_{stage}.json").write_text(json.dumps(
                    {"start": e0, "stop": e1, "tasks": tasks}, indent=0) + "\n")
            if stage == "evaluate":
                rec["planted_truth"] = summary.get("headline", {}).get("planted_truth")
                rec["usability_vs_truth"] = summary.get("headline", {}).get("usability_vs_truth")
    rec["disk_mb"] = {"store": round(_du(store) / 1e6, 1),
                      "preprocess_out": round(_du(out / "preprocess") / 1e6, 1),
                      "preprocess_store": round(_du(out / "preprocess_store") / 1e6, 1),  # the AnnData copies
                      "regress_out": round(_du(out / "regress") / 1e6, 1)}
    rec["total_wall_s"] = round(sum(s["wall_s"] for s in rec["stages"].values()), 2)
    rec["total_worker_cpu_s"] = round(sum(s["worker_cpu_s"] for s in rec["stages"].values()), 2)
    rec["total_client_scheduler_cpu_s"] = round(sum(s["client_scheduler_cpu_s"] for s in rec["stages"].values()), 2)
    rec["load_avg_after"] = os.getloadavg()
    if drop:  # measured: its store and outputs (GBs per run) go before the next run writes its own
        shutil.rmtree(out, ignore_errors=True)
        time.sleep(DROP_SETTLE_S)
    return rec


def _small(summary) -> dict:
    if not isinstance(summary, dict):
        return {}
    return {k: (len(v) if isinstance(v, (list, dict)) else v) for k, v in summary.items()
            if isinstance(v, (int, float, str, list, dict)) and k not in ("headline",)}


def _chain_seconds(tasks: list[dict]) -> float:
    """A cohort chain: prepare, then its blocks (in parallel), then finalize; other groups are one task."""
    pre = sum(t["seconds"] for t in tasks if t["key"].startswith("prepare-"))
    blk = max((t["seconds"] for t in tasks if t["key"].startswith("apply-")), default=0.0)
    fin = sum(t["seconds"] for t in tasks if t["key"].startswith("finalize-"))
    rest = max((t["seconds"] for t in tasks if not t["key"].startswith(("prepare-", "apply-", "finalize-"))),
               default=0.0)
    return pre + blk + fin + rest


def _group_work(chains: dict[str, list[dict]]) -> dict[str, float]:
    return {g: sum(t["seconds"] for t in v) for g, v in chains.items()}


def _lpt(works: list[float], k: int) -> float:
    """Makespan of longest-processing-time-first list scheduling on k workers."""
    loads = [0.0] * k
    heapq.heapify(loads)
    for w in sorted(works, reverse=True):
        heapq.heappush(loads, heapq.heappop(loads) + w)
    return max(loads) if works else 0.0


def _model(stage: dict, repeat: int, k: int, scale: float = 1.0) -> float:
    """Stage wall time without its fixed overhead: tasks (repeated, each scaled) on k workers, chains,
    scheduler throughput."""
    works = [w * scale for w in stage["groups"]] * repeat
    per_task_sched = stage["client_scheduler_cpu_s"] / stage["n_tasks"] if stage["n_tasks"] else 0.0
    return max(_lpt(works, k), stage["critical_chain_s"], stage["n_tasks"] * repeat * per_task_sched)


DEFAULT_BETA = 3.0  # analysis cost ~ n^beta when a sample has too few problem sizes to fit it


def problem_costs(out: Path, summary: dict) -> list[list[float]]:
    """[samples, seconds] per solved problem (the seconds from the run summary, the size from its result)."""
    from genotex_dask.pipelines.analyze import ENGINE_KEY

    pairs = []
    for d in summary.get("done", []):
        f = out / "regress" / f"{d['problem']}.json"
        try:
            n = json.loads(f.read_text())[ENGINE_KEY]["n_samples"]
        except (OSError, ValueError, KeyError):
            continue
        if d.get("seconds"):
            pairs.append([int(n), float(d["seconds"])])
    return pairs


def fit_beta(pairs: list[list[float]]) -> float:
    """Exponent of seconds ~ c * n^beta by least squares in log space (DEFAULT_BETA without two sizes)."""
    import numpy as np

    if len({n for n, _ in pairs}) < 2:
        return DEFAULT_BETA
    x = np.log([n for n, _ in pairs])
    y = np.log([max(t, 1e-3) for _, t in pairs])
    return float(np.clip(np.polyfit(x, y, 1)[0], 1.0, 4.0))


def corpus_measures(k: int, beta: float, seed: int = 0) -> dict[str, float]:
    """Per stage, how much work the 1/k sample's plan holds (k=1: the full corpus), from synth's plan only:
    ingest ~ gz bytes, preprocess ~ samples x features, analyze ~ problems x (largest usable cohort's
    samples)^beta, specs ~ cohorts, evaluate ~ problems.  Ratios of these, not k, scale a sample to another size:
    a 1/k sample of 132 traits holds only roughly 1/k of the problems and of the big TCGA cohorts.  Only usable
    cohorts count for analyze: a trait whose largest cohort is unusable (e.g. 1,442 samples, too few controls)
    is regressed on a far smaller one, and counting it overstated the 1/8 sample's analysis work."""
    from genotex_dask.synth.corpus import UNUSABLE_SCENARIOS, plan_genotex

    plan = plan_genotex(seed, 1.0 / k)
    kept = set(plan["kept_traits"])
    cohorts = plan["cohorts"]
    nmax: dict[str, int] = {}
    for c in cohorts:
        if c["scenario"] not in UNUSABLE_SCENARIOS:
            nmax[c["trait"]] = max(nmax.get(c["trait"], 0), int(c["n_samples"]))
    problems = {t["name"]: 1 + len(t["conditions"]) for t in plan["traits"] if t["name"] in kept}
    return {"ingest": float(sum(c["est_gz_bytes"] for c in cohorts)),
            "specs": float(len(cohorts)),
            "preprocess": float(sum(c["n_samples"] * c["n_features"] * max(1, len(c["platforms"])) for c in cohorts)),
            "analyze": float(sum(m * nmax.get(t, 0) ** beta for t, m in problems.items())),
            "evaluate": float(sum(problems.values()))}


def scale_factors(small_k: int, big_k: int, beta: float) -> dict[str, float]:
    """Work of the 1/big_k corpus over the 1/small_k sample's, per stage (big_k=1: the full corpus)."""
    a, b = corpus_measures(small_k, beta), corpus_measures(big_k, beta)
    return {st: (b[st] / a[st] if a[st] else float(small_k // big_k)) for st in STAGES}


def project(run: dict, repeat: int, workers: tuple[int, ...], factors: dict[str, float] | None = None) -> dict:
    """Projected wall time per stage and in total on each worker count: the sample's tasks repeated ``repeat``
    times, each scaled so the stage's work is ``factors[stage]`` times the sample's (default: ``repeat``)."""
    out = {}
    for k in workers:
        per = {}
        for stage, s in run["stages"].items():
            f = (factors or {}).get(stage, float(repeat))
            if not s["n_tasks"]:  # a client-side stage (specs): scales with the corpus, not the workers
                per[stage] = round(s["wall_s"] * f, 2)
                continue
            fixed = max(0.0, s["wall_s"] - _model(s, 1, run["workers"]))
            per[stage] = round(_model(s, repeat, k, f / repeat) + fixed, 2)
        out[k] = {"stages": per, "total_s": round(sum(per.values()), 1), "factors": {
            st: round((factors or {}).get(st, float(repeat)), 3) for st in run["stages"]}}
    return out


def _corpus(base: Path, k: int) -> tuple[Path, dict]:
    from genotex_dask.synth.corpus import write_corpus

    path = base / f"genotex_1of{k}"
    summ = path / "synth_summary.json"
    if summ.exists() and (path / "truth.json").exists():
        return path, {"reused": True, **json.loads(summ.read_text())}
    if path.exists():
        shutil.rmtree(path)
    t0, c0 = time.perf_counter(), time.process_time()
    r = write_corpus(str(path), scale="genotex", fraction=1 / k)
    return path, {"reused": False, "wall_s": round(time.perf_counter() - t0, 1),
                  "cpu_s": round(time.process_time() - c0, 1), **{x: r[x] for x in r if x not in ("out", "params")}}


def _measured(path: Path, k: int) -> dict:
    """The 1/k run an earlier fullscale.json holds (its main or its check_run entry), for a run not repeated."""
    old = json.loads(path.read_text())
    if old.get("fraction") == k and "main" in old:
        return old["main"]
    if (old.get("check") or {}).get("fraction") == k and "check_run" in old:
        return old["check_run"]
    raise SystemExit(f"{path}: no measured 1/{k} run (main is 1/{old.get('fraction')}, "
                     f"check 1/{(old.get('check') or {}).get('fraction')})")


def _factors(main: dict) -> dict[str, float]:
    """The per-stage factors the projection used (any worker count's entry holds them)."""
    return next(iter(main["projection"].values()), {}).get("factors", {})


def to_markdown(res: dict) -> str:
    lines = _main_markdown(res) if "main" in res else ["# The whole pipeline at GenoTEX scale "
                                                        "(`benchmarks/bench_fullscale.py`)"]
    if res.get("scaling"):
        lines += _scaling_markdown(res["scaling"], res.get("scaling_other_runs"))
        # pairs on another sample (kept in scaling_other_runs): the latest of each fraction, with its own table
        others: dict[int, list[dict]] = {}
        for e in res.get("scaling_other_runs", []):
            if e.get("runs") and e.get("fraction") != res["scaling"]["fraction"]:
                others.setdefault(e["fraction"], []).append(e)
        for _frac_k, runs in sorted(others.items()):
            lines += _scaling_markdown(runs[-1], runs[:-1])
    return "\n".join(lines) + "\n"


def _main_markdown(res: dict) -> list[str]:
    main = res["main"]
    k = res["fraction"]
    c = main["corpus"]
    lines = [
        "# The whole pipeline at GenoTEX scale (`benchmarks/bench_fullscale.py`)", "",
        f"Corpus: `genotex-dask synth --scale genotex --fraction 1/{k}` — a stratified 1/{k} sample of the "
        f"GenoTEX-scale corpus (132 traits, 911 cohorts, 1,384 problems): {c.get('traits')} traits, "
        f"{c.get('cohorts')} cohorts ({c.get('usable_cohorts')} usable), {c.get('problems')} problems, "
        f"{c.get('data_bytes_gz', 0) / 1e9:.2f} GB of gz" +
        (f", written in {c['wall_s']} s wall / {c['cpu_s']} CPU-s." if not c.get("reused") else " (reused)."),
        f"Cluster: LocalCluster with the embedded default's settings, {main['run']['workers']} worker processes x 1 "
        f"thread, 4 GiB each, analysis mode fast. Machine: {os.cpu_count()} cores shared with other jobs (load averages beside each figure).", "",
        "| stage | wall s | worker CPU s | client+scheduler CPU s | busy cores | tasks | task s (sum / max) | "
        "critical chain s | overhead share | result bytes/task | peak RSS per worker MB | load (1 min) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for stage, s in main["run"]["stages"].items():
        lines.append(f"| {stage} | {s['wall_s']} | {s['worker_cpu_s']} | {s['client_scheduler_cpu_s']} | "
                     f"{s['busy_cores']} | {s['n_tasks']} | {s['task_seconds_sum']} / {s['task_seconds_max']} | "
                     f"{s['critical_chain_s']} | {s['overhead_share']} | {s['result_bytes_per_task']} | "
                     f"{s['peak_rss_mb_per_worker']} | {s['load_avg_end'][0]:.1f} |")
    r = main["run"]
    lines += [
        f"| **total** | {r['total_wall_s']} | {r['total_worker_cpu_s']} | {r['total_client_scheduler_cpu_s']} | | | | | "
        f"| | | {r['load_avg_after'][0]:.1f} |", "",
        *([f"Stages {', '.join(r['rerun_stages']['stages'])} were rerun on this run's outputs"
           f"{' (' + r['rerun_stages']['note'] + ')' if r['rerun_stages'].get('note') else ''}; the other stages "
           "are the first run's.", ""] if r.get("rerun_stages") else []),
        f"Disk: store {r['disk_mb']['store']} MB, preprocessed outputs {r['disk_mb']['preprocess_out']} MB"
        + (f" (+ {r['disk_mb']['preprocess_store']} MB of AnnData)" if "preprocess_store" in r["disk_mb"] else "")
        + ", "
        f"regression outputs {r['disk_mb']['regress_out']} MB.",
        f"Planted truth (fast mode): {json.dumps(r.get('planted_truth'))}.", "",
        f"## Projection to the full corpus (this sample's tasks x{k}, scaled per stage to the full corpus's work)", "",
        "Work of the full corpus over this sample's, per stage, from synth's plan (analyze: problems x largest "
        f"usable cohort's samples^{main.get('beta', DEFAULT_BETA)}, the exponent fitted on this sample's problems): " +
        ", ".join(f"{st} {f}x" for st, f in _factors(main).items()) + ".", "",
        "| workers | " + " | ".join(STAGES) + " | total |", "|---:|" + "---:|" * (len(STAGES) + 1),
    ]
    for w, p in main["projection"].items():
        lines.append(f"| {w} | " + " | ".join(str(p["stages"].get(s, "")) for s in STAGES) +
                     f" | {p['total_s']} s ({p['total_s'] / 60:.1f} min) |")
    fac = _factors(main)
    cpu_full = sum((s["worker_cpu_s"] + s["client_scheduler_cpu_s"]) * fac.get(st, k) for st, s in r["stages"].items())
    lines += ["", "The 2-worker row is the full corpus on this machine at the load measured (target: 30 minutes); task "
              "durations are wall times, so a loaded machine inflates them.",
              f"CPU view (load-independent): this sample used {r['total_worker_cpu_s']} worker CPU-s + "
              f"{r['total_client_scheduler_cpu_s']} client/scheduler CPU-s, so the full corpus needs about "
              f"{cpu_full / 3600:.1f} core-hours: at best {cpu_full / 2 / 60:.0f} minutes on 2 dedicated cores "
              "(GenoTEX's reference: about 10.5 core-hours). Per stage (worker CPU-s x the stage's factor): " +
              ", ".join(f"{st} {s['worker_cpu_s'] * fac.get(st, k) / 3600:.2f} h" for st, s in r["stages"].items())
              + "."]
    if res.get("check"):
        ch = res["check"]
        lines += ["", f"## Model check: the 1/{k} run predicted from the 1/{ch['fraction']} run "
                  f"(its tasks x{ch['fraction'] // k}, scaled per stage by the plans' work ratio: " +
                  ", ".join(f"{st} {f}x" for st, f in (ch.get("factors") or {}).items()) +
                  f"; {main['run']['workers']} workers)", ""]
        if res.get("check_run", {}).get("from"):
            lines += [f"The 1/{ch['fraction']} run is the one measured earlier in `{res['check_run']['from']}` "
                      "(not run again), with its own load.", ""]
        lines += ["| stage | predicted s | measured s | error |", "|---|---:|---:|---:|"]
        for stage, e in ch["errors"].items():
            lines.append(f"| {stage} | {e['predicted']} | {e['measured']} | {e['error_pct']}% |")
        small = res.get("check_run", {}).get("run")
        target = res.get("check_target")  # the run the check was made against, when main has since been rerun
        if target:
            lines += ["", f"The check was made against the 1/{k} run as first measured ({target.get('note', '')}); "
                      "the stage table at the top shows it after its rerun stages."]
            r = target["run"]
        if small:
            rep = ch["fraction"] // k
            lines += ["", "The same check on worker CPU seconds (load-independent; the runs saw different loads):", "",
                      "| stage | predicted CPU s | measured CPU s | error | load (small / big run) |",
                      "|---|---:|---:|---:|---:|"]
            fac = ch.get("factors") or {}
            for stage in STAGES:
                p_ = small["stages"][stage]["worker_cpu_s"] * fac.get(stage, rep)
                m_ = r["stages"][stage]["worker_cpu_s"]
                err = f"{round(100 * (p_ - m_) / m_, 1)}%" if m_ >= 1 else "n/a"
                lines.append(f"| {stage} | {round(p_, 1)} | {m_} | {err} | "
                             f"{small['stages'][stage]['load_avg_end'][0]:.1f} / "
                             f"{r['stages'][stage]['load_avg_end'][0]:.1f} |")
            lines.append("Samples: " + f"{res['check_run']['corpus'].get('problems')} and {c.get('problems')} "
                         f"problems, {res['check_run']['corpus'].get('cohorts')} and {c.get('cohorts')} cohorts; a 1/k "
                         "sample of 132 traits is only roughly proportional and analysis cost follows the few "
                         "largest (TCGA-size) cohorts, hence the plan's work ratios rather than k.")
    for e in res.get("earlier_checks", []):
        errs = e["check"]["errors"]
        lines += ["", f"Earlier model check ({e.get('note', '')}): the 1/{e['main_fraction']} run predicted from the "
                  f"1/{e['check']['fraction']} run, wall time: total {errs['total']['error_pct']}% (" +
                  ", ".join(f"{st} {errs[st]['error_pct']}%" for st in STAGES if st in errs) + ")."]
    return lines


def _scaling_markdown(sc: dict, earlier: list[dict] | None = None) -> list[str]:
    lines = []
    lines += ["", f"## 1 vs 2 workers (1/{sc['fraction']} sample)", "",
              "| stage | 1 worker s | 2 workers s | speed-up | busy cores (1 / 2) | load (1 / 2) |",
              "|---|---:|---:|---:|---:|---:|"]
    one, two = sc["runs"]
    for stage in STAGES:
        a, b = one["stages"][stage], two["stages"][stage]
        lines.append(f"| {stage} | {a['wall_s']} | {b['wall_s']} | {round(a['wall_s'] / b['wall_s'], 2)} | "
                     f"{a['busy_cores']} / {b['busy_cores']} | {a['load_avg_end'][0]:.1f} / "
                     f"{b['load_avg_end'][0]:.1f} |")
    lines.append(f"| total | {one['total_wall_s']} | {two['total_wall_s']} | "
                 f"{round(one['total_wall_s'] / two['total_wall_s'], 2)} | | |")
    lines += ["", "Busy cores = worker CPU-s / wall s: with other jobs on the 2 cores, 2 workers cannot get 2 "
              "cores' worth of CPU and the wall-clock speed-up is bounded by it."]
    cold = one.get("corpus_cold")
    lines.append(f"Each run started with the corpus ({cold['files']} files, {cold['gb']} GB) dropped from the page "
                 "cache." if cold else "The runs read the corpus as the page cache held it: the 1-worker run, always "
                 "first, found a corpus that fits in memory colder than the 2-worker run did.")
    dec = sc.get("decomposition")
    if dec:
        lines += ["", "Where the 2-worker run loses against half the 1-worker wall time (seconds of 2-worker wall; "
                  "per run, workers x wall = task CPU + time a running task was off CPU (waiting for a core or the disk) + "
                  "idle worker time, "
                  "so the loss splits exactly into the three; idle split into before the first task / between tasks "
                  "/ after the last task, per worker, halved):", "",
                  "| stage | 1 worker s | 2 workers s | loss s | extra task CPU | extra off-CPU in tasks | "
                  "extra idle | idle head / gaps / tail (2 workers) | task CPU s (1 / 2) | client+scheduler CPU s |",
                  "|---|---:|---:|---:|---:|---:|---:|---|---|---:|"]
        for stage, r in dec.items():
            if stage == "total":
                continue
            idle = (f"{r['idle_head_2']} / {r['idle_gaps_2']} / {r['idle_tail_2']}" if "idle_head_2" in r
                    else "client only")
            cpu = f"{r['task_cpu_1']} / {r['task_cpu_2']}" if "task_cpu_1" in r else ""
            lines.append(f"| {stage} | {r['wall_1']} | {r['wall_2']} | {r['loss_s']} | {r['extra_cpu']} | "
                         f"{r['extra_wait']} | {r['extra_idle']} | {idle} | {cpu} | {r['client_scheduler_cpu_2']} |")
        t = dec["total"]
        lines.append(f"| **total** | {t['wall_1']} | {t['wall_2']} | {t['loss_s']} | {t['extra_cpu']} | "
                     f"{t['extra_wait']} | {t['extra_idle']} | | | |")
        lines += ["", f"Speed-up {t['speedup']}x; other pairs of this run: " +
                  (", ".join(f"{p['speedup']}x" for p in sc.get("other_pairs", [])) or "none") +
                  " (the pair reported is the one whose tasks spent the least time off CPU: the least disturbed)."]
    earlier = [e for e in earlier or [] if e.get("runs") and e.get("fraction") == sc["fraction"]]
    if earlier:
        lines.append("Earlier scaling runs kept in the JSON (`scaling_other_runs`, best pair of each): " + ", ".join(
            f"{e['runs'][0]['total_wall_s'] / e['runs'][1]['total_wall_s']:.2f}x "
            f"({e['runs'][0]['total_wall_s']} s vs {e['runs'][1]['total_wall_s']} s)" for e in earlier) + ".")
    con = (sc.get("contention") or {}).get("before")
    if con:
        lines += ["", f"This machine's contention (CPU of a kernel run by 2 processes at once over run alone, "
                  f"load {sc['contention']['load_avg'][0]:.1f}): memory-bound (a 700 x 19,700 matrix streamed) "
                  f"{con['memory_bound']}x, cache-resident {con['cache_resident']}x (above 1: work that streams "
                  "memory costs each of 2 workers that much more CPU).  Per stage, the JSON also has the workers' "
                  "system CPU, minor page faults and involuntary context switches (preemption by other processes), "
                  "and per analysis worker the cohorts parsed (`cohort_cache_per_worker`)."]
    return lines


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fraction", type=_frac, default=8, help="1/k sample of the GenoTEX-scale corpus (default 1/8)")
    ap.add_argument("--check", type=_frac, default=None, help="a smaller 1/k sample to check the projection")
    ap.add_argument("--scaling", type=_frac, default=None, help="run this 1/k sample on 1 and 2 workers")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--corpora", default=str(RESULTS / "tmp"))
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--main-from", help="take the 1/k (--fraction) run from this fullscale.json (its check_run or "
                    "main entry, measured earlier) instead of running it again")
    ap.add_argument("--check-from", help="take the --check run from this fullscale.json (its main or check_run "
                    "entry of that fraction, measured earlier) instead of running it again")
    ap.add_argument("--rerun-stages", default="", help="with --main-from: rerun these stages (comma-separated, "
                    "e.g. analyze,evaluate) on that run's outputs and replace their records")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite fullscale.md from fullscale.json (a run stopped early: its smaller completed "
                         "sample is reported as the main one)")
    ap.add_argument("--work", help="where the runs' stores and outputs go (default: --corpora), e.g. to read "
                    "corpora generated elsewhere without writing beside them")
    ap.add_argument("--scaling-only", action="store_true", help="only the --scaling runs (no --fraction run); "
                    "an existing fullscale.json in --out keeps its other entries, its former scaling entry moved to "
                    "scaling_other_runs")
    ap.add_argument("--scaling-runs", type=int, default=1,
                    help="1-worker and 2-worker runs back to back this many times (the best pair is reported)")
    ap.add_argument("--dump-tasks", help="write every stage's task records (key, worker, start, stop, seconds, "
                    "CPU) under this directory")
    ap.add_argument("--drop-outputs", action="store_true", help="delete each run's store and outputs once it is "
                    "measured (a 1/2 run writes ~32 GB, a 1/8 pair ~16 GB), then waits DROP_SETTLE_S unmeasured")
    a = ap.parse_args(argv)
    if a.report_only:
        res = json.loads((Path(a.out) / "fullscale.json").read_text())
        if "main" not in res and "check_run" in res:
            k = a.check or 16
            run = res["check_run"]["run"]
            res["fraction"] = k
            res["main"] = {"corpus": res["check_run"]["corpus"], "run": run,
                           "projection": project(run, k, (run["workers"], *PROJECT_WORKERS), scale_factors(
                               k, 1, fit_beta(run["stages"]["analyze"].get("problem_costs", []))))}
            res["note"] = (f"the run was stopped before the 1/{a.fraction} sample finished; the completed 1/{k} "
                           "sample is the measured one, and no model check was possible")
        (Path(a.out) / "fullscale.md").write_text(to_markdown(res) + (f"\nNote: {res['note']}.\n"
                                                                      if res.get("note") else ""))
        print(to_markdown(res))
        return res
    base = Path(a.corpora)
    base.mkdir(parents=True, exist_ok=True)
    work = Path(a.work) if a.work else base
    work.mkdir(parents=True, exist_ok=True)
    dump = Path(a.dump_tasks) if a.dump_tasks else None
    res: dict = {"benchmark": "fullscale", "fraction": a.fraction, "load_avg_start": os.getloadavg()}
    prev = Path(a.out) / "fullscale.json"
    if a.scaling_only and prev.exists():  # keep the earlier main run; its scaling entry joins the other runs
        res = json.loads(prev.read_text())
        if res.get("scaling"):
            res.setdefault("scaling_other_runs", []).append(res.pop("scaling"))

    def save():
        out = Path(a.out)
        (out / "fullscale.json").write_text(json.dumps(res, indent=1) + "\n")
        if "main" in res or "scaling" in res:
            (out / "fullscale.md").write_text(to_markdown(res))

    runs: dict[int, dict] = {}
    if a.check and a.check_from:
        runs[a.check] = {**_measured(Path(a.check_from), a.check), "from": a.check_from}
        res["check_run"] = runs[a.check]
        save()
    elif a.check:
        path, corp = _corpus(base, a.check)
        runs[a.check] = {"corpus": corp, "run": run_pipeline(path, work / f"out_1of{a.check}_w{a.workers}",
                                                             a.workers, drop=a.drop_outputs)}
        res["check_run"] = runs[a.check]
        save()
    if a.scaling_only:
        pass
    elif a.main_from:
        prev = _measured(Path(a.main_from), a.fraction)
        corp, run = prev["corpus"], prev["run"]
        res["main_from"] = a.main_from
        if a.rerun_stages:
            stages = tuple(x for x in a.rerun_stages.split(",") if x)
            path, _ = _corpus(base, a.fraction)
            again = run_pipeline(path, work / f"out_1of{a.fraction}_w{a.workers}", a.workers, only=stages)
            run["stages"].update(again["stages"])
            for k in ("planted_truth", "usability_vs_truth"):
                if k in again:
                    run[k] = again[k]
            run["rerun_stages"] = {"stages": list(stages), "load_avg_before": again["load_avg_before"],
                                   "load_avg_after": again["load_avg_after"]}
            run["disk_mb"]["regress_out"] = again["disk_mb"]["regress_out"]
            run["total_wall_s"] = round(sum(s["wall_s"] for s in run["stages"].values()), 2)
            run["total_worker_cpu_s"] = round(sum(s["worker_cpu_s"] for s in run["stages"].values()), 2)
            run["total_client_scheduler_cpu_s"] = round(sum(s["client_scheduler_cpu_s"]
                                                            for s in run["stages"].values()), 2)
    else:
        path, corp = _corpus(base, a.fraction)
        run = run_pipeline(path, work / f"out_1of{a.fraction}_w{a.workers}", a.workers, drop=a.drop_outputs)
    if not a.scaling_only:
        beta = fit_beta(run["stages"]["analyze"].get("problem_costs", []))
        res["main"] = {"corpus": corp, "run": run, "beta": round(beta, 3),
                       "projection": project(run, a.fraction, (a.workers, *PROJECT_WORKERS),
                                             scale_factors(a.fraction, 1, beta))}
        save()
    if a.check and not a.scaling_only:
        small = runs[a.check]["run"]
        beta_small = fit_beta(small["stages"]["analyze"].get("problem_costs", []))
        factors = scale_factors(a.check, a.fraction, beta_small)
        pred = project(small, a.check // a.fraction, (a.workers,), factors)[a.workers]
        errs = {}
        for stage in STAGES:
            p, m = pred["stages"][stage], run["stages"][stage]["wall_s"]
            errs[stage] = {"predicted": p, "measured": m, "error_pct": round(100 * (p - m) / m, 1) if m else None}
        errs["total"] = {"predicted": pred["total_s"], "measured": run["total_wall_s"],
                         "error_pct": round(100 * (pred["total_s"] - run["total_wall_s"]) / run["total_wall_s"], 1)}
        res["check"] = {"fraction": a.check, "errors": errs, "beta": round(beta_small, 3),
                        "factors": {k: round(v, 3) for k, v in factors.items()}}
        save()
    if a.scaling:
        path, corp = _corpus(base, a.scaling)
        contention = {"before": contention_factors(), "load_avg": os.getloadavg()}
        pairs = []
        for i in range(max(1, a.scaling_runs)):  # 1 then 2 workers, back to back, so both see the same load
            two = runs.get(a.scaling, {}).get("run") if a.workers == 2 and i == 0 else None
            one = run_pipeline(path, work / f"out_1of{a.scaling}_w1", 1, dump=dump and dump / f"pair{i}",
                               drop=a.drop_outputs)
            if two is None:
                two = run_pipeline(path, work / f"out_1of{a.scaling}_w2", 2, dump=dump and dump / f"pair{i}",
                                   drop=a.drop_outputs)
            pairs.append([one, two])
            best = min(pairs, key=lambda p: _off_cpu(p[0]) + _off_cpu(p[1]))  # the pair other jobs disturbed least
            res["scaling"] = {"fraction": a.scaling, "runs": best, "decomposition": scaling_decomposition(*best),
                              "contention": contention,
                              "other_pairs": [{"speedup": round(p[0]["total_wall_s"] / p[1]["total_wall_s"], 3),
                                               "decomposition": scaling_decomposition(*p)}
                                              for p in pairs if p is not best]}
            save()
    res["load_avg_end"] = os.getloadavg()
    save()
    print(to_markdown(res))
    return res


if __name__ == "__main__":
    main()

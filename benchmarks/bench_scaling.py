"""Scaling of the whole pipeline (ingest -> specs -> preprocess -> analyze) from 1 to 2 workers.

Both configurations run side by side in one process on the same synthetic corpus, each on a fresh
LocalCluster of single-threaded worker processes (the layout the cluster guide recommends).  Worker
start-up and first imports are paid before the clock starts (a warm-up task imports the pipeline
modules on every worker), so the figures are the stages' own wall times.  Peak memory per worker is the
worker process's maximum resident set size (``getrusage``), read after each configuration.

    .venv/bin/python -m benchmarks.bench_scaling [--traits 6 --cohorts-per-trait 4 --samples 80 --probes 6000]

Writes benchmarks/results/scaling.json and scaling.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from distributed import Client, LocalCluster

RESULTS = Path(__file__).resolve().parent / "results"
STAGES = ("ingest", "specs", "preprocess", "analyze")


def _warm_imports() -> int:
    """Import what the stage tasks import, so timing starts with warm workers."""
    import importlib

    for name in ("genotex_dask.pipelines.ingest", "genotex_dask.pipelines.preprocess",
                 "genotex_dask.pipelines.analyze", "anndata", "zarr", "sklearn.linear_model"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    return os.getpid()


def _peak_rss_mib() -> float:
    """Peak resident set size of this (worker) process in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    """User + system CPU time of this (worker) process so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _counts(summary: dict) -> dict:
    """The done/skipped/failed counts of a stage summary, whatever their exact names."""
    out = {}
    for k, v in summary.items():
        if isinstance(v, bool):
            continue
        if isinstance(v, int):
            out[k] = v
        elif isinstance(v, (dict, list)) and k in ("failed", "errors"):
            out[k] = len(v)
    return out


def run_pipeline(corpus: str, out: str, n_workers: int, mode: str) -> dict:
    """Run every stage on a fresh ``n_workers`` x 1-thread LocalCluster; wall time per stage."""
    from genotex_dask import api, layout

    store = layout.join(out, "store")
    specs = layout.join(out, "specs")
    rec: dict = {"workers": n_workers, "stages": {}, "loadavg_1min_before": round(os.getloadavg()[0], 2)}
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, memory_limit="4GiB",
                      host="127.0.0.1", dashboard_address=None) as cluster, Client(cluster) as client:
        client.run(_warm_imports)
        maxrss_start = sorted(round(v, 1) for v in client.run(_peak_rss_mib).values())
        steps = {
            "ingest": lambda: api.ingest(corpus, store, client=client, progress=False),
            "specs": lambda: api.suggest_specs(corpus, specs, store=store),
            "preprocess": lambda: api.preprocess(corpus, specs, out, store=store, client=client, progress=False),
            "analyze": lambda: api.analyze(corpus, out, mode=mode, client=client, progress=False),
        }
        for stage in STAGES:
            cpu0 = client.run(_cpu_seconds)
            t0 = time.perf_counter()
            try:
                summary = steps[stage]()
            except (ImportError, NotImplementedError) as err:
                rec["stages"][stage] = {"seconds": None, "error": f"{type(err).__name__}: {err}"}
                continue
            wall = time.perf_counter() - t0
            cpu1 = client.run(_cpu_seconds)
            # CPU the workers got during the stage: cpu/wall is the number of cores they kept busy (at most
            # n_workers); on a shared machine it shows how much of the speed-up the machine could deliver.
            cpu = sum(cpu1[w] - cpu0.get(w, 0.0) for w in cpu1)
            rec["stages"][stage] = {"seconds": round(wall, 3), "worker_cpu_seconds": round(cpu, 2),
                                    "busy_cores": round(cpu / wall, 2) if wall else None,
                                    "counts": _counts(summary if isinstance(summary, dict) else {})}
            items = summary.get("done") if isinstance(summary, dict) else None
            if isinstance(items, list) and items and isinstance(items[0], dict) and "seconds" in items[0]:
                # per-problem task times: the longest one bounds the stage's wall time on any number of workers
                secs = sorted((float(d["seconds"]) for d in items), reverse=True)
                rec["stages"][stage].update(task_seconds_sum=round(sum(secs), 2), task_seconds_max=secs[0])
            print(f"{n_workers} worker(s): {stage} {rec['stages'][stage]}", file=sys.stderr, flush=True)
        rec["peak_rss_mib_per_worker"] = sorted(round(v, 1) for v in client.run(_peak_rss_mib).values())
        # ru_maxrss is a high-water mark a spawned process can inherit from its parent: the value after start-up
        # shows how much of the peak is the worker's own
        rec["peak_rss_mib_per_worker_after_startup"] = maxrss_start
    rec["loadavg_1min_after"] = round(os.getloadavg()[0], 2)  # the machine is shared: say how busy it was
    done = [s["seconds"] for s in rec["stages"].values() if s.get("seconds") is not None]
    rec["total_seconds"] = round(sum(done), 3)
    return rec


def _speedups(one: dict, two: dict) -> dict:
    out = {}
    for stage in (*STAGES, "total"):
        a = one["total_seconds"] if stage == "total" else one["stages"][stage].get("seconds")
        b = two["total_seconds"] if stage == "total" else two["stages"][stage].get("seconds")
        out[stage] = round(a / b, 2) if a and b else None
    return out


def to_markdown(res: dict) -> str:
    one, two = res["runs"]
    lines = [
        "# Pipeline scaling: 1 vs 2 worker processes (1 thread each)",
        "",
        f"Corpus: {res['corpus']}  ",
        f"Machine: {res['machine']}; analysis mode `{res['mode']}`.",
        "",
        "| stage | 1 worker (s) | 2 workers (s) | speed-up | worker CPU s (1 / 2) | busy cores (1 / 2) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]

    def cell(r: dict, stage: str, key: str):
        v = r["stages"].get(stage, {}).get(key)
        return "n/a" if v is None else v

    for stage in (*STAGES, "total"):
        a = one["total_seconds"] if stage == "total" else one["stages"][stage].get("seconds")
        b = two["total_seconds"] if stage == "total" else two["stages"][stage].get("seconds")
        sp = res["speedup"][stage]
        extra = (" | | |" if stage == "total" else
                 f" | {cell(one, stage, 'worker_cpu_seconds')} / {cell(two, stage, 'worker_cpu_seconds')}"
                 f" | {cell(one, stage, 'busy_cores')} / {cell(two, stage, 'busy_cores')} |")
        lines.append(f"| {stage} | {a if a is not None else 'n/a'} | {b if b is not None else 'n/a'} | "
                     f"{sp if sp is not None else 'n/a'}" + extra)
    lines += [
        "",
        f"Peak RSS per worker (MiB): 1 worker {one['peak_rss_mib_per_worker']}, "
        f"2 workers {two['peak_rss_mib_per_worker']} (after start-up, before any stage: "
        f"{one['peak_rss_mib_per_worker_after_startup']} and {two['peak_rss_mib_per_worker_after_startup']}; "
        "ru_maxrss can include the parent's high-water mark at spawn).",
        "",
        f"1-minute load average before/after (2 cores, shared with other jobs): 1 worker "
        f"{one['loadavg_1min_before']}/{one['loadavg_1min_after']}, 2 workers "
        f"{two['loadavg_1min_before']}/{two['loadavg_1min_after']}.",
        "",
        "`specs` (suggesting cohort specs) runs in the client process and does not scale with workers.",
        "Read the speed-up together with *busy cores* (worker CPU seconds / wall seconds): when other jobs",
        "share the 2 cores, two workers keep two tasks in flight but get little more CPU than one, and the",
        "wall time cannot drop. On a dedicated machine busy cores approach the worker count.",
    ]
    for r in res["runs"]:
        a = r["stages"].get("analyze", {})
        if a.get("task_seconds_sum"):
            lines.append(f"- analyze on {r['workers']} worker(s): problem tasks sum to {a['task_seconds_sum']} s, "
                         f"the longest takes {a['task_seconds_max']} s (a lower bound on the stage's wall time).")
    for r in res["runs"]:
        for stage, s in r["stages"].items():
            if s.get("error"):
                lines.append(f"- {r['workers']} worker(s), {stage}: not run ({s['error']})")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traits", type=int, default=6)
    ap.add_argument("--cohorts-per-trait", type=int, default=4)
    ap.add_argument("--samples", type=int, default=80)
    ap.add_argument("--probes", type=int, default=6000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mode", choices=["exact", "fast"], default="fast")
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args(argv)

    from genotex_dask.synth.corpus import write_corpus

    work = Path(tempfile.mkdtemp(prefix="bench_scaling_"))
    try:
        corpus = str(work / "corpus")
        made = write_corpus(corpus, traits=a.traits, cohorts_per_trait=a.cohorts_per_trait, samples=a.samples,
                            probes=a.probes, platforms=2, seed=a.seed)
        runs = [run_pipeline(corpus, str(work / f"out{n}"), n, a.mode) for n in (1, 2)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res = {
        "benchmark": "scaling",
        "corpus": {k: made.get(k) for k in ("traits", "cohorts", "usable_cohorts", "problems", "data_bytes_gz")}
        | {"samples": a.samples, "probes": a.probes, "seed": a.seed},
        "mode": a.mode,
        "machine": f"{os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}",
        "runs": runs,
        "speedup": _speedups(*runs),
    }
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scaling.json").write_text(json.dumps(res, indent=2))
    (out / "scaling.md").write_text(to_markdown(res))
    print(to_markdown(res))
    return res


if __name__ == "__main__":
    main()

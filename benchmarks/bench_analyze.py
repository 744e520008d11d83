"""Analyze-stage benchmark, side by side in one run on one synthetic problem set:

* the oracle (plain sequential port of GenoTEX's regress.py, one process, one BLAS thread),
* exact mode on 1 and 2 worker processes (one thread each),
* fast mode on 1 and 2 worker processes.

Reports problems/minute, ratios, peak RSS per worker, exact==oracle agreement, fast-vs-exact GenoTEX gene
metrics and planted-gene recovery.  Writes benchmarks/results/analyze.json and analyze.md.

    .venv/bin/python -m benchmarks.bench_analyze [--genes 3000 --samples 167]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
BATCH = 8  # the genotex_dask.analyze.batch-problems setting (read at run time)


def _corpus(base: Path, n: int, p: int, seed: int = 0) -> tuple[Path, Path, dict]:
    from tests._analysis_fixtures import gene_names, info, make_cohort

    rng = np.random.default_rng(seed)
    genes = gene_names(p, rng)
    planted = {"Alzheimers_Disease": genes[:8], "Hypertension": genes[8:16]}
    ti = {"Alzheimers_Disease": {"related_genes": genes[:5] + genes[200:205], "conditions": ["Age", "Gender"]},
          "Hypertension": {"related_genes": genes[8:13] + genes[210:215],
                           "conditions": ["Age", "Alzheimers_Disease"]}}
    root, out = base / "root", base / "pristine"
    (root / "metadata").mkdir(parents=True)
    (root / "metadata" / "task_info.json").write_text(json.dumps(ti, indent=2))
    for k, (trait, cid) in enumerate([("Alzheimers_Disease", "GSE1001"), ("Hypertension", "GSE2002")]):
        d = out / "preprocess" / trait
        d.mkdir(parents=True)
        (d / "cohort_info.json").write_text(json.dumps({cid: info(n - 3 * k)}))
        make_cohort(rng, genes, n - 3 * k, planted[trait], trait=trait).to_csv(d / f"{cid}.csv")
    return root, out, planted


def _genes(out: Path) -> dict:
    res = {}
    for f in sorted((out / "regress").glob("*/significant_genes_condition_*.json")):
        res[f"{f.parent.name}/{f.stem}"] = json.loads(f.read_text())
    return res


def _prf(pred: list, ref: list) -> tuple[float, float, float]:
    p = len(set(pred) & set(ref)) / len(pred) if pred else 0.0
    r = len(set(pred) & set(ref)) / len(ref) if ref else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _warm_kernel() -> float:
    c0 = _cpu()
    from genotex_dask.analysis import models

    models.lasso_grid(np.eye(4, 6) + 0.1, np.arange(4.0), [1e-3])
    return round(_cpu() - c0, 3)


def _run_engine(root: Path, out: Path, mode: str, workers: int) -> dict:
    import dask
    from distributed import Client, LocalCluster

    from genotex_dask.cluster import EMBEDDED_CONFIG, SINGLE_THREAD_BLAS
    from genotex_dask.pipelines.analyze import run_analyze

    # the embedded LocalCluster's settings (200 ms tick, no statistical profiler), as `genotex-dask` runs it
    with dask.config.set(EMBEDDED_CONFIG):
        lc = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                          env=SINGLE_THREAD_BLAS)
    c = Client(lc)
    try:
        # warm the workers' imports so that the timing compares solving, like the oracle's warm process
        c.run(lambda: __import__("genotex_dask.pipelines.analyze", fromlist=["x"])._single_thread_blas())
        # and load fast mode's compiled LARS kernel from numba's on-disk cache (a one-off ~0.7 CPU-s per
        # worker process, like the imports above; reported separately as jit_load_cpu_seconds)
        jit = c.run(_warm_kernel)
        cpu0 = c.run(_cpu)
        t0 = time.perf_counter()
        summary = run_analyze(str(root), str(out), c, mode=mode, progress=False)
        secs = time.perf_counter() - t0
        cpu1 = c.run(_cpu)
        rss = c.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    finally:  # on a loaded machine worker processes can outlive close()'s default timeout: not a result
        c.close()
        try:
            lc.close(timeout=120)
        except Exception:
            pass
    return {"seconds": secs, "cpu_seconds": sum(cpu1[w] - cpu0[w] for w in cpu1),
            "written": summary["written"], "failed": summary["failed"],
            "peak_rss_mb_per_worker": sorted(round(v, 1) for v in rss.values()),
            "converged": [d.get("converged") for d in summary["done"]],
            "jit_load_cpu_seconds": sorted(jit.values())}


def main() -> None:
    global BATCH
    from genotex_dask import config as gconfig

    BATCH = gconfig.positive_int("analyze.batch-problems")
    ap = argparse.ArgumentParser()
    ap.add_argument("--genes", type=int, default=3000)
    ap.add_argument("--samples", type=int, default=167)
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits

    from benchmarks.oracle import regress_oracle

    warnings.simplefilter("ignore")
    load0 = os.getloadavg()
    base = Path(tempfile.mkdtemp(prefix="bench_analyze_"))
    root, pristine, planted = _corpus(base, args.samples, args.genes)
    outs = {}
    for name in ("oracle", "exact1", "exact2", "fast1", "fast2"):
        outs[name] = base / name
        shutil.copytree(pristine, outs[name])
    import scipy.linalg  # noqa: F401  (load BLAS before pinning it)
    import sklearn.linear_model  # noqa: F401

    threadpool_limits(1)
    t0 = time.perf_counter()
    c0 = _cpu()
    done = regress_oracle.run(str(root), str(outs["oracle"]))
    oracle_s = time.perf_counter() - t0
    oracle_cpu = _cpu() - c0
    n_prob = len(done)
    rows = {"oracle (1 process)": {"seconds": oracle_s, "cpu_seconds": oracle_cpu, "workers": 1,
                                   "peak_rss_mb_per_worker": [round(resource.getrusage(
                                       resource.RUSAGE_SELF).ru_maxrss / 1024, 1)]}}
    for name, mode, w in (("exact1", "exact", 1), ("exact2", "exact", 2), ("fast1", "fast", 1),
                          ("fast2", "fast", 2)):
        r = _run_engine(root, outs[name], mode, w)
        r["workers"] = w
        rows[f"{mode} mode, {w} worker{'s' if w > 1 else ''}"] = r
    for r in rows.values():
        r["problems_per_minute"] = round(60 * n_prob / r["seconds"], 2)
        r["problems_per_cpu_minute"] = round(60 * n_prob / r["cpu_seconds"], 2)
        r["seconds"] = round(r["seconds"], 2)
        r["cpu_seconds"] = round(r["cpu_seconds"], 2)
    ppm = {k: v["problems_per_minute"] for k, v in rows.items()}
    pcm = {k: v["problems_per_cpu_minute"] for k, v in rows.items()}
    oracle_ppm = ppm["oracle (1 process)"]
    ratios = {
        "fast_vs_oracle_per_cpu_second": round(pcm["fast mode, 1 worker"] / pcm["oracle (1 process)"], 2),
        "exact_vs_oracle_per_cpu_second": round(pcm["exact mode, 1 worker"] / pcm["oracle (1 process)"], 2),
        "exact_2_vs_1_workers": round(ppm["exact mode, 2 workers"] / ppm["exact mode, 1 worker"], 2),
        "fast_1_worker_vs_oracle_per_core": round(ppm["fast mode, 1 worker"] / oracle_ppm, 2),
        "fast_2_workers_vs_oracle": round(ppm["fast mode, 2 workers"] / oracle_ppm, 2),
        "exact_1_worker_vs_oracle": round(ppm["exact mode, 1 worker"] / oracle_ppm, 2),
    }
    og, eg, fg = _genes(outs["oracle"]), _genes(outs["exact2"]), _genes(outs["fast2"])
    quality = {}
    for key in og:
        trait = key.split("/")[0]
        o, e, f = (x[key]["significant_genes"]["Variable"] for x in (og, eg, fg))
        pl = planted[trait]
        quality[key] = {
            "exact_equals_oracle": e == o and np.allclose(eg[key]["significant_genes"]["Coefficient"],
                                                          og[key]["significant_genes"]["Coefficient"], rtol=1e-9),
            "n_genes": {"oracle": len(o), "exact": len(e), "fast": len(f)},
            "alpha": {"exact": eg[key]["genotex_dask"]["alpha"], "fast": fg[key]["genotex_dask"]["alpha"]},
            "fast_vs_exact_prf": [round(v, 3) for v in _prf(f, e)],
            "planted_recall_top20": {"exact": _prf(e[:20], pl)[1], "fast": _prf(f[:20], pl)[1]},
            "planted_f1": {"exact": round(_prf(e, pl)[2], 3), "fast": round(_prf(f, pl)[2], 3)},
            "exact_final_hit_max_iter": eg[key]["genotex_dask"].get("final_hit_max_iter"),
            "fast_max_rel_duality_gap": max(fg[key]["genotex_dask"]["cv_max_rel_duality_gap"],
                                            fg[key]["genotex_dask"]["final_rel_duality_gap"]),
        }
    result = {"setup": {"problems": n_prob, "samples": args.samples, "genes": args.genes, "cohorts": 2,
                        "cpu_count": os.cpu_count(), "load_average_at_start": load0,
                        "load_average_at_end": os.getloadavg()},
              "runs": rows, "ratios": ratios, "targets": {"exact_2_vs_1_workers": 1.7,
                                                           "fast_1_worker_vs_oracle_per_core": 20},
              "quality": quality}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "analyze.json").write_text(json.dumps(result, indent=2, default=float))
    lines = [f"# Analyze benchmark ({n_prob} problems, 2 cohorts of ~{args.samples} samples x {args.genes} genes)",
             "", "| run | wall s | CPU s | problems/min (wall) | problems/CPU-min | peak RSS per worker (MB) |",
             "|---|---|---|---|---|---|"]
    for k, v in rows.items():
        lines.append(f"| {k} | {v['seconds']} | {v['cpu_seconds']} | {v['problems_per_minute']} | "
                     f"{v['problems_per_cpu_minute']} | {v['peak_rss_mb_per_worker']} |")
    lines += ["", "| ratio | value | target |", "|---|---|---|"]
    for k, v in ratios.items():
        lines.append(f"| {k} | {v} | {result['targets'].get(k, '')} |")
    lines += ["", "| problem | exact==oracle | genes o/e/f | alpha e/f | fast vs exact P/R/F1 | planted F1 e/f |"
              " fast max rel gap |", "|---|---|---|---|---|---|---|"]
    for k, q in quality.items():
        n = q["n_genes"]
        lines.append(f"| {k} | {q['exact_equals_oracle']} | {n['oracle']}/{n['exact']}/{n['fast']} | "
                     f"{q['alpha']['exact']}/{q['alpha']['fast']} | {q['fast_vs_exact_prf']} | "
                     f"{q['planted_f1']['exact']}/{q['planted_f1']['fast']} | {q['fast_max_rel_duality_gap']:.1e} |")
    lines += ["", f"Load average at start {load0}, at the end {os.getloadavg()} on {os.cpu_count()} cores "
              "(shared machine: wall-clock ratios move with other users' load; CPU-time ratios much less).",
              "Engine runs use the embedded LocalCluster's settings (genotex_dask.cluster.EMBEDDED_CONFIG); fast mode "
              f"submits one task per trait cohort batch (up to {BATCH} problems)."]
    (RESULTS / "analyze.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

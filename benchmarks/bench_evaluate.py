"""Evaluation of preprocessing outputs: the oracle's per-column comparison vs ours, in-process and on Dask.

The preprocessing comparison is the only heavy part of evaluation (it reads whole gene-data CSVs; the rest
reads JSON files and CSV headers).  Side by side in one run, on benchmark-sized gene-data files
(19,000 genes x 167 samples, ~5% NaN, a perturbed prediction per reference file):

* oracle: benchmarks/oracle/evaluation_oracle.csv_similarity (read both CSVs, per-column Pearson loop);
* ours, in-process: genotex_dask.evaluation.evaluate.compare_preprocess_file, one file after another;
* ours, Dask: the same function as one task per file on a LocalCluster of 1 and of 2 single-threaded workers.

Peak memory: this process's max RSS (in-process runs) and each worker's max RSS (Dask runs).

    .venv/bin/python -m benchmarks.bench_evaluate [--files 4 --genes 19000 --samples 167]

Writes benchmarks/results/evaluate.json and evaluate.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"


def _peak_rss_mib() -> float:
    """This process's own peak RSS (VmHWM; getrusage's maxrss survives exec, so a spawned worker would
    report its parent's peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _worker_peak_rss_mib() -> float:
    from benchmarks.bench_evaluate import _peak_rss_mib as peak

    return peak()


def _write_files(root: Path, n_files: int, genes: int, samples: int, seed: int) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    names = [f"GENE{i}" for i in range(genes)]
    pairs = []
    for k in range(n_files):
        cols = [f"GSM{k}_{j}" for j in range(samples)]
        ref = pd.DataFrame(rng.normal(8, 2, size=(genes, samples)).astype(np.float32), index=names, columns=cols)
        ref = ref.mask(rng.random(ref.shape) < 0.05)
        pred = ref.iloc[: genes - genes // 50, : samples - 3] + rng.normal(0, 0.3, size=(genes - genes // 50,
                                                                                    samples - 3))
        r, p = root / f"ref_{k}.csv", root / f"pred_{k}.csv"
        ref.to_csv(r, float_format="%.5f")
        pred.to_csv(p, float_format="%.5f")
        pairs.append((str(p), str(r)))
    return pairs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--genes", type=int, default=19000)
    ap.add_argument("--samples", type=int, default=167)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

    from distributed import Client, LocalCluster

    from benchmarks.oracle.evaluation_oracle import csv_similarity
    from genotex_dask.evaluation.evaluate import compare_preprocess_file

    out: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                 "params": vars(a), "runs": {}}
    with tempfile.TemporaryDirectory(prefix="bench_eval_") as tmp:
        pairs = _write_files(Path(tmp), a.files, a.genes, a.samples, a.seed)
        mb = sum(os.path.getsize(p) + os.path.getsize(r) for p, r in pairs) / 1e6
        out["input_mb"] = round(mb, 1)

        t = time.perf_counter()
        oracle = [csv_similarity(Path(p).read_text(), Path(r).read_text(), transpose=True) for p, r in pairs]
        out["runs"]["oracle"] = {"seconds": time.perf_counter() - t, "peak_rss_mib": _peak_rss_mib()}

        t = time.perf_counter()
        ours = [compare_preprocess_file(p, r, "gene") for p, r in pairs]
        out["runs"]["ours_in_process"] = {"seconds": time.perf_counter() - t, "peak_rss_mib": _peak_rss_mib()}
        out["max_abs_diff_csc"] = max(abs(o["composite_similarity_correlation"] -
                                          q["composite_similarity_correlation"]) for o, q in zip(ours, oracle))

        for workers in (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                              host="127.0.0.1") as cluster, Client(cluster) as client:
                client.run(lambda: __import__("genotex_dask.evaluation.evaluate"))
                t = time.perf_counter()
                futs = [client.submit(compare_preprocess_file, p, r, "gene", pure=False) for p, r in pairs]
                client.gather(futs)
                secs = time.perf_counter() - t
                rss = client.run(_worker_peak_rss_mib)
                out["runs"][f"ours_dask_{workers}w"] = {"seconds": secs, "peak_rss_mib_per_worker": max(rss.values())}

    base = out["runs"]["oracle"]["seconds"]
    for r in out["runs"].values():
        r["seconds"] = round(r["seconds"], 3)
        r["files_per_min"] = round(60 * a.files / r["seconds"], 1)
        r["speedup_vs_oracle"] = round(base / r["seconds"], 2)
        r["mb_per_s"] = round(out["input_mb"] / r["seconds"], 1)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "evaluate.json").write_text(json.dumps(out, indent=2))
    lines = ["# Evaluation benchmark: preprocessing-file comparison", "",
             f"{a.files} reference gene-data files of {a.genes} genes x {a.samples} samples "
             f"({out['input_mb']} MB of CSV with the predictions), {out['machine']['cpus']} CPUs.", "",
             "| run | seconds | files/min | MB/s | x oracle | peak RSS MiB |", "|---|---|---|---|---|---|"]
    for name, r in out["runs"].items():
        rss = r.get("peak_rss_mib", r.get("peak_rss_mib_per_worker"))
        lines.append(f"| {name} | {r['seconds']} | {r['files_per_min']} | {r['mb_per_s']} | "
                     f"{r['speedup_vs_oracle']} | {rss:.0f} |")
    lines += ["", f"max |CSC ours - CSC oracle| = {out['max_abs_diff_csc']:.2e}"]
    (RESULTS / "evaluate.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

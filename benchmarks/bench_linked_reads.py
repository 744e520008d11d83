"""What the analysis pays when the linked CSVs are not in the page cache, side by side in one run.

``preprocess.direct-writes`` writes each cohort's linked CSV past the page cache (issue 12: filling fresh
page-cache pages cost the preprocess task up to ~60 ms per 26 MB file on this VM), so the analyze stage reads it
from disk.  This benchmark runs the pipeline once on a stratified 1/k sample of the GenoTEX-scale corpus
(default 1/16, 2 workers), then the analyze stage alone again and again on those outputs, alternating two states
of the linked files: **cold** (dropped from the page cache with ``posix_fadvise(DONTNEED)``: as an O_DIRECT write
leaves them) and **warm** (read once just before: as a buffered write leaves them).  Pairs alternate their order,
so drift on this shared machine falls on both.  Reported per run: analyze wall, worker CPU and worker system CPU,
and the cohort loads (each load reads one linked file).

    .venv/bin/python -m benchmarks.bench_linked_reads [--fraction 16] [--pairs 4] [--work DIR]

Writes benchmarks/results/linked_reads.json and .md.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
from pathlib import Path

from benchmarks.bench_fullscale import RESULTS, _corpus, run_pipeline


def _linked_files(out: Path) -> list[str]:
    """OUT/preprocess/<Trait>/<cohort>.csv: the linked CSVs (gene_data and clinical_data are in subfolders)."""
    return sorted(glob.glob(str(out / "preprocess" / "*" / "*.csv")))


def make_cold(paths: list[str]) -> None:
    """Drop the files' pages from the page cache (written back first: DONTNEED leaves dirty pages in it)."""
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fdatasync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def make_warm(paths: list[str]) -> None:
    """Read the files once, so the analysis finds them in the page cache."""
    for p in paths:
        with open(p, "rb") as f:
            while f.read(1 << 24):
                pass


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fraction", type=int, default=16, help="the 1/k sample (default 16)")
    ap.add_argument("--pairs", type=int, default=4, help="cold/warm pairs of analyze runs (default 4)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--corpora", default=str(RESULTS / "tmp"))
    ap.add_argument("--work", help="where the run's store and outputs go (default: --corpora)")
    a = ap.parse_args(argv)
    corpus, corp = _corpus(Path(a.corpora), a.fraction)
    out = Path(a.work or a.corpora) / f"out_linked_reads_1of{a.fraction}_w{a.workers}"
    full = run_pipeline(corpus, out, a.workers)
    linked = _linked_files(out)
    runs: list[dict] = []
    for i in range(a.pairs):
        order = (("cold", make_cold), ("warm", make_warm))
        for state, prepare in order if i % 2 == 0 else order[::-1]:
            prepare(linked)
            st = run_pipeline(corpus, out, a.workers, only=("analyze",))["stages"]["analyze"]
            runs.append({"pair": i, "linked": state, "wall_s": st["wall_s"], "worker_cpu_s": st["worker_cpu_s"],
                         "worker_sys_cpu_s": st.get("worker_sys_cpu_s"), "load_avg": os.getloadavg()[0],
                         "cohort_loads": sum(c["loads"] for c in st.get("cohort_cache_per_worker", []))})
            print(runs[-1], flush=True)
    diff = {k: [next(r[k] for r in runs if r["pair"] == i and r["linked"] == "cold")
                - next(r[k] for r in runs if r["pair"] == i and r["linked"] == "warm") for i in range(a.pairs)]
            for k in ("wall_s", "worker_cpu_s", "worker_sys_cpu_s")}
    res = {"benchmark": "linked_reads", "fraction": a.fraction, "workers": a.workers, "corpus": corp,
           "linked_files": len(linked), "linked_bytes": sum(os.path.getsize(p) for p in linked),
           "full_run": {s: {"wall_s": v["wall_s"], "worker_cpu_s": v["worker_cpu_s"]}
                        for s, v in full["stages"].items()},
           "runs": runs, "cold_minus_warm": {k: [round(x, 2) for x in v] for k, v in diff.items()},
           "cold_minus_warm_median": {k: round(statistics.median(v), 2) for k, v in diff.items()}}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "linked_reads.json").write_text(json.dumps(res, indent=1) + "\n")
    (RESULTS / "linked_reads.md").write_text(to_markdown(res))
    print(to_markdown(res))
    return res


def to_markdown(res: dict) -> str:
    rows = ["| pair | linked CSVs | analyze wall s | worker CPU s | worker system CPU s | cohort loads | load |",
            "|---:|---|---:|---:|---:|---:|---:|"]
    rows += [f"| {r['pair']} | {r['linked']} | {r['wall_s']} | {r['worker_cpu_s']} | {r['worker_sys_cpu_s']} | "
             f"{r['cohort_loads']} | {r['load_avg']:.1f} |" for r in res["runs"]]
    med, d = res["cold_minus_warm_median"], res["cold_minus_warm"]
    return "\n".join([
        "# Analyze with the linked CSVs cold (read from disk) or warm (in the page cache)", "",
        f"1/{res['fraction']} sample of the GenoTEX-scale corpus, {res['workers']}-worker LocalCluster, the "
        f"analyze stage rerun on one preprocess run's outputs: {res['linked_files']} linked CSVs, "
        f"{res['linked_bytes'] / 1e6:.0f} MB. Cold: dropped from the page cache (as an O_DIRECT write leaves them); "
        "warm: read once just before. Pairs alternate their order.", "", *rows, "",
        f"Cold minus warm per pair: wall {d['wall_s']} s, worker CPU {d['worker_cpu_s']} s, worker system CPU "
        f"{d['worker_sys_cpu_s']} s; medians {med['wall_s']}, {med['worker_cpu_s']} and "
        f"{med['worker_sys_cpu_s']} s.", ""])


if __name__ == "__main__":
    main()

"""Synthetic corpus writer: time, size and peak memory for the demo corpus and one full-size GEO cohort,
plus the plan's estimate of the gz volume at GenoTEX's full scale.

    .venv/bin/python -m benchmarks.bench_synth [--skip-full-soft]

Each measurement runs in a fresh subprocess so that its peak RSS (ru_maxrss) is its own.
Writes benchmarks/results/synth.json and synth.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from genotex_dask.synth.corpus import plan_corpus

RESULTS = Path(__file__).parent / "results"

_CHILD = r"""
import json, resource, sys, time
from genotex_dask.synth.corpus import write_corpus
kw = json.loads(sys.argv[2])
t = time.perf_counter()
r = write_corpus(sys.argv[1], **kw)
r["wall_s"] = time.perf_counter() - t
r["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(r))
"""

CASES = {
    "demo corpus (3 traits x 3 cohorts, 40 samples, 1,500 probes)":
        dict(traits=3, cohorts_per_trait=3, samples=40, probes=1500, platforms=2),
    "one GEO cohort 54,675 probes x 167 samples (10-row sample tables)":
        dict(traits=1, cohorts_per_trait=1, samples=167, probes=54675, platforms=1, vary_samples=False),
    "one GEO cohort 54,675 probes x 167 samples (full sample tables in the SOFT)":
        dict(traits=1, cohorts_per_trait=1, samples=167, probes=54675, platforms=1, vary_samples=False,
             full_sample_tables=True),
}


def run(case_kw: dict) -> dict:
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run([sys.executable, "-c", _CHILD, f"{d}/corpus", json.dumps(case_kw)],
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str]) -> None:
    res = {"cases": {}, "full_scale_estimate": {}}
    for name, kw in CASES.items():
        if "--skip-full-soft" in argv and kw.get("full_sample_tables"):
            continue
        r = run(kw)
        res["cases"][name] = {"params": kw, "wall_s": round(r["wall_s"], 2), "data_bytes_gz": r["data_bytes_gz"],
                              "cohorts": r["cohorts"], "peak_rss_mb": round(r["peak_rss_mb"], 1),
                              "mb_gz_per_s": round(r["data_bytes_gz"] / 1e6 / r["wall_s"], 2)}
        print(name, res["cases"][name], flush=True)
    plan = plan_corpus(traits=132, cohorts_per_trait=7, samples=167, probes=54675, platforms=6)
    res["full_scale_estimate"] = {
        "params": plan["params"], "cohorts": len(plan["cohorts"]),
        "geo_cohorts": sum(c["kind"] == "GEO" for c in plan["cohorts"]),
        "tcga_cohorts": sum(c["kind"] == "TCGA" for c in plan["cohorts"]),
        "estimated_gb_gz": round(plan["estimated_gz_bytes"] / 1e9, 1),
        "estimated_gb_gz_full_soft": round(plan["estimated_gz_bytes_full_soft"] / 1e9, 1)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "synth.json").write_text(json.dumps(res, indent=2) + "\n")
    lines = ["# Synthetic corpus writer", "", "| case | wall s | gz MB | MB gz/s | peak RSS MB |", "|---|---|---|---|---|"]
    for name, r in res["cases"].items():
        lines.append(f"| {name} | {r['wall_s']} | {r['data_bytes_gz'] / 1e6:.1f} | {r['mb_gz_per_s']} | "
                     f"{r['peak_rss_mb']} |")
    e = res["full_scale_estimate"]
    lines += ["", f"Full-scale plan ({e['cohorts']} cohorts: {e['geo_cohorts']} GEO + {e['tcga_cohorts']} TCGA, "
              f"mean 167 samples, 54,675 probes): about {e['estimated_gb_gz']} GB of gz as written by default "
              f"(10-row sample tables in the SOFT), {e['estimated_gb_gz_full_soft']} GB with full sample tables."]
    (RESULTS / "synth.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv)

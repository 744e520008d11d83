"""Real GSE781 (renal clear cell carcinoma vs adjacent normal kidney, 17 samples): the unconditional problem
in exact mode (the reference's computation) and fast mode (the same objective solved exactly), side by side.

Preprocesses tests/data/genotex_gse781 with the shipped reviewed spec (compat="genotex", as the benchmark's
reference answers are made), runs both modes and the oracle, and writes benchmarks/results/gse781_genes.md
and .json.

    .venv/bin/python -m benchmarks.gse781_genes
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
ROOT = REPO / "tests" / "data" / "genotex_gse781"
SPEC = REPO / "genotex_dask" / "specs" / "Kidney_Clear_Cell_Carcinoma.yaml"
TRAIT = "Kidney_Clear_Cell_Carcinoma"
RESULTS = Path(__file__).parent / "results"


def main() -> None:
    from distributed import Client, LocalCluster
    from scipy import stats
    from threadpoolctl import threadpool_limits

    from benchmarks.oracle import regress_oracle
    from genotex_dask.cluster import SINGLE_THREAD_BLAS
    from genotex_dask.pipelines.analyze import run_analyze
    from genotex_dask.pipelines.preprocess import run_preprocess

    base = Path(tempfile.mkdtemp(prefix="gse781_"))
    specs = base / "specs"
    specs.mkdir()
    shutil.copy(SPEC, specs / SPEC.name)
    outs = {m: base / m for m in ("exact", "fast", "oracle")}
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                      env=SINGLE_THREAD_BLAS) as lc, Client(lc) as c:
        run_preprocess(str(ROOT), str(specs), str(outs["exact"]), c, compat="genotex", progress=False)
        for m in ("fast", "oracle"):
            shutil.copytree(outs["exact"] / "preprocess", outs[m] / "preprocess")
        runs = {m: run_analyze(str(ROOT), str(outs[m]), c, mode=m, progress=False) for m in ("exact", "fast")}
    import scipy.linalg  # noqa: F401
    import sklearn.linear_model  # noqa: F401

    threadpool_limits(1)
    regress_oracle.run(str(ROOT), str(outs["oracle"]))

    name = "significant_genes_condition_None.json"
    res = {m: json.loads((outs[m] / "regress" / TRAIT / name).read_text()) for m in outs}
    linked = pd.read_csv(outs["exact"] / "preprocess" / TRAIT / "GSE781.csv", index_col=0).astype(float)
    y = linked[TRAIT].to_numpy()
    genes = linked.drop(columns=[c for c in (TRAIT, "Age", "Gender") if c in linked.columns])
    t = stats.ttest_ind(genes[y == 1], genes[y == 0], axis=0).statistic
    t_rank = pd.Series(np.abs(t), index=genes.columns).rank(ascending=False, method="min")
    lg = np.log2(genes.clip(lower=1.0))  # MAS5-scale values: the t-test is also reported on log2
    t_log = stats.ttest_ind(lg[y == 1], lg[y == 0], axis=0).statistic
    t_rank_log = pd.Series(np.abs(t_log), index=genes.columns).rank(ascending=False, method="min")
    related = json.loads((ROOT / "metadata" / "task_info.json").read_text())[TRAIT]["related_genes"]

    def summary(m: str) -> dict:
        sig = res[m]["significant_genes"]
        v = sig["Variable"]
        eng = res[m].get("genotex_dask", {})
        return {"n_genes": len(v), "share_starting_with_A": round(sum(g.startswith("A") for g in v) / max(len(v), 1), 3),
                "related_found": [g for g in v if g in related],
                "alpha": eng.get("alpha"), "cv_performance": res[m]["cv_performance"],
                "convergence": {k: eng.get(k) for k in ("final_sklearn_dual_gap", "final_sklearn_n_iter",
                                                        "final_hit_max_iter", "final_rel_duality_gap",
                                                        "cv_max_rel_duality_gap", "converged")
                                if k in eng},
                "top_t_test_rank_of_listed": {g: int(t_rank[g]) for g in v[:10]}}

    out = {"samples": int(len(y)), "genes": int(genes.shape[1]), "tumour": int((y == 1).sum()),
           "normal": int((y == 0).sum()),
           "exact_equals_oracle": res["exact"]["significant_genes"] == res["oracle"]["significant_genes"],
           "t_test_rank_of_related": {g: int(t_rank[g]) for g in related if g in t_rank.index},
           "t_test_rank_of_related_log2": {g: int(t_rank_log[g]) for g in related if g in t_rank.index},
           "exact": summary("exact"), "fast": summary("fast"),
           "run_summaries": {m: {k: runs[m][k] for k in ("written", "failed", "seconds")} for m in runs}}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "gse781_genes.json").write_text(json.dumps(out, indent=2, default=float))
    e, f = res["exact"]["significant_genes"], res["fast"]["significant_genes"]
    lines = [f"# GSE781 ({out['samples']} samples: {out['tumour']} tumour / {out['normal']} normal, "
             f"{out['genes']} genes), unconditional problem", "",
             f"exact mode == oracle (plain port of the reference): **{out['exact_equals_oracle']}**", "",
             "| | exact mode (reference computation) | fast mode (same objective, solved exactly) |", "|---|---|---|"]
    for k in ("n_genes", "share_starting_with_A", "alpha", "related_found", "convergence"):
        lines.append(f"| {k} | {out['exact'][k]} | {out['fast'][k]} |")
    lines += ["", f"t-test rank (|t|, of {out['genes']}) of the known related genes: {out['t_test_rank_of_related']}",
              "", f"same on log2 values: {out['t_test_rank_of_related_log2']}",
              "", "| # | exact gene | coef | t-rank | fast gene | coef | t-rank |", "|---|---|---|---|---|---|---|"]
    for i in range(max(len(e["Variable"]), len(f["Variable"]))):
        cells = []
        for sig in (e, f):
            if i < len(sig["Variable"]):
                g = sig["Variable"][i]
                cells += [g, f"{sig['Coefficient'][i]:.4g}", str(int(t_rank[g]))]
            else:
                cells += ["", "", ""]
        lines.append(f"| {i + 1} | " + " | ".join(cells) + " |")
    (RESULTS / "gse781_genes.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:16]))
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

"""The analyze stage end to end on a small GenoTEX-layout corpus: exact mode equals the reference oracle
(unconditional, Age/Gender, two-step and an LMM batch-effect cohort), fast mode is converged, order
invariant and recovers planted genes at least as well; summaries, failure isolation and resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster
from threadpoolctl import threadpool_limits

from benchmarks.oracle import regress_oracle
from genotex_dask.pipelines import analyze
from tests._analysis_fixtures import write_corpus

PROBLEMS = ["Asthma/significant_genes_condition_None", "Asthma/significant_genes_condition_Age",
            "Asthma/significant_genes_condition_Gender", "Asthma/significant_genes_condition_Obesity",
            "Lupus/significant_genes_condition_None", "Obesity/significant_genes_condition_None",
            "Obesity/significant_genes_condition_Age"]


@pytest.fixture(scope="module")
def client():
    # threads in this process: one BLAS thread for the oracle and the engine alike (the LMM's eigenvector
    # signs, which sparse_lmm's fit depends on, follow the LAPACK threading)
    with threadpool_limits(1):
        with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as lc:
            with Client(lc) as c:
                yield c


@pytest.fixture(scope="module")
def runs(tmp_path_factory, client):
    base = tmp_path_factory.mktemp("analyze")
    root, pristine = base / "root", base / "pristine"
    planted = write_corpus(str(root), str(pristine), n=60, p=150, lmm=True, p_lmm=120)
    outs = {}
    for name in ("oracle", "exact", "fast"):
        outs[name] = base / name
        shutil.copytree(pristine, outs[name])
    with threadpool_limits(1):
        regress_oracle.run(str(root), str(outs["oracle"]))
    summaries = {m: analyze.run_analyze(str(root), str(outs[m]), client, mode=m, progress=False)
                 for m in ("exact", "fast")}
    return {"root": root, "pristine": pristine, "outs": outs, "summaries": summaries, "planted": planted}


def _load(out: Path, key: str) -> dict:
    return json.loads((out / "regress" / f"{key}.json").read_text())


def _close(a, b, rel=1e-9):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], rel) for k in a)
    return a == pytest.approx(b, rel=rel, abs=1e-12, nan_ok=True)


def test_exact_mode_equals_reference_oracle(runs):
    for key in PROBLEMS:
        ref = _load(runs["outs"]["oracle"], key)
        got = _load(runs["outs"]["exact"], key)
        assert got["significant_genes"]["Variable"] == ref["significant_genes"]["Variable"], key
        assert np.allclose(got["significant_genes"]["Coefficient"], ref["significant_genes"]["Coefficient"],
                           rtol=1e-9, atol=0), key
        assert list(got["significant_genes"]) == list(ref["significant_genes"])
        assert _close(got["cv_performance"], ref["cv_performance"]), key
    models_used = {_load(runs["outs"]["exact"], k)["genotex_dask"]["model"] for k in PROBLEMS}
    assert models_used == {"lasso", "lmm"}


def test_run_summary_lists_everything(runs):
    s = runs["summaries"]["exact"]
    assert s["written"] == len(PROBLEMS) and s["failed"] == 0 and s["problems"] == len(PROBLEMS) + 2
    assert sorted(d["problem"] for d in s["done"]) == sorted(PROBLEMS)
    reasons = {d["problem"]: d["reason"] for d in s["no_cohort_problems"]}
    assert set(reasons) == {"Ghost/significant_genes_condition_None", "Ghost/significant_genes_condition_Gender"}
    assert all("no usable cohort" in r for r in reasons.values())
    assert not (runs["outs"]["exact"] / "regress" / "Ghost").exists()
    # the reference's eigen-gap rule cannot fire on cohorts of at most 200 samples: flagged
    assert "Lupus/significant_genes_condition_None" not in s["batch_rule_could_not_fire"]
    assert "Asthma/significant_genes_condition_None" in s["batch_rule_could_not_fire"]
    on_disk = json.loads((runs["outs"]["exact"] / "regress" / "run_summary.json").read_text())
    assert on_disk["written"] == s["written"]
    two = _load(runs["outs"]["exact"], "Asthma/significant_genes_condition_Obesity")["genotex_dask"]
    assert two["condition_cohort"] == "GSE200" and two["regressors"] and two["category"] == "two_step"
    # GenoTEX's eval reads only significant_genes.Variable: our extras sit under their own key
    assert set(_load(runs["outs"]["fast"], PROBLEMS[0])) == {"significant_genes", "cv_performance", "genotex_dask"}


def test_fast_mode_converged_and_recovers_planted_genes(runs):
    for key in PROBLEMS:
        eng = _load(runs["outs"]["fast"], key)["genotex_dask"]
        assert eng["converged"], (key, eng)
        assert eng["final_kkt_violation"] < 1e-4
    for key in PROBLEMS:
        trait = key.split("/")[0]
        planted = set(runs["planted"][trait])
        fast = _load(runs["outs"]["fast"], key)["significant_genes"]["Variable"]
        exact = _load(runs["outs"]["exact"], key)["significant_genes"]["Variable"]
        top = max(len(planted), 1)
        assert len(planted & set(fast[:top])) >= len(planted & set(exact[:top])), key


def test_fast_mode_is_invariant_to_gene_column_order(runs, client, tmp_path):
    out = tmp_path / "permuted"
    shutil.copytree(runs["pristine"], out)
    rng = np.random.default_rng(11)
    for csv in (out / "preprocess").glob("*/*.csv"):
        df = pd.read_csv(csv, index_col=0)
        head = [c for c in df.columns if c in ("Asthma", "Obesity", "Lupus", "Ghost", "Age", "Gender")]
        genes = [c for c in df.columns if c not in head]
        df[list(rng.permutation(genes)) + head].to_csv(csv)
    s = analyze.run_analyze(str(runs["root"]), str(out), client, mode="fast", progress=False)
    assert s["written"] == len(PROBLEMS)
    for key in PROBLEMS:
        a = _load(runs["outs"]["fast"], key)["significant_genes"]
        b = _load(out, key)["significant_genes"]
        assert a["Variable"] == b["Variable"], key
        assert np.allclose(a["Coefficient"], b["Coefficient"], rtol=1e-7, atol=1e-12)


def test_failure_isolation_and_resume(runs, client, tmp_path):
    out = tmp_path / "broken"
    shutil.copytree(runs["outs"]["fast"], out)
    again = analyze.run_analyze(str(runs["root"]), str(out), client, mode="fast", progress=False)
    assert again["written"] == 0 and again["skipped_up_to_date"] == len(PROBLEMS)
    # a broken Obesity cohort: its two problems and the two-step problem that reads it fail; the rest is skipped
    bad = out / "preprocess" / "Obesity" / "GSE200.csv"
    lines = bad.read_text().splitlines()
    lines[3] = lines[3].split(",", 1)[0] + ",oops" + lines[3].split(",", 1)[1][len(lines[3].split(",")[1]):]
    bad.write_text("\n".join(lines) + "\n")
    s = analyze.run_analyze(str(runs["root"]), str(out), client, mode="fast", progress=False)
    failed = {e["problem"]: e for e in s["errors"]}
    assert set(failed) == {"Obesity/significant_genes_condition_None", "Obesity/significant_genes_condition_Age",
                           "Asthma/significant_genes_condition_Obesity"}
    assert all("GSE200.csv" in e["error"] and "Traceback" in e["traceback"] for e in failed.values())
    assert s["skipped_up_to_date"] == len(PROBLEMS) - 3 and s["written"] == 0
    # repaired input: exactly the three stale problems are recomputed; changing the mode recomputes all
    shutil.copy(runs["pristine"] / "preprocess" / "Obesity" / "GSE200.csv", bad)
    s = analyze.run_analyze(str(runs["root"]), str(out), client, mode="fast", progress=False)
    assert s["written"] == 3 and s["failed"] == 0
    assert not [p for p in (out / "regress").rglob("*") if ".genotex-tmp-" in p.name]


def test_cohorts_are_parsed_once_per_worker(runs, client, tmp_path):
    out = tmp_path / "cache"
    shutil.copytree(runs["pristine"], out)
    analyze.clear_cache()  # the in-process worker shares this module's cache
    s = analyze.run_analyze(str(runs["root"]), str(out), client, mode="fast", progress=False)
    stats = analyze.cache_stats()
    uses = s["written"] + 1  # every problem reads its trait cohort, the two-step one also the condition's
    assert s["written"] == len(PROBLEMS)
    assert stats["loads"] == 3 and stats["hits"] == uses - 3  # GSE100, GSE200, GSE400 parsed once each


def test_fast_batches_group_small_cohorts_and_split_big_ones():
    def spec(url, size, i):
        return {"key": f"{url}/{i}", "trait_url": url, "trait_fp": json.dumps({"size": size, "mtime": 0})}

    small = [spec("small.csv", 8 << 20, i) for i in range(11)]
    big = [spec("big.csv", 140 << 20, i) for i in range(3)]
    batches = analyze._batches(small + big)
    sizes = sorted(len(b) for b in batches)
    assert sizes == [1, 1, 1, 5, 6]  # 48 MB budget: six 8 MB problems per task; a 140 MB cohort's one by one
    assert all(len({s["trait_url"] for s in b}) == 1 for b in batches)
    assert sorted(s["key"] for b in batches for s in b) == sorted(s["key"] for s in small + big)


@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_failing_problems_are_results_not_worker_errors(runs, client, tmp_path, caplog, mode):
    """A problem that fails is recorded with its traceback in the summary; no worker logs "Compute Failed"."""
    out = tmp_path / "broken"
    shutil.copytree(runs["outs"][mode], out)
    bad = out / "preprocess" / "Obesity" / "GSE200.csv"
    bad.write_text(bad.read_text().replace("\n", "\nnot,a,row\n", 1))
    for f in (out / "regress" / "Obesity").glob("*.json"):
        f.unlink()  # these two problems run again on the broken input; the others are up to date
    with caplog.at_level("ERROR"):
        s = analyze.run_analyze(str(runs["root"]), str(out), client, mode=mode, progress=False)
    assert {e["problem"] for e in s["errors"]} >= {"Obesity/significant_genes_condition_None",
                                                   "Obesity/significant_genes_condition_Age"}
    assert all("GSE200.csv" in e["error"] and "Traceback" in e["traceback"] for e in s["errors"])
    assert "Compute Failed" not in caplog.text

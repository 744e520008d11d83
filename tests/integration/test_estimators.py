"""Bring your own method on a real scheduler with two worker processes: ElasticNet through dask-ml's
GridSearchCV (problems x folds x parameters as cluster tasks), written in GenoTEX's layout under
OUT/methods/elasticnet and scored by ``evaluate`` against the planted truth beside a Lasso run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.linear_model import ElasticNet

from genotex_dask import results
from genotex_dask.evaluation.metrics import problem_category
from genotex_dask.pipelines.analyze import run_analyze
from tests._analysis_fixtures import write_corpus

pytestmark = pytest.mark.integration

PROBLEMS = [("Asthma", None), ("Asthma", "Age"), ("Asthma", "Gender"), ("Asthma", "Obesity"),
            ("Obesity", None), ("Obesity", "Age")]
GRID = {"alpha": [0.02, 0.05, 0.1, 0.2], "l1_ratio": [0.5, 0.9]}


def _truth(path: Path, planted: dict) -> str:
    probs = [{"trait": t, "condition": c, "category": problem_category(c), "planted_genes": planted[t]}
             for t, c in PROBLEMS]
    path.write_text(json.dumps({"seed": 0, "params": {}, "cohorts": {}, "trait_genes": planted, "problems": probs}))
    return str(path)


def test_elasticnet_through_dask_ml_scored_beside_lasso(dask_cluster, tmp_path):
    """The README's example, run as written (paths substituted) after a Lasso run of the same corpus."""
    from genotex_dask import api
    from tests._readme import run_block

    root, out = tmp_path / "root", tmp_path / "out"
    planted = write_corpus(str(root), str(out), n=60, p=120)
    _truth(root / "truth.json", planted)
    with dask_cluster.client(timeout=30) as client:
        lasso = run_analyze(str(root), str(out), client, mode="fast", progress=False)
        run_block("### Bring your own method", {"corpus": str(root), "out": str(out)},
                  {"gd": api, "client": client})
        mout = out / "methods" / "elasticnet"
        enet = json.loads((mout / "regress" / "run_summary.json").read_text())
        # the fits ran on both worker processes (dask-ml's graph, one task per candidate x fold)
        per_worker = client.run(lambda dask_worker: sum(1 for t in dask_worker.state.log if "fit" in str(t[0])))
        # a rerun with the same estimator and grid skips every problem; another grid redoes them
        again = api.analyze(str(root), str(out), estimator=ElasticNet(max_iter=20000), param_grid=GRID,
                            client=client, progress=False)
        other = api.analyze(str(root), str(out), estimator=ElasticNet(max_iter=20000), param_grid={"alpha": [0.1]},
                            method="enet_one", client=client, progress=False)
    assert lasso["failed"] == 0 and enet["failed"] == 0 and enet["written"] == len(PROBLEMS)
    assert len(per_worker) == 2 and all(n > 0 for n in per_worker.values()), per_worker
    assert (again["written"], again["skipped_up_to_date"]) == (0, len(PROBLEMS))
    assert (other["written"], other["skipped_up_to_date"]) == (len(PROBLEMS), 0)
    for t, c in PROBLEMS:
        res = json.loads((mout / "regress" / t / f"significant_genes_condition_{c}.json").read_text())
        rec = res["genotex_dask"]
        assert rec["method"] == "elasticnet" and set(rec["best_params"]) == set(GRID)
        assert rec["n_candidates"] == 8 and rec["cv_folds"] == 5
        coefs = res["significant_genes"]["Coefficient"]
        assert all(c != 0 for c in coefs) and [abs(c) for c in coefs] == sorted(map(abs, coefs), reverse=True)
    scores = {}
    for name in ("lasso", "elasticnet"):
        m = json.loads((out / f"report_{name}" / "metrics.json").read_text())["planted_truth"]
        scores[name] = m["categorized"]["overall"]
        assert len(m["per_problem"]) == len(PROBLEMS)
    print("planted-truth overall:", json.dumps(scores))
    # both methods find the planted genes on this corpus; ElasticNet's grouping keeps more of them
    assert scores["elasticnet"]["recall"] >= 60 and scores["lasso"]["recall"] >= 40
    assert scores["elasticnet"]["f1"] > 20
    # the method's results table loads like any run's
    df = results.significant_genes(str(mout))
    assert set(df["method"]) == {"elasticnet"} and set(df["trait"]) == {"Asthma", "Obesity"}

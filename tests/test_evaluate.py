"""run_evaluate on a hand-built GenoTEX-layout run: against itself, against a perturbed copy, against a truth."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from _eval_run import SIGNIFICANT, info_record, write_run, write_significant

from genotex_dask.evaluation.evaluate import evaluate_metrics, run_evaluate
from genotex_dask.io import fs


def _strict_json(path: Path) -> dict:
    def bad(c):
        raise ValueError(f"non-standard JSON constant {c}")
    return json.loads(path.read_text(), parse_constant=bad)


@pytest.fixture(scope="module")
def ref_run(tmp_path_factory) -> Path:
    return write_run(tmp_path_factory.mktemp("ref") / "out")


@pytest.fixture(scope="module")
def self_result(ref_run: Path) -> dict:
    summary = run_evaluate(str(ref_run), ref=str(ref_run))
    assert summary["metrics_path"] == str(ref_run / "evaluation" / "metrics.json")
    assert summary["headline"]["analysis"]["overall"]["f1"] == 100.0 and summary["failed"] == 0
    return _strict_json(ref_run / "evaluation" / "metrics.json")


def test_self_evaluation_is_perfect(ref_run: Path, self_result: dict):
    res = self_result
    assert res["task_info"] == str(ref_run / "metadata" / "task_info.json")
    assert len(res["filtering"]["per_trait"]) == 2
    for r in res["filtering"]["per_trait"]:
        assert (r["precision"], r["recall"], r["f1"], r["accuracy"]) == (100.0, 100.0, 100.0, 100.0)
    assert len(res["selection"]["per_problem"]) == len(SIGNIFICANT) == 6
    assert all(r["accuracy"] == 100.0 for r in res["selection"]["per_problem"])
    for kind in ("gene", "clinical", "linked"):
        files = res["preprocessing"][kind]["per_file"]
        assert len(files) == 4
        for f in files:
            assert f["status"] == "ok"
            assert f["composite_similarity_correlation"] == pytest.approx(1.0)
    probs = res["analysis"]["per_problem"]
    assert len(probs) == 6
    for p in probs:
        assert p["universe"] == 10  # the full gene list of the selected cohorts is known here
        for k in ("success", "precision", "recall", "f1"):
            assert p[k] == 100.0
        assert p["auroc"] == pytest.approx(1.0) and p["gsea_es"] == pytest.approx(1.0)
    assert set(res["analysis"]["categorized"]) == {"unconditional_one_step", "conditional_one_step", "two_step",
                                                   "overall"}
    assert res["planted_truth"] is None and res["summary"]["failed"] == 0
    # strict JSON written atomically under pred/evaluation, no temporaries left
    on_disk = _strict_json(ref_run / "evaluation" / "metrics.json")
    assert on_disk["analysis"]["categorized"]["overall"]["f1"] == 100.0
    assert fs.leftover_temporaries(str(ref_run)) == []


def _perturb(ref_run: Path, dst: Path) -> Path:
    pred = dst / "pred"
    shutil.copytree(ref_run, pred, ignore=shutil.ignore_patterns("evaluation"))
    # (a) two genes dropped from one gene-data file (genes are rows there)
    g = pred / "preprocess/Trait_A/gene_data/GSE1.csv"
    df = pd.read_csv(g, index_col=0)
    df.drop(index=["G9", "G10"]).to_csv(g)
    # (b) two samples dropped from one linked file (samples are rows there)
    lk = pred / "preprocess/Trait_B/GSE10.csv"
    df = pd.read_csv(lk, index_col=0)
    df.iloc[:6].to_csv(lk)
    # (c) the largest Trait_A cohort judged unavailable
    ci = pred / "preprocess/Trait_A/cohort_info.json"
    info = json.loads(ci.read_text())
    info["GSE2"] = info_record(None, False, False)
    ci.write_text(json.dumps(info))
    # (d) one problem answered differently, (e) one problem not answered
    write_significant(pred, "Trait_A", None, ["G1", "G8"])
    (pred / "regress/Trait_B/significant_genes_condition_Age.json").unlink()
    return pred


def test_perturbed_copy_moves_exactly_the_expected_metrics(ref_run: Path, self_result: dict, tmp_path: Path):
    from distributed import Client

    pred = _perturb(ref_run, tmp_path)
    res = evaluate_metrics(str(pred), ref=str(ref_run))
    with Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0") as client:
        res_dask = evaluate_metrics(str(pred), ref=str(ref_run), client=client)
    assert res_dask["preprocessing"] == res["preprocessing"]

    # filtering: Trait_A has GSE1 TP, GSE2 FN, GSE3 TN; Trait_B untouched
    ft = {r["trait"]: r for r in res["filtering"]["per_trait"]}
    assert (ft["Trait_A"]["tp"], ft["Trait_A"]["fn"], ft["Trait_A"]["tn"], ft["Trait_A"]["fp"]) == (1, 1, 1, 0)
    assert ft["Trait_A"]["precision"] == 100.0 and ft["Trait_A"]["recall"] == pytest.approx(50.0)
    assert ft["Trait_A"]["f1"] == pytest.approx(200 / 3) and ft["Trait_A"]["accuracy"] == pytest.approx(200 / 3)
    assert ft["Trait_B"]["f1"] == 100.0
    assert res["filtering"]["average"]["f1"] == round((200 / 3 + 100) / 2, 2)

    # selection: without GSE2, Trait_A/None and /Gender fall to GSE1 and the two-step pair to (GSE1, GSE10)
    sel = {(r["trait"], r["condition"]): r for r in res["selection"]["per_problem"]}
    moved = {k for k, r in sel.items() if r["accuracy"] == 0.0}
    assert moved == {("Trait_A", None), ("Trait_A", "Gender"), ("Trait_A", "Trait_B")}
    assert sel[("Trait_A", "Trait_B")]["pred"] == ["GSE1", "GSE10"]
    assert sel[("Trait_A", "Trait_B")]["ref"] == ["GSE2", "GSE10"]
    cat = res["selection"]["categorized"]
    assert cat["unconditional_one_step"]["accuracy"] == 50.0
    assert cat["conditional_one_step"]["accuracy"] == round(200 / 3, 2)
    assert cat["two_step"]["accuracy"] == 0.0 and cat["overall"]["accuracy"] == 50.0

    # preprocessing: only the two touched files move
    def per_file(r):
        return {(k, f["trait"], f["file"]): f for k, v in r["preprocessing"].items() for f in v["per_file"]}
    now, before = per_file(res), per_file(self_result)
    changed = {k for k in now if now[k] != before[k]}
    assert changed == {("gene", "Trait_A", "GSE1.csv"), ("linked", "Trait_B", "GSE10.csv")}
    g = now[("gene", "Trait_A", "GSE1.csv")]
    assert (g["attributes_jaccard"], g["samples_jaccard"]) == (pytest.approx(0.8), 1.0)
    assert g["feature_correlation"] == pytest.approx(1.0) and g["composite_similarity_correlation"] == pytest.approx(0.8)
    lk = now[("linked", "Trait_B", "GSE10.csv")]
    assert (lk["attributes_jaccard"], lk["samples_jaccard"]) == (1.0, pytest.approx(0.75))
    assert lk["composite_similarity_correlation"] == pytest.approx(0.75)
    assert res["preprocessing"]["clinical"]["average"]["composite_similarity_correlation"] == 1.0

    # analysis: Trait_A/None answered [G1, G8] for [G1, G2, G7]; Trait_B/Age missing; the rest perfect
    an = {(r["trait"], r["condition"]): r for r in res["analysis"]["per_problem"]}
    a = an[("Trait_A", None)]
    assert a["precision"] == pytest.approx(50.0) and a["recall"] == pytest.approx(100 / 3)
    assert a["f1"] == pytest.approx(40.0)
    # universe G1..G10; G1=2, G8=1; positives G1,G2,G7 vs 7 negatives: G1 beats 7; G2, G7 lose to G8, tie 6 -> 13/21
    assert a["auroc"] == pytest.approx(13 / 21)
    b = an[("Trait_B", "Age")]
    assert b["success"] == 0.0 and b["f1"] == 0.0 and b["auroc"] == 0.0
    for k, r in an.items():
        if k not in {("Trait_A", None), ("Trait_B", "Age")}:
            assert r["f1"] == 100.0 and r["success"] == 100.0
    cat = res["analysis"]["categorized"]
    assert cat["unconditional_one_step"]["f1"] == 70.0
    assert cat["conditional_one_step"]["f1"] == round(200 / 3, 2)
    assert cat["two_step"]["f1"] == 100.0
    assert cat["conditional_one_step"]["success"] == round(200 / 3, 2)


def _truth(corpus: Path) -> Path:
    truth = {
        "seed": 0, "params": {},
        "cohorts": {
            "Trait_A/GSE1": {"trait": "Trait_A", "cohort": "GSE1", "kind": "GEO", "expected_usable": True,
                             "age_key": "age", "gender_key": "sex"},
            "Trait_A/GSE2": {"trait": "Trait_A", "cohort": "GSE2", "kind": "GEO", "expected_usable": True,
                             "age_key": None, "gender_key": "sex"},
            "Trait_A/GSE3": {"trait": "Trait_A", "cohort": "GSE3", "kind": "GEO", "expected_usable": False},
            "Trait_B/GSE10": {"trait": "Trait_B", "cohort": "GSE10", "kind": "GEO", "expected_usable": True,
                              "age_key": "age", "gender_key": None},
            "Trait_B/GSE11": {"trait": "Trait_B", "cohort": "GSE11", "kind": "GEO", "expected_usable": False},
        },
        "problems": [
            {"trait": "Trait_A", "condition": None, "category": "unconditional", "planted_genes": ["G1", "G2", "G3"]},
            {"trait": "Trait_B", "condition": "Age", "category": "conditional_one_step", "planted_genes": ["G4"]},
            {"trait": "Trait_C", "condition": None, "category": "unconditional", "planted_genes": ["G5"]},
        ],
        "trait_genes": {"Trait_A": ["G1", "G2", "G3"], "Trait_B": ["G4"], "Trait_C": ["G5"]},
    }
    corpus.mkdir(parents=True, exist_ok=True)
    (corpus / "truth.json").write_text(json.dumps(truth))
    return corpus / "truth.json"


def test_planted_truth_table_from_truth_only(ref_run: Path, tmp_path: Path):
    truth = _truth(tmp_path / "corpus")
    summary = run_evaluate(str(ref_run), truth=str(truth.parent), report=str(tmp_path / "report"))
    assert summary["report_path"] == str(tmp_path / "report" / "index.html")
    res = _strict_json(tmp_path / "report" / "metrics.json")
    assert res["truth"] == str(truth)
    assert res["filtering"] is None and res["analysis"] is None
    pt = {(r["trait"], r["condition"]): r for r in res["planted_truth"]["per_problem"]}
    a = pt[("Trait_A", None)]  # predicted G1, G2, G7
    assert a["precision"] == pytest.approx(200 / 3) and a["recall"] == pytest.approx(200 / 3)
    # universe G1..G10 (GSE2 selected); G1=3, G2=2, G7=1; positives G1, G2, G3 vs 7 negatives:
    # G1, G2 beat all 7; G3 loses to G7, ties 6 -> (7 + 7 + 3) / 21
    assert a["auroc"] == pytest.approx(17 / 21)
    b = pt[("Trait_B", "Age")]  # predicted G5, G4, G10 for G4
    assert b["precision"] == pytest.approx(100 / 3) and b["recall"] == 100.0 and b["f1"] == pytest.approx(50.0)
    c = pt[("Trait_C", None)]
    assert c["expected_solvable"] is False and c["scored"] is False and c["success"] == 0.0
    cat = res["planted_truth"]["categorized"]  # Trait_C is not counted
    assert cat["overall"]["f1"] == round((200 / 3 + 50) / 2, 2) and cat["overall"]["success"] == 100.0
    assert cat["unconditional_one_step"]["f1"] == round(200 / 3, 2)
    assert cat["conditional_one_step"]["f1"] == 50.0 and cat["two_step"] == {}
    us = {r["trait"]: r for r in res["planted_truth"]["usability"]["per_trait"]}
    assert us["Trait_A"]["f1"] == 100.0 and us["Trait_A"]["accuracy"] == 100.0
    assert (us["Trait_B"]["tp"], us["Trait_B"]["fp"]) == (1, 1)  # GSE11 expected unusable, judged usable
    assert us["Trait_B"]["precision"] == 50.0
    assert (tmp_path / "report" / "index.html").exists()
    assert _strict_json(tmp_path / "report" / "metrics.json")["planted_truth"]["per_problem"][0]["trait"] == "Trait_A"


def test_broken_files_are_reported_and_the_rest_scored(ref_run: Path, tmp_path: Path):
    pred = tmp_path / "pred"
    shutil.copytree(ref_run, pred, ignore=shutil.ignore_patterns("evaluation"))
    (pred / "regress/Trait_A/significant_genes_condition_Age.json").write_text("{not json")
    (pred / "preprocess/Trait_A/clinical_data/GSE1.csv").write_bytes(b"\x00\x01\x02")
    (pred / "preprocess/Trait_B/cohort_info.json").write_text("[1, 2")
    res = evaluate_metrics(str(pred), ref=str(ref_run))
    errs = res["summary"]["errors"]
    # an unreadable predicted cohort_info counts as empty: Trait_B's two available cohorts become FNs
    assert [e["item"] for e in errs if e["task"] == "cohort_info"] == ["Trait_B"]
    ft = {r["trait"]: r for r in res["filtering"]["per_trait"]}
    assert (ft["Trait_B"]["tp"], ft["Trait_B"]["fn"], ft["Trait_B"]["accuracy"]) == (0, 2, 0.0)
    assert ft["Trait_A"]["f1"] == 100.0
    sel = {(r["trait"], r["condition"]): r for r in res["selection"]["per_problem"]}
    assert sel[("Trait_B", None)]["pred"] is None and sel[("Trait_B", None)]["accuracy"] == 0.0
    assert sel[("Trait_A", "Age")]["accuracy"] == 100.0
    assert any(e["task"] == "analysis" and e["file"].endswith("Trait_A/significant_genes_condition_Age.json")
               for e in errs)
    an = {(r["trait"], r["condition"]): r for r in res["analysis"]["per_problem"]}
    assert an[("Trait_A", "Age")]["success"] == 0.0 and an[("Trait_A", "Gender")]["f1"] == 100.0
    clin = {f["file"]: f for f in res["preprocessing"]["clinical"]["per_file"] if f["trait"] == "Trait_A"}
    assert clin["GSE1.csv"]["composite_similarity_correlation"] == 0.0
    assert clin["GSE2.csv"]["composite_similarity_correlation"] == pytest.approx(1.0)


def test_without_reference_or_truth_reports_the_run_itself(ref_run: Path, tmp_path: Path):
    """A real run has neither a reference nor a planted truth: evaluation still finishes with a results-only
    report (no score sections) instead of raising."""
    from genotex_dask.evaluation.evaluate import run_evaluate

    res = evaluate_metrics(str(ref_run))
    assert res["filtering"] is None and res["analysis"] is None and res["planted_truth"] is None
    assert res["coefficients"], "the run's own problems are in the document"
    s = run_evaluate(str(ref_run), report=str(tmp_path / "report"))
    html = (tmp_path / "report" / "index.html").read_text()
    assert s["report_path"].endswith("index.html") and "<html" in html.lower()
    assert (tmp_path / "report" / "metrics.json").exists()


def test_clinical_orientation_geo_and_tcga(tmp_path: Path):
    from genotex_dask.evaluation.evaluate import compare_preprocess_file, load_frame

    geo = pd.DataFrame({"S1": [1.0, 50.0, 0.0], "S2": [0.0, 61.0, 1.0], "S3": [1.0, 70.0, 1.0]},
                       index=["Trait_B", "Age", "Gender"])  # GEO: features x samples
    tcga = geo.T.copy()  # TCGA: samples x features, as GenoTEX's tcga_select_clinical_features leaves it
    tcga.index.name = "sampleID"
    geo.to_csv(tmp_path / "geo.csv")
    tcga.to_csv(tmp_path / "tcga.csv")
    for name in ("geo.csv", "tcga.csv"):
        df = load_frame(str(tmp_path / name), "clinical", "Trait_B")
        assert list(df.index) == ["S1", "S2", "S3"] and list(df.columns) == ["Trait_B", "Age", "Gender"]
    # a TCGA-style prediction against a TCGA-style reference missing one sample: SJ moves, AJ does not
    tcga.iloc[:2].to_csv(tmp_path / "tcga_pred.csv")
    rec = compare_preprocess_file(str(tmp_path / "tcga_pred.csv"), str(tmp_path / "tcga.csv"), "clinical", "Trait_B")
    assert rec["attributes_jaccard"] == 1.0 and rec["samples_jaccard"] == pytest.approx(2 / 3)
    assert compare_preprocess_file(str(tmp_path / "nope.csv"), str(tmp_path / "tcga.csv"), "clinical")["status"] \
        == "missing"


def test_memory_roots_and_report_on_fsspec(ref_run: Path):
    import fsspec

    mem = fsspec.filesystem("memory")
    mem.put(str(ref_run), "/eval_self", recursive=True)
    summary = run_evaluate("memory://eval_self", ref="memory://eval_self", report="memory://eval_report")
    assert summary["failed"] == 0 and summary["files_preprocessing"] == 12
    assert summary["headline"]["analysis"]["overall"]["f1"] == 100.0
    assert summary["headline"]["preprocessing"]["gene"]["composite_similarity_correlation"] == 1.0
    assert mem.cat_file("/eval_report/index.html").startswith(b"<!DOCTYPE html>")
    assert json.loads(mem.cat_file("/eval_report/metrics.json"))["selection"]["average"]["accuracy"] == 100.0
    mem.rm("/eval_self", recursive=True)
    mem.rm("/eval_report", recursive=True)


def test_truth_scored_on_workers_equals_scored_here(ref_run: Path, tmp_path: Path, client):
    """With a client the planted-truth problems are scored in batches on the workers and the results section is
    read there: the same metrics document (errors included, each unreadable cohort_info once) and the same page."""
    import datetime as dt

    from distributed import get_task_stream

    pred = tmp_path / "pred"
    shutil.copytree(ref_run, pred, ignore=shutil.ignore_patterns("evaluation"))
    (pred / "regress/Trait_B/significant_genes_condition_Age.json").write_text("{not json")
    (pred / "preprocess/Trait_A/cohort_info.json").write_text("[1, 2")  # read by two problems, reported once
    truth = json.loads(_truth(tmp_path / "corpus").read_text())
    truth["problems"].insert(1, {"trait": "Trait_A", "condition": "Gender", "planted_genes": ["G2", "G9"]})
    truth["problems"].append({"trait": "Trait_B", "condition": None, "planted_genes": ["G4", "G5"]})
    (tmp_path / "corpus" / "truth.json").write_text(json.dumps(truth))
    now = lambda: dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)  # noqa: E731
    here = run_evaluate(str(pred), truth=str(tmp_path / "corpus"), report=str(tmp_path / "here"), now=now)
    with get_task_stream(client) as ts:
        there = run_evaluate(str(pred), truth=str(tmp_path / "corpus"), report=str(tmp_path / "there"), now=now,
                             client=client)
    ran = [t["key"].split("-")[0] for t in ts.data if t.get("status") == "OK"]
    assert ran.count("_truth_batch") == 4  # A (two problems), B, C, B: a trait's consecutive problems together
    assert here == {k: (v.replace("/there/", "/here/") if isinstance(v, str) else v) for k, v in there.items()}
    a, b = (_strict_json(tmp_path / d / "metrics.json") for d in ("here", "there"))
    assert a == b and len(a["planted_truth"]["per_problem"]) == 5
    assert [e["item"] for e in a["summary"]["errors"]] == ["Trait_A", "Trait_B/Age"]
    assert (tmp_path / "here/index.html").read_bytes() == (tmp_path / "there/index.html").read_bytes()
    # a run whose results read cleanly: its results section (read on a worker) is on the page as when read here
    for d, c in (("clean_here", None), ("clean_there", client)):
        with get_task_stream(client) as ts:
            run_evaluate(str(ref_run), truth=str(tmp_path / "corpus"), report=str(tmp_path / d), now=now, client=c)
    assert [t["key"].split("-")[0] for t in ts.data if t.get("status") == "OK"].count("run_overview") == 1
    page = (tmp_path / "clean_here/index.html").read_bytes()
    assert page == (tmp_path / "clean_there/index.html").read_bytes() and b"significant_genes.tsv" in page


def test_truth_batches_keep_order_and_traits_together():
    from genotex_dask.evaluation.evaluate import _truth_batches

    probs = [{"trait": t, "i": i} for i, t in enumerate("AAABBCDDDDE")]
    for n in (1, 2, 3, 4, 11, 50):
        batches = _truth_batches(probs, n)
        assert [p for b in batches for p in b] == probs
        assert all(b[-1]["trait"] != c[0]["trait"] for b, c in zip(batches, batches[1:]))
    assert [len(b) for b in _truth_batches(probs, 4)] == [3, 3, 4, 1]
    assert _truth_batches([], 4) == []

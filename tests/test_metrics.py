"""Hand-computed cases for every evaluation metric (values derived by hand in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from genotex_dask.evaluation import metrics as M

# ---- gene-set precision / recall / F1 ----------------------------------------------------------------


def test_gene_prf_basic():
    pred, ref = ["A", "B", "C", "D"], ["A", "C", "E"]
    # 2 of 4 predicted are right; 2 of 3 reference found; F1 = 2*(1/2)(2/3)/(1/2+2/3) = 4/7
    assert M.gene_precision(pred, ref) == pytest.approx(0.5)
    assert M.gene_recall(pred, ref) == pytest.approx(2 / 3)
    assert M.gene_f1(pred, ref) == pytest.approx(4 / 7)


@pytest.mark.parametrize("pred,ref,p,r,f", [
    ([], [], 1.0, 1.0, 1.0),            # nothing to find, nothing found: perfect
    ([], ["A"], 0.0, 0.0, 0.0),         # missed everything
    (["A"], [], 0.0, 0.0, 0.0),         # found something where nothing was to be found
    (["A", "B"], ["C"], 0.0, 0.0, 0.0),  # disjoint
])
def test_gene_prf_empty_set_conventions(pred, ref, p, r, f):
    assert M.gene_precision(pred, ref) == p
    assert M.gene_recall(pred, ref) == r
    assert M.gene_f1(pred, ref) == f


# ---- AUROC ----------------------------------------------------------------------------------------------


def test_auroc_full_by_hand():
    # scores: B=2, A=1, C=D=E=F=0; positives A, C; negatives B, D, E, F
    # A beats D,E,F (3), loses to B; C ties D,E,F (1.5), loses to B -> 4.5 / (2*4)
    assert M.auroc_full(["B", "A"], ["A", "C"], list("ABCDEF")) == pytest.approx(4.5 / 8)


def test_auroc_full_ignores_genes_outside_universe():
    # Z is neither scored nor labelled: same as without it
    assert M.auroc_full(["Z", "B", "A"], ["A", "C", "Z"], list("ABCDEF")) == pytest.approx(4.5 / 8)


def test_auroc_no_positive_or_no_negative_is_nan():
    assert math.isnan(M.auroc_full(["A"], [], list("ABC")))
    assert math.isnan(M.auroc_full(["A"], list("ABC"), list("ABC")))
    assert math.isnan(M.auroc_approx(["A"], [], n_genes=10))


def test_auroc_approx_by_hand():
    # order A(2), B(1), C(0) + 7 padding negatives (0); positives B, C; negatives A + 7 pads
    # B beats the 7 pads (7), loses to A; C ties the 7 pads (3.5) -> 10.5 / 16
    assert M.auroc_approx(["A", "B"], ["B", "C"], n_genes=10) == pytest.approx(10.5 / 16)
    # union longer than n_genes: no padding, A(3) positive above B(2), C(1) -> 1
    assert M.auroc_approx(["A", "B", "C"], ["A"], n_genes=2) == pytest.approx(1.0)


def test_auroc_from_scores_matches_sklearn_on_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, size=200)
    s = rng.integers(0, 5, size=200).astype(float)  # many ties
    assert M.auroc_from_scores(y, s) == pytest.approx(roc_auc_score(y, s))


# ---- GSEA enrichment score ----------------------------------------------------------------------------


def test_gsea_es_by_hand():
    # Nh=2 (B, D), Nm=3: -1/3, +1/2, -1/3, +1/2, -1/3 -> running -1/3, 1/6, -1/6, 1/3, 0 -> max 1/3
    assert M.gsea_es(list("ABCDE"), ["B", "D"]) == pytest.approx(1 / 3)


def test_gsea_es_nan_without_hits_or_misses():
    assert math.isnan(M.gsea_es(list("ABC"), ["Z"]))
    assert math.isnan(M.gsea_es(list("AB"), ["A", "B"]))
    assert math.isnan(M.gsea_es([], ["A"]))


def test_gsea_counts_only_reference_genes_in_the_list():
    # Z is absent: Nh=1, Nm=2 -> first step +1
    assert M.gsea_es(list("ABC"), ["A", "Z"]) == pytest.approx(1.0)


def test_gsea_full_ties_keep_universe_order():
    # C scored first, then unscored genes in universe order
    # universe A,B,C,D: C(+1/2) A(+1/2)=1 B D -> 1.0 ; universe B,A,C,D: C(+1/2) B(-1/2) A(+1/2) D -> 0.5
    assert M.gsea_full(["C"], ["A", "C"], list("ABCD")) == pytest.approx(1.0)
    assert M.gsea_full(["C"], ["A", "C"], list("BACD")) == pytest.approx(0.5)


def test_gsea_approx_by_hand():
    # ranked A, B, UNK, UNK; Nh=1 (B), Nm=3: -1/3, +1 -> 2/3, then falls
    assert M.gsea_approx(["A", "B"], ["B"], n_genes=4) == pytest.approx(2 / 3)
    assert math.isnan(M.gsea_approx(list("ABCDE"), ["A"], n_genes=4))  # longer than the universe


def test_gene_selection_metrics_percent_and_universe_choice():
    full = M.gene_selection_metrics(["B", "A"], ["A", "C"], universe=list("ABCDEF"))
    assert full["precision"] == pytest.approx(50.0)
    assert full["recall"] == pytest.approx(50.0)
    assert full["f1"] == pytest.approx(50.0)
    assert full["auroc"] == pytest.approx(4.5 / 8)
    # ranked B A C D E F; Nh=2, Nm=4: -1/4, +1/2 (1/4), +1/2 (3/4), ... -> 3/4
    assert full["gsea_es"] == pytest.approx(0.75)
    approx = M.gene_selection_metrics(["A", "B"], ["B", "C"], universe=None, n_genes=10)
    assert approx["auroc"] == pytest.approx(10.5 / 16)


def test_problem_metrics_missing_prediction_scores_zero():
    rec = M.problem_metrics(None, ["A", "B"])
    assert rec["success"] == 0.0 and rec["f1"] == 0.0 and rec["auroc"] == 0.0 and rec["gsea_es"] == 0.0
    assert rec["n_ref"] == 2 and rec["n_pred"] == 0


def test_problem_metrics_reads_prediction_json_shape():
    res = {"significant_genes": {"Variable": ["A", "X"], "Coefficient": [0.5, -0.1]},
           "cv_performance": {"prediction": {"accuracy": 0.8, "f1": 0.6}}}
    rec = M.problem_metrics(res, ["A", "B"], universe=list("ABXYZ"))
    assert rec["success"] == 100.0
    assert rec["precision"] == pytest.approx(50.0) and rec["recall"] == pytest.approx(50.0)
    assert rec["trait_pred_accuracy"] == 0.8 and rec["trait_pred_f1"] == 0.6
    # A=2, X=1, others 0: A beats X,Y,Z (3); B ties Y,Z (1), loses X -> 4/6
    assert rec["auroc"] == pytest.approx(4 / 6)
    empty = M.problem_metrics({"significant_genes": {"Variable": []}}, [])
    assert empty["precision"] == 100.0 and empty["f1"] == 100.0
    assert math.isnan(empty["auroc"]) and math.isnan(empty["gsea_es"])


# ---- filtering ----------------------------------------------------------------------------------------


def test_filtering_union_and_missing_counts_false():
    ref = {"c1": {"is_available": True}, "c2": {"is_available": True}, "c3": {"is_available": False}}
    pred = {"c1": {"is_available": True}, "c3": {"is_available": True}, "c4": {"is_available": True}}
    rec = M.filtering_metrics(ref, pred)
    # c1 TP, c2 FN, c3 FP, c4 FP (absent from ref = False)
    assert (rec["tp"], rec["fp"], rec["tn"], rec["fn"]) == (1, 2, 0, 1)
    assert rec["precision"] == pytest.approx(100 / 3)
    assert rec["recall"] == pytest.approx(50.0)
    assert rec["f1"] == pytest.approx(40.0)  # 2*(1/3)(1/2)/(5/6)
    assert rec["accuracy"] == pytest.approx(25.0)


def test_filtering_zero_denominators_and_missing_flag():
    rec = M.filtering_metrics({"c1": {}, "c2": {"is_available": None}}, {})
    assert (rec["tp"], rec["fp"], rec["tn"], rec["fn"]) == (0, 0, 2, 0)
    assert rec["precision"] == 0.0 and rec["recall"] == 0.0 and rec["f1"] == 0.0
    assert rec["accuracy"] == 100.0


# ---- selection -------------------------------------------------------------------------------------------

INFO = {
    "g1": {"is_usable": True, "has_age": True, "has_gender": False, "sample_size": 10},
    "g2": {"is_usable": True, "has_age": False, "has_gender": True, "sample_size": 20},
    "g3": {"is_usable": False, "has_age": True, "has_gender": True, "sample_size": 99},
    "g4": {"is_usable": True, "has_age": True, "has_gender": True, "sample_size": 20},
}


def test_select_one_step():
    assert M.select_one_step(INFO) == "g2"  # 20 ties g4: the first in the file wins; g3 unusable
    assert M.select_one_step(INFO, "Age") == "g4"
    assert M.select_one_step(INFO, "gender") == "g2"
    assert M.select_one_step({"x": {"is_usable": False, "sample_size": 5}}) is None
    assert M.select_one_step({}) is None


def test_select_two_step_first_pair_with_regressors():
    trait_info = {"t1": {"is_usable": True, "sample_size": 10}, "t2": {"is_usable": True, "sample_size": 5}}
    cond_info = {"c1": {"is_usable": True, "sample_size": 8}, "c2": {"is_usable": True, "sample_size": 7},
                 "c3": {"is_usable": False, "sample_size": 100}}
    assert [p[:2] for p in M.rank_pairs(trait_info, cond_info)] == [("t1", "c1"), ("t1", "c2"), ("t2", "c1"),
                                                                   ("t2", "c2")]
    cols = {("T", "t1"): ["T", "Age", "G1", "G2"], ("C", "c1"): ["C", "G3"],
            ("C", "c2"): ["C", "Gender", "G2"], ("T", "t2"): ["T", "G2", "G3"]}
    # (t1,c1) share nothing; (t1,c2) share G2, which is condition-related
    assert M.select_two_step("T", "C", trait_info, cond_info, lambda t, c: cols.get((t, c)), ["G2", "G9"]) == \
        ("t1", "c2")
    # G2 not related: (t2, c1) shares G3 which is
    assert M.select_two_step("T", "C", trait_info, cond_info, lambda t, c: cols.get((t, c)), ["G3"]) == ("t2", "c1")
    # missing files skip pairs; nothing left -> None
    assert M.select_two_step("T", "C", trait_info, cond_info, lambda t, c: None, ["G2"]) is None
    # GenoMAS variant drops genes related to the trait too
    assert M.gene_regressors("T", "C", ["G2", "G3"], ["G2", "G3"], ["G2", "G3"], ["G2"],
                             exclude_trait_related=True) == ["G3"]
    assert M.gene_regressors("T", "C", ["G2", "Age"], ["G3", "Age"], ["Age"]) == []  # covariates never count


def test_selection_accuracy():
    assert M.selection_accuracy(None, None) == 100.0
    assert M.selection_accuracy("a", "a") == 100.0
    assert M.selection_accuracy(("a", "b"), ["a", "b"]) == 100.0
    assert M.selection_accuracy("a", None) == 0.0
    assert M.selection_accuracy(("a", "b"), ("a", "c")) == 0.0


# ---- preprocessing --------------------------------------------------------------------------------------


def test_preprocessing_metrics_by_hand():
    nan = float("nan")
    pred = pd.DataFrame({"f1": [1, 2, 3, 9], "f2": [1, nan, 3, 100], "f3": [0, 0, 1, 1], "f5": [1, 2, 3, 4]},
                        index=["s1", "s2", "s3", "s4"], dtype=float)
    ref = pd.DataFrame({"f1": [2, 4, 6, 0], "f2": [1, 3, 2, 0], "f4": [1, 1, 1, 1], "f5": [7, 7, 7, 1]},
                       index=["s1", "s2", "s3", "s5"], dtype=float)
    rec = M.preprocessing_metrics(pred, ref)
    # features: shared f1, f2, f5 of f1..f5 -> 3/5 ; samples: shared s1..s3 of s1..s5 -> 3/5
    assert rec["attributes_jaccard"] == pytest.approx(0.6)
    assert rec["samples_jaccard"] == pytest.approx(0.6)
    # on s1..s3: f1 r=1; f2 pred imputed with mean of (1,3) -> [1,2,3] vs [1,3,2]: r = 1/(3*2/3) = 0.5;
    # f5 constant in ref on shared samples -> left out.  mean r = 0.75
    assert rec["feature_correlation"] == pytest.approx(0.75)
    assert rec["composite_similarity_correlation"] == pytest.approx(0.6 * 0.6 * 0.75)


def test_preprocessing_missing_empty_and_disjoint():
    ref = pd.DataFrame({"a": [1.0, 2.0]}, index=["s1", "s2"])
    assert M.preprocessing_metrics(None, ref) == M.PREPROCESS_ZERO
    assert M.preprocessing_metrics(pd.DataFrame(), ref) == M.PREPROCESS_ZERO
    other = pd.DataFrame({"a": [1.0, 2.0]}, index=["x1", "x2"])
    rec = M.preprocessing_metrics(other, ref)
    assert rec["attributes_jaccard"] == 1.0 and rec["samples_jaccard"] == 0.0
    assert rec["feature_correlation"] == 0.0 and rec["composite_similarity_correlation"] == 0.0
    allnan = pd.DataFrame({"a": [float("nan")] * 2}, index=["s1", "s2"])
    assert M.preprocessing_metrics(allnan, ref)["feature_correlation"] == 0.0  # all-NaN -> 0 -> constant


# ---- categories and aggregation ------------------------------------------------------------------------


def test_categories_and_pairs():
    assert M.problem_category(None) == M.problem_category("None") == "unconditional_one_step"
    assert M.problem_category("Age") == M.problem_category("GENDER") == "conditional_one_step"
    assert M.problem_category("Breast_Cancer") == "two_step"
    ti = {"B": {"conditions": ["Age"]}, "A": {"conditions": ["B", "Gender"]}}
    assert M.question_pairs(ti) == [("A", None), ("A", "B"), ("A", "Gender"), ("B", None), ("B", "Age")]


def test_aggregate_ignores_nan_and_rounds():
    recs = [{"category": "two_step", "f1": 100.0, "auroc": float("nan")},
            {"category": "two_step", "f1": 50.0, "auroc": 0.5},
            {"category": "unconditional_one_step", "f1": 1 / 3, "auroc": float("nan")}]
    agg = M.aggregate_by_category(recs, ["f1", "auroc"])
    assert agg["two_step"] == {"f1": 75.0, "auroc": 0.5}
    assert agg["unconditional_one_step"]["f1"] == 0.33
    assert math.isnan(agg["unconditional_one_step"]["auroc"])
    assert agg["conditional_one_step"] == {}
    assert agg["overall"]["f1"] == pytest.approx(round((100 + 50 + 1 / 3) / 3, 2))
    assert M.json_safe({"x": float("nan"), "y": [np.float64(1.5)]}) == {"x": None, "y": [1.5]}


# ---- against the plain oracle (benchmarks/oracle/evaluation_oracle.py) ----------------------------------


def _close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_gene_metrics_match_oracle_on_random_lists(seed):
    from benchmarks.oracle.evaluation_oracle import gene_selection

    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(60)]
    pred = list(rng.choice(genes, size=int(rng.integers(0, 15)), replace=False))
    ref = list(rng.choice(genes, size=int(rng.integers(0, 10)), replace=False))
    universe = list(rng.permutation(genes))
    for uni, n in ((universe, 0), (None, 80), (None, 5)):
        ours = M.gene_selection_metrics(pred, ref, universe=uni, n_genes=n or 80)
        theirs = gene_selection(pred, ref, all_genes=uni, n_genes=n or 80)
        for k in theirs:
            assert _close(ours[k], theirs[k]), (k, uni is None, n, ours[k], theirs[k])


@pytest.mark.parametrize("seed", range(4))
def test_preprocessing_metrics_match_oracle_on_random_frames(seed):
    from benchmarks.oracle.evaluation_oracle import csv_similarity

    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(30)]
    samples = [f"S{i}" for i in range(25)]
    ref = pd.DataFrame(rng.normal(size=(30, 25)), index=genes, columns=samples)
    pred = ref.iloc[rng.permutation(30)[:24], rng.permutation(25)[:20]] + rng.normal(scale=0.5, size=(24, 20))
    pred = pred.mask(rng.random(pred.shape) < 0.1)  # NaNs to impute
    pred.iloc[0, :] = 1.0  # a constant gene, left out of r
    ref.iloc[1, :] = np.nan  # an all-NaN gene on the reference side
    pred.loc["EXTRA"] = 0.5
    ours = M.preprocessing_metrics(pred.T, ref.T)  # gene files are features x samples: compare transposed
    theirs = csv_similarity(pred.to_csv(), ref.to_csv(), transpose=True)
    for k in theirs:
        assert ours[k] == pytest.approx(theirs[k], rel=1e-9, abs=1e-12), k


@pytest.mark.parametrize("seed", range(8))
def test_full_universe_metrics_match_oracle_with_outside_and_repeated_genes(seed):
    """The position-map path (and its repeated-gene fallback) against the oracle's gene-by-gene loop: predicted
    and reference genes outside the universe, a prediction repeating a gene, empty sides, repeated universe genes."""
    from benchmarks.oracle.evaluation_oracle import gene_selection

    rng = np.random.default_rng(100 + seed)
    genes = [f"G{i}" for i in range(80)]
    universe = list(rng.permutation(genes[:60]))
    if seed % 4 == 3:
        universe += universe[:7]  # repeated genes: the per-gene fallback
    pred = list(rng.choice(genes, size=int(rng.integers(0, 20)), replace=True))  # may repeat, may be outside
    ref = [] if seed == 2 else list(rng.choice(genes, size=int(rng.integers(1, 12)), replace=False))
    ours = M.gene_selection_metrics(pred, ref, universe=universe)
    theirs = gene_selection(pred, ref, all_genes=universe, n_genes=80)
    for k in theirs:
        assert _close(ours[k], theirs[k]), (k, ours[k], theirs[k])
    assert _close(M.auroc_full(pred, ref, universe), theirs["auroc"])
    assert _close(M.gsea_full(pred, ref, universe), theirs["gsea_es"])


def test_gene_regressors_take_sets_or_sequences_alike():
    cols_t = ["Trait", "Age", "Gender", "A", "B", "C", "Cond"]
    cols_c = ["Cond", "Age", "B", "C", "D", "Trait"]
    related = ["C", "Age", "Trait", "Cond", "X", "B", "C"]
    want = ["C", "B", "C"]  # both cohorts' genes, in task_info order (repeats kept); never a trait column
    assert M.gene_regressors("Trait", "Cond", cols_t, cols_c, related) == want
    assert M.gene_regressors("Trait", "Cond", frozenset(cols_t), set(cols_c), related) == want
    from genotex_dask.analysis import problems

    assert problems.gene_regressors("Trait", "Cond", cols_t, cols_c, related) == want
    assert problems.gene_regressors("Trait", "Cond", frozenset(cols_t), frozenset(cols_c), related) == want

"""Problem enumeration and GenoTEX's cohort-selection rule (ranking ties, covariates, two-step pairs)."""

from __future__ import annotations

import json

import pytest

from benchmarks.oracle import regress_oracle
from genotex_dask.analysis import problems


def _info(n, usable=True, age=True, gender=True):
    return {"is_usable": usable, "has_age": age, "has_gender": gender, "sample_size": n}


def test_problem_order_and_categories():
    ti = {"Zeta": {"related_genes": [], "conditions": ["Alpha", "Age"]},
          "Alpha": {"related_genes": ["A1"], "conditions": ["Gender"]}}
    got = problems.list_problems(ti)
    assert [(p.trait, p.condition) for p in got] == regress_oracle.problem_list(ti)
    assert [(p.trait, p.condition) for p in got] == [("Alpha", None), ("Alpha", "Gender"), ("Zeta", None),
                                                     ("Zeta", "Alpha"), ("Zeta", "Age")]
    assert [p.category for p in got] == ["unconditional", "conditional_one_step", "unconditional", "two_step",
                                         "conditional_one_step"]
    assert got[0].key == "Alpha/significant_genes_condition_None"


def test_ranking_filters_and_small_ties():
    info = {"GSE1": _info(10), "GSE2": _info(30, age=False), "GSE3": _info(30), "GSE4": _info(50, usable=False),
            "GSE5": _info(5)}
    assert problems.rank_cohorts(info) == ["GSE2", "GSE3", "GSE1", "GSE5"]
    assert problems.rank_cohorts(info, "Age") == ["GSE3", "GSE1", "GSE5"]
    assert problems.select_one_step(info, "Age").trait_cohort == "GSE3"
    sel = problems.select_one_step({"GSE4": _info(50, usable=False)})
    assert sel.trait_cohort is None and "no usable cohort" in sel.reason


@pytest.mark.parametrize("n_cohorts", [5, 40])
def test_ranking_ties_match_pandas_reference(tmp_path, n_cohorts):
    # many equal sizes: numpy's quicksort is not stable beyond 16 items, the order must still be the reference's
    info = {f"GSE{i:03d}": _info([20, 20, 35, 20, 35][i % 5]) for i in range(n_cohorts)}
    p = tmp_path / "cohort_info.json"
    p.write_text(json.dumps(info))
    assert problems.rank_cohorts(info) == regress_oracle.ranked(str(p))["cohort_id"].tolist()


def test_missing_flags_are_not_usable():
    info = {"GSE1": {"is_usable": True, "sample_size": 10}, "GSE2": {"sample_size": 99}}
    assert problems.rank_cohorts(info) == ["GSE1"]
    assert problems.rank_cohorts(info, "Gender") == []
    assert problems.rank_cohorts({}) == []


def test_two_step_pairs_by_product_first_with_regressors():
    t_info = {"T1": _info(100), "T2": _info(60)}
    c_info = {"C1": _info(50), "C2": _info(90)}
    cols = {("Tr", "T1"): ["Tr", "Age", "G1", "G2"], ("Tr", "T2"): ["Tr", "G3", "G4", "G5"],
            ("Co", "C1"): ["Co", "G3", "G5"], ("Co", "C2"): ["Co", "G1", "G9"]}
    seen = []

    def columns_of(t, c):
        seen.append((t, c))
        return cols[(t, c)]

    # products: T1xC2=9000 (regressor candidates: none related), T2xC2=5400 (none), T1xC1=5000 (none), T2xC1=3000
    sel = problems.select_two_step("Tr", "Co", t_info, c_info, ["G5", "G9", "G3"], columns_of)
    assert (sel.trait_cohort, sel.condition_cohort) == ("T2", "C1")
    assert sel.regressors == ("G5", "G3")  # task_info order, only genes in both cohorts
    assert seen[0] == ("Tr", "T1") and seen[1] == ("Co", "C2")
    none = problems.select_two_step("Tr", "Co", t_info, c_info, ["G7"], columns_of)
    assert none.trait_cohort is None and "shares" in none.reason
    # a planner's memo of the rankings (keyed by trait name) gives the same selections, each name ranked once
    frames, calls = {}, []

    def ranked(name, info):
        calls.append(name)
        return frames.setdefault(name, problems.rank_cohorts_frame(info))

    for related in (["G5", "G9", "G3"], ["G7"], ["G1"]):
        assert problems.select_two_step("Tr", "Co", t_info, c_info, related, columns_of, ranked=ranked) == \
            problems.select_two_step("Tr", "Co", t_info, c_info, related, columns_of)
    assert calls == ["Tr", "Co"] * 3 and set(frames) == {"Tr", "Co"}
    assert list(frames["Tr"]["cohort_id"]) == ["T1", "T2"]  # the memo's frame was not changed by the merges


def test_gene_regressors_exclude_covariates_and_trait():
    regs = problems.gene_regressors("Tr", "Co", ["Tr", "Age", "Co", "G1"], ["Co", "Age", "G1", "Tr"],
                                    ["Age", "Tr", "G1"])
    assert regs == ["G1"]

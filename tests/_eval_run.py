"""A tiny hand-built run in GenoTEX's output layout, for the evaluation tests.

Two traits; Trait_A has three cohorts (GSE1: 12 samples with Age and Gender, GSE2: 15 samples with Gender
only, GSE3: no trait information), Trait_B has two (GSE10: 8 samples with Age, GSE11: 6 samples without).
Every written file follows GenoTEX's shapes: gene_data and clinical_data are features x samples, the linked
file samples x [trait, Age, Gender, genes...], cohort_info.json records as validate_and_save_cohort_info writes
them, and regress JSONs as save_result writes them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

GENES = [f"G{i}" for i in range(1, 11)]  # G1..G10: every cohort measures all ten

TASK_INFO = {
    "Trait_A": {"related_genes": ["G1", "G2", "G3"], "conditions": ["Age", "Gender", "Trait_B"]},
    "Trait_B": {"related_genes": ["G4", "G5"], "conditions": ["Age"]},
}

# trait -> cohort -> (n_samples or None when unavailable, has_age, has_gender)
COHORTS = {
    "Trait_A": {"GSE1": (12, True, True), "GSE2": (15, False, True), "GSE3": (None, False, False)},
    "Trait_B": {"GSE10": (8, True, False), "GSE11": (6, False, False)},
}

# significant genes written per problem (trait, condition) -> ordered genes
SIGNIFICANT = {
    ("Trait_A", None): ["G1", "G2", "G7"],
    ("Trait_A", "Age"): ["G2", "G3"],
    ("Trait_A", "Gender"): ["G1"],
    ("Trait_A", "Trait_B"): ["G3", "G6", "G8", "G9"],
    ("Trait_B", None): ["G4", "G5"],
    ("Trait_B", "Age"): ["G5", "G4", "G10"],
}


def info_record(n: int | None, has_age: bool, has_gender: bool) -> dict:
    if n is None:
        return {"is_usable": False, "is_gene_available": True, "is_trait_available": False, "is_available": False,
                "is_biased": None, "has_age": None, "has_gender": None, "sample_size": None, "note": None}
    return {"is_usable": True, "is_gene_available": True, "is_trait_available": True, "is_available": True,
            "is_biased": False, "has_age": has_age, "has_gender": has_gender, "sample_size": n, "note": ""}


def write_run(out: Path, seed: int = 0) -> Path:
    """Write the run under ``out`` (OUT/preprocess/..., OUT/regress/...) and metadata/task_info.json beside."""
    rng = np.random.default_rng(seed)
    (out / "metadata").mkdir(parents=True, exist_ok=True)
    (out / "metadata" / "task_info.json").write_text(json.dumps(TASK_INFO))
    for trait, cohorts in COHORTS.items():
        tdir = out / "preprocess" / trait
        (tdir / "gene_data").mkdir(parents=True, exist_ok=True)
        (tdir / "clinical_data").mkdir(parents=True, exist_ok=True)
        info = {}
        for cohort, (n, has_age, has_gender) in cohorts.items():
            info[cohort] = info_record(n, has_age, has_gender)
            if n is None:
                continue
            samples = [f"{cohort}_S{i}" for i in range(n)]
            genes = pd.DataFrame(rng.normal(size=(len(GENES), n)).round(6), index=GENES, columns=samples)
            genes.index.name = "Gene"
            clin = {trait: (np.arange(n) % 2).astype(float)}
            if has_age:
                clin["Age"] = rng.integers(30, 80, size=n).astype(float)
            if has_gender:
                clin["Gender"] = ((np.arange(n) // 2) % 2).astype(float)
            clinical = pd.DataFrame(clin, index=samples).T
            linked = pd.concat([clinical.T, genes.T], axis=1)
            genes.to_csv(tdir / "gene_data" / f"{cohort}.csv")
            clinical.to_csv(tdir / "clinical_data" / f"{cohort}.csv")
            linked.to_csv(tdir / f"{cohort}.csv")
        (tdir / "cohort_info.json").write_text(json.dumps(info, indent=4))
    for (trait, cond), genes in SIGNIFICANT.items():
        write_significant(out, trait, cond, genes)
    return out


def write_significant(out: Path, trait: str, cond: str | None, genes: list[str]) -> None:
    coefs = [round(1.0 / (i + 1), 6) * (-1 if i % 2 else 1) for i in range(len(genes))]
    res = {"significant_genes": {"Variable": genes, "Coefficient": coefs,
                                 "Absolute Coefficient": [abs(c) for c in coefs]},
           "cv_performance": {"prediction": {"accuracy": 0.75, "precision": 0.7, "recall": 0.8, "f1": 0.72},
                              "selection": {"precision": 50.0}}}
    d = out / "regress" / trait
    d.mkdir(parents=True, exist_ok=True)
    (d / f"significant_genes_condition_{cond}.json").write_text(json.dumps(res, indent=4))

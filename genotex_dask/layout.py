"""Every GenoTEX path convention in one place.

GenoTEX keeps raw inputs under ``input/`` and results under ``output/``; all stages of this engine
address files only through these helpers so that a plain path, ``s3://bucket/prefix`` or ``memory://``
root all work the same way.  Paths are joined with ``/`` (fsspec style) on every filesystem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TCGA_COHORT_ID = "TCGA"
COVARIATES = ("Age", "Gender")


def join(root: str, *parts: str) -> str:
    """Join URL/path parts with '/', never doubling separators (fsspec URLs are '/'-separated)."""
    out = root.rstrip("/")
    for p in parts:
        p = str(p).strip("/")
        if p:
            out = f"{out}/{p}"
    return out


def normalize_trait(trait: str) -> str:
    """GenoTEX's trait-name normalization: whitespace runs become '_', apostrophes are removed."""
    return "_".join(trait.split()).replace("'", "")


# ---- inputs -------------------------------------------------------------------------------------

def input_geo_dir(root: str) -> str:
    return join(root, "input", "GEO")


def input_tcga_dir(root: str) -> str:
    return join(root, "input", "TCGA")


def geo_cohort_dir(root: str, trait: str, cohort: str) -> str:
    return join(root, "input", "GEO", trait, cohort)


def task_info_path(root: str) -> str:
    return join(root, "metadata", "task_info.json")


def gene_synonym_path(root: str) -> str:
    return join(root, "metadata", "gene_synonym.json")


def is_series_matrix(name: str) -> bool:
    """GenoTEX picks matrix files by the substring 'matrix' (case-insensitive)."""
    return "matrix" in name.lower() and "clinicalmatrix" not in name.lower()


def is_family_soft(name: str) -> bool:
    return "soft" in name.lower()


def is_tcga_clinical(name: str) -> bool:
    return "clinicalmatrix" in name.lower()


def is_tcga_expression(name: str) -> bool:
    return "pancan" in name.lower()


_GPL_IN_NAME = re.compile(r"-(GPL\d+)_series_matrix", re.IGNORECASE)


def platform_from_matrix_name(name: str) -> str | None:
    """``GSE781-GPL96_series_matrix.txt.gz`` -> ``GPL96``; None for single-platform series."""
    m = _GPL_IN_NAME.search(name)
    return m.group(1).upper() if m else None


# ---- outputs (GenoTEX's output/ layout) ---------------------------------------------------------

@dataclass(frozen=True)
class PreprocessPaths:
    """Where one cohort's preprocessing outputs live under OUT/preprocess/<Trait>/."""

    out: str
    trait: str
    cohort: str

    @property
    def trait_dir(self) -> str:
        return join(self.out, "preprocess", self.trait)

    @property
    def gene_data(self) -> str:
        return join(self.trait_dir, "gene_data", f"{self.cohort}.csv")

    @property
    def clinical_data(self) -> str:
        return join(self.trait_dir, "clinical_data", f"{self.cohort}.csv")

    @property
    def linked_data(self) -> str:
        return join(self.trait_dir, f"{self.cohort}.csv")

    @property
    def cohort_info(self) -> str:
        return join(self.trait_dir, "cohort_info.json")


def preprocess_dir(out: str) -> str:
    return join(out, "preprocess")


def cohort_info_path(out: str, trait: str) -> str:
    return join(out, "preprocess", trait, "cohort_info.json")


def linked_data_path(out: str, trait: str, cohort: str) -> str:
    return join(out, "preprocess", trait, f"{cohort}.csv")


def regress_dir(out: str) -> str:
    return join(out, "regress")


def significant_genes_path(out: str, trait: str, condition: str | None) -> str:
    """GenoTEX writes ``significant_genes_condition_None.json`` for unconditional problems."""
    return join(out, "regress", trait, f"significant_genes_condition_{condition}.json")


def store_geo_cohort(store: str, trait: str, cohort: str) -> str:
    """The cohort store mirrors the input tree: STORE/GEO/<Trait>/<cohort>.zarr (one group per matrix file)."""
    return join(store, "GEO", trait, f"{cohort}.zarr")


def store_tcga_cohort(store: str, tcga_dir: str) -> str:
    """STORE/TCGA/<Xena directory>.zarr."""
    return join(store, "TCGA", f"{tcga_dir}.zarr")

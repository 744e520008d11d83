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


class UnsafePathError(ValueError):
    """A name from an input (spec file, task_info.json, directory listing, imported notebook) that would build
    a path outside its root, or on another filesystem: it holds '/', '\\', '..', NUL, '::' or is empty."""


def _unsafe_cause(name: str) -> str | None:
    if not name.strip():
        return "is empty"
    if "\x00" in name:
        return "contains a NUL byte"
    if "/" in name or "\\" in name:
        return "contains a path separator ('/' or '\\')"
    if name in (".", ".."):
        return "is a relative directory reference"
    if "::" in name or "://" in name:
        return "contains a URL/protocol separator"
    return None


def check_name(name: object, what: str = "name", where: str = "") -> str:
    """``name`` unchanged when it is safe as one path component; else :class:`UnsafePathError` (one line).

    Every name that comes from an input and becomes part of a path (trait, cohort, directory and file names)
    passes here where it enters the engine; :func:`join` re-checks the joined result as a second line.
    """
    s = "" if name is None else str(name)
    cause = _unsafe_cause(s)
    if cause:
        prefix = f"{where}: " if where else ""
        raise UnsafePathError(f"{prefix}unsafe {what} {s!r}: {cause}; names from inputs never leave their root")
    return s


def is_safe_name(name: object) -> bool:
    return name is not None and _unsafe_cause(str(name)) is None


def join(root: str, *parts: str) -> str:
    """Join URL/path parts with '/', never doubling separators (fsspec URLs are '/'-separated).

    The result always stays under ``root`` (a local path or any fsspec URL): a part with a '..' segment, a
    backslash, NUL or a protocol separator raises :class:`UnsafePathError` (leading/trailing '/' are trimmed,
    so an absolute part lands under ``root`` too).  ``root`` itself is the caller's, trusted.
    """
    out = root.rstrip("/")
    for p in parts:
        p = str(p).strip("/")
        if not p:
            continue
        if "\x00" in p or "\\" in p or "::" in p or "://" in p or ".." in p.split("/"):
            raise UnsafePathError(f"path part {p!r} would leave {root or '.'!r}; names from inputs never "
                                  "leave their root")
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

"""Linking, missing values, bias and cohort_info records, vectorised over whole arrays.

GenoTEX does these steps on a pandas frame of samples x (trait, Age, Gender, ~19k genes), column by column
(fillna on 19k columns of a fragmented frame is where most of its 25 s per cohort goes).  The same rules on one
float64 matrix take milliseconds:

1. drop samples whose trait is missing;
2. drop genes missing in more than 20% of the remaining samples;
3. drop samples missing more than 5% of the remaining genes (a sample with no gene left counts as 100% missing,
   as pandas' mean over zero columns is NaN and fails the test);
4. impute Age by its mean, Gender by its mode (the smallest value among ties; the column is dropped when it has
   no value at all), genes by their column mean.

Bias: a binary variable (exactly two distinct values) is biased when one class is absent or rarer than 10% *and*
fewer than 5 samples; a continuous one when all its values are equal.  A trait with other than two distinct
values is judged as continuous (so a constant trait is biased).  Biased Age/Gender columns are dropped; a biased
trait makes the cohort unusable.

cohort_info records keep GenoTEX's fields and rules, including its abnormality test: a final frame with no rows or
with at most 4 columns marks the genes unavailable (and the trait too when there are no rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numba import njit

GENE_MISSING_MAX = 0.2
SAMPLE_MISSING_MAX = 0.05


@dataclass
class Linked:
    """A linked cohort: samples x (trait, covariates, genes) kept as arrays, not a frame."""

    samples: np.ndarray                 # object array of sample IDs
    trait: np.ndarray                   # float64, NaN = missing
    covariates: dict[str, np.ndarray]   # "Age"/"Gender" -> float64
    genes: np.ndarray                   # object array of symbols
    X: np.ndarray                       # samples x genes, float64

    @property
    def n_columns(self) -> int:
        return 1 + len(self.covariates) + len(self.genes)


@dataclass
class QualityResult:
    linked: Linked
    is_biased: bool | None
    steps: dict = field(default_factory=dict)


def link(clinical_samples: Sequence[str], trait: np.ndarray, covariates: dict[str, np.ndarray],
         gene_samples: Sequence[str], genes: np.ndarray, X: np.ndarray) -> Linked:
    """Align clinical features and the gene matrix on sample IDs.

    Like GenoTEX's outer concatenation: samples keep the clinical order, followed by samples found only in the
    gene matrix (their trait is missing, so step 1 drops them); clinical samples absent from the gene matrix get
    missing gene values.
    """
    clinical_samples = [str(s) for s in clinical_samples]
    gene_pos = {str(s): i for i, s in enumerate(gene_samples)}
    extra = [str(s) for s in gene_samples if str(s) not in set(clinical_samples)]
    order = clinical_samples + extra
    n_c, n = len(clinical_samples), len(order)
    idx = np.array([gene_pos.get(s, -1) for s in order], dtype=np.int64)
    ok = idx >= 0
    if ok.all() and n == X.shape[0] and np.array_equal(idx, np.arange(n)):
        Xl = np.asarray(X, dtype=np.float64)  # same samples, same order (the usual case): no NaN-filled matrix
    else:
        Xl = np.full((n, X.shape[1]), np.nan)
        Xl[ok] = X[idx[ok]]

    def pad(v: np.ndarray) -> np.ndarray:
        out = np.full(n, np.nan)
        out[:n_c] = np.asarray(v, dtype=np.float64)
        return out

    return Linked(samples=np.asarray(order, dtype=object), trait=pad(trait),
                  covariates={k: pad(v) for k, v in covariates.items()}, genes=np.asarray(genes, dtype=object),
                  X=Xl)


@njit(cache=True, nogil=True)
def _nan_counts(X, rows):  # pragma: no cover - compiled
    """(NaN count of each column over ``rows``, NaN count of each of ``rows`` over all columns), int64.  Row by
    row with 32-bit column counters (a NaN is the value unequal to itself): the loop vectorizes."""
    n = X.shape[1]
    col = np.zeros(n, np.int32)
    row = np.zeros(rows.shape[0], np.int64)
    for i in range(rows.shape[0]):
        x = X[rows[i]]
        k = np.int32(0)
        for c in range(n):
            m = np.int32(x[c] != x[c])
            col[c] += m
            k += m
        row[i] = k
    return col.astype(np.int64), row


def handle_missing(d: Linked, overwrite_x: bool = False) -> tuple[Linked, dict]:
    """GenoTEX's four missing-value steps on arrays; returns the new cohort and counts per step.

    With ``overwrite_x`` imputed values may be written into ``d.X`` itself (a caller that no longer needs the
    gaps saves a copy of the matrix); by default ``d`` is left as it was."""
    steps: dict = {"samples_in": int(len(d.samples)), "genes_in": int(len(d.genes))}
    # Decide what is kept first and copy the matrix once at the end (or not at all when nothing is dropped or
    # imputed): a samples x 19k-genes float64 matrix is 25 MB per copy.
    keep_s = ~np.isnan(d.trait)
    rows = np.flatnonzero(keep_s)
    n_s = len(rows)
    # NaN counts per gene (over the samples with a trait) and per sample (over all genes) in one pass over the
    # matrix, without a boolean mask of it; then only the few genes dropped or holding a gap are looked at again
    col_nan, row_nan = _nan_counts(d.X, rows)
    # missing fractions as integer counts / n: the same float64 values as the boolean means
    if n_s:
        keep_g = col_nan / n_s <= GENE_MISSING_MAX
    else:
        keep_g = np.zeros(d.X.shape[1], dtype=bool)
    cols = np.flatnonzero(keep_g)
    if len(cols) < len(keep_g) and n_s:  # the dropped genes' gaps no longer count against a sample
        dropped = np.flatnonzero(~keep_g)
        row_nan = row_nan - np.count_nonzero(np.isnan(d.X[np.ix_(rows, dropped)]), axis=1)
    if len(cols):
        keep_s2 = row_nan / len(cols) <= SAMPLE_MISSING_MAX
    else:
        keep_s2 = np.zeros(n_s, dtype=bool)
    sel = rows[keep_s2]
    if len(sel) == d.X.shape[0] and len(cols) == d.X.shape[1]:
        X = d.X
    elif len(cols) == d.X.shape[1]:
        X = d.X[sel]
    else:
        X = d.X[np.ix_(sel, cols)]
    # genes (positions in X) with a gap among the kept samples: from the counts unless samples were dropped
    gaps = col_nan[cols] if len(sel) == n_s else _nan_counts(X, np.arange(len(sel)))[0]
    touched = np.flatnonzero(gaps)
    steps.update(samples_without_trait=int((~keep_s).sum()), genes_dropped_missing=int((~keep_g).sum()),
                 samples_dropped_missing=int((~keep_s2).sum()))
    cov: dict[str, np.ndarray] = {}
    for name, v in d.covariates.items():
        v = v[sel].copy()
        miss = np.isnan(v)
        if name == "Age":
            if miss.any():
                v[miss] = v[~miss].mean() if (~miss).any() else np.nan
        elif name == "Gender":
            if miss.all():
                steps["gender_dropped_all_missing"] = True
                continue  # no mode: GenoTEX drops the column
            if miss.any():
                vals, counts = np.unique(v[~miss], return_counts=True)
                v[miss] = vals[np.argmax(counts)]  # np.unique sorts, argmax takes the first (smallest) mode
        cov[name] = v
    if len(touched):  # impute only the genes that have a gap
        X = X.copy() if X is d.X and not overwrite_x else X
        part = X[:, touched]
        with np.errstate(invalid="ignore"):
            col_mean = np.nanmean(part, axis=0)
        r, c = np.nonzero(np.isnan(part))
        X[r, touched[c]] = col_mean[c]
    out = Linked(samples=d.samples[sel], trait=d.trait[sel], covariates=cov, genes=d.genes[cols], X=X)
    steps.update(samples_out=int(len(out.samples)), genes_out=int(len(out.genes)))
    return out, steps


def binary_biased(v: np.ndarray, min_proportion: float = 0.1, min_num: int = 5) -> bool:
    """One class absent, or the rarest class under ``min_proportion`` of samples and under ``min_num``."""
    present = v[~np.isnan(v)]
    vals, counts = np.unique(present, return_counts=True)
    if len(vals) < 2:
        return True
    rare = counts.min()
    return bool(rare / len(v) < min_proportion and rare < min_num)


def continuous_biased(v: np.ndarray) -> bool:
    """All values equal (NaN never equals anything, so an all-NaN column is not 'biased', as in pandas)."""
    if len(v) == 0:
        return False
    return bool(np.nanmin(v) == np.nanmax(v)) if not np.isnan(v).all() else False


def is_binary(v: np.ndarray) -> bool:
    """Exactly two distinct values, NaN counting as one (as ``len(Series.unique()) == 2``)."""
    nan = np.isnan(v)
    return len(np.unique(v[~nan])) + int(nan.any()) == 2


def judge_bias(d: Linked) -> tuple[bool, Linked, dict]:
    """Trait bias (binary or continuous) and removal of biased Age/Gender columns."""
    info: dict = {}
    if is_binary(d.trait):
        trait_biased = binary_biased(d.trait)
        info["trait_type"] = "binary"
    else:
        trait_biased = continuous_biased(d.trait)
        info["trait_type"] = "continuous"
    cov = dict(d.covariates)
    if "Age" in cov and continuous_biased(cov["Age"]):
        del cov["Age"]
        info["age_dropped_biased"] = True
    if "Gender" in cov and binary_biased(cov["Gender"]):
        del cov["Gender"]
        info["gender_dropped_biased"] = True
    info["trait_biased"] = trait_biased
    return trait_biased, Linked(d.samples, d.trait, cov, d.genes, d.X), info


def initial_record(is_gene_available: bool, is_trait_available: bool, note: str | None = None) -> dict:
    """GenoTEX's record for a cohort filtered out before linking (is_final=False)."""
    return {"is_usable": False, "is_gene_available": bool(is_gene_available),
            "is_trait_available": bool(is_trait_available), "is_available": False, "is_biased": None,
            "has_age": None, "has_gender": None, "sample_size": None, "note": note}


def final_record(is_gene_available: bool, is_trait_available: bool, is_biased: bool | None,
                 n_rows: int, columns: Sequence[str], note: str = "") -> dict:
    """GenoTEX's final record, with its abnormality override (no rows, or at most 4 columns)."""
    if n_rows <= 0 or len(columns) <= 4:
        is_gene_available = False
        if n_rows <= 0:
            is_trait_available = False
    is_available = bool(is_gene_available and is_trait_available)
    return {"is_usable": bool(is_available and is_biased is False),
            "is_gene_available": bool(is_gene_available), "is_trait_available": bool(is_trait_available),
            "is_available": is_available, "is_biased": (bool(is_biased) if is_biased is not None else None)
            if is_available else None,
            "has_age": ("Age" in columns) if is_available else None,
            "has_gender": ("Gender" in columns) if is_available else None,
            "sample_size": int(n_rows) if is_available else None, "note": note}


def str_list(values) -> list[str]:
    """``values`` (an array or sequence of labels) as a list of str; labels that are all str already (gene
    symbols in practice) are listed without a per-label conversion (one C-level check)."""
    from pandas.api.types import infer_dtype

    if isinstance(values, np.ndarray) and values.dtype == object and infer_dtype(values, skipna=False) == "string":
        return values.tolist()
    items = values.tolist() if isinstance(values, np.ndarray) else list(values)
    return [x if type(x) is str else str(x) for x in items]


def gene_names(d: Linked) -> list[str]:
    """The gene symbols of a linked cohort as str."""
    return str_list(d.genes)


def linked_columns(trait_name: str, d: Linked) -> list[str]:
    return [trait_name, *d.covariates.keys(), *gene_names(d)]


def finalize(trait_name: str, d: Linked, is_gene_available: bool = True,
             is_trait_available: bool = True, overwrite_x: bool = False) -> tuple[QualityResult, dict]:
    """Missing values, bias and the final cohort_info record for a linked cohort (``overwrite_x``: see
    :func:`handle_missing`)."""
    cleaned, steps = handle_missing(d, overwrite_x)
    if len(cleaned.samples) == 0:
        is_biased: bool | None = True
        note = "empty after filtering: no sample kept a trait value and <=5% missing genes"
        info: dict = {}
    else:
        is_biased, cleaned, info = judge_bias(cleaned)
        note = f"trait '{trait_name}' is severely biased" if is_biased else ""
    steps.update(info)
    cols = linked_columns(trait_name, cleaned)
    if len(cleaned.samples) and len(cols) <= 4:
        note = f"abnormal: only {len(cols) - 1 - len(cleaned.covariates)} gene column(s) left"
    rec = final_record(is_gene_available, is_trait_available, is_biased, len(cleaned.samples), cols, note)
    return QualityResult(cleaned, is_biased, steps), rec

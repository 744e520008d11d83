"""A plain pandas restatement of GenoTEX's cohort preprocessing, step by step, used as the yardstick.

This is deliberately the slow, literal way: it reads the gzip'd series matrix and family SOFT line by line
into pandas exactly as GenoTEX's helpers do (the annotation is every non-``^!#`` line of the SOFT file, all
platforms and sample tables included, read as one table), splits probe values 1/n over the extracted tokens
and sums per token with ``groupby().sum()`` (so missing values count as 0), normalizes through the synonym
table with ``groupby().mean()``, then links, handles missing values and judges bias column by column on a
pandas frame.  It shares no code with ``genotex_dask`` so that equivalence tests compare two independent
implementations.
"""

from __future__ import annotations

import gzip
import io
import os
import re
from collections.abc import Callable

import numpy as np
import pandas as pd

_TOKEN = re.compile(r"\b(?!NR_|XR_|LOC\d+|LINC\d+)(?:[A-Z][A-Z0-9-]{1,9}|C\d+orf\d+)\b")
_LAB = {"DNA", "RNA", "PCR", "EST", "CHR"}


# ---- reading, as the reference reads ---------------------------------------------------------------------

def _lines(path: str):
    with gzip.open(path, "rt") as f:
        for line in f:
            yield line.strip()


def _frame_of_lines(lines: list[str]) -> pd.DataFrame:
    return pd.read_csv(io.StringIO("\n".join(lines)), delimiter="\t", low_memory=False, on_bad_lines="skip")


def cohort_files(cohort_dir: str) -> tuple[str, str]:
    """(soft, matrix): the first file whose name contains 'soft' / 'matrix' (sorted, for determinism)."""
    names = sorted(os.listdir(cohort_dir))
    soft = [n for n in names if "soft" in n.lower()]
    matrix = [n for n in names if "matrix" in n.lower()]
    return os.path.join(cohort_dir, soft[0]), os.path.join(cohort_dir, matrix[0])


def sample_rows(matrix_path: str, field: str) -> pd.DataFrame:
    """The ``!Sample_geo_accession`` line as header and every ``field`` line as a row (file order)."""
    lines = list(_lines(matrix_path))
    head = [ln for ln in lines if ln.startswith("!Sample_geo_accession")]
    rows = [ln for ln in lines if ln.startswith(field + "\t")]
    return _frame_of_lines(head[:1] + rows)


def expression(matrix_path: str) -> pd.DataFrame:
    skip = None
    for i, ln in enumerate(_lines(matrix_path)):
        if "!series_matrix_table_begin" in ln:
            skip = i + 1
            break
    if skip is None:
        raise ValueError("no table marker")
    df = pd.read_csv(matrix_path, compression="gzip", skiprows=skip, comment="!", delimiter="\t",
                     on_bad_lines="skip")
    df = df.rename(columns={"ID_REF": "ID"}).astype({"ID": "str"})
    return df.set_index("ID")


def annotation(soft_path: str) -> pd.DataFrame:
    kept = [ln for ln in _lines(soft_path) if not ln.startswith(("^", "!", "#"))]
    return _frame_of_lines(kept)


# ---- the science, as the reference computes it -----------------------------------------------------------

def tokens(text: object) -> list[str]:
    if not isinstance(text, str):
        return []
    return list(dict.fromkeys(t for t in _TOKEN.findall(text) if t not in _LAB))


def probe_to_gene(expr: pd.DataFrame, ann: pd.DataFrame, id_col: str, gene_col: str) -> pd.DataFrame:
    m = ann.loc[:, [id_col, gene_col]].dropna().rename(columns={gene_col: "Gene"}).astype({id_col: "str"})
    m = m.rename(columns={id_col: "ID"})
    m = m[m["ID"].isin(expr.index)].copy()
    m["Gene"] = m["Gene"].apply(tokens)
    m["n"] = m["Gene"].apply(len)
    m = m.explode("Gene").dropna(subset=["Gene"]).set_index("ID")
    joined = m.join(expr)
    cols = [c for c in joined.columns if c not in ("Gene", "n")]
    joined[cols] = joined[cols].div(joined["n"].replace(0, 1), axis=0)
    return joined.groupby("Gene")[cols].sum()


def normalize(gene_df: pd.DataFrame, synonyms: dict) -> pd.DataFrame:
    gene_df = gene_df.copy()
    gene_df.index = gene_df.index.str.upper().map(lambda x: synonyms.get(x))
    gene_df = gene_df[gene_df.index.notnull()]
    return gene_df.groupby(gene_df.index).mean()


def feature_row(clinical: pd.DataFrame, row: int, name: str, fn: Callable) -> pd.DataFrame:
    df = clinical.iloc[row:row + 1].drop(columns=[c for c in clinical.columns if str(c).startswith("!Sample_")],
                                         errors="ignore")
    df.index = [name]
    return df.map(fn).astype(float)


def missing_values(df: pd.DataFrame, trait: str) -> pd.DataFrame:
    cov = [trait, "Age", "Gender"]
    genes = [c for c in df.columns if c not in cov]
    df = df.dropna(subset=[trait])
    miss = df[genes].isna().mean()
    keep = set(miss[miss <= 0.2].index)
    df = df[[c for c in df.columns if c in keep or c in cov]]
    genes = [c for c in df.columns if c not in cov]
    smiss = df[genes].isna().mean(axis=1)
    df = df.loc[smiss[smiss <= 0.05].index]
    if "Age" in df.columns:
        df["Age"] = df["Age"].fillna(df["Age"].mean())
    if "Gender" in df.columns:
        mode = df["Gender"].mode()
        if len(mode):
            df["Gender"] = df["Gender"].fillna(mode[0])
        else:
            df = df.drop("Gender", axis=1)
    df[genes] = df[genes].fillna(df[genes].mean())
    return df


def binary_biased(df: pd.DataFrame, col: str) -> bool:
    counts = df[col].value_counts()
    rare = counts.min()
    return bool(len(counts) < 2 or (rare / len(df) < 0.1 and rare < 5))


def continuous_biased(df: pd.DataFrame, col: str) -> bool:
    return bool(df[col].min() == df[col].max())


def bias(df: pd.DataFrame, trait: str) -> tuple[bool, pd.DataFrame]:
    if len(df[trait].unique()) == 2:
        biased = binary_biased(df, trait)
    else:
        biased = continuous_biased(df, trait)
    if "Age" in df.columns and continuous_biased(df, "Age"):
        df = df.drop(columns="Age")
    if "Gender" in df.columns and binary_biased(df, "Gender"):
        df = df.drop(columns="Gender")
    return biased, df


def record(df: pd.DataFrame, is_biased: bool, gene_ok: bool, trait_ok: bool, note: str) -> dict:
    if len(df) <= 0 or len(df.columns) <= 4:
        gene_ok = False
        if len(df) <= 0:
            trait_ok = False
    avail = gene_ok and trait_ok
    return {"is_usable": avail and is_biased is False, "is_gene_available": gene_ok, "is_trait_available": trait_ok,
            "is_available": avail, "is_biased": is_biased if avail else None,
            "has_age": "Age" in df.columns if avail else None,
            "has_gender": "Gender" in df.columns if avail else None,
            "sample_size": len(df) if avail else None, "note": note}


def _finish(linked: pd.DataFrame, trait: str, gene_ok: bool, trait_ok: bool) -> tuple[pd.DataFrame, dict]:
    linked = missing_values(linked, trait)
    if len(linked) == 0:
        return linked, record(linked, True, gene_ok, trait_ok,
                              "empty after filtering: no sample kept a trait value and <=5% missing genes")
    biased, linked = bias(linked, trait)
    note = f"trait '{trait}' is severely biased" if biased else ""
    n_genes = len([c for c in linked.columns if c not in (trait, "Age", "Gender")])
    if len(linked.columns) <= 4:
        note = f"abnormal: only {n_genes} gene column(s) left"
    return linked, record(linked, biased, gene_ok, trait_ok, note)


def geo_cohort(cohort_dir: str, trait: str, synonyms: dict, *, trait_field: str, trait_row: int,
               convert_trait: Callable, age_row: int | None = None, convert_age: Callable | None = None,
               gender_row: int | None = None, convert_gender: Callable | None = None, id_col: str = "ID",
               gene_col: str | None = None, finish: bool = True) -> dict:
    """One GEO cohort the reference way; ``gene_col=None`` means the IDs are already symbols.

    ``trait_field`` is the sample line holding the trait (``!Sample_characteristics_ch1``,
    ``!Sample_source_name_ch1`` or ``!Sample_title``) and ``trait_row`` its row among those lines; Age and
    Gender rows are characteristics rows.  ``finish=False`` stops before linking (no missing values, bias or
    record), which is where the reference spends most of its time.
    """
    soft, matrix = cohort_files(cohort_dir)
    chars = sample_rows(matrix, "!Sample_characteristics_ch1")
    expr = expression(matrix)
    genes = probe_to_gene(expr, annotation(soft), id_col, gene_col) if gene_col else expr
    gene_data = normalize(genes, synonyms)
    feats = [feature_row(sample_rows(matrix, trait_field), trait_row, trait, convert_trait)]
    if age_row is not None:
        feats.append(feature_row(chars, age_row, "Age", convert_age))
    if gender_row is not None:
        feats.append(feature_row(chars, gender_row, "Gender", convert_gender))
    clinical_df = pd.concat(feats, axis=0)
    if not finish:
        return {"gene_data": gene_data, "clinical_data": clinical_df}
    linked = pd.concat([clinical_df, gene_data], axis=0).T
    linked, rec = _finish(linked, trait, True, True)
    return {"gene_data": gene_data, "clinical_data": clinical_df, "linked": linked, "record": rec}


def tcga_trait(sample: str) -> int:
    code = int(sample[-2:])
    return 1 if 1 <= code <= 9 else (0 if 10 <= code <= 19 else -1)


def tcga_gender(cell: object):
    if isinstance(cell, str):
        cell = cell.lower()
    return 0 if cell == "female" else (1 if cell == "male" else None)


def tcga_age(cell: object):
    m = re.search(r"\d+", str(cell))
    return int(m.group()) if m else None


def tcga_cohort(cohort_dir: str, trait: str, synonyms: dict, age_col: str | None, gender_col: str | None,
                finish: bool = True) -> dict:
    names = sorted(os.listdir(cohort_dir))
    clin_path = os.path.join(cohort_dir, [n for n in names if "clinicalmatrix" in n.lower()][0])
    expr_path = os.path.join(cohort_dir, [n for n in names if "pancan" in n.lower()][0])
    clinical = pd.read_csv(clin_path, index_col=0, sep="\t")
    expr = pd.read_csv(expr_path, index_col=0, sep="\t")
    feats = [clinical.index.to_series().apply(tcga_trait).rename(trait)]
    if age_col:
        feats.append(clinical[age_col].apply(tcga_age).rename("Age"))
    if gender_col:
        feats.append(clinical[gender_col].apply(tcga_gender).rename("Gender"))
    clinical_df = pd.concat(feats, axis=1)
    gene_data = normalize(expr, synonyms)
    if not finish:
        return {"gene_data": gene_data, "clinical_data": clinical_df}
    gt = gene_data.T
    common = clinical_df.index.intersection(gt.index)
    linked = pd.concat([clinical_df.loc[common], gt.loc[common]], axis=1)
    linked, rec = _finish(linked, trait, gene_data.shape[0] > 0, clinical_df.shape[0] > 0)
    return {"gene_data": gene_data, "clinical_data": clinical_df, "linked": linked, "record": rec}


def frames_close(a: pd.DataFrame, b: pd.DataFrame, rtol: float = 1e-6) -> bool:
    """Same labels (as sets) and values within ``rtol`` relative (NaN equal to NaN)."""
    if set(map(str, a.index)) != set(map(str, b.index)) or set(map(str, a.columns)) != set(map(str, b.columns)):
        return False
    b = b.copy()
    b.index = b.index.map(str)
    b.columns = b.columns.map(str)
    a = a.copy()
    a.index = a.index.map(str)
    a.columns = a.columns.map(str)
    b = b.loc[a.index, a.columns]
    return bool(np.allclose(a.to_numpy(float), b.to_numpy(float), rtol=rtol, atol=1e-9, equal_nan=True))

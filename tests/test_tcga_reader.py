"""Xena TCGA readers against pandas.read_csv(sep='\\t', index_col=0), the call the reference makes."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genotex_dask.io import tcga
from genotex_dask.io.errors import InputFormatError
from tests._geo_files import truncated_copy, write_gz

TCGA = Path(__file__).parent / "data" / "tcga" / "input" / "TCGA"
CHOL = TCGA / "TCGA_Bile_Duct_Cancer_(CHOL)"
DLBC = TCGA / "TCGA_Large_Bcell_Lymphoma_(DLBC)"
FILES = {
    "CHOL": (CHOL / "TCGA.CHOL.sampleMap_HiSeqV2_PANCAN.gz", CHOL / "TCGA.CHOL.sampleMap_CHOL_clinicalMatrix"),
    "DLBC": (DLBC / "TCGA.DLBC.sampleMap_HiSeqV2_PANCAN.gz", DLBC / "TCGA.DLBC.sampleMap_DLBC_clinicalMatrix"),
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_expression_equals_pandas_and_keeps_entrez_rows(name):
    expr_path, _ = FILES[name]
    ours = tcga.read_xena_expression(str(expr_path))
    theirs = pd.read_csv(expr_path, sep="\t", index_col=0)
    assert list(ours.index) == list(theirs.index) and list(ours.columns) == list(theirs.columns)
    np.testing.assert_array_equal(ours.to_numpy(), theirs.to_numpy())
    assert ours.index.name == "sample" and ours.dtypes.eq(np.float64).all()
    entrez = [g for g in ours.index if g.startswith("?|")]
    assert len(entrez) == 29 and "?|26823" in entrez
    assert not ours.isna().to_numpy().any()


@pytest.mark.parametrize("name", sorted(FILES))
def test_clinical_equals_pandas_and_sample_orders_differ(name):
    expr_path, clin_path = FILES[name]
    ours = tcga.read_xena_clinical(str(clin_path))
    theirs = pd.read_csv(clin_path, sep="\t", index_col=0)
    pd.testing.assert_frame_equal(ours, theirs)
    expr = tcga.read_xena_expression(str(expr_path))
    assert set(expr.columns) <= set(ours.index)
    assert list(expr.columns) != [s for s in ours.index if s in set(expr.columns)]  # link by barcode
    assert pd.api.types.is_numeric_dtype(ours["age_at_initial_pathologic_diagnosis"])


def test_chol_contents():
    expr = tcga.read_xena_expression(str(FILES["CHOL"][0]))
    clin = tcga.read_xena_clinical(str(FILES["CHOL"][1]))
    assert expr.shape == (20530, 45) and clin.shape == (45, 110)
    assert sum(s.endswith("-11") for s in expr.columns) == 9
    assert set(clin["gender"]) == {"FEMALE", "MALE"}


def _expr_text(rows):
    return "\n".join("\t".join(r) for r in rows) + "\n"


def test_bad_expression_files(tmp_path):
    good = [["sample", "TCGA-A-01", "TCGA-B-11"], ["G1", "1.5", "2"], ["?|7", "0", "-1"]]
    df = tcga.read_xena_expression(str(write_gz(tmp_path / "ok_PANCAN.gz", _expr_text(good))))
    assert list(df.index) == ["G1", "?|7"] and df.loc["?|7", "TCGA-B-11"] == -1

    cases = {
        "dup": ([["sample", "S1", "S1"], ["G1", "1", "2"]], "duplicate sample"),
        "ragged": ([["sample", "S1", "S2"], ["G1", "1", "2"], ["G2", "1"]], "ragged"),
        "nonnum": ([["sample", "S1", "S2"], ["G1", "1", "2"], ["G2", "1", "x7"]], "non-numeric"),
    }
    for name, (rows, cause) in cases.items():
        path = write_gz(tmp_path / f"{name}_PANCAN.gz", _expr_text(rows))
        with pytest.raises(InputFormatError) as info:
            tcga.read_xena_expression(str(path))
        assert str(path) in str(info.value) and cause in info.value.cause, name
    with pytest.raises(InputFormatError) as info:
        tcga.read_xena_expression(str(truncated_copy(FILES["CHOL"][0], tmp_path / "cut_PANCAN.gz")))
    assert "gzip" in info.value.cause


def test_bad_clinical_files(tmp_path):
    dup = tmp_path / "dup_clinicalMatrix"
    dup.write_text("sampleID\tgender\nS1\tMALE\nS1\tFEMALE\n")
    with pytest.raises(InputFormatError) as info:
        tcga.read_xena_clinical(str(dup))
    assert str(dup) in str(info.value) and "duplicate sample" in info.value.cause
    empty = tmp_path / "empty_clinicalMatrix"
    empty.write_bytes(gzip.compress(b""))
    with pytest.raises(InputFormatError):
        tcga.read_xena_clinical(str(empty))

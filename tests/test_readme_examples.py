"""The README's loader and scanpy examples run as written on the real GSE781 run."""

from __future__ import annotations

import anndata as ad
import pandas as pd

from tests._gse781_run import TRAIT, gse781_run
from tests._readme import run_block


def test_readme_loaders_example():
    out = gse781_run()
    ns = run_block("### Results as AnnData, pandas and Dask DataFrames", {"out": str(out)})
    genes = ns["genes"]
    assert isinstance(genes, pd.DataFrame) and set(genes["trait"]) == {TRAIT} and len(genes) > 0
    assert ns["recurring"].empty  # one trait: nothing recurs across traits
    assert ns["ddf"].compute()["gene"].tolist() == genes["gene"].tolist()
    assert isinstance(ns["adata"], ad.AnnData) and ns["raw"].uns["platform"]["id"] == "GPL96"


def test_readme_scanpy_example():
    out = gse781_run()
    ns = run_block("### Open it in scanpy", {"out": str(out)})
    a = ns["a"]
    assert isinstance(a.obs[TRAIT].dtype, pd.CategoricalDtype) and a.uns["value_scale"] == "raw"

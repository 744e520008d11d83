"""Zarr cohort store: round trips (local and memory://), AnnData compatibility, completeness, resume keys."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from genotex_dask.io import fs, store


def _pieces(n_obs=70, n_vars=9000, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(8, 2, size=(n_obs, n_vars))
    X[rng.random(X.shape) < 0.01] = np.nan
    obs = pd.DataFrame({"title": [f"s{i}" for i in range(n_obs)],
                        "characteristics_ch1_0": ["disease state: RA"] * (n_obs - 1) + [None],
                        "contact_zip/postal_code": ["10117"] * n_obs},
                       index=[f"GSM{i}" for i in range(n_obs)])
    var = pd.DataFrame({"Gene Symbol": ["A /// B", np.nan] + ["C"] * (n_vars - 2),
                        "GO:Function.1": ["x"] * n_vars},
                       index=pd.Index([f"p{i}" for i in range(n_vars)], name="ID"))
    uns = {"series": {"title": ["T"], "summary": ["a", ""]}, "platform": {"id": "GPL96"},
           "ingest": {"kind": "GEO", "cohort": "GSE1"}}
    return X, obs, var, uns


SOURCES = {"matrix": {"name": "GSE1_series_matrix.txt.gz", "size": 10, "mtime": "1", "etag": ""}}


@pytest.mark.parametrize("root", ["local", "memory"])
def test_round_trip(tmp_path, root):
    base = str(tmp_path) if root == "local" else f"memory://store-test-{tmp_path.name}"
    url = f"{base}/GEO/T/GSE1.zarr"
    X, obs, var, uns = _pieces()
    rec = store.write_cohort(url, X, obs, var, uns, SOURCES)
    assert rec["n_obs"] == 70 and rec["dtype"] == "float32"
    assert store.is_complete(url) and fs.leftover_temporaries(base) == []
    a = store.open_cohort(url)
    assert a.shape == (70, 9000) and a.X.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(a.X), np.isnan(X))
    np.testing.assert_allclose(a.X, X.astype(np.float32), rtol=0, atol=0)
    assert list(a.obs_names) == list(obs.index) and list(a.var_names) == list(var.index)
    assert a.obs.loc["GSM69", "characteristics_ch1_0"] == "" and a.var.loc["p1", "Gene Symbol"] == ""
    assert store.read_obs(url).columns.tolist() == ["title", "characteristics_ch1_0", "contact_zip/postal_code"]
    assert store.read_var(url)["GO:Function.1"].iloc[0] == "x"
    u = store.read_uns(url)
    assert list(u["series"]["summary"]) == ["a", ""] and u["ingest"]["sources"]["matrix"]["size"] == 10
    x = store.cohort_X_dask(url)
    assert x.chunksize == store.CHUNKS and x.shape == (70, 9000)
    np.testing.assert_array_equal(np.isnan(x.compute()), np.isnan(X))
    lazy = store.open_cohort(url, lazy=True)
    assert lazy.shape == a.shape and hasattr(lazy.X, "dask")


def test_anndata_read_zarr_on_a_plain_path_and_float64(tmp_path):
    url = str(tmp_path / "c.zarr")
    X, obs, var, uns = _pieces(5, 30)
    store.write_cohort(url, X, obs, var, uns, SOURCES, float64=True)
    a = ad.read_zarr(url)  # the user's own tool, no genotex_dask involved
    assert a.X.dtype == np.float64
    np.testing.assert_array_equal(a.X, X)  # exact, NaN in the same places
    assert store.sources_unchanged(url, SOURCES, float64=True)
    assert not store.sources_unchanged(url, SOURCES, float64=False)


def test_completeness_and_fingerprints(tmp_path):
    url = str(tmp_path / "c.zarr")
    assert not store.is_complete(url) and store.read_completion(url) is None
    X, obs, var, uns = _pieces(4, 10)
    store.write_cohort(url, X, obs, var, uns, SOURCES)
    assert store.sources_unchanged(url, SOURCES)
    changed = {"matrix": {**SOURCES["matrix"], "size": 11}}
    assert not store.sources_unchanged(url, changed)
    # a group whose publish marker is missing (interrupted copy on an object store) is not complete
    (tmp_path / "c.zarr" / fs.COMPLETE_MARK).unlink()
    assert not store.is_complete(url) and not store.sources_unchanged(url, SOURCES)
    # rewriting replaces the group whole
    store.write_cohort(url, X[:2], obs.iloc[:2], var, uns, changed)
    assert store.open_cohort(url).n_obs == 2 and store.sources_unchanged(url, changed)
    assert fs.leftover_temporaries(str(tmp_path)) == []


def test_shape_mismatch_is_refused(tmp_path):
    X, obs, var, uns = _pieces(4, 10)
    with pytest.raises(ValueError):
        store.write_cohort(str(tmp_path / "c.zarr"), X[:, :5], obs, var, uns, SOURCES)
    assert not fs.exists(str(tmp_path / "c.zarr")) and fs.leftover_temporaries(str(tmp_path)) == []


def test_anndata_format_setting_is_not_restored_under_another_writer():
    """Two threads writing: the first to finish must not reset anndata's (process-wide) Zarr format while the
    second is still writing (a format-2 string codec in a format-3 array broke ingest on a loaded machine)."""
    import threading
    import time

    import anndata as ad

    first_in, first_out = threading.Event(), threading.Event()
    seen: list = []

    def first():
        with store.zarr_v3_writes():
            first_in.set()
            time.sleep(0.3)  # the second writer arrives meanwhile
        first_out.set()

    def second():
        first_in.wait(5)
        with store.zarr_v3_writes():
            first_out.wait(1)  # without the lock the first writer leaves while we are still inside
            seen.append(ad.settings.zarr_write_format)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert first_out.is_set() and seen == [store.ZARR_FORMAT]

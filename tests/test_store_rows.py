"""The chunk-row reader of a cohort store's X against Zarr's own read of the same store (the oracle)."""

from __future__ import annotations

import json
import os

import dask
import numpy as np
import pandas as pd
import pytest
import zarr

from genotex_dask.io import store, store_rows
from genotex_dask.pipelines.preprocess import Prepared, map_samples, read_block
from genotex_dask.preprocess.mapping import apply_operator, build_probe_operator

SOURCES = {"matrix": {"name": "GSE1_series_matrix.txt.gz", "size": 10, "mtime": "1", "etag": ""}}


def _store(path, n_obs=70, n_vars=300, float64=False, chunks=(16, 128)):
    rng = np.random.default_rng(n_obs)
    X = rng.normal(8, 2, size=(n_obs, n_vars))
    X[rng.random(X.shape) < 0.05] = np.nan
    X[:16, :128] = 0.0  # a chunk equal to the fill value everywhere (a writer may leave its file out)
    obs = pd.DataFrame({"title": [f"s{i}" for i in range(n_obs)]}, index=[f"GSM{i}" for i in range(n_obs)])
    var = pd.DataFrame({"Gene Symbol": [f"G{i % 40}" for i in range(n_vars)]},
                       index=pd.Index([f"p{i}" for i in range(n_vars)], name="ID"))
    url = str(path / "GSE1.zarr")
    with dask.config.set({"genotex_dask.store.chunks": list(chunks)}):
        store.write_cohort(url, X, obs, var, {"platform": {"id": "GPL1"}}, SOURCES, float64=float64)
    return url, var


def _zarr_rows(url, a, b):
    return np.asarray(zarr.open_array(store.zarr_store(url, read_only=True), path="X", mode="r")[a:b])


@pytest.mark.parametrize("float64", [False, True])
def test_chunk_rows_equal_zarr_read(tmp_path, float64):
    url, _ = _store(tmp_path, float64=float64)
    lay = store_rows.layout(url)
    assert lay is not None and lay.shape == (70, 300) and lay.chunks == (16, 128)
    for a, b in [(0, 70), (5, 37), (64, 70), (16, 32), (69, 70)]:  # unaligned, the partial last chunk row
        got = np.full((b - a, 300), -1.0, dtype=lay.dtype)
        firsts = []
        for first, rows in store_rows.chunk_rows(lay, a, b):  # rows is valid until the next step: copy it now
            got[first - a:first - a + len(rows)] = rows
            firsts.append(first)
        assert firsts == sorted({max(a, r) for r in range(0, b, 16) if r + 16 > a})
        assert got.dtype == _zarr_rows(url, a, b).dtype
        np.testing.assert_array_equal(got, _zarr_rows(url, a, b))


def test_missing_chunk_file_is_the_fill_value(tmp_path):
    url, _ = _store(tmp_path)
    lay = store_rows.layout(url)
    os.remove(lay.chunk_path(0, 1))  # as a writer that skips chunks equal to the fill value leaves it
    expect = _zarr_rows(url, 0, 16)  # Zarr reads the fill value there too
    assert (expect[:, 128:256] == 0).all()
    (first, rows), = list(store_rows.chunk_rows(lay, 0, 16))
    np.testing.assert_array_equal(rows, expect)


def test_damaged_chunk_is_an_error_not_stale_data(tmp_path):
    url, _ = _store(tmp_path)
    lay = store_rows.layout(url)
    with open(lay.chunk_path(1, 0), "wb") as f:
        f.write(b"not blosc at all, and long enough")
    with pytest.raises(ValueError, match="not a Blosc chunk"):
        list(store_rows.chunk_rows(lay, 16, 32))


def test_truncated_chunk_is_an_error_not_a_read_past_its_bytes(tmp_path):
    """A chunk whose Blosc header claims more compressed bytes than the file holds never reaches the C
    decoder that trusts the header (numcodecs' checked path refuses it)."""
    url, _ = _store(tmp_path)
    lay = store_rows.layout(url)
    with open(lay.chunk_path(1, 0), "rb") as f:
        data = f.read()
    with open(lay.chunk_path(1, 0), "wb") as f:
        f.write(data[: len(data) // 2])
    with pytest.raises((ValueError, RuntimeError)):
        list(store_rows.chunk_rows(lay, 16, 32))


def test_chunks_decoded_in_a_worker_thread_equal_zarr(tmp_path):
    """The decoder used off the main thread (c-blosc's one-call context, one thread, as on a Dask worker) gives
    Zarr's values, and is the C entry point where numcodecs provides it."""
    import threading

    url, _ = _store(tmp_path, n_obs=64, n_vars=512, chunks=(32, 128))
    lay = store_rows.layout(url)
    got = {}

    def read():
        got["rows"] = np.concatenate([r.copy() for _, r in store_rows.chunk_rows(lay, 0, 64)])

    t = threading.Thread(target=read)
    t.start()
    t.join()
    np.testing.assert_array_equal(got["rows"], _zarr_rows(url, 0, 64))
    assert store_rows._ctx_decompress() is not None  # the C call was found, not the fallback


def test_other_layouts_are_left_to_zarr(tmp_path):
    url, _ = _store(tmp_path)
    meta_path = os.path.join(url, "X", "zarr.json")
    meta = json.loads(open(meta_path).read())
    meta["codecs"][1]["name"] = "zstd"
    with open(meta_path, "w") as f:
        f.write(json.dumps(meta))
    assert store_rows.layout(url) is None
    assert store_rows.layout(str(tmp_path / "nothing.zarr")) is None
    assert store_rows.layout("memory://x/GSE1.zarr") is None


@pytest.mark.parametrize("fast", [True, False])
def test_map_samples_equals_the_operator_on_a_zarr_read(tmp_path, monkeypatch, fast):
    url, var = _store(tmp_path)
    syn = {f"G{i}": f"G{i}" for i in range(40)}
    op = build_probe_operator(list(var.index), list(var.index), list(var["Gene Symbol"]), syn)
    if not fast:  # a layout the fast reader declines: read through Zarr, block-samples samples at a time
        monkeypatch.setattr(store_rows, "layout", lambda url: None)
    with dask.config.set({"genotex_dask.preprocess.block-samples": 32}):
        got = map_samples(Prepared(op=op), url)
    assert got.shape == (70, len(op.symbols))
    np.testing.assert_array_equal(got, apply_operator(op, read_block(url, 0, 70)))

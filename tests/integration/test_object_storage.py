"""genotex_dask.io.fs on s3:// against a moto server on 127.0.0.1 (real HTTP, real s3fs)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import zarr

from genotex_dask import layout
from genotex_dask.io import fs

pytestmark = pytest.mark.integration


@pytest.fixture
def bucket(moto_s3) -> str:
    return moto_s3.new_bucket()


def test_atomic_file_writes_on_s3(bucket):
    url = layout.join(bucket, "out", "preprocess", "T", "cohort_info.json")
    fs.write_json_atomic(url, {"GSE1": {"is_usable": True}})
    fs.write_json_atomic(url, {"GSE1": {"is_usable": False}})
    fs.write_text_atomic(layout.join(bucket, "out", "a.csv"), "x,y\n1,2\n")
    fs.write_bytes_atomic(layout.join(bucket, "out", "b.bin"), b"\x00\x01")
    assert fs.read_json(url) == {"GSE1": {"is_usable": False}}
    assert fs.read_text(layout.join(bucket, "out", "a.csv")) == "x,y\n1,2\n"
    assert fs.read_bytes(layout.join(bucket, "out", "b.bin")) == b"\x00\x01"
    assert fs.listdir(layout.join(bucket, "out")) == ["a.csv", "b.bin", "preprocess"]
    assert fs.leftover_temporaries(bucket) == []


def _write_group(url: str, values: np.ndarray, extra: str | None = None) -> None:
    g = zarr.open_group(url, mode="w")
    g.create_array("X", shape=values.shape, chunks=(2, values.shape[1]), dtype="f4")[:] = values
    if extra:
        g.create_array(extra, shape=(1,), dtype="i4")[:] = 7


def test_atomic_dir_publishes_a_zarr_group_on_s3(bucket):
    target = layout.join(bucket, "store", "GEO", "T", "GSE1.zarr")
    first = np.arange(12, dtype="f4").reshape(4, 3)
    with fs.atomic_dir(target) as tmp:
        _write_group(tmp, first, extra="stale")
        assert not fs.exists(target), "nothing appears under the final name before the publish"
    assert fs.is_complete_dir(target)
    g = zarr.open_group(target, mode="r")
    np.testing.assert_array_equal(g["X"][:], first)
    assert "stale" in g

    # Overwrite: the new group replaces the old one whole (stale arrays gone, marker rewritten).
    second = first[::-1] * 2
    with fs.atomic_dir(target) as tmp:
        _write_group(tmp, second)
    g = zarr.open_group(target, mode="r")
    np.testing.assert_array_equal(g["X"][:], second)
    assert "stale" not in g
    assert fs.is_complete_dir(target)
    assert fs.leftover_temporaries(bucket) == []


def test_interrupted_atomic_dir_leaves_nothing_on_s3(bucket):
    target = layout.join(bucket, "store", "GSE2.zarr")
    with pytest.raises(KeyboardInterrupt), fs.atomic_dir(target) as tmp:
        _write_group(tmp, np.ones((4, 3), dtype="f4"))
        raise KeyboardInterrupt
    assert not fs.exists(target) and not fs.is_complete_dir(target)
    assert not fs.exists(tmp), "the staging directory is removed too"
    assert fs.leftover_temporaries(bucket) == []


def test_publish_interrupted_mid_copy_is_not_complete(bucket, monkeypatch):
    """A crash between the copy and the marker leaves objects but no marker: readers must not trust it."""
    target = layout.join(bucket, "store", "GSE3.zarr")
    s3, _ = fs.get_fs(target)  # fsspec caches instances: atomic_dir gets this same object
    real_pipe = s3.pipe_file

    def crash_on_marker(path, *a, **k):
        if path.endswith(fs.COMPLETE_MARK):
            raise ConnectionError("lost the network before the marker")
        return real_pipe(path, *a, **k)

    monkeypatch.setattr(s3, "pipe_file", crash_on_marker)
    with pytest.raises(ConnectionError), fs.atomic_dir(target) as tmp:
        _write_group(tmp, np.ones((4, 3), dtype="f4"))
    monkeypatch.undo()
    assert fs.exists(target) and not fs.is_complete_dir(target)
    assert fs.leftover_temporaries(bucket) == []


def test_anndata_cohort_roundtrip_through_atomic_dir_on_s3(bucket):
    """The cohort store's format (AnnData in Zarr) written to a temporary prefix and published."""
    target = layout.join(bucket, "store", "TCGA", "TCGA_X.zarr")
    X = np.random.default_rng(0).normal(size=(5, 4)).astype("f4")
    adata = ad.AnnData(X=X, obs=pd.DataFrame(index=[f"S{i}" for i in range(5)]),
                       var=pd.DataFrame(index=[f"P{i}" for i in range(4)]))
    with fs.atomic_dir(target) as tmp:
        adata.write_zarr(tmp)
    back = ad.read_zarr(target)
    np.testing.assert_array_equal(back.X, X)
    assert list(back.obs_names) == list(adata.obs_names)
    assert fs.leftover_temporaries(bucket) == []


def test_leftover_temporaries_finds_planted_temporaries(bucket):
    fs.write_text_atomic(layout.join(bucket, "out", "ok.json"), "{}")
    s3, path = fs.get_fs(bucket)
    s3.pipe_file(f"{path}/out/{fs.TMP_MARK}abc-ok.json", b"{")
    left = fs.leftover_temporaries(bucket)
    assert len(left) == 1 and left[0].endswith(f"{fs.TMP_MARK}abc-ok.json")

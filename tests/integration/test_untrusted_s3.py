"""Path confinement on s3:// (moto on 127.0.0.1): keys with '..' segments are never listed as names, and a
joined path never leaves its bucket prefix."""

from __future__ import annotations

import pytest

from genotex_dask import layout
from genotex_dask.io import fs
from genotex_dask.pipelines.ingest import discover

pytestmark = pytest.mark.integration


def test_s3_listing_and_join_stay_under_the_root(moto_s3):
    bucket = moto_s3.new_bucket()
    s3, _ = fs.get_fs(bucket)
    name = bucket[len("s3://"):]
    s3.pipe_file(f"{name}/root/input/GEO/T/GSE1/GSE1_series_matrix.txt", b"!x\n")
    s3.pipe_file(f"{name}/root/input/GEO/T/../../../ESC/GSE2/GSE2_series_matrix.txt", b"!x\n")
    s3.pipe_file(f"{name}/root/input/GEO/..\\ESC/GSE3/GSE3_series_matrix.txt", b"!x\n")
    s3.invalidate_cache()
    root = layout.join(bucket, "root")
    assert fs.listdir(layout.join(root, "input", "GEO", "T")) == ["GSE1"]
    assert fs.listdir(layout.join(root, "input", "GEO")) == ["T"]
    assert [j.key for j in discover(root, layout.join(bucket, "store"))] == ["GEO/T/GSE1"]
    with pytest.raises(layout.UnsafePathError):
        layout.join(root, "preprocess", "../../other-bucket-prefix")
    with pytest.raises(layout.UnsafePathError):
        layout.store_geo_cohort(layout.join(bucket, "store"), "..", "GSE1")

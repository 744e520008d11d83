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


def test_traversal_names_write_nothing_outside_an_s3_out(moto_s3, tmp_path):
    """Spec and task_info names with '../' against OUT = s3://bucket/deep/out: named errors for those items,
    the real cohort and problem finish, and every object in the bucket lies under deep/out/."""
    import json
    import shutil
    from pathlib import Path

    from distributed import Client, LocalCluster

    from genotex_dask.pipelines import analyze
    from genotex_dask.pipelines.preprocess import run_preprocess

    data = Path(__file__).resolve().parents[1] / "data" / "genotex_gse781"
    spec = Path(__file__).resolve().parents[2] / "genotex_dask" / "specs" / "Kidney_Clear_Cell_Carcinoma.yaml"
    trait = "Kidney_Clear_Cell_Carcinoma"
    root = tmp_path / "root"
    shutil.copytree(data, root)
    specs = tmp_path / "specs"
    specs.mkdir()
    body = spec.read_text().split("cohorts:\n", 1)[1]
    (specs / f"{trait}.yaml").write_text(spec.read_text() + body.replace("  GSE781:", "  ../../ESC_COHORT:", 1))
    (specs / "Esc.yaml").write_text(f"trait: ../../ESC_TRAIT\ncohorts:\n{body}")
    task = json.loads((root / "metadata/task_info.json").read_text())
    task["../../ESC_TRAIT"] = {"related_genes": [], "conditions": []}
    (root / "metadata/task_info.json").write_text(json.dumps(task))
    bucket = moto_s3.new_bucket()
    out = layout.join(bucket, "deep", "out")
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as lc, \
            Client(lc) as client:
        s = run_preprocess(str(root), str(specs), out, client, progress=False)
        a = analyze.run_analyze(str(root), out, client, mode="fast", progress=False)
    assert s["done"] == 1 and "unsafe cohort name" in s["failed"][f"{trait}/../../ESC_COHORT"]
    assert "unsafe trait name" in s["failed"]["../../ESC_TRAIT/GSE781"]
    assert a["written"] == 1
    assert any("unsafe trait name" in d["reason"] for d in a["no_cohort_problems"])
    s3, _ = fs.get_fs(bucket)
    s3.invalidate_cache()
    keys = s3.find(bucket[len("s3://"):])
    assert keys and all(k.startswith(f"{bucket[len('s3://'):]}/deep/out/") for k in keys), \
        [k for k in keys if "/deep/out/" not in k]
    assert not any("ESC" in k for k in keys)

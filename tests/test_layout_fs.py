"""Path conventions and atomic fsspec writes (local disk and memory://)."""

from __future__ import annotations

import json
import uuid

import pytest

from genotex_dask import layout
from genotex_dask.cli import build_parser
from genotex_dask.io import fs


def test_join_never_doubles_separators():
    assert layout.join("s3://b/prefix/", "/preprocess/", "T") == "s3://b/prefix/preprocess/T"
    assert layout.join("/a", "", "b") == "/a/b"


def test_genotex_output_paths():
    p = layout.PreprocessPaths("out", "Asthma", "GSE1")
    assert p.gene_data == "out/preprocess/Asthma/gene_data/GSE1.csv"
    assert p.clinical_data == "out/preprocess/Asthma/clinical_data/GSE1.csv"
    assert p.linked_data == "out/preprocess/Asthma/GSE1.csv"
    assert p.cohort_info == "out/preprocess/Asthma/cohort_info.json"
    assert layout.significant_genes_path("o", "Asthma", None).endswith(
        "regress/Asthma/significant_genes_condition_None.json")
    assert layout.significant_genes_path("o", "Asthma", "Age").endswith("significant_genes_condition_Age.json")


def test_trait_normalization_and_file_kinds():
    assert layout.normalize_trait("Crohn's  Disease") == "Crohns_Disease"
    assert layout.platform_from_matrix_name("GSE781-GPL96_series_matrix.txt.gz") == "GPL96"
    assert layout.platform_from_matrix_name("GSE55235_series_matrix.txt.gz") is None
    assert layout.is_series_matrix("GSE1_series_matrix.txt.gz")
    assert not layout.is_series_matrix("TCGA.CHOL.sampleMap_CHOL_clinicalMatrix")
    assert layout.is_tcga_clinical("TCGA.CHOL.sampleMap_CHOL_clinicalMatrix")
    assert layout.is_tcga_expression("TCGA.CHOL.sampleMap_HiSeqV2_PANCAN.gz")


@pytest.fixture(params=["local", "memory"])
def root(request, tmp_path):
    if request.param == "local":
        return str(tmp_path)
    return f"memory://t-{uuid.uuid4().hex}"


def test_atomic_json_roundtrip_leaves_no_temporaries(root):
    url = layout.join(root, "a", "b", "x.json")
    fs.write_json_atomic(url, {"k": [1, 2]})
    fs.write_json_atomic(url, {"k": [3]})
    assert fs.read_json(url) == {"k": [3]}
    assert fs.leftover_temporaries(root) == []
    assert fs.listdir(layout.join(root, "a", "b")) == ["x.json"]


def test_atomic_dir_replaces_whole_or_not_at_all(root):
    target = layout.join(root, "store", "c.zarr")
    with fs.atomic_dir(target) as tmp:
        fs.write_text_atomic(layout.join(tmp, "part"), "one")
    assert fs.read_text(layout.join(target, "part")) == "one"
    with pytest.raises(RuntimeError), fs.atomic_dir(target) as tmp:
        fs.write_text_atomic(layout.join(tmp, "part"), "two")
        raise RuntimeError("killed mid-write")
    assert fs.read_text(layout.join(target, "part")) == "one"
    assert fs.leftover_temporaries(root) == []


def test_local_atomic_write_survives_a_failed_writer(tmp_path, monkeypatch):
    url = str(tmp_path / "f.json")
    fs.write_json_atomic(url, {"v": 1})

    def boom(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(fs.os, "replace", boom)
    with pytest.raises(OSError):
        fs.write_json_atomic(url, {"v": 2})
    monkeypatch.undo()
    assert json.loads((tmp_path / "f.json").read_text()) == {"v": 1}
    assert fs.leftover_temporaries(str(tmp_path)) == []


def test_cli_parses_every_stage():
    p = build_parser()
    a = p.parse_args(["preprocess", "ROOT", "--specs", "S", "--out", "O", "--compat", "genotex",
                      "--scheduler", "tcp://127.0.0.1:8786"])
    assert (a.root, a.specs, a.out, a.compat, a.scheduler) == ("ROOT", "S", "O", "genotex", "tcp://127.0.0.1:8786")
    a = p.parse_args(["analyze", "R", "--out", "O"])
    assert a.mode == "fast"
    a = p.parse_args(["specs", "suggest", "R", "--out", "S"])
    assert a.out == "S"
    with pytest.raises(SystemExit):
        p.parse_args(["analyze", "R", "--out", "O", "--mode", "sloppy"])


def test_sweep_removes_only_temporaries(root):
    fs.write_json_atomic(layout.join(root, "out", "done.json"), {"ok": 1})
    leftover = layout.join(root, "out", "T", f"{fs.TMP_MARK}abc-x.csv")
    fs.write_bytes_atomic(leftover, b"half")
    with pytest.raises(RuntimeError), fs.atomic_dir(layout.join(root, "out", "c.zarr")) as tmp:
        fs.write_text_atomic(layout.join(tmp, "a"), "x")
        raise RuntimeError
    assert fs.leftover_temporaries(root) != []
    removed = fs.sweep_temporaries(layout.join(root, "out"))
    assert any(r.endswith("abc-x.csv") for r in removed)
    assert fs.leftover_temporaries(root) == []
    assert fs.read_json(layout.join(root, "out", "done.json")) == {"ok": 1}

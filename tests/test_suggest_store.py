"""`specs suggest` with a store (as `run` calls it) reads what ingest stored, never the raw files again, and skips
cohorts ingest marked failed (with the cause) instead of re-reading them."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

from genotex_dask.io import geo
from genotex_dask.pipelines.ingest import run_ingest
from genotex_dask.pipelines.specs import run_suggest_specs
from genotex_dask.preprocess.specs import parse_specs

DATA = Path(__file__).parent / "data"
TRAIT = "Kidney_Clear_Cell_Carcinoma"


def test_suggest_reads_the_store_and_skips_failed_cohorts(tmp_path, client, monkeypatch):
    root = tmp_path / "root"
    shutil.copytree(DATA / "genotex_gse781", root)
    ra = root / "input/GEO/Rheumatoid_Arthritis"
    (ra / "GSE29746").mkdir(parents=True)
    shutil.copy(DATA / "geo_gse29746/GSE29746_series_matrix.txt.gz", ra / "GSE29746")
    bad = ra / "GSE1"
    bad.mkdir()
    with gzip.open(bad / "GSE1_series_matrix.txt.gz", "wb") as f:
        f.write(b'!Sample_title\t"a"\t"b"\n!series_matrix_table_begin\n"ID_REF"\t"GSM1"\t"GSM2"\n"p1"\t1\n')
    store = tmp_path / "store"
    s = run_ingest(str(root), str(store), client, progress=False)
    assert list(s["failed"]) == ["GEO/Rheumatoid_Arthritis/GSE1"]
    raw = run_suggest_specs(str(root), str(tmp_path / "raw"))              # from the input files
    assert "Rheumatoid_Arthritis/GSE1" in raw["errors"]

    def no_raw_reads(*a, **k):
        raise AssertionError("a raw series matrix was read again")
    monkeypatch.setattr(geo, "read_series_matrix", no_raw_reads)
    res = run_suggest_specs(str(root), str(tmp_path / "specs"), store=str(store))
    assert res["source"] == "store" and not res["errors"]
    assert "ingest failed" in res["skipped"]["Rheumatoid_Arthritis/GSE1"]
    for trait in (TRAIT, "Rheumatoid_Arthritis"):
        mine = parse_specs((tmp_path / "specs" / f"{trait}.yaml").read_text())
        theirs = parse_specs((tmp_path / "raw" / f"{trait}.yaml").read_text())
        assert set(mine) == {c for c in theirs if c != "GSE1"}
        for c, sp in mine.items():   # the same suggestion as from the raw files
            assert sp.fingerprint() == theirs[c].fingerprint() and sp.note == theirs[c].note


def test_suggest_on_the_cluster_writes_the_same_specs(tmp_path, client):
    """With a client the stored cohorts are read by tasks (one per cohort): the same files and summary as the
    serial reading, a series with two matrix files included (the first one kept, with its note)."""
    root = tmp_path / "root"
    shutil.copytree(DATA / "genotex_gse781", root)
    ra = root / "input/GEO/Rheumatoid_Arthritis/GSE29746"
    ra.mkdir(parents=True)
    src = DATA / "geo_gse29746/GSE29746_series_matrix.txt.gz"
    shutil.copy(src, ra / "GSE29746-GPL1_series_matrix.txt.gz")
    shutil.copy(src, ra / "GSE29746-GPL2_series_matrix.txt.gz")
    store = tmp_path / "store"
    run_ingest(str(root), str(store), client, progress=False)
    serial = run_suggest_specs(str(root), str(tmp_path / "serial"), store=str(store))
    dist = run_suggest_specs(str(root), str(tmp_path / "dist"), store=str(store), client=client)
    names = sorted(p.name for p in (tmp_path / "serial").iterdir() if p.suffix == ".yaml")
    assert names == sorted(p.name for p in (tmp_path / "dist").iterdir() if p.suffix == ".yaml")
    assert f"{TRAIT}.yaml" in names and "Rheumatoid_Arthritis.yaml" in names
    for n in names:
        assert (tmp_path / "serial" / n).read_text() == (tmp_path / "dist" / n).read_text()
    assert {k: v for k, v in serial.items() if k not in ("seconds", "out")} == \
        {k: v for k, v in dist.items() if k not in ("seconds", "out")}
    ra_spec = parse_specs((tmp_path / "dist" / "Rheumatoid_Arthritis.yaml").read_text())["GSE29746"]
    assert ra_spec.matrix == "GSE29746-GPL1_series_matrix.txt.gz" and "2 matrix files" in ra_spec.note

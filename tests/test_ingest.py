"""Ingest pipeline on a GenoTEX tree with real cohorts and one broken cohort per kind of bad input."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

import anndata as ad
import fsspec
import numpy as np
import pandas as pd
import pytest

from genotex_dask.io import fs, store
from genotex_dask.pipelines.ingest import SUMMARY_NAME, run_ingest
from tests._geo_files import GSE781_DIR, geoparse_gse781, matrix_text, truncated_copy, write_gz

DLBC = Path(__file__).parent / "data" / "tcga" / "input" / "TCGA" / "TCGA_Large_Bcell_Lymphoma_(DLBC)"
SMALL_SOFT = ("^SERIES = GSE9\n!Series_title = small\n^PLATFORM = GPL1\n!Platform_title = toy array\n"
              "!platform_table_begin\nID\tGene Symbol\np1\tTP53\np2\tEGFR /// ERBB2\n!platform_table_end\n")
BROKEN = {  # cohort dir -> (what is wrong, expected words in the message)
    "GSE_TRUNC": ("truncated gzip", "gzip"),
    "GSE_NOMARK": ("no table begin marker", "!series_matrix_table_begin"),
    "GSE_RAGGED": ("ragged row", "ragged"),
    "GSE_NONNUM": ("non-numeric cell", "non-numeric"),
    "GSE_DUP": ("duplicate sample IDs", "duplicate sample"),
    "GSE_EMPTY": ("empty directory", "empty cohort directory"),
}


def _make_tree(root: Path) -> None:
    geo = root / "input" / "GEO"
    shutil.copytree(GSE781_DIR, geo / "Kidney_Clear_Cell_Carcinoma" / "GSE781")
    small = geo / "Toy_Trait" / "GSE9"
    write_gz(small / "GSE9-GPL1_series_matrix.txt.gz", matrix_text())
    write_gz(small / "GSE9-GPL2_series_matrix.txt.gz", matrix_text(samples=("GSM7", "GSM8", "GSM9")))
    write_gz(small / "GSE9_family.soft.gz", SMALL_SOFT)
    bad = geo / "Bad_Trait"
    truncated_copy(GSE781_DIR / "GSE781-GPL96_series_matrix.txt.gz",
                   bad / "GSE_TRUNC" / "GSE_TRUNC_series_matrix.txt.gz")
    write_gz(bad / "GSE_NOMARK" / "GSE_NOMARK_series_matrix.txt.gz", matrix_text(table_begin=False))
    write_gz(bad / "GSE_RAGGED" / "GSE_RAGGED_series_matrix.txt.gz",
             matrix_text(rows=[['"p1"', "1", "2", "3"], ['"p2"', "1", "2"]]))
    write_gz(bad / "GSE_NONNUM" / "GSE_NONNUM_series_matrix.txt.gz",
             matrix_text(rows=[['"p1"', "1", "2", "3"], ['"p2"', "1", "n/d", "3"]]))
    write_gz(bad / "GSE_DUP" / "GSE_DUP_series_matrix.txt.gz", matrix_text(samples=("GSM1", "GSM1", "GSM2")))
    (bad / "GSE_EMPTY").mkdir(parents=True)
    tcga = root / "input" / "TCGA"
    shutil.copytree(DLBC, tcga / DLBC.name)
    (tcga / "TCGA_Empty_(XX)").mkdir(parents=True)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory, client):
    base = tmp_path_factory.mktemp("ingest")
    root, st = base / "root", base / "store"
    _make_tree(root)
    summary = run_ingest(str(root), str(st), client, progress=False)
    return root, st, summary


def test_summary_counts_and_failures_name_file_and_cause(ingested):
    root, st, summary = ingested
    assert summary["n_cohorts"] == 4 + len(BROKEN) + 1
    assert summary["ingested"] == 4 and summary["skipped"] == 0
    failed = summary["failed"]
    assert set(failed) == {f"GEO/Bad_Trait/{k}" for k in BROKEN} | {"TCGA/TCGA_Empty_(XX)"}
    for cohort, (_, words) in BROKEN.items():
        msg = failed[f"GEO/Bad_Trait/{cohort}"]
        assert str(root / "input" / "GEO" / "Bad_Trait" / cohort) in msg and words in msg, msg
    assert "empty cohort directory" in failed["TCGA/TCGA_Empty_(XX)"]
    on_disk = json.loads((st / SUMMARY_NAME).read_text())
    assert on_disk["failed"] == failed and on_disk["ingested"] == 4
    assert fs.leftover_temporaries(str(st)) == []
    for cohort in BROKEN:  # no group at all for a failed cohort
        assert not (st / "GEO" / "Bad_Trait" / f"{cohort}.zarr").exists()


@pytest.fixture(scope="module")
def geoparse():
    pytest.importorskip("GEOparse")
    return geoparse_gse781()


def _geoparse_matrix(gse, probes, samples) -> np.ndarray:
    cols = []
    for gsm in samples:
        t = gse.gsms[gsm].table
        cols.append(pd.to_numeric(t["VALUE"], errors="coerce").set_axis(t["ID_REF"].astype(str)).reindex(probes))
    return np.column_stack([c.to_numpy(dtype=float) for c in cols]).T  # samples x probes


def test_gse781_store_equals_geoparse_to_float32(ingested, geoparse):
    _, st, _ = ingested
    path = st / "GEO" / "Kidney_Clear_Cell_Carcinoma" / "GSE781.zarr"
    a = ad.read_zarr(str(path))  # plain anndata opens the cohort
    assert a.shape == (17, 22283) and a.X.dtype == np.float32
    expect = _geoparse_matrix(geoparse, list(a.var_names), list(a.obs_names))
    assert np.array_equal(np.isnan(a.X), np.isnan(expect))
    ok = ~np.isnan(expect)
    rel = np.abs(a.X[ok].astype(np.float64) - expect[ok]) / np.maximum(np.abs(expect[ok]), 1e-300)
    assert rel.max() <= 1e-6
    # var: the GPL96 annotation joined on probe ID; obs: the samples' metadata
    gpl = geoparse.gpls["GPL96"].table.set_index("ID")
    sym = gpl["Gene Symbol"].reindex(a.var_names)
    assert list(a.var["Gene Symbol"]) == [s if isinstance(s, str) else "" for s in sym]
    assert list(a.obs["source_name_ch1"]) == [geoparse.gsms[g].metadata["source_name_ch1"][0]
                                               for g in a.obs_names]
    u = store.read_uns(str(path))
    assert u["platform"]["id"] == "GPL96" and u["ingest"]["kind"] == "GEO"
    assert u["ingest"]["sources"]["matrix"]["name"] == "GSE781-GPL96_series_matrix.txt.gz"
    assert u["series"]["title"] == [geoparse.metadata["title"][0]]


def test_float64_store_is_exact(tmp_path, client, geoparse):
    root = tmp_path / "root"
    shutil.copytree(GSE781_DIR, root / "input" / "GEO" / "Kidney_Clear_Cell_Carcinoma" / "GSE781")
    summary = run_ingest(str(root), str(tmp_path / "st"), client, progress=False, float64=True)
    assert summary["ingested"] == 1 and not summary["failed"]
    a = store.open_cohort(str(tmp_path / "st" / "GEO" / "Kidney_Clear_Cell_Carcinoma" / "GSE781.zarr"))
    assert a.X.dtype == np.float64
    expect = _geoparse_matrix(geoparse, list(a.var_names), list(a.obs_names))
    np.testing.assert_array_equal(a.X, expect)


def test_multi_matrix_series_and_missing_platform_annotation(ingested):
    _, st, summary = ingested
    assert {"GEO/Toy_Trait/GSE9-GPL1", "GEO/Toy_Trait/GSE9-GPL2"} <= set(summary["cohorts"])
    one = store.open_cohort(str(st / "GEO" / "Toy_Trait" / "GSE9-GPL1.zarr"))
    assert list(one.var["Gene Symbol"]) == ["TP53", "EGFR /// ERBB2", ""]
    assert list(one.obs["characteristics_ch1_0"]) == ["disease state: RA", "disease state: control",
                                                      "disease state: RA"]
    np.testing.assert_array_equal(np.isnan(one.X), [[False, False, False], [False, True, False],
                                                    [True, False, False]])
    two = store.open_cohort(str(st / "GEO" / "Toy_Trait" / "GSE9-GPL2.zarr"))
    assert "GPL2 not in GSE9_family.soft.gz" in two.uns["platform"]["annotation_note"]


def test_tcga_cohort(ingested):
    _, st, _ = ingested
    path = str(st / "TCGA" / f"{DLBC.name}.zarr")
    a = store.open_cohort(path)
    expr = pd.read_csv(DLBC / "TCGA.DLBC.sampleMap_HiSeqV2_PANCAN.gz", sep="\t", index_col=0)
    clin = pd.read_csv(DLBC / "TCGA.DLBC.sampleMap_DLBC_clinicalMatrix", sep="\t", index_col=0)
    assert list(a.obs_names) == list(expr.columns) and list(a.var_names) == list(expr.index)
    assert store.read_var(path).index.name == "sample"  # the Xena header cell, as GenoTEX's CSVs carry it
    np.testing.assert_allclose(a.X, expr.to_numpy().T.astype(np.float32), rtol=0, atol=0)
    assert list(a.obs["gender"]) == list(clin.loc[list(expr.columns), "gender"])  # linked by barcode
    from genotex_dask.io.tcga import parse_xena_clinical
    pd.testing.assert_frame_equal(parse_xena_clinical(a.uns["clinical_matrix_tsv"]), clin)
    assert sum(v.startswith("?|") for v in a.var_names) == 29


def test_rerun_skips_unchanged_and_redoes_changed(ingested, client):
    root, st, first = ingested
    again = run_ingest(str(root), str(st), client, progress=False)
    assert again["skipped"] == 4 and again["ingested"] == 0 and set(again["failed"]) == set(first["failed"])
    # change one source: only that cohort is ingested again
    m = root / "input" / "GEO" / "Toy_Trait" / "GSE9" / "GSE9-GPL1_series_matrix.txt.gz"
    write_gz(m, matrix_text(rows=[['"p1"', "9", "9", "9"]]))
    os.utime(m, (1e9, 1e9))
    third = run_ingest(str(root), str(st), client, progress=False)
    assert third["ingested"] == 1 and third["skipped"] == 3
    assert third["cohorts"]["GEO/Toy_Trait/GSE9-GPL1"]["status"] == "ingested"
    assert store.open_cohort(str(st / "GEO" / "Toy_Trait" / "GSE9-GPL1.zarr")).shape == (3, 1)
    assert fs.leftover_temporaries(str(st)) == []


def test_memory_filesystem_root_and_store(client, tmp_path):
    mem = fsspec.filesystem("memory")
    base = f"/ingest-mem-{tmp_path.name}"
    mem.pipe(f"{base}/root/input/GEO/T/GSE9/GSE9_series_matrix.txt.gz", gzip.compress(matrix_text().encode()))
    mem.pipe(f"{base}/root/input/GEO/T/GSE9/GSE9_family.soft.gz", gzip.compress(SMALL_SOFT.encode()))
    mem.pipe(f"{base}/root/input/GEO/T/GSE8/GSE8_series_matrix.txt.gz",
             gzip.compress(matrix_text(table_end=False).encode()))
    summary = run_ingest(f"memory://{base}/root", f"memory://{base}/store", client, progress=False)
    assert summary["ingested"] == 1 and list(summary["failed"]) == ["GEO/T/GSE8"]
    assert "!series_matrix_table_end" in summary["failed"]["GEO/T/GSE8"]
    url = f"memory://{base}/store/GEO/T/GSE9.zarr"
    assert store.is_complete(url)
    a = store.open_cohort(url)
    assert list(a.var["Gene Symbol"]) == ["TP53", "EGFR /// ERBB2", ""]
    assert store.cohort_X_dask(url).shape == (3, 3)
    assert fs.leftover_temporaries(f"memory://{base}/store") == []
    assert run_ingest(f"memory://{base}/root", f"memory://{base}/store", client, progress=False)["skipped"] == 1


def _group_files(st: Path) -> dict[str, bytes]:
    skip = {store.COMPLETE_MARK, fs.COMPLETE_MARK}
    return {str(p.relative_to(st)): p.read_bytes() for p in sorted(st.rglob("*"))
            if p.is_file() and p.name not in skip and "platforms" not in p.relative_to(st).parts
            and p.name != SUMMARY_NAME}


def test_shared_platform_annotation_gives_the_same_groups(tmp_path, client, monkeypatch):
    from genotex_dask.pipelines import ingest as ing
    from genotex_dask.synth.corpus import write_corpus

    root = tmp_path / "corpus"
    write_corpus(str(root), traits=3, cohorts_per_trait=3, samples=20, probes=600, platforms=2, seed=1)
    ing._platform_memory.clear()
    a = run_ingest(str(root), str(tmp_path / "a"), client, progress=False)  # first of a platform parses
    keys = sorted(p.name for p in (tmp_path / "a" / ing.PLATFORMS_DIR).iterdir() if not p.name.startswith("."))
    geo = [k for k in a["cohorts"] if k.startswith("GEO/")]
    # one stored annotation per platform of the corpus (read from the matrices' own platform lines), not per cohort
    platforms = set()
    for mx in root.glob("input/GEO/*/*/*series_matrix.txt.gz"):
        with gzip.open(mx, "rt") as f:
            platforms |= {line.split("\t", 1)[1].strip().strip('"') for line in f
                          if line.startswith("!Series_platform_id")}
    assert len(keys) == len(platforms) == 2 and len(geo) > 2 and not a["failed"]
    # every cohort parsed from its own SOFT (no sharing at all)
    ing._platform_memory.clear()
    with monkeypatch.context() as m:
        m.setattr(ing, "load_platform", lambda store_root, key: None)
        run_ingest(str(root), str(tmp_path / "b"), client, progress=False)
    # every cohort's annotation taken from the store's platforms/ written by an earlier run (no parsing)
    ing._platform_memory.clear()
    shutil.copytree(tmp_path / "a" / ing.PLATFORMS_DIR, tmp_path / "c" / ing.PLATFORMS_DIR)
    with monkeypatch.context() as m:
        m.setattr(ing, "read_soft_platforms", lambda *a, **k: pytest.fail("parsed a known platform table"))
        c = run_ingest(str(root), str(tmp_path / "c"), client, progress=False)
    assert not c["failed"]
    fa, fb, fc = (_group_files(tmp_path / x) for x in "abc")
    assert fa.keys() == fb.keys() == fc.keys() and any("/var/" in k for k in fa)
    assert [k for k in fa if fa[k] != fb[k]] == [] and [k for k in fa if fa[k] != fc[k]] == []
    # and the group reads back with its annotation
    one = next(k for k in geo if a["cohorts"][k]["status"] == "ingested")
    var = store.read_var(a["cohorts"][one]["store"])
    assert len(var.columns) > 3 and (var.iloc[:, 0] != "").any()

"""The first cohort of a platform: its annotation table is encoded into the var group straight from pyarrow
(store.encode_platform_var, anndata_zarr.vlen_utf8).  Oracles: numcodecs' own VLenUTF8 / the Encoder's
str path for the bytes, the pandas path (drop duplicate IDs keeping the first, reindex by the probes, the
frame cleaned and encoded) for whole groups, and a plain pandas reading of the table text for the values."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from numcodecs import VLenUTF8

from genotex_dask.io import anndata_zarr, store
from genotex_dask.io.geo import NA_VALUES
from genotex_dask.pipelines import ingest as ing
from tests._geo_files import matrix_text, write_gz

WORDS = ["", "TP53", "A /// B", "Ä-ß ∆ 東京", "x" * 300, "0", "a,b", '"q"', " lead", "NA", "null", "nan", "-", "😀"]


@pytest.mark.parametrize("seed", range(6))
def test_vlen_utf8_equals_numcodecs(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    cells = [WORDS[k] for k in rng.integers(0, len(WORDS), n)]
    arr = pa.array(["lead-in"] * 3 + cells, type=pa.large_string() if seed % 2 else pa.string())[3:]  # offset 3
    lo = int(rng.integers(0, n))
    part = arr.slice(lo, n - lo)
    size = (n - lo) + int(rng.integers(0, 5))
    padded = np.array(cells[lo:] + [""] * (size - (n - lo)), dtype=object)
    got = anndata_zarr.vlen_utf8(part, size)
    if not any(padded):
        assert got is None
    else:
        assert bytes(got) == bytes(VLenUTF8().encode(padded))


def test_arrow_strings_same_objects_as_strings_over_several_chunks():
    n = 1_000_003  # four chunks, the last partial, and an all-empty chunk left out
    cells = np.array([("" if i < 250_001 else f"v{i % 97}") for i in range(n)], dtype=object)
    ours: dict = {}
    ref: dict = {}
    anndata_zarr.Encoder(ours).arrow_strings("var/s", pa.array(cells, type=pa.string()))
    anndata_zarr.Encoder(ref).strings("var/s", cells)
    assert sorted(ours) == sorted(ref) and "var/s/c/0" not in ours and "var/s/c/3" in ours
    assert all(ours[k] == ref[k] for k in ref)


PROBES = ["p1", "p2", "p3", "NA", "p5", "p2b", "p7"]
TABLE = [  # ID, Gene Symbol, GB/ACC, ID (a second column of that name), SPOT_ID
    ["p2", "EGFR /// ERBB2", "NM_1", "x", "null"],
    ["p1", "TP53", "", "y", "-"],
    ["p2", "DUPLICATE", "NM_9", "z", "dup"],        # a duplicated ID: the first row wins
    ["NA", "NOT A PROBE", "NM_3", "w", "v"],         # a missing ID matches no probe, not the probe "NA"
    ["p5", "Ä-ß 東京", "NA", "", "n/a"],
    ["unused", "ZZZ", "NM_4", "u", "t"],              # in the table, not in the matrix
    ["p7", "x" * 300, "nan", "N/A", "😀"],
]


def _cohort(tmp_path):
    d = tmp_path / "input" / "GEO" / "T" / "GSE9"
    rows = [[f'"{p}"', "1.5", "2", "3"] for p in PROBES]
    write_gz(d / "GSE9_series_matrix.txt.gz", matrix_text(rows=rows))
    table = "\n".join("\t".join(r) for r in [["ID", "Gene Symbol", "GB/ACC", "ID", "SPOT_ID"], *TABLE])
    write_gz(d / "GSE9_family.soft.gz", "^SERIES = GSE9\n!Series_title = t\n^PLATFORM = GPL1\n!Platform_title = toy\n"
             f"!platform_table_begin\n{table}\n!platform_table_end\n^SAMPLE = GSM1\n!sample_table_begin\n"
             "ID_REF\tVALUE\np1\t1\n!sample_table_end\n")
    (job,) = ing.discover(str(tmp_path), str(tmp_path / "unused"))
    return job


def _files(url: str) -> dict[str, bytes]:
    from pathlib import Path

    root = Path(url)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name not in (store.COMPLETE_MARK, ".complete")}


def test_first_cohort_of_a_platform_same_group_as_the_pandas_path(tmp_path, monkeypatch):
    job = _cohort(tmp_path)
    ing._platform_memory.clear()
    direct = dataclasses.replace(job, out=str(tmp_path / "a.zarr"), store=str(tmp_path / "sa"))
    encoded, real = [], store.encode_platform_var
    from_kept, real_kept = [], ing.soft_table_from_bytes
    with monkeypatch.context() as m:  # spies: the direct encoder wrote this group, from the table's kept bytes
        m.setattr(store, "encode_platform_var", lambda *a, **k: encoded.append(real(*a, **k)) or encoded[-1])
        m.setattr(ing, "soft_table_from_bytes", lambda *a, **k: from_kept.append(real_kept(*a, **k)) or from_kept[-1])
        assert ing.ingest_cohort(direct)["status"] == "ingested"
    assert len(encoded) == 1 and encoded[0] is not None and len(from_kept) == 1 and from_kept[0] is not None
    ing._platform_memory.clear()
    with monkeypatch.context() as m:  # the pandas path (what ingest did before the direct encoder)
        m.setattr(store, "encode_platform_var", lambda *a, **k: None)
        via_pandas = dataclasses.replace(job, out=str(tmp_path / "b.zarr"), store=str(tmp_path / "sb"))
        assert ing.ingest_cohort(via_pandas)["status"] == "ingested"
    ing._platform_memory.clear()
    parsed, real_parse = [], ing.soft_table_from_bytes
    with monkeypatch.context() as m:  # the table read from the file a second time, not from the kept bytes
        m.setattr(ing, "_expect_new_platform", lambda gpl: False)
        m.setattr(ing, "soft_table_from_bytes", lambda *a, **k: parsed.append(real_parse(*a, **k)) or parsed[-1])
        reread = dataclasses.replace(job, out=str(tmp_path / "r.zarr"), store=str(tmp_path / "sr"))
        assert ing.ingest_cohort(reread)["status"] == "ingested"
    assert parsed == [None]
    fa, fb, fr = _files(direct.out), _files(via_pandas.out), _files(reread.out)
    assert fa.keys() == fb.keys() == fr.keys() and [k for k in fa if fa[k] != fb[k] or fa[k] != fr[k]] == []
    # both kept the same encoded annotation for the platform's next cohorts
    assert _files(str(tmp_path / "sa")).keys() == _files(str(tmp_path / "sb")).keys()

    # values against plain pandas over the table text
    text = "\n".join("\t".join(r) for r in [["ID", "Gene Symbol", "GB/ACC", "ID.1", "SPOT_ID"], *TABLE])
    ref = pd.read_csv(io.StringIO(text), sep="\t", dtype=str, keep_default_na=False, na_values=NA_VALUES)
    ref = ref.drop_duplicates(subset="ID", keep="first").set_index("ID").reindex(PROBES).fillna("")
    var = store.read_var(direct.out)
    assert list(var.index) == PROBES and list(var.columns) == ["Gene Symbol", "GB/ACC", "ID.1", "SPOT_ID"]
    assert (var.to_numpy() == ref.to_numpy()).all()
    assert list(var["Gene Symbol"])[:3] == ["TP53", "EGFR /// ERBB2", ""]
    uns = store.read_uns(direct.out)
    assert uns["platform"]["n_annotated"] == 4  # p1, p2, p5, p7
    assert uns["column_names"]["var"] == {"GB_ACC": "GB/ACC"}

    # a second cohort of the platform takes the kept annotation, identical bytes again
    again = dataclasses.replace(job, out=str(tmp_path / "c.zarr"), store=str(tmp_path / "sa"))
    with monkeypatch.context() as m:
        m.setattr(ing, "read_soft_platforms", lambda *a, **k: pytest.fail("parsed a known platform table"))
        assert ing.ingest_cohort(again)["status"] == "ingested"
    fc = _files(again.out)
    assert [k for k in fa if k != "uns/genotex/c" and fa[k] != fc[k]] == []


def test_declines_what_the_encoder_does_not_cover():
    t = pa.table({"ID": ["p1"], "__reserved": ["a"]})
    assert store.encode_platform_var(t, np.array(["p1"], dtype=object)) is None
    assert store.encode_platform_var(pa.table({"ID": ["p1"]}), np.array([], dtype=object)) is None
    objects, renamed, n = store.encode_platform_var(pa.table({"ID": ["p1", None]}), np.array(["p1", "q"], dtype=object))
    assert n == 1 and renamed == {} and sorted(objects) == ["var/ID/c/0", "var/ID/zarr.json", "var/zarr.json"]


@pytest.mark.parametrize("gpl", ["GPL96", "GPL97"])
def test_table_from_kept_bytes_equals_the_file_read_again(gpl):
    """Real GSE781 family SOFT (two platforms): the digest pass's kept bytes parse to the table that reading
    the file again gives, and the digest is the same with or without keeping them."""
    from genotex_dask.io import geo
    from tests._geo_files import GSE781_SOFT

    ent = geo.read_soft_platform_digest(str(GSE781_SOFT), gpl, keep=True)
    assert ent.table_digest == geo.read_soft_platform_digest(str(GSE781_SOFT), gpl).table_digest
    got = geo.soft_table_from_bytes(str(GSE781_SOFT), ent).arrow_table
    ref = geo.read_soft_platforms(str(GSE781_SOFT), [gpl], arrow=True)[gpl].arrow_table
    assert got.num_rows > 1000 and got.equals(ref)


def test_table_from_kept_bytes_reports_a_bad_row_as_the_file_reader_does(tmp_path):
    from genotex_dask.io import geo
    from genotex_dask.io.errors import InputFormatError

    soft = write_gz(tmp_path / "b.soft.gz", "^PLATFORM = GPL1\n!platform_table_begin\nID\tSYM\np1\tA\np2\tB\textra\n"
                    "!platform_table_end\n")
    ent = geo.read_soft_platform_digest(str(soft), "GPL1", keep=True)
    with pytest.raises(InputFormatError) as kept:
        geo.soft_table_from_bytes(str(soft), ent)
    with pytest.raises(InputFormatError) as again:
        geo.read_soft_platforms(str(soft), ["GPL1"], arrow=True)
    assert str(kept.value) == str(again.value) and "line 5: ragged row" in str(kept.value)

"""GEO platform files under their GEO names, beside the cohort or in a shared --platforms directory; when none is
found, the error names the cohort, the platform and the files looked for (not the spec)."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from genotex_dask import api
from genotex_dask.io.platforms import candidates, read_miniml_table, read_platform_annotation

DATA = Path(__file__).parent / "data"
GSE781_ROOT = DATA / "genotex_gse781"
SPEC_781 = Path(__file__).parent.parent / "genotex_dask" / "specs" / "Kidney_Clear_Cell_Carcinoma.yaml"
TRAIT = "Kidney_Clear_Cell_Carcinoma"


def test_candidates_follow_geo_names_and_never_a_longer_id():
    names = ["GPL96.txt.gz", "GPL9600.annot.gz", "GPL96.annot.gz", "GPL96-tbl-1.txt", "GPL96_family.soft.gz",
             "GPL570.annot.gz", "GPL96.soft", "GPL96_family.xml"]
    files = {n: f"d/{n}" for n in names}
    assert candidates("GPL96", files) == ["d/GPL96.soft", "d/GPL96.txt.gz", "d/GPL96_family.soft.gz",
                                          "d/GPL96.annot.gz", "d/GPL96-tbl-1.txt"]
    assert candidates("gpl570", files) == ["d/GPL570.annot.gz"]
    assert candidates("GPL6244", files) == []


def test_real_platform_soft_and_annot_files_are_read():
    t, title, url = read_platform_annotation("GPL96", {"GPL96.txt.gz": str(DATA / "geo_gpl96/GPL96.txt.gz")})
    assert t.columns[0] == "ID" and "Gene Symbol" in t.columns and len(t) == 1500 and "U133A" in title
    t, _, _ = read_platform_annotation("GPL97", {"GPL97.annot.gz": str(DATA / "geo_gpl97_annot/GPL97.annot.gz")})
    assert t.columns[0] == "ID" and "Gene symbol" in t.columns


def test_miniml_table_gets_its_column_names_from_the_xml(tmp_path):
    # the shape of a MINiML download (GPLxxx_family.xml + GPLxxx-tbl-1.txt without a header line)
    (tmp_path / "GPL1_family.xml").write_text(
        '<MINiML><Platform iid="GPL1"><Data-Table>\n<Column position="1">\n<Name>ID</Name>\n</Column>\n'
        '<Column position="2">\n<Name>Gene Symbol</Name>\n</Column>\n</Data-Table></Platform>'
        '<Sample iid="GSM1"><Column position="1"><Name>ID_REF</Name></Column></Sample></MINiML>')
    (tmp_path / "GPL1-tbl-1.txt").write_text("1007_s_at\tDDR1 /// MIR4640\n1053_at\tRFC2\n")
    files = {p.name: str(p) for p in tmp_path.iterdir()}
    t = read_miniml_table(files["GPL1-tbl-1.txt"], files)
    assert list(t.columns) == ["ID", "Gene Symbol"] and t["Gene Symbol"].tolist() == ["DDR1 /// MIR4640", "RFC2"]
    del files["GPL1_family.xml"]
    with pytest.raises(ValueError, match="no header line"):
        read_miniml_table(files["GPL1-tbl-1.txt"], files)


def test_platform_from_a_shared_directory_and_a_clear_error_without_one(tmp_path, client):
    root = tmp_path / "root"
    shutil.copytree(GSE781_ROOT, root)
    d = root / f"input/GEO/{TRAIT}/GSE781"
    (d / "GSE781_family.soft.gz").unlink()   # the series SOFT is not there
    # a matrix named without its platform: the platform is known only from inside the file
    (d / "GSE781-GPL96_series_matrix.txt.gz").rename(d / "GSE781_series_matrix.txt.gz")
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / SPEC_781.name).write_text(SPEC_781.read_text().replace("GSE781-GPL96_series_matrix", "GSE781_series_matrix"))
    out = tmp_path / "out"
    s = api.preprocess(str(root), str(specs), str(out), client=client, progress=False)
    err = s["failed"][f"{TRAIT}/GSE781"]
    assert "GSE781" in err and "GPL96" in err and "GPL96.annot[.gz]" in err and "--platforms" in err
    assert "gene column" not in err
    # the platform file put into a shared directory: the cohort is re-ingested with it and becomes usable
    plat = tmp_path / "platforms"
    plat.mkdir()
    shutil.copy(DATA / "geo_gpl96/GPL96.txt.gz", plat / "GPL96.txt.gz")
    s = api.ingest(str(root), str(out / "store"), client=client, progress=False, platforms=str(plat))
    assert s["ingested"] == 1
    s = api.preprocess(str(root), str(specs), str(out), client=client, progress=False)  # --platforms remembered
    assert s["usable"] == [f"{TRAIT}/GSE781"], s["failed"]
    meta = json.loads((out / f"preprocess_meta/{TRAIT}/GSE781.json").read_text())
    assert 0 < meta["mapping"]["mapped"] <= 1500
    with gzip.open(plat / "GPL96.txt.gz", "rt") as f:
        assert f.readline().startswith("^PLATFORM")

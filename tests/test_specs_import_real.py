"""Real cohorts preprocessed with the decisions imported from GenoTEX's notebooks (the shipped set).

TCGA CHOL and DLBC (tests/data/tcga, UCSC Xena files) against what GenoTEX's notebooks printed:
``Bile_Duct_Cancer/TCGA`` printed 45 samples, 9 normals, usable, 19,848 genes after normalization;
``Large_B-cell_Lymphoma/TCGA`` printed 48 samples, every one a tumour, so "severely biased" and not usable.
GEO: GSE55457 (tests/data/geo_gse55457, GenoTEX's ``Osteoarthritis/GSE55457``) against its notebook's printed
sample size, trait counts and Age/Gender presence.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from genotex_dask.api import shipped_specs
from genotex_dask.pipelines.preprocess import run_preprocess
from genotex_dask.preprocess.specs import parse_specs

DATA = Path(__file__).parent / "data"
SHIPPED = Path(shipped_specs("genotex"))


def _imported(trait: str, cohort: str = "TCGA") -> dict:
    f = SHIPPED / f"{trait}.yaml"
    return {trait: {cohort: parse_specs(f.read_text(), str(f))[cohort]}}


@pytest.fixture(scope="module")
def tcga_run(tmp_path_factory, client):
    from genotex_dask.pipelines.ingest import run_ingest

    tmp = tmp_path_factory.mktemp("tcga_imported")
    root = tmp / "root"
    shutil.copytree(DATA / "tcga" / "input", root / "input")
    (root / "metadata").mkdir()
    shutil.copy(DATA / "genotex_gse781/metadata/gene_synonym.json", root / "metadata/gene_synonym.json")
    out = tmp / "out"
    run_ingest(str(root), str(out / "store"), client, progress=False, float64=True)
    specs = {**_imported("Bile_Duct_Cancer"), **_imported("Large_B-cell_Lymphoma")}
    return out, run_preprocess(str(root), specs, str(out), client, progress=False)


def test_imported_tcga_specs_are_the_notebooks_decisions():
    chol = _imported("Bile_Duct_Cancer")["Bile_Duct_Cancer"]["TCGA"]
    assert chol.tcga_directory == "TCGA_Bile_Duct_Cancer_(CHOL)"
    assert (chol.age_column, chol.gender_column) == ("age_at_initial_pathologic_diagnosis", "gender")
    assert chol.expect == {"trait_counts": {"0": 9, "1": 36}, "is_usable": True, "sample_size": 45,
                           "has_age": True, "has_gender": True, "n_genes": 19848}
    assert chol.provenance["notebook"] == "code/Bile_Duct_Cancer/TCGA.ipynb" and not chol.needs_review
    dlbc = _imported("Large_B-cell_Lymphoma")["Large_B-cell_Lymphoma"]["TCGA"]
    assert dlbc.tcga_directory == "TCGA_Large_Bcell_Lymphoma_(DLBC)"
    assert dlbc.expect["is_usable"] is False and dlbc.expect["sample_size"] == 48
    assert dlbc.expect["trait_counts"] == {"1": 48}


def test_chol_gives_the_printed_values(tcga_run):
    out, s = tcga_run
    c = s["cohorts"]["Bile_Duct_Cancer/TCGA"]
    assert c["status"] == "done"
    assert c["record"]["sample_size"] == 45 and c["record"]["is_usable"] is True
    assert c["trait_counts"] == {"0": 9, "1": 36}
    # the only golden difference is the gene count: GenoTEX's synonym table vs ours (NCBI 2022 via Bioconductor)
    mism = {m["field"]: m for m in c["golden"]}
    assert set(mism) <= {"n_genes"}
    if mism:
        assert mism["n_genes"]["expected"] == 19848
        print(f"CHOL genes: GenoTEX printed 19,848; ours {mism['n_genes']['got']:,}")
    assert 19000 < c["n_genes"] < 20530
    assert (out / "preprocess/Bile_Duct_Cancer/TCGA.csv").exists()


def test_dlbc_gives_the_printed_verdict(tcga_run):
    out, s = tcga_run
    c = s["cohorts"]["Large_B-cell_Lymphoma/TCGA"]
    rec = c["record"]
    assert rec["is_usable"] is False and rec["is_biased"] is True and rec["sample_size"] == 48
    assert c["trait_counts"] == {"1": 48}
    # tests/data keeps only 2,027 of DLBC's 20,530 gene rows, so the gene count is the one expected mismatch
    assert [m["field"] for m in c["golden"]] == ["n_genes"]
    assert s["golden_mismatches"]["Large_B-cell_Lymphoma/TCGA"]["mismatches"][0]["expected"] == 19848
    assert not (out / "preprocess/Large_B-cell_Lymphoma/TCGA.csv").exists()
    json.dumps(s)  # the summary (golden mismatches included) is JSON


def test_published_verdict_under_compat_and_correction_by_default(tcga_run, client):
    """A correction of kind `excluded` (e.g. GenoTEX's KIRC/KICH directory mix-up) reproduces the published
    'not usable' under compat="genotex" and processes the cohort by default."""
    out, _ = tcga_run
    text = (SHIPPED / "Bile_Duct_Cancer.yaml").read_text()
    spec = parse_specs(text, "Bile_Duct_Cancer.yaml")["TCGA"]
    spec.corrections = [{"field": "excluded", "reason": "test: published from mismatched directories",
                         "genotex": {"reason": "gene data from another directory"}}]
    spec.genotex = {"excluded": {"reason": "gene data from another directory"}}
    root = out.parent / "root"
    res = {}
    for compat in ("genotex", None):
        s = run_preprocess(str(root), {"Bile_Duct_Cancer": {"TCGA": spec}}, str(out.parent / f"o_{compat}"),
                           client, compat=compat, store=str(out / "store"), progress=False)
        res[compat] = s
    pub = res["genotex"]["cohorts"]["Bile_Duct_Cancer/TCGA"]
    assert pub["status"] == "filtered" and pub["record"]["is_usable"] is False
    assert "gene data from another directory" in pub["record"]["note"]
    assert res["genotex"]["golden_mismatches"]["Bile_Duct_Cancer/TCGA"]["corrected"] is False
    fixed = res[None]["cohorts"]["Bile_Duct_Cancer/TCGA"]
    assert fixed["status"] == "done" and fixed["record"]["is_usable"] is True


def test_golden_check_is_kept_for_resumed_cohorts(tcga_run, client):
    out, first = tcga_run
    root = out.parent / "root"
    specs = {**_imported("Bile_Duct_Cancer"), **_imported("Large_B-cell_Lymphoma")}
    again = run_preprocess(str(root), specs, str(out), client, progress=False)
    assert again["skipped"] == 2
    assert again["golden_mismatches"] == first["golden_mismatches"]
    part = json.loads((out / "preprocess_meta/Bile_Duct_Cancer/TCGA.json").read_text())
    assert part["trait_counts"] == {"0": 9, "1": 36} and [m["field"] for m in part["golden"]] == ["n_genes"]


def test_gse55457_gives_the_notebooks_printed_values(tmp_path, client):
    """A real GEO series of a GenoTEX cohort, preprocessed with the imported decisions (three-class clinical
    status: GenoTEX's converter puts RA with the controls against OA; gender and age rows by position)."""
    from genotex_dask.pipelines.ingest import run_ingest

    root = tmp_path / "root"
    cohort = root / "input/GEO/Osteoarthritis/GSE55457"
    cohort.mkdir(parents=True)
    shutil.copy(DATA / "geo_gse55457/GSE55457_series_matrix.txt.gz", cohort)
    shutil.copy(DATA / "geo_gpl96/GPL96.txt.gz", cohort)  # the platform file under its GEO name
    (root / "metadata").mkdir()
    shutil.copy(DATA / "genotex_gse781/metadata/gene_synonym.json", root / "metadata/gene_synonym.json")
    out = tmp_path / "out"
    specs = _imported("Osteoarthritis", "GSE55457")
    spec = specs["Osteoarthritis"]["GSE55457"]
    assert spec.provenance["notebook"] == "code/Osteoarthritis/GSE55457.ipynb" and not spec.needs_review
    run_ingest(str(root), str(out / "store"), client, progress=False)
    s = run_preprocess(str(root), specs, str(out), client, progress=False)
    c = s["cohorts"]["Osteoarthritis/GSE55457"]
    assert c["status"] == "done", c
    assert c["record"]["sample_size"] == 33 == spec.expect["sample_size"]
    assert c["trait_counts"] == spec.expect["trait_counts"] == {"0": 23, "1": 10}
    assert c["record"]["has_age"] and c["record"]["has_gender"]
    # tests/data keeps 10 of GPL96's 22,283 probes, so the gene count (13,542 printed) is the one mismatch left
    assert [m["field"] for m in c["golden"]] == ["n_genes"]

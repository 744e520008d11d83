"""Preprocess without a stage barrier: each cohort's task ingests it and maps the matrix it has just parsed.

The pipelined run (raw files straight into ``run_preprocess``) must write what the staged one (``run_ingest``,
then ``run_preprocess`` on the ingested store) writes, byte for byte; a broken cohort must not stop the others;
a partial run must resume with only the missing cohorts redone."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from genotex_dask import layout
from genotex_dask.io import fs
from genotex_dask.pipelines import preprocess as pp
from genotex_dask.pipelines.ingest import discover, ingest_cohort, run_ingest
from genotex_dask.preprocess.specs import CohortSpec, FeatureSpec

VOLATILE = ("run_summary.json",)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    from genotex_dask.synth.corpus import write_corpus

    out = tmp_path_factory.mktemp("pipelined") / "corpus"
    write_corpus(str(out), traits=2, cohorts_per_trait=3, samples=20, probes=300, platforms=1, seed=5)
    return out


def _specs(root: Path, extra_tcga_trait: str | None = None) -> dict:
    """Specs from the corpus's planted truth (GEO characteristics/title/source cohorts and its TCGA cohort); with
    ``extra_tcga_trait`` that trait also uses the TCGA directory (two spec cohorts of one input cohort)."""
    specs: dict = {}
    tcga_dir = None
    for key, t in json.loads((root / "truth.json").read_text())["cohorts"].items():
        trait, cid = key.split("/")
        if t["kind"] == "TCGA":
            tcga_dir = t["input_dir"].rsplit("/", 1)[-1]
            spec = CohortSpec(trait=trait, cohort=cid, kind="TCGA", tcga_directory=tcga_dir,
                              age_column=t["age_key"], gender_column=t["gender_key"])
        else:
            src = t["trait_source"]
            strip = (lambda c: c.split(":", 1)[1].strip()) if src == "characteristics" else (lambda c: c)
            gv = {k.split(":", 1)[1].strip(): float(v) for k, v in t["gender_values"].items()}
            spec = CohortSpec(trait=trait, cohort=cid, trait_spec=FeatureSpec(
                source=src, key=t["trait_key"], values={strip(k): float(v) for k, v in t["trait_values"].items()}),
                age=FeatureSpec(key=t["age_key"]) if t["age_key"] else None,
                gender=FeatureSpec(key=t["gender_key"], values=gv) if t["gender_key"] else None)
        specs.setdefault(trait, {})[cid] = spec
    if extra_tcga_trait:
        assert tcga_dir is not None
        specs[extra_tcga_trait]["TCGA"] = CohortSpec(trait=extra_tcga_trait, cohort="TCGA", kind="TCGA",
                                                     tcga_directory=tcga_dir)
    return specs


def _tree(root: Path, subdirs=("preprocess", "preprocess_store")) -> dict[str, bytes]:
    out = {}
    for sub in subdirs:
        for p in sorted((root / sub).rglob("*")):
            if p.is_file() and p.name not in VOLATILE:
                out[str(p.relative_to(root))] = p.read_bytes()
    return out


def _store_groups(store: Path) -> dict[str, bytes]:
    """Every file of the store's cohort groups but their completion records (which hold the write time)."""
    from genotex_dask.io.store import COMPLETE_MARK

    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("*"))
            if p.is_file() and ".zarr/" in str(p) and p.name != COMPLETE_MARK}


def test_pipelined_run_writes_what_the_staged_run_writes(corpus, tmp_path, client, monkeypatch):
    specs = _specs(corpus, extra_tcga_trait="Rheumatoid_Arthritis")
    staged, piped = tmp_path / "staged", tmp_path / "piped"
    run_ingest(str(corpus), str(staged / "store"), client, progress=False)
    s1 = pp.run_preprocess(str(corpus), specs, str(staged), client, progress=False)
    read_from_store = []  # the conftest cluster's worker runs in this process: the store reads can be counted
    layout_of = pp.store_rows.layout
    monkeypatch.setattr(pp.store_rows, "layout", lambda url: read_from_store.append(url) or layout_of(url))
    s2 = pp.run_preprocess(str(corpus), specs, str(piped), client, progress=False)  # raw files, empty store
    # only the two spec cohorts of the shared TCGA group read their samples back from the store
    assert len(read_from_store) == 2 and all("/TCGA/" in u for u in read_from_store), read_from_store
    n = sum(len(c) for c in specs.values())
    assert s1["done"] == s2["done"] == n and not s2["failed"], s2
    a, b = _tree(staged), _tree(piped)
    assert a.keys() == b.keys() and len(a) > 4 * n
    assert [k for k in a if a[k] != b[k]] == []
    a, b = _store_groups(staged / "store"), _store_groups(piped / "store")
    assert a.keys() == b.keys() and [k for k in a if a[k] != b[k]] == []
    # the TCGA cohort preprocessed for two traits from one ingested group
    assert (piped / "preprocess/Rheumatoid_Arthritis/gene_data/TCGA.csv").read_bytes() == \
        (piped / "preprocess/Kidney_Clear_Cell_Carcinoma/gene_data/TCGA.csv").read_bytes()


def test_handed_matrix_maps_exactly_like_the_store(corpus, tmp_path):
    """The matrix ingest hands over is the store's X, and mapping it (contiguous or a view of a larger buffer,
    as the reader leaves it) gives the store path's gene matrix bit for bit."""
    import zarr

    from genotex_dask.io import store

    job = next(j for j in discover(str(corpus), str(tmp_path / "store")) if j.kind == "GEO")
    handed: dict = {}
    assert ingest_cohort(job, False, handed)["status"] == "ingested"
    X = handed["X"]
    assert X.dtype == np.float32
    np.testing.assert_array_equal(X, zarr.open_array(store.zarr_store(job.out, read_only=True), path="X")[:])
    again: dict = {}
    assert ingest_cohort(job, False, again)["status"] == "skipped" and again == {}  # nothing parsed, nothing handed
    spec = _specs(corpus)[job.trait][job.cohort]
    pj = pp.Job(job.trait, job.cohort, spec, job, str(tmp_path / "out"), None,
                layout.gene_synonym_path(str(corpus)))
    p = pp.prepare(pj)
    assert p.failure is None
    from_store = pp.map_samples(p, job.out).copy()
    from_matrix = pp.map_samples(p, job.out, np.ascontiguousarray(X)).copy()
    wide = np.full((X.shape[1], X.shape[0] + 7), np.nan, np.float32).T[:X.shape[0]]
    wide[:] = X
    assert not wide.flags.c_contiguous
    from_view = pp.map_samples(p, job.out, wide).copy()
    assert from_store.tobytes() == from_matrix.tobytes() == from_view.tobytes()
    # a matrix that does not fit the operator (another probe list) is not used: the store is read
    assert pp.map_samples(p, job.out, X[:, :-1]).tobytes() == from_store.tobytes()


def test_a_broken_cohort_fails_alone_and_a_partial_run_resumes(corpus, tmp_path, client):
    root = tmp_path / "root"
    shutil.copytree(corpus, root)
    specs = _specs(root)
    broken = root / "input/GEO/Rheumatoid_Arthritis/GSE115649/GSE115649_series_matrix.txt.gz"
    broken.write_bytes(gzip.compress(b"!Series_title\t\"x\"\nnot a series matrix\n"))
    out = tmp_path / "out"
    s = pp.run_preprocess(str(root), specs, str(out), client, progress=False)
    n = sum(len(c) for c in specs.values())
    assert list(s["failed"]) == ["Rheumatoid_Arthritis/GSE115649"], s["failed"]
    assert s["failed"]["Rheumatoid_Arthritis/GSE115649"].startswith("ingest failed: ")
    assert s["done"] == n - 1
    info = json.loads((out / "preprocess/Rheumatoid_Arthritis/cohort_info.json").read_text())
    assert set(info) == set(specs["Rheumatoid_Arthritis"]) and info["GSE115649"]["is_usable"] is False
    first = _tree(out)

    # a partial run: one cohort's outputs lost, another's resume record lost; the broken file repaired
    shutil.copy(corpus / broken.relative_to(root), broken)
    (out / "preprocess/Kidney_Clear_Cell_Carcinoma/gene_data/GSE115300.csv").unlink()
    (out / "preprocess_meta/Rheumatoid_Arthritis/GSE115563.json").unlink()
    s = pp.run_preprocess(str(root), specs, str(out), client, progress=False)
    assert s["done"] == 3 and s["skipped"] == n - 3 and not s["failed"], s
    again = _tree(out)
    assert [k for k in first if k in again and first[k] != again[k]
            and "GSE115649" not in k and not k.endswith("cohort_info.json")] == []
    s = pp.run_preprocess(str(root), specs, str(out), client, progress=False)
    assert s["done"] == 0 and s["skipped"] == n
    assert _tree(out) == again


def test_operators_are_keyed_by_the_synonym_tables_content(corpus, tmp_path):
    """Two input trees holding the same synonym table share their operators (and a changed table does not)."""
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        (d / "metadata").mkdir(parents=True)
        shutil.copy(corpus / "metadata/gene_synonym.json", d / "metadata/gene_synonym.json")
    ja = pp.Job("T", "C", CohortSpec(trait="T", cohort="C"), None, "", None, layout.gene_synonym_path(str(a)))
    jb = pp.Job("T", "C", CohortSpec(trait="T", cohort="C"), None, "", None, layout.gene_synonym_path(str(b)))
    assert pp._synonyms_key(ja) == pp._synonyms_key(jb)
    syn = json.loads((b / "metadata/gene_synonym.json").read_text())
    syn["ZZZ_NOT_A_GENE"] = ["ZZZ1"]
    fs.write_text_atomic(jb.synonyms_url, json.dumps(syn))
    assert pp._synonyms_key(ja) != pp._synonyms_key(jb)


def test_run_with_given_specs_pipelines_the_named_cohorts_and_ingests_the_rest(corpus, tmp_path, client, monkeypatch):
    """`genotex-dask run --specs` preprocesses first (each named cohort ingested inside its own task, its matrix
    never read back from the store), then the ingest stage stores the cohorts no spec names."""
    from genotex_dask import api

    specs = _specs(corpus)
    unnamed = sorted(specs["Rheumatoid_Arthritis"])[0]
    del specs["Rheumatoid_Arthritis"][unnamed]
    read_from_store = []
    layout_of = pp.store_rows.layout
    monkeypatch.setattr(pp.store_rows, "layout", lambda url: read_from_store.append(url) or layout_of(url))
    s = api.run(str(corpus), str(tmp_path / "out"), specs=specs, client=client, progress=False)
    n = sum(len(c) for c in specs.values())
    assert s["preprocess"]["done"] == n and not s["preprocess"]["failed"] and read_from_store == []
    ing = s["ingest"]
    assert not ing["failed"] and ing["n_cohorts"] == len(discover(str(corpus), str(tmp_path / "x")))
    statuses = {k.split("/")[-1]: v["status"] for k, v in ing["cohorts"].items()}
    assert statuses.pop(unnamed) == "ingested"
    assert set(statuses.values()) == {"skipped"}, statuses
    assert s["analyze"]["failed"] == 0


def test_large_csvs_go_past_the_page_cache_only_when_set(corpus, tmp_path, client, monkeypatch):
    """preprocess.direct-writes: every gene_data and linked CSV goes through the unbuffered writer (a file under one
    block is then written buffered by it); set false, none does.  The outputs are the same bytes either way."""
    import dask

    from genotex_dask.io import filewrite

    specs = _specs(corpus)
    unbuffered: list[str] = []
    real = filewrite.write_file_direct

    def recording(path, chunks, buffered_below=0):  # the conftest cluster's worker runs in this process
        unbuffered.append(path)
        return real(path, chunks, buffered_below)

    monkeypatch.setattr(filewrite, "write_file_direct", recording)
    trees = {}
    for direct in (True, False):
        unbuffered.clear()
        out = tmp_path / f"direct_{direct}"
        with dask.config.set({"genotex_dask.preprocess.direct-writes": direct}):
            s = pp.run_preprocess(str(corpus), specs, str(out), client, progress=False)
        assert s["done"] == sum(len(c) for c in specs.values()) and not s["failed"], s
        csvs = {p.relative_to(out) for p in (out / "preprocess").rglob("*.csv")}
        cut = len(fs.TMP_MARK) + 33  # the temporary sibling's name: mark, 32 hex digits, "-", the file's name
        written = {(Path(u).parent / Path(u).name[cut:]).relative_to(out) for u in unbuffered}
        linked = {p for p in csvs if p.parent.name not in ("gene_data", "clinical_data")}
        gene = {p for p in csvs if p.parent.name == "gene_data"}
        assert linked and gene
        assert written == ((linked | gene) if direct else set()), (direct, written ^ (linked | gene))
        trees[direct] = _tree(out)
    assert trees[True].keys() == trees[False].keys()
    assert [k for k in trees[True] if trees[True][k] != trees[False][k]] == []

"""The probe->symbol operator cache (worker memory and STORE/operators) is keyed by what the operator is built
from: a cohort whose platform annotation differs in a single cell never reuses another cohort's operator, and
cohorts with the same annotation share one (built once)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd

from genotex_dask.io import store
from genotex_dask.pipelines import preprocess as pp
from genotex_dask.preprocess.specs import CohortSpec, FeatureSpec

SOURCES = {"matrix": {"name": "GSE1_series_matrix.txt.gz", "size": 10, "mtime": "1", "etag": ""}}
N_PROBES = 60


def _cohort(path, name: str, symbols: list[str]) -> str:
    rng = np.random.default_rng(1)
    X = rng.normal(8, 1, size=(6, N_PROBES))
    obs = pd.DataFrame({"characteristics_ch1_0": [f"disease: {'RA' if i % 2 else 'control'}" for i in range(6)]},
                       index=[f"GSM{i}" for i in range(6)])
    var = pd.DataFrame({"Gene Symbol": symbols}, index=pd.Index([f"p{i}" for i in range(N_PROBES)], name="ID"))
    url = str(path / f"{name}.zarr")
    store.write_cohort(url, X, obs, var, {"platform": {"id": "GPL1"}}, SOURCES)
    return url


def _prepare(url: str, syn: str, operators: str) -> pp.Prepared:
    spec = CohortSpec(trait="T", cohort="C", gene_column="Gene Symbol",
                      trait_spec=FeatureSpec(key="disease", values={"RA": 1.0, "control": 0.0}))
    job = pp.Job("T", "C", spec, SimpleNamespace(out=url, files={}), "", None, syn, operators_dir=operators)
    p = pp.prepare(job)
    assert p.failure is None, p.failure
    return p


def test_a_changed_annotation_cell_never_reuses_a_cached_operator(tmp_path, monkeypatch):
    syn = tmp_path / "gene_synonym.json"
    syn.write_text(json.dumps({f"G{i}": f"G{i}" for i in range(N_PROBES)}))
    operators = str(tmp_path / "operators")
    base = [f"G{i % 20}" for i in range(N_PROBES)]
    changed = list(base)
    changed[7] = "G45"  # one probe re-annotated: a gene no other probe maps to
    a = _cohort(tmp_path, "a", base)
    b = _cohort(tmp_path, "b", changed)
    c = _cohort(tmp_path, "c", base)  # another cohort on a's platform
    builds = []
    real = pp.build_probe_operator
    monkeypatch.setattr(pp, "build_probe_operator", lambda *x, **k: builds.append(1) or real(*x, **k))
    pp._OP_CACHE.clear()
    op_a = _prepare(a, str(syn), operators).op
    op_b = _prepare(b, str(syn), operators).op
    op_c = _prepare(c, str(syn), operators).op
    assert len(builds) == 2                       # a and b built, c took a's from the cache
    assert op_c is op_a
    assert "G45" in op_b.symbols.tolist() and "G45" not in op_a.symbols.tolist()
    # and from the saved copies alone (a new worker): the same answers
    pp._OP_CACHE.clear()
    assert _prepare(b, str(syn), operators).op.symbols.tolist() == op_b.symbols.tolist()
    assert _prepare(c, str(syn), operators).op.symbols.tolist() == op_a.symbols.tolist()
    assert len(builds) == 2


def test_the_digest_is_remembered_by_file_identity_and_never_for_a_changed_table(tmp_path, monkeypatch):
    """The var digest keying the operators is computed once for cohorts whose var files are the same inodes (a
    known platform's hard-linked group); a group written again with one re-annotated probe (new files, even of the
    same sizes), or one file replaced (even keeping its size and mtime), gets a new digest and so its own operator."""
    import os
    import shutil

    syn = tmp_path / "gene_synonym.json"
    syn.write_text(json.dumps({f"G{i}": f"G{i}" for i in range(N_PROBES)}))
    operators = str(tmp_path / "operators")
    base = [f"G{i % 20}" for i in range(N_PROBES)]
    a = _cohort(tmp_path, "a", base)
    linked = str(tmp_path / "linked.zarr")  # another cohort whose files are a's (hard links), as a platform's
    shutil.copytree(a, linked, copy_function=os.link)
    digests = []
    real = store.CohortMeta.digest
    monkeypatch.setattr(store.CohortMeta, "digest", lambda self, *x: digests.append(self.url) or real(self, *x))
    pp._OP_CACHE.clear()
    pp._DIGESTS.clear()
    op_a = _prepare(a, str(syn), operators).op
    n_a = len(digests)
    assert n_a >= 1
    assert _prepare(linked, str(syn), operators).op is op_a
    assert len(digests) == n_a  # remembered: the same files
    # a written again with one probe re-annotated, same cell length (G7 -> G9: equal file sizes are possible)
    changed = list(base)
    changed[7] = "G9"
    _cohort(tmp_path, "a", changed)
    op_changed = _prepare(a, str(syn), operators).op
    assert len(digests) > n_a
    assert op_changed is not op_a
    assert op_changed.W[7].indices.tolist() != op_a.W[7].indices.tolist()
    # the linked cohort still holds the old files: still the old operator
    assert _prepare(linked, str(syn), operators).op is op_a
    # one file of the linked cohort replaced by the changed bytes, its old mtime put back: a new inode all the same
    n = len(digests)
    chunk = next(p for p in (tmp_path / "linked.zarr" / "var").rglob("*") if p.is_file() and "/c/" in str(p)
                 and "Gene Symbol" in str(p))
    blob = (tmp_path / "a.zarr" / chunk.relative_to(tmp_path / "linked.zarr")).read_bytes()
    st = chunk.stat()
    os.unlink(chunk)  # break the hard link (a's old file), then write the changed bytes
    chunk.write_bytes(blob)
    os.utime(chunk, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert _prepare(linked, str(syn), operators).op.W[7].indices.tolist() == op_changed.W[7].indices.tolist()
    assert len(digests) > n

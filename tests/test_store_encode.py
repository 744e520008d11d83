"""store.encode_string_frame: the obs/var objects it encodes directly are the very bytes anndata's own writer
makes (the oracle: ``anndata.io.write_elem`` into a Zarr MemoryStore), and a cohort written with them reads
back in plain anndata."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import zarr

from genotex_dask.io import anndata_zarr, store


def _anndata_objects(frame: pd.DataFrame, key: str) -> dict[str, bytes]:
    objects: dict = {}
    with store.zarr_v3_writes():
        group = zarr.open_group(zarr.storage.MemoryStore(store_dict=objects), mode="w", zarr_format=3)
        ad.io.write_elem(group, key, frame)
    return {k: v.to_bytes() for k, v in objects.items() if k.startswith(key + "/")}


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    words = np.array(["", "A /// B", "TP53", "Ä-ß ∆ 東京", "x" * 300, "0", "a,b\tc"], dtype=object)
    return pd.DataFrame({"Gene Symbol": words[rng.integers(0, len(words), n)],
                         "GO:Function.1": np.array([f"GO:{i:07d}" for i in range(n)], dtype=object),
                         "all empty": np.array([""] * n, dtype=object),
                         "contact_zip_postal_code": np.array(["10117"] * n, dtype=object)},
                        index=pd.Index([f"p{i}" for i in range(n)], dtype=object, name="ID"))


@pytest.mark.parametrize("n", [1, 3, 9000])
def test_same_bytes_as_anndata(n):
    frame = _frame(n, seed=n)
    ours = store.encode_string_frame(frame, "var")
    ref = _anndata_objects(frame, "var")
    assert ours is not None and sorted(ours) == sorted(ref)
    assert all(ours[k] == ref[k] for k in ref)
    assert "var/all empty/c/0" not in ours  # a chunk of fill values only is not written, as Zarr does


def test_same_bytes_unnamed_index_and_several_chunks():
    n = 1_000_003  # Zarr splits this many strings into chunks of 250,001 (the 4th one partial)
    frame = pd.DataFrame({"s": np.array([f"v{i % 97}" for i in range(n)], dtype=object)},
                         index=pd.Index([str(i) for i in range(n)], dtype=object))
    ours = store.encode_string_frame(frame, "obs")
    ref = _anndata_objects(frame, "obs")
    assert ours is not None and "obs/_index/c/3" in ours and sorted(ours) == sorted(ref)
    assert all(ours[k] == ref[k] for k in ref)


@pytest.mark.parametrize("frame", [
    pd.DataFrame(index=pd.Index([], dtype=object)),                                      # no rows
    pd.DataFrame({"__x": ["a"]}, index=pd.Index(["p"], dtype=object)),                   # a name Zarr reserves
    pd.DataFrame({"n": [1.5]}, index=pd.Index(["p"], dtype=object)),                     # not str cells
    pd.DataFrame({"ID": ["a"]}, index=pd.Index(["p"], dtype=object, name="ID")),         # index name = column
])
def test_declines_what_it_does_not_cover(frame):
    assert store.encode_string_frame(frame, "var") is None


def test_cohort_written_with_encoded_frames_reads_in_anndata(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(5, 9000))
    obs = pd.DataFrame({"title": [f"s{i}" for i in range(5)], "a/b": ["1", None, "3", "", "5"]},
                       index=pd.Index([f"GSM{i}" for i in range(5)], name="sample"))
    var = _frame(9000, seed=2)
    var.loc["p3", "Gene Symbol"] = np.nan
    keep: dict = {}
    url = str(tmp_path / "c.zarr")
    store.write_cohort(url, X, obs, var, {"ingest": {}}, {}, keep_var=keep)
    a = ad.read_zarr(url)
    np.testing.assert_allclose(a.X, X.astype(np.float32))
    assert list(a.obs.index) == list(obs.index) and a.obs.index.name == "sample"
    assert a.obs["a_b"].tolist() == ["1", "", "3", "", "5"]
    assert a.var.index.tolist() == var.index.tolist() and a.var.loc["p3", "Gene Symbol"] == ""
    assert a.var["Gene Symbol"].tolist()[:3] == var["Gene Symbol"].fillna("").tolist()[:3]
    assert store.read_obs(url).columns.tolist() == ["title", "a/b"]
    # the platform's encoded var, kept for the next cohort, is what the group holds
    assert sorted(keep["objects"]) == sorted(k for k in store.encode_string_frame(
        store._clean_frame(var, {}), "var"))


@pytest.mark.parametrize("float64", [False, True])
def test_cohort_objects_same_bytes_as_anndata(float64):
    """The whole group (X chunks incl. partial edge chunks and an all-zero chunk Zarr does not write, uns,
    the empty containers, the consolidated root metadata) equals anndata's writing of it."""
    rng = np.random.default_rng(3)
    X = rng.normal(8, 2, size=(70, 300))
    X[rng.random(X.shape) < 0.05] = np.nan
    X[64:, 256:] = 0.0  # the last chunk holds fill values only
    obs = pd.DataFrame({"title": [f"s{i}" for i in range(70)]}, index=pd.Index([f"GSM{i}" for i in range(70)]))
    var = _frame(300, seed=4)
    obs_o, var_o = store.encode_string_frame(obs, "obs"), store.encode_string_frame(var, "var")
    dtype = np.float64 if float64 else np.float32
    uns = '{"ingest": {"kind": "GEO"}, "note": "Ä"}'
    empty = pd.DataFrame(index=pd.Index([], dtype=object))
    ref = {k: v.to_bytes() for k, v in store._cohort_objects_anndata(
        X, dtype, (64, 128), empty, empty, {store.UNS_KEY: uns}, obs_o, var_o).items()}
    ours = store.cohort_objects(X, dtype, (64, 128), obs_o, var_o, uns)
    assert sorted(ours) == sorted(ref) and "X/c/1/2" not in ours and "X/c/1/1" in ours
    assert [k for k in ref if ours[k] != ref[k]] == []


def _preprocessed(n: int, g: int, binary: bool, gender: bool, seed: int):
    from genotex_dask.preprocess import quality

    rng = np.random.default_rng(seed)
    trait = rng.integers(0, 2, n).astype(float) if binary else rng.normal(size=n)
    cov = {"Age": rng.uniform(20, 80, n)}
    if gender:
        cov["Gender"] = rng.integers(0, 2, n).astype(float)
        cov["Gender"][0] = np.nan
    X = rng.normal(7, 2, (n, g))
    X[rng.random(X.shape) < 0.02] = np.nan
    return quality.Linked(np.array([f"GSM{i}" for i in range(n)], dtype=object), trait, cov,
                          np.array([f"G{i}" for i in range(g)], dtype=object), X)


@pytest.mark.parametrize("n,g,binary,gender,float64", [(167, 3000, True, True, False), (300, 500, False, False, True),
                                                       (1, 40, True, True, False)])
def test_preprocessed_store_same_bytes_as_anndata(tmp_path, monkeypatch, n, g, binary, gender, float64):
    """The preprocessed store (categorical trait/Gender, numeric Age, uns scalars and dicts, var n_probes,
    X in 256-sample chunks) written by the direct encoder equals anndata's write_zarr of the same AnnData."""
    from genotex_dask.io import anndata_zarr
    from genotex_dask.pipelines import preprocess as pp
    from genotex_dask.preprocess import anndata_fields as af

    d = _preprocessed(n, g, binary, gender, seed=n)
    uns = af.cohort_uns(trait="T", cohort="GSE1", platform="GPL570" if binary else None,  # None: "" (no chunk)
                        spec_file="specs/T.yaml", spec_line=3,
                        spec_mapping={"trait": "x"}, mode="default", value_scale=af.detect_value_scale(d.X),
                        engine_version=1)
    var_cols = {"n_probes": np.arange(g, dtype=np.int32) % 3}
    dtype = np.float64 if float64 else np.float32
    pp._write_preprocessed_store(str(tmp_path / "direct.zarr"), "T", d, dtype, uns, var_cols)
    monkeypatch.setattr(anndata_zarr, "anndata_objects", lambda *a, **k: None)  # anndata's own writing
    pp._write_preprocessed_store(str(tmp_path / "anndata.zarr"), "T", d, dtype, uns, var_cols)

    def files(root):
        return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    ours, ref = files(tmp_path / "direct.zarr"), files(tmp_path / "anndata.zarr")
    assert sorted(ours) == sorted(ref)
    assert ("obs/T/categories/zarr.json" in ours) == binary  # a binary trait is a categorical
    assert [k for k in ref if ours[k] != ref[k]] == []
    a = ad.read_zarr(str(tmp_path / "direct.zarr"))
    np.testing.assert_array_equal(a.X, d.X.astype(dtype))
    assert a.uns["spec"]["line"] == 3 and a.var["n_probes"].dtype == np.int32


def test_encoder_declines_bool_cells_and_scalars():
    """Kinds whose bytes were not compared with anndata's are left to anndata (the caller's fallback)."""
    from genotex_dask.io import anndata_zarr

    enc = anndata_zarr.Encoder({})
    assert not enc.mapping("uns", {"flag": True})
    assert not enc.frame("obs", pd.DataFrame({"b": [True, False]}, index=pd.Index(["a", "b"], dtype=object)))
    assert enc.mapping("uns", {"n": 3, "x": 0.5, "s": "t", "d": {"k": "v"}})


def test_write_cohort_falls_back_to_anndata_for_a_var_the_encoder_declines(tmp_path):
    """A var frame with no rows is declined by the direct encoder; write_cohort then lets anndata write it, and the
    store still reads back with its columns."""
    obs = pd.DataFrame({"title": ["a", "b", "c"]}, index=pd.Index(["S1", "S2", "S3"], name="sample"))
    var = pd.DataFrame({"Gene Symbol": []}, index=pd.Index([], name="ID", dtype=object))
    assert store.encode_string_frame(store._clean_frame(var, {}), "var") is None
    rec = store.write_cohort(str(tmp_path / "c.zarr"), np.zeros((3, 0)), obs, var, {"ingest": {}}, {})
    back = ad.read_zarr(str(tmp_path / "c.zarr"))
    assert rec["n_vars"] == 0 and back.shape == (3, 0)
    assert list(back.var.columns) == ["Gene Symbol"] and list(back.obs["title"]) == ["a", "b", "c"]


@pytest.mark.parametrize("float64", [False, True])
def test_kept_chunk_block_reused_and_its_old_contents_never_written(float64):
    """The encoder stages chunks in the thread's kept block (thread_buffers): a block left full of another
    cohort's values still gives anndata's bytes for partial edge chunks, and it is the block kept afterwards."""
    from genotex_dask.io import thread_buffers

    rng = np.random.default_rng(5)
    X = rng.normal(8, 2, size=(70, 300))
    obs = pd.DataFrame({"title": [f"s{i}" for i in range(70)]}, index=pd.Index([f"GSM{i}" for i in range(70)]))
    obs_o, var_o = store.encode_string_frame(obs, "obs"), store.encode_string_frame(_frame(300, seed=4), "var")
    dtype = np.float64 if float64 else np.float32
    empty = pd.DataFrame(index=pd.Index([], dtype=object))
    ref = {k: v.to_bytes() for k, v in store._cohort_objects_anndata(
        X, dtype, (64, 128), empty, empty, {store.UNS_KEY: "{}"}, obs_o, var_o).items()}
    role = anndata_zarr.chunk_block_role(np.dtype(dtype).newbyteorder("<"))
    dirty = np.full(64 * 128, 12345.0, dtype=dtype)
    thread_buffers.give(role, dirty)
    ours = store.cohort_objects(X, dtype, (64, 128), obs_o, var_o, "{}")
    assert sorted(ours) == sorted(ref) and [k for k in ref if ours[k] != ref[k]] == []
    assert thread_buffers.take(role, 64 * 128, dtype).base is dirty


def test_preprocessed_store_keeps_its_x_block_for_the_next_cohort(tmp_path):
    """Two preprocessed stores written by one thread stage X's chunk in the same kept block: the frames' other
    columns (categorical codes, int32 n_probes) do not displace it."""
    from genotex_dask.io import thread_buffers
    from genotex_dask.pipelines import preprocess as pp

    thread_buffers.release_all()
    blocks = []
    for i in range(2):
        d = _preprocessed(167, 500, True, True, seed=i)
        pp._write_preprocessed_store(str(tmp_path / f"s{i}.zarr"), "T", d, np.float32, {"x": 1},
                                     {"n_probes": np.ones(500, dtype=np.int32)})
        kept = thread_buffers.take(anndata_zarr.chunk_block_role(np.dtype("<f4")), 167 * 500, np.float32)
        blocks.append(kept.base)
        thread_buffers.give(anndata_zarr.chunk_block_role(np.dtype("<f4")), kept)
    assert blocks[0] is not None and blocks[0] is blocks[1]
    assert ad.read_zarr(str(tmp_path / "s1.zarr")).X.dtype == np.float32

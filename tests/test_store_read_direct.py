"""Direct reads of obs / var / uns (anndata_zarr.Reader): equal to anndata's, bounded, and anndata's path for
any layout they do not cover.

The reference is plain ``anndata.read_zarr`` of the same group (column names restored from ``uns`` by hand), not
the store module's own fallback."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import zarr

from genotex_dask.io import anndata_zarr, store
from genotex_dask.io.errors import InputFormatError, InputLimitError
from genotex_dask.pipelines.ingest import discover, ingest_cohort
from genotex_dask.synth.corpus import write_corpus
from tests._geo_files import GSE781_DIR, matrix_text, write_gz

DLBC = Path(__file__).parent / "data" / "tcga" / "input" / "TCGA" / "TCGA_Large_Bcell_Lymphoma_(DLBC)"
SMALL_SOFT = ("^SERIES = GSE9\n!Series_title = small\n^PLATFORM = GPL1\n!Platform_title = toy array\n"
              "!platform_table_begin\nID\tGene Symbol\tGO/Function\np1\tTP53\t\np2\tEGFR /// ERBB2\tkinase \u00e9\u4e2d\n"
              "!platform_table_end\n")


# ---- the reference: anndata itself ----
def _anndata_elements(url: str) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    g = zarr.open_group(url, mode="r")
    obs, var, uns = (ad.io.read_elem(g[k]) for k in ("obs", "var", "uns"))
    names = json.loads(str(uns[store.UNS_KEY])).get("column_names", {}) if store.UNS_KEY in uns else {}
    if names.get("obs"):  # (renaming with no names would turn an empty RangeIndex of columns into an Index)
        obs = obs.rename(columns={k: str(v) for k, v in names["obs"].items()})
    if names.get("var"):
        var = var.rename(columns={k: str(v) for k, v in names["var"].items()})
    return obs, var, uns


def _same_value(a, b) -> None:
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same_value(a[k], b[k])
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, pd.Categorical):
        pd.testing.assert_extension_array_equal(a, b, check_exact=True)
    else:
        assert a == b


def _assert_direct_equals_anndata(url: str) -> None:
    assert store._direct(url) is not None, "the direct reader did not take this store"
    obs, var, uns = _anndata_elements(url)
    kw = {"check_exact": True, "check_index_type": True, "check_column_type": True, "check_categorical": True}
    pd.testing.assert_frame_equal(store.read_obs(url), obs, **kw)
    pd.testing.assert_frame_equal(store.read_var(url), var, **kw)
    raw = anndata_zarr.Reader(url).read("uns")
    _same_value(raw, uns)
    if store.UNS_KEY in uns:
        assert store.read_uns(url) == store.unpack_uns(uns)


# ---- stores written by our ingest ----
@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> list[str]:
    base = tmp_path_factory.mktemp("direct")
    root = base / "root"
    write_corpus(str(root), traits=2, cohorts_per_trait=2, samples=12, probes=300, platforms=1, seed=5,
                 compresslevel=1)  # GEO cohorts sharing one platform's var, and a TCGA cohort per trait
    geo = root / "input" / "GEO"
    shutil.copytree(GSE781_DIR, geo / "Kidney_Clear_Cell_Carcinoma" / "GSE781")  # real GEO files
    small = geo / "Toy_Trait" / "GSE9"
    write_gz(small / "GSE9-GPL1_series_matrix.txt.gz", matrix_text())
    write_gz(small / "GSE9_family.soft.gz", SMALL_SOFT)  # a '/' column, an empty cell, unicode
    shutil.copytree(DLBC, root / "input" / "TCGA" / DLBC.name)  # real TCGA files
    urls = []
    for job in discover(str(root), str(base / "store")):
        res = ingest_cohort(job)
        assert res["status"] == "ingested", res
        urls.append(job.out)
    return urls


def test_ingested_stores_read_directly_as_anndata_reads_them(ingested):
    kinds = {u.split("/store/")[1].split("/")[0] for u in ingested}
    assert kinds == {"GEO", "TCGA"} and len(ingested) >= 7
    synthetic = [Path(u) for u in ingested if "/GEO/" in u and "GSE9" not in u and "GSE781" not in u]
    shared = [(u / "var" / "zarr.json").read_bytes() + (u / "var" / "ID" / "c" / "0").read_bytes() for u in synthetic]
    assert len(synthetic) >= 2 and len(set(shared)) < len(shared)  # a platform's var shared by two cohorts
    for url in ingested:
        _assert_direct_equals_anndata(url)


def test_cohort_meta_reads_directly(ingested):
    url = next(u for u in ingested if u.endswith("GSE9.zarr"))
    meta = store.CohortMeta(url)
    assert meta.elements.direct is not None and meta.elements._group is None  # Zarr never opened
    var = store.read_var(url)
    assert meta.columns("var") == ["Gene Symbol", "GO/Function"] == var.columns.tolist()
    assert meta.index("var") == var.index.tolist() and meta.index_key("var") == var.index.name
    assert meta.column("var", "GO/Function").tolist() == var["GO/Function"].tolist()
    assert "kinase \u00e9\u4e2d" in var["GO/Function"].tolist() and "" in var["GO/Function"].tolist()
    pd.testing.assert_frame_equal(meta.frame("obs"), store.read_obs(url), check_exact=True)
    assert meta.elements._group is None


# ---- frames of every kind the encoders cover, written by anndata and by our encoder ----
def _frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    words = np.array(["", "a", "RA", "disease state: RA", "\u00e9t\u00e9", "\u4e2d\u6587", "x" * 300, "a;b\tc"],
                     dtype=object)
    return pd.DataFrame({
        "text": words[rng.integers(0, len(words), n)],
        "empty": np.full(n, "", dtype=object),  # every chunk fill only: no chunk file
        "num": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
        "ints": rng.integers(-5, 5, n).astype(np.int32),
        "cat": pd.Categorical(rng.choice(["lo", "hi", "mid"], n), categories=["lo", "mid", "hi", "unused"]),
        "ordered": pd.Categorical.from_codes(rng.integers(-1, 2, n), categories=["x", "y"], ordered=True),
    }, index=pd.Index([f"GSM{i}\u00e9" for i in range(n)], name="sample"))


@pytest.mark.parametrize("seed", range(4))
def test_random_frames_written_by_anndata(tmp_path, seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    adata = ad.AnnData(X=np.zeros((n, 3), dtype=np.float32), obs=_frame(rng, n),
                       var=pd.DataFrame(index=[f"g{i}" for i in range(3)]))
    adata.uns = {"zeta": 1, "alpha": "\u00e9", "Beta": np.arange(int(rng.integers(1, 9))), "f": 2.5,
                 "nested": {"b": np.array(["u", "", "v"]), "a": rng.normal(size=(3, 2))}}
    url = str(tmp_path / "a.zarr")
    chunk = int(rng.integers(1, 8))  # several chunks, a partial edge chunk
    with store.zarr_v3_writes():
        g = zarr.open_group(url, mode="w", zarr_format=3)
        ad.io.write_elem(g, "obs", adata.obs, dataset_kwargs={"chunks": (chunk,)})
        ad.io.write_elem(g, "var", adata.var)
        ad.io.write_elem(g, "uns", adata.uns)
        ad.io.write_elem(g, "X", adata.X)
        g.attrs.update({"encoding-type": "anndata", "encoding-version": "0.1.0"})
        zarr.consolidate_metadata(url)
    _assert_direct_equals_anndata(url)
    bare = anndata_zarr.Reader(url).read("uns/nested/b")  # a bare string array: as Zarr hands it to anndata
    assert bare.dtype == zarr.open_group(url, mode="r")["uns/nested/b"][()].dtype


def test_frames_written_by_our_encoder_with_blosc(tmp_path):
    rng = np.random.default_rng(7)
    obs = _frame(rng, 40)
    var = pd.DataFrame({"s": ["p", "q"]}, index=pd.Index(["g1", "g2"], name="ID"))
    objects = anndata_zarr.anndata_objects(np.ones((40, 2)), np.float32, (16, 2), obs, var,
                                           {"k": "v", "n": 3}, store.X_COMPRESSORS[0], store.zarr_v3_lock())
    assert objects is not None
    url = str(tmp_path / "p.zarr")
    store.dump_memory_store(objects, url)
    _assert_direct_equals_anndata(url)


# ---- rejections: one line naming the file ----
@pytest.fixture()
def cohort(tmp_path, ingested) -> Path:
    url = next(u for u in ingested if u.endswith("GSE9.zarr"))
    dst = tmp_path / "c.zarr"
    shutil.copytree(url, dst)
    return dst


def _edit_meta(path: Path, fn) -> None:
    doc = json.loads((path / "zarr.json").read_text())
    fn(doc["consolidated_metadata"]["metadata"], doc)
    (path / "zarr.json").write_text(json.dumps(doc))


def _rejects(path: Path, exc, where: Path, words: str, read=store.read_obs) -> None:
    with pytest.raises(exc) as err:
        read(str(path))
    msg = str(err.value)
    assert msg.startswith(str(where)) and words in msg and "\n" not in msg


def test_truncated_chunks(cohort):
    chunk = cohort / "obs" / "title" / "c" / "0"
    whole = chunk.read_bytes()
    chunk.write_bytes(whole[:-3])
    _rejects(cohort, InputFormatError, chunk, "whole Zstandard frame")
    chunk.write_bytes(whole[:5])
    _rejects(cohort, InputFormatError, chunk, "whole Zstandard frame")
    # the frame's structure intact, its compressed block garbled
    size = anndata_zarr._zstd_content_size(whole)
    chunk.write_bytes(whole[:-8] + bytes(b ^ 0x5A for b in whole[-8:]))
    assert anndata_zarr._zstd_content_size(chunk.read_bytes()) == size
    _rejects(cohort, InputFormatError, chunk, "corrupt")


def test_a_second_zstd_frame_cannot_declare_more(cohort):
    """numcodecs allocates the sum of the frames' declared sizes: a chunk is one frame, nothing after it."""
    chunk = cohort / "obs" / "title" / "c" / "0"
    fake = b"\x28\xb5\x2f\xfd" + bytes([(3 << 6) | (1 << 5)]) + (1 << 40).to_bytes(8, "little") + b"\x01\x00\x00"
    chunk.write_bytes(chunk.read_bytes() + fake)
    _rejects(cohort, InputFormatError, chunk, "whole Zstandard frame")


def test_truncated_blosc_chunk(tmp_path):
    objects = anndata_zarr.anndata_objects(np.ones((3, 2)), np.float32, (3, 2),
                                           pd.DataFrame({"t": ["a", "b", "c"]}, index=["s1", "s2", "s3"]),
                                           pd.DataFrame(index=["g1", "g2"]), {}, store.X_COMPRESSORS[0],
                                           store.zarr_v3_lock())
    url = tmp_path / "b.zarr"
    store.dump_memory_store(objects, str(url))
    chunk = url / "obs" / "t" / "c" / "0"
    chunk.write_bytes(chunk.read_bytes()[:-2])
    _rejects(url, InputFormatError, chunk, "truncated or padded Blosc")


def test_shape_mismatches(cohort):
    n = json.loads((cohort / "zarr.json").read_text())["consolidated_metadata"]["metadata"]["obs/title"]["shape"][0]

    def longer(nodes, _):
        nodes["obs/title"]["shape"] = [n + 1]
        nodes["obs/title"]["chunk_grid"]["configuration"]["chunk_shape"] = [n + 1]

    _edit_meta(cohort, longer)  # the column's chunk holds fewer strings than the metadata's chunk
    _rejects(cohort, InputFormatError, cohort / "obs" / "title" / "c" / "0", "vlen-utf8 chunk of")

    def shorter(nodes, _):
        nodes["obs/title"]["shape"] = [n - 1]
        nodes["obs/title"]["chunk_grid"]["configuration"]["chunk_shape"] = [n]

    _edit_meta(cohort, shorter)  # decodes, but has 1 row fewer than the index
    _rejects(cohort, InputFormatError, cohort / "zarr.json", "does not match")


def test_keys_escaping_the_group(cohort):
    _edit_meta(cohort, lambda nodes, _: nodes["obs"]["attributes"]["column-order"].append("../var/_index"))
    _rejects(cohort, InputFormatError, cohort / "zarr.json", "escapes the group")
    _edit_meta(cohort, lambda nodes, _: nodes.__setitem__("obs/../../x", nodes.pop("obs/title")))
    _rejects(cohort, InputFormatError, cohort / "zarr.json", "escapes the group", read=store.read_uns)


def test_bounds(cohort, monkeypatch):
    big = {"array": lambda nodes, _: nodes["obs/title"].__setitem__("shape", [1 << 40])}
    _edit_meta(cohort, big["array"])
    _rejects(cohort, InputLimitError, cohort / "zarr.json", "MAX_ARRAY_ITEMS")
    monkeypatch.setenv("GENOTEX_DASK_MAX_METADATA_BYTES", "1000")
    _rejects(cohort, InputLimitError, cohort / "zarr.json", "MAX_METADATA_BYTES", read=store.read_uns)


def test_inflate_bound_and_lying_headers(cohort, monkeypatch):
    chunk = cohort / "var" / "Gene Symbol" / "c" / "0"
    monkeypatch.setenv("GENOTEX_DASK_MAX_CHUNK_BYTES", "20")
    _rejects(cohort, InputLimitError, cohort / "var", "MAX_CHUNK_BYTES", read=store.read_var)
    monkeypatch.delenv("GENOTEX_DASK_MAX_CHUNK_BYTES")
    blob = bytearray(chunk.read_bytes())
    assert anndata_zarr._zstd_content_size(bytes(blob)) is not None
    blob[4] = (3 << 6) | (blob[4] & 0x3F)  # an 8-byte content size field claiming ~2**60 bytes
    pos = 5 + (0 if blob[4] & 0x20 else 1)
    chunk.write_bytes(bytes(blob[:pos]) + (1 << 60).to_bytes(8, "little") + bytes(blob[pos + 1:]))
    _rejects(cohort, InputLimitError, chunk, "MAX_CHUNK_BYTES", read=store.read_var)


def test_a_directory_for_a_chunk_and_bad_json(cohort):
    chunk = cohort / "obs" / "title" / "c" / "0"
    chunk.unlink()
    chunk.mkdir()
    _rejects(cohort, InputFormatError, chunk, "not a chunk file")
    (cohort / "zarr.json").write_bytes(b"{not json")
    _rejects(cohort, InputFormatError, cohort / "zarr.json", "not a JSON document")


def test_bad_utf8(tmp_path):
    from numcodecs import Zstd

    url = tmp_path / "u.zarr"
    store.dump_memory_store(anndata_zarr.anndata_objects(
        np.ones((1, 1)), np.float32, (1, 1), pd.DataFrame({"t": ["ab"]}, index=["s"]), pd.DataFrame(index=["g"]),
        {}, None, store.zarr_v3_lock()), str(url))
    chunk = url / "obs" / "t" / "c" / "0"
    chunk.write_bytes(Zstd().encode(b"\x01\x00\x00\x00\x02\x00\x00\x00\xff\xfe"))
    _rejects(url, InputFormatError, chunk, "corrupt vlen-utf8")


# ---- fallbacks: anndata's path, same result ----
def _fallback_equal(url: str, fast_expected: bool = False) -> None:
    assert (store._direct(url) is not None) == fast_expected
    obs, var, _ = _anndata_elements(url)
    pd.testing.assert_frame_equal(store.read_obs(url), obs, check_exact=True)
    pd.testing.assert_frame_equal(store.read_var(url), var, check_exact=True)
    meta = store.CohortMeta(url)
    assert meta.columns("obs") == obs.columns.tolist()


def test_fallback_without_consolidated_metadata(cohort):
    doc = json.loads((cohort / "zarr.json").read_text())
    del doc["consolidated_metadata"]
    (cohort / "zarr.json").write_text(json.dumps(doc))
    _fallback_equal(str(cohort))


def test_fallback_for_another_codec_and_a_nullable_column(tmp_path):
    obs = pd.DataFrame({"t": ["a", "b"], "n": pd.array([1, None], dtype="Int64")}, index=["s1", "s2"])
    adata = ad.AnnData(X=np.ones((2, 2), dtype=np.float32), obs=obs, var=pd.DataFrame(index=["g1", "g2"]))
    url = str(tmp_path / "g.zarr")
    with store.zarr_v3_writes():
        g = zarr.open_group(url, mode="w", zarr_format=3)
        for k in ("obs", "var", "X"):  # gzip: not a codec the direct reader takes
            ad.io.write_elem(g, k, getattr(adata, k), dataset_kwargs={"compressors": (zarr.codecs.GzipCodec(),)})
        ad.io.write_elem(g, "uns", {})
        zarr.consolidate_metadata(url)
    _fallback_equal(url)
    url2 = str(tmp_path / "n.zarr")
    with store.zarr_v3_writes():
        adata.write_zarr(url2)
        zarr.consolidate_metadata(url2)
    # the store's layout is read directly, the nullable column's encoding is not: anndata reads that frame
    _fallback_equal(url2, fast_expected=True)
    with pytest.raises(anndata_zarr.Unsupported):
        anndata_zarr.Reader(url2).read("obs")


def test_fallback_for_zarr_v2_remote_urls_and_the_switch(tmp_path, monkeypatch, ingested):
    adata = ad.AnnData(X=np.ones((2, 1), dtype=np.float32), obs=pd.DataFrame({"t": ["a", "\u00e9"]}, index=["x", "y"]))
    url = str(tmp_path / "v2.zarr")
    with store._quiet(), ad.settings.override(zarr_write_format=2):
        adata.write_zarr(url)
    _fallback_equal(url)
    src = next(u for u in ingested if u.endswith("GSE9.zarr"))
    mem = f"memory://direct-{tmp_path.name}/c.zarr"
    import fsspec

    mfs = fsspec.filesystem("memory")
    for dirpath, _, files in os.walk(src):
        for f in files:
            full = os.path.join(dirpath, f)
            mfs.pipe(mem.replace("memory://", "/") + "/" + os.path.relpath(full, src), Path(full).read_bytes())
    assert store._direct(mem) is None
    pd.testing.assert_frame_equal(store.read_obs(mem), store.read_obs(src), check_exact=True)
    monkeypatch.setenv("GENOTEX_DASK_DIRECT_READS", "0")
    assert store._direct(src) is None
    pd.testing.assert_frame_equal(store.read_var(src), _anndata_elements(src)[1], check_exact=True)


def test_digest_files_listed_as_fsspec_lists_them(cohort):
    """The operator cache's key hashes every file of a node: the local walk must list and read what fsspec does."""
    from genotex_dask.io import fs

    fsys, root = fs.get_fs(str(cohort))

    def by_fsspec(node):
        files = sorted(fsys.find(node))
        return sorted(fsys.cat(files).items()) if files else []

    node = f"{root}/var/Gene Symbol"
    (cohort / "var" / "Gene Symbol" / "c" / "extra").write_bytes(b"x")  # a stray file counts, as with fsspec
    assert store._node_files(fsys, node) == by_fsspec(node) and len(by_fsspec(node)) == 3
    os.symlink(cohort / "zarr.json", cohort / "var" / "Gene Symbol" / "link")  # a link: fsspec decides
    assert store._node_files(fsys, node) == by_fsspec(node)
    assert store._node_files(fsys, f"{root}/var/absent") == [] == by_fsspec(f"{root}/var/absent")

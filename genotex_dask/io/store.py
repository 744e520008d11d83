"""The Zarr cohort store: one AnnData-readable Zarr group per cohort, written atomically.

Layout of ``STORE/GEO/<Trait>/<cohort>.zarr`` and ``STORE/TCGA/<dir>.zarr`` (see README "Cohort store"):

- ``X``    samples x probes (GEO) or samples x genes (TCGA), float32 by default (float64 on request), in
           chunks of ``CHUNKS`` = 64 samples x 8192 features (2 MiB float32 per chunk: small enough for many
           chunks per worker, large enough to compress well; a preprocessing block of 64 samples reads one
           row of chunks), compressed with Blosc LZ4 + bit-shuffle (``X_COMPRESSORS``).  NaN marks a missing
           cell.
- ``obs``  one row per sample (index: GSM or TCGA barcode), every column a string ("" = absent).
- ``var``  one row per feature (index: probe ID or gene ID as str), every column a string ("" = absent).
- ``uns``  one JSON string under ``uns['genotex']`` (a Zarr node per scalar would cost more time than the
           data); :func:`read_uns` / :func:`open_cohort` decode it into ``ingest`` (version, kind, trait,
           cohort, source fingerprints...), ``series`` / ``platform`` for GEO, ``clinical_matrix_tsv`` for
           TCGA and ``column_names`` (original names of renamed columns).
- ``genotex_ingest.json`` next to the Zarr metadata: the ingest record (version, source fingerprints,
  shape, dtype), written into the temporary group before it is published by ``fs.atomic_dir`` (whose
  ``.complete`` marker comes last).  A group without both is incomplete and is rewritten by the next ingest.

Column names containing ``/`` (not allowed in Zarr keys, e.g. ``contact_zip/postal_code``) are stored with
``_`` instead; ``uns['column_names']`` maps the stored name back to the original.
"""

from __future__ import annotations

import json
import os
import stat
import threading
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import anndata as ad
import dask.array as da
import fsspec.implementations.local
import numpy as np
import pandas as pd
import zarr

from genotex_dask import config as gconfig
from genotex_dask.io import anndata_zarr, filewrite, fs

INGEST_VERSION = 2  # 2: obs/var index names kept
CHUNKS = (64, 8192)
COMPLETE_MARK = "genotex_ingest.json"
ZARR_FORMAT = 3
UNS_KEY = "genotex"  # uns holds one JSON string under this key (see module docstring)
# Blosc LZ4 with bit-shuffle for expression matrices: measured on a 54,675 x 167 float32 cohort against Zarr's default
# zstd it is smaller (28 vs 30 MB), 5x cheaper to write and 2x cheaper to read (0.05 vs 0.11 CPU-s per cohort).
X_COMPRESSORS = (zarr.codecs.BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle"),)

__all__ = [
    "INGEST_VERSION", "CHUNKS", "write_cohort", "open_cohort", "cohort_X_dask", "read_obs", "read_var",
    "read_uns", "unpack_uns", "is_complete", "read_completion", "sources_unchanged", "zarr_store", "CohortMeta",
]


def zarr_store(url: str, read_only: bool = False):
    """A Zarr store object for any fsspec URL (local paths are handed to Zarr as plain paths)."""
    if fs.is_local(url):
        _, path = fs.get_fs(url)
        return zarr.storage.LocalStore(path, read_only=read_only)
    return zarr.storage.FsspecStore.from_url(url, read_only=read_only)


def _str_cells(values: np.ndarray) -> np.ndarray:
    """Every cell as str, "" for a missing one; a column of str and missing cells (a parsed annotation table)
    is only copied, without a ``str()`` call per cell."""
    missing = pd.isna(values)
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        out = values.copy()
    else:
        out = np.array([str(v) for v in values], dtype=object)
    out[missing] = ""
    return out


def _safe_names(columns, index_name, renamed: dict[str, str]) -> tuple[list[str], object]:
    """(stored column names: no '/', unique, not ``_index``; the index name, None when a column takes it)."""
    names: list[str] = []
    for col in columns:
        name = str(col)
        safe = name.replace("/", "_")
        while safe in names or safe == "_index":
            safe += "_"
        if safe != name:
            renamed[safe] = name
        names.append(safe)
    if index_name is not None and (str(index_name) in names or "/" in str(index_name)):
        index_name = None  # a column of that name wins; anndata stores the index under its name
    return names, index_name


def _clean_frame(frame: pd.DataFrame, renamed: dict[str, str]) -> pd.DataFrame:
    """Every column as str ("" for missing) and no '/' in names; the index as str."""
    names, index_name = _safe_names(frame.columns, frame.index.name, renamed)
    index = pd.Index([str(i) for i in frame.index], dtype=object, name=index_name)
    cols = {safe: _str_cells(frame[col].to_numpy(dtype=object)) for safe, col in zip(names, frame.columns)}
    return pd.DataFrame(cols, index=index, dtype=object) if cols else pd.DataFrame(index=index)


def encode_platform_var(table, probes: np.ndarray, index_name: str = "ID") -> tuple[dict, dict, int] | None:
    """(var objects, renamed columns, number of the table's IDs among the probes) of a cohort whose var is a
    platform annotation table (pyarrow, str columns, the probe ID first) matched to the matrix's ``probes``:
    the same objects as ``write_cohort`` makes from ``table`` (to pandas, duplicate IDs dropped keeping the
    first, reindexed by the probes, index named ``index_name``), built column by column in pyarrow with no
    Python string per cell (through pandas that cost ~0.25 CPU-s for a 54,675 x 16 table).  A missing ID
    (a null cell) matches no probe, as NaN in pandas' index does.  None for what the direct encoder does
    not cover (the caller then takes the pandas path)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if table.num_columns == 0 or len(probes) == 0 or not all(pa.types.is_string(t) for t in table.schema.types):
        return None
    renamed: dict[str, str] = {}
    names, idx_name = _safe_names(table.column_names[1:], index_name, renamed)
    index_key = "_index" if idx_name is None else str(idx_name)
    if len(set(names)) != len(names) or index_key in names or not all(
            anndata_zarr.plain_name(c) for c in [index_key, *names]):
        return None
    probe_ids = np.asarray(probes, dtype=object)
    if pd.api.types.infer_dtype(probe_ids, skipna=False) != "string":
        return None
    ids = table.column(0).combine_chunks()
    probe_arr = pa.array(probe_ids, type=pa.string())
    rows = pc.index_in(probe_arr, value_set=ids)  # first match: duplicates dropped
    n_annotated = int(pc.count_distinct(rows).as_py())
    out: dict[str, bytes] = {}
    enc = anndata_zarr.Encoder(out)
    out["var/zarr.json"] = anndata_zarr.group_meta({"column-order": names, "_index": index_key,
                                                    "encoding-type": "dataframe", "encoding-version": "0.2.0"})
    enc.arrow_strings(f"var/{index_key}", probe_arr)  # the bytes strings() makes, from the arrow array at once
    # a series matrix usually lists the probes in its platform table's order: then row i is probe i, no gather
    rn = rows.to_numpy(zero_copy_only=False) if not rows.null_count else None
    in_order = rn is not None and len(rn) == table.num_rows and bool((rn == np.arange(len(rn))).all())
    for safe, j in zip(names, range(1, table.num_columns)):
        col = pc.fill_null(table.column(j) if in_order else pc.take(table.column(j), rows), "")
        enc.arrow_strings(f"var/{safe}", col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col)
    return out, renamed, n_annotated


def encode_string_frame(frame: pd.DataFrame, group: str) -> dict[str, bytes] | None:
    """The objects anndata's ``write_elem`` makes for a frame of str cells under ``group``, encoded directly
    (:mod:`genotex_dask.io.anndata_zarr`): through anndata, encoding a platform annotation (54,675 probes x
    16 columns) cost 0.3 CPU-s, more than the whole X.  None for a frame it does not cover (no rows, a name
    Zarr may refuse, a cell not str): the caller then lets anndata write it."""
    out: dict[str, bytes] = {}
    cols = [frame.index.to_numpy(dtype=object), *(frame[c].to_numpy(dtype=object) for c in frame.columns)]
    if not all(pd.api.types.infer_dtype(c, skipna=False) == "string" for c in cols):  # str cells only
        return None
    return out if anndata_zarr.Encoder(out).frame(group, frame) else None


def _to_jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray, pd.Index)):
        return [_to_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def write_cohort(url: str, X: np.ndarray, obs: pd.DataFrame, var: pd.DataFrame, uns: dict,
                 sources: dict[str, dict], float64: bool = False, var_encoded: dict | None = None,
                 keep_var: dict | None = None, var_link_dir: str | None = None, direct: bool = False) -> dict:
    """Write one cohort group atomically and then its completion record; returns the record.

    ``X`` is samples x features; ``sources`` maps a role (``matrix``, ``soft``, ``expression``,
    ``clinical``) to ``{"url", "size", "mtime", "etag"}`` of the file ingested, kept for resume.
    ``var_encoded`` (``{"objects": {zarr key under var/: bytes}, "renamed": {...}}``, as a previous call
    left in its ``keep_var`` dict) supplies the var group already encoded: cohorts on one platform share
    it byte for byte, and encoding 50,000 x 16 annotation strings costs more than the whole X (``var`` then
    only needs the right index length).  ``var_link_dir``: a local directory holding those objects as files
    (a platform entry's copy); they are hard-linked into the group instead of written (:func:`_link_same`).
    ``direct``: the large files (X's chunks) are written past the page cache (:func:`filewrite.write_past_cache`), for a
    caller that will not read them back soon.
    """
    if X.shape != (len(obs), len(var)):
        raise ValueError(f"X shape {X.shape} does not match obs {len(obs)} x var {len(var)}")
    renamed_obs: dict[str, str] = {}
    renamed_var: dict[str, str] = {}
    obs_c = _clean_frame(obs, renamed_obs)
    # obs and var are str frames: encoded directly (encode_string_frame), anndata writing them empty
    obs_objects = encode_string_frame(obs_c, "obs")
    if obs_objects is not None:
        obs_c = pd.DataFrame(index=pd.Index([], dtype=object))
    var_c = None
    if var_encoded is None:
        var_c = _clean_frame(var, renamed_var)
        var_objects = encode_string_frame(var_c, "var")
        if var_objects is not None:
            var_encoded = {"objects": var_objects, "renamed": renamed_var}
            if keep_var is not None:
                keep_var.update(objects=var_objects, renamed=dict(renamed_var))
                keep_var = None
    if var_encoded is not None:
        renamed_var = dict(var_encoded["renamed"])
        # replaced by the encoded group below, so written empty: X goes in on its own, and encoding a
        # placeholder index of 50,000 strings only to drop it cost ~0.05 CPU-s per cohort
        var_c = pd.DataFrame(index=pd.Index([], dtype=object))
    dtype = np.float64 if float64 else np.float32
    uns_all = dict(uns)
    uns_all["ingest"] = {**uns.get("ingest", {}), "version": INGEST_VERSION, "float64": bool(float64),
                         "sources": sources}
    uns_all["column_names"] = {"obs": renamed_obs, "var": renamed_var}
    # one JSON string instead of a Zarr node per scalar: each node costs a few ms of metadata I/O
    packed = {UNS_KEY: json.dumps(_to_jsonable(uns_all), default=str)}
    c0, c1 = (int(v) for v in gconfig.get("store.chunks") or CHUNKS)  # dask.config genotex_dask.store.chunks
    chunks = (min(c0, max(1, X.shape[0])), min(c1, max(1, X.shape[1])))
    record = {"version": INGEST_VERSION, "sources": sources, "n_obs": int(X.shape[0]),
              "n_vars": int(X.shape[1]), "dtype": np.dtype(dtype).name, "chunks": list(chunks),
              "completed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if obs_objects is not None and var_encoded is not None:
        objects = cohort_objects(X, dtype, chunks, obs_objects, var_encoded["objects"], packed[UNS_KEY])
    else:
        objects = _cohort_objects_anndata(X, dtype, chunks, obs_c, var_c, packed, obs_objects,
                                          (var_encoded or {}).get("objects"))
        if var_encoded is None and keep_var is not None:
            keep_var["objects"] = {k: _as_bytes(v) for k, v in objects.items() if k.startswith("var/")}
            keep_var["renamed"] = dict(renamed_var)
    links = frozenset(var_encoded["objects"]) if (var_link_dir and var_encoded is not None) else frozenset()
    with fs.atomic_dir(url) as tmp:
        # the record written last with the group's files, without a temporary file, fsync and rename of its own:
        # inside the temporary group nothing is visible before atomic_dir publishes the whole directory (an fsync
        # of this one file never made the group's other files durable either)
        objects[COMPLETE_MARK] = fs.json_text(record).encode()
        dump_memory_store(objects, tmp, var_link_dir, links, filewrite.write_past_cache if direct else None)
    return record


def _as_bytes(v) -> bytes:
    return v if isinstance(v, bytes) else v.to_bytes()


def _cohort_objects_anndata(X: np.ndarray, dtype, chunks: tuple[int, int], obs_c: pd.DataFrame,
                            var_c: pd.DataFrame, packed: dict, obs_objects: dict | None,
                            var_objects: dict | None) -> dict:
    """The cohort group's Zarr objects as anndata writes them (the general path, and the reference that
    :func:`cohort_objects` is tested against); ``obs_objects``/``var_objects`` replace the frames' groups."""
    objects: dict = {}
    adata = ad.AnnData(obs=obs_c, var=var_c, uns=packed)
    with zarr_v3_writes():
        target = zarr.storage.MemoryStore(store_dict=objects)
        adata.write_zarr(target, convert_strings_to_categoricals=False)
        # X with its own codec (obs/var strings keep anndata's default), then the consolidated metadata again
        group = zarr.open_group(target, mode="r+", use_consolidated=False)
        ad.io.write_elem(group, "X", np.asarray(X, dtype=dtype),
                         dataset_kwargs={"chunks": chunks, "compressors": X_COMPRESSORS})
        from zarr.core.buffer import default_buffer_prototype

        proto = default_buffer_prototype()
        for prefix, encoded in (("obs/", obs_objects), ("var/", var_objects)):
            if encoded is not None:
                for key in [k for k in objects if k.startswith(prefix)]:
                    del objects[key]
                for key, blob in encoded.items():
                    objects[key] = proto.buffer.from_bytes(blob)
        zarr.consolidate_metadata(target)
    return objects


def cohort_objects(X: np.ndarray, dtype, chunks: tuple[int, int], obs_objects: dict, var_objects: dict,
                   uns_json: str) -> dict:
    """The cohort group's Zarr objects (key -> bytes) built directly: the same bytes as
    :func:`_cohort_objects_anndata` (tests/test_store_encode.py), without anndata's ~100 hops to Zarr's I/O
    thread, and X encoded chunk by chunk from the array as given (no matrix-sized float32 copy first)."""
    out: dict = {**obs_objects, **var_objects}
    anndata_zarr.Encoder(out, X_COMPRESSORS[0]).numeric("X", X, chunks=chunks, dtype=dtype)
    anndata_zarr.Encoder(out).mapping("uns", {UNS_KEY: uns_json})
    anndata_zarr.skeleton(out)
    anndata_zarr.consolidate(out, _ANNDATA_SETTINGS)
    return out


def dump_memory_store(objects: dict, url: str, link_from: str | None = None,
                      link_keys: frozenset[str] | set[str] = frozenset(),
                      write_file: Callable[[str, Any], None] | None = None) -> None:
    """Write the objects of a Zarr MemoryStore (key -> buffer, or bytes) as files under ``url``.

    Why build Zarr groups in memory first: anndata writes tens of small arrays and groups, and each Zarr
    operation on a LocalStore is a hop to Zarr's I/O thread plus file calls; in memory the same write costs
    a fraction, and the files are then written in one pass (into the atomic temporary directory).

    ``link_from`` (a local directory holding files of the same keys and bytes, e.g. a platform entry's var
    group): each key of ``link_keys`` found there as a regular file of the object's size is hard-linked
    instead of written (:func:`_link_same`); any other is written as usual.  ``write_file(path, data)`` writes
    one new local file (default :func:`filewrite.write_new_file`; preprocess passes one that sends large chunks past the
    page cache).
    """
    local = fs.is_local(url)
    fsys, root = fs.get_fs(url)
    made: set[str] = set()
    link_root = fs.get_fs(link_from)[1].rstrip("/") if (link_from and local and link_keys) else None
    write_file = write_file or filewrite.write_new_file
    for key, buf in objects.items():
        path = f"{root.rstrip('/')}/{key}"
        if local:
            parent = os.path.dirname(path)
            if parent not in made:
                _mkdirs(parent, made)
            data = buf if isinstance(buf, bytes) else buf.as_numpy_array()  # a view: no copy of X
            if link_root is not None and key in link_keys and _link_same(f"{link_root}/{key}", path, data.nbytes
                                                                         if isinstance(data, np.ndarray) else len(data)):
                continue
            write_file(path, data)
        else:
            fsys.pipe_file(path, buf if isinstance(buf, bytes) else buf.to_bytes())


def _mkdirs(path: str, made: set[str]) -> None:
    """``os.makedirs(path, exist_ok=True)`` remembering in ``made`` what exists: one mkdir per new directory
    (os.makedirs stats every ancestor first: ~3 calls per directory, ~90 directories per cohort group)."""
    for attempt in (0, 1):
        try:
            os.mkdir(path)
            break
        except FileExistsError:  # also when another thread or worker made it first (cohorts run concurrently)
            if not os.path.isdir(path):
                raise
            break
        except FileNotFoundError:
            parent = os.path.dirname(path)
            if attempt or parent == path or parent in made:
                raise
            _mkdirs(parent, made)
    made.add(path)


def _link_same(src: str, dst: str, size: int) -> bool:
    """Hard-link ``src`` to ``dst`` when ``src`` is a regular file (not a symbolic link) of ``size`` bytes;
    False when it is not or the file system refuses (another device, no hard links, link count at its
    maximum): the caller then writes the bytes.

    Why: cohorts on one platform share their var group byte for byte (1.8 MB in 35 files for GPL570).  A link
    costs one metadata operation where writing costs copying the bytes into fresh page-cache pages (on this
    project's VM 2.5-5 ms per MB of system time, the ingest's largest cost after inflating and parsing the
    matrix), and the store keeps one copy per platform instead of one per cohort.  Files of a store are
    never rewritten in place (groups are replaced whole by ``fs.atomic_dir``), so a shared inode never changes
    under a reader."""
    try:
        st = os.lstat(src)
        if not stat.S_ISREG(st.st_mode) or st.st_size != size:
            return False
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        return False
    return True


_ANNDATA_SETTINGS = threading.Lock()


def zarr_v3_lock() -> threading.Lock:
    """The lock :func:`zarr_v3_writes` holds (also taken around Zarr calls that need warnings silenced)."""
    return _ANNDATA_SETTINGS


@contextmanager
def zarr_v3_writes():
    """anndata writes Zarr format 3 inside this block, one thread of the process at a time.

    ``anndata.settings.override`` sets a process-wide value and restores the old one on exit: two worker
    threads writing at once restore each other's format mid-write, and a format-2 string codec lands in a
    format-3 array ("Expected a ArrayArrayCodec. Got VLenUTF8", seen on a minimum-version install).
    """
    with _ANNDATA_SETTINGS, _quiet(), ad.settings.override(zarr_write_format=ZARR_FORMAT):
        yield


@contextmanager
def _quiet():
    """zarr/anndata announce future defaults (v3 sharding, consolidated metadata): not actionable here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def _mark(url: str) -> str:
    return url.rstrip("/") + "/" + COMPLETE_MARK


def read_completion(url: str) -> dict | None:
    """The completion record of a cohort group, or None when the group is absent or incomplete."""
    try:
        return fs.read_json(_mark(url))
    except (FileNotFoundError, json.JSONDecodeError, OSError):
        return None


def is_complete(url: str) -> bool:
    """True when the group was published whole (fs marker) by the current ingest version."""
    if not fs.is_complete_dir(url):
        return False
    rec = read_completion(url)
    return rec is not None and rec.get("version") == INGEST_VERSION


def sources_unchanged(url: str, sources: dict[str, dict], float64: bool | None = None) -> bool:
    """True when ``url`` is complete and was ingested from exactly these source fingerprints (and dtype)."""
    if not is_complete(url):
        return False
    rec = read_completion(url) or {}
    if float64 is not None and rec.get("dtype") != ("float64" if float64 else "float32"):
        return False
    return json.loads(json.dumps(rec.get("sources"))) == json.loads(json.dumps(sources))


def _group(url: str) -> zarr.Group:
    with _quiet():
        return zarr.open_group(zarr_store(url, read_only=True), mode="r")


def _direct(url: str) -> anndata_zarr.Reader | None:
    """The direct reader of a local cohort group (:class:`anndata_zarr.Reader`: one read of the consolidated
    metadata, chunks decoded in this thread), or None for a group it does not cover (remote URLs included):
    read through anndata then.  A malformed group raises InputFormatError naming the file.
    ``GENOTEX_DASK_DIRECT_READS=0`` in the environment turns it off (every read through anndata)."""
    if not fs.is_local(url) or os.environ.get("GENOTEX_DASK_DIRECT_READS", "1") == "0":
        return None
    try:
        return anndata_zarr.Reader(fs.get_fs(url)[1])
    except anndata_zarr.Unsupported:
        return None


class _Elements:
    """Elements of one cohort group: read directly when the layout allows, else through anndata (the Zarr
    group opened once, on the first element that needs it)."""

    def __init__(self, url: str):
        self.url = url
        self.direct = _direct(url)
        self._group: zarr.Group | None = None

    @property
    def group(self) -> zarr.Group:
        if self._group is None:
            self._group = _group(self.url)
        return self._group

    def read(self, key: str, frame_strings: bool = False) -> Any:
        """The element at ``key`` as ``anndata.io.read_elem`` returns it (``frame_strings``: a string array as
        an object array of str, as in a data frame, whichever way it is read)."""
        if self.direct is not None:
            try:
                return self.direct.read(key, frame_strings=frame_strings)
            except anndata_zarr.Unsupported:
                pass
        node = self.group
        for part in key.split("/"):
            node = node[part]
        value = ad.io.read_elem(node)
        if frame_strings and isinstance(value, np.ndarray) and value.dtype.kind == "T":
            value = value.astype(object)
        return value

    def attrs(self, key: str) -> dict:
        if self.direct is not None:
            return self.direct.attrs(key)
        return dict(self.group[key].attrs)


def _restore_names(frame: pd.DataFrame, mapping: dict) -> pd.DataFrame:
    if mapping:
        frame = frame.rename(columns={k: str(v) for k, v in mapping.items()})
    return frame


def read_uns(url: str) -> dict:
    """The cohort's metadata dict (``ingest``, ``series``, ``platform``, ``column_names``, ...)."""
    return unpack_uns(_Elements(url).read("uns"))


def unpack_uns(uns: dict) -> dict:
    """Decode the JSON kept under ``uns['genotex']`` (what plain ``anndata.read_zarr`` shows) into a dict."""
    if UNS_KEY not in uns:
        return dict(uns)
    out = {k: v for k, v in uns.items() if k != UNS_KEY}
    out.update(json.loads(str(uns[UNS_KEY])))
    return out


def _read_frame(url: str, which: str, original_names: bool) -> pd.DataFrame:
    elements = _Elements(url)
    frame = elements.read(which)
    if not original_names:
        return frame
    names = unpack_uns(elements.read("uns")).get("column_names", {}).get(which, {})
    return _restore_names(frame, dict(names))


def read_obs(url: str, original_names: bool = True) -> pd.DataFrame:
    """Sample metadata (strings); ``original_names`` restores column names that contained '/'."""
    return _read_frame(url, "obs", original_names)


def read_var(url: str, original_names: bool = True) -> pd.DataFrame:
    """Feature annotation (strings), indexed by probe/gene ID."""
    return _read_frame(url, "var", original_names)


class CohortMeta:
    """One cohort's metadata from a single opening of its group: what preprocessing needs before any X.

    The group is read directly (:func:`_direct`: its consolidated metadata parsed once, each column's chunks
    decoded in this thread: 1.2 CPU-ms for what preprocessing reads of a 54,675 x 167 GEO cohort), else through
    Zarr, where opening the group parses its metadata into ~40 node objects and each array read is a hop to
    Zarr's I/O thread (7.8 CPU-ms).  Only uns and the columns asked for are read.
    """

    def __init__(self, url: str):
        self.url = url
        self.elements = _Elements(url)
        self.uns = unpack_uns(self.elements.read("uns"))
        self.completion = read_completion(url) or {}
        self._memo: dict = {}

    def _stored(self, which: str) -> dict[str, str]:
        """original column name -> stored name."""
        names = self.uns.get("column_names", {}).get(which, {})
        order = self.elements.attrs(which).get("column-order", [])
        back = {str(k): str(v) for k, v in names.items()}
        return {back.get(str(c), str(c)): str(c) for c in order}

    def columns(self, which: str) -> list[str]:
        """Original names of the obs/var columns, without reading any of them."""
        return list(self._stored(which))

    def index_key(self, which: str) -> str:
        return str(self.elements.attrs(which).get("_index", "_index"))

    def index(self, which: str) -> list[str]:
        """The obs/var index as str, decoded once per opening (the symbol check and the operator both use it)."""
        key = ("index", which)
        if key not in self._memo:
            values = self.elements.read(f"{which}/{self.index_key(which)}", frame_strings=True)
            cells = values.tolist()
            str_only = pd.api.types.infer_dtype(values, skipna=False) == "string"  # one C pass, no str() a cell
            self._memo[key] = cells if str_only else [str(i) for i in cells]
        return self._memo[key]

    def column(self, which: str, name: str) -> np.ndarray:
        """One obs/var column as stored (a str column as an object array of str, as in :meth:`frame`)."""
        return self.elements.read(f"{which}/{self._stored(which).get(name, name)}", frame_strings=True)

    def frame(self, which: str, keep=None) -> pd.DataFrame:
        """obs/var with the columns whose original name passes ``keep`` (all when None)."""
        stored = {c: s for c, s in self._stored(which).items() if keep is None or keep(c)}
        data = {c: self.elements.read(f"{which}/{s}", frame_strings=True) for c, s in stored.items()}
        idx = pd.Index(self.index(which), name=self.index_key(which) if self.index_key(which) != "_index" else None)
        return pd.DataFrame(data, index=idx, columns=list(stored))

    def digest(self, which: str, names: list[str]) -> str:
        """sha1 of the stored bytes (metadata and chunks) of the index and the named columns: equal content,
        equal digest, with nothing decoded (a key for caches shared by cohorts on one platform)."""
        import hashlib

        key = ("digest", which, tuple(names))
        if key in self._memo:
            return self._memo[key]
        fsys, root = fs.get_fs(self.url)
        stored = self._stored(which)
        h = hashlib.sha1()
        for name in [self.index_key(which), *(stored.get(n, n) for n in names)]:
            node = f"{root.rstrip('/')}/{which}/{name}"
            h.update(name.encode() + b"\x1e")
            for f, blob in _node_files(fsys, node):
                h.update(f.rsplit(f"/{which}/", 1)[-1].encode() + b"\x1f" + blob)
        self._memo[key] = h.hexdigest()
        return self._memo[key]


def _node_files(fsys, node: str) -> list[tuple[str, bytes]]:
    """(path, bytes) of every file under the directory ``node``, sorted by path: on a local disk by a scandir walk
    and plain reads (fsspec's find and cat cost ~0.3 ms more per cohort), else, and whenever a symbolic link is
    met, by fsspec."""
    paths: list[str] = []
    if isinstance(fsys, fsspec.implementations.local.LocalFileSystem) and _walk_files(node, paths):
        out = []
        for path in sorted(paths):
            with open(path, "rb") as f:
                out.append((path, f.read()))
        return out
    files = sorted(fsys.find(node))
    return sorted(fsys.cat(files).items()) if files else []


def _walk_files(directory: str, out: list[str]) -> bool:
    """Regular files under ``directory`` into ``out``; False (give up) at a symbolic link or a missing directory."""
    try:
        with os.scandir(directory) as entries:
            for e in entries:
                if e.is_symlink():
                    return False
                if e.is_dir():
                    if not _walk_files(e.path, out):
                        return False
                elif e.is_file():
                    out.append(e.path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    return True


def cohort_X_dask(url: str, chunks: Any = None) -> da.Array:
    """X as a Dask array straight from Zarr (samples x features); ``chunks`` rechunks on read, e.g. (64, -1)."""
    arr = da.from_zarr(zarr_store(url, read_only=True), component="X")
    return arr if chunks is None else arr.rechunk(chunks)


def open_cohort(url: str, lazy: bool = False) -> ad.AnnData:
    """The cohort as AnnData (via ``anndata.read_zarr``), ``uns`` decoded; ``lazy=True``: X a Dask array."""
    if not lazy:
        with _quiet():
            adata = ad.read_zarr(zarr_store(url, read_only=True))
        adata.uns = unpack_uns(dict(adata.uns))
        return adata
    return ad.AnnData(X=cohort_X_dask(url), obs=read_obs(url, original_names=False),
                      var=read_var(url, original_names=False), uns=read_uns(url))

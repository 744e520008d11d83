"""AnnData elements encoded straight into Zarr v3 objects (key -> bytes), the bytes anndata's writer makes.

Why: anndata writes every array and group through Zarr's async API, and each call is a hop to Zarr's I/O
thread.  A cohort store is ~35 nodes (the preprocessed one: obs categoricals, uns scalars...), which cost
more CPU in hops and metadata handling than encoding the data: 0.07 CPU-s for a 167 x 20,000 cohort, against
~0.02 here.  The codecs are the ones Zarr itself calls (numcodecs' VLenUTF8, Zstd, Blosc), the metadata the
JSON Zarr writes, the chunking Zarr's ``chunks="auto"`` picks, and chunks holding only the fill value are left
out as Zarr does; tests/test_store_encode.py compares every object with anndata's output.

Covered: str and numeric arrays, numeric and str scalars, dicts of those, data frames of such columns
and pandas categoricals, dense 2-D matrices with given chunks.  Anything else (nullable pandas dtypes,
sparse matrices, empty frames, names Zarr may refuse) makes :meth:`Encoder.frame` / :meth:`Encoder.mapping`
return False, and the caller writes with anndata instead.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Mapping

import numpy as np
import pandas as pd

from genotex_dask.io import thread_buffers

_ZSTD = {"name": "zstd", "configuration": {"level": 0, "checksum": False}}  # Zarr's default compressor
_KEY_ENCODING = {"name": "default", "configuration": {"separator": "/"}}
_SHUFFLE = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}
_NUMERIC = "iuf"  # signed, unsigned, float


def _numcodecs_at_least(major: int, minor: int) -> bool:
    import numcodecs

    try:
        got = tuple(int(x) for x in numcodecs.__version__.split(".")[:2])
    except ValueError:
        return True
    return got >= (major, minor)


_BLOSC_TAKES_TYPESIZE = _numcodecs_at_least(0, 16)  # Zarr passes Blosc its typesize from numcodecs 0.16 on


def to_json(meta: dict) -> bytes:
    """Metadata as Zarr writes it (2-space indent)."""
    return json.dumps(meta, indent=2).encode()


_ARRAY_JSON: dict[str, bytes] = {}  # array metadata by its fields: a frame's columns of one length share it
_ARRAY_JSON_MAX = 512


def _array_json(shape: list[int], data_type: str, chunk: list[int], fill, first_codec: dict, compressor: dict,
                encoding: str, version: str) -> bytes:
    """An array's zarr.json as Zarr writes it, from a cache keyed by the fields (compact JSON, which tells 0,
    0.0 and false apart): the indented dump runs in pure Python (~0.1 ms each) and the ~20 columns of an obs
    or var frame have the same metadata."""
    fields = [shape, data_type, chunk, fill, first_codec, compressor, encoding, version]
    key = json.dumps(fields)
    hit = _ARRAY_JSON.get(key)
    if hit is None:
        hit = to_json({
            "shape": shape, "data_type": data_type,
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunk}},
            "chunk_key_encoding": _KEY_ENCODING, "fill_value": fill,
            "codecs": [first_codec, compressor],
            "attributes": {"encoding-type": encoding, "encoding-version": version},
            "zarr_format": 3, "node_type": "array", "storage_transformers": []})
        if len(_ARRAY_JSON) >= _ARRAY_JSON_MAX:
            _ARRAY_JSON.clear()  # bounded; rebuilt on the next calls
        _ARRAY_JSON[key] = hit
    return hit


def group_meta(attrs: dict) -> bytes:
    return to_json({"attributes": attrs, "zarr_format": 3, "node_type": "group"})


def auto_chunk(shape: tuple[int, ...], item_size: int) -> list[int]:
    """The chunk shape Zarr picks for ``chunks="auto"`` (as anndata writes 1-D arrays)."""
    try:
        from zarr.core.chunk_grids import _guess_chunks
    except ImportError:  # another Zarr layout: one chunk (readable all the same: the shape is in the metadata)
        return [max(1, s) for s in shape]
    return [int(c) for c in _guess_chunks(shape, item_size)]


def plain_name(name: str) -> bool:
    """A node name Zarr takes as it is (else the caller lets anndata and Zarr decide)."""
    return bool(name) and name not in (".", "..") and not name.startswith("__") and "/" not in name


def chunk_block_role(dtype: np.dtype) -> str:
    """The :mod:`thread_buffers` role of the encoder's staging block for chunks stored as ``dtype`` (one per dtype)."""
    return f"encode-chunk-{np.dtype(dtype).str}"


class Encoder:
    """Encodes elements into ``out`` with one compressor: None = Zarr's default (zstd level 0), or a
    ``zarr.codecs.BloscCodec`` (as passed to anndata's ``write_zarr(..., compressors=(codec,))``)."""

    def __init__(self, out: dict[str, bytes], blosc=None):
        self.out = out
        self.blosc = blosc

    # ---- codecs ----
    def _compressor_meta(self, item_size: int) -> dict:
        if self.blosc is None:
            return _ZSTD
        b = self.blosc
        typesize = b.typesize if "typesize" not in getattr(b, "_tunable_attrs", ()) else item_size
        return {"name": "blosc", "configuration": {"typesize": typesize, "cname": b.cname.name, "clevel": b.clevel,
                                                   "shuffle": b.shuffle.name, "blocksize": b.blocksize}}

    def _compress(self, item_size: int):
        from numcodecs import Blosc, Zstd

        if self.blosc is None:
            return Zstd(level=0, checksum=False)
        c = {**self._compressor_meta(item_size)["configuration"]}
        c["shuffle"] = _SHUFFLE[c["shuffle"]]
        if not _BLOSC_TAKES_TYPESIZE:  # as Zarr calls it: older numcodecs infer it (1, from the bytes given)
            c.pop("typesize")
        return Blosc.from_config(c)

    def _array_meta(self, key: str, shape: list[int], data_type: str, chunk: list[int], fill, first_codec: dict,
                    item_size: int, encoding: str, version: str = "0.2.0") -> None:
        self.out[f"{key}/zarr.json"] = _array_json(shape, data_type, chunk, fill, first_codec,
                                                   self._compressor_meta(item_size), encoding, version)

    # ---- arrays ----
    def strings(self, key: str, values, scalar: bool = False) -> None:
        """A "string-array" (or, ``scalar``, a "string") node: vlen-utf8 chunks, empty ones left out."""
        from numcodecs import VLenUTF8

        arr = np.asarray(values, dtype=object).reshape(-1)
        n = len(arr)
        step = 1 if scalar else auto_chunk((n,), 1)[0]
        self._array_meta(key, [] if scalar else [n], "string", [] if scalar else [step], "",
                         {"name": "vlen-utf8", "configuration": {}}, 1, "string" if scalar else "string-array")
        vlen, comp = VLenUTF8(), self._compress(1)
        for i, lo in enumerate(range(0, n, step)):
            part = arr[lo:lo + step]
            if len(part) < step:  # the edge chunk is stored full size, padded with the fill value
                part = np.concatenate([part, np.full(step - len(part), "", dtype=object)])
            if not any(part):  # every cell is the fill value "": Zarr writes no chunk (write_empty_chunks off)
                continue
            self.out[f"{key}/c" if scalar else f"{key}/c/{i}"] = comp.encode(vlen.encode(part))

    def arrow_strings(self, key: str, values) -> None:
        """The "string-array" node :meth:`strings` writes for the same cells, from a pyarrow string array
        without nulls: the vlen-utf8 bytes are laid out from the array's offsets and data buffers at once (a
        54,675 x 16 platform annotation as Python str cost ~50 ns per cell in numcodecs' encoder alone)."""
        n = len(values)
        step = auto_chunk((n,), 1)[0]
        self._array_meta(key, [n], "string", [step], "", {"name": "vlen-utf8", "configuration": {}}, 1,
                         "string-array")
        comp = self._compress(1)
        for i, lo in enumerate(range(0, n, step)):
            blob = vlen_utf8(values.slice(lo, step), step)
            if blob is not None:
                self.out[f"{key}/c/{i}"] = comp.encode(blob)

    def numeric(self, key: str, values: np.ndarray, chunks: tuple[int, ...] | None = None,
                dtype=None, encoding: str = "array") -> None:
        """A numeric/bool array (``encoding="numeric-scalar"`` for a 0-d one) in chunks of ``chunks`` (Zarr's
        automatic ones when None), cast chunk by chunk to ``dtype``; chunks of +0 / False only are left out."""
        arr = np.asarray(values)
        dt = np.dtype(dtype or arr.dtype).newbyteorder("<")
        shape = arr.shape
        chunk = list(chunks) if chunks is not None else (auto_chunk(shape, dt.itemsize) if shape else [])
        fill = False if dt.kind == "b" else (0.0 if dt.kind == "f" else 0)
        first = {"name": "bytes"} if dt.itemsize == 1 else {"name": "bytes", "configuration": {"endian": "little"}}
        self._array_meta(key, list(shape), np.dtype(dt.type).name, chunk, fill, first, dt.itemsize, encoding)
        comp = self._compress(dt.itemsize)
        if not shape:
            block = np.asarray(arr, dtype=dt).reshape(1).view(np.uint8)
            if block.any():
                self.out[f"{key}/c"] = comp.encode(block)
            return
        if list(shape) == chunk and arr.dtype == dt and arr.flags.c_contiguous:
            # one chunk that is the array as stored (a preprocessed X: 167 x 20k float32, 13.4 MB): encoded in
            # place, without a chunk-sized zeroed copy (a pass over the chunk, fresh pages above a worker's mmap
            # threshold)
            src = arr.reshape(-1).view(np.uint8)
            if src.any():
                self.out[f"{key}/c/" + "/".join("0" * len(shape))] = comp.encode(src)
            return
        # the chunk-sized staging block is the thread's kept one (a preprocessed X cast to float32: 13.4 MB, fresh
        # pages per cohort otherwise, which this project's VM backs afresh at ~2 ms per MB; thread_buffers), one per
        # dtype: a column of another dtype must not displace X's block
        role = chunk_block_role(dt)
        flat = thread_buffers.take(role, math.prod(chunk), dt)
        block = flat.reshape(chunk)
        grid = [range(0, s, c) for s, c in zip(shape, chunk)]
        for idx in np.ndindex(*(len(g) for g in grid)):
            sel = tuple(slice(g[i], g[i] + c) for g, i, c in zip(grid, idx, chunk))
            part = arr[sel]
            if part.shape != block.shape:
                block[...] = 0  # an edge chunk is stored full size, padded with the fill value
            block[tuple(slice(0, s) for s in part.shape)] = part
            if not block.view(np.uint8).any():  # fill value only (bit pattern of +0.0 / 0 / False)
                continue
            self.out[f"{key}/c/" + "/".join(map(str, idx))] = comp.encode(block.reshape(-1).view(np.uint8))
        thread_buffers.give(role, flat)  # encoded into new bytes: the block is free again

    # ---- containers ----
    def element(self, key: str, value) -> bool:
        """One frame column, dict entry or index: False for a kind this module does not cover."""
        if isinstance(value, pd.Categorical):
            codes, cats = np.asarray(value.codes), value.categories._values
            if not isinstance(cats, np.ndarray) or not self._array_kind(cats):
                return False
            self.out[f"{key}/zarr.json"] = group_meta({"ordered": bool(value.ordered), "encoding-type": "categorical",
                                                       "encoding-version": "0.2.0"})
            self.numeric(f"{key}/codes", codes)
            return self.element(f"{key}/categories", cats)
        if isinstance(value, Mapping):
            return self.mapping(key, value)
        if isinstance(value, str):
            self.strings(key, [value], scalar=True)
            return True
        if isinstance(value, (bool, np.bool_)):  # not compared with anndata's bytes: anndata writes it
            return False
        if isinstance(value, (int, float, np.number)) and not isinstance(value, np.ndarray):
            self.numeric(key, np.asarray(value), encoding="numeric-scalar")
            return True
        if isinstance(value, np.ndarray) and value.ndim == 1:
            kind = self._array_kind(value)
            if kind == "str":
                self.strings(key, value)
            elif kind == "num":
                self.numeric(key, value)
            return kind is not None
        return False

    @staticmethod
    def _array_kind(a: np.ndarray) -> str | None:
        if a.dtype.kind in _NUMERIC and a.dtype.isnative:  # bool arrays: left to anndata
            return "num"
        if a.dtype.kind == "O" and len(a) and pd.api.types.infer_dtype(a, skipna=False) == "string":
            return "str"
        return None

    def mapping(self, key: str, d: Mapping) -> bool:
        """A "dict" group of elements."""
        self.out[f"{key}/zarr.json"] = group_meta({"encoding-type": "dict", "encoding-version": "0.1.0"})
        return all(isinstance(k, str) and plain_name(k) and self.element(f"{key}/{k}", v) for k, v in d.items())

    def frame(self, key: str, df: pd.DataFrame) -> bool:
        """A "dataframe" group: the index under its name (``_index`` when unnamed), then every column."""
        index_key = "_index" if df.index.name is None else str(df.index.name)
        names = [c for c in df.columns]
        if not len(df) or not all(isinstance(c, str) and plain_name(c) for c in names) or not plain_name(index_key) \
                or len(set(names)) != len(names) or index_key in names:
            return False
        self.out[f"{key}/zarr.json"] = group_meta({"column-order": names, "_index": index_key,
                                                   "encoding-type": "dataframe", "encoding-version": "0.2.0"})
        if not self.element(f"{key}/{index_key}", df.index._values):
            return False
        return all(self.element(f"{key}/{c}", df[c]._values) for c in names)


def vlen_utf8(values, size: int) -> np.ndarray | None:
    """numcodecs' VLenUTF8 encoding (item count, then per item its byte length and UTF-8 bytes, lengths as
    little-endian uint32) of a pyarrow string array without nulls, padded with "" items to ``size``; None
    when every item is "" (Zarr writes no chunk of fill values only).  pyarrow joins each item's 4 length
    bytes to its text, so the joined array's data buffer is the encoding's body."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if values.null_count:
        raise ValueError("vlen_utf8: the array has nulls")
    if pa.types.is_large_string(values.type):
        off_type, binary = np.int64, pa.large_binary()
    elif pa.types.is_string(values.type):
        off_type, binary = np.int32, pa.binary()
    else:
        raise TypeError(f"vlen_utf8: not a string array ({values.type})")

    def offsets(arr) -> np.ndarray:
        return np.frombuffer(arr.buffers()[1], dtype=off_type, count=len(arr) + 1,
                             offset=arr.offset * np.dtype(off_type).itemsize)

    n = len(values)
    off = offsets(values)
    if off[-1] == off[0]:
        return None
    lens = np.diff(off).astype("<u4")
    heads = pa.FixedSizeBinaryArray.from_buffers(pa.binary(4), n, [None, pa.py_buffer(lens)]).cast(binary)
    joined = pc.binary_join_element_wise(heads, values.cast(binary), pa.scalar(b"", binary))
    joff = offsets(joined)
    body = np.frombuffer(joined.buffers()[2], dtype=np.uint8, count=int(joff[-1] - joff[0]), offset=int(joff[0]))
    out = np.zeros(4 + len(body) + 4 * (size - n), dtype=np.uint8)  # the padding items: zero length, no bytes
    out[:4] = np.array([size], dtype="<u4").view(np.uint8)
    out[4:4 + len(body)] = body
    return out


def skeleton(out: dict[str, bytes]) -> None:
    """The nodes of an AnnData group besides X, obs, var and uns: empty layers/obsm/obsp/varm/varp, raw = None
    (Zarr's default codec whatever the compressors), the root's attributes (its consolidated metadata is added
    by :func:`consolidate`)."""
    for name in ("layers", "obsm", "obsp", "varm", "varp"):
        out[f"{name}/zarr.json"] = group_meta({"encoding-type": "dict", "encoding-version": "0.1.0"})
    Encoder(out)._array_meta("raw", [], "bool", [], False, {"name": "bytes"}, 1, "null", "0.1.0")
    out["zarr.json"] = group_meta({"encoding-type": "anndata", "encoding-version": "0.1.0"})


def consolidate(out: dict[str, bytes], lock) -> None:
    """Zarr's consolidated metadata into the root zarr.json: built from the objects' metadata documents by
    :func:`consolidated_root` (Zarr's own consolidation, a trip through its async I/O thread that parses and
    re-dumps every document, cost ~6 ms per cohort), else by Zarr itself for documents of another shape.

    ``lock``: held around Zarr's call, with its "not in the v3 specification" warning silenced
    (catch_warnings is process-wide: two threads must not interleave it)."""
    root = consolidated_root(out)
    if root is not None:
        out["zarr.json"] = root
        return
    import warnings

    import zarr
    from zarr.core.buffer import default_buffer_prototype

    proto = default_buffer_prototype()

    class _WriteBack(dict):  # Zarr's MemoryStore keeps Buffers; ``out`` keeps bytes
        def __setitem__(self, k, v):
            out[k] = v if isinstance(v, bytes) else v.to_bytes()
            super().__setitem__(k, v)

    view = _WriteBack({k: proto.buffer.from_bytes(v) for k, v in out.items() if k.endswith("zarr.json")})
    with lock, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        zarr.consolidate_metadata(zarr.storage.MemoryStore(store_dict=view))


_GROUP_KEYS = ["attributes", "zarr_format", "node_type"]
_ARRAY_KEYS = ["shape", "data_type", "chunk_grid", "chunk_key_encoding", "fill_value", "codecs", "attributes",
               "zarr_format", "node_type", "storage_transformers"]
_NO_CHILDREN = {"kind": "inline", "must_understand": False, "metadata": {}}


def _nested(text: bytes, depth: int) -> bytes:
    """An indented JSON document as it reads nested ``depth`` levels deep (JSON strings hold no raw newline)."""
    return text.replace(b"\n", b"\n" + b"  " * depth)


def consolidated_root(out: dict[str, bytes]) -> bytes | None:
    """The root zarr.json that ``zarr.consolidate_metadata`` writes for the group in ``out``, or None when a
    document is not of the shapes this module writes (Zarr then consolidates).

    What Zarr writes: the root group's document with ``consolidated_metadata`` = every node below it under its
    path, ordered by depth then NFKC-casefolded path; a group's entry gets an empty ``consolidated_metadata``
    of its own, an array's entry is its document.  Array documents are the indented JSON :func:`to_json`
    wrote, so their bytes are reused, re-indented, instead of parsed and dumped again (tests compare the
    result with Zarr's, byte for byte)."""
    import unicodedata

    try:
        root = json.loads(out["zarr.json"])
    except (KeyError, ValueError):
        return None
    if not isinstance(root, dict) or list(root) != _GROUP_KEYS or root["zarr_format"] != 3:
        return None
    entries = []
    for key, blob in out.items():
        if not key.endswith("/zarr.json"):
            continue
        path = key[: -len("/zarr.json")]
        doc = json.loads(blob)
        if not isinstance(doc, dict) or doc.get("zarr_format") != 3:
            return None
        if list(doc) == _GROUP_KEYS and doc["node_type"] == "group":
            text = to_json({"attributes": doc["attributes"], "zarr_format": 3,
                            "consolidated_metadata": _NO_CHILDREN, "node_type": "group"})
        elif (list(doc) == _ARRAY_KEYS and doc["node_type"] == "array" and blob.startswith(b'{\n  "shape": ')
              and blob.endswith(b"\n}")):  # written by to_json (as every array document of this module)
            text = blob
        else:
            return None
        entries.append(((path.count("/"), unicodedata.normalize("NFKC", path).casefold()), path, text))
    entries.sort(key=lambda e: e[0])
    if len({e[0] for e in entries}) != len(entries):
        return None  # paths equal once casefolded: the order among them is Zarr's to decide
    attrs = _nested(to_json(root["attributes"]), 1)
    if not entries:
        meta = b"{}"
    else:
        meta = b"{\n" + b",\n".join(b"      " + json.dumps(p).encode() + b": " + _nested(t, 3)
                                     for _, p, t in entries) + b"\n    }"
    return (b'{\n  "attributes": ' + attrs + b',\n  "zarr_format": 3,\n  "consolidated_metadata": {\n'
            b'    "kind": "inline",\n    "must_understand": false,\n    "metadata": ' + meta
            + b'\n  },\n  "node_type": "group"\n}')


def anndata_objects(X: np.ndarray, dtype, chunks: tuple[int, int], obs: pd.DataFrame, var: pd.DataFrame,
                    uns: Mapping, blosc, lock) -> dict[str, bytes] | None:
    """A whole AnnData group as anndata's ``write_zarr(store, adata, chunks=chunks, compressors=(blosc,))``
    writes it, or None when an element is of a kind not covered here."""
    out: dict[str, bytes] = {}
    enc = Encoder(out, blosc)
    if not (enc.frame("obs", obs) and enc.frame("var", var) and enc.mapping("uns", uns)):
        return None
    enc.numeric("X", X, chunks=chunks, dtype=dtype)
    skeleton(out)
    consolidate(out, lock)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Reading: the elements above read back from a local group's files, without Zarr's per-node machinery.
#
# Why: opening a cohort group through Zarr builds an object per node of its consolidated metadata (~2.4 ms for a
# cohort store), and every array read is a hop to Zarr's I/O thread; reading obs, var and uns that way cost ~10
# CPU-ms per cohort before preprocessing, against ~0.2 ms to parse the consolidated zarr.json itself.  Here that
# document is read once and each array's chunk files are decoded directly with the codecs Zarr itself calls
# (numcodecs' VLenUTF8, Zstd, Blosc).  Only the layouts this module writes are read (which are those anndata
# writes for such elements); anything else raises :class:`Unsupported` and the caller reads through anndata.
# Inputs are untrusted: what is read and inflated is bounded, chunk sizes are checked against the metadata, node
# names never leave the group, and a malformed store is an InputFormatError naming the file.
# ---------------------------------------------------------------------------------------------------------------

MAX_METADATA_BYTES = 64 << 20   # the consolidated zarr.json (a cohort store's is ~40 KB)
MAX_CHUNK_BYTES = 1 << 30       # decompressed bytes of one chunk (a GPL570 annotation column is ~10 MB)
MAX_ARRAY_ITEMS = 1 << 28       # cells of one array read (a decoded object array costs 8 bytes a cell + its text)

_NUMERIC_TYPES = frozenset({"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                            "float32", "float64"})
_ARRAY_DOC_KEYS = frozenset(_ARRAY_KEYS) | {"dimension_names"}
_GROUP_DOC_KEYS = frozenset(_GROUP_KEYS) | {"consolidated_metadata"}
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class Unsupported(Exception):
    """A layout the direct reader does not cover (another writer, codec, encoding or Zarr format): the caller
    reads the element through anndata instead."""


def _limit(name: str) -> int:
    """A bound of this module, overridable per process by ``GENOTEX_DASK_<NAME>`` (as io/_stream.py's)."""
    env = os.environ.get(f"GENOTEX_DASK_{name}")
    return int(float(env)) if env else int(globals()[name])


def _bad(path: str, cause: str):
    from genotex_dask.io.errors import InputFormatError

    return InputFormatError(path, cause)


def _over(path: str, cause: str):
    from genotex_dask.io.errors import InputLimitError

    return InputLimitError(path, cause)


def _ints(v, positive: bool) -> list[int] | None:
    if not isinstance(v, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        return None
    return v if all(x > 0 if positive else x >= 0 for x in v) else None


def _zstd_content_size(blob: bytes) -> int | None:
    """The decompressed size declared by ``blob`` when it is exactly one Zstandard frame with its content size
    in the header (as numcodecs writes), else None.  Checked before numcodecs decodes: it allocates the sum of
    what the frame headers declare, or streams without bound when they declare nothing."""
    n = len(blob)
    if n < 6 or blob[:4] != _ZSTD_MAGIC or blob[4] & 0x08:  # magic; the header's reserved bit
        return None
    fhd = blob[4]
    single = (fhd >> 5) & 1
    pos = 5 + (0 if single else 1) + (0, 1, 2, 4)[fhd & 3]  # window descriptor, dictionary ID
    width = (1 if single else 0, 2, 4, 8)[fhd >> 6]
    if width == 0 or n < pos + width:
        return None
    size = int.from_bytes(blob[pos:pos + width], "little") + (256 if width == 2 else 0)
    pos += width
    while True:  # the blocks: 3-byte headers (last flag, type, size); the frame must end where the file does
        if pos + 3 > n:
            return None
        head = int.from_bytes(blob[pos:pos + 3], "little")
        kind = (head >> 1) & 3
        if kind == 3:
            return None
        pos += 3 + (1 if kind == 1 else head >> 3)
        if head & 1:
            break
    pos += 4 if (fhd >> 2) & 1 else 0  # content checksum
    return size if pos == n else None


def _read_file(path: str, limit: int) -> bytes | None:
    """The file's bytes, None when it holds more than ``limit``; FileNotFoundError when absent, another
    OSError as an InputFormatError naming the file.  (One allocation of the file's size: a buffered
    ``read(limit)`` would allocate the limit.)"""
    try:
        with open(path, "rb", buffering=0) as f:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                return None
            data = f.read(size + 1)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise
    except OSError as exc:
        raise _bad(path, f"cannot be read ({exc})") from None
    return data if len(data) <= limit else None


class _Array:
    """An array document of a recognised layout, parsed once."""

    __slots__ = ("shape", "chunk", "dtype", "fill", "compressor", "sep", "attrs")

    def __init__(self, doc: dict):
        """Raises Unsupported for anything but the layouts :class:`Encoder` (and anndata) write."""
        if not set(doc) <= _ARRAY_DOC_KEYS or not {"shape", "data_type", "chunk_grid", "codecs"} <= set(doc):
            raise Unsupported("array document keys")
        shape, grid, keys = _ints(doc["shape"], False), doc["chunk_grid"], doc.get("chunk_key_encoding")
        conf = grid.get("configuration") if isinstance(grid, dict) else None
        chunk = _ints(conf.get("chunk_shape"), True) if isinstance(conf, dict) else None
        if shape is None or chunk is None or len(chunk) != len(shape) or grid.get("name") != "regular":
            raise Unsupported("chunk grid")
        sep = (keys.get("configuration") or {}).get("separator", "/") if isinstance(keys, dict) else None
        if not isinstance(keys, dict) or keys.get("name") != "default" or sep not in ("/", "."):
            raise Unsupported("chunk key encoding")
        if doc.get("storage_transformers") or not isinstance(doc.get("attributes", {}), dict):
            raise Unsupported("storage transformers")
        data_type, codecs = doc["data_type"], doc["codecs"]
        if not isinstance(codecs, list) or len(codecs) != 2 or not all(isinstance(c, dict) for c in codecs):
            raise Unsupported("codecs")
        first, comp = codecs
        first_conf = first.get("configuration") or {}
        fill = doc.get("fill_value")
        if data_type == "string":
            if first.get("name") != "vlen-utf8" or first_conf or not isinstance(fill, str):
                raise Unsupported("string codec")
            self.dtype = None
        elif data_type in _NUMERIC_TYPES:
            self.dtype = np.dtype(data_type).newbyteorder("<")
            if first.get("name") != "bytes" or first_conf.get("endian", "little") != "little" \
                    or set(first_conf) - {"endian"}:
                raise Unsupported("bytes codec")
            fill = _fill(fill, self.dtype)
        else:
            raise Unsupported(f"data type {data_type!r}")
        comp_conf = comp.get("configuration")
        if comp.get("name") not in ("zstd", "blosc") or not isinstance(comp_conf, dict):
            raise Unsupported("compressor")
        self.shape, self.chunk, self.sep, self.fill = tuple(shape), tuple(chunk), sep, fill
        self.compressor = comp["name"]
        self.attrs = doc.get("attributes", {})

    def chunk_key(self, idx: tuple[int, ...]) -> str:
        return self.sep.join(["c", *map(str, idx)])


def _fill(value, dtype: np.dtype):
    """A numeric fill value as Zarr v3 writes it (numbers, bools, "NaN" and the infinities for floats)."""
    if dtype.kind == "b":
        if not isinstance(value, bool):
            raise Unsupported("fill value")
        return value
    if isinstance(value, str) and dtype.kind == "f" and value in ("NaN", "Infinity", "-Infinity"):
        return float(value.replace("inity", ""))
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (dtype.kind in "iu" and
                                                                          not isinstance(value, int)):
        raise Unsupported("fill value")
    return value


def _name_ok(name: str) -> bool:
    """A node path that stays inside its group: no empty, "." or ".." segment, no NUL, no backslash."""
    return isinstance(name, str) and bool(name) and "\x00" not in name and "\\" not in name and \
        all(s not in ("", ".", "..") for s in name.split("/"))


@functools.cache
def _native_string_dtype():
    """Zarr's numpy dtype for a "string" array, None when this Zarr does not say (looked up once)."""
    try:
        from zarr.core.dtype import VariableLengthUTF8

        return VariableLengthUTF8().to_native_dtype()
    except Exception:  # noqa: BLE001 - another Zarr: anndata reads such arrays
        return None


def _zarr_string_dtype():
    """The numpy dtype Zarr returns for a "string" array (a bare string array read outside a frame is handed
    back as Zarr hands it to anndata); Unsupported when this Zarr does not say."""
    dtype = _native_string_dtype()
    if dtype is None:
        raise Unsupported("Zarr's string dtype")
    return dtype


class Reader:
    """AnnData elements of a local Zarr v3 group, from one read of its consolidated ``zarr.json``.

    ``read(key)`` returns what ``anndata.io.read_elem`` returns for the node at ``key`` ("obs", "var", "uns",
    "obs/title"...): data frames, dicts, categoricals, numeric and string arrays and scalars.  Strings in a data
    frame or a categorical's categories are decoded as object arrays of str (pandas turns Zarr's StringDType
    columns into exactly those); ``read(key, frame_strings=True)`` does so for a bare string array too.
    Constructing raises Unsupported when the group is not one this module can read whole (no consolidated
    metadata, a node of another layout anywhere), so a store is read one way or the other, never half each.
    """

    def __init__(self, root: str):
        self.root = root
        self.meta_path = os.path.join(root, "zarr.json")
        limit = _limit("MAX_METADATA_BYTES")
        try:
            raw = _read_file(self.meta_path, limit)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise Unsupported("no zarr.json") from None
        if raw is None:
            raise _over(self.meta_path, f"consolidated metadata larger than {limit} bytes (MAX_METADATA_BYTES)")
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise _bad(self.meta_path, f"not a JSON document ({exc})") from None
        cons = doc.get("consolidated_metadata") if isinstance(doc, dict) else None
        nodes = cons.get("metadata") if isinstance(cons, dict) else None
        if not isinstance(nodes, dict) or doc.get("zarr_format") != 3 or doc.get("node_type") != "group" \
                or cons.get("kind") != "inline" or not set(doc) <= _GROUP_DOC_KEYS:
            raise Unsupported("not a consolidated Zarr v3 group")
        self.groups: dict[str, dict] = {"": doc.get("attributes") or {}}
        self.arrays: dict[str, _Array] = {}
        for key, node in nodes.items():
            if not _name_ok(key):
                raise _bad(self.meta_path, f"node {key!r} escapes the group")
            if not isinstance(node, dict) or node.get("zarr_format") != 3:
                raise Unsupported("node document")
            if node.get("node_type") == "group" and set(node) <= _GROUP_DOC_KEYS \
                    and isinstance(node.get("attributes", {}), dict):
                self.groups[key] = node.get("attributes", {})
            elif node.get("node_type") == "array":
                try:
                    self.arrays[key] = _Array(node)
                except (AttributeError, TypeError, KeyError, ValueError):  # a field of another type
                    raise Unsupported("array document") from None
            else:
                raise Unsupported("node document")
        self.children = self._children(list(nodes))

    @staticmethod
    def _children(keys: list[str]) -> dict[str, list[str]]:
        """Each group's members in the order Zarr lists them from consolidated metadata (the file's order, the
        entries grouped by depth then by parent); Unsupported when Zarr would split a parent's members."""
        out: dict[str, list[str]] = {}
        last = None
        for key in sorted(keys, key=lambda k: k.count("/")):
            parent, _, name = key.rpartition("/")
            if parent != last and parent in out and parent:
                raise Unsupported("a group's members not together in the consolidated metadata")
            out.setdefault(parent, []).append(name)
            last = parent
        return out

    def attrs(self, key: str) -> dict:
        """A node's attributes (KeyError when absent)."""
        if key in self.groups:
            return self.groups[key]
        return self.arrays[key].attrs

    def member(self, key: str, name) -> str:
        """The path of ``name`` under the group ``key``; a name leaving the group is an error naming the file."""
        if not _name_ok(name):
            raise _bad(self.meta_path, f"{key}: member {name!r} escapes the group")
        path = f"{key}/{name}" if key else name
        if path not in self.groups and path not in self.arrays:
            raise Unsupported("member absent")  # anndata raises its own KeyError
        return path

    def read(self, key: str, frame_strings: bool = False):
        """The element at ``key`` as anndata reads it (see the class docstring)."""
        attrs = self.attrs(key) if key in self.groups or key in self.arrays else None
        if attrs is None:
            raise Unsupported("node absent")
        enc = (attrs.get("encoding-type"), attrs.get("encoding-version"))
        if key in self.groups:
            if enc == ("dataframe", "0.2.0"):
                return self._frame(key, attrs)
            if enc == ("dict", "0.1.0"):
                return {name: self.read(self.member(key, name)) for name in self.children.get(key, [])}
            if enc == ("categorical", "0.2.0"):
                return self._categorical(key, attrs)
            raise Unsupported(f"encoding {enc}")
        arr = self.arrays[key]
        if enc == ("string-array", "0.2.0") and arr.dtype is None and arr.shape:
            out = self._values(key, arr)
            return out if frame_strings else out.astype(_zarr_string_dtype())
        if enc == ("array", "0.2.0") and arr.dtype is not None and arr.shape:
            return self._values(key, arr)
        if enc == ("string", "0.2.0") and arr.dtype is None and not arr.shape:
            return str(self._values(key, arr)[()])
        if enc == ("numeric-scalar", "0.2.0") and arr.dtype is not None and not arr.shape:
            return self._values(key, arr)[()].item()
        raise Unsupported(f"encoding {enc}")

    def _frame(self, key: str, attrs: dict) -> pd.DataFrame:
        columns, idx_key = attrs.get("column-order"), attrs.get("_index")
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns) \
                or not isinstance(idx_key, str):
            raise Unsupported("dataframe attributes")
        index = self.read(self.member(key, idx_key), frame_strings=True)
        if not isinstance(index, np.ndarray) or index.ndim != 1:
            raise Unsupported("dataframe index")
        data = {}
        for c in columns:
            data[c] = self.read(self.member(key, c), frame_strings=True)
            if not isinstance(data[c], (np.ndarray, pd.Categorical)):
                raise Unsupported("dataframe column")
            if data[c].ndim != 1 or len(data[c]) != len(index):
                raise _bad(self.meta_path, f"{key}/{c}: shape {getattr(data[c], 'shape', None)} does not match "
                                           f"the {len(index)} rows of {key}/{idx_key}")
        df = pd.DataFrame(data, index=index, columns=columns if columns else None)
        if idx_key != "_index":
            df.index.name = idx_key
        return df

    def _categorical(self, key: str, attrs: dict) -> pd.Categorical:
        codes = self.read(self.member(key, "codes"))
        cats = self.read(self.member(key, "categories"), frame_strings=True)
        if not isinstance(codes, np.ndarray) or codes.dtype.kind not in "iu" or codes.ndim != 1:
            raise _bad(self.meta_path, f"{key}/codes: not an integer array")
        try:
            return pd.Categorical.from_codes(codes=codes, categories=cats, ordered=bool(attrs.get("ordered")))
        except (ValueError, TypeError) as exc:
            raise _bad(self.meta_path, f"{key}: {exc}") from None

    # ---- arrays ----
    def _values(self, key: str, arr: _Array) -> np.ndarray:
        """The whole array, decoded chunk by chunk (a missing chunk is the fill value, as in Zarr)."""

        n = math.prod(arr.shape)
        per_chunk = math.prod(arr.chunk)
        item = 0 if arr.dtype is None else arr.dtype.itemsize  # a string chunk's size is checked when read
        max_items = _limit("MAX_ARRAY_ITEMS")
        if n > max_items or per_chunk > max_items or per_chunk * item > _limit("MAX_CHUNK_BYTES"):
            raise _over(self.meta_path, f"{key}: shape {list(arr.shape)} / chunks {list(arr.chunk)} above "
                                        f"{max_items} cells (MAX_ARRAY_ITEMS) or MAX_CHUNK_BYTES")
        dtype = object if arr.dtype is None else arr.dtype.newbyteorder("=")
        node_dir = os.path.join(self.root, *key.split("/"))
        if not arr.shape:  # 0-d: one chunk "c"
            out = np.empty(1, dtype=dtype)
            part = self._chunk(os.path.join(node_dir, "c"), arr, 1)
            out[0] = arr.fill if part is None else part[0]
            return out.reshape(())
        grid = [range(0, s, c) for s, c in zip(arr.shape, arr.chunk)]
        if all(len(g) == 1 for g in grid):  # one chunk (a frame column of up to ~1M cells): no copy of its cells
            part = self._chunk(os.path.join(node_dir, *arr.chunk_key((0,) * len(grid)).split("/")), arr, per_chunk)
            if part is None:
                return np.full(arr.shape, arr.fill, dtype=dtype)
            part = part.reshape(arr.chunk)[tuple(slice(0, s) for s in arr.shape)]
            return part if part.flags.writeable else part.astype(dtype)
        out = np.empty(arr.shape, dtype=dtype)
        for idx in np.ndindex(*(len(g) for g in grid)):
            path = os.path.join(node_dir, *arr.chunk_key(idx).split("/"))
            sel = tuple(slice(g[i], g[i] + c) for g, i, c in zip(grid, idx, arr.chunk))
            part = self._chunk(path, arr, per_chunk)
            if part is None:
                out[sel] = arr.fill
                continue
            target = out[sel]  # an edge chunk is stored full size: only its part inside the shape is kept
            target[...] = part.reshape(arr.chunk)[tuple(slice(0, s) for s in target.shape)]
        return out

    def _chunk(self, path: str, arr: _Array, items: int) -> np.ndarray | None:
        """One chunk's cells (flat), None when its file is absent; bounded, checked against the metadata."""
        limit = _limit("MAX_CHUNK_BYTES")
        try:
            blob = _read_file(path, limit + 4096)  # a compressor's frame adds a few bytes to incompressible data
        except FileNotFoundError:
            return None
        except (NotADirectoryError, IsADirectoryError) as exc:
            raise _bad(path, f"not a chunk file ({exc.strerror})") from None
        if blob is None:
            raise _over(path, f"chunk file larger than MAX_CHUNK_BYTES ({limit})")
        expect = items * arr.dtype.itemsize if arr.dtype is not None else None
        raw = self._inflate(path, blob, expect, limit, arr.compressor)
        if arr.dtype is not None:
            return np.frombuffer(raw, dtype=arr.dtype)
        # each item takes at least its 4 length bytes: the object array numcodecs allocates stays within 2x the data
        if len(raw) < 4 + 4 * items or int.from_bytes(bytes(raw[:4]), "little") != items:
            raise _bad(path, f"not a vlen-utf8 chunk of {items} strings")
        try:
            return _VLEN.decode(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _bad(path, f"corrupt vlen-utf8 chunk ({exc})") from None

    @staticmethod
    def _inflate(path: str, blob: bytes, expect: int | None, limit: int, compressor: str):
        """The chunk's decompressed bytes: the size its header declares is checked (present, bounded, equal to
        the metadata's chunk for numbers; Blosc's compressed size equal to the file's) before any allocation."""
        from numcodecs import blosc

        if compressor == "blosc":
            if len(blob) < 16:
                raise _bad(path, "truncated Blosc chunk")
            size = int.from_bytes(blob[4:8], "little")
            if int.from_bytes(blob[12:16], "little") != len(blob):
                raise _bad(path, f"truncated or padded Blosc chunk ({len(blob)} bytes, the header says "
                                 f"{int.from_bytes(blob[12:16], 'little')})")
        else:
            size = _zstd_content_size(blob)
            if size is None:
                raise _bad(path, "not one whole Zstandard frame declaring its size (truncated?)")
        if expect is not None and size != expect:
            raise _bad(path, f"decodes to {size} bytes, the array's chunk has {expect}")
        if size > limit:
            raise _over(path, f"chunk inflates to {size} bytes (MAX_CHUNK_BYTES {limit})")
        try:
            raw = blosc.decompress(blob) if compressor == "blosc" else _ZSTD_CODEC.decode(blob)
        except (RuntimeError, ValueError) as exc:
            raise _bad(path, f"corrupt {compressor} chunk ({exc})") from None
        if len(raw) != size:
            raise _bad(path, f"decoded {len(raw)} bytes, the header says {size}")
        return raw


def _codecs():
    from numcodecs import VLenUTF8, Zstd

    return VLenUTF8(), Zstd()


_VLEN, _ZSTD_CODEC = _codecs()

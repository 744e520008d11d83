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

import json
from collections.abc import Mapping

import numpy as np
import pandas as pd

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
        block = np.zeros(chunk, dtype=dt)
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

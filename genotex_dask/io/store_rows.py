"""Rows of a cohort store's X decoded straight from its chunk files into buffers the caller reuses.

Why not ``zarr.open_array(...)[a:b]``: every read goes through Zarr's I/O thread and allocates the compressed
bytes, a decoded chunk and the result afresh.  On a Dask worker (``MALLOC_TRIM_THRESHOLD_`` pins glibc's mmap
threshold at 128 KiB) each of those is fresh mmapped pages: reading a 167 x 54,675 float32 cohort took ~23,000
page faults and ~3x the CPU of the decoding itself.  Here one row of chunks (``chunk_rows`` samples x all
features) is decoded into a per-thread scratch that lives as long as the worker, chunk by chunk through a reused
chunk buffer, in the calling thread.

Only the layout our ingest writes is read this way (Zarr v3, regular chunk grid, default chunk keys, ``bytes``
little-endian then Blosc, float32/float64, local files); anything else, and a chunk whose Blosc header does not
describe exactly one chunk, goes through Zarr as before.  A missing chunk file is the fill value, as in Zarr.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from genotex_dask.io import fs

_local = threading.local()


@dataclass(frozen=True)
class Layout:
    """What the fast path needs from ``X/zarr.json``; built only for layouts it can read."""

    x_dir: str
    shape: tuple[int, int]
    chunks: tuple[int, int]
    dtype: np.dtype
    sep: str
    fill: float

    def chunk_path(self, i: int, j: int) -> str:
        return os.path.join(self.x_dir, "c", str(i), str(j)) if self.sep == "/" else \
            os.path.join(self.x_dir, f"c.{i}.{j}")


def layout(url: str) -> Layout | None:
    """The X layout of the cohort store at ``url`` when the fast path can read it, else None."""
    if not fs.is_local(url):
        return None
    _, path = fs.get_fs(url)
    x_dir = os.path.join(path, "X")
    try:
        with open(os.path.join(x_dir, "zarr.json"), "rb") as f:
            meta = json.loads(f.read(1 << 16))
        shape = tuple(int(v) for v in meta["shape"])
        grid = meta["chunk_grid"]
        chunks = tuple(int(v) for v in grid["configuration"]["chunk_shape"])
        keys = meta["chunk_key_encoding"]
        codecs = meta["codecs"]
        fill = meta.get("fill_value", 0.0)
        fill = float("nan") if fill == "NaN" else float(fill)
        ok = (meta.get("zarr_format") == 3 and meta.get("node_type") == "array" and len(shape) == 2
              and len(chunks) == 2 and min(chunks) > 0 and grid.get("name") == "regular"
              and keys.get("name") == "default" and (keys.get("configuration") or {}).get("separator", "/") in "/."
              and meta.get("data_type") in ("float32", "float64") and not meta.get("storage_transformers")
              and len(codecs) == 2 and codecs[0].get("name") == "bytes"
              and (codecs[0].get("configuration") or {}).get("endian", "little") == "little"
              and codecs[1].get("name") == "blosc")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if not ok:
        return None
    sep = (keys.get("configuration") or {}).get("separator", "/")
    return Layout(x_dir, shape, chunks, np.dtype(meta["data_type"]), sep, fill)


def _scratch(name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A per-thread buffer of at least ``shape``, kept for the next call (grown when a cohort needs more)."""
    n = int(np.prod(shape))
    buf = getattr(_local, name, None)
    if buf is None or buf.dtype != dtype or buf.size < n:
        buf = np.empty(n, dtype)
        setattr(_local, name, buf)
    return buf[:n].reshape(shape)


def _blosc_nbytes(src: bytes | bytearray | memoryview) -> int:
    """Uncompressed size from a Blosc header (bytes 4-7, little-endian), -1 when there is no header."""
    return int.from_bytes(bytes(src[4:8]), "little") if len(src) >= 16 else -1


@functools.cache  # looked up once per process
def _ctx_decompress():
    """c-blosc's ``blosc_decompress_ctx`` from numcodecs' own extension, or None; called with one internal thread.

    Why not numcodecs' ``decompress``: a Python call per chunk and a slice of the source.  Why not c-blosc's global
    context (``blosc_decompress``, used here before): it decodes with the process-wide pool of 2 threads behind one
    mutex; one thread in the calling task costs 1-2 ms less CPU per 54,675 x 167 cohort (the pool's hand-offs),
    and worker threads do not queue on the mutex.  The per-call context's temporaries (~1 MB) come from the heap
    under the workers' 4 MiB mmap threshold (:data:`genotex_dask.cluster.WORKER_MALLOC_ENV`): no fresh pages.
    """
    import ctypes

    from numcodecs import blosc

    try:
        fn = ctypes.CDLL(blosc.__file__).blosc_decompress_ctx
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


def _decompress(src: np.ndarray, n: int, dest: np.ndarray) -> None:
    """Decode the Blosc buffer ``src[:n]`` (header already checked to give ``dest.nbytes``) into ``dest``."""
    fn = _ctx_decompress()
    # c-blosc reads as many compressed bytes as the header says: only a header that claims exactly the bytes
    # read goes to the C call; anything else takes numcodecs' path (which reports it)
    if fn is None or int.from_bytes(bytes(src[12:16]), "little") != n:
        from numcodecs import blosc

        blosc.decompress(memoryview(src)[:n], dest)
        return
    if fn(src.ctypes.data, dest.ctypes.data, dest.nbytes, 1) != dest.nbytes:
        raise ValueError("Blosc could not decode the chunk")


def chunk_rows(lay: Layout, start: int, stop: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(first sample, rows)`` for each row of chunks overlapping samples ``start:stop``: ``rows`` is a view
    (samples x all features) of a per-thread scratch, valid until the next step of this iterator."""
    n_rows, n_cols = lay.shape
    c0, c1 = lay.chunks
    chunk_bytes = c0 * c1 * lay.dtype.itemsize
    dec = _scratch("chunk", (c0, c1), lay.dtype)
    row = _scratch("row", (c0, n_cols), lay.dtype)
    src = _scratch("src", (chunk_bytes + 4096,), np.dtype(np.uint8))  # Blosc output never exceeds input + 16
    for i in range(max(0, start) // c0, (min(stop, n_rows) + c0 - 1) // c0):
        r0, r1 = i * c0, min(n_rows, (i + 1) * c0)
        for j in range((n_cols + c1 - 1) // c1):
            k0, k1 = j * c1, min(n_cols, (j + 1) * c1)
            try:
                with open(lay.chunk_path(i, j), "rb") as f:
                    n = f.readinto(memoryview(src))
                    if n == len(src) and f.read(1):
                        raise ValueError(f"{lay.chunk_path(i, j)}: chunk larger than Blosc can make it")
            except FileNotFoundError:
                row[:, k0:k1] = lay.fill
                continue
            view = memoryview(src)[:n]
            if _blosc_nbytes(view) != chunk_bytes:
                raise ValueError(f"{lay.chunk_path(i, j)}: not a Blosc chunk of {chunk_bytes} bytes")
            _decompress(src, n, dec)
            row[:, k0:k1] = dec[:, :k1 - k0]
        a, b = max(start, r0), min(stop, r1)
        yield a, row[a - r0:b - r0]

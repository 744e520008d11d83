"""Compile the engine's numba kernels once per environment, not once per worker.

Every kernel is declared ``cache=True``: numba keeps the machine code beside the module source
(``__pycache__`` in the installed package, shared by every worker of that environment) or, when that
directory is not writable, in ``~/.cache/numba``; ``NUMBA_CACHE_DIR`` (or ``--cache-dir`` here) puts it
anywhere else, e.g. a directory shared by a cluster's workers.  A cold compile of all kernels costs ~8-10 CPU-s
per process (every worker of a fresh environment paid it); loading them from the cache costs about a second.  ``make install`` and the cluster Dockerfile run
``python -m genotex_dask.kernels`` so that no worker compiles in the middle of a run.

Concurrent writers are safe: numba writes each index and object file to a unique temporary name and renames
it into place, so a reader sees a whole old file or a whole new one; at worst two workers compiling at the
same moment both compile (and one's index entry wins), which the warm-up ahead of time avoids.

The warm-up calls each kernel with the argument types the engine passes (C-contiguous float32/float64
arrays, int64 index arrays, writable byte buffers): numba compiles per type signature, so a warm-up with
other types would leave the real call to compile.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time

#: Modules holding numba kernels (checked by the tests against every dispatcher in the package).
KERNEL_MODULES = (
    "genotex_dask.io._fastmatrix_kernels",
    "genotex_dask.io._grid_kernels",
    "genotex_dask.pipelines.csv_out",
    "genotex_dask.preprocess.mapping",
    "genotex_dask.preprocess.quality",
    "genotex_dask.preprocess.anndata_fields",
    "genotex_dask.analysis._lars_kernel",
    "genotex_dask.analysis._standardize_kernel",
    "genotex_dask.synth._format",
)


def dispatchers() -> dict[str, object]:
    """Every numba dispatcher defined in :data:`KERNEL_MODULES`, by ``module.name``."""
    from numba.core.dispatcher import Dispatcher

    found = {}
    for name in KERNEL_MODULES:
        mod = importlib.import_module(name)
        for attr, value in vars(mod).items():
            if isinstance(value, Dispatcher) and value.py_func.__module__ == name:
                found[f"{name}.{attr}"] = value
    return found


def _warm_fastmatrix() -> None:
    from genotex_dask.io import _fastmatrix_kernels as k

    work = bytearray(b'"p1"\t1.5\t\n"p2"\t-2e-3\tNA\n')  # the reader parses a writable bytearray view
    buf = _np().frombuffer(work, dtype=_np().uint8, count=len(work))
    idbuf = _np().empty(len(work) + 1, dtype=_np().uint8)
    for dtype in (_np().float32, _np().float64):  # float32 for a float32 store; samples-major (a transposed view)
        out = _np().empty((2, 4), dtype=dtype).T
        k._parse_rows(buf, 2, out, 0, idbuf, k._POW10)


def _warm_grid() -> None:
    from genotex_dask.io import _grid_kernels as k
    np = _np()
    buf = np.frombuffer(b"s1,1.5,\ns2,-2e-3,7\n", dtype=np.uint8)  # read-only, as the reader's bytes are
    k.parse_grid(buf, 0, 3, np.array([-1, 0, -1], dtype=np.int64), np.array([0, 0, 1], dtype=np.int64),
                 np.empty((2, 1)), np.empty((2, 2), dtype=np.int64), k.POW10)


def _warm_csv() -> None:
    from genotex_dask.pipelines import csv_out

    csv_out.warm_up()


def _warm_mapping() -> None:
    from genotex_dask.preprocess import mapping

    np = _np()
    ptr = np.array([0, 1, 2], dtype=np.int64)
    idx = np.array([0, 1], dtype=np.int64)
    w = np.ones(2, dtype=np.float64)
    sptr = np.array([0, 1, 2], dtype=np.int64)
    out = np.empty((1, 2), dtype=np.float64)
    for dtype in (np.float32, np.float64):  # the store holds float32 (float64 with --float64)
        for skip in (True, False):
            mapping._apply_kernel(np.ones((1, 2), dtype=dtype), 2, ptr, idx, w, sptr, idx, skip, out)


def _warm_quality() -> None:
    from genotex_dask.preprocess import quality

    np = _np()
    for dtype in (np.float32, np.float64):  # the linked matrix is float64; a caller may pass the store's float32
        quality._nan_counts(np.ones((2, 3), dtype=dtype), np.arange(2, dtype=np.int64))


def _warm_anndata_fields() -> None:
    from genotex_dask.preprocess import anndata_fields

    np = _np()
    for dtype in (np.float32, np.float64):
        anndata_fields._nan_min_max(np.ones((2, 3), dtype=dtype))


def _warm_lars() -> None:
    from genotex_dask.analysis import _lars_kernel

    np = _np()
    rng = np.random.default_rng(0)
    XT = rng.standard_normal((5, 8))
    y = rng.standard_normal(8)
    _lars_kernel.grid_path_t(XT, y, np.array([2.0, 1.0, 0.5]), 100)


def _warm_standardize() -> None:
    from genotex_dask.analysis import models

    np = _np()
    # C-ordered, a column slice (gene_matrix's view of a cached cohort) and F-ordered (a pandas copy); writable
    # and read-only (the cached cohort's view is): numba compiles each of these apart
    for writeable in (True, False):
        full = np.arange(12.0).reshape(3, 4)
        for X in (full, full[:, 1:], np.asfortranarray(full)):
            X.flags.writeable = writeable
            models.normalize_rows(X, np.array([0, 2]), np.array([1]))


def _warm_synth() -> None:
    from genotex_dask.synth._format import format_block, id_blob

    blob, off = id_blob(["a", "b"])
    format_block(blob, off, _np().array([[1.5, _np().nan], [-2.0, 3.0]]), "null", True)


def _np():
    import numpy

    return numpy


_WARMERS = {
    "genotex_dask.io._fastmatrix_kernels": _warm_fastmatrix,
    "genotex_dask.io._grid_kernels": _warm_grid,
    "genotex_dask.pipelines.csv_out": _warm_csv,
    "genotex_dask.preprocess.mapping": _warm_mapping,
    "genotex_dask.preprocess.quality": _warm_quality,
    "genotex_dask.preprocess.anndata_fields": _warm_anndata_fields,
    "genotex_dask.analysis._lars_kernel": _warm_lars,
    "genotex_dask.analysis._standardize_kernel": _warm_standardize,
    "genotex_dask.synth._format": _warm_synth,
}


def warm_up(only: tuple[str, ...] = ()) -> list[dict]:
    """Compile or load every kernel; one record per module: seconds, cache hits and misses (compiles)."""
    report = []
    for name in KERNEL_MODULES:
        if only and not any(o in name for o in only):
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        _WARMERS[name]()
        hits = misses = 0
        where = set()
        for key, d in dispatchers().items():
            if not key.startswith(name + "."):
                continue
            hits += sum(d.stats.cache_hits.values())
            misses += sum(d.stats.cache_misses.values())
            cache = getattr(d, "_cache", None)
            if cache is not None and getattr(cache, "cache_path", None):
                where.add(cache.cache_path)
        report.append({"module": name, "wall_s": round(time.perf_counter() - t0, 3),
                       "cpu_s": round(time.process_time() - c0, 3), "loaded": hits, "compiled": misses,
                       "cache_dir": sorted(where)})
    return report


def main(argv: list[str] | None = None) -> int:
    """``python -m genotex_dask.kernels [--cache-dir DIR] [--only NAME]``: compile ahead, print what it did."""
    ap = argparse.ArgumentParser(prog="python -m genotex_dask.kernels", description=__doc__.split("\n")[0])
    ap.add_argument("--cache-dir", help="numba cache directory (sets NUMBA_CACHE_DIR; default: beside the "
                    "package, else ~/.cache/numba). Workers must see the same value.")
    ap.add_argument("--only", action="append", default=[], help="warm only modules whose name contains this")
    args = ap.parse_args(argv)
    if args.cache_dir:
        if "numba" in sys.modules:
            ap.error("--cache-dir must be set before numba is imported")
        os.environ["NUMBA_CACHE_DIR"] = os.path.abspath(args.cache_dir)
    t0 = time.perf_counter()
    report = warm_up(tuple(args.only))
    for r in report:
        print(f"{r['module']}: {r['compiled']} compiled, {r['loaded']} loaded from cache, {r['wall_s']:.2f} s "
              f"({', '.join(r['cache_dir'])})")
    print(f"kernels ready in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

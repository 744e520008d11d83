"""Analyze stage: every trait/condition problem of task_info.json as Dask tasks.

Planning (cohort choice, two-step regressors) happens on the client from cohort_info.json files and the
linked files' header lines only.  Work runs on the workers:

* ``mode="exact"``: one task per (problem, grid value, fold) reproducing the reference's fit, then one
  task per problem that picks the value and fits all samples;
* ``mode="fast"``: one task per problem solving the whole grid per fold exactly (homotopy path).

A linked cohort matrix is parsed once per worker and kept in a small per-process cache (keyed by URL and
file fingerprint) together with its fold-standardized copies, so every problem on that cohort reuses it;
problems on the same cohort are routed to the same worker.  Each problem writes its JSON atomically with
a record of its inputs next to it (OUT/regress/<Trait>/.records/), so reruns skip unchanged problems.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import sys
import threading
import time
import traceback
from collections import OrderedDict
from typing import Any

import numpy as np
import pandas as pd
from distributed import as_completed
from tqdm import tqdm

from genotex_dask import config as gconfig
from genotex_dask import layout
from genotex_dask.analysis import models, problems, tuning
from genotex_dask.cluster import PauseWatch
from genotex_dask.io import fs

MODES = ("exact", "fast")
ENGINE_KEY = "genotex_dask"
_CACHE_SIZE = 3  # default of dask.config genotex_dask.analyze.cohorts-per-worker (each cohort ~6x its matrix)


class AnalysisInputError(ValueError):
    """A preprocessed input cannot be used; names the file and the cause."""


# ---- per-worker cohort cache -----------------------------------------------------------------------------

class _Cohort:
    """A parsed linked cohort plus what fast mode derives from it once."""

    def __init__(self, url: str, df: pd.DataFrame):
        self.url = url
        self.df = df
        self.df_bytes = frame_bytes(df)  # the frame is never modified: counted once, not per problem
        self.fast: dict[str, Any] = {}
        self.lock = threading.Lock()

    def nbytes(self) -> int:
        """Bytes held: the frame and, per trait, the gene matrix, its standardized copy and fold designs
        (~8x the matrix once fast mode has used it; LMM's U'X replaces the standardized rows it came from)."""
        n = self.df_bytes
        for parts in list(self.fast.values()):
            n += 0 if parts.get("X_in_frame") else parts["X"].nbytes  # a view into the frame: counted with it
            n += parts["final"].nbytes() + sum(d.nbytes() for d in parts["designs"])
        return n


def frame_bytes(df: pd.DataFrame) -> int:
    """``df.memory_usage(index=True, deep=False).sum()`` without its Series per column, which cost 0.1 s on a
    5,000-gene frame and ~0.4 s on a 19,736-gene one (the cache sized every cached cohort so before each problem:
    half of fast mode's CPU at 5,000 genes)."""
    dtypes = list(df.dtypes)
    if not all(isinstance(dt, np.dtype) for dt in dtypes):  # extension types: pandas knows their layout
        return int(df.memory_usage(index=True, deep=False).sum())
    return len(df) * sum(dt.itemsize for dt in dtypes) + int(df.index.memory_usage(deep=False))


_cache: OrderedDict[tuple, _Cohort] = OrderedDict()
_cache_lock = threading.Lock()
_loading: dict[tuple, threading.Lock] = {}
_stats = {"loads": 0, "hits": 0}


def read_linked(url: str) -> pd.DataFrame:
    """A linked cohort file as the reference reads it (first column = sample index, all floats)."""
    try:
        with fs.open_binary(url) as f:
            df = pd.read_csv(f, index_col=0)
        return df.astype("float")
    except Exception as e:  # name the file; keep the cause
        raise AnalysisInputError(f"{url}: cannot read linked cohort data: {e}") from e


class _NotPlain(Exception):
    """The linked file is not a plain numeric grid for pyarrow; pandas reads it instead."""


HEADER_MAX_BYTES = 64 << 20  # a header line longer than this is not a linked cohort's (19k genes: ~200 kB)


def _header_names(f) -> list[str]:
    """The column names of a CSV's first line (pandas/pyarrow quoting rules), bounded in size."""
    line = bytearray()
    while len(line) <= HEADER_MAX_BYTES:  # fsspec's files take no readline(limit): read in blocks
        block = f.read(1 << 18)
        end = block.find(b"\n")
        line += block if end < 0 else block[:end + 1]
        if end >= 0 or not block:
            break
    if not line.endswith(b"\n") or line.count(b'"') % 2:  # no line end, or a quoted name spans lines
        raise _NotPlain("no complete header line")
    return next(csv.reader([bytes(line).decode("utf-8").rstrip("\r\n")]))


def _plain_header(f) -> list[str]:
    """The header's names (index column first) when pandas would keep them as they are: unique, non-empty."""
    names = _header_names(f)
    if len(names) < 2 or len(set(names)) != len(names) or not all(names[1:]):
        raise _NotPlain("column names pandas would rename")
    return names


def read_linked_fast(url: str) -> pd.DataFrame:
    """Fast mode's reader: the compiled grid reader, or pyarrow's CSV parser for a file it gives up on (~20x and
    ~2-3x less CPU than pandas' on a 19k-gene cohort).

    Same frame as :func:`read_linked`, except that both parse every number to the nearest double while
    pandas' default parser can be a few ulps off on long mantissas (~4e-13 relative on 19-digit cells; short
    decimals, as preprocessed cohorts hold them, come out identical), which fast mode tolerates.  A file
    that is not a plain grid of unique, non-empty column names over numbers (inf included) and pandas'
    default missing-value spellings (duplicate names, text or boolean cells, a ragged row) is read by
    :func:`read_linked` instead, which names the file on error.
    """
    try:
        return _read_plain(url)
    except _NotPlain:
        return read_linked(url)


def _read_plain(url: str, columns: list[str] | None = None) -> pd.DataFrame:
    """:func:`read_linked_fast`'s parse (all columns, or the index column and ``columns`` only: the others are
    passed unconverted); raises _NotPlain for what pyarrow does not read as a plain numeric grid, and for a
    requested column the header lacks.  The compiled grid reader takes the plain files (the 1/2 GenoTEX-scale
    sample's 309 linked files: 12.1 CPU-s against pyarrow's 109.6 for whole reads, 0.6 against 1.5 ns per byte
    for 15 columns); pyarrow reads what it gives up on, so both give the same frame."""
    try:
        with fs.open_binary(url) as f:
            data = f.read()  # the whole file: either parser needs all of it
    except Exception as e:  # noqa: BLE001 - pandas' read names the file and the cause
        raise _NotPlain(str(e)) from e
    try:
        all_names = _plain_header(io.BytesIO(data))
    except _NotPlain:
        raise
    except Exception as e:  # noqa: BLE001 - e.g. a header that is not UTF-8: pandas names the cause
        raise _NotPlain(str(e)) from e
    fields = None
    if columns is not None:
        if not set(columns) <= set(all_names[1:]):
            raise _NotPlain("requested columns missing")
        want = set(columns)
        fields = [i for i, n in enumerate(all_names) if i and n in want]  # file order, as the full read has it
    grid = _read_grid(data, all_names, fields)
    if grid is not None:
        return grid
    return _read_arrow(data, all_names if fields is None else [all_names[0], *(all_names[i] for i in fields)],
                       fields is not None)


def _read_grid(data: bytes, all_names: list[str], fields: list[int] | None = None) -> pd.DataFrame | None:
    """The frame of the fields at positions ``fields`` of ``all_names`` (ascending, > 0; None: all), indexed by
    the first, by the compiled grid reader; None where it gives up."""
    from genotex_dask.io import _grid_kernels as k

    start = data.find(b"\n") + 1
    if data.find(b'"', 0, start) >= 0 or data.startswith(codecs.BOM_UTF8):
        return None  # a quoted name or a byte-order mark: pyarrow's read checks its header against ours
    buf = np.frombuffer(data, dtype=np.uint8)
    ncols = len(all_names)
    if fields is None:  # every field read: field f to column f - 1
        colmap, run, names = np.arange(-1, ncols - 1), np.zeros(ncols, dtype=np.int64), all_names
    else:
        wanted = np.asarray(fields, dtype=np.int64)
        colmap = np.full(ncols, -1, dtype=np.int64)
        colmap[wanted] = np.arange(wanted.size)
        at = np.arange(ncols)
        unread = colmap < 0
        unread[0] = False
        nxt = np.append(wanted, ncols)[np.searchsorted(wanted, at)]
        run = np.where(unread, nxt - at, 0)  # unread fields in a row from each one on
        names = [all_names[0], *(all_names[i] for i in fields)]
    rows = data.count(b"\n", start) + (not data.endswith(b"\n"))
    X = np.empty((rows, len(names) - 1), dtype=np.float64)
    bounds = np.empty((rows, 2), dtype=np.int64)
    status, got = k.parse_grid(buf, start, ncols, colmap, run, X, bounds, k.POW10)
    if status != k.OK or got != rows:
        return None
    try:
        index = pd.Index([data[a:b].decode("utf-8") for a, b in bounds[:got].tolist()], name=names[0] or None)
    except UnicodeDecodeError:
        return None
    return pd.DataFrame(X, index=index, columns=names[1:], copy=False)


def _read_arrow(data: bytes, names: list[str], partial: bool) -> pd.DataFrame:
    """pyarrow's parse of ``names`` (index column first), for what the grid reader gives up on."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        types = {n: pa.float64() for n in names[1:]}
        types[names[0]] = pa.string()
        t = pacsv.read_csv(pa.BufferReader(data), read_options=pacsv.ReadOptions(use_threads=False,
                                                                                 block_size=1 << 24),
                           convert_options=pacsv.ConvertOptions(column_types=types,
                                                                include_columns=names if partial else None))
    except Exception as e:  # noqa: BLE001 - not a plain numeric grid: pandas reads it or names the cause
        raise _NotPlain(str(e)) from e
    if t.column_names != names:
        raise _NotPlain("header parsed differently")
    X = np.empty((t.num_rows, len(names) - 1), dtype=np.float64)
    for j, col in enumerate(t.columns[1:]):
        X[:, j] = col.to_numpy(zero_copy_only=False) if col.num_chunks != 1 else col.chunk(0).to_numpy(
            zero_copy_only=False)
    index = pd.Index(t.column(0).to_pylist(), name=names[0] or None)
    del t
    pa.default_memory_pool().release_unused()  # the parsed table's buffers back to the OS, not kept pooled
    return pd.DataFrame(X, index=index, columns=names[1:], copy=False)


def _condition_columns(spec: dict, columns: list[str]) -> pd.DataFrame:
    """A two-step problem's condition-cohort columns (the condition and ~14 regressor genes of ~20,000): from the
    worker's cache when the cohort is there, else parsed alone (not cached: another trait's problems want other
    regressors).  The same values as the full read's: each cell is parsed on its own; a file the partial parse
    does not take (not a plain grid in those columns, a column missing) goes through the full read and its
    errors.  Unlike the full read, cells outside those columns are never converted, so junk there goes unseen."""
    with _cache_lock:
        c = _cache.get((spec["cond_url"], spec["cond_fp"], True))
    if c is None:
        try:
            return _read_plain(spec["cond_url"], columns)
        except _NotPlain:
            pass
    return cohort(spec["cond_url"], spec["cond_fp"], True).df


def cohort(url: str, fingerprint: str, fast: bool = False) -> _Cohort:
    """The cohort from this worker's cache, parsing it on first use (fast mode with :func:`read_linked_fast`,
    exact mode with pandas as the reference does: the two are cached apart)."""
    key = (url, fingerprint, fast)
    with _cache_lock:
        load_lock = _loading.setdefault(key, threading.Lock())
    with load_lock:  # two threads wanting the same cohort: one parses it, the other waits and reuses it
        with _cache_lock:
            c = _cache.get(key)
            if c is not None:
                _cache.move_to_end(key)
                _stats["hits"] += 1
                return c
        c = _Cohort(url, (read_linked_fast if fast else read_linked)(url))
        with _cache_lock:
            _stats["loads"] += 1
            _cache[key] = c
            while len(_cache) > gconfig.positive_int("analyze.cohorts-per-worker"):
                old, _ = _cache.popitem(last=False)
                _loading.pop(old, None)
        return c


def _cache_budget() -> int | None:
    """Bytes the cohort cache may hold on this worker: ``analyze.cache-memory`` of its memory limit.

    Why bytes and not only a count: at GenoTEX scale one TCGA-size cohort (1,400 samples x 19,700 genes) holds
    ~1.8 GB once fast mode has derived its fold designs, and Dask pauses a worker at 80% of its limit; a paused
    worker starts no task, so nothing would ever evict the cohorts that keep it paused (seen on a 1/8 sample).
    Outside a worker (tests, synchronous runs) the count limit alone applies.
    """
    try:
        from distributed import get_worker

        limit = get_worker().memory_manager.memory_limit
    except (ValueError, AttributeError):
        return None
    return int(gconfig.fraction("analyze.cache-memory") * limit) if limit else None


def _trim_cache(keep: tuple) -> None:
    """Evict least recently used cohorts (never those in ``keep``, the running problem's) beyond the budget."""
    budget = _cache_budget()
    if budget is None:
        return
    with _cache_lock:
        sizes = {k: c.nbytes() for k, c in _cache.items()}
        total = sum(sizes.values())
        for k in list(_cache):
            if total <= budget:
                break
            if k in keep:
                continue
            _cache.pop(k)
            _loading.pop(k, None)
            total -= sizes[k]
            _stats["evicted_for_memory"] = _stats.get("evicted_for_memory", 0) + 1


def cache_stats() -> dict:
    """Loads and hits of this process's cohort cache (tests and benchmarks read it on workers)."""
    return dict(_stats)


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
        _problems.clear()
        _stats.clear()
        _stats.update(loads=0, hits=0)


def gene_matrix(df: pd.DataFrame, genes: list[str]) -> tuple[np.ndarray, bool]:
    """The genes' columns of a cohort frame as one float64 matrix, and whether it is a view into the frame.

    Linked files list the trait, Age and Gender, then the genes sorted by name, so in a frame held as one block the
    genes are a slice of it: a read-only view instead of a second copy of the cohort (~230 MB for a TCGA-size
    one).  Any other layout gets a copy, as before."""
    pos = df.columns.get_indexer(genes)
    if len(pos) and pos[0] >= 0 and bool(np.all(np.diff(pos) == 1)):
        full = df.to_numpy(dtype=np.float64, copy=False)
        if np.shares_memory(full, df.to_numpy(dtype=np.float64, copy=False)):  # the frame's own block, not a copy
            X = full[:, pos[0]:pos[-1] + 1]
            X.flags.writeable = False  # the cached frame must not change through it
            return X, True
    return df[genes].to_numpy(dtype=float), False


def _fast_parts(c: _Cohort, trait: str) -> dict:
    """Gene matrix in canonical (name) order, its batch test and fold designs: shared by all problems."""
    with c.lock:
        if trait not in c.fast:
            genes = sorted(col for col in c.df.columns if col not in (trait, "Age", "Gender"))
            X, shared = gene_matrix(c.df, genes)
            c.fast[trait] = {"genes": genes, "X": X, "X_in_frame": shared, "designs": tuning.fold_designs(X),
                             "final": tuning.full_design(X), "batch": models.batch_effect_test(X)}
        return c.fast[trait]


_blas_pinned = False


def _single_thread_blas() -> None:
    """Pin every loaded BLAS/OpenMP pool of this worker process to one thread, once.

    The solves are small (n ~ 100-500): on a busy machine a 2-thread OpenBLAS eigh of a 176 x 176 matrix
    took 1.1 s against 0.03 s single-threaded.  Libraries are imported first because threadpoolctl only
    limits pools that are already loaded (scipy and numpy each bring their own OpenBLAS).
    """
    global _blas_pinned
    if _blas_pinned:
        return
    import scipy.linalg  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import sparse_lmm  # noqa: F401
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    _blas_pinned = True


# ---- problem assembly (worker side) ----------------------------------------------------------------------

def _fast_targets(spec: dict, c: _Cohort) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """(trait, condition, extras) of a fast-mode problem read straight from the cached frame.

    The same values and errors as the reference's assembly in :func:`prepare`, without its copies of the
    whole cohort (each ``drop`` copies it: ~80 MB and 0.1-0.3 CPU-s for a 518 x 19,736 cohort, per problem).
    The two-step regressors are genes of both cohorts (never Age or Gender, problems.gene_regressors).
    """
    trait, cond = spec["trait"], spec["condition"]
    cols = c.df.columns
    extras: dict[str, Any] = {}
    Z = None
    if cond in problems.ONE_STEP_CONDITIONS:
        if cond not in cols:
            raise AnalysisInputError(f"{spec['trait_url']}: cohort marked has_{cond.lower()} lacks column {cond!r}")
        Z = c.df[cond].to_numpy(float)
    elif cond is not None:
        regs = list(spec["regressors"])
        cdf = _condition_columns(spec, [cond, *regs])
        if cond not in cdf.columns:
            raise AnalysisInputError(f"{spec['cond_url']}: no column {cond!r} for the condition")
        Z, extras["condition_model"] = models.predict_condition(
            cdf[regs].to_numpy(float), cdf[cond].to_numpy(float), c.df[regs].to_numpy(float))
    if trait not in cols or trait in ("Age", "Gender"):
        raise AnalysisInputError(f"{spec['trait_url']}: no trait column {trait!r}")
    return c.df[trait].to_numpy(float), Z, extras


def _keys(spec: dict, fast: bool) -> tuple:
    """Cache keys of the cohorts a problem uses."""
    return ((spec["trait_url"], spec["trait_fp"], fast), (spec.get("cond_url"), spec.get("cond_fp"), fast))


def prepare(spec: dict, fast: bool = False) -> tuple[tuning.ProblemData, dict | None]:
    """ProblemData for a planned problem, built exactly as the reference builds its arrays."""
    _single_thread_blas()
    trait, cond = spec["trait"], spec["condition"]
    c = cohort(spec["trait_url"], spec["trait_fp"], fast)
    if fast:
        Y, Z, extras = _fast_targets(spec, c)
        parts = _fast_parts(c, trait)
        _trim_cache(_keys(spec, fast))
        genes, X, batch = parts["genes"], parts["X"], parts["batch"]
        var_names = [trait] + ([cond] if cond else []) + genes
        return _problem(spec, X, Y, Z, var_names, genes, batch, extras), parts
    df = c.df
    extras: dict[str, Any] = {}
    if cond is None:
        df = df.drop(columns=["Age", "Gender"], errors="ignore")
    elif cond in problems.ONE_STEP_CONDITIONS:
        other = "Age" if cond == "Gender" else "Gender"
        df = df.drop(columns=[other], errors="ignore")
        if cond not in df.columns:
            raise AnalysisInputError(f"{spec['trait_url']}: cohort marked has_{cond.lower()} lacks column {cond!r}")
    else:
        cc = cohort(spec["cond_url"], spec["cond_fp"], fast)
        regs = list(spec["regressors"])
        if cond not in cc.df.columns:
            raise AnalysisInputError(f"{spec['cond_url']}: no column {cond!r} for the condition")
        df = df.drop(columns=["Age", "Gender"], errors="ignore").copy()
        z, name = models.predict_condition(cc.df[regs].to_numpy(float), cc.df[cond].to_numpy(float),
                                           df[regs].to_numpy(float))
        df[cond] = z
        extras["condition_model"] = name
    if trait not in df.columns:
        raise AnalysisInputError(f"{spec['trait_url']}: no trait column {trait!r}")
    Y = df[trait].to_numpy(float)
    Z = df[cond].to_numpy(float) if cond is not None else None
    drop = [trait] if cond is None else [trait, cond]
    Xdf = df.drop(columns=drop)
    genes, X = Xdf.columns.tolist(), Xdf.to_numpy(dtype=float)
    _trim_cache(_keys(spec, fast))
    return _problem(spec, X, Y, Z, df.columns.tolist(), genes, models.batch_effect_test(X), extras), None


def _problem(spec: dict, X: np.ndarray, Y: np.ndarray, Z: np.ndarray | None, var_names: list[str],
             genes: list[str], batch: models.BatchTest, extras: dict) -> tuning.ProblemData:
    gene_set = set(genes)
    data = tuning.ProblemData(spec["trait"], spec["condition"], X, Y, Z, var_names, genes,
                              [g for g in spec["related"] if g in gene_set],
                              models.LMM if batch.fires else models.LASSO, extras)
    data.extras["batch_effect"] = {"fires": batch.fires, "max_normalized_gap": batch.max_gap,
                                   "threshold": batch.threshold, "batch_rule_could_fire": batch.could_fire}
    return data


# ---- tasks -----------------------------------------------------------------------------------------------

_problems: OrderedDict[str, tuning.ProblemData] = OrderedDict()


def _prepared_exact(spec: dict) -> tuning.ProblemData:
    """ProblemData for exact-mode tasks, built once per worker for the problem's 36 tasks."""
    key = json.dumps([spec["key"], spec.get("trait_fp"), spec.get("cond_fp")])
    with _cache_lock:
        data = _problems.get(key)
        if data is not None:
            _problems.move_to_end(key)
            return data
    data, _ = prepare(spec)
    with _cache_lock:
        _problems[key] = data
        while len(_problems) > 4:
            _problems.popitem(last=False)
    return data


def _failure(spec: dict, exc: BaseException) -> dict:
    """A problem that failed, as a result record: a failure is this problem's outcome, not a worker error
    (no "Compute Failed" traceback in the terminal; the traceback goes to the run summary)."""
    return {"problem": spec["key"], "error": f"{type(exc).__name__}: {exc}",
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))}


def _exact_fold_task(spec: dict, alpha: float, fold: int) -> dict:
    try:
        return tuning.fold_exact(_prepared_exact(spec), alpha, fold)
    except Exception as exc:  # reported once, by the problem's final task
        return _failure(spec, exc)


def _engine_record(spec: dict, data: tuning.ProblemData, mode: str, alpha: float, conv: dict,
                   seconds: float) -> dict:
    rec = {"mode": mode, "category": spec["category"], "model": data.kind, "alpha": alpha,
           "trait_cohort": spec["trait_cohort"], "condition_cohort": spec.get("cond_cohort"),
           "regressors": list(spec.get("regressors") or []), "n_samples": int(len(data.Y)),
           "n_genes": int(data.X.shape[1]), "n_related_genes_present": len(data.ref_genes)}
    rec.update(data.extras)
    rec.update(conv)
    rec["seconds"] = round(seconds, 3)
    return rec


def _write(spec: dict, out: str, result: dict, record: dict) -> None:
    # The output is a pure function of the inputs (reruns, other clusters and S3 runs compare it byte for
    # byte), so the wall time stays out of it: it is reported in the run summary only.
    eng = result.get(ENGINE_KEY)
    if isinstance(eng, dict) and "seconds" in eng:
        result = {**result, ENGINE_KEY: {k: v for k, v in eng.items() if k != "seconds"}}
    fs.write_json_atomic(spec["out_url"], result)
    fs.write_json_atomic(spec["record_url"], record)


def _exact_final_task(spec: dict, out: str, record: dict, fold_results: list) -> dict:
    broken = next((r for r in fold_results if "error" in r), None)
    if broken is not None:
        return broken
    try:
        return _exact_final(spec, out, record, fold_results)
    except Exception as exc:
        return _failure(spec, exc)


def _exact_final(spec: dict, out: str, record: dict, fold_results: list) -> dict:
    t0 = time.perf_counter()
    data = _prepared_exact(spec)
    grid, k = spec["grid"], spec["k"]
    results = [(a, tuning.mean_performance(fold_results[i * k:(i + 1) * k])) for i, a in enumerate(grid)]
    alpha, perf = tuning.choose(results, tuning.is_binary(data.Y))
    sig, conv = tuning.final_exact(data, alpha)
    conv["converged"] = not conv.get("final_hit_max_iter", False)
    eng = _engine_record(spec, data, "exact", alpha, conv, time.perf_counter() - t0)
    _write(spec, out, {"significant_genes": sig, "cv_performance": perf, ENGINE_KEY: eng}, record)
    return {"problem": spec["key"], "n_genes_selected": len(sig["Variable"]), **_brief(eng)}


GAP_TOL = 1e-6  # relative to P(0); scikit-learn's default stop is ~2e-4 on that scale


def _fast_task(spec: dict, out: str, record: dict) -> dict:
    t0 = time.perf_counter()
    data, parts = prepare(spec, fast=True)
    alpha, perf, conv = tuning.tune_fast(data, parts["designs"], spec["grid"])
    # LMM: the eigen-decomposition and U'X of the designs are computed once per cohort and trait
    sig, conv2 = tuning.final_fast(data, alpha, parts["final"])
    conv.update(conv2)
    conv["converged"] = bool(conv["cv_max_rel_duality_gap"] <= GAP_TOL and conv["final_rel_duality_gap"] <= GAP_TOL)
    conv["gap_tolerance"] = GAP_TOL
    eng = _engine_record(spec, data, "fast", alpha, conv, time.perf_counter() - t0)
    _write(spec, out, {"significant_genes": sig, "cv_performance": perf, ENGINE_KEY: eng}, record)
    return {"problem": spec["key"], "n_genes_selected": len(sig["Variable"]), **_brief(eng)}


def _fast_task_batch(specs: list[dict], out: str) -> list[dict]:
    """Fast mode: the problems of one trait cohort in one task (one scheduler round trip, one task's overhead,
    the cohort parsed and standardized once); a failing problem is reported with its traceback, the others
    run on."""
    res = []
    for s in specs:
        try:
            res.append(_fast_task(s, out, s["record"]))
        except Exception as exc:
            res.append(_failure(s, exc))
    return res


# ... and at most this many bytes of linked CSV times problems per task: a fast problem costs roughly in proportion
# to its cohort's size (~0.15 CPU-s on an 8 MB 167 x 5,000 file, ~15 CPU-s on a 140 MB TCGA-size one), so small
# cohorts share a task (fewer round trips and task overheads) while a big cohort's problems stay separate tasks
# that a cluster can spread (a 700 s batch on a 731-sample TCGA cohort was the critical path of a 1/16 run).
BATCH_BYTES = 48 << 20


def _batches(specs: list[dict]) -> list[list[dict]]:
    """Fast-mode problems grouped by trait cohort, bounded by the ``analyze.batch-problems`` setting and
    BATCH_BYTES per group."""
    groups: dict[str, list[dict]] = {}
    for s in specs:
        groups.setdefault(s["trait_url"], []).append(s)
    out = []
    for g in groups.values():
        by_size = BATCH_BYTES // max(_fp_size(g[0]["trait_fp"]), 1)
        per = max(1, min(gconfig.positive_int("analyze.batch-problems"), by_size))
        out += [g[i:i + per] for i in range(0, len(g), per)]
    return out


def _brief(eng: dict) -> dict:
    keys = ("model", "alpha", "trait_cohort", "condition_cohort", "converged", "seconds")
    out = {k: eng.get(k) for k in keys}
    out["batch_rule_could_fire"] = eng["batch_effect"]["batch_rule_could_fire"]
    return out


def _worker_cache_stats() -> dict:
    return cache_stats()


# ---- planning (client side) --------------------------------------------------------------------------------

def _header(url: str, memo: dict) -> list[str]:
    """A linked file's column names (without the index column), as pandas names them.

    The header line is split with the csv module (pandas' ``nrows=0`` builds an empty Series per column:
    0.3 CPU-s for 5,000 genes, on the client, for every two-step problem); a header pandas would rewrite
    (duplicate or empty names, no line end) is read by pandas itself.
    """
    if url not in memo:
        try:
            with fs.open_binary(url) as f:
                try:
                    memo[url] = _plain_header(f)[1:]
                except Exception:  # noqa: BLE001 - pandas reads the header or names the cause
                    f.seek(0)
                    memo[url] = pd.read_csv(f, index_col=0, nrows=0).columns.tolist()
        except Exception as e:
            raise AnalysisInputError(f"{url}: cannot read header: {e}") from e
    return memo[url]


def _fp_stable(fp: str) -> dict:
    """Size and modification time (etags differ between copies of the same bytes on object stores)."""
    d = json.loads(fp)
    return {"size": d.get("size"), "mtime": d.get("mtime")}


def _fp(url: str) -> str:
    return json.dumps(fs.file_fingerprint(url), sort_keys=True)


def _sample_size(cohort_info: dict, cohort_id: str) -> int | None:
    """A cohort's sample_size from cohort_info.json when it is a plausible count (untrusted file)."""
    try:
        n = (cohort_info.get(cohort_id) or {}).get("sample_size")
        return int(n) if isinstance(n, (int, float)) and 0 < n < 1e7 else None
    except (AttributeError, TypeError, ValueError, OverflowError):
        return None


def plan(root: str, out: str, mode: str, task_info: dict, task_info_sha: str) -> tuple[list, list]:
    """(runnable problem specs, problems without cohorts [(key, reason)])."""
    infos: dict[str, dict] = {}

    def info(trait: str) -> dict:
        if trait not in infos:
            url = layout.cohort_info_path(out, trait)
            infos[trait] = fs.read_json(url) if fs.exists(url) else {}
        return infos[trait]

    memo: dict[str, list[str]] = {}
    column_sets: dict[str, frozenset[str]] = {}  # per linked file, made once: pairs are examined per problem

    def columns_of(t: str, c: str) -> frozenset[str]:
        url = layout.linked_data_path(out, t, c)
        if url not in column_sets:
            column_sets[url] = frozenset(_header(url, memo))
        return column_sets[url]

    frames: dict[str, pd.DataFrame] = {}  # a trait's cohorts ranked once (pandas: ~1.5 ms a ranking)

    def ranked(name: str, cohort_info: dict) -> pd.DataFrame:
        if name not in frames:
            frames[name] = problems.rank_cohorts_frame(cohort_info)
        return frames[name]

    specs, missing = [], []
    for prob in problems.list_problems(task_info):
        key = prob.key
        try:
            for what, name in (("trait", prob.trait), ("condition", prob.condition)):
                if name is not None:
                    layout.check_name(name, f"{what} name", layout.task_info_path(root))
            if prob.category == problems.TWO_STEP:
                sel = problems.select_two_step(
                    prob.trait, prob.condition, info(prob.trait), info(prob.condition),
                    problems.related_genes(task_info, prob.condition), columns_of, ranked=ranked)
            else:
                sel = problems.select_one_step(info(prob.trait), prob.condition)
            for cid in (sel.trait_cohort, sel.condition_cohort):
                if cid is not None:
                    layout.check_name(cid, "cohort name", "cohort_info.json")
        except (AnalysisInputError, layout.UnsafePathError) as e:
            missing.append({"problem": key, "reason": str(e)})
            continue
        if sel.trait_cohort is None:
            missing.append({"problem": key, "reason": sel.reason})
            continue
        t_url = layout.linked_data_path(out, prob.trait, sel.trait_cohort)
        if not fs.exists(t_url):
            missing.append({"problem": key, "reason": f"{t_url}: selected cohort file is missing"})
            continue
        spec = {"key": key, "trait": prob.trait, "condition": prob.condition, "category": prob.category,
                "trait_cohort": sel.trait_cohort, "trait_url": t_url, "trait_fp": _fp(t_url),
                "regressors": list(sel.regressors), "related": problems.related_genes(task_info, prob.trait),
                "grid": list(tuning.GRID), "k": tuning.K_FOLDS,
                "out_url": layout.significant_genes_path(out, prob.trait, prob.condition),
                "record_url": layout.join(layout.regress_dir(out), prob.trait, ".records",
                                          f"condition_{prob.condition}.json")}
        spec["trait_n"] = _sample_size(info(prob.trait), sel.trait_cohort)  # scheduling only
        if sel.condition_cohort is not None:
            c_url = layout.linked_data_path(out, prob.condition, sel.condition_cohort)
            spec.update(cond_cohort=sel.condition_cohort, cond_url=c_url, cond_fp=_fp(c_url))
        # inputs keyed by their path under OUT, so a moved/copied OUT keeps its records valid
        rel_t = f"preprocess/{prob.trait}/{sel.trait_cohort}.csv"
        rel_c = f"preprocess/{prob.condition}/{sel.condition_cohort}.csv"
        spec["record"] = {"mode": mode, "task_info_sha256": task_info_sha,
                          "inputs": {rel_t: _fp_stable(spec["trait_fp"]),
                                     **({rel_c: _fp_stable(spec["cond_fp"])} if "cond_url" in spec else {})},
                          "selection": [sel.trait_cohort, sel.condition_cohort, list(sel.regressors)]}
        specs.append(spec)
    return specs, missing


def _up_to_date(spec: dict) -> bool:
    if not (fs.exists(spec["out_url"]) and fs.exists(spec["record_url"])):
        return False
    try:
        return fs.read_json(spec["record_url"]) == json.loads(json.dumps(spec["record"]))
    except Exception:
        return False


# Cost model of the scheduling below, in estimated CPU-seconds, fitted (non-negative least squares, per cohort) to
# the fast problems of the 1/4 GenoTEX-scale sample (348 problems, 167 to 1,442 samples x ~19,700 genes): a
# problem's solves cost ~GENE_S x bytes/samples (work per gene: KKT checks, gene lists; ~1 s at 19,700 genes)
# plus ~PATH_S x samples x bytes (the homotopy: ~n breakpoints of O(n |W|) each, ~samples^2 x genes).  The
# former rule, samples^2 x bytes, put the 1,220-sample cohort's problems at 3x and the 150-sample ones' at 0.1x
# of their measured cost; simulated on the measured durations, the busiest of 2 / 4 / 8 workers had 806 / 449 /
# 301 s for 725 / 372 / 191 s of mean load, 748 / 390 / 241 s with this model (fitted on the same run).  Each worker that runs a cohort's
# problems first parses it (fast mode's grid reader: ~2 ms per MB with the file read, pyarrow's took ~14; exact
# mode's pandas: READ_S_PER_BYTE) and, in fast mode, standardizes its folds and,
# for an LMM cohort, computes each fold's eigen-decomposition and U'X (~n^2 x genes: ~10 of the ~25 CPU-s of
# the first problem on a 1,220 x 19,736 cohort); that is what a spread cohort pays again.  Only ratios matter:
# they decide which worker finishes first.
GENE_S_PER_BYTE_PER_SAMPLE = 6.8e-6
PATH_S_PER_SAMPLE_BYTE = 7.7e-11
READ_S_PER_BYTE = 6e-9
FAST_READ_S_PER_BYTE = 2e-9  # the 1/2 sample's 309 linked files: 1.6-2.1 ns per byte, reading the file included
DESIGN_S_PER_SAMPLE_BYTE = 4e-11
COLUMNS_READ_FRACTION = 0.5  # a condition cohort's few columns: the file read and one pass, ~0.5 + ~0.6 ns per byte
EXACT_SOLVE_FACTOR = 10.0
_DEFAULT_SAMPLES = 167  # cohort_info.json without a usable sample_size: GenoTEX's mean cohort


def _fp_size(fp: str | None) -> int:
    try:
        return max(0, int(json.loads(fp).get("size") or 0)) if fp else 0
    except (ValueError, TypeError, AttributeError):
        return 0


def problem_seconds(spec: dict, mode: str = "fast") -> float:
    """Estimated CPU-seconds of one problem's solves (without parsing its cohorts)."""
    n = spec.get("trait_n") or _DEFAULT_SAMPLES
    size = _fp_size(spec.get("trait_fp"))
    solve = GENE_S_PER_BYTE_PER_SAMPLE * size / n + PATH_S_PER_SAMPLE_BYTE * n * size
    return solve * (EXACT_SOLVE_FACTOR if mode == "exact" else 1.0)


def _unit_cohorts(unit: dict, mode: str = "fast") -> dict[str, float]:
    """Cohorts a task unit parses (URL -> estimated seconds a worker pays once for it): every trait cohort (in fast
    mode with its fold designs), two-step conditions' (parsed only)."""
    out = {}
    for s in unit.get("batch", [unit]):
        size = _fp_size(s.get("trait_fp"))
        design = DESIGN_S_PER_SAMPLE_BYTE * (s.get("trait_n") or _DEFAULT_SAMPLES) * size if mode == "fast" else 0.0
        read = FAST_READ_S_PER_BYTE if mode == "fast" else READ_S_PER_BYTE
        out[s["trait_url"]] = read * size + design
        if s.get("cond_url"):  # fast mode parses only the condition and regressor columns (~1/2 of the CPU)
            part = COLUMNS_READ_FRACTION if mode == "fast" else 1.0
            out.setdefault(s["cond_url"], part * read * _fp_size(s.get("cond_fp")))
    return out


def _assign_workers(units: list[dict], workers: list[str], mode: str = "fast") -> tuple[dict[str, str], list[dict]]:
    """Route task units (fast: a cohort batch; exact: a problem) to workers by estimated cost.

    First whole trait cohorts, costliest first, each to the least-loaded worker (its cache then serves all
    the cohort's problems); then, while it shortens the stage, the largest unit that fits is moved from the
    busiest worker to the idlest, paying a second parse of its cohorts there: a big TCGA cohort's problems
    spread instead of ending as one worker's tail.  Returns ({unit key: worker}, units in submission order:
    costliest cohort first, each cohort's units together).
    """
    cost = {u["key"]: sum(problem_seconds(s, mode) for s in u.get("batch", [u])) for u in units}
    reads = {u["key"]: _unit_cohorts(u, mode) for u in units}
    groups: dict[str, list[dict]] = {}
    for u in sorted(units, key=lambda u: (-(cost[u["key"]] + sum(reads[u["key"]].values())), u["key"])):
        groups.setdefault(u.get("batch", [u])[0]["trait_url"], []).append(u)
    ranked = sorted(groups.items(), key=lambda kv: (-sum(cost[u["key"]] for u in kv[1]), kv[0]))
    # submission order: costliest cohorts first, a cohort's units next to each other (a worker runs its tasks
    # in that order, so its cohort cache is not churned by interleaved cohorts)
    order = [u for _url, g in ranked for u in g]
    if not workers:
        return {}, order
    on: dict[str, list[dict]] = {w: [] for w in workers}
    load = {w: 0.0 for w in workers}
    uses: dict[str, dict[str, int]] = {w: {} for w in workers}  # cohort -> units on w that parse it

    def delta(w: str, u: dict, sign: int) -> float:
        """Load change of worker w when unit u is added (+1) or removed (-1)."""
        parse = sum(v for c, v in reads[u["key"]].items() if uses[w].get(c, 0) == (0 if sign > 0 else 1))
        return sign * (cost[u["key"]] + parse)

    def move(w: str, u: dict, sign: int) -> None:
        load[w] += delta(w, u, sign)
        for c in reads[u["key"]]:
            uses[w][c] = uses[w].get(c, 0) + sign
        if sign > 0:
            on[w].append(u)
        else:
            on[w].remove(u)

    for _url, g in ranked:
        best = min(workers, key=lambda w: (load[w], w))
        for u in g:
            move(best, u, +1)
    for _ in range(len(units)):  # each move strictly lowers the busiest worker's load
        busy = max(workers, key=lambda w: (load[w], w))
        idle = min(workers, key=lambda w: (load[w], w))
        top = load[busy]
        moves = [u for u in on[busy]
                 if max(top + delta(busy, u, -1), load[idle] + delta(idle, u, +1)) < top - 1e-12]
        if busy == idle or not moves:
            break
        u = max(moves, key=lambda u: (cost[u["key"]], u["key"]))
        move(busy, u, -1)
        move(idle, u, +1)
    where = {u["key"]: w for w in workers for u in on[w]}
    return where, order


# Cohorts from this many samples on are cache-hungry: a breakpoint of the homotopy streams the working set's rows
# (~2.5 n genes x n samples, float64 and a float32 copy) and the active Cholesky factor, ~12 x 2.5 n^2 + 4 n^2 bytes
# at fold size 0.8 n: ~12 MB at 600 samples, ~32 MB (the whole shared L3 of this machine's two cores) at 1,220.  Two
# such problems side by side evict each other's rows: measured on the 1/8 GenoTEX-scale sample (1,220-sample cohort,
# 5 problems, per-phase thread_time), the kernel took 1.38x its CPU beside a copy of itself, ~1.14x beside the
# 160-419-sample cohorts' problems (which themselves took 1.08x).
HEAVY_SAMPLES = 600
# Share of a staggered worker's estimated load kept as light cohorts for its end, so both workers still finish
# on small tasks (an estimate that is off then leaves short tasks, not a big cohort's, as the tail).
STAGGER_TAIL_SHARE = 0.1


def _stagger(order: list[dict], where: dict[str, str], workers: list[str], mode: str = "fast") -> list[dict]:
    """The submission order with paired workers' cache-hungry cohorts (:data:`HEAVY_SAMPLES`) run at different
    times: worker 2i runs its heavy cohorts first, worker 2i+1 first light cohorts for about as long as its
    partner's heavy ones take, then its heavy ones, then the light rest (at least :data:`STAGGER_TAIL_SHARE`
    of its load).  Both costliest first (the rank of ``order``), a cohort's units together.  Returns every
    unit once, ordered by its estimated start on its worker (the priority a thief also follows)."""
    if len(workers) < 2:
        return order
    groups: dict[str, list[tuple[str, list[dict]]]] = {w: [] for w in workers}  # per worker: (cohort, units)
    for u in order:
        g = groups[where[u["key"]]]
        url = u.get("batch", [u])[0]["trait_url"]
        if g and g[-1][0] == url:
            g[-1][1].append(u)
        else:
            g.append((url, [u]))

    def cost(units: list[dict]) -> float:
        reads: dict[str, float] = {}
        for u in units:
            reads.update(_unit_cohorts(u, mode))
        return sum(problem_seconds(s, mode) for u in units for s in u.get("batch", [u])) + sum(reads.values())

    def heavy(units: list[dict]) -> bool:
        return (units[0].get("batch", units)[0].get("trait_n") or _DEFAULT_SAMPLES) >= HEAVY_SAMPLES

    # per worker: (units, estimated seconds, heavy) of each cohort, each estimated once
    sized = {w: [(us, cost(us), heavy(us)) for _, us in groups[w]] for w in workers}
    seqs: dict[str, list[tuple[list[dict], float, bool]]] = {}
    for i, w in enumerate(workers):
        hv = [g for g in sized[w] if g[2]]
        lt = [g for g in sized[w] if not g[2]]
        if i % 2 == 0 or not hv:
            seqs[w] = hv + lt
            continue
        partner = sum(c for _, c, h in seqs[workers[i - 1]] if h)
        load = sum(c for _, c, _ in hv + lt)
        room = min(partner, sum(c for _, c, _ in lt) - STAGGER_TAIL_SHARE * load)
        before, after = [], []
        for g in lt:
            if g[1] <= room:
                before.append(g)
                room -= g[1]
            else:
                after.append(g)
        seqs[w] = before + hv + after
    starts = []
    for w in workers:
        t = 0.0
        for us, c, _ in seqs[w]:
            for u in us:  # the cohort's units spread over its span (only their order matters)
                starts.append((t, len(starts), u))
                t += c / len(us)
    return [u for _, _, u in sorted(starts, key=lambda x: (x[0], x[1]))]


# ---- the stage ---------------------------------------------------------------------------------------------

STALL_CHECK_S = 5.0


def _stuck_keys(dask_scheduler, keys: list[str]) -> list[str]:
    """Keys left in ``no-worker`` although workers are connected.  distributed (2026.7) keeps a task routed to
    a worker that is gone there, even with ``allow_other_workers``, once every worker was lost at the same
    time (new workers are offered only tasks whose restrictions they satisfy)."""
    if not dask_scheduler.workers:
        return []
    return [k for k in keys if (ts := dask_scheduler.tasks.get(k)) is not None and ts.state == "no-worker"]


def _resubmit_stuck(client, pending: dict, submit) -> list:
    """Cancel and resubmit, without routing, the problems with a stuck task; returns the new futures."""
    keys = [k for _, ks in pending.values() for k in ks]
    stuck = set(client.run_on_scheduler(_stuck_keys, keys=keys)) if keys else set()
    new = []
    for fut, (s, ks) in list(pending.items()):
        if stuck.intersection(ks):
            client.cancel([fut])
            del pending[fut]
            nf, nks = submit(s, routed=False)
            pending[nf] = (s, nks)
            new.append(nf)
    return new


def run_analyze(root: str, out: str, client, mode: str = "fast", progress: bool = True) -> dict:
    """Solve every problem of ROOT/metadata/task_info.json from OUT/preprocess into OUT/regress.

    Returns the run summary (also written to OUT/regress/run_summary.json): counts of written, skipped
    (up to date), failed (with traceback) problems and problems without a usable cohort (with the reason).
    """

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    t0 = time.perf_counter()
    ti_url = layout.task_info_path(root)
    raw = fs.read_bytes(ti_url)
    task_info = json.loads(raw)
    sha = hashlib.sha256(raw).hexdigest()
    specs, missing = plan(root, out, mode, task_info, sha)
    todo = [s for s in specs if not _up_to_date(s)]
    skipped = [s["key"] for s in specs if s not in todo]
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"]) if todo else []
    def submit(s: dict, routed: bool) -> tuple[Any, list[str]]:
        """The problem's final future and every key it needs (exact mode: one task per alpha x fold)."""
        w = where.get(s["key"]) if routed else None
        kw: dict[str, Any] = {"workers": [w], "allow_other_workers": True} if w else {}
        kw["priority"] = rank.get(s["key"], 0)
        if mode == "exact":
            folds = [client.submit(_exact_fold_task, s, a, f, pure=False, **kw)
                     for a in s["grid"] for f in range(s["k"])]
            fut = client.submit(_exact_final_task, s, out, s["record"], folds, pure=False, **kw)
            return fut, [f.key for f in folds] + [fut.key]
        fut = client.submit(_fast_task_batch, s["batch"], out, pure=False, **kw)  # fast: always a batch
        return fut, [fut.key]

    if mode == "fast":  # one task per cohort batch
        todo = [{"key": b[0]["key"], "batch": b} for b in _batches(todo)]
    where, todo = _assign_workers(todo, workers, mode)
    todo = _stagger(todo, where, workers, mode)
    # Each worker runs its tasks in this order (costliest cohort first, a cohort's tasks together) only if told:
    # tasks submitted within distributed's fifo-timeout (60 ms) share one priority and a worker then picks among
    # them in no useful order (seen: a cohort's last problem run after five other cohorts had evicted it from the
    # cache, its 700-sample cohort parsed twice; the longest problems left for the end)
    rank = {u["key"]: len(todo) - i for i, u in enumerate(todo)}
    pending = {}
    for s in todo:
        fut, keys = submit(s, routed=True)
        pending[fut] = (s, keys)
    done, failed = [], []
    pause_watch = PauseWatch(client)
    bar = tqdm(total=len(pending), desc=f"analyze ({mode})", unit="task", file=sys.stderr, disable=not progress,
               dynamic_ncols=True)
    # as_completed, not wait(FIRST_COMPLETED) on everything pending after each finished task: that re-watches
    # every pending future each time (600 tasks: ~6 client CPU-s against ~1, competing with the workers)
    ac = as_completed(list(pending))
    try:
        while pending:
            finished = ac.next_batch(block=False)
            if not finished:
                with ac.thread_condition:  # notified after each finished future is queued: no missed wake-up
                    if not ac.has_ready():
                        ac.thread_condition.wait(timeout=STALL_CHECK_S)
                if not ac.has_ready():  # nothing finished for a while: paused cluster? routed to a lost worker?
                    pause_watch.check()
                    for fut in _resubmit_stuck(client, pending, submit):
                        ac.add(fut)
                        bar.write(f"analyze: {pending[fut][0]['key']} lost its routed worker; resubmitted unrouted")
                continue
            for fut in finished:
                if fut not in pending:  # cancelled and resubmitted above
                    continue
                s, _ = pending.pop(fut)
                bar.update(1)
                if fut.status == "finished":
                    for r in (fut.result() if "batch" in s else [fut.result()]):
                        (failed if "error" in r else done).append(r)
                else:
                    exc = fut.exception()
                    tb = "".join(traceback.format_exception(type(exc), exc, fut.traceback()))
                    for p in s.get("batch", [s]):
                        failed.append({"problem": p["key"], "error": f"{type(exc).__name__}: {exc}", "traceback": tb})
    finally:
        bar.close()
    done.sort(key=lambda d: d["problem"])
    failed.sort(key=lambda d: d["problem"])
    summary = {"mode": mode, "problems": len(specs) + len(missing), "written": len(done),
               "skipped_up_to_date": len(skipped), "failed": len(failed), "no_cohort": len(missing),
               "done": done, "skipped": skipped, "errors": failed, "no_cohort_problems": missing,
               "batch_rule_could_not_fire": sorted(d["problem"] for d in done if not d["batch_rule_could_fire"]),
               "seconds": round(time.perf_counter() - t0, 3)}
    _write_results_table(out, summary)
    fs.write_json_atomic(layout.join(layout.regress_dir(out), "run_summary.json"), fs.json_safe(summary))
    return summary


def _write_results_table(out: str, summary: dict) -> None:
    """The run's significant genes as a Parquet dataset (OUT/results/, see genotex_dask.results); a failure
    to write it is recorded, never fatal (the JSON files are the results; the loader rebuilds the table)."""
    from genotex_dask import results

    try:
        summary["results_dataset"] = results.write_results_parquet(out)
    except Exception as e:  # noqa: BLE001 - the table is a derived view
        summary["results_dataset_error"] = f"{type(e).__name__}: {e}"


# ---- bring your own method (one seam beside Lasso/LMM: analysis/estimators.py) ------------------------------

def _problem_arrays(spec: dict) -> dict:
    """Worker task: a planned problem's arrays, built as for Lasso/LMM (genes in file order)."""
    data, _ = prepare(spec)
    return {"X": data.X, "Y": data.Y, "Z": data.Z, "genes": data.gene_names, "trait": data.trait}


ESTIMATOR_PROBLEMS_IN_FLIGHT = 4


def run_estimator(root: str, out: str, client, estimator: Any, param_grid: dict, method: str | None = None,
                  scoring: Any = None, progress: bool = True) -> dict:
    """Every problem with a user estimator: results in GenoTEX's layout under OUT/methods/<method>/.

    Problems and cohort choice are the Lasso run's (same plan); each problem's (parameter set x fold) fits run
    on the cluster through dask-ml's GridSearchCV.  OUT/methods/<method>/preprocess/<Trait>/cohort_info.json
    are copies, so ``evaluate --pred OUT/methods/<method>`` scores the method exactly as it scores Lasso/LMM.
    """
    from genotex_dask.analysis import estimators

    t0 = time.perf_counter()
    method = method or estimators.method_name(estimator)
    if not method.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"method name {method!r}: use letters, digits, '_' or '-'")
    mout = layout.join(out, "methods", method)
    raw = fs.read_bytes(layout.task_info_path(root))
    specs, missing = plan(root, out, "fast", json.loads(raw), hashlib.sha256(raw).hexdigest())
    for trait in sorted({s["trait"] for s in specs} | {s["condition"] for s in specs if s.get("cond_cohort")}):
        src = layout.cohort_info_path(out, trait)
        if fs.exists(src):
            fs.write_bytes_atomic(layout.cohort_info_path(mout, trait), fs.read_bytes(src))
    # resume: a problem is skipped when its inputs (the Lasso plan's record), estimator, grid and scoring are
    # those its result was made from
    for s in specs:
        s["out_url"] = layout.significant_genes_path(mout, s["trait"], s["condition"])
        s["record_url"] = layout.join(layout.regress_dir(mout), s["trait"], ".records", f"condition_{s['condition']}.json")
        s["record"] = json.loads(json.dumps(fs.json_safe(
            {**s["record"], "method": method, "estimator": repr(estimator), "param_grid": param_grid,
             "scoring": repr(scoring)}), default=str))
    skipped = [s["key"] for s in specs if _up_to_date(s)]
    specs = [s for s in specs if s["key"] not in set(skipped)]
    done, failed = [], []
    arrays = {s["key"]: client.submit(_problem_arrays, s, pure=False) for s in specs}

    def search(s: dict) -> tuple[dict, dict, dict]:
        a = arrays[s["key"]].result()
        sig, rec = estimators.search_problem(estimator, param_grid, a["X"], a["Y"], a["Z"], a["genes"],
                                             a["trait"], scheduler=client, scoring=scoring)
        return a, sig, rec

    # several problems' searches in flight at once: one problem's (candidate x fold) graph is small, and
    # waiting for each before submitting the next leaves the workers idle between graphs
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=ESTIMATOR_PROBLEMS_IN_FLIGHT)
    running = [(s, pool.submit(search, s)) for s in specs]
    bar = tqdm(total=len(running), desc=f"analyze ({method})", unit="problem", file=sys.stderr,
               disable=not progress)
    for s, fut in running:
        try:
            a, sig, rec = fut.result()
        except Exception as e:  # noqa: BLE001 - one failing problem never stops the others
            failed.append({"problem": s["key"], "error": f"{type(e).__name__}: {e}",
                           "traceback": "".join(traceback.format_exception(type(e), e, e.__traceback__))})
            bar.update(1)
            continue
        bar.update(1)
        seconds = rec.pop("seconds")
        rec.update(method=method, mode="estimator", category=s["category"], model=method,
                   trait_cohort=s["trait_cohort"], condition_cohort=s.get("cond_cohort"),
                   regressors=list(s.get("regressors") or []), n_samples=int(len(a["Y"])), n_genes=len(a["genes"]))
        fs.write_json_atomic(s["out_url"], fs.json_safe({"significant_genes": sig, "cv_performance": {}, ENGINE_KEY: rec}))
        fs.write_json_atomic(s["record_url"], s["record"])
        done.append({"problem": s["key"], "n_genes_selected": len(sig["Variable"]), "seconds": seconds,
                     "best_params": rec["best_params"]})
    bar.close()
    pool.shutdown()
    summary = {"mode": "estimator", "method": method, "out": mout,
               "problems": len(specs) + len(skipped) + len(missing), "written": len(done),
               "skipped_up_to_date": len(skipped), "skipped": skipped, "failed": len(failed),
               "no_cohort": len(missing), "done": done,
               "errors": failed, "no_cohort_problems": missing, "seconds": round(time.perf_counter() - t0, 3)}
    _write_results_table(mout, summary)
    fs.write_json_atomic(layout.join(layout.regress_dir(mout), "run_summary.json"), fs.json_safe(summary))
    return summary

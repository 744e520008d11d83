"""Preprocess: cohort store + cohort specs -> GenoTEX-layout outputs and a preprocessed AnnData store.

Where the raw data come from: always the Zarr cohort store (``STORE``, default ``OUT/store``).  Each cohort the
specs name is brought up to date there by the ingest stage's own per-cohort step
(:func:`genotex_dask.pipelines.ingest.ingest_cohort`, which skips unchanged cohorts), so preprocessing never
parses a series matrix itself.  Only ``compat="genotex"`` reads one raw file: the family SOFT, because GenoTEX
maps probes with the annotation tables of *all* platforms in it, which the store (one platform) does not keep.

One Dask task per cohort (``finalize-...``, :func:`preprocess_cohort`), all cohorts submitted together, no barrier
between ingest and preprocessing; in it::

    ingest step (skipped when the store group is up to date; else the matrix it parsed is mapped directly)
      -> resume check (fingerprint) -> prepare (spec -> trait/Age/Gender, probe->symbol operator)
      -> map the samples (the freshly parsed matrix, or the store one row of chunks at a time)
      -> link, missing values, bias, record, write files

Spec cohorts that share one input cohort (a TCGA directory used by several traits) depend on one ingest task.

Outputs (all written atomically):
``OUT/preprocess/<Trait>/gene_data/<cohort>.csv`` (symbols x samples), ``clinical_data/<cohort>.csv``
(GEO: features x samples; TCGA: samples x features, as GenoTEX writes them), ``<Trait>/<cohort>.csv`` (linked,
usable cohorts only), ``<Trait>/cohort_info.json`` (merged on the client from per-cohort parts, so parallel
cohorts never race), ``OUT/preprocess_meta/<Trait>/<cohort>.json`` (record, resume fingerprint, mapping
summary, step counts), ``OUT/preprocess_store/<Trait>/<cohort>.zarr`` (AnnData: samples x genes, obs = trait,
Age, Gender) and ``OUT/preprocess/run_summary.json``.

Resume: a cohort is skipped when its meta part holds the same fingerprint (spec, compat, store sources, synonym
table, engine version) and its outputs exist.  A cohort that fails (bad spec, no mappable genes, empty after
filtering, unreadable input) gets a cohort_info record whose note gives the cause; the others finish.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any

import numpy as np
import pandas as pd
from dask.base import tokenize
from distributed import Client

from genotex_dask import config as gconfig
from genotex_dask import layout, safe_regex
from genotex_dask.io import filewrite, fs, store, store_rows, thread_buffers
from genotex_dask.io import store as store_mod
from genotex_dask.pipelines.csv_out import (
    Cells,
    fill_cells,
    format_rows,
    quote,
    write_matrix_csv,
    write_token_csv,
)
from genotex_dask.preprocess import clinical, golden, quality
from genotex_dask.preprocess.mapping import (
    OPERATOR_FORMAT,
    GeneOperator,
    NoMappableGenes,
    apply_operator,
    build_probe_operator,
    build_symbol_operator,
    operator_from_bytes,
    operator_to_bytes,
)
from genotex_dask.preprocess.specs import CohortSpec, FeatureSpec, SpecError, load_specs_dir
from genotex_dask.preprocess.symbols import looks_like_symbols
from genotex_dask.progress import as_completed_with_progress

ENGINE_VERSION = 1
BLOCK_SAMPLES = 128  # default of dask.config genotex_dask.preprocess.block-samples (genotex_dask.yaml)
SHARED_CELLS_MAX = 8_000_000  # gene values formatted once for both CSVs up to this many (~140 MB)
GENE_COLUMN_NAMES = ("gene symbol", "gene_symbol", "symbol", "gene symbols", "genesymbol", "ilmn_gene",
                     "gene_assignment", "gene assignment", "gene", "gene_name", "gene name")


# ---- paths -----------------------------------------------------------------------------------------------

def meta_path(out: str, trait: str, cohort: str) -> str:
    return layout.join(out, "preprocess_meta", trait, f"{cohort}.json")


def pre_store_path(out: str, trait: str, cohort: str) -> str:
    return layout.join(out, "preprocess_store", trait, f"{cohort}.zarr")


# ---- synonyms (cached per process: 143k aliases, read once per worker) -----------------------------------

_SYN_CACHE: dict[str, dict] = {}


def load_synonyms(url: str) -> dict[str, str]:
    fp = json.dumps(fs.file_fingerprint(url), sort_keys=True)
    key = f"{url}|{fp}"
    if key not in _SYN_CACHE:
        _SYN_CACHE.clear()
        _SYN_CACHE[key] = fs.read_json(url)
    return _SYN_CACHE[key]


# ---- operators (cached per process: GenoTEX cohorts share a handful of platforms, e.g. GPL570) -------------

_OP_CACHE: dict[str, Any] = {}
_OP_CACHE_SIZE = 8


def _cached(key: str, build: Callable[[], Any], saved_dir: str | None = None) -> Any:
    """``build()``, memoised per worker process on ``key`` (a digest of every input of the build).

    With ``saved_dir`` (the store's ``operators/`` directory) an operator, or a yes/no decision (a bool: "are
    these row IDs symbols?"), is also saved there, so every worker and every later run finds it ready: a worker
    that loads a platform's operator then reads neither the probe IDs nor the synonym table.  Reading or writing
    it is best effort (a store on read-only storage, or a damaged file, only means building it again).
    """
    if key in _OP_CACHE:
        return _OP_CACHE[key]
    value = _load_saved(saved_dir, key)
    if value is None:
        value = build()
        _save(saved_dir, key, value)
    if len(_OP_CACHE) >= _OP_CACHE_SIZE:
        _OP_CACHE.pop(next(iter(_OP_CACHE)))
    _OP_CACHE[key] = value
    return value


def _load_saved(saved_dir: str | None, key: str) -> Any:
    """The operator (``key.npz``) or decision (``key.json``) saved under ``saved_dir``; None when absent or
    unreadable."""
    if not saved_dir:
        return None
    for name, read in ((f"{key}.npz", lambda url: operator_from_bytes(fs.read_bytes(url))),
                       (f"{key}.json", lambda url: fs.read_json(url)["value"])):
        url = layout.join(saved_dir, name)
        try:
            if fs.exists(url):
                value = read(url)
                if isinstance(value, (GeneOperator, bool)):
                    return value
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return None


def _save(saved_dir: str | None, key: str, value: Any) -> None:
    """Save an operator or decision under ``saved_dir`` for other workers and later runs (best effort)."""
    if not saved_dir or not isinstance(value, (GeneOperator, bool)):
        return
    try:
        if isinstance(value, bool):
            fs.write_json_atomic(layout.join(saved_dir, f"{key}.json"), {"value": value})
        else:
            fs.write_bytes_atomic(layout.join(saved_dir, f"{key}.npz"), operator_to_bytes(value))
    except OSError:
        pass


def _text_key(*parts: Any) -> str:
    """A cache key over JSON-able parts, the engine and operator format versions included."""
    h = hashlib.sha1(f"{ENGINE_VERSION}/{OPERATOR_FORMAT}".encode())
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, default=str).encode() + b"\x1e")
    return h.hexdigest()


_DIGESTS: dict[tuple, str] = {}  # identity of a cohort's var files (+ what names them) -> CohortMeta.digest
_DIGESTS_SIZE = 64
_DIGESTS_LOCK = threading.Lock()  # a worker's threads share the memo


def _var_digest(meta: store.CohortMeta, names: list[str]) -> str:
    """``meta.digest("var", names)`` (the content digest keying every operator), remembered per worker process
    by the identity of the files it reads: device, inode, size and mtime of each file of the index's and the named
    columns' nodes, with their paths, and what maps the column names to them (the column list, ``uns`` renames).

    Why: on a local store the cohorts of a known platform hard-link one copy of its var group
    (``STORE/platforms``), so their files are the same inodes, and the digest (reading and hashing the probe IDs
    and the gene column, ~1.6 MB for GPL570) is computed once per worker instead of once per cohort; one stat per
    file replaces it.  The store never rewrites a file in place (groups are replaced whole, new files are new
    inodes), so an annotation changed by a new ingest has other identities and gets its own digest, hence its own
    operator.  Anything but plain local files (an object store, a symbolic link): the digest as it is."""
    ident = _var_identity(meta, names)
    if ident is None:
        return meta.digest("var", names)
    key = (ident, tuple(names))
    with _DIGESTS_LOCK:
        hit = _DIGESTS.get(key)
    if hit is None:
        hit = meta.digest("var", names)  # outside the lock: the other threads' cohorts need not wait for it
        with _DIGESTS_LOCK:
            if len(_DIGESTS) >= _DIGESTS_SIZE:
                del _DIGESTS[next(iter(_DIGESTS))]  # the oldest entry out
            _DIGESTS[key] = hit
    return hit


def _var_identity(meta: store.CohortMeta, names: list[str]) -> tuple | None:
    """(index key, columns, uns renames, and for the index and each named column's node (under its own name and
    its stored one) the sorted (path, dev, inode, size, mtime_ns) of its files), or None when they are not all
    plain local files.  Only the nodes the digest reads are visited: a stat of every var file cost more than the
    digest of a synthetic table."""
    if not fs.is_local(meta.url):
        return None
    var = os.path.join(fs.get_fs(meta.url)[1], "var")
    renames = (meta.uns.get("column_names") or {}).get("var", {})
    stored_as = {str(orig): str(stored) for stored, orig in renames.items()}
    nodes = sorted({meta.index_key("var"), *names, *(stored_as.get(n, n) for n in names)})
    files: list[tuple] = []
    try:
        for node in nodes:
            if not os.path.lexists(os.path.join(var, node)):
                files.append((node, None))
                continue
            stack = [node]
            while stack:
                rel = stack.pop()
                with os.scandir(os.path.join(var, rel)) as entries:
                    for e in entries:
                        name = f"{rel}/{e.name}"
                        if e.is_dir(follow_symlinks=False):
                            stack.append(name)
                        elif e.is_file(follow_symlinks=False):
                            st = e.stat(follow_symlinks=False)
                            files.append((name, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
                        else:
                            return None
    except OSError:
        return None
    return (meta.index_key("var"), tuple(meta.columns("var")), json.dumps(renames, sort_keys=True, default=str),
            tuple(sorted(files, key=str)))


# ---- specs -----------------------------------------------------------------------------------------------

def load_specs(specs: Any) -> dict[str, dict[str, CohortSpec]]:
    """Specs from a directory/file URL of YAML files, or ``{trait: {cohort: CohortSpec}}`` from the API."""
    if isinstance(specs, dict):
        return {t: dict(c) for t, c in specs.items()}
    url = str(specs)
    if url.endswith((".yaml", ".yml")):
        base, name = url.rsplit("/", 1) if "/" in url else (".", url)
        return load_specs_dir(fs.read_text, [name], base)
    if not fs.exists(url):
        raise FileNotFoundError(f"{url}: spec directory not found")
    return load_specs_dir(fs.read_text, fs.listdir(url), url)


# ---- one cohort ------------------------------------------------------------------------------------------

@dataclass
class Job:
    trait: str
    cohort: str
    spec: CohortSpec
    ingest: Any                      # ingest.CohortJob
    out: str
    compat: str | None
    synonyms_url: str
    fingerprint: str = ""
    operators_dir: str | None = None  # where built operators are saved for other workers and runs (STORE/operators)
    synonyms_fp: dict | None = None   # the synonym table's file fingerprint, part of the resume fingerprint


@dataclass
class Prepared:
    op: GeneOperator | None = None
    samples: list[str] = field(default_factory=list)       # matrix/expression sample order
    clinical_samples: list[str] = field(default_factory=list)
    trait: np.ndarray | None = None
    covariates: dict[str, np.ndarray] = field(default_factory=dict)
    gene_index_name: str = "Gene"
    layout_kind: str = "GEO"
    failure: dict | None = None                            # an initial cohort_info record when set
    filtered: bool = False                                 # failure = GenoTEX's "trait not available" filter
    sig: int = 7
    error_traceback: str = ""                              # of an expected failure: kept in the meta part
    platform: str | None = None                            # the matrix's platform (GEO) or expression file (TCGA)


def _feature(spec: FeatureSpec, obs: pd.DataFrame, numeric: str | None, file: str = "<spec>") -> np.ndarray:
    """Values of one GEO feature for every sample of ``obs`` (the store's sample metadata)."""
    try:
        return clinical.feature_values(spec, obs, numeric)
    except IndexError as exc:
        raise SpecError(file, spec.line, str(exc)) from None
    except safe_regex.RegexError as exc:  # a spec pattern the linear-time engine refuses: the spec's fault
        raise SpecError(file, spec.line, str(exc)) from None


def _gene_column(spec: CohortSpec, columns: list[str]) -> str | None:
    if spec.gene_column:
        return spec.gene_column
    low = {str(c).lower(): c for c in columns}
    return next((low[n] for n in GENE_COLUMN_NAMES if n in low), None)


def _synonyms_key(job: Job) -> str:
    """A digest of the synonym table's bytes: part of every operator's cache key.  By content, not by URL, so
    that input trees holding the same table (copies of GenoTEX's metadata) share their operators; the digest is
    computed once per worker process and file version (URL + size + mtime)."""
    return _synonyms_digest(job.synonyms_url, json.dumps(fs.file_fingerprint(job.synonyms_url), sort_keys=True))


@lru_cache(maxsize=16)
def _synonyms_digest(url: str, version: str) -> str:
    """sha256 of the table at ``url``; ``version`` (its size and mtime) only keys the cache."""
    return "sha256:" + hashlib.sha256(fs.read_bytes(url)).hexdigest()


def _prepare_geo(job: Job) -> Prepared:
    spec, url = job.spec, job.ingest.out
    meta = store.CohortMeta(url)
    obs = meta.frame("obs", keep=clinical.is_rule_column)
    p = Prepared(samples=[str(s) for s in obs.index], layout_kind="GEO", gene_index_name="Gene")
    p.clinical_samples = list(p.samples)
    p.sig = 15 if meta.completion.get("dtype") == "float64" else 7
    if spec.excluded is not None:
        return _excluded(p, spec)
    p.platform = spec.platform or (meta.uns.get("platform") or {}).get("id")
    if spec.trait_spec is None:
        p.failure = quality.initial_record(True, False, "no trait information in the spec (source: none)")
        p.filtered = True
        return p
    p.trait = _feature(spec.trait_spec, obs, None, spec.file)
    if spec.age is not None:
        p.covariates["Age"] = _feature(spec.age, obs, "number", spec.file)
    if spec.gender is not None:
        p.covariates["Gender"] = _feature(spec.gender, obs, "gender", spec.file)
    syn_key = _synonyms_key(job)
    var_cols = meta.columns("var")
    try:
        symbols = spec.symbols
        if symbols is None:  # decided once per distinct probe list
            symbols = _cached(_text_key("symbols?", _var_digest(meta, []), syn_key),
                              lambda: bool(looks_like_symbols(meta.index("var"), load_synonyms(job.synonyms_url))),
                              job.operators_dir)
        if symbols:
            p.op = _cached(_text_key("symbols", _var_digest(meta, []), syn_key, job.compat),
                           lambda: build_symbol_operator(meta.index("var"), load_synonyms(job.synonyms_url),
                                                         job.compat), job.operators_dir)
            p.gene_index_name = "ID"
        elif job.compat == "genotex":
            soft = job.ingest.files.get("soft")
            if not soft:
                raise NoMappableGenes("no family SOFT file: GenoTEX maps probes with its annotation")
            key = _text_key("genotex", _var_digest(meta, []), fs.file_fingerprint(soft), spec.id_column,
                            spec.gene_column, syn_key)
            p.op = _cached(key, lambda: _genotex_operator(spec, meta, soft, load_synonyms(job.synonyms_url)),
                           job.operators_dir)
        else:
            platform = (meta.uns.get("platform") or {}).get("id", "") if spec.platform else ""
            if spec.platform and str(spec.platform).upper() != str(platform).upper():
                soft = job.ingest.files.get("soft")
                key = _text_key("platform", _var_digest(meta, []), fs.file_fingerprint(soft), spec.platform,
                                spec.gene_column, syn_key)
                p.op = _cached(key, lambda: _other_platform_operator(spec, meta, soft,
                                                                     load_synonyms(job.synonyms_url)),
                               job.operators_dir)
            else:
                gcol = _gene_column(spec, var_cols)
                note = (meta.uns.get("platform") or {}).get("annotation_note")
                if not var_cols and note:  # no annotation was found at ingest: say so, do not blame the spec
                    from genotex_dask.errors import UserError

                    raise UserError(note)
                if gcol is None or gcol not in var_cols:
                    raise SpecError(spec.file, spec.line, f"gene column {gcol!r} not in the platform annotation "
                                    f"(columns: {var_cols[:12]})")
                parser = spec.parser if job.compat != "genotex" else "text"  # GenoTEX reads the whole cell
                p.op = _cached(_text_key("probe", _var_digest(meta, [gcol]), gcol, syn_key, job.compat,
                                         *([parser] if parser != "text" else [])),
                               lambda: _store_operator(meta, gcol, load_synonyms(job.synonyms_url), job.compat,
                                                       parser), job.operators_dir)
    except NoMappableGenes as exc:
        p.failure = quality.initial_record(False, True, f"no mappable genes: {exc}")
    except Exception as exc:  # mapping failed after the trait was read: a result, recorded with its traceback
        p.failure = quality.initial_record(False, True, f"gene mapping failed: {_one_line(exc)}")
        p.error_traceback = traceback.format_exc()
    return p


def _one_line(exc: BaseException) -> str:
    """``str(exc)`` for errors that name their file (SpecError, InputFormatError, UserError), else type + text."""
    from genotex_dask.errors import UserError
    from genotex_dask.io.errors import InputFormatError

    if isinstance(exc, (SpecError, InputFormatError, UserError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _excluded(p: Prepared, spec: CohortSpec) -> Prepared:
    """A cohort the spec excludes (GenoTEX's decision): its initial-filter record, no processing."""
    f = spec.excluded.get("initial_filter") or {}
    p.failure = quality.initial_record(bool(f.get("is_gene_available", False)),
                                       bool(f.get("is_trait_available", False)),
                                       f"excluded: {spec.excluded.get('reason', '')}")
    p.filtered = True
    return p


def _present(values) -> list:
    """Cells with "" / None / NaN as None (GenoTEX drops those rows before mapping)."""
    a = np.asarray(values, dtype=object) if not isinstance(values, list) else None
    if a is not None and a.ndim == 1 and pd.api.types.infer_dtype(a, skipna=False) == "string":
        return np.where(a == "", None, a).tolist()  # the store's var: str cells, "" for missing
    return [None if (v is None or v == "" or (isinstance(v, float) and np.isnan(v))) else v for v in values]


def _store_operator(meta: store.CohortMeta, gcol: str, syn: dict, compat: str | None,
                    parser: str = "text") -> GeneOperator:
    """Probe operator from the platform annotation kept in the store's var (index + one gene column)."""
    from genotex_dask.preprocess.annotation_parsers import parse_cells

    ids = meta.index("var")
    return build_probe_operator(ids, ids, parse_cells(_present(meta.column("var", gcol)), parser), syn, compat)


def _genotex_operator(spec: CohortSpec, meta: store.CohortMeta, soft: str, syn: dict) -> GeneOperator:
    """GenoTEX's mapping: the annotation tables of ALL platforms of the family SOFT read as one table."""
    from genotex_dask.io.geo import read_soft_annotation_all

    ann = read_soft_annotation_all(soft)
    gcol = _gene_column(spec, [str(c) for c in ann.columns])
    if gcol is None or gcol not in ann.columns or spec.id_column not in ann.columns:
        raise SpecError(spec.file, spec.line, f"annotation columns {spec.id_column!r}/{gcol!r} not in "
                        f"{soft.rsplit('/', 1)[-1]} (columns: {list(ann.columns)[:12]})")
    ann_ids = ann[spec.id_column].astype(str).where(ann[spec.id_column].notna(), None)
    return build_probe_operator(meta.index("var"), ann_ids.tolist(), ann[gcol].tolist(), syn, "genotex")


def _other_platform_operator(spec: CohortSpec, meta: store.CohortMeta, soft: str, syn: dict) -> GeneOperator:
    """Operator from another platform table of the family SOFT, named by the spec."""
    from genotex_dask.io.geo import read_soft_platforms

    t = read_soft_platforms(soft, [spec.platform])[spec.platform].table
    table = t.drop_duplicates(subset=t.columns[0]).set_index(t.columns[0])
    gcol = _gene_column(spec, [str(c) for c in table.columns])
    if gcol is None or gcol not in table.columns:
        raise SpecError(spec.file, spec.line, f"gene column {gcol!r} not in platform {spec.platform} "
                        f"(columns: {list(table.columns)[:12]})")
    return build_probe_operator(meta.index("var"), [str(i) for i in table.index], _present(table[gcol].tolist()),
                                syn, None)


def _prepare_tcga(job: Job) -> Prepared:
    from genotex_dask.io.tcga import parse_xena_clinical

    url = job.ingest.out
    spec = job.spec
    meta = store.CohortMeta(url)
    clin = parse_xena_clinical(str(meta.uns.get("clinical_matrix_tsv", "")), job.ingest.files.get("clinical", url))
    p = Prepared(samples=meta.index("obs"), layout_kind="TCGA")
    p.platform = job.ingest.files.get("expression", "").rsplit("/", 1)[-1] or None
    p.sig = 15 if meta.completion.get("dtype") == "float64" else 7
    if spec.excluded is not None:
        return _excluded(p, spec)
    p.clinical_samples = [str(s) for s in clin.index]
    p.trait = clinical.tcga_trait(p.clinical_samples)
    if spec.trait_column:
        if spec.trait_column not in clin.columns:
            raise SpecError(spec.file, spec.line, f"TCGA column {spec.trait_column!r} not in the clinical matrix")
        p.trait = clinical.tcga_trait_from_column(clin[spec.trait_column].tolist(), spec.trait_values)

    def age(cells):
        return clinical.tcga_age(cells, spec.age_unit, job.compat)

    for name, col, fn in (("Age", spec.age_column, age), ("Gender", spec.gender_column, clinical.tcga_gender)):
        if col:
            if col not in clin.columns:
                raise SpecError(spec.file, spec.line, f"TCGA column {col!r} not in the clinical matrix")
            p.covariates[name] = fn(clin[col].tolist())
    key = meta.index_key("var")
    p.gene_index_name = key if key != "_index" else "sample"
    syn_key = _synonyms_key(job)
    try:
        p.op = _cached(_text_key("symbols", _var_digest(meta, []), syn_key, job.compat),
                       lambda: build_symbol_operator(meta.index("var"), load_synonyms(job.synonyms_url), job.compat),
                       job.operators_dir)
    except NoMappableGenes as exc:
        p.failure = quality.initial_record(False, True, f"no mappable genes: {exc}")
    return p


def prepare(job: Job) -> Prepared:
    """Dask task: features from the spec and the probe->symbol operator (small metadata reads only).

    Never raises: a failure (a spec that does not fit the cohort, an unreadable store) comes back as a
    Prepared with ``failure`` set and the traceback kept for the cohort's meta record, so the terminal shows
    one line in the summary instead of a worker's "Compute Failed" traceback.
    """
    try:
        return (_prepare_tcga if job.spec.kind == "TCGA" else _prepare_geo)(job)
    except Exception as exc:
        return Prepared(failure=quality.initial_record(False, False, _one_line(exc)),
                        error_traceback=traceback.format_exc())


def read_block(url: str, start: int, stop: int) -> np.ndarray:
    """Samples ``start:stop`` x all probes of the cohort store's X, in one Zarr read (Zarr fetches and decodes
    the row of chunks concurrently; a Dask getter task per chunk plus a rechunk cost more than the read)."""
    import zarr

    return zarr.open_array(store.zarr_store(url, read_only=True), path="X", mode="r")[start:stop]


def map_samples(p: Prepared, url: str, matrix: np.ndarray | None = None) -> np.ndarray:
    """Every sample of the cohort store's X mapped to symbols: samples x symbols, float64.

    ``matrix``: the store's X itself (samples x features, the values the store holds), when the same task has
    just ingested it: mapped as it is, without decoding the store.

    The store's rows of chunks are decoded into a scratch the worker thread keeps (:mod:`store_rows`) and each
    is mapped straight into its rows of the result, so the cohort's gene matrix is the only large allocation
    (no float32 copy of X, no per-block results stacked into a second copy); that matrix is the thread's kept
    buffer (:mod:`thread_buffers`, handed back by finalize), not fresh pages per cohort.  A store layout the
    fast reader does not know is read through Zarr ``preprocess.block-samples`` samples at a time.
    """
    if matrix is not None and matrix.shape == (len(p.samples), p.op.n_probes):
        n, m = matrix.shape[0], len(p.op.symbols)
        Y = thread_buffers.take("genes", n * m, np.float64).reshape(n, m)  # handed back by finalize
        if matrix.flags.c_contiguous:
            apply_operator(p.op, matrix, Y)
        else:  # the reader's matrix is a view of a larger buffer: its sample rows are contiguous, not the whole
            for i in range(n):
                apply_operator(p.op, matrix[i:i + 1], Y[i:i + 1])
        return Y
    lay = store_rows.layout(url)
    if lay is not None:
        n, m = lay.shape[0], len(p.op.symbols)
        Y = thread_buffers.take("genes", n * m, np.float64).reshape(n, m)  # handed back by finalize
        for a, rows in store_rows.chunk_rows(lay, 0, lay.shape[0]):
            apply_operator(p.op, rows, Y[a:a + len(rows)])
        return Y
    import zarr

    n = zarr.open_array(store.zarr_store(url, read_only=True), path="X", mode="r").shape[0]
    Y = np.empty((n, len(p.op.symbols)), dtype=np.float64)
    step = gconfig.positive_int("preprocess.block-samples")  # BLOCK_SAMPLES unless a site sets it
    for a in range(0, n, step):
        b = min(n, a + step)
        apply_operator(p.op, read_block(url, a, b), Y[a:b])
    return Y


def _write_part(job: Job, record: dict, extra: dict) -> None:
    part = {"trait": job.trait, "cohort": job.cohort, "fingerprint": job.fingerprint, "record": record,
            "spec": job.spec.where(), "needs_review": bool(job.spec.needs_review), **extra}
    fs.write_json_atomic(meta_path(job.out, job.trait, job.cohort), part)


def _remove_outputs(job: Job, keep: set[str]) -> None:
    paths = layout.PreprocessPaths(job.out, job.trait, job.cohort)
    for name, url in (("gene", paths.gene_data), ("clinical", paths.clinical_data), ("linked", paths.linked_data),
                      ("store", pre_store_path(job.out, job.trait, job.cohort))):
        if name not in keep and fs.exists(url):
            fs.remove(url)


def _write_preprocessed_store(url: str, trait: str, d: quality.Linked, dtype, uns: dict | None = None,
                              var_columns: dict | None = None, direct: bool = False) -> None:
    """AnnData (samples x genes) as a Zarr group readable by ``anndata.read_zarr``.

    Why not ``write_zarr`` straight to disk: anndata writes ~30 small arrays/groups and every Zarr operation
    is a hop to Zarr's I/O thread, which made this write cost as much CPU as formatting a CSV.  The group is
    built in a Zarr MemoryStore (same keys, same bytes) and its objects are then written as plain files into the
    atomic temporary directory.  X is chunked by row blocks spanning all genes and compressed like the cohort
    store (Blosc LZ4 + bit-shuffle, :data:`genotex_dask.io.store.X_COMPRESSORS`), which costs about as little as
    writing the raw bytes.  ``direct``: X's large chunk files are written past the page cache
    (:func:`~genotex_dask.io.filewrite.write_past_cache`; nothing in the engine reads this store again).
    """
    import anndata as ad
    import zarr

    from genotex_dask.io import anndata_zarr
    from genotex_dask.preprocess import anndata_fields

    obs = pd.DataFrame({trait: d.trait, **d.covariates}, index=pd.Index([str(s) for s in d.samples], name="sample"))
    obs = anndata_fields.scanpy_obs(obs, trait)
    var = pd.DataFrame(var_columns or {}, index=pd.Index(quality.gene_names(d), name="gene"))
    chunks = (min(256, max(1, d.X.shape[0])), max(1, d.X.shape[1]))
    # encoded directly (anndata_zarr: the bytes anndata writes, without its ~250 hops to Zarr's I/O thread)
    objects = anndata_zarr.anndata_objects(d.X, dtype, chunks, obs, var, dict(uns or {}), store.X_COMPRESSORS[0],
                                           store.zarr_v3_lock()) if d.X.size else None
    if objects is None:  # an element the direct encoder does not cover: anndata writes it
        adata = ad.AnnData(X=d.X.astype(dtype, copy=False), obs=obs, var=var, uns=dict(uns or {}))
        objects = {}
        with store.zarr_v3_writes():  # one thread at a time: anndata's format setting is process-wide
            ad.io.write_zarr(zarr.storage.MemoryStore(store_dict=objects), adata, chunks=chunks,
                             compressors=store.X_COMPRESSORS)
        del adata
    with fs.atomic_dir(url) as tmp:
        store.dump_memory_store(objects, tmp, write_file=filewrite.write_past_cache if direct else None)


def _store_fields(job: Job, p: Prepared, d: quality.Linked) -> tuple[dict, dict]:
    """(uns, var columns) of the preprocessed store: what scanpy users need to take it as it is."""
    from genotex_dask.preprocess import anndata_fields as af

    uns = af.cohort_uns(trait=job.trait, cohort=job.cohort, platform=p.platform, spec_file=job.spec.file,
                        spec_line=job.spec.line, spec_mapping=job.spec.as_dict(), mode=job.compat or "default",
                        value_scale=af.detect_value_scale(d.X), engine_version=ENGINE_VERSION)
    counts = np.append(af.probe_counts(p.op.W), 0)  # position -1 (a gene not in the operator): no probe
    pos = _positions(quality.gene_names(d), p.op.symbols.tolist())
    return uns, {"n_probes": counts[pos].astype(np.int32)}


def _positions(names: list[str], labels: list[str]) -> np.ndarray:
    """Index of each name in ``labels`` (distinct), -1 for a name not there.  The usual case (no gene dropped:
    the same list) costs one list comparison instead of two 20k-entry Python loops."""
    if names == labels:
        return np.arange(len(labels), dtype=np.int64)
    pos = {g: i for i, g in enumerate(labels)}
    return np.fromiter((pos.get(g, -1) for g in names), np.int64, len(names))


def _write_linked_csv(url: str, trait: str, d: quality.Linked, p: Prepared, gene_labels: list[str],
                      cells: Cells | None, round32: bool, direct: bool = False) -> None:
    """The linked CSV (samples x trait, covariates, genes).  Gene cells are copied from the gene_data tokens
    when every kept sample and gene is in them; imputed cells (empty tokens) are formatted from ``d.X``.
    ``direct``: past the page cache (:func:`~genotex_dask.pipelines.csv_out.write_local_file`)."""
    cols = quality.linked_columns(trait, d)
    samples = [str(s) for s in d.samples]
    clin = np.column_stack([d.trait, *d.covariates.values()])
    if cells is not None and len(samples):
        spos = {s: i for i, s in enumerate(p.samples)}
        srows = np.array([spos.get(s, -1) for s in samples], dtype=np.int64)
        grows = _positions(quality.gene_names(d), gene_labels)  # symbols: distinct
        if (srows >= 0).all() and (grows >= 0).all():
            lines = format_rows(clin, [""] * len(samples), p.sig).decode().split("\n")[:-1]
            prefixes = [quote(s) + line for s, line in zip(samples, lines)]
            fill_cells(cells, grows, srows, d.X.T)         # imputed values: cells empty in gene_data
            write_token_csv(url, "", prefixes, cols, cells, srows, grows, transpose=True, direct=direct)
            return
    vals = np.column_stack([clin, d.X]) if len(samples) else np.zeros((0, len(cols)))
    write_matrix_csv(url, "", samples, cols, vals, p.sig, round32, direct=direct)


def _write_clinical(paths: layout.PreprocessPaths, job: Job, p: Prepared) -> None:
    """clinical_data/<cohort>.csv (GEO: features x samples; TCGA: samples x features, as GenoTEX)."""
    feats = {job.trait: p.trait, **p.covariates}
    if p.layout_kind == "GEO":
        write_matrix_csv(paths.clinical_data, "", list(feats), p.clinical_samples,
                         np.vstack([feats[k] for k in feats]), 15)
    else:
        write_matrix_csv(paths.clinical_data, "sampleID", p.clinical_samples, list(feats),
                         np.column_stack([feats[k] for k in feats]), 15)


def finalize(job: Job, p: Prepared | None = None, handed: dict | None = None) -> dict:
    """Dask task: prepare (unless ``p`` is given), map the samples to genes, link, missing values, bias,
    cohort_info record; write every output of the cohort.

    ``handed``: :func:`ingest_cohort`'s ``matrix_out`` from the same task; its matrix is taken out (and freed once
    mapped) instead of decoding the store.  Never raises (see :func:`prepare`): a failure is written as the
    cohort's record with its traceback."""
    if p is None:
        p = prepare(job)
    try:
        return _finalize(job, p, handed)
    except Exception as exc:
        record = quality.initial_record(False, p.trait is not None, _one_line(exc))
        _write_part(job, record, {"status": "failed", "traceback": traceback.format_exc()})
        return {"cohort": f"{job.trait}/{job.cohort}", "status": "failed", "record": record,
                "error": record["note"]}


def _finalize(job: Job, p: Prepared, handed: dict | None = None) -> dict:
    t0 = time.perf_counter()
    paths = layout.PreprocessPaths(job.out, job.trait, job.cohort)
    summary = dict(p.op.summary) if p.op is not None else {}
    Y = None
    matrix = handed.pop("X", None) if handed else None  # this frame holds the only reference: freed once mapped
    if p.failure is None and p.op is not None:
        try:
            Y = map_samples(p, job.ingest.out, matrix)
        except Exception as exc:  # an unreadable store: the cohort's result, recorded with its traceback
            p.failure = quality.initial_record(True, True, f"reading the samples: {_one_line(exc)}")
            p.error_traceback = traceback.format_exc()
    del matrix  # mapped: the raw matrix goes before the outputs are formatted
    if p.failure is not None:
        # GenoTEX writes a cohort's clinical data before it maps genes: a cohort failing at mapping keeps it
        keep = set()
        if not p.filtered and p.trait is not None and p.failure.get("is_trait_available"):
            _write_clinical(paths, job, p)
            keep.add("clinical")
        _remove_outputs(job, keep)
        status = "filtered" if p.filtered else "failed"
        extra = {"mapping": summary, "status": status}
        if p.error_traceback:
            extra["traceback"] = p.error_traceback
        _write_part(job, p.failure, extra)
        return {"cohort": f"{job.trait}/{job.cohort}", "status": status, "record": p.failure,
                "error": "" if p.filtered else p.failure.get("note")}
    dtype = np.float64 if p.sig > 7 else np.float32
    round32 = dtype == np.float32
    genes = p.op.symbols
    gene_labels = quality.str_list(genes)
    # gene_data: symbols x samples (GenoTEX's orientation).  Its text is kept when it fits SHARED_CELLS_MAX, so
    # the linked CSV copies the gene values instead of formatting them a second time.
    # gene_data, the linked CSV and the store's X are written past the page cache (csv_out.write_local_file): nothing
    # reads gene_data again, and the analysis reads a linked CSV back from disk for ~3 CPU-ms more than from the page
    # cache, where copying it into fresh page-cache pages cost ~60 (26 MB, this project's VM; README, issue 12)
    direct = bool(gconfig.get("preprocess.direct-writes", True))
    cells = write_matrix_csv(paths.gene_data, p.gene_index_name, gene_labels, p.samples, Y.T, p.sig, round32,
                             keep_cells=0 < Y.size <= SHARED_CELLS_MAX, direct=direct)
    _write_clinical(paths, job, p)
    linked = quality.link(p.clinical_samples, p.trait, p.covariates, p.samples, genes, Y)
    if p.layout_kind == "TCGA":  # GenoTEX links TCGA on the samples both files have
        common = set(p.samples)
        keep = np.array([s in common for s in linked.samples])
        linked = quality.Linked(linked.samples[keep], linked.trait[keep],
                                {k: v[keep] for k, v in linked.covariates.items()}, linked.genes, linked.X[keep])
    # Y's gaps are in the gene_data text already: imputation may fill them in place
    res, record = quality.finalize(job.trait, linked, is_gene_available=len(genes) > 0,
                                   is_trait_available=len(p.clinical_samples) > 0, overwrite_x=True)
    d = res.linked
    kept = {"gene", "clinical"}
    if record["is_usable"]:
        _write_linked_csv(paths.linked_data, job.trait, d, p, gene_labels, cells, round32, direct)
        kept.add("linked")
    if cells is not None:
        cells.release()  # the thread's next cohort formats into the same buffers
    del cells
    if len(d.samples):
        _write_preprocessed_store(pre_store_path(job.out, job.trait, job.cohort), job.trait, d, dtype,
                                  *_store_fields(job, p, d), direct=direct)
        kept.add("store")
    _remove_outputs(job, kept)
    outcome = {"record": record, "n_genes": int(len(genes)), "trait_counts": golden.trait_counts(d.trait)}
    gold = {"golden": golden.check(job.spec.expect, outcome)} if job.spec.expect else {}
    _write_part(job, record, {"mapping": summary, "steps": res.steps, "status": "done",
                              "n_genes": int(len(genes)), "trait_counts": outcome["trait_counts"], **gold,
                              "seconds": round(time.perf_counter() - t0, 3)})
    n_samples = int(len(d.samples))
    del d, res, linked
    thread_buffers.give("genes", Y)  # the thread's next cohort maps into it (d.X was Y itself or a copy)
    return {"cohort": f"{job.trait}/{job.cohort}", "status": "done", "n_samples": n_samples, **outcome, **gold}


def preprocess_cohort(job: Job, float64: bool, ingest_status: dict | None = None) -> dict:
    """Dask task: one cohort from its raw files to its outputs, no stage barrier in between.

    Without ``ingest_status`` the task first brings the cohort's store group up to date itself
    (:func:`~genotex_dask.pipelines.ingest.ingest_cohort`, which skips an unchanged cohort) and maps the matrix it
    has just parsed, not a decoded copy of the store; with it (the result of a shared ingest task this task
    depends on: several spec cohorts of one input cohort, e.g. a TCGA directory used by several traits) the store
    is read.  Then, as the stage did on the client: the resume fingerprint from the store's completion record, and
    the cohort is skipped when its meta part holds it and its outputs exist; else :func:`finalize`.

    Never raises for a cohort's own failure: an ingest failure comes back as ``status "ingest_failed"`` (the client
    records it), a preprocessing failure as finalize's failed record."""
    from genotex_dask.pipelines.ingest import ingest_cohort

    name = f"{job.trait}/{job.cohort}"
    handed: dict = {}
    if ingest_status is None:
        ingest_status = ingest_cohort(job.ingest, float64, handed)
    if ingest_status.get("status") == "failed":
        return {"cohort": name, "status": "ingest_failed", "error": ingest_status.get("error", "")}
    job.fingerprint = _fingerprint(job.spec, job.compat, job.ingest.out, job.synonyms_fp or {})
    if _up_to_date(job):
        res = {"cohort": name, "status": "skipped"}
        if job.spec.expect:  # a resumed cohort still reports its golden check (kept in its meta part)
            part = fs.read_json(meta_path(job.out, job.trait, job.cohort))
            if "golden" in part:
                res["golden"] = part["golden"]
        return res
    return finalize(job, handed=handed)


# ---- the stage -------------------------------------------------------------------------------------------

def _match_jobs(specs: dict[str, dict[str, CohortSpec]], ingest_jobs: list) -> tuple[dict, dict]:
    """Spec cohort -> ingest job (GEO by trait + GSE directory + matrix file; TCGA by directory)."""
    matched, missing = {}, {}
    for trait, cohorts in specs.items():
        for cid, spec in cohorts.items():
            cands = []
            if spec.kind == "TCGA":
                cands = [j for j in ingest_jobs if j.kind == "TCGA" and j.cohort == spec.tcga_directory]
            else:
                for j in ingest_jobs:
                    if j.kind != "GEO" or j.trait != trait:
                        continue
                    gse = j.input_dir.rstrip("/").rsplit("/", 1)[-1]
                    if j.cohort == cid or (gse == cid and (spec.matrix is None or
                                                           j.files.get("matrix", "").endswith("/" + spec.matrix))):
                        cands.append(j)
                cands.sort(key=lambda j: (j.cohort != cid, j.files.get("matrix", "")))
            if cands:
                matched[(trait, cid)] = cands[0]
            else:
                where = spec.tcga_directory if spec.kind == "TCGA" else f"input/GEO/{trait}/{cid}"
                missing[(trait, cid)] = f"{spec.where()}: no input cohort found for {where}"
    return matched, missing


def _drop_unsafe_names(specs: dict[str, dict[str, CohortSpec]]) -> dict[str, str]:
    """Remove (in place) the cohorts whose trait, cohort, matrix or TCGA directory name is unsafe as a path
    component; returns ``{"trait/cohort": one-line cause naming the spec file and line}``."""
    bad = {}
    for trait in list(specs):
        for cid, spec in list(specs[trait].items()):
            try:
                layout.check_name(trait, "trait name", spec.where())
                layout.check_name(cid, "cohort name", spec.where())
                for what, name in (("matrix file name", spec.matrix), ("TCGA directory", spec.tcga_directory)):
                    if name is not None:
                        layout.check_name(name, what, spec.where())
            except layout.UnsafePathError as exc:
                bad[f"{trait}/{cid}"] = str(exc)
                del specs[trait][cid]
        if not specs[trait]:
            del specs[trait]
    return bad


def _fingerprint(spec: CohortSpec, compat: str | None, ingest_out: str, syn_fp: dict) -> str:
    rec = store.read_completion(ingest_out) or {}
    blob = json.dumps([ENGINE_VERSION, spec.fingerprint(), compat, rec.get("sources"), rec.get("dtype"), syn_fp],
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _up_to_date(job: Job) -> bool:
    try:
        part = fs.read_json(meta_path(job.out, job.trait, job.cohort))
    except (FileNotFoundError, OSError, json.JSONDecodeError):
        return False
    if part.get("fingerprint") != job.fingerprint:
        return False
    if part.get("status") == "done" and not fs.exists(layout.PreprocessPaths(job.out, job.trait,
                                                                                job.cohort).gene_data):
        return False
    return True


def merge_cohort_info(out: str, traits: list[str]) -> None:
    """Merge the per-cohort parts of each trait into its cohort_info.json (one atomic write per trait)."""
    for trait in traits:
        d = layout.join(out, "preprocess_meta", trait)
        records = {}
        for name in fs.listdir(d):
            if name.endswith(".json") and not name.startswith(fs.TMP_MARK):
                part = fs.read_json(layout.join(d, name))
                records[part["cohort"]] = part["record"]
        if records:
            fs.write_json_atomic(layout.cohort_info_path(out, trait), {k: records[k] for k in sorted(records)})


def run_preprocess(root: str, specs: Any, out: str, client: Client, compat: str | None = None,
                   store: str | None = None, progress: bool = True, platforms: str | list[str] | None = None) -> dict:
    """Preprocess every cohort named in ``specs`` (a directory/file of YAML specs, or ``{trait: {cohort:
    CohortSpec}}``) from the cohort store into OUT; returns and writes ``OUT/preprocess/run_summary.json``."""
    from genotex_dask.pipelines.ingest import discover, ingest_cohort

    if compat not in (None, "genotex"):
        raise ValueError(f"compat must be None or 'genotex', not {compat!r}")
    t0 = time.perf_counter()
    store_url = store or layout.join(out, "store")
    spec_map = {t: {c: s.for_compat(compat) for c, s in cs.items()} for t, cs in load_specs(specs).items()}
    syn_url = layout.gene_synonym_path(root)
    syn_fp = fs.file_fingerprint(syn_url)
    ingest_jobs = discover(root, store_url, platforms)
    failed: dict[str, str] = {}
    cohorts: dict[str, dict] = {}
    unsafe = _drop_unsafe_names(spec_map)
    for key, cause in unsafe.items():  # named error, nothing written for them
        failed[key] = cause
        cohorts[key] = {"cohort": key, "status": "failed", "error": cause}
    excluded = {(t, c): s for t, cs in spec_map.items() for c, s in cs.items() if s.excluded is not None}
    for (trait, cid), spec in sorted(excluded.items()):  # GenoTEX's decision: recorded, never processed
        rec = _excluded(Prepared(), spec).failure
        fs.write_json_atomic(meta_path(out, trait, cid), {"trait": trait, "cohort": cid, "fingerprint": "",
                                                          "record": rec, "status": "filtered",
                                                          "spec": spec.where()})
        cohorts[f"{trait}/{cid}"] = {"cohort": f"{trait}/{cid}", "status": "filtered", "record": rec}

    def fail(trait: str, cid: str, spec: CohortSpec | None, cause: str, gene: bool = False, tr: bool = False):
        key = f"{trait}/{cid}"
        failed[key] = cause
        rec = quality.initial_record(gene, tr, cause)
        part = {"trait": trait, "cohort": cid, "fingerprint": "", "record": rec, "status": "failed",
                "spec": spec.where() if spec else ""}
        fs.write_json_atomic(meta_path(out, trait, cid), part)
        cohorts[key] = {"cohort": key, "status": "failed", "error": cause, "record": rec}

    matched, missing = _match_jobs({t: {c: s for c, s in cs.items() if (t, c) not in excluded}
                                    for t, cs in spec_map.items()}, ingest_jobs)
    for (trait, cid), cause in missing.items():
        fail(trait, cid, spec_map[trait][cid], cause)
    # One task per spec cohort (finalize-<trait>/<cohort>-...): it brings the cohort up to date in the store and
    # preprocesses it, so a cohort starts as soon as a worker is free, without waiting for the whole ingest.
    # Spec cohorts sharing an input cohort depend on one ingest task instead (one writer per store group).
    operators_dir = gconfig.get("cache.operators") or layout.join(store_url, "operators")
    out_token = tokenize(out)[:10]  # two runs into different OUTs on one scheduler never share a key
    by_input: dict[str, list[tuple[str, str]]] = {}
    for (trait, cid), ij in sorted(matched.items()):
        by_input.setdefault(ij.key, []).append((trait, cid))
    futures, jobs, shared_ingest = [], [], []
    for ikey, members in by_input.items():
        ij = matched[members[0]]
        # keep the store's dtype: a cohort ingested with --float64 is not rewritten as float32
        f64 = (store_mod.read_completion(ij.out) or {}).get("dtype") == "float64"
        dep = ()
        if len(members) > 1:
            shared_ingest.append(client.submit(ingest_cohort, ij, f64, key=f"ingest-{ikey}-{time.time_ns()}",
                                               pure=False))
            dep = (shared_ingest[-1],)
        for trait, cid in members:
            job = Job(trait, cid, spec_map[trait][cid], ij, out, compat, syn_url, operators_dir=operators_dir,
                      synonyms_fp=syn_fp)
            # the job bound with partial: as an argument dask would walk every field of the dataclass and its spec
            futures.append(client.submit(partial(preprocess_cohort, job, f64), *dep, pure=False,
                                         key=f"finalize-{trait}/{cid}-{time.time_ns()}-{out_token}"))
            jobs.append(job)
    by_fut = dict(zip(futures, jobs))
    ran, skipped = False, 0
    for fut in as_completed_with_progress(futures, desc="preprocess", enabled=progress):
        job = by_fut[fut]
        key = f"{job.trait}/{job.cohort}"
        try:
            res = fut.result()
        except Exception as exc:  # the task itself died (e.g. its worker killed repeatedly)
            cause = f"{type(exc).__name__}: {exc}"
            fail(job.trait, job.cohort, job.spec, cause)
            cohorts[key]["traceback"] = traceback.format_exception(exc)[-3:]
            continue
        if res["status"] == "ingest_failed":
            fail(job.trait, job.cohort, job.spec, f"ingest failed: {res.get('error')}")
        elif res["status"] == "skipped":
            skipped += 1
            cohorts[key] = res
        else:
            ran = True
            cohorts[key] = res
            if res["status"] == "failed":
                failed[key] = res.get("error") or ""
    del shared_ingest
    if ran:  # the workers' kept cohort buffers (thread_buffers) go back before the next stage needs memory
        try:
            client.run(thread_buffers.release_all)
        except Exception:  # best effort: a worker that left meanwhile has nothing to release
            pass
    merge_cohort_info(out, sorted(spec_map))
    golden_mismatches = {}
    for key, c in cohorts.items():  # GenoTEX's printed values (spec `expect:`) vs this run
        trait, cid = key.split("/", 1)
        spec = spec_map.get(trait, {}).get(cid)  # None for a name dropped as unsafe
        if spec is not None and spec.expect and "golden" not in c and c.get("status") in ("done", "filtered", "failed"):
            c["golden"] = golden.check(spec.expect, c)
        if spec is not None and c.get("golden"):
            golden_mismatches[key] = {"mismatches": c["golden"], "corrected": bool(spec.corrections) and
                                      compat != "genotex"}
    done = sum(1 for c in cohorts.values() if c.get("status") == "done")
    filtered = sorted(k for k, c in cohorts.items() if c.get("status") == "filtered")
    summary = {"stage": "preprocess", "version": ENGINE_VERSION, "root": root, "out": out, "store": store_url,
               "compat": compat, "n_cohorts": sum(len(c) for c in spec_map.values()) + len(unsafe), "done": done,
               "skipped": skipped, "filtered": filtered, "failed": failed,
               "usable": sorted(k for k, c in cohorts.items() if (c.get("record") or {}).get("is_usable")),
               "cohorts": {k: cohorts[k] for k in sorted(cohorts)}, "golden_mismatches": golden_mismatches,
               "seconds": round(time.perf_counter() - t0, 3)}
    fs.write_json_atomic(layout.join(layout.preprocess_dir(out), "run_summary.json"), summary)
    return summary


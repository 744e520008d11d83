"""Ingest: GenoTEX input tree -> Zarr cohort store, one Dask task per cohort.

Cohorts
- GEO: every series-matrix file under ``ROOT/input/GEO/<Trait>/<GSE>/`` is one cohort.  Its id is the GSE
  directory name when the directory holds one matrix file, and ``<GSE>-<GPL>`` (taken from GEO's
  ``GSExxx-GPLyyy_series_matrix.txt.gz`` name, else the file name before ``_series_matrix``) when it holds
  several.  The var annotation comes from the family SOFT in the same directory (the platform named by the
  file name, else by the samples' ``!Sample_platform_id``).  Stored at ``STORE/GEO/<Trait>/<cohort>.zarr``.
- TCGA: every directory under ``ROOT/input/TCGA/`` with a ``*PANCAN*`` expression file and a
  ``*clinicalMatrix`` is one cohort, stored at ``STORE/TCGA/<dir>.zarr``.

Each task reads its files, builds the AnnData pieces and writes the group atomically; only a small status
dict returns to the client.  A cohort whose source fingerprints (name, size, mtime, etag) and dtype match
its complete group in the store is skipped.  A failing cohort (bad file, empty directory) is recorded with
the file and cause; the others continue.  The run summary goes to ``STORE/ingest_summary.json``.
"""

from __future__ import annotations

import hashlib
import os
import time
import traceback
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from distributed import Client

from genotex_dask import config as gconfig
from genotex_dask import layout
from genotex_dask.io import fs, store
from genotex_dask.io.errors import InputFormatError
from genotex_dask.io.geo import (
    read_series_matrix,
    read_soft_platform_digest,
    read_soft_platforms,
    soft_table_frame,
    soft_table_from_bytes,
)
from genotex_dask.io.tcga import parse_xena_clinical, read_xena_clinical_text, read_xena_expression
from genotex_dask.progress import as_completed_with_progress

SUMMARY_NAME = "ingest_summary.json"


@dataclass
class CohortJob:
    """What one ingest task needs: where the files are and where the group goes."""

    key: str                      # "GEO/<Trait>/<cohort>" or "TCGA/<dir>"
    kind: str                     # "GEO" | "TCGA"
    trait: str
    cohort: str
    input_dir: str
    out: str
    files: dict[str, str] = field(default_factory=dict)   # role -> url
    error: str = ""               # set at discovery (e.g. empty directory): the task only reports it
    platform_files: dict[str, str] = field(default_factory=dict)  # GPL* files beside it and in --platforms
    platform_dirs: list[str] = field(default_factory=list)        # the --platforms directories
    store: str = ""               # the store root (its platforms/ keeps encoded annotation per platform table)


def _entries(url: str, root: str) -> list[tuple[str, bool]]:
    """(name, is_dir) of the entries directly under ``url``, sorted by name; unsafe names and symbolic links
    leaving ROOT/input are skipped with a warning (:func:`fs.entries`, the rule spec suggestion follows too)."""
    return fs.entries(url, within=layout.join(root, "input"))


def _matrix_cohort_id(gse: str, name: str) -> str:
    gpl = layout.platform_from_matrix_name(name)
    if gpl:
        return f"{gse}-{gpl}"
    stem = name.split("_series_matrix")[0]
    return stem if stem != gse else f"{gse}-{name}"


def discover(root: str, store_url: str, platforms: str | list[str] | None = None) -> list[CohortJob]:
    """Every cohort of the input tree, including broken ones (with ``error`` set).

    ``platforms``: shared directories (fsspec URLs) of GEO platform files (see :mod:`genotex_dask.io.platforms`);
    without it, the ones the store's last ingest used."""
    jobs: list[CohortJob] = []
    shared = _platform_dirs(platforms, store_url)
    geo = layout.input_geo_dir(root)
    for trait, is_dir in _entries(geo, root):
        if not is_dir:
            continue
        for gse, gdir in _entries(layout.join(geo, trait), root):
            if not gdir:
                continue
            d = layout.join(geo, trait, gse)
            files = [n for n, isd in _entries(d, root) if not isd]
            matrices = [n for n in files if layout.is_series_matrix(n)]
            softs = [n for n in files if layout.is_family_soft(n) and not n.upper().startswith("GPL")]
            soft = next((n for n in softs if gse.lower() in n.lower()), softs[0] if softs else None)
            if not matrices:
                cause = "empty cohort directory" if not files else "no series-matrix file (*matrix*)"
                jobs.append(CohortJob(f"GEO/{trait}/{gse}", "GEO", trait, gse, d,
                                      layout.store_geo_cohort(store_url, trait, gse), error=f"{d}: {cause}"))
                continue
            for m in matrices:
                cid = gse if len(matrices) == 1 else _matrix_cohort_id(gse, m)
                f = {"matrix": layout.join(d, m)}
                if soft:
                    f["soft"] = layout.join(d, soft)
                jobs.append(CohortJob(f"GEO/{trait}/{cid}", "GEO", trait, cid, d,
                                      layout.store_geo_cohort(store_url, trait, cid), f,
                                      platform_files=platform_files(d, shared), platform_dirs=shared,
                                      store=store_url))
    tcga = layout.input_tcga_dir(root)
    for name, is_dir in _entries(tcga, root):
        if not is_dir:
            continue
        d = layout.join(tcga, name)
        files = [n for n, isd in _entries(d, root) if not isd]
        expr = [n for n in files if layout.is_tcga_expression(n)]
        clin = [n for n in files if layout.is_tcga_clinical(n)]
        job = CohortJob(f"TCGA/{name}", "TCGA", "", name, d, layout.store_tcga_cohort(store_url, name))
        if not files:
            job.error = f"{d}: empty cohort directory"
        elif not expr or not clin:
            miss = "*PANCAN* expression file" if not expr else "*clinicalMatrix* file"
            job.error = f"{d}: no {miss}"
        else:
            job.files = {"expression": layout.join(d, expr[0]), "clinical": layout.join(d, clin[0])}
        jobs.append(job)
    return jobs


def _platform_dirs(platforms: str | list[str] | None, store_url: str) -> list[str]:
    if platforms is None:  # what the store was last ingested with
        try:
            platforms = fs.read_json(layout.join(store_url, SUMMARY_NAME)).get("platforms")
        except (FileNotFoundError, OSError, ValueError):
            platforms = None
    return [platforms] if isinstance(platforms, str) else list(platforms or [])


def platform_files(cohort_dir: str, shared: list[str]) -> dict[str, str]:
    """GPL-named files beside the cohort first, then in the shared platform directories."""
    from genotex_dask.io.platforms import gpl_files

    return gpl_files([cohort_dir, *shared])


def _platform_sources(job: CohortJob, gpl: str | None, always: bool = False) -> dict[str, dict]:
    """The platform files a GEO cohort's annotation may come from, as resume fingerprints: adding or changing one
    (e.g. a GPL file put into --platforms after a cohort was ingested without annotation) re-ingests it.
    ``always`` records the platform even without candidate files (a cohort left without annotation)."""
    from genotex_dask.io.platforms import candidates

    if job.kind != "GEO" or not gpl:
        return {}
    cands = candidates(gpl, job.platform_files)
    if not cands and not always:
        return {}
    return {"platform_id": {"name": gpl},
            **{f"platform:{u.rsplit('/', 1)[-1]}": {"name": u.rsplit("/", 1)[-1], **fs.file_fingerprint(u)}
               for u in cands}}


def source_fingerprints(files: dict[str, str]) -> dict[str, dict]:
    """Per role: file name plus fs fingerprint (size, mtime, etag); the resume key of a cohort."""
    out = {}
    for role, url in sorted(files.items()):
        out[role] = {"name": url.rstrip("/").rsplit("/", 1)[-1], **fs.file_fingerprint(url)}
    return out


# ---- platform annotation shared by the cohorts of a store ---------------------------------------------------

PLATFORMS_DIR = "platforms"  # STORE/platforms/<key>/: one encoded var group per (platform table, probe list)
_MEMORY_ENTRIES = 6
_platform_memory: dict[str, dict] = {}  # per worker process, most recent last


def platform_key(table_digest: str, probes: list[str]) -> str:
    """Key of a cohort's var: the platform table's bytes (as digested) and the matrix's probe IDs in order."""
    h = hashlib.sha256(table_digest.encode() + b"\x1e")
    h.update("\n".join(probes).encode())
    return h.hexdigest()


def _platform_url(store_root: str, key: str) -> str:
    return layout.join(store_root, PLATFORMS_DIR, key)


def load_platform(store_root: str, key: str) -> dict | None:
    """The encoded var for ``key`` (worker memory first, then STORE/platforms), or None."""
    hit = _platform_memory.pop(key, None)
    if hit is None and store_root:
        url = _platform_url(store_root, key)
        if fs.is_complete_dir(url):
            try:
                meta = fs.read_json(layout.join(url, "meta.json"))
                if "objects" in meta and meta.get("layout") == ENTRY_FILES:  # one file per object (local disk)
                    objects = _read_entry_files(layout.join(url, ENTRY_FILES), meta["objects"])
                elif "objects" in meta:  # one blob file (object stores; local entries of earlier versions)
                    objects = split_entry(fs.read_bytes(layout.join(url, ENTRY_BLOB)), meta["objects"])
                else:  # an entry of an earlier version: the var group's files
                    fsys, root = fs.get_fs(url)
                    root = root.rstrip("/")
                    files = [f for f in fsys.find(root) if "/var/" in f[len(root):]]
                    blobs = fsys.cat(files) if files else {}
                    objects = {f[len(root) + 1:]: b for f, b in sorted(blobs.items())}
                hit = {"objects": objects, "renamed": meta["renamed"], "meta": meta["meta"]}
            except (OSError, KeyError, ValueError, TypeError):
                hit = None  # unreadable entry: parse the table again (and rewrite it)
    if hit is not None:
        _remember(key, hit)
    return hit


ENTRY_BLOB = "var.bin"  # a platforms/ entry's var objects, concatenated in the order meta.json lists them
ENTRY_FILES = "files"   # on local disk the objects as files instead (files/var/...), hard-linked into cohort groups


def platform_link_dir(store_root: str, key: str) -> str | None:
    """The directory of entry ``key`` whose files the cohort groups of a local store hard-link their var from
    (:func:`store.write_cohort`'s ``var_link_dir``), or None (an object store, no such entry yet, an entry
    written before these files existed): the var is then written as bytes."""
    if not store_root or not fs.is_local(store_root):
        return None
    url = _platform_url(store_root, key)
    files = layout.join(url, ENTRY_FILES)
    return files if fs.is_complete_dir(url) and fs.isdir(files) else None


def _listed_objects(listed) -> list[tuple[str, int]]:
    """meta.json's ``[[key, size], ...]`` checked: ValueError unless every key is a plain path under ``var/``
    listed once (the keys become file names in cohort groups: none may climb out of the group) and every size
    an int >= 0."""
    out: list[tuple[str, int]] = []
    seen: set[str] = set()
    for item in listed:
        name, size = item
        parts = name.split("/") if isinstance(name, str) else []
        if (not isinstance(size, int) or isinstance(size, bool) or size < 0 or len(parts) < 2 or parts[0] != "var"
                or "\\" in name or any(p in ("", ".", "..") for p in parts) or name in seen):
            raise ValueError(f"platforms entry: bad object {item!r}")
        seen.add(name)
        out.append((name, size))
    return out


def split_entry(blob: bytes, listed) -> dict[str, bytes]:
    """The var objects of a platforms/ entry from its blob and meta.json's ``[[key, size], ...]``; ValueError
    unless the sizes tile the blob and the keys pass :func:`_listed_objects`."""
    out: dict[str, bytes] = {}
    pos = 0
    for name, size in _listed_objects(listed):
        out[name] = blob[pos:pos + size]
        pos += size
    if pos != len(blob):
        raise ValueError("platforms entry: object sizes do not add up to the blob")
    return out


def _read_entry_files(files: str, listed) -> dict[str, bytes]:
    """The var objects of a local platforms/ entry kept as files (each a regular file of its listed size, read
    no further); ValueError otherwise."""
    root = fs.get_fs(files)[1].rstrip("/")
    out: dict[str, bytes] = {}
    for name, size in _listed_objects(listed):
        path = f"{root}/{name}"
        with open(path, "rb", opener=lambda p, fl: os.open(p, fl | os.O_NOFOLLOW)) as f:
            data = f.read(size + 1)
        if len(data) != size:
            raise ValueError(f"platforms entry: {name} is not {size} bytes")
        out[name] = data
    return out


def _expect_new_platform(gpl: str) -> bool:
    """True when this worker holds no annotation of platform ``gpl`` in memory: its family SOFT's table is then
    probably new to the store too, so the digest pass keeps the table's bytes and a miss parses them without
    decompressing the file again (a wrong guess costs a copy of the table, once per worker and platform)."""
    return not any((e.get("meta") or {}).get("platform") == gpl for e in _platform_memory.values())


def _remember(key: str, entry: dict) -> None:
    _platform_memory[key] = entry
    while len(_platform_memory) > _MEMORY_ENTRIES:
        _platform_memory.pop(next(iter(_platform_memory)))


def save_platform(store_root: str, key: str, entry: dict, group: str | None = None) -> None:
    """Keep ``entry`` in worker memory and (best effort) in STORE/platforms/<key> for the other workers, with
    meta.json listing the var objects.  On local disk the objects are files under ``files/`` that the cohort
    groups of the platform hard-link instead of copying, themselves hard links to ``group``'s files (a cohort
    group just written with these objects) where those match: saving costs metadata operations, no bytes.
    On an object store they are one blob (one PUT, where the group's layout took ~35)."""
    _remember(key, entry)
    if not store_root:
        return
    try:
        names = list(entry["objects"])
        blobs = [b if isinstance(b, bytes) else b.to_bytes() for b in (entry["objects"][k] for k in names)]
        local = fs.is_local(store_root)
        with fs.atomic_dir(_platform_url(store_root, key)) as tmp:  # the directory is published whole
            if local:  # the files the next cohorts' groups hard-link (platform_link_dir), themselves links to
                # the files of ``group`` (a cohort group just written with these objects) where they match
                store.dump_memory_store(dict(zip(names, blobs)), layout.join(tmp, ENTRY_FILES), group, set(names))
            else:
                store.dump_memory_store({ENTRY_BLOB: b"".join(blobs)}, tmp)
            meta = {"renamed": entry["renamed"], "meta": entry["meta"], **({"layout": ENTRY_FILES} if local else {}),
                    "objects": [[k, len(b)] for k, b in zip(names, blobs)]}
            # a plain write: the temporary directory is published whole (no temporary file, fsync, rename of its own)
            store.dump_memory_store({"meta.json": fs.json_text(meta).encode()}, tmp)
    except OSError:
        pass  # a cache: another worker may be publishing the same entry


# ---- building one cohort ----------------------------------------------------------------------

def _geo_pieces(job: CohortJob, float64: bool = False):
    m = read_series_matrix(job.files["matrix"], float32=not float64)
    name = job.files["matrix"].rsplit("/", 1)[-1]
    ids = m.platform_ids
    gpl = layout.platform_from_matrix_name(name) or (ids[0] if ids else "")
    platform = {"id": gpl, "ids": ids, "title": "", "annotation_file": "", "annotation_note": ""}
    var = pd.DataFrame(index=pd.Index(m.probes, dtype=object, name="ID"))
    soft = job.files.get("soft")
    plats = None
    shared: dict = {}
    if soft and gpl:
        try:
            ent = read_soft_platform_digest(soft, gpl, keep=_expect_new_platform(gpl))
        except InputFormatError as err:
            if "not found in the file" not in err.cause:
                raise
            platform["annotation_note"] = f"platform {gpl} not in {soft.rsplit('/', 1)[-1]}"
            ent = None
        if ent is not None:
            shared["key"] = platform_key(ent.table_digest or "", m.probes)
            hit = load_platform(job.store, shared["key"])
            if hit is not None:  # same table bytes, same probes: the annotation this store already encoded
                ent.table_bytes = None
                shared["encoded"] = hit
                shared["link_dir"] = platform_link_dir(job.store, shared["key"])
                # known to this worker but not to this (local) store: the entry is saved after the group, as links
                shared["new"] = shared["link_dir"] is None and bool(job.store) and fs.is_local(job.store)
                platform.update(title=ent.attr("title"), annotation_file=soft.rsplit("/", 1)[-1],
                                n_annotated=hit["meta"]["n_annotated"])
    if soft and gpl and not platform["annotation_note"] and "encoded" not in shared:
        try:
            # one thread: a worker thread is a core's worth of work (pyarrow's pool costs ~1.6x the CPU here)
            kept = soft_table_from_bytes(soft, ent, threads=False) if ent is not None else None
            if ent is not None:
                ent.table_bytes = None  # parsed: the text goes before the var is encoded
            plats = {gpl: kept} if kept is not None else read_soft_platforms(soft, [gpl], threads=False, arrow=True)
        except InputFormatError as err:
            if "not found in the file" not in err.cause:
                raise
            platform["annotation_note"] = f"platform {gpl} not in {soft.rsplit('/', 1)[-1]}"
    if plats is None and "encoded" not in shared and gpl:  # the platform's own files (GEO names), beside the cohort or in --platforms
        from genotex_dask.io.platforms import read_platform_annotation

        found = read_platform_annotation(gpl, job.platform_files)
        if found is not None:
            table, title, url = found
            ann = table.drop_duplicates(subset=table.columns[0], keep="first").set_index(table.columns[0])
            ann.index = ann.index.astype(str)
            var = ann.reindex(var.index.astype(str))
            var.index.name = "ID"
            platform.update(title=title, annotation_file=url.rsplit("/", 1)[-1], annotation_note="",
                            n_annotated=int(ann.index.isin(var.index).sum()))
        else:
            from genotex_dask.io.platforms import looked_for

            where = [job.input_dir, *job.platform_dirs]
            platform["annotation_note"] = (
                f"no annotation for platform {gpl} of cohort {job.trait}/{job.cohort}: "
                + (f"{gpl} not in {soft.rsplit('/', 1)[-1]}; " if soft else "no family SOFT file in the cohort "
                   "directory; ")
                + f"looked for {', '.join(looked_for(gpl))} in {', '.join(where)}"
                + ("" if len(where) > 1 else " (a shared directory can be given with --platforms DIR)"))
    if plats is not None:
        p = plats[gpl]
        direct = store.encode_platform_var(p.arrow_table, m.probes, "ID")
        if direct is not None:  # encoded from pyarrow: no pandas frame, no Python string per cell
            objects, renamed, n_annotated = direct
            shared["encoded"] = {"objects": objects, "renamed": renamed,
                                 "meta": {"n_annotated": n_annotated, "platform": gpl}}
            shared["new"] = "key" in shared  # kept for the next cohorts of the platform once written
        else:
            table = soft_table_frame(p.arrow_table)
            id_col = table.columns[0]
            ann = table.drop_duplicates(subset=id_col, keep="first").set_index(id_col)
            var = ann.reindex(var.index)
            var.index.name = "ID"
            n_annotated = int(ann.index.isin(var.index).sum())
        platform.update(title=p.attr("title"), annotation_file=soft.rsplit("/", 1)[-1], n_annotated=n_annotated)
        p.arrow_table = plats = None
        import pyarrow as pa

        pa.default_memory_pool().release_unused()  # the table's buffers back to the OS, not pooled under the matrix
    uns = {"ingest": {"kind": "GEO", "trait": job.trait, "cohort": job.cohort, "gse": job.input_dir.rsplit("/", 1)[-1],
                      "matrix_file": name, "id_column": m.id_column},
           "series": m.series, "platform": platform}
    shared["finite"] = m.values_finite
    return m.values.T, m.samples, var, uns, shared


def _tcga_pieces(job: CohortJob):
    expr = read_xena_expression(job.files["expression"])
    text = read_xena_clinical_text(job.files["clinical"])
    clinical = parse_xena_clinical(text, job.files["clinical"])
    samples = list(expr.columns)
    obs = clinical.reindex(samples)
    obs.index.name = "sample"
    # the index keeps the file's header name ("sample" in Xena files): GenoTEX's CSVs carry it
    var = pd.DataFrame(index=pd.Index(expr.index, dtype=object, name=expr.index.name or "gene"))
    uns = {"ingest": {"kind": "TCGA", "trait": "", "cohort": job.cohort,
                      "expression_file": job.files["expression"].rsplit("/", 1)[-1],
                      "clinical_file": job.files["clinical"].rsplit("/", 1)[-1],
                      "samples_without_clinical": [s for s in samples if s not in clinical.index]},
           "platform": {"id": "Xena HiSeqV2_PANCAN", "title": "UCSC Xena TCGA hub, pancan-normalized log2"},
           "clinical_matrix_tsv": text}
    return expr.to_numpy().T, obs, var, uns, {}


_F32_MAX = float(np.finfo(np.float32).max)


def infinite_as_missing(X: np.ndarray, float64: bool = False) -> tuple[np.ndarray, dict[str, int]]:
    """Set ±inf cells (and, for a float32 store, cells beyond float32's range, which would become inf) to NaN;
    returns (X, counts; empty when none); X is changed in place when writable.  Missing is what every later
    rule understands: an inf cell passed the missing-value rules, became an empty CSV cell and broke the
    regressions."""
    out: dict[str, int] = {}
    if not X.flags.writeable:
        X = np.array(X)
    # cell by cell, so walk the memory in its own order (a transposed matrix by its columns) in blocks of
    # ~8k cells: the masks and |x| (64 KB) stay in cache and below glibc's mmap threshold instead of costing
    # a matrix-sized temporary each
    mem = X.T if X.flags.f_contiguous and not X.flags.c_contiguous else X
    step = max(1, (1 << 13) // max(1, mem.shape[1] if mem.ndim == 2 else 1))
    for lo in range(0, mem.shape[0], step):
        block = mem[lo:lo + step]
        with np.errstate(invalid="ignore"):
            bad = np.isinf(block) if float64 else np.abs(block) > _F32_MAX  # the latter includes ±inf
        if not bad.any():  # the usual case: one comparison per cell
            continue
        inf = np.isinf(block)
        if inf.any():
            out["inf"] = out.get("inf", 0) + int(inf.sum())
            block[inf] = np.nan
        if not float64:
            with np.errstate(invalid="ignore"):
                big = np.abs(block) > _F32_MAX
            if big.any():
                out["beyond_float32"] = out.get("beyond_float32", 0) + int(big.sum())
                block[big] = np.nan
    return X, out


def ingest_cohort(job: CohortJob, float64: bool = False, matrix_out: dict | None = None) -> dict:
    """Dask task: ingest one cohort unless unchanged; never raises (failures come back as a status).

    ``matrix_out`` (a dict, when the caller maps the cohort next in the same task) receives ``"X"``: the matrix
    just written (samples x features, the store's dtype, the values the store now holds), so the caller need not
    decode the store again.  Left empty when the cohort was skipped or failed."""
    t0 = time.perf_counter()
    res = {"key": job.key, "kind": job.kind, "store": job.out, "status": "failed", "error": ""}
    if job.error:
        res["error"] = job.error
        return res
    try:
        sources = source_fingerprints(job.files)
        stored_gpl = ((store.read_completion(job.out) or {}).get("sources") or {}).get("platform_id", {}).get("name")
        gpl = layout.platform_from_matrix_name(job.files.get("matrix", "")) or stored_gpl
        if store.sources_unchanged(job.out, {**sources, **_platform_sources(job, gpl, stored_gpl is not None)},
                                   float64):
            res["status"] = "skipped"
            return res
        X, obs, var, uns, shared = _geo_pieces(job, float64) if job.kind == "GEO" else _tcga_pieces(job)
        plat = uns.get("platform") or {}
        sources.update(_platform_sources(job, plat.get("id"),
                                         always=job.kind == "GEO" and not plat.get("annotation_file")))
        # the fast matrix reader's values are finite and within float32's range: no pass to look for others
        X, non_finite = (X, {}) if shared.get("finite") else infinite_as_missing(X, float64)
        if non_finite:
            uns["ingest"]["infinite_as_missing"] = non_finite
            res["infinite_as_missing"] = non_finite
        keep: dict | None = {} if "key" in shared and "encoded" not in shared else None
        # the caller maps X from memory next (matrix_out): nobody reads the chunks back soon, so they may go
        # past the page cache (dask.config genotex_dask.store.direct-writes; off by default: measured dearer)
        direct = matrix_out is not None and bool(gconfig.get("store.direct-writes", False))
        rec = store.write_cohort(job.out, X, obs, var, uns, sources, float64=float64,
                                 var_encoded=shared.get("encoded"), keep_var=keep,
                                 var_link_dir=shared.get("link_dir"), direct=direct)
        if keep:
            keep["meta"] = {"n_annotated": uns["platform"].get("n_annotated", 0), "platform": plat.get("id")}
            save_platform(job.store, shared["key"], keep, job.out)
        elif shared.get("new"):
            save_platform(job.store, shared["key"], shared["encoded"], job.out)
        res.update(status="ingested", n_obs=rec["n_obs"], n_vars=rec["n_vars"])
        if matrix_out is not None:  # the values as stored (Blosc is lossless), converted as the store converted them
            dtype = np.float64 if float64 else np.float32
            matrix_out["X"] = X if X.dtype == dtype else X.astype(dtype)
    except InputFormatError as err:
        res["error"] = str(err)
    except Exception as err:  # any other failure: name the cohort directory and keep the traceback tail
        tb = traceback.format_exc(limit=3)
        res["error"] = f"{job.input_dir}: {type(err).__name__}: {err}"
        res["traceback"] = tb
    res["seconds"] = round(time.perf_counter() - t0, 3)
    return res


def run_ingest(root: str, store: str, client: Client, progress: bool = True, float64: bool = False,
               platforms: str | list[str] | None = None) -> dict:
    """Ingest every cohort of ``root``/input into ``store`` on the cluster behind ``client``.

    Returns (and writes to ``STORE/ingest_summary.json``) ``{"ingested": n, "skipped": n, "failed":
    {cohort key: message}, "n_cohorts", "cohorts": {key: status dict}, "root", "store", "float64",
    "version", "seconds"}``.
    """
    store_url = store
    t0 = time.perf_counter()
    jobs = discover(root, store_url, platforms)
    futures = [client.submit(ingest_cohort, job, float64, key=f"ingest-{job.key}-{time.time_ns()}", pure=False)
               for job in jobs]
    by_future = dict(zip(futures, jobs))
    results: dict[str, dict] = {}
    for fut in as_completed_with_progress(futures, desc="ingest", enabled=progress):
        job = by_future[fut]
        try:
            results[job.key] = fut.result()
        except Exception as err:  # the task itself died (e.g. worker killed repeatedly)
            results[job.key] = {"key": job.key, "kind": job.kind, "store": job.out, "status": "failed",
                                "error": f"{job.input_dir}: {type(err).__name__}: {err}"}
    ordered = {k: results[k] for k in sorted(results)}
    summary = {
        "stage": "ingest",
        "version": store_version(),
        "root": root,
        "store": store_url,
        "float64": bool(float64),
        "platforms": _platform_dirs(platforms, store_url),
        "n_cohorts": len(jobs),
        "ingested": sum(r["status"] == "ingested" for r in ordered.values()),
        "skipped": sum(r["status"] == "skipped" for r in ordered.values()),
        "failed": {k: r["error"] for k, r in ordered.items() if r["status"] == "failed"},
        "cohorts": ordered,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    fs.write_json_atomic(layout.join(store_url, SUMMARY_NAME), summary)
    return summary


def store_version() -> int:
    return store.INGEST_VERSION


__all__ = ["CohortJob", "discover", "ingest_cohort", "run_ingest", "source_fingerprints"]

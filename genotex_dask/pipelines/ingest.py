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
import time
import traceback
from dataclasses import dataclass, field

import pandas as pd
from distributed import Client

from genotex_dask import layout
from genotex_dask.io import fs, store
from genotex_dask.io.errors import InputFormatError
from genotex_dask.io.geo import read_series_matrix, read_soft_platform_digest, read_soft_platforms
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
    store: str = ""               # the store root (its platforms/ keeps encoded annotation per platform table)


def _entries(url: str) -> list[tuple[str, bool]]:
    """(name, is_dir) of the entries directly under ``url``, sorted by name."""
    fsys, path = fs.get_fs(url)
    if not fsys.exists(path):
        return []
    out = []
    for info in fsys.ls(path, detail=True):
        name = info["name"].rstrip("/").rsplit("/", 1)[-1]
        out.append((name, info.get("type") == "directory"))
    return sorted(out)


def _matrix_cohort_id(gse: str, name: str) -> str:
    gpl = layout.platform_from_matrix_name(name)
    if gpl:
        return f"{gse}-{gpl}"
    stem = name.split("_series_matrix")[0]
    return stem if stem != gse else f"{gse}-{name}"


def discover(root: str, store_url: str) -> list[CohortJob]:
    """Every cohort of the input tree, including broken ones (with ``error`` set)."""
    jobs: list[CohortJob] = []
    geo = layout.input_geo_dir(root)
    for trait, is_dir in _entries(geo):
        if not is_dir:
            continue
        for gse, gdir in _entries(layout.join(geo, trait)):
            if not gdir:
                continue
            d = layout.join(geo, trait, gse)
            files = [n for n, isd in _entries(d) if not isd]
            matrices = [n for n in files if layout.is_series_matrix(n)]
            softs = [n for n in files if layout.is_family_soft(n)]
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
                                      layout.store_geo_cohort(store_url, trait, cid), f, store=store_url))
    tcga = layout.input_tcga_dir(root)
    for name, is_dir in _entries(tcga):
        if not is_dir:
            continue
        d = layout.join(tcga, name)
        files = [n for n, isd in _entries(d) if not isd]
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
    h = hashlib.sha1(table_digest.encode() + b"\x1e")
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
                fsys, root = fs.get_fs(url)
                root = root.rstrip("/")
                files = [f for f in fsys.find(root) if "/var/" in f[len(root):]]
                blobs = fsys.cat(files) if files else {}
                meta = fs.read_json(layout.join(url, "meta.json"))
                hit = {"objects": {f[len(root) + 1:]: b for f, b in sorted(blobs.items())},
                       "renamed": meta["renamed"], "meta": meta["meta"]}
            except (OSError, KeyError, ValueError):
                hit = None  # unreadable entry: parse the table again (and rewrite it)
    if hit is not None:
        _remember(key, hit)
    return hit


def _remember(key: str, entry: dict) -> None:
    _platform_memory[key] = entry
    while len(_platform_memory) > _MEMORY_ENTRIES:
        _platform_memory.pop(next(iter(_platform_memory)))


def save_platform(store_root: str, key: str, entry: dict) -> None:
    """Keep ``entry`` in worker memory and (best effort) in STORE/platforms/<key> for the other workers."""
    _remember(key, entry)
    if not store_root:
        return
    try:
        with fs.atomic_dir(_platform_url(store_root, key)) as tmp:
            for k, blob in entry["objects"].items():
                fs.write_bytes_atomic(layout.join(tmp, k), blob)
            fs.write_json_atomic(layout.join(tmp, "meta.json"), {"renamed": entry["renamed"], "meta": entry["meta"]})
    except OSError:
        pass  # a cache: another worker may be publishing the same entry


# ---- building one cohort ----------------------------------------------------------------------

def _geo_pieces(job: CohortJob):
    m = read_series_matrix(job.files["matrix"])
    name = job.files["matrix"].rsplit("/", 1)[-1]
    ids = m.platform_ids
    gpl = layout.platform_from_matrix_name(name) or (ids[0] if ids else "")
    platform = {"id": gpl, "ids": ids, "title": "", "annotation_file": "", "annotation_note": ""}
    var = pd.DataFrame(index=pd.Index(m.probes, dtype=object, name="ID"))
    soft = job.files.get("soft")
    shared: dict = {}
    if soft and gpl:
        try:
            ent = read_soft_platform_digest(soft, gpl)
        except InputFormatError as err:
            if "not found in the file" not in err.cause:
                raise
            platform["annotation_note"] = f"platform {gpl} not in {soft.rsplit('/', 1)[-1]}"
            ent = None
        if ent is not None:
            shared["key"] = platform_key(ent.table_digest or "", m.probes)
            hit = load_platform(job.store, shared["key"])
            if hit is not None:  # same table bytes, same probes: the annotation this store already encoded
                shared["encoded"] = hit
                platform.update(title=ent.attr("title"), annotation_file=soft.rsplit("/", 1)[-1],
                                n_annotated=hit["meta"]["n_annotated"])
    if soft and gpl and not platform["annotation_note"] and "encoded" not in shared:
        try:
            plats = read_soft_platforms(soft, [gpl])
        except InputFormatError as err:
            if "not found in the file" not in err.cause:
                raise
            platform["annotation_note"] = f"platform {gpl} not in {soft.rsplit('/', 1)[-1]}"
        else:
            p = plats[gpl]
            table = p.table
            id_col = table.columns[0]
            ann = table.drop_duplicates(subset=id_col, keep="first").set_index(id_col)
            var = ann.reindex(var.index)
            var.index.name = "ID"
            platform.update(title=p.attr("title"), annotation_file=soft.rsplit("/", 1)[-1],
                            n_annotated=int(ann.index.isin(var.index).sum()))
    elif not soft:
        platform["annotation_note"] = "no family SOFT file in the cohort directory"
    uns = {"ingest": {"kind": "GEO", "trait": job.trait, "cohort": job.cohort, "gse": job.input_dir.rsplit("/", 1)[-1],
                      "matrix_file": name, "id_column": m.id_column},
           "series": m.series, "platform": platform}
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


def ingest_cohort(job: CohortJob, float64: bool = False) -> dict:
    """Dask task: ingest one cohort unless unchanged; never raises (failures come back as a status)."""
    t0 = time.perf_counter()
    res = {"key": job.key, "kind": job.kind, "store": job.out, "status": "failed", "error": ""}
    if job.error:
        res["error"] = job.error
        return res
    try:
        sources = source_fingerprints(job.files)
        if store.sources_unchanged(job.out, sources, float64):
            res["status"] = "skipped"
            return res
        X, obs, var, uns, shared = (_geo_pieces if job.kind == "GEO" else _tcga_pieces)(job)
        keep: dict | None = {} if "key" in shared and "encoded" not in shared else None
        rec = store.write_cohort(job.out, X, obs, var, uns, sources, float64=float64,
                                 var_encoded=shared.get("encoded"), keep_var=keep)
        if keep:
            keep["meta"] = {"n_annotated": uns["platform"].get("n_annotated", 0)}
            save_platform(job.store, shared["key"], keep)
        res.update(status="ingested", n_obs=rec["n_obs"], n_vars=rec["n_vars"])
    except InputFormatError as err:
        res["error"] = str(err)
    except Exception as err:  # any other failure: name the cohort directory and keep the traceback tail
        tb = traceback.format_exc(limit=3)
        res["error"] = f"{job.input_dir}: {type(err).__name__}: {err}"
        res["traceback"] = tb
    res["seconds"] = round(time.perf_counter() - t0, 3)
    return res


def run_ingest(root: str, store: str, client: Client, progress: bool = True, float64: bool = False) -> dict:
    """Ingest every cohort of ``root``/input into ``store`` on the cluster behind ``client``.

    Returns (and writes to ``STORE/ingest_summary.json``) ``{"ingested": n, "skipped": n, "failed":
    {cohort key: message}, "n_cohorts", "cohorts": {key: status dict}, "root", "store", "float64",
    "version", "seconds"}``.
    """
    store_url = store
    t0 = time.perf_counter()
    jobs = discover(root, store_url)
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

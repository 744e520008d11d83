"""fsspec access and atomic writes.

Every read and write of the engine goes through here, so local paths, ``s3://``, ``gs://`` and
``memory://`` behave alike.  Writes are atomic: data goes to a temporary sibling first and is then
moved into place (a rename on local disk; on object stores a single PUT is already atomic), so a
killed process never leaves a half-written file under its final name.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import fsspec
import numpy as np
from fsspec.core import url_to_fs

from genotex_dask.layout import is_safe_name

TMP_MARK = ".genotex-tmp-"
log = logging.getLogger("genotex_dask")


def get_fs(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """(filesystem, path inside it) for any fsspec URL or local path."""
    return url_to_fs(url)


def is_local(url: str) -> bool:
    fs, _ = get_fs(url)
    return "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))


def exists(url: str) -> bool:
    fs, path = get_fs(url)
    return fs.exists(path)


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip(os.sep) + os.sep)


def entries(url: str, within: str | None = None) -> list[tuple[str, bool]]:
    """Sorted ``(base name, is_dir)`` of the entries directly under ``url`` (empty when it does not exist).

    Untrusted trees are listed the same way everywhere (ingest, spec suggestion): an entry whose name is unsafe
    as a path component (``..``, a separator, NUL; object-store keys can hold these) and, on local disk, a
    symbolic link that resolves outside ``within`` (default: ``url`` itself) are skipped with a warning.  A
    symlink that stays inside is followed and reported as what it points to.
    """
    fsys, path = get_fs(url)
    fsys.invalidate_cache(path)  # object-store listings are cached per process; workers write elsewhere
    if not fsys.exists(path):
        return []
    local = is_local(url)
    top = os.path.realpath(get_fs(within)[1] if within else path) if local else ""
    out = []
    for info in fsys.ls(path, detail=True):
        name = info["name"].rstrip("/").rsplit("/", 1)[-1]
        if not is_safe_name(name):
            log.warning("%s: skipped entry %r: unsafe as a path component", url, name)
            continue
        is_dir = info.get("type") == "directory"
        if local and info.get("islink"):
            target = os.path.realpath(info["name"])
            if not _under(target, top):
                log.warning("%s: skipped symbolic link %r: it leaves %s", url, name, top)
                continue
            is_dir = os.path.isdir(target)
        out.append((name, is_dir))
    return sorted(out)


def listdir(url: str, within: str | None = None) -> list[str]:
    """Sorted base names of the entries directly under ``url`` (see :func:`entries` for what is skipped)."""
    return [name for name, _ in entries(url, within)]


def isdir(url: str) -> bool:
    fs, path = get_fs(url)
    return fs.isdir(path)


def open_binary(url: str):
    """Open a file for binary reading (caller closes)."""
    fs, path = get_fs(url)
    return fs.open(path, "rb")


def read_bytes(url: str) -> bytes:
    fs, path = get_fs(url)
    return fs.cat_file(path)


def read_text(url: str) -> str:
    return read_bytes(url).decode("utf-8")


def read_json(url: str) -> Any:
    return json.loads(read_bytes(url))


def file_fingerprint(url: str) -> dict:
    """Size and modification marker of a file, used to decide whether a rerun may skip work."""
    fs, path = get_fs(url)
    info = fs.info(path)
    mtime = info.get("mtime") or info.get("LastModified") or info.get("updated") or info.get("created")
    return {"size": int(info.get("size") or 0), "mtime": str(mtime), "etag": str(info.get("ETag", ""))}


def makedirs(url: str) -> None:
    fs, path = get_fs(url)
    fs.makedirs(path, exist_ok=True)


def _tmp_sibling(path: str) -> str:
    head, _, tail = path.rpartition("/")
    name = f"{TMP_MARK}{uuid.uuid4().hex}-{tail}"
    return f"{head}/{name}" if head else name


def write_bytes_atomic(url: str, data: bytes) -> None:
    """Write ``data`` to ``url`` so that readers see either the old file or the whole new one."""
    fs, path = get_fs(url)
    parent = path.rpartition("/")[0]
    if parent:
        fs.makedirs(parent, exist_ok=True)
    if is_local(url):
        tmp = _tmp_sibling(path)
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
    else:
        # Object stores: a single PUT is atomic (the object appears whole or not at all).
        fs.pipe_file(path, data)


def write_text_atomic(url: str, text: str) -> None:
    write_bytes_atomic(url, text.encode("utf-8"))


def json_text(obj: Any, indent: int | None = 4) -> str:
    """The JSON text of ``obj`` as the project's records hold it (``str()`` of what JSON has no type for)."""
    return json.dumps(obj, indent=indent, default=str)


def write_json_atomic(url: str, obj: Any, indent: int | None = 4) -> None:
    write_text_atomic(url, json_text(obj, indent))


COMPLETE_MARK = ".complete"


def _url_of(fs: fsspec.AbstractFileSystem, path: str) -> str:
    proto = fs.protocol[0] if isinstance(fs.protocol, tuple) else fs.protocol
    return path if proto in ("file", "local") else f"{proto}://{path}"


@contextmanager
def atomic_dir(url: str) -> Iterator[str]:
    """Yield a temporary directory to write into; on success it replaces ``url`` whole.

    Used for Zarr groups: a cohort is written into the temporary directory and moved into place,
    so an interrupted ingest never leaves a half-written cohort under its final name.  A
    ``.complete`` marker is put in the directory last; :func:`is_complete_dir` checks it.

    On local disk the temporary directory is a sibling and the move is a rename (the old directory is
    first renamed aside, so the final name is missing for an instant at most but never half-written).
    Object stores have no rename, and writing a Zarr group through fsspec costs ~20 requests per object
    (existence checks, listings, metadata re-reads: 2,300 requests for a 100-object AnnData group), so
    there the group is staged in a local temporary directory (``$TMPDIR`` of the worker) and uploaded
    with one PUT per object: the old marker is deleted first, stale objects are removed, and the new
    marker is written last, so a reader that sees the marker sees the whole new group.
    """
    fs, path = get_fs(url)
    path = path.rstrip("/")
    if not is_local(url):
        staging = tempfile.mkdtemp(prefix=TMP_MARK)
        try:
            yield staging
            _publish_object_dir(fs, staging, path)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            fs.invalidate_cache()
        return
    tmp_path = _tmp_sibling(path)
    try:
        yield _url_of(fs, tmp_path)
        if not os.path.isdir(tmp_path):
            os.makedirs(tmp_path)
        with open(f"{tmp_path}/{COMPLETE_MARK}", "wb"):
            pass
        old = _tmp_sibling(path) if os.path.exists(path) else None
        if old:
            os.replace(path, old)
        os.replace(tmp_path, path)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if os.path.exists(tmp_path):
            shutil.rmtree(tmp_path, ignore_errors=True)


def _publish_object_dir(fs: fsspec.AbstractFileSystem, staging: str, path: str) -> None:
    """Upload every file under the local ``staging`` directory to ``path`` (an object store), marker last."""
    marker = f"{path}/{COMPLETE_MARK}"
    fs.invalidate_cache()
    if fs.exists(marker):
        fs.rm_file(marker)
    files = sorted(os.path.join(d, n) for d, _, names in os.walk(staging) for n in names)
    rel = [os.path.relpath(f, staging).replace(os.sep, "/") for f in files]
    rel_files = [(r, f) for r, f in zip(rel, files) if r != COMPLETE_MARK]
    if rel_files:
        fs.put([f for _, f in rel_files], [f"{path}/{r}" for r, _ in rel_files])
    fs.invalidate_cache()
    keep = {r for r, _ in rel_files} | {COMPLETE_MARK}
    stale = [p for p in fs.find(path) if p[len(path) + 1:] not in keep] if fs.exists(path) else []
    if stale:
        fs.rm(stale)
    fs.pipe_file(marker, b"")
    fs.invalidate_cache()


def is_complete_dir(url: str) -> bool:
    """True when ``url`` is a directory published whole by :func:`atomic_dir` (its marker exists).

    Use it, not ``exists``, to decide that a Zarr group can be skipped or read: on object stores a
    publish interrupted mid-copy leaves objects under the final name but no marker.
    """
    fs, path = get_fs(url)
    fs.invalidate_cache()
    return fs.exists(f"{path.rstrip('/')}/{COMPLETE_MARK}")


def remove(url: str, recursive: bool = True) -> None:
    fs, path = get_fs(url)
    if fs.exists(path):
        fs.rm(path, recursive=recursive)


def leftover_temporaries(url: str) -> list[str]:
    """Every temporary file or directory left below ``url`` (should be empty after any run)."""
    fs, path = get_fs(url)
    fs.invalidate_cache()  # other processes (workers) wrote here: never trust a cached listing
    if not fs.exists(path):
        return []
    return [p for p in fs.find(path, withdirs=True) if TMP_MARK in p.rsplit("/", 1)[-1]]


def sweep_temporaries(url: str) -> list[str]:
    """Remove temporaries an interrupted run left below ``url``; returns what was removed.

    A killed process can leave ``.genotex-tmp-*`` siblings (never under a final name).  Stages call this
    on their own output directories before they start, so a rerun after Ctrl-C leaves nothing partial.
    Do not point two runs at the same output directory at once.
    """
    fs_, _ = get_fs(url)
    removed = []
    for p in sorted(leftover_temporaries(url), key=len):
        if fs_.exists(p):
            fs_.rm(p, recursive=True)
            removed.append(p)
    return removed


def json_safe(obj: Any) -> Any:
    """Replace NaN/inf by None and numpy scalars by Python ones, so every JSON we write is strict JSON."""
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj

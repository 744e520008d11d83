"""fsspec access and atomic writes.

Every read and write of the engine goes through here, so local paths, ``s3://``, ``gs://`` and
``memory://`` behave alike.  Writes are atomic: data goes to a temporary sibling first and is then
moved into place (a rename on local disk; on object stores a single PUT is already atomic), so a
killed process never leaves a half-written file under its final name.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import fsspec
from fsspec.core import url_to_fs

TMP_MARK = ".genotex-tmp-"


def get_fs(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """(filesystem, path inside it) for any fsspec URL or local path."""
    return url_to_fs(url)


def is_local(url: str) -> bool:
    fs, _ = get_fs(url)
    return "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))


def exists(url: str) -> bool:
    fs, path = get_fs(url)
    return fs.exists(path)


def listdir(url: str) -> list[str]:
    """Sorted base names of the entries directly under ``url`` (empty when it does not exist)."""
    fs, path = get_fs(url)
    if not fs.exists(path):
        return []
    return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(path, detail=False))


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


def write_json_atomic(url: str, obj: Any, indent: int | None = 4) -> None:
    write_text_atomic(url, json.dumps(obj, indent=indent))


@contextmanager
def atomic_dir(url: str) -> Iterator[str]:
    """Yield a temporary sibling directory URL; on success it replaces ``url`` whole.

    Used for Zarr groups: a cohort is written into the temporary directory and renamed into place,
    so an interrupted ingest never leaves a half-written cohort under its final name.  On object
    stores (no rename) the data is copied and the temporary prefix removed; a final ``.complete``
    marker written last tells readers the group is whole.
    """
    fs, path = get_fs(url)
    tmp_path = _tmp_sibling(path)
    proto = fs.protocol[0] if isinstance(fs.protocol, tuple) else fs.protocol
    tmp_url = tmp_path if proto in ("file", "local") else f"{proto}://{tmp_path}"
    try:
        yield tmp_url
        if fs.exists(path):
            fs.rm(path, recursive=True)
        fs.mv(tmp_path, path, recursive=True)
    finally:
        if fs.exists(tmp_path):
            fs.rm(tmp_path, recursive=True)


def remove(url: str, recursive: bool = True) -> None:
    fs, path = get_fs(url)
    if fs.exists(path):
        fs.rm(path, recursive=recursive)


def leftover_temporaries(url: str) -> list[str]:
    """Every temporary file or directory left below ``url`` (should be empty after any run)."""
    fs, path = get_fs(url)
    if not fs.exists(path):
        return []
    return [p for p in fs.find(path, withdirs=True) if TMP_MARK in p.rsplit("/", 1)[-1]]

"""Writing one new local file in one call: through the file descriptor, or past the page cache (``O_DIRECT``).

Why past the cache: on the project's VM, copying a file's bytes into fresh page-cache pages costs 2.5-5 ms of
system time per MB where the kernel hands out pages it has not touched lately (~0.25 ms/MB for recycled ones),
the most variable cost of a cohort task (issue 12).  A file the engine does not read back soon (a gene_data
CSV, a chunk of X that the same task has just mapped from memory) can go to the device from a small aligned
buffer instead: one user-space copy, and the write waits for the device.  Every file system that refuses
``O_DIRECT`` (tmpfs on older kernels, network mounts) gets the same bytes buffered.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterable

import numpy as np

ALIGN = 4096             # memory, offset and length alignment of unbuffered writes (a multiple of any block size)
DIRECT_BLOCK = 4 << 20   # the staging buffer: bytes per unbuffered write
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
_local = threading.local()


def write_new_file(path: str, data) -> None:
    """Write ``data`` (bytes or a contiguous array) to the file ``path``, created or truncated, through the file
    descriptor (Python's ``open`` adds an isatty ioctl, a seek and a stat per file: ~110 files per group)."""
    view = memoryview(data).cast("B")
    fd = os.open(path, _CREATE, 0o666)
    try:
        _pwrite_all(fd, view, 0)
    finally:
        os.close(fd)


def _pwrite_all(fd: int, data, pos: int) -> None:
    view = memoryview(data).cast("B")
    while len(view):
        n = os.pwrite(fd, view, pos)
        view, pos = view[n:], pos + n


def _stage() -> np.ndarray:
    """This thread's ``DIRECT_BLOCK`` bytes at an ``ALIGN``-aligned address (kept: cohorts of a worker thread reuse
    it, so its pages fault in once)."""
    stage = getattr(_local, "stage", None)
    if stage is None or len(stage) != DIRECT_BLOCK:
        raw = np.empty(DIRECT_BLOCK + ALIGN, dtype=np.uint8)
        stage = _local.stage = raw[(-raw.ctypes.data) % ALIGN:][:DIRECT_BLOCK]
    return stage


def write_file_direct(path: str, chunks: Iterable, buffered_below: int = 0) -> None:
    """Write the byte chunks (bytes, memoryviews or contiguous arrays) to a new file ``path`` through ``O_DIRECT``
    from this thread's aligned staging buffer, ``DIRECT_BLOCK`` bytes per write; the last partial block padded
    to ``ALIGN`` and the file then cut to its length (no page of it goes through the page cache).  Where the
    system or file system refuses ``O_DIRECT`` (at the file's first unbuffered write), everything is written
    buffered.  The file holds the same bytes either way.  A file shorter than ``buffered_below`` (at most
    ``DIRECT_BLOCK``: streamed chunks' total is known only once the first block fills) is written buffered: an
    unbuffered write waits for the device, not worth it for a small file."""
    fd = os.open(path, _CREATE, 0o666)
    dfd: int | None = None
    unbuffered = hasattr(os, "O_DIRECT")
    stage = _stage()
    pos = filled = 0

    def flush(n: int) -> None:  # the first n bytes of stage at pos: unbuffered (padded to ALIGN) or buffered
        nonlocal dfd, unbuffered
        if unbuffered and dfd is None and pos == 0 and n < buffered_below:
            unbuffered = False
        if unbuffered and dfd is None:
            try:
                dfd = os.open(path, os.O_WRONLY | os.O_DIRECT | getattr(os, "O_CLOEXEC", 0))
            except OSError:
                unbuffered = False
        if unbuffered:
            padded = -(-n // ALIGN) * ALIGN
            try:
                if os.pwrite(dfd, stage[:padded], pos) != padded:
                    raise OSError("short unbuffered write")
                if padded != n:
                    os.ftruncate(fd, pos + n)  # the padding cut off: the file is new, nothing lies past it
                return
            except OSError as exc:
                if pos or exc.errno not in (errno.EINVAL, None):  # EINVAL at the first block: refused
                    raise
                unbuffered = False
        _pwrite_all(fd, stage[:n], pos)

    try:
        for b in chunks:
            src = np.frombuffer(memoryview(b).cast("B"), np.uint8)
            i = 0
            while i < len(src):
                n = min(len(src) - i, len(stage) - filled)
                stage[filled:filled + n] = src[i:i + n]
                filled, i = filled + n, i + n
                if filled == len(stage):
                    flush(filled)
                    pos, filled = pos + filled, 0
        if filled:
            flush(filled)
    finally:
        if dfd is not None:
            os.close(dfd)
        os.close(fd)


DIRECT_MIN_BYTES = 256 << 10  # smaller files go buffered: an unbuffered write waits for the device


def write_past_cache(path: str, data) -> None:
    """One new file nobody reads back soon (a group's X chunks when the task maps the matrix it holds, the
    preprocessed store's X): a large one past the page cache (:func:`write_file_direct`), a small one as usual."""
    if memoryview(data).nbytes >= DIRECT_MIN_BYTES:
        write_file_direct(path, [data])
    else:
        write_new_file(path, data)

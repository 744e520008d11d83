"""Large per-cohort buffers kept by the worker thread that used them, for its next cohort.

A cohort's gene matrix and CSV text buffers are ~25-90 MB each, the Zarr encoder's chunk block 13.4 MB for a
preprocessed X.  Fresh ones are fresh pages every time: zeroed, and on this project's VM each freed 2 MB block is
handed back to the host at once, so touching it again is a host page fault (measured 9-60 ms for one GPL570
cohort's buffers on a Dask worker, against 3 ms to rewrite reused ones; ~25 ms for the chunk block alone).  A
buffer handed back with :func:`give` is returned by the same thread's next :func:`take` of that role when it is
large enough; each thread keeps at most one buffer per role, none larger than :data:`MAX_BYTES` and at most
:data:`TOTAL_BYTES` in all (address space: pages a cohort never touched cost no memory), so a big cohort's buffers
go back to the allocator and a worker thread holds at most a typical cohort's working set between tasks (~110 MB
resident for 167 x 20,000 genes).
:func:`release_all` drops every thread's buffers: the preprocess stage calls it on its workers when it ends, so the
memory is back before the analysis needs it.
"""

from __future__ import annotations

import threading

import numpy as np

MAX_BYTES = 128 << 20
TOTAL_BYTES = 256 << 20
_kept: dict[int, dict[str, np.ndarray]] = {}  # thread ident -> role -> buffer
_lock = threading.Lock()


def take(role: str, n: int, dtype) -> np.ndarray:
    """A 1-d buffer of ``n`` items (contents undefined): this thread's kept one for ``role`` when it fits."""
    with _lock:
        bufs = _kept.get(threading.get_ident())
        buf = bufs.pop(role, None) if bufs else None
    if buf is None or buf.dtype != np.dtype(dtype) or buf.size < n:
        buf = np.empty(n, dtype)
    return buf[:n]


def give(role: str, buf: np.ndarray) -> None:
    """Keep ``buf`` (from :func:`take`, or any view of it) for this thread's next :func:`take` of ``role``;
    the caller must not use it afterwards."""
    base = buf
    while isinstance(base.base, np.ndarray):
        base = base.base
    if not (base.ndim == 1 and base.flags.c_contiguous and base.flags.writeable and base.nbytes <= MAX_BYTES):
        return
    with _lock:
        bufs = _kept.setdefault(threading.get_ident(), {})
        others = sum(b.nbytes for r, b in bufs.items() if r != role)
        if others + base.nbytes <= TOTAL_BYTES:
            bufs[role] = base


def release_all() -> int:
    """Drop the buffers every thread of this process keeps; returns how many bytes they spanned."""
    with _lock:
        total = sum(b.nbytes for bufs in _kept.values() for b in bufs.values())
        _kept.clear()
    return total

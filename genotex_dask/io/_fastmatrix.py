"""A compiled fast path for the numeric body of a GEO series-matrix table.

pyarrow's CSV reader is general (types, quoting, null sets) and costs ~60 ns per cell here; a series matrix
is a plain grid (a quoted ID, then one decimal number per sample), so a small numba kernel parses it in one
pass at a fraction of that.  Numbers take Clinger's exact path: an integer mantissa below 2**53 scaled by a
power of ten up to 10**22 is a single correctly rounded IEEE operation, so the result is the same double
that Python's ``float()`` (and pandas/pyarrow) produce.  Anything outside that path (more than 19 digits,
large exponents, ``inf``, unusual missing-value spellings, ragged rows, stray characters) makes the kernel
give up, and the caller re-reads the file with the general pyarrow path, which also produces the precise
error messages.  Missing values handled here: empty, ``null``, ``NULL``, ``NA``, ``NaN``, ``nan``,
``N/A``, ``n/a`` (all in pandas' default NaN set).
"""

from __future__ import annotations

import importlib.util

import numpy as np

HAVE_NUMBA = importlib.util.find_spec("numba") is not None
FAST_MIN_BYTES = 4 << 20  # below this (compressed) size the general path is as fast as loading the kernel

class GiveUp(Exception):
    """The fast path met something it does not handle; use the general reader."""


def parse_table_stream(lb, marker: bytes, ncols: int, rows_hint: int = 0,
                       read_size: int = 1 << 20, dtype=np.float64) -> tuple[list[str], np.ndarray]:
    """Parse a series-matrix table body straight from the decompressor behind LineBuffer ``lb``.

    Decompresses block by block into one reusable buffer (``read_size``: a 1 MB block is parsed while still in
    the L2 cache, and its buffers fault in a quarter of the pages of 4 MB ones: ~4% less CPU per matrix),
    parses the complete lines of each block into one output array (sized by ``rows_hint``, e.g.
    ``!Sample_data_row_count``, grown if needed), and stops at the line starting with ``marker`` (consumed;
    bytes after it go back to ``lb``).  Few fresh
    allocations means few page faults, which cost as much as parsing on a busy machine.  Returns (probe
    IDs, probes x samples array of ``dtype``).  The array is a transposed view of a samples x probes buffer:
    the store keeps samples x probes, so its chunks are then copied from contiguous rows.  ``dtype=float32``
    rounds each parsed double to float32 as it is stored (the same value as casting the float64 array: IEEE
    round-to-nearest either way) and halves the matrix's memory; every number the kernel accepts is below
    1e38, so none becomes inf.  Raises :class:`GiveUp` when the fast path does not apply (the
    caller then uses the pyarrow path from the start of the file) and :class:`MissingMarker` when the
    file ends without ``marker``.
    """
    if not HAVE_NUMBA:
        raise GiveUp("numba not available")
    from genotex_dask.io._fastmatrix_kernels import _POW10, AT_BANG, FULL, OK, _parse_rows

    head = lb.take_buffered()
    work = bytearray(max(2 * read_size, len(head) + read_size))
    work[: len(head)] = head
    filled = len(head)
    idbuf = np.empty(len(work) + 1, dtype=np.uint8)
    out = np.empty((ncols, max(int(rows_hint), 1024)), dtype=dtype).T  # rows x samples, samples-major
    nrows = 0
    ids: list[str] = []
    at_end = False
    while True:
        if filled == len(work):  # one line longer than the buffer: grow it (up to the reader's line bound)
            if len(work) > 2 * getattr(lb, "max_line_bytes", 1 << 62):
                raise GiveUp("a line longer than MAX_LINE_BYTES")  # the general reader names it
            work.extend(bytes(len(work)))
            idbuf = np.empty(len(work) + 1, dtype=np.uint8)
        with memoryview(work) as mv:
            n = lb.readinto_raw(mv[filled:])
        if n == 0:
            at_end = True
            if filled and work[filled - 1] != 10:  # last line without a newline
                if filled == len(work):
                    work.append(10)
                else:
                    work[filled] = 10
                filled += 1
        filled += n
        cut = work.rfind(b"\n", 0, filled) + 1
        pos = 0  # the kernel parses the complete lines [pos, cut), stopping at a "!" line or a full `out`
        marker_at = -1
        while pos < cut:
            buf = np.frombuffer(work, dtype=np.uint8, count=cut - pos, offset=pos)
            rows, used, status, stop = _parse_rows(buf, ncols, out, nrows, idbuf, _POW10)
            del buf
            if status not in (OK, AT_BANG, FULL):
                raise GiveUp("unusual cell or row")
            if rows:
                try:
                    ids.extend(idbuf[: used - 1].tobytes().decode().split("\n"))
                except UnicodeDecodeError as exc:
                    raise GiveUp("non-UTF-8 probe ID") from exc
            nrows += rows
            pos += stop
            if status == FULL:  # more rows than the hint: grow by half
                grown = np.empty((ncols, out.shape[0] * 3 // 2 + 1024), dtype=dtype).T
                grown[:nrows] = out[:nrows]
                out = grown
            elif status == AT_BANG:
                if not work.startswith(marker, pos, cut):
                    raise GiveUp("a '!' line inside the table")
                marker_at = pos
                break
        if marker_at >= 0:
            rest = bytes(work[marker_at:filled])
            nl = rest.find(b"\n")
            lb.push_back(rest[nl + 1 :] if nl >= 0 else b"")
            break
        if at_end:
            raise MissingMarker(marker.decode())
        carry = filled - cut
        work[0:carry] = work[cut:filled]
        filled = carry
    return ids, out[:nrows] if nrows < out.shape[0] else out


class MissingMarker(Exception):
    """The stream ended before the table's end marker."""

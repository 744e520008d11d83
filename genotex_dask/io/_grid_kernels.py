"""numba kernel that reads a linked cohort CSV (sample id, then numbers, comma-separated) into a float64 grid.

Why our own: pyarrow's CSV reader builds one array per column, and a linked cohort is ~19,700 columns wide, so
its parse plus the copy into one matrix cost ~0.3 CPU-s on a 112 x 19,738 file (~130 ns per cell) and ~1.4 on a
1,220-sample one; this kernel walks the bytes once and writes the matrix row by row.  It takes only the plain
case and gives up on anything else (a quote, a carriage return, an empty line, a ragged row, a cell that is not a
decimal number inside the exact fast path, or not empty): the caller then reads the file with pyarrow, so a
value it returns is the nearest double to the cell's decimal (:func:`_parse_number`), as pyarrow's is.
"""

import numba
import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros

from genotex_dask.io._fastmatrix_kernels import _POW10, _load8, _parse_number, _plain_number

OK, GIVE_UP = 0, 1
POW10 = _POW10
_U = np.uint64
_LOW7 = _U(0x7F7F7F7F7F7F7F7F)
_HIGH = _U(0x8080808080808080)


@numba.njit(cache=True, nogil=True, inline="always")
def _bytes_equal(w, pattern):
    """0x80 in each byte of the word ``w`` that equals the byte repeated in ``pattern``, 0 elsewhere (exact)."""
    x = w ^ pattern
    return ~(((x & _LOW7) + _LOW7) | x) & _HIGH


@numba.njit(cache=True, nogil=True, inline="always")
def _skip_fields(buf, i, n, k):
    """From the start of a field at ``i``, pass the ends of up to ``k`` fields without reading their values, a
    word at a time: (position of the separator that ends the k-th field, or of the first newline or the buffer's
    end if sooner; fields ended; False at a quote or carriage return)."""
    done = 0
    while True:
        if i + 8 <= n:
            w = _load8(buf, i)
            if _bytes_equal(w, _U(0x2222222222222222)) | _bytes_equal(w, _U(0x0D0D0D0D0D0D0D0D)) == _U(0):
                nl = _bytes_equal(w, _U(0x0A0A0A0A0A0A0A0A))
                sep = _bytes_equal(w, _U(0x2C2C2C2C2C2C2C2C)) | nl
                count = np.int64(((sep >> _U(7)) * _U(0x0101010101010101)) >> _U(56))  # flagged bytes
                if nl == _U(0) and done + count < k:  # the usual case: the whole word is passed, no branch per field
                    done += count
                    i += 8
                    continue
                while sep != _U(0):
                    p = np.int64(trailing_zeros(sep)) >> 3
                    done += 1
                    if done == k or (nl >> _U(8 * p)) & _U(0x80) != _U(0):
                        return i + p, done, True
                    sep &= sep - _U(1)
                i += 8
                continue
        if i >= n:
            return n, done + 1, True
        c = buf[i]
        if c == 34 or c == 13:
            return i, done, False
        if c == 44 or c == 10:
            done += 1
            if done == k or c == 10:
                return i, done, True
        i += 1


@numba.njit(cache=True, nogil=True)
def parse_grid(buf, start, ncols, colmap, run, out, bounds, pow10):
    """Rows of ``buf`` from ``start``: field 0 is the id (its byte range goes to ``bounds[row]``), field f >= 1
    goes to ``out[row, colmap[f]]`` (skipped where colmap[f] < 0, ``run[f]`` such fields in a row from f, passed
    together; an empty cell is NaN).  Every row must have ``ncols`` fields.  Returns (status, rows).  A cell like
    ``35.3033`` (the dot among its first 8 characters, up to 15) is read a word at a time by the series-matrix
    reader's :func:`_plain_number`; others by the general number parser; both are exact."""
    n = buf.shape[0]
    last = ncols - 1
    i = start
    row = 0
    while i < n:
        if row >= out.shape[0]:
            return GIVE_UP, row
        s = i
        while i < n:
            c = buf[i]
            if c == 44 or c == 10:
                break
            if c == 34 or c == 13:
                return GIVE_UP, row
            i += 1
        if i >= n or buf[i] == 10:  # one field only (or an empty line)
            return GIVE_UP, row
        bounds[row, 0] = s
        bounds[row, 1] = i
        i += 1
        f = 1
        while True:
            j = colmap[f]
            if j >= 0 and i + 17 <= n:  # a plain cell, a word at a time (the separator included in ``used``)
                neg = np.int64(buf[i] == 45)
                v, used = _plain_number(buf, i + neg, 10 if f == last else 44, pow10)
                if used:
                    out[row, j] = -v if neg else v
                    i += neg + used - 1  # at the separator, as the general path leaves it
                    j = -2
            if j >= 0:
                if i < n and buf[i] != 44 and buf[i] != 10:
                    v, e, ok = _parse_number(buf, i, n, pow10)
                    if not ok:
                        return GIVE_UP, row
                    i = e
                    if i < n and buf[i] != 44 and buf[i] != 10:  # more after the number
                        return GIVE_UP, row
                    out[row, j] = v
                else:
                    out[row, j] = np.nan
            elif j == -1:
                i, done, ok = _skip_fields(buf, i, n, run[f])
                if not ok:
                    return GIVE_UP, row
                f += done - 1
            f += 1
            if i >= n or buf[i] == 10:
                break
            if f >= ncols:  # more fields than the header
                return GIVE_UP, row
            i += 1
        if f != ncols:
            return GIVE_UP, row
        row += 1
        i += 1
    return OK, row

"""Fast, streaming, atomic CSV output of labelled float matrices (GenoTEX's gene/clinical/linked CSVs).

Formatting floats is the bottleneck of writing a 19k-gene cohort: pandas, numpy and pyarrow all spend
0.3-2 us per value here (a 167 x 19,851 linked frame is 3.3 M values).  We format with small numba kernels:
``sig`` significant digits (7 for float32 stores, which is all a float32 holds; 15 for float64), trailing zeros
trimmed, fixed notation for exponents -5..15 and scientific outside, NaN as an empty cell (as pandas writes it).
Digits come from one float64 product, so with 15 digits the last one can be off by one from correct rounding
(1e-15 relative); with 7 they match Python's ``format(v, ".7g")`` (tests/test_csv_out.py).  Float32 values at 7
digits (the default store) have their own kernel, same text at ~10 instead of 36 ns per value.

A cohort's gene values appear twice: in ``gene_data`` (genes x samples) and, after filtering and imputation, in
the linked CSV (samples x genes).  ``write_matrix_csv(..., keep_cells=True)`` writes gene_data and keeps where
each value's text sits; :func:`fill_cells` adds the text of the imputed values, and :func:`write_token_csv`
assembles the linked CSV by copying bytes (transposed, tile by tile, any row/column subset).

Rows are streamed in blocks to a temporary sibling that is renamed into place, so memory stays bounded and a
killed task never leaves a half-written CSV under its final name.  A large file (gene_data, the linked CSV) can be
written past the page cache (:func:`write_local_file`).  The large text buffers are reused by the
worker thread's next cohort (:mod:`genotex_dask.io.thread_buffers`).
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import leading_zeros

from genotex_dask.io import filewrite, fs
from genotex_dask.io.thread_buffers import give as _give
from genotex_dask.io.thread_buffers import take as _take

_ROW_BLOCK = 64
_TILE = 256  # output rows per transposed copy
_P10 = np.array([float(f"1e{k}") for k in range(-350, 351)])
_NO_INT = np.zeros(0, np.int64)
_NO_LEN = np.zeros(0, np.uint8)
_NO_TEXT = np.frombuffer(b"", dtype=np.uint8)  # read-only like the labels' bytes: one kernel signature for both

# Unsigned constants: numba promotes int64 op uint64 to float64, so a literal 10 or 48 beside the uint64 mantissa
# turned every digit into float arithmetic and an int conversion (~22% of the formatting time).
_U0, _U1, _U5, _U10, _U48 = (np.uint64(k) for k in (0, 1, 5, 10, 48))
_u64 = np.uint64


@njit(cache=True, nogil=True, inline="always")
def _fmt_value(v, sig, lim, round32, out, pos, p10):  # pragma: no cover - compiled
    """Write one value at ``out[pos:]`` (nothing for NaN/inf); returns the new position.  Digits are written
    straight to their places, right to left, from the mantissa ``m`` (``sig`` digits, trailing zeros dropped)."""
    if round32:
        v = float(np.float32(v))
    if not np.isfinite(v):
        return pos
    if v == 0.0:
        out[pos] = 48
        return pos + 1
    if v < 0:
        out[pos] = 45
        pos += 1
        v = -v
    _, e2 = math.frexp(v)
    e = int(math.floor((e2 - 1) * 0.30102999566398120))
    if e + 351 < p10.shape[0] and v >= p10[e + 351]:
        e += 1
    elif e + 350 >= 0 and v < p10[e + 350]:
        e -= 1
    k = sig - 1 - e
    x = v * p10[k + 350] if k < 300 else v * 1e100 * p10[k - 100 + 350]
    m = np.uint64(x)
    frac = x - float(m)
    if frac > 0.5 or (frac == 0.5 and (m & _U1) == _U1):  # exact ties to even, as Python's format()
        m += _U1
    if m >= lim:
        e += 1
        m = (m + _U5) // _U10
    s = sig
    while s > 1 and m % _U10 == _U0:
        m //= _U10
        s -= 1
    if -5 <= e < 16:
        if e >= 0:
            if s <= e + 1:  # an integer: the digits, then zeros
                for i in range(s - 1, -1, -1):
                    out[pos + i] = np.uint8(_U48 + m % _U10)
                    m //= _U10
                for i in range(s, e + 1):
                    out[pos + i] = 48
                return pos + e + 1
            for i in range(s - 1, e, -1):  # digits after the point sit one byte further right
                out[pos + i + 1] = np.uint8(_U48 + m % _U10)
                m //= _U10
            out[pos + e + 1] = 46
            for i in range(e, -1, -1):
                out[pos + i] = np.uint8(_U48 + m % _U10)
                m //= _U10
            return pos + s + 1
        z = -e - 1  # 0.000ddd
        out[pos] = 48
        out[pos + 1] = 46
        for i in range(z):
            out[pos + 2 + i] = 48
        pos += 2 + z
        for i in range(s - 1, -1, -1):
            out[pos + i] = np.uint8(_U48 + m % _U10)
            m //= _U10
        return pos + s
    if s > 1:  # d.ddde+XX
        for i in range(s - 1, 0, -1):
            out[pos + 1 + i] = np.uint8(_U48 + m % _U10)
            m //= _U10
        out[pos + 1] = 46
        out[pos] = np.uint8(_U48 + m)
        pos += s + 1
    else:
        out[pos] = np.uint8(_U48 + m)
        pos += 1
    out[pos] = 101  # 'e'
    if e < 0:
        out[pos + 1] = 45
        e = -e
    else:
        out[pos + 1] = 43
    pos += 2
    if e >= 100:
        out[pos] = 48 + e // 100
        pos += 1
    out[pos] = 48 + (e // 10) % 10
    out[pos + 1] = 48 + e % 10
    return pos + 2


@njit(cache=True, nogil=True)
def _lim(sig):  # pragma: no cover - compiled
    lim = np.uint64(1)
    for _ in range(sig):
        lim *= np.uint64(10)
    return lim


@njit(cache=True, nogil=True)
def _rows_kernel(vals, labels, label_off, sig, round32, out, p10, start, ln):  # pragma: no cover - compiled
    """``label,v,v,...\n`` for every row of ``vals``; when ``start`` is not empty, cell (r, c)'s text is
    recorded as ``out[start[k]:start[k] + ln[k]]`` with ``k = r * n_cols + c``."""
    lim = _lim(sig)
    record = start.shape[0] > 0
    n_c = vals.shape[1]
    pos = 0
    for r in range(vals.shape[0]):
        for k in range(label_off[r], label_off[r + 1]):
            out[pos] = labels[k]
            pos += 1
        for c in range(n_c):
            out[pos] = 44  # ','
            a = pos + 1
            pos = _fmt_value(vals[r, c], sig, lim, round32, out, a, p10)
            if record:
                start[r * n_c + c] = a
                ln[r * n_c + c] = pos - a
        out[pos] = 10
        pos += 1
    return pos


# ---- float32 values at 7 digits (the default float32 store): the common case, without a digit loop -----------

_F32_E10 = np.array([math.floor((b - 127) * 0.30102999566398120) for b in range(256)], np.int64)
_LANE7 = np.uint64(0x0000007F0000007F)
_LANE15 = np.uint64(0x000F000F000F000F)
_ASCII7 = np.uint64(0x0030303030303030)
_ZERO_POINT = np.uint64(0x3030303030302E30)  # "0.000000" as a little-endian word


@njit(cache=True, nogil=True, inline="always")
def _digits7(n):  # pragma: no cover - compiled
    """The 7 decimal digits of ``n`` (1e6 <= n < 1e7) as byte values 0-9 in bytes 0..6 of a word, most
    significant first (byte 7 zero): both 4-digit halves are split into pairs, then digits, in parallel lanes
    by multiply-shift division (exact for these ranges), so no per-digit divide or loop."""
    a = n // np.uint64(10000)
    x = a | ((n - a * np.uint64(10000)) << np.uint64(32))
    y = ((x * np.uint64(10486)) >> np.uint64(20)) & _LANE7          # lane // 100 for lanes < 10,000
    x = y | ((x - y * np.uint64(100)) << np.uint64(16))
    z = ((x * np.uint64(103)) >> np.uint64(10)) & _LANE15           # lane // 10 for lanes < 100
    x = z | ((x - z * np.uint64(10)) << np.uint64(8))
    return x >> np.uint64(8)  # the 8-digit form's leading zero dropped


@njit(cache=True, nogil=True, inline="always")
def _store8(out, pos, w):  # pragma: no cover - compiled
    """``out[pos:pos + 8]`` = the little-endian bytes of ``w``.  The index is unsigned (``pos`` >= 0): with a
    signed one numba adds a negative-index wrap-around per byte and LLVM keeps eight byte stores instead of
    merging them into one 8-byte store (15% of :func:`_rows32_kernel`)."""
    k = np.uint64(pos)
    for i in range(8):
        out[k + np.uint64(i)] = np.uint8((w >> np.uint64(8 * i)) & np.uint64(0xFF))


@njit(cache=True, nogil=True)
def _fmt_value_any(v, sig, lim, round32, out, pos, p10):  # pragma: no cover - compiled
    """:func:`_fmt_value` as a called (not inlined) function: the rare cases of :func:`_rows32_kernel`."""
    return _fmt_value(v, sig, lim, round32, out, pos, p10)


@njit(cache=True, nogil=True)
def _rows32_kernel(vals, labels, label_off, out, p10, e10, start, ln):  # pragma: no cover - compiled
    """:func:`_rows_kernel` for ``sig=7, round32``, same text.  Each row is rounded to float32 once into a
    scratch row whose bit pattern gives the binary exponent.  For 1e-5 <= |v| < 1e7 (expression data) the
    digits come from ``rint`` of the same float64 product as the general path (round half to even, which that
    path tests explicitly), the 7 digits from :func:`_digits7`, the digit count from the word's leading zeros,
    and the text (the point inserted by a shift) is stored as one or two 8-byte words that may spill up to 8
    bytes past the value (overwritten by what follows: ``out`` needs 8 spare bytes).  Anything else, and a
    value rounding up to 1e7, goes through :func:`_fmt_value`.  (Written out in the loop: the same steps as
    an inlined helper with early returns ran at half the speed.)"""
    lim = _lim(7)
    record = start.shape[0] > 0
    n_c = vals.shape[1]
    row = np.empty(n_c, np.float32)
    bits = row.view(np.uint32)
    pos = 0
    for r in range(vals.shape[0]):
        for c in range(n_c):
            row[c] = np.float32(vals[r, c])
        for k in range(label_off[r], label_off[r + 1]):
            out[pos] = labels[k]
            pos += 1
        for c in range(n_c):
            out[np.uint64(pos)] = 44  # ',' (unsigned indices here: no wrap-around test, see _store8)
            a0 = pos + 1
            v = float(row[c])
            a = abs(v)
            if a >= 1e-5 and a < 9999999.5:  # NaN fails
                out[np.uint64(a0)] = 45  # '-', kept only for a negative value
                p0 = a0 + np.int64(v < 0)
                # floor(log10(2 ** exponent)) is the decimal exponent or one less (never more: no power of two
                # is a power of ten, or within a float64 rounding of one, in float32's range but 1)
                e = e10[(bits[c] >> np.uint32(23)) & np.uint32(0xFF)]
                e += np.int64(a >= p10[np.uint64(e + 351)])  # -5 <= e <= 6 here
                m = np.int64(np.rint(a * p10[np.uint64(356 - e)]))
                if m >= 10000000:
                    e += 1
                    m = (m + 5) // 10
                d = _digits7(np.uint64(m))
                s = (71 - leading_zeros(d)) >> 3  # significant digits: trailing zeros are zero bytes on top
                w = d + _ASCII7
                if e < 0:  # 0.000ddd
                    _store8(out, p0, _ZERO_POINT)
                    p0 += 1 - e
                    _store8(out, p0, w)
                    pos = p0 + s
                elif e <= 6:
                    p = e + 1  # digits before the point
                    sh = np.uint64(8 * p)
                    low = (np.uint64(1) << sh) - np.uint64(1)
                    pointed = (w & low) | (np.uint64(0x2E) << sh) | ((w & ~low) << np.uint64(8))
                    frac = s > p  # else an integer
                    _store8(out, p0, pointed if frac else w)
                    pos = p0 + (s + 1 if frac else p)
                else:
                    pos = _fmt_value_any(v, 7, lim, False, out, a0, p10)
            else:
                pos = _fmt_value_any(v, 7, lim, False, out, a0, p10)
            if record:
                start[np.uint64(r * n_c + c)] = a0
                ln[np.uint64(r * n_c + c)] = pos - a0
        out[pos] = 10
        pos += 1
    return pos


def _format_into(vals, labels, label_off, sig, round32, out, start, ln) -> int:
    """Rows of ``vals`` as CSV text into ``out`` (the float32 7-digit kernel when it applies)."""
    if round32 and sig == 7:
        return _rows32_kernel(vals, labels, label_off, out, _P10, _F32_E10, start, ln)
    return _rows_kernel(vals, labels, label_off, int(sig), bool(round32), out, _P10, start, ln)


@njit(cache=True, nogil=True, inline="always")
def _load8(buf, i):  # pragma: no cover - compiled
    """``buf[i:i + 8]`` as a little-endian word (unsigned indices: LLVM merges the byte loads into one)."""
    k = np.uint64(i)
    return (_u64(buf[k]) | (_u64(buf[k + _U1]) << _u64(8)) | (_u64(buf[k + _u64(2)]) << _u64(16))
            | (_u64(buf[k + _u64(3)]) << _u64(24)) | (_u64(buf[k + _u64(4)]) << _u64(32))
            | (_u64(buf[k + _U5]) << _u64(40)) | (_u64(buf[k + _u64(6)]) << _u64(48))
            | (_u64(buf[k + _u64(7)]) << _u64(56)))


@njit(cache=True, nogil=True)
def _gather_kernel(buf, start, ln, n_cols, rows, cols, labels, label_off, out):  # pragma: no cover - compiled
    """CSV rows copied from a formatted table: output cell (i, j) is cell (rows[i], cols[j]).  Cells are
    copied as :func:`_gather_t_kernel` does."""
    pos = 0
    nb = buf.shape[0]
    room = out.shape[0] - 9
    for i in range(rows.shape[0]):
        for k in range(label_off[i], label_off[i + 1]):
            out[pos] = labels[k]
            pos += 1
        base = rows[i] * n_cols
        for j in range(cols.shape[0]):
            t = base + cols[j]
            n = np.int64(ln[t])
            a = start[t]
            out[pos] = 44
            if n <= 8 and pos <= room and a + 8 <= nb:
                _store8(out, pos + 1, _load8(buf, a))
            else:
                for k in range(n):
                    out[pos + 1 + k] = buf[a + k]
            pos += 1 + n
        out[pos] = 10
        pos += 1
    return pos


@njit(cache=True, nogil=True)
def _fill_kernel(buf, used, start, ln, n_cols, rows, cols, values, sig, round32, p10):  # pragma: no cover
    """Format ``values[i, j]`` into the table's empty cell (rows[i], cols[j]), appended after ``used``.  A row
    of the table with no empty cell at all (most: gaps are rare) is passed after one contiguous scan of its
    lengths, without the per-cell lookups through ``cols``."""
    lim = _lim(sig)
    pos = used
    for i in range(rows.shape[0]):
        base = rows[i] * n_cols
        empty = 0
        for k in range(base, base + n_cols):
            empty += np.int64(ln[k] == 0)
        if empty == 0:
            continue
        for j in range(cols.shape[0]):
            t = base + cols[j]
            if ln[t] == 0:
                end = _fmt_value(values[i, j], sig, lim, round32, buf, pos, p10)
                start[t] = pos
                ln[t] = end - pos
                pos = end
    return pos


@njit(cache=True, nogil=True)
def _gather_t_kernel(buf, start, ln, n_cols, rows, cols, labels, label_off, out):  # pragma: no cover - compiled
    """Transposed copy, tile-wise: output (i, j) = cell (cols[j], rows[i]).  Row lengths are summed first from
    ``ln``, then the cells are copied source row by source row, so reads run along the table instead of
    jumping a whole source row per cell (the simple kernel's cache misses cost more than formatting).

    Cells are short (a float32 is at most 9 bytes at 7 digits, mostly 5-9): when 8 bytes can be read from
    ``buf`` and the output row has room before its newline, 8 are copied whatever the cell's length, as one
    word load and one word store (no loop exit to mispredict; the bytes past the cell are overwritten by what
    follows).  Written out here: the same copy as an inlined helper taking the room as an argument compiled to
    code 7x slower, and byte by byte with signed indices it cost twice as much."""
    n_r = rows.shape[0]
    cur = np.empty(n_r, np.int64)
    for i in range(n_r):
        cur[i] = label_off[i + 1] - label_off[i] + 1
    for j in range(cols.shape[0]):
        base = cols[j] * n_cols
        for i in range(n_r):
            cur[i] += 1 + ln[base + rows[i]]
    total = 0
    for i in range(n_r):
        n = cur[i]
        cur[i] = total
        total += n
    end = np.empty(n_r, np.int64)  # where each output row's newline goes: nothing may be written past it
    for i in range(n_r):
        end[i] = (cur[i + 1] if i + 1 < n_r else total) - 1
        p = cur[i]
        for k in range(label_off[i], label_off[i + 1]):
            out[p] = labels[k]
            p += 1
        cur[i] = p
    nb = buf.shape[0]
    for j in range(cols.shape[0]):
        base = cols[j] * n_cols
        for i in range(n_r):
            t = base + rows[i]
            p = cur[i]
            n = np.int64(ln[t])
            a = start[t]
            out[p] = 44
            if n <= 8 and p + 9 <= end[i] and a + 8 <= nb:
                _store8(out, p + 1, _load8(buf, a))
            else:
                for k in range(n):
                    out[p + 1 + k] = buf[a + k]
            cur[i] = p + 1 + n
    for i in range(n_r):
        out[cur[i]] = 10
    return total


def quote(s: str) -> str:
    """A CSV field as written here (quoted only when needed)."""
    # four substring tests in C: called once per row label (20k gene symbols per file)
    if "," in s or '"' in s or "\n" in s or "\r" in s:
        return '"' + s.replace('"', '""') + '"'
    return s


def _quoted(labels: Sequence[str]) -> list[str]:
    """Labels as CSV fields; one scan of the joined text decides whether any of 20k symbols needs quoting.
    Labels that are all str (the usual case) are joined as they are: ``join`` itself refuses anything else,
    which spares a per-label type check."""
    try:
        joined = "\x00".join(labels)
        labels = labels if isinstance(labels, list) else list(labels)
    except TypeError:  # a label that is not a str (a number, None): its str() is the field
        labels = [x if isinstance(x, str) else str(x) for x in labels]
        joined = "\x00".join(labels)
    if "," in joined or '"' in joined or "\n" in joined or "\r" in joined:
        return [quote(x) for x in labels]
    return labels


def _label_bytes(labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    return _prefix_bytes(_quoted(labels))


def _prefix_bytes(prefixes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated UTF-8 bytes of the prefixes and their offsets (ASCII text: lengths without encoding each)."""
    joined = "".join(prefixes)
    off = np.zeros(len(prefixes) + 1, np.int64)
    if joined.isascii():
        off[1:] = np.cumsum(np.fromiter(map(len, prefixes), np.int64, len(prefixes)))
        data = joined.encode()
    else:
        enc = [p.encode() for p in prefixes]
        off[1:] = np.cumsum([len(e) for e in enc])
        data = b"".join(enc)
    return (np.frombuffer(data, dtype=np.uint8) if off[-1] else _NO_TEXT), off


def _width(sig: int) -> int:
    return max(sig, 16) + 10  # sign, point, 16 integer digits (fixed notation up to 1e16), "e-308"


def format_rows(values: np.ndarray, labels: Sequence[str], sig: int, round32: bool = False) -> bytes:
    """CSV text (bytes) of rows ``label,v1,v2,...`` for a block of rows."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    buf, off = _label_bytes(labels)
    out = np.empty(int(off[-1]) + values.size * (_width(sig) + 1) + len(labels) + 16, dtype=np.uint8)
    n = _format_into(values, buf, off, sig, round32, out, _NO_INT, _NO_LEN)
    return out[:n].tobytes()


@dataclass
class Cells:
    """A formatted matrix: cell (r, c)'s text is ``buf[start[k]:start[k] + ln[k]]``, ``k = r * n_cols + c``
    (empty for NaN).  ``buf`` has spare room after ``used`` for cells filled in later (:func:`fill_cells`)."""

    buf: np.ndarray
    used: int
    start: np.ndarray
    ln: np.ndarray
    n_rows: int
    n_cols: int
    sig: int
    round32: bool

    def release(self) -> None:
        """Hand the buffers back for the thread's next cohort; the Cells must not be used afterwards."""
        for role, buf in (("text", self.buf), ("start", self.start), ("len", self.ln)):
            _give(role, buf)
        self.buf, self.start, self.ln = _NO_LEN, _NO_INT, _NO_LEN
        self.used = self.n_rows = self.n_cols = 0


def write_local_file(path: str, chunks: Iterable[bytes], direct: bool) -> None:
    """Write the chunks to a new file ``path``; with ``direct``, past the page cache
    (:func:`genotex_dask.io.filewrite.write_file_direct`; a file under one ``DIRECT_BLOCK`` buffered: not worth
    the device wait).

    Why: copying a cohort's gene_data or linked CSV (26 MB each for 20k genes x 167 samples) into new page-cache
    pages was the preprocess task's most variable cost: 5-8 CPU-ms where the kernel recycles recently freed
    pages, 50-66 ms where it hands out pages the VM has not touched lately (measured on the project's 2-core VM,
    issue 12).  Unbuffered, the device reads the blocks from a small aligned buffer the thread keeps (one
    user-space copy, ~2 ms); the write waits for the device instead (~10 ms wall for 26 MB here).  gene_data is
    not read again by the engine; the analysis reads a linked CSV back from disk for ~3 CPU-ms more than from the
    page cache (at full scale the linked files outgrow the page cache anyway)."""
    if direct:
        filewrite.write_file_direct(path, chunks, buffered_below=filewrite.DIRECT_BLOCK)
        return
    with open(path, "wb") as f:
        for b in chunks:
            f.write(b)


def _atomic_stream(url: str, chunks: Iterable[bytes], direct: bool = False) -> None:
    """Write the byte chunks to ``url`` through a temporary sibling renamed into place (``direct``: unbuffered
    blocks on a local file system, see :func:`write_local_file`)."""
    if fs.is_local(url):
        _, path = fs.get_fs(url)
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        tmp = os.path.join(parent, f"{fs.TMP_MARK}{uuid.uuid4().hex}-{os.path.basename(path)}")
        try:
            write_local_file(tmp, chunks, direct)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    else:  # each chunk copied as it comes: a chunk's buffer may be reused for the next one
        fs.write_bytes_atomic(url, b"".join(bytes(b) for b in chunks))


def _header(index_label: str, columns: Sequence[str]) -> bytes:
    return (",".join([quote(index_label), *_quoted(columns)]) + "\n").encode()


def write_matrix_csv(url: str, index_label: str, row_labels: Sequence[str], columns: Sequence[str],
                     values: np.ndarray, sig: int = 7, round32: bool = False, keep_cells: bool = False,
                     direct: bool = False) -> Cells | None:
    """Write ``values`` (rows x columns) as CSV with a header, atomically, streaming row blocks.

    With ``keep_cells`` the text is built whole in memory, written, and returned as :class:`Cells` (where each
    value's text sits), so a CSV of the same values in another shape is assembled by copying bytes; its
    ``release()`` lets the thread's next cohort reuse the buffers.  ``direct``: written past the page cache
    (:func:`write_local_file`), for a large file nothing reads soon.
    """
    n = values.shape[0]
    if not keep_cells:
        blocks = (format_rows(values[i:i + _ROW_BLOCK], row_labels[i:i + _ROW_BLOCK], sig, round32)
                  for i in range(0, n, _ROW_BLOCK))
        _atomic_stream(url, _chain(_header(index_label, columns), blocks), direct)
        return None
    if values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float64)
    lab, loff = _label_bytes(row_labels)
    # pages past what is used are never touched, so the generous size costs address space, not memory
    buf = _take("text", int(loff[-1]) + values.size * (_width(sig) + 1) + n + 16, np.uint8)
    start = _take("start", values.size, np.int64)
    ln = _take("len", values.size, np.uint8)
    used = _format_into(values, lab, loff, sig, round32, buf, start, ln)
    step = 1 << 24
    _atomic_stream(url, _chain(_header(index_label, columns),
                               (memoryview(buf[i:min(used, i + step)]) for i in range(0, used, step))), direct)
    return Cells(buf, int(used), start, ln, values.shape[0], values.shape[1], int(sig), bool(round32))


def fill_cells(cells: Cells, rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> None:
    """Give the empty cells among (rows[i], cols[j]) the text of ``values[i, j]`` (e.g. imputed gene values),
    in place; the other cells keep their text."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    cols = np.ascontiguousarray(cols, dtype=np.int64)
    cells.used = int(_fill_kernel(cells.buf, cells.used, cells.start, cells.ln, cells.n_cols, rows, cols, values,
                                  cells.sig, cells.round32, _P10))


def _chain(first: bytes, rest: Iterable[bytes]) -> Iterable[bytes]:
    yield first
    yield from rest


def write_token_csv(url: str, index_label: str, row_prefixes: Sequence[str], columns: Sequence[str], cells: Cells,
                    rows: np.ndarray, cols: np.ndarray, transpose: bool = False, direct: bool = False) -> None:
    """CSV whose value cells are copied from ``cells``: output (i, j) = cell (rows[i], cols[j]), or
    (cols[j], rows[i]) with ``transpose`` (copied tile by tile).  ``row_prefixes[i]`` is written verbatim
    before the values: the quoted row label, possibly followed by columns formatted elsewhere.  ``direct``: past
    the page cache (:func:`write_local_file`)."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    cols = np.ascontiguousarray(cols, dtype=np.int64)
    step = _TILE if transpose else _ROW_BLOCK
    width = _width(cells.sig) + 1

    def blocks():
        for i in range(0, len(rows), step):
            r = rows[i:i + step]
            lab, loff = _prefix_bytes(row_prefixes[i:i + step])
            out = _take("gather", int(loff[-1]) + len(r) * (len(cols) * width + 1) + 16, np.uint8)
            kernel = _gather_t_kernel if transpose else _gather_kernel
            n = kernel(cells.buf, cells.start, cells.ln, cells.n_cols, r, cols, lab, loff, out)
            yield memoryview(out[:n])  # written from the kernel's buffer: no 30 MB bytes copy
            _give("gather", out)  # written: the next block (or cohort) reuses it

    _atomic_stream(url, _chain(_header(index_label, columns), blocks()), direct)


def warm_up() -> None:
    """Compile (or load the cached) kernels once, outside any timed region, with the argument types the
    engine passes: numba compiles (or loads) one signature per array layout, so gene_data's values come as a
    transposed (Fortran-ordered) view and the linked CSV's clinical rows with empty labels, as in finalize."""
    import tempfile

    v = np.array([[1.5, np.nan, -2e-7, 3e20], [0.25, 7.0, 1e-3, -4.5]])
    format_rows(v, ["x", "y"], 7)
    format_rows(v, ["", ""], 15)
    with tempfile.TemporaryDirectory() as d:
        for sig, round32 in ((7, True), (15, False)):  # float32 and float64 stores
            c = write_matrix_csv(os.path.join(d, "m.csv"), "", ["x"] * 4, ["a", "b"], v.T, sig, round32,
                                 keep_cells=True)
            fill_cells(c, np.arange(4), np.arange(2), np.ones((2, 4)).T)  # a transposed view, as finalize passes
            write_token_csv(os.path.join(d, "t.csv"), "", ["x", "y"], ["a"] * 4, c, np.arange(2), np.arange(4),
                            True)
            write_token_csv(os.path.join(d, "w.csv"), "", ["x"] * 4, ["a", "b"], c, np.arange(4), np.arange(2))

"""Fast, streaming, atomic CSV output of labelled float matrices (GenoTEX's gene/clinical/linked CSVs).

Formatting floats is the bottleneck of writing a 19k-gene cohort: pandas, numpy and pyarrow all spend
0.3-2 us per value here (a 167 x 19,851 linked frame is 3.3 M values).  We format with small numba kernels:
``sig`` significant digits (7 for float32 stores, which is all a float32 holds; 15 for float64), trailing zeros
trimmed, fixed notation for exponents -5..15 and scientific outside, NaN as an empty cell (as pandas writes it).
Digits come from one float64 product, so with 15 digits the last one can be off by one from correct rounding
(1e-15 relative); with 7 they match Python's ``format(v, ".7g")`` (tests/test_csv_out.py).

A cohort's gene values appear twice: in ``gene_data`` (genes x samples) and, after filtering and imputation, in
the linked CSV (samples x genes).  :func:`format_cells` formats each value once into a token table, and
:func:`write_token_csv` assembles either file from it by copying bytes (transposed or not, any row/column
subset), formatting only the cells the table leaves empty (imputed values).

Rows are streamed in blocks to a temporary sibling that is renamed into place, so memory stays bounded and a
killed task never leaves a half-written CSV under its final name.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit

from genotex_dask.io import fs

_ROW_BLOCK = 64
_P10 = np.array([float(f"1e{k}") for k in range(-350, 351)])


@njit(cache=True, nogil=True, inline="always")
def _fmt_value(v, sig, lim, round32, out, pos, p10, digs):  # pragma: no cover - compiled
    """Write one value at ``out[pos:]`` (nothing for NaN/inf); returns the new position."""
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
    if k < 300:
        m = np.uint64(v * p10[k + 350] + 0.5)
    else:
        m = np.uint64(v * 1e100 * p10[k - 100 + 350] + 0.5)
    if m >= lim:
        e += 1
        m = (m + np.uint64(5)) // np.uint64(10)
    s = sig
    while s > 1 and m % np.uint64(10) == 0:
        m //= np.uint64(10)
        s -= 1
    for i in range(s - 1, -1, -1):
        digs[i] = np.uint8(48 + m % np.uint64(10))
        m //= np.uint64(10)
    if -5 <= e < 16:
        if e >= 0:
            if s <= e + 1:
                for i in range(s):
                    out[pos + i] = digs[i]
                for i in range(s, e + 1):
                    out[pos + i] = 48
                return pos + e + 1
            for i in range(e + 1):
                out[pos + i] = digs[i]
            out[pos + e + 1] = 46
            for i in range(e + 1, s):
                out[pos + i + 1] = digs[i]
            return pos + s + 1
        out[pos] = 48
        out[pos + 1] = 46
        pos += 2
        for _ in range(-e - 1):
            out[pos] = 48
            pos += 1
        for i in range(s):
            out[pos + i] = digs[i]
        return pos + s
    out[pos] = digs[0]
    pos += 1
    if s > 1:
        out[pos] = 46
        pos += 1
        for i in range(1, s):
            out[pos] = digs[i]
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
def _rows_kernel(vals, labels, label_off, sig, round32, out, p10):  # pragma: no cover - compiled
    """``label,v,v,...\\n`` for every row of ``vals``."""
    digs = np.empty(24, np.uint8)
    lim = _lim(sig)
    pos = 0
    for r in range(vals.shape[0]):
        for k in range(label_off[r], label_off[r + 1]):
            out[pos] = labels[k]
            pos += 1
        for c in range(vals.shape[1]):
            out[pos] = 44  # ','
            pos = _fmt_value(vals[r, c], sig, lim, round32, out, pos + 1, p10, digs)
        out[pos] = 10
        pos += 1
    return pos


@njit(cache=True, nogil=True)
def _cells_kernel(vals, sig, round32, buf, off, p10):  # pragma: no cover - compiled
    """Every cell's text, back to back in ``buf``; cell (r, c) is ``buf[off[r*C+c]:off[r*C+c+1]]``."""
    digs = np.empty(24, np.uint8)
    lim = _lim(sig)
    pos = 0
    n_c = vals.shape[1]
    for r in range(vals.shape[0]):
        for c in range(n_c):
            off[r * n_c + c] = pos
            pos = _fmt_value(vals[r, c], sig, lim, round32, buf, pos, p10, digs)
    off[vals.shape[0] * n_c] = pos
    return pos


@njit(cache=True, nogil=True)
def _gather_kernel(buf, off, n_cols, rows, cols, transpose, fill, sig, round32, labels, label_off, out,
                   p10):  # pragma: no cover - compiled
    """CSV rows from a token table: output cell (i, j) is source cell (rows[i], cols[j]) (or (cols[j], rows[i])
    when ``transpose``); an empty token is replaced by ``fill[i, j]`` formatted, when ``fill`` has that cell."""
    digs = np.empty(24, np.uint8)
    lim = _lim(sig)
    pos = 0
    has_fill = fill.shape[0] > 0
    for i in range(rows.shape[0]):
        for k in range(label_off[i], label_off[i + 1]):
            out[pos] = labels[k]
            pos += 1
        for j in range(cols.shape[0]):
            out[pos] = 44
            pos += 1
            t = cols[j] * n_cols + rows[i] if transpose else rows[i] * n_cols + cols[j]
            a = off[t]
            b = off[t + 1]
            if a == b:
                if has_fill:
                    pos = _fmt_value(fill[i, j], sig, lim, round32, out, pos, p10, digs)
                continue
            for k in range(a, b):
                out[pos + k - a] = buf[k]
            pos += b - a
        out[pos] = 10
        pos += 1
    return pos


def _quote(s: str) -> str:
    # four substring tests in C: called once per row label (20k gene symbols per file)
    if "," in s or '"' in s or "\n" in s or "\r" in s:
        return '"' + s.replace('"', '""') + '"'
    return s


def _label_bytes(labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    lab = [_quote(str(x)).encode() for x in labels]
    off = np.zeros(len(lab) + 1, np.int64)
    off[1:] = np.cumsum([len(x) for x in lab])
    buf = np.frombuffer(b"".join(lab), dtype=np.uint8) if off[-1] else np.zeros(0, np.uint8)
    return buf, off


def _width(sig: int) -> int:
    return max(sig, 16) + 10  # sign, point, 16 integer digits (fixed notation up to 1e16), "e-308"


def format_rows(values: np.ndarray, labels: Sequence[str], sig: int, round32: bool = False) -> bytes:
    """CSV text (bytes) of rows ``label,v1,v2,...`` for a block of rows."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    buf, off = _label_bytes(labels)
    out = np.empty(int(off[-1]) + values.size * (_width(sig) + 1) + len(labels) + 16, dtype=np.uint8)
    n = _rows_kernel(values, buf, off, int(sig), bool(round32), out, _P10)
    return out[:n].tobytes()


@dataclass
class Cells:
    """A matrix formatted once: cell (r, c)'s text is ``buf[off[r * n_cols + c]:off[r * n_cols + c + 1]]``."""

    buf: np.ndarray
    off: np.ndarray
    n_rows: int
    n_cols: int
    sig: int
    round32: bool


def format_cells(values: np.ndarray, sig: int, round32: bool = False) -> Cells:
    """Format every cell of ``values`` once (float32-rounded first when ``round32``), for several CSVs."""
    values = np.ascontiguousarray(values)
    if values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float64)
    n_r, n_c = values.shape
    buf = np.empty(values.size * _width(sig) + 16, dtype=np.uint8)
    off = np.empty(values.size + 1, dtype=np.int64)
    n = _cells_kernel(values, int(sig), bool(round32), buf, off, _P10)
    return Cells(buf[:n].copy(), off, n_r, n_c, int(sig), bool(round32))


def _atomic_stream(url: str, chunks: Iterable[bytes]) -> None:
    """Write the byte chunks to ``url`` through a temporary sibling renamed into place."""
    if fs.is_local(url):
        _, path = fs.get_fs(url)
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        tmp = os.path.join(parent, f"{fs.TMP_MARK}{uuid.uuid4().hex}-{os.path.basename(path)}")
        try:
            with open(tmp, "wb") as f:
                for b in chunks:
                    f.write(b)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    else:
        fs.write_bytes_atomic(url, b"".join(chunks))


def _header(index_label: str, columns: Sequence[str]) -> bytes:
    return (",".join([_quote(index_label), *(_quote(str(c)) for c in columns)]) + "\n").encode()


def write_matrix_csv(url: str, index_label: str, row_labels: Sequence[str], columns: Sequence[str],
                     values: np.ndarray, sig: int = 7, round32: bool = False) -> None:
    """Write ``values`` (rows x columns) as CSV with a header, atomically, streaming row blocks."""
    n = values.shape[0]
    blocks = (format_rows(values[i:i + _ROW_BLOCK], row_labels[i:i + _ROW_BLOCK], sig, round32)
              for i in range(0, n, _ROW_BLOCK))
    _atomic_stream(url, _chain(_header(index_label, columns), blocks))


def _chain(first: bytes, rest: Iterable[bytes]) -> Iterable[bytes]:
    yield first
    yield from rest


def write_token_csv(url: str, index_label: str, row_prefixes: Sequence[str], columns: Sequence[str], cells: Cells,
                    rows: np.ndarray, cols: np.ndarray, transpose: bool = False,
                    fill: np.ndarray | None = None) -> None:
    """CSV whose value cells are copied from ``cells``: output (i, j) = cell (rows[i], cols[j]), or
    (cols[j], rows[i]) with ``transpose``.  ``row_prefixes[i]`` is written verbatim before the values (the row
    label, possibly followed by pre-formatted columns); ``fill[i, j]`` is formatted where the token is empty."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    cols = np.ascontiguousarray(cols, dtype=np.int64)
    width = int(np.diff(cells.off).max()) if len(cells.off) > 1 else 0
    width = max(width, _width(cells.sig))
    empty = np.zeros((0, 0))

    def blocks():
        for i in range(0, len(rows), _ROW_BLOCK):
            r = rows[i:i + _ROW_BLOCK]
            lab = np.frombuffer("".join(row_prefixes[i:i + _ROW_BLOCK]).encode(), dtype=np.uint8)
            loff = np.zeros(len(r) + 1, np.int64)
            loff[1:] = np.cumsum([len(p.encode()) for p in row_prefixes[i:i + _ROW_BLOCK]])
            f = np.ascontiguousarray(fill[i:i + _ROW_BLOCK]) if fill is not None else empty
            out = np.empty(int(loff[-1]) + len(r) * (len(cols) * (width + 1) + 1) + 16, dtype=np.uint8)
            n = _gather_kernel(cells.buf, cells.off, cells.n_cols, r, cols, bool(transpose), f, cells.sig, cells.round32,
                               lab, loff, out, _P10)
            yield out[:n].tobytes()

    _atomic_stream(url, _chain(_header(index_label, columns), blocks()))


def quote(s: str) -> str:
    """A CSV field as written here (quoted only when needed)."""
    return _quote(s)


def warm_up() -> None:
    """Compile (or load the cached) kernels once, outside any timed region."""
    v = np.array([[1.5, np.nan, -2e-7, 3e20]])
    format_rows(v, ["x"], 7)
    c = format_cells(v.astype(np.float32), 7, True)
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        write_token_csv(os.path.join(d, "w.csv"), "", ["x"], ["a"], c, np.array([0]), np.array([1]),
                        fill=np.array([[2.0]]))

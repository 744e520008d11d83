"""numba kernels of the series-matrix fast path (imported on first use: numba's import and the kernels'
cache load cost about a second, which small files should not pay).  See :mod:`._fastmatrix`."""

import numba
import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros

OK, GIVE_UP, AT_BANG, FULL = 0, 1, 2, 3
_POW10 = np.array([10.0 ** k for k in range(23)])

@numba.njit(cache=True, nogil=True)
def _is_na(buf, s, e):
    n = e - s
    if n == 0:
        return True
    if n == 4:
        c0, c1, c2, c3 = buf[s], buf[s + 1], buf[s + 2], buf[s + 3]
        if c0 == 110 and c1 == 117 and c2 == 108 and c3 == 108:  # null
            return True
        if c0 == 78 and c1 == 85 and c2 == 76 and c3 == 76:  # NULL
            return True
        return False
    if n == 2:
        return buf[s] == 78 and buf[s + 1] == 65  # NA
    if n == 3:
        c0, c1, c2 = buf[s], buf[s + 1], buf[s + 2]
        if c0 == 78 and c1 == 97 and c2 == 78:  # NaN
            return True
        if c0 == 110 and c1 == 97 and c2 == 110:  # nan
            return True
        if c0 == 78 and c1 == 47 and c2 == 65:  # N/A
            return True
        if c0 == 110 and c1 == 47 and c2 == 97:  # n/a
            return True
    return False

@numba.njit(cache=True, nogil=True, inline="always")
def _parse_number(buf, s, e, pow10):
    """(value, end, ok): a decimal number starting at ``s``; parsing stops at the first character that
    cannot continue it (``end``); ok is False outside the exact fast path or when no digit was seen."""
    i = s
    neg = False
    c = buf[i] if i < e else 0
    if c == 45:
        neg = True
        i += 1
    elif c == 43:
        i += 1
    mant = np.uint64(0)
    nd = 0  # significant digits (leading zeros skipped)
    exp10 = 0
    seen = False
    while i < e and buf[i] == 48:
        seen = True
        i += 1
    while i < e:
        d = np.uint64(buf[i]) - np.uint64(48)  # wraps for bytes below '0': one compare tests both ends
        if d > np.uint64(9):
            break
        mant = mant * np.uint64(10) + d
        nd += 1
        i += 1
    if i < e and buf[i] == 46:
        i += 1
        if nd == 0:
            while i < e and buf[i] == 48:
                seen = True
                exp10 -= 1
                i += 1
        while i < e:
            d = np.uint64(buf[i]) - np.uint64(48)
            if d > np.uint64(9):
                break
            mant = mant * np.uint64(10) + d
            nd += 1
            exp10 -= 1
            i += 1
    if (nd == 0 and not seen) or nd > 19:
        return 0.0, i, False
    if i < e and (buf[i] == 101 or buf[i] == 69):
        i += 1
        eneg = False
        if i < e and (buf[i] == 45 or buf[i] == 43):
            eneg = buf[i] == 45
            i += 1
        if i >= e or not (48 <= buf[i] <= 57):
            return 0.0, i, False
        ev = 0
        while i < e and 48 <= buf[i] <= 57:
            ev = ev * 10 + (buf[i] - 48)
            if ev > 10000:
                return 0.0, i, False
            i += 1
        exp10 += -ev if eneg else ev
    if mant == 0:
        return (-0.0 if neg else 0.0), i, True
    if mant > np.uint64(9007199254740992) or exp10 < -22 or exp10 > 22:
        return 0.0, i, False
    v = float(mant)
    if exp10 < 0:
        v = v / pow10[-exp10]
    else:
        v = v * pow10[exp10]
    return (-v if neg else v), i, True

_U = np.uint64


@numba.njit(cache=True, nogil=True, inline="always")
def _load8(buf, i):
    """8 bytes at ``buf[i]`` as a little-endian uint64 (unsigned indices: no wrap-around test per byte, so
    LLVM merges the byte loads into one load)."""
    k = _U(i)
    return (_U(buf[k]) | (_U(buf[k + _U(1)]) << _U(8)) | (_U(buf[k + _U(2)]) << _U(16))
            | (_U(buf[k + _U(3)]) << _U(24)) | (_U(buf[k + _U(4)]) << _U(32)) | (_U(buf[k + _U(5)]) << _U(40))
            | (_U(buf[k + _U(6)]) << _U(48)) | (_U(buf[k + _U(7)]) << _U(56)))


@numba.njit(cache=True, nogil=True, inline="always")
def _eight_digits(d):
    """The value of 8 digits packed one per byte (values 0-9), the most significant in the lowest byte."""
    d = ((d & _U(0x0F0F0F0F0F0F0F0F)) * _U(2561)) >> _U(8)
    d = ((d & _U(0x00FF00FF00FF00FF)) * _U(6553601)) >> _U(16)
    return ((d & _U(0x0000FFFF0000FFFF)) * _U(42949672960001)) >> _U(32)


@numba.njit(cache=True, nogil=True, inline="always")
def _plain_number(buf, i, sep, pow10):
    """(value, bytes used including the separator ``sep``) of a cell ``digits.digits`` of up to 15
    characters with the dot among its first 8 (``11.7552``, RMA's ``10.50302152``) or of an integer of up to
    7 digits, read a word at a time (SWAR); used 0 for any other cell (the caller's character loop reads it).
    The bytes that are not digits are flagged all at once: the dot must be the first, ``sep`` the second;
    the digits are combined by three multiplications per 8 of them, so no branch depends on how many digits
    a cell has (a loop over the characters mispredicts its exit about once per cell).  Exact: an integer
    below 2**53 divided by a power of ten, as in the character loop.  The caller guarantees 16 readable
    bytes at ``buf[i]``."""
    w = _load8(buf, i)
    a = w ^ _U(0x3030303030303030)  # digit bytes -> 0..9
    nondig = (((a & _U(0x7F7F7F7F7F7F7F7F)) + _U(0x7676767676767676)) | a) & _U(0x8080808080808080)
    rest = nondig & (nondig - _U(1))  # without the first non-digit
    p1 = np.int64(trailing_zeros(nondig | _U(0x8000000000000000))) >> 3
    first = (w >> _U(8 * p1)) & _U(0xFF)
    low = a & ((_U(1) << _U(8 * p1)) - _U(1))  # the digits before the first non-digit
    if first == _U(46) and nondig != _U(0):
        # the fraction's digits (and what follows) moved next to the integer digits: 7 digits in bytes 0-6
        digits = low | (((a >> _U(8 * p1)) >> _U(8)) << _U(8 * p1))
        if rest != _U(0):  # the separator in this word: at most 6 digits
            p2 = np.int64(trailing_zeros(rest)) >> 3
            if p2 < 2 or ((w >> _U(8 * p2)) & _U(0xFF)) != _U(sep):
                return 0.0, 0
            d = _eight_digits(digits << _U(64 - 8 * (p2 - 1)))
            return float(np.int64(d)) / pow10[p2 - p1 - 1], p2 + 1
        w1 = _load8(buf, i + 8)  # the separator in the next word, after k more digits
        a1 = w1 ^ _U(0x3030303030303030)
        n1 = (((a1 & _U(0x7F7F7F7F7F7F7F7F)) + _U(0x7676767676767676)) | a1) & _U(0x8080808080808080)
        k = np.int64(trailing_zeros(n1 | _U(0x8000000000000000))) >> 3
        if n1 == _U(0) or ((w1 >> _U(8 * k)) & _U(0xFF)) != _U(sep):
            return 0.0, 0
        more = (a1 & ((_U(1) << _U(8 * k)) - _U(1))) << _U((64 - 8 * k) & 63)  # k = 0: nothing
        mant = float(np.int64(_eight_digits(digits << _U(8)))) * pow10[k] + float(np.int64(_eight_digits(more)))
        return mant / pow10[7 - p1 + k], 9 + k
    if first == _U(sep) and p1 > 0 and nondig != _U(0):  # an integer (1..7 digits)
        return float(np.int64(_eight_digits(low << _U(64 - 8 * p1)))), p1 + 1
    return 0.0, 0


@numba.njit(cache=True, nogil=True)
def _parse_rows(buf, ncols, out, row0, idbuf, pow10):
    """Parse complete lines of ``buf`` into ``out[row0:]`` (rows x ncols) and the IDs, newline-separated,
    into ``idbuf``; returns (rows, bytes of idbuf used, status, offset in ``buf`` where it stopped).  One
    pass: a plain number is parsed while it is scanned; quoted cells and missing-value words take a second
    look at their few bytes.  It stops before a line starting with ``!`` (status AT_BANG: the table's end
    marker, or a line the caller hands to the general reader) and before a row that ``out`` has no room
    for (FULL), so the caller needs no pass of its own over the block to find either.

    Nearly every cell of a real matrix is ``[-]digits[.digits]`` then the separator its column expects.  Up to
    15 characters (the dot among the first 8) it is read a word at a time (:func:`_plain_number`; on a
    54,675 x 167 matrix 5.3 instead of 11 ns per cell with 4 decimals, 6.0 instead of 16 with 8); otherwise by
    one character loop with no exit but the separator (the general number parser branches on each part of a
    number and costs 2.5x as much per cell); any other cell, or more than 15 digits, is read again from its
    first byte by the general path.  All give the same double: an integer mantissa below 2**53 divided by an
    exact power of ten is one correctly rounded operation."""
    n = buf.shape[0]
    i = 0
    row = 0
    idpos = 0
    last_c = ncols - 1
    while i < n:
        s = i
        if buf[s] == 33:
            return row, idpos, AT_BANG, s
        if row0 + row >= out.shape[0]:
            return row, idpos, FULL, s
        while i < n and buf[i] != 9 and buf[i] != 10:
            i += 1
        if i >= n or buf[i] != 9:
            if i - s == 0 or (i - s == 1 and buf[s] == 13):  # blank line: skip it
                i += 1
                continue
            return row, idpos, GIVE_UP, i  # a row with no value cells
        e = i
        if e - s >= 2 and buf[s] == 34 and buf[e - 1] == 34:
            s += 1
            e -= 1
        for k in range(s, e):
            idbuf[idpos] = buf[k]
            idpos += 1
        idbuf[idpos] = 10
        idpos += 1
        i += 1  # the tab
        r = row0 + row
        for c in range(ncols):
            if i + 17 <= n:  # room for a sign and 16 bytes: a plain number is read without a loop
                if buf[i] != 45:
                    v, used = _plain_number(buf, i, 10 if c == last_c else 9, pow10)
                    if used:
                        out[r, c] = v
                        i += used
                        continue
                else:
                    v, used = _plain_number(buf, i + 1, 10 if c == last_c else 9, pow10)
                    if used:
                        out[r, c] = -v
                        i += used + 1
                        continue
            cs = i
            neg = False
            if i < n and buf[i] == 45:
                neg = True
                i += 1
            mant = np.int64(0)
            nd = 0  # digits, leading zeros included (a bound on the mantissa: 15 digits < 2**53)
            frac = 0
            dot = False
            ch = 0
            while i < n:
                ch = buf[i]
                d = np.int64(ch) - 48
                if d >= 0 and d <= 9:
                    mant = mant * 10 + d
                    nd += 1
                    if dot:
                        frac += 1
                elif ch == 46 and not dot:
                    dot = True
                else:
                    break
                i += 1
            if i < n and ch == (10 if c == last_c else 9) and 0 < nd <= 15:
                v = float(mant)
                if frac:
                    v = v / pow10[frac]
                out[r, c] = -v if neg else v
                i += 1
                continue
            i = cs  # anything else: the general path from the cell's first byte
            v, j, ok = _parse_number(buf, i, n, pow10)
            if ok and j < n and (buf[j] == 9 or buf[j] == 10 or buf[j] == 13):
                i = j
            else:  # not a bare number: delimit the cell, then quotes / missing words / quoted number
                s = i
                while i < n and buf[i] != 9 and buf[i] != 10:
                    i += 1
                if i >= n:
                    return row, idpos, GIVE_UP, i
                e = i
                if e > s and buf[e - 1] == 13:
                    e -= 1
                if e - s >= 2 and buf[s] == 34 and buf[e - 1] == 34:
                    s += 1
                    e -= 1
                if _is_na(buf, s, e):
                    v = np.nan
                else:
                    v, j, ok = _parse_number(buf, s, e, pow10)
                    if not ok or j != e:
                        return row, idpos, GIVE_UP, i
            if buf[i] == 13:
                i += 1
                if i >= n or buf[i] != 10:
                    return row, idpos, GIVE_UP, i
            if (buf[i] == 9) == (c == last_c):  # a tab after the last cell or a newline before it: ragged
                return row, idpos, GIVE_UP, i
            out[r, c] = v
            i += 1
        row += 1
    return row, idpos, OK, i

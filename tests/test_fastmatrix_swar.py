"""The series-matrix kernel's word-at-a-time reading of numbers (``[-]digits.digits`` with the dot and the
separator in 8 bytes, or the dot in the first 8 and the separator in the next 8; integers in 8): exactly Python's float() on random and edge-case cells placed where that
reading applies (wide rows, so that 17 bytes follow nearly every cell), and the same errors as the general path
for the cells it must refuse.  The oracle is float() / the pyarrow path, not the kernel."""

from __future__ import annotations

import numpy as np
import pytest

from genotex_dask.io import geo
from genotex_dask.io.errors import InputFormatError
from tests._geo_files import matrix_text, write_gz

NCOL = 37
NA = {"", "NA", "null", "NaN", "nan", "N/A", "n/a", "NULL"}


def _cell(rng) -> str:
    kind = int(rng.integers(10))
    sign = "-" if rng.integers(3) == 0 else ""
    if kind <= 4:  # the word-at-a-time shape (1..6 digits, a dot somewhere; leading zeros), and 7 digits (too long)
        nd = int(rng.integers(1, 8))
        digits = "".join(str(d) for d in rng.integers(0, 10, nd))
        dot = int(rng.integers(0, nd + 1))
        return sign + digits[:dot] + "." + digits[dot:]
    if kind == 5:  # 8..15 digits: the 16-byte reading when the dot is among the first 8 bytes, else the loop
        nd = int(rng.integers(8, 16))
        digits = "".join(str(d) for d in rng.integers(0, 10, nd))
        dot = int(rng.integers(0, nd + 1))
        return sign + digits[:dot] + "." + digits[dot:]
    if kind == 6:
        return sign + "0" * int(rng.integers(0, 2)) + str(int(rng.integers(0, 10 ** int(rng.integers(1, 9)))))  # integers
    if kind == 7:
        return f"{rng.normal(0, 10.0 ** int(rng.integers(-8, 9))):.{int(rng.integers(1, 6))}e}"
    if kind == 8:
        return str(rng.choice(sorted(NA)))
    return str(rng.choice(["0.0", "-0.0", "0.", "-0.", ".0", "-.0", "+1.5", "1.5e0", "00.0000", "9999.999",
                           "1234567.", ".1234567", "-.1234567", "12.34567", "0000001.", '"7.25"']))


def _write(tmp_path, rows, name, crlf=False):
    samples = tuple(f"GSM{i}" for i in range(NCOL))
    text = matrix_text(samples=samples, chars=[], rows=rows)
    return write_gz(tmp_path / name, text.replace("\n", "\r\n") if crlf else text)


def _oracle(cell: str) -> float:
    c = cell[1:-1] if len(cell) >= 2 and cell[0] == cell[-1] == '"' else cell
    return np.nan if c in NA else float(c)


@pytest.mark.parametrize("float32", [False, True])
@pytest.mark.parametrize("crlf", [False, True])
def test_short_numbers_are_pythons_floats(tmp_path, monkeypatch, crlf, float32):
    """float32=True: each cell is float() rounded to float32 by numpy (the cast the store made before)."""
    rng = np.random.default_rng(5 + crlf)
    rows = [[f'"p{r}"', *(_cell(rng) for _ in range(NCOL))] for r in range(400)]
    path = _write(tmp_path, rows, "m.txt.gz", crlf)
    expect = np.array([[_oracle(c) for c in row[1:]] for row in rows])

    def no_fallback(*a, **k):
        raise AssertionError("the fast path gave up")

    monkeypatch.setattr(geo, "_matrix_values_pyarrow", no_fallback)
    m = geo.read_series_matrix(str(path), fast=True, float32=float32)
    got = m.values
    assert m.values_finite and got.shape == expect.shape
    if float32:
        assert got.dtype == np.float32
        expect = expect.astype(np.float32)
    np.testing.assert_array_equal(got.view(f"i{got.itemsize}"), expect.view(f"i{got.itemsize}"))  # NaN, -0.0 bit for bit


@pytest.mark.parametrize("beyond", [False, True])
def test_largest_numbers_of_the_fast_path_stay_finite_in_float32(tmp_path, beyond):
    """The kernel accepts mantissas up to 2**53 scaled by up to 10**22 (below float32's max, 3.4e38): in float32
    they round to finite values, so a float32 read needs no pass for inf / out-of-range cells.  A cell beyond
    that (``beyond``) goes to the general reader, which gives float64 and no such promise."""
    cells = ["9007199254740992e22", "-9007199254740992e22", "1e22", "123456789012345e22", "1e-22", "-7.5"]
    if beyond:
        cells[-1] = "3.5e38"
    rows = [[f'"p{r}"', *(cells[(r + j) % len(cells)] for j in range(NCOL))] for r in range(len(cells))]
    path = _write(tmp_path, rows, "big.txt.gz")
    m = geo.read_series_matrix(str(path), fast=True, float32=True)
    expect = np.array([[float(c) for c in row[1:]] for row in rows])
    assert m.values_finite is not beyond
    if beyond:
        assert m.values.dtype == np.float64
        np.testing.assert_array_equal(m.values, expect)
    else:
        assert m.values.dtype == np.float32 and np.isfinite(m.values).all()
        np.testing.assert_array_equal(m.values, expect.astype(np.float32))


@pytest.mark.parametrize("cell", ["1.2.3", "1..2", ".", "-.", "1.2a", "1.5µ", "12a", "--1.5", "1.2-", "1,5"])
def test_short_cells_refused_as_the_general_path_refuses_them(tmp_path, cell):
    rows = [[f'"p{r}"', *(["1.25"] * NCOL)] for r in range(3)]
    rows[1][5] = cell  # in the middle of a wide row: the word-at-a-time reading sees it first
    path = _write(tmp_path, rows, "bad.txt.gz")
    with pytest.raises(InputFormatError) as fast:
        geo.read_series_matrix(str(path), fast=True)
    with pytest.raises(InputFormatError) as general:
        geo.read_series_matrix(str(path), fast=False)
    assert str(fast.value) == str(general.value)


def test_ragged_rows_found_by_the_short_number_reading(tmp_path):
    """A row one cell short ends with a newline where a tab belongs: not read as a number of that column."""
    rows = [[f'"p{r}"', *(["1.25"] * NCOL)] for r in range(3)]
    rows[1] = rows[1][:-1]
    path = _write(tmp_path, rows, "ragged.txt.gz")
    with pytest.raises(InputFormatError) as fast:
        geo.read_series_matrix(str(path), fast=True)
    assert "ragged" in str(fast.value) or "field" in str(fast.value)

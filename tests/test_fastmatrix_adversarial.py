"""The series-matrix kernel read into float32 (what ingest stores) on adversarial cells: decimals exactly halfway
between two float32s (where a multiplication by a rounded reciprocal instead of the division rounds the wrong way:
shown below, so a future "faster" scaling cannot slip through), many digits, exponents, -0, missing-value words,
mantissas beyond 2**53.  Each must equal ``np.float32(float(text))`` bit for bit.  The oracle is Python's float()
and numpy's cast, not the kernel."""

from __future__ import annotations

import numpy as np
import pytest

from genotex_dask.io import geo
from tests._geo_files import matrix_text, write_gz


def _bits32(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float32).view(np.int32)


def _midpoints(rng, k: int, n: int) -> np.ndarray:
    """Mantissas m < 2**53 with m / 10**k exactly halfway between two float32s (25 significant bits, odd)."""
    found = []
    for t in range(-k, 30):
        x = (rng.integers(1 << 23, 1 << 24, size=n) * 2 + 1).astype(np.float64) * 2.0 ** t
        m = x * 10.0 ** k
        found.append(m[(m < 2.0 ** 53) & (m == np.floor(m))])
    return np.concatenate(found)


ADVERSARIAL = [
    "755955.15625", "-755955.15625", "8388608.5", "16777217.0", "16777217.00", "0.1", "-0.0", "0.0", "-0.000",
    "1.000000059604644", "3.4028235e22", "1e-22", "-1.5e-7", "123456789012345", "1234567.890123",
    "10.50302152", "-10.50302152", "9.99999995", "0.000000059604645", "NaN", "null", "", "NA", "7.48162",
    "2.98023223876953e-8", "33554433.0", "0.3", "-.5", "99999999.99999", "1.401298464e-13",
]


@pytest.mark.parametrize("k", [5, 11])
def test_midpoints_defeat_a_reciprocal_multiplication(k):
    """The adversarial decimals below matter: for these k, m * fl(10**-k) rounds some exact midpoints the wrong way
    in float32, where the division (what the kernel does) rounds them to even."""
    mids = _midpoints(np.random.default_rng(k), k, 20_000)
    plain = _bits32(mids * (1.0 / 10.0 ** k))
    assert (plain != _bits32(mids / 10.0 ** k)).any()


def _cells(rng, ncol: int, rows: int) -> list[list[str]]:
    cells = list(ADVERSARIAL)
    for k in (3, 5, 11):  # midpoints written as decimals of up to 15 digits (the 16-byte reading or the loop)
        m = _midpoints(rng, k, 50)
        m = m[m < 1e15][:60]
        cells += [f"{int(v) // 10 ** k}.{int(v) % 10 ** k:0{k}d}" for v in m]
    cells += [f"{v:.{int(d)}f}" for v, d in zip(rng.normal(7.5, 3, 400), rng.integers(1, 9, 400))]
    return [[f'"p{r}"', *(cells[(r * ncol + j) % len(cells)] for j in range(ncol))] for r in range(rows)]


def _oracle32(cell: str) -> np.float32:
    return np.float32(np.nan) if cell in ("NaN", "null", "", "NA") else np.float32(float(cell))


def test_reader_float32_equals_pythons_float_rounded(tmp_path, monkeypatch):
    """Through the reader, no fallback: every adversarial cell read into float32 equals float() rounded by numpy."""
    ncol = 29
    rows = _cells(np.random.default_rng(7), ncol, 120)
    text = matrix_text(samples=tuple(f"GSM{i}" for i in range(ncol)), chars=[], rows=rows)
    path = write_gz(tmp_path / "adv.txt.gz", text)

    def no_fallback(*a, **k):
        raise AssertionError("the fast path gave up")

    monkeypatch.setattr(geo, "_matrix_values_pyarrow", no_fallback)
    got = geo.read_series_matrix(str(path), fast=True, float32=True).values
    expect = np.array([[_oracle32(c) for c in row[1:]] for row in rows], dtype=np.float32)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.view(np.int32), expect.view(np.int32))  # NaN, -0.0 bit for bit


def test_mantissas_beyond_2_53_take_the_general_path(tmp_path):
    """More than 15 digits in the loop, beyond 2**53 in the general parser, or beyond 19 digits: each still gives
    float() rounded to float32 (the kernel's slow path or the general reader)."""
    ncol = 5
    odd = ["9007199254740993.1", "9007199254740993", "12345678901234567890.5", "1234567890123456.75",
           "0.12345678901234567891", "2.98023223876953125e-8", "1.00000005960464477", "3.4028235e38"]
    rows = [[f'"p{r}"', *(odd[(r + j) % len(odd)] for j in range(ncol))] for r in range(6)]
    text = matrix_text(samples=tuple(f"GSM{i}" for i in range(ncol)), chars=[], rows=rows)
    path = write_gz(tmp_path / "big.txt.gz", text)
    got = np.asarray(geo.read_series_matrix(str(path), fast=True, float32=True).values).astype(np.float32)
    expect = np.array([[np.float32(float(c)) for c in row[1:]] for row in rows], dtype=np.float32)
    np.testing.assert_array_equal(got.view(np.int32), expect.view(np.int32))

"""The CSV writers against an independent oracle: Python's own ``format(v, ".{sig}g")`` and the csv module.

Every written cell must parse back to exactly the value Python rounds to ``sig`` significant digits (NaN as an
empty cell; with 15 digits the last one may be off by one), whatever path wrote it: direct row formatting, or copies from a once-formatted token table
(transposed, subset, with imputed fill cells).
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from genotex_dask.pipelines.csv_out import fill_cells, quote, write_matrix_csv, write_token_csv

pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # float32 of 1e300


def _values(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    v = rng.normal(8, 3, shape)
    flat = v.ravel()
    special = [0.0, -0.0, 1.0, 1e-5, 9.9999999e-6, 123456789.0, 1e15, 9.99999999e15, 1e16, -2.5e-300, 5e-324,
               1e308, 0.1, 100.0, 1234567.0, np.inf, -np.inf]
    flat[: len(special)] = special
    flat[len(special):len(special) + 200] = 10.0 ** rng.uniform(-320, 300, 200) * rng.choice([-1, 1], 200)
    flat[rng.random(flat.size) < 0.05] = np.nan
    return v


def _expected(v: float, sig: int, round32: bool) -> float | None:
    """The value Python rounds to ``sig`` digits (None = empty cell); -0.0 == 0.0 as numbers."""
    if round32:
        v = float(np.float32(v))
    if not np.isfinite(v):
        return None
    return float(format(v, f".{sig}g"))


def _read(path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def _check(rows: list[list[str]], matrix: np.ndarray, sig: int, round32: bool) -> None:
    assert len(rows) == matrix.shape[0]
    for r, row in zip(matrix, rows):
        assert len(row) == matrix.shape[1]
        for v, cell in zip(r, row):
            got = None if cell == "" else float(cell)
            exp = _expected(v, sig, round32)
            if sig <= 7 or got is None or exp is None:
                assert got == exp, (v, cell)
            else:  # 15 digits from float64 products: the last digit may be off by one (documented)
                assert abs(got - exp) <= 1.5 * 10.0 ** (np.floor(np.log10(abs(exp))) - sig + 1), (v, cell)


@pytest.mark.parametrize("sig,round32", [(7, True), (15, False), (7, False)])
def test_direct_rows_parse_back_to_python_rounding(tmp_path, sig, round32):
    rng = np.random.default_rng(sig)
    X = _values(rng, (40, 30))
    labels = [f"g{i}" for i in range(40)]
    labels[3] = 'odd,"label"'
    path = tmp_path / "m.csv"
    write_matrix_csv(str(path), "ID", labels, [f"s{j}" for j in range(30)], X, sig, round32)
    rows = _read(path)
    assert rows[0] == ["ID", *[f"s{j}" for j in range(30)]]
    assert [r[0] for r in rows[1:]] == labels
    _check([r[1:] for r in rows[1:]], X, sig, round32)


@pytest.mark.parametrize("sig,round32", [(7, True), (15, False)])
def test_linked_copied_from_gene_data_text(tmp_path, sig, round32):
    rng = np.random.default_rng(1)
    Y = _values(rng, (25, 600))                      # samples x genes (more genes than one transposed tile)
    Y[4, 569] = Y[7, 2] = np.nan                     # cells the fill must supply
    src = Y.astype(np.float32).astype(np.float64) if round32 else Y
    genes = [f"G{i}" for i in range(600)]
    genes[5] = "HLA,X"
    samples = [f"S{i}" for i in range(25)]
    # gene_data: genes x samples, written from a transposed view, text kept
    path = tmp_path / "gene.csv"
    cells = write_matrix_csv(str(path), "Gene", genes, samples, Y.T, sig, round32, keep_cells=True)
    rows = _read(path)
    assert rows[0] == ["Gene", *samples] and [r[0] for r in rows[1:]] == genes
    _check([r[1:] for r in rows[1:]], Y.T, sig, round32)
    # linked: a subset of samples (reordered) and genes, prefixed columns, NaN cells filled
    srows = np.array([4, 0, 7, 24])
    grows = np.array([569, 1, 2, 30, 5, *range(40, 340)])
    fill = np.where(np.isnan(Y[np.ix_(srows, grows)]), 42.123456789, Y[np.ix_(srows, grows)])
    fill_cells(cells, grows, srows, fill.T)
    path = tmp_path / "linked.csv"
    write_token_csv(str(path), "", [f"S{i},1.0" for i in srows], ["trait", *[genes[g] for g in grows]], cells,
                    srows, grows, transpose=True)
    rows = _read(path)
    assert rows[0] == ["", "trait", *[genes[g] for g in grows]]
    assert [r[:2] for r in rows[1:]] == [[f"S{i}", "1.0"] for i in srows]
    expect = np.where(np.isfinite(src[np.ix_(srows, grows)]), src[np.ix_(srows, grows)], fill)
    _check([r[2:] for r in rows[1:]], expect, sig, round32)
    # straight copy of a gene-row subset: the filled cells now show their values
    path = tmp_path / "sub.csv"
    write_token_csv(str(path), "Gene", [quote(genes[g]) for g in grows], [samples[i] for i in srows], cells,
                    grows, srows)
    rows = _read(path)
    assert [r[0] for r in rows[1:]] == [genes[g] for g in grows]
    _check([r[1:] for r in rows[1:]], expect.T, sig, round32)


# ---- float32 values at 7 digits: exact text against Python's correctly rounded digits ---------------------

def _text7(v: float) -> str:
    """The cell text for a float32 value, from Python's ``format(v, ".6e")`` (= ``.7g``'s correctly rounded
    digits, half to even) laid out as the writer documents: trailing zeros dropped, fixed notation for
    exponents -5..15, ``d.ddde+XX`` outside, NaN/inf empty, zero as ``0``."""
    if not np.isfinite(v):
        return ""
    if v == 0:
        return "0"
    mant, exp = format(abs(v), ".6e").split("e")
    digits, e = mant.replace(".", "").rstrip("0"), int(exp)
    sign = "-" if v < 0 else ""
    if -5 <= e < 16:
        if e < 0:
            return f"{sign}0.{'0' * (-e - 1)}{digits}"
        whole, frac = digits[:e + 1].ljust(e + 1, "0"), digits[e + 1:]
        return sign + whole + ("." + frac if frac else "")
    return f"{sign}{digits[0]}{'.' + digits[1:] if len(digits) > 1 else ''}e{'-' if e < 0 else '+'}{abs(e):02d}"


def _float32_cases(rng: np.random.Generator) -> np.ndarray:
    """Random bit patterns (subnormals, NaN, inf included), expression-like values, and the edges of the fast
    path: powers of ten and their float32 neighbours, 1e-5 / 1e7 / 1e16 boundaries, exact ties at 7 digits."""
    bits = rng.integers(0, 2**32, 60_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    expr = (10.0 ** rng.uniform(-6, 8, 60_000) * rng.choice([-1, 1], 60_000)).astype(np.float32)
    p10 = np.array([10.0 ** k for k in range(-45, 39)], dtype=np.float32)
    near = np.concatenate([p10, np.nextafter(p10, np.float32(0)), np.nextafter(p10, np.float32(np.inf)),
                           np.float32([9.9999995e-6, 9.999999e-6, 9999999.0, 9999999.5, 9999998.5, 9999999.9,
                                       1e16, 9.999999e15, 1.5e-45, 1.1754942e-38, 1.1754944e-38, 3.4028235e38,
                                       0.0, -0.0, 0.5, 1.0, 100.0, 1234567.5, 1234568.5, 12345675.0])])
    ties = np.concatenate([rng.integers(1_000_000, 8_388_608, 3000) + 0.5,      # d.dddddd5 exactly in float32
                           rng.integers(1_000_000, 1_677_721, 3000) * 10 + 5.0])  # 8-digit integers ending in 5
    ties = ties.astype(np.float32)
    small = (rng.integers(1, 10_000_000, 20_000) * 10.0 ** rng.integers(-6, 1, 20_000)).astype(np.float32)
    v = np.concatenate([bits, expr, near, -near, ties, -ties, small])
    with np.errstate(invalid="ignore", over="ignore"):
        return v.astype(np.float64)


@pytest.mark.parametrize("fast", [True, False])
def test_float32_text_is_pythons_rounding(fast):
    """Both the float32 7-digit kernel (``fast``) and the general one write exactly the oracle's text."""
    from genotex_dask.pipelines import csv_out

    v = _float32_cases(np.random.default_rng(7))
    X = v[: v.size // 100 * 100].reshape(-1, 100)
    lab, off = csv_out._label_bytes(["r"] * X.shape[0])
    out = np.empty(int(off[-1]) + X.size * 28 + 64, dtype=np.uint8)
    start, ln = np.empty(X.size, np.int64), np.empty(X.size, np.uint8)
    if fast:
        n = csv_out._rows32_kernel(X, lab, off, out, csv_out._P10, csv_out._F32_E10, start, ln)
    else:
        n = csv_out._rows_kernel(X, lab, off, 7, True, out, csv_out._P10, start, ln)
    text = out[:n].tobytes().decode()
    expect = "".join("r," + ",".join(_text7(float(x)) for x in row) + "\n" for row in X)
    if text != expect:  # the first differing cell, for the message
        got = [c for line in text.splitlines() for c in line.split(",")[1:]]
        exp = [c for line in expect.splitlines() for c in line.split(",")[1:]]
        bad = next(i for i, (a, b) in enumerate(zip(got, exp)) if a != b)
        raise AssertionError(f"{X.ravel()[bad]!r}: wrote {got[bad]!r}, expected {exp[bad]!r}")
    # each cell's recorded place holds its text
    cells = [out[s:s + k].tobytes().decode() for s, k in zip(start, ln)]
    assert cells == [_text7(float(x)) for x in X.ravel()]


def test_buffers_reused_by_the_next_cohort_and_remote_blocks_copied(tmp_path):
    """A released Cells' buffers serve the thread's next cohort (whose text is then its own), and a transposed
    CSV of several row blocks written to a non-local filesystem equals the local file, although each block
    is formatted into the same reused buffer."""
    import fsspec

    from genotex_dask.io import thread_buffers

    thread_buffers.release_all()  # an empty pool, as a fresh worker thread has it
    rng = np.random.default_rng(3)
    genes = [f"G{i}" for i in range(40)]
    texts, bases = [], []
    for k, n_samples in enumerate((600, 300)):  # 600 samples: three transposed blocks of 256 rows
        Y = _values(rng, (n_samples, 40))
        samples = [f"S{i}" for i in range(n_samples)]
        cells = write_matrix_csv(str(tmp_path / f"g{k}.csv"), "Gene", genes, samples, Y.T, 7, True, keep_cells=True)
        bases.append(cells.buf.base)
        _check([r[1:] for r in _read(tmp_path / f"g{k}.csv")[1:]], Y.T, 7, True)
        srows, grows = np.arange(n_samples), np.arange(40)
        fill_cells(cells, grows, srows, np.where(np.isnan(Y), 1.5, Y).T)
        args = ("", [quote(s) for s in samples], ["", *genes], cells, srows, grows)
        write_token_csv(str(tmp_path / f"l{k}.csv"), *args[:1], *args[1:], transpose=True)
        write_token_csv(f"memory://csv_out_pool/l{k}.csv", *args[:1], *args[1:], transpose=True)
        local = (tmp_path / f"l{k}.csv").read_bytes()
        with fsspec.open(f"memory://csv_out_pool/l{k}.csv", "rb") as f:
            assert f.read() == local
        _check([r[1:] for r in _read(tmp_path / f"l{k}.csv")[1:]], np.where(np.isnan(Y), 1.5, Y), 7, True)
        texts.append(local)
        cells.release()
    assert bases[1] is bases[0]  # the second cohort formatted into the first one's buffer
    assert texts[0] != texts[1]


@pytest.mark.parametrize("transpose", [True, False])
def test_token_copy_is_the_plain_join(transpose):
    """The copy kernels against a plain Python join of the cells' bytes: cells of every length 0-14 (word
    copies for up to 8 bytes, the byte loop beyond), cells at the end of the text buffer and of each output
    row (where an 8-byte word store must not run into the next row), any row/column subset and order."""
    from genotex_dask.pipelines import csv_out

    rng = np.random.default_rng(11)
    n_rows, n_cols = 37, 23
    texts = [rng.integers(48, 58, rng.integers(0, 15)).astype(np.uint8).tobytes() for _ in range(n_rows * n_cols)]
    texts[-1] = b"123456789012"  # the buffer's last cell: no 8 readable bytes after its start
    blob = b"".join(texts)
    buf = np.frombuffer(blob, dtype=np.uint8).copy()
    ln = np.array([len(t) for t in texts], dtype=np.uint8)
    start = np.concatenate([[0], np.cumsum(ln[:-1], dtype=np.int64)]).astype(np.int64)
    for trial in range(20):
        rows = rng.permutation(n_cols if transpose else n_rows)[: rng.integers(1, 12)]
        cols = rng.permutation(n_rows if transpose else n_cols)[: rng.integers(1, 12)]
        prefixes = ["".join(rng.choice(list("ab,"), rng.integers(0, 4))) for _ in rows]
        lab, off = csv_out._prefix_bytes(prefixes)
        out = np.full(int(off[-1]) + len(rows) * (len(cols) * 16 + 1), 7, dtype=np.uint8)  # tight: no slack
        kernel = csv_out._gather_t_kernel if transpose else csv_out._gather_kernel
        n = kernel(buf, start, ln, n_cols, rows.astype(np.int64), cols.astype(np.int64), lab, off, out)
        cell = [[texts[c * n_cols + r] if transpose else texts[r * n_cols + c] for c in cols] for r in rows]
        expect = b"".join(p.encode() + b"".join(b"," + t for t in line) + b"\n" for p, line in zip(prefixes, cell))
        assert out[:n].tobytes() == expect, trial

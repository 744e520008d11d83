"""GEO readers against independent parses: GEOparse (SOFT) and the reference's pandas way (oracle)."""

from __future__ import annotations

import gzip
import tracemalloc

import fsspec
import numpy as np
import pandas as pd
import pytest

from benchmarks.oracle import reference_readers as ref
from genotex_dask.io import _stream, geo
from genotex_dask.io.errors import InputFormatError
from tests._geo_files import (
    GSE781_MATRIX,
    GSE781_SOFT,
    geoparse_gse781,
    matrix_text,
    truncated_copy,
    write_gz,
)

DATA = GSE781_MATRIX.parents[5]
GSE55235 = str(DATA / "geo_gse55235" / "GSE55235_series_matrix.txt.gz")
GPL96 = str(DATA / "geo_gpl96" / "GPL96.txt.gz")
GPL97 = str(DATA / "geo_gpl97_annot" / "GPL97.annot.gz")


@pytest.fixture(scope="module")
def gse781_geoparse():
    pytest.importorskip("GEOparse")
    return geoparse_gse781()


@pytest.fixture(scope="module")
def gse781():
    return geo.read_series_matrix(str(GSE781_MATRIX))


# ---- series matrix ---------------------------------------------------------------------------------

def test_gse781_values_equal_geoparse(gse781, gse781_geoparse):
    assert gse781.values.shape == (22283, 17)
    for j, gsm in enumerate(gse781.sample_ids):
        table = gse781_geoparse.gsms[gsm].table
        assert list(table["ID_REF"].astype(str)) == list(gse781.probes)
        theirs = pd.to_numeric(table["VALUE"], errors="coerce").to_numpy(dtype=float)
        ours = gse781.values[:, j]
        assert np.array_equal(np.isnan(ours), np.isnan(theirs)), gsm
        assert np.array_equal(ours[~np.isnan(ours)], theirs[~np.isnan(theirs)]), gsm


def test_gse781_sample_metadata_equal_geoparse(gse781, gse781_geoparse):
    s = gse781.samples
    assert list(s.index) == gse781.sample_ids
    for gsm in gse781.sample_ids:
        meta = gse781_geoparse.gsms[gsm].metadata
        assert s.loc[gsm, "title"] == meta["title"][0]
        assert s.loc[gsm, "source_name_ch1"] == meta["source_name_ch1"][0]
        assert s.loc[gsm, "platform_id"] == meta["platform_id"][0]
    assert gse781.platform_ids == ["GPL96"]
    assert gse781.series["title"] == [gse781_geoparse.metadata["title"][0]]
    assert "overall_design" in gse781.series and len(gse781.series["summary"]) > 3
    # the label lives in the source name: 9 tumour, 8 adjacent normal
    assert s["source_name_ch1"].str.contains("normal tissue adjacent").sum() == 8


def test_matrix_values_equal_reference_pandas_way(gse781):
    theirs = ref.matrix_values(str(GSE781_MATRIX))
    ours = gse781.to_frame()
    assert list(ours.index) == list(theirs.index) and list(ours.columns) == list(theirs.columns)
    np.testing.assert_array_equal(ours.to_numpy(), theirs.to_numpy(dtype=float))


def test_gse55235_quirks():
    m = geo.read_series_matrix(GSE55235)
    theirs = ref.matrix_values(GSE55235)
    np.testing.assert_array_equal(m.to_frame().to_numpy(), theirs.to_numpy(dtype=float))
    n_zero = int((theirs.to_numpy() == 0).sum())
    assert n_zero == 9 and int((m.values == 0).sum()) == n_zero  # exact zeros kept as 0, not NaN
    state = m.samples["characteristics_ch1_0"]
    assert (state == "disease state: osteoarthritis").sum() == 1
    assert (state == "disease state: synovial tissue isolated from osteoarthritic joint").sum() == 9
    assert (state == "disease state: rheumatoid arthritis").sum() == 10
    assert set(m.samples["characteristics_ch1_1"]) == {"tissue: synovial tissue isolated from joint"}
    assert m.samples["title"].str.contains("tisssue").sum() == 10
    # the clinical frame is the one the reference builds from the same lines
    pd.testing.assert_frame_equal(m.clinical_frame(), ref.clinical_rows(GSE55235))


def test_gse781_clinical_frame_has_no_characteristics(gse781):
    frame = gse781.clinical_frame()
    pd.testing.assert_frame_equal(frame, ref.clinical_rows(str(GSE781_MATRIX)), check_index_type=False)
    assert frame.shape == (0, 18)


def test_small_matrix_missing_quotes_and_order(tmp_path):
    path = write_gz(tmp_path / "GSE1_series_matrix.txt.gz", matrix_text())
    m = geo.read_series_matrix(str(path))
    assert list(m.probes) == ["p1", "p2", "p3"]
    expect = np.array([[1.5, 2, np.nan], [-0.25, np.nan, 400], [0, 7.5, 8]])
    np.testing.assert_array_equal(m.values, expect)
    assert list(m.samples.columns[:4]) == ["title", "geo_accession", "source_name_ch1",
                                           "characteristics_ch1_0"]
    assert m.samples.loc["GSM2", "characteristics_ch1_1"] == "Sex: M"
    assert m.series["summary"] == ["First paragraph", ""]
    cf = m.clinical_frame()
    assert list(cf.columns) == ["!Sample_geo_accession", "GSM1", "GSM2", "GSM3"]
    assert list(cf["GSM2"]) == ["disease state: control", "Sex: M"]
    pd.testing.assert_frame_equal(cf, ref.clinical_rows(str(path)))


def test_markers_split_across_buffer_refills(monkeypatch, tmp_path):
    """Tiny refill blocks put every marker across a block boundary somewhere."""
    path = write_gz(tmp_path / "m.txt.gz", matrix_text())
    expect = geo.read_series_matrix(str(path))
    for block, fast in ((1, False), (3, True), (7, False), (26, True)):
        monkeypatch.setattr(_stream, "BLOCK", block)
        got = geo.read_series_matrix(str(path), fast=fast)
        np.testing.assert_array_equal(got.values, expect.values)
        assert list(got.probes) == list(expect.probes)


def test_plain_text_and_memory_filesystem(tmp_path):
    text = matrix_text()
    plain = tmp_path / "GSE1_series_matrix.txt"
    plain.write_text(text)
    mem = fsspec.filesystem("memory")
    mem.pipe("/geo-test/GSE1_series_matrix.txt.gz", gzip.compress(text.encode()))
    a = geo.read_series_matrix(str(plain))
    b = geo.read_series_matrix("memory:///geo-test/GSE1_series_matrix.txt.gz")
    np.testing.assert_array_equal(a.values, b.values)
    pd.testing.assert_frame_equal(a.samples, b.samples)


def test_values_false_reads_only_metadata(gse781):
    m = geo.read_series_matrix(str(GSE781_MATRIX), values=False)
    assert m.values is None and list(m.samples.index) == gse781.sample_ids


# ---- bad input ----------------------------------------------------------------------------------------

def _raises(path, fn=geo.read_series_matrix) -> InputFormatError:
    with pytest.raises(InputFormatError) as info:
        fn(str(path))
    assert str(path) in str(info.value)
    return info.value


def test_truncated_gzip(tmp_path):
    err = _raises(truncated_copy(GSE781_MATRIX, tmp_path / "cut_series_matrix.txt.gz"))
    assert "gzip" in err.cause or "truncated" in err.cause


def test_missing_table_markers(tmp_path):
    err = _raises(write_gz(tmp_path / "a.txt.gz", matrix_text(table_begin=False)))
    assert "!series_matrix_table_begin" in err.cause
    err = _raises(write_gz(tmp_path / "b.txt.gz", matrix_text(table_end=False)))
    assert "!series_matrix_table_end" in err.cause


def test_ragged_row_names_its_line(tmp_path):
    rows = [['"p1"', "1", "2", "3"], ['"p2"', "1", "2"], ['"p3"', "1", "2", "3"]]
    text = matrix_text(rows=rows)
    err = _raises(write_gz(tmp_path / "r.txt.gz", text))
    assert "ragged" in err.cause
    assert text.splitlines()[err.line - 1].startswith('"p2"')


def test_non_numeric_cell_names_its_line_and_value(tmp_path):
    rows = [['"p1"', "1", "2", "3"], ['"p2"', "1", "2", "3"], ['"p3"', "1", "abc", "3"]]
    text = matrix_text(rows=rows)
    err = _raises(write_gz(tmp_path / "n.txt.gz", text))
    assert "non-numeric" in err.cause and "abc" in err.cause
    assert text.splitlines()[err.line - 1].startswith('"p3"')


def test_duplicate_sample_ids(tmp_path):
    err = _raises(write_gz(tmp_path / "d.txt.gz", matrix_text(samples=("GSM1", "GSM2", "GSM1"))))
    assert "duplicate sample" in err.cause and "GSM1" in err.cause
    # duplicated only in the table header
    header = '"ID_REF"\t"GSM1"\t"GSM1"\t"GSM3"'
    err = _raises(write_gz(tmp_path / "e.txt.gz", matrix_text(header=header)))
    assert "duplicate sample" in err.cause


# ---- SOFT / annot -----------------------------------------------------------------------------------

def _same_strings(ours: pd.Series, theirs: pd.Series) -> None:
    a = ours.astype(object).where(ours.notna(), None).tolist()
    b = [None if (isinstance(x, float) and np.isnan(x)) else str(x) for x in theirs.tolist()]
    assert a == b


def test_family_soft_two_platforms_equal_geoparse(gse781_geoparse):
    plats = geo.read_soft_platforms(str(GSE781_SOFT))
    assert set(plats) == {"GPL96", "GPL97"}
    for gpl, p in plats.items():
        theirs = gse781_geoparse.gpls[gpl].table
        assert list(p.table.columns) == list(theirs.columns)
        _same_strings(p.table["ID"], theirs["ID"])
        _same_strings(p.table["Gene Symbol"], theirs["Gene Symbol"])
        assert p.attr("title") == gse781_geoparse.gpls[gpl].metadata["title"][0]
    only = geo.read_soft_platforms(str(GSE781_SOFT), platforms=["gpl96"])
    assert list(only) == ["GPL96"] and only["GPL96"].table.shape == plats["GPL96"].table.shape


def test_platform_soft_starting_with_platform_line():
    with gzip.open(GPL96, "rt") as f:
        assert f.readline().startswith("^PLATFORM")
    p = geo.read_soft_platforms(GPL96)["GPL96"]
    theirs = ref.annotation_all(GPL96)
    assert list(p.table.columns) == list(theirs.columns) and len(p.table) == len(theirs)
    _same_strings(p.table["ID"], theirs["ID"].astype(str))
    _same_strings(p.table["Gene Symbol"], theirs["Gene Symbol"])
    assert p.attr("organism") == "Homo sapiens"


def test_annot_file_duplicated_names_and_gene_symbol_column():
    p = geo.read_soft_platforms(GPL97)
    assert list(p) == ["GPL97"] and p["GPL97"].kind == "ANNOTATION"
    t = p["GPL97"].table
    theirs = ref.annotation_all(GPL97)
    assert list(t.columns) == list(theirs.columns)  # pandas-style suffixes for the repeated GO names
    assert {"GO:Function", "GO:Function.1", "GO:Process.1", "Gene symbol"} <= set(t.columns)
    _same_strings(t["Gene symbol"], theirs["Gene symbol"])
    assert t["ID"].iloc[0] == "200000_s_at"


def test_annotation_all_is_what_the_reference_sees(tmp_path):
    # exact frame, sample rows included, on a small two-platform family SOFT with sample tables
    small = tmp_path / "GSE2_family.soft.gz"
    small.write_bytes(gzip.compress(_synthetic_family_soft(3, 5, two_platforms=True)))
    for path in (str(small), GPL96, GPL97):
        theirs = ref.annotation_all(path)
        with_samples = geo.read_soft_annotation_all(path, include_sample_rows=True)
        assert list(with_samples.columns) == list(theirs.columns) and with_samples.equals(theirs)
    # without sample tables, the (ID, gene) mapping GenoTEX derives is unchanged
    for path in (str(small), str(GSE781_SOFT), GPL96, GPL97):
        theirs = ref.annotation_all(path)
        gene = "Gene Symbol" if "Gene Symbol" in theirs.columns else "Gene symbol"
        ours = geo.read_soft_annotation_all(path)
        a = ours[["ID", gene]].dropna().astype({"ID": str}).reset_index(drop=True)
        b = theirs[["ID", gene]].dropna().astype({"ID": str}).reset_index(drop=True)
        assert a.equals(b), path
    # GSE781: GPL97's header row became a data row, and GPL97's rows follow GPL96's under GPL96's names
    both = geo.read_soft_annotation_all(str(GSE781_SOFT))
    assert (both["ID"] == "ID").sum() == 1 and len(both) == 22283 + 1 + 22645


def test_soft_samples_attributes_and_values(gse781):
    samples = geo.read_soft_samples(str(GSE781_SOFT), values=True)
    assert sorted(samples) == sorted(gse781.sample_ids)
    for j, gsm in enumerate(gse781.sample_ids):
        s = samples[gsm]
        assert s.attr("platform_id") == "GPL96"
        assert s.attr("source_name_ch1") == gse781.samples.loc[gsm, "source_name_ch1"]
        assert list(s.table["ID_REF"]) == list(gse781.probes)
        np.testing.assert_array_equal(s.table["VALUE"].to_numpy(), gse781.values[:, j])
    series = geo.read_soft_series(str(GSE781_SOFT))
    assert series.attr("title") == gse781.series["title"][0]


def _synthetic_family_soft(n_samples: int, n_rows: int, two_platforms: bool = False) -> bytes:
    out = ["^SERIES = GSE1", "!Series_title = t", "^PLATFORM = GPL1", "!Platform_title = p",
           "#ID = probe", "!platform_table_begin", "ID\tDesc\tGB\tGene Symbol", "a\tx\tG1\tA1",
           "b\t\tG2\tB2 /// C3",
           "!platform_table_end"]
    if two_platforms:
        out += ["^PLATFORM = GPL2", "!platform_table_begin", "ID\tDesc\tGB\tGene Symbol", "c\ty\tG3\tD4",
                "d\tz", "!platform_table_end"]
    body = "\n".join(f"probe{i}\t{i * 0.37:.3f}\tP" for i in range(n_rows))
    for k in range(n_samples):
        out += [f"^SAMPLE = GSM{k}", "!Sample_platform_id = GPL1", "#VALUE = signal", "!sample_table_begin",
                "ID_REF\tVALUE\tABS_CALL", body, "!sample_table_end"]
    return ("\n".join(out) + "\n").encode()


def test_sample_tables_are_skipped_not_held(tmp_path):
    raw = _synthetic_family_soft(40, 20000)
    path = tmp_path / "GSE1_family.soft.gz"
    path.write_bytes(gzip.compress(raw, 1))
    tracemalloc.start()
    try:
        plats = geo.read_soft_platforms(str(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert list(plats["GPL1"].table["Gene Symbol"]) == ["A1", "B2 /// C3"]
    assert plats["GPL1"].table["Desc"].isna().tolist() == [False, True]
    assert len(raw) > 15e6 and peak < len(raw) / 4, (peak, len(raw))
    samples = geo.read_soft_samples(str(path))
    assert len(samples) == 40 and all(s.table is None for s in samples.values())


def test_soft_bad_input(tmp_path):
    good = _synthetic_family_soft(1, 3).decode()
    cut = good.replace("!platform_table_end\n", "")
    cut = cut[: cut.index("^SAMPLE")]
    err = _raises(write_gz(tmp_path / "a.soft.gz", cut), geo.read_soft_platforms)
    assert "!platform_table_end" in err.cause
    ragged = good.replace("b\t\tG2\tB2 /// C3\n", "b\tG2\tB2 /// C3\n")
    err = _raises(write_gz(tmp_path / "b.soft.gz", ragged), geo.read_soft_platforms)
    assert "ragged" in err.cause and ragged.splitlines()[err.line - 1] == "b\tG2\tB2 /// C3"
    err = _raises(write_gz(tmp_path / "c.soft.gz", good), lambda p: geo.read_soft_platforms(p, ["GPL9"]))
    assert "GPL9" in err.cause
    err = _raises(truncated_copy(GSE781_SOFT, tmp_path / "d.soft.gz", 0.3), geo.read_soft_samples)
    assert "gzip" in err.cause or "truncated" in err.cause


# ---- the compiled fast path equals the general path and Python's float() ---------------------------------

@pytest.mark.parametrize("path", [str(GSE781_MATRIX), GSE55235])
def test_fast_path_equals_pyarrow_path_on_real_files(path):
    fast = geo.read_series_matrix(path, fast=True)
    general = geo.read_series_matrix(path, fast=False)
    assert list(fast.probes) == list(general.probes)
    np.testing.assert_array_equal(fast.values, general.values)


def _cells_matrix(tmp_path, cells, name):
    ncol = 4
    cells = cells + ["1"] * (-len(cells) % ncol)
    rows = [[f'"p{i}"', *cells[i * ncol:(i + 1) * ncol]] for i in range(len(cells) // ncol)]
    path = write_gz(tmp_path / name, matrix_text(samples=("A", "B", "C", "D"), chars=[], rows=rows))
    return path, np.array([[float(c) for c in r[1:]] for r in rows])


def test_fast_path_numbers_are_exactly_pythons_floats(tmp_path, monkeypatch):
    rng = np.random.default_rng(7)
    cells = []
    for _ in range(12000):  # decimal spellings GEO files use (3,000+ rows: the output array grows): rounded, scientific, integers, signed fixed
        kind = int(rng.integers(4))
        v = rng.normal(0, 10.0 ** int(rng.integers(-6, 7)))
        cells.append({0: f"{v:.5g}", 1: f"{v:.3e}", 2: f"{int(v)}", 3: f"{v:+.8f}"}[kind])
    cells += ["0", "-0", "0.0", "1e5", "1E-5", ".5", "5.", "007", "9007199254740992", "0.1", "0.3",
              "2.225073858507201e-3", "1.797693134862315e2", "4.94065645841246e-7"]
    path, expect = _cells_matrix(tmp_path, cells, "x.txt.gz")

    def no_fallback(*a, **k):
        raise AssertionError("the fast path gave up")

    monkeypatch.setattr(geo, "_matrix_values_pyarrow", no_fallback)
    m = geo.read_series_matrix(str(path), fast=True)
    np.testing.assert_array_equal(m.values, expect)


def test_fast_path_falls_back_for_unusual_cells(tmp_path):
    rows = [['"p1"', "inf", "1e400", "12345678901234567890123"], ['"p2"', "#N/A", "None", "-1.#IND"],
            ['"p3"', '"3"', " 4", "5\r"]]
    path = write_gz(tmp_path / "u.txt.gz", matrix_text(rows=rows))
    m = geo.read_series_matrix(str(path), fast=True)
    assert m.values[0, 0] == np.inf and m.values[0, 1] == np.inf
    assert m.values[0, 2] == float("12345678901234567890123")
    assert np.isnan(m.values[1]).all()
    np.testing.assert_array_equal(m.values[2], [3, 4, 5])
    np.testing.assert_array_equal(m.values, geo.read_series_matrix(str(path), fast=False).values)
    # 17 significant digits / mantissas beyond 2**53: still Python's floats (via the general path)
    path, expect = _cells_matrix(tmp_path, ["0.12345678901234567", "9007199254740993", "1.2345678901234567e-05",
                                            repr(0.1 + 0.2)], "y.txt.gz")
    np.testing.assert_array_equal(geo.read_series_matrix(str(path), fast=True).values, expect)


def test_crlf_and_missing_words(tmp_path):
    text = matrix_text(rows=[['"p1"', "NA", "nan", "N/A"], ['"p2"', "1", "NULL", '""']]).replace("\n", "\r\n")
    path = write_gz(tmp_path / "c.txt.gz", text)
    m = geo.read_series_matrix(str(path), fast=True)
    assert list(m.probes) == ["p1", "p2"] and m.samples.loc["GSM1", "title"] == "case 1"
    np.testing.assert_array_equal(m.values, [[np.nan] * 3, [1, np.nan, np.nan]])


def test_fast_cell_loop_edges_are_pythons_floats(tmp_path, monkeypatch):
    """The kernel's one-loop cell reader (<= 15 digits, [-]digits[.digits]) and its hand-over to the general
    parser at its bounds (16 digits, signs, exponents) give Python's float() exactly."""
    rng = np.random.default_rng(11)
    cells = []
    for _ in range(4000):  # 1..16 digits (mantissa < 2**53) with the dot anywhere (or absent), signed or not
        nd = int(rng.integers(1, 17))
        digits = "".join(str(d) for d in rng.integers(0, 10, nd))
        if nd == 16:
            digits = str(rng.integers(0, 9)) + digits[1:]
        dot = int(rng.integers(0, nd + 2))
        s = digits if dot > nd else digits[:dot] + "." + digits[dot:]
        cells.append(("-" if rng.integers(2) else "") + s)
    cells += ["-0", "-0.0", "1.", "-1.", ".5", "-.5", "+5", "+.5", "000000000000001", "0000000000000001",
              "999999999999999", "8999999999999999", "0.000000000000001", "123456789012345.", "-.000000000000000"]
    path, expect = _cells_matrix(tmp_path, cells, "edges.txt.gz")

    def no_fallback(*a, **k):
        raise AssertionError("the fast path gave up")

    monkeypatch.setattr(geo, "_matrix_values_pyarrow", no_fallback)
    got = geo.read_series_matrix(str(path), fast=True).values
    np.testing.assert_array_equal(got.view(np.int64), expect.view(np.int64))  # -0.0 kept too


@pytest.mark.parametrize("cell", ["1..2", "1.2.3", "--1", "-", ".", "1-2", "12a"])
def test_fast_cell_loop_rejects_what_the_general_path_rejects(tmp_path, cell):
    path = write_gz(tmp_path / "bad.txt.gz", matrix_text(rows=[['"p1"', "1", cell, "3"]]))
    with pytest.raises(InputFormatError) as fast:
        geo.read_series_matrix(str(path), fast=True)
    with pytest.raises(InputFormatError) as general:
        geo.read_series_matrix(str(path), fast=False)
    assert str(fast.value) == str(general.value)


def test_bang_line_inside_the_table_goes_to_the_general_reader(tmp_path, monkeypatch):
    """The kernel stops at any '!' line; one that is not the end marker is left to the general reader."""
    rows = [['"p1"', "1", "2", "3"], ["!not_the_end", "4", "5", "6"], ['"p3"', "7", "8", "9"]]
    path = write_gz(tmp_path / "bang.txt.gz", matrix_text(rows=rows))
    calls = []
    general = geo._matrix_values_pyarrow
    monkeypatch.setattr(geo, "_matrix_values_pyarrow", lambda *a, **k: calls.append(1) or general(*a, **k))
    try:
        fast = geo.read_series_matrix(str(path), fast=True)
    except InputFormatError as err:
        fast = err
    assert calls == [1]
    monkeypatch.setattr(geo, "_matrix_values_pyarrow", general)
    try:
        plain = geo.read_series_matrix(str(path), fast=False)
    except InputFormatError as err:
        assert str(fast) == str(err)
    else:
        np.testing.assert_array_equal(fast.values, plain.values)

"""Fast mode's linked-cohort reader and header split against pandas (the reference's reader), and the
cost-balanced routing of analyze tasks to workers."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest

from genotex_dask.pipelines import analyze


def _frame(rng, n=30, p=12) -> pd.DataFrame:
    df = pd.DataFrame(rng.normal(size=(n, p)) * 10.0 ** rng.integers(-3, 4, size=p),
                      index=[f"GSM{i}" for i in range(n)], columns=[f"G{j}" for j in range(p)])
    df.insert(0, "Trait", rng.integers(0, 2, size=n))
    df.insert(1, "Age", rng.integers(20, 90, size=n).astype(float))
    return df


def _same_frame(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert a.columns.tolist() == b.columns.tolist()
    assert [str(i) for i in a.index] == [str(i) for i in b.index]
    assert a.dtypes.unique().tolist() == b.dtypes.unique().tolist() == [np.dtype(float)]
    # pandas' default float parser is not correctly rounded (off by up to ~4e-13 relative on 19-digit
    # cells); pyarrow's is (checked against Python's float() below)
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-12, atol=0)
    assert np.array_equal(np.isnan(a.to_numpy()), np.isnan(b.to_numpy()))


def test_fast_reader_equals_pandas_on_a_linked_file_with_missing_values(tmp_path):
    rng = np.random.default_rng(3)
    df = _frame(rng)
    f = tmp_path / "GSE1.csv"
    df.iloc[3, 4] = df.iloc[7, 2] = np.nan  # written as empty cells
    # pandas' default missing spellings and short rounded values, as preprocessed files hold them
    f.write_text(df.to_csv() + "GSM_x,1,NA,0.5,nan,,1.25,-3,7e-3,NaN,0,0,0,0,0\n")
    fast, ref = analyze.read_linked_fast(str(f)), analyze.read_linked(str(f))
    assert np.isnan(ref.to_numpy()).sum() >= 5
    _same_frame(fast, ref)
    rows = list(csv.reader(f.read_text().splitlines()))[1:]
    exact = np.array([[float(v) if v not in ("", "NA") else np.nan for v in r[1:]] for r in rows])
    assert np.array_equal(fast.to_numpy(), exact, equal_nan=True)  # correctly rounded, cell for cell


@pytest.mark.parametrize("header", ['"",A,A,B\n', ',A,,B\n', ',"A, B",C,D\n', ',"A\nB",C,D\n'])
def test_headers_pandas_would_rewrite_are_read_by_pandas(tmp_path, header):
    """Duplicate, empty and quoted names: the fast reader and the planner's header give pandas' names."""
    f = tmp_path / "GSE2.csv"
    f.write_text(header + "s1,1,2,3\ns2,4,5.5,6\n")
    ref = analyze.read_linked(str(f))
    _same_frame(analyze.read_linked_fast(str(f)), ref)
    assert analyze._header(str(f), {}) == ref.columns.tolist()


def test_text_cell_falls_back_to_pandas_and_names_the_file(tmp_path):
    f = tmp_path / "GSE3.csv"
    f.write_text(",T,G1\ns1,1,2.5\ns2,0,oops\n")
    with pytest.raises(analyze.AnalysisInputError, match="GSE3.csv"):
        analyze.read_linked_fast(str(f))
    g = tmp_path / "GSE4.csv"
    g.write_text(",T,G1\ns1,True,2.5\ns2,False,1\n")  # pandas reads booleans and casts them to 1.0/0.0
    _same_frame(analyze.read_linked_fast(str(g)), analyze.read_linked(str(g)))


def test_fast_and_exact_reads_are_cached_apart(tmp_path):
    f = tmp_path / "GSE5.csv"
    _frame(np.random.default_rng(5)).to_csv(f)
    analyze.clear_cache()
    fast = analyze.cohort(str(f), "fp", fast=True)
    exact = analyze.cohort(str(f), "fp")
    assert fast is not exact and analyze.cohort(str(f), "fp") is exact
    assert analyze.cache_stats() == {"loads": 2, "hits": 1}
    analyze.clear_cache()


# ---- routing -----------------------------------------------------------------------------------------------

def _spec(url: str, mb: int, n: int, i: int, cond_url: str | None = None) -> dict:
    s = {"key": f"{url}/{i}", "trait_url": url, "trait_fp": json.dumps({"size": mb << 20}), "trait_n": n}
    if cond_url:
        s.update(cond_url=cond_url, cond_fp=json.dumps({"size": 8 << 20}))
    return s


def _loads(where: dict, units: list[dict], mode: str = "fast") -> dict:
    out: dict = {}
    for u in units:
        out[where[u["key"]]] = out.get(where[u["key"]], 0) + sum(
            analyze.problem_seconds(s, mode) for s in u.get("batch", [u]))
    return out


def test_a_big_cohort_spreads_instead_of_ending_as_one_workers_tail():
    # one TCGA-size cohort with 3 problems (each its own task) and six small cohorts of 1-2 problems
    big = [{"key": f"big/{i}", "batch": [_spec("big.csv", 140, 700, i)]} for i in range(3)]
    small = [{"key": f"s{c}", "batch": [_spec(f"s{c}.csv", 8, 167, i) for i in range(1 + c % 2)]}
             for c in range(6)]
    where, order = analyze._assign_workers(small + big, ["w1", "w2"])
    assert [u["key"] for u in order[:3]] == ["big/0", "big/1", "big/2"]  # costliest submitted first
    assert {where[f"big/{i}"] for i in range(3)} == {"w1", "w2"}
    loads = _loads(where, small + big)
    assert max(loads.values()) / min(loads.values()) < 2.1  # 3 equal big tasks on 2 workers: 2 vs 1 + smalls
    # balancing by count (the old rule) would put all three on one worker: 3 big vs the small ones
    assert max(loads.values()) < 3 * analyze.problem_seconds(big[0]["batch"][0])


def test_small_cohorts_keep_their_problems_on_the_worker_that_parsed_them():
    # one unit per problem (exact mode's units; fast mode's when a cohort's problems are split): two equal
    # cohorts of three problems each end up one per worker, each cohort parsed once
    units = [_spec(f"c{c}.csv", 8, 167, i) for c in range(2) for i in range(3)]
    where, _ = analyze._assign_workers(units, ["w1", "w2"], mode="fast")
    by_cohort = {c: {where[u["key"]] for u in units if u["trait_url"] == f"c{c}.csv"} for c in range(2)}
    assert by_cohort[0] != by_cohort[1] and all(len(w) == 1 for w in by_cohort.values())


def test_submission_keeps_a_cohorts_units_together_costliest_cohort_first():
    # a two-step unit costs a condition parse more than its cohort's other units; it still stays beside them
    a = [{"key": f"a/{i}", "batch": [_spec("a.csv", 40, 300, i)]} for i in range(3)]
    b = [{"key": f"b/{i}", "batch": [_spec("b.csv", 40, 299, i, cond_url="c.csv" if i == 0 else None)]}
         for i in range(3)]
    assert analyze.problem_seconds(b[0]["batch"][0]) < analyze.problem_seconds(a[0]["batch"][0])
    _, order = analyze._assign_workers(b + a, ["w1", "w2"])
    assert [u["key"] for u in order] == ["a/0", "a/1", "a/2", "b/0", "b/1", "b/2"]


def test_two_step_units_count_the_condition_cohort_parse():
    a = {"key": "a", "batch": [_spec("t.csv", 8, 167, 0, cond_url="c.csv")]}
    assert set(analyze._unit_cohorts(a)) == {"t.csv", "c.csv"}
    where, order = analyze._assign_workers([a], [])
    assert where == {} and order == [a]


def _timeline(order: list[dict], where: dict) -> dict:
    """Per worker: (unit key, estimated start, end) in the order the worker runs them."""
    t: dict = {}
    out: dict = {}
    for u in order:
        w = where[u["key"]]
        c = sum(analyze.problem_seconds(s) for s in u.get("batch", [u]))
        out.setdefault(w, []).append((u["key"], t.get(w, 0.0), t.get(w, 0.0) + c))
        t[w] = t.get(w, 0.0) + c
    return out


def test_paired_workers_run_their_cache_hungry_cohorts_at_different_times():
    # each worker holds one 900-sample cohort and light ones; unstaggered both would start on the big cohort
    big = {w: [{"key": f"{w}big/{i}", "batch": [_spec(f"{w}big.csv", 140, 900, i)]} for i in range(3)]
           for w in ("w1", "w2")}
    light = {w: [{"key": f"{w}s{c}", "batch": [_spec(f"{w}s{c}.csv", 8, 167, i) for i in range(2)]}
                 for c in range(60)] for w in ("w1", "w2")}
    units = [u for w in ("w1", "w2") for u in big[w] + light[w]]
    where = {u["key"]: u["key"][:2] for u in units}
    before = _timeline(units, where)
    assert before["w1"][0][0].startswith("w1big") and before["w2"][0][0].startswith("w2big")
    order = analyze._stagger(units, where, ["w1", "w2"])
    assert sorted(u["key"] for u in order) == sorted(u["key"] for u in units)  # every unit once
    line = _timeline(order, where)
    assert [k for k, _, _ in line["w1"]] == [u["key"] for u in big["w1"] + light["w1"]]  # w1: as given
    heavy = {w: [(a, b) for k, a, b in line[w] if "big" in k] for w in line}
    w1_end = max(b for _, b in heavy["w1"])
    w2_start = min(a for a, _ in heavy["w2"])
    assert w2_start >= w1_end * 0.9  # w2's big cohort starts about when w1's ends: little overlap left
    # a cohort's units stay together, and w2 ends on light cohorts (at least the tail share of its load)
    keys = [k for k, _, _ in line["w2"]]
    first = keys.index("w2big/0")
    assert keys[first:first + 3] == ["w2big/0", "w2big/1", "w2big/2"]
    load = line["w2"][-1][2]
    assert load - max(b for _, b in heavy["w2"]) >= analyze.STAGGER_TAIL_SHARE * load * 0.99
    # the global order follows the estimated starts (the priorities a thief runs them by): both workers' first
    # units lead, and w1's big cohort is ranked before w2's
    assert {where[u["key"]] for u in order[:2]} == {"w1", "w2"}
    rank = {u["key"]: i for i, u in enumerate(order)}
    assert rank["w1big/2"] < rank["w2big/0"]


def test_stagger_leaves_light_only_and_single_worker_orders_alone():
    units = [{"key": f"s{c}", "batch": [_spec(f"s{c}.csv", 8, 167, 0)]} for c in range(6)]
    where = {u["key"]: ("w1", "w2")[i % 2] for i, u in enumerate(units)}
    for w in ("w1", "w2"):
        assert ([u["key"] for u in analyze._stagger(units, where, ["w1", "w2"]) if where[u["key"]] == w]
                == [u["key"] for u in units if where[u["key"]] == w])
    assert analyze._stagger(units, {u["key"]: "w1" for u in units}, ["w1"]) == units


def test_cost_model_follows_the_measured_ratio_of_big_to_small_cohorts():
    # measured on the 1/4 GenoTEX-scale sample (fast mode, ~19,700 genes): a problem on the 1,220-sample TCGA
    # cohort (217 MB) took ~13-25 CPU-s, one on a 150-sample GEO cohort (23 MB) ~1-2 s; the former rule
    # (samples^2 x bytes) put the ratio at ~620
    big, small = _spec("big.csv", 207, 1220, 0), _spec("small.csv", 22, 150, 0)
    assert 5 < analyze.problem_seconds(big) / analyze.problem_seconds(small) < 30
    # a worker that takes a spread cohort's problem pays its parse and fold designs (LMM: eig and U'X) again:
    # more than the parse alone in fast mode, only the parse in exact mode (no shared designs)
    unit = {"key": "big/0", "batch": [big]}
    fast, exact = analyze._unit_cohorts(unit, "fast")["big.csv"], analyze._unit_cohorts(unit, "exact")["big.csv"]
    assert exact == analyze.READ_S_PER_BYTE * (207 << 20) and 5 * exact < fast < analyze.problem_seconds(big)


def test_sample_size_from_an_untrusted_cohort_info():
    assert analyze._sample_size({"G": {"sample_size": 120}}, "G") == 120
    for bad in ({"G": {"sample_size": "x"}}, {"G": {"sample_size": -3}}, {"G": None}, {"G": {}}, {},
                {"G": {"sample_size": float("inf")}}):
        assert analyze._sample_size(bad, "G") is None


@pytest.mark.parametrize("where", ["local", "memory"])
def test_plain_files_take_the_pyarrow_path_on_local_and_fsspec_files(tmp_path, monkeypatch, where):
    import fsspec

    df = _frame(np.random.default_rng(11))
    ref = analyze.read_linked(_write(tmp_path / "ref.csv", df))
    url = _write(tmp_path / "GSE6.csv", df)
    if where == "memory":
        url = "memory://anover_reading/GSE6.csv"
        with fsspec.open(url, "wb") as f:
            f.write(df.to_csv().encode())
    header = analyze._header(url, {})

    def no_pandas(u):
        raise AssertionError(f"fell back to pandas for {u}")

    monkeypatch.setattr(analyze, "read_linked", no_pandas)
    monkeypatch.setattr(analyze.pd, "read_csv", no_pandas)
    _same_frame(analyze.read_linked_fast(url), ref)
    assert analyze._header(url, {}) == header == ref.columns.tolist()


def _write(path, df: pd.DataFrame) -> str:
    df.to_csv(path)
    return str(path)


def test_condition_columns_parsed_alone_equal_the_full_reads(tmp_path):
    df = _frame(np.random.default_rng(21), n=25, p=40)
    url = _write(tmp_path / "GSE7.csv", df)
    full = analyze.read_linked_fast(url)
    spec = {"cond_url": url, "cond_fp": "fp"}
    analyze.clear_cache()
    part = analyze._condition_columns(spec, ["Trait", "G31", "G2", "G17"])
    assert part.columns.tolist() == ["Trait", "G2", "G17", "G31"]  # file order
    assert part.index.tolist() == full.index.tolist()
    assert np.array_equal(part.to_numpy(), full[part.columns].to_numpy())  # same bits, cell by cell
    assert analyze.cache_stats()["loads"] == 0  # parsed alone, not cached
    # a column the header lacks: the full (cached) read, whose frame shows what is missing
    assert "Nope" not in analyze._condition_columns(spec, ["Nope", "G2"]).columns
    assert analyze.cache_stats()["loads"] == 1
    # once cached, the cached frame serves
    assert analyze._condition_columns(spec, ["Trait", "G2"]) is analyze.cohort(url, "fp", True).df
    # a junk cell in a requested column: the full read names the file
    bad = tmp_path / "GSE8.csv"
    bad.write_text(",T,G1,G2\ns1,1,2.5,3\ns2,0,oops,4\n")
    with pytest.raises(analyze.AnalysisInputError, match="GSE8.csv"):
        analyze._condition_columns({"cond_url": str(bad), "cond_fp": "fp"}, ["T", "G1"])
    analyze.clear_cache()


def _grid_and_arrow(data: bytes, columns: list[str] | None = None):
    """(grid reader's frame or None, pyarrow's frame or None) of all columns or of ``columns`` (file order)."""
    import io

    names = analyze._plain_header(io.BytesIO(data))
    fields = None if columns is None else [i for i, n in enumerate(names) if i and n in set(columns)]
    sel = names if fields is None else [names[0]] + [names[i] for i in fields]
    grid = analyze._read_grid(data, names, fields)
    try:
        arrow = analyze._read_arrow(data, sel, columns is not None)
    except analyze._NotPlain:
        arrow = None
    return grid, arrow


def _bits_equal(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    x, y = a.to_numpy(), b.to_numpy()
    return (a.columns.tolist() == b.columns.tolist() and a.index.tolist() == b.index.tolist()
            and np.array_equal(x, y, equal_nan=True) and np.array_equal(np.signbit(x), np.signbit(y)))


def test_grid_reader_takes_preprocessed_cells_correctly_rounded(tmp_path):
    """Cells as preprocessing writes them (7 significant digits, empty, negative, integers, exponents) go through
    the compiled grid reader; each is the nearest double to its text (Python's float(), the independent
    oracle), the same bits as pyarrow's parse."""
    rng = np.random.default_rng(8)
    vals = rng.normal(size=(40, 300)) * 10.0 ** rng.integers(-6, 7, size=300)
    cells = [[f"{v:.7g}" for v in row] for row in vals]
    cells[0][:8] = ["", "-0", "0", "-12", "1e-07", "-3.5E+05", "8.536751", "123456789012345"]
    cells[1][:3] = ["12345.678901", "0.000001234567", "-0.5"]
    text = ",T," + ",".join(f"G{j}" for j in range(299)) + "\n"
    text += "".join(f"GSM{i}," + ",".join(r) + "\n" for i, r in enumerate(cells))
    data = text.encode()
    grid, arrow = _grid_and_arrow(data)
    assert grid is not None and arrow is not None
    assert _bits_equal(grid, arrow)
    oracle = np.array([[float(c) if c else np.nan for c in r] for r in cells])
    assert np.array_equal(grid.to_numpy(), oracle, equal_nan=True)
    assert np.array_equal(np.signbit(grid.to_numpy()), np.signbit(oracle))
    assert grid.index.tolist() == [f"GSM{i}" for i in range(40)]
    f = tmp_path / "GSE9.csv"
    f.write_bytes(data)
    assert _bits_equal(analyze.read_linked_fast(str(f)), grid)
    part = analyze._condition_columns({"cond_url": str(f), "cond_fp": "x"}, ["G250", "T", "G3"])
    assert _bits_equal(part, grid[["T", "G3", "G250"]])


CELLS = ["NA", "nan", "NaN", "inf", "-inf", "1e400", "1e-400", "12345678901234567890", "0.12345678901234567891",
         "9007199254740993", "1.5x", " 1.5", "1.5 ", ".5", "5.", "+5", "--5", "-", ".", "e5", "1e", "0x10", "1_000",
         '"1.5"', "00012.5", "1e+5", "-0.0"]
ROWS = ["s1,1,2\r\n", "\n", "s1,1\n", "s1,1,2,3\n", "s1,1,2,\n", '"s1",1,2\n', "s\u00e9,1,2\n", "s1,1,2"]


@pytest.mark.parametrize("row", [f"s1,{c},2\n" for c in CELLS] + [f"s1,2,{c}\n" for c in CELLS] + ROWS)
def test_grid_reader_takes_no_file_pyarrow_would_not_and_agrees_where_it_does(row):
    """Odd cells and rows: the grid reader either gives up (pyarrow, then pandas, read the file as before) or
    returns pyarrow's frame bit for bit; it never accepts a file pyarrow rejects."""
    data = (",A,B\ns0,0.25,-1\n" + row + "s9,3,4\n").encode()
    for columns in (None, ["A"], ["B"]):  # all, or one read and the other passed unread
        grid, arrow = _grid_and_arrow(data, columns)
        if grid is not None:
            assert arrow is not None, (row, columns)
            assert _bits_equal(grid, arrow), (row, columns)


def test_grid_reader_passes_long_runs_of_unread_columns():
    """A few columns of a wide file (the unread ones passed a word at a time): the same frame as pyarrow's and
    as the full read's columns; an unread cell with a quote or a row one field short still gives up."""
    rng = np.random.default_rng(4)
    cells = [[f"{v:.7g}" for v in row] for row in rng.normal(size=(30, 700)) * 100]
    for r in cells[::3]:
        r[rng.integers(0, 700)] = ""
    header = "," + ",".join(f"G{j}" for j in range(700)) + "\n"
    text = header + "".join(f"s{i}," + ",".join(r) + "\n" for i, r in enumerate(cells))
    want = ["G0", "G1", "G9", "G10", "G11", "G350", "G698", "G699"]
    for columns in (want, want[2:6], ["G699"], ["G0"]):
        grid, arrow = _grid_and_arrow(text.encode(), columns)
        assert grid is not None and _bits_equal(grid, arrow)
        full, _ = _grid_and_arrow(text.encode())
        assert _bits_equal(grid, full[grid.columns.tolist()])
    quoted = text.replace(",".join(cells[4][100:102]), '"x",' + cells[4][101], 1)
    short = text.replace("," + cells[7][500] + ",", ",", 1)
    assert quoted != text and short != text
    for bad in (quoted, short, text.replace("\n", "\r\n")):
        assert _grid_and_arrow(bad.encode(), ["G0", "G699"])[0] is None


def test_grid_reader_gives_up_on_bytes_that_are_not_utf8_and_on_headers_pyarrow_must_check(tmp_path):
    assert _grid_and_arrow(b",A,B\ns\xff,1,2\n")[0] is None
    for i, data in enumerate((b'\xef\xbb\xbf,A,B\ns1,1,2\n', b',"A",B\ns1,1,2\n', b'id,"A""x",B\ns1,1,2\n')):
        assert _grid_and_arrow(data)[0] is None
        f = tmp_path / f"GSE{i}.csv"
        f.write_bytes(data)  # pyarrow, or pandas after it, reads the file as before
        _same_frame(analyze.read_linked_fast(str(f)), analyze.read_linked(str(f)))

"""Bounded readers (issue 14): decompression bombs, endless lines and truncated gzip streams get a named
error with the right line, and no process (reader, ingest task, ``specs suggest`` in the client) balloons."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from genotex_dask.io import _stream
from genotex_dask.io.errors import InputFormatError, InputLimitError
from genotex_dask.io.geo import read_series_matrix, read_soft_platforms
from genotex_dask.io.tcga import read_xena_expression
from tests._geo_files import matrix_text

REPO = Path(__file__).resolve().parents[1]
PEAK_LIMIT_MB = 600


def write_bomb(path: Path, gib: float = 2.0, newlines: bool = False) -> Path:
    """A valid multi-member gzip of a series-matrix head then ``gib`` GiB of zeros, written member by member
    (an 8 MiB member compresses to ~8 KB and is repeated: nothing large is ever held)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    unit = (b"!Sample_x\t" + b"0\t" * 63 + b"0\n") * (1 << 16) if newlines else b"0" * (8 << 20)
    member = gzip.compress(unit, compresslevel=6)
    head = matrix_text(table_begin=False).encode() if not newlines else b'!Series_title\t"bomb"\n'
    with open(path, "wb") as f:
        f.write(gzip.compress(head))
        for _ in range(int(gib * (1 << 30)) // len(unit)):
            f.write(member)
    return path


@pytest.mark.parametrize("newlines", [False, True])
def test_gzip_bomb_named_error(tmp_path, newlines):
    bomb = write_bomb(tmp_path / "GSE1_series_matrix.txt.gz", newlines=newlines)
    assert bomb.stat().st_size < 20 << 20
    with pytest.raises(InputLimitError) as ei:
        read_series_matrix(str(bomb), values=False)
    assert str(bomb) in str(ei.value)
    assert "MAX_" in ei.value.cause  # the line, header or ratio bound, whichever comes first


def test_ratio_bound_stops_a_bomb_of_short_lines(tmp_path):
    bomb = write_bomb(tmp_path / "GSE1_series_matrix.txt.gz", newlines=True)
    with _stream.open_lines(str(bomb)) as lb:
        with pytest.raises(InputLimitError, match=r"decompression ratio above 100 .*MAX_INFLATE_RATIO"):
            for _ in lb:
                pass
        assert lb.inflated < 128 << 20


def test_bounds_are_keywords_and_module_defaults(tmp_path):
    p = tmp_path / "a.txt.gz"
    p.write_bytes(gzip.compress(b"!Series_title\t\"" + b"y" * 5000 + b"\"\n" + b"x\n" * 10))
    with _stream.open_lines(str(p), max_line_bytes=1000) as lb:
        with pytest.raises(InputLimitError, match=r"line 1: line longer than 1000 bytes \(MAX_LINE_BYTES\)"):
            lb.readline()
    with _stream.open_lines(str(p), max_inflated_bytes=100) as lb:
        with pytest.raises(InputLimitError, match="MAX_INFLATED_BYTES"):
            list(lb)
    with _stream.open_lines(str(p)) as lb:
        assert len(list(lb)) == 11  # defaults let a normal file through
    assert _stream.MAX_LINE_BYTES >= 1 << 20 and _stream.MAX_INFLATE_RATIO >= 20


def test_fifty_megabyte_line_is_named_not_memory_error(tmp_path):
    line = "x" * (50 << 20)
    plain = tmp_path / "GSE2_series_matrix.txt"
    plain.write_text(matrix_text(chars=[["a: " + line, "b", "c"], ["Sex: F", "Sex: M", "Sex: F"]]))
    del line
    for fast in (False, True):
        with pytest.raises(InputLimitError, match=r"line 9: line longer than \d+ bytes \(MAX_LINE_BYTES\)"):
            read_series_matrix(str(plain), fast=fast)
    row = tmp_path / "GSE3_series_matrix.txt"
    row.write_text(matrix_text(rows=[['"p1"', "1", "2", "3"], ['"p2"', "1" * (50 << 20), "2", "3"]]))
    for fast in (False, True):
        with pytest.raises(InputFormatError, match=r"line 15: line longer than \d+ bytes"):
            read_series_matrix(str(row), fast=fast)
    xena = tmp_path / "HiSeqV2_PANCAN"
    xena.write_bytes(b"sample\t" + b"S" * (50 << 20) + b"\n")
    with pytest.raises(InputLimitError, match="line 1: line longer"):
        read_xena_expression(str(xena))


def _oracle_first_unreadable_line(data: bytes) -> int:
    """Independent count: everything zlib can inflate from the truncated bytes in one call, newlines + 1."""
    return zlib.decompressobj(wbits=31).decompress(data).count(b"\n") + 1


@pytest.mark.parametrize("frac", [0.001, 0.3, 0.6, 0.99])
def test_truncated_gzip_reports_the_right_line(tmp_path, frac):
    rows = [[f'"p{i}"', "1.5", "2", "3"] for i in range(100_000)]
    gz = gzip.compress(matrix_text(rows=rows).encode())
    cut = gz[: int(len(gz) * frac)]
    p = tmp_path / "cut_series_matrix.txt.gz"
    p.write_bytes(cut)
    want = _oracle_first_unreadable_line(cut)
    for fast in (False, True):
        with pytest.raises(InputFormatError) as ei:
            read_series_matrix(str(p), fast=fast)
        assert "truncated or corrupt gzip" in ei.value.cause
        assert ei.value.line == want, (fast, ei.value.line, want)


def test_empty_gzip_is_line_one_not_zero(tmp_path):
    p = tmp_path / "e_series_matrix.txt.gz"
    p.write_bytes(gzip.compress(b""))
    with pytest.raises(InputFormatError) as ei:
        read_series_matrix(str(p))
    assert ei.value.line == 1


def test_soft_bomb_named_error(tmp_path):
    bomb = write_bomb(tmp_path / "GSE1_family.soft.gz", gib=0.5, newlines=True)
    with pytest.raises(InputLimitError, match="MAX_"):
        read_soft_platforms(str(bomb), ["GPL1"])


_PEAK = """
import json, sys
sys.path.insert(0, {repo!r})
what, arg = sys.argv[1], sys.argv[2]
out = {{}}
if what == "reader":
    from genotex_dask.io.geo import read_series_matrix
    try:
        read_series_matrix(arg)
    except Exception as e:
        out["error"] = f"{{type(e).__name__}}: {{e}}"
elif what == "ingest":
    from genotex_dask.pipelines.ingest import discover, ingest_cohort
    out["results"] = [ingest_cohort(j) for j in discover(arg, arg + "/store")]
else:
    from genotex_dask.pipelines.specs import run_suggest_specs
    out["summary"] = run_suggest_specs(arg, arg + "/specs")
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so it would report the forking pytest's peak
hwm = next(ln for ln in open("/proc/self/status") if ln.startswith("VmHWM:"))
out["peak_mb"] = int(hwm.split()[1]) / 1024
print(json.dumps(out, default=str))
"""


def _peak(what: str, arg: str) -> dict:
    res = subprocess.run([sys.executable, "-c", _PEAK.format(repo=str(REPO)), what, arg], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_bomb_peak_memory_of_reader_ingest_and_suggest(tmp_path):
    """A 2 GiB-of-zeros series matrix: reader, ingest task and ``specs suggest`` (the client process) all stop
    with the named error and stay under the memory bound (VmHWM, the peak resident size of a fresh process)."""
    root = tmp_path / "root"
    bomb = write_bomb(root / "input/GEO/T/GSE1/GSE1_series_matrix.txt.gz")
    r = _peak("reader", str(bomb))
    assert "InputLimitError" in r["error"] and str(bomb) in r["error"], r
    assert r["peak_mb"] < PEAK_LIMIT_MB, r
    i = _peak("ingest", str(root))
    (res,) = i["results"]
    assert res["status"] == "failed" and "MAX_" in res["error"] and str(bomb) in res["error"], res
    assert i["peak_mb"] < PEAK_LIMIT_MB, i
    s = _peak("suggest", str(root))
    assert "MAX_" in s["summary"]["errors"]["T/GSE1"], s
    assert s["peak_mb"] < PEAK_LIMIT_MB, s
    print(f"peak MB: reader {r['peak_mb']:.0f}, ingest {i['peak_mb']:.0f}, suggest {s['peak_mb']:.0f}")


def test_header_only_tables_are_named(tmp_path):
    """A table with its header but no rows fails at the reader, not later as 'no mappable genes'."""
    from genotex_dask.pipelines.ingest import discover, ingest_cohort

    root = tmp_path / "root"
    d = root / "input/GEO/T/GSE1"
    d.mkdir(parents=True)
    (d / "GSE1_series_matrix.txt").write_text(matrix_text(rows=[]))
    with pytest.raises(InputFormatError, match=r"line 13: value table has a header row but no data rows"):
        read_series_matrix(str(d / "GSE1_series_matrix.txt"))
    (res,) = [ingest_cohort(j) for j in discover(str(root), str(tmp_path / "store"))]
    assert res["status"] == "failed" and "no data rows" in res["error"]
    only_id = tmp_path / "GSE2_series_matrix.txt"
    only_id.write_text('!Series_title\t"x"\n!series_matrix_table_begin\n"ID_REF"\n"p1"\n"p2"\n'
                       "!series_matrix_table_end\n")
    with pytest.raises(InputFormatError, match="line 3: value table has no sample columns"):
        read_series_matrix(str(only_id))
    xena = tmp_path / "HiSeqV2_PANCAN"
    xena.write_text("sample\tTCGA-01\tTCGA-02\n")
    with pytest.raises(InputFormatError, match="line 1: expression table has a header row but no gene rows"):
        read_xena_expression(str(xena))


def test_text_kept_whole_is_bounded(tmp_path, monkeypatch):
    """Header lines of a matrix and a TCGA clinical matrix are held whole: MAX_HEADER_BYTES bounds them (here
    lowered, and through the environment variable that reaches worker processes too)."""
    from genotex_dask.io.tcga import read_xena_clinical_text

    p = tmp_path / "GSE1_series_matrix.txt"
    chars = [[f"k{i}: " + "v" * 200] * 3 for i in range(40)]
    p.write_text(matrix_text(chars=chars))
    assert read_series_matrix(str(p), values=False).samples.shape[0] == 3
    monkeypatch.setattr(_stream, "MAX_HEADER_BYTES", 5000)
    with pytest.raises(InputLimitError, match=r"header before '!series_matrix_table_begin' would hold more than "
                                              r"5000 bytes in memory \(MAX_HEADER_BYTES\)"):
        read_series_matrix(str(p), values=False)
    clin = tmp_path / "X_clinicalMatrix"
    clin.write_text("sampleID\tage\n" + "".join(f"S{i}\t{i}\n" for i in range(2000)))
    with pytest.raises(InputLimitError, match="clinical matrix would hold more than 5000 bytes"):
        read_xena_clinical_text(str(clin))
    monkeypatch.setattr(_stream, "MAX_HEADER_BYTES", 1 << 30)
    monkeypatch.setenv("GENOTEX_DASK_MAX_HEADER_BYTES", "6000")
    with pytest.raises(InputLimitError, match="more than 6000 bytes"):
        read_xena_clinical_text(str(clin))


def test_plain_file_read_error_is_not_called_gzip():
    """A file-system error under a plain-text file (e.g. a dropped object-store connection) says so, with the
    line reached; only gzip streams are blamed as truncated or corrupt gzip."""

    class Flaky:
        def __init__(self):
            self.calls = 0

        def read(self, n):
            self.calls += 1
            if self.calls == 1:
                return b"a\nb\nc"
            raise OSError("connection reset")

    lb = _stream.LineBuffer(Flaky(), "s3://b/x_series_matrix.txt")
    assert lb.readline() == "a" and lb.readline() == "b"
    with pytest.raises(InputFormatError, match=r"line 3: read error \(OSError: connection reset\)") as ei:
        lb.readline()
    assert "gzip" not in str(ei.value)

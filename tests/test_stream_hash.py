"""LineBuffer.hash_until (the platform table's digest) hands the hash exactly the bytes the line reader's
MarkerReader yields before the marker line, and leaves the reader at the same line (the oracle: that reader)."""

from __future__ import annotations

import hashlib
import io
import random

import pytest

from genotex_dask.io._stream import LineBuffer


def _by_marker_reader(lb: LineBuffer, marker: bytes):
    h, r = hashlib.sha1(), lb.until(marker)
    while block := r.read(1 << 16):
        h.update(block)
    return h.hexdigest(), r.found


def _by_hash_until(lb: LineBuffer, marker: bytes, block: int):
    h = hashlib.sha1()
    found = lb.hash_until(marker, h.update, block=block)
    return h.hexdigest(), found


@pytest.mark.parametrize("seed", range(4))
def test_hash_until_equals_the_marker_reader(seed):
    rng = random.Random(seed)
    for _ in range(150):
        parts = [rng.choice([b"a", b"\n", b"!end", b"!en", b"x\r\n", b"!e", b"\n!end_not"]) for _ in range(rng.randint(0, 60))]
        text = b"pre\n" + b"".join(parts) + rng.choice([b"", b"\n!end\nafter\nmore", b"!end tail\nz", b"\n!end"])
        skip = rng.randint(0, 6)
        got = []
        for how in ("reader", "hash"):
            lb = LineBuffer(io.BytesIO(text), "x")
            for _ in range(skip):
                lb.readline_bytes()
            d = _by_marker_reader(lb, b"!end") if how == "reader" else _by_hash_until(lb, b"!end", rng.choice([5, 64, 1 << 20]))
            got.append((d, lb.lineno, lb.readline_bytes(), lb.readline_bytes()))
        assert got[0] == got[1], (text, skip)


@pytest.mark.parametrize("seed", range(3))
def test_find_line_start_and_count_newlines_equal_the_plain_search(seed):
    """The memchr-first search equals bytearray.find of the whole needle (text with few and with very many
    marker first bytes, which switch it to the plain search), and the vectorised count equals bytes.count."""
    from genotex_dask.io._stream import _COUNT_STEP, count_newlines, find_line_start

    rng = random.Random(seed)
    needle = b"\n!end"
    for _ in range(300):
        bang = rng.choice([0.01, 0.3])  # share of "!" pieces: 0.3 makes > 64 false hits in long texts
        pieces = [b"!" if rng.random() < bang else rng.choice([b"a", b"\n", b"!en", b"\n!e", b"\n!end", b"x"])
                  for _ in range(rng.randint(0, 400))]
        w = bytearray(b"".join(pieces))
        lo = rng.randint(0, len(w))
        hi = rng.randint(lo, len(w))
        assert find_line_start(w, needle, lo, hi) == w.find(needle, lo, hi), (bytes(w), lo, hi)
        assert count_newlines(memoryview(w)[lo:hi]) == w.count(b"\n", lo, hi)
    big = bytearray(b"ab\ncd\n" * (_COUNT_STEP // 3 + 7))  # more than one comparison step
    assert count_newlines(memoryview(big)) == big.count(b"\n")


@pytest.mark.parametrize("module", ["gzip", "isal.igzip"])
def test_raw_reads_of_a_gzip_stream_equal_its_decompressed_bytes(tmp_path, module):
    """readinto_raw on a gzip file (read through the reader inside the gzip object) gives exactly the
    decompressed bytes, interleaved with line reads, across concatenated members; a corrupt stream is an
    InputFormatError naming the file and a decompression bomb still meets its bound."""
    import gzip
    import importlib

    from genotex_dask.io import _stream
    from genotex_dask.io.errors import InputFormatError, InputLimitError

    gz = importlib.import_module(module)
    rng = random.Random(5)
    text = b"".join(b"line %d\t%s\n" % (i, bytes(rng.choice(b"0123456789.") for _ in range(rng.randint(0, 40))))
                    for i in range(30_000))
    cut = len(text) // 3
    path = tmp_path / "m.gz"
    path.write_bytes(gzip.compress(text[:cut]) + gzip.compress(text[cut:]))  # two members
    with open(path, "rb") as raw:
        stream = gz.GzipFile(fileobj=raw, mode="rb")
        lb = LineBuffer(stream, str(path), raw)
        assert lb._direct is not None  # the reader inside the gzip object, not GzipFile.readinto
        got = [lb.readline_bytes() + b"\n" for _ in range(3)]
        got.append(lb.take_buffered())
        w = bytearray(rng.choice([1000, 1 << 16, 1 << 20]))
        with memoryview(w) as mv:
            while n := lb.readinto_raw(mv):
                got.append(bytes(mv[:n]))
        assert b"".join(got) == text and lb.inflated == len(text)
    bad = bytearray(gzip.compress(text))
    bad[len(bad) // 2: len(bad) // 2 + 64] = bytes(64)
    path.write_bytes(bytes(bad))
    with open(path, "rb") as raw, pytest.raises(InputFormatError, match="m.gz"):
        lb = LineBuffer(gz.GzipFile(fileobj=raw, mode="rb"), str(path), raw)
        with memoryview(bytearray(1 << 20)) as mv:
            while lb.readinto_raw(mv):
                pass
    path.write_bytes(gzip.compress(bytes(64 << 20)))
    with open(path, "rb") as raw, pytest.raises(InputLimitError, match="MAX_INFLATE_RATIO"):
        lb = LineBuffer(gz.GzipFile(fileobj=raw, mode="rb"), str(path), raw)
        with memoryview(bytearray(1 << 20)) as mv:
            while lb.readinto_raw(mv):
                pass
    assert _stream._direct_readinto(io.BytesIO(b"plain")) is None

"""Unbuffered (O_DIRECT) writes of large outputs: the file holds exactly the bytes given (a padded last block cut back
to its length), whatever their chunking and size (whole blocks, a partial last block, under one block), whether the
file system accepts O_DIRECT or refuses it (then everything is written buffered)."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

from genotex_dask.io import filewrite
from genotex_dask.pipelines import csv_out

BLOCK = 64 << 10  # a small block for the tests (a multiple of 4096, as the real one)


def _chunks(data: bytes, rng) -> list:
    """``data`` cut at random places, as bytes and as memoryviews of numpy buffers (what the writers pass)."""
    cuts = sorted(set(rng.integers(0, len(data) + 1, 7).tolist()) | {0, len(data)})
    out = []
    for a, b in zip(cuts, cuts[1:]):
        piece = data[a:b]
        out.append(piece if len(out) % 2 else memoryview(np.frombuffer(piece, np.uint8)))
    return out


def _o_direct_used(monkeypatch) -> list[bool]:
    """Records, per pwrite, whether its descriptor was opened with O_DIRECT."""
    import fcntl

    used: list[bool] = []
    real = os.pwrite

    def pwrite(fd, data, pos):
        used.append(bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT))
        return real(fd, data, pos)

    monkeypatch.setattr(csv_out.os, "pwrite", pwrite)
    return used


@pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="no O_DIRECT on this platform (the buffered path is used)")
@pytest.mark.parametrize("size", [0, 100, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK, 3 * BLOCK + 4095])
def test_direct_write_holds_exactly_the_bytes(tmp_path, monkeypatch, size):
    monkeypatch.setattr(filewrite, "DIRECT_BLOCK", BLOCK)
    rng = np.random.default_rng(size)
    data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    used = _o_direct_used(monkeypatch)
    url = str(tmp_path / "sub" / "x.csv")
    csv_out._atomic_stream(url, _chunks(data, rng), direct=True)
    assert (tmp_path / "sub" / "x.csv").read_bytes() == data
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["x.csv"]  # no temporary left
    # every block went unbuffered unless this file system refuses O_DIRECT (tmpfs): then none did; the partial
    # last block too (padded, then cut off) when whole blocks came before it, buffered in a file under one block
    n_blocks = size // BLOCK
    n_direct = n_blocks + (1 if n_blocks and size % BLOCK else 0)
    assert used.count(True) in ((n_direct,) if _accepts_o_direct(tmp_path) else (0,))
    assert not any(used[n_direct:])


def _accepts_o_direct(d) -> bool:
    try:
        fd = os.open(str(d / ".probe"), os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o644)
    except OSError:
        return False
    os.close(fd)
    os.remove(str(d / ".probe"))
    return True


def test_a_file_system_refusing_o_direct_gets_the_same_file(tmp_path, monkeypatch):
    """O_DIRECT refused at open (EINVAL, as tmpfs does) or at the first write: the file is written buffered."""
    monkeypatch.setattr(filewrite, "DIRECT_BLOCK", BLOCK)
    data = np.random.default_rng(1).integers(0, 256, 2 * BLOCK + 10, dtype=np.uint8).tobytes()
    real_open, real_pwrite = os.open, os.pwrite
    direct = getattr(os, "O_DIRECT", 0)

    def refusing_open(path, flags, *a):
        if flags & direct:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *a)

    monkeypatch.setattr(csv_out.os, "open", refusing_open)
    csv_out._atomic_stream(str(tmp_path / "a.csv"), [data], direct=True)
    assert (tmp_path / "a.csv").read_bytes() == data
    monkeypatch.setattr(csv_out.os, "open", real_open)

    def refusing_write(fd, buf, pos):
        import fcntl

        if fcntl.fcntl(fd, fcntl.F_GETFL) & direct:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_pwrite(fd, buf, pos)

    if direct:
        monkeypatch.setattr(csv_out.os, "pwrite", refusing_write)
    csv_out._atomic_stream(str(tmp_path / "b.csv"), [data[:5], data[5:]], direct=True)
    assert (tmp_path / "b.csv").read_bytes() == data


def test_gene_data_written_direct_equals_buffered(tmp_path, monkeypatch):
    """The CSV writer's text is the same with and without unbuffered writes (keep_cells and streaming paths)."""
    monkeypatch.setattr(filewrite, "DIRECT_BLOCK", 16 << 10)
    rng = np.random.default_rng(3)
    vals = rng.normal(7, 2, (300, 40))
    vals[rng.random(vals.shape) < 0.05] = np.nan
    rows, cols = [f"G{i}" for i in range(300)], [f"GSM{i}" for i in range(40)]
    for keep in (True, False):
        texts = []
        for direct in (True, False):
            url = str(tmp_path / f"{keep}{direct}.csv")
            c = csv_out.write_matrix_csv(url, "ID", rows, cols, vals, 7, True, keep_cells=keep, direct=direct)
            if c is not None:
                c.release()
            texts.append((tmp_path / f"{keep}{direct}.csv").read_bytes())
        assert texts[0] == texts[1] and len(texts[0]) > 3 * (16 << 10)

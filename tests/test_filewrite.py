"""io.filewrite: files written past the page cache hold exactly the bytes given (any size, any chunking), also
where O_DIRECT is refused; a cohort group written with ``direct`` equals the buffered one file for file."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from genotex_dask.io import filewrite, store
from genotex_dask.pipelines.ingest import discover, ingest_cohort
from genotex_dask.synth.corpus import write_corpus

A, B = filewrite.ALIGN, filewrite.DIRECT_BLOCK


def _accepts_o_direct(d: Path) -> bool:
    try:
        fd = os.open(str(d / ".probe"), os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o644)
    except (OSError, AttributeError):
        return False
    os.close(fd)
    os.remove(str(d / ".probe"))
    return True


@pytest.mark.parametrize("size", [0, 1, A - 1, A, A + 1, 3 * A + 17, B - 1, B, B + A, 2 * B + 5])
def test_same_bytes_any_size(tmp_path, monkeypatch, size):
    """Every block, the padded last one too, goes unbuffered where the file system takes O_DIRECT; the padding
    is cut off."""
    import fcntl

    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    path = tmp_path / "f"
    path.write_bytes(b"x" * (size + 9000))  # an older, longer file is truncated
    used: list[bool] = []
    real = os.pwrite

    def pwrite(fd, buf, pos):
        used.append(bool(fcntl.fcntl(fd, fcntl.F_GETFL) & getattr(os, "O_DIRECT", 0)))
        return real(fd, buf, pos)

    monkeypatch.setattr(os, "pwrite", pwrite)
    filewrite.write_file_direct(str(path), [data])
    assert path.read_bytes() == data
    blocks = -(-size // B)
    assert used == ([True] * blocks if _accepts_o_direct(tmp_path) else [False] * blocks)


def test_chunks_of_mixed_types_and_odd_sizes(tmp_path):
    rng = np.random.default_rng(1)
    parts = [rng.integers(0, 256, n, dtype=np.uint8) for n in (5, A, 3 * A - 1, B + 7, 0, 1234)]
    chunks = [parts[0].tobytes(), memoryview(parts[1]), parts[2], parts[3].view(np.int8), b"", bytearray(parts[5])]
    filewrite.write_file_direct(str(tmp_path / "f"), chunks)
    assert (tmp_path / "f").read_bytes() == b"".join(p.tobytes() for p in parts)


@pytest.mark.parametrize("where", ["open", "write"])
def test_refused_o_direct_writes_buffered(tmp_path, monkeypatch, where):
    """A file system refusing O_DIRECT (EINVAL at open or at the first write): the same bytes, buffered.  Where
    the system has no O_DIRECT, a stand-in flag is given to os for the test, so it runs everywhere."""
    has_direct, direct = hasattr(os, "O_DIRECT"), getattr(os, "O_DIRECT", 0o40000)
    monkeypatch.setattr(os, "O_DIRECT", direct, raising=False)
    real_open, real_pwrite = os.open, os.pwrite
    direct_fds: set[int] = set()
    calls = {"refused": 0}

    def fake_open(path, flags, *a):
        if flags & direct:
            if where == "open":
                calls["refused"] += 1
                raise OSError(errno.EINVAL, "refused")
            fd = real_open(path, flags if has_direct else flags & ~direct, *a)
            direct_fds.add(fd)
            return fd
        return real_open(path, flags, *a)

    def fake_pwrite(fd, data, pos):
        if fd in direct_fds:
            calls["refused"] += 1
            raise OSError(errno.EINVAL, "refused")
        return real_pwrite(fd, data, pos)

    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(os, "pwrite", fake_pwrite)
    data = np.random.default_rng(2).integers(0, 256, 2 * B + 3 * A + 11, dtype=np.uint8).tobytes()
    filewrite.write_file_direct(str(tmp_path / "f"), [data])
    assert (tmp_path / "f").read_bytes() == data
    assert calls["refused"] == 1  # refused once, then buffered without asking again


def test_other_errors_are_raised(tmp_path, monkeypatch):
    """A full disk past the first block is raised, not taken for a refusal (unbuffered or, without O_DIRECT,
    buffered)."""
    real_pwrite = os.pwrite

    def full(fd, data, pos):
        if pos >= B:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_pwrite(fd, data, pos)

    monkeypatch.setattr(os, "pwrite", full)
    with pytest.raises(OSError, match="No space"):
        filewrite.write_file_direct(str(tmp_path / "f"), [bytes(2 * B)])


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
            and p.name != store.COMPLETE_MARK}


def test_pipelined_ingest_writes_the_same_group(tmp_path, monkeypatch):
    """ingest_cohort with the matrix handed on (chunks past the page cache) writes the group the staged ingest
    writes, byte for byte (the completion record differs only in its time); only the large chunks of the handed-on
    ingest went direct, with store.direct-writes on: none in the staged ingest (the preprocess stage reads them back)
    nor with the setting at its default (off)."""
    import dask

    root = tmp_path / "corpus"
    write_corpus(str(root), traits=1, cohorts_per_trait=1, samples=70, probes=9000, platforms=1, seed=3,
                 vary_samples=False, compresslevel=1)
    sent: list[int] = []
    real = filewrite.write_file_direct
    monkeypatch.setattr(filewrite, "DIRECT_MIN_BYTES", 64 << 10)  # this small cohort's chunks (~1 MB each) go direct
    monkeypatch.setattr(filewrite, "write_file_direct",
                        lambda path, chunks: (sent.append(sum(memoryview(c).nbytes for c in chunks)),
                                              real(path, chunks))[1])
    staged = discover(str(root), str(tmp_path / "s1"))[0]
    assert ingest_cohort(staged)["status"] == "ingested"
    assert not sent
    piped = discover(str(root), str(tmp_path / "s2"))[0]
    handed: dict = {}
    with dask.config.set({"genotex_dask.store.direct-writes": True}):
        assert ingest_cohort(piped, matrix_out=handed)["status"] == "ingested"
    assert handed["X"].shape == (70, 9000)
    assert sent and min(sent) >= 64 << 10
    a, b = _tree(Path(staged.out)), _tree(Path(piped.out))
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a)
    assert np.array_equal(store.open_cohort(piped.out).X, handed["X"], equal_nan=True)
    sent.clear()
    off = discover(str(root), str(tmp_path / "s3"))[0]
    assert ingest_cohort(off, matrix_out={})["status"] == "ingested"  # the default: off
    assert not sent and _tree(Path(off.out)) == a

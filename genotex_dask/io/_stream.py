"""Streaming access to (possibly gzipped) text files: lines for headers, raw byte ranges for tables.

The readers walk a file once.  Header lines are read one at a time; a data table is handed to pyarrow
as a file-like object that ends at the table's end marker, and tables nobody asked for are skipped by
searching the byte buffer for the end marker (no line splitting, no parsing, nothing kept).  The whole
decompressed file is never held: the buffer holds about one read block.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from genotex_dask.io import fs
from genotex_dask.io.errors import InputFormatError

try:  # ISA-L's gzip is ~3x faster than zlib at decompression; fall back silently when absent.
    from isal import igzip as _gz

    HAVE_ISAL = True
except ImportError:  # pragma: no cover - isal is a dependency, the fallback is for odd platforms
    _gz = gzip
    HAVE_ISAL = False

BLOCK = 1 << 20  # bytes decompressed per refill
_GZIP_MAGIC = b"\x1f\x8b"


def _decode(raw: bytes) -> str:
    """GEO text is UTF-8 nearly always; a few old records are Latin-1, which never fails to decode."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


class LineBuffer:
    """A decompressed byte stream with a refillable buffer, a line counter and marker search.

    ``lineno`` is the 1-based number of the line that the next ``readline`` returns.
    """

    def __init__(self, stream, path: str):
        self._stream = stream
        self.path = path
        self.buf = bytearray()
        self.pos = 0
        self.eof = False
        self.lineno = 1
        self.error: InputFormatError | None = None
        self.lineno_exact = True  # False once a raw reader skipped line counting

    # -- low level ------------------------------------------------------------------------------
    def _read_block(self, n: int) -> bytes:
        """n decompressed bytes (fewer at the end); corrupt/truncated gzip -> InputFormatError."""
        if self.eof:
            return b""
        try:
            chunk = self._stream.read(n)
        except (EOFError, OSError, zlib.error) as exc:
            self.error = InputFormatError(self.path, f"truncated or corrupt gzip stream ({exc})", self.lineno)
            raise self.error from exc
        except Exception as exc:  # isal raises its own error type for corrupt data
            if type(exc).__name__ in ("IsalError", "error"):
                self.error = InputFormatError(self.path, f"corrupt gzip stream ({exc})", self.lineno)
                raise self.error from exc
            raise
        if not chunk:
            self.eof = True
        return chunk

    def _fill(self) -> bool:
        """Read one more block into the buffer; False at the end of the stream."""
        chunk = self._read_block(BLOCK)
        if not chunk:
            return False
        if self.pos > (1 << 16) and self.pos * 2 > len(self.buf):
            del self.buf[: self.pos - 1]  # keep one byte so "at line start" stays decidable
            self.pos = 1
        self.buf += chunk
        return True

    # -- raw block access for compiled table parsers (no buffering, no line counting) --------------
    def take_buffered(self) -> bytes:
        """Hand over the buffered, not yet consumed bytes (the caller continues with ``read_raw``)."""
        out = bytes(self.buf[self.pos :])
        self.buf = bytearray()
        self.pos = 0
        self.lineno_exact = False
        return out

    def read_raw(self, n: int) -> bytes:
        return self._read_block(n)

    def readinto_raw(self, view: memoryview) -> int:
        """Decompress straight into ``view`` (a reusable buffer: no fresh allocation per block)."""
        if self.eof or len(view) == 0:
            return 0
        try:
            readinto = getattr(self._stream, "readinto", None)
            if readinto is not None:
                n = readinto(view)
            else:
                data = self._stream.read(len(view))
                n = len(data)
                view[:n] = data
        except (EOFError, OSError, zlib.error) as exc:
            self.error = InputFormatError(self.path, f"truncated or corrupt gzip stream ({exc})", self.lineno)
            raise self.error from exc
        except Exception as exc:
            if type(exc).__name__ in ("IsalError", "error"):
                self.error = InputFormatError(self.path, f"corrupt gzip stream ({exc})", self.lineno)
                raise self.error from exc
            raise
        if not n:
            self.eof = True
        return n or 0

    def push_back(self, data: bytes) -> None:
        """Give back bytes read past a table's end so line reading continues after it."""
        self.buf = bytearray(data) + self.buf[self.pos :]
        self.pos = 0

    def _consume(self, end: int) -> None:
        self.lineno += self.buf.count(b"\n", self.pos, end)
        self.pos = end

    # -- lines ------------------------------------------------------------------------------------
    def readline_bytes(self) -> bytes | None:
        """Next line without its line ending; None at the end of the file."""
        while True:
            nl = self.buf.find(b"\n", self.pos)
            if nl >= 0:
                line = bytes(self.buf[self.pos : nl])
                self.pos = nl + 1
                self.lineno += 1
                return line[:-1] if line.endswith(b"\r") else line
            if not self._fill():
                if self.pos >= len(self.buf):
                    return None
                line = bytes(self.buf[self.pos :])
                self.pos = len(self.buf)
                self.lineno += 1
                return line[:-1] if line.endswith(b"\r") else line

    def readline(self) -> str | None:
        raw = self.readline_bytes()
        return None if raw is None else _decode(raw)

    def __iter__(self) -> Iterator[str]:
        while (line := self.readline()) is not None:
            yield line

    # -- tables -----------------------------------------------------------------------------------
    def _find_marker_line(self, marker: bytes) -> tuple[int, bool]:
        """(index where the marker line starts or where unsent data must stop, found?)."""
        if self.buf.startswith(marker, self.pos) and (self.pos == 0 or self.buf[self.pos - 1] == 10):
            return self.pos, True
        idx = self.buf.find(b"\n" + marker, self.pos)
        if idx >= 0:
            return idx + 1, True
        if self.eof:
            return len(self.buf), False
        # keep a tail that could be the start of a marker split across blocks
        return max(self.pos, len(self.buf) - len(marker)), False

    def skip_until(self, marker: bytes) -> bool:
        """Discard everything up to and including the next line starting with ``marker``; False if never found."""
        while True:
            end, found = self._find_marker_line(marker)
            self._consume(end)
            if found:
                self.readline_bytes()
                return True
            if not self._fill():
                self._consume(len(self.buf))
                return False

    def until(self, marker: bytes) -> MarkerReader:
        """A file-like object over the bytes before the next line starting with ``marker``."""
        return MarkerReader(self, marker)


class MarkerReader(io.RawIOBase):
    """Readable bytes up to (not including) a marker line; afterwards ``found`` tells if the marker was seen.

    pyarrow's CSV reader pulls from this; the marker line itself is consumed so the caller's
    LineBuffer continues after it.
    """

    def __init__(self, lb: LineBuffer, marker: bytes):
        super().__init__()
        self.lb = lb
        self.marker = marker
        self.done = False
        self.found = False
        self.nbytes = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all remaining when n < 0); short only at the marker or the end of the file.

        pyarrow treats every returned piece as a block, so pieces are filled up to ``n``.
        """
        lb = self.lb
        parts: list[bytes] = []
        want = n if n is not None and n >= 0 else -1
        got = 0
        while not self.done and (want < 0 or got < want):
            end, found = lb._find_marker_line(self.marker)
            if end > lb.pos:
                stop = end if want < 0 else min(end, lb.pos + want - got)
                parts.append(bytes(lb.buf[lb.pos : stop]))
                got += stop - lb.pos
                lb._consume(stop)
                continue
            if found:
                lb.readline_bytes()  # the marker line
                self.done = self.found = True
                break
            if not lb._fill():
                if lb.pos < len(lb.buf):
                    continue  # the kept tail was not a marker after all
                self.done = True
        out = parts[0] if len(parts) == 1 else b"".join(parts)
        self.nbytes += len(out)
        return out

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


@contextmanager
def open_lines(url: str) -> Iterator[LineBuffer]:
    """Open ``url`` (gzip detected from its magic bytes, not its name) as a LineBuffer."""
    raw = fs.open_binary(url)
    try:
        head = raw.read(2)
        raw.seek(0)
        stream = _gz.GzipFile(fileobj=raw, mode="rb") if head == _GZIP_MAGIC else raw
        try:
            yield LineBuffer(stream, url)
        finally:
            if stream is not raw:
                stream.close()
    finally:
        raw.close()


def split_tab_unquote(line: str) -> list[str]:
    """Split a series-matrix line on tabs and drop one pair of surrounding double quotes per field."""
    out = []
    for f in line.split("\t"):
        if len(f) >= 2 and f[0] == '"' and f[-1] == '"':
            f = f[1:-1]
        out.append(f)
    return out


def unique_names(names: list[str]) -> list[str]:
    """Make duplicated column names unique the way pandas.read_csv does: 2nd 'X' -> 'X.1', 3rd -> 'X.2'.

    Matching pandas keeps the names equal to what the reference code (pandas) sees, e.g. GEO ``.annot``
    files repeat ``GO:Function`` for the term and identifier columns.
    """
    seen: dict[str, int] = {}
    taken = set(names)
    out = []
    for name in names:
        if name not in seen:
            seen[name] = 0
            out.append(name)
            continue
        k = seen[name]
        while True:
            k += 1
            cand = f"{name}.{k}"
            if cand not in taken:
                break
        seen[name] = k
        taken.add(cand)
        out.append(cand)
    return out

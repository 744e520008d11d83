"""Streaming access to (possibly gzipped) text files: lines for headers, raw byte ranges for tables.

The readers walk a file once.  Header lines are read one at a time; a data table is handed to pyarrow
as a file-like object that ends at the table's end marker, and tables nobody asked for are skipped by
searching the byte buffer for the end marker (no line splitting, no parsing, nothing kept).  The whole
decompressed file is never held: the buffer holds about one read block.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from genotex_dask.io import fs
from genotex_dask.io.errors import InputFormatError, InputLimitError

try:  # ISA-L's gzip is ~3x faster than zlib at decompression; fall back silently when absent.
    from isal import igzip as _gz

    HAVE_ISAL = True
except ImportError:  # pragma: no cover - isal is a dependency, the fallback is for odd platforms
    _gz = gzip
    HAVE_ISAL = False

BLOCK = 64 << 10  # bytes decompressed per refill (below glibc's mmap threshold: see READ_SLICE)
READ_SLICE = 64 << 10  # bytes per decompressor call of readinto_raw
_GZIP_MAGIC = b"\x1f\x8b"

# Bounds on what a reader inflates (inputs are untrusted: a 10 MB gzip can hold 10 GB of zeros).  Each is a
# module default, overridable per call (keywords of :func:`open_lines`) or per process, workers included, by the
# environment variable of the same name prefixed ``GENOTEX_DASK_`` (e.g. ``GENOTEX_DASK_MAX_LINE_BYTES``).
MAX_LINE_BYTES = 16 << 20          # one text line; GEO's longest real lines (a sample row of ~20k GSMs) are ~2 MB
MAX_INFLATE_RATIO = 100.0          # decompressed / compressed bytes; real GEO/TCGA files are 2-10x, zeros ~1000x
RATIO_GRACE_BYTES = 16 << 20       # the ratio is checked once this much was decompressed (small files vary)
MAX_INFLATED_BYTES = 64 << 30      # total decompressed bytes of one file (GEO's largest family SOFTs are ~20 GB)
MAX_HEADER_BYTES = 256 << 20       # memory for text kept whole: a matrix's header lines (their text plus ~56 bytes
                                   # per field; GEO's largest real headers cost ~50 MB), a TCGA clinical matrix


def _limit(name: str, value: float | None) -> float:
    if value is not None:
        return value
    env = os.environ.get(f"GENOTEX_DASK_{name}")
    return float(env) if env else globals()[name]


def _decode(raw: bytes) -> str:
    """GEO text is UTF-8 nearly always; a few old records are Latin-1, which never fails to decode."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _direct_readinto(stream):
    """The ``readinto`` of the buffered reader inside a gzip file object (stdlib or ISA-L), or None.

    Why: a ``GzipFile``'s own ``readinto`` is ``io.BufferedIOBase``'s generic one, which calls ``read(n)`` (a
    fresh n-byte object the decompressor fills) and copies that into the caller's buffer; the reader it wraps
    decompresses straight into the buffer (ISA-L's C reader does), so a 67 MB series matrix is inflated with
    no per-block object and no copy (~4% of its inflate CPU).  ``GzipFile.read`` itself only delegates to that
    reader, so reading through it keeps the file object's position and end-of-stream state as they were."""
    inner = getattr(stream, "_buffer", None)
    if isinstance(stream, gzip.GzipFile) and isinstance(inner, io.BufferedReader):
        return inner.readinto
    return None


class LineBuffer:
    """A decompressed byte stream with a refillable buffer, a line counter and marker search.

    ``lineno`` is the 1-based number of the line that the next ``readline`` returns.
    """

    def __init__(self, stream, path: str, raw=None, max_line_bytes: int | None = None,
                 max_inflate_ratio: float | None = None, max_inflated_bytes: int | None = None):
        self._stream = stream
        self._raw = raw  # the compressed byte stream (None for plain text: nothing is inflated)
        self.path = path
        self.buf = bytearray()
        self.pos = 0
        self.eof = False
        self.lineno = 1
        self.error: InputFormatError | None = None
        self.lineno_exact = True  # False once a raw reader skipped line counting
        self.inflated = 0
        self.max_line_bytes = int(_limit("MAX_LINE_BYTES", max_line_bytes))
        self.max_inflate_ratio = float(_limit("MAX_INFLATE_RATIO", max_inflate_ratio))
        self.max_inflated_bytes = int(_limit("MAX_INFLATED_BYTES", max_inflated_bytes))
        self.max_header_bytes = int(_limit("MAX_HEADER_BYTES", None))
        self._direct = _direct_readinto(stream)

    def header_limit(self, nbytes: int, what: str) -> None:
        """InputLimitError once ``nbytes`` of text that is kept whole (``what``) exceed ``MAX_HEADER_BYTES``."""
        if nbytes > self.max_header_bytes:
            self.error = InputLimitError(self.path, f"{what} would hold more than {self.max_header_bytes} bytes "
                                         "in memory (MAX_HEADER_BYTES)", self.lineno)
            raise self.error

    # -- low level ------------------------------------------------------------------------------
    def _gzip_error(self, exc: BaseException) -> InputFormatError:
        """The error for a corrupt/truncated stream, at the first line that could not be read whole."""
        if self._raw is None:  # plain text: a read error of the file system, lines so far are exact
            self.error = InputFormatError(self.path, f"read error ({type(exc).__name__}: {exc})",
                                          self.lineno + self.buf.count(b"\n", self.pos) if self.lineno_exact
                                          else None)
            return self.error
        self.error = InputFormatError(self.path, f"truncated or corrupt gzip stream ({exc})",
                                      _first_unreadable_line(self.path, self.max_inflated_bytes))
        return self.error

    def _account(self, n: int) -> None:
        """Count ``n`` more decompressed bytes; a bound exceeded -> InputLimitError naming the knob."""
        self.inflated += n
        if self._raw is None:
            return
        if self.inflated > self.max_inflated_bytes:
            self.error = InputLimitError(self.path, f"decompressed size exceeds {self.max_inflated_bytes} bytes "
                                         "(MAX_INFLATED_BYTES; a decompression bomb?)")
            raise self.error
        if self.inflated > RATIO_GRACE_BYTES:
            try:
                packed = max(int(self._raw.tell()), 1)
            except (OSError, ValueError, AttributeError):
                return
            if self.inflated / packed > self.max_inflate_ratio:
                self.error = InputLimitError(
                    self.path, f"decompression ratio above {self.max_inflate_ratio:g} ({self.inflated} bytes from "
                    f"{packed}; MAX_INFLATE_RATIO; a decompression bomb?)")
                raise self.error

    def _read_block(self, n: int) -> bytes:
        """n decompressed bytes (fewer at the end); corrupt/truncated gzip -> InputFormatError."""
        if self.eof:
            return b""
        try:
            chunk = self._stream.read(n)
        except (EOFError, OSError, zlib.error) as exc:
            raise self._gzip_error(exc) from exc
        except Exception as exc:  # isal raises its own error type for corrupt data
            if type(exc).__name__ in ("IsalError", "error"):
                raise self._gzip_error(exc) from exc
            raise
        if not chunk:
            self.eof = True
        self._account(len(chunk))
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
            if self._direct is not None:  # the whole view at once: nothing is allocated per call
                n = 0
                while n < len(view):
                    got = self._direct(view[n:])
                    if not got:
                        break
                    n += got
            elif readinto is not None:
                # in slices: the decompressor allocates what it is asked for per call, and a slice below
                # glibc's mmap threshold reuses heap memory where a 4 MB request maps, faults in and unmaps
                # fresh pages each time (Dask workers fix that threshold at 128 KB via MALLOC_TRIM_THRESHOLD_)
                n = 0
                while n < len(view):
                    got = readinto(view[n:n + READ_SLICE])
                    if not got:
                        break
                    n += got
            else:
                data = self._stream.read(len(view))
                n = len(data)
                view[:n] = data
        except (EOFError, OSError, zlib.error) as exc:
            raise self._gzip_error(exc) from exc
        except Exception as exc:
            if type(exc).__name__ in ("IsalError", "error"):
                raise self._gzip_error(exc) from exc
            raise
        if not n:
            self.eof = True
        self._account(n or 0)
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
            if nl - self.pos > self.max_line_bytes or (nl < 0 and len(self.buf) - self.pos > self.max_line_bytes):
                self.error = InputLimitError(self.path, f"line longer than {self.max_line_bytes} bytes "
                                             "(MAX_LINE_BYTES)", self.lineno)
                raise self.error
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

    def hash_until(self, marker: bytes, update, block: int = 1 << 20) -> bool:
        """Feed ``update`` the bytes before the next line starting with ``marker`` and consume that line;
        False when the file ends without it.  Decompresses straight into one reusable buffer and hands
        ``update`` views of it: none of the per-block copies, appends and trims of the line reader (a 20 MB
        platform table cost twice the hashing in them)."""
        needle = b"\n" + marker
        keep = len(needle) - 1  # a tail that may be the start of a marker line cut by the block end
        head = self.buf[self.pos:]
        w = bytearray(max(block, len(head)) + keep + 1)
        # a virtual newline in front when the next byte starts a line: "\n" + marker then also finds it there
        lead = 1 if self.pos == 0 or self.buf[self.pos - 1] == 10 else 0
        w[0:1] = b"\n"
        w[lead:lead + len(head)] = head
        filled = lead + len(head)
        start = lead  # w[start:filled] is unhashed stream text
        self.buf, self.pos = bytearray(), 0
        with memoryview(w) as mv:
            while True:
                idx = find_line_start(w, needle, 0, filled)
                if idx >= 0:
                    if idx + 1 > start:
                        update(mv[start:idx + 1])
                        self.lineno += count_newlines(mv[start:idx + 1])
                    self.push_back(bytes(mv[idx + 1:filled]))
                    self.readline_bytes()  # the marker line
                    return True
                cut = max(start, filled - keep)
                if cut > start:
                    update(mv[start:cut])
                    self.lineno += count_newlines(mv[start:cut])
                w[0:filled - cut] = w[cut:filled]
                filled -= cut
                start = 0
                n = self.readinto_raw(mv[filled:])  # room for a block: at most ``keep`` bytes were kept
                if n == 0:
                    if filled:
                        update(mv[:filled])
                        self.lineno += count_newlines(mv[:filled])
                    return False
                filled += n

    def until(self, marker: bytes) -> MarkerReader:
        """A file-like object over the bytes before the next line starting with ``marker``."""
        return MarkerReader(self, marker)


_COUNT_STEP = 64 << 10  # bytes per comparison: its bool temporary stays below glibc's mmap threshold
_FALSE_HITS = 64  # marker first bytes not starting a marker line before find_line_start searches the plain way


def count_newlines(view) -> int:
    """Number of ``\n`` bytes in ``view``: numpy's vectorised compare is ~4x ``bytearray.count`` of one byte
    (a 20 MB platform table's line count cost a third of its sha256)."""
    a = np.frombuffer(view, dtype=np.uint8)
    return sum(int(np.count_nonzero(a[i:i + _COUNT_STEP] == 10)) for i in range(0, len(a), _COUNT_STEP))


def find_line_start(w, needle: bytes, lo: int, hi: int) -> int:
    """``w.find(needle, lo, hi)`` for a ``needle`` of a newline then a marker whose first byte is rare in text
    (``!``): a memchr for that byte and a compare per hit, ~10x faster than the general substring search on
    table text.  After ``_FALSE_HITS`` hits that start no marker line the general search takes over, so text
    full of that byte costs no more than before."""
    first = needle[1:2]
    pos = lo + 1
    for _ in range(_FALSE_HITS):
        j = w.find(first, pos, hi)
        if j < 0:
            return -1
        if w.startswith(needle, j - 1, hi):
            return j - 1
        pos = j + 1
    return w.find(needle, pos - 1, hi)


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


def _first_unreadable_line(url: str, max_bytes: int) -> int | None:
    """1-based number of the first line a corrupt or truncated gzip file does not hold whole.

    Only called after a read failed: the file is decompressed again with zlib in small steps, so no output
    is lost with the failing call (a buffered reader drops up to a block, which made lines off by thousands).
    """
    lines, total = 0, 0
    try:
        with fs.open_binary(url) as raw:
            d = zlib.decompressobj(wbits=31)
            while total <= max_bytes:
                chunk = d.unconsumed_tail or raw.read(1 << 16)
                if not chunk:
                    break
                out = d.decompress(chunk, 1 << 20)
                lines += out.count(b"\n")
                total += len(out)
                if d.eof:  # next gzip member (concatenated files are valid gzip)
                    rest = d.unused_data
                    d = zlib.decompressobj(wbits=31)
                    if rest:
                        out = d.decompress(rest, 1 << 20)
                        lines += out.count(b"\n")
                        total += len(out)
    except (zlib.error, OSError, EOFError):
        pass
    return lines + 1


@contextmanager
def open_lines(url: str, max_line_bytes: int | None = None, max_inflate_ratio: float | None = None,
               max_inflated_bytes: int | None = None) -> Iterator[LineBuffer]:
    """Open ``url`` (gzip detected from its magic bytes, not its name) as a LineBuffer.

    The bounds (module defaults ``MAX_LINE_BYTES``, ``MAX_INFLATE_RATIO``, ``MAX_INFLATED_BYTES``) stop a
    decompression bomb or an endless line with :class:`InputLimitError` before memory or time runs away.
    """
    raw = fs.open_binary(url)
    try:
        head = raw.read(2)
        raw.seek(0)
        gz = head == _GZIP_MAGIC
        stream = _gz.GzipFile(fileobj=raw, mode="rb") if gz else raw
        try:
            yield LineBuffer(stream, url, raw if gz else None, max_line_bytes, max_inflate_ratio,
                             max_inflated_bytes)
        finally:
            if stream is not raw:
                stream.close()
    finally:
        raw.close()


def split_tab_unquote(line: str) -> list[str]:
    """Split a series-matrix line on tabs and drop one pair of surrounding double quotes per field."""
    if len(line) >= 2 and line[0] == '"' and line[-1] == '"':
        # every field quoted, no other quote (GEO's sample lines): one split, where a loop cost ~40 ns a field.
        # line == '"' + '"\t"'.join(parts) + '"'; with as many parts as fields and 2 quotes a field, no part
        # holds a tab or a quote, so each field is exactly '"' + part + '"'
        parts = line[1:-1].split('"\t"')
        n = len(parts)
        if line.count("\t") == n - 1 and line.count('"') == 2 * n:
            return parts
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

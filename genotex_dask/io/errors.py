"""The one exception every reader raises for bad input: it names the file, the line and the cause.

Ingest catches it per cohort (one broken file never stops the others) and reports ``str(err)``,
which reads ``<path>: line <n>: <cause>``.
"""

from __future__ import annotations


class InputFormatError(ValueError):
    """A malformed input file: truncated gzip, missing table marker, ragged row, non-numeric cell, ...

    ``path`` is the file's URL, ``line`` the 1-based line of the decompressed text where the problem
    was found (None when unknown, e.g. for a corrupt gzip stream) and ``cause`` a short explanation.
    """

    def __init__(self, path: str, cause: str, line: int | None = None):
        self.path = str(path)
        self.cause = str(cause)
        self.line = line
        where = f"{self.path}: line {line}" if line is not None else self.path
        super().__init__(f"{where}: {self.cause}")

    def __reduce__(self):  # picklable across Dask workers with all three fields
        return (type(self), (self.path, self.cause, self.line))


class InputLimitError(InputFormatError):
    """An input exceeded a reader bound (line length, decompressed size or compression ratio): a probable
    decompression bomb or a file that is not what its name says.  The cause names the bound and its knob."""

"""Reading a Jupyter notebook as data: its code cells in execution order and their printed text.

A notebook is untrusted input: it is read as JSON through fsspec with a size bound, and only the fields the
importer needs (cell source, execution count, stream/text outputs, errors) are kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from genotex_dask.io import fs

MAX_NOTEBOOK_BYTES = 4 * 1024 * 1024   # GenoTEX's two notebooks above this are reported as unreadable
MAX_OUTPUT_CHARS = 400_000             # printed text kept per cell


class NotebookError(ValueError):
    """A notebook that cannot be read (too large, not JSON, not a notebook); the message is the reason."""


@dataclass
class Cell:
    index: int                   # position in the notebook (0-based, markdown cells counted)
    source: str
    execution_count: int | None
    output: str                  # stream + text/plain outputs, concatenated in order
    error: str | None = None     # ename: evalue of an error output

    @property
    def executed(self) -> bool:
        return self.execution_count is not None


@dataclass
class Notebook:
    path: str
    cells: list[Cell] = field(default_factory=list)

    def executed_cells(self) -> list[Cell]:
        """Code cells that ran, in the order they ran (execution count; ties by position)."""
        return sorted((c for c in self.cells if c.executed), key=lambda c: (c.execution_count, c.index))


def _text(v: object) -> str:
    if isinstance(v, list):
        return "".join(x for x in v if isinstance(x, str))
    return v if isinstance(v, str) else ""


def parse_notebook(data: bytes, path: str = "<notebook>") -> Notebook:
    """A notebook from its bytes (size-bounded JSON)."""
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise NotebookError(f"larger than {MAX_NOTEBOOK_BYTES // (1024 * 1024)} MiB")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotebookError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("cells"), list):
        raise NotebookError("not a notebook (no 'cells' list)")
    nb = Notebook(path)
    for i, c in enumerate(doc["cells"]):
        if not isinstance(c, dict) or c.get("cell_type") != "code":
            continue
        count = c.get("execution_count")
        count = count if isinstance(count, int) and not isinstance(count, bool) else None
        parts, error = [], None
        for o in c.get("outputs") or []:
            if not isinstance(o, dict):
                continue
            kind = o.get("output_type")
            if kind == "stream":
                parts.append(_text(o.get("text")))
            elif kind in ("execute_result", "display_data"):
                parts.append(_text((o.get("data") or {}).get("text/plain")))
            elif kind == "error":
                error = f"{o.get('ename', '')}: {o.get('evalue', '')}"[:500]
        nb.cells.append(Cell(i, _text(c.get("source")), count, "".join(parts)[:MAX_OUTPUT_CHARS], error))
    return nb


def read_notebook(url: str) -> Notebook:
    """Read one notebook; raises :class:`NotebookError` with the reason when it cannot be used."""
    filesystem, path = fs.get_fs(url)
    try:
        size = filesystem.size(path)
    except (OSError, ValueError):
        size = None
    if size is not None and size > MAX_NOTEBOOK_BYTES:
        raise NotebookError(f"larger than {MAX_NOTEBOOK_BYTES // (1024 * 1024)} MiB ({size:,} bytes)")
    with fs.open_binary(url) as f:
        data = f.read(MAX_NOTEBOOK_BYTES + 1)
    return parse_notebook(data, url)

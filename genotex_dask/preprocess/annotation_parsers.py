"""Annotation cell parsers: the gene text of structured platform-annotation columns.

Affymetrix ``gene_assignment`` cells hold records ``accession // SYMBOL // description // cytoband // entrez``
separated by ``///``.  GenoTEX runs its symbol-token pattern over the whole cell, so every uppercase word of the
descriptions (``RIKEN``, ``CDNA``, ...) becomes a candidate gene and takes a share of the probe's value.  The
``gene_assignment`` parser keeps only each record's symbol field (used by default; ``compat="genotex"`` keeps
GenoTEX's whole-cell reading).
"""

from __future__ import annotations

from collections.abc import Sequence

PARSERS = ("text", "gene_assignment")


def gene_assignment_symbols(cell: object) -> str | None:
    """``'NM_1 // A1BG // alpha-1-B // 19q13 // 1 /// NR_2 // A1BG-AS1 // ...'`` -> ``'A1BG A1BG-AS1'``."""
    if not isinstance(cell, str):
        return None
    out: list[str] = []
    for record in cell.split("///"):
        fields = [f.strip() for f in record.split("//")]
        if len(fields) >= 2 and fields[1] and fields[1] != "---" and fields[1] not in out:
            out.append(fields[1])
    return " ".join(out) if out else None


def parse_cells(cells: Sequence[object], parser: str) -> list[object]:
    """Gene text of each annotation cell under ``parser`` (``text`` = the cell unchanged)."""
    if parser == "text":
        return list(cells)
    if parser == "gene_assignment":
        return [gene_assignment_symbols(c) for c in cells]
    raise ValueError(f"unknown annotation parser {parser!r} (known: {', '.join(PARSERS)})")

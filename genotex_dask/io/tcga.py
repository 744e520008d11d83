"""Readers for UCSC Xena TCGA hub files: ``*_clinicalMatrix`` and ``*HiSeqV2_PANCAN[.gz]``.

Both are tab-separated with a header row; gzip is detected from the magic bytes.  The expression file is
genes x samples (first header cell ``sample``); gene IDs are kept exactly as written, including the
``?|<EntrezID>`` rows Xena uses for genes without a symbol.  The sample order of the two files differs:
link them by barcode, never by position.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa

from genotex_dask.io._stream import open_lines, unique_names
from genotex_dask.io.errors import InputFormatError
from genotex_dask.io.geo import _parse_table

__all__ = ["read_xena_clinical", "parse_xena_clinical", "read_xena_expression", "read_xena_clinical_text"]


def read_xena_clinical_text(url: str) -> str:
    """The clinical matrix as text (small: tens of KB); kept verbatim in the store for exact re-reading."""
    with open_lines(url) as lb:
        parts, size = [], 0
        reader = lb.until(b"\x00never-a-marker")
        while (chunk := reader.read(1 << 20)) != b"":
            parts.append(chunk)
            size += len(chunk)
            lb.header_limit(size, "clinical matrix")
    return b"".join(parts).decode("utf-8", errors="replace")


def read_xena_clinical(url: str) -> pd.DataFrame:
    """Samples x clinical fields, indexed by ``sampleID`` (the first column), as pandas would read it.

    The file is small, so it is parsed by ``pandas.read_csv(sep='\\t', index_col=0)``, exactly the call the
    reference makes, which keeps type inference (e.g. numeric age) identical to GenoTEX's.
    """
    return parse_xena_clinical(read_xena_clinical_text(url), url)


def parse_xena_clinical(text: str, path: str = "<clinical matrix>") -> pd.DataFrame:
    """Parse clinical-matrix text (e.g. the copy kept in a cohort's ``uns['clinical_matrix_tsv']``)."""
    if not text.strip():
        raise InputFormatError(path, "empty clinical matrix")
    try:
        frame = pd.read_csv(io.StringIO(text), sep="\t", index_col=0, low_memory=False)
    except (pd.errors.ParserError, ValueError) as exc:
        raise InputFormatError(path, f"unreadable clinical matrix ({exc})") from exc
    dup = frame.index[frame.index.duplicated()].unique().tolist()
    if dup:
        raise InputFormatError(path, f"duplicate sample IDs: {dup[:5]}")
    return frame


def read_xena_expression(url: str, threads: bool = True) -> pd.DataFrame:
    """Genes x samples float64 DataFrame; index = gene IDs as str (name from the first header cell)."""
    with open_lines(url) as lb:
        header = lb.readline()
        if header is None or not header.strip():
            raise InputFormatError(url, "empty expression file", 1)
        names = header.split("\t")
        samples = names[1:]
        dup = pd.Index(samples)[pd.Index(samples).duplicated()].unique().tolist()
        if dup:
            raise InputFormatError(url, f"duplicate sample IDs in the header: {dup[:5]}", 1)
        if not samples:
            raise InputFormatError(url, "header has no sample columns", 1)
        names = unique_names(names)
        reader = lb.until(b"\x00never-a-marker")
        table = _parse_table(url, reader, names, {names[0]: pa.string()}, pa.float64(), 1, quoted=True,
                             threads=threads)
    if table.num_rows == 0:
        raise InputFormatError(url, "expression table has a header row but no gene rows", 1)
    genes = pd.Index(table.column(0).to_pylist(), dtype=object, name=names[0])
    vals = np.empty((len(samples), table.num_rows), dtype=np.float64)
    for j in range(len(samples)):
        vals[j] = table.column(j + 1).to_numpy()
    del table
    return pd.DataFrame(vals.T, index=genes, columns=samples)


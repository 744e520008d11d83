"""How GenoTEX reads its input files, restated plainly with gzip + pandas (the yardstick for the readers).

- Series-matrix values: find the line holding ``!series_matrix_table_begin`` (line-by-line gzip text scan),
  then ``pandas.read_csv(gzip file, skiprows=that+1, comment='!', sep='\\t', on_bad_lines='skip')`` and
  index by ``ID_REF`` (as str).
- Clinical rows: every stripped line starting with ``!Sample_geo_accession`` or
  ``!Sample_characteristics_ch1``, joined and read by pandas (the first such line is the header).
- Platform annotation: every stripped line of the SOFT not starting with ``^``, ``!`` or ``#`` (sample
  tables included), joined and read by pandas.

Independent of genotex_dask on purpose; used by tests and benchmarks/bench_ingest.py.
"""

from __future__ import annotations

import gzip
import io

import pandas as pd


def _stripped_lines(path: str):
    with gzip.open(path, "rt") as fh:
        for raw in fh:
            yield raw.strip()


def matrix_values(path: str) -> pd.DataFrame:
    start = None
    with gzip.open(path, "rt") as fh:
        for i, raw in enumerate(fh):
            if "!series_matrix_table_begin" in raw:
                start = i + 1
                break
    if start is None:
        raise ValueError(f"{path}: no table marker")
    frame = pd.read_csv(path, compression="gzip", skiprows=start, comment="!", delimiter="\t",
                        on_bad_lines="skip")
    frame = frame.rename(columns={"ID_REF": "ID"}).astype({"ID": "str"})
    return frame.set_index("ID")


def clinical_rows(path: str, prefixes=("!Sample_geo_accession", "!Sample_characteristics_ch1")) -> pd.DataFrame:
    kept = [ln for ln in _stripped_lines(path) if ln.startswith(tuple(prefixes))]
    return pd.read_csv(io.StringIO("\n".join(kept)), delimiter="\t", low_memory=False, on_bad_lines="skip")


def annotation_all(path: str) -> pd.DataFrame:
    kept = [ln for ln in _stripped_lines(path) if not ln.startswith(("^", "!", "#"))]
    return pd.read_csv(io.StringIO("\n".join(kept)), delimiter="\t", low_memory=False, on_bad_lines="skip")

"""Streaming readers for GEO series matrices, family/platform SOFT files and GEO ``.annot`` files.

Every reader opens its file through fsspec (local path, ``s3://``, ``memory://``), decompresses with
ISA-L when available (gzip is detected from the magic bytes, so plain text works too), reads header
lines one at a time and hands data tables to pyarrow's CSV parser as a byte stream that ends at the
table's end marker.  Tables nobody asked for (the per-sample tables of a family SOFT) are skipped by a
byte search for their end marker: they are never split into lines, parsed or kept.

Conventions shared by the readers
- Attribute keys drop their ``!Series_`` / ``!Sample_`` / ``!Platform_`` prefix: ``title``, ``summary``,
  ``overall_design``, ``characteristics_ch1``, ``platform_id``...  Values are lists of strings in file
  order (GEO repeats keys, e.g. one ``!Series_summary`` per paragraph).
- Series-matrix fields lose one pair of surrounding double quotes; SOFT tables are not quoted in GEO's
  format, so their quote characters are kept verbatim.
- Missing matrix cells (``null``, empty, ``NA``... the set pandas treats as NaN) become NaN.
- Duplicated table column names get pandas' suffixes (``GO:Function``, ``GO:Function.1``).
- Malformed input raises :class:`~genotex_dask.io.errors.InputFormatError` naming file, line and cause.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from genotex_dask.io import fs
from genotex_dask.io._fastmatrix import FAST_MIN_BYTES, GiveUp, MissingMarker, parse_table_stream
from genotex_dask.io._stream import LineBuffer, _decode, open_lines, split_tab_unquote, unique_names
from genotex_dask.io.errors import InputFormatError

# The strings pandas.read_csv reads as NaN by default: the reference reads matrices with pandas, so a
# cell it sees as missing must be missing here too.
NA_VALUES = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
             "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]
_NA_SET = frozenset(NA_VALUES)

MATRIX_BEGIN = b"!series_matrix_table_begin"
MATRIX_END = b"!series_matrix_table_end"

__all__ = [
    "SeriesMatrix", "SoftEntity", "PlatformTable", "read_series_matrix", "read_soft_platforms",
    "read_soft_samples", "read_soft_series", "read_soft_annotation_all", "NA_VALUES",
]


# ================================================================================================
# series matrix
# ================================================================================================

@dataclass
class SeriesMatrix:
    """One GEO series-matrix file.

    ``series``       ``{key: [values]}`` for every ``!Series_<key>`` line (e.g. ``title``, ``summary``).
    ``sample_rows``  every ``!Sample_<key>`` line in file order as ``(key, values)``, one value per sample
                     (keeps repeated keys such as ``characteristics_ch1`` in order).
    ``samples``      DataFrame indexed by GSM (table column order) with one column per sample key; keys that
                     repeat or start with ``characteristics`` get ``_0, _1, ...`` suffixes in file order
                     (``characteristics_ch1_0`` holds e.g. ``"disease state: RA"``).  Always present:
                     ``title, geo_accession, source_name_ch1, platform_id`` ("" when the file lacks them).
    ``probes``       probe IDs as str (object array), table order.
    ``values``       probes x samples float64 (NaN for missing), or None when read with ``values=False``;
                     float32 when read with ``float32=True`` and the fast path applied.
    ``sample_ids``   the table's column names after ``ID_REF``.
    ``values_finite`` True when ``values`` is known to hold no ±inf and no value beyond float32's range (the
                     fast path's numbers are below 1e38), so a caller may skip looking for them.
    """

    path: str
    series: dict[str, list[str]]
    sample_rows: list[tuple[str, list[str]]]
    samples: pd.DataFrame
    probes: np.ndarray | None = None
    values: np.ndarray | None = None
    sample_ids: list[str] = field(default_factory=list)
    id_column: str = "ID_REF"
    values_finite: bool = False

    @property
    def platform_ids(self) -> list[str]:
        """Distinct ``!Sample_platform_id`` values in order of appearance."""
        return list(dict.fromkeys(v for v in self.samples["platform_id"] if v))

    def clinical_frame(self) -> pd.DataFrame:
        """The frame the reference's ``get_background_and_clinical_data`` returns for this file.

        Rows are the ``!Sample_characteristics_ch1`` lines in file order; columns are
        ``'!Sample_geo_accession'`` (every cell ``'!Sample_characteristics_ch1'``) followed by the GSMs in
        the order of the ``!Sample_geo_accession`` line; cells are the raw strings, empty ones NaN (as
        pandas reads them).  No type inference is applied.
        """
        gsms = next((v for k, v in self.sample_rows if k == "geo_accession"), list(self.samples.index))
        rows = [v for k, v in self.sample_rows if k == "characteristics_ch1"]
        data = [["!Sample_characteristics_ch1", *r] for r in rows]
        frame = pd.DataFrame(data, columns=["!Sample_geo_accession", *gsms], dtype=object)
        return frame.replace("", np.nan)

    def background_text(self) -> str:
        """The ``!Series_title/summary/overall_design`` lines as the reference prints them (tab, quoted)."""
        out = []
        for key in ("title", "summary", "overall_design"):
            for v in self.series.get(key, []):
                out.append(f'!Series_{key}\t"{v}"')
        return "\n".join(out)

    def to_frame(self) -> pd.DataFrame:
        """Probes x samples DataFrame (index ``ID``), the shape the reference's ``get_genetic_data`` gives."""
        if self.values is None:
            raise ValueError("read with values=False")
        return pd.DataFrame(self.values, index=pd.Index(self.probes, name="ID"), columns=self.sample_ids)


def _samples_frame(path: str, rows: list[tuple[str, list[str]]], n: int) -> pd.DataFrame:
    counts: dict[str, int] = {}
    for k, _ in rows:
        counts[k] = counts.get(k, 0) + 1
    cols: dict[str, list[str]] = {}
    seen: dict[str, int] = {}
    for k, v in rows:
        if counts[k] > 1 or k.startswith("characteristics"):
            i = seen.get(k, 0)
            seen[k] = i + 1
            cols[f"{k}_{i}"] = v
        else:
            cols[k] = v
    for k in ("title", "geo_accession", "source_name_ch1", "platform_id"):
        cols.setdefault(k, [""] * n)
    frame = pd.DataFrame(cols, dtype=object)
    frame.index = pd.Index(cols["geo_accession"], name="sample")
    return frame


def _read_matrix_header(lb: LineBuffer, path: str) -> tuple[dict, list, bool]:
    """Series and sample lines up to ``!series_matrix_table_begin``; returns (series, sample_rows, found)."""
    series: dict[str, list[str]] = {}
    sample_rows: list[tuple[str, list[str]]] = []
    n_samples: int | None = None
    kept = 0
    while True:
        lineno = lb.lineno
        line = lb.readline()
        if line is None:
            return series, sample_rows, False
        if not line or line[0] != "!":
            continue
        if line.startswith(MATRIX_BEGIN.decode()):
            return series, sample_rows, True
        head, _, rest = line.partition("\t")
        fields = split_tab_unquote(rest) if _ else []
        kept += len(line) + 56 * len(fields)  # what the kept strings cost in memory, not just their text
        lb.header_limit(kept, "the header before '!series_matrix_table_begin'")
        if head.startswith("!Series_"):
            series.setdefault(head[len("!Series_"):], []).extend(fields)
        elif head.startswith("!Sample_"):
            key = head[len("!Sample_"):]
            if n_samples is None:
                n_samples = len(fields)
            elif len(fields) != n_samples:
                raise InputFormatError(path, f"ragged row: {head} has {len(fields)} values, expected "
                                             f"{n_samples} (one per sample)", lineno)
            sample_rows.append((key, fields))


def read_series_matrix(url: str, values: bool = True, threads: bool = True,
                       fast: bool | None = None, float32: bool = False) -> SeriesMatrix:
    """Read a GEO ``*_series_matrix.txt[.gz]`` file: metadata, and the value table unless ``values=False``.

    The table is parsed by a compiled single-pass kernel (:mod:`._fastmatrix`, exact IEEE results) when it
    is a plain grid; otherwise by pyarrow's CSV reader, on several threads when ``threads`` is true.  Both
    give the same values.  ``fast=None`` picks the kernel for files of at least ``FAST_MIN_BYTES``
    (loading it costs about a second per process, more than a small file's parse); True/False force it.
    ``float32``: the kernel stores each value rounded to float32 (what a float32 store keeps; half the
    memory, no cast pass); the general path still gives float64.
    """
    if fast is None:
        try:
            fast = fs.get_fs(url)[0].size(fs.get_fs(url)[1]) >= FAST_MIN_BYTES
        except (OSError, TypeError):
            fast = True
    with open_lines(url) as lb:
        series, sample_rows, found = _read_matrix_header(lb, url)
        if not found:
            raise InputFormatError(url, "missing '!series_matrix_table_begin' marker (no value table)",
                                   max(lb.lineno - 1, 1))
        gsm_row = next((v for k, v in sample_rows if k == "geo_accession"), None)
        if gsm_row is not None:
            dup = pd.Index(gsm_row)[pd.Index(gsm_row).duplicated()].unique().tolist()
            if dup:
                raise InputFormatError(url, f"duplicate sample IDs in !Sample_geo_accession: {dup[:5]}")
        n_meta = len(gsm_row) if gsm_row is not None else 0
        if not values:
            samples = _samples_frame(url, sample_rows, n_meta) if gsm_row is not None else pd.DataFrame()
            return SeriesMatrix(url, series, sample_rows, samples, sample_ids=list(gsm_row or []))
        header_line = lb.lineno
        header = lb.readline()
        if header is None or header.startswith(MATRIX_END.decode()):
            raise InputFormatError(url, "empty value table (no header row after the begin marker)", header_line)
        names = split_tab_unquote(header)
        id_col, sample_ids = names[0], names[1:]
        dup = pd.Index(sample_ids)[pd.Index(sample_ids).duplicated()].unique().tolist()
        if dup:
            raise InputFormatError(url, f"duplicate sample IDs in the table header: {dup[:5]}", header_line)
        if gsm_row is not None and set(gsm_row) != set(sample_ids):
            raise InputFormatError(url, "table columns do not match !Sample_geo_accession "
                                        f"({len(sample_ids)} vs {len(gsm_row)} samples)", header_line)
        probes = vals = None
        finite = False
        if fast:
            try:
                hint = next((v[0] for k, v in sample_rows if k == "data_row_count" and v), "0")
                ids, vals = parse_table_stream(lb, MATRIX_END, len(sample_ids),
                                               rows_hint=int(hint) if hint.isdigit() else 0,
                                               dtype=np.float32 if float32 else np.float64)
                probes = np.asarray(ids, dtype=object)
                finite = True
            except GiveUp:
                probes = vals = None  # unusual content: the general reader below starts over
            except MissingMarker:
                probes = vals = None  # the general reader reports it with a line number
    if vals is None:
        probes, vals = _matrix_values_pyarrow(url, header_line, names, threads)
    if len(probes) == 0:  # said plainly here, not later as "no mappable genes"
        raise InputFormatError(url, "value table has a header row but no data rows", header_line)
    if not sample_ids:
        raise InputFormatError(url, "value table has no sample columns (only the ID column)", header_line)
    if gsm_row is not None:
        samples = _samples_frame(url, sample_rows, n_meta).loc[sample_ids]
    else:
        samples = _samples_frame(url, [("geo_accession", sample_ids)], len(sample_ids))
    return SeriesMatrix(url, series, sample_rows, samples, probes, vals, sample_ids, id_col, finite)


def _matrix_values_pyarrow(url: str, header_line: int, names: list[str], threads: bool):
    """The general path: pyarrow's CSV reader over the table body (re-opened from the start of the file)."""
    with open_lines(url) as lb:
        while lb.lineno <= header_line:
            if lb.readline_bytes() is None:
                raise InputFormatError(url, "file shorter on a second read", lb.lineno)
        reader = lb.until(MATRIX_END)
        table = _parse_table(url, reader, names, {names[0]: pa.string()}, pa.float64(), header_line,
                             quoted=True, threads=threads)
        if not reader.found:
            raise InputFormatError(url, "missing '!series_matrix_table_end' marker (file truncated?)", lb.lineno)
    probes = np.asarray(table.column(0).to_pylist(), dtype=object)
    vals = np.empty((len(names) - 1, table.num_rows), dtype=np.float64)
    for j in range(len(names) - 1):
        vals[j] = table.column(j + 1).to_numpy()
    return probes, vals.T  # probes x samples (a transposed view of the column-filled array)


# ================================================================================================
# table parsing shared by matrix and SOFT tables
# ================================================================================================

def _parse_table(path: str, stream, names: list[str], types: dict, default_type, header_line: int,
                 quoted: bool, threads: bool = True) -> pa.Table:
    """Parse a tab-separated body with known column names; errors become InputFormatError with a line."""
    bad: list = []

    def on_invalid(row):
        bad.append(row)
        return "error"

    col_types = {n: types.get(n, default_type) for n in names}
    try:
        return pacsv.read_csv(
            stream,
            read_options=pacsv.ReadOptions(column_names=names, use_threads=threads, block_size=4 << 20),
            parse_options=pacsv.ParseOptions(delimiter="\t", quote_char='"' if quoted else False,
                                             newlines_in_values=False, invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(column_types=col_types, null_values=NA_VALUES,
                                                 strings_can_be_null=not quoted,
                                                 quoted_strings_can_be_null=True),
        )
    except InputFormatError:
        raise
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        lb = getattr(stream, "lb", None)
        if lb is not None and lb.error is not None:
            raise lb.error from exc
        msg = str(exc)
        if "Empty CSV" in msg:
            return pa.table({n: pa.array([], type=col_types[n]) for n in names})
        numeric = [i for i, n in enumerate(names) if col_types[n] != pa.string()]
        line, cause = _locate_bad_row(path, header_line, len(names), numeric, quoted)
        raise InputFormatError(path, cause or msg, line) from exc


def _locate_bad_row(path: str, header_line: int, ncols: int, numeric: list[int],
                    quoted: bool) -> tuple[int | None, str | None]:
    """Slow second pass, only after pyarrow failed: find the first ragged row or non-numeric cell."""
    try:
        with open_lines(path) as lb:
            while lb.lineno < header_line:
                if lb.readline_bytes() is None:
                    return None, None
            lb.readline_bytes()  # header
            while True:
                lineno = lb.lineno
                line = lb.readline()
                if line is None or line.startswith("!"):
                    return None, None
                fields = split_tab_unquote(line) if quoted else line.split("\t")
                if len(fields) != ncols:
                    return lineno, f"ragged row: {len(fields)} fields, expected {ncols}"
                for i in numeric:
                    cell = fields[i]
                    if cell in _NA_SET:
                        continue
                    try:
                        float(cell)
                    except ValueError:
                        return lineno, f"non-numeric value {cell[:40]!r} in column {i + 1}"
    except InputFormatError as err:
        return err.line, err.cause


# ================================================================================================
# SOFT files (family SOFT, platform SOFT, .annot)
# ================================================================================================

@dataclass
class SoftEntity:
    """One ``^KIND = ID`` section of a SOFT file.

    ``kind`` is upper-case (SERIES, PLATFORM, SAMPLE, DATABASE, ANNOTATION); ``attributes`` maps keys
    without their ``!Kind_`` prefix to value lists; ``columns`` maps table column names to their ``#``
    descriptions; ``table`` is the parsed data table or None when it was skipped.
    """

    kind: str
    id: str
    attributes: dict[str, list[str]] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)
    table: pd.DataFrame | None = None
    table_line: int | None = None
    table_digest: str | None = None  # "blake3:<hex>" of the table's bytes (header + rows) when hashed, not parsed
    arrow_table: pa.Table | None = None  # the parsed table as pyarrow (str columns, nulls for empty cells)
    table_bytes: bytearray | None = None  # the table's text (header + rows) when hashed and kept

    def attr(self, key: str, default: str = "") -> str:
        """First value of an attribute (``""`` when absent)."""
        v = self.attributes.get(key)
        return v[0] if v else default


PlatformTable = SoftEntity  # a PLATFORM (or ``.annot`` ANNOTATION) section with its annotation table


def _parse_entity_header(line: str) -> tuple[str, str]:
    body = line[1:]
    kind, sep, ident = body.partition("=")
    return kind.strip().upper(), ident.strip() if sep else ""


def _parse_attribute(line: str, kind: str) -> tuple[str, str]:
    body = line[1:]
    key, sep, val = body.partition(" = ")
    if not sep:
        key, _, val = body.partition("=")
    key = key.strip()
    prefix = kind.capitalize() + "_"
    if key.lower().startswith(prefix.lower()):
        key = key[len(prefix):]
    return key, val.strip()


def _read_soft_table(lb: LineBuffer, path: str, end_marker: bytes, types: dict, default_type,
                     threads: bool, arrow: bool = False) -> pd.DataFrame | pa.Table:
    """The table up to ``end_marker`` as pandas (empty cells NaN), or as the pyarrow table when ``arrow``."""
    header_line = lb.lineno
    header = lb.readline()
    if header is None:
        raise InputFormatError(path, f"missing '{end_marker.decode()}' marker (file truncated?)", header_line)
    if header.startswith(end_marker.decode()):
        return pa.table({}) if arrow else pd.DataFrame()
    names = unique_names(header.split("\t"))
    reader = lb.until(end_marker)
    table = _parse_table(path, reader, names, types, default_type, header_line, quoted=False, threads=threads)
    if not reader.found:
        raise InputFormatError(path, f"missing '{end_marker.decode()}' marker (file truncated?)", lb.lineno)
    return table if arrow else soft_table_frame(table)


def soft_table_frame(table: pa.Table) -> pd.DataFrame:
    """A parsed SOFT table as pandas, missing cells NaN (what the readers return)."""
    frame = table.to_pandas()
    for c in frame.columns:
        if frame[c].dtype == object:
            frame[c] = frame[c].where(frame[c].notna(), np.nan)
    return frame


def _scan_soft(url: str, want_table, stop_when=None, threads: bool = True) -> list[SoftEntity]:
    """Walk the sections of a SOFT file.

    ``want_table(entity) -> (types, default_type[, "arrow"]) | "digest" | None`` decides per table whether
    to parse it (into ``table``, or ``arrow_table`` with "arrow"), to hash it, or to skip it unread; ``stop_when(entities) -> bool`` ends the walk early.
    """
    entities: list[SoftEntity] = []
    cur: SoftEntity | None = None
    kept = 0
    with open_lines(url) as lb:
        while True:
            lineno = lb.lineno
            line = lb.readline()
            if line is None:
                break
            if not line:
                continue
            kept += len(line) + 112  # attribute lines are kept: bound what they cost in memory
            lb.header_limit(kept, "the SOFT section lines")
            c = line[0]
            if c == "^":
                if stop_when is not None and stop_when(entities):
                    break
                kind, ident = _parse_entity_header(line)
                cur = SoftEntity(kind, ident)
                entities.append(cur)
            elif c == "!":
                low = line.strip().lower()
                if low.endswith("_table_begin"):
                    end = line.strip()[: -len("begin")] + "end"
                    if cur is None:
                        cur = SoftEntity("ANNOTATION", "")
                        entities.append(cur)
                    how = want_table(cur)
                    cur.table_line = lineno + 1
                    if how in ("digest", "digest+keep"):
                        cur.table_digest, cur.table_bytes = _digest_until(lb, url, end.encode(),
                                                                          keep=how == "digest+keep")
                    elif how is None:
                        if not lb.skip_until(end.encode()):
                            raise InputFormatError(url, f"missing '{end}' marker (file truncated?)", lb.lineno)
                    else:
                        parsed = _read_soft_table(lb, url, end.encode(), how[0], how[1], threads,
                                                  arrow=how[2:] == ("arrow",))
                        if isinstance(parsed, pa.Table):
                            cur.arrow_table = parsed
                        else:
                            cur.table = parsed
                    continue
                if cur is None:  # attributes before any ^ line (e.g. a bare table file): anonymous entity
                    cur = SoftEntity("ANNOTATION", "")
                    entities.append(cur)
                key, val = _parse_attribute(line, cur.kind)
                cur.attributes.setdefault(key, []).append(val)
                if cur.kind == "ANNOTATION" and key.lower() == "platform" and not cur.id:
                    cur.id = val
            elif c == "#" and cur is not None:
                name, _, desc = line[1:].partition("=")
                cur.columns[name.strip()] = desc.strip()
    return entities


def _digest_until(lb: LineBuffer, path: str, end_marker: bytes, keep: bool = False) -> tuple[str, bytearray | None]:
    """(``"blake3:"`` + BLAKE3 of the bytes up to the line starting with ``end_marker`` (consumed), those bytes
    when ``keep`` and they fit in ``MAX_HEADER_BYTES``, else None).  BLAKE3: a 256-bit cryptographic hash
    as collision-resistant as sha256 (a table crafted to collide with GPL570's would make every later GPL570
    cohort of the store take its annotation), at ~4x its speed on one core (3 instead of 12 ms for a 23 MB
    table; the prefix names the algorithm, so keys of another never match)."""
    from blake3 import blake3

    h = blake3()
    kept: bytearray | None = bytearray() if keep else None

    def update(view) -> None:
        nonlocal kept
        h.update(view)
        if kept is not None:
            if len(kept) + len(view) > lb.max_header_bytes:
                kept = None  # too big to hold: the caller reads the table again if it needs it
            else:
                kept += view

    if not lb.hash_until(end_marker, update):
        raise InputFormatError(path, f"missing '{end_marker.decode()}' marker (file truncated?)", lb.lineno)
    return "blake3:" + h.hexdigest(), kept  # not copied to bytes: a second table-sized block at the peak


def read_soft_platform_digest(url: str, platform: str, keep: bool = False) -> SoftEntity:
    """The section of ``platform`` with its attributes and a digest of its table's bytes, the table unparsed.

    Why: hundreds of cohorts carry the same platform table (GPL570...) in their family SOFT; hashing its
    bytes while they are decompressed costs a few percent of parsing them, and equal bytes parse to the
    same annotation, so a store can keep one parsed copy per digest.  ``keep``: the bytes are kept in
    ``table_bytes`` too (up to ``MAX_HEADER_BYTES``), for a caller that expects the digest to be new and
    then parses them with :func:`soft_table_from_bytes` instead of decompressing the file a second time.
    """
    want_id = platform.upper()

    def want(ent: SoftEntity):
        return ("digest+keep" if keep else "digest") if ent.kind in ("PLATFORM", "ANNOTATION") and ent.id.upper() == want_id else None

    def done(ents: list[SoftEntity]) -> bool:
        return any(e.table_digest for e in ents)

    for e in _scan_soft(url, want, done):
        if e.table_digest and e.id.upper() == want_id:
            return e
    raise InputFormatError(url, f"platform(s) {[want_id]} not found in the file")


def soft_table_from_bytes(url: str, ent: SoftEntity, threads: bool = True) -> SoftEntity | None:
    """``ent`` with ``arrow_table`` parsed from its kept ``table_bytes`` (header line, then rows), as
    ``read_soft_platforms(url, [ent.id], arrow=True)`` parses it from the file; None when no bytes were kept
    or the table has no header line (the caller reads the file, which gives the usual error).  ``threads``:
    pyarrow's parallel parse (less wall time, but ~1.6x the CPU of one thread on a 23 MB table)."""
    raw = ent.table_bytes
    if raw is None or not raw:
        return None
    nl = raw.find(b"\n")
    head = bytes(raw if nl < 0 else raw[:nl])
    names = unique_names(_decode(head[:-1] if head.endswith(b"\r") else head).split("\t"))
    body = pa.py_buffer(raw)[nl + 1:] if nl >= 0 else pa.py_buffer(b"")
    table = _parse_table(url, pa.BufferReader(body), names, {}, pa.string(), ent.table_line, quoted=False,
                         threads=threads)
    return SoftEntity(ent.kind, ent.id, ent.attributes, ent.columns, table_line=ent.table_line,
                      table_digest=ent.table_digest, arrow_table=table)


def read_soft_platforms(url: str, platforms: Iterable[str] | None = None,
                        threads: bool = True, arrow: bool = False) -> dict[str, PlatformTable]:
    """Platform sections and their annotation tables from a family SOFT, platform SOFT or ``.annot`` file.

    Returns ``{GPL id: PlatformTable}``; ``table`` holds every column as str (``ID`` first), empty cells
    NaN.  ``platforms`` restricts parsing to those IDs and stops reading once all were found (GEO puts
    platforms before samples, so the sample tables are then not even decompressed).  Sample tables are
    always skipped without parsing.  ``arrow``: the tables are left as pyarrow tables in ``arrow_table``
    (same cells, missing ones null; ``table`` stays None), for a caller that encodes them without pandas.
    """
    wanted = None if platforms is None else {p.upper() for p in platforms}

    def want(ent: SoftEntity):
        if ent.kind in ("PLATFORM", "ANNOTATION") and (wanted is None or ent.id.upper() in wanted):
            return ({}, pa.string(), "arrow") if arrow else ({}, pa.string())
        return None

    def parsed(e: SoftEntity) -> bool:
        return e.kind in ("PLATFORM", "ANNOTATION") and (e.table is not None or e.arrow_table is not None)

    def done(ents: list[SoftEntity]) -> bool:
        if wanted is None:
            return False
        have = {e.id.upper() for e in ents if parsed(e)}
        return wanted <= have

    ents = _scan_soft(url, want, done, threads)
    out: dict[str, PlatformTable] = {}
    for e in ents:
        if parsed(e):
            if (e.table.empty and len(e.table.columns) == 0) if e.table is not None else e.arrow_table.num_columns == 0:
                raise InputFormatError(url, f"platform {e.id}: empty annotation table", e.table_line)
            out[e.id] = e
    if wanted is not None:
        missing = wanted - {k.upper() for k in out}
        if missing:
            raise InputFormatError(url, f"platform(s) {sorted(missing)} not found in the file")
    elif not out:
        raise InputFormatError(url, "no platform annotation table found")
    return out


def read_soft_samples(url: str, values: bool = False, threads: bool = True) -> dict[str, SoftEntity]:
    """``{GSM: SoftEntity}`` for every ``^SAMPLE`` section (attributes such as ``title``, ``platform_id``,
    ``source_name_ch1``, ``characteristics_ch1``).  With ``values=True`` each sample's table is parsed
    (``ID_REF`` str, ``VALUE`` float64, other columns str); otherwise tables are skipped unread.
    """
    def want(ent: SoftEntity):
        if values and ent.kind == "SAMPLE":
            return ({"VALUE": pa.float64()}, pa.string())
        return None

    ents = _scan_soft(url, want, None, threads)
    out: dict[str, SoftEntity] = {}
    for e in ents:
        if e.kind == "SAMPLE":
            if e.id in out:
                raise InputFormatError(url, f"duplicate sample ID {e.id}")
            out[e.id] = e
    return out


def read_soft_series(url: str) -> SoftEntity | None:
    """The ``^SERIES`` section's attributes (title, summary, overall_design, ...), reading only the file head."""
    ents = _scan_soft(url, lambda e: None, lambda es: any(e.kind == "SERIES" for e in es))
    return next((e for e in ents if e.kind == "SERIES"), None)


def read_soft_annotation_all(url: str, include_sample_rows: bool = False) -> pd.DataFrame:
    """The annotation frame the reference's ``get_gene_annotation`` builds, without the sample tables.

    What the reference sees: every line of the file, stripped of surrounding whitespace, that does not
    start with ``^``, ``!`` or ``#``, joined and read by ``pandas.read_csv(sep='\\t', low_memory=False,
    on_bad_lines='skip')``.  So the FIRST table's header names the columns; the header lines of later
    platform tables become ordinary data rows (``ID`` = "ID"); rows of every platform are matched to those
    names by position; rows with more fields than the header are dropped, shorter ones padded with NaN;
    types are inferred by pandas over all rows.  The reference also reads every sample table this way
    (their ``ID_REF``/``VALUE``... rows land in the first columns with the rest NaN), which is where its
    memory goes on big family SOFTs.  Here sample tables are skipped unread unless
    ``include_sample_rows=True`` (then the frame equals the reference's exactly).  Skipping them does not
    change GenoTEX's probe->gene mapping: the rows they would add are NaN beyond their first few columns,
    so ``get_gene_mapping`` (``dropna`` on the gene column) drops them when the gene column lies beyond
    the sample tables' width; when it does not, their cells there are numbers or one-letter P/A/M calls,
    from which the gene-symbol extraction yields nothing (or the ID is ``ID_REF``, not a probe), so
    those rows vanish in ``apply_gene_mapping``.  A sample table with a gene-like text column at the
    gene column's position would be the exception.
    """
    kept: list[str] = []
    with open_lines(url) as lb:
        while True:
            line = lb.readline()
            if line is None:
                break
            s = line.strip()
            if s.lower() == "!sample_table_begin" and not include_sample_rows:
                if not lb.skip_until(b"!sample_table_end"):
                    raise InputFormatError(url, "missing '!sample_table_end' marker (file truncated?)", lb.lineno)
                continue
            if s.startswith(("^", "!", "#")):
                continue
            kept.append(s)
    text = "\n".join(kept)
    del kept
    return pd.read_csv(io.StringIO(text), delimiter="\t", low_memory=False, on_bad_lines="skip")

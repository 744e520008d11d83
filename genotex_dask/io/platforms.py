"""Finding a GEO platform's annotation under the names GEO gives its files.

A series' family SOFT usually carries its platforms' tables, but users also download the platform on its own
and keep it beside the cohort or in one shared directory for all cohorts (``--platforms DIR``, any fsspec URL).
GEO names those files after the platform: ``GPL96.txt.gz`` / ``GPL96.soft.gz`` (platform SOFT),
``GPL6244_family.soft.gz`` (platform family SOFT), ``GPL570.annot.gz`` (GEO's annotation file) and
``GPL96-tbl-1.txt`` (the table of a MINiML download, columns named in ``GPL96_family.xml`` beside it).
A name matches a platform only when the ID is followed by a non-digit, so ``GPL96`` never picks ``GPL9600``.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable

import pandas as pd

from genotex_dask.io import fs
from genotex_dask.io.errors import InputFormatError

# what is looked for, in order of preference (the platform's own SOFT first: GenoTEX reads that table)
KINDS = (
    ("platform SOFT", r"(?:\.soft|\.txt)(?:\.gz)?"),
    ("platform family SOFT", r"_family\.soft(?:\.gz)?"),
    ("annotation", r"\.annot(?:\.gz)?"),
    ("MINiML table", r"-tbl-\d+\.txt(?:\.gz)?"),
)
MINIML_HEAD_BYTES = 4 << 20  # the platform's column list sits before its samples in a MINiML file


def looked_for(gpl: str) -> list[str]:
    """The file names searched for ``gpl`` (for error messages)."""
    g = gpl.upper()
    return [f"{g}.txt[.gz]", f"{g}.soft[.gz]", f"{g}_family.soft[.gz]", f"{g}.annot[.gz]", f"{g}-tbl-1.txt[.gz]"]


def gpl_files(dirs: Iterable[str]) -> dict[str, str]:
    """``{file name: url}`` of every ``GPL*`` file directly in ``dirs`` (first directory wins a name)."""
    out: dict[str, str] = {}
    for d in dirs:
        if not d or not fs.exists(d) or not fs.isdir(d):
            continue
        for name in fs.listdir(d):
            if name.upper().startswith("GPL") and not name.startswith(fs.TMP_MARK):
                out.setdefault(name, fs_join(d, name))
    return out


def fs_join(d: str, name: str) -> str:
    return d.rstrip("/") + "/" + name


def candidates(gpl: str, files: dict[str, str]) -> list[str]:
    """URLs of the files in ``files`` holding ``gpl``'s annotation, most preferred first."""
    out = []
    for _, suffix in KINDS:
        pat = re.compile(re.escape(gpl) + suffix + "$", re.IGNORECASE)
        out += [files[n] for n in sorted(files) if pat.match(n) and files[n] not in out]
    return out


def _columns_from_miniml(xml_url: str) -> list[str]:
    raw = fs.read_bytes(xml_url) if not xml_url.endswith(".gz") else None
    if raw is None:
        with fs.open_binary(xml_url) as f, gzip.open(f) as g:
            raw = g.read(MINIML_HEAD_BYTES)
    head = raw[:MINIML_HEAD_BYTES].decode("utf-8", "replace")
    head = head.split("</Platform>", 1)[0]
    cols = re.findall(r'<Column position="(\d{1,4})">\s*<Name>([^<]{1,200})</Name>', head)
    return [name.strip() for _, name in sorted(cols, key=lambda c: int(c[0]))]


def read_miniml_table(url: str, files: dict[str, str]) -> pd.DataFrame:
    """A ``GPLxxx-tbl-1.txt`` table: tab-separated; the header is its first line when that starts with ``ID``,
    else the column names come from the ``GPLxxx_family.xml`` (MINiML) beside it."""
    name = url.rstrip("/").rsplit("/", 1)[-1]
    gpl = re.match(r"(GPL\d+)", name, re.IGNORECASE).group(1)
    comp = "gzip" if name.lower().endswith(".gz") else None
    with fs.open_binary(url) as f:
        first = pd.read_csv(f, sep="\t", dtype=str, header=None, nrows=1, compression=comp, quoting=3)
    if str(first.iloc[0, 0]).strip().upper() == "ID":
        names = None
    else:
        xml = next((u for n, u in sorted(files.items())
                    if re.fullmatch(re.escape(gpl) + r"(_family)?\.xml(\.gz)?", n, re.IGNORECASE)), None)
        if xml is None:
            raise InputFormatError(url, f"no header line and no {gpl}_family.xml (MINiML) beside it to name "
                                        "the columns")
        names = _columns_from_miniml(xml)
        if len(names) != first.shape[1]:
            raise InputFormatError(url, f"{len(names)} columns named in the MINiML file, {first.shape[1]} in "
                                        "the table")
    with fs.open_binary(url) as f:
        t = pd.read_csv(f, sep="\t", dtype=str, header=0 if names is None else None, names=names,
                        compression=comp, quoting=3, keep_default_na=False, na_values=[""])
    return t


def read_platform_annotation(gpl: str, files: dict[str, str]) -> tuple[pd.DataFrame, str, str] | None:
    """(annotation table with the probe ID first, platform title, file url) of ``gpl`` from the first candidate
    file that holds it, or None when no file of that platform is in ``files``."""
    from genotex_dask.io.geo import read_soft_platforms

    errors = []
    for url in candidates(gpl, files):
        name = url.rsplit("/", 1)[-1]
        try:
            if re.search(r"-tbl-\d+\.txt", name, re.IGNORECASE):
                return read_miniml_table(url, files), "", url
            p = next(iter(read_soft_platforms(url, [gpl]).values()))
            return p.table, p.attr("title"), url
        except InputFormatError as err:
            errors.append(str(err))
    if errors:
        raise InputFormatError(errors[0].split(":", 1)[0], "; ".join(errors))
    return None

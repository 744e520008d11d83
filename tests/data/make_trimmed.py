"""Regenerate the trimmed real-data copies in tests/data from the shared originals.

Run:  .venv/bin/python tests/data/make_trimmed.py [SOURCE_DIR]   (default /work/shared/data)

Every choice below is documented in tests/data/README.md; the outputs are deterministic (gzip mtime 0).
"""

from __future__ import annotations

import gzip
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).parent
KIDNEY = "Kidney_Clear_Cell_Carcinoma"
CHOL = "TCGA_Bile_Duct_Cancer_(CHOL)"
DLBC = "TCGA_Large_Bcell_Lymphoma_(DLBC)"


def _lines(path: Path) -> list[bytes]:
    with gzip.open(path, "rb") as f:
        return f.read().split(b"\n")


def _write_gz(path: Path, lines: list[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(filename=path.name[:-3], mode="wb", fileobj=raw,
                                                 compresslevel=9, mtime=0) as f:
        f.write(b"\n".join(lines))


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


GO_COLUMNS = {b"Gene Ontology Biological Process", b"Gene Ontology Cellular Component",
              b"Gene Ontology Molecular Function"}
# columns kept per platform table (a prefix of the table's columns) and the '#' descriptions dropped with them
KEEP_COLUMNS = {b"GPL96": 12, b"GPL97": 11}
TARGET_DESCRIPTION = 7  # 0-based position of 'Target Description' in both tables
DROP_DESCRIPTIONS = {b"GPL96": GO_COLUMNS | {b"RefSeq Transcript ID"},
                     b"GPL97": GO_COLUMNS | {b"RefSeq Transcript ID", b"ENTREZ_GENE_ID"}}


def trim_family_soft(lines: list[bytes]) -> list[bytes]:
    """GSE781 family SOFT: series block whole; GPL96 and GPL97 sections with all rows but only the columns
    up to ``Gene Symbol`` (GPL96 also keeps ``ENTREZ_GENE_ID``): the free-text RefSeq and Gene Ontology
    columns, most of the bytes, are dropped and the ``Target Description`` cells are blanked (column kept);
    the 17 GPL96 sample sections whole (attributes and full data
    tables); the 17 GPL97 sample sections dropped."""
    # split into sections, each from its ^ line to the next
    sections: list[list[bytes]] = []
    for line in lines:
        if line.startswith(b"^") or not sections:
            sections.append([])
        sections[-1].append(line)
    out: list[bytes] = []
    for sec in sections:
        head = sec[0]
        if head.startswith(b"^SAMPLE"):
            if any(x.strip() == b"!Sample_platform_id = GPL96" for x in sec[:200]):
                out.extend(sec)
            continue
        if head.startswith(b"^PLATFORM"):
            plat = head.split(b"=")[1].strip()
            in_table = False
            for line in sec:
                if line.startswith(b"!platform_table_begin"):
                    in_table = True
                elif line.startswith(b"!platform_table_end"):
                    in_table = False
                elif in_table:
                    cells = line.split(b"\t")[: KEEP_COLUMNS[plat]]
                    if cells[0] != b"ID" and len(cells) > TARGET_DESCRIPTION:
                        cells[TARGET_DESCRIPTION] = b""  # long free text; blanked, so positions stay
                    line = b"\t".join(cells)
                elif line.startswith(b"#") and line[1:].split(b" = ")[0] in DROP_DESCRIPTIONS[plat]:
                    continue
                out.append(line)
            continue
        out.extend(sec)
    return out


def trim_table(lines: list[bytes], begin: bytes, end: bytes, keep_rows: int,
               also=lambda line: False) -> list[bytes]:
    """Keep the header, the table header row, the first ``keep_rows`` data rows, rows where ``also`` holds,
    and everything after the end marker."""
    out, state, n = [], 0, 0
    for line in lines:
        if state == 0:
            out.append(line)
            if line.startswith(begin):
                state = 1
        elif state == 1:
            out.append(line)  # table header
            state = 2
        elif state == 2:
            if line.startswith(end):
                out.append(line)
                state = 3
            elif n < keep_rows or also(line):
                out.append(line)
                n += 1
        else:
            out.append(line)
    return out


GSE55235_ZERO_PROBES = (b'"204886_at"', b'"215112_x_at"', b'"215514_at"', b'"217953_at"', b'"222299_x_at"')


def main(src: Path) -> None:
    gse = src / "genotex_gse781"
    dst = HERE / "genotex_gse781"
    gdir = Path("input/GEO") / KIDNEY / "GSE781"
    _copy(gse / gdir / "GSE781-GPL96_series_matrix.txt.gz", dst / gdir / "GSE781-GPL96_series_matrix.txt.gz")
    _write_gz(dst / gdir / "GSE781_family.soft.gz", trim_family_soft(_lines(gse / gdir / "GSE781_family.soft.gz")))
    for name in ("task_info.json", "gene_synonym.json"):
        _copy(gse / "metadata" / name, dst / "metadata" / name)

    tcga = HERE / "tcga" / "input" / "TCGA"
    for f in ("TCGA.CHOL.sampleMap_HiSeqV2_PANCAN.gz", "TCGA.CHOL.sampleMap_CHOL_clinicalMatrix"):
        _copy(src / "tcga_chol" / f, tcga / CHOL / f)
    _copy(src / "tcga_dlbc" / "TCGA.DLBC.sampleMap_DLBC_clinicalMatrix",
          tcga / DLBC / "TCGA.DLBC.sampleMap_DLBC_clinicalMatrix")
    dl = _lines(src / "tcga_dlbc" / "TCGA.DLBC.sampleMap_HiSeqV2_PANCAN.gz")
    body = [x for x in dl[1:] if x]
    kept = [x for i, x in enumerate(body) if i < 2000 or x.startswith(b"?|")]
    _write_gz(tcga / DLBC / "TCGA.DLBC.sampleMap_HiSeqV2_PANCAN.gz", [dl[0], *kept, b""])

    m = _lines(src / "geo_gse55235" / "GSE55235_series_matrix.txt.gz")
    _write_gz(HERE / "geo_gse55235" / "GSE55235_series_matrix.txt.gz",
              trim_table(m, b"!series_matrix_table_begin", b"!series_matrix_table_end", 1500,
                         lambda line: line.split(b"\t", 1)[0] in GSE55235_ZERO_PROBES))
    p = _lines(src / "geo_gpl96" / "GPL96.txt.gz")
    p = [x for x in p if not x.startswith((b"!Platform_sample_id", b"!Platform_series_id"))]
    _write_gz(HERE / "geo_gpl96" / "GPL96.txt.gz",
              trim_table(p, b"!platform_table_begin", b"!platform_table_end", 1500))
    a = _lines(src / "geo_gpl97_annot" / "GPL97.annot.gz")
    _write_gz(HERE / "geo_gpl97_annot" / "GPL97.annot.gz",
              trim_table(a, b"!platform_table_begin", b"!platform_table_end", 1500))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/work/shared/data"))

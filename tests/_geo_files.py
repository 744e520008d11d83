"""Small hand-made GEO / Xena files for reader and ingest tests (good ones and deliberately broken ones)."""

from __future__ import annotations

import functools
import gzip
import logging
from pathlib import Path

GSE781_DIR = Path(__file__).parent / "data" / "genotex_gse781" / "input" / "GEO" / "Kidney_Clear_Cell_Carcinoma" / "GSE781"
GSE781_MATRIX = GSE781_DIR / "GSE781-GPL96_series_matrix.txt.gz"
GSE781_SOFT = GSE781_DIR / "GSE781_family.soft.gz"


def matrix_text(samples=("GSM1", "GSM2", "GSM3"), rows=None, chars=None, table_begin=True, table_end=True,
                header=None) -> str:
    """A small series matrix; ``rows`` are lists of cell strings (ID first, already quoted as wanted)."""
    rows = rows if rows is not None else [['"p1"', "1.5", "2", "null"], ['"p2"', "-0.25", "", "4e2"],
                                          ['"p3"', "0", '"7.5"', "8"]]
    chars = chars if chars is not None else [["disease state: RA", "disease state: control", "disease state: RA"],
                                             ["Sex: F", "Sex: M", "Sex: F"]]
    q = lambda vals: "\t".join(f'"{v}"' for v in vals)  # noqa: E731
    lines = ['!Series_title\t"A small series"', '!Series_summary\t"First paragraph"', '!Series_summary\t""',
             '!Series_overall_design\t"cases vs controls"', "",
             f"!Sample_title\t{q((['case 1', 'control 1', 'case 2'] + [f'sample {i}' for i in range(3, len(samples))])[: len(samples)])}",
             f"!Sample_geo_accession\t{q(samples)}",
             f"!Sample_source_name_ch1\t{q(['synovium'] * len(samples))}"]
    lines += [f"!Sample_characteristics_ch1\t{q(c)}" for c in chars]
    lines.append(f"!Sample_platform_id\t{q(['GPL1'] * len(samples))}")
    if table_begin:
        lines.append("!series_matrix_table_begin")
    lines.append(header if header is not None else "\t".join(['"ID_REF"', *(f'"{s}"' for s in samples)]))
    lines += ["\t".join(r) for r in rows]
    if table_end:
        lines.append("!series_matrix_table_end")
    return "\n".join(lines) + "\n"


def write_gz(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode() if isinstance(text, str) else text
    with gzip.open(path, "wb") as f:
        f.write(data)
    return path


def truncated_copy(src: Path, dst: Path, keep: float = 0.5) -> Path:
    """The first ``keep`` fraction of a gzip file's bytes: what an interrupted download leaves."""
    data = src.read_bytes()
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


@functools.lru_cache(maxsize=1)
def geoparse_gse781():
    """GEOparse's parse of the GSE781 family SOFT (the independent oracle), parsed once per test process."""
    import GEOparse

    logging.getLogger("GEOparse").setLevel(logging.ERROR)
    return GEOparse.get_GEO(filepath=str(GSE781_SOFT), silent=True)


GSE781_ROOT = Path(__file__).parent / "data" / "genotex_gse781"
GSE781_SPEC = Path(__file__).parent.parent / "genotex_dask" / "specs" / "Kidney_Clear_Cell_Carcinoma.yaml"
GSE781_TRAIT = "Kidney_Clear_Cell_Carcinoma"


def traversal_specs_tree(base: Path) -> tuple[Path, Path, str]:
    """The real GSE781 tree copied to BASE/root and a specs dir BASE/specs whose GSE781 spec also names a
    cohort '../../../ESC_COHORT' and whose Esc.yaml names a trait '../../../ESC_TRAIT' (path-traversal probes);
    returns (root, specs, the cohorts block of the GSE781 spec, for more hostile specs)."""
    import shutil

    root, specs = base / "root", base / "specs"
    shutil.copytree(GSE781_ROOT, root)
    specs.mkdir(parents=True)
    text = GSE781_SPEC.read_text()
    body = text.split("cohorts:\n", 1)[1]
    (specs / f"{GSE781_TRAIT}.yaml").write_text(text + body.replace("  GSE781:", "  ../../../ESC_COHORT:", 1))
    (specs / "Esc.yaml").write_text(f"trait: ../../../ESC_TRAIT\ncohorts:\n{body}")
    return root, specs, body

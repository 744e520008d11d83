"""Build the compact gene/alias table shipped with the synthetic corpus generator (run once, by hand).

Source: ``/work/shared/data/genotex_gse781/metadata/gene_synonym.json`` -- uppercased alias -> official human
gene symbol, built from NCBI Gene (2022-Sep-12 snapshot, as shipped in Debian's ``r-bioc-org.hs.eg.db``) with
GenoTEX's rule (official symbols map to themselves; an alias that is another gene's official symbol is never
overwritten).  We keep real official symbols that GenoTEX's symbol-extraction pattern can read whole, and up to
three of their real aliases that are not themselves another gene's symbol, so that the corpus's
``gene_synonym.json`` written from this table obeys the same rule.  The generator never reads ../shared at run
time; it reads only the table written here (``genes.tsv.gz``).

    python -m genotex_dask.synth.make_gene_table SRC.json [OUT.tsv.gz] [N]
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import sys
from pathlib import Path

# Symbols the corpus generator plants by name (sex-linked genes, Affymetrix control-probe genes, a few
# well-known disease genes for readable examples); they are always kept.
MUST_KEEP = (
    "XIST", "RPS4Y1", "DDX3Y", "KDM5D", "UTY", "EIF1AY", "USP9Y", "ZFY", "GAPDH", "ACTB", "STAT1", "TFRC",
    "CA9", "VHL", "VEGFA", "EGLN3", "NDUFA4L2", "ANGPTL4", "PAX8", "PAX2", "TNF", "IL6", "IL1B", "CXCL13",
    "MMP1", "MMP3", "COMP", "INS", "GCG", "PPARG", "TCF7L2", "KRT16", "S100A7", "DEFB4A", "IL17A", "ESR1",
    "ERBB2", "TP53", "EGFR", "KRAS", "MYC", "CDKN2A", "APOE", "APP", "PSEN1", "SNCA", "LRRK2", "CFTR",
    "HBB", "CDKN1A", "IGF1", "FOXO3", "SIRT1", "TERT", "KLOTHO", "LMNA",
)
_WHOLE = re.compile(r"(?:[A-Z][A-Z0-9-]{1,9}|C\d+orf\d+)")
_EXCLUDED = re.compile(r"^(?:NR_|XR_|LOC\d|LINC\d)")
_TRIVIAL = {"DNA", "RNA", "PCR", "EST", "CHR"}


def readable(sym: str) -> bool:
    """True when GenoTEX's extraction pattern returns ``sym`` unchanged from annotation text."""
    return bool(_WHOLE.fullmatch(sym)) and not _EXCLUDED.match(sym) and sym not in _TRIVIAL


def build(src: str, n: int = 20000) -> list[tuple[str, list[str]]]:
    syn: dict[str, str] = json.loads(Path(src).read_text())
    official = set(syn.values())
    aliases: dict[str, list[str]] = {}
    for alias, sym in syn.items():
        if alias != sym and alias not in official and readable(alias):
            aliases.setdefault(sym, []).append(alias)
    cands = sorted(s for s in official if readable(s) and s in aliases and syn.get(s.upper()) == s)
    keep = [s for s in MUST_KEEP if s in official and syn.get(s.upper()) == s]
    # Deterministic pseudo-random subset: order by a hash of the symbol, independent of dict order.
    rest = sorted((s for s in cands if s not in set(keep)), key=lambda s: hashlib.sha1(s.encode()).hexdigest())
    chosen = sorted(keep + rest[: max(0, n - len(keep))])
    return [(s, sorted(aliases.get(s, []))[:3]) for s in chosen]


def main(argv: list[str]) -> None:
    src = argv[1] if len(argv) > 1 else "/work/shared/data/genotex_gse781/metadata/gene_synonym.json"
    out = argv[2] if len(argv) > 2 else str(Path(__file__).with_name("genes.tsv.gz"))
    n = int(argv[3]) if len(argv) > 3 else 20000
    rows = build(src, n)
    text = "symbol\taliases\n" + "".join(f"{s}\t{'|'.join(a)}\n" for s, a in rows)
    with open(out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        gz.write(text.encode())
    print(f"{len(rows)} genes, {sum(len(a) for _, a in rows)} aliases -> {out}")


if __name__ == "__main__":
    main(sys.argv)

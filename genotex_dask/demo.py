"""The demo job behind `make demo`: a small synthetic corpus plus the real GSE781 cohort, every stage.

The real cohort lives in the repository's tests/data (a GenoTEX-layout tree); it is merged into the
synthetic corpus's input/ and metadata/ so one run covers both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genotex_dask import layout
from genotex_dask.io import fs

REAL_TREE = Path(__file__).resolve().parents[1] / "tests" / "data" / "genotex_gse781"
TCGA_TREE = Path(__file__).resolve().parents[1] / "tests" / "data" / "tcga"


def add_real_tree(corpus: str, real_root: str) -> list[str]:
    """Copy a GenoTEX-layout tree's input files into ``corpus`` and merge its metadata; returns the files copied.

    task_info entries of the real tree are added; gene synonyms are merged so that existing entries of
    the corpus win (GenoTEX's rule: an official symbol is never overwritten by another gene's alias).
    """
    src_fs, src_root = fs.get_fs(real_root)
    copied = []
    for path in sorted(src_fs.find(layout.join(src_root, "input"))):
        rel = path[len(src_root.rstrip("/")) + 1:]
        fs.write_bytes_atomic(layout.join(corpus, rel), src_fs.cat_file(path))
        copied.append(rel)
    tasks = fs.read_json(layout.task_info_path(corpus))
    tasks.update(fs.read_json(layout.task_info_path(real_root)))
    fs.write_json_atomic(layout.task_info_path(corpus), dict(sorted(tasks.items())))
    synonyms = fs.read_json(layout.gene_synonym_path(real_root))
    synonyms.update(fs.read_json(layout.gene_synonym_path(corpus)))
    fs.write_json_atomic(layout.gene_synonym_path(corpus), synonyms, indent=None)
    return copied


def run_demo(out: str, traits: int = 3, cohorts_per_trait: int = 3, samples: int = 40, probes: int = 1500,
             seed: int = 0, real_root: str | None = None, mode: str = "fast", **cluster_kw: Any) -> dict:
    """Synthesize, add the real cohort, then run ingest → preprocess → analyze → evaluate + report."""
    from genotex_dask import api

    corpus = layout.join(out, "corpus")
    output = layout.join(out, "output")
    if not fs.exists(layout.task_info_path(corpus)):
        from genotex_dask.synth.corpus import write_corpus

        real = real_root or (str(REAL_TREE) if REAL_TREE.exists() else None)
        real_traits = tuple(fs.read_json(layout.task_info_path(real))) if real else ()
        # synthetic traits never share a name with the real ones, so each trait's truth stays its own
        write_corpus(corpus, traits=traits, cohorts_per_trait=cohorts_per_trait, samples=samples,
                     probes=probes, seed=seed, exclude_traits=real_traits)
        if real:
            add_real_tree(corpus, real)
    summary = api.run(corpus, output, mode=mode, report=layout.join(out, "report"), **cluster_kw)
    result = {"corpus": corpus, "output": output, "report": layout.join(out, "report", "index.html"),
              "summary": summary}
    if (TCGA_TREE / "input" / "TCGA" / "TCGA_Bile_Duct_Cancer_(CHOL)").exists() and real_root is None:
        chol = result["imported_chol"] = imported_chol(out, **cluster_kw)
        rec = chol["record"] or {}
        result["imported_chol_check"] = (
            f"TCGA CHOL with GenoTEX's imported decisions: {rec.get('sample_size')} samples, trait counts "
            f"{chol['trait_counts']}, usable={rec.get('is_usable')}, {chol['n_genes']} genes; golden mismatches "
            + (", ".join(f"{m['field']} expected {m['expected']} got {m['got']}" for m in chol["golden_mismatches"])
               or "none"))
        print(result["imported_chol_check"])   # the CLI's stage lines do not show this extra step
    return result


def imported_chol(out: str, **cluster_kw: Any) -> dict:
    """The real TCGA CHOL cohort preprocessed with the decisions imported from GenoTEX's notebook
    (``--specs genotex``); returns its cohort record next to the values GenoTEX printed (golden check)."""
    from genotex_dask import api
    from genotex_dask.pipelines.preprocess import load_specs

    root = layout.join(out, "chol_root")
    chol = "TCGA_Bile_Duct_Cancer_(CHOL)"
    if not fs.exists(layout.gene_synonym_path(root)):
        for f in sorted((TCGA_TREE / "input" / "TCGA" / chol).iterdir()):
            fs.write_bytes_atomic(layout.join(root, "input", "TCGA", chol, f.name), f.read_bytes())
        fs.write_bytes_atomic(layout.gene_synonym_path(root), fs.read_bytes(layout.gene_synonym_path(str(REAL_TREE))))
    spec = {"Bile_Duct_Cancer": {"TCGA": load_specs(api.shipped_specs("genotex"))["Bile_Duct_Cancer"]["TCGA"]}}
    chol_out = layout.join(out, "chol_output")
    if fs.exists(chol_out):   # recomputed each time (seconds), so the check shows this run's values
        fs.remove(chol_out)
    s = api.preprocess(root, spec, chol_out, progress=False, **cluster_kw)
    c = s["cohorts"]["Bile_Duct_Cancer/TCGA"]
    return {"record": c.get("record"), "trait_counts": c.get("trait_counts"), "n_genes": c.get("n_genes"),
            "expected": spec["Bile_Duct_Cancer"]["TCGA"].expect, "golden_mismatches": c.get("golden", [])}

"""Import a whole GenoTEX checkout: one spec file per trait plus ``import_summary.json`` (coverage by reason).

``GENOTEX_DIR`` is any fsspec URL of a checkout (``code/<Trait>/<cohort>.ipynb``).  With ``root`` (a GenoTEX
input tree) the unique characteristics cells of each cohort's own series matrix complete the printed values
GenoTEX capped at 30 per row.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import yaml

from genotex_dask import layout
from genotex_dask.io import fs
from genotex_dask.specs_import.importer import Imported, import_geo, import_tcga
from genotex_dask.specs_import.notebooks import NotebookError, read_notebook

HEADER = ("# Imported from GenoTEX (https://github.com/Liu-Hy/GenoTEX, CC BY 4.0) by `genotex-dask specs import`.\n"
          "# Decisions only (rows, value tables, columns, golden values); no GenoTEX code is copied.\n")


def matrix_rows(root: str | None, trait: str, cohort: str, source: str = "characteristics_ch1") -> list | None:
    """Unique cells per characteristics row of the cohort's first series matrix under ``root`` (header only)."""
    if not root:
        return None
    from genotex_dask.io.geo import read_series_matrix

    d = layout.geo_cohort_dir(root, trait, cohort)
    try:
        mats = sorted(n for n in fs.listdir(d) if layout.is_series_matrix(n))
        if not mats:
            return None
        obs = read_series_matrix(layout.join(d, mats[0]), values=False).samples
    except (OSError, ValueError):
        return None
    cols = [c for c in obs.columns if str(c).startswith(source)]
    cols.sort(key=lambda c: int(str(c).rsplit("_", 1)[-1]) if str(c).rsplit("_", 1)[-1].isdigit() else 0)
    return [sorted({str(v) for v in obs[c].tolist() if isinstance(v, str) and v != ""}) for c in cols]


def import_one(url: str, trait: str, cohort: str, root: str | None = None) -> Imported:
    """Import one notebook; never raises on notebook content (unreadable -> ``unimportable`` with the reason)."""
    try:
        nb = read_notebook(url)
    except NotebookError as exc:
        return Imported(trait, cohort, url, "unimportable", reasons=[f"unreadable notebook: {exc}"])
    except (OSError, FileNotFoundError) as exc:
        return Imported(trait, cohort, url, "unimportable", reasons=[f"unreadable notebook: {exc}"])
    nb.path = url
    try:
        if cohort == "TCGA":
            return import_tcga(nb, trait)
        return import_geo(nb, trait, cohort, (lambda: matrix_rows(root, trait, cohort)) if root else None)
    except RecursionError:   # notebook content nested beyond what the static walk follows
        return Imported(trait, cohort, url, "unimportable", reasons=["notebook code nested too deeply to resolve"])


def _relative(url: str, base: str) -> str:
    return url[len(base.rstrip("/")) + 1:] if url.startswith(base.rstrip("/") + "/") else url


def dump_trait(trait: str, cohorts: dict[str, dict], header: str = HEADER) -> str:
    doc = {"trait": trait, "cohorts": {c: cohorts[c] for c in sorted(cohorts)}}
    return header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=110)


def import_tree(genotex_dir: str, out: str, root: str | None = None, missing: dict[str, str] | None = None,
                commit: str | None = None) -> dict[str, Any]:
    """Import every ``code/<Trait>/<cohort>.ipynb`` under ``genotex_dir`` into ``out/<Trait>.yaml``.

    ``missing`` names notebooks known to exist but absent (e.g. too large for a snapshot) with the reason.
    """
    t0 = time.perf_counter()
    code = layout.join(genotex_dir, "code")
    results: list[Imported] = []
    for trait in fs.listdir(code):
        tdir = layout.join(code, trait)
        if not fs.isdir(tdir):
            continue
        for name in fs.listdir(tdir):
            if not name.endswith(".ipynb"):
                continue
            imp = import_one(layout.join(tdir, name), trait, name[:-len(".ipynb")], root)
            imp.notebook = _relative(imp.notebook, genotex_dir)
            if imp.spec and "import" in imp.spec:
                imp.spec["import"]["notebook"] = imp.notebook
            results.append(imp)
    for path, why in sorted((missing or {}).items()):
        parts = path.split("/")
        results.append(Imported(parts[-2], parts[-1].rsplit(".", 1)[0], path, "unimportable",
                                reasons=[f"unreadable notebook: {why}"]))
    by_trait: dict[str, dict[str, dict]] = {}
    for r in results:
        if r.spec is not None:
            by_trait.setdefault(r.trait, {})[r.cohort] = r.spec
    header = HEADER + (f"# GenoTEX commit {commit}\n" if commit else "")
    for trait, cohorts in sorted(by_trait.items()):
        fs.write_text_atomic(layout.join(out, f"{trait}.yaml"), dump_trait(trait, cohorts, header))
    summary = coverage(results)
    summary.update({"stage": "specs_import", "genotex_dir": genotex_dir, "out": out, "root": root,
                    "commit": commit, "traits": len(by_trait), "seconds": round(time.perf_counter() - t0, 3)})
    fs.write_json_atomic(layout.join(out, "import_summary.json"), summary)
    return summary


def _reason_key(reason: str) -> str:
    """A reason without its cohort-specific detail (quoted values, numbers), for counting."""
    import re

    r = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", reason)
    r = re.sub(r"\d[\d,]*", "N", r)
    return r[:160]


def coverage(results: list[Imported]) -> dict[str, Any]:
    """Counts per import class and per reason (the first reason of each cohort, and all reasons)."""
    klass = Counter(r.klass for r in results)
    first = Counter()
    allr = Counter()
    for r in results:
        if r.klass in ("review", "unimportable"):
            first[f"{r.klass}: {_reason_key(r.reasons[0])}"] += 1
            for x in {_reason_key(x) for x in r.reasons}:
                allr[f"{r.klass}: {x}"] += 1
    return {"notebooks": len(results), "classes": dict(sorted(klass.items())),
            "first_reason": dict(first.most_common()), "all_reasons": dict(allr.most_common()),
            "cohorts": {f"{r.trait}/{r.cohort}": {"class": r.klass, "reasons": r.reasons} for r in
                        sorted(results, key=lambda r: (r.trait, r.cohort))}}

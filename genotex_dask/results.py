"""Results as ecosystem objects: a cohort as AnnData, a run's significant genes as a DataFrame, and the whole
run as a Parquet dataset partitioned by trait that ``dask.dataframe.read_parquet`` reads from any fsspec URL.

Why here (and not in the stages): these are views over GenoTEX's output layout.  The analyze stage writes the
Parquet dataset when it finishes (:func:`write_results_parquet`); :func:`results_dataset` rebuilds it from the
per-problem JSON files when it is absent or older than them (a run made by another tool, an agent's run).

One row per (problem, significant gene), columns :data:`COLUMNS`; ``condition`` is null for the
unconditional problem (GenoTEX's ``significant_genes_condition_None.json``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from genotex_dask import layout
from genotex_dask.io import fs

SIG_PREFIX = "significant_genes_condition_"
RESULTS_DIR = "results"
DATASET = "significant_genes"  # OUT/results/significant_genes/trait=<Trait>/part-0.parquet
ENGINE_KEY = "genotex_dask"
COLUMNS = ("trait", "condition", "category", "gene", "coefficient", "abs_coefficient", "sign", "rank",
           "n_significant", "trait_cohort", "condition_cohort", "cohorts", "mode", "model", "method", "alpha")
_DTYPES = {"trait": "string", "condition": "string", "category": "string", "gene": "string",
           "coefficient": "float64", "abs_coefficient": "float64", "sign": "int8", "rank": "int32",
           "n_significant": "int32", "trait_cohort": "string", "condition_cohort": "string", "cohorts": "string",
           "mode": "string", "model": "string", "method": "string", "alpha": "float64"}


def results_dataset_url(out: str) -> str:
    """Where the run's Parquet dataset lives: OUT/results/significant_genes (hive partitions ``trait=<T>``)."""
    return layout.join(out, RESULTS_DIR, DATASET)


def _category(condition: str | None) -> str:
    from genotex_dask.analysis.problems import ONE_STEP_CONDITIONS

    if condition is None:
        return "unconditional"
    return "conditional_one_step" if condition in ONE_STEP_CONDITIONS else "two_step"


def problem_rows(trait: str, condition: str | None, result: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of one problem's result (GenoTEX's significant-genes JSON, plus our record when present).

    Rank is the position in GenoTEX's list (1 = largest |coefficient| or smallest corrected p-value).
    """
    sig = result.get("significant_genes") or {}
    genes = [str(g) for g in sig.get("Variable") or []]
    coefs = [float(c) for c in sig.get("Coefficient") or [np.nan] * len(genes)]
    if len(coefs) != len(genes):
        raise ValueError(f"{trait}/{condition}: {len(genes)} genes but {len(coefs)} coefficients")
    eng = result.get(ENGINE_KEY) if isinstance(result.get(ENGINE_KEY), dict) else {}
    tc, cc = eng.get("trait_cohort"), eng.get("condition_cohort")
    base = {"trait": trait, "condition": condition, "category": eng.get("category") or _category(condition),
            "n_significant": len(genes), "trait_cohort": tc, "condition_cohort": cc,
            "cohorts": " + ".join(str(c) for c in (tc, cc) if c) or None, "mode": eng.get("mode"),
            "model": eng.get("model"), "method": eng.get("method") or eng.get("model"),
            "alpha": eng.get("alpha") if isinstance(eng.get("alpha"), (int, float)) else np.nan}
    return [{**base, "gene": g, "coefficient": c, "abs_coefficient": abs(c),
             "sign": int(np.sign(c)) if np.isfinite(c) else 0, "rank": i + 1}
            for i, (g, c) in enumerate(zip(genes, coefs))]


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    return df.astype(_DTYPES)


def result_files(out: str) -> list[tuple[str, str | None, str]]:
    """(trait, condition, url) of every significant-genes JSON under OUT/regress, sorted."""
    reg = layout.regress_dir(out)
    found = []
    for trait in fs.listdir(reg) if fs.isdir(reg) else []:
        tdir = layout.join(reg, trait)
        if trait.startswith(".") or not fs.isdir(tdir):
            continue
        for name in fs.listdir(tdir):
            if name.startswith(SIG_PREFIX) and name.endswith(".json"):
                cond = name[len(SIG_PREFIX):-len(".json")]
                found.append((trait, None if cond == "None" else cond, layout.join(tdir, name)))
    return sorted(found, key=lambda t: (t[0], t[1] or ""))


def significant_genes_from_json(out: str) -> pd.DataFrame:
    """Every significant gene of the run at ``out``, read from OUT/regress/<Trait>/*.json."""
    rows: list[dict[str, Any]] = []
    for trait, cond, url in result_files(out):
        try:
            rows.extend(problem_rows(trait, cond, fs.read_json(url)))
        except ValueError as e:
            raise ValueError(f"{url}: {e}") from e
    return _frame(rows)


def write_results_parquet(out: str, table: pd.DataFrame | None = None) -> str:
    """Write the run's significant genes as a Parquet dataset partitioned by trait; returns its URL.

    One file per trait (``trait=<Trait>/part-0.parquet``, the trait in the path only, as hive partitioning
    expects), published whole and atomically: a reader never sees a half-written dataset.
    """
    table = significant_genes_from_json(out) if table is None else table
    url = results_dataset_url(out)
    with fs.atomic_dir(url) as tmp:
        for trait, part in table.groupby("trait", sort=True, observed=True):
            body = part.drop(columns=["trait"]).reset_index(drop=True)
            fs.write_bytes_atomic(layout.join(tmp, f"trait={trait}", "part-0.parquet"),
                                  body.to_parquet(index=False))
        fs.write_json_atomic(layout.join(tmp, "_sources.json"), _sources(out))
    return url


def _sources(out: str) -> dict[str, Any]:
    """Fingerprints of the JSON files the dataset was made from (decides whether it is stale)."""
    return {f"{t}/{c}": fs.file_fingerprint(u) for t, c, u in result_files(out)}


def _is_current(out: str) -> bool:
    url = results_dataset_url(out)
    marker = layout.join(url, "_sources.json")
    if not (fs.is_complete_dir(url) and fs.exists(marker)):
        return False
    try:
        return fs.read_json(marker) == fs.json_safe(_sources(out))
    except Exception:  # noqa: BLE001 - an unreadable marker means rebuild
        return False


def results_dataset(out: str, rebuild: bool = False) -> str:
    """URL of the run's Parquet dataset, (re)built from OUT/regress when absent, stale or ``rebuild``."""
    if rebuild or not _is_current(out):
        write_results_parquet(out)
    return results_dataset_url(out)


def read_results(out: str, **read_kw: Any):
    """The whole run's results as a Dask DataFrame (``dask.dataframe.read_parquet`` on the dataset).

    ``trait`` comes back from the partition directories; ``read_kw`` is passed to ``read_parquet``
    (``filters=[("trait", "==", "X")]``, ``storage_options=...``).
    """
    import dask.dataframe as dd

    return dd.read_parquet(results_dataset(out), **read_kw)


def significant_genes(out: str) -> pd.DataFrame:
    """All significant genes of a run as a pandas DataFrame (columns :data:`COLUMNS`), sorted by problem and rank."""
    df = significant_genes_from_json(out)
    return df.sort_values(["trait", "condition", "rank"], na_position="first", kind="stable").reset_index(drop=True)


def recurrent_genes(table: Any, min_traits: int = 2):
    """Genes significant for at least ``min_traits`` distinct traits (pandas or Dask DataFrame in, same out)."""
    per_gene = table[["gene", "trait"]].drop_duplicates().groupby("gene")["trait"].count()
    return per_gene[per_gene >= min_traits].rename("n_traits")


# ---- cohorts as AnnData --------------------------------------------------------------------------------

def preprocessed_cohort_url(out: str, trait: str, cohort: str) -> str:
    """OUT/preprocess_store/<Trait>/<cohort>.zarr: the preprocessed cohort (samples x genes)."""
    return layout.join(out, "preprocess_store", trait, f"{cohort}.zarr")


def load_cohort(url: str, lazy: bool = False):
    """A cohort Zarr group (raw store or preprocessed store) as AnnData with ``uns`` decoded to a plain dict.

    ``lazy=True`` keeps X as a Dask array read from Zarr chunk by chunk (obs/var/uns are read whole).
    """
    from genotex_dask.io import store

    return store.open_cohort(url, lazy=lazy)


def preprocessed_cohort(out: str, trait: str, cohort: str, lazy: bool = False):
    """The preprocessed cohort ``trait``/``cohort`` of the run at ``out`` as AnnData (see :func:`load_cohort`)."""
    return load_cohort(preprocessed_cohort_url(out, trait, cohort), lazy=lazy)


# ---- a run at a glance (what the report's results section shows) ----------------------------------------

def _exclusion_reason(rec: dict[str, Any], status: str | None) -> str:
    """Why a cohort was not used, from its cohort_info record (GenoTEX's fields) and preprocessing status."""
    if status == "failed":
        return f"failed: {rec.get('note') or 'see preprocess run_summary.json'}"
    if rec.get("is_gene_available") is False:
        return "no mappable genes"
    if rec.get("is_trait_available") is False:
        return "no trait information"
    if not rec.get("sample_size"):
        return "too few samples (none left after filtering)"
    if rec.get("is_biased"):
        return "biased (trait classes too unbalanced or constant)"
    return str(rec.get("note") or "not usable")


def run_overview(out: str) -> dict[str, Any]:
    """Per trait the cohorts used and excluded (with the reason), per problem the selected cohort(s), its
    significant genes and their selection frequency across CV folds, and the problems without a cohort."""
    traits: dict[str, list[dict[str, Any]]] = {}
    pre = layout.preprocess_dir(out)
    for trait in fs.listdir(pre) if fs.isdir(pre) else []:
        url = layout.cohort_info_path(out, trait)
        if not fs.exists(url):
            continue
        rows = []
        for cohort, rec in sorted((fs.read_json(url) or {}).items()):
            meta_url = layout.join(out, "preprocess_meta", trait, f"{cohort}.json")
            meta = fs.read_json(meta_url) if fs.exists(meta_url) else {}
            usable = bool(rec.get("is_usable"))
            rows.append({"cohort": cohort, "usable": usable, "sample_size": rec.get("sample_size"),
                         "has_age": rec.get("has_age"), "has_gender": rec.get("has_gender"),
                         "needs_review": bool(meta.get("needs_review")),
                         "reason": "" if usable else _exclusion_reason(rec, meta.get("status"))})
        traits[trait] = rows
    problems = []
    for trait, cond, url in result_files(out):
        res = fs.read_json(url)
        eng = res.get(ENGINE_KEY) if isinstance(res.get(ENGINE_KEY), dict) else {}
        rows = problem_rows(trait, cond, res)
        folds = (eng.get("cv_fold_selection") or {}).get("folds") or []
        freq = {r["gene"]: sum(r["gene"] in set(f) for f in folds) / len(folds) for r in rows} if folds else {}
        problems.append({"trait": trait, "condition": cond, "category": eng.get("category") or _category(cond),
                         "trait_cohort": eng.get("trait_cohort"), "condition_cohort": eng.get("condition_cohort"),
                         "model": eng.get("model"), "mode": eng.get("mode"), "alpha": eng.get("alpha"),
                         "genes": [r["gene"] for r in rows], "coefficients": [r["coefficient"] for r in rows],
                         "n_significant": len(rows), "fold_frequency": freq, "n_folds": len(folds)})
    summary_url = layout.join(layout.regress_dir(out), "run_summary.json")
    summary = fs.read_json(summary_url) if fs.exists(summary_url) else {}
    return {"out": out, "traits": traits, "problems": problems,
            "no_cohort": list(summary.get("no_cohort_problems") or []),
            "failed": [{"problem": e.get("problem"), "error": e.get("error")} for e in summary.get("errors") or []],
            "table": significant_genes(out)}

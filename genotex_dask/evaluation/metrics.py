"""GenoTEX's evaluation metrics as pure functions (no I/O).

The definitions follow the public evaluation code of GenoTEX (``utils/evaluation.py``, ``eval.py``) and of
the same authors' GenoMAS (``eval.py``, ``utils/metrics.py``), which is the newer statement of the same
benchmark.  Where the two disagree we follow GenoMAS and say so next to the function:

* filtering: per-trait confusion on ``is_available`` over the union of cohort IDs (missing = False);
  precision / recall / F1 are 0 when their denominator is 0, accuracy in %.
* selection: the deterministic cohort-selection rule run on both sides; equal results (or both None) = 100.
* preprocessing: attribute Jaccard (AJ), sample Jaccard (SJ), mean Pearson r over shared features with
  non-zero variance on both sides after column-mean imputation; CSC = AJ x SJ x r.
* statistical analysis: gene precision / recall / F1 with GenoTEX's empty-set conventions, AUROC with the
  i-th predicted gene scored ``len(pred) - i`` and every other gene 0, and an unweighted GSEA enrichment
  score (maximum of the running sum).

All averages are NaN-ignoring means rounded to 2 decimals, as both reference implementations do.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from genotex_dask.io.fs import json_safe  # noqa: F401  (re-exported: the metrics file is strict JSON)

DEFAULT_N_GENES = 20000
CATEGORIES = ("unconditional_one_step", "conditional_one_step", "two_step")
CATEGORY_LABELS = {
    "unconditional_one_step": "Unconditional one-step",
    "conditional_one_step": "Conditional one-step",
    "two_step": "Two-step",
    "overall": "Overall",
}
PREPROCESS_KINDS = ("gene", "clinical", "linked")


# ---- problems and categories ----------------------------------------------------------------------

def is_unconditional(condition: str | None) -> bool:
    """GenoTEX writes the unconditional problem as condition ``None`` (file suffix ``_None``)."""
    return condition is None or str(condition).lower() == "none"


def problem_category(condition: str | None) -> str:
    """unconditional_one_step / conditional_one_step (Age, Gender, any case) / two_step (another trait)."""
    if is_unconditional(condition):
        return "unconditional_one_step"
    if str(condition).lower() in ("age", "gender"):
        return "conditional_one_step"
    return "two_step"


def question_pairs(task_info: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    """(trait, None) then (trait, c) for each listed condition, traits sorted: the benchmark's problem list."""
    pairs: list[tuple[str, str | None]] = []
    for trait in sorted(task_info):
        pairs.append((trait, None))
        for cond in task_info[trait].get("conditions", []) or []:
            pairs.append((trait, cond))
    return pairs


def nanmean_round(values: Iterable[Any], ndigits: int = 2) -> float:
    """NaN-ignoring mean rounded like the reference (NaN when no finite value)."""
    arr = np.array([np.nan if v is None else float(v) for v in values], dtype=float)
    if arr.size == 0 or np.all(np.isnan(arr)):
        return float("nan")
    return float(np.round(np.nanmean(arr), ndigits))


def average_records(records: Sequence[Mapping[str, Any]], keys: Sequence[str] | None = None) -> dict:
    """Average every numeric field (bools excluded) of a list of per-item records."""
    if not records:
        return {}
    if keys is None:
        keys = [k for k, v in records[0].items()
                if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("tp", "fp", "tn", "fn")]
    return {k: nanmean_round(r.get(k) for r in records) for k in keys}


def aggregate_by_category(records: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> dict:
    """Per-category and overall averages of problem records carrying a ``category`` field."""
    out: dict[str, dict] = {}
    for cat in CATEGORIES:
        out[cat] = average_records([r for r in records if r["category"] == cat], keys)
    out["overall"] = average_records(list(records), keys)
    return out


# ---- dataset filtering ----------------------------------------------------------------------------

def confusion_metrics(tp: int, fp: int, tn: int, fn: int) -> dict:
    """Precision, recall, F1, accuracy in %; a zero denominator gives 0 (GenoMAS calculate_metrics_from_confusion)."""
    precision = tp / (tp + fp) if tp + fp > 0 else 0.0
    recall = tp / (tp + fn) if tp + fn > 0 else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    total = tp + fp + tn + fn
    accuracy = (tp + tn) / total if total > 0 else 0.0
    return {"precision": precision * 100, "recall": recall * 100, "f1": f1 * 100, "accuracy": accuracy * 100}


def filtering_confusion(ref_info: Mapping[str, Any], pred_info: Mapping[str, Any]) -> dict:
    """Confusion counts on ``is_available`` over the union of cohort IDs; a missing cohort/flag counts False."""
    counts = {"tp": 0, "fp": 0, "tn": 0, "fn": 0}
    for cohort in set(ref_info) | set(pred_info):
        r = bool((ref_info.get(cohort) or {}).get("is_available", False))
        p = bool((pred_info.get(cohort) or {}).get("is_available", False))
        key = ("tp" if p else "fn") if r else ("fp" if p else "tn")
        counts[key] += 1
    return counts


def filtering_metrics(ref_info: Mapping[str, Any], pred_info: Mapping[str, Any]) -> dict:
    """One trait's filtering record: confusion counts plus precision/recall/F1/accuracy in %."""
    c = filtering_confusion(ref_info, pred_info)
    return {**c, **confusion_metrics(c["tp"], c["fp"], c["tn"], c["fn"])}


# ---- dataset selection ----------------------------------------------------------------------------

def usable_cohorts(info: Mapping[str, Any], condition: str | None = None) -> list[tuple[str, int]]:
    """(cohort, sample_size) of usable cohorts in file order; for Age/Gender only those that have it."""
    out = []
    for cohort, rec in info.items():
        rec = rec or {}
        if not rec.get("is_usable", False):
            continue
        if condition is not None and str(condition).lower() in ("age", "gender"):
            if not rec.get("has_" + str(condition).lower(), False):
                continue
        out.append((cohort, int(rec.get("sample_size") or 0)))
    return out


def select_one_step(info: Mapping[str, Any], condition: str | None = None) -> str | None:
    """The usable cohort with the largest sample size (ties: the first in the file), or None."""
    cands = usable_cohorts(info, condition)
    if not cands:
        return None
    best = max(c[1] for c in cands)
    return next(c for c, n in cands if n == best)


def gene_regressors(trait: str, condition: str, trait_columns: Iterable[str], condition_columns: Iterable[str],
                    condition_related: Sequence[str], trait_related: Sequence[str] = (),
                    exclude_trait_related: bool = False) -> list[str]:
    """Genes known to relate to the condition that both cohorts measure (GenoTEX get_gene_regressors).

    ``exclude_trait_related=True`` is GenoMAS's variant (drop genes also related to the trait, the IV
    exclusion restriction); the default follows GenoTEX, which the analysis engine reproduces.
    """
    tcols, ccols = _as_set(trait_columns), _as_set(condition_columns)
    drop = {"Age", "Gender", trait, condition}
    related = list(condition_related)
    if exclude_trait_related:
        tr = set(trait_related)
        related = [g for g in related if g not in tr]
    # the related genes in both cohorts' gene sets (columns minus Age, Gender and each side's own trait column):
    # checked gene by gene, so the ~20,000 columns are never intersected (callers may pass their sets, memoized)
    return [g for g in related if g in tcols and g in ccols and g not in drop]


def _as_set(cols: Iterable[str]) -> set | frozenset:
    return cols if isinstance(cols, (set, frozenset)) else set(cols)


def rank_pairs(trait_info: Mapping[str, Any], condition_info: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """All usable (trait cohort, condition cohort) pairs by descending product of sample sizes (stable)."""
    pairs = [(t, c, nt * nc) for t, nt in usable_cohorts(trait_info) for c, nc in usable_cohorts(condition_info)]
    pairs.sort(key=lambda x: x[2], reverse=True)
    return pairs


def select_two_step(trait: str, condition: str, trait_info: Mapping[str, Any], condition_info: Mapping[str, Any],
                    columns: Callable[[str, str], Iterable[str] | None], condition_related: Sequence[str],
                    trait_related: Sequence[str] = (), exclude_trait_related: bool = False
                    ) -> tuple[str, str] | None:
    """The first ranked pair whose linked files share condition regressors, or None.

    ``columns(trait_or_condition, cohort)`` returns the linked file's column names (None when the file is
    missing or unreadable, which skips the pair as the reference does).
    """
    for t, c, _ in rank_pairs(trait_info, condition_info):
        tcols = columns(trait, t)
        ccols = columns(condition, c)
        if tcols is None or ccols is None:
            continue
        if gene_regressors(trait, condition, tcols, ccols, condition_related, trait_related, exclude_trait_related):
            return (t, c)
    return None


def selection_accuracy(ref_sel: Any, pred_sel: Any) -> float:
    """100 when both sides select the same cohort (pair), including both None; else 0."""
    def norm(s: Any) -> Any:
        return tuple(s) if isinstance(s, list) else s

    return 100.0 if norm(ref_sel) == norm(pred_sel) else 0.0


# ---- preprocessing --------------------------------------------------------------------------------

PREPROCESS_ZERO = {"attributes_jaccard": 0.0, "samples_jaccard": 0.0, "feature_correlation": 0.0,
                   "composite_similarity_correlation": 0.0}


def jaccard(a: Iterable[Any], b: Iterable[Any]) -> float:
    """|A ∩ B| / |A ∪ B|; 0 for two empty sets (GenoMAS calculate_jaccard)."""
    a, b = set(a), set(b)
    union = len(a | b)
    return 0.0 if union == 0 else len(a & b) / union


def _dedup(df: pd.DataFrame) -> pd.DataFrame:
    """Keep the first of duplicated row/column labels so alignment is one-to-one."""
    if df.index.has_duplicates:
        df = df[~df.index.duplicated(keep="first")]
    if df.columns.has_duplicates:
        df = df.loc[:, ~df.columns.duplicated(keep="first")]
    return df


def _numeric_block(df: pd.DataFrame, rows: pd.Index, cols: pd.Index) -> np.ndarray:
    """float64 values of df[rows, cols]; text cells become NaN (only text columns are coerced)."""
    ri, ci = df.index.get_indexer(rows), df.columns.get_indexer(cols)
    kinds = {t.kind for t in df.dtypes.unique()} if df.shape[1] else set()
    if kinds <= set("biuf"):
        return np.asarray(df.to_numpy(dtype=np.float64)[np.ix_(ri, ci)])
    sub = df.iloc[ri, ci].copy()
    obj = [k for k, t in enumerate(sub.dtypes) if t.kind not in "biuf"]
    sub.iloc[:, obj] = sub.iloc[:, obj].apply(pd.to_numeric, errors="coerce")
    return sub.to_numpy(dtype=np.float64, na_value=np.nan)


def mean_feature_correlation(pred: pd.DataFrame, ref: pd.DataFrame) -> float:
    """Mean Pearson r over shared features, on shared samples, after column-mean imputation.

    Features constant on either side are left out; 0 when nothing is left (GenoMAS
    calculate_pearson_correlation, vectorized the same way).
    """
    pred, ref = _dedup(pred), _dedup(ref)
    samples = pred.index.intersection(ref.index)
    features = pred.columns.intersection(ref.columns)
    if len(samples) == 0 or len(features) == 0:
        return 0.0
    out = []
    for df in (pred, ref):
        a = _numeric_block(df, samples, features)
        nan = np.isnan(a)
        if nan.any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                means = np.nanmean(a, axis=0)
            means = np.where(np.isnan(means), 0.0, means)  # all-NaN columns become 0
            a = np.where(nan, means[None, :], a)
        out.append(a)
    x, y = out
    xs, ys = x.std(axis=0), y.std(axis=0)
    valid = (xs != 0) & (ys != 0)
    if not valid.any():
        return 0.0
    xv, yv = x[:, valid], y[:, valid]
    xc = xv - xv.mean(axis=0)
    yc = yv - yv.mean(axis=0)
    r = np.einsum("ij,ij->j", xc, yc) / (x.shape[0] * xs[valid] * ys[valid])
    return float(np.mean(np.nan_to_num(r, nan=0.0)))


def preprocessing_metrics(pred: pd.DataFrame | None, ref: pd.DataFrame) -> dict:
    """AJ, SJ, mean r and CSC = AJ x SJ x r for frames already oriented samples x features.

    A missing (None) or empty prediction scores 0 on everything.
    """
    if pred is None or pred.empty or ref.empty:
        return dict(PREPROCESS_ZERO)
    aj = jaccard(pred.columns, ref.columns)
    sj = jaccard(pred.index, ref.index)
    r = mean_feature_correlation(pred, ref)
    return {"attributes_jaccard": aj, "samples_jaccard": sj, "feature_correlation": r,
            "composite_similarity_correlation": aj * sj * r}


# ---- statistical analysis: gene sets --------------------------------------------------------------

def gene_precision(pred: Sequence[str], ref: Sequence[str]) -> float:
    """Share of predicted genes in the reference; empty prediction: 1 if the reference is empty, else 0."""
    if len(pred) == 0:
        return 1.0 if len(ref) == 0 else 0.0
    ref_set = set(ref)
    return sum(g in ref_set for g in pred) / len(pred)


def gene_recall(pred: Sequence[str], ref: Sequence[str]) -> float:
    """Share of reference genes predicted; empty reference: 1 if the prediction is empty, else 0."""
    if len(ref) == 0:
        return 1.0 if len(pred) == 0 else 0.0
    pred_set = set(pred)
    return sum(g in pred_set for g in ref) / len(ref)


def gene_f1(pred: Sequence[str], ref: Sequence[str]) -> float:
    p, r = gene_precision(pred, ref), gene_recall(pred, ref)
    return 0.0 if p + r == 0 else 2.0 * p * r / (p + r)


def auroc_from_scores(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (ties count one half), NaN when only one class is present.

    Computed from average ranks (Mann-Whitney U), which equals sklearn's roc_auc_score.
    """
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(scores)  # average ranks for ties
    u = ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _rank_scores(pred: Sequence[str]) -> dict[str, float]:
    """Predicted gene i scores len(pred) - i (first occurrence wins for duplicates)."""
    n = len(pred)
    scores: dict[str, float] = {}
    for i, g in enumerate(pred):
        scores.setdefault(g, float(n - i))
    return scores


def _universe_arrays(pred: Sequence[str], ref: Sequence[str], universe: Sequence[str]
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Per universe gene: is it a reference gene, and its prediction score (0 when not predicted).

    The same labels and scores as ``g in set(ref)`` and ``scores.get(g, 0.0)`` gene by gene, but only the
    few predicted and reference genes are looked up in a position map of the universe (~20,000 genes per
    problem, ~1,400 problems at GenoTEX's scale); a universe with repeated genes takes the per-gene loop."""
    scores = _rank_scores(pred)
    ref_set = set(ref)
    pos = dict(zip(universe, range(len(universe))))
    if len(pos) != len(universe):
        labels = np.fromiter((g in ref_set for g in universe), dtype=bool, count=len(universe))
        s = np.fromiter((scores.get(g, 0.0) for g in universe), dtype=np.float64, count=len(universe))
        return labels, s
    labels = np.zeros(len(universe), dtype=bool)
    labels[[pos[g] for g in ref_set if g in pos]] = True
    s = np.zeros(len(universe), dtype=np.float64)
    hit = [(pos[g], v) for g, v in scores.items() if g in pos]
    if hit:
        idx, val = zip(*hit)
        s[list(idx)] = val
    return labels, s


def _ranked_hits(labels: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Hit flags of the universe ranked by descending score, stably (as ``sorted(..., reverse=True)``: ties
    keep the universe's order)."""
    return labels[np.argsort(-s, kind="stable")]


def auroc_full(pred: Sequence[str], ref: Sequence[str], universe: Sequence[str]) -> float:
    """AUROC over a known gene universe; genes outside it are ignored (GenoMAS compute_auroc_auprc_full)."""
    labels, s = _universe_arrays(pred, ref, universe)
    return auroc_from_scores(labels, s)


def auroc_approx(pred: Sequence[str], ref: Sequence[str], n_genes: int = DEFAULT_N_GENES) -> float:
    """AUROC over pred ∪ ref padded with unscored negatives up to ``n_genes`` (GenoMAS compute_auroc_auprc_approx).

    GenoTEX's older version labelled only the predicted genes, so missed reference genes never counted as
    positives; GenoMAS fixed that and we follow the fix.
    """
    pred_scores = _rank_scores(pred)
    ref_set = set(ref)
    order = list(pred_scores) + [g for g in ref_set if g not in pred_scores]
    labels = np.array([g in ref_set for g in order], dtype=bool)
    scores = np.array([pred_scores.get(g, 0.0) for g in order], dtype=np.float64)
    pad = n_genes - len(order)
    if pad > 0:
        labels = np.concatenate([labels, np.zeros(pad, dtype=bool)])
        scores = np.concatenate([scores, np.zeros(pad)])
    return auroc_from_scores(labels, scores)


def gsea_es(ranked: Sequence[str], ref: Sequence[str]) -> float:
    """Unweighted GSEA enrichment score: maximum of the running sum (+1/Nh per hit, -1/Nm per miss).

    Nh counts reference genes present in the ranked list (GenoMAS; GenoTEX used |ref|, which only
    differs when reference genes are absent from the list).  NaN when there are no hits or no misses.
    """
    ref_set = set(ref)
    return _es_from_hits(np.fromiter((g in ref_set for g in ranked), dtype=bool, count=len(ranked)))


def _es_from_hits(hits: np.ndarray) -> float:
    """The running-sum maximum of :func:`gsea_es` from the ranked list's hit flags."""
    nh = int(hits.sum())
    nm = hits.size - nh
    if nh == 0 or nm == 0:
        return float("nan")
    steps = np.where(hits, 1.0 / nh, -1.0 / nm)
    return float(np.cumsum(steps).max())


def gsea_full(pred: Sequence[str], ref: Sequence[str], universe: Sequence[str]) -> float:
    """ES over the universe ranked by score (stable: unpredicted genes keep the universe's order)."""
    return _es_from_hits(_ranked_hits(*_universe_arrays(pred, ref, universe)))


def gsea_approx(pred: Sequence[str], ref: Sequence[str], n_genes: int = DEFAULT_N_GENES) -> float:
    """ES over the prediction followed by anonymous genes up to ``n_genes``; NaN if pred is longer."""
    tail = n_genes - len(pred)
    if tail < 0:
        return float("nan")
    ranked = list(pred) + [f"\x00UNK_{i}" for i in range(tail)]
    return gsea_es(ranked, ref)


def gene_selection_metrics(pred: Sequence[str], ref: Sequence[str], universe: Sequence[str] | None = None,
                           n_genes: int = DEFAULT_N_GENES) -> dict:
    """Precision/recall/F1 in %, AUROC and GSEA ES for one problem (GenoMAS evaluate_gene_selection).

    ``universe``: the full list of genes the problem could have selected; None uses the 20,000-gene
    approximation.
    """
    pred, ref = list(pred), list(ref)
    if universe is not None:  # auroc_full and gsea_full on one set of arrays
        labels, s = _universe_arrays(pred, ref, universe)
        auroc = auroc_from_scores(labels, s)
        es = _es_from_hits(_ranked_hits(labels, s)) if len(universe) else float("nan")
    else:
        auroc = auroc_approx(pred, ref, n_genes)
        es = gsea_approx(pred, ref, n_genes)
    return {"precision": gene_precision(pred, ref) * 100.0, "recall": gene_recall(pred, ref) * 100.0,
            "f1": gene_f1(pred, ref) * 100.0, "auroc": auroc, "gsea_es": es}


ANALYSIS_KEYS = ("success", "precision", "recall", "f1", "auroc", "gsea_es", "trait_pred_accuracy", "trait_pred_f1")


def problem_metrics(pred_result: Mapping[str, Any] | None, ref_genes: Sequence[str],
                    universe: Sequence[str] | None = None, n_genes: int = DEFAULT_N_GENES) -> dict:
    """One problem's analysis record from a parsed prediction JSON (None = no output = failure, all 0).

    Success is 100 when the prediction exists; the CV trait-prediction accuracy/F1 are copied when the
    prediction reports them (GenoMAS evaluate_problem_result).
    """
    rec = {k: 0.0 for k in ANALYSIS_KEYS}
    rec["n_pred"] = 0
    rec["n_ref"] = len(ref_genes)
    if pred_result is None:
        return rec
    pred_genes = list((pred_result.get("significant_genes") or {}).get("Variable") or [])
    rec.update(gene_selection_metrics(pred_genes, ref_genes, universe, n_genes))
    pred_cv = ((pred_result.get("cv_performance") or {}).get("prediction") or {})
    for src, dst in (("accuracy", "trait_pred_accuracy"), ("f1", "trait_pred_f1")):
        v = pred_cv.get(src)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            rec[dst] = float(v)
    rec["success"] = 100.0
    rec["n_pred"] = len(pred_genes)
    return rec



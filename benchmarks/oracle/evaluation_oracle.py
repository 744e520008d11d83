"""A plain, loop-by-loop restatement of the reference evaluation (GenoMAS eval.py / utils/metrics.py).

Used as the yardstick for genotex_dask.evaluation in tests and in the evaluation benchmark.  Written for
readability, not speed: per-column pandas Pearson correlations, Python loops for the gene metrics, and
scikit-learn's roc_auc_score, i.e. an independent path to the same numbers.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score


def csv_similarity(pred_csv: str | None, ref_csv: str, transpose: bool) -> dict:
    """AJ, SJ, mean r and CSC for two CSV texts, the way the reference reads and compares them."""
    zero = {"attributes_jaccard": 0.0, "samples_jaccard": 0.0, "feature_correlation": 0.0,
            "composite_similarity_correlation": 0.0}
    if pred_csv is None:
        return zero
    p = pd.read_csv(io.StringIO(pred_csv), index_col=0)
    r = pd.read_csv(io.StringIO(ref_csv), index_col=0)
    if transpose:
        p, r = p.T, r.T
    if p.empty or r.empty:
        return zero
    p.index, p.columns = p.index.map(str), p.columns.map(str)
    r.index, r.columns = r.index.map(str), r.columns.map(str)

    def jac(a, b):
        a, b = set(a), set(b)
        return len(a & b) / len(a | b) if a | b else 0.0

    aj, sj = jac(p.columns, r.columns), jac(p.index, r.index)
    r_samples, r_feats = set(r.index), set(r.columns)
    samples = [s for s in p.index if s in r_samples]
    feats = [f for f in p.columns if f in r_feats]
    corr = 0.0
    if samples and feats:
        a = p.loc[samples, feats].astype(float)
        b = r.loc[samples, feats].astype(float)
        a = a.fillna(a.mean()).fillna(0.0)
        b = b.fillna(b.mean()).fillna(0.0)
        rs = []
        for f in feats:
            x, y = a[f], b[f]
            if x.std(ddof=0) == 0 or y.std(ddof=0) == 0:
                continue
            v = float(np.corrcoef(x.to_numpy(), y.to_numpy())[0, 1])
            rs.append(0.0 if math.isnan(v) else v)
        corr = float(np.mean(rs)) if rs else 0.0
    return {"attributes_jaccard": aj, "samples_jaccard": sj, "feature_correlation": corr,
            "composite_similarity_correlation": aj * sj * corr}


def gene_selection(pred: list[str], ref: list[str], all_genes: list[str] | None = None,
                   n_genes: int = 20000) -> dict:
    """Precision/recall/F1 (%), AUROC and GSEA ES as the reference computes them."""
    if pred:
        prec = sum(1 for g in pred if g in ref) / len(pred)
    else:
        prec = 1.0 if not ref else 0.0
    if ref:
        rec = sum(1 for g in ref if g in pred) / len(ref)
    else:
        rec = 1.0 if not pred else 0.0
    f1 = 0.0 if prec + rec == 0 else 2 * prec * rec / (prec + rec)

    score = {}
    for i, g in enumerate(pred):
        if g not in score:
            score[g] = float(len(pred) - i)
    if all_genes is not None:
        labels = [1 if g in ref else 0 for g in all_genes]
        scores = [score.get(g, 0.0) for g in all_genes]
        ranked = sorted(all_genes, key=lambda g: score.get(g, 0.0), reverse=True)
    else:
        order = list(score) + [g for g in ref if g not in score]
        order = list(dict.fromkeys(order))
        labels = [1 if g in ref else 0 for g in order] + [0] * max(0, n_genes - len(order))
        scores = [score.get(g, 0.0) for g in order] + [0.0] * max(0, n_genes - len(order))
        ranked = list(pred) + [f"UNK_{i}" for i in range(n_genes - len(pred))] if n_genes >= len(pred) else None
    auroc = float("nan") if len(set(labels)) < 2 else float(roc_auc_score(labels, scores))

    es = float("nan")
    if ranked:
        nh = sum(1 for g in ranked if g in ref)
        nm = len(ranked) - nh
        if nh and nm:
            run, best = 0.0, -1e9
            for g in ranked:
                run += 1.0 / nh if g in ref else -1.0 / nm
                best = max(best, run)
            es = best
    return {"precision": prec * 100, "recall": rec * 100, "f1": f1 * 100, "auroc": auroc, "gsea_es": es}

"""Bring your own method: any scikit-learn-compatible estimator with a parameter grid, tuned over GenoTEX's
folds by dask-ml's ``GridSearchCV`` on the cluster, its significant genes read off as GenoTEX reads Lasso's.

The seam beside Lasso/LMM: the problem's arrays are built exactly as for them, the trait residualized on
[1, condition] by least squares (once, on all samples: dask-ml's search takes one target; the reference
residualizes inside each fold, which for a least-squares fit on one or two regressors changes the target by
O(1/n)), then

* every (parameter set, fold) fit is one task of dask-ml's graph (folds = the reference's seeded slicing,
  :func:`genotex_dask.analysis.tuning.folds`; standardization inside each fold via a Pipeline, on the training
  rows as the reference does);
* the best parameter set by the estimator's CV score (or ``scoring``) is refitted on all samples;
* significant genes = non-zero coefficients, by descending |coefficient| (ties by name), as GenoTEX's
  ``interpret_result`` lists a Lasso's.

Pure: arrays in, results out; the pipeline (``pipelines/analyze.py``) reads the cohorts and writes the JSON.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from genotex_dask.analysis import models, tuning


def method_name(estimator: Any) -> str:
    """A default method name: the estimator's class name in lower case (``ElasticNet`` -> ``elasticnet``)."""
    return type(estimator).__name__.lower()


def _coef(fitted: Any) -> np.ndarray:
    model = fitted.steps[-1][1] if hasattr(fitted, "steps") else fitted
    if not hasattr(model, "coef_"):
        raise TypeError(f"{type(model).__name__} has no coef_ after fit: significant genes are its non-zero "
                        "coefficients, so bring a linear model (or one exposing coef_)")
    return np.asarray(model.coef_, dtype=float).ravel()


def search_problem(estimator: Any, param_grid: Mapping[str, Sequence[Any]], X: np.ndarray, Y: np.ndarray,
                   Z: np.ndarray | None, gene_names: Sequence[str], trait: str, *, scheduler: Any = None,
                   scoring: Any = None, k: int = tuning.K_FOLDS) -> tuple[dict, dict]:
    """(significant genes in GenoTEX's dict-of-columns shape, record) for one problem's arrays."""
    from dask_ml.model_selection import GridSearchCV
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    t0 = time.perf_counter()
    e_Y, _ = models.residualize(np.asarray(Y, dtype=float), None if Z is None else np.asarray(Z, dtype=float))
    pipe = Pipeline([("scale", StandardScaler()), ("model", clone(estimator))])
    grid = {f"model__{name}": list(values) for name, values in param_grid.items()}
    search = GridSearchCV(pipe, grid, cv=tuning.folds(len(e_Y), k), scoring=scoring, refit=True,
                          scheduler=scheduler, cache_cv=True)
    search.fit(np.asarray(X, dtype=float), e_Y.ravel())
    coef = _coef(search.best_estimator_)
    if coef.shape[0] != len(gene_names):
        raise ValueError(f"{type(estimator).__name__}: {coef.shape[0]} coefficients for {len(gene_names)} genes")
    sig = models.significant_genes([trait, *gene_names], trait, None, coef, None, stable=True)
    params = {k.removeprefix("model__"): v for k, v in search.best_params_.items()}
    record = {"method": None, "estimator": repr(estimator), "best_params": params,
              "cv_best_score": float(search.best_score_), "cv_folds": k,
              "n_candidates": int(len(search.cv_results_["params"])), "seconds": round(time.perf_counter() - t0, 3)}
    return sig, record

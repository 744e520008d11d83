"""Compiled standardization of a fold's rows: the bits of :func:`genotex_dask.analysis.models.normalize`.

Why: fast mode builds every cohort's five fold designs and its full design once per worker.  With numpy that was
a fancy-indexed copy of the training rows, then a pass each for the mean, the centring, the squares (into a fresh
temporary), their sum and the division: ~10 streams over ~300 MB for a 518-sample cohort of 19,736 genes, and a
page fault for every fresh page.  The kernel reads the source rows twice and writes the results twice, into the
caller's arrays: on the 49 linked cohorts of a 1/16 GenoTEX-scale sample, 2.05 CPU-s against numpy's 5.55 (a
small share of the analysis, but memory traffic, which two workers on one machine share).

Bit for bit: numpy reduces a C-ordered matrix over axis 0 by adding row after row into one accumulator per
column, and divides the sum by n; the kernel adds in the same order, squares the rounded difference before
adding it (no fused multiply-add: no fastmath), divides rather than multiplying by a reciprocal, and gives a
constant column a scale of 1.  ``error_model="numpy"``: a division by zero gives inf/NaN as numpy's does instead
of raising.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, error_model="numpy")
def standardize_rows(X, train, test, out_train, out_test):
    """out_train = (X[train] - mean) / std and out_test = (X[test] - mean) / std, with the training rows' mean
    and population std (std 0 -> 1): ``normalize(X[train], X[test])`` of models.py, without the copies."""
    n = train.size
    p = X.shape[1]
    total = np.zeros(p)
    for i in range(n):
        row = X[train[i]]
        for j in range(p):
            total[j] += row[j]
    mean = np.empty(p)
    for j in range(p):
        mean[j] = total[j] / n
    squares = np.zeros(p)
    for i in range(n):
        row = X[train[i]]
        out = out_train[i]
        for j in range(p):
            d = row[j] - mean[j]
            out[j] = d
            squares[j] += d * d
    std = np.empty(p)
    for j in range(p):
        s = np.sqrt(squares[j] / n)
        std[j] = 1.0 if s == 0 else s
    for i in range(n):
        out = out_train[i]
        for j in range(p):
            out[j] = out[j] / std[j]
    for t in range(test.size):
        row = X[test[t]]
        out = out_test[t]
        for j in range(p):
            out[j] = (row[j] - mean[j]) / std[j]

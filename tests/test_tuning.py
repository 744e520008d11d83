"""Fast mode's shared fold designs: the same bits as standardizing each fold with models.normalize."""

from __future__ import annotations

import numpy as np

from genotex_dask.analysis import models, tuning


def test_fold_designs_equal_normalize_on_each_folds_rows_bit_for_bit():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(53, 40)) * rng.uniform(0.01, 300, size=40) + rng.normal(size=40) * 1e3
    X[:, 5] = 2.5  # constant: centered only
    X[::3, 9] = 0.0
    designs = tuning.fold_designs(X)
    assert len(designs) == tuning.K_FOLDS
    for fd, (train, test) in zip(designs, tuning.folds(len(X))):
        assert np.array_equal(fd.train, train) and np.array_equal(fd.test, test)
        Xtr, Xte = models.normalize(X[train], X[test])
        assert np.array_equal(fd.Xtr, Xtr) and np.array_equal(fd.Xte, Xte)
    assert np.all(designs[0].Xtr[:, 5] == 0.0)
    assert X[0, 5] == 2.5  # the cohort's matrix is left as it was

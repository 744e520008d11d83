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


def test_lasso_problems_sharing_designs_get_the_bits_of_unshared_solves():
    """The column means of a fold's training rows are computed once per design and reused by every Lasso problem
    on it: each problem's CV selections and final coefficients equal those of the homotopy run on freshly
    standardized rows with its own means."""
    rng = np.random.default_rng(11)
    n, p = 90, 160
    X = rng.normal(size=(n, p)) * rng.uniform(0.5, 20, size=p) + rng.normal(size=p) * 50
    genes = [f"G{j}" for j in range(p)]
    designs, final = tuning.fold_designs(X), tuning.full_design(X)
    for t in range(3):
        y = 5 * (X[:, 3 * t] / X[:, 3 * t].std() - 0.7 * X[:, 3 * t + 1] / X[:, 3 * t + 1].std()) + rng.normal(size=n)
        data = tuning.ProblemData("T", None, X, y, None, ["T", *genes], genes, genes[:8], models.LASSO)
        alpha, _, conv = tuning.tune_fast(data, designs)
        sig, _ = tuning.final_fast(data, alpha, final)
        for (train, _), sel in zip(tuning.folds(n), conv["cv_fold_selection"]["folds"]):
            sol = models.lasso_grid(models.normalize(X[train])[0], y[train], tuning.GRID)
            assert sel == [genes[i] for i in np.flatnonzero(sol.coef[:, tuning.GRID.index(alpha)])]
        sol = models.lasso_grid(models.normalize(X)[0], y, [alpha])
        nz = np.flatnonzero(sol.coef[:, 0])
        assert len(nz) > 0 and dict(zip(sig["Variable"], sig["Coefficient"])) == {genes[i]: sol.coef[i, 0] for i in nz}
    for fd in [*designs, final]:  # computed once, the same bits as the per-problem mean
        assert fd.means is not None and np.array_equal(fd.means, fd.Xtr.mean(axis=0))


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(np.int64)  # exact bits: -0.0 != 0.0 and NaN == NaN here


def test_normalize_rows_gives_normalizes_bits_on_views_and_odd_cells():
    """The compiled standardization against numpy's (models.normalize) to the bit: a read-only column slice of a
    wider matrix (gene_matrix's view of a cohort), constant and near-constant columns, huge and tiny scales,
    negative zeros, NaN and inf cells, one training row, no test rows."""
    rng = np.random.default_rng(3)
    wide = rng.normal(size=(41, 60)) * rng.uniform(1e-6, 1e6, size=60) + rng.normal(size=60) * 1e4
    wide[:, 7] = -3.25
    wide[:, 8] = 1e300
    wide[1::2, 9] = wide[0, 9] * (1 + 2**-52)  # differences at the last bit
    wide[:, 10] = -0.0
    wide[4, 11], wide[5, 12], wide[6, 13] = np.nan, np.inf, -np.inf
    X = wide[:, 3:]
    X.flags.writeable = False
    cases = [(np.arange(41), np.arange(0)), (np.arange(0, 41, 2), np.arange(1, 41, 2)),
             (np.array([17]), np.array([3, 3, 40])), (np.array([40, 0, 5]), np.array([1]))]
    with np.errstate(all="ignore"):
        for train, test in cases:
            got_tr, got_te = models.normalize_rows(X, train, test)
            ref_tr, ref_te = models.normalize(X[train], X[test])
            assert np.array_equal(_bits(got_tr), _bits(ref_tr))
            assert np.array_equal(_bits(got_te), _bits(ref_te))
        all_rows = models.normalize_rows(X, np.arange(41), np.arange(0))[0]
    assert np.isnan(all_rows[:, 11 - 3]).all()  # a NaN cell spoils its column, as in numpy's
    assert np.all(all_rows[:, 7 - 3] == 0.0) and np.all(all_rows[:, 9 - 3] != 0.0)  # constant / last-bit columns


def test_full_design_is_normalize_of_all_rows_bit_for_bit():
    rng = np.random.default_rng(5)
    base = rng.normal(size=(1037, 25)) * 40 + 3
    for X in (base, np.asfortranarray(base), base[:, 2:], base[:, ::2], base[:, :1], base[:, :2], base[:3]):
        assert np.array_equal(_bits(tuning.full_design(X).Xtr), _bits(models.normalize(X)[0]))
    for X in (base[:, :1], np.asfortranarray(base)):  # one column (summed pairwise by numpy), any layout
        train, test = np.arange(3, 1037, 2), np.arange(0, 40, 3)
        got = models.normalize_rows(X, train, test)
        ref = models.normalize(X[train], X[test])
        assert all(np.array_equal(_bits(a), _bits(b)) for a, b in zip(got, ref))

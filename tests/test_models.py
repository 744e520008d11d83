"""Models and tuning: fold slicing, normalization, batch rule, residualization, exact Lasso grid solver."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso

from genotex_dask.analysis import models, tuning


def _reference_folds(n, k=5):
    # the reference's procedure, restated: global seed, shuffle, equal slices, sorted complement
    np.random.seed(42)
    idx = np.arange(n)
    np.random.shuffle(idx)
    fs = n // k
    return [(np.setdiff1d(idx, idx[i * fs:(i + 1) * fs]), idx[i * fs:(i + 1) * fs]) for i in range(k)]


@pytest.mark.parametrize("n", [17, 20, 167])
def test_folds_match_reference_slicing(n):
    got = tuning.folds(n)
    ref = _reference_folds(n)
    for (tr, te), (rtr, rte) in zip(got, ref):
        assert np.array_equal(tr, rtr) and np.array_equal(te, rte)
    # the n % 5 left-over rows are never tested
    tested = np.concatenate([te for _, te in got])
    assert len(tested) == 5 * (n // 5) and len(set(tested)) == len(tested)


def test_normalize_uses_train_stats_and_keeps_constant_columns():
    tr = np.array([[1.0, 5.0], [3.0, 5.0]])
    te = np.array([[2.0, 7.0]])
    a, b = models.normalize(tr, te)
    assert np.allclose(a, [[-1, 0], [1, 0]]) and np.allclose(b, [[0, 2]])


def test_batch_rule_cannot_fire_below_201_samples():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((150, 80))
    X[:75] += 25.0  # an enormous batch shift: the top normalized gap is ~1, still below 200/150
    bt = models.batch_effect_test(X)
    assert not bt.could_fire and not bt.fires and bt.max_gap > 0.9
    X = rng.standard_normal((220, 80))
    X[:110] += 3.0
    bt = models.batch_effect_test(X)
    assert bt.could_fire and bt.fires and bt.threshold == pytest.approx(200 / 220)
    assert not models.batch_effect_test(rng.standard_normal((220, 80))).fires


def test_residualize_is_least_squares_on_intercept_and_condition():
    rng = np.random.default_rng(2)
    z = rng.standard_normal(30)
    y = 2 + 3 * z + rng.standard_normal(30)
    e, beta = models.residualize(y, z)
    A = np.column_stack([np.ones(30), z])
    ls = np.linalg.lstsq(A, y, rcond=None)[0]
    assert np.allclose(beta.ravel(), ls) and np.allclose(e.ravel(), y - A @ ls)


def _problem(n=40, p=300, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    y = X[:, :5] @ np.array([2.0, -1.5, 1.0, 1.0, -0.5]) + 0.3 * rng.standard_normal(n)
    return models.normalize(X)[0], y


def test_lasso_grid_equals_tightly_converged_solve():
    X, y = _problem()
    grid = [1.0, 1e-1, 3e-2, 1e-2]
    sol = models.lasso_grid(X, y, grid)
    for j, a in enumerate(grid):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ref = Lasso(alpha=a, tol=1e-14, max_iter=1_000_000).fit(X, y)
        supp = np.flatnonzero(ref.coef_)
        assert set(np.flatnonzero(sol.coef[:, j])) == set(supp)
        if supp.size:
            rel = np.abs(sol.coef[supp, j] - ref.coef_[supp]) / np.abs(ref.coef_[supp])
            assert rel.max() < 1e-4
        assert sol.intercept[j] == pytest.approx(ref.intercept_, rel=1e-6, abs=1e-9)
        assert sol.rel_gap[j] < 1e-10 and sol.kkt_violation[j] < 1e-6


def test_lasso_grid_reaches_tiny_alpha_and_certifies_it():
    X, y = _problem(n=30, p=500, seed=4)
    sol = models.lasso_grid(X, y, tuning.GRID)
    assert np.all(sol.rel_gap < 1e-8)
    assert np.all(sol.kkt_violation < 1e-6)
    assert (sol.coef[:, 0] != 0).sum() <= 29  # at most n-1 genes in a unique solution with an intercept


def test_fast_solver_is_column_order_invariant_and_reference_is_not():
    X, y = _problem(n=40, p=400, seed=5)
    perm = np.random.default_rng(0).permutation(X.shape[1])
    sol = models.lasso_grid(X, y, [1e-3])
    solp = models.lasso_grid(X[:, perm], y, [1e-3])
    assert np.allclose(solp.coef[:, 0], sol.coef[perm, 0], rtol=1e-7, atol=1e-10)
    # scikit-learn's default Lasso (1,000 cyclic sweeps) stops unconverged here and its answer follows the order
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = Lasso(alpha=1e-3).fit(X, y).coef_
        b = Lasso(alpha=1e-3).fit(X[:, perm], y).coef_
    assert set(np.flatnonzero(a)) != set(perm[np.flatnonzero(b)])


def test_significant_genes_order_and_ties():
    names = ["T", "Z", "B", "A", "C"]
    coefs = np.array([0.5, 0.0, -0.5, 0.2])  # genes Z, B, A, C after dropping the trait
    sig = models.significant_genes(names, "T", None, coefs, stable=True)
    assert sig["Variable"] == ["A", "Z", "C"] and sig["Absolute Coefficient"] == [0.5, 0.5, 0.2]
    # condition first in the coefficient vector and never reported as a gene
    sig = models.significant_genes(["T", "G1", "G2", "Age"], "T", "Age", np.array([9.0, 0.1, 0.0]))
    assert sig["Variable"] == ["G1"]
    # p-values: BH-FDR < 0.05, ascending
    sig = models.significant_genes(["T", "G1", "G2", "G3"], "T", None, np.array([1.0, 1.0, 1.0]),
                                   p_values=np.array([0.001, 0.5, 0.01]))
    assert sig["Variable"] == ["G1", "G3"] and sig["corrected_p_value"] == pytest.approx([0.003, 0.015])


def test_condition_model_choice():
    rng = np.random.default_rng(6)
    Xc = rng.standard_normal((10, 20))
    yb = (Xc[:, 0] > 0).astype(float)
    z, name = models.predict_condition(Xc, yb, rng.standard_normal((7, 20)))
    assert name == "LogisticRegression(l1)" and z.shape == (7,) and np.all((z >= 0) & (z <= 1))
    _, name = models.predict_condition(Xc[:, :3], yb, rng.standard_normal((7, 3)))
    assert name == "LogisticRegression"
    _, name = models.predict_condition(Xc, Xc[:, 0] * 2.0, rng.standard_normal((7, 20)))
    assert name == "Lasso"
    _, name = models.predict_condition(Xc[:, :3], Xc[:, 0] * 2.0, rng.standard_normal((7, 3)))
    assert name == "LinearRegression"


def test_choose_prefers_first_best_precision_and_defaults_to_point_one():
    mk = lambda prec, f1: {"prediction": {"f1": f1}, "selection": {"precision": prec}}  # noqa: E731
    alpha, perf = tuning.choose([(1e-3, mk(10, 50)), (1e-2, mk(20, 40)), (1e-1, mk(20, 60))], True)
    assert alpha == 1e-2 and perf["selection"]["precision"] == 20 and perf["prediction"]["f1"] == 60
    alpha, _ = tuning.choose([(1e-3, mk(0, 50)), (1e-2, mk(0, 40))], True)
    assert alpha == 0.1


def test_working_set_rounds_reach_the_full_solution():
    X, y = _problem(n=30, p=600, seed=8)
    full = models.lasso_grid(X, y, tuning.GRID, init_ws=600)
    small = models.lasso_grid(X, y, tuning.GRID, init_ws=35)
    assert small.rounds > 1 and small.working_set < 600  # the KKT check had to add genes
    assert np.allclose(small.coef, full.coef, rtol=1e-6, atol=1e-9)
    assert np.all(small.kkt_violation < 1e-6)


def test_compiled_path_equals_sklearn_lars_path_at_every_grid_value():
    # the numba homotopy against scikit-learn's lars_path (independent implementation of the same path),
    # on a design with many variables leaving the active set on the way down to alpha = 1e-6
    X, y = _problem(n=45, p=400, seed=11)
    Xc, yc = X - X.mean(axis=0), y - y.mean()
    grid = np.array(sorted(tuning.GRID, reverse=True))
    coef, steps, status = models._lars_kernel.grid_path(Xc, yc, grid * len(yc), 2000)
    assert status == 0 and steps > 45  # drops happened: more breakpoints than samples
    ref = models._grid_path_sklearn(Xc, yc, grid)
    for j in range(len(grid)):
        supp = np.flatnonzero(ref[:, j])
        assert set(np.flatnonzero(coef[:, j])) == set(supp)
        if supp.size:
            assert np.abs(coef[supp, j] - ref[supp, j]).max() <= 1e-8 * np.abs(ref[supp, j]).max()


def test_duplicated_genes_are_solved_and_certified():
    # duplicated gene columns: LARS must not enter the twin of an active gene (singular Gram matrix);
    # scikit-learn's lars_path (the old solver, now the fallback) leaves a 4e-4 gap at alpha 0.1 here
    X, y = _problem(n=30, p=120, seed=12)
    X = np.column_stack([X, X[:, :5]])
    sol = models.lasso_grid(X, y, tuning.GRID)
    assert np.all(sol.rel_gap < 1e-8) and np.all(sol.kkt_violation < 1e-6)


def test_kernel_fallback_gives_the_same_certified_solution(monkeypatch):
    X, y = _problem(n=30, p=200, seed=13)
    sol = models.lasso_grid(X, y, tuning.GRID)
    # the compiled walk gives up everywhere (resumed walk and restart rounds): scikit-learn's lars_path solves
    monkeypatch.setattr(models._lars_kernel, "lars_walk", lambda *a: (1, 0, 0))
    used = []
    real = models._grid_path_sklearn
    monkeypatch.setattr(models, "_grid_path_sklearn", lambda *a: used.append(1) or real(*a))
    fb = models.lasso_grid(X, y, tuning.GRID)
    assert used
    assert np.all(fb.rel_gap < 1e-8) and np.all(fb.kkt_violation < 1e-6)
    assert np.allclose(fb.coef, sol.coef, rtol=1e-6, atol=1e-9)

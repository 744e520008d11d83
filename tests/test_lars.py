"""The fast-mode Lasso grid (resumed working-set walk) against independent oracles.

Oracles: scikit-learn's ``lars_path(method="lasso")`` on ALL genes (no working set, its own homotopy) at every
grid value, and scikit-learn's coordinate-descent ``Lasso`` (intercept fitted, tiny tol) at the larger grid
values, where it converges.  The older restart strategy of ``lasso_grid`` is compared too (same solution).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso, lars_path

from genotex_dask.analysis import models, tuning

GRID = np.array(sorted(tuning.GRID, reverse=True))


def _expression_like(n: int, p: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Correlated genes (shared latent programs) standardized like a fold design; a binary trait, centered."""
    rng = np.random.default_rng(seed)
    F = rng.standard_normal((n, 15))
    X = F @ (rng.standard_normal((15, p)) * rng.gamma(0.7, 0.5, size=p)) + rng.standard_normal((n, p))
    X = models.normalize(X)[0]
    y = (X[:, rng.choice(p, 10, replace=False)] @ rng.normal(0, 0.7, 10) + rng.logistic(size=n) > 0)
    return X, y.astype(float)


def _lars_oracle(X: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Solutions at each grid value from scikit-learn's lasso path on all genes (centered: intercept)."""
    Xc, yc = X - X.mean(axis=0), y - y.mean()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alphas, _, coefs = lars_path(Xc, yc, method="lasso", alpha_min=float(grid[-1]), max_iter=20 * len(y))
    assert alphas[-1] <= grid[-1] * (1 + 1e-12)  # the oracle's path reached the smallest grid value
    out = np.zeros((X.shape[1], grid.size))
    for j, a in enumerate(grid):  # the path is linear in alpha between breakpoints (alphas decreasing)
        if a >= alphas[0]:
            continue
        i = int(np.flatnonzero(alphas <= a)[0])
        t = (alphas[i - 1] - a) / (alphas[i - 1] - alphas[i])
        out[:, j] = coefs[:, i - 1] + t * (coefs[:, i] - coefs[:, i - 1])
    return out


def _assert_same(coef: np.ndarray, ref: np.ndarray, rel: float) -> None:
    for j in range(ref.shape[1]):
        scale = np.abs(ref[:, j]).max()
        assert np.abs(coef[:, j] - ref[:, j]).max() <= rel * max(scale, 1e-300), (j, scale)


def test_resumed_walk_equals_lars_path_on_all_genes_at_every_grid_value(monkeypatch):
    X, y = _expression_like(150, 3000, seed=1)
    # the resumed walk must finish on its own: the restart strategy (the fallback) is not allowed here
    monkeypatch.setattr(models, "_restart_rounds", lambda *a: pytest.fail("fell back to restarts"))
    sol = models.lasso_grid(X, y, GRID)
    assert sol.rounds > 1 and sol.working_set < 3000  # genes joined the working set on the way down
    ref = _lars_oracle(X, y, GRID)
    for j in range(GRID.size):
        assert set(np.flatnonzero(sol.coef[:, j])) == set(np.flatnonzero(ref[:, j]))
    _assert_same(sol.coef, ref, 1e-8)
    assert np.all(sol.rel_gap < 1e-6) and np.all(sol.kkt_violation < 1e-6)
    assert np.allclose(sol.intercept, y.mean() - X.mean(axis=0) @ sol.coef)


def test_resumed_walk_equals_coordinate_descent_at_the_larger_grid_values():
    X, y = _expression_like(80, 1500, seed=2)
    sol = models.lasso_grid(X, y, GRID)
    for j, a in enumerate(GRID[:3]):  # 1, 0.1, 0.01: coordinate descent converges there
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ref = Lasso(alpha=a, tol=1e-14, max_iter=200_000).fit(X, y)
        assert set(np.flatnonzero(sol.coef[:, j])) == set(np.flatnonzero(ref.coef_))
        if ref.coef_.any():
            assert np.abs(sol.coef[:, j] - ref.coef_).max() <= 1e-6 * np.abs(ref.coef_).max()
        assert sol.intercept[j] == pytest.approx(ref.intercept_, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("init_ws", [None, 40])
def test_resumed_walk_equals_restart_strategy(init_ws):
    X, y = _expression_like(120, 2500, seed=3)
    new = models.lasso_grid(X, y, GRID, init_ws=init_ws)
    old = models.lasso_grid(X, y, GRID, init_ws=init_ws, resume=False)
    assert new.rounds > 1
    _assert_same(new.coef, old.coef, 1e-9)
    assert np.all(new.rel_gap < 1e-6) and np.all(old.rel_gap < 1e-6)


def test_kernel_failure_falls_back_to_a_certified_solution(monkeypatch):
    X, y = _expression_like(60, 800, seed=4)
    sol = models.lasso_grid(X, y, GRID)
    real = models._lars_kernel.lars_walk
    calls = []

    def singular_after_a_while(*a):  # the walk reports a singular active set on its fifth call
        calls.append(1)
        return (1, 0, 0) if len(calls) == 5 else real(*a)

    monkeypatch.setattr(models._lars_kernel, "lars_walk", singular_after_a_while)
    fb = models.lasso_grid(X, y, GRID)
    assert len(calls) >= 5
    _assert_same(fb.coef, sol.coef, 1e-8)
    assert np.all(fb.rel_gap < 1e-8) and np.all(fb.kkt_violation < 1e-6)


@pytest.mark.parametrize("init_ws", [None, 60])
def test_degenerate_designs_give_certified_solutions(init_ws):
    X, y = _expression_like(50, 400, seed=5)
    # duplicated genes (twins of strong genes, outside and inside the first working set) and a constant gene
    Xd = np.column_stack([X, X[:, :30], np.full(50, 3.0)])
    sol = models.lasso_grid(Xd, y, GRID, init_ws=init_ws)
    assert np.all(sol.rel_gap < 1e-8) and np.all(sol.kkt_violation < 1e-6)
    assert not sol.coef[-1].any()  # the constant gene never enters
    ref = models.lasso_grid(X, y, GRID)  # twins split a coefficient; the objective and the fit are the same
    assert np.allclose(Xd @ sol.coef, X @ ref.coef, rtol=1e-7, atol=1e-8)
    # a constant trait (or one the condition fully explains: zero after residualization): all-zero solution
    for yy in (np.full(50, 0.7), np.zeros(50)):
        z = models.lasso_grid(X, yy, GRID, init_ws=init_ws)
        assert not z.coef.any() and np.allclose(z.intercept, yy.mean()) and np.all(z.rel_gap == 0)


def test_resumed_walk_on_a_real_series_equals_lars_path_on_all_probes(monkeypatch):
    """Real GEO data: GSE781 on GPL96 (22,283 probes x 17 kidney samples, tumour vs adjacent normal, kept in
    tests/data/genotex_gse781), log2 MAS5 values standardized as a fold design is; the trait from the titles."""
    from pathlib import Path

    from genotex_dask.io import geo

    path = (Path(__file__).parent / "data" / "genotex_gse781" / "input" / "GEO" / "Kidney_Clear_Cell_Carcinoma"
            / "GSE781" / "GSE781-GPL96_series_matrix.txt.gz")
    m = geo.read_series_matrix(str(path))
    V = np.log2(np.clip(m.values, 1.0, None))
    keep = np.isfinite(V).all(axis=1) & (V.std(axis=1) > 0)
    X = models.normalize(V[keep].T)[0]
    y = m.samples["title"].str.contains("Carcinoma").to_numpy(dtype=float)
    assert X.shape[0] == 17 and X.shape[1] > 20000 and 0 < y.sum() < 17
    monkeypatch.setattr(models, "_restart_rounds", lambda *a: pytest.fail("fell back to restarts"))
    sol = models.lasso_grid(X, y, GRID)
    ref = _lars_oracle(X, y, GRID)
    for j in range(GRID.size):
        assert set(np.flatnonzero(sol.coef[:, j])) == set(np.flatnonzero(ref[:, j]))
    _assert_same(sol.coef, ref, 1e-8)
    assert np.all(sol.rel_gap < 1e-6) and np.all(sol.kkt_violation < 1e-6)


def test_resumed_walk_at_n_500_equals_lars_path_on_all_genes(monkeypatch):
    # TCGA-like sizes scaled down: many breakpoints near |A| ~ n, float32 screening, strong-rule growth and
    # walks back all exercised; the oracle walks all genes with no working set
    X, y = _expression_like(500, 2500, seed=21)
    monkeypatch.setattr(models, "_restart_rounds", lambda *a: pytest.fail("fell back to restarts"))
    sol = models.lasso_grid(X, y, GRID)
    assert sol.rounds > 1 and sol.working_set < 2500  # a walk back, and a working set
    assert (sol.coef[:, -1] != 0).sum() > 400  # near saturation: |A| ~ n
    _assert_same(sol.coef, _lars_oracle(X, y, GRID), 1e-9)
    assert np.all(sol.rel_gap < 1e-10) and np.all(sol.kkt_violation < 1e-6)


def _drop_heavy(n: int, p: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Few latent programs and little gene-specific noise: genes nearly collinear, many leave the path."""
    rng = np.random.default_rng(seed)
    F = rng.standard_normal((n, 4))
    X = models.normalize(F @ rng.standard_normal((4, p)) + 0.3 * rng.standard_normal((n, p)))[0]
    return X, (X[:, :5].sum(axis=1) + rng.logistic(size=n) > 0).astype(float)


def test_drop_heavy_path_equals_lars_path_on_all_genes():
    X, y = _drop_heavy(300, 1500, seed=22)
    Xc, yc = X - X.mean(axis=0), y - y.mean()
    lams = GRID * len(y)
    coef, steps, status = models._lars_kernel.grid_path(Xc, yc, lams, 20 * len(y))
    nnz = int((coef[:, -1] != 0).sum())
    assert status == 0 and (steps - nnz) // 2 > 100  # adds - drops = nnz, adds + drops = steps
    ref = _lars_oracle(X, y, GRID)
    _assert_same(coef, ref, 1e-9)
    sol = models.lasso_grid(X, y, GRID)  # and the working-set walk on the same data
    _assert_same(sol.coef, ref, 1e-9)


def _coarse(XT: np.ndarray, bits: int) -> np.ndarray:
    """XT with each entry's mantissa cut to ``bits`` bits (relative error < 2^-bits): a poor screening copy."""
    mant, ex = np.frexp(XT)
    return np.ldexp(np.trunc(mant * 2.0**bits) / 2.0**bits, ex)


def test_screening_with_a_coarse_copy_and_its_true_bound_keeps_the_exact_path():
    # the kernel screens entering genes with an approximate copy of the rows and evaluates exactly only the
    # genes its error bound cannot rule out: with a copy ~10^6 times coarser than float32 (3-bit mantissas) and the matching
    # bound, many genes per breakpoint are uncertain and the path must still be the exact one; with the
    # float32 bound on the same coarse copy (a wrong bound) it must not be
    X, y = _expression_like(120, 600, seed=23)
    Xc, yc = X - X.mean(axis=0), y - y.mean()
    XT = np.ascontiguousarray(Xc.T)
    lams = GRID * len(y)
    exact, steps, status = models._lars_kernel.grid_path_t(XT, yc, lams, 4000)
    assert status == 0 and steps > 120
    coarse = _coarse(XT, 3)
    good, _, st_good = models._lars_kernel.grid_path_t(XT, yc, lams, 4000, screen=(coarse, 2.0**-2))
    assert st_good == 0
    _assert_same(good, exact, 1e-12)
    _assert_same(good, _lars_oracle(X, y, GRID), 1e-9)
    bad, _, _ = models._lars_kernel.grid_path_t(XT, yc, lams, 4000, screen=(coarse, 2.0**-23))
    assert np.abs(bad - exact).max() > 1e-6 * np.abs(exact).max()


def test_top_k_stable_is_the_head_of_a_stable_sort():
    """The strong rule's top-k pick equals the first k of a full stable sort, ties (many here) by position."""
    rng = np.random.default_rng(5)
    for size in (0, 1, 7, 300, 5000):
        v = np.abs(rng.integers(0, 12, size).astype(float)) * 0.5  # heavy ties
        v[rng.random(size) < 0.1] = 0.0
        full = np.argsort(-v, kind="stable")
        for k in (0, 1, 3, 50, 64, size, size + 5):
            assert np.array_equal(models.top_k_stable(v, k), full[:k]), (size, k)

"""Fast LMM shares U'X between the problems of a cohort: each problem's rotated design is a row scaling of it.

The oracle is the rotation written out plainly, as sparse_lmm's default mode builds it (null-model delta from
(y, S, U), eigenvector signs fixed by U'y >= 0, then diag((S + delta)^-1/2) (U sign)' X): the shared path must
give the same bits, on a real TCGA cohort and on a synthetic batch-shifted cohort where the batch rule fires.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sparse_lmm import LMM as SparseLMM
from threadpoolctl import threadpool_limits

from genotex_dask.analysis import models, tuning
from tests._analysis_fixtures import gene_names, make_cohort

CHOL = (Path(__file__).parent / "data" / "tcga" / "input" / "TCGA" / "TCGA_Bile_Duct_Cancer_(CHOL)"
        / "TCGA.CHOL.sampleMap_HiSeqV2_PANCAN.gz")


def _oracle_design(X: np.ndarray, y: np.ndarray, eig: tuple) -> np.ndarray:
    """The per-problem rotation, unshared: sign-flipped eigenvectors times X, rows scaled by (S+delta)^-1/2."""
    S, U = eig
    _, _, ldelta = SparseLMM().train_nullmodel(y.reshape(-1, 1), None, S=S, U=U)
    sign = np.sign(U.T @ y)
    sign[sign == 0] = 1
    Us = U * sign[None, :]
    return (Us.T @ X) * np.sqrt(1.0 / (S + np.exp(ldelta)))[:, None]


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread():
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def chol() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Real CHOL RNA-seq (45 samples; 4,000 genes by file order, for speed), tumour (-01) vs normal (-11), and
    one held-out gene's expression as a continuous trait."""
    df = pd.read_csv(CHOL, sep="\t", index_col=0, nrows=4001).T
    X = df.iloc[:, 1:].to_numpy(float)
    tumour = np.array([s.endswith("-01") for s in df.index], dtype=float)
    assert 0 < tumour.sum() < len(tumour)  # both classes: a real binary trait
    return X, tumour, df.iloc[:, 0].to_numpy(float)


def _check_shared_equals_unshared(fd: tuning.FoldDesign, traits: list[np.ndarray]) -> None:
    Xtr = fd.Xtr.copy()
    eig = fd.kernel_eig()
    want = [_oracle_design(Xtr, y, eig) for y in traits]
    for y, w in zip(traits, want):  # every problem after the first reuses the fold's U'X
        got_eig, rotated = fd.lmm_basis()
        assert got_eig is eig
        assert np.array_equal(models.lmm_rotation(None, y, got_eig, rotated), w)
        assert np.array_equal(models.lmm_rotation(Xtr, y, eig), w)  # the unshared call, same bits
    assert fd.Xtr is None and fd.rotated.shape == Xtr.shape  # U'X replaced the rows it came from
    assert fd.nbytes() == fd.rotated.nbytes + fd.Xte.nbytes + sum(a.nbytes for a in eig)
    with pytest.raises(RuntimeError, match="released"):
        fd.training_rows()


def test_shared_rotation_is_bit_identical_on_a_real_tcga_cohort(chol):
    X, tumour, held_out = chol
    for fd in tuning.fold_designs(X)[:2]:
        ys = [models.residualize(t[fd.train], None)[0].ravel() for t in (tumour, held_out)]
        _check_shared_equals_unshared(fd, ys)
    final = tuning.full_design(X)
    _check_shared_equals_unshared(final, [tumour - tumour.mean(), held_out - held_out.mean()])


def _batch_cohort(n: int = 230, p: int = 160, seed: int = 3) -> tuple[np.ndarray, list[np.ndarray], list[str]]:
    rng = np.random.default_rng(seed)
    genes = gene_names(p, rng)
    df = make_cohort(rng, genes, n, genes[:4], trait="T", batch_shift=3.0)
    cont = make_cohort(np.random.default_rng(seed + 1), genes, n, genes[4:8], binary=False, trait="T")["T"]
    X = df[sorted(genes)].to_numpy(float)
    return X, [df["T"].to_numpy(float), cont.to_numpy(float)], sorted(genes)


def test_shared_rotation_is_bit_identical_where_the_batch_rule_fires():
    X, traits, _ = _batch_cohort()
    assert models.batch_effect_test(X).fires and len(X) > 200
    for fd in tuning.fold_designs(X):
        _check_shared_equals_unshared(fd, [models.residualize(t[fd.train], None)[0].ravel() for t in traits])


def test_fast_results_unchanged_by_sharing_between_problems():
    """Problems run one after another on one cohort's shared designs (the second finds Xtr released) give the
    Lasso solutions of the unshared per-problem rotation: CV selections per fold and final coefficients."""
    X, traits, genes = _batch_cohort()
    designs, final = tuning.fold_designs(X), tuning.full_design(X)
    Xn = models.normalize(X)[0]
    fresh = tuning.fold_designs(X)
    for y in traits:
        data = tuning.ProblemData("T", None, X, y, None, ["T", *genes], genes, genes[:6], models.LMM)
        alpha, perf, conv = tuning.tune_fast(data, designs)
        sig, conv2 = tuning.final_fast(data, alpha, final)
        assert conv["cv_max_rel_duality_gap"] <= 1e-6 and conv2["final_rel_duality_gap"] <= 1e-6
        # oracle: the plain rotation of the standardized rows, solved by the same homotopy
        for fd, genes_sel in zip(fresh, conv["cv_fold_selection"]["folds"]):
            e = y[fd.train]  # no condition: residualizing leaves the trait as it is
            sol = models.lasso_grid(_oracle_design(fd.Xtr, e, models.kernel_eig(fd.Xtr)), e, tuning.GRID)
            assert genes_sel == [genes[i] for i in np.flatnonzero(sol.coef[:, tuning.GRID.index(alpha)])]
        e = y
        sol = models.lasso_grid(_oracle_design(Xn, e, models.kernel_eig(Xn)), e, [alpha])
        coefs = dict(zip(sig["Variable"], sig["Coefficient"]))
        nz = np.flatnonzero(sol.coef[:, 0])
        assert len(nz) > 0 and coefs == {genes[i]: sol.coef[i, 0] for i in nz}
    assert all(fd.Xtr is None for fd in designs) and final.Xtr is None


def test_cohort_cache_counts_the_shared_rotation_and_frees_the_rows_it_replaced(tmp_path):
    """The byte accounting of the per-worker cache stays honest: after an LMM problem a cohort holds its U'X
    instead of (not beside) the standardized training rows, plus the eigen-decompositions."""
    import gc
    import weakref

    from genotex_dask.pipelines import analyze

    X, traits, genes = _batch_cohort()
    df = pd.DataFrame(X, columns=genes, index=pd.Index([f"S{i}" for i in range(len(X))], name="ID"))
    df.insert(0, "T", traits[0])
    df.to_csv(tmp_path / "c.csv")
    analyze.clear_cache()
    try:
        c = analyze.cohort(str(tmp_path / "c.csv"), "fp", fast=True)
        parts = analyze._fast_parts(c, "T")
        assert parts["batch"].fires
        shared = [*parts["designs"], parts["final"]]
        rows = [weakref.ref(d.Xtr) for d in shared]
        before = c.nbytes()
        data = tuning.ProblemData("T", None, parts["X"], c.df["T"].to_numpy(float), None, ["T", *parts["genes"]],
                                  parts["genes"], [], models.LMM)
        alpha, _, _ = tuning.tune_fast(data, parts["designs"])
        tuning.final_fast(data, alpha, parts["final"])
        gc.collect()
        assert all(r() is None for r in rows)  # the standardized rows are gone, not just uncounted
        eig_bytes = sum(a.nbytes for d in shared for a in d.eig)
        assert c.nbytes() == before + eig_bytes
    finally:
        analyze.clear_cache()

"""Models of the statistical analysis: normalization, batch-effect test, residualization on the
condition, Lasso / sparse LMM, the two-step condition model, and significant-gene extraction.

Two families live here:

* the *exact* pieces call the same estimators with the same settings and data shapes as GenoTEX's
  tools/statistics.py (scikit-learn ``Lasso`` defaults: 1,000 cyclic coordinate-descent sweeps, tol 1e-4;
  ``sparse_lmm.LMM`` whose default ``modified=True`` mode is a Lasso on the rotated design and reports
  no p-values), so their output equals the reference's;
* the *fast* pieces solve the same Lasso objective exactly, on a whole grid at once, with a homotopy
  (LARS-lasso) path restricted to a working set of genes and certified on all genes by the KKT
  conditions / duality gap.  The Lasso solution is unique for data in general position, so the result
  does not depend on the gene column order (the unconverged reference does: coordinate descent sweeps
  the columns in file order).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

LASSO = "lasso"
LMM = "lmm"


# ---- normalization, batch effect, residualization ---------------------------------------------------------

def normalize(train: np.ndarray, test: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Center/scale with the training rows' mean and (population) std; constant columns are only centered."""
    mean = np.mean(train, axis=0)
    std = np.std(train, axis=0)
    std = np.where(std == 0, 1, std)
    return (train - mean) / std, (None if test is None else (test - mean) / std)


def normalize_rows(X: np.ndarray, train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``normalize(X[train], X[test])`` bit for bit, compiled: the rows are read from X (any layout, a view is
    fine) straight into the two results, with no copy or temporary of the matrix (see ``_standardize_kernel``).

    The copies ``X[train]`` are C-ordered, which numpy reduces over axis 0 row after row, as the kernel does; a
    one-column matrix is contiguous along that axis, and numpy then sums pairwise: it takes numpy's path."""
    from genotex_dask.analysis._standardize_kernel import standardize_rows

    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] < 2:
        return normalize(X[train], X[test])
    train = np.asarray(train, dtype=np.int64)
    test = np.asarray(test, dtype=np.int64)
    out_train = np.empty((train.size, X.shape[1]))
    out_test = np.empty((test.size, X.shape[1]))
    standardize_rows(X, train, test, out_train, out_test)
    return out_train, out_test


def normalize_all(X: np.ndarray) -> np.ndarray:
    """``normalize(X)[0]`` bit for bit: compiled (:func:`normalize_rows` of every row) where numpy reduces X row
    after row, i.e. its rows are contiguous; other layouts (a pandas frame's F-ordered array) numpy sums in
    another order, so they take numpy's path."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 2 and X.strides[-1] == X.itemsize:
        return normalize_rows(X, np.arange(len(X)), np.arange(0))[0]
    return normalize(X)[0]


@dataclass(frozen=True)
class BatchTest:
    """Outcome of the reference's eigen-gap rule.

    ``fires``: some gap between consecutive top-10 eigenvalues of the centered Gram matrix, divided by the
    largest, exceeds 200/n.  Those normalized gaps are at most 1, so the rule ``could_fire`` only when n > 200.
    """

    fires: bool
    max_gap: float
    threshold: float
    could_fire: bool


DENSE_EIG_MAX = 3000  # Gram side up to which every eigenvalue is computed densely (eigvalsh); above: Lanczos


def top_gram_eigenvalues(Xc: np.ndarray, k: int = 10) -> np.ndarray:
    """The ``k`` largest eigenvalues of ``Xc Xcᵀ`` (descending; zeros where the n x n matrix has them).

    The reference builds the n x n matrix (samples x samples): 3.2 GB and an O(n³) solve at 20,000 samples.
    ``Xcᵀ Xc`` (genes x genes) has the same nonzero eigenvalues, so the smaller side is used; for n <= p this is
    the reference's own matrix, so results are unchanged bit for bit.  When even the smaller side is large,
    the top ``k`` come from Lanczos (``eigsh``) on the implicit product, never forming the matrix.
    """
    n, p = Xc.shape
    m = min(n, p)
    want = min(k, n)
    if m > DENSE_EIG_MAX and m > k + 1:
        from scipy.sparse.linalg import LinearOperator, eigsh

        if n <= p:
            op = LinearOperator((n, n), matvec=lambda v: Xc @ (Xc.T @ v), dtype=Xc.dtype)
        else:
            op = LinearOperator((p, p), matvec=lambda v: Xc.T @ (Xc @ v), dtype=Xc.dtype)
        ev = eigsh(op, k=k, which="LA", return_eigenvectors=False, tol=1e-12)
    else:
        ev = np.linalg.eigvalsh(Xc @ Xc.T if n <= p else Xc.T @ Xc)
    top = np.sort(ev)[::-1][:want]
    if top.size < want:  # n > p: the n x n matrix's other eigenvalues are zero
        top = np.concatenate([top, np.zeros(want - top.size)])
    return top


def batch_effect_test(X: np.ndarray) -> BatchTest:
    n = X.shape[0]
    Xc = X - X.mean(axis=0)
    top = top_gram_eigenvalues(Xc, 10)
    thr = 200 / n
    with np.errstate(divide="ignore", invalid="ignore"):
        nev = top / top[0]
    gaps = nev[:-1] - nev[1:]
    fires = bool(np.any(gaps > thr))
    max_gap = float(np.nanmax(gaps)) if gaps.size and not np.all(np.isnan(gaps)) else 0.0
    return BatchTest(fires, max_gap, float(thr), bool(thr < 1.0))


def residualize(Y: np.ndarray, Z: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Residual of Y after least squares on [1, Z] (pseudo-inverse normal equations, as the reference)."""
    Y2 = Y.reshape(-1, 1) if Y.ndim == 1 else Y
    if Z is None:
        return Y2, None
    Z2 = Z.reshape(-1, 1) if Z.ndim == 1 else Z
    Z1 = np.column_stack((np.ones(Z2.shape[0]), Z2))
    beta = np.linalg.pinv(Z1.T @ Z1) @ Z1.T @ Y2
    return Y2 - Z1 @ beta, beta


def _z_ones(Z: np.ndarray) -> np.ndarray:
    Z2 = Z.reshape(-1, 1) if Z.ndim == 1 else Z
    return np.column_stack((np.ones(Z2.shape[0]), Z2))


# ---- exact mode: the reference's estimators ---------------------------------------------------------------

def make_estimator(kind: str, alpha: float):
    """The reference's estimator for one grid value (sklearn Lasso defaults / sparse_lmm LMM defaults)."""
    if kind == LASSO:
        from sklearn.linear_model import Lasso

        return Lasso(alpha=alpha)
    if kind == LMM:
        from sparse_lmm import LMM as SparseLMM

        return SparseLMM(lamda=alpha)
    raise ValueError(f"unknown model kind {kind!r}")


class ResidualizedModel:
    """Regress Y on [1, Z] by least squares, then the sparse model of the residual on X.

    Coefficients are reported as [condition effect(s), gene effects] like the reference's regressor;
    ``p_values`` stays None unless the estimator reports -log p (sparse_lmm's default mode does not).
    """

    def __init__(self, kind: str, alpha: float):
        self.kind = kind
        self.alpha = alpha
        self.estimator = make_estimator(kind, alpha)
        self.beta_Z: np.ndarray | None = None
        self.beta_X: np.ndarray | None = None
        self.p_values: np.ndarray | None = None

    def fit(self, X: np.ndarray, Y: np.ndarray, Z: np.ndarray | None = None) -> ResidualizedModel:
        X = X.reshape(-1, 1) if X.ndim == 1 else X
        with warnings.catch_warnings():
            from sklearn.exceptions import ConvergenceWarning

            warnings.simplefilter("ignore", ConvergenceWarning)
            e_Y, self.beta_Z = residualize(Y, Z)
            self.estimator.fit(X, e_Y)
        if hasattr(self.estimator, "coef_"):
            self.beta_X = self.estimator.coef_
        else:
            b = self.estimator.getBeta()
            self.beta_X = b.ravel() if (b.ndim == 2 and b.shape[1] == 1) else b
        nlp = self.estimator.getNegLogP() if hasattr(self.estimator, "getNegLogP") else None
        if nlp is not None:
            nlp = nlp.ravel() if (nlp.ndim == 2 and nlp.shape[1] == 1) else nlp
            p = np.exp(-nlp)
            if Z is not None:
                nz = 1 if Z.ndim == 1 else Z.shape[1]
                p = np.concatenate((np.full(nz, np.nan), p))
            self.p_values = p
        return self

    def predict(self, X: np.ndarray, Z: np.ndarray | None = None) -> np.ndarray:
        X = X.reshape(-1, 1) if X.ndim == 1 else X
        out = self.estimator.predict(X)
        if Z is not None:
            out = out + _z_ones(Z) @ self.beta_Z.ravel()
        return out

    def coefficients(self) -> np.ndarray:
        if self.beta_Z is not None:
            return np.concatenate((self.beta_Z[1:].ravel(), np.asarray(self.beta_X).ravel()))
        return np.asarray(self.beta_X).ravel()


# ---- two-step: the condition model ------------------------------------------------------------------------

def predict_condition(X_cond: np.ndarray, y_cond: np.ndarray, X_trait: np.ndarray) -> tuple[np.ndarray, str]:
    """Fit the condition on its regressors in the condition cohort; predict it into the trait cohort.

    Binary condition -> logistic regression (L1/liblinear when regressors outnumber samples), continuous ->
    Lasso when regressors outnumber samples else least squares; each cohort standardized on its own.
    Returns (Z for the trait cohort, model name).
    """
    from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression

    binary = len(np.unique(y_cond)) == 2
    wide = X_cond.shape[1] > X_cond.shape[0]
    if binary:
        model = LogisticRegression(penalty="l1", solver="liblinear", random_state=42) if wide \
            else LogisticRegression()
    else:
        model = Lasso() if wide else LinearRegression()
    Xc, _ = normalize(X_cond)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(Xc, y_cond)
    Xt, _ = normalize(X_trait)
    z = model.predict_proba(Xt)[:, 1] if binary else model.predict(Xt)
    return np.asarray(z, dtype=float), type(model).__name__ + ("(l1)" if binary and wide else "")


# ---- significant genes -----------------------------------------------------------------------------------

def bh_adjust(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (scipy's ``false_discovery_control``, the same numbers as
    statsmodels' ``multipletests(method="fdr_bh")`` the reference calls); NaN p-values stay NaN and are left
    out of the family."""
    from scipy.stats import false_discovery_control

    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = false_discovery_control(p[ok], method="bh")
    return out


def significant_genes(var_names: Sequence[str], trait: str, condition: str | None, coefs: np.ndarray,
                      p_values: np.ndarray | None = None, threshold: float = 0.05,
                      stable: bool = False) -> dict:
    """Significant genes as GenoTEX's interpret_result lists them (dict of columns).

    Feature order is var_names without the trait, condition first; coefficients follow that order.
    Without p-values: non-zero coefficients by descending |coef| (pandas default quicksort in exact mode,
    ``stable=True`` breaks ties by gene name instead).  With p-values: BH-FDR < threshold.
    """
    names = [v for v in var_names if v != trait]
    if condition:
        if condition in names:
            names.remove(condition)
        names.insert(0, condition)
    cols = {"Variable": names, "Coefficient": np.asarray(coefs).reshape(-1).tolist()}
    if p_values is not None:
        cols["p_value"] = np.asarray(p_values).reshape(-1).tolist()
    df = pd.DataFrame(cols)
    genes = df[df["Variable"] != condition] if condition is not None else df
    if p_values is None:
        sig = genes[genes["Coefficient"] != 0].copy()
        sig["Absolute Coefficient"] = sig["Coefficient"].abs()
        if stable:
            sig = sig.sort_values(["Absolute Coefficient", "Variable"], ascending=[False, True], kind="mergesort")
        else:
            sig = sig.sort_values("Absolute Coefficient", ascending=False)
    else:
        genes = genes.copy()
        genes.loc[:, "corrected_p_value"] = bh_adjust(genes["p_value"].to_numpy(dtype=float))
        sig = genes[genes["corrected_p_value"] < threshold]
        sig = sig.sort_values("corrected_p_value", ascending=True, kind="mergesort" if stable else "quicksort")
    return sig.to_dict(orient="list")


# ---- fast mode: exact Lasso on a grid via working-set homotopy --------------------------------------------------

@dataclass
class GridSolution:
    """Lasso solutions at each grid value (columns of ``coef``), with certificates on all genes."""

    alphas: np.ndarray
    coef: np.ndarray            # p x k
    intercept: np.ndarray       # k
    rel_gap: np.ndarray         # duality gap / P(0) per grid value
    kkt_violation: np.ndarray   # max_j |x_j' r| / (n alpha) - 1, <= 0 when optimal
    rounds: int                 # working-set growths: walks resumed after KKT violations (1 = none needed)
    working_set: int


def _path_at(alphas: np.ndarray, coefs: np.ndarray, a: float) -> np.ndarray:
    """Lasso solution at ``a`` from a LARS path (piecewise linear in alpha between breakpoints)."""
    if a >= alphas[0]:
        return np.zeros(coefs.shape[0])
    if a <= alphas[-1]:
        return coefs[:, -1].copy()
    i = int(np.searchsorted(-alphas, -a))
    if alphas[i] == a:
        return coefs[:, i].copy()
    t = (alphas[i - 1] - a) / (alphas[i - 1] - alphas[i])
    return coefs[:, i - 1] + (coefs[:, i] - coefs[:, i - 1]) * t


def _polish(X: np.ndarray, y: np.ndarray, alpha: float, start: np.ndarray) -> np.ndarray:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import Lasso

    m = Lasso(alpha=alpha, fit_intercept=False, precompute=True, tol=1e-13, max_iter=20000, warm_start=True)
    m.coef_ = start.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m.fit(X, y)
    return m.coef_


def _LARS_STEPS(n: int) -> int:
    # lars_path preallocates a (max_iter + 1) x p path; a homotopy to alpha ~ 0 takes ~1-2 n steps
    # (drops included), so a few n bounds it without allocating p x p (the polish covers a cut-off path)
    return 8 * n + 200


try:  # compiled homotopy (numba); without it, or on degenerate data, scikit-learn's lars_path
    from genotex_dask.analysis import _lars_kernel

    _HAVE_KERNEL = True
except ImportError:  # pragma: no cover - numba is a dependency
    _HAVE_KERNEL = False


def _grid_path(XwT: np.ndarray, yc: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, int]:
    """Whole grid from one compiled LARS-lasso path on the transposed working-set design (|W| x n);
    status != 0 asks for the scikit-learn fallback."""
    n = XwT.shape[1]
    cw, _, status = _lars_kernel.grid_path_t(XwT, yc, grid * n, _LARS_STEPS(n))
    return cw, int(status)


def _grid_path_sklearn(Xw: np.ndarray, yc: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The same grid from scikit-learn's lars_path, finishing a cut-off path by coordinate descent."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import lars_path

    n = Xw.shape[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        al, _, co = lars_path(Xw, yc, method="lasso", alpha_min=float(grid[-1]), max_iter=_LARS_STEPS(n))
    cw = np.stack([_path_at(al, co, a) for a in grid], axis=1)  # |W| x k
    for j in np.flatnonzero(grid < al[-1] * (1 - 1e-12)):
        # the homotopy stopped early (degenerate active set): finish from its end point by
        # coordinate descent on the working set's Gram matrix, to a tight gap
        cw[:, j] = _polish(Xw, yc, float(grid[j]), co[:, -1])
    return cw


class _WalkState:
    """The resumable homotopy's state over a growing working set (rows appended, never reordered)."""

    def __init__(self, X: np.ndarray, xm: np.ndarray, W: np.ndarray):
        n, p = X.shape
        cap = min(p, max(2 * W.size, 1024))
        self.rows = np.empty((cap, n))  # compacted working-set design, |W| x n, C order: one BLAS gemv per step
        self.genes = np.empty(cap, dtype=np.int64)
        self.m = W.size
        self.rows[: self.m] = (X[:, W] - xm[W]).T
        self.rows32 = np.empty((cap, n), dtype=np.float32)  # the kernel's screening copy (half the bytes)
        self.rows32[: self.m] = self.rows[: self.m]
        self.genes[: self.m] = W
        self.w = np.zeros(cap)
        self.active = np.zeros(cap, dtype=np.bool_)
        self.act = np.zeros(n + 1, dtype=np.int64)
        self.sgn = np.zeros(n + 1)
        self.L = np.zeros((n + 1, n + 1))
        self.ist = np.zeros(1, dtype=np.int64)
        self.fst = np.full(1, np.inf)

    def append(self, X: np.ndarray, xm: np.ndarray, new: np.ndarray) -> None:
        need = self.m + new.size
        if need > self.rows.shape[0]:
            cap = min(X.shape[1], max(2 * self.rows.shape[0], need))
            for name in ("rows", "rows32", "genes", "w", "active"):
                old = getattr(self, name)
                grown = np.zeros((cap,) + old.shape[1:], dtype=old.dtype)
                grown[: self.m] = old[: self.m]
                setattr(self, name, grown)
        self.rows[self.m: need] = (X[:, new] - xm[new]).T
        self.rows32[self.m: need] = self.rows[self.m: need]
        self.genes[self.m: need] = new
        self.m = need

    def save(self) -> tuple:
        na = int(self.ist[0])
        return (self.m, na, float(self.fst[0]), self.w[: self.m].copy(), self.act[:na].copy(),
                self.sgn[:na].copy(), self.L[:na, :na].copy())

    def restore(self, saved: tuple) -> None:
        m, na, lam, w, act, sgn, L = saved
        self.w[: self.m] = 0.0
        self.w[:m] = w
        self.active[: self.m] = False
        self.active[act] = True
        self.act[:na] = act
        self.sgn[:na] = sgn
        self.L[:na, :na] = L
        self.ist[0] = na
        self.fst[0] = lam

    def residual(self, yc: np.ndarray) -> np.ndarray:
        A = self.act[: int(self.ist[0])]
        return yc - self.rows[A].T @ self.w[A]


#: breakpoints between two KKT checks on all genes (at least; n/10 at larger n): a check costs one p x n gemv,
#: a breakpoint one |W| x n gemv plus O(n |A|), and a violation found at a check sends the walk back to the
#: previous check only (30-50 measured equally good at n = 138..415 x 19,736 genes, ~90 better at n = 900;
#: benchmarks/bench_lars.py)
_CHECK_EVERY = 40


def _ahead_cap(n: int) -> int:
    """Most genes the strong rule adds at one checkpoint (n/4 grew W with little use; n/8..n/12 measured best
    at n <= 415).  Above n ~ 500 the walk starts from 64 and the cap doubles (up to :func:`_ahead_max`) after
    each walk back: on TCGA-size folds (n ~ 976) n/8 per checkpoint grew W to ~3,100 genes where ~2,300
    sufficed, and every breakpoint scans W (benchmarks/bench_lars.py)."""
    return max(min(n // 8, 64), 50)


def _ahead_max(n: int) -> int:
    """The largest strong-rule addition per checkpoint, reached after walks back."""
    return max(n // 8, 50)


def top_k_stable(v: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k largest values of v, largest first, ties in position order: the first k of
    ``np.argsort(-v, kind="stable")`` (v without NaN), without sorting all of v.  Why: the strong rule's candidates
    can be most of the ~19,000 genes, and sorting them all at every checkpoint was ~2% of the analysis's CPU."""
    if v.size <= k:
        return np.argsort(-v, kind="stable")
    if k <= 0:
        return np.empty(0, dtype=np.intp)
    t = np.partition(v, v.size - k)[v.size - k]  # the k-th largest value
    keep = v > t
    keep[np.flatnonzero(v == t)[: k - int(keep.sum())]] = True  # the first ties by position fill the rest
    keep = np.flatnonzero(keep)
    return keep[np.argsort(-v[keep], kind="stable")]


def _resumed_walk(X: np.ndarray, xm: np.ndarray, yc: np.ndarray, grid: np.ndarray, W: np.ndarray):
    """One homotopy down the grid on a working set that grows without restarting the path.

    At every grid value and every ``max(_CHECK_EVERY, n // 10)`` breakpoints the walk stops and checks the
    KKT conditions on all genes.  Where they hold, the working-set solution is the full problem's optimum at
    that lambda, so the state is saved; where genes outside W violate them, those genes join W and the walk
    resumes from the last saved state (where they were inside the bound, as new inactive genes must be); a
    violation by a gene already in W means a numerically degenerate path and the caller falls back.  Returns
    (coef p x k, R n x k, |C| p x k, rounds, |W|), or None on a degenerate path (the caller falls back).
    X is the uncentered design (n x p, as given: no centered or transposed copy of all genes is made); xm its
    column means, yc the centered response.
    """
    n, p = X.shape
    k = grid.size
    lams = grid * n
    st = _WalkState(X, xm, W)
    inW = np.zeros(p, dtype=bool)
    inW[W] = True
    coef = np.zeros((p, k))
    R = np.empty((n, k))
    C = np.empty((p, k))
    saved = st.save()
    budget = 4 * _LARS_STEPS(n)
    every = max(_CHECK_EVERY, n // 10)
    total = 0
    rounds = 1
    ahead = _ahead_cap(n)
    g = 0
    prev_lam = np.inf
    rate = 0.0
    while g < k:
        status, steps, reason = _lars_kernel.lars_walk(
            st.rows[: st.m], st.rows32[: st.m], _lars_kernel.SCREEN_EPS, yc, float(lams[g]), every, st.w,
            st.active, st.act, st.sgn, st.L, st.ist, st.fst)
        total += steps
        if status != 0 or reason == 2 or total > budget:
            return None
        r = st.residual(yc)
        c = np.abs(X.T @ r - xm * r.sum())  # = |Xc' r|; r sums to ~0, the term keeps it exact
        viol = c > st.fst[0] * (1 + 1e-7)
        if viol.any():
            new = np.flatnonzero(viol & ~inW)
            if new.size == 0:
                return None  # a working-set gene off its bound: numerically degenerate path
            st.append(X, xm, new)
            inW[new] = True
            st.restore(saved)
            rounds += 1
            ahead = min(2 * ahead, _ahead_max(n))
            continue
        lam = float(st.fst[0])
        if reason == 1 and prev_lam > lam:
            rate = lam / prev_lam  # lambda's ratio over one checkpoint interval
        # strong rule (Tibshirani et al. 2012): a gene with |x_j' r| < 2 lam' - lam here rarely reaches the
        # bound by the next checkpoint's lam'; the highest others join W now, at a certified point, where
        # joining costs no walk back.  lam' is extrapolated from the last interval's ratio.
        if rate > 0.0:
            nxt = float(lams[g]) if reason == 1 else float(lams[g + 1]) if g + 1 < k else 0.0
            near = np.flatnonzero((c >= 2 * max(lam * rate, nxt) - lam) & ~inW)
            if near.size:
                near = near[top_k_stable(c[near], ahead)]
                st.append(X, xm, near)
                inW[near] = True
        prev_lam = lam
        saved = st.save()
        if reason == 0:
            A = st.act[: int(st.ist[0])]
            coef[st.genes[A], g] = st.w[A]
            R[:, g] = r
            C[:, g] = c
            g += 1
    return coef, R, C, rounds, st.m


def _restart_rounds(X: np.ndarray, xm: np.ndarray, yc: np.ndarray, grid: np.ndarray, W: np.ndarray,
                    max_rounds: int):
    """The older strategy, kept as the fallback on degenerate paths (and the benchmark's baseline): walk the
    whole path on W, check KKT on all genes, add the worst violators and walk again from lambda_max."""
    n = yc.size
    Xc = X - xm
    XcT = np.ascontiguousarray(Xc.T)
    p = XcT.shape[0]
    rounds = 0
    while True:
        rounds += 1
        XwT = XcT[W]  # |W| x n, rows contiguous: what the kernel streams through
        cw, status = _grid_path(XwT, yc, grid) if _HAVE_KERNEL else (None, -1)
        if status != 0:
            cw = _grid_path_sklearn(XwT.T, yc, grid)
        R = yc[:, None] - XwT.T @ cw
        C = np.abs(Xc.T @ R)  # p x k
        lim = n * grid[None, :]
        viol = (C > lim * (1 + 1e-7)).any(axis=1)
        viol[W] = False
        if not viol.any() or rounds >= max_rounds or W.size == p:
            break
        score = np.where(viol, (C / lim).max(axis=1), 0.0)
        add = np.argsort(-score, kind="stable")[: max(int(viol.sum()), 1)][: max(2 * n, 500)]
        W = np.union1d(W, add)
    coef = np.zeros((p, grid.size))
    coef[W] = cw
    return coef, R, C, rounds, int(W.size)


def lasso_grid(X: np.ndarray, y: np.ndarray, alphas: Sequence[float], *, init_ws: int | None = None,
               max_rounds: int = 50, resume: bool = True, col_means: np.ndarray | None = None) -> GridSolution:
    """Minimize ||y - b - Xw||^2/(2n) + alpha*||w||_1 exactly for every alpha in ``alphas``.

    Why a homotopy: the grid reaches 1e-6, where coordinate descent on p >> n needs tens of thousands of
    sweeps; the LARS-lasso path reaches every grid value in about n breakpoints with exact solutions.
    Why a working set: each breakpoint costs O(n * |W|); genes outside W are checked on the KKT conditions
    (|x_j' r| <= n alpha) and violators join W.  With ``resume`` (default) the checks run during the walk
    and the path resumes from the last certified point; without it (the older strategy, also the fallback)
    each round re-walks the whole path.  ``col_means``: ``X.mean(axis=0)`` when the caller shares it between
    problems on the same X (the same bits; one pass over X less).
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float).ravel()
    n, p = X.shape
    grid = np.asarray(sorted(alphas, reverse=True), dtype=float)
    xm = X.mean(axis=0) if col_means is None else col_means
    ym = y.mean()
    yc = y - ym
    corr0 = np.abs(X.T @ yc - xm * yc.sum())  # = |Xc' yc|
    # a small first working set: each breakpoint costs O(n |W|), and the KKT checks add what is missing
    # (2n measured best at n <= 415, ~n at 900: the path needs ~n active genes plus their rivals); the most
    # correlated genes, ties to the lower column index
    size = min(p, init_ws or max(min(2 * n, 1000), 500))
    W = np.sort(top_k_stable(corr0, size))
    k = len(grid)
    out = _resumed_walk(X, xm, yc, grid, W) if resume and _HAVE_KERNEL and p and n > 1 else None
    if out is None:
        out = _restart_rounds(X, xm, yc, grid, W, max_rounds)
    coef, R, C, rounds, ws = out
    # certificates on all genes: duality gap with the rescaled residual as dual point
    p0 = float(yc @ yc) / (2 * n)
    rel_gap = np.empty(k)
    kkt = np.empty(k)
    for j, a in enumerate(grid):
        r = R[:, j]
        cmax = float(C[:, j].max()) if p else 0.0
        primal = float(r @ r) / (2 * n) + a * float(np.abs(coef[:, j]).sum())
        theta = r / max(n * a, cmax)
        d = yc - n * a * theta
        dual = (float(yc @ yc) - float(d @ d)) / (2 * n)
        rel_gap[j] = max(primal - dual, 0.0) / p0 if p0 > 0 else 0.0
        kkt[j] = cmax / (n * a) - 1.0
    intercept = ym - xm @ coef
    # return in the caller's alpha order
    idx = [int(np.where(grid == a)[0][0]) for a in alphas]
    return GridSolution(np.asarray(alphas, dtype=float), coef[:, idx], intercept[idx], rel_gap[idx],
                        kkt[idx], rounds, ws)


def kernel_eig(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(S, U) of K = XX' as sparse_lmm computes it (scipy's eigh); shared by every problem on a fold."""
    import scipy.linalg

    return scipy.linalg.eigh(X @ X.T)


def lmm_row_scale(y: np.ndarray, eig: tuple) -> np.ndarray:
    """Per-row factor of sparse_lmm's rotated design, sign(u_i'y) (S_i + delta)^-1/2, for K = USU'.

    delta is the null-model variance ratio estimated by sparse_lmm itself from (y, S, U); it does not depend
    on the penalty.  sparse_lmm rotates X but not y, so each eigenvector's sign (LAPACK's arbitrary choice)
    changes the fit; it is fixed canonically (u_i'y >= 0) so that the result is reproducible and
    order-independent.  Only this factor depends on the problem's trait: U'X is shared by every problem
    on the same training rows (see :func:`lmm_rotation`).
    """
    from sparse_lmm import LMM as SparseLMM

    S, U = eig
    _, _, ldelta = SparseLMM().train_nullmodel(y.reshape(-1, 1), None, S=S, U=U)
    sign = np.sign(U.T @ y)
    sign[sign == 0] = 1
    return sign * np.sqrt(1.0 / (S + np.exp(ldelta)))


def lmm_rotation(X: np.ndarray | None, y: np.ndarray, eig: tuple | None = None,
                 rotated: np.ndarray | None = None) -> np.ndarray:
    """The design sparse_lmm's default mode hands to its Lasso: diag((S+delta)^-1/2) U' X, K = XX' = USU'
    (eigenvector signs fixed by :func:`lmm_row_scale`).

    ``rotated``: U'X when the caller shares it between problems (a 976 x 19,736 GEMM, ~1 CPU-s per fold and
    problem on a TCGA-size cohort); X is then not needed.  Scaling the rows of U'X by +-(S+delta)^-1/2 gives
    the same bits as rotating by the sign-flipped U (negation is exact in every product and sum).
    """
    S, U = eig if eig is not None else kernel_eig(X)
    scale = lmm_row_scale(y, (S, U))
    UtX = rotated if rotated is not None else U.T @ X
    return UtX * scale[:, None]

"""Cross-validated choice of the penalty, as GenoTEX tunes it, in an exact and a fast form.

The reference shuffles ``arange(n)`` with the global NumPy seed 42, takes fold i's test rows as the
slice ``[i*(n//5), (i+1)*(n//5))`` of that permutation (the n % 5 left-over rows are always in training)
and the training rows as the sorted complement.  Features are standardized on the training rows; the
trait is residualized on [1, condition]; each grid value's selection precision against the trait's known
related genes is averaged over folds and the best (first best on ties) wins, 0.1 when none ever matches.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from genotex_dask.analysis import models

GRID: tuple[float, ...] = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
DEFAULT_ALPHA = 0.1
K_FOLDS = 5


def folds(n: int, k: int = K_FOLDS) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, test rows) per fold, identical to the reference's seeded slicing."""
    idx = np.arange(n)
    np.random.RandomState(42).shuffle(idx)  # same stream as np.random.seed(42); np.random.shuffle
    size = n // k
    out = []
    for i in range(k):
        test = idx[i * size:(i + 1) * size]
        out.append((np.setdiff1d(idx, test), test))
    return out


def is_binary(y: np.ndarray) -> bool:
    return len(np.unique(y)) == 2


def prediction_metrics(y_test: np.ndarray, pred: np.ndarray, binary: bool) -> dict:
    """accuracy/precision/recall/F1 (%, threshold 0.5) for a binary trait, NMSE and R^2 otherwise."""
    from sklearn.metrics import accuracy_score, f1_score, precision_score, r2_score, recall_score

    if binary:
        p = (pred > 0.5).astype(int)
        t = (y_test > 0.5).astype(int)
        return {"accuracy": accuracy_score(t, p) * 100,
                "precision": precision_score(t, p, zero_division=0) * 100,
                "recall": recall_score(t, p, zero_division=0) * 100,
                "f1": f1_score(t, p, zero_division=0) * 100}
    with np.errstate(divide="ignore", invalid="ignore"):
        nmse = np.sum((y_test - pred) ** 2) / np.sum((y_test - np.mean(y_test)) ** 2)
    return {"nmse": nmse, "r_squared": r2_score(y_test, pred)}


def prediction_metrics_fast(y_test: np.ndarray, pred: np.ndarray, binary: bool) -> dict:
    """Same definitions as :func:`prediction_metrics` in plain NumPy (scikit-learn's input validation
    costs more than a whole fold's solve in fast mode)."""
    if not binary:
        with np.errstate(divide="ignore", invalid="ignore"):
            ss_res = np.sum((y_test - pred) ** 2)
            ss_tot = np.sum((y_test - np.mean(y_test)) ** 2)
            nmse = ss_res / ss_tot
        r2 = (1 - ss_res / ss_tot) if ss_tot != 0 else (1.0 if ss_res == 0 else 0.0)
        return {"nmse": nmse, "r_squared": float(r2)}
    p = pred > 0.5
    t = y_test > 0.5
    tp = float(np.sum(p & t))
    fp = float(np.sum(p & ~t))
    fn = float(np.sum(~p & t))
    acc = float(np.mean(p == t)) if len(t) else float("nan")
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    return {"accuracy": acc * 100, "precision": prec * 100, "recall": rec * 100, "f1": f1 * 100}


def selection_metrics(pred: Sequence[str], ref: Sequence[str]) -> dict:
    """Precision/recall/F1/Jaccard (%) of a gene list against the known related genes (GenoTEX's rules)."""
    ref_l = list(ref)
    prec = sum(g in ref_l for g in pred) / len(pred) if len(pred) else 0
    rec = sum(g in pred for g in ref_l) / len(ref_l) if len(ref_l) else 0
    f1 = 0 if prec + rec == 0 else 2 * prec * rec / (prec + rec)
    u = set(pred) | set(ref_l)
    jac = len(set(pred) & set(ref_l)) / len(u) if u else 0
    return {"precision": prec * 100, "recall": rec * 100, "f1": f1 * 100, "jaccard": jac * 100}


def mean_performance(perfs: Sequence[dict]) -> dict:
    """Average fold results metric by metric, keeping the first fold's key order."""
    out: dict = {}
    for metric, val in perfs[0].items():
        if isinstance(val, dict):
            out[metric] = {sub: np.mean([p[metric][sub] for p in perfs]) for sub in val}
        else:
            out[metric] = np.mean([p[metric] for p in perfs])
    return out


def choose(results: Sequence[tuple[float, dict]], binary: bool) -> tuple[float, dict]:
    """Best grid value by selection precision (strictly better only) and the best prediction seen.

    Returns (alpha, performance) where performance mirrors the reference's ``best_performance``.
    """
    pm = "f1" if binary else "r_squared"
    best_sel = -np.inf
    best_pred = -np.inf
    best_alpha = None
    perf: dict = {}
    for alpha, res in results:
        if res["prediction"][pm] > best_pred:
            best_pred = res["prediction"][pm]
            perf["prediction"] = res["prediction"]
        if res["selection"]["precision"] > best_sel:
            best_sel = res["selection"]["precision"]
            best_alpha = alpha
            perf["selection"] = res["selection"]
    if best_sel <= 0:
        best_alpha = DEFAULT_ALPHA
    return best_alpha, perf


@dataclass
class ProblemData:
    """Arrays of one problem, as the reference assembles them from the linked cohort file(s).

    ``X``: genes (file order in exact mode); ``var_names``: the reference's column list (trait, condition
    and genes) used to name coefficients; ``ref_genes``: the trait's related genes present among the genes.
    """

    trait: str
    condition: str | None
    X: np.ndarray
    Y: np.ndarray
    Z: np.ndarray | None
    var_names: list[str]
    gene_names: list[str]
    ref_genes: list[str]
    kind: str = models.LASSO
    extras: dict = field(default_factory=dict)


def selected(data: ProblemData, model: models.ResidualizedModel, stable: bool = False) -> list[str]:
    sig = models.significant_genes(data.var_names, data.trait, data.condition, model.coefficients(),
                                   model.p_values, stable=stable)
    return sig["Variable"]


# ---- exact mode -----------------------------------------------------------------------------------------

def fold_exact(data: ProblemData, alpha: float, fold: int, k: int = K_FOLDS) -> dict:
    """One (grid value, fold) of the reference's cross-validation: {"prediction": ..., "selection": ...}."""
    train, test = folds(len(data.X), k)[fold]
    Xtr, Xte = models.normalize(data.X[train], data.X[test])
    Ztr = Zte = None
    if data.Z is not None:
        Ztr, Zte = models.normalize(data.Z[train], data.Z[test])
    m = models.ResidualizedModel(data.kind, alpha).fit(Xtr, data.Y[train], Ztr)
    pred = m.predict(Xte, Zte)
    binary = is_binary(data.Y)
    return {"prediction": prediction_metrics(data.Y[test], pred, binary),
            "selection": selection_metrics(selected(data, m), data.ref_genes)}


def final_exact(data: ProblemData, alpha: float) -> tuple[dict, dict]:
    """Fit on all samples at the chosen value; significant genes as the reference lists them.

    Also returns scikit-learn's own convergence record of that fit (its duality gap and sweeps; the
    reference silences the ConvergenceWarning, we report it).
    """
    Xn, _ = models.normalize(data.X)
    Zn = models.normalize(data.Z)[0] if data.Z is not None else None
    m = models.ResidualizedModel(data.kind, alpha).fit(Xn, data.Y, Zn)
    sig = models.significant_genes(data.var_names, data.trait, data.condition, m.coefficients(), m.p_values)
    lasso = m.estimator if hasattr(m.estimator, "dual_gap_") else getattr(m.estimator, "lasso", None)
    conv: dict = {}
    if lasso is not None:
        n_iter = int(np.max(lasso.n_iter_))
        conv = {"final_sklearn_dual_gap": float(np.max(lasso.dual_gap_)), "final_sklearn_n_iter": n_iter,
                "final_hit_max_iter": bool(n_iter >= lasso.max_iter)}
    return sig, conv


def tune_exact(data: ProblemData, grid: Sequence[float] = GRID, k: int = K_FOLDS) -> tuple[float, dict]:
    """Sequential reference loop (used by tests and single-process runs; the pipeline spreads the folds)."""
    results = [(a, mean_performance([fold_exact(data, a, f, k) for f in range(k)])) for a in grid]
    return choose(results, is_binary(data.Y))


# ---- fast mode ------------------------------------------------------------------------------------------

@dataclass
class FoldDesign:
    """A fold's standardized matrices, shared by every problem on the same cohort.

    LMM problems need the training rows only through the eigen-decomposition of Xtr Xtr' and the product
    U'Xtr; :meth:`lmm_basis` computes both once and then lets Xtr go (U'Xtr has the same size, so a TCGA-size
    cohort's designs do not grow).  Every problem of a cohort and trait is of one kind (the batch test runs on
    the shared gene matrix), so no Lasso problem asks for the released rows.
    """

    train: np.ndarray
    test: np.ndarray
    Xtr: np.ndarray | None
    Xte: np.ndarray
    eig: tuple | None = None  # eigen-decomposition of Xtr Xtr' (LMM), computed on first use
    rotated: np.ndarray | None = None  # U'Xtr (LMM), replaces Xtr once computed
    means: np.ndarray | None = None  # Xtr's column means (Lasso), computed on first use
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def column_means(self) -> np.ndarray:
        """Xtr's column means, as :func:`models.lasso_grid` computes them, once for every problem on the fold
        (one pass over the training rows less per problem and fold: on a 1,220 x 19,736 cohort 190 MB)."""
        with self.lock:
            if self.means is None:
                self.means = self.training_rows().mean(axis=0)
            return self.means

    def kernel_eig(self) -> tuple:
        with self.lock:
            if self.eig is None:
                self.eig = models.kernel_eig(self.training_rows())
            return self.eig

    def lmm_basis(self) -> tuple[tuple, np.ndarray]:
        """((S, U), U'Xtr), computed on first use; Xtr is released afterwards."""
        eig = self.kernel_eig()
        with self.lock:
            if self.rotated is None:
                self.rotated = eig[1].T @ self.training_rows()
                self.Xtr = None
            return eig, self.rotated

    def training_rows(self) -> np.ndarray:
        if self.Xtr is None:
            raise RuntimeError("the fold's training rows were released after the LMM rotation (a Lasso problem "
                               "on a cohort whose problems are LMM)")
        return self.Xtr

    def nbytes(self) -> int:
        arrays = (self.Xtr, self.Xte, self.rotated, self.means, *(self.eig or ()))
        return sum(a.nbytes for a in arrays if a is not None)


def fold_designs(X: np.ndarray, k: int = K_FOLDS) -> list[FoldDesign]:
    """Every fold's standardized training and test rows (as :func:`models.normalize` makes them)."""
    out = []
    for train, test in folds(len(X), k):
        Xtr, Xte = models.normalize_rows(X, train, test)
        out.append(FoldDesign(train, test, Xtr, Xte))
    return out


def full_design(X: np.ndarray) -> FoldDesign:
    """The final fit's design: every sample standardized, as a fold whose training rows are all samples and
    that has no test rows (so LMM problems share its eigen-decomposition and rotation the same way)."""
    Xn = models.normalize_all(X)
    return FoldDesign(np.arange(len(X)), np.arange(0), Xn, np.empty((0, X.shape[1])))  # no view: Xn can go


def _fit_grid(design: FoldDesign, Y: np.ndarray, Zn: np.ndarray | None, kind: str, grid: Sequence[float]):
    e_Y, beta_Z = models.residualize(Y, Zn)
    e = e_Y.ravel()
    if kind == models.LMM:
        eig, rotated = design.lmm_basis()
        return models.lasso_grid(models.lmm_rotation(None, e, eig, rotated), e, grid), beta_Z
    return models.lasso_grid(design.training_rows(), e, grid, col_means=design.column_means()), beta_Z


def _genes_at(coef: np.ndarray, names: Sequence[str]) -> list[str]:
    return [names[i] for i in np.flatnonzero(coef)]


def tune_fast(data: ProblemData, designs: Sequence[FoldDesign] | None = None,
              grid: Sequence[float] = GRID) -> tuple[float, dict, dict]:
    """Whole-grid CV with exact solutions: one homotopy per fold instead of one solve per grid value.

    Returns (alpha, performance, convergence) where convergence holds the worst relative duality gap and
    KKT violation over every fold and grid value.
    """
    designs = designs if designs is not None else fold_designs(data.X)
    binary = is_binary(data.Y)
    per_alpha: list[list[dict]] = [[] for _ in grid]
    fold_genes: list[list[list[str]]] = [[] for _ in grid]  # per grid value, per fold: the selected genes
    worst_gap = 0.0
    worst_kkt = -np.inf
    rounds = []
    for fd in designs:
        Ztr = Zte = None
        if data.Z is not None:
            Ztr, Zte = models.normalize(data.Z[fd.train], data.Z[fd.test])
        sol, beta_Z = _fit_grid(fd, data.Y[fd.train], Ztr, data.kind, grid)
        worst_gap = max(worst_gap, float(sol.rel_gap.max()))
        worst_kkt = max(worst_kkt, float(sol.kkt_violation.max()))
        rounds.append(sol.rounds)
        base = 0.0 if Zte is None else models._z_ones(Zte) @ beta_Z.ravel()
        for j in range(len(grid)):
            pred = fd.Xte @ sol.coef[:, j] + sol.intercept[j] + base
            fold_genes[j].append(_genes_at(sol.coef[:, j], data.gene_names))
            per_alpha[j].append({
                "prediction": prediction_metrics_fast(data.Y[fd.test], pred, binary),
                "selection": selection_metrics(fold_genes[j][-1], data.ref_genes)})
    results = [(a, mean_performance(per_alpha[j])) for j, a in enumerate(grid)]
    alpha, perf = choose(results, binary)
    conv = {"cv_max_rel_duality_gap": worst_gap, "cv_max_kkt_violation": worst_kkt,
            "cv_working_set_rounds": rounds,
            # which genes each CV fold selected at the chosen value: the report's stability plot
            "cv_fold_selection": {"alpha": alpha, "folds": fold_genes[list(grid).index(alpha)]
                                  if alpha in grid else []}}
    return alpha, perf, conv


def final_fast(data: ProblemData, alpha: float, design: FoldDesign | None = None) -> tuple[dict, dict]:
    """Exact fit on all samples at ``alpha``; significant genes with name order breaking |coef| ties.

    ``design``: :func:`full_design` of data.X when the caller shares it between the problems of a cohort
    (with an LMM problem's eigen-decomposition and U'X: on a 1,220-sample cohort ~4.5 + 1 of a problem's
    ~20 CPU-s)."""
    design = design if design is not None else full_design(data.X)
    Zn = models.normalize(data.Z)[0] if data.Z is not None else None
    sol, beta_Z = _fit_grid(design, data.Y, Zn, data.kind, [alpha])
    coefs = sol.coef[:, 0]
    if beta_Z is not None:
        coefs = np.concatenate((beta_Z[1:].ravel(), coefs))
    var_names = ([data.condition] if data.condition else []) + list(data.gene_names)
    sig = models.significant_genes(var_names, data.trait, data.condition, coefs, None, stable=True)
    conv = {"final_rel_duality_gap": float(sol.rel_gap[0]), "final_kkt_violation": float(sol.kkt_violation[0]),
            "final_working_set": sol.working_set}
    return sig, conv

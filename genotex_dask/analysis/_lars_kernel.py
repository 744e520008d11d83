"""Compiled LARS-lasso homotopy that evaluates a whole grid of penalties from one path, resumably.

Why our own: scikit-learn's ``lars_path`` spends ~0.5 ms of interpreter and allocation overhead per
breakpoint, and fast mode walks hundreds of breakpoints per fold.  This kernel walks the same path
(Efron et al.'s lasso modification: variables enter when their correlation reaches the bound and leave when
their coefficient crosses zero) with a Cholesky factor of the active Gram matrix updated by one row per
entry.  Objective, in correlation scale: lambda = n * alpha for ||y - Xw||^2 / (2n) + alpha * ||w||_1 on
centered X, y.

Why resumable: the caller walks on a working set of genes and checks the rest on the KKT conditions; the
walk stops at each grid value (exactly: the path is linear in lambda between breakpoints) and every few
breakpoints with its whole state in the caller's arrays, so genes can join the working set and the walk
can continue from a certified point instead of restarting from lambda_max.

It reports failure (status != 0) instead of guessing on degenerate data; the caller then falls back to
scikit-learn's path.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.extending import register_jitable  # helpers inlined into the kernel, not separate dispatchers


@register_jitable
def _chol_add(XT, L, act, na, add):
    """Append gene ``add`` as row ``na`` of the Cholesky factor of the active Gram; False when singular."""
    xa = XT[add]
    for i in range(na):  # contiguous rows: vectorized dot products, not one dependent add chain
        s = np.dot(XT[act[i]], xa)
        if i:
            s -= np.dot(L[na, :i], L[i, :i])
        L[na, i] = s / L[i, i]
    diag = np.dot(xa, xa)
    s = diag
    if na:
        s -= np.dot(L[na, :na], L[na, :na])
    if s <= 1e-10 * diag:
        return False
    L[na, na] = np.sqrt(s)
    return True


@register_jitable
def _chol_drop(L, act, sgn, na, drop):
    """Remove active gene ``drop`` (its row and column) from the factor; returns the new size or -1."""
    pos = 0
    for i in range(na):
        if act[i] == drop:
            pos = i
    for i in range(pos, na - 1):
        act[i] = act[i + 1]
        sgn[i] = sgn[i + 1]
        for q in range(i + 2):
            L[i, q] = L[i + 1, q]
    na -= 1
    # the shifted rows stick out one column past the diagonal: Givens rotations on column pairs
    # restore a lower-triangular factor of the same Gram matrix (L Q Q' L' = L L')
    for i in range(pos, na):
        x0 = L[i, i]
        x1 = L[i, i + 1]
        h = np.sqrt(x0 * x0 + x1 * x1)
        cs = x0 / h
        sn = x1 / h
        for q in range(i, na):
            v0 = L[q, i]
            v1 = L[q, i + 1]
            L[q, i] = cs * v0 + sn * v1
            L[q, i + 1] = -sn * v0 + cs * v1
        L[i, i + 1] = 0.0
        if L[i, i] < 0.0:
            for q in range(i, na):
                L[q, i] = -L[q, i]
        if L[i, i] <= 1e-300:
            return -1
    for i in range(na):
        L[i, na] = 0.0
    return na


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def lars_walk(XT, y, lam_stop, max_steps, w, active, act, sgn, L, ist, fst):
    """Walk the LARS-lasso path on the rows of XT (m x n) from the state given, down to ``lam_stop``.

    The state lives in the caller's arrays and is updated in place: coefficients ``w`` and flags ``active``
    (capacity >= m), active genes ``act`` with signs ``sgn``, the Cholesky factor ``L`` of their Gram,
    ``ist[0]`` = number active, ``fst[0]`` = current lambda (correlation scale).  Between calls the state
    is always complete (no pending entry or exit), so the caller can append rows to XT (new inactive genes,
    which must satisfy |x_j' r| <= lambda there) and resume exactly: the residual and the correlations are
    recomputed from ``w`` on entry.  With no active gene the walk starts at lambda_max of these rows.

    Returns (status, steps, reason): status 0 = fine, 1 = singular active set; reason 0 = stopped exactly at
    ``lam_stop``, 1 = ``max_steps`` breakpoints taken (a checkpoint above ``lam_stop``), 2 = no breakpoint
    left above lambda = 0 (cannot happen for lam_stop > 0).
    """
    m, n = XT.shape
    na = ist[0]
    lam = fst[0]
    r = y.copy()
    for i in range(na):
        ai = act[i]
        wi = w[ai]
        for t in range(n):
            r[t] -= wi * XT[ai, t]
    c = np.dot(XT, r)
    if na == 0:
        lam = 0.0
        best = -1
        for j in range(m):
            if abs(c[j]) > lam:
                lam = abs(c[j])
                best = j
        if lam <= lam_stop or best < 0:
            fst[0] = lam_stop
            return 0, 0, 0  # w = 0 is the solution at lam_stop
        if not _chol_add(XT, L, act, 0, best):
            return 1, 0, 0
        act[0] = best
        sgn[0] = 1.0 if c[best] > 0 else -1.0
        active[best] = True
        na = 1
    for i in range(na):
        c[act[i]] = lam * sgn[i]
    u = np.zeros(n)
    d = np.zeros(n + 1)
    z = np.zeros(n + 1)
    steps = 0
    while True:
        if steps >= max_steps:
            ist[0] = na
            fst[0] = lam
            return 0, steps, 1
        steps += 1
        # direction: G_AA d = sgn
        for i in range(na):
            s = sgn[i]
            if i:
                s -= np.dot(L[i, :i], z[:i])
            z[i] = s / L[i, i]
        # L' d = z, column-oriented: row i of L (contiguous) updates the unknowns above it; the textbook
        # row-oriented form walks a column of L per unknown, one cache miss per entry at |A| ~ n
        for i in range(na):
            d[i] = z[i]
        for i in range(na - 1, -1, -1):
            di = d[i] / L[i, i]
            d[i] = di
            for q in range(i):
                d[q] -= L[i, q] * di
        for t in range(n):
            u[t] = 0.0
        for i in range(na):
            ai = act[i]
            di = d[i]
            for t in range(n):
                u[t] += di * XT[ai, t]
        gamma = lam  # at most down to lambda = 0
        add = -1
        drop = -1
        a = np.dot(XT, u)
        for j in range(m):
            if active[j]:
                continue
            s = a[j]
            den = 1.0 - s
            if den > 1e-12:
                gj = (lam - c[j]) / den
                if 0.0 < gj < gamma:
                    gamma = gj
                    add = j
            den = 1.0 + s
            if den > 1e-12:
                gj = (lam + c[j]) / den
                if 0.0 < gj < gamma:
                    gamma = gj
                    add = j
        for i in range(na):
            ai = act[i]
            if d[i] != 0.0:
                gj = -w[ai] / d[i]
                if 0.0 < gj < gamma:
                    gamma = gj
                    drop = ai
                    add = -1
        hit = False
        if gamma >= lam - lam_stop:
            gamma = lam - lam_stop
            add = -1
            drop = -1
            hit = True
        new_lam = lam_stop if hit else lam - gamma
        for i in range(na):
            w[act[i]] += gamma * d[i]
        for j in range(m):
            if not active[j]:
                c[j] -= gamma * a[j]
        for i in range(na):
            c[act[i]] = new_lam * sgn[i]
        lam = new_lam
        if add >= 0:
            if na + 1 >= act.shape[0] or not _chol_add(XT, L, act, na, add):
                ist[0] = na
                fst[0] = lam
                return 1, steps, 0
            act[na] = add
            sgn[na] = 1.0 if c[add] > 0 else -1.0
            active[add] = True
            na += 1
        elif drop >= 0:
            active[drop] = False
            w[drop] = 0.0
            na = _chol_drop(L, act, sgn, na, drop)
            if na < 0:
                return 1, steps, 0
        elif not hit:
            ist[0] = na
            fst[0] = lam
            return 0, steps, 2
        if hit:
            ist[0] = na
            fst[0] = lam
            return 0, steps, 0


def _walk_state(m: int, n: int) -> tuple:
    """Fresh state arrays for :func:`lars_walk`: w, active, act, sgn, L, ist, fst."""
    return (np.zeros(m), np.zeros(m, dtype=np.bool_), np.zeros(n + 1, dtype=np.int64), np.zeros(n + 1),
            np.zeros((n + 1, n + 1)), np.zeros(1, dtype=np.int64), np.full(1, np.inf))


def grid_path_t(XT: np.ndarray, y: np.ndarray, lams: np.ndarray, max_steps: int) -> tuple[np.ndarray, int, int]:
    """Lasso solutions at the penalties ``lams`` (correlation scale, decreasing) for the design XT' (m x n, the
    transposed design): one walk down the whole path, no working-set checks.

    Returns (coef m x k, steps, status): status 0 = every penalty reached, 1 = singular active set,
    2 = step budget exhausted.
    """
    XT = np.ascontiguousarray(XT, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    m, n = XT.shape
    k = len(lams)
    coef = np.zeros((m, k))
    state = _walk_state(m, n)
    w, _, act, _, _, ist, _ = state
    steps = 0
    for g in range(k):
        status, s, reason = lars_walk(XT, y, float(lams[g]), int(max_steps) - steps, *state)
        steps += int(s)
        if status != 0:
            return coef, steps, 1
        if reason != 0:
            return coef, steps, 2
        A = act[: int(ist[0])]
        coef[A, g] = w[A]
    return coef, steps, 0


def grid_path(X: np.ndarray, y: np.ndarray, lams: np.ndarray, max_steps: int) -> tuple[np.ndarray, int, int]:
    """Same as :func:`grid_path_t` for the design X (n x m)."""
    return grid_path_t(np.ascontiguousarray(X.T, dtype=np.float64), y, lams, max_steps)

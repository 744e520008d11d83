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
def _dots(M, rows, k, v, out):
    """out[q] = M[rows[q]] . v for q < k, four rows at a time: each load of v serves four products (one row at a
    time, the loads of v and of the row compete for the same load ports and the pass is not memory-bound)."""
    n = v.shape[0]
    q = 0
    while q + 4 <= k:
        r0 = M[rows[q]]
        r1 = M[rows[q + 1]]
        r2 = M[rows[q + 2]]
        r3 = M[rows[q + 3]]
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        for t in range(n):
            vt = v[t]
            s0 += r0[t] * vt
            s1 += r1[t] * vt
            s2 += r2[t] * vt
            s3 += r3[t] * vt
        out[q] = s0
        out[q + 1] = s1
        out[q + 2] = s2
        out[q + 3] = s3
        q += 4
    while q < k:
        r0 = M[rows[q]]
        s0 = 0.0
        for t in range(n):
            s0 += r0[t] * v[t]
        out[q] = s0
        q += 1


@register_jitable
def _combine(M, rows, k, coef, u):
    """u = sum_q coef[q] M[rows[q]] (q < k), four rows at a time: one load and store of u per four rows."""
    n = u.shape[0]
    for t in range(n):
        u[t] = 0.0
    q = 0
    while q + 4 <= k:
        r0 = M[rows[q]]
        r1 = M[rows[q + 1]]
        r2 = M[rows[q + 2]]
        r3 = M[rows[q + 3]]
        c0 = coef[q]
        c1 = coef[q + 1]
        c2 = coef[q + 2]
        c3 = coef[q + 3]
        for t in range(n):
            u[t] += c0 * r0[t] + c1 * r1[t] + c2 * r2[t] + c3 * r3[t]
        q += 4
    while q < k:
        r0 = M[rows[q]]
        c0 = coef[q]
        for t in range(n):
            u[t] += c0 * r0[t]
        q += 1


@register_jitable
def _combine_and_dots(M, rows, k, coef, u, v, out):
    """:func:`_combine` and :func:`_dots` (with v) in one pass over the rows."""
    n = u.shape[0]
    for t in range(n):
        u[t] = 0.0
    q = 0
    while q + 4 <= k:
        r0 = M[rows[q]]
        r1 = M[rows[q + 1]]
        r2 = M[rows[q + 2]]
        r3 = M[rows[q + 3]]
        c0 = coef[q]
        c1 = coef[q + 1]
        c2 = coef[q + 2]
        c3 = coef[q + 3]
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        for t in range(n):
            x0 = r0[t]
            x1 = r1[t]
            x2 = r2[t]
            x3 = r3[t]
            vt = v[t]
            u[t] += c0 * x0 + c1 * x1 + c2 * x2 + c3 * x3
            s0 += x0 * vt
            s1 += x1 * vt
            s2 += x2 * vt
            s3 += x3 * vt
        out[q] = s0
        out[q + 1] = s1
        out[q + 2] = s2
        out[q + 3] = s3
        q += 4
    while q < k:
        r0 = M[rows[q]]
        c0 = coef[q]
        s0 = 0.0
        for t in range(n):
            x0 = r0[t]
            u[t] += c0 * x0
            s0 += x0 * v[t]
        out[q] = s0
        q += 1


@register_jitable
def _chol_add(XT, L, act, na, add, g, have_g):
    """Append gene ``add`` as row ``na`` of the Cholesky factor of the active Gram; False when singular.
    ``g[:na]`` holds its products with the active rows when ``have_g`` (else scratch for them)."""
    xa = XT[add]
    n = xa.shape[0]
    if not have_g:
        _dots(XT, act, na, xa, g)
    for i in range(na):
        s = g[i]
        for q in range(i):
            s -= L[na, q] * L[i, q]
        L[na, i] = s / L[i, i]
    diag = 0.0
    for t in range(n):
        diag += xa[t] * xa[t]
    s = diag
    for q in range(na):
        s -= L[na, q] * L[na, q]
    if s <= 1e-10 * diag:
        return False
    L[na, na] = np.sqrt(s)
    return True


_DROP_BLOCK = 8  # rows rotated together when a gene leaves the factor


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
    # the shifted rows stick out one column past the diagonal: Givens rotations on column pairs (i, i+1),
    # i = pos.., restore a lower-triangular factor of the same Gram matrix (L Q Q' L' = L L').  Row q takes
    # rotations pos..q-1 in order and then fixes rotation q with its own pair.  By blocks of rows: the
    # rotations fixed above a block are applied to its rows together (independent dependency chains, and the
    # block's cache lines stay in L1 from one rotation to the next), then the block's own rotations row by
    # row.  Column by column (each rotation down all rows) would touch one cache line per row below it, and row
    # by row alone is one serial chain per row: drops are frequent near |A| ~ n
    cs = np.empty(na)
    sn = np.empty(na)
    for q0 in range(pos, na, _DROP_BLOCK):
        q1 = min(q0 + _DROP_BLOCK, na)
        for i in range(pos, q0):
            ci = cs[i]
            si = sn[i]
            for q in range(q0, q1):
                v0 = L[q, i]
                v1 = L[q, i + 1]
                L[q, i] = ci * v0 + si * v1
                L[q, i + 1] = -si * v0 + ci * v1
        for q in range(q0, q1):
            for i in range(q0, q):
                v0 = L[q, i]
                v1 = L[q, i + 1]
                L[q, i] = cs[i] * v0 + sn[i] * v1
                L[q, i + 1] = -sn[i] * v0 + cs[i] * v1
            x0 = L[q, q]
            x1 = L[q, q + 1]
            h = np.sqrt(x0 * x0 + x1 * x1)
            if h <= 1e-300:
                return -1
            cs[q] = x0 / h
            sn[q] = x1 / h
            L[q, q] = h
            L[q, q + 1] = 0.0
    for i in range(na):
        L[i, na] = 0.0
    return na


@register_jitable
def _forward(L, sgn, z, lo, hi):
    """Rows lo..hi-1 of the forward solve L z = sgn (rows above lo already solved)."""
    for i in range(lo, hi):
        s = sgn[i]
        for q in range(i):
            s -= L[i, q] * z[q]
        z[i] = s / L[i, i]


#: bound on |x32' u - x' u| / (||x|| ||u||) for a float32 copy x32 of a row x: each entry is rounded by at most
#: 2^-24 relative and the float64 accumulation adds ~n 2^-53 (negligible below n ~ 10^6); doubled for safety
#: (which also covers taking ||x|| from the float32 row)
SCREEN_EPS = 2.0 ** -23


@register_jitable
def _entry_step(lam, cj, aj, gamma):
    """The step at which an inactive gene (correlation cj, slope aj) reaches the bound +-lam, when it is in
    (0, gamma); gamma otherwise."""
    den = 1.0 - aj
    if den > 1e-12:
        g = (lam - cj) / den
        if 0.0 < g < gamma:
            gamma = g
    den = 1.0 + aj
    if den > 1e-12:
        g = (lam + cj) / den
        if 0.0 < g < gamma:
            gamma = g
    return gamma


@register_jitable
def _entry_step_floor(lam, cj, aj, ec, ea):
    """A lower bound of :func:`_entry_step` (with gamma = inf) over every correlation within ec of cj and every
    slope within ea of aj (0 when the step may be arbitrarily small)."""
    lo = np.inf
    hi_den = 1.0 - aj + ea
    if hi_den > 1e-12:
        num = lam - cj - ec
        lo = num / hi_den if num > 0.0 else 0.0
    hi_den = 1.0 + aj + ea
    if hi_den > 1e-12:
        num = lam + cj - ec
        g = num / hi_den if num > 0.0 else 0.0
        if g < lo:
            lo = g
    return lo


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def lars_walk(XT, X32, eps, y, lam_stop, max_steps, w, active, act, sgn, L, ist, fst):
    """Walk the LARS-lasso path on the rows of XT (m x n) from the state given, down to ``lam_stop``.

    ``X32`` is a float32 copy of XT's rows: each breakpoint screens the inactive genes with it (half the bytes
    of that pass over the inactive rows, one of a breakpoint's three main costs) under the bound ``eps`` * ||x_j|| ||u|| of its
    error on x_j' u (:data:`SCREEN_EPS` for float32 rounding), and only the genes that may enter first (a
    handful) are evaluated exactly in float64, with the exact residual; the correlations of the others carry
    their accumulated error bound.  The path taken is the exact one.

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
        if not _chol_add(XT, L, act, 0, best, np.zeros(1), False):
            return 1, 0, 0
        act[0] = best
        sgn[0] = 1.0 if c[best] > 0 else -1.0
        active[best] = True
        na = 1
    for i in range(na):
        c[act[i]] = lam * sgn[i]
    nx = np.empty(m)  # row norms, for the screening bound
    for j in range(m):
        s = 0.0
        for t in range(n):
            s += np.float64(X32[j, t]) * X32[j, t]
        nx[j] = np.sqrt(s)
    err = np.zeros(m)  # bound on |c_j - x_j' r| of each inactive gene (0: c was computed exactly)
    a = np.zeros(m)
    floor = np.zeros(m)
    cand = np.zeros(m, dtype=np.int64)
    u = np.zeros(n)
    d = np.zeros(n + 1)
    z = np.zeros(n + 1)
    _forward(L, sgn, z, 0, na)
    gs = np.zeros(n + 1)
    idx = np.zeros(m, dtype=np.int64)  # the inactive rows, in order
    sa = np.zeros(m)
    spec = -1
    steps = 0
    while True:
        if steps >= max_steps:
            ist[0] = na
            fst[0] = lam
            return 0, steps, 1
        steps += 1
        # direction: G_AA d = sgn, i.e. L z = sgn (z kept up to date by entries and drops) and L' d = z,
        # column-oriented: row i of L (contiguous) updates the unknowns above it; the textbook
        # row-oriented form walks a column of L per unknown, one cache miss per entry at |A| ~ n
        for i in range(na):
            d[i] = z[i]
        for i in range(na - 1, -1, -1):
            di = d[i] / L[i, i]
            d[i] = di
            for q in range(i):
                d[q] -= L[i, q] * di
        # u = X_A d, and in the same pass over the active rows their products with the gene guessed to enter
        # at this breakpoint (the runner-up of the last screen, or its best after a drop: right ~90% of the
        # time on TCGA-size folds), which the Cholesky row of an entering gene needs
        guessed = spec if spec >= 0 and not active[spec] else -1
        if guessed >= 0:
            _combine_and_dots(XT, act, na, d, u, XT[guessed], gs)
        else:
            _combine(XT, act, na, d, u)
        un = 0.0
        for t in range(n):
            un += u[t] * u[t]
        ea_unit = eps * np.sqrt(un)
        # screen: slopes of the inactive genes from the float32 rows (active genes have x_j' u = sgn_j:
        # their rows are not read), a floor of each gene's entry step, and the best guess
        ghat = np.inf
        jhat = -1
        g2 = np.inf
        j2 = -1
        k = 0
        for j in range(m):
            if not active[j]:
                idx[k] = j
                k += 1
        _dots(X32, idx, k, u, sa)
        for q in range(k):
            j = idx[q]
            s = sa[q]
            a[j] = s
            g = _entry_step(lam, c[j], s, np.inf)
            if g < ghat:
                g2 = ghat
                j2 = jhat
                ghat = g
                jhat = j
            elif g < g2:
                g2 = g
                j2 = j
            floor[j] = _entry_step_floor(lam, c[j], s, err[j], ea_unit * nx[j])
        # an upper bound of the step: the guess evaluated exactly, the drops, the stop at lam_stop
        gamma = lam
        if jhat >= 0:
            s = 0.0
            cj = 0.0
            for t in range(n):
                s += XT[jhat, t] * u[t]
                cj += XT[jhat, t] * r[t]
            gamma = _entry_step(lam, cj, s, gamma)
        for i in range(na):
            ai = act[i]
            if d[i] != 0.0:
                gj = -w[ai] / d[i]
                if 0.0 < gj < gamma:
                    gamma = gj
        if lam - lam_stop < gamma:
            gamma = lam - lam_stop
        cut = gamma * (1.0 + 1e-9) + 1e-300
        # exact pass over the genes whose floor is below it, in gene order (the first strict minimum wins)
        nc = 0
        gamma = lam  # at most down to lambda = 0
        add = -1
        drop = -1
        for j in range(m):
            if active[j] or floor[j] > cut:
                continue
            s = 0.0
            cj = 0.0
            for t in range(n):
                s += XT[j, t] * u[t]
                cj += XT[j, t] * r[t]
            a[j] = s
            c[j] = cj
            err[j] = 0.0
            cand[nc] = j
            nc += 1
            g = _entry_step(lam, cj, s, gamma)
            if g < gamma:
                gamma = g
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
        for t in range(n):
            r[t] -= gamma * u[t]
        step_err = gamma * ea_unit
        for j in range(m):
            if not active[j]:
                c[j] -= gamma * a[j]
                err[j] += step_err * nx[j]
        for q in range(nc):
            err[cand[q]] = 0.0  # their slopes were exact
        for i in range(na):
            c[act[i]] = new_lam * sgn[i]
        lam = new_lam
        spec = j2 if add >= 0 else jhat
        if add >= 0:
            if na + 1 >= act.shape[0] or not _chol_add(XT, L, act, na, add, gs, add == guessed):
                ist[0] = na
                fst[0] = lam
                return 1, steps, 0
            act[na] = add
            sgn[na] = 1.0 if c[add] > 0 else -1.0
            active[add] = True
            _forward(L, sgn, z, na, na + 1)  # the new row of L: one more unknown, O(|A|)
            na += 1
        elif drop >= 0:
            active[drop] = False
            w[drop] = 0.0
            err[drop] = 0.0  # its correlation is the bound, exactly
            pos = 0
            for i in range(na):
                if act[i] == drop:
                    pos = i
            na = _chol_drop(L, act, sgn, na, drop)
            if na < 0:
                return 1, steps, 0
            _forward(L, sgn, z, pos, na)  # rows from the dropped one on were rotated
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


def grid_path_t(XT: np.ndarray, y: np.ndarray, lams: np.ndarray, max_steps: int,
                screen: tuple[np.ndarray, float] | None = None) -> tuple[np.ndarray, int, int]:
    """Lasso solutions at the penalties ``lams`` (correlation scale, decreasing) for the design XT' (m x n, the
    transposed design): one walk down the whole path, no working-set checks.  ``screen`` = (copy of XT, its
    error bound) replaces the float32 screening copy (the tests use a coarser one).

    Returns (coef m x k, steps, status): status 0 = every penalty reached, 1 = singular active set,
    2 = step budget exhausted.
    """
    XT = np.ascontiguousarray(XT, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    m, n = XT.shape
    k = len(lams)
    coef = np.zeros((m, k))
    X32, eps = screen if screen is not None else (XT.astype(np.float32), SCREEN_EPS)
    X32 = np.ascontiguousarray(X32, dtype=np.float32)
    state = _walk_state(m, n)
    w, _, act, _, _, ist, _ = state
    steps = 0
    for g in range(k):
        status, s, reason = lars_walk(XT, X32, float(eps), y, float(lams[g]), int(max_steps) - steps, *state)
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

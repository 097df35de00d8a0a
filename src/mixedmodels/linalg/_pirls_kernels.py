"""Compiled loops for PIRLS with scalar terms: a sparse LDL' of the whole penalized system.

When every random-effects term has one column, PIRLS's system
``[Lambda'Z'WZ Lambda + I, Lambda'Z'WX; X'WZ Lambda, X'WX]`` has a pattern
fixed by the grouping factors, often very sparse: on grouseticks
(observation-level ``INDEX``, ``BROOD`` nested in ``LOCATION``) every column
of the factor has a handful of entries, while the dense rest block that
:mod:`.pirls_scalar` factors with LAPACK has 185 rows.  These kernels are
Tim Davis's LDL (ACM TOMS 32(2), 2006): :func:`ldl_symbolic` finds the
elimination tree and the column counts once per model, and one pass of
:func:`ldl_numeric` the pattern of L; each PIRLS iteration then calls
:func:`assemble` (the values for new weights), :func:`ldl_mapped` (the
random-effects block, column by column on the known pattern) and
:func:`block_solve` (the fixed-effects rows as a dense Schur complement, and
the solution).

As in :mod:`._kernels`, each kernel is one plain-Python function that numba
compiles on first use (:func:`compiled` gives None without numba or with
``MIXEDMODELS_NO_NUMBA=1``; callers then keep the numpy path); the tests run
the Python bodies against the numpy path and the compiled ones against them.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ._kernels import jit

__all__ = [
    "compiled",
    "ldl_symbolic",
    "assemble",
    "ldl_numeric",
    "ldl_mapped",
    "block_solve",
    "linear_predictor",
    "selected_inverse",
    "ldl_solve",
    "row_sums",
    "weighted_columns",
]


def ldl_symbolic(
    ap: np.ndarray, ai: np.ndarray, lp: np.ndarray, parent: np.ndarray, lnz: np.ndarray, flag: np.ndarray
) -> None:
    """Elimination tree (``parent``, -1 at roots) and column pointers ``lp`` of L for the
    upper-triangular CSC pattern ``(ap, ai)`` (column k holds rows i <= k); ``lnz``, ``flag`` are work."""
    n = ap.shape[0] - 1
    for k in range(n):
        parent[k] = -1
        flag[k] = k
        lnz[k] = 0
        for p in range(ap[k], ap[k + 1]):
            i = ai[p]
            while i < k and flag[i] != k:  # walk up the tree from i to the root of k's subtree
                if parent[i] == -1:
                    parent[i] = k
                lnz[i] += 1
                flag[i] = k
                i = parent[i]
    lp[0] = 0
    for k in range(n):
        lp[k + 1] = lp[k] + lnz[k]


def assemble(
    p: int,
    entries: np.ndarray,
    pair_vals: np.ndarray,
    cols: np.ndarray,
    vals: np.ndarray,
    column_of: np.ndarray,
    ai: np.ndarray,
    shift: np.ndarray,
    lam: np.ndarray,
    w: np.ndarray,
    zw: np.ndarray,
    x: np.ndarray,
    ax: np.ndarray,
    y: np.ndarray,
    s: np.ndarray,
) -> None:
    """The system's values for weights ``w`` and working response ``zw``, observation by observation.

    Observation i adds ``w_i pair_vals[i, t]`` to entry ``entries[i, t]`` of the random-effects
    block; ``ax[e]`` is then scaled by ``lambda_r lambda_c`` of its column and row (``lam``) and
    ``shift[e]`` (1 on the diagonal) added.  ``y`` (n x p+1) gets ``Lambda Z' W [X z]`` (Z's row i:
    ``vals[i]`` at ``cols[i]``) and ``s`` (p x p+1) the lower triangle of ``X'WX`` and ``X'W z``;
    ``p = 0`` for the system in u alone.
    """
    ax[:] = 0.0
    y[:, :] = 0.0
    s[:, :] = 0.0
    for i in range(w.shape[0]):
        wi = w[i]
        wzi = wi * zw[i]
        for t in range(entries.shape[1]):
            ax[entries[i, t]] += pair_vals[i, t] * wi
        for t in range(cols.shape[1]):
            r = cols[i, t]
            v = vals[i, t] * wi
            for c in range(p):
                y[r, c] += v * x[i, c]
            y[r, p] += vals[i, t] * wzi
        for a in range(p):
            v = wi * x[i, a]
            for b in range(a + 1):
                s[a, b] += v * x[i, b]
            s[a, p] += x[i, a] * wzi
    for e in range(ax.shape[0]):
        ax[e] = lam[column_of[e]] * lam[ai[e]] * ax[e] + shift[e]
    for r in range(y.shape[0]):
        for c in range(p + 1):
            y[r, c] *= lam[r]


def ldl_numeric(
    ap: np.ndarray,
    ai: np.ndarray,
    ax: np.ndarray,
    lp: np.ndarray,
    parent: np.ndarray,
    lnz: np.ndarray,
    li: np.ndarray,
    lx: np.ndarray,
    d: np.ndarray,
    work: np.ndarray,
    pattern: np.ndarray,
    flag: np.ndarray,
) -> float:
    """``L D L'`` of the upper-triangular CSC ``(ap, ai, ax)`` (LDL's ``ldl_numeric``: row k of L from
    a sparse triangular solve along the elimination tree); L's columns go to ``(lp, lnz, li, lx)``.

    Returns ``sum(log D)`` (the log-determinant), or nan as soon as a pivot is not positive.
    """
    n = ap.shape[0] - 1
    logdet, product = 0.0, 1.0
    for k in range(n):
        work[k] = 0.0
        top = n
        flag[k] = k
        lnz[k] = 0
        for q in range(ap[k], ap[k + 1]):
            i = ai[q]
            work[i] += ax[q]
            length = 0
            while flag[i] != k:
                pattern[length] = i
                length += 1
                flag[i] = k
                i = parent[i]
            while length > 0:
                top -= 1
                length -= 1
                pattern[top] = pattern[length]
        d[k] = work[k]
        work[k] = 0.0
        for t in range(top, n):
            i = pattern[t]
            yi = work[i]
            work[i] = 0.0
            end = lp[i] + lnz[i]
            for q in range(lp[i], end):
                work[li[q]] -= lx[q] * yi
            lki = yi / d[i]
            d[k] -= lki * yi
            li[end] = k
            lx[end] = lki
            lnz[i] += 1
        if not d[k] > 0.0:  # not positive definite (or nan)
            return np.nan
        product *= d[k]  # one log per ~100 pivots, not per pivot (a third of the time)
        if not 1e-100 < product < 1e100:
            logdet += np.log(product)
            product = 1.0
    return logdet + np.log(product)


def ldl_mapped(
    amap: np.ndarray,
    ax: np.ndarray,
    pair_ptr: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    target: np.ndarray,
    lp: np.ndarray,
    vals: np.ndarray,
) -> float:
    """``L D L'`` column by column on a known pattern: L's entries in ``vals[:lp[-1]]`` (CSC), D after them.

    ``vals`` starts as the matrix (entry e of ``ax`` added at ``amap[e]``).  Column j's pivot is
    ``vals[lp[-1] + j]``; for each pair of its entries (positions ``first``, ``second`` from
    ``pair_ptr[j]`` on, rows r1 <= r2) ``c_r1 c_r2 / d_j`` comes off ``target`` (L's (r2, r1) or
    pivot r1), then the column is divided by ``d_j``.  Once the pattern and the pairs are known
    (:class:`.pirls_scalar.SparseScalarSystem`) this is all the factorization does, with none of
    :func:`ldl_numeric`'s tree walks.  Returns ``sum(log D)``, or nan at a pivot that is not positive.
    """
    vals[:] = 0.0
    for e in range(ax.shape[0]):
        vals[amap[e]] += ax[e]
    n, nnz = lp.shape[0] - 1, lp[-1]
    logdet, product = 0.0, 1.0
    for j in range(n):
        dj = vals[nnz + j]
        if not dj > 0.0:  # not positive definite (or nan)
            return np.nan
        product *= dj  # one log per ~100 pivots, not per pivot
        if not 1e-100 < product < 1e100:
            logdet += np.log(product)
            product = 1.0
        for t in range(pair_ptr[j], pair_ptr[j + 1]):
            vals[target[t]] -= vals[first[t]] * vals[second[t]] / dj
        for q in range(lp[j], lp[j + 1]):
            vals[q] /= dj
    return logdet + np.log(product)


def block_solve(
    lp: np.ndarray,
    lnz: np.ndarray,
    li: np.ndarray,
    lx: np.ndarray,
    d: np.ndarray,
    y: np.ndarray,
    s: np.ndarray,
    u: np.ndarray,
    beta: np.ndarray,
) -> bool:
    """Solve ``[K_ZZ K_ZX; K_XZ K_XX] [u; beta] = [b_Z; b_X]`` given ``K_ZZ = L D L'`` (from
    :func:`ldl_numeric`), ``y = [K_ZX b_Z]`` and ``s = [K_XX b_X]`` (lower triangle), both overwritten.

    ``y <- L^-1 y`` column by column of L; the Schur complement ``K_XX - Y_X' D^-1 Y_X`` is factored
    by a dense Cholesky (p x p); ``u = L'^-1 D^-1 (y_b - Y_X beta)``.  False when the Schur
    complement is not positive definite.
    """
    n, p = y.shape[0], y.shape[1] - 1
    for i in range(n):
        for q in range(lp[i], lp[i] + lnz[i]):
            r, value = li[q], lx[q]
            for c in range(p + 1):
                y[r, c] -= value * y[i, c]
    for i in range(n):
        inv = 1.0 / d[i]
        for a in range(p):
            v = y[i, a] * inv
            for b in range(a + 1):
                s[a, b] -= v * y[i, b]
            s[a, p] -= v * y[i, p]
    for j in range(p):  # Cholesky of s[:, :p], then the two triangular solves for beta
        for k in range(j):
            s[j, j] -= s[j, k] * s[j, k]
        if not s[j, j] > 0.0:
            return False
        s[j, j] = np.sqrt(s[j, j])
        for a in range(j + 1, p):
            for k in range(j):
                s[a, j] -= s[a, k] * s[j, k]
            s[a, j] /= s[j, j]
        for k in range(j):
            s[j, p] -= s[j, k] * s[k, p]
        s[j, p] /= s[j, j]
    for j in range(p - 1, -1, -1):
        beta[j] = s[j, p]
        for k in range(j + 1, p):
            beta[j] -= s[k, j] * beta[k]
        beta[j] /= s[j, j]
    for i in range(n):
        v = y[i, p]
        for c in range(p):
            v -= y[i, c] * beta[c]
        u[i] = v / d[i]
    for i in range(n - 1, -1, -1):
        for q in range(lp[i], lp[i] + lnz[i]):
            u[i] -= lx[q] * u[li[q]]
    return True


def linear_predictor(cols: np.ndarray, vals: np.ndarray, v: np.ndarray, base: np.ndarray, out: np.ndarray) -> None:
    """``out = base + Z v`` with Z's rows given by their column ``cols[i]`` and value ``vals[i]`` per
    term (the sums in the order of scipy's CSR product, so the numbers are the same)."""
    for i in range(cols.shape[0]):
        total = 0.0
        for t in range(cols.shape[1]):
            total += vals[i, t] * v[cols[i, t]]
        out[i] = base[i] + total


def selected_inverse(lp: np.ndarray, li: np.ndarray, vals: np.ndarray, out: np.ndarray) -> None:
    """The entries of ``K^-1`` on the pattern of ``L + L'`` (and the diagonal) from ``K = L D L'``.

    ``vals`` is :func:`ldl_mapped`'s layout (L's strictly lower entries in CSC order, rows sorted
    within a column, then D); ``out`` gets ``K^-1`` in the same layout.  Takahashi's recurrences,
    from the last column back: with ``J`` the rows of L's column j,

        Z_ij = -sum_{k in J} Z_ik L_kj  (i in J),      Z_jj = 1/d_j - sum_{k in J} L_kj Z_kj,

    where every ``Z_ik`` (i, k in J) is already known and on the pattern (J is a clique of the
    filled graph, so the bisection finds it).  The cost is the sum of the squared column counts of L times a bisection.
    """
    n, nnz = lp.shape[0] - 1, lp[-1]
    for j in range(n - 1, -1, -1):
        start, stop = lp[j], lp[j + 1]
        for a in range(start, stop):
            i = li[a]
            total = 0.0
            for b in range(start, stop):
                k = li[b]
                if k == i:
                    total += out[nnz + i] * vals[b]
                    continue
                column, row = (k, i) if k < i else (i, k)
                lo, hi = lp[column], lp[column + 1]  # bisection for the row in the column's sorted rows
                while lo < hi:
                    mid = (lo + hi) // 2
                    if li[mid] < row:
                        lo = mid + 1
                    else:
                        hi = mid
                total += out[lo] * vals[b]
            out[a] = -total
        diagonal = 1.0 / vals[nnz + j]
        for a in range(start, stop):
            diagonal -= vals[a] * out[a]
        out[nnz + j] = diagonal


def ldl_solve(lp: np.ndarray, li: np.ndarray, vals: np.ndarray, rhs: np.ndarray) -> None:
    """``rhs <- K^-1 rhs`` (n x k, in place) for ``K = L D L'`` in :func:`ldl_mapped`'s layout."""
    n, nnz = lp.shape[0] - 1, lp[-1]
    k = rhs.shape[1]
    for j in range(n):
        for q in range(lp[j], lp[j + 1]):
            r, value = li[q], vals[q]
            for c in range(k):
                rhs[r, c] -= value * rhs[j, c]
    for j in range(n):
        inv = 1.0 / vals[nnz + j]
        for c in range(k):
            rhs[j, c] *= inv
    for j in range(n - 1, -1, -1):
        for q in range(lp[j], lp[j + 1]):
            r, value = li[q], vals[q]
            for c in range(k):
                rhs[j, c] -= value * rhs[r, c]


def row_sums(
    g_ptr: np.ndarray,
    g_obs: np.ndarray,
    g_vals: np.ndarray,
    z_ptr: np.ndarray,
    z_obs: np.ndarray,
    z_vals: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    zw: np.ndarray,
    p: int,
    g: np.ndarray,
    zwz: np.ndarray,
    zwx: np.ndarray,
) -> None:
    """The dense scalar system's weighted sums, row by row of two CSR matrices (pointers, observations, values).

    ``g = G w`` for the gather matrix G (the first term's diagonal, A21's and A22's entries),
    ``zwz = Z' (w zw)`` and the first ``p`` columns of ``zwx`` ``Z' W X`` (Z' as CSR).  Each sum
    starts at 0 and adds its row's entries in order, as scipy's CSR product does: the same numbers,
    without its per-call dispatch and temporaries.
    """
    for r in range(g_ptr.shape[0] - 1):
        total = 0.0
        for k in range(g_ptr[r], g_ptr[r + 1]):
            total += g_vals[k] * w[g_obs[k]]
        g[r] = total
    totals = np.empty(p)
    for r in range(z_ptr.shape[0] - 1):
        total = 0.0
        totals[:] = 0.0
        for k in range(z_ptr[r], z_ptr[r + 1]):
            i = z_obs[k]
            total += z_vals[k] * (w[i] * zw[i])
            for j in range(p):
                totals[j] += z_vals[k] * x[i, j] * w[i]
        zwz[r] = total
        for j in range(p):
            zwx[r, j] = totals[j]


def weighted_columns(
    z_rows: np.ndarray, z_vals: np.ndarray, w: np.ndarray, columns: np.ndarray, out: np.ndarray
) -> None:
    """``out = Z' diag(w) columns`` (q x k; Z's row i: ``z_vals[i]`` at ``z_rows[i]``), each sum in
    increasing i as scipy's CSR product of ``Z'`` with ``w columns`` adds them."""
    out[:, :] = 0.0
    for i in range(w.shape[0]):
        wi = w[i]
        for t in range(z_rows.shape[1]):
            r = z_rows[i, t]
            zv = z_vals[i, t]
            for c in range(columns.shape[1]):
                out[r, c] += zv * (wi * columns[i, c])


def compiled(name: str) -> Callable | None:
    """The numba-compiled version of this module's kernel ``name``, or None (see :func:`._kernels.jit`)."""
    return jit(globals()[name])

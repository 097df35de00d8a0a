"""Compiled kernels for the small dense system of :mod:`.dense_system`: one call per evaluation.

For sleepstudy (39 x 39) a factorization is ~8 numpy and LAPACK calls and a
gradient-and-Hessian call ~25, each of a few microseconds on tiny arrays; in
a fit that follows ``gc.collect()`` (caches cold) what costs is the number of
distinct calls, not the arithmetic.  :func:`dense_factor` forms ``Lambda~``,
``Omega = Lambda~' A Lambda~ + I~`` (from ``Lambda~``'s positions, not two
dense products) and its Cholesky factor in one call; :func:`dense_derivatives`
gives the gradient and exact Hessian of :meth:`.dense_system.DenseSystem.derivatives`
(the same formulas, the same pairs of positions) in one more.  The two
``N x N`` products of the Hessian go to BLAS (``np.dot``).

The kernels compute what the numpy path computes in a different order of
summation, so the two agree to rounding, not bit for bit (the tests state the
tolerance).  Without numba (or with ``MIXEDMODELS_NO_NUMBA=1``) :func:`compiled`
gives None and :mod:`.dense_system` keeps its numpy path.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .jit import jit

__all__ = ["compiled", "dense_factor", "dense_derivatives"]


def dense_factor(
    a: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    index: np.ndarray,
    entries: np.ndarray,
    nre: int,
    nfixef: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """``Lambda~``, the lower Cholesky factor ``L`` of ``Lambda~' A Lambda~ + I~``, ``B = A Lambda~``, the
    objective's pieces ``(log det L_re^2, log det L_x^2, L_yy^2)`` and LAPACK's ``info``.

    ``Lambda~`` is the identity past ``nre`` and ``entries[index[e]]`` at ``(rows[e], cols[e])``; so is ``B``'s
    column ``c`` the sum over the positions in column ``c`` of ``lambda_e A[:, rows_e]`` (past ``nre``: A's
    column), and ``Omega``'s row ``c`` that of ``lambda_e B[rows_e, :]`` (past ``nre``: B's row), then 1 on
    the random effects' diagonal.  ``info`` is 0, or (as ``dpotrf``'s) the 1-based column whose pivot is not
    positive.
    """
    size, npos = a.shape[0], rows.shape[0]
    pieces = np.zeros(3)
    lam = np.zeros((size, size))
    b = np.zeros((size, size))
    omega = np.zeros((size, size))
    for i in range(size):
        for j in range(nre, size):
            b[i, j] = a[i, j]
    for i in range(nre, size):
        lam[i, i] = 1.0
    for e in range(npos):
        r, c, v = rows[e], cols[e], entries[index[e]]
        lam[r, c] = v
        for i in range(size):
            b[i, c] += a[i, r] * v
    for i in range(nre, size):
        for j in range(size):
            omega[i, j] = b[i, j]
    for e in range(npos):
        r, c, v = rows[e], cols[e], entries[index[e]]
        for j in range(size):
            omega[c, j] += v * b[r, j]
    for i in range(nre):
        omega[i, i] += 1.0
    for j in range(size):  # Cholesky, row by row (the upper triangle zeroed, as dpotrf with clean=1)
        s = omega[j, j]
        for k in range(j):
            s -= omega[j, k] * omega[j, k]
        if not s > 0.0:
            return lam, omega, b, pieces, j + 1
        d = np.sqrt(s)
        omega[j, j] = d
        for i in range(j + 1, size):
            t = omega[i, j]
            for k in range(j):
                t -= omega[i, k] * omega[j, k]
            omega[i, j] = t / d
        for i in range(j):
            omega[i, j] = 0.0
    for i in range(nre):
        pieces[0] += np.log(omega[i, i])
    for i in range(nre, nre + nfixef):
        pieces[1] += np.log(omega[i, i])
    pieces[0] *= 2.0
    pieces[1] *= 2.0
    pieces[2] = omega[size - 1, size - 1] ** 2
    return lam, omega, b, pieces, 0


def dense_derivatives(
    a: np.ndarray,
    b: np.ndarray,
    lower: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    index: np.ndarray,
    ntheta: int,
    nlead: int,
    dof: float,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Gradient, Hessian and ``dtrtri``'s ``info`` of :meth:`.dense_system.DenseSystem.derivatives` (its formulas),
    from ``B = A Lambda~`` and the factor ``L`` of :func:`dense_factor`; ``P`` is the inverse of Omega's leading
    ``nlead`` rows, ``dof`` the residual degrees of freedom."""
    size = a.shape[0]
    gradient = np.zeros(ntheta)
    hessian = np.zeros((ntheta, ntheta))
    for j in range(size):
        if lower[j, j] == 0.0:
            return gradient, hessian, j + 1
    inverse = np.zeros((size, size))  # L^-1, column by column
    for j in range(size):
        inverse[j, j] = 1.0 / lower[j, j]
        for i in range(j + 1, size):
            t = 0.0
            for k in range(j, i):
                t += lower[i, k] * inverse[k, j]
            inverse[i, j] = -t / lower[i, i]
    lead = np.zeros((size, size))  # P = L_lead^-T L_lead^-1, padded with zeros
    for k in range(nlead):
        for i in range(k + 1):
            w = inverse[k, i]
            for j in range(k + 1):
                lead[i, j] += w * inverse[k, j]
    npos = rows.shape[0]
    q = np.dot(lead, np.ascontiguousarray(b.T))
    r = np.dot(b, q)
    z = inverse[size - 1].copy()
    bz = np.dot(b, z)
    residual = np.zeros(ntheta)
    zc = np.empty(npos)
    for e in range(npos):
        zc[e] = z[cols[e]]
        residual[index[e]] += 2.0 * zc[e] * bz[rows[e]]
        gradient[index[e]] += 2.0 * q[cols[e], rows[e]]
    weighted = np.zeros((ntheta, ntheta))
    for e in range(npos):
        re, ce, ke = rows[e], cols[e], index[e]
        for f in range(npos):
            rf, cf, kf = rows[f], cols[f], index[f]
            pair = a[re, rf]
            hessian[ke, kf] += (pair - r[re, rf]) * lead[ce, cf] - q[ce, rf] * q[cf, re]
            weighted[ke, kf] += zc[e] * pair * zc[f]
    omega_z = np.zeros((ntheta, size))  # Omega_k z = B' w_k + v_k
    for e in range(npos):
        k, re = index[e], rows[e]
        for m in range(size):
            omega_z[k, m] += zc[e] * b[re, m]
        omega_z[k, cols[e]] += bz[re]
    u = np.dot(omega_z, np.ascontiguousarray(inverse.T))
    for k in range(ntheta):
        gradient[k] += dof * residual[k]
    for k in range(ntheta):
        for m in range(ntheta):
            uu = 0.0
            for i in range(size):
                uu += u[k, i] * u[m, i]
            hessian[k, m] = 2.0 * (hessian[k, m] + dof * weighted[k, m]) + dof * (residual[k] * residual[m] - 2.0 * uu)
    for k in range(ntheta):
        for m in range(k):
            mean = (hessian[k, m] + hessian[m, k]) / 2.0
            hessian[k, m] = mean
            hessian[m, k] = mean
    return gradient, hessian, 0


def compiled(name: str) -> Callable | None:
    """The numba-compiled version of this module's kernel ``name``, or None (see :func:`.jit.jit`)."""
    return jit(globals()[name])

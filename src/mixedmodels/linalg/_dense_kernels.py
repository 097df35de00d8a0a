"""Compiled kernels for the small dense system of :mod:`.dense_system`: a Newton fit in one call.

For sleepstudy (39 x 39) a factorization is ~8 numpy and LAPACK calls and a
gradient-and-Hessian call ~25, each of a few microseconds on tiny arrays; in
a fit that follows ``gc.collect()`` (caches cold) what costs is the number of
distinct calls, not the arithmetic.  :func:`dense_factor` forms ``Lambda~``,
``Omega = Lambda~' A Lambda~ + I~`` (from ``Lambda~``'s positions, not two
dense products), its Cholesky factor and the objective's pieces in one call;
:func:`dense_derivatives` gives the gradient and exact Hessian of
:meth:`.dense_system.DenseSystem.derivatives` (the same formulas, the same
pairs of positions; the two ``N x N`` products go to BLAS);
:func:`dense_newton` is :func:`mixedmodels.optim.minimize_newton`'s loop
around them (:func:`newton_step` its step), so that a small model's whole
Newton fit is one call.

The kernels compute what the numpy path computes in a different order of
summation, so the two agree to rounding, not bit for bit (the tests state the
tolerances and compare the Newton paths).  Without numba (or with
``MIXEDMODELS_NO_NUMBA=1``) :func:`compiled` gives None and the callers keep
the numpy path and the Python loop.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..optim import backtracked_step
from .jit import jit

__all__ = [
    "compiled",
    "bind_helpers",
    "criterion_from_pieces",
    "row_envelope",
    "envelope_cholesky",
    "lower_inverse",
    "lead_product",
    "dense_factor",
    "dense_derivatives",
    "newton_step",
    "dense_newton",
    "dense_values",
    "residual_moments",
    "dense_moment_start",
]


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
    info = _cholesky(omega)
    if info != 0:
        return lam, omega, b, pieces, info
    for i in range(nre):
        pieces[0] += np.log(omega[i, i])
    for i in range(nre, nre + nfixef):
        pieces[1] += np.log(omega[i, i])
    pieces[0] *= 2.0
    pieces[1] *= 2.0
    pieces[2] = omega[size - 1, size - 1] ** 2
    return lam, omega, b, pieces, 0


def row_envelope(matrix: np.ndarray) -> np.ndarray:
    """The column of each row's first non-zero left of (or on) the diagonal: row ``i``'s envelope starts at
    ``first[i]`` (``i`` for a row with nothing left of its diagonal).  The lower triangle alone is read."""
    size = matrix.shape[0]
    first = np.empty(size, dtype=np.int64)
    for i in range(size):
        first[i] = i
        for j in range(i):
            if matrix[i, j] != 0.0:
                first[i] = j
                break
    return first


def envelope_cholesky(omega: np.ndarray) -> int:
    """Overwrite the symmetric ``omega`` with its lower Cholesky factor (the upper triangle zeroed, as ``dpotrf``
    with ``clean=1``); 0, or the 1-based column whose pivot is not positive (``dpotrf``'s ``info``).

    Row by row, within Omega's envelope: ``first[i]``, the first non-zero of row ``i`` (found here), is also
    ``L``'s (no fill-in left of the envelope), so each inner product runs from ``max(first[i], first[j])``
    instead of 0.  The terms left out are products with an exact zero, so the factor is the dense loop's to
    the bit.  A small model's leading block (the first random-effects term) is block-diagonal: for
    sleepstudy, 18 blocks of 2 x 2 and the three X and y rows, ~1/20 of the dense loop's flops.
    """
    size = omega.shape[0]
    first = _envelope(omega)
    for j in range(size):
        s = omega[j, j]
        for k in range(first[j], j):
            s -= omega[j, k] * omega[j, k]
        if not s > 0.0:
            return j + 1
        d = np.sqrt(s)
        omega[j, j] = d
        for i in range(j + 1, size):
            if first[i] > j:  # left of row i's envelope: L[i, j] is 0 (as omega[i, j])
                continue
            t = omega[i, j]
            for k in range(max(first[i], first[j]), j):
                t -= omega[i, k] * omega[j, k]
            omega[i, j] = t / d
        for i in range(j):
            omega[i, j] = 0.0
    return 0


def lower_inverse(lower: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``L^-1`` of a lower-triangular ``L`` with a non-zero diagonal, and the first column of each of its rows
    that can be non-zero (``start``).

    Column by column, ``(L^-1)[i, j] = -sum_{k=j}^{i-1} L[i, k] (L^-1)[k, j] / L[i, i]``, each sum run over the
    ``k`` where both factors can be non-zero: from ``L``'s envelope (``first[i]``) on, and only for ``j >=
    start[i] = min(first[i], start[k] for first[i] <= k < i)`` (row ``i`` of ``L^-1`` is zero left of it).  The
    terms left out are exact zeros: the same bits as the full loop.  For a block-diagonal leading block the
    inverse's is block-diagonal too.
    """
    size = lower.shape[0]
    first = _envelope(lower)
    start = np.empty(size, dtype=np.int64)
    for i in range(size):
        start[i] = first[i]
        for k in range(first[i], i):
            start[i] = min(start[i], start[k])
    inverse = np.zeros((size, size))
    for j in range(size):
        inverse[j, j] = 1.0 / lower[j, j]
        for i in range(j + 1, size):
            if start[i] > j:
                continue
            t = 0.0
            for k in range(max(j, first[i]), i):
                if start[k] <= j:
                    t += lower[i, k] * inverse[k, j]
            inverse[i, j] = -t / lower[i, i]
    return inverse, start


def lead_product(inverse: np.ndarray, start: np.ndarray, nlead: int) -> np.ndarray:
    """``P = L_lead^-T L_lead^-1`` (``L_lead^-1``: the leading ``nlead`` rows and columns of ``inverse``), padded
    with zeros to ``inverse``'s size: the sum over rows ``k < nlead`` of row ``k``'s outer product, over its
    columns from ``start[k]`` on (:func:`lower_inverse`; the zeros left of it left out: the same bits)."""
    size = inverse.shape[0]
    lead = np.zeros((size, size))
    for k in range(nlead):
        for i in range(start[k], k + 1):
            w = inverse[k, i]
            for j in range(start[k], k + 1):
                lead[i, j] += w * inverse[k, j]
    return lead


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
    inverse, start = _inverse(lower)
    lead = _lead(inverse, start, nlead)  # P = L_lead^-T L_lead^-1, padded with zeros
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


def newton_step(g: np.ndarray, h: np.ndarray, limit: float) -> tuple[np.ndarray, bool]:
    """:func:`mixedmodels.optim.minimize_newton`'s step: ``-H^-1 g`` over H's eigen-directions, curvature in
    absolute value, at least a tenth of ``limit`` along negative curvature, at most ``limit`` in any
    coordinate; and whether H was positive definite (the same LAPACK routine, ``dsyevd``, as there)."""
    if g.shape[0] == 0:
        return g.copy(), True
    values, vectors = np.linalg.eigh(h)
    floor = 1e-10 * max(np.abs(values).max(), 1e-300)
    along = np.dot(np.ascontiguousarray(vectors.T), g)
    positive = values.min() > floor
    steps = -along / np.maximum(np.abs(values), floor)
    if not positive:
        for i in range(steps.shape[0]):
            if values[i] < -floor and abs(steps[i]) < 0.1 * limit:
                steps[i] = (-0.1 if along[i] > 0 else 0.1) * limit
    step = np.dot(vectors, steps)
    largest = np.abs(step).max()
    if largest > limit:
        step *= limit / largest
    return step, positive


def dense_newton(
    a: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    index: np.ndarray,
    layout: np.ndarray,
    objective: np.ndarray,
    x0: np.ndarray,
    f0: float,
    rules: np.ndarray,
    codes: np.ndarray,
) -> tuple[np.ndarray, float, int, int, int, np.ndarray, np.ndarray]:
    """:func:`mixedmodels.optim.minimize_newton` on a dense system, factor and derivatives compiled: the same
    steps, line search and stopping rules (the Python loop is the reference; the tests compare the paths).

    ``layout`` is ``(ntheta, nre, nfixef, nlead)``; ``objective`` ``(dof, n, log_weights, reml)`` with the
    criterion ``log det L_re^2 + n (1 + log 2 pi + log(pwrss / n)) [+ log det L_x^2] - log_weights``;
    ``f0`` the criterion at ``x0`` or NaN when unknown; ``rules`` ``(decrement tolerance, ftol_abs,
    maxeval, largest step, Armijo share)``; ``codes`` NLopt's ``(success, maxeval, stalled)``.  Returns
    the final ``x``, its criterion, the code, the evaluation and derivative counts and the final point's
    gradient and Hessian.
    """
    ntheta, nre, nfixef, nlead = layout[0], layout[1], layout[2], layout[3]
    dof, n, log_weights, reml = objective[0], objective[1], objective[2], objective[3] != 0.0
    decrement, ftol_abs, maxeval, max_step, armijo = rules[0], rules[1], rules[2], rules[3], rules[4]
    x = x0.copy()
    lam, lower, b, pieces, info = _factor(a, rows, cols, index, x, nre, nfixef)
    evaluations = 0
    f = f0
    if np.isnan(f0):
        f = _value(pieces, info, n, log_weights, reml)
        evaluations += 1
    derivatives = 1
    g, h, info = _derivatives(a, b, lower, rows, cols, index, ntheta, nlead, dof)
    code = codes[2]
    while np.isfinite(g).all() and np.isfinite(h).all():
        step, positive = _step(g, h, max_step * max(1.0, np.abs(x).max() if x.shape[0] else 0.0))
        predicted = -np.dot(g, step)
        if positive and predicted / 2.0 < ftol_abs * decrement:
            code = codes[0]
            break
        if evaluations >= maxeval:
            code = codes[1]
            break
        near = positive and predicted < ftol_abs
        found, alpha, slope, trial, f_trial = False, 1.0, -predicted, x, f
        largest_step, largest_x = np.abs(step).max(), max(1.0, np.abs(x).max())
        for _ in range(1 if near else 60):  # the line search (optim._line_search)
            if evaluations >= maxeval:
                break
            trial = x + alpha * step
            lam, lower, b, pieces, info = _factor(a, rows, cols, index, trial, nre, nfixef)
            f_trial = _value(pieces, info, n, log_weights, reml)
            evaluations += 1
            if f_trial <= f + armijo * alpha * slope:
                found = True
                break
            if alpha * largest_step < 1e-12 * largest_x:
                break
            alpha = _backtrack(f_trial, f, slope, alpha)
        if not found:
            code = codes[0] if near else (codes[1] if evaluations >= maxeval else codes[2])
            break
        x, f = trial, f_trial
        derivatives += 1
        g, h, info = _derivatives(a, b, lower, rows, cols, index, ntheta, nlead, dof)
    return x, f, code, evaluations, derivatives, g, h


def dense_values(
    a: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    index: np.ndarray,
    layout: np.ndarray,
    objective: np.ndarray,
    points: np.ndarray,
) -> np.ndarray:
    """The criterion of :func:`dense_newton` (``layout``, ``objective`` as there) at each row of ``points``: the
    start candidates' evaluations in one call, by the same factor and criterion as the loop's."""
    nre, nfixef = layout[1], layout[2]
    n, log_weights, reml = objective[1], objective[2], objective[3] != 0.0
    values = np.empty(points.shape[0])
    for i in range(points.shape[0]):
        lam, lower, b, pieces, info = _factor(a, rows, cols, index, points[i], nre, nfixef)
        values[i] = _value(pieces, info, n, log_weights, reml)
    return values


def residual_moments(a: np.ndarray, nre: int, nfixef: int) -> tuple[np.ndarray, np.ndarray, float]:
    """``Z'MZ``, ``Z'r`` and ``r'r`` of the ordinary-least-squares residuals ``r = M y`` (``M = I - X (X'X)^+ X'``)
    from the dense ``[Z X y]'[Z X y]`` (``nre`` random-effects rows, then ``nfixef`` of X, then y)."""
    q, p, last = nre, nfixef, a.shape[0] - 1
    gram_inv = np.zeros((p, p))
    if p:
        gram_inv = np.linalg.pinv(np.ascontiguousarray(a[q : q + p, q : q + p]), rcond=1e-15)
    beta, rss = np.zeros(p), a[last, last]
    for k in range(p):
        for m in range(p):
            beta[k] += gram_inv[k, m] * a[q + m, last]
        rss -= beta[k] * a[q + k, last]
    projected = np.zeros((q, p))  # Z'X (X'X)^+
    score_rows = a[:q, last].copy()  # Z'r = Z'y - Z'X beta
    for i in range(q):
        for k in range(p):
            score_rows[i] -= a[i, q + k] * beta[k]
            for m in range(p):
                projected[i, k] += a[i, q + m] * gram_inv[m, k]
    resid_cross = a[:q, :q].copy()  # Z'MZ = Z'Z - Z'X (X'X)^+ X'Z
    for i in range(q):
        for j in range(q):
            for k in range(p):
                resid_cross[i, j] -= projected[i, k] * a[j, q + k]
    return resid_cross, score_rows, rss


def dense_moment_start(
    a: np.ndarray, nre: int, nfixef: int, shapes: np.ndarray, nobs: float, rules: np.ndarray
) -> np.ndarray:
    """:func:`mixedmodels.linalg.start.moment_start` on a dense system: every variance component's relative SD
    (``tau_t / sigma``, before the floor on theta), or an empty array where it gives None.

    ``a``, ``nre`` and ``nfixef`` as :func:`residual_moments`'s; ``shapes`` each term's ``(rows, columns)``, in
    order; ``rules`` ``(minimum trace fraction, maximum condition, minimum sigma^2 fraction)``.  The same
    equations as the numpy path (``start._dense_moments`` and ``moment_start``) in one call, the component
    sums as loops instead of products with an indicator matrix: the two agree to rounding (the tests compare).
    """
    resid_cross, score_rows, rss = _residual_moments(a, nre, nfixef)
    dof = nobs - nfixef
    if dof <= 0 or not rss > 0:
        return np.empty(0)
    component, offset, count = np.empty(nre, dtype=np.int64), 0, 0
    for t in range(shapes.shape[0]):
        for i in range(shapes[t, 0]):
            component[offset + i] = i % shapes[t, 1] + count
        offset += shapes[t, 0]
        count += shapes[t, 1]
    lhs, rhs = np.zeros((count + 1, count + 1)), np.zeros(count + 1)
    for i in range(nre):
        c = component[i]
        lhs[c, count] += resid_cross[i, i]
        rhs[c] += score_rows[i] * score_rows[i]
        for j in range(nre):
            lhs[c, component[j]] += resid_cross[i, j] * resid_cross[i, j]
    for c in range(count):
        if lhs[c, count] <= rules[0] * nobs:  # a component inside X's column space: see moment_start
            return np.empty(0)
        lhs[count, c] = lhs[c, count]
    lhs[count, count], rhs[count] = dof, rss
    if not np.isfinite(lhs).all():
        return np.empty(0)
    scale = np.sqrt(np.abs(np.diag(lhs)))
    for c in range(count + 1):
        if scale[c] == 0.0:
            scale[c] = 1.0
    singular = np.linalg.svd(lhs / np.outer(scale, scale))[1]  # its condition number, as start._condition's
    if not (singular[-1] > 0.0 and singular[0] / singular[-1] <= rules[1]):
        return np.empty(0)
    solution = np.linalg.solve(lhs, rhs)
    sigma2 = max(solution[count], rules[2] * rss / dof)
    return np.sqrt(np.maximum(solution[:count], 0.0) / sigma2)


def criterion_from_pieces(pieces: np.ndarray, info: int, n: float, log_weights: float, reml: bool) -> float:
    """The profiled criterion from the factor's pieces (``LinearMixedModel.objective_from``), inf if not finite."""
    if info != 0:
        return np.inf
    value = pieces[0] + n * (1.0 + _LOG_2PI + np.log(pieces[2] / n))
    if reml:
        value += pieces[1]
    value = value - log_weights + 0.0
    return value if np.isfinite(value) else np.inf


_LOG_2PI = float(np.log(2.0 * np.pi))
# dense_newton and dense_values call these names; compiled(...) binds them to the compiled kernels first
_factor, _derivatives, _step, _value = dense_factor, dense_derivatives, newton_step, criterion_from_pieces
_backtrack, _cholesky, _inverse, _lead = backtracked_step, envelope_cholesky, lower_inverse, lead_product
_envelope, _residual_moments = row_envelope, residual_moments
_HELPERS = {
    "_envelope": row_envelope,
    "_cholesky": envelope_cholesky,
    "_inverse": lower_inverse,
    "_lead": lead_product,
    "_factor": dense_factor,
    "_derivatives": dense_derivatives,
    "_step": newton_step,
    "_value": criterion_from_pieces,
    "_backtrack": backtracked_step,
    "_residual_moments": residual_moments,
}


def compiled(name: str) -> Callable | None:
    """The numba-compiled version of this module's kernel ``name``, or None (see :func:`.jit.jit`)."""
    return jit(globals()[name]) if bind_helpers() else None


def bind_helpers() -> bool:
    """Bind the names the kernels call (``_factor``, ``_cholesky``, ...) to their compiled versions, once (jit's
    result is cached); False without numba.  Before any kernel of this module is compiled: numba reads them as
    globals."""
    if not _BOUND:
        bound = {helper: jit(kernel) for helper, kernel in _HELPERS.items()}
        if any(kernel is None for kernel in bound.values()):
            return False
        globals().update(bound)
        _BOUND.append(True)
    return True


_BOUND: list[bool] = []  # [True] once the helpers' compiled versions are bound

"""A dense residual-structure system's exact derivatives and whole Newton fit, compiled with numba when installed.

:func:`piece_derivatives` is the body of
:func:`mixedmodels.lmm.residual._piece_derivatives` after the triangular
inverse (see there for the algebra): the numpy version is ~45 calls on
matrices of 15-39 rows, call overhead rather than flops; compiled, the same
products run as a few BLAS calls and plain loops in one call.

:func:`residual_newton` is the whole Newton fit of
:class:`mixedmodels.lmm.residual.DenseResidualObjective` in one call: the
structure's coefficients and their derivatives over the free parameters
(:func:`structure_terms`, the formulas of
:meth:`~mixedmodels.design.residual.ResidualStructure.coefficient_derivatives`,
``logdet``, ``logdet_gradient`` and ``logdet_hessian``), the combined
cross-products, the factor (:func:`._dense_kernels.dense_factor`), the
derivatives over theta and the coefficients (the stages above) and the chain
rule (:func:`residual_derivatives`, as
:meth:`~mixedmodels.lmm.residual.DenseResidualObjective.derivatives`), inside
:func:`mixedmodels.optim.minimize_newton`'s loop (as
:func:`._dense_kernels.dense_newton`, whose step it uses).  A reference fit's
5-11 objective values and 3-6 derivative calls were that many Python-level
evaluations; compiled they are one call.

Without numba (or with ``MIXEDMODELS_NO_NUMBA=1``) :func:`compiled_piece_derivatives`
and :func:`compiled_residual_newton` are None and the callers keep their
numpy path and the Python loop; the tests compare the paths.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np

from ..optim import backtracked_step
from ._dense_kernels import bind_helpers, criterion_from_pieces, dense_factor, lower_inverse, newton_step
from .jit import jit

__all__ = [
    "piece_derivatives",
    "position_pairs",
    "compiled_piece_derivatives",
    "structure_terms",
    "residual_value",
    "residual_derivatives",
    "residual_newton",
    "residual_values",
    "compiled_residual_newton",
    "compiled_residual_values",
    "least_squares_rss",
    "compiled_least_squares_rss",
]


def piece_derivatives(
    inverse: np.ndarray,
    a: np.ndarray,
    lam: np.ndarray,
    pieces: np.ndarray,
    positions: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    sizes: tuple[int, int, int],
    dof: float,
    kernels: tuple[Callable, Callable, Callable] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradient and Hessian over (scaled theta, the pieces' coefficients), from ``L^-1`` (``inverse``), and ``M``.

    ``a`` is ``A`` at the current coefficients, ``lam`` ``Lambda~``, ``pieces`` the ``A_k``
    (npieces x size x size, C-contiguous); ``positions`` are ``rows``, ``cols``, ``index`` (theta
    ``index[e]`` sits at ``(rows[e], cols[e])`` of ``Lambda~``) and the pairs of :func:`position_pairs`;
    ``sizes`` are ntheta, the random effects' rows ``nre`` (``Lambda~`` is the identity below them) and
    ``nlead``, the rows of Omega's leading block (``P``'s); ``dof`` the residual degrees of freedom.
    ``Omega_a``, ``P``, ``z = L^-T e_N`` and ``M = P + dof z z'`` as in
    :func:`mixedmodels.lmm.residual._piece_derivatives`.  ``Lambda~`` is sparse (a few entries per level),
    so its products are formed entry by entry: the dense products left are ``P Omega_a`` and ``P``.
    ``kernels``: the compiled stages (:func:`compiled_piece_derivatives`), default the plain Python ones.
    """
    first, traces, second = kernels if kernels is not None else (_omegas, _first_derivative_traces, _second_derivatives)
    rows, cols, index, pairs = positions
    ntheta, nre, nlead = sizes
    values = np.ascontiguousarray(lam[rows, cols])
    omegas, products = first(a, pieces, values, rows, cols, index, ntheta, nre)
    gradient, hessian, weights = traces(inverse, omegas, nlead, dof)
    second(hessian, a, products, weights, values, rows, cols, index, ntheta, nre, pairs)
    return gradient, (hessian + hessian.T) / 2.0, weights  # the products' rounding is not symmetric


def _omegas(
    a: np.ndarray,
    pieces: np.ndarray,
    values: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    index: np.ndarray,
    ntheta: int,
    nre: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``Omega_a`` for theta then the pieces (``C_j + C_j'``, ``C_j' = Lambda~_j' A Lambda~``: row ``cols_e`` is
    row ``rows_e`` of ``A Lambda~``; ``Lambda~' A_k Lambda~``), and ``A_k Lambda~`` (``products[1:]``;
    ``products[0]`` is ``A Lambda~``).  ``M Lambda~``: column ``cols_e`` gathers ``values_e M[:, rows_e]``,
    the identity below ``nre``; ``Lambda~' B``: row ``cols_e`` gathers ``values_e B[rows_e, :]``."""
    size, npieces = a.shape[0], pieces.shape[0]
    products = np.zeros((npieces + 1, size, size))
    for p in range(npieces + 1):
        m = a if p == 0 else pieces[p - 1]
        out = products[p]
        for r in range(size):  # scalar loops: numba would allocate a temporary for every sliced product
            for c in range(nre, size):
                out[r, c] = m[r, c]
            for e in range(rows.size):
                out[r, cols[e]] += values[e] * m[r, rows[e]]
    omegas = np.zeros((ntheta + npieces, size, size))
    for e in range(rows.size):
        omegas[index[e], cols[e], :] = products[0, rows[e], :]
    for j in range(ntheta):
        omegas[j] += omegas[j].T.copy()
    for p in range(npieces):
        omega, product = omegas[ntheta + p], products[p + 1]
        omega[nre:, :] = product[nre:, :]
        for e in range(rows.size):
            for c in range(size):
                omega[cols[e], c] += values[e] * product[rows[e], c]
    return omegas, products


def _first_derivative_traces(
    inverse: np.ndarray, omegas: np.ndarray, nlead: int, dof: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The gradient, the Hessian's ``-tr(P Omega_a P Omega_b)`` and residual parts, and ``M``."""
    k, size = omegas.shape[0], omegas.shape[1]
    lead_inverse = np.ascontiguousarray(inverse[:nlead, :nlead])
    lead = np.zeros((size, size))
    lead[:nlead, :nlead] = lead_inverse.T @ lead_inverse
    z = np.ascontiguousarray(inverse[size - 1])
    times_lead = np.empty((k, size, size))
    transposed = np.empty((k, size, size))
    omega_z = np.empty((k, size))
    for i in range(k):
        times_lead[i] = lead @ omegas[i]
        transposed[i] = times_lead[i].T
        omega_z[i] = omegas[i] @ z
    residual = omega_z @ z
    solved = inverse @ np.ascontiguousarray(omega_z.T)  # (Omega_a z)' Omega^-1 (Omega_b z) = solved_a' solved_b
    cross = solved.T @ solved
    # tr(P Omega_i P Omega_j) = sum(times_lead_i * times_lead_j'): one product of the flattened matrices
    traces = times_lead.reshape(k, size * size) @ transposed.reshape(k, size * size).T
    gradient = np.empty(k)
    hessian = np.empty((k, k))
    for i in range(k):
        gradient[i] = np.trace(times_lead[i]) + dof * residual[i]
        for j in range(k):
            hessian[i, j] = -traces[i, j] + dof * (residual[i] * residual[j] - 2.0 * cross[i, j])
    return gradient, hessian, lead + dof * np.outer(z, z)


def _second_derivatives(
    hessian: np.ndarray,
    a: np.ndarray,
    products: np.ndarray,
    weights: np.ndarray,
    values: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    index: np.ndarray,
    ntheta: int,
    nre: int,
    pairs: np.ndarray,
) -> None:
    """``tr(M Omega_ab)``: ``2 sum_(e in j, f in l) A[rows_e, rows_f] M[cols_f, cols_e]`` for two thetas (over
    ``pairs``: the pairs of positions (e, f) where some piece has ``A[rows_e, rows_f]`` non-zero), and
    ``2 sum_(e in j) (A_k Lambda~ M)[rows_e, cols_e]`` for theta_j and c_k (none for two c's; ``products`` as
    :func:`_omegas`'s)."""
    for q in range(pairs.shape[0]):
        e, f = pairs[q, 0], pairs[q, 1]
        hessian[index[e], index[f]] += 2.0 * a[rows[e], rows[f]] * weights[cols[e], cols[f]]
    for p in range(products.shape[0] - 1):
        for e in range(rows.size):
            value = 2.0 * np.dot(products[p + 1, rows[e], :], np.ascontiguousarray(weights[:, cols[e]]))
            hessian[ntheta + p, index[e]] += value
            hessian[index[e], ntheta + p] += value


def position_pairs(pieces: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The pairs (e, f) of theta's positions in ``Lambda~`` whose ``A[rows_e, rows_f]`` is non-zero in some
    piece (two rows x pairs): ``Z'Z`` is block-diagonal over a term's levels (and the correlation groups are
    nested in them), so these are a few per level instead of all positions squared."""
    pattern = (pieces != 0.0).any(axis=0)  # the array methods: numpy's wrappers are a Python call each
    e, f = pattern[rows[:, None], rows].nonzero()
    pairs = np.empty((e.size, 2), dtype=np.int64)
    pairs[:, 0], pairs[:, 1] = e, f
    return pairs


def compiled_piece_derivatives() -> tuple[Callable, Callable, Callable] | None:
    """The numba-compiled halves of :func:`piece_derivatives` (cached on disk), or None without numba (or
    with ``MIXEDMODELS_NO_NUMBA=1``).  They save 0.05-0.1 ms per derivative evaluation, 0.3-0.6 ms per fit;
    as for the other small models' kernels, the first fit of a process pays numba's import and the
    kernels' loading (~0.5-1 s once)."""
    kernels = (jit(_omegas), jit(_first_derivative_traces), jit(_second_derivatives))
    return None if any(kernel is None for kernel in kernels) else kernels  # type: ignore[return-value]


def structure_terms(
    free: np.ndarray, table: np.ndarray, incidence: np.ndarray, counts: np.ndarray, lag_rows: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, np.ndarray, np.ndarray, bool]:
    """The pieces' coefficients at the free parameters (``log delta`` of every stratum but the first, then
    ``atanh phi``), their first and second derivatives by them, ``log det R`` and its gradient and Hessian,
    and whether the parameters are in range (``delta`` in (0, inf), ``phi`` in (-1, 1) in floating point).

    ``table`` holds per piece its strata s, t and kind (0 all rows, 1 inner rows, 2 lag pairs; -1 without
    AR(1): factor 1), ``incidence`` how often each free ratio divides the piece's coefficient, ``counts`` the
    strata's rows (all but the first), ``lag_rows`` ``n - G`` (0 without AR(1)).  The formulas of
    :meth:`~mixedmodels.design.residual.ResidualStructure.coefficient_derivatives` and ``logdet*``:
    a coefficient is ``f(v) / (delta_s delta_t)`` with ``f = c``, ``c phi^2`` or ``-c phi``
    (``c = 1 / (1 - phi^2)``).
    """
    npieces, nd = table.shape[0], incidence.shape[1]
    ar1 = table.shape[0] > 0 and table[0, 2] >= 0
    k = nd + (1 if ar1 else 0)
    delta = np.ones(nd + 1)
    ok = True
    for i in range(nd):
        delta[i + 1] = np.exp(free[i])
        if not (delta[i + 1] > 0.0 and delta[i + 1] < np.inf):
            ok = False
    phi = np.tanh(free[nd]) if ar1 else 0.0
    if not -1.0 < phi < 1.0:
        ok = False
    c = 1.0 / (1.0 - phi * phi)
    factors = np.array((c, c * phi * phi, -c * phi))
    first = np.array((2.0 * phi * c, 2.0 * phi * c, -(1.0 + phi * phi) * c))
    second = np.array((2.0 * (1.0 + phi * phi) * c, 2.0 * (1.0 + phi * phi) * c, -4.0 * phi * c))
    coefficients = np.empty(npieces)
    jacobian = np.zeros((npieces, k))
    curvature = np.zeros((npieces, k, k))
    for p in range(npieces):
        scale = 1.0 / (delta[table[p, 0]] * delta[table[p, 1]])
        kind = table[p, 2]
        coefficients[p] = factors[kind] * scale if ar1 else scale
        for a in range(nd):
            jacobian[p, a] = -coefficients[p] * incidence[p, a]
            for b in range(nd):
                curvature[p, a, b] = coefficients[p] * incidence[p, a] * incidence[p, b]
        if ar1:
            by_v = first[kind] * scale
            jacobian[p, nd] = by_v
            for a in range(nd):
                curvature[p, a, nd] = curvature[p, nd, a] = -incidence[p, a] * by_v
            curvature[p, nd, nd] = second[kind] * scale
    logdet = 0.0
    logdet_gradient = np.zeros(k)
    logdet_hessian = np.zeros((k, k))
    for a in range(nd):
        logdet += 2.0 * counts[a] * np.log(delta[a + 1])
        logdet_gradient[a] = 2.0 * counts[a]
    if ar1:
        logdet += lag_rows * np.log1p(-phi * phi)
        logdet_gradient[nd] = -2.0 * phi * lag_rows
        logdet_hessian[nd, nd] = -2.0 * (1.0 - phi * phi) * lag_rows
    return coefficients, jacobian, curvature, logdet, logdet_gradient, logdet_hessian, ok


def residual_value(
    stacked: np.ndarray,
    positions: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    structure: tuple[np.ndarray, np.ndarray, np.ndarray],
    layout: np.ndarray,
    criterion: np.ndarray,
    y: np.ndarray,
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """The criterion at ``y = (scaled theta, free rho)`` (inf out of range or where the factor fails), with
    ``A`` at the coefficients, ``Lambda~``, ``L`` and LAPACK-style ``info`` (see :func:`residual_newton`
    for the arguments)."""
    rows, cols, index = positions[0], positions[1], positions[2]
    ntheta, nre, nfixef = layout[0], layout[1], layout[2]
    table, incidence, counts = structure
    size, npieces = stacked.shape[1], stacked.shape[0]
    terms = _terms(y[ntheta:], table, incidence, counts, criterion[4])
    coefficients, logdet, ok = terms[0], terms[3], terms[6]
    a = np.zeros((size, size))
    if not ok:
        return np.inf, a, a, a, a, -1
    for p in range(npieces):
        cp = coefficients[p]
        piece = stacked[p]
        for i in range(size):
            for j in range(size):
                a[i, j] += cp * piece[i, j]
    lam, lower, b, pieces, info = _factor(a, rows, cols, index, y[:ntheta], nre, nfixef)
    if info != 0:
        return np.inf, a, lam, lower, b, info
    value = _criterion(pieces, info, criterion[1], criterion[2], criterion[3] != 0.0) + logdet
    return (value if np.isfinite(value) else np.inf), a, lam, lower, b, info


def residual_derivatives(
    a: np.ndarray,
    lam: np.ndarray,
    lower: np.ndarray,
    stacked: np.ndarray,
    positions: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    structure: tuple[np.ndarray, np.ndarray, np.ndarray],
    layout: np.ndarray,
    criterion: np.ndarray,
    y: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Gradient, Hessian and ``info`` (non-zero: a zero pivot) over ``y = (scaled theta, free rho)`` at the
    factor of :func:`residual_value` at ``y``: the derivatives over theta and the directions
    ``dA / d rho_r`` (:func:`piece_derivatives`' stages) and the curvature of the coefficients, as
    :meth:`~mixedmodels.lmm.residual.DenseResidualObjective.derivatives`."""
    rows, cols, index, pairs = positions
    ntheta, nre, nlead = layout[0], layout[1], layout[3]
    table, incidence, counts = structure
    size, k = a.shape[0], y.shape[0]
    gradient, hessian = np.full(k, np.nan), np.full((k, k), np.nan)
    for j in range(size):
        if lower[j, j] == 0.0:
            return gradient, hessian, j + 1
    inverse = _inverse(lower)[0]
    values = np.empty(rows.shape[0])
    for e in range(rows.shape[0]):
        values[e] = lam[rows[e], cols[e]]
    _, jacobian, curvature, _, logdet_gradient, logdet_hessian, _ = _terms(
        y[ntheta:], table, incidence, counts, criterion[4]
    )
    npieces, nrho = jacobian.shape[0], jacobian.shape[1]
    directions = np.zeros((nrho, size, size))  # dA / d rho_r = sum_k J_kr A_k
    for r in range(nrho):
        for p in range(npieces):
            if jacobian[p, r] != 0.0:
                directions[r] += jacobian[p, r] * stacked[p]
    omegas, products = _first(a, directions, values, rows, cols, index, ntheta, nre)
    g, h, weights = _traces(inverse, omegas, nlead, criterion[0])
    _second(h, a, products, weights, values, rows, cols, index, ntheta, nre, pairs)
    sandwich = np.dot(np.dot(lam, weights), np.ascontiguousarray(lam.T))  # df/dc_k = sum(A_k * Lambda~ M Lambda~')
    by_piece = np.empty(npieces)
    for p in range(npieces):
        by_piece[p] = np.sum(stacked[p] * sandwich)
    for i in range(ntheta + nrho):
        gradient[i] = g[i]
        for j in range(ntheta + nrho):
            hessian[i, j] = (h[i, j] + h[j, i]) / 2.0
    for r in range(nrho):
        gradient[ntheta + r] += logdet_gradient[r]
        for s in range(nrho):  # (df/dc) d^2 c / d rho^2 + d^2 log det R / d rho^2
            total = logdet_hessian[r, s]
            for p in range(npieces):
                total += by_piece[p] * curvature[p, r, s]
            hessian[ntheta + r, ntheta + s] += total
    return gradient, hessian, 0


def residual_newton(
    stacked: np.ndarray,
    positions: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    structure: tuple[np.ndarray, np.ndarray, np.ndarray],
    layout: np.ndarray,
    criterion: np.ndarray,
    x0: np.ndarray,
    f0: float,
    rules: np.ndarray,
    codes: np.ndarray,
) -> tuple[np.ndarray, float, int, int, int, np.ndarray, np.ndarray]:
    """:func:`mixedmodels.optim.minimize_newton` over ``(scaled theta, free rho)`` of a dense residual system:
    the same steps, line search and stopping rules (the Python loop is the reference; the tests compare).

    ``stacked`` are the pieces ``A_k`` (npieces x N x N); ``positions`` ``(rows, cols, index, pairs)`` of theta
    in ``Lambda~`` (:func:`position_pairs`); ``structure`` ``(table, incidence, counts)`` of
    :func:`structure_terms`; ``layout`` ``(ntheta, nre, nfixef, nlead)``; ``criterion`` ``(dof, n,
    log_weights, reml, n - G)``; ``f0`` the criterion at ``x0`` or NaN; ``rules`` and ``codes`` as
    :func:`._dense_kernels.dense_newton`'s.  Returns the final ``x``, its criterion, the code, the
    evaluation and derivative counts and the final point's gradient and Hessian.
    """
    decrement, ftol_abs, maxeval, max_step, armijo = rules[0], rules[1], rules[2], rules[3], rules[4]
    x = x0.copy()
    f, a, lam, lower, b, info = _value(stacked, positions, structure, layout, criterion, x)
    evaluations = 0
    if np.isnan(f0):
        evaluations += 1
    else:
        f = f0
    derivatives = 1
    g, h, info = _derivatives(a, lam, lower, stacked, positions, structure, layout, criterion, x)
    code = codes[2]
    while np.isfinite(g).all() and np.isfinite(h).all():
        step, positive = _step(g, h, max_step * max(1.0, np.abs(x).max()))
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
            f_trial, a, lam, lower, b, info = _value(stacked, positions, structure, layout, criterion, trial)
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
        g, h, info = _derivatives(a, lam, lower, stacked, positions, structure, layout, criterion, x)
    return x, f, code, evaluations, derivatives, g, h


# the loop and the derivatives call these names; compiled_residual_newton binds them to the compiled kernels first
_first, _traces, _second = _omegas, _first_derivative_traces, _second_derivatives
_terms, _factor, _step = structure_terms, dense_factor, newton_step
_criterion, _backtrack, _inverse = criterion_from_pieces, backtracked_step, lower_inverse
_value, _derivatives = residual_value, residual_derivatives
_HELPERS = {
    "_first": _omegas,
    "_traces": _first_derivative_traces,
    "_second": _second_derivatives,
    "_terms": structure_terms,
    "_factor": dense_factor,
    "_step": newton_step,
    "_criterion": criterion_from_pieces,
    "_backtrack": backtracked_step,
    "_inverse": lower_inverse,
}


def residual_values(
    stacked: np.ndarray,
    positions: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    structure: tuple[np.ndarray, np.ndarray, np.ndarray],
    layout: np.ndarray,
    criterion: np.ndarray,
    points: np.ndarray,
) -> np.ndarray:
    """:func:`residual_value` at each row of ``points`` (the start's candidates: one call for all)."""
    out = np.empty(points.shape[0])
    for i in range(points.shape[0]):
        out[i] = _value(stacked, positions, structure, layout, criterion, np.ascontiguousarray(points[i]))[0]
    return out


def least_squares_rss(gram: np.ndarray, tolerance: float) -> tuple[float, int]:
    """The residual sum of squares of the last column on the others, and their rank, from the cross-product
    ``gram`` of ``[W y]`` by Gaussian elimination: each column of W is eliminated in turn unless what is left of its
    diagonal is below ``tolerance`` times its own (zero or collinear with those before: skipped, as a
    pivoted QR's rank drops it).  ``y'y - y'W (W'W)^+ W'y``: ``np.linalg.lstsq``'s residual in ~N^3 / 3
    flops of plain loops instead of an SVD (an SVD of 30 columns costs ~0.2 ms in a cold fit)."""
    a = gram.copy()
    n = a.shape[0]
    rank = 0
    for k in range(n - 1):
        pivot = a[k, k]
        if not pivot > tolerance * gram[k, k] or pivot <= 0.0:
            continue
        rank += 1
        for i in range(k + 1, n):  # the Schur complement of the columns swept so far (the lower right block)
            factor = a[i, k] / pivot
            if factor == 0.0:
                continue
            for j in range(k + 1, n):
                a[i, j] -= factor * a[k, j]
    return a[n - 1, n - 1], rank


def compiled_least_squares_rss() -> Callable | None:
    """:func:`least_squares_rss` compiled, or None without numba (the caller then takes ``np.linalg.lstsq``)."""
    return jit(least_squares_rss)


def compiled_residual_newton() -> Callable | None:
    """:func:`residual_newton` compiled (its helpers first), or None without numba (or with
    ``MIXEDMODELS_NO_NUMBA=1``)."""
    return jit(residual_newton) if _bind_compiled() else None


def compiled_residual_values() -> Callable | None:
    """:func:`residual_values` compiled, or None (as :func:`compiled_residual_newton`)."""
    return jit(residual_values) if _bind_compiled() else None


@lru_cache(maxsize=None)
def _bind_compiled() -> bool:
    """Bind the names the loop and the values call to their compiled kernels; False without numba."""
    bound = {name: jit(kernel) for name, kernel in _HELPERS.items()}
    if not bind_helpers() or any(kernel is None for kernel in bound.values()):
        return False
    globals().update(bound)
    bound = {"_value": jit(residual_value), "_derivatives": jit(residual_derivatives)}
    globals().update(bound)
    return True

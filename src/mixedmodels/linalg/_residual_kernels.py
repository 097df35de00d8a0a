"""The exact derivatives of a dense residual-structure system in one compiled call, with numba when it is installed.

:func:`piece_derivatives` is the body of
:func:`mixedmodels.lmm.residual._piece_derivatives` after the triangular
inverse (see there for the algebra): the numpy version is ~45 calls on
matrices of 15-39 rows, call overhead rather than flops; compiled, the same
products run as a few BLAS calls and plain loops in one call.  Without numba
(or with ``MIXEDMODELS_NO_NUMBA=1``) :func:`compiled_piece_derivatives` is
None and the caller keeps its
numpy path; the tests run both.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .jit import jit

__all__ = ["piece_derivatives", "position_pairs", "compiled_piece_derivatives"]


def piece_derivatives(
    inverse: np.ndarray,
    a: np.ndarray,
    lam: np.ndarray,
    pieces: np.ndarray,
    positions: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    sizes: tuple[int, int, int],
    dof: float,
    kernels: tuple[Callable, Callable, Callable] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and Hessian over (scaled theta, the pieces' coefficients), from ``L^-1`` (``inverse``).

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
    return gradient, (hessian + hessian.T) / 2.0  # the products' rounding is not symmetric


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
    pattern = np.any(pieces != 0.0, axis=0)
    e, f = np.nonzero(pattern[rows[:, None], rows[None, :]])
    return np.ascontiguousarray(np.column_stack([e, f]).astype(np.int64))


def compiled_piece_derivatives() -> tuple[Callable, Callable, Callable] | None:
    """The numba-compiled halves of :func:`piece_derivatives` (cached on disk), or None without numba (or
    with ``MIXEDMODELS_NO_NUMBA=1``).  They save 0.05-0.1 ms per derivative evaluation, 0.3-0.6 ms per fit;
    as for the other small models' kernels, the first fit of a process pays numba's import and the
    kernels' loading (~0.5-1 s once)."""
    kernels = (jit(_omegas), jit(_first_derivative_traces), jit(_second_derivatives))
    return None if any(kernel is None for kernel in kernels) else kernels  # type: ignore[return-value]

"""The exact derivatives of a dense residual-structure system in one compiled call, with numba when it is installed.

:func:`piece_derivatives` is the body of
:func:`mixedmodels.lmm.residual._piece_derivatives` after the triangular
inverse (see there for the algebra): the numpy version is ~45 calls on
matrices of 15-39 rows, call overhead rather than flops; compiled, the same
products run as a few BLAS calls and plain loops in one call.  Without numba
(or with ``MIXEDMODELS_NO_NUMBA=1``), and until something else has imported
numba, :func:`compiled_piece_derivatives` is None and the caller keeps its
numpy path; the tests run both.
"""

from __future__ import annotations

import sys
from typing import Callable

import numpy as np

from .jit import jit

__all__ = ["piece_derivatives", "position_pairs", "compiled_piece_derivatives"]


def piece_derivatives(
    inverse: np.ndarray,
    a: np.ndarray,
    lam: np.ndarray,
    pieces: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    index: np.ndarray,
    ntheta: int,
    nlead: int,
    dof: float,
    pairs: np.ndarray,
    kernels: tuple[Callable, Callable] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and Hessian over (scaled theta, the pieces' coefficients), from ``L^-1`` (``inverse``).

    ``a`` is ``A`` at the current coefficients, ``lam`` ``Lambda~``, ``pieces`` the ``A_k``
    (npieces x size x size, C-contiguous), and ``(rows[e], cols[e])`` the position of theta
    ``index[e]`` in ``Lambda~``; ``nlead`` the rows of Omega's leading block (``P``'s), ``dof`` the
    residual degrees of freedom, ``pairs`` those of :func:`position_pairs`.  ``Omega_a``, ``P``, ``z = L^-T e_N`` and ``M = P + dof z z'`` as
    in :func:`mixedmodels.lmm.residual._piece_derivatives`.  ``kernels``: the two compiled halves
    (:func:`compiled_piece_derivatives`), default the plain Python ones.
    """
    first, second = kernels if kernels is not None else (_first_derivative_traces, _add_second_derivatives)
    gradient, hessian, weights = first(inverse, a, lam, pieces, rows, cols, index, ntheta, nlead, dof)
    second(hessian, a, lam, pieces, weights, rows, cols, index, ntheta, pairs)
    return gradient, hessian


def position_pairs(pieces: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The pairs (e, f) of theta's positions in ``Lambda~`` whose ``A[rows_e, rows_f]`` is non-zero in some
    piece (two rows x pairs): ``Z'Z`` is block-diagonal over a term's levels (and the correlation groups are
    nested in them), so these are a few per level instead of all positions squared."""
    pattern = np.any(pieces != 0.0, axis=0)
    e, f = np.nonzero(pattern[rows[:, None], rows[None, :]])
    return np.ascontiguousarray(np.column_stack([e, f]).astype(np.int64))


def _first_derivative_traces(
    inverse: np.ndarray,
    a: np.ndarray,
    lam: np.ndarray,
    pieces: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    index: np.ndarray,
    ntheta: int,
    nlead: int,
    dof: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The gradient, the Hessian's ``-tr(P Omega_a P Omega_b)`` and residual parts, and ``M``."""
    size, npieces = a.shape[0], pieces.shape[0]
    k = ntheta + npieces
    lead_inverse = np.ascontiguousarray(inverse[:nlead, :nlead])
    lead = np.zeros((size, size))
    lead[:nlead, :nlead] = lead_inverse.T @ lead_inverse
    z = np.ascontiguousarray(inverse[size - 1])
    full = inverse.T @ inverse
    a_lam = a @ lam
    omegas = np.zeros((k, size, size))
    for e in range(rows.size):  # C_j' = Lambda~_j' A Lambda~: row cols_e is row rows_e of A Lambda~
        omegas[index[e], cols[e], :] = a_lam[rows[e], :]
    for j in range(ntheta):
        omegas[j] += omegas[j].T.copy()
    lam_t = np.ascontiguousarray(lam.T)
    for p in range(npieces):
        omegas[ntheta + p] = lam_t @ (pieces[p] @ lam)
    times_lead = np.empty((k, size, size))
    omega_z = np.empty((k, size))
    for i in range(k):
        times_lead[i] = lead @ omegas[i]
        omega_z[i] = omegas[i] @ z
    residual = omega_z @ z
    cross = omega_z @ full @ omega_z.T
    gradient = np.empty(k)
    hessian = np.empty((k, k))
    for i in range(k):
        gradient[i] = np.trace(times_lead[i]) + dof * residual[i]
        for j in range(i + 1):
            trace = 0.0  # tr(P Omega_i P Omega_j) = sum(times_lead_i * times_lead_j')
            for r in range(size):
                for c in range(size):
                    trace += times_lead[i, r, c] * times_lead[j, c, r]
            value = -trace + dof * (residual[i] * residual[j] - 2.0 * cross[i, j])
            hessian[i, j] = value
            hessian[j, i] = value
    return gradient, hessian, lead + dof * np.outer(z, z)


def _add_second_derivatives(
    hessian: np.ndarray,
    a: np.ndarray,
    lam: np.ndarray,
    pieces: np.ndarray,
    weights: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    index: np.ndarray,
    ntheta: int,
    pairs: np.ndarray,
) -> None:
    """``tr(M Omega_ab)``: ``2 sum_(e in j, f in l) A[rows_e, rows_f] M[cols_f, cols_e]`` for two thetas (over
    ``pairs``: the pairs of positions (e, f) where some piece has ``A[rows_e, rows_f]`` non-zero), and
    ``2 sum_(e in j) (A_k Lambda~ M)[rows_e, cols_e]`` for theta_j and c_k (none for two c's)."""
    for q in range(pairs.shape[0]):
        e, f = pairs[q, 0], pairs[q, 1]
        hessian[index[e], index[f]] += 2.0 * a[rows[e], rows[f]] * weights[cols[e], cols[f]]
    lam_weights = lam @ weights
    for p in range(pieces.shape[0]):
        product = pieces[p] @ lam_weights
        for e in range(rows.size):
            value = 2.0 * product[rows[e], cols[e]]
            hessian[ntheta + p, index[e]] += value
            hessian[index[e], ntheta + p] += value


def compiled_piece_derivatives() -> tuple[Callable, Callable] | None:
    """The numba-compiled halves of :func:`piece_derivatives` (cached on disk), or None without numba, and
    None until numba has been imported: the kernels save 0.05-0.1 ms per derivative evaluation, 0.3-0.6 ms
    per fit, where importing numba and loading them costs a process ~0.5-0.8 s once (as
    :func:`mixedmodels.linalg._kernels.compiled_if_loaded`)."""
    if "numba" not in sys.modules:
        return None
    first = jit(_first_derivative_traces)
    second = jit(_add_second_derivatives)
    return None if first is None or second is None else (first, second)

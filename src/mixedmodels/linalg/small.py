"""Closed-form 2 x 2 Cholesky factors and solves over stacks of blocks, LAPACK's arithmetic.

A big random-effects term with an intercept and a slope has one 2 x 2 block
per level.  ``np.linalg.cholesky``/``solve`` and a three-operand ``einsum``
on a (q, 2, 2) stack cost a few microseconds each in call overhead alone,
about half of an objective evaluation of a small model such as sleepstudy
(18 levels).  The formulas below do the same work in a few vectorised
operations on (q,) columns.

They repeat the arithmetic of LAPACK's reference algorithms, operation for
operation:

* ``einsum("ji,qjl,lm->qim", lam, a, lam)`` sums ``(lam[j, i] a[j, l]) lam[l, m]``
  over ``(j, l) = 00, 01, 10, 11`` in that order;
* LAPACK's Cholesky (``dpotrf``) of ``[[s00, s10], [s10, s11]]`` is
  ``a = sqrt(s00)``, ``b = s10 * (1 / a)``, ``c = sqrt(s11 - b * b)``;
* LAPACK's ``dgesv`` on a lower factor ``[[a, 0], [b, c]]`` pivots rows when
  ``|b| > |a|``, scales by reciprocals of pivots, and solves.

With OpenBLAS's Haswell kernel that gives NumPy's bits; optimized kernels
(SkylakeX's ``dgesv``) order the operations differently and can differ in the
last place, so the results are equal to NumPy's within rounding-error bounds
set by the blocks' conditioning, which is what ``tests/linalg/test_small.py``
checks (with the backward stability of the factor).

Once numba is loaded, the factors and roots come from the compiled loops of
:mod:`._level_kernels`, which repeat these operations level by level (the
same bits, in one pass instead of one per operation: ~10x faster on a
million levels).
"""

from __future__ import annotations

import numpy as np

from . import _level_kernels

__all__ = ["rows_times", "cholesky_2x2", "first_block_factor_2x2", "first_block_roots_2x2", "first_block_weights_2x2"]


def _not_positive_definite() -> np.linalg.LinAlgError:
    return np.linalg.LinAlgError("Matrix is not positive definite")


def _factor_columns(s00: np.ndarray, s10: np.ndarray, s11: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``a, b, c`` of the lower factors ``[[a, 0], [b, c]]``, as LAPACK's dpotrf computes them.

    Raises LinAlgError when a pivot is <= 0, as LAPACK (so ``np.linalg.cholesky``)
    does; NaN passes through to the factor, as there.
    """
    if (s00 <= 0).any():
        raise _not_positive_definite()
    a = np.sqrt(s00)
    b = s10 * (1.0 / a)
    c2 = s11 - b * b
    if (c2 <= 0).any():
        raise _not_positive_definite()
    return a, b, np.sqrt(c2)


def _stack(s00: np.ndarray, s10: np.ndarray, s01: np.ndarray, s11: np.ndarray) -> np.ndarray:
    """``[[s00, s01], [s10, s11]]`` per level as a (q, 2, 2) array."""
    out = np.empty((s00.shape[0], 2, 2))
    out[:, 0, 0], out[:, 1, 0], out[:, 0, 1], out[:, 1, 1] = s00, s10, s01, s11
    return out


def cholesky_2x2(s: np.ndarray) -> np.ndarray:
    """``np.linalg.cholesky`` of a (q, 2, 2) stack of SPD matrices (reads the lower triangles)."""
    a, b, c = _factor_columns(s[:, 0, 0], s[:, 1, 0], s[:, 1, 1])
    return _stack(a, b, np.zeros_like(a), c)


def first_block_factor_2x2(a11: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of ``lam' A_l lam + I`` per level: ``blocked._first_block_factor`` for k = 2.

    ``a11`` is the (q, 2, 2) stack of blocks ``A_l``, ``lam`` any 2 x 2 matrix.
    """
    kernel = _level_kernels.compiled_if_loaded("factor_2x2")
    if kernel is not None:
        out = np.empty((a11.shape[0], 2, 2))
        if kernel(np.ascontiguousarray(a11), np.ascontiguousarray(lam, dtype=float), out):
            return out  # else the numpy forms below raise LinAlgError as LAPACK would
    blocks = a11.reshape(a11.shape[0], 4).T  # rows: A00, A01, A10, A11 (jl order)
    (m00, m01), (m10, m11) = lam.tolist()
    # Entries 00, 10, 11 of lam' A lam: terms (lam[j, i] A[j, l]) lam[l, m] in jl order, as einsum forms them.
    left = np.array([[m00, m00, m10, m10], [m01, m01, m11, m11], [m01, m01, m11, m11]])  # lam[j, i]
    right = np.array([[m00, m10, m00, m10], [m00, m10, m00, m10], [m01, m11, m01, m11]])  # lam[l, m]
    terms = (left[:, :, None] * blocks) * right[:, :, None]  # (entry, jl, q)
    s = ((terms[:, 0] + terms[:, 1]) + terms[:, 2]) + terms[:, 3]
    s += np.array([[1.0], [0.0], [1.0]])  # + I as "+ np.eye(2)" adds it (the 0.0 turns -0.0 into 0.0)
    a, b, c = _factor_columns(s[0], s[1], s[2])
    return _stack(a, b, np.zeros_like(a), c)


def first_block_roots_2x2(l11: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """``g_l = L_l^-1 lam'`` per level: ``blocked._first_block_roots`` for k = 2 (``np.linalg.solve``'s bits)."""
    kernel = _level_kernels.compiled_if_loaded("roots_2x2")
    if kernel is not None:
        out = np.empty((l11.shape[0], 2, 2))
        kernel(np.ascontiguousarray(l11), np.ascontiguousarray(lam, dtype=float), out)
        return out
    return _stack(*_roots(l11, lam))


def first_block_weights_2x2(l11: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """``W_l = g_l' g_l = lam (L_l L_l')^-1 lam'`` per level: ``blocked._first_block_weights`` for k = 2."""
    g00, g10, g01, g11 = _roots(l11, lam)
    w00 = g00 * g00 + g10 * g10
    w10 = g01 * g00 + g11 * g10  # = g00 g01 + g10 g11 bit for bit: products commute exactly
    w11 = g01 * g01 + g11 * g11
    return _stack(w00, w10, w10, w11)


def _roots(l11: np.ndarray, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Entries ``g00, g10, g01, g11`` of ``L^-1 lam'`` as LAPACK's dgesv computes them.

    Without pivoting (``|b| <= |a|``) the LU factors of ``L`` are ``l21 = b / a``
    (times the reciprocal), ``u = [[a, 0], [0, c]]``.  Rows with ``|b| > |a|``
    are swapped first and redone by :func:`_pivoted_roots`.
    """
    a, b, c = l11[:, 0, 0], l11[:, 1, 0], l11[:, 1, 1]
    (m00, m01), (m10, m11) = lam.tolist()  # right-hand sides: columns (m00, m01) and (m10, m11)
    inv_a = 1.0 / a
    l21, inv_c = b * inv_a, 1.0 / c
    g00, g01 = m00 * inv_a, m10 * inv_a
    g10, g11 = (m01 - l21 * m00) * inv_c, (m11 - l21 * m10) * inv_c
    swap = np.abs(b) > np.abs(a)
    if swap.any():
        rows = np.flatnonzero(swap)
        g00[rows], g10[rows], g01[rows], g11[rows] = _pivoted_roots(a[rows], b[rows], c[rows], (m00, m01, m10, m11))
    return g00, g10, g01, g11


def _pivoted_roots(a: np.ndarray, b: np.ndarray, c: np.ndarray, m: tuple[float, ...]) -> tuple[np.ndarray, ...]:
    """:func:`_roots` for rows LAPACK pivots: LU of ``[[b, c], [a, 0]]``, right-hand sides swapped."""
    m00, m01, m10, m11 = m
    inv_b = 1.0 / b
    l21 = a * inv_b
    inv_u11 = 1.0 / -(l21 * c)
    g10, g11 = (m00 - l21 * m01) * inv_u11, (m10 - l21 * m11) * inv_u11
    return (m01 - c * g10) * inv_b, g10, (m11 - c * g11) * inv_b, g11


def rows_times(u: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """``u @ mat`` for a tall ``(q, k)`` array and a small ``k x k`` matrix, without BLAS.

    One broadcast product per column of ``u``: OpenBLAS's threaded ``dgemm``
    on a (1M, 2) array took 3-400 ms on a busy 2-core machine (its threads
    wait for a core), these products ~10 ms.
    """
    out = u[:, :1] * mat[0]
    for j in range(1, u.shape[1]):
        out += u[:, j : j + 1] * mat[j]
    return out

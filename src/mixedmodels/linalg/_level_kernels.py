"""Compiled per-level loops over a big term's 2 x 2 blocks (intercept and slope per level).

A model such as ``y ~ x + (1 + x | subject)`` with a million subjects has a
million 2 x 2 blocks, and every objective evaluation factors them all.  The
closed forms of :mod:`.small` do it in numpy operations on ``(q,)`` columns,
each a pass over memory with its own temporary (~0.1-0.2 s per evaluation at
a million levels); the loops here do the same arithmetic in one pass per
call (~10 ms), with numba (see :func:`.jit.jit`).

:func:`factor_2x2` and :func:`roots_2x2` repeat :mod:`.small`'s operations
in the same order (so LAPACK's, as documented there), and give its bits;
:func:`solve_2x2` and :func:`gradient_total_2x2` are the per-level solves of
the modes and the big term's share of the gradient, as their numpy versions
(:mod:`.modes`, :mod:`.gradient`) compute them within rounding.

The Python bodies are what the tests run to check the algebra without numba.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from .jit import jit

__all__ = ["factor_2x2", "roots_2x2", "solve_2x2", "gradient_total_2x2", "level_slabs", "compiled_if_loaded"]


def factor_2x2(a11: np.ndarray, lam: np.ndarray, out: np.ndarray) -> bool:
    """Lower Cholesky factors of ``lam' A_l lam + I`` into ``out`` (q, 2, 2); False when one is not positive definite.

    Entries of ``lam' A lam`` are summed over ``(j, l) = 00, 01, 10, 11`` in that
    order, as :func:`.small.first_block_factor_2x2` (and ``einsum``) forms them;
    the factor is LAPACK's ``a = sqrt(s00)``, ``b = s10 (1 / a)``, ``c = sqrt(s11 - b^2)``.
    A NaN passes through, as in LAPACK.
    """
    m00, m01, m10, m11 = lam[0, 0], lam[0, 1], lam[1, 0], lam[1, 1]
    for q in range(a11.shape[0]):
        b00, b01, b10, b11 = a11[q, 0, 0], a11[q, 0, 1], a11[q, 1, 0], a11[q, 1, 1]
        s00 = m00 * b00 * m00 + m00 * b01 * m10 + m10 * b10 * m00 + m10 * b11 * m10 + 1.0
        s10 = m01 * b00 * m00 + m01 * b01 * m10 + m11 * b10 * m00 + m11 * b11 * m10 + 0.0
        s11 = m01 * b00 * m01 + m01 * b01 * m11 + m11 * b10 * m01 + m11 * b11 * m11 + 1.0
        if s00 <= 0.0:
            return False
        a = math.sqrt(s00)
        b = s10 * (1.0 / a)
        c2 = s11 - b * b
        if c2 <= 0.0:
            return False
        out[q, 0, 0], out[q, 1, 0], out[q, 0, 1], out[q, 1, 1] = a, b, 0.0, math.sqrt(c2)
    return True


def roots_2x2(l11: np.ndarray, lam: np.ndarray, out: np.ndarray) -> None:
    """``g_l = L_l^-1 lam'`` per level into ``out`` (q, 2, 2), as LAPACK's dgesv (with its row pivoting).

    :func:`.small.first_block_roots_2x2`'s operations, level by level.
    """
    m00, m01, m10, m11 = lam[0, 0], lam[0, 1], lam[1, 0], lam[1, 1]
    for q in range(l11.shape[0]):
        a, b, c = l11[q, 0, 0], l11[q, 1, 0], l11[q, 1, 1]
        if abs(b) > abs(a):  # LU of [[b, c], [a, 0]], right-hand sides swapped
            inv_b = 1.0 / b
            l21 = a * inv_b
            inv_u11 = 1.0 / -(l21 * c)
            g10, g11 = (m00 - l21 * m01) * inv_u11, (m10 - l21 * m11) * inv_u11
            g00, g01 = (m01 - c * g10) * inv_b, (m11 - c * g11) * inv_b
        else:
            inv_a = 1.0 / a
            l21, inv_c = b * inv_a, 1.0 / c
            g00, g01 = m00 * inv_a, m10 * inv_a
            g10, g11 = (m01 - l21 * m00) * inv_c, (m11 - l21 * m10) * inv_c
        out[q, 0, 0], out[q, 1, 0], out[q, 0, 1], out[q, 1, 1] = g00, g10, g01, g11


def solve_2x2(l11: np.ndarray, lam: np.ndarray, rhs: np.ndarray, out: np.ndarray) -> None:
    """``(L_l L_l')^-1 lam' rhs_l`` per level into ``out`` (q, 2): the big term's spherical modes.

    Forward then back substitution with the lower factor ``[[a, 0], [b, c]]``.
    """
    m00, m01, m10, m11 = lam[0, 0], lam[0, 1], lam[1, 0], lam[1, 1]
    for q in range(l11.shape[0]):
        a, b, c = l11[q, 0, 0], l11[q, 1, 0], l11[q, 1, 1]
        r0, r1 = rhs[q, 0], rhs[q, 1]
        t0, t1 = r0 * m00 + r1 * m10, r0 * m01 + r1 * m11  # lam' rhs
        w0 = t0 / a
        w1 = (t1 - b * w0) / c
        out[q, 1] = w1 / c
        out[q, 0] = (w0 - b * out[q, 1]) / a


def gradient_total_2x2(l11: np.ndarray, lam: np.ndarray, a11: np.ndarray, quad: np.ndarray, out: np.ndarray) -> None:
    """``sum_l G_l A_l - G_l Q_l (I - W_l A_l)`` (2 x 2) into ``out``, the big term's share of the gradient.

    ``G_l = (L_l L_l')^-1 lam'`` and ``W_l = lam G_l``, as
    :func:`.gradient._first_term_total` (``quad`` holds the ``Q_l``).
    """
    m00, m01, m10, m11 = lam[0, 0], lam[0, 1], lam[1, 0], lam[1, 1]
    t00 = t01 = t10 = t11 = 0.0
    for q in range(l11.shape[0]):
        a, b, c = l11[q, 0, 0], l11[q, 1, 0], l11[q, 1, 1]
        # G = L^-T L^-1 lam': columns of lam' are (m00, m01) and (m10, m11)
        w0, w1 = m00 / a, m10 / a
        v0, v1 = (m01 - b * w0) / c, (m11 - b * w1) / c
        g10, g11 = v0 / c, v1 / c
        g00, g01 = (w0 - b * g10) / a, (w1 - b * g11) / a
        # W = lam G
        x00, x01 = m00 * g00 + m01 * g10, m00 * g01 + m01 * g11
        x10, x11 = m10 * g00 + m11 * g10, m10 * g01 + m11 * g11
        b00, b01, b10, b11 = a11[q, 0, 0], a11[q, 0, 1], a11[q, 1, 0], a11[q, 1, 1]
        # C = I - W A
        c00, c01 = 1.0 - (x00 * b00 + x01 * b10), -(x00 * b01 + x01 * b11)
        c10, c11 = -(x10 * b00 + x11 * b10), 1.0 - (x10 * b01 + x11 * b11)
        q00, q01, q10, q11 = quad[q, 0, 0], quad[q, 0, 1], quad[q, 1, 0], quad[q, 1, 1]
        # H = G Q, then G A - H C
        h00, h01 = g00 * q00 + g01 * q10, g00 * q01 + g01 * q11
        h10, h11 = g10 * q00 + g11 * q10, g10 * q01 + g11 * q11
        t00 += g00 * b00 + g01 * b10 - (h00 * c00 + h01 * c10)
        t01 += g00 * b01 + g01 * b11 - (h00 * c01 + h01 * c11)
        t10 += g10 * b00 + g11 * b10 - (h10 * c00 + h11 * c10)
        t11 += g10 * b01 + g11 * b11 - (h10 * c01 + h11 * c11)
    out[0, 0], out[0, 1], out[1, 0], out[1, 1] = t00, t01, t10, t11


def compiled_if_loaded(name: str):
    """The numba-compiled kernel ``name`` of this module once numba has been imported (None before, or without it).

    Importing numba costs ~0.4 s, more than these loops save on a model of a
    few thousand levels; a model with many levels has imported it already (the
    compiled rank update of :mod:`.rank_update`).
    """
    return jit(globals()[name]) if "numba" in sys.modules else None


def level_slabs(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, k: int, nlevels: int, tile: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each level's k columns of a CSR ``A21`` (sorted column indices) as a dense slab on the union of their rows.

    Returns ``(level_ptr, rows, values, bounds)`` as :class:`.rank_update.VectorRankUpdate`
    holds them: level l owns entries ``level_ptr[l]:level_ptr[l+1]``, whose
    ``rows`` ascend, ``values`` (entries, k) are its columns on those rows
    (zero where a column has no entry), and ``bounds[l, t]`` is its first
    entry at or past row ``t * tile``.  Two sweeps over the non-zeros in row
    order, no sort and no temporaries of their size (a sort of the 40M
    non-zeros of a crossed design held 2-3 GB).
    """
    m = indptr.shape[0] - 1
    counts = np.zeros(nlevels + 1, dtype=np.int64)
    for i in range(m):
        previous = -1
        for e in range(indptr[i], indptr[i + 1]):
            level = indices[e] // k
            if level != previous:
                counts[level + 1] += 1
                previous = level
    level_ptr = np.cumsum(counts)
    entries = level_ptr[nlevels]
    rows = np.empty(entries, dtype=np.int32)  # rows of A21: the rest block, far below 2^31
    values = np.zeros((entries, k))
    cursor = level_ptr[:nlevels].copy()
    for i in range(m):
        previous = -1
        for e in range(indptr[i], indptr[i + 1]):
            level = indices[e] // k
            if level != previous:
                rows[cursor[level]] = i
                cursor[level] += 1
                previous = level
            values[cursor[level] - 1, indices[e] - level * k] = data[e]
    ntiles = max(1, (m + tile - 1) // tile)
    bounds = np.empty((nlevels, ntiles + 1), dtype=np.int64)
    for level in range(nlevels):
        e, stop = level_ptr[level], level_ptr[level + 1]
        for t in range(ntiles + 1):
            edge = min(t * tile, m)
            while e < stop and rows[e] < edge:
                e += 1
            bounds[level, t] = e
    return level_ptr, rows, values, bounds

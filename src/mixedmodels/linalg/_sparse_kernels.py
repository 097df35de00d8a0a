"""Compiled loops of the sparse rest block (:mod:`.sparse_rest`): triangular solves with many right-hand sides.

Plain Python that :func:`._kernels.jit` compiles; the tests also run the
Python body on small matrices.  SuperLU's own solve is slow with hundreds
of right-hand sides and many small supernodes (3.3 s for 512 columns of a
factor with 66,000 entries); these loops take ~0.1 s.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from . import _kernels

__all__ = ["compiled", "lu_solve_columns"]


def lu_solve_columns(
    lp: np.ndarray, li: np.ndarray, lx: np.ndarray, up: np.ndarray, ui: np.ndarray, ux: np.ndarray, x: np.ndarray
) -> None:
    """``x <- U^-1 L^-1 x`` in place for a C-ordered ``(n, r)`` ``x``.

    ``L`` is unit lower triangular and ``U`` upper triangular, both CSC
    (``indptr``, ``indices``, ``data``; L's stored diagonal is skipped, U's
    diagonal is found in its column).
    """
    n, r = x.shape
    for j in range(n):
        for p in range(lp[j], lp[j + 1]):
            i = li[p]
            if i > j:
                v = lx[p]
                for c in range(r):
                    x[i, c] -= v * x[j, c]
    for j in range(n - 1, -1, -1):
        d = 1.0
        for p in range(up[j], up[j + 1]):
            if ui[p] == j:
                d = ux[p]
        for c in range(r):
            x[j, c] /= d
        for p in range(up[j], up[j + 1]):
            i = ui[p]
            if i < j:
                v = ux[p]
                for c in range(r):
                    x[i, c] -= v * x[j, c]


def compiled(name: str) -> Callable | None:
    """The numba-compiled kernel ``name`` of this module, or None (see :func:`._kernels.jit`)."""
    return _kernels.jit(globals()[name])

"""The big term's per-level sums of one partition in one sweep over its rows, compiled with numba when installed.

For rows ``i`` with level ``l_i`` of the big term, columns ``z_i`` (k),
``x_i`` (p) and the response ``y_i``, pass 2 needs per level

    A11_l = sum_i z_i z_i',        (Z1' [X y])_l = sum_i z_i [x_i', y_i],

the per-level blocks of ``Z1'Z1`` and ``Z1'[X y]``.  With numpy that is one
``bincount`` per column pair (k(k+1)/2 + k (p + 1) passes over the rows);
the compiled loop makes one.  X and y are read where they are (no ``[X y]``
copy).  When z *is* X (``(1 + x | g)`` with ``y ~ 1 + x``: the same array),
``Z1'X`` already holds ``Z1'Z1`` and only that is summed.

:func:`level_sums` is the plain-Python kernel (compiled by
:func:`mixedmodels.linalg.jit.jit`, the package's numba rules: none without
numba or with ``MIXEDMODELS_NO_NUMBA=1``), and :func:`per_level_sums` takes
the compiled loop when there is one, else the bincounts; both give the same
sums up to rounding.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np

__all__ = ["level_sums", "per_level_sums"]


def level_sums(
    levels: np.ndarray, z: np.ndarray, x: np.ndarray, y: np.ndarray, with_zz: bool, a11: np.ndarray, zxy: np.ndarray
) -> None:
    """Add each row's ``z [x' y]`` to ``zxy[l]`` and, if ``with_zz``, ``z z'`` (lower triangle) to ``a11[l]``."""
    k, p = z.shape[1], x.shape[1]
    for i in range(levels.shape[0]):
        lev = levels[i]
        yi = y[i]
        for a in range(k):
            za = z[i, a]
            if with_zz:
                for b in range(a + 1):
                    a11[lev, a, b] += za * z[i, b]
            for j in range(p):
                zxy[lev, a, j] += za * x[i, j]
            zxy[lev, a, p] += za * yi


@lru_cache(maxsize=None)
def _compiled() -> Callable | None:
    from ..linalg.jit import jit

    return jit(level_sums)


def per_level_sums(
    levels: np.ndarray, z: np.ndarray, x: np.ndarray, y: np.ndarray, nlevels: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(a11 (nlevels, k, k), zxy (nlevels, k, p + 1))``: per-level ``z'z`` and ``z'[x y]``.

    ``z is x`` (the same array) skips ``z'z``, read off ``z'x`` instead.
    """
    n, k = z.shape
    p = x.shape[1]
    same = z is x
    kernel = _compiled() if n >= 10_000 else None  # below that, loading the compiled loop costs more than it saves
    if kernel is not None:
        a11, zxy = np.zeros((nlevels, k, k)), np.zeros((nlevels, k, p + 1))
        kernel(
            np.ascontiguousarray(levels, dtype=np.int64),
            np.ascontiguousarray(z, dtype=np.float64),
            np.ascontiguousarray(x, dtype=np.float64),
            np.ascontiguousarray(y, dtype=np.float64),
            not same,
            a11,
            zxy,
        )
        if same:
            a11[:] = zxy[:, :, :k]
        else:
            for a in range(k):
                for b in range(a):
                    a11[:, b, a] = a11[:, a, b]
        return a11, zxy
    zxy = np.empty((nlevels, k, p + 1))
    for a in range(k):
        for j in range(p):
            zxy[:, a, j] = np.bincount(levels, weights=z[:, a] * x[:, j], minlength=nlevels)
        zxy[:, a, p] = np.bincount(levels, weights=z[:, a] * y, minlength=nlevels)
    if same:
        return np.array(zxy[:, :, :k]), zxy
    a11 = np.empty((nlevels, k, k))
    for a in range(k):
        for b in range(a + 1):
            a11[:, a, b] = a11[:, b, a] = np.bincount(levels, weights=z[:, a] * z[:, b], minlength=nlevels)
    return a11, zxy

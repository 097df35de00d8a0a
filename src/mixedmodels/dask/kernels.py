"""The big term's per-level sums of one partition in one sweep over its rows, compiled with numba when installed.

For rows ``i`` with level ``l_i`` of the big term, columns ``z_i`` (k) and
``xy_i = [x_i, y_i]`` (c), pass 2 needs per level

    A11_l = sum_i z_i z_i',        (Z1' xy)_l = sum_i z_i xy_i',

the per-level blocks of ``Z1'Z1`` and ``Z1'[X y]``.  With numpy that is one
``bincount`` per column pair (k(k+1)/2 + k c passes over the rows); the
compiled loop makes one.  :func:`level_sums` is the plain-Python kernel
(compiled by :func:`mixedmodels.linalg.jit.jit`, the package's numba
rules: none without numba or with ``MIXEDMODELS_NO_NUMBA=1``), and
:func:`per_level_sums` takes the compiled loop when there is one, else the
bincounts; both give the same sums up to rounding.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np

__all__ = ["level_sums", "per_level_sums"]


def level_sums(levels: np.ndarray, z: np.ndarray, xy: np.ndarray, a11: np.ndarray, zxy: np.ndarray) -> None:
    """Add each row's ``z z'`` (lower triangle) to ``a11[l]`` and ``z xy'`` to ``zxy[l]``, ``l`` its level."""
    k, c = z.shape[1], xy.shape[1]
    for i in range(levels.shape[0]):
        lev = levels[i]
        for a in range(k):
            za = z[i, a]
            for b in range(a + 1):
                a11[lev, a, b] += za * z[i, b]
            for j in range(c):
                zxy[lev, a, j] += za * xy[i, j]


@lru_cache(maxsize=None)
def _compiled() -> Callable | None:
    from ..linalg.jit import jit

    return jit(level_sums)


def per_level_sums(levels: np.ndarray, z: np.ndarray, xy: np.ndarray, nlevels: int) -> tuple[np.ndarray, np.ndarray]:
    """``(a11 (nlevels, k, k), zxy (nlevels, k, c))``: per-level ``z'z`` and ``z'xy``."""
    n, k = z.shape
    c = xy.shape[1]
    kernel = _compiled() if n >= 10_000 else None  # below that, loading the compiled loop costs more than it saves
    if kernel is not None:
        a11, zxy = np.zeros((nlevels, k, k)), np.zeros((nlevels, k, c))
        kernel(np.ascontiguousarray(levels, dtype=np.int64), np.ascontiguousarray(z, dtype=np.float64),
               np.ascontiguousarray(xy, dtype=np.float64), a11, zxy)
        for a in range(k):
            for b in range(a):
                a11[:, b, a] = a11[:, a, b]
        return a11, zxy
    a11 = np.empty((nlevels, k, k))
    for a in range(k):
        for b in range(a + 1):
            a11[:, a, b] = a11[:, b, a] = np.bincount(levels, weights=z[:, a] * z[:, b], minlength=nlevels)
    zxy = np.empty((nlevels, k, c))
    for a in range(k):
        for j in range(c):
            zxy[:, a, j] = np.bincount(levels, weights=z[:, a] * xy[:, j], minlength=nlevels)
    return a11, zxy

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

__all__ = [
    "level_sums",
    "per_level_sums",
    "present_level_sums",
    "column_facts",
    "plain_column_facts",
]


def level_sums(
    levels: np.ndarray,
    low: int,
    z: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    with_zz: bool,
    counts: np.ndarray,
    a11: np.ndarray,
    zxy: np.ndarray,
) -> None:
    """Add each row's ``z [x' y]`` to ``zxy[l]`` and, if ``with_zz``, ``z z'`` (lower triangle) to ``a11[l]``,
    at ``l = levels[i] - low``; also count the rows per level in ``counts`` unless it is empty.

    ``low = 0`` sums over every level; ``low`` = the rows' smallest level sums over the span of the
    rows' levels (arrays of ``max - min + 1`` levels)."""
    k, p = z.shape[1], x.shape[1]
    counting = counts.shape[0] > 0
    for i in range(levels.shape[0]):
        lev = levels[i] - low
        if counting:
            counts[lev] += 1
        yi = y[i]
        for a in range(k):
            za = z[i, a]
            if with_zz:
                for b in range(a + 1):
                    a11[lev, a, b] += za * z[i, b]
            for j in range(p):
                zxy[lev, a, j] += za * x[i, j]
            zxy[lev, a, p] += za * yi


def column_facts(
    x: np.ndarray, y: np.ndarray, sums: np.ndarray, m2: np.ndarray, binary: np.ndarray, gram: np.ndarray
) -> bool:
    """Column sums, sums of squared deviations from the mean, whether each column is 0/1, and ``x'x`` (lower
    triangle) of a finite ``x``; ``y``'s sum, sum of squares, min and max in ``sums[p:]``.  False (nothing
    usable) at the first non-finite x."""
    n, p = x.shape
    low, high, total, squares = np.inf, -np.inf, 0.0, 0.0
    for i in range(n):
        for j in range(p):
            v = x[i, j]
            if not np.isfinite(v):
                return False
            sums[j] += v
            if v != 0.0 and v != 1.0:
                binary[j] = False
            for b in range(j + 1):
                gram[j, b] += v * x[i, b]
        v = y[i]
        total += v
        squares += v * v
        low = min(low, v)
        high = max(high, v)
    for j in range(p):
        mean = sums[j] / n
        for i in range(n):
            m2[j] += (x[i, j] - mean) ** 2
    sums[p], sums[p + 1], sums[p + 2], sums[p + 3] = total, squares, low, high
    return True


@lru_cache(maxsize=None)
def _compiled() -> Callable | None:
    from ..linalg.jit import jit

    return jit(level_sums)


@lru_cache(maxsize=None)
def _compiled_facts() -> Callable | None:
    from ..linalg.jit import jit

    return jit(column_facts)


SPAN_PER_ROW = 4  # sums over the span of the rows' levels when it is at most this many times the rows


def present_level_sums(
    refs: np.ndarray, z: np.ndarray, x: np.ndarray, y: np.ndarray, nlevels: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(present, a11, zxy)``: the levels with rows (sorted) and their :func:`per_level_sums`, in one compiled
    sweep over the rows into arrays over the span of their levels (``max - min + 1``, not every level);
    None without the compiled loop, or when the span is much wider than the rows."""
    n, k = z.shape
    p = x.shape[1]
    kernel = _compiled() if n >= 10_000 else None
    if kernel is None:
        return None
    levels = np.ascontiguousarray(refs, dtype=np.int64)
    low, high = int(levels.min()), int(levels.max())
    span = high - low + 1
    if span > SPAN_PER_ROW * n:
        return None
    same = z is x
    counts = np.zeros(span, dtype=np.int64)
    a11, zxy = np.zeros((span, k, k)), np.zeros((span, k, p + 1))
    z = np.ascontiguousarray(z, dtype=np.float64)
    x = z if same else np.ascontiguousarray(x, dtype=np.float64)
    kernel(levels, low, z, x, np.ascontiguousarray(y, dtype=np.float64), not same, counts, a11, zxy)
    local = np.flatnonzero(counts)
    if local.size < span:
        a11, zxy = a11[local], zxy[local]
    _complete_a11(a11, zxy, same)
    return local + low, a11, zxy


def _complete_a11(a11: np.ndarray, zxy: np.ndarray, same: bool) -> None:
    """Fill ``a11`` after :func:`level_sums`: read off ``zxy`` when z is x, else mirror its lower triangle."""
    k = a11.shape[1]
    if same:
        a11[:] = zxy[:, :, :k]
        return
    for a in range(k):
        for b in range(a):
            a11[:, b, a] = a11[:, a, b]


def plain_column_facts(
    x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """``(sums, m2, binary, x'x, (sum y, sum y^2, min y, max y))`` of a finite ``x`` in two compiled sweeps
    (:func:`column_facts`); None without the compiled loop, for wide ``x``, or when ``x`` has a non-finite
    value (the caller's numpy path counts them)."""
    n, p = x.shape
    kernel = _compiled_facts() if n >= 10_000 and p <= 16 else None
    if kernel is None:
        return None
    sums, m2, binary, gram = np.zeros(p + 4), np.zeros(p), np.ones(p, dtype=np.bool_), np.zeros((p, p))
    x, y = np.ascontiguousarray(x, dtype=np.float64), np.ascontiguousarray(y, dtype=np.float64)
    if not kernel(x, y, sums, m2, binary, gram):
        return None
    lower = np.tril_indices(p, -1)
    gram.T[lower] = gram[lower]
    return sums[:p], m2, binary, gram, sums[p:]


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
            0,
            np.ascontiguousarray(z, dtype=np.float64),
            np.ascontiguousarray(x, dtype=np.float64),
            np.ascontiguousarray(y, dtype=np.float64),
            not same,
            np.zeros(0, dtype=np.int64),  # no counts
            a11,
            zxy,
        )
        _complete_a11(a11, zxy, same)
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

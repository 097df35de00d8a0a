"""Compiled loops for the hot path, with numba when it is installed.

numba is optional (the ``fast`` extra).  Each kernel here is plain Python
that numba compiles on first use (cached on disk, so later processes load
it); :func:`compiled` returns None when numba is missing or disabled with
``MIXEDMODELS_NO_NUMBA=1``, and callers then take their numpy/scipy path.
The Python bodies are also what the tests run to check the loops' algebra
without a compiler.
"""

from __future__ import annotations

import sys
from typing import Callable

import numpy as np

from .jit import jit

__all__ = ["compiled", "compiled_if_loaded", "jit", "level_syrk", "grouped_scatter", "scaled_lower_copy"]


def level_syrk(indptr: np.ndarray, rows: np.ndarray, values: np.ndarray, factors: np.ndarray,
               bounds: np.ndarray, row_scale: np.ndarray, out: np.ndarray) -> None:
    """Subtract ``sum_l (D V_l g_l')(D V_l g_l')'`` from the lower triangle of ``out``, level by level.

    ``D = diag(row_scale)`` (ones for the plain update; the rest terms'
    lambdas when the caller wants the scaled block in one pass).

    Level ``l`` owns entries ``indptr[l]:indptr[l+1]`` of ``rows`` (sorted,
    ascending) and ``values`` (one row of k values per entry): ``V_l`` is the
    level's k columns of ``A21`` on those rows.  ``factors[l]`` is the k x k
    ``g_l`` with ``W_l = g_l' g_l``.  This is MixedModels.jl's per-level
    ``rankUpdate!`` for a sparse ``A21``: one small product per level, its
    lower triangle subtracted straight from the dense ``out`` (a copy of A22).

    The rows are cut into tiles (``bounds[l, t]`` is level l's first entry at
    or past tile t) and the levels are swept once per pair of tiles, so the
    scattered writes stay inside one block of ``out`` that fits in cache:
    the 1M-row design's 2,003^2 block is 32 MB, and untiled writes ran 4x
    slower whenever another process shared the cache.  Every entry still
    receives its levels' terms in level order, so tiling does not change a bit.
    (One function, not several, so that numba compiles it without helpers.)
    """
    nlevels, k = factors.shape[0], factors.shape[1]
    scaled = np.empty((k, values.shape[0]))  # V_l g_l', column-wise
    for lev in range(nlevels):
        for e in range(indptr[lev], indptr[lev + 1]):
            for a in range(k):
                total = 0.0
                for c in range(k):
                    total += values[e, c] * factors[lev, a, c]
                scaled[a, e] = total * row_scale[rows[e]]
    first, second = scaled[0], scaled[min(1, k - 1)]
    ntiles = bounds.shape[1] - 1
    for tile_p in range(ntiles):
        for tile_s in range(tile_p + 1):
            for lev in range(nlevels):
                for p in range(bounds[lev, tile_p], bounds[lev, tile_p + 1]):
                    target = out[rows[p]]
                    stop = p + 1 if tile_s == tile_p else bounds[lev, tile_s + 1]
                    if k == 1:  # scalar big term (InstEval's students)
                        x0 = first[p]
                        for s in range(bounds[lev, tile_s], stop):
                            target[rows[s]] -= x0 * first[s]
                    elif k == 2:  # intercept + slope, the common case: ~2x faster without the loop over a
                        x0, x1 = first[p], second[p]
                        for s in range(bounds[lev, tile_s], stop):
                            target[rows[s]] -= x0 * first[s] + x1 * second[s]
                    else:
                        for s in range(bounds[lev, tile_s], stop):
                            total = 0.0
                            for a in range(k):
                                total += scaled[a, p] * scaled[a, s]
                            target[rows[s]] -= total


def scaled_lower_copy(source: np.ndarray, scale: np.ndarray, out: np.ndarray) -> None:
    """``out[i, j] = scale[i] * source[i, j] * scale[j]`` on the lower triangle (the upper is not written)."""
    for i in range(source.shape[0]):
        si = scale[i]
        for j in range(i + 1):
            out[i, j] = si * source[i, j] * scale[j]


def grouped_scatter(flat: np.ndarray, values: np.ndarray, group: np.ndarray, weights: np.ndarray, out: np.ndarray) -> None:
    """``out[pos] -= sum(values[i] * weights[group[i]] for i with flat[i] == pos)``, ``flat`` sorted.

    The scalar big term's update (:class:`.rank_update.ScalarRankUpdate`)
    subtracted in one pass from a copy of A22 (``out``, flat, C order).  Each
    position's products are summed from 0.0 in entry order and then
    subtracted, exactly as ``a22 - bincount(flat, products)`` does, so both
    paths give the same bits.
    """
    i, count = 0, flat.shape[0]
    while i < count:
        position, total = flat[i], 0.0
        while i < count and flat[i] == position:
            total += values[i] * weights[group[i]]
            i += 1
        out[position] -= total


def compiled(name: str) -> Callable | None:
    """The numba-compiled version of this module's kernel ``name``, or None (see :func:`jit`)."""
    return jit(globals()[name])


def compiled_if_loaded(name: str) -> Callable | None:
    """:func:`compiled`, but only once numba has been imported (None before).

    For kernels that save ~1 ms per evaluation: importing numba and loading
    a cached kernel (~0.4 s) would cost a single fit more than they save.
    """
    return compiled(name) if "numba" in sys.modules else None

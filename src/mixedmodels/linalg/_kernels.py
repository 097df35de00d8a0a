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

__all__ = [
    "compiled",
    "compiled_if_loaded",
    "jit",
    "level_syrk",
    "grouped_scatter",
    "scaled_lower_copy",
    "level_gradient_sums",
    "lower_trace_sums",
]


def level_syrk(
    indptr: np.ndarray,
    rows: np.ndarray,
    values: np.ndarray,
    factors: np.ndarray,
    bounds: np.ndarray,
    row_scale: np.ndarray,
    out: np.ndarray,
) -> None:
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
    Each level's ``D V_l g_l'`` is formed in a small buffer for the tiles
    it meets (recomputed per pair of tiles: k^2 flops an entry, against the
    update's k per pair of entries), not for every entry of ``A21`` at once:
    that array (k values per non-zero) held 330 MB for the 20M-row crossed
    design, and for a one-tile rest block (X and y beside a million
    subjects) cost more to write than the update itself.
    (One function, not several, so that numba compiles it without helpers.)
    """
    nlevels, k = factors.shape[0], factors.shape[1]
    ntiles = bounds.shape[1] - 1
    longest = 1
    for lev in range(nlevels):
        longest = max(longest, indptr[lev + 1] - indptr[lev])
    first = np.empty((k, longest))  # D V g' on tile_p's entries of the level
    second = np.empty((k, longest))  # ... and on tile_s's (the same when tile_s == tile_p)
    for tile_p in range(ntiles):
        for tile_s in range(tile_p + 1):
            for lev in range(nlevels):
                p0, p1 = bounds[lev, tile_p], bounds[lev, tile_p + 1]
                s0 = bounds[lev, tile_s]
                s1 = p1 if tile_s == tile_p else bounds[lev, tile_s + 1]
                if p0 == p1 or s0 == s1:
                    continue
                for e in range(p0, p1):
                    for a in range(k):
                        total = 0.0
                        for c in range(k):
                            total += values[e, c] * factors[lev, a, c]
                        first[a, e - p0] = total * row_scale[rows[e]]
                other = first
                if tile_s != tile_p:
                    other = second
                    for e in range(s0, s1):
                        for a in range(k):
                            total = 0.0
                            for c in range(k):
                                total += values[e, c] * factors[lev, a, c]
                            second[a, e - s0] = total * row_scale[rows[e]]
                for p in range(p0, p1):
                    target = out[rows[p]]
                    i = p - p0
                    stop = p + 1 if tile_s == tile_p else s1
                    if k == 1:  # scalar big term (InstEval's students)
                        x0 = first[0, i]
                        for s in range(s0, stop):
                            target[rows[s]] -= x0 * other[0, s - s0]
                    elif k == 2:  # intercept + slope, the common case: ~2x faster without the loop over a
                        x0, x1 = first[0, i], first[1, i]
                        for s in range(s0, stop):
                            target[rows[s]] -= x0 * other[0, s - s0] + x1 * other[1, s - s0]
                    else:
                        for s in range(s0, stop):
                            total = 0.0
                            for a in range(k):
                                total += first[a, i] * other[a, s - s0]
                            target[rows[s]] -= total


def scaled_lower_copy(source: np.ndarray, scale: np.ndarray, out: np.ndarray) -> None:
    """``out[i, j] = scale[i] * source[i, j] * scale[j]`` on the lower triangle (the upper is not written)."""
    for i in range(source.shape[0]):
        si = scale[i]
        for j in range(i + 1):
            out[i, j] = si * source[i, j] * scale[j]


def grouped_scatter(
    flat: np.ndarray, values: np.ndarray, group: np.ndarray, weights: np.ndarray, out: np.ndarray
) -> None:
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


def level_gradient_sums(
    indptr: np.ndarray,
    rows: np.ndarray,
    values: np.ndarray,
    pmat: np.ndarray,
    row_scale: np.ndarray,
    nlead: int,
    weights: np.ndarray,
    row_term: np.ndarray,
    out_q: np.ndarray,
    out_terms: np.ndarray,
) -> None:
    """Per level l of the big term, the sums the gradient needs from ``P`` on the level's rows.

    With ``V_l`` the level's k columns of ``A21`` on its rows below ``nlead``
    (``rows``/``values`` as in :func:`level_syrk`), ``D = diag(row_scale)`` and
    ``H = P D V_l`` (only P's lower triangle is read: the rows are ascending):

    * ``out_q[l] = V_l' D H`` (the quadratic form ``Q_l`` of the gradient);
    * ``out_terms[row_term[i]] += H_i W_l V_li'`` for each of its rows i with
      ``row_term[i] >= 0`` (``W_l = weights[l]``): the update's share of
      ``sum_{i in t} (P D A21 W A21')_ii`` per rest term t.
    """
    nlevels, k = out_q.shape[0], values.shape[1]
    longest = 0
    for lev in range(nlevels):
        longest = max(longest, indptr[lev + 1] - indptr[lev])
    h = np.zeros((max(longest, 1), k))
    scaled = np.zeros((max(longest, 1), k))
    for lev in range(nlevels):
        start, n = indptr[lev], 0
        while start + n < indptr[lev + 1] and rows[start + n] < nlead:
            n += 1
        for e in range(n):
            d = row_scale[rows[start + e]]
            for a in range(k):
                scaled[e, a] = d * values[start + e, a]
                h[e, a] = 0.0
        if k == 1:  # scalar big term (InstEval): ~3x faster without the loops over a
            h1, s1 = h[:, 0], scaled[:, 0]
            for e in range(n):
                prow = pmat[rows[start + e]]
                se, total = s1[e], 0.0
                for f in range(e):
                    pef = prow[rows[start + f]]
                    total += pef * s1[f]
                    h1[f] += pef * se
                h1[e] += total + prow[rows[start + e]] * se
        else:
            for e in range(n):
                prow = pmat[rows[start + e]]
                for f in range(e):
                    pef = prow[rows[start + f]]
                    for a in range(k):
                        h[e, a] += pef * scaled[f, a]
                        h[f, a] += pef * scaled[e, a]
                pee = prow[rows[start + e]]
                for a in range(k):
                    h[e, a] += pee * scaled[e, a]
        for a in range(k):
            for b in range(k):
                total = 0.0
                for e in range(n):
                    total += scaled[e, a] * h[e, b]
                out_q[lev, a, b] = total
        for e in range(n):
            term = row_term[rows[start + e]]
            if term >= 0:
                total = 0.0
                for a in range(k):
                    for b in range(k):
                        total += h[e, a] * weights[lev, a, b] * values[start + e, b]
                out_terms[term] += total


def lower_trace_sums(
    pmat: np.ndarray, a22: np.ndarray, row_scale: np.ndarray, row_term: np.ndarray, nlead: int, out: np.ndarray
) -> None:
    """``out[t] += sum_{j in t} sum_k P_jk D_k A22_kj`` over rows and columns below ``nlead``.

    Reads the lower triangles of the symmetric ``pmat`` and ``a22``;
    ``row_term[j]`` is j's rest term (-1: none).
    """
    for i in range(nlead):
        ti, di = row_term[i], row_scale[i]
        prow, arow = pmat[i], a22[i]
        for j in range(i):
            v = prow[j] * arow[j]
            if v != 0.0:
                if ti >= 0:
                    out[ti] += v * row_scale[j]
                tj = row_term[j]
                if tj >= 0:
                    out[tj] += v * di
        if ti >= 0:
            out[ti] += prow[i] * arow[i] * di

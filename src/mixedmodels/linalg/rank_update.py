"""The rank update ``A21 W A21'`` of the rest block, precomputed per big term.

Scalar big term (:class:`ScalarRankUpdate`)
-------------------------------------------

When the first (big) random-effects term has one column, ``W`` is diagonal
with ``w_c = lambda^2 / (lambda^2 a11_c + 1)``: levels with the same diagonal
``a11_c`` (e.g. the same number of observations) share their weight.  The
update is then a weighted sum of fixed pieces,

    A21 W A21' = sum_g  w_g  sum_{c in g} a_c a_c',

whose non-zero lower-triangle entries are found once.  Each evaluation is a
single weighted ``bincount`` over them instead of a sparse matrix product,
and only the lower triangle is formed (all the Cholesky factorization reads).

For InstEval (2,972 students in 86 weight groups, a 1,159 x 1,159 update)
this is 1.2 M entries per evaluation instead of 4.1 M products.

Big term with k > 1 columns (:class:`VectorRankUpdate`)
-------------------------------------------------------
``W`` is block diagonal with ``k x k`` blocks ``W_l = g_l' g_l``.  Each
level's k columns of ``A21`` are stored once as a dense ``rows x k`` slab on
the union of their non-zero rows, and a compiled loop
(:func:`._kernels.level_syrk`) adds each level's ``(V_l g_l')(V_l g_l')'``
to the lower triangle.  For the 1M-row crossed benchmark (10,000 subjects
with a random slope, 2,003 rest rows) this is ~0.2 s per evaluation against
1.2-1.9 s for scipy's sparse ``A21 W A21'``.  It needs numba; without it
:func:`VectorRankUpdate.build` returns None and the caller keeps scipy's path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from . import _kernels, _level_kernels

__all__ = ["ScalarRankUpdate", "VectorRankUpdate", "tile_bounds"]

# Rows per tile of the level-by-level update: a 1,024^2 block of doubles (8 MB)
# stays in cache; measured on the 1M design: 0.09 s per update against 0.38 s
# untiled while another process shared the cache (0.10 s with 512-row tiles).
_TILE_ROWS = 1024


def _lower_pairs(a21: sp.csc_array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of non-zeros in the same column with row_i >= row_j: flat position, product, column.

    Columns with the same number of non-zeros share one triangular index
    pattern, so the pairs are built with one broadcast per distinct count.
    """
    m = a21.shape[0]
    counts = np.diff(a21.indptr)
    rows = a21.indices.astype(np.int64)
    # positions into a21.data fit 32 bits for any a21 we can hold; halving the index arrays matters here
    index_type = np.int32 if a21.nnz < 2**31 else np.int64
    indptr = a21.indptr.astype(index_type)
    firsts, seconds, columns = [], [], []
    for k in np.unique(counts[counts > 0]):
        cols = np.flatnonzero(counts == k)
        tri_i, tri_j = (t.astype(index_type) for t in np.tril_indices(k))
        starts = indptr[cols][:, None]
        firsts.append((starts + tri_i).ravel())
        seconds.append((starts + tri_j).ravel())
        columns.append(np.repeat(cols, tri_i.size))
    if not firsts:
        return np.empty(0, np.int64), np.empty(0), np.empty(0, np.intp)
    first, second = np.concatenate(firsts), np.concatenate(seconds)
    return rows[first] * m + rows[second], a21.data[first] * a21.data[second], np.concatenate(columns)


def _merge_by_position(flat: np.ndarray, group: np.ndarray, values: np.ndarray, ngroups: int, m: int):
    """Entries sorted by position (then group), with the values of equal (position, group) summed.

    Sorted by position so that applying the update is one sweep through the
    m x m block.  scipy's COO -> CSR conversion is a counting sort by
    position: InstEval's 2.1M pairs in 0.11 s, against 0.25 s for argsorts.
    """
    merged = sp.coo_array((values, (flat, group)), shape=(m * m, ngroups)).tocsr()
    merged.sum_duplicates()
    positions = np.repeat(np.arange(m * m, dtype=np.int64), np.diff(merged.indptr))
    return positions, merged.indices.astype(np.intp), merged.data


@dataclass(frozen=True, eq=False)
class ScalarRankUpdate:
    """Precomputed lower-triangle pieces of ``A21 W A21'`` grouped by weight.

    Attributes
    ----------
    flat : ndarray of int64
        Positions ``i * m + j`` (``i >= j``) in the m x m update.
    values : ndarray
        The summed products ``a_ic a_jc`` over the levels c of each group.
    group : ndarray of intp
        The weight group each entry belongs to.
    representative : ndarray of intp
        One level of each group (its weight is the group's).
    size : int
        m, the order of the update.
    """

    flat: np.ndarray
    values: np.ndarray
    group: np.ndarray
    representative: np.ndarray
    size: int

    @classmethod
    def build(cls, a21: sp.csr_array | sp.csc_array, a11_diagonal: np.ndarray) -> "ScalarRankUpdate":
        """Group the levels by their diagonal (hence weight) and sum their pieces per group."""
        csc = sp.csc_array(a21)
        csc.sort_indices()
        m = csc.shape[0]
        uniques, level_group = np.unique(a11_diagonal, return_inverse=True)
        representative = np.zeros(uniques.size, dtype=np.intp)
        representative[level_group] = np.arange(level_group.size)
        flat, values, column = _lower_pairs(csc)
        flat, group, values = _merge_by_position(flat, level_group[column], values, uniques.size, m)
        return cls(flat, values, group, representative, m)

    def apply(self, weights: np.ndarray) -> np.ndarray:
        """The update for per-level weights, lower triangle only (upper is zero), C-ordered."""
        weighted = self.values * weights[self.representative][self.group]
        return np.bincount(self.flat, weights=weighted, minlength=self.size * self.size).reshape(self.size, self.size)

    def subtract_from(self, a22: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """``A22 - A21 W A21'``; only its lower triangle is updated.

        Once numba is loaded, one compiled pass over the entries (sorted by
        position) into a copy of A22; otherwise :meth:`apply` and a
        subtraction.  Both give the same bits.
        """
        kernel = _kernels.compiled_if_loaded("grouped_scatter")
        if kernel is None:
            return np.subtract(a22, self.apply(weights))
        out = a22.copy()
        kernel(self.flat, self.values, self.group, weights[self.representative], out.reshape(-1))
        return out


@dataclass(frozen=True, eq=False)
class VectorRankUpdate:
    """Per-level dense slabs of ``A21`` for a big term with k columns, and the compiled loop.

    Attributes
    ----------
    indptr : ndarray (q + 1,)
        Level l's entries are ``indptr[l]:indptr[l+1]``.
    rows : ndarray of int32 or int64
        Row of ``A21`` of each entry, ascending within a level.
    values : ndarray (entries, k)
        The level's k columns on those rows (zeros where one column has none).
    size : int
        m, the order of the update.
    kernel : callable
        The compiled :func:`._kernels.level_syrk`.
    bounds : ndarray (q, tiles + 1)
        Each level's first entry in each tile of rows (see the kernel).
    """

    indptr: np.ndarray
    rows: np.ndarray
    values: np.ndarray
    size: int
    kernel: object
    bounds: np.ndarray

    @classmethod
    def build(cls, a21: sp.csr_array | sp.csc_array, ncols: int) -> "VectorRankUpdate | None":
        """Gather each level's columns onto the union of their rows (None without numba)."""
        kernel = _kernels.compiled("level_syrk")
        if kernel is None:
            return None
        slabs = _level_kernels.compiled_if_loaded("level_slabs")  # loaded: compiled("level_syrk") imported numba
        if slabs is not None:
            csr = sp.csr_array(a21)
            if not csr.has_sorted_indices:
                csr = csr.sorted_indices()
            nlevels = a21.shape[1] // ncols
            indptr, rows, values, bounds = slabs(csr.indptr, csr.indices, csr.data, ncols, nlevels, _TILE_ROWS)
            return cls(indptr, rows, values, a21.shape[0], kernel, bounds)
        coo = sp.coo_array(a21)
        m = coo.shape[0]
        level, column = np.divmod(coo.col.astype(np.int64), ncols)
        keys, entry = np.unique(level * m + coo.row, return_inverse=True)
        values = np.zeros((keys.size, ncols))
        values[entry, column] = coo.data
        entry_level, rows = np.divmod(keys, m)
        nlevels = a21.shape[1] // ncols
        indptr = np.zeros(nlevels + 1, dtype=np.int64)
        np.cumsum(np.bincount(entry_level, minlength=nlevels), out=indptr[1:])
        return cls(indptr, rows, values, m, kernel, tile_bounds(keys, nlevels, m, _TILE_ROWS))

    def subtract_from(self, a22: np.ndarray, factors: np.ndarray) -> np.ndarray:
        """``A22 - A21 W A21'`` for per-level factors ``g_l`` (``W_l = g_l' g_l``); only its lower triangle is updated."""
        return self.subtract_scaled(a22.copy(), factors, np.ones(self.size))

    def subtract_scaled(self, out: np.ndarray, factors: np.ndarray, row_scale: np.ndarray) -> np.ndarray:
        """``out - D A21 W A21' D`` in place (lower triangle), ``D = diag(row_scale)``; returns ``out``."""
        self.kernel(self.indptr, self.rows, self.values, np.ascontiguousarray(factors), self.bounds, row_scale, out)
        return out


def tile_bounds(keys: np.ndarray, nlevels: int, m: int, tile: int) -> np.ndarray:
    """Per level, its first entry at or past each tile of ``tile`` rows (last column: its end).

    ``keys`` are ``level * m + row``, sorted: one ``searchsorted`` finds them all.
    """
    ntiles = max(1, -(-m // tile))
    edges = np.minimum(np.arange(ntiles + 1) * tile, m)
    return np.searchsorted(keys, np.arange(nlevels)[:, None] * m + edges[None, :]).astype(np.int64)

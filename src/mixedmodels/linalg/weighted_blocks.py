"""Blocked cross-products that are a weighted sum of stored ones: ``A(c) = sum_k c_k A_k``.

A residual covariance ``sigma^2 R`` whose inverse is a weighted sum of fixed
patterns (a stratum's rows, the AR(1) lag pairs; see
:mod:`mixedmodels.design.residual`) makes ``M' R^-1 M`` (``M = [Z X y]``) a
weighted sum of cross-products that do not depend on the weights.  Each is
formed once, in the blocks of :class:`~.blocked.BlockedCrossProducts`, with the
same column scales for all; an evaluation adds them up, which costs the size
of the blocks times the number of pieces and touches no n-sized array.

A piece is either the cross-product of a set of rows, ``M_S' M_S``, or the
symmetric lag term of pairs of rows ``(a_p, b_p)``,

    sum_p (m_a m_b' + m_b m_a') = (G(M_a + M_b) - G(M_a - M_b)) / 2,

formed from the sums and differences of the paired rows (``G(N) = N'N``).
That needs the two rows of a pair to share each term's level, which the
residual structure checks (its groups are nested in the grouping factors).
When ``[Z X y]`` is small enough to hold densely and to multiply
(``_DENSE_ENTRIES``, ``_DENSE_FLOPS``), every
piece is instead ``M_a' M_b (+ M_b' M_a)`` of the dense matrix, which
avoids the sparse builder's overhead on small data.

All pieces are stored side by side in one array (a row per piece), so that
combining them is one vector-matrix product.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from ._residual_kernels import (
    compiled_least_squares_rss,
    compiled_piece_derivatives,
    compiled_residual_newton,
    compiled_residual_values,
    piece_derivatives,
    position_pairs,
)
from .blocked import _DENSE_LIMIT, BlockedCrossProducts, TermLayout
from .dense_system import dense_crossproducts

# the exact derivatives over the pieces' coefficients and the whole Newton fit, compiled (linalg/_residual_kernels.py)
__all__ = [
    "WeightedBlocks",
    "compiled_least_squares_rss",
    "compiled_piece_derivatives",
    "compiled_residual_newton",
    "compiled_residual_values",
    "piece_derivatives",
    "position_pairs",
]

# Below this many entries of [Z X y] the pieces come from the dense matrix,
_DENSE_ENTRIES = 4_000_000
# and only while n (q + p + 1)^2, the dense products' flops per piece, stays below this: with one term
# of 10 rows per level the columns grow with the rows and the dense products as n^3, and OpenBLAS
# threads the lag pieces' products from ~1M, which stall on a busy machine (CPU time at load 5-7: 500
# rows x 53 columns 17-25 ms against 2.5 ms for the blocked builder, 1,000 x 103 60-70 ms against ~8 ms
# for the whole fit; 300 x 33 1.25 ms against 1.4-1.6).  The reference fits' 100-400 rows x 15-39
# columns (0.07-0.27M) stay dense, where it saves the blocked builder's overhead.
_DENSE_FLOPS = 500_000


@dataclass(frozen=True, eq=False)
class WeightedBlocks:
    """The stored pieces ``A_k`` of ``A(c) = sum_k c_k A_k``, ready to combine.

    Attributes
    ----------
    layouts : tuple of TermLayout
        Shared by every piece (one set of column scales).
    packed : ndarray (pieces, size)
        Row k holds piece k's ``a11`` (q1 k1 k1 values), ``a21`` (dense: m q1 k1
        values; sparse: the data of ``a21_pattern``) and ``a22`` (m m), flattened.
    shapes : tuple
        ``a11``'s and ``a22``'s shapes and the length of ``a21``'s part.
    a21_pattern : (indices, indptr, shape) or None
        The CSR pattern of a sparse ``a21`` (the union of the pieces'); None when dense.
    nfixef, nobs : int
    """

    layouts: tuple[TermLayout, ...]
    packed: np.ndarray
    shapes: tuple[tuple[int, ...], tuple[int, ...], int, tuple[int, int]]
    a21_pattern: tuple[np.ndarray, np.ndarray, tuple[int, int]] | None
    nfixef: int
    nobs: int
    dense: np.ndarray | None = None  # the pieces as dense matrices, when they were formed as such

    @classmethod
    def build(
        cls,
        refs: list[np.ndarray],
        zs: list[np.ndarray],
        nlevels: list[int],
        xy: np.ndarray,
        layouts: tuple[TermLayout, ...],
        pieces: Sequence,
    ) -> "WeightedBlocks":
        """Each piece's blocks (``piece.rows``, with ``piece.partner`` for a lag term), stored side by side."""
        nfixef, nobs = xy.shape[1] - 1, xy.shape[0]
        dense = _dense_model_matrix(refs, zs, nlevels, xy, layouts)
        if dense is not None:
            grams = np.stack([_dense_gram(dense, piece) for piece in pieces])
            return cls(layouts, *_packed_grams(grams, layouts[0]), None, nfixef, nobs, grams)
        blocks = [_piece_blocks(refs, zs, nlevels, xy, layouts, piece) for piece in pieces]
        a21, pattern = _stack_a21([b.a21 for b in blocks])
        a11, a22 = np.stack([b.a11 for b in blocks]), np.stack([b.a22 for b in blocks])
        packed = np.hstack([a11.reshape(len(blocks), -1), a21.reshape(len(blocks), -1), a22.reshape(len(blocks), -1)])
        dense_a21 = pattern is None
        shapes = (a11.shape[1:], a22.shape[1:], a21[0].size, blocks[0].a21.shape if dense_a21 else pattern[2])
        return cls(layouts, np.ascontiguousarray(packed), shapes, pattern, nfixef, nobs)

    @property
    def npieces(self) -> int:
        return self.packed.shape[0]

    def piece(self, k: int) -> BlockedCrossProducts:
        """Piece k alone (its blocks)."""
        return self.combine(np.eye(self.npieces)[k])

    def dense_pieces(self) -> np.ndarray:
        """Every piece as one dense matrix, (pieces, N, N): the first term's diagonal blocks, ``a21`` below
        them and its transpose beside them, ``a22`` (the layout of
        :func:`~.dense_system.dense_crossproducts`), placed for all pieces at once (the products themselves
        when they were formed from the dense ``[Z X y]``: the same matrices)."""
        if self.dense is not None:
            return self.dense
        if self.a21_pattern is not None:
            return np.stack([dense_crossproducts(self.piece(k)) for k in range(self.npieces)])
        shape11, shape22, size21, shape21 = self.shapes
        q1 = shape11[0] * shape11[1]
        size, npieces, k1 = q1 + shape22[0], self.npieces, shape11[1]
        n11 = math.prod(shape11)
        out = np.zeros((npieces, size, size))
        starts = np.arange(shape11[0])[:, None, None] * k1
        out[:, starts + np.arange(k1)[:, None], starts + np.arange(k1)] = self.packed[:, :n11].reshape(-1, *shape11)
        a21 = self.packed[:, n11 : n11 + size21].reshape(npieces, *shape21)
        out[:, q1:, :q1] = a21
        out[:, :q1, q1:] = np.swapaxes(a21, 1, 2)
        out[:, q1:, q1:] = self.packed[:, n11 + size21 :].reshape(npieces, *shape22)
        return out

    def combine(self, coefficients: np.ndarray) -> BlockedCrossProducts:
        """``sum_k c_k A_k`` as blocks to factor (no precomputed rank-update plan: the values change every time)."""
        flat = np.asarray(coefficients, dtype=float) @ self.packed
        shape11, shape22, size21, shape21 = self.shapes
        n11 = math.prod(shape11)
        a11 = flat[:n11].reshape(shape11)
        part21 = flat[n11 : n11 + size21]
        a22 = flat[n11 + size21 :].reshape(shape22)
        if self.a21_pattern is None:
            a21 = part21.reshape(shape21)
        else:
            indices, indptr, shape = self.a21_pattern
            a21 = sp.csr_array((part21, indices, indptr), shape=shape)
        return BlockedCrossProducts(self.layouts, a11, a21, a22, self.nfixef, self.nobs)


def _dense_model_matrix(refs, zs, nlevels, xy, layouts) -> np.ndarray | None:
    """``[Z X y]`` as a dense n x (q + p + 1) array (columns scaled as the layouts say), when small enough
    and when A21 would be dense too (as :meth:`BlockedCrossProducts.build` decides); else None."""
    n = xy.shape[0]
    sizes = [lay.size for lay in layouts]
    total = sum(sizes) + xy.shape[1]
    if n * total > _DENSE_ENTRIES or n * total * total > _DENSE_FLOPS or (total - sizes[0]) * sizes[0] > _DENSE_LIMIT:
        return None
    out = np.zeros((n, total))
    start, rows = 0, np.arange(n)
    for r, z, lay in zip(refs, zs, layouts):
        k = lay.ncols
        cols = start + r[:, None] * k + np.arange(k)
        out[rows[:, None], cols] = z / lay.scales
        start += lay.size
    out[:, start:] = xy
    return out


def _dense_gram(m: np.ndarray, piece) -> np.ndarray:
    """One piece from the dense ``[Z X y]``: ``M_a'M_a``, or ``M_a'M_b + M_b'M_a`` for a lag term (symmetric:
    numpy forms ``A'A`` by a symmetric rank update; a piece of all rows, sorted and distinct, is ``M'M`` itself)."""
    a = m if piece.partner is None and piece.rows.size == m.shape[0] else m[piece.rows]
    if piece.partner is None:
        return a.T @ a
    cross = a.T @ m[piece.partner]
    return cross + cross.T


def _packed_grams(grams: np.ndarray, first: TermLayout) -> tuple[np.ndarray, tuple]:
    """The dense pieces' blocks packed side by side, all pieces at once, and their shapes: the first term's
    diagonal blocks, ``a21`` below them, ``a22`` (the layout of :func:`~.dense_system.dense_crossproducts`;
    the first term's levels share no row, so the rest of its block is zero).  Copies of the grams' entries."""
    npieces, size = grams.shape[:2]
    q1, k1, size1 = first.nlevels, first.ncols, first.size
    level = np.arange(q1)
    a11 = grams[:, :size1, :size1].reshape(npieces, q1, k1, q1, k1)[:, level, :, level, :]  # (q1, pieces, k1, k1)
    a21, a22 = grams[:, size1:, :size1], grams[:, size1:, size1:]
    packed = np.concatenate(
        [a11.swapaxes(0, 1).reshape(npieces, -1), a21.reshape(npieces, -1), a22.reshape(npieces, -1)], axis=1
    )
    m = size - size1
    return packed, ((q1, k1, k1), (m, m), m * size1, (m, size1))


def _rows_blocks(refs, zs, nlevels, xy, layouts, rows: np.ndarray, signs: tuple[np.ndarray, np.ndarray] | None = None):
    """The blocks of the rows ``rows`` (or of ``m_a + sign m_b`` for the pairs in ``signs``)."""
    if signs is None:
        return BlockedCrossProducts.build(
            [r[rows] for r in refs], [z[rows] for z in zs], nlevels, xy[rows], layouts=layouts, allow_sparse=False
        )
    first, second, sign = rows, signs[0], signs[1]
    return BlockedCrossProducts.build(
        [r[first] for r in refs],
        [z[first] + sign * z[second] for z in zs],
        nlevels,
        xy[first] + sign * xy[second],
        layouts=layouts,
        allow_sparse=False,
    )


def _piece_blocks(refs, zs, nlevels, xy, layouts, piece) -> BlockedCrossProducts:
    if piece.partner is None:
        return _rows_blocks(refs, zs, nlevels, xy, layouts, piece.rows)
    plus = _rows_blocks(refs, zs, nlevels, xy, layouts, piece.rows, (piece.partner, 1.0))
    minus = _rows_blocks(refs, zs, nlevels, xy, layouts, piece.rows, (piece.partner, -1.0))
    a21 = (plus.a21 - minus.a21) * 0.5
    return BlockedCrossProducts(
        layouts,
        (plus.a11 - minus.a11) * 0.5,
        sp.csr_array(a21) if sp.issparse(a21) else a21,
        (plus.a22 - minus.a22) * 0.5,
        plus.nfixef,
        plus.nobs,
    )


def _stack_a21(blocks: list) -> tuple[np.ndarray, tuple | None]:
    """Dense blocks stacked; sparse ones as data arrays on the union of their patterns."""
    if not any(sp.issparse(b) for b in blocks):
        return np.stack(blocks), None
    coos = [sp.coo_array(b) for b in blocks]
    shape = coos[0].shape
    keys = np.unique(np.concatenate([c.row.astype(np.int64) * shape[1] + c.col for c in coos]))
    data = np.zeros((len(coos), keys.size))
    for k, c in enumerate(coos):
        np.add.at(data[k], np.searchsorted(keys, c.row.astype(np.int64) * shape[1] + c.col), c.data)
    rows, cols = keys // shape[1], keys % shape[1]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=shape[0]))])
    return data, (cols.astype(np.int32), indptr.astype(np.int64), shape)

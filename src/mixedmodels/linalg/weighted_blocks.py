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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from .blocked import BlockedCrossProducts, TermLayout

__all__ = ["WeightedBlocks"]


@dataclass(frozen=True, eq=False)
class WeightedBlocks:
    """The stored pieces ``A_k`` of ``A(c) = sum_k c_k A_k``, ready to combine.

    Attributes
    ----------
    layouts : tuple of TermLayout
        Shared by every piece (one set of column scales).
    a11 : ndarray (pieces, q1, k1, k1)
    a21 : ndarray (pieces, m, q1 k1), or the data (pieces, nnz) of one CSR pattern ``a21_pattern``
    a22 : ndarray (pieces, m, m)
    nfixef, nobs : int
    """

    layouts: tuple[TermLayout, ...]
    a11: np.ndarray
    a21: np.ndarray
    a21_pattern: tuple[np.ndarray, np.ndarray, tuple[int, int]] | None
    a22: np.ndarray
    nfixef: int
    nobs: int

    @classmethod
    def build(cls, refs: list[np.ndarray], zs: list[np.ndarray], nlevels: list[int], xy: np.ndarray,
              layouts: tuple[TermLayout, ...], pieces: Sequence) -> "WeightedBlocks":
        """Each piece's blocks (``piece.rows``, with ``piece.partner`` for a lag term), then stacked."""
        blocks = [_piece_blocks(refs, zs, nlevels, xy, layouts, piece) for piece in pieces]
        a21, pattern = _stack_a21([b.a21 for b in blocks])
        return cls(layouts, np.stack([b.a11 for b in blocks]), a21, pattern, np.stack([b.a22 for b in blocks]),
                   xy.shape[1] - 1, xy.shape[0])

    @property
    def npieces(self) -> int:
        return self.a11.shape[0]

    def combine(self, coefficients: np.ndarray) -> BlockedCrossProducts:
        """``sum_k c_k A_k`` as blocks to factor (no precomputed rank-update plan: the values change every time)."""
        c = np.asarray(coefficients, dtype=float)
        a11 = np.tensordot(c, self.a11, axes=1)
        a22 = np.tensordot(c, self.a22, axes=1)
        if self.a21_pattern is None:
            a21 = np.tensordot(c, self.a21, axes=1)
        else:
            indices, indptr, shape = self.a21_pattern
            a21 = sp.csr_array((c @ self.a21, indices, indptr), shape=shape)
        return BlockedCrossProducts(self.layouts, a11, a21, a22, self.nfixef, self.nobs)


def _rows_blocks(refs, zs, nlevels, xy, layouts, rows: np.ndarray, signs: tuple[np.ndarray, np.ndarray] | None = None):
    """The blocks of the rows ``rows`` (or of ``m_a + sign m_b`` for the pairs in ``signs``)."""
    if signs is None:
        return BlockedCrossProducts.build([r[rows] for r in refs], [z[rows] for z in zs], nlevels, xy[rows], layouts=layouts)
    first, second, sign = rows, signs[0], signs[1]
    return BlockedCrossProducts.build([r[first] for r in refs], [z[first] + sign * z[second] for z in zs], nlevels,
                                      xy[first] + sign * xy[second], layouts=layouts)


def _piece_blocks(refs, zs, nlevels, xy, layouts, piece) -> BlockedCrossProducts:
    if piece.partner is None:
        return _rows_blocks(refs, zs, nlevels, xy, layouts, piece.rows)
    plus = _rows_blocks(refs, zs, nlevels, xy, layouts, piece.rows, (piece.partner, 1.0))
    minus = _rows_blocks(refs, zs, nlevels, xy, layouts, piece.rows, (piece.partner, -1.0))
    a21 = (plus.a21 - minus.a21) * 0.5
    return BlockedCrossProducts(layouts, (plus.a11 - minus.a11) * 0.5, sp.csr_array(a21) if sp.issparse(a21) else a21,
                                (plus.a22 - minus.a22) * 0.5, plus.nfixef, plus.nobs)


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

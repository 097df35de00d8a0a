"""The rest block in a fill-reducing order, factored supernodally, for objective evaluations.

When the big term is scalar and the other terms are scalar too (InstEval:
students, then lecturers and department-by-service), the rest block
``D (A22 - A21 W A21') D + I`` has a fixed sparsity pattern: that of A22 and
of the update.  :class:`ReorderedRest` finds an order and supernodes for it
once (:class:`.supernodal.SupernodalCholesky`) and keeps A22 and the big
term's per-level update in that order, so each evaluation assembles the
block directly in the new order, scaled, in one pass (2.8 ms) and factors it
with a quarter of LAPACK's flops (InstEval: 6 ms against 12 ms for the
1,159 x 1,159 block).  The grouped update plan of the original order (0.1-0.2
s to build for InstEval) is not needed.

The fixed-effects and response rows stay last, so the log-determinants and
the penalized residual sum of squares read off the factor are those of the
original order; only the random effects' solution comes out permuted
(:class:`.blocked.Factorization` undoes it).

Used for the objective and the fit's results (conditional variances and
inference refactor in the original order), only with numba, and only where
it pays: blocks of at least
``_MIN_ROWS`` rows (``_MIN_ROWS_TO_LOAD`` if numba is not imported yet: its
import, ~0.4 s, must be won back within one fit) whose factor needs at most
half the dense flops.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from . import _kernels, _ordering_kernels
from .rank_update import VectorRankUpdate
from .supernodal import SupernodalCholesky, supernodal_available

__all__ = ["ReorderedRest"]

_MIN_ROWS = 400
_MIN_ROWS_TO_LOAD = 1000
_MAX_DENSITY = 0.5  # non-zero share of the lower triangle above which no order helps enough
_MAX_FLOP_SHARE = 0.5  # of the dense factorization's flops


@dataclass(frozen=True, eq=False)
class ReorderedRest:
    """A22, the big term's update and the supernodal structure, all in one fill-reducing order.

    Attributes
    ----------
    cholesky : SupernodalCholesky
        The order (``cholesky.order``) and supernodes.
    a22 : ndarray (m, m)
        A22 in the new order (lower triangle used).
    update : VectorRankUpdate
        The big term's level-by-level update (one column per level) in the
        new order, where its scattered writes are also more local.
    row_term : ndarray of intp (m,)
        For each row (new order), the index of its rest term, or -1 for the
        fixed-effects and response rows.
    nre : int
        Number of random-effects rows (they come first in either order).
    """

    cholesky: SupernodalCholesky
    a22: np.ndarray
    update: VectorRankUpdate
    row_term: np.ndarray
    nre: int

    @classmethod
    def build(cls, a21: sp.csr_array, a22: np.ndarray, term_sizes: list[int]) -> "ReorderedRest | None":
        """The reordered pieces, or None when the factorization would not be cheaper than LAPACK's."""
        m = a22.shape[0]
        threshold = _MIN_ROWS if "numba" in sys.modules else _MIN_ROWS_TO_LOAD
        if m < threshold or not supernodal_available():
            return None
        pattern = _update_pattern(a21) | np.tril(a22 != 0)
        np.fill_diagonal(pattern, True)
        if np.count_nonzero(pattern) > _MAX_DENSITY * m * (m + 1) / 2:
            return None
        nre = int(sum(term_sizes))
        cholesky = SupernodalCholesky.analyse(pattern, nfixed=m - nre)
        if cholesky.flops > _MAX_FLOP_SHARE * cholesky.dense_flops:
            return None
        row_term = np.full(m, -1, dtype=np.intp)
        row_term[:nre] = np.repeat(np.arange(len(term_sizes)), term_sizes)
        return cls._in_order(cholesky, row_term[cholesky.order], nre, a21, a22)

    def with_blocks(self, a21: sp.csr_array, a22: np.ndarray) -> "ReorderedRest":
        """The same order and supernodes for blocks with the same pattern (e.g. another response)."""
        return self._in_order(self.cholesky, self.row_term, self.nre, a21, a22)

    @classmethod
    def _in_order(
        cls, cholesky: SupernodalCholesky, row_term: np.ndarray, nre: int, a21: sp.csr_array, a22: np.ndarray
    ) -> "ReorderedRest":
        """A22 and the big term's update taken in ``cholesky.order`` (``row_term`` already in that order)."""
        order = cholesky.order
        update = VectorRankUpdate.build(sp.csr_array(a21)[order], 1)
        return cls(cholesky, np.ascontiguousarray(a22[order][:, order]), update, row_term, nre)

    def assemble(self, roots: np.ndarray, term_scales: np.ndarray) -> np.ndarray:
        """``D (A22 - A21 W A21') D + I_re`` in the new order (lower triangle).

        ``roots`` are the big term's per-level ``sqrt(w_l)`` as ``(q, 1, 1)``
        and ``term_scales`` each rest term's scalar lambda.
        """
        row_scale = np.append(term_scales, 1.0)[self.row_term]  # row_term -1 (X and y rows) picks the 1.0
        out = np.empty_like(self.a22)  # only the lower triangle is written, and read
        _kernels.compiled("scaled_lower_copy")(self.a22, row_scale, out)
        self.update.subtract_scaled(out, roots, row_scale)
        diagonal = np.arange(self.nre)
        out[diagonal, diagonal] += 1.0
        return out

    def factor(self, mat: np.ndarray) -> bool:
        """Factor an assembled block in place (see :meth:`SupernodalCholesky.factor`)."""
        return self.cholesky.factor(mat)


def _update_pattern(a21: sp.csr_array | sp.csc_array) -> np.ndarray:
    """Lower-triangle mask of ``A21 A21'``: every pair of rows that share a level (a column)."""
    csc = sp.csc_array(a21)
    csc.sort_indices()
    m = csc.shape[0]
    mask = np.zeros((m, m), dtype=bool)
    _ordering_kernels.compiled("level_pair_pattern")(csc.indptr, csc.indices, mask)
    return mask

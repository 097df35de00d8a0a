"""The big term's per-level sums of some rows over the span of their levels: dense rows, no sparse indices.

A partition of rows sorted by their big-term ids (files written per group, as
most are) touches a short run of that term's levels.  Its parts of ``A11``
(one row of ``k*k`` per level) and of ``A21``'s xy rows (``k`` columns per
level) are then dense arrays over the run, ``[start, stop)``, not sparse
matrices over all ``q1`` levels: a CSR ``A11`` of a million levels carries a
4 MB row pointer whatever the rows, which every partition sent, every
combine added and the client converted to dense again.

:class:`LevelSpan` holds such a block: ``data[i]`` is level ``start + i``'s row
(for ``A21``, stored transposed: ``data[i]`` is the level's ``k`` columns of
each of the ``c`` rows, ``(k*c,)`` in the order ``(column, row)``).  Sums of
spans are spans over the union of the runs, made by adding each part into one
zeroed array, in the parts' order, so they equal the chain ``a + b + c`` of
the sparse matrices bit for bit; a span added to a sparse matrix becomes one
(:meth:`LevelSpan.tocsr`), as when a partition took the general path.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["LevelSpan"]


class LevelSpan:
    """Rows ``[start, start + len(data))`` of a block of ``nlevels`` levels (see the module docstring).

    ``shape``: the block's shape as the sparse matrix it stands for: ``(nlevels, width)``, or for a
    ``transposed`` block ``(rows, nlevels * k)`` with ``width = k * rows``.
    """

    __slots__ = ("start", "data", "shape", "transposed")

    def __init__(self, start: int, data: np.ndarray, shape: tuple[int, int], transposed: bool = False) -> None:
        self.start, self.data, self.shape, self.transposed = int(start), data, shape, transposed

    @property
    def stop(self) -> int:
        return self.start + self.data.shape[0]

    def __getstate__(self) -> tuple:
        return self.start, self.data, self.shape, self.transposed

    def __setstate__(self, state: tuple) -> None:
        self.start, self.data, self.shape, self.transposed = state

    @staticmethod
    def sum(parts: list["LevelSpan"]) -> "LevelSpan":
        """The sum of spans of one block, over the union of their runs (each part added in order)."""
        start, stop = min(p.start for p in parts), max(p.stop for p in parts)
        data = np.zeros((stop - start, parts[0].data.shape[1]))
        for part in parts:
            data[part.start - start : part.stop - start] += part.data
        return LevelSpan(start, data, parts[0].shape, parts[0].transposed)

    def __add__(self, other):
        if isinstance(other, LevelSpan):
            return LevelSpan.sum([self, other])
        return self.tocsr() + other

    def __radd__(self, other):
        if isinstance(other, LevelSpan):
            return LevelSpan.sum([other, self])
        return other + self.tocsr()

    def toarray(self) -> np.ndarray:
        """The dense block (``A11``: ``(nlevels, width)``)."""
        if self.transposed:
            return self.tocsr().toarray()
        out = np.zeros(self.shape)
        out[self.start : self.stop] = self.data
        return out

    def tocsr(self) -> sp.csr_array:
        """The block as the CSR matrix of the general path: an entry for every level of the run (zeros too)."""
        nrows, ncols = self.shape
        length = self.data.shape[0]
        if not self.transposed:
            width = ncols
            indices = np.tile(np.arange(width), length)
            indptr = np.zeros(nrows + 1, dtype=np.int64)
            indptr[self.start + 1 : self.stop + 1] = width * np.arange(1, length + 1)
            indptr[self.stop + 1 :] = width * length
            return sp.csr_array((self.data.ravel(), indices, indptr), shape=self.shape)
        k = self.data.shape[1] // nrows
        columns = np.arange(self.start * k, self.stop * k)
        data = self.data.reshape(length, k, nrows).transpose(2, 0, 1).reshape(nrows, length * k)
        indptr = np.arange(nrows + 1, dtype=np.int64) * columns.size
        return sp.csr_array((data.ravel(), np.tile(columns, nrows), indptr), shape=self.shape)

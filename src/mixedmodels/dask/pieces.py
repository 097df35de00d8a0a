"""The reduction's last sum made on the client, ``A21`` fetched in pieces of rows, for a wide sparse ``A21``.

With a second term of many levels (a crossed design: 2,000 items against
400k user columns, ~40M non-zeros), the root of the tree reduction held its
inputs and their sum at once (~0.5 GB each at 20M rows), then sent the sum
to the client.  Here the tree stops below its root: its top partial sums
stay on the workers (persisted), the client takes every block but ``A21``
from them whole (small), and merges ``A21`` a run of rows at a time
(:func:`~.crossprods.sum_sparse` on the pieces, the terms of each entry added
in the order the root adds them: the same sum, bit for bit) into arrays
allocated once for the whole sum.  No process holds the inputs and the sum
of ``A21`` at once, and the client never more than one run of the inputs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

import numpy as np
import scipy.sparse as sp

from .crossprods import DENSE_ENTRIES, PartialBlocks, sum_sparse
from .plan import EncodingPlan

__all__ = ["wide_first_to_rest", "summed_in_pieces", "WIDE_ROWS", "PIECE_NONZEROS"]

WIDE_ROWS = 256  # A21 with at least this many rows (a second term with many levels), when sparse, is merged so
PIECE_NONZEROS = 1 << 22  # non-zeros of A21 (over every partial sum) fetched per piece: ~50 MB


def wide_first_to_rest(plan: EncodingPlan) -> bool:
    """Whether the plan's ``A21`` is sparse (see :data:`~.crossprods.DENSE_ENTRIES`) with :data:`WIDE_ROWS` rows or more."""
    first = plan.terms[0]
    rows = sum(t.nlevels * t.ncols for t in plan.terms[1:]) + len(plan.fixed.column_names) + 1
    return rows >= WIDE_ROWS and rows * first.nlevels * first.ncols > DENSE_ENTRIES


def _blocks(item: Any) -> PartialBlocks:
    """The blocks of a partial sum (pass 2's, or the fused pass's)."""
    return item.blocks if hasattr(item, "blocks") else item.pass2.blocks


def _with_a21(item: Any, a21: Any) -> Any:
    if hasattr(item, "blocks"):
        return replace(item, blocks=replace(item.blocks, a21=a21))
    return replace(item, pass2=replace(item.pass2, blocks=replace(item.pass2.blocks, a21=a21)))


def _head(item: Any) -> tuple[Any, np.ndarray]:
    """The partial sum with an empty ``A21`` of its shape, and the non-zeros of each of its ``A21``'s rows."""
    a21 = sp.csr_array(_blocks(item).a21)
    return _with_a21(item, sp.csr_array(a21.shape)), np.diff(a21.indptr)


def _rows(item: Any, start: int, stop: int) -> sp.csr_array:
    return sp.csr_array(_blocks(item).a21[start:stop])


def _pieces(bound: np.ndarray) -> list[tuple[int, int]]:
    """Runs of rows with about :data:`PIECE_NONZEROS` non-zeros over the inputs (at least one row each)."""
    ends = np.cumsum(bound)
    runs, start = [], 0
    while start < bound.size:
        stop = int(np.searchsorted(ends, (ends[start - 1] if start else 0) + PIECE_NONZEROS, side="right"))
        stop = min(bound.size, max(stop, start + 1))
        runs.append((start, stop))
        start = stop
    return runs


def summed_in_pieces(items: list, combine_many: Callable[[list], Any]) -> Any:
    """The sum of the (persisted) partial sums ``items``: all but ``A21`` by ``combine_many``, ``A21`` merged a
    run of rows at a time into arrays allocated once (as large as the inputs' non-zeros: exact when the
    partitions hold different levels of the big term, as rows partitioned by user do)."""
    import dask

    heads = dask.compute(*[dask.delayed(_head)(item) for item in items])
    total = combine_many([head for head, _ in heads])
    bound = np.sum([counts for _, counts in heads], axis=0)
    nrows, ncols = _blocks(total).a21.shape
    index = np.int32 if max(ncols, int(bound.sum())) < 2**31 else np.int64
    indices, data = np.empty(int(bound.sum()), dtype=index), np.empty(int(bound.sum()))
    indptr = np.zeros(nrows + 1, dtype=index)
    position = 0
    for start, stop in _pieces(bound):
        piece = sum_sparse(list(dask.compute(*[dask.delayed(_rows)(item, start, stop) for item in items])))
        piece = sp.csr_array(piece)
        size = piece.nnz
        indices[position : position + size], data[position : position + size] = piece.indices, piece.data
        indptr[start + 1 : stop + 1] = position + piece.indptr[1:]
        position += size
    a21 = sp.csr_array((data[:position], indices[:position], indptr), shape=(nrows, ncols))
    return _with_a21(total, a21)

"""Compiled loops of the supernodal analysis (:mod:`.supernodal`): ordering, elimination tree, supernodes.

Plain Python that :func:`._kernels.jit` compiles; the tests also run the
Python bodies on small patterns.  All of them work on dense boolean (or
bit-set) patterns: the blocks they serve have a few thousand rows at most.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from . import _kernels

__all__ = ["compiled", "minimum_degree", "elimination_structure", "supernode_starts", "level_pair_pattern"]

_ONE = np.uint64(1)
_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_LOW7 = np.uint64(0x7F)
_S1, _S2, _S4 = np.uint64(1), np.uint64(2), np.uint64(4)
_S8, _S16, _S32 = np.uint64(8), np.uint64(16), np.uint64(32)


def minimum_degree(adjacency: np.ndarray, degree: np.ndarray, nfixed: int) -> np.ndarray:
    """Exact minimum-degree order of a symmetric pattern stored as bit sets (``(m, words)`` uint64).

    ``adjacency`` (modified) must include the diagonal and ``degree``
    (modified) be its row counts.  At each step the live node of least
    degree (lowest index on ties) is eliminated and its live neighbours are
    joined into a clique; each neighbour's degree grows by the bits it gains
    (counted with the SWAR popcount, written out: numba compiles one
    function) and loses the eliminated node.  The last ``nfixed`` nodes are
    never chosen and end the order.
    """
    m, words = adjacency.shape
    alive = np.zeros(words, dtype=np.uint64)
    for node in range(m):
        alive[node >> 6] |= _ONE << np.uint64(node & 63)
    order = np.empty(m, dtype=np.int64)
    chosen = np.zeros(m, dtype=np.bool_)
    row = np.empty(words, dtype=np.uint64)
    neighbours = np.empty(m, dtype=np.int64)
    for step in range(m - nfixed):
        best, node = np.iinfo(np.int64).max, -1
        for candidate in range(m - nfixed):
            if not chosen[candidate] and degree[candidate] < best:
                best, node = degree[candidate], candidate
        order[step] = node
        chosen[node] = True
        alive[node >> 6] &= ~(_ONE << np.uint64(node & 63))
        count = 0
        for w in range(words):
            row[w] = adjacency[node, w] & alive[w]
            if row[w] != 0:
                for bit in range(64):
                    if (row[w] >> np.uint64(bit)) & _ONE:
                        neighbours[count] = w * 64 + bit
                        count += 1
        for i in range(count):
            other = neighbours[i]
            gained = 0
            for w in range(words):
                x = row[w] & ~adjacency[other, w]
                adjacency[other, w] |= row[w]
                x = x - ((x >> _S1) & _M1)
                x = (x & _M2) + ((x >> _S2) & _M2)
                x = (x + (x >> _S4)) & _M4
                x = x + (x >> _S8)  # byte sums by shifts, not the usual multiply: it would wrap
                x = x + (x >> _S16)
                x = x + (x >> _S32)
                gained += int(x & _LOW7)
            degree[other] += gained - 1
    for k in range(nfixed):
        order[m - nfixed + k] = m - nfixed + k
    return order


def elimination_structure(structure: np.ndarray, parent: np.ndarray) -> None:
    """Symbolic Cholesky in place: ``structure`` (m x m bool, lower triangle with diagonal) becomes the factor's pattern.

    ``parent[j]`` is set to the first row below the diagonal in column j
    (the elimination tree), or -1.  Column j's pattern below its parent is
    merged into the parent's column, in column order.
    """
    m = structure.shape[0]
    for j in range(m):
        parent[j] = -1
        for i in range(j + 1, m):
            if structure[i, j]:
                if parent[j] < 0:
                    parent[j] = i
                else:
                    structure[i, parent[j]] = True


def supernode_starts(
    structure: np.ndarray, parent: np.ndarray, limits: np.ndarray, fractions: np.ndarray
) -> np.ndarray:
    """First column of each supernode (and m at the end), merging chains within the zero limits.

    Column j joins the supernode before it when it is its predecessor's
    parent and the panel (the union of the columns' patterns) would hold at
    most ``fractions[t]`` explicit zeros, ``t`` the first limit at least the
    new width (no zeros beyond the last limit).
    """
    m = structure.shape[0]
    starts = np.empty(m + 1, dtype=np.int64)
    union = np.zeros(m, dtype=np.bool_)
    nstarts, first, real, union_rows = 1, 0, 0, 0
    starts[0] = 0
    for j in range(m):
        column_rows = 0
        for i in range(j, m):
            if structure[i, j]:
                column_rows += 1
        if j > 0 and parent[j - 1] == j:
            width = j - first + 1
            added = 0
            for i in range(j + 1, m):
                if structure[i, j] and not union[i]:
                    added += 1
            rows = union_rows - 1 + added + width  # union below j, plus the panel's own columns
            stored = width * rows - width * (width - 1) // 2
            allowed = 0.0
            for t in range(limits.shape[0]):
                if width <= limits[t]:
                    allowed = fractions[t]
                    break
            if 1.0 - (real + column_rows) / stored <= allowed:
                for i in range(j + 1, m):
                    if structure[i, j] and not union[i]:
                        union[i] = True
                union[j] = False
                union_rows += added - 1
                real += column_rows
                continue
        for i in range(m):
            union[i] = False
        union_rows = 0
        for i in range(j + 1, m):
            if structure[i, j]:
                union[i] = True
                union_rows += 1
        if j > 0:
            starts[nstarts] = j
            nstarts += 1
        first, real = j, column_rows
    starts[nstarts] = m
    return starts[: nstarts + 1]


def level_pair_pattern(indptr: np.ndarray, rows: np.ndarray, mask: np.ndarray) -> None:
    """Mark ``mask[i, j]`` for every pair ``i >= j`` of rows sharing a column (level) of a CSC matrix."""
    for level in range(indptr.shape[0] - 1):
        for p in range(indptr[level], indptr[level + 1]):
            for s in range(indptr[level], p + 1):
                i, j = rows[p], rows[s]
                if i >= j:
                    mask[i, j] = True
                else:
                    mask[j, i] = True


def compiled(name: str) -> Callable | None:
    """The numba-compiled kernel ``name`` of this module, or None (see :func:`._kernels.jit`)."""
    return _kernels.jit(globals()[name])

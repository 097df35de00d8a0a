"""Pass 2: each partition's contribution to the blocked cross-products, and their sum.

The blocks are those of :class:`~mixedmodels.linalg.blocked.BlockedCrossProducts`
(terms in block order, the first, "big" one kept per level; rows already
multiplied by ``sqrt(weights)``; ``xy = [X, y - offset]``):

    A11 = Z1'Z1 (per level, k1 x k1)     A21 = [Z_rest  xy]' Z1
    A22 = [Z_rest  xy]' [Z_rest  xy]

A partition only touches the levels of the big term that occur in it, so its
part of ``A11`` and ``A21`` is sparse (:class:`PartialBlocks` keeps them as
sparse matrices over the global columns); sums of sparse parts stay sparse
until the root.  The products themselves are the in-memory ones: a sparse
``Z`` per partition times the dense columns.

:class:`DesignFacts` rides along for the checks the in-memory code makes on
the whole X: which columns are aliased (the ``R`` of a QR of X, assembled
from each partition's ``R``: tall-skinny QR), the columns' standard
deviations and whether they are 0/1 (lme4's scale check), non-finite values,
and the response's range and sums.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..design.covariance import CovarianceStructure
from ..linalg import BlockedCrossProducts
from .encode import EncodedPartition, encode_partition
from .kernels import per_level_sums, plain_column_facts, present_level_sums
from .plan import EncodingPlan
from .spans import LevelSpan

__all__ = [
    "PartialBlocks",
    "DesignFacts",
    "Pass2",
    "partial_blocks",
    "first_term_blocks",
    "pass2_partition",
    "pass2_encoded",
    "sum_pass2",
    "sum_sparse",
    "response_row",
    "ResponseRow",
    "assemble",
]


def _term_matrix(refs: np.ndarray, z: np.ndarray, ncols_total: int, offset: int = 0) -> sp.csr_array:
    """The sparse ``n x ncols_total`` matrix of one term's columns (level-major) starting at column ``offset``."""
    n, k = z.shape
    indices = (offset + refs[:, None] * k + np.arange(k)).ravel()
    return sp.csr_array((z.ravel(), indices, np.arange(0, n * k + 1, k)), shape=(n, ncols_total))


# Blocks with at most this many entries are summed as dense arrays (bincounts), larger ones as sparse matrices.
DENSE_ENTRIES = 50_000


def _dense(rows: int, cols: int) -> bool:
    return rows * cols <= DENSE_ENTRIES


@dataclass(frozen=True, eq=False)
class PartialBlocks:
    """Some rows' part of the blocks; ``+`` adds two parts.

    Each of ``a11``, ``a21`` and ``a22_re`` is a dense array when it has at
    most :data:`DENSE_ENTRIES` entries, else a sparse matrix (the choice
    depends on the shapes only, so every partition makes the same).

    Attributes
    ----------
    nobs : int
    a11 : (q1, k1 * k1)
        Row l: the big term's ``z'z`` block of level l, flattened.
    a21 : (m, q1 * k1)
        ``[Z_rest xy]' Z1``.
    a22_re : (m_re, m_re)
        ``Z_rest' Z_rest``.
    a22_re_xy : ndarray (m_re, c)
        ``Z_rest' xy``.
    a22_xy : ndarray (c, c)
        ``xy' xy``.
    """

    nobs: int
    a11: np.ndarray | sp.csr_array
    a21: np.ndarray | sp.csr_array
    a22_re: np.ndarray | sp.csr_array
    a22_re_xy: np.ndarray
    a22_xy: np.ndarray

    def __add__(self, other: "PartialBlocks") -> "PartialBlocks":
        return PartialBlocks(
            self.nobs + other.nobs,
            self.a11 + other.a11,
            self.a21 + other.a21,
            self.a22_re + other.a22_re,
            self.a22_re_xy + other.a22_re_xy,
            self.a22_xy + other.a22_xy,
        )

    @staticmethod
    def sum(parts: list["PartialBlocks"]) -> "PartialBlocks":
        """The sum of several parts, sparse blocks added in one merge (see :func:`sum_sparse`)."""
        if len(parts) == 1:
            return parts[0]
        return PartialBlocks(
            sum(part.nobs for part in parts),
            sum_sparse([part.a11 for part in parts]),
            sum_sparse([part.a21 for part in parts]),
            sum_sparse([part.a22_re for part in parts]),
            sum_sparse([part.a22_re_xy for part in parts]),
            sum_sparse([part.a22_xy for part in parts]),
        )

    def dense_blocks(
        self, keep_xy: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | sp.csr_array, np.ndarray]:
        """``(a11 (q1, k1, k1), a21, a22)`` with only the ``keep_xy`` columns of xy (default all)."""
        q1 = self.a11.shape[0]
        k1 = int(round(np.sqrt(self.a11.shape[1])))
        a11 = _as_dense(self.a11).reshape(q1, k1, k1)
        m_re, c = self.a22_re_xy.shape
        keep = np.arange(c) if keep_xy is None else np.asarray(keep_xy)
        rows = np.concatenate([np.arange(m_re), m_re + keep])
        block = self.a21.tocsr() if isinstance(self.a21, LevelSpan) else self.a21
        if isinstance(block, np.ndarray):
            a21 = block[rows]
        elif rows.size == block.shape[0]:  # every row kept: the summed matrix itself, not a copy
            a21 = sp.csr_array(block)
            a21.eliminate_zeros()
        else:
            a21 = sp.csr_array(block[rows])
            a21.eliminate_zeros()
        a22 = np.empty((rows.size, rows.size))
        a22[:m_re, :m_re] = _as_dense(self.a22_re)
        a22[:m_re, m_re:] = self.a22_re_xy[:, keep]
        a22[m_re:, :m_re] = self.a22_re_xy[:, keep].T
        a22[m_re:, m_re:] = self.a22_xy[np.ix_(keep, keep)]
        return a11, a21, a22


# Sparse sums with at most this many rows are merged row by row (a Python loop over the rows).
_MERGED_ROWS = 8_192


def sum_sparse(blocks: list) -> Any:
    """The sum of several blocks of one shape: dense ones added, sparse ones merged into one CSR.

    ``a + b + c + ...`` with scipy allocates every partial sum, each as large
    as the ones before together, while all the terms are still held: the
    root of a crossed design's reduction (8 partial A21 of ~5M non-zeros each)
    peaked at ~3 times the final 40M.  Merged row by row, the result is
    written once, into arrays as large as the terms together (trimmed only
    where terms share entries).  Each entry's terms are added in the
    blocks' order, as the chain of additions adds them.
    """
    spans = [isinstance(b, LevelSpan) for b in blocks]
    if all(spans):
        return LevelSpan.sum(blocks)
    if any(spans):  # some partitions took the general path: their sparse matrices, and the spans as such
        blocks = [b.tocsr() if isinstance(b, LevelSpan) else b for b in blocks]
    if not sp.issparse(blocks[0]) or blocks[0].shape[0] > _MERGED_ROWS:
        return functools.reduce(operator.add, blocks)
    mats = [sp.csr_array(b) for b in blocks]
    for mat in mats:
        if not mat.has_canonical_format:
            mat.sum_duplicates()
    nrows, ncols = mats[0].shape
    bound = sum(mat.nnz for mat in mats)
    index = np.int32 if max(ncols, bound) < 2**31 else np.int64
    indices, data = np.empty(bound, dtype=index), np.empty(bound)
    indptr = np.zeros(nrows + 1, dtype=index)
    position = 0
    for i in range(nrows):
        cols, vals = _merged_row(
            [
                (mat.indices[mat.indptr[i] : mat.indptr[i + 1]], mat.data[mat.indptr[i] : mat.indptr[i + 1]])
                for mat in mats
            ]
        )
        indices[position : position + cols.size], data[position : position + cols.size] = cols, vals
        position += cols.size
        indptr[i + 1] = position
    if position < bound:
        indices, data = indices[:position].copy(), data[:position].copy()
    return sp.csr_array((data, indices, indptr), shape=(nrows, ncols))


def _merged_row(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """One row's sorted column indices and summed values from several sorted rows."""
    parts = [part for part in parts if part[0].size]
    if not parts:
        return np.empty(0, dtype=np.int64), np.empty(0)
    if len(parts) == 1:
        return parts[0]
    cols = np.concatenate([part[0] for part in parts])
    vals = np.concatenate([part[1] for part in parts])
    if np.all(cols[1:] > cols[:-1]):  # the parts' columns do not interleave (e.g. partitions of sorted ids)
        return cols, vals
    order = np.argsort(cols, kind="stable")
    cols, vals = cols[order], vals[order]
    starts = np.flatnonzero(np.concatenate([[True], cols[1:] != cols[:-1]]))
    sums, lengths = vals[starts], np.diff(np.append(starts, cols.size))
    for j in range(1, int(lengths.max())):  # ((v0 + v1) + v2) + ...: the order of a + b + c (reduceat pairs them)
        more = lengths > j
        sums[more] += vals[starts[more] + j]
    return cols[starts], sums


def _as_dense(block: np.ndarray | sp.sparray) -> np.ndarray:
    return block if isinstance(block, np.ndarray) else block.toarray()


def partial_blocks(
    refs: tuple[np.ndarray, ...],
    zs: tuple[np.ndarray, ...],
    nlevels: tuple[int, ...],
    x: np.ndarray,
    y: np.ndarray,
    xtx: np.ndarray | None = None,
) -> PartialBlocks:
    """The blocks of some rows, ``xy = [x, y]`` (``zs``, ``x`` and ``y`` already multiplied by sqrt(weights)).

    ``x`` and ``y`` are read where they are (no ``[x y]`` copy); a z that is
    ``x`` itself (the same array) saves its own products (see :mod:`.kernels`);
    ``xtx``, when given, is ``x'x`` already computed.
    """
    n, c = x.shape[0], x.shape[1] + 1
    k1, q1 = zs[0].shape[1], nlevels[0]
    sizes = [q * z.shape[1] for q, z in zip(nlevels[1:], zs[1:])]
    m_re = int(sum(sizes))
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    rest = [(r, z, int(o)) for r, z, o in zip(refs[1:], zs[1:], offsets)]
    if _dense(m_re + c, q1 * k1):
        blocks, z1_xy = per_level_sums(refs[0], zs[0], x, y, q1)
        a11 = blocks.reshape(q1, k1 * k1)
        a21 = np.empty((m_re + c, q1 * k1))
        a21[:m_re] = _pair_sums(rest, [(refs[0], zs[0], 0)], m_re, q1 * k1) if m_re else 0.0
        a21[m_re:] = z1_xy.transpose(2, 0, 1).reshape(c, q1 * k1)
    else:
        a11, a21 = _sparse_first(refs[0], zs[0], q1, rest, m_re, x, y)
    if m_re:
        a22_re = _pair_sums(rest, rest, m_re, m_re) if _dense(m_re, m_re) else _sparse_rest(rest, n, m_re)
        a22_re_xy = np.vstack([_column_sums(r, z, q, x, y) for (r, z, _), q in zip(rest, nlevels[1:])])
    else:
        a22_re, a22_re_xy = np.zeros((0, 0)), np.zeros((0, c))
    return PartialBlocks(n, a11, a21, a22_re, a22_re_xy, _gram(x, y, xtx))


def _gram(x: np.ndarray, y: np.ndarray, xtx: np.ndarray | None) -> np.ndarray:
    """``[x y]'[x y]`` from ``x'x``, ``x'y`` and ``y'y`` (BLAS on x as it is: no ``[x y]`` copy)."""
    p = x.shape[1]
    out = np.empty((p + 1, p + 1))
    out[:p, :p] = x.T @ x if xtx is None else xtx
    out[:p, p] = out[p, :p] = x.T @ y
    out[p, p] = y @ y
    return out


def _pair_sums(left: list, right: list, nrows: int, ncols: int) -> np.ndarray:
    """Dense ``sum over rows of z_a z_b`` at (row of a's column, column of b's column), one bincount per column pair.

    ``left`` and ``right`` are ``(refs, z, offset)`` of terms; column ``a`` of
    level ``l`` of a term is row (or column) ``offset + l k + a``.
    """
    out = np.zeros(nrows * ncols)
    for ra, za, oa in left:
        ka = za.shape[1]
        for rb, zb, ob in right:
            kb = zb.shape[1]
            for a in range(ka):
                for b in range(kb):
                    index = (oa + ra * ka + a) * ncols + (ob + rb * kb + b)
                    out += np.bincount(index, weights=za[:, a] * zb[:, b], minlength=out.size)
    return out.reshape(nrows, ncols)


def _column_sums(refs: np.ndarray, z: np.ndarray, nlevels: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``Z' [x y]`` of one term, dense (levels * k, p + 1)."""
    k, p = z.shape[1], x.shape[1]
    out = np.empty((nlevels, k, p + 1))
    for a in range(k):
        for j in range(p + 1):
            column = x[:, j] if j < p else y
            out[:, a, j] = np.bincount(refs, weights=z[:, a] * column, minlength=nlevels)
    return out.reshape(nlevels * k, p + 1)


def _sparse_first(
    refs1: np.ndarray, z1: np.ndarray, q1: int, rest: list, m_re: int, x: np.ndarray, y: np.ndarray
) -> tuple[sp.csr_array, sp.csr_array]:
    """The big term's blocks as sparse matrices over its levels present in these rows (32-bit indices)."""
    swept = present_level_sums(refs1, z1, x, y, q1)
    if swept is None:
        present, local = _present_levels(refs1, q1)
        blocks, z1_xy = per_level_sums(local, z1, x, y, present.size)
    else:
        present, blocks, z1_xy = swept
        local = np.searchsorted(present, refs1) if m_re else refs1  # each row's position among the present levels
    index = _index_type(q1 * z1.shape[1])
    return _sparse_first_blocks(present, blocks, z1_xy, q1, _rest_by_first(rest, local, z1, present, m_re, index))


def _sparse_first_blocks(
    present: np.ndarray, blocks: np.ndarray, z1_xy: np.ndarray, q1: int, re: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> tuple[sp.csr_array, sp.csr_array]:
    """A11 and A21 as CSR matrices from the present levels' sums and ``Z_rest' Z1`` (``re``: CSR arrays)."""
    k1, c = blocks.shape[1], z1_xy.shape[2]
    m_re = re[0].size - 1
    index = _index_type(q1 * k1)
    indptr = np.zeros(q1 + 1, dtype=np.int64)
    indptr[present + 1] = k1 * k1
    a11 = sp.csr_array(
        (blocks.reshape(-1), np.tile(np.arange(k1 * k1, dtype=index), present.size), np.cumsum(indptr).astype(index)),
        shape=(q1, k1 * k1),
    )
    global_columns = (present[:, None] * k1 + np.arange(k1)).ravel().astype(index)
    re_indptr, re_indices, re_data = re
    width = present.size * k1  # each xy row: every present level's k1 columns
    row_starts = np.concatenate([re_indptr, re_indptr[-1] + width * np.arange(1, c + 1)])
    index = np.int32 if max(q1 * k1, row_starts[-1]) < 2**31 else np.int64  # scipy keeps 32 bits only if both fit
    a21 = sp.csr_array(
        (
            np.concatenate([re_data, z1_xy.transpose(2, 0, 1).ravel()]),
            np.concatenate([re_indices, np.tile(global_columns, c)]).astype(index, copy=False),
            row_starts.astype(index),
        ),
        shape=(m_re + c, q1 * k1),
    )
    return a11, a21


def first_term_blocks(nobs: int, start: int, blocks: np.ndarray, z1_xy: np.ndarray, q1: int, gram: np.ndarray) -> Any:
    """The blocks of some rows of a model with one random term, from its sums over a run of levels.

    ``blocks`` (``z z'``, full) and ``z1_xy`` (``z [x' y]``) of levels ``start, start + 1, ...``
    (zeros for those without rows); ``gram``: ``[x y]'[x y]``.  Dense blocks where the general path
    makes them dense, else :class:`~.spans.LevelSpan` s over the run.
    """
    span, k1, c = blocks.shape[0], blocks.shape[1], z1_xy.shape[2]
    a11: np.ndarray | LevelSpan
    a21: np.ndarray | LevelSpan
    if _dense(c, q1 * k1):
        a11 = np.zeros((q1, k1 * k1))
        a11[start : start + span] = blocks.reshape(span, k1 * k1)
        full = np.zeros((q1, k1, c))
        full[start : start + span] = z1_xy
        a21 = full.transpose(2, 0, 1).reshape(c, q1 * k1)
    else:
        a11 = LevelSpan(start, blocks.reshape(span, k1 * k1), (q1, k1 * k1))
        a21 = LevelSpan(start, z1_xy.reshape(span, k1 * c), (c, q1 * k1), transposed=True)
    return PartialBlocks(nobs, a11, a21, np.zeros((0, 0)), np.zeros((0, c)), gram)


def _index_type(ncols: int) -> type:
    """32-bit column indices where they fit: the partial sums travel and are added in the reduction."""
    return np.int32 if ncols < 2**31 else np.int64


def _rest_by_first(
    rest: list, local: np.ndarray, z1: np.ndarray, present: np.ndarray, m_re: int, index: type
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``Z_rest' Z1`` of some rows as CSR arrays ``(indptr, indices, data)`` over the big term's global columns.

    Each row's entry of a rest term (row ``r`` of the block, value ``v``) meets its
    big-term level ``l`` in the k1 entries ``(r, l k1 + a)`` with value ``v z1_a``:
    the (r, l) keys are sorted once (stably, so the sums run in row order) and
    summed in runs.  Temporaries the size of the rows, not of a sparse
    product's intermediates (a 2.5M-row partition of the crossed design: ~0.5 GB
    by scipy's products and COO conversions).
    """
    k1 = z1.shape[1]
    if not m_re:
        return np.zeros(1, dtype=np.int64), np.empty(0, dtype=index), np.empty(0)
    n, width = local.size, present.size
    key_type = np.int32 if m_re * width < 2**31 else np.int64  # halves the sort's arrays when the keys fit
    columns = [(offset + r * z.shape[1] + b, z[:, b]) for r, z, offset in rest for b in range(z.shape[1])]
    key = np.concatenate([(row * width + local).astype(key_type) for row, _ in columns])
    order = np.argsort(key, kind="stable")
    key = key[order]
    starts = np.flatnonzero(key[1:] != key[:-1]) + 1 if key.size else np.empty(0, np.int64)
    starts = np.concatenate([[0], starts]) if key.size else starts
    key = key[starts]  # each run's (row, level) key
    value = columns[0][1][order] if len(columns) == 1 else np.concatenate([v for _, v in columns])[order]
    rows_of = order if len(columns) == 1 else order % n  # each entry's row of the data
    del order
    sums = np.empty((starts.size, k1))
    for a in range(k1):
        sums[:, a] = np.add.reduceat(value * z1[rows_of, a], starts) if starts.size else 0.0
    del value, rows_of, starts
    row = key // width
    indptr = np.zeros(m_re + 1, dtype=np.int64)
    np.cumsum(np.bincount(row, minlength=m_re) * k1, out=indptr[1:])
    key -= row * width  # now each run's level among the present ones
    del row
    indices = np.empty((key.size, k1), dtype=index)
    indices[:] = (present.astype(index) * k1)[key][:, None] + np.arange(k1, dtype=index)
    return indptr, indices.ravel(), sums.ravel()


def _sparse_rest(rest: list, n: int, m_re: int) -> sp.csr_array:
    """``Z_rest' Z_rest`` of some rows, summed by sorted (row, column) keys as :func:`_rest_by_first` does."""
    entries = [(offset + r * z.shape[1] + b, z[:, b]) for r, z, offset in rest for b in range(z.shape[1])]
    keys = np.concatenate([first * m_re + second for first, _ in entries for second, _ in entries])
    values = np.concatenate([u * v for _, u in entries for _, v in entries])
    order = np.argsort(keys, kind="stable")
    keys, values = keys[order], values[order]
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]])) if keys.size else np.empty(0, np.int64)
    row, column = np.divmod(keys[starts], m_re)
    sums = np.add.reduceat(values, starts) if starts.size else np.empty(0)
    indptr = np.zeros(m_re + 1, dtype=np.int64)
    np.cumsum(np.bincount(row, minlength=m_re), out=indptr[1:])
    index = _index_type(max(m_re, int(indptr[-1])))
    return sp.csr_array((sums, column.astype(index), indptr.astype(index)), shape=(m_re, m_re))


def _present_levels(refs: np.ndarray, nlevels: int) -> tuple[np.ndarray, np.ndarray]:
    """The levels that occur (sorted) and each row's position among them."""
    counts = np.bincount(refs, minlength=nlevels)
    present = np.flatnonzero(counts)
    position = np.zeros(nlevels, dtype=np.int64)
    position[present] = np.arange(present.size)
    return present, position[refs]


def zero_blocks(nlevels: tuple[int, ...], ncols: tuple[int, ...], c: int) -> PartialBlocks:
    """The blocks of no rows (in the representation :func:`partial_blocks` uses for these shapes)."""
    refs = tuple(np.empty(0, dtype=np.int64) for _ in nlevels)
    zs = tuple(np.empty((0, k)) for k in ncols)
    return partial_blocks(refs, zs, nlevels, np.empty((0, c - 1)), np.empty(0))


# --------------------------------------------------------------------------- checks on X and y
@dataclass(frozen=True, eq=False)
class DesignFacts:
    """What the in-memory checks of X and y need, for some rows; :meth:`combine` joins two parts.

    ``gram``: ``X'X`` (unweighted), from which :func:`well_conditioned` tells
    whether any column could be aliased; ``mean``, ``m2``: per column of X,
    mean and sum of squared deviations; ``binary``: all values 0 or 1;
    ``nonfinite``: per column, rows with a non-finite value, and
    ``nonfinite_rows``; ``offset_nonfinite``: rows with a non-finite offset; ``y_min``, ``y_max``, ``y_sums`` (``sum y``, ``sum y^2``,
    of successes and totals for ``cbind``) for the response.
    """

    n: int
    gram: np.ndarray
    mean: np.ndarray
    m2: np.ndarray
    binary: np.ndarray
    nonfinite: np.ndarray
    nonfinite_rows: int
    offset_nonfinite: int
    y_min: float
    y_max: float
    y_sums: np.ndarray

    @classmethod
    def of(cls, part: EncodedPartition) -> "DesignFacts":
        n, p = part.x.shape
        y = part.y
        response = y[:, 0] if y.ndim == 2 else y
        second = y.sum(axis=1) if y.ndim == 2 else y * y
        offset_bad = 0 if part.offset is None else int((~np.isfinite(part.offset)).sum())
        y_facts = (
            float(response.min()) if n else np.inf,
            float(response.max()) if n else -np.inf,
            np.array([response.sum(), second.sum()]),
        )
        if n == 0:
            zeros = np.zeros(p)
            return cls(0, np.zeros((p, p)), zeros, zeros, np.ones(p, dtype=bool), zeros, 0, offset_bad, *y_facts)
        if y.ndim == 1 and part.offset is None:
            plain = plain_column_facts(part.x, y)
            if plain is not None:  # a finite X: two compiled sweeps
                sums, m2, binary, gram, y_stats = plain
                y_min, y_max = float(y_stats[2]), float(y_stats[3])
                return cls(n, gram, sums / n, m2, binary, np.zeros(p), 0, 0, y_min, y_max, y_stats[:2].copy())
        x = np.asfortranarray(part.x)  # contiguous columns
        if np.isfinite(x).all():
            nonfinite, bad_rows = np.zeros(p), 0
        else:
            bad = ~np.isfinite(x)
            nonfinite, bad_rows = bad.sum(axis=0), int(bad.any(axis=1).sum())
            x = np.asfortranarray(np.where(bad, 0.0, x))
        mean = x.sum(axis=0) / n
        m2 = np.array([float(np.sum((x[:, j] - mean[j]) ** 2)) for j in range(p)])
        binary = np.array([_zero_one(x[:, j]) for j in range(p)], dtype=bool)
        return cls(n, x.T @ x, mean, m2, binary, nonfinite, bad_rows, offset_bad, *y_facts)

    def combine(self, other: "DesignFacts") -> "DesignFacts":
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * other.n / n
        m2 = self.m2 + other.m2 + delta**2 * self.n * other.n / n
        return DesignFacts(
            n,
            self.gram + other.gram,
            mean,
            m2,
            self.binary & other.binary,
            self.nonfinite + other.nonfinite,
            self.nonfinite_rows + other.nonfinite_rows,
            self.offset_nonfinite + other.offset_nonfinite,
            min(self.y_min, other.y_min),
            max(self.y_max, other.y_max),
            self.y_sums + other.y_sums,
        )

    @property
    def sd(self) -> np.ndarray:
        """Standard deviation of each column of X (ddof 1, as lme4's scale check)."""
        return np.sqrt(self.m2 / max(self.n - 1, 1))


# Below this condition number of X no column can be aliased (lme4's rule drops a column whose part
# orthogonal to the earlier ones is below 1e-7 of its norm, which needs a condition number of at
# least 1e7), and the Gram's Cholesky (relative error ~ eps * cond^2) is far from that boundary.
_SURELY_FULL_RANK = 1e5


def well_conditioned(gram: np.ndarray) -> bool:
    """Whether the columns of X with this ``X'X`` are surely not aliased (so no QR of the rows is needed)."""
    if gram.shape[0] == 0:
        return True
    try:
        r = np.linalg.cholesky(gram)
    except np.linalg.LinAlgError:
        return False
    return bool(np.linalg.cond(r) <= _SURELY_FULL_RANK)


def qr_r(part: EncodedPartition) -> np.ndarray:
    """The R of a QR decomposition of a partition's (finite) X."""
    return np.linalg.qr(part.x, mode="r") if part.nobs else np.zeros((0, part.x.shape[1]))


def stack_qr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The R of the rows of two parts (tall-skinny QR): that of their stacked R's."""
    return np.linalg.qr(np.vstack([a, b]), mode="r")


def _qr_partition(frame, plan: EncodingPlan) -> np.ndarray:
    return qr_r(encode_partition(frame, plan))


def qr_pass(source, plan: EncodingPlan) -> np.ndarray:
    """One more pass, for a nearly rank-deficient X: the R of a QR of all its rows, for lme4's aliasing rule."""
    from .reduction import map_reduce

    return map_reduce(source.partitions(plan.read_columns), _qr_partition, plan, stack_qr)


def _zero_one(column: np.ndarray) -> bool:
    """Whether every value is 0 or 1 (lme4's scale check skips such columns)."""
    low, high = column.min(), column.max()
    if low < 0 or high > 1:
        return False
    return bool(low == high or np.all((column == 0) | (column == 1)))


@dataclass(frozen=True, eq=False)
class Pass2:
    """Pass 2's result for some rows: the blocks and the facts about X and y."""

    blocks: PartialBlocks
    facts: DesignFacts

    def combine(self, other: "Pass2") -> "Pass2":
        return Pass2(self.blocks + other.blocks, self.facts.combine(other.facts))


def weighted_columns(part: EncodedPartition) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray]:
    """Each term's z, X and ``y - offset``, rows multiplied by sqrt(weights); a z that is X stays X."""
    y = part.response()
    y = y[:, 0] if y.ndim == 2 else y
    if part.weights is None:
        return part.zs, part.x, y
    root = np.sqrt(part.weights)
    x = part.x * root[:, None]
    return tuple(x if z is part.x else z * root[:, None] for z in part.zs), x, y * root


def pass2_partition(frame, plan: EncodingPlan) -> Pass2:
    """One partition's blocks and facts (the function the workers run)."""
    return pass2_encoded(encode_partition(frame, plan), plan)


def pass2_encoded(part: EncodedPartition, plan: EncodingPlan) -> Pass2:
    """The blocks and facts of a partition's encoded rows."""
    facts = DesignFacts.of(part)
    nlevels = tuple(t.nlevels for t in plan.terms)
    if part.nobs == 0 or facts.nonfinite_rows or facts.offset_nonfinite:
        return Pass2(zero_blocks(nlevels, tuple(t.ncols for t in plan.terms), part.x.shape[1] + 1), facts)
    zs, x, y = weighted_columns(part)
    refs = part.refs
    if part.weights is not None and not np.all(part.weights > 0):  # rows of weight 0 add nothing, nor count in n
        rows = np.flatnonzero(part.weights > 0)
        kept_x = x[rows]
        refs, zs, x, y = (
            tuple(r[rows] for r in refs),
            tuple(kept_x if z is x else z[rows] for z in zs),
            kept_x,
            y[rows],
        )
    xtx = facts.gram if part.weights is None else None  # the facts' X'X is the blocks' when rows are unweighted
    return Pass2(partial_blocks(refs, zs, nlevels, x, y, xtx), facts)


def combine_pass2(a: Pass2, b: Pass2) -> Pass2:
    return a.combine(b)


def sum_pass2(parts: list[Pass2]) -> Pass2:
    """Several partitions' pass 2 at once: the blocks merged (:meth:`PartialBlocks.sum`), the facts combined in order."""
    facts = functools.reduce(DesignFacts.combine, [part.facts for part in parts])
    return Pass2(PartialBlocks.sum([part.blocks for part in parts]), facts)


def assemble(
    total: PartialBlocks,
    keep_x: list[int],
    nlevels: tuple[int, ...],
    ncols: tuple[int, ...],
    scales: list[np.ndarray] | None = None,
    plan_rank_update: bool = True,
    structures: tuple[CovarianceStructure, ...] | None = None,
    prescaled: bool = False,
) -> BlockedCrossProducts:
    """The :class:`BlockedCrossProducts` of the summed blocks, with only the ``keep_x`` columns of X.

    ``structures``: each term's covariance structure (default unstructured),
    which sets how theta makes its ``lambda`` and how its columns are scaled;
    ``prescaled``: the sums are of columns already divided by ``scales``
    (see :meth:`BlockedCrossProducts.from_sums`).
    """
    c = total.a22_xy.shape[0]
    keep = np.concatenate([np.asarray(keep_x, dtype=np.int64), [c - 1]])
    a11, a21, a22 = total.dense_blocks(keep)
    return BlockedCrossProducts.from_sums(
        list(nlevels),
        list(ncols),
        a11,
        a21,
        a22,
        len(keep_x),
        total.nobs,
        scales=scales,
        plan_rank_update=plan_rank_update,
        structures=None if structures is None else list(structures),
        prescaled=prescaled,
    )


# --------------------------------------------------------------------------- a response row
@dataclass(frozen=True, eq=False)
class ResponseRow:
    """The products of one response column ``r`` with every column: ``Z1'r`` (q1 k1), ``Z_rest'r``, ``X'r``, ``r'r``."""

    z1: np.ndarray
    rest: np.ndarray
    x: np.ndarray
    rr: float

    def __add__(self, other: "ResponseRow") -> "ResponseRow":
        return ResponseRow(self.z1 + other.z1, self.rest + other.rest, self.x + other.x, self.rr + other.rr)


def response_row(
    refs: tuple[np.ndarray, ...], zs: tuple[np.ndarray, ...], nlevels: tuple[int, ...], x: np.ndarray, r: np.ndarray
) -> ResponseRow:
    """``[Z X]'r`` and ``r'r`` for some rows (already multiplied by sqrt(weights))."""
    parts = []
    for ref, z, q in zip(refs, zs, nlevels):
        k = z.shape[1]
        block = np.empty((q, k))
        for a in range(k):
            block[:, a] = np.bincount(ref, weights=z[:, a] * r, minlength=q)
        parts.append(block.ravel())
    rest = np.concatenate(parts[1:]) if len(parts) > 1 else np.zeros(0)
    return ResponseRow(parts[0], rest, x.T @ r, float(r @ r))

"""Spans of levels (mixedmodels.dask.spans): the sparse blocks they stand for, and their sums bit for bit.

Sums are compared exactly: a sum of spans adds each part into zeros in order,
which is the chain ``a + b + c`` of the sparse matrices (0 + a is a).
"""

from __future__ import annotations

import pickle

import numpy as np
import scipy.sparse as sp

from mixedmodels.dask.crossprods import sum_sparse
from mixedmodels.dask.spans import LevelSpan

RNG = np.random.default_rng(8)
Q, K, C = 50, 2, 3


def _a11(start: int, length: int) -> LevelSpan:
    return LevelSpan(start, RNG.normal(size=(length, K * K)), (Q, K * K))


def _a21(start: int, length: int) -> LevelSpan:
    return LevelSpan(start, RNG.normal(size=(length, K * C)), (C, Q * K), transposed=True)


def test_a_span_is_its_rows_of_the_block():
    span = _a11(10, 5)
    dense = span.toarray()
    assert dense.shape == (Q, K * K)
    np.testing.assert_array_equal(dense[10:15], span.data)
    assert not dense[:10].any() and not dense[15:].any()
    np.testing.assert_array_equal(span.tocsr().toarray(), dense)


def test_a_transposed_span_is_the_xy_rows_of_a21():
    """``data[l]`` holds level ``start + l``'s k columns of each xy row, ``zxy[l, a, j]`` at ``a * C + j``."""
    zxy = RNG.normal(size=(4, K, C))
    span = LevelSpan(7, zxy.reshape(4, K * C), (C, Q * K), transposed=True)
    expected = np.zeros((Q, K, C))
    expected[7:11] = zxy
    np.testing.assert_array_equal(span.toarray(), expected.transpose(2, 0, 1).reshape(C, Q * K))


def test_sums_of_spans_are_the_sums_of_their_matrices_bit_for_bit():
    for make in (_a11, _a21):
        parts = [make(0, 10), make(8, 6), make(30, 5), make(12, 3)]  # overlapping, disjoint, out of order
        chained = parts[0].tocsr()
        for part in parts[1:]:
            chained = chained + part.tocsr()
        total = LevelSpan.sum(parts)
        assert (total.start, total.stop) == (0, 35)
        np.testing.assert_array_equal(total.toarray(), chained.toarray())
        np.testing.assert_array_equal(sum_sparse(parts).toarray(), chained.toarray())
        np.testing.assert_array_equal((parts[0] + parts[1]).toarray(), (parts[0].tocsr() + parts[1].tocsr()).toarray())


def test_a_span_meets_a_sparse_matrix_of_the_general_path():
    span = _a11(5, 4)
    other = sp.csr_array(_a11(20, 3).toarray())
    for total in (span + other, other + span, sum_sparse([span, other]), sum_sparse([other, span])):
        assert sp.issparse(total)
        np.testing.assert_array_equal(total.toarray(), span.toarray() + other.toarray())


def test_a_span_travels():
    span = _a21(3, 4)
    back = pickle.loads(pickle.dumps(span))
    assert (back.start, back.shape, back.transposed) == (3, span.shape, True)
    np.testing.assert_array_equal(back.data, span.data)

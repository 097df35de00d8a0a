"""Supernodal Cholesky (linalg/supernodal.py and its kernels) against numpy's dense Cholesky."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import need_numba

need_numba("the supernodal factorization's numeric phase needs numba (the 'fast' extra)")

from mixedmodels.linalg import _ordering_kernels as kernels  # noqa: E402
from mixedmodels.linalg.supernodal import (  # noqa: E402
    SupernodalCholesky,
    _symbolic,
    minimum_degree_order,
)

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel


def _random_pattern(m, density, seed, blocks=1):
    """A symmetric pattern: random entries inside ``blocks`` diagonal blocks, a few links between them."""
    rng = np.random.default_rng(seed)
    pattern = np.zeros((m, m), dtype=bool)
    edges = np.linspace(0, m, blocks + 1).astype(int)
    for a, b in zip(edges[:-1], edges[1:]):
        pattern[a:b, a:b] = rng.random((b - a, b - a)) < density
    pattern |= rng.random((m, m)) < density / 20
    pattern |= pattern.T
    np.fill_diagonal(pattern, True)
    return pattern


def _spd_with_pattern(pattern, seed):
    """A symmetric positive definite matrix whose non-zeros are exactly ``pattern``."""
    rng = np.random.default_rng(seed)
    values = np.where(pattern, rng.uniform(-1, 1, pattern.shape), 0.0)
    values = np.tril(values) + np.tril(values, -1).T
    np.fill_diagonal(values, np.abs(values).sum(axis=1) + 1.0)  # diagonally dominant
    return values


def _fixed_rows_dense(pattern, nfixed):
    """Make the last ``nfixed`` rows dense (like the fixed effects and the response)."""
    pattern = pattern.copy()
    pattern[-nfixed:, :] = True
    pattern[:, -nfixed:] = True
    return pattern


CASES = [  # m, density, diagonal blocks, fixed rows
    (60, 0.1, 1, 0),
    (150, 0.05, 4, 3),
    (200, 0.3, 1, 2),
    (120, 0.02, 10, 3),
    (90, 1.0, 1, 0),  # dense: one supernode
]


@pytest.mark.parametrize("m, density, blocks, nfixed", CASES)
def test_factor_equals_dense_cholesky(m, density, blocks, nfixed):
    pattern = _random_pattern(m, density, seed=m, blocks=blocks)
    if nfixed:
        pattern = _fixed_rows_dense(pattern, nfixed)
    matrix = _spd_with_pattern(pattern, seed=1)
    plan = SupernodalCholesky.analyse(pattern, nfixed=nfixed)
    order = plan.order
    assert sorted(order) == list(range(m))
    np.testing.assert_array_equal(order[m - nfixed :], np.arange(m - nfixed, m))
    reordered = np.ascontiguousarray(matrix[np.ix_(order, order)])
    expected = np.linalg.cholesky(reordered)
    work = reordered.copy()
    assert plan.factor(work)
    factor = np.tril(work)
    np.testing.assert_allclose(factor, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())
    structural_zero = ~_symbolic(pattern[np.ix_(order, order)])[0] & np.tri(m, dtype=bool)
    assert np.all(factor[structural_zero] == 0.0)


def test_sparse_patterns_need_fewer_flops_and_dense_ones_do_not():
    sparse = SupernodalCholesky.analyse(_random_pattern(200, 0.03, seed=2, blocks=8))
    assert sparse.flops < 0.2 * sparse.dense_flops
    dense = SupernodalCholesky.analyse(np.ones((100, 100), dtype=bool))
    assert len(dense.starts) == 2  # one supernode
    assert dense.flops == pytest.approx(dense.dense_flops)


def test_not_positive_definite_is_reported():
    pattern = _random_pattern(80, 0.1, seed=3)
    matrix = _spd_with_pattern(pattern, seed=3)
    plan = SupernodalCholesky.analyse(pattern)
    reordered = np.ascontiguousarray(matrix[np.ix_(plan.order, plan.order)])
    reordered[40, 40] = -1.0
    assert not plan.factor(reordered)


def test_minimum_degree_avoids_fill_on_an_arrow():
    """An arrow (every node linked to node 0 only): eliminating the hub first fills everything; min degree never does."""
    m = 30
    pattern = np.eye(m, dtype=bool)
    pattern[0, :] = pattern[:, 0] = True
    order = minimum_degree_order(pattern)
    assert order[-1] == 0 or order[-2] == 0  # the hub waits until at most one leaf is left
    structure, _ = _symbolic(pattern[np.ix_(order, order)])
    assert structure.sum() == np.tril(pattern).sum()  # no fill at all


def _python_minimum_degree(pattern, nfixed):
    m = pattern.shape[0]
    words = (m + 63) // 64
    full = pattern | np.eye(m, dtype=bool)
    packed = np.pad(np.packbits(full, axis=1, bitorder="little"), ((0, 0), (0, words * 8 - (m + 7) // 8)))
    return kernels.minimum_degree(
        np.ascontiguousarray(packed).view(np.uint64), full.sum(axis=1).astype(np.int64), nfixed
    )


def _reference_minimum_degree(pattern, nfixed):
    """Minimum degree written the obvious way: degrees recounted on the eliminated graph."""
    graph = pattern | np.eye(pattern.shape[0], dtype=bool)
    m = graph.shape[0]
    alive = np.ones(m, dtype=bool)
    order = []
    for _ in range(m - nfixed):
        degree = np.where(alive[: m - nfixed], (graph & alive).sum(axis=1)[: m - nfixed], np.iinfo(np.int64).max)
        node = int(np.argmin(degree))
        neighbours = np.flatnonzero(graph[node] & alive)
        graph[np.ix_(neighbours, neighbours)] = True
        alive[node] = False
        order.append(node)
    return np.array(order + list(range(m - nfixed, m)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_minimum_degree_kernel_compiled_python_and_reference_agree(seed):
    pattern = _fixed_rows_dense(_random_pattern(70, 0.08, seed=seed, blocks=3), 2)
    expected = _reference_minimum_degree(pattern, 2)
    np.testing.assert_array_equal(_python_minimum_degree(pattern, 2), expected)
    np.testing.assert_array_equal(minimum_degree_order(pattern, 2), expected)


def test_analysis_kernels_compiled_and_python_agree():
    pattern = _random_pattern(90, 0.06, seed=4, blocks=3)
    lower = np.tril(pattern)
    compiled_structure, compiled_parent = lower.copy(), np.empty(90, dtype=np.int64)
    python_structure, python_parent = lower.copy(), np.empty(90, dtype=np.int64)
    kernels.compiled("elimination_structure")(compiled_structure, compiled_parent)
    kernels.elimination_structure(python_structure, python_parent)
    np.testing.assert_array_equal(compiled_structure, python_structure)
    np.testing.assert_array_equal(compiled_parent, python_parent)
    limits, fractions = np.array([4, 16, 48]), np.array([0.8, 0.1, 0.05])
    starts = kernels.compiled("supernode_starts")(compiled_structure, compiled_parent, limits, fractions)
    np.testing.assert_array_equal(starts, kernels.supernode_starts(python_structure, python_parent, limits, fractions))
    assert starts[0] == 0 and starts[-1] == 90 and np.all(np.diff(starts) > 0)


def test_supernodes_are_chains_within_the_zero_limits():
    """Every merged column is its predecessor's parent, and no panel holds more zeros than allowed."""
    pattern = _random_pattern(150, 0.05, seed=5, blocks=5)
    plan = SupernodalCholesky.analyse(pattern)
    structure, parent = _symbolic(pattern[np.ix_(plan.order, plan.order)])
    for first, stop in zip(plan.starts[:-1], plan.starts[1:]):
        assert all(parent[j] == j + 1 for j in range(first, stop - 1))
        width = stop - first
        rows = np.count_nonzero(structure[first:, first:stop].any(axis=1))
        stored = width * rows - width * (width - 1) // 2
        zeros = 1 - structure[first:, first:stop].sum() / stored
        allowed = 0.8 if width <= 4 else 0.1 if width <= 16 else 0.05 if width <= 48 else 0.0
        assert zeros <= allowed + 1e-12


def test_level_pair_pattern_marks_rows_sharing_a_column():
    import scipy.sparse as sp

    rng = np.random.default_rng(6)
    a21 = sp.random_array((40, 25), density=0.1, random_state=rng, format="csc")
    a21.sort_indices()
    mask = np.zeros((40, 40), dtype=bool)
    kernels.compiled("level_pair_pattern")(a21.indptr, a21.indices, mask)
    product = ((a21 != 0).astype(float) @ (a21 != 0).astype(float).T).toarray() > 0
    np.testing.assert_array_equal(mask, np.tril(product))


def test_factor_refuses_an_array_it_could_not_factor_in_place():
    pattern = _random_pattern(30, 0.2, seed=7)
    plan = SupernodalCholesky.analyse(pattern)
    matrix = _spd_with_pattern(pattern, seed=7)
    with pytest.raises(ValueError, match="C-contiguous"):
        plan.factor(np.asfortranarray(matrix))
    with pytest.raises(ValueError, match="30 x 30"):
        plan.factor(np.eye(31))


@pytest.mark.parametrize("m, density, blocks, nfixed", CASES)
@pytest.mark.parametrize("lead", [0, 1, 2], ids=["all", "no-last", "no-last-two"])
def test_selected_inverse_equals_the_dense_inverse_on_the_pattern(m, density, blocks, nfixed, lead):
    """Takahashi's recurrences on the supernodes give (L L')^-1 of the leading block wherever L has an entry."""
    pattern = _random_pattern(m, density, seed=m, blocks=blocks)
    if nfixed:
        pattern = _fixed_rows_dense(pattern, nfixed)
    plan = SupernodalCholesky.analyse(pattern, nfixed=nfixed)
    reordered = np.ascontiguousarray(_spd_with_pattern(pattern, seed=1)[np.ix_(plan.order, plan.order)])
    work = reordered.copy()
    assert plan.factor(work)
    nlead = m - lead
    selected = plan.selected_inverse(work, nlead)
    expected = np.linalg.inv(reordered[:nlead, :nlead])
    structure = _symbolic(pattern[np.ix_(plan.order, plan.order)])[0][:nlead, :nlead]
    np.testing.assert_allclose(
        selected[:nlead, :nlead][structure], expected[structure], rtol=1e-10, atol=1e-12 * np.abs(expected).max()
    )

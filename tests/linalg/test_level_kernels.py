"""The compiled per-level 2 x 2 loops (linalg/_level_kernels.py) against their numpy versions.

``factor_2x2`` and ``roots_2x2`` repeat the closed forms of linalg/small.py
operation for operation (IEEE-exact elementary operations, no BLAS, no fused
multiply-add), so they must give the same bits; ``solve_2x2`` and
``gradient_total_2x2`` order their operations differently from the numpy
solves and einsums, so they agree within rounding: on these blocks (condition
numbers up to ~1e6, see ``_blocks``) a relative 1e-9 is three orders above
the rounding error ``u * kappa`` and far below any change of the algebra.
Each kernel is checked as plain Python (the algebra) and compiled (numba, when installed).
"""

from __future__ import annotations

import numpy as np
import pytest

from mixedmodels.linalg import _level_kernels, small
from mixedmodels.linalg.jit import jit

pytestmark = pytest.mark.numerics

LAMS = [
    np.array([[0.97, 0.0], [0.015, 0.23]]),
    np.array([[1e-3, 0.0], [0.1, 5.0]]),  # |b| > |a| in most factors: LAPACK pivots
    np.array([[0.0, 0.0], [0.0, 0.4]]),  # a singular fit's boundary
    np.array([[1.3, 0.4], [-0.7, 0.01]]),  # not triangular
]


def _blocks(q: int, seed: int) -> np.ndarray:
    """Random symmetric positive semi-definite 2 x 2 blocks of varied scales (some rank 1)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(q, 4, 2)) * rng.lognormal(sigma=1.0, size=(q, 1, 1))
    x[: q // 10, :, 1] = x[: q // 10, :, 0] * 3.0
    return np.einsum("qni,qnj->qij", x, x)


def _versions(name: str) -> list:
    """The kernel as plain Python, and compiled when numba is installed."""
    kernel = getattr(_level_kernels, name)
    compiled = jit(kernel)
    return [kernel] if compiled is None else [kernel, compiled]


def _numpy_factor(a11: np.ndarray, lam: np.ndarray) -> np.ndarray:
    a, b, c = small._factor_columns(*_lam_a_lam(a11, lam))
    return small._stack(a, b, np.zeros_like(a), c)


def _lam_a_lam(a11: np.ndarray, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """small.first_block_factor_2x2's sums, without its compiled shortcut."""
    blocks = a11.reshape(a11.shape[0], 4).T
    (m00, m01), (m10, m11) = lam.tolist()
    left = np.array([[m00, m00, m10, m10], [m01, m01, m11, m11], [m01, m01, m11, m11]])
    right = np.array([[m00, m10, m00, m10], [m00, m10, m00, m10], [m01, m11, m01, m11]])
    terms = (left[:, :, None] * blocks) * right[:, :, None]
    s = ((terms[:, 0] + terms[:, 1]) + terms[:, 2]) + terms[:, 3]
    s += np.array([[1.0], [0.0], [1.0]])
    return s[0], s[1], s[2]


@pytest.mark.parametrize("lam", LAMS)
def test_factor_and_roots_give_the_closed_forms_bits(lam: np.ndarray) -> None:
    a11 = _blocks(300, 0)
    expected = _numpy_factor(a11, lam)
    roots = small._stack(*small._roots(expected, lam))
    for factor_kernel, roots_kernel in zip(_versions("factor_2x2"), _versions("roots_2x2")):
        out = np.empty_like(a11)
        assert factor_kernel(a11, lam, out)
        np.testing.assert_array_equal(out, expected)
        got = np.empty_like(a11)
        roots_kernel(expected, lam, got)
        np.testing.assert_array_equal(got, roots)


def test_factor_reports_a_block_that_is_not_positive_definite() -> None:
    a11 = np.array([[[1.0, 0.0], [0.0, 1.0]], [[-5.0, 0.0], [0.0, 1.0]]])
    for kernel in _versions("factor_2x2"):
        assert not kernel(a11, np.eye(2), np.empty_like(a11))
    with pytest.raises(np.linalg.LinAlgError):  # the public function then raises as LAPACK does
        small.first_block_factor_2x2(a11, np.eye(2))


@pytest.mark.parametrize("lam", LAMS[:2] + LAMS[3:])
def test_solve_agrees_with_numpy_solves(lam: np.ndarray) -> None:
    a11 = _blocks(300, 1)
    l11 = _numpy_factor(a11, lam)
    rhs = np.random.default_rng(2).normal(size=(300, 2))
    w = np.linalg.solve(l11, (rhs @ lam)[:, :, None])
    expected = np.linalg.solve(np.swapaxes(l11, 1, 2), w)[:, :, 0]
    for kernel in _versions("solve_2x2"):
        out = np.empty((300, 2))
        kernel(l11, lam, rhs, out)
        np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-12 * np.abs(expected).max())


@pytest.mark.parametrize("lam", LAMS[:2] + LAMS[3:])
def test_gradient_total_agrees_with_the_einsums(lam: np.ndarray) -> None:
    """``sum_l G_l A_l - G_l Q_l (I - W_l A_l)`` as linalg/gradient.py's numpy path forms it."""
    a11 = _blocks(300, 3)
    quad = _blocks(300, 4)
    l11 = _numpy_factor(a11, lam)
    roots = np.linalg.solve(l11, np.broadcast_to(lam.T, l11.shape))
    g = np.linalg.solve(np.swapaxes(l11, 1, 2), roots)
    w = np.einsum("ij,qjk->qik", lam, g)
    complement = np.eye(2) - w @ a11
    expected = np.sum(g @ a11 - g @ quad @ complement, axis=0)
    scale = np.abs(g @ a11).sum() + np.abs(g @ quad @ complement).sum()  # the sum's magnitude before cancelling
    for kernel in _versions("gradient_total_2x2"):
        out = np.empty((2, 2))
        kernel(l11, lam, a11, quad, out)
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-9 * scale)


def test_rows_times_is_the_matrix_product() -> None:
    u = np.random.default_rng(6).normal(size=(1000, 3))
    mat = np.random.default_rng(7).normal(size=(3, 3))
    np.testing.assert_allclose(small.rows_times(u, mat), u @ mat, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(small.rows_times(u[:, :1], mat[:1, :1]), u[:, :1] * mat[0, 0], rtol=0)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_level_slabs_gather_each_levels_columns_on_the_union_of_their_rows(k: int) -> None:
    """Against the definition: level l's slab is A21[:, l k : (l+1) k] on the rows where any of them is non-zero."""
    import scipy.sparse as sp

    rng = np.random.default_rng(k)
    m, nlevels = 23, 40
    dense = rng.normal(size=(m, nlevels * k)) * (rng.random((m, nlevels * k)) < 0.15)
    dense[:, 5 * k : 6 * k] = 0.0  # a level without entries
    a21 = sp.csr_array(dense)
    for kernel in _versions("level_slabs"):
        indptr, rows, values, bounds = kernel(a21.indptr, a21.indices, a21.data, k, nlevels, 8)
        assert indptr[0] == 0 and indptr[-1] == rows.size
        for level in range(nlevels):
            block = dense[:, level * k : (level + 1) * k]
            expected_rows = np.flatnonzero(np.any(block != 0, axis=1))
            entries = slice(indptr[level], indptr[level + 1])
            np.testing.assert_array_equal(rows[entries], expected_rows)
            np.testing.assert_array_equal(values[entries], block[expected_rows])
            edges = np.minimum(np.arange(bounds.shape[1]) * 8, m)
            np.testing.assert_array_equal(bounds[level], indptr[level] + np.searchsorted(expected_rows, edges))

"""The compiled loops (mixedmodels.linalg._kernels): their Python bodies against dense algebra, and numba against Python."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import need_numba
import scipy.sparse as sp

from mixedmodels.linalg import _kernels
from mixedmodels.linalg.rank_update import ScalarRankUpdate, VectorRankUpdate, tile_bounds

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel


def _level_slabs(seed: int, nlevels: int, k: int, m: int):
    """Random per-level slabs on random sorted row sets, and the same as a dense m x (nlevels*k) A21."""
    rng = np.random.default_rng(seed)
    indptr, rows, values = [0], [], []
    a21 = np.zeros((m, nlevels * k))
    for lev in range(nlevels):
        chosen = np.sort(rng.choice(m, size=rng.integers(1, m), replace=False))
        slab = rng.normal(size=(chosen.size, k))
        a21[chosen, lev * k : (lev + 1) * k] = slab
        rows.append(chosen)
        values.append(slab)
        indptr.append(indptr[-1] + chosen.size)
    factors = rng.normal(size=(nlevels, k, k))
    return np.array(indptr), np.concatenate(rows), np.vstack(values), factors, a21


def _bounds(indptr: np.ndarray, rows: np.ndarray, m: int, tile: int) -> np.ndarray:
    levels = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))
    return tile_bounds(levels * m + rows, indptr.size - 1, m, tile)


def test_tile_bounds_cut_each_level_at_tile_edges():
    indptr, rows = np.array([0, 3, 3, 5]), np.array([0, 4, 7, 5, 6])  # level 1 has no rows
    np.testing.assert_array_equal(_bounds(indptr, rows, m=8, tile=4), [[0, 1, 3], [3, 3, 3], [3, 3, 5]])
    np.testing.assert_array_equal(_bounds(indptr, rows, m=8, tile=1024), [[0, 3], [3, 3], [3, 5]])


def _expected_lower(a21: np.ndarray, factors: np.ndarray) -> np.ndarray:
    weights = np.einsum("lji,ljm->lim", factors, factors)  # W_l = g_l' g_l
    return np.tril(a21 @ sp.block_diag(list(weights)).toarray() @ a21.T)


def _symmetric(m: int, seed: int = 0) -> np.ndarray:
    a = np.random.default_rng(seed).normal(size=(m, m))
    return a + a.T


@pytest.mark.parametrize("tile", [2, 4, 9])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_level_syrk_python_body_subtracts_the_lower_triangle_of_a21_w_a21t(k, tile):
    indptr, rows, values, factors, a21 = _level_slabs(k, nlevels=6, k=k, m=9)
    a22 = _symmetric(9)
    out = a22.copy()
    _kernels.level_syrk(indptr, rows, values, factors, _bounds(indptr, rows, 9, tile), np.ones(9), out)
    np.testing.assert_allclose(np.tril(out), np.tril(a22) - _expected_lower(a21, factors), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(np.triu(out, 1), np.triu(a22, 1))  # upper triangle untouched


@pytest.mark.parametrize("k", [1, 2, 3])
def test_compiled_level_syrk_equals_its_python_body(k):
    need_numba("compiled kernels need numba (the 'fast' extra)")
    kernel = _kernels.compiled("level_syrk")
    indptr, rows, values, factors, _ = _level_slabs(10 + k, nlevels=40, k=k, m=25)
    untiled = np.zeros((25, 25))
    kernel(indptr, rows, values, factors, _bounds(indptr, rows, 25, 25), np.ones(25), untiled)
    for tile in (3, 8, 25):
        compiled_out, python_out = np.zeros((25, 25)), np.zeros((25, 25))
        bounds = _bounds(indptr, rows, 25, tile)
        kernel(indptr, rows, values, factors, bounds, np.ones(25), compiled_out)
        _kernels.level_syrk(indptr, rows, values, factors, bounds, np.ones(25), python_out)
        np.testing.assert_allclose(compiled_out, python_out, rtol=1e-13, atol=1e-13)
        np.testing.assert_array_equal(compiled_out, untiled)  # tiles keep each entry's order of terms


def test_grouped_scatter_python_and_compiled():
    rng = np.random.default_rng(4)
    flat = np.sort(rng.integers(0, 36, 50))
    values, group, weights = rng.normal(size=50), rng.integers(0, 3, 50), rng.normal(size=3)
    expected = np.zeros(36)
    np.subtract.at(expected, flat, values * weights[group])
    python_out = np.zeros(36)
    _kernels.grouped_scatter(flat, values, group, weights, python_out)
    np.testing.assert_allclose(python_out, expected, rtol=1e-13, atol=1e-13)
    need_numba("compiled kernels need numba (the 'fast' extra)")
    compiled_out = np.zeros(36)
    _kernels.compiled("grouped_scatter")(flat, values, group, weights, compiled_out)
    np.testing.assert_allclose(compiled_out, expected, rtol=1e-13, atol=1e-13)


def test_vector_rank_update_gathers_columns_with_different_row_patterns():
    need_numba("compiled kernels need numba (the 'fast' extra)")
    _, _, _, factors, a21 = _level_slabs(3, nlevels=8, k=2, m=12)
    a21[::3, 1::2] = 0.0  # the slope column misses rows the intercept column has
    plan = VectorRankUpdate.build(sp.csr_array(a21), ncols=2)
    a22 = _symmetric(12)
    updated = plan.subtract_from(a22, factors)
    np.testing.assert_allclose(np.tril(updated), np.tril(a22) - _expected_lower(a21, factors), rtol=1e-12, atol=1e-12)


@pytest.fixture
def without_numba(monkeypatch):
    monkeypatch.setenv("MIXEDMODELS_NO_NUMBA", "1")
    _kernels.jit.cache_clear()
    yield
    _kernels.jit.cache_clear()


def test_compiled_is_none_when_disabled(without_numba):
    assert _kernels.compiled("level_syrk") is None
    assert VectorRankUpdate.build(sp.csr_array(np.eye(4)), ncols=2) is None


@pytest.mark.parametrize("compiled", [True, False])
def test_scalar_rank_update_subtracts_with_and_without_numba(compiled, request):
    if compiled:
        need_numba("compiled kernels need numba (the 'fast' extra)")
    else:
        request.getfixturevalue("without_numba")
    _, _, _, _, a21 = _level_slabs(5, nlevels=30, k=1, m=10)
    diagonal = np.random.default_rng(6).integers(1, 4, 30).astype(float)  # shared diagonals: grouped levels
    plan = ScalarRankUpdate.build(sp.csr_array(a21), diagonal)
    weights = 0.7 / (0.7 * diagonal + 1.0)
    a22 = _symmetric(10)
    updated = plan.subtract_from(a22, weights)
    np.testing.assert_allclose(np.tril(updated), np.tril(a22 - a21 @ np.diag(weights) @ a21.T), rtol=1e-12, atol=1e-12)


def test_grouped_scatter_gives_the_bits_of_bincount():
    need_numba("compiled kernels need numba (the 'fast' extra)")
    _, _, _, _, a21 = _level_slabs(8, nlevels=200, k=1, m=40)
    diagonal = np.random.default_rng(9).integers(1, 6, 200).astype(float)
    plan = ScalarRankUpdate.build(sp.csr_array(a21), diagonal)
    weights = 0.3 / (0.3 * diagonal + 1.0)
    a22 = _symmetric(40)
    via_bincount = np.subtract(a22, plan.apply(weights))
    out = a22.copy()
    _kernels.compiled("grouped_scatter")(
        plan.flat, plan.values, plan.group, weights[plan.representative], out.reshape(-1)
    )
    np.testing.assert_array_equal(np.tril(out), np.tril(via_bincount))
    assert _kernels.compiled_if_loaded("grouped_scatter") is not None  # numba is loaded by now


@pytest.mark.parametrize("k", [1, 2])
def test_level_syrk_row_scale_is_the_update_of_the_scaled_rows(k):
    indptr, rows, values, factors, a21 = _level_slabs(k + 20, nlevels=6, k=k, m=9)
    scale = np.random.default_rng(k).uniform(0.2, 3.0, 9)
    out = np.zeros((9, 9))
    _kernels.level_syrk(indptr, rows, values, factors, _bounds(indptr, rows, 9, 4), scale, out)
    expected = -_expected_lower(scale[:, None] * a21, factors)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_scaled_lower_copy_python_and_compiled():
    source, scale = _symmetric(7, seed=2), np.random.default_rng(3).uniform(0.5, 2.0, 7)
    expected = np.tril(scale[:, None] * source * scale)
    out = np.full((7, 7), np.nan)
    _kernels.scaled_lower_copy(source, scale, out)
    np.testing.assert_allclose(np.tril(out), expected, rtol=1e-15)
    assert np.isnan(out[np.triu_indices(7, 1)]).all()  # the upper triangle is not written
    kernel = _kernels.compiled("scaled_lower_copy")
    if kernel is not None:
        compiled_out = np.full((7, 7), np.nan)
        kernel(source, scale, compiled_out)
        np.testing.assert_array_equal(np.tril(compiled_out), np.tril(out))

"""The sparse LDL' PIRLS system (linalg/_pirls_kernels, SparseScalarSystem): its Python bodies against
the numpy ScalarSystem, and numba against the Python bodies."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from mixedmodels.linalg import _pirls_kernels
from mixedmodels.linalg import pirls as pirls_module
from mixedmodels.linalg.pirls_scalar import ScalarSystem, SparseScalarSystem

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel

_NAMES = _pirls_kernels.__all__[1:]  # every kernel


def _design(seed: int, nested: bool):
    """Three scalar terms (an observation-level one first, then two nested or crossed), p = 3."""
    rng = np.random.default_rng(seed)
    n = 60
    lev3 = rng.integers(0, 5, n)
    lev2 = lev3 * 3 + rng.integers(0, 3, n) if nested else rng.integers(0, 8, n)
    refs = [np.arange(n), np.unique(lev2, return_inverse=True)[1], np.unique(lev3, return_inverse=True)[1]]
    nlevels = [int(r.max()) + 1 for r in refs]
    z = [np.ones(n), rng.uniform(0.5, 2.0, n), np.ones(n)]
    x = np.column_stack([np.ones(n), rng.normal(size=n), rng.integers(0, 2, n).astype(float)])
    offsets = np.concatenate([[0], np.cumsum(nlevels)[:-1]])
    zt = sp.csr_array(
        sp.coo_array(
            (np.concatenate(z), (np.concatenate([o + r for o, r in zip(offsets, refs)]), np.tile(np.arange(n), 3))),
            shape=(sum(nlevels), n),
        )
    )
    return refs, z, nlevels, x, zt, rng.uniform(0.2, 3.0, n), rng.normal(size=n)


def _kernels(compiled: bool) -> dict:
    return {name: (_pirls_kernels.compiled(name) if compiled else getattr(_pirls_kernels, name)) for name in _NAMES}


@pytest.mark.parametrize("nested", [True, False])
@pytest.mark.parametrize("joint", [False, True])
def test_python_bodies_solve_the_system_of_the_numpy_path(nested, joint):
    refs, z, nlevels, x, zt, w, zw = _design(1, nested)
    lams = np.array([0.6, 1.4, 0.3])
    numpy_factor = ScalarSystem(refs, z, nlevels, x, zt)
    expected = numpy_factor.factorize(numpy_factor.at(lams), w, zw, joint)
    sparse = SparseScalarSystem(refs, z, nlevels, x, _kernels(compiled=False))
    got = sparse.factorize(sparse.at(lams), w, zw, joint)
    assert got.ok and expected.ok
    np.testing.assert_allclose(got.logdet_re(), expected.logdet_re(), rtol=1e-13)
    np.testing.assert_allclose(got.u, expected.u, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(got.beta, expected.beta, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(got.l11, expected.l11, rtol=1e-14)


def test_nested_terms_make_no_fill():
    refs, z, nlevels, x, _, _, _ = _design(2, nested=True)
    sparse = SparseScalarSystem(refs, z, nlevels, x, _kernels(compiled=False))
    # each observation's column of L: its level of the second and third term; each second-term level's: its third
    assert int(sparse.lp[-1]) == 2 * refs[0].size + nlevels[1]


def test_a_system_that_is_not_positive_definite_is_not_ok():
    refs, z, nlevels, x, _, w, zw = _design(3, nested=True)
    sparse = SparseScalarSystem(refs, z, nlevels, x, _kernels(compiled=False))
    w = w.copy()
    w[refs[1] == 0] = -50.0
    assert not sparse.factorize(sparse.at(np.array([1.0, 1.0, 1.0])), w, zw, False).ok


@pytest.mark.parametrize("nested", [True, False])
def test_compiled_kernels_equal_their_python_bodies(nested):
    if _pirls_kernels.compiled("ldl_numeric") is None:
        pytest.skip("compiled kernels need numba (the 'fast' extra) and MIXEDMODELS_NO_NUMBA unset")
    refs, z, nlevels, x, _, w, zw = _design(4, nested)
    lams = np.array([0.9, 0.5, 1.2])
    for joint in (False, True):
        factors = []
        for compiled in (False, True):
            sparse = SparseScalarSystem(refs, z, nlevels, x, _kernels(compiled))
            factors.append(sparse.factorize(sparse.at(lams), w, zw, joint))
        python, numba_ = factors
        np.testing.assert_allclose(numba_.logdet_re(), python.logdet_re(), rtol=1e-14)
        np.testing.assert_allclose(numba_.u, python.u, rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(numba_.beta, python.beta, rtol=1e-13, atol=1e-14)


def test_without_numba_pirls_keeps_the_numpy_system(monkeypatch):
    refs, z, nlevels, x, zt, _, _ = _design(5, nested=True)
    monkeypatch.setattr(pirls_module._pirls_kernels, "compiled", lambda name: None)
    assert isinstance(pirls_module._scalar_system(refs, z, nlevels, x, zt), ScalarSystem)


def test_with_kernels_a_sparse_design_gets_the_sparse_system(monkeypatch):
    refs, z, nlevels, x, zt, _, _ = _design(6, nested=True)
    monkeypatch.setattr(pirls_module._pirls_kernels, "compiled", lambda name: getattr(_pirls_kernels, name))
    monkeypatch.setattr(pirls_module, "_COMPILE_FROM", 0.0)
    assert isinstance(pirls_module._scalar_system(refs, z, nlevels, x, zt), SparseScalarSystem)


def test_a_small_dense_system_does_not_ask_for_numba(monkeypatch):
    refs, z, nlevels, x, zt, _, _ = _design(6, nested=True)  # rest block 20 rows: ~27,000 flops

    def fail(name):
        raise AssertionError("a small system should not load compiled kernels")

    monkeypatch.setattr(pirls_module._pirls_kernels, "compiled", fail)
    assert isinstance(pirls_module._scalar_system(refs, z, nlevels, x, zt), ScalarSystem)


@pytest.mark.parametrize("compiled", [False, True])
def test_linear_predictor_is_base_plus_z_v(compiled):
    if compiled and _pirls_kernels.compiled("linear_predictor") is None:
        pytest.skip("compiled kernels need numba (the 'fast' extra) and MIXEDMODELS_NO_NUMBA unset")
    refs, z, nlevels, x, zt, w, base = _design(7, nested=False)
    sparse = SparseScalarSystem(refs, z, nlevels, x, _kernels(compiled))
    v = np.random.default_rng(8).normal(size=sum(nlevels))
    np.testing.assert_array_equal(sparse.linear_predictor(base, v), base + zt.T.tocsr() @ v)


@pytest.mark.parametrize("joint", [False, True])
def test_factor_only_gives_the_same_log_determinant(joint):
    refs, z, nlevels, x, _, w, zw = _design(9, nested=True)
    sparse = SparseScalarSystem(refs, z, nlevels, x, _kernels(compiled=False))
    state = sparse.at(np.array([0.8, 1.1, 0.7]))
    full, only = sparse.factorize(state, w, zw, joint), sparse.factorize(state, w, zw, joint, solve=False)
    assert only.u is None and only.logdet_re() == full.logdet_re()


def _dense_system(refs, z, nlevels, lams, w) -> np.ndarray:
    """``Lambda' Z' W Z Lambda + I`` as a dense matrix, from scratch."""
    offsets = np.concatenate([[0], np.cumsum(nlevels)[:-1]])
    zl = np.zeros((refs[0].size, sum(nlevels)))
    for o, r, c, lam in zip(offsets, refs, z, lams):
        zl[np.arange(r.size), o + r] = lam * c
    return zl.T @ (w[:, None] * zl) + np.eye(zl.shape[1])


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("nested", [True, False])
def test_selected_inverse_and_solve_equal_the_dense_inverse(compiled, nested):
    """Takahashi's recurrences give ``K^-1`` on L's pattern (every entry an observation's pairs need),
    and the LDL' solve ``K^-1 B``, to rounding of the dense inverse (cond(K) < 1e3 here)."""
    if compiled and _pirls_kernels.compiled("selected_inverse") is None:
        pytest.skip("compiled kernels need numba (the 'fast' extra) and MIXEDMODELS_NO_NUMBA unset")
    refs, z, nlevels, x, _, w, _ = _design(10, nested)
    lams = np.array([0.7, 1.3, 0.9])
    sparse = SparseScalarSystem(refs, z, nlevels, x, _kernels(compiled))
    vals = sparse.weighted_factor(lams, w)
    inverse = np.linalg.inv(_dense_system(refs, z, nlevels, lams, w))
    selected, nnz = sparse.inverse_on_pattern(vals), int(sparse.lp[-1])
    columns = np.repeat(np.arange(sparse.nre), np.diff(sparse.lp))
    np.testing.assert_allclose(selected[:nnz], inverse[sparse.li, columns], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(selected[nnz:], np.diagonal(inverse), rtol=1e-10)
    # each observation's pairs of levels are on the pattern
    positions, lo, hi = sparse.observation_entries()
    rows = np.column_stack([o + r for o, r in zip(np.concatenate([[0], np.cumsum(nlevels)[:-1]]), refs)])
    np.testing.assert_allclose(selected[positions], inverse[rows[:, lo], rows[:, hi]], rtol=1e-10, atol=1e-13)
    rhs = np.random.default_rng(11).normal(size=(sparse.nre, 4))
    np.testing.assert_allclose(sparse.solve_with(vals, rhs), inverse @ rhs, rtol=1e-9, atol=1e-12)


def test_weighted_factor_is_none_when_not_positive_definite():
    refs, z, nlevels, x, _, w, _ = _design(3, nested=True)
    sparse = SparseScalarSystem(refs, z, nlevels, x, _kernels(compiled=False))
    w = w.copy()
    w[refs[1] == 0] = -50.0
    assert sparse.weighted_factor(np.ones(3), w) is None


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("joint", [False, True])
def test_compiled_row_sums_are_the_sparse_products_numbers(monkeypatch, compiled, joint):
    """The compiled row sums (``row_sums``) add in the order of scipy's CSR products: the same bits."""
    from mixedmodels.linalg import pirls_scalar

    refs, z, nlevels, x, zt, w, zw = _design(3, nested=False)
    lams = np.array([0.6, 1.4, 0.3])
    monkeypatch.setattr(pirls_scalar, "_COMPILED_SUMS_FROM", 10**12)
    monkeypatch.setattr(pirls_scalar, "_COMPILED_ALWAYS", 10**12)
    monkeypatch.setattr(pirls_scalar, "_SMALL_DENSE", 0)  # scipy's CSR products (a dense product adds in another order)
    sparse_products = ScalarSystem(refs, z, nlevels, x, zt)
    kernel = _pirls_kernels.compiled("row_sums") if compiled else _pirls_kernels.row_sums
    if kernel is None:
        pytest.skip("numba not available")
    monkeypatch.setattr(pirls_scalar, "_COMPILED_ALWAYS", 0)
    monkeypatch.setattr(_pirls_kernels, "compiled", lambda name: kernel)
    row_sums = ScalarSystem(refs, z, nlevels, x, zt)
    assert row_sums.compiled and not sparse_products.compiled
    for got, expected in zip(row_sums.weighted_sums(w, zw, joint), sparse_products.weighted_sums(w, zw, joint)):
        assert (got is None) == (expected is None)
        if got is not None:
            np.testing.assert_array_equal(got, expected)
    a, b = (s.factorize(s.at(lams), w, zw, joint) for s in (row_sums, sparse_products))
    np.testing.assert_array_equal(a.u, b.u)
    assert a.logdet_re() == b.logdet_re()


@pytest.mark.parametrize("compiled", [False, True])
def test_weighted_columns_are_the_sparse_products_numbers(compiled):
    """``Z' diag(w) C`` by the kernel adds in the order of scipy's CSR product of ``Z'`` with ``w C``."""
    refs, z, nlevels, x, zt, w, _ = _design(4, nested=False)
    kernel = _pirls_kernels.compiled("weighted_columns") if compiled else _pirls_kernels.weighted_columns
    if kernel is None:
        pytest.skip("numba not available")
    offsets = np.concatenate([[0], np.cumsum(nlevels)[:-1]])
    rows = np.ascontiguousarray(np.column_stack([o + r for o, r in zip(offsets, refs)]).astype(np.int64))
    columns = np.column_stack([x, z[1]])
    got = np.empty((zt.shape[0], columns.shape[1]))
    kernel(rows, np.ascontiguousarray(np.column_stack(z)), w, columns, got)
    np.testing.assert_array_equal(got, zt @ (w[:, None] * columns))

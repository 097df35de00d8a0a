"""Blocked Cholesky against a dense Cholesky of the same penalized system."""

from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.linalg as sl

import mixedmodels.linalg.blocked as blocked
from mixedmodels.design.covariance import theta_to_lambda
from mixedmodels.linalg import BlockedCrossProducts
from mixedmodels.linalg.condvar import conditional_variances

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel


def _problem(seed=1, n=300, scalar_first=False):
    """Three crossed terms; the big first one has a random slope unless ``scalar_first``."""
    rng = np.random.default_rng(seed)
    nlevels = [20, 7, 4]
    refs = [rng.integers(0, q, n) for q in nlevels]
    x = rng.normal(size=n)
    first = np.ones((n, 1)) if scalar_first else np.column_stack([np.ones(n), x])
    zs = [first, np.ones((n, 1)), np.column_stack([np.ones(n), x])]
    xy = np.column_stack([np.ones(n), x, rng.normal(size=n)])
    theta = np.array(([0.8] if scalar_first else [0.8, 0.3, 0.5]) + [1.2, 0.7, -0.2, 0.4])
    return refs, zs, nlevels, xy, theta


def _dense_factor(refs, zs, nlevels, xy, theta):
    n = xy.shape[0]
    blocks, start = [], 0
    lams = []
    for r, z, q in zip(refs, zs, nlevels):
        k = z.shape[1]
        zmat = np.zeros((n, q * k))
        for i in range(n):
            zmat[i, r[i] * k : (r[i] + 1) * k] = z[i]
        blocks.append(zmat)
        lams.append(np.kron(np.eye(q), theta_to_lambda(theta[start : start + k * (k + 1) // 2], k)))
        start += k * (k + 1) // 2
    zl = np.hstack(blocks) @ sl.block_diag(*lams)
    m = np.column_stack([zl, xy])
    a = m.T @ m
    nre = zl.shape[1]
    a[:nre, :nre] += np.eye(nre)
    return np.linalg.cholesky(a), nre, a


@pytest.fixture(params=["dense", "sparse", "compiled"])
def storage(request, monkeypatch):
    """How A21 is stored and updated: dense, sparse (scipy), sparse with the compiled per-level update.

    The compiled variant also takes the closed-form 2 x 2 per-level factors
    that big terms with many levels use.
    """
    if request.param != "dense":
        monkeypatch.setattr(blocked, "_DENSE_LIMIT", 0)
    if request.param == "compiled":
        pytest.importorskip("numba", reason="the compiled rank update needs numba (the 'fast' extra)")
        monkeypatch.setattr(blocked, "_COMPILED_UPDATE_MIN_NNZ", 0)
        monkeypatch.setattr(blocked, "_CLOSED_FORM_MIN_LEVELS", 0)
    return request.param


@pytest.mark.parametrize("scalar_first", [False, True])
def test_objective_pieces_match_dense_cholesky(storage, scalar_first):
    refs, zs, nlevels, xy, theta = _problem(scalar_first=scalar_first)
    factor = BlockedCrossProducts.build(refs, zs, nlevels, xy).factorize(theta)
    dense, nre, _ = _dense_factor(refs, zs, nlevels, xy, theta)
    d = np.diag(dense)
    assert factor.logdet_re() == pytest.approx(2 * np.sum(np.log(d[:nre])), rel=1e-12)
    assert factor.logdet_x() == pytest.approx(2 * np.sum(np.log(d[nre:-1])), rel=1e-10)
    assert factor.pwrss() == pytest.approx(d[-1] ** 2, rel=1e-12)


@pytest.mark.parametrize("scalar_first", [False, True])
def test_solution_matches_dense_solve(storage, scalar_first):
    refs, zs, nlevels, xy, theta = _problem(scalar_first=scalar_first)
    beta, spherical = BlockedCrossProducts.build(refs, zs, nlevels, xy).factorize(theta).solve()
    _, nre, a = _dense_factor(refs, zs, nlevels, xy, theta)
    solution = np.linalg.solve(a[:-1, :-1], a[:-1, -1])
    np.testing.assert_allclose(beta, solution[nre:], rtol=1e-10)
    np.testing.assert_allclose(np.concatenate([u.ravel() for u in spherical]), solution[:nre], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("scalar_first", [False, True])
def test_conditional_variances_match_dense_inverse(storage, scalar_first):
    refs, zs, nlevels, xy, theta = _problem(scalar_first=scalar_first)
    variances = conditional_variances(BlockedCrossProducts.build(refs, zs, nlevels, xy).factorize(theta))
    dense, nre, _ = _dense_factor(refs, zs, nlevels, xy, theta)
    inverse = np.linalg.inv(dense[:nre, :nre] @ dense[:nre, :nre].T)
    offset = 0
    for var, z, q in zip(variances, zs, nlevels):
        k = z.shape[1]
        for level in range(q):
            idx = slice(offset + level * k, offset + (level + 1) * k)
            np.testing.assert_allclose(var[level], inverse[idx, idx], rtol=1e-9, atol=1e-13)
        offset += q * k


def test_not_positive_definite_is_reported_not_raised():
    refs, zs, nlevels, xy, theta = _problem()
    xy = np.column_stack([xy[:, :1], xy[:, :1], xy[:, 1:]])  # duplicated X column
    factor = BlockedCrossProducts.build(refs, zs, nlevels, xy).factorize(theta)
    assert not factor.ok or factor.logdet_x() < -20


def test_triangular_inverse():
    from mixedmodels.linalg.dense import triangular_inverse

    lower = np.array([[2.0, 0.0, 0.0], [0.5, 1.0, 0.0], [-1.0, 0.3, 4.0]])
    np.testing.assert_allclose(triangular_inverse(lower) @ lower, np.eye(3), atol=1e-14)
    np.testing.assert_allclose(triangular_inverse(lower.T, lower=False) @ lower.T, np.eye(3), atol=1e-14)
    with pytest.raises(np.linalg.LinAlgError):
        triangular_inverse(np.zeros((2, 2)))


@pytest.mark.parametrize("shared_weights", [True, False])
def test_rank_update_plan_equals_the_sparse_product(monkeypatch, shared_weights):
    """The planned update (levels grouped by weight) is the lower triangle of A21 W A21'."""
    import scipy.sparse as sp

    monkeypatch.setattr(blocked, "_DENSE_LIMIT", 0)
    refs, zs, nlevels, xy, theta = _problem(scalar_first=True)
    if not shared_weights:  # distinct diagonals: every level its own group
        zs[0] = zs[0] * np.random.default_rng(5).uniform(0.5, 1.5, size=zs[0].shape)
    cp = BlockedCrossProducts.build(refs, zs, nlevels, xy)
    plan = cp.rank_update_plan
    assert plan is not None
    assert (len(plan.representative) < nlevels[0]) == shared_weights
    weights = 0.7 / (0.7 * cp.a11[:, 0, 0] + 1.0)  # as in the Cholesky: a function of the level's diagonal
    expected = (cp.a21 @ sp.diags_array(weights) @ cp.a21.T).toarray()
    np.testing.assert_allclose(plan.apply(weights), np.tril(expected), rtol=1e-12, atol=1e-12)


def test_compiled_update_is_used_for_a_vector_big_term(monkeypatch):
    pytest.importorskip("numba", reason="the compiled rank update needs numba (the 'fast' extra)")
    if os.environ.get("MIXEDMODELS_NO_NUMBA", "") not in ("", "0"):
        pytest.skip("MIXEDMODELS_NO_NUMBA is set: no compiled update (the next test checks that case)")
    from mixedmodels.linalg.rank_update import VectorRankUpdate

    monkeypatch.setattr(blocked, "_DENSE_LIMIT", 0)
    monkeypatch.setattr(blocked, "_COMPILED_UPDATE_MIN_NNZ", 0)
    refs, zs, nlevels, xy, theta = _problem()
    assert isinstance(BlockedCrossProducts.build(refs, zs, nlevels, xy).rank_update_plan, VectorRankUpdate)
    monkeypatch.setattr(blocked, "_COMPILED_UPDATE_MIN_NNZ", 10**9)  # too small to be worth compiling
    assert BlockedCrossProducts.build(refs, zs, nlevels, xy).rank_update_plan is None


def test_without_numba_a_vector_big_term_keeps_scipys_update(monkeypatch):
    from mixedmodels.linalg import _kernels

    monkeypatch.setattr(blocked, "_DENSE_LIMIT", 0)
    monkeypatch.setattr(blocked, "_COMPILED_UPDATE_MIN_NNZ", 0)
    monkeypatch.setenv("MIXEDMODELS_NO_NUMBA", "1")
    _kernels.jit.cache_clear()
    try:
        refs, zs, nlevels, xy, theta = _problem()
        cp = BlockedCrossProducts.build(refs, zs, nlevels, xy)
        assert cp.rank_update_plan is None
        dense, nre, _ = _dense_factor(refs, zs, nlevels, xy, theta)
        assert cp.factorize(theta).logdet_re() == pytest.approx(2 * np.sum(np.log(np.diag(dense)[:nre])), rel=1e-12)
    finally:
        _kernels.jit.cache_clear()


def test_small_systems_are_built_from_one_dense_product(monkeypatch):
    """The dense build of a small system gives the sparse build's blocks (to rounding: other sums)."""
    refs, zs, nlevels, xy, _ = _problem()
    dense = BlockedCrossProducts.build(refs, zs, nlevels, xy)
    monkeypatch.setattr(blocked, "_SMALL_SYSTEM", 0)
    general = BlockedCrossProducts.build(refs, zs, nlevels, xy)
    for name in ("a11", "a21", "a22"):
        ours, theirs = getattr(dense, name), getattr(general, name)
        theirs = theirs.toarray() if hasattr(theirs, "toarray") else theirs
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12 * np.abs(theirs).max())

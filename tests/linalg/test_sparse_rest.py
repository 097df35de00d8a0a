"""The sparse rest block (:mod:`mixedmodels.linalg.sparse_rest`, issue 22 item 9).

A crossed design whose dense rest block would exceed
``SPARSE_REST_MIN_BYTES`` holds it sparsely and factors its random-effects
part with a fill-reducing order.  Forced onto that path (the limit lowered
to 0), a small crossed design must give the dense path's answers: the
objective at the same theta to 1e-10 relative (both are exact factorizations
of the same matrix; they differ only by rounding, ~1e-15 here), and the fit's
theta and beta within the optimizer's tolerance (the sparse path fits by
BOBYQA, the dense one by Newton: 1e-4 relative on theta, lme4's own
comparisons' scale).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import mixedmodels as mm
from mixedmodels.design import size


def _crossed(n: int, levels: int, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, levels, n), rng.integers(0, levels, n)
    data = pd.DataFrame({"x": rng.normal(size=n), "a": pd.Categorical(a), "b": pd.Categorical(b)})
    data["y"] = 1 + 0.5 * data.x + rng.normal(size=levels)[a] + 0.7 * rng.normal(size=levels)[b] + rng.normal(size=n)
    return data


@pytest.fixture(scope="module")
def pair():
    """The same crossed model on the dense path and forced onto the sparse one."""
    data = _crossed(1500, 150)
    dense = mm.LinearMixedModel.from_formula("y ~ x + (1 | a) + (1 | b)", data)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(size, "SPARSE_REST_MIN_BYTES", 0.0)
        sparse = mm.LinearMixedModel.from_formula("y ~ x + (1 | a) + (1 | b)", data)
    return dense, sparse


def test_the_forced_model_holds_its_rest_block_sparsely(pair):
    dense, sparse = pair
    assert dense.crossprods.sparse_rest is None and isinstance(dense.crossprods.a22, np.ndarray)
    assert sparse.crossprods.sparse_rest is not None and sp.issparse(sparse.crossprods.a22)


@pytest.mark.parametrize("theta", [[1.0, 1.0], [0.3, 2.5], [1e-3, 0.8]])
@pytest.mark.parametrize("reml", [True, False])
def test_the_objective_equals_the_dense_paths(pair, theta, reml):
    dense, sparse = pair
    d = dense.crossprods.factorize(theta)
    s = sparse.crossprods.factorize(theta)
    for part in ("logdet_re", "logdet_x", "pwrss"):
        assert getattr(s, part)() == pytest.approx(getattr(d, part)(), rel=1e-10, abs=1e-10)
    assert sparse.objective_from(s, REML=reml) == pytest.approx(dense.objective_from(d, REML=reml), rel=1e-10)
    beta_d, u_d = d.solve()
    beta_s, u_s = s.solve()
    np.testing.assert_allclose(beta_s, beta_d, rtol=1e-9, atol=1e-12)
    for a, b in zip(u_s, u_d):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


def test_the_order_is_found_once_and_kept(pair):
    _, sparse = pair
    cp = sparse.crossprods
    cp.factorize([1.0, 1.0])
    perm = cp.sparse_rest.order["perm"]
    cp.factorize([0.2, 3.0])
    assert cp.sparse_rest.order["perm"] is perm
    assert sorted(perm) == list(range(cp.nre_rest))


def test_the_fit_equals_the_dense_fit(pair):
    dense, sparse = pair
    d, s = dense.fit(), sparse.fit()
    np.testing.assert_allclose(s.theta, d.theta, rtol=1e-4)
    np.testing.assert_allclose(s.fixef, d.fixef, rtol=1e-5)
    assert s.sigma == pytest.approx(d.sigma, rel=1e-5)
    assert s.objective == pytest.approx(d.objective, rel=1e-9)  # both at the optimum: flat there
    np.testing.assert_allclose(np.sqrt(np.diag(s.vcov)), np.sqrt(np.diag(d.vcov)), rtol=1e-4)
    for name in ("a", "b"):
        np.testing.assert_allclose(s.ranef()[name].to_numpy(), d.ranef()[name].to_numpy(), rtol=1e-3, atol=1e-4)


def test_conditional_variances_say_they_need_the_dense_factor(pair):
    _, sparse = pair
    fit = sparse.fit()
    with pytest.raises(mm.MixedModelsError, match="dense factor of the rest block"):
        fit.ranef(condvar=True)


def test_derivative_optimizers_are_refused_on_the_sparse_path(pair):
    _, sparse = pair
    with pytest.raises(mm.MixedModelsError, match="optimizer='bfgs' needs the analytic gradient"):
        sparse.fit(mm.OptimizerSettings(optimizer="bfgs"))


@pytest.mark.parametrize("formula", ["y ~ x + (1 | a) + (1 + x | b)", "y ~ x + (1 + x | a) + (1 | b) + (1 | c)"])
def test_vector_and_several_rest_terms_equal_the_dense_path(formula):
    """Rest terms with two columns (their lambda mixes a level's rows) and more than one rest term."""
    data = _crossed(800, 60, seed=5)
    data["c"] = pd.Categorical(np.random.default_rng(6).integers(0, 40, len(data)))
    dense = mm.LinearMixedModel.from_formula(formula, data)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(size, "SPARSE_REST_MIN_BYTES", 0.0)
        sparse = mm.LinearMixedModel.from_formula(formula, data)
    assert sparse.crossprods.sparse_rest is not None
    theta = np.linspace(0.4, 1.3, dense.crossprods.ntheta)
    theta[[i for i, v in enumerate(dense.theta_lower) if v == -np.inf]] = 0.2  # off-diagonal elements
    assert sparse.objective(theta) == pytest.approx(dense.objective(theta), rel=1e-10)
    beta_d, u_d = dense.crossprods.factorize(theta).solve()
    beta_s, u_s = sparse.crossprods.factorize(theta).solve()
    np.testing.assert_allclose(beta_s, beta_d, rtol=1e-9, atol=1e-12)
    for a, b in zip(u_s, u_d):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


def test_a_refit_rebuilds_the_sparse_blocks(pair):
    """refit(y + 1) moves the intercept by 1 and leaves theta (the blocks are rebuilt, not patched)."""
    _, sparse = pair
    fit = sparse.fit()
    with pytest.MonkeyPatch.context() as patch:  # the rebuilt blocks choose their path again
        patch.setattr(size, "SPARSE_REST_MIN_BYTES", 0.0)
        shifted = fit.refit(sparse.inputs.y + 1.0)
    assert shifted.model.crossprods.sparse_rest is not None
    np.testing.assert_allclose(shifted.theta, fit.theta, rtol=1e-4)
    assert shifted.fixef.iloc[0] == pytest.approx(fit.fixef.iloc[0] + 1.0, rel=1e-5)


@pytest.mark.parametrize("reml", [True, False])
def test_the_dense_front_handed_to_lapack_gives_the_same_objective(reml):
    """The factor's dense trailing front factored by LAPACK (``_RootFactor``; from 500 rows normally, 10 here)."""
    from mixedmodels.linalg import sparse_rest

    if sparse_rest._sparse_kernels.compiled("lu_solve_columns") is None:
        pytest.skip("the front goes to LAPACK only with numba")
    data = _crossed(2000, 200, seed=7)
    formula = "y ~ x + (1 | a) + (1 | b)"
    dense = mm.LinearMixedModel.from_formula(formula, data, REML=reml)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(size, "SPARSE_REST_MIN_BYTES", 0.0)
        patch.setattr(sparse_rest, "_MIN_ROOT", 10)
        sparse = mm.LinearMixedModel.from_formula(formula, data, REML=reml)
        cp = sparse.crossprods
        for theta in ([1.0, 1.0], [0.4, 2.0], [2.5, 0.05]):
            factor = cp.factorize(theta)
            assert cp.sparse_rest.order["split"] is not None
            assert sparse.objective_from(factor) == pytest.approx(dense.objective(theta), rel=1e-10)
            beta_d, u_d = dense.crossprods.factorize(theta).solve()
            beta_s, u_s = factor.solve()
            np.testing.assert_allclose(beta_s, beta_d, rtol=1e-9, atol=1e-12)
            for a, b in zip(u_s, u_d):
                np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


def test_the_compiled_solve_matches_superlu():
    """The Python body of the kernel (what numba compiles) against SuperLU's own solve."""
    import scipy.sparse.linalg as spla

    from mixedmodels.linalg._sparse_kernels import lu_solve_columns

    rng = np.random.default_rng(2)
    pattern = sp.random_array((60, 60), density=0.05, random_state=rng)
    mat = sp.csc_array(pattern @ pattern.T + sp.eye_array(60) * 3.0)
    lu = spla.splu(mat, permc_spec="NATURAL", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    lower, upper = sp.csc_array(lu.L), sp.csc_array(lu.U)
    rhs = rng.normal(size=(60, 3))
    x = rhs.copy()
    lu_solve_columns(lower.indptr, lower.indices, lower.data, upper.indptr, upper.indices, upper.data, x)
    np.testing.assert_allclose(x, lu.solve(rhs), rtol=1e-12, atol=1e-12)

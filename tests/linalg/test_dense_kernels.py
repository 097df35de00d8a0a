"""The compiled kernels of the small dense system (linalg/_dense_kernels.py) against its numpy path.

Both paths compute the same factor, objective, gradient and exact Hessian with the same formulas in a
different order of summation (the kernels sum over theta's positions of ``Lambda~`` where numpy multiplies
dense matrices, and factor with their own Cholesky loop instead of LAPACK's), so they agree to rounding,
not bit for bit.  A priori the relative forward error of a Cholesky factor is bounded by about
``N cond(Omega) eps`` (``N <= 64``; ``cond(Omega)`` is 1e3 to 2.5e9 on these cases); in practice it is far
smaller.  Measured on every small reference case, REML and ML, at the optimum and away from it: factor
2.1e-13 of its largest entry, objective 1.6e-12 relative (through ``pwrss``, a difference of large
cross-products: 6.8e-12 relative on Pastes), gradient and Hessian 1.8e-11 of their largest entry.  The
tolerances are 1e-11 for the factor and the objective and 1e-9 for the derivatives (5x and 50x what
was measured): far below what moves a Newton step, whose fit stops at a Newton decrement of 1e-12
(the fits' own comparison is the last test).
"""

from __future__ import annotations

import numpy as np
import pytest

from lmm.test_model import EXTRA_CASES, LMM_CASES
from linalg.test_gradient import _model, _points
from mixedmodels.linalg import _dense_kernels, dense_system
from mixedmodels.linalg.gradient import ProfiledObjective

pytestmark = [pytest.mark.numerics, pytest.mark.filterwarnings("ignore:boundary .singular. fit")]

SMALL = sorted(name for name in set(LMM_CASES) | set(EXTRA_CASES) if name != "insteval")


def _numpy_path(monkeypatch) -> None:
    monkeypatch.setattr(dense_system, "compiled", lambda name: None)


def _both(model, x, monkeypatch):
    dense, cp = model.crossprods.dense_system, model.crossprods
    compiled_factor = dense.factor(x)
    compiled = compiled_factor, *dense.derivatives(compiled_factor, model.REML, cp.nobs)
    with monkeypatch.context() as patch:
        _numpy_path(patch)
        numpy_factor = dense.factor(x)
        reference = numpy_factor, *dense.derivatives(numpy_factor, model.REML, cp.nobs)
    return compiled, reference


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
@pytest.mark.parametrize("name", SMALL)
def test_compiled_and_numpy_paths_agree(name, reml, monkeypatch):
    pytest.importorskip("numba")
    if _dense_kernels.compiled("dense_factor") is None:
        pytest.skip("MIXEDMODELS_NO_NUMBA is set")
    model = _model(name, reml)
    for x in _points(model):
        (factor, gradient, hessian), (numpy_factor, numpy_gradient, numpy_hessian) = _both(model, x, monkeypatch)
        assert factor.b is not None and numpy_factor.b is None  # each path was taken
        assert factor.ok and numpy_factor.ok and numpy_factor.pieces is None
        pieces = [factor.logdet_re(), factor.logdet_x(), factor.pwrss()]
        assert pieces == pytest.approx(
            [numpy_factor.logdet_re(), numpy_factor.logdet_x(), numpy_factor.pwrss()], rel=1e-11
        )
        np.testing.assert_array_equal(factor.lam, numpy_factor.lam)
        scale = np.abs(numpy_factor.lower).max()
        np.testing.assert_allclose(factor.lower, numpy_factor.lower, rtol=0, atol=1e-11 * scale)
        np.testing.assert_array_equal(np.triu(factor.lower, 1), 0.0)
        assert model.objective_from(factor) == pytest.approx(model.objective_from(numpy_factor), rel=1e-11)
        size = max(np.abs(numpy_gradient).max(), np.abs(numpy_hessian).max())
        np.testing.assert_allclose(gradient, numpy_gradient, rtol=0, atol=1e-9 * size)
        np.testing.assert_allclose(hessian, numpy_hessian, rtol=0, atol=1e-9 * size)
        np.testing.assert_array_equal(hessian, hessian.T)


@pytest.mark.parametrize("name", ["sleepstudy_slope_reml", "penicillin_crossed", "pastes_nested"])
def test_python_bodies_equal_the_numpy_path(name, monkeypatch):
    """The kernels' Python bodies (what numba compiles) give the numpy path's results too (same tolerances)."""
    model = _model(name, True)
    dense, cp = model.crossprods.dense_system, model.crossprods
    x = _points(model)[1]
    lam, lower, b, pieces, info = _dense_kernels.dense_factor(
        dense.a, dense.rows, dense.cols, dense.index, x, dense.nre, dense.nfixef
    )
    gradient, hessian, info2 = _dense_kernels.dense_derivatives(
        dense.a, b, lower, dense.rows, dense.cols, dense.index, dense.ntheta, dense.a.shape[0] - 1, cp.nobs - cp.nfixef
    )
    _numpy_path(monkeypatch)
    numpy_factor = dense.factor(x)
    numpy_gradient, numpy_hessian = dense.derivatives(numpy_factor, True, cp.nobs)
    assert info == 0 and info2 == 0
    assert pieces.tolist() == pytest.approx(
        [numpy_factor.logdet_re(), numpy_factor.logdet_x(), numpy_factor.pwrss()], rel=1e-11
    )
    np.testing.assert_array_equal(lam, numpy_factor.lam)
    np.testing.assert_allclose(b, dense.a @ lam, rtol=0, atol=1e-13 * np.abs(dense.a).max())
    np.testing.assert_allclose(lower, numpy_factor.lower, rtol=0, atol=1e-11 * np.abs(lower).max())
    size = max(np.abs(numpy_gradient).max(), np.abs(numpy_hessian).max())
    np.testing.assert_allclose(gradient, numpy_gradient, rtol=0, atol=1e-9 * size)
    np.testing.assert_allclose(hessian, numpy_hessian, rtol=0, atol=1e-9 * size)


def test_a_matrix_that_is_not_positive_definite_is_refused_as_lapack_does():
    """``info`` is the 1-based column of the first pivot that is not positive (dpotrf's), also for NaN."""
    a = np.array([[4.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    rows = cols = index = np.zeros(0, dtype=np.int64)
    assert _dense_kernels.dense_factor(a, rows, cols, index, np.zeros(0), 0, 0)[4] == 2
    a[2, 2] = np.nan
    assert _dense_kernels.dense_factor(np.eye(3) * [1.0, 1.0, np.nan], rows, cols, index, np.zeros(0), 0, 0)[4] == 3


def _block_system(rng, blocks: int, k: int, rest: int) -> np.ndarray:
    """A positive definite matrix whose leading ``blocks * k`` rows are block-diagonal (k x k blocks) and whose
    last ``rest`` rows are dense: the shape of a small model's Omega."""
    q = blocks * k
    size = q + rest
    m = np.zeros((size, size))
    for level in range(blocks):
        part = rng.standard_normal((k, k + 2))
        m[level * k : (level + 1) * k, level * k : (level + 1) * k] = part @ part.T
    cross = rng.standard_normal((rest, size + 2))
    m[q:, :] = (cross @ rng.standard_normal((size + 2, size))) / size
    m[:q, q:] = m[q:, :q].T
    m[q:, q:] = cross @ cross.T + np.eye(rest)
    return m + size * np.eye(size) * 0.1


@pytest.mark.parametrize("shape", [(18, 2, 3), (24, 1, 8), (30, 1, 12), (5, 3, 0), (1, 1, 1)])
def test_the_envelope_cholesky_inverse_and_lead_are_the_dense_ones(shape):
    """``envelope_cholesky`` (inner products over the envelope only), ``lower_inverse`` and ``lead_product`` on
    block-diagonal-then-dense matrices: LAPACK's Cholesky factor and the triangular inverse and ``P`` to
    rounding (tolerance 1e-12 of the largest entry: a factor's forward error is about ``N cond eps``, and these
    matrices have cond < 1e3), exact zeros outside each block and left of each inverse row's ``start``."""
    rng = np.random.default_rng(sum(shape))
    omega = _block_system(rng, *shape)
    lower = omega.copy()
    assert _dense_kernels.envelope_cholesky(lower) == 0
    expected = np.linalg.cholesky(omega)
    np.testing.assert_allclose(lower, expected, rtol=0, atol=1e-12 * np.abs(expected).max())
    blocks, k, _ = shape
    q = blocks * k
    for i in range(q):  # no fill-in outside the leading blocks
        assert not lower[i, : i - i % k].any()
    inverse, start = _dense_kernels.lower_inverse(lower)
    np.testing.assert_allclose(inverse @ lower, np.eye(omega.shape[0]), rtol=0, atol=1e-12)
    for i in range(omega.shape[0]):
        assert not inverse[i, : start[i]].any()
        assert start[i] == (i - i % k if i < q else 0 if q else start[i])
    nlead = omega.shape[0] - 1
    lead = _dense_kernels.lead_product(inverse, start, nlead)
    expected_lead = np.zeros_like(lead)
    expected_lead[:nlead, :nlead] = inverse[:nlead, :nlead].T @ inverse[:nlead, :nlead]
    np.testing.assert_allclose(lead, expected_lead, rtol=0, atol=1e-12 * np.abs(expected_lead).max())


def test_the_envelope_cholesky_refuses_what_lapack_refuses():
    """A pivot that is not positive inside a block, or in the dense rows, gives dpotrf's 1-based column."""
    omega = _block_system(np.random.default_rng(1), 4, 2, 2)
    for column in (3, 9):
        bad = omega.copy()
        bad[column, column] = -1.0
        assert _dense_kernels.envelope_cholesky(bad) == column + 1


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
@pytest.mark.parametrize("name", SMALL)
def test_the_compiled_newton_loop_takes_the_python_loops_path(name, reml, monkeypatch):
    """Every small reference case: the compiled Newton loop (``_dense_kernels.dense_newton``, with the compiled
    factor and derivatives) and optim.minimize_newton's Python loop on the numpy path make the same evaluations
    and derivative calls and end at the same theta (measured: at most 6e-13 apart; tolerance 1e-9 relative, far
    below lme4's reference tolerances) with the same criterion (the results read LAPACK's factor either way:
    measured at most 5.4e-13 relative apart, the criterion's rounding at theta that differ in the last bits;
    tolerance 5e-12).  One case, dyestuff ML, has its last line-search trial's Armijo test decided by rounding
    (a decrease of 1.6e-11 against a required ~1e-15): the compiled loop takes the step, the Python loop
    does not, so one derivative call more, theta 2.8e-7 apart and a criterion 1.6e-11 lower; where the paths so
    part, the compiled one must not end higher."""
    pytest.importorskip("numba")
    if _dense_kernels.compiled("dense_newton") is None:
        pytest.skip("MIXEDMODELS_NO_NUMBA is set")
    model = _model(name, reml)
    if model.crossprods.dense_system.structured:
        pytest.skip("structured terms have no Newton step")
    fitted = model.fit()
    with monkeypatch.context() as patch:
        _numpy_path(patch)
        reference = _model(name, reml).fit()
    info, expected = fitted.optinfo, reference.optinfo
    assert info.optimizer == expected.optimizer
    assert info.feval == expected.feval
    assert info.warnings == expected.warnings
    if info.geval != expected.geval:  # the last trial's Armijo test at rounding level
        assert abs(info.geval - expected.geval) == 1
        assert info.fmin <= expected.fmin * (1 + 5e-12)
        np.testing.assert_allclose(fitted.theta, reference.theta, rtol=1e-5)
        return
    np.testing.assert_allclose(fitted.theta, reference.theta, rtol=1e-9, atol=1e-12)
    assert info.fmin == pytest.approx(expected.fmin, rel=5e-12)
    np.testing.assert_allclose(fitted.fixef, reference.fixef, rtol=1e-9)


def test_the_python_newton_loop_runs_without_the_compiled_one(monkeypatch):
    """Without numba the dense system offers no compiled loop and minimize_newton runs its own."""
    _numpy_path(monkeypatch)
    model = _model("sleepstudy_slope_reml", True)
    assert model.crossprods.dense_system.newton_loop(True, 180, 178.0, 0.0) is None
    assert model.fit().optinfo.feval == 5


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
@pytest.mark.parametrize("name", SMALL)
def test_the_start_candidates_values_in_one_call_equal_value(name, reml):
    """``ProfiledObjective.values`` (one compiled ``dense_values`` call for all points) gives ``value``'s
    criterion at each point: the same compiled factor and criterion (tolerance 1e-13 relative: NumPy's and
    the kernel's ``log`` may round differently; measured equal)."""
    pytest.importorskip("numba")
    if _dense_kernels.compiled("dense_values") is None:
        pytest.skip("MIXEDMODELS_NO_NUMBA is set")
    model = _model(name, reml)
    if model.crossprods.dense_system.structured:
        pytest.skip("structured terms: no compiled values (value's own path)")
    objective = ProfiledObjective(model.crossprods, model.objective_from, model.REML, with_gradient=True)
    objective.criterion = (model.n_likelihood - (model.nfixef if reml else 0), model._log_weights())
    points = [*_points(model), model.crossprods.to_scaled_theta(model.theta_start)]
    expected = [objective.value(point) for point in points]
    assert objective.values(points) == pytest.approx(expected, rel=1e-13)


def test_the_start_candidates_values_without_numba_are_value(monkeypatch):
    """Without numba ``values`` is ``value`` at each point (the numpy path, its factors kept)."""
    _numpy_path(monkeypatch)
    model = _model("sleepstudy_slope_reml", True)
    objective = ProfiledObjective(model.crossprods, model.objective_from, model.REML, with_gradient=True)
    objective.criterion = (model.n_likelihood - model.nfixef, 0.0)
    points = _points(model)
    values = objective.values(points)
    assert values == [model.objective_from(model.crossprods.dense_system.factor(x)) for x in points]
    assert objective.kept_factor_at(points[-1]) is not None

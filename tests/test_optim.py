"""BOBYQA wrapper and its fit log."""

import numpy as np
import pytest

from mixedmodels.optim import OptimizerSettings, minimize_bounded, snap_to_zero_bounds

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel


def test_minimizes_within_bounds_and_logs():
    info = minimize_bounded(lambda x: (x[0] + 1) ** 2 + (x[1] - 2) ** 2, np.array([1.0, 0.0]), np.array([0.0, -np.inf]))
    np.testing.assert_allclose(info.final, [0.0, 2.0], atol=1e-6)
    assert info.feval > 0 and info.converged and info.seconds >= 0
    assert "converged=True" in repr(info)


def test_maxeval_is_reported_as_not_converged():
    info = minimize_bounded(
        lambda x: np.sum((x - 3) ** 2), np.zeros(3), np.full(3, -np.inf), settings=OptimizerSettings(maxeval=10)
    )
    assert not info.converged and "maximum number of evaluations" in info.message


def test_quasi_newton_minimizes_a_quadratic_with_few_calls():
    from mixedmodels.optim import minimize_quasi_newton

    hessian = np.array([[4.0, 1.0, 0.0], [1.0, 3.0, 0.5], [0.0, 0.5, 2.0]])
    target = np.array([1.0, -2.0, 0.5])
    info = minimize_quasi_newton(
        lambda x: (x - target) @ hessian @ (x - target) / 2, lambda x: hessian @ (x - target), np.zeros(3)
    )
    np.testing.assert_allclose(info.final, target, atol=1e-5)
    assert info.converged and info.feval <= 15 and 0 < info.geval <= info.feval + 1


def test_quasi_newton_from_a_known_inverse_hessian_takes_newton_steps():
    """Given the exact inverse Hessian of a quadratic, the first step lands on the minimum (one
    evaluation there, one gradient to confirm), where steepest descent needs several."""
    from mixedmodels.optim import minimize_quasi_newton

    hessian = np.array([[4.0, 1.0, 0.0], [1.0, 3.0, 0.5], [0.0, 0.5, 2.0]])
    target = np.array([1.0, -2.0, 0.5])

    def f(x):
        return (x - target) @ hessian @ (x - target) / 2

    def g(x):
        return hessian @ (x - target)

    known = minimize_quasi_newton(f, g, np.zeros(3), inverse_hessian=np.linalg.inv(hessian))
    np.testing.assert_allclose(known.final, target, atol=1e-12)
    assert known.feval == 2 and known.geval == 2
    assert minimize_quasi_newton(f, g, np.zeros(3)).feval > known.feval


def test_bfgs_inverse_hessian_replays_the_curvature_a_run_found():
    """Replaying the points where BFGS asked for gradients gives its inverse-Hessian approximation:
    on a quadratic, after convergence, within 1e-3 of the true inverse (8 steps in 2-D)."""
    from mixedmodels.optim import bfgs_inverse_hessian, minimize_quasi_newton

    hessian = np.array([[4.0, 1.0], [1.0, 0.5]])
    points, gradients = [], []

    def g(x):
        points.append(x.copy())
        gradients.append(hessian @ x)
        return gradients[-1]

    minimize_quasi_newton(lambda x: x @ hessian @ x / 2, g, np.array([1.0, 2.0]), OptimizerSettings(ftol_abs=1e-12))
    np.testing.assert_allclose(bfgs_inverse_hessian(points, gradients) @ hessian, np.eye(2), atol=1e-3)
    assert bfgs_inverse_hessian(points[:1], gradients[:1]) is None  # no step yet: no curvature


def test_quasi_newton_follows_a_curved_valley():
    from mixedmodels.optim import minimize_quasi_newton

    def rosenbrock(x):
        return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2

    def gradient(x):
        return np.array([-2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2), 200 * (x[1] - x[0] ** 2)])

    info = minimize_quasi_newton(rosenbrock, gradient, np.array([-1.2, 1.0]), OptimizerSettings(ftol_abs=1e-12))
    np.testing.assert_allclose(info.final, [1.0, 1.0], atol=1e-4)
    assert info.converged


def test_quasi_newton_stops_at_maxeval_and_says_so():
    from mixedmodels.optim import minimize_quasi_newton

    info = minimize_quasi_newton(
        lambda x: np.sum(x**4), lambda x: 4 * x**3, np.full(3, 5.0), OptimizerSettings(maxeval=4)
    )
    assert not info.converged and info.feval <= 4 and "maximum number of evaluations" in info.message


def test_an_unknown_optimizer_is_refused():
    import pytest

    from mixedmodels.errors import ModelSpecError

    with pytest.raises(ModelSpecError, match="bobyqa"):
        OptimizerSettings(optimizer="nelder-mead")


def test_newton_solves_a_quadratic_in_one_step_and_returns_its_derivatives():
    from mixedmodels.optim import minimize_newton

    hessian = np.array([[4.0, 1.0], [1.0, 3.0]])
    target = np.array([0.3, -0.2])
    info = minimize_newton(
        lambda x: (x - target) @ hessian @ (x - target) / 2, lambda x: (hessian @ (x - target), hessian), np.zeros(2)
    )
    np.testing.assert_allclose(info.final, target, atol=1e-12)
    assert info.converged and info.feval == 2 and info.geval == 2
    np.testing.assert_array_equal(info.hessian, hessian)


def test_newton_leaves_a_saddle_and_a_concave_region():
    from mixedmodels.optim import minimize_newton

    def f(x):
        return x[0] ** 4 - 2 * x[0] ** 2 + x[1] ** 2

    def derivatives(x):
        return np.array([4 * x[0] ** 3 - 4 * x[0], 2 * x[1]]), np.diag([12 * x[0] ** 2 - 4, 2.0])

    for start in ([0.1, 1.0], [0.0, 1.0]):  # indefinite Hessian; a saddle where the gradient's first entry is 0
        info = minimize_newton(f, derivatives, np.array(start))
        # the stop (Newton decrement g'H^-1 g / 2 < 1e-10, curvature 8 at x = 1) leaves |x - 1| < 5e-6
        np.testing.assert_allclose(np.abs(info.final), [1.0, 0.0], atol=1e-5)
        assert info.converged


def test_a_coordinate_just_above_a_zero_bound_is_set_to_the_bound():
    # the minimum over x >= 0 is at x = 0; BOBYQA may stop a hair above it
    info = minimize_bounded(lambda x: (x[0] + 1e-3) ** 2 + (x[1] - 1) ** 2, np.array([0.5, 0.5]), np.zeros(2))
    assert info.final[0] == 0.0 and info.fmin == pytest.approx(1e-6 + 0.0, abs=1e-9)


def test_snapping_is_refused_when_it_makes_the_objective_worse():
    def func(x):
        return (x[0] - 5e-5) ** 2 * 1e6  # a genuine interior optimum just above 0: 0 costs 2.5e-3

    x = np.array([5e-5])
    assert snap_to_zero_bounds(func, x, 0.0, np.zeros(1), OptimizerSettings()) is None
    assert snap_to_zero_bounds(func, np.array([2e-4]), 0.0, np.zeros(1), OptimizerSettings()) is None  # beyond zero_tol


def test_singular_fit_reports_theta_exactly_zero_as_lme4():
    import mixedmodels as mm

    with pytest.warns(mm.SingularFitWarning):
        fit = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff2"))
    assert fit.theta[0] == 0.0  # lme4: theta = 0 (shared/reference/dyestuff2_singular.json)


def test_snapping_a_batch_keeps_only_the_rows_that_are_no_worse():
    from mixedmodels.optim import snap_rows_to_zero_bounds

    x = np.array([[5e-5, 1.0], [5e-5, 1.0], [0.5, 1.0]])  # rows 0 and 1 near the bound, row 2 not
    fmin = np.array([0.0, 0.0, 0.0])
    calls = []

    def values(rows, points):  # row 0's optimum is at the bound, row 1's just above it
        calls.append(rows.tolist())
        return np.array([0.0 if r == 0 else (p[0] - 5e-5) ** 2 * 1e6 for r, p in zip(rows, points)])

    snapped, values_after = snap_rows_to_zero_bounds(values, x, fmin, np.array([0.0, -np.inf]), OptimizerSettings())
    assert calls == [[0, 1]]
    np.testing.assert_array_equal(snapped, [[0.0, 1.0], [5e-5, 1.0], [0.5, 1.0]])
    np.testing.assert_array_equal(values_after, [0.0, 0.0, 0.0])
    assert x[0, 0] == 5e-5  # the input is not modified


def test_free_coordinates_map_bounds_and_chain_the_gradient():
    """Interval parameters go through tanh into their bounds, ``even`` ones through |x|, the rest unchanged;
    ``chain`` is the derivative of that map (central differences, step 1e-6: error ~1e-10)."""
    from mixedmodels.optim import FreeCoordinates

    lower = np.array([0.0, -0.5, 0.0, -np.inf])
    upper = np.array([np.inf, 1.0, np.inf, np.inf])
    coordinates = FreeCoordinates(lower, upper, np.array([True, False, False, False]))
    t = np.array([0.7, 0.2, 1.5, -3.0])
    x = coordinates.to_free(t)
    np.testing.assert_allclose(coordinates.from_free(x), t, rtol=1e-14)
    assert np.all(coordinates.from_free(np.array([-4.0, 50.0, 2.0, 1.0]))[:2] == [4.0, 1.0])
    assert np.isfinite(coordinates.to_free(np.array([0.0, 1.0, 0.0, 0.0]))).all()  # a bound: just inside
    weights = np.array([1.0, 2.0, 3.0, 4.0])
    h = 1e-6
    for point in (x, -x):
        differences = [
            (weights @ coordinates.from_free(point + e) - weights @ coordinates.from_free(point - e)) / (2 * h)
            for e in np.eye(4) * h
        ]
        np.testing.assert_allclose(coordinates.chain(point, weights), differences, rtol=1e-7)
    assert not coordinates.identity
    assert FreeCoordinates(np.zeros(2), np.full(2, np.inf), np.zeros(2, dtype=bool)).identity


def test_free_coordinates_at_boundary():
    """An even element at 0 or an interval element at a bound is a point BFGS's coordinates cannot judge."""
    from mixedmodels.optim import FreeCoordinates

    coordinates = FreeCoordinates(np.array([0.0, -1.0]), np.array([np.inf, 1.0]), np.array([True, False]))
    assert not coordinates.at_boundary(np.array([0.5, 0.3]))
    assert coordinates.at_boundary(np.array([0.0, 0.3]))
    assert coordinates.at_boundary(np.array([0.5, 1.0 - 1e-5]))
    assert coordinates.at_boundary(np.array([0.5, -1.0]))


def test_a_log_is_copied_with_changes_as_dataclasses_replace_copies_it():
    """OptInfo.updated, the one way the fits copy a log, gives what dataclasses.replace gives, and refuses
    an unknown name as it does."""
    import dataclasses

    info = minimize_bounded(lambda x: float(np.sum((x - 1.0) ** 2)), np.zeros(2), np.zeros(2))
    changes = {"feval": info.feval + 3, "final": np.array([2.0, 3.0]), "warnings": ("a check",)}
    copied, replaced = info.updated(**changes), dataclasses.replace(info, **changes)
    for field in dataclasses.fields(info):
        np.testing.assert_equal(getattr(copied, field.name), getattr(replaced, field.name))
    assert copied.feval == info.feval + 3 and info.warnings == ()
    with pytest.raises(TypeError):
        info.updated(evaluations=1)

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
    info = minimize_bounded(lambda x: np.sum((x - 3) ** 2), np.zeros(3), np.full(3, -np.inf), settings=OptimizerSettings(maxeval=10))
    assert not info.converged and "maximum number of evaluations" in info.message


def test_a_coordinate_just_above_a_zero_bound_is_set_to_the_bound():
    # the minimum over x >= 0 is at x = 0; BOBYQA may stop a hair above it
    info = minimize_bounded(lambda x: (x[0] + 1e-3) ** 2 + (x[1] - 1) ** 2, np.array([0.5, 0.5]), np.zeros(2))
    assert info.final[0] == 0.0 and info.fmin == pytest.approx(1e-6 + 0.0, abs=1e-9)


def test_snapping_is_refused_when_it_makes_the_objective_worse():
    def func(x, grad=None):
        return (x[0] - 5e-5) ** 2 * 1e6  # a genuine interior optimum just above 0: 0 costs 2.5e-3
    x = np.array([5e-5])
    assert snap_to_zero_bounds(func, x, 0.0, np.zeros(1), OptimizerSettings()) is None
    assert snap_to_zero_bounds(func, np.array([2e-4]), 0.0, np.zeros(1), OptimizerSettings()) is None  # beyond zero_tol


def test_singular_fit_reports_theta_exactly_zero_as_lme4():
    import mixedmodels as mm

    with pytest.warns(mm.SingularFitWarning):
        fit = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff2"))
    assert fit.theta[0] == 0.0  # lme4: theta = 0 (shared/reference/dyestuff2_singular.json)

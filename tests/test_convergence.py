"""lme4-style convergence checks at the optimum."""

import numpy as np
import pytest

from mixedmodels.convergence import check_convergence, finite_difference_derivatives

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel


def test_derivatives_of_a_quadratic():
    a = np.array([[3.0, 1.0], [1.0, 2.0]])
    gradient, hessian = finite_difference_derivatives(lambda x: x @ a @ x, np.array([0.5, -1.0]))
    np.testing.assert_allclose(gradient, 2 * a @ np.array([0.5, -1.0]), rtol=1e-7)
    np.testing.assert_allclose(hessian, 2 * a, rtol=1e-6)


def test_flags_a_point_that_is_not_an_optimum():
    check = check_convergence(lambda x: np.sum((x - 1) ** 2), np.array([0.9, 1.0]), np.array([0.0, -np.inf]))
    assert check.messages and "max|grad|" in check.messages[0]


def test_accepts_an_optimum_and_skips_bound_parameters():
    check = check_convergence(
        lambda x: (x[0] + 1) ** 2 + (x[1] - 2) ** 2, np.array([0.0, 2.0]), np.array([0.0, -np.inf])
    )
    assert check.messages == ()
    assert check.gradient.shape == (1,)


def test_negative_curvature_is_reported():
    check = check_convergence(lambda x: -(x[0] ** 2), np.array([1.0]), np.array([-np.inf]))
    assert "negative eigenvalue" in check.messages[0]


def test_fit_records_derivatives(sleep_fit):
    assert sleep_fit.optinfo.gradient.shape == (3,)
    assert np.all(np.linalg.eigvalsh(sleep_fit.optinfo.hessian) > 0)
    assert sleep_fit.optinfo.warnings == ()

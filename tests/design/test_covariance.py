"""theta <-> relative covariance factor, in lme4's order."""

import numpy as np
import pytest

from mixedmodels.design.covariance import (
    covariance_to_theta,
    initial_theta,
    theta_lower_bounds,
    theta_names,
    theta_to_lambda,
)

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel


def test_theta_fills_lower_triangle_column_by_column():
    lam = theta_to_lambda(np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), 3)
    np.testing.assert_array_equal(lam, [[1, 0, 0], [2, 4, 0], [3, 5, 6]])


def test_start_and_bounds():
    np.testing.assert_array_equal(initial_theta(2), [1, 0, 1])
    np.testing.assert_array_equal(theta_lower_bounds(2), [0, -np.inf, 0])


def test_names_follow_lme4():
    assert theta_names("Subject", ("(Intercept)", "Days")) == [
        "Subject.(Intercept)", "Subject.Days.(Intercept)", "Subject.Days"]


def test_covariance_round_trip_including_singular():
    lam = np.array([[1.5, 0.0], [0.3, 0.7]])
    theta = covariance_to_theta(4.0 * lam @ lam.T, 2.0)
    np.testing.assert_allclose(theta_to_lambda(theta, 2), lam)
    singular = np.array([[1.0, 1.0], [1.0, 1.0]])
    lam0 = theta_to_lambda(covariance_to_theta(singular, 1.0), 2)
    np.testing.assert_allclose(lam0 @ lam0.T, singular, atol=1e-12)

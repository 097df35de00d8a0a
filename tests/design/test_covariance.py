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
        "Subject.(Intercept)",
        "Subject.Days.(Intercept)",
        "Subject.Days",
    ]


def test_covariance_round_trip_including_singular():
    lam = np.array([[1.5, 0.0], [0.3, 0.7]])
    theta = covariance_to_theta(4.0 * lam @ lam.T, 2.0)
    np.testing.assert_allclose(theta_to_lambda(theta, 2), lam)
    singular = np.array([[1.0, 1.0], [1.0, 1.0]])
    lam0 = theta_to_lambda(covariance_to_theta(singular, 1.0), 2)
    np.testing.assert_allclose(lam0 @ lam0.T, singular, atol=1e-12)


# --- structures (issue #19) -----------------------------------------------------------------

from mixedmodels.design.covariance import STRUCTURES, get_structure  # noqa: E402

STRUCTURED = [
    ("us", np.array([1.2, -0.4, 0.8, 0.3, 0.1, 0.5]), 3),
    ("diag", np.array([1.0, 2.0, 0.5]), 3),
    ("cs", np.array([1.0, 2.0, 0.5, 0.6]), 3),
    ("cs", np.array([1.0, 2.0, 0.5, 1.0 - 1e-9]), 3),
    ("cs", np.array([1.0, 2.0, 0.5, -0.3]), 3),
    ("ar1", np.array([1.5, 0.7]), 5),
    ("ar1", np.array([1.5, -0.4]), 4),
]


def _structured_covariance(name: str, theta: np.ndarray, k: int) -> np.ndarray:
    """The covariance each structure describes, written from its definition."""
    if name == "us":
        lam = theta_to_lambda(theta, k)
        return lam @ lam.T
    if name == "diag":
        return np.diag(theta**2)
    if name == "cs":
        sd, rho = theta[:k], theta[k]
        return np.outer(sd, sd) * ((1 - rho) * np.eye(k) + rho)
    lag = np.abs(np.subtract.outer(np.arange(k), np.arange(k)))
    return theta[0] ** 2 * theta[1] ** lag


@pytest.mark.parametrize("name,theta,k", STRUCTURED)
def test_lambda_is_a_lower_triangular_factor_of_the_structure(name, theta, k):
    lam = get_structure(name).lam(theta, k)
    np.testing.assert_array_equal(lam, np.tril(lam))
    np.testing.assert_allclose(lam @ lam.T, _structured_covariance(name, theta, k), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name,theta,k", STRUCTURED)
def test_dlam_matches_central_differences(name, theta, k):
    s = get_structure(name)
    assert s.has_derivative
    h = 1e-6
    numeric = np.stack([(s.lam(theta + h * e, k) - s.lam(theta - h * e, k)) / (2 * h) for e in np.eye(theta.size)])
    if name == "cs" and theta[k] > 1 - 1e-6:  # one-sided at the bound: compare the SDs' derivatives only
        numeric, exact = numeric[:k], s.dlam(theta, k)[:k]
    else:
        exact = s.dlam(theta, k)
    np.testing.assert_allclose(exact, numeric, atol=1e-7)


@pytest.mark.parametrize("name,theta,k", STRUCTURED)
def test_scaling_columns_is_a_change_of_theta(name, theta, k):
    """diag(scales) lambda(theta) = lambda(theta * scale_factors(scales)): the optimizer's units."""
    s = get_structure(name)
    scales = s.column_scales(np.array([2.0, 3.0, 0.5, 1.0, 4.0])[:k])
    np.testing.assert_allclose(scales[:, None] * s.lam(theta, k), s.lam(theta * s.scale_factors(scales), k), rtol=1e-12)


@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_start_bounds_names_and_units_have_one_entry_per_theta(name):
    s, k = get_structure(name), 3
    n = s.ntheta(k)
    for values in (s.initial(k), s.lower(k), s.upper(k), s.unit_index(k), s.from_column_sds(np.ones(k))):
        assert len(values) == n
    assert len(s.names("g", ("a", "b", "c"))) == n
    assert np.all(s.lower(k) <= s.initial(k)) and np.all(s.initial(k) <= s.upper(k))
    np.testing.assert_allclose(np.diag(s.lam(s.initial(k), k) @ s.lam(s.initial(k), k).T), 1.0)


def test_semidefinite_boundaries_give_finite_factors():
    cs = get_structure("cs")
    for rho in (1.0, -0.5):
        lam = cs.lam(np.array([1.0, 2.0, 3.0, rho]), 3)
        assert np.all(np.isfinite(lam)) and np.all(np.isfinite(cs.dlam(np.array([1.0, 2.0, 3.0, rho]), 3)))
        np.testing.assert_allclose(
            lam @ lam.T, _structured_covariance("cs", np.array([1.0, 2.0, 3.0, rho]), 3), atol=1e-12
        )
    ar1 = get_structure("ar1")
    np.testing.assert_allclose(ar1.lam(np.array([2.0, 1.0]), 3) @ ar1.lam(np.array([2.0, 1.0]), 3).T, 4.0)


def test_unknown_structure_name():
    with pytest.raises(ValueError, match="unknown covariance structure 'toep'"):
        get_structure("toep")

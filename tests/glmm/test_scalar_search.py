"""Stage 1's secant search over one scalar theta (:mod:`mixedmodels.glmm.scalar_search`).

On test functions with known minima, and on the nAGQ = 0 criteria of cbpp, cbpp cloglog, Owls
with a known negative binomial theta and grouseticks' sqrt-link Poisson against BFGS on the same
criterion (what stage 1 used before): the same minimum in fewer evaluations.  The tolerance on the
criterion is stage 1's own: both methods stop when the predicted decrease is below
``ftol_abs / 100 = 1e-5`` (stage 1's ``ftol_abs`` is 1e-3), so their values may differ by about that.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import mixedmodels as mm
from mixedmodels.glmm.fit import (
    _laplace_gradient,
    _ProfiledCriterion,
    _start_settings,
    _WarmStart,
    to_scaled,
)
from mixedmodels.glmm.model import GLMM_SETTINGS, GeneralizedLinearMixedModel
from mixedmodels.glmm.scalar_search import SECANT, minimize_even_scalar
from mixedmodels.optim import QUASI_NEWTON, OptimizerSettings, minimize_quasi_newton

SETTINGS = _start_settings(GLMM_SETTINGS)


def _even(t_star: float):
    """``(t^2 - t*^2)^2``: even, minimum 0 at ``+-t*``, concave between 0 and ``t* / sqrt(3)``.

    Quartic far from ``t*``, a hard case for a secant in ``log t`` (10-17 evaluations from 1 for
    ``t*`` from 0.02 to 10, BFGS 5-34); the GLMM criteria below are nearly linear there.
    """

    def f(x):
        return float((x[0] ** 2 - t_star**2) ** 2)

    def g(x):
        return np.array([4.0 * x[0] * (x[0] ** 2 - t_star**2)])

    return f, g


@pytest.mark.parametrize(("t_star", "x0"), [(0.33, 1.0), (0.7, 1.0), (3.0, 1.0), (1.0, -0.2)])
def test_finds_the_minimum_of_an_even_function(t_star, x0) -> None:
    f, g = _even(t_star)
    info = minimize_even_scalar(f, g, np.array([x0]), SETTINGS)
    assert info.optimizer == SECANT and info.optimizer_converged
    assert info.fmin < SETTINGS.ftol_abs / 100 * 2  # the stopping rule: predicted decrease below 1e-5
    assert info.final[0] > 0 and info.feval == info.geval <= 12


def test_a_minimum_at_zero() -> None:
    """``f = t^2``: h > 0 all the way down; long steps towards 0 until the predicted decrease is small."""
    info = minimize_even_scalar(lambda x: float(x[0] ** 2), lambda x: 2.0 * x, np.array([1.0]), SETTINGS)
    assert info.fmin < SETTINGS.ftol_abs / 100 * 2 and info.feval <= 6


def test_steps_back_from_points_where_the_criterion_is_not_finite() -> None:
    """PIRLS failing (inf) beyond t = 1.3: the step there is halved; the minimum at 1.25 is found."""

    def f(x):
        return math.inf if abs(x[0]) > 1.3 else float((x[0] - 1.25) ** 2 * (x[0] + 1.25) ** 2)

    def g(x):
        t = x[0]
        return np.array([4.0 * t * (t * t - 1.25**2)])

    info = minimize_even_scalar(f, g, np.array([1.0]), SETTINGS)
    assert info.optimizer == SECANT and abs(info.final[0] - 1.25) < 1e-2
    assert info.geval < info.feval  # the infinite points had no gradient


def test_a_start_at_zero_is_left_to_bfgs() -> None:
    f, g = _even(0.5)
    info = minimize_even_scalar(f, g, np.array([0.0]), OptimizerSettings())
    assert info.optimizer == QUASI_NEWTON


CASES = {
    "cbpp": ("cbind(incidence, size - incidence) ~ period + (1 | herd)", "cbpp", "binomial"),
    "cbpp_cloglog": (
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        "cbpp",
        mm.families.Binomial(link="cloglog"),
    ),
    "owls_nb1": (
        "SiblingNegotiation ~ FoodTreatment * SexParent + offset(logBroodSize) + (1 | Nest)",
        "Owls",
        mm.families.NegativeBinomial(theta=1.0),
    ),
    "grouseticks_sqrt": (
        "TICKS ~ YEAR + scale(HEIGHT) + (1 | LOCATION)",
        "grouseticks",
        mm.families.Poisson(link="sqrt"),
    ),
}


def _criterion(formula, data, family) -> _ProfiledCriterion:
    model = GeneralizedLinearMixedModel.from_formula(formula, mm.datasets.load(data), family=family)
    return _ProfiledCriterion(model, _laplace_gradient(model), _WarmStart(np.zeros(model.nranef)), 1e-9)


@pytest.mark.parametrize("case", sorted(CASES))
def test_stage_one_reaches_bfgs_minimum_in_fewer_evaluations(case) -> None:
    secant_crit, bfgs_crit = _criterion(*CASES[case]), _criterion(*CASES[case])
    x0 = to_scaled(secant_crit.model, secant_crit.model.theta_start)
    secant = minimize_even_scalar(secant_crit.value, secant_crit.grad, x0, SETTINGS)
    bfgs = minimize_quasi_newton(bfgs_crit.value, bfgs_crit.grad, x0, SETTINGS)
    assert secant.optimizer == SECANT
    assert secant.feval <= bfgs.feval if case == "grouseticks_sqrt" else secant.feval < bfgs.feval
    # both stop at a predicted decrease below 1e-5: the values agree to about that, the thetas to its root
    assert secant.fmin <= bfgs.fmin + 1e-4
    assert abs(secant.final[0] - abs(bfgs.final[0])) < 1e-2


def test_a_stationary_point_stops_the_search() -> None:
    """f' = 0 exactly at a trial point: it stops there (no secant through one point twice)."""
    info = minimize_even_scalar(
        lambda x: float(x[0] ** 2),
        lambda x: np.array([2.0 * x[0] if x[0] > 0.9 else 0.0]),
        np.array([1.0]),
        SETTINGS,
    )
    assert info.optimizer == SECANT and info.feval == 2 and info.final[0] == pytest.approx(math.exp(-0.5))

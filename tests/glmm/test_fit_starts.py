"""Where glmm/fit.py starts PIRLS: stage 1's modes' prediction across theta = 0, the finish's start.

The nAGQ = 0 criterion is even in each scalar theta and a term's modes change sign with its theta,
so the first-order prediction PIRLS starts from is made at ``|x|`` and mirrored to x's signs.  These
tests check the mirror against the modes PIRLS converges to (tolerance 1e-8: PIRLS stops at steps
below 1e-9 in stage 1, its modes exact to about that), and that a warm-started run for a
non-canonical link (Newton steps from the start) reaches the cold run's modes.
"""

from __future__ import annotations

import numpy as np
import pytest

import mixedmodels as mm
from mixedmodels.glmm.fit import _laplace_gradient, _mode_elements, _ProfiledCriterion, _WarmStart, to_scaled
from mixedmodels.glmm.model import GeneralizedLinearMixedModel

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
GROUSE = "TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)"


def _criterion(formula: str, data: str, family) -> _ProfiledCriterion:
    model = GeneralizedLinearMixedModel.from_formula(formula, mm.datasets.load(data), family=family)
    return _ProfiledCriterion(model, _laplace_gradient(model), _WarmStart(np.zeros(model.nranef)), 1e-9)


def test_mode_elements_name_each_modes_theta():
    crit = _criterion(GROUSE, "grouseticks", "poisson")
    model = crit.model
    expected = np.concatenate([np.full(t.nlevels, i) for i, t in enumerate(model.inputs.terms)])
    np.testing.assert_array_equal(_mode_elements(model), expected)


@pytest.mark.parametrize("flip", [[0], [1], [0, 2]])
def test_prediction_across_zero_is_the_mirrored_one(flip):
    """From a gradient at x, the start at x with some thetas negated is the start at x mirrored."""
    crit = _criterion(GROUSE, "grouseticks", "poisson")
    x = to_scaled(crit.model, np.array([0.5, 0.7, 0.6]))
    crit.grad(x)  # PIRLS at x and the prediction there
    target = np.array([0.55, 0.65, 0.62])
    beta_pos, u_pos = crit.start_for(target)
    negated = target.copy()
    negated[flip] *= -1.0
    beta_neg, u_neg = crit.start_for(negated)
    signs = np.where(negated < 0, -1.0, 1.0)[_mode_elements(crit.model)]
    np.testing.assert_array_equal(beta_neg, beta_pos)
    np.testing.assert_array_equal(u_neg, signs * u_pos)


def test_mirrored_start_is_next_to_the_modes_at_a_negative_theta():
    """The line-search case: a gradient at +0.6, PIRLS at -0.5 starts within the prediction's error."""
    crit = _criterion(CBPP, "cbpp", "binomial")
    crit.grad(np.array([0.6]))
    beta0, u0 = crit.start_for(np.array([-0.5]))
    crit.value(np.array([-0.5]))
    res = crit.last[1]
    assert np.max(np.abs(u0 - res.u)) < 0.05  # first-order prediction over a step of 0.1
    assert np.max(np.abs(beta0 - res.beta)) < 0.05
    crit.value(np.array([0.5]))
    np.testing.assert_allclose(crit.last[1].u, -res.u, atol=1e-8)  # the criterion is even, the modes odd


def test_warm_newton_start_reaches_the_cold_runs_modes():
    """Non-canonical link (NB log): a warm start near the modes, Newton from the first step, the same modes."""
    model = GeneralizedLinearMixedModel.from_formula(
        "SiblingNegotiation ~ FoodTreatment * SexParent + offset(logBroodSize) + (1 | Nest)",
        mm.datasets.load("Owls"),
        family=mm.families.NegativeBinomial(theta=1.0),
    )
    theta = np.array([0.4])
    cold = model.pirls.joint(theta, None, None, model.eta_start())
    warm = model.pirls.joint(theta, cold.beta + 0.001, cold.u + 0.002, model.eta_start())
    assert cold.converged and warm.converged
    np.testing.assert_allclose(warm.u, cold.u, atol=1e-8)
    np.testing.assert_allclose(warm.beta, cold.beta, atol=1e-8)
    # Newton from the start: 4 iterations (with the last pass for the factor); Fisher steps first took 5
    assert warm.iterations <= 4

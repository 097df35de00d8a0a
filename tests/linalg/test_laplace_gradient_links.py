"""The Laplace gradient for non-canonical links (linalg/laplace_gradient_links.py) against central differences.

Negative binomial (log link) on Owls (one term) and grouseticks (two crossed terms with a dense
rest block; three with the observation-level term, where PIRLS's sparse ``L D L'`` is used), a
probit binomial on cbpp and a cloglog one on VerbAgg: over the scaled lambdas and beta, at the
optimum and away from it, the modes' derivatives, the ``nAGQ = 0`` criterion's gradient (beta
profiled) and the negative binomial's ``log theta``.  PIRLS restarts from the same modes and
converges to 1e-10, so the differences (step 1e-5) are accurate to ~1e-6 of the curvature; the
bound 1e-5 (|g| + 1) is a few times that, while using the expected information where the observed
belongs (or leaving out dW/deta) is off by O(|g|) or more (0.1-10 on these models away from the
optimum).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import mixedmodels as mm
from conftest import issue19_dataset
from mixedmodels.families import Binomial, Gamma, NegativeBinomial
from mixedmodels.glmm.fit import _laplace_gradient
from mixedmodels.glmm.model import GeneralizedLinearMixedModel
from mixedmodels.linalg.laplace_gradient_links import LinkLaplaceGradient
from mixedmodels.linalg.pirls_scalar import SparseScalarSystem

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel

OWLS = "SiblingNegotiation ~ FoodTreatment * SexParent + offset(logBroodSize) + (1 | Nest)"
CASES = {
    "owls_nb": (OWLS, "Owls", NegativeBinomial(0.8)),
    "grouseticks_nb": ("TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)", "grouseticks", NegativeBinomial(3.0)),
    "grouseticks_nb_sparse": (
        "TICKS ~ YEAR + cHEIGHT + (1 | INDEX) + (1 | BROOD) + (1 | LOCATION)",
        "grouseticks",
        NegativeBinomial(5.0),
    ),
    "cbpp_probit": ("cbind(incidence, size - incidence) ~ period + (1 | herd)", "cbpp", Binomial(link="probit")),
    "verbagg_cloglog": (
        "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)",
        "VerbAgg",
        Binomial(link="cloglog"),
    ),
}
H = 1e-5


def _model(case: str) -> GeneralizedLinearMixedModel:
    formula, data_name, family = CASES[case]
    data = issue19_dataset(data_name) if data_name != "VerbAgg" else mm.datasets.load("VerbAgg")
    if "INDEX" in formula:
        data = data.assign(INDEX=data.index.astype(str))
    return GeneralizedLinearMixedModel.from_formula(formula, data, family)


def _points(model):
    """The optimum and a point away from it: (theta, beta)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = model.fit()
    return [(fit.theta, fit.beta), (fit.theta * 1.3 + 0.1, fit.beta + 0.05)]


def _close(analytic, numeric):
    np.testing.assert_array_less(np.abs(np.asarray(analytic) - numeric), 1e-5 * (np.abs(numeric) + 1))


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    model = _model(request.param)
    return request.param, model, _points(model)


def test_the_gradient_is_this_modules(case):
    name, model, _ = case
    if name.endswith("sparse") and not isinstance(model.pirls._system, SparseScalarSystem):
        pytest.skip("the sparse PIRLS system needs numba (the 'fast' extra) and MIXEDMODELS_NO_NUMBA unset")
    gradient = _laplace_gradient(model)
    assert isinstance(gradient, LinkLaplaceGradient)
    assert (gradient.system is not None) == name.endswith("sparse")  # both ways of solving with M are checked


def test_gradient_and_modes_equal_central_differences(case):
    _, model, points = case
    gradient, scales = _laplace_gradient(model), model.theta_scales
    for theta, beta in points:
        u0 = model.pirls.modes(theta, beta, np.zeros(model.nranef)).u

        def deviance(lam, b):
            return model.laplace_value(model.pirls.modes(lam / scales, b, u0))

        res, lam, modes = model.pirls.modes(theta, beta, u0), theta * scales, []
        d_lam, d_beta = gradient(lam, res.eta, res.mu, res.u, modes)
        fd_lam = [(deviance(lam + H * e, beta) - deviance(lam - H * e, beta)) / (2 * H) for e in np.eye(lam.size)]
        fd_beta = [(deviance(lam, beta + H * e) - deviance(lam, beta - H * e)) / (2 * H) for e in np.eye(beta.size)]
        _close(np.concatenate([d_lam, d_beta]), np.concatenate([fd_lam, fd_beta]))
        for i, e in enumerate(np.eye(lam.size)):  # the modes' derivative: the observed information's
            moved = (
                model.pirls.modes((lam + H * e) / scales, beta, u0).u
                - model.pirls.modes((lam - H * e) / scales, beta, u0).u
            ) / (2 * H)
            np.testing.assert_allclose(modes[0][:, i], moved, rtol=0, atol=1e-5 * (np.abs(moved).max() + 1))


def test_profiled_gradient_equals_central_differences(case):
    """The ``nAGQ = 0`` criterion (beta and u from joint PIRLS): glmer's first stage."""
    _, model, points = case
    gradient, scales = _laplace_gradient(model), model.theta_scales
    theta, beta = points[1]
    u0 = model.pirls.modes(theta, beta, np.zeros(model.nranef)).u

    def criterion(lam):
        return model.laplace_value(model.pirls.joint(lam / scales, beta, u0))

    lam = theta * scales
    res = model.pirls.joint(theta, beta, u0)
    g, dbeta, _ = gradient.profiled(lam, res.eta, res.mu, res.u)
    _close(g, [(criterion(lam + H * e) - criterion(lam - H * e)) / (2 * H) for e in np.eye(lam.size)])
    moved = [
        (
            model.pirls.joint((lam + H * e) / scales, beta, u0).beta
            - model.pirls.joint((lam - H * e) / scales, beta, u0).beta
        )
        / (2 * H)
        for e in np.eye(lam.size)
    ]
    np.testing.assert_allclose(dbeta, np.array(moved).T, rtol=0, atol=1e-5 * (np.abs(moved).max() + 1))


def test_log_theta_derivative_equals_central_differences(case):
    """The negative binomial's theta: its explicit derivative, W's and the modes' (glmer_nb's joint stage)."""
    name, model, points = case
    if not name.endswith(("nb", "nb_sparse")):
        pytest.skip("a family parameter only for the negative binomial")
    gradient, scales, k = _laplace_gradient(model), model.theta_scales, model.family.theta
    for theta, beta in points:
        u0 = model.pirls.modes(theta, beta, np.zeros(model.nranef)).u

        def at(log_k):
            other = model.with_family(model.family.with_theta(float(np.exp(log_k))))
            return other.laplace_value(other.pirls.modes(theta, beta, u0)), other

        _, other = at(np.log(k) + 0.2)  # another theta's response, given to the same gradient
        res, modes = other.pirls.modes(theta, beta, u0), []
        d_lam, _, d_k = gradient.with_family_parameter(other.response, theta * scales, res.eta, res.mu, res.u, modes)
        fd = (at(np.log(k) + 0.2 + H)[0] - at(np.log(k) + 0.2 - H)[0]) / (2 * H)
        _close([d_k], [fd])
        moved = (
            at(np.log(k) + 0.2 + H)[1].pirls.modes(theta, beta, u0).u
            - at(np.log(k) + 0.2 - H)[1].pirls.modes(theta, beta, u0).u
        ) / (2 * H)
        np.testing.assert_allclose(modes[0][:, -1], moved, rtol=0, atol=1e-5 * (np.abs(moved).max() + 1))
        assert d_lam.size == theta.size


def test_no_gradient_where_the_formula_does_not_hold():
    """Gamma's -2 log L is not the deviance plus a constant; glmmTMB's ("observed") Laplace has
    the observed information in log det M (its gradient would need third derivatives)."""
    data = issue19_dataset("Owls")
    gamma = GeneralizedLinearMixedModel.from_formula(
        "ArrivalTime ~ FoodTreatment + (1 | Nest)", data, Gamma(link="log")
    )
    assert _laplace_gradient(gamma) is None
    from dataclasses import replace

    observed = replace(_model("owls_nb"), laplace="observed")
    assert _laplace_gradient(observed) is None


@pytest.mark.parametrize("name", ["owls_nb", "grouseticks_nb", "grouseticks_nb_sparse"])
def test_an_indefinite_observed_system_gives_nan_not_an_error(name):
    """Where ``Lambda' Z' O Z Lambda + I`` is not positive definite (modes PIRLS did not converge
    to; the families above are log-concave, so O > 0 at any point for them) the modes'
    derivatives do not exist: NaN, which stops BFGS there, not an error or a wrong number."""
    from mixedmodels.linalg.laplace_gradient_links import _Weights

    model = _model(name)
    gradient, (theta, beta) = _laplace_gradient(model), _points(model)[0]
    res = model.pirls.modes(theta, beta, np.zeros(model.nranef))
    lam = theta * model.theta_scales
    w = _Weights.at(model.response, res.eta, res.mu)
    indefinite = _Weights(w.score, w.expected, -10.0 * w.expected - 10.0, w.slope)
    c = [lt * z for lt, z in zip(lam, gradient.z)]
    _, _, solve = gradient._rows_and_solver(lam, indefinite, c)
    assert np.all(np.isnan(solve(np.ones((model.nranef, 2)))))
    _, _, solve = gradient._rows_and_solver(lam, w, c)
    assert np.all(np.isfinite(solve(np.ones((model.nranef, 2)))))

"""The Laplace deviance's gradient (linalg/laplace_gradient.py) against central differences.

At the optimum and away from it, over the scaled lambdas and beta, for cbpp (one term),
VerbAgg (crossed terms, dense B) and grouseticks (an observation-level first term: B held
sparse).  PIRLS restarts from the same modes and converges to 1e-10, so the differences
(step 1e-5) are accurate to ~1e-6 of the deviance's curvature; the bound 1e-5 (|g| + 1)
is a few times that, while a missing term of the gradient is off by O(|g|) or more.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from conftest import dataset
from mixedmodels.glmm.fit import _laplace_gradient, _scalar_columns
from mixedmodels.glmm.model import GeneralizedLinearMixedModel
from mixedmodels.linalg.laplace_gradient import LaplaceGradient

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel

CASES = [
    ("cbind(incidence, size - incidence) ~ period + (1 | herd)", "cbpp", "binomial"),
    ("r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)", "VerbAgg", "binomial"),
    ("TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)", "grouseticks", "poisson"),
    # a diag() term: one scalar term per column, its modes read from the model's level-by-level order
    ("TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + diag(1 + scale(HEIGHT) | LOCATION)", "grouseticks", "poisson"),
]


def _gradient(model) -> LaplaceGradient:
    gradient = _laplace_gradient(model)
    if gradient is None:  # where the fit does not use it (PIRLS's sparse system), built all the same
        refs, z, nlevels, permutation = _scalar_columns(model)
        gradient = LaplaceGradient.build(refs, z, nlevels, model.pirls.x, model.response, permutation)
    return gradient


@pytest.mark.parametrize("formula, data_name, family", CASES)
def test_laplace_gradient_equals_central_differences(formula, data_name, family):
    model = GeneralizedLinearMixedModel.from_formula(formula, dataset(data_name), family)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = model.fit()
    gradient, scales = _gradient(model), model.theta_scales
    for theta, beta in [(fit.theta, fit.beta), (fit.theta * 1.3 + 0.1, fit.beta + 0.05)]:
        u0 = model.pirls.modes(theta, beta, np.zeros(model.nranef)).u

        def deviance(lam, b):
            return model.laplace_value(model.pirls.modes(lam / scales, b, u0))

        res = model.pirls.modes(theta, beta, u0)
        lam = theta * scales
        modes: list = []
        d_lam, d_beta = gradient(lam, res.eta, res.mu, res.u, modes)
        h = 1e-5
        fd_lam = [(deviance(lam + h * e, beta) - deviance(lam - h * e, beta)) / (2 * h) for e in np.eye(lam.size)]
        fd_beta = [(deviance(lam, beta + h * e) - deviance(lam, beta - h * e)) / (2 * h) for e in np.eye(beta.size)]
        expected = np.concatenate([fd_lam, fd_beta])
        np.testing.assert_array_less(np.abs(np.concatenate([d_lam, d_beta]) - expected), 1e-5 * (np.abs(expected) + 1))
        # how the modes move with lambda (the warm starts' prediction), in the model's order of u
        for i, e in enumerate(np.eye(lam.size)):
            moved = (
                model.pirls.modes((lam + h * e) / scales, beta, u0).u
                - model.pirls.modes((lam - h * e) / scales, beta, u0).u
            ) / (2 * h)
            np.testing.assert_allclose(modes[0][:, i], moved, rtol=0, atol=1e-5 * (np.abs(moved).max() + 1))


def test_the_gradient_applies_to_canonical_links_only():
    """(Other links have linalg/laplace_gradient_links.py's: tests/linalg/test_laplace_gradient_links.py.)"""
    from mixedmodels.families import get_family

    cloglog = GeneralizedLinearMixedModel.from_formula(CASES[0][0], dataset("cbpp"), get_family("binomial", "cloglog"))
    assert LaplaceGradient.build(*_scalar_columns(cloglog)[:3], cloglog.pirls.x, cloglog.response) is None
    assert type(_laplace_gradient(cloglog)) is not LaplaceGradient
    logit = GeneralizedLinearMixedModel.from_formula(CASES[1][0], dataset("VerbAgg"), "binomial")
    assert _laplace_gradient(logit) is not None


def test_the_sparse_factor_gives_the_blocked_inverse_gradient():
    """Where PIRLS uses the sparse LDL' (grouseticks with numba), the gradient reads ``M^-1`` from its
    selected inverse: the same numbers as the blocked dense inverse, to rounding (1e-9 relative;
    the test above checks it against central differences too)."""
    from mixedmodels.linalg.pirls_scalar import SparseScalarSystem

    model = GeneralizedLinearMixedModel.from_formula(CASES[2][0], dataset("grouseticks"), "poisson")
    if not isinstance(model.pirls._system, SparseScalarSystem):
        pytest.skip("the sparse PIRLS system needs numba (the 'fast' extra) and MIXEDMODELS_NO_NUMBA unset")
    sparse = _laplace_gradient(model)
    assert sparse is not None and sparse.system is model.pirls._system
    refs, z, nlevels, permutation = _scalar_columns(model)
    dense = LaplaceGradient.build(refs, z, nlevels, model.pirls.x, model.response, permutation)
    theta, beta = np.array([0.8, 1.1, 0.6]), np.array([0.5, 1.0, -1.0, -0.5])
    res = model.pirls.modes(theta, beta, np.zeros(model.nranef))
    lam = theta * model.theta_scales
    got_modes: list = []
    want_modes: list = []
    got = np.concatenate(sparse(lam, res.eta, res.mu, res.u, got_modes))
    want = np.concatenate(dense(lam, res.eta, res.mu, res.u, want_modes))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got_modes[0], want_modes[0], rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("formula, data_name, family", CASES[:3])
def test_profiled_gradient_equals_central_differences_of_the_nagq0_criterion(formula, data_name, family):
    """:meth:`LaplaceGradient.profiled`: the gradient of the nAGQ = 0 criterion (beta and u from one joint
    PIRLS run) and how beta and u move, against central differences (step 1e-5, PIRLS to 1e-10 from
    the same start: the same accuracy argument and bound as above)."""
    model = GeneralizedLinearMixedModel.from_formula(formula, dataset(data_name), family)
    gradient, scales, eta0 = _laplace_gradient(model), model.theta_scales, model.eta_start()
    start = model.pirls.joint(model.theta_start, None, None, eta0)
    for theta in [model.theta_start * 0.7, model.theta_start * 1.2 + 0.1]:

        def joint(lam):
            return model.pirls.joint(lam / scales, start.beta, start.u, eta0)

        lam = theta * scales
        res = joint(lam)
        got, dbeta, du = gradient.profiled(lam, res.eta, res.mu, res.u)
        h = 1e-5
        plus, minus = [joint(lam + h * e) for e in np.eye(lam.size)], [joint(lam - h * e) for e in np.eye(lam.size)]
        expected = np.array([(model.laplace_value(p) - model.laplace_value(m)) / (2 * h) for p, m in zip(plus, minus)])
        np.testing.assert_array_less(np.abs(got - expected), 1e-5 * (np.abs(expected) + 1))
        moved_beta = np.column_stack([(p.beta - m.beta) / (2 * h) for p, m in zip(plus, minus)])
        np.testing.assert_allclose(dbeta, moved_beta, rtol=0, atol=1e-5 * (np.abs(moved_beta).max() + 1))
        moved_u = np.column_stack([(p.u - m.u) / (2 * h) for p, m in zip(plus, minus)])
        np.testing.assert_allclose(du, moved_u, rtol=0, atol=1e-5 * (np.abs(moved_u).max() + 1))

"""The compiled fit of GLMMs with one scalar random-effects term (:mod:`mixedmodels.linalg.one_term`).

Each fit is compared with the general path's (``fit_glmm`` with the compiled path switched off) on
the same model: cbpp with every binomial link, a Poisson model of grouseticks with one term, a
simulated binary model with 200 levels, and the negative binomial with a known theta (log link) on
Owls (theta 1, as the reference test against lme4's ``glmer(family = negative.binomial(1))``),
grouseticks (theta 2) and a simulated count model.  Tolerances, and why:

* objective: the compiled optimum never worse than the general one by more than 1e-10 relative, and
  within 1e-8 relative (both are converged optima of the same deviance; the general path stops BFGS
  at a gradient ~1e-6 and polishes with one Newton step);
* theta, beta, the modes: 2e-6 relative / absolute (the optimum's position is determined to about the
  square root of the deviance's convergence);
* standard errors: 5e-5 relative (the general path's Hessian is by forward differences of the gradient
  with steps 1e-4 of theta and 2e-4 SEs: truncation ~2e-5 of the curvature; the compiled one exact for
  the canonical links, central differences with steps 1e-4 otherwise);
* conditional variances: 1e-6 relative (they follow the modes and theta).

The reference tests (tests/glmm/test_glmm.py) check cbpp against lme4 with their unchanged tolerances.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.glmm import fit as glmm_fit
from mixedmodels.linalg import one_term
from mixedmodels.linalg.one_term import COMPILED_NEWTON, one_term_compiled

needs_numba = pytest.mark.skipif(not one_term_compiled(), reason="the compiled path needs numba")

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
OWLS = "SiblingNegotiation ~ FoodTreatment * SexParent + offset(logBroodSize) + (1 | Nest)"


def _fit(formula: str, data: pd.DataFrame, family, compiled: bool, **kwargs):
    """A glmer fit by the compiled path (if it takes it) or by the general path."""
    original = glmm_fit.one_term_applies
    glmm_fit.one_term_applies = original if compiled else (lambda *args: False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return mm.glmer(formula, data, family=family, **kwargs)
    finally:
        glmm_fit.one_term_applies = original


def _simulated_binary(nlevels: int = 200, per_level: int = 6, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(nlevels), per_level)
    x = rng.normal(size=g.size)
    eta = -0.4 + 0.8 * x + 0.9 * rng.normal(size=nlevels)[g]
    y = (rng.random(g.size) < 1.0 / (1.0 + np.exp(-eta))).astype(float)
    return pd.DataFrame({"y": y, "x": x, "g": pd.Categorical([f"L{k}" for k in g])})


def _simulated_counts(nlevels: int = 80, per_level: int = 8, seed: int = 5, size: float = 1.5) -> pd.DataFrame:
    """Negative binomial counts (variance mu + mu^2 / size) with a random intercept per level."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(nlevels), per_level)
    x = rng.normal(size=g.size)
    mu = np.exp(0.8 + 0.5 * x + 0.6 * rng.normal(size=nlevels)[g])
    y = rng.negative_binomial(size, size / (size + mu)).astype(float)
    return pd.DataFrame({"y": y, "x": x, "g": pd.Categorical([f"L{k}" for k in g])})


def _grouseticks() -> pd.DataFrame:
    return mm.datasets.load("grouseticks")


CASES = {
    "cbpp_logit": (CBPP, "cbpp", mm.families.Binomial()),
    "cbpp_probit": (CBPP, "cbpp", mm.families.Binomial(link="probit")),
    "cbpp_cloglog": (CBPP, "cbpp", mm.families.Binomial(link="cloglog")),
    "grouseticks_poisson": ("TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)", "grouseticks", mm.families.Poisson()),
    "simulated_200_logit": ("y ~ x + (1 | g)", "simulated", mm.families.Binomial()),
    "simulated_200_probit": ("y ~ x + (1 | g)", "simulated", mm.families.Binomial(link="probit")),
    "owls_negbin_1": (OWLS, "Owls", mm.families.NegativeBinomial(theta=1.0)),
    "grouseticks_negbin_2": (
        "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)",
        "grouseticks",
        mm.families.NegativeBinomial(2.0),
    ),
    "simulated_counts_negbin": ("y ~ x + (1 | g)", "counts", mm.families.NegativeBinomial(theta=1.5)),
}


def _data(name: str) -> pd.DataFrame:
    if name == "counts":
        return _simulated_counts()
    return _simulated_binary() if name == "simulated" else mm.datasets.load(name)


@needs_numba
@pytest.mark.parametrize("case", sorted(CASES))
def test_the_compiled_fit_is_the_general_paths(case: str) -> None:
    formula, data_name, family = CASES[case]
    data = _data(data_name)
    fast, slow = _fit(formula, data, family, True), _fit(formula, data, family, False)
    assert fast.optinfo.optimizer == COMPILED_NEWTON and slow.optinfo.optimizer != COMPILED_NEWTON
    assert fast.objective <= slow.objective + 1e-10 * abs(slow.objective)
    assert fast.objective == pytest.approx(slow.objective, rel=1e-8)
    np.testing.assert_allclose(fast.theta, slow.theta, rtol=2e-6)
    np.testing.assert_allclose(fast.beta, slow.beta, rtol=2e-6, atol=2e-6)
    np.testing.assert_allclose(fast.se.to_numpy(), slow.se.to_numpy(), rtol=5e-5)
    group = next(iter(fast.ranef()))
    fast_re, slow_re = fast.ranef(condvar=True)[group], slow.ranef(condvar=True)[group]
    np.testing.assert_allclose(fast_re.to_numpy(), slow_re.to_numpy(), rtol=1e-6, atol=2e-6)
    np.testing.assert_allclose(fast.fitted.to_numpy(), slow.fitted.to_numpy(), rtol=1e-6, atol=1e-9)
    assert fast.vcov_method == slow.vcov_method == "hessian"
    assert fast.optinfo.converged and not fast.optinfo.warnings


def test_the_starting_least_squares_are_numpys() -> None:
    """The kernels' least squares for stage 1's starting beta (the normal equations, plain Python: the compiled
    version is the same code) against numpy's lstsq on cbpp's X: the same solution to 1e-12 relative (X'X's
    condition squares X's, ~1e2 here, so both are within ~1e-14 of the exact solution); a rank-deficient X is
    refused (False), so that the caller takes lstsq."""
    from mixedmodels.linalg._one_term_kernels import least_squares

    model = mm.GeneralizedLinearMixedModel.from_formula(CBPP, mm.datasets.load("cbpp"), "binomial")
    xmat = np.ascontiguousarray(model.inputs.fixed.matrix)
    target = model.eta_start()
    beta = np.zeros(xmat.shape[1])
    assert least_squares(xmat, target, beta)
    np.testing.assert_allclose(beta, np.linalg.lstsq(xmat, target, rcond=None)[0], rtol=1e-12, atol=1e-14)
    aliased = np.column_stack([xmat, xmat[:, 1]])
    assert not least_squares(aliased, target, np.zeros(aliased.shape[1]))


@needs_numba
@pytest.mark.parametrize("link", ["logit", "probit", "cloglog", "log", "negbin"])
def test_the_kernels_gradient_is_the_deviances_derivative(link: str) -> None:
    """The analytic gradient of the Laplace deviance against central differences of the deviance (steps
    1e-5: truncation ~1e-10, rounding ~1e-11 / 1e-5; 1e-5 relative), away from the optimum.  For the
    negative binomial (log link, not canonical) the modes and the log-determinant's weights differ
    (observed vs expected information), so the gradient's term through ``dw/deta`` is checked too."""
    if link in ("log", "negbin"):
        family = mm.families.Poisson() if link == "log" else mm.families.NegativeBinomial(theta=2.0)
    else:
        family = mm.families.Binomial(link=link)
    counts = link in ("log", "negbin")
    formula = "TICKS ~ YEAR + (1 | LOCATION)" if counts else CBPP
    data = _grouseticks() if counts else mm.datasets.load("cbpp")
    model = mm.GeneralizedLinearMixedModel.from_formula(formula, data, family)
    kern = one_term._compiled()
    (y, wt, sat, z, refs, xmat, offset), (fam, code, nbtheta), const, q, _ = one_term._arrays(model)
    point = np.concatenate([[0.8], np.linspace(-1.0, 0.5, xmat.shape[1])])

    def deviance(p: np.ndarray, grad: np.ndarray) -> float:
        u = np.zeros(q)
        return kern["laplace"](
            p[0],
            p[1:].copy(),
            u,
            y,
            wt,
            sat,
            z,
            refs,
            xmat,
            offset,
            fam,
            code,
            nbtheta,
            const,
            1e-10,
            200,
            grad,
            np.empty((q, p.size)),
        )

    grad, scratch = np.empty(point.size), np.empty(point.size)
    deviance(point, grad)
    numeric = np.empty(point.size)
    for k in range(point.size):
        step = np.zeros(point.size)
        step[k] = 1e-5
        numeric[k] = (deviance(point + step, scratch) - deviance(point - step, scratch)) / 2e-5
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-5)


@needs_numba
@pytest.mark.parametrize("link", ["logit", "log"])
@pytest.mark.parametrize("where", ["optimum", "away"])
def test_the_exact_hessian_is_the_gradients_derivative(link: str, where: str) -> None:
    """The exact Hessian of the Laplace deviance (canonical links) against central differences of the
    analytic gradient (the kernel the other links use, steps 1e-4 of theta and of the SEs: truncation
    ~1e-8 of the largest entry, rounding ~1e-10; 1e-6 of the largest entry), at the optimum and away."""
    family = mm.families.Poisson() if link == "log" else mm.families.Binomial()
    formula, data = ("TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)", _grouseticks()) if link == "log" else (CBPP, "cbpp")
    data = mm.datasets.load(data) if isinstance(data, str) else data
    model = mm.GeneralizedLinearMixedModel.from_formula(formula, data, family)
    fit = one_term.fit_one_term(model)
    kern = one_term._compiled()
    (y, wt, sat, z, refs, xmat, offset), (fam, code, nbtheta), const, q, _ = one_term._arrays(model)
    shift = 0.0 if where == "optimum" else 0.3
    point = np.concatenate([fit.theta * model.theta_scales * (1.0 + shift), fit.beta + 0.1 * shift])
    d = point.size
    u, grad, dudp = np.zeros(q), np.empty(d), np.empty((q, d))
    args = (y, wt, sat, z, refs, xmat, offset, fam, code, nbtheta)
    assert np.isfinite(kern["laplace"](point[0], point[1:].copy(), u, *args, const, 1e-10, 200, grad, dudp))
    steps = 1e-4 * np.concatenate([point[:1], np.sqrt(np.diag(fit.vcov))])
    exact, numeric = np.empty((d, d)), np.empty((d, d))
    kern["_exact_hessian"](point[0], point[1:].copy(), u, *args, dudp, exact)
    assert kern["_hessian"](point, u, dudp, steps, *args, const, numeric)
    np.testing.assert_allclose(exact, numeric, rtol=0, atol=1e-6 * np.max(np.abs(numeric)))
    np.testing.assert_array_equal(exact, exact.T)


@needs_numba
def test_which_fits_take_the_compiled_path() -> None:
    cbpp = mm.datasets.load("cbpp")
    grouse = _grouseticks()

    def optimizer(formula, data, family="binomial", **kwargs) -> str:
        return _fit(formula, data, family, True, **kwargs).optinfo.optimizer

    assert optimizer(CBPP, cbpp) == COMPILED_NEWTON
    # not: nAGQ = 0 and adaptive quadrature, a given start, BOBYQA asked for, another family or
    # structure, two terms, a vector term
    assert optimizer(CBPP, cbpp, nAGQ=0) != COMPILED_NEWTON
    assert optimizer(CBPP, cbpp, nAGQ=5) != COMPILED_NEWTON
    assert optimizer(CBPP, cbpp, start={"theta": [0.5]}) != COMPILED_NEWTON
    settings = mm.glmm.model.GLMM_SETTINGS
    bobyqa = dataclasses.replace(settings, optimizer="bobyqa")
    assert optimizer(CBPP, cbpp, settings=bobyqa) != COMPILED_NEWTON
    assert optimizer(CBPP, cbpp, family=mm.families.Binomial(link="cauchit")) != COMPILED_NEWTON
    assert optimizer("TICKS ~ YEAR + (1 | BROOD) + (1 | LOCATION)", grouse, "poisson") != COMPILED_NEWTON
    assert optimizer("TICKS ~ YEAR + (1 + cHEIGHT | LOCATION)", grouse, "poisson") != COMPILED_NEWTON
    assert optimizer("TICKS ~ YEAR + (1 | LOCATION)", grouse, mm.families.Poisson(link="sqrt")) != COMPILED_NEWTON
    assert optimizer("TICKS ~ YEAR + (1 | LOCATION)", grouse, "poisson") == COMPILED_NEWTON
    negbin = mm.families.NegativeBinomial(theta=2.0)
    assert optimizer("TICKS ~ YEAR + (1 | LOCATION)", grouse, negbin) == COMPILED_NEWTON
    sqrt_negbin = mm.families.NegativeBinomial(theta=2.0, link="sqrt")
    assert optimizer("TICKS ~ YEAR + (1 | LOCATION)", grouse, sqrt_negbin) != COMPILED_NEWTON


@needs_numba
def test_a_singular_fit_takes_the_general_path() -> None:
    """theta at 0 (no variation between levels): the compiled fit declines, the general path's boundary
    handling answers as before."""
    rng = np.random.default_rng(3)
    data = pd.DataFrame({"y": (rng.random(400) < 0.4).astype(float), "g": np.repeat(np.arange(40), 10).astype(str)})
    fast, slow = _fit("y ~ 1 + (1 | g)", data, "binomial", True), _fit("y ~ 1 + (1 | g)", data, "binomial", False)
    assert fast.optinfo.optimizer == slow.optinfo.optimizer != COMPILED_NEWTON
    assert fast.objective == slow.objective and fast.theta[0] == slow.theta[0] < 1e-3


def test_no_numba_takes_the_general_path() -> None:
    """With ``MIXEDMODELS_NO_NUMBA=1`` (a fresh process: the switch is read once) the general path fits cbpp."""
    code = (
        "import warnings, mixedmodels as mm; warnings.simplefilter('ignore');"
        f"print(mm.glmer({CBPP!r}, mm.datasets.load('cbpp'), family='binomial').optinfo.optimizer)"
    )
    env = dict(os.environ, MIXEDMODELS_NO_NUMBA="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() != COMPILED_NEWTON
    assert out.stdout.strip() == mm.optim.QUASI_NEWTON

"""simulate(): the moments of many simulated data sets match the model's implied moments.

R's random numbers cannot be reproduced, so these are statistical tests with
a fixed seed.  With ``N`` simulations, a sample mean is off by ``z`` standard
errors ``sqrt(Var / N)``, a sample variance by ``z`` times ``Var sqrt(2 / (N - 1))``
(normal data) and a sample covariance by ``z`` times ``sqrt((V_ii V_jj + V_ij^2) / N)``.
Tolerance: ``|z| < 4.5`` for every entry checked (with ~200 entries per check
the chance of any exceeding 4.5 under a correct simulator is about 1e-3);
a simulator that ignores the random effects, their correlation, the weights
or the residual variance fails by tens of standard errors.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
from scipy import special

import mixedmodels as mm
from conftest import dataset, fitted_lmer
from mixedmodels.simulate import simulate

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel

NSIM = 2000
ZMAX = 4.5


def _weighted_sleepstudy() -> pd.DataFrame:
    data = dataset("sleepstudy").copy()
    data["w"] = 1 + data["Days"].astype(int) % 3
    return data


@lru_cache(maxsize=None)
def weighted_fit():
    data = _weighted_sleepstudy()
    return mm.lmer("Reaction ~ Days + (Days | Subject)", data, weights=data["w"].to_numpy())


def _implied_covariance(fit, rows: np.ndarray) -> np.ndarray:
    """Z Sigma Z' + sigma^2 W^-1 for some rows of a one-term LMM."""
    term = fit.terms[0]
    sigma_b = list(fit.covariances.values())[0]
    z, refs = term.z[rows], term.refs[rows]
    same = refs[:, None] == refs[None, :]
    cov = (z @ sigma_b @ z.T) * same
    w = np.ones(len(rows)) if fit.model.inputs.weights is None else fit.model.inputs.weights[rows]
    return cov + np.diag(fit.sigma**2 / w)


def _assert_means(sims: np.ndarray, mean: np.ndarray, variance: np.ndarray) -> None:
    z = (sims.mean(axis=1) - mean) / np.sqrt(variance / sims.shape[1])
    assert np.max(np.abs(z)) < ZMAX, f"max |z| of the means = {np.max(np.abs(z)):.2f}"


def _assert_variances(sims: np.ndarray, variance: np.ndarray) -> None:
    n = sims.shape[1]
    z = (sims.var(axis=1, ddof=1) / variance - 1.0) / np.sqrt(2.0 / (n - 1))
    assert np.max(np.abs(z)) < ZMAX, f"max |z| of the variances = {np.max(np.abs(z)):.2f}"


def _assert_covariance(sims: np.ndarray, cov: np.ndarray) -> None:
    n = sims.shape[1]
    sample = np.cov(sims)
    d = np.diag(cov)
    se = np.sqrt((np.outer(d, d) + cov**2) / n)
    z = (sample - cov) / se
    assert np.max(np.abs(z)) < ZMAX, f"max |z| of the covariances = {np.max(np.abs(z)):.2f}"


# --- linear mixed models ------------------------------------------------------------------
def test_new_random_effects_give_the_marginal_moments(sleep_fit):
    sims = sleep_fit.simulate(nsim=NSIM, seed=20240601).to_numpy()
    rows = np.arange(sleep_fit.nobs)
    cov = _implied_covariance(sleep_fit, rows)
    _assert_means(sims, sleep_fit.model.inputs.fixed.matrix @ sleep_fit.beta, np.diag(cov))
    _assert_variances(sims, np.diag(cov))


def test_within_subject_covariance_pooled_over_subjects(sleep_fit):
    """Every subject has Days 0-9, so all 18 share one 10 x 10 covariance Z Sigma Z' + sigma^2 I.

    Pooling 18 subjects x 2000 simulations detects the (small, 0.07) intercept-slope
    correlation: drawing the two effects independently gives |z| > 8 here.
    """
    sims = sleep_fit.simulate(nsim=NSIM, seed=20240601).to_numpy()
    resid = (sims - (sleep_fit.model.inputs.fixed.matrix @ sleep_fit.beta)[:, None]).reshape(18, 10, NSIM)
    sample = np.einsum("gis,gjs->ij", resid, resid) / (18 * NSIM)
    cov = _implied_covariance(sleep_fit, np.arange(10))
    d = np.diag(cov)
    z = (sample - cov) / np.sqrt((np.outer(d, d) + cov**2) / (18 * NSIM))
    assert np.max(np.abs(z)) < ZMAX, f"max |z| of the pooled covariances = {np.max(np.abs(z)):.2f}"


def test_use_re_conditions_on_the_modes(sleep_fit):
    sims = sleep_fit.simulate(nsim=NSIM, seed=7, use_re=True).to_numpy()
    variance = np.full(sleep_fit.nobs, sleep_fit.sigma**2)
    _assert_means(sims, sleep_fit.fitted.to_numpy(), variance)
    _assert_variances(sims, variance)
    rows = np.arange(10)  # one subject: independent given its random effects
    _assert_covariance(sims[rows], np.diag(variance[rows]))


def test_weights_scale_the_residual_variance():
    fit = weighted_fit()
    sims = fit.simulate(nsim=NSIM, seed=3, use_re=True).to_numpy()
    variance = fit.sigma**2 / fit.model.inputs.weights
    _assert_means(sims, fit.fitted.to_numpy(), variance)
    _assert_variances(sims, variance)


def test_newdata_gets_new_levels_of_its_own(sleep_fit):
    newdata = pd.DataFrame({"Days": [0.0, 9.0, 0.0, 9.0], "Subject": ["a", "a", "b", "b"]})
    sims = simulate(sleep_fit, nsim=NSIM, seed=11, newdata=newdata).to_numpy()
    sigma_b = list(sleep_fit.covariances.values())[0]
    z = np.column_stack([np.ones(4), newdata["Days"]])
    same = np.equal.outer(newdata["Subject"].to_numpy(), newdata["Subject"].to_numpy())
    cov = (z @ sigma_b @ z.T) * same + np.eye(4) * sleep_fit.sigma**2
    _assert_means(sims, z @ sleep_fit.beta, np.diag(cov))
    _assert_covariance(sims, cov)


def test_newdata_with_use_re_needs_known_levels(sleep_fit):
    newdata = pd.DataFrame({"Days": [1.0], "Subject": ["NEW"]})
    with pytest.raises(mm.DataError, match="'NEW'"):
        simulate(sleep_fit, newdata=newdata, use_re=True)
    known = pd.DataFrame({"Days": [1.0, 2.0], "Subject": ["308", "309"]})
    sims = simulate(sleep_fit, nsim=NSIM, seed=5, newdata=known, use_re=True).to_numpy()
    _assert_means(sims, sleep_fit.predict(known).to_numpy(), np.full(2, sleep_fit.sigma**2))


def test_crossed_random_effects():
    fit = fitted_lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin")
    sims = fit.simulate(nsim=NSIM, seed=2).to_numpy()
    variances = [float(np.squeeze(c)) for c in fit.covariances.values()]
    total = sum(variances) + fit.sigma**2
    _assert_means(sims, np.full(fit.nobs, fit.beta[0]), np.full(fit.nobs, total))
    _assert_variances(sims, np.full(fit.nobs, total))
    # rows 0 and 1 share a plate (different samples): covariance is the plate variance
    plate = fit.terms[[t.group for t in fit.terms].index("plate")]
    assert plate.refs[0] == plate.refs[1]
    cov = (
        np.array([[total, variances[0]], [variances[0], total]])
        if fit.terms[0].group == "plate"
        else np.array([[total, variances[1]], [variances[1], total]])
    )
    _assert_covariance(sims[:2], cov)


def test_re_form_keeps_the_named_terms_and_redraws_the_others():
    """lme4's re.form = ~ (1 | plate): plates at their modes, new samples; NULL: both kept; NA: none."""
    fit = fitted_lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin")
    k = [t.group for t in fit.terms].index("plate")
    plate, sample = fit.terms[k], fit.terms[1 - k]
    var_sample = float(np.squeeze(fit.covariances["sample"]))
    sims = fit.simulate(nsim=NSIM, seed=4, re_form="~ (1 | plate)").to_numpy()
    mean = fit.predict(re_form="~ (1 | plate)").to_numpy()
    _assert_means(sims, mean, np.full(fit.nobs, var_sample + fit.sigma**2))
    _assert_variances(sims, np.full(fit.nobs, var_sample + fit.sigma**2))
    # rows 0 and 1: same plate, other samples -> independent given the plate's mode
    assert plate.refs[0] == plate.refs[1] and sample.refs[0] != sample.refs[1]
    total = var_sample + fit.sigma**2
    _assert_covariance(sims[:2], np.diag([total, total]))
    both = fit.simulate(nsim=NSIM, seed=5, re_form=None).to_numpy()
    _assert_means(both, fit.fitted.to_numpy(), np.full(fit.nobs, fit.sigma**2))
    _assert_variances(both, np.full(fit.nobs, fit.sigma**2))
    pd.testing.assert_frame_equal(fit.simulate(nsim=2, seed=6, re_form="~0"), fit.simulate(nsim=2, seed=6))
    pd.testing.assert_frame_equal(fit.simulate(nsim=2, seed=6, re_form=None), fit.simulate(nsim=2, seed=6, use_re=True))
    pd.testing.assert_frame_equal(
        fit.simulate(nsim=2, seed=6, re_form=False), fit.simulate(nsim=2, seed=6, re_form="NA")
    )


def test_re_form_refuses_part_of_a_term(sleep_fit):
    with pytest.raises(mm.MixedModelsError, match=r"whole terms.*\(1 \+ Days \| Subject\)"):
        sleep_fit.simulate(re_form="~ (1 | Subject)")
    with pytest.raises(mm.MixedModelsError, match="not in the model"):
        sleep_fit.simulate(re_form="~ (1 | Item)")
    with pytest.raises(mm.MixedModelsError, match="not both"):
        sleep_fit.simulate(re_form=None, use_re=False)


# --- interface ------------------------------------------------------------------------------
def test_columns_index_and_reproducibility(sleep_fit):
    first = sleep_fit.simulate(nsim=3, seed=42)
    assert list(first.columns) == ["sim_1", "sim_2", "sim_3"]
    pd.testing.assert_index_equal(first.index, sleep_fit.fitted.index)
    pd.testing.assert_frame_equal(first, sleep_fit.simulate(nsim=3, seed=42))
    assert not np.allclose(first.to_numpy(), sleep_fit.simulate(nsim=3, seed=43).to_numpy())
    generator = np.random.default_rng(42)
    pd.testing.assert_frame_equal(first, simulate(sleep_fit, nsim=3, seed=generator))


@pytest.mark.parametrize("nsim", [0, -1, 2.5, True])
def test_bad_nsim(sleep_fit, nsim):
    with pytest.raises(mm.MixedModelsError, match="nsim"):
        sleep_fit.simulate(nsim=nsim)


def test_lm_simulates_around_its_fit():
    fit = mm.lm("Reaction ~ Days", dataset("sleepstudy"))
    sims = fit.simulate(nsim=NSIM, seed=1).to_numpy()
    variance = np.full(fit.nobs, fit.sigma**2)
    _assert_means(sims, fit.fitted.to_numpy(), variance)
    _assert_variances(sims, variance)


# --- generalized models ---------------------------------------------------------------------
def test_glm_poisson_counts():
    fit = mm.glm("TICKS ~ YEAR + scale(HEIGHT)", dataset("grouseticks"), "poisson")
    sims = fit.simulate(nsim=NSIM, seed=8).to_numpy()
    mu = fit.fitted.to_numpy()
    assert np.all(sims == np.round(sims)) and np.all(sims >= 0)
    _assert_means(sims, mu, mu)


@lru_cache(maxsize=None)
def cbpp_glmer():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", dataset("cbpp"), family="binomial")


def _binomial_marginal_moments(fit) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of the successes with a new herd effect, by 40-point Gauss-Hermite quadrature."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    weights = weights / weights.sum()
    sd_b = float(np.sqrt(np.squeeze(list(fit.covariances.values())[0])))
    eta = fit.model.inputs.fixed.matrix @ fit.beta
    n = fit.model.inputs.y.sum(axis=1)
    p = special.expit(eta[:, None] + sd_b * nodes[None, :])
    mean_p = p @ weights
    second = (n[:, None] * p * (1 - p) + (n[:, None] * p) ** 2) @ weights
    return n * mean_p, second - (n * mean_p) ** 2


def test_glmer_binomial_trials_and_marginal_moments():
    fit = cbpp_glmer()
    sims = fit.simulate(nsim=NSIM, seed=12).to_numpy()
    n = fit.model.inputs.y.sum(axis=1)
    assert np.all(sims == np.round(sims)) and np.all((sims >= 0) & (sims <= n[:, None]))
    mean, variance = _binomial_marginal_moments(fit)
    _assert_means(sims, mean, variance)


def test_glmer_binomial_conditional_on_modes():
    fit = cbpp_glmer()
    sims = fit.simulate(nsim=NSIM, seed=13, use_re=True).to_numpy()
    n = fit.model.inputs.y.sum(axis=1)
    mu = fit.fitted.to_numpy()
    _assert_means(sims, n * mu, n * mu * (1 - mu))


def test_proportion_response_is_simulated_as_proportions():
    cbpp = dataset("cbpp")
    fit = mm.glm("incidence / size ~ period", cbpp, "binomial", weights=cbpp["size"])
    sims = fit.simulate(nsim=50, seed=1).to_numpy()
    counts = sims * cbpp["size"].to_numpy()[:, None]
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)
    assert np.all((sims >= 0) & (sims <= 1))


def test_glmer_poisson_crossed_terms_lognormal_moments():
    """Poisson GLMM with two crossed terms: given eta, b ~ N(0, s2) with s2 the sum of the
    term variances, so E[y] = exp(eta + s2/2) and Var[y] = E[y] + (exp(s2) - 1) E[y]^2."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mm.glmer("TICKS ~ YEAR + (1 | LOCATION) + (1 | BROOD)", dataset("grouseticks"), family="poisson")
    sims = fit.simulate(nsim=NSIM, seed=21).to_numpy()
    s2 = sum(float(np.squeeze(c)) for c in fit.covariances.values())
    mean = np.exp(fit.model.inputs.fixed.matrix @ fit.beta + s2 / 2)
    _assert_means(sims, mean, mean + np.expm1(s2) * mean**2)


def test_glmer_gamma_dispersion_and_random_effects():
    """Gamma GLMM (log link): Var[y | b] = sigma^2 mu^2, and the subject effects have
    lme4's VarCorr variance sigma^2 theta^2, so E[y] = exp(eta + sigma^2 theta^2 / 2)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mm.glmer("Reaction ~ Days + (1 | Subject)", dataset("sleepstudy"), family=mm.families.Gamma(link="log"))
    conditional = fit.simulate(nsim=NSIM, seed=31, use_re=True).to_numpy()
    mu = fit.fitted.to_numpy()
    _assert_means(conditional, mu, fit.sigma**2 * mu**2)
    _assert_variances(conditional, fit.sigma**2 * mu**2)
    marginal = fit.simulate(nsim=NSIM, seed=32).to_numpy()
    var_b = float(np.squeeze(list(fit.covariances.values())[0]))
    assert var_b == pytest.approx((fit.sigma * fit.theta[0]) ** 2)
    eta = fit.model.inputs.fixed.matrix @ fit.beta
    mean = np.exp(eta + var_b / 2)
    variance = fit.sigma**2 * np.exp(2 * eta + 2 * var_b) + np.expm1(var_b) * mean**2
    _assert_means(marginal, mean, variance)

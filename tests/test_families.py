"""Families and links against their definitions and R's formulas (``stats::family``).

Derivatives are checked against central differences (relative 1e-6); ``-2 log L``
against scipy's densities written the way R's ``family$aic`` writes them.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import mixedmodels as mm
from mixedmodels.errors import DataError, ModelSpecError
from mixedmodels.families import FAMILIES, LINKS, Binomial, Gamma, Gaussian, InverseGaussian, Poisson, get_family

ETA = {  # linear predictors inside each link's domain
    "logit": np.linspace(-4, 4, 9),
    "probit": np.linspace(-3, 3, 9),
    "cloglog": np.linspace(-3, 1.5, 9),
    "cauchit": np.linspace(-5, 5, 9),
    "log": np.linspace(-2, 2, 9),
    "identity": np.linspace(0.5, 3, 9),
    "sqrt": np.linspace(0.5, 3, 9),
    "inverse": np.linspace(0.3, 3, 9),
    "1/mu^2": np.linspace(0.3, 3, 9),
}


@pytest.mark.parametrize("name", sorted(LINKS))
def test_link_inverts_its_inverse(name):
    link = LINKS[name]
    eta = ETA[name]
    np.testing.assert_allclose(link.link(link.inverse(eta)), eta, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(LINKS))
def test_link_derivatives_match_central_differences(name):
    link = LINKS[name]
    eta, h = ETA[name], 1e-6
    d1 = (link.inverse(eta + h) - link.inverse(eta - h)) / (2 * h)
    np.testing.assert_allclose(link.mu_eta(eta), d1, rtol=1e-6)
    mu = link.inverse(eta)
    d2 = (link.mu_eta(eta + h) - link.mu_eta(eta - h)) / (2 * h)
    np.testing.assert_allclose(link.mu_eta2(eta, mu, link.mu_eta(eta)), d2, rtol=1e-5, atol=1e-9)


def test_logit_is_clamped_like_r():
    """R's logit: mu stays inside (0, 1) however large |eta| is."""
    mu = LINKS["logit"].inverse(np.array([-800.0, 800.0]))
    assert 0 < mu[0] < 1e-12 and 1 - 1e-12 < mu[1] < 1


# --- the distributions ---------------------------------------------------------------
def test_binomial_deviance_and_loglik_match_r_formulas():
    y_counts = np.array([0, 3, 5, 7, 10])
    trials = np.array([10, 10, 5, 12, 10])
    mu = np.array([0.1, 0.35, 0.8, 0.5, 0.9])
    r = Binomial().response(np.column_stack([y_counts, trials - y_counts]), None, "cbind(s, f)")
    prop = y_counts / trials
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(prop > 0, prop * np.log(prop / mu), 0) + np.where(
            prop < 1, (1 - prop) * np.log((1 - prop) / (1 - mu)), 0
        )
    np.testing.assert_allclose(r.dev_resid(mu), 2 * trials * terms, rtol=1e-12)
    assert r.deviance(mu) == pytest.approx(np.sum(2 * trials * terms), rel=1e-12)
    # R: -2 sum(wt/m * dbinom(m y, m, mu, log = TRUE)) with m = trials
    assert r.minus2_loglik(mu) == pytest.approx(-2 * np.sum(stats.binom.logpmf(y_counts, trials, mu)), rel=1e-12)


def test_poisson_loglik_matches_dpois():
    y = np.array([0.0, 1, 4, 9, 2])
    mu = np.array([0.5, 1.2, 3.0, 11.0, 2.0])
    r = Poisson().response(y, None, "y")
    assert r.minus2_loglik(mu) == pytest.approx(-2 * np.sum(stats.poisson.logpmf(y, mu)), rel=1e-12)
    np.testing.assert_allclose(
        r.dev_resid(mu), 2 * (np.where(y > 0, y * np.log(np.where(y > 0, y, 1) / mu), 0) - (y - mu))
    )


def test_gamma_loglik_is_r_aic_with_its_dispersion():
    y = np.array([1.2, 0.7, 3.3, 2.2, 1.9])
    mu = np.array([1.0, 1.0, 2.5, 2.0, 2.1])
    r = Gamma(link="log").response(y, None, "y")
    dev = r.deviance(mu)
    np.testing.assert_allclose(r.dev_resid(mu), -2 * (np.log(y / mu) - (y - mu) / mu), rtol=1e-12)
    disp = dev / y.size  # R's Gamma()$aic: dispersion dev / sum(wt), plus 2
    expected = -2 * np.sum(stats.gamma.logpdf(y, a=1 / disp, scale=mu * disp)) + 2
    assert r.minus2_loglik(mu) == pytest.approx(expected, rel=1e-12)


def test_inverse_gaussian_and_gaussian_loglik_match_r():
    y = np.array([1.2, 0.7, 3.3, 2.2, 1.9])
    mu = np.array([1.0, 1.0, 2.5, 2.0, 2.1])
    r = InverseGaussian().response(y, None, "y")
    dev = r.deviance(mu)
    assert dev == pytest.approx(np.sum((y - mu) ** 2 / (y * mu**2)), rel=1e-12)
    assert r.minus2_loglik(mu) == pytest.approx(
        y.size * (np.log(dev / y.size * 2 * np.pi) + 1) + 3 * np.sum(np.log(y)) + 2
    )
    g = Gaussian(link="log").response(y, None, "y")
    dev = g.deviance(mu)
    assert g.minus2_loglik(mu) == pytest.approx(y.size * (np.log(2 * np.pi * dev / y.size) + 1) + 2)


@pytest.mark.parametrize(
    "family",
    [Binomial(link=k) for k in Binomial.links]
    + [Poisson(link=k) for k in Poisson.links]
    + [Gamma(link=k) for k in Gamma.links]
    + [InverseGaussian(link=k) for k in InverseGaussian.links],
    ids=repr,
)
def test_observed_weights_are_half_the_second_derivative_of_the_deviance(family):
    """PIRLS's Newton weights: (1/2) d^2 dev_i / d eta^2 (where positive); score = -(1/2) d dev_i / d eta."""
    eta = {
        "logit": 0.3,
        "probit": 0.2,
        "cloglog": -0.4,
        "cauchit": 0.5,
        "log": -0.6 if family.name == "binomial" else 0.4,
        "identity": 0.4 if family.name == "binomial" else 1.5,
        "sqrt": 1.2,
        "inverse": 0.8,
        "1/mu^2": 0.7,
    }[family.link.name]
    y = np.array([2.0 / 3.0 if family.name == "binomial" else 2.0])
    r = family.response(y, np.array([3.0]) if family.name == "binomial" else None, "y")
    e = np.array([eta])

    def dev(x):
        return r.deviance(family.link.inverse(np.array([x])))

    h = 1e-4
    d1 = (dev(eta + h) - dev(eta - h)) / (2 * h)
    d2 = (dev(eta + h) - 2 * dev(eta) + dev(eta - h)) / h**2
    w, z = r.working_weights(e, family.link.inverse(e), observed=True)
    if d2 / 2 > 1e-3 * r.working_weights(e, family.link.inverse(e))[0][0]:
        assert w[0] == pytest.approx(d2 / 2, rel=1e-5)
    assert w[0] * z[0] == pytest.approx(-d1 / 2, rel=1e-6)


# --- names and errors ------------------------------------------------------------------
def test_get_family_by_name_object_or_class():
    assert get_family("binomial") == Binomial()
    assert get_family("Gamma") == Gamma() == get_family("gamma")
    assert get_family("inverse_gaussian") == InverseGaussian(link="1/mu^2")
    assert get_family(Poisson, link="sqrt") == Poisson(link="sqrt")
    probit = mm.families.Binomial(link="probit")
    assert get_family(probit) is probit
    assert get_family(probit, link="logit") == Binomial()
    assert set(FAMILIES) >= {"binomial", "poisson", "gamma", "inverse_gaussian", "gaussian"}


def test_unknown_family_lists_the_choices():
    with pytest.raises(ModelSpecError, match="unknown family 'tweedie'.*'binomial', 'poisson', 'Gamma'"):
        get_family("tweedie")
    with pytest.raises(ModelSpecError, match=r"negative binomial family needs its theta.*glmer_nb"):
        get_family("negbin")  # issue #19: the family exists, with a theta


def test_unknown_link_lists_the_family_s_links():
    with pytest.raises(ModelSpecError, match="link 'sqrt' is not available for the binomial family.*'logit', 'probit'"):
        Binomial(link="sqrt")
    with pytest.raises(ModelSpecError, match="'inverse', 'log', 'identity'"):
        Gamma(link="logit")


@pytest.mark.parametrize(
    "family, y, weights, message",
    [
        (Binomial(), np.array([0.0, 1.0, 1.5]), None, r"'resp' must be between 0 and 1.*row 2 has 1.5"),
        (Binomial(), np.array([0.0, 1.0, -1.0]), None, r"'resp' must be between 0 and 1"),
        (Binomial(), np.array([[1.0, 2.0], [-1.0, 3.0]]), None, r"'resp' has negative counts"),
        (Binomial(), np.array([[1.5, 2.0], [1.0, 3.0]]), None, r"'resp' must be whole numbers of successes"),
        (Binomial(), np.array([0.5, 0.25]), np.array([3.0, 4.0]), r"'resp' must be a whole number of successes"),
        (Poisson(), np.array([0.0, 2.0, -1.0]), None, r"'resp' has a negative count \(row 2"),
        (Poisson(), np.array([0.0, 2.5]), None, r"'resp' must be whole-number counts"),
        (Gamma(), np.array([1.0, 0.0]), None, r"'resp' must be positive for the Gamma family \(row 1"),
        (Poisson(), np.array([[1.0, 2.0]]), None, r"cbind\(successes, failures\) is only for the binomial"),
    ],
)
def test_invalid_responses_name_the_column(family, y, weights, message):
    with pytest.raises(DataError, match=message):
        family.response(y, weights, "resp")


def test_binomial_responses_agree():
    """0/1 values, cbind(s, f) and proportions with weights give the same deviance and log-likelihood."""
    s, n = np.array([2.0, 0.0, 5.0]), np.array([4.0, 3.0, 5.0])
    mu = np.array([0.4, 0.2, 0.7])
    counts = Binomial().response(np.column_stack([s, n - s]), None, "y")
    props = Binomial().response(s / n, n, "y")
    assert counts.deviance(mu) == pytest.approx(props.deviance(mu), rel=1e-12)
    assert counts.minus2_loglik(mu) == pytest.approx(props.minus2_loglik(mu), rel=1e-12)
    bernoulli = Binomial().response(np.array([1.0, 1, 0, 0, 0, 0, 0]), None, "y")
    mu7 = np.array([0.4, 0.4, 0.4, 0.4, 0.2, 0.2, 0.2])
    expected = -2 * (2 * np.log(0.4) + 2 * np.log(0.6) + 3 * np.log(0.8))
    assert bernoulli.deviance(mu7) == pytest.approx(expected, rel=1e-12)  # saturated log L of 0/1 data is 0


def test_negative_binomial_family_matches_r():
    """MASS::negative.binomial(theta = 2): variance, deviance residuals and -2 log L (R's aic) by hand."""
    from scipy import stats

    from mixedmodels.families import NegativeBinomial

    fam = NegativeBinomial(theta=2.0)
    y = np.array([0.0, 1.0, 3.0, 7.0, 12.0])
    mu = np.array([0.5, 1.5, 2.5, 6.0, 10.0])
    np.testing.assert_allclose(fam.variance(mu), mu + mu**2 / 2.0)
    response = fam.response(y, None, "y")
    # R: 2 * (y * log(pmax(1, y) / mu) - (y + theta) * log((y + theta) / (mu + theta)))
    dev = 2 * (y * np.log(np.maximum(1, y) / mu) - (y + 2) * np.log((y + 2) / (mu + 2)))
    np.testing.assert_allclose(response.dev_resid(mu), dev, rtol=1e-12)
    minus2 = -2 * stats.nbinom.logpmf(y, 2.0, 2.0 / (2.0 + mu)).sum()
    assert response.minus2_loglik(mu) == pytest.approx(minus2, rel=1e-12)
    assert not fam.canonical and fam.label == "Negative Binomial(2)"
    assert NegativeBinomial(3.30339470796232).label == "Negative Binomial(3.3034)"
    assert (
        fam == NegativeBinomial(2.0) and fam != NegativeBinomial(2.5) and fam.with_theta(2.5) == NegativeBinomial(2.5)
    )

"""Priors: densities, draws, validation and the data-scaled defaults (no sampler needed)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

import mixedmodels as mm
from mixedmodels import priors as P
from mixedmodels.errors import ModelSpecError

# Each prior with the SciPy distribution it must equal (written out independently here).
CASES = [
    (P.Normal(3, 2), stats.norm(3, 2)),
    (P.StudentT(4, 1, 2), stats.t(4, 1, 2)),
    (P.Cauchy(0, 5), stats.cauchy(0, 5)),
    (P.HalfNormal(0, 3), stats.halfnorm(0, 3)),
    (P.HalfCauchy(0, 100), stats.halfcauchy(0, 100)),
    (P.HalfStudentT(3, 0, 2.5), None),  # |t_3(0, 2.5)|: draws checked below
    (P.Exponential(0.5), stats.expon(0, 2)),
    (P.Gamma(2, 4), stats.gamma(2, 0, 0.25)),
    (P.InverseGamma(3, 2), stats.invgamma(3, 0, 2)),
    (P.Uniform(-1, 4), stats.uniform(-1, 5)),
]


def _support(prior: P.Prior) -> tuple[float, float]:
    if isinstance(prior, P.Uniform):
        return prior.lower, prior.upper
    return (0.0, np.inf) if prior.support == "positive" else (-np.inf, np.inf)


@pytest.mark.parametrize("prior,dist", CASES, ids=[str(c[0]) for c in CASES])
def test_density_integrates_to_one_and_matches_scipy(prior, dist):
    low, high = _support(prior)
    total, _ = integrate.quad(lambda x: np.exp(prior.logpdf(x)), low, high, limit=200)
    assert total == pytest.approx(1.0, abs=1e-6)
    if dist is not None:
        grid = np.linspace(max(low, -20) + 0.01, min(high, 20) - 0.01, 41)
        np.testing.assert_allclose(prior.logpdf(grid), dist.logpdf(grid), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "prior,dist", [c for c in CASES if c[1] is not None], ids=[str(c[0]) for c in CASES if c[1] is not None]
)
def test_draws_follow_the_density(prior, dist):
    draws = prior.sample(np.random.default_rng(7), 4000)
    assert stats.kstest(draws, dist.cdf).pvalue > 1e-3


def test_half_student_t_draws():
    prior = P.HalfStudentT(3, 0, 2.5)
    draws = prior.sample(np.random.default_rng(3), 4000)
    # |T| with T ~ t_3(0, 2.5): P(|T| <= x) = 2 F(x) - 1
    assert stats.kstest(draws, lambda x: 2 * stats.t.cdf(x, 3, 0, 2.5) - 1).pvalue > 1e-3


def test_lkj_draws_have_the_beta_marginal():
    # For an LKJ(eta) K x K matrix every correlation is 2 Beta(eta - 1 + K/2, same) - 1.
    eta, k = 2.0, 3
    cors = P.LKJ(eta).sample(np.random.default_rng(11), 4000, dim=k)
    assert cors.shape == (4000, 3, 3)
    np.testing.assert_allclose(np.diagonal(cors, axis1=1, axis2=2), 1.0)
    assert np.all(np.linalg.eigvalsh(cors) > 0)
    a = eta - 1 + k / 2
    for i, j in [(1, 0), (2, 0), (2, 1)]:
        assert stats.kstest((cors[:, i, j] + 1) / 2, stats.beta(a, a).cdf).pvalue > 1e-3


def test_lkj_logpdf_is_numpyros_up_to_a_constant():
    numpyro_dist = pytest.importorskip("numpyro.distributions")
    prior = P.LKJ(2.5)
    chol = prior.sample_cholesky(np.random.default_rng(5), 4, 6)
    ours = prior.logpdf(chol)
    theirs = np.asarray(numpyro_dist.LKJCholesky(4, 2.5).log_prob(chol))
    np.testing.assert_allclose(ours - ours[0], theirs - theirs[0], atol=1e-6)


def test_printing_equality_and_immutability():
    assert str(P.Normal(0, 1000)) == "Normal(0, 1000)"
    assert repr(P.HalfCauchy(0, 100)) == "HalfCauchy(0, 100)"
    assert P.HalfCauchy(100) == P.HalfCauchy(0, 100)
    assert hash(P.HalfNormal(2)) == hash(P.HalfNormal(0, 2))
    assert str(P.HalfStudentT(3, 0, 2.5)) == "HalfStudentT(3, 0, 2.5)"
    with pytest.raises(AttributeError):
        P.HalfCauchy(1).scale = 2
    with pytest.raises(AttributeError):
        P.Normal(0, 1).sd = 2


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: P.Normal(0, -1), "sd"),
        (lambda: P.Normal("a", 1), "mean"),
        (lambda: P.HalfCauchy(1, 100), "location 0"),
        (lambda: P.HalfNormal(1, 2, 3), "takes"),
        (lambda: P.Uniform(2, 1), "lower < upper"),
        (lambda: P.StudentT(0, 0, 1), "df"),
        (lambda: P.LKJ(0), "eta"),
        (lambda: P.Exponential(np.inf), "rate"),
    ],
)
def test_bad_parameters_raise_model_spec_errors(make, message):
    with pytest.raises(ModelSpecError, match=message):
        make()


@pytest.mark.parametrize(
    "prior,cls,message",
    [
        (P.HalfCauchy(0, 10), "fixef", "real line"),
        (P.Normal(0, 10), "sd", "positive"),
        (P.LKJ(2), "sigma", "positive"),
        (P.Normal(0, 1), "cor", "LKJ"),
        (P.Uniform(-1, 5), "sd", "lower bound"),
        ("Normal(0, 1)", "fixef", "mixedmodels.priors object"),
    ],
)
def test_check_prior_names_the_class_and_what_fits(prior, cls, message):
    with pytest.raises(ModelSpecError, match=message):
        P.check_prior(prior, cls, "the parameter")


def test_flat_cannot_be_sampled():
    with pytest.raises(ModelSpecError, match="improper"):
        P.Flat().sample(np.random.default_rng(0), 3)
    assert not P.Flat().proper and P.Normal().proper


def test_unknown_prior_class():
    with pytest.raises(ModelSpecError, match="unknown prior class"):
        P.as_prior_spec({"fixed": P.Normal()})
    with pytest.raises(ModelSpecError, match="must be a dict"):
        P.as_prior_spec([P.Normal()])


def test_defaults_are_scaled_to_the_data_as_documented():
    sleep = mm.datasets.load("sleepstudy")
    y, days = sleep["Reaction"].to_numpy(), sleep["Days"].to_numpy(dtype=float)
    x = np.column_stack([np.ones_like(days), days])
    d = P.default_priors(
        x, ("(Intercept)", "Days"), [("Subject", ("(Intercept)", "Days"), x)], y, "gaussian", float(np.mean(y))
    )
    sy, sx = np.std(y, ddof=1), np.std(days, ddof=1)
    assert d["fixef"]["(Intercept)"] == P.Normal(np.mean(y), 2.5 * sy)
    assert d["fixef"]["Days"] == P.Normal(0, 2.5 * sy / sx)
    assert d["sd"][0][0] == P.HalfStudentT(3, 0, 2.5 * sy)
    assert d["sd"][0][1] == P.HalfStudentT(3, 0, 2.5 * sy / sx)
    assert d["cor"] == [P.LKJ(1)]
    assert d["sigma"] == P.Exponential(1 / sy)
    binomial = P.default_priors(
        x, ("(Intercept)", "Days"), [("Subject", ("(Intercept)",), x[:, :1])], (y > 300).astype(float), "binomial", 0.2
    )
    assert binomial["fixef"]["(Intercept)"] == P.Normal(0.2, 2.5)
    assert binomial["fixef"]["Days"] == P.Normal(0, 2.5 / sx)
    assert binomial["sd"][0][0] == P.HalfStudentT(3, 0, 2.5)
    assert binomial["sigma"] is None

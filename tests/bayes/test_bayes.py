"""mm.bayes: NUTS fits of lmer/glmer formulas checked against lme4, quadrature and calibration.

Tolerances (from issue 10 where it states them):

* posterior means of beta within 3 Monte-Carlo SEs + 2 % of lme4's estimates
  (diffuse priors: Normal(0, 1000) fixed effects, HalfCauchy(0, 100) SDs);
* sleepstudy: posterior SDs within 15 % of lme4's SEs;
* Penicillin: the posterior of the intercept against an independent
  numerical integration of the same posterior (quantiles within 4 MCSEs).
  Its posterior SD is NOT within 15 % of lme4's SE, and cannot be: with 6
  samples the posterior integrates over the uncertain sample SD, which lme4's
  SE treats as known (quadrature: SD 1.26 vs SE 0.81);
* group-level posterior means correlate > 0.99 with lme4's conditional modes;
* simulation-based calibration: ranks of true values uniform (chi-square p > 0.001),
  with a miscalibrated control that the same test rejects.

Sampling is kept short (2 chains, compiled once per model structure).
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

pytest.importorskip("numpyro")
pytest.importorskip("jax")

import mixedmodels as mm  # noqa: E402
import mixedmodels.bayes as bayes  # noqa: E402
from mixedmodels import priors as P  # noqa: E402
from mixedmodels.bayes import diagnostics as D  # noqa: E402
from mixedmodels.bayes.model import BayesModel  # noqa: E402
from mixedmodels.errors import DataError, ModelSpecError  # noqa: E402

from conftest import as_list, dataset, reference  # noqa: E402

DIFFUSE = {"fixef": P.Normal(0, 1000), "sd": P.HalfCauchy(0, 100), "sigma": P.HalfCauchy(0, 100)}
QUIET = {"progress": False}


def _fit(fun, *args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fun(*args, **kwargs)
    return result, [w for w in caught if issubclass(w.category, bayes.SamplingWarning)]


@pytest.fixture(scope="module")
def sleep_fit():
    return _fit(
        bayes.lmer,
        "Reaction ~ Days + (Days | Subject)",
        dataset("sleepstudy"),
        priors=DIFFUSE,
        draws=3000,
        warmup=1000,
        chains=2,
        seed=101,
        target_accept=0.9,
        **QUIET,
    )


@pytest.fixture(scope="module")
def penicillin_fit():
    return _fit(
        bayes.lmer,
        "diameter ~ 1 + (1 | plate) + (1 | sample)",
        dataset("Penicillin"),
        priors=DIFFUSE,
        draws=2000,
        warmup=1000,
        chains=2,
        seed=7,
        target_accept=0.95,
        **QUIET,
    )[0]


@pytest.fixture(scope="module")
def cbpp_fit():
    return _fit(
        bayes.glmer,
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        dataset("cbpp"),
        family="binomial",
        draws=1000,
        warmup=500,
        chains=2,
        seed=3,
        **QUIET,
    )[0]


def _mean_ok(draws: np.ndarray, target: float) -> bool:
    """Issue 10's rule: within 3 Monte-Carlo SEs + 2 % of lme4's estimate."""
    return abs(draws.mean() - target) <= 3 * D.mcse_mean(draws) + 0.02 * abs(target)


def _ranef_correlations(fit, ref) -> list[float]:
    out = []
    for group, spec in ref["ranef"].items():
        lme4 = np.asarray(spec["values"], dtype=float).reshape(len(spec["levels"]), -1)
        ours = fit.ranef()[group].loc[spec["levels"], as_list(spec["columns"])].to_numpy()
        out += [np.corrcoef(ours[:, c], lme4[:, c])[0, 1] for c in range(lme4.shape[1])]
    return out


# --------------------------------------------------------------------------- diagnostics (no sampling)
def test_diagnostics_match_arviz():
    az = pytest.importorskip("arviz")
    rng = np.random.default_rng(0)
    for phi, shift in [(0.0, 0.0), (0.6, 0.0), (0.95, 0.4)]:
        x = np.zeros((3, 300))
        for t in range(1, 300):
            x[:, t] = phi * x[:, t - 1] + rng.normal(size=3)
        x[1] += shift
        assert D.rhat(x) == pytest.approx(float(az.rhat(x)), rel=1e-10)
        assert D.ess_bulk(x) == pytest.approx(float(az.ess(x)), rel=1e-10)
        assert D.ess_tail(x) == pytest.approx(float(az.ess(x, method="tail")), rel=1e-10)
        # .item(): with numba installed ArviZ returns mcse as a length-1 array
        assert D.mcse_mean(x) == pytest.approx(np.asarray(az.mcse(x)).item(), rel=1e-10)
        np.testing.assert_allclose(D.hdi(x.ravel(), 0.9), az.hdi(x.ravel(), 0.9), rtol=1e-12)
    assert D.rhat(np.ones((2, 50))) != D.rhat(np.ones((2, 50)))  # NaN for constant draws
    assert D.rhat(np.array([[0.0] * 50 + [1.0] * 50, [5.0] * 100])) > 1.01


# --------------------------------------------------------------------------- the log density (no sampling)
def _numpy_log_density(model: BayesModel, params: dict, parts: dict) -> float:
    """The log posterior written out with SciPy priors and the families' -2 log L, for one point."""
    from mixedmodels.bayes.model import inverse_link, linear_predictor_draws

    lp = 0.0
    beta_c = np.array(parts["beta_c"])
    for g in model.spec.beta_groups:
        if g.support == "point":
            continue
        u = params["beta"][g.free[0] : g.free[1]]
        lp += _jacobian(g, u, [model.priors.fixef[j] for j in g.index])
        lp += sum(model.priors.fixef[j].logpdf(beta_c[j]) for j in g.index)
    for k, (ts, tp) in enumerate(zip(model.spec.terms, params["terms"])):
        sd = np.array(parts["sd"][k])
        for g in ts.sd_groups:
            if g.support != "point":
                lp += _jacobian(g, tp["sd"][g.free[0] : g.free[1]], [model.priors.sd[k][c] for c in g.index])
                lp += sum(model.priors.sd[k][c].logpdf(sd[c]) for c in g.index)
        if ts.centred:  # the level coefficients gamma = beta[match] + b are sampled; b ~ N(0, Sigma)
            b_k = np.array(parts["b"][k])
            shift = np.array([beta_c[j] if j >= 0 else 0.0 for j in ts.match])
            np.testing.assert_allclose(b_k, np.asarray(tp["u"]) - shift, rtol=1e-12, atol=1e-12)
            chol = np.array(parts["chol"][k])
            cov = np.outer(sd, sd) * (chol @ chol.T)
            lp += (
                stats.multivariate_normal(np.zeros(len(sd)), cov).logpdf(b_k).sum() + 0.5 * np.log(2 * np.pi) * b_k.size
            )
        else:
            lp += stats.norm.logpdf(tp["u"]).sum() + 0.5 * np.log(2 * np.pi) * tp["u"].size
        if ts.correlated:
            lp += float(parts["cor_jacobian"][k]) + model.priors.cor[k].logpdf(np.array(parts["chol"][k]))
    b = [np.array(x)[None] for x in parts["b"]]
    beta = model._uncenter(beta_c[None])
    inputs = model.inputs
    eta = linear_predictor_draws(
        beta, b, inputs.fixed.matrix, [t.z for t in inputs.terms], [t.refs for t in inputs.terms], inputs.offset
    )[0]
    mu = inverse_link(model.spec.link, eta)
    if model.family.name == "gaussian":
        sigma = float(parts["sigma"])
        if model.spec.sigma_group.support != "point":
            lp += _jacobian(model.spec.sigma_group, params["sigma"], [model.priors.sigma])
            lp += model.priors.sigma.logpdf(sigma)
        w = np.ones(len(mu)) if inputs.weights is None else inputs.weights
        lp += stats.norm.logpdf(inputs.y, mu, sigma / np.sqrt(w)).sum()
    else:
        response = model.family.response(inputs.y, inputs.weights, inputs.formula.response)
        lp += -0.5 * response.minus2_loglik(mu)
    return lp


def _jacobian(group, u, priors) -> float:
    if group.support == "positive":
        return float(np.sum(u))
    if group.support == "interval":
        lo = np.array([p.lower for p in priors])
        hi = np.array([p.upper for p in priors])
        s = 1 / (1 + np.exp(-u))
        return float(np.sum(np.log((hi - lo) * s * (1 - s))))
    return 0.0


def _jax_parts(model: BayesModel, params: dict) -> tuple[float, dict]:
    from mixedmodels.bayes._backend import backend
    from mixedmodels.bayes.density import _assemble, log_density

    B = backend()

    def parts_fn(p, d):
        parts, _, _ = _assemble(p, d, model.spec)
        jac = [
            B.corr_cholesky.log_abs_det_jacobian(tp["cor"], c) if ts.correlated else 0.0
            for ts, tp, c in zip(model.spec.terms, p["terms"], parts["chol"])
        ]
        return log_density(p, d, model.spec), {**parts, "cor_jacobian": jac}

    with B.x64(True):
        value, parts = B.jax.jit(parts_fn)(params, model.data)
        return float(value), B.jax.tree.map(np.asarray, parts)


DENSITY_CASES = [
    (
        "gaussian",
        "Reaction ~ Days + (Days | Subject)",
        "sleepstudy",
        {
            "fixef": {"Days": P.StudentT(3, 10, 5), "(Intercept)": P.Uniform(100, 400)},
            "sd": {("Subject", "Days"): P.Gamma(2, 0.2), "Subject": P.InverseGamma(3, 40)},
            "cor": P.LKJ(3),
            "sigma": P.Uniform(0, 100),
        },
        {},
    ),
    (
        "gaussian",
        "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
        "sleepstudy",
        {"sd": {("Subject", "Days"): P.Fixed(5.0)}, "sigma": P.HalfNormal(0, 40)},
        {"weights": "w"},
    ),
    ("binomial", "cbind(incidence, size - incidence) ~ period + (1 | herd)", "cbpp", None, {}),
    (
        mm.families.Binomial(link="probit"),
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        "cbpp",
        {"fixef": P.Cauchy(0, 2.5), "sd": P.HalfCauchy(0, 1)},
        {},
    ),
    (
        mm.families.Binomial(link="cloglog"),
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        "cbpp",
        None,
        {},
    ),
    (
        "poisson",
        "TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | LOCATION)",
        "grouseticks",
        {"sd": {"BROOD": P.Exponential(1)}},
        {},
    ),
    (mm.families.Poisson(link="sqrt"), "TICKS ~ YEAR + (1 | LOCATION)", "grouseticks", None, {}),
    # sampled centred (see mixedmodels.bayes.parametrization): the taught no-pooling model, a random
    # intercept whose levels' data dominate, and correlated effects forced centred
    (
        "gaussian",
        "Reaction ~ Days + (1 | Subject)",
        "sleepstudy",
        {"fixef": P.Normal(0, 1000), "sd": P.Fixed(1000), "sigma": P.HalfCauchy(0, 100)},
        {"centred": [True]},
    ),
    ("gaussian", "Reaction ~ Days + (1 | Subject)", "sleepstudy", None, {"centred": [True]}),
    (
        "gaussian",
        "Reaction ~ Days + (Days | Subject)",
        "sleepstudy",
        {"cor": P.LKJ(2)},
        {"parametrization": "centred", "centred": [True]},
    ),
    (
        "binomial",
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        "cbpp",
        {"sd": P.Fixed(100)},
        {"centred": [True]},
    ),
]


@pytest.mark.parametrize(
    "family,formula,data_name,priors,extra",
    DENSITY_CASES,
    ids=[f"{c[2]}-{c[0]}-{i}" for i, c in enumerate(DENSITY_CASES)],
)
def test_log_density_equals_an_independent_numpy_computation(family, formula, data_name, priors, extra):
    from mixedmodels.families import get_family
    from mixedmodels.design.inputs import prepare_glmm_inputs

    data = dataset(data_name).copy()
    kwargs = {}
    if extra.get("weights"):
        kwargs["weights"] = np.random.default_rng(1).uniform(0.5, 2.0, len(data))
    inputs = prepare_glmm_inputs(formula, data, **kwargs)
    model = BayesModel.build(inputs, get_family(family), priors, parametrization=extra.get("parametrization", "auto"))
    assert [t.centred for t in model.spec.terms] == extra.get("centred", [t.centred for t in model.spec.terms])
    params = model.initial_values(np.random.default_rng(4), jitter=2.0)
    value, parts = _jax_parts(model, params)
    assert np.isfinite(value)
    assert value == pytest.approx(_numpy_log_density(model, params, parts), rel=1e-9, abs=1e-6)


# --------------------------------------------------------------------------- sleepstudy vs lme4
def test_sleepstudy_fixed_effects_match_lme4(sleep_fit):
    fit, caught = sleep_fit
    ref = reference("shared/sleepstudy_slope_reml")
    assert not caught, [str(w.message) for w in caught]
    beta = fit.draws["beta"]
    for j, name in enumerate(ref["fixef_names"]):
        assert _mean_ok(beta[..., j], ref["fixef"][j]), name
        ratio = beta[..., j].std(ddof=1) / ref["se"][j]
        assert 1 / 1.15 < ratio < 1.15, (name, ratio)  # measured 1.11 and 1.12 (long run: 1.109, 1.116)


def test_sleepstudy_group_effects_track_lme4_modes(sleep_fit):
    fit, _ = sleep_fit
    assert min(_ranef_correlations(fit, reference("shared/sleepstudy_slope_reml"))) > 0.99


def test_sleepstudy_summary_table(sleep_fit):
    fit, _ = sleep_fit
    table = fit.summary_table()
    assert list(table.index) == [
        "(Intercept)",
        "Days",
        "sd_(Intercept)|Subject",
        "sd_Days|Subject",
        "cor_Days.(Intercept)|Subject",
        "sigma",
    ]
    assert list(table.columns) == ["mean", "sd", "hdi_2.5%", "hdi_97.5%", "mcse", "ess_bulk", "ess_tail", "r_hat"]
    assert (table["r_hat"] < 1.01).all() and (table["ess_bulk"] > 400).all()
    assert (table["hdi_2.5%"] < table["mean"]).all() and (table["mean"] < table["hdi_97.5%"]).all()
    # the variance components are near lme4's REML estimates (posterior means sit a little above them)
    ref = {(r["var1"], r["var2"]): r["sdcor"] for r in reference("shared/sleepstudy_slope_reml")["varcorr"]}
    assert table.loc["sigma", "mean"] == pytest.approx(ref[(None, None)], rel=0.05)
    assert table.loc["sd_Days|Subject", "mean"] == pytest.approx(ref[("Days", None)], rel=0.2)
    text = str(fit.summary())
    for piece in [
        "Formula: Reaction ~ Days + (Days | Subject)",
        "sd_Days|Subject",
        "sigma",
        "r_hat",
        "2 chains x 3000 draws",
        "0 divergent",
    ]:
        assert piece in text


def test_sleepstudy_hdi_ranef_coef(sleep_fit):
    fit, _ = sleep_fit
    tidy = fit.hdi(0.95)
    assert tidy["effect"].value_counts().to_dict() == {"ran_vals": 36, "ran_coefs": 36, "ran_pars": 4, "fixed": 2}
    assert ((tidy["lower"] <= tidy["mean"]) & (tidy["mean"] <= tidy["upper"])).all()
    narrow = fit.hdi(0.5, effects="fixed")
    assert (
        narrow["upper"] - narrow["lower"]
        < tidy.query("effect == 'fixed'")["upper"] - tidy.query("effect == 'fixed'")["lower"].to_numpy()
    ).all()
    coef = fit.coef()["Subject"]
    ranef = fit.ranef()["Subject"]
    np.testing.assert_allclose(coef.to_numpy(), ranef.to_numpy() + fit.fixef.to_numpy(), rtol=1e-12)
    player = tidy.query("effect == 'ran_coefs' and level == '308' and term == 'Days'")
    assert player["mean"].iloc[0] == pytest.approx(coef.loc["308", "Days"])
    draws = fit.ranef(draws=True)["Subject"]
    assert draws.shape == (6000, 36)
    assert draws[("308", "Days")].mean() == pytest.approx(ranef.loc["308", "Days"])
    with pytest.raises(mm.MixedModelsError, match="unknown effects"):
        fit.hdi(effects=["random"])


def test_sleepstudy_idata_and_loo(sleep_fit):
    az = pytest.importorskip("arviz")
    fit, _ = sleep_fit
    idata = fit.idata
    assert {"posterior", "sample_stats", "log_likelihood", "observed_data"} <= set(idata.groups())
    post = idata.posterior
    assert post["fixef"].shape == (2, 3000, 2)
    assert post["ranef_Subject"].sel(Subject_level="308", Subject_term="Days").mean() == pytest.approx(
        fit.ranef()["Subject"].loc["308", "Days"]
    )
    assert idata.log_likelihood["y"].shape == (2, 3000, 180)
    np.testing.assert_allclose(
        idata.log_likelihood["y"].sum(dim="obs").values[0, :5], _gaussian_loglik(fit)[:5], rtol=1e-10
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loo = az.loo(idata)
    assert np.isfinite(float(loo.elpd_loo))


def _gaussian_loglik(fit) -> np.ndarray:
    sleep = dataset("sleepstudy")
    x = np.column_stack([np.ones(180), sleep["Days"].to_numpy(float)])
    refs = sleep["Subject"].cat.codes.to_numpy()
    beta, b, sigma = fit.draws["beta"][0], fit.draws["b"][0][0], fit.draws["sigma"][0]
    mu = beta @ x.T + np.einsum("nq,snq->sn", x, b[:, refs, :])
    return stats.norm.logpdf(sleep["Reaction"].to_numpy(), mu, sigma[:, None]).sum(axis=1)


def test_sleepstudy_posterior_predict(sleep_fit):
    fit, _ = sleep_fit
    ppd = fit.posterior_predict(seed=1)
    assert ppd.shape == (6000, 180)
    epred = fit.predict()
    # predictive mean ~ expected value, predictive SD ~ sqrt(sigma^2 + var(mu))
    assert np.max(np.abs(ppd.mean().to_numpy() - epred.to_numpy())) < 5 * 26 / np.sqrt(6000) * 1.5
    assert ppd.std().mean() == pytest.approx(np.sqrt(fit.sigma**2 + fit.posterior_epred().var().mean()), rel=0.05)
    new = pd.DataFrame({"Days": [5, 5], "Subject": ["308", "NEW"]})
    draws = fit.posterior_predict(new, seed=2)
    assert list(draws.columns) == [0, 1]
    assert draws[1].std() > draws[0].std()  # a new subject adds the population's spread
    fixed = fit.posterior_epred(new, use_re=False)
    np.testing.assert_allclose(fixed[0], fixed[1])
    assert fixed[0].mean() == pytest.approx(fit.fixef["(Intercept)"] + 5 * fit.fixef["Days"])
    assert fit.posterior_predict(ndraws=10, seed=3).shape == (10, 180)
    again = fit.posterior_predict(ndraws=10, seed=3)
    pd.testing.assert_frame_equal(again, fit.posterior_predict(ndraws=10, seed=3))


# --------------------------------------------------------------------------- Penicillin vs lme4 and quadrature
def _penicillin_quadrature() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The exact posterior of the intercept under DIFFUSE priors, by numerical integration.

    With a flat prior on beta, ``p(theta, sigma | y)`` is the REML likelihood
    ``(2 pi sigma^2)^(-(n-p)/2) |L|^-1 |R_X|^-1 exp(-r^2 / (2 sigma^2))`` times the
    half-Cauchy priors of ``sd = theta sigma`` and ``sigma`` (Jacobian ``sigma^2``),
    and ``beta | theta, sigma, y ~ N(beta_hat(theta), sigma^2 / R_X^2)``: a normal
    mixture, evaluated on a log grid of (theta_plate, theta_sample, sigma).
    Returns the mixture's weights, means and SDs.
    """
    from mixedmodels.lmm.model import LinearMixedModel

    model = LinearMixedModel.from_formula("diameter ~ 1 + (1 | plate) + (1 | sample)", dataset("Penicillin"))
    n, p = model.nobs, 1
    ltp, lts, ls = (
        np.linspace(np.log(0.2), np.log(10), 40),
        np.linspace(np.log(0.3), np.log(400), 70),
        np.linspace(np.log(0.40), np.log(0.78), 40),
    )
    sig = np.exp(ls)
    log_hc = lambda x: -np.log1p((x / 100.0) ** 2)  # noqa: E731
    logw, means, sds = [], [], []
    for a in ltp:
        for c in lts:
            factor = model.crossprods.factorize(np.array([np.exp(a), np.exp(c)]))
            beta, _ = factor.solve()
            ldx = factor.logdet_x()
            logw.append(
                -(n - p) * ls
                - 0.5 * factor.logdet_re()
                - 0.5 * ldx
                - factor.pwrss() / (2 * sig**2)
                + log_hc(np.exp(a) * sig)
                + log_hc(np.exp(c) * sig)
                + log_hc(sig)
                + 3 * ls
                + a
                + c
            )
            means.append(np.full(ls.size, beta[0]))
            sds.append(sig * np.exp(-0.5 * ldx))
    logw, means, sds = (np.concatenate(v) for v in (logw, means, sds))
    w = np.exp(logw - logw.max())
    return w / w.sum(), means, sds


def test_penicillin_posterior_matches_lme4_and_quadrature(penicillin_fit):
    ref = reference("shared/penicillin_crossed")
    x = penicillin_fit.draws["beta"][..., 0]
    estimate, se = as_list(ref["fixef"])[0], as_list(ref["se"])[0]
    assert _mean_ok(x, estimate)
    w, means, sds = _penicillin_quadrature()
    quad_mean = np.sum(w * means)
    quad_sd = np.sqrt(np.sum(w * (sds**2 + means**2)) - quad_mean**2)
    assert quad_mean == pytest.approx(22.9722, abs=1e-3)
    # lme4's SE conditions on the estimated variance components; the posterior does not:
    assert quad_sd / se > 1.4  # 1.26 / 0.81: issue 10's 15 % rule cannot hold here
    cdf = lambda b: np.sum(w * stats.norm.cdf((b - means) / sds))  # noqa: E731
    for q in (0.1, 0.25, 0.5, 0.75, 0.9):
        exact = optimize.brentq(lambda b: cdf(b) - q, 15, 30)
        estimate = np.quantile(x, q)
        density = np.sum(w * stats.norm.pdf((exact - means) / sds) / sds)
        mcse = np.sqrt(q * (1 - q) / D.ess_mean((x <= estimate).astype(float))) / density
        assert abs(estimate - exact) < 4 * mcse, (q, estimate, exact, mcse)
    assert min(_ranef_correlations(penicillin_fit, ref)) > 0.99


# --------------------------------------------------------------------------- binomial GLMM vs glmer
def test_cbpp_binomial_matches_glmer(cbpp_fit):
    ref = reference("shared/cbpp_binomial")
    beta = cbpp_fit.draws["beta"]
    for j, name in enumerate(ref["fixef_names"]):
        # default priors, Laplace MLE: posterior means within 3 MCSE + 0.2 SE, SDs within 25 %
        assert abs(beta[..., j].mean() - ref["fixef"][j]) < 3 * D.mcse_mean(beta[..., j]) + 0.2 * ref["se"][j], name
        assert beta[..., j].std() / ref["se"][j] == pytest.approx(1.0, abs=0.25), name
    assert min(_ranef_correlations(cbpp_fit, ref)) > 0.99
    assert cbpp_fit.sigma == 1.0 and "sigma" not in cbpp_fit.summary_table().index


def test_cbpp_posterior_predict_counts_and_reproducibility(cbpp_fit):
    cbpp = dataset("cbpp")
    ppd = cbpp_fit.posterior_predict(ndraws=200, seed=1)
    assert ppd.shape == (200, 56)
    assert np.all(ppd.to_numpy() == np.round(ppd.to_numpy()))
    assert np.all(ppd.to_numpy() <= cbpp["size"].to_numpy()[None, :])
    new = cbpp.iloc[:2][["period", "herd"]]
    with pytest.raises(DataError, match="trials"):
        cbpp_fit.posterior_predict(new)
    assert cbpp_fit.posterior_predict(new, trials=[10, 20], seed=1).max().max() <= 20
    again = bayes.glmer(
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        cbpp,
        family="binomial",
        draws=1000,
        warmup=500,
        chains=2,
        seed=3,
        **QUIET,
    )
    np.testing.assert_array_equal(again.draws["beta"], cbpp_fit.draws["beta"])
    np.testing.assert_array_equal(again.draws["b"][0], cbpp_fit.draws["b"][0])


# --------------------------------------------------------------------------- prior only
def test_prior_only_draws_from_the_priors():
    sleep = dataset("sleepstudy")
    fit = bayes.lmer(
        "Reaction ~ Days + (Days | Subject)",
        sleep,
        prior_only=True,
        draws=4000,
        chains=2,
        seed=5,
        priors={"fixef": {"Days": P.Normal(10, 3)}, "sd": P.HalfNormal(0, 20), "cor": P.LKJ(2)},
    )
    assert fit.prior_only and fit.stats is None
    days = fit.draws["beta"][..., 1].ravel()
    assert stats.kstest(days, stats.norm(10, 3).cdf).pvalue > 1e-3
    sd = fit.draws["sd"][0].reshape(-1, 2)
    assert stats.kstest(sd[:, 1], stats.halfnorm(0, 20).cdf).pvalue > 1e-3
    cor = fit.draws["cor"][0][..., 1, 0].ravel()
    assert stats.kstest((cor + 1) / 2, stats.beta(2, 2).cdf).pvalue > 1e-3
    b = fit.draws["b"][0].reshape(-1, 18, 2)
    assert np.std(b[:, :, 1] / sd[:, 1:2]) == pytest.approx(1.0, rel=0.02)
    ppd = fit.posterior_predict(ndraws=100, seed=1)
    assert ppd.shape == (100, 180) and np.isfinite(ppd.to_numpy()).all()
    assert "prior" in fit.to_idata().groups()
    with pytest.raises(ModelSpecError, match="improper"):
        bayes.lmer("Reaction ~ Days + (1 | Subject)", sleep, prior_only=True, priors={"fixef": P.Flat()})


# --------------------------------------------------------------------------- calibration
def _sbc_ranks(reps: int = 40) -> dict[str, np.ndarray]:
    """Ranks of ``reps`` prior draws among 100 thinned posterior draws each; ``"sigma*1.3"``
    ranks the true sigma among posterior sigma draws inflated by 30 % (a miscalibrated control)."""
    from mixedmodels.bayes.fit import sample
    from mixedmodels.families import get_family
    from mixedmodels.design.inputs import prepare_inputs

    rng = np.random.default_rng(2026)
    frame = pd.DataFrame(
        {"g": np.repeat([f"g{i}" for i in range(8)], 5), "x": np.tile(np.arange(5.0), 8), "y": rng.normal(size=40)}
    )
    priors = {"fixef": P.Normal(0, 2), "sd": P.HalfNormal(0, 1), "sigma": P.HalfNormal(0, 1)}
    model = BayesModel.build(prepare_inputs("y ~ x + (1 | g)", frame), get_family("gaussian"), priors)
    truth = model.prior_draws(rng, 1, reps)
    x, refs = model.inputs.fixed.matrix, model.inputs.terms[0].refs
    ranks: dict[str, list] = {"(Intercept)": [], "x": [], "sd": [], "sigma": [], "sigma*1.3": []}
    for r in range(reps):
        beta, b, sigma = truth["beta"][0, r], truth["b"][0][0, r, :, 0], truth["sigma"][0, r]
        y = x @ beta + b[refs] + sigma * rng.normal(size=40)
        fit_r = replace(model, data={**model.data, "y": y})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            post = sample(fit_r, draws=200, warmup=200, chains=1, seed=r, progress=False)
        thin = slice(None, None, 2)  # 100 nearly independent draws
        values = {
            "(Intercept)": post.draws["beta"][0, thin, 0],
            "x": post.draws["beta"][0, thin, 1],
            "sd": post.draws["sd"][0][0, thin, 0],
            "sigma": post.draws["sigma"][0, thin],
            "sigma*1.3": post.draws["sigma"][0, thin] * 1.3,
        }
        true = {"(Intercept)": beta[0], "x": beta[1], "sd": truth["sd"][0][0, r, 0], "sigma": sigma, "sigma*1.3": sigma}
        for key in ranks:
            ranks[key].append(int(np.sum(values[key] < true[key])))
    return {k: np.array(v) for k, v in ranks.items()}


def _uniform_p(ranks: np.ndarray, bins: int = 5) -> float:
    counts = np.histogram(ranks, bins=bins, range=(0, 101))[0]
    return float(stats.chisquare(counts).pvalue)


def test_simulation_based_calibration():
    """Talts et al. (2018): ranks of prior draws among posterior draws are uniform when the sampler is right."""
    ranks = _sbc_ranks()
    control = ranks.pop("sigma*1.3")
    for name, r in ranks.items():
        assert _uniform_p(r) > 1e-3, (name, np.histogram(r, bins=5, range=(0, 101))[0])
    # the same check rejects a posterior whose sigma draws are 30 % too large
    assert _uniform_p(control) < 1e-3


# --------------------------------------------------------------------------- warnings, errors, laziness
def test_sampling_warnings_name_the_problem(sleep_fit):
    from mixedmodels.bayes.fit import _warn

    fit, _ = sleep_fit
    stats_ = dict(fit.stats)
    stats_["diverging"] = stats_["diverging"].copy()
    stats_["diverging"][0, :7] = True
    stats_["tree_depth"] = stats_["tree_depth"].copy()
    stats_["tree_depth"][1, :3] = 10
    draws = dict(fit.draws)
    beta = draws["beta"].copy()
    beta[1, :, 1] += 5.0  # chain 2 disagrees about Days
    draws["beta"] = beta
    broken = replace(fit, stats=stats_, draws=draws)
    with pytest.warns(bayes.SamplingWarning) as record:
        _warn(broken)
    messages = " | ".join(str(w.message) for w in record)
    assert "7 of 6000 transitions after warmup were divergent" in messages and "target_accept" in messages
    assert "3 of 6000 transitions hit the maximum tree depth" in messages
    assert "R-hat is above 1.01" in messages and "for Days" in messages
    assert issubclass(bayes.SamplingWarning, mm.MixedModelsWarning)


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        ({"priors": {"fixef": {"Dayz": P.Normal()}}}, ModelSpecError, "Dayz"),
        ({"priors": {"sd": {"Subjekt": P.HalfNormal(1)}}}, ModelSpecError, "Subjekt"),
        ({"priors": {"sd": P.Normal(0, 1)}}, ModelSpecError, "positive"),
        ({"priors": {"cor": {"Subject": P.HalfNormal(1)}}}, ModelSpecError, "LKJ"),
        ({"priors": {"random": P.Normal()}}, ModelSpecError, "unknown prior class"),
        ({"draws": 0}, ModelSpecError, "draws"),
        ({"chains": 1.5}, ModelSpecError, "chains"),
        ({"seed": -1}, ModelSpecError, "seed"),
        ({"target_accept": 1.2}, ModelSpecError, "target_accept"),
    ],
)
def test_bad_arguments_raise_before_sampling(kwargs, error, message):
    with pytest.raises(error, match=message):
        bayes.lmer("Reaction ~ Days + (Days | Subject)", dataset("sleepstudy"), **kwargs)


def test_family_errors():
    cbpp = dataset("cbpp")
    with pytest.raises(ModelSpecError, match="no residual SD"):
        bayes.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, priors={"sigma": P.HalfNormal(1)})
    with pytest.raises(ModelSpecError, match="Gamma"):
        bayes.glmer("Reaction ~ Days + (1 | Subject)", dataset("sleepstudy"), family="Gamma")
    with pytest.raises(DataError, match="cbind"):
        bayes.lmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)


def test_import_is_lazy():
    code = (
        "import sys, mixedmodels.bayes as b, mixedmodels.bayes.priors; "
        "assert 'jax' not in sys.modules and 'numpyro' not in sys.modules; "
        "assert issubclass(b.SamplingWarning, Warning); b.lmer; assert 'jax' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**__import__("os").environ})


# --------------------------------------------------------------------------- pooling
def test_bayesian_pooling_comparison(sleep_fit):
    from mixedmodels.bayes.pooling import compare_pooling_bayes

    fit, _ = sleep_fit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayes.SamplingWarning)
        cmp = compare_pooling_bayes(fit)
    table = cmp.table
    assert list(table.columns) == ["group", "n", "approach", "term", "estimate", "se", "lower", "upper"]
    assert len(table) == 18 * 3 * 2
    freq = mm.compare_pooling("Reaction ~ Days + (Days | Subject)", dataset("sleepstudy"))
    assert list(table[["group", "approach", "term"]].itertuples(index=False)) == list(
        freq.table[["group", "approach", "term"]].itertuples(index=False)
    )
    pd.testing.assert_frame_equal(
        cmp.estimates("partial"), fit.coef()["Subject"].rename_axis("Subject"), check_names=False
    )
    # diffuse priors: complete and no pooling are least squares up to Monte-Carlo error (posterior SDs / 10)
    for approach in ("complete", "no"):
        ours, theirs = cmp.estimates(approach), freq.estimates(approach)
        se = table[table["approach"] == approach].pivot(index="group", columns="term", values="se")
        se = se.reindex(index=ours.index, columns=ours.columns)
        assert (np.abs(ours - theirs) < 0.1 * se).all().all(), approach
    assert cmp.estimates("no").loc["308"].to_numpy() == pytest.approx([244.19, 21.76], abs=1.5)
    shrink = cmp.shrinkage
    assert set(shrink["term"]) == {"(Intercept)", "Days"}
    np.testing.assert_allclose(
        shrink["partial_pooling"],
        cmp.table.query("approach == 'partial'")
        .set_index(["group", "term"])
        .loc[list(zip(shrink["group"], shrink["term"])), "estimate"],
    )
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    fig = cmp.plot_shrinkage()
    assert fig.axes and fig.axes[0].get_xlabel() == "(Intercept)"

"""Structured random-effects covariances (issue #19): diag(), cs(), ar1() against glmmTMB.

References: tests/reference/glmmtmb_covstruct.json (make_glmmtmb_covstruct.R, glmmTMB 1.1.5),
ML and REML fits on sleepstudy.  Tolerances are the issue's: the log-likelihood no worse than
glmmTMB's by 1e-6 relative (we maximise the same likelihood; a better optimum is allowed),
fixed effects within 1 % of their standard error, standard deviations, correlations and sigma
within 1 % relative.  Standard errors and conditional SDs are compared with lme4's definitions
computed from the glmmTMB fits (``se_given_varpar``, ``condsd``): glmmTMB's own add the
uncertainty of the variance parameters.  ``ar1_days`` (one observation per subject and day) is
degenerate (sigma -> 0) and not a target; ``ar1_pairs`` is the well-posed AR(1) reference.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import mixedmodels as mm
from conftest import fitted_issue19, issue19_dataset, reference

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel

FORMULAS = {
    "diag": "Reaction ~ Days + diag(Days | Subject)",
    "us": "Reaction ~ Days + (Days | Subject)",
    "cs": "Reaction ~ Days + cs(0 + Phase3 | Subject)",
    "ar1_pairs": "Reaction ~ Days + ar1(0 + DayPair | Subject)",
}
CASES = [(name, reml) for name in FORMULAS for reml in (False, True)]
REL = 0.01  # the issue's 1 %


def _case(name: str, reml: bool) -> dict:
    return reference("glmmtmb_covstruct")["cases"][f"{name}_{'reml' if reml else 'ml'}"]


def _fit(name: str, reml: bool):
    return fitted_issue19("lmer", FORMULAS[name], "sleepstudy", REML=reml)


@pytest.mark.parametrize("name,reml", CASES)
def test_loglik_no_worse_than_glmmtmb(name, reml):
    ref, fit = _case(name, reml), _fit(name, reml)
    assert fit.loglik >= ref["logLik"] - 1e-6 * abs(ref["logLik"])
    assert fit.npar == ref["df"]
    assert fit.aic == pytest.approx(ref["AIC"], rel=1e-6)


@pytest.mark.parametrize("name,reml", CASES)
def test_fixed_effects_within_one_percent_of_se(name, reml):
    ref, fit = _case(name, reml), _fit(name, reml)
    se = np.array(ref["se_given_varpar"])
    assert np.all(np.abs(fit.beta - np.array(ref["fixef"])) <= REL * se)
    np.testing.assert_allclose(fit.se.to_numpy(), se, rtol=REL)


@pytest.mark.parametrize("name,reml", CASES)
def test_variance_components_and_correlations(name, reml):
    ref, fit = _case(name, reml), _fit(name, reml)
    vc = ref["varcorr"]["Subject"]
    cov = fit.covariances["Subject"]
    sd = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(sd, vc["stddev"], rtol=REL)
    corr = cov / np.outer(sd, sd)
    np.testing.assert_allclose(
        corr, np.array(vc["correlation"], dtype=float), rtol=REL, atol=1e-12 if name == "diag" else 0
    )
    assert fit.sigma == pytest.approx(ref["sigma"], rel=REL)
    if "rho" in vc:
        assert corr[1, 0] == pytest.approx(vc["rho"], rel=REL)


@pytest.mark.parametrize("name,reml", CASES)
def test_conditional_modes_and_variances(name, reml):
    """ranef within 1 % of their conditional SD; condsd (lme4's definition, from glmmTMB) within 1 %."""
    ref, fit = _case(name, reml), _fit(name, reml)
    r = ref["ranef"]["Subject"]
    table = fit.ranef(condvar=True)["Subject"]
    assert list(table.index) == r["levels"]
    condsd = np.array(r["condsd"], dtype=float)
    np.testing.assert_array_less(np.abs(table["condval"].to_numpy() - np.array(r["values"])), REL * condsd)
    np.testing.assert_allclose(table["condsd"].to_numpy(), condsd, rtol=REL)


@pytest.mark.parametrize("name", ["diag", "us"])
def test_diag_and_us_are_lme4s_models(name):
    """diag(Days | Subject) is lme4's (Days || Subject): the same likelihood and theta."""
    for reml in (False, True):
        lme4 = _case(name, reml)["lme4"]
        fit = _fit(name, reml)
        assert fit.loglik == pytest.approx(lme4["logLik"], abs=1e-6)
        np.testing.assert_allclose(fit.theta, lme4["theta"], rtol=1e-4)


def test_structured_theta_names_and_bounds():
    cs, ar1 = _fit("cs", True), _fit("ar1_pairs", True)
    assert cs.model.theta_names == ["Subject.Phase3d0_2", "Subject.Phase3d3_5", "Subject.Phase3d6_9", "Subject.rho"]
    assert ar1.model.theta_names == ["Subject.sd", "Subject.phi"]
    np.testing.assert_array_equal(cs.model.theta_lower, [0, 0, 0, -0.5])
    np.testing.assert_array_equal(cs.model.theta_upper, [np.inf, np.inf, np.inf, 1])
    np.testing.assert_array_equal(ar1.model.theta_upper, [np.inf, 1])
    assert ar1.theta[1] == pytest.approx(_case("ar1_pairs", True)["varcorr"]["Subject"]["rho"], rel=REL)


def test_summary_shows_the_structure():
    text = str(_fit("ar1_pairs", True).summary())
    assert "0.85 (ar1)" in text
    assert "0.92 (cs)" in str(_fit("cs", True).summary())
    diag = str(_fit("diag", True).summary())
    assert " Groups   Name        Variance Std.Dev.\n" in diag  # no Corr column


def test_diag_has_no_covariance_rows():
    vc = _fit("diag", True).varcorr
    assert vc["var2"].isna().all()
    assert len(vc) == 3


def test_predict_and_simulate_follow_the_structure():
    fit = _fit("ar1_pairs", True)
    np.testing.assert_allclose(fit.predict(issue19_dataset("sleepstudy")).to_numpy(), fit.fitted.to_numpy(), rtol=1e-12)
    sims = fit.simulate(nsim=2000, seed=1)
    # the simulated responses' covariance across subjects: days 0 and 2 are one DayPair apart
    by_day = sims.groupby(issue19_dataset("sleepstudy")["Days"].to_numpy()).apply(lambda s: s.to_numpy().ravel())
    cov = fit.covariances["Subject"]
    # Var(y) on one day = sd^2 + sigma^2; 2000 x 18 draws give ~1 % Monte Carlo error
    assert np.var(by_day[0]) == pytest.approx(cov[0, 0] + fit.sigma**2, rel=0.05)


def test_glmer_diag_is_glmers_uncorrelated_terms():
    """The structures reach glmer through the same layouts: diag(1 + x | g) = (1 + x || g)."""
    a = fitted_issue19(
        "glmer", "TICKS ~ YEAR + cHEIGHT + diag(1 + cHEIGHT | LOCATION)", "grouseticks", family="poisson"
    )
    b = fitted_issue19("glmer", "TICKS ~ YEAR + cHEIGHT + (1 + cHEIGHT || LOCATION)", "grouseticks", family="poisson")
    assert a.loglik == pytest.approx(b.loglik, abs=1e-6)
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-4, atol=1e-6)


def test_glmer_cs_fits():
    fit = fitted_issue19("glmer", "TICKS ~ YEAR + cHEIGHT + cs(0 + YEAR | LOCATION)", "grouseticks", family="poisson")
    assert fit.optinfo.converged
    assert (
        fit.loglik
        > fitted_issue19("glmer", "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)", "grouseticks", family="poisson").loglik
    )
    assert -0.5 < fit.theta[-1] < 1


def test_profile_refuses_structured_terms():
    with pytest.raises(mm.MixedModelsError, match=r"cs\(\) structure"):
        _fit("cs", True).confint()


def test_degenerate_ar1_days_is_refused_as_lme4_refuses_it():
    """ar1(0 + DayO | Subject) has one observation per subject and level (180 random effects for
    180 rows): glmmTMB drifts to sigma -> 0 (the reference's ar1_days, flagged "not a target");
    lme4's rule (random effects < observations) refuses the model with a message naming the term."""
    assert "DEGENERATE" in _case("ar1_days", True)["note"]
    with pytest.raises(
        mm.ModelSpecError, match=r"number of random effects \(=180\) for term ar1\(0 \+ DayO \| Subject\)"
    ):
        mm.lmer("Reaction ~ Days + ar1(0 + DayO | Subject)", issue19_dataset("sleepstudy"))


def test_wald_intervals_and_influence_work_with_structures():
    fit = _fit("cs", True)
    wald = fit.confint(method="wald")
    assert list(wald.index[-2:]) == ["(Intercept)", "Days"]
    assert wald.loc["Days"].notna().all()
    refits = fit.influence(group="Subject")
    assert refits.converged.all() and refits.dfbeta().shape == (18, 2)


@pytest.mark.parametrize("reml", [False, True], ids=["ML", "REML"])
@pytest.mark.parametrize("name", ["diag", "cs", "ar1_pairs"])
def test_structured_terms_are_fitted_by_bfgs_to_bobyqas_optimum_or_better(name, reml):
    """Structured terms have the analytic gradient (through d lambda / d theta) and are fitted by
    BFGS; BOBYQA's optimum is not better by more than its own tolerance (ftol_abs 1e-6 on the
    criterion: the fits agree to the tolerance the optimizers stop at)."""
    fit = _fit(name, reml)
    assert fit.optinfo.optimizer.startswith("BFGS")
    assert fit.optinfo.converged
    model = mm.LinearMixedModel.from_formula(FORMULAS[name], issue19_dataset("sleepstudy"), REML=reml)
    bobyqa = model.fit(settings=mm.OptimizerSettings(optimizer="bobyqa"))
    assert bobyqa.optinfo.optimizer == "NLopt LN_BOBYQA"
    assert fit.optinfo.fmin <= bobyqa.optinfo.fmin + 1e-6
    np.testing.assert_allclose(fit.theta, bobyqa.theta, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("name", ["diag", "cs", "ar1_pairs"])
def test_structured_terms_refuse_newton_by_name(name):
    """Newton's method needs the exact Hessian, which structures do not give: refused, naming the structure."""
    model = mm.LinearMixedModel.from_formula(FORMULAS[name], issue19_dataset("sleepstudy"), REML=False)
    with pytest.raises(mm.ModelSpecError, match=f"optimizer='newton'.*{name.split('_')[0]}"):
        model.fit(settings=mm.OptimizerSettings(optimizer="newton"))
    assert model.fit(settings=mm.OptimizerSettings(optimizer="bfgs")).optinfo.optimizer.startswith("BFGS")


def test_unstructured_terms_keep_the_derivative_based_fit():
    assert _fit("us", False).optinfo.optimizer != "NLopt LN_BOBYQA"


def _ar1_boundary_data():
    """12 groups x 6 times, a random intercept (SD 2) and slope (SD 0.3) and AR(1) errors (phi 0.95) whose SD
    triples after time 2: ar1(0 + tp | g) over three time pairs has its optimum at phi = 1 (the bound), and
    BFGS from the start ends at the stationary point SD = 0 (seed 1 of a simulation study of the structures)."""
    import pandas as pd

    rng = np.random.default_rng(1)
    ng, nt = 12, 6
    g, t = np.repeat(np.arange(ng), nt), np.tile(np.arange(nt), ng)
    sd_intercept, sd_slope = rng.choice([0.0, 0.5, 2.0]), rng.choice([0.0, 0.3])
    phi = rng.choice([0.0, 0.5, 0.95, -0.5])
    intercepts, slopes = rng.normal(0, sd_intercept, ng), rng.normal(0, sd_slope, ng)
    e = np.zeros((ng, nt))
    for i in range(ng):
        z = rng.normal(size=nt)
        e[i, 0] = z[0]
        for k in range(1, nt):
            e[i, k] = phi * e[i, k - 1] + np.sqrt(1 - phi**2) * z[k]
    y = 1 + 0.5 * t + intercepts[g] + slopes[g] * t + e.ravel() * np.where(t < 3, 1.0, rng.choice([1.0, 3.0]))
    tp = pd.Categorical((t // 2).astype(str), categories=["0", "1", "2"], ordered=True)
    return pd.DataFrame(dict(y=y, t=t.astype(float), g=pd.Categorical(g.astype(str)), tp=tp))


@pytest.mark.parametrize("reml", [False, True], ids=["ML", "REML"])
def test_bfgs_at_a_structures_bound_is_checked_by_bobyqa(reml):
    """Where BFGS ends at a structured term's bound (here SD 0, a stationary point of |x|), BOBYQA
    fits from the start too and the better optimum is kept: never worse than BOBYQA alone."""
    data = _ar1_boundary_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mm.lmer("y ~ t + ar1(0 + tp | g)", data, REML=reml)
        bobyqa = mm.lmer("y ~ t + ar1(0 + tp | g)", data, REML=reml, settings=mm.OptimizerSettings(optimizer="bobyqa"))
    assert fit.optinfo.fmin <= bobyqa.optinfo.fmin + 1e-6
    assert fit.theta[0] > 0.1

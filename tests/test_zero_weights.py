"""Prior weights of zero, in every fitter, against R (issue 22, item 2).

tests/reference/make_zero_weights.R fits sleepstudy with weights ``wz`` (0 on every tenth
row and on all of Subject 372's rows, else ``1 + Days %% 3``) and cbpp with weights ``cw``
(0 on rows 1, 5, 9 and 28, the last being herd 8's only row).  The semantics (docs/guide/formulas.md,
"Weights"): a zero-weight row contributes nothing to any estimate -- R's lm, glm and lme4's
glmer give exactly the fit to the other rows (the reference checks this), and lme4's lmer,
whose criterion is infinite with a zero weight, is compared with its fit to the rows of
positive weight; fitted values and response residuals exist for every row, pearson and
deviance residuals are 0 there; ``nobs`` counts the rows as R does: lm and glm leave them
out, lmer and glmer count every row of the model frame (so do df_resid and BIC).

Tolerances: estimates computed in closed form or by IRLS to convergence (lm, glm) agree to
1e-8 relative; optimized fits use the project's lme4 criteria (tests/test_lmm.py,
tests/test_glmm.py): criterion within 1e-6 relative, fixed effects within 1 % of their SE,
SEs, SDs and sigma within 1 %, fitted values and residuals within 1 % of sigma (lmer) or
1e-3 (glmer: O(1) residuals from parameters that agree to ~1e-5).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm

from conftest import dataset, reference

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel

REL = 0.01
REF = reference("zero_weights")
SLEEP = "Reaction ~ Days + (Days | Subject)"
CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
GLM_TYPES = ("deviance", "pearson", "working", "response")


def _sleep_weights() -> np.ndarray:
    data = dataset("sleepstudy")
    w = 1.0 + data["Days"].to_numpy() % 3
    zero = (np.arange(len(data)) % 10 == 0) | (data["Subject"].astype(str) == "372").to_numpy()
    return np.where(zero, 0.0, w)


def _cbpp_weights() -> np.ndarray:
    return np.where(np.isin(np.arange(56), np.asarray(REF["zero_rows_cbpp"]) - 1), 0.0, 1.0)


def _quiet(fun, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.MixedModelsWarning)
        return fun(*args, **kwargs)


def test_the_weights_are_those_of_the_r_script():
    assert list(np.flatnonzero(_sleep_weights() == 0) + 1) == REF["zero_rows_sleepstudy"]
    for name in ("lm", "glm_binomial", "glm_gamma", "glmer_binomial", "glmer_gamma"):
        assert REF[name]["same_as_subset"] is True, name  # R: zero-weight rows change no estimate


# --- lmer --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lmer_fit():
    return _quiet(mm.lmer, SLEEP, dataset("sleepstudy"), weights=_sleep_weights())


def test_lmer_estimates_are_those_without_the_zero_weight_rows(lmer_fit):
    ref = REF["lmer"]
    assert ref["lme4_weighted"]["REMLcrit"] == "Inf"  # what lme4 itself does with a zero weight
    assert lmer_fit.objective <= ref["REMLcrit"] * (1 + 1e-6)
    assert lmer_fit.objective == pytest.approx(ref["REMLcrit"], rel=1e-6)
    np.testing.assert_allclose(lmer_fit.beta, ref["fixef"], atol=REL * min(ref["se"]))
    np.testing.assert_allclose(lmer_fit.se, ref["se"], rtol=REL)
    assert lmer_fit.sigma == pytest.approx(ref["sigma"], rel=REL)
    cov = lmer_fit.covariances["Subject"]
    lam = np.array([[ref["theta"][0], 0.0], [ref["theta"][1], ref["theta"][2]]])
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), ref["sigma"] * np.sqrt(np.diag(lam @ lam.T)), rtol=REL)
    # Subject 372 has no informative row: its random effects are exactly the prior mean
    np.testing.assert_array_equal(lmer_fit.ranef()["Subject"].loc["372"].to_numpy(), 0.0)


def test_lmer_counts_every_row_as_lme4(lmer_fit):
    ref = REF["lmer"]
    assert lmer_fit.nobs == ref["lme4_weighted"]["nobs"] == 180
    assert lmer_fit.df_resid == ref["lme4_weighted"]["df_residual"] == 174
    assert lmer_fit.model.n_likelihood == ref["subset_nobs"] == 153
    assert lmer_fit.loglik == pytest.approx(ref["logLik"], rel=1e-6)
    assert lmer_fit.bic == pytest.approx(-2 * ref["logLik"] + np.log(180) * ref["npar"], rel=1e-6)
    assert "Number of obs: 180" in str(lmer_fit.summary())


def test_lmer_fitted_values_and_residuals_for_every_row(lmer_fit):
    ref, zero = REF["lmer"], _sleep_weights() == 0
    np.testing.assert_allclose(lmer_fit.fitted, ref["fitted"], atol=REL * ref["sigma"])
    np.testing.assert_allclose(lmer_fit.residuals(), ref["resid_response"], atol=REL * ref["sigma"])
    pearson = lmer_fit.residuals("pearson").to_numpy()
    np.testing.assert_allclose(pearson, ref["resid_pearson"], atol=REL * ref["sigma"])
    assert np.all(pearson[zero] == 0) and np.all(lmer_fit.residuals().to_numpy()[zero] != 0)


def test_lmer_ml_and_satterthwaite_use_the_rows_with_weight():
    ref = REF["lmer"]
    ml = _quiet(mm.lmer, SLEEP, dataset("sleepstudy"), weights=_sleep_weights(), REML=False)
    assert ml.objective == pytest.approx(ref["ml_deviance"], rel=1e-6)
    # Satterthwaite's df from the same model with the zero-weight rows removed: the same numbers
    data, w = dataset("sleepstudy"), _sleep_weights()
    with_zero = _quiet(mm.lmer, SLEEP, data, weights=w).coef_table(ddf="satterthwaite")
    without = _quiet(mm.lmer, SLEEP, data[w > 0], weights=w[w > 0]).coef_table(ddf="satterthwaite")
    np.testing.assert_allclose(with_zero["df"], without["df"], rtol=1e-4)


# --- lm and glm ---------------------------------------------------------------------------
def _check_fixed(fit, ref, residual_types, rtol):
    assert fit.nobs == ref["nobs"] and fit.df_resid == ref["df_residual"]
    np.testing.assert_allclose(fit.beta, ref["coef"], rtol=rtol)
    np.testing.assert_allclose(fit.se, ref["se"], rtol=rtol)
    for name, value in (("loglik", "logLik"), ("aic", "AIC"), ("bic", "BIC"), ("deviance", "deviance")):
        assert getattr(fit, name) == pytest.approx(ref[value], rel=rtol), name
    np.testing.assert_allclose(fit.fitted, ref["fitted"], rtol=rtol)
    for kind in residual_types:
        np.testing.assert_allclose(fit.residuals(kind), ref[f"resid_{kind}"], rtol=rtol, atol=rtol, err_msg=kind)


def test_lm_matches_r():
    fit = mm.lm("Reaction ~ Days", dataset("sleepstudy"), weights=_sleep_weights())
    _check_fixed(fit, REF["lm"], ("response", "pearson"), 1e-8)
    assert fit.sigma == pytest.approx(REF["lm"]["sigma"], rel=1e-8)


@pytest.mark.parametrize("name", ["glm_binomial", "glm_gamma"])
def test_glm_matches_r(name):
    if name == "glm_binomial":
        fit = mm.glm(
            "cbind(incidence, size - incidence) ~ period", dataset("cbpp"), "binomial", weights=_cbpp_weights()
        )
    else:
        fit = mm.glm("Reaction ~ Days", dataset("sleepstudy"), mm.families.Gamma(link="log"), weights=_sleep_weights())
    _check_fixed(fit, REF[name], GLM_TYPES, 1e-6)  # IRLS to R's relative deviance tolerance 1e-8
    if name == "glm_gamma":  # sigma is sqrt(summary(glm)$dispersion), R's Pearson estimate without zero weights
        assert fit.dispersion == pytest.approx(REF[name]["dispersion"], rel=1e-6)
    # R's BIC(glm) takes log(every row), its nobs() only the rows of non-zero weight
    assert REF[name]["BIC"] == pytest.approx(-2 * REF[name]["logLik"] + np.log(len(fit.fitted)) * fit.npar, rel=1e-12)


# --- glmer ---------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=["glmer_binomial", "glmer_gamma"])
def glmer_case(request):
    if request.param == "glmer_binomial":
        fit = _quiet(mm.glmer, CBPP, dataset("cbpp"), "binomial", weights=_cbpp_weights())
        zero = _cbpp_weights() == 0
    else:
        fit = _quiet(
            mm.glmer,
            "Reaction ~ Days + (1 | Subject)",
            dataset("sleepstudy"),
            mm.families.Gamma(link="log"),
            weights=_sleep_weights(),
        )
        zero = _sleep_weights() == 0
    return fit, REF[request.param], zero


def test_glmer_matches_lme4(glmer_case):
    fit, ref, _ = glmer_case
    assert fit.loglik >= ref["logLik"] - 1e-6 * abs(ref["logLik"])
    assert fit.loglik == pytest.approx(ref["logLik"], rel=1e-6)
    np.testing.assert_allclose(fit.beta, ref["fixef"], atol=REL * min(ref["se"]))
    np.testing.assert_allclose(fit.se, ref["se"], rtol=REL)
    np.testing.assert_allclose(fit.theta, ref["theta"], rtol=REL)
    assert fit.nobs == ref["nobs"] and fit.df_resid == ref["df_residual"]
    assert fit.aic == pytest.approx(ref["AIC"], rel=1e-6) and fit.bic == pytest.approx(ref["BIC"], rel=1e-6)
    assert fit.deviance == pytest.approx(ref["deviance"], rel=1e-5)


def test_glmer_residuals_for_every_row(glmer_case):
    fit, ref, zero = glmer_case
    np.testing.assert_allclose(fit.fitted, ref["fitted"], rtol=1e-3)
    for kind in GLM_TYPES:
        values = fit.residuals(kind).to_numpy()
        np.testing.assert_allclose(values, ref[f"resid_{kind}"], rtol=1e-3, atol=1e-3, err_msg=kind)
        if kind in ("deviance", "pearson"):
            assert np.all(values[zero] == 0), kind


def test_glmer_dispersion_leaves_zero_weight_rows_out():
    """Deliberately not lme4's: lme4 divides sum(r_pearson^2) by every row (0.1272 here, 0.1380 without
    the zero-weight rows), so its sigma moves when rows of weight 0 are added; R's glm leaves them out."""
    ref = REF["glmer_gamma"]
    fit = _quiet(
        mm.glmer,
        "Reaction ~ Days + (1 | Subject)",
        dataset("sleepstudy"),
        mm.families.Gamma(link="log"),
        weights=_sleep_weights(),
    )
    assert fit.sigma == pytest.approx(ref["sigma_subset"], rel=REL)
    assert ref["sigma_lme4"] == pytest.approx(ref["sigma_subset"] * np.sqrt(ref["subset_nobs"] / ref["nobs"]), rel=1e-3)


# --- every fitter agrees, and all-zero weights are refused ----------------------------------------
def test_every_fitter_equals_its_fit_without_the_zero_weight_rows():
    data, w = dataset("sleepstudy"), _sleep_weights()
    kept = w > 0
    fitters = {
        "lmer": lambda d, ww: mm.lmer(SLEEP, d, weights=ww),
        "glmer": lambda d, ww: mm.glmer(
            "Reaction ~ Days + (1 | Subject)", d, mm.families.Gamma(link="log"), weights=ww
        ),
        "lm": lambda d, ww: mm.lm("Reaction ~ Days", d, weights=ww),
        "glm": lambda d, ww: mm.glm("Reaction ~ Days", d, mm.families.Gamma(link="log"), weights=ww),
    }
    for name, fitter in fitters.items():
        full, part = _quiet(fitter, data, w), _quiet(fitter, data[kept], w[kept])
        assert full.loglik == pytest.approx(part.loglik, rel=1e-7), name
        np.testing.assert_allclose(full.beta, part.beta, rtol=1e-5, err_msg=name)
        assert full.sigma == pytest.approx(part.sigma, rel=1e-4), name
        pd.testing.assert_series_equal(full.fitted[kept], part.fitted, rtol=1e-4, check_names=False)


@pytest.mark.parametrize(
    "fitter",
    [
        lambda w: mm.lmer(SLEEP, dataset("sleepstudy"), weights=w),
        lambda w: mm.lm("Reaction ~ Days", dataset("sleepstudy"), weights=w),
        lambda w: mm.glm("Reaction ~ Days", dataset("sleepstudy"), "Gamma", weights=w),
        lambda w: mm.glmer("Reaction ~ Days + (1 | Subject)", dataset("sleepstudy"), "Gamma", weights=w),
    ],
    ids=["lmer", "lm", "glm", "glmer"],
)
def test_all_weights_zero_is_a_clear_error(fitter):
    """lme4 stops with "Downdated VtV is not positive definite" (see the reference); say what is wrong."""
    assert "VtV" in REF["all_weights_zero"]["lmer"]
    with pytest.raises(mm.DataError, match="every weight is zero"):
        fitter(np.zeros(180))


def test_simulate_and_bootstrap_with_zero_weights(lmer_fit):
    """A zero-weight row has infinite residual variance: simulate() gives NaN there (as R's
    rnorm(sd = sigma / sqrt(0))); the bootstrap keeps the observed value for those rows, which
    carry no information, so its refits are finite."""
    zero = _sleep_weights() == 0
    sims = lmer_fit.simulate(nsim=2, seed=3)
    assert sims[zero].isna().all().all() and sims[~zero].notna().all().all()
    boot = _quiet(mm.bootstrap, lmer_fit, lambda f: f.sigma, nsim=3, seed=1, progress=False)
    assert np.isfinite(boot.replicates.to_numpy()).all()

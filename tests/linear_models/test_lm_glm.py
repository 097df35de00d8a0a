"""lm and glm against R's lm/glm (tests/reference/linear_models.json, make_compare_predict.R).

Least squares and IRLS have closed forms / converge to machine precision, so
the tolerances are tight: estimates, SEs, log-likelihoods and deviances within
1e-8 relative; R's printed summaries line by line (after the Call lines,
which name R's data object).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import dataset, reference
from mixedmodels.linear_models.model import glm, lm
from mixedmodels.linear_models.results import LmResults

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel

RTOL = 1e-8


def _sleepstudy() -> pd.DataFrame:
    data = dataset("sleepstudy").copy()
    data["w"] = 1 + data["Days"].astype(int) % 3
    data["Phase"] = pd.Categorical(np.where(data["Days"] < 5, "early", "late"))
    return data


LM_CASES = {
    "lm_simple": ("Reaction ~ Days", {}),
    "lm_weights": ("Reaction ~ Days + Subject", {"weights": "w"}),
    "lm_no_pooling": ("Reaction ~ 0 + Subject", {}),
}

GLM_CASES = {
    "glm_binomial_cbind": ("cbind(incidence, size - incidence) ~ period", "cbpp", "binomial", None),
    "glm_binomial_prop": ("incidence / size ~ period", "cbpp", "binomial", "size"),
    "glm_poisson": ("TICKS ~ YEAR + scale(HEIGHT)", "grouseticks", "poisson", None),
    "glm_gamma_log": ("Reaction ~ Days", "sleepstudy", ("Gamma", "log"), None),
    "glm_gaussian": ("Reaction ~ Days", "sleepstudy", "gaussian", None),
    "glm_probit_binary": ("Phase ~ Reaction", "sleepstudy", ("binomial", "probit"), None),
}


@lru_cache(maxsize=None)
def lm_fit(name: str) -> LmResults:
    formula, options = LM_CASES[name]
    data = _sleepstudy()
    weights = data[options["weights"]].to_numpy() if "weights" in options else None
    return lm(formula, data, weights=weights)


@lru_cache(maxsize=None)
def glm_fit(name: str):
    formula, data_name, family, weights = GLM_CASES[name]
    data = _sleepstudy() if data_name == "sleepstudy" else dataset(data_name)
    if isinstance(family, tuple):
        family = mm.families.get_family(family[0], link=family[1])
    return glm(formula, data, family, weights=None if weights is None else data[weights])


def _close(actual, expected, rtol=RTOL, atol=0.0):
    np.testing.assert_allclose(np.asarray(actual, dtype=float), np.asarray(expected, dtype=float), rtol=rtol, atol=atol)


def _body(lines: list[str]) -> list[str]:
    """Summary lines from the first blank line after 'Call:' on, right-stripped."""
    start = next(i for i, line in enumerate(lines) if i > 2 and line.strip() == "")
    return [line.rstrip() for line in lines[start:]]


# --- lm -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(LM_CASES))
def test_lm_matches_r(name):
    ref, fit = reference("linear_models")[name], lm_fit(name)
    assert fit.fixef_names == ref["coef_names"]
    _close(fit.beta, ref["coef"], atol=1e-9)
    _close(fit.se, ref["se"])
    table = fit.coef_table()
    _close(table["t value"], ref["stat"])
    _close(table["Pr(>|t|)"], ref["p"], rtol=1e-6)
    _close(fit.sigma, ref["sigma"])
    assert fit.df_resid == ref["df_residual"] and fit.nobs == ref["nobs"] and fit.npar == ref["df"]
    _close(
        [fit.loglik, fit.loglik_at(REML=True), fit.aic, fit.bic, fit.deviance],
        [ref["logLik"], ref["logLik_REML"], ref["AIC"], ref["BIC"], ref["deviance"]],
    )
    _close(fit.vcov.to_numpy(), ref["vcov"], atol=1e-10)
    _close(fit.fitted.to_numpy()[:10], ref["fitted_head"])
    _close(fit.residuals().to_numpy()[:10], ref["resid_head"], atol=1e-9)


@pytest.mark.parametrize("name", ["lm_simple", "lm_weights"])
def test_lm_fit_statistics(name):
    ref, fit = reference("linear_models")[name], lm_fit(name)
    _close([fit.r_squared, fit.adj_r_squared], [ref["r_squared"], ref["adj_r_squared"]])
    _close(fit.fstatistic, ref["fstatistic"])


@pytest.mark.parametrize("name", ["lm_simple", "lm_weights"])
def test_lm_summary_prints_like_r(name):
    ref, fit = reference("linear_models")[name], lm_fit(name)
    assert _body(fit.summary().lines()) == _body(ref["summary_text"])


def test_lm_predict_newdata():
    ref = reference("linear_models")["lm_simple"]["predict_newdata"]
    predicted = lm_fit("lm_simple").predict(pd.DataFrame({"Days": ref["Days"]}))
    _close(predicted, ref["fit"])


def test_lm_leaves_data_alone():
    data = _sleepstudy()
    before = data.copy()
    lm("log(Reaction) ~ scale(Days)", data, weights=data["w"])
    pd.testing.assert_frame_equal(data, before)


def test_lm_rejects_random_effects_and_bad_weights():
    data = _sleepstudy()
    with pytest.raises(mm.FormulaError, match=r"\(1 \+ Days \| Subject\).*lmer"):
        lm("Reaction ~ Days + (Days | Subject)", data)
    with pytest.raises(mm.DataError, match="weights"):
        lm("Reaction ~ Days", data, weights=-data["w"])
    with pytest.raises(mm.DataError, match="weights has 3 values"):
        lm("Reaction ~ Days", data, weights=[1, 2, 3])
    with pytest.raises(mm.DataError, match="'Dayz' not found.*'Days'"):
        lm("Reaction ~ Dayz", data)


def test_lm_drops_rows_with_missing_values():
    data = _sleepstudy()
    data.loc[[0, 5], "Reaction"] = np.nan
    fit = lm("Reaction ~ Days", data)
    assert fit.nobs == 178 and fit.model.inputs.n_dropped == 2
    assert "(2 observations deleted due to missingness)" in str(fit.summary())


def test_lm_and_glm_drop_rows_with_missing_offsets_and_refuse_infinite_ones():
    """R's lm(offset = o) drops a row whose offset is NA and stops on Inf (issue 22, item 5)."""
    data = _sleepstudy()
    offset = 0.1 * data["Days"].to_numpy()
    offset[[2, 40]] = np.nan
    kept = np.isfinite(offset)
    for fitter in (
        lambda d, o: lm("Reaction ~ Days", d, offset=o),
        lambda d, o: glm("Reaction ~ Days", d, family=mm.families.Gamma(link="log"), offset=o),
    ):
        fit, without = fitter(data, offset), fitter(data[kept], offset[kept])
        assert fit.nobs == 178 and fit.model.inputs.n_dropped == 2
        np.testing.assert_allclose(fit.beta, without.beta, rtol=1e-10)
        assert fit.loglik == pytest.approx(without.loglik, rel=1e-12)
        with pytest.raises(mm.DataError, match="offset= has 1 infinite value"):
            fitter(data, np.where(np.arange(len(data)) == 5, np.inf, 0.0))


# --- glm ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(GLM_CASES))
def test_glm_matches_r(name):
    ref, fit = reference("linear_models")[name], glm_fit(name)
    assert fit.fixef_names == ref["coef_names"]
    assert fit.family_name == ref["family"] and fit.link == ref["link"]
    _close(fit.beta, ref["coef"], atol=1e-10)
    _close(fit.se, ref["se"], rtol=1e-7)
    table = fit.coef_table()
    assert table.columns[2] == ref["stat_name"]
    _close(table.iloc[:, 2], ref["stat"], rtol=1e-7)
    _close(table.iloc[:, 3], ref["p"], rtol=1e-5)
    _close(
        [fit.deviance, fit.null_deviance, fit.loglik, fit.aic, fit.bic, fit.dispersion],
        [ref["deviance"], ref["null_deviance"], ref["logLik"], ref["AIC"], ref["BIC"], ref["dispersion"]],
    )
    assert (fit.npar, fit.nobs, fit.df_resid, fit.df_null, fit.iterations) == (
        ref["df"],
        ref["nobs"],
        ref["df_residual"],
        ref["df_null"],
        ref["iter"],
    )
    _close(fit.vcov.to_numpy(), ref["vcov"], rtol=1e-7, atol=1e-14)


@pytest.mark.parametrize("name", list(GLM_CASES))
def test_glm_fitted_residuals_and_predictions(name):
    ref, fit = reference("linear_models")[name], glm_fit(name)
    _close(fit.fitted.to_numpy()[:10], ref["fitted_head"], rtol=1e-8, atol=1e-12)
    _close(fit.predict(type="link").to_numpy()[:10], ref["linpred_head"], rtol=1e-8, atol=1e-12)
    _close(fit.predict().to_numpy()[:10], ref["fitted_head"], rtol=1e-8, atol=1e-12)
    for kind in ("deviance", "pearson", "working", "response"):
        _close(fit.residuals(kind).to_numpy()[:10], ref[f"resid_{kind}_head"], rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("name", ["glm_binomial_cbind", "glm_gamma_log"])
def test_glm_summary_prints_like_r(name):
    ref, fit = reference("linear_models")[name], glm_fit(name)
    assert _body(fit.summary().lines()) == _body(ref["summary_text"])


def test_glm_errors_name_the_problem():
    cbpp = dataset("cbpp")
    with pytest.raises(mm.ModelSpecError, match="unknown family 'binomail'"):
        glm("incidence ~ period", cbpp, "binomail")
    with pytest.raises(mm.DataError, match="'incidence / size'.*whole number"):
        glm("incidence / size ~ period", cbpp, "binomial")
    sleep = _sleepstudy()
    with pytest.raises(mm.DataError, match="'Reaction'.*whole-number counts"):
        glm("Reaction ~ Days", sleep, "poisson")
    with pytest.raises(mm.FormulaError, match="glm"):
        glm("Reaction ~ Days + (1 | Subject)", sleep, "Gamma")


def test_lm_and_glm_gaussian_agree():
    fit_lm, fit_glm = lm_fit("lm_simple"), glm_fit("glm_gaussian")
    _close(fit_glm.beta, fit_lm.beta, rtol=1e-10)
    _close(fit_glm.se, fit_lm.se, rtol=1e-10)
    _close(fit_glm.loglik, fit_lm.loglik, rtol=1e-12)

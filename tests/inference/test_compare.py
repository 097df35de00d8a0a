"""anova() between models and ranova() against lme4 / lmerTest.

References: shared sleepstudy_slope_reml (``anova_vs_intercept``), sleepstudy_slope_lmertest
(``ranova``, ``anova_lm_vs_lmer``, ``anova_nested_lmer``) and compare_anova / compare_ranova
(make_compare_predict.R).  Tolerances: log-likelihoods, AIC, BIC and deviances within 1e-6
relative (our ML/REML optima agree with lme4's to about that); chi-square statistics within
1e-4 absolute (a difference of two log-likelihoods of order 1000); p-values within 1e-4 relative.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import as_list, dataset, reference
from mixedmodels.inference.compare import REFIT_MESSAGE, anova, ranova

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel

SLOPE = "Reaction ~ Days + (Days | Subject)"
INTERCEPT = "Reaction ~ Days + (1 | Subject)"


def _sleepstudy() -> pd.DataFrame:
    data = dataset("sleepstudy").copy()
    data["Phase"] = pd.Categorical(np.where(data["Days"] < 5, "early", "late"))
    return data


@lru_cache(maxsize=None)
def fit(formula: str, data_name: str = "sleepstudy", REML: bool = True):
    data = _sleepstudy() if data_name == "sleepstudy" else dataset(data_name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.lmer(formula, data, REML=REML)


@lru_cache(maxsize=None)
def cbpp_fits():
    cbpp = dataset("cbpp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial")
        null = mm.glmer("cbind(incidence, size - incidence) ~ 1 + (1 | herd)", cbpp, family="binomial")
    pooled = mm.glm("cbind(incidence, size - incidence) ~ period", cbpp, "binomial")
    return pooled, null, full


def _compare_table(table: pd.DataFrame, ref: dict, rtol: float = 1e-6, chisq_atol: float = 1e-4):
    for column in ("npar", "AIC", "BIC", "logLik", "deviance"):
        np.testing.assert_allclose(table[column].to_numpy(dtype=float), as_list(ref[column]), rtol=rtol, err_msg=column)
    chisq = np.array([np.nan if v is None else v for v in as_list(ref["Chisq"])], dtype=float)
    np.testing.assert_allclose(table["Chisq"].to_numpy(dtype=float), chisq, atol=chisq_atol, equal_nan=True)
    df = [None if pd.isna(v) else int(v) for v in table["Df"]]
    assert df == as_list(ref["Df"])
    p = np.array([np.nan if v is None else v for v in as_list(ref["Pr(>Chisq)"])], dtype=float)
    np.testing.assert_allclose(table["Pr(>Chisq)"].to_numpy(dtype=float), p, rtol=50 * chisq_atol, equal_nan=True)


def _glmm_loglik_at_least_lme4s(table: pd.DataFrame, ref: dict):
    """The GLMM fits reach lme4's optimum or a slightly better one (issue 3's criterion)."""
    ours, theirs = table["logLik"].to_numpy(dtype=float), np.array(as_list(ref["logLik"]))
    assert np.all(ours >= theirs - 1e-6 * np.abs(theirs))


def _anova_quietly(*models, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.MixedModelsWarning)
        return anova(*models, **kwargs)


# --- anova --------------------------------------------------------------------------------
def test_shared_anova_vs_intercept():
    ref = reference("shared/sleepstudy_slope_reml")["anova_vs_intercept"]
    with pytest.warns(mm.MixedModelsWarning, match="refitting model"):
        table = anova(fit(INTERCEPT), fit(SLOPE))
    np.testing.assert_allclose(table["logLik"], ref["logLik"], rtol=1e-6)
    np.testing.assert_allclose(table["AIC"], ref["AIC"], rtol=1e-6)
    np.testing.assert_allclose(table["BIC"], ref["BIC"], rtol=1e-6)
    assert table["Chisq"].iloc[1] == pytest.approx(ref["Chisq"], abs=1e-4)
    assert table["Df"].iloc[1] == ref["Df"]
    assert table["Pr(>Chisq)"].iloc[1] == pytest.approx(ref["p"], rel=1e-4)


def test_lmertest_anova_lm_vs_lmer():
    ref = reference("sleepstudy_slope_lmertest")["anova_lm_vs_lmer"]
    pooled = mm.lm("Reaction ~ Days", _sleepstudy())
    with pytest.warns(mm.MixedModelsWarning, match=REFIT_MESSAGE.replace("(", r"\(").replace(")", r"\)")):
        table = anova(fit(SLOPE), pooled)
    assert list(table.index) == ["pooled", "Model 1"]  # a name where the caller has one, else the position
    _compare_table(table, ref)


def test_lmertest_anova_nested_lmer():
    _compare_table(
        _anova_quietly(fit(INTERCEPT), fit(SLOPE)), reference("sleepstudy_slope_lmertest")["anova_nested_lmer"]
    )


def test_three_models_ordered_by_complexity():
    ref = reference("compare_anova")["three_models"]
    pooled = mm.lm("Reaction ~ Days", _sleepstudy())
    table = _anova_quietly(fit(SLOPE), pooled, fit(INTERCEPT), names=["ss2", "ss0", "ss1"])
    assert list(table.index) == ref["rownames"]
    _compare_table(table, ref)


def test_ml_fits_are_not_refitted():
    ref = reference("compare_anova")["ml_no_refit"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", mm.MixedModelsWarning)
        table = anova(small=fit(INTERCEPT, REML=False), big=fit(SLOPE, REML=False))
    assert list(table.index) == ["small", "big"]
    _compare_table(table, ref)


# Our Laplace optima are up to 3e-4 better in logLik than lme4's (which stops at its
# convergence tolerance): compare within 1e-5 relative and the Chisq within 2e-3.
def test_glm_against_glmer():
    pooled, _, full = cbpp_fits()
    table, ref = anova(full, pooled), reference("compare_anova")["glm_vs_glmer"]
    assert list(table.index) == ["pooled", "full"]
    _compare_table(table, ref, rtol=1e-5, chisq_atol=2e-3)
    _glmm_loglik_at_least_lme4s(table, ref)


def test_nested_glmers():
    _, null, full = cbpp_fits()
    table, ref = anova(null, full), reference("compare_anova")["glmer_nested"]
    _compare_table(table, ref, rtol=1e-5, chisq_atol=2e-3)
    _glmm_loglik_at_least_lme4s(table, ref)


def test_models_are_not_changed_by_the_refit():
    reml = fit(SLOPE)
    _anova_quietly(fit(INTERCEPT), reml)
    assert reml.REML and reml.objective == pytest.approx(
        reference("shared/sleepstudy_slope_reml")["REMLcrit"], rel=1e-6
    )


def test_refit_false_keeps_the_reml_criteria():
    table = anova(fit(INTERCEPT), fit(SLOPE), refit=False)
    np.testing.assert_allclose(table["logLik"], [fit(INTERCEPT).loglik, fit(SLOPE).loglik])


def test_anova_refuses_different_data():
    data = _sleepstudy()
    fewer = mm.lm("Reaction ~ Days", data.iloc[:100])
    with pytest.raises(mm.MixedModelsError, match="same number of observations"):
        _anova_quietly(fit(SLOPE), fewer)
    other = mm.lm("log(Reaction) ~ Days", data)
    with pytest.raises(mm.MixedModelsError, match="different response"):
        _anova_quietly(fit(SLOPE), other)
    with pytest.raises(mm.MixedModelsError, match="at least two models"):
        anova(mm.lm("Reaction ~ Days", data))
    with pytest.raises(mm.MixedModelsError, match="must be a fitted model"):
        anova(fit(SLOPE), "Reaction ~ Days")
    with pytest.raises(mm.MixedModelsError, match="names has 1"):
        anova(fit(SLOPE), fit(INTERCEPT), names=["a"])


# --- ranova --------------------------------------------------------------------------------
def _compare_ranova(table: pd.DataFrame, ref: dict):
    assert list(table.index) == ref["rownames"]
    assert list(table["npar"]) == as_list(ref["npar"])
    np.testing.assert_allclose(table["logLik"], ref["logLik"], rtol=1e-6)
    np.testing.assert_allclose(table["AIC"], ref["AIC"], rtol=1e-6)
    lrt = np.array([np.nan if v is None else v for v in ref["LRT"]], dtype=float)
    np.testing.assert_allclose(table["LRT"].to_numpy(dtype=float), lrt, atol=1e-4, equal_nan=True)
    assert [None if pd.isna(v) else int(v) for v in table["Df"]] == ref["Df"]
    p = np.array([np.nan if v is None else v for v in ref["Pr(>Chisq)"]], dtype=float)
    np.testing.assert_allclose(table["Pr(>Chisq)"].to_numpy(dtype=float), p, rtol=1e-4, equal_nan=True)


def test_lmertest_ranova_slope_model():
    _compare_ranova(ranova(fit(SLOPE)), reference("sleepstudy_slope_lmertest")["ranova"])


@pytest.mark.parametrize(
    "case, formula, data_name, REML",
    [
        ("intercept", INTERCEPT, "sleepstudy", True),
        ("uncorrelated", "Reaction ~ Days + (Days || Subject)", "sleepstudy", True),
        ("two_slopes", "Reaction ~ Days + (Days + Phase | Subject)", "sleepstudy", True),
        ("nested", "strength ~ 1 + (1 | batch/cask)", "Pastes", True),
        ("crossed_ml", "diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin", False),
    ],
)
def test_ranova_cases(case, formula, data_name, REML):
    _compare_ranova(ranova(fit(formula, data_name, REML)), reference("compare_ranova")[case])


def test_ranova_without_reduction_removes_whole_terms():
    table = ranova(fit("Reaction ~ Days + (Days + Phase | Subject)"), reduce_terms=False)
    assert list(table.index) == ["<none>", "(Days + Phase | Subject)"]
    pooled = mm.lm("Reaction ~ Days", _sleepstudy())
    assert table["logLik"].iloc[1] == pytest.approx(pooled.loglik_at(REML=True), rel=1e-10)
    assert table["Df"].iloc[1] == 6


def test_ranova_of_a_lone_slope_term_removes_it():
    """lmerTest reduces (0 + Days | Subject) to (1 | Subject) with Df 0 and no p-value;
    we remove the term instead, which gives a usable test on 1 df."""
    table = ranova(fit("Reaction ~ Days + (0 + Days | Subject)"))
    assert list(table.index) == ["<none>", "Days in (0 + Days | Subject)"]
    assert table["Df"].iloc[1] == 1
    pooled = mm.lm("Reaction ~ Days", _sleepstudy())
    assert table["logLik"].iloc[1] == pytest.approx(pooled.loglik_at(REML=True), rel=1e-10)


def test_ranova_is_for_lmer_fits():
    _, _, full = cbpp_fits()
    with pytest.raises(mm.ModelSpecError, match="lmer"):
        ranova(full)
    with pytest.raises(mm.ModelSpecError, match="lmer"):
        ranova(mm.lm("Reaction ~ Days", _sleepstudy()))


def test_anova_refuses_a_quadrature_glmer_against_a_glm_with_lme4s_reason():
    """lme4 (make_postfit_checks.R): anova(nAGQ = 9 fit, glm) stops with "GLMMs with nAGQ>1 have
    log-likelihoods incommensurate with glm() objects"; the Laplace fit is accepted."""
    refusals = reference("postfit_checks")["refusals"]
    assert "incommensurate" in refusals["anova_agq_vs_glm"]["error"] and refusals["anova_laplace_vs_glm"]["accepted"]
    pooled, _, full = cbpp_fits()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agq = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", dataset("cbpp"), nAGQ=9)
    with pytest.raises(mm.ModelSpecError, match="nAGQ > 1 have log-likelihoods incommensurate with glm"):
        mm.anova(agq, pooled)
    assert len(mm.anova(full, pooled)) == 2

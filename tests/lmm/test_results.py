"""The results contract that users and the other modules rely on."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import dataset, fitted_lmer, reference

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel


def test_contract_types(sleep_fit):
    assert isinstance(sleep_fit.fixef, pd.Series) and list(sleep_fit.fixef.index) == ["(Intercept)", "Days"]
    assert isinstance(sleep_fit.vcov, pd.DataFrame) and sleep_fit.vcov.shape == (2, 2)
    assert isinstance(sleep_fit.theta, np.ndarray) and sleep_fit.theta.shape == (3,)
    assert isinstance(sleep_fit.sigma, float)
    assert sleep_fit.ngroups == {"Subject": 18} and sleep_fit.nobs == 180
    assert list(sleep_fit.varcorr.columns) == ["grp", "var1", "var2", "vcov", "sdcor"]
    assert sleep_fit.REML and sleep_fit.formula == "Reaction ~ Days + (Days | Subject)"
    assert sleep_fit.optinfo.converged and sleep_fit.optinfo.feval > 0


def test_results_are_immutable(sleep_fit):
    with pytest.raises(dataclasses.FrozenInstanceError):
        sleep_fit.sigma = 1.0


def test_coef_is_fixef_plus_ranef(sleep_fit):
    coef = sleep_fit.coef()["Subject"]
    ranef = sleep_fit.ranef()["Subject"]
    np.testing.assert_allclose(coef.to_numpy(), ranef.to_numpy() + sleep_fit.fixef.to_numpy())
    ref = reference("shared/sleepstudy_slope_reml")["ranef"]["Subject"]
    expected = np.asarray(ref["values"]) + np.asarray(reference("shared/sleepstudy_slope_reml")["fixef"])
    np.testing.assert_allclose(coef.to_numpy(), expected, rtol=1e-3)


def test_fitted_plus_residuals_is_response(sleep_fit, sleepstudy):
    np.testing.assert_allclose(sleep_fit.fitted + sleep_fit.residuals(), sleepstudy["Reaction"])


def test_uncorrelated_terms_share_one_ranef_frame():
    fit = fitted_lmer("Reaction ~ Days + (Days || Subject)", "sleepstudy")
    assert list(fit.ranef()["Subject"].columns) == ["(Intercept)", "Days"]
    assert list(fit.varcorr["grp"]) == ["Subject", "Subject.1", "Residual"]


def test_ranef_condvar_has_condval_and_condsd(sleep_fit):
    frame = sleep_fit.ranef(condvar=True)["Subject"]
    assert list(frame.columns.get_level_values(0).unique()) == ["condval", "condsd"]
    assert (frame["condsd"] > 0).all().all()


def test_singular_fit_warns_and_is_flagged():
    with pytest.warns(mm.SingularFitWarning, match="boundary \\(singular\\) fit"):
        fit = mm.lmer("Yield ~ 1 + (1 | Batch)", dataset("Dyestuff2"))
    assert fit.is_singular


def test_ml_information_criteria_are_consistent():
    fit = fitted_lmer("Reaction ~ Days + (Days | Subject)", "sleepstudy", False)
    assert fit.aic == pytest.approx(fit.deviance + 2 * 6)
    assert fit.bic == pytest.approx(fit.deviance + np.log(180) * 6)
    assert fit.df_resid == 174


def test_unknown_residual_type(sleep_fit):
    with pytest.raises(mm.MixedModelsError, match="'response', 'pearson', 'working', 'deviance'"):
        sleep_fit.residuals("deviance-ish")


def test_results_at_given_theta_reproduce_the_fit(sleep_fit):
    again = sleep_fit.model.results_at(sleep_fit.theta)
    np.testing.assert_allclose(again.beta, sleep_fit.beta)
    assert again.objective == pytest.approx(sleep_fit.objective)


def test_input_frame_not_modified(sleepstudy):
    before = sleepstudy.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mm.lmer("log(Reaction) ~ scale(Days) + (1 | Subject)", sleepstudy)
    pd.testing.assert_frame_equal(sleepstudy, before)

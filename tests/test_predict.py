"""predict() against lme4's predict.merMod (shared sleepstudy_slope_reml, penicillin_confint_predict,
predict_extra from make_compare_predict.R).

Tolerance: predictions within 1e-5 relative.  lme4's own optimum is only that
precise: for the same model written with Days and with scale(Days) R predicts
220.24439 and 220.24371 (our fits agree with each other to 1e-7).  A wrong
random effect would be off by 1-30 ms.
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import dataset, fitted_lmer, reference
from mixedmodels.predict import predict, select_terms

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel

RTOL = 1e-5
SLOPE = "Reaction ~ Days + (Days | Subject)"


@lru_cache(maxsize=None)
def extra_fit(formula: str, data_name: str = "sleepstudy"):
    data = dataset(data_name).copy()
    if "DayF" in formula:
        data["DayF"] = pd.Categorical(data["Days"].astype(int).astype(str), categories=[str(d) for d in range(10)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.lmer(formula, data)


def _newdata() -> pd.DataFrame:
    nd = reference("predict_extra")["newdata_sleepstudy"]
    return pd.DataFrame({"Days": nd["Days"], "Subject": nd["Subject"]})


def _close(actual, expected, rtol=RTOL):
    np.testing.assert_allclose(np.asarray(actual, dtype=float), np.asarray(expected, dtype=float), rtol=rtol)


# --- against lme4 ----------------------------------------------------------------------
def test_shared_predict_newdata_with_a_new_level(sleep_fit):
    ref = reference("shared/sleepstudy_slope_reml")["predict_newdata"]
    newdata = pd.DataFrame({"Days": ref["Days"], "Subject": ref["Subject"]})
    full = sleep_fit.predict(newdata, allow_new_levels=True)
    _close(full, ref["full"])
    _close(sleep_fit.predict(newdata, re_form="~0"), ref["fixed_only"])
    assert list(full.index) == list(newdata.index)


def test_new_level_without_permission_names_level_and_column(sleep_fit):
    ref = reference("shared/sleepstudy_slope_reml")["predict_newdata"]
    newdata = pd.DataFrame({"Days": ref["Days"], "Subject": ref["Subject"]})
    with pytest.raises(
        mm.DataError, match=r"grouping factor 'Subject' \(column 'Subject'\).*'NEW'.*allow_new_levels=True"
    ):
        sleep_fit.predict(newdata)


def test_penicillin_re_form_variants():
    ref = reference("penicillin_confint_predict")["predict_first5"]
    fit = fitted_lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin")
    newdata = pd.DataFrame({"plate": ref["plate"], "sample": ref["sample"]})
    _close(fit.predict(newdata), ref["full"])
    _close(fit.predict(newdata, re_form="~ (1 | plate)"), ref["plate_only"])
    _close(fit.predict(newdata, re_form="~0"), ref["fixed_only"])


@pytest.mark.parametrize(
    "key, formula, re_form",
    [
        ("slope_full", SLOPE, None),
        ("slope_intercept_only", SLOPE, "~ (1 | Subject)"),
        ("uncorrelated_full", "Reaction ~ Days + (Days || Subject)", None),
        ("uncorrelated_slope_only", "Reaction ~ Days + (Days || Subject)", "~ (0 + Days | Subject)"),
        ("scale_days_full", "Reaction ~ scale(Days) + (scale(Days) | Subject)", None),
        ("scale_days_fixed", "Reaction ~ scale(Days) + (scale(Days) | Subject)", "~0"),
        ("offset_full", "Reaction ~ Days + offset(2 * Days) + (Days | Subject)", None),
        ("offset_fixed", "Reaction ~ Days + offset(2 * Days) + (Days | Subject)", "~0"),
    ],
)
def test_predict_extra_cases(key, formula, re_form):
    fit = extra_fit(formula)
    _close(fit.predict(_newdata(), re_form=re_form, allow_new_levels=True), reference("predict_extra")[key])


def test_factor_covariate_in_newdata():
    ref = reference("predict_extra")
    nd = ref["dayf_newdata"]
    newdata = pd.DataFrame({"DayF": nd["DayF"], "Subject": nd["Subject"]})
    _close(extra_fit("Reaction ~ DayF + (1 | Subject)").predict(newdata, allow_new_levels=True), ref["dayf_full"])


# --- behaviour --------------------------------------------------------------------------
def test_default_is_fitted_values(sleep_fit):
    _close(sleep_fit.predict(), sleep_fit.fitted, rtol=1e-12)
    fixed = sleep_fit.model.inputs.fixed.matrix @ sleep_fit.beta
    _close(sleep_fit.predict(re_form="~0"), fixed, rtol=1e-12)
    pd.testing.assert_index_equal(sleep_fit.predict().index, sleep_fit.fitted.index)


def test_newdata_equal_to_the_data_gives_fitted_values(sleep_fit, sleepstudy):
    _close(sleep_fit.predict(sleepstudy), sleep_fit.fitted, rtol=1e-10)


@pytest.mark.parametrize("none", ["~0", "~ 0", "0", "NA", False, np.nan])
def test_spellings_of_no_random_effects(sleep_fit, none):
    assert select_terms(sleep_fit, none) == ()
    _close(
        sleep_fit.predict(_newdata(), re_form=none),
        reference("predict_extra")["slope_full"][:0] or sleep_fit.predict(_newdata(), re_form="~0"),
    )


def test_link_and_response_agree_for_linear_models(sleep_fit):
    _close(sleep_fit.predict(type="link"), sleep_fit.predict(type="response"), rtol=0)
    with pytest.raises(mm.MixedModelsError, match="unknown prediction type 'probability'"):
        sleep_fit.predict(type="probability")


def test_numeric_ids_match_factor_levels(sleep_fit):
    as_text = pd.DataFrame({"Days": [1.0, 2.0], "Subject": ["308", "372"]})
    as_int = pd.DataFrame({"Days": [1.0, 2.0], "Subject": [308, 372]})
    as_float = pd.DataFrame({"Days": [1.0, 2.0], "Subject": [308.0, 372.0]})
    expected = sleep_fit.predict(as_text)
    _close(sleep_fit.predict(as_int), expected, rtol=0)
    _close(sleep_fit.predict(as_float), expected, rtol=0)


def test_missing_values_give_nan(sleep_fit):
    newdata = pd.DataFrame({"Days": [1.0, np.nan, 3.0], "Subject": ["308", "309", None]})
    predicted = sleep_fit.predict(newdata)
    assert np.isfinite(predicted.iloc[0]) and predicted.iloc[1:].isna().all()


def test_newdata_is_not_modified(sleep_fit):
    newdata = _newdata()
    before = newdata.copy()
    sleep_fit.predict(newdata, allow_new_levels=True)
    pd.testing.assert_frame_equal(newdata, before)


def test_population_prediction_does_not_need_the_grouping_column(sleep_fit):
    predicted = sleep_fit.predict(pd.DataFrame({"Days": [0.0, 10.0]}), re_form="~0")
    _close(predicted, sleep_fit.beta[0] + sleep_fit.beta[1] * np.array([0.0, 10.0]), rtol=1e-12)


def test_errors_name_the_problem(sleep_fit):
    with pytest.raises(mm.DataError, match="'Days' not found"):
        sleep_fit.predict(pd.DataFrame({"Subject": ["308"]}))
    with pytest.raises(mm.ModelSpecError, match="grouping factor 'Item'.*Subject"):
        sleep_fit.predict(_newdata(), re_form="~ (1 | Item)")
    with pytest.raises(mm.FormulaError):
        sleep_fit.predict(_newdata(), re_form="~ (1 | Subject")
    with pytest.raises(mm.DataError, match="DataFrame"):
        sleep_fit.predict({"Days": [1], "Subject": ["308"]})
    intercept_only = fitted_lmer("Reaction ~ Days + (1 | Subject)", "sleepstudy")
    with pytest.raises(mm.ModelSpecError, match="column\\(s\\) Days"):
        intercept_only.predict(_newdata(), re_form="~ (Days | Subject)")


def test_offset_argument_needs_values_for_newdata(sleepstudy):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mm.lmer("Reaction ~ Days + (1 | Subject)", sleepstudy, offset=2 * sleepstudy["Days"])
    newdata = pd.DataFrame({"Days": [1.0, 2.0], "Subject": ["308", "309"]})
    with pytest.raises(mm.DataError, match="offset= argument"):
        fit.predict(newdata)
    with_offset = predict(fit, newdata, offset=2 * newdata["Days"])
    _close(with_offset.iloc[0], fit.fitted.iloc[1], rtol=1e-10)  # row 1 of the data is subject 308 at day 1


def test_glm_and_lm_predict_through_the_same_function():
    sleep = dataset("sleepstudy")
    fit = mm.lm("Reaction ~ Days", sleep)
    _close(predict(fit, pd.DataFrame({"Days": [2.0]})), fit.beta[0] + 2 * fit.beta[1], rtol=1e-12)


# --- GLMMs (glmer) ------------------------------------------------------------------------
def test_glmer_predict_link_and_response():
    glmm = pytest.importorskip("mixedmodels.glmm.model")
    ref = reference("predict_extra")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = glmm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", dataset("cbpp"), family="binomial")
    nd = ref["cbpp_newdata"]
    newdata = pd.DataFrame({"period": nd["period"], "herd": nd["herd"]})
    # GLMM estimates agree with lme4's to about 1e-4 relative (Laplace optimum)
    _close(predict(fit, newdata, allow_new_levels=True, type="link"), ref["cbpp_link"], rtol=1e-3)
    _close(predict(fit, newdata, allow_new_levels=True), ref["cbpp_response"], rtol=1e-3)
    _close(predict(fit, newdata, re_form="~0"), ref["cbpp_response_fixed"], rtol=1e-3)
    _close(predict(fit).to_numpy()[:10], ref["cbpp_fitted_head"], rtol=1e-3)


@pytest.mark.parametrize(
    "formula, data_name",
    [
        ("Reaction ~ scale(Days) + (scale(Days) | Subject)", "sleepstudy"),
        ("log(Reaction) ~ Days + I(Days**2) + (1 | Subject)", "sleepstudy"),
        ("Reaction ~ DayO + (1 | Subject)", "sleepstudy_d4"),
    ],
)
def test_transforms_replay_on_newdata(formula, data_name):
    """scale(), I() and polynomial contrasts of an ordered factor are rebuilt with the fit's state:
    predicting a few rows of the data as newdata gives their fitted values."""
    data = dataset("sleepstudy").copy()
    if data_name == "sleepstudy_d4":
        data = data[data["Days"] <= 4].reset_index(drop=True)
        data["DayO"] = pd.Categorical(data["Days"].astype(int).astype(str), categories=list("01234"), ordered=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mm.lmer(formula, data)
    rows = data.iloc[[3, 17, 40, 41]]
    _close(fit.predict(rows), fit.fitted.iloc[[3, 17, 40, 41]], rtol=1e-10)


def test_new_levels_are_named_in_order_of_appearance_as_lme4(sleep_fit):
    """lme4: "new levels detected in newdata: 9, 10, 1000, 11, 12, 13, 14" (the order of the
    rows; a sort as strings would put 10 first, and a cut after 5 hid the rest)."""
    ref = reference("postfit_checks")["refusals"]["new_levels"]
    newdata = pd.DataFrame(ref["newdata"])
    listed = ref["error"].split(": ")[1].split(", ")
    expected = ", ".join(repr(level) for level in listed)
    with pytest.raises(mm.DataError, match=rf"7 level\(s\) .* not in the fitted data: {re.escape(expected)};"):
        sleep_fit.predict(newdata)
    many = pd.DataFrame({"Days": np.zeros(15), "Subject": [f"x{i}" for i in range(15)]})
    with pytest.raises(mm.DataError, match=r"'x9', \.\.\. \(5 more\)"):
        sleep_fit.predict(many)

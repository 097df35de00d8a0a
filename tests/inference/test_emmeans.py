"""Estimated marginal means and contrasts against R's emmeans.

Tolerances (own fits): emmean and contrast estimates within 1e-6 relative,
SE and confidence limits within 1e-4, df within 1e-3, p-values within 1e-3
relative or 1e-10 absolute (R's ptukey and scipy's studentized range differ in
the far tail).  GLMM: values within 2 % of an SE, since our glmer fit and
lme4's differ by that much; the Tukey step itself is checked exactly on R's
z ratios.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import as_list, reference
from conftest_ddf import assert_p_close, fit, sleep_data, table
from mixedmodels.errors import MixedModelsError
from mixedmodels.inference.emmeans import MarginalMeans, _adjust, contrast, emmeans

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel

LEVEL_COLUMNS = ("DayF", "Phase", "Half", "Third", "period", "1", "contrast")


def _compare(own: pd.DataFrame, ref: dict, rows: int | None = None) -> None:
    expected = table(ref).drop(columns="rownames")
    own = own.iloc[: rows or len(own)].reset_index(drop=True)
    assert len(own) == len(expected)
    for col in expected.columns:
        if col in LEVEL_COLUMNS:
            assert list(own[col].astype(str)) == list(expected[col].astype(str)), col
        elif col == "df":
            exp = expected[col].astype(float).fillna(np.inf)  # R's Inf is JSON null
            np.testing.assert_allclose(own[col], exp, rtol=1e-3)
        elif col == "p.value":
            assert_p_close(own[col], expected[col])
        elif col in ("emmean", "estimate"):
            np.testing.assert_allclose(own[col], expected[col], rtol=1e-6)
        else:
            np.testing.assert_allclose(own[col], expected[col], rtol=1e-4)


DAYF = "Reaction ~ DayF + (1 | Subject)"


@pytest.mark.parametrize("ddf, key", [("default", "kr"), ("satterthwaite", "satterthwaite")])
def test_dayf_means_and_pairs(ddf, key):
    ref = reference("sleepstudy_dayf")
    emm = emmeans(fit(DAYF), "DayF", ddf=ddf)
    assert emm.ddf == ("kenward-roger" if key == "kr" else "satterthwaite")
    _compare(emm.frame, ref[f"emmeans_{key}"])
    pairs = emm.pairs()
    assert len(pairs) == 45
    _compare(pairs, ref[f"pairs_{key}_head"], rows=10)


@pytest.mark.parametrize("ddf, key", [("default", "kr"), ("satterthwaite", "satterthwaite")])
def test_unbalanced_dayf(ddf, key):
    ref = reference("ddf_unbalanced")["dayf"][f"emmeans_dayf_{key}"]
    emm = emmeans(fit(DAYF, data="sleep_unbal"), "DayF", ddf=ddf)
    _compare(emm.frame, ref["emmeans"])
    _compare(emm.pairs(), ref["pairs"])


PHASE_DAYS = "Reaction ~ Phase * Days + (Days | Subject)"
PHASE_HALF = "Reaction ~ Phase * Half + (1 | Subject)"


@pytest.mark.parametrize(
    "key, ddf", [("emmeans_phase_kr", "default"), ("emmeans_phase_satterthwaite", "satterthwaite")]
)
def test_covariate_at_its_mean(key, ddf):
    ref = reference("ddf_phase_days")[key]
    emm = emmeans(fit(PHASE_DAYS), "Phase", ddf=ddf)
    _compare(emm.frame, ref["emmeans"])
    _compare(emm.pairs(), ref["pairs"])


def test_covariate_at_a_given_value():
    ref = reference("ddf_phase_days")["emmeans_phase_at_day0"]
    result = fit(PHASE_DAYS)
    emm = emmeans(result, "Phase", at={"Days": 0})
    _compare(emm.frame, ref)
    beta = result.fixef
    assert emm["emmean"].iloc[1] == pytest.approx(beta["(Intercept)"] + beta["Phaselate"], rel=1e-12)


@pytest.mark.parametrize(
    "specs, by, key",
    [
        ("Phase", None, "emmeans_phase_kr"),
        ("~ Half | Phase", None, "emmeans_half_by_phase_kr"),
        ("Half", "Phase", "emmeans_half_by_phase_kr"),
        ("~ Phase * Half", None, "emmeans_cells_kr"),
        (["Phase", "Half"], None, "emmeans_cells_kr"),
    ],
)
def test_averaging_by_groups_and_cells(specs, by, key):
    ref = reference("ddf_phase_half")[key]
    emm = emmeans(fit(PHASE_HALF), specs, by=by)
    _compare(emm.frame, ref["emmeans"])
    _compare(emm.pairs(), ref["pairs"])


def test_satterthwaite_cells():
    ref = reference("ddf_phase_half")["emmeans_cells_satterthwaite"]
    emm = emmeans(fit(PHASE_HALF), "~ Phase * Half", ddf="Satterthwaite")
    _compare(emm.frame, ref["emmeans"])
    _compare(emm.pairs(), ref["pairs"])


@pytest.mark.parametrize("adjust", ["bonferroni", "holm", "none"])
def test_other_adjustments(adjust):
    ref = reference("ddf_phase_half")[f"emmeans_cells_{adjust}"]
    emm = emmeans(fit(PHASE_HALF), "~ Phase * Half")
    _compare(contrast(emm, "pairwise", adjust=adjust), ref)


def test_sum_contrasts_give_the_same_means():
    ref = reference("ddf_phase_half_sum")["emmeans_phase_kr"]
    emm = emmeans(fit(PHASE_HALF, contrasts=(("Phase", "sum"), ("Half", "sum"))), "Phase")
    _compare(emm.frame, ref["emmeans"])
    _compare(emm.pairs(), ref["pairs"])


def test_tukey_step_on_r_ratios():
    """Tukey p from R's own t/z ratios and df, for 4 and 10 means (df 159, 153, infinite)."""
    for ref, nmeans in [
        (reference("ddf_phase_half")["emmeans_cells_kr"]["pairs"], 4),
        (reference("sleepstudy_dayf")["pairs_kr_head"], 10),
        (reference("ddf_cbpp_emmeans")["emmeans_period"]["pairs"], 4),
    ]:
        tab = table(ref)
        ratio = tab["t.ratio"] if "t.ratio" in tab else tab["z.ratio"]
        df = tab["df"].astype(float).fillna(np.inf).to_numpy()
        p = _adjust(np.full(len(tab), np.nan), ratio.to_numpy(), df, "tukey", nmeans)
        assert_p_close(p, tab["p.value"])


def test_no_pooling_lm_grand_mean():
    """lm(Reaction ~ 0 + Subject) then emmeans(~ 1): the mean of the 18 subject means."""
    ref = reference("emmeans_no_pooling")
    lm = mm.lm("Reaction ~ 0 + Subject", mm.datasets.load("sleepstudy"))
    emm = emmeans(lm, "~ 1")
    _compare(emm.frame, ref["emmeans_grand_mean"])
    assert emm["emmean"].iloc[0] == pytest.approx(np.mean(as_list(ref["coef"])), rel=1e-12)


@pytest.mark.parametrize("specs, key", [("Phase", "emmeans_phase"), ("~ Phase * Half", "emmeans_cells")])
def test_lm_means_use_the_residual_df(specs, key):
    ref = reference("ddf_lm_phase_half")[key]
    emm = emmeans(mm.lm("Reaction ~ Phase * Half", sleep_data()), specs)
    _compare(emm.frame, ref["emmeans"])
    _compare(emm.pairs(), ref["pairs"])


def test_glmm_means_are_asymptotic():
    ref = reference("ddf_cbpp_emmeans")["emmeans_period"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = mm.glmer(
            "cbind(incidence, size - incidence) ~ period + (1 | herd)", mm.datasets.load("cbpp"), family="binomial"
        )
    emm = emmeans(result, "period")
    assert list(emm.frame.columns) == ["period", "emmean", "SE", "df", "asymp.LCL", "asymp.UCL"]
    assert np.all(np.isinf(emm["df"]))
    expected = table(ref["emmeans"])
    np.testing.assert_allclose(emm["emmean"], expected["emmean"], atol=0.02 * expected["SE"].min())
    np.testing.assert_allclose(emm["SE"], expected["SE"], rtol=0.02)
    pairs = emm.pairs()
    assert "z.ratio" in pairs and list(pairs["contrast"]) == list(table(ref["pairs"])["contrast"])
    assert emm["emmean"].iloc[0] == pytest.approx(result.fixef["(Intercept)"], rel=1e-12)


def test_other_contrast_methods():
    emm = emmeans(fit(PHASE_HALF), "~ Phase * Half")
    pairs = emm.pairs(adjust="none")
    rev = contrast(emm, "revpairwise", adjust="none")
    assert list(rev["contrast"])[:2] == ["late even - early even", "early odd - early even"]
    np.testing.assert_allclose(np.sort(rev["estimate"].abs()), np.sort(pairs["estimate"].abs()))
    trt = contrast(emm, "trt.vs.ctrl", adjust="none")
    assert list(trt["contrast"]) == ["late even - early even", "early odd - early even", "late odd - early even"]
    eff = contrast(emm, "eff", adjust="none")
    np.testing.assert_allclose(eff["estimate"], emm["emmean"] - emm["emmean"].mean(), rtol=1e-10)
    custom = contrast(emm, {"late minus early": [-0.5, 0.5, -0.5, 0.5]})
    assert custom["estimate"].iloc[0] == pytest.approx(
        (emm["emmean"].iloc[1] + emm["emmean"].iloc[3] - emm["emmean"].iloc[0] - emm["emmean"].iloc[2]) / 2
    )
    with pytest.warns(UserWarning, match="sidak"):
        contrast(emm, "eff", adjust="tukey")


def test_result_object():
    emm = emmeans(fit(PHASE_HALF), "Phase")
    assert isinstance(emm, MarginalMeans) and len(emm) == 2
    assert "Degrees-of-freedom method: Kenward-Roger" in repr(emm)
    assert emm.to_frame().equals(emm.frame)
    assert emm.L.shape == (2, 4)


def test_errors_name_the_problem():
    result = fit(PHASE_HALF)
    with pytest.raises(MixedModelsError, match="'Condition' is not a variable"):
        emmeans(result, "Condition")
    with pytest.raises(MixedModelsError, match="level"):
        emmeans(result, "Phase", at={"Half": "third"})
    with pytest.raises(MixedModelsError, match="unknown contrast method"):
        contrast(emmeans(result, "Phase"), "poly")
    with pytest.raises(MixedModelsError, match="unknown adjust"):
        contrast(emmeans(result, "Phase"), adjust="scheffe")


@pytest.mark.parametrize(
    "case, formula, specs, key",
    [
        ("phase_scale", "Reaction ~ Phase * scale(Days) + (1 | Subject)", "Phase", "emmeans_kr"),
        ("quadratic", "Reaction ~ Phase + Days + I(Days**2) + (1 | Subject)", "Phase", "emmeans_kr"),
        ("third_half", "Reaction ~ Third * Half + (1 | Subject)", "Third", "emmeans_kr"),
        ("third_half", "Reaction ~ Third * Half + (1 | Subject)", "~ Third | Half", "emmeans_third_by_half"),
    ],
)
def test_transformed_covariates_and_three_levels(case, formula, specs, key):
    """scale(Days) and I(Days**2) at Days = mean(Days), as emmeans; Tukey over 3 means."""
    ref = reference("ddf_terms")[case][key]
    emm = emmeans(fit(formula), specs)
    _compare(emm.frame, ref["emmeans"])
    _compare(emm.pairs(), ref["pairs"])

"""Satterthwaite and Kenward-Roger df, adjusted SEs and p-values against lmerTest / pbkrtest.

Tolerances
----------
- At R's optimum (our results evaluated at lme4's theta), the method alone is
  tested: df within 1e-5 relative, Kenward-Roger SEs within 1e-6, p-values
  within 1e-4 relative (or 1e-10 absolute for tail values).
- At our own optimum (which can differ from lme4's in the 5th digit of theta,
  e.g. Penicillin: our REML criterion is 8.6e-9 lower), df within 1e-3
  relative and SEs within 1e-4.  p-values are compared at R's optimum only:
  Penicillin's p (3.6e-7) moves by 1.3e-3 relative with that theta difference.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mixedmodels as mm
from conftest import as_list, reference
from conftest_ddf import assert_p_close, at_reference, fit, ref_theta, table
from mixedmodels.errors import MixedModelsError
from mixedmodels.inference import kenward_roger as kr_module
from mixedmodels.inference.ddf import (
    coef_table,
    kenward_roger,
    normalize_ddf,
    satterthwaite,
    satterthwaite_df,
)
from mixedmodels.inference.kenward_roger import compute_kenward_roger
from mixedmodels.format import format_pval

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel

SHARED = {
    "sleepstudy_slope_reml": ("Reaction ~ Days + (Days | Subject)", "sleepstudy"),
    "sleepstudy_intercept": ("Reaction ~ Days + (1 | Subject)", "sleepstudy"),
    "penicillin_crossed": ("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin"),
}


def _shared(name, own=True):
    formula, data = SHARED[name]
    ref = reference(f"shared/{name}")
    result = fit(formula, data) if own else at_reference(formula, ref_theta(ref), data)
    return result, ref


@pytest.mark.parametrize("name", sorted(SHARED))
def test_satterthwaite_at_r_optimum(name):
    result, ref = _shared(name, own=False)
    tab = coef_table(result, ddf="satterthwaite")
    assert list(tab.columns) == ["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]
    np.testing.assert_allclose(tab["df"], as_list(ref["satterthwaite_df"]), rtol=1e-5)
    # the shared lmerTest files hold df in "stat": t is Estimate / SE
    t = np.asarray(as_list(ref["fixef"])) / np.asarray(as_list(ref["se"]))
    np.testing.assert_allclose(tab["t value"], t, rtol=1e-6)
    assert_p_close(tab["Pr(>|t|)"], as_list(ref["satterthwaite_p"]), rel=1e-4)


@pytest.mark.parametrize("name", sorted(SHARED))
def test_satterthwaite_at_own_optimum(name):
    result, ref = _shared(name)
    np.testing.assert_allclose(coef_table(result, "satterthwaite")["df"], as_list(ref["satterthwaite_df"]), rtol=1e-3)


@pytest.mark.parametrize("name", sorted(SHARED))
def test_kenward_roger_at_r_optimum(name):
    result, ref = _shared(name, own=False)
    tab = coef_table(result, ddf="kenward-roger")
    np.testing.assert_allclose(tab["df"], as_list(ref["kr_df"]), rtol=1e-5)
    np.testing.assert_allclose(tab["Std. Error"], as_list(ref["kr_se"]), rtol=1e-6)
    assert_p_close(tab["Pr(>|t|)"], as_list(ref["kr_p"]), rel=1e-4)


@pytest.mark.parametrize("name", sorted(SHARED))
def test_kenward_roger_at_own_optimum(name):
    result, ref = _shared(name)
    tab = coef_table(result, ddf="KR")
    np.testing.assert_allclose(tab["df"], as_list(ref["kr_df"]), rtol=1e-3)
    np.testing.assert_allclose(tab["Std. Error"], as_list(ref["kr_se"]), rtol=1e-4)


DDF_CASES = {
    "ddf_phase_days": ("Reaction ~ Phase * Days + (Days | Subject)", None),
    "ddf_phase_half": ("Reaction ~ Phase * Half + (1 | Subject)", None),
    "ddf_phase_half_sum": ("Reaction ~ Phase * Half + (1 | Subject)", (("Phase", "sum"), ("Half", "sum"))),
}


@pytest.mark.parametrize(
    "name, method",
    [
        (n, m)
        for n in sorted(DDF_CASES)
        for m in ("satterthwaite", "kenward_roger")
        if not (n == "ddf_phase_half_sum" and m == "kenward_roger")
    ],
)
def test_coef_tables_with_factors_and_contrasts(name, method):
    formula, contrasts = DDF_CASES[name]
    ref = reference(name)
    expected = table(ref[f"coef_{method}"]).set_index("rownames")
    own = coef_table(fit(formula, contrasts=contrasts), ddf=method)
    np.testing.assert_allclose(own["df"], expected["df"], rtol=1e-3)
    np.testing.assert_allclose(own["Std. Error"], expected["Std. Error"], rtol=1e-4)
    at_r = coef_table(at_reference(formula, ref_theta(ref), contrasts=contrasts), ddf=method)
    np.testing.assert_allclose(at_r["df"], expected["df"], rtol=1e-5)
    assert_p_close(at_r["Pr(>|t|)"], expected["Pr(>|t|)"], rel=1e-4)


UNBALANCED = {"slope": "Reaction ~ Days + (Days | Subject)", "dayf": "Reaction ~ DayF + (1 | Subject)"}


@pytest.mark.parametrize("model", sorted(UNBALANCED))
def test_kenward_roger_adjusted_vcov_matches_pbkrtest(model):
    """Unbalanced data (156 of 180 rows): the adjustment is real and matches vcovAdj."""
    ref = reference("ddf_unbalanced")[model]
    result = at_reference(UNBALANCED[model], ref_theta(ref), data="sleep_unbal")
    assert result.nobs == 156
    adjusted = kenward_roger(result).vcov_adjusted
    np.testing.assert_allclose(adjusted, np.asarray(ref["vcov_kenward_roger"]), rtol=1e-6)
    plain = np.diag(result.vcov.to_numpy())
    assert np.all(np.diag(adjusted) >= plain * (1 - 1e-12)) and np.max(np.diag(adjusted) / plain) > 1 + 1e-4
    for method in ("satterthwaite", "kenward_roger"):
        expected = table(ref[f"coef_{method}"])
        tab = coef_table(result, method)
        np.testing.assert_allclose(tab["Std. Error"], expected["Std. Error"], rtol=1e-6)
        np.testing.assert_allclose(tab["df"], expected["df"], rtol=1e-5)
        assert_p_close(tab["Pr(>|t|)"], expected["Pr(>|t|)"], rel=1e-4)
    own = coef_table(fit(UNBALANCED[model], data="sleep_unbal"), "KR")
    np.testing.assert_allclose(own["df"], table(ref["coef_kenward_roger"])["df"], rtol=1e-3)


def test_satterthwaite_for_ml_fits():
    ref = reference("ddf_slope_ml")
    result = at_reference("Reaction ~ Days + (Days | Subject)", ref_theta(ref), REML=False)
    expected = table(ref["coef_satterthwaite"])
    np.testing.assert_allclose(coef_table(result, "satterthwaite")["df"], expected["df"], rtol=1e-5)


def test_kenward_roger_needs_reml():
    result = fit("Reaction ~ Days + (Days | Subject)", REML=False)
    with pytest.raises(MixedModelsError, match="REML"):
        coef_table(result, ddf="kenward-roger")


def test_weighted_kenward_roger():
    """pbkrtest ignores prior weights (identity residual block); use_weights=False reproduces it."""
    ref = reference("ddf_weights")
    result = at_reference("Reaction ~ Days + (Days | Subject)", ref_theta(ref), weights=True)
    pbkr = table(ref["coef_kenward_roger"])
    unweighted = compute_kenward_roger(result, use_weights=False)
    np.testing.assert_allclose(np.sqrt(np.diag(unweighted.vcov_adjusted)), pbkr["Std. Error"], rtol=1e-6)
    np.testing.assert_allclose(unweighted.df(np.eye(2)), pbkr["df"], rtol=1e-5)
    # with the weights in Sigma the design is balanced across subjects: df as Satterthwaite's
    sat = table(ref["coef_satterthwaite"])
    np.testing.assert_allclose(coef_table(result, "KR")["df"], sat["df"], rtol=1e-3)


@pytest.mark.parametrize("alias", ["Satterthwaite", "SATTERTHWAITE", " satterthwaite "])
def test_satterthwaite_aliases(alias):
    assert normalize_ddf(alias) == "satterthwaite"


@pytest.mark.parametrize("alias", ["KR", "kr", "Kenward-Roger", "kenward_roger", "kenward-roger"])
def test_kenward_roger_aliases(alias):
    assert normalize_ddf(alias) == "kenward-roger"


def test_unknown_ddf_is_an_error():
    with pytest.raises(MixedModelsError, match="unknown ddf 'welch'"):
        normalize_ddf("welch")


def test_without_ddf_lme4_columns():
    result = fit("Reaction ~ Days + (Days | Subject)")
    tab = coef_table(result)
    assert list(tab.columns) == ["Estimate", "Std. Error", "t value"]
    assert tab.equals(result.coef_table())


def test_building_blocks_are_cached_and_consistent():
    result = fit("Reaction ~ Days + (Days | Subject)")
    sat = satterthwaite(result)
    assert satterthwaite(result) is sat
    np.testing.assert_allclose(sat.vcov, result.vcov.to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(sat.varpar, [*result.theta, result.sigma])
    # a contrast given as a named frame, and as a row
    frame = pd.DataFrame([[0.0, 1.0]], columns=["(Intercept)", "Days"])
    np.testing.assert_allclose(satterthwaite_df(result, frame), satterthwaite_df(result, [0.0, 1.0]))
    kr = kenward_roger(result)
    np.testing.assert_allclose(kr.vcov, result.vcov.to_numpy())


def test_contrast_with_wrong_width_names_the_fixed_effects():
    result = fit("Reaction ~ Days + (Days | Subject)")
    with pytest.raises(MixedModelsError, match=r"\(Intercept\), Days"):
        satterthwaite_df(result, [1.0, 0.0, 0.0])


def test_kenward_roger_size_guard(monkeypatch):
    result = fit("Reaction ~ Days + (1 | Subject)")
    monkeypatch.setattr(kr_module, "MAX_RANDOM_EFFECTS", 10)
    with pytest.raises(MixedModelsError, match="satterthwaite"):
        compute_kenward_roger(result)


def test_models_without_random_effects_get_residual_df_t_tests():
    data = mm.datasets.load("sleepstudy")
    lm = mm.lm("Reaction ~ Days", data)
    for ddf in (None, "satterthwaite", "KR"):
        tab = coef_table(lm, ddf=ddf)
        assert list(tab.columns) == ["Estimate", "Std. Error", "t value", "Pr(>|t|)"]
        t = lm.fixef.to_numpy() / lm.se.to_numpy()
        np.testing.assert_allclose(tab["Pr(>|t|)"], 2 * stats.t.sf(np.abs(t), len(data) - 2), rtol=1e-12)


def test_glmm_table_has_z_tests():
    cbpp = mm.datasets.load("cbpp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial")
    tab = coef_table(result)
    assert list(tab.columns) == ["Estimate", "Std. Error", "z value", "Pr(>|z|)"]
    z = result.fixef.to_numpy() / result.se.to_numpy()
    np.testing.assert_allclose(tab["z value"], z, rtol=1e-12)
    np.testing.assert_allclose(tab["Pr(>|z|)"], 2 * stats.norm.sf(np.abs(z)), rtol=1e-12)
    pd.testing.assert_frame_equal(tab, result.coef_table(), check_exact=False, rtol=1e-10)
    with pytest.raises(MixedModelsError, match="GLMM"):
        coef_table(result, ddf="satterthwaite")


# --- printed summary (lmerTest's layout) -------------------------------------------------------


def _fixed_block(lines: list[str]) -> list[str]:
    start = lines.index("Fixed effects:")
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("Signif. codes"))
    return [line.rstrip() for line in lines[start : end + 1]]


@pytest.mark.parametrize(
    "ddf, key", [("satterthwaite", "summary_satterthwaite_text"), ("KR", "summary_kenward_roger_text")]
)
def test_summary_prints_lmertest_layout(ddf, key):
    r_lines = as_list(reference("ddf_slope_text")[key])
    ours = str(fit("Reaction ~ Days + (Days | Subject)").summary(ddf=ddf)).splitlines()
    # R wraps the title at 80 columns after "["; the text is the same
    assert ours[0] == r_lines[0] + r_lines[1]
    assert _fixed_block(ours) == _fixed_block(r_lines)


@pytest.mark.parametrize(
    "ddf, key", [("satterthwaite", "summary_satterthwaite_text"), ("KR", "summary_kenward_roger_text")]
)
def test_summary_table_with_factor_terms(ddf, key):
    ref = reference("ddf_phase_days")
    result = at_reference("Reaction ~ Phase * Days + (Days | Subject)", ref_theta(ref))
    assert _fixed_block(str(result.summary(ddf=ddf)).splitlines()) == _fixed_block(as_list(ref[key]))


def test_summary_without_ddf_is_unchanged():
    text = str(fit("Reaction ~ Days + (Days | Subject)").summary())
    assert text.splitlines()[0] == "Linear mixed model fit by REML ['lmerMod']"
    assert "Pr(>|t|)" not in text


def test_format_pval_as_r():
    ref = reference("ddf_slope_text")
    for values, expected in zip(ref["format_pval_inputs"], ref["format_pval_outputs"]):
        assert format_pval(as_list(values)) == as_list(expected)


def test_glm_tables_follow_summary_glm():
    """z tests for binomial, t tests on the residual df for families with a dispersion."""
    cbpp, sleep = mm.datasets.load("cbpp"), mm.datasets.load("sleepstudy")
    binomial = mm.glm("cbind(incidence, size - incidence) ~ period", cbpp, family="binomial")
    gamma = mm.glm("Reaction ~ Days", sleep, family="Gamma")
    assert list(coef_table(binomial).columns)[2:] == ["z value", "Pr(>|z|)"]
    tab = coef_table(gamma)
    assert list(tab.columns)[2:] == ["t value", "Pr(>|t|)"]
    t = gamma.fixef.to_numpy() / gamma.se.to_numpy()
    np.testing.assert_allclose(tab["Pr(>|t|)"], 2 * stats.t.sf(np.abs(t), len(sleep) - 2), rtol=1e-12)

"""compare_pooling: complete, no and partial pooling against least squares, lme4 and the textbook.

Tolerances:
- no pooling against lme4's documentation (printed to 2 decimals): 0.006 absolute;
- no / complete pooling against independent numpy least squares: 1e-8 relative;
- no pooling against R's lm (tests/reference JSON, full precision): 1e-6 relative;
- partial pooling against lme4's fixef + ranef: 1 % of the conditional SD (as tests/lmm/test_model.py);
- partial pooling against our own m.coef(): exact (it is the same computation);
- the textbook identity BLUP = lambda ybar_j + (1 - lambda) mu_hat: 1e-6 relative to the
  group mean's scale (it holds exactly at any variance components).
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import as_list, dataset, fitted_lmer, reference
from mixedmodels.errors import MixedModelsError, ModelSpecError
from mixedmodels.pooling.layout import LeastSquaresFit
from mixedmodels.pooling.results import PoolingComparison

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel

SLOPE = "Reaction ~ Days + (Days | Subject)"


def _ols(x, y):
    """Independent least squares: coefficients and SEs from the normal equations."""
    beta = np.linalg.solve(x.T @ x, x.T @ y)
    resid = y - x @ beta
    sigma2 = resid @ resid / (len(y) - x.shape[1])
    return beta, np.sqrt(np.diag(sigma2 * np.linalg.inv(x.T @ x)))


# --------------------------------------------------------------------------
# sleepstudy: the three approaches


def test_no_pooling_matches_lme4_documentation(sleep_cmp):
    no = sleep_cmp.estimates("no")
    documented = {"308": (244.19, 21.76), "309": (205.05, 2.26), "330": (289.69, 3.01)}
    for subject, (intercept, slope) in documented.items():
        assert no.loc[subject, "(Intercept)"] == pytest.approx(intercept, abs=0.006)
        assert no.loc[subject, "Days"] == pytest.approx(slope, abs=0.006)


def test_no_pooling_equals_separate_least_squares(sleep_cmp, sleepstudy):
    table = sleep_cmp.table
    for subject, rows in sleepstudy.groupby("Subject", observed=True):
        x = np.column_stack([np.ones(len(rows)), rows["Days"].to_numpy(float)])
        beta, se = _ols(x, rows["Reaction"].to_numpy(float))
        got = table[(table["group"] == str(subject)) & (table["approach"] == "no")]
        np.testing.assert_allclose(got["estimate"], beta, rtol=1e-8)
        np.testing.assert_allclose(got["se"], se, rtol=1e-8)
        fit = sleep_cmp.no_pooling_fit[str(subject)]
        assert fit.nobs == 10 and fit.rank == 2 and fit.df_resid == 8


def test_complete_pooling_is_one_least_squares_fit(sleep_cmp, sleepstudy):
    x = np.column_stack([np.ones(len(sleepstudy)), sleepstudy["Days"].to_numpy(float)])
    beta, se = _ols(x, sleepstudy["Reaction"].to_numpy(float))
    np.testing.assert_allclose(sleep_cmp.complete_fit.coef, beta, rtol=1e-8)
    np.testing.assert_allclose(sleep_cmp.complete_fit.se, se, rtol=1e-8)
    # R: coef(summary(lm(Reaction ~ Days, sleepstudy))) = 251.405 (6.610), 10.467 (1.238)
    np.testing.assert_allclose(sleep_cmp.complete_fit.coef, [251.4051, 10.4673], atol=5e-4)
    complete = sleep_cmp.estimates("complete")
    np.testing.assert_allclose(complete.to_numpy(), np.tile(beta, (18, 1)), rtol=1e-8)


def test_partial_pooling_matches_lme4_coef(sleep_cmp):
    ref = reference("shared/sleepstudy_slope_reml")
    ranef = ref["ranef"]["Subject"]
    expected = np.asarray(ranef["values"]) + np.asarray(ref["fixef"])[None, :]
    partial = sleep_cmp.estimates("partial")
    assert list(partial.index) == ranef["levels"]
    assert list(partial.columns) == as_list(ref["fixef_names"])
    condsd = np.asarray(ranef["condsd"])
    assert np.all(np.abs(partial.to_numpy() - expected) <= 0.01 * condsd)


def test_partial_pooling_is_coef(sleep_cmp):
    pd.testing.assert_frame_equal(sleep_cmp.estimates("partial"), sleep_cmp.partial_fit.coef()["Subject"])


def test_table_is_tidy(sleep_cmp):
    table = sleep_cmp.table
    assert list(table.columns) == ["group", "n", "approach", "term", "estimate", "se"]
    assert len(table) == 18 * 3 * 2
    assert set(table["approach"]) == {"complete", "no", "partial"}
    assert (table["n"] == 10).all()
    assert table.loc[table["approach"] == "partial", "se"].isna().all()
    assert table.loc[table["approach"] != "partial", "se"].notna().all()
    assert sleep_cmp.terms == ("(Intercept)", "Days") and sleep_cmp.random_terms == ("(Intercept)", "Days")


def test_shrinkage_table(sleep_cmp):
    shrink = sleep_cmp.shrinkage
    assert len(shrink) == 36 and "shrinkage_factor" not in shrink.columns
    no, partial = sleep_cmp.estimates("no"), sleep_cmp.estimates("partial")
    days = shrink[shrink["term"] == "Days"].set_index("group")
    np.testing.assert_allclose(days["shift"], partial["Days"] - no["Days"])
    np.testing.assert_allclose(days["population"], sleep_cmp.partial_fit.fixef["Days"])
    np.testing.assert_allclose(days["fraction"], (no["Days"] - partial["Days"]) / (no["Days"] - days["population"]))
    # partial pooling pulls toward the population: smaller spread of estimates than no pooling
    assert partial["Days"].std() < no["Days"].std()


def test_covariance_and_population(sleep_cmp):
    ref = reference("shared/sleepstudy_slope_reml")
    cov = sleep_cmp.covariance
    vc = {(r["var1"], r["var2"]): r["vcov"] for r in ref["varcorr"]}
    np.testing.assert_allclose(cov.loc["(Intercept)", "(Intercept)"], vc[("(Intercept)", None)], rtol=0.02)
    np.testing.assert_allclose(cov.loc["Days", "Days"], vc[("Days", None)], rtol=0.02)
    np.testing.assert_allclose(sleep_cmp.population, ref["fixef"], rtol=1e-4)


def test_lines_follow_the_coefficients(sleep_cmp):
    lines = sleep_cmp.lines(npoints=11)
    assert set(lines.columns) == {"group", "approach", "Days", "fitted"}
    for approach in ("complete", "no", "partial"):
        coef = sleep_cmp.estimates(approach).loc["337"]
        seg = lines[(lines["group"] == "337") & (lines["approach"] == approach)]
        np.testing.assert_allclose(seg["fitted"], coef["(Intercept)"] + coef["Days"] * seg["Days"], rtol=1e-10)
    assert lines["Days"].min() == 0 and lines["Days"].max() == 9


# --------------------------------------------------------------------------
# the textbook shrinkage identity


def test_dyestuff_blup_is_lambda_weighted_mean(dyes_cmp):
    data = dataset("Dyestuff")
    ref = reference("shared/dyestuff")
    fit = dyes_cmp.partial_fit
    su2 = fit.covariances["Batch"][0, 0]
    lam = su2 / (su2 + fit.sigma**2 / 5)
    shrink = dyes_cmp.shrinkage.set_index("group")
    np.testing.assert_allclose(shrink["shrinkage_factor"], lam, rtol=1e-12)
    # lambda from lme4's variance components (1764.05, 2451.25): 0.78253
    vc = [r["vcov"] for r in ref["varcorr"]]
    assert lam == pytest.approx(vc[0] / (vc[0] + vc[1] / 5), rel=2e-3)
    means = data.groupby("Batch", observed=True)["Yield"].mean()
    mu = fit.fixef["(Intercept)"]
    assert mu == pytest.approx(data["Yield"].mean(), rel=1e-10)  # balanced: GLS = grand mean
    expected = lam * means.to_numpy() + (1 - lam) * mu
    partial = dyes_cmp.estimates("partial")["(Intercept)"]
    np.testing.assert_allclose(partial, expected, rtol=1e-6)
    np.testing.assert_allclose(dyes_cmp.estimates("no")["(Intercept)"], means, rtol=1e-12)
    np.testing.assert_allclose(shrink["fraction"], 1 - lam, rtol=1e-6)


def test_random_intercept_with_covariate_shrinks_mean_residual():
    """With a covariate the BLUP is lambda_j times the group's mean residual from the fixed part."""
    cmp = mm.compare_pooling(fitted_lmer("Reaction ~ Days + (1 | Subject)", "sleepstudy"))
    data = dataset("sleepstudy")
    fit = cmp.partial_fit
    beta = fit.fixef
    resid = data["Reaction"] - beta["(Intercept)"] - beta["Days"] * data["Days"]
    mean_resid = resid.groupby(data["Subject"], observed=True).mean().to_numpy()
    lam = cmp.shrinkage["shrinkage_factor"].to_numpy()
    np.testing.assert_allclose(fit.ranef()["Subject"]["(Intercept)"], lam * mean_resid, rtol=1e-6)


# --------------------------------------------------------------------------
# small groups, shared fixed effects, other models


@pytest.fixture(scope="module")
def unbalanced():
    """sleepstudy with subject 308 reduced to its Days = 3 row and 309 to Days 0 and 1."""
    data = dataset("sleepstudy")
    drop = ((data["Subject"] == "308") & (data["Days"] != 3)) | ((data["Subject"] == "309") & (data["Days"] > 1))
    return data[~drop].reset_index(drop=True)


def test_singleton_group_gets_nan_slope_not_an_error(unbalanced):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cmp = mm.compare_pooling(SLOPE, unbalanced)
    no = cmp.estimates("no")
    single = unbalanced[unbalanced["Subject"] == "308"]["Reaction"].iloc[0]
    assert no.loc["308", "(Intercept)"] == pytest.approx(single)  # R's lm: intercept = y, Days NA
    assert np.isnan(no.loc["308", "Days"])
    fit = cmp.no_pooling_fit["308"]
    assert fit.rank == 1 and fit.df_resid == 0 and np.isnan(fit.sigma) and fit.se.isna().all()
    # two points: an exact line, no SE
    assert np.all(np.isfinite(no.loc["309"])) and cmp.no_pooling_fit["309"].se.isna().all()
    assert np.all(np.isfinite(cmp.estimates("partial").to_numpy()))
    table = cmp.table
    assert table.loc[table["group"] == "308", "n"].unique().tolist() == [1]
    row = cmp.shrinkage.set_index(["group", "term"]).loc[("308", "Days")]
    assert np.isnan(row["no_pooling"]) and np.isnan(row["shift"]) and np.isfinite(row["partial_pooling"])


def test_share_fixed_is_one_joint_fit(sleepstudy):
    cmp = mm.compare_pooling("Reaction ~ Days + (1 | Subject)", sleepstudy, share_fixed=True)
    codes = sleepstudy["Subject"].cat.codes.to_numpy()
    x = np.column_stack([np.eye(18)[codes], sleepstudy["Days"].to_numpy(float)])
    beta, se = _ols(x, sleepstudy["Reaction"].to_numpy(float))
    no = cmp.estimates("no")
    np.testing.assert_allclose(no["(Intercept)"], beta[:18], rtol=1e-8)
    np.testing.assert_allclose(no["Days"], beta[18], rtol=1e-8)
    joint = cmp.no_pooling_fit
    assert isinstance(joint, LeastSquaresFit)
    assert list(joint.coef.index[:2]) == ["Subject308", "Subject309"] and joint.coef.index[-1] == "Days"
    np.testing.assert_allclose(joint.se, se, rtol=1e-8)
    assert cmp.random_terms == ("(Intercept)",) and cmp.share_fixed


def test_share_fixed_intercept_only_matches_r_lm():
    """lm(Reaction ~ 0 + Subject, sleepstudy) from tests/reference/emmeans_no_pooling."""
    ref = reference("emmeans_no_pooling")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cmp = mm.compare_pooling("Reaction ~ 1 + (1 | Subject)", dataset("sleepstudy"), share_fixed=True)
    np.testing.assert_allclose(cmp.no_pooling_fit.coef, ref["coef"], rtol=1e-6)
    assert list(cmp.no_pooling_fit.coef.index) == ref["coef_names"]
    assert cmp.no_pooling_fit.sigma == pytest.approx(ref["sigma"], rel=1e-8)
    assert cmp.no_pooling_fit.df_resid == ref["df_residual"]


def test_separate_fits_include_fixed_terms_outside_the_random_term(sleepstudy):
    """Without share_fixed every coefficient column is fitted per level (lmList)."""
    cmp = mm.compare_pooling("Reaction ~ Days + (1 | Subject)", sleepstudy)
    np.testing.assert_allclose(cmp.estimates("no").loc["308", "Days"], 21.764702, rtol=1e-6)


def test_random_only_term_and_other_factor():
    """A random slope with no fixed slope; group chosen among crossed factors."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cmp = mm.compare_pooling("Reaction ~ 1 + (0 + Days | Subject)", dataset("sleepstudy"))
    assert cmp.terms == ("(Intercept)", "Days") and cmp.random_terms == ("Days",)
    table = cmp.table
    assert set(table.loc[table["approach"] == "complete", "term"]) == {"(Intercept)"}
    assert cmp.population["Days"] == 0.0
    fit = fitted_lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin")
    assert mm.compare_pooling(fit).group == "plate"
    by_sample = mm.compare_pooling(fit, group="sample")
    assert by_sample.levels == tuple("ABCDEF")
    assert (by_sample.table["n"] == 24).all()


def test_weights_apply_to_least_squares(sleepstudy):
    w = 1.0 + (sleepstudy["Days"].to_numpy() % 3)
    cmp = mm.compare_pooling(SLOPE, sleepstudy, weights=w)
    x = np.column_stack([np.ones(len(sleepstudy)), sleepstudy["Days"].to_numpy(float)])
    sw = np.sqrt(w)
    beta, _ = _ols(x * sw[:, None], sleepstudy["Reaction"].to_numpy(float) * sw)
    np.testing.assert_allclose(cmp.complete_fit.coef, beta, rtol=1e-8)
    ref = reference("sleepstudy_weights")
    np.testing.assert_allclose(cmp.partial_fit.fixef, ref["fixef"], atol=0.01 * min(ref["se"]))


# --------------------------------------------------------------------------
# the object and its errors


def test_comparison_is_immutable(sleep_cmp):
    table = sleep_cmp.table
    table["estimate"] = 0.0
    assert not (sleep_cmp.table["estimate"] == 0).all()
    with pytest.raises(dataclasses.FrozenInstanceError):
        sleep_cmp.group = "x"
    with pytest.raises(TypeError):
        sleep_cmp.no_pooling_fit["308"] = None
    assert isinstance(sleep_cmp, PoolingComparison) and "Subject" in repr(sleep_cmp)


def test_input_data_not_modified(sleepstudy):
    before = sleepstudy.copy()
    mm.compare_pooling(SLOPE, sleepstudy)
    pd.testing.assert_frame_equal(sleepstudy, before)


def test_errors_name_what_is_wrong(sleep_cmp):
    with pytest.raises(ModelSpecError, match="'Batch'"):
        mm.compare_pooling(sleep_cmp.partial_fit, group="Batch")
    with pytest.raises(MixedModelsError, match="approach"):
        sleep_cmp.estimates("some")
    with pytest.raises(MixedModelsError, match="REML"):
        mm.compare_pooling(sleep_cmp.partial_fit, REML=False)
    with pytest.raises(MixedModelsError, match="'999'"):
        sleep_cmp.lines(groups=["999"])
    with pytest.raises(MixedModelsError, match="x='Subject'"):
        sleep_cmp.lines(x="Subject")


def test_share_fixed_unbalanced_weighted_matches_dense_least_squares(unbalanced):
    """The joint fit (solved without the dense design) equals lm() on the dense design."""
    w = 1.0 + (unbalanced["Days"].to_numpy() % 3)
    cmp = mm.compare_pooling("Reaction ~ Days + (1 | Subject)", unbalanced, share_fixed=True, weights=w)
    codes = unbalanced["Subject"].cat.codes.to_numpy()
    x = np.column_stack([np.eye(18)[codes], unbalanced["Days"].to_numpy(float)])
    sw = np.sqrt(w)
    beta, se = _ols(x * sw[:, None], unbalanced["Reaction"].to_numpy(float) * sw)
    np.testing.assert_allclose(cmp.no_pooling_fit.coef, beta, rtol=1e-8)
    np.testing.assert_allclose(cmp.no_pooling_fit.se, se, rtol=1e-8)
    assert cmp.no_pooling_fit.df_resid == len(unbalanced) - 19


def test_share_fixed_group_level_predictor_is_aliased(sleepstudy):
    """A predictor constant within groups is aliased with the group intercepts: NaN, as R's NA."""
    data = sleepstudy.assign(code=sleepstudy["Subject"].cat.codes.astype(float))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cmp = mm.compare_pooling("Reaction ~ Days + code + (1 | Subject)", data, share_fixed=True)
    no = cmp.estimates("no")
    assert no["code"].isna().all() and no["Days"].notna().all()
    assert cmp.no_pooling_fit.rank == 19
    assert np.isfinite(cmp.partial_fit.fixef["code"])
    separate = mm.compare_pooling(cmp.partial_fit)  # per-level fits: code is constant there too
    assert separate.estimates("no")["code"].isna().all()

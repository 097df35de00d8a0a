"""lmer against lme4: every linear mixed-model case in the shared references.

Tolerances (the lmer issue's acceptance criteria):
- objective no worse than lme4's by more than 1e-6 relative (we may find a better optimum);
- each fixed effect within 1 % of its standard error;
- standard errors, SDs (incl. sigma) and correlations within 1 % relative;
- conditional modes within 1 % of their conditional SD, conditional SDs within 1 %.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import as_list, dataset, fitted_lmer, reference
from mixedmodels.lmm.model import LinearMixedModel

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel

LMM_CASES = {
    "sleepstudy_slope_reml": ("Reaction ~ Days + (Days | Subject)", "sleepstudy", True),
    "sleepstudy_slope_ml": ("Reaction ~ Days + (Days | Subject)", "sleepstudy", False),
    "sleepstudy_intercept": ("Reaction ~ Days + (1 | Subject)", "sleepstudy", True),
    "sleepstudy_slope_only": ("Reaction ~ Days + (0 + Days | Subject)", "sleepstudy", True),
    "sleepstudy_uncorrelated": ("Reaction ~ Days + (Days || Subject)", "sleepstudy", True),
    "dyestuff": ("Yield ~ 1 + (1 | Batch)", "Dyestuff", True),
    "dyestuff2_singular": ("Yield ~ 1 + (1 | Batch)", "Dyestuff2", True),
    "penicillin_crossed": ("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin", True),
    "pastes_nested": ("strength ~ 1 + (1 | batch/cask)", "Pastes", True),
    "insteval": ("y ~ service + (1 | s) + (1 | d) + (1 | dept:service)", "InstEval", True),
}

# More lme4 fits (tests/reference/make_references.R): formula features, contrasts, weights, offsets.
# Derived columns are rebuilt as tests/reference/README.md defines them.
EXTRA_CASES = {
    "sleepstudy_weights": ("Reaction ~ Days + (Days | Subject)", "sleepstudy", True, {"weights": "w"}),
    "sleepstudy_offset": ("Reaction ~ Days + offset(2 * Days) + (Days | Subject)", "sleepstudy", True, {}),
    "sleepstudy_log_quadratic": ("log(Reaction) ~ Days + I(Days**2) + (1 | Subject)", "sleepstudy", True, {}),
    "sleepstudy_scale_days": ("Reaction ~ scale(Days) + (scale(Days) | Subject)", "sleepstudy", True, {}),
    "sleepstudy_dayf": ("Reaction ~ DayF + (1 | Subject)", "sleepstudy", True, {}),
    "sleepstudy_dayo_poly": ("Reaction ~ DayO + (1 | Subject)", "sleepstudy_d4", True, {}),
    "sleepstudy_dayf_sum": ("Reaction ~ DayF + (1 | Subject)", "sleepstudy", True, {"contrasts": {"DayF": "sum"}}),
    "sleepstudy_phase": ("Reaction ~ Phase + (Phase | Subject)", "sleepstudy", True, {}),
    "pastes_interaction_grouping": ("strength ~ 1 + (1 | batch) + (1 | batch:cask)", "Pastes", True, {}),
    "sleepstudy_no_intercept": ("Reaction ~ 0 + Days + (1 | Subject)", "sleepstudy", True, {}),
    "penicillin_ml": ("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin", False, {}),
}

REL = 0.01


def python_names(names) -> list[str]:
    """R's fixef names with R's power operator inside I() written the Python way."""
    return [n.replace("^", "**") if n.startswith("I(") else n for n in as_list(names)]


def derived_data(name: str) -> pd.DataFrame:
    """The bundled data plus the derived columns of tests/reference/README.md."""
    if name not in ("sleepstudy", "sleepstudy_d4"):
        return dataset(name)
    data = dataset("sleepstudy").copy()
    days = data["Days"].astype(int)
    data["w"] = 1 + days % 3
    data["DayF"] = pd.Categorical(days.astype(str), categories=[str(d) for d in range(10)])
    data["Phase"] = pd.Categorical(np.where(days < 5, "early", "late"))
    if name == "sleepstudy":
        return data
    d4 = data[days <= 4].reset_index(drop=True)
    d4["DayO"] = pd.Categorical(d4["Days"].astype(int).astype(str), categories=[str(d) for d in range(5)], ordered=True)
    return d4


@lru_cache(maxsize=None)
def _extra_fit(name):
    formula, data_name, reml, options = EXTRA_CASES[name]
    data = derived_data(data_name)
    options = dict(options)
    if "weights" in options:
        options["weights"] = data[options["weights"]].to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.lmer(formula, data, REML=reml, **options)


def _case(name):
    if name in EXTRA_CASES:
        return _extra_fit(name), reference(name)
    formula, data, reml = LMM_CASES[name]
    return fitted_lmer(formula, data, reml), reference(f"shared/{name}")


@pytest.fixture(params=sorted(LMM_CASES) + sorted(EXTRA_CASES), scope="module")
def case(request):
    return _case(request.param)


def test_objective_not_worse_than_lme4(case):
    fit, ref = case
    target = ref["REMLcrit"] if ref["REML"] else ref["deviance"]
    assert fit.objective - target <= 1e-6 * abs(target)


def test_fixed_effects_within_one_percent_of_se(case):
    fit, ref = case
    assert list(fit.fixef.index) == python_names(ref["fixef_names"])
    assert np.all(np.abs(fit.fixef.to_numpy() - as_list(ref["fixef"])) <= REL * np.asarray(as_list(ref["se"])))


def test_standard_errors(case):
    fit, ref = case
    se = np.asarray(as_list(ref["se"]))
    np.testing.assert_allclose(fit.se.to_numpy(), se, rtol=REL)
    vcov = np.asarray(ref["vcov"], dtype=float).reshape(len(se), len(se))
    np.testing.assert_allclose(fit.vcov.to_numpy(), vcov, rtol=2 * REL, atol=REL * np.min(se) ** 2)


def test_variance_components(case):
    fit, ref = case
    ours = fit.varcorr
    theirs = ref["varcorr"]
    theirs = theirs if isinstance(theirs, list) else [theirs]
    assert list(ours["grp"]) == [row["grp"] for row in theirs]
    assert list(ours["var1"].fillna("")) == [row["var1"] or "" for row in theirs]
    for mine, row in zip(ours["sdcor"], theirs):
        if row["sdcor"] == 0:  # singular fit: lme4's SD is exactly zero
            assert mine < 1e-3 * fit.sigma
        else:
            assert mine == pytest.approx(row["sdcor"], rel=REL)
    assert fit.sigma == pytest.approx(ref["sigma"], rel=REL)
    assert fit.is_singular == ref["singular"]


def test_counts_and_names(case):
    fit, ref = case
    assert fit.nobs == ref["nobs"]
    assert fit.ngroups == ref["ngrps"]
    assert list(fit.model.inputs.fixed.column_names) == python_names(ref["fixef_names"])
    assert fit.model.theta_names == as_list(ref["theta_names"])
    assert fit.npar == ref["df"]


def test_conditional_modes(case):
    fit, ref = case
    ranef = fit.ranef(condvar=True)
    for group, expected in ref["ranef"].items():
        frame = ranef[group]
        assert list(frame["condval"].index) == as_list(expected["levels"])
        assert list(frame["condval"].columns) == as_list(expected["columns"])
        shape = frame["condval"].shape
        condsd = np.asarray(expected["condsd"], dtype=float).reshape(shape)
        diff = np.abs(frame["condval"].to_numpy() - np.asarray(expected["values"], dtype=float).reshape(shape))
        assert np.all(diff <= REL * condsd + 1e-8)
        np.testing.assert_allclose(frame["condsd"].to_numpy(), condsd, rtol=REL, atol=1e-8)


def test_fitted_and_residuals(case):
    fit, ref = case
    head = len(ref["fitted_head"])
    scale = fit.sigma
    np.testing.assert_allclose(fit.fitted.to_numpy()[:head], ref["fitted_head"], atol=REL * scale)
    np.testing.assert_allclose(fit.residuals().to_numpy()[:head], ref["resid_head"], atol=REL * scale)


def test_information_criteria():
    fit, ref = _case("sleepstudy_slope_ml")
    assert fit.loglik == pytest.approx(ref["logLik"], rel=1e-6)
    assert fit.aic == pytest.approx(ref["AIC"], rel=1e-6)
    assert fit.bic == pytest.approx(ref["BIC"], rel=1e-6)
    assert fit.deviance == pytest.approx(ref["deviance"], rel=1e-6)


def test_weighted_pearson_residuals():
    fit, ref = _case("sleepstudy_weights")
    head = len(ref["resid_pearson_head"])
    np.testing.assert_allclose(
        fit.residuals("pearson").to_numpy()[:head], ref["resid_pearson_head"], atol=REL * fit.sigma
    )


def test_rows_with_missing_values_are_dropped_and_counted(sleepstudy):
    data = sleepstudy.copy()
    data.loc[[3, 50], "Reaction"] = np.nan
    data.loc[7, "Days"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mm.lmer("Reaction ~ Days + (Days | Subject)", data)
    assert fit.nobs == 177
    assert fit.model.inputs.n_dropped == 3
    assert "(3 observations deleted due to missingness)" in str(fit.summary())
    assert data["Reaction"].isna().sum() == 2  # input untouched


def test_weights_of_wrong_length_are_rejected(sleepstudy):
    with pytest.raises(mm.DataError, match="weights has 3 values"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", sleepstudy, weights=[1, 2, 3])


def test_contrasts_for_a_variable_not_in_the_formula_warn(sleepstudy):
    """R's model.matrix warns "variable 'foo' is absent, its contrast will be ignored" (issue 22, item 6)."""
    data = sleepstudy.assign(Phase=np.where(sleepstudy["Days"] < 5, "early", "late"))
    for fit in (
        lambda c: mm.lmer("Reaction ~ Days + (1 | Subject)", data, contrasts=c),
        lambda c: mm.lm("Reaction ~ Days", data, contrasts=c),
        lambda c: mm.glmer("Reaction ~ Days + (1 | Subject)", data, family=mm.families.Gamma(link="log"), contrasts=c),
    ):
        with pytest.warns(mm.MixedModelsWarning, match="variable 'Phaze', which is not in the formula"):
            fit({"Phaze": "sum"})
    with warnings.catch_warnings(record=True) as caught:  # a variable used anywhere in the formula is in it
        warnings.simplefilter("always")
        mm.lmer("Reaction ~ Days + (1 | Subject) + (0 + Phase | Subject)", data, contrasts={"Phase": "sum"})
        mm.lm("Reaction ~ Phase", data, contrasts={"Phase": "sum"})
    assert not [w for w in caught if "not in the formula" in str(w.message)]
    with pytest.raises(mm.ModelSpecError, match="contrasts must be a dict"):
        mm.lm("Reaction ~ Phase", data, contrasts="sum")


def test_complex_predictors_are_refused(sleepstudy):
    data = sleepstudy.assign(z=sleepstudy["Days"] * (1 + 1j))
    with pytest.raises(mm.DataError, match="column 'z' has complex values"):
        mm.lmer("Reaction ~ z + (1 | Subject)", data)


def test_offset_argument_equals_offset_term(sleepstudy):
    via_term = _case("sleepstudy_offset")[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        via_argument = mm.lmer(
            "Reaction ~ Days + (Days | Subject)", sleepstudy, offset=2 * sleepstudy["Days"].to_numpy()
        )
    np.testing.assert_allclose(via_argument.beta, via_term.beta, rtol=1e-6)
    assert via_argument.objective == pytest.approx(via_term.objective, rel=1e-9)


def test_missing_offset_values_drop_their_rows_and_infinite_ones_are_refused(sleepstudy):
    """As lme4 (lmer(..., offset = o) with o[4] = NA has nobs 179) and as offset(o) in the formula (issue 22, item 5).

    The fit must be the fit without those rows: same criterion to 1e-9 relative (the same
    optimization on the same numbers), same estimates.
    """
    formula = "Reaction ~ Days + (Days | Subject)"
    data = sleepstudy.assign(o=0.5 * sleepstudy["Days"])
    data.loc[[3, 100], "o"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        by_argument = mm.lmer(formula, data, offset=data["o"].to_numpy())
        in_formula = mm.lmer("Reaction ~ Days + offset(o) + (Days | Subject)", data)
        without = mm.lmer(formula, data.drop(index=[3, 100]), offset=data["o"].drop(index=[3, 100]).to_numpy())
    for fit in (by_argument, in_formula):
        assert fit.nobs == 178 and fit.model.inputs.n_dropped == 2
        assert fit.objective == pytest.approx(without.objective, rel=1e-9)
        np.testing.assert_allclose(fit.beta, without.beta, rtol=1e-6)
        pd.testing.assert_index_equal(fit.fitted.index, without.fitted.index)
    assert "(2 observations deleted due to missingness)" in str(by_argument.summary())
    infinite = data["o"].fillna(0.0).to_numpy(copy=True)
    infinite[7] = np.inf
    with pytest.raises(mm.DataError, match=r"offset= has 1 infinite value\(s\) \(rows 7\)"):
        mm.lmer(formula, data, offset=infinite)
    with pytest.raises(mm.DataError, match="offset= is missing"):
        mm.lmer(formula, data, offset=np.full(len(data), np.nan))
    with pytest.raises(mm.DataError, match="offset must be numbers"):
        mm.lmer(formula, data, offset="o")


def test_results_reuse_the_optimizers_best_factorization(sleepstudy):
    """A small model's results are read off the optimizer's dense factor at the optimum, and the blocked
    factor is formed on first use; a fresh blocked factorization at the same theta gives the same results
    (to rounding: the two factor the same matrix in different orders of operations).  A model too large
    for the dense system keeps the factorization of its best evaluation, and a fresh one at the same
    theta gives the same results exactly."""
    from mixedmodels.lmm.results import LmerResults

    sleep_fit = mm.lmer("Reaction ~ Days + (Days | Subject)", sleepstudy)  # fresh: nothing read off it yet
    assert sleep_fit.model.crossprods.dense_system is not None
    assert sleep_fit._factor is None and sleep_fit._spherical is None
    assert sleep_fit.objective == sleep_fit.optinfo.fmin
    fresh = LmerResults.from_fit(sleep_fit.model, sleep_fit.optinfo)
    np.testing.assert_allclose(fresh.beta, sleep_fit.beta, rtol=1e-12)
    assert fresh.sigma == pytest.approx(sleep_fit.sigma, rel=1e-12)
    assert fresh.objective == pytest.approx(sleep_fit.objective, rel=1e-12)
    np.testing.assert_array_equal(sleep_fit.factor.theta, sleep_fit.theta)  # formed now, at the optimum

    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(100), 5)
    data = pd.DataFrame({"y": rng.normal(size=500) + rng.normal(size=100)[groups], "g": groups.astype(str)})
    large = mm.lmer("y ~ 1 + (1 | g)", data)  # 100 + 1 + 1 rows: blocked
    assert large.model.crossprods.dense_system is None
    np.testing.assert_array_equal(large._factor.theta, large.theta)
    fresh = LmerResults.from_fit(large.model, large.optinfo)
    assert fresh._factor is not large._factor
    np.testing.assert_array_equal(fresh.beta, large.beta)
    assert (fresh.sigma, fresh.objective) == (large.sigma, large.objective)


def test_method_ml_says_use_reml_false(sleepstudy):
    with pytest.raises(mm.MixedModelsError, match=r"REML=False"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", sleepstudy, method="ML")
    with pytest.raises(mm.MixedModelsError, match=r"REML is the default"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", sleepstudy, method="REML")
    with pytest.raises(mm.MixedModelsError, match=r"nAGQ"):
        mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", dataset("cbpp"), method="Laplace")


@pytest.mark.parametrize(
    "name", ["sleepstudy_slope_reml", "sleepstudy_slope_ml", "penicillin_crossed", "sleepstudy_weights"]
)
def test_bfgs_and_bobyqa_reach_the_same_optimum(name):
    """The default (BFGS with the analytic gradient) and lme4's BOBYQA agree to BOBYQA's own tolerance (1e-8)."""
    formula, data_name, reml, options = (*LMM_CASES[name], {}) if name in LMM_CASES else EXTRA_CASES[name]
    data = derived_data(data_name)
    options = dict(options)
    if "weights" in options:
        options["weights"] = data[options["weights"]].to_numpy()
    fits = {}
    for optimizer in ("bfgs", "bobyqa"):
        fits[optimizer] = mm.lmer(
            formula, data, REML=reml, settings=mm.OptimizerSettings(optimizer=optimizer), **options
        )
    assert fits["bfgs"].optinfo.geval > 0 and fits["bobyqa"].optinfo.geval == 0
    assert fits["bfgs"].objective <= fits["bobyqa"].objective + 1e-8
    np.testing.assert_allclose(fits["bfgs"].theta, fits["bobyqa"].theta, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("optimizer", ["bfgs", "newton", "bobyqa"])
def test_every_optimizer_puts_a_singular_fit_exactly_on_the_boundary(optimizer):
    """lme4: theta = 0 exactly (shared reference dyestuff2_singular); optim.snap_to_zero_bounds after each optimizer."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mm.lmer(
            "Yield ~ 1 + (1 | Batch)", dataset("Dyestuff2"), settings=mm.OptimizerSettings(optimizer=optimizer)
        )
    assert fit.theta[0] == 0.0 and fit.is_singular


def test_the_automatic_optimizer_follows_the_cost_of_a_gradient():
    """Newton for systems held dense, BFGS where a gradient costs about two evaluations (InstEval, with
    numba's supernodal path), BOBYQA where it would cost several (a nested design with a cheap update)."""
    from mixedmodels.lmm.minimize import _gradient_cost_ratio, choose_optimizer

    auto = mm.OptimizerSettings()
    sleep = LinearMixedModel.from_formula("Reaction ~ Days + (Days | Subject)", dataset("sleepstudy"))
    assert choose_optimizer(auto, sleep.crossprods) == "newton"
    rng = np.random.default_rng(1)
    n = 12_000
    outer = rng.integers(0, 60, n)
    nested = pd.DataFrame(dict(y=rng.standard_normal(n), outer=outer, inner=outer * 40 + rng.integers(0, 40, n)))
    model = LinearMixedModel.from_formula("y ~ 1 + (1 | outer/inner)", nested)
    assert _gradient_cost_ratio(model.crossprods) > 2.5 and choose_optimizer(auto, model.crossprods) == "bobyqa"
    assert choose_optimizer(mm.OptimizerSettings(optimizer="bfgs"), model.crossprods) == "bfgs"
    insteval = LinearMixedModel.from_formula(LMM_CASES["insteval"][0], dataset("InstEval"))
    if insteval.crossprods.reordered_rest is not None:  # numba's supernodal path (the fit is a reference case)
        assert choose_optimizer(auto, insteval.crossprods) == "bfgs"

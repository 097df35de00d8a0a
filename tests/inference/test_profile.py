"""Zeta profiles (lme4's profile.merMod) and the profile confidence intervals.

References: lme4 1.1-31's ``confint(m, method = "profile")`` in the shared
sleepstudy_slope_reml case, dyestuff_confint and penicillin_confint_predict,
and ``tests/reference/intervals.json`` (``make_intervals.R``: lme4's profile
points and its 95 % and 90 % intervals for seven more fits).

Tolerances:
- interval limits within 0.1 % of lme4's interval width (the acceptance
  criterion is 1 %; we are at ~1e-4);
- zeta interpolated at lme4's profile points within 0.01 (both are splines
  through different points of the same curve);
- the weighted fixed-effect profile against explicit ML refits (with the
  coefficient moved into the offset) within 1e-4 in zeta.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize_scalar

import mixedmodels as mm
from conftest import as_list, dataset, fitted_lmer, reference
from mixedmodels.errors import ConvergenceWarning, MixedModelsError
from mixedmodels.inference._conditional import _correlation_factor
from mixedmodels.inference.profile import _CENTRE_SETTINGS, ProfileResult, parameter_names, parameter_values, profile

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel

WIDTH_TOL = 1e-3
ZETA_TOL = 0.01

# case -> (formula, data, REML, weighted)
INTERVAL_CASES = {
    "sleepstudy_reml": ("Reaction ~ Days + (Days | Subject)", "sleepstudy", True, False),
    "sleepstudy_ml": ("Reaction ~ Days + (Days | Subject)", "sleepstudy", False, False),
    "sleepstudy_uncorrelated": ("Reaction ~ Days + (Days || Subject)", "sleepstudy", True, False),
    "sleepstudy_weights": ("Reaction ~ Days + (Days | Subject)", "sleepstudy", True, True),
    "dyestuff2_singular": ("Yield ~ 1 + (1 | Batch)", "Dyestuff2", True, False),
    "pastes_nested": ("strength ~ 1 + (1 | batch/cask)", "Pastes", True, False),
    "grouseticks_log": ("log(TICKS + 1) ~ YEAR + scale(HEIGHT) + (1 | LOCATION)", "grouseticks", True, False),
}


def _fit(case: str):
    formula, data, reml, weighted = INTERVAL_CASES[case]
    if not weighted:
        return fitted_lmer(formula, data, reml)
    frame = dataset(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.lmer(formula, frame, REML=reml, weights=1 + frame["Days"] % 3)


_PROFILES: dict[str, ProfileResult] = {}


def _profile(case: str) -> ProfileResult:
    """One profile per model for the whole module."""
    if case not in _PROFILES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _PROFILES[case] = profile(_fit(case))
    return _PROFILES[case]


@pytest.fixture(scope="module", params=sorted(INTERVAL_CASES))
def case(request):
    return request.param, _profile(request.param), reference("intervals")[request.param]


def _assert_limits(ci: pd.DataFrame, ref: dict, skip: tuple[str, ...] = ()):
    assert list(ci.index) == as_list(ref["names"])
    lower, upper = np.asarray(ref["lower"], float), np.asarray(ref["upper"], float)
    width = upper - lower
    for i, name in enumerate(ci.index):
        if name in skip:
            continue
        assert abs(ci.iloc[i, 0] - lower[i]) <= WIDTH_TOL * width[i], (name, ci.iloc[i, 0], lower[i])
        assert abs(ci.iloc[i, 1] - upper[i]) <= WIDTH_TOL * width[i], (name, ci.iloc[i, 1], upper[i])


# lme4's fixed-effect profile ignores prior weights (its zeta jumps to 20 within
# a tenth of a standard error); that profile is checked against refits below.
LME4_WEIGHTED_FIXEF_BUG = ("(Intercept)", "Days")


@pytest.mark.parametrize("level,key", [(0.95, "profile_95"), (0.90, "profile_90")])
def test_profile_intervals_match_lme4(case, level, key):
    name, pr, ref = case
    skip = LME4_WEIGHTED_FIXEF_BUG if name == "sleepstudy_weights" else ()
    _assert_limits(pr.confint(level), ref[key], skip)


def test_zeta_matches_lme4_profile_points(case):
    name, pr, ref = case
    for parameter, points in ref["profile"].items():
        if name == "sleepstudy_weights" and parameter in LME4_WEIGHTED_FIXEF_BUG:
            continue
        values, zetas = np.asarray(points["value"]), np.asarray(points["zeta"])
        ours = pr.zeta(parameter, values)
        inside = np.isfinite(ours) & (np.abs(zetas) < pr.cutoff)
        assert inside.sum() >= len(values) - 4, parameter
        np.testing.assert_allclose(ours[inside], zetas[inside], atol=ZETA_TOL, err_msg=parameter)


def test_weighted_fixef_profile_matches_offset_refits():
    refits = reference("intervals")["sleepstudy_weights"]["intercept_refits"]
    ours = _profile("sleepstudy_weights").zeta("(Intercept)", refits["value"])
    np.testing.assert_allclose(ours, refits["zeta"], atol=1e-4)


@pytest.mark.parametrize(
    "shared,formula,data",
    [
        ("shared/sleepstudy_slope_reml", "Reaction ~ Days + (Days | Subject)", "sleepstudy"),
        ("dyestuff_confint", "Yield ~ 1 + (1 | Batch)", "Dyestuff"),
        ("penicillin_confint_predict", "diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin"),
    ],
)
def test_confint_profile_references(shared, formula, data):
    if shared == "shared/sleepstudy_slope_reml":
        pr = _profile("sleepstudy_reml")
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pr = profile(fitted_lmer(formula, data, True))
    _assert_limits(pr.confint(), reference(shared)["confint_profile"])


# --- independent checks (no R) ---------------------------------------------------------


def test_fixef_profile_equals_refit_with_offset(sleepstudy):
    """zeta of the intercept from ML refits without the intercept column, b in the offset."""
    pr = _profile("sleepstudy_ml")
    base = fitted_lmer("Reaction ~ Days + (Days | Subject)", "sleepstudy", False).objective
    for b in (240.0, 262.0):
        refit = mm.lmer(
            "Reaction ~ 0 + Days + (Days | Subject)", sleepstudy, REML=False, offset=np.full(len(sleepstudy), b)
        )
        expected = np.sign(b - 251.405105) * np.sqrt(refit.objective - base)
        assert pr.zeta("(Intercept)", b) == pytest.approx(expected, abs=1e-4)


def test_sd_profile_equals_direct_minimization():
    """Dyestuff: with the batch SD fixed at s, minimize the ML deviance over sigma alone."""
    fit = fitted_lmer("Yield ~ 1 + (1 | Batch)", "Dyestuff", False)
    pr = profile(fit, which="sd_(Intercept)|Batch")
    model = fit.model
    for s in (20.0, 70.0):

        def deviance(log_sigma: float) -> float:
            sigma = np.exp(log_sigma)
            return _ml_deviance(model, s / sigma, sigma)

        result = minimize_scalar(
            deviance, bounds=(np.log(10.0), np.log(150.0)), method="bounded", options={"xatol": 1e-10}
        )
        expected = np.sign(s - pr.estimates["sd_(Intercept)|Batch"]) * np.sqrt(result.fun - fit.objective)
        assert pr.zeta("sd_(Intercept)|Batch", s) == pytest.approx(expected, abs=1e-3)


def _ml_deviance(model, theta: float, sigma: float) -> float:
    """-2 log L at (theta, sigma) with beta profiled out: log|L|^2 + n log(2 pi sigma^2) + r^2 / sigma^2."""
    factor = model.crossprods.factorize(np.array([theta]))
    n = model.nobs
    return factor.logdet_re() + n * np.log(2 * np.pi * sigma**2) + factor.pwrss() / sigma**2


# --- the ProfileResult ------------------------------------------------------------------------


def test_table_layout_and_estimates():
    pr = _profile("sleepstudy_reml")
    names = parameter_names(fitted_lmer("Reaction ~ Days + (Days | Subject)", "sleepstudy"))
    assert list(pr.table.columns) == ["parameter", "value", "zeta", *names]
    assert pr.parameters == names
    ml = fitted_lmer("Reaction ~ Days + (Days | Subject)", "sleepstudy", False)
    # The profile is centred on the ML optimum found to ftol 1e-12 from the REML theta; an ML fit
    # to the same tolerance from the default start finds the same point.  (A default fit, at
    # lme4's ftol 1e-8, may stop up to ~1e-7 short on this flat optimum, which moves the
    # correlation by ~1e-3 relative: too far for rtol 1e-4.)
    polished = ml.model.fit(settings=_CENTRE_SETTINGS)
    pd.testing.assert_series_equal(pr.estimates, parameter_values(polished), rtol=1e-4, atol=1e-5)
    assert pr.REML and pr.deviance == pytest.approx(polished.objective, abs=1e-9)
    assert pr.deviance <= ml.objective + 1e-10  # never worse than the default ML fit
    for name, rows in pr.table.groupby("parameter", sort=False):
        assert np.all(np.diff(rows["value"]) > 0), name
        assert np.all(np.sign(rows["zeta"]) == np.sign(rows["value"] - pr.estimates[name])), name
        np.testing.assert_allclose(rows[name], rows["value"], rtol=1e-12)
        lower, upper = pr.bounds[name]
        assert rows["zeta"].min() <= -pr.cutoff or rows["value"].min() == lower, name
        assert rows["zeta"].max() >= pr.cutoff or rows["value"].max() == upper, name
        assert np.all(np.diff(rows["zeta"]) > 0), name  # monotone for this well-behaved fit


def test_cutoff_follows_alphamax():
    pr = _profile("dyestuff2_singular")
    assert pr.cutoff == pytest.approx(np.sqrt(11.344866730144373))  # qchisq(0.99, 3)


def test_singular_fit_lower_limit_is_zero():
    pr = _profile("dyestuff2_singular")
    rows = pr.table[pr.table.parameter == "sd_(Intercept)|Batch"]
    assert rows["value"].iloc[0] == 0.0 and rows["zeta"].iloc[0] == 0.0
    assert pr.confint().loc["sd_(Intercept)|Batch", "2.5 %"] == 0.0


def test_which_selects_parameters():
    fit = fitted_lmer("Yield ~ 1 + (1 | Batch)", "Dyestuff")
    assert profile(fit, which="beta_").parameters == ["(Intercept)"]
    assert profile(fit, which=["sigma", ".sig01"]).parameters == ["sd_(Intercept)|Batch", "sigma"]
    assert profile(fit, which="theta_").parameters == ["sd_(Intercept)|Batch", "sigma"]
    assert profile(fit, which=-1).parameters == ["(Intercept)"]


def test_results_method_delegates():
    fit = fitted_lmer("Yield ~ 1 + (1 | Batch)", "Dyestuff")
    pr = fit.profile(which="sigma", maxpts=50)
    assert isinstance(pr, ProfileResult) and pr.parameters == ["sigma"]
    assert "ProfileResult" in repr(pr)


def test_unreached_limit_is_nan_with_warning():
    fit = fitted_lmer("Yield ~ 1 + (1 | Batch)", "Dyestuff")
    pr = profile(fit, which="(Intercept)", maxpts=2)
    assert len(pr.table) == 5
    with pytest.warns(ConvergenceWarning, match=r"\(Intercept\)"):
        ci = pr.confint()
    assert ci.isna().all(axis=None)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"which": "Batch"}, "unknown parameter 'Batch'"),
        ({"which": 7}, "out of range"),
        ({"alphamax": 1.5}, "alphamax"),
        ({"maxpts": 0}, "maxpts"),
        ({"delta": -1.0}, "delta"),
    ],
)
def test_bad_arguments(kwargs, match):
    fit = fitted_lmer("Yield ~ 1 + (1 | Batch)", "Dyestuff")
    with pytest.raises(MixedModelsError, match=match):
        profile(fit, **kwargs)


def test_bad_inputs_to_the_result():
    pr = _profile("dyestuff2_singular")
    with pytest.raises(MixedModelsError, match="was not profiled"):
        pr.zeta("Days", 1.0)
    with pytest.raises(MixedModelsError, match="level"):
        pr.confint(level=95)
    with pytest.raises(MixedModelsError, match="lmer"):
        profile(object())


def test_correlation_factor_is_a_unit_row_cholesky():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(4, 4))
    cov = a @ a.T
    corr = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    lam = _correlation_factor(corr)
    np.testing.assert_allclose(lam @ lam.T, corr, atol=1e-12)
    assert np.allclose(np.triu(lam, 1), 0)
    singular = np.array([[1.0, -1.0, 0.3], [-1.0, 1.0, -0.3], [0.3, -0.3, 1.0]])
    lam = _correlation_factor(singular)
    np.testing.assert_allclose(lam @ lam.T, singular, atol=1e-12)


def test_three_by_three_term_profiles_every_correlation():
    """Correlations of a 3 x 3 term: a valid correlation matrix at every point."""
    frame = dataset("sleepstudy").assign(Phase=lambda d: pd.Categorical(np.where(d.Days < 5, "early", "late")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mm.lmer("Reaction ~ Days + (Days + Phase | Subject)", frame)
        pr = profile(fit, which="cor_Phaselate.(Intercept)|Subject", maxpts=6)
    rows = pr.table
    assert rows["zeta"].abs().min() == 0.0 and len(rows) > 3
    cors = rows[["cor_Days.(Intercept)|Subject", "cor_Phaselate.(Intercept)|Subject", "cor_Phaselate.Days|Subject"]]
    for r01, r02, r12 in cors.dropna().to_numpy():
        corr = np.array([[1, r01, r02], [r01, 1, r12], [r02, r12, 1]])
        assert np.linalg.eigvalsh(corr)[0] > -1e-8


def test_plot_draws_one_panel_per_parameter():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pr = _profile("dyestuff2_singular")
    fig = pr.plot()
    assert sum(ax.has_data() for ax in fig.axes) == len(pr.parameters)
    plt.close(fig)

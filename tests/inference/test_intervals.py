"""confint(): Wald, profile and parametric-bootstrap percentile intervals.

References: lme4 1.1-31's ``confint(m, method = "Wald")`` (shared
sleepstudy_slope_reml, dyestuff_confint, penicillin_confint_predict, and the
full tables with NA rows in ``intervals.json``), ``boot::boot.ci(type =
"perc")`` on fixed replicate vectors (``intervals.json`` ``boot_perc``), and
lme4's ``bootMer`` quantiles with nsim = 2000 (``sleepstudy_bootmer``).

Tolerances:
- Wald limits within 1e-3 of the interval width (our SEs agree with lme4's
  to ~1e-6);
- percentile rule: exact (1e-12 relative) on the same replicates;
- bootstrap percentile limits vs lme4's: both are Monte Carlo estimates, so
  within 4 standard errors of the difference of two sample quantiles
  (normal approximation, SD of the statistic from lme4's replicates).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.stats import norm

from conftest import as_list, fitted_lmer, reference
from mixedmodels.errors import MixedModelsError
from mixedmodels.inference.intervals import confint, percentile_interval
from mixedmodels.inference.profile import parameter_names, profile

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel

SLEEP = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture(scope="module")
def sleep_fit():
    return fitted_lmer(SLEEP, "sleepstudy")


@pytest.fixture(scope="module")
def dyestuff_fit():
    return fitted_lmer("Yield ~ 1 + (1 | Batch)", "Dyestuff")


# --- Wald ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,formula,data",
    [
        ("shared/sleepstudy_slope_reml", SLEEP, "sleepstudy"),
        ("dyestuff_confint", "Yield ~ 1 + (1 | Batch)", "Dyestuff"),
        ("penicillin_confint_predict", "diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin"),
    ],
)
def test_wald_fixed_effects_match_lme4(name, formula, data):
    fit = fitted_lmer(formula, data)
    ours = confint(fit, method="wald", parm="beta_").to_numpy()
    ref = np.asarray(reference(name)["confint_wald"], dtype=float).reshape(ours.shape)
    width = ref[:, 1] - ref[:, 0]
    assert np.all(np.abs(ours - ref) <= 1e-3 * width[:, None])


@pytest.mark.parametrize("case", ["sleepstudy_reml", "sleepstudy_uncorrelated", "pastes_nested", "grouseticks_log"])
def test_wald_table_like_lme4(case):
    ref_case = reference("intervals")[case]
    fit = fitted_lmer(ref_case["formula"], ref_case["data"], ref_case["REML"])
    ci = confint(fit, method="Wald", old_names=False)  # the reference has lme4's oldNames = FALSE names
    wald = ref_case["wald"]
    assert list(ci.index) == as_list(wald["names"])
    assert list(ci.columns) == ["2.5 %", "97.5 %"]
    lower = np.array([np.nan if v is None else v for v in as_list(wald["lower"])])
    upper = np.array([np.nan if v is None else v for v in as_list(wald["upper"])])
    np.testing.assert_array_equal(np.isnan(ci.iloc[:, 0]), np.isnan(lower))
    finite = np.isfinite(lower)
    width = upper[finite] - lower[finite]
    assert np.all(np.abs(ci.iloc[:, 0].to_numpy()[finite] - lower[finite]) <= 1e-3 * width)
    assert np.all(np.abs(ci.iloc[:, 1].to_numpy()[finite] - upper[finite]) <= 1e-3 * width)


def test_wald_for_a_glmm_has_no_sigma_row():
    """glmer fits: lme4's rows (NA for the SD, no sigma for binomial); SEs from a
    finite-difference Hessian agree with lme4's to ~1 %, so 1 % of the width here."""
    import mixedmodels as mm
    from conftest import dataset

    ref = reference("intervals")["cbpp_binomial"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mm.glmer(ref["formula"], dataset("cbpp"), family="binomial")
    ci = confint(fit, method="wald", old_names=False)
    wald = ref["wald"]
    assert list(ci.index) == wald["names"]
    assert ci.iloc[0].isna().all()
    lower, upper = np.asarray(wald["lower"][1:], float), np.asarray(wald["upper"][1:], float)
    width = upper - lower
    assert np.all(np.abs(ci.iloc[1:, 0].to_numpy() - lower) <= 0.01 * width)
    assert np.all(np.abs(ci.iloc[1:, 1].to_numpy() - upper) <= 0.01 * width)
    with pytest.raises(MixedModelsError, match="method='wald'"):
        confint(fit)


def test_level_sets_the_width_and_r_column_names(sleep_fit):
    ci90 = sleep_fit.confint(method="wald", level=0.90)
    assert list(ci90.columns) == ["5 %", "95 %"]
    assert list(confint(sleep_fit, method="wald", level=0.99).columns) == ["0.5 %", "99.5 %"]
    se = sleep_fit.se
    np.testing.assert_allclose((ci90.iloc[4:, 1] - ci90.iloc[4:, 0]).to_numpy(), 2 * norm.ppf(0.95) * se.to_numpy())


def test_parm_selects_rows(sleep_fit):
    assert list(confint(sleep_fit, method="wald", parm=["sigma", "Days"]).index) == [".sigma", "Days"]
    assert list(confint(sleep_fit, method="wald", parm=[".sig03", "Days"]).index) == [".sig03", "Days"]
    assert list(confint(sleep_fit, method="wald", parm=["sigma", "Days"], old_names=False).index) == ["sigma", "Days"]
    assert (
        list(confint(sleep_fit, method="wald", parm="theta_", old_names=False).index) == parameter_names(sleep_fit)[:4]
    )


# --- profile ---------------------------------------------------------------------------------


def test_results_confint_defaults_to_profile(dyestuff_fit):
    assert list(dyestuff_fit.confint().index) == [".sig01", ".sigma", "(Intercept)"]  # lme4's oldNames = TRUE
    ci = dyestuff_fit.confint(old_names=False)
    ref = reference("dyestuff_confint")["confint_profile"]  # made with oldNames = FALSE
    assert list(ci.index) == ref["names"]
    width = np.asarray(ref["upper"]) - np.asarray(ref["lower"])
    assert np.all(np.abs(ci.iloc[:, 0] - ref["lower"]) <= 1e-3 * width)
    assert np.all(np.abs(ci.iloc[:, 1] - ref["upper"]) <= 1e-3 * width)


def test_confint_of_a_profile_result(dyestuff_fit):
    pr = profile(dyestuff_fit)
    np.testing.assert_array_equal(confint(pr, level=0.9).to_numpy(), pr.confint(0.9).to_numpy())
    assert list(confint(pr, parm="sigma").index) == [".sigma"]
    assert list(confint(pr, parm=".sig01", old_names=False).index) == ["sd_(Intercept)|Batch"]
    with pytest.raises(MixedModelsError, match="profile intervals only"):
        confint(pr, method="wald")


# --- bootstrap -----------------------------------------------------------------------------------


@pytest.mark.parametrize("index", range(4))
def test_percentile_rule_matches_boot_ci(index):
    case = reference("intervals")["boot_perc"][index]
    lower, upper = percentile_interval(np.asarray(case["t"]), case["conf"])
    assert lower == pytest.approx(case["lower"], rel=1e-12)
    assert upper == pytest.approx(case["upper"], rel=1e-12)


def test_percentile_rule_ignores_non_finite_and_warns_at_the_extremes():
    t = np.arange(1.0, 40.0)  # 39 replicates: (R + 1) 0.025 = 1, (R + 1) 0.975 = 39
    assert percentile_interval(np.append(t, [np.nan, np.inf]), 0.95) == (1.0, 39.0)
    with pytest.warns(UserWarning, match="extreme order statistics"):
        assert percentile_interval(t[:10], 0.95) == (1.0, 10.0)


NSIM = 100


@pytest.fixture(scope="module")
def boot_ci(sleep_fit):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return confint(sleep_fit, method="boot", nsim=NSIM, seed=20240601, progress=False, old_names=False)


def test_bootstrap_intervals_agree_with_bootmer(boot_ci):
    ref = reference("sleepstudy_bootmer")
    assert list(boot_ci.index) == parameter_names(fitted_lmer(SLEEP, "sleepstudy"))
    probs = np.asarray(ref["quantile_probs"])
    quantiles = np.asarray(ref["quantiles"], dtype=float)  # statistic x (0.025, 0.5, 0.975)
    for name, sd, q in zip(ref["stat_names"], ref["sd"], quantiles):
        for col, p, expected in ((0, probs[0], q[0]), (1, probs[2], q[2])):
            # SE of a sample quantile: sqrt(p (1 - p) / n) / f(q), f the normal density
            se = np.sqrt(p * (1 - p)) * sd / norm.pdf(norm.ppf(p)) * np.sqrt(1 / NSIM + 1 / ref["nsim"])
            assert abs(boot_ci.loc[name].iloc[col] - expected) <= 4 * se, (name, p)


def test_bootstrap_intervals_cover_the_estimates(boot_ci, sleep_fit):
    from mixedmodels.inference.profile import parameter_values

    values = parameter_values(sleep_fit)
    assert np.all(boot_ci.iloc[:, 0] < values) and np.all(values < boot_ci.iloc[:, 1])
    assert np.all(boot_ci.iloc[1, :].between(-1, 1))


def test_bootstrap_is_reproducible(dyestuff_fit):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = confint(dyestuff_fit, method="boot", nsim=20, seed=5, progress=False, parm="beta_")
        again = dyestuff_fit.confint(method="boot", nsim=20, seed=5, progress=False, parm="beta_")
    assert list(first.index) == ["(Intercept)"]
    np.testing.assert_array_equal(first.to_numpy(), again.to_numpy())


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,match",
    [({"method": "bootstrap"}, "unknown confint method"), ({"level": 1.5}, "level"), ({"level": 0.0}, "level")],
)
def test_bad_arguments(dyestuff_fit, kwargs, match):
    with pytest.raises(MixedModelsError, match=match):
        confint(dyestuff_fit, **kwargs)


# --- row names: lme4's oldNames = TRUE (default) and FALSE -----------------------------------------
POSTFIT_FITS = {
    "ss": ("Reaction ~ Days + (Days | Subject)", "sleepstudy"),
    "pen": ("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin"),
}


@pytest.mark.parametrize("key, method", [("ss", "wald"), ("pen", "wald"), ("pen", "profile"), ("cb", "wald")])
@pytest.mark.parametrize("old", [True, False])
def test_confint_row_names_as_lme4(key, method, old):
    """make_postfit.R: confint(m, method, oldNames = TRUE / FALSE) with lme4 1.1-31; limits to
    1e-3 of the interval's width (1 % for glmer, whose SEs come from a finite-difference Hessian)."""
    import mixedmodels as mm
    from conftest import dataset

    ref = reference("postfit_misc")["confint"][f"{key}_{method}_oldNames{'TRUE' if old else 'FALSE'}"]
    if key == "cb":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", dataset("cbpp"))
    else:
        fit = fitted_lmer(*POSTFIT_FITS[key])
    ci = fit.confint(method=method, old_names=old)
    assert list(ci.index) == ref["names"]
    lower = np.array([np.nan if v is None else v for v in ref["lower"]], dtype=float)
    upper = np.array([np.nan if v is None else v for v in ref["upper"]], dtype=float)
    np.testing.assert_array_equal(np.isnan(ci.iloc[:, 0].to_numpy()), np.isnan(lower))
    finite = np.isfinite(lower)
    width = (upper - lower)[finite]
    share = 1e-2 if key == "cb" else 1e-3
    assert np.all(np.abs(ci.iloc[:, 0].to_numpy()[finite] - lower[finite]) <= share * width)
    assert np.all(np.abs(ci.iloc[:, 1].to_numpy()[finite] - upper[finite]) <= share * width)

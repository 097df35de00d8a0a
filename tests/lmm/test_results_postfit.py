"""Accessors and options lme4 users rely on after the fit (issue 20, items 3 and 4).

References: tests/reference/make_postfit.R (postfit_diagnostics.json: weights and residual
types; postfit_misc.json: postVar, start, rank-deficient fits, na.exclude), lme4 1.1-31, on
sleepstudy (``ss``), Penicillin (``pen``), cbpp (``cb``) and weighted sleepstudy (``ssw``).

Tolerances: lme4's optimum is precise to ~1e-5 relative in the estimates (tests/test_predict.py),
so residuals are compared to 1e-4 of sigma, weights and modes to 1e-5 relative (1e-3 of the
modes' SD for glmer, whose default fit in lme4 stops early: tests/glmm/test_glmm.py), and
conditional covariances to 1e-3 relative (they move with theta: 1e-4 is what we see).
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import POSTFIT_CALLS, dataset, fitted_postfit, reference

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel

CALLS = POSTFIT_CALLS


fit = fitted_postfit  # shared with the other post-fit tests (conftest.py)


def diagnostics(key: str) -> dict:
    return reference("postfit_diagnostics")["diagnostics"][key]


# --- weights and residuals -------------------------------------------------------------------
@pytest.mark.parametrize("key", sorted(CALLS))
def test_prior_and_working_weights(key):
    m, r = fit(key), diagnostics(key)
    prior = m.weights("prior")
    assert prior.index.equals(m.fitted.index)
    np.testing.assert_allclose(prior, r["weights_prior"]["value"], rtol=1e-12)
    if "unsupported" in r["weights_working"]:
        # lme4 1.1-31 has working weights for glmer only; those of a linear mixed model are its prior weights
        np.testing.assert_array_equal(m.weights("working"), prior)
    else:
        np.testing.assert_allclose(m.weights("working"), r["weights_working"]["value"], rtol=1e-3)
    with pytest.raises(mm.MixedModelsError, match="'prior' or 'working'"):
        m.weights("posterior")


@pytest.mark.parametrize("key", sorted(CALLS))
@pytest.mark.parametrize("kind", ["working", "response", "deviance", "pearson"])
def test_residual_types_as_lme4(key, kind):
    m, r = fit(key), diagnostics(key)
    expected = np.asarray(r["residuals"][kind]["value"])
    # glmer: lme4's default fit is off by ~1e-3 SE (see the module docstring); residuals move with it
    atol = 2e-3 if key == "cb" else 1e-4 * r["sigma"]
    np.testing.assert_allclose(m.residuals(type=kind), expected, rtol=0, atol=atol * max(1.0, np.abs(expected).max()))


@pytest.mark.parametrize("key", ["ss", "pen", "ssw"])
def test_scaled_pearson_residuals(key):
    m, r = fit(key), diagnostics(key)
    np.testing.assert_allclose(
        m.residuals(type="pearson", scaled=True), r["residuals_pearson_scaled"]["value"], rtol=0, atol=1e-4
    )


# --- the fixed effects of a rank-deficient fit ---------------------------------------------------
def _rank_deficient(case: str):
    data = dataset("sleepstudy").copy()
    data["DayF"] = pd.Categorical(data["Days"].astype(int).astype(str), categories=[str(d) for d in range(10)])
    data["Phase"] = pd.Categorical(np.where(data["Days"] < 5, "early", "late"))
    formula = {
        "factor": "Reaction ~ DayF + Phase + (1 | Subject)",
        "numeric": "Reaction ~ Days + I(2 * Days) + (1 | Subject)",
    }[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.RankDeficiencyWarning)
        return mm.lmer(formula, data)


@pytest.mark.parametrize("case", ["factor", "numeric"])
def test_fixef_add_dropped_puts_nan_in_place(case):
    r = reference("postfit_misc")["rank_deficient"][case]
    m = _rank_deficient(case)
    full = m.fixef(add_dropped=True)
    assert list(full.index) == r["fixef_dropped_names"]
    expected = np.array([np.nan if v is None else v for v in r["fixef_add_dropped"]])
    np.testing.assert_allclose(full.to_numpy(), expected, rtol=1e-6)
    assert list(m.fixef.index) == r["fixef_names"] and list(m.fixef().index) == r["fixef_names"]
    assert type(m.fixef * 2) is pd.Series  # arithmetic gives plain Series
    with pytest.raises(mm.MixedModelsError, match="add_dropped"):
        m.fixef(add_dropped="yes")


@pytest.mark.parametrize("case", ["factor", "numeric"])
def test_anova_of_a_rank_deficient_fit_has_no_empty_row(case):
    """lme4's anova leaves out a term whose columns were all dropped (lmerTest prints an empty row)."""
    r = reference("postfit_misc")["rank_deficient"][case]
    table = _rank_deficient(case).anova()
    rownames = r["anova"]["rownames"]
    assert list(table.index) == ([rownames] if isinstance(rownames, str) else rownames)
    assert not table.isna().any().any()
    # lmerTest's F and Satterthwaite df for the kept term (lme4's anova has no df)
    kept = r["anova_lmerTest"]
    assert table["F value"].iloc[0] == pytest.approx(kept["F value"][0], rel=1e-4)
    assert table["DenDF"].iloc[0] == pytest.approx(kept["DenDF"][0], rel=1e-4)


# --- conditional covariances of the random effects ------------------------------------------------
@pytest.mark.parametrize("key", sorted(CALLS))
def test_ranef_condvar_full_is_lme4s_postvar(key):
    m = fit(key)
    for group, ref in reference("postfit_misc")["postvar"][key].items():
        frame = m.ranef(condvar="full")[group]
        columns = ref["columns"] if isinstance(ref["columns"], list) else [ref["columns"]]
        assert list(frame.columns) == ["condval", *columns]
        assert list(frame.index.get_level_values(0).unique()) == ref["levels"]
        k = len(columns)
        ours = frame[columns].to_numpy().reshape(len(ref["levels"]), k, k)
        np.testing.assert_allclose(ours, np.asarray(ref["postvar"], dtype=float).reshape(ours.shape), rtol=1e-3)
        modes = frame["condval"].to_numpy().reshape(-1, k)
        sd = np.sqrt(np.diagonal(ours, axis1=1, axis2=2))
        np.testing.assert_allclose(modes, np.asarray(ref["values"]).reshape(modes.shape), rtol=0, atol=1e-3 * sd.max())
        # the diagonal is condvar=True's condsd squared
        condsd = m.ranef(condvar=True)[group]["condsd"].to_numpy()
        np.testing.assert_allclose(sd, condsd, rtol=1e-10)


def test_full_condvar_covers_every_term_of_a_group():
    """(1 | Subject) + (0 + Days | Subject): lme4 gives each term's block alone; we give the
    level's whole covariance, whose diagonal blocks are those blocks (condvar=True)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.lmer("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", dataset("sleepstudy"))
    frame = m.ranef(condvar="full")["Subject"]
    assert list(frame.columns) == ["condval", "(Intercept)", "Days"]
    block = frame.loc["308", ["(Intercept)", "Days"]].to_numpy()
    condsd = m.ranef(condvar=True)["Subject"]["condsd"].loc["308"].to_numpy()
    np.testing.assert_allclose(np.sqrt(np.diag(block)), condsd, rtol=1e-10)
    assert block[0, 1] != 0.0 and block[0, 1] == pytest.approx(block[1, 0])
    with pytest.raises(mm.MixedModelsError, match="condvar must be True or False.*'full'"):
        m.ranef(condvar="diag")


# --- start ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "case, start",
    [
        ("theta_list", {"theta": [0.5, 0.0, 0.5]}),
        ("theta_vector", [2.0, -0.5, 1.0]),
    ],
)
def test_lmer_start_reaches_lme4s_optimum(case, start):
    """From another start the same optimum: logLik to 1e-7 relative (lme4's own starts differ by 6e-8)."""
    r = reference("postfit_misc")["start"][case]
    m = mm.lmer("Reaction ~ Days + (Days | Subject)", dataset("sleepstudy"), start=start)
    np.testing.assert_array_equal(m.optinfo.initial, np.asarray(start["theta"] if isinstance(start, dict) else start))
    assert m.loglik == pytest.approx(r["logLik"], rel=1e-7)
    np.testing.assert_allclose(m.theta, r["theta"], rtol=1e-3)


def test_lmer_start_at_the_optimum_needs_few_evaluations():
    r = reference("postfit_misc")["start"]["at_optimum"]
    default = fit("ss")
    again = mm.lmer("Reaction ~ Days + (Days | Subject)", dataset("sleepstudy"), start=default.theta)
    assert again.optinfo.feval <= r["feval"] + 5
    assert again.loglik == pytest.approx(default.loglik, rel=1e-10)
    by_name = dict(zip(default.model.theta_names, default.theta))
    assert mm.lmer("Reaction ~ Days + (Days | Subject)", dataset("sleepstudy"), start=by_name).loglik == pytest.approx(
        default.loglik, rel=1e-10
    )


@pytest.mark.parametrize(
    "start, match",
    [
        ([1.0, 0.0], "2 values; the model has 3"),
        ([-1.0, 0.0, 1.0], ">= 0"),
        ({"theta": [1.0, 0.0, 1.0], "fixef": [1.0, 2.0]}, "lmer's start"),
    ],
)
def test_bad_lmer_start(start, match):
    with pytest.raises(mm.ModelSpecError, match=match):
        mm.lmer("Reaction ~ Days + (Days | Subject)", dataset("sleepstudy"), start=start)


def test_glmer_start_with_theta_and_fixef():
    """lme4: start = list(theta = 1, fixef = c(-1, -1, -1, -1)) reaches the default's optimum."""
    r = reference("postfit_misc")["start"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = mm.glmer(
            CALLS["cb"][0],
            dataset("cbpp"),
            family="binomial",
            start={"theta": [1.0], "fixef": [-1.0, -1.0, -1.0, -1.0]},
        )
        theta_only = mm.glmer(CALLS["cb"][0], dataset("cbpp"), family="binomial", start=[1.0])
    # our optimum is lme4's to 3e-4 in logLik, and better (lme4 stops early: tests/glmm/test_glmm.py)
    assert g.loglik >= r["glmer_theta_fixef"]["logLik"] - 1e-6
    assert g.loglik == pytest.approx(fit("cb").loglik, abs=1e-6)
    assert theta_only.loglik == pytest.approx(fit("cb").loglik, abs=1e-6)
    with pytest.raises(mm.ModelSpecError, match="4 finite numbers"):
        mm.glmer(CALLS["cb"][0], dataset("cbpp"), family="binomial", start={"theta": [1.0], "fixef": [0.0]})


# --- na_action="exclude" ---------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _na_fits():
    data = dataset("sleepstudy").copy()
    data.index = pd.Index([str(i + 1) for i in range(len(data))])  # R's row names
    na = reference("postfit_misc")["na_action"]
    rows = np.asarray(na["na_rows"]) - 1
    data.iloc[rows[:3], data.columns.get_loc("Reaction")] = np.nan
    data.iloc[rows[3], data.columns.get_loc("Days")] = np.nan
    exclude = mm.lmer("Reaction ~ Days + (Days | Subject)", data, na_action="exclude")
    omit = mm.lmer("Reaction ~ Days + (Days | Subject)", data, na_action="omit")
    return data, exclude, omit


def _values(ref_list):
    return np.array([np.nan if v is None else v for v in ref_list], dtype=float)


def test_na_exclude_pads_row_shaped_results():
    data, exclude, omit = _na_fits()
    ref = reference("postfit_misc")["na_action"]["na.exclude"]
    assert exclude.nobs == ref["nobs"] == omit.nobs
    assert exclude.loglik == pytest.approx(ref["logLik"], rel=1e-7)
    outputs = {
        "fitted": exclude.fitted,
        "residuals": exclude.residuals(),
        "residuals_pearson": exclude.residuals("pearson"),
        "predict": exclude.predict(),
        "predict_fixed": exclude.predict(re_form="~0"),
        "hatvalues": exclude.hatvalues(),
    }
    for name, series in outputs.items():
        assert series.index.equals(data.index), name
        expected = _values(ref[name])
        np.testing.assert_array_equal(np.isnan(series.to_numpy()), np.isnan(expected), err_msg=name)
        scale = 1e-4 * exclude.sigma if name != "hatvalues" else 1e-5
        np.testing.assert_allclose(series.to_numpy(), expected, rtol=0, atol=scale, err_msg=name)
    for other in (exclude.simulate(nsim=2, seed=1), exclude.weights(), exclude.cooks_distance(), exclude.rstudent()):
        missing = other.isna() if other.ndim == 1 else other.isna().all(axis=1)
        assert other.index.equals(data.index) and list(np.flatnonzero(missing)) == [2, 49, 99, 119]


def test_na_omit_keeps_the_rows_used():
    data, exclude, omit = _na_fits()
    ref = reference("postfit_misc")["na_action"]["na.omit"]
    assert list(omit.fitted.index) == ref["names_fitted"]
    np.testing.assert_allclose(omit.fitted, ref["fitted"], rtol=0, atol=1e-4 * omit.sigma)
    np.testing.assert_allclose(omit.fitted, exclude.fitted.dropna(), rtol=1e-12)
    with pytest.raises(mm.ModelSpecError, match="na_action"):
        mm.lmer("Reaction ~ Days + (Days | Subject)", data, na_action="pass")


def test_na_exclude_for_glmer():
    data = dataset("cbpp").copy()
    data.loc[data.index[[1, 7]], "incidence"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = mm.glmer(CALLS["cb"][0], data, family="binomial", na_action="exclude")
    for series in (g.fitted, g.residuals(), g.linear_predictor, g.predict(), g.weights("working"), g.hatvalues()):
        assert series.index.equals(data.index) and list(np.flatnonzero(series.isna())) == [1, 7]

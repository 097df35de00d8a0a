"""Parametric bootstrap (lme4's bootMer) and refitting to a new response.

The R reference (sleepstudy_bootmer.json) is bootMer with nsim = 2000; here
nsim = 200 to keep the suite fast.  Monte Carlo tolerances, per statistic
with bootstrap SD ``s``, combining our noise (200 replicates) and R's (2000):

* mean: 4 x ``s sqrt(1/200 + 1/2000)`` = 0.30 s;
* SD: relative SE of a sample SD is ``1/sqrt(2(n - 1))``: 4 x sqrt(0.05^2 + 0.016^2) = 21 %;
* 2.5 % / 97.5 % quantiles: SE ~ ``sqrt(p(1-p)/n) / phi(1.96)`` = 0.19 s (ours) and
  0.06 s (R's): tolerance 4 x 0.2 s = 0.8 s; median: 4 x 0.093 s = 0.37 s.

A bootstrap that kept the random effects fixed would give an intercept SD of
about 2.5 instead of 6.9 and fail.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import mixedmodels as mm
from conftest import as_list, dataset, fitted_lmer, reference
from mixedmodels.inference.bootstrap import BootstrapResult, _replace_last_row, bootstrap, refit
from mixedmodels.lmm.model import LinearMixedModel

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel

NSIM = 200


def fixef_and_sigma(fit) -> pd.Series:
    return pd.concat([fit.fixef, pd.Series({"sigma": fit.sigma})])


@lru_cache(maxsize=None)
def sleep_boot() -> BootstrapResult:
    fit = fitted_lmer("Reaction ~ Days + (Days | Subject)", "sleepstudy")
    return bootstrap(fit, fixef_and_sigma, nsim=NSIM, seed=101, progress=False)


# --- against bootMer ---------------------------------------------------------------------
def test_matches_bootmer_within_monte_carlo_error():
    ref, boot = reference("sleepstudy_bootmer"), sleep_boot()
    assert list(boot.t0.index) == ref["stat_names"]
    np.testing.assert_allclose(boot.t0, ref["t0"], rtol=1e-6)
    sd_ref = np.array(ref["sd"])
    assert boot.n_ok == NSIM
    assert np.all(np.abs(boot.mean().to_numpy() - ref["mean"]) < 4 * sd_ref * np.sqrt(1 / NSIM + 1 / 2000))
    assert np.all(np.abs(boot.sd().to_numpy() / sd_ref - 1) < 0.21)
    quantiles = boot.quantile(ref["quantile_probs"]).to_numpy()
    expected = np.array(ref["quantiles"])
    tolerance = np.column_stack([0.8 * sd_ref, 0.37 * sd_ref, 0.8 * sd_ref])
    assert np.all(np.abs(quantiles - expected) < tolerance)


def test_same_seed_same_replicates_and_different_seed_different():
    fit = fitted_lmer("Reaction ~ Days + (1 | Subject)", "sleepstudy")
    first = bootstrap(fit, lambda m: m.sigma, nsim=5, seed=3, progress=False)
    again = bootstrap(fit, lambda m: m.sigma, nsim=5, seed=3, progress=False)
    other = bootstrap(fit, lambda m: m.sigma, nsim=5, seed=4, progress=False)
    pd.testing.assert_frame_equal(first.replicates, again.replicates)
    assert not np.allclose(first.replicates, other.replicates)


# --- refit ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "formula, data_name, options",
    [
        ("Reaction ~ Days + (Days | Subject)", "sleepstudy", {}),
        ("Reaction ~ Days + (Days | Subject)", "sleepstudy", {"weights": True}),
        ("Reaction ~ Days + offset(2 * Days) + (Days || Subject)", "sleepstudy", {}),
        ("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin", {}),
    ],
)
def test_refit_equals_building_the_model_again(formula, data_name, options):
    data = dataset(data_name)
    kwargs = {"weights": 1 + data["Days"].to_numpy() % 3} if options.get("weights") else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mm.lmer(formula, data, **kwargs)
        y = fit.simulate(seed=9).iloc[:, 0].to_numpy()
        swapped = refit(fit, y)
        from dataclasses import replace

        # same start as refit(), so both runs of the optimizer see the same function values
        rebuilt = LinearMixedModel.from_inputs(replace(fit.model.inputs, y=y), REML=True).fit(start=fit.theta)
    np.testing.assert_allclose(swapped.model.crossprods.a22, rebuilt.model.crossprods.a22, rtol=1e-12, atol=1e-9)
    # the same objective function (to rounding) ...
    for theta in (fit.theta, 0.5 * fit.theta + 0.1):
        assert swapped.model.objective(theta) == pytest.approx(rebuilt.model.objective(theta), rel=1e-10)
    # ... so the same optimum, up to the optimizer's tolerance on a flat objective
    assert swapped.objective == pytest.approx(rebuilt.objective, rel=1e-10)
    np.testing.assert_allclose(swapped.beta, rebuilt.beta, rtol=1e-5)
    np.testing.assert_allclose(swapped.sigma, rebuilt.sigma, rtol=1e-5)
    np.testing.assert_array_equal(fit.model.inputs.y, dataset(data_name)[fit.model.inputs.formula.response])


def test_sparse_cross_product_row_is_replaced():
    dense = np.arange(12.0).reshape(3, 4)
    out = _replace_last_row(sp.csr_array(dense), np.array([9.0, 8.0, 7.0, 6.0]))
    assert sp.issparse(out)
    np.testing.assert_array_equal(out.toarray(), np.vstack([dense[:2], [9.0, 8.0, 7.0, 6.0]]))


def test_refit_checks_the_response_shape(sleep_fit):
    with pytest.raises(mm.MixedModelsError, match="shape"):
        refit(sleep_fit, np.ones(5))


# --- the result object -------------------------------------------------------------------------
def test_result_summaries():
    boot = sleep_boot()
    assert boot.nsim == NSIM and boot.replicates.shape == (NSIM, 3)
    assert list(boot.quantile([0.025, 0.975]).columns) == ["2.5 %", "97.5 %"]
    percentile = boot.confint()
    np.testing.assert_allclose(percentile.to_numpy(), boot.replicates.quantile([0.025, 0.975]).T.to_numpy())
    normal = boot.confint(method="normal")
    centre = 2 * boot.t0 - boot.mean()
    np.testing.assert_allclose(normal.mean(axis=1), centre, rtol=1e-12)
    basic = boot.confint(method="basic", level=0.9)
    assert list(basic.columns) == ["5 %", "95 %"]
    assert np.all(basic.iloc[:, 0] < basic.iloc[:, 1])
    table = boot.summary()
    assert list(table.columns) == ["R", "original", "bootBias", "bootSE", "bootMed"]
    np.testing.assert_allclose(table["bootSE"], boot.sd())
    with pytest.raises(mm.MixedModelsError, match="unknown interval method"):
        boot.confint(method="bca")


@pytest.mark.parametrize(
    "statistic, names",
    [
        (lambda m: m.sigma, ["t1"]),
        (lambda m: np.array([m.sigma, m.beta[0]]), ["t1", "t2"]),
        (lambda m: {"s": m.sigma, "b0": m.beta[0]}, ["s", "b0"]),
        (lambda m: m.fixef, ["(Intercept)", "Days"]),
    ],
)
def test_statistic_forms(statistic, names):
    fit = fitted_lmer("Reaction ~ Days + (1 | Subject)", "sleepstudy")
    boot = bootstrap(fit, statistic, nsim=2, seed=1, progress=False)
    assert list(boot.t0.index) == names and list(boot.replicates.columns) == names


def test_failed_refits_are_recorded_not_raised(monkeypatch):
    fit = fitted_lmer("Reaction ~ Days + (1 | Subject)", "sleepstudy")
    import mixedmodels.inference.bootstrap as module

    calls = {"n": 0}
    original = module._Refitter.__call__

    def sometimes_failing(self, y):
        calls["n"] += 1
        if calls["n"] == 2:
            raise mm.ModelSpecError("simulated failure")
        return original(self, y)

    monkeypatch.setattr(module._Refitter, "__call__", sometimes_failing)
    boot = bootstrap(fit, lambda m: m.sigma, nsim=3, seed=1, progress=False)
    assert boot.n_ok == 2 and boot.replicates.iloc[1].isna().all()
    assert boot.failures == ("ModelSpecError: simulated failure",)


def test_progress_bar_and_argument_checks(capsys):
    fit = fitted_lmer("Reaction ~ Days + (1 | Subject)", "sleepstudy")
    bootstrap(fit, lambda m: m.sigma, nsim=2, seed=1, progress=True)
    assert "bootstrap" in capsys.readouterr().err
    with pytest.raises(mm.MixedModelsError, match="statistic"):
        bootstrap(fit, "sigma", nsim=2)
    with pytest.raises(mm.MixedModelsError, match="nsim"):
        bootstrap(fit, lambda m: m.sigma, nsim=0)


def test_lm_bootstrap_se_matches_the_analytic_se():
    """For lm the parametric bootstrap SD of beta estimates its SE: 300 replicates, 4 x 4.1 % tolerance."""
    fit = mm.lm("Reaction ~ Days", dataset("sleepstudy"))
    boot = bootstrap(fit, lambda m: m.fixef, nsim=300, seed=5, progress=False)
    assert np.all(np.abs(boot.sd() / fit.se - 1) < 4 / np.sqrt(2 * 299))


def test_use_re_keeps_the_random_effects():
    """Conditioning on the modes removes the between-subject variation of the intercept."""
    fit = fitted_lmer("Reaction ~ Days + (Days | Subject)", "sleepstudy")
    boot = bootstrap(fit, lambda m: m.beta[0], nsim=40, seed=2, progress=False, use_re=True)
    assert boot.sd().iloc[0] < 0.5 * as_list(reference("sleepstudy_bootmer")["sd"])[0]


def test_glmer_bootstrap_refits_the_glmm():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", dataset("cbpp"), family="binomial")
    boot = bootstrap(fit, lambda m: m.fixef, nsim=4, seed=1, progress=False)
    assert boot.n_ok == 4 and list(boot.t0.index) == fit.fixef_names
    assert boot.replicates.std().gt(0).all()
    y = fit.simulate(seed=3).iloc[:, 0].to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = refit(fit, y)
        direct = mm.glmer("cbind(s, size - s) ~ period + (1 | herd)", dataset("cbpp").assign(s=y), family="binomial")
    np.testing.assert_allclose(again.beta, direct.beta, rtol=1e-6)


def test_public_names():
    assert mm.bootstrap is bootstrap
    from mixedmodels.inference.compare import anova, ranova
    from mixedmodels.linear_models.model import glm, lm

    assert (mm.anova, mm.ranova, mm.lm, mm.glm) == (anova, ranova, lm, glm)

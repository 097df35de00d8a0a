"""Refits to new responses (lmm/refit.py, linalg/blocked_batch.py): one at a time and batched.

- ``m.refit(y)`` equals a model built again for ``y`` (tests/inference/test_bootstrap.py checks the
  blocks; here the method and the GLMM case);
- the batched objective and gradient equal the blocked ones for every response, to
  rounding (1e-9 relative: the same sums in another order);
- batched fits reach the optimum of one-by-one fits: objective within 1e-7 (two
  optimizers stopping within ftol_abs = 1e-8 of the optimum of a flat function), estimates
  within 1e-3 relative, the same singular flags and convergence messages;
- the power simulation's batched path gives the same p-values as fitting data set by data
  set (the same draws: the response sampler repeats the data sets' random numbers).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import dataset, fitted_lmer
from mixedmodels.linalg.blocked_batch import BlockedBatch
from mixedmodels.linalg.gradient import gradient_factor, profiled_gradient
from mixedmodels.lmm.refit import ResponseRows, fit_many, refit_lmm
from mixedmodels.simulate import simulate_responses

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel

CASES = [
    ("Reaction ~ Days + (Days | Subject)", "sleepstudy", True),
    ("Reaction ~ Days + (Days | Subject)", "sleepstudy", False),
    ("Reaction ~ Days + (Days || Subject)", "sleepstudy", True),
    ("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin", True),
    ("strength ~ 1 + (1 | batch/cask)", "Pastes", True),
    ("Yield ~ 1 + (1 | Batch)", "Dyestuff2", True),  # singular: the bound, and the checks' boundary rule
]


def _fit_and_responses(formula, data_name, reml, count=24, seed=4):
    fit = fitted_lmer(formula, data_name, reml)
    return fit, simulate_responses(fit, count, np.random.default_rng(seed))


@pytest.mark.parametrize("formula, data_name, reml", CASES)
def test_batched_objective_and_gradient_equal_the_blocked_ones(formula, data_name, reml):
    fit, responses = _fit_and_responses(formula, data_name, reml, count=5)
    model, rows = fit.model, ResponseRows(fit.model)
    cp = model.crossprods
    batch = BlockedBatch.from_rows(cp, rows.rows(responses), reml, model._log_weights())
    x = cp.to_scaled_theta(fit.theta)[None] * np.linspace(0.6, 1.4, 5)[:, None] + 0.05
    state = batch.factor(x)
    gradients = batch.gradient(state)
    for j in range(5):
        single = rows.model_for(responses[:, j])
        factor = gradient_factor(single.crossprods, single.crossprods.from_scaled_theta(x[j]))
        assert state.value[j] == pytest.approx(single.objective_from(factor), rel=1e-9)
        np.testing.assert_allclose(gradients[j], profiled_gradient(factor, reml), rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("formula, data_name, reml", CASES)
def test_batched_fits_reach_the_one_by_one_optimum(formula, data_name, reml):
    fit, responses = _fit_and_responses(formula, data_name, reml)
    rows = ResponseRows(fit.model)
    many = fit_many(fit.model, responses, fit.theta, rows)
    assert all(f is None for f in many.failures)
    for j in range(responses.shape[1]):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            single = refit_lmm(fit, responses[:, j], rows)
        assert many.objective[j] <= single.objective + 1e-7
        assert many.objective[j] >= single.objective - 1e-7
        np.testing.assert_allclose(many.theta[j], single.theta, rtol=1e-3, atol=2e-3)
        np.testing.assert_allclose(many.beta[j], single.beta, rtol=1e-5, atol=1e-6 * np.abs(single.beta).max())
        np.testing.assert_allclose(many.se[j], single.se.to_numpy(), rtol=1e-3)
        assert many.sigma[j] == pytest.approx(single.sigma, rel=1e-5)
        assert many.singular[j] == single.is_singular
        convergence = [w for w in caught if issubclass(w.category, mm.ConvergenceWarning)]
        assert bool(many.messages[j]) == bool(convergence)
        materialized = many.result(fit.model, rows, responses, j)
        assert materialized.objective == pytest.approx(many.objective[j], rel=1e-10, abs=1e-8)


def test_refit_method_starts_from_the_fit_and_reuses_the_design():
    fit, responses = _fit_and_responses("Reaction ~ Days + (Days | Subject)", "sleepstudy", True, count=1)
    again = fit.refit(responses[:, 0])
    assert again.optinfo.initial.tobytes() == fit.theta.tobytes()
    assert again.model.crossprods.a11 is fit.model.crossprods.a11  # the design's blocks are shared
    rebuilt = mm.lmer("Reaction ~ Days + (Days | Subject)", dataset("sleepstudy").assign(Reaction=responses[:, 0]))
    assert again.objective == pytest.approx(rebuilt.objective, abs=1e-7)
    np.testing.assert_allclose(again.fixef, rebuilt.fixef, rtol=1e-6)


def test_refit_method_of_a_glmm():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", dataset("cbpp"), family="binomial")
        y = fit.simulate(seed=3).iloc[:, 0].to_numpy()
        again = fit.refit(y)
    assert again.model.inputs.y[:, 0].tolist() == y.tolist()
    assert np.isfinite(again.objective)


# --- power: the batched path against data set by data set ----------------------------------------
DESIGN = dict(
    n_groups=12,
    n_obs=6,
    between={"condition": ["A", "B"]},
    fixed={"(Intercept)": 0.0, "conditionB": 0.8},
    group_sd=0.7,
    sigma=1.0,
)
MODELS = {"OLS": "y ~ condition", "lmer": "y ~ condition + (1 | participant)"}


def test_response_sampler_repeats_the_data_sets_draws():
    from mixedmodels.planning.study import response_sampler, sampler

    frame, draw = response_sampler(DESIGN)
    source, _ = sampler(DESIGN)
    data = source(np.random.default_rng(11))
    np.testing.assert_array_equal(draw(np.random.default_rng(11)), data["y"].to_numpy())
    pd.testing.assert_frame_equal(frame.drop(columns="y"), data.drop(columns="y"))


@pytest.mark.parametrize("method", ["lrt", "wald", "satterthwaite"])
def test_power_batched_equals_data_set_by_data_set(method, monkeypatch):
    import mixedmodels.planning.power as powersim

    batched = mm.power(DESIGN, MODELS, test="conditionB", method=method, nsim=15, seed=8, progress=False)
    monkeypatch.setattr(powersim, "_response_batch", lambda design, streams, progress: None)
    looped = mm.power(DESIGN, MODELS, test="conditionB", method=method, nsim=15, seed=8, progress=False)
    np.testing.assert_allclose(batched.pvalues.to_numpy(), looped.pvalues.to_numpy(), rtol=1e-4, atol=1e-7)
    pd.testing.assert_series_equal(batched.table["singular"], looped.table["singular"])


def test_power_with_a_drawn_covariate_takes_the_general_path():
    design = {**DESIGN, "covariates": {"x": 1.0}}
    result = mm.power(
        design, "y ~ condition + x + (1 | participant)", test="conditionB", nsim=4, seed=2, progress=False
    )
    assert result.table.loc["y ~ condition + x + (1 | participant)", "fits"] == 4


@pytest.mark.parametrize("formula, data_name, reml", CASES[:1] + CASES[3:4])
def test_a_batched_fits_results_form_their_factor_on_first_use(formula, data_name, reml):
    """``ManyFits.result`` keeps the batch's estimates and forms the factor (and the modes) only when
    asked: what reads them (ranef, vcov, SEs) equals the results assembled from the factor at once.
    The batch's beta and sigma solve the same system by other calls: equal to ~1e-10 relative."""
    fit, responses = _fit_and_responses(formula, data_name, reml, count=3)
    rows = ResponseRows(fit.model)
    many = fit_many(fit.model, responses, fit.theta, rows)
    lazy = many.result(fit.model, rows, responses, 1)
    assert lazy._factor is None and lazy._spherical is None
    eager = lazy.model.results_from(lazy.optinfo)
    np.testing.assert_allclose(lazy.beta, eager.beta, rtol=1e-9, atol=1e-9 * np.abs(eager.beta).max())
    assert lazy.sigma == pytest.approx(eager.sigma, rel=1e-9)
    assert lazy.objective == pytest.approx(eager.objective, rel=1e-12, abs=1e-9)
    lazy_ranef = lazy.ranef()
    for group, table in eager.ranef().items():
        np.testing.assert_allclose(lazy_ranef[group].to_numpy(), table.to_numpy(), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(lazy.vcov.to_numpy(), eager.vcov.to_numpy(), rtol=1e-8)

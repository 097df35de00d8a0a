"""The course's Bayesian pooling models (issue 21 items 1-2), as docs/examples/bayesian_pooling.py fits them.

The slides' three models with N(0, 1000^2) priors on coefficients and HalfCauchy(0, 100) on SDs:
complete pooling (``mm.bayes.lm``), no pooling as taught (``(1 | player)`` with ``sd = Fixed(1000)``)
and partial pooling, plus ``compare_pooling(method="bayes")``, on sleepstudy and on a Raptors-like
season (17 players x 82 games, simulated with a fixed seed).  Criteria (issue 21): every fit has
R-hat < 1.01 and no divergent transitions, at the example's fixed seeds (4 chains x 500 draws
after 500 warmup: the fast mode, to keep the suite short).

Tolerances: with diffuse priors the posterior means of the coefficients are the least-squares
estimates up to Monte-Carlo error and the prior's pull (``(SE / 1000)^2`` relative, < 1e-3 here):
within 4 Monte-Carlo SEs plus 1e-3 SE; posterior SDs within 10 % of the least-squares SEs (the
posterior is a Student-t rather than a normal, and the SD of 2000 draws has ~2 % error).  The no-
pooling intercept a0 is identified only by its prior: its posterior SD is 1000 / sqrt(J + 1)
(a0 | coefficients combines J + 1 normal terms of SD 1000), within 10 %.
"""

from __future__ import annotations

import runpy
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("numpyro")

import mixedmodels as mm  # noqa: E402
import mixedmodels.bayes as bayes  # noqa: E402
from mixedmodels.bayes import diagnostics as D  # noqa: E402

from conftest import dataset  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "bayesian_pooling.py"
CASES = {"raptors": None, "sleepstudy": "Reaction ~ Days + (1 | Subject)"}


@pytest.fixture(scope="module")
def example():
    return runpy.run_path(str(EXAMPLE), run_name="example_bayesian_pooling")


@pytest.fixture(scope="module")
def recipes(example):
    out = {}
    for name, formula in CASES.items():
        if formula is None:
            out[name] = example["main"](fast=True)
        else:
            out[name] = example["main"](fast=True, data=dataset("sleepstudy"), formula=formula)
    return out


def _within_mcse(draws: np.ndarray, target: float, se: float) -> bool:
    return abs(draws.mean() - target) <= 4 * D.mcse_mean(draws) + 1e-3 * se


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_model_samples_cleanly(recipes, case):
    checks = recipes[case]["checks"]
    assert set(checks) == {"complete", "no (taught)", "partial", "no (0 + player)"}
    for name, check in checks.items():
        assert check["max_r_hat"] < 1.01, (case, name, check)
        assert check["divergences"] == 0, (case, name, check)
    cmp = recipes[case]["comparison"]
    complete = cmp.complete_fit.results.diagnostics
    assert complete["max_r_hat"] < 1.01 and complete["divergences"] == 0


@pytest.mark.parametrize("case", sorted(CASES))
def test_complete_pooling_is_least_squares(recipes, case):
    recipe = recipes[case]
    fit = recipe["fits"]["complete"]
    assert not fit.terms and fit.model.spec.terms == ()
    formula = fit.formula
    lm = mm.lm(formula, recipe["data"])
    draws = fit.parameters()
    for name in lm.fixef.index:
        assert _within_mcse(draws[name].to_numpy(), lm.fixef[name], lm.se[name]), name
        assert draws[name].std() == pytest.approx(lm.se[name], rel=0.1), name
    assert draws["sigma"].mean() == pytest.approx(lm.sigma, rel=0.02)
    text = str(fit.summary())
    assert "Bayesian linear model (NUTS" in text and "no groups: complete pooling" in text
    hdi = fit.hdi()
    assert set(hdi["effect"]) == {"fixed", "ran_pars"} and set(hdi["term"]) == {*lm.fixef.index, "sigma"}
    idata = fit.idata
    assert set(idata.posterior.data_vars) == {"fixef", "sigma"} and "log_likelihood" in idata.groups()
    assert fit.posterior_predict(ndraws=5, seed=1).shape == (5, lm.nobs)


def test_lmer_accepts_a_formula_without_bars(recipes):
    """mm.bayes.lmer("y ~ x") is the complete-pooling model: the same draws as mm.bayes.lm at the same seed."""
    recipe = recipes["sleepstudy"]
    fit = recipe["fits"]["complete"]
    settings = fit.settings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayes.SamplingWarning)
        again = bayes.lmer(
            "Reaction ~ Days",
            recipe["data"],
            priors=recipe_priors(),
            draws=fit.ndraws,
            warmup=settings.warmup,
            chains=fit.nchains,
            seed=fit.seed,
            progress=False,
        )
    pd.testing.assert_frame_equal(again.parameters(), fit.parameters())
    with pytest.raises(mm.MixedModelsError, match="no random-effects terms"):
        bayes.lm("Reaction ~ Days", recipe["data"], priors={**recipe_priors(), "sd": mm.priors.HalfCauchy(0, 100)})
    with pytest.raises(mm.MixedModelsError, match="mm.bayes.lm"):
        bayes.lm("Reaction ~ Days + (1 | Subject)", recipe["data"])


def recipe_priors():
    return {"fixef": mm.priors.Normal(0, 1000), "sigma": mm.priors.HalfCauchy(0, 100)}


@pytest.mark.parametrize("case", sorted(CASES))
def test_taught_no_pooling_gives_each_level_its_least_squares_coefficient(recipes, case):
    recipe = recipes[case]
    fit = recipe["fits"]["no (taught)"]
    (term,) = fit.model.spec.terms
    assert term.centred  # sampled in the coordinates where the data pin the coefficients down
    freq = mm.compare_pooling(formula_of(fit), recipe["data"])  # share_fixed: lm(y ~ x + group)
    assert freq.share_fixed
    no = freq.estimates("no")
    group = fit.terms[0].group
    coef = fit.hdi(effects="ran_coefs")
    coef = coef[coef["term"] == "(Intercept)"].set_index("level")
    se = freq.table.query("approach == 'no' and term == '(Intercept)'").set_index("group")["se"]
    draws = fit.ranef(draws=True)[group].xs("(Intercept)", axis=1, level="term").to_numpy()
    draws = draws + fit.parameters()["(Intercept)"].to_numpy()[:, None]
    for j, level in enumerate(fit.terms[0].levels):
        assert _within_mcse(draws[:, j], no.loc[level, "(Intercept)"], se[level]), level
    assert np.allclose(coef["mean"].loc[list(fit.terms[0].levels)], draws.mean(axis=0))
    slope = [c for c in no.columns if c != "(Intercept)"][0]
    assert _within_mcse(fit.parameters()[slope].to_numpy(), no[slope].iloc[0], freq.no_pooling_fit.se[slope])
    nlevels = fit.terms[0].nlevels
    assert fit.parameters()["(Intercept)"].std() == pytest.approx(1000 / np.sqrt(nlevels + 1), rel=0.1)


def formula_of(fit) -> str:
    return fit.formula


@pytest.mark.parametrize("case", sorted(CASES))
def test_side_by_side_table_and_shrinkage(recipes, case):
    cmp = recipes[case]["comparison"]
    table = cmp.table
    assert list(table.columns) == ["group", "n", "approach", "term", "estimate", "se", "lower", "upper"]
    assert set(table["approach"]) == {"complete", "no", "partial"}
    shrink = cmp.shrinkage.set_index("group")
    se = table.query("approach == 'no' and term == '(Intercept)'").set_index("group")["se"]
    far = (shrink["no_pooling"] - shrink["population"]).abs() > 2 * se.loc[shrink.index]
    assert far.sum() >= 5  # levels far from the population (a near one may cross it by Monte-Carlo error)
    toward = np.sign(shrink["population"] - shrink["no_pooling"]) == np.sign(shrink["shift"])
    assert toward[far].all()
    assert (shrink["fraction"][far].between(0, 1)).all()
    taught = recipes[case]["fits"]["no (taught)"].coef()
    ours = cmp.estimates("no")["(Intercept)"]
    (frame,) = taught.values()
    # the taught form and compare_pooling's 0 + group form are the same model up to the intercept's prior
    assert (np.abs(frame["(Intercept)"].loc[ours.index] - ours) < 0.15 * se.loc[ours.index]).all()

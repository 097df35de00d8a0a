"""power: rejection rates by simulation, their binomial intervals, and the Type-I check.

- binomial intervals against R (tests/reference/make_power.R: prop.test without
  continuity correction = Wilson, binom.test = Clopper-Pearson), to 1e-9 relative;
- the Type-I example with a fixed seed: OLS ignoring the clustering rejects a true null
  about 40 % of the time (the design effect 1 + (n - 1) ICC = 5.5 predicts
  P(|Z| > 1.96 / sqrt(5.5)) = 0.40), the mixed model about 5 %;
- power against the exact rate of the same Wald test: for a balanced between-groups
  design the REML estimate and SE of the effect are the two-sample t statistic on group
  means, so P(reject) = P(|T| > 1.96) with T noncentral t on J - 2 df.  The exact value
  must lie in the 99 % Wilson interval of the simulated rate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mixedmodels as mm
from conftest import reference
from mixedmodels.planning.power import PowerResult, binomial_ci

BETWEEN = dict(
    n_groups=30, n_obs=10, between={"condition": ["A", "B"]}, fixed={"(Intercept)": 0.0}, group_sd=1.0, sigma=1.0
)
MODELS = {"OLS": "y ~ condition", "lmer": "y ~ condition + (1 | participant)"}


@pytest.fixture(scope="module")
def type_one():
    return mm.power(BETWEEN, MODELS, test="conditionB", method="lrt", nsim=120, seed=2024, progress=False)


@pytest.mark.parametrize("case", reference("power_binomial_ci")["cases"], ids=lambda c: f"{c['x']}of{c['n']}")
def test_binomial_intervals_match_r(case):
    for method, key in (("wilson", "wilson"), ("clopper-pearson", "clopper_pearson")):
        low, high = binomial_ci(case["x"], case["n"], case["level"], method)
        np.testing.assert_allclose([low, high], case[key], rtol=1e-9, atol=1e-12)


def test_binomial_interval_edge_cases():
    assert all(np.isnan(binomial_ci(0, 0)))
    with pytest.raises(mm.ModelSpecError, match="wilson"):
        binomial_ci(1, 2, method="agresti")
    with pytest.raises(mm.ModelSpecError, match="level"):
        binomial_ci(1, 2, level=95)


def test_ols_ignoring_clustering_inflates_type_one_error(type_one):
    ols, mixed = type_one.table.loc["OLS"], type_one.table.loc["lmer"]
    assert ols["fits"] == mixed["fits"] == 120 and ols["failed"] == mixed["failed"] == 0
    assert ols["ci_low"] > 0.25  # far above the nominal 5 %
    low, high = binomial_ci(int(ols["rejected"]), 120, 0.99)
    assert low < 0.40 < high  # the design-effect prediction
    assert mixed["ci_low"] <= 0.05 <= mixed["ci_high"]  # the mixed model is near nominal
    assert type_one.true_value == 0.0 and "Type-I" in str(type_one)


def test_power_result_contents(type_one):
    assert isinstance(type_one, PowerResult)
    assert type_one.pvalues.shape == (120, 2) and list(type_one.pvalues.columns) == ["OLS", "lmer"]
    rate = (type_one.pvalues < 0.05).mean()
    np.testing.assert_allclose(type_one.rate.to_numpy(), rate.to_numpy())
    assert list(type_one.table.columns) == [
        "formula",
        "rejected",
        "fits",
        "rate",
        "ci_low",
        "ci_high",
        "failed",
        "singular",
    ]
    text = str(type_one)
    assert "OLS" in text and "lmer" in text and "95% CI (wilson)" in text


def test_same_seed_same_result():
    a = mm.power(BETWEEN, MODELS["lmer"], test="conditionB", method="wald", nsim=8, seed=5, progress=False)
    b = mm.power(BETWEEN, MODELS["lmer"], test="conditionB", method="wald", nsim=8, seed=5, progress=False)
    pd.testing.assert_frame_equal(a.pvalues, b.pvalues)


def test_power_matches_the_exact_rate_of_the_wald_test():
    effect, groups, n = 1.0, 30, 10
    design = {**BETWEEN, "fixed": {"(Intercept)": 0.0, "conditionB": effect}}
    result = mm.power(design, MODELS["lmer"], test="conditionB", method="wald", nsim=100, seed=7, progress=False)
    se = np.sqrt((1.0 + 1.0 / n) * (2 / (groups / 2)))
    exact = stats.nct.sf(1.959964, groups - 2, effect / se) + stats.nct.cdf(-1.959964, groups - 2, effect / se)
    row = result.table.iloc[0]
    low, high = binomial_ci(int(row["rejected"]), int(row["fits"]), 0.99)
    assert low < exact < high, (row["rate"], exact)
    assert "power" in str(result)


def test_design_from_a_simulated_data_set_and_from_a_function():
    data = mm.simulate_design(**BETWEEN, seed=1)
    a = mm.power(data, MODELS, test="conditionB", nsim=5, seed=3, progress=False)
    b = mm.power(BETWEEN, MODELS, test="conditionB", nsim=5, seed=3, progress=False)
    pd.testing.assert_frame_equal(a.pvalues, b.pvalues)

    def sample(rng):
        return mm.simulate_design(**BETWEEN, seed=rng)

    c = mm.power(sample, MODELS, test="conditionB", nsim=5, seed=3, progress=False)
    assert c.true_value is None and c.pvalues.notna().all().all()


def test_failed_fits_are_counted_not_raised():
    def sample(rng):
        data = mm.simulate_design(**BETWEEN, seed=rng)
        if rng.random() < 0.5:
            data["y"] = np.nan  # no complete rows: the fit fails with a DataError
        return data

    result = mm.power(sample, MODELS["lmer"], test="conditionB", nsim=12, seed=1, progress=False)
    row = result.table.iloc[0]
    assert row["failed"] == result.pvalues.iloc[:, 0].isna().sum()
    assert row["failed"] + row["fits"] == 12


def test_satterthwaite_p_values_are_never_smaller_than_wald():
    pytest.importorskip("mixedmodels.inference.ddf")
    wald = mm.power(BETWEEN, MODELS["lmer"], test="conditionB", method="wald", nsim=6, seed=9, progress=False)
    satt = mm.power(BETWEEN, MODELS["lmer"], test="conditionB", method="satterthwaite", nsim=6, seed=9, progress=False)
    assert np.all(satt.pvalues.to_numpy() >= wald.pvalues.to_numpy())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(test="conditionC"), "coefficients are: \\(Intercept\\), conditionB"),
        (dict(test="conditionB", method="bayes"), "unknown test method"),
        (dict(test="conditionB", nsim=0), "nsim"),
        (dict(test="conditionB", alpha=5), "alpha"),
        (dict(test="conditionB", ci="agresti"), "wilson"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(mm.ModelSpecError, match=message):
        mm.power(BETWEEN, MODELS, nsim=kwargs.pop("nsim", 2), progress=False, **kwargs)


def test_data_frame_without_truth_is_refused():
    with pytest.raises(mm.ModelSpecError, match="attrs"):
        mm.power(mm.datasets.load("sleepstudy"), "Reaction ~ Days + (1 | Subject)", test="Days", nsim=2)

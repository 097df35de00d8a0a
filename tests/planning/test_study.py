"""simulate_design: the layout of the designs, exact bookkeeping, and recovery of the parameters.

Tolerances are Monte-Carlo ones, stated per test:
- draws of the random effects and residuals: 4 standard errors of the sample statistic
  (SD: sd / sqrt(2 m); correlation: (1 - rho^2) / sqrt(m); mean: sd / sqrt(m));
- lmer recovery: the mean estimate over R replicates within 4 Monte-Carlo standard errors
  (the replicates' SD / sqrt(R)) of the truth.  Measured: every |mean - truth| is below
  1.3 Monte-Carlo SEs for these seeds (REML's small-sample bias is far smaller than that).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.planning.study import DesignTruth

RHO_DESIGN = dict(
    n_groups=100,
    n_obs=10,
    within={"condition": ["A", "B"]},
    fixed={"(Intercept)": 800.0, "conditionB": 50.0},
    group_sd={"(Intercept)": 100.0, "conditionB": 60.0},
    group_corr=0.7,
    sigma=50.0,
)
CROSSED_DESIGN = dict(
    n_groups=100,
    n_obs=5,
    n_items=50,
    between_items={"category": {"ingroup": -0.5, "outgroup": 0.5}},
    fixed={"(Intercept)": 800.0, "category": 50.0},
    group_sd={"(Intercept)": 100.0, "category": 40.0},
    group_corr=0.2,
    item_sd=80.0,
    sigma=200.0,
)
LINE = dict(covariates={"x": 1.0}, fixed={"(Intercept)": 2.0, "x": 0.5})


def _fit(formula: str, data: pd.DataFrame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.MixedModelsWarning)
        return mm.lmer(formula, data)


# --------------------------------------------------------------------------- the teaching designs
def test_alike_participants_have_no_group_variation():
    data = mm.simulate_design(10, 20, **LINE, seed=1)
    truth = data.attrs["truth"]
    assert data.shape == (200, 4) and list(data.columns) == ["participant", "x", "trial", "y"]
    assert list(data["participant"].cat.categories) == [f"p{i:02d}" for i in range(1, 11)]
    assert truth.formula == "y ~ x + (1 | participant)"
    assert np.all(truth.group_effects.to_numpy() == 0.0)
    assert truth.fixef.to_dict() == {"(Intercept)": 2.0, "x": 0.5}


def test_different_participants_formula_and_covariance():
    data = mm.simulate_design(10, 20, **LINE, group_sd={"(Intercept)": 1.0, "x": 0.5}, group_corr=-0.3, seed=1)
    truth = data.attrs["truth"]
    assert truth.formula == "y ~ x + (1 + x | participant)"
    np.testing.assert_allclose(truth.group_cov.to_numpy(), [[1.0, -0.15], [-0.15, 0.25]])
    np.testing.assert_allclose(truth.group_sd.to_numpy(), [1.0, 0.5])
    assert truth.group_corr.loc["(Intercept)", "x"] == pytest.approx(-0.3)


def test_one_outlier_participant_is_shifted_exactly():
    """With no other variation the outlier's coefficients are the fixed effects plus the shift."""
    data = mm.simulate_design(10, 20, **LINE, outliers=1, outlier_shift={"(Intercept)": 4.0, "x": -1.5}, seed=1)
    truth = data.attrs["truth"]
    assert truth.outlier_groups == ("p10",)
    coef = truth.coef()
    np.testing.assert_allclose(coef.loc["p10"], [6.0, -1.0])
    np.testing.assert_allclose(coef.drop("p10").to_numpy(), np.tile([2.0, 0.5], (9, 1)))
    assert truth.formula == "y ~ x + (1 + x | participant)"  # the outlier's slope differs, so it varies


def test_partial_pooling_sd_half():
    data = mm.simulate_design(20, 10, fixed={"(Intercept)": 1.0}, group_sd=0.5, seed=3)
    assert data.attrs["truth"].formula == "y ~ 1 + (1 | participant)"
    assert data.shape == (200, 3)


def test_hundred_by_two_conditions_by_ten_trials():
    data = mm.simulate_design(**RHO_DESIGN, seed=1)
    assert len(data) == 100 * 2 * 10
    counts = data.groupby(["participant", "condition"], observed=True).size()
    assert counts.eq(10).all() and len(counts) == 200
    assert data.attrs["truth"].formula == "y ~ condition + (1 + condition | participant)"


def test_hundred_by_fifty_stimuli_by_five_trials_crossed():
    data = mm.simulate_design(**CROSSED_DESIGN, seed=1)
    assert len(data) == 100 * 50 * 5
    assert data.groupby(["participant", "item"], observed=True).size().eq(5).all()
    per_item = data.groupby("item", observed=True)["category_label"].nunique()
    assert per_item.eq(1).all()  # a property of the stimulus ...
    per_participant = data.groupby("participant", observed=True)["category_label"].nunique()
    assert per_participant.eq(2).all()  # ... that varies within participants
    assert set(data["category"]) == {-0.5, 0.5}
    assert data.attrs["truth"].formula == "y ~ category + (1 + category | participant) + (1 | item)"


# --------------------------------------------------------------------------- bookkeeping
def test_response_is_exactly_fixed_plus_random_part_without_noise():
    """sigma = 0: y = x'beta + z'b_group + w'c_item exactly, from the returned truth."""
    kwargs = dict(
        CROSSED_DESIGN,
        n_groups=12,
        n_items=6,
        n_obs=2,
        sigma=0.0,
        item_sd={"(Intercept)": 80.0},
        within={"time": ["pre", "post"]},
    )
    kwargs["fixed"] = {**kwargs["fixed"], "timepost": -20.0, "category:timepost": 15.0}
    data = mm.simulate_design(**kwargs, seed=4)
    truth = data.attrs["truth"]
    post = (data["time"] == "post").to_numpy(float)
    x = {
        "(Intercept)": 1.0,
        "category": data["category"].to_numpy(),
        "timepost": post,
        "category:timepost": data["category"].to_numpy() * post,
    }
    expected = sum(truth.fixef[k] * v for k, v in x.items())
    g = truth.group_effects.loc[data["participant"].astype(str)].to_numpy()
    expected = expected + g[:, 0] + g[:, 1] * x["category"]
    expected = expected + truth.item_effects.loc[data["item"].astype(str), "(Intercept)"].to_numpy()
    np.testing.assert_allclose(data["y"].to_numpy(), expected, rtol=1e-12)


def test_between_conditions_rotate_over_groups():
    data = mm.simulate_design(6, 3, between={"group_type": ["control", "treated", "waitlist"]}, seed=1)
    per_group = data.groupby("participant", observed=True)["group_type"].agg(["nunique", "first"])
    assert per_group["nunique"].eq(1).all()
    assert list(per_group["first"]) == ["control", "treated", "waitlist"] * 2


def test_unbalanced_groups_and_trial_values():
    counts = [10] * 16 + [1, 2]
    data = mm.simulate_design(18, counts, covariates={"Days": range(10)}, group="Subject", response="Reaction", seed=2)
    sizes = data.groupby("Subject", observed=True).size().to_numpy()
    np.testing.assert_array_equal(sizes, counts)
    assert list(data.loc[data["Subject"] == "S18", "Days"]) == [0, 1]
    assert list(data.columns) == ["Subject", "Days", "trial", "Reaction"]


def test_same_seed_same_data_and_settings_resimulate():
    a = mm.simulate_design(**RHO_DESIGN, seed=11)
    b = mm.simulate_design(**RHO_DESIGN, seed=11)
    c = mm.simulate_design(**RHO_DESIGN, seed=12)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["y"], c["y"])
    again = mm.simulate_design(**a.attrs["truth"].settings, seed=11)
    pd.testing.assert_frame_equal(a, again)
    gen = mm.simulate_design(**RHO_DESIGN, seed=np.random.default_rng(11))
    pd.testing.assert_frame_equal(a, gen)


def test_inputs_are_not_modified():
    fixed = {"Intercept": 1.0}
    sd = {"1": 0.5}
    mm.simulate_design(5, 2, fixed=fixed, group_sd=sd, seed=1)
    assert fixed == {"Intercept": 1.0} and sd == {"1": 0.5}


def test_truth_is_a_design_truth_and_concat_keeps_working():
    a = mm.simulate_design(4, 2, seed=1)
    b = mm.simulate_design(4, 2, seed=2)
    assert isinstance(a.attrs["truth"], DesignTruth)
    assert len(pd.concat([a, b])) == 16  # attrs comparison must not raise


# --------------------------------------------------------------------------- the draws
def test_random_effects_and_residuals_have_the_stated_distribution():
    """m = 4000 groups: SDs within 4 sd/sqrt(2m), correlation within 4 (1 - rho^2)/sqrt(m)."""
    m = 4000
    data = mm.simulate_design(
        m, 2, within={"c": ["A", "B"]}, group_sd={"(Intercept)": 100.0, "cB": 40.0}, group_corr=0.7, sigma=50.0, seed=5
    )
    effects = data.attrs["truth"].group_effects.to_numpy()
    sd = effects.std(axis=0, ddof=1)
    assert abs(sd[0] - 100.0) < 4 * 100.0 / np.sqrt(2 * m)
    assert abs(sd[1] - 40.0) < 4 * 40.0 / np.sqrt(2 * m)
    assert abs(np.corrcoef(effects.T)[0, 1] - 0.7) < 4 * (1 - 0.7**2) / np.sqrt(m)
    assert np.all(np.abs(effects.mean(axis=0)) < 4 * np.array([100.0, 40.0]) / np.sqrt(m))
    b = effects[data["participant"].cat.codes.to_numpy()]
    resid = data["y"].to_numpy() - b[:, 0] - b[:, 1] * (data["c"] == "B").to_numpy()
    n = len(resid)
    assert abs(resid.std(ddof=1) - 50.0) < 4 * 50.0 / np.sqrt(2 * n)
    assert abs(resid.mean()) < 4 * 50.0 / np.sqrt(n)


def test_item_effects_have_the_stated_sd():
    m = 3000
    data = mm.simulate_design(2, 1, n_items=m, item_sd=80.0, seed=6)
    sd = data.attrs["truth"].item_effects["(Intercept)"].std(ddof=1)
    assert abs(sd - 80.0) < 4 * 80.0 / np.sqrt(2 * m)


# --------------------------------------------------------------------------- lmer recovers the truth
def _replicates(design: dict, formula: str, reps: int, seed: int) -> pd.DataFrame:
    rows = []
    for r in range(reps):
        fit = _fit(formula, mm.simulate_design(**design, seed=seed + r))
        vc = fit.varcorr
        sds = vc[vc["var2"].isna() & (vc["grp"] != "Residual")]
        corr = vc.loc[vc["var2"].notna(), "sdcor"]
        rows.append(
            {
                **fit.fixef.to_dict(),
                **{f"sd {g} {v}": s for g, v, s in zip(sds["grp"], sds["var1"], sds["sdcor"])},
                "corr": corr.iloc[0] if len(corr) else np.nan,
                "sigma": fit.sigma,
            }
        )
    return pd.DataFrame(rows)


def _assert_recovered(estimates: pd.DataFrame, truth: dict[str, float]) -> None:
    reps = len(estimates)
    for name, true in truth.items():
        mean, mc_se = estimates[name].mean(), estimates[name].std(ddof=1) / np.sqrt(reps)
        assert abs(mean - true) < 4 * mc_se, (name, mean, true, mc_se)


def test_lmer_recovers_correlated_intercepts_and_slopes():
    est = _replicates(RHO_DESIGN, "y ~ condition + (1 + condition | participant)", reps=12, seed=100)
    _assert_recovered(
        est,
        {
            "(Intercept)": 800.0,
            "conditionB": 50.0,
            "sd participant (Intercept)": 100.0,
            "sd participant conditionB": 60.0,
            "corr": 0.7,
            "sigma": 50.0,
        },
    )


def test_lmer_recovers_crossed_participants_and_items():
    design = dict(CROSSED_DESIGN, n_groups=40, n_items=20, n_obs=3)
    est = _replicates(design, "y ~ category + (1 + category | participant) + (1 | item)", reps=8, seed=200)
    _assert_recovered(
        est,
        {
            "(Intercept)": 800.0,
            "category": 50.0,
            "sd participant (Intercept)": 100.0,
            "sd participant category": 40.0,
            "corr": 0.2,
            "sd item (Intercept)": 80.0,
            "sigma": 200.0,
        },
    )


# --------------------------------------------------------------------------- bad designs
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(fixed={"z": 1.0}), "'z' is not a column of this design"),
        (dict(between={"g": ["a", "b"]}, group_sd={"gb": 1.0}), "varies only between groups"),
        (dict(n_items=4, between_items={"k": ["a", "b"]}, item_sd={"kb": 1.0}), "varies only between items"),
        (dict(within={"c": ["A", "B"]}, group_sd={"(Intercept)": 1.0, "cB": 1.0}, group_corr=1.5), "correlation"),
        (dict(n_obs=[1, 2]), "one per group"),
        (dict(outliers=1), "outlier_shift"),
        (dict(within={"c": ["A"]}), "at least two distinct levels"),
        (dict(covariates={"y": 1.0}), "used twice"),
        (dict(sigma=-1.0), "sigma"),
        (dict(between_items={"k": ["a", "b"]}), "n_items"),
        (dict(item_sd=80.0), "n_items"),
        (dict(covariates={"x": [0, 1]}, n_obs=3), "up to 3 trials"),
    ],
)
def test_bad_designs_raise_model_spec_error(kwargs, message):
    with pytest.raises(mm.ModelSpecError, match=message):
        mm.simulate_design(**{"n_groups": 4, "n_obs": 2, **kwargs})

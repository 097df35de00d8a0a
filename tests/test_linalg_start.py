"""Starting values for theta from moments (mixedmodels.linalg.start) and how fits use them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mixedmodels import LinearMixedModel
from mixedmodels.linalg.start import moment_start
from mixedmodels.lmm import prepare_inputs

from conftest import dataset


def _crossed(seed: int, sd_subject: float, sd_item: float, nsubj: int = 300, nitem: int = 60) -> pd.DataFrame:
    """Unbalanced crossed design: each subject sees a random third of the items; sigma = 1."""
    rng = np.random.default_rng(seed)
    subj, item = np.meshgrid(np.arange(nsubj), np.arange(nitem), indexing="ij")
    keep = rng.random(subj.shape) < 1 / 3
    subj, item = subj[keep], item[keep]
    y = 5 + rng.normal(0, sd_subject, nsubj)[subj] + rng.normal(0, sd_item, nitem)[item] + rng.normal(0, 1, subj.size)
    return pd.DataFrame({"y": y, "subj": pd.Categorical(subj), "item": pd.Categorical(item)})


@pytest.mark.parametrize("sd_subject, sd_item", [(0.5, 0.1), (2.0, 0.3), (0.2, 1.0)])
def test_moment_start_is_near_the_truth_for_a_crossed_design(sd_subject, sd_item):
    data = _crossed(7, sd_subject, sd_item)
    model = LinearMixedModel.from_formula("y ~ 1 + (1 | subj) + (1 | item)", data)
    cp = model.crossprods
    start = cp.from_scaled_theta(moment_start(cp))
    order = [model.theta_names.index(name) for name in ("subj.(Intercept)", "item.(Intercept)")]
    # theta = sd / sigma with sigma = 1; the estimate comes from one sample of
    # 300 subjects and 60 items, so within a third of the truth (or 0.1 absolute).
    np.testing.assert_allclose(start[order], [sd_subject, sd_item], rtol=0.35, atol=0.1)


def test_moment_start_is_none_for_observation_level_effects():
    data = _crossed(3, 1.0, 0.5)
    data["obs"] = pd.Categorical(np.arange(len(data)))
    inputs = prepare_inputs("y ~ 1 + (1 | obs) + (1 | item)", data, allow_as_many_ranef_as_obs=True)
    model = LinearMixedModel.from_inputs(inputs)
    assert moment_start(model.crossprods) is None
    np.testing.assert_array_equal(model.starting_theta(), model.theta_start)


def test_moment_start_has_zero_off_diagonals_for_vector_terms():
    model = LinearMixedModel.from_formula("Reaction ~ Days + (Days | Subject)", dataset("sleepstudy"))
    start = moment_start(model.crossprods)
    assert start.shape == (3,)
    assert start[1] == 0.0 and start[0] > 0 and start[2] > 0


@pytest.mark.parametrize(
    "formula, data_name",
    [
        ("strength ~ 1 + (1 | batch/cask)", "Pastes"),
        ("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin"),
        ("Reaction ~ Days + (Days | Subject)", "sleepstudy"),
    ],
)
def test_starting_theta_is_the_better_of_identity_and_moments(formula, data_name):
    model = LinearMixedModel.from_formula(formula, dataset(data_name))
    chosen = model.starting_theta()
    moments = model.crossprods.from_scaled_theta(moment_start(model.crossprods))
    expected = min(model.objective(model.theta_start), model.objective(moments))
    assert model.objective(chosen) == expected


def test_fits_from_either_start_reach_the_same_optimum():
    # Pastes: the moment start wins (246.99 optimum, 248.3 there vs 273.9 at the identity).
    model = LinearMixedModel.from_formula("strength ~ 1 + (1 | batch/cask)", dataset("Pastes"))
    assert model.objective(model.starting_theta()) < model.objective(model.theta_start)
    from_moments = model.fit()
    from_identity = model.fit(start=model.theta_start)
    assert from_moments.optinfo.fmin == pytest.approx(from_identity.optinfo.fmin, abs=1e-8)
    np.testing.assert_allclose(from_moments.theta, from_identity.theta, rtol=1e-4)
    np.testing.assert_array_equal(from_identity.optinfo.initial, model.theta_start)

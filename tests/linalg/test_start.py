"""Starting values for theta from moments (mixedmodels.linalg.start) and how fits use them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mixedmodels import LinearMixedModel
from mixedmodels.linalg.start import moment_start
from mixedmodels.design.inputs import prepare_inputs

from conftest import dataset, need_numba

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel


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


@pytest.fixture(params=["compiled", "numpy"])
def dense_moment_path(request, monkeypatch):
    """A small model's moment start by the compiled kernel, or by the numpy path (as without numba)."""
    if request.param == "compiled":
        need_numba("the compiled moment start")
    else:
        monkeypatch.setattr("mixedmodels.linalg.start.compiled", lambda name: None)
    return request.param


@pytest.mark.parametrize(
    "formula, data_name",
    [
        ("Reaction ~ Days + (Days | Subject)", "sleepstudy"),
        ("Reaction ~ Days + (Days || Subject)", "sleepstudy"),
        ("Reaction ~ 0 + (1 | Subject)", "sleepstudy"),
        ("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin"),
        ("strength ~ 1 + (1 | batch/cask)", "Pastes"),
    ],
)
def test_compiled_moment_start_agrees_with_the_numpy_path(monkeypatch, formula, data_name):
    """The dense system's compiled start solves the same equations (its sums in another order: to rounding,
    which the moment system's conditioning amplifies to ~1e-13 here)."""
    need_numba("the compiled moment start")
    cp = LinearMixedModel.from_formula(formula, dataset(data_name)).crossprods
    assert cp.dense_system is not None
    compiled_start = moment_start(cp)
    monkeypatch.setattr("mixedmodels.linalg.start.compiled", lambda name: None)
    numpy_start = moment_start(cp)
    assert compiled_start.shape == numpy_start.shape
    np.testing.assert_allclose(compiled_start, numpy_start, rtol=1e-11, atol=0)


def test_moment_start_is_none_for_observation_level_effects_of_a_small_model(dense_moment_path):
    """One observation per level of ``obs``: its variance is aliased with sigma's, on either dense path."""
    rng = np.random.default_rng(5)
    data = pd.DataFrame(
        {"y": rng.normal(size=30), "obs": pd.Categorical(np.arange(30)), "g": pd.Categorical(np.arange(30) % 3)}
    )
    inputs = prepare_inputs("y ~ 1 + (1 | obs) + (1 | g)", data, allow_as_many_ranef_as_obs=True)
    model = LinearMixedModel.from_inputs(inputs)
    assert model.crossprods.dense_system is not None
    assert moment_start(model.crossprods) is None


@pytest.mark.parametrize("sparse_path", [False, True])
def test_moment_start_is_none_for_a_term_inside_the_fixed_effects(monkeypatch, sparse_path, dense_moment_path):
    """``Species`` both fixed and grouping: Z'MZ = 0, so the moments would divide rounding errors.

    On an AMD EPYC machine they gave a relative SD of 385162, where the (flat) REML criterion's
    computed value is 6e-5 below its true value and the fit then ended at 87.5154 instead of lme4's
    87.5221.
    """
    if sparse_path:  # the blocked moments (_moments), not the dense system's
        monkeypatch.setattr("mixedmodels.linalg.blocked.BlockedCrossProducts.dense_system", None)
    iris = dataset("iris")
    model = LinearMixedModel.from_formula("Sepal.Length ~ . + (1 | Species)", iris)
    assert moment_start(model.crossprods) is None
    np.testing.assert_array_equal(model.starting_theta(), model.theta_start)


def _dense_moment_theta(refs, zs, nlevels, xy, cp):
    """The moment equations solved with dense n x n algebra (columns scaled as in ``cp``)."""
    n = xy.shape[0]
    x, y = xy[:, :-1], xy[:, -1]
    m = np.eye(n) - x @ np.linalg.pinv(x)
    components = []
    for r, z, q, term in zip(refs, zs, nlevels, cp.terms):
        for c in range(z.shape[1]):
            zc = np.zeros((n, q))
            zc[np.arange(n), r] = z[:, c] / term.scales[c]
            components.append(zc)
    resid = m @ y
    count = len(components)
    lhs = np.zeros((count + 1, count + 1))
    rhs = np.zeros(count + 1)
    for t, zt in enumerate(components):
        rhs[t] = np.sum((zt.T @ resid) ** 2)
        lhs[t, count] = lhs[count, t] = np.trace(zt.T @ m @ zt)
        for u, zu in enumerate(components):
            lhs[t, u] = np.sum((zt.T @ m @ zu) ** 2)
    lhs[count, count], rhs[count] = n - x.shape[1], resid @ resid
    solution = np.linalg.solve(lhs, rhs)
    return np.maximum(np.sqrt(np.maximum(solution[:count], 0) / solution[count]), 0.05)


@pytest.mark.parametrize("dense_a21", [True, False])
def test_moment_start_solves_the_moment_equations(monkeypatch, dense_a21):
    """Vector big term, scalar and vector rest terms, X with two columns: against dense algebra."""
    import mixedmodels.linalg.blocked as blocked
    from mixedmodels.linalg import BlockedCrossProducts

    from .test_blocked import _problem

    if not dense_a21:
        monkeypatch.setattr(blocked, "_DENSE_LIMIT", 0)
    refs, zs, nlevels, xy, _ = _problem(seed=3)
    cp = BlockedCrossProducts.build(refs, zs, nlevels, xy)
    expected = _dense_moment_theta(refs, zs, nlevels, xy, cp)
    start = moment_start(cp)
    diagonal = np.concatenate([start[t.theta_start : t.theta_stop][_diagonal_positions(t.ncols)] for t in cp.terms])
    np.testing.assert_allclose(diagonal, expected, rtol=1e-9)


def _diagonal_positions(k: int) -> np.ndarray:
    from mixedmodels.design.covariance import lower_triangle

    rows, cols = lower_triangle(k)
    return np.flatnonzero(rows == cols)


@pytest.mark.parametrize(
    "formula, data_name",
    [("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin"), ("strength ~ 1 + (1 | batch/cask)", "Pastes")],
)
def test_moment_start_is_the_reml_estimate_for_balanced_designs(formula, data_name):
    # Balanced data: the moment (ANOVA) estimates are the REML estimates when positive.
    model = LinearMixedModel.from_formula(formula, dataset(data_name))
    start = model.crossprods.from_scaled_theta(moment_start(model.crossprods))
    np.testing.assert_allclose(start, model.fit().theta, rtol=1e-5)


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
    model = LinearMixedModel.from_formula("Reaction ~ Days + (Days | Subject)", dataset("sleepstudy"))
    assert model.objective(model.starting_theta()) < model.objective(model.theta_start)
    from_moments = model.fit()
    from_identity = model.fit(start=model.theta_start)
    assert from_moments.optinfo.feval < from_identity.optinfo.feval
    assert from_moments.optinfo.fmin == pytest.approx(from_identity.optinfo.fmin, abs=1e-8)
    np.testing.assert_allclose(from_moments.theta, from_identity.theta, rtol=1e-4)
    np.testing.assert_array_equal(from_identity.optinfo.initial, model.theta_start)


def test_a_failing_moment_estimate_falls_back_to_lme4s_start(monkeypatch):
    import mixedmodels.lmm.model as lmm

    def broken(cp):
        raise np.linalg.LinAlgError("singular")

    monkeypatch.setattr(lmm, "moment_start", broken)
    model = LinearMixedModel.from_formula("Reaction ~ Days + (Days | Subject)", dataset("sleepstudy"))
    np.testing.assert_array_equal(model.starting_theta(), model.theta_start)
    assert model.fit().optinfo.fmin == pytest.approx(1743.6282719, abs=1e-6)

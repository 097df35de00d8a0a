"""The analytic gradient of the profiled objective (linalg/gradient.py) against finite differences.

Every linear reference case (tests/lmm/test_model.py), REML and ML, at lme4's
optimum and at a point away from it; plus designs that reach the other
code paths: a vector term outside the first block, vector terms with
weights, a first term whose A21 is sparse (numba's level kernel and scipy's
products), the supernodal (reordered) path, and theta = 0.

Tolerance: the finite differences are fourth-order central differences with
step 1e-4 in the scaled theta (truncation ~1e-16 times the fifth derivative),
so their error is the objective's rounding, ~1e-13 |f| / 1e-4; the bound
``2e-8 * (|f| + 1) + 1e-6 * |g|`` is a few times that.  A wrong term in the
gradient is off by O(|g|) or O(1).
"""

from __future__ import annotations

import os

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import dataset
from mixedmodels.linalg import _kernels
from mixedmodels.linalg.gradient import gradient_factor, profiled_gradient
from lmm.test_model import EXTRA_CASES, LMM_CASES, derived_data
from mixedmodels.lmm.model import LinearMixedModel

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel


def _model(name: str, reml: bool) -> LinearMixedModel:
    if name in LMM_CASES:
        formula, data_name, _ = LMM_CASES[name]
        return LinearMixedModel.from_formula(formula, dataset(data_name), REML=reml)
    formula, data_name, _, options = EXTRA_CASES[name]
    data = derived_data(data_name)
    options = dict(options)
    if "weights" in options:
        options["weights"] = data[options["weights"]].to_numpy()
    return LinearMixedModel.from_formula(formula, data, REML=reml, **options)


def _objective(model: LinearMixedModel):
    cp = model.crossprods
    return lambda scaled: model.objective_from(cp.objective_factor(cp.from_scaled_theta(scaled)))


def _differences(func, x: np.ndarray, h: float = 1e-4) -> np.ndarray:
    out = []
    for e in np.eye(x.size) * h:
        out.append((8 * (func(x + e) - func(x - e)) - (func(x + 2 * e) - func(x - 2 * e))) / 12 / h)
    return np.array(out)


def _check(model: LinearMixedModel, scaled: np.ndarray) -> None:
    cp = model.crossprods
    func = _objective(model)
    gradient = profiled_gradient(gradient_factor(cp, cp.from_scaled_theta(scaled)), model.REML)
    expected = _differences(func, scaled)
    tolerance = 2e-8 * (abs(func(scaled)) + 1) + 1e-6 * np.abs(expected)
    np.testing.assert_array_less(np.abs(gradient - expected), tolerance)


def _points(model: LinearMixedModel) -> list[np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optimum = model.crossprods.to_scaled_theta(model.fit(mm.OptimizerSettings(optimizer="bobyqa")).theta)
    away = optimum * 1.3 + np.where(model.theta_lower == 0, 0.1, 0.05)
    return [optimum, away]


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
@pytest.mark.parametrize("name", sorted(set(LMM_CASES) - {"insteval"}) + sorted(EXTRA_CASES))
def test_gradient_equals_finite_differences_on_every_reference_case(name, reml):
    model = _model(name, reml)
    for point in _points(model):
        _check(model, point)


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
def test_gradient_on_insteval_through_the_supernodal_path(reml):
    pytest.importorskip("numba")
    if os.environ.get("MIXEDMODELS_NO_NUMBA", "") not in ("", "0"):  # the supernodal path needs the kernels
        pytest.skip("the supernodal path needs numba's kernels, and MIXEDMODELS_NO_NUMBA is set")
    model = _model("insteval", reml)
    assert model.crossprods.reordered_rest is not None  # the selected inverse on the supernodal pattern
    _check(model, np.array([0.28, 0.43, 0.09]))
    _check(model, np.array([0.5, 0.2, 0.3]))


def _synthetic(seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 3000
    g1, g2, x = rng.integers(0, 400, n), rng.integers(0, 15, n), rng.standard_normal(n)
    b1, b2 = rng.standard_normal(400), rng.standard_normal((15, 2))
    y = 1 + 0.5 * x + b1[g1] + b2[g2, 0] + b2[g2, 1] * x + 2 * rng.standard_normal(n)
    return pd.DataFrame(dict(y=y, x=x, g1=g1.astype(str), g2=g2.astype(str), w=rng.uniform(0.5, 2, n)))


SYNTHETIC = [
    ("y ~ x + (1 | g1) + (1 + x | g2)", False),  # a vector term in the rest block
    ("y ~ x + (1 + x | g1) + (1 | g2)", False),
    ("y ~ x + (1 + x | g1) + (1 + x | g2)", True),  # weights, two vector terms
    ("y ~ x + (1 | g1) + (1 | g2)", False),
]


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
@pytest.mark.parametrize("formula, weighted", SYNTHETIC)
def test_gradient_on_synthetic_designs(formula, weighted, reml):
    data = _synthetic()
    model = LinearMixedModel.from_formula(formula, data, REML=reml, weights=data["w"] if weighted else None)
    start = model.crossprods.to_scaled_theta(model.theta_start)
    _check(model, start * 0.7 + 0.1)


def _sparse_first_term() -> LinearMixedModel:
    """A first term with 3,000 levels and a slope: A21 is stored sparse."""
    rng = np.random.default_rng(5)
    n = 20_000
    g1, g2, x = rng.integers(0, 3000, n), rng.integers(0, 40, n), rng.standard_normal(n)
    y = x + rng.standard_normal(3000)[g1] + rng.standard_normal(40)[g2] + rng.standard_normal(n)
    data = pd.DataFrame(dict(y=y, x=x, g1=g1, g2=g2))
    model = LinearMixedModel.from_formula("y ~ x + (1 + x | g1) + (1 | g2)", data)
    assert not isinstance(model.crossprods.a21, np.ndarray)
    return model


def test_gradient_with_a_sparse_first_term_by_scipy_and_by_the_level_kernel(monkeypatch):
    model = _sparse_first_term()
    cp = model.crossprods
    point = cp.to_scaled_theta(model.theta_start) * 0.6
    factor = gradient_factor(cp, cp.from_scaled_theta(point))
    monkeypatch.setattr(_kernels, "compiled_if_loaded", lambda name: None)
    by_scipy = profiled_gradient(factor, True)
    monkeypatch.undo()
    _check(model, point)
    if _kernels.compiled("level_gradient_sums") is not None:
        np.testing.assert_allclose(profiled_gradient(factor, True), by_scipy, rtol=1e-9, atol=1e-8)


def test_a_scalar_term_at_zero_is_a_stationary_point():
    model = _model("penicillin_crossed", True)
    cp = model.crossprods
    point = np.array([0.0, 1.0])
    gradient = profiled_gradient(gradient_factor(cp, cp.from_scaled_theta(point)), True)
    assert gradient[0] == 0.0 or abs(gradient[0]) < 1e-10
    _check(model, point)


# --- the dense system of small models (linalg/dense_system.py) --------------------------------
SMALL = sorted(name for name in set(LMM_CASES) | set(EXTRA_CASES) if name != "insteval")


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
@pytest.mark.parametrize("name", SMALL)
def test_dense_system_objective_gradient_and_hessian(name, reml):
    """The dense path's objective and gradient equal the blocked path's (rounding); its Hessian the
    central differences of its gradient (step 1e-5: error ~1e-10 |H| + rounding 1e-13 |g| / 1e-5)."""
    model = _model(name, reml)
    cp = model.crossprods
    dense = cp.dense_system
    assert dense is not None
    x = _points(model)[1]
    factor = dense.factor(x)
    assert model.objective_from(factor) == pytest.approx(_objective(model)(x), rel=1e-12, abs=1e-9)
    blocked = profiled_gradient(gradient_factor(cp, cp.from_scaled_theta(x)), reml)
    gradient, hessian = dense.derivatives(factor, reml, cp.nobs)
    np.testing.assert_allclose(dense.gradient(factor, reml, cp.nobs), blocked, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(gradient, blocked, rtol=1e-8, atol=1e-8)
    h = 1e-5
    columns = [
        (dense.gradient(dense.factor(x + e), reml, cp.nobs) - dense.gradient(dense.factor(x - e), reml, cp.nobs))
        / (2 * h)
        for e in np.eye(x.size) * h
    ]
    np.testing.assert_allclose(hessian, np.array(columns), rtol=1e-5, atol=1e-6 * (1 + np.abs(hessian).max()))


def test_large_systems_have_no_dense_version():
    assert _model("insteval", True).crossprods.dense_system is None


# --- structured terms: the chain rule through d lambda / d theta ---------------------------------
STRUCTURED = [
    "Reaction ~ Days + diag(Days | Subject)",
    "Reaction ~ Days + cs(0 + Phase3 | Subject)",
    "Reaction ~ Days + ar1(0 + DayPair | Subject)",
    "Reaction ~ Days + cs(0 + Phase3 | Subject) + (1 | DayPair)",
    "Reaction ~ Days + (1 | Subject) + ar1(0 + DayPair | Phase3)",
    "Reaction ~ Days + (Days | Subject) + diag(0 + Phase3 | DayPair)",
]


def _structured_points(model: LinearMixedModel) -> list[np.ndarray]:
    """A point inside the bounds (SDs 0.3-1.1, correlations 0.35) and one with a negative correlation."""
    lower, upper = model.theta_lower, model.theta_upper
    sds = 0.3 + 0.8 * np.linspace(0, 1, lower.size)
    inside = np.where(np.isfinite(upper), 0.35, np.where(lower == 0, sds, 0.2))
    negative = np.where(np.isfinite(upper), np.maximum(lower + 0.05, -0.3), inside)
    cp = model.crossprods
    return [cp.to_scaled_theta(inside), cp.to_scaled_theta(negative)]


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
@pytest.mark.parametrize("formula", STRUCTURED)
def test_structured_gradient_equals_finite_differences(formula, reml):
    """The blocked gradient of diag, cs and ar1 terms (first term and rest terms) and the dense system's,
    against finite differences (tolerance as above; the structures' lambdas are smooth inside their bounds)."""
    from conftest import issue19_dataset

    model = LinearMixedModel.from_formula(formula, issue19_dataset("sleepstudy"), REML=reml)
    cp = model.crossprods
    assert not cp.unstructured
    dense = cp.dense_system
    for point in _structured_points(model):
        _check(model, point)
        if dense is not None:
            func = _objective(model)
            expected = _differences(func, point)
            gradient = dense.gradient(dense.factor(point), reml, cp.nobs)
            tolerance = 2e-8 * (abs(func(point)) + 1) + 1e-6 * np.abs(expected)
            np.testing.assert_array_less(np.abs(gradient - expected), tolerance)
            assert model.objective_from(dense.factor(point)) == pytest.approx(func(point), rel=1e-12)


def test_structured_dense_systems_have_no_exact_hessian():
    from conftest import issue19_dataset

    model = LinearMixedModel.from_formula(STRUCTURED[1], issue19_dataset("sleepstudy"), REML=True)
    dense = model.crossprods.dense_system
    assert dense is not None and dense.structured
    with pytest.raises(ValueError, match="unstructured"):
        dense.derivatives(dense.factor(model.crossprods.to_scaled_theta(model.theta_start)), True, 180)

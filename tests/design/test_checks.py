"""Bad input and hard models: a mixedmodels error or warning every time, never a silent wrong number."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import dataset

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel

FORMULA = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture()
def sleep():
    return dataset("sleepstudy").copy()


# --- bad input: (formula, data transform, error class, text the message must contain) -----------
BAD_INPUTS = {
    "unbalanced parentheses": ("Reaction ~ Days + (Days | Subject", None, mm.FormulaError, "never closed"),
    "bar outside parentheses": ("Reaction ~ Days | Subject", None, mm.FormulaError, "outside parentheses"),
    "empty grouping": ("Reaction ~ Days + (1 | )", None, mm.FormulaError, "no grouping factor"),
    "missing response": ("~ Days + (1 | Subject)", None, mm.FormulaError, "no response"),
    "no random term": ("Reaction ~ Days", None, mm.ModelSpecError, "no random-effects terms"),
    "unknown column": ("Reacton ~ Days + (1 | Subject)", None, mm.DataError, "did you mean 'Reaction'"),
    "unknown grouping column": ("Reaction ~ Days + (1 | Subjet)", None, mm.DataError, "did you mean 'Subject'"),
    "empty data": (FORMULA, lambda d: d.iloc[:0], mm.DataError, "no rows"),
    "no rows after dropping missing": (FORMULA, lambda d: d.assign(Reaction=np.nan), mm.DataError, "Reaction"),
    "non-numeric response": ("Subject ~ Days + (1 | Subject)", None, mm.DataError, "Subject"),
    "infinite response": (
        FORMULA,
        lambda d: d.assign(Reaction=d["Reaction"].where(d.index != 3, np.inf)),
        mm.DataError,
        "Reaction",
    ),
    "infinite predictor": (
        FORMULA,
        lambda d: d.assign(Days=d["Days"].where(d.index != 3, np.inf)),
        mm.DataError,
        "Days",
    ),
    "log of zero": ("Reaction ~ log(Days) + (1 | Subject)", None, mm.DataError, "log"),
    "one-level grouping factor": ("Reaction ~ Days + (1 | g)", lambda d: d.assign(g="a"), mm.ModelSpecError, "'g'"),
    "constant response": ("y ~ Days + (1 | Subject)", lambda d: d.assign(y=1.0), mm.DataError, "'y' is constant"),
    "python syntax error": ("Reaction ~ I(Days +) + (1 | Subject)", None, mm.FormulaError, "I(Days +)"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_raises_a_named_error(case, sleep):
    formula, transform, error, text = BAD_INPUTS[case]
    data = transform(sleep) if transform else sleep
    with pytest.raises(error) as info:
        mm.lmer(formula, data)
    assert text in str(info.value)


@pytest.mark.parametrize("data", [None, [1, 2], {"Reaction": [1.0]}, np.zeros((3, 3))])
def test_data_must_be_a_data_frame(data):
    with pytest.raises(mm.DataError, match="pandas DataFrame"):
        mm.lmer(FORMULA, data)


@pytest.mark.parametrize("formula", [None, 3, ""])
def test_formula_must_be_text(formula, sleep):
    with pytest.raises(mm.FormulaError):
        mm.lmer(formula, sleep)


def test_as_many_random_effects_as_observations_names_the_term():
    rng = np.random.default_rng(0)
    data = pd.DataFrame(
        {"y": rng.normal(size=40), "condition": np.tile(["a", "b"], 20), "participant": np.repeat(np.arange(20), 2)}
    )
    with pytest.raises(mm.ModelSpecError, match=r"\(=40\) for term \(1 \+ condition \| participant\)"):
        mm.lmer("y ~ condition + (condition | participant)", data)


@pytest.mark.parametrize(
    "weights, text",
    [
        ([1.0] * 3, "has 3 values"),
        (-np.ones(180), "non-negative"),
        (np.full(180, np.nan), "missing \\(NaN\\) for every row"),
    ],
)
def test_bad_weights(weights, text, sleep):
    with pytest.raises(mm.DataError, match=text):
        mm.lmer(FORMULA, sleep, weights=weights)


# --- warnings ----------------------------------------------------------------------------
def test_rank_deficient_columns_are_dropped_with_a_warning(sleep):
    sleep["Days2"] = 2 * sleep["Days"]
    with pytest.warns(mm.RankDeficiencyWarning, match="Days2"):
        fit = mm.lmer("Reaction ~ Days + Days2 + (1 | Subject)", sleep)
    assert list(fit.fixef.index) == ["(Intercept)", "Days"]


def test_predictors_on_very_different_scales_warn(sleep):
    sleep["big"] = np.random.default_rng(3).normal(scale=1e7, size=180)
    with pytest.warns(mm.ScaleWarning, match="rescal"):
        mm.lmer("Reaction ~ Days + big + (1 | Subject)", sleep)


def test_singular_fit_warns():
    with pytest.warns(mm.SingularFitWarning):
        assert mm.lmer("Yield ~ 1 + (1 | Batch)", dataset("Dyestuff2")).is_singular


@pytest.mark.parametrize("optimizer", ["auto", "bfgs", "bobyqa"])
def test_failed_convergence_warns(sleep, optimizer):
    # Newton (the default here) converges in 3 evaluations after the start: 2 are too few for any optimizer
    with pytest.warns(mm.ConvergenceWarning, match="maximum number of evaluations"):
        fit = mm.lmer(FORMULA, sleep, settings=mm.OptimizerSettings(maxeval=2, optimizer=optimizer))
    assert not fit.optinfo.converged
    assert "convergence code" in str(fit.summary())


# --- guarantees --------------------------------------------------------------------------
def test_input_frame_is_never_modified(sleep):
    before = sleep.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mm.lmer("log(Reaction) ~ scale(Days) + I(Days**2) + (Days || Subject)", sleep, weights=np.ones(180))
    pd.testing.assert_frame_equal(sleep, before)


def test_same_input_gives_the_same_bits(sleep):
    first, second = mm.lmer(FORMULA, sleep), mm.lmer(FORMULA, sleep)
    assert first.theta.tobytes() == second.theta.tobytes()
    assert first.beta.tobytes() == second.beta.tobytes()


def test_fitting_in_several_threads_is_safe(sleep):
    expected = mm.lmer(FORMULA, sleep).theta
    results, errors = [], []

    def work():
        try:
            results.append(mm.lmer(FORMULA, sleep).theta)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for theta in results:
        np.testing.assert_array_equal(theta, expected)


# --- hard numerical cases ---------------------------------------------------------------------
def test_equivariant_under_rescaling_y_and_x(sleep):
    base = mm.lmer(FORMULA, sleep)
    scaled = sleep.assign(Reaction=sleep["Reaction"] * 1e6, Days=sleep["Days"] * 1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.ScaleWarning)
        other = mm.lmer(FORMULA, scaled)
    t_base = base.fixef / base.se
    t_other = other.fixef / other.se
    np.testing.assert_allclose(t_other.to_numpy(), t_base.to_numpy(), rtol=1e-4)
    np.testing.assert_allclose(other.fixef.to_numpy(), base.fixef.to_numpy() * [1e6, 1e12], rtol=1e-4)
    assert other.sigma == pytest.approx(base.sigma * 1e6, rel=1e-4)


def test_highly_unbalanced_groups_fit():
    rng = np.random.default_rng(2)
    sizes = np.array([1, 10_000, 5, 50, 2, 300])
    group = np.repeat(np.arange(sizes.size), sizes)
    effects = rng.normal(scale=2.0, size=sizes.size)
    data = pd.DataFrame({"g": group, "y": 10 + effects[group] + rng.normal(size=group.size)})
    fit = mm.lmer("y ~ 1 + (1 | g)", data)
    assert fit.optinfo.converged and not fit.is_singular
    assert fit.sigma == pytest.approx(1.0, rel=0.05)
    assert fit.ranef()["g"].shape == (6, 1)


def test_a_failed_fit_leaves_no_state_behind(sleep):
    first = mm.lmer(FORMULA, sleep)
    theta = first.theta.copy()
    with pytest.raises(mm.DataError):
        mm.lmer(FORMULA, sleep, weights=-np.ones(180))
    with pytest.raises(mm.ModelSpecError):
        mm.lmer("Reaction ~ Days + (1 | g)", sleep.assign(g="a"))
    np.testing.assert_array_equal(first.theta, theta)
    assert mm.lmer(FORMULA, sleep).theta.tobytes() == theta.tobytes()


def test_the_quick_aliasing_check_keeps_only_what_the_qr_keeps() -> None:
    """X'X's Cholesky factor decides only far from lme4's threshold (issue 18): on random designs with
    near-aliased columns at every distance from it, whenever it decides, the QR's rule keeps the same columns."""
    from mixedmodels.design.checks import _clearly_independent, independent_columns

    rng = np.random.default_rng(18)
    decided = 0
    for _ in range(3000):
        n, p = int(rng.integers(3, 40)), int(rng.integers(2, 6))
        x = rng.normal(size=(n, p)) * 10.0 ** rng.uniform(-5, 5, size=p)
        if rng.random() < 0.6:  # a column within 1e-13 to 1e-2 of the span of the earlier ones
            j = int(rng.integers(1, p))
            x[:, j] = x[:, :j] @ rng.normal(size=j) + x[:, j] * 10.0 ** rng.uniform(-13, -2)
        if rng.random() < 0.3:
            x[:, 0] = 1.0
        quick = _clearly_independent(x, 1e-7)
        if quick is not None:
            decided += 1
            assert quick == independent_columns(x, 1e-7)
    assert decided > 500  # the quick path is taken for most designs, so the comparison means something
    exact = np.column_stack([np.ones(10), np.arange(10.0), 2.0 * np.arange(10.0)])
    assert _clearly_independent(exact, 1e-7) is None  # aliased: the QR decides (and drops the last)
    assert _clearly_independent(np.ones((5, 1)), 1e-7) is None  # one column: the QR's shortcut

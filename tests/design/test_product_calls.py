"""Numeric calls and offsets on the product path (:mod:`mixedmodels.design.calls`) give what formulaic gives.

``np.sin(2 * np.pi * Time)``, ``log(n)``, ``I(x**2)`` and ``offset(...)`` terms
are evaluated by NumPy on the product path; each design is compared with
formulaic's (both direct paths switched off, :func:`conftest.formulaic_design`):
names, matrix and offset bit for bit (the same NumPy operations in the same
order, in one process), column positions, formulaic's spec, replays on new
data (with missing values) and the errors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.design import fixed
from mixedmodels.design.calls import numeric_call
from mixedmodels.design.fixed import build_design
from mixedmodels.design.frame import model_frame
from mixedmodels.design.products import product_terms
from conftest import assert_same_design, formulaic_design, raised
from mixedmodels.errors import DataError


@pytest.fixture
def data() -> pd.DataFrame:
    rng = np.random.default_rng(23)
    n = 40
    return pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "pos": rng.uniform(0.5, 3.0, size=n),
            "k": rng.integers(1, 9, size=n),  # int64: formulaic reads it as float64
            "f": pd.Categorical(rng.choice(["a", "b", "c"], size=n), categories=["c", "a", "b"]),
            "s": rng.choice(["q", "p"], size=n).astype(object),
        },
        index=np.arange(300, 300 + n),
    )


CALLS = [
    "np.sin(2 * np.pi * x) + np.cos(2 * np.pi * x)",
    "np.sin(2*np.pi*x) + f",  # named as written
    "log(pos) + f * s",
    "np.log(pos) * f",
    "exp(x) + sqrt(pos) + np.exp(-x / 2) + np.sqrt(k)",
    "I(x**2) + I(k ** 2) + x",
    "I(-x + 2 * k - pos / 3)",
    "f * s + offset(pos)",
    "x + offset(log(pos))",
    "x + offset(np.log(pos)) + f",
    "offset(k) + x * f + offset(2 * pos)",  # two offsets, summed
    "0 + f + offset(np.log(k))",
    "np.log10(pos) + np.log2(k) + np.log1p(pos) + np.expm1(x) + np.abs(x) + np.tan(x)",
    "x:np.sin(pos) + np.cos(x):f",
    "1 + offset(log(pos))",  # an intercept and an offset only
]


@pytest.mark.parametrize("rhs", CALLS)
def test_calls_and_offsets_as_formulaic(rhs, data, monkeypatch) -> None:
    before = data.copy()
    fast = build_design(rhs, data)
    assert_same_design(fast, formulaic_design(rhs, data, monkeypatch))
    pd.testing.assert_frame_equal(data, before)


@pytest.mark.parametrize("rhs", ["x + offset(log(pos))", "np.sin(pos) * f + offset(k)"])
def test_model_frame_input_and_replays_with_missing_values(rhs, data, monkeypatch) -> None:
    """A model frame (incomplete rows dropped) and new data with NaN rows (R's na.pass)."""
    data = data.copy()
    data.loc[data.index[[2, 7]], "pos"] = np.nan
    data.loc[data.index[5], "k"] = np.nan
    frame = model_frame(data, ["x", "pos", "k", "f"])
    fast, slow = build_design(rhs, frame), formulaic_design(rhs, frame, monkeypatch)
    assert_same_design(fast, slow)
    new = data.iloc[[2, 3, 5, 9, 9]]
    np.testing.assert_array_equal(fast.for_newdata(new), slow.for_newdata(new))
    np.testing.assert_array_equal(fast.offset_for_newdata(new), slow.offset_for_newdata(new))
    assert np.isnan(fast.offset_for_newdata(new)[0]) and np.isfinite(fast.offset_for_newdata(new)[1])


@pytest.mark.parametrize(
    ("rhs", "change"),
    [
        ("x + offset(log(pos))", "nan pos"),  # missing values: DataError naming the column
        ("x + offset(log(pos))", "zero pos"),  # log(0): a non-finite offset
        ("np.log(pos) + f", "negative pos"),  # log(-1): a non-finite column
        ("np.sqrt(x) + f", None),
        ("I(x / (pos - pos)) + f", None),
        ("np.log(pos) + f + offset(nothere)", None),  # missing column
    ],
)
def test_errors_as_formulaic(rhs, change, data, monkeypatch) -> None:
    data = data.copy()
    if change == "nan pos":
        data.loc[data.index[3], "pos"] = np.nan
    elif change == "zero pos":
        data.loc[data.index[3], "pos"] = 0.0
    elif change == "negative pos":
        data.loc[data.index[3], "pos"] = -1.0
    fast = raised(lambda: build_design(rhs, data))
    slow = raised(lambda: formulaic_design(rhs, data, monkeypatch))
    assert fast == slow
    assert fast[0] is DataError


def _outcome(build):
    """A design's names, matrix and offset, or the type and message of the error building it raises."""
    try:
        design = build()
    except Exception as exc:  # noqa: BLE001 -- the error is the outcome compared
        return type(exc), str(exc)
    assert not isinstance(design._spec_source, fixed._DeferredSpec)
    return design.column_names, design.matrix.tolist(), None if design.offset is None else design.offset.tolist()


@pytest.mark.parametrize(
    "rhs",
    [
        "np.log(f) + x",  # a call of a factor
        "np.power(x, 2) + f",  # another function
        "I(x > 0) + f",
        "scale(np.log(pos)) + f",
        "x * offset(pos)",  # an offset in a product
        "np.log(pos, out=None) + f",
        "I(x^2) + f",  # Python's xor: formulaic raises
    ],
)
def test_other_calls_go_to_formulaic(rhs, data, monkeypatch) -> None:
    assert product_terms(rhs) is None or rhs.startswith("np.log(f)")
    assert _outcome(lambda: build_design(rhs, data)) == _outcome(lambda: formulaic_design(rhs, data, monkeypatch))


def test_a_column_named_like_a_function_goes_to_formulaic(data, monkeypatch) -> None:
    """formulaic looks a name up in the data first: a column ``log`` shadows the function."""
    data = data.assign(np=1.0, log=2.0)
    assert raised(lambda: build_design("log(pos) + f", data)) == raised(
        lambda: formulaic_design("log(pos) + f", data, monkeypatch)
    )


def test_numeric_call_language() -> None:
    call = numeric_call("offset(np.log(2 * pos + k))")
    assert call is not None and call.offset and call.variables == ("pos", "k")
    assert numeric_call("np.pi * 2") is None  # no column
    assert numeric_call("np.sin(x) // 2") is None
    assert numeric_call("log(x)").variables == ("x",)  # type: ignore[union-attr]
    assert product_terms("x * offset(z)") is None
    assert product_terms("offset(z)") is not None and product_terms("0 + offset(z)") is None


OWLS = "SiblingNegotiation ~ FoodTreatment * SexParent + offset(logBroodSize) + (1 | Nest)"
OVARY = "follicles ~ np.sin(2 * np.pi * Time) + np.cos(2 * np.pi * Time) + (1 | Mare)"


@pytest.mark.parametrize(
    ("name", "rhs"),
    [
        ("Owls", "FoodTreatment * SexParent + offset(logBroodSize)"),
        ("Owls", "FoodTreatment * SexParent + offset(np.log(BroodSize))"),
        ("Ovary", "np.sin(2 * np.pi * Time) + np.cos(2 * np.pi * Time)"),
    ],
)
def test_shared_data_sets(name, rhs, monkeypatch) -> None:
    data = mm.datasets.load(name)
    assert_same_design(build_design(rhs, data), formulaic_design(rhs, data, monkeypatch))


@pytest.mark.parametrize(
    ("formula", "name", "fit"),
    [
        (OWLS, "Owls", lambda f, d: mm.glmer(f, d, family=mm.families.NegativeBinomial(theta=1.0))),
        (OVARY, "Ovary", lambda f, d: mm.lmer(f, d)),
    ],
)
def test_fits_and_predictions_as_formulaic(formula, name, fit, monkeypatch) -> None:
    """The same matrix and offset give the same fit; predictions on new data replay the deferred spec."""
    data = mm.datasets.load(name)
    fast = fit(formula, data)
    with monkeypatch.context() as m:
        m.setattr(fixed, "_product_design", lambda *args: None)
        slow = fit(formula, data)
    assert isinstance(fast.model.inputs.fixed._spec_source, fixed._DeferredSpec)
    pd.testing.assert_series_equal(fast.fixef, slow.fixef)
    new = data.iloc[::15]
    for re_form in (None, "NA"):
        np.testing.assert_array_equal(
            np.asarray(fast.predict(new, re_form=re_form)), slow.predict(new, re_form=re_form)
        )

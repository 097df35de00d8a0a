"""The product-design path (numbers and factors multiplied, without formulaic) gives what formulaic gives.

Every design built directly (:mod:`mixedmodels.design.products`) is compared
with the same design built through formulaic (the direct path switched off):
column names, matrix (bit for bit: both take the same coding numbers and the
same products in the same order, on this machine, in one process), offsets,
formulaic's spec (so replays on new data, factor levels and the term
structure of anova and emmeans), and the errors for bad input.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.design import fixed
from mixedmodels.design.fixed import build_design
from mixedmodels.design.frame import ModelFrame, model_frame
from mixedmodels.design import products
from mixedmodels.design.products import ProductTerms, plain_kind, product_terms
from conftest import assert_same_design, formulaic_design, raised
from mixedmodels.errors import DataError, ModelSpecError


@pytest.fixture
def data() -> pd.DataFrame:
    rng = np.random.default_rng(19)
    n = 40
    return pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "k": rng.integers(0, 9, size=n),  # int64
            "f": pd.Categorical(rng.choice(["a", "b", "c"], size=n), categories=["c", "a", "b", "unused"]),
            "o": pd.Categorical(
                rng.choice(["lo", "mid", "hi", "top"], size=n), ["lo", "mid", "hi", "top"], ordered=True
            ),
            "s": rng.choice(["q", "p", "r"], size=n).astype(object),
            "t": pd.array(rng.choice(["u", "v"], size=n), dtype="string"),
            "flag": rng.random(n) > 0.5,
            "num": rng.choice([10, 2, 3], size=n).astype(object),  # object numbers: levels sorted as numbers
            "nullable": pd.array(rng.integers(0, 5, size=n), dtype="Int64"),
        },
        index=np.arange(500, 500 + n),  # not positional
    )


@pytest.mark.parametrize(
    ("rhs", "expected"),
    [
        ("a + b", ProductTerms(True, (("a",), ("b",)))),
        ("a*b", ProductTerms(True, (("a",), ("b",), ("a", "b")))),
        ("b:a + x - 1", ProductTerms(False, (("x",), ("b", "a")))),
        ("0 + a:b", ProductTerms(False, (("a", "b"),))),
        ("(a + b)*d", ProductTerms(True, (("a",), ("b",), ("d",), ("a", "d"), ("b", "d")))),
        ("a + c", None),  # c is R's c(), a formula function
        ("1", None),
        ("0", None),
        ("log(x, 2) + f", None),  # calls of the numeric-call language only (test_product_calls.py)
        ("scale(x) + f", None),
        ("`my f` + x", None),
        ("a.b + x", None),  # R's spelling: formulaic's code differs from the text
        ("C(f) + x", None),
        ("x + 2", None),
        ("x +", None),
        ("y ~ x", None),
    ],
)
def test_product_terms_reads_products_of_names(rhs: str, expected) -> None:
    assert product_terms(rhs) == expected


def test_plain_kinds(data: pd.DataFrame) -> None:
    kinds = {name: plain_kind(data[name].dtype) for name in data.columns}
    assert kinds == {
        "x": "numeric",
        "k": "numeric",
        "f": "factor",
        "o": "factor",
        "s": "factor",
        "t": "factor",
        "flag": "factor",
        "num": "factor",
        "nullable": None,
    }


SYNTHETIC = [
    "x + f",
    "f",
    "0 + f",
    "f - 1",
    "f * x",
    "x:f",
    "0 + x:f",
    "f:s",  # a:b without main effects: R's rank-deficient coding
    "0 + f:s",
    "f * s",
    "f * s * x",
    "s + f:s",
    "o",  # ordered: contr.poly
    "0 + o",
    "o * x",
    "flag",  # logical: flagTRUE
    "flag:f",
    "t + num",
    "k * s",
    "x:k",  # numbers only: products of numeric columns
    "x * k - 1",
    "s + k + f + o + flag",
]


@pytest.mark.parametrize("rhs", SYNTHETIC)
@pytest.mark.parametrize("contrasts", [None, "sum", "helmert", "SAS", "poly", "treatment"])
def test_direct_path_equals_formulaic(rhs, contrasts, data, monkeypatch) -> None:
    chosen = None if contrasts is None else {name: contrasts for name in ("f", "o", "s", "t", "flag", "num")}
    before = data.copy()
    fast = build_design(rhs, data, chosen)
    assert_same_design(fast, formulaic_design(rhs, data, monkeypatch, contrasts=chosen))
    pd.testing.assert_frame_equal(data, before)


@pytest.mark.parametrize("defaults", [("sum", "poly"), ("helmert", "treatment")])
def test_default_contrasts_option_is_the_one_at_build_time(defaults, data, monkeypatch) -> None:
    with mm.option_context(contrasts=defaults):
        fast = build_design("o * f + s", data)
        slow = formulaic_design("o * f + s", data, monkeypatch)
    assert_same_design(fast, slow)  # the spec is fitted later, outside the block, with the defaults in force at build


def test_model_frame_input(data, monkeypatch) -> None:
    frame = model_frame(data, ["x", "f", "s"])
    assert_same_design(build_design("x * f + s", frame), formulaic_design("x * f + s", frame, monkeypatch))


DATASETS = [
    ("Orthodont", "age + Sex"),
    ("Orthodont", "age * Sex"),
    ("BodyWeight", "Time * Diet"),
    ("BodyWeight", "0 + Time:Diet"),
    ("BodyWeight", "Diet:Time"),
    ("cbpp", "period"),
    ("cbpp", "0 + period"),
    ("VerbAgg", "Anger + Gender + btype + situ"),
    ("VerbAgg", "btype * situ + Gender:mode"),
    ("VerbAgg", "0 + Gender:btype"),
    ("grouseticks", "YEAR + cHEIGHT"),
    ("grouseticks", "YEAR * cHEIGHT"),
    ("Pastes", "batch:cask"),
    ("InstEval", "service * dept + studage"),
    ("InstEval", "lectage:service"),
]


@pytest.mark.parametrize(("name", "rhs"), DATASETS)
@pytest.mark.parametrize("contrasts", [None, "sum", "helmert", "SAS"])
def test_shared_data_sets(name, rhs, contrasts, monkeypatch) -> None:
    data = mm.datasets.load(name)
    if name == "InstEval":
        data = data.iloc[:3000]  # a small slice: studage and lectage as the full data, dept partly
    chosen = None if contrasts is None else {column: contrasts for column in data.columns}
    assert_same_design(build_design(rhs, data, chosen), formulaic_design(rhs, data, monkeypatch, contrasts=chosen))


@pytest.mark.parametrize("rhs", ["x * f + s", "0 + o:flag", "t + num"])
def test_replays_like_formulaic(rhs, data, monkeypatch) -> None:
    fast, slow = build_design(rhs, data), formulaic_design(rhs, data, monkeypatch)
    new = data.iloc[[3, 1, 4, 1]].copy()  # a few levels only, repeated rows
    new.loc[new.index[2], "x"] = np.nan
    np.testing.assert_array_equal(fast.for_newdata(new), slow.for_newdata(new))
    assert fast.offset_for_newdata(new) is None
    again = pickle.loads(pickle.dumps(fast))
    np.testing.assert_array_equal(again.for_newdata(new), slow.for_newdata(new))


@pytest.mark.parametrize(
    ("column", "level"),
    [("f", "unused"), ("s", "zz"), ("num", 7)],
)
def test_unseen_level_in_newdata_raises_as_formulaic(column, level, data, monkeypatch) -> None:
    rhs = "x + f + s + num"
    fast, slow = build_design(rhs, data), formulaic_design(rhs, data, monkeypatch)
    new = data.iloc[:4].copy()
    if isinstance(new[column].dtype, pd.CategoricalDtype):
        new[column] = new[column].cat.set_categories(
            [*new[column].cat.categories, level]
            if level not in new[column].cat.categories
            else new[column].cat.categories
        )
    else:
        new[column] = new[column].astype(object)
    new.loc[new.index[1], column] = level
    errors = [raised(lambda d=d: d.for_newdata(new)) for d in (fast, slow)]
    assert errors[0] == errors[1]
    assert errors[0][0] is DataError and "not in the data the model was fitted to" in errors[0][1]


@pytest.mark.parametrize(
    ("rhs", "change", "contrasts"),
    [
        ("x + ff", None, None),  # missing column, with a suggestion
        ("x * f", "nan x", None),
        ("x * f", "nan f", None),
        ("x * f", "inf x", None),
        ("x * f", None, {"f": "nonsense"}),
        ("x * f", "one level", None),
        ("x + s", "one level", None),
    ],
)
def test_direct_path_raises_as_formulaic(rhs, change, contrasts, data, monkeypatch) -> None:
    data = data.copy()
    if change == "nan x":
        data.loc[data.index[3], "x"] = np.nan
    elif change == "nan f":
        data.loc[data.index[5], "f"] = np.nan
    elif change == "inf x":
        data.loc[data.index[3], "x"] = np.inf
    elif change == "one level":
        data["f"] = pd.Categorical(["a"] * len(data), categories=["a", "b"])
        data["s"] = "p"
    fast = raised(lambda: build_design(rhs, data, contrasts))
    slow = raised(lambda: formulaic_design(rhs, data, monkeypatch, contrasts=contrasts))
    assert fast == slow
    assert fast[0] in (DataError, ModelSpecError)


@pytest.mark.parametrize("rhs", ["nullable * f", "np.exp(nullable) * f", "f + scale(x)", "C(f, contr.sum) + x"])
def test_other_parts_go_to_formulaic(rhs, data, monkeypatch) -> None:
    design = build_design(rhs, data)
    assert not isinstance(design._spec_source, fixed._DeferredSpec)
    slow = formulaic_design(rhs, data, monkeypatch)
    assert design.column_names == slow.column_names
    np.testing.assert_array_equal(design.matrix, slow.matrix)


def test_fits_anova_emmeans_and_predictions_as_formulaic(monkeypatch) -> None:
    """A whole lmer fit: the term structure (anova, emmeans) and predictions come from the deferred spec."""
    data = mm.datasets.load("BodyWeight")
    formula = "weight ~ Time * Diet + (1 | Rat)"
    fast = mm.lmer(formula, data)
    with monkeypatch.context() as m:
        m.setattr(fixed, "_product_design", lambda *args: None)
        slow = mm.lmer(formula, data)
        slow_anova, slow_emm = mm.anova(slow), mm.emmeans(slow, "Diet").frame
    assert isinstance(fast.model.inputs.fixed._spec_source, fixed._DeferredSpec)
    # same matrix, same optimizer path: identical numbers (one process, one BLAS)
    pd.testing.assert_series_equal(fast.fixef, slow.fixef)
    pd.testing.assert_frame_equal(mm.anova(fast), slow_anova)
    pd.testing.assert_frame_equal(mm.emmeans(fast, "Diet").frame, slow_emm)
    new = data.iloc[::20]
    pd.testing.assert_series_equal(
        pd.Series(fast.predict(new, re_form="NA")), pd.Series(slow.predict(new, re_form="NA"))
    )


def test_sample_rows_found_only_for_the_spec(monkeypatch) -> None:
    """A fit does not look for the spec's sample rows; asked for after the caller changed the data, the spec
    is the one of the data as fitted (the released model frame's copies), and a replay on new data is formulaic's."""
    data = mm.datasets.load("cbpp")
    formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    looked = []
    sample_rows = products._sample_rows
    monkeypatch.setattr(products, "_sample_rows", lambda *args: looked.append(1) or sample_rows(*args))
    mutable = data.copy()
    fast = mm.glmer(formula, mutable, family="binomial")
    assert looked == []
    mutable.loc[:, "period"] = "1"  # the caller's frame changed after the fit: not the model frame's columns
    mutable.loc[:, "size"] = 0.5
    copy = data.copy()
    with monkeypatch.context() as m:
        m.setattr(fixed, "_product_design", lambda *args: None)
        slow = mm.glmer(formula, copy, family="binomial")
    assert looked == []
    source = fast.model.inputs.fixed._spec_source
    assert isinstance(source, fixed._DeferredSpec)
    frame = source._sample.__self__.source  # the rows come from the model frame's own copies, not the caller's data
    assert isinstance(frame, ModelFrame) and not frame.borrowed
    new = data.iloc[::7].assign(period=lambda d: d["period"].cat.set_categories(["2", "1", "3", "4"]))
    np.testing.assert_array_equal(fast.predict(new, re_form="NA"), slow.predict(new, re_form="NA"))
    assert looked == [1]


def test_mixed_and_clashing_levels_as_formulaic(monkeypatch) -> None:
    """Object columns mixing numbers and text, and categories whose R labels clash ("1" and 1)."""
    rng = np.random.default_rng(3)
    n = 30
    data = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "mixed": pd.Series(rng.choice([10, 2, "x", "2"], size=n), dtype=object),
            "clash": pd.Categorical(rng.choice(["1", 1, "b"], size=n), categories=["b", "1", 1]),
        }
    )
    for rhs in ["x * mixed", "0 + mixed:x", "clash + x", "clash:mixed"]:
        assert_same_design(build_design(rhs, data), formulaic_design(rhs, data, monkeypatch))


def test_pandas_default_string_columns(monkeypatch) -> None:
    """Text columns as pandas makes them by default (``str`` in pandas 3, object before)."""
    data = pd.DataFrame({"x": np.arange(8.0), "w": list("mnmnmnnm"), "v": list("ababbbaa")})
    assert plain_kind(data["w"].dtype) == "factor"
    for rhs in ["x * w", "w:v", "0 + v + w"]:
        assert_same_design(build_design(rhs, data), formulaic_design(rhs, data, monkeypatch))

"""The simple-design path (intercept and plain numeric columns) gives what formulaic gives.

Every fast-path design is compared with the same design built through
formulaic (the fast path switched off): names, matrix, replays on new data,
formulaic's spec, and the errors for bad input.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from mixedmodels.design import fixed
from mixedmodels.design.fixed import build_design
from mixedmodels.design.simple import numeric_columns, simple_matrix, simple_terms
from conftest import assert_same_design, formulaic_design, raised
from mixedmodels.errors import DataError, ModelSpecError


@pytest.fixture
def data() -> pd.DataFrame:
    rng = np.random.default_rng(8)
    n = 12
    return pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "z": rng.normal(size=n) * 100.0,
            "k": rng.integers(0, 9, size=n),  # int64
            "u": rng.integers(0, 9, size=n).astype(np.uint8),
            "flag": rng.random(n) > 0.5,
            "f": pd.Categorical(rng.choice(["a", "b", "c"], size=n)),
            "s": rng.choice(["p", "q"], size=n).astype(object),
            "nullable": pd.array(rng.integers(0, 5, size=n), dtype="Int64"),
        },
        index=np.arange(100, 100 + n),  # not positional
    )


@pytest.mark.parametrize(
    ("rhs", "expected"),
    [
        ("1", (True, ())),
        ("Days", (True, ("Days",))),
        ("1 + Days", (True, ("Days",))),
        ("Days + 1", (True, ("Days",))),
        ("0 + Days", (False, ("Days",))),
        ("b + a", (True, ("b", "a"))),
        (" 0+b +a ", (False, ("b", "a"))),
        ("0", None),
        ("0 + 1 + x", None),
        ("x - 1", None),
        ("x + x", None),
        ("x:z", None),
        ("x*z", None),
        ("log(x)", None),
        ("`my x`", None),
        ("x +", None),
        ("True", None),
        ("a.b", None),
    ],
)
def test_simple_terms_reads_only_plain_sums(rhs: str, expected) -> None:
    assert simple_terms(rhs) == expected


@pytest.mark.parametrize("rhs", ["1", "x", "1 + x", "x + 1", "0 + x", "z + x", "0 + z + x", "k + u", "0 + k"])
def test_simple_path_equals_formulaic(rhs: str, data: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    before = data.copy()
    fast = build_design(rhs, data)
    slow = formulaic_design(rhs, data, monkeypatch)
    assert_same_design(fast, slow)
    assert fast._spec is fast._spec  # made once
    pd.testing.assert_frame_equal(data, before)


def test_simple_path_replays_like_formulaic(data: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, slow = build_design("1 + x + k", data), formulaic_design("1 + x + k", data, monkeypatch)
    new = data.iloc[:5].copy()
    new.loc[new.index[2], "x"] = np.nan
    np.testing.assert_array_equal(fast.for_newdata(new), slow.for_newdata(new))
    assert fast.offset_for_newdata(new) is None
    with pytest.raises(DataError, match="'k' not found"):
        fast.for_newdata(new.drop(columns="k"))
    again = pickle.loads(pickle.dumps(fast))
    np.testing.assert_array_equal(again.for_newdata(new), slow.for_newdata(new))


@pytest.mark.parametrize("rhs", ["flag", "1 + f", "0 + s", "nullable", "x + flag"])
def test_other_columns_go_to_formulaic(rhs: str, data: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fixed, "_product_design", lambda *args: None)  # factors: tests/design/test_products.py
    design = build_design(rhs, data)
    assert not isinstance(design._spec_source, fixed._DeferredSpec)
    slow = formulaic_design(rhs, data, monkeypatch)
    assert design.column_names == slow.column_names
    np.testing.assert_array_equal(design.matrix, slow.matrix)


@pytest.mark.parametrize(
    ("rhs", "change", "contrasts"),
    [
        ("1 + xx", None, None),  # missing column, with a suggestion
        ("1 + x", "nan", None),
        ("1 + x", "inf", None),
        ("1 + x", None, {"x": "nonsense"}),
    ],
)
def test_simple_path_raises_as_formulaic(rhs, change, contrasts, data, monkeypatch) -> None:
    if change:
        data = data.copy()
        data.loc[data.index[3], "x"] = np.nan if change == "nan" else np.inf
    fast = raised(lambda: build_design(rhs, data, contrasts))
    slow = raised(lambda: formulaic_design(rhs, data, monkeypatch, contrasts=contrasts))
    assert fast == slow
    assert fast[0] in (DataError, ModelSpecError)


def test_helpers(data: pd.DataFrame) -> None:
    assert numeric_columns(data, ["x", "flag"]) is None
    columns = numeric_columns(data, ["k"])
    assert columns[0].dtype == np.float64
    matrix = simple_matrix(True, columns, len(data))
    np.testing.assert_array_equal(matrix, np.column_stack([np.ones(len(data)), data["k"].to_numpy(float)]))
    assert simple_matrix(False, [], 3).shape == (3, 0)

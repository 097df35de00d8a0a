"""Model frames and formula variables (R's model.frame with na.omit)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.design.frame import ModelFrame, model_frame, required_variables
from mixedmodels.errors import DataError, FormulaError


@pytest.fixture
def sleepstudy() -> pd.DataFrame:
    return mm.datasets.load("sleepstudy")


# --- required_variables -----------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("log(y) ~ scale(x) + f:g + offset(z)", {"y", "x", "f", "g", "z"}),
        ("cbind(a, b - a)", {"a", "b"}),
        ("Reaction ~ Days", {"Reaction", "Days"}),
        ("0 + f", {"f"}),
        ("1", set()),
        ("y ~ np.log(w) + numpy.exp(v)", {"y", "w", "v"}),
        ("C(f, contr.sum) + I(age**2) + I(x/10)", {"f", "age", "x"}),
        ("poly(x, 2) + sqrt(abs(q))", {"x", "q"}),
        ("Anger * Gender + btype", {"Anger", "Gender", "btype"}),
        ("`my var` + x", {"my var", "x"}),
        ("I(resp == 'yes') ~ x", {"resp", "x"}),
    ],
)
def test_required_variables(expr: str, expected: set[str]) -> None:
    result = required_variables(expr)
    assert isinstance(result, frozenset)
    assert result == expected


def test_required_variables_rejects_unparseable_formula() -> None:
    with pytest.raises(FormulaError, match="cannot parse"):
        required_variables("y ~ x +")
    with pytest.raises(FormulaError):
        required_variables(42)  # type: ignore[arg-type]


# --- model_frame ------------------------------------------------------------


def test_model_frame_keeps_only_used_columns_in_order(sleepstudy: pd.DataFrame) -> None:
    mf = model_frame(sleepstudy, ["Days", "Reaction", "Days"])
    assert isinstance(mf, ModelFrame)
    assert list(mf.data.columns) == ["Days", "Reaction"]
    assert mf.n_dropped == 0
    assert len(mf.data) == 180
    assert mf.data.index.equals(sleepstudy.index)


def test_model_frame_drops_incomplete_rows_and_keeps_index(sleepstudy: pd.DataFrame) -> None:
    data = sleepstudy.copy()
    data.loc[[0, 3], "Reaction"] = np.nan
    data.loc[[3, 7], "Days"] = np.nan
    data["Subject"] = data["Subject"].astype(object)
    data.loc[10, "Subject"] = None
    before = data.copy()
    mf = model_frame(data, ["Reaction", "Days", "Subject"])
    assert mf.n_dropped == 4  # rows 0, 3, 7, 10 (row 3 counted once)
    assert len(mf.data) == 176
    assert not {0, 3, 7, 10} & set(mf.data.index)
    assert mf.data.index[:3].tolist() == [1, 2, 4]
    assert not mf.data.isna().any().any()
    pd.testing.assert_frame_equal(data, before)  # input untouched


def test_model_frame_ignores_missing_values_in_unused_columns(sleepstudy: pd.DataFrame) -> None:
    data = sleepstudy.assign(other=np.nan)
    mf = model_frame(data, ["Reaction", "Days"])
    assert mf.n_dropped == 0
    assert "other" not in mf.data.columns


def test_model_frame_result_is_independent_of_input(sleepstudy: pd.DataFrame) -> None:
    mf = model_frame(sleepstudy, ["Reaction"])
    mf.data.iloc[0, 0] = -1.0
    assert sleepstudy["Reaction"].iloc[0] != -1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        mf.n_dropped = 3  # type: ignore[misc]


def test_a_released_frame_gives_its_columns_without_making_its_data_frame(sleepstudy: pd.DataFrame) -> None:
    data = sleepstudy.copy()
    frame = model_frame(data, ["Reaction", "Subject"], positional=True)
    frame.release()
    data.loc[0, "Reaction"] = -1.0  # the caller's change after release: the frame keeps its copy
    reaction, subject = frame.column("Reaction"), frame.column("Subject")
    assert frame._data is None  # still not made: a residual structure reads columns this way
    np.testing.assert_array_equal(reaction.to_numpy(), sleepstudy["Reaction"].to_numpy())
    assert isinstance(subject.dtype, pd.CategoricalDtype)
    np.testing.assert_array_equal(subject.array.codes, sleepstudy["Subject"].array.codes)
    pd.testing.assert_index_equal(reaction.index, pd.RangeIndex(len(sleepstudy)))
    pd.testing.assert_series_equal(frame.data["Reaction"], reaction, check_names=False)


def test_model_frame_suggests_close_column_names(sleepstudy: pd.DataFrame) -> None:
    with pytest.raises(DataError) as err:
        model_frame(sleepstudy, ["Reacton", "Days"])
    assert str(err.value) == "column 'Reacton' not found in data; did you mean 'Reaction'?"
    with pytest.raises(DataError, match="did you mean 'Days'"):
        model_frame(sleepstudy, ["days"])


def test_model_frame_lists_columns_when_nothing_is_close(sleepstudy: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"column 'zzz' not found in data \(columns: Reaction, Days, Subject\)"):
        model_frame(sleepstudy, ["zzz"])


def test_model_frame_names_every_missing_column(sleepstudy: pd.DataFrame) -> None:
    with pytest.raises(DataError) as err:
        model_frame(sleepstudy, ["Reacton", "Subjects"])
    assert "'Reacton'" in str(err.value) and "'Subjects'" in str(err.value)


def test_model_frame_refuses_a_duplicated_column_it_uses(sleepstudy: pd.DataFrame) -> None:
    """A used name that labels two columns is refused (``data[name]`` is then a DataFrame); a duplicated
    name the model does not use is no matter."""
    doubled = pd.concat([sleepstudy, sleepstudy[["Days"]]], axis=1)
    with pytest.raises(DataError, match="column 'Days' appears more than once in data"):
        model_frame(doubled, ["Reaction", "Days"])
    assert model_frame(doubled, ["Reaction", "Subject"]).names == ["Reaction", "Subject"]


def test_model_frame_names_an_absent_column_before_other_problems(sleepstudy: pd.DataFrame) -> None:
    """The absent column is named even when another used column would be refused later (complex values)."""
    data = sleepstudy.assign(z=sleepstudy["Reaction"] * 1j)
    with pytest.raises(DataError, match="column 'Reacton' not found"):
        model_frame(data, ["z", "Reacton"])


@pytest.mark.parametrize("bad", [[{"a": 1}], {"a": [1, 2]}, np.zeros((3, 2)), None, "data.csv"])
def test_model_frame_requires_a_data_frame(bad: object) -> None:
    with pytest.raises(DataError, match="data must be a pandas DataFrame"):
        model_frame(bad, ["a"])  # type: ignore[arg-type]


def test_model_frame_rejects_empty_data(sleepstudy: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="no rows"):
        model_frame(sleepstudy.iloc[:0], ["Days"])


def test_model_frame_reports_missing_values_when_no_row_is_left() -> None:
    data = pd.DataFrame({"a": [np.nan, None, 1.0], "b": [1.0, 2.0, np.nan], "c": [1, 2, 3]})
    with pytest.raises(DataError) as err:
        model_frame(data, ["a", "b", "c"])
    message = str(err.value)
    assert "all 3 rows had missing values" in message
    assert "a: 2 rows" in message and "b: 1 row" in message and "c:" not in message


def test_model_frame_handles_pandas_missing_markers() -> None:
    data = pd.DataFrame(
        {
            "s": pd.array(["a", None, "b", "c"], dtype="string"),
            "flag": pd.array([True, False, None, True], dtype="boolean"),
            "x": [1.0, 2.0, 3.0, 4.0],
        }
    )
    mf = model_frame(data, ["s", "flag", "x"])
    assert mf.n_dropped == 2
    assert mf.data.index.tolist() == [0, 3]


def _mixed_frame(with_missing: bool) -> pd.DataFrame:
    rng = np.random.default_rng(8)
    n = 10
    data = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "k": rng.integers(0, 5, size=n),
            "b": rng.random(n) > 0.5,
            "f": pd.Categorical(rng.choice(["a", "b"], size=n)),
            "o": pd.Categorical(rng.choice(["lo", "hi"], size=n), categories=["lo", "hi"], ordered=True),
            "s": pd.array(rng.choice(["p", "q"], size=n), dtype="string"),
            "obj": rng.choice(["u", "v"], size=n).astype(object),
            "nb": pd.array(rng.random(n) > 0.5, dtype="boolean"),
            "ni": pd.array(rng.integers(0, 5, size=n), dtype="Int64"),
            "t": pd.date_range("2026-01-01", periods=n),
        },
        index=[f"r{i}" for i in range(n)],
    )
    if with_missing:
        for j, column in enumerate(["x", "f", "s", "obj", "nb", "ni", "t"]):
            data.loc[data.index[j], column] = None
    return data


@pytest.mark.parametrize("with_missing", [False, True])
def test_model_frame_equals_the_label_based_frame(with_missing: bool) -> None:
    """The column-wise model frame gives what ``.loc`` selection and ``isna`` give, dtypes and index included."""
    from mixedmodels.design.frame import _model_frame_by_label

    data = _mixed_frame(with_missing)
    before = data.copy()
    columns = ["t", "x", "k", "b", "f", "o", "s", "obj", "nb", "ni"]
    fast, slow = model_frame(data, columns), _model_frame_by_label(data, columns)
    assert fast.n_dropped == slow.n_dropped == (7 if with_missing else 0)
    pd.testing.assert_frame_equal(fast.data, slow.data)
    fast.data.iloc[:, :] = fast.data.iloc[::-1].to_numpy()  # writing to the result leaves the input alone
    pd.testing.assert_frame_equal(data, before)

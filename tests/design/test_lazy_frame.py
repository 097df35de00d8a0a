"""The model frame's DataFrame made on first use (issue 18, item 3).

A frame that drops no row keeps the data's own columns (with pandas'
copy-on-write) and makes its DataFrame only when something after the fit asks
for it.  Every result must be the one of a frame made at once (the path taken
when rows are dropped, or without copy-on-write), and a change to the data
after the fit must change nothing in the fitted model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.design import frame as frame_module
from mixedmodels.design.frame import ModelFrame, model_frame
from mixedmodels.design.inputs import prepare_inputs

lazy_frames = pytest.mark.skipif(
    not frame_module._copy_on_write(), reason="frames are made at once without pandas' copy-on-write"
)


def _data() -> dict[str, tuple[str, pd.DataFrame]]:
    sleep = mm.datasets.load("sleepstudy")
    mixed = sleep.assign(
        whole=sleep["Days"].astype(np.int32),
        late=sleep["Days"] > 4,
        week=pd.Categorical(np.where(sleep["Days"] > 6, "two", "one")),
    ).set_axis(pd.Index([f"r{i}" for i in range(len(sleep))]), axis=0)
    return {
        "sleepstudy": ("Reaction ~ Days + (Days | Subject)", sleep),
        "penicillin": ("diameter ~ 1 + (1 | plate) + (1 | sample)", mm.datasets.load("Penicillin")),
        "pastes": ("strength ~ 1 + (1 | batch/cask)", mm.datasets.load("Pastes")),
        "factors and transforms": ("log(Reaction) ~ week + late + whole + I(whole**2) + (1 | Subject)", mixed),
    }


def _eager(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(frame_module, "_copy_on_write", lambda: False)


def _results(fit) -> dict[str, object]:
    return {
        "fixef": fit.fixef.to_numpy(),
        "theta": fit.theta,
        "sigma": fit.sigma,
        "fitted": fit.fitted,
        "residuals": fit.residuals(),
        "predict": fit.predict(),
        "anova": fit.anova(),
        "summary": str(fit.summary()),
        "frame": fit.model.inputs.frame,
    }


@pytest.mark.parametrize("case", list(_data()))
def test_lazy_and_eager_frames_give_the_same_results(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    formula, data = _data()[case]
    lazy = _results(mm.lmer(formula, data))
    _eager(monkeypatch)
    eager = _results(mm.lmer(formula, data))
    for name, value in lazy.items():
        other = eager[name]
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(value, other)  # the same columns, dtypes, labels and values
        elif isinstance(value, pd.Series):
            pd.testing.assert_series_equal(value, other)
        elif isinstance(value, str):
            assert value == other, name
        else:
            np.testing.assert_array_equal(value, other, err_msg=name)  # the same arithmetic on the same numbers


@lazy_frames
def test_a_fit_does_not_make_the_frame_and_the_frame_is_the_eager_one(monkeypatch: pytest.MonkeyPatch) -> None:
    formula, data = _data()["factors and transforms"]
    inputs = prepare_inputs(formula, data)
    assert isinstance(inputs.__dict__["_frame"], ModelFrame)  # not made yet
    assert not inputs.__dict__["_frame"].borrowed  # released: copies, not the caller's Series
    held = inputs.__dict__["_frame"]._columns.values()
    assert not any(np.shares_memory(np.asarray(data[name]), np.asarray(column)) for name in data for column in held)
    assert inputs.nobs == len(data)
    made = inputs.frame
    assert inputs.frame is made  # made once
    _eager(monkeypatch)
    pd.testing.assert_frame_equal(made, prepare_inputs(formula, data).frame)


@lazy_frames
@pytest.mark.parametrize("frame_first", [False, True], ids=["frame made after", "frame made before"])
def test_changing_the_data_after_the_fit_changes_nothing_in_it(frame_first: bool) -> None:
    data = mm.datasets.load("sleepstudy").copy()
    fit = mm.lmer("Reaction ~ Days + (Days | Subject)", data)
    y, fitted, reaction = fit.model.inputs.y.copy(), fit.fitted.copy(), data["Reaction"].to_numpy().copy()
    if frame_first:  # the frame's Series are let go: only y's own copy keeps the fit's response
        fit.model.inputs.frame
    data.loc[data.index[0], "Reaction"] = -1.0  # in place, after the fit
    data.loc[data.index[1], "Days"] = 100.0
    frame = fit.model.inputs.frame
    assert frame["Reaction"].iloc[0] != -1.0 and frame["Days"].iloc[1] != 100.0
    np.testing.assert_array_equal(fit.model.inputs.y, y)
    pd.testing.assert_series_equal(fit.fitted, fitted)
    frame.loc[2, "Reaction"] = 5.0  # the model frame is the model's own copy: the data are never modified
    assert data["Reaction"].iloc[2] == reaction[2]


@lazy_frames
def test_a_lazy_frames_columns_are_the_eager_frames() -> None:
    data = _data()["factors and transforms"][1]
    names = ["Reaction", "week", "late", "whole", "Subject"]
    lazy = model_frame(data, names, positional=True)
    before = {name: lazy.column(name).to_numpy() for name in names}
    assert lazy.nrows == len(data) and lazy.names == names and lazy.borrowed
    np.testing.assert_array_equal(lazy.positions, np.arange(len(data)))
    lazy.release()
    assert not lazy.borrowed and lazy.names == names
    np.testing.assert_array_equal(lazy.column("Reaction").to_numpy(), before["Reaction"])  # the frame, made now
    made = lazy.data
    assert list(made.columns) == names
    for name in names:
        np.testing.assert_array_equal(lazy.column(name).to_numpy(), before[name])
        assert made[name].dtype == data[name].dtype
    with pytest.raises(AttributeError):
        lazy.n_dropped = 3  # type: ignore[misc]


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_a_fit_whose_frame_is_not_made_yet_pickles_and_copies(how: str) -> None:
    import copy
    import pickle

    data = mm.datasets.load("sleepstudy")
    fit = mm.lmer("Reaction ~ Days + (Days | Subject)", data)
    other = pickle.loads(pickle.dumps(fit)) if how == "pickle" else copy.deepcopy(fit)
    pd.testing.assert_frame_equal(other.model.inputs.frame, fit.model.inputs.frame)
    pd.testing.assert_series_equal(other.fitted, fit.fitted)
    mf = model_frame(data, ["Reaction", "Days"], positional=True)
    again = pickle.loads(pickle.dumps(mf)) if how == "pickle" else copy.deepcopy(mf)
    assert again.nrows == mf.nrows and again.names == mf.names
    pd.testing.assert_frame_equal(again.data, mf.data)


def test_a_frame_with_dropped_rows_is_made_at_once() -> None:
    data = mm.datasets.load("sleepstudy").copy()
    data.loc[data.index[:3], "Reaction"] = np.nan
    mf = model_frame(data, ["Reaction", "Days"], positional=True)
    assert not mf.borrowed and mf.n_dropped == 3 and mf.nrows == len(data) - 3
    np.testing.assert_array_equal(mf.positions, np.arange(3, len(data)))


@pytest.mark.parametrize("state", ["borrowed", "released", "made"])
def test_a_frames_numbers_are_its_columns_dtype_and_values(state: str) -> None:
    # ModelFrame.numbers is what X, y and the size check read instead of each column's Series: the same
    # dtype and, for a NumPy dtype, Series.to_numpy()'s values (None otherwise), in every state of the frame
    data = _data()["factors and transforms"][1]
    names = ["Reaction", "week", "late", "whole", "Subject"]
    mf = model_frame(data, names, positional=True)
    if state != "borrowed":
        mf.release()
    if state == "made":
        mf.data
    for name in names:
        dtype, values = mf.numbers(name)
        assert dtype == data[name].dtype
        if isinstance(data[name].dtype, np.dtype):
            np.testing.assert_array_equal(values, data[name].to_numpy())
            assert values.dtype == data[name].dtype
        else:
            assert values is None
        assert mf.numbers(name) is mf.numbers(name)  # read once per state
        assert frame_module.column_numbers(data, name)[0] == dtype


@pytest.mark.parametrize("state", ["borrowed", "released", "read then released", "made"])
def test_a_frames_arrays_are_its_columns_values(state: str) -> None:
    # ModelFrame.array is what the residual structures read instead of each column's Series: a NumPy column's
    # values as Series.to_numpy() gives them, else Series.array (a Categorical's codes and categories), in every state
    data = _data()["factors and transforms"][1]
    names = ["Reaction", "week", "late", "whole", "Subject"]
    mf = model_frame(data, names, positional=True)
    if state == "read then released":
        for name in names:
            mf.numbers(name)
    if state != "borrowed":
        mf.release()
    if state == "made":
        mf.data
    for name in names:
        values, expected = mf.array(name), data[name].array
        if isinstance(data[name].dtype, np.dtype):
            expected = data[name].to_numpy()
            assert isinstance(values, np.ndarray)
        assert values.dtype == expected.dtype and len(values) == len(expected)
        if isinstance(expected.dtype, pd.CategoricalDtype):
            np.testing.assert_array_equal(values.codes, expected.codes)
            assert list(values.categories) == list(expected.categories)
        else:
            np.testing.assert_array_equal(np.asarray(values), np.asarray(expected))


@lazy_frames
def test_a_released_frame_keeps_copies_of_the_values_it_read() -> None:
    data = mm.datasets.load("sleepstudy").copy()
    mf = model_frame(data, ["Reaction", "Days", "Subject"], positional=True)
    read = mf.numbers("Reaction")[1]
    assert np.shares_memory(read, data["Reaction"].to_numpy())  # borrowed: the data's own values, read only
    mf.release()
    released = mf.numbers("Reaction")[1]
    assert not np.shares_memory(released, data["Reaction"].to_numpy())
    np.testing.assert_array_equal(released, data["Reaction"].to_numpy())
    data.loc[data.index[0], "Reaction"] = -1.0
    assert mf.numbers("Reaction")[1][0] != -1.0 and mf.data["Reaction"].iloc[0] != -1.0


@pytest.mark.parametrize("extra", [0, 1, 5], ids=["every column used", "one more", "five more"])
def test_the_frame_reads_the_used_columns_whichever_way(extra: int) -> None:
    # one pass over data.items() when the data have few other columns, else by name: the same frame
    sleep = mm.datasets.load("sleepstudy")
    data = sleep.assign(**{f"other{i}": float(i) for i in range(extra)})
    mf = model_frame(data, ["Subject", "Reaction", "Days"], positional=True)
    assert mf.names == ["Subject", "Reaction", "Days"]
    pd.testing.assert_frame_equal(
        mf.data, sleep[["Subject", "Reaction", "Days"]].set_axis(mf.data.index), check_column_type=False
    )

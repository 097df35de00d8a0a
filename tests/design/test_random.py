"""Random-effects terms: grouping factors and lme4's checks."""

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.design.random import grouping_factor


def test_interaction_levels_first_factor_slowest_and_only_present():
    frame = pd.DataFrame({"a": pd.Categorical(["x", "y", "x", "y"], categories=["y", "x"]), "b": ["2", "1", "1", "1"]})
    refs, levels = grouping_factor(frame, ("a", "b"))
    assert levels == ("y:1", "x:1", "x:2")
    assert [levels[r] for r in refs] == ["x:2", "y:1", "x:1", "y:1"]


def test_numeric_grouping_column_is_a_factor():
    refs, levels = grouping_factor(pd.DataFrame({"g": [10, 2, 10]}), ("g",))
    assert levels == ("2", "10") and list(refs) == [1, 0, 1]


@pytest.mark.parametrize(
    "column",
    [
        pd.Categorical(["b", "a", "c", "a"], categories=["c", "b", "a"]),  # every level used
        pd.Categorical(["b", "a", "b", "a"], categories=["c", "b", "a"]),  # "c" unused: dropped
        pd.Categorical(["b", "a", "b", "a"], categories=["b", "a", "z"], ordered=True),
        [3.5, 1.0, 3.5, 2.0],
        ["s2", "s10", "s1", "s2"],
    ],
)
def test_single_grouping_factor_levels_and_refs(column):
    """One factor: the used levels in category (else sorted) order, refs index them; refs are ours to keep."""
    frame = pd.DataFrame({"g": column})
    refs, levels = grouping_factor(frame, ("g",))
    series = frame["g"]
    ordered = list(series.cat.categories) if isinstance(series.dtype, pd.CategoricalDtype) else sorted(set(series))
    expected = tuple(str(v) for v in ordered if v in set(series))
    assert levels == expected
    assert [levels[r] for r in refs] == [str(v) for v in series]
    assert refs.dtype == np.int64 and refs.flags.writeable
    refs[0] = 99  # does not write through to the data
    assert grouping_factor(frame, ("g",))[0][0] != 99


def test_one_level_grouping_factor_is_an_error():
    data = pd.DataFrame({"y": np.arange(6.0), "g": ["a"] * 6})
    with pytest.raises(mm.ModelSpecError, match="'g'.*at least 2 levels"):
        mm.lmer("y ~ 1 + (1 | g)", data)


def test_too_many_random_effects_names_the_term():
    rng = np.random.default_rng(0)
    data = pd.DataFrame(
        {"y": rng.normal(size=40), "condition": np.tile(["a", "b"], 20), "participant": np.repeat(np.arange(20), 2)}
    )
    with pytest.raises(mm.ModelSpecError, match=r"number of observations \(=40\) <= number of random effects \(=40\)"):
        mm.lmer("y ~ condition + (1 + condition | participant)", data)


def test_terms_sorted_by_decreasing_levels(sleep_fit):
    fit = mm.lmer("diameter ~ 1 + (1 | sample) + (1 | plate)", mm.datasets.load("Penicillin"))
    assert [t.group for t in fit.terms] == ["plate", "sample"]


def test_grouping_column_mixing_numbers_and_strings_is_read_as_text():
    """pandas gives object columns holding both 1 and "1" (CSV files read in chunks); sorting
    them raised a raw TypeError (issue 22, item 7).  Values are R's text labels, so 1 and "1" are
    one level, and the fit equals the fit with the all-text column."""
    sleep = mm.datasets.load("sleepstudy")
    codes = sleep["Subject"].cat.codes.to_numpy()
    mixed = pd.Series([int(c) if i % 2 else str(c) for i, c in enumerate(codes)], dtype=object)
    text = pd.Series([str(c) for c in codes], dtype=object)
    refs, levels = grouping_factor(pd.DataFrame({"g": mixed}), ("g",))
    assert levels == tuple(sorted(str(c) for c in set(codes)))  # 18 levels, sorted as text
    np.testing.assert_array_equal(refs, grouping_factor(pd.DataFrame({"g": text}), ("g",))[0])
    floats = pd.Series([1.0, "a", 2.5, "a", 1], dtype=object)  # 1.0 and 1 are both "1", as R prints them
    assert grouping_factor(pd.DataFrame({"g": floats}), ("g",))[1] == ("1", "2.5", "a")
    fit_mixed = mm.lmer("Reaction ~ Days + (1 | g)", sleep.assign(g=mixed.to_numpy()))
    fit_text = mm.lmer("Reaction ~ Days + (1 | g)", sleep.assign(g=text.to_numpy()))
    assert fit_mixed.objective == fit_text.objective
    assert fit_mixed.ngroups == {"g": 18}


# --- covariance structures that do not fit the term (issue #19) ---------------------------------


@pytest.mark.parametrize(
    "formula,message",
    [
        ("Reaction ~ Days + cs(1 | Subject)", r"cs\(\) needs at least two columns .* cs\(1 \| Subject\)"),
        (
            "Reaction ~ Days + ar1(0 + Phase3 | Subject)",
            r"ar1\(\) in ar1\(0 \+ Phase3 \| Subject\) needs an ordered factor, but 'Phase3' is an unordered factor",
        ),
        (
            "Reaction ~ Days + ar1(0 + Days | Subject)",
            r"ar1\(\) in ar1\(0 \+ Days \| Subject\) needs an ordered factor, but 'Days' is continuous",
        ),
        (
            "Reaction ~ Days + ar1(DayPair | Subject)",
            r"written ar1\(0 \+ f \| Subject\); ar1\(1 \+ DayPair \| Subject\) is not of that form",
        ),
    ],
)
def test_structure_the_term_cannot_carry_is_named(formula, message):
    from conftest import issue19_dataset

    with pytest.raises(mm.ModelSpecError, match=message):
        mm.lmer(formula, issue19_dataset("sleepstudy"))


def test_ar1_over_a_factor_with_an_unobserved_level_is_refused():
    """A missing level would make non-neighbours neighbours: say so instead of fitting."""
    from conftest import issue19_dataset

    data = issue19_dataset("sleepstudy")
    data = data[data["DayPair"] != "2"]
    with pytest.raises(mm.ModelSpecError, match=r"level\(s\) '2' have no rows"):
        mm.lmer("Reaction ~ Days + ar1(0 + DayPair | Subject)", data)


def test_category_labels_are_kept_per_categories_object_and_follow_a_new_one():
    """The grouping factor's labels of a categorical column are converted once per categories Index (immutable);
    renamed or reordered categories are a new Index, whose labels are converted anew."""
    data = pd.DataFrame({"g": pd.Categorical(["b", "a", "b", "c"], categories=["a", "b", "c"])})
    first = grouping_factor(data, ("g",))
    again = grouping_factor(data, ("g",))
    assert first[1] == again[1] == ("a", "b", "c")
    np.testing.assert_array_equal(first[0], again[0])
    renamed = data.assign(g=data["g"].cat.rename_categories(["x", "y", "z"]))
    assert grouping_factor(renamed, ("g",))[1] == ("x", "y", "z")
    reordered = data.assign(g=data["g"].cat.reorder_categories(["c", "b", "a"]))
    codes, labels = grouping_factor(reordered, ("g",))
    assert labels == ("c", "b", "a")
    np.testing.assert_array_equal(codes, [1, 2, 1, 0])

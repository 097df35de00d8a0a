"""Fixed-effects model matrices: R's contrasts, R's names, lme4's checks.

Expected values are what R's model.matrix / lme4 give for the same formulas.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.design.checks import (
    check_column_scales,
    check_scale,
    drop_aliased_columns,
    independent_columns,
    keep_columns,
)
from mixedmodels.design.fixed import DesignMatrix, build_design
from mixedmodels.design.response import build_response
from mixedmodels.errors import (
    DataError,
    FormulaError,
    ModelSpecError,
    RankDeficiencyWarning,
    ScaleWarning,
)

# R: contr.poly(4)
POLY4 = np.array(
    [
        [-0.6708204, 0.5, -0.2236068],
        [-0.2236068, -0.5, 0.6708204],
        [0.2236068, -0.5, -0.6708204],
        [0.6708204, 0.5, 0.2236068],
    ]
)


@pytest.fixture(scope="module")
def verbagg() -> pd.DataFrame:
    return mm.datasets.load("VerbAgg")


@pytest.fixture(scope="module")
def grouse() -> pd.DataFrame:
    return mm.datasets.load("grouseticks")


@pytest.fixture
def small() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "z": [1.0, 2.0, 1.0, 3.0, 2.0, 2.0],
            "flag": [True, False, True, True, False, False],
            "s": ["b", "a", "c", "a", "b", "c"],
            "f": pd.Categorical(list("abcabc"), categories=list("abc")),
        }
    )


def ordered4() -> pd.DataFrame:
    levels = ["lo", "mid", "high", "top"]
    f = pd.Categorical(levels * 2, categories=levels, ordered=True)
    return pd.DataFrame({"f": f, "y": np.arange(8.0)})


# --- names and contrasts ----------------------------------------------------


def test_matrix_is_float64_c_contiguous(verbagg: pd.DataFrame) -> None:
    design = build_design("Anger + Gender", verbagg)
    assert isinstance(design, DesignMatrix)
    assert design.matrix.dtype == np.float64
    assert design.matrix.flags.c_contiguous
    assert design.matrix.shape == (len(verbagg), 3)
    assert design.offset is None


def test_treatment_names_cbpp_period() -> None:
    design = build_design("period", mm.datasets.load("cbpp"))
    assert design.column_names == ("(Intercept)", "period2", "period3", "period4")


def test_verbagg_names_and_values(verbagg: pd.DataFrame) -> None:
    design = build_design("Anger + Gender + btype + situ", verbagg)
    assert design.column_names == (
        "(Intercept)",
        "Anger",
        "GenderM",
        "btypescold",
        "btypeshout",
        "situself",
    )
    x = design.matrix
    np.testing.assert_array_equal(x[:, 0], 1.0)
    np.testing.assert_array_equal(x[:, 1], verbagg["Anger"].to_numpy(float))
    np.testing.assert_array_equal(x[:, 2], (verbagg["Gender"] == "M").to_numpy(float))
    np.testing.assert_array_equal(x[:, 4], (verbagg["btype"] == "shout").to_numpy(float))


def test_grouseticks_scale_uses_sd_with_n_minus_1(grouse: pd.DataFrame) -> None:
    design = build_design("YEAR + scale(HEIGHT)", grouse)
    assert design.column_names == ("(Intercept)", "YEAR96", "YEAR97", "scale(HEIGHT)")
    scaled = design.matrix[:, 3]
    assert abs(scaled.mean()) < 1e-12
    assert scaled.std(ddof=1) == pytest.approx(1.0, abs=1e-12)
    h = grouse["HEIGHT"].to_numpy()
    np.testing.assert_allclose(scaled, (h - h.mean()) / h.std(ddof=1))


def test_interaction_names(verbagg: pd.DataFrame) -> None:
    design = build_design("Anger*Gender", verbagg)
    assert design.column_names == ("(Intercept)", "Anger", "GenderM", "Anger:GenderM")
    np.testing.assert_array_equal(design.matrix[:, 3], design.matrix[:, 1] * design.matrix[:, 2])


def test_no_intercept_gives_full_indicator_coding(verbagg: pd.DataFrame) -> None:
    design = build_design("0 + btype", verbagg)
    assert design.column_names == ("btypecurse", "btypescold", "btypeshout")
    np.testing.assert_array_equal(design.matrix.sum(axis=1), 1.0)
    # R: only the first factor gets indicators, later ones keep contrasts
    design = build_design("0 + Anger + btype + situ", verbagg)
    assert design.column_names == ("Anger", "btypecurse", "btypescold", "btypeshout", "situself")
    assert build_design("btype - 1", verbagg).column_names == design.column_names[1:4]


@pytest.mark.parametrize(
    ("rhs", "names"),
    [
        # R: each factor of a:b without main effects gets indicators (rank deficient)
        (
            "btype:situ",
            (
                "(Intercept)",
                "btypecurse:situother",
                "btypescold:situother",
                "btypeshout:situother",
                "btypecurse:situself",
                "btypescold:situself",
                "btypeshout:situself",
            ),
        ),
        # nested: situ within btype
        (
            "btype + btype:situ",
            (
                "(Intercept)",
                "btypescold",
                "btypeshout",
                "btypecurse:situself",
                "btypescold:situself",
                "btypeshout:situself",
            ),
        ),
        # numeric by factor without the factor's main effect
        ("Anger:btype", ("(Intercept)", "Anger:btypecurse", "Anger:btypescold", "Anger:btypeshout")),
        ("Anger + Anger:btype", ("(Intercept)", "Anger", "Anger:btypescold", "Anger:btypeshout")),
        # factor order within a term is kept as written; first factor varies fastest
        (
            "situ:btype + Gender",
            (
                "(Intercept)",
                "GenderM",
                "situother:btypecurse",
                "situself:btypecurse",
                "situother:btypescold",
                "situself:btypescold",
                "situother:btypeshout",
                "situself:btypeshout",
            ),
        ),
        ("mode*situ", ("(Intercept)", "modedo", "situself", "modedo:situself")),
    ],
)
def test_interaction_coding_follows_r(verbagg: pd.DataFrame, rhs: str, names: tuple) -> None:
    assert build_design(rhs, verbagg).column_names == names


def test_ordered_factor_uses_contr_poly() -> None:
    design = build_design("f", ordered4())
    assert design.column_names == ("(Intercept)", "f.L", "f.Q", "f.C")
    np.testing.assert_allclose(design.matrix[:4, 1:], POLY4, atol=1e-7)


def test_contr_poly_higher_degrees_inst_eval_names() -> None:
    ie = mm.datasets.load("InstEval")
    design = build_design("service + lectage + studage", ie)
    assert design.column_names == (
        "(Intercept)",
        "service1",
        "lectage.L",
        "lectage.Q",
        "lectage.C",
        "lectage^4",
        "lectage^5",
        "studage.L",
        "studage.Q",
        "studage.C",
    )
    # contr.poly(6): orthonormal columns, .L proportional to -5, -3, ..., 5
    levels = ie["lectage"].cat.categories
    first = [np.flatnonzero(ie["lectage"].to_numpy() == lev)[0] for lev in levels]
    coding = design.matrix[first, 2:7]
    np.testing.assert_allclose(coding.T @ coding, np.eye(5), atol=1e-12)
    np.testing.assert_allclose(coding[:, 0], np.arange(-5, 6, 2) / np.sqrt(70), atol=1e-12)
    np.testing.assert_allclose(
        coding[:, 3], [0.1889822, -0.5669467, 0.3779645, 0.3779645, -0.5669467, 0.1889822], atol=1e-7
    )


def test_inst_eval_design() -> None:
    """A large design with ordered factors (its build time is a benchmark, never a test)."""
    ie = mm.datasets.load("InstEval")
    design = build_design("service + lectage + studage", ie)
    assert design.matrix.shape == (73421, 10)
    assert design.column_names[:3] == ("(Intercept)", "service1", "lectage.L")


def test_logical_and_string_columns(small: pd.DataFrame) -> None:
    design = build_design("x + flag + s", small)
    assert design.column_names == ("(Intercept)", "x", "flagTRUE", "sb", "sc")
    np.testing.assert_array_equal(design.matrix[:, 2], small["flag"].to_numpy(float))
    assert build_design("0 + flag", small).column_names == ("flagFALSE", "flagTRUE")
    as_string = small.assign(s=small["s"].astype("string"))
    assert build_design("s", as_string).column_names == ("(Intercept)", "sb", "sc")
    assert build_design("I(x > 3)", small).column_names == ("(Intercept)", "I(x > 3)TRUE")


def test_category_order_is_kept_and_unused_levels_dropped(small: pd.DataFrame) -> None:
    data = small.assign(f=pd.Categorical(list("cbacba"), categories=["c", "zz", "b", "a"]))
    design = build_design("f", data)
    assert design.column_names == ("(Intercept)", "fb", "fa")  # no all-zero 'fzz'
    assert build_design("0 + f", data).column_names == ("fc", "fb", "fa")


def test_numeric_levels_are_labelled_like_r() -> None:
    data = pd.DataFrame({"n": [1, 2, 3, 1, 2, 3], "h": [0.5, 1.0, 0.5, 1.0, 1.5, 1.5]})
    assert build_design("C(n)", data).column_names == ("(Intercept)", "C(n)2", "C(n)3")
    assert build_design("C(h)", data).column_names == ("(Intercept)", "C(h)1", "C(h)1.5")


@pytest.mark.parametrize(
    ("kind", "names", "coding"),
    [
        ("sum", ("(Intercept)", "f1", "f2"), [[1, 0], [0, 1], [-1, -1]]),
        ("contr.sum", ("(Intercept)", "f1", "f2"), [[1, 0], [0, 1], [-1, -1]]),
        ("helmert", ("(Intercept)", "f1", "f2"), [[-1, -1], [1, -1], [0, 2]]),
        ("treatment", ("(Intercept)", "fb", "fc"), [[0, 0], [1, 0], [0, 1]]),
        ("SAS", ("(Intercept)", "fa", "fb"), [[1, 0], [0, 1], [0, 0]]),
        (
            "poly",
            ("(Intercept)", "f.L", "f.Q"),
            [[-0.7071068, 0.4082483], [0.0, -0.8164966], [0.7071068, 0.4082483]],
        ),
    ],
)
def test_contrasts_argument(small: pd.DataFrame, kind: str, names: tuple, coding: list) -> None:
    design = build_design("f", small, contrasts={"f": kind})
    assert design.column_names == names
    np.testing.assert_allclose(design.matrix[:3, 1:], coding, atol=1e-7)


def test_contrasts_in_formula_and_unknown_contrasts(small: pd.DataFrame) -> None:
    design = build_design("C(f, contr.sum)", small)
    assert design.column_names == ("(Intercept)", "C(f, contr.sum)1", "C(f, contr.sum)2")
    np.testing.assert_allclose(design.matrix[:3, 1:], [[1, 0], [0, 1], [-1, -1]])
    assert build_design("C(f, 'helmert')", small).column_names[1:] == ("C(f, 'helmert')1", "C(f, 'helmert')2")
    with pytest.raises(ModelSpecError, match="unknown contrasts 'summ'"):
        build_design("f", small, contrasts={"f": "summ"})
    # contrasts for variables that are not in this part of the formula are ignored (the model
    # functions warn when no part uses them: tests/test_lmm.py)
    assert build_design("x", small, contrasts={"f": "sum"}).column_names == ("(Intercept)", "x")


def test_no_intercept_factor_uses_indicators_whatever_the_contrasts(small: pd.DataFrame) -> None:
    design = build_design("0 + f", small, contrasts={"f": "sum"})
    assert design.column_names == ("fa", "fb", "fc")


def test_calls_are_named_as_written(small: pd.DataFrame) -> None:
    design = build_design("I(x**2) + log(x+1) + sqrt(z) + exp(x/10) + abs(z - 2)", small)
    assert design.column_names == (
        "(Intercept)",
        "I(x**2)",
        "log(x+1)",
        "sqrt(z)",
        "exp(x/10)",
        "abs(z - 2)",
    )
    x, z = small["x"].to_numpy(), small["z"].to_numpy()
    np.testing.assert_allclose(
        design.matrix[:, 1:], np.column_stack([x**2, np.log(x + 1), np.sqrt(z), np.exp(x / 10), np.abs(z - 2)])
    )
    assert build_design("poly(x, 2)", small).column_names == ("(Intercept)", "poly(x, 2)1", "poly(x, 2)2")


def test_offsets_are_summed_and_left_out_of_the_matrix(small: pd.DataFrame) -> None:
    design = build_design("x + offset(log(z)) + offset(x)", small)
    assert design.column_names == ("(Intercept)", "x")
    np.testing.assert_allclose(design.offset, np.log(small["z"]) + small["x"])
    new = small.iloc[[1, 3]]
    np.testing.assert_allclose(design.offset_for_newdata(new), np.log(new["z"]) + new["x"])
    assert build_design("x", small).offset_for_newdata(new) is None


def test_intercept_only_and_empty_designs(small: pd.DataFrame) -> None:
    assert build_design("1", small).column_names == ("(Intercept)",)
    empty = build_design("0", small)
    assert empty.matrix.shape == (6, 0)


def test_input_frame_is_not_modified(small: pd.DataFrame) -> None:
    before = small.copy()
    build_design("x + flag + s + f + scale(z)", small)
    pd.testing.assert_frame_equal(small, before)


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "uint32", "int64", "Int32"])
def test_integer_columns_are_doubles_inside_formula_code(dtype) -> None:
    """``I(x**2)`` on an int32 column wrapped around silently; R computes in doubles (issue 22, item 3).

    Values are chosen so that x**3 overflows every integer type listed (and x**2 all but int64):
    the matrix must equal the float64 computation to rounding (rtol 1e-15, float64's).
    """
    info = np.iinfo(dtype.lower())
    x = np.linspace(1, min(info.max, 3_000_000), 6).astype(np.float64).round()
    data = pd.DataFrame({"x": pd.array(x.astype(np.int64), dtype=dtype), "y": np.arange(6.0), "k": [1, 2, 3] * 2})
    data["k"] = data["k"].astype(dtype)
    before = data.copy()
    design = build_design("I(x**3) + I(x*x) + np.log(x) + x:k + C(k)", data)
    assert design.column_names == ("(Intercept)", "I(x**3)", "I(x*x)", "np.log(x)", "C(k)2", "C(k)3", "x:k")
    k = data["k"].to_numpy(dtype=np.float64)
    expected = np.column_stack([x**3, x * x, np.log(x), k == 2, k == 3, x * k])
    np.testing.assert_allclose(design.matrix[:, 1:], expected, rtol=1e-15)
    np.testing.assert_allclose(design.for_newdata(data.iloc[::-1]), design.matrix[::-1], rtol=1e-15)
    np.testing.assert_allclose(build_response("I(x**3)", data), x**3, rtol=1e-15)
    np.testing.assert_allclose(build_design("offset(x*x*x)", data).offset, x**3, rtol=1e-15)
    pd.testing.assert_frame_equal(data, before)  # the caller's integer columns stay integers


def test_backticked_numeric_names_are_columns_not_literals() -> None:
    """A column named ``1`` written `` `1` `` is that column, never the intercept (issue 22, item 6).

    Expected names and values are R's: ``coef(lm(y ~ `1`, d))`` is (Intercept) 2.1, `1` 0.3, and
    ``model.matrix(~ x:`1`)`` has columns (Intercept) and x:`1`.
    """
    data = pd.DataFrame(
        {"y": [1.0, 3, 2, 5, 4], "1": [2.0, 1, 4, 3, 5], "x": [1.0, 2, 3, 4, 5], "0": [1.0, 0, 2, 0, 1]}
    )
    one = data["1"].to_numpy()
    cases = {
        "`1`": (("(Intercept)", "`1`"), [np.ones(5), one]),
        "0 + `1`": (("`1`",), [one]),
        "x:`1`": (("(Intercept)", "x:`1`"), [np.ones(5), data["x"] * one]),
        "I(`1`**2) + `0`": (("(Intercept)", "I(`1`**2)", "`0`"), [np.ones(5), one**2, data["0"]]),
    }
    for rhs, (names, columns) in cases.items():
        design = build_design(rhs, data)
        assert design.column_names == names, rhs
        np.testing.assert_array_equal(design.matrix, np.column_stack(columns), err_msg=rhs)
        np.testing.assert_array_equal(design.for_newdata(data.iloc[[4, 0]]), design.matrix[[4, 0]], err_msg=rhs)
    np.testing.assert_array_equal(build_response("`1`", data), one)
    np.testing.assert_allclose(mm.lm("y ~ `1`", data).fixef.to_numpy(), [2.1, 0.3], rtol=1e-12)
    assert list(data.columns) == ["y", "1", "x", "0"]  # no alias column leaks into the caller's frame


def test_factor_mixing_numbers_and_strings_is_read_as_text() -> None:
    """An object column with 1 and "1" was coded as six nonsense levels (h2, h3, h0, ...) silently:
    values are R's text labels, so it is the factor of the all-text column (issue 22, item 7)."""
    mixed = pd.Series([0, "1", 2, "0", 1, "2"], dtype=object)
    text = pd.Series(["0", "1", "2", "0", "1", "2"], dtype=object)
    for rhs in ("h", "C(h, contr.sum)"):
        design, expected = build_design(rhs, pd.DataFrame({"h": mixed})), build_design(rhs, pd.DataFrame({"h": text}))
        assert design.column_names == expected.column_names
        np.testing.assert_array_equal(design.matrix, expected.matrix)
    assert build_design("h", pd.DataFrame({"h": mixed})).column_names == ("(Intercept)", "h1", "h2")
    np.testing.assert_array_equal(
        build_response("h", pd.DataFrame({"h": pd.Series([0, "1", 1, "0"], dtype=object)})), [0.0, 1.0, 1.0, 0.0]
    )


def test_complex_columns_are_refused_by_name(small: pd.DataFrame) -> None:
    """Converting complex values to float drops the imaginary part (numpy only warns): refuse instead."""
    data = small.assign(c=small["x"] + 1j, y=small["x"] * 2)
    for call in (
        lambda: build_design("c", data),
        lambda: build_design("I(c*2) + x", data),
        lambda: build_response("c", data),
        lambda: build_design("x", small).for_newdata(data.assign(x=data["c"])),
    ):
        with pytest.raises(DataError, match="column '(c|x)' has complex values"):
            call()
    with pytest.raises(DataError, match="column 'c' has complex values"):
        mm.lm("y ~ c", data)
    with pytest.raises(DataError, match="column 'c' has complex values"):
        mm.lm("c ~ x", data)


# --- new data ---------------------------------------------------------------


def test_for_newdata_replays_scale_and_levels(grouse: pd.DataFrame) -> None:
    design = build_design("YEAR + scale(HEIGHT)", grouse)
    rows = [0, 5, 100, 402]
    np.testing.assert_allclose(design.for_newdata(grouse.iloc[rows]), design.matrix[rows])
    new = pd.DataFrame({"YEAR": ["97", "95"], "HEIGHT": [grouse["HEIGHT"].mean(), 0.0]})
    out = design.for_newdata(new)
    h = grouse["HEIGHT"]
    np.testing.assert_allclose(out[0], [1, 0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(out[1], [1, 0, 0, -h.mean() / h.std(ddof=1)])
    assert out.dtype == np.float64 and out.flags.c_contiguous


def test_for_newdata_keeps_training_coding_for_ordered_factors() -> None:
    data = ordered4()
    design = build_design("f", data)
    new = pd.DataFrame({"f": ["top", "lo"]})  # plain strings, only two levels present
    np.testing.assert_allclose(design.for_newdata(new)[:, 1:], POLY4[[3, 0]], atol=1e-7)


def test_for_newdata_refuses_unknown_levels(grouse: pd.DataFrame) -> None:
    design = build_design("YEAR + scale(HEIGHT)", grouse)
    with pytest.raises(DataError, match=r"factor 'YEAR' has level\(s\) '98'"):
        design.for_newdata(pd.DataFrame({"YEAR": ["95", "98"], "HEIGHT": [1.0, 2.0]}))


def test_for_newdata_requires_the_columns(grouse: pd.DataFrame) -> None:
    design = build_design("YEAR + scale(HEIGHT)", grouse)
    with pytest.raises(DataError, match="column 'HEIGHT' not found in data"):
        design.for_newdata(pd.DataFrame({"YEAR": ["95"], "HEIGT": [1.0]}))
    with pytest.raises(DataError, match="pandas DataFrame"):
        design.for_newdata({"YEAR": ["95"], "HEIGHT": [1.0]})  # type: ignore[arg-type]


def test_for_newdata_gives_nan_rows_for_missing_values(grouse: pd.DataFrame) -> None:
    design = build_design("YEAR + scale(HEIGHT)", grouse)
    out = design.for_newdata(pd.DataFrame({"YEAR": ["95", None, "96"], "HEIGHT": [1.0, 2.0, np.nan]}))
    assert np.isfinite(out[0]).all()
    assert np.isnan(out[1]).all() and np.isnan(out[2]).all()


def test_design_survives_pickling(grouse: pd.DataFrame) -> None:
    design = build_design("YEAR + scale(HEIGHT)", grouse)
    again = pickle.loads(pickle.dumps(design))
    np.testing.assert_allclose(again.for_newdata(grouse.iloc[:5]), design.matrix[:5])


# --- responses --------------------------------------------------------------


def test_numeric_and_expression_responses() -> None:
    ss = mm.datasets.load("sleepstudy")
    y = ss["Reaction"].to_numpy()
    for lhs, expected in [("Reaction", y), ("log(Reaction)", np.log(y)), ("I(Reaction/10)", y / 10)]:
        out = build_response(lhs, ss)
        assert out.dtype == np.float64 and out.shape == (180,)
        np.testing.assert_allclose(out, expected)
    ints = build_response("y", mm.datasets.load("InstEval"))
    assert ints.dtype == np.float64


def test_cbind_response() -> None:
    cbpp = mm.datasets.load("cbpp")
    out = build_response("cbind(incidence, size - incidence)", cbpp)
    assert out.shape == (56, 2) and out.dtype == np.float64
    np.testing.assert_array_equal(out[:, 0], cbpp["incidence"])
    np.testing.assert_array_equal(out.sum(axis=1), cbpp["size"])


def test_binary_responses_use_first_level_as_zero(verbagg: pd.DataFrame) -> None:
    np.testing.assert_array_equal(build_response("r2", verbagg), (verbagg["r2"] == "Y").to_numpy(float))
    np.testing.assert_array_equal(build_response("Gender", verbagg), (verbagg["Gender"] == "M").to_numpy(float))
    data = pd.DataFrame({"b": [True, False, True], "s": ["yes", "no", "yes"], "one": ["a", "a", "a"]})
    np.testing.assert_array_equal(build_response("b", data), [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(build_response("s", data), [1.0, 0.0, 1.0])  # "no" < "yes"
    np.testing.assert_array_equal(build_response("one", data), [0.0, 0.0, 0.0])
    # a declared but unused first level still counts as the failure level
    declared = pd.DataFrame({"r": pd.Categorical(["Y", "Y"], categories=["N", "Y"])})
    np.testing.assert_array_equal(build_response("r", declared), [1.0, 1.0])
    np.testing.assert_array_equal(
        build_response("I(resp == 'yes')", verbagg), (verbagg["resp"] == "yes").to_numpy(float)
    )


def test_response_errors(verbagg: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"response 'resp' is non-numeric with 3 levels \(no, perhaps, yes\)"):
        build_response("resp", verbagg)
    with pytest.raises(DataError, match="column 'Angr' not found in data; did you mean 'Anger'"):
        build_response("log(Angr)", verbagg)
    with pytest.raises(DataError, match="non-finite"):
        build_response("log(Anger)", verbagg.assign(Anger=0))
    with pytest.raises(DataError, match="pandas DataFrame"):
        build_response("y", [1, 2, 3])  # type: ignore[arg-type]


# --- input errors -----------------------------------------------------------


def test_design_errors(small: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="pandas DataFrame"):
        build_design("x", small.to_dict())  # type: ignore[arg-type]
    with pytest.raises(DataError, match="column 'xx' not found in data; did you mean 'x'"):
        build_design("xx + z", small)
    with pytest.raises(DataError, match=r"missing values in z \(1 rows\)"):
        build_design("x + z", small.assign(z=[1.0, np.nan, 1, 1, 1, 1]))
    with pytest.raises(DataError, match=r"log\(z - 1\) have non-finite values"):
        build_design("log(z - 1)", small)
    with pytest.raises(DataError, match="only 1 level"):
        build_design("s", small.assign(s="a"))
    with pytest.raises(FormulaError, match=r"x\*\*2"):
        build_design("I(x^2)", small)
    with pytest.raises(FormulaError, match="one side of a formula"):
        build_design("y ~ x", small)
    with pytest.raises(FormulaError, match="cannot parse"):
        build_design("x +", small)
    with pytest.raises(FormulaError, match="foo"):
        build_design("foo(x)", small)


# --- lme4's rank and scale checks ---------------------------------------------


def test_drop_aliased_columns_like_lme4() -> None:
    data = pd.DataFrame({"x": list("AABB"), "z": list("CDCC"), "w": [1.0, 2.0, 3.0, 4.0]})
    design = build_design("x*z", data)
    assert design.column_names == ("(Intercept)", "xB", "zD", "xB:zD")
    with pytest.warns(RankDeficiencyWarning) as record:
        kept, dropped = drop_aliased_columns(design)
    assert str(record[0].message) == (
        "fixed-effect model matrix is rank deficient so dropping 1 column / coefficient: xB:zD"
    )
    assert dropped == ("xB:zD",)
    assert kept.column_names == ("(Intercept)", "xB", "zD")
    np.testing.assert_array_equal(kept.matrix, design.matrix[:, :3])
    assert kept.matrix.flags.c_contiguous
    np.testing.assert_array_equal(kept.for_newdata(data), design.matrix[:, :3])


def test_drop_aliased_keeps_earlier_columns(verbagg: pd.DataFrame) -> None:
    # lme4 on y ~ btype:situ drops the last indicator, as R's pivoted QR does
    with pytest.warns(RankDeficiencyWarning, match="dropping 1 column / coefficient: btypeshout:situself"):
        kept, dropped = drop_aliased_columns(build_design("btype:situ", verbagg))
    assert dropped == ("btypeshout:situself",)
    data = pd.DataFrame({"a": [1.0, 2.0, 3.0, 5.0], "z": [0.0] * 4})
    data["b"] = 2 * data["a"]
    data["c"] = data["a"] + 1
    with pytest.warns(RankDeficiencyWarning, match="dropping 3 columns / coefficients: z, b, c"):
        kept, dropped = drop_aliased_columns(build_design("a + z + b + c", data))
    assert kept.column_names == ("(Intercept)", "a")
    assert kept.for_newdata(data).shape == (4, 2)


def test_full_rank_design_is_returned_unchanged(verbagg: pd.DataFrame) -> None:
    design = build_design("Anger + Gender", verbagg)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept, dropped = drop_aliased_columns(design)
    assert kept is design and dropped == ()


def test_check_scale_warns_like_lme4() -> None:
    rng = np.random.default_rng(1)
    data = pd.DataFrame({"big": rng.normal(size=50) * 1e4, "unit": rng.normal(size=50)})
    with pytest.warns(
        ScaleWarning,
        match=r"Some predictor variables are on very different scales: consider rescaling \(columns big .*unit",
    ):
        check_scale(build_design("big + unit", data))
    # one column with SD > 1000 is enough for lme4
    with pytest.warns(ScaleWarning, match="big"):
        check_scale(build_design("big", data))


def test_check_scale_ignores_indicators_and_ordinary_scales(verbagg: pd.DataFrame) -> None:
    ss = mm.datasets.load("sleepstudy")
    data = verbagg.assign(small=verbagg["Anger"] / 100)  # SD ~0.05, Anger SD ~4.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_scale(build_design("Days", ss))
        check_scale(build_design("Anger + Gender + btype + small", data))
        check_scale(build_design("0 + btype", verbagg))


def test_with_transform_state_changes_only_the_replays():
    """The state of scale() can be given from elsewhere (as a fit on Dask does); the design built stays as it was."""
    df = mm.datasets.load("sleepstudy")
    design = build_design("scale(Days) + Days", df)
    state = design.transform_state["scale(Days)"]
    assert state["center"] == pytest.approx(4.5) and state["ddof"] == 1
    shifted = design.with_transform_state({"scale(Days)": {"ddof": 1, "center": 0.0, "scale": 2.0}})
    np.testing.assert_allclose(shifted.for_newdata(df.head(3))[:, 1], df["Days"].to_numpy()[:3] / 2.0)
    np.testing.assert_allclose(design.for_newdata(df.head(3)), design.matrix[:3])
    with pytest.raises(ModelSpecError, match="no stateful transform"):
        design.with_transform_state({"scale(Reaction)": {}})


def test_factor_levels_by_factor_code():
    design = build_design("period + C(size > 15)", mm.datasets.load("cbpp"))
    assert design.factor_levels() == {"period": ["1", "2", "3", "4"], "C(size > 15)": ["FALSE", "TRUE"]}


def test_independent_columns_from_x_or_its_r():
    """The QR's R alone decides which columns are aliased (what a tall-skinny QR over partitions gives)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3))
    x = np.column_stack([x, x[:, 0] + x[:, 1]])
    r = np.linalg.qr(x, mode="r")
    assert independent_columns(x) == independent_columns(r) == [0, 1, 2]


def test_keep_columns_and_check_column_scales_warn_as_lme4():
    df = mm.datasets.load("sleepstudy")
    design = build_design("Days + I(2 * Days)", df)
    with pytest.warns(RankDeficiencyWarning, match=r"dropping 1 column / coefficient: I\(2 \* Days\)"):
        kept, dropped = keep_columns(design, [0, 1])
    assert kept.column_names == ("(Intercept)", "Days") and dropped == ("I(2 * Days)",)
    with pytest.warns(ScaleWarning, match="very different scales"):
        check_column_scales(["a", "b"], np.array([1.0, 5000.0]), np.array([False, False]))

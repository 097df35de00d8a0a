"""The formula functions (design/transforms.py, design/splines.py) beyond the R cases.

R's own numbers for these features are compared in test_formula_language.py; here each
other spelling is checked against the R case it must equal (Q() against R's backticks,
Python's ``raw=True`` against R's ``raw = TRUE``, explicit knots against R's knots for
``df``), and the errors and the state kept for new data are checked.  Equalities between two
spellings of one model are exact up to rounding (1e-12 relative): the same numbers go through
the same code.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import as_list, dataset, reference
from mixedmodels.design.fixed import build_design
from mixedmodels.errors import DataError, FormulaError

CASES = reference("formula_language")["cases"]


def _iris_sp() -> pd.DataFrame:
    return dataset("iris").rename(columns=lambda c: c.replace(".", " "))


def _matrix(case_id: str) -> tuple[np.ndarray, np.ndarray]:
    case = CASES[case_id]
    return np.asarray(as_list(case["model_matrix_rows"])) - 1, np.asarray(case["model_matrix"], dtype=float)


def test_q_finds_a_column_with_a_space_as_r_finds_backticks():
    case = CASES["backticks_lm"]
    m = mm.lm('Q("Sepal Length") ~ Q("Sepal Width") + Q(\'Petal Length\')', _iris_sp())
    assert list(m.fixef_names) == as_list(case["fixef_names"])  # R's names: `Sepal Width` with backticks
    np.testing.assert_allclose(m.fixef.to_numpy(), as_list(case["fixef"]), rtol=1e-8)


def test_q_in_a_random_term_and_with_a_plain_name():
    data = dataset("sleepstudy").rename(columns={"Days": "my days"})
    by_q = mm.lmer('Reaction ~ Q("my days") + (Q("my days") | Subject)', data)
    ticked = mm.lmer("Reaction ~ `my days` + (`my days` | Subject)", data)
    np.testing.assert_allclose(by_q.theta, ticked.theta, rtol=1e-12)
    assert list(by_q.fixef_names) == ["(Intercept)", "`my days`"]
    np.testing.assert_allclose(mm.lm('Q("Reaction") ~ Q("my days")', data).fixef, ticked.fixef, rtol=0.05)


@pytest.mark.parametrize(
    "python_spelling, case_id",
    [
        ("poly(Days, 2, raw=True)", "poly_raw_lm"),
        ("scale(Days, center=False)", "scale_nocenter_lm"),
        ("scale(Days, scale=False)", "scale_noscale_lm"),
        ("ns(Days, knots = c(3, 6), Boundary.knots = c(0, 9))", "ns3_lm"),
        ("ns(Days, knots=[3, 6])", "ns3_lm"),
        ("bs(Days, knots = c(3, 6))", "bs5_lmer"),
        ("bs(Days, degree = 3, Boundary.knots = c(9, 0))", "bs3_lm"),
        ("as.numeric(Species)", "as_numeric_lm"),
    ],
)
def test_other_spellings_give_rs_model_matrix(python_spelling, case_id):
    data = dataset(CASES[case_id]["data"])
    rows, expected = _matrix(case_id)
    design = build_design(python_spelling, data)
    np.testing.assert_allclose(design.matrix[rows], expected, rtol=1e-8, atol=1e-12)
    assert design.column_names[1].startswith(python_spelling)  # named as written


def test_spline_knots_and_scale_are_kept_for_new_data():
    """Predicting one row at a time uses the fitted data's knots, not knots of that row."""
    data = dataset("sleepstudy")
    for case_id in ("ns3_lm", "bs3_lm", "poly_orth_lm", "scale_nocenter_lm"):
        formula = CASES[case_id]["call"][3:].split(", sleepstudy")[0]
        m = mm.lm(formula, data)
        newdata = pd.DataFrame({"Days": as_list(CASES[case_id]["newdata"]["Days"])})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mm.MixedModelsWarning)
            one_by_one = [m.predict(newdata.iloc[[i]]).iloc[0] for i in range(len(newdata))]
        np.testing.assert_allclose(one_by_one, as_list(CASES[case_id]["predict_newdata"]), rtol=1e-8)


def test_spline_rows_with_missing_values_predict_nan():
    m = mm.lm("Reaction ~ ns(Days, df = 3)", dataset("sleepstudy"))
    predicted = m.predict(pd.DataFrame({"Days": [1.0, np.nan, 4.5]}))
    assert np.isnan(predicted.iloc[1]) and np.isfinite(predicted.iloc[[0, 2]]).all()


@pytest.mark.parametrize(
    "term, message",
    [
        ("ns(Days, df = 0)", "df must be a positive whole number"),
        ("bs(Days, df = 2.5)", "df must be a positive whole number"),
        ("bs(Days, degree = 0)", "degree must be a whole number"),
        ("ns(Days, Boundary.knots = c(1, 2, 3))", "Boundary.knots must be two finite numbers"),
        ("ns(Subject)", "needs a numeric variable"),
        ("as.numeric(Subject2)", "not a number"),
    ],
)
def test_bad_arguments_raise_mixedmodels_errors(term, message):
    data = dataset("sleepstudy").assign(Subject2=lambda d: "s" + d["Subject"].astype(str))
    with pytest.raises(mm.MixedModelsError, match=message):
        build_design(term, data)


def test_too_small_df_warns_as_r_does():
    """R: ``bs(x, df = 2)`` warns "'df' was too small; have used 3" and uses no interior knot."""
    data = dataset("sleepstudy")
    rows, expected = _matrix("bs3_lm")
    with pytest.warns(mm.MixedModelsWarning, match="'df' was too small; have used 3"):
        design = build_design("bs(Days, df = 2)", data)
    np.testing.assert_allclose(design.matrix[rows], expected, rtol=1e-8, atol=1e-12)


def test_as_numeric_of_text_numbers_and_of_new_data_levels():
    iris = dataset("iris")
    m = mm.lm("Sepal.Length ~ as.numeric(Species)", iris)
    # new data: a Categorical whose categories are in another order; the fitted data's levels count
    reordered = pd.DataFrame({"Species": pd.Categorical(["virginica", "setosa"], categories=["virginica", "setosa"])})
    expected = m.fixef.iloc[0] + m.fixef.iloc[1] * np.array([3.0, 1.0])
    np.testing.assert_allclose(m.predict(reordered), expected, rtol=1e-12)
    with pytest.raises(DataError, match="'other' were not levels of the fitted data"):
        m.predict(pd.DataFrame({"Species": pd.Categorical(["other"])}))
    as_text = pd.DataFrame({"y": [1.0, 2.5, 2.9, 4.2], "x": ["1", "2", "3", "4"]})
    np.testing.assert_allclose(build_design("as.numeric(x)", as_text).matrix[:, 1], [1, 2, 3, 4])


def test_factor_of_a_number_with_levels_and_new_data():
    data = dataset("sleepstudy")
    rows, expected = _matrix("factor_lmer")
    design = build_design("factor(Days)", data)
    np.testing.assert_allclose(design.matrix[rows], expected, rtol=0)
    relevelled = build_design("factor(Days, levels = c(9, 0, 1, 2, 3, 4, 5, 6, 7, 8))", data)
    assert relevelled.column_names[1] == "factor(Days, levels = c(9, 0, 1, 2, 3, 4, 5, 6, 7, 8))0"
    with pytest.raises(DataError, match="'12'"):
        design.for_newdata(pd.DataFrame({"Days": [12.0]}))


def test_dotted_names_inside_calls_and_random_terms():
    """R data's names with dots work everywhere a name does, the same as without dots."""
    iris = dataset("iris").assign(Plant=lambda d: np.arange(len(d)) // 5)
    plain = iris.rename(columns=lambda c: c.replace(".", "_"))
    pairs = [
        (
            "log(Sepal.Length) ~ Sepal.Width:Species + (log(Petal.Length) | Species)",
            "log(Sepal_Length) ~ Sepal_Width:Species + (log(Petal_Length) | Species)",
        ),
        ("Sepal.Length ~ I(Petal.Width**2) + (1 | Plant)", "Sepal_Length ~ I(Petal_Width**2) + (1 | Plant)"),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for dotted, underscored in pairs:
            a, b = mm.lmer(dotted, iris), mm.lmer(underscored, plain)
            np.testing.assert_allclose(a.fixef.to_numpy(), b.fixef.to_numpy(), rtol=1e-10)
            assert [n.replace(".", "_") for n in a.fixef_names] == list(b.fixef_names)


def test_dot_leaves_out_the_responses_variables():
    """R: ``lm(log(y) ~ ., d)`` has x and z, not y; ``cbind(s, f) ~ .`` neither s nor f."""
    d = pd.DataFrame({"y": [1.0, 3, 2, 5, 4, 6], "x": [1.0, 2, 3, 4, 5, 7], "z": [2.0, 1, 4, 3, 6, 5]})
    assert list(mm.lm("log(y) ~ .", d).fixef_names) == ["(Intercept)", "x", "z"]
    assert list(mm.lm("y ~ .^2", d).fixef_names) == ["(Intercept)", "x", "z", "x:z"]
    cbpp = dataset("cbpp")
    m = mm.glmer("cbind(incidence, size - incidence) ~ . - herd + (1 | herd)", cbpp, family="binomial")
    assert list(m.fixef_names) == ["(Intercept)", "period2", "period3", "period4"]


def test_dot_errors_name_the_problem():
    d = pd.DataFrame({"y": [1.0, 3, 2, 5], "x": [1.0, 2, 3, 4], "g": ["a", "a", "b", "b"]})
    with pytest.raises(FormulaError, match="random-effects term"):
        mm.lmer("y ~ 1 + (. | g)", d)
    with pytest.raises(FormulaError, match="no name a formula can use"):
        mm.lm("y ~ .", d.rename(columns={"x": 3}))
    with pytest.raises(FormulaError, match="expand it from their data"):  # not formulaic's internals
        build_design(". - g", d)


def test_input_data_are_not_modified():
    iris = dataset("iris").copy()
    before = iris.copy()
    m = mm.lm("Sepal.Length ~ . - Petal.Width - Species + ns(Petal.Width, df = 3) + as.numeric(Species)", iris)
    assert m.fixef.size == 7
    pd.testing.assert_frame_equal(iris, before)

"""Type III (and type I) F tests per fixed-effect term against lmerTest's anova.

Tolerances: at our own optimum DenDF within 1e-3 relative, F value and Sum Sq
within 1e-4, p within 1e-3 relative (or 1e-10 absolute); at R's optimum (the
unbalanced case) DenDF within 1e-5 and p within 1e-4.  Hypothesis matrices
must equal lmerTest's to 1e-8.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import reference
from conftest_ddf import assert_p_close, at_reference, fit, ref_theta, table
from mixedmodels.errors import MixedModelsError
from mixedmodels.inference.ftests import (
    anova_table,
    f_test,
    fixed_terms,
    term_hypotheses,
)
from mixedmodels.inference.ddf import coef_table

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel

COLUMNS = ["Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"]

# reference file, key prefix, formula, contrasts
CASES = {
    "dayf": ("sleepstudy_dayf", "Reaction ~ DayF + (1 | Subject)", None),
    "slope": ("sleepstudy_slope_lmertest", "Reaction ~ Days + (Days | Subject)", None),
    "phase_days": ("ddf_phase_days", "Reaction ~ Phase * Days + (Days | Subject)", None),
    "phase_half": ("ddf_phase_half", "Reaction ~ Phase * Half + (1 | Subject)", None),
    "phase_half_sum": (
        "ddf_phase_half_sum",
        "Reaction ~ Phase * Half + (1 | Subject)",
        (("Phase", "sum"), ("Half", "sum")),
    ),
}


def _compare(own: pd.DataFrame, expected: pd.DataFrame, df_rtol: float = 1e-3, p_rtol: float = 1e-3) -> None:
    assert list(own.index) == list(expected.index)
    assert list(own.columns) == COLUMNS
    np.testing.assert_array_equal(own["NumDF"], expected["NumDF"])
    np.testing.assert_allclose(own["DenDF"], expected["DenDF"], rtol=df_rtol)
    for col in ("Sum Sq", "Mean Sq", "F value"):
        np.testing.assert_allclose(own[col], expected[col], rtol=1e-4)
    assert_p_close(own["Pr(>F)"], expected["Pr(>F)"], rel=p_rtol)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize(
    "method, key", [("satterthwaite", "anova_satterthwaite"), ("Kenward-Roger", "anova_kenward_roger")]
)
def test_type3_anova(case, method, key):
    name, formula, contrasts = CASES[case]
    expected = table(reference(name)[key]).set_index("rownames")
    own = anova_table(fit(formula, contrasts=contrasts), ddf=method)
    _compare(own, expected)


@pytest.mark.parametrize("case", ["phase_days", "phase_half"])
def test_type1_anova(case):
    name, formula, contrasts = CASES[case]
    expected = table(reference(name)["anova_type1_satterthwaite"]).set_index("rownames")
    own = anova_table(fit(formula, contrasts=contrasts), ddf="satterthwaite", type="I")
    _compare(own, expected)
    assert own.attrs["heading"] == "Type I Analysis of Variance Table with Satterthwaite's method"


@pytest.mark.parametrize("case", ["phase_days", "phase_half", "phase_half_sum"])
def test_type3_hypotheses_equal_lmertest(case):
    name, formula, contrasts = CASES[case]
    expected = reference(name)["hypotheses_type3"]
    own = term_hypotheses(fit(formula, contrasts=contrasts))
    assert list(own) == list(expected)
    for term, matrix in expected.items():
        np.testing.assert_allclose(own[term], np.atleast_2d(matrix), atol=1e-8)


@pytest.mark.parametrize("method, key", [("satterthwaite", "anova_satterthwaite"), ("KR", "anova_kenward_roger")])
def test_multi_df_f_test_unbalanced_at_r_optimum(method, key):
    """DayF has 9 numerator df; unbalanced data make Kenward-Roger's F scaling and df non-trivial."""
    ref = reference("ddf_unbalanced")["dayf"]
    result = at_reference("Reaction ~ DayF + (1 | Subject)", ref_theta(ref), data="sleep_unbal")
    expected = table(ref[key]).set_index("rownames")
    _compare(anova_table(result, ddf=method), expected, df_rtol=1e-5, p_rtol=1e-4)


def test_heading_and_result_method():
    result = fit("Reaction ~ DayF + (1 | Subject)")
    table_ = result.anova()
    assert table_.attrs["heading"] == "Type III Analysis of Variance Table with Satterthwaite's method"
    assert anova_table(result, "KR").attrs["heading"].endswith("with Kenward-Roger's method")


def test_one_row_f_test_is_the_squared_t_test():
    result = fit("Reaction ~ Phase * Days + (Days | Subject)")
    row = f_test(result, [0.0, 0.0, 1.0, 0.0])
    tab = coef_table(result, "satterthwaite").loc["Days"]
    assert row["F value"] == pytest.approx(tab["t value"] ** 2, rel=1e-10)
    assert row["DenDF"] == pytest.approx(tab["df"], rel=1e-10)
    assert row["Pr(>F)"] == pytest.approx(tab["Pr(>|t|)"], rel=1e-8)


def test_f_test_does_not_depend_on_the_basis_of_the_hypothesis():
    result = fit("Reaction ~ DayF + (1 | Subject)")
    L = term_hypotheses(result)["DayF"]
    mixed = np.random.default_rng(1).normal(size=(L.shape[0], L.shape[0])) @ L
    for method in ("satterthwaite", "KR"):
        a, b = f_test(result, L, method), f_test(result, mixed, method)
        np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-6)


def test_fixed_terms_map_columns():
    result = fit("Reaction ~ Phase * Days + (Days | Subject)")
    terms, has_intercept = fixed_terms(result.model.inputs.fixed)
    assert has_intercept
    assert [(t.label, t.columns, t.numeric) for t in terms] == [
        ("Phase", (1,), ()),
        ("Days", (2,), ("Days",)),
        ("Phase:Days", (3,), ("Days",)),
    ]


def test_anova_needs_a_method_and_an_lmer_fit():
    result = fit("Reaction ~ Days + (Days | Subject)")
    with pytest.raises(MixedModelsError, match="satterthwaite"):
        anova_table(result, ddf=None)
    with pytest.raises(MixedModelsError, match="anova type"):
        anova_table(result, type=2)
    cbpp = mm.datasets.load("cbpp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        glmm = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial")
    with pytest.raises(MixedModelsError, match="mm.anova"):
        anova_table(glmm)


# more formulas (make_ddf.R's ddf_terms): R's I(Days^2) is I(Days**2) here
TERMS = {
    "phase_scale": ("Reaction ~ Phase * scale(Days) + (1 | Subject)", None),
    "third_half": ("Reaction ~ Third * Half + (1 | Subject)", None),
    "no_intercept": ("Reaction ~ 0 + Phase + Days + (1 | Subject)", None),
    "quadratic": ("Reaction ~ Phase + Days + I(Days**2) + (1 | Subject)", None),
    "helmert_days": ("Reaction ~ Third * Days + (Days | Subject)", (("Third", "helmert"),)),
}


def _r_labels(labels):
    return [label.replace("**", "^") for label in labels]


@pytest.mark.parametrize("case", sorted(TERMS))
def test_type3_hypotheses_for_more_formulas(case):
    formula, contrasts = TERMS[case]
    expected = reference("ddf_terms")[case]["hypotheses_type3"]
    own = term_hypotheses(fit(formula, contrasts=contrasts))
    assert _r_labels(own) == list(expected)
    for (term, matrix), r_matrix in zip(own.items(), expected.values()):
        np.testing.assert_allclose(matrix, np.atleast_2d(r_matrix), atol=1e-6, err_msg=term)


@pytest.mark.parametrize("case", sorted(TERMS))
@pytest.mark.parametrize("method, key", [("satterthwaite", "anova_satterthwaite"), ("KR", "anova_kenward_roger")])
def test_anova_for_more_formulas(case, method, key):
    formula, contrasts = TERMS[case]
    expected = table(reference("ddf_terms")[case][key]).set_index("rownames")
    own = anova_table(fit(formula, contrasts=contrasts), ddf=method)
    own.index = _r_labels(own.index)
    _compare(own, expected)


def test_type1_with_multi_df_terms():
    expected = table(reference("ddf_terms")["third_half"]["anova_type1_satterthwaite"]).set_index("rownames")
    _compare(anova_table(fit(TERMS["third_half"][0]), type=1), expected)

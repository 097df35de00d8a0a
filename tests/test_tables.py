"""Model-comparison and test tables print whole, as R prints them (tests/reference/make_printing.R).

The texts are compared line by line (trailing blanks stripped; R's "Data:" line left out, since
a DataFrame has no name).  The printed digits are far coarser than the differences between our
optimum and lme4's (< 1e-7 relative in the log-likelihoods), so the texts are equal.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import fitted_lmer
from mixedmodels.tables import RTable, anova_lines, r_table

PRINTING = Path(__file__).parent / "reference" / "printing"
SLOPE = "Reaction ~ Days + (Days | Subject)"
INTERCEPT = "Reaction ~ Days + (1 | Subject)"


def _r_lines(name: str) -> list[str]:
    lines = (PRINTING / f"{name}.txt").read_text(encoding="utf-8").splitlines()
    return [line.rstrip() for line in lines if not line.startswith("Data: ")]


def _printed(table) -> list[str]:
    return str(table).splitlines()


@pytest.fixture(scope="module")
def m0():
    return fitted_lmer(INTERCEPT, "sleepstudy")


@pytest.fixture(scope="module")
def m1():
    return fitted_lmer(SLOPE, "sleepstudy")


def test_anova_prints_as_lme4_with_the_callers_names(m0, m1):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.MixedModelsWarning)
        table = mm.anova(m0, m1)
    assert list(table.index) == ["m0", "m1"]
    assert _printed(table) == _r_lines("anova_m0_m1")


def test_anova_lm_against_lmer_prints_as_lme4(m1):
    l0 = mm.lm("Reaction ~ Days", mm.datasets.load("sleepstudy"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.MixedModelsWarning)
        table = mm.anova(m1, l0)
    assert _printed(table) == _r_lines("anova_l0_m1")


def test_anova_without_names_in_scope_labels_models_by_position(m0, m1):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.MixedModelsWarning)
        table = mm.anova(*[m0, m1][::-1])  # positional, but m0 and m1 are names here too
        unnamed = mm.anova(*(fit for fit in (m0, m1)))
    assert list(table.index) == ["m0", "m1"]
    assert list(unnamed.index) == ["m0", "m1"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.MixedModelsWarning)
        anonymous = mm.anova(fitted_lmer(INTERCEPT, "sleepstudy", False), fitted_lmer(SLOPE, "sleepstudy", False))
    assert list(anonymous.index) == ["Model 1", "Model 2"]
    assert str(anonymous).splitlines()[1:3] == [f"Model 1: {INTERCEPT}", f"Model 2: {SLOPE}"]


def test_ranova_prints_as_lmertest(m1):
    assert _printed(mm.ranova(m1)) == _r_lines("ranova_m1")


@pytest.mark.parametrize("ddf, name", [("satterthwaite", "satterthwaite"), ("kenward-roger", "kenward_roger")])
def test_f_table_prints_as_lmertest(m1, ddf, name):
    assert _printed(m1.anova(ddf=ddf)) == _r_lines(f"anova_type3_{name}")


def test_wide_tables_print_every_column_in_a_narrow_terminal(m0, m1):
    with pd.option_context("display.width", 40, "display.max_columns", 3), warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.MixedModelsWarning)
        text = str(mm.anova(m0, m1))
    assert "columns]" not in text and "..." not in text
    assert all(name in text for name in ["npar", "AIC", "BIC", "logLik", "deviance", "Chisq", "Df", "Pr(>Chisq)"])


def test_coef_table_and_confint_print_as_r_matrices(m1):
    lines = _printed(m1.coef_table(ddf="satterthwaite"))
    assert lines[0].split() == ["Estimate", "Std.", "Error", "df", "t", "value", "Pr(>|t|)"]
    assert lines[1].startswith("(Intercept) 251.40510") and lines[1].endswith("e-17")
    wald = _printed(m1.confint(method="wald"))
    assert wald[1].split()[-2:] == ["NA", "NA"] and wald[0].split() == ["2.5", "%", "97.5", "%"]


def test_tables_are_dataframes_and_what_derives_from_them_is_plain(m1):
    table = mm.ranova(m1)
    assert isinstance(table, pd.DataFrame) and isinstance(table, RTable)
    assert type(table.iloc[:1]) is pd.DataFrame and type(table.copy()) is pd.DataFrame
    assert table.loc["<none>", "npar"] == 6
    assert "<pre>" in table._repr_html_() and "Pr(&gt;Chisq)" in table._repr_html_()


def test_print_anova_formats_each_column_like_r():
    frame = pd.DataFrame(
        {
            "Df": [1.0, 178.0],
            "Sum Sq": [162702.6, 405252.0],
            "Mean Sq": [162702.6, 2276.7],
            "F value": [71.46377, np.nan],
            "Pr(>F)": [9.894e-15, np.nan],
        },
        index=["Days", "Residuals"],
    )
    # R: print(anova(lm(Reaction ~ Days, sleepstudy)))
    assert anova_lines(frame) == [
        "           Df Sum Sq Mean Sq F value    Pr(>F)",
        "Days        1 162703  162703  71.464 9.894e-15 ***",
        "Residuals 178 405252    2277",
        "---",
        "Signif. codes:  0 \u2018***\u2019 0.001 \u2018**\u2019 0.01 \u2018*\u2019 0.05 \u2018.\u2019 0.1 \u2018 \u2019 1",
    ]


def test_no_stars_when_no_p_value_is_below_a_tenth():
    frame = pd.DataFrame(
        {"Chisq": [np.nan, 1.2], "Df": [np.nan, 1.0], "Pr(>Chisq)": [np.nan, 0.2733]}, index=["a", "b"]
    )
    assert anova_lines(frame) == ["  Chisq Df Pr(>Chisq)", "a", "b   1.2  1     0.2733"]


def test_r_table_refuses_an_unknown_layout():
    with pytest.raises(ValueError, match="layout"):
        r_table(pd.DataFrame({"a": [1.0]}), layout="latex")

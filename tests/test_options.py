"""``mm.options(contrasts=...)`` and ``mm.option_context``: R's ``options(contrasts = ...)`` for every fitter.

References: tests/reference/classroom.json (``contrasts``), made by make_classroom.R with lme4
1.1-31: each case sets ``options(contrasts = ...)`` for one lm / glm / lmer / glmer call.
Tolerances: least-squares coefficients and SEs agree to rounding (1e-8 relative); lmer and
glmer estimates are optimizer results, compared as in tests/lmm/test_model.py (1e-4 relative
on SDs and fixed effects, 1e-6 on the log-likelihood); glmer's fixed effects within 1 % of
their SE and SEs to 2 %, since lme4's default glmer stops early (its cbpp SEs are ~1.3 % off
the converged ones: tests/glmm/test_glmm.py).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import as_list, dataset, reference

pytestmark = pytest.mark.numerics

REF = reference("classroom")["contrasts"]


def _data(name: str) -> pd.DataFrame:
    data = dataset("sleepstudy" if name.startswith("sleepstudy") else name).copy()
    if name.startswith("sleepstudy"):
        days = data["Days"].astype(int)
        data["DayF"] = pd.Categorical(days.astype(str), categories=[str(d) for d in range(10)])
        data["Phase"] = pd.Categorical(np.where(days < 5, "early", "late"))
    if name == "sleepstudy_d4":
        data = data[data["Days"] <= 4].copy()
        data["DayO"] = pd.Categorical(
            data["Days"].astype(int).astype(str), categories=[str(d) for d in range(5)], ordered=True
        )
    return data


def _fit(case: str):
    """The R call of a case, in Python, under its options."""
    calls = {
        "lm_sum": lambda: mm.lm("Reaction ~ DayF", _data("sleepstudy")),
        "lm_helmert": lambda: mm.lm("Reaction ~ DayF", _data("sleepstudy")),
        "lm_ordered_poly": lambda: mm.lm("Reaction ~ DayO", _data("sleepstudy_d4")),
        "lm_ordered_sum": lambda: mm.lm("Reaction ~ DayO", _data("sleepstudy_d4")),
        "lm_ordered_treatment": lambda: mm.lm("Reaction ~ DayO + Subject", _data("sleepstudy_d4")),
        "lm_override": lambda: mm.lm(
            "Reaction ~ DayF + Subject", _data("sleepstudy"), contrasts={"DayF": "contr.treatment"}
        ),
        "glm_sum": lambda: mm.glm("cbind(incidence, size - incidence) ~ period", dataset("cbpp"), family="binomial"),
        "lmer_sum_random": lambda: mm.lmer("Reaction ~ Phase + (Phase | Subject)", _data("sleepstudy")),
        "lmer_ordered": lambda: mm.lmer("Reaction ~ DayO + (1 | Subject)", _data("sleepstudy_d4")),
        "lmer_helmert": lambda: mm.lmer("Reaction ~ DayF + (1 | Subject)", _data("sleepstudy")),
        "glmer_sum": lambda: mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", dataset("cbpp")),
    }
    with mm.option_context(contrasts=tuple(REF[case]["options"])):
        return calls[case]()


@pytest.mark.parametrize("case", sorted(REF))
def test_fits_match_r_under_options_contrasts(case):
    ref = REF[case]
    fit = _fit(case)
    assert list(fit.fixef.index) == as_list(ref["fixef_names"])
    mixed = "varcorr_names" in ref
    rtol = 1e-4 if mixed else 1e-8
    if case.startswith("glmer"):  # lme4's glmer stops early: within 1 % of a standard error (tests/glmm)
        gap = np.abs(fit.fixef.to_numpy() - as_list(ref["fixef"])) / np.asarray(as_list(ref["se"]))
        assert np.all(gap < 0.01), gap
        rtol = 0.02  # lme4's default cbpp SEs are ~1.3 % off its own converged ones (tests/glmm/test_glmm.py)
    else:
        np.testing.assert_allclose(fit.fixef.to_numpy(), as_list(ref["fixef"]), rtol=rtol, atol=1e-8)
    np.testing.assert_allclose(fit.se.to_numpy(), as_list(ref["se"]), rtol=rtol)
    if case.startswith("glmer"):  # lme4's PIRLS tolerance leaves its Laplace deviance ~5e-4 high
        assert ref["logLik"] - 1e-6 <= fit.loglik <= ref["logLik"] + 1e-3
    else:
        np.testing.assert_allclose(fit.loglik, ref["logLik"], rtol=1e-6 if mixed else 1e-10)
    if mixed:
        names = [n for n in as_list(ref["varcorr_names"]) if n is not None and "." not in n]
        assert [c for t in fit.terms for c in t.column_names] == names
        sds = [
            s for n, s in zip(as_list(ref["varcorr_names"]), as_list(ref["sdcor"])) if n is not None and "." not in n
        ]
        ours = np.concatenate([np.sqrt(np.diag(c)) for c in fit.covariances.values()])
        np.testing.assert_allclose(ours, sds, rtol=0.01 if case.startswith("glmer") else 1e-4)


def test_default_is_r_default_and_context_restores(sleepstudy):
    assert mm.options() == {"contrasts": ("treatment", "poly")}
    data = _data("sleepstudy")
    with mm.option_context(contrasts=("contr.sum", "contr.poly")) as now:
        assert now["contrasts"] == ("sum", "poly")
        assert list(mm.lm("Reaction ~ Phase", data).fixef.index) == ["(Intercept)", "Phase1"]
    assert list(mm.lm("Reaction ~ Phase", data).fixef.index) == ["(Intercept)", "Phaselate"]
    with pytest.raises(ZeroDivisionError), mm.option_context(contrasts=("sum", "sum")):
        1 / 0
    assert mm.get_option("contrasts") == ("treatment", "poly")  # restored after the error too


def test_options_returns_old_values_to_restore():
    old = mm.options(contrasts=("helmert", "poly"))
    try:
        assert old == {"contrasts": ("treatment", "poly")}
        assert mm.options()["contrasts"] == ("helmert", "poly")
    finally:
        mm.options(**old)
    assert mm.options()["contrasts"] == ("treatment", "poly")
    mm.options(contrasts=("sum", "poly"))
    mm.options(contrasts=None)  # back to the default
    assert mm.options()["contrasts"] == ("treatment", "poly")


def test_a_fitted_model_keeps_its_coding_for_new_data():
    data = _data("sleepstudy")
    with mm.option_context(contrasts=("sum", "poly")):
        fit = mm.lmer("Reaction ~ Phase + (1 | Subject)", data)
    new = data.iloc[[0, 9]]
    expected = fit.fixef["(Intercept)"] + np.array([1.0, -1.0]) * fit.fixef["Phase1"]  # sum coding: early +1, late -1
    np.testing.assert_allclose(fit.predict(new, re_form="~0").to_numpy(), expected, rtol=1e-12)


def test_every_fitter_reads_the_option():
    """lm, glm, lmer, glmer, mm.bayes (its model matrices) and compare_pooling all code factors by it."""
    data = _data("sleepstudy")
    with mm.option_context(contrasts=("sum", "poly")):
        cmp = mm.compare_pooling("Reaction ~ Phase + (1 | Subject)", data)
        assert "Phase1" in cmp.terms
        from mixedmodels.design.inputs import prepare_inputs  # what mm.bayes builds its model from

        assert "Phase1" in prepare_inputs("Reaction ~ Phase + (1 | Subject)", data).fixed.column_names
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sim = mm.simulate_design(n_groups=4, n_obs=3, within={"cond": ["A", "B"]}, seed=1)
            assert "cond1" in mm.lmer("y ~ cond + (1 | participant)", sim).fixef.index


@pytest.mark.parametrize(
    "bad, words",
    [
        (("sum",), "pair"),
        ("contr.sum", "pair"),
        (("sum", "bogus"), "ordered"),
        (("nope", "poly"), "unordered"),
    ],
)
def test_bad_settings_name_what_to_give(bad, words):
    with pytest.raises(mm.MixedModelsError, match=words):
        mm.options(contrasts=bad)
    assert mm.options()["contrasts"] == ("treatment", "poly")
    with pytest.raises(mm.MixedModelsError, match="unknown option"):
        mm.options(digits=3)


def test_option_names_match_the_codings():
    from mixedmodels.design.contrasts import CONTRASTS
    from mixedmodels.options import CONTRAST_NAMES

    assert set(CONTRAST_NAMES) == set(CONTRASTS)

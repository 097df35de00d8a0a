"""R's formula language against R itself (issue 20 items 6-7): tests/reference/make_formula.R.

Every case of ``formula_language.json`` is fitted here from R's own call text, unchanged
(``Sepal.Length ~ .``, ``poly(Days, 2, raw = TRUE)``, ``scale(Days, center = FALSE)``,
``factor(Days)``, ``as.numeric(Species)``, ``ns(Days, df = 3)``, ``bs(Days, df = 5)``,
``offset(logBroodSize)`` between terms, backticked names with spaces), and compared with:

* the model matrix: R's column names exactly (backticks kept for non-syntactic names, as R
  does), R's rows 1e-8 relative (the entries are closed-form -- poly's recurrence, spline
  bases, scaling; they agree to ~1e-15, the tolerance leaves room for other BLAS/LAPACK
  kernels only) with 1e-12 absolute for R's exact zeros of the spline bases;
* lm: coefficients and standard errors 1e-8 relative (least squares has one answer; the
  design agrees to 1e-15), and the fixed design at new data (R's ``predvars``: knots, poly
  coefficients, centre and scale of the fitted data) 1e-8 relative;
* lmer / glmer: fixed effects within 1% of R's standard error (the project's rule: both
  programs stop an iterative optimiser), standard errors 1% relative, sigma 1e-4 relative;
  predictions at new data (``re.form = NA``, link scale) within the bound the fixed-effect
  tolerance implies, ``0.01 * sum_j |x_j| se_j``.  glmer: the log-likelihood at least lme4's
  (minus 1e-6 relative), the standard errors against lme4 run to convergence
  (``formula_language_tight.json``, make_formula_tight.R: lme4's default tolerances move
  cbpp's SEs by 1.2 %, as tests/glmm/test_glmm.py shows for cbpp itself).  ``Species`` both
  fixed and random (``. + (1 | Species)``) leaves theta unidentified -- the REML criterion is
  flat in it (tested) -- so the SEs of the intercept and Species' effects are not compared;
* predictions with ``re_form`` written with and without parentheses, 1e-5 relative (as in
  tests/test_predict.py: lme4's own optimum is only that precise).
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import as_list, dataset, reference

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel

REF = reference("formula_language")
CASES = REF["cases"]
TIGHT = reference("formula_language_tight")["cases"]
_CALL = re.compile(r"(?P<fn>lm|lmer|glmer)\((?P<formula>.*), (?P<data>\w+)(?:, family = (?P<family>\w+))?\)$")


def _data(name: str) -> pd.DataFrame:
    if name == "iris_sp":  # make_formula.R: iris with "." replaced by " " in the column names
        return dataset("iris").rename(columns=lambda c: c.replace(".", " "))
    return dataset(name)


@lru_cache(maxsize=None)
def fit(case_id: str):
    """The case's model, fitted from R's call text as it is."""
    call = _CALL.match(CASES[case_id]["call"])
    kwargs = {"family": call["family"]} if call["family"] else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # singular fits (Species both fixed and random) are R's too
        return getattr(mm, call["fn"])(call["formula"], _data(call["data"]), **kwargs)


def _newdata(case: dict, data_name: str) -> pd.DataFrame:
    """R's new data, factors with the fitted data's levels (as make_formula.R made them)."""
    data = _data(data_name)
    out = pd.DataFrame({k: as_list(v) for k, v in case["newdata"].items()})
    for name in out:
        if isinstance(data[name].dtype, pd.CategoricalDtype):
            out[name] = pd.Categorical(out[name], categories=data[name].cat.categories)
    return out


def _is_lm(case: dict) -> bool:
    return case["class"] == "lm"


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_model_matrix_is_rs(case_id):
    case, m = CASES[case_id], fit(case_id)
    assert list(m.fixef_names) == as_list(case["model_matrix_colnames"])
    rows = np.asarray(as_list(case["model_matrix_rows"])) - 1
    np.testing.assert_allclose(
        m.model.inputs.fixed.matrix[rows], np.asarray(case["model_matrix"], dtype=float), rtol=1e-8, atol=1e-12
    )
    assert m.nobs == case["nobs"]


@pytest.mark.parametrize("case_id", sorted(c for c in CASES if CASES[c]["class"] == "lm"))
def test_lm_estimates_equal_rs(case_id):
    case, m = CASES[case_id], fit(case_id)
    np.testing.assert_allclose(m.fixef.to_numpy(), as_list(case["fixef"]), rtol=1e-8)
    np.testing.assert_allclose(m.se.to_numpy(), as_list(case["se"]), rtol=1e-8)
    np.testing.assert_allclose(m.sigma, case["sigma"], rtol=1e-8)
    np.testing.assert_allclose(m.loglik, case["logLik"], rtol=1e-10)


@pytest.mark.parametrize("case_id", sorted(c for c in CASES if CASES[c]["class"] == "lmerMod"))
def test_lmer_estimates_agree_with_lme4(case_id):
    case, m = CASES[case_id], fit(case_id)
    se = np.asarray(as_list(case["se"]))
    assert np.all(np.abs(m.fixef.to_numpy() - as_list(case["fixef"])) <= 0.01 * se)
    identified = [True] * len(se)
    if case_id == "dot_all_lmer_with_group":  # the intercept and Species' effects absorb the unidentified b
        identified = [not (name.startswith("Species") or name == "(Intercept)") for name in m.fixef_names]
    np.testing.assert_allclose(m.se.to_numpy()[identified], se[identified], rtol=0.01)
    np.testing.assert_allclose(m.sigma, case["sigma"], rtol=1e-4)
    np.testing.assert_allclose(m.objective, case["REMLcrit"], rtol=1e-8)


def test_species_fixed_and_random_leaves_theta_unidentified():
    """The REML criterion of ``. + (1 | Species)`` is flat in theta, so SEs of Species' effects are arbitrary."""
    m = fit("dot_all_lmer_with_group")
    values = [m.model.objective(np.array([theta])) for theta in (0.01, 0.5, 2.0, 10.0)]
    np.testing.assert_allclose(values, CASES["dot_all_lmer_with_group"]["REMLcrit"], rtol=1e-12)


@pytest.mark.parametrize("case_id", sorted(c for c in CASES if CASES[c]["class"] == "glmerMod"))
def test_glmer_estimates_agree_with_lme4(case_id):
    case, tight, m = CASES[case_id], TIGHT[case_id], fit(case_id)
    se = np.asarray(as_list(case["se"]))
    assert np.all(np.abs(m.fixef.to_numpy() - as_list(case["fixef"])) <= 0.01 * se)
    assert m.loglik >= case["logLik"] - 1e-6 * abs(case["logLik"])
    np.testing.assert_allclose(m.se.to_numpy(), as_list(tight["se"]), rtol=0.01)
    np.testing.assert_allclose(m.fixef.to_numpy(), as_list(tight["fixef"]), rtol=1e-3)


@pytest.mark.parametrize("case_id", sorted(c for c in CASES if "newdata" in CASES[c]))
def test_predictions_at_new_data_use_the_fitted_datas_bases(case_id):
    case, m = CASES[case_id], fit(case_id)
    newdata = _newdata(case, case["data"])
    expected = np.asarray(as_list(case["predict_newdata"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.MixedModelsWarning)  # bs() beyond its boundary knots: tested below
        x_new = m.model.inputs.fixed.for_newdata(newdata)
        if _is_lm(case):
            predicted = m.predict(newdata).to_numpy()
        else:
            predicted = m.predict(newdata, re_form="NA", type="link").to_numpy()
    if _is_lm(case):
        np.testing.assert_allclose(x_new, np.asarray(case["newdata_model_matrix"], dtype=float), rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(predicted, expected, rtol=1e-8)
    else:
        bound = 0.01 * np.abs(x_new) @ np.asarray(as_list(case["se"]))
        assert np.all(np.abs(predicted - expected) <= bound)
    assert list(predicted.shape) == [len(newdata)]


def test_bs_warns_beyond_its_boundary_knots_as_r_does():
    case = CASES["bs3_lm"]
    assert "beyond boundary knots" in " ".join(as_list(case["predict_warnings"]))
    with pytest.warns(mm.MixedModelsWarning, match="beyond the boundary knots 0 and 9"):
        fit("bs3_lm").predict(_newdata(case, "sleepstudy"))


@pytest.mark.parametrize("written", sorted(REF["re_form"]["predictions"]))
def test_re_form_with_and_without_parentheses(written):
    ref = REF["re_form"]
    m = mm.lmer("Reaction ~ Days + (Days | Subject)", dataset("sleepstudy"))
    newdata = pd.DataFrame(ref["newdata"])
    re_form = None if written == "NULL" else written
    np.testing.assert_allclose(m.predict(newdata, re_form=re_form), ref["predictions"][written], rtol=1e-5)


def test_bare_bar_re_form_selects_the_same_columns_as_parenthesised():
    m = mm.lmer("Reaction ~ Days + (Days | Subject)", dataset("sleepstudy"))
    for bare, wrapped in [("~ 1 | Subject", "~ (1 | Subject)"), ("~Days|Subject", "~ (Days | Subject)")]:
        np.testing.assert_array_equal(m.predict(re_form=bare), m.predict(re_form=wrapped))

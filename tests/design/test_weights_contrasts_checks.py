"""Missing weights, contrasts for numeric variables, and constant GLM responses (issue 22's leftovers).

* A row whose ``weights=`` value is missing (NaN) is dropped and counted, as
  lme4's and R's model frames do (the weights are a column of the frame, and
  ``na.omit`` drops the row): the fit equals the fit without those rows, to
  the optimizer's tolerance (the same rows give the same objective, so the
  same optimum; 1e-6 relative leaves room for BOBYQA's path only).
* A ``contrasts=`` entry for a numeric variable is refused (R: "contrasts
  apply only to factors").
* ``mm.glm`` refuses an all-zero Poisson response as glmer does (lme4: the
  response is constant): its coefficients do not exist.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm

FORMULA = "Reaction ~ Days + (1 | Subject)"


def _nan_weights(n: int) -> np.ndarray:
    weights = np.ones(n)
    weights[::10] = np.nan
    return weights


def test_missing_weights_drop_their_rows_in_lmer(sleepstudy):
    weights = _nan_weights(len(sleepstudy))
    fit = mm.lmer(FORMULA, sleepstudy, weights=weights)
    without = mm.lmer(FORMULA, sleepstudy[~np.isnan(weights)])
    assert fit.nobs == without.nobs == 162
    assert fit.model.inputs.n_dropped == 18
    np.testing.assert_allclose(fit.theta, without.theta, rtol=1e-6)
    np.testing.assert_allclose(fit.fixef, without.fixef, rtol=1e-6)
    assert fit.fitted.index.equals(without.fitted.index)  # the caller's labels of the rows kept


@pytest.mark.parametrize("fitter", ["lm", "glm", "glmer"])
def test_missing_weights_drop_their_rows_in_every_fitter(sleepstudy, fitter):
    weights = _nan_weights(len(sleepstudy))
    formula = "Reaction ~ Days" + (" + (1 | Subject)" if fitter == "glmer" else "")
    kwargs = {"family": "poisson"} if fitter in ("glm", "glmer") else {}
    data = sleepstudy.assign(Reaction=sleepstudy["Reaction"].round())
    fit = getattr(mm, fitter)(formula, data, weights=weights, **kwargs)
    without = getattr(mm, fitter)(formula, data[~np.isnan(weights)], **kwargs)
    assert fit.nobs == 162
    np.testing.assert_allclose(np.asarray(fit.fixef), np.asarray(without.fixef), rtol=1e-6)


def test_infinite_weights_are_refused(sleepstudy):
    weights = np.ones(len(sleepstudy))
    weights[3] = np.inf
    with pytest.raises(mm.DataError, match="weights= has 1 infinite value"):
        mm.lmer(FORMULA, sleepstudy, weights=weights)


def test_contrasts_for_a_numeric_variable_are_refused(sleepstudy):
    with pytest.raises(mm.ModelSpecError, match="'Days', a numeric variable: contrasts apply only to factors"):
        mm.lmer(FORMULA, sleepstudy, contrasts={"Days": "sum"})
    with pytest.raises(mm.ModelSpecError, match="contrasts apply only to factors"):
        mm.lm("Reaction ~ Days", sleepstudy, contrasts={"Days": "sum"})


def test_contrasts_for_the_same_column_as_a_factor_are_used(sleepstudy):
    data = sleepstudy.assign(Days=sleepstudy["Days"].astype("category"))
    fit = mm.lm("Reaction ~ Days", data, contrasts={"Days": "sum"})
    assert len(fit.fixef) == 10


def test_glm_refuses_an_all_zero_poisson_response():
    data = pd.DataFrame({"y": np.zeros(20), "x": np.arange(20.0)})
    with pytest.raises(mm.ModelSpecError, match="'y' is constant"):
        mm.glm("y ~ x", data, family="poisson")


def test_glm_fits_a_constant_count_inside_the_range():
    data = pd.DataFrame({"y": np.full(20, 3.0), "x": np.arange(20.0)})
    fit = mm.glm("y ~ x", data, family="poisson")
    np.testing.assert_allclose(np.asarray(fit.fixef), [np.log(3.0), 0.0], atol=1e-8)

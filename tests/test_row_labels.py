"""Row-shaped results carry the caller's row labels (issue 22, item 1).

Every fitter is given data with a non-default index (labels 1000, 1003, ...,
i.e. neither 0..n-1 nor positions) from which rows were removed by a filter
and one more row is dropped for a missing value.  Each row-shaped output
(fitted values, residuals of every type, predictions without newdata,
simulations, the Bayesian fits' draws) must be indexed by exactly the labels
of the rows used, so ``data["fit"] = result.fitted`` puts every value on its
own row.  The values are checked against a fit to the same rows with a plain
0..n-1 index, which does not depend on how labels are handled.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm

from conftest import dataset

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel


def _relabelled(name: str, keep, missing_column: str) -> pd.DataFrame:
    """``name`` with labels 1000 + 3 i, the rows ``keep`` selects, and one missing value in ``missing_column``."""
    data = dataset(name).copy()
    data.index = pd.Index(1000 + 3 * np.arange(len(data)), name="row")
    data = data[keep(data)].copy()
    data.loc[data.index[4], missing_column] = np.nan
    return data


@pytest.fixture(scope="module")
def sleep_subset() -> pd.DataFrame:
    return _relabelled("sleepstudy", lambda d: d["Days"] != 2, "Reaction")


@pytest.fixture(scope="module")
def cbpp_subset() -> pd.DataFrame:
    return _relabelled("cbpp", lambda d: d["period"] != "3", "incidence")


def _plain(data: pd.DataFrame, column: str) -> pd.DataFrame:
    """The rows a fit uses, with a default 0..n-1 index (the reference for the values)."""
    return data[data[column].notna()].reset_index(drop=True)


def _quiet(fun, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fun(*args, **kwargs)


def _outputs(fit, residual_types, *, simulate=True) -> dict[str, pd.Series | pd.DataFrame]:
    out = {"fitted": fit.fitted, "predict": fit.predict()}
    out.update({f"residuals[{t}]": fit.residuals(type=t) for t in residual_types})
    if hasattr(fit, "linear_predictor"):
        out["linear_predictor"] = fit.linear_predictor
    if simulate:
        out["simulate"] = fit.simulate(nsim=2, seed=1)
    return out


def _check(data: pd.DataFrame, column: str, labelled: dict, plain: dict) -> None:
    used = data.index[data[column].notna()]
    assert len(used) < len(data) and not used.equals(pd.RangeIndex(len(used)))
    for name, value in labelled.items():
        pd.testing.assert_index_equal(value.index, used, obj=name)
        expected = plain[name]
        assert expected.index.equals(pd.RangeIndex(len(used)))
        # the values themselves are unchanged: only their labels differ (same rows, same seed)
        np.testing.assert_allclose(value.to_numpy(), expected.to_numpy(), rtol=1e-12, atol=1e-12, err_msg=name)
    # the pandas idiom the labels exist for: assignment aligns on them
    target = data.copy()
    target["fit"] = labelled["fitted"]
    assert target["fit"].isna().sum() == len(data) - len(used)
    np.testing.assert_allclose(target.loc[used, "fit"].to_numpy(), plain["fitted"].to_numpy(), rtol=1e-12)


def test_lmer_outputs_carry_the_row_labels(sleep_subset):
    formula = "Reaction ~ Days + (Days | Subject)"
    fit = _quiet(mm.lmer, formula, sleep_subset)
    ref = _quiet(mm.lmer, formula, _plain(sleep_subset, "Reaction"))
    types = ("response", "pearson")
    _check(sleep_subset, "Reaction", _outputs(fit, types), _outputs(ref, types))
    pd.testing.assert_index_equal(fit.residuals(scaled=True).index, fit.fitted.index)
    pd.testing.assert_index_equal(fit.predict(re_form="~0").index, fit.fitted.index)


def test_glmer_outputs_carry_the_row_labels(cbpp_subset):
    formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    fit = _quiet(mm.glmer, formula, cbpp_subset, family="binomial")
    ref = _quiet(mm.glmer, formula, _plain(cbpp_subset, "incidence"), family="binomial")
    types = ("deviance", "pearson", "working", "response")
    _check(cbpp_subset, "incidence", _outputs(fit, types), _outputs(ref, types))
    pd.testing.assert_index_equal(fit.predict(type="link").index, fit.fitted.index)


def test_lm_outputs_carry_the_row_labels(sleep_subset):
    fit = mm.lm("Reaction ~ Days", sleep_subset)
    ref = mm.lm("Reaction ~ Days", _plain(sleep_subset, "Reaction"))
    types = ("response", "pearson")
    _check(sleep_subset, "Reaction", _outputs(fit, types), _outputs(ref, types))


def test_glm_outputs_carry_the_row_labels(cbpp_subset):
    formula = "cbind(incidence, size - incidence) ~ period"
    fit = mm.glm(formula, cbpp_subset, family="binomial")
    ref = mm.glm(formula, _plain(cbpp_subset, "incidence"), family="binomial")
    types = ("deviance", "pearson", "working", "response")
    _check(cbpp_subset, "incidence", _outputs(fit, types), _outputs(ref, types))


def test_bayes_outputs_carry_the_row_labels(sleep_subset):
    """bayes.lmer and bayes.glmer share the results class whose draws are checked here (one
    short chain: the labels, not the posterior, are under test; sampling compiles for ~20 s)."""
    pytest.importorskip("numpyro")
    from mixedmodels import bayes

    fit = _quiet(
        bayes.lmer,
        "Reaction ~ Days + (1 | Subject)",
        sleep_subset,
        draws=30,
        warmup=30,
        chains=1,
        seed=5,
        progress=False,
    )
    used = sleep_subset.index[sleep_subset["Reaction"].notna()]
    pd.testing.assert_index_equal(fit.predict().index, used)
    for draws in (fit.posterior_epred(), fit.posterior_predict(seed=1)):
        pd.testing.assert_index_equal(draws.columns, used)
    target = sleep_subset.copy()
    target["fit"] = fit.predict()
    assert target["fit"].isna().sum() == len(sleep_subset) - len(used)

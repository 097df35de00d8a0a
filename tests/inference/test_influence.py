"""Influence diagnostics against lme4 1.1-31 (issue 20, item 2).

Reference: tests/reference/make_postfit.R (postfit_diagnostics.json): ``hatvalues``,
``cooks.distance``, ``rstudent`` and ``influence(m, groups = ...)`` on sleepstudy (``ss``,
also case deletion), Penicillin (``pen``, by plate and by sample), cbpp (``cb``) and
weighted sleepstudy (``ssw``).

Tolerances and why:

* leverages 1e-4 relative (they depend on theta only; ours and lme4's agree to ~5e-6);
* one-step Cook's distances on the square-root scale and studentized residuals to 1e-4
  absolute: both are residuals in units of sigma (times ``sqrt(h / p) / (1 - h)`` <= 1 for
  Cook's), and the residuals of two optima agree to ~1e-5 sigma (relative errors of
  near-zero Cook's distances say nothing);
* deletion refits: fixed effects to 1 % of the deleted fit's SE (the project's rule; lmer
  refits agree to 1e-11 SE, glmer ones to 2e-3 SE, lme4's default glmer stopping early);
  variances to 1e-3 relative and covariances to 1e-3 of ``sqrt(v_i v_j)`` (the REML
  criterion is flat: variances agree to ~1e-4), except where lme4's refit stopped short:
  then our REML criterion must be below its value at lme4's estimates (lme4's refit
  without case 135 ends 4e-5 above our optimum, 1.1e-3 away in the intercept variance);
  the deleted fits' SEs
  to 1e-3 relative; for glmer, whose Hessian SEs lme4's default early stop moves by > 1 %
  (tests/glmm/test_glmm.py), against the same refits by lme4 at tight tolerances
  (make_postfit_checks.R) at 1 % (they agree to 7e-4); deletion Cook's distances on the
  square-root scale to 1e-2 (a norm of dfbeta in SE units). Penicillin's two lme4 optima (theta 1e-10 apart)
  move its refits by 4e-7 relative, far inside these.

lme4 1.1-31 uses the prior weights in glmer's hat matrix (h > 1 on cbpp, rstudent NaN);
ours uses the working weights (the GLM hat values), so ours are lme4's times
``working / prior`` weight, which is what the glmer tests check.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from conftest import POSTFIT_CALLS, fitted_postfit, reference

pytestmark = pytest.mark.numerics  # .ci/run runs these again under another BLAS kernel

CALLS = POSTFIT_CALLS
GROUPS = {"ss": "Subject", "pen": "plate", "cb": "herd", "ssw": "Subject"}


fit = fitted_postfit  # shared with the other post-fit tests (conftest.py)


@lru_cache(maxsize=None)
def deletions(key: str, group: str | None):
    return fit(key).influence(group)


def diagnostics(key: str) -> dict:
    return reference("postfit_diagnostics")["diagnostics"][key]


def _values(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


# --- from the fit alone --------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["ss", "pen", "ssw"])
def test_hatvalues_cooks_rstudent_as_lme4(key):
    m, r = fit(key), diagnostics(key)
    h = m.hatvalues()
    assert h.index.equals(m.fitted.index) and h.name == "hatvalues"
    np.testing.assert_allclose(h, r["hatvalues"]["value"], rtol=1e-4)
    np.testing.assert_allclose(np.sqrt(m.cooks_distance()), np.sqrt(r["cooks_distance"]["value"]), rtol=0, atol=1e-4)
    np.testing.assert_allclose(m.rstudent(), r["rstudent"]["value"], rtol=0, atol=1e-4)


def test_hatvalues_sum_to_the_effective_number_of_parameters():
    """trace(H) lies between p (no pooling of the random effects) and p + q."""
    m = fit("ss")
    assert m.model.nfixef < m.hatvalues().sum() < m.model.nfixef + 36


def test_glmer_hatvalues_use_the_working_weights():
    m, r = fit("cb"), diagnostics("cb")
    prior, working = np.asarray(r["weights_prior"]["value"]), np.asarray(r["weights_working"]["value"])
    h_lme4 = np.asarray(r["hatvalues"]["value"])
    assert h_lme4.max() > 1  # lme4 1.1-31: prior weights, h > 1
    h = m.hatvalues().to_numpy()
    # the working weights of lme4's default fit are 1e-3 off ours (its early stop; see test_results_postfit)
    np.testing.assert_allclose(h, h_lme4 * working / prior, rtol=2e-3)
    assert np.all((h > 0) & (h < 1))
    # with those leverages, lme4's formulas on lme4's residuals give ours
    pearson = np.asarray(r["residuals"]["pearson"]["value"])
    deviance = np.asarray(r["residuals"]["deviance"]["value"])
    cooks = (pearson / (1 - h)) ** 2 * h / 4
    rstudent = np.sign(deviance) * np.sqrt(deviance**2 + h * pearson**2 / (1 - h))
    np.testing.assert_allclose(np.sqrt(m.cooks_distance()), np.sqrt(cooks), rtol=0, atol=5e-3)
    np.testing.assert_allclose(m.rstudent(), rstudent, rtol=0, atol=5e-3)
    assert not m.rstudent().isna().any()


# --- deletion refits -------------------------------------------------------------------------------
def _check_influence(ours, ref, glmer: bool, fit=None, rows=None):
    names = ref["fixef_names"] if isinstance(ref["fixef_names"], list) else [ref["fixef_names"]]
    p = len(names)
    assert [str(d) for d in ours.deleted] == [str(d) for d in ref["deleted"]]
    assert list(ours.fixed_effects_deleted.columns) == names
    assert list(ours.var_cov_comps.index) == ref["var_cov_names"]
    vcov_deleted = [np.asarray(v, dtype=float).reshape(p, p) for v in ref["vcov_deleted"].values()]
    se_deleted = np.sqrt([np.diag(v) for v in vcov_deleted])
    beta = np.asarray(ref["fixed_effects_deleted"], dtype=float).reshape(-1, p)
    assert np.all(np.abs(ours.fixed_effects_deleted.to_numpy() - beta) <= 1e-2 * se_deleted)
    assert np.all(np.abs(ours.dfbeta().to_numpy() - np.asarray(ref["dfbeta"]).reshape(-1, p)) <= 1e-2 * se_deleted)
    ours_se = np.sqrt([np.diag(ours.vcov_deleted[k].to_numpy()) for k in ours.deleted])
    if glmer:
        tight = reference("postfit_checks")["cbpp_tight_influence"]
        assert tight["deleted"] == [str(d) for d in ours.deleted]
        np.testing.assert_allclose(ours_se, np.asarray(tight["se"]), rtol=1e-2)
        se_tight = np.asarray(tight["se"])
        assert np.all(np.abs(ours.fixed_effects_deleted.to_numpy() - np.asarray(tight["fixef"])) <= 1e-2 * se_tight)
    else:
        np.testing.assert_allclose(ours_se, se_deleted, rtol=1e-3)
    _check_var_cov(ours, ref, fit, rows)
    np.testing.assert_allclose(np.sqrt(ours.cooks_distance()), np.sqrt(ref["cooks_distance"]), rtol=0, atol=1e-2)
    if isinstance(ref["dfbetas"], list):  # in SE units; for glmer over the tight refits' SEs (see above)
        dfbetas = np.asarray(ref["dfbetas"]).reshape(-1, p)
        if glmer:
            dfbetas = np.asarray(ref["dfbeta"]).reshape(-1, p) / np.asarray(
                reference("postfit_checks")["cbpp_tight_influence"]["se"]
            )
        assert np.all(np.abs(ours.dfbetas().to_numpy() - dfbetas) <= 1e-2)
    assert ours.converged.all() and list(ours.converged) == list(ref["converged"])


def _var_cov_errors(got: np.ndarray, values: np.ndarray, names: list[str]) -> np.ndarray:
    """Per deletion, the largest difference: relative for variances, over sqrt(v_i v_j) for covariances."""
    errors = np.zeros(got.shape)
    for i, name in enumerate(names):
        if not name.split(":")[-1].startswith("C["):
            errors[:, i] = np.abs(got[:, i] - values[:, i]) / np.abs(values[:, i])
            continue
        group = name.split(":")[0] + ":" if ":" in name.split("C[")[0] else ""
        a, b = name.split("C[")[1].rstrip("]").split(",")
        scale = np.sqrt(values[:, names.index(f"{group}v[{a}]")] * values[:, names.index(f"{group}v[{b}]")])
        errors[:, i] = np.abs(got[:, i] - values[:, i]) / scale
    return errors.max(axis=1)


def _theta_from_var_cov(values: np.ndarray, names: list[str], fit) -> np.ndarray:
    """lme4's theta from influence's variance components: per term chol(Sigma / sigma^2), column-major."""
    theta = []
    for group, term in zip(fit.covariances, fit.terms):
        prefix = f"{group}:" if len(fit.covariances) > 1 else ""
        cols, k = term.column_names, term.ncols
        cov = np.empty((k, k))
        for j in range(k):
            for i in range(j, k):
                label = f"v[{cols[i]}]" if i == j else f"C[{cols[i]},{cols[j]}]"
                cov[i, j] = cov[j, i] = values[names.index(prefix + label)]
        lam = np.linalg.cholesky(cov / values[0])
        theta += [lam[i, j] for j in range(k) for i in range(j, k)]
    return np.array(theta)


def _check_var_cov(ours, ref, fit=None, rows=None):
    names = ref["var_cov_names"]
    values = np.asarray(ref["var_cov_comps_deleted"], dtype=float).reshape(-1, len(names))
    errors = _var_cov_errors(ours.var_cov_comps_deleted.to_numpy(), values, names)
    for j in np.flatnonzero(errors > 1e-3):
        assert fit is not None and rows is not None, (j, errors[j])
        smaller = fit.model.without_rows(rows[j])
        ours_value = smaller.objective(smaller.fit(start=fit.theta).theta)
        # at least as good as lme4's refit, up to lme4's own stopping tolerance (ftol_abs 1e-8)
        assert ours_value <= smaller.objective(_theta_from_var_cov(values[j], names, fit)) + 1e-8, (j, errors[j])


def _level_rows(key: str, group: str) -> list[np.ndarray]:
    values = fit(key).model.inputs.frame[group].astype(str).to_numpy()
    return [np.flatnonzero(values == level) for level in pd.unique(values)]


@pytest.mark.parametrize("key", sorted(CALLS))
def test_group_deletion_as_lme4(key):
    _check_influence(
        deletions(key, GROUPS[key]),
        diagnostics(key)["influence_group"],
        key == "cb",
        None if key == "cb" else fit(key),
        _level_rows(key, GROUPS[key]),
    )


def test_penicillin_by_sample_and_dfbetas_with_one_fixed_effect():
    """lme4 1.1-31's dfbetas fails with a single fixed effect; ours is dfbeta / the deleted fit's SE."""
    ref = diagnostics("pen")["influence_sample"]
    ours = deletions("pen", "sample")
    _check_influence(ours, ref, False, fit("pen"), _level_rows("pen", "sample"))
    assert "unsupported" in ref["dfbetas"]
    se = np.sqrt([ours.vcov_deleted[k].iloc[0, 0] for k in ours.deleted])
    np.testing.assert_allclose(ours.dfbetas().iloc[:, 0], np.asarray(ref["dfbeta"]).ravel() / se, rtol=1e-2)


def test_case_deletion_as_lme4():
    """influence(m): 180 refits, each from the cross-products less one row."""
    ref = diagnostics("ss")["influence_case"]
    ours = deletions("ss", None)
    assert ours.group == "case" and len(ours.deleted) == 180
    _check_influence(
        ours, {**ref, "deleted": [str(int(d) - 1) for d in ref["deleted"]]}, False, fit("ss"), [[i] for i in range(180)]
    )


@pytest.mark.parametrize("key", ["ss", "pen", "ssw"])
def test_subtracted_cross_products_are_those_of_the_remaining_rows(key):
    """The model without some rows, from the blocks less theirs, has the objective (and the
    solution) of the model built from the remaining rows, at any theta."""
    m = fit(key)
    rows = np.array([0, 3, 17, 18, 100])
    smaller = m.model.without_rows(rows)
    keep = np.setdiff1d(np.arange(m.nobs), rows)
    direct = type(m.model).from_inputs(m.model.inputs.subset(keep), REML=True)
    for theta in (m.theta, 1.3 * m.theta + 0.1):
        assert smaller.objective(theta) == pytest.approx(direct.objective(theta), rel=1e-10)
        np.testing.assert_allclose(smaller.results_at(theta).vcov, direct.results_at(theta).vcov, rtol=1e-8)
    fitted = smaller.fit(start=m.theta)
    assert fitted.objective == pytest.approx(direct.fit().objective, rel=1e-8)


def test_dfbeta_of_the_variance_components_and_errors():
    ours = deletions("pen", "sample")
    np.testing.assert_allclose(ours.dfbeta("var_cov"), ours.var_cov_comps_deleted - ours.var_cov_comps)
    with pytest.raises(mm.MixedModelsError, match="'fixed' or 'var_cov'"):
        ours.dfbeta("theta")
    with pytest.raises(mm.ModelSpecError, match="group must name a variable"):
        fit("pen").influence("batch")

"""Influence diagnostics of a mixed model (lme4's ``hatvalues``, ``cooks.distance``, ``rstudent``, ``influence``).

Leverages.  The fitted values are a linear function of the response for
given theta, ``fitted = H y``, with the hat matrix of the penalised least
squares problem

    H = W^1/2 [Z Lambda, X] M^-1 [Z Lambda, X]' W^1/2,    M = [Z Lambda, X]' W [Z Lambda, X] + blockdiag(I, 0),

so ``h_i = w_i r_i' M^-1 r_i = w_i ||L^-1 r_i||^2`` with ``r_i = [Lambda' z_i; x_i]``
and ``L`` the blocked Cholesky factor of ``M`` (:mod:`mixedmodels.linalg.rows`).
For lmer ``W`` are the prior weights (lme4's ``hatvalues``).  For glmer ``W``
are the working weights of PIRLS' last step, the GLM hat values (R's
``hatvalues`` of a glm), so ``0 <= h_i <= 1``.  lme4 1.1-31 multiplies by the
prior weights instead (with a warning that the hat matrix "may not make sense
for GLMMs"); for a binomial response with many trials that gives ``h > 1``
(cbpp) and NaN studentized residuals.  Our values are lme4's times
``working / prior`` weight.

One-step approximations, from the fit alone (lme4's ``cooks.distance`` and
``rstudent`` of a fit, with ``p = rank(X)``)::

    cooks_i    = (r_pearson,i / (1 - h_i))^2 h_i / (sigma^2 p)
    rstudent_i = sign(r_dev,i) sqrt(r_dev,i^2 + h_i r_pearson,i^2 / (1 - h_i)) / sigma

Deletion refits (:func:`influence`, lme4's ``influence.merMod``): the model is
refitted without each case, or each level of a grouping variable, starting at
the fit's theta (and beta, for glmer).  For lmer the refits reuse the blocked
cross-products: deleting rows subtracts their contributions
(:meth:`~mixedmodels.lmm.model.LinearMixedModel.without_rows`), so a refit
costs its optimisation, not a pass over the data.  From them: ``dfbeta``
(change in beta), ``dfbetas`` (over the deleted fit's SEs) and Cook's distance
``D_j = dfbeta_j' V^-1 dfbeta_j (n - p) / (n p)`` with ``V`` the fit's
covariance of beta and ``n`` the number of deletions, as lme4.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._validate import Text, argument_kinds, check_arguments
from ..errors import MixedModelsError, ModelSpecError
from ..fitted import MixedFit, is_generalized
from ..linalg.rows import TermRows, solve_rows

__all__ = ["hatvalues", "cooks_distance", "rstudent", "influence", "InfluenceResult", "var_cov_components"]

_MAXFUN = 1000  # lme4's influence(maxfun = 1000)


# --- from the fit alone ---------------------------------------------------------------------
def _refuse_residual_structure(result: MixedFit) -> None:
    """Leverages and deletion refits assume independent residuals with prior weights only."""
    if getattr(result.model, "residual", None) is not None:
        raise MixedModelsError(
            "influence diagnostics (hat values, Cook's distances, studentized residuals, deletion refits) are not "
            "available for a model with a residual structure (weights=var_ident() or correlation=): its residuals "
            "are not independent with known weights"
        )


def _leverages(result: MixedFit) -> np.ndarray:
    """``h_i`` of every row used (see the module docstring)."""
    _refuse_residual_structure(result)
    rows = [TermRows(t.refs, t.z) for t in result.terms]
    norms = solve_rows(result.factor, rows, result.model.inputs.fixed.matrix).squared_norms(joint=True)
    return _used(result.weights("working"), result) * norms


def _used_positions(result: MixedFit) -> np.ndarray:
    """Where the rows used sit in a row-shaped result (all of it, unless padded for na.exclude)."""
    inputs = result.model.inputs
    if inputs.na_action == "exclude" and inputs.data_index is not None and len(inputs.data_index) != inputs.nobs:
        return inputs.frame.index.to_numpy()
    return np.arange(inputs.nobs)


def _used(series: pd.Series, result: MixedFit) -> np.ndarray:
    """A row-shaped result's values for the rows used (without the NaN padding of ``na_action="exclude"``)."""
    return series.to_numpy(dtype=float)[_used_positions(result)]


def hatvalues(result: MixedFit) -> pd.Series:
    """Diagonal of the hat matrix, per row used (lme4's ``hatvalues``; for glmer with working weights).

    See the module docstring for the definition and the difference from lme4 for glmer.
    """
    return result.model.inputs.row_series(_leverages(result), "hatvalues")


def _one_step(result: MixedFit) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h = _leverages(result)
    pearson = _used(result.residuals(type="pearson"), result)
    deviance = _used(result.residuals(type="deviance"), result)
    return h, pearson, deviance


def cooks_distance(result: MixedFit) -> pd.Series:
    """One-step Cook's distances ``(r_pearson / (1 - h))^2 h / (sigma^2 p)`` (lme4's ``cooks.distance`` of a fit).

    NaN where ``h = 1``.  For Cook's distances of deleted groups, see
    :meth:`InfluenceResult.cooks_distance`.
    """
    h, pearson, _ = _one_step(result)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = (pearson / (1.0 - h)) ** 2 * h / (result.sigma**2 * result.model.nfixef)
    values[~np.isfinite(values)] = np.nan
    return result.model.inputs.row_series(values, "cooks_distance")


def rstudent(result: MixedFit) -> pd.Series:
    """Studentized residuals ``sign(r_dev) sqrt(r_dev^2 + h r_pearson^2 / (1 - h)) / sigma`` (lme4's ``rstudent``)."""
    h, pearson, deviance = _one_step(result)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.sign(deviance) * np.sqrt(deviance**2 + h * pearson**2 / (1.0 - h)) / result.sigma
    values[~np.isfinite(values)] = np.nan
    return result.model.inputs.row_series(values, "rstudent")


# --- deletion refits ------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class InfluenceResult:
    """Estimates with each case or group deleted (lme4's ``influence.merMod`` object).

    Attributes
    ----------
    group : str
        The grouping variable whose levels were deleted, or ``"case"``.
    fixed_effects : Series
        The fit's fixed effects.
    fixed_effects_deleted : DataFrame
        One row per deleted case or level (in data order), one column per fixed effect.
    var_cov_comps, var_cov_comps_deleted : Series, DataFrame
        ``sigma^2``, then per grouping factor the variances ``v[...]`` and
        covariances ``C[...,...]`` of its random effects, named as lme4.
    vcov : DataFrame
        The fit's covariance of the fixed effects.
    vcov_deleted : dict of label -> DataFrame
        Each deleted fit's covariance of the fixed effects.
    converged : Series of bool
        Whether each refit's optimizer converged (as lme4's ``influence``, which
        does not count its post-fit gradient checks: a refit from the fit's
        theta ends close to the optimum, where the finite-difference gradient
        of a flat criterion can sit at the checks' threshold).
    function_evals : Series of int
        Objective evaluations of each refit.
    """

    group: str
    fixed_effects: pd.Series
    fixed_effects_deleted: pd.DataFrame
    var_cov_comps: pd.Series
    var_cov_comps_deleted: pd.DataFrame
    vcov: pd.DataFrame
    vcov_deleted: dict[Any, pd.DataFrame]
    converged: pd.Series
    function_evals: pd.Series

    @property
    def deleted(self) -> pd.Index:
        """The deleted cases or levels, in data order."""
        return self.fixed_effects_deleted.index

    @argument_kinds(which=Text())
    def dfbeta(self, which: str = "fixed") -> pd.DataFrame:
        """Change in the fixed effects (``"fixed"``) or variance components (``"var_cov"``) on deletion."""
        check_arguments(locals())
        if which == "fixed":
            return self.fixed_effects_deleted - self.fixed_effects
        if which == "var_cov":
            return self.var_cov_comps_deleted - self.var_cov_comps
        raise MixedModelsError(f"which must be 'fixed' or 'var_cov', not {which!r}")

    def dfbetas(self) -> pd.DataFrame:
        """``dfbeta`` over the deleted fits' standard errors (also with a single fixed effect)."""
        se = pd.DataFrame(
            [np.sqrt(np.diag(self.vcov_deleted[k].to_numpy())) for k in self.deleted],
            index=self.deleted,
            columns=self.fixed_effects.index,
        )
        return self.dfbeta() / se

    def cooks_distance(self) -> pd.Series:
        """``dfbeta' V^-1 dfbeta (n - p) / (n p)`` per deletion (lme4's ``cooks.distance`` of an influence object).

        ``V`` is the fit's covariance of beta, ``n`` the number of deletions, ``p`` of fixed effects.
        """
        db = self.dfbeta().to_numpy()
        n, p = db.shape
        weight = np.linalg.inv(self.vcov.to_numpy()) * (n - p) / (n * p)
        return pd.Series(np.einsum("ij,jk,ik->i", db, weight, db), index=self.deleted, name="cooks_distance")


def var_cov_components(result: MixedFit) -> pd.Series:
    """``sigma^2`` and each grouping factor's variances and covariances, named as lme4's ``influence``."""
    covariances = result.covariances
    several = len(covariances) > 1
    names, values = ["sigma^2"], [result.sigma**2]
    for (group, cov), term in zip(covariances.items(), result.terms):
        cols = term.column_names
        for j in range(len(cols)):
            for i in range(j, len(cols)):
                label = f"v[{cols[i]}]" if i == j else f"C[{cols[i]},{cols[j]}]"
                names.append(f"{group}:{label}" if several else label)
                values.append(cov[i, j])
    return pd.Series(values, index=names, name="var_cov_comps", dtype=float)


def influence(result: MixedFit, group: str | None = None, *, maxfun: int = _MAXFUN) -> InfluenceResult:
    """Refit without each case (``group=None``) or each level of ``group`` (lme4's ``influence.merMod``).

    Parameters
    ----------
    result : LmerResults or GlmerResults
    group : str, optional
        A column of the model frame (a grouping factor, or any variable the
        formula uses) whose levels are deleted one at a time; by default each
        row (case) in turn.
    maxfun : int
        Evaluations allowed to each refit (lme4's default 1000).

    Returns
    -------
    InfluenceResult
        With ``dfbeta()``, ``dfbetas()`` and ``cooks_distance()``.
    """
    _refuse_residual_structure(result)
    units, labels, name = _deletion_units(result, group)
    fits = [_refit_without(result, rows, maxfun) for rows in units]
    fixef_names = result.fixef_names
    vc0 = var_cov_components(result)
    index = pd.Index(labels, name=name)
    beta = pd.DataFrame(
        [f.beta if f is not None else np.full(len(fixef_names), np.nan) for f in fits], index=index, columns=fixef_names
    )
    vc = pd.DataFrame(
        [var_cov_components(f).to_numpy() if f is not None else np.full(len(vc0), np.nan) for f in fits],
        index=index,
        columns=vc0.index,
    )
    vcov = {
        label: (f.vcov if f is not None else pd.DataFrame(np.nan, index=fixef_names, columns=fixef_names))
        for label, f in zip(labels, fits)
    }
    converged = pd.Series(
        [f is not None and f.optinfo.optimizer_converged for f in fits], index=index, name="converged"
    )
    evals = pd.Series([f.optinfo.feval if f is not None else 0 for f in fits], index=index, name="function_evals")
    return InfluenceResult(name, result.fixef.copy(), beta, vc0, vc, result.vcov.copy(), vcov, converged, evals)


def _deletion_units(result: MixedFit, group: str | None) -> tuple[list[np.ndarray], list[Any], str]:
    """Positions (in the rows used) of each deletion, their labels, and the group's name."""
    inputs = result.model.inputs
    if group is None:
        return [np.array([i]) for i in range(inputs.nobs)], list(inputs.row_index), "case"
    if not isinstance(group, str) or group not in inputs.frame.columns:
        available = ", ".join(map(repr, inputs.frame.columns))
        raise ModelSpecError(f"group must name a variable of the model ({available}), not {group!r}")
    values = inputs.frame[group].astype(object).to_numpy()
    codes, uniques = pd.factorize(values, sort=False)  # levels in data order, as R's unique()
    return [np.flatnonzero(codes == k) for k in range(len(uniques))], [str(u) for u in uniques], group


def _refit_without(result: MixedFit, rows: np.ndarray, maxfun: int) -> Any:
    """The fit without ``rows``, started at the fit's parameters; None when it cannot be fitted."""
    from ..optim import OptimizerSettings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if is_generalized(result):
                return _glmer_refit(result, rows, maxfun)
            return _lmer_refit(result.model.without_rows(rows), result.theta, OptimizerSettings(maxeval=maxfun))
    except (MixedModelsError, np.linalg.LinAlgError, ValueError):
        return None


def _lmer_refit(model: Any, theta: np.ndarray, settings: Any) -> Any:
    """The fit from ``theta``, restarted once from where it stopped if lme4's gradient check fails there.

    Started next to the optimum, BOBYQA's trust region can shrink before the
    flat REML criterion is done (on sleepstudy, 1 of 198 refits ended 1e-5 above
    the optimum under one BLAS kernel); a restart from its end point finishes.
    """
    first = model.fit(settings=settings, start=theta)
    if not first.optinfo.warnings or not first.optinfo.optimizer_converged:
        return first
    again = model.fit(settings=settings, start=first.theta)
    better = again if again.objective <= first.objective else first
    feval = first.optinfo.feval + again.optinfo.feval  # both runs count, as they would in one
    return dataclasses.replace(better, optinfo=better.optinfo.updated(feval=feval))


def _glmer_refit(result: MixedFit, rows: np.ndarray, maxfun: int) -> Any:
    """A glmer refit without ``rows`` (PIRLS rebuilds its blocks at every step: no reuse to be had)."""
    model = result.model
    keep = np.setdiff1d(np.arange(model.inputs.nobs), rows)
    smaller = type(model).from_inputs(model.inputs.subset(keep), model.family)
    start = {"theta": result.theta, "fixef": result.beta} if result.nAGQ > 0 else {"theta": result.theta}
    settings = dataclasses.replace(model.default_settings, maxeval=maxfun)
    return smaller.fit(nAGQ=result.nAGQ, settings=settings, start=start)

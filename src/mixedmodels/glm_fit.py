"""Generalized linear models without random effects (R's ``glm``), fitted by IRLS.

Iteratively reweighted least squares (R's ``glm.fit``): from starting means
``mu`` (the family's ``initialize``), repeat

    z = eta - offset + (y - mu) / g'(mu)^-1,     W = w mu_eta^2 / V(mu),
    beta = argmin sum W (z - X beta)^2,           eta = X beta + offset,  mu = g^-1(eta)

until the deviance changes by less than ``tol * (|dev| + 0.1)``, halving the
step when the deviance is not finite or ``mu`` leaves the family's range.
``Var(beta) = phi (X'WX)^-1`` with ``phi = 1`` (binomial, Poisson) or the
Pearson estimate ``sum W r_working^2 / (n - p)``.  The log-likelihood is
the family's (R's ``family$aic``), with one more parameter for families
with a dispersion, as R's ``logLik.glm``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Mapping

import numpy as np
import pandas as pd
from scipy import stats

from .errors import ConvergenceWarning, MixedModelsError, ModelSpecError
from .linalg.dense import triangular_inverse
from .families import Family, get_family
from .linear_models import LinearModel, _NoRandomEffectsResults, prepare_fixed_inputs

__all__ = ["fit_glm", "fit_glm_model", "GlmResults"]


@dataclass(frozen=True)
class _Irls:
    beta: np.ndarray
    eta: np.ndarray
    mu: np.ndarray
    working_weights: np.ndarray  # W of the last iteration (R's $weights)
    r: np.ndarray  # R of the QR of W^1/2 X in the last iteration
    deviance: float
    iterations: int
    converged: bool


def _irls(x: np.ndarray, response: Any, offset: np.ndarray, family: Family, maxit: int, tol: float) -> _Irls:
    link = family.link
    y, prior = response.y, response.weights
    mu = response.mustart()
    eta = link.link(mu)
    dev_old = response.deviance(mu)
    beta = np.zeros(x.shape[1])
    good_rows = prior > 0
    for iteration in range(1, maxit + 1):
        mu_eta = link.mu_eta(eta)
        good = good_rows & (mu_eta != 0)
        z = (eta - offset)[good] + (y - mu)[good] / mu_eta[good]
        w = np.sqrt(prior[good] * mu_eta[good] ** 2 / family.variance(mu[good]))
        q, r = np.linalg.qr(x[good] * w[:, None])
        new_beta = triangular_inverse(r, lower=False) @ (q.T @ (z * w))
        new_eta, new_mu, dev = _evaluate(x, new_beta, offset, family, response)
        halvings = 0
        while not (np.isfinite(dev) and link.valid_eta(new_eta) and family.valid_mu(new_mu)):
            if iteration == 1 or halvings > 30:
                raise ModelSpecError(
                    f"glm: no valid set of coefficients for the {family.name} family with link "
                    f"{link.name!r}; give starting values or choose another link"
                )
            new_beta = (new_beta + beta) / 2
            new_eta, new_mu, dev = _evaluate(x, new_beta, offset, family, response)
            halvings += 1
        weights = np.zeros_like(y)
        weights[good] = w**2
        beta, eta, mu = new_beta, new_eta, new_mu
        if abs(dev - dev_old) / (abs(dev) + 0.1) < tol:
            return _Irls(beta, eta, mu, weights, r, dev, iteration, True)
        dev_old = dev
    return _Irls(beta, eta, mu, weights, r, dev, maxit, False)


def _evaluate(x: np.ndarray, beta: np.ndarray, offset: np.ndarray, family: Family, response: Any):
    eta = x @ beta + offset
    mu = family.link.inverse(eta)
    with np.errstate(all="ignore"):
        dev = response.deviance(mu)
    return eta, mu, dev


def fit_glm_model(model: LinearModel, maxit: int = 25, tol: float = 1e-8) -> "GlmResults":
    """Fit a defined GLM (``LinearModel`` with a family) by IRLS."""
    inputs, family = model.inputs, model.family
    response = family.response(inputs.y, inputs.weights, inputs.formula.response)
    x = inputs.fixed.matrix
    if x.shape[1] == 0:
        raise ModelSpecError("glm() needs at least one coefficient (the formula has none)")
    offset = np.zeros(inputs.nobs) if inputs.offset is None else inputs.offset
    fit = _irls(x, response, offset, family, maxit, tol)
    if not fit.converged:
        warnings.warn(f"glm.fit: algorithm did not converge in {maxit} iterations", ConvergenceWarning, stacklevel=3)
    null = _null_deviance(inputs, response, offset, family, maxit, tol)
    return GlmResults(model, fit.beta, fit, response, null)


def _null_deviance(inputs: Any, response: Any, offset: np.ndarray, family: Family, maxit: int, tol: float) -> float:
    """Deviance of the intercept-only model (or of the offset alone without an intercept)."""
    if "(Intercept)" not in inputs.fixed.column_names:
        return response.deviance(family.link.inverse(offset))
    if inputs.offset is None:
        w = response.weights
        return response.deviance(np.full_like(response.y, np.sum(w * response.y) / np.sum(w)))
    return _irls(np.ones((inputs.nobs, 1)), response, offset, family, maxit, tol).deviance


def fit_glm(
    formula: str,
    data: pd.DataFrame,
    family: Any,
    *,
    weights: Any = None,
    offset: Any = None,
    contrasts: Mapping[str, str] | None = None,
    maxit: int = 25,
    tol: float = 1e-8,
) -> "GlmResults":
    """Build and fit a GLM (see :func:`mixedmodels.glm`)."""
    chosen = get_family(family)
    inputs = prepare_fixed_inputs(formula, data, weights=weights, offset=offset, contrasts=contrasts, caller="glm")
    return fit_glm_model(LinearModel(inputs, chosen), maxit=maxit, tol=tol)


@dataclass(frozen=True, eq=False)
class GlmResults(_NoRandomEffectsResults):
    """A fitted generalized linear model (R's ``glm``), with the conventions of the mixed-model results.

    ``fitted`` is on the response scale; ``loglik``/``aic``/``bic`` as R's;
    ``deviance`` is the residual deviance; ``sigma`` is ``sqrt(dispersion)``.
    """

    model: LinearModel
    beta: np.ndarray
    _fit: _Irls
    _response: Any
    null_deviance: float

    # --- facts ---------------------------------------------------------------------
    @property
    def family(self) -> Family:
        return self.model.family

    @property
    def family_name(self) -> str:
        return self.family.name

    @property
    def family_label(self) -> str:
        name = self.family.name
        default = type(self.family)().link.name
        return name if self.family.link.name == default else f"{name}(link = \"{self.family.link.name}\")"

    @property
    def link(self) -> str:
        return self.family.link.name

    @property
    def nobs(self) -> int:
        return int(np.count_nonzero(self._response.weights))

    @property
    def iterations(self) -> int:
        return self._fit.iterations

    @property
    def converged(self) -> bool:
        return self._fit.converged

    @property
    def estimates_dispersion(self) -> bool:
        return bool(self.family.has_dispersion)

    @property
    def npar(self) -> int:
        """Coefficients, plus the dispersion for Gaussian, Gamma and inverse Gaussian (R's logLik df)."""
        return len(self.beta) + int(self.estimates_dispersion)

    @property
    def df_null(self) -> int:
        return self.nobs - int("(Intercept)" in self.fixef_names)

    # --- coefficients ------------------------------------------------------------------
    @cached_property
    def dispersion(self) -> float:
        """1 for binomial and Poisson; else the Pearson estimate ``sum W r_w^2 / (n - p)``."""
        if not self.estimates_dispersion:
            return 1.0
        w = self._fit.working_weights
        resid = self._working_residuals()
        keep = w > 0
        return float(np.sum(w[keep] * resid[keep] ** 2) / self.df_resid)

    @property
    def sigma(self) -> float:
        return float(np.sqrt(self.dispersion))

    @cached_property
    def _unscaled(self) -> np.ndarray:
        inv = triangular_inverse(self._fit.r, lower=False)
        return inv @ inv.T

    @property
    def vcov(self) -> pd.DataFrame:
        names = self.fixef_names
        return pd.DataFrame(self.dispersion * self._unscaled, index=names, columns=names)

    @property
    def se(self) -> pd.Series:
        return pd.Series(np.sqrt(self.dispersion * np.diag(self._unscaled)), index=self.fixef_names, name="Std. Error")

    def coef_table(self) -> pd.DataFrame:
        """Estimate, Std. Error, z value and Pr(>|z|) (t and Pr(>|t|) when the dispersion is estimated)."""
        est, se = self.beta, self.se.to_numpy()
        stat = est / se
        if self.estimates_dispersion:
            p = 2 * stats.t.sf(np.abs(stat), self.df_resid)
            cols = ("t value", "Pr(>|t|)")
        else:
            p = 2 * stats.norm.sf(np.abs(stat))
            cols = ("z value", "Pr(>|z|)")
        return pd.DataFrame({"Estimate": est, "Std. Error": se, cols[0]: stat, cols[1]: p}, index=self.fixef_names)

    # --- likelihood ----------------------------------------------------------------------
    @property
    def deviance(self) -> float:
        """Residual deviance."""
        return self._fit.deviance

    @property
    def aic(self) -> float:
        return self._response.minus2_loglik(self._fit.mu, self._fit.deviance) + 2 * len(self.beta)

    @property
    def loglik(self) -> float:
        return self.npar - self.aic / 2

    @property
    def bic(self) -> float:
        """R's ``BIC`` of a glm: ``log`` of every row of the model frame (R's ``logLik.glm`` counts
        rows of weight 0, which ``nobs`` leaves out)."""
        return -2.0 * self.loglik + np.log(self.model.inputs.nobs) * self.npar

    # --- fitted values and residuals -------------------------------------------------------
    @property
    def fitted(self) -> pd.Series:
        """Fitted means (response scale)."""
        return pd.Series(self._fit.mu, index=self.model.inputs.row_index, name="fitted")

    @property
    def linear_predictor(self) -> pd.Series:
        return pd.Series(self._fit.eta, index=self.model.inputs.row_index, name="eta")

    def _working_residuals(self) -> np.ndarray:
        return (self._response.y - self._fit.mu) / self.family.link.mu_eta(self._fit.eta)

    def residuals(self, type: str = "deviance") -> pd.Series:
        """Residuals: ``"deviance"`` (default, as R), ``"pearson"``, ``"working"`` or ``"response"``."""
        y, mu = self._response.y, self._fit.mu
        if type == "deviance":
            values = np.sign(y - mu) * np.sqrt(np.maximum(self._response.dev_resid(mu), 0.0))
        elif type == "pearson":
            values = self._response.pearson(mu)
        elif type == "working":
            values = self._working_residuals()
        elif type == "response":
            values = y - mu
        else:
            raise MixedModelsError(f"unknown residual type {type!r}; choose 'deviance', 'pearson', 'working' or 'response'")
        return pd.Series(values, index=self.model.inputs.row_index, name="residuals")

    def simulate(self, nsim: int = 1, seed=None, newdata: pd.DataFrame | None = None, weights: Any = None) -> pd.DataFrame:
        """Simulated responses from the fitted distribution."""
        from .simulate import simulate

        return simulate(self, nsim=nsim, seed=seed, newdata=newdata, weights=weights)

    def summary(self):
        """R's ``summary(glm)`` layout as a printable object."""
        from .lm_summary import GlmSummary

        return GlmSummary(self)

    def __repr__(self) -> str:
        return f"<GlmResults {self.formula!r} ({self.family!r}), deviance={self.deviance:.4f}>"

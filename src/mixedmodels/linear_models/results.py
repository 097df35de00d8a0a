"""The immutable results of models without random effects: R's ``lm`` and ``glm`` fits.

One base, :class:`NoRandomEffectsResults`, holds what both read off the model
and ``beta`` (and AIC/BIC through :class:`~mixedmodels.fitted.InformationCriteria`);
a fit without random effects has no ``terms`` and no conditional modes, so code
written for mixed models (prediction, model comparison) works on it too.

Least squares with prior weights ``w`` minimises ``sum w_i (y_i - x_i' beta - o_i)^2``
(:mod:`mixedmodels.linalg.lstsq`, ``W^{1/2} X = Q R``):

    beta = R^-1 Q' W^{1/2} (y - o),     Var(beta) = sigma^2 (R'R)^-1,
    sigma^2 = RSS / (n - p),
    logLik = (sum log w_i - n (log(2 pi) + 1 - log n + log RSS)) / 2        (ML)
    logLik_REML = (sum log w_i - (n - p)(log(2 pi) + 1 - log(n - p) + log RSS)) / 2 - log|det R|

as R's ``logLik.lm`` (rows with zero weight are left out of n).

A GLM fitted by IRLS (:mod:`.irls`) has ``Var(beta) = phi (X'WX)^-1`` with
``phi = 1`` (binomial, Poisson) or the Pearson estimate
``sum W r_working^2 / (n - p)``; its log-likelihood is the family's (R's
``family$aic``), with one more parameter for families with a dispersion, as
R's ``logLik.glm``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from .._validate import Duck, check_arguments, check_bool, argument_kinds
from ..errors import ConvergenceWarning, DataError, MixedModelsError, ModelSpecError
from ..families import Family
from ..fitted import InformationCriteria, Model
from ..linalg.lstsq import lstsq, unscaled_covariance
from ..tables import r_table
from .irls import IrlsSolution, check_estimable, irls, null_deviance

_MODEL = Duck("inputs", "family", what="a LinearModel (mm.lm and mm.glm make one)")

__all__ = ["LmResults", "GlmResults", "NoRandomEffectsResults"]

_LOG_2PI = float(np.log(2.0 * np.pi))


class NoRandomEffectsResults(InformationCriteria):
    """What :class:`LmResults` and :class:`GlmResults` share: facts read off ``model`` and ``beta``.

    A fit without random effects has no ``terms`` and no conditional modes, so
    code written for mixed models (prediction, model comparison) works on it too.
    """

    @property
    def formula(self) -> str:
        return self.model.inputs.formula.formula

    @property
    def REML(self) -> bool:
        return False

    @property
    def terms(self) -> tuple:
        """No random-effects terms (so code written for mixed models also works here)."""
        return ()

    @property
    def conditional_modes(self) -> list:
        """No random effects: an empty list (so prediction code can treat all fits alike)."""
        return []

    @property
    def fixef_names(self) -> list[str]:
        return list(self.model.inputs.fixed.column_names)

    @property
    def df_resid(self) -> int:
        return self.nobs - len(self.beta)

    @property
    def fixef(self) -> pd.Series:
        return pd.Series(self.beta, index=self.fixef_names, name="Estimate")

    def coef(self) -> pd.Series:
        """The coefficients (R's ``coef``), the same as ``fixef``."""
        return self.fixef

    def predict(self, newdata: pd.DataFrame | None = None, type: str = "response", **kwargs: Any) -> pd.Series:
        """Predictions for ``newdata`` (default: the fitted rows), on the response (default) or link scale.

        See :func:`mixedmodels.predict.predict`.
        """
        check_arguments(locals())
        from ..predict import predict  # upward: a convenience method (see tests/test_layering.py)

        return predict(self, newdata, type=type, **kwargs)


@dataclass(frozen=True, eq=False)
class LmResults(NoRandomEffectsResults):
    """A least-squares fit (R's ``lm``), with the conventions of :class:`LmerResults`.

    Attributes
    ----------
    model : LinearModel
    beta : ndarray
        Coefficients, in the order of ``fixef_names``.
    sigma : float
        Residual standard error ``sqrt(RSS / (n - p))``.
    rss : float
        Weighted residual sum of squares (R's ``deviance`` of an lm).
    """

    model: Model
    beta: np.ndarray
    sigma: float
    rss: float
    _r: np.ndarray

    @classmethod
    @argument_kinds(model=_MODEL)
    def from_model(cls, model: Model) -> "LmResults":
        check_arguments(locals())
        inputs = model.inputs
        if inputs.y.ndim != 1:
            raise DataError(f"the response {inputs.formula.response!r} must be one numeric column for lm")
        n, p = model.nobs, model.nfixef
        if n <= p:
            raise ModelSpecError(f"{n} observations cannot estimate {p} coefficients and a residual variance")
        y = inputs.y - inputs.offset if inputs.offset is not None else inputs.y
        fit = lstsq(inputs.fixed.matrix, y, inputs.weights, alias=False)  # X's aliased columns are already dropped
        return cls(model, fit.coef, fit.sigma, fit.rss, fit.r)

    # --- basic facts -------------------------------------------------------------------
    @property
    def nobs(self) -> int:
        return self.model.nobs

    @property
    def npar(self) -> int:
        """Coefficients plus the residual variance (R's logLik df)."""
        return len(self.beta) + 1

    # --- coefficients --------------------------------------------------------------------
    @cached_property
    def _unscaled(self) -> np.ndarray:
        return unscaled_covariance(self._r)

    @property
    def vcov(self) -> pd.DataFrame:
        names = self.fixef_names
        return pd.DataFrame(self.sigma**2 * self._unscaled, index=names, columns=names)

    @property
    def se(self) -> pd.Series:
        return pd.Series(self.sigma * np.sqrt(np.diag(self._unscaled)), index=self.fixef_names, name="Std. Error")

    def coef_table(self) -> pd.DataFrame:
        """Estimate, Std. Error, t value, Pr(>|t|) (R's ``coef(summary(lm))``, printed as R prints it)."""
        from scipy import stats  # here, not at import: a fit does not need scipy.stats (~17k objects)

        est, se = self.beta, self.se.to_numpy()
        t = est / se
        p = 2.0 * stats.t.sf(np.abs(t), self.df_resid)
        table = pd.DataFrame({"Estimate": est, "Std. Error": se, "t value": t, "Pr(>|t|)": p}, index=self.fixef_names)
        return r_table(table, layout="matrix")

    # --- likelihood ----------------------------------------------------------------------
    def _log_weights(self) -> float:
        w = self.model.inputs.weights
        return float(np.sum(np.log(w[w > 0]))) if w is not None else 0.0

    def loglik_at(self, REML: bool = False) -> float:
        """Log-likelihood; with ``REML=True`` the restricted one (R's ``logLik(fit, REML = TRUE)``)."""
        check_arguments(locals())
        REML = check_bool(REML, "REML")
        n = self.nobs - (len(self.beta) if REML else 0)
        value = 0.5 * (self._log_weights() - n * (_LOG_2PI + 1.0 - np.log(n) + np.log(self.rss)))
        if REML:
            value -= float(np.sum(np.log(np.abs(np.diag(self._r)))))
        return float(value)

    @property
    def loglik(self) -> float:
        """Maximum-likelihood log-likelihood (R's ``logLik.lm``)."""
        return self.loglik_at(REML=False)

    @property
    def deviance(self) -> float:
        """Weighted residual sum of squares, as R's ``deviance.lm``."""
        return self.rss

    # --- fit statistics ------------------------------------------------------------------
    @property
    def has_intercept(self) -> bool:
        return "(Intercept)" in self.fixef_names

    @cached_property
    def _mss(self) -> float:
        inputs = self.model.inputs
        f = inputs.fixed.matrix @ self.beta
        w = np.ones_like(f) if inputs.weights is None else inputs.weights
        if self.has_intercept:
            f = f - np.sum(w * f) / np.sum(w)
        return float(np.sum(w * f**2))

    @property
    def r_squared(self) -> float:
        """Multiple R-squared ``MSS / (MSS + RSS)`` (about the mean if there is an intercept)."""
        return self._mss / (self._mss + self.rss)

    @property
    def adj_r_squared(self) -> float:
        df_int = 1 if self.has_intercept else 0
        return 1.0 - (1.0 - self.r_squared) * (self.nobs - df_int) / self.df_resid

    @property
    def fstatistic(self) -> tuple[float, int, int]:
        """(F value, numerator df, denominator df) of the overall F test."""
        numdf = len(self.beta) - (1 if self.has_intercept else 0)
        value = (self._mss / numdf) / self.sigma**2 if numdf > 0 else np.nan
        return float(value), numdf, self.df_resid

    # --- fitted values, residuals, predictions -------------------------------------------
    @cached_property
    def _fitted(self) -> np.ndarray:
        inputs = self.model.inputs
        eta = inputs.fixed.matrix @ self.beta
        return eta + inputs.offset if inputs.offset is not None else eta

    @property
    def fitted(self) -> pd.Series:
        return pd.Series(self._fitted, index=self.model.inputs.row_index, name="fitted")

    def residuals(self, type: str = "response") -> pd.Series:
        """``"response"`` (y - fitted; R's default) or ``"pearson"`` (times sqrt(weights))."""
        check_arguments(locals())
        if type not in ("response", "pearson", "working", "deviance"):
            raise MixedModelsError(f"unknown residual type {type!r}; choose 'response' or 'pearson'")
        inputs = self.model.inputs
        resid = inputs.y - self._fitted
        if type in ("pearson", "deviance") and inputs.weights is not None:
            resid = resid * np.sqrt(inputs.weights)
        return pd.Series(resid, index=inputs.row_index, name="residuals")

    def simulate(self, nsim: int = 1, seed=None, newdata: pd.DataFrame | None = None) -> pd.DataFrame:
        """Simulated responses from the fitted model (R's ``simulate.lm``)."""
        check_arguments(locals())
        from ..simulate import simulate  # upward: a convenience method (see tests/test_layering.py)

        return simulate(self, nsim=nsim, seed=seed, newdata=newdata)

    def summary(self):
        """R's ``summary(lm)`` layout as a printable object."""
        from .summary import LmSummary

        return LmSummary(self)

    def __repr__(self) -> str:
        return f"<LmResults {self.formula!r}, sigma={self.sigma:.4g}, logLik={self.loglik:.4f}>"


@dataclass(frozen=True, eq=False)
class GlmResults(NoRandomEffectsResults):
    """A fitted generalized linear model (R's ``glm``), with the conventions of the mixed-model results.

    ``fitted`` is on the response scale; ``loglik``/``aic``/``bic`` as R's;
    ``deviance`` is the residual deviance; ``sigma`` is ``sqrt(dispersion)``.
    """

    model: Model
    beta: np.ndarray
    _fit: IrlsSolution
    _response: Any
    null_deviance: float

    @classmethod
    @argument_kinds(model=_MODEL)
    def from_model(cls, model: Model, maxit: int = 25, tol: float = 1e-8) -> "GlmResults":
        """Fit a defined GLM (a ``LinearModel`` with a family) by IRLS (see :mod:`.irls`)."""
        check_arguments(locals())
        inputs, family = model.inputs, model.family
        response = family.response(inputs.y, inputs.weights, inputs.formula.response)
        check_estimable(response, inputs.formula.response)
        x = inputs.fixed.matrix
        if x.shape[1] == 0:
            raise ModelSpecError("glm() needs at least one coefficient (the formula has none)")
        offset = np.zeros(inputs.nobs) if inputs.offset is None else inputs.offset
        fit = irls(x, response, offset, family, maxit, tol)
        if not fit.converged:
            warnings.warn(
                f"glm.fit: algorithm did not converge in {maxit} iterations", ConvergenceWarning, stacklevel=3
            )
        return cls(model, fit.beta, fit, response, null_deviance(inputs, response, offset, family, maxit, tol))

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
        return name if self.family.link.name == default else f'{name}(link = "{self.family.link.name}")'

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
        return unscaled_covariance(self._fit.r)

    @property
    def vcov(self) -> pd.DataFrame:
        names = self.fixef_names
        return pd.DataFrame(self.dispersion * self._unscaled, index=names, columns=names)

    @property
    def se(self) -> pd.Series:
        return pd.Series(np.sqrt(self.dispersion * np.diag(self._unscaled)), index=self.fixef_names, name="Std. Error")

    def coef_table(self) -> pd.DataFrame:
        """Estimate, Std. Error, z value and Pr(>|z|) (t and Pr(>|t|) when the dispersion is estimated)."""
        from scipy import stats  # here, not at import: a fit does not need scipy.stats (~17k objects)

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
    def loglik(self) -> float:
        """R's ``logLik.glm``: ``npar - (family$aic + 2 p) / 2``."""
        return self.npar - (self._response.minus2_loglik(self._fit.mu, self._fit.deviance) + 2 * len(self.beta)) / 2

    @property
    def _loglik_nobs(self) -> int:
        """R's ``logLik.glm`` counts every row of the model frame, rows of weight 0 too (``nobs`` leaves them out)."""
        return self.model.inputs.nobs

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
        check_arguments(locals())
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
            raise MixedModelsError(
                f"unknown residual type {type!r}; choose 'deviance', 'pearson', 'working' or 'response'"
            )
        return pd.Series(values, index=self.model.inputs.row_index, name="residuals")

    def simulate(
        self, nsim: int = 1, seed=None, newdata: pd.DataFrame | None = None, weights: Any = None
    ) -> pd.DataFrame:
        """Simulated responses from the fitted distribution."""
        check_arguments(locals())
        from ..simulate import simulate  # upward: a convenience method (see tests/test_layering.py)

        return simulate(self, nsim=nsim, seed=seed, newdata=newdata, weights=weights)

    def summary(self):
        """R's ``summary(glm)`` layout as a printable object."""
        from .summary import GlmSummary

        return GlmSummary(self)

    def __repr__(self) -> str:
        return f"<GlmResults {self.formula!r} ({self.family!r}), deviance={self.deviance:.4f}>"

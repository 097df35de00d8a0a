"""Models without random effects: ``lm`` (least squares) and ``glm`` (IRLS), R's conventions.

These give complete pooling -- one regression for everyone -- with the same
results conventions as :class:`~mixedmodels.results.LmerResults` (``fixef``,
``vcov``, ``se``, ``sigma``, ``loglik``, ``aic``, ``bic``, ``deviance``,
``nobs``, ``fitted``, ``residuals``, ``predict``, ``coef_table``, ``summary``),
so ``mm.anova(mm.lm(...), mm.lmer(...))`` tests complete against partial pooling.

Least squares with prior weights ``w`` minimises ``sum w_i (y_i - x_i' beta - o_i)^2``
through the QR decomposition ``W^{1/2} X = Q R``:

    beta = R^-1 Q' W^{1/2} (y - o),     Var(beta) = sigma^2 (R'R)^-1,
    sigma^2 = RSS / (n - p),
    logLik = (sum log w_i - n (log(2 pi) + 1 - log n + log RSS)) / 2        (ML)
    logLik_REML = (sum log w_i - (n - p)(log(2 pi) + 1 - log(n - p) + log RSS)) / 2 - log|det R|

as R's ``logLik.lm`` (rows with zero weight are left out of n).  ``glm``'s IRLS
and results are in :mod:`mixedmodels.glm_fit`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Mapping

import numpy as np
import pandas as pd
from scipy import stats
from scipy.linalg import solve_triangular

from .errors import DataError, FormulaError, MixedModelsError, ModelSpecError
from .tables import r_table
from .linalg.dense import triangular_inverse
from .formula import parse_formula, random_terms_text
from .lmm import ModelInputs, prepare_fixed_part
from ._validate import check_bool

__all__ = ["lm", "glm", "LinearModel", "LmResults", "prepare_fixed_inputs"]

_LOG_2PI = float(np.log(2.0 * np.pi))


# --- inputs ---------------------------------------------------------------------------
def prepare_fixed_inputs(
    formula: str,
    data: pd.DataFrame,
    *,
    weights: Any = None,
    offset: Any = None,
    contrasts: Mapping[str, str] | None = None,
    caller: str = "lm",
) -> ModelInputs:
    """Model frame, response and fixed-effects matrix of a formula without random effects."""
    parsed = parse_formula(formula)
    if parsed.response is None:
        raise FormulaError(f"formula {formula!r} has no response; write it as 'y ~ ...'")
    if parsed.random:
        raise FormulaError(
            f"formula {formula!r} has random-effects terms {random_terms_text(parsed.random)}; "
            f"{caller}() fits models without them -- use mm.lmer or mm.glmer, or drop the terms"
        )
    return prepare_fixed_part(parsed, data, weights=weights, offset=offset, contrasts=contrasts)


@dataclass(frozen=True, eq=False)
class LinearModel:
    """A model without random effects, defined but not fitted.

    ``family`` is None for least squares (``lm``) and a family object for ``glm``.
    """

    inputs: ModelInputs
    family: Any = None

    @property
    def REML(self) -> bool:
        return False

    @property
    def nobs(self) -> int:
        """Observations with non-zero weight (R's ``nobs``)."""
        w = self.inputs.weights
        return self.inputs.nobs if w is None else int(np.count_nonzero(w))

    @property
    def nfixef(self) -> int:
        return len(self.inputs.fixed.column_names)

    def fit(self) -> "LmResults | GlmResults":
        """Weighted least squares, or IRLS when there is a family (see :mod:`mixedmodels.glm_fit`)."""
        if self.family is None:
            return LmResults.from_model(self)
        from .glm_fit import fit_glm_model

        return fit_glm_model(self)


# --- results --------------------------------------------------------------------------
class _NoRandomEffectsResults:
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

    @property
    def bic(self) -> float:
        return -2.0 * self.loglik + np.log(self.nobs) * self.npar

    def predict(self, newdata: pd.DataFrame | None = None, type: str = "response", **kwargs: Any) -> pd.Series:
        """Predictions for ``newdata`` (default: the fitted rows), on the response (default) or link scale.

        See :func:`mixedmodels.predict.predict`.
        """
        from .predict import predict

        return predict(self, newdata, type=type, **kwargs)


@dataclass(frozen=True, eq=False)
class LmResults(_NoRandomEffectsResults):
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

    model: LinearModel
    beta: np.ndarray
    sigma: float
    rss: float
    _r: np.ndarray

    @classmethod
    def from_model(cls, model: LinearModel) -> "LmResults":
        inputs = model.inputs
        if inputs.y.ndim != 1:
            raise DataError(f"the response {inputs.formula.response!r} must be one numeric column for lm")
        x, y = _weighted_system(inputs)
        n, p = model.nobs, x.shape[1]
        if n <= p:
            raise ModelSpecError(f"{n} observations cannot estimate {p} coefficients and a residual variance")
        q, r = np.linalg.qr(x)
        beta = solve_triangular(r, q.T @ y) if p else np.empty(0)
        resid = y - x @ beta
        rss = float(resid @ resid)
        return cls(model, beta, float(np.sqrt(rss / (n - p))), rss, r)

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
        p = len(self.beta)
        inv = triangular_inverse(self._r, lower=False) if p else np.empty((0, 0))
        return inv @ inv.T

    @property
    def vcov(self) -> pd.DataFrame:
        names = self.fixef_names
        return pd.DataFrame(self.sigma**2 * self._unscaled, index=names, columns=names)

    @property
    def se(self) -> pd.Series:
        return pd.Series(self.sigma * np.sqrt(np.diag(self._unscaled)), index=self.fixef_names, name="Std. Error")

    def coef_table(self) -> pd.DataFrame:
        """Estimate, Std. Error, t value, Pr(>|t|) (R's ``coef(summary(lm))``, printed as R prints it)."""
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

    @property
    def aic(self) -> float:
        return -2.0 * self.loglik + 2.0 * self.npar

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
        if type not in ("response", "pearson", "working", "deviance"):
            raise MixedModelsError(f"unknown residual type {type!r}; choose 'response' or 'pearson'")
        inputs = self.model.inputs
        resid = inputs.y - self._fitted
        if type in ("pearson", "deviance") and inputs.weights is not None:
            resid = resid * np.sqrt(inputs.weights)
        return pd.Series(resid, index=inputs.row_index, name="residuals")

    def simulate(self, nsim: int = 1, seed=None, newdata: pd.DataFrame | None = None) -> pd.DataFrame:
        """Simulated responses from the fitted model (R's ``simulate.lm``)."""
        from .simulate import simulate

        return simulate(self, nsim=nsim, seed=seed, newdata=newdata)

    def summary(self):
        """R's ``summary(lm)`` layout as a printable object."""
        from .lm_summary import LmSummary

        return LmSummary(self)

    def __repr__(self) -> str:
        return f"<LmResults {self.formula!r}, sigma={self.sigma:.4g}, logLik={self.loglik:.4f}>"


def _weighted_system(inputs: ModelInputs, y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(W^1/2 X, W^1/2 (y - offset))`` without the zero-weight rows."""
    x = inputs.fixed.matrix
    y = inputs.y if y is None else y
    if inputs.offset is not None:
        y = y - inputs.offset
    w = inputs.weights
    if w is None:
        return x, y
    keep = w > 0
    sw = np.sqrt(w[keep])
    return x[keep] * sw[:, None], y[keep] * sw


def lm(
    formula: str,
    data: pd.DataFrame,
    weights: Any = None,
    *,
    offset: Any = None,
    contrasts: Mapping[str, str] | None = None,
) -> LmResults:
    """Fit a linear model by (weighted) least squares, as R's ``lm``.

    Parameters
    ----------
    formula : str
        ``"Reaction ~ Days"``; the same formula language as :func:`mm.lmer`
        without random-effects terms (``scale()``, ``I()``, factors, ``offset()``).
    data : DataFrame
        Rows with a missing value in a used variable are dropped.
    weights : array-like, optional
        Prior weights, one per row of ``data``; rows of weight 0 are left out
        of the fit and of ``nobs``, as in R (they keep fitted values).
    offset : array-like, optional
        A known component of the mean, one per row of ``data``; rows where it
        is missing (NaN) are dropped, infinite values refused.
    contrasts : dict, optional
        Per-variable contrasts, e.g. ``{"condition": "sum"}``.

    Returns
    -------
    LmResults

    Examples
    --------
    >>> pooled = mm.lm("Reaction ~ Days", sleepstudy)           # complete pooling
    >>> partial = mm.lmer("Reaction ~ Days + (Days | Subject)", sleepstudy)
    >>> mm.anova(pooled, partial)                                # LRT, partial refitted by ML
    """
    inputs = prepare_fixed_inputs(formula, data, weights=weights, offset=offset, contrasts=contrasts, caller="lm")
    return LinearModel(inputs).fit()


def glm(
    formula: str,
    data: pd.DataFrame,
    family: Any = "gaussian",
    weights: Any = None,
    *,
    offset: Any = None,
    contrasts: Mapping[str, str] | None = None,
    maxit: int = 25,
    tol: float = 1e-8,
):
    """Fit a generalized linear model by IRLS, as R's ``glm``.

    Parameters
    ----------
    formula : str
        ``"cbind(incidence, size - incidence) ~ period"``; binomial responses
        may be 0/1, booleans, two-level factors, ``cbind(successes, failures)``
        or proportions with ``weights=`` the trials.
    data : DataFrame
    family : str or Family
        ``"binomial"``, ``"poisson"``, ``"Gamma"``, ``"inverse_gaussian"``,
        ``"gaussian"`` or an object such as ``mm.families.Binomial(link="probit")``.
    weights, offset, contrasts
        As for :func:`lm`.
    maxit, tol : int, float
        IRLS iterations and relative deviance tolerance (R's ``glm.control``).

    Returns
    -------
    GlmResults
    """
    from .glm_fit import fit_glm

    return fit_glm(formula, data, family, weights=weights, offset=offset, contrasts=contrasts, maxit=maxit, tol=tol)

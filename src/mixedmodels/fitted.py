"""What a fitted model offers the code that reads it: protocols, and the one shared piece.

Inference (df, F tests, intervals, bootstrap, emmeans, comparisons),
prediction, simulation and the pictures accept any object with these
members and never import the model packages, so the results of those
packages can offer them as methods (``m.confint()``, ``m.predict()``)
without an import cycle.

=====================  =====================================================================
:class:`Fit`           every fit (lm, glm, lmer, glmer): coefficients, likelihood, fitted
                       values, residuals, and the model definition in ``fit.model``
:class:`MixedFit`      a fit with random effects (lmer, glmer): theta, sigma, the terms,
                       conditional modes, covariances
:class:`GeneralizedFit`  a fit with a family (glm, glmer)
:class:`Model`         a model defined but not fitted: its inputs (lme4's lFormula stage)
:class:`MixedModel`    ... with random effects: theta's bounds and names, each term's layout
:class:`GeneralizedMixedModel`  ... with a family: PIRLS and the deviance at its solutions
                       (what glmer's fit stages and results use of the model)
=====================  =====================================================================

:func:`is_mixed` and :func:`is_generalized` tell the kinds apart (a fit of
an lm has no ``theta``, one of an lmer no ``family``).

:class:`InformationCriteria` is the one place AIC and BIC are computed, from
the log-likelihood, the number of parameters and of observations that each
fit defines its own way:

    AIC = -2 logLik + 2 npar,        BIC = -2 logLik + log(n) npar.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, Sequence

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from .design.inputs import ModelInputs
    from .design.random import RandomEffectsTerm
    from .families import Family, GlmResponse
    from .linalg.blocked import Factorization, TermLayout
    from .linalg.pirls import Pirls, PirlsResult

__all__ = [
    "Fit",
    "MixedFit",
    "GeneralizedFit",
    "Model",
    "MixedModel",
    "GeneralizedMixedModel",
    "InformationCriteria",
    "is_mixed",
    "is_generalized",
]


class Model(Protocol):
    """A model defined but not fitted, as its fits refer to it (``fit.model``)."""

    @property
    def inputs(self) -> ModelInputs: ...

    @property
    def REML(self) -> bool: ...

    @property
    def nobs(self) -> int: ...

    @property
    def nfixef(self) -> int: ...


class MixedModel(Model, Protocol):
    """A model with random effects: theta's lower bounds and lme4's names, where each term sits in theta."""

    @property
    def theta_lower(self) -> np.ndarray: ...

    @property
    def theta_names(self) -> list[str]: ...

    @property
    def layouts(self) -> Sequence[TermLayout]: ...

    def check_theta(self, theta: Any, what: str = ...) -> np.ndarray:
        """``theta`` checked against the model (its length and bounds; by lme4's names if a dict)."""
        ...


class GeneralizedMixedModel(MixedModel, Protocol):
    """A GLMM: its response and family, PIRLS, and the Laplace / quadrature deviance at a PIRLS solution."""

    @property
    def response(self) -> GlmResponse: ...

    @property
    def family(self) -> Family: ...

    @property
    def pirls(self) -> Pirls: ...

    @property
    def theta_start(self) -> np.ndarray: ...

    @property
    def theta_scales(self) -> np.ndarray: ...

    @property
    def nranef(self) -> int: ...

    def eta_start(self) -> np.ndarray: ...

    def laplace_value(self, res: PirlsResult) -> float: ...

    def agq_value(self, res: PirlsResult, theta: np.ndarray, beta: np.ndarray, nAGQ: int) -> float: ...

    def sigma_at(self, res: PirlsResult) -> float: ...


class Fit(Protocol):
    """Every fitted model: what prediction, simulation, comparisons and tests read."""

    @property
    def model(self) -> Model: ...

    @property
    def formula(self) -> str: ...

    @property
    def REML(self) -> bool: ...

    @property
    def nobs(self) -> int: ...

    @property
    def npar(self) -> int: ...

    @property
    def beta(self) -> np.ndarray: ...

    @property
    def fixef(self) -> pd.Series: ...

    @property
    def fixef_names(self) -> list[str]: ...

    @property
    def vcov(self) -> pd.DataFrame: ...

    @property
    def se(self) -> pd.Series: ...

    @property
    def sigma(self) -> float: ...

    @property
    def loglik(self) -> float: ...

    @property
    def deviance(self) -> float: ...

    @property
    def df_resid(self) -> int: ...

    @property
    def terms(self) -> Sequence[RandomEffectsTerm]:
        """The random-effects terms (none for lm and glm)."""
        ...

    @property
    def conditional_modes(self) -> list[np.ndarray]:
        """Conditional modes per term (none for lm and glm)."""
        ...

    @property
    def fitted(self) -> pd.Series: ...

    def residuals(self, type: str = ...) -> pd.Series: ...

    def coef_table(self) -> pd.DataFrame: ...


class MixedFit(Fit, Protocol):
    """A fit with random effects: theta, and what the variance components and the modes are."""

    @property
    def model(self) -> MixedModel: ...

    @property
    def theta(self) -> np.ndarray: ...

    @property
    def objective(self) -> float: ...

    @property
    def is_singular(self) -> bool: ...

    @property
    def ngroups(self) -> dict[str, int]: ...

    @property
    def covariances(self) -> dict[str, np.ndarray]: ...

    @property
    def varcorr(self) -> pd.DataFrame: ...

    @property
    def factor(self) -> Factorization:
        """The blocked Cholesky factor at the optimum."""
        ...

    def relative_factors(self) -> list[np.ndarray]: ...

    def ranef(self, condvar: bool = False) -> dict[str, pd.DataFrame]: ...


class GeneralizedFit(Fit, Protocol):
    """A fit with a family (glm, glmer): fitted values on the response scale."""

    @property
    def family(self) -> Family: ...

    @property
    def link(self) -> str: ...


def is_mixed(fit: Any) -> bool:
    """True for a fit with random effects (it has theta); False for lm/glm fits."""
    return hasattr(fit, "theta") and hasattr(fit, "model")


def is_generalized(fit: Any) -> bool:
    """True for a GLMM or GLM fit (it carries a family)."""
    return getattr(fit, "family", None) is not None


class InformationCriteria:
    """AIC and BIC from the ``loglik``, ``npar`` and ``nobs`` that the fit defines.

    The ``n`` of BIC is R's ``attr(logLik(fit), "nobs")``: ``nobs``, unless the
    fit says otherwise in ``_loglik_nobs`` (a glm counts its rows of weight 0
    there, though its ``nobs`` leaves them out, as R does).
    """

    loglik: float
    npar: int
    nobs: int

    @property
    def _loglik_nobs(self) -> int:
        return self.nobs

    @property
    def aic(self) -> float:
        return -2.0 * self.loglik + 2.0 * self.npar

    @property
    def bic(self) -> float:
        return -2.0 * self.loglik + np.log(self._loglik_nobs) * self.npar

"""The immutable results of a GLMM fit (lme4's ``glmerMod``).

:class:`GlmerResults` keeps the lmer results contract (it extends
:class:`~mixedmodels.lmm.results.LmerResults`, whose variance components, random
effects, ``coef()`` and fixed-effect accessors apply unchanged) and adds what
differs for a GLMM:

* ``family`` and ``link``; ``sigma`` is 1 for binomial and Poisson fits and,
  for families with a dispersion (Gamma, inverse Gaussian, Gaussian with a
  non-identity link), lme4's ``sqrt((sum of squared Pearson residuals + ||u||^2) / n)``;
* ``loglik`` (Laplace or quadrature), ``aic``, ``bic`` as lme4's glmer, and
  ``deviance`` as lme4's ``deviance()``: the sum of squared deviance residuals;
* ``fitted`` on the response scale and residuals of type deviance (the
  default, as in R), pearson, working and response;
* ``vcov``: lme4's default for glmer, from the finite-difference Hessian
  over (theta, beta) (``vcov_method == "hessian"``); from ``R_X`` for
  ``nAGQ = 0`` fits (``"RX"``);
* z tests in :meth:`coef_table` and the glmer layout in :meth:`summary`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._validate import Duck, Instance, Integer, Numbers, Real, check_arguments, check_bool, argument_kinds
from ..errors import MixedModelsError, ModelSpecError
from ..fitted import GeneralizedMixedModel
from ..lmm.results import LmerResults
from ..optim import OptInfo

if TYPE_CHECKING:
    from ..families import Family
    from ..linalg import Factorization
    from ..linalg.pirls import PirlsResult
    from .summary import GlmerSummary

__all__ = ["GlmerResults"]

_RESIDUAL_TYPES = ("deviance", "pearson", "working", "response")


def _split(u: np.ndarray, layouts) -> tuple[np.ndarray, ...]:
    out, start = [], 0
    for lay in layouts:
        out.append(u[start : start + lay.size].reshape(lay.nlevels, lay.ncols))
        start += lay.size
    return tuple(out)


PIRLS_RESULT = Duck("u", "mu", "factor", what="a PIRLS solution (model.pirls.modes(...))")


@dataclass(frozen=True, eq=False)
class GlmerResults(LmerResults):
    """A fitted generalized linear mixed model.

    It has every attribute of :class:`~mixedmodels.lmm.results.LmerResults`, and these.

    Attributes
    ----------
    nAGQ : int
        0, 1 (Laplace) or the number of quadrature points.
    objective : float
        The minimized deviance: ``-2 logLik`` (Laplace, nAGQ <= 1) or the
        quadrature deviance (nAGQ > 1, without the family's normalising
        constants, as lme4).
    vcov_method : str
        ``"hessian"`` (finite-difference Hessian over theta and beta, lme4's
        default) or ``"RX"`` (from the fixed-effects block of the Cholesky factor).
    family_npar : int
        Parameters of the family estimated with the fit and counted in ``npar``
        (1 for ``mm.glmer_nb``'s theta, else 0).
    """

    nAGQ: int
    vcov_method: str
    _mu: np.ndarray
    _vcov_beta: np.ndarray
    family_npar: int = 0

    @classmethod
    @argument_kinds(
        model=Duck("inputs", "pirls", what="a GeneralizedLinearMixedModel"),
        nAGQ=Integer(0, 100),
        beta=Numbers(),
        res=PIRLS_RESULT,
        value=Real(allow_inf=True),
        info=Instance(OptInfo),
        vcov=Instance(np.ndarray, what="a matrix", allow_none=True),
        family_npar=Integer(0),
    )
    def from_fit(
        cls,
        model: GeneralizedMixedModel,
        nAGQ: int,
        theta: np.ndarray,
        beta: np.ndarray,
        res: "PirlsResult",
        value: float,
        info: "OptInfo",
        vcov: np.ndarray | None,
        family_npar: int = 0,
    ) -> "GlmerResults":
        """Assemble the results at the optimum (``vcov`` None: use ``R_X``); ``family_npar`` counts the
        family's parameters estimated with the fit (``glmer_nb``'s theta)."""
        check_arguments(locals())
        sigma = model.sigma_at(res)
        method = "hessian"
        if vcov is None:
            method = "RX"
            factor = model.pirls.joint_factor(theta, res)
            lx, _ = factor.fixed_factor()
            inv = np.linalg.inv(lx)
            vcov = sigma**2 * (inv.T @ inv)
        return cls(
            model,
            np.asarray(theta, dtype=float).copy(),
            np.asarray(beta, dtype=float).copy(),
            sigma,
            float(value),
            info,
            res.factor,
            _split(res.u, model.layouts),
            int(nAGQ),
            method,
            res.mu,
            vcov,
            int(family_npar),
        )

    @classmethod
    def _from_modes(
        cls,
        model: GeneralizedMixedModel,
        theta: np.ndarray,
        beta: np.ndarray,
        u: np.ndarray,
        mu: np.ndarray,
        value: float,
        info: "OptInfo",
        vcov: np.ndarray,
    ) -> "GlmerResults":
        """Laplace results from estimates found elsewhere (the compiled one-term fit): the modes ``u``,
        the means ``mu`` and the Hessian's covariance of beta; the joint factor is formed on first use
        (:attr:`factor`).  For families without a dispersion (sigma 1)."""
        return cls(model, theta, beta, 1.0, float(value), info, None, _split(u, model.layouts), 1, "hessian", mu, vcov)

    @property
    def factor(self) -> "Factorization":
        """The blocked Cholesky factor of ``[Z Lambda, X, z]`` at PIRLS's weights at the optimum:
        prediction SEs, leverages and conditional covariances are solves with it."""
        if self._factor is None:
            pirls = self.model.pirls
            u = np.concatenate([m.ravel() for m in self._modes])
            res = pirls.modes(self.theta, self.beta, u)  # converged already: the weights at the modes
            object.__setattr__(self, "_factor", pirls.joint_factor(self.theta, res))
        return self._factor

    # --- family -------------------------------------------------------------------
    @property
    def family(self) -> "Family":
        return self.model.family

    @property
    def link(self) -> str:
        return self.family.link.name

    @property
    def npar(self) -> int:
        """Fixed effects, theta, the dispersion for families that have one (lme4's df), and a family
        parameter estimated with the fit (``glmer_nb``'s theta; a known theta is not counted, as glmmTMB,
        where lme4 1.1 counts it for every negative binomial fit)."""
        return self.model.nfixef + self.theta.size + int(self.family.has_dispersion) + self.family_npar

    # --- fixed effects --------------------------------------------------------------
    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance of the fixed effects (see ``vcov_method``)."""
        names = self.fixef_names
        return pd.DataFrame(self._vcov_beta, index=names, columns=names)

    @property
    def se(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self._vcov_beta)), index=self.fixef_names, name="Std. Error")

    def coef_table(self, ddf: str | None = None) -> pd.DataFrame:
        """Estimate, Std. Error, z value (t value for families with a dispersion) and Pr(>|z|).

        As lme4, the p-values are Wald tests against the standard normal.
        """
        check_arguments(locals())
        if ddf is not None:
            raise ModelSpecError("denominator degrees of freedom (ddf) apply to lmer fits; glmer uses z tests")
        from scipy import stats  # here, not at import: a fit does not need scipy.stats (~17k objects)

        est, se = self.fixef.to_numpy(), self.se.to_numpy()
        z = est / se
        stat = "t value" if self.family.has_dispersion else "z value"
        return pd.DataFrame(
            {"Estimate": est, "Std. Error": se, stat: z, "Pr(>|z|)": 2.0 * stats.norm.sf(np.abs(z))},
            index=self.fixef_names,
        )

    # --- likelihood --------------------------------------------------------------------
    @property
    def deviance(self) -> float:
        """lme4's ``deviance()`` for glmer: the sum of squared deviance residuals at the modes.

        (The summary's "deviance" column is ``-2 * loglik``.)
        """
        return self.model.response.deviance(self._mu)

    # --- variance components --------------------------------------------------------
    @property
    def varcorr(self) -> pd.DataFrame:
        """As R's ``as.data.frame(VarCorr(m))``: a Residual row only for families with a dispersion."""
        table = super().varcorr
        if self.family.has_dispersion:
            return table
        return table[table["grp"] != "Residual"].reset_index(drop=True)

    # --- fitted values and residuals ------------------------------------------------------
    @property
    def linear_predictor(self) -> pd.Series:
        """``eta = X beta + Z b + offset`` (R's ``predict(m, type = "link")``)."""
        return self.model.inputs.row_series(self._linear_predictor, "eta")

    @property
    def fitted(self) -> pd.Series:
        """Fitted means on the response scale (probabilities / proportions for binomial)."""
        return self.model.inputs.row_series(self._mu, "fitted")

    @property
    def _prior_weights(self) -> np.ndarray:
        """The response's prior weights: the numbers of trials of a binomial ``cbind`` or proportion response."""
        return np.asarray(self.model.response.weights, dtype=float)

    def _working_weights(self) -> np.ndarray:
        """``prior * mu_eta(eta)^2 / V(mu)`` at the conditional modes (PIRLS' weights, lme4's ``type = "working"``)."""
        eta = self._linear_predictor
        return self._prior_weights * self.family.link.mu_eta(eta) ** 2 / self.family.variance(self._mu)

    def residuals(self, type: str = "deviance", scaled: bool = False) -> pd.Series:
        """Residuals as R's ``residuals(glmer fit, type)``.

        ``"deviance"`` (default): ``sign(y - mu) sqrt(d_i)``; ``"pearson"``:
        ``(y - mu) sqrt(wt / V(mu))``; ``"working"``: ``(y - mu) / mu_eta``;
        ``"response"``: ``y - mu``.  ``scaled`` divides by sigma.
        """
        check_arguments(locals())
        if type not in _RESIDUAL_TYPES:
            raise MixedModelsError(
                f"unknown residual type {type!r}; choose one of {', '.join(map(repr, _RESIDUAL_TYPES))}"
            )
        response, mu = self.model.response, self._mu
        if type == "deviance":
            resid = np.sign(response.y - mu) * np.sqrt(np.maximum(response.dev_resid(mu), 0.0))
        elif type == "pearson":
            resid = response.pearson(mu)
        elif type == "working":
            resid = (response.y - mu) / self.family.link.mu_eta(self._linear_predictor)
        else:
            resid = response.y - mu
        if check_bool(scaled, "scaled"):
            resid = resid / self.sigma
        return self.model.inputs.row_series(resid, "residuals")

    # --- not for GLMMs -------------------------------------------------------------------
    def anova(self, ddf: str = "satterthwaite") -> pd.DataFrame:
        check_arguments(locals())
        raise ModelSpecError(
            "F tests with Satterthwaite/Kenward-Roger df are for lmer fits; "
            "compare nested glmer fits with mm.anova(smaller, larger) (likelihood-ratio test)"
        )

    # --- display -------------------------------------------------------------------------
    def summary(self, ddf: str | None = None) -> "GlmerSummary":
        """lme4's glmer summary layout (z tests); ``ddf`` does not apply."""
        check_arguments(locals())
        if ddf is not None:
            raise ModelSpecError("denominator degrees of freedom (ddf) apply to lmer fits; glmer uses z tests")
        from .summary import GlmerSummary

        return GlmerSummary(self)

    @property
    def method_title(self) -> str:
        """lme4's fit-method title."""
        if self.nAGQ == 1:
            how = "Laplace Approximation"
        else:
            how = f"Adaptive Gauss-Hermite Quadrature, nAGQ = {self.nAGQ}"
        return f"Generalized linear mixed model fit by maximum likelihood ({how})"

    def __repr__(self) -> str:
        return (
            f"<GlmerResults {self.formula!r} ({self.family.name}, {self.link}; nAGQ={self.nAGQ}), "
            f"logLik={self.loglik:.4f}>"
        )

"""Generalized linear mixed models: the model, its Laplace / quadrature deviance, and ``glmer``.

The pipeline mirrors :mod:`mixedmodels.lmm.model`::

    model = GeneralizedLinearMixedModel.from_formula(
        "cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial")
    model.deviance(theta, beta)   # Laplace approximation to -2 log L
    result = model.fit()          # an immutable GlmerResults

For given ``theta`` and ``beta``, PIRLS (:mod:`mixedmodels.linalg.pirls`) finds
the conditional modes ``u`` and the Cholesky factor ``L`` of
``Lambda' Z' W Z Lambda + I`` at the modes.  The Laplace approximation to the
deviance is, as lme4 computes it,

    -2 log L(theta, beta) ~ -2 sum_i log p(y_i | mu_i) + ||u||^2 + log det(L)^2,

with the family's normalising constants (R's ``family$aic``).  For ``nAGQ > 1``
(one scalar random-effects term) adaptive Gauss-Hermite quadrature replaces
the Laplace step level by level; like lme4, that deviance is built from the
deviance residuals, so its log-likelihood omits the normalising constants.

Fitting (:mod:`.fit`) follows lme4's two stages: first theta alone with beta
taken from PIRLS (the ``nAGQ = 0`` criterion), then theta and beta together.
The covariance of beta is lme4's default: twice the inverse of the
finite-difference Hessian of the deviance over (theta, beta), beta block.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .._threads import design_threads_for, one_blas_thread
from ..design.inputs import ModelInputs, prepare_glmm_inputs
from ..design.tables import as_pandas, is_dask_input
from ..errors import DataError, MixedModelsWarning, ModelSpecError
from ..families import Family, GlmResponse, family_of, get_family
from ..linalg.blocked import ThetaVectors
from ..linalg.pirls import Pirls, PirlsResult, ReweightedBlocks
from ..lmm.model import ThetaParameters
from ..optim import OptimizerSettings
from .._validate import Anything, FitData, Instance, Numbers, argument_kinds, check_arguments
from .fit import GlmmStart, fit_glmm
from .results import GlmerResults

__all__ = ["GeneralizedLinearMixedModel", "glmer", "hands_over_to_lmer", "GLMM_SETTINGS", "MAX_NAGQ"]

# Tolerances of both stages.  Stage 2 works in units of standard errors for beta,
# where a deviance change of 1e-6 is a step of ~1e-3 SE; the Newton step made with
# the finite-difference Hessian afterwards takes the rest of the way.
_SETTINGS = Instance(OptimizerSettings, what="an OptimizerSettings", allow_none=True)
_BETA = Numbers(what="beta: a list or array of finite numbers (empty without fixed effects)")
GLMM_SETTINGS = OptimizerSettings(ftol_rel=1e-10, ftol_abs=1e-6, xtol_rel=0.0, xtol_abs=1e-5, initial_step=0.2)
MAX_NAGQ = 100  # lme4's GHrule: ord < 101


def _check_not_constant(response: GlmResponse, name: str) -> None:
    """lme4's "Response is constant": refuse a response without variation (over the rows with weight).

    An all-zero count or no successes at all would send the fixed effects to
    minus infinity (PIRLS ends in NaN); lme4 refuses every constant response.
    """
    values = response.y[response.weights > 0]
    if values.size and np.maximum.reduce(values) - np.minimum.reduce(values) == 0:  # np.ptp's, without wrappers
        what = "proportion of successes" if response.family.name == "binomial" else "value"
        raise DataError(
            f"the response {name!r} is constant (every {what} is {values[0]:g}): there is no variation "
            "for a GLMM to model (lme4 refuses it too: 'Response is constant'); check the response "
            "column and the rows kept"
        )


def gauss_hermite(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of n-point Gauss-Hermite quadrature for the standard normal density."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(n)
    return nodes, weights / np.sqrt(2.0 * np.pi)


@dataclass(frozen=True, eq=False)
class GeneralizedLinearMixedModel(ThetaParameters):
    """A GLMM, defined but not fitted: inputs, family, and the PIRLS machinery.

    Attributes
    ----------
    inputs : ModelInputs
    response : GlmResponse
        The validated response (proportions and trial weights for binomial).
    plan : ReweightedBlocks
        Where each observation's products land in the blocked cross-products.
    laplace : str
        ``"expected"`` (lme4's Laplace approximation: the log-determinant at the
        PIRLS weights, the expected information) or ``"observed"`` (glmmTMB's:
        at the observed information, the exact Hessian in the random effects).
        They differ only for non-canonical links.
    """

    inputs: ModelInputs
    response: GlmResponse
    plan: ReweightedBlocks
    laplace: str = "expected"

    REML = False

    @classmethod
    def from_formula(
        cls,
        formula: str,
        data: pd.DataFrame,
        family: Any = "binomial",
        *,
        weights: Any = None,
        offset: Any = None,
        contrasts: Mapping[str, str] | None = None,
        na_action: str = "omit",
        max_memory: Any = None,
    ) -> "GeneralizedLinearMixedModel":
        """Build the model from an lme4 formula (see :func:`glmer` for the arguments)."""
        check_arguments(locals())
        fam = get_family(family)
        # one BLAS thread for the design, whatever its rows (glmer skips it below SMALL_DESIGN rows of a pandas
        # frame); the with-block adds no frame, so the warnings' stacklevel is glmer's
        with one_blas_thread():
            options = {"weights": weights, "offset": offset, "contrasts": contrasts, "na_action": na_action}
            inputs = prepare_glmm_inputs(formula, data, **options, max_memory=max_memory)
            return cls._from_inputs(inputs, fam)

    @classmethod
    def _from_formula(
        cls, formula: str, data: pd.DataFrame, family: Family, **options: Any
    ) -> "GeneralizedLinearMixedModel":
        """:meth:`from_formula` for :func:`glmer`, whose check covered the arguments; ``options``: weights,
        offset, contrasts, na_action and max_memory."""
        # (under glmer's one BLAS thread: the design's few products with n rows, X's rank check by QR,
        # woke OpenBLAS's pool, whose spinning threads cost a VerbAgg fit ~30 % of its CPU time on a busy
        # 2-core machine)
        inputs = prepare_glmm_inputs(formula, data, **options)
        return cls._from_inputs(inputs, family)

    @classmethod
    @argument_kinds(inputs=Instance(ModelInputs))
    def from_inputs(cls, inputs: ModelInputs, family: Any) -> "GeneralizedLinearMixedModel":
        check_arguments(locals())
        return cls._from_inputs(inputs, get_family(family))

    @classmethod
    def _from_inputs(cls, inputs: ModelInputs, fam: Family) -> "GeneralizedLinearMixedModel":
        """:meth:`from_inputs` with its arguments checked."""
        response = fam.response(inputs.y, inputs.weights, inputs.formula.response)
        _check_not_constant(response, inputs.formula.response)
        n, p = int(np.count_nonzero(response.weights)), len(inputs.fixed.column_names)
        if n <= p:
            zero = "" if n == inputs.nobs else " with non-zero weight"
            raise ModelSpecError(f"{n} observations{zero} cannot estimate {p} fixed effects")
        return cls(inputs, response, ReweightedBlocks.build(inputs.terms))

    @argument_kinds(family=Instance(Family, what="a family object (mm.families.NegativeBinomial(theta))"))
    def with_family(self, family: Family) -> "GeneralizedLinearMixedModel":
        """The same model with another family of the same kind (the negative binomial at another theta).

        The response is not checked again, and the PIRLS machinery (built from
        X, Z and the offset) is shared.
        """
        check_arguments(locals())
        old = self.response
        response = GlmResponse.make(family, old.y, old.weights, old.trials)
        new = replace(self, response=response)
        if "pirls" in self.__dict__:
            new.__dict__["pirls"] = self.pirls.with_response(response)
        return new

    # --- facts ------------------------------------------------------------------
    @property
    def family(self) -> Family:
        return self.response.family

    @property
    def nobs(self) -> int:
        return self.inputs.nobs

    @property
    def nfixef(self) -> int:
        return len(self.inputs.fixed.column_names)

    @property
    def layouts(self):
        return self.plan.layouts

    @cached_property
    def theta_vectors(self) -> ThetaVectors:
        """Theta's bounds, start and scaling per element, from the terms' layouts (made once per model)."""
        return ThetaVectors.of(self.layouts)

    @cached_property
    def pirls(self) -> Pirls:
        offset = self.inputs.offset if self.inputs.offset is not None else np.zeros(self.nobs)
        return Pirls(
            self.response,
            np.ascontiguousarray(self.inputs.fixed.matrix, dtype=float),
            offset,
            self.plan,
            terms=self.inputs.terms,
        )

    @property
    def theta_scales(self) -> np.ndarray:
        """Per theta element, its row's column scale: scaled theta = theta * this (each term's ``scale_theta``
        as one product, as it is called for every evaluation; read-only)."""
        return self.theta_vectors.scale

    @property
    def default_settings(self) -> OptimizerSettings:
        """The optimizer settings of a glmer fit unless others are given (``GLMM_SETTINGS``)."""
        return GLMM_SETTINGS

    @property
    def nranef(self) -> int:
        return sum(lay.size for lay in self.layouts)

    def eta_start(self) -> np.ndarray:
        """R's ``etastart``: the link of the family's starting means."""
        return self.family.link.link(self.response.mustart())

    # --- the deviance ---------------------------------------------------------------
    def laplace_value(self, res: PirlsResult) -> float:
        """``-2 log L`` by the Laplace approximation at a PIRLS solution (see ``laplace``)."""
        if not (np.isfinite(res.dev) and res.factor.ok):
            return np.inf
        logdet = res.factor.logdet_re()
        if self.laplace == "observed" and not self.family.canonical:
            factor = self.pirls.observed_factor(res.theta, res)
            with np.errstate(invalid="ignore"):
                logdet = factor.logdet_re() if factor.ok else np.inf
            if not np.isfinite(logdet):
                return np.inf
        return self.response.minus2_loglik(res.mu, res.dev) + res.ussq + logdet

    def agq_value(self, res: PirlsResult, theta: np.ndarray, beta: np.ndarray, nAGQ: int) -> float:
        """Adaptive Gauss-Hermite deviance for one scalar term (lme4's and MixedModels.jl's form)."""
        if not (np.isfinite(res.dev) and res.factor.ok):
            return np.inf
        term = self.inputs.terms[0]
        refs, q = term.refs, term.nlevels
        zcol = term.z[:, 0] * theta[0]
        fixed = self.pirls.x @ beta + self.pirls.offset
        sd = 1.0 / res.factor.l11
        u0 = res.u
        devc0 = np.bincount(refs, weights=self.response.dev_resid(res.mu), minlength=q) + u0 * u0
        mult = np.zeros(q)
        link, family = self.family.link, self.family
        for z, w in zip(*gauss_hermite(nAGQ)):
            if z == 0.0:
                mult += w
                continue
            u = u0 + z * sd
            eta = fixed + zcol * u[refs]
            mu = link.inverse(eta)
            if not family.valid_mu(mu):
                return np.inf
            devc = np.bincount(refs, weights=self.response.dev_resid(mu), minlength=q) + u * u
            mult += w * np.exp((z * z + devc0 - devc) / 2.0)
        return float(np.sum(devc0) - 2.0 * (np.sum(np.log(mult)) + np.sum(np.log(sd))))

    @argument_kinds(beta=_BETA, u0=Numbers(allow_none=True))
    def deviance(self, theta: np.ndarray, beta: np.ndarray, nAGQ: int = 1, u0: np.ndarray | None = None) -> float:
        """The GLMM deviance at (theta, beta): Laplace (nAGQ=1) or adaptive quadrature."""
        check_arguments(locals())
        theta, beta = np.asarray(theta, dtype=float), np.asarray(beta, dtype=float)
        res = self.pirls.modes(theta, beta, np.zeros(self.nranef) if u0 is None else u0)
        return self.laplace_value(res) if nAGQ <= 1 else self.agq_value(res, theta, beta, nAGQ)

    def sigma_at(self, res: PirlsResult) -> float:
        """lme4's sigma: 1, or for families with a dispersion ``sqrt((sum r_pearson^2 + ||u||^2) / n)``.

        ``n`` counts the rows with non-zero prior weight (lme4 divides by every
        row, so its sigma shrinks as zero-weight rows are added; R's glm leaves
        them out, and so does this, so that such rows change nothing).
        """
        if not self.family.has_dispersion:
            return 1.0
        n = int(np.count_nonzero(self.response.weights))
        return float(np.sqrt((np.sum(self.response.pearson(res.mu) ** 2) + res.ussq) / n))

    def check_nagq(self, nAGQ: int) -> int:
        """lme4's rules for nAGQ: a whole number from 0 to 100, above 1 only for one scalar term."""
        check_arguments(locals())
        return self._nagq_rules(nAGQ)

    def _nagq_rules(self, nAGQ: int) -> int:
        """:meth:`check_nagq` with nAGQ's kind checked already (by :func:`glmer`)."""
        if isinstance(nAGQ, bool) or int(nAGQ) != nAGQ or nAGQ < 0:
            raise ModelSpecError(f"nAGQ must be a whole number >= 0, got {nAGQ!r}")
        nAGQ = int(nAGQ)
        if nAGQ > MAX_NAGQ:
            raise ModelSpecError(
                f"nAGQ = {nAGQ} is more than {MAX_NAGQ} quadrature points, which lme4 refuses too "
                "('ord < 101L is not TRUE'); 25 points are already exact to many digits"
            )
        terms = self.inputs.terms
        if nAGQ > 1 and (len(terms) != 1 or terms[0].ncols != 1):
            raise ModelSpecError(
                "nAGQ > 1 is only available for models with a single, scalar random-effects term; "
                f"this model has {', '.join(str(t) for t in terms)}: use nAGQ=1 (Laplace)"
            )
        return nAGQ

    # --- fitting ----------------------------------------------------------------------
    @argument_kinds(settings=_SETTINGS)
    def fit(self, nAGQ: int = 1, settings: OptimizerSettings | None = None, start: Any = None) -> GlmerResults:
        """Maximize the (approximate) likelihood (:mod:`.fit`); returns a :class:`~.results.GlmerResults`.

        ``start``: theta, or ``{"theta": ..., "fixef": ...}`` (lme4's ``start``; see :func:`glmer`).
        """
        check_arguments(locals())
        return fit_glmm(self, self.check_nagq(nAGQ), settings or GLMM_SETTINGS, self._check_start(start))

    def _fit(self, nAGQ: int, settings: OptimizerSettings | None, start: Any) -> GlmerResults:
        """:meth:`fit` for :func:`glmer`, whose check covered the arguments (the same depth of calls)."""
        return fit_glmm(self, self._nagq_rules(nAGQ), settings or GLMM_SETTINGS, self._check_start(start))

    def _check_start(self, start: Any) -> GlmmStart | None:
        """lme4's ``start`` for glmer: theta, or a dict with "theta" and/or "fixef"."""
        if start is None:
            return None
        if not isinstance(start, Mapping):
            return GlmmStart(self.check_theta(start))
        extra = [k for k in start if k not in ("theta", "fixef")]
        if extra or not start:
            raise ModelSpecError(
                f"glmer's start is theta or {{'theta': ..., 'fixef': ...}}; got the keys {list(start)}"
            )
        theta = self.check_theta(start["theta"]) if "theta" in start else self.theta_start
        fixef = None
        if "fixef" in start:
            fixef = np.asarray(start["fixef"], dtype=float).reshape(-1)
            if fixef.size != self.nfixef or not np.all(np.isfinite(fixef)):
                raise ModelSpecError(
                    f"start fixef must be {self.nfixef} finite numbers ({', '.join(self.inputs.fixed.column_names)})"
                )
        return GlmmStart(theta, fixef)


def hands_over_to_lmer(family: Family) -> bool:
    """Whether glmer hands the fit to lmer: ``family="gaussian"`` with the identity link is a linear
    mixed model, as lme4 says, with a warning (``stacklevel`` 3 points at glmer's caller)."""
    if family.name != "gaussian" or family.link.name != "identity":
        return False
    warnings.warn(
        "glmer() with family='gaussian' (identity link) is a linear mixed model: "
        "fitting it with mm.lmer(); call lmer() directly",
        MixedModelsWarning,
        stacklevel=3,
    )
    return True


@argument_kinds(
    data=FitData(),
    settings=_SETTINGS,
    method=Anything("any value but None is refused by glmer itself, saying what to write instead (nAGQ)"),
)
def glmer(
    formula: str,
    data: pd.DataFrame,
    family: Any = "binomial",
    *,
    nAGQ: int = 1,
    weights: Any = None,
    offset: Any = None,
    contrasts: Mapping[str, str] | None = None,
    settings: OptimizerSettings | None = None,
    start: Any = None,
    na_action: str = "omit",
    method: str | None = None,
    max_memory: Any = None,
):
    """Fit a generalized linear mixed model written in lme4's formula language.

    Parameters
    ----------
    formula : str
        e.g. ``"cbind(incidence, size - incidence) ~ period + (1 | herd)"``.
        Binomial responses may be 0/1 numbers, booleans, two-level factors
        (the first level is failure, as R), ``cbind(successes, failures)``, or
        proportions with ``weights=`` the numbers of trials.
    data : DataFrame, polars DataFrame, pyarrow Table, dask DataFrame or str
        A dask DataFrame, or a path or glob of Parquet files, is fitted
        without bringing its rows into memory (:func:`mixedmodels.dask.glmer`:
        binomial and Poisson families; ``weights`` and ``offset`` are column names).
    family : str or Family
        ``"binomial"``, ``"poisson"``, ``"Gamma"``, ``"inverse_gaussian"``,
        ``"gaussian"``, or an object from :mod:`mixedmodels.families` such as
        ``mm.families.Binomial(link="probit")``.
    nAGQ : int
        1: Laplace approximation (default).  > 1: adaptive Gauss-Hermite
        quadrature with that many points, at most 100 (one scalar
        random-effects term only).  0: optimize theta only, beta from PIRLS
        (faster, less exact).
    weights : array-like, optional
        Prior weights (for proportions: the numbers of trials).  Rows of
        weight 0 contribute nothing to the estimates but count in ``nobs``,
        as in lme4 (the dispersion of a Gamma fit leaves them out, as R's glm).
        Rows with a missing (NaN) weight are dropped, as lme4 does.
    offset : array-like, optional
        Added to the linear predictor, with any ``offset()`` in the formula;
        rows where it is missing (NaN) are dropped, infinite values refused.
    contrasts : dict, optional
        Per-variable contrasts, as for :func:`mixedmodels.lmer`.
    settings : OptimizerSettings, optional
    start : array-like or dict, optional
        lme4's ``start``: theta, or ``{"theta": ..., "fixef": ...}``.  With
        theta alone the first optimization stage starts there; with the
        fixed effects too the first stage is skipped.
    na_action : {"omit", "exclude"}
        As for :func:`mixedmodels.lmer`.
    max_memory : int, float or str, optional
        As for :func:`mixedmodels.lmer`: the model is refused before its
        matrices are formed when their estimated size exceeds this (default:
        the memory available now).
    method : None
        Not an argument: old lme4's ``method="Laplace"`` / ``"AGQ"`` is ``nAGQ=1`` / ``nAGQ=k``
        here, and a MixedModelsError says so.

    Returns
    -------
    GlmerResults

    Notes
    -----
    ``family="gaussian"`` with the identity link is a linear mixed model:
    as lme4 does, this calls :func:`mixedmodels.lmer` (with a warning).
    """
    check_arguments({"formula": formula, "data": data, "method": method})
    if method is not None:
        raise ModelSpecError(
            f"glmer has no method= argument (got {method!r}): it maximises the likelihood, by the Laplace "
            "approximation with nAGQ=1 (default) or adaptive Gauss-Hermite quadrature with nAGQ > 1 (old lme4's "
            "method='AGQ'); for a linear mixed model's ML fit use mm.lmer(..., REML=False)"
        )
    if is_dask_input(data):  # weights and offset are column names there: mixedmodels.dask checks its arguments
        from ..dask import glmer as dask_glmer  # upward: data on Dask are fitted there (see tests/test_layering.py)

        return dask_glmer(
            formula,
            data,
            family,
            nAGQ=nAGQ,
            weights=weights,
            offset=offset,
            contrasts=contrasts,
            settings=settings,
            start=start,
            na_action=na_action,
        )
    data = as_pandas(data)  # polars DataFrames and pyarrow Tables are fitted as their pandas copies
    # The other arguments, once: formula and method were checked above, and so was data, which is now a pandas
    # DataFrame (FitData accepted a pandas, polars or dask frame, a pyarrow Table or a path; the dask ones went
    # to mixedmodels.dask, as_pandas made one of the others) -- Frame's check of it again could not fire.
    check_arguments(
        {
            "family": family,
            "nAGQ": nAGQ,
            "weights": weights,
            "offset": offset,
            "contrasts": contrasts,
            "settings": settings,
            "start": start,
            "na_action": na_action,
            "max_memory": max_memory,
        }
    )
    fam = family_of(family)  # its kind checked just now: get_family would check it again
    if hands_over_to_lmer(fam):
        from ..lmm.model import lmer

        return lmer(
            formula,
            data,
            weights=weights,
            offset=offset,
            contrasts=contrasts,
            na_action=na_action,
            start=start,
            max_memory=max_memory,
        )
    # glmer's check covered the model's and the fit's arguments (the same kinds): not checked again.
    # One BLAS thread for the model and the fit, unless the data are too few rows for OpenBLAS to thread a
    # product (the general fit sets its own limit, which then finds it set; the compiled one-term fit calls no BLAS)
    with design_threads_for(len(data)):
        model = GeneralizedLinearMixedModel._from_formula(
            formula,
            data,
            fam,
            weights=weights,
            offset=offset,
            contrasts=contrasts,
            na_action=na_action,
            max_memory=max_memory,
        )
        return model._fit(nAGQ, settings, start)

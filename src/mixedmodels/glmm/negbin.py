"""Negative binomial GLMMs with theta estimated: ``glmer_nb`` (lme4's ``glmer.nb``).

The response is negative binomial with variance ``mu + mu^2 / theta``
(:class:`~mixedmodels.families.NegativeBinomial`).  lme4's ``glmer.nb``
alternates: a glmer fit at a fixed theta, then theta by maximum likelihood
given that fit's means, until theta settles.  Here theta is estimated jointly
with the other parameters, by maximizing the same Laplace approximation
(lme4's, with the expected information in its log-determinant) over
``(theta_cov, beta, log theta)`` together, as glmmTMB's ``nbinom2`` does for
its own approximation.  The joint maximum is at least as high as the point
where the alternation stops.  ``laplace="observed"`` maximizes glmmTMB's
approximation instead (the observed information in the log-determinant).

The stages:

1. a start for theta: a Poisson GLMM (``nAGQ = 0`` criterion, by BFGS) gives means
   ``mu``, and theta maximizes the negative binomial likelihood of ``y`` given
   them (MASS's ``theta.ml``);
2. glmer's first stage at that theta (theta_cov with beta from PIRLS), which
   also sets the second stage's coordinates (:mod:`.fit`);
3. BFGS over the second stage's coordinates and ``log theta`` with the Laplace
   gradient (:mod:`.linalg.laplace_gradient_links`, which has the derivative in
   ``log theta``: the deviance's explicit one, the weights' and the modes'),
   from the Poisson start's curvature; BOBYQA from its end where it does not
   converge, and instead of it where there is no gradient (``laplace="observed"``,
   vector terms, quadrature);
4. glmer's finish at the estimated theta: Newton steps and the covariance of
   beta from the finite-difference Hessian over (theta_cov, beta) -- given
   theta, as lme4's ``vcov`` of a ``glmer.nb`` fit.
"""

from __future__ import annotations

import copy
import time
from dataclasses import replace
from typing import Any, Mapping

import numpy as np
import pandas as pd
from scipy import optimize, special

from .._threads import one_blas_thread
from .._validate import FitData, Instance, Text, argument_kinds, check_arguments
from ..design.inputs import prepare_glmm_inputs
from ..design.tables import as_pandas, is_dask_input
from ..errors import ModelSpecError, NotOnDaskError
from ..families import NegativeBinomial, Poisson
from ..optim import OptimizerSettings, OptInfo, minimize_bounded, minimize_quasi_newton
from .fit import (
    Stages,
    _Criterion,
    _finish,
    _finite_or_none,
    _laplace_gradient,
    _stage1,
    _start_settings,
    _WarmStart,
    _x_block_inverse_factor,
    make_results,
    to_scaled,
)
from .model import GLMM_SETTINGS, GeneralizedLinearMixedModel
from .results import GlmerResults

__all__ = ["glmer_nb", "theta_ml"]

# log theta is searched within these bounds (theta from 1e-4, nearly geometric... to 1e8, nearly Poisson)
_LOG_THETA_BOUNDS = (np.log(1e-4), np.log(1e8))


def theta_ml(y: np.ndarray, mu: np.ndarray, weights: np.ndarray | None = None) -> float:
    """The negative binomial theta maximizing ``sum w log p(y | mu, theta)`` for given means (MASS's ``theta.ml``)."""
    w = np.ones_like(y) if weights is None else weights

    def minus_loglik(log_theta: float) -> float:
        t = np.exp(log_theta)
        return -float(
            np.sum(
                w
                * (
                    special.gammaln(y + t)
                    - special.gammaln(t)
                    + t * np.log(t)
                    + special.xlogy(y, mu)
                    - (y + t) * np.log(mu + t)
                )
            )
        )

    found = optimize.minimize_scalar(minus_loglik, bounds=_LOG_THETA_BOUNDS, method="bounded", options={"xatol": 1e-6})
    return float(np.exp(found.x))


class _JointCriterion:
    """Stage 2's deviance with one more coordinate, ``log(theta / theta0)``: the family's theta."""

    def __init__(self, base: _Criterion, theta0: float):
        self.base, self.log_theta0 = base, np.log(theta0)
        self.lower = np.append(base.lower, _LOG_THETA_BOUNDS[0] - self.log_theta0)
        self.upper = np.append(base.upper, _LOG_THETA_BOUNDS[1] - self.log_theta0)
        self._model: tuple[float, GeneralizedLinearMixedModel] | None = None

    def x0(self, theta_cov: np.ndarray) -> np.ndarray:
        return np.append(self.base.x0(theta_cov), 0.0)

    def nb_theta(self, x: np.ndarray) -> float:
        return float(np.exp(self.log_theta0 + x[-1]))

    def model_at(self, x: np.ndarray) -> GeneralizedLinearMixedModel:
        """The model with theta from ``x`` (the last one is kept: BOBYQA often revisits it)."""
        theta = self.nb_theta(x)
        if self._model is None or self._model[0] != theta:
            self._model = (theta, self.base.model.with_family(self.base.model.family.with_theta(theta)))
        return self._model[1]

    def evaluate(self, x: np.ndarray, u0: np.ndarray):
        """``-2 log L`` at ``x`` and PIRLS there.

        The quadrature deviance (``nAGQ > 1``, lme4's: the deviance residuals') leaves out
        ``-2 log L - deviance``, a constant for a known theta but not over theta: it is added.
        """
        model = self.model_at(x)
        value, res = _criterion_for(self.base, model).evaluate(x[:-1], u0)
        return (value + model.response.constant if self.base.nAGQ > 1 else value), res


class _JointDerivatives:
    """The joint criterion and its gradient over ``(stage-2 coordinates, log(theta / theta0))`` for BFGS.

    The gradient is :meth:`.linalg.laplace_gradient_links.LinkLaplaceGradient.with_family_parameter`'s
    (built once, for the first model, and given each theta's response).  Keeps the last PIRLS
    solution for the gradient there, and after each gradient the modes' first-order
    prediction, PIRLS's start nearby.
    """

    def __init__(self, joint: _JointCriterion, gradient, warm: _WarmStart):
        self.joint, self.gradient, self.warm = joint, gradient, warm
        self.last: tuple | None = None
        self.prediction: tuple | None = None

    def value(self, x: np.ndarray) -> float:
        u0 = self.warm.u
        if self.prediction is not None:
            base, u, du = self.prediction
            u0 = u + du @ (x - base)
        try:
            value, res = self.joint.evaluate(x, u0)
        except np.linalg.LinAlgError:  # a step far out (eta overflowing): the line search steps back
            return np.inf
        self.last = (x.copy(), res)
        if np.isfinite(value):
            self.warm.u = res.u
        return value

    def grad(self, x: np.ndarray) -> np.ndarray:
        if self.last is None or not np.array_equal(self.last[0], x):
            self.value(x)
        if self.last is None or not np.array_equal(self.last[0], x):  # PIRLS failed at x: BFGS stops
            return np.full(x.size, np.nan)
        res, base = self.last[1], self.joint.base
        model = self.joint.model_at(x)
        theta, _ = base.params(x[:-1])
        modes: list = []
        d_lam, d_beta, d_log_theta = self.gradient.with_family_parameter(
            model.response, to_scaled(model, theta), res.eta, res.mu, res.u, modes
        )
        nt, du = base.ntheta, modes[0]
        dx = np.hstack([du[:, :nt] * base.units, du[:, nt:-1] @ base.scale, du[:, -1:]])
        self.prediction = (x.copy(), res.u, dx)
        return np.concatenate([d_lam * base.units, base.scale.T @ d_beta, [d_log_theta]])


def _start_curvature(joint: _JointCriterion, warm: _WarmStart, mu: np.ndarray) -> np.ndarray:
    """BFGS's start for the inverse Hessian over the joint coordinates.

    Over (theta, delta): :meth:`.fit._Criterion.curvature` from the Poisson start's BFGS (the
    theta block; ``I / 2`` for the whitened beta), or ``I / 2`` throughout without one.  Over
    ``log theta``: the inverse of the second derivative of ``-2 log L`` at the start's means
    (its explicit part: the modes held), ``-2 sum wt (k g + k^2 g')`` with ``g = d log p / dk``.
    """
    base = joint.base
    block = base.curvature(warm.curvature)
    if block is None:
        block = np.eye(base.lower.size) / 2.0
    r, k = base.model.response, base.model.family.theta
    g = special.digamma(r.y + k) - special.digamma(k) + np.log(k) + 1.0 - np.log(mu + k) - (r.y + k) / (mu + k)
    dg = special.polygamma(1, r.y + k) - special.polygamma(1, k) + 1.0 / k - 1.0 / (mu + k) - (mu - r.y) / (mu + k) ** 2
    second = -2.0 * float(r.weights @ (k * g + k * k * dg))
    out = np.zeros((block.shape[0] + 1,) * 2)
    out[:-1, :-1] = block
    out[-1, -1] = 1.0 / second if second > 0 else 1.0
    return out


def _joint_stage(
    joint: _JointCriterion, x0: np.ndarray, settings: OptimizerSettings, warm: _WarmStart, mu: np.ndarray
) -> OptInfo:
    """BFGS with the analytic gradient where it applies (:class:`_JointDerivatives`), BOBYQA from its end
    if it did not converge (or where there is no gradient: an ``"observed"`` Laplace, a vector term)."""
    gradient = _laplace_gradient(joint.base.model) if joint.base.nAGQ == 1 else None
    first = None
    if gradient is not None and settings.optimizer in ("auto", "bfgs"):
        derivatives = _JointDerivatives(joint, gradient, warm)
        first = minimize_quasi_newton(
            derivatives.value, derivatives.grad, x0, settings, inverse_hessian=_start_curvature(joint, warm, mu)
        )
        nt = joint.base.ntheta
        x = np.concatenate([np.abs(first.final[:nt]), first.final[nt:]])  # even in each scalar theta
        x[-1] = np.clip(x[-1], joint.lower[-1], joint.upper[-1])
        first = first.updated(final=x)
        if first.return_code > 0 and first.return_code != 5:  # converged (5: out of evaluations)
            return first
        x0 = x

    def objective(x: np.ndarray) -> float:
        value, res = joint.evaluate(x, warm.u)
        if np.isfinite(value):
            warm.u = res.u
        return value

    info = minimize_bounded(objective, x0, joint.lower, _finite_or_none(joint.upper), settings=settings)
    if first is None:
        return info
    return info.updated(initial=first.initial, feval=info.feval + first.feval, geval=first.geval)


def _criterion_for(base: _Criterion, model: GeneralizedLinearMixedModel) -> _Criterion:
    """``base`` (the same coordinates) for another family of the same model."""
    other = copy.copy(base)
    other.model = model
    return other


def _poisson_start(model: GeneralizedLinearMixedModel, settings: OptimizerSettings, warm: _WarmStart):
    """A Poisson GLMM's ``nAGQ = 0`` stage: the covariance parameters, and theta from its means (MASS's theta.ml)."""
    poisson = model.with_family(Poisson(link=model.family.link.name))
    info, res = _stage1(poisson, _start_settings(settings), warm, start=True)
    return info, theta_ml(model.response.y, res.mu, model.response.weights)


def fit_negbin(model: GeneralizedLinearMixedModel, nAGQ: int, settings: OptimizerSettings) -> GlmerResults:
    """The stages of the module docstring; ``model`` has a negative binomial family (its theta is replaced)."""
    with one_blas_thread():
        start = time.perf_counter()
        warm = _WarmStart(np.zeros(model.nranef))
        info1, theta0 = _poisson_start(model, settings, warm)
        model = model.with_family(model.family.with_theta(theta0))
        res1 = model.pirls.joint(info1.final, warm.beta, warm.u, model.eta_start())
        warm.beta, warm.u = res1.beta, res1.u
        base = _Criterion(model, nAGQ, res1.beta, _x_block_inverse_factor(model, info1.final, res1), info1.final)
        joint = _JointCriterion(base, model.family.theta)

        info = _joint_stage(joint, joint.x0(info1.final), settings, warm, res1.mu)
        fitted = joint.model_at(info.final)
        crit = _criterion_for(base, fitted)
        value, res = crit.evaluate(info.final[:-1], warm.u)
        done = _finish(crit, info.final[:-1], value, res)
        theta, beta = crit.params(done.x)
        stages = Stages(info1, res1, info, theta, beta, done.res, done.value, done.vcov, list(done.messages))
        return make_results(fitted, nAGQ, stages, start, family_npar=1, stacklevel=4)


@argument_kinds(
    data=FitData(),
    link=Text(),
    laplace=Text(),
    settings=Instance(OptimizerSettings, what="an OptimizerSettings", allow_none=True),
)
def glmer_nb(
    formula: str,
    data: pd.DataFrame,
    *,
    link: str = "log",
    laplace: str = "expected",
    nAGQ: int = 1,
    weights: Any = None,
    offset: Any = None,
    contrasts: Mapping[str, str] | None = None,
    settings: OptimizerSettings | None = None,
) -> GlmerResults:
    """Fit a negative binomial GLMM, estimating theta (lme4's ``glmer.nb``).

    Parameters
    ----------
    formula : str
        e.g. ``"TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)"``; the
        response is a count.
    data : DataFrame
    link : str
        ``"log"`` (default), ``"sqrt"`` or ``"identity"``.
    laplace : str
        ``"expected"`` (default): lme4's Laplace approximation, with the
        expected information (the PIRLS weights) in its log-determinant;
        ``"observed"``: glmmTMB's, with the observed information.  The NB log
        link is not canonical, so the two differ (by 0.003-0.07 in the
        log-likelihood on grouseticks and Owls); each gives its program's answer.
    nAGQ : int
        1 (Laplace, default) or, for one scalar random-effects term, the
        number of adaptive quadrature points.
    weights, offset, contrasts, settings
        As for :func:`mixedmodels.glmer`.

    Returns
    -------
    GlmerResults
        ``m.family`` is a :class:`~mixedmodels.families.NegativeBinomial` with
        the estimated ``theta`` (``m.family.theta``), which the summary shows
        as lme4's ``Negative Binomial(3.3034)``; ``npar`` counts it.  The
        covariance of beta is lme4's: given theta.

    Notes
    -----
    theta is estimated jointly with the other parameters (see
    :mod:`mixedmodels.glmm.negbin`), under lme4's Laplace approximation; for a
    known theta use ``mm.glmer(..., family=mm.families.NegativeBinomial(theta=...))``.
    """
    if is_dask_input(data) and FitData().accepts(data):
        raise NotOnDaskError(
            "glmer_nb() is not available on Dask: estimating the negative binomial theta needs a pass "
            "over the rows for every theta tried (its likelihood's constant depends on it); fit the "
            "model in memory, or fit mm.glmer(..., family='poisson') on Dask"
        )
    data = as_pandas(data)  # polars DataFrames and pyarrow Tables are fitted as their pandas copies
    check_arguments(locals())
    if nAGQ == 0:
        raise ModelSpecError(
            "glmer_nb() estimates theta from the Laplace (nAGQ=1) or quadrature likelihood; nAGQ=0 is not available"
        )
    if laplace not in ("expected", "observed"):
        raise ModelSpecError(
            f"laplace must be 'expected' (lme4's approximation) or 'observed' (glmmTMB's), not {laplace!r}"
        )
    inputs = prepare_glmm_inputs(formula, data, weights=weights, offset=offset, contrasts=contrasts)
    model = replace(GeneralizedLinearMixedModel.from_inputs(inputs, NegativeBinomial(1.0, link=link)), laplace=laplace)
    return fit_negbin(model, model.check_nagq(nAGQ), settings or GLMM_SETTINGS)

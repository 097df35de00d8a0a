"""Fitting a GLMM: lme4's two optimization stages and the Hessian-based covariance of beta.

Theta is optimized in the units of unit-RMS random-effects columns (as for
lmer), so the fit does not depend on the units of the covariates.
Stage 1 minimizes the ``nAGQ = 0`` criterion over theta alone: for each theta,
PIRLS finds beta and the modes u together and the Laplace formula is
evaluated there.  Stage 2 (``nAGQ >= 1``) minimizes the Laplace (or adaptive
quadrature) deviance over theta and beta together, starting from stage 1.
To make BOBYQA's trust region round, beta is optimized in whitened
coordinates ``beta = beta_1 + C delta`` where ``C C'`` is stage 1's
covariance of beta (so the deviance is close to ``||delta||^2`` in delta).

The covariance of beta is lme4's default (``use.hessian = TRUE``): the beta
block of ``2 H^-1`` where ``H`` is the central finite-difference Hessian of the
deviance over (theta, beta).  PIRLS restarts from the optimum's modes at every
difference point, so the deviance is a smooth, deterministic function there.
"""

from __future__ import annotations

import time

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable

import numpy as np

from .._threads import one_blas_thread
from ..fitted import GeneralizedMixedModel
from ..linalg.dense import triangular_inverse
from ..linalg.laplace_gradient import LaplaceGradient
from ..linalg.laplace_gradient_links import LinkLaplaceGradient
from ..linalg.one_term import fit_one_term, one_term_applies
from ..linalg.pirls_scalar import SparseScalarSystem
from ..optim import OptimizerSettings, OptInfo, bfgs_inverse_hessian, minimize_bounded, minimize_quasi_newton
from .checks import GRADIENT_TOLERANCE, gradient_message as _gradient_message, warn_fit
from .compiled import compiled_results
from .results import GlmerResults
from .scalar_search import minimize_even_scalar

if TYPE_CHECKING:
    from ..linalg.pirls import PirlsResult

__all__ = ["fit_glmm", "fd_hessian", "GlmmStart", "GRADIENT_TOLERANCE", "Stages", "make_results"]

# finite-difference steps: in theta's stage-2 units (relative to its stage-1 value), and in
# whitened beta (units of the stage-1 SEs, where the deviance is close to ||delta||^2, so
# 1 % of an SE is still a short step)
_STEP_THETA = 5e-3
_STEP_BETA = 1e-2
_FORWARD_SHARE = 2e-2  # forward differences of the analytic gradient: steps this share of the above
_BOUNDARY = 1e-4  # diagonal thetas below this are held at the boundary in the Hessian
_NEWTON_ROUNDS = 3  # Hessians at most: a Newton step longer than _HESSIAN_HOLDS gets a new one
# A Newton step this long (whitened units) changes the Hessian little: on VerbAgg a step of 0.011
# moved the SEs from the Hessian by <= 2e-4 relative, so 0.02 keeps them within ~4e-4 (a new
# Hessian costs d(d+1) PIRLS runs: 72 on VerbAgg)
_HESSIAN_HOLDS = 2e-2
# Stage 1 only gives stage 2 its start (and its whitening of beta) when nAGQ >= 1: deviance
# changes below 1e-3 there are refined by stage 2 anyway (VerbAgg 39 -> ~20 stage-1 evaluations)
_START_TOLERANCES = dict(ftol_rel=1e-6, ftol_abs=1e-3, xtol_rel=1e-3, xtol_abs=1e-3)
# ... and its PIRLS stops at steps this small (not 1e-10), keeping the factor from before the step: the
# criterion is then off by ~1e-9 q (3e-7 on VerbAgg), far below stage 1's tolerance, for ~2 fewer
# iterations a run (the last steps stall at ~1e-12, above the 1e-13 at which the factor is kept)
_START_PIRLS_TOL = 1e-9
# The Hessian's difference points need the modes (for the gradient), not the factor at them: PIRLS stops
# after a step below this (Newton's convergence leaves the modes within ~its square), not one pass later
_MODES_TOL = 1e-8
# Stage 1 mirrors the modes' prediction to a theta of the other sign only this near (scaled theta units):
# a first-order prediction from farther is no start (the line search's far trial points; there the
# unmirrored prediction's invalid mean sends the search back at once, as before)
_MIRROR_REACH = 1.0


def _start_settings(settings: OptimizerSettings) -> OptimizerSettings:
    """Stage 1's settings when stage 2 follows: each tolerance the looser of the given and ``_START_TOLERANCES``."""
    return replace(settings, **{k: max(getattr(settings, k), v) for k, v in _START_TOLERANCES.items()})


@dataclass
class _WarmStart:
    """Modes (and beta) of the last successful PIRLS run, to start the next one from."""

    u: np.ndarray
    beta: np.ndarray | None = None
    last: tuple | None = None  # (x, PIRLS result, deviance) of the last stage-2 evaluation
    prediction: tuple | None = None  # (x, u, du/dx) at the last gradient
    curvature: np.ndarray | None = None  # stage 1's BFGS inverse Hessian over the scaled theta

    def start_for(self, x: np.ndarray) -> np.ndarray:
        """PIRLS's start at x: the first-order prediction of the modes from the last gradient, else u."""
        if self.prediction is None:
            return self.u
        base, u, du = self.prediction
        return u + du @ (x - base)


def _laplace_gradient(model):
    """The model's :class:`.linalg.laplace_gradient.LaplaceGradient`, built once; None where it does not apply.

    A model whose rows are not in memory (``rows_in_memory`` False: a fit on
    Dask) has none.  Where PIRLS factors the system as a sparse ``L D L'``
    (:class:`.linalg.pirls_scalar.SparseScalarSystem`, chosen when that has
    little fill), the gradient uses that factor (a selected inverse on its
    pattern): on grouseticks 0.1 ms a gradient where the dense rest block
    cost 7 ms.
    """
    if "_laplace_gradient" not in model.__dict__:
        gradient = None
        # the gradient reads each term's columns row by row: not for a model whose rows stay on Dask's workers
        columns = _scalar_columns(model) if getattr(model, "rows_in_memory", True) else None
        if columns is not None:
            refs, z, nlevels, permutation = columns
            system = model.pirls._system if isinstance(model.pirls._system, SparseScalarSystem) else None
            kind = LaplaceGradient if model.response.natural else LinkLaplaceGradient
            if getattr(model, "laplace", "expected") == "expected":  # glmmTMB's ("observed"): no gradient
                gradient = kind.build(refs, z, nlevels, model.pirls.x, model.response, permutation, system)
        model.__dict__["_laplace_gradient"] = gradient
    return model.__dict__["_laplace_gradient"]


def _scalar_columns(model):
    """The model's random effects as scalar terms, one per theta element, or None where they are not.

    A scalar unstructured term is one; a ``diag`` term's columns are one each (independent
    effects on the same levels, theta their SDs in order), with the permutation that reads the
    model's level-by-level modes term by term.  Other structures (and vector unstructured
    terms) have no gradient here.
    """
    refs, z, nlevels, permutation, offset = [], [], [], [], 0
    for term, lay in zip(model.inputs.terms, model.layouts):
        diagonal = lay.structure.name == "diag" or (term.ncols == 1 and lay.structure.is_default())
        if not diagonal:
            return None
        scales = lay.scales if lay.scales is not None else np.ones(term.ncols)
        for j in range(term.ncols):
            refs.append(term.refs)
            z.append(term.z[:, j] / scales[j])
            nlevels.append(term.nlevels)
            permutation.append(offset + np.arange(term.nlevels) * term.ncols + j)
        offset += term.nlevels * term.ncols
    order = np.concatenate(permutation)
    return refs, z, nlevels, None if np.array_equal(order, np.arange(order.size)) else order


def _mode_elements(model) -> np.ndarray:
    """For each random effect (the model's order), the index of the scalar theta element scaling it.

    For models whose terms are scalar or ``diag`` (those with a Laplace gradient): a ``diag``
    term's effects are level by level, its columns' elements in order.
    """
    elements, start = [], 0
    for term, lay in zip(model.inputs.terms, model.layouts):
        elements.append(np.tile(start + np.arange(term.ncols), term.nlevels))
        start += term.ncols
    return np.concatenate(elements) if elements else np.zeros(0, dtype=np.intp)


def to_scaled(model, theta: np.ndarray) -> np.ndarray:
    """Theta in the units of the unit-RMS random-effects columns (what the optimizer sees)."""
    return np.asarray(theta, dtype=float) * model.theta_scales


def from_scaled(model, scaled: np.ndarray) -> np.ndarray:
    """Theta in the units of the data from its scaled version."""
    return np.asarray(scaled, dtype=float) / model.theta_scales


def _x_block_inverse_factor(model: GeneralizedMixedModel, theta: np.ndarray, res: "PirlsResult") -> np.ndarray:
    """``C`` with ``C C' = sigma^2 (R_X' R_X)^-1`` (the RX covariance of beta), from the X block
    of the joint blocked factor at a PIRLS solution; sigma is 1 for families without a dispersion."""
    lx, _ = model.pirls.joint_factor(theta, res).fixed_factor()
    return model.sigma_at(res) * triangular_inverse(lx).T


def _stage1(
    model, settings: OptimizerSettings, warm: _WarmStart, theta0: np.ndarray | None = None, start: bool = False
) -> tuple[OptInfo, "PirlsResult"]:
    """Minimize the nAGQ = 0 criterion over theta (beta and u from PIRLS), from ``theta0`` or lme4's start.

    ``start``: the result only starts stage 2.  Then BFGS with the criterion's gradient
    (:meth:`.linalg.laplace_gradient.LaplaceGradient.profiled`) where the Laplace gradient applies,
    PIRLS stopping at steps below ``_START_PIRLS_TOL``; else (and for an ``nAGQ = 0`` fit, whose
    answer this is) BOBYQA, as lme4.
    """
    theta0 = model.theta_start if theta0 is None else theta0
    gradient = _laplace_gradient(model) if start else None
    if gradient is not None and settings.optimizer in ("auto", "bfgs"):
        return _ProfiledCriterion(model, gradient, warm, _START_PIRLS_TOL).minimize(theta0, settings)
    pirls, eta0 = model.pirls, model.eta_start()

    def objective(scaled: np.ndarray) -> float:
        res = pirls.joint(from_scaled(model, scaled), warm.beta, warm.u, eta0)
        value = model.laplace_value(res)
        if np.isfinite(value):
            warm.beta, warm.u = res.beta, res.u
        return value

    info = minimize_bounded(
        objective, to_scaled(model, theta0), model.theta_lower, _finite_or_none(model.theta_upper), settings=settings
    )
    info = info.updated(initial=theta0, final=from_scaled(model, info.final))
    res = pirls.joint(info.final, warm.beta, warm.u, eta0)
    return info, res


class _ProfiledCriterion:
    """The nAGQ = 0 criterion over the scaled theta (unconstrained: even in each scalar theta), for BFGS.

    Keeps the last joint PIRLS solution for the gradient there, and after each
    gradient the first-order prediction of beta and u, PIRLS's start nearby.
    """

    def __init__(self, model, gradient, warm: _WarmStart, tol: float | None = None):
        self.model, self.gradient, self.warm, self.eta0 = model, gradient, warm, model.eta_start()
        self.tol = tol  # PIRLS's, when looser than the model's (see :meth:`.linalg.pirls.Pirls.joint`)
        self.last: tuple | None = None
        self.prediction: tuple | None = None
        self.points: list[tuple[np.ndarray, np.ndarray]] = []  # (x, gradient) where BFGS asked for one
        self.mode_elements = _mode_elements(model)  # the theta element each mode is scaled by

    def start_for(self, x: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """PIRLS's start (beta, u) at x: the first-order prediction from the last gradient, else the last solution.

        The criterion is even in each scalar theta, and a term's modes change sign with its
        theta: the prediction is made at ``|x|`` (from the base's mirror image there) and
        mirrored to x's signs, so a line search stepping across 0 starts next to its modes
        (Owls with a known theta: 24 PIRLS iterations at theta -0.93 from the unmirrored
        prediction, 5 from the mirrored one).  Only within ``_MIRROR_REACH`` of the base: from
        farther the unmirrored prediction is kept (on grouseticks' ``diag(1 + cHEIGHT | LOCATION)``
        a mirrored start 19 units away let PIRLS run 200 iterations where the unmirrored one's
        invalid mean stops at once, and changed BFGS's path).
        """
        if self.prediction is None:
            return self.warm.beta, self.warm.u
        base, u, du, beta, dbeta = self.prediction
        base_signs, x_signs = np.sign(base) + (base == 0), np.sign(x) + (x == 0)
        move = base_signs * (np.abs(x) - np.abs(base))  # (x - base) in the base's own orthant, from |x|
        if np.array_equal(base_signs, x_signs) or np.max(np.abs(move)) > _MIRROR_REACH:
            return beta + dbeta @ (x - base), u + du @ (x - base)
        elements = self.mode_elements
        modes = base_signs[elements] * (u + du @ move)  # the modes at |x|
        return beta + dbeta @ move, x_signs[elements] * modes

    def value(self, x: np.ndarray) -> float:
        beta0, u0 = self.start_for(x)
        try:
            res = self.model.pirls.joint(from_scaled(self.model, x), beta0, u0, self.eta0, self.tol)
        except np.linalg.LinAlgError:  # a step far out (eta overflowing): the line search steps back
            return np.inf
        self.last = (x.copy(), res)
        value = self.model.laplace_value(res)
        if np.isfinite(value):
            self.warm.beta, self.warm.u = res.beta, res.u
        return value

    def grad(self, x: np.ndarray) -> np.ndarray:
        if self.last is None or not np.array_equal(self.last[0], x):
            self.value(x)
        res = self.last[1]
        g, dbeta, du = self.gradient.profiled(x, res.eta, res.mu, res.u)
        self.prediction = (x.copy(), res.u, du, res.beta, dbeta)
        self.points.append((x.copy(), g))
        return g

    def minimize(self, theta0: np.ndarray, settings: OptimizerSettings) -> tuple[OptInfo, "PirlsResult"]:
        x0 = to_scaled(self.model, theta0)
        search = minimize_even_scalar if x0.size == 1 else minimize_quasi_newton  # one theta: a 1-D search
        info = search(self.value, self.grad, x0, settings)
        signs = np.where(info.final < 0, -1.0, 1.0)
        x = np.abs(info.final)
        if self.last is not None and np.array_equal(self.last[0], x):
            res = self.last[1]
        else:  # a negative theta: the same criterion, its term's modes change sign
            self.value(x)
            res = self.last[1]
        info = info.updated(initial=theta0, final=from_scaled(self.model, x))
        curvature = bfgs_inverse_hessian(*map(list, zip(*self.points))) if self.points else None
        # at |x| instead of x: a coordinate whose sign flipped flips its cross terms
        self.warm.curvature = None if curvature is None else curvature * np.outer(signs, signs)
        return info, res


def _finite_or_none(upper: np.ndarray) -> np.ndarray | None:
    """Upper bounds for the optimizer, or None when there are none (only ``cs`` and ``ar1`` correlations have one)."""
    return None if np.all(np.isinf(upper)) else upper


def _theta_units(model, theta1: np.ndarray) -> np.ndarray:
    """Stage 2's unit for each (scaled) theta: the stage-1 value of the SD it scales (the diagonal
    element of its row, for an unstructured term), or 1 for a correlation parameter.

    BOBYQA then moves theta by relative steps (and does not shift a small
    starting value onto the bound); an SD below 1e-4 (or at 0) keeps unit 1.
    """
    scaled, units = to_scaled(model, theta1), []
    for lay in model.layouts:
        index = lay.structure.unit_index(lay.ncols)
        units.extend(abs(scaled[lay.theta_start + i]) if i >= 0 else 1.0 for i in index)
    units = np.asarray(units)
    return np.where(units > _BOUNDARY, units, 1.0)


class _Criterion:
    """The stage-2 deviance as a function of the optimizer's ``x = (scaled theta / units, delta)``,
    ``beta = beta_1 + C delta``."""

    def __init__(self, model, nAGQ: int, beta1: np.ndarray, scale: np.ndarray, theta1: np.ndarray):
        self.model, self.nAGQ, self.beta1, self.scale = model, nAGQ, beta1, scale
        self.ntheta = model.theta_lower.size
        self.units = _theta_units(model, theta1)
        self.lower = np.concatenate([model.theta_lower, np.full(model.nfixef, -np.inf)])
        self.upper = np.concatenate([model.theta_upper, np.full(model.nfixef, np.inf)])  # correlations: unit 1

    def curvature(self, theta_block: np.ndarray | None) -> np.ndarray | None:
        """BFGS's start for the inverse Hessian over x, from stage 1's over the scaled theta (None: none).

        Stage 1's criterion is the deviance with beta profiled out (nearly: by the penalized
        deviance), so its inverse Hessian is close to the theta block of the inverse Hessian
        over (theta, beta); in delta the deviance is close to ``||delta - delta*||^2`` (the
        whitening), whose inverse Hessian is ``I / 2``.  The cross terms start at 0.
        """
        if theta_block is None or theta_block.shape[0] != self.ntheta:
            return None
        start = np.eye(self.lower.size) / 2.0
        start[: self.ntheta, : self.ntheta] = theta_block / np.outer(self.units, self.units)
        return start

    def x0(self, theta: np.ndarray) -> np.ndarray:
        return np.concatenate([to_scaled(self.model, theta) / self.units, np.zeros(self.model.nfixef)])

    def params(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        theta = from_scaled(self.model, x[: self.ntheta] * self.units)
        return theta, self.beta1 + self.scale @ x[self.ntheta :]

    def evaluate(self, x: np.ndarray, u0: np.ndarray, tol: float | None = None) -> tuple[float, "PirlsResult"]:
        theta, beta = self.params(x)
        pirls = self.model.pirls  # (a Dask model's PIRLS takes no tol: only the gradient's difference points pass one)
        res = pirls.modes(theta, beta, u0) if tol is None else pirls.modes(theta, beta, u0, tol)
        if self.nAGQ == 1:
            return self.model.laplace_value(res), res
        return self.model.agq_value(res, theta, beta, self.nAGQ), res

    @property
    def gradient(self):
        """The Laplace deviance's gradient (:class:`.linalg.laplace_gradient.LaplaceGradient`), or None."""
        return _laplace_gradient(self.model) if self.nAGQ == 1 else None

    def gradient_at(self, x: np.ndarray, res: "PirlsResult", warm: "_WarmStart | None" = None) -> np.ndarray:
        """The gradient over the optimizer's ``x`` at a PIRLS solution for ``x``.

        With ``warm``, also keeps ``(x, u, du/dx)`` there: PIRLS at points near
        x then starts from the modes' first-order prediction (one or two
        iterations fewer than from ``u``).
        """
        theta, _ = self.params(x)
        modes: list = []
        d_lam, d_beta = self.gradient(to_scaled(self.model, theta), res.eta, res.mu, res.u, modes)
        if warm is not None:
            ntheta = self.ntheta
            du = np.hstack([modes[0][:, :ntheta] * self.units, modes[0][:, ntheta:] @ self.scale])
            warm.prediction = (x.copy(), res.u, du)
        return np.concatenate([d_lam * self.units, self.scale.T @ d_beta])

    def value_for(self, warm: _WarmStart):
        """``x -> deviance``, keeping the last PIRLS solution for :meth:`gradient_for` and warm starts."""

        def value(x: np.ndarray) -> float:
            try:
                result, res = self.evaluate(x, warm.start_for(x))
            except np.linalg.LinAlgError:  # a step far out (NaN weights, M not positive definite): step back
                return np.inf
            warm.last = (x.copy(), res, result)
            if np.isfinite(result):
                warm.u = res.u
            return result

        return value

    def at_optimum(self, x: np.ndarray, warm: _WarmStart) -> tuple[float, "PirlsResult"]:
        """The deviance and PIRLS result at the optimizer's optimum: the last evaluation's where that was at
        x (BFGS ends at the point it evaluated last), else a new PIRLS run there.

        (A new run from the modes there gave the same numbers to rounding for one more PIRLS run a fit.)
        """
        last = warm.last
        if last is not None and np.array_equal(last[0], x):
            return last[2], last[1]
        return self.evaluate(x, warm.u)

    def gradient_for(self, warm: _WarmStart):
        def gradient(x: np.ndarray) -> np.ndarray:
            last = warm.last
            res = last[1] if last is not None and np.array_equal(last[0], x) else self.evaluate(x, warm.u)[1]
            return self.gradient_at(x, res, warm)

        return gradient

    def to_natural(self, grad: np.ndarray, hess: np.ndarray, free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gradient and Hessian over the free (theta, beta) instead of (scaled theta, delta)."""
        scales = 1.0 / from_scaled(self.model, self.units)  # d x / d theta
        jac = np.zeros((free.size, free.size))
        jac[: self.ntheta, : self.ntheta] = np.diag(scales)
        jac[self.ntheta :, self.ntheta :] = np.linalg.inv(self.scale)
        jac = jac[np.ix_(free, free)]
        return jac.T @ grad, jac.T @ hess @ jac


def _stage2(
    model, nAGQ: int, theta1: np.ndarray, res1: "PirlsResult", settings: OptimizerSettings, warm: _WarmStart
) -> tuple[OptInfo, _Criterion]:
    """Minimize the Laplace / quadrature deviance over theta and (whitened) beta.

    BFGS with the analytic gradient (:mod:`.linalg.laplace_gradient`) where it
    applies (Laplace, scalar terms; :mod:`.linalg.laplace_gradient_links` for non-canonical links), else BOBYQA.
    """
    crit = _Criterion(model, nAGQ, res1.beta, _x_block_inverse_factor(model, theta1, res1), theta1)
    if crit.gradient is not None and settings.optimizer in ("auto", "bfgs"):
        info = minimize_quasi_newton(
            crit.value_for(warm),
            crit.gradient_for(warm),
            crit.x0(theta1),
            settings,
            inverse_hessian=crit.curvature(warm.curvature),
        )
        x = np.concatenate([np.abs(info.final[: crit.ntheta]), info.final[crit.ntheta :]])  # even in each scalar theta
        return info.updated(final=x), crit

    def objective(x: np.ndarray) -> float:
        value, res = crit.evaluate(x, warm.u)
        if np.isfinite(value):
            warm.u = res.u
        return value

    return minimize_bounded(
        objective, crit.x0(theta1), crit.lower, _finite_or_none(crit.upper), settings=settings
    ), crit


def fd_hessian(
    func: Callable[[np.ndarray], float], x: np.ndarray, steps: np.ndarray, f0: float | None = None
) -> tuple[float, np.ndarray, np.ndarray]:
    """Central finite-difference value, gradient and Hessian of ``func`` at ``x``.

    Uses ``d(d+1)`` evaluations: ``f(x +- h_i e_i)`` for the diagonal and the
    gradient, and ``f(x +- (h_i e_i + h_j e_j))`` for each pair, with

        H_ij = [f(x+i+j) - f(x+i) - f(x+j) + 2 f(x) - f(x-i) - f(x-j) + f(x-i-j)] / (2 h_i h_j),

    which is exact for quadratics (error O(h^2)).
    """
    d = x.size
    f0 = func(x) if f0 is None else f0
    plus, minus = np.empty(d), np.empty(d)
    hess = np.empty((d, d))
    for i in range(d):
        e = np.zeros(d)
        e[i] = steps[i]
        plus[i], minus[i] = func(x + e), func(x - e)
        hess[i, i] = (plus[i] - 2.0 * f0 + minus[i]) / steps[i] ** 2
    for i in range(d):
        for j in range(i):
            e = np.zeros(d)
            e[i], e[j] = steps[i], steps[j]
            both = func(x + e) + func(x - e)
            hess[i, j] = hess[j, i] = (both - plus[i] - plus[j] + 2.0 * f0 - minus[i] - minus[j]) / (
                2.0 * steps[i] * steps[j]
            )
    return f0, (plus - minus) / (2.0 * steps), hess


def _newton_step(hess: np.ndarray, grad: np.ndarray) -> np.ndarray | None:
    """``-H^-1 g`` when H is positive definite and the step is small enough to trust."""
    try:
        step = -np.linalg.solve(hess, grad)
        np.linalg.cholesky(hess)
    except np.linalg.LinAlgError:
        return None
    return step if np.all(np.isfinite(step)) and np.max(np.abs(step)) < 0.1 else None


@dataclass
class _Finish:
    x: np.ndarray
    value: float
    res: "PirlsResult"
    vcov: np.ndarray | None
    messages: list[str]


def _finish(crit: _Criterion, x_hat: np.ndarray, f_hat: float, res_hat: "PirlsResult") -> _Finish:
    """Hessian at the optimizer's optimum and Newton steps to polish it, the covariance of beta
    (beta block of ``2 H^-1``) and lme4's gradient check at the final point.

    Diagonal thetas at the boundary (< 1e-4) are held fixed.  Every
    difference point restarts PIRLS from the optimum's modes, so the
    deviance is a smooth function of x there.
    """
    theta_hat = crit.params(x_hat)[0]
    values = np.concatenate([theta_hat, np.ones(crit.lower.size - crit.ntheta)])
    near_bound = (values - crit.lower < 2 * _STEP_THETA) | (
        crit.upper - values < 2 * _STEP_THETA
    )  # correlations near +-1
    free = ~(((crit.lower == 0) & (values < _BOUNDARY)) | ((crit.lower != 0) & near_bound))
    x, value, res, grad, hess = _polish(crit, free, x_hat, f_hat, res_hat)
    messages = []
    message = _gradient_message(*crit.to_natural(grad, hess, free))
    if message:
        messages.append(message)
    vcov = _beta_covariance(crit, hess, int(free[: crit.ntheta].sum()))
    if vcov is None:
        messages.append(
            "variance-covariance matrix computed from finite-difference Hessian is not "
            "positive definite: falling back to var-cov estimated from RX"
        )
    return _Finish(x, value, res, vcov, messages)


def _polish(crit: _Criterion, free: np.ndarray, x: np.ndarray, value: float, res: "PirlsResult"):
    """Newton steps with the finite-difference Hessian over the free coordinates.

    A step longer than 0.02 (theta units, or SEs of beta) gets a new Hessian at
    its end point, so the covariance is the Hessian's at the final point (to
    under 0.05 %); a shorter one only a new gradient.  Returns the final
    point, its deviance and PIRLS result, and the gradient and Hessian there.
    """
    steps = np.concatenate([np.full(crit.ntheta, _STEP_THETA), np.full(crit.lower.size - crit.ntheta, _STEP_BETA)])[
        free
    ]
    derivatives = _gradient_derivatives if crit.gradient is not None else _fd_derivatives
    for _ in range(_NEWTON_ROUNDS):
        grad, hess = derivatives(crit, free, x, steps, res.u)
        step = _newton_step(hess, grad)
        if step is None:
            break
        trial = x.copy()
        trial[free] += step
        if np.any(trial < crit.lower) or np.any(trial > crit.upper):
            break
        f_trial, res_trial = crit.evaluate(trial, res.u)
        if not f_trial < value:
            break
        x, value, res = trial, f_trial, res_trial
        if np.max(np.abs(step)) <= _HESSIAN_HOLDS:  # the Hessian still holds here: only re-measure the gradient
            grad = derivatives(crit, free, x, steps, res.u, hessian=False)[0]
            break
    return x, value, res, grad, hess


def _gradient_derivatives(
    crit: _Criterion, free: np.ndarray, x: np.ndarray, steps: np.ndarray, u_hat: np.ndarray, hessian: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """The analytic gradient over the free coordinates, and the Hessian by its forward differences
    (``d`` PIRLS runs and gradients instead of ``d (d + 1)`` runs; symmetrized).

    The gradient is exact to rounding (PIRLS converges quadratically to 1e-10), so forward
    differences with steps ``_FORWARD_SHARE`` of the central ones (1e-4 of theta, 2e-4 SEs of
    beta) are about as accurate as central ones of the full steps (truncation ``h f_3 / 2``
    against ``h^2 f_4 / 6``: ~2e-5 and ~4e-6 of the curvature; rounding ~1e-9 / h), for half
    the gradients.
    """
    index = np.flatnonzero(free)
    warm = _WarmStart(u_hat)

    def grad_at(delta: np.ndarray) -> np.ndarray:
        point = x.copy()
        point[index] += delta
        if delta.any():  # only the modes: PIRLS stops at a step below _MODES_TOL (the modes then exact to ~its square)
            _, res = crit.evaluate(point, warm.start_for(point), _MODES_TOL)
        else:
            _, res = crit.evaluate(point, u_hat)
        return crit.gradient_at(point, res, None if delta.any() else warm)[index]

    gradient = grad_at(np.zeros(index.size))  # keeps the modes' prediction for the difference points
    if not hessian:
        return gradient, None
    columns = []
    for i in range(index.size):
        e = np.zeros(index.size)
        e[i] = steps[i] * _FORWARD_SHARE
        columns.append((grad_at(e) - gradient) / e[i])
    hess = np.array(columns)
    return gradient, (hess + hess.T) / 2.0


def _fd_derivatives(
    crit: _Criterion, free: np.ndarray, x: np.ndarray, steps: np.ndarray, u_hat: np.ndarray, hessian: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Central-difference gradient and Hessian over the free coordinates (as :func:`fd_hessian`).

    Each difference point's PIRLS starts from a linear extrapolation of the
    modes already found (``u(x-i) ~ 2 u(x) - u(x+i)``, ``u(x+i+j) ~ u(x+i) + u(x+j) - u(x)``),
    within O(h^2) of its own modes, which saves about one PIRLS iteration per point.
    """
    d, index = steps.size, np.flatnonzero(free)

    def at(delta: np.ndarray, u0: np.ndarray) -> tuple[float, np.ndarray]:
        point = x.copy()
        point[index] += delta
        value, res = crit.evaluate(point, u0)
        return value, res.u

    plus, minus, u_plus, u_minus = np.empty(d), np.empty(d), [], []
    for i in range(d):
        e = np.zeros(d)
        e[i] = steps[i]
        plus[i], up = at(e, u_hat)
        minus[i], um = at(-e, 2.0 * u_hat - up)
        u_plus.append(up)
        u_minus.append(um)
    if not hessian:
        return (plus - minus) / (2.0 * steps), None
    f0, _ = crit.evaluate(x, u_hat)  # again from the same start as the difference points, for consistency
    hess = np.diag((plus - 2.0 * f0 + minus) / steps**2)
    for i in range(d):
        for j in range(i):
            e = np.zeros(d)
            e[i], e[j] = steps[i], steps[j]
            both = at(e, u_plus[i] + u_plus[j] - u_hat)[0] + at(-e, u_minus[i] + u_minus[j] - u_hat)[0]
            hess[i, j] = hess[j, i] = (both - plus[i] - plus[j] + 2.0 * f0 - minus[i] - minus[j]) / (
                2.0 * steps[i] * steps[j]
            )
    return (plus - minus) / (2.0 * steps), hess


def _beta_covariance(crit: _Criterion, hess: np.ndarray, nfree_theta: int) -> np.ndarray | None:
    """``C (2 H^-1)_{delta delta} C'``; None unless finite and positive definite."""
    try:
        inv = np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        return None
    vdelta = inv[nfree_theta:, nfree_theta:] + inv[nfree_theta:, nfree_theta:].T
    vcov = crit.scale @ vdelta @ crit.scale.T
    if vcov.size and (not np.all(np.isfinite(vcov)) or np.min(np.linalg.eigvalsh(vcov)) <= 0):
        return None
    return vcov


def fit_glmm(
    model: GeneralizedMixedModel, nAGQ: int, settings: OptimizerSettings, start: "GlmmStart | None" = None
) -> GlmerResults:
    """Both stages, the final PIRLS, the covariance of beta, and the results object.

    With a ``start`` (lme4's ``start = list(theta, fixef)``), stage 1 starts at
    its theta; given fixef too (and nAGQ >= 1), stage 1 is skipped and stage 2
    starts at (theta, fixef), as lme4's ``influence`` refits do.

    The general path runs with one BLAS thread (every matrix of a GLMM fit is small); the compiled fit of
    one scalar term calls no BLAS and sets no limit.
    """
    return _fit(model, nAGQ, settings, start)


@dataclass(frozen=True)
class GlmmStart:
    """Where a glmer fit starts: theta, and optionally the fixed effects."""

    theta: np.ndarray
    fixef: np.ndarray | None = None


def _given_start(model, start: GlmmStart, warm: _WarmStart) -> tuple[OptInfo, "PirlsResult"]:
    """Stage 1's place taken by the given (theta, fixef): PIRLS for the modes there."""
    res = model.pirls.modes(start.theta, start.fixef, warm.u)
    warm.u, warm.beta = res.u, start.fixef
    info = OptInfo(
        "none (start given)",
        start.theta.copy(),
        start.theta.copy(),
        model.laplace_value(res),
        0,
        0.0,
        1,
        "stage 1 skipped: theta and fixef given",
    )
    return info, res


def _fit(model: GeneralizedMixedModel, nAGQ: int, settings: OptimizerSettings, given: GlmmStart | None) -> GlmerResults:
    start = time.perf_counter()
    if given is None and one_term_applies(model, nAGQ, settings.optimizer):
        fast = fit_one_term(model)
        if fast is not None:
            return compiled_results(model, fast, settings, start)
    with one_blas_thread():  # (the same depth of calls: the warnings' stacklevel counts the frames)
        warm = _WarmStart(np.zeros(model.nranef))
        if given is not None and given.fixef is not None and nAGQ > 0:
            info1, res1 = _given_start(model, given, warm)
        else:
            if given is not None and given.fixef is not None:
                warm.beta = given.fixef
            theta0 = None if given is None else given.theta
            info1, res1 = _stage1(model, settings if nAGQ == 0 else _start_settings(settings), warm, theta0, nAGQ > 0)
        if nAGQ == 0:
            stages = Stages(info1, res1, info1, info1.final, res1.beta, res1, model.laplace_value(res1), None, [])
            return make_results(model, nAGQ, stages, start)
        info, crit = _stage2(model, nAGQ, info1.final, res1, settings, warm)
        value, res = crit.at_optimum(info.final, warm)
        done = _finish(crit, info.final, value, res)
        theta, beta = crit.params(done.x)
        stages = Stages(info1, res1, info, theta, beta, done.res, done.value, done.vcov, list(done.messages))
        return make_results(model, nAGQ, stages, start)


@dataclass
class Stages:
    """What the optimization stages found: both logs, the final estimates, PIRLS there, the covariance of beta."""

    info1: OptInfo
    res1: "PirlsResult"
    info: OptInfo  # the last stage's log (stage 1's for nAGQ = 0)
    theta: np.ndarray
    beta: np.ndarray
    res: "PirlsResult"
    value: float
    vcov: np.ndarray | None
    messages: list[str]


def make_results(
    model: GeneralizedMixedModel,
    nAGQ: int,
    stages: Stages,
    start: float,
    family_npar: int = 0,
    extra_evaluations: int = 0,
    stacklevel: int = 5,
) -> GlmerResults:
    """The results object from the stages (one optimizer log for both), with lme4's warnings
    (``stacklevel`` from here to the user's call)."""
    info1, info, messages = stages.info1, stages.info, list(stages.messages)
    for code_info in [info1] if nAGQ == 0 else [info1, info]:
        if code_info.return_code < 0 or code_info.return_code == 5:
            messages.append(f"optimizer did not converge: {code_info.message}")
    info = info.updated(
        initial=np.concatenate([info1.initial, stages.res1.beta]) if nAGQ else info1.initial,
        final=np.concatenate([stages.theta, stages.beta]),
        fmin=stages.value,
        feval=info1.feval + (info.feval if nAGQ else 0) + extra_evaluations,
        geval=info1.geval + (info.geval if nAGQ else 0),
        seconds=time.perf_counter() - start,
        warnings=tuple(messages),
    )
    # the results read the joint factor's blocks (conditional variances, prediction SEs, leverages)
    res = replace(stages.res, factor=model.pirls.joint_factor(stages.theta, stages.res))
    result = GlmerResults.from_fit(
        model, nAGQ, stages.theta, stages.beta, res, stages.value, info, stages.vcov, family_npar=family_npar
    )
    warn_fit(result, messages, stacklevel + 1)
    return result

"""A linear mixed model with a residual structure: the stored pieces and the joint optimization.

With ``e ~ N(0, sigma^2 R(rho))`` (:mod:`mixedmodels.design.residual`: ``var_ident``,
``cor_ar1``) the penalized least-squares problem is lme4's with ``[Z X y]' R^-1 [Z X y]``
in place of the cross-products, and the profiled objective gains ``log det R``:

    ML:    log|L|^2 + n (1 + log(2 pi r^2 / n)) + log det R(rho)
    REML:  log|L|^2 + log|R_X|^2 + (n - p)(1 + log(2 pi r^2 / (n - p))) + log det R(rho).

``R^-1`` is a weighted sum of fixed patterns, so the cross-products are a
weighted sum of stored pieces (:class:`~mixedmodels.linalg.weighted_blocks.WeightedBlocks`):
an evaluation at ``(theta, rho)`` adds the pieces up with ``rho``'s weights,
factors, and reads the objective off the factor, as lmer does.  BOBYQA
minimizes over ``theta`` (in the units of the scaled columns) and ``rho`` in
unbounded coordinates (``log delta``, ``atanh phi``) together.

The fitted model is the model at the estimated ``rho``
(:meth:`~mixedmodels.lmm.model.LinearMixedModel.at_residual`): its
cross-products are those at ``rho``, so everything that works on a model at
fixed variance parameters (the results, conditional modes and variances,
``results_at(theta)``) works on it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .._threads import blas_threads_for
from ..convergence import MAX_NOBS_FOR_CHECKS, check_convergence
from ..design.residual import ResidualStructure
from ..errors import DataError, ModelSpecError
from ..linalg import BlockedCrossProducts
from ..linalg.blocked import term_layouts
from ..linalg.weighted_blocks import WeightedBlocks
from ..optim import OptInfo, OptimizerSettings, minimize_bounded

__all__ = ["ResidualModel", "optimize_with_residual", "check_no_zero_weights"]


@dataclass(frozen=True, eq=False)
class ResidualModel:
    """A bound residual structure, its stored cross-products, and the parameters they are combined at.

    Attributes
    ----------
    structure : ResidualStructure
    blocks : WeightedBlocks
    params : ndarray
        ``delta`` of every stratum but the first, then ``phi`` (natural units).
    """

    structure: ResidualStructure
    blocks: WeightedBlocks
    params: np.ndarray

    @classmethod
    def build(
        cls,
        structure: ResidualStructure,
        refs: list[np.ndarray],
        zs: list[np.ndarray],
        nlevels: list[int],
        xy: np.ndarray,
        structures: list,
    ) -> "ResidualModel":
        """Store the pieces of ``[Z X y]' R^-1 [Z X y]`` (rows already scaled by sqrt(prior weights))."""
        layouts = term_layouts(zs, nlevels, structures)
        blocks = WeightedBlocks.build(refs, zs, nlevels, xy, layouts, structure.pieces)
        return cls(structure, blocks, structure.start())

    def crossprods(self, params: np.ndarray | None = None) -> BlockedCrossProducts:
        """The blocks at ``params`` (default: this model's)."""
        return self.blocks.combine(self.structure.coefficients(self.params if params is None else params))

    def at(self, params: np.ndarray) -> "ResidualModel":
        return replace(self, params=np.asarray(params, dtype=float).copy())

    def logdet(self, params: np.ndarray | None = None) -> float:
        return self.structure.logdet(self.params if params is None else params)

    @property
    def nparams(self) -> int:
        return self.structure.nparams


def check_no_zero_weights(weights: np.ndarray | None) -> None:
    """Rows of weight 0 would break the residual structure's groups: refuse them."""
    if weights is not None and not np.all(weights > 0):
        raise DataError(
            "weights of 0 cannot be combined with a residual structure (weights=var_ident() or "
            "correlation=): drop those rows from the data instead"
        )


_PHI_STARTS = (0.3, 0.6, 0.9)


def _starting_params(model: Any, theta0: np.ndarray) -> tuple[np.ndarray, int]:
    """The residual parameters to start from, and how many evaluations choosing them took.

    The structure's start (equal SDs, phi = 0), or for an AR(1) structure the best, at the
    starting theta, of phi = 0, 0.3, 0.6, 0.9: from phi = 0 the optimizer spends a third of its
    evaluations walking phi up (sleepstudy, Ovary and BodyWeight all have phi near 0.6;
    BodyWeight's fit takes 90 evaluations instead of 129).  (SD ratios started from the
    strata's least-squares residuals saved nothing on Orthodont.)
    """
    residual = model.residual
    if residual.structure.ar1 is None:
        return residual.params.copy(), 0

    def value(params: np.ndarray) -> float:
        factor = residual.crossprods(params).objective_factor(theta0)
        return model.objective_from(factor, residual_logdet=residual.logdet(params))

    candidates = [residual.params.copy()]
    for phi in _PHI_STARTS:
        candidates.append(candidates[0].copy())
        candidates[-1][-1] = phi
    values = [value(c) for c in candidates]
    return candidates[int(np.argmin(values))], len(values)


def optimize_with_residual(
    model: Any, settings: OptimizerSettings | None, start: np.ndarray | None
) -> tuple[OptInfo, np.ndarray]:
    """BOBYQA over (scaled theta, free rho); returns the optimizer's log for theta and the estimated rho.

    ``model`` is a :class:`~mixedmodels.lmm.model.LinearMixedModel` with a residual structure
    (not imported here: the model module imports this one).
    """
    if settings is not None and settings.optimizer in ("bfgs", "newton"):
        raise ModelSpecError(
            f"optimizer={settings.optimizer!r} has no gradient for a residual structure: "
            "use optimizer='bobyqa' or 'auto'"
        )
    residual, cp = model.residual, model.crossprods
    structure = residual.structure
    ntheta = model.theta_lower.size

    def split(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return cp.from_scaled_theta(x[:ntheta]), structure.from_free(x[ntheta:])

    def objective(x: np.ndarray) -> float:
        theta, rho = split(x)
        factor = residual.crossprods(rho).objective_factor(theta)
        return model.objective_from(factor, residual_logdet=residual.logdet(rho))

    theta0 = np.asarray(start, dtype=float) if start is not None else model.starting_theta()
    rho0, tries = (residual.params, 0) if start is not None else _starting_params(model, theta0)
    x0 = np.concatenate([cp.to_scaled_theta(theta0), structure.to_free(rho0)])
    lower = np.concatenate([model.theta_lower, np.full(structure.nparams, -np.inf)])
    upper = np.concatenate([model.theta_upper, np.full(structure.nparams, np.inf)])
    bounded = None if np.all(np.isinf(upper)) else upper
    with blas_threads_for(cp.a22.shape[0]):
        info = minimize_bounded(objective, x0, lower, bounded, settings=settings)
        if info.optimizer_converged and model.nobs <= MAX_NOBS_FOR_CHECKS:
            check = check_convergence(objective, info.final, lower, bounded)
            info = replace(info, gradient=check.gradient, hessian=check.hessian, warnings=check.messages)
    theta, rho = split(info.final)
    return replace(info, initial=theta0.copy(), final=theta, feval=info.feval + tries), rho

"""A linear mixed model with a residual structure: the stored pieces and the joint optimization.

With ``e ~ N(0, sigma^2 R(rho))`` (:mod:`mixedmodels.design.residual`: ``var_ident``,
``cor_ar1``) the penalized least-squares problem is lme4's with ``[Z X y]' R^-1 [Z X y]``
in place of the cross-products, and the profiled objective gains ``log det R``:

    ML:    log|L|^2 + n (1 + log(2 pi r^2 / n)) + log det R(rho)
    REML:  log|L|^2 + log|R_X|^2 + (n - p)(1 + log(2 pi r^2 / (n - p))) + log det R(rho).

``R^-1`` is a weighted sum of fixed patterns, so the cross-products are a
weighted sum of stored pieces (:class:`~mixedmodels.linalg.weighted_blocks.WeightedBlocks`):
an evaluation at ``(theta, rho)`` adds the pieces up with ``rho``'s weights,
factors, and reads the objective off the factor, as lmer does.  The optimizer
works on ``theta`` (in the units of the scaled columns) and ``rho`` in
unbounded coordinates (``log delta``, ``atanh phi``) together.

Small systems (:data:`~mixedmodels.linalg.dense_system.MAX_SIZE` rows: every
reference fit) are held as dense matrices, ``A(c) = sum_k c_k A_k`` one
vector-matrix product, and get the analytic gradient
(:class:`DenseResidualObjective`): over theta as for lmer
(:meth:`~mixedmodels.linalg.dense_system.DenseSystem.gradient`), and over the
residual parameters by the chain rule

    d f / d rho = sum_k (d f / d c_k)(d c_k / d rho) + d log det R / d rho,
    d f / d c_k = tr(M Lambda~' A_k Lambda~)

(:meth:`~mixedmodels.linalg.dense_system.DenseSystem.piece_gradient`,
:meth:`~mixedmodels.design.residual.ResidualStructure.coefficient_jacobian`).
With unstructured random-effects terms they also get the exact Hessian
(:meth:`DenseResidualObjective.derivatives`: ``A`` is linear in ``c``, so
``d^2 Omega / d c_k d c_l = 0``, and the chain rule adds ``(d f / d c) d^2 c / d rho^2``)
and are fitted by Newton's method, whose gradient and Hessian at the optimum
are lme4's convergence checks' (Orthodont, sleepstudy, Ovary: 3-6 derivative
evaluations; BodyWeight 6 instead of BFGS's 24 gradients and 2k + 1 more for the
checks).  With structured terms (no second derivatives) they are fitted by
BFGS (the structures' parameters in :class:`~mixedmodels.optim.FreeCoordinates`);
BOBYQA takes over where either stops short of an optimum; larger systems get BOBYQA.

The fitted model is the model at the estimated ``rho``
(:meth:`~mixedmodels.lmm.model.LinearMixedModel.at_residual`): its
cross-products are those at ``rho``, so everything that works on a model at
fixed variance parameters (the results, conditional modes and variances,
``results_at(theta)``) works on it unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import nlopt
import numpy as np
from scipy.linalg import lapack

from .._threads import blas_threads_for, one_blas_thread
from ..convergence import MAX_NOBS_FOR_CHECKS, check_convergence
from ..design.residual import ResidualStructure
from ..errors import DataError, ModelSpecError
from ..linalg import BlockedCrossProducts
from ..linalg.blocked import term_layouts
from ..linalg.dense_system import MAX_SIZE, DenseFactor, DenseSystem
from ..linalg.weighted_blocks import (
    WeightedBlocks,
    compiled_least_squares_rss,
    compiled_piece_derivatives,
    compiled_residual_newton,
    compiled_residual_values,
    piece_derivatives,
    position_pairs,
)
from .minimize import bobyqa_at_structured_bound, canonical_signs, derivative_fit, polish_with_bobyqa
from ..optim import (
    FreeCoordinates,
    OptInfo,
    OptimizerSettings,
    minimize_bounded,
    minimize_quasi_newton,
    snap_to_zero_bounds,
)

__all__ = ["ResidualModel", "DenseResidualObjective", "optimize_with_residual", "check_no_zero_weights"]

_DEFAULT_SETTINGS = OptimizerSettings()  # immutable (as lmm/model.py's): not made and checked again every fit


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

    @cached_property
    def coefficients(self) -> np.ndarray:
        """The pieces' weights at this model's parameters (its blocks' and its dense system's)."""
        return self.structure.coefficients(self.params)

    def crossprods(self, params: np.ndarray | None = None) -> BlockedCrossProducts:
        """The blocks at ``params`` (default: this model's)."""
        return self.blocks.combine(self.coefficients if params is None else self.structure.coefficients(params))

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


class DenseResidualObjective:
    """The objective over ``y = (scaled theta, free rho)`` and its gradient, on the dense system.

    ``value(y)`` combines the pieces (one product), factors, and keeps the factor;
    ``gradient(y)`` reuses the factor of the last ``value`` call when it was at ``y``.
    ``model`` is the :class:`~mixedmodels.lmm.model.LinearMixedModel` (its
    ``objective_from`` reads the objective off the dense factor as off a blocked one).
    """

    def __init__(self, model: Any, system: DenseSystem) -> None:
        residual = model.residual
        self.model, self.system, self.structure = model, system, residual.structure
        blocks = residual.blocks
        self.pieces = blocks.dense_pieces().reshape(blocks.npieces, -1)
        self.ntheta, self.size = system.ntheta, system.a.shape[0]
        structure = self.structure
        nd = len(structure.levels) - 1
        # the open range of rho: ratios in (0, inf), phi in (-1, 1)
        self._rho_lower, self._rho_upper = np.zeros(structure.nparams), np.ones(structure.nparams)
        self._rho_lower[nd:], self._rho_upper[:nd] = -1.0, np.inf
        self._ar1_alone = structure.variance is None and structure.ar1 is not None  # an evaluation's hot path
        self._last: tuple[np.ndarray, DenseFactor | None, np.ndarray] | None = None
        self._best: tuple[np.ndarray, DenseFactor, np.ndarray, float] | None = None
        self._lowest: tuple[np.ndarray, float] | None = None  # the lowest of values()
        self._arguments: tuple | None = None

    @classmethod
    def build(cls, model: Any) -> "DenseResidualObjective | None":
        """The dense objective, or None for a system larger than ``MAX_SIZE`` rows."""
        cp, residual = model.crossprods, model.residual
        blocks = residual.blocks
        if blocks.dense is None:
            system = cp.dense_system  # shared with lmer's moment start
        else:  # A from the dense pieces at the structure's parameters, not from the blocks

            def dense_matrix() -> np.ndarray:
                a = residual.coefficients @ blocks.dense.reshape(blocks.npieces, -1)
                return a.reshape(blocks.dense.shape[1:])

            system = cp.dense_system_from(dense_matrix)
        return None if system is None else cls(model, system)

    def _factor(self, y: np.ndarray) -> tuple[DenseFactor | None, np.ndarray]:
        """The factor at ``y`` (None where ``rho`` left its range in floating point: ``tanh(20) = 1``,
        ``exp`` to 0 or infinity)."""
        if self._ar1_alone:  # rho = (phi,) = tanh(y's last)
            rho = np.tanh(y[self.ntheta :])
            if not -1.0 < rho[0] < 1.0:
                return None, rho
        else:
            rho = self.structure.from_free(y[self.ntheta :])
            if not ((rho > self._rho_lower) & (rho < self._rho_upper)).all():
                return None, rho
        a = (self.structure.coefficients(rho) @ self.pieces).reshape(self.size, self.size)
        return self.system.factor(y[: self.ntheta], a), rho

    def value(self, y: np.ndarray) -> float:
        y = np.asarray(y, dtype=float)
        best = self._best
        if best is not None and _same_point(best[0], y):  # the lowest so far, with its factor
            return best[3]
        factor, rho = self._factor(y)
        self._last = (y.copy(), factor, rho)
        if factor is None:
            return np.inf
        value = self.model.objective_from(factor, residual_logdet=self.structure.logdet(rho))
        if self._best is None or value < self._best[3]:
            self._best = (self._last[0], factor, rho, value)
        return value

    def values(self, points: list[np.ndarray]) -> list[float]:
        """The objective at each point (the start's candidates): one compiled call
        (:func:`~mixedmodels.linalg._residual_kernels.residual_values`) where numba is installed and every
        term is unstructured, else :meth:`value` at each.  The lowest is kept for :meth:`known_value`."""
        kernel = compiled_residual_values() if self.has_hessian and points else None
        if kernel is None:
            return [self.value(y) for y in points]
        values = kernel(*self.kernel_arguments(), np.array(points, dtype=float))
        best, found = int(values.argmin()), values.tolist()
        if self._lowest is None or found[best] < self._lowest[1]:
            self._lowest = (np.array(points[best], dtype=float), found[best])
        return found

    def known_value(self, y: np.ndarray) -> float | None:
        """The value at ``y`` when it is the lowest one so far (kept with its factor, or from :meth:`values`:
        the start's chosen candidate, where Newton starts, after the other candidates were evaluated), else
        None."""
        for kept, value in ((self._best, 3), (self._lowest, 1)):
            if kept is not None and _same_point(kept[0], y):
                return kept[value]  # type: ignore[return-value]
        return None

    def kept_factor(self, y: np.ndarray) -> DenseFactor | None:
        """The factor at ``y`` if the last or the lowest value was there (no new factorization), else None."""
        for kept in (self._last, self._best):
            if kept is not None and _same_point(kept[0], y):
                return kept[1]
        return None

    def _factor_at(self, y: np.ndarray) -> tuple[DenseFactor | None, np.ndarray]:
        """The factor at ``y``: the last value's or the lowest value's when they were at ``y``, else a new one."""
        for kept in (self._last, self._best):
            if kept is not None and _same_point(kept[0], y):
                return kept[1], kept[2]
        return self._factor(y)  # not kept: gradient() and derivatives() at a point value() was not called at

    def gradient(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=float)
        factor, rho = self._factor_at(y)
        if factor is None:
            return np.full(y.size, np.nan)
        model = self.model
        theta, pieces = self.system.piece_gradient(factor, model.REML, model.n_likelihood, self.pieces)
        structure = self.structure
        rho_gradient = pieces @ structure.coefficient_jacobian(rho) + structure.logdet_gradient(rho)
        return np.concatenate([theta, rho_gradient])

    @property
    def has_hessian(self) -> bool:
        """Whether :meth:`derivatives` is available: every random-effects term unstructured (a structure's
        second derivatives ``d^2 lambda / d theta^2`` are not)."""
        return not self.system.structured

    def newton_loop(self) -> Any:
        """:func:`mixedmodels.optim.minimize_newton`'s loop compiled on this objective
        (:func:`~mixedmodels.linalg._residual_kernels.residual_newton`: the whole fit one call), or None without
        numba or with structured terms."""
        kernel = compiled_residual_newton() if self.has_hessian else None
        if kernel is None:
            return None
        arguments = self.kernel_arguments()

        def loop(x0: np.ndarray, f0: float | None, rules: np.ndarray, codes: np.ndarray) -> tuple:
            f0 = np.nan if f0 is None else float(f0)
            return kernel(*arguments, x0, f0, rules, codes)

        return loop

    def kernel_arguments(self) -> tuple:
        """``(stacked, positions, structure, layout, criterion)`` of
        :func:`~mixedmodels.linalg._residual_kernels.residual_newton` for this objective (made once)."""
        if self._arguments is None:
            self._arguments = self._make_kernel_arguments()
        return self._arguments

    def _make_kernel_arguments(self) -> tuple:
        system, model, size = self.system, self.model, self.size
        stacked = self.pieces.reshape(-1, size, size)
        positions = (system.rows, system.cols, system.index, _compiled_pairs(system, self.pieces, stacked))
        table, incidence, counts, lag_rows = self.structure.kernel_tables()
        nlead = size - 1 if model.REML else system.nre
        layout = np.array([self.ntheta, system.nre, system.nfixef, nlead], dtype=np.int64)
        dof = model.n_likelihood - (system.nfixef if model.REML else 0)
        criterion = np.array([dof, dof, model._log_weights(), float(model.REML), lag_rows], dtype=float)
        return stacked, positions, (table, incidence, counts), layout, criterion

    def derivatives(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gradient and exact Hessian over ``y = (scaled theta, free rho)`` (unstructured terms only).

        ``A(rho) = sum_k c_k(rho) A_k``, so ``dA / d rho_r = A_r = sum_k J_kr A_k`` (``J = d c / d rho``,
        :meth:`~mixedmodels.design.residual.ResidualStructure.coefficient_derivatives`) and
        ``d^2 A / d rho_r d rho_s = sum_k (d^2 c_k / d rho_r d rho_s) A_k``.  The derivatives over theta
        and the directions ``A_r`` (:func:`_piece_derivatives`: one ``Omega_r`` per residual parameter,
        not one per piece) give the gradient, ``H_theta,theta``, ``H_theta,rho`` and ``J' H_c,c J``; the
        Hessian over rho adds ``sum_k (df/dc_k) d^2 c_k / d rho^2`` (``df/dc_k = tr(M Lambda~' A_k
        Lambda~)``, with the ``M`` of the derivatives) and ``d^2 log det R / d rho^2``.
        """
        y = np.asarray(y, dtype=float)
        factor, rho = self._factor_at(y)
        k = y.size
        if factor is None or not factor.ok:
            return np.full(k, np.nan), np.full((k, k), np.nan)
        model, structure, nt = self.model, self.structure, self.ntheta
        jacobian, second = structure.coefficient_derivatives(rho)
        directions = np.ascontiguousarray(jacobian.T @ self.pieces)
        found = _piece_derivatives(self.system, factor, model.REML, model.n_likelihood, directions, self.pieces)
        if found is None:
            return np.full(k, np.nan), np.full((k, k), np.nan)
        gradient, hessian, weights = found
        gradient[nt:] += structure.logdet_gradient(rho)
        g_c = self.pieces @ (factor.lam @ weights @ factor.lam.T).ravel()
        curvature = (g_c @ second.reshape(g_c.size, -1)).reshape(k - nt, k - nt)
        hessian[nt:, nt:] += curvature + structure.logdet_hessian(rho)
        return gradient, hessian


def _same_point(kept: np.ndarray, y: np.ndarray) -> bool:
    """Whether ``y`` is the kept point, bit for bit (a fifth of ``np.array_equal``'s cost on 2-5 numbers:
    it is asked on every evaluation)."""
    return kept.shape == y.shape and kept.tobytes() == y.tobytes()


def _piece_derivatives(
    system: DenseSystem, factor: DenseFactor, REML: bool, nobs: int, directions: np.ndarray, pieces: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Gradient and Hessian of the criterion over (scaled theta, ``t``) for ``A = A(c) + sum_r t_r D_r`` at
    ``t = 0`` (``directions``: the ``D_r`` flattened, one row each; the stored ``pieces`` only for the pairs
    of theta's positions where some piece is non-zero), and ``M`` (below).

    As :meth:`~mixedmodels.linalg.dense_system.DenseSystem.derivatives` (see that module's docstring),
    with ``Omega_a`` for every parameter: ``Lambda~_j' A Lambda~ + Lambda~' A Lambda~_j`` for theta_j and
    ``B_r = Lambda~' D_r Lambda~`` for t_r, and second derivatives ``Omega_ab`` entering as
    ``tr(M Omega_ab)`` (``M = P + dof z z'``): ``2 sum_(e in j, f in l) A[rows_e, rows_f] M[cols_f, cols_e]``
    for two thetas, ``2 sum_(e in j) (D_r Lambda~ M)[rows_e, cols_e]`` for theta_j and t_r, and 0 for two
    t's (A is linear in t).  The traces ``tr(P Omega_a P Omega_b)`` are one matrix product of the
    flattened ``P Omega_a``.  None when the factor is singular.
    """
    size, nt, ndirections = system.a.shape[0], system.ntheta, directions.shape[0]
    nlead = size - 1 if REML else system.nre
    dof = nobs - (system.nfixef if REML else 0)
    inverse, info = lapack.dtrtri(factor.lower, lower=1)
    if info != 0:
        return None
    a, lam = factor.a, factor.lam
    rows, cols, index = system.rows, system.cols, system.index
    kernels = compiled_piece_derivatives()
    stacked = directions.reshape(ndirections, size, size)
    if kernels is not None:  # two compiled calls instead of ~45 numpy calls on 15-39-row matrices
        pairs = _compiled_pairs(system, pieces, pieces.reshape(-1, size, size))
        positions = (rows, cols, index, pairs)
        return piece_derivatives(inverse, a, lam, stacked, positions, (nt, system.nre, nlead), float(dof), kernels)
    lead = np.zeros((size, size))
    lead[:nlead, :nlead] = inverse[:nlead, :nlead].T @ inverse[:nlead, :nlead]
    z = inverse[-1]
    omegas = _first_derivatives(system, factor, stacked)
    times_lead = lead @ omegas
    omega_z = omegas @ z
    residual_gradient = omega_z @ z
    flat = times_lead.reshape(nt + ndirections, -1)
    gradient = flat @ np.eye(size).ravel() + dof * residual_gradient
    hessian = -(flat @ np.swapaxes(times_lead, 1, 2).reshape(nt + ndirections, -1).T)
    full = inverse.T @ inverse
    hessian += dof * (np.outer(residual_gradient, residual_gradient) - 2.0 * omega_z @ full @ omega_z.T)
    weights = lead
    weights += dof * np.outer(z, z)
    indicator, row_pairs, col_pairs = _positions(system)
    pairs = (a.ravel()[row_pairs] * weights.ravel()[col_pairs]).reshape(index.size, index.size)
    hessian[:nt, :nt] += 2.0 * indicator @ pairs @ indicator.T
    mixed = 2.0 * (stacked @ (lam @ weights))[:, rows, cols] @ indicator.T
    hessian[nt:, :nt] += mixed
    hessian[:nt, nt:] += mixed.T
    return gradient, (hessian + hessian.T) / 2.0, weights


def _first_derivatives(system: DenseSystem, factor: DenseFactor, stacked: np.ndarray) -> np.ndarray:
    """``Omega_a`` for theta then the pieces: ``C_j + C_j'`` with ``C_j' = Lambda~_j' A Lambda~`` (row
    ``cols_e`` of it is row ``rows_e`` of ``A Lambda~``), and ``Lambda~' A_k Lambda~``."""
    nt, size = system.ntheta, stacked.shape[1]
    omegas = np.empty((nt + stacked.shape[0], size, size))
    transposed = omegas[:nt]
    transposed.fill(0.0)
    transposed[system.index, system.cols] = (factor.a @ factor.lam)[system.rows]
    transposed += np.swapaxes(transposed, 1, 2).copy()
    np.matmul(factor.lam.T @ stacked, factor.lam, out=omegas[nt:])
    return omegas


def _compiled_pairs(system: DenseSystem, pieces: np.ndarray, stacked: np.ndarray) -> np.ndarray:
    """:func:`~mixedmodels.linalg._residual_kernels.position_pairs` of the pieces (``pieces`` flattened,
    ``stacked`` as matrices), made once per system and pieces."""
    cached = system.__dict__.get("_residual_pairs")
    if cached is None or cached[0] is not pieces:
        cached = (pieces, position_pairs(stacked, system.rows))
        object.__setattr__(system, "_residual_pairs", cached)
    return cached[1]


def _positions(system: DenseSystem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Theta's positions in ``Lambda~`` to theta (ntheta x positions, 0/1), and the flat indices of
    ``[rows_e, rows_f]`` and ``[cols_e, cols_f]`` for every pair of positions; made once per system."""
    cached = system.__dict__.get("_residual_positions")
    if cached is None:
        size, index = system.a.shape[0], system.index
        indicator = np.zeros((system.ntheta, index.size))
        indicator[index, np.arange(index.size)] = 1.0
        row_pairs = (system.rows[:, None] * size + system.rows).ravel()
        col_pairs = (system.cols[:, None] * size + system.cols).ravel()
        cached = (indicator, row_pairs, col_pairs)
        object.__setattr__(system, "_residual_positions", cached)
    return cached


_PHI_STARTS = (0.3, 0.6, 0.9)


def _starting_point(
    model: Any, value: Any, dense: "DenseResidualObjective | None"
) -> tuple[np.ndarray, np.ndarray, int]:
    """Where the optimizer starts: theta (data units), the point ``(scaled theta, free rho)``, and the
    evaluations it took.

    The residual parameters start where the model has them; at the structure's own start (equal
    SDs, phi = 0) the SD ratios start at their moment estimates where the system is dense
    (:func:`_moment_ratios`: Newton's first step from equal SDs overshoots Orthodont's ratio of
    0.45, and the estimate 0.46 saves two or three of its six derivative evaluations).  Theta is
    the better of lmer's candidates (:meth:`~mixedmodels.lmm.model.LinearMixedModel.starting_theta`)
    there; then for an AR(1) structure phi is the best, at that theta, of 0, 0.3, 0.6, 0.9: from
    phi = 0 the optimizer spends a third of its evaluations walking phi up (sleepstudy, Ovary and
    BodyWeight all have phi near 0.6; BodyWeight's BOBYQA fit takes 90 evaluations instead of 129,
    its ML Newton fit 6 evaluations and 6 derivatives after the start instead of 12 + 9).  (phi's
    moment estimates from least-squares residuals were no better a start: 0.34, 0.48, 0.09 from the
    residuals within subjects and 0.69, 0.70, 0.89 from the fixed effects' residuals, where the ML
    fits have 0.64, 0.60, 0.53.)  ``value`` is the objective over ``(scaled theta, free rho)``: the
    dense one where there is one, so that choosing costs a few dense evaluations.
    """
    residual, cp, structure = model.residual, model.crossprods, model.residual.structure
    rho0 = residual.params.copy()
    if dense is not None and np.array_equal(rho0, structure.start()):
        ratios = _moment_ratios(structure, dense.pieces, dense.size)
        if ratios is not None:
            rho0[: ratios.size] = ratios
    free0 = structure.to_free(rho0)
    values = dense.values if dense is not None else (lambda points: [value(y) for y in points])
    thetas = model._start_candidates()
    points = [np.concatenate([cp.to_scaled_theta(theta), free0]) for theta in thetas]
    found = values(points) if len(points) > 1 else []
    best = int(np.asarray(found).argmin()) if found else 0  # np.argmin's answer without its list wrapping
    if structure.ar1 is None:
        return thetas[best], points[best], len(found)
    scaled = points[best][: points[best].size - free0.size]
    tried = [points[best]]  # phi = rho0's, then each of _PHI_STARTS
    for phi in _PHI_STARTS:
        candidate = rho0.copy()
        candidate[-1] = phi
        tried.append(np.concatenate([scaled, structure.to_free(candidate)]))
    others = values(tried[1:] if found else tried)
    phis = ([found[best]] if found else []) + list(others)
    return thetas[best], tried[int(np.asarray(phis).argmin())], len(found) + len(others)


def _moment_ratios(structure: ResidualStructure, pieces: np.ndarray, size: int) -> np.ndarray | None:
    """The SD ratios of the strata's least-squares residual SDs (y on all of ``[Z X]`` within each stratum:
    ``rss_s = y'y - y'W (W'W)^+ W'y`` from the stratum's stored cross-product, over ``n_s - rank``), or None
    without a variance structure or where a stratum has no residual degrees of freedom."""
    if structure.variance is None:
        return None
    variances = np.zeros(len(structure.levels))
    for piece, flat in zip(structure.pieces, pieces):
        if piece.kind != "all":
            continue
        rss, rank = _stratum_rss(flat.reshape(size, size))
        dof = piece.rows.size - rank
        variances[piece.strata[0]] = rss / dof if dof > 0 else np.nan
    ratios = np.sqrt(variances[1:] / variances[0])
    return ratios if (np.isfinite(ratios) & (ratios > 0)).all() else None


_COLLINEAR = 1e-10  # a column whose share of its sum of squares not explained by the columns before is below this


def _stratum_rss(a: np.ndarray) -> tuple[float, int]:
    """The residual sum of squares of y on ``[Z X]`` and their rank from the cross-product of ``[Z X y]``:
    compiled elimination (:func:`~mixedmodels.linalg._residual_kernels.least_squares_rss`) where numba is
    installed, else ``np.linalg.lstsq`` (the tests compare them)."""
    kernel = compiled_least_squares_rss()
    if kernel is not None:
        rss, rank = kernel(a, _COLLINEAR)
        return float(rss), int(rank)
    coef, _, rank, _ = np.linalg.lstsq(a[:-1, :-1], a[:-1, -1], rcond=None)
    return float(a[-1, -1] - coef @ a[:-1, -1]), int(rank)


def optimize_with_residual(
    model: Any, settings: OptimizerSettings | None, start: np.ndarray | None
) -> tuple[OptInfo, np.ndarray, DenseFactor | None]:
    """Minimize over (scaled theta, free rho); returns the optimizer's log for theta, the estimated rho,
    and the dense factor at the optimum when the last evaluation was there (the results read beta and
    sigma off it: :meth:`~mixedmodels.lmm.results.LmerResults.from_dense_factor`), else None.

    On a dense system Newton's method with the exact Hessian
    (:meth:`DenseResidualObjective.derivatives`) where every term is
    unstructured, else BFGS with the analytic gradient; BOBYQA for larger
    systems (and when ``settings.optimizer`` says so).  ``model`` is a
    :class:`~mixedmodels.lmm.model.LinearMixedModel` with a residual structure
    (not imported here: the model module imports this one).
    """
    settings = settings or _DEFAULT_SETTINGS
    dense = DenseResidualObjective.build(model)
    method = _method(settings, dense)
    residual, cp = model.residual, model.crossprods
    structure = residual.structure
    theta_lower = model.theta_lower
    ntheta = theta_lower.size
    objective = dense.value if dense is not None else _blocked_objective(model)
    if start is not None:
        theta0, tries = np.asarray(start, dtype=float), 0
        x0 = np.concatenate([cp.to_scaled_theta(theta0), structure.to_free(residual.params)])
    else:
        theta0, x0, tries = _starting_point(model, objective, dense)
    lower, upper = np.empty(ntheta + structure.nparams), np.empty(ntheta + structure.nparams)
    lower[:ntheta], lower[ntheta:] = theta_lower, -np.inf
    upper[:ntheta], upper[ntheta:] = model.theta_upper, np.inf
    bounded = None if np.isinf(upper).all() else upper
    with one_blas_thread() if dense is not None and dense.size > MAX_SIZE else blas_threads_for(cp.a22.shape[0]):
        if method == "newton":
            f0 = dense.known_value(x0)  # the start's chosen candidate: not evaluated again
            info = derivative_fit(dense, x0, f0, model.layouts, (lower, bounded), settings, newton=True)
        elif method == "bfgs":
            info = _bfgs_fit(dense, model.layouts, x0, (lower, upper), settings)
        else:
            info = minimize_bounded(objective, x0, lower, bounded, settings=settings)
        if info.optimizer_converged and model.nobs <= MAX_NOBS_FOR_CHECKS:
            info = _checked(info, objective, dense, method, (lower, bounded))
    factor = dense.kept_factor(info.final) if dense is not None else None
    if factor is None and dense is not None and np.isfinite(dense.value(info.final)):  # after the compiled loop
        factor = dense.kept_factor(info.final)
    theta, rho = cp.from_scaled_theta(info.final[:ntheta]), structure.from_free(info.final[ntheta:])
    return info.updated(initial=theta0.copy(), final=theta, feval=info.feval + tries), rho, factor


def _method(settings: OptimizerSettings, dense: "DenseResidualObjective | None") -> str:
    """``"newton"``, ``"bfgs"`` or ``"bobyqa"``: the settings' choice where this model has what it needs,
    for ``"auto"`` Newton where there is an exact Hessian, else BFGS on a dense system, else BOBYQA."""
    wanted = settings.optimizer
    if wanted == "bobyqa":
        return wanted
    has_hessian = dense is not None and dense.has_hessian
    if (wanted == "newton" and not has_hessian) or (wanted == "bfgs" and dense is None):
        what = "exact Hessian (structured random-effects terms)" if dense is not None else "gradient"
        others = "'bfgs', 'bobyqa'" if dense is not None else "'bobyqa'"
        raise ModelSpecError(
            f"optimizer={wanted!r} has no {what} for this residual structure: use optimizer={others} or 'auto'"
        )
    if wanted == "auto":
        return "newton" if has_hessian else ("bfgs" if dense is not None else "bobyqa")
    return wanted


def _checked(info: OptInfo, objective, dense, method: str, bounds: tuple[np.ndarray, np.ndarray | None]) -> OptInfo:
    """lme4's convergence checks at the optimum: with Newton's exact gradient and Hessian there (its own
    when it stopped at its final point), else central differences of the analytic gradient or of the objective."""
    derivatives = None
    if method == "newton":
        known = info.gradient is not None and info.hessian is not None
        derivatives = (info.gradient, info.hessian) if known else dense.derivatives(info.final)
    grad = dense.gradient if dense is not None and derivatives is None else None
    check = check_convergence(objective, info.final, bounds[0], bounds[1], grad=grad, derivatives=derivatives)
    return info.updated(gradient=check.gradient, hessian=check.hessian, warnings=check.messages)


def _blocked_objective(model: Any):
    """The objective over ``(scaled theta, free rho)`` on the blocked factorization (BOBYQA's, for large systems)."""
    residual, cp, ntheta = model.residual, model.crossprods, model.theta_lower.size

    def objective(x: np.ndarray) -> float:
        rho = residual.structure.from_free(x[ntheta:])
        factor = residual.crossprods(rho).objective_factor(cp.from_scaled_theta(x[:ntheta]))
        return model.objective_from(factor, residual_logdet=residual.logdet(rho))

    return objective


def _bfgs_fit(
    dense: DenseResidualObjective,
    layouts,
    x0: np.ndarray,
    bounds: tuple[np.ndarray, np.ndarray],
    settings: OptimizerSettings,
) -> OptInfo:
    """BFGS over unbounded coordinates, then the optimum with canonical signs (and zeros snapped),
    or BOBYQA from where BFGS stopped when it stopped short of an optimum (as lmer's
    derivative-based fit)."""
    lower, upper = bounds
    coordinates = FreeCoordinates.for_terms(layouts, lower, upper)
    value, gradient = coordinates.wrap(dense.value, dense.gradient)
    info = minimize_quasi_newton(value, gradient, coordinates.to_free(x0), settings)
    x = canonical_signs(coordinates.from_free(info.final), layouts)
    stuck = np.any((lower == 0) & (x == 0) & (x0 == 0))
    bounded = None if np.all(np.isinf(upper)) else upper
    info, replaced = bobyqa_at_structured_bound(info, dense.value, x, x0, (lower, bounded), coordinates, settings)
    if replaced:
        return info
    if info.return_code in (nlopt.SUCCESS, nlopt.FTOL_REACHED) and not stuck:
        snapped = snap_to_zero_bounds(dense.value, x, info.fmin, lower, settings)
        if snapped is not None:
            return info.updated(initial=x0, final=snapped[1], fmin=snapped[0], feval=info.feval + 1)
        return info.updated(initial=x0, final=x)
    return polish_with_bobyqa(info, dense.value, x, (lower, bounded), settings)

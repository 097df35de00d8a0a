"""Linear mixed models: the model definition, its profiled objective, and ``lmer``.

The pipeline, each stage inspectable on its own::

    model = LinearMixedModel.from_formula("Reaction ~ Days + (Days | Subject)", df)
    model.objective(theta)   # REML criterion (or deviance) profiled over beta and sigma
    result = model.fit()     # an immutable LmerResults

For a given relative covariance factor theta the objective is (Bates et al.
2015, eqs. 34 and 41)

    ML:    log|L_theta|^2 + n (1 + log(2 pi r^2 / n))
    REML:  log|L_theta|^2 + log|R_X|^2 + (n - p)(1 + log(2 pi r^2 / (n - p)))

minus ``sum(log(weights))`` for prior weights, where ``r^2`` is the penalized
residual sum of squares; all three pieces come off the blocked Cholesky factor.
Rows with prior weight 0 carry no information: they are left out of the
cross-products and of ``n`` (:attr:`LinearMixedModel.n_likelihood`), so the
fit equals the fit without them, while ``nobs`` counts every row as lme4's
does (lme4 itself cannot fit them: its criterion is infinite).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

import nlopt
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._threads import blas_threads_for
from .._validate import check_bool
from ..convergence import MAX_NOBS_FOR_CHECKS, check_convergence
from ..design.covariance import canonical_theta, initial_theta, theta_lower_bounds
from ..design.inputs import ModelInputs, prepare_inputs
from ..errors import ConvergenceWarning, DataError, ModelSpecError, SingularFitWarning
from ..linalg import BlockedCrossProducts, Factorization
from ..linalg.gradient import ProfiledObjective
from ..linalg.start import moment_start
from ..optim import (OptInfo, OptimizerSettings, minimize_bounded, minimize_newton, minimize_quasi_newton,
                     snap_to_zero_bounds)
from .results import LmerResults

__all__ = ["LinearMixedModel", "lmer", "ThetaParameters"]

_LOG_2PI = np.log(2.0 * np.pi)


class ThetaParameters:
    """Bounds, start and lme4's names of theta, for any model with ``inputs.terms``."""

    inputs: ModelInputs

    @property
    def theta_lower(self) -> np.ndarray:
        return np.concatenate([theta_lower_bounds(t.ncols) for t in self.inputs.terms])

    @property
    def theta_start(self) -> np.ndarray:
        return np.concatenate([initial_theta(t.ncols) for t in self.inputs.terms])

    @property
    def theta_names(self) -> list[str]:
        return [name for t in self.inputs.terms for name in t.theta_names]


@dataclass(frozen=True, eq=False)
class LinearMixedModel(ThetaParameters):
    """A linear mixed model, defined but not fitted: inputs plus the blocks of ``[Z X y]'[Z X y]``."""

    inputs: ModelInputs
    crossprods: BlockedCrossProducts
    REML: bool

    @classmethod
    def from_formula(cls, formula: str, data: pd.DataFrame, *, REML: bool = True, **kwargs: Any) -> "LinearMixedModel":
        """Build the model from an lme4 formula (see :func:`lmer` for the arguments)."""
        check_bool(REML, "REML")
        inputs = prepare_inputs(formula, data, **kwargs)
        if inputs.y.ndim != 1:
            raise DataError(
                f"the response {inputs.formula.response!r} must be a single numeric column for lmer; "
                "cbind() responses are for binomial glmer"
            )
        if np.ptp(inputs.y) == 0:
            raise DataError(f"the response {inputs.formula.response!r} is constant; there is no variation to model")
        return cls.from_inputs(inputs, REML=REML)

    @classmethod
    def from_inputs(cls, inputs: ModelInputs, *, REML: bool = True) -> "LinearMixedModel":
        """Build the cross-product blocks for prepared inputs (rows with weight 0 left out: they add nothing)."""
        REML = check_bool(REML, "REML")
        rows = _informative_rows(inputs.weights)
        n, p = (inputs.nobs if rows is None else rows.size), len(inputs.fixed.column_names)
        if n <= p:
            zero = "" if rows is None else " with non-zero weight"
            raise ModelSpecError(f"{n} observations{zero} cannot estimate {p} fixed effects and a residual variance")
        sqrtw = np.sqrt(inputs.weights) if inputs.weights is not None else None
        y = inputs.y - inputs.offset if inputs.offset is not None else inputs.y
        xy = np.column_stack([inputs.fixed.matrix, y])
        if sqrtw is not None:
            xy = xy * sqrtw[:, None]
        zs = [t.z if sqrtw is None else t.z * sqrtw[:, None] for t in inputs.terms]
        refs = [t.refs for t in inputs.terms]
        if rows is not None:
            xy, zs, refs = xy[rows], [z[rows] for z in zs], [r[rows] for r in refs]
        crossprods = BlockedCrossProducts.build(refs, zs, [t.nlevels for t in inputs.terms], xy)
        return cls(inputs, crossprods, REML)

    # --- the objective --------------------------------------------------------
    @property
    def nobs(self) -> int:
        return self.inputs.nobs

    @property
    def n_likelihood(self) -> int:
        """The ``n`` of the likelihood: rows with non-zero prior weight (every row without weights).

        ``nobs`` counts every row of the model frame, as lme4's ``nobs`` does.
        """
        return self.crossprods.nobs

    @property
    def nfixef(self) -> int:
        return self.crossprods.nfixef

    @property
    def layouts(self):
        """Where each random-effects term sits in theta and in the blocks (block order)."""
        return self.crossprods.terms

    def _log_weights(self) -> float:
        w = self.inputs.weights
        return float(np.sum(np.log(w[w > 0]))) if w is not None else 0.0

    def objective_from(self, factor: Factorization, REML: bool | None = None) -> float:
        """The profiled REML criterion or deviance given a factorization."""
        reml = self.REML if REML is None else REML
        if not factor.ok:
            return np.inf
        n = self.n_likelihood - (self.nfixef if reml else 0)
        value = factor.logdet_re() + n * (1.0 + _LOG_2PI + np.log(factor.pwrss() / n))
        if reml:
            value += factor.logdet_x()
        return value - self._log_weights()

    def objective(self, theta: np.ndarray) -> float:
        """REML criterion (REML=True) or deviance, profiled over beta and sigma, at theta."""
        return self.objective_from(self.crossprods.objective_factor(theta))

    # --- fitting ----------------------------------------------------------------
    def results_at(self, theta: np.ndarray) -> LmerResults:
        """Results (beta, sigma, modes, ...) at a given theta, without optimizing.

        Useful to inspect the model at someone else's estimates, e.g. lme4's theta.
        """
        theta = np.asarray(theta, dtype=float)
        value = self.objective(theta)
        info = OptInfo("none (theta given)", theta, theta, value, 1, 0.0, 1, "theta given")
        return LmerResults.from_fit(self, info)

    def results_from(self, info: OptInfo, factor: Factorization | None = None) -> LmerResults:
        """Results for an optimizer's log whose ``final`` is theta (fits made elsewhere: batched refits)."""
        return LmerResults.from_fit(self, info, factor)

    def starting_theta(self) -> np.ndarray:
        """Where the optimizer starts: lme4's identity start or a moment estimate, whichever fits better.

        The moment estimate (:func:`~mixedmodels.linalg.start.moment_start`)
        halves the evaluations or better (sleepstudy 79 -> 41, Penicillin
        78 -> 23, InstEval 101 -> 46); comparing it with lme4's start costs
        two evaluations and keeps the identity wherever the estimate is the
        worse start.
        """
        candidates = self._start_candidates()
        return candidates[_better_start(candidates, self.objective)[0]]

    def _start_candidates(self) -> list[np.ndarray]:
        """lme4's identity start, then the moment estimate where there is one (theta in the units of the data)."""
        try:
            guess = moment_start(self.crossprods)
        except (np.linalg.LinAlgError, ValueError):  # only a start: never let it stop a fit
            guess = None
        return [self.theta_start] if guess is None else [self.theta_start, self.crossprods.from_scaled_theta(guess)]

    def _optimize(self, settings: OptimizerSettings | None, start: np.ndarray | None) -> "tuple[OptInfo, Factorization | None]":
        """Minimize over theta in the units of the scaled columns, then lme4's checks.

        The optimizer sees theta for unit-RMS random-effects columns, so its
        steps and tolerances do not depend on the units of the predictors;
        everything it reports is mapped back to the units of the data.  The
        gradient and Hessian in ``optinfo`` are with respect to the scaled theta.
        Without a ``start``, the better of :meth:`_start_candidates` (as
        :meth:`starting_theta`), whose objective the optimizer then reuses for
        its first evaluation.  BFGS with the analytic gradient or BOBYQA, as
        :func:`choose_optimizer` says.  Also returns the factorization at the
        final theta when it was the best evaluation (else None), so the
        results need not factor again.
        """
        cp = self.crossprods
        settings = settings or OptimizerSettings()
        method = choose_optimizer(settings, cp)
        objective = ProfiledObjective(cp, self.objective_from, self.REML, with_gradient=method != "bobyqa")
        with blas_threads_for(cp.a22.shape[0]):
            candidates = [np.asarray(start, dtype=float)] if start is not None else self._start_candidates()
            points = [cp.to_scaled_theta(theta) for theta in candidates]
            best, value = _better_start(points, objective.value)
            if method == "bobyqa":
                first = _reuse_first_value(objective.value, points[best], value)
                info = minimize_bounded(first, points[best], self.theta_lower, settings=settings)
            else:
                info = _derivative_fit(objective, points[best], value, self.layouts, self.theta_lower, settings,
                                       newton=method == "newton")
            if len(points) > 1:  # the start candidates' evaluations (the best one's reused)
                info = replace(info, feval=info.feval + len(points) - (1 if method == "bobyqa" else 0))
            if info.optimizer_converged and self.nobs <= MAX_NOBS_FOR_CHECKS:
                derivatives = None
                if method == "newton":  # the optimizer's own at its final point, when it stopped there
                    known = info.gradient is not None and info.hessian is not None
                    derivatives = (info.gradient, info.hessian) if known else objective.derivatives(info.final)
                check = check_convergence(objective.value, info.final, self.theta_lower,
                                          grad=objective.gradient if method == "bfgs" else None, derivatives=derivatives)
                info = replace(info, gradient=check.gradient, hessian=check.hessian, warnings=check.messages)
        info = replace(info, initial=candidates[best].copy(), final=cp.from_scaled_theta(info.final))
        factor = objective.best_factor_at(info.final)
        if factor is None and objective.dense is not None:  # the results' blocked factor, and its objective's bits
            factor = cp.objective_factor(info.final)
            info = replace(info, fmin=self.objective_from(factor))
        return info, factor

    def fit(self, settings: OptimizerSettings | None = None, start: np.ndarray | None = None) -> LmerResults:
        """Minimize the objective over theta and return the results.

        ``start`` is theta in the units of the data; by default
        :meth:`starting_theta` picks lme4's start or a moment estimate.
        """
        info, factor = self._optimize(settings, None if start is None else np.asarray(start, dtype=float))
        if not info.optimizer_converged:
            warnings.warn(f"optimizer did not converge: {info.message}", ConvergenceWarning, stacklevel=3)
        for message in info.warnings:
            warnings.warn(message, ConvergenceWarning, stacklevel=3)
        result = LmerResults.from_fit(self, info, factor)
        if result.is_singular:
            warnings.warn("boundary (singular) fit: see help(mm.LmerResults.is_singular)", SingularFitWarning, stacklevel=3)
        return result


def _informative_rows(weights: np.ndarray | None) -> np.ndarray | None:
    """Positions of the rows with non-zero weight, or None when that is every row."""
    if weights is None or np.all(weights > 0):
        return None
    return np.flatnonzero(weights > 0)


def choose_optimizer(settings: OptimizerSettings, cp: BlockedCrossProducts) -> str:
    """``"newton"``, ``"bfgs"`` or ``"bobyqa"``: the settings' choice, or for ``"auto"`` the one expected to be fastest.

    Small systems (at most :data:`.linalg.dense_system.MAX_SIZE` rows: one
    dense matrix) get Newton's method with the exact Hessian, whose gradient
    and Hessian at the optimum also serve lme4's convergence checks.  Larger
    ones get BFGS with the analytic gradient when a gradient costs less than
    :data:`_GRADIENT_COST_LIMIT` evaluations (:func:`_gradient_cost_ratio`), else
    BOBYQA.  Measured on the reference and benchmark models: BFGS needs about
    a quarter of BOBYQA's evaluations plus as many gradients (InstEval 13 + 10
    against 53, crossed_100k 15 + 13 against 65, nested_50k 10 + 5 against 22),
    so it wins while a gradient costs less than about three evaluations
    (InstEval: ~2, so BFGS; nested_50k: ~30, so BOBYQA).  Deterministic: the
    choice never depends on the machine's load.
    """
    if settings.optimizer != "auto":
        return settings.optimizer
    if cp.dense_system is not None:
        return "newton"
    return "bfgs" if _gradient_cost_ratio(cp) < _GRADIENT_COST_LIMIT else "bobyqa"


_GRADIENT_COST_LIMIT = 2.5
# Python's overhead per call in flop-equivalents (~0.1-0.3 ms at ~1 Gflop/s for these small operations)
_EVALUATION_OVERHEAD, _GRADIENT_OVERHEAD = 2e5, 5e5


def _gradient_cost_ratio(cp: BlockedCrossProducts) -> float:
    """Estimated cost of one gradient over one objective evaluation, from flop counts of their parts.

    An evaluation factors the rest block (``m^3 / 3`` flops, or the supernodal
    count) after the big term's update; a gradient inverts the rest block on
    its pattern (about twice the factorization) and forms the per-level
    quadratic forms of A21 (as many products as the update, times k, with the
    supernodal path's compiled kernel; else counted as scipy's ``nnz(A21) m``).
    """
    m, k = cp.a22.shape[0], cp.first.ncols
    reordered = cp.reordered_rest
    factor = reordered.cholesky.flops if reordered is not None else m**3 / 3.0
    if isinstance(cp.a21, np.ndarray):
        update = quadratic = float(m * m * cp.first.size)
    else:
        counts = np.diff(sp.csc_array(cp.a21).indptr).reshape(-1, k).max(axis=1).astype(float)
        pairs = float(counts @ counts) / 2.0
        update = pairs * k
        # the compiled per-level pass where numba is certainly loaded (the supernodal path needs it);
        # elsewhere scipy's products, whatever this process imported before (the choice must not depend on it)
        quadratic = 2.0 * pairs * k * k if reordered is not None else float(cp.a21.nnz * m)
    evaluation = _EVALUATION_OVERHEAD + factor + update
    gradient = _GRADIENT_OVERHEAD + 2.0 * factor + quadratic + m * m
    return gradient / evaluation


def _derivative_fit(objective: ProfiledObjective, x0: np.ndarray, f0: float | None, layouts, lower: np.ndarray,
                    settings: OptimizerSettings, newton: bool) -> OptInfo:
    """Newton or BFGS over the scaled theta, then the optimum with non-negative diagonals.

    At a boundary (a diagonal within ``settings.zero_tol`` of zero, where
    lme4's optimum sits on the bound exactly) the small diagonals are set to
    zero when that is not worse by more than ``ftol_abs``
    (:func:`~mixedmodels.optim.snap_to_zero_bounds`, as after BOBYQA).
    BOBYQA takes over when the optimizer stalls far from an optimum, and when
    a diagonal started at zero and never moved (zero is a stationary point of
    a scalar term, so the gradient cannot tell a minimum there from a
    maximum).  ``gradient`` and ``hessian`` are kept only when they are the
    final point's.
    """
    if newton:
        info = minimize_newton(objective.value, objective.derivatives, x0, settings, f0=f0)
    else:
        info = minimize_quasi_newton(objective.value, objective.gradient, x0, settings, f0=f0)
    x = np.concatenate([canonical_theta(info.final[t.theta_start : t.theta_stop], t.ncols) for t in layouts])
    bounded = lower == 0
    stuck = np.any(bounded & (x == 0) & (x0 == 0))
    if info.return_code == nlopt.MAXEVAL_REACHED:
        return replace(info, final=x, gradient=None, hessian=None)
    if info.return_code in (nlopt.SUCCESS, nlopt.FTOL_REACHED) and not stuck:
        snapped = snap_to_zero_bounds(objective.value, x, info.fmin, lower, settings)
        if snapped is not None:
            return replace(info, final=snapped[1], fmin=snapped[0], feval=info.feval + 1, gradient=None, hessian=None)
        if np.array_equal(x, info.final):
            return info
        # the same objective after sign changes, but the results need the factor at the reported theta
        objective.value(x)
        return replace(info, final=x, feval=info.feval + 1, gradient=None, hessian=None)
    polish_settings = replace(settings, maxeval=max(1, settings.maxeval - info.feval), initial_step=_POLISH_STEP)
    polish = minimize_bounded(objective.value, np.maximum(x, lower), lower, settings=polish_settings)
    return replace(polish, optimizer=f"{info.optimizer} + {polish.optimizer}", feval=info.feval + polish.feval,
                   geval=info.geval, seconds=info.seconds + polish.seconds)


_POLISH_STEP = 0.05


def _better_start(points: list[np.ndarray], evaluate: Callable[[np.ndarray], float]) -> tuple[int, float | None]:
    """Index of the start with the lowest objective (the first on ties) and that objective; a lone start is not evaluated."""
    if len(points) == 1:
        return 0, None
    values = [evaluate(point) for point in points]
    best = int(np.argmin(values))
    return best, values[best]


def _reuse_first_value(func: Callable[[np.ndarray], float], point: np.ndarray, value: float | None) -> Callable[[np.ndarray], float]:
    """``func``, except that its first call at ``point`` returns the already known ``value`` (once)."""
    known = [value]

    def wrapped(x: np.ndarray) -> float:
        if known[0] is not None and np.array_equal(x, point):
            result, known[0] = known[0], None
            return result
        return func(x)

    return wrapped


def lmer(
    formula: str,
    data: pd.DataFrame,
    *,
    REML: bool = True,
    weights: Any = None,
    offset: Any = None,
    contrasts: Mapping[str, str] | None = None,
    settings: OptimizerSettings | None = None,
) -> LmerResults:
    """Fit a linear mixed model written in lme4's formula language.

    Parameters
    ----------
    formula : str
        e.g. ``"Reaction ~ Days + (Days | Subject)"``; random-effects terms are
        ``(expr | group)``, ``(expr || group)`` for uncorrelated effects,
        ``(1 | a/b)`` for nesting and ``(1 | a:b)`` for interactions.
    data : DataFrame
        Rows with a missing value in any variable used are dropped.
    REML : bool
        Restricted maximum likelihood (default, as lme4) or maximum likelihood.
    weights : array-like, optional
        Prior weights, one per row of ``data``, non-negative.  A row of weight
        0 contributes nothing: the estimates are those of the fit without it
        (lme4 cannot fit it: its criterion is infinite), it keeps its fitted
        value and response residual, and ``nobs`` counts it, as lme4's does.
    offset : array-like, optional
        A known component of the linear predictor, one per row of ``data``.
        Rows with a missing (NaN) offset are dropped like rows with missing
        data (as lme4, and as ``offset(o)`` in the formula); infinite values
        are refused.
    contrasts : dict, optional
        Per-variable contrasts: ``{"condition": "sum"}`` ("treatment", "sum",
        "helmert", "poly").
    settings : OptimizerSettings, optional
        Optimizer tolerances.

    Returns
    -------
    LmerResults
    """
    model = LinearMixedModel.from_formula(
        formula, data, REML=REML, weights=weights, offset=offset, contrasts=contrasts
    )
    return model.fit(settings=settings)

"""How the profiled objective of a linear mixed model is minimized over theta.

Which optimizer a model gets (:func:`choose_optimizer`: Newton with the exact
Hessian for small dense systems, BFGS with the analytic gradient where a
gradient is cheap, else BOBYQA), the derivative-based fit with its BOBYQA
fallbacks at boundaries (:func:`derivative_fit`), and the small pieces shared
with residual structures (:mod:`.residual`): the better of several starts,
the BLAS threads for a system, the polishing step.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, ContextManager

import nlopt
import numpy as np
import scipy.sparse as sp

from .._threads import blas_threads_for, one_blas_thread
from ..design.covariance import canonical_theta
from ..errors import ModelSpecError
from ..linalg import BlockedCrossProducts
from ..linalg.dense_system import MAX_SIZE
from ..linalg.gradient import ProfiledObjective
from ..optim import (
    FreeCoordinates,
    OptInfo,
    OptimizerSettings,
    minimize_bounded,
    minimize_newton,
    minimize_quasi_newton,
    snap_to_zero_bounds,
)

__all__ = [
    "choose_optimizer",
    "derivative_fit",
    "bobyqa_at_structured_bound",
    "canonical_signs",
    "polish_with_bobyqa",
    "better_start",
    "reuse_first_value",
    "threads_for",
]


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

    Structured terms have the gradient through ``d lambda / d theta`` but no
    exact Hessian: BFGS (sleepstudy: diag, cs, ar1 in 7 + 5, 19 + 16, 13 + 11
    evaluations + gradients against BOBYQA's 23, 76-90, 49-51), Newton refused;
    a sparsely factored rest block (:mod:`.linalg.sparse_rest`) gets BOBYQA.
    """
    if cp.sparse_rest is not None or not cp.unstructured:
        return _restricted_choice(settings, cp)
    if settings.optimizer != "auto":
        return settings.optimizer
    if cp.dense_system is not None:
        return "newton"
    return "bfgs" if _gradient_cost_ratio(cp) < _GRADIENT_COST_LIMIT else "bobyqa"


def threads_for(cp: BlockedCrossProducts, objective: ProfiledObjective) -> ContextManager[None]:
    """One BLAS thread for a dense system past ``MAX_SIZE`` rows (threaded products cost 10x when busy)."""
    if objective.dense is not None and objective.dense.a.shape[0] > MAX_SIZE:
        return one_blas_thread()
    return blas_threads_for(cp.a22.shape[0])


def _restricted_choice(settings: OptimizerSettings, cp: BlockedCrossProducts) -> str:
    """:func:`choose_optimizer` for a sparsely factored rest block (BOBYQA) or structured terms (BFGS)."""
    wanted = settings.optimizer
    if cp.sparse_rest is not None or not all(t.structure.has_derivative for t in cp.terms):
        if wanted in ("bfgs", "newton"):
            raise ModelSpecError(
                f"optimizer={wanted!r} needs the analytic gradient, which this model (a sparsely factored rest "
                "block, or a structure without d lambda / d theta) does not give: use optimizer='bobyqa' or 'auto'"
            )
        return "bobyqa"
    if wanted == "newton":
        structured = sorted({t.structure.name for t in cp.terms if not t.structure.is_default()})
        raise ModelSpecError(
            f"optimizer='newton' needs the exact Hessian, which this model's {', '.join(structured)} terms "
            "do not give: use optimizer='bfgs', 'bobyqa' or 'auto'"
        )
    return "bobyqa" if wanted == "bobyqa" else "bfgs"


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
        counts = _column_counts(sp.csr_array(cp.a21)).reshape(-1, k).max(axis=1).astype(float)
        pairs = float(counts @ counts) / 2.0
        update = pairs * k
        # the compiled per-level pass where numba is certainly loaded (the supernodal path needs it);
        # elsewhere scipy's products, whatever this process imported before (the choice must not depend on it)
        quadratic = 2.0 * pairs * k * k if reordered is not None else float(cp.a21.nnz * m)
    evaluation = _EVALUATION_OVERHEAD + factor + update
    gradient = _GRADIENT_OVERHEAD + 2.0 * factor + quadratic + m * m
    return gradient / evaluation


def _column_counts(a21: sp.csr_array, chunk: int = 1 << 22) -> np.ndarray:
    """Non-zeros per column of a CSR matrix, counted in chunks (a CSC copy, or one ``bincount`` of every
    index as 64-bit integers, held the 40M non-zeros of a crossed design again)."""
    counts = np.zeros(a21.shape[1], dtype=np.int64)
    for start in range(0, a21.nnz, chunk):
        counts += np.bincount(a21.indices[start : start + chunk], minlength=a21.shape[1])
    return counts


def derivative_fit(
    objective: ProfiledObjective,
    x0: np.ndarray,
    f0: float | None,
    layouts,
    bounds: tuple[np.ndarray, np.ndarray | None],
    settings: OptimizerSettings,
    newton: bool,
) -> OptInfo:
    """Newton or BFGS over the scaled theta, then the optimum with non-negative diagonals.

    Structured terms' parameters are optimized in unbounded coordinates
    (:class:`~mixedmodels.optim.FreeCoordinates`: ``|x|`` for their SDs, a
    tanh map into a correlation's interval); where BFGS ends at one of their bounds
    (0 is a stationary point of ``|x|``) BOBYQA fits too, the better kept.  At a boundary (a diagonal within
    ``settings.zero_tol`` of zero, where lme4's optimum sits on the bound
    exactly) the small diagonals are set to zero when that is not worse by more
    than ``ftol_abs`` (:func:`~mixedmodels.optim.snap_to_zero_bounds`, as after
    BOBYQA).  BOBYQA takes over when the optimizer stalls far from an optimum,
    and when a diagonal started at zero and never moved (zero is a stationary
    point of a scalar term, so the gradient cannot tell a minimum there from a
    maximum).  ``gradient`` and ``hessian`` are kept only when they are the
    final point's.
    """
    lower, upper = bounds
    coordinates = _free_coordinates(layouts, bounds, newton)
    info = _minimize(objective, x0, f0, settings, newton, coordinates)
    x = canonical_signs(info.final, layouts)
    bounded = lower == 0
    stuck = np.logical_or.reduce(bounded & (x == 0) & (x0 == 0))  # np.any's reduction
    if info.return_code == nlopt.MAXEVAL_REACHED:
        return info.updated(final=x, gradient=None, hessian=None)
    if coordinates is not None:  # else no coordinate is at a structured bound
        info, replaced = bobyqa_at_structured_bound(info, objective.value, x, x0, (lower, upper), coordinates, settings)
        if replaced:
            return info
    if info.return_code in (nlopt.SUCCESS, nlopt.FTOL_REACHED) and not stuck:
        snapped = snap_to_zero_bounds(objective.value, x, info.fmin, lower, settings)
        if snapped is not None:
            return info.updated(final=snapped[1], fmin=snapped[0], feval=info.feval + 1, gradient=None, hessian=None)
        if np.logical_and.reduce(x == info.final):  # np.array_equal's test (same shapes), without its wrappers
            return info
        # the same objective after sign changes, but the results need the factor at the reported theta
        objective.value(x)
        return info.updated(final=x, feval=info.feval + 1, gradient=None, hessian=None)
    return polish_with_bobyqa(info, objective.value, x, (lower, upper), settings)


def _free_coordinates(layouts, bounds: tuple[np.ndarray, np.ndarray | None], newton: bool) -> FreeCoordinates | None:
    """The structured terms' unbounded coordinates, or None where they are theta itself (Newton's terms are
    unstructured, by choose_optimizer's rule, and unbounded above; or every parameter maps to itself)."""
    lower, upper = bounds
    if newton and upper is None:
        return None
    coordinates = FreeCoordinates.for_terms(layouts, lower, upper)
    return None if coordinates.identity else coordinates


def _minimize(
    objective: ProfiledObjective,
    x0: np.ndarray,
    f0: float | None,
    settings: OptimizerSettings,
    newton: bool,
    coordinates: FreeCoordinates | None,
) -> OptInfo:
    """:func:`derivative_fit`'s optimizer run, its log in theta's coordinates: Newton on theta, BFGS on theta,
    or BFGS in the structured terms' free ``coordinates``."""
    if newton:
        loop = objective.newton_loop()  # lmer's and a residual structure's objective (lmm/residual.py)
        return minimize_newton(objective.value, objective.derivatives, x0, settings, f0=f0, loop=loop)
    if coordinates is None:
        return minimize_quasi_newton(objective.value, objective.gradient, x0, settings, f0=f0)
    value, gradient = coordinates.wrap(objective.value, objective.gradient)
    info = minimize_quasi_newton(value, gradient, coordinates.to_free(x0), settings, f0=f0)
    return info.updated(initial=x0.copy(), final=coordinates.from_free(info.final), gradient=None)


_POLISH_STEP = 0.05


def better_start(
    points: list[np.ndarray],
    evaluate: Callable[[np.ndarray], float],
    evaluate_all: Callable[[list[np.ndarray]], list[float]] | None = None,
) -> tuple[int, float | None]:
    """Index of the start with the lowest objective (the first on ties) and that objective; a lone start is not
    evaluated.  ``evaluate_all``, if given, evaluates all the points at once (a small dense system's compiled
    :meth:`~mixedmodels.linalg.gradient.ProfiledObjective.values`) instead of ``evaluate`` one by one."""
    if len(points) == 1:
        return 0, None
    values = evaluate_all(points) if evaluate_all is not None else [evaluate(point) for point in points]
    best = int(np.array(values).argmin())  # np.argmin's conversion and method, without its Python wrappers
    return best, values[best]


def reuse_first_value(
    func: Callable[[np.ndarray], float], point: np.ndarray, value: float | None
) -> Callable[[np.ndarray], float]:
    """``func``, except that its first call at ``point`` returns the already known ``value`` (once)."""
    known = [value]

    def wrapped(x: np.ndarray) -> float:
        if known[0] is not None and np.array_equal(x, point):
            result, known[0] = known[0], None
            return result
        return func(x)

    return wrapped


def bobyqa_at_structured_bound(
    info: OptInfo,
    value: Callable[[np.ndarray], float],
    x: np.ndarray,
    x0: np.ndarray,
    bounds: tuple[np.ndarray, np.ndarray | None],
    coordinates: FreeCoordinates,
    settings: OptimizerSettings,
) -> tuple[OptInfo, bool]:
    """Where BFGS in free coordinates ended at ``x`` on a structured term's bound, BOBYQA from ``x0`` as well.

    0 is a stationary point of ``|x|`` (an SD) and a correlation's bound one
    of the tanh map, so BFGS can stop there without the bound being an
    optimum (:meth:`~mixedmodels.optim.FreeCoordinates.at_boundary`).
    Returns BOBYQA's result and True when it is better, else ``info`` with
    BOBYQA's evaluations counted and False; ``info`` unchanged and False when
    BFGS did not converge or ended off the bounds.
    """
    if info.return_code not in (nlopt.SUCCESS, nlopt.FTOL_REACHED) or not coordinates.at_boundary(x):
        return info, False
    lower, upper = bounds
    bobyqa = minimize_bounded(value, x0, lower, upper, settings=settings)
    if bobyqa.fmin < info.fmin:
        return bobyqa.updated(optimizer=f"{info.optimizer} + {bobyqa.optimizer}", feval=info.feval + bobyqa.feval), True
    return info.updated(feval=info.feval + bobyqa.feval), False


def canonical_signs(theta: np.ndarray, layouts) -> np.ndarray:
    """A copy of ``theta`` with each unstructured term's lambda in lme4's canonical signs (non-negative
    diagonal; the objective is the same); structured terms' parameters are canonical already, and entries
    after the terms' (a residual structure's parameters) are kept as they are."""
    x = np.array(theta, dtype=float)
    for t in layouts:
        if not t.structure.is_default():
            continue
        if t.ncols == 1:  # canonical_theta's sign flip of a 1 x 1 lambda, without forming it
            if x[t.theta_start] < 0:
                x[t.theta_start] = -x[t.theta_start]
            continue
        if _negative_diagonal(x, t.theta_start, t.ncols):  # else canonical already (lambda times signs of 1)
            x[t.theta_start : t.theta_stop] = canonical_theta(x[t.theta_start : t.theta_stop], t.ncols)
    return x


def _negative_diagonal(x: np.ndarray, start: int, k: int) -> bool:
    """Whether the ``k x k`` lambda whose lower triangle (column-major) starts at ``x[start]`` has a negative
    diagonal element (each column's first entry: offsets 0, k, 2k - 1, ...)."""
    position = start
    for column in range(k):
        if x[position] < 0:
            return True
        position += k - column
    return False


def polish_with_bobyqa(
    info: OptInfo,
    value: Callable[[np.ndarray], float],
    x: np.ndarray,
    bounds: tuple[np.ndarray, np.ndarray | None],
    settings: OptimizerSettings,
) -> OptInfo:
    """BOBYQA from ``x`` (moved into the bounds) with small first steps and what is left of the evaluation
    budget, where a derivative-based run (``info``) stopped short of an optimum; both runs' counts."""
    lower, upper = bounds
    polish_settings = replace(settings, maxeval=max(1, settings.maxeval - info.feval), initial_step=_POLISH_STEP)
    start = np.maximum(x, lower) if upper is None else np.clip(x, lower, upper)
    polish = minimize_bounded(value, start, lower, upper, settings=polish_settings)
    return polish.updated(
        optimizer=f"{info.optimizer} + {polish.optimizer}",
        feval=info.feval + polish.feval,
        geval=info.geval,
        seconds=info.seconds + polish.seconds,
    )

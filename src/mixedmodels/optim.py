"""Optimizers of the profiled objective, with a fit log.

* :func:`minimize_bounded`: NLopt's BOBYQA (Powell's bound-constrained
  quadratic approximation method), derivative-free, as used by lme4's default
  ``nloptwrap`` and by MixedModels.jl.
* :func:`minimize_quasi_newton`: BFGS with a backtracking line search, for
  objectives whose gradient is available (:mod:`mixedmodels.linalg.gradient`);
  unconstrained, because the profiled objective is defined for any theta and
  invariant under a change of sign of a column of lambda (the caller maps the
  optimum back to non-negative diagonals).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import nlopt
import numpy as np
from scipy.linalg import lapack

from ._validate import Choice, Integer, Real, argument_kinds, check_arguments

__all__ = [
    "OptimizerSettings",
    "OptInfo",
    "minimize_bounded",
    "minimize_quasi_newton",
    "bfgs_inverse_hessian",
    "backtracked_step",
    "minimize_newton",
    "snap_to_zero_bounds",
    "snap_rows_to_zero_bounds",
    "FreeCoordinates",
    "QUASI_NEWTON",
    "NEWTON",
]

OPTIMIZERS = ("auto", "bobyqa", "bfgs", "newton")

_RESULT_MESSAGES = {
    nlopt.SUCCESS: "success",
    nlopt.STOPVAL_REACHED: "stopval reached",
    nlopt.FTOL_REACHED: "ftol reached",
    nlopt.XTOL_REACHED: "xtol reached",
    nlopt.MAXEVAL_REACHED: "maximum number of evaluations reached",
    nlopt.MAXTIME_REACHED: "maximum time reached",
    nlopt.ROUNDOFF_LIMITED: "roundoff errors limited progress (near the optimum)",
}


@dataclass(frozen=True)
class OptimizerSettings:
    """Tolerances of the optimizer.

    ``ftol_abs`` is lme4's (``nloptwrap``: 1e-8 on the deviance scale):
    BOBYQA stops once an evaluation comes within 1e-8 of the best value.
    ``xtol_rel`` 1e-6 (lme4 has none; its ``xtol_abs`` is 1e-8) stops once
    theta moves by less than a millionth, which changes SEs and SDs by ~1e-8
    relative.  Against ``ftol_abs`` 1e-12, lme4's 1e-8 saved 10-30 % of the
    evaluations (InstEval 55 -> 43, Pastes 23 -> 16, sleepstudy 41 -> 36)
    and moved the optimum by at most 8e-9 in the objective, with the
    estimates still matching lme4's to the digits R prints (the whole test
    suite against lme4's references).  ``zero_tol``: coordinates that end in
    ``(0, zero_tol)`` on a lower bound of 0 are set to 0 when that is no
    worse by ``ftol_abs`` (:func:`snap_to_zero_bounds`, after every optimizer).

    ``optimizer``: ``"bobyqa"``, ``"bfgs"`` (quasi-Newton with the analytic
    gradient), ``"newton"`` (exact Hessian; small linear mixed models only),
    or ``"auto"`` (the model picks: see ``mixedmodels.lmm.minimize.choose_optimizer``).
    """

    ftol_rel: float = 1e-14
    ftol_abs: float = 1e-8
    xtol_rel: float = 1e-6
    xtol_abs: float = 1e-12
    initial_step: float = 0.25
    maxeval: int = 100_000
    zero_tol: float = 1e-4
    optimizer: str = "auto"

    @argument_kinds(
        ftol_rel=Real(0.0),
        ftol_abs=Real(0.0),
        xtol_rel=Real(0.0),
        xtol_abs=Real(0.0),
        initial_step=Real(0.0, low_open=True),
        maxeval=Integer(1),
        zero_tol=Real(0.0),
        optimizer=Choice(*OPTIMIZERS),
    )
    def __post_init__(self) -> None:
        check_arguments(vars(self))


@dataclass(frozen=True)
class OptInfo:
    """What the optimizer did: where it started and ended, how long, and why it stopped.

    ``gradient`` and ``hessian`` are the derivatives of the objective at the
    optimum over the parameters not on a bound that lme4's checkConv uses
    (finite differences after BOBYQA; the analytic gradient and its
    differences, or the exact Hessian, after the derivative-based optimizers;
    None where the checks were skipped), and ``warnings`` what those checks
    found.  ``feval`` counts objective evaluations (for linear mixed models
    the start candidates included), ``geval`` gradient evaluations (0 for
    BOBYQA), ``seconds`` the optimizer's time.
    """

    optimizer: str
    initial: np.ndarray
    final: np.ndarray
    fmin: float
    feval: int
    seconds: float
    return_code: int
    message: str
    settings: OptimizerSettings = field(default_factory=OptimizerSettings)
    warnings: tuple[str, ...] = ()
    gradient: np.ndarray | None = None
    hessian: np.ndarray | None = None
    geval: int = 0

    def updated(self, **changes: Any) -> "OptInfo":
        """A copy with ``changes`` (the way every log is copied): ``dataclasses.replace`` without its per-field
        work (a dozen Python calls where a fit makes its final log); every field is an ``__init__`` argument,
        and an unknown name is a TypeError, as there."""
        return OptInfo(**{**self.__dict__, **changes})

    @property
    def optimizer_converged(self) -> bool:
        """The optimizer's own verdict (its return code), before the post-fit checks."""
        stopped_early = self.return_code in (nlopt.MAXEVAL_REACHED, nlopt.MAXTIME_REACHED)
        return (self.return_code > 0 or self.return_code == nlopt.ROUNDOFF_LIMITED) and not stopped_early

    @property
    def converged(self) -> bool:
        """True unless the optimizer failed, ran out of evaluations or time, or a check warned.

        NLopt's "roundoff limited" stop counts as converged: BOBYQA could not
        improve further in floating point, which happens at boundary optima
        (e.g. singular fits); lme4 reports these as converged too.
        """
        return self.optimizer_converged and not self.warnings

    def __repr__(self) -> str:
        return (
            f"OptInfo(optimizer={self.optimizer!r}, feval={self.feval}, geval={self.geval}, fmin={self.fmin:.10g}, "
            f"seconds={self.seconds:.3g}, message={self.message!r}, converged={self.converged})"
        )


@dataclass(frozen=True, eq=False)
class FreeCoordinates:
    """Unbounded coordinates ``x`` for parameters ``t`` with bounds, for the unconstrained BFGS.

    ``t = lower + (upper - lower)(1 + tanh x) / 2`` where both bounds are finite (a
    correlation parameter), ``t = |x|`` where ``even`` says so (the standard deviations
    of structured terms: a negative one would be another model, e.g. for ``cs``), and
    ``t = x`` elsewhere (theta of unstructured terms, whose objective is even in each
    column of lambda: the caller makes the signs canonical afterwards).

    Attributes
    ----------
    lower, upper : ndarray
    even : ndarray of bool
    """

    lower: np.ndarray
    upper: np.ndarray
    even: np.ndarray

    @classmethod
    def for_terms(cls, layouts, lower: np.ndarray, upper: np.ndarray | None) -> "FreeCoordinates":
        """For theta of random-effects terms (their layouts: ``theta_start``, ``theta_stop``, ``structure``),
        then any further parameters (unbounded): structured terms' SDs by ``|x|``, correlations by tanh."""
        upper = np.full(lower.size, np.inf) if upper is None else upper
        structured = np.zeros(lower.size, dtype=bool)
        for t in layouts:
            structured[t.theta_start : t.theta_stop] = not t.structure.is_default()
        return cls(lower, upper, structured & (lower == 0) & np.isinf(upper))

    @property
    def interval(self) -> np.ndarray:
        return np.isfinite(self.lower) & np.isfinite(self.upper)

    @property
    def identity(self) -> bool:
        """Whether ``x`` is ``t`` itself (no interval and no even element)."""
        return not (self.interval.any() or self.even.any())

    def from_free(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        t = np.where(self.even, np.abs(x), x)
        inside = self.interval
        if inside.any():
            low, width = self.lower[inside], self.upper[inside] - self.lower[inside]
            t[inside] = low + width * (1.0 + np.tanh(x[inside])) / 2.0
        return t

    def to_free(self, t: np.ndarray) -> np.ndarray:
        x = np.asarray(t, dtype=float).copy()
        inside = self.interval
        if inside.any():
            low, width = self.lower[inside], self.upper[inside] - self.lower[inside]
            unit = np.clip(2.0 * (x[inside] - low) / width - 1.0, -_INTERVAL_EDGE, _INTERVAL_EDGE)
            x[inside] = np.arctanh(unit)
        return x

    def chain(self, x: np.ndarray, gradient: np.ndarray) -> np.ndarray:
        """The gradient over ``x`` from the gradient over ``t`` at ``t = from_free(x)``."""
        x = np.asarray(x, dtype=float)
        factor = np.where(self.even, np.sign(x), 1.0)
        inside = self.interval
        if inside.any():
            width = self.upper[inside] - self.lower[inside]
            factor[inside] = width * (1.0 - np.tanh(x[inside]) ** 2) / 2.0
        return gradient * factor

    def at_boundary(self, t: np.ndarray, tol: float = 1e-4) -> bool:
        """Whether an ``even`` element of ``t`` is below ``tol`` or an interval element within ``tol``
        (relative to the interval's width) of a bound.

        There the unbounded coordinates are a poor guide: 0 is a stationary point of ``|x|``,
        and a bound is at infinity of the tanh map, so a caller checks such a point with BOBYQA.
        """
        t = np.asarray(t, dtype=float)
        inside = self.interval
        width = self.upper[inside] - self.lower[inside]
        near = (t[inside] - self.lower[inside] < tol * width) | (self.upper[inside] - t[inside] < tol * width)
        return bool(np.any(np.abs(t[self.even]) < tol) or np.any(near))

    def wrap(
        self, func: Callable[[np.ndarray], float], grad: Callable[[np.ndarray], np.ndarray]
    ) -> tuple[Callable[[np.ndarray], float], Callable[[np.ndarray], np.ndarray]]:
        """``func`` and ``grad`` over ``x`` (each maps ``x`` to ``t`` the same way, so a caller's
        cache keyed by ``t`` sees equal arrays)."""
        return (lambda x: func(self.from_free(x))), (lambda x: self.chain(x, grad(self.from_free(x))))


# a correlation started at a bound starts just inside it (atanh(1 - 1e-12) = 14.2)
_INTERVAL_EDGE = 1.0 - 1e-12


def _initial_steps(x0: np.ndarray, lower: np.ndarray, step: float) -> np.ndarray:
    """Initial trust-region steps: ``step`` in every coordinate, scaled down for zeros at a bound."""
    return np.where(x0 == 0.0, step, np.maximum(np.abs(x0) * step, step / 10))


def snap_to_zero_bounds(
    func: Callable[[np.ndarray], float], x: np.ndarray, fmin: float, lower: np.ndarray, settings: OptimizerSettings
) -> tuple[float, np.ndarray] | None:
    """``(value, x)`` with the coordinates that ended just above a lower bound of 0 set to 0, if that is no worse.

    BOBYQA can stop at, say, theta = 1e-11 where the optimum is the boundary
    theta = 0 (a singular fit): lme4 reports 0 there, and 1e-11 prints as
    noise.  Coordinates in ``(0, settings.zero_tol)`` on a bound of 0 are set to 0
    together, and the point is kept when its objective is within
    ``settings.ftol_abs`` of ``fmin`` (MixedModels.jl does the same after its
    fits).  Every optimizer's result goes through here: BOBYQA's in
    :func:`minimize_bounded`, the derivative-based ones' (whose theta is
    unconstrained) after their signs are made canonical.  ``func(x)`` is
    evaluated once, or not at all; None when nothing changes.
    """
    near = _near_zero_bound(x, lower, settings.zero_tol)
    if not np.logical_or.reduce(near):  # ndarray.any's reduction, without its Python wrapper
        return None
    candidate = np.where(near, 0.0, x)
    value = float(func(candidate))
    return (value, candidate) if value <= fmin + settings.ftol_abs else None


def snap_rows_to_zero_bounds(
    func: Callable[[np.ndarray, np.ndarray], np.ndarray],
    x: np.ndarray,
    fmin: np.ndarray,
    lower: np.ndarray,
    settings: OptimizerSettings,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`snap_to_zero_bounds` for a batch of optima (the rows of ``x``, their values ``fmin``).

    ``func(rows, points)`` evaluates the objectives of the fits ``rows`` at
    ``points`` (one row each), once for every fit that has a coordinate to
    snap.  Returns the new ``(x, fmin)`` (copies where anything changed).
    """
    near = _near_zero_bound(x, lower[None, :], settings.zero_tol)
    rows = np.flatnonzero(near.any(axis=1))
    if rows.size == 0:
        return x, fmin
    candidate = np.where(near[rows], 0.0, x[rows])
    values = np.asarray(func(rows, candidate), dtype=float)
    keep = values <= fmin[rows] + settings.ftol_abs
    x, fmin = x.copy(), np.array(fmin, dtype=float)
    x[rows[keep]], fmin[rows[keep]] = candidate[keep], values[keep]
    return x, fmin


def _near_zero_bound(x: np.ndarray, lower: np.ndarray, zero_tol: float) -> np.ndarray:
    """Coordinates in ``(0, zero_tol)`` whose lower bound is 0."""
    return (lower == 0.0) & (x > 0.0) & (x < zero_tol)


def minimize_bounded(
    func: Callable[[np.ndarray], float],
    x0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray | None = None,
    settings: OptimizerSettings | None = None,
) -> OptInfo:
    """Minimize ``func`` over the box ``lower <= x <= upper`` with BOBYQA.

    Returns an :class:`OptInfo` whose ``final`` is the best point found.
    """
    settings = settings or OptimizerSettings()
    x0 = np.asarray(x0, dtype=float)
    opt = nlopt.opt(nlopt.LN_BOBYQA, x0.size)
    opt.set_lower_bounds(np.asarray(lower, dtype=float))
    if upper is not None:
        opt.set_upper_bounds(np.asarray(upper, dtype=float))
    count = [0]
    best = [np.inf, x0.copy()]

    def objective(x: np.ndarray, grad: np.ndarray) -> float:
        count[0] += 1
        value = float(func(x))
        if value < best[0]:
            best[0], best[1] = value, x.copy()
        return value if np.isfinite(value) else 1e300

    opt.set_min_objective(objective)
    opt.set_ftol_rel(settings.ftol_rel)
    opt.set_ftol_abs(settings.ftol_abs)
    opt.set_xtol_rel(settings.xtol_rel)
    opt.set_xtol_abs(settings.xtol_abs)
    opt.set_maxeval(settings.maxeval)
    opt.set_initial_step(_initial_steps(x0, np.asarray(lower), settings.initial_step))
    start = time.perf_counter()
    try:
        opt.optimize(x0)
        code = opt.last_optimize_result()
    except nlopt.RoundoffLimited:
        code = nlopt.ROUNDOFF_LIMITED
    snapped = snap_to_zero_bounds(
        lambda x: objective(x, np.empty(0)), best[1], best[0], np.asarray(lower, dtype=float), settings
    )
    if snapped is not None:
        best[0], best[1] = snapped
    seconds = time.perf_counter() - start
    message = _RESULT_MESSAGES.get(code, f"nlopt return code {code}")
    return OptInfo(
        optimizer="NLopt LN_BOBYQA",
        initial=x0.copy(),
        final=best[1],
        fmin=float(best[0]),
        feval=count[0],
        seconds=seconds,
        return_code=int(code),
        message=message,
        settings=settings,
    )


QUASI_NEWTON = "BFGS (analytic gradient)"
_ARMIJO = 1e-4  # sufficient decrease, as a share of the decrease the slope predicts
# NLopt's return codes, so that OptInfo reads the same for either optimizer
_SUCCESS, _FTOL, _MAXEVAL, _STALLED = nlopt.SUCCESS, nlopt.FTOL_REACHED, nlopt.MAXEVAL_REACHED, nlopt.ROUNDOFF_LIMITED


@dataclass
class _QuasiNewtonState:
    x: np.ndarray
    f: float
    g: np.ndarray
    inverse_hessian: np.ndarray | None = None


def minimize_quasi_newton(
    func: Callable[[np.ndarray], float],
    grad: Callable[[np.ndarray], np.ndarray],
    x0: np.ndarray,
    settings: OptimizerSettings | None = None,
    f0: float | None = None,
    inverse_hessian: np.ndarray | None = None,
) -> OptInfo:
    """Minimize ``func`` over all of R^n by BFGS with a backtracking (Armijo) line search.

    ``grad(x)`` is called at ``x0`` and at points ``func`` was just called at
    (so a caller may keep the factorization of the last ``func`` call for it).  The first step is steepest descent of length
    ``settings.initial_step`` at most; later steps use the BFGS inverse-Hessian
    approximation ``H``, scaled after the first step by ``s'y / y'y`` (Shanno).
    A caller that knows the curvature passes ``inverse_hessian``, ``H`` at ``x0``
    (then the first step is ``-H g``, not steepest descent).
    Stops when the decrease the quadratic model predicts, ``g'Hg / 2``, is
    below ``settings.ftol_abs / 100`` (``converged``), when a step gains less
    than ``ftol_abs / 100`` with a predicted decrease below ``ftol_abs``, when the
    line search cannot decrease ``func`` (roundoff), or after ``maxeval``
    calls of ``func``.
    """
    settings = settings or OptimizerSettings()
    counts = [0, 0]

    def value(x: np.ndarray) -> float:
        counts[0] += 1
        result = float(func(x))
        return result if np.isfinite(result) else np.inf

    def gradient(x: np.ndarray) -> np.ndarray:
        counts[1] += 1
        return np.asarray(grad(x), dtype=float)

    start = time.perf_counter()
    x = np.asarray(x0, dtype=float).copy()
    state = _QuasiNewtonState(x, value(x) if f0 is None else float(f0), np.empty(0), inverse_hessian)
    state.g = gradient(x)
    code = _bfgs_iterations(state, value, gradient, counts, settings)
    return _derivative_result(QUASI_NEWTON, x0, (state.x, state.f), code, counts, start, settings)


def _derivative_result(
    optimizer: str,
    x0: np.ndarray,
    optimum: tuple[np.ndarray, float],
    code: int,
    counts: list[int],
    start: float,
    settings: OptimizerSettings,
    **derivatives: np.ndarray | None,
) -> OptInfo:
    """The :class:`OptInfo` of a derivative-based run: its optimum ``(x, f)``, NLopt-style ``code``,
    ``counts`` of evaluations and gradients, time since ``start`` (``perf_counter``), and optionally the
    final point's ``gradient`` and ``hessian``."""
    return OptInfo(
        optimizer=optimizer,
        initial=np.asarray(x0, dtype=float).copy(),
        final=optimum[0],
        fmin=optimum[1],
        feval=counts[0],
        seconds=time.perf_counter() - start,
        return_code=code,
        message=_RESULT_MESSAGES.get(code, f"code {code}"),
        settings=settings,
        geval=counts[1],
        **derivatives,
    )


def _bfgs_iterations(state: _QuasiNewtonState, value, gradient, counts: list[int], settings: OptimizerSettings) -> int:
    """BFGS steps from ``state`` (updated in place); returns an NLopt-style code."""
    tolerance = settings.ftol_abs / 100.0
    while True:
        if not np.all(np.isfinite(state.g)):
            return _STALLED
        direction = _direction(state, settings.initial_step)
        predicted = -float(state.g @ direction)
        if predicted <= 0:  # not a descent direction: restart from steepest descent once
            state.inverse_hessian = None
            direction = _direction(state, settings.initial_step)
            predicted = -float(state.g @ direction)
        if predicted / 2.0 < tolerance and state.inverse_hessian is not None:
            return _SUCCESS
        if counts[0] >= settings.maxeval:
            return _MAXEVAL
        near = predicted < settings.ftol_abs  # within the tolerance already: one try, no backtracking in roundoff
        step = _line_search(state, direction, -predicted, value, counts, settings.maxeval, tries=1 if near else 60)
        if step is None:
            return _SUCCESS if near else (_MAXEVAL if counts[0] >= settings.maxeval else _STALLED)
        x_new, f_new = step
        g_new = gradient(x_new)
        _update_inverse_hessian(state, x_new - state.x, g_new - state.g)
        gain = state.f - f_new
        state.x, state.f, state.g = x_new, f_new, g_new
        if gain < tolerance and predicted < settings.ftol_abs:
            return _FTOL


def _direction(state: _QuasiNewtonState, initial_step: float) -> np.ndarray:
    if state.inverse_hessian is None:
        largest = float(np.max(np.abs(state.g))) if state.g.size else 0.0
        return -state.g * (min(1.0, initial_step / largest) if largest > 0 else 1.0)
    return -(state.inverse_hessian @ state.g)


def _line_search(
    state: _QuasiNewtonState, direction: np.ndarray, slope: float, value, counts: list[int], maxeval: int, tries: int
) -> tuple[np.ndarray, float] | None:
    """The first step ``alpha = 1, ...`` (quadratic interpolation, clipped to [0.1, 0.5] of the last)
    that decreases ``f`` enough (Armijo); None when none does within ``tries`` or before alpha is negligible."""
    alpha = 1.0
    for _ in range(tries):
        if counts[0] >= maxeval:
            return None
        trial = state.x + alpha * direction
        f_trial = value(trial)
        if f_trial <= state.f + _ARMIJO * alpha * slope:
            return trial, f_trial
        if alpha * float(np.abs(direction).max()) < 1e-12 * max(1.0, float(np.abs(state.x).max())):
            return None
        alpha = backtracked_step(f_trial, state.f, slope, alpha)
    return None


def backtracked_step(f_trial: float, f: float, slope: float, alpha: float) -> float:
    """The line search's next step length after ``alpha`` gave ``f_trial`` from ``f`` (directional derivative
    ``slope``): the minimum of the quadratic through them, clipped to [0.1, 0.5] of ``alpha``; a tenth of it
    after a non-finite trial.  The compiled Newton loops (``linalg._dense_kernels``, ``linalg._residual_kernels``)
    call this function too (numba-compiled)."""
    if np.isfinite(f_trial):
        curvature = f_trial - f - slope * alpha
        guess = -slope * alpha * alpha / (2.0 * curvature) if curvature > 0 else 0.5 * alpha
        return min(max(guess, 0.1 * alpha), 0.5 * alpha)
    return alpha * 0.1


def _update_inverse_hessian(state: _QuasiNewtonState, s: np.ndarray, y: np.ndarray) -> None:
    """The BFGS update of ``H`` (skipped unless the curvature ``s'y`` is positive)."""
    sy = float(s @ y)
    if not sy > 1e-12 * float(np.sqrt((s @ s) * (y @ y))):
        return
    n = s.size
    if state.inverse_hessian is None:
        state.inverse_hessian = np.eye(n) * (sy / float(y @ y))
    rho = 1.0 / sy
    left = np.eye(n) - rho * np.outer(s, y)
    state.inverse_hessian = left @ state.inverse_hessian @ left.T + rho * np.outer(s, s)


def bfgs_inverse_hessian(points: list[np.ndarray], gradients: list[np.ndarray]) -> np.ndarray | None:
    """The inverse-Hessian approximation :func:`minimize_quasi_newton` holds after accepting ``points``
    (with their ``gradients``) in turn, from steepest descent: for a caller that wants the curvature
    a BFGS run found (None before the first update with positive curvature)."""
    state = _QuasiNewtonState(points[0], 0.0, gradients[0]) if points else None
    for x, g in zip(points[1:], gradients[1:]):
        _update_inverse_hessian(state, x - state.x, g - state.g)
        state.x, state.g = x, g
    return None if state is None else state.inverse_hessian


NEWTON = "Newton (analytic gradient and Hessian)"
_NEWTON_DECREMENT = 1e-6  # stop when half the Newton decrement is below ftol_abs times this
_MAX_NEWTON_STEP = 1.0  # longest step in any coordinate, relative to the largest (scaled theta is O(1))
_NEWTON_CODES = np.array([_SUCCESS, _MAXEVAL, _STALLED])


def minimize_newton(
    func: Callable[[np.ndarray], float],
    derivatives: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    x0: np.ndarray,
    settings: OptimizerSettings | None = None,
    f0: float | None = None,
    loop: Callable | None = None,
) -> OptInfo:
    """Minimize ``func`` over R^n by Newton's method with the exact Hessian and a backtracking line search.

    ``derivatives(x)`` returns the gradient and Hessian at ``x`` (called at
    ``x0`` and at points ``func`` was just called at).  Steps are at most
    ``_MAX_NEWTON_STEP`` times the largest coordinate (or 1) in every coordinate.  Stops
    when the Newton decrement ``g'H^-1 g / 2`` is below ``ftol_abs * 1e-6``
    at a positive definite Hessian (convergence is quadratic near the optimum,
    so the last step costs one evaluation and takes theta to rounding level:
    with ``ftol_abs / 100`` a flat criterion -- the lecture's incomplete
    sleepstudy, ``(0 + Days | Subject)`` -- stopped 2.3e-7 from the optimum in
    theta, 2.7e-6 off in a conditional slope lme4 prints to 7 decimals) (``converged``: the final point is the
    one whose gradient and Hessian are returned in ``gradient`` and ``hessian``),
    when the line search cannot decrease ``func``, or after ``maxeval`` calls.
    Directions of negative curvature are followed downhill (:func:`_newton_direction`).

    ``loop``, when given, runs this same loop compiled (a small dense system's:
    :func:`mixedmodels.linalg._dense_kernels.dense_newton`) with ``(x0, f0, rules, codes)``, the rules and
    NLopt codes of this function, and returns ``(x, f, code, evaluations, derivative calls, gradient,
    Hessian)``; ``func`` and ``derivatives`` are then not called.
    """
    settings = settings or OptimizerSettings()
    if loop is not None:
        start = time.perf_counter()
        rules = np.array([_NEWTON_DECREMENT, settings.ftol_abs, settings.maxeval, _MAX_NEWTON_STEP, _ARMIJO])
        x, f, code, nfev, ngev, g, h = loop(np.array(x0, dtype=float), f0, rules, _NEWTON_CODES)
        counts = [int(nfev), int(ngev)]
        return _derivative_result(NEWTON, x0, (x, float(f)), int(code), counts, start, settings, gradient=g, hessian=h)
    counts = [0, 0]

    def value(x: np.ndarray) -> float:
        counts[0] += 1
        result = float(func(x))
        return result if np.isfinite(result) else np.inf

    start = time.perf_counter()
    x = np.asarray(x0, dtype=float).copy()
    f = value(x) if f0 is None else float(f0)
    counts[1] += 1
    g, h = derivatives(x)
    code = _STALLED
    while np.isfinite(g).all() and np.isfinite(h).all():
        step, positive = _newton_direction(g, h, _MAX_NEWTON_STEP * max(1.0, float(np.abs(x).max(initial=0.0))))
        predicted = -float(g @ step)
        if positive and predicted / 2.0 < settings.ftol_abs * _NEWTON_DECREMENT:
            code = _SUCCESS
            break
        if counts[0] >= settings.maxeval:
            code = _MAXEVAL
            break
        state = _QuasiNewtonState(x, f, g)
        near = positive and predicted < settings.ftol_abs
        found = _line_search(state, step, -predicted, value, counts, settings.maxeval, tries=1 if near else 60)
        if found is None:
            code = _SUCCESS if near else (_MAXEVAL if counts[0] >= settings.maxeval else _STALLED)
            break
        x, f = found
        counts[1] += 1
        g, h = derivatives(x)
    return _derivative_result(NEWTON, x0, (x, f), code, counts, start, settings, gradient=g, hessian=h)


def _newton_direction(g: np.ndarray, h: np.ndarray, limit: float) -> tuple[np.ndarray, bool]:
    """The Newton step ``-H^-1 g`` and whether H was positive definite; at most ``limit`` in any coordinate.

    Where H is not positive definite, each eigen-direction's curvature is
    taken in absolute value (so the step goes downhill), and along directions
    of negative curvature the step is at least a tenth of ``limit``: at a
    saddle -- a diagonal element of lambda at zero, where the objective is even
    in its column -- the gradient is zero there and only the curvature shows
    the way down.
    """
    if g.size == 0:
        return g.copy(), True
    values, vectors = _eigh(h)
    floor = 1e-10 * max(float(np.abs(values).max()), 1e-300)
    along = vectors.T @ g
    positive = bool(values.min() > floor)
    steps = -along / np.maximum(np.abs(values), floor)
    if not positive:
        push = (values < -floor) & (np.abs(steps) < 0.1 * limit)
        steps[push] = np.where(along[push] > 0, -0.1, 0.1) * limit
    step = vectors @ steps
    largest = float(np.abs(step).max())
    if largest > limit:
        step *= limit / largest
    return step, positive


def _eigh(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.linalg.eigh(h)`` by its LAPACK routine (``dsyevd``, lower triangle) without numpy's wrapper
    (~2 us against ~6 us for 3 x 3: four calls a sleepstudy fit)."""
    values, vectors, info = lapack.dsyevd(h, compute_v=1, lower=1)
    if info != 0:
        raise np.linalg.LinAlgError("Eigenvalues did not converge")
    return values, vectors

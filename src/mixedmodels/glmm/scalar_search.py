"""Stage 1's search over one scalar theta: a safeguarded secant method on the derivative in ``log theta``.

The ``nAGQ = 0`` criterion ``f(t)`` of a GLMM with one scalar random-effects
term is even in its scaled theta ``t``, so its minimum over ``t >= 0`` is a
root of ``h(s) = df/ds = t f'(t)`` in ``s = log t``.  ``f`` is far from
quadratic in ``t`` (concave above the optimum on Owls: BFGS's fixed first
step and secant step overshoot to ``t = -0.93``, then backtrack: 10
evaluations), while ``h`` is close to linear in ``s`` (cbpp: the secant of the
first two points lands within 0.01 of the optimum).  So:

* from ``t0`` a first step against the sign of ``h``: 0.5 in ``s`` towards 0
  (a factor 0.61), BFGS's first step (``settings.initial_step`` in ``t``) away from it;
* secant steps on ``h`` from the last two points, each at most 2 in ``s``
  (a factor 7.4), until ``h`` changes sign; towards 0 by that longest step
  where ``h`` shrinks like ``t^p`` with ``p >= 1.5`` and the secant of
  ``f'`` in ``t`` has its root below ``t / 4`` (towards a minimum at or near
  0, ``f' ~ t`` and ``h ~ t^2``: secant steps in ``s`` would shrink
  geometrically and never get there); then the bracket keeps them in
  (a secant step falling outside it is replaced by its midpoint);
* a step to a point where ``f`` is not finite (PIRLS failed) is halved;
* it stops when the decrease the secant model predicts, ``h^2 / (2 h')``
  (or ``f'^2 / (2 f'')`` in ``t``, the larger), is below ``ftol_abs / 100`` (BFGS's rule, :func:`~mixedmodels.optim.minimize_quasi_newton`),
  or when a step gains less than that and the prediction is below ``ftol_abs``.

Where this does not apply -- a start at 0, a minimum at ``t = 0`` (``h > 0``
down to ``t0 * 1e-4``), a gradient that is not finite, a search that runs out
of steps -- BFGS runs from ``t0`` instead, as before, and the evaluations add up.
Each evaluation is one PIRLS run and one profiled gradient (the gradient is
asked for at every point evaluated, as BFGS asks for it at every point it
accepts).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import nlopt

from ..optim import OptimizerSettings, OptInfo, minimize_quasi_newton

__all__ = ["minimize_even_scalar", "SECANT"]

SECANT = "secant on d f / d log theta (analytic gradient)"
_FIRST_STEP = 0.5  # in log t, towards 0
_LONGEST_STEP = 2.0  # in log t, before the root is bracketed
_SHRINKING = 1.5  # h ~ t^p with p at least this, moving towards 0, ...
_NEAR_ZERO = 0.25  # ... and the secant of f' in t with its root below this fraction of t: a minimum near 0
_SMALLEST = 1e-4  # relative to t0: below this the minimum is taken to be at 0 (BFGS decides)
_SPARE = 4  # evaluations left to BFGS's fallback within maxeval


@dataclass
class _Point:
    s: float
    f: float
    h: float


class _NoSearch(Exception):
    """The secant search does not apply here: BFGS from the start instead."""


def minimize_even_scalar(
    func: Callable[[np.ndarray], float],
    grad: Callable[[np.ndarray], np.ndarray],
    x0: np.ndarray,
    settings: OptimizerSettings,
) -> OptInfo:
    """Minimize an even function of one variable (``func(x) == func(-x)``) from ``x0`` (size 1).

    See the module docstring; ``grad`` is called at each point ``func`` was just called at.
    Returns the :class:`~mixedmodels.optim.OptInfo` of the search (optimizer :data:`SECANT`),
    or of BFGS where the search does not apply (its evaluations including the search's).
    """
    start = time.perf_counter()
    search = _Search(func, grad, settings)
    try:
        if x0.size != 1 or not np.isfinite(x0[0]) or x0[0] == 0:
            raise _NoSearch
        best, code = search.run(math.log(abs(float(x0[0]))))
    except _NoSearch:
        info = minimize_quasi_newton(func, grad, x0, settings)
        return info.updated(feval=info.feval + search.feval, geval=info.geval + search.geval)
    return OptInfo(
        optimizer=SECANT,
        initial=np.asarray(x0, dtype=float).copy(),
        final=np.array([math.exp(best.s)]),
        fmin=best.f,
        feval=search.feval,
        seconds=time.perf_counter() - start,
        return_code=code,
        message="secant search converged" if code > 0 else "secant search stopped at maxeval",
        settings=settings,
        geval=search.geval,
    )


class _Search:
    """The state of one search: the points evaluated, in order, and the counts."""

    def __init__(self, func, grad, settings: OptimizerSettings):
        self.func, self.grad, self.settings = func, grad, settings
        self.tol = settings.ftol_abs / 100.0
        self.points: list[_Point] = []
        self.feval = self.geval = 0

    def evaluate(self, s: float) -> _Point | None:
        """``f`` and ``h`` at ``log t = s``, or None where ``f`` is not finite."""
        x = np.array([math.exp(s)])
        self.feval += 1
        f = float(self.func(x))
        if not np.isfinite(f):
            return None
        self.geval += 1
        g = float(np.asarray(self.grad(x), dtype=float)[0])
        if not np.isfinite(g):
            raise _NoSearch
        point = _Point(s, f, x[0] * g)
        self.points.append(point)
        return point

    def run(self, s0: float) -> tuple[_Point, int]:
        """The best point and an NLopt-style code."""
        first = self.evaluate(s0)
        if first is None:
            raise _NoSearch
        self.floor = s0 + math.log(_SMALLEST)
        # towards 0 a factor 0.61; away from it BFGS's first step (a step up by a factor changes the
        # modes' scale as much: on grouseticks' sqrt link, 1 -> 1.65 let PIRLS find other modes)
        target = s0 - _FIRST_STEP if first.h > 0 else math.log(math.exp(s0) + self.settings.initial_step)
        last = first
        while True:
            point = self.step_to(last, target)
            best = min(self.points, key=lambda p: p.f)
            if point.h == 0 or point.s == last.s:  # a stationary point, or no step left
                return best, nlopt.SUCCESS
            gain = last.f - point.f
            slope = (point.h - last.h) / (point.s - last.s)
            predicted = _predicted_decrease(last, point, slope)
            if predicted < self.tol or (0 <= gain < self.tol and predicted < self.settings.ftol_abs):
                return best, nlopt.SUCCESS
            if self.feval >= self.settings.maxeval:
                return best, nlopt.MAXEVAL_REACHED
            if self.feval >= self.settings.maxeval - _SPARE:
                raise _NoSearch
            target = self.next_target(last, point, slope)
            last = point

    def step_to(self, last: _Point, target: float) -> _Point:
        """The point at ``target``, halving the step from ``last`` while ``f`` is not finite there."""
        for _ in range(30):
            if target < self.floor:
                raise _NoSearch  # the minimum at (or near) 0: BFGS's
            point = self.evaluate(target)
            if point is not None:
                return point
            target = (last.s + target) / 2.0
        raise _NoSearch

    def next_target(self, last: _Point, point: _Point, slope: float) -> float:
        """The secant root of ``h`` from the last two points, safeguarded by the bracket (if any)."""
        below = [p.s for p in self.points if p.h < 0]
        above = [p.s for p in self.points if p.h > 0]
        if below and above:
            low, high = max(below), min(above)
            if low > high:  # several roots: bracket around the last point
                low, high = sorted((point.s, last.s if last.h * point.h < 0 else point.s))
                if low == high:
                    raise _NoSearch
            target = point.s - point.h / slope if slope > 0 else math.nan
            return target if low < target < high else (low + high) / 2.0
        direction = -math.copysign(1.0, point.h)
        if (
            direction < 0
            and _power(last, point) >= _SHRINKING
            and _root_in_t(last, point) <= _NEAR_ZERO * math.exp(point.s)
        ):
            step = _LONGEST_STEP  # h shrinking like t^2 and f' like t: a minimum at (or near) 0
        elif slope > 0:
            step = min(abs(point.h / slope), _LONGEST_STEP)
        else:
            step = min(2.0 * abs(point.s - last.s), _LONGEST_STEP)
        return point.s + direction * step


def _predicted_decrease(a: _Point, b: _Point, slope: float) -> float:
    """The decrease of ``f`` to the secant's root, the larger of the models in ``s`` and in ``t`` (inf
    where neither has positive curvature): in ``s`` alone it vanishes near ``t = 0`` with ``h``."""
    ta, tb = math.exp(a.s), math.exp(b.s)
    slope_t = (b.h / tb - a.h / ta) / (tb - ta)
    in_s = b.h * b.h / (2.0 * slope) if slope > 0 else -math.inf
    in_t = (b.h / tb) ** 2 / (2.0 * slope_t) if slope_t > 0 else -math.inf
    decrease = max(in_s, in_t)
    return decrease if decrease > -math.inf else math.inf


def _power(a: _Point, b: _Point) -> float:
    """``p`` of ``h ~ t^p`` through two points with ``h > 0`` (0 otherwise)."""
    if a.h <= 0 or b.h <= 0 or a.s == b.s:
        return 0.0
    return math.log(b.h / a.h) / (b.s - a.s)


def _root_in_t(a: _Point, b: _Point) -> float:
    """The root of the secant of ``f'(t)`` through two points (inf where its slope is not positive)."""
    ta, tb = math.exp(a.s), math.exp(b.s)
    ga, gb = a.h / ta, b.h / tb
    slope = (gb - ga) / (tb - ta)
    return tb - gb / slope if slope > 0 else math.inf

"""Richardson-extrapolated central differences (private helpers for ``ddf``).

For a step ``h`` the central differences

    D1(h) = (f(x + h e_i) - f(x - h e_i)) / (2h)
    D2(h) = (f(x + h e_i) - 2 f(x) + f(x - h e_i)) / h^2
    Dij(h) = (f(x + h e_i + h e_j) + f(x - h e_i - h e_j) - f(x + h e_i) - f(x - h e_i)
              - f(x + h e_j) - f(x - h e_j) + 2 f(x)) / (2 h^2)

have error expansions in even powers of ``h``.  Evaluating them at
``h, h/2, h/4, ...`` and eliminating the ``h^2, h^4, ...`` terms
(``D <- (4^m D(h/2) - D(h)) / (4^m - 1)``) gives derivatives accurate to
many more digits than one difference: the same scheme as numDeriv's
"Richardson" method, which lmerTest uses.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["jacobian", "hessian", "step_sizes", "evaluations"]

_REL_STEP = 3e-3
_ZERO_TOL = 1e-6
_LEVELS = 3


def step_sizes(x: np.ndarray, rel: float = _REL_STEP) -> np.ndarray:
    """Initial steps: ``rel * |x|``, or ``rel`` itself for (near-)zero coordinates."""
    ax = np.abs(x)
    return np.where(ax < _ZERO_TOL, rel, rel * ax)


def evaluations(k: int, levels: int = _LEVELS) -> int:
    """Distinct points :func:`hessian` and :func:`jacobian` evaluate together for k parameters."""
    return 1 + 2 * k * levels + k * (k - 1) * levels


def _extrapolate(estimates: list[np.ndarray]) -> np.ndarray:
    """Richardson extrapolation of estimates at steps h, h/2, h/4, ... (error in even powers)."""
    table = [np.asarray(e, dtype=float) for e in estimates]
    for m in range(1, len(table)):
        factor = 4.0**m
        table = [(factor * table[j + 1] - table[j]) / (factor - 1.0) for j in range(len(table) - 1)]
    return table[0]


def jacobian(
    fun: Callable[[np.ndarray], np.ndarray], x: np.ndarray, rel: float = _REL_STEP, levels: int = _LEVELS
) -> np.ndarray:
    """Jacobian ``d fun / d x`` of a vector-valued function, shape ``(len(fun(x)), len(x))``."""
    x = np.asarray(x, dtype=float)
    h0 = step_sizes(x, rel)
    columns = []
    for i in range(x.size):
        estimates = []
        for level in range(levels):
            h = h0[i] / 2.0**level
            step = np.zeros_like(x)
            step[i] = h
            estimates.append((np.asarray(fun(x + step)) - np.asarray(fun(x - step))) / (2.0 * h))
        columns.append(_extrapolate(estimates))
    return np.column_stack(columns)


def hessian(
    fun: Callable[[np.ndarray], float], x: np.ndarray, rel: float = _REL_STEP, levels: int = _LEVELS
) -> np.ndarray:
    """Hessian of a scalar function by extrapolated second central differences.

    ``fun`` should cache its values: the off-diagonal differences reuse the
    diagonal ones' points (``x +- h e_i``), which the Jacobian also uses.
    """
    x = np.asarray(x, dtype=float)
    k = x.size
    h0 = step_sizes(x, rel)
    f0 = float(fun(x))
    out = np.empty((k, k))
    unit = np.eye(k)
    for i in range(k):
        for j in range(i + 1):
            estimates = []
            for level in range(levels):
                hi, hj = h0[i] / 2.0**level, h0[j] / 2.0**level
                ei, ej = hi * unit[i], hj * unit[j]
                if i == j:
                    d = (fun(x + ei) - 2.0 * f0 + fun(x - ei)) / hi**2
                else:  # reuses the diagonal points: two new evaluations per pair and step
                    d = (
                        fun(x + ei + ej)
                        + fun(x - ei - ej)
                        - fun(x + ei)
                        - fun(x - ei)
                        - fun(x + ej)
                        - fun(x - ej)
                        + 2.0 * f0
                    ) / (2.0 * hi * hj)
                estimates.append(d)
            out[i, j] = out[j, i] = float(_extrapolate(estimates))
    return out

"""Post-fit convergence checks, as lme4's ``checkConv``.

At the optimum the finite-difference gradient of the objective, scaled by
the Hessian (a Newton step), should be tiny, and the Hessian should be
positive definite and not nearly singular.  Parameters on their lower bound
(singular fits) are left out of the checks, as lme4 does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.linalg import lapack

__all__ = ["ConvergenceCheck", "check_convergence", "finite_difference_derivatives", "gradient_differences"]

GRADIENT_TOLERANCE = 2e-3  # lme4: check.conv.grad
HESSIAN_TOLERANCE = 1e-6  # lme4: check.conv.hess
MAX_NOBS_FOR_CHECKS = 10_000  # lme4 skips the derivative checks for larger data
BOUNDARY_TOLERANCE = 1e-4  # as lme4's isSingular


@dataclass(frozen=True)
class ConvergenceCheck:
    """Gradient and Hessian of the objective at the optimum and what lme4 would warn about."""

    gradient: np.ndarray
    hessian: np.ndarray
    messages: tuple[str, ...]


def finite_difference_derivatives(
    func: Callable[[np.ndarray], float], x: np.ndarray, delta: float = 1e-4
) -> tuple[np.ndarray, np.ndarray]:
    """Central-difference gradient and Hessian of ``func`` at ``x`` (lme4's deriv12 scheme)."""
    x = np.asarray(x, dtype=float)
    k = x.size
    f0 = func(x)
    step = np.eye(k) * delta
    plus = np.array([func(x + step[i]) for i in range(k)])
    minus = np.array([func(x - step[i]) for i in range(k)])
    gradient = (plus - minus) / (2 * delta)
    hessian = np.empty((k, k))
    hessian[np.diag_indices(k)] = (plus - 2 * f0 + minus) / delta**2
    for i in range(k):
        for j in range(i):
            pp = func(x + step[i] + step[j])
            mm = func(x - step[i] - step[j])
            hessian[i, j] = hessian[j, i] = (pp - plus[i] - plus[j] + 2 * f0 - minus[i] - minus[j] + mm) / (
                2 * delta**2
            )
    return gradient, hessian


def _gradient_messages(gradient: np.ndarray, hessian: np.ndarray) -> list[str]:
    lower, info = lapack.dpotrf(hessian, lower=1, clean=1)
    scaled = gradient
    if info == 0:
        scaled, info = lapack.dtrtrs(lower, gradient, lower=1)
        scaled = gradient if info != 0 else scaled
    worst = np.minimum(abs(scaled), abs(gradient))  # array methods and operators: numpy's wrappers cost more here
    largest = np.maximum.reduce(worst) if worst.size else 0.0  # ndarray.max's reduction, without its wrapper
    if largest > GRADIENT_TOLERANCE:
        return [
            f"Model failed to converge with max|grad| = {largest:.6g} (tol = {GRADIENT_TOLERANCE:g}, component {int(worst.argmax()) + 1})"
        ]
    return []


def _hessian_messages(hessian: np.ndarray) -> list[str]:
    # ufuncs' reductions, not the array methods (all, any, max, min: each a Python wrapper around the same one)
    if not np.logical_and.reduce(np.isfinite(hessian), axis=None):
        return ["Model failed to converge: the Hessian has non-finite entries"]
    eigen, _, info = lapack.dsyevd(hessian, compute_v=0, lower=1)  # np.linalg.eigvalsh without its wrapper
    if info != 0:
        raise np.linalg.LinAlgError("Eigenvalues did not converge")
    negative = int(np.add.reduce(eigen < -HESSIAN_TOLERANCE))
    if negative:
        return [
            f"Model failed to converge: degenerate Hessian with {negative} negative eigenvalue{'s' if negative > 1 else ''}"
        ]
    if eigen.size:
        largest = np.maximum.reduce(eigen)
        if largest > 0 and np.minimum.reduce(eigen) / largest < HESSIAN_TOLERANCE:
            return ["Model is nearly unidentifiable: very large eigenvalue ratio - rescale variables?"]
    return []


def gradient_differences(
    grad: Callable[[np.ndarray], np.ndarray], x: np.ndarray, delta: float = 1e-4
) -> tuple[np.ndarray, np.ndarray]:
    """The gradient at ``x`` and the Hessian by central differences of the gradient (symmetrized).

    ``2 k + 1`` gradient calls, against ``k^2 + k + 1`` objective calls for
    :func:`finite_difference_derivatives`; the same O(delta^2) accuracy.
    """
    x = np.asarray(x, dtype=float)
    k = x.size
    columns = []
    for i in range(k):
        step = np.zeros(k)
        step[i] = delta
        columns.append((grad(x + step) - grad(x - step)) / (2 * delta))
    hessian = np.array(columns).reshape(k, k)
    return grad(x), (hessian + hessian.T) / 2.0


def check_convergence(
    func: Callable[[np.ndarray], float],
    x: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray | None = None,
    grad: Callable[[np.ndarray], np.ndarray] | None = None,
    derivatives: tuple[np.ndarray, np.ndarray] | None = None,
) -> ConvergenceCheck:
    """lme4's gradient and Hessian checks at the optimum ``x`` of ``func``.

    Parameters within ``BOUNDARY_TOLERANCE`` of their lower bound (what
    ``is_singular`` calls the boundary), or of an upper bound (a correlation
    parameter of a structured covariance at +-1), are excluded.  With ``grad`` (the
    analytic gradient), the gradient is exact and the Hessian its central
    differences (:func:`gradient_differences`); ``derivatives``, the exact
    gradient and Hessian at ``x``, are used as they are.
    """
    x = np.asarray(x, dtype=float)
    inside = x - lower > BOUNDARY_TOLERANCE
    if upper is not None:
        inside &= np.asarray(upper, dtype=float) - x > BOUNDARY_TOLERANCE
    interior = inside.nonzero()[0]  # np.flatnonzero's, without its Python wrappers
    if interior.size == 0:
        return ConvergenceCheck(np.empty(0), np.empty((0, 0)), ())
    if derivatives is not None:
        if interior.size == x.size:  # every coordinate: copies, as the selection below makes (without np.ix_)
            gradient, hessian = derivatives[0].copy(), derivatives[1].copy()
        else:
            gradient, hessian = derivatives[0][interior], derivatives[1][np.ix_(interior, interior)]
        messages = _hessian_messages(hessian) or _gradient_messages(gradient, hessian)
        return ConvergenceCheck(gradient, hessian, tuple(messages))

    def restricted(sub: np.ndarray) -> float:
        full = x.copy()
        full[interior] = sub
        return func(full)

    # Steps may cross a bound: the objective is defined (and even in each
    # diagonal element of lambda) on both sides, as lme4's deriv12 assumes.
    if grad is not None:

        def restricted_grad(sub: np.ndarray) -> np.ndarray:
            full = x.copy()
            full[interior] = sub
            return grad(full)[interior]

        gradient, hessian = gradient_differences(restricted_grad, x[interior])
    else:
        gradient, hessian = finite_difference_derivatives(restricted, x[interior])
    messages = _hessian_messages(hessian) or _gradient_messages(gradient, hessian)
    return ConvergenceCheck(gradient, hessian, tuple(messages))

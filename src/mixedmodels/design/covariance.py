"""The relative covariance factor of one random-effects term.

A term with ``k`` columns has a ``k x k`` lower-triangular factor ``lambda``
whose lower triangle, read column by column (lme4's order), is that term's
slice of ``theta``.  The term's covariance matrix is
``sigma**2 * lambda @ lambda.T``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = [
    "lower_triangle",
    "theta_to_lambda",
    "initial_theta",
    "theta_lower_bounds",
    "theta_names",
    "covariance_to_theta",
    "canonical_theta",
]


@lru_cache(maxsize=64)
def lower_triangle(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of a ``k x k`` lower triangle in column-major order (read-only, cached)."""
    cols, rows = np.triu_indices(k)
    rows.flags.writeable = False
    cols.flags.writeable = False
    return rows, cols


def theta_to_lambda(theta: np.ndarray, k: int) -> np.ndarray:
    """The ``k x k`` lower-triangular relative covariance factor from its theta slice."""
    lam = np.zeros((k, k))
    lam[lower_triangle(k)] = theta
    return lam


def initial_theta(k: int) -> np.ndarray:
    """lme4's starting value: the identity factor (1 on the diagonal, 0 below)."""
    rows, cols = lower_triangle(k)
    return (rows == cols).astype(float)


def theta_lower_bounds(k: int) -> np.ndarray:
    """Diagonal elements are non-negative; off-diagonal ones are unbounded."""
    rows, cols = lower_triangle(k)
    return np.where(rows == cols, 0.0, -np.inf)


def theta_names(group: str, columns: tuple[str, ...]) -> list[str]:
    """lme4's names: ``Subject.(Intercept)``, ``Subject.Days.(Intercept)``, ``Subject.Days``."""
    rows, cols = lower_triangle(len(columns))
    return [
        f"{group}.{columns[r]}" if r == c else f"{group}.{columns[r]}.{columns[c]}"
        for r, c in zip(rows, cols)
    ]


def covariance_to_theta(cov: np.ndarray, sigma: float) -> np.ndarray:
    """Theta slice for a given covariance matrix and residual SD (Cholesky factor / sigma)."""
    k = cov.shape[0]
    lam = np.linalg.cholesky(cov) / sigma if np.all(np.linalg.eigvalsh(cov) > 0) else _semidefinite_factor(cov) / sigma
    return lam[lower_triangle(k)]


def _semidefinite_factor(cov: np.ndarray) -> np.ndarray:
    """A lower-triangular factor of a positive semi-definite matrix (pivot-free LDL)."""
    k = cov.shape[0]
    lam = np.zeros((k, k))
    for j in range(k):
        diag = cov[j, j] - lam[j, :j] @ lam[j, :j]
        lam[j, j] = np.sqrt(max(diag, 0.0))
        if lam[j, j] > 0:
            lam[j + 1 :, j] = (cov[j + 1 :, j] - lam[j + 1 :, :j] @ lam[j, :j]) / lam[j, j]
    return lam


def canonical_theta(theta: np.ndarray, k: int) -> np.ndarray:
    """The theta slice whose lambda has non-negative diagonal and the same ``lambda @ lambda.T``.

    Changing the sign of a column of lambda leaves the covariance (and every
    objective) unchanged, so an unconstrained optimizer may end with negative
    diagonal elements; this flips those columns back.
    """
    lam = theta_to_lambda(np.asarray(theta, dtype=float), k)
    signs = np.where(np.diagonal(lam) < 0, -1.0, 1.0)
    return (lam * signs)[lower_triangle(k)]

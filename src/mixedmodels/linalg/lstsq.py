"""Weighted least squares by QR with R's rule for aliased columns (R's ``lm.wfit``).

With prior weights ``w`` the problem ``min_b sum_i w_i (y_i - x_i'b)^2`` is
solved on the rows with ``w_i > 0`` through the thin QR decomposition
``W^1/2 X_K = Q R`` of the columns ``K`` that R's left-to-right pivoting keeps
(:func:`mixedmodels.design.checks.independent_columns`: a column whose part
orthogonal to the earlier kept ones has norm below ``tol`` times ``norms``,
its own norm by default, is aliased and gets the coefficient NaN, R's ``NA``):

    b_K = R^-1 Q' W^1/2 y,      RSS = ||W^1/2 (y - X_K b_K)||^2,
    (X_K' W X_K)^-1 = R^-1 R^-T,      df = n - |K|,   sigma^2 = RSS / df,

``n`` counting the rows with non-zero weight.  ``lm``, ``glm``'s IRLS steps,
the no-pooling fits and the power simulations' OLS all solve through here.

The triangular solves go through LAPACK one right-hand side at a time
(``dtrtrs``), and inverses through the unblocked ``dtrtri``
(:func:`~mixedmodels.linalg.dense.triangular_inverse`): a matrix right-hand
side wakes OpenBLAS's thread pool, which costs milliseconds per call --
too much for the thousands of small fits of a no-pooling comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.linalg.lapack import dtrtrs

from ..design.checks import independent_columns
from .dense import triangular_inverse

__all__ = ["LeastSquares", "lstsq", "kept_columns", "solve_upper", "unscaled_covariance", "ALIAS_TOLERANCE"]

ALIAS_TOLERANCE = 1e-7  # R's lm.fit tol (and lme4's chkRank.drop.cols)


def kept_columns(x: np.ndarray, tol: float = ALIAS_TOLERANCE, norms: np.ndarray | None = None) -> list[int]:
    """Columns of ``x`` that R's left-to-right rule keeps (none for an empty ``x``)."""
    n, p = x.shape
    if n == 0 or p == 0:
        return []
    return independent_columns(x, tol, norms)


def solve_upper(r: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve ``R x = b`` for upper-triangular R, one right-hand side at a time."""
    if b.ndim == 2:
        return np.column_stack([solve_upper(r, col) for col in b.T]) if b.shape[1] else np.zeros((r.shape[0], 0))
    x, info = dtrtrs(r, b)
    if info != 0:
        raise np.linalg.LinAlgError(f"a least-squares system is singular (dtrtrs info {info})")
    return x


def unscaled_covariance(r: np.ndarray) -> np.ndarray:
    """``(R'R)^-1 = R^-1 R^-T`` for upper-triangular R: the covariance of the coefficients over sigma^2."""
    inverse = triangular_inverse(r, lower=False)
    return inverse @ inverse.T


@dataclass(frozen=True, eq=False)
class LeastSquares:
    """A weighted least-squares fit with R's aliasing.

    Attributes
    ----------
    coef : ndarray (p,)
        Coefficients; NaN for aliased columns.
    kept : tuple of int
        The columns used, in order.
    q, r : ndarray
        The thin QR of the weighted kept columns (``W^1/2 X_K = Q R``).
    resid : ndarray
        Weighted residuals ``W^1/2 (y - X b)`` of the rows with non-zero weight.
    """

    coef: np.ndarray
    kept: tuple[int, ...]
    q: np.ndarray
    r: np.ndarray
    resid: np.ndarray

    @property
    def rss(self) -> float:
        return float(self.resid @ self.resid)

    @property
    def nobs(self) -> int:
        return len(self.resid)

    @property
    def rank(self) -> int:
        return len(self.kept)

    @property
    def df_resid(self) -> int:
        return self.nobs - self.rank

    @property
    def sigma(self) -> float:
        """``sqrt(RSS / df)``; NaN without residual degrees of freedom."""
        return float(np.sqrt(self.rss / self.df_resid)) if self.df_resid > 0 else np.nan

    @cached_property
    def unscaled_cov(self) -> np.ndarray:
        """``(X_K' W X_K)^-1`` over the kept columns."""
        return unscaled_covariance(self.r)

    def std_errors(self, sigma: float | None = None) -> np.ndarray:
        """``sigma sqrt(diag((X_K' W X_K)^-1))`` per column (NaN for aliased ones); sigma defaults to the fit's."""
        out = np.full(self.coef.shape, np.nan)
        out[list(self.kept)] = (self.sigma if sigma is None else sigma) * np.sqrt(np.diag(self.unscaled_cov))
        return out

    def solve(self, b: np.ndarray) -> np.ndarray:
        """``R^-1 Q' b``: the least-squares coefficients of another (weighted) right-hand side on the kept columns."""
        return solve_upper(self.r, self.q.T @ b)


def lstsq(
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    alias: bool = True,
    tol: float = ALIAS_TOLERANCE,
    norms: np.ndarray | None = None,
) -> LeastSquares:
    """Weighted least squares of ``y`` on ``x`` (see the module docstring).

    ``alias=False`` skips the aliasing check (for a matrix already checked,
    such as a model's X).  ``norms``: the reference norm of each column for
    the aliasing rule, when ``x`` has been projected.
    """
    if weights is not None:
        rows = weights > 0
        sw = np.sqrt(weights[rows])
        x, y = x[rows] * sw[:, None], y[rows] * sw
    kept = kept_columns(x, tol, norms) if alias else list(range(x.shape[1]))
    coef = np.full(x.shape[1], np.nan)
    if not kept:
        return LeastSquares(coef, (), np.zeros((len(y), 0)), np.zeros((0, 0)), np.asarray(y, dtype=float))
    q, r = np.linalg.qr(x[:, kept])
    coef[kept] = solve_upper(r, q.T @ y)
    return LeastSquares(coef, tuple(kept), q, r, y - x[:, kept] @ coef[kept])

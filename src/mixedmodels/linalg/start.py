"""Starting values for theta from moments of the stored cross-products.

lme4 starts every fit at theta = identity (each random effect's SD equal to
the residual SD).  When a term's true relative SD is far from 1 -- InstEval's
``dept:service`` is 0.09 -- BOBYQA spends most of its evaluations walking
there: 101 evaluations from the identity against ~45 from a start within
30 % of the optimum.  This module makes such a start without touching any
n-sized array, from the blocks of ``[Z X y]'[Z X y]`` alone.

The estimate is a method-of-moments one per random-effects column ``z``
(columns already scaled to unit root-mean-square).  With ``r`` the
ordinary-least-squares residuals, ``v = r'r / (n - p)`` their variance and,
for level ``g``, ``S_g = sum_g z r`` and ``N_g = sum_g z^2``: if the column
carried an effect of variance ``tau^2`` and everything else behaved like
independent noise of variance ``v - tau^2``, then

    E sum_g S_g^2  =  tau^2 sum_g (N_g^2 - N_g)  +  v sum_g N_g,

which gives ``tau^2``.  ``sigma^2`` is ``v`` minus all the ``tau^2``, and the
starting theta is ``tau / sigma`` on the diagonal, 0 below it.  The
independence assumption is wrong for nested and correlated effects, so this
is only a starting point: the caller compares it with lme4's start and keeps
whichever has the lower objective.
"""

from __future__ import annotations

import numpy as np

from ..design.covariance import lower_triangle
from .blocked import BlockedCrossProducts

__all__ = ["moment_start"]

# Floors that keep the start inside the parameter space and away from the
# boundary, where BOBYQA's first steps would be wasted on a zero coordinate.
_MIN_SIGMA2_FRACTION = 0.05
_MIN_THETA = 0.05


def moment_start(cp: BlockedCrossProducts) -> np.ndarray | None:
    """Theta (in the units of the scaled columns) from moments, or None if it can't be formed."""
    nre, p = cp.nre_rest, cp.nfixef
    a22 = cp.a22
    xtx, xty = a22[nre : nre + p, nre : nre + p], a22[nre : nre + p, -1]
    beta = np.linalg.lstsq(xtx, xty, rcond=None)[0] if p else np.empty(0)
    dof = cp.nobs - p
    rss = a22[-1, -1] - beta @ xty
    if dof <= 0 or not rss > 0:
        return None
    v = rss / dof
    taus = [_column_variances(sums, norms, v) for sums, norms in _level_moments(cp, beta)]
    if any(t is None for t in taus):
        return None
    sigma2 = max(v - sum(float(np.sum(t)) for t in taus), _MIN_SIGMA2_FRACTION * v)
    return np.concatenate([_term_theta(t, sigma2) for t in taus])


def _level_moments(cp: BlockedCrossProducts, beta: np.ndarray):
    """Per term: ``S`` (levels x k) = Z' r per level and column, and ``N`` = per-level sums of z^2."""
    nre, p = cp.nre_rest, cp.nfixef
    first = cp.first
    a21 = cp.a21
    zty, ztx = _rows(a21, [-1])[0], _rows(a21, range(nre, nre + p))
    sums = (zty - beta @ ztx).reshape(first.nlevels, first.ncols)
    norms = np.diagonal(cp.a11, axis1=1, axis2=2)
    yield sums, norms
    offset = 0
    for term in cp.rest_terms:
        block = slice(offset, offset + term.size)
        sums = cp.a22[block, -1] - cp.a22[block, nre : nre + p] @ beta
        norms = np.diag(cp.a22)[block]
        yield sums.reshape(term.nlevels, term.ncols), norms.reshape(term.nlevels, term.ncols)
        offset += term.size


def _rows(mat, rows) -> np.ndarray:
    """Selected rows of a dense or sparse block, as a dense array."""
    rows = list(rows)
    if isinstance(mat, np.ndarray):
        return mat[rows]
    return mat[rows, :].toarray()


def _column_variances(sums: np.ndarray, norms: np.ndarray, v: float) -> np.ndarray | None:
    """``tau^2`` per column of one term (None when no level has two observations)."""
    spread = np.sum(norms * norms - norms, axis=0)
    if np.any(spread <= 0):
        return None
    return np.maximum((np.sum(sums * sums, axis=0) - v * np.sum(norms, axis=0)) / spread, 0.0)


def _term_theta(tau2: np.ndarray, sigma2: float) -> np.ndarray:
    """A term's theta slice: ``tau / sigma`` on the diagonal, zeros below."""
    rows, cols = lower_triangle(tau2.size)
    diagonal = np.maximum(np.sqrt(tau2 / sigma2), _MIN_THETA)
    return np.where(rows == cols, diagonal[rows], 0.0)

"""Rows of ``[Z Lambda, X]`` solved against the blocked Cholesky factor: conditional covariances.

For a row with random-effects covariates ``z`` (at one level of each term) and
fixed-effects covariates ``x``, let ``r = [Lambda' z; x]`` in the spherical
coordinates of the penalised least-squares system, whose matrix is

    M = [ Lambda' Z' W Z Lambda + I   Lambda' Z' W X ]  = L L'
        [ X' W Z Lambda               X' W X         ]

(the blocked factor ``L`` without its y row; ``W`` the prior or PIRLS weights).
With ``v = L^-1 r``:

* ``sigma^2 ||v||^2`` is the variance of ``z' b + x' beta`` under the joint
  conditional covariance of ``(b, beta)`` (Henderson's mixed-model equations;
  what lme4 >= 2.0's ``predict(se.fit = TRUE)`` uses);
* ``sigma^2 ||v_re||^2``, the random-effects part of ``v`` alone (the first
  rows of ``L`` do not involve X), is the variance of ``z' b`` given beta
  (lme4's ``condVar``);
* ``w ||v||^2`` with the row's weight ``w`` is the row's leverage, the
  diagonal of the hat matrix (lme4's ``hatvalues``).

With ``L = [[L11, 0], [L21, L22]]`` (L11 block diagonal, one block per level of
the first term) the solve is ``v1 = L11^-1 r1`` per row and level, and
``v2 = L22^-1 (r2 - L21 v1)`` with ``L21 v1 = D A21 Lambda_1 (L11 L11')^-1 r1``
(``D`` applies the other terms' Lambda'), so ``L21`` is never formed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.sparse as sp
from scipy.linalg import solve_triangular

from .blocked import Factorization, _scale_rest

__all__ = ["RowSolution", "TermRows", "solve_rows", "level_covariances"]


@dataclass(frozen=True)
class TermRows:
    """One random-effects term's part of the rows: the level of each row (-1: none) and its ``z``.

    ``z`` has the term's columns in the units of the data (zeros for columns
    that are to be left out).
    """

    refs: np.ndarray
    z: np.ndarray


@dataclass(frozen=True)
class RowSolution:
    """``v = L^-1 r`` for each row: the first term's part (per row at its level) and the rest.

    Attributes
    ----------
    v1 : ndarray (n, k1)
        The first term's part, nonzero only at the row's level of that term.
    v2 : ndarray (n, m)
        The rest: the other terms' random effects (``nre`` columns), then X.
    nre : int
        Number of random-effects columns at the start of ``v2``.
    """

    v1: np.ndarray
    v2: np.ndarray
    nre: int

    def squared_norms(self, joint: bool = True) -> np.ndarray:
        """``||v||^2`` per row (``joint``), or of the random-effects part only (given beta)."""
        rest = self.v2 if joint else self.v2[:, : self.nre]
        return np.einsum("ij,ij->i", self.v1, self.v1) + np.einsum("ij,ij->i", rest, rest)


def solve_rows(factor: Factorization, terms: Sequence[TermRows], x: np.ndarray | None) -> RowSolution:
    """``L^-1 r`` for rows given per term (in block order) and by their fixed-effects covariates ``x``.

    ``x`` None leaves out the fixed effects (zeros; the solution is then
    that of the random-effects system alone in its first ``nre`` columns).
    """
    factor = factor.in_original_order()
    cp, theta = factor.crossprods, factor.theta
    first, n = cp.first, len(terms[0].refs)
    lam1 = first.scaled_lam(theta)
    r1 = _spherical(terms[0], first, lam1)
    levels = np.where(terms[0].refs >= 0, terms[0].refs, 0)
    v1, w1 = _first_block(factor.l11, levels, r1, lam1)
    rhs = _rest_rows(cp, theta, terms[1:], x, n)
    rhs -= _first_to_rest(cp, theta, levels, w1).T
    l22 = factor.l22[:-1, :-1]
    v2 = solve_triangular(l22, rhs.T, lower=True, check_finite=False).T if l22.size else rhs
    return RowSolution(v1, v2, cp.nre_rest)


def _spherical(rows: TermRows, layout, scaled_lam: np.ndarray) -> np.ndarray:
    """``Lambda' z`` per row in the scaled coordinates (= lam' z in the data's units); 0 without a level."""
    z = np.asarray(rows.z, dtype=float)
    scales = layout.scales if layout.scales is not None else np.ones(z.shape[1])
    r = (z / scales) @ scaled_lam
    r[rows.refs < 0] = 0.0
    return r


def _first_block(
    l11: np.ndarray, levels: np.ndarray, r1: np.ndarray, lam1: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``v1 = L11^-1 r1`` and ``w1 = Lambda_1 (L11 L11')^-1 r1`` per row at its level."""
    if l11.ndim == 1:
        v1 = r1 / l11[levels][:, None]
        return v1, (v1 / l11[levels][:, None]) @ lam1.T
    blocks = l11[levels]
    v1 = np.linalg.solve(blocks, r1[:, :, None])
    t = np.linalg.solve(np.swapaxes(blocks, 1, 2), v1)[:, :, 0]
    return v1[:, :, 0], t @ lam1.T


def _rest_rows(cp, theta: np.ndarray, terms: Sequence[TermRows], x: np.ndarray | None, n: int) -> np.ndarray:
    """``r2``: the other terms' ``Lambda' z`` at their levels, then ``x`` (n x (m - 1))."""
    rhs = np.zeros((n, cp.a22.shape[0] - 1))
    offset = 0
    for rows, layout in zip(terms, cp.rest_terms):
        r = _spherical(rows, layout, layout.scaled_lam(theta))
        has = np.flatnonzero(rows.refs >= 0)
        cols = offset + rows.refs[has, None] * layout.ncols + np.arange(layout.ncols)
        rhs[has[:, None], cols] = r[has]
        offset += layout.size
    if x is not None:
        rhs[:, offset : offset + cp.nfixef] = x
    return rhs


def _first_to_rest(cp, theta: np.ndarray, levels: np.ndarray, w1: np.ndarray) -> np.ndarray:
    """``D A21 w1`` for each row's ``w1`` at its level of the first term, shape ((m - 1), n)."""
    n, k = w1.shape
    a21 = cp.a21[:-1]
    rows = (levels[:, None] * k + np.arange(k)).ravel()
    cols = np.repeat(np.arange(n), k)
    weights = sp.csc_array((w1.ravel(), (rows, cols)), shape=(cp.first.size, n))
    product = a21 @ weights
    t = product.toarray() if sp.issparse(product) else np.asarray(product)
    _scale_rest(t, cp.rest_terms, theta, "rows")
    return t


def level_covariances(factor: Factorization, terms: Sequence[int]) -> np.ndarray:
    """Conditional covariance (given beta, over sigma^2) of the random effects of one grouping factor, per level.

    ``terms`` are the positions (block order) of the grouping factor's terms,
    which share its levels.  Returns ``(levels, K, K)`` with ``K`` the terms'
    columns together, in term order: ``Lambda (L_theta L_theta')^-1 Lambda'``
    restricted to each level's random effects.
    """
    cp = factor.crossprods
    layouts = [cp.terms[t] for t in terms]
    nlevels, widths = layouts[0].nlevels, [lay.ncols for lay in layouts]
    total = sum(widths)
    # one row per (level, column): z is that column's unit vector, at that level
    refs = np.repeat(np.arange(nlevels), total)
    per_term, start = {}, 0
    for t, width in zip(terms, widths):
        per_term[t] = TermRows(refs, np.tile(np.eye(total)[:, start : start + width], (nlevels, 1)))
        start += width
    none = np.full(nlevels * total, -1)
    rows = [per_term.get(t, TermRows(none, np.zeros((none.size, lay.ncols)))) for t, lay in enumerate(cp.terms)]
    sol = solve_rows(factor, rows, None)
    # v1 sits at each row's own level of the first term (zero unless the group is that term's)
    v1 = sol.v1.reshape(nlevels, total, -1)
    v2 = sol.v2[:, : sol.nre].reshape(nlevels, total, -1)
    gram = np.einsum("lid,ljd->lij", v1, v1) + np.einsum("lid,ljd->lij", v2, v2)
    return gram

"""Starting values for theta from moments of the stored cross-products.

lme4 starts every fit at theta = identity (each random effect's SD equal to
the residual SD).  BOBYQA then spends many evaluations walking to the
optimum: InstEval's ``dept:service`` relative SD is 0.09, and sleepstudy,
Penicillin and Pastes need 2-3x the evaluations from the identity that they
need from a start near the optimum.  This module makes such a start from the
blocks of ``[Z X y]'[Z X y]`` alone, without touching any n-sized array.

The estimate is the method of moments on ordinary-least-squares residuals
(MINQUE with identity weights; Henderson's method for balanced data, where it
equals REML whenever that is inside the parameter space).  Every column of
every random-effects term is treated as its own variance component ``tau_t^2``
(correlations start at 0).  With ``M = I - X (X'X)^-1 X'``, the residuals
``r = M y`` and ``Z_t`` the columns of component t,

    E |Z_t' r|^2 = sum_u tau_u^2 |Z_t' M Z_u|_F^2 + sigma^2 tr(Z_t' M Z_t)
    E  r' r      = sum_u tau_u^2 tr(Z_u' M Z_u)  + sigma^2 (n - p),

a linear system in ``(tau^2, sigma^2)``.  ``Z' M Z = Z'Z - H`` with
``H = C' G C``, ``C = X'Z``, ``G = (X'X)^-1``; the big term's part of ``H``
is never formed (its Frobenius sums reduce to p x p products).  Columns are
the unit-RMS scaled ones, so the result is theta in scaled units.  The
caller compares the start with lme4's and keeps whichever has the lower
objective.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from ._dense_kernels import compiled
from .blocked import BlockedCrossProducts

__all__ = ["moment_start"]

# Floors that keep the start inside the parameter space and away from the
# boundary, where BOBYQA's first steps would be wasted on a zero coordinate.
_MIN_SIGMA2_FRACTION = 0.05
_MIN_THETA = 0.05
# A moment system this ill-conditioned (after scaling) cannot separate its components.
_MAX_CONDITION = 1e10
# A component whose residual trace tr(Z_t'MZ_t) is below this fraction of tr(Z_t'Z_t) (= n for unit-RMS
# columns) lies in X's column space: the moments hold no information about it.
_MIN_TRACE_FRACTION = 1e-8
# the compiled dense path's rules (``_dense_kernels.dense_moment_start``), in its order
_RULES = np.array([_MIN_TRACE_FRACTION, _MAX_CONDITION, _MIN_SIGMA2_FRACTION])


@dataclass(frozen=True)
class _Moments:
    """Per variance component t, u: ``|Z_t'MZ_u|_F^2``, ``tr(Z_t'MZ_t)`` and ``|Z_t'r|^2``."""

    frobenius: np.ndarray
    trace: np.ndarray
    score: np.ndarray


def moment_start(cp: BlockedCrossProducts) -> np.ndarray | None:
    """Theta (in the units of the scaled columns) from moments, or None if it can't be formed.

    None on the sparse rest path (:mod:`.sparse_rest`): the moments read the dense rest block.
    """
    if cp.sparse_rest is not None:
        return None
    dense = cp.dense_system
    kernel = compiled("dense_moment_start") if dense is not None else None
    if kernel is not None:  # the same equations in one compiled call (~5x cheaper warm)
        shapes = np.array([(term.size, term.ncols) for term in cp.terms], dtype=np.int64)
        relative_sd = kernel(dense.a, dense.nre, cp.nfixef, shapes, float(cp.nobs), _RULES)
        return _theta_from_components(cp, relative_sd) if relative_sd.size else None
    nre, p = cp.nre_rest, cp.nfixef
    xs = slice(nre, nre + p)
    gram_inv = _pinv(cp.a22[xs, xs]) if p else np.zeros((0, 0))
    beta = gram_inv @ cp.a22[xs, -1]
    dof = cp.nobs - p
    rss = cp.a22[-1, -1] - beta @ cp.a22[xs, -1]
    if dof <= 0 or not rss > 0:
        return None
    moments = _moments(cp, gram_inv, beta) if dense is None else _dense_moments(cp, dense.a, gram_inv, beta)
    if (moments.trace <= _MIN_TRACE_FRACTION * cp.nobs).any():
        # e.g. a factor both fixed and grouping (lmer(y ~ . + (1 | Species), iris)): its tau^2 would be a
        # ratio of rounding errors (385162^2 on one machine), where the criterion is flat in theta but its
        # computed value is not (a Schur complement cancels): lme4's start instead
        return None
    count = moments.trace.size
    lhs = np.empty((count + 1, count + 1))
    lhs[:count, :count], lhs[:count, count], lhs[count, :count] = moments.frobenius, moments.trace, moments.trace
    lhs[count, count] = dof
    scale = np.sqrt(np.abs(lhs.diagonal()))  # array methods here, not numpy's dispatch wrappers (cheaper, same values)
    scale[scale == 0] = 1.0
    if (
        not np.logical_and.reduce(np.isfinite(lhs), axis=None)
        or _condition(lhs / (scale[:, None] * scale)) > _MAX_CONDITION
    ):
        return None  # e.g. a component with one observation per level, aliased with sigma
    rhs = np.empty(count + 1)
    rhs[:count], rhs[count] = moments.score, rss
    solution = _solve(lhs, rhs)
    tau2 = np.maximum(solution[:count], 0.0)
    sigma2 = max(solution[count], _MIN_SIGMA2_FRACTION * rss / dof)
    return _theta_from_components(cp, np.sqrt(tau2 / sigma2))


# numpy.linalg's pinv, cond and solve by the same LAPACK routines (dgesdd, dgesv) and the same arithmetic,
# without numpy's wrappers (~15-20 us each on these 2 x 2 and 3 x 3 matrices); bit-identical to numpy's on
# 15,000 random (and rank-deficient) matrices under both the machine's and the Prescott OpenBLAS kernels.


def _pinv(a: np.ndarray) -> np.ndarray:
    """``np.linalg.pinv(a)`` (its default cut-off: singular values below 1e-15 of the largest are dropped)."""
    u, s, vt, info = lapack.dgesdd(a, compute_uv=1, full_matrices=0)
    if info != 0:
        raise np.linalg.LinAlgError("SVD did not converge")
    # s.max's and np.zeros_like's arithmetic (s is a float vector) without their Python wrappers
    large = s > 1e-15 * np.maximum.reduce(s, initial=0.0)
    inverse = np.divide(1.0, s, where=large, out=np.zeros(s.shape))
    return vt.T @ (inverse[:, None] * u.T)


def _condition(a: np.ndarray) -> float:
    """``np.linalg.cond(a)``: the ratio of the largest to the smallest singular value (inf when that is 0)."""
    s, info = lapack.dgesdd(a, compute_uv=0)[1::2]
    if info != 0:
        raise np.linalg.LinAlgError("SVD did not converge")
    return float(s[0] / s[-1]) if s[-1] > 0 else np.inf


def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.linalg.solve(a, b)`` (LU with partial pivoting); LinAlgError when ``a`` is singular."""
    x, info = lapack.dgesv(a, b)[2:]
    if info != 0:
        raise np.linalg.LinAlgError("Singular matrix")
    return x


def _theta_from_components(cp: BlockedCrossProducts, relative_sd: np.ndarray) -> np.ndarray:
    """Theta slices with the components' relative SDs and no correlation, as each term's structure writes them."""
    parts, start = [], 0
    for term in cp.terms:
        sds = np.maximum(relative_sd[start : start + term.ncols], _MIN_THETA)
        parts.append(term.structure.from_column_sds(sds))
        start += term.ncols
    return np.concatenate(parts)


def _rest_components(cp: BlockedCrossProducts) -> np.ndarray:
    """For each random-effects row of the rest block, the index of its component (after the big term's)."""
    index, first = [], cp.first.ncols
    for term in cp.rest_terms:
        index.append(np.tile(np.arange(term.ncols), term.nlevels) + first)
        first += term.ncols
    return np.concatenate(index) if index else np.empty(0, dtype=int)


def _moments(cp: BlockedCrossProducts, gram_inv: np.ndarray, beta: np.ndarray) -> _Moments:
    """The moment matrices of all components: the big term's columns first, then the rest's."""
    nre, p, k1 = cp.nre_rest, cp.nfixef, cp.first.ncols
    component = _rest_components(cp)
    count = k1 + (component.max() + 1 - k1 if component.size else 0)
    indicator = np.zeros((count, nre))
    indicator[component, np.arange(nre)] = 1.0
    # rest-rest: Z'MZ is dense and small enough to form
    c_rest = cp.a22[nre : nre + p, :nre]
    g_c_rest = gram_inv @ c_rest
    resid_cross = cp.a22[:nre, :nre] - c_rest.T @ g_c_rest
    frobenius = np.zeros((count, count))
    frobenius[k1:, k1:] = (indicator @ (resid_cross * resid_cross) @ indicator.T)[k1:, k1:]
    trace = indicator @ np.diagonal(resid_cross)
    score = indicator @ (cp.a22[:nre, -1] - c_rest.T @ beta) ** 2
    # the big term: per column c, without forming its part of H
    a21 = cp.a21 if isinstance(cp.a21, np.ndarray) else sp.csr_array(cp.a21)
    c_first = _dense(a21[nre : nre + p])
    s_first = _dense(a21[[-1]])[0] - c_first.T @ beta
    outer = [gram_inv @ c_rest[:, component == t] @ c_rest[:, component == t].T for t in range(count)]
    for c in range(k1):
        cols = slice(c, None, k1)
        g_c = gram_inv @ c_first[:, cols]
        outer[c] = g_c @ c_first[:, cols].T
        score[c] = np.sum(s_first[cols] ** 2)
        trace[c] = np.sum(cp.a11[:, c, c]) - np.einsum("pl,pl->", g_c, c_first[:, cols])
        for d in range(c + 1):
            a = cp.a11[:, c, d]
            cross = np.einsum("pl,pl->l", g_c, c_first[:, slice(d, None, k1)])
            frobenius[c, d] = np.sum(a * a) - 2.0 * np.sum(a * cross)
        frobenius[k1:, c] = _first_rest_sums(a21, nre, (c, k1), g_c_rest, c_first[:, cols], indicator)[k1:]
    for t in range(count):  # the sum H^2 part of every block involving the big term
        for u in range(min(t + 1, k1)):
            frobenius[t, u] += np.sum(outer[t] * outer[u].T)
    frobenius = np.tril(frobenius) + np.tril(frobenius, -1).T
    return _Moments(frobenius, trace, score)


def _dense_moments(cp: BlockedCrossProducts, a: np.ndarray, gram_inv: np.ndarray, beta: np.ndarray) -> _Moments:
    """:func:`_moments` from the whole system held dense (small models): ``Z'MZ`` formed outright."""
    q, p = cp.first.size + cp.nre_rest, cp.nfixef
    zx, zz = a[:q, q : q + p], a[:q, :q]
    resid_cross = zz - zx @ gram_inv @ zx.T
    score_rows = a[:q, -1] - zx @ beta
    component, offset, first = np.empty(q, dtype=np.intp), 0, 0
    for term in cp.terms:
        component[offset : offset + term.size] = np.arange(term.size) % term.ncols + first  # np.tile's, cheaper
        offset += term.size
        first += term.ncols
    indicator = np.zeros((first, q))
    indicator[component, np.arange(q)] = 1.0
    return _Moments(
        indicator @ (resid_cross * resid_cross) @ indicator.T,
        indicator @ resid_cross.diagonal(),
        indicator @ score_rows**2,
    )


_CHUNK_NONZEROS = 1 << 20  # a sparse A21's rows are read in runs of about this many non-zeros


def _first_rest_sums(
    a21, nre: int, column: tuple[int, int], g_c_rest: np.ndarray, c_first_c: np.ndarray, indicator: np.ndarray
) -> np.ndarray:
    """``sum (A - H)^2 - sum H^2`` over the block of one big-term column against each rest component.

    ``A`` is the rest rows' part of ``A21`` (sparse or dense) in the big term's
    column ``c`` of every level (``column = (c, k1)``: columns ``c, c + k1, ...``),
    ``H_rl = c_r' G c_l``; the ``sum H^2`` part is added by the caller from
    p x p products.  A sparse ``A21`` is read in runs of rows, not sliced: a
    slice and its gathers were ~1 GB at once for a crossed design's 40M non-zeros.
    """
    c, k1 = column
    if isinstance(a21, np.ndarray):
        coo = sp.coo_array(a21[:nre, c::k1])
        return indicator @ _row_sums(coo.row, coo.col, coo.data, g_c_rest, c_first_c, nre)
    per_row, start = np.zeros(nre), 0
    while start < nre:
        reach = int(np.searchsorted(a21.indptr, a21.indptr[start] + _CHUNK_NONZEROS, side="right")) - 1
        stop = min(nre, max(reach, start + 1))
        lo, hi = a21.indptr[start], a21.indptr[stop]
        indices, data = a21.indices[lo:hi], a21.data[lo:hi]
        rows = np.repeat(np.arange(start, stop), np.diff(a21.indptr[start : stop + 1]))
        mine = indices % k1 == c
        per_row += _row_sums(rows[mine], indices[mine] // k1, data[mine], g_c_rest, c_first_c, nre)
        start = stop
    return indicator @ per_row


def _row_sums(
    row: np.ndarray, level: np.ndarray, data: np.ndarray, g_c_rest: np.ndarray, c_first_c: np.ndarray, nre: int
) -> np.ndarray:
    """Per rest row, ``sum over its entries of a^2 - 2 a h`` (``h`` of the entry's row and level)."""
    h = np.einsum("pn,pn->n", g_c_rest[:, row], c_first_c[:, level])
    return np.bincount(row, weights=data * data - 2.0 * data * h, minlength=nre)


def _dense(block) -> np.ndarray:
    return block if isinstance(block, np.ndarray) else block.toarray()

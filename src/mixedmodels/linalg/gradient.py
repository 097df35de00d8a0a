"""Gradient of the profiled objective with respect to theta, from the blocked Cholesky factor.

The objective (:mod:`mixedmodels.lmm`) is, up to constants,

    REML:  f(theta) = D_{-y}(theta)  + (n - p) log r^2(theta)
    ML:    f(theta) = D_{-Xy}(theta) + n log r^2(theta)

where ``r^2`` is the penalized residual sum of squares and ``D_{-R}`` the log
determinant of the penalized system

    Omega = Lambda~' A Lambda~ + I~,   A = [Z X y]'[Z X y],   Lambda~ = diag(Lambda, I, 1),

without the rows and columns R (y for REML; X and y for ML): its leading
block, whose Cholesky factor is the leading block of L.  All derivatives are
with respect to the *scaled* theta the optimizer works on (the relative
factor of the unit-RMS columns, ``TermLayout.scaled_lam``), where
``dLambda / dtheta_i`` is ``E_rc`` (1 at row r, column c of lambda, r >= c)
in every level of theta_i's term.

**Residual part** (the envelope theorem: ``r^2`` is a minimum over u and
beta, so only theta's explicit appearance counts):

    d r^2 / d theta_i = -2 e' Z Lambda_i u = -2 sum_l (Z'e)_{l,r} u_{l,c},

with ``e = y - X beta - Z Lambda u`` the residual, ``Z'e`` formed from the
blocks of A.

**Log-determinant part.**  Eliminating the big term (one ``k x k`` block
``M_l = lambda' A11_l lambda + I`` per level) leaves the rest block
``S = Lambda~_2' C Lambda~_2 + I_re`` with ``C = A22 - A21 W A21'`` and
``W_l = lambda M_l^-1 lambda'``, so ``D = sum_l log det M_l + log det S_LL``
(S_LL: S without the rows R).  With ``P = S_LL^-1`` (zero on the rows R):

* a rest term t (``Lambda~_i = I (x) E_rc`` on its rows):

      dD / dtheta_i = 2 sum_l (P Lambda~_2' C)_{(l,c),(l,r)}

* the big term, with ``G_l = M_l^-1 lambda'`` and the per-level quadratic
  forms ``Q_l = B_l' P B_l`` of ``B = Lambda~_2' A21`` (column block l):

      dD / dtheta_i = 2 sum_l [G_l A11_l - G_l Q_l (I - W_l A11_l)]_{c,r}

  (``d log det M_l`` and ``-tr(dW_l Q_l)``).

For a scalar term at ``theta_t = 0`` every piece vanishes (``u_t = 0``,
``G = 0``, and S decouples from the term's rows): the objective is even in
theta_t and 0 is always a stationary point, never a reason to stop.

Only the entries of P on the pattern of C are read, so P is the dense inverse
(LAPACK ``potri``) of the leading block of ``L22`` for a factor in the
original order, and the supernodal selected inverse (Takahashi's recurrences,
:meth:`.supernodal.SupernodalCholesky.selected_inverse`) for the reordered
factor of :meth:`.blocked.BlockedCrossProducts.objective_factor`.  A gradient
costs one factorization (the objective comes with it) plus about two more
factorizations' worth of flops.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from ..design.covariance import lower_triangle
from . import _kernels, _level_kernels, small
from .blocked import BlockedCrossProducts, Factorization, TermLayout

__all__ = ["profiled_gradient", "gradient_factor", "ProfiledObjective"]


def gradient_factor(cp: BlockedCrossProducts, theta: np.ndarray) -> Factorization:
    """The factor :func:`profiled_gradient` needs: the objective's own (reordered) one, or in the
    original order with ``A22 - A21 W A21'`` kept."""
    theta = np.asarray(theta, dtype=float)
    if cp.reordered_rest is not None:
        return Factorization.compute_reordered(cp, theta)
    return Factorization.compute(cp, theta, keep_unscaled=True)


def profiled_gradient(factor: Factorization, REML: bool) -> np.ndarray:
    """Gradient of the REML criterion (or the deviance) with respect to the scaled theta.

    ``factor`` comes from :func:`gradient_factor` (or any factor with
    ``unscaled_rest``, or a reordered one).  Returns NaNs when the factor
    failed (X rank deficient).
    """
    cp = factor.crossprods
    if not factor.ok:
        return np.full(cp.ntheta, np.nan)
    m = cp.a22.shape[0]
    nlead = m - 1 if REML else cp.nre_rest
    dof = cp.nobs - (cp.nfixef if REML else 0)
    if factor.order is None:
        logdet = _logdet_gradient_dense(factor, nlead)
    else:
        logdet = _logdet_gradient_reordered(factor, nlead)
    return logdet + dof * _residual_gradient(factor) / factor.pwrss()


def _term_gradient(
    layout: TermLayout, total: np.ndarray, out: np.ndarray, theta: np.ndarray, factor: float = 2.0
) -> None:
    """Write the term's gradient into ``out``: ``factor * total[c, r]`` is the derivative by lambda's entry (r, c).

    For an unstructured term those entries are theta; for a structured one the chain rule
    ``sum_(r, c) factor * total[c, r] * d lambda_rc / d theta_i`` through the structure's
    ``dlam`` at the term's scaled theta (``theta`` is in the units of the data).
    """
    rows, cols = lower_triangle(layout.ncols)
    entries = factor * total[cols, rows]
    if not layout.structure.is_default():
        dlam = layout.structure.dlam(layout.scale_theta(theta), layout.ncols)
        entries = dlam[:, rows, cols] @ entries
    out[layout.theta_start : layout.theta_stop] = entries


# --- the first (big) term ----------------------------------------------------------------
def _first_term_pieces(cp: BlockedCrossProducts, l11: np.ndarray, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``G_l = M_l^-1 lambda'`` and ``W_l = lambda G_l`` per level, shape (q, k, k) each."""
    if l11.ndim == 1:
        g = (lam[0, 0] / l11**2).reshape(-1, 1, 1)
        return g, lam[0, 0] * g
    roots = np.linalg.solve(l11, np.broadcast_to(lam.T, l11.shape))  # L_l^-1 lambda'
    g = np.linalg.solve(np.swapaxes(l11, 1, 2), roots)  # L_l^-T L_l^-1 lambda'
    return g, np.einsum("ij,qjk->qik", lam, g)


def _first_term_total(cp: BlockedCrossProducts, factor: Factorization, quad: np.ndarray) -> np.ndarray:
    """``sum_l G_l A11_l - G_l Q_l (I - W_l A11_l)`` (k x k) for the quadratic forms ``quad`` = Q."""
    lam = cp.first.scaled_lam(factor.theta)
    kernel = _level_kernels.compiled_if_loaded("gradient_total_2x2") if lam.shape[0] == 2 else None
    if kernel is not None:  # a million 2 x 2 levels: one compiled pass instead of ~1.5 s of einsums
        total = np.empty((2, 2))
        kernel(factor.l11, np.ascontiguousarray(lam), cp.a11, np.ascontiguousarray(quad), total)
        return total
    g, w = _first_term_pieces(cp, factor.l11, lam)
    k = lam.shape[0]
    if k == 1:
        a = cp.a11[:, 0, 0]
        gl, wl, ql = g[:, 0, 0], w[:, 0, 0], quad[:, 0, 0]
        return np.array([[np.sum(gl * a - gl * ql * (1.0 - wl * a))]])
    complement = np.eye(k) - np.einsum("qij,qjk->qik", w, cp.a11)
    ga = np.einsum("qij,qjk->qik", g, cp.a11)
    gqc = np.einsum("qij,qjk,qkl->qil", g, quad, complement)
    return np.sum(ga - gqc, axis=0)


# --- the dense path (factor in the original order) ------------------------------------------
def _leading_inverse(l22: np.ndarray, nlead: int) -> np.ndarray:
    """``(L L')^-1`` of the leading ``nlead x nlead`` block of a lower factor, full and symmetric.

    ``L^-1`` by LAPACK's ``trtri`` and then ``L^-T L^-1`` by one product:
    ``potri`` would do the second half with ``lauum``, which wakes OpenBLAS's
    threads even for an 8 x 8 block (16 ms instead of 1 us on a busy 2-core machine).
    """
    if nlead == 0:
        return np.zeros((0, 0))
    inverse, info = lapack.dtrtri(np.tril(l22[:nlead, :nlead]), lower=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"the rest block's factor is singular (dtrtri info {info})")
    inverse = np.tril(inverse)
    return inverse.T @ inverse


def _lambda_sandwich(p: np.ndarray, terms: tuple[TermLayout, ...], theta: np.ndarray) -> np.ndarray:
    """``Lambda~ P Lambda~'`` for the rest terms' block-diagonal Lambda~ (identity past their rows)."""
    out = p.copy()
    offset = 0
    for term in terms:
        block = slice(offset, offset + term.size)
        lam = term.scaled_lam(theta)
        if term.ncols == 1:
            out[block, :] *= lam[0, 0]
            out[:, block] *= lam[0, 0]
        else:
            part = out[block, :].reshape(term.nlevels, term.ncols, -1)
            out[block, :] = np.einsum("ij,qjm->qim", lam, part).reshape(term.size, -1)
            part = out[:, block].reshape(-1, term.nlevels, term.ncols)
            out[:, block] = np.einsum("mqj,ij->mqi", part, lam).reshape(-1, term.size)
        offset += term.size
    return out


def _quadratic_forms_dense(cp: BlockedCrossProducts, sandwich: np.ndarray, nlead: int) -> np.ndarray:
    """``Q_l = A21_l' (Lambda~ P Lambda~') A21_l`` per level of the big term (rows < nlead of A21)."""
    q, k = cp.first.nlevels, cp.first.ncols
    out = np.zeros((q, k, k))
    if nlead == 0:
        return out
    if isinstance(cp.a21, np.ndarray):
        a21 = cp.a21[:nlead]
        product = sandwich @ a21
        return np.einsum("jla,jlb->lab", a21.reshape(nlead, q, k), product.reshape(nlead, q, k))
    kernel = _kernels.compiled_if_loaded("level_gradient_sums")  # scipy's products below cost no numba import
    if kernel is not None:
        slabs = _slabs(cp)
        kernel(
            slabs.indptr,
            slabs.rows,
            slabs.values,
            sandwich,
            np.ones(sandwich.shape[0]),
            nlead,
            np.zeros((q, k, k)),
            np.full(sandwich.shape[0], -1, dtype=np.intp),
            out,
            np.zeros(1),
        )
        return out
    a21 = sp.csc_array(sp.csr_array(cp.a21)[:nlead])
    product = np.asarray(a21.T @ sandwich).T  # (nlead, q k): sandwich A21, dense
    for a in range(k):
        for b in range(k):
            out[:, a, b] = np.asarray(a21[:, a::k].multiply(product[:, b::k]).sum(axis=0)).ravel()
    return out


def _slabs(cp: BlockedCrossProducts):
    """Per-level slabs of A21 (:class:`.rank_update.VectorRankUpdate`): the update plan's own, or built once."""
    from .rank_update import VectorRankUpdate

    plan = cp.rank_update_plan
    if isinstance(plan, VectorRankUpdate):
        return plan
    cached = cp.__dict__.get("_gradient_slabs")
    if cached is None:
        cached = VectorRankUpdate.build(cp.a21, cp.first.ncols)
        cp.__dict__["_gradient_slabs"] = cached
    return cached


def _rest_terms_dense(
    cp: BlockedCrossProducts, factor: Factorization, p: np.ndarray, nlead: int, out: np.ndarray
) -> None:
    """``2 sum_l (P Lambda~' C)_{(l,c),(l,r)}`` for every rest term, written into ``out``."""
    c = factor.unscaled_rest[:nlead]
    offset = 0
    for term in cp.rest_terms:
        block = slice(offset, offset + term.size)
        k = term.ncols
        rows_c = c[:, block].reshape(nlead, term.nlevels, k)  # C[:, (l, b)]
        # (Lambda~' C)[j, (l, b)]: only the rest terms' rows of C are transformed
        lc = _rows_lambda_transposed(rows_c, cp.rest_terms, factor.theta, nlead)
        prow = p[block, :].reshape(term.nlevels, k, nlead)  # P[(l, a), :]
        total = np.einsum("lam,mlb->ab", prow, lc)
        _term_gradient(term, total, out, factor.theta)
        offset += term.size


def _rows_lambda_transposed(
    mat: np.ndarray, terms: tuple[TermLayout, ...], theta: np.ndarray, nrows: int
) -> np.ndarray:
    """``Lambda~' mat`` for a matrix with ``nrows`` rows (the rest terms' rows first)."""
    out = mat.copy()
    offset = 0
    for term in terms:
        if offset >= nrows:
            break
        block = slice(offset, offset + term.size)
        lam = term.scaled_lam(theta)
        if term.ncols == 1:
            out[block] *= lam[0, 0]
        else:
            part = out[block].reshape(term.nlevels, term.ncols, -1)
            out[block] = np.einsum("ji,qjm->qim", lam, part).reshape(out[block].shape)
        offset += term.size
    return out


def _logdet_gradient_dense(factor: Factorization, nlead: int) -> np.ndarray:
    cp = factor.crossprods
    if factor.unscaled_rest is None:
        factor = Factorization.compute(cp, factor.theta, keep_unscaled=True)
    p = _leading_inverse(factor._l22, nlead)
    out = np.zeros(cp.ntheta)
    quad = _quadratic_forms_dense(cp, _lambda_sandwich(p, cp.rest_terms, factor.theta), nlead)
    _term_gradient(cp.first, _first_term_total(cp, factor, quad), out, factor.theta)
    if cp.rest_terms:
        _rest_terms_dense(cp, factor, p, nlead, out)
    return out


# --- the reordered (supernodal) path: scalar terms only ------------------------------------
def _logdet_gradient_reordered(factor: Factorization, nlead: int) -> np.ndarray:
    """As the dense path, reading P only on the supernodal pattern (all terms scalar)."""
    cp = factor.crossprods
    reordered = cp.reordered_rest
    theta = factor.theta
    p = reordered.cholesky.selected_inverse(factor._l22, nlead)
    scales = np.array([t.scaled_lam(theta)[0, 0] for t in cp.rest_terms])
    row_scale = np.append(scales, 1.0)[reordered.row_term]
    lam1 = cp.first.scaled_lam(theta)[0, 0]
    weights = (lam1**2 / factor.l11**2).reshape(-1, 1, 1)
    quad = np.zeros((cp.first.nlevels, 1, 1))
    update_sums = np.zeros(len(cp.rest_terms))
    a22_sums = np.zeros(len(cp.rest_terms))
    update = reordered.update
    _kernels.compiled("level_gradient_sums")(
        update.indptr, update.rows, update.values, p, row_scale, nlead, weights, reordered.row_term, quad, update_sums
    )
    _kernels.compiled("lower_trace_sums")(p, reordered.a22, row_scale, reordered.row_term, nlead, a22_sums)
    out = np.zeros(cp.ntheta)
    _term_gradient(cp.first, _first_term_total(cp, factor, quad), out, factor.theta)
    for t, term in enumerate(cp.rest_terms):
        out[term.theta_start] = 2.0 * (a22_sums[t] - update_sums[t])
    return out


# --- the residual part ------------------------------------------------------------------------
def _residual_gradient(factor: Factorization) -> np.ndarray:
    """``d r^2 / d theta_i = -2 sum_l (Z'e)_{l,r} u_{l,c}`` for every theta element."""
    cp = factor.crossprods
    beta, us = factor.solve()
    nre, p = cp.nre_rest, cp.nfixef
    lams = [t.scaled_lam(factor.theta) for t in cp.terms]
    b = [small.rows_times(u, lam.T) for u, lam in zip(us, lams)]
    b_rest = np.concatenate([part.ravel() for part in b[1:]]) if nre else np.empty(0)
    a21, a22 = cp.a21, cp.a22
    # Z1'e = Z1'y - [Z_rest X]'Z1 [b_rest; beta] - Z1'Z1 b1: one product with A21' (no slicing of a sparse A21)
    coefficients = np.concatenate([-b_rest, -beta, [1.0]])
    ze_first = np.asarray(a21.T @ coefficients).ravel()
    ze_first = ze_first.reshape(b[0].shape) - np.einsum("lab,lb->la", cp.a11, b[0])
    out = np.empty(cp.ntheta)
    _term_gradient(cp.first, us[0].T @ ze_first, out, factor.theta, factor=-2.0)
    if nre:
        ze_rest = a22[:nre, -1] - a22[:nre, :nre] @ b_rest - a22[:nre, nre : nre + p] @ beta
        ze_rest = ze_rest - np.asarray(a21 @ b[0].ravel()).ravel()[:nre]
        offset = 0
        for term, u in zip(cp.rest_terms, us[1:]):
            part = ze_rest[offset : offset + term.size].reshape(term.nlevels, term.ncols)
            _term_gradient(term, u.T @ part, out, factor.theta, factor=-2.0)
            offset += term.size
    return out


class ProfiledObjective:
    """The profiled objective and its gradient over the *scaled* theta, sharing factorizations.

    ``value(x)`` factors at x (keeping what the gradient needs when
    ``with_gradient``); ``gradient(x)`` reuses the factor of the last
    ``value`` call, or of the best one, when it was at x.  Small systems are
    factored as one dense matrix (:mod:`.dense_system`); otherwise the factor
    of the lowest value seen is kept for the results (:meth:`best_factor_at`).
    """

    def __init__(self, cp: BlockedCrossProducts, objective_from, REML: bool, with_gradient: bool) -> None:
        self.cp, self.objective_from, self.REML, self.with_gradient = cp, objective_from, REML, with_gradient
        self.dense = cp.dense_system
        self._last = None
        self.best_value, self._best = np.inf, None
        self.criterion: tuple[float, float] | None = None  # (n, log weights) of objective_from, if it is the plain one

    def newton_loop(self):
        """The dense system's compiled Newton loop (:meth:`.dense_system.DenseSystem.newton_loop`) for the criterion
        ``criterion`` says ``objective_from`` computes, or None."""
        if self.dense is None or self.criterion is None:
            return None
        return self.dense.newton_loop(self.REML, self.cp.nobs, *self.criterion)

    def values(self, points: list[np.ndarray]) -> list[float]:
        """:meth:`value` at each point; on a dense system with the plain criterion one compiled call
        (:meth:`.dense_system.DenseSystem.values`), whose factors are not kept."""
        compiled = None
        if self.dense is not None and self.criterion is not None:
            compiled = self.dense.values(self.REML, self.cp.nobs, *self.criterion)
        return [self.value(point) for point in points] if compiled is None else compiled(points)

    def _factor(self, scaled: np.ndarray):
        if self.dense is not None:
            return self.dense.factor(scaled)
        theta = self.cp.from_scaled_theta(scaled)
        return gradient_factor(self.cp, theta) if self.with_gradient else self.cp.objective_factor(theta)

    def value(self, scaled: np.ndarray) -> float:
        scaled = np.asarray(scaled, dtype=float)
        factor = self._factor(scaled)
        value = self.objective_from(factor)
        self._last = (scaled.copy(), factor)
        if value < self.best_value:
            self.best_value, self._best = value, self._last
        return value

    def gradient(self, scaled: np.ndarray) -> np.ndarray:
        scaled = np.asarray(scaled, dtype=float)
        for kept in (self._last, self._best):
            if kept is not None and np.array_equal(kept[0], scaled):
                factor = kept[1]
                break
        else:
            factor = (
                self._factor(scaled)
                if self.dense is not None or self.with_gradient
                else gradient_factor(self.cp, self.cp.from_scaled_theta(scaled))
            )
        if self.dense is not None:
            return self.dense.gradient(factor, self.REML, self.cp.nobs)
        if factor.order is None and factor.unscaled_rest is None:
            factor = gradient_factor(self.cp, factor.theta)
        return profiled_gradient(factor, self.REML)

    def derivatives(self, scaled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gradient and exact Hessian (dense systems only: see :meth:`.dense_system.DenseSystem.derivatives`)."""
        scaled = np.asarray(scaled, dtype=float)
        for kept in (self._last, self._best):
            if kept is not None and np.array_equal(kept[0], scaled):
                factor = kept[1]
                break
        else:
            factor = self.dense.factor(scaled)
        return self.dense.derivatives(factor, self.REML, self.cp.nobs)

    def kept_factor_at(self, scaled: np.ndarray):
        """The factor of the last or the best evaluation when it was at exactly ``scaled``, else None."""
        for kept in (self._last, self._best):
            if kept is not None and np.array_equal(kept[0], scaled):
                return kept[1]
        return None

    def best_factor_at(self, theta: np.ndarray) -> Factorization | None:
        """The kept best blocked factorization if it is the one at exactly ``theta`` (in the units of the data)."""
        if self._best is None or not isinstance(self._best[1], Factorization):
            return None
        factor = self._best[1]
        return factor if np.array_equal(factor.theta, theta) else None

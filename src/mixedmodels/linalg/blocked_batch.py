"""The blocked objective and gradient (:mod:`.blocked`, :mod:`.gradient`) for many responses at once.

Refitting one model to hundreds of simulated responses (bootstrap, power)
changes only the y row of the blocks.  When the first-to-rest block ``A21``
is small enough to be held dense, this module evaluates the objective and
its gradient for a whole batch of responses and thetas with one set of numpy
calls, a leading batch axis on every array: per level ``k x k`` blocks of
the big term, the ``m x m`` rest block, and the gradient's pieces exactly as
:mod:`.gradient` derives them.  A fit of sleepstudy then costs a few
thousand flops per response and the calls' overhead is shared by the batch.

:func:`bfgs_batch` runs BFGS for every response in lockstep, each from the
same start with the same initial inverse Hessian (the original fit's: the
responses come from that model, so it is close to every replicate's own).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..design.covariance import lower_triangle
from .blocked import BlockedCrossProducts

__all__ = ["BlockedBatch", "bfgs_batch", "BATCH_ENTRIES"]

_LOG_2PI = np.log(2.0 * np.pi)
_ARMIJO = 1e-4
BATCH_ENTRIES = 4_000_000  # doubles of the batched A21 (B x m x q1 k1) per chunk


@dataclass(frozen=True, eq=False)
class _State:
    """One batched factorization: everything the gradient reads again."""

    x: np.ndarray
    lam1: np.ndarray
    lams: list
    m1: np.ndarray
    g1: np.ndarray
    w1: np.ndarray
    c: np.ndarray
    l22: np.ndarray
    value: np.ndarray


@dataclass(frozen=True, eq=False)
class BlockedBatch:
    """Blocks shared by a batch of responses, and each response's y rows.

    Attributes
    ----------
    cp : BlockedCrossProducts
        The model's blocks (``a21`` dense); their y rows are replaced.
    a21 : ndarray (B, m, q1, k1)
    a22 : ndarray (B, m, m)
    """

    cp: BlockedCrossProducts
    a21: np.ndarray
    a22: np.ndarray
    REML: bool
    log_weights: float = 0.0

    @classmethod
    def from_rows(
        cls, cp: BlockedCrossProducts, y_rows: np.ndarray, REML: bool, log_weights: float = 0.0
    ) -> "BlockedBatch":
        """One system per row of ``y_rows`` (``[Z'y, X'y, y'y]`` in the blocks' order)."""
        q1k1 = cp.first.size
        batch = y_rows.shape[0]
        a21 = np.repeat(np.asarray(cp.a21)[None], batch, axis=0)
        a21[:, -1, :] = y_rows[:, :q1k1]
        a22 = np.repeat(cp.a22[None], batch, axis=0)
        a22[:, -1, :] = y_rows[:, q1k1:]
        a22[:, :, -1] = y_rows[:, q1k1:]
        q, k = cp.first.nlevels, cp.first.ncols
        return cls(cp, a21.reshape(batch, -1, q, k), a22, REML, log_weights)

    @staticmethod
    def supports(cp: BlockedCrossProducts) -> bool:
        """Whether the batch can hold these blocks: A21 dense, every term unstructured (lower-triangle theta)."""
        return isinstance(cp.a21, np.ndarray) and cp.unstructured

    def subset(self, which: np.ndarray) -> "BlockedBatch":
        return BlockedBatch(self.cp, self.a21[which], self.a22[which], self.REML, self.log_weights)

    # --- the objective ---------------------------------------------------------------
    def factor(self, x: np.ndarray) -> _State:
        """Factor every system at its scaled theta (one row of ``x`` each)."""
        cp = self.cp
        lams = [_lams(x, t) for t in cp.terms]
        lam1 = lams[0]
        m1 = np.swapaxes(lam1, 1, 2)[:, None] @ cp.a11[None] @ lam1[:, None] + np.eye(cp.first.ncols)
        g1 = np.linalg.solve(m1, np.broadcast_to(np.swapaxes(lam1, 1, 2)[:, None], m1.shape))
        w1 = lam1[:, None] @ g1
        c = self.a22 - _rank_update(self.a21, w1)
        s = _rest_lambda(c, cp, lams[1:], transpose_rows=True)
        nre = cp.nre_rest
        s[:, np.arange(nre), np.arange(nre)] += 1.0
        l22, ok = _cholesky(s)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = self._objective(np.linalg.cholesky(m1) if ok.all() else _safe_cholesky(m1), l22)
        return _State(x, lam1, lams[1:], m1, g1, w1, c, l22, np.where(ok & np.isfinite(value), value, np.inf))

    def _objective(self, l11: np.ndarray, l22: np.ndarray) -> np.ndarray:
        cp = self.cp
        nre, p = cp.nre_rest, cp.nfixef
        dof = cp.nobs - (p if self.REML else 0)
        diagonal = np.diagonal(l22, axis1=1, axis2=2)
        logs = np.log(diagonal)
        value = 2.0 * np.log(np.diagonal(l11, axis1=2, axis2=3)).sum(axis=(1, 2)) + 2.0 * logs[:, :nre].sum(axis=1)
        value += dof * (1.0 + _LOG_2PI + np.log(diagonal[:, -1] ** 2 / dof))
        if self.REML:
            value += 2.0 * logs[:, nre : nre + p].sum(axis=1)
        return value - self.log_weights

    # --- the gradient ----------------------------------------------------------------
    def gradient(self, state: _State) -> np.ndarray:
        """Gradients (B x ntheta) at the factored points, as :func:`.gradient.profiled_gradient`."""
        cp = self.cp
        m = self.a22.shape[1]
        nlead = m - 1 if self.REML else cp.nre_rest
        dof = cp.nobs - (cp.nfixef if self.REML else 0)
        out = np.zeros(state.x.shape)
        lead = state.l22[:, :nlead, :nlead]
        inverse = np.linalg.solve(lead, np.broadcast_to(np.eye(nlead), lead.shape))
        p = np.swapaxes(inverse, 1, 2) @ inverse
        sandwich = _rest_lambda(p, cp, state.lams, transpose_rows=False)
        batch, q, k = state.x.shape[0], cp.first.nlevels, cp.first.ncols
        a21 = self.a21[:, :nlead]
        product = (sandwich @ a21.reshape(batch, nlead, q * k)).reshape(batch, nlead, q, k)
        quad = a21.transpose(0, 2, 3, 1) @ product.transpose(0, 2, 1, 3)  # sum_j A21[j,l,a] (P A21)[j,l,c]
        complement = np.eye(k) - state.w1 @ cp.a11
        total = (state.g1 @ cp.a11 - state.g1 @ quad @ complement).sum(axis=1)
        _put(out, cp.first, total)
        self._rest_terms(state, p, nlead, out)
        residual = self._residual(state)
        return out + dof * residual / state.l22[:, -1, -1, None] ** 2

    def _rest_terms(self, state: _State, p: np.ndarray, nlead: int, out: np.ndarray) -> None:
        cp = self.cp
        if not cp.rest_terms:
            return
        lc = _rest_lambda(state.c[:, :nlead], cp, state.lams, transpose_rows=True, columns=False)
        batch, offset = p.shape[0], 0
        for term in cp.rest_terms:
            block = slice(offset, offset + term.size)
            prow = p[:, block, :].reshape(batch, term.nlevels, term.ncols, nlead)
            cols = lc[:, :, block].reshape(batch, nlead, term.nlevels, term.ncols)
            _put(out, term, (prow @ cols.transpose(0, 2, 1, 3)).sum(axis=1))
            offset += term.size

    def _residual(self, state: _State) -> np.ndarray:
        """``d r^2 / d theta`` (the envelope theorem), every system at once."""
        cp = self.cp
        nre, p = cp.nre_rest, cp.nfixef
        batch = state.x.shape[0]
        l22 = state.l22
        solution = np.linalg.solve(np.swapaxes(l22[:, :-1, :-1], 1, 2), l22[:, -1, :-1, None])[:, :, 0]
        beta, u_rest = solution[:, nre:], solution[:, :nre]
        b_rest, us_rest, offset = [], [], 0
        for term, lam in zip(cp.rest_terms, state.lams):
            u = u_rest[:, offset : offset + term.size].reshape(batch, term.nlevels, term.ncols)
            us_rest.append(u)
            b_rest.append((u @ np.swapaxes(lam, 1, 2)).reshape(batch, -1))
            offset += term.size
        b_rest = np.concatenate(b_rest, axis=1) if b_rest else np.zeros((batch, 0))
        known = np.concatenate([b_rest, beta], axis=1)
        a21 = self.a21
        q, k = cp.first.nlevels, cp.first.ncols
        ze_first = a21[:, -1] - (known[:, None, :] @ a21[:, :-1].reshape(batch, -1, q * k)).reshape(batch, q, k)
        u1 = (state.g1 @ ze_first[..., None])[..., 0]  # the modes: (L11 L11')^-1 lambda' rhs
        b1 = (state.lam1[:, None] @ u1[..., None])[..., 0]
        ze_first = ze_first - (cp.a11[None] @ b1[..., None])[..., 0]
        out = np.zeros(state.x.shape)
        _put(out, cp.first, np.swapaxes(u1, 1, 2) @ ze_first, factor=-2.0)
        if nre:
            a22 = self.a22
            known_rest = np.concatenate([b_rest, beta], axis=1)[..., None]
            ze_rest = (
                a22[:, :nre, -1]
                - (a22[:, :nre, : nre + p] @ known_rest)[..., 0]
                - (a21[:, :nre].reshape(batch, nre, q * k) @ b1.reshape(batch, q * k, 1))[..., 0]
            )
            offset = 0
            for term, u in zip(cp.rest_terms, us_rest):
                part = ze_rest[:, offset : offset + term.size].reshape(batch, term.nlevels, term.ncols)
                _put(out, term, np.swapaxes(u, 1, 2) @ part, factor=-2.0)
                offset += term.size
        return out


def _rank_update(a21: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``A21 W A21'`` per system: (B, m, q, k) and per-level (B, q, k, k) to (B, m, m), by products
    (numpy's three-operand ``einsum`` runs ~20x slower on these shapes)."""
    batch, m, q, k = a21.shape
    if k == 1:
        scaled = a21[..., 0] * w[:, None, :, 0, 0]
        return scaled @ np.swapaxes(a21[..., 0], 1, 2)
    weighted = (a21.transpose(0, 2, 1, 3) @ w).transpose(0, 2, 1, 3)  # rows of A21_l W_l per level
    return weighted.reshape(batch, m, q * k) @ np.swapaxes(a21.reshape(batch, m, q * k), 1, 2)


def _lams(x: np.ndarray, term) -> np.ndarray:
    """Each row's ``k x k`` lambda of one term (scaled theta)."""
    rows, cols = lower_triangle(term.ncols)
    lam = np.zeros((x.shape[0], term.ncols, term.ncols))
    lam[:, rows, cols] = x[:, term.theta_start : term.theta_stop]
    return lam


def _put(out: np.ndarray, term, total: np.ndarray, factor: float = 2.0) -> None:
    """``factor * total[:, c, r]`` for each theta element (r, c) of the term."""
    rows, cols = lower_triangle(term.ncols)
    out[:, term.theta_start : term.theta_stop] += factor * total[:, cols, rows]


def _rest_lambda(
    mat: np.ndarray, cp: BlockedCrossProducts, lams: list, transpose_rows: bool, columns: bool = True
) -> np.ndarray:
    """The rest terms' lambdas applied to a stack: ``L' mat L`` (``transpose_rows``) or ``L mat L'``;
    only on the rows with ``columns=False``.  Rows and columns past the terms are left alone."""
    out = mat.copy()
    offset = 0
    for term, lam in zip(cp.rest_terms, lams):
        if offset >= out.shape[1]:
            break
        block = slice(offset, offset + term.size)
        left = np.swapaxes(lam, 1, 2) if transpose_rows else lam
        part = out[:, block].reshape(out.shape[0], term.nlevels, term.ncols, -1)
        out[:, block] = (left[:, None] @ part).reshape(out.shape[0], term.size, -1)
        if columns:
            part = out[:, :, block].reshape(out.shape[0], -1, term.nlevels, term.ncols)
            out[:, :, block] = (part @ np.swapaxes(left, 1, 2)[:, None]).reshape(out.shape[0], -1, term.size)
        offset += term.size
    return out


def _cholesky(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    try:
        return np.linalg.cholesky(s), np.ones(s.shape[0], dtype=bool)
    except np.linalg.LinAlgError:
        return _safe_cholesky(s), np.array([np.all(np.linalg.eigvalsh(one) > 0) for one in s])


def _safe_cholesky(s: np.ndarray) -> np.ndarray:
    """Lower factors of every positive definite matrix of a stack; identities for the others."""
    out = np.broadcast_to(np.eye(s.shape[-1]), s.shape).copy()
    flat_s, flat_out = s.reshape(-1, *s.shape[-2:]), out.reshape(-1, *s.shape[-2:])
    for i in range(flat_s.shape[0]):
        try:
            flat_out[i] = np.linalg.cholesky(flat_s[i])
        except np.linalg.LinAlgError:
            pass
    return out


# --- BFGS for every response ------------------------------------------------------------------
@dataclass
class BatchFits:
    """Where each fit of :func:`bfgs_batch` ended.

    ``code`` per fit: 1 converged (the predicted decrease below tolerance), 5
    out of evaluations, -4 the line search could not decrease the objective
    far from an optimum (the caller refits those one by one).
    """

    x: np.ndarray
    f: np.ndarray
    gradient: np.ndarray
    code: np.ndarray
    feval: np.ndarray
    geval: np.ndarray


def bfgs_batch(
    batch: BlockedBatch, x0: np.ndarray, inverse_hessian: np.ndarray, ftol_abs: float = 1e-8, maxeval: int = 200
) -> BatchFits:
    """BFGS from ``x0`` with the initial inverse Hessian ``inverse_hessian`` for every system, in lockstep.

    Stops a fit when the decrease its quadratic model predicts, ``g'Hg / 2``,
    is below ``ftol_abs / 100``, as :func:`mixedmodels.optim.minimize_quasi_newton`.
    """
    size = batch.a22.shape[0]
    x = np.repeat(np.asarray(x0, dtype=float)[None], size, axis=0)
    state = batch.factor(x)
    f = state.value.copy()
    g = batch.gradient(state)
    h = np.repeat(np.asarray(inverse_hessian, dtype=float)[None], size, axis=0)
    code = np.where(np.isfinite(f) & np.all(np.isfinite(g), axis=1), 0, -4)
    feval, geval = np.ones(size, dtype=int), np.ones(size, dtype=int)
    while True:
        active = np.flatnonzero(code == 0)
        if active.size == 0:
            break
        step = -np.einsum("bij,bj->bi", h[active], g[active])
        predicted = -np.einsum("bi,bi->b", g[active], step)
        bad = ~(predicted > 0)  # a lost descent direction: restart that fit's H from the start's
        if bad.any():
            h[active[bad]] = inverse_hessian
            step[bad] = -g[active[bad]] @ inverse_hessian.T
            predicted[bad] = np.einsum("bi,bi->b", g[active[bad]], -step[bad])
        done = predicted / 2.0 < ftol_abs / 100.0
        code[active[done]] = 1
        out = ~done & (feval[active] >= maxeval)
        code[active[out]] = 5
        moving = ~done & ~out
        if not moving.any():
            continue
        idx, step, predicted = active[moving], step[moving], predicted[moving]
        near = predicted < ftol_abs
        for rows, state, taken in _line_search(batch, idx, x, f, step, predicted, near, feval, code, maxeval):
            g_new = batch.subset(rows).gradient(state)
            geval[rows] += 1
            _bfgs_update(h, rows, taken, g_new - g[rows])
            g[rows] = g_new
    return BatchFits(x, f, g, code, feval, geval)


def _bfgs_update(h: np.ndarray, rows: np.ndarray, s: np.ndarray, y: np.ndarray) -> None:
    """BFGS updates of the inverse Hessians of ``rows`` (skipped where the curvature ``s'y`` is not positive)."""
    sy = np.einsum("bi,bi->b", s, y)
    scale = np.sqrt(np.einsum("bi,bi->b", s, s) * np.einsum("bi,bi->b", y, y))
    good = sy > 1e-12 * scale
    if not good.any():
        return
    rows, s, y, sy = rows[good], s[good], y[good], sy[good]
    rho = 1.0 / sy
    n = s.shape[1]
    left = np.eye(n) - rho[:, None, None] * s[:, :, None] * y[:, None, :]
    h[rows] = left @ h[rows] @ np.swapaxes(left, 1, 2) + rho[:, None, None] * s[:, :, None] * s[:, None, :]


def _line_search(
    batch: BlockedBatch,
    idx: np.ndarray,
    x: np.ndarray,
    f: np.ndarray,
    step: np.ndarray,
    predicted: np.ndarray,
    near: np.ndarray,
    feval: np.ndarray,
    code: np.ndarray,
    maxeval: int,
) -> list:
    """Backtracking (Armijo) for the fits ``idx`` at once; updates ``x``, ``f`` and ``code``.

    Returns, per round of trials, the fits it accepted, their factored state
    (for the gradient) and the steps they took.
    """
    alpha = np.ones(idx.size)
    pending = np.arange(idx.size)
    rounds = []
    for _ in range(60):
        rows = idx[pending]
        trial = x[rows] + alpha[pending, None] * step[pending]
        state = batch.subset(rows).factor(trial)
        values = state.value
        feval[rows] += 1
        slope = -predicted[pending]
        ok = values <= f[rows] + _ARMIJO * alpha[pending] * slope
        if ok.any():
            rounds.append((rows[ok], _take(state, ok), trial[ok] - x[rows[ok]]))
            x[rows[ok]], f[rows[ok]] = trial[ok], values[ok]
        failed = ~ok
        near_p = near[pending]
        give_up = failed & (near_p | (feval[rows] >= maxeval) | (alpha[pending] < 1e-10))
        code[rows[give_up & near_p]] = 1
        code[rows[give_up & ~near_p & (feval[rows] >= maxeval)]] = 5
        code[rows[give_up & ~near_p & (feval[rows] < maxeval)]] = -4
        retry = failed & ~give_up
        if not retry.any():
            break
        finite = np.isfinite(values[retry])
        a = alpha[pending[retry]]
        curvature = values[retry] - f[rows[retry]] - slope[retry] * a
        guess = np.where(
            finite & (curvature > 0), -slope[retry] * a * a / (2.0 * np.where(curvature > 0, curvature, 1.0)), 0.5 * a
        )
        alpha[pending[retry]] = np.where(finite, np.clip(guess, 0.1 * a, 0.5 * a), 0.1 * a)
        pending = pending[retry]
    return rounds


def _take(state: _State, ok: np.ndarray) -> _State:
    return _State(
        state.x[ok],
        state.lam1[ok],
        [lam[ok] for lam in state.lams],
        state.m1[ok],
        state.g1[ok],
        state.w1[ok],
        state.c[ok],
        state.l22[ok],
        state.value[ok],
    )

"""Many fits of one small linear mixed model to different responses, in lockstep.

A parametric bootstrap or a power simulation refits the same model to
hundreds of responses.  Only the y row of ``A = [Z X y]'[Z X y]`` changes, so
for a small model (:mod:`.dense_system`) the fits can share everything else
and run as one computation on a stack of dense systems: every numpy call of
Newton's method (factor, gradient and Hessian, eigen-decomposition, line
search) then serves the whole batch, instead of paying its per-call overhead
once per fit.

:func:`newton_batch` is :func:`mixedmodels.optim.minimize_newton` applied to
every response at once: each fit keeps its own iterate, line-search step and
convergence state, and a fit that has converged is left alone.  The
formulas are those of :class:`.dense_system.DenseSystem`, with a leading
batch axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dense_system import DenseSystem

__all__ = ["DenseBatch", "BatchFits", "newton_batch"]

_LOG_2PI = np.log(2.0 * np.pi)
_ARMIJO = 1e-4


@dataclass(frozen=True, eq=False)
class DenseBatch:
    """A stack of dense systems that differ only in their y row.

    Attributes
    ----------
    system : DenseSystem
        The shared pattern (``a`` is replaced per response).
    a : ndarray (B, N, N)
    REML : bool
    nobs : int
    log_weights : float
        ``sum(log(weights))``, subtracted from every objective.
    """

    system: DenseSystem
    a: np.ndarray
    REML: bool
    nobs: int
    log_weights: float = 0.0

    @classmethod
    def from_rows(cls, system: DenseSystem, y_rows: np.ndarray, REML: bool, nobs: int,
                  log_weights: float = 0.0) -> "DenseBatch":
        """One system per row of ``y_rows`` (B x N: ``[Z'y, X'y, y'y]`` in the system's order)."""
        a = np.repeat(system.a[None], y_rows.shape[0], axis=0)
        a[:, -1, :] = y_rows
        a[:, :, -1] = y_rows
        return cls(system, a, REML, nobs, log_weights)

    def subset(self, which: np.ndarray) -> "DenseBatch":
        return DenseBatch(self.system, self.a[which], self.REML, self.nobs, self.log_weights)

    @property
    def size(self) -> int:
        return self.a.shape[0]

    def lam(self, scaled: np.ndarray) -> np.ndarray:
        s = self.system
        lam = np.repeat(s.base[None], scaled.shape[0], axis=0)
        lam[:, s.rows, s.cols] = scaled[:, s.index]
        return lam

    def factor(self, scaled: np.ndarray, which: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Objectives (inf where not positive definite), factors and lambdas at scaled thetas (one row each)."""
        a = self.a if which is None else self.a[which]
        lam = self.lam(scaled)
        omega = np.swapaxes(lam, 1, 2) @ a @ lam
        nre = self.system.nre
        omega[:, np.arange(nre), np.arange(nre)] += 1.0
        lower, ok = _cholesky(omega)
        return self._objective(lower, ok), lower, lam

    def _objective(self, lower: np.ndarray, ok: np.ndarray) -> np.ndarray:
        s = self.system
        diagonal = np.diagonal(lower, axis1=1, axis2=2)
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.log(diagonal)
        dof = self.nobs - (s.nfixef if self.REML else 0)
        value = 2.0 * logs[:, : s.nre].sum(axis=1) + dof * (1.0 + _LOG_2PI + np.log(diagonal[:, -1] ** 2 / dof))
        if self.REML:
            value += 2.0 * logs[:, s.nre : s.nre + s.nfixef].sum(axis=1)
        return np.where(ok & np.isfinite(value), value - self.log_weights, np.inf)

    def derivatives(self, lower: np.ndarray, lam: np.ndarray, which: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Gradients (B, K) and Hessians (B, K, K), as :meth:`.DenseSystem.derivatives` for each system."""
        s = self.system
        a = self.a if which is None else self.a[which]
        batch, size, k = lower.shape[0], lower.shape[1], s.ntheta
        nlead = size - 1 if self.REML else s.nre
        dof = self.nobs - (s.nfixef if self.REML else 0)
        inverse = np.linalg.solve(lower, np.broadcast_to(np.eye(size), lower.shape))
        lead = np.zeros_like(lower)
        head = inverse[:, :nlead, :nlead]
        lead[:, :nlead, :nlead] = np.swapaxes(head, 1, 2) @ head
        full = np.swapaxes(inverse, 1, 2) @ inverse
        z = inverse[:, -1, :]
        a_lam = a @ lam
        transposed = np.zeros((batch, k, size, size))
        transposed[:, s.index, s.cols, :] = a_lam[:, s.rows, :]
        omega_k = transposed + np.swapaxes(transposed, 2, 3)
        times_lead = lead[:, None] @ omega_k
        omega_z = np.einsum("bkij,bj->bki", omega_k, z)
        residual_gradient = np.einsum("bki,bi->bk", omega_z, z)
        gradient = np.einsum("bkii->bk", times_lead) + dof * residual_gradient
        a_pairs = a[:, s.rows[:, None], s.rows[None, :]]
        cols = s.cols
        p_pairs = a_pairs * np.swapaxes(lead[:, cols[:, None], cols[None, :]], 1, 2)
        zc = z[:, cols]
        z_pairs = a_pairs * (zc[:, :, None] * zc[:, None, :])
        indicator = s._indicator()
        cross_p = indicator @ p_pairs @ indicator.T
        cross_z = indicator @ z_pairs @ indicator.T
        hessian = -np.einsum("blij,bkji->bkl", times_lead, times_lead) + 2.0 * cross_p
        residual = (-2.0 * omega_z @ full @ np.swapaxes(omega_z, 1, 2) + 2.0 * cross_z
                    + residual_gradient[:, :, None] * residual_gradient[:, None, :])
        hessian += dof * residual
        return gradient, (hessian + np.swapaxes(hessian, 1, 2)) / 2.0


def _cholesky(omega: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower factors of a stack, and which were positive definite (numpy refuses the whole stack otherwise)."""
    try:
        return np.linalg.cholesky(omega), np.ones(omega.shape[0], dtype=bool)
    except np.linalg.LinAlgError:
        lower = np.zeros_like(omega)
        ok = np.zeros(omega.shape[0], dtype=bool)
        for b in range(omega.shape[0]):
            try:
                lower[b] = np.linalg.cholesky(omega[b])
                ok[b] = True
            except np.linalg.LinAlgError:
                lower[b] = np.eye(omega.shape[1])
        return lower, ok


@dataclass
class BatchFits:
    """Where each fit of :func:`newton_batch` ended.

    ``code`` per fit: 1 converged (Newton decrement below tolerance at a
    positive definite Hessian), 5 out of evaluations, -4 the line search
    could not decrease the objective far from an optimum (the caller refits
    those one by one).  ``gradient`` and ``hessian`` are the final point's.
    """

    x: np.ndarray
    f: np.ndarray
    gradient: np.ndarray
    hessian: np.ndarray
    code: np.ndarray
    feval: np.ndarray
    geval: np.ndarray


def newton_batch(batch: DenseBatch, x0: np.ndarray, ftol_abs: float = 1e-8, maxeval: int = 200,
                 max_step: float = 1.0) -> BatchFits:
    """Newton's method for every system of the batch from ``x0`` (K, or B x K), in lockstep."""
    size, k = batch.size, batch.system.ntheta
    x = np.array(np.broadcast_to(x0, (size, k)), dtype=float)
    f, lower, lam = batch.factor(x)
    g, h = batch.derivatives(lower, lam)
    code = np.zeros(size, dtype=int)
    feval = np.ones(size, dtype=int)
    geval = np.ones(size, dtype=int)
    code[~np.isfinite(f)] = -4
    while True:
        active = np.flatnonzero(code == 0)
        if active.size == 0:
            break
        step, positive = _directions(g[active], h[active], max_step * np.maximum(1.0, np.abs(x[active]).max(axis=1)))
        predicted = -np.einsum("bk,bk->b", g[active], step)
        done = positive & (predicted / 2.0 < ftol_abs / 100.0)
        code[active[done]] = 1
        out = ~done & (feval[active] >= maxeval)
        code[active[out]] = 5
        moving = ~done & ~out
        if not moving.any():
            continue
        idx, step, predicted, near = active[moving], step[moving], predicted[moving], (positive & (predicted < ftol_abs))[moving]
        accepted = _line_search(batch, idx, x, f, step, predicted, near, feval, code, maxeval)
        if accepted.size:
            _, lower, lam = batch.factor(x[accepted], accepted)
            g[accepted], h[accepted] = batch.derivatives(lower, lam, accepted)
            geval[accepted] += 1
    return BatchFits(x, f, g, h, code, feval, geval)


def _directions(g: np.ndarray, h: np.ndarray, limit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Newton steps of a stack as :func:`mixedmodels.optim._newton_direction`."""
    values, vectors = np.linalg.eigh(h)
    floor = 1e-10 * np.maximum(np.abs(values).max(axis=1), 1e-300)
    along = np.einsum("bji,bj->bi", vectors, g)
    positive = values.min(axis=1) > floor
    steps = -along / np.maximum(np.abs(values), floor[:, None])
    push = (values < -floor[:, None]) & (np.abs(steps) < 0.1 * limit[:, None]) & ~positive[:, None]
    steps = np.where(push, np.where(along > 0, -0.1, 0.1) * limit[:, None], steps)
    step = np.einsum("bij,bj->bi", vectors, steps)
    largest = np.abs(step).max(axis=1)
    scale = np.where(largest > limit, limit / np.maximum(largest, 1e-300), 1.0)
    return step * scale[:, None], positive


def _line_search(batch: DenseBatch, idx: np.ndarray, x: np.ndarray, f: np.ndarray, step: np.ndarray,
                 predicted: np.ndarray, near: np.ndarray, feval: np.ndarray, code: np.ndarray, maxeval: int) -> np.ndarray:
    """Backtracking (Armijo) for the fits ``idx``, all at once; updates ``x``, ``f`` and returns the accepted fits."""
    alpha = np.ones(idx.size)
    pending = np.arange(idx.size)
    accepted = []
    for tries in range(60):
        rows = idx[pending]
        trial = x[rows] + alpha[pending, None] * step[pending]
        values, _, _ = batch.factor(trial, rows)
        feval[rows] += 1
        slope = -predicted[pending]
        ok = values <= f[rows] + _ARMIJO * alpha[pending] * slope
        x[rows[ok]], f[rows[ok]] = trial[ok], values[ok]
        accepted.append(rows[ok])
        failed = ~ok
        give_up = failed & (near[pending] | (feval[rows] >= maxeval) | (alpha[pending] < 1e-10))
        code[rows[give_up & near[pending]]] = 1
        code[rows[give_up & ~near[pending] & (feval[rows] >= maxeval)]] = 5
        code[rows[give_up & ~near[pending] & (feval[rows] < maxeval)]] = -4
        retry = failed & ~give_up
        if not retry.any():
            break
        finite = np.isfinite(values[retry])
        a = alpha[pending[retry]]
        curvature = values[retry] - f[rows[retry]] - slope[retry] * a
        guess = np.where(finite & (curvature > 0), -slope[retry] * a * a / (2.0 * np.where(curvature > 0, curvature, 1.0)), 0.5 * a)
        guess = np.where(finite, np.clip(guess, 0.1 * a, 0.5 * a), 0.1 * a)
        alpha[pending[retry]] = guess
        pending = pending[retry]
    return np.concatenate(accepted) if accepted else np.empty(0, dtype=int)

"""PIRLS on Dask: the in-memory iterations, with one pass over the persisted partitions per step.

A PIRLS step needs, at the current linear predictor ``eta``, the deviance
(to accept or halve the step) and the blocks of ``[Z X z]' W [Z X z]`` with
the working weights ``W`` and response ``z`` (to solve for the next step).
Both are sums over rows, so one pass gives both: each partition computes
``eta`` from a small description of it (:class:`EtaState`: ``offset + X beta
+ Z Lambda u``, or a mix with the starting ``eta0 = g(mustart)``), its
deviance, and its part of the blocks (:func:`~.crossprods.partial_blocks`),
summed in a tree.  The partitions themselves (level codes, scaled ``z``, X,
the validated response) are encoded once and persisted on the workers
(:class:`GlmPartition`), so a pass reads no files and builds no matrices.

:class:`DaskPirls` drives the iterations exactly as
:class:`mixedmodels.linalg.pirls.Pirls` does (same starts, step halving,
Fisher scoring then Newton steps for non-canonical links, convergence
rules) and offers the same methods to the GLMM fit (``modes``, ``joint``,
``blocked_factor``, ``joint_factor``); it counts the passes and shows them
on a progress bar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..linalg.blocked import Factorization, TermLayout
from ..linalg.pirls import PirlsResult
from .crossprods import PartialBlocks, assemble, partial_blocks, zero_blocks

__all__ = ["EtaState", "GlmPartition", "DaskPirls", "PassResult"]

# as mixedmodels.linalg.pirls
_NEWTON_FROM = 1e-2
_REUSE_FACTOR = 1e-13


@dataclass(frozen=True, eq=False)
class GlmPartition:
    """One partition's arrays for PIRLS: level codes, z divided by the column scales, X (kept columns), offset, response."""

    refs: tuple[np.ndarray, ...]
    zs: tuple[np.ndarray, ...]
    x: np.ndarray
    offset: np.ndarray
    response: Any  # GlmResponse
    eta0: np.ndarray

    @property
    def nobs(self) -> int:
        return self.x.shape[0]


@dataclass(frozen=True, eq=False)
class EtaState:
    """A linear predictor described by coefficients: ``start * eta0 + sum_i c_i (offset + X beta_i + Z b_i)``.

    ``points`` holds ``(c_i, beta_i, b_i)`` with ``b_i`` the random effects
    per term (levels x columns, in the units of the scaled z); one point with
    ``c = 1`` is the usual ``offset + X beta + Z Lambda u``.
    """

    start: float
    points: tuple[tuple[float, np.ndarray, tuple[np.ndarray, ...]], ...]

    @classmethod
    def at(cls, beta: np.ndarray, effects: tuple[np.ndarray, ...]) -> "EtaState":
        return cls(0.0, ((1.0, np.asarray(beta, dtype=float), effects),))

    @classmethod
    def initial(cls) -> "EtaState":
        return cls(1.0, ())

    def mix(self, other: "EtaState", step: float) -> "EtaState":
        """``self + step (other - self)``."""
        points = tuple((c * (1.0 - step), b, e) for c, b, e in self.points) + tuple(
            (c * step, b, e) for c, b, e in other.points
        )
        return EtaState(self.start * (1.0 - step) + other.start * step, points)

    def eta(self, part: GlmPartition) -> np.ndarray:
        eta = self.start * part.eta0 if self.start else np.zeros(part.nobs)
        for c, beta, effects in self.points:
            value = part.offset + (part.x @ beta if beta.size else 0.0)
            for refs, z, b in zip(part.refs, part.zs, effects):
                value = value + np.einsum("ij,ij->i", z, b[refs])
            eta = eta + c * value
        return eta


@dataclass(frozen=True, eq=False)
class PassJob:
    """What one pass computes: the deviance at ``state`` and, unless ``weights`` is None, the blocks there.

    ``weights``: "expected" (Fisher scoring, lme4's) or "observed" (Newton);
    ``joint``: blocks of ``[Z X z]`` (else ``[Z z]``); ``base_beta``: the fixed
    effects removed from the working response (``z = eta - offset - X base_beta + resid``).
    """

    state: EtaState
    weights: str | None
    joint: bool
    base_beta: np.ndarray | None
    nlevels: tuple[int, ...]
    ncols: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class PassResult:
    """A pass's sums: the deviance (inf where the mean is invalid) and the blocks (None if not asked)."""

    dev: float
    blocks: PartialBlocks | None

    def combine(self, other: "PassResult") -> "PassResult":
        blocks = None if self.blocks is None or other.blocks is None else self.blocks + other.blocks
        return PassResult(self.dev + other.dev, blocks)


def _evaluate(part: GlmPartition, eta: np.ndarray) -> tuple[np.ndarray | None, float]:
    """Mean and deviance of a partition's rows, as ``Pirls._evaluate`` (inf where invalid)."""
    response = part.response
    family, link = response.family, response.family.link
    if not link.valid_eta(eta):
        return None, np.inf
    mu = link.inverse(eta)
    if not response.always_valid and not family.valid_mu(mu):
        return None, np.inf
    dev = response.deviance(mu)
    return mu, dev if math.isfinite(dev) else np.inf


def pirls_pass(part: GlmPartition, job: PassJob) -> PassResult:
    """One partition's deviance and blocks at the job's linear predictor (the function the workers run)."""
    c = part.x.shape[1] + 1 if job.joint else 1
    if part.nobs == 0:
        return PassResult(0.0, None if job.weights is None else zero_blocks(job.nlevels, job.ncols, c))
    eta = job.state.eta(part)
    mu, dev = _evaluate(part, eta)
    if job.weights is None or mu is None:
        return PassResult(dev, None if job.weights is None else zero_blocks(job.nlevels, job.ncols, c))
    w, resid = part.response.working_weights(eta, mu, observed=job.weights == "observed")
    base = part.offset if job.base_beta is None else part.offset + part.x @ job.base_beta
    zw = (eta - base) + resid
    root = np.sqrt(w)
    x = part.x * root[:, None] if job.joint else np.empty((part.nobs, 0))
    blocks = partial_blocks(part.refs, tuple(z * root[:, None] for z in part.zs), job.nlevels, x, zw * root)
    return PassResult(dev, blocks)


@dataclass
class _Point:
    """A PIRLS state with what its pass gave: deviance and (expected-weight) blocks."""

    state: EtaState
    u: np.ndarray | None
    beta: np.ndarray | None
    dev: float
    blocks: PartialBlocks | None


class DaskPirls:
    """PIRLS iterations over persisted partitions (see the module docstring).

    Parameters
    ----------
    parts : list
        Persisted (delayed) :class:`GlmPartition` objects.
    layouts : tuple of TermLayout
        The terms' layouts with the unweighted columns' scales.
    family : Family
    nfixef : int
    progress : tqdm or None
        Updated once per pass.
    """

    def __init__(
        self,
        parts: list[Any],
        layouts: tuple[TermLayout, ...],
        family: Any,
        nfixef: int,
        tol: float = 1e-10,
        maxit: int = 200,
        progress: Any = None,
    ):
        self.parts, self.layouts, self.family = parts, tuple(layouts), family
        self.nfixef, self.tol, self.maxit = nfixef, tol, maxit
        self.nlevels = tuple(lay.nlevels for lay in layouts)
        self.ncols = tuple(lay.ncols for lay in layouts)
        self.scales = [lay.scales for lay in layouts]
        self.progress = progress
        self.passes = 0
        self.last_dev = np.nan

    # --- one pass -----------------------------------------------------------------------
    def run(self, state: EtaState, weights: str | None, joint: bool, base_beta: np.ndarray | None) -> PassResult:
        from .reduction import map_reduce

        job = PassJob(state, weights, joint, base_beta, self.nlevels, self.ncols)
        result = map_reduce(self.parts, pirls_pass, job, PassResult.combine)
        self.passes += 1
        if self.progress is not None:
            self.progress.update(1)
        return result

    def factor(self, blocks: PartialBlocks, theta: np.ndarray, joint: bool) -> Factorization:
        """The blocked factor of summed blocks (with PIRLS's +1 on the working response's diagonal)."""
        c = blocks.a22_xy.shape[0]
        cp = assemble(
            blocks,
            list(range(c - 1)),
            self.nlevels,
            self.ncols,
            scales=self.scales,
            plan_rank_update=False,
            structures=tuple(lay.structure for lay in self.layouts),
            prescaled=True,
        )  # z / scales on the workers
        cp.a22[-1, -1] += 1.0  # as ReweightedBlocks.assemble: the working response's own diagonal is never used
        return cp.factorize(theta)

    # --- states ---------------------------------------------------------------------------
    def effects(self, u: np.ndarray, theta: np.ndarray) -> tuple[np.ndarray, ...]:
        """``Lambda u`` per term (levels x columns) in the units of the scaled z."""
        out, start = [], 0
        for lay in self.layouts:
            block = u[start : start + lay.size].reshape(lay.nlevels, lay.ncols)
            out.append(block @ lay.scaled_lam(theta).T)
            start += lay.size
        return tuple(out)

    def _state(self, u: np.ndarray, beta: np.ndarray, theta: np.ndarray) -> EtaState:
        return EtaState.at(beta, self.effects(u, theta))

    def _visit(self, state: EtaState, u, beta, joint: bool, base_beta) -> _Point:
        result = self.run(state, "expected", joint, base_beta)
        return _Point(state, u, beta, result.dev, result.blocks)

    # --- the GLMM fit's interface ------------------------------------------------------------
    def modes(self, theta: np.ndarray, beta: np.ndarray, u0: np.ndarray) -> PirlsResult:
        """Conditional modes for fixed theta and beta (nAGQ >= 1), starting from u0."""
        return self._iterate(np.asarray(theta, dtype=float), np.asarray(beta, dtype=float), u0, joint=False)

    def joint(
        self, theta: np.ndarray, beta0: np.ndarray | None, u0: np.ndarray | None, eta0: Any = None
    ) -> PirlsResult:
        """Modes and fixed effects together (nAGQ = 0), from (beta0, u0) or else from ``eta0 = g(mustart)``."""
        return self._iterate(np.asarray(theta, dtype=float), beta0, u0, joint=True, start_at_eta0=eta0 is not None)

    def blocked_factor(self, theta: np.ndarray, res: PirlsResult) -> Factorization:
        """The factor of ``[Z z]`` at a solution's expected weights (what the results read)."""
        self.last_dev = res.dev
        result = self.run(res.eta, "expected", False, res.beta)
        return self.factor(result.blocks, theta, joint=False)

    def joint_factor(self, theta: np.ndarray, res: PirlsResult) -> Factorization:
        """The factor of ``[Z X z]`` at a solution's expected weights (gives R_X; the results read it)."""
        self.last_dev = res.dev
        result = self.run(res.eta, "expected", True, None)
        return self.factor(result.blocks, theta, joint=True)

    # --- the iterations (as Pirls._iterate) ---------------------------------------------------
    def _iterate(self, theta, beta, u, joint: bool, start_at_eta0: bool = False) -> PirlsResult:
        newton = not self.family.canonical
        base_beta = None if joint else beta
        point = self._start(theta, u, beta, joint, start_at_eta0, base_beta)
        pdev = np.inf if point.u is None else point.dev + point.u @ point.u
        converged, it, change, factor = False, 0, np.inf, None
        for it in range(1, self.maxit + 1):
            polish = newton and not converged and change < _NEWTON_FROM
            blocks = self.run(point.state, "observed", joint, base_beta).blocks if polish else point.blocks
            factor = self.factor(blocks, theta, joint)
            if converged or not factor.ok:
                break
            new_beta, spherical = factor.solve()
            new_u = np.concatenate([s.ravel() for s in spherical])
            if point.u is None:
                point, pdev = self._first_step(theta, point, new_beta, new_u, joint, base_beta)
                continue
            du = new_u - point.u
            dbeta = new_beta - point.beta if joint else None
            size = _step_size(du, dbeta)
            if not newton and size < _REUSE_FACTOR:
                converged = True
                break
            point, pdev, change, step = self._halving(theta, point, du, dbeta, size, pdev, joint, base_beta)
            if change < self.tol:
                converged = True
                if not newton and change < _REUSE_FACTOR:
                    break
            elif step < 1e-10:
                break
        u = point.u if point.u is not None else np.zeros(sum(lay.size for lay in self.layouts))
        beta_out = point.beta if point.beta is not None else np.zeros(self.nfixef)
        converged = converged and bool(np.isfinite(point.dev))
        return PirlsResult(
            u=u,
            beta=beta_out,
            eta=point.state,
            mu=None,
            dev=point.dev,
            factor=factor,
            iterations=it,
            converged=converged,
        )

    def _start(self, theta, u, beta, joint, start_at_eta0, base_beta) -> _Point:
        if joint and beta is None:
            u = None
        if u is not None:
            beta_now = np.zeros(0) if not joint else np.asarray(beta, dtype=float)
            fixed = base_beta if not joint else beta_now
            point = self._visit(self._state(u, fixed, theta), u, beta_now if joint else beta, joint, base_beta)
            if np.isfinite(point.dev):
                return point
            u = np.zeros_like(u)
            point = self._visit(self._state(u, fixed, theta), u, beta_now if joint else beta, joint, base_beta)
            if np.isfinite(point.dev) or not joint or not start_at_eta0:
                return point
        return self._visit(EtaState.initial(), None, None, joint, base_beta)

    def _first_step(self, theta, point: _Point, new_beta, new_u, joint, base_beta) -> tuple[_Point, float]:
        """From a linear predictor without coefficients: the solution if its mean is valid, else part of the way."""
        target = self._state(new_u, new_beta, theta)
        trial = self._visit(target, new_u, new_beta, joint, base_beta)
        if np.isfinite(trial.dev):
            return trial, trial.dev + new_u @ new_u
        step = 0.5
        while step > 1e-10:
            trial = self._visit(point.state.mix(target, step), None, None, joint, base_beta)
            if np.isfinite(trial.dev):
                return trial, np.inf
            step *= 0.5
        return self._visit(point.state, None, None, joint, base_beta), np.inf

    def _halving(self, theta, point: _Point, du, dbeta, size, pdev, joint, base_beta):
        """Step towards the new solution, halving while the penalized deviance does not decrease."""
        step = 1.0
        while True:
            u_try = point.u + du if step == 1.0 else point.u + step * du
            beta_try = (point.beta + dbeta if step == 1.0 else point.beta + step * dbeta) if joint else point.beta
            fixed = beta_try if joint else base_beta
            trial = self._visit(self._state(u_try, fixed, theta), u_try, beta_try, joint, base_beta)
            pdev_try = trial.dev + float(u_try @ u_try)
            if math.isfinite(pdev_try) and pdev_try <= pdev + 1e-10 * (1.0 + abs(pdev)):
                break
            if step < 1e-10:
                if not math.isfinite(pdev_try):  # no valid point along the step: stay
                    fixed = point.beta if joint else base_beta
                    stay = self._visit(self._state(point.u, fixed, theta), point.u, point.beta, joint, base_beta)
                    return stay, pdev, 0.0, 0.0
                break
            step *= 0.5
        return trial, pdev_try, step * size, step


def _step_size(du: np.ndarray, dbeta: np.ndarray | None) -> float:
    size = float(np.abs(du).max()) if du.size else 0.0
    return size if dbeta is None or not dbeta.size else max(size, float(np.abs(dbeta).max()))

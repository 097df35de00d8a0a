"""The ML deviance of a linear mixed model with one parameter held fixed (for the profiles).

With ``L_theta`` the Cholesky factor of the penalized system, ``r^2(theta)``
the penalized residual sum of squares and ``n`` observations (prior weights
``w`` add ``-sum log w`` throughout), the ML deviance is

    d(theta, sigma) = log|L_theta|^2 + n log(2 pi sigma^2) + r^2(theta) / sigma^2
    d(theta)        = log|L_theta|^2 + n (1 + log(2 pi r^2(theta) / n))   (sigma profiled out)
                    = d(theta, sigma) - n (a - 1 - log a),   a = r^2 / (n sigma^2).

What is held fixed, and over what the deviance is minimized:

* ``sigma = s``: ``d(theta, s)`` over all of theta.
* ``sd`` of column ``i`` of term ``t`` at ``s > 0``: the SD is
  ``sigma * ||row_i(Lambda_t)||``, so with theta free ``sigma`` is
  ``s / ||row_i(Lambda_t)||`` (MixedModels.jl's device); minimize
  ``d(theta, s / ||row_i||)`` over theta.  At ``s = 0`` the row is zero and
  ``d(theta)`` is minimized over the rest of theta.
* a correlation at ``rho``: term ``t`` is written in relative SDs ``S`` and
  a correlation matrix ``C``, ``Lambda_t = chol(S C S)``, with ``C`` in a
  parametrization that keeps ``rho`` fixed and ``C`` valid (see
  ``_CorFixed``); ``d(theta)`` is minimized over the SDs, the rest of ``C``
  and the other terms' theta.
* fixed effect ``beta_j`` at ``b``: holding ``beta_j`` fixed raises the
  residual sum of squares by ``(b - beta_hat_j(theta))^2 / C_jj`` with
  ``C = (L_X L_X')^-1 = sigma^-2 Var(beta_hat)`` from the X block of the
  factor, so ``d_b(theta) = d(theta) + n log(1 + (b - beta_hat_j)^2 / (C_jj r^2))``
  is minimized over theta.  This equals moving ``x_j b`` into the offset and
  refitting (lme4's approach) without rebuilding the model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..design.covariance import lower_triangle
from ..design.random import unique_group_names
from ..fitted import MixedFit
from ..linalg.dense import triangular_inverse
from ..optim import OptimizerSettings, minimize_bounded


# Looser than a fit's settings: every point starts next to its optimum, and
# zeta needs the deviance to ~1e-8, not to the last digit.
_SETTINGS = OptimizerSettings(
    ftol_rel=1e-11, ftol_abs=1e-8, xtol_rel=0.0, xtol_abs=1e-8, initial_step=0.1, maxeval=20_000
)
_SCALE_FLOOR = 0.01  # smallest scale of a free parameter in the optimizer, relative to 1 / rms(z)


# --- the parameters -------------------------------------------------------------


@dataclass(frozen=True)
class _Parameter:
    """One profiled parameter: its lme4 name, kind and position."""

    name: str
    kind: str  # "sd", "cor", "sigma" or "fixef"
    term: int = -1  # random-effects term (sd, cor)
    row: int = -1  # the term's column (sd) or the later column (cor)
    col: int = -1  # the earlier column (cor)
    index: int = -1  # position in beta (fixef)

    @property
    def lower(self) -> float:
        return {"sd": 0.0, "cor": -1.0, "sigma": 0.0}.get(self.kind, -np.inf)

    @property
    def upper(self) -> float:
        return 1.0 if self.kind == "cor" else np.inf

    @property
    def closed_lower(self) -> bool:
        """Whether the lower bound is a value the parameter can take (sigma cannot be 0)."""
        return self.kind in ("sd", "cor")


def _parameters(result: MixedFit) -> list[_Parameter]:
    """All parameters in lme4's order: per term SDs and correlations (lower triangle
    column by column), then sigma, then the fixed effects."""
    params: list[_Parameter] = []
    for t, term in enumerate(result.terms):
        cols = term.column_names
        for r, c in zip(*lower_triangle(len(cols))):
            if r == c:
                params.append(_Parameter(f"sd_{cols[r]}|{term.group}", "sd", t, int(r)))
            else:
                params.append(_Parameter(f"cor_{cols[r]}.{cols[c]}|{term.group}", "cor", t, int(r), int(c)))
    if getattr(getattr(result, "family", None), "has_dispersion", True):  # no sigma for binomial, Poisson GLMMs
        params.append(_Parameter("sigma", "sigma"))
    params += [_Parameter(n, "fixef", index=j) for j, n in enumerate(result.fixef_names)]
    names = unique_group_names([p.name for p in params])
    return [dataclasses.replace(p, name=n) for p, n in zip(params, names)]


# --- the ML deviance and the values of all parameters at a point ------------------------


class _Deviance:
    """The ML deviance of a model and the pieces the conditional problems need."""

    def __init__(self, fit: MixedFit):
        self.model = fit.model
        self.cp = fit.model.crossprods
        self.layouts = self.cp.terms
        self.n = fit.model.n_likelihood  # rows with non-zero weight (fit.nobs counts every row)
        self.theta_lower = fit.model.theta_lower
        # theta's row r multiplies column r of the term, so its natural size is
        # 1 / rms(z_r): the smallest scale the optimizer uses for it.
        rms = [np.sqrt(np.mean(term.z**2, axis=0)) for term in fit.terms]
        self.column_floor = [_SCALE_FLOOR / np.where(r > 0, r, 1.0) for r in rms]
        self.theta_floor = np.concatenate(
            [floor[lower_triangle(term.ncols)[0]] for floor, term in zip(self.column_floor, fit.terms)]
        )

    def profiled(self, theta: np.ndarray):
        """``(factor, d(theta), r^2)``, or None where the factorization fails."""
        factor = self.cp.factorize(theta)
        if not factor.ok:
            return None
        return factor, self.model.objective_from(factor, REML=False), factor.pwrss()

    def at_sigma(self, theta: np.ndarray, sigma: float) -> float:
        """``d(theta, sigma)``."""
        pieces = self.profiled(theta)
        if pieces is None or not sigma > 0 or not np.isfinite(sigma):
            return np.inf
        _, dev, r2 = pieces
        a = r2 / (self.n * sigma**2)
        return dev + self.n * (a - 1.0 - np.log(a))

    def fixef(self, factor) -> tuple[np.ndarray, np.ndarray]:
        """``beta_hat(theta)`` and ``C = (L_X L_X')^-1`` from the X block of the factor."""
        lx, cy = factor.fixed_factor()
        linv = triangular_inverse(lx)
        beta = linv.T @ cy
        return beta, linv.T @ linv

    def row_norm(self, theta: np.ndarray, term: int, row: int) -> float:
        lam = self.layouts[term].lam(theta)
        return float(np.linalg.norm(lam[row]))

    def values(self, params: Sequence[_Parameter], theta: np.ndarray, sigma: float, beta: np.ndarray) -> np.ndarray:
        return _values(self.layouts, params, theta, sigma, beta)


def _values(layouts, params: Sequence[_Parameter], theta: np.ndarray, sigma: float, beta: np.ndarray) -> np.ndarray:
    """Every parameter's value at one point: ``sd_i = sigma ||row_i(Lambda)||``,
    ``cor_ij = row_i . row_j / (||row_i|| ||row_j||)``, sigma, beta."""
    lams = [layout.lam(theta) for layout in layouts]
    norms = [np.linalg.norm(lam, axis=1) for lam in lams]
    out = np.empty(len(params))
    for k, p in enumerate(params):
        if p.kind == "sd":
            out[k] = sigma * norms[p.term][p.row]
        elif p.kind == "cor":
            denom = norms[p.term][p.row] * norms[p.term][p.col]
            out[k] = lams[p.term][p.row] @ lams[p.term][p.col] / denom if denom > 0 else np.nan
        elif p.kind == "sigma":
            out[k] = sigma
        else:
            out[k] = beta[p.index]
    return out


# --- conditional problems: the deviance with one parameter held fixed -----------------


class _Conditional:
    """The deviance with one parameter fixed at ``value``, over the free parameters ``x``.

    The base case has ``x = theta``; subclasses change the deviance, and
    some the parametrization (``encode``/``decode``).
    """

    def __init__(self, dev: _Deviance, param: _Parameter, value: float):
        self.dev, self.param, self.value = dev, param, float(value)

    def encode(self, theta: np.ndarray, sigma: float | None = None) -> np.ndarray:
        """Free parameters from theta (and, for a start, the sigma there)."""
        return np.array(theta, dtype=float)

    def decode(self, x: np.ndarray) -> np.ndarray | None:
        return x

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lower = self.dev.theta_lower
        return lower, np.full(lower.size, np.inf)

    def scale(self, x0: np.ndarray) -> np.ndarray:
        """Typical size of each free parameter near ``x0``: its value, but not below a floor."""
        return np.maximum(np.abs(x0), self.dev.theta_floor)

    def sigma(self, theta: np.ndarray) -> float:
        """sigma at theta: here the ML estimate ``sqrt(r^2 / n)``."""
        return float(np.sqrt(self.dev.profiled(theta)[2] / self.dev.n))

    def __call__(self, x: np.ndarray) -> float:
        theta = self.decode(x)
        if theta is None:
            return np.inf
        return self.deviance(theta)

    def deviance(self, theta: np.ndarray) -> float:
        pieces = self.dev.profiled(theta)
        return np.inf if pieces is None else pieces[1]

    def state(self, x: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        """theta, sigma and beta at the optimum ``x``."""
        theta = self.decode(x)
        factor = self.dev.profiled(theta)[0]
        return theta, self.sigma(theta), self.dev.fixef(factor)[0]


class _SigmaFixed(_Conditional):
    def sigma(self, theta):
        return self.value

    def deviance(self, theta):
        return self.dev.at_sigma(theta, self.value)


class _SdFixed(_Conditional):
    """``sd = sigma * ||row||`` fixed at a positive value: sigma follows theta."""

    def __init__(self, dev, param, value):
        super().__init__(dev, param, value)
        layout = dev.layouts[param.term]
        rows, cols = lower_triangle(layout.ncols)
        self.row_index = layout.theta_start + np.flatnonzero(rows == param.row)
        self.diag_index = layout.theta_start + np.flatnonzero((rows == param.row) & (cols == param.row))

    def encode(self, theta, sigma=None):
        """Start with the row rescaled so that sigma keeps its value."""
        theta = np.array(theta, dtype=float)
        if sigma is None:
            return theta
        index = self.row_index
        target = self.value / sigma
        current = np.linalg.norm(theta[index])
        if current > 0:
            theta[index] *= target / current
        else:
            theta[self.diag_index] = target
        return theta

    def scale(self, x0):
        """The fixed SD's row may be far smaller than other theta: scale it by its norm."""
        out = np.maximum(np.abs(x0), self.dev.theta_floor)
        norm_ = np.linalg.norm(x0[self.row_index])
        if norm_ > 0:
            out[self.row_index] = np.maximum(np.abs(x0[self.row_index]), _SCALE_FLOOR * norm_)
        return out

    def sigma(self, theta):
        norm_ = self.dev.row_norm(theta, self.param.term, self.param.row)
        return self.value / norm_ if norm_ > 0 else np.inf

    def deviance(self, theta):
        return self.dev.at_sigma(theta, self.sigma(theta))


class _SdZero(_Conditional):
    """An SD fixed at zero: its row of ``Lambda_t`` is zero, sigma is profiled out."""

    def __init__(self, dev, param, value):
        super().__init__(dev, param, value)
        layout = dev.layouts[param.term]
        rows, _ = lower_triangle(layout.ncols)
        self.fixed = layout.theta_start + np.flatnonzero(rows == param.row)
        self.free = np.setdiff1d(np.arange(dev.theta_lower.size), self.fixed)

    def encode(self, theta, sigma=None):
        return np.array(theta, dtype=float)[self.free]

    def decode(self, x):
        theta = np.zeros(self.dev.theta_lower.size)
        theta[self.free] = x
        return theta

    def bounds(self):
        lower = self.dev.theta_lower[self.free]
        return lower, np.full(lower.size, np.inf)

    def scale(self, x0):
        return np.maximum(np.abs(x0), self.dev.theta_floor[self.free])


class _CorFixed(_Conditional):
    """A correlation ``rho`` between columns ``c < r`` of term ``t`` fixed.

    With the term's columns permuted to ``(c, r, others...)`` its correlation
    matrix is ``P C P' = L L'`` with unit rows ``L_0 = e_0``,
    ``L_1 = (rho, sqrt(1 - rho^2), 0, ...)`` and, for ``i >= 2``, any unit
    vector ``L_i`` with ``L_ii >= 0`` -- written in spherical angles in
    ``[0, pi]`` -- so every point is a valid correlation matrix.  The free
    parameters are the other terms' theta, the term's relative SDs and those
    angles; sigma is profiled out.
    """

    def __init__(self, dev, param, value):
        super().__init__(dev, param, value)
        layout = dev.layouts[param.term]
        self.k = layout.ncols
        self.slice = slice(layout.theta_start, layout.theta_stop)
        self.others = np.setdiff1d(np.arange(dev.theta_lower.size), np.arange(layout.theta_start, layout.theta_stop))
        self.perm = np.array([param.col, param.row] + [i for i in range(self.k) if i not in (param.row, param.col)])
        self.nangles = sum(range(2, self.k))  # row i of L has i angles

    def encode(self, theta, sigma=None):
        lam = self.dev.layouts[self.param.term].lam(theta)
        sds = np.linalg.norm(lam, axis=1)
        unit = lam / np.where(sds > 0, sds, 1.0)[:, None]
        corr = np.clip(unit @ unit.T, -1.0, 1.0)
        lower = _correlation_factor(corr[np.ix_(self.perm, self.perm)])
        angles = [_unit_to_angles(lower[i, : i + 1]) for i in range(2, self.k)]
        return np.concatenate([np.asarray(theta, dtype=float)[self.others], sds, *angles])

    def decode(self, x):
        m, k = self.others.size, self.k
        sds, angles = x[m : m + k], x[m + k :]
        lower = np.zeros((k, k))
        lower[0, 0] = 1.0
        lower[1, :2] = self.value, np.sqrt(max(1.0 - self.value**2, 0.0))
        used = 0
        for i in range(2, k):
            lower[i, : i + 1] = _angles_to_unit(angles[used : used + i])
            used += i
        corr = np.empty((k, k))
        corr[np.ix_(self.perm, self.perm)] = lower @ lower.T
        theta = np.empty(self.dev.theta_lower.size)
        theta[self.others] = x[:m]
        theta[self.slice] = (sds[:, None] * _correlation_factor(corr))[lower_triangle(k)]
        return theta

    def bounds(self):
        m, k = self.others.size, self.k
        lower = np.concatenate([self.dev.theta_lower[self.others], np.zeros(k), np.zeros(self.nangles)])
        upper = np.concatenate([np.full(m + k, np.inf), np.full(self.nangles, np.pi)])
        return lower, upper

    def scale(self, x0):
        floor = np.concatenate(
            [self.dev.theta_floor[self.others], self.dev.column_floor[self.param.term], np.ones(self.nangles)]
        )
        out = np.maximum(np.abs(x0), floor)
        out[out.size - self.nangles :] = 1.0
        return out


def _unit_to_angles(u: np.ndarray) -> np.ndarray:
    """Spherical angles ``phi_j = atan2(||u[j+1:]||, u[j])`` in ``[0, pi]`` of a unit vector with ``u[-1] >= 0``."""
    tails = np.sqrt(np.cumsum(u[::-1] ** 2)[::-1])
    return np.arctan2(tails[1:], u[:-1])


def _angles_to_unit(phi: np.ndarray) -> np.ndarray:
    """The unit vector ``(cos phi_1, sin phi_1 cos phi_2, ..., sin phi_1 ... sin phi_m)``."""
    sines = np.concatenate([[1.0], np.cumprod(np.sin(phi))])
    return sines * np.concatenate([np.cos(phi), [1.0]])


class _FixefFixed(_Conditional):
    """``beta_j = b``: the residual sum of squares grows by ``(b - beta_hat_j)^2 / C_jj``."""

    def _pieces(self, theta):
        pieces = self.dev.profiled(theta)
        if pieces is None:
            return None
        factor, dev, r2 = pieces
        beta, cov = self.dev.fixef(factor)
        j = self.param.index
        gap = self.value - beta[j]
        return factor, dev, r2, r2 + gap**2 / cov[j, j], beta + cov[:, j] / cov[j, j] * gap

    def deviance(self, theta):
        pieces = self._pieces(theta)
        if pieces is None:
            return np.inf
        _, dev, r2, r2_b, _ = pieces
        return dev + self.dev.n * np.log(r2_b / r2)

    def state(self, x):
        theta = self.decode(x)
        _, _, _, r2_b, beta = self._pieces(theta)
        beta[self.param.index] = self.value
        return theta, float(np.sqrt(r2_b / self.dev.n)), beta


def _correlation_factor(corr: np.ndarray) -> np.ndarray:
    """Lower-triangular ``L`` with ``L L' = corr`` and unit rows; semidefinite ``corr`` allowed."""
    k = corr.shape[0]
    lam = np.zeros((k, k))
    for j in range(k):
        lam[j, j] = np.sqrt(max(1.0 - lam[j, :j] @ lam[j, :j], 0.0))
        if lam[j, j] > 0:
            lam[j + 1 :, j] = (corr[j + 1 :, j] - lam[j + 1 :, :j] @ lam[j, :j]) / lam[j, j]
    return lam


def _conditional(dev: _Deviance, param: _Parameter, value: float) -> _Conditional:
    if param.kind == "sigma":
        return _SigmaFixed(dev, param, value)
    if param.kind == "sd":
        return _SdFixed(dev, param, value) if value > 0 else _SdZero(dev, param, value)
    if param.kind == "cor":
        return _CorFixed(dev, param, value)
    return _FixefFixed(dev, param, value)


def _optimize(problem: _Conditional, theta_start: np.ndarray, sigma_start: float) -> tuple[float, np.ndarray]:
    """Minimize a conditional problem from a neighbouring point; return the deviance and theta."""
    x0 = problem.encode(theta_start, sigma_start)
    lower, upper = problem.bounds()
    x0 = np.clip(x0, lower, upper)
    if x0.size == 0:
        return problem(x0), problem.decode(x0)
    # BOBYQA's first steps are relative to the start (and it moves a start that is
    # nearer a bound than its step), so optimize over x / scale.
    scale = problem.scale(x0)
    info = minimize_bounded(lambda z: problem(z * scale), x0 / scale, lower / scale, upper / scale, settings=_SETTINGS)
    return info.fmin, problem.decode(info.final * scale)

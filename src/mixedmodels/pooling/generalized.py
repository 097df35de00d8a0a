"""Pooling for generalized linear mixed models: complete, no and partial pooling on the link scale.

For a glmer fit (binomial, Poisson, ...) the three approaches are, as for lmer:

* **complete pooling** -- R's ``glm`` of the fixed part, groups ignored;
* **no pooling** -- a ``glm`` per level of the grouping factor (``share_fixed=False``, R's
  ``lmList(..., family=)``), or one ``glm(y ~ 0 + g + g:z + x)`` whose random-term columns
  ``z`` vary by level and whose other columns ``x`` are shared (``share_fixed=True``, the
  default when there are such columns);
* **partial pooling** -- glmer's ``coef()``: fixed effects plus each level's conditional mode,

all on the scale of the linear predictor (logit, log, ...).  Each glm is fitted by iteratively
reweighted least squares from R's starting values, with R's ``glm.control`` (at most 25
iterations, relative deviance change 1e-8) and R's rule for aliased columns (NaN, R's ``NA``).
The joint fit solves each IRLS step by :func:`~.layout.shared_least_squares`, never forming
the n x (levels x columns) matrix.

**Separation.**  When a level's 0s and 1s (or its zero counts) can be separated by its own
coefficients, some of them have no finite maximum-likelihood estimate: they run off to -inf
or +inf, where R's ``glm`` stops at a large number (-23, say) with a huge SE.  The commonest
case, a level whose responses are all 0 (or, binomial, all successes), is recognised from the
data: its intercept is reported as -inf (+inf), its other per-level coefficients as NaN
(nothing is left to estimate them), and its rows are left out of the joint fit (in the limit
they fit perfectly and no longer inform the shared coefficients).  Any other divergence is
found by continuing Fisher scoring three steps past convergence: at a finite optimum the
coefficients no longer move, while a diverging one keeps moving the linear predictor by about
1 per step; a coefficient that moves it by more than 1 in those steps is reported as -inf or
+inf (in the direction it moves), with its SE NaN.  ``separation`` lists every such
coefficient and the comparison warns (:class:`SeparationWarning`).  Partial pooling needs
none of this: the random-effects distribution keeps every level finite.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..errors import MixedModelsWarning
from ..families import GlmResponse
from ..fitted import MixedFit
from ..linalg.lstsq import kept_columns, lstsq, unscaled_covariance
from .layout import (
    LeastSquaresFit,
    Layout,
    level_rows,
    no_pooling_arrays,
    shared_least_squares,
    shared_names,
)
from .results import PoolingComparison, assemble_comparison

__all__ = ["GlmFit", "glm_fit", "compare_generalized", "SeparationWarning"]

_MAXIT, _TOL = 25, 1e-8  # R's glm.control()
_EXTRA_STEPS = 3  # Fisher-scoring steps past convergence that reveal diverging coefficients


class SeparationWarning(MixedModelsWarning):
    """A no-pooling GLM has no finite estimate for some level (separation)."""


@dataclass(frozen=True, eq=False)
class GlmFit(LeastSquaresFit):
    """A GLM fitted by IRLS (R's ``glm``): link-scale estimates, NaN for aliased columns.

    ``sigma`` is the square root of the dispersion (1 for binomial and Poisson), ``converged``
    IRLS's verdict and ``deviance`` the residual deviance.
    """

    converged: bool = True
    deviance: float = np.nan


# --------------------------------------------------------------------------- IRLS
@dataclass(frozen=True)
class _Step:
    coef: np.ndarray
    unscaled_var: np.ndarray
    rank: int


def _dense_solver(x: np.ndarray):
    """Weighted least squares on a dense design with R's aliasing (columns fixed at the first step)."""
    kept: list[int] | None = None

    def solve(z: np.ndarray, w: np.ndarray) -> _Step:
        nonlocal kept
        if kept is None:
            kept = kept_columns(x[w > 0])
        fit = lstsq(x[:, kept], z, w, alias=False)
        coef, var = np.full(x.shape[1], np.nan), np.full(x.shape[1], np.nan)
        if kept:
            coef[kept] = fit.coef
            var[kept] = np.diag(unscaled_covariance(fit.r))
        return _Step(coef, var, len(kept))

    def eta(coef: np.ndarray) -> np.ndarray:
        return x @ np.nan_to_num(coef)

    return solve, eta


def _shared_solver(layout: Layout):
    """Each step by :func:`shared_least_squares` (per-level random-term columns, shared others)."""
    per = [layout.terms.index(t) for t in layout.random_terms]
    shared = [j for j, t in enumerate(layout.terms) if t not in layout.random_terms]
    k = len(per)

    def solve(z: np.ndarray, w: np.ndarray) -> _Step:
        sol = shared_least_squares(layout, z, w)
        return _Step(sol.coef, sol.unscaled_var, sol.rank)

    def eta(coef: np.ndarray) -> np.ndarray:
        c = np.nan_to_num(coef)
        b = c[: len(layout.levels) * k].reshape(len(layout.levels), k)
        return np.einsum("ij,ij->i", layout.design[:, per], b[layout.refs]) + layout.design[:, shared] @ c[len(b) * k :]

    return solve, eta


def _irls(solve, eta_of, response: GlmResponse, offset: np.ndarray):
    """R's glm.fit: Fisher scoring from ``mustart``, step halving while the deviance is not finite.

    Returns the last step, the fitted means, the deviance, whether it converged, and how far
    each coefficient moved in :data:`_EXTRA_STEPS` further steps (see the module docstring).
    """
    family, link = response.family, response.family.link
    mu = response.mustart()
    eta = link.link(mu)
    dev_old, step, converged = response.deviance(mu), None, False

    def scoring_step(eta, mu):
        mu_eta = link.mu_eta(eta)
        w = np.where(response.weights > 0, response.weights * mu_eta**2 / family.variance(mu), 0.0)
        z = eta - offset + np.divide(response.y - mu, mu_eta, out=np.zeros_like(mu), where=mu_eta != 0)
        new = solve(z, w)
        new_eta = eta_of(new.coef) + offset
        return new, new_eta, link.inverse(new_eta)

    for _ in range(_MAXIT):
        new, new_eta, new_mu = scoring_step(eta, mu)
        dev = response.deviance(new_mu)
        halvings = 0
        while not np.isfinite(dev) and step is not None and halvings < 30:
            new = _Step((new.coef + step.coef) / 2, new.unscaled_var, new.rank)
            new_eta = eta_of(new.coef) + offset
            new_mu = link.inverse(new_eta)
            dev, halvings = response.deviance(new_mu), halvings + 1
        step, eta, mu = new, new_eta, new_mu
        if abs(dev - dev_old) / (abs(dev) + 0.1) < _TOL:
            converged = True
            break
        dev_old = dev
    probe_eta, probe_mu, probe = eta, mu, step
    for _ in range(_EXTRA_STEPS):
        probe, probe_eta, probe_mu = scoring_step(probe_eta, probe_mu)
    with np.errstate(invalid="ignore"):
        moved = probe.coef - step.coef
    return step, mu, dev, converged, moved


def _dispersion(response: GlmResponse, mu: np.ndarray, df: int) -> float:
    """1 for binomial and Poisson; else R's Pearson estimate ``sum w (y - mu)^2 / V(mu) / df``."""
    if not response.family.has_dispersion:
        return 1.0
    keep = response.weights > 0
    pearson = response.weights[keep] * (response.y[keep] - mu[keep]) ** 2 / response.family.variance(mu[keep])
    return float(np.sum(pearson) / df) if df > 0 else np.nan


def glm_fit(
    solver, response: GlmResponse, offset: np.ndarray | None, names: list[str], reach: np.ndarray
) -> tuple[GlmFit, np.ndarray]:
    """Fit by IRLS with ``solver`` (dense or shared); the fit and each coefficient's divergence.

    ``reach``: the largest ``|x|`` of each coefficient's column (over its rows), so that a
    coefficient's movement is measured on the scale of the linear predictor.  The second
    value is the sign of each diverging coefficient's movement (0 for those that converged).
    """
    solve, eta_of = solver
    offset = np.zeros(len(response.y)) if offset is None else offset
    step, mu, dev, converged, moved = _irls(solve, eta_of, response, offset)
    diverging = np.where(np.nan_to_num(np.abs(moved) * reach) > 1.0, np.sign(moved), 0.0)
    nobs = int(np.count_nonzero(response.weights))
    df = nobs - step.rank
    phi = _dispersion(response, mu, df)
    coef = np.where(diverging > 0, np.inf, np.where(diverging < 0, -np.inf, step.coef))
    se = np.where(diverging != 0, np.nan, np.sqrt(phi * step.unscaled_var))
    index = pd.Index(names, name="term")
    fit = GlmFit(
        pd.Series(coef, index=index, name="estimate"),
        pd.Series(se, index=index, name="se"),
        float(np.sqrt(phi)),
        df,
        nobs,
        step.rank,
        converged or bool(np.any(diverging)),
        float(dev),
    )
    return fit, diverging


def _reach(x: np.ndarray) -> np.ndarray:
    return np.max(np.abs(x), axis=0) if len(x) else np.zeros(x.shape[1])


def _subset(response: GlmResponse, rows: np.ndarray) -> GlmResponse:
    return GlmResponse.make(response.family, response.y[rows], response.weights[rows], response.trials[rows])


# --------------------------------------------------------------------------- separation
def _bound(response: GlmResponse, rows: np.ndarray) -> float:
    """-1 when every informative row is at the family's lower bound (all 0), +1 at the upper (all 1), else 0."""
    use = rows[response.weights[rows] > 0]
    if use.size == 0:
        return 0.0
    y, name = response.y[use], response.family.name
    if name in ("binomial", "poisson") and np.all(y == 0):
        return -1.0
    if name == "binomial" and np.all(y == 1):
        return 1.0
    return 0.0


def _bound_estimates(layout: Layout, sign: float) -> dict[str, float]:
    """A level at a bound: intercept at sign * inf, its other pooled columns NaN (none is estimable)."""
    return {t: (sign * np.inf if t == "(Intercept)" else np.nan) for t in layout.random_terms}


# --------------------------------------------------------------------------- the three fits
def complete_glm(fit: MixedFit, layout: Layout) -> GlmFit:
    """R's ``glm`` of the fixed part (diverging coefficients, if any, are -inf/+inf and warned about)."""
    inputs = fit.model.inputs
    x = inputs.fixed.matrix
    glm, diverging = glm_fit(
        _dense_solver(x), layout.response, layout.offset, list(inputs.fixed.column_names), _reach(x)
    )
    if np.any(diverging):
        names = ", ".join(glm.coef.index[diverging != 0])
        warnings.warn(
            f"complete pooling: the {fit.family.name} glm of the fixed part has no finite estimate of "
            f"{names} (separation); reported as -inf/+inf",
            SeparationWarning,
            stacklevel=4,
        )
    return glm


def no_pooling_separate_glm(layout: Layout) -> tuple[dict[str, GlmFit], list[dict]]:
    """One glm of all coefficient columns per level (lmList), and the coefficients without a finite estimate."""
    fits, separated = {}, []
    offset = layout.offset if layout.offset is not None else np.zeros(len(layout.y))
    index = pd.Index(list(layout.terms), name="term")
    for level, rows in zip(layout.levels, level_rows(layout)):
        response = _subset(layout.response, rows)
        sign = _bound(layout.response, rows)
        if sign:  # every response at a bound: only the intercept is (infinitely) determined
            coef = pd.Series(
                [sign * np.inf if t == "(Intercept)" else np.nan for t in layout.terms], index=index, name="estimate"
            )
            fits[level] = GlmFit(
                coef,
                pd.Series(np.nan, index=index, name="se"),
                np.nan,
                0,
                int(np.count_nonzero(response.weights)),
                0,
                True,
                0.0,
            )
            separated += _separation_rows(layout, level, rows, coef, _bound_reason(sign))
            continue
        x = layout.design[rows]
        glm, diverging = glm_fit(_dense_solver(x), response, offset[rows], list(layout.terms), _reach(x))
        fits[level] = glm
        if np.any(diverging):
            separated += _separation_rows(layout, level, rows, glm.coef[diverging != 0], _DIVERGED)
    return fits, separated


def no_pooling_shared_glm(layout: Layout) -> tuple[GlmFit, list[dict]]:
    """One glm ``y ~ 0 + g + g:z + x`` (levels whose responses are all at a bound left out, see above)."""
    groups = level_rows(layout)
    signs = np.array([_bound(layout.response, rows) for rows in groups])
    keep = np.ones(len(layout.y), dtype=bool)
    for sign, rows in zip(signs, groups):
        if sign:
            keep[rows] = False
    weights = np.where(keep, layout.response.weights, 0.0)
    response = GlmResponse.make(layout.response.family, layout.response.y, weights, layout.response.trials)
    glm, diverging = glm_fit(
        _shared_solver(layout), response, layout.offset, shared_names(layout), _shared_reach(layout, groups)
    )
    coef, se = glm.coef.copy(), glm.se.copy()
    separated = []
    k = len(layout.random_terms)
    for j, (level, rows, sign) in enumerate(zip(layout.levels, groups, signs)):
        names = coef.index[j * k : (j + 1) * k]
        if sign:
            values = _bound_estimates(layout, sign)
            coef[names] = [values[t] for t in layout.random_terms]
            se[names] = np.nan
            separated += _separation_rows(layout, level, rows, coef[names], _bound_reason(sign))
        elif np.any(diverging[j * k : (j + 1) * k]):
            gone = names[diverging[j * k : (j + 1) * k] != 0]
            separated += _separation_rows(layout, level, rows, coef[gone], _DIVERGED)
    shared = diverging[len(groups) * k :] != 0
    if np.any(shared):
        rows = np.arange(len(layout.y))
        separated += _separation_rows(layout, "(all)", rows, coef.iloc[len(groups) * k :][shared], _DIVERGED)
    return replace(glm, coef=coef, se=se), separated


def _shared_reach(layout: Layout, groups: list[np.ndarray]) -> np.ndarray:
    per = [layout.terms.index(t) for t in layout.random_terms]
    shared = [j for j, t in enumerate(layout.terms) if t not in layout.random_terms]
    levels = [_reach(layout.design[rows][:, per]) for rows in groups]
    return np.concatenate(levels + [_reach(layout.design[:, shared])])


_DIVERGED = "no finite estimate: it diverges (separation)"


def _bound_reason(sign: float) -> str:
    return "every response is 0" if sign < 0 else "every response is a success"


def _separation_rows(layout: Layout, level: str, rows: np.ndarray, coef: pd.Series, why: str) -> list[dict]:
    """One row per coefficient without a finite estimate (its name as in ``layout.terms``)."""
    out = []
    for name, value in coef.items():
        term = _term_of(layout, level, str(name))
        out.append(
            {
                "group": level,
                "term": term,
                "n": len(rows),
                "mean_response": float(np.mean(layout.y[rows])),
                "estimate": value,
                "reason": why,
            }
        )
    return out


def _term_of(layout: Layout, level: str, name: str) -> str:
    """``Subject308:Days`` -> ``Days`` (the joint fit's names); a term's own name is kept."""
    prefix = f"{layout.group}{level}"
    if name == prefix:
        return "(Intercept)"
    return name[len(prefix) + 1 :] if name.startswith(prefix + ":") else name


def _warn_separation(layout: Layout, rows: list[dict], family: str) -> None:
    if not rows:
        return
    levels = list(dict.fromkeys(r["group"] for r in rows))
    shown = ", ".join(map(repr, levels[:8])) + (", ..." if len(levels) > 8 else "")
    warnings.warn(
        f"no pooling: {len(rows)} coefficient(s) of the {family} fits of {len(levels)} level(s) of {layout.group!r} "
        f"({shown}) have no finite estimate (separation, e.g. every response 0): reported as -inf/+inf (NaN where "
        "nothing is left to estimate them); see .separation.  Partial pooling keeps every level finite.",
        SeparationWarning,
        stacklevel=4,
    )


def compare_generalized(fit: MixedFit, layout: Layout, share_fixed: bool) -> PoolingComparison:
    """The three approaches for a glmer fit, on the link scale (see the module docstring)."""
    complete = complete_glm(fit, layout)
    if share_fixed:
        no_fit, separated = no_pooling_shared_glm(layout)
    else:
        no_fit, separated = no_pooling_separate_glm(layout)
    _warn_separation(layout, separated, fit.family.name)
    with np.errstate(invalid="ignore"):
        no_est, no_se = no_pooling_arrays(layout, no_fit)
    columns = ["group", "term", "n", "mean_response", "estimate", "reason"]
    separation = pd.DataFrame(separated, columns=columns)
    return assemble_comparison(fit, layout, share_fixed, complete, no_fit, no_est, no_se, separation)

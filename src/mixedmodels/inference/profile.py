"""Likelihood profiles of a linear mixed model (lme4's ``profile.merMod``).

For one parameter ``p`` of the model -- a random-effect standard deviation or
correlation, the residual standard deviation sigma, or a fixed effect -- the
profiled deviance ``d(p)`` is the ML deviance ``-2 log L`` minimized over all
other parameters with ``p`` held fixed.  Its signed square root

    zeta(p) = sign(p - p_hat) * sqrt(d(p) - d(p_hat))

is a straight line in ``p`` when the likelihood is quadratic, and the
likelihood-ratio confidence limits at level ``1 - alpha`` are where
``zeta(p) = -/+ z_{1 - alpha/2}`` (Bates et al. 2015, JSS 67(1), section 5.1).
As in lme4 the profile is always of the ML deviance: a REML fit is refitted
by maximum likelihood first, and ``p_hat`` are the ML estimates.

The deviance with one parameter held fixed, and over what it is minimized, is
in :mod:`mixedmodels.inference._conditional`.

Points are placed as in lme4: from the estimate outwards, each step chosen
from the local slope of zeta so that zeta changes by about ``delta``
(default ``cutoff / 8``), until ``|zeta|`` passes
``cutoff = sqrt(chi2_{1 - alphamax}(number of parameters))`` or the
parameter reaches a bound (an SD at 0, a correlation at -1 or 1).  A natural
cubic spline of zeta against each parameter interpolates between the points
for the intervals.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np
import pandas as pd
from scipy.interpolate import CubicSpline
from scipy.optimize import brentq
from scipy.stats import chi2, norm

from ..errors import ConvergenceWarning, MixedModelsError, SingularFitWarning
from .._validate import Numbers, Text, check_arguments, check_bool, argument_kinds
from ..fitted import MixedFit, is_generalized, is_mixed
from ..optim import OptimizerSettings
from ._conditional import _conditional, _Deviance, _optimize, _Parameter, _parameters


__all__ = ["ProfileResult", "profile", "parameter_names", "parameter_values"]

_MAXMULT = 10.0  # largest factor by which one step may grow or shrink relative to the last
_LOWER_DEVIANCE_TOL = 1e-6  # (relative) a point this far below the fit's deviance: the fit did not converge


# --- the parameters -------------------------------------------------------------


def parameter_names(result: MixedFit) -> list[str]:
    """lme4's names of all parameters, as ``confint(..., oldNames = FALSE)`` shows them.

    ``sd_(Intercept)|Subject``, ``cor_Days.(Intercept)|Subject``,
    ``sd_Days|Subject``, ..., ``sigma``, then the fixed effects.
    """
    return [p.name for p in _parameters(result)]


def _select(params: list[_Parameter], which) -> list[_Parameter]:
    """The parameters named by ``which`` (see :func:`profile`), in model order."""
    if which is None:
        return params
    items = [which] if isinstance(which, (str, int, np.integer)) else list(which)
    chosen: set[int] = set()
    old = {f".sig{i + 1:02d}": i for i in range(sum(p.kind in ("sd", "cor") for p in params))}
    old[".sigma"] = next(i for i, p in enumerate(params) if p.kind == "sigma")
    for item in items:
        if isinstance(item, (int, np.integer)):
            if not -len(params) <= item < len(params):
                raise MixedModelsError(
                    f"parameter index {item} is out of range: the model has {len(params)} parameters"
                )
            chosen.add(int(item) % len(params))
        elif item == "theta_":
            chosen |= {i for i, p in enumerate(params) if p.kind != "fixef"}
        elif item == "beta_":
            chosen |= {i for i, p in enumerate(params) if p.kind == "fixef"}
        elif item in old:
            chosen.add(old[item])
        else:
            index = next((i for i, p in enumerate(params) if p.name == item), None)
            if index is None:
                raise MixedModelsError(
                    f"unknown parameter {item!r}; choose from {[p.name for p in params]}, 'theta_' or 'beta_'"
                )
            chosen.add(index)
    return [p for i, p in enumerate(params) if i in chosen]


def parameter_values(result: MixedFit) -> pd.Series:
    """The fit's parameters with lme4's names: SDs and correlations (as ``VarCorr``),
    sigma and the fixed effects -- what ``confint`` gives intervals for."""
    params = _parameters(result)
    covariances = list(result.covariances.values())  # one per term, in term order
    values = []
    for p in params:
        if p.kind == "sd":
            values.append(np.sqrt(covariances[p.term][p.row, p.row]))
        elif p.kind == "cor":
            cov = covariances[p.term]
            denom = np.sqrt(cov[p.row, p.row] * cov[p.col, p.col])
            values.append(cov[p.row, p.col] / denom if denom > 0 else np.nan)
        else:
            values.append(result.sigma if p.kind == "sigma" else result.beta[p.index])
    return pd.Series(values, index=[p.name for p in params], name="estimate", dtype=float)


# --- walking out from the estimate ------------------------------------------------------


@dataclass
class _Walk:
    """Settings and shared state of one profile computation."""

    dev: _Deviance
    params: list[_Parameter]
    base: float
    theta_hat: np.ndarray
    sigma_hat: float
    estimates: np.ndarray
    cutoff: float
    delta: float
    maxpts: int
    lowest: float = np.inf

    def point(self, param: _Parameter, value: float, start: tuple[np.ndarray, float], estimate: float):
        """zeta, all parameter values and (theta, sigma) with ``param`` fixed at ``value``.

        ``start`` is (theta, sigma) at a neighbouring point.
        """
        problem = _conditional(self.dev, param, value)
        deviance, theta = _optimize(problem, *start)
        if not np.isfinite(deviance):
            return np.inf, None, start
        self.lowest = min(self.lowest, deviance)
        theta, sigma, beta = problem.state(problem.encode(theta))
        zeta = np.sign(value - estimate) * np.sqrt(max(deviance - self.base, 0.0))
        return zeta, self.dev.values(self.params, theta, sigma, beta), (theta, sigma)

    def direction(self, param: _Parameter, estimate: float, sign: int, step: float) -> list[tuple]:
        """Points on one side of the estimate, nearest first."""
        bound = param.lower if sign < 0 else param.upper
        points: list[tuple] = []
        if (estimate - bound) * sign >= 0:  # the estimate is at the bound
            return points
        value, zeta, start = estimate, 0.0, (self.theta_hat, self.sigma_hat)
        while len(points) < self.maxpts:
            new = value + sign * step
            at_bound = (new - bound) * sign >= 0
            if at_bound:
                new = bound if param.closed_lower or sign > 0 else value / 2
                at_bound = param.closed_lower or sign > 0
            new_zeta, row, start = self.point(param, new, start, estimate)
            if not np.isfinite(new_zeta):
                break
            points.append((new, new_zeta, row))
            if at_bound or abs(new_zeta) >= self.cutoff:
                break
            slope = (new_zeta - zeta) / (new - value)
            proposal = self.delta / slope if slope > 0 else 2.0 * abs(new - value)
            step = float(np.clip(proposal, abs(new - value) / _MAXMULT, abs(new - value) * _MAXMULT))
            value, zeta = new, new_zeta
        return points


def _first_step(fit: MixedFit, dev: _Deviance, param: _Parameter, estimate: float, delta: float) -> float:
    """A step expected to change zeta by about ``delta`` (large-sample standard errors)."""
    sigma = fit.sigma
    if param.kind == "fixef":
        _, cov = dev.fixef(dev.profiled(fit.theta)[0])
        return delta * sigma * float(np.sqrt(cov[param.index, param.index]))
    if param.kind == "sigma":
        return delta * sigma / np.sqrt(2.0 * fit.model.n_likelihood)
    nlevels = fit.terms[param.term].nlevels
    if param.kind == "sd":
        return delta * (estimate if estimate > 0 else 0.01 * sigma) / np.sqrt(2.0 * nlevels)
    return delta * max(1.0 - estimate**2, 0.01) / np.sqrt(nlevels)


# The ML optimum the profile is centred on, to a tighter tolerance than a fit's
# (lme4's ftol_abs 1e-8).  Near the optimum zeta is the square root of a small
# deviance difference, so an optimum stopped 1e-7 short moves zeta by ~3e-4 and
# the estimates of flat directions by much more: sleepstudy's ML refit started
# at the REML theta stopped 1.3e-7 above the optimum with one BLAS kernel and
# 5e-10 with another, which moved the correlation from 0.08132 to 0.08143.  At
# 1e-12 both starts and every kernel agree to ~1e-5 relative.
_CENTRE_SETTINGS = OptimizerSettings(ftol_abs=1e-12, xtol_rel=1e-10)


def _ml_fit(result: MixedFit) -> MixedFit:
    """The ML fit whose deviance is profiled: the model refitted by ML from the fit's theta,
    to :data:`_CENTRE_SETTINGS` (a REML fit's ML optimum, or an ML fit's polished)."""
    model = dataclasses.replace(result.model, REML=False) if result.REML else result.model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SingularFitWarning)
        return model.fit(settings=_CENTRE_SETTINGS, start=result.theta)


# --- the result ----------------------------------------------------------------------------


def _interval_labels(level: float) -> list[str]:
    """R's column names for a two-sided interval: ``"2.5 %"``, ``"97.5 %"``."""
    alpha = (1.0 - level) / 2.0
    return [f"{100 * p:.3g} %" for p in (alpha, 1.0 - alpha)]


def _check_level(level: float) -> float:
    level = float(level)
    if not 0.0 < level < 1.0:
        raise MixedModelsError(f"level must be between 0 and 1 (e.g. 0.95), not {level}")
    return level


@dataclass(frozen=True, eq=False)
class ProfileResult:
    """Zeta profiles of the parameters of a linear mixed model (lme4's ``thpr``).

    Attributes
    ----------
    table : DataFrame
        One row per profile point: ``parameter`` (the profiled one), ``value``
        (its fixed value), ``zeta``, then the value of every parameter at that
        point (the others at their conditional optimum), named as lme4 names
        them (``sd_(Intercept)|Subject``, ``sigma``, ``Days``, ...).
    estimates : Series
        The ML estimates of all parameters (zeta = 0).
    splines : dict of str -> scipy.interpolate.CubicSpline
        For each profiled parameter, the natural cubic interpolating spline of
        zeta against the parameter; the intervals solve ``spline(p) = -/+ z``.
    bounds : dict of str -> (float, float)
        Each parameter's range (SDs >= 0, correlations in [-1, 1]).
    deviance : float
        The ML deviance at the estimates.
    cutoff : float
        The profiles extend to ``|zeta| >= cutoff`` where the bounds allow.
    REML : bool
        Whether the profiled fit was REML (the profile itself is always ML).
    """

    table: pd.DataFrame
    estimates: pd.Series
    splines: Mapping[str, CubicSpline]
    bounds: Mapping[str, tuple[float, float]]
    deviance: float
    cutoff: float
    REML: bool

    @property
    def parameters(self) -> list[str]:
        """The profiled parameters, in model order."""
        return list(self.splines)

    @argument_kinds(parameter=Text(), values=Numbers(scalar=True, what="a number or a list of numbers"))
    def zeta(self, parameter: str, values) -> np.ndarray:
        """The interpolated zeta of ``parameter`` at ``values`` (NaN outside the profiled range)."""
        check_arguments(locals())
        spline = self._spline(parameter)
        x = np.asarray(values, dtype=float)
        lo, hi = spline.x[0], spline.x[-1]
        return np.where((x >= lo) & (x <= hi), spline(np.clip(x, lo, hi)), np.nan)

    def _spline(self, parameter: str) -> CubicSpline:
        if parameter not in self.splines:
            raise MixedModelsError(f"parameter {parameter!r} was not profiled; profiled: {self.parameters}")
        return self.splines[parameter]

    def confint(self, level: float = 0.95) -> pd.DataFrame:
        """Profile-likelihood confidence intervals, with R's column names.

        The limits solve ``zeta(p) = -/+ z_{(1 + level) / 2}`` on the splines.
        A limit the profile does not reach is the parameter's bound when the
        profile ends there (e.g. 0 for an SD), otherwise NaN with a warning.
        """
        check_arguments(locals())
        z = float(norm.ppf((1.0 + _check_level(level)) / 2.0))
        rows = [[self._limit(name, -z), self._limit(name, z)] for name in self.parameters]
        return pd.DataFrame(rows, index=self.parameters, columns=_interval_labels(level))

    def _limit(self, name: str, target: float) -> float:
        spline = self._spline(name)
        x = spline.x
        y = spline(x)  # zeta at the knots
        lower, upper = self.bounds[name]
        cross = np.flatnonzero((y[:-1] - target) * (y[1:] - target) <= 0)
        if cross.size:
            centre = np.searchsorted(x, self.estimates[name])
            i = cross[np.argmin(np.abs(cross - centre))]
            if y[i] == y[i + 1]:
                return float(x[i])
            return float(brentq(lambda v: spline(v) - target, x[i], x[i + 1], xtol=1e-12 * max(1.0, abs(x[i]))))
        end = x[0] if target < 0 else x[-1]
        if end == (lower if target < 0 else upper):
            return float(end)
        warnings.warn(
            f"the profile of {name} does not reach zeta = {target:.3g}; "
            "its limit is NaN (try a smaller alphamax or a larger maxpts)",
            ConvergenceWarning,
            stacklevel=3,
        )
        return np.nan

    def plot(self, **kwargs):
        """Zeta plots, one panel per parameter (:func:`mixedmodels.plots.profile_zeta`; needs matplotlib)."""
        from ..plots import profile_zeta  # upward: a convenience method (see tests/test_layering.py)

        return profile_zeta(self, **kwargs)

    def __repr__(self) -> str:
        kind = "REML fit, ML profile" if self.REML else "ML fit"
        return f"<ProfileResult ({kind}): {len(self.table)} points for {len(self.splines)} parameters>"


def _spline(values: np.ndarray, zetas: np.ndarray) -> CubicSpline:
    order = np.argsort(values, kind="stable")
    values, zetas = values[order], zetas[order]
    keep = np.concatenate([[True], np.diff(values) > 0])
    return CubicSpline(values[keep], zetas[keep], bc_type="natural")


# --- the public function ----------------------------------------------------------------------


def profile(
    result: MixedFit,
    *,
    which: str | int | Iterable[str | int] | None = None,
    alphamax: float = 0.01,
    maxpts: int = 100,
    delta: float | None = None,
    progress: bool = False,
) -> ProfileResult:
    """Zeta profiles of a linear mixed model's parameters (lme4's ``profile.merMod``).

    Parameters
    ----------
    result : LmerResults
        A fitted linear mixed model.  A REML fit is refitted by ML: as in
        lme4, the profile is of the ML deviance.
    which : str, int or list, optional
        Parameters to profile: names as :func:`parameter_names` gives them
        (``"sd_(Intercept)|Subject"``, ``"sigma"``, ``"Days"``), lme4's old
        names (``".sig01"``, ``".sigma"``), 0-based positions, ``"theta_"``
        (all SDs, correlations and sigma) or ``"beta_"`` (the fixed effects).
        Default: all.
    alphamax : float
        The profiles extend to ``|zeta| >= sqrt(chi2_{1 - alphamax}(m))``, ``m``
        the number of parameters (lme4's default 0.01).
    maxpts : int
        At most this many points on each side of each estimate.
    delta : float, optional
        Target change of zeta between points (default ``cutoff / 8``).
    progress : bool
        Show a progress bar (tqdm).

    Returns
    -------
    ProfileResult
        ``.table`` of points, ``.splines`` and ``.confint(level)``.
    """
    _check_profilable(result)
    progress = check_bool(progress, "progress")
    if not 0.0 < alphamax < 1.0:
        raise MixedModelsError(f"alphamax must be between 0 and 1, not {alphamax}")
    if int(maxpts) < 1:
        raise MixedModelsError(f"maxpts must be a positive integer, not {maxpts}")
    params = _parameters(result)
    chosen = _select(params, which)
    fit = _ml_fit(result)
    dev = _Deviance(fit)
    estimates = dev.values(params, fit.theta, fit.sigma, fit.beta)
    cutoff = float(np.sqrt(chi2.ppf(1.0 - alphamax, len(params))))
    step = cutoff / 8.0 if delta is None else float(delta)
    if not step > 0:
        raise MixedModelsError(f"delta must be positive, not {delta}")
    walk = _Walk(dev, params, fit.objective, fit.theta, fit.sigma, estimates, cutoff, step, int(maxpts))
    frames, splines, bounds = [], {}, {}
    for param in _progress(chosen, progress):
        frame = _profile_one(walk, fit, param, params.index(param))
        frames.append(frame)
        splines[param.name] = _spline(frame["value"].to_numpy(), frame["zeta"].to_numpy())
        bounds[param.name] = (param.lower, param.upper)
    if walk.lowest < fit.objective - _LOWER_DEVIANCE_TOL * max(1.0, abs(fit.objective)):
        warnings.warn(
            f"profiling found a deviance ({walk.lowest:.6f}) lower than the fit's ({fit.objective:.6f}): "
            "the fit did not reach the optimum; refit with tighter optimizer settings",
            ConvergenceWarning,
            stacklevel=2,
        )
    table = pd.concat(frames, ignore_index=True)
    return ProfileResult(
        table=table,
        estimates=pd.Series(estimates, index=[p.name for p in params], name="estimate"),
        splines=splines,
        bounds=bounds,
        deviance=fit.objective,
        cutoff=cutoff,
        REML=result.REML,
    )


def _check_profilable(result: MixedFit) -> None:
    """Profiles re-solve a linear mixed model's penalized least squares (its ``model.crossprods``)."""
    if not is_mixed(result) or is_generalized(result):
        raise MixedModelsError(
            f"profile() needs a linear mixed model fitted with mm.lmer, not {type(result).__name__}; "
            "for other models use confint(method='wald') or confint(method='boot')"
        )
    for term in result.terms:
        if not term.structure.is_default():
            raise MixedModelsError(
                f"profile() walks lme4's standard deviations and correlations of unstructured terms; {term} has a "
                f"{term.structure.name}() structure: use confint(method='wald') or confint(method='boot')"
            )
    if getattr(result.model, "residual", None) is not None:
        raise MixedModelsError(
            "profile() is not available with a residual structure (weights= or correlation=) yet; "
            "use confint(method='wald')"
        )


def _profile_one(walk: _Walk, fit: MixedFit, param: _Parameter, position: int) -> pd.DataFrame:
    """All points of one parameter's profile, ordered by value."""
    estimate = walk.estimates[position]
    if not np.isfinite(estimate):
        raise MixedModelsError(
            f"cannot profile {param.name}: it is undefined at the estimates (a standard deviation is zero)"
        )
    step = _first_step(fit, walk.dev, param, estimate, walk.delta)
    below = walk.direction(param, estimate, -1, step)
    above = walk.direction(param, estimate, +1, step)
    points = below[::-1] + [(estimate, 0.0, walk.estimates)] + above
    names = [p.name for p in walk.params]
    frame = pd.DataFrame([row for _, _, row in points], columns=names)
    frame.insert(0, "zeta", [z for _, z, _ in points])
    frame.insert(0, "value", [v for v, _, _ in points])
    frame.insert(0, "parameter", param.name)
    return frame


def _progress(items: list, show: bool):
    if not show:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc="profiling", unit="parameter")

"""Model checking pictures: residuals, normal QQ plots, and profile zeta plots."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import MixedModelsError
from ..fitted import MixedFit
from ._common import DATA_COLOR, draw_qq, grid_shape, pyplot
from .._validate import Duck, Frame, Numbers, OneOf, Real, check_arguments, argument_kinds

if TYPE_CHECKING:
    from matplotlib.figure import Figure


__all__ = ["diagnostics", "profile_zeta"]


def diagnostics(fit: MixedFit, *, ncols: int | None = None, figsize: tuple[float, float] | None = None) -> "Figure":
    """Residuals against fitted values, and normal QQ plots of the residuals and of each random effect.

    Panels, in order: Pearson residuals vs fitted values (lme4's ``plot(m)``),
    ``qqnorm`` of the residuals, then ``qqnorm`` of the conditional modes of
    every grouping factor and term (``ranef(m)``).  QQ plots use R's
    ``ppoints`` and the ``qqline`` through the quartiles.  For a glmer fit the
    axes say their scale: fitted means are on the response scale (e.g.
    probabilities), conditional modes on the link scale (e.g. logit).

    Returns
    -------
    Figure
        ``2 + (number of random-effect columns)`` panels.
    """
    check_arguments(locals())
    scales = _scales(fit)
    panels = [("Residuals vs fitted", None)]
    panels.append(
        ("Normal Q-Q: residuals", fit.residuals(type="pearson").dropna().to_numpy())
    )  # na_action="exclude" pads
    for group, modes in fit.ranef().items():
        for term in modes.columns:
            panels.append((f"Normal Q-Q: {group} {term}", modes[term].to_numpy()))
    nrows, ncols = grid_shape(len(panels), ncols or (2 if len(panels) <= 4 else 3))
    figsize = figsize or (3.6 * ncols, 3.2 * nrows + 0.4)
    fig, axes = pyplot().subplots(nrows, ncols, squeeze=False, figsize=figsize, layout="constrained")
    flat = axes.ravel()
    _residuals_vs_fitted(flat[0], fit, scales["fitted"])
    for k, (ax, (title, values)) in enumerate(zip(flat[1:], panels[1:])):
        draw_qq(ax, values, title)
        ax.set_ylabel("Pearson residuals" if k == 0 else scales["modes"])
    for ax in flat[len(panels) :]:
        ax.remove()
    fig.suptitle(f"Diagnostics: {fit.formula}")
    return fig


# what a glmer fit's fitted mean is, per family, on the response scale
_MEAN_NAMES = {"binomial": "fitted probability", "poisson": "fitted mean count"}


def _scales(fit: MixedFit) -> dict[str, str]:
    """Axis labels that name the scale: the response scale for fitted means, the link scale for modes."""
    family = getattr(fit, "family", None)
    if family is None or family.name == "gaussian" and family.link.name == "identity":
        return {"fitted": "fitted values", "modes": "conditional modes"}
    mean = _MEAN_NAMES.get(family.name, f"fitted mean ({family.name})")
    return {"fitted": f"{mean} (response scale)", "modes": f"conditional modes ({family.link.name} scale)"}


def _residuals_vs_fitted(ax, fit: MixedFit, xlabel: str) -> None:
    fitted = fit.fitted.to_numpy()
    resid = fit.residuals(type="pearson").to_numpy()
    ax.scatter(fitted, resid, s=10, color=DATA_COLOR, alpha=0.6)
    ax.axhline(0.0, color="#D55E00", linewidth=1)
    ax.set_title("Residuals vs fitted")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Pearson residuals")


# --------------------------------------------------------------------------
# profile zeta plots

PROFILE_COLUMNS = ("parameter", "value", "zeta")


def _profile_frame(profile: Any) -> pd.DataFrame:
    """The long (parameter, value, zeta) frame of a profile object or DataFrame."""
    frame = profile
    for attr in ("to_frame", "frame", "table"):
        if not isinstance(frame, pd.DataFrame) and hasattr(frame, attr):
            frame = getattr(frame, attr)
            frame = frame() if callable(frame) else frame
    if not isinstance(frame, pd.DataFrame):
        raise MixedModelsError(
            f"profile_zeta needs a DataFrame with columns {list(PROFILE_COLUMNS)} (or a profile object "
            f"with to_frame()), got {type(profile).__name__}"
        )
    missing = [c for c in PROFILE_COLUMNS if c not in frame.columns]
    if missing:
        raise MixedModelsError(f"the profile has no column(s) {missing}; it needs {list(PROFILE_COLUMNS)}")
    return frame


@argument_kinds(
    profile=OneOf(
        Frame(),
        *(Duck(a, what="a profile") for a in ("to_frame", "frame", "table")),
        what="a profile (m.profile()) or its data frame",
    ),
    levels=Numbers(Real(0.0, 1.0, low_open=True, high_open=True), what="a list of probabilities in (0, 1)"),
)
def profile_zeta(
    profile: Any,
    *,
    parameters: Sequence[str] | None = None,
    levels: Sequence[float] = (0.5, 0.8, 0.9, 0.95, 0.99),
    absolute: bool = False,
    ncols: int | None = None,
    figsize: tuple[float, float] | None = None,
) -> "Figure":
    """Zeta profile plots, one panel per parameter (lme4's ``xyplot(profile(m))``).

    ``zeta(p) = sign(p - p_hat) * sqrt(deviance(p) - deviance(p_hat))`` is the
    signed square root of the likelihood-ratio statistic; it is a straight
    line when the likelihood is quadratic in ``p``.  Horizontal lines at
    ``+- Phi^-1((1 + level)/2)`` mark where the profile confidence intervals end.

    Parameters
    ----------
    profile : DataFrame or profile object
        Long format, columns ``parameter`` (name), ``value`` (parameter value)
        and ``zeta``; an object with a ``to_frame()`` method (or ``frame`` /
        ``table`` attribute) returning such a frame is accepted too, e.g.
        ``m.profile()``; an object with a ``zeta(parameter, values)`` method
        also gets its interpolating spline drawn through the points.
    parameters : sequence of str, optional
        Which parameters to draw, in this order (default all, in order of appearance).
    levels : sequence of float
        Confidence levels of the reference lines.
    absolute : bool
        Plot ``|zeta|`` (lme4's ``absVal = TRUE``).

    Returns
    -------
    Figure
        Panel k's line (gid ``zeta``) holds the profile points sorted by value;
        a line with gid ``spline`` the interpolated curve when there is one;
        lines with gid ``level`` the reference lines, whose confidence levels
        the right-hand axis (gid ``levels``) of each row's last panel names.
    """
    check_arguments(locals())
    frame = _profile_frame(profile)
    names = list(dict.fromkeys(frame["parameter"].astype(str))) if parameters is None else list(parameters)
    unknown = [p for p in names if p not in set(frame["parameter"].astype(str))]
    if unknown:
        raise MixedModelsError(f"parameters {unknown} are not in the profile")
    nrows, ncols = grid_shape(len(names), ncols if ncols is not None else min(3, len(names)))
    figsize = figsize or (3.3 * ncols, 2.9 * nrows + 0.4)
    fig, axes = pyplot().subplots(nrows, ncols, squeeze=False, sharey=True, figsize=figsize, layout="constrained")
    flat = axes.ravel()
    interpolate = None if isinstance(profile, pd.DataFrame) else getattr(profile, "zeta", None)
    for ax, name in zip(flat, names):
        rows = frame[frame["parameter"].astype(str) == name].sort_values("value")
        value, zeta = rows["value"].to_numpy(float), rows["zeta"].to_numpy(float)
        _zeta_panel(ax, name, value, zeta, levels, absolute)
        if callable(interpolate) and value.size >= 2:
            grid = np.linspace(value.min(), value.max(), 200)
            curve = np.asarray(interpolate(name, grid), dtype=float)
            ax.plot(grid, np.abs(curve) if absolute else curve, color="#0072B2", linewidth=1.4, gid="spline")
    for ax in flat[len(names) :]:
        ax.remove()
    for row in range(nrows):  # the last panel of each row names the reference lines' levels
        _label_levels(flat[min((row + 1) * ncols, len(names)) - 1], levels, absolute)
    for ax in axes[:, 0]:
        ax.set_ylabel("|zeta|" if absolute else "zeta")
    fig.suptitle("Profile zeta plots")
    return fig


def _level_bounds(levels, absolute: bool) -> list[tuple[float, float]]:
    """(zeta, level) of each reference line: +-Phi^-1((1 + level) / 2), only + for |zeta|."""
    out = []
    for lev in levels:
        z = float(stats.norm.ppf(0.5 + lev / 2))
        out += [(b, lev) for b in ((z,) if absolute else (-z, z))]
    return out


def _label_levels(ax, levels, absolute: bool) -> None:
    """A right-hand axis whose ticks name the confidence level of each reference line."""
    bounds = _level_bounds(levels, absolute)
    right = ax.secondary_yaxis("right")
    right.set_yticks([b for b, _ in bounds], [f"{100 * lev:g}%" for _, lev in bounds])
    right.tick_params(labelsize=7, length=2, colors="#757575")
    right.set_ylabel("confidence level", fontsize=8, color="#757575")
    right.set_gid("levels")


def _zeta_panel(ax, name: str, value: np.ndarray, zeta: np.ndarray, levels, absolute: bool) -> None:
    shown = np.abs(zeta) if absolute else zeta
    ax.plot(value, shown, color="#0072B2", linewidth=1.0, marker="o", markersize=3, gid="zeta")
    for bound, _ in _level_bounds(levels, absolute):
        ax.axhline(bound, color="#BDBDBD", linewidth=0.7, linestyle=":", gid="level")
    ax.axhline(0.0, color="#9E9E9E", linewidth=0.8)
    estimate = _zero_crossing(value, zeta)
    if estimate is not None:
        ax.axvline(estimate, color="#D55E00", linewidth=0.8, linestyle="--", gid="estimate")
    ax.set_title(name, fontsize=10)


def _zero_crossing(value: np.ndarray, zeta: np.ndarray) -> float | None:
    """The parameter value where zeta crosses 0 (the estimate), by linear interpolation."""
    ok = np.isfinite(value) & np.isfinite(zeta)
    value, zeta = value[ok], zeta[ok]
    if zeta.size == 0:
        return None
    exact = np.flatnonzero(zeta == 0)
    if exact.size:
        return float(value[exact[0]])
    change = np.flatnonzero(np.sign(zeta[:-1]) != np.sign(zeta[1:]))
    if change.size == 0:
        return None
    i = change[0]
    return float(value[i] - zeta[i] * (value[i + 1] - value[i]) / (zeta[i + 1] - zeta[i]))

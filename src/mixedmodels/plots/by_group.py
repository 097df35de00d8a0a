"""Per-group panels of raw data with a smoother, and a model's conditional lines (lattice's
``xyplot(y ~ x | g)``, languageR's ``xylowess.fnc``).

Looking at every group's data before (and after) fitting is the lecture's first step:
``by_group(sleep, "Days", "Reaction", "Subject")`` draws one panel per subject with the
points and R's ``lowess`` smoother; ``smooth="lm"`` draws each subject's own least-squares
line instead (no pooling), and ``fit=m`` overlays the model's conditional line for each
group -- the fixed effects plus that group's random effects, ``m.predict(newdata)`` -- so the
smoother and the mixed model can be compared panel by panel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from .._validate import FIT, Anything, Choice, Integer, Real, Text, argument_kinds, check_arguments
from ..errors import DataError, MixedModelsError
from ._common import DATA_COLOR, POOLING_STYLE, figure_legend, grid_shape, pyplot
from .smooth import least_squares_line, lowess

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["by_group"]

_SMOOTHERS = ("lowess", "lm", None)
_MAX_PANELS = 64
_SMOOTH_COLOR = "#0072B2"
_FIT_COLOR = POOLING_STYLE["partial"]["color"]


_FIT = FIT.__class__(*FIT.attributes, what=FIT.what, allow_none=True)


def _check_columns(data: Any, x: str, y: str, group: str) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"by_group needs a pandas DataFrame, not {type(data).__name__}")
    missing = [c for c in (x, y, group) if c not in data.columns]
    if missing:
        raise DataError(f"column(s) {missing} are not in the data; it has {list(data.columns)}")
    for name in (x, y):
        if not pd.api.types.is_numeric_dtype(data[name]) or pd.api.types.is_bool_dtype(data[name]):
            raise DataError(f"column {name!r} must be numeric to be drawn on an axis (it is {data[name].dtype})")
    return data


def _levels(values: pd.Series, groups: Sequence[Any] | None) -> list:
    present = (
        list(values.cat.categories)
        if isinstance(values.dtype, pd.CategoricalDtype)
        else sorted(values.dropna().unique())
    )
    present = [lv for lv in present if (values == lv).any()]
    if groups is None:
        if len(present) > _MAX_PANELS:
            raise MixedModelsError(
                f"{len(present)} groups is too many panels; choose up to {_MAX_PANELS} with groups=[...]"
            )
        return present
    chosen = [groups] if isinstance(groups, (str, int)) else list(groups)
    by_text = {str(lv): lv for lv in present}
    unknown = [g for g in chosen if str(g) not in by_text]
    if unknown:
        raise MixedModelsError(f"groups {unknown} are not in column {values.name!r}")
    return [by_text[str(g)] for g in chosen]


def _smooth_line(xs: np.ndarray, ys: np.ndarray, smooth: str | None, span: float, iterations: int):
    if smooth is None or xs.size == 0:
        return None
    if smooth == "lowess":
        return lowess(xs, ys, f=span, iter=iterations) if xs.size >= 2 else None
    line = least_squares_line(xs, ys)
    if line is None:
        return None
    grid = np.array([xs.min(), xs.max()])
    return grid, line[0] + line[1] * grid


def _conditional_line(fit: Any, rows: pd.DataFrame, x: str, npoints: int):
    """The fit's prediction (all random effects) over the group's range of x, other columns at its first row."""
    grid = np.linspace(rows[x].min(), rows[x].max(), npoints)
    new = rows.iloc[[0] * npoints].reset_index(drop=True)
    new[x] = grid
    try:
        values = fit.predict(new, allow_new_levels=True) if getattr(fit, "terms", ()) else fit.predict(new)
    except MixedModelsError as exc:
        raise MixedModelsError(f"cannot draw the fit's lines from these data: {exc}") from exc
    return grid, np.asarray(values, dtype=float)


@argument_kinds(
    x=Text(),
    y=Text(),
    group=Text(),
    smooth=Choice("lowess", "lm", allow_none=True),
    fit=_FIT,
    groups=Anything("levels of any type, matched against the group column by _levels, which names what is missing"),
    span=Real(0.0, 1.0, low_open=True),
    iterations=Integer(0, 100),
)
def by_group(
    data: pd.DataFrame,
    x: str,
    y: str,
    group: str,
    *,
    smooth: str | None = "lowess",
    fit: Any = None,
    groups: Sequence[Any] | None = None,
    span: float = 2.0 / 3.0,
    iterations: int = 3,
    ncols: int | None = None,
    npoints: int = 50,
    figsize: tuple[float, float] | None = None,
) -> "Figure":
    """One panel per group: the data, a smoother, and optionally a fitted model's lines.

    Parameters
    ----------
    data : DataFrame
    x, y : str
        Numeric columns for the horizontal and vertical axes (``Days``, ``Reaction``).
    group : str
        The column whose levels get a panel each (``Subject``), in its category order.
    smooth : {"lowess", "lm", None}
        ``"lowess"``: R's ``lowess`` per group (span ``span``, ``iterations`` robustness
        iterations; :func:`mixedmodels.plots.smooth.lowess`), as ``xylowess.fnc``;
        ``"lm"``: each group's least-squares line (lattice's ``type = "r"``); None: points only.
    fit : fitted model, optional
        An lmer / glmer (or lm) fit whose predictions ``fit.predict(newdata)`` -- for a mixed
        model the conditional line, fixed plus the group's random effects -- are drawn over
        each group's range of ``x`` (other columns at the group's first row; a group the fit
        has not seen gets the population line).
    groups : sequence, optional
        The levels to draw (default all; needed above 64).
    span, iterations : float, int
        The lowess smoother's span ``f`` and robustness iterations (R's defaults 2/3 and 3).
    ncols, npoints, figsize
        Panels per row, points per fitted curve, figure size.

    Returns
    -------
    Figure
        Panel per group, titled ``"<group> <level>"``; its lines have gid ``"smooth"`` (the
        smoother) and ``"fit"`` (the model's line); the points are the first collection.
    """
    check_arguments(locals())
    if smooth not in _SMOOTHERS:
        raise MixedModelsError(f"smooth must be 'lowess', 'lm' or None, not {smooth!r}")
    if not 0.0 < float(span) <= 1.0:
        raise MixedModelsError(
            f"span must be in (0, 1] (the fraction of each group's points per local fit), got {span!r}"
        )
    data = _check_columns(data, x, y, group)
    levels = _levels(data[group], groups)
    nrows, ncols = grid_shape(len(levels), ncols)
    figsize = figsize or (max(6.0, 1.75 * ncols + 0.8), 1.75 * nrows + 1.2)
    fig, axes = pyplot().subplots(
        nrows, ncols, sharex=True, sharey=True, squeeze=False, figsize=figsize, layout="constrained"
    )
    flat = axes.ravel()
    for ax, level in zip(flat, levels):
        rows = data[(data[group] == level) & data[x].notna() & data[y].notna()]
        xs, ys = rows[x].to_numpy(dtype=float), rows[y].to_numpy(dtype=float)
        ax.scatter(xs, ys, s=10, color=DATA_COLOR, alpha=0.75, zorder=3)
        line = _smooth_line(xs, ys, smooth, span, iterations)
        if line is not None:
            ax.plot(*line, color=_SMOOTH_COLOR, linewidth=1.3, gid="smooth")
        if fit is not None and len(rows):
            ax.plot(*_conditional_line(fit, rows, x, npoints), color=_FIT_COLOR, linewidth=1.3, gid="fit")
        ax.set_title(f"{group} {level}", fontsize=9, pad=3)
        ax.tick_params(labelsize=8)
    for k in range(len(levels), len(flat)):
        flat[k].remove()
        if k - ncols >= 0:
            flat[k - ncols].tick_params(labelbottom=True)
    for k in range(max(0, len(levels) - ncols), len(levels)):
        flat[k].set_xlabel(x, fontsize=9)
    values = data[x].dropna().to_numpy(dtype=float)
    if values.size and np.all(values == np.round(values)):  # whole numbers (days, trials): whole ticks
        from matplotlib.ticker import MaxNLocator

        flat[0].xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    fig.supylabel(y)
    _legend(fig, smooth, span, fit)
    fig.suptitle(f"{y} by {x}, one panel per {group}")
    return fig


def _legend(fig, smooth: str | None, span: float, fit: Any) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", linestyle="none", markersize=4, color=DATA_COLOR)]
    labels = ["observed"]
    if smooth is not None:
        handles.append(Line2D([], [], color=_SMOOTH_COLOR, linewidth=1.3))
        labels.append(f"lowess (f = {span:.3g})" if smooth == "lowess" else "least-squares line per group")
    if fit is not None:
        handles.append(Line2D([], [], color=_FIT_COLOR, linewidth=1.3))
        mixed = bool(getattr(fit, "terms", ()))
        labels.append("model: fixed + group's random effects" if mixed else "model prediction")
    figure_legend(fig, handles, labels, where="lower")

"""Pictures of the conditional modes: caterpillar plots and mode-against-mode scatter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
from scipy import stats

from ..errors import MixedModelsError
from ..fitted import MixedFit
from ..pooling.layout import group_covariance
from ._common import POOLING_STYLE, ellipse, pyplot, single_axes
from ._labels import label_points
from .._validate import Real, check_arguments, argument_kinds

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


__all__ = ["caterpillar", "ranef_scatter"]

_MAX_TICK_LABELS = 40


def _chosen_groups(fit: MixedFit, groups) -> list[str]:
    available = list(fit.ranef().keys())
    if groups is None:
        return available
    chosen = [groups] if isinstance(groups, str) else list(groups)
    bad = [g for g in chosen if g not in available]
    if bad:
        raise MixedModelsError(f"grouping factors {bad} are not in the model; choose from {available}")
    return chosen


def caterpillar(
    fit: MixedFit,
    *,
    groups: str | Sequence[str] | None = None,
    level: float = 0.95,
    sort: bool = True,
    figsize: tuple[float, float] | None = None,
) -> "Figure":
    """Conditional modes with prediction intervals, one panel per grouping factor and term.

    The interval of level ``b_j`` is ``b_j +- z * condsd_j`` with
    ``z = Phi^-1((1 + level) / 2)`` (1.96 for 95 %) and ``condsd`` the
    conditional SD from ``fit.ranef(condvar=True)``: lme4's
    ``dotplot(ranef(m, condVar = TRUE))``.  As in lme4, the panels of one
    factor share the vertical axis, with the levels sorted by the first
    term's mode (``sort=False`` keeps the factor's level order).

    Returns
    -------
    Figure
        One row of panels per factor; each panel's ``errorbar`` line holds
        the sorted modes (x) against positions 0..J-1 (y), its bars the intervals.
    """
    check_arguments(locals())
    if not 0 < level < 1:
        raise MixedModelsError(f"level must be between 0 and 1, got {level}")
    z = float(stats.norm.ppf(0.5 + level / 2))
    ranef = fit.ranef(condvar=True)
    chosen = _chosen_groups(fit, groups)
    ncols = max(ranef[g]["condval"].shape[1] for g in chosen)
    heights = [min(max(ranef[g].shape[0], 4), 60) for g in chosen]
    figsize = figsize or (max(5.0, 3.2 * ncols + 1.0), 0.16 * sum(heights) + 1.2 * len(chosen) + 0.6)
    fig, axes = pyplot().subplots(
        len(chosen), ncols, squeeze=False, figsize=figsize, layout="constrained", gridspec_kw={"height_ratios": heights}
    )
    for row, group in zip(axes, chosen):
        _caterpillar_row(row, group, ranef[group], z, sort)
    fig.suptitle(f"Conditional modes with {level:.0%} prediction intervals")
    return fig


def _caterpillar_row(row, group: str, frame, z: float, sort: bool) -> None:
    modes, sds = frame["condval"], frame["condsd"]
    order = np.argsort(modes.iloc[:, 0].to_numpy(), kind="stable") if sort else np.arange(len(modes))
    labels = [str(v) for v in modes.index.to_numpy()[order]]
    positions = np.arange(len(order))
    for k, ax in enumerate(row):
        if k >= modes.shape[1]:
            ax.remove()
            continue
        values, sd = modes.iloc[order, k].to_numpy(), sds.iloc[order, k].to_numpy()
        ax.errorbar(
            values,
            positions,
            xerr=z * sd,
            fmt="o",
            markersize=3,
            color=POOLING_STYLE["no"]["color"],
            ecolor="#8FB8D8",
            elinewidth=1.2,
            capsize=0,
            gid="modes",
        )
        ax.axvline(0.0, color="#9E9E9E", linewidth=0.8, linestyle="--")
        ax.set_title(f"{group}: {modes.columns[k]}", fontsize=10)
        ax.set_xlabel("conditional mode")
        ax.set_ylim(-0.8, len(order) - 0.2)
        if len(order) <= _MAX_TICK_LABELS:
            ax.set_yticks(positions, labels if k == 0 else [""] * len(labels), fontsize=7)
        else:
            ax.set_yticks([])
        if k == 0:
            ax.set_ylabel(group)


@argument_kinds(ellipse_level=Real(0.0, 1.0, low_open=True, high_open=True, allow_none=True))
def ranef_scatter(
    fit: MixedFit,
    *,
    group: str | None = None,
    terms: Sequence[str] | None = None,
    ellipse_level: float | None = 0.95,
    label_levels: bool | None = None,
    ax: "Axes | None" = None,
    figsize: tuple[float, float] = (6.0, 5.0),
) -> "Figure":
    """One term's conditional modes against another's (e.g. slopes against intercepts).

    Parameters
    ----------
    fit : LmerResults
    group : str, optional
        Grouping factor (default the first with two or more random-effect columns).
    terms : two str, optional
        Columns for x and y (default the factor's first two).
    ellipse_level : float or None
        Draw the contour of the estimated random-effects distribution ``N(0, Sigma)``
        enclosing this probability (None: no contour).  The modes are shrunk,
        so they scatter less widely than this distribution.
    label_levels : bool, optional
        Name each point (default: up to 30 levels).

    Returns
    -------
    Figure
        The points are the axes' one scatter collection, in the factor's level order.
    """
    check_arguments(locals())
    group, terms = _scatter_terms(fit, group, terms)
    modes = fit.ranef()[group][terms]
    fig, ax = single_axes(ax, figsize)
    values = modes.to_numpy()
    ax.scatter(
        values[:, 0], values[:, 1], s=20, color=POOLING_STYLE["partial"]["color"], zorder=3, label="conditional modes"
    )
    if ellipse_level is not None:
        cov = group_covariance(fit, group).loc[terms, terms].to_numpy()
        pts = ellipse(np.zeros(2), cov, ellipse_level)
        ax.plot(
            pts[:, 0],
            pts[:, 1],
            color="#9E9E9E",
            linewidth=0.8,
            gid="contour",
            label=f"{ellipse_level:.0%} contour of the estimated distribution",
        )
    ax.axhline(0.0, color="#BDBDBD", linewidth=0.8)
    ax.axvline(0.0, color="#BDBDBD", linewidth=0.8)
    ax.set_xlabel(f"{terms[0]} (conditional mode)")
    ax.set_ylabel(f"{terms[1]} (conditional mode)")
    ax.set_title(f"Random effects of {group}")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, frameon=False)
    if label_levels if label_levels is not None else len(modes) <= 30:  # placed clear of each other and the points
        label_points(ax, values, [str(name) for name in modes.index])
    return fig


def _scatter_terms(fit: MixedFit, group: str | None, terms) -> tuple[str, list[str]]:
    ranef = fit.ranef()
    if group is None:
        group = next((g for g, f in ranef.items() if f.shape[1] >= 2), None)
        if group is None:
            raise MixedModelsError("no grouping factor has two random-effect columns; a scatter needs two")
    elif group not in ranef:
        raise MixedModelsError(f"grouping factor {group!r} is not in the model; choose from {list(ranef)}")
    columns = list(ranef[group].columns)
    terms = columns[:2] if terms is None else list(terms)
    if len(terms) != 2 or any(t not in columns for t in terms):
        raise MixedModelsError(f"terms must be two of {group!r}'s random-effect columns {columns}; got {terms}")
    return group, terms

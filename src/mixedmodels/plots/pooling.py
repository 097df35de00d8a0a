"""Pictures of pooling: three fitted lines per group, and shrinkage arrows.

Both take the :class:`~mixedmodels.pooling.results.PoolingComparison` made by
``mm.compare_pooling`` (also reachable as ``cmp.plot()`` and
``cmp.plot_shrinkage()``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..errors import MixedModelsError
from ..pooling.layout import APPROACHES, Comparison, choose_x, select_levels
from ._common import DATA_COLOR, POOLING_STYLE, ellipse, figure_legend, grid_shape, pyplot, single_axes
from ._labels import label_column, label_points
from .._validate import Duck, Numbers, Real, Text, argument_kinds, check_arguments

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["pooling_lines", "shrinkage"]

_MAX_PANELS = 64
_MAX_LABELS = 30


def _response_label(cmp: Comparison) -> str:
    inputs = cmp.partial_fit.model.inputs
    name = str(inputs.formula.response)
    if cmp.scale is not None:  # a GLMM's data and lines are drawn on the response scale
        return f"proportion: {name}" if cmp.partial_fit.family.name == "binomial" else name
    return f"{name} - offset" if inputs.offset is not None else name


def _estimate_label(cmp: Comparison, term: str, what: str = "") -> str:
    """A coefficient's axis label, with the link scale for a GLMM: "(Intercept) estimate (logit scale)"."""
    label = f"{term} {what}".strip()
    return label if cmp.scale is None else f"{label} ({cmp.scale} scale)"


def _observed(cmp: Comparison, x: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    layout = cmp.layout
    xs = cmp.partial_fit.model.inputs.frame[x].to_numpy(dtype=float)
    return xs, layout.y, layout.refs


@argument_kinds(
    x=Text(allow_none=True), cmp=Duck("layout", "partial_fit", what="a pooling comparison (from mm.compare_pooling)")
)
def pooling_lines(
    cmp: Comparison,
    *,
    x: str | None = None,
    groups: Sequence[str] | None = None,
    ncols: int | None = None,
    npoints: int = 50,
    figsize: tuple[float, float] | None = None,
) -> "Figure":
    """One panel per group: the data and the complete, no and partial pooling lines.

    Parameters
    ----------
    cmp : PoolingComparison
        From :func:`mixedmodels.compare_pooling`.
    x : str, optional
        Predictor on the horizontal axis (default: the random slope's variable).
        A model without a numeric predictor gets one panel with the groups
        side by side and the three estimates of each.
    groups : sequence of str, optional
        Levels to draw (default all; required above 64 levels).
    ncols : int, optional
        Panels per row (default about twice as many columns as rows).
    npoints : int
        Points per fitted line (they are curves for e.g. ``I(Days**2)``).

    Returns
    -------
    Figure
        Panel ``k`` holds the data as a scatter and up to three lines labelled
        "complete pooling", "no pooling", "partial pooling" (gid ``complete``,
        ``no``, ``partial``); a level whose separate fit cannot estimate the
        line has no no-pooling line and says so.
    """
    check_arguments(locals())
    x = choose_x(cmp, x)
    levels = select_levels(cmp, groups)
    if groups is None and len(levels) > _MAX_PANELS:
        raise MixedModelsError(
            f"{cmp.group!r} has {len(levels)} levels, too many panels; pass groups=[...] to choose up to {_MAX_PANELS}"
        )
    if x is None:
        return _pooling_strip(cmp, levels, figsize)
    return _pooling_panels(cmp, x, levels, ncols, npoints, figsize)


def _pooling_panels(cmp, x: str, levels: list[str], ncols, npoints: int, figsize) -> "Figure":
    lines = cmp.lines(x=x, npoints=npoints, groups=levels)
    nrows, ncols = grid_shape(len(levels), ncols)
    figsize = figsize or (max(6.0, 1.75 * ncols + 0.8), 1.75 * nrows + 1.2)
    fig, axes = pyplot().subplots(
        nrows, ncols, sharex=True, sharey=True, squeeze=False, figsize=figsize, layout="constrained"
    )
    xs, ys, refs = _observed(cmp, x)
    flat = axes.ravel()
    for ax, level in zip(flat, levels):
        rows = refs == cmp.levels.index(level)
        ax.scatter(xs[rows], ys[rows], s=10, color=DATA_COLOR, alpha=0.75, label="observed", zorder=3)
        _draw_lines(ax, lines[lines["group"] == level], x)
        ax.set_title(f"{cmp.group} {level}", fontsize=9, pad=3)
        ax.tick_params(labelsize=8)
    _remove_unused(flat, len(levels), ncols)
    if np.all(xs == np.round(xs)):
        from matplotlib.ticker import MaxNLocator

        flat[0].xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    figure_legend(fig, *_legend_proxies(), where="lower", ncol=4 if ncols >= 4 else 2)
    for k in range(max(0, len(levels) - ncols), len(levels)):  # panels with nothing below them
        flat[k].set_xlabel(x, fontsize=9)
    fig.supylabel(_response_label(cmp))
    fig.suptitle(f"{_response_label(cmp)} by {cmp.group}: complete, no and partial pooling")
    return fig


def _draw_lines(ax: "Axes", lines, x: str) -> None:
    for approach in APPROACHES:
        seg = lines[lines["approach"] == approach]
        if seg["fitted"].isna().all():
            if approach == "no":
                ax.text(
                    0.04,
                    0.94,
                    "no-pooling line\nnot estimable",
                    transform=ax.transAxes,
                    fontsize=7,
                    va="top",
                    color=POOLING_STYLE["no"]["color"],
                )
            continue
        ax.plot(seg[x].to_numpy(), seg["fitted"].to_numpy(), linewidth=1.4, gid=approach, **POOLING_STYLE[approach])


def _legend_proxies() -> tuple[list, list[str]]:
    """Legend entries drawn independently of any one panel (some panels lack a line)."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", linestyle="none", markersize=4, color=DATA_COLOR)]
    handles += [Line2D([], [], linewidth=1.4, **POOLING_STYLE[a]) for a in APPROACHES]
    return handles, ["observed"] + [POOLING_STYLE[a]["label"] for a in APPROACHES]


def _remove_unused(flat, used: int, ncols: int) -> None:
    """Drop empty panels; panels above a dropped one get their own x tick labels."""
    for k in range(used, len(flat)):
        flat[k].remove()
        if k - ncols >= 0:
            flat[k - ncols].tick_params(labelbottom=True)


def _pooling_strip(cmp, levels: list[str], figsize) -> "Figure":
    """Intercept-only models: groups side by side, data and the three estimates."""
    term = cmp.random_terms[0]
    fig, ax = single_axes(None, figsize or (max(5.0, 0.45 * len(levels) + 2.0), 4.5))
    pos = {level: k for k, level in enumerate(levels)}
    if cmp.terms == ("(Intercept)",) and cmp.scale is None:
        layout = cmp.layout
        keep = np.isin(np.asarray(cmp.levels)[layout.refs], levels)
        where = np.array([pos[cmp.levels[r]] for r in layout.refs[keep]], dtype=float)
        ax.scatter(where, layout.y[keep], s=12, color=DATA_COLOR, alpha=0.6, label="observed", zorder=3)
    positions = np.arange(len(levels), dtype=float)
    for approach, marker in zip(APPROACHES, ("", "o", "D")):
        est = cmp.estimates(approach).loc[levels]
        values = est[term].to_numpy() if term in est.columns else np.full(len(levels), np.nan)
        style = dict(POOLING_STYLE[approach])
        if approach == "complete":
            ax.plot([-0.5, len(levels) - 0.5], [values[0]] * 2, gid=approach, **style)
        else:
            ax.plot(
                positions,
                np.where(np.isinf(values), np.nan, values),
                marker=marker,
                linestyle="none",
                markersize=7,
                color=style["color"],
                label=style["label"],
                gid=approach,
                markerfacecolor="none" if approach == "no" else style["color"],
            )
    no = cmp.estimates("no").loc[levels, term].to_numpy()
    _mark_infinite(ax, positions, no, cmp.estimates("partial").loc[levels, term].to_numpy(), arrows=False)
    ax.set_xticks(positions, levels)
    ax.set_xlim(-0.6, len(levels) - 0.4)
    ax.set_xlabel(cmp.group)
    data_shown = cmp.terms == ("(Intercept)",) and cmp.scale is None
    ax.set_ylabel(_response_label(cmp) if data_shown else _estimate_label(cmp, term, "estimate"))
    _title(ax, f"{cmp.group}: complete, no and partial pooling", cmp)
    ax.legend(fontsize=8)
    return fig


# --------------------------------------------------------------------------
# shrinkage


@argument_kinds(
    cmp=Duck("layout", "partial_fit", what="a pooling comparison (from mm.compare_pooling)"),
    contours=Numbers(Real(0.0, 1.0, low_open=True, high_open=True), what="a list of probabilities in (0, 1)"),
)
def shrinkage(
    cmp: Comparison,
    *,
    terms: Sequence[str] | None = None,
    contours: Sequence[float] = (0.5, 0.8, 0.95),
    label_groups: bool | None = None,
    ax: "Axes | None" = None,
    figsize: tuple[float, float] = (7.0, 6.0),
) -> "Figure":
    """Arrows from each group's no-pooling to its partial-pooling estimate.

    With two pooled terms (e.g. intercept and slope) the arrows are drawn in
    their plane over the contours of the estimated bivariate normal of the
    random effects, ``N(beta, Sigma_b)`` ("topographic map"); the population
    (fixed-effect) estimate and the complete-pooling estimate are marked.
    With one pooled term (a random intercept) each arrow runs from the
    no-pooling column to the partial-pooling column, over a line at the
    population estimate.

    Parameters
    ----------
    cmp : PoolingComparison
    terms : sequence of one or two str, optional
        Pooled terms to draw (default the first two random-term columns).
    contours : sequence of float
        Probabilities enclosed by the contour ellipses.
    label_groups : bool, optional
        Write the level names by the no-pooling points (default: up to 30 levels).
    ax : Axes, optional
        Draw into this axes instead of a new figure.

    Returns
    -------
    Figure
        The arrows are annotations (``ax.texts``, each with an ``arrow_patch``,
        a FancyArrowPatch) from ``xyann`` (no pooling) to ``xy`` (partial
        pooling); levels without a no-pooling estimate get no arrow.  Group
        labels are annotations with gid ``"group-label"``, placed so they do
        not overlap (a label moved away from its point gets a thin leader line).
    """
    check_arguments(locals())
    terms = _shrinkage_terms(cmp, terms)
    label_groups = len(cmp.levels) <= _MAX_LABELS if label_groups is None else label_groups
    fig, ax = single_axes(ax, figsize)
    if len(terms) == 1:
        _shrinkage_1d(cmp, terms[0], ax, label_groups)
    else:
        _shrinkage_2d(cmp, terms, contours, ax, label_groups)
    return fig


def _shrinkage_terms(cmp: Comparison, terms) -> list[str]:
    if terms is None:
        return list(cmp.random_terms[:2])
    terms = [terms] if isinstance(terms, str) else list(terms)
    bad = [t for t in terms if t not in cmp.random_terms]
    if bad or not 1 <= len(terms) <= 2:
        raise MixedModelsError(f"terms must be one or two of the pooled terms {list(cmp.random_terms)}; got {terms}")
    return terms


def _arrow(ax: "Axes", start, end, alpha: float = 0.8) -> None:
    color = POOLING_STYLE["partial"]["color"]
    ax.annotate(
        "",
        xy=tuple(end),
        xytext=tuple(start),
        zorder=4,
        arrowprops={
            "arrowstyle": "-|>",
            "color": color,
            "alpha": alpha,
            "linewidth": 1.0,
            "shrinkA": 0,
            "shrinkB": 2,
            "mutation_scale": 9,
        },
    )


def _arrow_alpha(narrows: int) -> float:
    """Opaque enough to follow a few arrows, faint enough to see density among thousands."""
    return float(np.clip(40.0 / max(narrows, 1), 0.08, 0.8))


def _shrinkage_2d(cmp, terms: list[str], contours, ax: "Axes", label_groups: bool) -> None:
    no = cmp.estimates("no")[terms].to_numpy()
    partial = cmp.estimates("partial")[terms].to_numpy()
    center = cmp.population[terms].to_numpy()
    cov = cmp.covariance.loc[terms, terms].to_numpy()
    for k, p in enumerate(sorted(contours)):
        pts = ellipse(center, cov, p)
        label = "contours of the estimated\nrandom-effects distribution" if k == 0 else None
        ax.plot(pts[:, 0], pts[:, 1], color="#9E9E9E", linewidth=0.8, gid="contour", label=label, zorder=1)
        top = pts[np.argmax(pts[:, 1])]
        ax.text(top[0], top[1], f"{p:.0%}", fontsize=7, color="#757575", ha="center", va="bottom")
    ok = np.all(np.isfinite(no), axis=1)
    ax.scatter(
        no[ok, 0],
        no[ok, 1],
        s=28,
        facecolors="none",
        edgecolors=POOLING_STYLE["no"]["color"],
        label="no pooling",
        zorder=3,
    )
    ax.scatter(
        partial[:, 0],
        partial[:, 1],
        s=22,
        color=POOLING_STYLE["partial"]["color"],
        label="partial pooling (mixed model)",
        zorder=3,
    )
    for j in np.flatnonzero(ok):
        _arrow(ax, no[j], partial[j], _arrow_alpha(int(ok.sum())))
    _mark_centres(cmp, terms, center, ax)
    ax.set_xlabel(_estimate_label(cmp, terms[0]))
    ax.set_ylabel(_estimate_label(cmp, terms[1]))
    _title(ax, f"Shrinkage of the {cmp.group} estimates: no pooling \u2192 partial pooling", cmp)
    # below the axes (clear of the tick labels and axis title), never over the contours
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 0.0), borderaxespad=4.6, ncol=3, frameon=False)
    if label_groups:
        where = np.where(ok[:, None], no, partial)
        label_points(
            ax,
            where,
            list(cmp.levels),
            obstacles=np.vstack([partial, center[None, :]]),
            segments=np.stack([no[ok], partial[ok]], axis=1),
        )


def _title(ax: "Axes", title: str, cmp: Comparison) -> None:
    """The title, and under it what no pooling estimated per level and what it held fixed."""
    ax.set_title(title, pad=18)
    ax.text(
        0.5,
        1.012,
        cmp.no_pooling_note,
        transform=ax.transAxes,
        ha="center",
        va="bottom",
        fontsize=7.5,
        color="#424242",
        gid="no-pooling-note",
        wrap=True,
    )


def _mark_centres(cmp, terms: list[str], center: np.ndarray, ax: "Axes") -> None:
    ax.plot(
        *center,
        marker="X",
        markersize=9,
        color="black",
        linestyle="none",
        gid="population",
        label="population (fixed effects)",
        zorder=6,
    )
    complete = cmp.complete_fit.coef
    if all(t in complete.index for t in terms):
        ax.plot(
            *complete[terms].to_numpy(),
            marker="D",
            markersize=13,
            markerfacecolor="none",
            markeredgewidth=1.5,
            color=POOLING_STYLE["complete"]["color"],
            linestyle="none",
            gid="complete",
            label="complete pooling",
            zorder=5,
        )


def _shrinkage_1d(cmp, term: str, ax: "Axes", label_groups: bool) -> None:
    no = cmp.estimates("no")[term].to_numpy()
    partial = cmp.estimates("partial")[term].to_numpy()
    ok = np.isfinite(no)
    ax.scatter(
        np.zeros(ok.sum()),
        no[ok],
        s=28,
        facecolors="none",
        edgecolors=POOLING_STYLE["no"]["color"],
        label="no pooling",
        zorder=3,
    )
    ax.scatter(
        np.ones(partial.size),
        partial,
        s=22,
        color=POOLING_STYLE["partial"]["color"],
        label="partial pooling (mixed model)",
        zorder=3,
    )
    alpha = _arrow_alpha(int(np.count_nonzero(~np.isnan(no))))
    for j in np.flatnonzero(ok):
        _arrow(ax, (0.0, no[j]), (1.0, partial[j]), alpha)
    edges = _mark_infinite(ax, np.zeros(len(no)), no, partial, arrows=True, alpha=alpha)
    population = float(cmp.population[term])
    ax.axhline(
        population, color="black", linestyle=":", linewidth=1, gid="population", label="population (fixed effect)"
    )
    ax.set_xticks([0, 1], ["no pooling", "partial pooling"])
    ax.set_xlim(-0.45, 1.25)
    ax.set_ylabel(_estimate_label(cmp, term))
    _title(ax, f"Shrinkage of the {cmp.group} estimates toward the population", cmp)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2, frameon=False)
    if label_groups:  # stacked left of the no-pooling column, one line apart
        shown = np.flatnonzero(ok | np.isinf(no))
        label_column(ax, 0.0, np.where(np.isinf(no), edges, no)[shown], [cmp.levels[j] for j in shown])


def _mark_infinite(
    ax: "Axes", where: np.ndarray, values: np.ndarray, partial: np.ndarray, *, arrows: bool, alpha: float = 0.8
) -> np.ndarray:
    """No-pooling estimates of -inf/+inf (separation in a GLMM): triangles just past the other points.

    ``where`` is each level's position along the other axis; with ``arrows`` a dashed arrow runs
    from the triangle (x = 0) to the level's partial-pooling estimate (x = 1).  Returns the
    values drawn for the infinite estimates (NaN elsewhere).
    """
    infinite = np.isinf(values)
    edges = np.full(len(values), np.nan)
    if not infinite.any():
        return edges
    finite = [v[np.isfinite(v)] for v in (values, partial)]
    low, high = (float(f(np.concatenate(finite))) for f in (np.min, np.max))
    span = max(high - low, 1e-9)
    edges[infinite] = np.where(values[infinite] < 0, low - 0.08 * span, high + 0.08 * span)
    color = POOLING_STYLE["no"]["color"]
    for sign, marker in ((-1, "v"), (1, "^")):
        rows = infinite & (np.sign(values) == sign)
        if rows.any():
            label = f"no pooling: {'-' if sign < 0 else '+'}\u221e (separation)"
            ax.scatter(
                where[rows],
                edges[rows],
                marker=marker,
                s=40,
                facecolors="none",
                edgecolors=color,
                label=label,
                zorder=3,
                gid="separated",
            )
    if arrows:
        for j in np.flatnonzero(infinite):
            ax.annotate(
                "",
                xy=(1.0, partial[j]),
                xytext=(0.0, edges[j]),
                zorder=4,
                gid="separated-arrow",
                arrowprops={
                    "arrowstyle": "-|>",
                    "color": POOLING_STYLE["partial"]["color"],
                    "alpha": alpha,
                    "linewidth": 1.0,
                    "linestyle": "--",
                    "shrinkA": 0,
                    "shrinkB": 2,
                    "mutation_scale": 9,
                },
            )
    return edges

"""Helpers shared by the plots: lazy matplotlib, panel grids, QQ points, ellipses."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# colours of the three approaches (colour-blind safe: Okabe-Ito)
POOLING_STYLE = {
    "complete": {"color": "#777777", "linestyle": "--", "label": "complete pooling"},
    "no": {"color": "#0072B2", "linestyle": "-", "label": "no pooling"},
    "partial": {"color": "#D55E00", "linestyle": "-", "label": "partial pooling"},
}
DATA_COLOR = "#333333"


def pyplot():
    """matplotlib.pyplot, or an ImportError saying how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("plotting needs matplotlib, an optional extra: pip install 'mixedmodels[plot]'") from exc
    return plt


def single_axes(ax: "Axes | None", figsize: tuple[float, float]) -> tuple["Figure", "Axes"]:
    """The given axes and its figure, or a new one-panel figure."""
    if ax is not None:
        return ax.figure, ax
    fig, ax = pyplot().subplots(figsize=figsize, layout="constrained")
    return fig, ax


def grid_shape(npanels: int, ncols: int | None = None) -> tuple[int, int]:
    """Rows and columns for ``npanels`` panels, about twice as wide as tall."""
    if ncols is None:
        ncols = min(npanels, max(1, math.ceil(math.sqrt(2 * npanels))))
    ncols = max(1, min(ncols, npanels))
    return math.ceil(npanels / ncols), ncols


def figure_legend(
    fig: "Figure", handles: list, labels: list[str], where: str = "upper", ncol: int | None = None
) -> Any:
    """A figure-level legend outside the panels, in one row unless ``ncol`` says otherwise."""
    ncol = ncol or len(labels)
    try:
        return fig.legend(handles, labels, loc=f"outside {where} center", ncol=ncol, frameon=False)
    except (ValueError, TypeError):  # matplotlib < 3.7 has no "outside" locations
        y = 1.0 if where == "upper" else 0.0
        return fig.legend(handles, labels, loc=f"{where} center", bbox_to_anchor=(0.5, y), ncol=ncol, frameon=False)


def ppoints(n: int) -> np.ndarray:
    """R's ``ppoints(n)``: (i - a) / (n + 1 - 2a), a = 3/8 for n <= 10 else 1/2."""
    a = 3.0 / 8.0 if n <= 10 else 0.5
    return (np.arange(1, n + 1) - a) / (n + 1 - 2 * a)


def qq_points(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Theoretical normal quantiles and the sorted sample (R's ``qqnorm``)."""
    sample = np.sort(np.asarray(values, dtype=float)[np.isfinite(values)])
    return stats.norm.ppf(ppoints(sample.size)), sample


def qq_line(sample_sorted: np.ndarray, theoretical: np.ndarray) -> tuple[float, float]:
    """Intercept and slope of R's ``qqline``: the line through the first and third quartiles."""
    q = np.quantile(sample_sorted, [0.25, 0.75])
    t = stats.norm.ppf([0.25, 0.75])
    slope = (q[1] - q[0]) / (t[1] - t[0])
    return float(q[0] - slope * t[0]), float(slope)


def draw_qq(ax: "Axes", values: np.ndarray, title: str) -> None:
    theoretical, sample = qq_points(values)
    ax.plot(theoretical, sample, "o", color=DATA_COLOR, markersize=3, alpha=0.7, gid="qq-points")
    if sample.size >= 2:
        intercept, slope = qq_line(sample, theoretical)
        ends = np.array([theoretical.min(), theoretical.max()])
        ax.plot(ends, intercept + slope * ends, color="#D55E00", linewidth=1, gid="qq-line")
    ax.set_title(title)
    ax.set_xlabel("theoretical normal quantiles")
    ax.set_ylabel("sample quantiles")


def ellipse(center: np.ndarray, cov: np.ndarray, probability: float, npoints: int = 200) -> np.ndarray:
    """Points (npoints x 2) on the contour of N(center, cov) enclosing ``probability``.

    The contour is ``(x - c)' cov^-1 (x - c) = chi2_2^-1(p)``, i.e. ``c + r L (cos t, sin t)``
    with ``cov = L L'`` and ``r^2 = -2 log(1 - p)``.
    """
    radius = np.sqrt(stats.chi2.ppf(probability, df=2))
    vals, vecs = np.linalg.eigh(np.asarray(cov, dtype=float))
    root = vecs * np.sqrt(np.clip(vals, 0.0, None))
    t = np.linspace(0.0, 2.0 * np.pi, npoints)
    circle = np.vstack([np.cos(t), np.sin(t)])
    return (np.asarray(center, dtype=float)[:, None] + radius * root @ circle).T

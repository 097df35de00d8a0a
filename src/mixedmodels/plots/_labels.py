"""Placing point labels so they neither overlap each other nor sit on the marks they explain.

Two placements, both deterministic and without extra dependencies:

* :func:`spread_1d` -- labels along one axis (the 1-D shrinkage plot's column of
  no-pooling points): the positions closest to the points, in the least-squares
  sense, that keep neighbouring labels at least one line apart;
* :func:`label_points` -- labels around points in a plane: each label tries
  positions around its point, nearest first, and takes the first (else the
  least bad) that overlaps no placed label, marker, arrow or the axes' edge.

Both work in display units (points), so they run after a layout pass
(``Figure.draw_without_rendering``); a figure resized later keeps its offsets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["spread_1d", "label_points", "LABEL_GID"]

LABEL_GID = "group-label"
"""gid of every label annotation (their leader lines are ``arrow_patch``es, not shrinkage arrows)."""

_LEADER = {"arrowstyle": "-", "color": "#9E9E9E", "linewidth": 0.5, "shrinkA": 0, "shrinkB": 2}
_BACKING = {"boxstyle": "square,pad=0.08", "facecolor": "white", "edgecolor": "none", "alpha": 0.75}


def spread_1d(positions: Sequence[float], gap: float) -> np.ndarray:
    """Positions nearest to ``positions`` (least squares) with neighbours at least ``gap`` apart.

    With the labels sorted, ``y'_i >= y'_{i-1} + gap`` for all ``i``.  Writing
    ``z_i = y'_i - i * gap`` turns this into ``z`` non-decreasing, so the answer is the
    isotonic regression of ``y_i - i * gap`` (pool adjacent violators), shifted back.
    The input order is kept in the output.
    """
    y = np.asarray(positions, dtype=float)
    order = np.argsort(y, kind="stable")
    target = y[order] - gap * np.arange(y.size)
    fitted = _isotonic(target) + gap * np.arange(y.size)
    out = np.empty_like(y)
    out[order] = fitted
    return out


def _isotonic(values: np.ndarray) -> np.ndarray:
    """Pool adjacent violators: the non-decreasing sequence nearest ``values`` in least squares."""
    means: list[float] = []
    sizes: list[int] = []
    for v in values:
        means.append(float(v))
        sizes.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            n = sizes[-2] + sizes[-1]
            means[-2] = (means[-2] * sizes[-2] + means[-1] * sizes[-1]) / n
            sizes[-2] = n
            del means[-1], sizes[-1]
    return np.repeat(means, sizes)


def points_per_unit(ax: "Axes") -> tuple[float, float]:
    """Printer's points per data unit along x and y, after a layout pass of the figure."""
    ax.figure.draw_without_rendering()
    box = ax.get_window_extent()
    to_points = 72.0 / ax.figure.dpi
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    return box.width * to_points / (x1 - x0), box.height * to_points / (y1 - y0)


def label_column(
    ax: "Axes", x: float, y: np.ndarray, texts: Sequence[str], *, fontsize: float = 7.0, dx: float = -6.0
) -> None:
    """Labels left (``dx < 0``) or right of points stacked at ``x``, spread so none overlap.

    A label moved off its point's height gets a thin leader line to the point.
    """
    y = np.asarray(y, dtype=float)
    if y.size == 0:
        return
    _, ppu = points_per_unit(ax)
    wanted = spread_1d(y * ppu, gap=_line_height(ax, texts, fontsize) + 0.5)
    for yi, text, offset in zip(y, texts, wanted - y * ppu):
        ax.annotate(
            text,
            xy=(x, yi),
            xytext=(dx, offset),
            textcoords="offset points",
            fontsize=fontsize,
            ha="right" if dx < 0 else "left",
            va="center",
            color="#424242",
            gid=LABEL_GID,
            bbox=_BACKING,
            arrowprops=_LEADER if abs(offset) > 0.6 * fontsize else None,
        )


def _line_height(ax: "Axes", texts: Sequence[str], fontsize: float) -> float:
    """Height in points of a label's box as drawn (ascent + descent of the font)."""
    probe = ax.text(0, 0, texts[0] or "0", fontsize=fontsize)
    height = probe.get_window_extent(ax.figure.canvas.get_renderer()).height * 72.0 / ax.figure.dpi
    probe.remove()
    return height


# --------------------------------------------------------------------------
# labels in a plane

# candidate directions, nearest and most natural (upper right) first; each tried at growing distances
_DIRECTIONS = [(1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1)]
_RINGS = (4.0, 9.0, 15.0, 22.0)


def label_points(
    ax: "Axes",
    xy: np.ndarray,
    texts: Sequence[str],
    *,
    obstacles: np.ndarray | None = None,
    segments: np.ndarray | None = None,
    fontsize: float = 7.0,
) -> None:
    """Label points in a plane so labels overlap neither each other, nor markers, nor arrows.

    Parameters
    ----------
    xy : (n, 2) array
        The labelled points (data units).
    obstacles : (m, 2) array, optional
        Other markers to keep clear of (data units); the labelled points are obstacles too.
    segments : (k, 2, 2) array, optional
        Line segments (arrows) to keep clear of, as start and end points (data units).
    """
    xy = np.asarray(xy, dtype=float)
    if xy.size == 0:
        return
    ax.figure.draw_without_rendering()
    to_px = ax.transData.transform
    px_per_pt = ax.figure.dpi / 72.0
    anchors = to_px(xy)
    marks = anchors if obstacles is None else np.vstack([anchors, to_px(np.asarray(obstacles, float))])
    segs = (
        np.empty((0, 2, 2)) if segments is None else to_px(np.asarray(segments, float).reshape(-1, 2)).reshape(-1, 2, 2)
    )
    frame = ax.get_window_extent()
    renderer = ax.figure.canvas.get_renderer()
    placed: list[np.ndarray] = [_text_box(t, ax) for t in ax.texts if t.get_text()]  # e.g. contour labels
    for k in _crowded_first(anchors):
        probe = ax.text(0, 0, texts[k], fontsize=fontsize)
        width, height = (lambda b: (b.width, b.height))(probe.get_window_extent(renderer))
        probe.remove()
        best = None
        for ring in _RINGS:
            for ux, uy in _DIRECTIONS:
                offset = np.array([ux, uy]) * ring * px_per_pt
                box = _box_at(anchors[k] + offset, ux, uy, width, height)
                cost = _cost(box, k, placed, marks, segs, frame, 3.0 * px_per_pt)
                if best is None or cost < best[0]:
                    best = (cost, offset, ux, uy, box)
            if best[0] == 0.0:
                break
        _, offset, ux, uy, box = best
        placed.append(box)
        far = np.hypot(*offset) > 10.0 * px_per_pt
        ax.annotate(
            texts[k],
            xy=tuple(xy[k]),
            xytext=tuple(offset / px_per_pt),
            textcoords="offset points",
            fontsize=fontsize,
            color="#424242",
            gid=LABEL_GID,
            bbox=_BACKING,
            ha={1: "left", -1: "right", 0: "center"}[ux],
            va={1: "bottom", -1: "top", 0: "center"}[uy],
            arrowprops=_LEADER if far else None,
        )


def _crowded_first(anchors: np.ndarray) -> np.ndarray:
    """Order labelling so the points with the closest neighbours choose first."""
    if len(anchors) < 2:
        return np.arange(len(anchors))
    d = np.hypot(*(anchors[:, None, :] - anchors[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(d, np.inf)
    return np.argsort(d.min(axis=1), kind="stable")


def _text_box(text, ax: "Axes") -> np.ndarray:
    """The text's own box (an annotation's window extent would include its arrow)."""
    from matplotlib.text import Text

    b = Text.get_window_extent(text, ax.figure.canvas.get_renderer())
    return np.array([b.x0, b.y0, b.x1, b.y1])


def _box_at(corner: np.ndarray, ux: int, uy: int, width: float, height: float) -> np.ndarray:
    """Box [x0, y0, x1, y1] of a text anchored at ``corner``, growing away from its point."""
    x0 = corner[0] if ux > 0 else corner[0] - width if ux < 0 else corner[0] - width / 2
    y0 = corner[1] if uy > 0 else corner[1] - height if uy < 0 else corner[1] - height / 2
    return np.array([x0, y0, x0 + width, y0 + height])


def _cost(box, k: int, placed, marks, segs, frame, pad: float) -> float:
    """Overlap with placed labels (worst), with markers and arrows, and lying outside the axes."""
    x0, y0, x1, y1 = box
    cost = 0.0
    for other in placed:
        w = min(x1, other[2]) - max(x0, other[0])
        h = min(y1, other[3]) - max(y0, other[1])
        if w > 0 and h > 0:
            cost += 10.0 + w * h
    inside = (marks[:, 0] > x0 - pad) & (marks[:, 0] < x1 + pad) & (marks[:, 1] > y0 - pad) & (marks[:, 1] < y1 + pad)
    inside[k] = False  # its own point sits at the corner
    cost += 6.0 * np.count_nonzero(inside)
    cost += 3.0 * sum(_segment_hits_box(s, box) for s in segs)
    out = max(0.0, frame.x0 - x0) + max(0.0, x1 - frame.x1) + max(0.0, frame.y0 - y0) + max(0.0, y1 - frame.y1)
    return cost + 5.0 * out


def _segment_hits_box(seg: np.ndarray, box: np.ndarray) -> bool:
    """Whether a line segment crosses an axis-aligned box (Liang-Barsky clipping)."""
    (px, py), (qx, qy) = seg
    dx, dy = qx - px, qy - py
    t0, t1 = 0.0, 1.0
    for p, q in ((-dx, px - box[0]), (dx, box[2] - px), (-dy, py - box[1]), (dy, box[3] - py)):
        if p == 0:
            if q < 0:
                return False
            continue
        t = q / p
        if p < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 > t1:
            return False
    return True

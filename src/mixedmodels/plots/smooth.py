"""Scatterplot smoothers for the per-group panels: R's ``lowess`` and a least-squares line.

:func:`lowess` is Cleveland's LOWESS (robust locally weighted regression, Cleveland 1979,
"Robust locally weighted regression and smoothing scatterplots", JASA 74, and his 1981 program
note in The American Statistician 35), with the conventions of R's ``lowess()``:

* the points are sorted by x; each fitted value is a straight line fitted by weighted least
  squares to the ``q = max(2, min(n, floor(f n)))`` nearest neighbours of ``x_i`` (with ties
  at the edge of the window included), tricube weights ``(1 - (d / h)^3)^3`` where ``h`` is the
  distance to the farthest of them (weights 1 within ``0.001 h``, 0 beyond ``0.999 h``); the
  line is centred at the weighted mean of x and reduced to the weighted mean when the x
  values are too close together (weighted SD of x below 0.001 times the range of x);
* fits are computed only at points more than ``delta`` beyond the last one fitted (default
  1 % of the range of x) and linearly interpolated in between; tied x values share one fit;
* ``iter`` robustness iterations then refit with each weight multiplied by the bisquare
  ``(1 - (r / 6m)^2)^2`` of the residual ``r``, where ``m`` is the median absolute residual
  (1 within ``0.001 * 6m``, 0 beyond ``0.999 * 6m``); they stop early when ``6m`` is below
  1e-7 times the mean absolute residual.

Tested against R's ``lowess()`` (tests/reference/classroom.json).
"""

from __future__ import annotations

import numpy as np

from .._validate import Anything, Integer, Real, argument_kinds, check_arguments
from ..errors import DataError

_ARRAY = Anything("checked below: finite numbers, as many of each (DataError naming what is wrong)")

__all__ = ["lowess", "least_squares_line"]


def _local_fit(
    x: np.ndarray, y: np.ndarray, i: int, left: int, right: int, robustness: np.ndarray | None, span: float
) -> float | None:
    """The fitted value at ``x[i]`` from the window ``left..right`` (ties beyond it included); None if no weight."""
    xs = x[i]
    h = max(xs - x[left], x[right] - xs)
    # the window's points, and those tied (within 0.999 h) to its right
    stop = right + 1
    while stop < len(x) and abs(x[stop] - xs) <= 0.999 * h:
        stop += 1
    d = np.abs(x[left:stop] - xs)
    w = np.where(d <= 0.001 * h, 1.0, (1.0 - (d / h) ** 3) ** 3) if h > 0 else np.ones(len(d))
    w = np.where(d <= 0.999 * h, w, 0.0) if h > 0 else w
    if robustness is not None:
        w = w * robustness[left:stop]
    total = w.sum()
    if total <= 0.0:
        return None
    w = w / total
    xw = x[left:stop]
    if h > 0.0:
        centre = float(w @ xw)
        spread = float(w @ (xw - centre) ** 2)
        if np.sqrt(spread) > 0.001 * span:
            w = w * ((xs - centre) / spread * (xw - centre) + 1.0)
    return float(w @ y[left:stop])


def _smooth_pass(x: np.ndarray, y: np.ndarray, q: int, delta: float, robustness: np.ndarray | None) -> np.ndarray:
    """One pass over the sorted points: local fits at the points ``delta`` apart, interpolation between."""
    n = len(x)
    fitted = np.empty(n)
    span = x[-1] - x[0]
    left, right, last, i = 0, q - 1, -1, 0
    while True:
        while right < n - 1 and x[i] - x[left] > x[right + 1] - x[i]:  # slide the window while it narrows
            left, right = left + 1, right + 1
        value = _local_fit(x, y, i, left, right, robustness, span)
        fitted[i] = y[i] if value is None else value
        if last < i - 1:  # interpolate the points skipped since the last fit
            t = (x[last + 1 : i] - x[last]) / (x[i] - x[last])
            fitted[last + 1 : i] = t * fitted[i] + (1.0 - t) * fitted[last]
        last = i
        cut = x[last] + delta
        j = last + 1
        while j < n and x[j] <= cut:
            if x[j] == x[last]:
                fitted[j] = fitted[last]
                last = j
            j += 1
        i = max(last + 1, j - 1)
        if last >= n - 1:
            return fitted


def _bisquare_weights(residuals: np.ndarray) -> np.ndarray | None:
    """Robustness weights from the residuals, or None when they are all (nearly) zero."""
    size = np.abs(residuals)
    six_mad = 6.0 * float(np.median(size))
    if six_mad < 1e-7 * float(np.mean(size)):
        return None
    if six_mad == 0.0:  # every residual is 0: full weight for all
        return np.ones(len(size))
    return np.where(
        size <= 0.001 * six_mad, 1.0, np.where(size <= 0.999 * six_mad, (1.0 - (size / six_mad) ** 2) ** 2, 0.0)
    )


@argument_kinds(
    x=_ARRAY, y=_ARRAY, f=Real(0.0, 1.0, low_open=True), iter=Integer(0, 100), delta=Real(0.0, allow_none=True)
)
def lowess(x, y, f: float = 2.0 / 3.0, iter: int = 3, delta: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """R's ``lowess(x, y, f, iter, delta)``: the sorted x and the smoothed y there.

    Parameters
    ----------
    x, y : array-like
        Finite numbers, as many of each.
    f : float
        The smoother span: the fraction of the points in each local fit (R's default 2/3).
    iter : int
        Robustness iterations (R's default 3; 0 for plain locally weighted regression).
    delta : float, optional
        Points closer than this to the last fitted one are interpolated (default 1 % of the
        range of x, as R).

    Returns
    -------
    (x, fitted) : two arrays sorted by x (ties kept in their original order).
    """
    check_arguments(locals())
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if x.size != y.size:
        raise DataError(f"lowess needs as many y values as x values, got {x.size} and {y.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise DataError("lowess needs finite x and y values; drop the missing ones first")
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    n = x.size
    if n < 2:
        return x, y.copy()
    if delta is None:
        delta = 0.01 * (x[-1] - x[0])
    q = max(2, min(n, int(f * n + 1e-7)))
    robustness = None
    for step in range(int(iter) + 1):
        fitted = _smooth_pass(x, y, q, delta, robustness)
        if step == iter:
            break
        robustness = _bisquare_weights(y - fitted)
        if robustness is None:
            break
    return x, fitted


def least_squares_line(x, y) -> tuple[float, float] | None:
    """Intercept and slope of ``lm(y ~ x)``, or None when x does not vary (a line cannot be fitted)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.size < 2 or np.ptp(x) == 0:
        return None
    slope, intercept = np.polyfit(x, y, 1)
    return float(intercept), float(slope)

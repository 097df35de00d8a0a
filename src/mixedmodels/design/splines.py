"""R's regression splines ``bs()`` and ``ns()`` (package splines) for formulas, with R's bases.

Both are B-spline bases of order ``k = degree + 1`` on the knot sequence
``t = (b_l, ..., b_l, kappa_1, ..., kappa_K, b_r, ..., b_r)`` (each boundary knot ``k`` times):
``B_1(x), ..., B_{K+k}(x)``, evaluated here with :class:`scipy.interpolate.BSpline`.

* ``bs(x, df, knots, degree=3, intercept=False, Boundary_knots=(min x, max x))``: the columns
  ``B_2 ... B_{K+k}`` (``B_1`` too with ``intercept=True``).  ``df`` chooses
  ``K = df - degree - intercept`` interior knots at the quantiles ``j / (K + 1)`` of x (R's
  type 7, NumPy's default).  Beyond the boundary knots each basis function continues its end
  polynomial piece, as R's ``bs`` does (which warns; so does this).
* ``ns(x, df, knots, intercept=False, Boundary_knots=...)``: cubic (``k = 4``) with
  ``K = df - 1 - intercept`` interior knots, constrained to zero second derivative at both
  boundary knots.  With ``C = B''(b_l, b_r)`` (2 x p, first column dropped unless
  ``intercept``) and the complete Householder QR ``C' = Q R``, the basis is ``B Q[:, 2:]``: the
  same reflections as R's ``qr()`` (LINPACK and LAPACK both reflect x onto
  ``-sign(x_1) |x| e_1``), hence R's columns, not only R's column space.  Beyond the boundary
  each function continues linearly (value and slope at the boundary knot).

Both are stateful transforms: the knots found on the fitted data are kept in formulaic's
``ModelSpec`` and reused for new data, so ``predict`` evaluates the same basis (R's
``predvars``).  Columns are named ``1 ... p`` (``ns(x, df = 3)1``), as R names them.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg
from formulaic.materializers.types import FactorValues
from formulaic.utils.stateful_transforms import stateful_transform

from ..errors import FormulaError, MixedModelsWarning

__all__ = ["bs", "ns", "bspline_basis", "natural_spline_basis"]


# ---------------------------------------------------------------------------
# The bases, given the knots


def _knot_sequence(knots: np.ndarray, boundary: np.ndarray, order: int) -> np.ndarray:
    return np.concatenate([np.repeat(boundary[0], order), np.sort(knots), np.repeat(boundary[1], order)])


def _all_bsplines(x: np.ndarray, t: np.ndarray, order: int, nu: int = 0) -> np.ndarray:
    """``(len(x), len(t) - order)``: every B-spline (or its ``nu``-th derivative) at x, end pieces continued."""
    from scipy.interpolate import BSpline  # here: scipy.interpolate (and scipy.optimize) only for bs()/ns()

    nbasis = len(t) - order
    spline = BSpline(t, np.eye(nbasis), order - 1, extrapolate=True)
    return np.atleast_2d(spline(x, nu=nu)).reshape(len(x), nbasis)


def bspline_basis(
    x: np.ndarray, knots: np.ndarray, boundary: np.ndarray, degree: int = 3, intercept: bool = False
) -> np.ndarray:
    """R's ``bs()`` basis at finite ``x`` for the given interior and boundary knots."""
    basis = _all_bsplines(x, _knot_sequence(knots, boundary, degree + 1), degree + 1)
    return basis if intercept else basis[:, 1:]


def natural_spline_basis(x: np.ndarray, knots: np.ndarray, boundary: np.ndarray, intercept: bool = False) -> np.ndarray:
    """R's ``ns()`` basis at finite ``x`` for the given interior and boundary knots."""
    t = _knot_sequence(knots, boundary, 4)
    basis = np.empty((len(x), len(t) - 4))
    below, above = x < boundary[0], x > boundary[1]
    inside = ~(below | above)
    basis[inside] = _all_bsplines(x[inside], t, 4)
    for mask, edge in ((below, boundary[0]), (above, boundary[1])):
        if mask.any():  # linear beyond the boundary: value + (x - b) * slope
            at = np.array([edge])
            basis[mask] = _all_bsplines(at, t, 4) + np.outer(x[mask] - edge, _all_bsplines(at, t, 4, nu=1))
    constraints = _all_bsplines(np.asarray(boundary, dtype=float), t, 4, nu=2)
    if not intercept:
        basis, constraints = basis[:, 1:], constraints[:, 1:]
    q, _ = scipy.linalg.qr(constraints.T)  # complete Q = H1 H2 (Householder, as R's qr())
    return basis @ q[:, 2:]


# ---------------------------------------------------------------------------
# Knots from the data (the training step)


def _boundary(x: np.ndarray, given: Any, where: str) -> np.ndarray:
    if given is None:
        if x.size == 0:
            raise FormulaError(f"{where} has no finite values to place knots")
        return np.array([x.min(), x.max()])
    boundary = np.sort(np.asarray(given, dtype=float).reshape(-1))
    if boundary.size != 2 or not np.isfinite(boundary).all():
        raise FormulaError(f"{where}: Boundary.knots must be two finite numbers, got {given!r}")
    return boundary


def _interior_knots(x: np.ndarray, boundary: np.ndarray, count: int) -> np.ndarray:
    """``count`` knots at the quantiles ``j / (count + 1)`` of the x within the boundary (R's type 7)."""
    if count <= 0:
        return np.empty(0)
    inside = x[(x >= boundary[0]) & (x <= boundary[1])]
    return np.quantile(inside, np.arange(1, count + 1) / (count + 1))


def _count(df: Any, fixed: int, where: str) -> int:
    """Interior knots for ``df`` (``df - fixed``), R's warning when ``df`` is too small."""
    if isinstance(df, bool) or not isinstance(df, (int, np.integer, float)) or df != int(df) or df < 1:
        raise FormulaError(f"{where}: df must be a positive whole number, got {df!r}")
    count = int(df) - fixed
    if count < 0:
        warnings.warn(f"{where}: 'df' was too small; have used {fixed}", MixedModelsWarning, stacklevel=2)
        return 0
    return count


def _learn(x, state, where, df, knots, boundary_knots, fixed) -> tuple[np.ndarray, np.ndarray]:
    """The interior and boundary knots: from ``state`` on replay, else found and stored."""
    if "boundary" not in state:
        boundary = _boundary(x, boundary_knots, where)
        if knots is not None:
            interior = np.sort(np.asarray(knots, dtype=float).reshape(-1))
        else:
            interior = _interior_knots(x, boundary, 0 if df is None else _count(df, fixed, where))
        state["knots"], state["boundary"] = interior.tolist(), boundary.tolist()
    return np.asarray(state["knots"], dtype=float), np.asarray(state["boundary"], dtype=float)


def _finite_rows(x: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    """``x`` as floats and its finite rows; a factor, text or logicals are refused (as R's splines do)."""
    dtype = getattr(x, "dtype", None)
    numeric = dtype is not None and pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
    try:
        values = np.asarray(x, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        numeric = False
    if not numeric:
        raise FormulaError(f"{where} needs a numeric variable, got {dtype or type(x).__name__}")
    return values, np.isfinite(values)


def _columns(values: np.ndarray, ok: np.ndarray, make) -> FactorValues:
    """The basis for the finite rows (NaN rows elsewhere), columns named 1, 2, ..."""
    inside = make(values[ok])
    out = np.full((len(values), inside.shape[1]), np.nan)
    out[ok] = inside
    return FactorValues(out, column_names=tuple(str(j) for j in range(1, out.shape[1] + 1)))


def _check_degree(degree: Any) -> int:
    if isinstance(degree, bool) or not isinstance(degree, (int, np.integer)) or degree < 1:
        raise FormulaError(f"bs(): degree must be a whole number >= 1, got {degree!r}")
    return int(degree)


# ---------------------------------------------------------------------------
# The formula functions


@stateful_transform
def bs(
    x: Any,
    df: Any = None,
    knots: Any = None,
    degree: int = 3,
    intercept: bool = False,
    Boundary_knots: Any = None,
    _state: dict | None = None,
) -> FactorValues:  # noqa: N803 (R's name)
    """R's ``bs()``: B-spline basis; knots from the fitted data reused for new data."""
    state = {} if _state is None else _state
    degree = int(state.get("degree", _check_degree(degree)))
    intercept = bool(state.get("intercept", intercept))
    state["degree"], state["intercept"] = degree, intercept
    values, ok = _finite_rows(x, "bs()")
    interior, boundary = _learn(values[ok], state, "bs()", df, knots, Boundary_knots, degree + int(intercept))
    outside = int(((values[ok] < boundary[0]) | (values[ok] > boundary[1])).sum())
    if outside:
        warnings.warn(
            f"bs(): {outside} value(s) lie beyond the boundary knots {boundary[0]:g} and {boundary[1]:g}; "
            "the basis continues its end polynomial pieces there and may be ill-conditioned (as R's bs)",
            MixedModelsWarning,
            stacklevel=2,
        )
    return _columns(values, ok, lambda v: bspline_basis(v, interior, boundary, degree, intercept))


@stateful_transform
def ns(
    x: Any,
    df: Any = None,
    knots: Any = None,
    intercept: bool = False,
    Boundary_knots: Any = None,
    _state: dict | None = None,
) -> FactorValues:  # noqa: N803 (R's name)
    """R's ``ns()``: natural cubic spline basis; knots from the fitted data reused for new data."""
    state = {} if _state is None else _state
    intercept = bool(state.setdefault("intercept", bool(intercept)))
    values, ok = _finite_rows(x, "ns()")
    interior, boundary = _learn(values[ok], state, "ns()", df, knots, Boundary_knots, 1 + int(intercept))
    return _columns(values, ok, lambda v: natural_spline_basis(v, interior, boundary, intercept))

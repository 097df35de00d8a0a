"""lme4's checks of a fixed-effects model matrix: aliased columns and predictor scales.

Kept apart from :mod:`.fixed` (which builds the matrices) because they only
read a finished :class:`~.fixed.DesignMatrix`.  :func:`independent_columns`
is R's rule for aliased columns, used also by the least-squares fits of
:mod:`mixedmodels.linalg.lstsq`.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
from scipy.linalg import lapack

from ..errors import RankDeficiencyWarning, ScaleWarning

if TYPE_CHECKING:
    from .fixed import DesignMatrix

__all__ = ["drop_aliased_columns", "check_scale", "independent_columns", "keep_columns", "check_column_scales"]


def drop_aliased_columns(design: DesignMatrix, tol: float = 1e-7) -> tuple[DesignMatrix, tuple[str, ...]]:
    """Drop columns that are linear combinations of earlier ones (lme4's rule).

    Like lme4's ``chkRank.drop.cols`` (R's LINPACK QR with limited pivoting),
    a column is aliased when its part orthogonal to the earlier kept columns
    has norm below ``tol`` times its own norm; earlier columns are kept.

    Emits :class:`~mixedmodels.errors.RankDeficiencyWarning` naming the
    dropped columns.  The returned design's ``for_newdata`` gives only the
    kept columns.
    """
    keep = _clearly_independent(design.matrix, tol)
    return keep_columns(design, independent_columns(design.matrix, tol) if keep is None else keep, stacklevel=2)


# A column whose part orthogonal to the others, read off the Cholesky factor of X'X, is above this share of
# its norm is kept by the QR's rule too.  X'X's factor has an absolute error of about sqrt(eps) (1.5e-8) of
# each norm where the QR's is about eps, so above 1e-5 both are far from lme4's threshold (tol = 1e-7).
_CLEAR_SHARE = 1e-5


def _clearly_independent(x: np.ndarray, tol: float) -> list[int] | None:
    """Every column, when X'X shows each far from being aliased (the QR would keep them all); None if not
    clearly so (the QR decides).  A small X's aliasing check in ~10 us instead of NumPy's QR's ~100 us."""
    n, p = x.shape
    if p < 2 or n < p or tol * 100 > _CLEAR_SHARE:
        return None
    gram = x.T @ x
    # (a method and ufuncs' reductions, not np.diagonal / np.all / .all(): their Python wrappers cost more here)
    squares = gram.diagonal()
    if not (np.logical_and.reduce(np.isfinite(gram), axis=None) and np.logical_and.reduce(squares > _MIN_SQUARE)):
        return None  # an empty column, or values so small or large that X'X loses them
    lower, info = lapack.dpotrf(gram, lower=1)
    if info != 0 or not np.logical_and.reduce(lower.diagonal() > _CLEAR_SHARE * np.sqrt(squares)):
        return None
    return list(range(p))


_MIN_SQUARE = 1e-200


def keep_columns(design: DesignMatrix, keep: list[int], stacklevel: int = 1) -> tuple[DesignMatrix, tuple[str, ...]]:
    """``design`` with only the columns ``keep`` and the names of the others.

    Emits lme4's :class:`~mixedmodels.errors.RankDeficiencyWarning` naming
    the dropped columns (``stacklevel`` 1: at the caller); ``for_newdata`` of
    the result gives the kept columns.
    """
    if len(keep) == design.matrix.shape[1]:
        return design, ()
    dropped = tuple(n for j, n in enumerate(design.column_names) if j not in set(keep))
    k = len(dropped)
    what = "1 column / coefficient" if k == 1 else f"{k} columns / coefficients"
    warnings.warn(
        f"fixed-effect model matrix is rank deficient so dropping {what}: {', '.join(dropped)}",
        RankDeficiencyWarning,
        stacklevel=stacklevel + 1,
    )
    return design.keep_columns(keep), dropped


def independent_columns(x: np.ndarray, tol: float = 1e-7, norms: np.ndarray | None = None) -> list[int]:
    """Indices of the columns kept by a left-to-right rank-revealing QR.

    A column goes when its part orthogonal to the earlier kept columns has norm
    below ``tol`` times ``norms`` (each column's own norm by default).  The
    answer depends on ``x`` only through the ``R`` of its QR decomposition
    (column norms included), so ``x`` may also be that ``R``, e.g. one
    assembled from blocks of rows (tall-skinny QR).
    """
    x = np.asarray(x, dtype=float)
    if x.shape[1] == 1 and norms is None:  # one column (an intercept): R is its norm, so it goes only if zero
        return [0] if np.any(x != 0) else []
    keep = list(range(x.shape[1]))
    norms = np.linalg.norm(x, axis=0) if norms is None else norms
    reference = np.where(norms > 0, norms, 1.0) * tol
    while keep:
        r = np.linalg.qr(x[:, keep], mode="r")
        diag = np.zeros(len(keep))
        m = min(r.shape)
        diag[:m] = np.abs(np.diag(r)[:m])
        bad = np.flatnonzero(~(diag >= reference[keep]))
        if bad.size == 0:
            break
        del keep[bad[0]]
    return keep


def check_scale(design: DesignMatrix, tol: float = 1e3) -> None:
    """Warn when predictors are on very different scales (lme4's ``checkScaleX``).

    Only columns that are not 0/1 indicators (nor the intercept) count, and
    constant ones are skipped.  lme4 warns when the standard deviations of two
    such columns differ by more than a factor ``tol`` (1000), or when one SD
    is itself above ``tol`` or below ``1/tol``.  Emits
    :class:`~mixedmodels.errors.ScaleWarning` naming the columns at fault.
    """
    x = design.matrix
    if x.shape[0] < 2:
        return
    binary = np.logical_and.reduce((x == 0) | (x == 1), axis=0)  # (.all(axis=0), without its Python wrapper)
    if np.logical_and.reduce(binary):  # an intercept alone, or indicators: nothing to compare
        return
    check_column_scales(design.column_names, _column_sd(x), binary, tol, stacklevel=2)


def _column_sd(x: np.ndarray) -> np.ndarray:
    """``x.std(axis=0, ddof=1)`` by NumPy's own operations in its order (the same numbers, bit for bit),
    without its wrappers' checks and dispatch (~30 us of a small model's cold set-up)."""
    n = x.shape[0]
    mean = x.sum(axis=0, keepdims=True)
    mean /= n
    deviations = x - mean
    deviations *= deviations
    sd = deviations.sum(axis=0)
    sd /= n - 1
    return np.sqrt(sd, out=sd)


def check_column_scales(names, sd: np.ndarray, binary: np.ndarray, tol: float = 1e3, stacklevel: int = 1) -> None:
    """:func:`check_scale` given each column's standard deviation (ddof 1) and whether it is all 0/1."""
    sd = np.asarray(sd, dtype=float)
    values = sd.tolist()  # a few columns: Python floats, the same comparisons without NumPy's per-call cost
    idx = [j for j, (s, b) in enumerate(zip(values, np.asarray(binary, dtype=bool).tolist())) if not b and s > 0]
    if not idx:
        return
    lo, hi = min(idx, key=values.__getitem__), max(idx, key=values.__getitem__)  # the first extreme, as argmin/max
    flagged = [j for j in idx if values[j] > tol or values[j] < 1 / tol]
    if sd[hi] / sd[lo] > tol:  # NumPy's division (its overflow warning included)
        flagged = [hi, lo] + flagged
    if not flagged:
        return
    listed = ", ".join(f"{names[j]} (SD {sd[j]:.3g})" for j in dict.fromkeys(flagged))
    warnings.warn(
        f"Some predictor variables are on very different scales: consider rescaling (columns {listed})",
        ScaleWarning,
        stacklevel=stacklevel + 1,
    )

"""A partition of a one-term model in one compiled sweep over the columns the Parquet read produced.

For ``y ~ 1 + x... + (1 + x... | g)`` with an integer id ``g`` coded ``id - first``
(the fused pass's range plan), plain numeric columns, no weights and no
offset, a partition whose values are all present and finite needs

* per level of ``g`` in the span of the partition's ids (``max - min + 1``),
  its rows and the sums ``z z'`` and ``z [x' y]``: :func:`raw_sweep`, one
  compiled pass over the rows reading each column where the read put it (no
  ``[1 x]`` matrix, no pandas row selection, no copies of codes); row ``i``'s
  x and z are ``1`` for an intercept (index ``< 0``) or ``cols[c][i]``;
* ``X'X``, ``X'y``, ``y'y``, X's column sums, ranges and 0/1 flags, and y's sum
  and range: dot products, sums, minima and maxima of the columns (vectorized:
  folded into the sweep they cost ~12 ms more per 2.5M rows than alone);
* X's sums of squared deviations from the column means (:func:`raw_deviations`,
  after the means, in row order as :func:`~.kernels.column_facts` sums them).

The columns' minima and maxima tell whether every value is finite (a NaN or
an infinity shows at one end), and the ids' whether each has a level of the
plan.  The sums per level run in row order as :func:`~.kernels.level_sums`
runs them (the same bits as the general path); the dot products round
differently from the general path's loops (last bits only).

:func:`swept_partition` gives None whenever the general path is needed:
without numba, for fewer than 10,000 rows, a wide span, another kind of
model, or rows the general path must look at (missing or non-finite values,
ids outside the range): that path then counts, drops or rejects them.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np
import pandas as pd

from .crossprods import DesignFacts, Pass2, first_term_blocks
from .kernels import SPAN_PER_ROW, _complete_a11
from .plan import EncodingPlan

__all__ = ["raw_sweep", "raw_deviations", "SweptPartition", "swept_partition"]

_MIN_ROWS = 10_000  # below this, loading the compiled loop costs more than it saves


def raw_sweep(
    ids: np.ndarray,
    low: int,
    cols: tuple,
    xcols: np.ndarray,
    zcols: np.ndarray,
    ycol: int,
    same: bool,
    counts: np.ndarray,
    a11: np.ndarray,
    zxy: np.ndarray,
) -> None:
    """Per level ``l = ids[i] - low``: count the rows, add ``z z'`` (lower triangle, unless ``same``) to
    ``a11[l]`` and ``z [x' y]`` to ``zxy[l]``; row ``i``'s x and z are ``1`` for an intercept (index ``< 0``)
    or ``cols[c][i]``, its y ``cols[ycol][i]``.  Every row complete and finite (the caller checks)."""
    p, k = xcols.shape[0], zcols.shape[0]
    xrow, zrow = np.empty(p), np.empty(k)
    y = cols[ycol]
    if same:  # a loop of its own: a test of ``same`` per row costs ~50 % more (2.5M rows: 26 against 17.6 ms)
        for i in range(ids.shape[0]):
            lev = ids[i] - low
            counts[lev] += 1
            for j in range(p):
                c = xcols[j]
                xrow[j] = 1.0 if c < 0 else cols[c][i]
            yi = y[i]
            for a in range(p):
                za = xrow[a]
                for j in range(p):
                    zxy[lev, a, j] += za * xrow[j]
                zxy[lev, a, p] += za * yi
        return
    for i in range(ids.shape[0]):
        lev = ids[i] - low
        counts[lev] += 1
        for j in range(p):
            c = xcols[j]
            xrow[j] = 1.0 if c < 0 else cols[c][i]
        for a in range(k):
            c = zcols[a]
            zrow[a] = 1.0 if c < 0 else cols[c][i]
        yi = y[i]
        for a in range(k):
            za = zrow[a]
            for b in range(a + 1):
                a11[lev, a, b] += za * zrow[b]
            for j in range(p):
                zxy[lev, a, j] += za * xrow[j]
            zxy[lev, a, p] += za * yi


def raw_deviations(column: np.ndarray, mean: float) -> float:
    """``sum_i (column_i - mean)^2``, in row order."""
    total = 0.0
    for i in range(column.shape[0]):
        d = column[i] - mean
        total += d * d
    return total


@lru_cache(maxsize=None)
def _compiled() -> tuple[Callable, Callable] | None:
    from ..linalg.jit import jit

    sweep, deviations = jit(raw_sweep), jit(raw_deviations)
    return None if sweep is None or deviations is None else (sweep, deviations)


class SweptPartition:
    """What :func:`swept_partition` gives: pass 2's sums, and the counts pass 1 would have made."""

    __slots__ = ("pass2", "missing", "ncomplete", "present")

    def __init__(self, pass2: Pass2, missing: dict[str, int], ncomplete: int, present: np.ndarray) -> None:
        self.pass2, self.missing, self.ncomplete, self.present = pass2, missing, ncomplete, present


def _layout(frame: pd.DataFrame, plan: EncodingPlan) -> tuple | None:
    """``(ids, first, names, cols, xcols, zcols, ycol, same)`` when the sweep applies to this plan and frame."""
    if len(plan.terms) != 1 or plan.weights or plan.offset or plan.fixed.offset is not None:
        return None
    term = plan.terms[0]
    if plan.fixed_simple is None or term.simple is None or term.combos is not None or plan.response_levels:
        return None
    coder = term.coders[0]
    if coder.first is None or coder.categories is not None:
        return None
    group, response = term.term.factors[0], plan.parsed.response
    if response is None:
        return None
    names = [name for name in plan.frame_columns if name != group]
    wanted = {response, *plan.fixed_simple[1], *term.simple[1]}
    if set(names) != wanted or group not in frame.columns:
        return None
    ids = frame[group].to_numpy()
    if not isinstance(ids.dtype, np.dtype) or ids.dtype.kind != "i":
        return None
    ids = np.ascontiguousarray(ids, dtype=np.int64).view()
    ids.flags.writeable = False  # one compiled signature, whether pandas gave a read-only view or not
    cols = []
    for name in names:
        dtype = frame[name].dtype
        if not isinstance(dtype, np.dtype) or dtype.kind not in "iuf":
            return None
        column = np.ascontiguousarray(frame[name].to_numpy(dtype=np.float64)).view()  # no copy when float64
        column.flags.writeable = False  # one type for every column (pandas gives read-only views of its own)
        cols.append(column)
    position = {name: i for i, name in enumerate(names)}

    def columns(simple: tuple[bool, tuple[str, ...]]) -> np.ndarray:
        intercept, used = simple
        return np.array([-1] * int(intercept) + [position[name] for name in used], dtype=np.int64)

    same = term.simple == plan.fixed_simple
    return (
        ids,
        coder.first,
        names,
        tuple(cols),
        columns(plan.fixed_simple),
        columns(term.simple),
        position[response],
        same,
    )


def swept_partition(frame: pd.DataFrame, plan: EncodingPlan) -> SweptPartition | None:
    """A partition's pass 2 and pass 1's counts by :func:`raw_sweep`, or None when the general path is needed."""
    kernels = _compiled() if len(frame) >= _MIN_ROWS else None
    layout = _layout(frame, plan) if kernels is not None else None
    if kernels is None or layout is None:
        return None
    ids, first, names, cols, xcols, zcols, ycol, same = layout
    q1, n = plan.terms[0].nlevels, len(frame)
    low, high = int(ids.min()), int(ids.max())
    ranges = [(float(col.min()), float(col.max())) for col in cols]  # NaN or infinite at either end if any is
    if low < first or high >= first + q1 or high - low + 1 > SPAN_PER_ROW * n or not np.isfinite(ranges).all():
        return None  # ids outside the plan's range, a wide span, or missing values: the general path
    span, k, p = high - low + 1, zcols.size, xcols.size
    counts = np.zeros(span, dtype=np.int64)
    a11, zxy = np.zeros((span, k, k)), np.zeros((span, k, p + 1))
    sweep, deviations = kernels
    sweep(ids, low, cols, xcols, zcols, ycol, same, counts, a11, zxy)
    _complete_a11(a11, zxy, same)
    facts, gram = _facts(cols, xcols, ycol, ranges, deviations)
    blocks = first_term_blocks(n, low - first, a11, zxy, q1, gram)
    present = np.zeros(q1, dtype=bool)
    present[low - first : high - first + 1] = counts > 0
    return SweptPartition(Pass2(blocks, facts), dict.fromkeys(plan.frame_columns, 0), n, np.packbits(present))


def _facts(
    cols: tuple, xcols: np.ndarray, ycol: int, ranges: list[tuple[float, float]], deviations: Callable
) -> tuple[DesignFacts, np.ndarray]:
    """X's and y's facts and ``[x y]'[x y]`` from the columns (sums, dot products, ranges), all rows complete."""
    n, p = cols[0].shape[0], xcols.size
    columns = [cols[c] if c >= 0 else None for c in xcols] + [cols[ycol]]  # None: the intercept
    sums = np.array([float(n) if col is None else float(col.sum()) for col in columns])
    gram = np.empty((p + 1, p + 1))
    for a, left in enumerate(columns):
        for b in range(a + 1):
            right = columns[b]
            if left is None or right is None:
                other = right if left is None else left
                value = float(n) if other is None else sums[a if right is None else b]
            else:
                value = float(left @ right)
            gram[a, b] = gram[b, a] = value
    mean = sums[:p] / n
    m2 = np.array([0.0 if c < 0 else deviations(cols[c], mean[j]) for j, c in enumerate(xcols)])
    binary = np.array([c < 0 or _zero_one(cols[c], ranges[c]) for c in xcols], dtype=bool)
    y_min, y_max = ranges[ycol]
    facts = DesignFacts(
        n, gram[:p, :p].copy(), mean, m2, binary, np.zeros(p), 0, 0, y_min, y_max, np.array([sums[p], gram[p, p]])
    )
    return facts, gram


def _zero_one(column: np.ndarray, bounds: tuple[float, float]) -> bool:
    low, high = bounds
    if low < 0 or high > 1:
        return False
    return bool(low == high or np.all((column == 0) | (column == 1)))

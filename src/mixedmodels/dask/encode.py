"""One partition's rows of y, X, the offset, the weights and each term's z and level codes.

:func:`encode_partition` applies an :class:`~.plan.EncodingPlan` to a pandas
partition: it keeps the complete rows (as the in-memory model frame does),
builds X and each term's z by replaying the global specs (or, for an
intercept and plain numeric columns, directly), evaluates the response, and
maps every grouping factor to the global level codes.  The result is the
same rows the in-memory code would build for these observations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..design.response import build_response
from ..design.simple import numeric_columns, simple_matrix
from .plan import EncodingPlan

__all__ = ["EncodedPartition", "encode_partition", "complete_rows"]


@dataclass(frozen=True, eq=False)
class EncodedPartition:
    """The model's arrays for one partition's complete rows (terms in block order)."""

    index: pd.Index
    x: np.ndarray
    y: np.ndarray
    weights: np.ndarray | None
    offset: np.ndarray | None
    refs: tuple[np.ndarray, ...]
    zs: tuple[np.ndarray, ...]

    @property
    def nobs(self) -> int:
        return self.x.shape[0]

    def response(self) -> np.ndarray:
        """``y - offset`` (the part of y the random and fixed effects explain)."""
        return self.y if self.offset is None else self.y - self.offset


def complete_rows(part: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """The rows with no missing value in ``columns``."""
    incomplete = np.zeros(len(part), dtype=bool)
    for name in columns:
        column = part[name]
        dtype = column.dtype
        if isinstance(dtype, np.dtype) and dtype.kind in "biu":
            continue
        incomplete |= (
            np.isnan(column.to_numpy())
            if isinstance(dtype, np.dtype) and dtype.kind == "f"
            else np.asarray(column.isna(), dtype=bool)
        )
    return part.loc[~incomplete] if incomplete.any() else part


def encode_partition(part: pd.DataFrame, plan: EncodingPlan) -> EncodedPartition:
    """The arrays of one partition (see the module docstring)."""
    kept = complete_rows(part, plan.complete_columns)
    n = len(kept)
    if n == 0:
        return _empty(kept.index, plan)
    kept = _conform_response(kept, plan)
    x = _matrix(plan.fixed, plan.fixed_simple, kept)
    offset = plan.fixed.offset_for_newdata(kept) if plan.fixed.offset is not None else None
    if plan.offset is not None:
        extra = kept[plan.offset].to_numpy(dtype=float)
        offset = extra if offset is None else offset + extra
    weights = kept[plan.weights].to_numpy(dtype=float) if plan.weights is not None else None
    y = build_response(plan.parsed.response, kept)
    refs = tuple(term.refs(kept) for term in plan.terms)
    zs = tuple(
        x
        if term.simple is not None and term.simple == plan.fixed_simple  # z = X: the same columns
        else np.ascontiguousarray(_matrix(term.design, term.simple, kept))
        for term in plan.terms
    )
    return EncodedPartition(kept.index, x, y, weights, offset, refs, zs)


def _empty(index: pd.Index, plan: EncodingPlan) -> EncodedPartition:
    p = len(plan.fixed.column_names)
    y = np.empty((0, 2)) if plan.response_ndim == 2 else np.empty(0)
    return EncodedPartition(
        index,
        np.empty((0, p)),
        y,
        None if plan.weights is None else np.empty(0),
        None if plan.fixed.offset is None and plan.offset is None else np.empty(0),
        tuple(np.empty(0, dtype=np.int64) for _ in plan.terms),
        tuple(np.empty((0, t.ncols)) for t in plan.terms),
    )


def _conform_response(kept: pd.DataFrame, plan: EncodingPlan) -> pd.DataFrame:
    """A non-numeric response column as a Categorical with the whole data's two levels (first = failure)."""
    if plan.response_levels is None:
        return kept
    name = plan.parsed.response
    values = kept[name]
    if isinstance(values.dtype, pd.CategoricalDtype) and tuple(values.cat.categories) == plan.response_levels:
        return kept
    return kept.assign(**{name: pd.Categorical(np.asarray(values), categories=list(plan.response_levels))})


def _matrix(design, simple, kept: pd.DataFrame) -> np.ndarray:
    """A design's rows for these data: directly for an intercept and plain numeric columns, else by replay."""
    if simple is not None:
        intercept, names = simple
        columns = numeric_columns(kept, names)
        if columns is not None:
            return simple_matrix(intercept, columns, len(kept))
    return design.for_newdata(kept)

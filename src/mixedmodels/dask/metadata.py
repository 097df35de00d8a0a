"""Pass 1: what all the rows say before any model matrix is built, as one Dask reduction.

A model matrix for one partition can only be built once some facts about the
whole data are known: which rows are complete (R's ``na.omit`` over the
variables of the formula), the levels of the grouping factors and of the
categorical predictors, and the state of the stateful transforms
(``scale()``'s mean and SD, ``poly()``'s recurrence coefficients), which in
memory come from all complete rows at once.

Each partition summarizes itself (:func:`summarize_partition`): counts of
rows and of missing values, the distinct values of each level column (or,
for a Categorical with known categories, how often each category occurs),
the distinct combinations of interacted grouping factors, and the moments
(:class:`~.moments.Moments`) of every stateful transform's argument over its
complete rows.  Summaries combine pairwise (:meth:`PartSummary.combine`) in a
tree on the workers; only these summaries travel, never rows.
:func:`finish` turns the total into a :class:`DataSummary` whose levels are
in the order the in-memory code would give them (category order for
Categoricals with known categories, else sorted values, as R's ``factor()``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..design.fixed import CONTEXT
from ..design.values import level_values
from ..errors import DataError
from .moments import Moments, poly_state, scale_state

__all__ = ["TransformSpec", "SummarySpec", "PartSummary", "DataSummary", "summarize_partition", "finish"]


@dataclass(frozen=True)
class TransformSpec:
    """One stateful call in the formula and what its state needs.

    ``key`` is formulaic's name for the call (``"scale(x)"``), ``code`` its
    argument (variable names sanitized as formulaic does, ``aliases`` mapping
    them back to columns), ``kind`` ``"scale"`` or ``"poly"``, ``options``
    the call's constant arguments (center, scale, ddof; degree).
    """

    key: str
    kind: str
    code: str
    aliases: tuple[tuple[str, str], ...]
    options: tuple[tuple[str, Any], ...]

    @property
    def order(self) -> int:
        """The highest central power sum the state needs."""
        return 2 * int(dict(self.options).get("degree", 1))

    def state(self, moments: Moments) -> dict:
        options = dict(self.options)
        if self.kind == "poly":
            return poly_state(moments, int(options["degree"]))
        return scale_state(
            moments, bool(options.get("center", True)), bool(options.get("scale", True)), options.get("ddof", 1)
        )


@dataclass(frozen=True)
class SummarySpec:
    """What pass 1 computes (built on the client from the formula and the columns' types).

    Attributes
    ----------
    frame_columns : tuple of str
        The formula's variables: a row is complete when none of them is missing.
    level_columns : dict
        Columns whose levels are needed, mapped to their known categories
        (a Categorical with known categories) or None (distinct values).
    combos : tuple of tuple of str
        Interacted grouping factors (``a:b``): their distinct combinations.
    numeric : tuple of str
        Numeric columns of which a few values are kept (to stand in for them
        when the design's structure is worked out).
    transforms : tuple of TransformSpec
    weights, offset : str or None
        Columns of prior weights and of an offset (not part of the completeness).
    """

    frame_columns: tuple[str, ...]
    level_columns: dict[str, tuple | None]
    combos: tuple[tuple[str, ...], ...]
    numeric: tuple[str, ...]
    transforms: tuple[TransformSpec, ...] = ()
    weights: str | None = None
    offset: str | None = None


@dataclass
class PartSummary:
    """The summary of some rows (one partition, or several combined)."""

    nrows: int
    ncomplete: int
    missing: dict[str, int]
    category_counts: dict[str, np.ndarray]  # per column with known categories: rows in each category
    distinct: dict[str, np.ndarray]  # per other level column: its distinct values
    combos: dict[tuple[str, ...], pd.DataFrame]
    samples: dict[str, np.ndarray]
    transforms: dict[str, Moments]
    weights: "WeightFacts | None" = None
    offset: "OffsetFacts | None" = None

    def combine(self, other: "PartSummary") -> "PartSummary":
        """The summary of both parts' rows."""
        return PartSummary(
            nrows=self.nrows + other.nrows,
            ncomplete=self.ncomplete + other.ncomplete,
            missing={k: self.missing[k] + other.missing[k] for k in self.missing},
            category_counts={k: v + other.category_counts[k] for k, v in self.category_counts.items()},
            distinct={k: _union(v, other.distinct[k]) for k, v in self.distinct.items()},
            combos={k: _distinct(pd.concat([v, other.combos[k]], ignore_index=True)) for k, v in self.combos.items()},
            samples={k: _sample(np.concatenate([v, other.samples[k]])) for k, v in self.samples.items()},
            transforms={k: v.combine(other.transforms[k]) for k, v in self.transforms.items()},
            weights=None if self.weights is None else self.weights.combine(other.weights),
            offset=None if self.offset is None else self.offset.combine(other.offset),
        )


@dataclass(frozen=True)
class WeightFacts:
    """What the checks of prior weights need: non-finite, negative and positive counts, and ``sum log(w > 0)``."""

    nonfinite: int
    negative: int
    positive: int
    log_sum: float

    def combine(self, other: "WeightFacts") -> "WeightFacts":
        return WeightFacts(
            self.nonfinite + other.nonfinite,
            self.negative + other.negative,
            self.positive + other.positive,
            self.log_sum + other.log_sum,
        )


@dataclass(frozen=True)
class OffsetFacts:
    """An ``offset=`` column: rows where it is missing (dropped, as in memory) and the labels of infinite ones."""

    rows: int
    missing: int
    infinite: int
    infinite_labels: tuple

    def combine(self, other: "OffsetFacts") -> "OffsetFacts":
        return OffsetFacts(
            self.rows + other.rows,
            self.missing + other.missing,
            self.infinite + other.infinite,
            (self.infinite_labels + other.infinite_labels)[:3],
        )


@dataclass(frozen=True)
class DataSummary:
    """Pass 1's answer for the whole data.

    Attributes
    ----------
    nrows, ncomplete : int
        Rows in the data, and rows complete in every variable of the formula.
    missing : dict
        Rows with a missing value, per variable.
    levels : dict
        Per level column, the levels' values in order (observed ones only).
    combos : dict
        Per interacted grouping factor, the observed combinations as codes
        into each column's ``levels``, sorted (first column slowest).
    samples : dict
        A few distinct values (the smallest and largest among them) of each
        numeric column, from the complete rows.
    transform_states : dict
        formulaic's state of each stateful call, over the complete rows.
    log_weights : float
        ``sum log(w)`` over the complete rows with positive weight.
    offset_missing : int
        Rows dropped because their ``offset=`` is missing (counted in ``nrows``).
    """

    nrows: int
    ncomplete: int
    missing: dict[str, int]
    levels: dict[str, np.ndarray]
    combos: dict[tuple[str, ...], np.ndarray]
    samples: dict[str, np.ndarray]
    transform_states: dict[str, dict]
    log_weights: float = 0.0
    categorical: dict[str, bool] = field(default_factory=dict)
    offset_missing: int = 0
    text_levels: frozenset = frozenset()

    @property
    def n_dropped(self) -> int:
        return self.nrows - self.ncomplete


# --------------------------------------------------------------------------- one partition
def summarize_partition(part: pd.DataFrame, spec: SummarySpec) -> PartSummary:
    """The summary of one partition's rows."""
    offset = None if spec.offset is None else _offset_facts(part[spec.offset])
    if offset is not None and offset.missing:  # dropped before the model frame, as in memory
        part = part.loc[~np.isnan(part[spec.offset].to_numpy(dtype=float))]
    weights_missing = 0
    if spec.weights is not None:  # rows with a missing weight are dropped too (lme4, and the in-memory fit)
        missing_weight = np.isnan(part[spec.weights].to_numpy(dtype=float))
        weights_missing = int(missing_weight.sum())
        if weights_missing:
            if weights_missing == len(part) and len(part):
                part = part.iloc[:0]
            else:
                part = part.loc[~missing_weight]
    missing_by_column = {name: _missing(part[name]) for name in spec.frame_columns}
    incomplete = np.zeros(len(part), dtype=bool)
    for mask in missing_by_column.values():
        incomplete |= mask
    kept = part.loc[~incomplete] if incomplete.any() else part
    return PartSummary(
        nrows=len(part) + (0 if offset is None else offset.missing) + weights_missing,
        ncomplete=len(kept),
        missing={name: int(mask.sum()) for name, mask in missing_by_column.items()}
        | (
            {spec.weights: weights_missing}
            if spec.weights is not None and spec.weights not in missing_by_column
            else {}
        ),
        category_counts={
            name: _category_counts(kept[name], categories)
            for name, categories in spec.level_columns.items()
            if categories is not None
        },
        distinct={
            name: _distinct_values(kept[name]) for name, categories in spec.level_columns.items() if categories is None
        },
        combos={cols: _distinct(kept.loc[:, list(cols)].reset_index(drop=True)) for cols in spec.combos},
        samples={name: _partition_sample(kept[name].to_numpy()) for name in spec.numeric},
        transforms={t.key: Moments.of(_evaluate(t, kept), t.order) for t in spec.transforms},
        weights=None if spec.weights is None else _weight_facts(kept[spec.weights]),
        offset=offset,
    )


def _offset_facts(column: pd.Series) -> OffsetFacts:
    values = column.to_numpy(dtype=float)
    infinite = np.isinf(values)
    labels = tuple(column.index[infinite][:3].tolist()) if infinite.any() else ()
    return OffsetFacts(values.size, int(np.isnan(values).sum()), int(infinite.sum()), labels)


def _missing(column: pd.Series) -> np.ndarray:
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biu":
        return np.zeros(len(column), dtype=bool)
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        return np.isnan(column.to_numpy())
    return np.asarray(column.isna(), dtype=bool)


def _distinct_values(column: pd.Series) -> np.ndarray:
    """The distinct values of a column (integers in a short range by counting, the rest by hashing)."""
    values = column.to_numpy() if isinstance(column.dtype, np.dtype) else None
    if values is not None and values.dtype.kind in "iu" and values.size:
        low, high = int(values.min()), int(values.max())
        if high - low <= 4 * values.size:
            return (np.flatnonzero(np.bincount(values - low, minlength=high - low + 1)) + low).astype(values.dtype)
    return np.asarray(pd.unique(column))


def _category_counts(column: pd.Series, categories: tuple) -> np.ndarray:
    """Rows in each known category."""
    codes = _category_codes(column, categories)
    return np.bincount(codes[codes >= 0], minlength=len(categories))


def _category_codes(column: pd.Series, categories: tuple) -> np.ndarray:
    """Codes into ``categories`` (a partition's Categorical normally has them already)."""
    array = column.array
    if isinstance(array, pd.Categorical) and tuple(array.categories) == tuple(categories):
        return np.asarray(array.codes, dtype=np.int64)
    return np.asarray(pd.Categorical(np.asarray(column), categories=list(categories)).codes, dtype=np.int64)


def _evaluate(transform: TransformSpec, kept: pd.DataFrame) -> np.ndarray:
    """The argument of a stateful call on some rows, as floats."""
    from formulaic.transforms import TRANSFORMS
    from formulaic.utils.layered_mapping import LayeredMapping
    from formulaic.utils.stateful_transforms import stateful_eval

    aliased = {alias: kept[name] for alias, name in transform.aliases}
    env = LayeredMapping(aliased, kept, CONTEXT, TRANSFORMS)
    with np.errstate(all="ignore"):
        values = stateful_eval(transform.code, env, None, {}, None)
    values = getattr(values, "__wrapped__", values)
    try:
        return np.asarray(values, dtype=float).reshape(len(kept), -1)[:, 0] if len(kept) else np.empty(0)
    except (TypeError, ValueError):
        raise DataError(f"{transform.key} needs numbers, and its argument is not numeric") from None


def _weight_facts(column: pd.Series) -> WeightFacts:
    w = column.to_numpy(dtype=float)
    finite = np.isfinite(w)
    positive = finite & (w > 0)
    return WeightFacts(
        int((~finite).sum()), int((finite & (w < 0)).sum()), int(positive.sum()), float(np.log(w[positive]).sum())
    )


_SAMPLE_SIZE = 16


def _partition_sample(values: np.ndarray) -> np.ndarray:
    """Up to 16 distinct values: the smallest, the largest and some of the first rows'."""
    if values.size == 0:
        return values
    return _sample(np.concatenate([values[:64], [values.min(), values.max()]]))


def _sample(values: np.ndarray) -> np.ndarray:
    """At most 16 distinct values, always keeping the smallest and the largest (deterministic)."""
    distinct = np.unique(values)
    if distinct.size <= _SAMPLE_SIZE:
        return distinct
    picks = np.unique(np.linspace(0, distinct.size - 1, _SAMPLE_SIZE).round().astype(int))
    return distinct[picks]


def _union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if not b.size:
        return a
    if not a.size:
        return b
    return np.asarray(pd.unique(np.concatenate([a, b])))


def _distinct(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop_duplicates(ignore_index=True)


# --------------------------------------------------------------------------- the whole data
def finish(total: PartSummary, spec: SummarySpec) -> DataSummary:
    """The :class:`DataSummary` of the combined summary of every partition."""
    levels = {
        name: _ordered_levels(
            total.category_counts[name] if categories is not None else total.distinct[name], categories
        )
        for name, categories in spec.level_columns.items()
    }
    combos = {cols: _combo_codes(total.combos[cols], [levels[c] for c in cols]) for cols in spec.combos}
    if total.offset is not None:
        _check_offset(total.offset)
    if spec.weights is not None:
        with_offset = total.nrows - (0 if total.offset is None else total.offset.missing)
        if with_offset and total.missing.get(spec.weights, 0) == with_offset:
            raise DataError("weights= is missing (NaN) for every row; give a finite weights for the rows to fit")
        _check_weights(total.weights, total.ncomplete)
    return DataSummary(
        nrows=total.nrows,
        ncomplete=total.ncomplete,
        missing=dict(total.missing),
        levels=levels,
        combos=combos,
        samples=dict(total.samples),
        transform_states={t.key: t.state(total.transforms[t.key]) for t in spec.transforms},
        log_weights=0.0 if total.weights is None else total.weights.log_sum,
        categorical={name: categories is not None for name, categories in spec.level_columns.items()},
        offset_missing=0 if total.offset is None else total.offset.missing,
        text_levels=frozenset(
            name
            for name, categories in spec.level_columns.items()
            if categories is None and level_values(total.distinct[name]) is not total.distinct[name]
        ),
    )


def _ordered_levels(facts: np.ndarray, categories: tuple | None) -> np.ndarray:
    """Observed levels in order: category order for known categories, else sorted as R's factor().

    An object column mixing numbers and strings (over all partitions, as in
    memory: :func:`~mixedmodels.design.values.level_values`) has text levels.
    """
    if categories is not None:
        return np.asarray(
            [c for c, n in zip(categories, facts) if n > 0], dtype=object if _is_text(categories) else None
        )
    if facts.size == 0:
        return facts
    return np.asarray(pd.Categorical(level_values(facts)).categories.to_numpy())


def _is_text(values: tuple) -> bool:
    return any(isinstance(v, str) for v in values)


def _combo_codes(combos: pd.DataFrame, levels: list[np.ndarray]) -> np.ndarray:
    """Observed combinations as codes into each column's levels, sorted with the first column slowest."""
    codes = (
        np.column_stack([pd.Index(lv).get_indexer(combos.iloc[:, j].to_numpy()) for j, lv in enumerate(levels)])
        if len(combos)
        else np.zeros((0, len(levels)), dtype=np.int64)
    )
    order = np.lexsort(codes.T[::-1]) if len(codes) else np.zeros(0, dtype=np.int64)
    return codes[order].astype(np.int64)


def _check_weights(facts: WeightFacts, nrows: int) -> None:
    """The in-memory checks of prior weights, on pass 1's counts."""
    if facts.nonfinite:
        raise DataError("weights contain missing or infinite values; give a finite weight for every row")
    if facts.negative:
        raise DataError("weights must be non-negative; found a negative weight")
    if nrows and not facts.positive:
        raise DataError(
            f"every weight is zero ({nrows} rows): rows with weight 0 carry no information, "
            "so there is nothing to fit; give positive weights to the rows to fit"
        )


def _check_offset(facts: OffsetFacts) -> None:
    """The in-memory checks of an ``offset=`` (infinite values refused, all missing refused)."""
    if facts.infinite:
        shown = ", ".join(map(repr, facts.infinite_labels)) + (", ..." if facts.infinite > 3 else "")
        raise DataError(
            f"offset= has {facts.infinite} infinite value(s) (rows {shown}); an offset must be finite: "
            "check how it was computed (e.g. log of zero), or set those values to NaN to drop the rows"
        )
    if facts.rows and facts.missing == facts.rows:
        raise DataError("offset= is missing (NaN) for every row; give a finite offset for the rows to fit")

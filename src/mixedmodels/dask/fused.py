"""Pass 1 folded into pass 2, when the levels need not be collected before the rows are encoded.

Pass 1 (:mod:`.metadata`) exists to learn what a partition cannot know
alone: the levels of the grouping factors, the states of stateful
transforms, and which rows are complete.  For a common kind of model none of
that is needed first:

* every grouping factor is a Categorical with known categories (dask reads
  Parquet dictionary columns so), or integer-coded with a range
  ``[min, max]`` not much larger than the number of rows (a light reduction
  over the id columns alone gives it);
* the fixed part and every random term are an intercept and plain numeric
  columns (no factors to collect, no ``scale()``/``poly()`` state), each
  term has one grouping factor, and there are no prior weights or offset.

Then pass 2 runs at once over every category (or every integer of the
range, code ``id - min``), and counts on the way what pass 1 would have
counted: rows, missing values per variable, and complete rows per level.
After the reduction the levels without rows are dropped; their blocks are
exactly zero (no row touches them), so removing their rows and columns of
``A11``, ``A21`` and ``A22`` gives the blocks the two passes give.  The
plan is then rebuilt from these counts (:func:`~.plan.encoding_plan` on the
observed levels), so lme4's checks (no complete rows, one-level factors,
more random effects than observations) raise as after pass 1.  In any other
case, or when dropping levels would change the order of the terms (blocks
are ordered by number of levels), the caller makes the two passes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..design.inputs import expand_formula_dot
from ..design.simple import simple_terms
from ..errors import MixedModelsError
from ..formula import ParsedFormula
from .crossprods import PartialBlocks, Pass2, pass2_encoded, sum_pass2
from .encode import encode_partition
from .metadata import DataSummary, SummarySpec, _missing, _ordered_levels
from .pieces import summed_in_pieces, wide_first_to_rest
from .plan import EncodingPlan, encoding_plan, summary_spec
from .reduction import map_reduce
from .source import DataSource
from .spans import LevelSpan
from .sweep import swept_partition

__all__ = ["FusedResult", "fused_pass", "for_workers"]

RANGE_PER_ROW = 4  # an integer id's range may be at most this many times the number of rows
_PLACEHOLDER_ROWS = 2**62  # the range plan's row count: lme4's count checks wait for the real one


@dataclass(frozen=True, eq=False)
class FusedResult:
    """What the fused pass gives: the plan and summary two passes would give, and pass 2's sums for them."""

    plan: EncodingPlan
    summary: DataSummary
    total: Pass2
    seconds: dict[str, float]
    passes: int


@dataclass(frozen=True, eq=False)
class _RowFacts:
    """Rows, missing values per variable, complete rows, and each term's levels (over its whole range) with some.

    The levels travel as bits (``np.packbits`` of "has rows", combined by
    OR): a million counts per partition would be most of what the reduction
    sends, and sorted indices cost a sort per combination (``np.union1d`` of a
    million ids per partition: ~10 s more on 200M rows).
    """

    nrows: int
    missing: dict[str, int]
    ncomplete: int
    present: tuple[np.ndarray, ...]

    def combine(self, other: "_RowFacts") -> "_RowFacts":
        return _RowFacts(
            self.nrows + other.nrows,
            {k: v + other.missing[k] for k, v in self.missing.items()},
            self.ncomplete + other.ncomplete,
            tuple(a | b for a, b in zip(self.present, other.present)),
        )


@dataclass(frozen=True, eq=False)
class _FusedPart:
    pass2: Pass2
    rows: _RowFacts


def _fused_partition(frame: pd.DataFrame, plan: EncodingPlan) -> _FusedPart:
    """One partition's pass 2 over the whole ranges, and the counts pass 1 would have made."""
    swept = swept_partition(frame, plan)  # one compiled sweep over the columns, when it applies
    if swept is not None:
        rows = _RowFacts(len(frame), swept.missing, swept.ncomplete, (swept.present,))
        return _FusedPart(swept.pass2, rows)
    missing = {name: int(_missing(frame[name]).sum()) for name in plan.frame_columns}
    part = encode_partition(frame, plan)
    present = tuple(_present(refs, term.nlevels) for refs, term in zip(part.refs, plan.terms))
    return _FusedPart(pass2_encoded(part, plan), _RowFacts(len(frame), missing, part.nobs, present))


def _present(refs: np.ndarray, nlevels: int) -> np.ndarray:
    """Which levels occur, one bit each (``np.packbits``)."""
    return np.packbits(np.bincount(refs, minlength=nlevels) > 0)


def _sum_fused(parts: list[_FusedPart]) -> _FusedPart:
    rows = functools.reduce(_RowFacts.combine, [part.rows for part in parts])
    return _FusedPart(sum_pass2([part.pass2 for part in parts]), rows)


def _combine_fused(a: _FusedPart, b: _FusedPart) -> _FusedPart:
    return _sum_fused([a, b])


class _LevelCount:
    """The number of a term's levels, standing in for their labels (and its coder's level values) in the plan
    the workers get: with an integer range or known categories the codes need only that number, and a million
    labels made the plan ~17 MB to pickle on the client, send and unpickle on every worker."""

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size


def for_workers(plan: EncodingPlan) -> EncodingPlan:
    """The plan without the level labels and values the partitions do not read (see :class:`_LevelCount`)."""
    terms = []
    for term in plan.terms:
        if term.combos is None and all(c.first is not None or c.categories is not None for c in term.coders):
            coders = tuple(replace(c, levels=_LevelCount(c.levels.size)) for c in term.coders)
            term = replace(term, levels=_LevelCount(term.nlevels), coders=coders)
        terms.append(term)
    return replace(plan, terms=tuple(terms))


# --------------------------------------------------------------------------- when it applies
def _eligible(parsed: ParsedFormula, spec: SummarySpec, meta: pd.DataFrame) -> bool:
    """Whether no level, transform state or weight check has to be known before pass 2 (see the module docstring)."""
    if spec.weights is not None or spec.offset is not None or spec.transforms or spec.combos or not parsed.random:
        return False
    grouping = {term.factors[0] for term in parsed.random if len(term.factors) == 1}
    if len(grouping) != len({f for term in parsed.random for f in term.factors}) or any(
        len(term.factors) != 1 for term in parsed.random
    ):
        return False
    response = parsed.response
    if set(spec.level_columns) != grouping or response not in meta.columns or response in grouping:
        return False
    if response not in spec.numeric:
        return False
    for rhs in [parsed.fixed] + [term.expr for term in parsed.random]:
        terms = simple_terms(rhs)
        if terms is None or not set(terms[1]) <= set(spec.numeric) - grouping:
            return False
    return all(_coded(meta[name], spec.level_columns[name]) for name in grouping)


def _coded(column: pd.Series, categories: tuple | None) -> bool:
    dtype = column.dtype
    return categories is not None or (isinstance(dtype, np.dtype) and dtype.kind in "iu")


def _ranges(part: pd.DataFrame, columns: tuple[str, ...]) -> tuple[int, dict[str, tuple[int, int]]]:
    """A partition's rows and each integer column's (min, max); (max, min) sentinels when it is empty."""
    empty = (np.iinfo(np.int64).max, np.iinfo(np.int64).min)
    if not len(part):
        return 0, {name: empty for name in columns}
    return len(part), {name: (int(part[name].min()), int(part[name].max())) for name in columns}


def _parquet_ranges(path: str, columns: tuple[str, ...]) -> tuple[int, dict[str, tuple[int, int]]] | None:
    """Rows and each column's (min, max) from the Parquet files' footers (their row groups' statistics), without
    reading the columns; None when a file or row group lacks them (or the files cannot be listed so)."""
    import glob

    import pyarrow.parquet as pq

    try:
        files = sorted(glob.glob(path)) if glob.has_magic(path) else path
        metadata = [fragment.metadata for fragment in pq.ParquetDataset(files).fragments]
    except (OSError, ValueError, TypeError, ImportError):
        return None
    nrows, bounds = 0, {name: (np.iinfo(np.int64).max, np.iinfo(np.int64).min) for name in columns}
    for meta in metadata:
        for group in range(meta.num_row_groups):
            row_group = meta.row_group(group)
            nrows += row_group.num_rows
            chunks = {row_group.column(j).path_in_schema: row_group.column(j) for j in range(row_group.num_columns)}
            for name in columns:
                stats = chunks[name].statistics if name in chunks else None
                if stats is None or not stats.has_min_max or stats.null_count:
                    return None
                low, high = bounds[name]
                bounds[name] = (min(low, int(stats.min)), max(high, int(stats.max)))
    return nrows, bounds


def _every_category(categories: tuple | None) -> np.ndarray:
    """Every known category, as pass 1 would order them had each rows."""
    known = tuple(categories or ())
    return _ordered_levels(np.ones(len(known)), known)


def _combine_ranges(a: tuple, b: tuple) -> tuple:
    return a[0] + b[0], {k: (min(v[0], b[1][k][0]), max(v[1], b[1][k][1])) for k, v in a[1].items()}


def _range_levels(
    source: DataSource, spec: SummarySpec, grouping: list[str]
) -> tuple[dict[str, np.ndarray], bool] | None:
    """Every possible level of each grouping factor (categories, or the integers of the range), and
    whether a reduction over the id columns was needed (not when the Parquet files' statistics give
    the ranges); None when a range is empty or too wide for its rows."""
    integers = tuple(name for name in grouping if spec.level_columns[name] is None)
    levels = {name: _every_category(spec.level_columns[name]) for name in grouping if name not in integers}
    if not integers:
        return levels, False
    found = _parquet_ranges(source.path, integers) if source.path is not None else None
    reduced = found is None
    if found is None:
        found = map_reduce(source.partitions(list(integers)), _ranges, integers, _combine_ranges)
    nrows, bounds = found
    for name, (low, high) in bounds.items():
        if not nrows or high < low or high - low + 1 > RANGE_PER_ROW * nrows:
            return None
        levels[name] = np.arange(low, high + 1, dtype=source.meta[name].dtype)
    return levels, reduced


# --------------------------------------------------------------------------- the pass and its result
def _summary(
    spec: SummarySpec, meta: pd.DataFrame, levels: dict[str, np.ndarray], nrows: int, ncomplete: int, missing: dict
) -> DataSummary:
    return DataSummary(
        nrows=nrows,
        ncomplete=ncomplete,
        missing=missing,
        levels=levels,
        combos={},
        samples={
            name: np.arange(2).astype(meta[name].to_numpy().dtype) for name in spec.numeric
        },  # designs are plain columns
        transform_states={},
        categorical={name: categories is not None for name, categories in spec.level_columns.items()},
    )


def fused_pass(
    parsed: ParsedFormula,
    source: DataSource,
    contrasts: Mapping[str, str] | None,
    allow_as_many_ranef_as_obs: bool = False,
) -> FusedResult | None:
    """Pass 2 with pass 1 folded in, or None when the model needs pass 1 first (nothing has been computed then,
    except perhaps the ranges of integer ids) or the dropped levels would reorder the terms."""
    import time

    started = time.perf_counter()
    parsed = expand_formula_dot(parsed, source.data_meta)
    meta = source.meta
    spec = summary_spec(parsed, meta, source.weights, source.offset)
    if not _eligible(parsed, spec, meta):
        return None
    found = _range_levels(source, spec, sorted(spec.level_columns))
    if found is None:
        return None
    levels, ranged = found
    placeholder = _summary(spec, meta, levels, _PLACEHOLDER_ROWS, _PLACEHOLDER_ROWS, {})
    try:
        wide = encoding_plan(parsed, placeholder, spec, meta, contrasts, True)
    except MixedModelsError:  # e.g. a factor with one category: the two passes word the error
        return None
    ranges = time.perf_counter()
    total: _FusedPart = map_reduce(
        source.partitions(wide.read_columns),
        _fused_partition,
        for_workers(wide),
        _combine_fused,
        combine_many=_sum_fused,
        root=functools.partial(summed_in_pieces, combine_many=_sum_fused) if wide_first_to_rest(wide) else None,
    )
    fused = time.perf_counter()
    result = _narrowed(total, wide, levels, parsed, spec, meta, contrasts, allow_as_many_ranef_as_obs)
    if result is None:
        return None
    plan, summary, pass2 = result
    seconds = {"ranges": ranges - started, "pass 2": fused - ranges} if ranged else {"pass 2": fused - started}
    return FusedResult(plan, summary, pass2, seconds, 1 + int(ranged))


def _narrowed(
    total: _FusedPart,
    wide: EncodingPlan,
    levels: dict[str, np.ndarray],
    parsed: ParsedFormula,
    spec: SummarySpec,
    meta: pd.DataFrame,
    contrasts: Mapping[str, str] | None,
    allow_as_many_ranef_as_obs: bool,
) -> tuple[EncodingPlan, DataSummary, Pass2] | None:
    """The plan and summary of the observed levels (lme4's checks on the counts) and the blocks of those levels;
    None when dropping levels changes the order of the terms."""
    rows = total.rows
    keeps = [np.flatnonzero(np.unpackbits(bits, count=t.nlevels)) for bits, t in zip(rows.present, wide.terms)]
    observed = {
        term.term.factors[0]: _observed(levels[term.term.factors[0]], keep, spec.level_columns[term.term.factors[0]])
        for term, keep in zip(wide.terms, keeps)
    }
    summary = _summary(spec, meta, observed, rows.nrows, rows.ncomplete, rows.missing)
    plan = encoding_plan(parsed, summary, spec, meta, contrasts, allow_as_many_ranef_as_obs)
    if [t.term for t in plan.terms] != [t.term for t in wide.terms]:
        return None
    if all(keep.size == t.nlevels for keep, t in zip(keeps, wide.terms)):  # every level has rows: nothing to drop
        return plan, summary, total.pass2
    blocks = drop_levels(total.pass2.blocks, keeps, [t.nlevels for t in wide.terms], [t.ncols for t in wide.terms])
    return plan, summary, Pass2(blocks, total.pass2.facts)


def _observed(levels: np.ndarray, present: np.ndarray, categories: tuple | None) -> np.ndarray:
    """The levels with complete rows (``present``: their indices), in the order pass 1 gives them."""
    if categories is not None:
        counts = np.zeros(len(categories), dtype=np.int64)
        counts[present] = 1
        return _ordered_levels(counts, categories)
    if levels.dtype.kind in "iu":  # a range's integers: sorted and distinct already (a Categorical of 1M: 0.12 s)
        return levels[present]
    return _ordered_levels(levels[present], None)


def drop_levels(blocks: PartialBlocks, keeps: list[np.ndarray], nlevels: list[int], ncols: list[int]) -> PartialBlocks:
    """The blocks with only the ``keeps`` levels of each term (the others' rows and columns are zero)."""
    columns = [(keep[:, None] * k + np.arange(k)).ravel() for keep, k in zip(keeps, ncols)]
    offsets = np.cumsum([0] + [q * k for q, k in zip(nlevels[1:], ncols[1:])])
    rest = np.concatenate([o + c for o, c in zip(offsets, columns[1:])] + [np.zeros(0, dtype=np.int64)]).astype(
        np.int64
    )
    m_re, c = blocks.a22_re_xy.shape
    rows = np.concatenate([rest, m_re + np.arange(c)])
    return PartialBlocks(
        blocks.nobs,
        _take(blocks.a11, keeps[0], None),
        _take(blocks.a21, rows, columns[0]),
        _take(blocks.a22_re, rest, rest),
        blocks.a22_re_xy[rest],
        blocks.a22_xy,
    )


def _take(
    block: np.ndarray | sp.csr_array | LevelSpan, rows: np.ndarray, cols: np.ndarray | None
) -> np.ndarray | sp.csr_array:
    if isinstance(block, LevelSpan):
        block = block.tocsr()
    if isinstance(block, np.ndarray):
        return block[rows] if cols is None else block[np.ix_(rows, cols)]
    return sp.csr_array(block[rows] if cols is None else block[rows][:, cols])

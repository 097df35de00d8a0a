"""The size of the fixed-effects matrix X, known before it is built.

``y ~ a * b`` with 1,000 levels in each factor asks for a million columns:
formulaic would allocate them one factor at a time until the machine runs
out, and numpy would then fail on some small array ("Unable to allocate
7.81 KiB").  :func:`fixed_columns` counts the columns from the formula's
terms and the data's levels without building anything (an upper bound: a
factor's contrasts take one column fewer per level, and aliased columns are
dropped later), and :func:`check_fixed_size` refuses a design whose X would
not fit, saying which term is to blame.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._memory import MemoryEstimate, check_memory, memory_limit, worth_checking
from .frame import ModelFrame, formula_code, required_variables

__all__ = [
    "fixed_columns",
    "check_fixed_size",
    "X_COPIES",
    "REST_COPIES",
    "rest_block_size",
    "model_memory",
    "check_model_size",
    "sparse_factor_entries",
]

# X is held about three times over at the peak of its construction: formulaic's
# per-factor encodings, the stacked matrix, and the copy of the kept columns
# (measured with benchmarks/memory_estimate.py).
X_COPIES = 3


def _levels(values: pd.Series) -> int | None:
    """Number of levels of a column that a formula treats as a factor, or None for a numeric column."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return max(len(dtype.categories), 1)
    if pd.api.types.is_bool_dtype(dtype):
        return 2
    if pd.api.types.is_numeric_dtype(dtype):
        return None
    return max(int(values.nunique(dropna=True)), 1)


def _level_bound(dtype: Any, nrows: int) -> int:
    """An upper bound on :func:`_levels` (1 for a numeric column) of a column of type ``dtype`` and ``nrows``
    rows, read off the dtype alone: a column of text or objects has at most one level per row (counting them
    is what costs)."""
    if isinstance(dtype, np.dtype) and dtype.kind in "iuf":
        return 1
    if isinstance(dtype, pd.CategoricalDtype):
        return max(len(dtype.categories), 1)
    if pd.api.types.is_bool_dtype(dtype):
        return 2
    return 1 if pd.api.types.is_numeric_dtype(dtype) else max(nrows, 1)


def _variables(expr: str, columns: Any) -> set[str]:
    """The ``columns`` (the data's names) a factor of a term reads (a backticked name such as ``Sepal Width``
    is one column)."""
    if expr in columns:
        return {expr}
    try:
        return {name for name in required_variables(expr) if name in columns}
    except Exception:  # noqa: BLE001 - the formula's own errors are reported when X is built
        return set()


@functools.lru_cache(maxsize=256)
def _fixed_terms(rhs: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The terms of ``rhs`` as ``(term, factors' code)``, parsed by formulaic once per text (empty when
    it cannot parse it: the formula's own errors are reported when X is built)."""
    from formulaic import Formula

    try:
        terms = list(Formula(formula_code(rhs)[0]))
    except Exception:  # noqa: BLE001
        return ()
    return tuple((str(term), tuple(str(factor.expr) for factor in term.factors)) for term in terms)


def _term_columns(factors: tuple[str, ...], data: pd.DataFrame) -> int:
    """A term's columns: the product of its factors' :func:`_levels` (numbers count 1)."""
    count = 1
    for expr in factors:
        for name in _variables(expr, data.columns):
            count *= _levels(data[name]) or 1
    return count


def _column_bound(terms: tuple[tuple[str, tuple[str, ...]], ...], data: pd.DataFrame | ModelFrame) -> int:
    """An upper bound on X's columns: per term the product of its factors' :func:`_level_bound`, read off
    the columns' types (a model frame has read them already)."""
    names: Any
    if isinstance(data, ModelFrame):
        names, nrows, dtype_of = data.names, data.nrows, lambda name: data.numbers(name)[0]
    else:
        names, nrows, dtype_of = data.columns, len(data.index), lambda name: data[name].dtype
    total = 0
    for _, factors in terms:
        count = 1
        for expr in factors:
            for name in _variables(expr, names):
                count *= _level_bound(dtype_of(name), nrows)
        total += count
    return total


def fixed_columns(rhs: str, data: pd.DataFrame) -> list[tuple[str, int]]:
    """An upper bound on the columns of X per term of ``rhs`` (``[(term, columns), ...]``).

    A term's columns are the product of its factors' level counts (numeric
    factors count 1; a call such as ``poly(x, 3)`` counts 1 per column it
    names, an underestimate that does not matter for the size of X).
    """
    return [(term, _term_columns(factors, data)) for term, factors in _fixed_terms(rhs)]


def _fixed_estimate(nrows: int, total: int) -> MemoryEstimate:
    estimate = MemoryEstimate().add(f"X, {nrows:,} rows x up to {total:,} columns", X_COPIES * 8.0 * nrows * total)
    if total > nrows:
        estimate.add("its QR decomposition", 8.0 * min(nrows, total) * total)
    return estimate


def _fixed_bytes(nrows: int, total: int) -> float:
    """``_fixed_estimate(nrows, total).total`` (the same sum), without making the estimate's words."""
    return X_COPIES * 8.0 * nrows * total if total <= nrows else _fixed_estimate(nrows, total).total


def check_fixed_size(rhs: str, data: pd.DataFrame | ModelFrame, max_memory: Any = None) -> None:
    """Refuse a fixed-effects part whose X would not fit in memory, naming the largest term.

    First from a bound read off the columns' types (a column of text counted
    as one level per row): a design within the limit by that bound is within
    it by the count of levels, which is made (for text, by counting distinct
    values) only when the bound is over the limit.
    """
    terms = _fixed_terms(rhs)
    if not terms:
        return
    bound = _column_bound(terms, data)
    nrows = data.nrows if isinstance(data, ModelFrame) else len(data)
    nbytes = _fixed_bytes(nrows, bound)
    if not worth_checking(nbytes, max_memory):
        return
    limit, _ = memory_limit(max_memory)  # also checks max_memory=
    if limit is None or nbytes <= limit:
        return
    data = data.data if isinstance(data, ModelFrame) else data
    columns = fixed_columns(rhs, data)
    total = sum(count for _, count in columns)
    estimate = _fixed_estimate(len(data), total)
    term, count = max(columns, key=lambda item: item[1])
    factors = ", ".join(
        f"{v!r} ({_levels(data[v]):,} levels)" for v in sorted(_variables(term, data.columns)) if _levels(data[v])
    )
    advice = (
        f"the term {term!r} alone has up to {count:,} columns ({factors}) -- "
        f"for a factor with many levels a random effect such as (1 | {term}) is usually meant"
        if count > math.sqrt(max(total, 1)) and factors
        else "use fewer or coarser predictors"
    )
    check_memory(estimate, max_memory, "the fixed-effects matrix X", advice)


# The dense rest block (the random effects after the first term's, then X and y) is held
# about six times over at the peak of a fit: its dense Z'Z and the stacked A22 while it is
# built, then A22, the updated block of an evaluation, its Cholesky factor, the factor the
# optimizer keeps of its best point and the results' (measured with benchmarks/memory_estimate.py).
REST_COPIES = 6

# Above this many bytes as a dense m x m block of doubles, the rest block is held and factored
# sparsely (mixedmodels.linalg.sparse_rest); every model below it keeps its dense path.
SPARSE_REST_MIN_BYTES = 2e9
# On that path the factor's size depends on the fill-reducing order, known only once it is computed
# (seconds to minutes). The estimate reads the fill off the pattern's average degree instead: the share
# of the dense triangle that the minimum-degree order's factor fills, measured on random crossed designs
# (SuperLU's MMD; 2,000 to 20,000 levels, 1.5 to 7 rows per level): about 0.004 at 3 neighbours per
# level, 0.06-0.07 at 7 (the 20,000 x 20,000 design on 50,000 rows: 10.0 million entries), 0.38 at 25,
# 0.49 at 36, 0.56 at 44 -- interpolated in this table, each point a little above the measured share.
_FILL_DEGREE = (0.0, 2.0, 3.0, 7.0, 25.0, 45.0, 100.0, 1e9)
_FILL_SHARE = (0.0, 0.0, 0.005, 0.07, 0.40, 0.60, 0.85, 1.0)
# Bytes per entry of the factor at the peak: SuperLU's L and U (values and row indices, with the
# supernodes' padding) and its working storage (measured with benchmarks/memory_estimate.py).
SPARSE_FACTOR_BYTES = 40.0
# Above this many level pairs sharing a level of the first term, the pattern is not formed (it would be
# large itself): the factor is taken as the dense triangle.
_MAX_PATTERN_PAIRS = 50_000_000


def rest_block_size(terms: Sequence[Any], nfixef: int) -> int:
    """Rows of the dense rest block: every random effect after the first (largest) term's, X's columns and y."""
    return _rest_rows([len(t.levels) * t.z.shape[1] for t in terms], nfixef)


def _rest_rows(sizes: list[int], nfixef: int) -> int:
    """:func:`rest_block_size` from the terms' random-effects counts ``sizes`` (levels x columns)."""
    return sum(sorted(sizes, reverse=True)[1:]) + nfixef + 1


def model_memory(nobs: int, nfixef: int, terms: Sequence[Any], sparse_rest: bool = True) -> MemoryEstimate:
    """An estimate of a mixed model's peak memory from its design, before the cross-products are formed.

    Parts: X (``n p`` doubles), the random-effects columns (``n k`` per
    term, with the level indices), the first term's cross-product with the
    rest (sparse: at most one entry per row and pair of columns), and the
    dense rest block, ``REST_COPIES`` times ``m^2`` doubles.  The last
    dominates crossed designs: ``(1 | a) + (1 | b)`` with 20,000 levels
    each has ``m = 20,002`` and would need 19 GB; above
    ``SPARSE_REST_MIN_BYTES`` the block is factored sparsely instead
    (:mod:`mixedmodels.linalg.sparse_rest`), estimated from its expected
    fill (:func:`sparse_factor_entries`, ``SPARSE_FACTOR_BYTES`` per entry)
    -- for models that have that path (``sparse_rest``; glmer does not).
    """
    m, x, columns, first = _part_bytes(nobs, nfixef, terms)
    estimate = MemoryEstimate().add(f"X, {nobs:,} x {nfixef:,}", x)
    estimate.add("random-effects columns", columns)
    if terms:
        estimate.add("the first term's cross-products", first)
    if sparse_rest and 8.0 * m * m > SPARSE_REST_MIN_BYTES:
        nre = m - nfixef - 1
        entries = sparse_factor_entries(terms) + nre * (nfixef + 1)
        estimate.add(
            f"the sparse rest block's factor, {m:,} rows, ~{entries:,.0f} entries", SPARSE_FACTOR_BYTES * entries
        )
    else:
        estimate.add(f"the dense rest block, {m:,} x {m:,}, {REST_COPIES} copies", REST_COPIES * 8.0 * m * m)
    return estimate


def _part_bytes(nobs: int, nfixef: int, terms: Sequence[Any]) -> tuple[int, float, float, float]:
    """:func:`model_memory`'s rest block's rows ``m`` and its first three parts' bytes: X, the random-effects
    columns, the first term's cross-products (0 without terms)."""
    sizes = [len(t.levels) * t.z.shape[1] for t in terms]
    m = _rest_rows(sizes, nfixef)
    widths = [t.z.shape[1] for t in terms]
    first = 0.0
    if terms:
        k1 = widths[sizes.index(max(sizes))]  # the first largest term's, as max(terms, key=...) picks
        first = 12.0 * nobs * k1 * (sum(widths) - k1 + nfixef + 1)
    return m, X_COPIES * 8.0 * nobs * nfixef, sum(16.0 * nobs * k for k in widths), first


def _indicator(term: Any) -> sp.csc_array:
    """The rows x levels 0/1 matrix of a term's grouping factor (rows without a level left empty)."""
    refs = np.asarray(term.refs)
    rows = np.flatnonzero(refs >= 0)
    return sp.csc_array((np.ones(rows.size), (rows, refs[rows])), shape=(refs.size, max(len(term.levels), 1)))


def sparse_factor_entries(terms: Sequence[Any]) -> float:
    """Expected entries of the sparse rest block's factor (random-effects part), from its pattern's degree.

    The pattern joins two levels of the rest terms when they share a row or a
    level of the first (largest) term; its average degree gives the share of
    the dense triangle the factor fills (``_FILL_SHARE``), never less than the
    pattern itself.  Terms with ``k`` columns count ``k x k`` per pair of levels.
    """
    ordered = sorted(terms, key=lambda t: len(t.levels) * t.z.shape[1], reverse=True)
    first, rest = ordered[0], ordered[1:]
    if not rest:
        return 0.0
    k = max(t.z.shape[1] for t in rest)
    zr = sp.csc_array(sp.hstack([_indicator(t) for t in rest], format="csc"))
    nlevels = zr.shape[1]
    shared = sp.csc_array(zr.T @ _indicator(first))
    shared.data[:] = 1.0
    if float(np.sum(np.diff(shared.indptr).astype(float) ** 2)) > _MAX_PATTERN_PAIRS:
        return k * k * nlevels * (nlevels + 1) / 2.0
    nnz = sp.csr_array(zr.T @ zr + shared @ shared.T + sp.eye_array(nlevels)).nnz  # with the whole diagonal
    degree = nnz / nlevels - 1.0
    share = float(np.interp(degree, _FILL_DEGREE, _FILL_SHARE))
    return k * k * max(nnz / 2.0, share * nlevels * nlevels / 2.0)


def check_model_size(
    nobs: int, nfixef: int, terms: Sequence[Any], max_memory: Any = None, sparse_rest: bool = True
) -> None:
    """Refuse a mixed model whose cross-products would not fit in memory, before they are formed."""
    if not terms:
        return
    m, x, columns, first = _part_bytes(nobs, nfixef, terms)
    dense_rest = not (sparse_rest and 8.0 * m * m > SPARSE_REST_MIN_BYTES)
    total = sum((x, columns, first, REST_COPIES * 8.0 * m * m))  # model_memory's, without its words
    if dense_rest and not worth_checking(total, max_memory):
        return
    limit, _ = memory_limit(max_memory)
    if limit is None or (dense_rest and total <= limit):
        return
    estimate = model_memory(nobs, nfixef, terms, sparse_rest)
    if estimate.total <= limit:
        return  # what follows words the refusal
    biggest = sorted(terms, key=lambda t: len(t.levels) * t.z.shape[1], reverse=True)[1:2]
    if biggest:
        term = biggest[0]
        sparse = sparse_rest and 8.0 * m * m > SPARSE_REST_MIN_BYTES
        held = "factored sparsely" if sparse else "held as one dense block"
        advice = (
            f"its size comes from the random effects after the first term's, which are {held} "
            f"-- here {len(term.levels):,} levels of {term.group!r} crossed with the first term; "
            "fit a subset of the data or coarser grouping factors, or nest the factors if the design allows"
        )
    else:
        advice = "use fewer rows or fewer fixed-effects columns"
    check_memory(estimate, max_memory, "the mixed model's cross-products", advice)

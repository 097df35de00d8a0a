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

import math
from typing import Any, Sequence

import pandas as pd

from .._memory import MemoryEstimate, check_memory
from .frame import formula_code, required_variables

__all__ = ["fixed_columns", "check_fixed_size", "X_COPIES", "REST_COPIES", "rest_block_size", "model_memory",
           "check_model_size"]

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


def _variables(expr: str, data: pd.DataFrame) -> set[str]:
    """The data's columns a factor of a term reads (a backticked name such as ``Sepal Width`` is one column)."""
    if expr in data.columns:
        return {expr}
    try:
        return {name for name in required_variables(expr) if name in data.columns}
    except Exception:  # noqa: BLE001 - the formula's own errors are reported when X is built
        return set()


def fixed_columns(rhs: str, data: pd.DataFrame) -> list[tuple[str, int]]:
    """An upper bound on the columns of X per term of ``rhs`` (``[(term, columns), ...]``).

    A term's columns are the product of its factors' level counts (numeric
    factors count 1; a call such as ``poly(x, 3)`` counts 1 per column it
    names, an underestimate that does not matter for the size of X).
    """
    from formulaic import Formula

    try:
        terms = list(Formula(formula_code(rhs)[0]))
    except Exception:  # noqa: BLE001 - the formula's own errors are reported when X is built
        return []
    out = []
    for term in terms:
        count = 1
        for factor in term.factors:
            for name in _variables(str(factor.expr), data):
                count *= _levels(data[name]) or 1
        out.append((str(term), count))
    return out


def check_fixed_size(rhs: str, data: pd.DataFrame, max_memory: Any = None) -> None:
    """Refuse a fixed-effects part whose X would not fit in memory, naming the largest term."""
    columns = fixed_columns(rhs, data)
    if not columns:
        return
    total = sum(count for _, count in columns)
    n = len(data)
    estimate = MemoryEstimate().add(f"X, {n:,} rows x up to {total:,} columns", X_COPIES * 8.0 * n * total)
    if total > n:
        estimate.add("its QR decomposition", 8.0 * min(n, total) * total)
    term, count = max(columns, key=lambda item: item[1])
    factors = ", ".join(f"{v!r} ({_levels(data[v]):,} levels)" for v in sorted(_variables(term, data))
                        if _levels(data[v]))
    advice = (f"the term {term!r} alone has up to {count:,} columns ({factors}) -- "
              f"for a factor with many levels a random effect such as (1 | {term}) is usually meant"
              if count > math.sqrt(max(total, 1)) and factors else "use fewer or coarser predictors")
    check_memory(estimate, max_memory, "the fixed-effects matrix X", advice)


# The dense rest block (the random effects after the first term's, then X and y) is held
# about six times over at the peak of a fit: its dense Z'Z and the stacked A22 while it is
# built, then A22, the updated block of an evaluation, its Cholesky factor, the factor the
# optimizer keeps of its best point and the results' (measured with benchmarks/memory_estimate.py).
REST_COPIES = 6

# Above this many bytes as a dense m x m block of doubles, the rest block is held and factored
# sparsely (mixedmodels.linalg.sparse_rest); every model below it keeps its dense path.
SPARSE_REST_MIN_BYTES = 2e9
# On that path the factor's size depends on the fill-reducing order, known only after it is computed
# (seconds): the estimate takes SPARSE_FILL * nre^1.5 entries, the fill of the minimum-degree order of
# a random crossed design (20,000 x 20,000 levels on 50,000 rows: 10.0 million = 3.5 * 20,000^1.5),
# each held as SuperLU's L and U (values and row indices) with its supernodal slack and workspace,
# SPARSE_FACTOR_BYTES per entry (measured with benchmarks/memory_estimate.py). A rough figure: designs
# with many more rows per level fill more (up to the dense triangle, which bounds it).
SPARSE_FILL = 3.5
SPARSE_FACTOR_BYTES = 40.0


def rest_block_size(terms: Sequence[Any], nfixef: int) -> int:
    """Rows of the dense rest block: every random effect after the first (largest) term's, X's columns and y."""
    sizes = sorted((len(t.levels) * t.z.shape[1] for t in terms), reverse=True)
    return sum(sizes[1:]) + nfixef + 1


def model_memory(nobs: int, nfixef: int, terms: Sequence[Any]) -> MemoryEstimate:
    """An estimate of a mixed model's peak memory from its design, before the cross-products are formed.

    Parts: X (``n p`` doubles), the random-effects columns (``n k`` per
    term, with the level indices), the first term's cross-product with the
    rest (sparse: at most one entry per row and pair of columns), and the
    dense rest block, ``REST_COPIES`` times ``m^2`` doubles.  The last
    dominates crossed designs: ``(1 | a) + (1 | b)`` with 20,000 levels
    each has ``m = 20,002`` and would need 19 GB; above
    ``SPARSE_REST_MIN_BYTES`` the block is factored sparsely instead
    (:mod:`mixedmodels.linalg.sparse_rest`), estimated from its expected
    fill (``SPARSE_FILL``, ``SPARSE_FACTOR_BYTES``).
    """
    m = rest_block_size(terms, nfixef)
    estimate = MemoryEstimate().add(f"X, {nobs:,} x {nfixef:,}", X_COPIES * 8.0 * nobs * nfixef)
    estimate.add("random-effects columns", sum(16.0 * nobs * t.z.shape[1] for t in terms))
    if terms:
        k1 = max(terms, key=lambda t: len(t.levels) * t.z.shape[1]).z.shape[1]
        per_row = sum(t.z.shape[1] for t in terms) - k1 + nfixef + 1
        estimate.add("the first term's cross-products", 12.0 * nobs * k1 * per_row)
    if 8.0 * m * m > SPARSE_REST_MIN_BYTES:
        nre = m - nfixef - 1
        entries = min(SPARSE_FILL * nre**1.5, nre * (nre + 1) / 2.0) + nre * (nfixef + 1)
        estimate.add(f"the sparse rest block's factor, {m:,} rows, ~{entries:,.0f} entries", SPARSE_FACTOR_BYTES * entries)
    else:
        estimate.add(f"the dense rest block, {m:,} x {m:,}, {REST_COPIES} copies", REST_COPIES * 8.0 * m * m)
    return estimate


def check_model_size(nobs: int, nfixef: int, terms: Sequence[Any], max_memory: Any = None) -> None:
    """Refuse a mixed model whose cross-products would not fit in memory, before they are formed."""
    if not terms:
        return
    estimate = model_memory(nobs, nfixef, terms)
    biggest = sorted(terms, key=lambda t: len(t.levels) * t.z.shape[1], reverse=True)[1:2]
    if biggest:
        term = biggest[0]
        m = rest_block_size(terms, nfixef)
        held = "factored sparsely" if 8.0 * m * m > SPARSE_REST_MIN_BYTES else "held as one dense block"
        advice = (f"its size comes from the random effects after the first term's, which are {held} "
                  f"-- here {len(term.levels):,} levels of {term.group!r} crossed with the first term; "
                  "fit a subset of the data or coarser grouping factors, or nest the factors if the design allows")
    else:
        advice = "use fewer rows or fewer fixed-effects columns"
    check_memory(estimate, max_memory, "the mixed model's cross-products", advice)

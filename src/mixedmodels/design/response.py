"""The response of a formula: a column, an expression, ``cbind`` for binomial, or a two-level factor.

``build_response(lhs, data)`` evaluates the left-hand side with the same
functions as the right-hand side (:data:`~.transforms.CONTEXT`: ``log``, ``I()``,
``cbind`` ...).  A two-level factor, logical or string response becomes 0/1
with the first level as 0 (R's binomial convention); missing and non-finite
values are refused.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Container
from typing import Any

import numpy as np
import pandas as pd
from formulaic.transforms import TRANSFORMS
from formulaic.utils.layered_mapping import LayeredMapping
from formulaic.utils.stateful_transforms import stateful_eval

from ..errors import DataError, FormulaError
from .contrasts import as_labelled, is_boolean, observed_levels
from .fixed import run_formulaic
from .frame import (
    ModelFrame,
    check_columns,
    check_real,
    column_numbers,
    formula_code,
    frame_data,
    get_column,
    required_variables,
)
from .transforms import CONTEXT
from .values import formula_data

__all__ = ["build_response"]


def build_response(lhs: str, data: pd.DataFrame | ModelFrame) -> np.ndarray:
    """Evaluate the left-hand side of a formula.

    Returns a 1-d float64 array for a column or an expression (``log(y)``,
    ``I(y/10)``), an ``(n, 2)`` array for ``cbind(successes, failures)``.  A
    two-level factor, logical or string response becomes 0/1 with the first
    level as 0 (R's binomial convention).  ``data`` is checked as for
    :func:`build_design` (a ModelFrame is trusted).

    Raises
    ------
    DataError
        For a missing column, a non-numeric response with more than two
        levels, or non-finite values.
    """
    source = data
    if not isinstance(lhs, str) or not lhs.strip():
        raise FormulaError(f"the response must be a non-empty string, got {lhs!r}")
    text = lhs.strip()
    if isinstance(source, ModelFrame):
        names = source.names
        if text in names:  # a column: the model frame's own
            dtype, values = source.numbers(text)
            if isinstance(dtype, np.dtype) and dtype.kind in "iuf":  # _response_array's usual case, on the values
                response = np.ascontiguousarray(np.asarray(values, dtype=np.float64))
            else:
                response = _response_array(source.column(text), text, source.nrows)
            return _finite_response(response.copy() if source.borrowed else response, text)
        if (pair := _column_cbind(text, source, names)) is not None:  # without making the frame's DataFrame
            if not (pair.shape == (source.nrows, 2) and pair.flags.c_contiguous):  # (float64 by construction)
                pair = _response_array(pair, text, source.nrows)  # which would return such a pair as it is
            return _finite_response(pair, text)
    data, trusted = frame_data(data)
    variables = required_variables(text)
    if not trusted:
        check_columns(data, sorted(variables))
        check_real(data, sorted(variables))
    if text in data.columns:
        values = get_column(source, text)
    elif (pair := _column_cbind(text, source, data.columns)) is not None:
        values = pair
    else:
        code, aliases = formula_code(text)
        env = LayeredMapping(formula_data(data, variables, aliases), CONTEXT, TRANSFORMS)
        values = run_formulaic(lambda: stateful_eval(code, env, None, {}, None), f"the response {text!r}", text)
    return _finite_response(_response_array(values, text, len(data)), text)


_ARITHMETIC = {ast.Add: np.add, ast.Sub: np.subtract}


def _column_cbind(text: str, source: Any, names: Container) -> np.ndarray | None:
    """``cbind(a, b)`` whose arguments are numeric columns, numbers and their sums and differences
    (``cbind(incidence, size - incidence)``), evaluated on the columns directly: the same numbers as
    formulaic's evaluation (whole numbers are exact in float64) without its per-call set-up (~0.8 ms
    on cbpp).  ``names``: the columns of ``source``.  None for anything else, which takes the general
    evaluation."""
    arguments = _cbind_arguments(text)
    if arguments is None:
        return None
    read: dict[str, np.ndarray | None] = {}  # each column read once (cbpp's ``incidence`` is used twice)
    first = _column_arithmetic(arguments[0], source, names, read)
    second = _column_arithmetic(arguments[1], source, names, read)
    if first is None or second is None:
        return None
    if isinstance(first, np.ndarray) and isinstance(second, np.ndarray) and first.ndim == 1 == second.ndim:
        if first.size == second.size:  # two columns (the usual case): column_stack's copy, without its wrappers
            pair = np.empty((first.size, 2))
            pair[:, 0] = first
            pair[:, 1] = second
            return pair
    return np.column_stack(np.broadcast_arrays(first, second))


@functools.lru_cache(maxsize=256)
def _cbind_arguments(text: str) -> tuple[ast.expr, ast.expr] | None:
    """The two arguments of ``cbind(a, b)`` as parsed (by text, once: the trees are only read), else None."""
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        return None
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "cbind"):
        return None
    if len(node.args) != 2 or node.keywords:
        return None
    return node.args[0], node.args[1]


def _column_arithmetic(
    node: ast.AST, source: Any, names: Container, read: dict[str, np.ndarray | None]
) -> np.ndarray | float | None:
    if isinstance(node, ast.Name):
        if node.id not in names:
            return None
        if node.id not in read:
            read[node.id] = _exact_values(*column_numbers(source, node.id))  # a model frame's: read already
        return read[node.id]
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        left = _column_arithmetic(node.left, source, names, read)
        right = _column_arithmetic(node.right, source, names, read)
        if left is None or right is None:
            return None
        return _ARITHMETIC[type(node.op)](left, right)
    return None


def _exact_values(dtype: Any, values: np.ndarray | None) -> np.ndarray | None:
    """A column's values (as :func:`~.frame.column_numbers` reads them) as float64 when that is exact (integers,
    float64): the same numbers as pandas' arithmetic (and as ``Series.to_numpy(dtype=np.float64)``)."""
    exact = isinstance(dtype, np.dtype) and (dtype.kind in "iu" or dtype == np.float64)
    return np.asarray(values, dtype=np.float64) if exact else None


def _finite_response(response: np.ndarray, text: str) -> np.ndarray:
    if not np.logical_and.reduce(np.isfinite(response), axis=None):  # (.all(), without its Python wrapper)
        raise DataError(f"the response {text!r} has missing or non-finite values (NaN or infinite)")
    return response


def _response_array(values: Any, name: str, n: int) -> np.ndarray:
    """Float response from evaluated values (numeric, binary factor, or matrix)."""
    numeric = isinstance(values, pd.Series) and isinstance(values.dtype, np.dtype) and values.dtype.kind in "iuf"
    if numeric and len(values) == n:
        return np.ascontiguousarray(values.to_numpy(dtype=np.float64))  # a numeric column, the usual case
    if isinstance(values, pd.DataFrame):
        values = values.to_numpy()
    raw = getattr(values, "__wrapped__", values)
    if np.ndim(raw) == 2:
        array = np.asarray(raw, dtype=np.float64)
        array = array[:, 0] if array.shape[1] == 1 else array
    elif _is_non_numeric(raw):
        array = _binary(raw, name)
    else:
        array = np.asarray(raw, dtype=np.float64)
    if array.ndim == 0 or array.shape[0] != n:
        raise DataError(f"the response {name!r} must have one value per row of data ({n})")
    return np.ascontiguousarray(array)


def _is_non_numeric(values: Any) -> bool:
    dtype = getattr(values, "dtype", np.asarray(values).dtype)
    if isinstance(dtype, pd.CategoricalDtype) or is_boolean(values):
        return True
    if dtype == object:
        kind = pd.api.types.infer_dtype(values, skipna=True)
        return kind not in ("integer", "floating", "mixed-integer-float")
    return not pd.api.types.is_numeric_dtype(dtype)


def _binary(values: Any, name: str) -> np.ndarray:
    """0/1 from a two-level factor: the first level is 0 (R's binomial rule)."""
    if is_boolean(values):
        return np.asarray(pd.Series(values).astype("float64"), dtype=np.float64)
    labelled = as_labelled(values)
    levels = list(labelled.cat.categories)
    if len(levels) > 2:
        levels = observed_levels(labelled)
    if len(levels) > 2:
        raise DataError(
            f"the response {name!r} is non-numeric with {len(levels)} levels "
            f"({', '.join(map(str, levels[:6]))}{', ...' if len(levels) > 6 else ''}); "
            "a binomial response needs two levels (the first counts as failure) or numbers"
        )
    codes = pd.Categorical(labelled, categories=levels).codes
    out = (codes == 1).astype(np.float64)
    out[codes < 0] = np.nan
    return out

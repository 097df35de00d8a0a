"""Model matrices of an intercept and plain numeric columns, built without formulaic.

Most random-effects terms and many fixed-effects parts are ``1``, ``1 + Days``
or ``0 + x``: an intercept and numeric columns used as they are.  Sending such
text through formulaic (parse, then materialize) cost about a millisecond per
part, the largest piece of a small fit, for a matrix that is just the columns
side by side.  This module recognises that text and builds the matrix
directly; anything else (factors, calls, interactions, ``-``, backticks) is
left to formulaic.  Columns and values equal formulaic's: the intercept
first, then the columns in the order written (tested against formulaic).
"""

from __future__ import annotations

import functools
import keyword
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .frame import ModelFrame, column_numbers

__all__ = ["simple_terms", "numeric_columns", "simple_matrix"]


@functools.lru_cache(maxsize=512)
def simple_terms(rhs: str) -> tuple[bool, tuple[str, ...]] | None:
    """``(has_intercept, names)`` when ``rhs`` is ``1``/``0`` and bare names joined by ``+``.

    ``"Days"`` and ``"1 + Days"`` give ``(True, ("Days",))``, ``"0 + x + z"``
    gives ``(False, ("x", "z"))``.  None for any other text, for repeated names,
    for ``0`` together with ``1``, and when no column would be left, so that
    formulaic decides (and words its errors) as before.  Cached by text: the
    answer is a tuple and depends on the text alone.
    """
    tokens = [token.strip() for token in rhs.split("+")]
    markers = {t for t in tokens if t in ("0", "1")}
    names = tuple(t for t in tokens if t not in ("0", "1"))
    if len(markers) > 1 or not all(_plain_name(n) for n in names) or len(set(names)) < len(names):
        return None
    intercept = "0" not in markers
    if not intercept and not names:
        return None
    return intercept, names


def _plain_name(token: str) -> bool:
    """An ASCII identifier that Python reads as a variable (not a keyword such as ``True``)."""
    return token.isidentifier() and token.isascii() and not keyword.iskeyword(token)


def numeric_columns(data: pd.DataFrame | ModelFrame, names: Sequence[str]) -> list[np.ndarray] | None:
    """The named columns as float64 arrays, or None unless every one is a plain numeric column.

    Plain numeric: a NumPy integer or float dtype.  Booleans (factors in R),
    pandas' nullable and extension types, objects and strings go to formulaic.
    """
    columns = []
    for name in names:
        dtype, values = column_numbers(data, name)
        if not isinstance(dtype, np.dtype) or dtype.kind not in "iuf":
            return None
        columns.append(np.asarray(values, dtype=np.float64))  # Series.to_numpy(dtype=np.float64)'s conversion
    return columns


def simple_matrix(intercept: bool, columns: Sequence[np.ndarray], nrows: int) -> np.ndarray:
    """``[1, columns...]`` (or the columns alone) as a C-contiguous float64 ``(nrows, p)`` matrix."""
    matrix = np.empty((nrows, int(intercept) + len(columns)), dtype=np.float64)
    if intercept:
        matrix[:, 0] = 1.0
    for j, column in enumerate(columns, start=int(intercept)):
        matrix[:, j] = column
    return matrix

"""The functions a formula can call: R's, registered in formulaic's evaluation context.

formulaic evaluates each term in a context of data columns, then :data:`CONTEXT`, then its own
transforms.  :data:`CONTEXT` gives formulas R's names and R's meaning:

* ``log``, ``log2``, ``log10``, ``log1p``, ``exp``, ``expm1``, ``sqrt``, ``abs``: NumPy's;
* ``scale(x, center=True, scale=True)``, ``center(x)``, ``poly(x, degree, raw=False)``: formulaic's
  stateful transforms, which equal R's (``scale`` with the n - 1 SD, or dividing by
  ``sqrt(sum(x^2) / (n - 1))`` when ``center=False``; ``poly``'s orthogonal polynomials with
  R's three-term recurrence coefficients kept for new data);
* ``bs()``, ``ns()``: R's splines (:mod:`.splines`);
* ``factor(x)`` / ``as.factor(x)``: ``x`` as a factor (levels sorted, or the Categorical's order;
  ``levels=`` chooses them), coded with R's contrasts; ``as.numeric(f)``: a factor's level
  number (1, 2, ... in level order, R's ``as.numeric``), a number as it is; both stateful, so
  new data are coded with the fitted data's levels;
* ``I()``, ``offset()``, ``cbind()``, ``C(f, contr.sum)``, ``c(...)`` (a vector, for arguments
  such as ``knots = c(2, 5)``).

R's spellings (``as.numeric``, ``raw = TRUE``, ``Boundary.knots = ...``) reach these through
:func:`mixedmodels.formula.rsyntax.to_formulaic`: a dotted function name is looked up as written
(``CONTEXT["as.numeric"]``), a dotted keyword with underscores (``Boundary_knots``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from formulaic.transforms import TRANSFORMS
from formulaic.utils.stateful_transforms import stateful_transform

from ..errors import DataError
from .contrasts import C, ContrastNamespace, default_contrast, is_boolean
from .splines import bs, ns
from .values import level_label

__all__ = ["CONTEXT", "RESERVED", "factor", "as_numeric"]


def _offset(x: Any) -> np.ndarray:
    """``offset(z)``: a known term added to the linear predictor."""
    return np.asarray(x, dtype=np.float64)


def _cbind(*columns: Any) -> np.ndarray:
    """R's ``cbind`` for binomial responses: columns side by side."""
    return np.column_stack([np.asarray(c, dtype=np.float64) for c in columns])


def _c(*values: Any) -> np.ndarray:
    """R's ``c(...)``: the values as one vector."""
    return np.asarray(values)


def factor(x: Any, levels: Any = None) -> Any:
    """R's ``factor(x)``: ``x`` as a factor with R's default contrasts (an ordered one stays ordered)."""
    return C(x, default_contrast(x), levels=None if levels is None else list(np.asarray(levels).reshape(-1)))


@stateful_transform
def as_numeric(x: Any, _state: dict | None = None) -> np.ndarray:
    """R's ``as.numeric``: a factor's level numbers (1, 2, ...), logicals as 0/1, numbers as they are.

    A Categorical's levels are its categories (unused ones included, as R's
    ``levels(f)``); they are kept for new data.  Text is read as numbers, as R
    reads a character vector, and refused when it is not numbers.
    """
    state = {} if _state is None else _state
    values = x if isinstance(x, pd.Series) else pd.Series(np.asarray(x))
    if "levels" in state or isinstance(values.dtype, pd.CategoricalDtype):
        return _level_numbers(values, state)
    if is_boolean(values):
        return values.astype("float64").to_numpy()
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    numbers = pd.to_numeric(values, errors="coerce")
    text = values[numbers.isna() & values.notna()]
    if len(text):
        raise DataError(
            f"as.numeric() got text that is not a number ({text.iloc[0]!r}); for a factor's level "
            "numbers make the column a pandas Categorical, whose category order gives the levels"
        )
    return numbers.to_numpy(dtype=np.float64, na_value=np.nan)


def _level_numbers(values: pd.Series, state: dict) -> np.ndarray:
    """Level numbers (1-based) of a factor's values; the levels are learnt once, then checked."""
    if "levels" not in state:
        state["levels"] = [level_label(c) for c in values.cat.categories]
    position = {label: k + 1.0 for k, label in enumerate(state["levels"])}
    labels = values.astype(object).map(lambda v: v if pd.isna(v) else level_label(v))
    unknown = sorted({v for v in labels.dropna() if v not in position})
    if unknown:
        raise DataError(
            f"as.numeric(): level(s) {', '.join(map(repr, unknown))} were not levels of the fitted data "
            f"({', '.join(map(repr, state['levels']))})"
        )
    return labels.map(lambda v: np.nan if pd.isna(v) else position[v]).to_numpy(dtype=np.float64)


CONTEXT: dict[str, Any] = {
    "log": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "log1p": np.log1p,
    "exp": np.exp,
    "expm1": np.expm1,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "scale": TRANSFORMS["scale"],  # formulaic's stateful scale: mean and SD with ddof=1, as R
    "center": TRANSFORMS["center"],
    "poly": TRANSFORMS["poly"],
    "bs": bs,
    "ns": ns,
    "factor": factor,
    "as_factor": factor,
    "as_numeric": as_numeric,
    "I": TRANSFORMS["I"],
    "offset": _offset,
    "cbind": _cbind,
    "c": _c,
    "C": C,
    "contr": ContrastNamespace,
}

# Names formulaic may read as functions or namespaces, never as plain columns (the simple path skips them).
RESERVED = frozenset(CONTEXT) | frozenset(TRANSFORMS) | frozenset({"np", "numpy", "pd", "pandas", "math"})

"""How column values enter formulas: R's labels of levels, numbers as doubles, aliased names.

* :func:`level_label` is R's text of a level (``TRUE``, 15 significant digits);
* :func:`level_values` reads an object column mixing numbers and strings as
  text, so ``1`` and ``"1"`` are one level (grouping and fixed-effect factors);
* :func:`formula_data` gives formula code integer columns as float64 (R
  computes in doubles: ``I(x**2)`` must not wrap around) and the aliased
  columns of :func:`~.frame.alias_numeric_names`.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["level_label", "level_values", "formula_data", "kept_per_index"]


def kept_per_index(categories: pd.Index, kind: str, make: Callable[[pd.Index], Any]) -> Any:
    """``make(categories)``, kept for the same (immutable) Index object under the name ``kind``.

    A categorical column's categories are one Index shared by every fit of the column, and Arrow-backed
    string categories (pandas 3's default) cost ~10-40 us to convert each time.  Keyed by ``id`` and
    checked by a weak reference, so a new Index at a reused address is not mistaken for the old; at most
    ``_MAX_KEPT`` are kept.  ``make``'s result must be immutable (it is shared).
    """
    key = (id(categories), kind)
    kept = _KEPT.get(key)
    if kept is not None and kept[0]() is categories:
        return kept[1]
    value = make(categories)
    try:
        reference = weakref.ref(categories)
    except TypeError:  # not weakly referable: not kept
        return value
    if len(_KEPT) >= _MAX_KEPT:
        try:  # the oldest goes (another thread may be changing the dict too: then nothing goes)
            _KEPT.pop(next(iter(_KEPT)), None)
        except (RuntimeError, StopIteration):
            pass
    _KEPT[key] = (reference, value)
    return value


_KEPT: dict[tuple[int, str], tuple] = {}
_MAX_KEPT = 64


def level_label(value: Any) -> str:
    """R's text for a level: TRUE/FALSE for logicals, 15 significant digits for numbers."""
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.15g}"
    return str(value)


_MIXED_KINDS = frozenset({"mixed", "mixed-integer"})


def level_values(values: Any) -> Any:
    """The values whose levels a factor takes: an object column mixing numbers and strings as text.

    Such columns come from CSV files read in chunks (pandas' "mixed types"
    warning), where one chunk holds ``1`` and the next ``"1"``: both become the
    level ``"1"`` (R's text of a number, :func:`level_label`), and levels sort as
    text, as R's factor of a character vector does.  Anything else is returned
    unchanged; missing values stay missing.
    """
    if getattr(values, "dtype", None) != object:
        return values
    if pd.api.types.infer_dtype(values, skipna=True) not in _MIXED_KINDS:
        return values
    labels = [value if pd.isna(value) else level_label(value) for value in values]
    if isinstance(values, pd.Series):
        return pd.Series(labels, index=values.index, name=values.name, dtype=object)
    return np.array(labels, dtype=object)


def formula_data(
    data: pd.DataFrame, variables: frozenset[str], aliases: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """``data`` as formula code sees it: integer columns among ``variables`` as float64, plus aliases.

    R does arithmetic in doubles; NumPy keeps a column's integer type, so
    ``I(x**2)`` on an int32 column would wrap around silently.  Factor levels
    are unchanged (``C(x)`` labels 2.0 as "2", as 2).  ``aliases`` maps extra
    names to columns (see :func:`~.frame.alias_numeric_names`).  ``data``
    itself is not modified: new columns go into a shallow copy.
    """
    names = [name for name in sorted(variables) if name in data.columns and _is_integer(data[name])]
    if not names and not aliases:
        return data
    out = data.copy(deep=False)
    for name in names:
        out[name] = data[name].to_numpy(dtype=np.float64, na_value=np.nan)
    for alias, name in (aliases or {}).items():
        out[alias] = out[name]
    return out


def _is_integer(column: Any) -> bool:
    """NumPy and pandas (nullable) integer columns (booleans, which are factors, are not integers here)."""
    dtype = getattr(column, "dtype", None)
    return dtype is not None and pd.api.types.is_integer_dtype(dtype)

"""Tables other than pandas DataFrames, converted at the entry: polars DataFrames and pyarrow Tables.

The model-building code works on pandas; a polars ``DataFrame`` or a pyarrow
``Table`` is converted once where the data come in (``to_pandas()``, which
keeps categorical / dictionary columns as pandas Categoricals).  Neither
library is imported here: a table is recognised by the module its type
comes from, so ``import mixedmodels`` never imports polars or pyarrow.
"""

from __future__ import annotations

from typing import Any

__all__ = ["as_pandas", "is_polars_frame", "is_arrow_table"]


def _module(data: Any) -> str:
    return type(data).__module__ or ""


def is_polars_frame(data: Any) -> bool:
    """True for a polars (eager) ``DataFrame``."""
    return _module(data).split(".")[0] == "polars" and type(data).__name__ == "DataFrame"


def is_arrow_table(data: Any) -> bool:
    """True for a pyarrow ``Table``."""
    return _module(data).split(".")[0] == "pyarrow" and type(data).__name__ == "Table"


def as_pandas(data: Any) -> Any:
    """``data`` as a pandas DataFrame when it is a polars DataFrame or a pyarrow Table; anything else as it is.

    The input is not modified; the conversion is a new frame with a default
    (positional) row index, as neither library has row labels.
    """
    if is_polars_frame(data) or is_arrow_table(data):
        return data.to_pandas()
    return data

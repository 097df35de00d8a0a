"""Tables other than pandas DataFrames: polars DataFrames and pyarrow Tables converted at the entry, Dask recognised.

The model-building code works on pandas; a polars ``DataFrame`` or a pyarrow
``Table`` is converted once where the data come in (``to_pandas()``, which
keeps categorical / dictionary columns as pandas Categoricals).  A dask
collection, or a path of Parquet files, is not converted: ``lmer`` and
``glmer`` hand it to :mod:`mixedmodels.dask` (:func:`is_dask_input`).  No
library is imported here: a table is recognised by the module its type
comes from, so ``import mixedmodels`` never imports polars, pyarrow or dask.
"""

from __future__ import annotations

import os
from typing import Any

from .._validate import Anything, argument_kinds

__all__ = ["as_pandas", "is_polars_frame", "is_arrow_table", "is_dask_collection", "is_dask_input"]


def _module(data: Any) -> str:
    return type(data).__module__ or ""


def is_polars_frame(data: Any) -> bool:
    """True for a polars (eager) ``DataFrame``."""
    return _module(data).split(".")[0] == "polars" and type(data).__name__ == "DataFrame"


def is_arrow_table(data: Any) -> bool:
    """True for a pyarrow ``Table``."""
    return _module(data).split(".")[0] == "pyarrow" and type(data).__name__ == "Table"


_PREDICATE = Anything("a predicate: any value gets an answer, True or False")


@argument_kinds(data=_PREDICATE)
def is_dask_collection(data: Any) -> bool:
    """True for a dask collection (DataFrame, Series, ...)."""
    return _module(data).split(".")[0] == "dask" and hasattr(data, "__dask_graph__")


@argument_kinds(data=_PREDICATE)
def is_dask_input(data: Any) -> bool:
    """True for data that are fitted on Dask: a dask collection, or a path / glob string (Parquet)."""
    return is_dask_collection(data) or isinstance(data, (str, os.PathLike))


def as_pandas(data: Any) -> Any:
    """``data`` as a pandas DataFrame when it is a polars DataFrame or a pyarrow Table; anything else as it is.

    The input is not modified; the conversion is a new frame with a default
    (positional) row index, as neither library has row labels.
    """
    if is_polars_frame(data) or is_arrow_table(data):
        return data.to_pandas()
    return data

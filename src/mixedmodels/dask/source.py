"""Where the rows come from: a dask DataFrame, or Parquet files read with dask; weights and offset as columns.

On Dask, per-row arguments cannot be arrays in the client's memory: prior
weights and an ``offset=`` are the names of columns (or dask Series that line
up with the data's partitions, which are added as columns).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..errors import DataError
from ..design.tables import is_dask_collection

__all__ = ["DataSource", "read_data"]

_WEIGHTS, _OFFSET = "(weights)", "(offset)"


def read_data(data: Any) -> Any:
    """A dask DataFrame from one, or from a path / glob of Parquet files."""
    try:
        import dask.dataframe as dd
    except ImportError:
        raise DataError(
            f"data given as a path ({os.fspath(data)!r}) are read as Parquet files with dask, which is not "
            "installed: pip install 'mixedmodels[dask]' (or read the file into a pandas DataFrame)"
        ) from None

    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        hint = "give a Parquet file, a folder of them or a glob such as 'ratings/*.parquet'"
        try:
            frame = dd.read_parquet(path)
        except (FileNotFoundError, OSError, IndexError, ValueError) as exc:
            raise DataError(
                f"cannot read Parquet data from {path!r}: {' '.join(str(exc).split()) or type(exc).__name__}; {hint}"
            ) from None
        if len(frame.columns) == 0:
            raise DataError(f"no Parquet data found at {path!r}; {hint}")
        return frame
    if isinstance(data, dd.DataFrame):
        return data
    if is_dask_collection(data):
        raise DataError(
            f"data must be a dask DataFrame, not a {type(data).__name__}; for one column use series.to_frame()"
        )
    raise DataError(f"data must be a dask DataFrame or a path to Parquet files, not {type(data).__name__}")


@dataclass(frozen=True)
class DataSource:
    """The data of a fit on Dask and the columns holding prior weights and an offset (None: none).

    ``frame`` is the dask DataFrame the passes read (with weights or offset
    given as dask Series added as columns named ``(weights)``, ``(offset)``).
    """

    frame: Any
    weights: str | None
    offset: str | None
    path: str | None = None  # the Parquet files' path (or glob) the frame was read from, if given so

    @classmethod
    def make(cls, data: Any, weights: Any = None, offset: Any = None) -> "DataSource":
        frame = read_data(data)
        frame, weights_column = _as_column(frame, weights, "weights", _WEIGHTS)
        frame, offset_column = _as_column(frame, offset, "offset", _OFFSET)
        path = os.fspath(data) if isinstance(data, (str, os.PathLike)) else None
        return cls(frame, weights_column, offset_column, path)

    @property
    def meta(self) -> pd.DataFrame:
        """An empty pandas frame with the data's columns and types (dask's metadata; no rows are read)."""
        return self.frame._meta

    @property
    def data_meta(self) -> pd.DataFrame:
        """:attr:`meta` without the columns added for weights or an offset given as dask Series (what ``.`` means)."""
        added = [name for name in (_WEIGHTS, _OFFSET) if name in self.meta.columns]
        return self.meta.drop(columns=added) if added else self.meta

    def partitions(self, columns: list[str]) -> list[Any]:
        """One delayed pandas DataFrame per partition, with only ``columns`` read."""
        return list(self.frame[columns].to_delayed(optimize_graph=True))


def _as_column(frame: Any, values: Any, what: str, name: str) -> tuple[Any, str | None]:
    """The column holding ``values`` (a column name, or a dask Series added under ``name``)."""
    if values is None:
        return frame, None
    if isinstance(values, str):
        return frame, values
    if is_dask_collection(values) and hasattr(values, "to_frame"):
        return frame.assign(**{name: values}), name
    raise DataError(
        f"on Dask, {what} must be the name of a column of the data (or a dask Series lined up with it), "
        f"not {type(values).__name__}"
    )

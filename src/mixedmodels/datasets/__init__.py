"""Data sets bundled with mixedmodels (from lme4's documentation and textbooks).

``load(name)`` returns a pandas DataFrame with factor columns as Categoricals in
R's level order (ordered where R's factor is ordered); ``list()`` names them.
"""

from __future__ import annotations

import builtins
import json
from importlib import resources

import pandas as pd

from ..errors import DataError

__all__ = ["load", "list", "schema"]

_DATA = resources.files(__package__) / "data"


def list() -> builtins.list[str]:  # noqa: A001 - mirrors R's data() listing
    """Names of the bundled data sets, sorted case-insensitively."""
    names = [p.name[: -len(".csv")] for p in _DATA.iterdir() if p.name.endswith(".csv")]
    return sorted(names, key=str.lower)


def _resolve(name: str) -> str:
    """Map a case-insensitive data-set name to its bundled spelling."""
    available = list()
    by_lower = {n.lower(): n for n in available}
    if not isinstance(name, str) or name.lower() not in by_lower:
        raise DataError(
            f"no bundled data set named {name!r}; choose one of: {', '.join(available)}"
        )
    return by_lower[name.lower()]


def schema(name: str) -> dict:
    """The column schema of a bundled data set (type, levels, ordered)."""
    path = _DATA / f"{_resolve(name)}.schema.json"
    return json.loads(path.read_text())


def load(name: str) -> pd.DataFrame:
    """Load a bundled data set as a DataFrame with R's factor levels applied.

    Parameters
    ----------
    name : str
        Case-insensitive name, e.g. ``"sleepstudy"`` or ``"Penicillin"``.
    """
    real = _resolve(name)
    columns = schema(real)
    dtypes = {col: "string" for col, spec in columns.items() if spec["type"] in ("factor", "character")}
    with (_DATA / f"{real}.csv").open("rb") as handle:
        frame = pd.read_csv(handle, dtype=dtypes)
    for col, spec in columns.items():
        kind = spec["type"]
        if kind == "factor":
            dtype = pd.CategoricalDtype(spec["levels"], ordered=bool(spec.get("ordered")))
            frame[col] = frame[col].astype(object).astype(dtype)
        elif kind == "integer":
            frame[col] = frame[col].astype("int64") if not frame[col].isna().any() else frame[col]
        elif kind == "logical":
            frame[col] = frame[col].astype("boolean")
        elif kind == "numeric":
            frame[col] = frame[col].astype("float64")
    return frame

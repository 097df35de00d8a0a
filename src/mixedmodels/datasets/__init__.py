"""Data sets bundled with mixedmodels (from lme4's documentation and textbooks).

``load(name)`` returns a pandas DataFrame with factor columns as Categoricals in
R's level order (ordered where R's factor is ordered); ``list()`` names them.

Sources (each CSV is the R object as distributed, exported with its factor levels):

- lme4: ``sleepstudy`` (Belenky et al. 2003), ``Dyestuff``, ``Dyestuff2``, ``Penicillin``,
  ``Pastes`` (Davies and Goldsmith 1972), ``InstEval``, ``cbpp`` (Lesnoff et al. 2004),
  ``grouseticks`` (Elston et al. 2001), ``VerbAgg`` (De Boeck and Wilson 2004).
- nlme (Pinheiro and Bates 2000, *Mixed-Effects Models in S and S-PLUS*, appendix A):
  ``Orthodont`` (Potthoff and Roy 1964), ``BodyWeight`` (Crowder and Hand 1990),
  ``Ovary`` (Pierson and Ginther 1987). Subject, Rat and Mare are ordered factors in
  nlme's order (by the groups' response), kept as such.
- glmmTMB: ``Owls`` (Roulin and Bersier 2007, *Animal Behaviour* 74, 1099-1106; the
  data as provided by Zuur et al. 2009).
- R's datasets package: ``iris`` (Anderson 1935, Fisher 1936).

The numbers are measurements published in the works cited; the R packages
distributing them are GPL (lme4, nlme) or AGPL (glmmTMB). Regenerate the five
non-lme4 sets with ``Rscript tests/reference/make_datasets.R``.
"""

from __future__ import annotations

import builtins
import json
from importlib import resources

import pandas as pd

from ..errors import DataError
from .._validate import check_arguments

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
        raise DataError(f"no bundled data set named {name!r}; choose one of: {', '.join(available)}")
    return by_lower[name.lower()]


def schema(name: str) -> dict:
    """The column schema of a bundled data set (type, levels, ordered)."""
    check_arguments(locals())
    path = _DATA / f"{_resolve(name)}.schema.json"
    return json.loads(path.read_text())


def load(name: str) -> pd.DataFrame:
    """Load a bundled data set as a DataFrame with R's factor levels applied.

    Parameters
    ----------
    name : str
        Case-insensitive name, e.g. ``"sleepstudy"`` or ``"Penicillin"``.
    """
    check_arguments(locals())
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

"""Input and output for the command line: data files, JSON results, simulate options.

Kept apart from :mod:`mixedmodels.cli` so the commands stay thin and these
pieces can be tested and reused on their own.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd

from .errors import DataError
from .fitted import Fit

__all__ = ["read_table", "as_factors", "results_to_json", "truth_to_json", "parse_simulate_options", "plain"]

_CSV = {".csv", ".txt"}
_TSV = {".tsv", ".tab"}
_PARQUET = {".parquet", ".pq"}
_COMPRESSED = {".gz", ".bz2", ".xz", ".zip", ".zst"}


# --------------------------------------------------------------------------- reading data
def _kind(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes = suffixes[:-1]
    suffix = suffixes[-1] if suffixes else ""
    for kind, known in (("csv", _CSV), ("tsv", _TSV), ("parquet", _PARQUET)):
        if suffix in known:
            return kind
    raise DataError(f"cannot tell the format of {str(path)!r} from its extension; use .csv, .tsv or .parquet")


def _read_parquet(path: Path) -> pd.DataFrame:
    if importlib.util.find_spec("pyarrow") is None and importlib.util.find_spec("fastparquet") is None:
        raise DataError(f"reading Parquet ({path.name}) needs pyarrow: pip install pyarrow (or save the data as CSV)")
    return pd.read_parquet(path)


def read_table(path: str | Path, factors: Sequence[str] = ()) -> pd.DataFrame:
    """Read a CSV, TSV or Parquet file (``"-"``: CSV from stdin) and mark factor columns.

    Text columns become factors (Categoricals with sorted levels, as R's
    ``factor()``); ``factors`` names more columns to treat as factors
    (numeric codes such as subject numbers).

    Raises
    ------
    DataError
        For a missing or unreadable file, an unknown extension, or a
        ``factors`` name that is not a column.
    """
    where = "standard input" if str(path) == "-" else str(path)
    try:
        if str(path) == "-":  # bytes, decoded as UTF-8 here: binary input is an error, not surrogates
            frame = pd.read_csv(getattr(sys.stdin, "buffer", sys.stdin), encoding="utf-8")
        else:
            frame = _read_file(Path(path))
    except FileNotFoundError:
        raise DataError(f"data file {where!r} not found") from None
    except IsADirectoryError:
        raise DataError(f"{where!r} is a folder, not a data file") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"data file {where!r} is empty") from None
    except UnicodeDecodeError:
        raise DataError(f"cannot read {where!r}: it is not UTF-8 text (a CSV or TSV file is expected)") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"cannot read {where!r}: {' '.join(str(exc).split())}") from None
    if frame.shape[1] == 0 or len(frame) == 0:
        raise DataError(f"data file {where!r} has no rows")
    return as_factors(frame, factors)


def _read_file(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise FileNotFoundError(path)
    if path.is_dir():
        raise IsADirectoryError(path)
    kind = _kind(path)
    if kind == "parquet":
        return _read_parquet(path)
    return pd.read_csv(path, sep="\t" if kind == "tsv" else ",")


def _factor(values: pd.Series) -> pd.Categorical:
    """R's factor(): levels are the sorted distinct values (numbers sorted as numbers)."""
    present = values.dropna()
    if pd.api.types.is_float_dtype(values) and np.all(np.mod(present, 1) == 0):
        values = values.astype("Int64")  # 308.0 -> "308"
        present = values.dropna()
    levels = sorted(pd.unique(present))
    labels = [str(v) for v in levels]
    text = values.map(lambda v: None if pd.isna(v) else str(v), na_action="ignore")
    return pd.Categorical(text.astype(object), categories=labels)


def as_factors(frame: pd.DataFrame, factors: Sequence[str] = ()) -> pd.DataFrame:
    """A copy with text columns and the named columns as Categoricals (R's factors)."""
    missing = [f for f in factors if f not in frame.columns]
    if missing:
        raise DataError(
            f"--factor {missing[0]!r} is not a column of the data; columns are: {', '.join(map(str, frame.columns))}"
        )
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if isinstance(values.dtype, pd.CategoricalDtype) and column not in factors:
            continue
        text = pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)
        if column in factors or (text and not pd.api.types.is_bool_dtype(values)):
            out[column] = _factor(values)
    return out


# --------------------------------------------------------------------------- JSON
def plain(value: Any) -> Any:
    """JSON-ready Python values: numpy scalars unboxed, NaN and inf as null, frames as dicts."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, pd.Series):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, pd.DataFrame):
        return {str(i): plain(row) for i, row in value.iterrows()}
    if isinstance(value, (np.ndarray, list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _optinfo(info: Any) -> dict:
    if dataclasses.is_dataclass(info):
        fields = {f.name: getattr(info, f.name) for f in dataclasses.fields(info) if f.name != "settings"}
    else:
        fields = dict(vars(info))
    fields["converged"] = getattr(info, "converged", None)
    return fields


def _maybe(result: Any, name: str) -> Any:
    value = getattr(result, name, None)
    return value() if callable(value) else value


def results_to_json(result: Fit, ddf: str | None = None) -> dict:
    """Every number of the results contract as JSON-ready values.

    ``vcov`` and ``ranef`` are nested objects (``vcov[row][column]``,
    ``ranef[group][level][column]``); ``varcorr`` a list of rows as lme4's
    ``as.data.frame(VarCorr(m))``; with ``ddf`` also ``coef_table``.
    """
    family = getattr(result, "family", None)
    out = {
        "class": type(result).__name__,
        "formula": result.formula,
        "family": str(getattr(family, "name", family)) if family is not None else "gaussian",
        "REML": bool(getattr(result, "REML", False)),
        "nobs": result.nobs,
        "ngroups": result.ngroups,
        "fixef": result.fixef,
        "se": result.se,
        "vcov": result.vcov,
        "theta": np.asarray(result.theta),
        "sigma": result.sigma,
        "varcorr": result.varcorr.to_dict(orient="records"),
        "ranef": result.ranef(),
        **{name: _maybe(result, name) for name in ("objective", "loglik", "aic", "bic", "deviance")},
        "is_singular": bool(result.is_singular),
        "optinfo": _optinfo(result.optinfo),
    }
    if ddf:
        out["coef_table"] = result.coef_table(ddf=ddf)
    return plain(out)


def truth_to_json(truth: Any) -> dict:
    """The generating parameters of a simulated data set (:class:`~mixedmodels.planning.study.DesignTruth`)."""
    out = {
        "formula": truth.formula,
        "fixef": truth.fixef,
        "sigma": truth.sigma,
        "group_cov": truth.group_cov,
        "group_effects": truth.group_effects,
        "outlier_groups": list(truth.outlier_groups),
    }
    if truth.item_cov is not None:
        out["item_cov"] = truth.item_cov
        out["item_effects"] = truth.item_effects
    return plain(out)


# --------------------------------------------------------------------------- simulate options
def _number(text: str, option: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a number", param_hint=option) from None


_MAX_TRIAL_VALUES = 1_000_000


def _whole(text: str, option: str) -> int:
    value = _number(text, option)
    if not math.isfinite(value) or value != int(value):
        raise click.BadParameter(f"{text!r} is not a whole number", param_hint=option)
    return int(value)


def _pair(text: str, option: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise click.BadParameter(f"expected NAME=VALUE, got {text!r}", param_hint=option)
    return key.strip(), value.strip()


def _levels(text: str, option: str) -> list[str] | dict[str, float]:
    """'A,B' -> ['A', 'B']; 'A:-0.5,B:0.5' -> {'A': -0.5, 'B': 0.5}."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if all(":" in p for p in parts):
        return {p.rpartition(":")[0]: _number(p.rpartition(":")[2], option) for p in parts}
    return parts


def _conditions(values: Sequence[str], option: str) -> dict | None:
    out = {}
    for text in values:
        name, levels = _pair(text, option)
        out[name] = _levels(levels, option)
    return out or None


def _covariate(text: str, option: str) -> float | list[float]:
    """'1.5' (an SD), '0:9' (trial values 0..9) or '0,1,3' (trial values)."""
    if "," in text:
        return [_number(v, option) for v in text.split(",") if v.strip()]
    if ":" in text:
        start, _, stop = text.partition(":")
        a, b = _whole(start, option), _whole(stop, option)
        if abs(b - a) >= _MAX_TRIAL_VALUES:
            raise click.BadParameter(
                f"{text!r} gives {abs(b - a) + 1:,} trial values; at most {_MAX_TRIAL_VALUES:,}", param_hint=option
            )
        return list(range(a, b + 1) if b >= a else range(a, b - 1, -1))
    return _number(text, option)


def _numbers(values: Sequence[str], option: str) -> dict[str, float] | None:
    out = {}
    for text in values:
        key, value = _pair(text, option)
        out[key] = _number(value, option)
    return out or None


def _sds(values: Sequence[str], option: str) -> dict[str, float] | float:
    out: dict[str, float] = {}
    for text in values:
        if "=" in text:
            key, value = _pair(text, option)
            out[key] = _number(value, option)
        else:
            out["(Intercept)"] = _number(text, option)
    return out or 0.0


def _n_obs(text: str) -> int | list[int]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        counts = [int(p) for p in parts]
    except ValueError:
        raise click.BadParameter(f"expected whole numbers, got {text!r}", param_hint="--obs") from None
    if not counts:
        raise click.BadParameter("give a number of trials", param_hint="--obs")
    return counts[0] if len(counts) == 1 else counts


def parse_simulate_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of :func:`~mixedmodels.simulate_design` from ``mixedmodels simulate`` options."""
    covariates = {}
    for text in options.get("covariate", ()):
        name, value = _pair(text, "--covariate")
        covariates[name] = _covariate(value, "--covariate")
    return {
        "n_groups": options["n_groups"],
        "n_obs": _n_obs(options["n_obs"]),
        "n_items": options.get("n_items"),
        "within": _conditions(options.get("within", ()), "--within"),
        "between": _conditions(options.get("between", ()), "--between"),
        "between_items": _conditions(options.get("between_items", ()), "--between-items"),
        "covariates": covariates or None,
        "fixed": _numbers(options.get("fixed", ()), "--fixed"),
        "group_sd": _sds(options.get("group_sd", ()), "--group-sd"),
        "group_corr": options.get("group_corr", 0.0),
        "item_sd": _sds(options.get("item_sd", ()), "--item-sd"),
        "item_corr": options.get("item_corr", 0.0),
        "sigma": options.get("sigma", 1.0),
        "outliers": options.get("outliers", 0),
        "outlier_shift": _numbers(options.get("outlier_shift", ()), "--outlier-shift"),
        "response": options.get("response", "y"),
        "group": options.get("group", "participant"),
        "item": options.get("item", "item"),
        "seed": options.get("seed"),
    }

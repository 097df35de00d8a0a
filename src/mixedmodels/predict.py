"""Predictions from a fitted model, with all, none or some of the random effects (lme4's predict).

For a row with fixed-effects covariates ``x`` and random-effects covariates
``z_k`` in level ``l_k`` of grouping factor ``k``, the linear predictor is

    eta = x' beta + offset + sum_{k in re_form} z_k' b_{k, l_k}

where ``b`` are the conditional modes of the random effects.  ``re_form``
picks the terms: ``None`` (all, lme4's ``re.form = NULL``), ``"~0"`` or
``False`` (none, ``re.form = NA``: the population-level prediction) or a
formula of random-effects terms such as ``"~ (1 | Subject)"``, which keeps only
the matching columns of the model's terms for that grouping factor (so
``(1 | Subject)`` on a ``(Days | Subject)`` fit uses the intercept deviations
only, as lme4 does).  On the response scale (``type="response"``) a GLMM's
inverse link is applied: ``mu = g^-1(eta)``; for linear models both scales agree.

New data go through the same stateful transforms as the fit (``scale()``
uses the training mean and SD, factors keep their training levels and
contrasts).  A level of a grouping factor that was not in the fit has no
conditional mode: with ``allow_new_levels=True`` its random effects are 0 (the
population prediction), otherwise a :class:`~mixedmodels.errors.DataError`
names the level.  Rows with a missing value in a needed column give NaN
(R's ``na.pass``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .design.fixed import build_design
from .design.inputs import ModelInputs
from .errors import DataError, FormulaError, MixedModelsError, ModelSpecError
from .fitted import Fit
from .formula import parse_formula, with_bar_parentheses
from ._validate import check_bool

__all__ = ["predict", "linear_predictor", "select_terms", "TermSelection", "inverse_link", "match_levels", "new_offset"]

_NO_RE = ("~0", "~ 0", "0", "~-1", "NA", "~NA", "~ NA", "~ -1")


@dataclass(frozen=True)
class TermSelection:
    """Which columns of which random-effects term enter a prediction.

    ``term`` indexes ``result.terms`` (block order); ``columns`` indexes that
    term's columns (``term.column_names``).
    """

    term: int
    columns: tuple[int, ...]


def predict(
    result: Fit,
    newdata: pd.DataFrame | None = None,
    *,
    re_form: str | bool | None = None,
    allow_new_levels: bool = False,
    type: str = "response",
    offset: Any = None,
) -> pd.Series:
    """Predicted values of a fitted model (lme4's ``predict.merMod``).

    Parameters
    ----------
    result : LmerResults, GlmerResults, LmResults or GlmResults
        A fitted model.
    newdata : DataFrame, optional
        Rows to predict; by default the rows used in the fit (the fitted
        values).  Needs the fixed-effects variables and, for the random-effects
        terms used, their variables and grouping columns; not the response.
    re_form : None, str or False
        ``None``: all random effects; ``"~0"`` (or ``False``, ``"NA"``): none;
        ``"~ (1 | Subject)"`` (or, as lme4 accepts, ``"~ 1 | Subject"``): only
        these terms (a subset of the model's).
    allow_new_levels : bool
        Predict rows whose grouping level was not in the fit at the population
        level (random effects 0) instead of raising.
    type : {"response", "link"}
        Scale of the predictions (identical for linear models).
    offset : array-like, optional
        Only for models fitted with an ``offset=`` argument and predicted on
        ``newdata``: that offset's values for the new rows (offsets written in
        the formula are computed from ``newdata``).

    Returns
    -------
    Series
        Indexed like ``newdata`` (or like the rows used in the fit).

    Raises
    ------
    DataError
        Missing columns in ``newdata``, unseen factor levels, new grouping
        levels without ``allow_new_levels``.
    FormulaError, ModelSpecError
        An unparseable ``re_form`` or one naming terms the model does not have.
    """
    if type not in ("response", "link"):
        raise MixedModelsError(f"unknown prediction type {type!r}; choose 'response' or 'link'")
    allow_new_levels = check_bool(allow_new_levels, "allow_new_levels")
    selection = select_terms(result, re_form)
    eta = linear_predictor(result, newdata, selection, allow_new_levels=allow_new_levels, offset=offset)
    values = inverse_link(result, eta) if type == "response" else eta
    index = result.model.inputs.row_index if newdata is None else newdata.index
    return pd.Series(values, index=index, name="predicted")


# --- which random effects -----------------------------------------------------------
def select_terms(result: Fit, re_form: str | bool | None) -> tuple[TermSelection, ...]:
    """The random-effects columns ``re_form`` asks for (see the module docstring)."""
    terms = tuple(getattr(result, "terms", ()))
    if re_form is None or re_form is True:
        return tuple(TermSelection(i, tuple(range(t.ncols))) for i, t in enumerate(terms))
    if re_form is False or _is_missing(re_form):
        return ()
    if not isinstance(re_form, str):
        raise FormulaError(
            f"re_form must be None (all random effects), '~0' (none) or a formula such as "
            f"'~ (1 | Subject)', not {type(re_form).__name__}"
        )
    text = re_form.strip()
    if text.replace(" ", "") in {s.replace(" ", "") for s in _NO_RE}:
        return ()
    parsed = parse_formula(with_bar_parentheses(text if text.startswith("~") else "~ " + text))  # "~ 1 | g" too
    if parsed.response is not None:
        raise FormulaError(f"re_form {re_form!r} must be one-sided, e.g. '~ (1 | Subject)'")
    selected: dict[int, set[int]] = {}
    for wanted in parsed.random:
        for index, cols in _match_term(result, terms, wanted, re_form):
            selected.setdefault(index, set()).update(cols)
    return tuple(TermSelection(i, tuple(sorted(c))) for i, c in sorted(selected.items()))


def _is_missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _match_term(result: Fit, terms: Sequence[Any], wanted: Any, re_form: str) -> list[tuple[int, list[int]]]:
    """Model terms (and their columns) that a random term of ``re_form`` refers to."""
    candidates = [i for i, t in enumerate(terms) if t.group == wanted.group]
    if not candidates:
        groups = ", ".join(dict.fromkeys(t.group for t in terms)) or "none"
        raise ModelSpecError(
            f"re_form {re_form!r}: grouping factor {wanted.group!r} of {wanted} is not in the model "
            f"(its grouping factors: {groups})"
        )
    names = _column_names(result, wanted, re_form)
    found: list[tuple[int, list[int]]] = []
    missing = set(names)
    for i in candidates:
        cols = [j for j, name in enumerate(terms[i].column_names) if name in names]
        missing -= {terms[i].column_names[j] for j in cols}
        if cols:
            found.append((i, cols))
    if missing:
        have = ", ".join(str(terms[i]) for i in candidates)
        raise ModelSpecError(
            f"re_form {re_form!r}: {wanted} asks for column(s) {', '.join(sorted(missing))} that the "
            f"model's terms for {wanted.group!r} ({have}) do not have; use a subset of them"
        )
    return found


def _column_names(result: Fit, wanted: Any, re_form: str) -> set[str]:
    """Column names of a random term's left-hand side, built on the fitted data."""
    frame = result.model.inputs.frame
    try:
        design = build_design(wanted.expr, frame)
    except MixedModelsError as exc:
        raise ModelSpecError(f"re_form {re_form!r}: cannot build {wanted} from the fitted data: {exc}") from exc
    return set(design.column_names)


# --- the linear predictor ------------------------------------------------------------
def linear_predictor(
    result: Fit,
    newdata: pd.DataFrame | None,
    selection: Sequence[TermSelection],
    *,
    allow_new_levels: bool = False,
    offset: Any = None,
) -> np.ndarray:
    """``X beta + offset + sum Z_k b_k`` over the selected terms, for the fitted rows or ``newdata``."""
    inputs = result.model.inputs
    beta = np.asarray(result.beta, dtype=float)
    modes = _term_modes(result) if selection else []
    if newdata is None:
        eta = inputs.fixed.matrix @ beta
        if inputs.offset is not None:
            eta = eta + inputs.offset
        for sel in selection:
            term = result.terms[sel.term]
            cols = list(sel.columns)
            eta = eta + np.einsum("ij,ij->i", term.z[:, cols], modes[sel.term][term.refs][:, cols])
        return eta
    if not isinstance(newdata, pd.DataFrame):
        raise DataError(f"newdata must be a pandas DataFrame, not {type(newdata).__name__}")
    eta = inputs.fixed.for_newdata(newdata) @ beta
    eta = eta + new_offset(inputs, newdata, offset)
    for sel in selection:
        term = result.terms[sel.term]
        cols = list(sel.columns)
        z = term.design.for_newdata(newdata)[:, cols]
        refs = match_levels(term, newdata, allow_new_levels=allow_new_levels)
        known = refs >= 0
        contribution = np.zeros(len(newdata))
        contribution[known] = np.einsum("ij,ij->i", z[known], modes[sel.term][refs[known]][:, cols])
        contribution[refs == -2] = np.nan
        eta = eta + contribution
    return eta


def _term_modes(result: Fit) -> list[np.ndarray]:
    """Conditional modes per term in block order, each (levels, columns)."""
    modes = getattr(result, "conditional_modes", None)
    if modes is None:
        raise ModelSpecError(f"{type(result).__name__} does not provide conditional modes of random effects")
    return list(modes)


def new_offset(inputs: ModelInputs, newdata: pd.DataFrame, offset: Any) -> np.ndarray | float:
    """Formula offsets evaluated on ``newdata`` plus the ``offset=`` argument's values."""
    formula_offset = inputs.fixed.offset_for_newdata(newdata)
    total = np.zeros(len(newdata)) if formula_offset is None else formula_offset
    if offset is not None:
        extra = np.asarray(offset, dtype=float).reshape(-1)
        if extra.size != len(newdata):
            raise DataError(f"offset has {extra.size} values but newdata has {len(newdata)} rows; give one per row")
        return total + extra
    if _has_argument_offset(inputs):
        raise DataError(
            "the model was fitted with an offset= argument, which newdata cannot supply; pass "
            "offset=<values for the new rows> (mixedmodels.predict.predict), or write the offset "
            "in the formula as offset(column)"
        )
    return total


def _has_argument_offset(inputs: ModelInputs) -> bool:
    total, in_formula = inputs.offset, inputs.fixed.offset
    if total is None:
        return False
    return in_formula is None or not np.array_equal(total, in_formula)


# --- grouping levels of new data -----------------------------------------------------
def _normalise(label: str) -> str:
    """One spelling per level: ``"308.0"`` and ``"308"`` are the same level of a numeric ID."""
    try:
        number = float(label)
    except (TypeError, ValueError):
        return label
    return str(int(number)) if np.isfinite(number) and number == int(number) else label


def _row_labels(newdata: pd.DataFrame, factors: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Level labels of each row (factor labels joined by ':') and a mask of rows with a missing factor."""
    from .design.frame import check_columns

    check_columns(newdata, list(factors))
    missing = newdata.loc[:, list(factors)].isna().any(axis=1).to_numpy()
    parts = [newdata[f].astype(object).map(lambda v: _normalise(str(v))).tolist() for f in factors]
    return [":".join(p) for p in zip(*parts)], missing


def match_levels(term: Any, newdata: pd.DataFrame, *, allow_new_levels: bool = False) -> np.ndarray:
    """Index of each row's level in ``term.levels``; -1 for new levels, -2 for missing values.

    Raises DataError for new levels unless ``allow_new_levels``.
    """
    lookup = {":".join(_normalise(p) for p in _split_label(lab, len(term.factors))): i for i, lab in enumerate(term.levels)}
    labels, missing = _row_labels(newdata, term.factors)
    refs = np.array([lookup.get(lab, -1) for lab in labels], dtype=np.int64)
    refs[missing] = -2
    new = sorted({lab for lab, r in zip(labels, refs) if r == -1})
    if new and not allow_new_levels:
        shown = ", ".join(repr(v) for v in new[:5]) + (", ..." if len(new) > 5 else "")
        columns = ", ".join(repr(f) for f in term.factors)
        raise DataError(
            f"newdata has {len(new)} level(s) of grouping factor {term.group!r} (column {columns}) "
            f"that were not in the fitted data: {shown}; pass allow_new_levels=True to predict "
            "them at the population level (random effects 0)"
        )
    return refs


def _split_label(label: str, nfactors: int) -> list[str]:
    if nfactors == 1:
        return [label]
    parts = label.split(":")
    return parts if len(parts) == nfactors else [label]


# --- response scale ------------------------------------------------------------------
def inverse_link(result: Fit, eta: np.ndarray) -> np.ndarray:
    """``g^-1(eta)`` for a generalized model's family; ``eta`` itself for linear models."""
    family = getattr(result, "family", None)
    if family is None:
        return eta
    link = getattr(family, "link", None)
    for owner, name in ((link, "inverse"), (link, "linkinv"), (family, "linkinv"), (family, "inverse_link")):
        function = getattr(owner, name, None) if owner is not None else None
        if callable(function):
            return np.asarray(function(eta), dtype=float)
    raise ModelSpecError(f"cannot find the inverse link of family {family!r}")

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

Standard errors and intervals (``se_fit=True``, ``interval=``; lme4 >= 2.0's
``predict(se.fit = TRUE)``).  With no random effects in the prediction
(``re_form="~0"``, and for lm and glm fits) ``se^2 = x' V x`` with ``V`` the
covariance of beta (``vcov``).  With random effects, ``se^2`` is the variance of
``x' beta + z' b`` under the joint conditional covariance of ``(beta, b)``
(Henderson's mixed-model equations; see :mod:`mixedmodels.linalg.rows`), which
counts the uncertainty of beta, of the modes, and their covariance.  A
confidence interval is ``fit -/+ q se`` with ``q`` the normal quantile (the t
quantile on ``df_resid`` for an lm, as R's ``predict.lm``); on the response
scale of a generalized model it is ``g^-1`` of the link-scale interval and the
standard error the delta method's ``se |d mu / d eta|``.  A prediction interval
(linear models only) is for a new observation: it adds the residual variance
``sigma^2 / w`` and the variance ``z' Sigma z`` of the random effects the
prediction leaves out (terms or columns not in ``re_form``, new levels), so
with ``re_form="~0"`` it is the interval for a new group.

``newparams={"theta": ..., "beta": ..., "sigma": ...}`` predicts with other
parameter values (lme4's ``newparams``): nothing is refitted, and, as in lme4,
the conditional modes keep the fit's spherical modes ``u``: ``b = Lambda(theta) u``.

New data go through the same stateful transforms as the fit (``scale()``
uses the training mean and SD, factors keep their training levels and
contrasts).  A level of a grouping factor that was not in the fit has no
conditional mode: with ``allow_new_levels=True`` its random effects are 0 (the
population prediction), otherwise a :class:`~mixedmodels.errors.DataError`
names the level.  Rows with a missing value in a needed column give NaN
(R's ``na.pass``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .design.fixed import build_design
from .design.inputs import ModelInputs
from .errors import DataError, FormulaError, MixedModelsError, ModelSpecError
from .fitted import Fit, is_mixed
from .formula import parse_formula, with_bar_parentheses
from .linalg.rows import TermRows, solve_rows
from ._validate import check_bool

__all__ = [
    "predict",
    "linear_predictor",
    "select_terms",
    "TermSelection",
    "inverse_link",
    "match_levels",
    "new_offset",
    "with_newparams",
    "prediction_table",
]

_INTERVALS = ("none", "confidence", "prediction")
_SHOWN = 10  # new levels named in the error message

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
    se_fit: bool = False,
    interval: str = "none",
    level: float = 0.95,
    weights: Any = None,
    newparams: Mapping[str, Any] | None = None,
) -> pd.Series | pd.DataFrame:
    """Predicted values of a fitted model (lme4's ``predict.merMod``), with standard errors and intervals.

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
    se_fit : bool
        Return standard errors too (see the module docstring).
    interval : {"none", "confidence", "prediction"}
        Add the interval's ``lower`` and ``upper`` limits; ``"prediction"``
        (for a new observation) for linear models only.
    level : float
        Confidence level of the interval.
    weights : array-like, optional
        Prior weights of the predicted rows for a prediction interval (the
        residual variance is ``sigma^2 / w``); default 1.
    newparams : dict, optional
        ``{"theta": ..., "beta": ..., "sigma": ...}`` (any of them) to predict
        with instead of the estimates (lme4's ``newparams``; point predictions only).

    Returns
    -------
    Series or DataFrame
        Indexed like ``newdata`` (or like the rows used in the fit, padded
        with NaN for ``na_action="exclude"`` fits): the predictions, or with
        ``se_fit`` or an ``interval`` a DataFrame with columns ``fit``,
        ``se_fit`` and, for an interval, ``lower`` and ``upper``.

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
    se_fit = check_bool(se_fit, "se_fit")
    if interval not in _INTERVALS:
        raise MixedModelsError(f"unknown interval {interval!r}; choose 'none', 'confidence' or 'prediction'")
    if newparams is not None:
        if se_fit or interval != "none":
            raise ModelSpecError(
                "standard errors and intervals are those of the fit: predict with newparams "
                "gives point predictions only"
            )
        result = with_newparams(result, newparams)
    selection = select_terms(result, re_form)
    eta = linear_predictor(result, newdata, selection, allow_new_levels=allow_new_levels, offset=offset)
    if se_fit or interval != "none":
        table = prediction_table(
            result,
            newdata,
            selection,
            eta,
            allow_new_levels=allow_new_levels,
            type=type,
            interval=interval,
            level=level,
            weights=weights,
        )
        return table if se_fit else table.drop(columns="se_fit")
    values = inverse_link(result, eta) if type == "response" else eta
    if newdata is None:
        return result.model.inputs.row_series(values, "predicted")
    return pd.Series(values, index=newdata.index, name="predicted")


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
    lookup = {
        ":".join(_normalise(p) for p in _split_label(lab, len(term.factors))): i for i, lab in enumerate(term.levels)
    }
    labels, missing = _row_labels(newdata, term.factors)
    refs = np.array([lookup.get(lab, -1) for lab in labels], dtype=np.int64)
    refs[missing] = -2
    new = list(dict.fromkeys(lab for lab, r in zip(labels, refs) if r == -1))  # in order of appearance, as lme4
    if new and not allow_new_levels:
        shown = ", ".join(repr(v) for v in new[:_SHOWN]) + (
            f", ... ({len(new) - _SHOWN} more)" if len(new) > _SHOWN else ""
        )
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


# --- standard errors and intervals -----------------------------------------------------
def prediction_table(
    result: Fit,
    newdata: pd.DataFrame | None,
    selection: Sequence[TermSelection],
    eta: np.ndarray,
    *,
    allow_new_levels: bool = False,
    type: str = "response",
    interval: str = "none",
    level: float = 0.95,
    weights: Any = None,
) -> pd.DataFrame:
    """``fit``, ``se_fit`` (and ``lower``, ``upper``) for the predictions ``eta`` (see the module docstring)."""
    level = _check_level(level)
    generalized = getattr(result, "family", None) is not None
    if interval == "prediction" and generalized:
        raise ModelSpecError(
            "prediction intervals are for linear models: a generalized model has no normal residual "
            "to add on the link scale; use interval='confidence', or simulate() new responses"
        )
    if interval == "prediction" and getattr(result.model, "residual", None) is not None:
        raise ModelSpecError(
            "prediction intervals are not available for a model with a residual structure (weights=var_ident() or "
            "correlation=): a new row's residual SD depends on its stratum; use interval='confidence', "
            "m.sigma_by_level, or simulate()"
        )
    rows = _PredictionRows.build(result, newdata, allow_new_levels, {sel.term for sel in selection})
    se = np.sqrt(_link_variance(result, rows, selection))
    q = _quantile(result, level)
    columns = {"fit": eta, "se_fit": se}
    if interval == "prediction":
        spread = q * np.sqrt(se**2 + _new_observation_variance(result, rows, selection, weights))
        columns.update(lower=eta - spread, upper=eta + spread)
    elif interval == "confidence":
        columns.update(lower=eta - q * se, upper=eta + q * se)
    if type == "response" and generalized:
        columns = _response_scale(result, columns)
    table = pd.DataFrame(columns)
    if newdata is None:
        return result.model.inputs.row_frame(table.to_numpy(), list(table.columns))
    return table.set_axis(newdata.index, axis=0)


def _check_level(level: float) -> float:
    level = float(level)
    if not 0.0 < level < 1.0:
        raise MixedModelsError(f"level must be between 0 and 1 (e.g. 0.95), not {level}")
    return level


def _quantile(result: Fit, level: float) -> float:
    """The normal quantile; for an lm (no family, no random effects) the t quantile on its residual df."""
    if getattr(result, "family", None) is None and not is_mixed(result):
        return float(stats.t.ppf((1.0 + level) / 2.0, result.df_resid))
    return float(stats.norm.ppf((1.0 + level) / 2.0))


@dataclass(frozen=True)
class _PredictionRows:
    """The predicted rows' fixed-effects covariates and, per term (block order), levels and columns.

    ``refs`` are -1 for a new level and -2 for a missing grouping value; a
    term whose grouping columns ``newdata`` lacks has None (it can only be
    left out of the prediction).
    """

    x: np.ndarray
    refs: tuple[np.ndarray | None, ...]
    z: tuple[np.ndarray | None, ...]

    @classmethod
    def build(
        cls, result: Fit, newdata: pd.DataFrame | None, allow_new_levels: bool, selected: set[int]
    ) -> "_PredictionRows":
        """The rows; levels only for the ``selected`` terms (the others' levels do not matter)."""
        inputs = result.model.inputs
        terms = tuple(getattr(result, "terms", ()))
        if newdata is None:
            return cls(inputs.fixed.matrix, tuple(t.refs for t in terms), tuple(t.z for t in terms))
        refs = tuple(
            match_levels(t, newdata, allow_new_levels=allow_new_levels) if i in selected else None
            for i, t in enumerate(terms)
        )
        z = tuple(_columns_or_none(t, newdata) for t in terms)
        return cls(inputs.fixed.for_newdata(newdata), refs, z)


def _columns_or_none(term: Any, newdata: pd.DataFrame) -> np.ndarray | None:
    try:
        return term.design.for_newdata(newdata)
    except DataError:
        return None


def _link_variance(result: Fit, rows: _PredictionRows, selection: Sequence[TermSelection]) -> np.ndarray:
    """``se^2`` of the linear predictor: ``x' V x`` without random effects, else the joint conditional variance."""
    if not selection:
        vcov = np.asarray(result.vcov, dtype=float)
        return np.einsum("ij,jk,ik->i", rows.x, vcov, rows.x)
    chosen = {sel.term: list(sel.columns) for sel in selection}
    parts, missing = [], np.zeros(len(rows.x), dtype=bool)
    for i, term in enumerate(result.terms):
        if i not in chosen:
            parts.append(TermRows(np.full(len(rows.x), -1), np.zeros((len(rows.x), term.ncols))))
            continue
        z = np.zeros_like(rows.z[i], dtype=float)
        z[:, chosen[i]] = rows.z[i][:, chosen[i]]
        missing |= rows.refs[i] == -2
        parts.append(TermRows(np.where(rows.refs[i] >= 0, rows.refs[i], -1), z))
    variance = result.sigma**2 * solve_rows(result.factor, parts, rows.x).squared_norms(joint=True)
    variance[missing] = np.nan
    return variance


def _new_observation_variance(
    result: Fit, rows: _PredictionRows, selection: Sequence[TermSelection], weights: Any
) -> np.ndarray:
    """``sigma^2 / w`` plus ``z' Sigma z`` over the random effects the prediction leaves out."""
    n = len(rows.x)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float).reshape(-1)
    if w.size != n or np.any(~(w > 0)):
        raise DataError(f"weights must be {n} positive numbers, one per predicted row")
    variance = result.sigma**2 / w
    chosen = {sel.term: set(sel.columns) for sel in selection}
    covariances = list(getattr(result, "covariances", {}).values())
    for i, term in enumerate(getattr(result, "terms", ())):
        if rows.z[i] is None:
            raise DataError(
                f"a prediction interval needs the columns of {term} in newdata (its random "
                "effects' variance enters the interval)"
            )
        left_out = np.ones((n, term.ncols), dtype=bool)
        if i in chosen and rows.refs[i] is not None:
            known = rows.refs[i] >= 0
            left_out[np.ix_(known, sorted(chosen[i]))] = False
        zu = np.where(left_out, rows.z[i], 0.0)
        variance = variance + np.einsum("ij,jk,ik->i", zu, covariances[i], zu)
    return variance


def _response_scale(result: Fit, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``g^-1`` of the fit and of the interval's limits; the delta method's SE ``se |d mu / d eta|``."""
    eta = columns["fit"]
    out = {"fit": inverse_link(result, eta), "se_fit": columns["se_fit"] * np.abs(result.family.link.mu_eta(eta))}
    if "lower" in columns:
        a, b = inverse_link(result, columns["lower"]), inverse_link(result, columns["upper"])
        out.update(lower=np.minimum(a, b), upper=np.maximum(a, b))  # a decreasing link swaps them
    return out


# --- other parameter values (lme4's newparams) ---------------------------------------------
def with_newparams(result: Fit, newparams: Mapping[str, Any]) -> Fit:
    """The fit with other values of theta, beta and/or sigma, for prediction and simulation.

    Nothing is refitted: the conditional modes keep the fit's spherical modes
    (``b = Lambda(theta) u``, as lme4), and the copy's standard errors and
    likelihood are those of the fit.
    """
    if not is_mixed(result) or not dataclasses.is_dataclass(result):
        raise ModelSpecError("newparams are for lmer and glmer fits (lme4's newparams)")
    if not isinstance(newparams, Mapping) or not set(newparams) <= {"theta", "beta", "sigma"} or not newparams:
        keys = list(newparams) if isinstance(newparams, Mapping) else type(newparams).__name__
        raise ModelSpecError(f"newparams is a dict with any of 'theta', 'beta' and 'sigma'; got {keys}")
    changes: dict[str, Any] = {}
    if "theta" in newparams:
        changes["theta"] = result.model.check_theta(newparams["theta"], "newparams")
    if "beta" in newparams:
        changes["beta"] = _named_values(newparams["beta"], result.fixef_names, "beta")
    if "sigma" in newparams:
        changes["sigma"] = _new_sigma(result, newparams["sigma"])
    return dataclasses.replace(result, **changes)


def _named_values(values: Any, names: Sequence[str], what: str) -> np.ndarray:
    """Values given as a sequence in ``names``' order, or by name (dict or Series)."""
    if isinstance(values, (Mapping, pd.Series)):
        items = dict(values)
        if sorted(items) != sorted(names):
            raise ModelSpecError(f"newparams {what} by name needs exactly {list(names)}; got {list(items)}")
        values = [items[n] for n in names]
    array = np.asarray(values, dtype=float).reshape(-1)
    if array.size != len(names) or not np.all(np.isfinite(array)):
        raise ModelSpecError(f"newparams {what} must be {len(names)} finite numbers ({', '.join(names)})")
    return array


def _new_sigma(result: Fit, sigma: Any) -> float:
    value = float(sigma)
    family = getattr(result, "family", None)
    if family is not None and not family.has_dispersion and value != 1.0:
        raise ModelSpecError(f"the {family.name} family has no dispersion: its sigma is 1, not {value}")
    if not (np.isfinite(value) and value > 0):
        raise ModelSpecError(f"newparams sigma must be a positive number, not {sigma!r}")
    return value

"""A model's inputs before any fitting: lme4's ``lFormula`` stage.

``prepare_inputs(formula, data)`` parses an lme4 formula and builds, in order,

1. the model frame: the columns the formula uses, rows complete in all of
   them (grouping factors included), labelled by their position in ``data``;
   this is where the data are checked, once -- the design code below trusts
   the frame;
2. the response ``y`` (a column, an expression, or ``cbind`` for binomial);
3. the fixed-effects matrix ``X`` with R's contrasts and names, aliased
   columns dropped (lme4's ``chkRank.drop.cols``) and lme4's check of the
   predictors' scales;
4. prior weights and the offset (the formula's ``offset()`` terms plus ``offset=``;
   a row whose ``offset=`` or ``weights=`` is missing is dropped like an
   incomplete row, as lme4's model frame does), for
   the kept rows, whose own labels are kept in ``row_index``;
5. the random-effects terms (level index per row, the term's columns), in
   lme4's order (most levels first).

Every model kind starts here: ``lmer`` (:func:`prepare_inputs`), ``glmer``
(:func:`prepare_glmm_inputs`: a term may have as many random effects as
there are observations), ``lm``/``glm`` (:func:`prepare_fixed_inputs`: no
random-effects terms), the Bayesian models and the power simulations.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..errors import DataError, FormulaError, MixedModelsWarning, ModelSpecError
from ..formula import ParsedFormula, parse_formula, random_terms_text
from ..formula import expand_dot, has_dot
from .checks import check_scale, drop_aliased_columns
from .fixed import DesignMatrix, build_design
from .frame import ModelFrame, check_data_frame, column_array, get_column, model_frame, required_variables
from .random import RandomEffectsTerm, build_random_terms
from .size import check_fixed_size, check_model_size
from .response import build_response
from .tables import as_pandas

__all__ = [
    "ModelInputs",
    "check_na_action",
    "prepare_inputs",
    "prepare_glmm_inputs",
    "prepare_fixed_inputs",
    "prepare_fixed_part",
    "expand_formula_dot",
]


class _FrameField:
    """``ModelInputs.frame``: given a :class:`ModelFrame`, its DataFrame made on first use.

    A fit reads the model frame's columns once, when y, X and the terms are
    built; the DataFrame is for the methods after the fit (``model_frame()``,
    ``predict``, ``anova``, ...), and is most of a small model frame's cost.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = "_" + name

    def __get__(self, obj: Any, objtype: Any = None) -> pd.DataFrame:
        if obj is None:
            raise AttributeError(self.slot[1:])  # no default value for the dataclass
        value = obj.__dict__[self.slot]
        if isinstance(value, ModelFrame):
            value = obj.__dict__[self.slot] = value.data
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self.slot] = value

    def column(self, obj: Any, name: str) -> pd.Series:
        """The frame's column ``name``, without making the DataFrame when it is not made yet."""
        return get_column(obj.__dict__[self.slot], name)

    def array(self, obj: Any, name: str) -> Any:
        """The frame's column ``name``'s values as :meth:`ModelFrame.array` gives them, without a Series where it can."""
        return column_array(obj.__dict__[self.slot], name)

    def rows(self, obj: Any) -> int:
        """The number of rows of the frame, without making it."""
        value = obj.__dict__[self.slot]
        return value.nrows if isinstance(value, ModelFrame) else len(value)


@dataclass(frozen=True, eq=False)
class ModelInputs:
    """Everything a model is made of, before any fitting.

    Attributes
    ----------
    formula : ParsedFormula
    frame : DataFrame
        The model frame: used columns, complete rows, positional index.
    row_index : Index
        The caller's labels of the rows used (``data.index`` without the
        dropped rows); every row-shaped result (fitted values, residuals,
        predictions, simulations) is indexed by it.
    n_dropped : int
        Rows dropped for missing values.
    y : ndarray
        Response (1-d, or (n, 2) for ``cbind``).
    fixed : DesignMatrix
        Fixed-effects model matrix X (aliased columns already dropped).
    dropped_columns : tuple of str
        Columns of X dropped as aliased.
    terms : tuple of RandomEffectsTerm
        Random-effects terms in block order (empty for lm and glm).
    weights : ndarray or None
        Prior weights for the kept rows.
    offset : ndarray or None
        Offset for the kept rows (formula ``offset()`` terms plus ``offset=``).
    dropped_positions : tuple of int
        Where the dropped columns were in X before dropping (lme4's
        ``col.dropped``), for ``fixef(add_dropped=True)``.
    na_action : {"omit", "exclude"}
        R's ``na.action``: with ``"exclude"`` row-shaped results are padded
        with NaN to every row of the data (``data_index``).
    data_index : Index or None
        The caller's labels of every row of the data (incomplete ones too).
    """

    formula: ParsedFormula
    frame: pd.DataFrame = _FrameField()  # type: ignore[assignment]
    row_index: pd.Index
    n_dropped: int
    y: np.ndarray
    fixed: DesignMatrix
    dropped_columns: tuple[str, ...]
    terms: tuple[RandomEffectsTerm, ...]
    weights: np.ndarray | None
    offset: np.ndarray | None
    dropped_positions: tuple[int, ...] = ()
    na_action: str = "omit"
    data_index: pd.Index | None = None

    @property
    def nobs(self) -> int:
        return _FRAME_FIELD.rows(self)

    def column(self, name: str) -> pd.Series:
        """The model frame's column ``name`` (rows as in :attr:`frame`), without making :attr:`frame`."""
        return _FRAME_FIELD.column(self, name)

    def array(self, name: str) -> Any:
        """The model frame's column ``name``'s values (rows as in :attr:`frame`): a NumPy array for a NumPy dtype, else
        the column's extension array (:meth:`~.frame.ModelFrame.array`), without a Series once the frame holds its
        own copy."""
        return _FRAME_FIELD.array(self, name)

    @property
    def sum_log_weights(self) -> float:
        """``sum(log(w))`` over the positive prior weights (0 without weights): the objective's weights term."""
        w = self.weights
        return float(np.sum(np.log(w[w > 0]))) if w is not None else 0.0

    def subset(self, keep: np.ndarray) -> "ModelInputs":
        """The inputs of the rows at positions ``keep`` only (a case- or group-deletion refit).

        The random-effects terms keep all their levels (a level without rows
        has the same likelihood as no level), and X keeps its columns.
        """
        keep = np.asarray(keep)

        def pick(values: np.ndarray | None) -> np.ndarray | None:
            return None if values is None else values[keep]

        fixed = replace(
            self.fixed, matrix=np.ascontiguousarray(self.fixed.matrix[keep]), offset=pick(self.fixed.offset)
        )
        terms = tuple(replace(t, refs=t.refs[keep], z=np.ascontiguousarray(t.z[keep])) for t in self.terms)
        return replace(
            self,
            frame=self.frame.iloc[keep],
            row_index=self.row_index[keep],
            y=self.y[keep],
            fixed=fixed,
            terms=terms,
            weights=pick(self.weights),
            offset=pick(self.offset),
            na_action="omit",
            data_index=None,
        )

    def row_series(self, values: np.ndarray, name: str) -> pd.Series:
        """Values for the rows used, labelled by ``row_index``; with ``na_action="exclude"``
        padded with NaN to every row of the data, in the data's order (R's ``napredict``)."""
        return self.row_frame(np.asarray(values)[:, None], [name])[name]

    def row_frame(self, values: np.ndarray, columns: list[str]) -> pd.DataFrame:
        """As :meth:`row_series`, for a two-dimensional result (e.g. simulations, one column each)."""
        values = np.asarray(values)
        if self.na_action != "exclude" or self.data_index is None or len(self.data_index) == len(values):
            return pd.DataFrame(values, index=self.row_index, columns=columns)
        padded = np.full((len(self.data_index), values.shape[1]), np.nan)
        padded[self.frame.index.to_numpy()] = values  # the frame is labelled by position in the data
        return pd.DataFrame(padded, index=self.data_index, columns=columns)


_FRAME_FIELD: _FrameField = vars(ModelInputs)["frame"]


def _used_variables(parsed: ParsedFormula) -> set[str]:
    names = set(required_variables(parsed.fixed))
    if parsed.response is not None:
        names |= required_variables(parsed.response)
    for term in parsed.random:
        names |= required_variables(term.expr) | set(term.factors)
    return names


def expand_formula_dot(parsed: ParsedFormula, data: pd.DataFrame) -> ParsedFormula:
    """R's ``.`` in the fixed part: every column of ``data`` that the response does not use.

    ``y ~ .`` uses all other columns, in the data's order; ``log(y) ~ .`` and
    ``cbind(s, f) ~ .`` leave out the response's variables, as R does.  With
    random terms (``y ~ . + (1 | g)``) ``g`` is among the fixed effects too, as
    in lme4; ``y ~ . - g + (1 | g)`` leaves it out.
    """
    if any(has_dot(term.expr) for term in parsed.random):
        raise FormulaError(
            f"'.' (all other columns) in a random-effects term of {parsed.formula!r}: it stands for "
            "columns only in the fixed part; name the random effects' variables"
        )
    if not has_dot(parsed.fixed):
        return parsed
    check_data_frame(data)
    used = required_variables(parsed.response) if parsed.response is not None else frozenset()
    names = [c for c in data.columns if c not in used]
    odd = [c for c in names if not isinstance(c, str)]
    if odd:
        raise FormulaError(
            f"'.' in {parsed.formula!r} stands for the data's columns, and column {odd[0]!r} has no "
            "name a formula can use; give the columns string names or list them instead of '.'"
        )
    return replace(parsed, fixed=expand_dot(parsed.fixed, names))


def _check_contrasts(contrasts: Mapping[str, str] | None, parsed: ParsedFormula, data: pd.DataFrame) -> None:
    """Check ``contrasts=`` against the formula and the data.

    An entry for a variable the formula does not use is ignored with a
    warning (R's model.matrix warns too); an entry for a numeric variable the
    formula uses is an error, as in R ("contrasts apply only to factors"):
    silently ignoring it would fit a model other than the one asked for.
    """
    if contrasts is None:
        return
    if not isinstance(contrasts, Mapping):
        raise ModelSpecError(
            f"contrasts must be a dict of variable -> contrast, e.g. {{'condition': 'sum'}}, "
            f"not {type(contrasts).__name__}"
        )
    used = _used_variables(parsed)
    for name in contrasts:
        if name not in used:
            warnings.warn(
                f"contrasts were given for variable {name!r}, which is not in the formula "
                f"{parsed.formula!r}: they are ignored (check the spelling)",
                MixedModelsWarning,
                stacklevel=4,
            )
        elif _is_numeric_column(data, name):
            raise ModelSpecError(
                f"contrasts were given for {name!r}, a numeric variable: contrasts apply only to factors "
                f"(R stops here too); to code {name!r} as a factor, make the column one "
                f"(data[{name!r}].astype('category')), or drop the entry"
            )


def _is_numeric_column(data: pd.DataFrame, name: str) -> bool:
    """A column that formulas use as numbers: integers, floats or complex numbers (not booleans, not categories)."""
    if name not in data.columns:
        return False
    dtype = data[name].dtype
    return (
        isinstance(dtype, np.dtype)
        and dtype.kind in "iufc"
        or (
            pd.api.types.is_numeric_dtype(dtype)
            and not pd.api.types.is_bool_dtype(dtype)
            and not isinstance(dtype, pd.CategoricalDtype)
        )
    )


def _per_row(values: Any, name: str, nrows: int) -> np.ndarray | None:
    """A per-row argument (weights, offset) as floats, one per row of the data."""
    if values is None:
        return None
    try:
        array = np.asarray(values, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise DataError(
            f"{name} must be numbers, one per row of data (an array or a Series such as data['w']), "
            f"not {type(values).__name__}"
        ) from None
    if array.size != nrows:
        raise DataError(f"{name} has {array.size} values but the data have {nrows} rows; give one per row")
    return array


def _missing_values(values: np.ndarray | None, name: str, labels: pd.Index) -> np.ndarray | None:
    """Rows whose ``offset=`` or ``weights=`` value is missing (NaN), or None; an infinite value is refused.

    As lme4's model frame does (and as for ``offset(o)`` in the formula), a
    row with a missing offset or weight is dropped and counted; an infinite
    one would make the likelihood undefined, so it is an error.
    """
    if values is None:
        return None
    infinite = np.isinf(values)
    if infinite.any():
        shown = ", ".join(map(repr, labels[infinite][:3])) + (", ..." if infinite.sum() > 3 else "")
        raise DataError(
            f"{name}= has {int(infinite.sum())} infinite value(s) (rows {shown}); {name} must be finite: "
            "check how it was computed (e.g. log of zero), or set those values to NaN to drop the rows"
        )
    missing = np.isnan(values)
    if missing.all():
        raise DataError(f"{name}= is missing (NaN) for every row; give a finite {name} for the rows to fit")
    return missing if missing.any() else None


def _either(*masks: np.ndarray | None) -> np.ndarray | None:
    present = [m for m in masks if m is not None]
    return np.logical_or.reduce(present) if present else None


def _without_rows(mf: ModelFrame, missing: np.ndarray | None) -> ModelFrame:
    """The model frame without the rows marked ``missing`` (by position in the data), counted as dropped."""
    if missing is None:
        return mf
    ok = ~missing[mf.data.index.to_numpy()]
    if not ok.any():
        raise DataError("no rows left: every row with complete data has a missing (NaN) offset= or weights=")
    return ModelFrame(mf.data.loc[ok], mf.n_dropped + int((~ok).sum())) if not ok.all() else mf


def _check_weights(weights: np.ndarray | None) -> None:
    if weights is None:
        return
    if np.any(weights < 0):
        raise DataError("weights must be non-negative; found a negative weight")
    if weights.size and not np.any(weights > 0):
        raise DataError(
            f"every weight is zero ({weights.size} rows): rows with weight 0 carry no information, "
            "so there is nothing to fit; give positive weights to the rows to fit"
        )


def _sum_offsets(*offsets: np.ndarray | None) -> np.ndarray | None:
    """The sum of the offsets given (None for none; a lone one as it is, not a copy)."""
    present = [o for o in offsets if o is not None]
    if len(present) < 2:
        return present[0] if present else None
    return np.sum(present, axis=0)


_NA_ACTIONS = ("omit", "exclude")


def check_na_action(na_action: Any) -> str:
    """R's ``na.action`` by name: ``"omit"`` (or ``"na.omit"``) or ``"exclude"`` (``"na.exclude"``)."""
    if isinstance(na_action, str) and na_action in _NA_ACTIONS:  # as given (the usual "omit")
        return na_action
    key = str(na_action).lower().replace("na.", "").replace("na_", "") if isinstance(na_action, str) else None
    if key not in _NA_ACTIONS:
        raise ModelSpecError(
            f"na_action must be 'omit' (drop incomplete rows, R's na.omit) or 'exclude' (drop them, and "
            f"give row-shaped results NaN in their place, R's na.exclude), not {na_action!r}"
        )
    return key


def prepare_fixed_part(
    parsed: ParsedFormula,
    data: pd.DataFrame,
    *,
    weights: Any = None,
    offset: Any = None,
    contrasts: Mapping[str, str] | None = None,
    extra_variables: tuple[str, ...] = (),
    na_action: str = "omit",
    max_memory: Any = None,
) -> ModelInputs:
    """Model frame, y, X, weights and offset of a parsed formula; no random-effects terms yet.

    The model frame keeps the rows complete in every variable the formula
    uses, the grouping factors of its random terms included, and in
    ``extra_variables`` (a residual structure's strata, times and groups).
    """
    inputs, frame = _fixed_part(
        parsed,
        data,
        weights=weights,
        offset=offset,
        contrasts=contrasts,
        extra_variables=extra_variables,
        na_action=na_action,
        max_memory=max_memory,
    )
    frame.release()
    return inputs


def _fixed_part(
    parsed: ParsedFormula,
    data: pd.DataFrame,
    *,
    weights: Any,
    offset: Any,
    contrasts: Mapping[str, str] | None,
    extra_variables: tuple[str, ...],
    na_action: str,
    max_memory: Any,
) -> tuple[ModelInputs, ModelFrame]:
    """:func:`prepare_fixed_part`, and the model frame, whose columns the random-effects terms read again
    (the caller releases it: :meth:`ModelFrame.release`)."""
    na_action = check_na_action(na_action)
    if parsed.response is None:
        raise FormulaError(f"formula {parsed.formula!r} has no response; write it as 'y ~ ...'")
    if not isinstance(data, pd.DataFrame):
        data = as_pandas(data)  # polars DataFrames and pyarrow Tables
    parsed = expand_formula_dot(parsed, data)
    _check_contrasts(contrasts, parsed, data)
    variables = sorted(_used_variables(parsed) | set(extra_variables))
    mf = model_frame(data, variables, positional=True)  # the one check of the data
    nrows = mf.nrows + mf.n_dropped  # len(data): the frame's rows and those it dropped
    all_weights, all_offsets = _per_row(weights, "weights", nrows), _per_row(offset, "offset", nrows)
    if all_weights is not None or all_offsets is not None:
        missing = _either(
            _missing_values(all_offsets, "offset", data.index), _missing_values(all_weights, "weights", data.index)
        )
        mf = _without_rows(mf, missing)
    keep = mf.positions
    w = None if all_weights is None else all_weights[keep]
    _check_weights(w)
    check_fixed_size(parsed.fixed, mf, max_memory)  # before X is built: refuse what would not fit
    full = build_design(parsed.fixed, mf, contrasts)
    fixed, dropped = drop_aliased_columns(full)
    check_scale(fixed)
    extra_offset = None if all_offsets is None else all_offsets[keep]
    inputs = ModelInputs(
        formula=parsed,
        frame=mf,  # its DataFrame made on first use
        row_index=data.index if len(keep) == nrows else data.index[keep],  # an Index is immutable: shared
        n_dropped=mf.n_dropped,
        y=build_response(parsed.response, mf),
        fixed=fixed,
        dropped_columns=dropped,
        terms=(),
        weights=w,
        offset=_sum_offsets(fixed.offset, extra_offset),
        dropped_positions=_positions_of(dropped, full.column_names),
        na_action=na_action,
        data_index=data.index,
    )
    return inputs, mf


def _positions_of(dropped: tuple[str, ...], names: tuple[str, ...]) -> tuple[int, ...]:
    """Where the ``dropped`` columns were among X's ``names`` (lme4's ``col.dropped``)."""
    if not dropped:
        return ()
    kept_out = set(dropped)
    return tuple(j for j, name in enumerate(names) if name in kept_out)


def prepare_inputs(
    formula: str,
    data: pd.DataFrame,
    *,
    weights: Any = None,
    offset: Any = None,
    contrasts: Mapping[str, str] | None = None,
    allow_as_many_ranef_as_obs: bool = False,
    extra_variables: tuple[str, ...] = (),
    na_action: str = "omit",
    max_memory: Any = None,
    sparse_rest: bool = True,
) -> ModelInputs:
    """Parse the formula and build the model frame, y, X and the random-effects terms.

    ``allow_as_many_ranef_as_obs`` relaxes lme4's lmer rule (random effects <
    observations per term) to glmer's (<=); ``extra_variables`` are columns
    the model frame keeps besides the formula's (a residual structure's).
    ``sparse_rest``: the model can hold a large rest block sparsely (lmer; not
    glmer's PIRLS), which the memory estimate takes into account.
    """
    parsed = parse_formula(formula)
    inputs, frame = _fixed_part(  # the frame was checked there
        parsed,
        data,
        weights=weights,
        offset=offset,
        contrasts=contrasts,
        extra_variables=extra_variables,
        na_action=na_action,
        max_memory=max_memory,
    )
    terms = build_random_terms(inputs.formula.random, frame, contrasts, allow_as_many_ranef_as_obs)
    frame.release()  # the frame's columns were read: keep no reference to the caller's data
    check_model_size(
        frame.nrows,  # (inputs.nobs: the frame's rows)
        len(inputs.fixed.column_names),
        terms,
        max_memory,  # before the cross-products
        sparse_rest=sparse_rest,
    )
    return _with_terms(inputs, terms)


def _with_terms(inputs: ModelInputs, terms: tuple[RandomEffectsTerm, ...]) -> ModelInputs:
    """``replace(inputs, terms=terms)`` without making the model frame's DataFrame (``replace`` reads every field)."""
    new = object.__new__(type(inputs))
    new.__dict__.update(inputs.__dict__)
    object.__setattr__(new, "terms", terms)
    return new


def prepare_glmm_inputs(
    formula: str,
    data: pd.DataFrame,
    *,
    weights: Any = None,
    offset: Any = None,
    contrasts: Mapping[str, str] | None = None,
    na_action: str = "omit",
    max_memory: Any = None,
) -> ModelInputs:
    """As :func:`prepare_inputs`, with glmer's rule that a term may have as many
    random effects as there are observations (e.g. an observation-level ``(1 | obs)``)."""
    return prepare_inputs(
        formula,
        data,
        weights=weights,
        offset=offset,
        contrasts=contrasts,
        allow_as_many_ranef_as_obs=True,
        na_action=na_action,
        max_memory=max_memory,
        sparse_rest=False,
    )  # PIRLS assembles a dense rest block


def prepare_fixed_inputs(
    formula: str,
    data: pd.DataFrame,
    *,
    weights: Any = None,
    offset: Any = None,
    contrasts: Mapping[str, str] | None = None,
    caller: str = "lm",
    max_memory: Any = None,
) -> ModelInputs:
    """Model frame, response and fixed-effects matrix of a formula without random effects (lm, glm)."""
    parsed = parse_formula(formula)
    if parsed.response is None:
        raise FormulaError(f"formula {formula!r} has no response; write it as 'y ~ ...'")
    if parsed.random:
        raise FormulaError(
            f"formula {formula!r} has random-effects terms {random_terms_text(parsed.random)}; "
            f"{caller}() fits models without them -- use mm.lmer or mm.glmer, or drop the terms"
        )
    return prepare_fixed_part(parsed, data, weights=weights, offset=offset, contrasts=contrasts, max_memory=max_memory)

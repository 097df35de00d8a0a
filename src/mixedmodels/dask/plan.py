"""From a formula and pass 1's summary to what every partition needs to build its rows of X, Z and y.

Two steps, on the client, neither of which touches the rows:

* :func:`summary_spec` reads the formula and the columns' types (dask's
  metadata) and says what pass 1 must compute: which columns need their
  levels (non-numeric columns, grouping factors, variables inside ``C()``),
  which interacted grouping factors need their combinations, and the
  arguments of the stateful transforms (``scale``, ``center``,
  ``standardize``, ``poly``).  Unknown columns raise the in-memory
  :class:`~mixedmodels.errors.DataError`.
* :func:`encoding_plan` turns :class:`~.metadata.DataSummary` into an
  :class:`EncodingPlan`.  The model-matrix specs are built in memory on a
  small stand-in frame that holds every observed level of every factor (so
  the columns, contrasts and names are those of the whole data) and real
  values of the numeric columns, then given the global transform state
  (:meth:`~mixedmodels.design.fixed.DesignMatrix.with_transform_state`).
  Replayed on any partition, they give that partition's rows of the matrix
  the whole data would give.  The grouping factors get their global levels
  in lme4's order and labels, and the in-memory checks run here
  (one-level factors, more random effects than observations).
"""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..design.covariance import CovarianceStructure, get_structure
from ..design.fixed import CONTEXT, DesignMatrix, build_design
from ..design.response import build_response
from ..design.frame import check_columns, formula_factors, no_complete_rows_error, required_variables
from ..design.random import check_structure
from ..design.simple import simple_terms
from ..design.values import level_label
from ..errors import DataError, ModelSpecError, NotOnDaskError
from ..formula import ParsedFormula, RandomTerm
from .metadata import DataSummary, SummarySpec, TransformSpec

__all__ = ["summary_spec", "encoding_plan", "global_design", "EncodingPlan", "TermPlan", "LevelCoder"]

_UNKNOWN_CATEGORIES = "__UNKNOWN_CATEGORIES__"  # dask's placeholder category
_SAMPLE_VALUES = 16  # distinct values of a numeric column kept for the stand-in frame


# --------------------------------------------------------------------------- what pass 1 computes
def used_variables(parsed: ParsedFormula) -> set[str]:
    """The formula's variables (response, fixed part, random terms and their grouping factors)."""
    names = set(required_variables(parsed.fixed)) | set(required_variables(parsed.response))
    for term in parsed.random:
        names |= set(required_variables(term.expr)) | set(term.factors)
    return names


def summary_spec(parsed: ParsedFormula, meta: pd.DataFrame, weights: str | None, offset: str | None) -> SummarySpec:
    """What pass 1 must compute for this formula on data with these columns (``meta``: an empty frame)."""
    variables = sorted(used_variables(parsed))
    check_columns(meta, variables + [c for c in (weights, offset) if c is not None])
    grouping = {f for term in parsed.random for f in term.factors}
    as_factors = _factor_arguments(parsed)
    level_columns = {
        name: _known_categories(meta[name])
        for name in variables
        if not _is_numeric(meta[name]) or name in grouping or name in as_factors
    }
    return SummarySpec(
        frame_columns=tuple(variables),
        level_columns=level_columns,
        combos=tuple(dict.fromkeys(term.factors for term in parsed.random if len(term.factors) > 1)),
        numeric=tuple(name for name in variables if _is_numeric(meta[name]) and name not in as_factors),
        transforms=stateful_calls(parsed),
        weights=weights,
        offset=offset,
    )


def _is_numeric(column: pd.Series) -> bool:
    dtype = column.dtype
    return isinstance(dtype, np.dtype) and dtype.kind in "iuf"


def _known_categories(column: pd.Series) -> tuple | None:
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype) and _UNKNOWN_CATEGORIES not in list(dtype.categories):
        return tuple(dtype.categories)
    return None


def _expressions(parsed: ParsedFormula) -> list[str]:
    """The formula parts whose model matrices are built: the fixed part and each term's left-hand side."""
    return [parsed.fixed] + [term.expr for term in parsed.random]


def _factor_arguments(parsed: ParsedFormula) -> set[str]:
    """Variables used as factors through ``C(...)``."""
    names: set[str] = set()
    for expr in _expressions(parsed):
        for code, how in formula_factors(expr):
            if how == "python":
                tree, _ = _parse(code)
                for node in ast.walk(tree):
                    if (
                        isinstance(node, ast.Call)
                        and isinstance(node.func, ast.Name)
                        and node.func.id == "C"
                        and node.args
                    ):
                        names |= set(required_variables(f"I({ast.unparse(node.args[0])})"))
    return names


def stateful_calls(parsed: ParsedFormula) -> tuple[TransformSpec, ...]:
    """Every stateful transform call in the model-matrix parts, keyed as formulaic keys its state."""
    if parsed.response is not None and _stateful_nodes(parsed.response):
        raise NotOnDaskError(
            f"the response {parsed.response!r} uses a stateful transform (scale(), poly(), ...), "
            "which cannot be evaluated partition by partition; transform the column first"
        )
    found: dict[str, TransformSpec] = {}
    for expr in _expressions(parsed):
        for code, how in formula_factors(expr):
            if how == "python":
                for key, node, aliases in _stateful_nodes(code):
                    spec = _transform_spec(key, node, aliases)
                    if spec is not None:
                        found.setdefault(key, spec)
    return tuple(found.values())


def _parse(code: str) -> tuple[ast.Expression, dict[str, str]]:
    """formulaic's parse of some formula code: backticked names made identifiers (``aliases`` maps them back)."""
    from formulaic.utils.code import sanitize_variable_names

    aliases: dict[str, str] = {}
    return ast.parse(sanitize_variable_names(code, {}, aliases), mode="eval"), aliases


def _stateful_nodes(code: str) -> list[tuple[str, ast.Call, dict]]:
    """(formulaic's key, call node, aliases) of each stateful transform call in ``code``, as formulaic finds them."""
    from formulaic.transforms import TRANSFORMS
    from formulaic.utils.code import format_expr
    from formulaic.utils.layered_mapping import LayeredMapping

    env = LayeredMapping(CONTEXT, TRANSFORMS)
    tree, aliases = _parse(code)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            try:
                func = eval(compile(format_expr(node.func), "", "eval"), {}, env)  # noqa: S307 (formulaic's own lookup)
            except NameError:
                continue
            if getattr(func, "__is_stateful_transform__", False):
                out.append((format_expr(node).replace('"', r'\\"'), node, aliases))
    return out


_SIGNATURES = {
    "scale": ("center", "scale", "ddof"),
    "standardize": ("center", "scale", "ddof"),
    "center": (),
    "poly": ("degree", "raw"),
    "Q": (),
}


# Stateful calls whose state is a factor's levels: the stand-in frame has every level, so its state is the data's.
_LEVEL_STATES = frozenset({"as_numeric"})


def _state_from_levels(key: str) -> bool:
    return key.split("(", 1)[0] in _LEVEL_STATES


def _transform_spec(key: str, node: ast.Call, aliases: dict) -> TransformSpec | None:
    """What the state of one call needs; None for calls without state (``Q()``, raw ``poly()``) or whose
    state is a factor's levels (``as.numeric(f)``: learnt from the stand-in frame)."""
    name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
    if name in _LEVEL_STATES:
        return None
    if name not in _SIGNATURES:
        raise NotOnDaskError(
            f"{key} needs all rows at once to set up its state (e.g. spline knots from quantiles); "
            "on Dask only scale(), center(), standardize(), poly() and as.numeric() can be used"
        )
    options = _call_options(key, node, _SIGNATURES[name])
    if name == "Q" or (name == "poly" and options.get("raw", False)):
        return None
    if name == "center":
        options = {"center": True, "scale": False}
    if name == "poly":
        options = {"degree": int(options.get("degree", 1))}
    if not node.args:
        raise ModelSpecError(f"{key} has no argument")
    used = {alias: column for alias, column in aliases.items()}
    return TransformSpec(
        key,
        "poly" if name == "poly" else "scale",
        ast.unparse(node.args[0]),
        tuple(sorted(used.items())),
        tuple(sorted(options.items())),
    )


def _call_options(key: str, node: ast.Call, names: tuple[str, ...]) -> dict[str, Any]:
    """The call's constant arguments after the data (literals only)."""
    options = {}
    try:
        for name, arg in zip(names, node.args[1:]):
            options[name] = ast.literal_eval(arg)
        for keyword in node.keywords:
            options[keyword.arg] = ast.literal_eval(keyword.value)
    except ValueError:
        raise NotOnDaskError(f"the arguments of {key} must be constants on Dask") from None
    return options


# --------------------------------------------------------------------------- level coding
@dataclass(frozen=True)
class LevelCoder:
    """Maps a column's values to the index of their level (observed levels in the fit's order).

    ``categories``: the known categories of a Categorical column (codes are
    looked up in ``lookup``); else ``levels`` are matched by value, or, for
    whole numbers forming one run, by subtracting the first.
    """

    levels: np.ndarray
    categories: tuple | None
    lookup: np.ndarray | None
    first: int | None
    text: bool = False

    @classmethod
    def make(cls, levels: np.ndarray, categories: tuple | None, text: bool = False) -> "LevelCoder":
        if categories is not None:
            index = {c: i for i, c in enumerate(levels.tolist())}
            lookup = np.array([index.get(c, -1) for c in categories], dtype=np.int64)
            return cls(levels, categories, lookup, None)
        first = None
        if levels.dtype.kind in "iu" and levels.size and int(levels[-1]) - int(levels[0]) + 1 == levels.size:
            first = int(levels[0])
        return cls(levels, None, None, first, text)

    def codes(self, column: pd.Series) -> np.ndarray:
        """Level index of each value; -1 for a value that is not a level."""
        if self.categories is not None:
            array = column.array
            if isinstance(array, pd.Categorical) and tuple(array.categories) == self.categories:
                codes = np.asarray(array.codes, dtype=np.int64)
            else:
                codes = np.asarray(
                    pd.Categorical(np.asarray(column), categories=list(self.categories)).codes, dtype=np.int64
                )
            return np.where(codes >= 0, self.lookup[np.maximum(codes, 0)], -1)
        values = column.to_numpy()
        if self.first is not None and values.dtype.kind in "iu":
            codes = values.astype(np.int64) - self.first
            return np.where((codes >= 0) & (codes < self.levels.size), codes, -1)
        if self.text:  # an object column mixing numbers and strings: its levels are R's text of the values
            values = np.array([level_label(v) for v in values], dtype=object)
        return pd.Index(self.levels).get_indexer(values)


@dataclass(frozen=True)
class TermPlan:
    """One random-effects term: its global levels and how to build its columns for any partition.

    Attributes
    ----------
    term : RandomTerm
    levels : tuple of str
        Level labels in lme4's order (``"a:b"`` for interactions).
    coders : tuple of LevelCoder
        One per column of the grouping factor.
    combos : ndarray or None
        For an interaction, the observed combinations' codes, combined into
        one number (first column slowest) and sorted: a row's level is the
        position of its combination here.
    design : DesignMatrix
        The term's columns (``z``), with the global transform state.
    simple : tuple or None
        ``(intercept, names)`` when ``z`` is an intercept and plain numeric columns.
    """

    term: RandomTerm
    levels: tuple[str, ...]
    coders: tuple[LevelCoder, ...]
    combos: np.ndarray | None
    design: DesignMatrix
    simple: tuple[bool, tuple[str, ...]] | None

    @property
    def nlevels(self) -> int:
        return len(self.levels)

    @property
    def structure(self) -> CovarianceStructure:
        """The term's covariance structure (``cs(...)``, ``diag(...)``, ``ar1(...)``; unstructured by default)."""
        return get_structure(self.term.structure)

    @property
    def ncols(self) -> int:
        return len(self.design.column_names)

    def refs(self, frame: pd.DataFrame) -> np.ndarray:
        """Each row's level index (rows must be complete)."""
        codes = [coder.codes(frame[name]) for coder, name in zip(self.coders, self.term.factors)]
        if self.combos is None:
            refs = codes[0]
        else:
            combined = np.zeros(len(frame), dtype=np.int64)
            for coder, code in zip(self.coders, codes):
                combined = combined * coder.levels.size + code
            refs = pd.Index(self.combos).get_indexer(combined)
            refs[np.any(np.column_stack(codes) < 0, axis=1)] = -1
        if refs.size and refs.min() < 0:
            raise DataError(
                f"grouping factor {self.term.group!r} has a level that was not in the data when the "
                "model was set up; did the data change between the passes?"
            )
        return refs


@dataclass(frozen=True)
class EncodingPlan:
    """Everything a partition needs to build its rows of y, X, the offset, weights and each term's z and levels.

    Attributes
    ----------
    parsed : ParsedFormula
    frame_columns : tuple of str
        A row is used when none of these is missing.
    fixed : DesignMatrix
        X's columns with the global transform state (all columns: aliased
        ones are dropped after pass 2).
    fixed_simple : tuple or None
        ``(intercept, names)`` when X is an intercept and plain numeric columns.
    response_levels : tuple or None
        The two levels of a non-numeric (binomial) response, in order.
    weights, offset : str or None
        Columns of prior weights and of an ``offset=``.
    terms : tuple of TermPlan
        In block order (decreasing number of levels).
    nobs : int
        Complete rows in the whole data.
    stand_in : DataFrame
        The small frame the specs were built on (every level of every factor).
    """

    parsed: ParsedFormula
    frame_columns: tuple[str, ...]
    fixed: DesignMatrix
    fixed_simple: tuple[bool, tuple[str, ...]] | None
    response_levels: tuple | None
    response_ndim: int
    weights: str | None
    offset: str | None
    terms: tuple[TermPlan, ...]
    nobs: int
    stand_in: pd.DataFrame

    @property
    def complete_columns(self) -> tuple[str, ...]:
        """A row is used when none of these is missing: the formula's variables and the ``offset=`` and
        ``weights=`` columns (rows with a missing weight are dropped and counted, as lme4 and the in-memory fit do)."""
        return self.frame_columns + tuple(c for c in (self.offset, self.weights) if c is not None)

    @property
    def read_columns(self) -> list[str]:
        """The columns read from the data."""
        return list(dict.fromkeys([*self.frame_columns, *(c for c in (self.weights, self.offset) if c)]))


# --------------------------------------------------------------------------- the plan
def encoding_plan(
    parsed: ParsedFormula,
    summary: DataSummary,
    spec: SummarySpec,
    meta: pd.DataFrame,
    contrasts: Mapping[str, str] | None,
    allow_as_many_ranef_as_obs: bool = False,
) -> EncodingPlan:
    """The plan for pass 2, after the in-memory checks that pass 1's summary allows."""
    if summary.nrows == 0:
        raise DataError("data has no rows")
    if summary.ncomplete == 0:
        raise no_complete_rows_error(summary.nrows - summary.offset_missing, pd.Series(summary.missing))
    stand_in = stand_in_frame(parsed, summary, spec, meta)
    fixed = _design(parsed.fixed, stand_in, contrasts, summary, spec)
    y = build_response(parsed.response, stand_in)
    terms = _term_plans(parsed, summary, spec, stand_in, contrasts, allow_as_many_ranef_as_obs)
    response_levels = None
    if parsed.response in summary.levels:
        response_levels = tuple(summary.levels[parsed.response].tolist())
    return EncodingPlan(
        parsed=parsed,
        frame_columns=spec.frame_columns,
        fixed=fixed,
        fixed_simple=_simple(parsed.fixed, fixed, meta),
        response_levels=response_levels,
        response_ndim=y.ndim,
        weights=spec.weights,
        offset=spec.offset,
        terms=terms,
        nobs=summary.ncomplete,
        stand_in=stand_in,
    )


def stand_in_frame(parsed: ParsedFormula, summary: DataSummary, spec: SummarySpec, meta: pd.DataFrame) -> pd.DataFrame:
    """A small frame with every observed level of each factor and real values of each numeric column.

    Each column cycles through its own values, so every level of every
    factor occurs (the design gets the whole data's columns), and transforms
    such as ``log()`` see values that occur in the data.
    """
    names = sorted(
        set(required_variables(parsed.response))
        | set(required_variables(parsed.fixed))
        | {v for term in parsed.random for v in required_variables(term.expr)}
    )
    values = {name: _stand_in_values(name, summary, spec, meta) for name in names}
    rows = max([2, *(len(v) for v in values.values())])
    data = {}
    for name in names:
        cycle = np.resize(np.asarray(values[name], dtype=object), rows)
        data[name] = _as_dtype(cycle, meta[name], values[name])
    return pd.DataFrame(data, index=pd.RangeIndex(rows))


def _stand_in_values(name: str, summary: DataSummary, spec: SummarySpec, meta: pd.DataFrame) -> np.ndarray:
    """A numeric column's sample, else (a factor) its levels."""
    if name in summary.samples:
        return summary.samples[name]
    return summary.levels[name]


def _as_dtype(cycle: np.ndarray, column: pd.Series, levels: np.ndarray) -> Any:
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return pd.Categorical(cycle, categories=list(levels), ordered=bool(dtype.ordered))
    try:
        return pd.array(cycle, dtype=dtype) if not isinstance(dtype, np.dtype) else cycle.astype(dtype)
    except (TypeError, ValueError):
        return cycle


def _design(
    rhs: str, stand_in: pd.DataFrame, contrasts: Mapping[str, str] | None, summary: DataSummary, spec: SummarySpec
) -> DesignMatrix:
    """A model matrix's spec built on the stand-in frame and given the global transform state."""
    try:
        design = build_design(rhs, stand_in, contrasts)
    except DataError as exc:  # non-finite values for some of the stand-in's (real) values: the count is not the data's
        raise DataError(re.sub(r" in \d+ rows;", " in some rows;", str(exc))) from None
    states = {key: state for key, state in summary.transform_states.items() if key in design.transform_state}
    missing = [
        key
        for key, state in design.transform_state.items()
        if state and key not in states and not _state_from_levels(key)
    ]
    if missing:
        raise NotOnDaskError(
            f"cannot work out the state of {missing[0]} over all partitions; "
            "on Dask only scale(), center(), standardize(), poly() and as.numeric() can be used"
        )
    _check_factors(design, spec)
    return design.with_transform_state(states)


def global_design(rhs: str, plan: EncodingPlan, contrasts: Mapping[str, str] | None = None) -> DesignMatrix:
    """Another design of the fixed part's variables (e.g. other contrasts, one term alone), for any partition.

    Built on the plan's stand-in frame (every level of every factor), with
    the whole data's transform states of the fixed part (``scale(x)`` means
    the same here as in X).  ``for_newdata`` of the result gives a partition's rows.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        design = build_design(rhs, plan.stand_in, contrasts)
    known = plan.fixed.transform_state
    states = {key: state for key, state in known.items() if key in design.transform_state}
    missing = [
        key
        for key, state in design.transform_state.items()
        if state and key not in states and not _state_from_levels(key)
    ]
    if missing:
        raise NotOnDaskError(f"{rhs!r} needs the state of {missing[0]}, which the fit's fixed part does not have")
    return design.with_transform_state(states)


def _check_factors(design: DesignMatrix, spec: SummarySpec) -> None:
    """Every factor the design encodes must come from one column whose levels pass 1 collected.

    The stand-in frame holds every observed value of such a column, so any
    function of it (``C(Days // 3)``) sees every observed level; a factor
    computed from several columns would need their observed combinations.
    """
    for code in design.factor_levels():
        names = required_variables(code) if code not in spec.level_columns else {code}
        if len(names) != 1 or not names <= set(spec.level_columns):
            raise NotOnDaskError(
                f"the factor {code!r} is computed from other columns; on Dask its levels cannot be "
                "collected: add it to the data as a column first"
            )


def _simple(rhs: str, design: DesignMatrix, meta: pd.DataFrame) -> tuple[bool, tuple[str, ...]] | None:
    """``(intercept, names)`` when the design is an intercept and plain numeric columns, used as they are."""
    terms = simple_terms(rhs)
    if terms is None:
        return None
    intercept, names = terms
    if design.column_names != ("(Intercept)",) * intercept + names or design.transform_state:
        return None
    if not all(name in meta.columns and _is_numeric(meta[name]) for name in names):
        return None
    return intercept, names


def _term_plans(
    parsed: ParsedFormula,
    summary: DataSummary,
    spec: SummarySpec,
    stand_in: pd.DataFrame,
    contrasts: Mapping[str, str] | None,
    allow_as_many: bool,
) -> tuple[TermPlan, ...]:
    """Each term's plan, with lme4's checks, in block order."""
    if not parsed.random:
        raise ModelSpecError("no random-effects terms in the formula; use mm.lm() or mm.glm() for a model without them")
    plans = [_term_plan(term, summary, spec, stand_in, contrasts) for term in parsed.random]
    nobs = summary.ncomplete
    for plan in plans:
        nranef = plan.nlevels * plan.ncols
        if nranef > nobs or (nranef == nobs and not allow_as_many):
            relation = "<=" if nranef == nobs else "<"
            raise ModelSpecError(
                f"number of observations (={nobs}) {relation} number of random effects (={nranef}) "
                f"for term {_term_text(plan)}; the random-effects parameters and the residual variance "
                "are probably unidentifiable"
            )
    return tuple(sorted(plans, key=lambda p: -p.nlevels))


def _term_text(plan: TermPlan) -> str:
    return f"({plan.term.expr or ' + '.join(plan.design.column_names)} | {plan.term.group})"


def _term_plan(
    term: RandomTerm,
    summary: DataSummary,
    spec: SummarySpec,
    stand_in: pd.DataFrame,
    contrasts: Mapping[str, str] | None,
) -> TermPlan:
    coders = tuple(
        LevelCoder.make(summary.levels[name], spec.level_columns[name], name in summary.text_levels)
        for name in term.factors
    )
    combos = None
    if len(term.factors) == 1:
        labels = tuple(str(v) for v in coders[0].levels.tolist())
    else:
        codes = summary.combos[term.factors]
        labels = tuple(":".join(str(coders[j].levels[c]) for j, c in enumerate(row)) for row in codes.tolist())
        combos = np.zeros(len(codes), dtype=np.int64)
        for j, coder in enumerate(coders):
            combos = combos * coder.levels.size + codes[:, j]
    if len(labels) < 2:
        raise ModelSpecError(
            f"grouping factor {term.group!r} in {term} has {len(labels)} level; "
            "a random effect needs at least 2 levels (use a fixed effect instead)"
        )
    design = _design(term.expr, stand_in, contrasts, summary, spec)
    if not design.column_names:
        raise ModelSpecError(f"random-effects term {term} has no columns")
    check_structure(term, get_structure(term.structure), design, _structure_frame(term, stand_in, spec))
    meta = stand_in
    return TermPlan(term, labels, coders, combos, design, _simple(term.expr, design, meta))


def _structure_frame(term: RandomTerm, stand_in: pd.DataFrame, spec: SummarySpec) -> pd.DataFrame:
    """The stand-in frame with an ``ar1`` factor's every known category (unused ones too), for the in-memory check.

    The stand-in holds each observed level once or more, so the check finds
    categories without rows as it does on the whole data.  An ordered factor
    whose categories dask does not know has no order to follow: refused.
    """
    if term.structure != "ar1" or not term.expr.startswith("0 + "):
        return stand_in
    name = term.expr[4:].strip().strip("`")
    column = stand_in.get(name)
    if column is None or not isinstance(column.dtype, pd.CategoricalDtype):
        return stand_in
    categories = spec.level_columns.get(name)
    if categories is None:
        raise NotOnDaskError(
            f"ar1() in {term} needs the order of {name!r}'s categories, which dask does not know: "
            f"make them known first (ddf[{name!r}] = ddf[{name!r}].cat.as_known())"
        )
    frame = stand_in.copy()
    frame[name] = pd.Categorical(column.astype(object), categories=list(categories), ordered=column.dtype.ordered)
    return frame

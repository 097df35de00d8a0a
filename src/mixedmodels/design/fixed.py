"""Fixed-effects model matrices with R's contrasts and R's column names.

formulaic parses and evaluates the formula; this module makes the result read
like R's ``model.matrix`` (and so like lme4's ``getME(m, "X")``):

* the intercept is ``(Intercept)``; numeric terms are named by the text as
  written (``Days``, ``scale(HEIGHT)``, ``I(x**2)``); interactions join with ``:``;
* factors are named variable + level (``GenderM``, ``period2``), logicals use
  R's ``xTRUE``; ordered factors use ``contr.poly`` (``f.L``, ``f.Q``, ``f.C``,
  ``f^4``), ``contr.sum``/``contr.helmert`` columns are numbered (``f1``, ``f2``)
  (the contrasts and levels are :mod:`.contrasts`');
* which factors in a term get contrasts and which get full indicator coding
  follows R's rule (``TermCode`` in R's ``model.c``), not formulaic's own one,
  so e.g. ``~ a:b`` gives R's rank-deficient coding that
  :func:`~.checks.drop_aliased_columns` then trims exactly as lme4 does;
* factor levels are the Categorical's category order, or the sorted unique
  values for other columns.  Unlike R (which keeps them and lets lme4 drop the
  all-zero columns), levels that do not occur in the data are dropped, so no
  all-zero column appears.

The matrix is rebuilt for new data by replaying formulaic's ``ModelSpec``:
``scale()`` reuses the training mean and SD, factors the training levels and
contrasts.  The response is built by :mod:`.response` with the same formula
functions (:data:`CONTEXT`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from formulaic import ModelSpec
from formulaic.materializers import PandasMaterializer
from formulaic.materializers.types import ScopedFactor, ScopedTerm
from formulaic.parser.types import Factor
from formulaic.parser.algos.sanitize_tokens import sanitize_python_code
from formulaic.utils.cast import as_columns
from interface_meta import override

from ..errors import (
    DataError,
    FormulaError,
    MixedModelsError,
    ModelSpecError,
)
from ..formula import is_plain_name
from ..options import current_contrasts, option_context
from .contrasts import contrast_name, default_contrast, encode_factor, is_boolean
from .frame import (
    ModelFrame,
    check_columns,
    check_data_frame,
    check_real,
    column_numbers,
    formula_code,
    frame_data,
    plain_message,
    required_variables,
)
from .calls import FUNCTION_ROOTS
from .products import SampleRows, plain_kind, product_design, product_terms
from .simple import numeric_columns, simple_matrix, simple_terms
from .transforms import CONTEXT, RESERVED
from .values import formula_data

__all__ = [
    "DesignMatrix",
    "build_design",
    "CONTEXT",
    "run_formulaic",
]

# ---------------------------------------------------------------------------
# The formulaic materializer that applies R's rules


class _RMaterializer(PandasMaterializer):
    """Pandas materializer with R's factor coding, contrasts and column names.

    Parameters (stored in the ModelSpec, so replays for new data agree):
    ``contrasts`` maps a variable to a contrast name; ``spellings`` maps
    formulaic's normalised code (``I(x ** 2)``) back to the text as written.
    """

    REGISTER_NAME = "mixedmodels_r"
    REGISTER_INPUTS: Sequence[str] = ()  # only used when asked for by name
    REGISTER_PRECEDENCE = 0

    @override
    def _is_categorical(self, values: Any) -> bool:
        if isinstance(values, (pd.Series, np.ndarray)) and (is_boolean(values) or str(values.dtype) == "string"):
            return True
        return super()._is_categorical(values)

    @override
    def _encode_evaled_factor(self, factor, spec, drop_rows, reduced_rank=False):
        self._current_factor = factor.expr  # name for _encode_categorical
        return super()._encode_evaled_factor(factor, spec, drop_rows, reduced_rank)

    @override
    def _encode_categorical(self, values, metadata, encoder_state, spec, drop_rows, reduced_rank=False):
        name = self._current_factor
        chosen = self.params.get("contrasts", {}).get(name)
        contrast = chosen or default_contrast(getattr(values, "__wrapped__", values))
        return as_columns(
            encode_factor(values, reduced_rank, drop_rows, encoder_state, spec, name=name, contrast=contrast)
        )

    @override
    def _flatten_encoded_evaled_factor(self, name: str, values: Any) -> dict[str, Any]:
        name = self.params.get("spellings", {}).get(name, name)
        if not isinstance(values, dict):
            return {name: values}
        out: dict[str, Any] = {}
        for key, value in values.items():
            if isinstance(key, str) and key.startswith("__"):
                continue
            label = f"{name}{key + 1 if isinstance(key, (int, np.integer)) else key}"
            if isinstance(value, dict):
                out.update(self._flatten_encoded_evaled_factor(label, value))
            else:
                out[label] = value
        return out

    @override
    def _get_scoped_terms(self, terms, ensure_full_rank=True) -> Iterator:
        """Contrasts vs indicators per factor, as R's ``TermCode`` decides.

        A factor in a term is coded by contrasts when the term without it is
        empty or is contained in an earlier term; otherwise by indicators.
        Without an intercept the first factor of the first term holding one
        is coded by indicators.
        """
        terms = list(terms)
        evaled = [self._evaluated(term) for term in terms]
        has_intercept = any(fs and all(_is_constant(f) for f in fs) for fs in evaled)
        full_first = None if has_intercept else _first_coded_factor(evaled)
        earlier: list[frozenset[str]] = []
        for i, (term, factors) in enumerate(zip(terms, evaled)):
            if not factors:
                yield term, []
                continue
            varying = [f for f in factors if not _is_constant(f)]
            exprs = frozenset(f.expr for f in varying)
            scoped = [
                ScopedFactor(f, reduced=_uses_contrasts(f, exprs, earlier, (i, f.expr) == full_first)) for f in varying
            ]
            scale = 1
            for constant in (f for f in factors if _is_constant(f)):
                scale *= constant.values
            earlier.append(exprs)
            yield term, [ScopedTerm(scoped, scale=scale)]

    def _evaluated(self, term) -> list:
        """The evaluated factors of ``term`` (as formulaic's own scoping skips empty ones)."""
        cache = self.factor_cache
        return [cache[f.expr] for f in term.factors if cache[f.expr].values.__wrapped__ is not None]


def _is_constant(factor) -> bool:
    """Literal factors such as the intercept's ``1``."""
    return factor.metadata.kind is Factor.Kind.CONSTANT


def _is_coded(factor) -> bool:
    """Whether a factor is categorical and may be coded by contrasts."""
    meta = factor.metadata
    return meta.kind is Factor.Kind.CATEGORICAL and bool(meta.spans_intercept)


def _first_coded_factor(evaled: list[list]) -> tuple[int, str] | None:
    """(term index, factor) of the first categorical factor: R's no-intercept special case."""
    for i, factors in enumerate(evaled):
        for factor in factors:
            if _is_coded(factor):
                return i, factor.expr
    return None


def _uses_contrasts(factor, term: frozenset[str], earlier: list[frozenset[str]], full: bool) -> bool:
    """R's TermCode: contrasts iff the term minus this factor is empty or in an earlier term."""
    if full or not _is_coded(factor):
        return False
    rest = term - {factor.expr}
    return not rest or any(rest <= other for other in earlier)


# ---------------------------------------------------------------------------
# Text as written


_CALL = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\s*\(")
_BACKTICKED = re.compile(r"`([^`]+)`")


def _spellings(written: str) -> dict[str, str]:
    """Names as written, keyed by formulaic's code for them.

    Each call in ``written`` (``poly(Days, 2, raw = TRUE)``) is keyed by the
    code formulaic normalises its R spelling to (``poly(Days, 2, raw=True)``);
    a column whose name needs backticks keeps them, as in R (`` `Sepal Width` ``).
    """
    out: dict[str, str] = {}
    for match in _CALL.finditer(written):
        end = _closing_paren(written, match.end() - 1)
        if end is None:
            continue
        original = written[match.start() : end + 1]
        try:
            out.setdefault(sanitize_python_code(formula_code(original)[0]), original)
        except Exception:  # noqa: BLE001 -- only names are at stake; formulaic reports bad code itself
            continue
    code, aliases = formula_code(written)
    out.update({alias: f"`{name}`" for alias, name in aliases.items()})
    for name in _BACKTICKED.findall(code):
        if not is_plain_name(name):
            out.setdefault(name, f"`{name}`")
    return out


def _closing_paren(text: str, start: int) -> int | None:
    """Index of the parenthesis closing the one at ``start`` (quotes respected)."""
    depth, quote = 0, None
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
    return None


# ---------------------------------------------------------------------------
# Design matrices


@dataclass(frozen=True, eq=False)
class DesignMatrix:
    """A fixed-effects model matrix with R's column names.

    Attributes
    ----------
    matrix : numpy.ndarray
        ``(n, p)`` float64, C-contiguous.
    column_names : tuple of str
        R-style names (``(Intercept)``, ``Days``, ``GenderM``, ``Days:GenderM``).
    offset : numpy.ndarray or None
        Sum of the ``offset(...)`` terms, or None when there are none.
    """

    matrix: np.ndarray
    column_names: tuple[str, ...]
    offset: np.ndarray | None
    _spec_source: ModelSpec | _DeferredSpec | None = field(default=None, repr=False)
    _columns: tuple[int, ...] = field(default=(), repr=False)
    _offset_columns: tuple[int, ...] = field(default=(), repr=False)
    _variables: frozenset[str] = field(default=frozenset(), repr=False)

    @property
    def _spec(self) -> ModelSpec | None:
        """formulaic's fitted spec (replays, term structure); built on first use for simple designs."""
        source = self._spec_source
        return source.get() if isinstance(source, _DeferredSpec) else source

    def keep_columns(self, keep: Sequence[int]) -> "DesignMatrix":
        """The same design with only the columns ``keep`` (in that order); ``for_newdata`` gives only those."""
        keep = list(keep)
        return replace(
            self,
            matrix=np.ascontiguousarray(self.matrix[:, keep]),
            column_names=tuple(self.column_names[j] for j in keep),
            _columns=tuple(self._columns[j] for j in keep) if self._columns else (),
        )

    def for_newdata(self, data: pd.DataFrame) -> np.ndarray:
        """The same columns for new data, replaying stateful transforms.

        ``scale()`` uses the training mean and SD, factors the training levels
        and contrasts.  Rows with a missing value in a used variable give NaN
        rows (R's ``na.pass``).

        Raises
        ------
        DataError
            For a missing column or a factor level not seen in training.
        """
        full = self._replay(data)
        return np.ascontiguousarray(full[:, list(self._columns)])

    @property
    def transform_state(self) -> dict[str, dict]:
        """The state of the stateful transforms by call (``{"scale(x)": {"center": ..., "scale": ...}}``), as formulaic keeps it."""
        spec = self._spec
        return {} if spec is None else dict(spec.transform_state)

    def with_transform_state(self, states: Mapping[str, dict]) -> "DesignMatrix":
        """The same design whose replays (:meth:`for_newdata`) use the given transform states.

        For states computed from more data than the design was built on (e.g.
        ``scale()``'s mean and SD over every partition of a dask DataFrame).

        Raises
        ------
        ModelSpecError
            For a call the design has no state for.
        """
        current = self.transform_state
        unknown = sorted(set(states) - set(current))
        if unknown:
            raise ModelSpecError(f"the design has no stateful transform {unknown[0]!r} (it has {sorted(current)})")
        if not states:
            return self
        spec = self._spec.update(transform_state={**current, **{k: dict(v) for k, v in states.items()}})
        return replace(self, _spec_source=spec)

    def factor_levels(self) -> dict[str, list[str]]:
        """The levels of each factor the design encodes, by the factor's code (``{"period": ["1", "2", ...]}``)."""
        spec = self._spec
        if spec is None:
            return {}
        out = {}
        for code, (kind, state) in spec.encoder_state.items():
            if getattr(kind, "value", kind) == "categorical":
                out[code] = [str(level) for level in state.get("categories", ())]
        return out

    def offset_for_newdata(self, data: pd.DataFrame) -> np.ndarray | None:
        """The offset for new data, or None when the formula has no offset."""
        if not self._offset_columns:
            return None
        return self._replay(data)[:, list(self._offset_columns)].sum(axis=1)

    def _replay(self, data: pd.DataFrame) -> np.ndarray:
        if self._spec is None:
            raise ModelSpecError("this design matrix was not built from a formula")
        check_data_frame(data)
        check_columns(data, sorted(self._variables))
        check_real(data, sorted(self._variables))
        aliases = self._spec.materializer_params.get("aliases", {})
        full = _materialize(
            self._spec, formula_data(data, self._variables, aliases), "the fixed-effects formula on new data"
        )
        incomplete = data.loc[:, sorted(self._variables)].isna().any(axis=1).to_numpy()
        if incomplete.any():
            full[incomplete, :] = np.nan
        return full


def build_design(rhs: str, data: pd.DataFrame | ModelFrame, contrasts: Mapping[str, str] | None = None) -> DesignMatrix:
    """Build the fixed-effects model matrix for the formula part ``rhs``.

    Parameters
    ----------
    rhs : str
        formulaic right-hand side without random-effect bars, e.g.
        ``"Days"``, ``"0 + f"``, ``"YEAR + scale(HEIGHT)"``, ``"x + offset(log(n))"``.
    data : pandas.DataFrame or ModelFrame
        Complete data.  A DataFrame is checked here (a DataFrame, with the
        columns, without missing values); a
        :class:`~mixedmodels.design.frame.ModelFrame` was checked when it was
        made and is trusted.
    contrasts : mapping, optional
        Per-variable contrasts: ``{"f": "sum"}``; values ``"treatment"``,
        ``"sum"``, ``"helmert"``, ``"poly"``, ``"SAS"`` (``"contr."`` prefix
        allowed).  Keys that are not factors in ``rhs`` are ignored here (a
        model's random terms are built with the same mapping); the model
        functions warn about keys that no part of the formula uses, as R does.

    Raises
    ------
    FormulaError, DataError, ModelSpecError
    """
    source = data
    trusted = isinstance(source, ModelFrame)
    if not trusted:
        data, _ = frame_data(data)  # checks that it is a DataFrame
    if not isinstance(rhs, str) or "~" in rhs:
        raise FormulaError(f"build_design expects one side of a formula, got {rhs!r}")
    simple = _simple_design(rhs, source, contrasts, trusted)
    if simple is None:
        simple = _product_design(rhs, source, contrasts, trusted)
    if simple is not None:
        return simple
    if trusted:
        data = source.data
    variables = required_variables(rhs)
    if not trusted:
        check_columns(data, sorted(variables))
        check_real(data, sorted(variables))
        _check_complete(data, variables)
    chosen = _chosen_contrasts(contrasts)
    code, aliases = formula_code(rhs)
    full, spec = _materialize_new(_new_spec(code, chosen, aliases, rhs), formula_data(data, variables, aliases), rhs)
    design_cols, offset_cols, names = _layout(spec)
    matrix = np.ascontiguousarray(full[:, design_cols])
    offset = full[:, offset_cols].sum(axis=1) if offset_cols else None
    _check_finite(matrix, names, offset)
    return DesignMatrix(matrix, tuple(names), offset, spec, tuple(design_cols), tuple(offset_cols), variables)


def _chosen_contrasts(contrasts: Mapping[str, str] | None) -> dict[str, str]:
    """Canonical contrast names per variable; unknown names raise ModelSpecError."""
    if not contrasts:
        return {}
    return {str(k): contrast_name(v, f"variable {k!r}") for k, v in contrasts.items()}


def _new_spec(
    code: str, chosen: Mapping[str, str], aliases: Mapping[str, str] | None = None, written: str | None = None
) -> ModelSpec:
    """An unfitted formulaic spec for ``code`` with our materializer and R's contrasts and spellings.

    ``code`` is formulaic's code for the text ``written`` (:func:`~.frame.formula_code`);
    ``aliases`` name columns that ``code`` refers to by alias: the spec keeps
    them for replays, and the columns are named as written (`` `1` ``).
    """
    aliases = dict(aliases or {})
    spellings = _spellings(code if written is None else written)
    chosen = {**chosen, **{alias: chosen[name] for alias, name in aliases.items() if name in chosen}}
    return ModelSpec.from_spec(
        code,
        materializer=_RMaterializer.REGISTER_NAME,
        materializer_params={"contrasts": dict(chosen), "spellings": spellings, "aliases": aliases},
        output="numpy",
        na_action="ignore",
    )


def _simple_design(
    rhs: str, source: pd.DataFrame | ModelFrame, contrasts: Mapping[str, str] | None, trusted: bool
) -> DesignMatrix | None:
    """The design of an intercept and plain numeric columns without formulaic, else None.

    Same checks, in the same order, and the same matrix as the formulaic path
    (see :mod:`.simple`); formulaic's spec is made only if a replay or the
    term structure is asked for.  ``trusted``: ``source`` is a model frame.
    """
    terms = simple_terms(rhs)
    if terms is None or not RESERVED.isdisjoint(terms[1]):
        return None
    intercept, names = terms
    variables = frozenset(names)
    nrows = source.nrows if isinstance(source, ModelFrame) else len(source)
    if not trusted:
        check_columns(source, sorted(variables))
    columns = numeric_columns(source, names)
    if columns is None:
        return None
    if not trusted and any(np.isnan(column).any() for column in columns):
        _check_complete(source, variables)  # raises, naming the columns
    chosen = _chosen_contrasts(contrasts)
    matrix = simple_matrix(intercept, columns, nrows)
    column_names = ("(Intercept)",) * intercept + names
    _check_finite(matrix, column_names, None)
    # a model frame's columns are never modified (see _product_design): its rows are read when the spec is
    # asked for; a caller's DataFrame may change, so its rows are taken now
    sample = functools.partial(_simple_sample, source, names, nrows)
    deferred = _DeferredSpec(rhs, chosen, sample if trusted else functools.partial(pd.DataFrame, sample()))
    return DesignMatrix(matrix, column_names, None, deferred, tuple(range(len(column_names))), (), variables)


def _simple_sample(source: pd.DataFrame | ModelFrame, names: tuple[str, ...], nrows: int) -> pd.DataFrame:
    """The first two rows of a simple design's columns (NumPy numbers), which its formulaic spec is fitted on."""
    sample = {name: column_numbers(source, name)[1][:2].copy() for name in names}  # type: ignore[index]
    return pd.DataFrame(sample, index=range(min(2, nrows)))


def _product_design(
    rhs: str, source: pd.DataFrame | ModelFrame, contrasts: Mapping[str, str] | None, trusted: bool
) -> DesignMatrix | None:
    """The design of products of plain numeric and factor columns without formulaic, else None.

    Same checks, in the same order, and the same matrix as the formulaic path
    (see :mod:`.products`); formulaic's spec is fitted, on a few rows holding
    every level, only if a replay or the term structure is asked for.
    """
    terms = product_terms(rhs)
    if terms is None:
        return None
    variables = frozenset(terms.variables)
    framed = isinstance(source, ModelFrame)  # its DataFrame is made on first use: not here
    if terms.calls and not FUNCTION_ROOTS.isdisjoint(source.names if framed else source.columns):
        return None  # a column named np, log, ...: formulaic's lookup would find it
    if not trusted:
        check_columns(source, sorted(variables))
    reads = {name: column_numbers(source, name) for name in terms.variables}  # a model frame's, read already
    if not all(plain_kind(dtype) for dtype, _ in reads.values()):
        return None
    if not trusted:
        _check_complete(source, variables)
    chosen = _chosen_contrasts(contrasts)
    nrows = source.nrows if framed else len(source)
    built = product_design(terms, source, reads, chosen, nrows, _spellings(rhs) if terms.calls else None)
    if built is None:
        return None
    _check_finite(built.matrix, built.column_names, built.offset)
    # a model frame's columns (its own copies once released) are never modified: the rows are found from them
    # when the spec is asked for; a caller's DataFrame may change, so its rows are taken now
    rows = SampleRows(source, terms.variables, built.factors, built.floats, nrows)
    deferred = _DeferredSpec(rhs, chosen, rows.frame if framed else functools.partial(pd.DataFrame, rows.frame()))
    return DesignMatrix(
        built.matrix, built.column_names, built.offset, deferred, built.columns, built.offset_columns, variables
    )


class _DeferredSpec:
    """formulaic's fitted spec of a simple or product design, made on first use.

    Such a design has no stateful transform to remember, and its factors'
    levels are those of a few rows holding every level, so its spec fitted on
    those rows equals the one fitted on all of them (tested); ``sample`` makes
    those rows (a DataFrame) from columns nobody modifies or from copies, and
    the default contrasts in force when the design was built (``mm.options``)
    are used for the fit.
    """

    __slots__ = ("_rhs", "_chosen", "_sample", "_defaults", "_spec")

    def __init__(self, rhs: str, chosen: Mapping[str, str], sample: Callable[[], pd.DataFrame]) -> None:
        self._rhs, self._chosen, self._sample = rhs, dict(chosen), sample
        self._defaults = current_contrasts()
        self._spec: ModelSpec | None = None

    def get(self) -> ModelSpec:
        if self._spec is None:
            sample = self._sample()
            with option_context(contrasts=self._defaults):
                self._spec = _materialize_new(_new_spec(self._rhs, self._chosen), sample, self._rhs)[1]
        return self._spec


def _materialize_new(spec: ModelSpec, data: pd.DataFrame, rhs: str) -> tuple[np.ndarray, ModelSpec]:
    """Materialize a fresh spec; return the float matrix and the fitted spec."""
    build = lambda: spec.get_model_matrix(data, context=CONTEXT)  # noqa: E731
    result = run_formulaic(build, repr(rhs), rhs)
    return _as_float(result, len(data)), result.model_spec


def _materialize(spec: ModelSpec, data: pd.DataFrame, what: str) -> np.ndarray:
    """Replay a fitted spec on ``data``."""
    result = run_formulaic(lambda: spec.get_model_matrix(data, context=CONTEXT), what)
    return _as_float(result, len(data))


def run_formulaic(build, what: str, text: str = ""):
    """Call formulaic, turning its exceptions into mixedmodels errors."""
    try:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return build()
    except MixedModelsError:
        raise
    except Exception as exc:
        cause = exc.__cause__
        if isinstance(cause, MixedModelsError):
            raise cause from None
        hint = _hint(cause or exc, text)
        raise FormulaError(f"cannot evaluate {what}: {plain_message(exc)}{hint}") from exc


def _hint(exc: BaseException, text: str) -> str:
    if isinstance(exc, TypeError) and "^" in text:
        return " (code inside I(...) is Python: write powers as x**2, not x^2)"
    return ""


def _as_float(result: Any, n: int) -> np.ndarray:
    array = np.asarray(result, dtype=np.float64)
    return array.reshape(n, -1) if array.ndim != 2 else array


def _layout(spec: ModelSpec) -> tuple[list[int], list[int], list[str]]:
    """Column indices of design and offset terms, and R's names for the design."""
    design, offset, names, pos = [], [], [], 0
    for entry in spec.structure:
        columns = list(entry.columns)
        indices = list(range(pos, pos + len(columns)))
        pos += len(columns)
        factors = entry.term.factors
        if len(factors) == 1 and factors[0].expr.startswith("offset("):
            offset.extend(indices)
            continue
        design.extend(indices)
        names.extend("(Intercept)" if str(entry.term) == "1" else c for c in columns)
    return design, offset, names


def _check_complete(data: pd.DataFrame, variables: frozenset[str]) -> None:
    if not variables:
        return
    counts = data.loc[:, sorted(variables)].isna().sum(axis=0)
    bad = {name: int(n) for name, n in counts.items() if n > 0}
    if bad:
        listed = ", ".join(f"{k} ({v} rows)" for k, v in bad.items())
        raise DataError(f"missing values in {listed}; remove incomplete rows first (model_frame does this)")


def _check_finite(matrix: np.ndarray, names: Sequence[str], offset: np.ndarray | None) -> None:
    bad = ~np.isfinite(matrix)
    if bad.any():
        cols = [names[j] for j in np.flatnonzero(bad.any(axis=0))]
        raise DataError(
            f"the fixed-effects column(s) {', '.join(cols)} have non-finite values (NaN or "
            f"infinite) in {int(bad.any(axis=1).sum())} rows; check transformations such as "
            "log() of zero or negative values"
        )
    if offset is not None and not np.isfinite(offset).all():
        raise DataError("the offset has non-finite values (NaN or infinite)")

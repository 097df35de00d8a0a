"""Model frames: pick the columns a formula uses and drop incomplete rows.

This mirrors R's ``model.frame(..., na.action = na.omit)``: only the variables
a formula needs are kept, and every row with a missing value in any of them is
dropped (the original row labels are kept, so results can be matched back to
the input).  Column look-ups fail with a :class:`~mixedmodels.errors.DataError`
that names the missing column and suggests close spellings.
"""

from __future__ import annotations

import ast
import difflib
import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import FrozenInstanceError
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, FormulaError
from ..formula import has_dot, to_formulaic

# a NumPy-dtype column's Series.array (pandas 2.0 named it PandasArray)
_NUMPY_BACKED = getattr(pd.arrays, "NumpyExtensionArray", None) or getattr(pd.arrays, "PandasArray")  # noqa: B009

__all__ = [
    "ModelFrame",
    "get_column",
    "column_numbers",
    "column_array",
    "column_codes",
    "model_frame",
    "required_variables",
    "formula_code",
    "alias_numeric_names",
    "frame_data",
    "check_data_frame",
    "check_columns",
    "check_real",
    "formula_factors",
    "no_complete_rows_error",
]

# Names used as namespaces inside formula code (``np.log(x)``, ``C(f, contr.sum)``);
# they are never data columns.  Called names (``log``, ``scale``) are skipped anyway.
_NAMESPACES = frozenset({"np", "numpy", "pd", "pandas", "math", "contr"})


def required_variables(expr: str) -> frozenset[str]:
    """Column names a formulaic expression uses.

    ``expr`` is one side of a formula or ``"lhs ~ rhs"``.  Function names,
    namespaces such as ``np`` and literals are ignored, so
    ``"log(y) ~ scale(x) + f:g + offset(z)"`` needs ``{y, x, f, g, z}`` and
    ``"cbind(a, b - a)"`` needs ``{a, b}``.

    The answer depends on the text alone and formulaic's parse is the costly
    part of a small fit, so it is cached by text (the frozenset is immutable).

    Raises
    ------
    FormulaError
        If formulaic cannot parse ``expr``.
    """
    if not isinstance(expr, str):
        raise FormulaError(f"a formula must be a string, got {type(expr).__name__}")
    return _required_variables(expr)


@functools.lru_cache(maxsize=512)
def _required_variables(expr: str) -> frozenset[str]:
    if has_dot(expr):
        raise FormulaError(
            f"'.' (all other columns) in {expr!r}: the model functions (lmer, glmer, lm, glm) expand it "
            "from their data, in the fixed part of a formula; here, name the columns"
        )
    text, aliases = formula_code(expr)
    names: set[str] = set()
    for factor in _factors(text):
        method = factor.eval_method.value
        if method == "lookup":
            names.add(factor.expr)
        elif method == "python":
            names.update(_python_names(factor.expr))
    return frozenset(aliases.get(name, name) for name in names)


_BACKTICKED = re.compile(r"`([^`]+)`")


def formula_code(text: str) -> tuple[str, dict[str, str]]:
    """The code formulaic evaluates for formula text, and the aliases it uses for columns.

    R's spellings are rewritten (:func:`~mixedmodels.formula.rsyntax.to_formulaic`:
    ``Sepal.Length``, ``as.numeric(f)``, ``raw = TRUE``, ``Q("my days")``), then
    backticked names that read as numbers are aliased (:func:`alias_numeric_names`).
    The same text always gives the same code, also as part of a longer text.
    """
    return alias_numeric_names(to_formulaic(text))


def alias_numeric_names(text: str) -> tuple[str, dict[str, str]]:
    """Backticked column names that read as numbers (`` `1` ``) replaced by plain aliases.

    formulaic identifies a term by its text, so the column `` `1` `` would be
    the intercept ``1`` (and ``x:`1` `` would lose it).  Each such name becomes
    ``_mm_numeric_name_<hex of the name>`` (the same alias wherever the name
    appears); returns the new text and ``{alias: column name}`` (empty, and the
    text unchanged, when there is none).
    """
    aliases: dict[str, str] = {}

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if not _reads_as_number(name):
            return match.group(0)
        alias = f"_mm_numeric_name_{name.encode().hex()}"
        aliases[alias] = name
        return alias

    return _BACKTICKED.sub(replace, text), aliases


def _reads_as_number(name: str) -> bool:
    try:
        float(name)
    except ValueError:
        return False
    return True


def formula_factors(expr: str) -> tuple[tuple[str, str], ...]:
    """Every factor of ``expr`` as ``(code, how)``, ``how`` being formulaic's "lookup", "python" or "literal".

    ``"log(y) ~ scale(x) + f:g"`` gives ``(("log(y)", "python"),
    ("scale(x)", "python"), ("f", "lookup"), ("g", "lookup"))`` (in
    formulaic's order); the code is what formulaic evaluates for the factor,
    R's spellings rewritten as :func:`formula_code` does (``as.numeric(f)``,
    ``raw = TRUE``; a column aliased there keeps its alias).
    """
    if not isinstance(expr, str):
        raise FormulaError(f"a formula must be a string, got {type(expr).__name__}")
    return _formula_factors(expr)


@functools.lru_cache(maxsize=512)
def _formula_factors(expr: str) -> tuple[tuple[str, str], ...]:
    code, _ = formula_code(expr)
    return tuple(dict.fromkeys((f.expr, f.eval_method.value) for f in _factors(code)))


def _factors(expr: str) -> Iterator:
    """Every formulaic ``Factor`` in every part of ``expr``."""
    from formulaic import Formula
    from formulaic.formula import SimpleFormula

    if not isinstance(expr, str):
        raise FormulaError(f"a formula must be a string, got {type(expr).__name__}")
    try:
        formula = Formula(expr)
    except Exception as exc:  # formulaic raises several unrelated exception types
        raise FormulaError(f"cannot parse formula {expr!r}: {plain_message(exc)}") from exc
    parts = [formula] if isinstance(formula, SimpleFormula) else formula._flatten()
    for part in parts:
        for term in part:
            yield from term.factors


def _python_names(code: str) -> set[str]:
    """Free variable names in a Python expression, skipping called names."""
    from formulaic.utils.code import sanitize_variable_names

    aliases: dict[str, str] = {}
    try:
        tree = ast.parse(sanitize_variable_names(code, {}, aliases), mode="eval")
    except SyntaxError as exc:
        raise FormulaError(f"cannot parse {code!r} in the formula: {exc.msg}") from exc
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            skip.add(id(node.func))
        elif isinstance(node, ast.Attribute):
            root = node
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in _NAMESPACES:
                skip.add(id(root))
    return {
        aliases.get(node.id, node.id) for node in ast.walk(tree) if isinstance(node, ast.Name) and id(node) not in skip
    }


def plain_message(exc: BaseException) -> str:
    """An exception's message without formulaic's terminal colour codes."""
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    return " ".join(text.replace("⧛", "").replace("⧚", "").split())


class ModelFrame:
    """The data a model is fitted to (R's model frame).

    Attributes
    ----------
    data : pandas.DataFrame
        Only the used columns, rows with any missing value dropped, original
        index kept.  A frame that drops no row keeps the data's own columns
        and makes this DataFrame (a copy) on first use: a fit reads only the
        columns (:meth:`column`), and the DataFrame is most of the cost of a
        small model's frame.
    n_dropped : int
        Number of rows dropped because of missing values (R's ``na.omit``).
    """

    __slots__ = ("_data", "n_dropped", "_columns", "_index", "nrows", "_owned", "_read", "_codes")
    _STATE = __slots__[:-2]  # ``_read`` and ``_codes`` (what :meth:`numbers`, :meth:`codes` read) start empty

    _data: pd.DataFrame | None
    n_dropped: int
    _columns: dict
    _index: pd.Index | None
    nrows: int
    _owned: bool  # False while the columns are the caller's Series (see release)
    _read: dict  # name -> (dtype, values): see numbers
    _codes: dict  # name -> a categorical column's codes: see codes

    def __init__(self, data: pd.DataFrame, n_dropped: int) -> None:
        self._set(data, n_dropped, {}, None, len(data), True)

    @classmethod
    def from_columns(cls, columns: dict, index: pd.Index | None, nrows: int) -> "ModelFrame":
        """A frame of ``nrows`` complete rows of ``columns`` (name -> the data's Series), labelled by ``index``
        (None: by position, 0 to ``nrows - 1``), whose DataFrame is made on first use.  Only with
        copy-on-write (pandas >= 3): the Series held keep the values the data had, whatever the caller
        does to the data later."""
        frame = cls.__new__(cls)
        frame._set(None, 0, dict(columns), index, nrows, False)
        return frame

    def release(self) -> None:
        """Let go of the caller's data once the model's arrays are built: a frame not made yet keeps
        copies of its columns' values instead of the data's Series, which hold the data's whole blocks
        (every float column of a wide DataFrame, say) and make pandas copy them if the caller changes
        the data in place.  ~1 us per column of a small model; the DataFrame is still made on first use."""
        if self._data is None and not self._owned:
            read = self._read  # a NumPy column's values already read: their copy, without its Series' array
            owned = {
                name: series.array.copy() if read.get(name, (None, None))[1] is None else read[name][1].copy()
                for name, series in self._columns.items()
            }
            self._set(None, self.n_dropped, owned, self._index, self.nrows, True)

    def _set(self, *values: object) -> None:
        for name, value in zip(self._STATE, values):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_read", {})
        object.__setattr__(self, "_codes", {})

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}: a model frame is immutable")

    def __getstate__(self) -> dict:
        return {name: getattr(self, name) for name in self._STATE}

    def __setstate__(self, state: dict) -> None:  # pickle and copy (their default would assign each slot)
        self._set(*(state[name] for name in self._STATE))

    @property
    def data(self) -> pd.DataFrame:
        if self._data is None:
            names = list(self._columns)
            columns = self._columns
            arrays = {i: columns[name] if self._owned else columns[name].array for i, name in enumerate(names)}
            index = pd.RangeIndex(self.nrows) if self._index is None else self._index
            kept = pd.DataFrame(arrays, index=index, copy=True)
            kept.columns = _column_labels(names)
            self._set(kept, self.n_dropped, {}, None, self.nrows, True)  # its own columns from now on
        assert self._data is not None
        return self._data

    @property
    def names(self) -> list:
        """The column names."""
        return list(self._columns) if self._data is None else list(self._data.columns)

    @property
    def positions(self) -> np.ndarray:
        """The row labels (positions in the data, for a frame made with ``positional=True``) as an array."""
        if self._data is None:
            return np.arange(self.nrows) if self._index is None else self._index.to_numpy()
        return self._data.index.to_numpy()

    @property
    def borrowed(self) -> bool:
        """Whether :meth:`column` gives the data's own Series (copy what is kept from them)."""
        return self._data is None and not self._owned

    def column(self, name: str) -> pd.Series:
        """The column ``name``, looked up once: pandas makes a new Series for every ``data[name]`` (~10 us),
        and the response, X and every random-effects term read the same columns.  Before :attr:`data` is
        made, the data's own Series (its values are those of :attr:`data`, its index the data's); after
        :meth:`release`, a Series over the frame's own copy (read it, do not change it), still without making
        :attr:`data` (a small frame's DataFrame costs ~0.1 ms)."""
        if self._data is None and self._owned and name in self._columns:  # released, not made yet
            index = pd.RangeIndex(self.nrows) if self._index is None else self._index
            return pd.Series(self._columns[name], index=index, name=name, copy=False)
        if not self.borrowed:
            frame = self.data  # made on first use
            found = self._columns.get(name)
            if found is None:
                found = self._columns[name] = frame[name]
            return found
        found = self._columns.get(name)
        if found is None:  # not a column of the frame: the DataFrame says so
            found = self._columns[name] = self.data[name]
        return found

    def array(self, name: str) -> Any:
        """The column ``name``'s values: for a NumPy dtype a NumPy array (:meth:`numbers`' values), else the
        Series' extension array (a Categorical, an Arrow-backed array, ...); without a Series (~10 us) once the
        frame holds its own copy (after :meth:`release`).  Read them, do not change them."""
        values = self.numbers(name)[1]
        return self._pandas_array(name) if values is None else values

    def numbers(self, name: str) -> tuple[object, np.ndarray | None]:
        """``(dtype, values)`` of the column ``name``: its dtype and, for a NumPy dtype, its values as
        ``Series.to_numpy()`` gives them (read them, do not change them), else None.  Read once per frame
        state: the response, X, the size check and the terms ask for the same columns' dtypes and values,
        and each ``Series.dtype`` or ``to_numpy()`` is a few pandas calls."""
        found = self._read.get(name)
        if found is None:
            values = self._pandas_array(name)
            if isinstance(values, np.ndarray):  # a released frame's copy of values read before
                found = (values.dtype, values)
            else:  # the Series' dtype: a NumPy-backed array's own dtype wraps it
                dtype = values.dtype.numpy_dtype if isinstance(values, _NUMPY_BACKED) else values.dtype
                found = (dtype, values.to_numpy() if isinstance(dtype, np.dtype) else None)
            self._read[name] = found
        return found

    def codes(self, name: str) -> np.ndarray:
        """The codes of the categorical column ``name`` (``Categorical.codes``; -1 for a missing value), read once
        per frame state: the missing-value check, X's factors and the grouping factors read the same codes, and
        each ``Series.array.codes`` is several pandas calls.  Read them, do not change them."""
        found = self._codes.get(name)
        if found is None:
            found = self._codes[name] = self._pandas_array(name).codes
        return found

    def _pandas_array(self, name: str) -> Any:
        """``column(name).array``, without the Series once the frame holds its own copy (a NumPy array for a
        column whose values :meth:`numbers` had read before :meth:`release`)."""
        if self._data is None and self._owned and name in self._columns:
            return self._columns[name]
        return self.column(name).array


def column_numbers(data: "pd.DataFrame | ModelFrame", name: str) -> tuple[object, np.ndarray | None]:
    """:meth:`ModelFrame.numbers` for a model frame or a DataFrame (read anew from a DataFrame)."""
    if isinstance(data, ModelFrame):
        return data.numbers(name)
    column = data[name]
    dtype = column.dtype
    return dtype, column.to_numpy() if isinstance(dtype, np.dtype) else None


def column_array(data: "pd.DataFrame | ModelFrame", name: str) -> Any:
    """:meth:`ModelFrame.array` for a model frame or a DataFrame: a NumPy dtype's values as a NumPy array,
    else the column's pandas array."""
    if isinstance(data, ModelFrame):
        return data.array(name)
    column = data[name]
    return column.to_numpy() if isinstance(column.dtype, np.dtype) else column.array


def column_codes(data: "pd.DataFrame | ModelFrame", name: str) -> np.ndarray:
    """The categorical column ``name``'s codes: :meth:`ModelFrame.codes` for a model frame (read once), else
    ``data[name].array.codes``."""
    return data.codes(name) if isinstance(data, ModelFrame) else data[name].array.codes


def get_column(data: "pd.DataFrame | ModelFrame", name: str) -> pd.Series:
    """``data[name]``, through a model frame's :meth:`ModelFrame.column` when ``data`` is one."""
    return data.column(name) if isinstance(data, ModelFrame) else data[name]


def model_frame(data: pd.DataFrame, variables: Iterable[str], *, positional: bool = False) -> ModelFrame:
    """Keep the ``variables`` columns of ``data`` and drop incomplete rows.

    This is where the data are checked, once: the design code trusts a
    :class:`ModelFrame`.  The input frame is never modified.  With
    ``positional=True`` the kept rows are labelled by their position in
    ``data`` (0, 1, 3, ... when row 2 was dropped) instead of ``data``'s index.

    Raises
    ------
    DataError
        If ``data`` is not a DataFrame, a variable is not a column (the message
        suggests close names), ``data`` has no rows, or no complete row is left.
    """
    check_data_frame(data)
    columns = list(dict.fromkeys(variables))
    series = _used_series(data, columns)
    reads = [_checked_read(name, column) for name, column in zip(columns, series)]
    nrows = len(reads[0][2]) if reads and reads[0] is not None else len(data)
    if nrows == 0:
        raise DataError("data has no rows")
    if not all(reads):  # e.g. a MultiIndex column label
        return _model_frame_by_label(data, columns, pd.RangeIndex(nrows) if positional else data.index)
    missing = _missing_rows(reads)  # type: ignore[arg-type]  # (all read)
    if (missing is None or not missing.any()) and _copy_on_write():
        frame = ModelFrame.from_columns(dict(zip(columns, series)), None if positional else data.index, nrows)
        for name, (dtype, values, _, codes) in zip(columns, reads):  # type: ignore[misc]  # as numbers(), codes() read
            frame._read[name] = (dtype, values)
            if codes is not None:
                frame._codes[name] = codes
        return frame
    index = pd.RangeIndex(nrows) if positional else data.index
    complete = np.ones(nrows, dtype=bool) if missing is None else ~missing
    n_dropped = int(nrows - complete.sum())
    if n_dropped == nrows:
        _model_frame_by_label(data, columns, index)  # raises, summarising the missing values
    if n_dropped:
        arrays = [s.array[complete] for s in series]
        kept = pd.DataFrame(dict(enumerate(arrays)), index=index[complete], copy=False)  # masking copied
    else:
        kept = pd.DataFrame(dict(enumerate(s.array for s in series)), index=index, copy=True)
    kept.columns = _column_labels(columns)
    return ModelFrame(data=kept, n_dropped=n_dropped)


def _checked_read(name: str, column: object) -> tuple | None:
    """``(dtype, values, array, codes)`` of a used column, checked by :func:`_check_real_column`: ``values`` as
    :meth:`ModelFrame.numbers` reads them (``to_numpy()`` for a NumPy dtype, else None), ``array`` those values or
    the Series' extension array, ``codes`` a Categorical's codes (else None).  None for a column that is no
    Series (a label of a MultiIndex gives a DataFrame).  Every column is read once, here: its dtype, values and
    codes serve the missing-value check and then the design (each is a few pandas calls)."""
    dtype = getattr(column, "dtype", None)
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":  # the usual cases first, without pandas' dtype tests
        values = column.to_numpy()  # type: ignore[attr-defined]
        return dtype, values, values, None
    if isinstance(dtype, pd.CategoricalDtype):
        array = column.array  # type: ignore[attr-defined]
        return dtype, None, array, array.codes
    _check_real_column(name, column, dtype)
    if not isinstance(column, pd.Series):
        return None
    if isinstance(dtype, np.dtype):
        values = column.to_numpy()
        return dtype, values, values, None
    return dtype, None, column.array, None


def _used_series(data: pd.DataFrame, columns: list) -> list:
    """The data's columns ``columns`` (each a Series; a DataFrame for a label of a MultiIndex), checked by
    :func:`check_columns`.

    When the data have few columns besides these, one pass over ``data.items()`` gives them: ``data[name]``
    first looks the name up in the columns' Index (about a third of its ~35 Python calls), ``items()`` only
    makes each column's Series.  An absent or repeated name, or any label the pass does not match, goes
    the way by name, where :func:`check_columns` raises (or ``data[name]`` gives what it gives).
    """
    if len(data.columns) * 5 <= len(columns) * 6:
        wanted = dict.fromkeys(columns)
        found: dict = {}
        for label, column in data.items():
            if label in wanted:
                if label in found:  # a repeated column: check_columns names it
                    break
                found[label] = column
        else:
            if len(found) == len(wanted):
                return [found[name] for name in columns]
    check_columns(data, columns)
    return [data[name] for name in columns]


def _copy_on_write() -> bool:
    """Whether pandas copies on write (always from pandas 3): a Series taken from the data then keeps its values."""
    return _PANDAS_3 or pd.options.mode.copy_on_write is True


_PANDAS_3 = int(pd.__version__.split(".")[0]) >= 3


def _column_labels(columns: list) -> pd.Index:
    """The model frame's column labels: names as an object Index (as pandas 2 made them), which pandas 3
    makes and looks names up in several times faster than its Arrow-backed ``str`` Index."""
    if all(isinstance(name, str) for name in columns):
        return pd.Index(columns, dtype=object)
    return pd.Index(columns)


def _missing_rows(reads: list[tuple]) -> np.ndarray | None:
    """Rows with a missing value in any of the columns read by :func:`_checked_read` (None when no column
    can hold one); NumPy numbers and a Categorical's codes are checked without pandas."""
    missing = None
    for dtype, values, array, codes in reads:
        if codes is not None:
            found = codes < 0
        elif values is None:
            found = np.asarray(array.isna(), dtype=bool)  # the array's own isna: no Series built
        elif dtype.kind in "biu":
            continue
        elif dtype.kind == "f":
            found = np.isnan(values)
        else:
            found = np.asarray(pd.isna(values), dtype=bool)  # as the Series' NumPy-backed array's isna
        missing = found if missing is None else missing | found
    return missing


def _model_frame_by_label(data: pd.DataFrame, columns: list[str], index: pd.Index | None = None) -> ModelFrame:
    """:func:`model_frame` through ``.loc`` (general and slower): odd column labels and the error path."""
    subset = data.loc[:, columns]
    if index is not None:
        subset = subset.set_axis(index, axis=0)
    if isinstance(subset.columns, pd.Index) and not isinstance(subset.columns, pd.MultiIndex):
        subset.columns = _column_labels(list(subset.columns))
    missing = subset.isna()
    complete = ~missing.any(axis=1).to_numpy()
    n_dropped = int(len(subset) - complete.sum())
    if n_dropped == len(subset):
        raise no_complete_rows_error(len(subset), missing.sum(axis=0))
    kept = subset.loc[complete].copy() if n_dropped else subset.copy()
    return ModelFrame(data=kept, n_dropped=n_dropped)


def no_complete_rows_error(nrows: int, missing_counts: pd.Series) -> DataError:
    """The error for data none of whose ``nrows`` rows is complete; ``missing_counts``: missing values per column."""
    return DataError(
        f"no rows left after removing rows with missing values: all {nrows} "
        f"rows had missing values ({_missing_summary(missing_counts)})"
    )


def _missing_summary(counts: pd.Series) -> str:
    """'Reaction: 3 rows, Days: 1 row' for the columns with missing values."""
    parts = [f"{name}: {int(n)} row{'s' if n != 1 else ''}" for name, n in counts.items() if n > 0]
    return ", ".join(parts) or "no column"


def frame_data(data: "pd.DataFrame | ModelFrame") -> tuple[pd.DataFrame, bool]:
    """The data to build from and whether they are trusted: a ModelFrame's were checked
    when it was made; a DataFrame is checked here (that it is one)."""
    if isinstance(data, ModelFrame):
        return data.data, True
    check_data_frame(data)
    return data, False


def check_data_frame(data: object) -> None:
    """Raise DataError unless ``data`` is a pandas DataFrame."""
    if not isinstance(data, pd.DataFrame):
        raise DataError(
            f"data must be a pandas DataFrame, got {type(data).__name__}; convert it with pandas.DataFrame(...) first"
        )


def check_columns(data: pd.DataFrame, names: Iterable[str]) -> None:
    """Raise DataError naming every absent column, with close-name suggestions."""
    names = list(names)
    absent = [name for name in names if name not in data.columns]
    if absent:
        available = [str(c) for c in data.columns]
        raise DataError("; ".join(_not_found(name, available) for name in absent))
    if data.columns.is_unique:
        return
    duplicated = [name for name in names if data.columns.tolist().count(name) > 1]
    if duplicated:
        raise DataError(f"column {duplicated[0]!r} appears more than once in data")


def check_real(data: pd.DataFrame, names: Iterable[str]) -> None:
    """Raise DataError for a complex-valued column among ``names`` (converting would drop the imaginary part)."""
    for name in names:
        column = data[name]
        _check_real_column(name, column, getattr(column, "dtype", None))


def _check_real_column(name: str, column: object, dtype: object) -> None:
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf" or isinstance(dtype, pd.CategoricalDtype):
        return  # the usual cases, without pandas' dtype tests (a categorical is a factor, never numbers)
    if isinstance(column, pd.Series) and pd.api.types.is_complex_dtype(column.dtype):
        raise DataError(
            f"column {name!r} has complex values; models need real numbers: "
            f"use its real part, imaginary part or modulus as a column (e.g. data[{name!r}].abs())"
        )


def _not_found(name: str, available: list[str]) -> str:
    """Message for one absent column, suggesting close names."""
    message = f"column {name!r} not found in data"
    same_case = [c for c in available if c.lower() == str(name).lower()]
    close = same_case or difflib.get_close_matches(str(name), available, n=3, cutoff=0.6)
    if close:
        return message + "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    shown = ", ".join(available[:20]) + (", ..." if len(available) > 20 else "")
    return message + f" (columns: {shown})"

"""Model matrices of products of plain columns (numbers and factors), built without formulaic.

Fixed-effects parts such as ``age + Sex``, ``Time * Diet`` or ``0 + a:b`` are
products of data columns: an intercept, numeric columns used as they are, and
factors coded by contrasts or indicators.  formulaic's materializer builds such
a matrix through several pandas DataFrames per factor, milliseconds for a
matrix of a few hundred rows: the largest piece of a small fit.  This module
builds it directly, with the same pieces the formulaic path uses:

* the terms and their factors, in formulaic's order, from formulaic's parser
  (:func:`product_terms`, cached by text);
* a factor's levels and labels as :mod:`.contrasts` takes them (``as_labelled``
  and ``observed_levels``: the Categorical's category order without unused
  ones, sorted unique values otherwise, logicals as ``FALSE``/``TRUE``), read
  from the codes with NumPy for a Categorical;
* contrasts or indicators per factor by R's rule (``TermCode``: contrasts iff
  the term without the factor is empty or contained in an earlier term; without
  an intercept the first factor gets indicators), the codings of
  :data:`~.contrasts.CONTRASTS` (treatment, poly for ordered factors, the
  chosen ``sum``/``helmert``/``SAS``) and their column names (``SexFemale``,
  ``f.L``, ``f1``);
* interaction columns in formulaic's order (the first factor varying fastest)
  and names (``Time:Diet2``), products taken in the same order.

Simple numeric calls of numeric columns (``np.sin(2 * np.pi * Time)``,
``I(x**2)``, ``log(n)``; :mod:`.calls`) are numeric columns too, and
``offset(...)`` terms of them give the offset; they are evaluated by NumPy in
formulaic's order of operations (the same values), and named as written.

Anything else (other calls, backticks, other column types, a factor with
fewer than two levels) is left to formulaic, which decides and words its errors.
The fixed path (:mod:`.fixed`) compares nothing at run time: the tests build
every design both ways.
"""

from __future__ import annotations

import functools
import itertools
import keyword
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .calls import NumericCall, numeric_call
from .contrasts import CONTRASTS, as_labelled, coding_for
from .frame import ModelFrame, column_codes, formula_code, get_column
from .transforms import RESERVED
from .values import kept_per_index, level_label

__all__ = [
    "ProductTerms",
    "ProductDesign",
    "SampleRows",
    "product_terms",
    "plain_kind",
    "product_design",
]


@dataclass(frozen=True)
class ProductTerms:
    """The terms of a formula part made of plain column names, in formulaic's order.

    Attributes
    ----------
    intercept : bool
        Whether the part has an intercept.
    terms : tuple of tuple of str
        Each term's column names, in formulaic's order (``Time * Diet`` gives
        ``(("Time",), ("Diet",), ("Time", "Diet"))``).
    """

    intercept: bool
    terms: tuple[tuple[str, ...], ...]
    calls: tuple[NumericCall, ...] = ()
    offsets: frozenset[int] = frozenset()

    @functools.cached_property  # (the terms are cached by text: once per formula, not per fit)
    def names(self) -> tuple[str, ...]:
        """The distinct factors (column names and calls' code), in order of first use."""
        return tuple(dict.fromkeys(name for term in self.terms for name in term))

    @functools.cached_property
    def variables(self) -> tuple[str, ...]:
        """The data columns used (those the calls read included), in order of first use."""
        calls = {call.expr: call.variables for call in self.calls}
        return tuple(dict.fromkeys(v for name in self.names for v in calls.get(name, (name,))))


@functools.lru_cache(maxsize=512)
def product_terms(rhs: str) -> ProductTerms | None:
    """The terms of ``rhs`` when every one is ``1`` or a product of plain column names, else None.

    ``+``, ``:``, ``*``, ``-``, ``0``/``1`` and parentheses are expanded by
    formulaic's parser, so the terms and their order are formulaic's.  None for
    text that formulaic would rewrite (R spellings, backticks), calls,
    literals other than the intercept, names of formula functions, text that
    does not parse, and a part without any column, so that formulaic decides.
    """
    if "`" in rhs:
        return None
    try:
        code, aliases = formula_code(rhs)
        formula = _parse(code)
    except Exception:  # noqa: BLE001 -- formulaic reports bad text itself, on its own path
        return None
    if code != rhs or aliases or formula is None:
        return None
    intercept, terms, calls, offsets = False, [], {}, set()
    for term in formula:
        methods = {factor.eval_method.value for factor in term.factors}
        if methods == {"literal"} and str(term) == "1" and not terms:
            intercept = True
            continue
        for factor in term.factors:
            call = numeric_call(factor.expr) if factor.eval_method.value == "python" else None
            if call is not None:
                calls[factor.expr] = call
            elif factor.eval_method.value != "lookup" or not _plain_name(factor.expr):
                return None
        if any(calls[f.expr].offset for f in term.factors if f.expr in calls):
            if len(term.factors) > 1:
                return None  # an offset in a product: formulaic decides
            offsets.add(len(terms))
        terms.append(tuple(factor.expr for factor in term.factors))
    if len(offsets) == len(terms) and not intercept:
        return None
    return ProductTerms(intercept, tuple(terms), tuple(calls.values()), frozenset(offsets)) if terms else None


def _parse(code: str):
    """formulaic's parse of ``code`` (what ``ModelSpec.from_spec`` makes), or None for several parts."""
    from formulaic import Formula
    from formulaic.formula import SimpleFormula

    formula = Formula(code)
    return formula if isinstance(formula, SimpleFormula) else None


def _plain_name(name: str) -> bool:
    """An ASCII identifier that is no Python keyword and no formula function's name."""
    return name.isidentifier() and name.isascii() and not keyword.iskeyword(name) and name not in RESERVED


_NUMPY_KINDS = {"i": "numeric", "u": "numeric", "f": "numeric", "b": "factor", "O": "factor"}


def plain_kind(dtype: Any) -> str | None:
    """A column of type ``dtype``: ``"numeric"`` (NumPy integers and floats), ``"factor"`` (Categorical, object,
    string, bool), else None.

    Pandas' nullable numbers and booleans, dates, complex numbers and other
    types go to formulaic.
    """
    if isinstance(dtype, np.dtype):
        return _NUMPY_KINDS.get(dtype.kind)
    if isinstance(dtype, (pd.CategoricalDtype, pd.StringDtype)):
        return "factor"
    return None


@dataclass(frozen=True)
class ProductDesign:
    """A directly built model matrix and what the deferred formulaic spec needs.

    Attributes
    ----------
    matrix : numpy.ndarray
        ``(n, p)`` float64, C-contiguous.
    column_names : tuple of str
        formulaic's (and R's) names: ``(Intercept)``, ``age``, ``SexFemale``, ``Time:Diet2``.
    offset : numpy.ndarray or None
        The sum of the ``offset(...)`` terms, or None without one.
    columns, offset_columns : tuple of int
        The positions of the matrix's and the offsets' columns among all of
        formulaic's columns (its matrix has the offsets among the others, in term order).
    factors : frozenset of str
        The variables coded as factors.
    floats : tuple of str
        The variables of calls (formulaic reads them as float64).
    """

    matrix: np.ndarray
    column_names: tuple[str, ...]
    offset: np.ndarray | None
    columns: tuple[int, ...]
    offset_columns: tuple[int, ...]
    factors: frozenset[str]
    floats: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class SampleRows:
    """The rows formulaic's spec of a product design is fitted on: the first two and the first row of every
    level of every factor, made by :meth:`frame` when the spec is asked for (a fit does not need it: finding
    the rows, two ``np.unique`` per factor, and copying them cost a cbpp fit ~0.06 ms cold).

    It reads the columns from ``source`` then: give it a model frame (after its release, the frame's own
    copies; never the caller's data), or call :meth:`frame` at once.
    """

    source: Any  # a ModelFrame or a DataFrame (read with get_column)
    variables: tuple[str, ...]  # the terms' variables, in their order
    factors: frozenset[str]
    floats: tuple[str, ...]  # the calls' variables: formulaic reads them as float64 (formula_data)
    nrows: int

    def frame(self) -> pd.DataFrame:
        """The rows, labelled ``0, 1, ...``: factors as labelled Categoricals (as
        :func:`~.contrasts.as_labelled` gives them), other columns as they are."""
        columns = {name: get_column(self.source, name) for name in self.variables}
        labelled = {
            name: _labelled(self.source, name, columns[name].dtype) for name in self.variables if name in self.factors
        }
        rows = _sample_rows([codes for codes, _, _ in labelled.values()], self.nrows)
        sample: dict[str, Any] = {}
        for name, column in columns.items():
            if name in labelled:
                codes, labels, ordered = labelled[name]
                sample[name] = pd.Categorical.from_codes(codes[rows], categories=labels, ordered=ordered)
            else:
                sample[name] = column.to_numpy()[rows].copy()
        sample.update({v: columns[v].to_numpy(dtype=np.float64)[rows] for v in self.floats})
        return pd.DataFrame(sample, index=range(len(rows)))


@dataclass(frozen=True)
class _Factor:
    """A factor column: its level labels (all categories), observed levels, codes into them and contrast."""

    raw_codes: np.ndarray  # into ``labels``
    labels: pd.Index
    ordered: bool
    levels: tuple
    codes: np.ndarray  # into ``levels``
    contrast: str


def product_design(
    terms: ProductTerms,
    source: pd.DataFrame | ModelFrame,
    reads: Mapping[str, tuple[Any, np.ndarray | None]],
    chosen: Mapping[str, str],
    nrows: int,
    spellings: Mapping[str, str] | None = None,
) -> ProductDesign | None:
    """The model matrix of ``terms`` on the complete columns of ``source``, or None when formulaic must build it.

    ``reads`` maps each variable to its ``(dtype, values)`` as
    :func:`~.frame.column_numbers` reads them, of a type :func:`plain_kind`
    accepts; a factor's codes or Series are read from ``source``.
    ``chosen`` are the canonical contrasts by name (the others take
    :func:`~.contrasts.default_contrast`); ``spellings`` name calls as written
    (by their code).  None when a factor has fewer than two levels (formulaic
    raises the error) or a call reads a factor.
    """
    numbers = _numbers(terms, reads)
    if numbers is None:
        return None
    factors: dict[str, _Factor] = {}
    for name in terms.names:
        if name not in numbers:
            factor = _factor(source, name, reads[name][0], chosen.get(name))
            if factor is None:
                return None
            factors[name] = factor
    blocks = [_term_block(term, coding, numbers, factors, spellings or {}) for term, coding in _codings(terms, factors)]
    design = [block for i, block in enumerate(blocks) if i not in terms.offsets]
    matrix, names = _assemble(terms.intercept, design, nrows)
    offset = _offset([block for i, block in enumerate(blocks) if i in terms.offsets])
    every, offset_columns = _positions(terms, blocks)
    floats = tuple(v for call in terms.calls for v in call.variables)
    return ProductDesign(matrix, names, offset, every, offset_columns, frozenset(factors), floats)


def _numbers(terms: ProductTerms, reads: Mapping[str, tuple[Any, Any]]) -> dict[str, np.ndarray] | None:
    """The numeric columns by name and the calls' values by code; None when a call reads a factor."""
    numbers = {  # Series.to_numpy(dtype=np.float64)'s conversion
        name: np.asarray(values, dtype=np.float64)
        for name, (dtype, values) in reads.items()
        if values is not None and dtype.kind in "iuf"
    }
    for call in terms.calls:
        if not all(v in numbers for v in call.variables):
            return None
        numbers[call.expr] = call.evaluate(numbers)
    return numbers


def _offset(blocks: Sequence[tuple[list[str], list[np.ndarray]]]) -> np.ndarray | None:
    """The sum of the offset terms' columns (as the formulaic path sums them), or None."""
    if not blocks:
        return None
    return np.column_stack([column for _, block_columns in blocks for column in block_columns]).sum(axis=1)


def _positions(terms: ProductTerms, blocks) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The design's and the offsets' column positions in formulaic's matrix (offsets in their term's place)."""
    design, offsets, j = list(range(int(terms.intercept))), [], int(terms.intercept)
    for i, (names, _) in enumerate(blocks):
        (offsets if i in terms.offsets else design).extend(range(j, j + len(names)))
        j += len(names)
    return tuple(design), tuple(offsets)


def _factor(source: pd.DataFrame | ModelFrame, name: str, dtype: Any, chosen: str | None) -> _Factor | None:
    """The factor's levels and codes as the formulaic path takes them; None for fewer than two levels."""
    raw_codes, labels, ordered = _labelled(source, name, dtype)
    used = np.bincount(raw_codes, minlength=len(labels)) > 0  # complete data: no code -1
    contrast = chosen or coding_for(ordered)  # default_contrast: a Categorical's order (others have none)
    if used.all():  # every level observed (the usual case): the codes are the levels' already
        levels = tuple(labels.tolist())
        return _Factor(raw_codes, labels, ordered, levels, raw_codes, contrast) if len(levels) >= 2 else None
    if used.sum() < 2:
        return None
    positions = np.cumsum(used) - 1
    levels = tuple(label for label, kept in zip(labels, used) if kept)
    return _Factor(raw_codes, labels, ordered, levels, positions[raw_codes], contrast)


def _labelled(source: pd.DataFrame | ModelFrame, name: str, dtype: Any) -> tuple[np.ndarray, pd.Index, bool]:
    """Codes, categories and order of :func:`~.contrasts.as_labelled` of the column ``name`` (of type ``dtype``);
    without pandas for a Categorical (a model frame has read its codes already)."""
    if isinstance(dtype, pd.CategoricalDtype):
        labels = kept_per_index(dtype.categories, "level labels", _level_labels)  # the same Index every fit
        if labels is not None:
            return np.asarray(column_codes(source, name)), labels, bool(dtype.ordered)
    categorical = as_labelled(get_column(source, name)).array
    return np.asarray(categorical.codes), categorical.categories, bool(categorical.ordered)


def _level_labels(categories: pd.Index) -> pd.Index | None:
    """The categories' R labels as an object Index, or None when two share a label (as_labelled decides)."""
    labels = [level_label(category) for category in categories]
    return pd.Index(labels, dtype=object) if len(set(labels)) == len(labels) else None


def _codings(terms: ProductTerms, factors: Mapping[str, _Factor]):
    """Each term with, per column name, whether it is coded by contrasts (R's ``TermCode``)."""
    full_first = None
    if not terms.intercept:
        full_first = next(((i, n) for i, term in enumerate(terms.terms) for n in term if n in factors), None)
    earlier: list[frozenset[str]] = [frozenset()] if terms.intercept else []
    for i, term in enumerate(terms.terms):
        names = frozenset(term)
        coding = {}
        for name in term:
            rest = names - {name}
            reduced = not rest or any(rest <= other for other in earlier)
            coding[name] = name in factors and (i, name) != full_first and reduced
        earlier.append(names)
        yield term, coding


def _term_block(
    term: tuple[str, ...],
    coding: Mapping[str, bool],
    numbers: Mapping[str, np.ndarray],
    factors: Mapping[str, _Factor],
    spellings: Mapping[str, str],
) -> tuple[list[str], list[np.ndarray]]:
    """A term's column names and columns: the row-wise product of its factors, the first varying fastest."""
    parts = []
    for name in term:
        if name in numbers:
            parts.append([(spellings.get(name, name), numbers[name])])
            continue
        factor = factors[name]
        labels, matrix = _coding(factor.contrast, factor.levels, coding[name])
        coded = matrix[factor.codes]  # every row's coding, at once
        parts.append([(f"{name}{label}", coded[:, j]) for j, label in enumerate(labels)])
    if len(parts) == 1:  # one factor or number: its columns as they are, no products
        return [label for label, _ in parts[0]], [values for _, values in parts[0]]
    names, columns = [], []
    with np.errstate(invalid="ignore", over="ignore"):  # inf * 0: the caller reports non-finite columns
        for reverse_product in itertools.product(*reversed(parts)):
            product = reverse_product[::-1]
            names.append(":".join(label for label, _ in product))
            columns.append(functools.reduce(operator.mul, (values for _, values in product)))
    return names, columns


@functools.lru_cache(maxsize=256)
def _coding(contrast: str, levels: tuple[str, ...], reduced: bool) -> tuple[tuple[str, ...], np.ndarray]:
    """The coding's column labels and ``(levels, columns)`` matrix (formulaic's, as the formulaic path uses)."""
    coder = CONTRASTS[contrast]()
    matrix = np.asarray(coder.get_coding_matrix(list(levels), reduced), dtype=np.float64)
    labels = tuple(str(label) for label in coder.get_coding_column_names(list(levels), reduced_rank=reduced))
    matrix.setflags(write=False)
    return labels, matrix


def _assemble(
    intercept: bool, blocks: Sequence[tuple[list[str], list[np.ndarray]]], nrows: int
) -> tuple[np.ndarray, tuple[str, ...]]:
    """``[1, block columns...]`` as one C-contiguous matrix, and its column names."""
    names = ["(Intercept)"] * intercept + [name for block_names, _ in blocks for name in block_names]
    matrix = np.empty((nrows, len(names)), dtype=np.float64)
    if intercept:
        matrix[:, 0] = 1.0
    j = int(intercept)
    for _, columns in blocks:
        for column in columns:
            matrix[:, j] = column
            j += 1
    return matrix, tuple(names)


def _sample_rows(codes: Sequence[np.ndarray], nrows: int) -> np.ndarray:
    """The first two rows and the first row of every level of every factor (its ``codes``), in data order."""
    rows = [np.arange(min(2, nrows))]
    rows += [np.unique(factor_codes, return_index=True)[1] for factor_codes in codes]
    return np.unique(np.concatenate(rows))

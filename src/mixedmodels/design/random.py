"""Random-effects terms: one grouping factor, its level indices and its columns.

For a term ``(1 + Days | Subject)`` the model matrix ``Z_k`` has one block of
``k`` columns per level; row ``i`` holds ``z[i]`` in the block of level
``refs[i]`` and zeros elsewhere.  We never store ``Z_k`` itself; ``refs`` and
the dense ``n x k`` matrix ``z`` describe it completely.  The term's
covariance structure (:mod:`.covariance`: ``us``, ``diag``, ``cs``, ``ar1``)
is checked against its columns here, where the data are known.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from ..errors import ModelSpecError
from ..formula import RandomTerm
from .covariance import UNSTRUCTURED, CovarianceStructure, get_structure
from .fixed import DesignMatrix, build_design
from .frame import ModelFrame, get_column
from .values import kept_per_index, level_values

__all__ = [
    "RandomEffectsTerm",
    "grouping_factor",
    "build_random_terms",
    "unique_group_names",
    "lme4_term_order",
    "check_structure",
]


@dataclass(frozen=True, eq=False)
class RandomEffectsTerm:
    """One random-effects term of a mixed model.

    Attributes
    ----------
    group : str
        Grouping factor as lme4 names it (``"Subject"``, ``"cask:batch"``).
    factors : tuple of str
        Data columns forming the grouping factor.
    levels : tuple of str
        Level labels, in lme4's order; ``refs`` indexes into them.
    refs : ndarray of int64, shape (n,)
        Level of each observation.
    z : ndarray, shape (n, k)
        The term's columns (e.g. intercept and Days) for each observation.
    design : DesignMatrix
        Builds ``z`` again for new data.
    expr : str
        The term's left-hand side as written in the formula (``"1 + Days"``).
    structure : CovarianceStructure
        How theta makes the term's covariance (unstructured by default).
    """

    group: str
    factors: tuple[str, ...]
    levels: tuple[str, ...]
    refs: np.ndarray
    z: np.ndarray
    design: DesignMatrix
    expr: str = ""
    structure: CovarianceStructure = UNSTRUCTURED

    @property
    def column_names(self) -> tuple[str, ...]:
        return self.design.column_names

    @property
    def ncols(self) -> int:
        return self.z.shape[1]

    @property
    def nlevels(self) -> int:
        return len(self.levels)

    @property
    def nranef(self) -> int:
        return self.nlevels * self.ncols

    @property
    def ntheta(self) -> int:
        return self.structure.ntheta(self.ncols)

    @property
    def theta_names(self) -> list[str]:
        return self.structure.names(self.group, self.column_names)

    def __str__(self) -> str:
        return self.structure.wrap(f"({self.expr or ' + '.join(self.column_names)} | {self.group})")


def unique_group_names(groups: list[str]) -> list[str]:
    """lme4's names for repeated grouping factors: Subject, Subject.1, Subject.2, ..."""
    seen: dict[str, int] = {}
    out = []
    for g in groups:
        count = seen.get(g, 0)
        out.append(g if count == 0 else f"{g}.{count}")
        seen[g] = count + 1
    return out


def _factor_codes(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Codes and labels of one grouping column: Categorical order, else sorted values
    (an object column mixing numbers and strings sorted as text, see :func:`.values.level_values`)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        categorical = column.array  # its codes and categories directly: .cat.codes builds a Series
        codes = categorical.codes
        labels = _category_labels(categorical.categories)
    else:
        uniques, codes = np.unique(level_values(column).to_numpy(), return_inverse=True)
        labels = [str(u) for u in uniques]
    return codes.astype(np.int64), labels


def _column_codes(frame: pd.DataFrame | ModelFrame, name: str) -> tuple[np.ndarray, list[str]]:
    """:func:`_factor_codes` of the column ``name``; a model frame's categorical column from the codes and dtype
    the frame read (:meth:`ModelFrame.codes`), without its Series."""
    if isinstance(frame, ModelFrame):
        dtype = frame.numbers(name)[0]
        if isinstance(dtype, pd.CategoricalDtype):
            return frame.codes(name).astype(np.int64), _category_labels(dtype.categories)
    return _factor_codes(get_column(frame, name))


def _category_labels(categories: pd.Index) -> list[str]:
    """``[str(c) for c in categories]``, kept for the same (immutable) Index object: a categorical column's
    categories are one Index shared by every fit of the column, and Arrow-backed string categories (pandas 3's
    default) cost ~10-40 us to convert each time (:func:`.values.kept_per_index`)."""
    return list(kept_per_index(categories, "str", _str_labels))


def _str_labels(categories: pd.Index) -> tuple[str, ...]:
    return tuple(str(c) for c in categories.tolist())  # the same scalars as iterating, in one pass


def grouping_factor(frame: pd.DataFrame | ModelFrame, factors: tuple[str, ...]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Level index per row and level labels of a (possibly interacted) grouping factor.

    Labels of an interaction ``a:b`` are ``"a_level:b_level"``; the first factor
    varies slowest, and only combinations present in the data are kept, as in
    R's ``factor(a:b)``.  Unused levels are dropped.
    """
    if len(factors) == 1:
        codes, labels = _column_codes(frame, factors[0])
        if np.bincount(codes, minlength=len(labels)).all():  # every level used: codes are the refs
            return codes, tuple(labels)
    nrows = frame.nrows if isinstance(frame, ModelFrame) else len(frame)
    combined = np.zeros(nrows, dtype=np.int64)
    label_lists = []
    for name in factors:
        codes, labels = _column_codes(frame, name)
        combined = combined * len(labels) + codes
        label_lists.append(labels)
    present, refs = np.unique(combined, return_inverse=True)
    digits, rest = [], present
    for level_labels in reversed(label_lists):  # the last factor varies fastest
        rest, index = np.divmod(rest, len(level_labels))
        digits.append([level_labels[i] for i in index.tolist()])
    labels = tuple(":".join(parts) for parts in zip(*reversed(digits)))
    return refs.astype(np.int64), labels


def _build_term(term: RandomTerm, frame: ModelFrame, contrasts: Mapping[str, str] | None) -> RandomEffectsTerm:
    refs, levels = grouping_factor(frame, term.factors)
    if len(levels) < 2:
        raise ModelSpecError(
            f"grouping factor {term.group!r} in {term} has {len(levels)} level; "
            "a random effect needs at least 2 levels (use a fixed effect instead)"
        )
    design = build_design(term.expr, frame, contrasts)
    if design.matrix.shape[1] == 0:
        raise ModelSpecError(f"random-effects term {term} has no columns")
    structure = get_structure(term.structure)
    check_structure(term, structure, design, frame.data if structure.name == "ar1" else None)
    return RandomEffectsTerm(
        group=term.group,
        factors=term.factors,
        levels=levels,
        refs=refs,
        z=np.ascontiguousarray(design.matrix, dtype=float),
        design=design,
        expr=term.expr,
        structure=structure,
    )


def check_structure(
    term: RandomTerm, structure: CovarianceStructure, design: DesignMatrix, data: pd.DataFrame | None
) -> None:
    """Refuse a structure the term's columns cannot carry: ``cs`` with one column, ``ar1`` not over an ordered factor.

    ``data`` (only read for ``ar1``: None otherwise) needs the ``ar1`` factor's column with every category and at
    least one row per level used (the Dask path passes such a small frame).
    """
    k = len(design.column_names)
    if structure.name == "cs" and k < 2:
        raise ModelSpecError(
            f"cs() needs at least two columns (a variance per column and one common correlation), but {term} "
            f"has one ({design.column_names[0]}); use ({term.expr} | {term.group}), or cs(0 + f | {term.group}) "
            "with a factor f"
        )
    if structure.name == "ar1":
        if data is None:
            raise ValueError("check_structure needs the data to check ar1()")  # a caller's mistake, not the user's
        _check_ar1(term, design, data)


def _check_ar1(term: RandomTerm, design: DesignMatrix, data: pd.DataFrame) -> None:
    """``ar1`` is over the levels of one ordered factor, without an intercept: ``ar1(0 + f | g)``."""
    variable = term.expr[4:].strip().strip("`") if term.expr.startswith("0 + ") else None
    if variable is None or variable not in data.columns:
        raise ModelSpecError(
            f"ar1() is an AR(1) correlation over the levels of one ordered factor, written ar1(0 + f | {term.group}); "
            f"{term} is not of that form"
        )
    column = data[variable]
    if not (isinstance(column.dtype, pd.CategoricalDtype) and column.dtype.ordered):
        kind = (
            "an unordered factor"
            if isinstance(column.dtype, pd.CategoricalDtype) or column.dtype == object
            else "continuous"
        )
        raise ModelSpecError(
            f"ar1() in {term} needs an ordered factor, but {variable!r} is {kind}: its levels must have an order "
            f"(make one with data[{variable!r}] = pd.Categorical(data[{variable!r}], ordered=True), levels "
            "equally spaced in time)"
        )
    if len(design.column_names) < 2:
        raise ModelSpecError(f"ar1() in {term} needs an ordered factor with at least two levels; {variable!r} has one")
    counts = np.bincount(column.array.codes[column.array.codes >= 0], minlength=len(column.dtype.categories))
    unused = [str(level) for level, count in zip(column.dtype.categories, counts) if count == 0]
    if unused:
        raise ModelSpecError(
            f"ar1() in {term} correlates neighbouring levels of {variable!r}, but level(s) {', '.join(map(repr, unused))} "
            "have no rows, so the levels left would not be equally spaced: keep rows for every level, or drop "
            f"unused levels on purpose (data[{variable!r}].cat.remove_unused_categories()) if the spacing allows"
        )


def lme4_term_order(nlevels: list[int]) -> list[int]:
    """The order lme4 puts random-effects terms in, from their numbers of levels in formula order.

    lme4's ``mkReTrms`` leaves the formula's order alone when the numbers of
    levels never increase along it; otherwise it orders the terms by
    decreasing number of levels, and terms with equal numbers then come in
    reverse formula order (``rev(order(nl))``: R's ``order`` is stable).  So
    ``(1 | Part) + (1 | Operator)`` with 10 levels each keeps its order, while
    ``(1 | Part) + (1 | Operator) + (1 | Part:Operator)`` becomes
    ``Part:Operator, Operator, Part``.  The term with the most levels comes
    first either way, which is where the blocked Cholesky keeps it diagonal.
    """
    counts = list(nlevels)
    if all(later <= earlier for earlier, later in zip(counts, counts[1:])):
        return list(range(len(counts)))
    return sorted(range(len(counts)), key=lambda i: counts[i])[::-1]


def build_random_terms(
    terms: tuple[RandomTerm, ...],
    frame: ModelFrame,
    contrasts: Mapping[str, str] | None = None,
    allow_as_many_as_observations: bool = False,
) -> tuple[RandomEffectsTerm, ...]:
    """Build every random-effects term and order them as lme4 does.

    Terms come in lme4's order (:func:`lme4_term_order`: by decreasing number
    of levels where the formula's order is not already so), which also puts
    the largest block first, where the blocked Cholesky keeps it diagonal.
    Checks lme4's rule that each term has fewer random effects than
    observations (lmer), or at most as many (glmer, where an observation-level
    ``(1 | obs)`` is allowed: ``allow_as_many_as_observations``).  The model
    frame's data were checked when it was made.
    """
    if not terms:
        raise ModelSpecError("no random-effects terms in the formula; use mm.lm() or mm.glm() for a model without them")
    built = [_build_term(term, frame, contrasts) for term in terms]
    nobs = frame.nrows
    for term in built:
        nranef = term.nranef
        if nranef > nobs or (nranef == nobs and not allow_as_many_as_observations):
            relation = "<=" if nranef == nobs else "<"
            raise ModelSpecError(
                f"number of observations (={nobs}) {relation} number of random effects (={nranef}) "
                f"for term {term}; the random-effects parameters and the residual variance "
                "are probably unidentifiable"
            )
    return tuple(built[i] for i in lme4_term_order([term.nlevels for term in built]))

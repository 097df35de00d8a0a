"""Residual structures, nlme's way: a residual SD per stratum, AR(1) correlation within groups.

A linear mixed model's residuals are ``e ~ N(0, sigma^2 R)``.  lme4 has
``R = W^-1`` (prior weights); nlme's ``lme`` also offers

* ``weights = varIdent(form = ~ 1 | s)`` -- :func:`var_ident`: the residual SD
  of stratum ``s`` is ``sigma delta_s`` (``delta = 1`` for the first level), so
  ``R = D^2`` with ``D = diag(delta_s(i))``;
* ``correlation = corAR1(form = ~ t | g)`` -- :func:`cor_ar1`: within each group
  ``g``, at consecutive whole-number times ``t``, ``cor(e_i, e_j) = phi^|t_i - t_j|``.

Both together give ``R = D C D``.  The AR(1) correlation of a group of ``m``
observations has a tridiagonal inverse,

    C^-1 = c(phi) (I + phi^2 I_interior - phi L),    c(phi) = 1 / (1 - phi^2),

where ``I_interior`` marks the group's inner times and ``L`` pairs each time
with the next (both ways).  So for the model matrix ``M = [Z X y]``

    M' R^-1 M = sum_s c/delta_s^2 M_s'M_s + sum_s c phi^2/delta_s^2 M_s,int' M_s,int
                - sum_(s,t) c phi/(delta_s delta_t) (M_prev,st' M_next,st + M_next,st' M_prev,st):

a weighted sum of cross-products that do not depend on the parameters.
:class:`ResidualStructure` lists them (:attr:`~ResidualStructure.pieces`: row
sets, and pairs of rows for the lag terms) and their weights
(:meth:`~ResidualStructure.coefficients`); the model stores each once
(:mod:`mixedmodels.linalg.weighted_blocks`) and an evaluation only adds them
up.  The likelihood also needs

    log det R = 2 sum_i log delta_s(i) + (n - G) log(1 - phi^2)     (G groups).

The parameters are ``delta`` of every stratum but the first, then ``phi``;
the optimizer sees ``log delta`` and ``atanh phi`` (:meth:`~ResidualStructure.to_free`).
Gaps or unequal spacing in time, a group with one time point, or a
correlation group that spans several levels of a random-effects grouping
factor are errors naming the group or the term.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable, Sequence

import numpy as np

from .._validate import Text, argument_kinds, check_arguments
import pandas as pd

from ..errors import DataError, ModelSpecError
from .random import _category_labels
from .values import level_values

__all__ = [
    "VarIdent",
    "CorAR1",
    "var_ident",
    "cor_ar1",
    "RowPiece",
    "ResidualStructure",
    "bind_residual",
    "residual_variables",
]

_SPACING_TOLERANCE = 1e-8
_PIECE_KINDS = ("all", "interior", "pair")  # a RowPiece's kind, numbered as in the structure's tables


@dataclass(frozen=True)
class VarIdent:
    """nlme's ``varIdent(form = ~ 1 | column)``: a residual SD ratio per level of ``column``.

    The first level (the factor's first category, else the smallest value)
    is the reference, with ratio 1.
    """

    column: str

    def __str__(self) -> str:
        return f"var_ident({self.column!r})"


@dataclass(frozen=True)
class CorAR1:
    """nlme's ``corAR1(form = ~ time | group)``: AR(1) residuals within each group.

    ``time`` holds whole numbers, consecutive within a group (one apart); without
    a time, the rows' order within the group is the time order (nlme's
    ``corAR1(form = ~ 1 | group)``).
    """

    time: str | None
    group: str

    def __str__(self) -> str:
        return f"cor_ar1({self.time!r}, group={self.group!r})"


@argument_kinds(column=Text())
def var_ident(column: str) -> VarIdent:
    """A residual standard deviation per level of ``column`` (nlme's ``varIdent(form = ~ 1 | column)``).

    Use as ``mm.lmer(formula, data, weights=mm.var_ident("Sex"))``; the fit
    reports the SD ratios to the first level (``m.residual_structure``).
    """
    check_arguments(locals())
    if not isinstance(column, str) or not column:
        raise ModelSpecError(
            f"var_ident() takes the name of a column of the data, e.g. var_ident('Sex'), not {column!r}"
        )
    return VarIdent(column)


@argument_kinds(time=Text(allow_none=True), group=Text(allow_none=True))
def cor_ar1(time: str | None = None, *, group: str) -> CorAR1:
    """AR(1) correlated residuals within ``group`` over ``time`` (nlme's ``corAR1(form = ~ time | group)``).

    Use as ``mm.lmer(formula, data, correlation=mm.cor_ar1("Days", group="Subject"))``.
    ``time`` must be whole numbers one apart within each group (any order of
    rows); ``time=None`` takes the rows' order within each group.
    """
    check_arguments(locals())
    for name, value in (("group", group), ("time", time)):
        if value is not None and (not isinstance(value, str) or not value):
            raise ModelSpecError(f"cor_ar1() takes column names: {name}={value!r} is not one")
    if group is None:
        raise ModelSpecError("cor_ar1() needs group=: the column whose levels are the independent series")
    return CorAR1(time, group)


@dataclass(frozen=True, eq=False)
class RowPiece:
    """One stored cross-product: ``M_rows' M_rows``, or with ``partner`` the lag term
    ``sum_p (m_rows[p] m_partner[p]' + m_partner[p] m_rows[p]')``."""

    rows: np.ndarray
    partner: np.ndarray | None = None
    kind: str = "all"  # "all", "interior" or "pair"
    strata: tuple[int, int] = (0, 0)


@dataclass(frozen=True, eq=False)
class _AR1Rows:
    """The AR(1) layout of the rows: consecutive pairs (in time order), inner rows, groups."""

    previous: np.ndarray  # row of each pair's earlier time
    following: np.ndarray  # row of each pair's later time
    interior: np.ndarray  # bool per row: neither the first nor the last time of its group
    ngroups: int
    order: np.ndarray  # the rows sorted by group, then time
    starts: np.ndarray  # bool per sorted row: the first time of its group

    @cached_property
    def position(self) -> np.ndarray:
        """Position of each row within its group (0 = first time); made when residuals or simulations need it."""
        n = self.order.size
        position = np.empty(n, dtype=np.int64)
        run_start = np.maximum.accumulate(np.where(self.starts, np.arange(n), 0))
        position[self.order] = np.arange(n) - run_start
        return position

    @cached_property
    def predecessor(self) -> np.ndarray:
        """The row before each row in its group, -1 for the first."""
        predecessor = np.full(self.order.size, -1, dtype=np.int64)
        predecessor[self.following] = self.previous
        return predecessor


@dataclass(frozen=True, eq=False)
class ResidualStructure:
    """A residual structure bound to the rows of a model (see the module docstring).

    Attributes
    ----------
    variance : VarIdent or None
    correlation : CorAR1 or None
    strata : ndarray of int
        Stratum of each row (all 0 without ``variance``).
    levels : tuple of str
        The strata's labels (the first is the reference).
    ar1 : _AR1Rows or None
    pieces : tuple of RowPiece
        The stored cross-products, in the order of :meth:`coefficients`.
    """

    variance: VarIdent | None
    correlation: CorAR1 | None
    strata: np.ndarray
    levels: tuple[str, ...]
    ar1: _AR1Rows | None
    pieces: tuple[RowPiece, ...]

    # --- parameters ---------------------------------------------------------------------
    @property
    def nparams(self) -> int:
        return (len(self.levels) - 1) + (self.ar1 is not None)

    @property
    def names(self) -> list[str]:
        """``ratio.<level>`` for each stratum but the first, then ``phi``."""
        return [f"ratio.{level}" for level in self.levels[1:]] + (["phi"] if self.ar1 is not None else [])

    def start(self) -> np.ndarray:
        """Equal SDs and no correlation."""
        start = np.ones(self.nparams)
        if self.ar1 is not None:
            start[-1] = 0.0
        return start

    def to_free(self, params: np.ndarray) -> np.ndarray:
        """The optimizer's coordinates: ``log delta`` and ``atanh phi`` (unbounded)."""
        params = np.asarray(params, dtype=float)
        nd = len(self.levels) - 1
        return np.concatenate([np.log(params[:nd]), np.arctanh(params[nd:])])

    def from_free(self, free: np.ndarray) -> np.ndarray:
        free = np.asarray(free, dtype=float)
        nd = len(self.levels) - 1
        return np.concatenate([np.exp(free[:nd]), np.tanh(free[nd:])])

    def ratios(self, params: np.ndarray) -> np.ndarray:
        """``delta`` of every stratum (1 for the first)."""
        return np.concatenate([[1.0], np.asarray(params, dtype=float)[: len(self.levels) - 1]])

    def phi(self, params: np.ndarray) -> float | None:
        return float(params[-1]) if self.ar1 is not None else None

    # --- the likelihood's pieces -----------------------------------------------------------
    @cached_property
    def _piece_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per piece: its strata s and t and its kind (0 all rows, 1 inner rows, 2 lag pairs), views of one
        (pieces x 3) table; the pieces-by-ratios incidence (how often each free ratio divides the piece's
        coefficient); and the table itself."""
        table = np.array([(*p.strata, _PIECE_KINDS.index(p.kind)) for p in self.pieces], dtype=np.int64)
        s, t, kinds = table.T
        incidence = np.zeros((len(self.pieces), len(self.levels)))
        pieces = np.arange(s.size)  # one entry per piece in each update: no repeated index, no np.add.at needed
        incidence[pieces, s] += 1.0
        incidence[pieces, t] += 1.0
        return s, t, kinds, incidence[:, 1:], table

    @cached_property
    def _stratum_counts(self) -> np.ndarray:
        return np.bincount(self.strata, minlength=len(self.levels)).astype(float)

    def _scales(self, params: np.ndarray) -> np.ndarray:
        """``1 / (delta_s delta_t)`` per piece (an evaluation's hot path: a few numpy calls)."""
        s, t, *_ = self._piece_table
        delta = np.ones(len(self.levels))
        delta[1:] = params[: len(self.levels) - 1]
        return 1.0 / (delta[s] * delta[t])

    def _phi_factors(self, phi: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per kind (all, interior, pair): the coefficient's factor of phi and its first and second
        derivatives by ``v = atanh phi`` (``cosh^2 v``, ``sinh^2 v``, ``-sinh v cosh v``)."""
        c = 1.0 / (1.0 - phi * phi)
        first = 2.0 * phi * c
        second = 2.0 * (1.0 + phi * phi) * c
        return (
            np.array((c, c * phi * phi, -c * phi)),
            np.array((first, first, -(1.0 + phi * phi) * c)),
            np.array((second, second, -4.0 * phi * c)),
        )

    def coefficients(self, params: np.ndarray) -> np.ndarray:
        """The weight of each stored cross-product in ``M' R^-1 M``: ``c / delta_s^2`` (all rows),
        ``c phi^2 / delta_s^2`` (inner rows), ``-c phi / (delta_s delta_t)`` (lag pairs)."""
        params = np.asarray(params, dtype=float)
        if self.ar1 is None:
            return self._scales(params)
        phi = float(params[-1])
        c = 1.0 / (1.0 - phi * phi)
        factors = np.array((c, c * phi * phi, -c * phi))[self._piece_table[2]]
        return factors if self.variance is None else factors * self._scales(params)  # AR(1) alone: every scale is 1

    def coefficient_jacobian(self, params: np.ndarray) -> np.ndarray:
        """``d coefficients / d free`` (pieces x params) over the optimizer's ``log delta`` and ``atanh phi``.

        With ``c = 1 / (1 - phi^2)`` (``dc / d phi = 2 phi c^2``) and ``d phi / d atanh phi = 1 / c``:
        an "all" or "interior" piece of stratum s (``c / delta_s^2``, ``c phi^2 / delta_s^2``) has
        ``-2`` times its coefficient by ``log delta_s`` and ``2 phi c / delta_s^2`` by ``atanh phi``
        (both); a lag piece (``-c phi / (delta_s delta_t)``) has minus its coefficient by
        ``log delta_s`` and by ``log delta_t`` (twice when s = t), and
        ``-c (1 + phi^2) / (delta_s delta_t)`` by ``atanh phi``.
        """
        return self.coefficient_derivatives(params)[0]

    def coefficient_derivatives(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`coefficient_jacobian` and ``d^2 coefficients / d free d free`` (pieces x params x params).

        A coefficient is ``f(v) exp(-u_s - u_t)`` (``u = log delta``, ``u_0 = 0``; ``v = atanh phi``;
        ``f = cosh^2 v``, ``sinh^2 v`` or ``-sinh v cosh v`` for an "all", "interior" or lag piece, 1
        without AR(1)).  So by ``u_a u_b`` it is the coefficient times ``n_a n_b`` (how often a divides it),
        by ``u_a v`` minus ``n_a`` times its derivative by ``v``, and by ``v v``
        ``f'' exp(-u_s - u_t)``: ``2 cosh 2v = 2 (1 + phi^2) c`` or, for a lag piece,
        ``-2 sinh 2v = -4 phi c``, divided by ``delta_s delta_t``.
        """
        params = np.asarray(params, dtype=float)
        _, _, kinds, incidence, _ = self._piece_table
        if self.variance is None:  # AR(1) alone: every delta is 1, the only parameter is atanh phi
            _, first, second = self._phi_factors(float(params[-1]))
            return first[kinds][:, None], second[kinds][:, None, None]
        scale = self._scales(params)
        nd, k = incidence.shape[1], self.nparams
        jacobian, hessian = np.empty((scale.size, k)), np.empty((scale.size, k, k))
        if self.ar1 is None:
            coefficients = scale
        else:
            factors, first, second = self._phi_factors(float(params[-1]))
            coefficients = factors[kinds] * scale
            jacobian[:, -1] = by_v = first[kinds] * scale
            hessian[:, :nd, -1] = hessian[:, -1, :nd] = -incidence * by_v[:, None]
            hessian[:, -1, -1] = second[kinds] * scale
        jacobian[:, :nd] = -coefficients[:, None] * incidence
        hessian[:, :nd, :nd] = coefficients[:, None, None] * incidence[:, :, None] * incidence[:, None, :]
        return jacobian, hessian

    def kernel_tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """This structure as arrays for a compiled loop
        (:func:`~mixedmodels.linalg._residual_kernels.structure_terms`): per piece its strata s, t and kind
        (-1 without AR(1)), the pieces-by-ratios incidence, the strata's rows but the first's, and ``n - G``."""
        *_, incidence, table = self._piece_table
        if self.ar1 is None:
            table = table.copy()
            table[:, 2] = -1
        lag_rows = float(self.strata.size - self.ar1.ngroups) if self.ar1 is not None else 0.0
        return table, np.ascontiguousarray(incidence), np.ascontiguousarray(self._stratum_counts[1:]), lag_rows

    def logdet_hessian(self, params: np.ndarray) -> np.ndarray:
        """``d^2 log det R / d free d free``: only ``-2 (1 - phi^2) (n - G)`` by ``atanh phi`` twice."""
        out = np.zeros((self.nparams, self.nparams))
        if self.ar1 is not None:
            phi = self.phi(params)
            out[-1, -1] = -2.0 * (1.0 - phi * phi) * (self.strata.size - self.ar1.ngroups)
        return out

    def logdet_gradient(self, params: np.ndarray) -> np.ndarray:
        """``d log det R / d free``: ``2 n_s`` by ``log delta_s`` and ``-2 phi (n - G)`` by ``atanh phi``."""
        out = 2.0 * self._stratum_counts[1:]
        if self.ar1 is not None:
            out = np.append(out, -2.0 * self.phi(params) * (self.strata.size - self.ar1.ngroups))
        return out

    def logdet(self, params: np.ndarray) -> float:
        """``log det R`` (R the residual covariance over sigma^2)."""
        value = 0.0  # without a variance structure every delta is 1
        if self.variance is not None:
            value = 2.0 * float(self._stratum_counts @ np.log(self.ratios(params)))
        if self.ar1 is not None:
            phi = self.phi(params)
            value += (self.strata.size - self.ar1.ngroups) * np.log1p(-phi * phi)
        return value

    def row_ratios(self, params: np.ndarray) -> np.ndarray:
        """``delta`` of each row's stratum."""
        return self.ratios(params)[self.strata]

    # --- residuals and simulation ----------------------------------------------------------
    def normalize(self, resid: np.ndarray, params: np.ndarray) -> np.ndarray:
        """``chol(R)^-1 resid``: divided by the rows' ratios, then decorrelated within each group
        (nlme's normalized residuals, before dividing by sigma)."""
        u = resid / self.row_ratios(params)
        if self.ar1 is None:
            return u
        phi = self.phi(params)
        out = u.copy()
        later = self.ar1.predecessor >= 0
        out[later] = (u[later] - phi * u[self.ar1.predecessor[later]]) / np.sqrt(1.0 - phi * phi)
        return out

    def draw(self, rng: np.random.Generator, nsim: int, params: np.ndarray) -> np.ndarray:
        """``nsim`` draws of ``e ~ N(0, R)``, shape (n, nsim): the AR(1) recursion in time order, times the ratios."""
        z = rng.standard_normal((self.strata.size, nsim))
        if self.ar1 is not None:
            phi = self.phi(params)
            innovation = np.sqrt(1.0 - phi * phi)
            e = z.copy()
            for k in range(1, int(self.ar1.position.max()) + 1):
                rows = np.flatnonzero(self.ar1.position == k)
                e[rows] = phi * e[self.ar1.predecessor[rows]] + innovation * z[rows]
            z = e
        return z * self.row_ratios(params)[:, None]

    def describe(self, params: np.ndarray) -> list[str]:
        """nlme's report of the structure's estimates, as summary lines."""
        lines = []
        if self.variance is not None:
            ratios = self.ratios(params)
            lines.append(
                f"Variance function: different standard deviations per level of {self.variance.column} (varIdent)"
            )
            width = max(max(len(level) for level in self.levels), 6)
            lines.append(" " + " ".join(level.rjust(width) for level in self.levels))
            lines.append(" " + " ".join(f"{r:.4f}".rjust(width) for r in ratios))
        if self.correlation is not None:
            time = self.correlation.time or "row order"
            lines.append(f"Correlation structure: AR(1) within {self.correlation.group} over {time} (corAR1)")
            lines.append(f" Phi: {self.phi(params):.4f}")
        return lines


# --- binding to the data ------------------------------------------------------------------------


def residual_variables(variance: Any, correlation: Any) -> tuple[str, ...]:
    """The columns a residual structure reads (the model frame keeps them); checks the arguments' types."""
    if variance is not None and not isinstance(variance, VarIdent):
        raise ModelSpecError(
            f"weights= takes prior weights (numbers) or mm.var_ident('column'), not {type(variance).__name__}"
        )
    if correlation is not None and not isinstance(correlation, CorAR1):
        raise ModelSpecError(f"correlation= takes mm.cor_ar1('time', group='g'), not {correlation!r}")
    names = [variance.column] if variance is not None else []
    if correlation is not None:
        names += [correlation.group] + ([correlation.time] if correlation.time is not None else [])
    return tuple(names)


def bind_residual(
    variance: Any, correlation: Any, column: Callable[[str], Any], nrows: int, terms: Sequence = ()
) -> ResidualStructure | None:
    """The structure for the ``nrows`` rows of a model frame (rows in model order) whose columns' values
    ``column`` gives by name as arrays (``ModelInputs.array``: a NumPy array for a NumPy dtype, else the column's
    extension array; neither a DataFrame nor a Series made), or None for neither.

    ``terms`` are the model's random-effects terms: an AR(1) group must lie
    within one level of each of their grouping factors (nlme's nesting).
    """
    residual_variables(variance, correlation)
    if variance is None and correlation is None:
        return None
    strata, levels = _strata(column, nrows, variance)
    ar1 = _ar1_rows(column, nrows, correlation, terms) if correlation is not None else None
    return ResidualStructure(variance, correlation, strata, levels, ar1, _pieces(strata, len(levels), ar1))


class _Labels:
    """A group factor's level labels as strings, made one at a time (they name groups in error messages
    only; listing a string factor's categories costs ~0.1 ms a fit)."""

    def __init__(self, levels: Any) -> None:
        self.levels = levels

    def __len__(self) -> int:
        return len(self.levels)

    def __getitem__(self, i: int) -> str:
        return str(self.levels[i])


def _strata(columns: Callable[[str], Any], n: int, variance: VarIdent | None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Stratum codes per row and labels (used levels, in the factor's order)."""
    if variance is None:
        return np.zeros(n, dtype=np.int64), ("all",)
    codes, labels = _group_codes(columns(variance.column))
    used = np.bincount(codes, minlength=len(labels)).nonzero()[0]
    if used.size < 2:
        raise ModelSpecError(
            f"var_ident({variance.column!r}) needs at least two levels with observations to compare; "
            f"{variance.column!r} has {used.size} ({', '.join(labels[i] for i in used)})"
        )
    remap = np.empty(len(labels), dtype=np.int64)
    remap.fill(-1)
    remap[used] = np.arange(used.size)
    return remap[codes], tuple(labels[i] for i in used)


def _group_codes(values: Any) -> tuple[np.ndarray, Sequence[str]]:
    """Codes and labels of a factor's values (an array): a Categorical's own (its categories' labels kept per
    categories Index, as the random-effects terms' grouping factors, :func:`.random._category_labels`), else the
    sorted distinct values' (an object column mixing numbers and strings as text, :func:`.values.level_values`)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.codes.astype(np.int64), _category_labels(values.categories)
    uniques, codes = np.unique(level_values(np.asarray(values)), return_inverse=True)
    return codes.astype(np.int64), _Labels(uniques)


def _times(columns: Callable[[str], Any], n: int, correlation: CorAR1) -> np.ndarray:
    if correlation.time is None:
        return np.arange(n, dtype=float)
    values = columns(correlation.time)
    dtype = values.dtype
    if isinstance(dtype, np.dtype):  # pandas' numeric dtypes but bool, without its dtype dispatch (~4 us)
        numeric = dtype.kind in "iufc"
    else:
        numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
    if not numeric:
        raise DataError(f"cor_ar1(): the time column {correlation.time!r} must be numeric (whole numbers), not {dtype}")
    return np.asarray(values, dtype=float) if isinstance(values, np.ndarray) else values.to_numpy(dtype=float)


def _ar1_rows(columns: Callable[[str], Any], n: int, correlation: CorAR1, terms: Sequence) -> _AR1Rows:
    """Sort each group by time, check the spacing and the nesting, and pair consecutive times."""
    groups, labels = _group_codes(columns(correlation.group))
    times = _times(columns, n, correlation)
    order = np.lexsort((times, groups))
    g, t = groups[order], times[order]
    # edges[i]: sorted row i starts a group (i < n), ends[i] = edges[i + 1]: it ends one; one array, three views
    edges = np.ones(n + 1, dtype=bool)
    np.not_equal(g[1:], g[:-1], out=edges[1:n])
    starts, ends, same = edges[:n], edges[1:], ~edges[1:n]
    _check_groups(g, t, starts & ends, same, labels, correlation)
    previous, following = order[:-1][same], order[1:][same]
    for term in terms:
        _check_nested(term, previous, following, groups, labels, correlation)
    interior = np.empty(n, dtype=bool)
    interior[order] = ~(starts | ends)
    return _AR1Rows(previous, following, interior, int(starts.sum()), order, starts)


def _check_groups(g, t, lone_rows, same, labels, correlation: CorAR1) -> None:
    """Two or more times per group (``lone_rows``: the sorted rows alone in their group), distinct, one unit
    apart (when a time column is given)."""
    if lone_rows.any():
        lone = g[lone_rows]  # the lone groups' codes, in order
        raise ModelSpecError(
            f"cor_ar1(group={correlation.group!r}): group {labels[lone[0]]!r} has one time point"
            f"{f' (and {lone.size - 1} more groups)' if lone.size > 1 else ''}; an AR(1) correlation needs at "
            "least two observations per group: drop those rows or group differently"
        )
    if correlation.time is None:
        return
    if not np.isfinite(t).all():
        raise DataError(f"cor_ar1(): the time column {correlation.time!r} has infinite values")
    step = t[1:] - t[:-1]
    bad = (same & (np.abs(step - 1.0) > _SPACING_TOLERANCE)).nonzero()[0]
    if bad.size:
        group = labels[g[bad[0] + 1]]
        shown = ", ".join(f"{v:g}" for v in t[g == g[bad[0] + 1]][:8])
        what = "repeats a time" if step[bad[0]] == 0 else "has a gap or unequal spacing"
        raise ModelSpecError(
            f"cor_ar1({correlation.time!r}, group={correlation.group!r}): group {group!r} {what} (times {shown}); "
            "AR(1) residuals need whole-number times one apart within each group (nlme's corAR1): use an index of "
            "the observations within the group as time if the spacing does not matter"
        )


def _check_nested(
    term, previous: np.ndarray, following: np.ndarray, groups: np.ndarray, labels, correlation: CorAR1
) -> None:
    """Every correlation group lies within one level of the term's grouping factor."""
    crossing = (term.refs[previous] != term.refs[following]).nonzero()[0]
    if crossing.size:
        group = labels[groups[previous[crossing[0]]]]
        raise ModelSpecError(
            f"cor_ar1(group={correlation.group!r}): group {group!r} spans several levels of {term.group!r} in the "
            f"random-effects term {term}; the correlation groups must be nested in every random-effects "
            f"grouping factor (as nlme requires): use group={term.group!r} or a factor nested in it"
        )


def _pieces(strata: np.ndarray, nstrata: int, ar1: _AR1Rows | None) -> tuple[RowPiece, ...]:
    """The stored cross-products: per stratum all rows (and the inner ones), and the lag pairs per pair of strata."""
    if nstrata == 1 and ar1 is not None:  # AR(1) alone: all rows, the inner ones, every pair (no selecting)
        pieces = [RowPiece(np.arange(strata.size), None, "all", (0, 0))]
        inner = ar1.interior.nonzero()[0]
        if inner.size:
            pieces.append(RowPiece(inner, None, "interior", (0, 0)))
        return (*pieces, RowPiece(ar1.previous, ar1.following, "pair", (0, 0)))
    pieces = []
    for s in range(nstrata):
        pieces.append(RowPiece((strata == s).nonzero()[0], None, "all", (s, s)))
        if ar1 is not None:
            inner = ((strata == s) & ar1.interior).nonzero()[0]
            if inner.size:
                pieces.append(RowPiece(inner, None, "interior", (s, s)))
    if ar1 is not None:
        for s in range(nstrata):
            for t in range(nstrata):
                pick = (strata[ar1.previous] == s) & (strata[ar1.following] == t)
                if pick.any():
                    pieces.append(RowPiece(ar1.previous[pick], ar1.following[pick], "pair", (s, t)))
    return tuple(pieces)

"""Complete, no and partial pooling side by side (``mm.compare_pooling``).

One lmer formula defines three ways of estimating group-level coefficients:

* **complete pooling** -- the fixed part alone, by (weighted) least squares:
  one regression for everyone, groups ignored;
* **no pooling** -- the random-term columns fitted separately for every level
  of the grouping factor (R's ``lmList``); with ``share_fixed=True`` one
  least-squares fit with per-group random-term columns and the remaining fixed
  columns shared (``lm(y ~ 0 + g + g:x + other)``);
* **partial pooling** -- the mixed model itself: lme4's ``coef()``, fixed
  effects plus each level's conditional mode.

Partial pooling "borrows strength": each level's estimate is pulled from its
own no-pooling estimate toward the population (fixed-effect) estimate, the
more so the less the level's own data say.  For a random intercept
``y_ij = mu + u_j + e_ij`` with ``u_j ~ N(0, s_u^2)`` and ``e_ij ~ N(0, s_e^2)``
the conditional mode is exactly

    mu_hat + u_hat_j = lambda_j * ybar_j + (1 - lambda_j) * mu_hat,
    lambda_j = s_u^2 / (s_u^2 + s_e^2 / n_j),

the shrinkage factor reported in :attr:`PoolingComparison.shrinkage`.

Levels too small for a separate fit (one observation cannot give a slope) get
the coefficients that can be estimated and NaN for the rest, never an error:
partial pooling still estimates all of theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import pandas as pd
from scipy.linalg.lapack import dtrtrs

from .design.fixed import _independent_columns
from .design.frame import required_variables
from .errors import MixedModelsError, ModelSpecError
from ._validate import check_bool

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .results import LmerResults

__all__ = ["compare_pooling", "PoolingComparison", "LeastSquaresFit", "APPROACHES"]

APPROACHES = ("complete", "no", "partial")
_ALIAS_TOL = 1e-7


@dataclass(frozen=True, eq=False)
class LeastSquaresFit:
    """A (weighted) least-squares fit, R's ``lm`` with aliased columns as NaN.

    Attributes
    ----------
    coef : Series
        Estimates; NaN for columns aliased with earlier ones (R's ``NA``),
        e.g. a slope for a group observed at a single x.
    se : Series
        Standard errors ``sigma * sqrt(diag((X'WX)^-1))``; NaN when
        ``df_resid == 0`` or for aliased columns.
    sigma : float
        Residual standard deviation ``sqrt(RSS / df_resid)`` (NaN if df_resid is 0).
    df_resid : int
        ``nobs - rank``.
    nobs : int
    rank : int
    """

    coef: pd.Series
    se: pd.Series
    sigma: float
    df_resid: int
    nobs: int
    rank: int


def _tri_solve(r: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve ``R x = b`` for upper-triangular R, one right-hand side at a time.

    LAPACK's dtrtrs on a single vector costs microseconds; with a matrix
    right-hand side OpenBLAS may start threads, which costs milliseconds per
    call -- too much for thousands of per-level fits.
    """
    if b.ndim == 2:
        return np.column_stack([_tri_solve(r, col) for col in b.T]) if b.shape[1] else np.zeros((r.shape[0], 0))
    x, info = dtrtrs(r, b)
    if info != 0:  # pragma: no cover - columns were checked for aliasing first
        raise ModelSpecError("a least-squares system is singular; please report this with the data")
    return x


def _kept_columns(x: np.ndarray, norms: np.ndarray | None = None) -> list[int]:
    """Columns kept by R's left-to-right rule for aliased columns.

    A column is aliased when its part orthogonal to the earlier kept columns
    has norm below ``1e-7`` times ``norms`` (its own norm by default; the
    original column's norm when ``x`` has already been projected).
    """
    n, p = x.shape
    if n == 0 or p == 0:
        return []
    return _independent_columns(x, _ALIAS_TOL, norms)


def _fit_result(names: list[str], coef: np.ndarray, se: np.ndarray, sigma: float, df: int, n: int,
                rank: int) -> LeastSquaresFit:
    index = pd.Index(names, name="term")
    return LeastSquaresFit(
        coef=pd.Series(coef, index=index, name="estimate"),
        se=pd.Series(se, index=index, name="se"),
        sigma=sigma,
        df_resid=int(df),
        nobs=int(n),
        rank=int(rank),
    )


def _least_squares(x: np.ndarray, y: np.ndarray, names: list[str], weights: np.ndarray | None = None) -> LeastSquaresFit:
    """Least squares ``min sum w_i (y_i - x_i'b)^2`` with R's rule for aliased columns (NaN)."""
    if weights is not None:
        sw = np.sqrt(weights)
        x, y = x * sw[:, None], y * sw
    n, p = x.shape
    coef, se = np.full(p, np.nan), np.full(p, np.nan)
    keep = _kept_columns(x)
    sigma, df = np.nan, n - len(keep)
    if keep:
        q, r = np.linalg.qr(x[:, keep])
        beta = _tri_solve(r, q.T @ y)
        coef[keep] = beta
        if df > 0:
            resid = y - x[:, keep] @ beta
            sigma = float(np.sqrt(resid @ resid / df))
            rinv = _tri_solve(r, np.eye(len(keep)))
            se[keep] = sigma * np.sqrt(np.sum(rinv**2, axis=1))
    return _fit_result(names, coef, se, sigma, df, n, len(keep))


# --------------------------------------------------------------------------
# what the comparison is made of


@dataclass(frozen=True, eq=False)
class _Layout:
    """The chosen grouping factor and the coefficient columns, per data row."""

    group: str
    levels: tuple[str, ...]
    refs: np.ndarray
    terms: tuple[str, ...]  # coef() columns: fixed names, then random-only names
    random_terms: tuple[str, ...]  # the group's random-term columns
    design: np.ndarray  # n x len(terms), the columns of `terms`
    y: np.ndarray  # response minus offset
    weights: np.ndarray | None


def _group_terms(fit: "LmerResults", group: str | None):
    names = list(dict.fromkeys(t.group for t in fit.terms))
    if group is None:
        first = fit.model.inputs.formula.random[0]
        group = next((g for g in names if g == first.group), names[0])
    if group not in names:
        raise ModelSpecError(f"grouping factor {group!r} is not in the model; choose one of {names}")
    return group, [t for t in fit.terms if t.group == group]


def _layout(fit: "LmerResults", group: str | None) -> _Layout:
    group, terms = _group_terms(fit, group)
    inputs = fit.model.inputs
    fixed = list(inputs.fixed.column_names)
    columns = {name: inputs.fixed.matrix[:, j] for j, name in enumerate(fixed)}
    random: list[str] = []
    for term in terms:
        for j, name in enumerate(term.column_names):
            if name not in random:
                random.append(name)
                columns.setdefault(name, term.z[:, j])
    names = fixed + [r for r in random if r not in fixed]
    y = inputs.y - inputs.offset if inputs.offset is not None else inputs.y
    return _Layout(
        group=group,
        levels=tuple(terms[0].levels),
        refs=terms[0].refs,
        terms=tuple(names),
        random_terms=tuple(random),
        design=np.column_stack([columns[n] for n in names]),
        y=np.asarray(y, dtype=float),
        weights=inputs.weights,
    )


def _complete_pooling(fit: "LmerResults", layout: _Layout) -> LeastSquaresFit:
    inputs = fit.model.inputs
    return _least_squares(inputs.fixed.matrix, layout.y, list(inputs.fixed.column_names), layout.weights)


def _rows(layout: _Layout, level: int) -> np.ndarray:
    return np.flatnonzero(layout.refs == level)


def _level_rows(layout: _Layout) -> list[np.ndarray]:
    """Row indices of every level, in level order (one pass over the data)."""
    order = np.argsort(layout.refs, kind="stable")
    counts = np.bincount(layout.refs, minlength=len(layout.levels))
    return np.split(order, np.cumsum(counts)[:-1])


def _no_pooling_separate(layout: _Layout) -> dict[str, LeastSquaresFit]:
    """One least-squares fit of all coefficient columns per level (R's lmList)."""
    fits = {}
    w = layout.weights
    for level, rows in zip(layout.levels, _level_rows(layout)):
        fits[level] = _least_squares(layout.design[rows], layout.y[rows], list(layout.terms), None if w is None else w[rows])
    return fits


def _joint_name(group: str, level: str, term: str) -> str:
    """R's names in ``lm(y ~ 0 + g + g:x)``: ``Subject308``, ``Subject308:Days``."""
    return f"{group}{level}" if term == "(Intercept)" else f"{group}{level}:{term}"


def _no_pooling_shared(layout: _Layout) -> LeastSquaresFit:
    """One fit ``y ~ 0 + g + g:z + x``: the random-term columns z per level, the rest x shared.

    Solved by Frisch-Waugh-Lovell, never forming the n x (levels * k) matrix:
    with ``M`` projecting each level's rows off its columns ``Z_j``, the shared
    ``beta`` is the least-squares fit of ``M y`` on ``M X``; then
    ``b_j = (Z_j'Z_j)^-1 Z_j'(y_j - X_j beta)`` with
    ``Var(b_j) = sigma^2 [(Z_j'Z_j)^-1 + A_j (X'MX)^-1 A_j']``, ``A_j = (Z_j'Z_j)^-1 Z_j'X_j``.
    """
    per = [layout.terms.index(t) for t in layout.random_terms]
    shared = [j for j, t in enumerate(layout.terms) if t not in layout.random_terms]
    sw = np.sqrt(layout.weights) if layout.weights is not None else np.ones(len(layout.y))
    z, x, y = layout.design[:, per] * sw[:, None], layout.design[:, shared] * sw[:, None], layout.y * sw
    blocks = [_level_block(z, rows) for rows in _level_rows(layout)]
    xt, yt = x.copy(), y.copy()
    for rows, keep, q, _ in blocks:
        if keep:
            xt[rows] -= q @ (q.T @ x[rows])
            yt[rows] -= q @ (q.T @ y[rows])
    keep_x = _kept_columns(xt, np.linalg.norm(x, axis=0))
    beta, cov_x, resid = np.zeros(0), np.zeros((0, 0)), yt
    if keep_x:
        q, r = np.linalg.qr(xt[:, keep_x])
        beta = _tri_solve(r, q.T @ yt)
        rinv = _tri_solve(r, np.eye(len(keep_x)))
        cov_x, resid = rinv @ rinv.T, yt - xt[:, keep_x] @ beta
    rank = sum(len(b[1]) for b in blocks) + len(keep_x)
    df = len(y) - rank
    sigma = float(np.sqrt(resid @ resid / df)) if df > 0 else np.nan
    k, size = len(per), len(blocks) * len(per) + len(shared)
    coef, var = np.full(size, np.nan), np.full(size, np.nan)
    for j, (rows, keep, q, r) in enumerate(blocks):
        if keep:
            where = j * k + np.array(keep)
            coef[where], var[where] = _level_coef(q, r, x[rows][:, keep_x], y[rows], beta, cov_x)
    tail = len(blocks) * k + np.array(keep_x, dtype=int)
    coef[tail], var[tail] = beta, np.diag(cov_x)
    names = [_joint_name(layout.group, level, layout.terms[c]) for level in layout.levels for c in per]
    return _fit_result(names + [layout.terms[c] for c in shared], coef, sigma * np.sqrt(var), sigma, df, len(y), rank)


def _level_block(z: np.ndarray, rows: np.ndarray):
    """Rows of one level, its non-aliased columns and their thin QR."""
    zj = z[rows]
    keep = _kept_columns(zj)
    if not keep:
        return rows, keep, None, None
    q, r = np.linalg.qr(zj[:, keep])
    return rows, keep, q, r


def _level_coef(q, r, xj, yj, beta, cov_x) -> tuple[np.ndarray, np.ndarray]:
    """A level's coefficients given the shared ones, and the diagonal of their unscaled covariance."""
    rinv = _tri_solve(r, np.eye(r.shape[0]))
    b = _tri_solve(r, q.T @ (yj - xj @ beta))
    a = _tri_solve(r, q.T @ xj)
    return b, np.diag(rinv @ rinv.T + a @ cov_x @ a.T)


def _group_covariance(fit: "LmerResults", group: str) -> pd.DataFrame:
    """Covariance matrix of one grouping factor's random effects (all its terms; 0 across terms)."""
    names: list[str] = []
    blocks: list[np.ndarray] = []
    for cov, term in zip(fit.covariances.values(), fit.terms):
        if term.group == group:
            names += list(term.column_names)
            blocks.append(cov)
    if not blocks:
        raise ModelSpecError(f"grouping factor {group!r} is not in the model")
    size = sum(b.shape[0] for b in blocks)
    out, start = np.zeros((size, size)), 0
    for b in blocks:
        k = b.shape[0]
        out[start : start + k, start : start + k] = b
        start += k
    return pd.DataFrame(out, index=names, columns=names)


# --------------------------------------------------------------------------
# the tidy tables


def _no_pooling_arrays(layout: _Layout, no_fit) -> tuple[np.ndarray, np.ndarray]:
    """No-pooling estimates and SEs, levels x terms (``layout.terms`` order)."""
    if not isinstance(no_fit, LeastSquaresFit):
        est = np.array([no_fit[level].coef.to_numpy() for level in layout.levels])
        se = np.array([no_fit[level].se.to_numpy() for level in layout.levels])
        return est, se
    nlev, k = len(layout.levels), len(layout.random_terms)
    coef, ses = no_fit.coef.to_numpy(), no_fit.se.to_numpy()
    est, se = np.empty((nlev, len(layout.terms))), np.empty((nlev, len(layout.terms)))
    per = [layout.terms.index(t) for t in layout.random_terms]
    shared = [j for j, t in enumerate(layout.terms) if t not in layout.random_terms]
    est[:, per], se[:, per] = coef[: nlev * k].reshape(nlev, k), ses[: nlev * k].reshape(nlev, k)
    est[:, shared], se[:, shared] = coef[nlev * k :], ses[nlev * k :]
    return est, se


def _complete_arrays(layout: _Layout, complete: LeastSquaresFit) -> tuple[np.ndarray, np.ndarray]:
    """Complete-pooling estimates per term; a random-only term is absent (NaN)."""
    est = complete.coef.reindex(list(layout.terms)).to_numpy()
    se = complete.se.reindex(list(layout.terms)).to_numpy()
    return est, se


def _partial_array(fit: "LmerResults", layout: _Layout) -> np.ndarray:
    coef = fit.coef()[layout.group]
    return coef.loc[list(layout.levels), list(layout.terms)].to_numpy(dtype=float)


def _table(layout: _Layout, counts: np.ndarray, estimates: dict[str, np.ndarray], ses: dict[str, np.ndarray],
           fixed: list[str]) -> pd.DataFrame:
    """Long format, level by level, then approach, then term; complete pooling lists only the fixed terms."""
    terms = np.array(layout.terms, dtype=object)
    parts = []
    for a, approach in enumerate(APPROACHES):
        cols = np.flatnonzero(np.isin(terms, fixed)) if approach == "complete" else np.arange(len(terms))
        nlev, ncol = len(layout.levels), len(cols)
        parts.append(pd.DataFrame({
            "level": np.repeat(np.arange(nlev), ncol), "order": a * len(terms) + np.tile(cols, nlev),
            "approach": approach, "term": np.tile(terms[cols], nlev),
            "estimate": estimates[approach][:, cols].ravel(), "se": ses[approach][:, cols].ravel(),
        }))
    long = pd.concat(parts, ignore_index=True).sort_values(["level", "order"], kind="stable")
    levels = np.array(layout.levels, dtype=object)
    long.insert(0, "group", levels[long["level"].to_numpy()])
    long.insert(1, "n", counts[long["level"].to_numpy()].astype(int))
    table = long.drop(columns=["level", "order"]).reset_index(drop=True)
    table["term"] = table["term"].astype(str)
    table["group"] = table["group"].astype(str)
    return table


def _shrinkage_factor(fit: "LmerResults", layout: _Layout, counts: np.ndarray) -> np.ndarray | None:
    """lambda_j = s_u^2 / (s_u^2 + s_e^2 / n_j) for a random-intercept-only grouping factor."""
    if layout.random_terms != ("(Intercept)",):
        return None
    su2 = float(_group_covariance(fit, layout.group).iloc[0, 0])
    return su2 / (su2 + fit.sigma**2 / counts)


def _shrinkage(fit: "LmerResults", layout: _Layout, counts: np.ndarray, no_pool: np.ndarray, partial: np.ndarray) -> pd.DataFrame:
    fixef = fit.fixef
    lam = _shrinkage_factor(fit, layout, counts)
    frames = []
    for term in layout.random_terms:
        k = layout.terms.index(term)
        population = float(fixef.get(term, 0.0))
        toward = population - no_pool[:, k]
        with np.errstate(invalid="ignore", divide="ignore"):
            fraction = np.where(toward != 0, (partial[:, k] - no_pool[:, k]) / toward, np.nan)
        frame = pd.DataFrame({
            "group": list(layout.levels), "n": counts.astype(int), "term": term,
            "no_pooling": no_pool[:, k], "partial_pooling": partial[:, k], "population": population,
            "shift": partial[:, k] - no_pool[:, k], "fraction": fraction,
        })
        if lam is not None:
            frame["shrinkage_factor"] = lam
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------
# the result object


@dataclass(frozen=True, eq=False)
class PoolingComparison:
    """Complete, no and partial pooling estimates of one model, side by side.

    Made by :func:`compare_pooling`; immutable (the tables are returned as copies).

    Attributes
    ----------
    group : str
        The grouping factor compared (lme4's name, e.g. ``"Subject"``).
    terms : tuple of str
        Coefficient names in lme4's ``coef()`` order.
    random_terms : tuple of str
        The group's random-effects columns: the coefficients that are pooled.
    share_fixed : bool
        Whether no pooling shares the fixed columns outside the random term.
    complete_fit : LeastSquaresFit
        The fixed part alone by least squares.
    no_pooling_fit : dict of LeastSquaresFit, or LeastSquaresFit
        One fit per level (read-only mapping level -> fit), or with
        ``share_fixed=True`` the single joint fit (coefficients named as R
        names ``lm(y ~ 0 + g + g:x + ...)``: ``Subject308``, ``Subject308:Days``).
    partial_fit : LmerResults
        The mixed model.
    """

    group: str
    terms: tuple[str, ...]
    random_terms: tuple[str, ...]
    share_fixed: bool
    complete_fit: LeastSquaresFit
    no_pooling_fit: Any
    partial_fit: "LmerResults"
    _table: pd.DataFrame
    _shrinkage: pd.DataFrame
    _layout: _Layout

    @property
    def levels(self) -> tuple[str, ...]:
        """Levels of the grouping factor, in lme4's order."""
        return self._layout.levels

    @property
    def table(self) -> pd.DataFrame:
        """Tidy estimates: one row per group, approach and term.

        Columns ``group``, ``n`` (observations in the group), ``approach``
        (``"complete"``, ``"no"``, ``"partial"``), ``term``, ``estimate`` and
        ``se``.  Complete pooling repeats its single estimate in every group
        and lists only the fixed-effect terms; no-pooling SEs are those of the
        separate fits (each with its own residual SD), NaN where a fit has no
        residual degrees of freedom; partial pooling has no SE (NaN), as
        lme4's ``coef()`` has none.
        """
        return self._table.copy()

    @property
    def shrinkage(self) -> pd.DataFrame:
        """How far partial pooling moved each level, per pooled term.

        Columns ``group``, ``n``, ``term``, ``no_pooling``, ``partial_pooling``,
        ``population`` (the fixed effect, 0 for a term with no fixed effect),
        ``shift`` (partial minus no pooling) and ``fraction`` (shift as a
        fraction of the way to the population estimate; ``1 - lambda_j`` in a
        one-factor random-intercept model).  For a random-intercept-only
        factor also ``shrinkage_factor`` ``lambda_j = s_u^2 / (s_u^2 + s_e^2/n_j)``.
        """
        return self._shrinkage.copy()

    @property
    def covariance(self) -> pd.DataFrame:
        """Estimated covariance matrix of the group's random effects (over ``random_terms``)."""
        return _group_covariance(self.partial_fit, self.group)

    @property
    def population(self) -> pd.Series:
        """The population estimate of each pooled term: its fixed effect, 0 if it has none."""
        fixef = self.partial_fit.fixef
        return pd.Series([float(fixef.get(t, 0.0)) for t in self.random_terms], index=list(self.random_terms))

    def estimates(self, approach: str) -> pd.DataFrame:
        """One approach's coefficients as a levels x terms frame (like lme4's ``coef()``)."""
        if approach not in APPROACHES:
            raise MixedModelsError(f"unknown approach {approach!r}; choose one of {list(APPROACHES)}")
        rows = self._table[self._table["approach"] == approach]
        wide = rows.pivot(index="group", columns="term", values="estimate")
        terms = [t for t in self.terms if t in wide.columns]
        wide = wide.reindex(index=list(self.levels), columns=terms)
        wide.index.name, wide.columns.name = self.group, None
        return wide

    def lines(self, x: str | None = None, npoints: int = 50, groups=None) -> pd.DataFrame:
        """Each approach's fitted line per level over the range of ``x``.

        ``x`` is a numeric predictor (default: the only one among the
        group's random-term variables, else the fixed part's).  Other
        variables are held at the level's first observed row.  Returns a tidy
        frame: ``group``, ``approach``, ``x`` (column named after the
        variable), ``fitted``; a line is NaN where its coefficients are.
        """
        return _fitted_lines(self, _choose_x(self, x), npoints, groups)

    def plot(self, **kwargs) -> "Figure":
        """Per-level panels: data plus the three fitted lines (see :func:`mixedmodels.plots.pooling_lines`)."""
        from .plots import pooling_lines

        return pooling_lines(self, **kwargs)

    def plot_shrinkage(self, **kwargs) -> "Figure":
        """Arrows from no- to partial-pooling estimates (see :func:`mixedmodels.plots.shrinkage`)."""
        from .plots import shrinkage

        return shrinkage(self, **kwargs)

    def __repr__(self) -> str:
        return (f"<PoolingComparison {self.partial_fit.formula!r}: {len(self.levels)} levels of "
                f"{self.group!r}, terms {list(self.terms)}>")


# --------------------------------------------------------------------------
# fitted lines for plotting


def _numeric_variables(fit: "LmerResults", expr: str) -> list[str]:
    frame = fit.model.inputs.frame
    names = [v for v in sorted(required_variables(expr)) if v in frame.columns]
    return [v for v in names if pd.api.types.is_numeric_dtype(frame[v]) and not pd.api.types.is_bool_dtype(frame[v])]


def _choose_x(cmp: PoolingComparison, x: str | None) -> str | None:
    """The predictor along which lines are drawn, or None for an intercept-only model."""
    fit = cmp.partial_fit
    frame = fit.model.inputs.frame
    if x is not None:
        if x not in frame.columns or not pd.api.types.is_numeric_dtype(frame[x]):
            raise MixedModelsError(f"x={x!r} is not a numeric variable of the model; choose one of its numeric predictors")
        return x
    parsed = fit.model.inputs.formula
    random = [v for t in parsed.random if t.group == cmp.group for v in _numeric_variables(fit, t.expr)]
    candidates = list(dict.fromkeys(random)) or _numeric_variables(fit, parsed.fixed)
    if len(candidates) > 1:
        raise MixedModelsError(f"the model has several numeric predictors {candidates}; choose one with x=")
    return candidates[0] if candidates else None


def _level_design(cmp: PoolingComparison, level: int, x: str, grid: np.ndarray) -> np.ndarray:
    """The coefficient columns on a grid of ``x``, other variables at the level's first row."""
    fit, layout = cmp.partial_fit, cmp._layout
    inputs = fit.model.inputs
    first = inputs.frame.iloc[[_rows(layout, level)[0]]]
    new = first.loc[first.index.repeat(len(grid))].reset_index(drop=True)
    new[x] = grid
    columns = dict(zip(inputs.fixed.column_names, inputs.fixed.for_newdata(new).T))
    for term in fit.terms:
        if term.group == layout.group:
            for name, col in zip(term.column_names, term.design.for_newdata(new).T):
                columns.setdefault(name, col)
    return np.column_stack([columns[t] for t in layout.terms])


def _fitted_lines(cmp: PoolingComparison, x: str | None, npoints: int, groups) -> pd.DataFrame:
    if x is None:
        raise MixedModelsError("the model has no numeric predictor to draw lines along; its estimates are in .table")
    layout = cmp._layout
    selected = _select_levels(cmp, groups)
    values = cmp.partial_fit.model.inputs.frame[x].to_numpy(dtype=float)
    grid = np.linspace(values.min(), values.max(), npoints)
    coef = {a: cmp.estimates(a).reindex(columns=list(layout.terms)) for a in APPROACHES}
    coef["complete"] = coef["complete"].fillna(0.0)  # random-only terms are not in the fixed part
    frames = []
    for level in selected:
        design = _level_design(cmp, layout.levels.index(level), x, grid)
        for approach in APPROACHES:
            fitted = design @ coef[approach].loc[level].to_numpy()
            frames.append(pd.DataFrame({"group": level, "approach": approach, x: grid, "fitted": fitted}))
    return pd.concat(frames, ignore_index=True)


def _select_levels(cmp: PoolingComparison, groups) -> list[str]:
    if groups is None:
        return list(cmp.levels)
    chosen = [str(g) for g in ([groups] if isinstance(groups, str) else groups)]
    unknown = [g for g in chosen if g not in cmp.levels]
    if unknown:
        raise MixedModelsError(f"levels {unknown} are not levels of {cmp.group!r}; it has {len(cmp.levels)} levels")
    return chosen


# --------------------------------------------------------------------------
# the public function


def _fit_model(formula, data, kwargs: Mapping[str, Any]) -> "LmerResults":
    from .results import LmerResults

    if isinstance(formula, LmerResults):
        if kwargs:
            raise MixedModelsError(f"arguments {sorted(kwargs)} apply when fitting; a fitted model was given")
        return formula
    from .lmm import lmer

    return lmer(formula, data, **kwargs)


def compare_pooling(
    formula: "str | LmerResults",
    data: pd.DataFrame | None = None,
    *,
    group: str | None = None,
    share_fixed: bool = False,
    method: str = "lmer",
    **lmer_kwargs: Any,
) -> PoolingComparison:
    """Fit complete, no and partial pooling from one lmer formula and compare them.

    Parameters
    ----------
    formula : str or LmerResults
        An lme4 formula such as ``"Reaction ~ Days + (Days | Subject)"``, or an
        already fitted model (then ``data`` is not needed).
    data : DataFrame
    group : str, optional
        Grouping factor to compare (lme4's name, e.g. ``"cask:batch"``);
        default the first random term's.
    share_fixed : bool
        No pooling fits the group's random-term columns separately per level.
        False (default): every coefficient column, including fixed effects not
        in the random term, is fitted per level (R's ``lmList``).  True: one
        joint least-squares fit in which only the random-term columns vary by
        level and the other fixed effects are shared (Gelman & Hill's no
        pooling, ``lm(y ~ 0 + g + x)`` for a random intercept).
    method : {"lmer", "bayes"}
        ``"bayes"`` fits the three models with priors by NUTS
        (:func:`mixedmodels.bayes.compare_pooling_bayes`, needs the ``bayes``
        extra); the table then has posterior means, SDs and 95 % HDIs.
    **lmer_kwargs
        ``REML``, ``weights``, ``offset``, ``contrasts``, ``settings`` for
        :func:`mixedmodels.lmer` (weights and offset apply to all three fits),
        or the sampler's arguments with ``method="bayes"``.

    Returns
    -------
    PoolingComparison
        ``.table``, ``.shrinkage``, ``.estimates(approach)``, ``.lines()``,
        ``.plot()``, ``.plot_shrinkage()`` and the three underlying fits.

    Notes
    -----
    Complete pooling minimises ``sum_i w_i (y_i - x_i'b)^2``; no pooling does the
    same per level (or jointly with level-specific columns); partial pooling is
    ``lmer``'s ``beta_hat + b_hat_j``.  Levels whose separate fit cannot
    estimate a coefficient (too few observations, no variation in x) get NaN
    for it -- R's ``NA`` -- and no error.

    Examples
    --------
    >>> cmp = mm.compare_pooling("Reaction ~ Days + (Days | Subject)", sleep)
    >>> cmp.estimates("no").loc["308"]      # 244.19, 21.76 as in lme4's documentation
    """
    share_fixed = check_bool(share_fixed, "share_fixed")
    if method == "bayes":
        from .bayes.pooling import compare_pooling_bayes

        return compare_pooling_bayes(formula, data, group=group, share_fixed=share_fixed, **lmer_kwargs)
    if method != "lmer":
        raise MixedModelsError(f"unknown method {method!r}; choose 'lmer' or 'bayes'")
    fit = _fit_model(formula, data, lmer_kwargs)
    layout = _layout(fit, group)
    counts = np.bincount(layout.refs, minlength=len(layout.levels))
    complete = _complete_pooling(fit, layout)
    no_fit = _no_pooling_shared(layout) if share_fixed else _no_pooling_separate(layout)
    no_est, no_se = _no_pooling_arrays(layout, no_fit)
    c_est, c_se = _complete_arrays(layout, complete)
    partial = _partial_array(fit, layout)
    nlev = len(layout.levels)
    estimates = {"complete": np.tile(c_est, (nlev, 1)), "no": no_est, "partial": partial}
    ses = {"complete": np.tile(c_se, (nlev, 1)), "no": no_se, "partial": np.full_like(partial, np.nan)}
    return PoolingComparison(
        group=layout.group,
        terms=layout.terms,
        random_terms=layout.random_terms,
        share_fixed=bool(share_fixed),
        complete_fit=complete,
        no_pooling_fit=no_fit if share_fixed else MappingProxyType(no_fit),
        partial_fit=fit,
        _table=_table(layout, counts, estimates, ses, list(complete.coef.index)),
        _shrinkage=_shrinkage(fit, layout, counts, no_est, partial),
        _layout=layout,
    )

"""What a pooling comparison is made of: the data laid out per level, the least-squares fits, shrinkage.

One lmer formula defines three ways of estimating group-level coefficients
(:mod:`.compare`):

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

the shrinkage factor of :func:`shrinkage_table`.

Levels too small for a separate fit (one observation cannot give a slope) get
the coefficients that can be estimated and NaN for the rest, never an error:
partial pooling still estimates all of theirs.

Everything here is public to the pictures (:mod:`mixedmodels.plots`) and the
Bayesian comparison (:mod:`mixedmodels.bayes.pooling`): the :class:`Layout` of
the data, the fits, the covariance of a grouping factor's effects, the
shrinkage table, and :func:`choose_x` / :func:`select_levels`, which read a
comparison through the :class:`Comparison` protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ..design.frame import required_variables
from ..errors import MixedModelsError, ModelSpecError
from ..fitted import MixedFit
from ..linalg.lstsq import LeastSquares, lstsq

__all__ = [
    "APPROACHES",
    "LeastSquaresFit",
    "Layout",
    "Comparison",
    "build_layout",
    "level_rows",
    "complete_pooling",
    "no_pooling_separate",
    "no_pooling_shared",
    "joint_name",
    "group_covariance",
    "no_pooling_arrays",
    "complete_arrays",
    "partial_array",
    "long_table",
    "shrinkage_factor",
    "shrinkage_table",
    "numeric_variables",
    "choose_x",
    "select_levels",
    "shared_terms",
    "is_glmm",
    "shared_names",
    "shared_least_squares",
    "SharedSolution",
]

APPROACHES = ("complete", "no", "partial")


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


def _fit_result(
    names: list[str], coef: np.ndarray, se: np.ndarray, sigma: float, df: int, n: int, rank: int
) -> LeastSquaresFit:
    index = pd.Index(names, name="term")
    return LeastSquaresFit(
        coef=pd.Series(coef, index=index, name="estimate"),
        se=pd.Series(se, index=index, name="se"),
        sigma=sigma,
        df_resid=int(df),
        nobs=int(n),
        rank=int(rank),
    )


def _least_squares(
    x: np.ndarray, y: np.ndarray, names: list[str], weights: np.ndarray | None = None
) -> LeastSquaresFit:
    """Least squares ``min sum w_i (y_i - x_i'b)^2`` with R's rule for aliased columns (NaN)."""
    fit = lstsq(x, y, weights)
    sigma = fit.sigma if fit.rank else np.nan
    return _fit_result(names, fit.coef, fit.std_errors(sigma), sigma, fit.df_resid, fit.nobs, fit.rank)


# --------------------------------------------------------------------------
# the data per level, and the least-squares fits


@dataclass(frozen=True, eq=False)
class Layout:
    """The chosen grouping factor and the coefficient columns, per data row.

    For a linear mixed model ``y`` is the response minus any offset.  For a GLMM ``response``
    is the family's validated response (:class:`~mixedmodels.families.GlmResponse`), ``y``
    its values on the mean scale (proportions for binomial), ``weights`` its prior weights
    (binomial: the trials) and ``offset`` the offset on the link scale.
    """

    group: str
    levels: tuple[str, ...]
    refs: np.ndarray
    terms: tuple[str, ...]  # coef() columns: fixed names, then random-only names
    random_terms: tuple[str, ...]  # the group's random-term columns
    design: np.ndarray  # n x len(terms), the columns of `terms`
    y: np.ndarray  # response minus offset (LMM); response on the mean scale (GLMM)
    weights: np.ndarray | None
    response: Any = None  # GlmResponse of a GLMM, else None
    offset: np.ndarray | None = None  # link-scale offset of a GLMM (an LMM's is taken off y)

    @property
    def generalized(self) -> bool:
        return self.response is not None


def _group_terms(fit: MixedFit, group: str | None):
    names = list(dict.fromkeys(t.group for t in fit.terms))
    if group is None:
        first = fit.model.inputs.formula.random[0]
        group = next((g for g in names if g == first.group), names[0])
    if group not in names:
        raise ModelSpecError(f"grouping factor {group!r} is not in the model; choose one of {names}")
    return group, [t for t in fit.terms if t.group == group]


def build_layout(fit: MixedFit, group: str | None) -> Layout:
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
    design = np.column_stack([columns[n] for n in names])
    common = dict(
        group=group,
        levels=tuple(terms[0].levels),
        refs=terms[0].refs,
        terms=tuple(names),
        random_terms=tuple(random),
        design=design,
    )
    if is_glmm(fit):
        response = fit.family.response(inputs.y, inputs.weights, str(inputs.formula.response))
        return Layout(
            **common,
            y=np.asarray(response.y, dtype=float),
            weights=np.asarray(response.weights, dtype=float),
            response=response,
            offset=inputs.offset,
        )
    y = inputs.y - inputs.offset if inputs.offset is not None else inputs.y
    return Layout(**common, y=np.asarray(y, dtype=float), weights=inputs.weights)


def is_glmm(fit: Any) -> bool:
    """A fit with a family other than the Gaussian with identity link (a glmer fit)."""
    family = getattr(fit, "family", None)
    return family is not None and not (family.name == "gaussian" and family.link.name == "identity")


def shared_terms(layout: Layout) -> list[str]:
    """Fixed-effect columns outside the group's random terms: shared by all levels under no pooling."""
    return [t for t in layout.terms if t not in layout.random_terms]


def complete_pooling(fit: MixedFit, layout: Layout) -> LeastSquaresFit:
    inputs = fit.model.inputs
    return _least_squares(inputs.fixed.matrix, layout.y, list(inputs.fixed.column_names), layout.weights)


def level_rows(layout: Layout) -> list[np.ndarray]:
    """Row indices of every level, in level order (one pass over the data)."""
    order = np.argsort(layout.refs, kind="stable")
    counts = np.bincount(layout.refs, minlength=len(layout.levels))
    return np.split(order, np.cumsum(counts)[:-1])


def no_pooling_separate(layout: Layout) -> dict[str, LeastSquaresFit]:
    """One least-squares fit of all coefficient columns per level (R's lmList)."""
    fits = {}
    w = layout.weights
    for level, rows in zip(layout.levels, level_rows(layout)):
        fits[level] = _least_squares(
            layout.design[rows], layout.y[rows], list(layout.terms), None if w is None else w[rows]
        )
    return fits


def joint_name(group: str, level: str, term: str) -> str:
    """R's names in ``lm(y ~ 0 + g + g:x)``: ``Subject308``, ``Subject308:Days``."""
    return f"{group}{level}" if term == "(Intercept)" else f"{group}{level}:{term}"


def no_pooling_shared(layout: Layout) -> LeastSquaresFit:
    """One fit ``y ~ 0 + g + g:z + x``: the random-term columns z per level, the rest x shared.

    Solved by :func:`shared_least_squares` without forming the n x (levels * k) matrix.
    """
    sol = shared_least_squares(layout, layout.y, layout.weights)
    sigma = float(np.sqrt(sol.rss / sol.df_resid)) if sol.df_resid > 0 else np.nan
    return _fit_result(
        shared_names(layout),
        sol.coef,
        sigma * np.sqrt(sol.unscaled_var),
        sigma,
        sol.df_resid,
        sol.df_resid + sol.rank,
        sol.rank,
    )


def shared_names(layout: Layout) -> list[str]:
    """R's coefficient names of ``lm(y ~ 0 + g + g:z + x)``, in the joint fit's order."""
    per = [layout.terms.index(t) for t in layout.random_terms]
    shared = [j for j, t in enumerate(layout.terms) if t not in layout.random_terms]
    names = [joint_name(layout.group, level, layout.terms[c]) for level in layout.levels for c in per]
    return names + [layout.terms[c] for c in shared]


@dataclass(frozen=True)
class SharedSolution:
    """The joint least-squares fit of :func:`shared_least_squares`: coefficients (NaN if aliased),
    the diagonal of ``(X'WX)^-1``, rank, weighted RSS and residual df."""

    coef: np.ndarray
    unscaled_var: np.ndarray
    rank: int
    rss: float
    df_resid: int


def shared_least_squares(layout: Layout, y: np.ndarray, weights: np.ndarray | None) -> SharedSolution:
    """Weighted least squares of ``y`` on the per-level random-term columns and the shared columns.

    By Frisch-Waugh-Lovell: with ``M`` projecting each level's rows off its columns ``Z_j``, the
    shared ``beta`` is the least-squares fit of ``M y`` on ``M X``; then
    ``b_j = (Z_j'Z_j)^-1 Z_j'(y_j - X_j beta)`` with
    ``Var(b_j) = sigma^2 [(Z_j'Z_j)^-1 + A_j (X'MX)^-1 A_j']``, ``A_j = (Z_j'Z_j)^-1 Z_j'X_j``
    (all weighted by ``weights``).  Also each IRLS step of a GLM's joint no-pooling fit.
    """
    per = [layout.terms.index(t) for t in layout.random_terms]
    shared = [j for j, t in enumerate(layout.terms) if t not in layout.random_terms]
    sw = np.sqrt(weights) if weights is not None else np.ones(len(y))
    z, x, yw = layout.design[:, per] * sw[:, None], layout.design[:, shared] * sw[:, None], y * sw
    blocks = [(rows, lstsq(z[rows], yw[rows])) for rows in level_rows(layout)]
    xt = x.copy()
    yt = np.empty_like(yw)
    for rows, level in blocks:
        xt[rows] -= level.q @ (level.q.T @ x[rows])
        yt[rows] = level.resid
    common = lstsq(xt, yt, norms=np.linalg.norm(x, axis=0))
    beta, cov_x = common.coef[list(common.kept)], common.unscaled_cov
    rank = sum(level.rank for _, level in blocks) + common.rank
    k, size = len(per), len(blocks) * len(per) + len(shared)
    coef, var = np.full(size, np.nan), np.full(size, np.nan)
    for j, (rows, level) in enumerate(blocks):
        if level.rank:
            where = j * k + np.array(level.kept)
            coef[where], var[where] = _level_coef(level, x[rows][:, list(common.kept)], yw[rows], beta, cov_x)
    tail = len(blocks) * k + np.array(common.kept, dtype=int)
    coef[tail], var[tail] = beta, np.diag(cov_x)
    return SharedSolution(coef, var, rank, float(common.rss), int(np.count_nonzero(sw)) - rank)


def _level_coef(
    level: LeastSquares, xj: np.ndarray, yj: np.ndarray, beta: np.ndarray, cov_x: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A level's coefficients given the shared ones, and the diagonal of their unscaled covariance."""
    a = level.solve(xj)
    return level.solve(yj - xj @ beta), np.diag(level.unscaled_cov + a @ cov_x @ a.T)


def group_covariance(fit: MixedFit, group: str) -> pd.DataFrame:
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


def no_pooling_arrays(layout: Layout, no_fit) -> tuple[np.ndarray, np.ndarray]:
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


def complete_arrays(layout: Layout, complete: LeastSquaresFit) -> tuple[np.ndarray, np.ndarray]:
    """Complete-pooling estimates per term; a random-only term is absent (NaN)."""
    est = complete.coef.reindex(list(layout.terms)).to_numpy()
    se = complete.se.reindex(list(layout.terms)).to_numpy()
    return est, se


def partial_array(fit: MixedFit, layout: Layout) -> np.ndarray:
    coef = fit.coef()[layout.group]
    return coef.loc[list(layout.levels), list(layout.terms)].to_numpy(dtype=float)


def long_table(
    layout: Layout, counts: np.ndarray, estimates: dict[str, np.ndarray], ses: dict[str, np.ndarray], fixed: list[str]
) -> pd.DataFrame:
    """Long format, level by level, then approach, then term; complete pooling lists only the fixed terms."""
    terms = np.array(layout.terms, dtype=object)
    parts = []
    for a, approach in enumerate(APPROACHES):
        cols = np.flatnonzero(np.isin(terms, fixed)) if approach == "complete" else np.arange(len(terms))
        nlev, ncol = len(layout.levels), len(cols)
        parts.append(
            pd.DataFrame(
                {
                    "level": np.repeat(np.arange(nlev), ncol),
                    "order": a * len(terms) + np.tile(cols, nlev),
                    "approach": approach,
                    "term": np.tile(terms[cols], nlev),
                    "estimate": estimates[approach][:, cols].ravel(),
                    "se": ses[approach][:, cols].ravel(),
                }
            )
        )
    long = pd.concat(parts, ignore_index=True).sort_values(["level", "order"], kind="stable")
    levels = np.array(layout.levels, dtype=object)
    long.insert(0, "group", levels[long["level"].to_numpy()])
    long.insert(1, "n", counts[long["level"].to_numpy()].astype(int))
    table = long.drop(columns=["level", "order"]).reset_index(drop=True)
    table["term"] = table["term"].astype(str)
    table["group"] = table["group"].astype(str)
    return table


def shrinkage_factor(fit: MixedFit, layout: Layout, counts: np.ndarray) -> np.ndarray | None:
    """lambda_j = s_u^2 / (s_u^2 + s_e^2 / n_j) for a random-intercept-only grouping factor of an LMM.

    A GLMM has no such closed form (its shrinkage depends on each level's data): None.
    """
    if layout.random_terms != ("(Intercept)",) or layout.generalized:
        return None
    su2 = float(group_covariance(fit, layout.group).iloc[0, 0])
    return su2 / (su2 + fit.sigma**2 / counts)


def shrinkage_table(
    fit: MixedFit, layout: Layout, counts: np.ndarray, no_pool: np.ndarray, partial: np.ndarray
) -> pd.DataFrame:
    fixef = fit.fixef
    lam = shrinkage_factor(fit, layout, counts)
    frames = []
    for term in layout.random_terms:
        k = layout.terms.index(term)
        population = float(fixef.get(term, 0.0))
        toward = population - no_pool[:, k]
        with np.errstate(invalid="ignore", divide="ignore"):
            fraction = np.where(toward != 0, (partial[:, k] - no_pool[:, k]) / toward, np.nan)
        frame = pd.DataFrame(
            {
                "group": list(layout.levels),
                "n": counts.astype(int),
                "term": term,
                "no_pooling": no_pool[:, k],
                "partial_pooling": partial[:, k],
                "population": population,
                "shift": partial[:, k] - no_pool[:, k],
                "fraction": fraction,
            }
        )
        if lam is not None:
            frame["shrinkage_factor"] = lam
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


class Comparison(Protocol):
    """What the line choice, the level selection and the pictures read off a comparison (a PoolingComparison)."""

    @property
    def group(self) -> str: ...

    @property
    def levels(self) -> tuple[str, ...]: ...

    @property
    def terms(self) -> tuple[str, ...]: ...

    @property
    def random_terms(self) -> tuple[str, ...]: ...

    @property
    def partial_fit(self) -> MixedFit: ...

    @property
    def complete_fit(self) -> Any: ...

    @property
    def layout(self) -> Layout: ...

    @property
    def covariance(self) -> pd.DataFrame: ...

    @property
    def population(self) -> pd.Series: ...

    @property
    def no_pooling_note(self) -> str: ...

    @property
    def scale(self) -> str | None: ...

    def estimates(self, approach: str) -> pd.DataFrame: ...


# --------------------------------------------------------------------------
# choosing what to draw


def numeric_variables(fit: MixedFit, expr: str) -> list[str]:
    frame = fit.model.inputs.frame
    names = [v for v in sorted(required_variables(expr)) if v in frame.columns]
    return [v for v in names if pd.api.types.is_numeric_dtype(frame[v]) and not pd.api.types.is_bool_dtype(frame[v])]


def choose_x(cmp: Comparison, x: str | None) -> str | None:
    """The predictor along which lines are drawn, or None for an intercept-only model."""
    fit = cmp.partial_fit
    frame = fit.model.inputs.frame
    if x is not None:
        if x not in frame.columns or not pd.api.types.is_numeric_dtype(frame[x]):
            raise MixedModelsError(
                f"x={x!r} is not a numeric variable of the model; choose one of its numeric predictors"
            )
        return x
    parsed = fit.model.inputs.formula
    random = [v for t in parsed.random if t.group == cmp.group for v in numeric_variables(fit, t.expr)]
    candidates = list(dict.fromkeys(random)) or numeric_variables(fit, parsed.fixed)
    if len(candidates) > 1:
        raise MixedModelsError(f"the model has several numeric predictors {candidates}; choose one with x=")
    return candidates[0] if candidates else None


def select_levels(cmp: Comparison, groups) -> list[str]:
    if groups is None:
        return list(cmp.levels)
    chosen = [str(g) for g in ([groups] if isinstance(groups, str) else groups)]
    unknown = [g for g in chosen if g not in cmp.levels]
    if unknown:
        raise MixedModelsError(f"levels {unknown} are not levels of {cmp.group!r}; it has {len(cmp.levels)} levels")
    return chosen

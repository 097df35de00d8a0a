"""The result of ``mm.compare_pooling``: complete, no and partial pooling estimates side by side.

:class:`PoolingComparison` holds the three fits, the tidy tables and the
:class:`~.layout.Layout` of the data; its ``lines()`` are each approach's
fitted line per level over the range of a numeric predictor, and ``plot()`` /
``plot_shrinkage()`` draw it with :mod:`mixedmodels.plots`.  The tables and
fits are made in :mod:`.layout` (lmer) or :mod:`mixedmodels.bayes.pooling`.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import MixedModelsError
from ..fitted import MixedFit
from .layout import (
    APPROACHES,
    LeastSquaresFit,
    Layout,
    choose_x,
    complete_arrays,
    group_covariance,
    long_table,
    partial_array,
    select_levels,
    shrinkage_table,
)
from .._validate import Text, argument_kinds, check_arguments

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["assemble_comparison", "PoolingComparison"]


@dataclass(frozen=True, eq=False)
class PoolingComparison:
    """Complete, no and partial pooling estimates of one model, side by side.

    Made by :func:`~mixedmodels.pooling.compare.compare_pooling`; immutable (the tables are returned as copies).

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
        The fixed part alone by least squares (for a GLMM a
        :class:`~mixedmodels.pooling.generalized.GlmFit`, R's ``glm``).
    no_pooling_fit : dict of LeastSquaresFit, or LeastSquaresFit
        One fit per level (read-only mapping level -> fit), or with
        ``share_fixed=True`` the single joint fit (coefficients named as R
        names ``lm(y ~ 0 + g + g:x + ...)``: ``Subject308``, ``Subject308:Days``);
        GlmFits for a GLMM.
    partial_fit : LmerResults or GlmerResults
        The mixed model.  For a GLMM every estimate is on the link scale (``scale``).
    layout : Layout
        Where each data row sits: its level, the response (minus any offset)
        and the coefficient columns (what the pictures draw).
    """

    group: str
    terms: tuple[str, ...]
    random_terms: tuple[str, ...]
    share_fixed: bool
    complete_fit: LeastSquaresFit
    no_pooling_fit: Any
    partial_fit: MixedFit
    _table: pd.DataFrame
    _shrinkage: pd.DataFrame
    layout: Layout
    _separation: pd.DataFrame | None = None

    @property
    def separation(self) -> pd.DataFrame:
        """GLMMs: the levels whose no-pooling fit has no finite estimate (empty for LMMs and when none).

        One row per coefficient without a finite no-pooling estimate: ``group`` (the level, or
        ``"(all)"`` for a shared coefficient), ``term``, ``n`` and ``mean_response`` (the level's
        observations and their mean), ``estimate`` (-inf, +inf, or NaN where nothing is left to
        estimate it) and ``reason`` (see :mod:`mixedmodels.pooling.generalized`).
        """
        columns = ["group", "term", "n", "mean_response", "estimate", "reason"]
        return pd.DataFrame(columns=columns) if self._separation is None else self._separation.copy()

    @property
    def scale(self) -> str | None:
        """The scale of the estimates: None for a linear mixed model, else the link's name ("logit", "log")."""
        return self.partial_fit.family.link.name if self.layout.generalized else None

    @property
    def levels(self) -> tuple[str, ...]:
        """Levels of the grouping factor, in lme4's order."""
        return self.layout.levels

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
        return group_covariance(self.partial_fit, self.group)

    @property
    def population(self) -> pd.Series:
        """The population estimate of each pooled term: its fixed effect, 0 if it has none."""
        fixef = self.partial_fit.fixef
        return pd.Series([float(fixef.get(t, 0.0)) for t in self.random_terms], index=list(self.random_terms))

    @property
    def held_fixed(self) -> pd.Series:
        """The coefficients no pooling holds in common across levels (empty when it fits all per level).

        With ``share_fixed`` these are the fixed effects outside the group's random
        terms, estimated once from all the data (e.g. the ``Days`` slope of
        ``Reaction ~ Days + (1 | Subject)``), as partial pooling also holds them.
        """
        shared = [t for t in self.terms if t not in self.random_terms] if self.share_fixed else []
        no = self.estimates("no")
        return pd.Series([_first_finite(no[t]) for t in shared], index=shared, dtype=float, name="estimate")

    @property
    def no_pooling_note(self) -> str:
        """One line saying what no pooling estimated per level and what it held fixed (printed on the plots)."""
        pooled = ", ".join(self.random_terms)
        others = [t for t in self.terms if t not in self.random_terms]
        if not others:
            return f"no pooling: {pooled} estimated separately for each {self.group}"
        if self.share_fixed:
            held = ", ".join(f"{t} = {v:.4g}" for t, v in self.held_fixed.items())
            return (
                f"no pooling: {pooled} per {self.group}, with {held} held fixed (shared by all, as in partial pooling)"
            )
        return (
            f"no pooling: a separate regression per {self.group}, each with its own "
            f"{', '.join(others)} (share_fixed=False)"
        )

    @argument_kinds(approach=Text())
    def estimates(self, approach: str) -> pd.DataFrame:
        """One approach's coefficients as a levels x terms frame (like lme4's ``coef()``)."""
        check_arguments(locals())
        if approach not in APPROACHES:
            raise MixedModelsError(f"unknown approach {approach!r}; choose one of {list(APPROACHES)}")
        rows = self._table[self._table["approach"] == approach]
        wide = rows.pivot(index="group", columns="term", values="estimate")
        terms = [t for t in self.terms if t in wide.columns]
        wide = wide.reindex(index=list(self.levels), columns=terms)
        wide.index.name, wide.columns.name = self.group, None
        return wide

    @argument_kinds(x=Text(allow_none=True))
    def lines(self, x: str | None = None, npoints: int = 50, groups=None) -> pd.DataFrame:
        """Each approach's fitted line per level over the range of ``x``.

        ``x`` is a numeric predictor (default: the only one among the
        group's random-term variables, else the fixed part's).  Other
        variables are held at the level's first observed row.  Returns a tidy
        frame: ``group``, ``approach``, ``x`` (column named after the
        variable), ``fitted``; a line is NaN where its coefficients are.  For a GLMM
        ``fitted`` is on the response scale (a probability, a rate: ``g^-1`` of the
        linear predictor, with the level's first offset) and ``link`` is the linear predictor.
        """
        check_arguments(locals())
        return _fitted_lines(self, choose_x(self, x), npoints, groups)

    def plot(self, **kwargs) -> "Figure":
        """Per-level panels: data plus the three fitted lines (see :func:`mixedmodels.plots.pooling_lines`)."""
        from ..plots import pooling_lines  # upward: a convenience method (see tests/test_layering.py)

        return pooling_lines(self, **kwargs)

    def plot_shrinkage(self, **kwargs) -> "Figure":
        """Arrows from no- to partial-pooling estimates (see :func:`mixedmodels.plots.shrinkage`)."""
        from ..plots import shrinkage  # upward: a convenience method

        return shrinkage(self, **kwargs)

    def __repr__(self) -> str:
        return (
            f"<PoolingComparison {self.partial_fit.formula!r}: {len(self.levels)} levels of "
            f"{self.group!r}, terms {list(self.terms)}>"
        )


def _first_finite(values: pd.Series) -> float:
    finite = values[np.isfinite(values.to_numpy(dtype=float))]
    return float(finite.iloc[0]) if len(finite) else np.nan


# --------------------------------------------------------------------------
# fitted lines for plotting


def _rows(layout: Layout, level: int) -> np.ndarray:
    return np.flatnonzero(layout.refs == level)


def _level_design(cmp: PoolingComparison, level: int, x: str, grid: np.ndarray) -> np.ndarray:
    """The coefficient columns on a grid of ``x``, other variables at the level's first row."""
    fit, layout = cmp.partial_fit, cmp.layout
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
    layout = cmp.layout
    selected = select_levels(cmp, groups)
    values = cmp.partial_fit.model.inputs.frame[x].to_numpy(dtype=float)
    grid = np.linspace(values.min(), values.max(), npoints)
    coef = {a: cmp.estimates(a).reindex(columns=list(layout.terms)) for a in APPROACHES}
    coef["complete"] = coef["complete"].fillna(0.0)  # random-only terms are not in the fixed part
    frames = []
    for level in selected:
        j = layout.levels.index(level)
        design = _level_design(cmp, j, x, grid)
        for approach in APPROACHES:
            with np.errstate(invalid="ignore"):  # an infinite (separated) intercept times 0
                eta = design @ coef[approach].loc[level].to_numpy()
            frame = pd.DataFrame({"group": level, "approach": approach, x: grid, "fitted": eta})
            if layout.generalized:
                offset = 0.0 if layout.offset is None else float(layout.offset[_rows(layout, j)[0]])
                frame["link"] = eta + offset
                frame["fitted"] = cmp.partial_fit.family.link.inverse(frame["link"].to_numpy())
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def assemble_comparison(
    fit: MixedFit,
    layout: Layout,
    share_fixed: bool,
    complete: LeastSquaresFit,
    no_fit: Any,
    no_estimates: np.ndarray,
    no_se: np.ndarray,
    separation: pd.DataFrame | None = None,
) -> PoolingComparison:
    """The comparison from the three fits: complete pooling, no pooling (one fit with the shared
    terms, else a dict of per-level fits, with their coefficient arrays) and the mixed model."""
    counts = np.bincount(layout.refs, minlength=len(layout.levels))
    complete_estimates, complete_se = complete_arrays(layout, complete)
    partial = partial_array(fit, layout)
    nlev = len(layout.levels)
    estimates = {"complete": np.tile(complete_estimates, (nlev, 1)), "no": no_estimates, "partial": partial}
    ses = {"complete": np.tile(complete_se, (nlev, 1)), "no": no_se, "partial": np.full_like(partial, np.nan)}
    return PoolingComparison(
        group=layout.group,
        terms=layout.terms,
        random_terms=layout.random_terms,
        share_fixed=bool(share_fixed),
        complete_fit=complete,
        no_pooling_fit=no_fit if share_fixed else MappingProxyType(no_fit),
        partial_fit=fit,
        _table=long_table(layout, counts, estimates, ses, list(complete.coef.index)),
        _shrinkage=shrinkage_table(fit, layout, counts, no_estimates, partial),
        layout=layout,
        _separation=separation,
    )

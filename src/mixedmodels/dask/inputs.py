"""The model inputs of a fit on Dask: pass 1, the plan, the checks of X, and ``ModelInputs`` without rows.

:func:`plan_model` runs pass 1 and makes the :class:`~.plan.EncodingPlan`;
:func:`check_design` makes the in-memory checks of the whole X from pass 2's
:class:`~.crossprods.DesignFacts` (non-finite values, aliased columns,
predictor scales, the response's range); :func:`dask_inputs` assembles
:class:`DaskModelInputs`, the in-memory ``ModelInputs`` whose row-level
arrays are :class:`~.placeholders.RowsOnWorkers`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Mapping

import numpy as np

from ..design.checks import check_column_scales, independent_columns, keep_columns
from ..design.fixed import DesignMatrix
from ..design.random import RandomEffectsTerm
from ..errors import DataError, FormulaError, NotOnDaskError
from ..formula import ParsedFormula, parse_formula
from ..design.inputs import ModelInputs, check_na_action, expand_formula_dot
from .crossprods import DesignFacts, well_conditioned
from .metadata import DataSummary, PartSummary, summarize_partition, finish
from .placeholders import RowsOnWorkers
from .plan import EncodingPlan, encoding_plan, summary_spec
from .reduction import map_reduce
from .source import DataSource

__all__ = ["DaskModelInputs", "plan_model", "check_design", "dask_inputs", "parse_with_response", "refuse_na_exclude"]


@dataclass(frozen=True, eq=False)
class DaskModelInputs(ModelInputs):
    """``ModelInputs`` of a fit on Dask: the row-level arrays stay on the workers.

    ``frame``, ``y``, ``fixed.matrix``, each term's ``refs`` and ``z``, and the
    weights and offset are :class:`~.placeholders.RowsOnWorkers`.  Besides:

    Attributes
    ----------
    n : int
        Number of observations (complete rows).
    log_weights : float
        ``sum(log(w))`` over positive prior weights.
    plan : EncodingPlan
        How any partition builds its rows (for lazy fitted values, predictions, ...).
    keep_x : tuple of int
        The columns of ``plan.fixed`` kept after dropping aliased ones.
    source : DataSource
        The data and the weights and offset columns.
    response_summary : ndarray
        ``n``, ``sum y`` and ``sum y^2`` (``cbind``: sums of successes and of
        totals), to tell whether two fits saw the same response.
    fixed_gram : ndarray
        ``X'X`` of the kept fixed-effects columns over the complete rows
        (unweighted), from pass 2 (lmerTest's type I hypotheses read it).
    """

    n: int = 0
    log_weights: float = 0.0
    plan: EncodingPlan | None = None
    keep_x: tuple[int, ...] = ()
    source: DataSource | None = None
    response_summary: np.ndarray | None = None
    fixed_gram: np.ndarray | None = None

    @property
    def nobs(self) -> int:
        return self.n

    @property
    def sum_log_weights(self) -> float:
        return self.log_weights


def refuse_na_exclude(na_action: str) -> None:
    """``na_action="exclude"`` pads row outputs to every row of the data: not for lazy outputs on Dask."""
    if check_na_action(na_action) == "exclude":
        raise NotOnDaskError(
            "na_action='exclude' pads row-level results with NaN for the rows left out, which "
            "needs every row's label in memory; on Dask the lazy row-level results cover the rows "
            "used (na_action='omit'): join them back to the data with dask if needed"
        )


def parse_with_response(formula: str) -> ParsedFormula:
    parsed = parse_formula(formula)
    if parsed.response is None:
        raise FormulaError(f"formula {parsed.formula!r} has no response; write it as 'y ~ ...'")
    return parsed


def plan_model(
    parsed: ParsedFormula,
    source: DataSource,
    contrasts: Mapping[str, str] | None,
    allow_as_many_ranef_as_obs: bool = False,
) -> tuple[EncodingPlan, DataSummary]:
    """Pass 1 and the plan for pass 2 (R's ``.`` in the fixed part expanded from the data's columns, as in memory)."""
    parsed = expand_formula_dot(parsed, source.data_meta)
    spec = summary_spec(parsed, source.meta, source.weights, source.offset)
    columns = list(dict.fromkeys([*spec.frame_columns, *(c for c in (spec.weights, spec.offset) if c)]))
    total: PartSummary = map_reduce(source.partitions(columns), summarize_partition, spec, PartSummary.combine)
    summary = finish(total, spec)
    return encoding_plan(parsed, summary, spec, source.meta, contrasts, allow_as_many_ranef_as_obs), summary


def check_design(
    plan: EncodingPlan, facts: DesignFacts, exact_r: Callable[[], np.ndarray]
) -> tuple[list[int], DesignMatrix, tuple[str, ...]]:
    """The in-memory checks of the whole X: non-finite values, aliased columns (dropped, with lme4's warning), scales.

    Aliased columns are looked for only when ``X'X`` is not well conditioned:
    then ``exact_r()`` (one more pass) gives the R of a QR of X, on which
    lme4's rule decides as on X itself.  Returns the kept columns' indices,
    the design with only them, and the dropped columns' names.
    """
    names = plan.fixed.column_names
    if facts.nonfinite_rows:
        bad = [names[j] for j in np.flatnonzero(facts.nonfinite)]
        raise DataError(
            f"the fixed-effects column(s) {', '.join(bad)} have non-finite values (NaN or infinite) in "
            f"{facts.nonfinite_rows} rows; check transformations such as log() of zero or negative values"
        )
    if facts.offset_nonfinite:
        raise DataError("the offset has non-finite values (NaN or infinite)")  # a formula offset() of finite data
    if not names:
        keep = []
    elif well_conditioned(facts.gram):
        keep = list(range(len(names)))
    else:
        keep = independent_columns(exact_r())
    design, dropped = keep_columns(plan.fixed, keep, stacklevel=4)
    if facts.n >= 2:
        check_column_scales(design.column_names, facts.sd[keep], facts.binary[keep], stacklevel=4)
    return keep, design, dropped


def dask_inputs(
    plan: EncodingPlan,
    summary: DataSummary,
    source: DataSource,
    keep: list[int],
    design: DesignMatrix,
    dropped: tuple[str, ...],
    facts: DesignFacts,
) -> DaskModelInputs:
    """``ModelInputs`` for the fit, with placeholders for every row-level array."""
    n = plan.nobs
    has_offset = plan.fixed.offset is not None or plan.offset is not None
    fixed = replace(
        design,
        matrix=RowsOnWorkers("the fixed-effects model matrix", (n, len(keep))),
        offset=RowsOnWorkers("the formula's offset", (n,)) if design.offset is not None else None,
    )
    return DaskModelInputs(
        formula=plan.parsed,
        frame=RowsOnWorkers("the model frame", (n, len(plan.frame_columns))),
        row_index=RowsOnWorkers("the labels of the rows used", (n,)),
        n_dropped=summary.n_dropped,
        y=RowsOnWorkers("the response", (n, 2) if plan.response_ndim == 2 else (n,)),
        fixed=fixed,
        dropped_columns=dropped,
        terms=tuple(_term(t, n) for t in plan.terms),
        weights=RowsOnWorkers("the prior weights", (n,)) if plan.weights is not None else None,
        offset=RowsOnWorkers("the offset", (n,)) if has_offset else None,
        n=n,
        log_weights=summary.log_weights,
        plan=plan,
        keep_x=tuple(int(j) for j in keep),
        source=source,
        response_summary=np.concatenate([[n], facts.y_sums]),
        fixed_gram=facts.gram[np.ix_(keep, keep)],
    )


def _term(plan, n: int) -> RandomEffectsTerm:
    k = plan.ncols
    design = replace(plan.design, matrix=RowsOnWorkers(f"the columns of {plan.term}", (n, k)))
    return RandomEffectsTerm(
        group=plan.term.group,
        factors=plan.term.factors,
        levels=plan.levels,
        refs=RowsOnWorkers(f"the levels of {plan.term.group!r} per row", (n,)),
        z=RowsOnWorkers(f"the columns of {plan.term}", (n, k)),
        design=design,
        expr=plan.term.expr,
        structure=plan.structure,
    )

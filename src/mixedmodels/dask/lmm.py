"""``lmer`` on Dask: two passes over the data, then the in-memory optimizer on the summed blocks.

Pass 1 (:func:`~.inputs.plan_model`) learns levels, transform states and the
rows to drop; pass 2 sums each partition's cross-products
(:func:`~.crossprods.pass2_partition`) in a tree on the workers.  From there
on the fit is the in-memory one: :class:`DaskLinearMixedModel` is a
:class:`~mixedmodels.lmm.model.LinearMixedModel` whose blocks came from Dask, and
its results are :class:`~.results.DaskLmerResults`.

Satterthwaite's derivatives need the penalized residual sum of squares at
many theta values more accurately than the Cholesky factor's corner gives it
(see :func:`mixedmodels.inference.ddf`).  :meth:`DaskLinearMixedModel.penalized_rss`
gets it from one more pass: the products of the residuals ``r0`` at one
solution ``s0`` with every column; at another theta with solution ``s``,

    |y - M s|^2 = |r0|^2 - 2 d'M'r0 + d'M'M d,   d = s - s0,

where every term is small near ``s0``, so no large ``y'y`` cancels.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from .._validate import Anything, Duck, FitData, Instance, OneOf, Text, argument_kinds, check_arguments, check_bool
from ..errors import DataError, ModelSpecError, NotOnDaskError
from ..lmm.model import LinearMixedModel, start_theta
from ..optim import OptimizerSettings
from .crossprods import (
    Pass2,
    ResponseRow,
    assemble,
    combine_pass2,
    pass2_partition,
    qr_pass,
    response_row,
    sum_pass2,
)
from .encode import encode_partition
from .fused import fused_pass
from .inputs import DaskModelInputs, check_design, dask_inputs, parse_with_response, plan_model, refuse_na_exclude
from .pieces import summed_in_pieces, wide_first_to_rest
from .reduction import map_reduce
from .source import DataSource

__all__ = ["DaskLinearMixedModel", "lmer"]


@dataclass(frozen=True, eq=False)
class DaskLinearMixedModel(LinearMixedModel):
    """A linear mixed model whose blocks were summed over the partitions of a dask DataFrame.

    Everything that works on the blocks (the objective, the fit, the
    results' fixed effects, variance components, random effects and
    Satterthwaite df) is the in-memory code; row-level outputs are lazy.
    """

    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dask(
        cls,
        formula: str,
        data: Any,
        *,
        REML: bool = True,
        weights: Any = None,
        offset: Any = None,
        contrasts: Mapping[str, str] | None = None,
    ) -> "DaskLinearMixedModel":
        """Build the model from a dask DataFrame (or Parquet path) in two passes, or one (see :mod:`.fused`)."""
        REML = check_bool(REML, "REML")
        parsed = parse_with_response(formula)
        source = DataSource.make(data, weights, offset)
        fused = fused_pass(parsed, source, contrasts)
        if fused is not None:  # pass 1 folded into pass 2 (see .fused)
            plan, summary, total, seconds, passes = fused.plan, fused.summary, fused.total, fused.seconds, fused.passes
        else:
            plan, summary, total, seconds = _two_passes(parsed, source, contrasts)
            passes = 2
        pass2 = time.perf_counter()
        keep, design, dropped = check_design(plan, total.facts, lambda: qr_pass(source, plan))
        if total.facts.y_min == total.facts.y_max:
            raise DataError(f"the response {parsed.response!r} is constant; there is no variation to model")
        inputs = dask_inputs(plan, summary, source, keep, design, dropped, total.facts)
        n = total.blocks.nobs  # rows with non-zero weight
        if n <= len(keep):
            zero = "" if n == inputs.nobs else " with non-zero weight"
            raise ModelSpecError(
                f"{n} observations{zero} cannot estimate {len(keep)} fixed effects and a residual variance"
            )
        nlevels = tuple(t.nlevels for t in plan.terms)
        crossprods = assemble(
            total.blocks,
            keep,
            nlevels,
            tuple(t.ncols for t in plan.terms),
            structures=tuple(t.structure for t in plan.terms),
        )
        seconds = seconds | {"blocks": time.perf_counter() - pass2}
        return cls(inputs, crossprods, bool(REML), _cache={"seconds": seconds, "build passes": passes})

    @property
    def seconds(self) -> dict[str, float]:
        """Wall-clock seconds of pass 1, pass 2 and the assembly of the summed blocks (with pass 1
        folded into pass 2: no ``"pass 1"``, and ``"ranges"`` for the reduction over integer ids, if made)."""
        return dict(self._cache.get("seconds", {}))

    def hypothesis_columns(self):
        """The rows as lmerTest's F tests per term read them (:mod:`.hypotheses`: one pass for type III)."""
        from .hypotheses import DaskColumns

        def counted() -> None:
            self._cache["hypothesis passes"] = self._cache.get("hypothesis passes", 0) + 1

        return DaskColumns(self.inputs, counted)

    @property
    def data_passes(self) -> int:
        """Passes over the data so far (2 to build the model, or 1 when pass 1 is folded into pass 2, plus the
        reduction over integer ids' ranges if made; 1 more for Satterthwaite's residuals, 1 per type III anova)."""
        return (
            self._cache.get("build passes", 2) + int("centre" in self._cache) + self._cache.get("hypothesis passes", 0)
        )

    def fit(self, settings: OptimizerSettings | None = None, start: np.ndarray | None = None):
        from .results import as_dask_results

        return as_dask_results(super().fit(settings=settings, start=start))

    def results_at(self, theta: np.ndarray):
        from .results import as_dask_results

        return as_dask_results(super().results_at(theta))

    # --- Satterthwaite's accurate penalized residual sum of squares -----------------------
    def penalized_rss(self, factor) -> float:
        """``sum w r^2 + |u|^2`` at the factor's theta, centred on the first solution asked for (one pass)."""
        beta, spherical = factor.solve()
        solution = self._stacked_solution(factor.theta, beta, spherical)
        if "centre" not in self._cache:
            self._cache["centre"] = (solution, self._residual_row(factor.theta, beta, spherical))
        centre, row = self._cache["centre"]
        d = solution - centre
        cp = self.crossprods
        q1k1 = cp.first.size
        d1, d_rest = d[:q1k1], d[q1k1:]
        a11 = cp.a11
        quad = float(np.einsum("qi,qij,qj->", d1.reshape(-1, cp.first.ncols), a11, d1.reshape(-1, cp.first.ncols)))
        cross = float(d_rest @ np.asarray(cp.a21 @ d1).ravel()[:-1])  # no a21[:-1]: a sparse slice is a copy
        rest = float(d_rest @ cp.a22[:-1, :-1] @ d_rest)
        linear = float(d @ row)
        rr = self._cache["rr"]
        return rr - 2.0 * linear + quad + 2.0 * cross + rest + sum(float(np.sum(u * u)) for u in spherical)

    def _stacked_solution(self, theta: np.ndarray, beta: np.ndarray, spherical: list[np.ndarray]) -> np.ndarray:
        """``(b_1, b_rest, beta)`` in the units of the scaled columns of the blocks."""
        layouts = self.crossprods.terms
        parts = [(u @ lay.scaled_lam(theta).T).ravel() for u, lay in zip(spherical, layouts)]
        return np.concatenate(parts + [beta])

    def _residual_row(self, theta: np.ndarray, beta: np.ndarray, spherical: list[np.ndarray]) -> np.ndarray:
        """``M'r0`` in the scaled units (one pass), keeping ``r0'r0`` in the cache."""
        layouts = self.crossprods.terms
        modes = tuple(u @ lay.lam(theta).T for u, lay in zip(spherical, layouts))
        inputs: DaskModelInputs = self.inputs
        job = _ResidualJob(inputs.plan, inputs.keep_x, np.asarray(beta, dtype=float), modes)
        total: ResponseRow = map_reduce(
            inputs.source.partitions(inputs.plan.read_columns), _residual_partition, job, ResponseRow.__add__
        )
        self._cache["rr"] = total.rr
        scales = [np.tile(lay.scales, lay.nlevels) for lay in layouts]
        z_rest = [total.rest] if len(layouts) > 1 else []
        return np.concatenate([total.z1 / scales[0], *(r / np.concatenate(scales[1:]) for r in z_rest), total.x])


def _two_passes(parsed, source: DataSource, contrasts) -> tuple:
    """Pass 1 (levels, transform states, missing rows), then pass 2 (cross-products): plan, summary, total, seconds."""
    started = time.perf_counter()
    plan, summary = plan_model(parsed, source, contrasts)
    pass1 = time.perf_counter()
    if plan.response_ndim != 1:
        raise DataError(
            f"the response {parsed.response!r} must be a single numeric column for lmer; "
            "cbind() responses are for binomial glmer"
        )
    total: Pass2 = map_reduce(
        source.partitions(plan.read_columns),
        pass2_partition,
        plan,
        combine_pass2,
        combine_many=sum_pass2,
        root=functools.partial(summed_in_pieces, combine_many=sum_pass2) if wide_first_to_rest(plan) else None,
    )
    return plan, summary, total, {"pass 1": pass1 - started, "pass 2": time.perf_counter() - pass1}


@dataclass(frozen=True)
class _ResidualJob:
    plan: Any
    keep_x: tuple[int, ...]
    beta: np.ndarray
    modes: tuple[np.ndarray, ...]


def _residual_partition(frame, job: _ResidualJob) -> ResponseRow:
    """One partition's products of the residuals at the centre with every column (rows times sqrt(w))."""
    part = encode_partition(frame, job.plan)
    x = part.x[:, list(job.keep_x)]
    y = part.response()
    eta = x @ job.beta
    for refs, z, modes in zip(part.refs, part.zs, job.modes):
        eta = eta + np.einsum("ij,ij->i", z, modes[refs]) if len(refs) else eta
    r = y - eta
    zs = part.zs
    if part.weights is not None:
        root = np.sqrt(part.weights)
        r, x, zs = r * root, x * root[:, None], tuple(z * root[:, None] for z in zs)
    nlevels = tuple(t.nlevels for t in job.plan.terms)
    return response_row(part.refs, zs, nlevels, x, r)


# What the Dask fits take that differs from the in-memory ones: the data's source, and weights and
# offset as column names (or dask Series lined up with the data).
DASK_DATA = FitData()
COLUMN = OneOf(
    Text(),
    Duck("npartitions", "compute", what="a dask Series"),
    allow_none=True,
    what="the name of a column of the data (or a dask Series lined up with it)",
)
COLUMN.error = DataError
SETTINGS = Instance(OptimizerSettings, what="an OptimizerSettings", allow_none=True)


@argument_kinds(
    data=DASK_DATA,
    weights=COLUMN,
    offset=COLUMN,
    settings=SETTINGS,
    correlation=Anything("any value but None is refused: residual structures are not available on Dask"),
)
def lmer(
    formula: str,
    data: Any,
    *,
    REML: bool = True,
    weights: Any = None,
    offset: Any = None,
    contrasts: Mapping[str, str] | None = None,
    settings: OptimizerSettings | None = None,
    start: Any = None,
    na_action: str = "omit",
    correlation: Any = None,
):
    """Fit a linear mixed model to a dask DataFrame, or to Parquet files read with dask.

    The same arguments and answers as :func:`mixedmodels.lmer`, except that
    ``weights`` and ``offset`` are column names (or dask Series lined up with
    ``data``), and ``na_action="exclude"`` is refused (row-level results are
    lazy and cover the rows used).  The rows never come to the client: two
    passes (levels and transform states; then the cross-products, summed on
    the workers) build the model, and the optimizer runs on the summed
    blocks.  Uses the active dask scheduler (a ``distributed.Client`` if one was made).

    Returns
    -------
    DaskLmerResults
        An ``LmerResults`` whose fitted values, residuals, predictions and
        simulations are lazy dask collections.
    """
    _refuse_residual_structure(weights, correlation)
    check_arguments(locals())
    refuse_na_exclude(na_action)
    model = DaskLinearMixedModel.from_dask(
        formula, data, REML=REML, weights=weights, offset=offset, contrasts=contrasts
    )
    return model.fit(settings=settings, start=None if start is None else model.check_theta(start_theta(start)))


def _refuse_residual_structure(weights: Any, correlation: Any) -> None:
    """Residual variance functions and correlations need the rows in order, in one process."""
    from ..design.residual import VarIdent

    if correlation is not None or isinstance(weights, VarIdent):
        what = "correlation=" if correlation is not None else "weights=var_ident()"
        raise NotOnDaskError(
            f"{what} (a residual structure) is not available on Dask: its blocks are not sums over "
            "rows; fit the model to a pandas DataFrame"
        )

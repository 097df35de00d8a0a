"""``glmer`` on Dask: the encoded partitions persisted on the workers, one pass per PIRLS step.

Pass 1 and the plan are lmer's (:func:`~.inputs.plan_model`, with glmer's
rule on the number of random effects).  Each partition is then encoded once
(level codes, z, X, y, offset, weights) and persisted on the workers; one
pass over them gives the in-memory checks of X (aliased columns, scales),
the columns' scales and whether any binomial total exceeds one; the
partitions are then kept as :class:`~.pirls.GlmPartition` (z divided by the
scales, only the kept columns of X, the validated response, ``eta0``).

:class:`DaskGeneralizedLinearMixedModel` is the in-memory
:class:`~mixedmodels.glmm.model.GeneralizedLinearMixedModel` with
:class:`~.pirls.DaskPirls` as its PIRLS, so lme4's two optimization stages,
the Newton polish and the finite-difference Hessian of the in-memory fit run
unchanged; every PIRLS step is one pass (counted in ``data_passes`` and shown
on a progress bar).  Families: binomial and Poisson (those whose
log-likelihood is the deviance plus a constant of the data).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, partial
from typing import Any, ClassVar, Mapping

import numpy as np

from ..design.residual import VarIdent
from ..errors import DataError, ModelSpecError, NotOnDaskError
from ..families import Family, GlmResponse, get_family
from ..glmm.model import GeneralizedLinearMixedModel, hands_over_to_lmer
from ..glmm.results import GlmerResults
from ..glmm.summary import GlmerSummary
from ..linalg.blocked import TermLayout
from ..optim import OptimizerSettings
from .._validate import Flag, argument_kinds, check_arguments
from .crossprods import DesignFacts, qr_r, stack_qr
from .encode import EncodedPartition, encode_partition
from .inputs import check_design, dask_inputs, parse_with_response, plan_model, refuse_na_exclude
from . import lazy
from .pirls import DaskPirls, GlmPartition, PirlsResult
from .reduction import map_reduce
from .results import LazyRows, as_dask_results, dask_quantiles
from .lmm import COLUMN, DASK_DATA, SETTINGS
from .source import DataSource

__all__ = ["DaskGeneralizedLinearMixedModel", "DaskGlmerResults", "DaskGlmerSummary", "glmer"]

_FAMILIES = ("binomial", "poisson")


@dataclass(frozen=True, eq=False)
class ResponseFacts:
    """What the GLMM needs of its response beyond the partitions: the family and ``-2 log L - deviance``."""

    family: Family
    constant: float


@dataclass(frozen=True, eq=False)
class _Layouts:
    """The terms' layouts with the scales of their unweighted columns (what ``ReweightedBlocks`` offers)."""

    layouts: tuple[TermLayout, ...]


@dataclass(frozen=True, eq=False)
class _GlmFacts:
    """The facts pass: X and y checks, each term's column sums of squares, any binomial total above one."""

    design: DesignFacts
    squares: tuple[np.ndarray, ...]
    many_trials: bool

    def combine(self, other: "_GlmFacts") -> "_GlmFacts":
        return _GlmFacts(
            self.design.combine(other.design),
            tuple(a + b for a, b in zip(self.squares, other.squares)),
            self.many_trials or other.many_trials,
        )


def _facts(part: EncodedPartition) -> _GlmFacts:
    many = bool(part.y.ndim == 2 and np.any(part.y.sum(axis=1) > 1))
    return _GlmFacts(DesignFacts.of(part), tuple((z * z).sum(axis=0) for z in part.zs), many)


@dataclass(frozen=True, eq=False)
class _Finish:
    keep: tuple[int, ...]
    scales: tuple[np.ndarray, ...]
    family: Family
    name: str
    many_trials: bool


def _glm_partition(part: EncodedPartition, finish: _Finish) -> GlmPartition:
    """The persisted form of a partition: scaled z, kept X, validated response, ``eta0``."""
    response = finish.family.response(part.y, part.weights, finish.name)
    if part.y.ndim == 2 and bool(np.any(part.y.sum(axis=1) > 1)) != finish.many_trials:
        trials = part.y.sum(axis=1) if finish.many_trials else response.weights
        response = GlmResponse.make(finish.family, response.y, response.weights, trials)
    offset = part.offset if part.offset is not None else np.zeros(part.nobs)
    eta0 = finish.family.link.link(response.mustart()) if part.nobs else np.zeros(0)
    zs = tuple(np.ascontiguousarray(z / s) for z, s in zip(part.zs, finish.scales))
    return GlmPartition(part.refs, zs, np.ascontiguousarray(part.x[:, list(finish.keep)]), offset, response, eta0)


@dataclass(frozen=True)
class _ResponseSums:
    """The response over the rows with weight: ``-2 log L - deviance``, how many, smallest and largest value."""

    constant: float
    weighted: int
    low: float
    high: float

    def combine(self, other: "_ResponseSums") -> "_ResponseSums":
        return _ResponseSums(
            self.constant + other.constant,
            self.weighted + other.weighted,
            min(self.low, other.low),
            max(self.high, other.high),
        )


def _response_sums(part: GlmPartition, _: Any) -> _ResponseSums:
    if part.nobs == 0:
        return _ResponseSums(0.0, 0, np.inf, -np.inf)
    values = part.response.y[part.response.weights > 0]
    low, high = (float(values.min()), float(values.max())) if values.size else (np.inf, -np.inf)
    return _ResponseSums(float(part.response.constant), int(values.size), low, high)


def _check_response(sums: _ResponseSums, family: Family, name: str, nobs: int, p: int) -> None:
    """The in-memory checks of a GLMM's response: not constant, more weighted rows than fixed effects."""
    if sums.weighted and sums.low == sums.high:
        what = "proportion of successes" if family.name == "binomial" else "value"
        raise DataError(
            f"the response {name!r} is constant (every {what} is {sums.low:g}): there is no variation "
            "for a GLMM to model (lme4 refuses it too: 'Response is constant'); check the response "
            "column and the rows kept"
        )
    if sums.weighted <= p:
        zero = "" if sums.weighted == nobs else " with non-zero weight"
        raise ModelSpecError(f"{sums.weighted} observations{zero} cannot estimate {p} fixed effects")


@dataclass(frozen=True, eq=False)
class DaskGeneralizedLinearMixedModel(GeneralizedLinearMixedModel):
    """A GLMM whose PIRLS steps are passes over partitions persisted on the workers (see the module docstring)."""

    parts: tuple = ()
    progress: bool | None = None
    rows_in_memory: ClassVar[bool] = False  # no row-level work (e.g. the Laplace gradient's columns) in the optimizer

    @classmethod
    def from_dask(
        cls,
        formula: str,
        data: Any,
        family: Any = "binomial",
        *,
        weights: Any = None,
        offset: Any = None,
        contrasts: Mapping[str, str] | None = None,
        progress: bool | None = None,
    ) -> "DaskGeneralizedLinearMixedModel":
        """Encode and persist the partitions and check the design (see :func:`glmer`)."""
        import dask

        fam = get_family(family)
        if fam.name not in _FAMILIES:
            raise NotOnDaskError(
                f"glmer on Dask fits the binomial and Poisson families; the {fam.name} family's "
                "likelihood needs a dispersion from all rows at once: fit it in memory"
            )
        parsed = parse_with_response(formula)
        source = DataSource.make(data, weights, offset)
        plan, summary = plan_model(parsed, source, contrasts, allow_as_many_ranef_as_obs=True)
        encoded = dask.persist(
            *[dask.delayed(encode_partition, pure=False)(part, plan) for part in source.partitions(plan.read_columns)]
        )
        facts: _GlmFacts = map_reduce(list(encoded), _glm_facts_partition, None, _GlmFacts.combine)
        keep, design, dropped = check_design(plan, facts.design, partial(_exact_r, list(encoded)))
        inputs = dask_inputs(plan, summary, source, keep, design, dropped, facts.design)
        layouts = _layouts(plan, facts.squares, inputs.nobs)
        finish = _Finish(tuple(keep), tuple(lay.scales for lay in layouts), fam, parsed.response, facts.many_trials)
        parts = dask.persist(*[dask.delayed(_glm_partition, pure=False)(part, finish) for part in encoded])
        del encoded
        sums: _ResponseSums = map_reduce(list(parts), _response_sums, None, _ResponseSums.combine)
        _check_response(sums, fam, parsed.response, inputs.nobs, len(keep))
        return cls(inputs, ResponseFacts(fam, sums.constant), _Layouts(layouts), parts=tuple(parts), progress=progress)

    # --- what differs from the in-memory model ----------------------------------------------
    @cached_property
    def pirls(self) -> DaskPirls:
        return DaskPirls(list(self.parts), self.plan.layouts, self.family, self.nfixef, progress=self._progress_bar())

    def _progress_bar(self):
        from tqdm.auto import tqdm

        return tqdm(
            desc="glmer on Dask: data passes",
            unit=" pass",
            disable=None if self.progress is None else not self.progress,
            leave=False,
        )

    @property
    def data_passes(self) -> int:
        """Passes over the data so far: pass 1, encoding, the checks, one per PIRLS step."""
        return 4 + self.pirls.passes

    def eta_start(self) -> Any:
        """A marker: the partitions start from their own ``g(mustart)``."""
        return True

    def laplace_value(self, res: PirlsResult) -> float:
        """``-2 log L`` by the Laplace approximation: deviance + the data's constant + ``|u|^2 + log|L|^2``."""
        if not (np.isfinite(res.dev) and res.factor.ok):
            return np.inf
        return res.dev + self.response.constant + res.ussq + res.factor.logdet_re()

    def agq_value(self, res, theta, beta, nAGQ):  # pragma: no cover - refused by check_nagq
        raise NotOnDaskError(
            "adaptive Gauss-Hermite quadrature (nAGQ > 1) is not available on Dask; use nAGQ=1 (Laplace)"
        )

    def check_nagq(self, nAGQ: int) -> int:
        nAGQ = super().check_nagq(nAGQ)
        if nAGQ > 1:
            raise NotOnDaskError(
                "adaptive Gauss-Hermite quadrature (nAGQ > 1) is not available on Dask yet; "
                "use nAGQ=1 (Laplace), or fit the data in memory"
            )
        return nAGQ

    def fit(self, nAGQ: int = 1, settings: OptimizerSettings | None = None, start: Any = None) -> "DaskGlmerResults":
        try:
            result = super().fit(nAGQ=nAGQ, settings=settings, start=start)
        finally:
            if self.pirls.progress is not None:
                self.pirls.progress.close()
        return as_dask_results(result, DaskGlmerResults, deviance_value=float(self.pirls.last_dev))


def _glm_facts_partition(part: EncodedPartition, _: Any) -> _GlmFacts:
    return _facts(part)


def _qr_encoded(part: EncodedPartition, _: Any) -> np.ndarray:
    return qr_r(part)


def _exact_r(parts: list) -> np.ndarray:
    """The R of a QR of X over the persisted partitions (for a nearly rank-deficient X)."""
    return map_reduce(parts, _qr_encoded, None, stack_qr)


def _layouts(plan, squares: tuple[np.ndarray, ...], nobs: int) -> tuple[TermLayout, ...]:
    """The terms' layouts with the scales of the unweighted columns (1 for all-zero ones) as each structure takes them.

    As in memory (:func:`~mixedmodels.linalg.blocked.term_layouts`): the
    root-mean-square of each column, one common scale for an ``ar1`` term.
    """
    out, start = [], 0
    for term, sq in zip(plan.terms, squares):
        rms = np.sqrt(np.asarray(sq, dtype=float) / nobs)
        scales = term.structure.column_scales(np.where(rms > 0, rms, 1.0))
        out.append(TermLayout(term.nlevels, term.ncols, start, scales, term.structure))
        start = out[-1].theta_stop
    return tuple(out)


# --------------------------------------------------------------------------- results
class DaskGlmerSummary(GlmerSummary):
    """The glmer summary of a fit on Dask (approximate residual quantiles, as :class:`DaskLmerSummary`)."""

    def residual_quantiles(self) -> tuple[np.ndarray, bool]:
        return dask_quantiles(self)


@dataclass(frozen=True, eq=False)
class DaskGlmerResults(LazyRows, GlmerResults):
    """A generalized linear mixed model fitted on Dask (see the module docstring)."""

    deviance_value: float = np.nan

    @property
    def linear_predictor(self):
        """``eta = X beta + Z b + offset``, a lazy dask Series."""
        return lazy.linear_predictor(self)

    @property
    def deviance(self) -> float:
        """lme4's ``deviance()``: the sum of squared deviance residuals at the modes (summed on the workers)."""
        return self.deviance_value

    def residuals(self, type: str = "deviance", scaled: bool = False):
        """Residuals as R's (deviance, pearson, working, response), a lazy dask Series."""
        check_arguments(locals())
        return lazy.residuals(self, type=type, scaled=scaled)

    def summary(self, ddf: str | None = None) -> DaskGlmerSummary:
        check_arguments(locals())
        super().summary(ddf)  # refuses ddf as in memory
        return DaskGlmerSummary(self)

    def __repr__(self) -> str:
        return super().__repr__().replace("<GlmerResults", "<DaskGlmerResults", 1)


@argument_kinds(data=DASK_DATA, weights=COLUMN, offset=COLUMN, settings=SETTINGS, progress=Flag(allow_none=True))
def glmer(
    formula: str,
    data: Any,
    family: Any = "binomial",
    *,
    nAGQ: int = 1,
    weights: Any = None,
    offset: Any = None,
    contrasts: Mapping[str, str] | None = None,
    settings: OptimizerSettings | None = None,
    start: Any = None,
    na_action: str = "omit",
    progress: bool | None = None,
):
    """Fit a GLMM to a dask DataFrame, or to Parquet files read with dask.

    The same arguments and answers as :func:`mixedmodels.glmer` (binomial and
    Poisson families, nAGQ 0 or 1), with ``weights`` and ``offset`` as column
    names; ``na_action="exclude"`` is refused (see :func:`.lmm.lmer`).  Each
    PIRLS step is one pass over the partitions, which are encoded once and
    persisted on the workers; ``progress`` shows the passes (default: when
    the output is a terminal).

    Returns
    -------
    DaskGlmerResults
    """
    fam = get_family(family)
    if hands_over_to_lmer(fam):
        from .lmm import lmer

        return lmer(
            formula, data, weights=weights, offset=offset, contrasts=contrasts, start=start, na_action=na_action
        )
    refuse_na_exclude(na_action)
    if isinstance(weights, VarIdent):  # DataError, as in memory: glmer has no residual structures anywhere
        raise DataError(
            "weights=var_ident() is a residual structure, which only lmer() takes; glmer()'s weights are "
            "prior weights (on Dask: a column name)"
        )
    check_arguments(locals())
    model = DaskGeneralizedLinearMixedModel.from_dask(
        formula, data, fam, weights=weights, offset=offset, contrasts=contrasts, progress=progress
    )
    return model.fit(nAGQ=nAGQ, settings=settings, start=start)

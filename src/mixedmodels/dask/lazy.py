"""Row-level outputs of a fit on Dask as lazy dask collections: fitted values, residuals, predictions, simulations.

Each is one ``map_partitions`` over the data: a partition rebuilds its rows
of X, Z and y with the fit's :class:`~.plan.EncodingPlan` (so its rows are
exactly the fitted ones, with their own row labels) and applies the
estimates, which enter the graph once (:class:`RowModel`).  Nothing is
computed until the caller asks (``.compute()``, ``.to_parquet()``, ...).

Predictions for new data go through the in-memory
:func:`mixedmodels.predict.predict` on each partition, with the fit's
transform state, levels and conditional modes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from ..errors import MixedModelsError, NotOnDaskError
from ..predict import predict as predict_rows
from ..predict import select_terms
from ..design.tables import is_dask_collection
from .encode import EncodedPartition, encode_partition
from .plan import EncodingPlan
from .reduction import shared

__all__ = ["RowModel", "fitted", "linear_predictor", "residuals", "predict", "simulate"]

_GLMM_RESIDUALS = ("deviance", "pearson", "working", "response")


@dataclass(frozen=True, eq=False)
class RowModel:
    """What a partition needs for row-level values of a fit: the plan and the estimates.

    ``modes``: each term's conditional modes (levels x columns, block order);
    ``family``: None for a linear mixed model; ``columns``: for each term,
    the columns whose random effects enter (all by default).
    """

    plan: EncodingPlan
    keep_x: tuple[int, ...]
    beta: np.ndarray
    modes: tuple[np.ndarray, ...]
    sigma: float
    family: Any = None
    columns: tuple[tuple[int, ...], ...] | None = None

    @classmethod
    def of(cls, result: Any) -> "RowModel":
        inputs = result.model.inputs
        return cls(
            inputs.plan,
            inputs.keep_x,
            np.asarray(result.beta, dtype=float),
            tuple(np.asarray(m) for m in result.conditional_modes),
            float(result.sigma),
            getattr(result, "family", None),
        )

    def eta(self, part: EncodedPartition) -> np.ndarray:
        """The linear predictor of a partition's rows (with the selected random effects)."""
        eta = part.x[:, list(self.keep_x)] @ self.beta
        if part.offset is not None:
            eta = eta + part.offset
        for t, (refs, z, modes) in enumerate(zip(part.refs, part.zs, self.modes)):
            cols = list(range(z.shape[1])) if self.columns is None else list(self.columns[t])
            if cols and len(refs):
                eta = eta + np.einsum("ij,ij->i", z[:, cols], modes[refs][:, cols])
        return eta

    def mean(self, eta: np.ndarray) -> np.ndarray:
        return eta if self.family is None else self.family.link.inverse(eta)


def _rows(result: Any):
    """The data's columns a fit reads, as a dask DataFrame."""
    inputs = result.model.inputs
    return inputs.source.frame[inputs.plan.read_columns]


def _series(result: Any, function, name: str, rows: RowModel | None = None, *args: Any):
    """``function(partition, rows, *args)`` over the fit's data: a lazy Series named ``name``."""
    meta = pd.Series([], dtype=float, name=name)
    rows = RowModel.of(result) if rows is None else rows
    return _rows(result).map_partitions(function, shared(rows, "rows"), *args, meta=meta)


# --------------------------------------------------------------------------- fitted values and residuals
def _fitted_partition(frame: pd.DataFrame, rows: RowModel) -> pd.Series:
    part = encode_partition(frame, rows.plan)
    return pd.Series(rows.mean(rows.eta(part)), index=part.index, name="fitted")


def _eta_partition(frame: pd.DataFrame, rows: RowModel) -> pd.Series:
    part = encode_partition(frame, rows.plan)
    return pd.Series(rows.eta(part), index=part.index, name="eta")


def fitted(result: Any):
    """Fitted values (the response scale for GLMMs), lazy."""
    return _series(result, _fitted_partition, "fitted")


def linear_predictor(result: Any):
    """``eta = X beta + Z b + offset``, lazy."""
    return _series(result, _eta_partition, "eta")


def _residual_partition(frame: pd.DataFrame, rows: RowModel, kind: str, scaled: bool) -> pd.Series:
    part = encode_partition(frame, rows.plan)
    eta = rows.eta(part)
    if rows.family is None:
        resid = part.y - eta  # eta includes the offset, as the in-memory fitted values do
        if kind == "pearson" and part.weights is not None:
            resid = resid * np.sqrt(part.weights)
    else:
        resid = _glmm_residuals(rows, part, eta, kind)
    if scaled:
        resid = resid / rows.sigma
    return pd.Series(resid, index=part.index, name="residuals")


def _glmm_residuals(rows: RowModel, part: EncodedPartition, eta: np.ndarray, kind: str) -> np.ndarray:
    family = rows.family
    if part.nobs == 0:
        return np.empty(0)
    response = family.response(part.y, part.weights, rows.plan.parsed.response)
    mu = family.link.inverse(eta)
    if kind == "deviance":
        return np.sign(response.y - mu) * np.sqrt(np.maximum(response.dev_resid(mu), 0.0))
    if kind == "pearson":
        return response.pearson(mu)
    if kind == "working":
        return (response.y - mu) / family.link.mu_eta(eta)
    return response.y - mu


def residuals(result: Any, type: str = "response", scaled: bool = False):
    """Residuals of the given type, lazy (lmer: response, pearson; glmer: deviance, pearson, working, response)."""
    kinds = ("response", "pearson") if getattr(result, "family", None) is None else _GLMM_RESIDUALS
    if type not in kinds:
        raise MixedModelsError(f"unknown residual type {type!r}; choose one of {', '.join(map(repr, kinds))}")
    return _series(result, _residual_partition, "residuals", None, type, bool(scaled))


# --------------------------------------------------------------------------- predictions
def _selected_columns(result: Any, re_form: Any) -> tuple[tuple[int, ...], ...]:
    selection = {sel.term: sel.columns for sel in select_terms(_proxy(result), re_form)}
    return tuple(selection.get(t, ()) for t in range(len(result.terms)))


def _proxy(result: Any) -> SimpleNamespace:
    """What :func:`mixedmodels.predict.predict` reads of a fit, with the design's stand-in frame for ``re_form``.

    Small, as it travels to the workers for predictions on new data on Dask.
    """
    inputs = result.model.inputs
    fixed = replace(inputs.fixed, offset=None)
    frame = inputs.plan.stand_in
    model = SimpleNamespace(inputs=SimpleNamespace(fixed=fixed, offset=None, frame=frame))
    return SimpleNamespace(
        model=model,
        beta=np.asarray(result.beta),
        terms=result.terms,
        conditional_modes=[np.asarray(m) for m in result.conditional_modes],
        family=getattr(result, "family", None),
    )


class _FitWithStandIn:
    """The fit itself, but for its model, :func:`_proxy`'s (the stand-in frame): standard errors and intervals
    of predictions for pandas new data read the fit's vcov and conditional covariances, which need no rows."""

    def __init__(self, result: Any):
        self._result, self.model = result, _proxy(result).model

    def __getattr__(self, name: str) -> Any:
        return getattr(self._result, name)


def _predict_new(frame: pd.DataFrame, proxy: SimpleNamespace, offset_column: str | None, options: dict) -> pd.Series:
    extra = None
    if offset_column is not None and offset_column in frame.columns:
        extra = frame[offset_column].to_numpy(dtype=float)
    return predict_rows(proxy, frame, offset=extra, **options)


def _predict_fitted(frame: pd.DataFrame, rows: RowModel, link_scale: bool) -> pd.Series:
    part = encode_partition(frame, rows.plan)
    eta = rows.eta(part)
    return pd.Series(eta if link_scale else rows.mean(eta), index=part.index, name="predicted")


def predict(
    result: Any,
    newdata: Any = None,
    *,
    re_form: Any = None,
    allow_new_levels: bool = False,
    type: str = "response",
    offset: Any = None,
    **options: Any,
):
    """Predictions with all, none or some random effects (see :func:`mixedmodels.predict.predict`).

    ``options`` (``se_fit``, ``interval``, ``level``, ``weights``,
    ``newparams``) are for new data as a pandas DataFrame; for the fit's rows
    or new data on Dask they are refused.
    """
    if type not in ("response", "link"):
        raise MixedModelsError(f"unknown prediction type {type!r}; choose 'response' or 'link'")
    asked = {k: v for k, v in options.items() if not (v is None or v is False or (k == "interval" and v == "none"))}
    if asked and (newdata is None or is_dask_collection(newdata)):
        raise NotOnDaskError(
            f"predict({', '.join(f'{k}=' for k in asked)}) of a fit on Dask is available for new data "
            "given as a pandas DataFrame; for the fit's rows or a dask DataFrame it is not (yet)"
        )
    if asked:
        extra = offset
        offset_column = result.model.inputs.plan.offset
        if extra is None and offset_column is not None and offset_column in getattr(newdata, "columns", ()):
            extra = newdata[offset_column].to_numpy(dtype=float)
        return predict_rows(
            _FitWithStandIn(result),
            newdata,
            re_form=re_form,
            allow_new_levels=allow_new_levels,
            type=type,
            offset=extra,
            **options,
        )
    if newdata is None:
        rows = RowModel.of(result)
        rows = RowModel(
            rows.plan, rows.keep_x, rows.beta, rows.modes, rows.sigma, rows.family, _selected_columns(result, re_form)
        )
        return _series(result, _predict_fitted, "predicted", rows, type == "link")
    proxy = _proxy(result)
    select_terms(proxy, re_form)  # a bad re_form fails now, not on the workers
    options = dict(re_form=re_form, allow_new_levels=allow_new_levels, type=type)
    offset_column = result.model.inputs.plan.offset
    if not is_dask_collection(newdata):
        extra = offset
        if extra is None and offset_column is not None and offset_column in getattr(newdata, "columns", ()):
            extra = newdata[offset_column].to_numpy(dtype=float)
        return predict_rows(proxy, newdata, offset=extra, **options)
    if offset is not None:
        raise MixedModelsError(
            f"for new data on Dask, give the offset as a column of newdata (named as in the fit: {offset_column!r})"
        )
    meta = pd.Series([], dtype=float, name="predicted")
    return newdata.map_partitions(_predict_new, shared(proxy, "proxy"), offset_column, options, meta=meta)


# --------------------------------------------------------------------------- simulations
@dataclass(frozen=True, eq=False)
class _Draws:
    rows: RowModel
    effects: tuple[np.ndarray, ...] | None  # per term (nsim, levels, k): new random effects, or None (use_re)
    nsim: int
    seed: int


def _simulate_partition(frame: pd.DataFrame, draws: _Draws, partition_info: dict | None = None) -> pd.DataFrame:
    rows = draws.rows
    part = encode_partition(frame, rows.plan)
    eta = np.repeat(rows.eta(part)[:, None], draws.nsim, axis=1)
    if draws.effects is not None:
        for refs, z, b in zip(part.refs, part.zs, draws.effects):
            eta += np.einsum("ij,sij->is", z, b[:, refs, :])
    number = 0 if partition_info is None else int(partition_info.get("number", 0))
    rng = np.random.default_rng([draws.seed, number])
    values = _draw(rows, part, eta, rng)
    return pd.DataFrame(values, index=part.index, columns=[f"sim_{i + 1}" for i in range(draws.nsim)])


def _draw(rows: RowModel, part: EncodedPartition, eta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    family = None if rows.family is None else rows.family.name.lower()
    w = np.ones(part.nobs) if part.weights is None else part.weights
    if family is None:
        with np.errstate(divide="ignore"):
            scale = np.where(w > 0, rows.sigma / np.sqrt(np.where(w > 0, w, 1.0)), np.nan)
        return eta + scale[:, None] * rng.standard_normal(eta.shape)
    mu = rows.family.link.inverse(eta)
    if family == "binomial":
        trials = part.y.sum(axis=1) if part.y.ndim == 2 else w
        n = np.rint(trials).astype(np.int64)
        successes = rng.binomial(np.broadcast_to(n[:, None], mu.shape), np.clip(mu, 0.0, 1.0)).astype(float)
        if part.y.ndim == 2:
            return successes
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n[:, None] > 0, successes / np.maximum(n, 1)[:, None], np.nan)
    if family == "poisson":
        return rng.poisson(mu).astype(float)
    raise MixedModelsError(f"simulate() on Dask draws from lmer, binomial and Poisson fits, not {family!r}")


def simulate(result: Any, *, nsim: int = 1, seed: Any = None, use_re: bool = False):
    """``nsim`` simulated responses for the fit's rows (lme4's simulate), a lazy dask DataFrame.

    New random effects (unless ``use_re``) are drawn once on the client, per
    level, and shared by every partition; each partition's noise comes from
    its own stream of ``seed``, so the same seed gives the same draws.
    """
    if isinstance(nsim, bool) or not isinstance(nsim, (int, np.integer)) or nsim < 1:
        raise MixedModelsError(f"nsim must be a positive integer, got {nsim!r}")
    nsim = int(nsim)
    rng = np.random.default_rng(seed)
    rows = RowModel.of(result)
    effects = None
    if not use_re:
        rows = RowModel(
            rows.plan, rows.keep_x, rows.beta, rows.modes, rows.sigma, rows.family, tuple(() for _ in result.terms)
        )
        roots = [
            result.sigma * np.asarray(lam) for lam in result.relative_factors()
        ]  # sigma is 1 for binomial, Poisson
        effects = tuple(
            rng.standard_normal((nsim, t.nlevels, t.ncols)) @ root.T for t, root in zip(result.terms, roots)
        )
    draws = _Draws(rows, effects, nsim, int(rng.integers(0, 2**63 - 1)))
    meta = pd.DataFrame({f"sim_{i + 1}": pd.Series([], dtype=float) for i in range(nsim)})
    return _rows(result).map_partitions(_simulate_partition, shared(draws, "draws"), meta=meta)

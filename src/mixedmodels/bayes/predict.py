"""Model matrices for new data and simulated responses, for posterior predictions.

New data go through the fit's stateful transforms (``DesignMatrix.for_newdata``).
A level of a grouping factor that the fit has not seen gets, for every draw
``s``, effects ``b_new ~ N(0, Sigma_s)`` from that draw's population
distribution (rstanarm's and brms' ``sample_new_levels = "gaussian"``); rows
with a missing grouping value give NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..design.response import build_response
from ..errors import DataError, MixedModelsError
from ..predict import match_levels, new_offset
from .model import inverse_link

__all__ = ["new_design", "simulate_response"]


def _new_level_effects(sd: np.ndarray, cor: np.ndarray | None, count: int, rng: np.random.Generator) -> np.ndarray:
    """``(S, count, q)`` draws from ``N(0, Sigma_s)`` for each posterior draw ``s``."""
    normal = rng.standard_normal((sd.shape[0], count, sd.shape[1]))
    if cor is None:
        return normal * sd[:, None, :]
    q = cor.shape[-1]
    chol = np.linalg.cholesky(cor + 1e-10 * np.eye(q))
    scale = sd[:, :, None] * chol
    return np.einsum("snq,spq->snp", normal, scale)


def _level_labels(newdata: pd.DataFrame, factors) -> np.ndarray:
    parts = [newdata[f].astype(object).map(str) for f in factors]
    return np.array([":".join(p) for p in zip(*parts)], dtype=object)


def new_design(result, newdata: pd.DataFrame | None, use_re: bool, idx: np.ndarray, rng, offset: Any):
    """``x``, offset, and per term ``z``, level indices and effect draws for the rows to predict."""
    inputs = result.model.inputs
    b_all = [b.reshape((-1,) + b.shape[2:])[idx] for b in result.draws["b"]] if use_re else []
    if newdata is None:
        if offset is not None:
            raise MixedModelsError("offset= is for newdata; the fitted rows use the fit's offset")
        terms = result.terms if use_re else ()
        return inputs.fixed.matrix, inputs.offset, [t.z for t in terms], [t.refs for t in terms], b_all
    if not isinstance(newdata, pd.DataFrame):
        raise DataError(f"newdata must be a pandas DataFrame, not {type(newdata).__name__}")
    x = inputs.fixed.for_newdata(newdata)
    offs = new_offset(inputs, newdata, offset)
    if not use_re:
        return x, offs, [], [], []
    zs, refs_all, bs = [], [], []
    flat = lambda a: a.reshape((-1,) + a.shape[2:])[idx]  # noqa: E731
    for k, term in enumerate(result.terms):
        refs = match_levels(term, newdata, allow_new_levels=True)
        b = b_all[k]
        new_rows = np.flatnonzero(refs == -1)
        if new_rows.size:
            labels = _level_labels(newdata.iloc[new_rows], term.factors)
            unique, which = np.unique(labels, return_inverse=True)
            cor = result.draws["cor"][k]
            extra = _new_level_effects(
                flat(result.draws["sd"][k]), flat(cor) if cor is not None else None, len(unique), rng
            )
            b = np.concatenate([b, extra], axis=1)
            refs = refs.copy()
            refs[new_rows] = term.nlevels + which
        zs.append(term.design.for_newdata(newdata))
        refs_all.append(refs)
        bs.append(b)
    return x, offs, zs, refs_all, bs


def _binomial_trials(result, newdata: pd.DataFrame | None, trials: Any) -> np.ndarray:
    model = result.model
    if newdata is None:
        if trials is not None:
            raise MixedModelsError("trials= is for newdata; the fitted rows use the fit's numbers of trials")
        return model.data["trials"]
    n = len(newdata)
    if trials is not None:
        values = np.broadcast_to(np.asarray(trials, dtype=float), (n,)).copy()
        if np.any(values < 0) or np.any(values != np.round(values)):
            raise DataError("trials must be whole numbers >= 0")
        return values
    if model.cbind:
        response = model.inputs.formula.response
        try:
            counts = build_response(response, newdata)
        except MixedModelsError as exc:
            raise DataError(
                f"newdata lacks the columns of the response {response!r} that give the numbers of "
                f"trials; pass trials= ({exc})"
            ) from exc
        return np.asarray(counts, dtype=float).sum(axis=1)
    return np.ones(n)


def simulate_response(
    result,
    eta: np.ndarray,
    sigma: np.ndarray | None,
    newdata: pd.DataFrame | None,
    rng: np.random.Generator,
    trials: Any = None,
    weights: Any = None,
) -> np.ndarray:
    """Responses drawn given the linear predictor draws ``eta (S, n)``."""
    model = result.model
    family = model.spec.family
    mu = inverse_link(model.spec.link, eta)
    bad = ~np.isfinite(mu)
    if family == "gaussian":
        if weights is not None and newdata is None:
            raise MixedModelsError("weights= is for newdata; the fitted rows use the fit's weights")
        w = (
            model.data["w"]
            if newdata is None
            else (
                np.ones(eta.shape[1]) if weights is None else np.broadcast_to(np.asarray(weights, float), eta.shape[1:])
            )
        )
        with np.errstate(divide="ignore"):
            sd = sigma[:, None] / np.sqrt(w)
        values = mu + sd * rng.standard_normal(mu.shape)
        values[:, np.asarray(w) <= 0] = np.nan
    elif family == "binomial":
        m = _binomial_trials(result, newdata, trials)
        k = rng.binomial(np.broadcast_to(m.astype(np.int64), mu.shape), np.where(bad, 0.5, mu)).astype(float)
        if model.cbind:
            values = k
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                values = np.where(m > 0, k / np.where(m > 0, m, 1.0), np.nan)
    else:
        values = rng.poisson(np.where(bad, 1.0, mu)).astype(float)
    values[bad] = np.nan
    return values

"""Simulated responses from a fitted model (lme4's ``simulate.merMod``).

``re_form`` says which random effects are kept at their conditional modes, as lme4's
``re.form``: by default (``"~0"``, R's ``NA``) none, and new random effects are drawn for
every level present, as if the study were repeated with new participants:

    b_{k,l} ~ N(0, Sigma_k),  eta = X beta + offset + sum_k Z_k b_k,

with ``Sigma_k = sigma^2 Lambda_k Lambda_k'`` (``result.covariances``; sigma is 1
for binomial and Poisson GLMMs).  ``re_form=None`` (R's ``NULL``) keeps every term at its
conditional modes, so only the residual noise is new (the same participants measured
again); ``re_form="~ (1 | g)"`` keeps the terms it names and draws new effects for the
others (e.g. the same items, new participants).  A term is kept or redrawn whole: naming
only some of a term's columns (``(1 | Subject)`` of a ``(Days | Subject)`` fit) is refused.
``use_re=True`` / ``False`` are older spellings of ``re_form=None`` / ``"~0"``.  Given ``eta``
the response is drawn from the model's conditional distribution:

* linear models: ``y = eta + e``, ``e ~ N(0, sigma^2 / w)`` with prior weights w;
  with a residual structure (``var_ident``, ``cor_ar1``) ``e ~ N(0, sigma^2 R)``,
  the AR(1) drawn by its recursion within each group (fitted rows only);
* binomial: successes ~ Binomial(n, mu) with n the trials (``cbind`` totals or
  the prior weights of a proportion response); a proportion response is
  returned as successes / n, a ``cbind`` response as the successes;
* Poisson: ``y ~ Poisson(mu)``; negative binomial: ``y ~ NB(mu, theta)``
  (variance ``mu + mu^2 / theta``); Gamma: shape ``w / sigma^2``, mean ``mu`` (so
  ``Var(y) = sigma^2 mu^2 / w``; lme4 1.1-31 uses shape ``sigma w``, which does
  not match its own dispersion); inverse Gaussian: mean ``mu``, shape ``w / sigma^2``;
  Gaussian GLMMs as linear models,

where ``mu = g^-1(eta)``.  The same ``seed`` gives the same draws.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .design.random import grouping_factor
from .errors import DataError, MixedModelsError, ModelSpecError
from .fitted import Fit
from .predict import TermSelection, inverse_link, linear_predictor, select_terms, with_newparams
from ._validate import check_bool

__all__ = ["simulate", "simulate_responses", "family_name", "binomial_trials", "check_nsim"]

_CHUNK = 4_000_000  # random-effect draws (rows x columns x replicates) per batch


def simulate(
    result: Fit,
    *,
    nsim: int = 1,
    seed: int | np.random.Generator | None = None,
    newdata: pd.DataFrame | None = None,
    re_form: str | bool | None = "~0",
    use_re: bool | None = None,
    weights: Any = None,
    newparams: Any = None,
) -> pd.DataFrame:
    """Simulate ``nsim`` response vectors from a fitted model (lme4's ``simulate``).

    Parameters
    ----------
    result : LmerResults, GlmerResults, LmResults or GlmResults
    nsim : int
        Number of simulated data sets (columns ``sim_1`` ... ``sim_<nsim>``).
    seed : int or numpy Generator, optional
        Seed for ``numpy.random.default_rng``; the same seed gives the same draws.
    newdata : DataFrame, optional
        Rows to simulate for (default: the rows of the fit).  New random effects
        are drawn for the levels in ``newdata``; for the terms kept at their
        conditional modes its levels must be in the fit.
    re_form : None, str or bool
        Random effects kept at their conditional modes, as lme4's ``re.form``:
        ``"~0"`` (default, R's ``NA``; also ``False``) none -- all are drawn anew;
        ``None`` (R's ``NULL``; also ``True``) all; or a formula of whole terms of
        the model such as ``"~ (1 | item)"`` -- those kept, the others drawn anew.
    use_re : bool, optional
        Older spelling: ``True`` is ``re_form=None``, ``False`` is ``re_form="~0"``.
    weights : array-like, optional
        Prior weights (binomial: trials) for the rows of ``newdata``; default 1.
    newparams : dict, optional
        ``{"theta": ..., "beta": ..., "sigma": ...}`` (any of them) to simulate
        from instead of the estimates (lme4's ``newparams``), e.g. for power
        analysis; the random effects kept (``re_form``) are then ``Lambda(theta) u``.

    Returns
    -------
    DataFrame
        One column per simulation, indexed like the data (padded with NaN rows
        for ``na_action="exclude"`` fits) or like ``newdata``.
    """
    nsim = check_nsim(nsim)
    kept = _kept_terms(result, re_form, use_re)
    rng = np.random.default_rng(seed)
    if newparams is not None:
        result = with_newparams(result, newparams)
    values = simulate_responses(result, nsim, rng, newdata=newdata, use_re=kept, weights=weights)
    columns = [f"sim_{i + 1}" for i in range(nsim)]
    if newdata is None:
        return result.model.inputs.row_frame(values, columns)
    return pd.DataFrame(values, index=newdata.index, columns=columns)


def check_nsim(nsim: Any) -> int:
    """``nsim`` as a positive whole number, or a MixedModelsError."""
    if isinstance(nsim, bool) or not isinstance(nsim, (int, np.integer)) or nsim < 1:
        raise MixedModelsError(f"nsim must be a positive integer, got {nsim!r}")
    return int(nsim)


def _kept_terms(result: Fit, re_form: Any, use_re: bool | None) -> tuple[TermSelection, ...]:
    """The whole terms ``re_form`` (or the older ``use_re``) keeps at their conditional modes."""
    if check_bool(use_re, "use_re", allow_none=True) is not None:
        use_re = bool(use_re)
        if re_form not in ("~0", None if use_re else "~0"):
            raise MixedModelsError(f"give re_form= or use_re=, not both (re_form={re_form!r}, use_re={use_re})")
        re_form = None if use_re else "~0"
    selection = select_terms(result, re_form)
    for sel in selection:
        term = result.terms[sel.term]
        if len(sel.columns) != term.ncols:
            kept = ", ".join(term.column_names[c] for c in sel.columns)
            raise MixedModelsError(
                f"re_form {re_form!r} keeps only column(s) {kept} of the term {term}; simulate() keeps or redraws "
                f"whole terms: name the term as in the model (e.g. '~ {term}') or leave it out"
            )
    return selection


def simulate_responses(
    result: Fit,
    nsim: int,
    rng: np.random.Generator,
    *,
    newdata: pd.DataFrame | None = None,
    use_re: bool | tuple[TermSelection, ...] = False,
    weights: Any = None,
) -> np.ndarray:
    """Simulated responses as an ``(n, nsim)`` array (see :func:`simulate`).

    ``use_re``: True keeps every random-effects term at its conditional modes, False none,
    or the terms to keep (from :func:`select_terms`); the others get new draws.
    """
    if isinstance(use_re, tuple):
        selection = use_re
    else:
        selection = select_terms(result, None if check_bool(use_re, "use_re") else "~0")
    eta = linear_predictor(result, newdata, selection)
    eta = np.repeat(eta[:, None], nsim, axis=1)
    redrawn = sorted(set(range(len(result.terms))) - {sel.term for sel in selection})
    if redrawn:
        eta += _new_random_effects(result, newdata, nsim, rng, redrawn)
    prior = _prior_weights(result, newdata, weights)
    residual = getattr(result.model, "residual", None)
    if residual is not None:
        return _draw_structured(result, residual, eta, prior, rng, newdata)
    return _draw(result, eta, prior, rng, newdata is None)


def _draw_structured(
    result: Fit,
    residual: Any,
    eta: np.ndarray,
    prior: np.ndarray | None,
    rng: np.random.Generator,
    newdata: pd.DataFrame | None,
) -> np.ndarray:
    """``eta + sigma e``, ``e ~ N(0, R)`` from the model's residual structure (over sqrt(prior weights))."""
    if newdata is not None:
        raise MixedModelsError(
            "simulate(newdata=...) is not available for a model with a residual structure "
            "(weights=var_ident() or correlation=): its groups and strata are those of the fit"
        )
    noise = residual.structure.draw(rng, eta.shape[1], residual.params)
    if prior is not None:
        noise = noise / np.sqrt(prior)[:, None]
    return eta + result.sigma * noise


# --- random effects ------------------------------------------------------------------
def _covariance_roots(result: Fit) -> list[np.ndarray]:
    """A square root ``R = sigma Lambda`` (``b = R u``, ``u ~ N(0, I)``) of each term's covariance.

    ``sigma`` is 1 for binomial and Poisson GLMMs.  For GLMMs with a dispersion
    (Gamma) this is the covariance lme4's ``VarCorr`` reports; lme4 1.1-31's
    ``simulate`` leaves out ``sigma`` there.  Without relative factors, a
    symmetric root of ``result.covariances``.
    """
    lambdas = getattr(result, "relative_factors", None)
    if callable(lambdas):
        return [result.sigma * np.asarray(lam, dtype=float) for lam in lambdas()]
    roots = []
    for cov in result.covariances.values():
        values, vectors = np.linalg.eigh(np.asarray(cov, dtype=float))
        roots.append(vectors * np.sqrt(np.clip(values, 0.0, None)))
    return roots


def _new_random_effects(
    result: Fit, newdata: pd.DataFrame | None, nsim: int, rng: np.random.Generator, which: list[int]
) -> np.ndarray:
    """``sum_k Z_k b_k`` over the terms ``which``, fresh ``b_k ~ N(0, Sigma_k)`` per level, shape (n, nsim)."""
    n = result.model.inputs.nobs if newdata is None else len(newdata)
    total = np.zeros((n, nsim))
    roots = _covariance_roots(result)
    for term, root in ((result.terms[k], roots[k]) for k in which):
        if newdata is None:
            z, refs, nlevels = term.z, term.refs, term.nlevels
            valid = np.ones(n, dtype=bool)
        else:
            z = term.design.for_newdata(newdata)
            refs, nlevels, valid = _new_levels(newdata, term.factors)
        k = z.shape[1]
        step = max(1, _CHUNK // max(1, (nlevels + n) * k))
        for start in range(0, nsim, step):
            stop = min(nsim, start + step)
            b = rng.standard_normal((stop - start, nlevels, k)) @ root.T  # (sims, levels, k)
            part = np.einsum("ij,sij->is", z[valid], b[:, refs[valid], :])
            total[valid, start:stop] += part
        total[~valid] = np.nan
    return total


def _new_levels(newdata: pd.DataFrame, factors: tuple[str, ...]) -> tuple[np.ndarray, int, np.ndarray]:
    """Level index per row of ``newdata`` (its own levels), their number, and the rows with a level."""
    from .design.frame import check_columns

    check_columns(newdata, list(factors))
    valid = ~newdata.loc[:, list(factors)].isna().any(axis=1).to_numpy()
    refs = np.zeros(len(newdata), dtype=np.int64)
    if not valid.any():
        return refs, 1, valid
    codes, labels = grouping_factor(newdata.loc[valid, list(factors)], factors)
    refs[valid] = codes
    return refs, len(labels), valid


# --- responses -----------------------------------------------------------------------
def family_name(result: Fit) -> str | None:
    """Lower-case family name of a generalized model ("binomial", "poisson", ...); None for linear models."""
    family = getattr(result, "family", None)
    if family is None:
        return None
    if isinstance(family, str):
        name = family
    else:
        name = getattr(family, "name", None) or getattr(family, "family", None) or type(family).__name__
    return str(name).lower().replace(".", "_").replace(" ", "_")


def _prior_weights(result: Fit, newdata: pd.DataFrame | None, weights: Any) -> np.ndarray | None:
    if newdata is None:
        if weights is not None:
            raise MixedModelsError("weights= is for newdata; the fitted rows use the model's own weights")
        return result.model.inputs.weights
    if weights is None:
        return None
    w = np.asarray(weights, dtype=float).reshape(-1)
    if w.size != len(newdata) or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise DataError(f"weights must be {len(newdata)} finite non-negative values, one per row of newdata")
    return w


def binomial_trials(result: Fit) -> np.ndarray:
    """Number of trials per fitted row: ``cbind`` totals, else the prior weights (default 1)."""
    inputs = result.model.inputs
    if inputs.y.ndim == 2:
        return inputs.y.sum(axis=1)
    return np.ones(inputs.nobs) if inputs.weights is None else inputs.weights


def _draw(
    result: Fit, eta: np.ndarray, prior: np.ndarray | None, rng: np.random.Generator, fitted_rows: bool
) -> np.ndarray:
    family = family_name(result)
    w = np.ones(eta.shape[0]) if prior is None else np.asarray(prior, dtype=float)
    if family in (None, "gaussian"):
        mu = inverse_link(result, eta) if family else eta
        with np.errstate(divide="ignore"):
            scale = np.where(w > 0, result.sigma / np.sqrt(np.where(w > 0, w, 1.0)), np.nan)
        return mu + scale[:, None] * rng.standard_normal(eta.shape)
    mu = inverse_link(result, eta)
    if family == "binomial":
        return _draw_binomial(result, mu, w, rng, fitted_rows)
    if family in ("poisson", "quasipoisson"):
        return rng.poisson(mu).astype(float)
    if family == "negative_binomial":
        theta = result.family.theta
        return rng.negative_binomial(theta, theta / (theta + mu)).astype(float)
    shape = (w / result.sigma**2)[:, None]
    if family == "gamma":
        return rng.gamma(np.broadcast_to(shape, mu.shape), mu / shape)
    if family in ("inverse_gaussian", "inversegaussian"):
        return rng.wald(mu, np.broadcast_to(shape, mu.shape))
    raise ModelSpecError(f"simulate() does not know how to draw responses from family {family!r}")


def _draw_binomial(
    result: Fit, mu: np.ndarray, w: np.ndarray, rng: np.random.Generator, fitted_rows: bool
) -> np.ndarray:
    """Successes (``cbind`` response) or proportions of Binomial(n, mu) draws."""
    trials = binomial_trials(result) if fitted_rows else w
    n = np.rint(trials).astype(np.int64)
    if np.any(np.abs(trials - n) > 1e-7) or np.any(n < 0):
        raise DataError("binomial trials (cbind totals or weights) must be non-negative whole numbers to simulate")
    successes = rng.binomial(np.broadcast_to(n[:, None], mu.shape), np.clip(mu, 0.0, 1.0)).astype(float)
    if fitted_rows and result.model.inputs.y.ndim == 2:
        return successes
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n[:, None] > 0, successes / np.maximum(n, 1)[:, None], np.nan)

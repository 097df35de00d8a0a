"""Simulate clustered data and compare complete, no and partial pooling (the explorer's model).

The data are ``J`` clusters drawn from the random-intercept model

.. math::

    y_{ij} = \\mu + u_j + e_{ij},\\qquad u_j \\sim N(0, \\sigma_u^2),\\quad
    e_{ij} \\sim N(0, \\sigma_e^2),

with cluster sizes ``n_j`` drawn uniformly from ``1, ..., 2\\bar n - 1`` (mean
``\\bar n``).  Three estimates of each true cluster mean ``\\mu + u_j``:

* complete pooling -- the grand mean ``\\bar y`` of all observations, the same
  for every cluster;
* no pooling -- the cluster's own mean ``\\bar y_j``;
* partial pooling -- lme4's ``coef()`` of the REML fit of
  ``y ~ 1 + (1 | cluster)``, which for this model is exactly
  ``\\lambda_j \\bar y_j + (1 - \\lambda_j) \\hat\\mu`` with the shrinkage factor
  ``\\lambda_j = \\hat\\sigma_u^2 / (\\hat\\sigma_u^2 + \\hat\\sigma_e^2 / n_j)``.  The page calls
  it ``\\alpha_j``, as teaching texts often do; the JSON key is ``lambda``.

Each approach is scored by its mean squared error against the true cluster
means, averaged over clusters.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import MixedModelsWarning, ModelSpecError
from .._validate import Dict, Instance, Integer, Real, check_arguments, argument_kinds

__all__ = [
    "ExploreParams",
    "parse_params",
    "simulate_clusters",
    "shrinkage_demo",
    "summarise_clusters",
    "FORMULA",
    "MU",
    "LIMITS",
]

FORMULA = "y ~ 1 + (1 | cluster)"
MU = 0.0
"""The true population mean of the simulated clusters."""

# name -> (low, high, whole number?, default)
LIMITS: dict[str, tuple[float, float, bool, float]] = {
    "J": (2, 100, True, 16),
    "nbar": (1, 100, True, 8),
    "sigma_u": (0.0, 10.0, False, 1.5),
    "sigma_e": (0.1, 10.0, False, 2.0),
    "seed": (0, 2**32 - 1, True, 48),
}
_LABELS = {
    "J": "J (number of clusters)",
    "nbar": "nbar (mean cluster size)",
    "sigma_u": "sigma_u (between-cluster SD)",
    "sigma_e": "sigma_e (within-cluster SD)",
    "seed": "seed",
}
_FIT_LOCK = threading.Lock()  # warnings.catch_warnings is process-global: one fit at a time


@dataclass(frozen=True)
class ExploreParams:
    """The explorer's settings: ``J`` clusters of mean size ``nbar``, SDs and a seed."""

    J: int = 16
    nbar: int = 8
    sigma_u: float = 1.5
    sigma_e: float = 2.0
    seed: int = 48

    @argument_kinds(
        J=Integer(2, 100),
        nbar=Integer(1, 100),
        sigma_u=Real(0.0, 10.0),
        sigma_e=Real(0.1, 10.0),
        seed=Integer(0, 2**32 - 1),
    )
    def __post_init__(self) -> None:  # checks its fields itself, by LIMITS (the kinds say the same)
        for name, (_, _, whole, _) in LIMITS.items():
            value = getattr(self, name)
            _check_range(name, value)
            object.__setattr__(self, name, int(value) if whole else float(value))


def _check_range(name: str, value: Any) -> None:
    low, high, whole, _ = LIMITS[name]
    kind = "a whole number" if whole else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ModelSpecError(f"{_LABELS[name]} must be {kind} between {low:g} and {high:g}, got {value!r}")
    if not np.isfinite(value) or not low <= value <= high or (whole and value != int(value)):
        raise ModelSpecError(f"{_LABELS[name]} must be {kind} between {low:g} and {high:g}, got {value!r}")


def _parse_value(name: str, text: str) -> int | float:
    low, high, whole, _ = LIMITS[name]
    kind = "a whole number" if whole else "a number"
    try:
        value = float(text.strip())
    except ValueError:
        raise ModelSpecError(f"{_LABELS[name]} must be {kind} between {low:g} and {high:g}, got {text!r}") from None
    _check_range(name, value)
    return int(value) if whole else value


@argument_kinds(query=Dict())
def parse_params(query: Mapping[str, str]) -> ExploreParams:
    """Settings from query-string values (text); missing ones take their defaults.

    Raises
    ------
    ModelSpecError
        For an unknown name, a value that is not a number, or one out of range,
        naming the parameter and its allowed range.
    """
    check_arguments(locals())
    unknown = sorted(set(query) - set(LIMITS))
    if unknown:
        raise ModelSpecError(f"unknown parameter {unknown[0]!r}; allowed: {', '.join(LIMITS)}")
    return ExploreParams(**{name: _parse_value(name, str(text)) for name, text in query.items()})


def _cluster_sizes(params: ExploreParams, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """Sizes uniform on 1..2*nbar-1; if all are 1 (always so at nbar = 1) the first gets 2.

    With every cluster of size 1 within- and between-cluster variation cannot be
    told apart and lme4 refuses the fit (observations <= random effects).
    """
    sizes = rng.integers(1, 2 * params.nbar, size=params.J)
    notes = []
    if sizes.sum() <= params.J:
        sizes[0] = 2
        notes.append(
            "Every cluster had one observation, which cannot separate within- from between-cluster "
            "variation; cluster 1 was given a second observation so the model can be fitted."
        )
    return sizes, notes


@argument_kinds(params=Instance(ExploreParams))
def simulate_clusters(params: ExploreParams) -> pd.DataFrame:
    """One data set (columns ``cluster``, ``trial``, ``y``) with its truth in ``attrs``.

    ``attrs["true_means"]`` holds ``mu + u_j`` per cluster and ``attrs["notes"]``
    any adjustment made to the design.  The same seed gives the same standard
    normal draws whatever the SDs, so moving a slider rescales one data set.
    """
    check_arguments(locals())
    from ..planning.study import simulate_design

    rng = np.random.default_rng(params.seed)
    sizes, notes = _cluster_sizes(params, rng)
    data = simulate_design(
        params.J,
        sizes,
        fixed={"(Intercept)": MU},
        group_sd=params.sigma_u,
        sigma=params.sigma_e,
        group="cluster",
        seed=rng,
    )
    truth = data.attrs.pop("truth")
    data.attrs["true_means"] = truth.coef()["(Intercept)"].rename("true_mean")
    data.attrs["notes"] = notes
    return data


def _fit(data: pd.DataFrame) -> tuple[Any, list[str]]:
    """REML fit of the random-intercept model; mixedmodels' warnings are returned as text."""
    from ..lmm.model import lmer

    with _FIT_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MixedModelsWarning)
        model = lmer(FORMULA, data, REML=True)
    messages = []
    for w in caught:
        if issubclass(w.category, MixedModelsWarning):
            messages.append(f"{w.category.__name__}: {w.message}")
        else:  # not ours: pass it on unchanged
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return model, messages


def _mse(estimate: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean((estimate - truth) ** 2))


@argument_kinds(params=Instance(ExploreParams, allow_none=True))
def shrinkage_demo(params: ExploreParams | None = None) -> dict[str, Any]:
    """Simulate, fit by REML and compare the three pooling approaches (the JSON of ``/api/simulate``).

    Returns
    -------
    dict
        ``params``; ``clusters`` (one record per cluster: ``cluster``, ``n``,
        ``true_mean``, ``no_pool`` = :math:`\\bar y_j`, ``partial`` = lme4's
        ``coef()``, ``lambda``); ``grand_mean`` (complete pooling);
        ``mu_hat`` (the REML intercept, toward which partial pooling shrinks);
        ``mu_true``; ``fit`` (``sigma_u``, ``sigma_e`` estimated, ``singular``,
        ``warnings``); ``mse`` per approach (``complete``, ``no``, ``partial``);
        ``notes``.
    """
    check_arguments(locals())
    params = params or ExploreParams()
    data = simulate_clusters(params)
    return {
        "params": asdict(params),
        **summarise_clusters(data, data.attrs["true_means"]),
        "notes": data.attrs["notes"],
    }


def summarise_clusters(data: pd.DataFrame, true_means: pd.Series) -> dict[str, Any]:
    """Fit ``y ~ 1 + (1 | cluster)`` by REML to ``data`` and score the three approaches against ``true_means``.

    ``true_means`` is indexed by cluster label.  Returns the keys of
    :func:`shrinkage_demo` but ``params`` and ``notes``.
    """
    model, messages = _fit(data)
    groups = data.groupby("cluster", observed=True)["y"]
    n = groups.size()
    no_pool = groups.mean()
    labels = n.index
    true_mean = true_means.reindex(labels).to_numpy(dtype=float)
    partial = model.coef()["cluster"]["(Intercept)"].reindex(labels).to_numpy()
    var_u = float(model.covariances["cluster"][0, 0])
    var_e = float(model.sigma) ** 2
    lam = var_u / (var_u + var_e / n.to_numpy())
    grand = float(data["y"].mean())
    clusters = pd.DataFrame(
        {
            "cluster": labels.astype(str),
            "n": n.to_numpy(),
            "true_mean": true_mean,
            "no_pool": no_pool.to_numpy(),
            "partial": partial,
            "lambda": lam,
        }
    )
    return {
        "formula": FORMULA,
        "clusters": clusters.to_dict(orient="records"),
        "grand_mean": grand,
        "mu_hat": float(model.fixef["(Intercept)"]),
        "mu_true": MU,
        "fit": {
            "sigma_u": var_u**0.5,
            "sigma_e": var_e**0.5,
            "REML": True,
            "singular": bool(model.is_singular),
            "nobs": int(model.nobs),
            "warnings": messages,
        },
        "mse": {
            "complete": _mse(np.full_like(true_mean, grand), true_mean),
            "no": _mse(no_pool.to_numpy(), true_mean),
            "partial": _mse(partial, true_mean),
        },
    }

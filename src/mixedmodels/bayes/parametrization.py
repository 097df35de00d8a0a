"""Centred or non-centred group effects: the coordinates NUTS samples each random-effects term in.

Both describe the same model, ``b_j ~ N(0, Sigma)``; they differ in what the sampler moves:

* **non-centred** -- standard normal ``u_j`` with ``b_j = diag(s) L u_j``: best when a level's
  own data say little about its effects (few observations, or a small SD), where the centred
  form has a funnel between the SDs and the effects;
* **centred** -- each level's coefficients ``gamma_j = beta[match] + b_j`` themselves (``match``:
  the fixed effect of the same column, e.g. the intercept): best when the data pin down each
  level's coefficients, where the non-centred form is a long ridge -- the no-pooling model as
  taught, ``sd = Fixed(1000)``, gave R-hat 1.14 on sleepstudy non-centred.

Following Papaspiliopoulos, Roberts & Sköld (2007, "A general framework for the parametrization
of hierarchical models", Statistical Science 22), the choice turns on how much a level's data
say about its effect relative to the effects' spread: for column ``c`` of level ``j``

    r_jc = Sigma_cc * sum_{i in j} w_i z_ic^2 / sigma^2,

and the centred form mixes better when ``r > 1``.  ``parametrization="auto"`` (the default)
samples a one-column term (a random intercept, say) centred when the median over its levels of
``r_j`` is at least 1, with ``Sigma`` and ``sigma`` from a quick REML fit (``mm.lmer``) for
Gaussian models (sleepstudy's ``(1 | Subject)``: r = 14, bulk ESS 6000 instead of 640 from
4 x 1000 draws; 17 players x 82 games: r = 82, ESS 6000 instead of 355 and R-hat 1.003 instead
of 1.013).  A term whose SDs are all ``Fixed`` uses those values and needs no fit: centred when
each is at least the response's SD over the column's (``s_c >= s_y / s_z``, a diffuse prior).
Terms with correlated effects and learned SDs stay non-centred: centred, the correlation's
funnel gives divergent transitions (sleepstudy's ``(Days | Subject)``: 2 in 2 x 3000), and so do
binomial and Poisson terms with learned SDs.  ``"centred"`` or ``"noncentred"`` chooses for
every term.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..errors import MixedModelsError, ModelSpecError
from .priors import Fixed, Prior, column_scale

__all__ = ["PARAMETRIZATIONS", "check_parametrization", "choose_parametrization", "column_matches"]

PARAMETRIZATIONS = ("auto", "centred", "noncentred")
_SPELLINGS = {
    "auto": "auto",
    "centred": "centred",
    "centered": "centred",
    "noncentred": "noncentred",
    "non-centred": "noncentred",
    "noncentered": "noncentred",
    "non-centered": "noncentred",
}


def check_parametrization(value: Any) -> str:
    """``"auto"``, ``"centred"`` or ``"noncentred"`` (American spellings and hyphens accepted)."""
    key = _SPELLINGS.get(value.lower()) if isinstance(value, str) else None
    if key is None:
        raise ModelSpecError(f"parametrization must be 'auto', 'centred' or 'noncentred', not {value!r}")
    return key


def column_matches(term, fixef_names: list[str], x: np.ndarray) -> tuple[int, ...]:
    """For each column of ``term``, the fixed effect with the same name and the same values (-1 if none)."""
    out = []
    for c, name in enumerate(term.column_names):
        j = fixef_names.index(name) if name in fixef_names else -1
        out.append(j if j >= 0 and np.allclose(x[:, j], term.z[:, c]) else -1)
    return tuple(out)


def _diffuse(term, sd_priors: tuple[Prior, ...], s_y: float) -> bool:
    return all(isinstance(p, Fixed) and p.value >= s_y / column_scale(term.z[:, c]) for c, p in enumerate(sd_priors))


def _information_ratio(term, variances: np.ndarray, sigma: float, weights: np.ndarray | None) -> float:
    """Median over levels of ``min_c Sigma_cc sum_i w_i z_ic^2 / sigma^2``."""
    w = np.ones(len(term.refs)) if weights is None else np.asarray(weights, dtype=float)
    info = np.zeros((term.nlevels, term.ncols))
    np.add.at(info, term.refs, w[:, None] * term.z**2)
    ratios = (info * variances[None, :] / sigma**2).min(axis=1)
    return float(np.median(ratios))


def _reml_estimates(inputs) -> tuple[list[np.ndarray], float] | None:
    """Each term's variances and the residual SD of a quick REML fit; None if it cannot be fitted."""
    from ..lmm.model import LinearMixedModel

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = LinearMixedModel.from_inputs(inputs, REML=True).fit()
    except (MixedModelsError, np.linalg.LinAlgError, ValueError):
        return None
    return [np.diag(np.asarray(c, dtype=float)) for c in fit.covariances.values()], float(fit.sigma)


def choose_parametrization(
    inputs, family, sd_priors: tuple[tuple[Prior, ...], ...], how: str, s_y: float
) -> list[bool]:
    """Whether each term of ``inputs`` is sampled centred (see the module docstring)."""
    terms = inputs.terms
    if how != "auto":
        return [how == "centred"] * len(terms)
    gaussian = family.name == "gaussian" and family.link.name == "identity"
    estimates = None
    out = []
    for k, term in enumerate(terms):
        if all(isinstance(p, Fixed) for p in sd_priors[k]):
            out.append(_diffuse(term, sd_priors[k], s_y))
            continue
        if not gaussian or term.ncols > 1:
            out.append(False)
            continue
        if estimates is None:
            estimates = _reml_estimates(inputs) or ([], np.nan)
        variances, sigma = estimates
        if k >= len(variances) or not np.isfinite(sigma) or sigma <= 0:
            out.append(False)
            continue
        fixed = np.array([p.value**2 if isinstance(p, Fixed) else v for p, v in zip(sd_priors[k], variances[k])])
        out.append(bool(np.all(fixed > 0)) and _information_ratio(term, fixed, sigma, inputs.weights) >= 1.0)
    return out

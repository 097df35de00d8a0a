"""Iteratively reweighted least squares for generalized linear models (R's ``glm.fit``).

From starting means ``mu`` (the family's ``initialize``), repeat

    z = eta - offset + (y - mu) / g'(mu)^-1,     W = w mu_eta^2 / V(mu),
    beta = argmin sum W (z - X beta)^2,           eta = X beta + offset,  mu = g^-1(eta)

(each step a weighted least-squares fit, :func:`mixedmodels.linalg.lstsq.lstsq`)
until the deviance changes by less than ``tol * (|dev| + 0.1)``, halving the
step when the deviance is not finite or ``mu`` leaves the family's range.
The null deviance is the intercept-only model's (or the offset's alone).
What the solution means for the coefficients' covariance, the dispersion and
the log-likelihood is in :class:`~.results.GlmResults`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..design.inputs import ModelInputs
from ..errors import ModelSpecError
from ..families import Family
from ..linalg.lstsq import lstsq

__all__ = ["IrlsSolution", "irls", "null_deviance", "check_estimable"]


def check_estimable(response: Any, name: str) -> None:
    """Refuse a response that is constant on the edge of the family's range (all counts 0, no successes or no failures).

    Its maximum-likelihood coefficients do not exist (they run off to minus
    or plus infinity): IRLS would stop at an intercept near -27 with numpy's
    divide-by-zero warning.  lme4's glmer refuses a constant response in the
    same words; a constant inside the range (every count 3) is fitted, as by R.
    """
    values = response.y[response.weights > 0]
    if not values.size or np.ptp(values) != 0:
        return
    family, value = response.family.name, float(values[0])
    edge = (family == "poisson" and value == 0) or (family == "binomial" and value in (0.0, 1.0))
    if edge:
        what = "proportion of successes" if family == "binomial" else "value"
        raise ModelSpecError(
            f"the response {name!r} is constant (every {what} is {value:g}): a {family} GLM has no estimate "
            "then (its coefficients run off to infinity), and lme4 refuses a constant response too "
            "('Response is constant'); check the response column and the rows kept"
        )


@dataclass(frozen=True)
class IrlsSolution:
    """Where IRLS stopped: coefficients, linear predictor, means, and the last step's weights and R."""

    beta: np.ndarray
    eta: np.ndarray
    mu: np.ndarray
    working_weights: np.ndarray  # W of the last iteration (R's $weights)
    r: np.ndarray  # R of the QR of W^1/2 X in the last iteration
    deviance: float
    iterations: int
    converged: bool


def irls(x: np.ndarray, response: Any, offset: np.ndarray, family: Family, maxit: int, tol: float) -> IrlsSolution:
    link = family.link
    y, prior = response.y, response.weights
    mu = response.mustart()
    eta = link.link(mu)
    dev_old = response.deviance(mu)
    beta = np.zeros(x.shape[1])
    good_rows = prior > 0
    for iteration in range(1, maxit + 1):
        mu_eta = link.mu_eta(eta)
        good = good_rows & (mu_eta != 0)
        z = (eta - offset)[good] + (y - mu)[good] / mu_eta[good]
        working = prior[good] * mu_eta[good] ** 2 / family.variance(mu[good])
        step = lstsq(x[good], z, working, alias=False)
        new_beta, r = step.coef, step.r
        new_eta, new_mu, dev = _evaluate(x, new_beta, offset, family, response)
        halvings = 0
        while not (np.isfinite(dev) and link.valid_eta(new_eta) and family.valid_mu(new_mu)):
            if iteration == 1 or halvings > 30:
                raise ModelSpecError(
                    f"glm: no valid set of coefficients for the {family.name} family with link "
                    f"{link.name!r}; give starting values or choose another link"
                )
            new_beta = (new_beta + beta) / 2
            new_eta, new_mu, dev = _evaluate(x, new_beta, offset, family, response)
            halvings += 1
        weights = np.zeros_like(y)
        weights[good] = working
        beta, eta, mu = new_beta, new_eta, new_mu
        if abs(dev - dev_old) / (abs(dev) + 0.1) < tol:
            return IrlsSolution(beta, eta, mu, weights, r, dev, iteration, True)
        dev_old = dev
    return IrlsSolution(beta, eta, mu, weights, r, dev, maxit, False)


def _evaluate(x: np.ndarray, beta: np.ndarray, offset: np.ndarray, family: Family, response: Any):
    eta = x @ beta + offset
    mu = family.link.inverse(eta)
    with np.errstate(all="ignore"):
        dev = response.deviance(mu)
    return eta, mu, dev


def null_deviance(
    inputs: ModelInputs, response: Any, offset: np.ndarray, family: Family, maxit: int, tol: float
) -> float:
    """Deviance of the intercept-only model (or of the offset alone without an intercept)."""
    if "(Intercept)" not in inputs.fixed.column_names:
        return response.deviance(family.link.inverse(offset))
    if inputs.offset is None:
        w = response.weights
        return response.deviance(np.full_like(response.y, np.sum(w * response.y) / np.sum(w)))
    return irls(np.ones((inputs.nobs, 1)), response, offset, family, maxit, tol).deviance

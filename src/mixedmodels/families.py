"""Response distributions and link functions for generalized linear mixed models.

A family says how the response varies around its mean ``mu`` (the variance
function ``V(mu)`` and the deviance residuals) and a link ``g`` relates the mean
to the linear predictor, ``eta = g(mu)``.  Names, links, clamping and the
log-likelihood constants follow R's ``stats`` families, which lme4's
``glmer`` uses:

======================  ====================================  ===========
family                  links                                 default
======================  ====================================  ===========
``Binomial``            logit, probit, cloglog, cauchit, log  logit
``Poisson``             log, sqrt, identity                   log
``Gamma``               inverse, log, identity                inverse
``InverseGaussian``     1/mu^2, inverse, log, identity        1/mu^2
``Gaussian``            identity, log, inverse                identity
``NegativeBinomial``    log, sqrt, identity                   log
======================  ====================================  ===========

``NegativeBinomial(theta)`` is MASS's ``negative.binomial(theta)`` (lme4's
``glmer.nb`` family): counts with variance ``mu + mu^2 / theta`` for a known
``theta``; :func:`mixedmodels.glmer_nb` estimates it.

>>> import mixedmodels as mm
>>> mm.families.Binomial(link="probit")
Binomial(link='probit')

:meth:`Family.response` validates a response for the family and returns a
:class:`GlmResponse` that evaluates deviance residuals and ``-2 log L`` at any
``mu``; the PIRLS iterations call it thousands of times, so everything that
does not depend on ``mu`` is computed once there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from scipy import special

from .errors import DataError, ModelSpecError
from ._validate import Anything, Text, check_arguments, argument_kinds

__all__ = [
    "Link",
    "Family",
    "Binomial",
    "Poisson",
    "Gamma",
    "InverseGaussian",
    "Gaussian",
    "NegativeBinomial",
    "GlmResponse",
    "get_family",
    "FAMILIES",
    "LINKS",
]

_EPS = np.finfo(float).eps
_LOGIT_BOUND = 30.0
# -qnorm(eps) and -qcauchy(eps) = cot(pi eps), without importing scipy.stats (~17k objects) for two
# constants: the same bits as stats.norm.ppf and stats.cauchy.ppf give.
_PROBIT_BOUND = -special.ndtri(_EPS)
_CAUCHIT_BOUND = 1.0 / (np.pi * _EPS)


# --------------------------------------------------------------------------- links
@dataclass(frozen=True)
class Link:
    """A link function ``eta = g(mu)``, its inverse, ``d mu / d eta`` and ``d^2 mu / d eta^2``.

    ``mu_eta2(eta, mu, mu_eta)`` gets the already computed mean and first
    derivative (it is needed only for the observed information of
    non-canonical links).

    The inverse links are clamped as R's ``make.link`` does, so that the mean
    stays strictly inside the family's range (e.g. ``eps <= mu <= 1 - eps``
    for the logit).
    """

    name: str
    link: Callable[[np.ndarray], np.ndarray]
    inverse: Callable[[np.ndarray], np.ndarray]
    mu_eta: Callable[[np.ndarray], np.ndarray]
    mu_eta2: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    valid_eta: Callable[[np.ndarray], bool] = lambda eta: True

    def __repr__(self) -> str:
        return f"Link({self.name!r})"


def _logit_inverse(eta: np.ndarray) -> np.ndarray:
    # 1 / (1 + exp(-eta)) on the clamped eta: exact there, and much faster than special.expit
    return 1.0 / (1.0 + np.exp(-np.clip(eta, -_LOGIT_BOUND, _LOGIT_BOUND)))


def _logit_mu_eta(eta: np.ndarray) -> np.ndarray:
    mu = special.expit(eta)
    return np.where(np.abs(eta) > _LOGIT_BOUND, _EPS, mu * (1.0 - mu))


def _probit_inverse(eta: np.ndarray) -> np.ndarray:
    return special.ndtr(np.clip(eta, -_PROBIT_BOUND, _PROBIT_BOUND))


def _probit_mu_eta(eta: np.ndarray) -> np.ndarray:
    return np.maximum(np.exp(-0.5 * np.minimum(eta * eta, 1e300)) / np.sqrt(2 * np.pi), _EPS)


def _cloglog_inverse(eta: np.ndarray) -> np.ndarray:
    return np.clip(-np.expm1(-np.exp(np.minimum(eta, 700.0))), _EPS, 1.0 - _EPS)


def _cloglog_mu_eta(eta: np.ndarray) -> np.ndarray:
    e = np.exp(np.minimum(eta, 700.0))
    return np.maximum(e * np.exp(-e), _EPS)


def _cauchit_inverse(eta: np.ndarray) -> np.ndarray:
    return 0.5 + np.arctan(np.clip(eta, -_CAUCHIT_BOUND, _CAUCHIT_BOUND)) / np.pi


def _cauchit_mu_eta(eta: np.ndarray) -> np.ndarray:
    return np.maximum(1.0 / (np.pi * (1.0 + eta * eta)), _EPS)


def _positive(eta: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(eta)) and np.all(eta > 0))


def _nonzero(eta: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(eta)) and np.all(eta != 0))


def _exp_clamped(eta: np.ndarray) -> np.ndarray:
    return np.maximum(np.exp(np.minimum(eta, 700.0)), _EPS)


def _safe(func: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """Evaluate without numpy's divide/overflow warnings (invalid values are checked by the caller)."""

    def wrapped(*args: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return func(*args)

    return wrapped


LINKS: dict[str, Link] = {
    "logit": Link(
        "logit", _safe(special.logit), _logit_inverse, _logit_mu_eta, lambda eta, mu, d1: d1 * (1.0 - 2.0 * mu)
    ),
    "probit": Link("probit", special.ndtri, _probit_inverse, _probit_mu_eta, lambda eta, mu, d1: -eta * d1),
    "cloglog": Link(
        "cloglog",
        _safe(lambda mu: np.log(-np.log1p(-mu))),
        _cloglog_inverse,
        _cloglog_mu_eta,
        lambda eta, mu, d1: d1 * (1.0 - np.exp(np.minimum(eta, 700.0))),
    ),
    "cauchit": Link(
        "cauchit",
        lambda mu: np.tan(np.pi * (mu - 0.5)),
        _cauchit_inverse,
        _cauchit_mu_eta,
        lambda eta, mu, d1: -2.0 * eta * d1 * d1 * np.pi,
    ),
    "log": Link("log", _safe(np.log), _exp_clamped, _exp_clamped, lambda eta, mu, d1: d1),
    "identity": Link(
        "identity",
        lambda mu: np.asarray(mu, dtype=float),
        lambda eta: eta,
        np.ones_like,
        lambda eta, mu, d1: np.zeros_like(eta),
    ),
    # as lme4 (not R's glm), the sign of eta is not restricted: mu = eta^2 whatever it is
    "sqrt": Link(
        "sqrt", np.sqrt, np.square, lambda eta: 2.0 * eta, lambda eta, mu, d1: np.full_like(eta, 2.0), _nonzero
    ),
    "inverse": Link(
        "inverse",
        _safe(np.reciprocal),
        _safe(np.reciprocal),
        _safe(lambda eta: -1.0 / (eta * eta)),
        _safe(lambda eta, mu, d1: 2.0 / eta**3),
        _nonzero,
    ),
    "1/mu^2": Link(
        "1/mu^2",
        _safe(lambda mu: 1.0 / (mu * mu)),
        _safe(lambda eta: 1.0 / np.sqrt(eta)),
        _safe(lambda eta: -1.0 / (2.0 * eta**1.5)),
        _safe(lambda eta, mu, d1: 0.75 / eta**2.5),
        _positive,
    ),
}
_LINK_ALIASES = {"inverse_squared": "1/mu^2", "inverse_square": "1/mu^2"}


# ------------------------------------------------------------------------ families
class Family:
    """A response distribution with a link.  Use the subclasses (``Binomial(link="probit")``).

    Attributes
    ----------
    name : str
        R's family name (``"binomial"``, ``"poisson"``, ``"Gamma"``,
        ``"inverse.gaussian"``, ``"gaussian"``).
    link : Link
    has_dispersion : bool
        Whether the family has a scale parameter that is estimated (Gamma,
        inverse Gaussian, Gaussian); binomial and Poisson fits have sigma 1.
    """

    name: str = ""
    links: tuple[str, ...] = ()
    has_dispersion: bool = False

    @argument_kinds(link=Text(allow_none=True))
    def __init__(self, link: str | None = None):
        if link is not None:  # None, the default link, is of link's kind (Text(allow_none=True)): no check to do
            check_arguments(locals())
        chosen = self.links[0] if link is None else _LINK_ALIASES.get(link, link)
        if chosen not in self.links:
            raise ModelSpecError(
                f"link {link!r} is not available for the {self.name} family; "
                f"choose one of {', '.join(repr(k) for k in self.links)}"
            )
        self.link: Link = LINKS[chosen]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(link={self.link.name!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.link.name == self.link.name

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.link.name))

    @property
    def label(self) -> str:
        """The family as R's summaries print it (``family(m)$family``)."""
        return self.name

    # --- the distribution ------------------------------------------------------
    def variance(self, mu: np.ndarray) -> np.ndarray:
        """Variance function ``V(mu)``."""
        raise NotImplementedError

    def valid_mu(self, mu: np.ndarray) -> bool:
        return bool(np.all(np.isfinite(mu)))

    def variance_deriv(self, mu: np.ndarray) -> np.ndarray:
        """``V'(mu)``, for the observed information of non-canonical links."""
        raise NotImplementedError

    def kernel(self, y: np.ndarray, mu: np.ndarray) -> np.ndarray:
        """The mu-dependent part of the log-likelihood per unit weight, up to the dispersion."""
        raise NotImplementedError

    def saturated(self, y: np.ndarray) -> np.ndarray:
        """``kernel(y, y)``: the kernel of the saturated model."""
        raise NotImplementedError

    def unit_deviance(self, y: np.ndarray, mu: np.ndarray) -> np.ndarray:
        """Squared deviance residuals per unit prior weight, ``2 (kernel(y, y) - kernel(y, mu))``."""
        return 2.0 * (self.saturated(y) - self.kernel(y, mu))

    @property
    def canonical(self) -> bool:
        """Whether the link is the family's canonical one (then observed = expected information)."""
        return self.link.name == self.links[0]

    def mustart(self, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Starting means, as R's ``family$initialize``."""
        return np.asarray(y, dtype=float).copy()

    def _minus2_loglik(self, r: "GlmResponse", mu: np.ndarray, dev: float) -> float:
        raise NotImplementedError

    # --- responses ---------------------------------------------------------------
    def response(self, y: np.ndarray, weights: np.ndarray | None, name: str) -> "GlmResponse":
        """Validate a response for this family and precompute its constants.

        Raises
        ------
        DataError
            Naming ``name`` (the response as written in the formula) when the
            values are impossible for the family.
        """
        y = np.asarray(y, dtype=float)
        if y.ndim != 1:
            raise DataError(
                f"the response {name!r} has two columns; cbind(successes, failures) is only for the binomial family"
            )
        wt = np.ones_like(y) if weights is None else np.asarray(weights, dtype=float)
        self._check(y, name)
        return GlmResponse.make(self, y, wt, np.ones_like(y))

    def _check(self, y: np.ndarray, name: str) -> None:
        pass

    def _constant(self, y: np.ndarray, wt: np.ndarray, m: np.ndarray) -> float:
        """The part of ``-2 log L - deviance`` that does not depend on ``mu``."""
        return 0.0


def _check_integers(values: np.ndarray, name: str, what: str) -> bool:
    """Refuse values more than 1e-7 (relative) from a whole number; True when every one is exactly whole."""
    # (ufuncs' reductions here: the array methods' numbers, without their Python wrappers in numpy's _methods)
    if np.logical_and.reduce(values == values.round()):  # whole numbers already (usual): none is off by 1e-7
        return True
    bad = np.flatnonzero(np.abs(values - np.round(values)) > 1e-7 * np.maximum(1.0, np.abs(values)))
    if bad.size:
        raise DataError(f"the response {name!r} must be {what}; row {bad[0]} has {values[bad[0]]:g}")
    return False


def _log_binomial(k: np.ndarray, f: np.ndarray, m: np.ndarray, k_share: np.ndarray, f_share: np.ndarray) -> np.ndarray:
    """``log dbinom(k, m, k / m)`` per row, for ``k`` successes and ``f = m - k`` failures of ``m``:
    ``log choose(m, k) + k log(k / m) + f log(f / m)`` (``k_share``, ``f_share``: ``k / m``, ``f / m``)."""
    log_choose = special.gammaln(m + 1) - special.gammaln(k + 1) - special.gammaln(f + 1)
    saturated = special.xlogy(k, k_share)
    saturated += special.xlogy(f, f_share)
    return log_choose + saturated


class Binomial(Family):
    """Binomial responses: 0/1, booleans, two-level factors, ``cbind(successes, failures)``
    or proportions with ``weights=`` the numbers of trials.  Default link logit."""

    name = "binomial"
    links = ("logit", "probit", "cloglog", "cauchit", "log")

    def variance(self, mu: np.ndarray) -> np.ndarray:
        return mu * (1.0 - mu)

    def valid_mu(self, mu: np.ndarray) -> bool:
        return bool(np.all(np.isfinite(mu)) and np.all((mu > 0) & (mu < 1)))

    def variance_deriv(self, mu: np.ndarray) -> np.ndarray:
        return 1.0 - 2.0 * mu

    def kernel(self, y: np.ndarray, mu: np.ndarray) -> np.ndarray:
        return special.xlogy(y, mu) + special.xlog1py(1.0 - y, -mu)

    def saturated(self, y: np.ndarray) -> np.ndarray:
        return special.xlogy(y, y) + special.xlogy(1.0 - y, 1.0 - y)

    def mustart(self, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return (weights * y + 0.5) / (weights + 1.0)

    def response(self, y: np.ndarray, weights: np.ndarray | None, name: str) -> "GlmResponse":
        """``cbind(s, f)`` becomes proportions with weights ``s + f`` (times any prior weights)."""
        y = np.asarray(y, dtype=float)
        if y.ndim == 2:
            return self._counts_response(y, weights, name)
        prior = np.ones(y.shape[0]) if weights is None else np.asarray(weights, dtype=float)
        if np.any((y < 0) | (y > 1)):
            bad = np.flatnonzero((y < 0) | (y > 1))[0]
            raise DataError(
                f"the response {name!r} must be between 0 and 1 for the binomial family (row {bad} has {y[bad]:g}); "
                "give 0/1 values, a two-level factor, proportions with weights= trials, or cbind(successes, failures)"
            )
        y = np.where(prior == 0, 0.0, y)
        _check_integers(prior * y, name, "a whole number of successes (proportion times weights)")
        return GlmResponse.make(self, y, prior, prior)

    def _counts_response(self, counts: np.ndarray, weights: np.ndarray | None, name: str) -> "GlmResponse":
        """``cbind(s, f)``: proportions ``s / (s + f)`` with weights ``s + f`` times any prior weights.

        Whole counts without prior weights and with trials in every row (the
        usual case) give the constant from the counts themselves: the same
        numbers as :meth:`_constant` (there ``m y`` rounds back to ``s``, and the
        weight ratio is one), without recovering them from the proportions.
        """
        if np.logical_or.reduce(counts < 0, axis=None):  # (ndarray.any's reduction, without its wrapper)
            raise DataError(f"the response {name!r} has negative counts; cbind() needs successes and failures >= 0")
        whole = _check_integers(counts.ravel(), name, "whole numbers of successes and failures")
        successes, failures = counts[:, 0], counts[:, 1]
        trials = successes + failures  # (two columns: the same sum as counts.sum(axis=1))
        if weights is None and whole and np.logical_and.reduce(trials):  # (trials.all())
            prop = successes / trials
            log_dbinom = _log_binomial(successes, failures, trials, prop, failures / trials)
            constant = float(-2.0 * np.add.reduce(log_dbinom))  # (log_dbinom.sum(), the same pairwise sum)
            return GlmResponse.make(self, prop, trials, trials, constant=constant)
        prior = np.ones(counts.shape[0]) if weights is None else np.asarray(weights, dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            prop = np.where(trials > 0, successes / np.where(trials > 0, trials, 1.0), 0.0)
        wt = prior * trials
        m = trials if np.any(trials > 1) else wt
        return GlmResponse.make(self, prop, wt, m)

    def _constant(self, y: np.ndarray, wt: np.ndarray, m: np.ndarray) -> float:
        # -2 sum (wt/m) log dbinom(k, m, mu) = deviance + this, when k = m y is whole
        mr = np.round(m)
        k = np.round(m * y)
        f = mr - k
        ratio = np.divide(wt, m, out=np.zeros_like(wt), where=m > 0)
        k_share = np.divide(k, mr, out=np.zeros_like(k), where=mr > 0)
        f_share = np.divide(f, mr, out=np.zeros_like(k), where=mr > 0)
        return float(-2.0 * np.sum(ratio * _log_binomial(k, f, mr, k_share, f_share)))

    def _minus2_loglik(self, r: "GlmResponse", mu: np.ndarray, dev: float) -> float:
        return dev + r.constant


class Poisson(Family):
    """Counts: non-negative whole numbers.  Default link log."""

    name = "poisson"
    links = ("log", "sqrt", "identity")

    def variance(self, mu: np.ndarray) -> np.ndarray:
        return mu

    def valid_mu(self, mu: np.ndarray) -> bool:
        return bool(np.all(np.isfinite(mu)) and np.all(mu > 0))

    def variance_deriv(self, mu: np.ndarray) -> np.ndarray:
        return np.ones_like(mu)

    def kernel(self, y: np.ndarray, mu: np.ndarray) -> np.ndarray:
        return y * np.log(mu) - mu

    def saturated(self, y: np.ndarray) -> np.ndarray:
        return special.xlogy(y, y) - y

    def mustart(self, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return y + 0.1

    def _check(self, y: np.ndarray, name: str) -> None:
        if (y < 0).any():
            bad = np.flatnonzero(y < 0)[0]
            raise DataError(
                f"the response {name!r} has a negative count (row {bad}: {y[bad]:g}); Poisson counts must be >= 0"
            )
        _check_integers(y, name, "whole-number counts for the Poisson family")

    def _constant(self, y: np.ndarray, wt: np.ndarray, m: np.ndarray) -> float:
        return float(-2.0 * (wt * (special.xlogy(y, y) - y - special.gammaln(y + 1))).sum())

    def _minus2_loglik(self, r: "GlmResponse", mu: np.ndarray, dev: float) -> float:
        return dev + r.constant


class _PositiveFamily(Family):
    """Shared check of the positive continuous families."""

    has_dispersion = True

    def valid_mu(self, mu: np.ndarray) -> bool:
        return bool(np.all(np.isfinite(mu)) and np.all(mu > 0))

    def _check(self, y: np.ndarray, name: str) -> None:
        if np.any(y <= 0):
            bad = np.flatnonzero(y <= 0)[0]
            raise DataError(
                f"the response {name!r} must be positive for the {self.name} family (row {bad} has {y[bad]:g})"
            )


class Gamma(_PositiveFamily):
    """Positive continuous responses with variance ``phi mu^2``.  Default link inverse."""

    name = "Gamma"
    links = ("inverse", "log", "identity")

    def variance(self, mu: np.ndarray) -> np.ndarray:
        return mu * mu

    def variance_deriv(self, mu: np.ndarray) -> np.ndarray:
        return 2.0 * mu

    def kernel(self, y: np.ndarray, mu: np.ndarray) -> np.ndarray:
        return -np.log(mu) - y / mu

    def saturated(self, y: np.ndarray) -> np.ndarray:
        return -np.log(y) - 1.0

    def _minus2_loglik(self, r: "GlmResponse", mu: np.ndarray, dev: float) -> float:
        # R's Gamma()$aic: dispersion dev / sum(wt), plus 2 for it
        disp = dev / np.sum(r.weights)
        shape = 1.0 / disp
        logpdf = (shape - 1.0) * np.log(r.y) - r.y / (mu * disp) - special.gammaln(shape) - shape * np.log(mu * disp)
        return float(-2.0 * np.sum(r.weights * logpdf) + 2.0)


class InverseGaussian(_PositiveFamily):
    """Positive continuous responses with variance ``phi mu^3``.  Default link 1/mu^2."""

    name = "inverse.gaussian"
    links = ("1/mu^2", "inverse", "log", "identity")

    def variance(self, mu: np.ndarray) -> np.ndarray:
        return mu**3

    def variance_deriv(self, mu: np.ndarray) -> np.ndarray:
        return 3.0 * mu * mu

    def kernel(self, y: np.ndarray, mu: np.ndarray) -> np.ndarray:
        return -0.5 * (y - mu) ** 2 / (y * mu * mu)

    def saturated(self, y: np.ndarray) -> np.ndarray:
        return np.zeros_like(y)

    def _minus2_loglik(self, r: "GlmResponse", mu: np.ndarray, dev: float) -> float:
        total = np.sum(r.weights)
        return float(total * (np.log(dev / total * 2 * np.pi) + 1.0) + 3.0 * np.sum(np.log(r.y) * r.weights) + 2.0)


class Gaussian(Family):
    """Normal responses; with a non-identity link a GLMM, with identity use :func:`mixedmodels.lmer`."""

    name = "gaussian"
    links = ("identity", "log", "inverse")
    has_dispersion = True

    def variance(self, mu: np.ndarray) -> np.ndarray:
        return np.ones_like(mu)

    def variance_deriv(self, mu: np.ndarray) -> np.ndarray:
        return np.zeros_like(mu)

    def kernel(self, y: np.ndarray, mu: np.ndarray) -> np.ndarray:
        return -0.5 * (y - mu) ** 2

    def saturated(self, y: np.ndarray) -> np.ndarray:
        return np.zeros_like(y)

    def _minus2_loglik(self, r: "GlmResponse", mu: np.ndarray, dev: float) -> float:
        nobs = r.y.size
        logw = np.log(r.weights[r.weights > 0]).sum()
        return float(nobs * (np.log(2 * np.pi * dev / nobs) + 1.0) + 2.0 - logw)


class NegativeBinomial(Family):
    """Overdispersed counts with variance ``mu + mu^2 / theta`` (MASS's ``negative.binomial(theta)``,
    glmmTMB's ``nbinom2``) for a known ``theta > 0``.  Default link log.

    ``-2 log L`` has the normalising constants of R's ``family$aic``; there is no
    dispersion to estimate (sigma is 1, as lme4's).  The log link is not the
    canonical one, so PIRLS weights are the expected information
    ``mu_eta^2 / V(mu)`` (lme4's).
    """

    name = "Negative Binomial"
    links = ("log", "sqrt", "identity")

    @argument_kinds(
        theta=Anything("checked below: 'negative binomial theta ... must be a positive number'"),
        link=Text(allow_none=True),
    )
    def __init__(self, theta: float, link: str | None = None):
        check_arguments(locals())
        if (
            isinstance(theta, bool)
            or not isinstance(theta, (int, float, np.integer, np.floating))
            or not (np.isfinite(theta) and theta > 0)
        ):
            raise ModelSpecError(
                f"the negative binomial theta (its size: variance mu + mu^2 / theta) must be a positive number, "
                f"got theta={theta!r}; use mm.glmer_nb() to estimate it"
            )
        super().__init__(link)
        self.theta = float(theta)

    def __repr__(self) -> str:
        return f"NegativeBinomial(theta={self.theta!r}, link={self.link.name!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.link.name == self.link.name and other.theta == self.theta

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.link.name, self.theta))

    @property
    def label(self) -> str:
        """MASS's ``Negative Binomial(3.3034)`` (theta rounded to 4 decimals)."""
        return f"Negative Binomial({round(self.theta, 4):.15g})"

    @property
    def canonical(self) -> bool:
        return False  # the canonical link would be log(mu / (mu + theta))

    def with_theta(self, theta: float) -> "NegativeBinomial":
        return NegativeBinomial(theta, link=self.link.name)

    def variance(self, mu: np.ndarray) -> np.ndarray:
        return mu + mu * mu / self.theta

    def valid_mu(self, mu: np.ndarray) -> bool:
        return bool(np.all(np.isfinite(mu)) and np.all(mu > 0))

    def variance_deriv(self, mu: np.ndarray) -> np.ndarray:
        return 1.0 + 2.0 * mu / self.theta

    def kernel(self, y: np.ndarray, mu: np.ndarray) -> np.ndarray:
        return special.xlogy(y, mu) - (y + self.theta) * np.log(mu + self.theta)

    def saturated(self, y: np.ndarray) -> np.ndarray:
        return special.xlogy(y, y) - (y + self.theta) * np.log(y + self.theta)

    def mustart(self, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return y + (y == 0) / 6.0  # MASS's negative.binomial()$initialize

    def _check(self, y: np.ndarray, name: str) -> None:
        if np.any(y < 0):
            bad = np.flatnonzero(y < 0)[0]
            raise DataError(
                f"the response {name!r} has a negative count (row {bad}: {y[bad]:g}); "
                "negative binomial counts must be >= 0"
            )
        _check_integers(y, name, "whole-number counts for the negative binomial family")

    def log_theta_derivatives(self, y: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per observation at fixed mu, with respect to ``log theta``: ``d log p(y | mu) / d log theta``
        (``theta [psi(y + theta) - psi(theta) + log theta + 1 - log(mu + theta) - (y + theta) / (mu + theta)]``)
        and ``dV / d log theta = -mu^2 / theta`` (the Laplace gradient's, :mod:`.linalg.laplace_gradient_links`)."""
        t = self.theta
        dlogp = t * (
            special.digamma(y + t) - special.digamma(t) + np.log(t) + 1.0 - np.log(mu + t) - (y + t) / (mu + t)
        )
        return dlogp, -mu * mu / t

    def log_density_constant(self, y: np.ndarray) -> np.ndarray:
        """The part of ``log p(y | mu)`` without mu: ``lgamma(y + theta) - lgamma(theta) - lgamma(y + 1) + theta log theta``."""
        t = self.theta
        return special.gammaln(y + t) - special.gammaln(t) - special.gammaln(y + 1.0) + t * np.log(t)

    def _constant(self, y: np.ndarray, wt: np.ndarray, m: np.ndarray) -> float:
        return float(-2.0 * np.sum(wt * (self.log_density_constant(y) + self.saturated(y))))

    def _minus2_loglik(self, r: "GlmResponse", mu: np.ndarray, dev: float) -> float:
        return dev + r.constant


FAMILIES: dict[str, type[Family]] = {
    "binomial": Binomial,
    "poisson": Poisson,
    "gamma": Gamma,
    "inverse_gaussian": InverseGaussian,
    "inverse.gaussian": InverseGaussian,
    "gaussian": Gaussian,
}


@argument_kinds(link=Text(allow_none=True))
def get_family(family: Any, link: str | None = None) -> Family:
    """A family object from a name (``"binomial"``, ``"poisson"``, ``"Gamma"``, ...) or a family.

    Raises
    ------
    ModelSpecError
        For an unknown family or a link the family does not offer; the
        message lists the choices.
    """
    if link is None and isinstance(family, Family):
        return family  # already a family: nothing to check (glmer's fit asks three times)
    check_arguments(locals())
    return family_of(family, link)


def family_of(family: Any, link: str | None = None) -> Family:
    """:func:`get_family` for a caller that checked ``family``'s kind already (glmer checks its arguments
    once) and passes a link only when it is a string or None."""
    if isinstance(family, Family):
        if link is not None and link != family.link.name:
            return (
                NegativeBinomial(family.theta, link)
                if isinstance(family, NegativeBinomial)
                else type(family)(link=link)
            )
        return family
    if isinstance(family, type) and issubclass(family, NegativeBinomial):
        raise ModelSpecError(
            "the negative binomial family needs its theta: family=mm.families.NegativeBinomial(theta=...) for "
            "a known theta, or mm.glmer_nb(formula, data) to estimate it"
        )
    if isinstance(family, type) and issubclass(family, Family):
        return family(link=link)
    if isinstance(family, str):
        cls = FAMILIES.get(family.strip().lower())
        if cls is not None:
            return cls(link=link)
        if family.strip().lower().replace(".", "_").replace(" ", "_") in ("negative_binomial", "nbinom2", "negbin"):
            raise ModelSpecError(
                "the negative binomial family needs its theta: family=mm.families.NegativeBinomial(theta=...) for "
                "a known theta, or mm.glmer_nb(formula, data) to estimate it"
            )
    names = ["binomial", "poisson", "Gamma", "inverse_gaussian", "gaussian"]
    raise ModelSpecError(
        f"unknown family {family!r}; choose one of {', '.join(repr(n) for n in names)} "
        "or a family object such as mm.families.Binomial(link='probit')"
    )


# ------------------------------------------------------------------------ responses
@dataclass(frozen=True, eq=False)
class GlmResponse:
    """A validated response for one family: what the PIRLS iterations evaluate.

    The squared deviance residuals are ``2 wt (kernel(y, y) - kernel(y, mu))``;
    the saturated part is summed once here, so a deviance costs one kernel
    evaluation and a dot product.

    Attributes
    ----------
    family : Family
    y : ndarray
        Response on the mean scale (proportions for binomial).
    weights : ndarray
        Prior weights (for ``cbind`` binomial responses: trials times any
        user weights).
    trials : ndarray
        R's ``m`` in the binomial log-likelihood (ones otherwise).
    constant : float
        ``-2 log L - deviance`` for binomial and Poisson (independent of mu).
    """

    family: Family
    y: np.ndarray
    weights: np.ndarray
    trials: np.ndarray
    constant: float
    saturated: np.ndarray
    saturated_sum: float
    binary: np.ndarray | None  # y == 1 for 0/1 binomial responses (fast kernel)
    natural: bool = False  # mu_eta equals V(mu): logit link for binomial, log link for Poisson
    always_valid: bool = False  # the clamped inverse link keeps mu inside the family's range

    @classmethod
    def make(
        cls, family: Family, y: np.ndarray, weights: np.ndarray, trials: np.ndarray, constant: float | None = None
    ) -> "GlmResponse":
        """The response with its constants; ``constant``: the family's, when the caller has it already."""
        sat = family.saturated(y)
        binary = None
        if isinstance(family, Binomial) and np.logical_and.reduce((y == 0) | (y == 1)):  # (.all())
            binary = y == 1
        # R clamps mu_eta at eps where |eta| > 30 (logit) and exp(eta) at eps (log); with eta
        # clamped the same, V(mu) differs from those only at weights below 1e-13.
        natural = (family.name, family.link.name) in (("binomial", "logit"), ("poisson", "log"))
        always_valid = (
            family.name == "binomial" and family.link.name in ("logit", "probit", "cloglog", "cauchit")
        ) or (
            family.name in ("poisson", "Gamma", "inverse.gaussian", "Negative Binomial") and family.link.name == "log"
        )
        return cls(
            family,
            y,
            weights,
            trials,
            family._constant(y, weights, trials) if constant is None else constant,
            sat,
            float(weights @ sat),
            binary,
            natural,
            always_valid,
        )

    def kernel(self, mu: np.ndarray) -> np.ndarray:
        if self.binary is not None:
            return np.log(np.where(self.binary, mu, 1.0 - mu))
        return self.family.kernel(self.y, mu)

    def mustart(self) -> np.ndarray:
        return self.family.mustart(self.y, self.weights)

    def dev_resid(self, mu: np.ndarray) -> np.ndarray:
        """Squared deviance residuals ``wt * d(y, mu)`` per observation."""
        return 2.0 * self.weights * (self.saturated - self.kernel(mu))

    def deviance(self, mu: np.ndarray) -> float:
        return 2.0 * (self.saturated_sum - float(self.weights @ self.kernel(mu)))

    def minus2_loglik(self, mu: np.ndarray, dev: float | None = None) -> float:
        """``-2 log L`` of the conditional distribution, as R's ``family$aic``."""
        dev = self.deviance(mu) if dev is None else dev
        return self.family._minus2_loglik(self, mu, dev)

    def pearson(self, mu: np.ndarray) -> np.ndarray:
        return (self.y - mu) * np.sqrt(self.weights / self.family.variance(mu))

    def observed_weights(self, eta: np.ndarray, mu: np.ndarray) -> np.ndarray:
        """The observed information per observation, ``-d^2 log p(y | eta) / d eta^2``:
        ``wt [mu_eta^2 / V - (y - mu) d/deta(mu_eta / V)]`` (may be negative for a non-canonical link)."""
        link, family = self.family.link, self.family
        d1 = link.mu_eta(eta)
        var = family.variance(mu)
        slope = link.mu_eta2(eta, mu, d1) / var - d1 * d1 * family.variance_deriv(mu) / (var * var)
        return self.weights * (d1 * d1 / var - (self.y - mu) * slope)

    def working_weights(self, eta: np.ndarray, mu: np.ndarray, observed: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """PIRLS weights and ``(y - mu) / mu_eta``-type working residuals at eta.

        Expected information (Fisher scoring, lme4's weights):
        ``w = wt mu_eta^2 / V``, residual ``(y - mu) / mu_eta``.  With
        ``observed=True`` the weights are the observed information
        ``wt [mu_eta^2 / V - (y - mu) d/deta(mu_eta / V)]`` where that is
        positive (a Newton step), and the residual is the score over it.
        """
        link, family = self.family.link, self.family
        resid = self.y - mu
        if self.natural:  # logit-binomial, log-Poisson: mu_eta = V(mu) (R's clamps aside, see __init__)
            var = family.variance(mu)
            return self.weights * var, resid / var
        d1 = link.mu_eta(eta)
        var = family.variance(mu)
        w = self.weights * d1 * d1 / var
        if not observed:
            return w, resid / d1
        d2 = link.mu_eta2(eta, mu, d1)
        slope = d2 / var - d1 * d1 * family.variance_deriv(mu) / (var * var)
        w_obs = w - self.weights * resid * slope
        use = np.where(w_obs > 1e-3 * w, w_obs, w)
        score = self.weights * resid * d1 / var
        return use, np.divide(score, use, out=np.zeros_like(score), where=use > 0)  # rows of weight 0: no score

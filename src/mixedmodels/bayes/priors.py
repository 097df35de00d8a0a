"""Prior distributions for Bayesian mixed models (:mod:`mixedmodels.bayes`).

A prior is a small immutable object such as ``Normal(0, 1000)`` or
``HalfCauchy(0, 100)``.  ``mm.bayes.lmer(..., priors={...})`` takes them per
parameter class, and within a class per coefficient or grouping factor::

    priors = {
        "fixef": {"Days": Normal(10, 5), "(Intercept)": Normal(250, 100)},  # or one prior for all
        "sd": HalfCauchy(0, 100),          # every random-effect SD; or {"Subject": ..., ("Subject", "Days"): ...}
        "cor": LKJ(2),                     # correlation matrices; or {"Subject": LKJ(2)}
        "sigma": HalfCauchy(0, 100),       # residual SD (Gaussian models)
    }

Anything not given gets the data-scaled default below.

Weakly-informative defaults (as rstanarm and brms, scaled to the data)
-----------------------------------------------------------------------
Let ``s_y`` be the sample SD of the response for Gaussian models and 1 for
binomial and Poisson models (their linear predictor is already on a unit
scale), ``s_x`` the SD of a fixed-effects column and ``s_z`` the SD of a
random-effects column (1 for a constant column such as the intercept).

==========================  ================================================
parameter                   default prior
==========================  ================================================
``(Intercept)``             ``Normal(g(ybar), 2.5 s_y)`` on the intercept
                            with the other predictors at their means
                            (``g`` is the link; rstanarm's and brms'
                            convention of centring the predictors)
other fixed effects         ``Normal(0, 2.5 s_y / s_x)`` (rstanarm's autoscale)
random-effect SDs           ``HalfStudentT(3, 0, 2.5 s_y / s_z)`` (brms' choice,
                            scaled per column)
correlation matrices        ``LKJ(1)``: uniform over correlation matrices
residual SD ``sigma``       ``Exponential(1 / s_y)`` (rstanarm)
==========================  ================================================

:func:`default_priors` returns these for a model; a fitted model's
``prior_summary()`` lists the priors actually used.

The point mass ``Fixed(value)`` holds a parameter at a known value (for
example variance components at lme4's estimates, or a no-pooling model whose
group effects have a fixed, diffuse SD); ``Flat()`` is the improper uniform
prior on the real line (allowed for fixed effects, but not with
``prior_only=True``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from scipy import stats

from ..errors import ModelSpecError
from .._validate import Instance, Real, Text, TextList, argument_kinds, check_arguments

__all__ = [
    "Prior",
    "Normal",
    "StudentT",
    "Cauchy",
    "Flat",
    "HalfNormal",
    "HalfCauchy",
    "HalfStudentT",
    "Exponential",
    "Gamma",
    "InverseGamma",
    "Uniform",
    "LKJ",
    "Fixed",
    "default_priors",
    "PRIOR_CLASSES",
]

PRIOR_CLASSES = ("fixef", "sd", "cor", "sigma")


def _finite(value: Any, name: str, positive: bool = False) -> float:
    """A prior parameter as a float: a real number (not a bool, not text), finite, and positive if asked."""
    need = "a positive finite number" if positive else "a finite number"
    if isinstance(value, (bool, np.bool_, str, bytes)):
        raise ModelSpecError(f"{name} (a prior parameter) must be {need}, not {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ModelSpecError(f"{name} (a prior parameter) must be {need}, not {value!r}") from None
    if not math.isfinite(number) or (positive and number <= 0):
        raise ModelSpecError(f"{name} (a prior parameter) must be {need}, not {value!r}")
    return number


def _fmt(x: float) -> str:
    return f"{x:.4g}"


@dataclass(frozen=True, repr=False)
class Prior:
    """Base class of the priors.

    Subclasses define ``kind`` (the name the sampler knows), ``support``
    (``"real"``, ``"positive"``, ``"interval"``, ``"corr"`` or ``"point"``),
    :meth:`params` (the numbers the density needs), :meth:`logpdf` and
    :meth:`sample` (both with NumPy/SciPy, used for prior draws and tests).
    """

    kind = ""
    support = "real"

    def params(self) -> tuple[float, ...]:
        return ()

    def logpdf(self, x: Any) -> np.ndarray:
        """Log density at ``x`` (normalised; for LKJ at a Cholesky factor, up to a constant)."""
        raise NotImplementedError

    def sample(self, rng: np.random.Generator, size: Any = None) -> np.ndarray:
        """Independent draws with a NumPy generator."""
        raise NotImplementedError

    @property
    def proper(self) -> bool:
        return True

    def __str__(self) -> str:
        return f"{type(self).__name__}({', '.join(_fmt(p) for p in self.params())})"

    def __repr__(self) -> str:
        return str(self)


# --------------------------------------------------------------------------- real line
@dataclass(frozen=True, repr=False)
class Normal(Prior):
    """``Normal(mean, sd)``: density ``exp(-(x - mean)^2 / (2 sd^2)) / (sd sqrt(2 pi))``.

    ``Normal(0, 1000)`` is the classic diffuse prior ``N(0, 1000^2)`` on a coefficient.
    """

    mean: float = 0.0
    sd: float = 1.0
    kind = "normal"

    @argument_kinds(mean=Real(), sd=Real(0.0, low_open=True))  # checked by the body (_finite); the kinds say the same
    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", _finite(self.mean, "mean"))
        object.__setattr__(self, "sd", _finite(self.sd, "sd", positive=True))

    def params(self) -> tuple[float, ...]:
        return (self.mean, self.sd)

    def logpdf(self, x: Any) -> np.ndarray:
        return stats.norm.logpdf(x, self.mean, self.sd)

    def sample(self, rng: np.random.Generator, size: Any = None) -> np.ndarray:
        return rng.normal(self.mean, self.sd, size)


@dataclass(frozen=True, repr=False)
class StudentT(Prior):
    """``StudentT(df, location, scale)``: Student's t, heavier tails than the normal."""

    df: float = 3.0
    location: float = 0.0
    scale: float = 1.0
    kind = "student_t"

    @argument_kinds(
        df=Real(0.0, low_open=True), location=Real(), scale=Real(0.0, low_open=True)
    )  # checked by the body (_finite); the kinds say the same
    def __post_init__(self) -> None:
        object.__setattr__(self, "df", _finite(self.df, "df", positive=True))
        object.__setattr__(self, "location", _finite(self.location, "location"))
        object.__setattr__(self, "scale", _finite(self.scale, "scale", positive=True))

    def params(self) -> tuple[float, ...]:
        return (self.df, self.location, self.scale)

    def logpdf(self, x: Any) -> np.ndarray:
        return stats.t.logpdf(x, self.df, self.location, self.scale)

    def sample(self, rng: np.random.Generator, size: Any = None) -> np.ndarray:
        return self.location + self.scale * rng.standard_t(self.df, size)


@dataclass(frozen=True, repr=False)
class Cauchy(Prior):
    """``Cauchy(location, scale)``: Student's t with one degree of freedom."""

    location: float = 0.0
    scale: float = 1.0
    kind = "cauchy"

    @argument_kinds(
        location=Real(), scale=Real(0.0, low_open=True)
    )  # checked by the body (_finite); the kinds say the same
    def __post_init__(self) -> None:
        object.__setattr__(self, "location", _finite(self.location, "location"))
        object.__setattr__(self, "scale", _finite(self.scale, "scale", positive=True))

    def params(self) -> tuple[float, ...]:
        return (self.location, self.scale)

    def logpdf(self, x: Any) -> np.ndarray:
        return stats.cauchy.logpdf(x, self.location, self.scale)

    def sample(self, rng: np.random.Generator, size: Any = None) -> np.ndarray:
        return self.location + self.scale * rng.standard_cauchy(size)


@dataclass(frozen=True, repr=False)
class Flat(Prior):
    """The improper uniform prior on the real line (fixed effects only).

    The posterior is then proportional to the likelihood in that
    coefficient; it cannot be sampled from, so ``prior_only=True`` refuses it.
    """

    kind = "flat"

    @property
    def proper(self) -> bool:
        return False

    def logpdf(self, x: Any) -> np.ndarray:
        return np.zeros(np.shape(x))

    def sample(self, rng: np.random.Generator, size: Any = None) -> np.ndarray:
        raise ModelSpecError("Flat() is improper and has no draws; give a proper prior for prior_only=True")


# --------------------------------------------------------------------------- half-line
def _half_args(cls_name: str, args: tuple) -> float:
    """``Half*(scale)`` or ``Half*(0, scale)`` (R's cauchy(0, 100) spelling)."""
    if len(args) == 1:
        return _finite(args[0], "scale", positive=True)
    if len(args) == 2:
        if _finite(args[0], "location") != 0.0:
            raise ModelSpecError(
                f"{cls_name}(location, scale) is folded at 0 and needs location 0, got {args[0]!r}; "
                f"write {cls_name}(0, scale) or {cls_name}(scale)"
            )
        return _finite(args[1], "scale", positive=True)
    raise ModelSpecError(f"{cls_name} takes (scale) or (0, scale), got {len(args)} arguments")


class _Half(Prior):
    support = "positive"

    @argument_kinds(scale=Real())
    def __init__(self, *scale: float) -> None:
        object.__setattr__(self, "scale", _half_args(type(self).__name__, scale))

    def params(self) -> tuple[float, ...]:
        return (self.scale,)

    def __str__(self) -> str:
        return f"{type(self).__name__}(0, {_fmt(self.scale)})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.params() == self.params()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.params()))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")


class HalfNormal(_Half):
    """``HalfNormal(scale)`` or ``HalfNormal(0, scale)``: ``|N(0, scale^2)|``, a standard deviation's prior."""

    kind = "half_normal"

    def logpdf(self, x: Any) -> np.ndarray:
        return stats.halfnorm.logpdf(x, 0.0, self.scale)

    def sample(self, rng: np.random.Generator, size: Any = None) -> np.ndarray:
        return np.abs(rng.normal(0.0, self.scale, size))


class HalfCauchy(_Half):
    """``HalfCauchy(0, scale)`` (or ``HalfCauchy(scale)``): Gelman's (2006) prior for group-level SDs.

    ``HalfCauchy(0, 100)`` is the diffuse choice of the classic teaching material.
    """

    kind = "half_cauchy"

    def logpdf(self, x: Any) -> np.ndarray:
        return stats.halfcauchy.logpdf(x, 0.0, self.scale)

    def sample(self, rng: np.random.Generator, size: Any = None) -> np.ndarray:
        return np.abs(self.scale * rng.standard_cauchy(size))


class HalfStudentT(_Half):
    """``HalfStudentT(df, 0, scale)`` (or ``HalfStudentT(df, scale)``): brms' default for SDs."""

    kind = "half_student_t"

    @argument_kinds(df=Real(0.0, low_open=True), scale=Real())
    def __init__(self, df: float, *scale: float) -> None:
        object.__setattr__(self, "df", _finite(df, "df", positive=True))
        object.__setattr__(self, "scale", _half_args("HalfStudentT", scale) if scale else 1.0)

    def params(self) -> tuple[float, ...]:
        return (self.df, self.scale)

    def __str__(self) -> str:
        return f"HalfStudentT({_fmt(self.df)}, 0, {_fmt(self.scale)})"

    def logpdf(self, x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        return np.where(x >= 0, np.log(2.0) + stats.t.logpdf(x, self.df, 0.0, self.scale), -np.inf)

    def sample(self, rng: np.random.Generator, size: Any = None) -> np.ndarray:
        return np.abs(self.scale * rng.standard_t(self.df, size))


@dataclass(frozen=True, repr=False)
class Exponential(Prior):
    """``Exponential(rate)``: mean ``1 / rate``; rstanarm's default for sigma."""

    rate: float = 1.0
    kind = "exponential"
    support = "positive"

    @argument_kinds(rate=Real(0.0, low_open=True))  # checked by the body (_finite); the kinds say the same
    def __post_init__(self) -> None:
        object.__setattr__(self, "rate", _finite(self.rate, "rate", positive=True))

    def params(self) -> tuple[float, ...]:
        return (self.rate,)

    def logpdf(self, x: Any) -> np.ndarray:
        return stats.expon.logpdf(x, 0.0, 1.0 / self.rate)

    def sample(self, rng: np.random.Generator, size: Any = None) -> np.ndarray:
        return rng.exponential(1.0 / self.rate, size)


@dataclass(frozen=True, repr=False)
class Gamma(Prior):
    """``Gamma(shape, rate)``: mean ``shape / rate``."""

    shape: float = 2.0
    rate: float = 1.0
    kind = "gamma"
    support = "positive"

    @argument_kinds(
        shape=Real(0.0, low_open=True), rate=Real(0.0, low_open=True)
    )  # checked by the body (_finite); the kinds say the same
    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", _finite(self.shape, "shape", positive=True))
        object.__setattr__(self, "rate", _finite(self.rate, "rate", positive=True))

    def params(self) -> tuple[float, ...]:
        return (self.shape, self.rate)

    def logpdf(self, x: Any) -> np.ndarray:
        return stats.gamma.logpdf(x, self.shape, 0.0, 1.0 / self.rate)

    def sample(self, rng: np.random.Generator, size: Any = None) -> np.ndarray:
        return rng.gamma(self.shape, 1.0 / self.rate, size)


@dataclass(frozen=True, repr=False)
class InverseGamma(Prior):
    """``InverseGamma(shape, scale)``: ``1 / Gamma(shape, rate=scale)``."""

    shape: float = 1.0
    scale: float = 1.0
    kind = "inverse_gamma"
    support = "positive"

    @argument_kinds(
        shape=Real(0.0, low_open=True), scale=Real(0.0, low_open=True)
    )  # checked by the body (_finite); the kinds say the same
    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", _finite(self.shape, "shape", positive=True))
        object.__setattr__(self, "scale", _finite(self.scale, "scale", positive=True))

    def params(self) -> tuple[float, ...]:
        return (self.shape, self.scale)

    def logpdf(self, x: Any) -> np.ndarray:
        return stats.invgamma.logpdf(x, self.shape, 0.0, self.scale)

    def sample(self, rng: np.random.Generator, size: Any = None) -> np.ndarray:
        return 1.0 / rng.gamma(self.shape, 1.0 / self.scale, size)


@dataclass(frozen=True, repr=False)
class Uniform(Prior):
    """``Uniform(lower, upper)``: flat on an interval (e.g. ``Uniform(0, 100)`` for an SD)."""

    lower: float = 0.0
    upper: float = 1.0
    kind = "uniform"
    support = "interval"

    @argument_kinds(lower=Real(), upper=Real())  # checked by the body (_finite); the kinds say the same
    def __post_init__(self) -> None:
        lower, upper = _finite(self.lower, "lower"), _finite(self.upper, "upper")
        if upper <= lower:
            raise ModelSpecError(f"Uniform(lower, upper) needs lower < upper, got ({lower:g}, {upper:g})")
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)

    def params(self) -> tuple[float, ...]:
        return (self.lower, self.upper)

    def logpdf(self, x: Any) -> np.ndarray:
        return stats.uniform.logpdf(x, self.lower, self.upper - self.lower)

    def sample(self, rng: np.random.Generator, size: Any = None) -> np.ndarray:
        return rng.uniform(self.lower, self.upper, size)


# --------------------------------------------------------------------------- others
@dataclass(frozen=True, repr=False)
class LKJ(Prior):
    """``LKJ(eta)``: Lewandowski-Kurowicka-Joe prior on a correlation matrix.

    Density ``det(R)^(eta - 1)``: ``eta = 1`` is uniform over correlation
    matrices, ``eta > 1`` favours weaker correlations.  The sampler works with
    the Cholesky factor ``L`` of ``R``; :meth:`logpdf` takes ``L`` and is
    ``sum_i (K - i + 2 eta - 2) log L_ii`` (``i = 2..K``) up to a constant.
    """

    eta: float = 1.0
    kind = "lkj"
    support = "corr"

    @argument_kinds(eta=Real(0.0, low_open=True))  # checked by the body (_finite); the kinds say the same
    def __post_init__(self) -> None:
        object.__setattr__(self, "eta", _finite(self.eta, "eta", positive=True))

    def params(self) -> tuple[float, ...]:
        return (self.eta,)

    def logpdf(self, x: Any) -> np.ndarray:
        chol = np.asarray(x, dtype=float)
        k = chol.shape[-1]
        diag = np.log(np.diagonal(chol, axis1=-2, axis2=-1)[..., 1:])
        powers = k - np.arange(2, k + 1) + 2.0 * self.eta - 2.0
        return np.sum(powers * diag, axis=-1)

    def sample_cholesky(self, rng: np.random.Generator, dim: int, size: int) -> np.ndarray:
        """Cholesky factors of ``size`` correlation matrices (``size x dim x dim``), by the onion method."""
        out = np.zeros((size, dim, dim))
        out[:, 0, 0] = 1.0
        if dim == 1:
            return out
        beta = self.eta + (dim - 2) / 2.0
        r = 2.0 * rng.beta(beta, beta, size) - 1.0
        out[:, 1, 0], out[:, 1, 1] = r, np.sqrt(1.0 - r * r)
        for k in range(2, dim):
            beta -= 0.5
            y = rng.beta(k / 2.0, beta, size)
            u = rng.normal(size=(size, k))
            u /= np.linalg.norm(u, axis=1, keepdims=True)
            out[:, k, :k] = np.sqrt(y)[:, None] * u
            out[:, k, k] = np.sqrt(1.0 - y)
        return out

    def sample(self, rng: np.random.Generator, size: Any = None, dim: int = 2) -> np.ndarray:
        chol = self.sample_cholesky(rng, dim, int(np.prod(size or 1)))
        return chol @ np.swapaxes(chol, -1, -2)


@dataclass(frozen=True, repr=False)
class Fixed(Prior):
    """A point mass: the parameter is held at ``value`` and not sampled.

    ``priors={"sd": Fixed(24.74), "sigma": Fixed(25.59)}`` conditions on known
    variance components; a large ``Fixed`` SD gives group effects a fixed,
    diffuse prior (no pooling).
    """

    value: float = 0.0
    kind = "fixed"
    support = "point"

    @argument_kinds(value=Real())  # checked by the body (_finite); the kinds say the same
    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _finite(self.value, "value"))

    def params(self) -> tuple[float, ...]:
        return (self.value,)

    def logpdf(self, x: Any) -> np.ndarray:
        return np.where(np.asarray(x) == self.value, 0.0, -np.inf)

    def sample(self, rng: np.random.Generator, size: Any = None) -> np.ndarray:
        return np.full(size if size is not None else (), self.value, dtype=float)


# --------------------------------------------------------------------------- defaults
_SUPPORTS = {
    "fixef": ("real", "interval", "point"),
    "sd": ("positive", "interval", "point"),
    "sigma": ("positive", "interval", "point"),
    "cor": ("corr",),
}


def check_prior(prior: Any, cls: str, where: str) -> Prior:
    """Validate that ``prior`` can serve as a prior of parameter class ``cls``; return it."""
    if not isinstance(prior, Prior):
        raise ModelSpecError(
            f"the prior for {where} must be a mixedmodels.priors object such as Normal(0, 10), got {prior!r}"
        )
    if prior.support not in _SUPPORTS[cls]:
        hint = {
            "fixef": "a prior on the real line (Normal, StudentT, Cauchy, Flat, Uniform, Fixed)",
            "sd": "a prior on positive numbers (HalfNormal, HalfCauchy, HalfStudentT, Exponential, Gamma, "
            "InverseGamma, Uniform(0, upper), Fixed)",
            "sigma": "a prior on positive numbers (HalfNormal, HalfCauchy, HalfStudentT, Exponential, Gamma, "
            "InverseGamma, Uniform(0, upper), Fixed)",
            "cor": "LKJ(eta)",
        }[cls]
        raise ModelSpecError(f"{prior} cannot be the prior for {where}: it needs {hint}")
    if cls in ("sd", "sigma"):
        low = prior.lower if isinstance(prior, Uniform) else prior.value if isinstance(prior, Fixed) else 0.0
        if low < 0:
            raise ModelSpecError(
                f"{prior} gives negative values to {where}, a standard deviation; use a lower bound >= 0"
            )
    return prior


def _sd(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=float)
    if values.size < 2:
        return 0.0
    return float(np.std(values, ddof=1))


def response_scale(y: np.ndarray, family_name: str) -> float:
    """``s_y``: the response SD for Gaussian models, 1 otherwise (a constant response gives 1)."""
    if family_name != "gaussian":
        return 1.0
    s = _sd(y)
    return s if s > 0 else 1.0


def column_scale(column: np.ndarray) -> float:
    """SD of a model-matrix column, 1 for a constant column."""
    s = _sd(column)
    return s if s > 0 and np.isfinite(s) else 1.0


@argument_kinds(
    x=Instance(np.ndarray, what="a matrix"),
    x_names=TextList(single=False),
    z_columns=Instance(list),
    y=Instance(np.ndarray, what="an array"),
    family_name=Text(),
    intercept_location=Real(),
)
def default_priors(
    x: np.ndarray,
    x_names: tuple[str, ...] | list[str],
    z_columns: list[tuple[str, tuple[str, ...], np.ndarray]],
    y: np.ndarray,
    family_name: str,
    intercept_location: float,
) -> dict[str, Any]:
    """The data-scaled defaults (see the module docstring) for one model.

    Parameters
    ----------
    x, x_names : fixed-effects model matrix and its column names.
    z_columns : per random-effects term ``(group, column_names, z)``.
    y : the response on the scale of the mean (proportions for binomial).
    family_name : ``"gaussian"``, ``"binomial"`` or ``"poisson"``.
    intercept_location : ``g(ybar)``, the link of the mean response.

    Returns
    -------
    dict
        ``{"fixef": {name: prior}, "sd": [[prior per column] per term],
        "cor": [LKJ per term], "sigma": prior or None}``.
    """
    check_arguments(locals())
    sy = response_scale(y, family_name)
    fixef: dict[str, Prior] = {}
    for j, name in enumerate(x_names):
        if name == "(Intercept)":
            fixef[name] = Normal(intercept_location, 2.5 * sy)
        else:
            fixef[name] = Normal(0.0, 2.5 * sy / column_scale(x[:, j]))
    sd = [[HalfStudentT(3, 0, 2.5 * sy / column_scale(z[:, c])) for c in range(z.shape[1])] for _, _, z in z_columns]
    cor = [LKJ(1.0) for _ in z_columns]
    sigma = Exponential(1.0 / sy) if family_name == "gaussian" else None
    return {"fixef": fixef, "sd": sd, "cor": cor, "sigma": sigma}


def as_prior_spec(priors: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate the top-level keys of a ``priors=`` argument."""
    if priors is None:
        return {}
    if not isinstance(priors, Mapping):
        raise ModelSpecError(
            "priors must be a dict such as {'fixef': Normal(0, 10), 'sd': HalfCauchy(0, 5)}, "
            f"got {type(priors).__name__}"
        )
    unknown = [k for k in priors if k not in PRIOR_CLASSES]
    if unknown:
        raise ModelSpecError(
            f"unknown prior class(es) {unknown}; priors= takes the keys {list(PRIOR_CLASSES)} "
            "(per coefficient: {'fixef': {'Days': Normal(0, 10)}})"
        )
    return dict(priors)

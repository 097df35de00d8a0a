"""``mm.bayes.lmer``, ``glmer``, ``lm`` and ``glm``: the frequentist formulas, fitted with priors by NUTS.

A formula without random-effects terms is a complete-pooling regression: ``mm.bayes.lm`` (or
``mm.bayes.lmer`` given such a formula, where lme4's ``lmer`` would refuse it) fits it with the
same priors, summaries, HDIs and ``idata``.
"""

from __future__ import annotations

import secrets
import warnings
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..errors import DataError, ModelSpecError
from ..families import get_family
from .._validate import Choice, Instance, Seed, check_arguments, check_bool, argument_kinds
from .diagnostics import SamplingWarning
from .model import BayesModel
from .results import BayesResults

__all__ = ["lmer", "glmer", "lm", "glm", "sample"]


_PARAMETRIZATION = Choice("auto", "centred", "noncentred")


def _seed(seed: Any) -> int:
    if seed is None:
        return secrets.randbits(31)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ModelSpecError(f"seed must be a non-negative whole number, got {seed!r}")
    return int(seed)


def _check_counts(chains: Any, draws: Any) -> None:
    for name, value in (("chains", chains), ("draws", draws)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ModelSpecError(f"{name} must be a whole number >= 1, got {value!r}")


@argument_kinds(model=Instance(BayesModel), seed=Seed(generator=False))
def sample(
    model: BayesModel,
    *,
    draws: int = 1000,
    warmup: int | None = None,
    chains: int = 4,
    seed: int | None = None,
    target_accept: float = 0.8,
    max_tree_depth: int = 10,
    progress: bool = True,
    prior_only: bool = False,
) -> BayesResults:
    """Sample a built :class:`BayesModel` (what :func:`lmer` and :func:`glmer` call).

    ``prior_only=True`` draws exactly from the prior (no MCMC): with
    :meth:`BayesResults.posterior_predict` these are prior predictive draws.
    Divergent transitions, R-hat above 1.01 and trajectories that hit
    ``max_tree_depth`` are reported as :class:`SamplingWarning`.
    """
    check_arguments(locals())
    _check_counts(chains, draws)
    progress, prior_only = check_bool(progress, "progress"), check_bool(prior_only, "prior_only")
    seed = _seed(seed)
    rng = np.random.default_rng(seed)
    if prior_only:
        values = model.prior_draws(rng, int(chains), int(draws))
        return BayesResults(model, values, None, None, seed, prior_only=True)
    from .sampler import SamplerSettings, run_nuts

    settings = SamplerSettings(
        int(draws if warmup is None else warmup), int(draws), float(target_accept), int(max_tree_depth), bool(progress)
    )
    inits = [model.initial_values(rng) for _ in range(int(chains))]
    out = run_nuts(model, int(chains), settings, seed, inits)
    result = BayesResults(model, out.draws, out.stats, settings, seed, seconds=out.seconds)
    _warn(result)
    return result


def _check_flags(**flags: Any) -> None:
    """Refuse non-boolean flags before the data are prepared (a MixedModelsError naming the flag)."""
    for name, value in flags.items():
        check_bool(value, name)


def _warn(result: BayesResults) -> None:
    d = result.diagnostics
    total = result.nchains * result.ndraws
    if d["divergences"]:
        warnings.warn(
            f"{d['divergences']} of {total} transitions after warmup were divergent: the draws may miss part of "
            "the posterior; increase target_accept (e.g. target_accept=0.95), or simplify the random-effects "
            "structure or make the priors more informative",
            SamplingWarning,
            stacklevel=3,
        )
    if d["max_tree_depth_hits"]:
        warnings.warn(
            f"{d['max_tree_depth_hits']} of {total} transitions hit the maximum tree depth "
            f"({result.settings.max_tree_depth}): sampling is inefficient; increase max_tree_depth",
            SamplingWarning,
            stacklevel=3,
        )
    if d["n_r_hat_above_1.01"]:
        warnings.warn(
            f"R-hat is above 1.01 for {d['n_r_hat_above_1.01']} parameter(s) (largest "
            f"{d['max_r_hat']:.3f} for {d['max_r_hat_parameter']}): the chains disagree; run more draws "
            "(draws=, warmup=) before trusting the results, or try the other parametrization= of the group effects",
            SamplingWarning,
            stacklevel=3,
        )


@argument_kinds(seed=Seed(generator=False), parametrization=_PARAMETRIZATION)
def lmer(
    formula: str,
    data: pd.DataFrame,
    *,
    priors: Mapping[str, Any] | None = None,
    draws: int = 1000,
    warmup: int | None = None,
    chains: int = 4,
    seed: int | None = None,
    target_accept: float = 0.8,
    max_tree_depth: int = 10,
    progress: bool = True,
    prior_only: bool = False,
    weights: Any = None,
    offset: Any = None,
    contrasts: Mapping[str, str] | None = None,
    center: bool = True,
    parametrization: str = "auto",
) -> BayesResults:
    """Fit a linear mixed model with priors by NUTS (NumPyro), from an lme4 formula.

    Parameters
    ----------
    formula, data, weights, offset, contrasts
        As for :func:`mixedmodels.lmer`: the same model matrices.  A formula without
        random-effects terms is fitted as :func:`lm` does (complete pooling).
    priors : dict, optional
        ``{"fixef": ..., "sd": ..., "cor": ..., "sigma": ...}`` with objects
        from :mod:`mixedmodels.bayes.priors` (``mm.priors``), one per class or per coefficient /
        group (see there); missing ones get data-scaled weakly-informative defaults.
    draws : int
        Draws kept per chain (after warmup).
    warmup : int, optional
        Warmup (adaptation) iterations per chain; default ``draws``.
    chains : int
        Independent chains (run in parallel on the CPU).
    seed : int, optional
        Makes the run reproducible; a random one is chosen (and stored in
        ``result.seed``) when omitted.
    target_accept : float
        NUTS' target acceptance rate; raise it (0.9, 0.95, 0.99) when there
        are divergent transitions.
    max_tree_depth : int
    progress : bool
        Show a progress bar (tqdm).
    prior_only : bool
        Draw from the prior instead (prior predictive checks).
    center : bool
        Centre the fixed-effects columns for sampling when there is an
        intercept (the intercept's prior then refers to the predictors at
        their means; results are always on the original scale).
    parametrization : {"auto", "centred", "noncentred"}
        The coordinates of the group effects NUTS samples (the model is the
        same): ``"auto"`` chooses per term from how much each level's data say
        (:mod:`mixedmodels.bayes.parametrization`); the other two force one for
        every term, e.g. when R-hat stays above 1.01.

    Returns
    -------
    BayesResults

    Examples
    --------
    >>> b = mm.bayes.lmer("Reaction ~ Days + (Days | Subject)", sleep, draws=1000, chains=4, seed=1)
    >>> print(b.summary())
    >>> b.hdi(0.95)
    """
    check_arguments(locals())
    _check_flags(progress=progress, prior_only=prior_only, center=center)
    inputs = _inputs(formula, data, weights=weights, offset=offset, contrasts=contrasts)
    _check_gaussian_response(inputs, "lmer", "binomial glmer")
    model = BayesModel.build(inputs, get_family("gaussian"), priors, center=center, parametrization=parametrization)
    return sample(
        model,
        draws=draws,
        warmup=warmup,
        chains=chains,
        seed=seed,
        target_accept=target_accept,
        max_tree_depth=max_tree_depth,
        progress=progress,
        prior_only=prior_only,
    )


def _check_gaussian_response(inputs: Any, caller: str, binomial: str) -> None:
    """A Gaussian model needs one numeric response column that varies (``binomial``: what takes cbind())."""
    if inputs.y.ndim != 1:
        raise DataError(
            f"the response {inputs.formula.response!r} must be a single numeric column for {caller}; "
            f"cbind() responses are for {binomial}"
        )
    if np.ptp(inputs.y) == 0:
        raise DataError(f"the response {inputs.formula.response!r} is constant; there is no variation to model")


def _inputs(formula: str, data: pd.DataFrame, *, generalized: bool = False, fixed_only: bool = False, **kwargs: Any):
    """lme4's model inputs; a formula without bars gives the fixed part alone (complete pooling)."""
    from ..design.inputs import prepare_fixed_inputs, prepare_glmm_inputs, prepare_inputs
    from ..formula import parse_formula

    if fixed_only or not parse_formula(formula).random:
        caller = "mm.bayes.glm" if generalized else "mm.bayes.lm"
        return prepare_fixed_inputs(formula, data, caller=caller, **kwargs)
    return (prepare_glmm_inputs if generalized else prepare_inputs)(formula, data, **kwargs)


@argument_kinds(seed=Seed(generator=False))
def lm(
    formula: str,
    data: pd.DataFrame,
    *,
    priors: Mapping[str, Any] | None = None,
    draws: int = 1000,
    warmup: int | None = None,
    chains: int = 4,
    seed: int | None = None,
    target_accept: float = 0.8,
    max_tree_depth: int = 10,
    progress: bool = True,
    prior_only: bool = False,
    weights: Any = None,
    offset: Any = None,
    contrasts: Mapping[str, str] | None = None,
    center: bool = True,
) -> BayesResults:
    """Fit a linear model (complete pooling: no random effects) with priors by NUTS.

    The Bayesian ``lm(y ~ x)``: ``y_i ~ Normal(x_i' beta, sigma^2 / w_i)`` with priors on
    ``beta`` (``priors["fixef"]``) and ``sigma`` (``priors["sigma"]``); the other arguments
    and the results (``summary()``, ``hdi()``, ``idata``, ``posterior_predict()``) are those of
    :func:`lmer`.  The course's model 1, ``points ~ N(a0 + D date, sigma^2)`` with
    ``N(0, 1000^2)`` priors on the coefficients and ``HalfCauchy(0, 100)`` on sigma::

        mm.bayes.lm("points ~ game", raptors,
                    priors={"fixef": mm.priors.Normal(0, 1000), "sigma": mm.priors.HalfCauchy(0, 100)})
    """
    check_arguments(locals())
    _check_flags(progress=progress, prior_only=prior_only, center=center)
    inputs = _inputs(formula, data, fixed_only=True, weights=weights, offset=offset, contrasts=contrasts)
    _check_gaussian_response(inputs, "lm", "mm.bayes.glm(family='binomial')")
    model = BayesModel.build(inputs, get_family("gaussian"), priors, center=center)
    return sample(
        model,
        draws=draws,
        warmup=warmup,
        chains=chains,
        seed=seed,
        target_accept=target_accept,
        max_tree_depth=max_tree_depth,
        progress=progress,
        prior_only=prior_only,
    )


@argument_kinds(seed=Seed(generator=False))
def glm(
    formula: str,
    data: pd.DataFrame,
    family: Any = "binomial",
    *,
    priors: Mapping[str, Any] | None = None,
    draws: int = 1000,
    warmup: int | None = None,
    chains: int = 4,
    seed: int | None = None,
    target_accept: float = 0.8,
    max_tree_depth: int = 10,
    progress: bool = True,
    prior_only: bool = False,
    weights: Any = None,
    offset: Any = None,
    contrasts: Mapping[str, str] | None = None,
    center: bool = True,
) -> BayesResults:
    """Fit a generalized linear model (no random effects) with priors by NUTS; arguments as :func:`glmer`."""
    check_arguments(locals())
    fam = get_family(family)
    _check_flags(progress=progress, prior_only=prior_only, center=center)
    inputs = _inputs(
        formula, data, generalized=True, fixed_only=True, weights=weights, offset=offset, contrasts=contrasts
    )
    model = BayesModel.build(inputs, fam, priors, center=center)
    return sample(
        model,
        draws=draws,
        warmup=warmup,
        chains=chains,
        seed=seed,
        target_accept=target_accept,
        max_tree_depth=max_tree_depth,
        progress=progress,
        prior_only=prior_only,
    )


@argument_kinds(seed=Seed(generator=False), parametrization=_PARAMETRIZATION)
def glmer(
    formula: str,
    data: pd.DataFrame,
    family: Any = "binomial",
    *,
    priors: Mapping[str, Any] | None = None,
    draws: int = 1000,
    warmup: int | None = None,
    chains: int = 4,
    seed: int | None = None,
    target_accept: float = 0.8,
    max_tree_depth: int = 10,
    progress: bool = True,
    prior_only: bool = False,
    weights: Any = None,
    offset: Any = None,
    contrasts: Mapping[str, str] | None = None,
    center: bool = True,
    parametrization: str = "auto",
) -> BayesResults:
    """Fit a generalized linear mixed model with priors by NUTS, from an lme4 formula.

    ``family`` is ``"binomial"`` (links logit, probit, cloglog, cauchit, log),
    ``"poisson"`` (log, sqrt, identity) or ``"gaussian"`` (any of its links),
    as a name or a :mod:`mixedmodels.families` object.  Binomial responses
    are written as for :func:`mixedmodels.glmer` (0/1, factors,
    ``cbind(successes, failures)``, proportions with ``weights=`` trials).
    The other arguments are those of :func:`lmer`.

    Examples
    --------
    >>> mm.bayes.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial")
    """
    check_arguments(locals())
    fam = get_family(family)
    _check_flags(progress=progress, prior_only=prior_only, center=center)
    inputs = _inputs(formula, data, generalized=True, weights=weights, offset=offset, contrasts=contrasts)
    model = BayesModel.build(inputs, fam, priors, center=center, parametrization=parametrization)
    return sample(
        model,
        draws=draws,
        warmup=warmup,
        chains=chains,
        seed=seed,
        target_accept=target_accept,
        max_tree_depth=max_tree_depth,
        progress=progress,
        prior_only=prior_only,
    )

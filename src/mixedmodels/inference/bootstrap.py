"""Parametric bootstrap of a fitted model (lme4's ``bootMer``) and refitting to a new response.

``bootstrap(m, statistic, nsim)`` repeats, ``nsim`` times:

1. simulate a response ``y*`` from the fitted model, drawing new random
   effects (lme4's ``use.u = FALSE``, the default) -- see :mod:`mixedmodels.simulate`;
2. refit the same model to ``y*``, starting from the original estimates;
3. record ``statistic(refit)``.

The refit reuses the model definition: for a linear mixed model only the
response row of the blocks ``[Z X y]'[Z X y]`` changes, i.e. ``Z'y``, ``X'y``
and ``y'y``, which cost O(n) to recompute; ``Z'Z``, ``X'Z`` and ``X'X`` are
kept, and 200 replicates are refitted at once (:func:`mixedmodels.lmm.refit.fit_many`).  The
replicates estimate the sampling distribution of the statistic:
``sd`` is its bootstrap standard error and the 2.5 % and 97.5 % quantiles a
95 % percentile interval.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import ConvergenceWarning, MixedModelsError, SingularFitWarning
from .._validate import Function, Numbers, Real, check_arguments, check_bool, argument_kinds
from ..fitted import Fit
from ..lmm.refit import ResponseRows, fit_many, refit_lmm
from ..simulate import check_nsim, simulate_responses

__all__ = ["bootstrap", "BootstrapResult", "refit"]

_BATCH = 20  # replicates simulated at once (fixed, so results depend only on the seed)
_FIT_CHUNK = 200  # replicates refitted at once (a multiple of _BATCH)


@dataclass(frozen=True, eq=False)
class BootstrapResult:
    """Replicates of a statistic from a parametric bootstrap (lme4's ``bootMer`` / boot's ``boot``).

    Attributes
    ----------
    t0 : Series
        The statistic on the original fit.
    replicates : DataFrame
        One row per replicate (``nsim`` rows), one column per statistic; rows of
        failed refits are NaN (R's ``$t``).
    seed : int, Generator or None
        The seed given.
    n_singular, n_convergence_warnings : int
        Refits that were singular or raised convergence warnings.
    failures : tuple of str
        Error messages of refits that failed.
    """

    t0: pd.Series
    replicates: pd.DataFrame
    seed: Any = None
    n_singular: int = 0
    n_convergence_warnings: int = 0
    failures: tuple[str, ...] = field(default=())

    @property
    def t(self) -> pd.DataFrame:
        """The replicates (R's ``$t``)."""
        return self.replicates

    @property
    def nsim(self) -> int:
        return len(self.replicates)

    @property
    def n_ok(self) -> int:
        """Replicates whose refit succeeded."""
        return int(self.replicates.notna().all(axis=1).sum())

    def mean(self) -> pd.Series:
        return self.replicates.mean(axis=0)

    def sd(self) -> pd.Series:
        """Bootstrap standard errors (n - 1 denominator, as R's ``sd``)."""
        return self.replicates.std(axis=0, ddof=1)

    def bias(self) -> pd.Series:
        """Mean of the replicates minus the original value."""
        return self.mean() - self.t0

    @argument_kinds(probs=Numbers(Real(0.0, 1.0), scalar=True, min_length=1, what="a probability or a list of them"))
    def quantile(self, probs: float | Sequence[float] = (0.025, 0.5, 0.975)) -> pd.DataFrame:
        """Quantiles of each statistic (R's default type 7), one row per statistic."""
        check_arguments(locals())
        probs = np.atleast_1d(np.asarray(probs, dtype=float))
        q = self.replicates.quantile(probs, axis=0)
        q.index = [_percent(p) for p in probs]
        return q.T

    def confint(self, level: float = 0.95, method: str = "percentile") -> pd.DataFrame:
        """Bootstrap confidence intervals: ``"percentile"``, ``"normal"`` or ``"basic"``.

        percentile: the ``(1 - level)/2`` and ``(1 + level)/2`` quantiles of the
        replicates; normal: ``t0 - bias -/+ z sd``; basic: ``2 t0 - q_upper, 2 t0 - q_lower``.
        """
        check_arguments(locals())
        if not 0 < level < 1:
            raise MixedModelsError(f"level must be between 0 and 1, got {level!r}")
        lo, hi = (1 - level) / 2, (1 + level) / 2
        names = [_percent(lo), _percent(hi)]
        if method == "percentile":
            q = self.replicates.quantile([lo, hi], axis=0).T
        elif method == "basic":
            q = self.replicates.quantile([hi, lo], axis=0).T
            q = pd.DataFrame({0: 2 * self.t0 - q.iloc[:, 0], 1: 2 * self.t0 - q.iloc[:, 1]})
        elif method == "normal":
            from scipy.stats import norm

            z = norm.ppf(hi)
            centre = self.t0 - self.bias()
            q = pd.DataFrame({0: centre - z * self.sd(), 1: centre + z * self.sd()})
        else:
            raise MixedModelsError(f"unknown interval method {method!r}; choose 'percentile', 'normal' or 'basic'")
        q.columns = names
        return q

    def summary(self) -> pd.DataFrame:
        """R's ``summary(boot)``: original, bootBias, bootSE, bootMed per statistic."""
        return pd.DataFrame(
            {
                "R": self.n_ok,
                "original": self.t0,
                "bootBias": self.bias(),
                "bootSE": self.sd(),
                "bootMed": self.replicates.median(axis=0),
            }
        )

    def __repr__(self) -> str:
        return f"<BootstrapResult: {self.nsim} replicates of {list(self.t0.index)}, {self.n_ok} ok>\n{self.summary()}"


def _percent(p: float) -> str:
    """R's quantile names: 2.5 %, 50 %, 97.5 %."""
    return f"{100 * p:.10g} %"


# --- the statistic ---------------------------------------------------------------------
def _as_series(value: Any, names: Sequence[str] | None = None) -> pd.Series:
    """A statistic's value as a float Series (names from a Series or dict, else t1, t2, ...)."""
    if isinstance(value, pd.Series):
        return value.astype(float)
    if isinstance(value, Mapping):
        return pd.Series({str(k): float(v) for k, v in value.items()}, dtype=float)
    array = np.atleast_1d(np.asarray(value, dtype=float)).reshape(-1)
    labels = list(names) if names is not None and len(names) == array.size else [f"t{i + 1}" for i in range(array.size)]
    return pd.Series(array, index=labels, dtype=float)


def _values_of(value: Any, t0: pd.Series) -> np.ndarray:
    """A replicate's statistic as values in the order of ``t0`` (a Series with t0's index: as it is)."""
    if isinstance(value, pd.Series) and value.index.equals(t0.index):
        return value.to_numpy(dtype=float)
    if not isinstance(value, (pd.Series, Mapping)) and np.size(value) == t0.size:
        return np.asarray(value, dtype=float).reshape(-1)  # values in t0's order (as _as_series labels them): no Series
    return _as_series(value, list(t0.index)).reindex(t0.index).to_numpy()


# --- refitting -------------------------------------------------------------------------
def refit(result: Fit, y: Any) -> Any:
    """Refit ``result``'s model to a new response ``y`` (lme4's ``refit(object, newresp)``).

    ``y`` has one value per row of the fit (for a ``cbind`` binomial response
    an ``(n, 2)`` array or the successes).  Starts from the original estimates.
    """
    return _Refitter(result)(np.asarray(y, dtype=float))


class _Refitter:
    """Refits one model to many responses, reusing everything that does not depend on y."""

    def __init__(self, result: Fit):
        self.result = result
        self.model = result.model
        self.kind = _model_kind(result)
        self.rows = ResponseRows(self.model) if self.kind == "lmm" else None

    def __call__(self, y: np.ndarray) -> Any:
        inputs = self.model.inputs
        y = self._response(y)
        if self.kind == "lmm":
            return refit_lmm(self.result, y, self.rows)
        new_inputs = replace(inputs, y=y)
        if self.kind in ("lm", "glm"):
            return replace(self.model, inputs=new_inputs).fit()
        return _refit_generalized(self.result, new_inputs)

    def _response(self, y: np.ndarray) -> np.ndarray:
        inputs = self.model.inputs
        if inputs.y.ndim == 2 and y.ndim == 1:
            totals = inputs.y.sum(axis=1)
            y = np.column_stack([y, totals - y])
        if y.shape != inputs.y.shape:
            raise MixedModelsError(
                f"the new response has shape {y.shape}; the model's response has shape {inputs.y.shape}"
            )
        return self.responses(y)

    def responses(self, y: np.ndarray) -> np.ndarray:
        """``y`` (one response, or one per column for a linear mixed model) with the observed values
        in the rows of weight 0: they carry no information, and their simulated value is NaN."""
        inputs = self.model.inputs
        if inputs.weights is not None and not np.all(inputs.weights > 0):
            informative = (inputs.weights > 0).reshape((-1,) + (1,) * (y.ndim - 1))
            observed = inputs.y if y.ndim == inputs.y.ndim else inputs.y[:, None]
            y = np.where(informative, y, observed)
        return y


def _model_kind(result: Fit) -> str:
    if getattr(result, "family", None) is not None:
        return "glmm" if result.terms else "glm"
    return "lmm" if result.terms else "lm"


def _refit_generalized(result: Fit, inputs: Any) -> Any:
    """Refit a GLMM to new inputs (same design, new response), with the original nAGQ.

    The design-only parts of the model (e.g. where each observation lands in
    the cross-products) are reused; only the validated response is new.
    """
    model = result.model
    response = model.family.response(inputs.y, inputs.weights, inputs.formula.response)
    fields = {"inputs": inputs, "response": response} if hasattr(model, "response") else {"inputs": inputs}
    return replace(model, **fields).fit(nAGQ=getattr(result, "nAGQ", 1))


# --- the bootstrap ---------------------------------------------------------------------
@argument_kinds(statistic=Function())
def bootstrap(
    result: Fit,
    statistic: Callable[[Any], Any],
    nsim: int,
    seed: int | np.random.Generator | None = None,
    progress: bool = True,
    *,
    use_re: bool = False,
) -> BootstrapResult:
    """Parametric bootstrap: simulate from the fit, refit, collect ``statistic(refit)``.

    Parameters
    ----------
    result : LmerResults (or another fitted model)
    statistic : callable
        ``statistic(fit)`` returns a number, a sequence, a dict or a Series;
        e.g. ``lambda m: {**m.fixef, "sigma": m.sigma}``.
    nsim : int
        Number of bootstrap replicates.
    seed : int or numpy Generator, optional
        The same seed gives the same replicates.
    progress : bool
        Show a tqdm progress bar.
    use_re : bool
        Condition on the estimated random effects (lme4's ``use.u = TRUE``).

    Returns
    -------
    BootstrapResult
        ``t0``, ``replicates`` (nsim rows), ``sd()``, ``quantile()``, ``confint()``.

    Examples
    --------
    >>> boot = mm.bootstrap(m, lambda f: {**f.fixef, "sigma": f.sigma}, nsim=1000, seed=101)
    >>> boot.confint()          # percentile intervals
    """
    check_arguments(locals())
    from tqdm.auto import tqdm

    if not callable(statistic):
        raise MixedModelsError("statistic must be a function of a fitted model, e.g. lambda m: m.fixef")
    nsim = check_nsim(nsim)
    progress, use_re = check_bool(progress, "progress"), check_bool(use_re, "use_re")
    t0 = _as_series(statistic(result))
    rng = np.random.default_rng(seed)
    refitter = _Refitter(result)
    rows = np.full((nsim, t0.size), np.nan)
    counts = {"singular": 0, "convergence": 0}
    failures: list[str] = []
    with tqdm(total=nsim, desc="bootstrap", disable=not progress, leave=False) as bar:
        for start in range(0, nsim, _FIT_CHUNK):
            stop = min(nsim, start + _FIT_CHUNK)
            ys = np.hstack(
                [
                    simulate_responses(result, min(_BATCH, stop - first), rng, use_re=use_re)
                    for first in range(start, stop, _BATCH)
                ]
            )
            if refitter.kind == "lmm":
                values = _lmm_replicates(refitter, ys, statistic, counts, failures)
            else:
                values = [_one_replicate(refitter, ys[:, j], statistic, counts, failures) for j in range(ys.shape[1])]
            for j, value in enumerate(values):
                if value is not None:
                    rows[start + j] = _values_of(value, t0)
            bar.update(stop - start)
    replicates = pd.DataFrame(rows, columns=t0.index)
    return BootstrapResult(t0, replicates, seed, counts["singular"], counts["convergence"], tuple(failures))


def _lmm_replicates(refitter: _Refitter, ys: np.ndarray, statistic: Callable, counts: dict, failures: list) -> list:
    """All refits of a chunk at once (:func:`mixedmodels.lmm.refit.fit_many`), then the statistic of each."""
    ys = refitter.responses(ys)
    fits = fit_many(refitter.model, ys, refitter.result.theta, refitter.rows)
    values = []
    for j in range(ys.shape[1]):
        failure = fits.failures[j]
        if failure is None:
            try:
                fit = fits.result(refitter.model, refitter.rows, ys, j)
            except (MixedModelsError, np.linalg.LinAlgError, FloatingPointError) as exc:
                failure = f"{type(exc).__name__}: {exc}"
        if failure is not None:
            failures.append(failure)
            values.append(None)
            continue
        counts["singular"] += bool(fits.singular[j])
        counts["convergence"] += bool(fits.messages[j])
        values.append(statistic(fit))
    return values


def _one_replicate(refitter: _Refitter, y: np.ndarray, statistic: Callable, counts: dict, failures: list) -> Any:
    """Refit to one simulated response; None (and a recorded message) if the refit fails."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = refitter(y)
        except (MixedModelsError, np.linalg.LinAlgError, FloatingPointError) as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
            return None
    counts["singular"] += any(issubclass(w.category, SingularFitWarning) for w in caught)
    counts["convergence"] += any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return statistic(fit)

"""Confidence intervals for the parameters of a linear mixed model (lme4's ``confint.merMod``).

Three methods, all returning a DataFrame with lme4's row names and R's column
names (``"2.5 %"``, ``"97.5 %"``).  The rows are the random-effect SDs and
correlations term by term, sigma, then the fixed effects, named as lme4's
default ``oldNames = TRUE`` names them (``.sig01``, ``.sig02``, ...,
``.sigma``), or with ``old_names=False`` as ``oldNames = FALSE`` does
(``sd_(Intercept)|Subject``, ``cor_Days.(Intercept)|Subject``,
``sd_Days|Subject``, ``sigma``):

* ``"profile"`` (default): likelihood-ratio intervals, the ``p`` with
  ``zeta(p) = -/+ z_{(1 + level)/2}`` on the zeta profiles of
  :func:`mixedmodels.inference.profile.profile` (ML deviance, as lme4).
* ``"wald"``: ``beta_hat -/+ z_{(1 + level)/2} SE(beta_hat)`` for the fixed
  effects; the variance parameters get NaN rows, as in lme4.
* ``"boot"``: parametric bootstrap percentile intervals (lme4's
  ``boot.type = "perc"``): ``nsim`` responses are simulated from the fit and
  refitted (:func:`mixedmodels.inference.bootstrap.bootstrap`), and the limits
  are order statistics of the replicates interpolated on the normal quantile
  scale, as ``boot::boot.ci`` does (Davison & Hinkley 1997, eq. 5.8): with
  ``R`` replicates and ``k = floor((R + 1) a)``,

      t_a = t_(k) + (Phi^-1(a) - Phi^-1(k/(R+1))) / (Phi^-1((k+1)/(R+1)) - Phi^-1(k/(R+1)))
                    * (t_(k+1) - t_(k)).
"""

from __future__ import annotations

import warnings
from typing import Any, Iterable

import numpy as np
import pandas as pd
from scipy.stats import norm

from .._validate import check_bool
from ..errors import ConvergenceWarning, MixedModelsError
from ..fitted import MixedFit
from ..tables import RTable, r_table
from .profile import (
    ProfileResult,
    _check_level,
    _interval_labels,
    _parameters,
    _select,
    parameter_names,
    parameter_values,
    profile,
)


__all__ = ["confint", "percentile_interval", "old_parameter_names"]

_METHODS = ("profile", "wald", "boot")


def confint(
    result: "MixedFit | ProfileResult",
    method: str = "profile",
    level: float = 0.95,
    nsim: int = 500,
    seed: int | np.random.Generator | None = None,
    *,
    parm: str | int | Iterable[str | int] | None = None,
    old_names: bool = True,
    **kwargs: Any,
) -> RTable:
    """Confidence intervals for the SDs, correlations, sigma and fixed effects.

    Parameters
    ----------
    result : LmerResults or ProfileResult
        A fitted linear mixed model, or a profile already computed (then
        ``method`` must be ``"profile"`` and only ``level`` is used).
    method : {"profile", "wald", "boot"}
        Likelihood-profile, Wald (fixed effects only) or parametric bootstrap
        percentile intervals.
    level : float
        Confidence level.
    nsim : int
        Bootstrap replicates (``method="boot"``; lme4's default 500).
    seed : int or numpy Generator, optional
        Seed of the bootstrap simulations.
    parm : str, int or list, optional
        Parameters to report: names (``"sigma"``, ``".sig01"``, ``"Days"``),
        0-based positions, ``"theta_"`` (SDs, correlations and sigma) or
        ``"beta_"`` (fixed effects).  Default: all.
    old_names : bool
        Row names as lme4's default ``oldNames = TRUE`` (``.sig01``, ...,
        ``.sigma``); False for ``sd_(Intercept)|Subject``, ``cor_...``, ``sigma``.
    **kwargs
        Passed on to :func:`~mixedmodels.inference.profile.profile`
        (``alphamax``, ``maxpts``, ``delta``, ``progress``) or, for
        ``"boot"``, ``progress`` (default True) and ``use_re``.

    Returns
    -------
    RTable
        A DataFrame with one row per parameter, columns ``"2.5 %"`` and
        ``"97.5 %"`` (for ``level=0.95``), that prints as R's matrix.

    Examples
    --------
    >>> m.confint()                               # profile intervals
    >>> m.confint(method="wald", level=0.9)
    >>> m.confint(method="boot", nsim=1000, seed=1)
    >>> m.confint(old_names=False)                # sd_(Intercept)|Subject, ..., sigma
    """
    old_names = check_bool(old_names, "old_names")
    level = _check_level(level)
    method = _check_method(method)
    if isinstance(result, ProfileResult):
        if method != "profile":
            raise MixedModelsError(f"a ProfileResult gives profile intervals only, not method={method!r}")
        table = result.confint(level)
        if parm is not None:
            table = table.loc[[n for n in result.parameters if n in _names(result, parm)]]
    elif method == "wald":
        table = _wald(result, level, parm)
    elif method == "profile":
        table = profile(result, which=parm, **kwargs).confint(level)
    else:
        table = _boot(result, level, nsim, seed, parm, **kwargs)
    if old_names:
        everything = list(result.estimates.index) if isinstance(result, ProfileResult) else parameter_names(result)
        table = table.rename(index=old_parameter_names(everything))
    return r_table(table, layout="matrix")


def old_parameter_names(names: list[str]) -> dict[str, str]:
    """lme4's ``oldNames = TRUE`` name of each variance parameter among all parameters ``names``.

    The SDs and correlations (``sd_...|g``, ``cor_...|g``) become ``.sig01``,
    ``.sig02``, ... in model order and the residual SD ``.sigma``; the fixed
    effects keep their names (so they are not in the mapping).
    """
    mapping: dict[str, str] = {}
    count = 0
    for name in names:
        if name.startswith(("sd_", "cor_")) and "|" in name:
            count += 1
            mapping[name] = f".sig{count:02d}"
        elif name == "sigma" and ".sigma" not in mapping.values():
            mapping[name] = ".sigma"
    return mapping


def _check_method(method: str) -> str:
    key = str(method).lower()
    if key not in _METHODS:
        raise MixedModelsError(f"unknown confint method {method!r}; choose 'profile', 'wald' or 'boot'")
    return key


def _names(pr: ProfileResult, parm) -> set[str]:
    """Names selected by ``parm`` among a profile's parameters."""
    index = list(pr.estimates.index)
    new_name = {old: new for new, old in old_parameter_names(index).items()}
    if isinstance(parm, (str, int, np.integer)):
        parm = [parm]
    out: set[str] = set()
    for item in parm:
        if item == "beta_":
            out |= {n for n in index if not (n.startswith(("sd_", "cor_")) or n == "sigma")}
        elif item == "theta_":
            out |= {n for n in index if n.startswith(("sd_", "cor_")) or n == "sigma"}
        elif isinstance(item, (int, np.integer)):
            out.add(index[int(item)])
        else:
            out.add(new_name.get(str(item), str(item)))
    return out


# --- Wald ---------------------------------------------------------------------------------


def _wald(result: MixedFit, level: float, parm) -> pd.DataFrame:
    """``beta -/+ z SE`` for the fixed effects, NaN for the variance parameters (as lme4)."""
    params = _select(_parameters(result), parm)
    z = float(norm.ppf((1.0 + level) / 2.0))
    beta, se = result.fixef, result.se
    rows = []
    for p in params:
        if p.kind == "fixef":
            rows.append([beta.iloc[p.index] - z * se.iloc[p.index], beta.iloc[p.index] + z * se.iloc[p.index]])
        else:
            rows.append([np.nan, np.nan])
    return pd.DataFrame(rows, index=[p.name for p in params], columns=_interval_labels(level), dtype=float)


# --- bootstrap ------------------------------------------------------------------------------


def _boot(result: MixedFit, level: float, nsim: int, seed, parm, progress: bool = True, **kwargs) -> pd.DataFrame:
    """Percentile intervals from a parametric bootstrap of all selected parameters."""
    from .bootstrap import bootstrap

    names = [p.name for p in _select(_parameters(result), parm)]

    def statistic(fit) -> pd.Series:
        return parameter_values(fit)[names]

    boot = bootstrap(result, statistic, nsim, seed=seed, progress=progress, **kwargs)
    replicates = boot.replicates
    failed = int(replicates.isna().all(axis=1).sum())
    if failed:
        warnings.warn(
            f"{failed} of {len(replicates)} bootstrap refits failed and were left out", ConvergenceWarning, stacklevel=3
        )
    rows = [percentile_interval(replicates[name].to_numpy(), level) for name in names]
    return pd.DataFrame(rows, index=names, columns=_interval_labels(level), dtype=float)


def percentile_interval(replicates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Bootstrap percentile interval as ``boot::boot.ci(type = "perc")`` computes it.

    The ``a = (1 -/+ level) / 2`` limits are the order statistics
    ``t_((R + 1) a)``, interpolated on the normal quantile scale when
    ``(R + 1) a`` is not an integer; non-finite replicates are ignored.  When
    ``(R + 1) a`` falls outside ``[1, R]`` the extreme replicate is used with
    a warning.
    """
    level = _check_level(level)
    t = np.sort(np.asarray(replicates, dtype=float)[np.isfinite(replicates)])
    if t.size == 0:
        return (np.nan, np.nan)
    alphas = np.array([(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return tuple(_order_statistic(t, a) for a in alphas)


def _order_statistic(t: np.ndarray, alpha: float) -> float:
    r = t.size
    rank = (r + 1) * alpha
    k = int(np.floor(rank + 1e-10))
    if k < 1 or k >= r and not np.isclose(rank, r):
        warnings.warn("extreme order statistics used as endpoints: use more bootstrap replicates", stacklevel=4)
        return float(t[0] if k < 1 else t[-1])
    if np.isclose(rank, k):
        return float(t[k - 1])
    lo, hi = norm.ppf(k / (r + 1)), norm.ppf((k + 1) / (r + 1))
    return float(t[k - 1] + (norm.ppf(alpha) - lo) / (hi - lo) * (t[k] - t[k - 1]))

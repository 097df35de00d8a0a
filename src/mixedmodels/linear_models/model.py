"""Models without random effects, defined and fitted: ``lm`` (least squares) and ``glm`` (IRLS), R's conventions.

These give complete pooling -- one regression for everyone -- with the same
results conventions as :class:`~mixedmodels.lmm.results.LmerResults` (``fixef``,
``vcov``, ``se``, ``sigma``, ``loglik``, ``aic``, ``bic``, ``deviance``,
``nobs``, ``fitted``, ``residuals``, ``predict``, ``coef_table``, ``summary``),
so ``mm.anova(mm.lm(...), mm.lmer(...))`` tests complete against partial pooling.

The pipeline: :func:`~mixedmodels.design.inputs.prepare_fixed_inputs` (model
frame, y, X) -> :class:`LinearModel` -> ``fit()``: weighted least squares
(:meth:`~.results.LmResults.from_model`) or, with a family, IRLS
(:mod:`.irls`, :meth:`~.results.GlmResults.from_model`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..design.inputs import ModelInputs, prepare_fixed_inputs
from ..families import get_family
from .._validate import check_arguments
from .results import GlmResults, LmResults

__all__ = ["lm", "glm", "LinearModel"]


@dataclass(frozen=True, eq=False)
class LinearModel:
    """A model without random effects, defined but not fitted.

    ``family`` is None for least squares (``lm``) and a family object for ``glm``.
    """

    inputs: ModelInputs
    family: Any = None

    @property
    def REML(self) -> bool:
        return False

    @property
    def nobs(self) -> int:
        """Observations with non-zero weight (R's ``nobs``)."""
        w = self.inputs.weights
        return self.inputs.nobs if w is None else int(np.count_nonzero(w))

    @property
    def nfixef(self) -> int:
        return len(self.inputs.fixed.column_names)

    def fit(self) -> LmResults | GlmResults:
        """Weighted least squares, or IRLS when there is a family (see :mod:`.irls`)."""
        if self.family is None:
            return LmResults.from_model(self)
        return GlmResults.from_model(self)


def lm(
    formula: str,
    data: pd.DataFrame,
    weights: Any = None,
    *,
    offset: Any = None,
    contrasts: Mapping[str, str] | None = None,
    max_memory: Any = None,
) -> LmResults:
    """Fit a linear model by (weighted) least squares, as R's ``lm``.

    Parameters
    ----------
    formula : str
        ``"Reaction ~ Days"``; the same formula language as :func:`mm.lmer`
        without random-effects terms (``scale()``, ``I()``, factors, ``offset()``).
    data : DataFrame
        Rows with a missing value in a used variable are dropped.
    weights : array-like, optional
        Prior weights, one per row of ``data``; rows of weight 0 are left out
        of the fit and of ``nobs``, as in R (they keep fitted values).
        Rows with a missing (NaN) weight are dropped, as in R.
    offset : array-like, optional
        A known component of the mean, one per row of ``data``; rows where it
        is missing (NaN) are dropped, infinite values refused.
    contrasts : dict, optional
        Per-variable contrasts, e.g. ``{"condition": "sum"}``.
    max_memory : int, float or str, optional
        As for :func:`mixedmodels.lmer`: refused before X is built when its estimated
        size exceeds this (default: the memory available now).

    Returns
    -------
    LmResults

    Examples
    --------
    >>> pooled = mm.lm("Reaction ~ Days", sleepstudy)           # complete pooling
    >>> partial = mm.lmer("Reaction ~ Days + (Days | Subject)", sleepstudy)
    >>> mm.anova(pooled, partial)                                # LRT, partial refitted by ML
    """
    check_arguments(locals())
    inputs = prepare_fixed_inputs(
        formula, data, weights=weights, offset=offset, contrasts=contrasts, caller="lm", max_memory=max_memory
    )
    return LinearModel(inputs).fit()


def glm(
    formula: str,
    data: pd.DataFrame,
    family: Any = "gaussian",
    weights: Any = None,
    *,
    offset: Any = None,
    contrasts: Mapping[str, str] | None = None,
    maxit: int = 25,
    tol: float = 1e-8,
    max_memory: Any = None,
) -> GlmResults:
    """Fit a generalized linear model by IRLS, as R's ``glm``.

    Parameters
    ----------
    formula : str
        ``"cbind(incidence, size - incidence) ~ period"``; binomial responses
        may be 0/1, booleans, two-level factors, ``cbind(successes, failures)``
        or proportions with ``weights=`` the trials.
    data : DataFrame
    family : str or Family
        ``"binomial"``, ``"poisson"``, ``"Gamma"``, ``"inverse_gaussian"``,
        ``"gaussian"`` or an object such as ``mm.families.Binomial(link="probit")``.
    weights, offset, contrasts
        As for :func:`lm`.
    maxit, tol : int, float
        IRLS iterations and relative deviance tolerance (R's ``glm.control``).
    max_memory : int, float or str, optional
        As for :func:`mixedmodels.lmer`: refused before X is built when its estimated
        size exceeds this (default: the memory available now).

    Returns
    -------
    GlmResults
    """
    check_arguments(locals())
    chosen = get_family(family)
    inputs = prepare_fixed_inputs(
        formula, data, weights=weights, offset=offset, contrasts=contrasts, caller="glm", max_memory=max_memory
    )
    return GlmResults.from_model(LinearModel(inputs, chosen), maxit=maxit, tol=tol)

"""``mm.compare_pooling``: fit complete, no and partial pooling from one lmer formula and compare them.

The comparison's pieces are in :mod:`.layout` and its result is a
:class:`~.results.PoolingComparison`; ``method="bayes"`` hands over to
:func:`mixedmodels.bayes.pooling.compare_pooling_bayes`.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .._validate import check_bool
from ..errors import MixedModelsError
from ..lmm.model import lmer
from ..lmm.results import LmerResults
from .layout import (
    build_layout, complete_arrays, complete_pooling, long_table, no_pooling_arrays, no_pooling_separate,
    no_pooling_shared, partial_array, shrinkage_table,
)
from .results import PoolingComparison

__all__ = ["compare_pooling"]


def _fit_model(formula, data, kwargs: Mapping[str, Any]) -> LmerResults:
    if isinstance(formula, LmerResults):
        if kwargs:
            raise MixedModelsError(f"arguments {sorted(kwargs)} apply when fitting; a fitted model was given")
        return formula
    return lmer(formula, data, **kwargs)


def compare_pooling(
    formula: "str | LmerResults",
    data: pd.DataFrame | None = None,
    *,
    group: str | None = None,
    share_fixed: bool = False,
    method: str = "lmer",
    **lmer_kwargs: Any,
) -> PoolingComparison:
    """Fit complete, no and partial pooling from one lmer formula and compare them.

    Parameters
    ----------
    formula : str or LmerResults
        An lme4 formula such as ``"Reaction ~ Days + (Days | Subject)"``, or an
        already fitted model (then ``data`` is not needed).
    data : DataFrame
    group : str, optional
        Grouping factor to compare (lme4's name, e.g. ``"cask:batch"``);
        default the first random term's.
    share_fixed : bool
        No pooling fits the group's random-term columns separately per level.
        False (default): every coefficient column, including fixed effects not
        in the random term, is fitted per level (R's ``lmList``).  True: one
        joint least-squares fit in which only the random-term columns vary by
        level and the other fixed effects are shared (Gelman & Hill's no
        pooling, ``lm(y ~ 0 + g + x)`` for a random intercept).
    method : {"lmer", "bayes"}
        ``"bayes"`` fits the three models with priors by NUTS
        (:func:`mixedmodels.bayes.compare_pooling_bayes`, needs the ``bayes``
        extra); the table then has posterior means, SDs and 95 % HDIs.
    **lmer_kwargs
        ``REML``, ``weights``, ``offset``, ``contrasts``, ``settings`` for
        :func:`mixedmodels.lmer` (weights and offset apply to all three fits),
        or the sampler's arguments with ``method="bayes"``.

    Returns
    -------
    PoolingComparison
        ``.table``, ``.shrinkage``, ``.estimates(approach)``, ``.lines()``,
        ``.plot()``, ``.plot_shrinkage()`` and the three underlying fits.

    Notes
    -----
    Complete pooling minimises ``sum_i w_i (y_i - x_i'b)^2``; no pooling does the
    same per level (or jointly with level-specific columns); partial pooling is
    ``lmer``'s ``beta_hat + b_hat_j``.  Levels whose separate fit cannot
    estimate a coefficient (too few observations, no variation in x) get NaN
    for it -- R's ``NA`` -- and no error.

    Examples
    --------
    >>> cmp = mm.compare_pooling("Reaction ~ Days + (Days | Subject)", sleep)
    >>> cmp.estimates("no").loc["308"]      # 244.19, 21.76 as in lme4's documentation
    """
    share_fixed = check_bool(share_fixed, "share_fixed")
    if method == "bayes":
        from ..bayes.pooling import compare_pooling_bayes  # upward: method="bayes" (see tests/test_layering.py)

        return compare_pooling_bayes(formula, data, group=group, share_fixed=share_fixed, **lmer_kwargs)
    if method != "lmer":
        raise MixedModelsError(f"unknown method {method!r}; choose 'lmer' or 'bayes'")
    fit = _fit_model(formula, data, lmer_kwargs)
    layout = build_layout(fit, group)
    counts = np.bincount(layout.refs, minlength=len(layout.levels))
    complete = complete_pooling(fit, layout)
    no_fit = no_pooling_shared(layout) if share_fixed else no_pooling_separate(layout)
    no_est, no_se = no_pooling_arrays(layout, no_fit)
    c_est, c_se = complete_arrays(layout, complete)
    partial = partial_array(fit, layout)
    nlev = len(layout.levels)
    estimates = {"complete": np.tile(c_est, (nlev, 1)), "no": no_est, "partial": partial}
    ses = {"complete": np.tile(c_se, (nlev, 1)), "no": no_se, "partial": np.full_like(partial, np.nan)}
    return PoolingComparison(
        group=layout.group,
        terms=layout.terms,
        random_terms=layout.random_terms,
        share_fixed=bool(share_fixed),
        complete_fit=complete,
        no_pooling_fit=no_fit if share_fixed else MappingProxyType(no_fit),
        partial_fit=fit,
        _table=long_table(layout, counts, estimates, ses, list(complete.coef.index)),
        _shrinkage=shrinkage_table(fit, layout, counts, no_est, partial),
        layout=layout,
    )

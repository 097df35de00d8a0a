"""``mm.compare_pooling``: fit complete, no and partial pooling from one lmer formula and compare them.

The comparison's pieces are in :mod:`.layout` and its result is a
:class:`~.results.PoolingComparison`; ``method="bayes"`` hands over to
:func:`mixedmodels.bayes.pooling.compare_pooling_bayes`.
"""

from __future__ import annotations

from typing import Any, Mapping

import pandas as pd

from .._validate import FAMILY, FIT, Choice, Flag, Frame, OneOf, Text, check_arguments, check_bool, argument_kinds
from ..errors import MixedModelsError
from ..lmm.model import lmer
from ..lmm.results import LmerResults
from .layout import (
    build_layout,
    complete_pooling,
    no_pooling_arrays,
    no_pooling_separate,
    no_pooling_shared,
    shared_terms,
)
from .generalized import compare_generalized
from .results import PoolingComparison, assemble_comparison

__all__ = ["compare_pooling"]


def _fit_model(formula, data, family: Any, kwargs: Mapping[str, Any]) -> LmerResults:
    if isinstance(formula, LmerResults):  # glmer's results too
        if kwargs or family is not None:
            given = sorted(kwargs) + (["family"] if family is not None else [])
            raise MixedModelsError(f"arguments {given} apply when fitting; a fitted model was given")
        return formula
    if family is not None:
        from ..glmm.model import glmer

        return glmer(formula, data, family=family, **kwargs)
    return lmer(formula, data, **kwargs)


@argument_kinds(
    formula=OneOf(Text(), FIT, what="a formula (str) or an lmer fit"),
    data=Frame(allow_none=True),
    family=OneOf(FAMILY, allow_none=True, what=FAMILY.what),
    method=Choice("lmer", "bayes"),
    share_fixed=Flag(allow_none=True),
)
def compare_pooling(
    formula: "str | LmerResults",
    data: pd.DataFrame | None = None,
    *,
    group: str | None = None,
    share_fixed: bool | None = None,
    method: str = "lmer",
    family: Any = None,
    **lmer_kwargs: Any,
) -> PoolingComparison:
    """Fit complete, no and partial pooling from one lmer formula and compare them.

    Parameters
    ----------
    formula : str, LmerResults or GlmerResults
        An lme4 formula such as ``"Reaction ~ Days + (Days | Subject)"``, or an
        already fitted model (then ``data`` is not needed).  A glmer fit (or
        ``family=``) compares the three approaches on the link scale with
        ``glm`` fits for complete and no pooling (see
        :mod:`mixedmodels.pooling.generalized`, which also says how separation is
        handled).
    data : DataFrame
    group : str, optional
        Grouping factor to compare (lme4's name, e.g. ``"cask:batch"``);
        default the first random term's.
    share_fixed : bool, optional
        No pooling fits the group's random-term columns separately per level.
        True: one joint least-squares fit in which only the random-term columns
        vary by level and the other fixed effects are shared (Gelman & Hill's no
        pooling, ``lm(y ~ 0 + g + x)`` for a random intercept): the pooled
        coefficients are then compared with the same slopes held in common, as
        partial pooling holds them.  False: every coefficient column, including
        fixed effects not in the random term, is fitted per level (R's
        ``lmList``).  None (default): True when the fixed part has columns
        outside the group's random terms (``Reaction ~ Days + (1 | Subject)``),
        else False (there both give the same estimates; False gives each
        level's fit its own residual SD).
    family : str or Family, optional
        Fit the formula with :func:`mixedmodels.glmer` in this family
        (``"binomial"``, ``"poisson"``, ...) instead of ``lmer``.
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
    check_arguments(locals())
    share_fixed = check_bool(share_fixed, "share_fixed", allow_none=True)
    if method == "bayes":
        from ..bayes.pooling import compare_pooling_bayes  # upward: method="bayes" (see tests/test_layering.py)

        if family is not None:
            raise MixedModelsError("method='bayes' compares Gaussian (lmer) models; drop family=")
        return compare_pooling_bayes(formula, data, group=group, share_fixed=share_fixed, **lmer_kwargs)
    if method != "lmer":
        raise MixedModelsError(f"unknown method {method!r}; choose 'lmer' or 'bayes'")
    fit = _fit_model(formula, data, family, lmer_kwargs)
    layout = build_layout(fit, group)
    if share_fixed is None:
        share_fixed = bool(shared_terms(layout))
    if layout.generalized:
        return compare_generalized(fit, layout, share_fixed)
    complete = complete_pooling(fit, layout)
    no_fit = no_pooling_shared(layout) if share_fixed else no_pooling_separate(layout)
    no_est, no_se = no_pooling_arrays(layout, no_fit)
    return assemble_comparison(fit, layout, share_fixed, complete, no_fit, no_est, no_se)

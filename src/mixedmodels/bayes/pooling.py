"""Complete, no and partial pooling fitted the Bayesian way (``compare_pooling(..., method="bayes")``).

From one lmer formula, three Bayesian models share the priors of the
partial-pooling model:

* **complete pooling** -- the fixed part alone (``y ~ X beta``), priors on
  ``beta`` and ``sigma``;
* **no pooling** -- every level gets its own coefficients for the grouping
  factor's random-term columns, each with a *fixed* prior (by default the
  prior of the corresponding population coefficient, e.g. ``Normal(0, 1000)``
  under diffuse priors; ``no_pooling_prior=`` to choose), and the other fixed
  effects and ``sigma`` are shared (R's ``lm(y ~ 0 + g + g:x + ...)``);
* **partial pooling** -- the mixed model: the group effects' SDs (and
  correlations) are learned, so levels borrow strength from each other.

The result is a :class:`~mixedmodels.pooling.results.PoolingComparison`, so
``.table``, ``.shrinkage``, ``.estimates()``, ``.plot()`` and
``.plot_shrinkage()`` work as for the frequentist comparison; estimates are
posterior means, ``se`` posterior SDs, and ``lower``/``upper`` the 95 % HDI.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..design.fixed import DesignMatrix
from .._validate import Duck, Frame, OneOf, Text, check_arguments, check_bool, argument_kinds
from ..errors import MixedModelsError, ModelSpecError
from ..families import get_family
from ..pooling.layout import APPROACHES, build_layout, joint_name, shrinkage_table
from ..pooling.results import PoolingComparison
from .priors import Normal, Prior, check_prior, column_scale
from .diagnostics import hdi
from .fit import sample
from .model import BayesModel
from .results import BayesResults

__all__ = ["compare_pooling_bayes", "BayesPooledFit"]

_SAMPLER_ARGS = ("draws", "warmup", "chains", "seed", "target_accept", "max_tree_depth", "progress")


@dataclass(frozen=True, eq=False)
class BayesPooledFit:
    """A complete- or no-pooling Bayesian regression: posterior means and SDs of its coefficients.

    ``coef`` and ``se`` mirror :class:`~mixedmodels.pooling.layout.LeastSquaresFit`;
    ``results`` holds the draws.
    """

    coef: pd.Series
    se: pd.Series
    sigma: float
    nobs: int
    results: BayesResults


def _pooled_fit(results: BayesResults) -> BayesPooledFit:
    beta = results.draws["beta"].reshape(-1, results.draws["beta"].shape[-1])
    index = pd.Index(results.fixef_names, name="term")
    return BayesPooledFit(
        pd.Series(beta.mean(axis=0), index=index, name="estimate"),
        pd.Series(beta.std(axis=0, ddof=1), index=index, name="se"),
        results.sigma,
        results.nobs,
        results,
    )


def _fixef_priors(partial: BayesResults) -> dict[str, Prior]:
    return dict(zip(partial.fixef_names, partial.model.priors.fixef))


def _complete_model(partial: BayesResults) -> BayesModel:
    inputs = replace(partial.model.inputs, terms=())
    priors = {"fixef": _fixef_priors(partial), "sigma": partial.model.priors.sigma}
    return BayesModel.build(inputs, get_family("gaussian"), priors, center=partial.model.spec.center_index >= 0)


def _no_pooling_model(partial: BayesResults, layout, no_prior: Prior | None) -> BayesModel:
    """Per-level random-term columns with fixed priors, the other fixed columns shared."""
    inputs = partial.model.inputs
    base = _fixef_priors(partial)
    s_y = partial.model.scales["s_y"]
    per_level = [layout.terms.index(t) for t in layout.random_terms]
    shared = [j for j, t in enumerate(layout.terms) if t not in layout.random_terms]
    blocks, names, priors = [], [], {}
    for j, level in enumerate(layout.levels):
        indicator = (layout.refs == j).astype(float)[:, None]
        blocks.append(layout.design[:, per_level] * indicator)
        for k in per_level:
            term = layout.terms[k]
            name = joint_name(layout.group, level, term)
            names.append(name)
            priors[name] = no_prior or base.get(term) or Normal(0.0, 2.5 * s_y / column_scale(layout.design[:, k]))
    x = np.column_stack(blocks + [layout.design[:, shared]])
    for k in shared:
        names.append(layout.terms[k])
        priors[layout.terms[k]] = base[layout.terms[k]]
    fixed = DesignMatrix(np.ascontiguousarray(x), tuple(names), inputs.fixed.offset)
    no_inputs = replace(inputs, fixed=fixed, dropped_columns=(), terms=())
    return BayesModel.build(
        no_inputs, get_family("gaussian"), {"fixef": priors, "sigma": partial.model.priors.sigma}, center=False
    )


def _summaries(draws: np.ndarray, prob: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, SD and HDI ``(K, 2)`` of ``(S, K)`` draws."""
    return draws.mean(axis=0), draws.std(axis=0, ddof=1), hdi(draws, prob).reshape(-1, 2)


def _level_draws(layout, approach: str, fits: dict, partial: BayesResults) -> np.ndarray:
    """Draws ``(S, levels, terms)`` of every level's coefficients under one approach."""
    nterms = len(layout.terms)
    if approach == "partial":
        beta = partial.draws["beta"].reshape(-1, len(partial.fixef_names))
        out = np.zeros((beta.shape[0], len(layout.levels), nterms))
        for k, term in enumerate(layout.terms):
            if term in partial.fixef_names:
                out[:, :, k] += beta[:, partial.fixef_names.index(term)][:, None]
        for t, b in zip(partial.terms, partial.draws["b"]):
            if t.group != layout.group:
                continue
            b = b.reshape((-1,) + b.shape[2:])
            for c, col in enumerate(t.column_names):
                out[:, :, layout.terms.index(col)] += b[:, :, c]
        return out
    res: BayesResults = fits[approach].results
    beta = res.draws["beta"].reshape(-1, len(res.fixef_names))
    out = np.full((beta.shape[0], len(layout.levels), nterms), np.nan)
    for j, level in enumerate(layout.levels):
        for k, term in enumerate(layout.terms):
            name = joint_name(layout.group, level, term) if approach == "no" and term in layout.random_terms else term
            if name in res.fixef_names:
                out[:, j, k] = beta[:, res.fixef_names.index(name)]
    return out


def _bayes_table(
    layout, counts: np.ndarray, per_approach: dict[str, np.ndarray], fixed: list[str], prob: float
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Long format like the frequentist table (level x approach x term), plus HDI bounds."""
    terms = np.array(layout.terms, dtype=object)
    nlev, nterm = len(layout.levels), len(terms)
    stats = {}
    for approach in APPROACHES:
        draws = per_approach[approach]
        mean, sd, bounds = _summaries(draws.reshape(draws.shape[0], nlev * nterm), prob)
        stats[approach] = (mean.reshape(nlev, nterm), sd.reshape(nlev, nterm), bounds.reshape(nlev, nterm, 2))
    present = {"complete": np.isin(terms, fixed), "no": np.ones(nterm, bool), "partial": np.ones(nterm, bool)}
    frames = []
    for j, level in enumerate(layout.levels):
        for approach in APPROACHES:
            mean, sd, bounds = stats[approach]
            ok = present[approach]
            frames.append(
                pd.DataFrame(
                    {
                        "group": level,
                        "n": int(counts[j]),
                        "approach": approach,
                        "term": terms[ok],
                        "estimate": mean[j][ok],
                        "se": sd[j][ok],
                        "lower": bounds[j, ok, 0],
                        "upper": bounds[j, ok, 1],
                    }
                )
            )
    table = pd.concat(frames, ignore_index=True)
    table["term"] = table["term"].astype(str)
    return table, {a: stats[a][0] for a in APPROACHES}


@argument_kinds(
    formula=OneOf(Text(), Duck("draws", "model", what="a Bayesian fit"), what="a formula (str) or a Bayesian fit"),
    data=Frame(allow_none=True),
    no_pooling_prior=Duck("logpdf", "support", what="a prior (mm.priors)", allow_none=True),
)
def compare_pooling_bayes(
    formula: "str | BayesResults",
    data: pd.DataFrame | None = None,
    *,
    group: str | None = None,
    priors: Mapping[str, Any] | None = None,
    no_pooling_prior: Prior | None = None,
    prob: float = 0.95,
    share_fixed: bool | None = True,
    **kwargs: Any,
):
    """Bayesian complete, no and partial pooling from one lmer formula, side by side.

    Parameters
    ----------
    formula : str or BayesResults
        An lme4 formula, or a fitted :func:`mixedmodels.bayes.lmer` model
        (then ``data`` and ``priors`` are not needed).
    data : DataFrame
    group : str, optional
        Grouping factor to compare (default the first random term's).
    priors : dict, optional
        Priors of the partial-pooling model (see :mod:`mixedmodels.bayes.priors` (``mm.priors``));
        the other two models reuse its fixed-effect and sigma priors.
    no_pooling_prior : Prior, optional
        The fixed prior of every level's own coefficients in the no-pooling
        model; default the prior of the matching population coefficient.
    prob : float
        HDI probability of the ``lower``/``upper`` columns.
    share_fixed : bool or None
        The Bayesian no-pooling model always shares the fixed effects outside
        the grouping factor's random term (and sigma) across levels;
        ``share_fixed=False`` is refused when the model has such effects, since
        separate per-level fits of them are not what it computes.
    **kwargs
        Sampler settings (``draws``, ``warmup``, ``chains``, ``seed``,
        ``target_accept``, ``max_tree_depth``, ``progress``) for all three
        models, and ``weights``, ``offset``, ``contrasts`` for the fit.

    Returns
    -------
    PoolingComparison
        As :func:`mixedmodels.compare_pooling`; ``table`` has columns
        ``group, n, approach, term, estimate, se, lower, upper`` (posterior
        mean, posterior SD, HDI), ``complete_fit`` and ``no_pooling_fit``
        are :class:`BayesPooledFit` and ``partial_fit`` the
        :class:`BayesResults`.
    """
    check_arguments(locals())
    sampler = {k: kwargs.pop(k) for k in _SAMPLER_ARGS if k in kwargs}
    if isinstance(formula, BayesResults):
        if kwargs or priors is not None or data is not None:
            raise MixedModelsError("a fitted model was given: data, priors and model arguments do not apply")
        partial = formula
        sampler.setdefault("draws", partial.ndraws)
        sampler.setdefault("chains", partial.nchains)
        sampler.setdefault("seed", partial.seed)
        if partial.settings is not None:
            sampler.setdefault("warmup", partial.settings.warmup)
            sampler.setdefault("progress", partial.settings.progress)
    else:
        from .fit import lmer

        partial = lmer(formula, data, priors=priors, **sampler, **kwargs)
    if partial.family.name != "gaussian" or partial.prior_only:
        raise ModelSpecError("compare_pooling with method='bayes' needs a Gaussian (lmer) posterior fit")
    if no_pooling_prior is not None:
        check_prior(no_pooling_prior, "fixef", "the no-pooling coefficients")
    layout = build_layout(partial, group)
    if check_bool(share_fixed, "share_fixed", allow_none=True) is False and len(layout.terms) > len(
        layout.random_terms
    ):
        others = [t for t in layout.terms if t not in layout.random_terms]
        raise ModelSpecError(
            f"the Bayesian no-pooling model shares the fixed effects {others} across levels of {layout.group!r}; "
            "pass share_fixed=True (per-level separate fits of them are only available with method='lmer')"
        )
    counts = np.bincount(layout.refs, minlength=len(layout.levels))
    fits = {
        "complete": _pooled_fit(sample(_complete_model(partial), **sampler)),
        "no": _pooled_fit(sample(_no_pooling_model(partial, layout, no_pooling_prior), **sampler)),
    }
    per_approach = {a: _level_draws(layout, a, fits, partial) for a in ("complete", "no", "partial")}
    table, means = _bayes_table(layout, counts, per_approach, list(fits["complete"].coef.index), prob)
    return PoolingComparison(
        group=layout.group,
        terms=layout.terms,
        random_terms=layout.random_terms,
        share_fixed=True,
        complete_fit=fits["complete"],
        no_pooling_fit=fits["no"],
        partial_fit=partial,
        _table=table,
        _shrinkage=shrinkage_table(partial, layout, counts, means["no"], means["partial"]),
        layout=layout,
    )

"""Likelihood-ratio tests between models: ``anova(m0, m1, ...)`` (lme4) and ``ranova(m)`` (lmerTest).

For nested models fitted by maximum likelihood the likelihood-ratio statistic

    Chisq = 2 (logLik_1 - logLik_0)

is compared with a chi-square distribution on ``Df = npar_1 - npar_0``
degrees of freedom.  REML criteria of models with different fixed effects are
not comparable, so, as lme4's ``anova``, linear mixed models fitted by REML are
refitted by ML first (with a :class:`~mixedmodels.errors.MixedModelsWarning`
saying so).  Models without random effects (``mm.lm``, ``mm.glm``) take part
with their ML log-likelihood, so complete pooling can be tested against
partial pooling.  A variance on the boundary of its space (H0: sigma_b = 0)
makes the chi-square p-value conservative (Self & Liang 1987).

Models with a residual structure (``weights=mm.var_ident()``,
``correlation=mm.cor_ar1()``) are compared as nlme's ``anova.lme`` does: REML
fits with the same fixed effects on their REML likelihoods, as they are (the
REML criterion is comparable when only the covariance differs).  REML fits
with different fixed effects are refitted by ML (``refit=True``), or compared
with nlme's warning that REML comparisons are not meaningful (``refit=False``).

``ranova`` removes each random-effects term in turn, or, for a term with
covariates ``(x + z | g)``, drops one covariate at a time, and compares with
the full model on its own criterion (REML or ML), as lmerTest's ``ranova``.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import replace
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .._validate import FIT, TextList, check_arguments, check_bool, argument_kinds
from ..design.fixed import build_design
from ..design.random import RandomEffectsTerm, grouping_factor, lme4_term_order
from ..errors import MixedModelsError, MixedModelsWarning, ModelSpecError
from ..fitted import Fit
from ..tables import RTable, r_table

__all__ = ["anova", "ranova", "REFIT_MESSAGE", "REML_FIXED_MESSAGE"]

REFIT_MESSAGE = "refitting model(s) with ML (instead of REML)"
REML_FIXED_MESSAGE = "Fitted objects with different fixed effects. REML comparisons are not meaningful."


# --- anova ----------------------------------------------------------------------------
@argument_kinds(models=FIT, names=TextList(single=False, allow_none=True))
def anova(*models: Any, refit: bool = True, names: Sequence[str] | None = None, **named: Any) -> RTable:
    """Likelihood-ratio tests of nested models, in order of complexity (lme4's ``anova``).

    Parameters
    ----------
    *models : fitted models
        ``LmerResults``, ``GlmerResults``, ``LmResults``, ``GlmResults``,
        fitted to the same observations.  With a single mixed model, its
        F-test table (``m.anova()``) is returned instead.
    refit : bool
        Refit REML fits by maximum likelihood first (default, as lme4).
    names : sequence of str, optional
        Row labels.  By default the keyword names (``anova(small=m0, big=m1)``),
        else the names the models have where ``anova`` is called (``m0``,
        ``m1``: what R shows), else ``Model 1``, ``Model 2``, ...

    Returns
    -------
    RTable
        A DataFrame with rows ordered by number of parameters; columns
        ``npar``, ``AIC``, ``BIC``, ``logLik``, ``deviance`` (-2 logLik),
        ``Chisq``, ``Df`` and ``Pr(>Chisq)`` (each row against the one above
        it; NaN in the first).  It prints as lme4's table, each model's
        formula listed above it.
    """
    check_arguments(locals())
    refit = check_bool(refit, "refit")
    fits = list(models) + list(named.values())
    if names is None and models:
        names = _caller_names(list(models), inspect.currentframe()) + list(named)
    labels = _labels(fits, names, list(named))
    if len(fits) == 1:
        single = getattr(fits[0], "anova", None)
        if callable(single):
            return single()
        raise MixedModelsError("anova() needs at least two models to compare")
    if not fits:
        raise MixedModelsError("anova() needs at least two models to compare")
    _check_comparable(fits, labels)
    reml_comparison = _nlme_reml_comparison(fits)
    if refit and any(_is_reml(m) for m in fits) and not reml_comparison:
        warnings.warn(REFIT_MESSAGE, MixedModelsWarning, stacklevel=2)
        fits = [_ml_refit(m) if _is_reml(m) else m for m in fits]
    elif any(_is_reml(m) for m in fits) and not _same_fixed_effects(fits):
        warnings.warn(REML_FIXED_MESSAGE, MixedModelsWarning, stacklevel=2)
    table = _lrt_table(labels, [m.npar for m in fits], [float(m.loglik) for m in fits], [m.nobs for m in fits])
    formulas = dict(zip(labels, (str(getattr(m, "formula", "")) for m in fits)))
    heading = ["Models:", *(f"{label}: {formulas[label]}" for label in table.index)]
    if reml_comparison:
        heading.append("(REML fits with the same fixed effects, compared on their REML likelihoods as nlme does)")
    return r_table(table, heading)


def _caller_names(models: list, frame: Any) -> list[str]:
    """The variable name of each model in the frame that called ``anova`` (as R deparses its arguments).

    A model bound to no name, or to several, is ``Model i``; so is every model if
    two of them would share a label.
    """
    caller = frame.f_back if frame is not None else None
    scope = {**caller.f_globals, **caller.f_locals} if caller is not None else {}
    labels = []
    for i, model in enumerate(models):
        found = [name for name, value in scope.items() if value is model and not name.startswith("_")]
        labels.append(found[0] if len(found) == 1 else f"Model {i + 1}")
    return labels if len(set(labels)) == len(labels) else [f"Model {i + 1}" for i in range(len(models))]


def _lrt_table(labels: list[str], npar: list[int], loglik: list[float], nobs: list[int]) -> pd.DataFrame:
    """lme4's anova table: rows by increasing npar, each tested against the row above.

    Each BIC uses its model's own ``nobs``, as lme4's (they differ only with
    zero prior weights, which lm/glm do not count and lmer/glmer do).
    """
    order = np.argsort(np.asarray(npar, dtype=float), kind="stable")
    npar_sorted = np.asarray(npar, dtype=float)[order]
    ll = np.asarray(loglik, dtype=float)[order]
    chisq = np.concatenate([[np.nan], 2.0 * np.maximum(0.0, np.diff(ll))])
    df = np.concatenate([[np.nan], np.diff(npar_sorted)])
    table = pd.DataFrame(
        {
            "npar": npar_sorted.astype(int),
            "AIC": -2 * ll + 2 * npar_sorted,
            "BIC": -2 * ll + np.log(np.asarray(nobs, dtype=float)[order]) * npar_sorted,
            "logLik": ll,
            "deviance": -2 * ll,
            "Chisq": chisq,
            "Df": df,
            "Pr(>Chisq)": _chisq_p(chisq, df),
        },
        index=pd.Index([labels[i] for i in order], name="model"),
    )
    table["Df"] = table["Df"].astype("Int64")
    return table


def _chisq_p(statistic: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Upper chi-square tail probabilities; NaN where df is missing or not positive."""
    ok = np.isfinite(df) & (df > 0) & np.isfinite(statistic)
    p = np.full(statistic.shape, np.nan)
    p[ok] = stats.chi2.sf(statistic[ok], df[ok])
    return p


def _labels(fits: list, names: Sequence[str] | None, keywords: list[str]) -> list[str]:
    if names is not None:
        if len(names) != len(fits):
            raise MixedModelsError(f"names has {len(names)} entries for {len(fits)} models")
        return [str(n) for n in names]
    positional = len(fits) - len(keywords)
    labels = [f"Model {i + 1}" for i in range(positional)] + keywords
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} [{seen[label]}]")
    return out


def _is_reml(model: Any) -> bool:
    return bool(getattr(model, "REML", False)) and bool(getattr(model, "terms", ()))


def _has_residual_structure(fit: Any) -> bool:
    return getattr(getattr(fit, "model", None), "residual", None) is not None


def _same_fixed_effects(fits: list) -> bool:
    """Do all models have the same fixed-effects columns (names and values)?

    For a fit on Dask, whose X stays on the workers, the values are compared
    through ``X'X`` (summed in pass 2).
    """
    first = fits[0].model.inputs.fixed
    for fit in fits[1:]:
        other = fit.model.inputs.fixed
        if tuple(other.column_names) != tuple(first.column_names) or not np.allclose(
            _fixed_values(fit), _fixed_values(fits[0])
        ):
            return False
    return True


def _fixed_values(fit: Any) -> np.ndarray:
    gram = getattr(fit.model.inputs, "fixed_gram", None)  # a fit on Dask: X'X of the kept columns
    return np.asarray(fit.model.inputs.fixed.matrix if gram is None else gram, dtype=float)


def _nlme_reml_comparison(fits: list) -> bool:
    """nlme's rule: all REML linear mixed models, one with a residual structure, the same fixed effects."""
    return (
        any(_has_residual_structure(m) for m in fits)
        and all(_is_reml(m) and getattr(m, "family", None) is None for m in fits)
        and _same_fixed_effects(fits)
    )


def _ml_refit(model: Any) -> Any:
    """The same linear mixed model (residual structure included) fitted by ML, started at the REML estimates.

    Without a residual structure the cross-products do not depend on the
    criterion, so the model is the fitted one with ``REML=False`` (nothing is
    rebuilt; a fit on Dask makes no pass).
    """
    if _has_residual_structure(model):
        definition = model.model.rebuild(REML=False)
    else:
        definition = replace(model.model, REML=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MixedModelsWarning)
        return definition.fit(start=model.theta)


def _frame_rows(fit: Any) -> int:
    """Rows of the model frame (``nobs`` leaves out zero-weight rows for lm/glm, not for lmer/glmer)."""
    inputs = getattr(getattr(fit, "model", None), "inputs", None)
    return int(inputs.nobs) if inputs is not None else int(fit.nobs)


def _check_comparable(fits: list, labels: list[str]) -> None:
    """All models must describe the same observations of the same response, on one likelihood scale."""
    for fit, label in zip(fits, labels):
        if not hasattr(fit, "loglik") or not hasattr(fit, "npar"):
            raise MixedModelsError(f"{label!r} ({type(fit).__name__}) is not a fitted model anova() can compare")
    quadrature = [label for fit, label in zip(fits, labels) if getattr(fit, "nAGQ", 1) > 1]
    without_re = [label for fit, label in zip(fits, labels) if not getattr(fit, "terms", ())]
    if quadrature and without_re:
        raise ModelSpecError(
            f"{', '.join(map(repr, quadrature))} (nAGQ > 1) cannot be compared with {', '.join(map(repr, without_re))}: "
            "GLMMs with nAGQ > 1 have log-likelihoods incommensurate with glm() objects (lme4's reason: the "
            "quadrature deviance leaves out the family's normalising constants); refit with nAGQ=1 to compare"
        )
    counts = {label: _frame_rows(fit) for fit, label in zip(fits, labels)}
    if len(set(counts.values())) > 1:
        shown = ", ".join(f"{k}: {v}" for k, v in counts.items())
        raise MixedModelsError(
            f"models were not all fitted to the same number of observations ({shown}); "
            "fit them to the same rows (drop rows with missing values first)"
        )
    first = _response_values(fits[0])
    for fit, label in zip(fits[1:], labels[1:]):
        other = _response_values(fit)
        if first.shape != other.shape or not np.allclose(first, other, equal_nan=True):
            raise MixedModelsError(
                f"{label!r} was fitted to a different response than {labels[0]!r} "
                f"({fit.model.inputs.formula.response!r} vs {fits[0].model.inputs.formula.response!r}); "
                "likelihood-ratio tests need the same data"
            )


def _response_values(fit: Fit) -> np.ndarray:
    summary = getattr(fit.model.inputs, "response_summary", None)  # a fit on Dask: n and the response's sums
    if summary is not None:
        return np.asarray(summary, dtype=float)
    y = np.asarray(fit.model.inputs.y, dtype=float)
    if y.ndim == 2:  # cbind(successes, failures): compare successes and totals
        return np.column_stack([y[:, 0], y.sum(axis=1)])
    return y


# --- ranova ----------------------------------------------------------------------------
def ranova(result: Fit, reduce_terms: bool = True) -> RTable:
    """Likelihood-ratio test for each random-effects term (lmerTest's ``ranova``).

    Each term ``(1 | g)`` is removed; each covariate ``x`` of a term
    ``(1 + x + ... | g)`` is dropped from it (row ``"x in (x + ... | g)"``);
    with ``reduce_terms=False`` whole terms are removed instead.  When the
    last random-effects term goes, the reduced model is a linear model with
    the same fixed effects.  Models are compared on the fit's own criterion
    (REML or ML log-likelihood).

    Returns
    -------
    RTable
        A DataFrame with rows ``<none>`` (the model) and one per reduction;
        columns ``npar``, ``logLik``, ``AIC``, ``LRT``, ``Df``, ``Pr(>Chisq)``.
        It prints as lmerTest's table.
    """
    check_arguments(locals())
    reduce_terms = check_bool(reduce_terms, "reduce_terms")
    if getattr(result, "family", None) is not None or not getattr(result, "terms", ()):
        raise ModelSpecError("ranova() tests the random effects of a linear mixed model (mm.lmer fit)")
    rows = [("<none>", result.npar, float(result.loglik))]
    for label, terms in _reductions(result, reduce_terms):
        reduced = _fit_reduced(result, terms)
        rows.append((label, reduced.npar, _loglik_like(reduced, result.REML)))
    npar = np.array([r[1] for r in rows], dtype=float)
    loglik = np.array([r[2] for r in rows])
    lrt = np.concatenate([[np.nan], -2.0 * (loglik[1:] - loglik[0])])
    df = np.concatenate([[np.nan], npar[0] - npar[1:]])
    table = pd.DataFrame(
        {
            "npar": npar.astype(int),
            "logLik": loglik,
            "AIC": -2 * loglik + 2 * npar,
            "LRT": lrt,
            "Df": df,
            "Pr(>Chisq)": _chisq_p(lrt, df),
        },
        index=pd.Index([r[0] for r in rows], name="term"),
    )
    table["Df"] = table["Df"].astype("Int64")
    heading = ["ANOVA-like table for random-effects: Single term deletions", "", "Model:", str(result.formula)]
    return r_table(table, heading)


def _loglik_like(fit: Fit, REML: bool) -> float:
    loglik_at = getattr(fit, "loglik_at", None)
    return float(loglik_at(REML=REML)) if callable(loglik_at) else float(fit.loglik)


def _formula_order(result: Fit) -> list[int]:
    """Position in ``result.terms`` (block order) of each random term of the formula, in formula order."""
    inputs = result.model.inputs
    nlevels = [len(grouping_factor(inputs.frame, t.factors)[1]) for t in inputs.formula.random]
    block_order = lme4_term_order(nlevels)
    position = {formula_index: block for block, formula_index in enumerate(block_order)}
    return [position[i] for i in range(len(nlevels))]


def _display_lhs(expr: str) -> str:
    """lme4's text for a term's left-hand side: ``1 + Days`` is shown as ``Days``."""
    return expr[4:] if expr.startswith("1 + ") else expr


def _lhs_terms(expr: str) -> list[str]:
    """The covariate terms of a left-hand side (``"1 + Days + Phase"`` -> ``["Days", "Phase"]``)."""
    from formulaic import Formula

    return [str(t) for t in Formula(expr) if str(t) != "1"]


def _reductions(result: Fit, reduce_terms: bool) -> list[tuple[str, tuple[RandomEffectsTerm, ...]]]:
    """(row label, reduced list of terms) for every reduction ranova makes."""
    inputs = result.model.inputs
    terms = list(inputs.terms)
    out = []
    for formula_term, block in zip(inputs.formula.random, _formula_order(result)):
        shown = terms[block].structure.wrap(f"({_display_lhs(formula_term.expr)} | {formula_term.group})")
        covariates = _lhs_terms(formula_term.expr)
        others = terms[:block] + terms[block + 1 :]
        if not reduce_terms or not covariates or not terms[block].structure.is_default():  # a structure goes whole
            out.append((shown, tuple(others)))
            continue
        for covariate in covariates:
            smaller = _without_covariate(result, terms[block], formula_term, covariate)
            kept = others[:block] + ([smaller] if smaller is not None else []) + others[block:]
            out.append((f"{covariate} in {shown}", tuple(kept)))
    return out


def _without_covariate(
    result: Fit, term: RandomEffectsTerm, formula_term: Any, covariate: str
) -> RandomEffectsTerm | None:
    """The term with one covariate dropped from its left-hand side; None if nothing is left."""
    remaining = [t for t in _lhs_terms(formula_term.expr) if t != covariate]
    intercept = not formula_term.expr.startswith("0")
    if not remaining and not intercept:
        return None
    expr = " + ".join((["1"] if intercept else ["0"]) + remaining)
    design = build_design(expr, result.model.inputs.frame)
    names = list(design.column_names)
    if set(names) <= set(term.column_names):
        columns = [term.column_names.index(n) for n in names]
        z = np.ascontiguousarray(term.z[:, columns])
    else:
        z = np.ascontiguousarray(design.matrix)
    return replace(term, z=z, design=design)


def _fit_reduced(result: Fit, terms: tuple[RandomEffectsTerm, ...]) -> Any:
    """Fit the model with the given random-effects terms (a linear model when there are none)."""
    ordered = lme4_term_order([t.nlevels for t in terms])
    inputs = replace(result.model.inputs, terms=tuple(terms[i] for i in ordered))
    if not terms and _has_residual_structure(result):
        raise ModelSpecError(
            "ranova() would drop the last random-effects term of a model with a residual structure, "
            "which leaves a gls model (not available): compare two fits with mm.anova() instead"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MixedModelsWarning)
        if not terms:
            from ..linear_models.model import LinearModel

            return LinearModel(inputs).fit()
        return result.model.rebuild(inputs=inputs).fit()

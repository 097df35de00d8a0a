"""Power and Type-I error by simulation: how often does a test reject?

For a design (see :func:`mixedmodels.simulate_design`), :func:`power` draws
``nsim`` data sets, fits each model to each, tests one fixed-effect
coefficient and counts the rejections at level ``alpha``.  With ``x``
rejections in ``n`` successful fits the rate ``x / n`` estimates the power --
or the Type-I error rate when the true coefficient is 0 -- with a binomial
confidence interval at level ``1 - a``, ``z`` the ``1 - a/2`` normal quantile:

* Wilson: :math:`\\frac{x + z^2/2}{n + z^2} \\pm \\frac{z}{n + z^2}\\sqrt{x(n - x)/n + z^2/4}`;
* Clopper-Pearson (exact): the ``a/2`` quantile of Beta(x, n - x + 1) and
  the ``1 - a/2`` quantile of Beta(x + 1, n - x).

Models with random-effect terms are fitted with :func:`mixedmodels.lmer`;
formulas without them by ordinary least squares (ignoring the clustering,
which is the point of the Type-I comparison).  Tests of a coefficient:

* ``"wald"``: lme4's t value against N(0, 1) for mixed models; for OLS the
  exact t test on ``n - p`` df;
* ``"lrt"``: ML fits with and without the coefficient's column,
  :math:`-2(\\ell_0 - \\ell_1) \\sim \\chi^2_1`;
* ``"satterthwaite"``, ``"kenward-roger"``: the p-value of
  ``result.coef_table(ddf=...)`` (OLS: the exact t test).
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats
from tqdm.auto import tqdm

from .._validate import Dict, Frame, Function, OneOf, Seed, Text, TextList, check_arguments, check_bool, argument_kinds
from ..design.frame import required_variables
from ..design.inputs import ModelInputs, prepare_fixed_part, prepare_inputs
from ..errors import ModelSpecError
from ..formula import parse_formula
from ..linalg.lstsq import lstsq
from ..lmm.model import LinearMixedModel
from ..lmm.refit import ResponseRows, fit_many
from .study import response_sampler, sampler

__all__ = ["power", "PowerResult", "binomial_ci"]

_METHODS = ("wald", "lrt", "satterthwaite", "kenward-roger")


def binomial_ci(successes: int, trials: int, level: float = 0.95, method: str = "wilson") -> tuple[float, float]:
    """Confidence interval for a binomial proportion: ``"wilson"`` or ``"clopper-pearson"`` (exact).

    Returns ``(nan, nan)`` for zero trials.
    """
    if not 0 < level < 1:
        raise ModelSpecError(f"level must be between 0 and 1, got {level!r}")
    if trials == 0:
        return (np.nan, np.nan)
    x, n, a = float(successes), float(trials), 1.0 - level
    if method == "wilson":
        z = stats.norm.ppf(1 - a / 2)
        centre = (x + z**2 / 2) / (n + z**2)
        half = z / (n + z**2) * np.sqrt(x * (n - x) / n + z**2 / 4)
        return (max(0.0, centre - half), min(1.0, centre + half))
    if method in ("clopper-pearson", "exact"):
        low = stats.beta.ppf(a / 2, x, n - x + 1) if x > 0 else 0.0
        high = stats.beta.ppf(1 - a / 2, x + 1, n - x) if x < n else 1.0
        return (float(low), float(high))
    raise ModelSpecError(f"unknown interval method {method!r}; choose 'wilson' or 'clopper-pearson'")


# --------------------------------------------------------------------------- fitting one data set
class _Model:
    """One formula fitted to successive simulated data sets.

    The design (X, and Z for mixed models) is rebuilt only when a predictor
    column changed; when only the response did (the usual case in a power
    simulation) the cached design is reused with the new response.
    """

    def __init__(self, formula: str) -> None:
        self.formula = formula
        self.parsed = parse_formula(formula)
        if self.parsed.response is None:
            raise ModelSpecError(f"formula {formula!r} has no response; write it as 'y ~ ...'")
        self.mixed = bool(self.parsed.random)
        predictors = set(required_variables(self.parsed.fixed))
        for term in self.parsed.random:
            predictors |= set(required_variables(term.expr)) | set(term.factors)
        self.predictors = sorted(predictors)
        self._cache: tuple[pd.DataFrame, Any] | None = None

    def _reusable(self, data: pd.DataFrame) -> bool:
        if self._cache is None or self.parsed.response not in data.columns:
            return False
        old, inputs = self._cache
        response = data[self.parsed.response]
        return (
            inputs.n_dropped == 0
            and not response.isna().any()
            and len(data) == len(old)
            and data[self.predictors].equals(old)
        )

    def inputs(self, data: pd.DataFrame):
        """Model inputs for this data set (no random-effects terms for OLS)."""
        if self._reusable(data):
            return replace(self._cache[1], y=data[self.parsed.response].to_numpy(dtype=float))
        inputs = prepare_inputs(self.formula, data) if self.mixed else prepare_fixed_part(self.parsed, data)
        self._cache = (data[self.predictors].copy(), inputs)
        return inputs

    def pvalues_many(
        self, frame: pd.DataFrame, responses: np.ndarray, test: str, method: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """p-values and singular flags for every response (columns of an n x nsim array) on one design."""
        data = frame.assign(**{self.parsed.response: responses[:, 0]})
        inputs = prepare_inputs(self.formula, data) if self.mixed else prepare_fixed_part(self.parsed, data)
        if inputs.n_dropped or not np.all(np.isfinite(responses)):  # rows would differ between data sets
            return _loop(self, frame, responses, test, method)
        if not self.mixed:
            return _ols_pvalues(inputs, responses, test, method, self.formula), np.zeros(responses.shape[1], dtype=bool)
        return _lmer_pvalues(inputs, responses, test, method, self.formula)

    def pvalue(self, data: pd.DataFrame, test: str, method: str) -> tuple[float, bool]:
        """p-value of the test of ``test`` and whether the (mixed) fit was singular."""
        inputs = self.inputs(data)
        if self.mixed:
            return _lmer_pvalue(inputs, test, method, self.formula)
        return _ols_pvalue(inputs, test, method, self.formula), False


def _ols_pvalue(inputs: ModelInputs, test: str, method: str, formula: str) -> float:
    """p-value of one coefficient in an ordinary least-squares fit (no random effects)."""
    x, j = inputs.fixed.matrix, _column_index(inputs.fixed.column_names, test, formula)
    y = inputs.y - inputs.offset if inputs.offset is not None else inputs.y
    n, p = x.shape
    if n <= p:
        raise ModelSpecError(f"{n} observations cannot estimate {p} coefficients of {formula!r}")
    fit = lstsq(x, y, alias=False)  # X's aliased columns are already dropped
    if method == "lrt":
        return _chi2_1_pvalue(n * np.log(lstsq(np.delete(x, j, axis=1), y, alias=False).rss / fit.rss))
    return float(2 * special.stdtr(n - p, -abs(fit.coef[j] / fit.std_errors()[j])))


def _loop(model: "_Model", frame: pd.DataFrame, responses: np.ndarray, test: str, method: str):
    """One data set after another (the general path), for a design given as frame + responses."""
    pvals, singular = np.full(responses.shape[1], np.nan), np.zeros(responses.shape[1], dtype=bool)
    for i in range(responses.shape[1]):
        data = frame.assign(**{model.parsed.response: responses[:, i]})
        p, s = _one_run({"m": model}, data, test, method, strict=i == 0)
        pvals[i], singular[i] = p[0], s[0]
    return pvals, singular


def _ols_pvalues(inputs: ModelInputs, responses: np.ndarray, test: str, method: str, formula: str) -> np.ndarray:
    """:func:`_ols_pvalue` for every column of ``responses`` at once (one QR of X, as :func:`.linalg.lstsq.lstsq`)."""
    x, j = inputs.fixed.matrix, _column_index(inputs.fixed.column_names, test, formula)
    y = responses - inputs.offset[:, None] if inputs.offset is not None else responses
    n, p = x.shape
    if n <= p:
        raise ModelSpecError(f"{n} observations cannot estimate {p} coefficients of {formula!r}")
    fit = lstsq(x, y[:, 0], alias=False)  # X's aliased columns are already dropped
    beta = fit.solve(y)
    rss = np.sum((y - x @ beta) ** 2, axis=0)
    if method == "lrt":
        reduced = np.delete(x, j, axis=1)
        fitted = reduced @ lstsq(reduced, y[:, 0], alias=False).solve(y)
        stat = n * np.log(np.sum((y - fitted) ** 2, axis=0) / rss)
        return special.chdtrc(1, np.maximum(stat, 0.0))
    se = np.sqrt(rss / (n - p) * fit.unscaled_cov[j, j])
    return 2 * special.stdtr(n - p, -np.abs(beta[j] / se))


def _lmer_pvalues(inputs, responses: np.ndarray, test: str, method: str, formula: str) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_lmer_pvalue` for every column of ``responses``: each model's blocks built once, the fits
    batched (:func:`mixedmodels.lmm.refit.fit_many`) from the first data set's optimum."""
    j = _column_index(inputs.fixed.column_names, test, formula)

    def fits(model_inputs, reml: bool):
        model = LinearMixedModel.from_inputs(model_inputs, REML=reml)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            first = model.fit()
        rows = ResponseRows(model)
        return fit_many(model, responses, first.theta, rows, checks=method not in ("lrt", "wald")), model, rows

    if method == "lrt":
        full, _, _ = fits(inputs, False)
        reduced, _, _ = fits(_drop_fixed_column(inputs, j), False)
        stat = np.maximum(reduced.objective - full.objective, 0.0)
        return special.chdtrc(1, stat), full.singular
    many, model, rows = fits(inputs, True)
    if method == "wald":
        return 2 * special.ndtr(-np.abs(many.beta[:, j] / many.se[:, j])), many.singular
    pvals = np.full(responses.shape[1], np.nan)
    for i in range(responses.shape[1]):
        if many.failures[i] is None:
            table = many.result(model, rows, responses, i).coef_table(ddf=method)
            pvals[i] = float(table["Pr(>|t|)"].iloc[j])
    return pvals, many.singular


def _chi2_1_pvalue(stat: float) -> float:
    """Upper tail of chi-square with 1 df (negative statistics from round-off count as 0)."""
    return float(special.chdtrc(1, max(stat, 0.0)))


def _column_index(names: Sequence[str], test: str, formula: str) -> int:
    if test not in names:
        raise ModelSpecError(
            f"test {test!r} is not a coefficient of {formula!r}; its coefficients are: {', '.join(names)}"
        )
    return list(names).index(test)


def _lmer_pvalue(inputs, test: str, method: str, formula: str) -> tuple[float, bool]:
    """p-value of one fixed effect of a linear mixed model, and whether the fit is singular."""
    j = _column_index(inputs.fixed.column_names, test, formula)
    if method == "lrt":
        full = LinearMixedModel.from_inputs(inputs, REML=False).fit()
        reduced = LinearMixedModel.from_inputs(_drop_fixed_column(inputs, j), REML=False).fit()
        return _chi2_1_pvalue(reduced.objective - full.objective), full.is_singular
    fit = LinearMixedModel.from_inputs(inputs, REML=True).fit()
    if method == "wald":
        z = fit.beta[j] / fit.se.iloc[j]
        return float(2 * special.ndtr(-abs(z))), fit.is_singular
    table = fit.coef_table(ddf=method)
    return float(table["Pr(>|t|)"].iloc[j]), fit.is_singular


def _drop_fixed_column(inputs: ModelInputs, j: int) -> ModelInputs:
    """The same model inputs without column j of X (the null model of a 1-df test)."""
    keep = [k for k in range(len(inputs.fixed.column_names)) if k != j]
    return replace(inputs, fixed=inputs.fixed.keep_columns(keep))


# --------------------------------------------------------------------------- the loop
def _data_source(design: Any) -> tuple[Callable[[np.random.Generator], pd.DataFrame], Any]:
    """A function rng -> data set, and the design's truth (or None)."""
    settings = _design_settings(design)
    if settings is None:
        return design, None
    return sampler(settings)


def _design_settings(design: Any) -> dict | None:
    """The keyword arguments of simulate_design behind a design (None for a function)."""
    if callable(design) and not isinstance(design, pd.DataFrame):
        return None
    if isinstance(design, pd.DataFrame):
        truth = design.attrs.get("truth")
        if truth is None:
            raise ModelSpecError(
                "design is a DataFrame without attrs['truth']; pass a data set made by "
                "mm.simulate_design, a dict of its arguments, or a function rng -> DataFrame"
            )
        return dict(truth.settings)
    if isinstance(design, Mapping):
        return dict(design)
    raise ModelSpecError(f"design must be a dict of simulate_design arguments, not {type(design).__name__}")


def _models(formula: str | Sequence[str] | Mapping[str, str]) -> dict[str, _Model]:
    """label -> model; formulas without random terms are fitted by OLS."""
    if isinstance(formula, str):
        items = {formula: formula}
    elif isinstance(formula, Mapping):
        items = {str(k): v for k, v in formula.items()}
    else:
        items = {f: f for f in formula}
    if not items:
        raise ModelSpecError("give at least one model formula")
    return {label: _Model(text) for label, text in items.items()}


def _check_method(method: str) -> None:
    if method not in _METHODS:
        raise ModelSpecError(f"unknown test method {method!r}; choose one of: {', '.join(_METHODS)}")
    if method in ("satterthwaite", "kenward-roger") and importlib.util.find_spec("mixedmodels.inference.ddf") is None:
        raise ModelSpecError(
            f"method={method!r} needs denominator degrees of freedom, not available in this version; "
            "use method='wald' or 'lrt'"
        )


def _one_run(models, data, test, method, strict: bool) -> tuple[list[float], list[bool]]:
    """p-values (nan for a failed fit) and singular flags of every model on one data set."""
    pvals, singular = [], []
    for model in models.values():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p, sing = model.pvalue(data, test, method)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError):
            if strict:
                raise
            p, sing = np.nan, False
        pvals.append(p)
        singular.append(sing)
    return pvals, singular


@argument_kinds(
    design=OneOf(
        Dict(),
        Frame(),
        Function(),
        what="a dict of simulate_design's arguments, a data set it made, or a function rng -> DataFrame",
    ),
    formula=OneOf(TextList(), Dict(Text()), what="a formula, a list of formulas or a dict label -> formula"),
    test=Text(),
    seed=Seed(generator=False),
    ci=Text(),
)
def power(
    design: Any,
    formula: str | Sequence[str] | Mapping[str, str],
    test: str,
    *,
    method: str = "lrt",
    nsim: int = 200,
    alpha: float = 0.05,
    seed: int | None = None,
    level: float = 0.95,
    ci: str = "wilson",
    progress: bool = True,
) -> "PowerResult":
    """Rejection rate of a test of one coefficient, estimated by simulating the design.

    Parameters
    ----------
    design : dict, DataFrame or callable
        Keyword arguments of :func:`~mixedmodels.simulate_design` (without
        ``seed``); a data set made by it (its ``attrs["truth"].settings`` are
        reused); or a function ``rng -> DataFrame``.
    formula : str, list of str or dict
        One model, or several to compare (a dict gives them labels, e.g.
        ``{"OLS": "y ~ cond", "lmer": "y ~ cond + (1 | participant)"}``).
        Formulas without random-effect terms are fitted by least squares.
    test : str
        The coefficient tested (``H0: coefficient = 0``), named as in ``fixef``
        (``"conditionB"``, ``"x"``).
    method : str
        ``"lrt"`` (default), ``"wald"``, ``"satterthwaite"`` or ``"kenward-roger"``.
    nsim : int
        Number of simulated data sets.
    alpha : float
        Significance level of the test.
    seed : int, optional
        Makes the whole run reproducible (each data set gets its own stream).
    level, ci : float, str
        Level and method (``"wilson"``, ``"clopper-pearson"``) of the rate's interval.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    PowerResult
        ``.table`` (per model: rejections, successful fits, rate, CI, failures,
        singular fits), ``.pvalues`` (data sets x models), ``.rate``.
    """
    check_arguments(locals())
    if not isinstance(nsim, (int, np.integer)) or nsim < 1:
        raise ModelSpecError(f"nsim must be a positive whole number, got {nsim!r}")
    if not 0 < alpha < 1:
        raise ModelSpecError(f"alpha must be between 0 and 1, got {alpha!r}")
    _check_method(method)
    progress = check_bool(progress, "progress")
    binomial_ci(0, 1, level, ci)  # validates level and ci before the long run
    source, truth = _data_source(design)
    models = _models(formula)
    streams = np.random.SeedSequence(seed).spawn(nsim)
    batch = _response_batch(design, streams, progress)
    if batch is not None:
        pvals, singular = _all_runs(models, *batch, test, method)
    else:
        pvals = np.full((nsim, len(models)), np.nan)
        singular = np.zeros((nsim, len(models)), dtype=bool)
        for i in tqdm(range(nsim), desc="power", unit="sim", disable=not progress, leave=False):
            data = source(np.random.default_rng(streams[i]))
            pvals[i], singular[i] = _one_run(models, data, test, method, strict=i == 0)
    labels = list(models)
    table = _summarise(pvals, singular, alpha, level, ci, [models[k].formula for k in labels], labels)
    true_value = float(truth.fixef.get(test, 0.0)) if truth is not None else None
    return PowerResult(table, pd.DataFrame(pvals, columns=labels), test, method, alpha, level, ci, true_value)


# --------------------------------------------------------------------------- all data sets at once
def _response_batch(design: Any, streams, progress: bool) -> tuple[pd.DataFrame, np.ndarray] | None:
    """The design's predictors and every data set's response (n x nsim), when only the response
    changes between data sets (the same draws as the data sets themselves); else None."""

    settings = _design_settings(design)
    sampler = None if settings is None else response_sampler(settings)
    if sampler is None:
        return None
    frame, draw = sampler
    responses = [
        draw(np.random.default_rng(stream))
        for stream in tqdm(streams, desc="power: simulate", unit="sim", disable=not progress, leave=False)
    ]
    return frame, np.column_stack(responses)


def _all_runs(
    models: dict[str, "_Model"], frame: pd.DataFrame, responses: np.ndarray, test: str, method: str
) -> tuple[np.ndarray, np.ndarray]:
    """p-values and singular flags (data sets x models) with each model's design built once."""
    pvals = np.full((responses.shape[1], len(models)), np.nan)
    singular = np.zeros(pvals.shape, dtype=bool)
    for k, model in enumerate(models.values()):
        pvals[:, k], singular[:, k] = model.pvalues_many(frame, responses, test, method)
    return pvals, singular


def _summarise(pvals, singular, alpha, level, ci, formulas, labels) -> pd.DataFrame:
    rows = []
    for k, formula in enumerate(formulas):
        ok = ~np.isnan(pvals[:, k])
        rejected = int(np.sum(pvals[ok, k] < alpha))
        n = int(ok.sum())
        low, high = binomial_ci(rejected, n, level, ci)
        rows.append(
            {
                "formula": formula,
                "rejected": rejected,
                "fits": n,
                "rate": rejected / n if n else np.nan,
                "ci_low": low,
                "ci_high": high,
                "failed": int((~ok).sum()),
                "singular": int(singular[:, k].sum()),
            }
        )
    return pd.DataFrame(rows, index=pd.Index(labels, name="model"))


@dataclass(frozen=True, eq=False)
class PowerResult:
    """Rejection rates of one test under several models, estimated by simulation.

    Attributes
    ----------
    table : DataFrame
        One row per model: ``formula``, ``rejected``, ``fits`` (successful
        fits), ``rate``, ``ci_low``, ``ci_high``, ``failed``, ``singular``.
    pvalues : DataFrame
        p-value of every simulated data set (rows) under every model (columns);
        NaN where the fit failed.
    test, method : str
        The coefficient tested and how.
    alpha, level : float
        Significance level; level of the rate's interval.
    ci : str
        Interval method.
    true_value : float or None
        The coefficient's value in the design, when known (0: the rates are Type-I error rates).
    """

    table: pd.DataFrame
    pvalues: pd.DataFrame
    test: str
    method: str
    alpha: float
    level: float
    ci: str
    true_value: float | None

    @property
    def rate(self) -> pd.Series:
        """Rejection rate per model."""
        return self.table["rate"]

    def __str__(self) -> str:
        kind = ""
        if self.true_value is not None:
            kind = (
                " (true value 0: Type-I error rate)"
                if self.true_value == 0
                else f" (true value {self.true_value:g}: power)"
            )
        nsim = len(self.pvalues)
        head = [
            f"Rejection rate of H0: {self.test} = 0 by {self.method}, alpha = {self.alpha:g}, "
            f"{nsim} simulated data sets{kind}"
        ]
        ci_name = f"{self.level:.0%} CI ({self.ci})"
        rows = [["model", "rejected", "rate", ci_name, "failed", "singular"]]
        for label, r in self.table.iterrows():
            interval = f"[{r.ci_low:.3f}, {r.ci_high:.3f}]" if r.fits else "-"
            rate = f"{r.rate:.3f}" if r.fits else "-"
            rows.append([str(label), f"{r.rejected}/{r.fits}", rate, interval, str(r.failed), str(r.singular)])
        widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
        lines = [
            "  ".join(cell.ljust(w) if c == 0 else cell.rjust(w) for c, (cell, w) in enumerate(zip(row, widths)))
            for row in rows
        ]
        return "\n".join(head + lines)

    def __repr__(self) -> str:
        return str(self)

"""Linear mixed models: the model definition, its profiled objective, and ``lmer``.

The pipeline, each stage inspectable on its own::

    model = LinearMixedModel.from_formula("Reaction ~ Days + (Days | Subject)", df)
    model.objective(theta)   # REML criterion (or deviance) profiled over beta and sigma
    result = model.fit()     # an immutable LmerResults

For a given relative covariance factor theta the objective is (Bates et al.
2015, eqs. 34 and 41)

    ML:    log|L_theta|^2 + n (1 + log(2 pi r^2 / n))
    REML:  log|L_theta|^2 + log|R_X|^2 + (n - p)(1 + log(2 pi r^2 / (n - p)))

minus ``sum(log(weights))`` for prior weights, where ``r^2`` is the penalized
residual sum of squares; all three pieces come off the blocked Cholesky factor.
A residual structure (nlme's ``varIdent`` and ``corAR1``: ``weights=mm.var_ident()``,
``correlation=mm.cor_ar1()``) adds ``log det R`` and its parameters to the fit
(:mod:`.residual`).
Rows with prior weight 0 carry no information: they are left out of the
cross-products and of ``n`` (:attr:`LinearMixedModel.n_likelihood`), so the
fit equals the fit without them, while ``nobs`` counts every row as lme4's
does (lme4 itself cannot fit them: its criterion is infinite).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .._validate import (
    Anything,
    FitData,
    Flag,
    Instance,
    Integer,
    Numbers,
    OneOf,
    PerRow,
    Real,
    Text,
    argument_kinds,
    check_arguments,
    check_bool,
)
from ..convergence import MAX_NOBS_FOR_CHECKS, check_convergence
from ..design.inputs import ModelInputs, prepare_inputs
from ..design.residual import CorAR1, VarIdent, bind_residual, residual_variables
from ..design.tables import as_pandas, is_dask_input
from ..errors import ConvergenceWarning, DataError, ModelSpecError, SingularFitWarning
from ..linalg import BlockedCrossProducts, Factorization
from ..linalg.blocked import ThetaVectors
from ..linalg.dense_system import DenseFactor
from ..linalg.gradient import ProfiledObjective
from ..linalg.start import moment_start
from ..optim import (
    OptInfo,
    OptimizerSettings,
    minimize_bounded,
)
from .minimize import better_start, choose_optimizer, derivative_fit, reuse_first_value, threads_for
from .residual import ResidualModel, check_no_zero_weights, optimize_with_residual
from .results import FACTOR, LmerResults

__all__ = ["LinearMixedModel", "lmer", "ThetaParameters", "start_theta"]

_LOG_2PI = np.log(2.0 * np.pi)
_DEFAULT_SETTINGS = OptimizerSettings()  # immutable: one instance serves every fit without settings
_SETTINGS = Instance(OptimizerSettings, what="an OptimizerSettings", allow_none=True)
_WEIGHTS = OneOf(
    PerRow(),
    Instance(VarIdent),
    allow_none=True,
    what="numbers, one per row of the data (e.g. data['w']), or mm.var_ident('column')",
)
_CORRELATION = Anything("checked by design.residual.bind_residual: 'correlation= takes mm.cor_ar1(...)'")
_METHOD = Anything("any value but None is refused by lmer itself, saying what to write instead (REML=False)")


class ThetaParameters:
    """Bounds, start and lme4's names of theta, for any model with ``inputs.terms`` (each term's structure's)."""

    inputs: ModelInputs

    @property
    def theta_vectors(self) -> ThetaVectors:
        """Theta's bounds, lme4's start and the columns' scaling per element, each term's structure's
        (read-only arrays, made once per model: the subclass says where they are kept)."""
        raise NotImplementedError

    @property
    def theta_lower(self) -> np.ndarray:
        return self.theta_vectors.lower.copy()

    @property
    def theta_upper(self) -> np.ndarray:
        """Upper bounds (``inf`` but for the correlation parameters of ``cs`` and ``ar1`` terms)."""
        return self.theta_vectors.upper.copy()

    @property
    def theta_start(self) -> np.ndarray:
        return self.theta_vectors.start.copy()

    @property
    def theta_names(self) -> list[str]:
        return [name for t in self.inputs.terms for name in t.theta_names]

    @argument_kinds(
        theta=Anything("a sequence, Series or dict by theta's names, checked here against the model"), what=Text()
    )
    def check_theta(self, theta: Any, what: str = "start") -> np.ndarray:
        """``theta`` as floats of the model's length within its bounds, or a ModelSpecError naming them.

        A Series or dict is read by lme4's theta names (``model.theta_names``).
        """
        check_arguments(locals())
        names = self.theta_names
        if isinstance(theta, Mapping) or isinstance(theta, pd.Series):
            items = dict(theta)
            unknown = [k for k in items if k not in names]
            if unknown or len(items) != len(names):
                raise ModelSpecError(f"{what} theta by name needs exactly the names {names}; got {list(items)}")
            theta = [items[n] for n in names]
        try:
            values = np.asarray(theta, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise ModelSpecError(f"{what} theta must be {len(names)} numbers ({', '.join(names)})") from None
        if values.size != len(names):
            raise ModelSpecError(
                f"{what} theta has {values.size} values; the model has {len(names)}: {', '.join(names)}"
            )
        lower, upper = self.theta_lower, self.theta_upper
        if not np.all(np.isfinite(values)) or np.any(values < lower) or np.any(values > upper):
            bad = [n for n, v, lo, up in zip(names, values, lower, upper) if not (np.isfinite(v) and lo <= v <= up)]
            raise ModelSpecError(
                f"{what} theta must be finite and >= 0 for the diagonal elements (correlations of cs() "
                f"and ar1() terms within their bounds); check {', '.join(bad)}"
            )
        return values


@dataclass(frozen=True, eq=False)
class LinearMixedModel(ThetaParameters):
    """A linear mixed model, defined but not fitted: inputs plus the blocks of ``[Z X y]'[Z X y]``.

    Attributes
    ----------
    inputs : ModelInputs
        lme4's ``lFormula`` stage: the model frame, y, X and the random-effects terms.
    crossprods : BlockedCrossProducts
        The blocks of ``[Z X y]'[Z X y]`` (with a residual structure: ``[Z X y]' R^-1 [Z X y]``
        at its current parameters).
    REML : bool
        REML criterion (True) or deviance (False).
    residual : ResidualModel or None
        A residual structure (``weights=mm.var_ident()``, ``correlation=mm.cor_ar1()``)
        with its stored cross-products and current parameters; None without one.
    """

    inputs: ModelInputs
    crossprods: BlockedCrossProducts
    REML: bool
    residual: ResidualModel | None = None

    @classmethod
    @argument_kinds(weights=_WEIGHTS, correlation=_CORRELATION)
    def from_formula(
        cls,
        formula: str,
        data: pd.DataFrame,
        *,
        REML: bool = True,
        weights: Any = None,
        correlation: CorAR1 | None = None,
        **kwargs: Any,
    ) -> "LinearMixedModel":
        """Build the model from an lme4 formula (see :func:`lmer` for the arguments)."""
        check_arguments(locals())
        return cls._from_formula(formula, data, REML=REML, weights=weights, correlation=correlation, **kwargs)

    @classmethod
    def _from_formula(
        cls, formula: str, data: pd.DataFrame, *, REML: bool, weights: Any, correlation: CorAR1 | None, **kwargs: Any
    ) -> "LinearMixedModel":
        """:meth:`from_formula` for arguments already checked (by :func:`lmer`)."""
        check_bool(REML, "REML")
        variance = weights if isinstance(weights, VarIdent) else None
        extra = residual_variables(variance, correlation)
        inputs = prepare_inputs(
            formula,
            data,
            weights=None if variance is not None else weights,
            extra_variables=extra,
            sparse_rest=variance is None and correlation is None,
            **kwargs,
        )
        if inputs.y.ndim != 1:
            raise DataError(
                f"the response {inputs.formula.response!r} must be a single numeric column for lmer; "
                "cbind() responses are for binomial glmer"
            )
        if inputs.y.max() - inputs.y.min() == 0:  # np.ptp's arithmetic, without its wrapper (~15 us cold)
            raise DataError(f"the response {inputs.formula.response!r} is constant; there is no variation to model")
        return cls._from_inputs(inputs, REML, variance, correlation)

    @classmethod
    @argument_kinds(
        inputs=Instance(ModelInputs),
        variance=Instance(VarIdent, what="mm.var_ident(...)", allow_none=True),
        correlation=Instance(CorAR1, what="mm.cor_ar1(...)", allow_none=True),
    )
    def from_inputs(
        cls,
        inputs: ModelInputs,
        *,
        REML: bool = True,
        variance: VarIdent | None = None,
        correlation: CorAR1 | None = None,
    ) -> "LinearMixedModel":
        """Build the cross-product blocks for prepared inputs (rows with weight 0 left out: they add nothing).

        With a residual structure (``variance``, ``correlation``; their columns
        must be in ``inputs.frame``) the blocks are stored in pieces and combined
        at the structure's start.
        """
        check_arguments(locals())
        return cls._from_inputs(inputs, REML, variance, correlation)

    @classmethod
    def _from_inputs(
        cls, inputs: ModelInputs, REML: bool, variance: VarIdent | None, correlation: CorAR1 | None
    ) -> "LinearMixedModel":
        """:meth:`from_inputs` for arguments already checked."""
        REML = check_bool(REML, "REML")
        structure = None
        if variance is not None or correlation is not None:
            structure = bind_residual(variance, correlation, inputs.array, inputs.nobs, inputs.terms)
        if structure is not None:
            check_no_zero_weights(inputs.weights)
        rows = _informative_rows(inputs.weights)
        n, p = (inputs.nobs if rows is None else rows.size), len(inputs.fixed.column_names)
        if n <= p:
            zero = "" if rows is None else " with non-zero weight"
            raise ModelSpecError(f"{n} observations{zero} cannot estimate {p} fixed effects and a residual variance")
        sqrtw = np.sqrt(inputs.weights) if inputs.weights is not None else None
        y = inputs.y - inputs.offset if inputs.offset is not None else inputs.y
        x = inputs.fixed.matrix  # [X y] as np.column_stack makes it, without its Python wrapper
        xy = np.empty((x.shape[0], x.shape[1] + 1), dtype=np.result_type(x, y))
        xy[:, :-1], xy[:, -1] = x, y
        if sqrtw is not None:
            xy = xy * sqrtw[:, None]
        zs = [t.z if sqrtw is None else t.z * sqrtw[:, None] for t in inputs.terms]
        refs = [t.refs for t in inputs.terms]
        if rows is not None:
            xy, zs, refs = xy[rows], [z[rows] for z in zs], [r[rows] for r in refs]
        nlevels, structures = [t.nlevels for t in inputs.terms], [t.structure for t in inputs.terms]
        if structure is not None:
            residual = ResidualModel.build(structure, refs, zs, nlevels, xy, structures)
            return cls(inputs, residual.crossprods(), REML, residual)
        return cls(inputs, BlockedCrossProducts.build(refs, zs, nlevels, xy, structures), REML)

    @argument_kinds(params=Numbers(min_length=1))
    def at_residual(self, params: np.ndarray) -> "LinearMixedModel":
        """The model with its residual structure's parameters fixed at ``params`` (delta's, then phi)."""
        check_arguments(locals())
        return self._at_residual(params)

    def _at_residual(self, params: np.ndarray) -> "LinearMixedModel":
        """:meth:`at_residual` for parameters already checked (the fit's estimates)."""
        residual = self.residual.at(params)
        return replace(self, crossprods=residual.crossprods(), residual=residual)

    @argument_kinds(inputs=Instance(ModelInputs, allow_none=True), REML=Flag(allow_none=True))
    def rebuild(self, inputs: ModelInputs | None = None, REML: bool | None = None) -> "LinearMixedModel":
        """The same kind of model for other inputs or another criterion, keeping the residual structure
        (its current parameters become the new model's start)."""
        check_arguments(locals())
        inputs = self.inputs if inputs is None else inputs
        REML = self.REML if REML is None else REML
        if self.residual is None:
            return type(self).from_inputs(inputs, REML=REML)
        structure = self.residual.structure
        model = type(self).from_inputs(
            inputs, REML=REML, variance=structure.variance, correlation=structure.correlation
        )
        return model.at_residual(self.residual.params)

    @argument_kinds(rows=Numbers(Integer(0), what="row positions: whole numbers >= 0"))
    def without_rows(self, rows: np.ndarray) -> "LinearMixedModel":
        """The model for the data without the rows at positions ``rows`` (for influence diagnostics).

        The cross-products lose those rows' contributions (no new pass over
        the other rows); the random-effects terms keep their levels and
        theta its meaning, so the fit can start at this model's theta.
        """
        check_arguments(locals())
        if self.residual is not None:
            raise ModelSpecError(
                "influence diagnostics (refits without rows) are not available for a model with a "
                "residual structure (weights=var_ident() or correlation=): its rows are correlated"
            )
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        inputs = self.inputs
        keep = np.setdiff1d(np.arange(inputs.nobs), rows)
        if keep.size <= self.nfixef:
            raise ModelSpecError(
                f"without {rows.size} rows, {keep.size} are left: too few for {self.nfixef} fixed effects"
            )
        sqrtw = np.ones(rows.size) if inputs.weights is None else np.sqrt(inputs.weights[rows])
        y = inputs.y[rows] - (inputs.offset[rows] if inputs.offset is not None else 0.0)
        xy = np.column_stack([inputs.fixed.matrix[rows], y]) * sqrtw[:, None]
        zs = [t.z[rows] * sqrtw[:, None] for t in inputs.terms]
        refs = [t.refs[rows] for t in inputs.terms]
        crossprods = self.crossprods.without_rows(refs, zs, xy, int(np.count_nonzero(sqrtw)))
        return LinearMixedModel(inputs.subset(keep), crossprods, self.REML)

    @property
    def theta_vectors(self) -> ThetaVectors:
        """Theta's bounds, start and scaling: the cross-products' (made once with them)."""
        return self.crossprods.theta_vectors

    # --- the objective --------------------------------------------------------
    @property
    def nobs(self) -> int:
        return self.inputs.nobs

    @property
    def n_likelihood(self) -> int:
        """The ``n`` of the likelihood: rows with non-zero prior weight (every row without weights).

        ``nobs`` counts every row of the model frame, as lme4's ``nobs`` does.
        """
        return self.crossprods.nobs

    @property
    def nfixef(self) -> int:
        return self.crossprods.nfixef

    @property
    def layouts(self):
        """Where each random-effects term sits in theta and in the blocks (block order)."""
        return self.crossprods.terms

    def _log_weights(self) -> float:
        return self.inputs.sum_log_weights

    def objective_from(
        self, factor: Factorization, REML: bool | None = None, residual_logdet: float | None = None
    ) -> float:
        """The profiled REML criterion or deviance given a factorization.

        With a residual structure, ``log det R`` at its current parameters is
        added (or ``residual_logdet``, for a factor made at other parameters).
        """
        reml = self.REML if REML is None else REML
        if not factor.ok:
            return np.inf
        n = self.n_likelihood - (self.nfixef if reml else 0)
        value = factor.logdet_re() + n * (1.0 + _LOG_2PI + np.log(factor.pwrss() / n))
        if reml:
            value += factor.logdet_x()
        if residual_logdet is None and self.residual is not None:
            residual_logdet = self.residual.logdet()
        return value - self._log_weights() + (residual_logdet or 0.0)

    def objective(self, theta: np.ndarray) -> float:
        """REML criterion (REML=True) or deviance, profiled over beta and sigma, at theta."""
        check_arguments(locals())
        return self.objective_from(self.crossprods.objective_factor(theta))

    # --- fitting ----------------------------------------------------------------
    def results_at(self, theta: np.ndarray) -> LmerResults:
        """Results (beta, sigma, modes, ...) at a given theta, without optimizing.

        Useful to inspect the model at someone else's estimates, e.g. lme4's theta.
        """
        check_arguments(locals())
        theta = np.asarray(theta, dtype=float)
        value = self.objective(theta)
        info = OptInfo("none (theta given)", theta, theta, value, 1, 0.0, 1, "theta given")
        return LmerResults.from_fit(self, info)

    @argument_kinds(info=Instance(OptInfo), factor=FACTOR)
    def results_from(self, info: OptInfo, factor: Factorization | None = None) -> LmerResults:
        """Results for an optimizer's log whose ``final`` is theta (fits made elsewhere: batched refits)."""
        check_arguments(locals())
        return LmerResults.from_fit(self, info, factor)

    @argument_kinds(info=Instance(OptInfo), beta=Numbers(), sigma=Real(0.0), objective=Real(allow_inf=True))
    def results_from_estimates(self, info: OptInfo, beta: np.ndarray, sigma: float, objective: float) -> LmerResults:
        """Results from estimates computed elsewhere (a batched refit); the factorization is formed on first use."""
        check_arguments(locals())
        return LmerResults.from_estimates(self, info, beta, sigma, objective)

    def starting_theta(self) -> np.ndarray:
        """Where the optimizer starts: lme4's identity start or a moment estimate, whichever fits better.

        The moment estimate (:func:`~mixedmodels.linalg.start.moment_start`)
        halves the evaluations or better (sleepstudy 79 -> 41, Penicillin
        78 -> 23, InstEval 101 -> 46); comparing it with lme4's start costs
        two evaluations and keeps the identity wherever the estimate is the
        worse start.
        """
        candidates = self._start_candidates()
        return candidates[better_start(candidates, self.objective)[0]]

    def _start_candidates(self) -> list[np.ndarray]:
        """lme4's identity start, then the moment estimate where there is one (theta in the units of the data)."""
        try:
            guess = moment_start(self.crossprods)
        except (np.linalg.LinAlgError, ValueError):  # only a start: never let it stop a fit
            guess = None
        return [self.theta_start] if guess is None else [self.theta_start, self.crossprods.from_scaled_theta(guess)]

    def _optimize(
        self, settings: OptimizerSettings | None, start: np.ndarray | None
    ) -> "tuple[OptInfo, Factorization | DenseFactor | None]":
        """Minimize over theta in the units of the scaled columns, then lme4's checks.

        The optimizer sees theta for unit-RMS random-effects columns, so its
        steps and tolerances do not depend on the units of the predictors;
        everything it reports is mapped back to the units of the data.  The
        gradient and Hessian in ``optinfo`` are with respect to the scaled theta.
        Without a ``start``, the better of :meth:`_start_candidates` (as
        :meth:`starting_theta`), whose objective the optimizer then reuses for
        its first evaluation.  BFGS with the analytic gradient or BOBYQA, as
        :func:`choose_optimizer` says.  Also returns the factorization at the
        final theta when it was the best evaluation (else None), so the
        results need not factor again; for a dense system, its dense factor
        there (the blocked one is made if the results need it).
        """
        cp = self.crossprods
        settings = settings or _DEFAULT_SETTINGS
        method = choose_optimizer(settings, cp)
        objective = ProfiledObjective(cp, self.objective_from, self.REML, with_gradient=method != "bobyqa")
        if self.residual is None and type(self).objective_from is LinearMixedModel.objective_from:
            objective.criterion = (self.n_likelihood - (self.nfixef if self.REML else 0), self._log_weights())
        with threads_for(cp, objective):
            candidates = [np.asarray(start, dtype=float)] if start is not None else self._start_candidates()
            points = [cp.to_scaled_theta(theta) for theta in candidates]
            best, value = better_start(points, objective.value, objective.values)
            vectors = cp.theta_vectors  # read-only; scaling leaves the bounds alone (only correlations have one above)
            lower, upper = vectors.lower, vectors.upper_or_none
            if method == "bobyqa":
                first = reuse_first_value(objective.value, points[best], value)
                info = minimize_bounded(first, points[best], lower, upper, settings=settings)
            else:
                bounds = (lower, upper)
                info = derivative_fit(
                    objective, points[best], value, self.layouts, bounds, settings, newton=method == "newton"
                )
            changes: dict = {}  # one copy of info at the end
            if len(points) > 1:  # the start candidates' evaluations (the best one's reused)
                changes["feval"] = info.feval + len(points) - (1 if method == "bobyqa" else 0)
            if info.optimizer_converged and self.nobs <= MAX_NOBS_FOR_CHECKS:
                derivatives = None
                if method == "newton":  # the optimizer's own at its final point, when it stopped there
                    known = info.gradient is not None and info.hessian is not None
                    derivatives = (info.gradient, info.hessian) if known else objective.derivatives(info.final)
                check = check_convergence(
                    objective.value,
                    info.final,
                    lower,
                    upper,
                    grad=objective.gradient if method == "bfgs" else None,
                    derivatives=derivatives,
                )
                changes.update(gradient=check.gradient, hessian=check.hessian, warnings=check.messages)
        scaled_final = info.final
        final = cp.from_scaled_theta(scaled_final)
        factor = objective.best_factor_at(final)
        if factor is None and objective.dense is not None:  # the results read beta and sigma off the dense factor
            factor = objective.kept_factor_at(scaled_final)
            if (
                factor is None or factor.pieces is not None
            ):  # not LAPACK's (the compiled kernel's): see DenseSystem.factor
                factor = objective.dense.factor(scaled_final, exact_lapack=True)
            changes["fmin"] = self.objective_from(factor)
        return info.updated(initial=candidates[best].copy(), final=final, **changes), factor

    @argument_kinds(settings=_SETTINGS)
    def fit(self, settings: OptimizerSettings | None = None, start: np.ndarray | None = None) -> LmerResults:
        """Minimize the objective over theta (and a residual structure's parameters) and return the results.

        ``start`` is theta in the units of the data; by default
        :meth:`starting_theta` picks lme4's start or a moment estimate.  A
        residual structure starts from its current parameters.
        """
        check_arguments(locals())
        return self._fit(settings, None if start is None else self.check_theta(start))

    def _fit(self, settings: OptimizerSettings | None, start: np.ndarray | None) -> LmerResults:
        """:meth:`fit` for a checked ``settings`` and ``start`` (theta checked by :meth:`check_theta`)."""
        if self.residual is None:
            info, factor = self._optimize(settings, start)
            model = self
        else:
            info, params, factor = optimize_with_residual(self, settings, start)
            model = self._at_residual(params)
        if not info.optimizer_converged:
            warnings.warn(f"optimizer did not converge: {info.message}", ConvergenceWarning, stacklevel=3)
        for message in info.warnings:
            warnings.warn(message, ConvergenceWarning, stacklevel=3)
        if isinstance(factor, DenseFactor):
            result = LmerResults._from_dense_factor(model, info, factor)
        else:
            result = LmerResults.from_fit(model, info, factor)
        if result.is_singular:
            warnings.warn(
                "boundary (singular) fit: see help(mm.LmerResults.is_singular)", SingularFitWarning, stacklevel=3
            )
        return result


def _informative_rows(weights: np.ndarray | None) -> np.ndarray | None:
    """Positions of the rows with non-zero weight, or None when that is every row."""
    if weights is None or np.all(weights > 0):
        return None
    return np.flatnonzero(weights > 0)


@argument_kinds(data=FitData(), settings=_SETTINGS, weights=_WEIGHTS, correlation=_CORRELATION, method=_METHOD)
def lmer(
    formula: str,
    data: pd.DataFrame,
    *,
    REML: bool = True,
    weights: Any = None,
    offset: Any = None,
    contrasts: Mapping[str, str] | None = None,
    settings: OptimizerSettings | None = None,
    correlation: CorAR1 | None = None,
    start: Any = None,
    na_action: str = "omit",
    method: str | None = None,
    max_memory: Any = None,
) -> LmerResults:
    """Fit a linear mixed model written in lme4's formula language.

    Parameters
    ----------
    formula : str
        e.g. ``"Reaction ~ Days + (Days | Subject)"``; random-effects terms are
        ``(expr | group)``, ``(expr || group)`` for uncorrelated effects,
        ``(1 | a/b)`` for nesting and ``(1 | a:b)`` for interactions.
    data : DataFrame, polars DataFrame, pyarrow Table, dask DataFrame or str
        Rows with a missing value in any variable used are dropped.  A dask
        DataFrame, or a path or glob of Parquet files (read with dask), is
        fitted without bringing its rows into memory
        (:func:`mixedmodels.dask.lmer`; ``weights`` and ``offset`` are then
        column names).
    REML : bool
        Restricted maximum likelihood (default, as lme4) or maximum likelihood.
    weights : array-like or VarIdent, optional
        Prior weights, one per row of ``data``, non-negative.  A row of weight
        0 contributes nothing: the estimates are those of the fit without it
        (lme4 cannot fit it: its criterion is infinite), it keeps its fitted
        value and response residual, and ``nobs`` counts it, as lme4's does.
        Rows with a missing (NaN) weight are dropped like rows with missing
        data (as lme4's model frame); infinite weights are refused.
        Or ``mm.var_ident("column")``: a residual SD per level of the column,
        estimated (nlme's ``weights = varIdent(form = ~ 1 | column)``).
    offset : array-like, optional
        A known component of the linear predictor, one per row of ``data``.
        Rows with a missing (NaN) offset are dropped like rows with missing
        data (as lme4, and as ``offset(o)`` in the formula); infinite values
        are refused.
    contrasts : dict, optional
        Per-variable contrasts: ``{"condition": "sum"}`` ("treatment", "sum",
        "helmert", "poly").
    settings : OptimizerSettings, optional
        Optimizer tolerances.
    correlation : CorAR1, optional
        ``mm.cor_ar1("time", group="g")``: AR(1) residuals within each level of
        ``g`` at whole-number times one apart (nlme's ``corAR1(form = ~ time | g)``);
        ``g`` must be nested in the random-effects grouping factors.
    start : array-like or dict, optional
        Where the optimizer starts (lme4's ``start``): theta (lme4's order,
        ``model.theta_names``), or ``{"theta": ...}``.  By default the better
        of lme4's start and a moment estimate.
    na_action : {"omit", "exclude"}
        Rows with missing values are left out of the fit either way; with
        ``"exclude"`` (R's ``na.exclude``) fitted values, residuals,
        predictions without new data, simulations, weights and the influence
        diagnostics have a NaN for each of them, so they line up with ``data``.
    max_memory : int, float or str, optional
        The most memory the model may use, in bytes or as text (``"8GB"``).  Its
        size is estimated from the design before the matrices are formed (X,
        and the dense block of the random effects after the first term's); a
        model whose estimate exceeds this -- by default the memory available
        now -- is refused with the estimate and what to do.
    method : None
        Not an argument of lmer: ``method="ML"`` (nlme's and old lme4's spelling) is
        ``REML=False`` here, and a MixedModelsError says so.

    Returns
    -------
    LmerResults
    """
    check_arguments({"formula": formula, "data": data, "method": method})
    if method is not None:
        raise ModelSpecError(_method_message(method))
    if is_dask_input(data):  # weights and offset are column names there: mixedmodels.dask checks its arguments
        from ..dask import lmer as dask_lmer  # upward: data on Dask are fitted there (see tests/test_layering.py)

        return dask_lmer(
            formula,
            data,
            REML=REML,
            weights=weights,
            offset=offset,
            contrasts=contrasts,
            settings=settings,
            start=start,
            na_action=na_action,
            correlation=correlation,
        )
    data = as_pandas(data)  # polars DataFrames and pyarrow Tables are fitted as their pandas copies
    # formula, data and method were checked above: once is enough (as_pandas gives a pandas DataFrame or data itself)
    check_arguments({name: value for name, value in locals().items() if name not in ("formula", "data", "method")})
    model = LinearMixedModel._from_formula(  # the arguments were checked above
        formula,
        data,
        REML=REML,
        weights=weights,
        offset=offset,
        contrasts=contrasts,
        correlation=correlation,
        na_action=na_action,
        max_memory=max_memory,
    )
    return model._fit(settings, None if start is None else model.check_theta(start_theta(start)))


def start_theta(start: Any) -> Any:
    """lme4's ``start``: theta itself (a sequence, or a dict by theta's names), or ``{"theta": ...}``."""
    if isinstance(start, Mapping) and ("theta" in start or "fixef" in start):
        extra = [k for k in start if k != "theta"]
        if extra or "theta" not in start:
            raise ModelSpecError(f"lmer's start is theta or {{'theta': ...}}; got the keys {list(start)}")
        return start["theta"]
    return start


def _method_message(method: Any) -> str:
    """What to write instead of nlme's (and old lme4's) ``method=`` argument."""
    wanted = str(method).upper() if isinstance(method, str) else None
    if wanted == "ML":
        return (
            "lmer has no method= argument: for maximum likelihood (nlme's method='ML') use REML=False, "
            "e.g. mm.lmer(formula, data, REML=False)"
        )
    if wanted == "REML":
        return "lmer has no method= argument: REML is the default (REML=True); drop method='REML'"
    return f"lmer has no method= argument (got {method!r}); choose the criterion with REML=True (default) or REML=False"

"""The immutable results of a linear mixed-model fit (lme4's ``merMod``).

Everything a user reads off a fit lives here: ``fixef``, ``vcov``, ``sigma``,
``theta``, ``varcorr``, ``ranef``, ``coef``, fitted values, residuals,
information criteria and the summary.  A results object never changes after
it is made; derived quantities are computed on first use and cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.linalg import lapack

from .._validate import (
    Anything,
    Duck,
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
from ..convergence import BOUNDARY_TOLERANCE
from ..design.random import unique_group_names
from ..errors import MixedModelsError
from ..fitted import InformationCriteria, MixedModel
from ..linalg.dense import triangular_inverse
from ..linalg.dense_system import DenseFactor
from ..optim import OptInfo

if TYPE_CHECKING:
    from ..linalg import Factorization

__all__ = ["LmerResults", "FixedEffects", "SINGULAR_TOLERANCE"]

SINGULAR_TOLERANCE = BOUNDARY_TOLERANCE  # one boundary for is_singular and the convergence checks
FACTOR = Duck("logdet_re", "solve", what="a factorization (model.crossprods.factorize(theta))", allow_none=True)
_RESIDUAL_TYPES = ("response", "pearson", "working", "deviance", "normalized")


class FixedEffects(pd.Series):
    """The fixed-effects estimates: a Series that can also be called as lme4's ``fixef()``.

    ``m.fixef`` is the Series of the estimated coefficients; ``m.fixef(add_dropped=True)``
    (lme4's ``fixef(m, add.dropped = TRUE)``) puts NaN where X had columns that
    were dropped as aliased, so the result has every column of the full design.
    Arithmetic on it gives plain Series.
    """

    _metadata = ["dropped"]  # ((position in the full design, name), ...)

    @property
    def _constructor(self):
        return pd.Series

    def __call__(self, add_dropped: bool = False) -> pd.Series:
        values, names = list(self.to_numpy(dtype=float)), list(self.index)
        if check_bool(add_dropped, "add_dropped"):
            for position, name in sorted(getattr(self, "dropped", ()) or ()):
                values.insert(position, np.nan)
                names.insert(position, name)
        return pd.Series(values, index=names, name=self.name, dtype=float)


@dataclass(frozen=True, eq=False)
class LmerResults(InformationCriteria):
    """A fitted linear mixed model.

    Attributes
    ----------
    model : LinearMixedModel
        The model definition that was fitted.
    theta : ndarray
        Relative covariance parameters at the optimum (lme4's order).
    beta : ndarray
        Fixed-effects estimates.
    sigma : float
        Residual standard deviation.
    objective : float
        REML criterion (REML fits) or deviance -2 logLik (ML fits).
    optinfo : OptInfo
        Optimizer log: evaluations, time, convergence message.
    """

    model: MixedModel
    theta: np.ndarray
    beta: np.ndarray
    sigma: float
    objective: float
    optinfo: OptInfo
    _factor: "Factorization | None"
    _spherical: tuple[np.ndarray, ...] | None

    @classmethod
    @argument_kinds(
        model=Duck("inputs", "crossprods", what="a LinearMixedModel"), info=Instance(OptInfo), factor=FACTOR
    )
    def from_fit(cls, model: MixedModel, info: OptInfo, factor: "Factorization | None" = None) -> "LmerResults":
        """Assemble the results from the optimizer's final theta (and its factorization, if at hand)."""
        check_arguments(locals())
        if factor is None:
            factor = model.crossprods.objective_factor(info.final)  # as the optimizer factors: same objective
        beta, spherical = factor.solve()
        dof = model.n_likelihood - (model.nfixef if model.REML else 0)
        sigma = float(np.sqrt(factor.pwrss() / dof))
        return cls(model, info.final.copy(), beta, sigma, model.objective_from(factor), info, factor, tuple(spherical))

    @classmethod
    @argument_kinds(
        model=Duck("inputs", "crossprods", what="a LinearMixedModel"),
        info=Instance(OptInfo),
        factor=Instance(DenseFactor, what="the dense factor at the optimum (model.crossprods.dense_system.factor)"),
    )
    def from_dense_factor(cls, model: MixedModel, info: OptInfo, factor: DenseFactor) -> "LmerResults":
        """The results of a small model from the dense factor of its whole system at the optimum
        (:mod:`mixedmodels.linalg.dense_system`), whose objective is ``info.fmin``.

        With ``L_X`` the factor's X block and ``l_y`` the y row beside it,
        ``L_X' beta = l_y`` and ``sigma^2 = r^2 / dof`` (as :meth:`from_fit`
        reads them off the blocked factor); that factor and the modes are
        formed on first use.
        """
        check_arguments(locals())
        return cls._from_dense_factor(model, info, factor)

    @classmethod
    def _from_dense_factor(cls, model: MixedModel, info: OptInfo, factor: DenseFactor) -> "LmerResults":
        """:meth:`from_dense_factor` for arguments known to be right (the fit's own)."""
        nre, p = factor.nre, factor.nfixef
        x_block, y_row = factor.lower[nre : nre + p, nre : nre + p], factor.lower[-1, nre : nre + p]
        beta, _ = lapack.dtrtrs(x_block, y_row, lower=1, trans=1)
        dof = model.n_likelihood - (model.nfixef if model.REML else 0)
        sigma = float(np.sqrt(factor.pwrss() / dof))
        return cls(model, info.final.copy(), beta, sigma, float(info.fmin), info, None, None)

    @classmethod
    @argument_kinds(
        model=Duck("inputs", "crossprods", what="a LinearMixedModel"),
        info=Instance(OptInfo),
        beta=Numbers(),
        sigma=Real(0.0),
        objective=Real(allow_inf=True),
    )
    def from_estimates(
        cls, model: MixedModel, info: OptInfo, beta: np.ndarray, sigma: float, objective: float
    ) -> "LmerResults":
        """Results whose estimates were computed elsewhere (batched refits, from the same factor's
        formulas); the factorization and the modes are formed on first use, not for every refit."""
        check_arguments(locals())
        return cls(
            model,
            info.final.copy(),
            np.asarray(beta, dtype=float).copy(),
            float(sigma),
            float(objective),
            info,
            None,
            None,
        )

    # --- basic facts ----------------------------------------------------------
    @property
    def factor(self) -> "Factorization":
        """The blocked Cholesky factor at the optimum (:mod:`mixedmodels.linalg.blocked`): of
        ``[Z Lambda, X, y]`` with the prior weights for lmer, at PIRLS' weights for glmer.
        Prediction SEs, leverages and conditional covariances are solves with it."""
        if self._factor is None:
            object.__setattr__(self, "_factor", self.model.crossprods.objective_factor(self.theta))
        return self._factor

    @property
    def _modes(self) -> tuple[np.ndarray, ...]:
        """The spherical random effects u per term (``b = Lambda u``), from the factor."""
        if self._spherical is None:
            object.__setattr__(self, "_spherical", tuple(self.factor.solve()[1]))
        return self._spherical

    @property
    def REML(self) -> bool:
        """True for a REML fit, False for maximum likelihood."""
        return self.model.REML

    @property
    def formula(self) -> str:
        """The model formula as written."""
        return self.model.inputs.formula.formula

    @property
    def nobs(self) -> int:
        """Number of observations used (rows with a missing value are dropped)."""
        return self.model.nobs

    @property
    def terms(self):
        """The random-effects terms, in lme4's order (decreasing number of levels)."""
        return self.model.inputs.terms

    @property
    def fixef_names(self) -> list[str]:
        """Names of the fixed-effects columns, as R names them."""
        return list(self.model.inputs.fixed.column_names)

    @property
    def ngroups(self) -> dict[str, int]:
        """Number of levels per grouping factor."""
        return {t.group: t.nlevels for t in self.terms}

    @property
    def is_singular(self) -> bool:
        """True when a variance parameter is on the boundary (a diagonal theta < 1e-4), as lme4's isSingular."""
        lower = self.model.theta_lower
        return bool(np.logical_or.reduce(self.theta[lower == 0] < SINGULAR_TOLERANCE))  # np.any's reduction

    @property
    def npar(self) -> int:
        """Number of parameters: fixed effects, theta, sigma, and a residual structure's."""
        return self.model.nfixef + self.theta.size + 1 + self._residual_nparams

    # --- residual structure (nlme's varIdent, corAR1) ------------------------------
    @property
    def _residual(self):
        return getattr(self.model, "residual", None)

    @property
    def _residual_nparams(self) -> int:
        return 0 if self._residual is None else self._residual.nparams

    @property
    def residual_params(self) -> pd.Series:
        """A residual structure's estimates: ``ratio.<level>`` (residual SD of that level over the
        first level's, nlme's varIdent) and ``phi`` (AR(1) lag-1 correlation); empty without one."""
        if self._residual is None:
            return pd.Series([], dtype=float, name="estimate")
        return pd.Series(self._residual.params, index=self._residual.structure.names, name="estimate")

    @property
    def phi(self) -> float | None:
        """The AR(1) correlation of the residuals at lag 1 (``correlation=mm.cor_ar1(...)``), else None."""
        return None if self._residual is None else self._residual.structure.phi(self._residual.params)

    @property
    def var_ratios(self) -> pd.Series | None:
        """Residual SD of each level over the first level's (``weights=mm.var_ident(...)``), else None."""
        if self._residual is None or self._residual.structure.variance is None:
            return None
        structure = self._residual.structure
        return pd.Series(structure.ratios(self._residual.params), index=list(structure.levels), name="ratio")

    @property
    def sigma_by_level(self) -> pd.Series | None:
        """Residual SD of each level (``sigma`` times :attr:`var_ratios`), else None."""
        ratios = self.var_ratios
        return None if ratios is None else (self.sigma * ratios).rename("sigma")

    def _pearson_factors(self) -> np.ndarray | None:
        """Per row, sigma over the row's residual SD: sqrt(prior weight) over a varIdent level's ratio (None: all 1)."""
        inputs, factor = self.model.inputs, None
        if inputs.weights is not None:
            factor = np.sqrt(inputs.weights)
        if self._residual is not None:
            ratio = self._residual.structure.row_ratios(self._residual.params)
            factor = 1.0 / ratio if factor is None else factor / ratio
        return factor

    # --- fixed effects --------------------------------------------------------
    @property
    def fixef(self) -> FixedEffects:
        """Fixed-effects estimates, named as R names them; ``m.fixef(add_dropped=True)``
        adds NaN for the columns dropped as aliased (lme4's ``add.dropped``)."""
        inputs = self.model.inputs
        fixef = FixedEffects(self.beta, index=self.fixef_names, name="Estimate")
        fixef.dropped = tuple(zip(inputs.dropped_positions, inputs.dropped_columns))
        return fixef

    @cached_property
    def _vcov_unscaled(self) -> np.ndarray:
        """``(X' V^-1 X)^-1 / sigma^2`` from the X block of the Cholesky factor."""
        lx, _ = self.factor.fixed_factor()
        inv = triangular_inverse(lx)
        return inv.T @ inv

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of the fixed-effects estimates."""
        names = self.fixef_names
        return pd.DataFrame(self.sigma**2 * self._vcov_unscaled, index=names, columns=names)

    @property
    def se(self) -> pd.Series:
        """Standard errors of the fixed effects."""
        return pd.Series(
            np.sqrt(np.diag(self.sigma**2 * self._vcov_unscaled)), index=self.fixef_names, name="Std. Error"
        )

    # --- likelihood -----------------------------------------------------------
    @property
    def loglik(self) -> float:
        """Log-likelihood (the REML log-likelihood for REML fits, as lme4)."""
        return -0.5 * self.objective

    @property
    def deviance(self) -> float:
        """-2 logLik; for REML fits the REML criterion, as lme4's deviance()."""
        return self.objective

    @property
    def df_resid(self) -> int:
        return self.nobs - self.npar

    # --- variance components --------------------------------------------------
    def relative_factors(self) -> list[np.ndarray]:
        """Each term's relative covariance factor ``lambda`` (k x k), in block order.

        The term's random effects have covariance ``sigma**2 * lambda @ lambda.T``.
        """
        return [layout.lam(self.theta) for layout in self.model.layouts]

    @property
    def covariances(self) -> dict[str, np.ndarray]:
        """Covariance matrix of each term's random effects, keyed by lme4's group name."""
        names = unique_group_names([t.group for t in self.terms])
        return {n: self.sigma**2 * lam @ lam.T for n, lam in zip(names, self.relative_factors())}

    @property
    def varcorr(self) -> pd.DataFrame:
        """Variances, covariances and their SDs and correlations, like R's ``as.data.frame(VarCorr(m))``.

        A ``diag()`` term has no covariance rows (its effects are independent).
        """
        rows = []
        for (grp, cov), term in zip(self.covariances.items(), self.terms):
            cols = term.column_names
            sd = np.sqrt(np.diag(cov))
            rows += [(grp, c, None, cov[i, i], sd[i]) for i, c in enumerate(cols)]
            for j in range(len(cols) if term.structure.name != "diag" else 0):
                for i in range(j + 1, len(cols)):
                    corr = cov[i, j] / (sd[i] * sd[j]) if sd[i] * sd[j] > 0 else np.nan
                    rows.append((grp, cols[j], cols[i], cov[i, j], corr))
        rows.append(("Residual", None, None, self.sigma**2, self.sigma))
        return pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])

    # --- random effects -------------------------------------------------------
    @cached_property
    def conditional_modes(self) -> list[np.ndarray]:
        """Conditional modes ``b = Lambda u`` per term in block order, each (levels, columns)."""
        return [u @ lam.T for u, lam in zip(self._modes, self.relative_factors())]

    @cached_property
    def _condsd(self) -> list[np.ndarray]:
        from ..linalg.condvar import conditional_variances

        variances = conditional_variances(self.factor)
        return [
            self.sigma * np.sqrt(np.einsum("ij,qjk,ik->qi", lam, v, lam))
            for lam, v in zip(self.relative_factors(), variances)
        ]

    def _term_frame(self, index: int, values: np.ndarray) -> pd.DataFrame:
        term = self.terms[index]
        return pd.DataFrame(values, index=pd.Index(term.levels, name=term.group), columns=list(term.column_names))

    def _by_group(self, per_term: list[np.ndarray]) -> dict[str, pd.DataFrame]:
        """Join the terms of each grouping factor into one frame (levels x columns)."""
        out: dict[str, pd.DataFrame] = {}
        for i, term in enumerate(self.terms):
            frame = self._term_frame(i, per_term[i])
            out[term.group] = pd.concat([out[term.group], frame], axis=1) if term.group in out else frame
        return out

    @argument_kinds(condvar=Anything("checked below: True or False, or 'full' (the message names condvar)"))
    def ranef(self, condvar: bool | str = False) -> dict[str, pd.DataFrame]:
        """Conditional modes of the random effects, one DataFrame (levels x columns) per grouping factor.

        With ``condvar=True`` each frame has two column levels: ``"condval"``
        (the modes) and ``"condsd"`` (their conditional standard deviations).
        With ``condvar="full"`` each frame has one row per level and column
        (index ``(level, column)``): ``condval``, the mode, then the level's
        whole conditional covariance matrix, one column per random-effects
        column of the grouping factor (lme4's ``postVar``,
        ``sigma^2 Lambda (L L')^-1 Lambda'`` given beta; across the terms of a
        grouping factor too, where lme4 gives each term's block alone), so
        ``re["Subject"].loc["308"]`` is level 308's modes and covariance.
        """
        check_arguments(locals())
        full = isinstance(condvar, str) and condvar == "full"
        if not full:
            try:
                condvar = check_bool(condvar, "condvar")
            except MixedModelsError as exc:
                raise MixedModelsError(f"{exc} (or 'full' for the whole conditional covariances)") from None
        modes = self._by_group(self.conditional_modes)
        if full:
            return {g: self._full_condvar(g, modes[g]) for g in modes}
        if not condvar:
            return modes
        sds = self._by_group(self._condsd)
        return {g: pd.concat({"condval": modes[g], "condsd": sds[g]}, axis=1) for g in modes}

    def _full_condvar(self, group: str, modes: pd.DataFrame) -> pd.DataFrame:
        """One grouping factor's modes and per-level conditional covariances, stacked (see :meth:`ranef`)."""
        from ..linalg.rows import level_covariances

        terms = [i for i, t in enumerate(self.terms) if t.group == group]
        blocks = self.sigma**2 * level_covariances(self.factor, terms)
        columns = list(modes.columns)
        index = pd.MultiIndex.from_product([modes.index, columns], names=[modes.index.name, "column"])
        frame = pd.DataFrame(blocks.reshape(-1, len(columns)), index=index, columns=columns)
        frame.insert(0, "condval", modes.to_numpy().reshape(-1))
        return frame

    def coef(self) -> dict[str, pd.DataFrame]:
        """Per-level coefficients: fixed effects plus the level's random effects (lme4's coef())."""
        out = {}
        for group, modes in self.ranef().items():
            frame = pd.DataFrame(np.tile(self.beta, (len(modes), 1)), index=modes.index, columns=self.fixef_names)
            for col in modes.columns:
                if col in frame.columns:
                    frame[col] += modes[col].to_numpy()
                else:
                    frame[col] = modes[col].to_numpy()
            out[group] = frame
        return out

    # --- fitted values and residuals -------------------------------------------
    @cached_property
    def _linear_predictor(self) -> np.ndarray:
        inputs = self.model.inputs
        eta = inputs.fixed.matrix @ self.beta
        for term, modes in zip(self.terms, self.conditional_modes):
            eta = eta + np.einsum("ij,ij->i", term.z, modes[term.refs])
        return eta + inputs.offset if inputs.offset is not None else eta

    @property
    def fitted(self) -> pd.Series:
        """Fitted values, conditional on the random effects, indexed like the data rows used
        (every data row with ``na_action="exclude"``, NaN where a row was left out)."""
        return self.model.inputs.row_series(self._linear_predictor, "fitted")

    def residuals(self, type: str = "response", scaled: bool = False) -> pd.Series:
        """Residuals as lme4's ``residuals(lmer fit, type)``; ``scaled`` divides by sigma.

        ``"response"`` and ``"working"``: ``y - fitted``; ``"pearson"`` and
        ``"deviance"``: ``(y - fitted)`` over each row's residual SD ratio, i.e. times
        ``sqrt(w)`` with the prior weights ``w`` and over a ``var_ident`` level's ratio
        (for a linear mixed model the working weights are the prior weights and the
        deviance residuals the Pearson ones); ``"normalized"``: nlme's, the Pearson
        residuals decorrelated within ``cor_ar1`` groups (the Pearson ones without).
        """
        check_arguments(locals())
        if type not in _RESIDUAL_TYPES:
            raise MixedModelsError(
                f"unknown residual type {type!r}; choose one of {', '.join(map(repr, _RESIDUAL_TYPES))}"
            )
        inputs = self.model.inputs
        resid = inputs.y - self._linear_predictor
        if type == "normalized" and self._residual is not None:
            prior = 1.0 if inputs.weights is None else np.sqrt(inputs.weights)
            resid = self._residual.structure.normalize(resid * prior, self._residual.params)
        elif type in ("pearson", "deviance", "normalized"):
            factor = self._pearson_factors()
            resid = resid if factor is None else resid * factor
        if check_bool(scaled, "scaled"):
            resid = resid / self.sigma
        return inputs.row_series(resid, "residuals")

    @property
    def _prior_weights(self) -> np.ndarray:
        weights = self.model.inputs.weights
        return np.ones(self.model.inputs.nobs) if weights is None else np.asarray(weights, dtype=float)

    def _working_weights(self) -> np.ndarray:
        return self._prior_weights

    def weights(self, type: str = "prior") -> pd.Series:
        """Prior weights (1 without ``weights=``) or working weights, per row used.

        For a linear mixed model the working weights of the penalised least
        squares are the prior weights (lme4 1.1-31 has ``type = "working"``
        for glmer only).  For glmer: ``prior * mu_eta(eta)^2 / V(mu)`` at the
        conditional modes, the weights of PIRLS' last step.
        """
        check_arguments(locals())
        if type not in ("prior", "working"):
            raise MixedModelsError(f"unknown weights type {type!r}; choose 'prior' or 'working'")
        values = self._prior_weights if type == "prior" else self._working_weights()
        return self.model.inputs.row_series(values, "weights")

    # --- inference (implemented in mixedmodels.inference, mixedmodels.predict) -------
    def coef_table(self, ddf: str | None = None) -> pd.DataFrame:
        """Estimate, Std. Error, (df,) t value (, Pr(>|t|)) per fixed effect.

        ``ddf`` is None (no p-values, as lme4), ``"satterthwaite"`` or
        ``"kenward-roger"`` (lmerTest / pbkrtest).
        """
        check_arguments(locals())
        from ..inference.ddf import coef_table  # upward: a convenience method (see tests/test_layering.py)

        return coef_table(self, ddf=ddf)

    @argument_kinds(type=OneOf(Integer(1, 3), Text(), what="3 or 1 (or 'III', 'I')"))
    def anova(self, ddf: str = "satterthwaite", type: int | str = 3) -> pd.DataFrame:
        """F tests per fixed-effect term (lmerTest's anova: type III by default, or type 1)."""
        check_arguments(locals())
        from ..inference.ftests import anova_table  # upward: a convenience method

        return anova_table(self, ddf=ddf, type=type)

    def confint(self, method: str = "profile", level: float = 0.95, **kwargs) -> pd.DataFrame:
        """Confidence intervals ("wald", "profile" or "boot") with lme4's row names."""
        check_arguments(locals())
        from ..inference.intervals import confint  # upward: a convenience method

        return confint(self, method=method, level=level, **kwargs)

    def hatvalues(self) -> pd.Series:
        """Leverages, the diagonal of the hat matrix (lme4's ``hatvalues``; see :mod:`mixedmodels.inference.influence`)."""
        from ..inference.influence import hatvalues  # upward: a convenience method

        return hatvalues(self)

    def cooks_distance(self) -> pd.Series:
        """One-step Cook's distances (lme4's ``cooks.distance``); by deletion: ``m.influence().cooks_distance()``."""
        from ..inference.influence import cooks_distance  # upward: a convenience method

        return cooks_distance(self)

    def rstudent(self) -> pd.Series:
        """Studentized residuals (lme4's ``rstudent``)."""
        from ..inference.influence import rstudent  # upward: a convenience method

        return rstudent(self)

    def influence(self, group: str | None = None, **kwargs):
        """Refits without each case or each level of ``group`` (lme4's ``influence.merMod``):
        an :class:`~mixedmodels.inference.influence.InfluenceResult` with ``dfbeta()``,
        ``dfbetas()`` and ``cooks_distance()``."""
        check_arguments(locals())
        from ..inference.influence import influence  # upward: a convenience method

        return influence(self, group, **kwargs)

    def profile(self, **kwargs):
        """Zeta profiles of the parameters (lme4's profile.merMod)."""
        from ..inference.profile import profile  # upward: a convenience method

        return profile(self, **kwargs)

    def predict(
        self,
        newdata: pd.DataFrame | None = None,
        re_form: str | None = None,
        allow_new_levels: bool = False,
        type: str = "response",
        **kwargs,
    ) -> pd.Series | pd.DataFrame:
        """Predictions with all (default), none (``re_form="~0"``) or some random effects.

        Extra keywords go to :func:`mixedmodels.predict.predict`: ``se_fit=True``
        and ``interval="confidence" | "prediction"`` (a DataFrame with ``fit``,
        ``se_fit``, ``lower``, ``upper``; lme4 >= 2.0's ``se.fit``), ``level``,
        ``newparams={"theta", "beta", "sigma"}``, ``offset=`` for new data.
        """
        check_arguments(locals())
        from ..predict import predict  # upward: a convenience method

        return predict(self, newdata, re_form=re_form, allow_new_levels=allow_new_levels, type=type, **kwargs)

    @argument_kinds(y=PerRow())
    def refit(self, y) -> "LmerResults":
        """The same model fitted to a new response ``y`` (lme4's ``refit``), from this fit's theta.

        Reuses the design, the cross-products (only their y row is new) and
        the symbolic analysis; ``y`` has one value per row of the fit.
        """
        check_arguments(locals())
        from ..inference.bootstrap import refit  # upward: a convenience method

        return refit(self, y)

    def simulate(
        self, nsim: int = 1, seed=None, newdata: pd.DataFrame | None = None, re_form: str | bool | None = "~0", **kwargs
    ) -> pd.DataFrame:
        """Simulated responses (lme4's simulate), with lme4's ``re.form``.

        ``re_form="~0"`` (default, R's ``NA``): new random effects for every term;
        ``re_form=None`` (R's ``NULL``): all kept at their conditional modes;
        ``re_form="~ (1 | g)"``: the named terms kept, the others drawn anew.
        Extra keywords (``newparams=``, ``weights=`` for new data, the older ``use_re=``) go to
        :func:`mixedmodels.simulate.simulate`.
        """
        check_arguments(locals())
        from ..simulate import simulate  # upward: a convenience method

        return simulate(self, nsim=nsim, seed=seed, newdata=newdata, re_form=re_form, **kwargs)

    # --- display ----------------------------------------------------------------
    def summary(self, ddf: str | None = None):
        """lme4's summary layout as a printable object (also renders as HTML in Jupyter).

        With ``ddf="satterthwaite"`` or ``"kenward-roger"`` the fixed-effects
        table gains df and Pr(>|t|) columns, as lmerTest's summary.
        """
        check_arguments(locals())
        from .summary import LmerSummary

        return LmerSummary(self, ddf=ddf)

    def __repr__(self) -> str:
        method = "REML" if self.REML else "ML"
        return f"<LmerResults {self.formula!r} ({method}), objective={self.objective:.4f}>"

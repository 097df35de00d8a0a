"""Posterior draws of a Bayesian mixed model and what users read off them.

:class:`BayesResults` mirrors :class:`~mixedmodels.lmm.results.LmerResults` where
the two agree in meaning (``fixef``, ``sigma``, ``covariances``, ``ranef()``,
``coef()`` are posterior means) and adds what only draws give: ``summary()``
with MCMC diagnostics, ``hdi()`` (tidy highest-density intervals of every
parameter and every group's effects), ``idata`` (ArviZ), and
``posterior_predict()``.

Parameter names follow lme4's ``confint()``: fixed effects by column name,
``sd_(Intercept)|Subject``, ``cor_Days.(Intercept)|Subject``, ``sigma``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..errors import DataError, MixedModelsError
from .._validate import Flag, PerRow, TextList, check_arguments, check_bool, argument_kinds
from .diagnostics import hdi as _hdi
from .diagnostics import rhat, summarize_draws
from .model import BayesModel, draws_table, inverse_link, linear_predictor_draws, pointwise_loglik

__all__ = ["BayesResults", "EFFECTS"]

EFFECTS = ("fixed", "ran_pars", "ran_vals", "ran_coefs")
_LOGLIK_LIMIT = 50_000_000


@dataclass(frozen=True)
class _Param:
    """One reported scalar parameter: its lme4 name, kind, group and term, and where its draws are."""

    name: str
    effect: str  # "fixed" or "ran_pars"
    group: str | None
    term: str
    values: Any = None


@dataclass(frozen=True, eq=False)
class BayesResults:
    """Posterior (or prior) draws of a Bayesian mixed model.

    Attributes
    ----------
    model : BayesModel
        The model, its inputs (``model.inputs``) and its priors.
    draws : dict
        NumPy draws ``(chains, draws, ...)``: ``"beta"``, per term lists
        ``"sd"``, ``"cor"`` (None for one-column terms) and ``"b"`` (the group
        effects, levels x columns), and ``"sigma"`` (None without one).
    stats : dict or None
        Per-transition sampler statistics (``diverging``, ``n_steps``,
        ``tree_depth``, ``acceptance_rate``, ``energy``, ``lp``); None for
        prior draws.
    settings : SamplerSettings or None
    seed : int
        The seed that reproduces these draws.
    prior_only : bool
        True when the draws are from the prior (``prior_only=True``).
    seconds : float
        Sampling time, compilation included.
    """

    model: BayesModel
    draws: dict
    stats: dict | None
    settings: Any
    seed: int
    prior_only: bool = False
    seconds: float = 0.0

    # --- facts ------------------------------------------------------------------
    @property
    def formula(self) -> str:
        return self.model.inputs.formula.formula

    @property
    def family(self):
        return self.model.family

    @property
    def terms(self):
        return self.model.terms

    @property
    def nobs(self) -> int:
        return self.model.nobs

    @property
    def nchains(self) -> int:
        return int(self.draws["beta"].shape[0])

    @property
    def ndraws(self) -> int:
        """Draws per chain."""
        return int(self.draws["beta"].shape[1])

    @property
    def fixef_names(self) -> list[str]:
        return list(self.model.fixef_names)

    @property
    def ngroups(self) -> dict[str, int]:
        return {t.group: t.nlevels for t in self.terms}

    # --- posterior means, shaped like LmerResults ----------------------------------
    @property
    def beta(self) -> np.ndarray:
        return self.draws["beta"].mean(axis=(0, 1))

    @property
    def fixef(self) -> pd.Series:
        """Posterior means of the fixed effects."""
        return pd.Series(self.beta, index=self.fixef_names, name="mean")

    @property
    def sigma(self) -> float:
        """Posterior mean of the residual SD (1.0 for binomial and Poisson models, as lme4)."""
        s = self.draws["sigma"]
        return float(np.mean(s)) if s is not None else 1.0

    @property
    def covariances(self) -> dict[str, np.ndarray]:
        """Posterior mean covariance matrix of each term's random effects, keyed like LmerResults'."""
        out = {}
        for name, sd, cor in zip(self.model.group_names, self.draws["sd"], self.draws["cor"]):
            cov = sd[..., :, None] * sd[..., None, :]
            out[name] = (cov * cor if cor is not None else cov).mean(axis=(0, 1))
        return out

    def _flat(self, values: np.ndarray) -> np.ndarray:
        return values.reshape((-1,) + values.shape[2:])

    def _group_frames(self, per_term: list[np.ndarray]) -> dict[str, pd.DataFrame]:
        out: dict[str, pd.DataFrame] = {}
        for term, values in zip(self.terms, per_term):
            frame = pd.DataFrame(values, index=pd.Index(term.levels, name=term.group), columns=list(term.column_names))
            out[term.group] = pd.concat([out[term.group], frame], axis=1) if term.group in out else frame
        return out

    @argument_kinds(draws=Flag())
    def ranef(self, draws: bool = False) -> dict[str, pd.DataFrame]:
        """Group effects ``b`` per grouping factor.

        ``draws=False``: posterior means (levels x columns, like lme4's
        conditional modes).  ``draws=True``: every draw, rows ``(chain, draw)``,
        columns ``(level, column)``.
        """
        check_arguments(locals())
        if not check_bool(draws, "draws"):
            return self._group_frames([b.mean(axis=(0, 1)) for b in self.draws["b"]])
        out: dict[str, pd.DataFrame] = {}
        for term, b in zip(self.terms, self.draws["b"]):
            cols = pd.MultiIndex.from_product([list(term.levels), list(term.column_names)], names=[term.group, "term"])
            frame = draws_table(b.reshape(b.shape[:2] + (-1,)), list(cols))
            frame.columns = cols
            if term.group in out:
                frame = pd.concat([out[term.group], frame], axis=1).sort_index(axis=1, level=0, sort_remaining=False)
            out[term.group] = frame
        return out

    def coef(self) -> dict[str, pd.DataFrame]:
        """Posterior means of each level's coefficients ``beta + b`` (lme4's ``coef()``)."""
        out = {}
        beta = self.beta
        for group, modes in self.ranef().items():
            frame = pd.DataFrame(np.tile(beta, (len(modes), 1)), index=modes.index, columns=self.fixef_names)
            for col in modes.columns:
                frame[col] = frame[col] + modes[col].to_numpy() if col in frame.columns else modes[col].to_numpy()
            out[group] = frame
        return out

    # --- parameters, summaries, intervals ---------------------------------------------
    @cached_property
    def _params(self) -> list[_Param]:
        params = [_Param(n, "fixed", None, n, self.draws["beta"][..., j]) for j, n in enumerate(self.fixef_names)]
        for gname, term, sd, cor in zip(self.model.group_names, self.terms, self.draws["sd"], self.draws["cor"]):
            cols = term.column_names
            params += [_Param(f"sd_{c}|{gname}", "ran_pars", gname, f"sd_{c}", sd[..., i]) for i, c in enumerate(cols)]
            if cor is not None:
                for i in range(len(cols)):
                    for j in range(i + 1, len(cols)):
                        term_name = f"cor_{cols[j]}.{cols[i]}"
                        params.append(_Param(f"{term_name}|{gname}", "ran_pars", gname, term_name, cor[..., j, i]))
        if self.draws["sigma"] is not None:
            params.append(_Param("sigma", "ran_pars", "Residual", "sigma", self.draws["sigma"]))
        return params

    def parameters(self) -> pd.DataFrame:
        """Draws of every fixed effect, SD, correlation and sigma: rows ``(chain, draw)``, lme4's names."""
        values = np.stack([p.values for p in self._params], axis=-1)
        return draws_table(values, [p.name for p in self._params])

    def summary(self, prob: float = 0.95):
        """Posterior mean, SD, ``prob`` HDI, MCSE, bulk/tail ESS and R-hat of every parameter.

        Returns a printable :class:`~mixedmodels.bayes.summary.BayesSummary`;
        its ``.table`` is the DataFrame.
        """
        check_arguments(locals())
        from .summary import BayesSummary

        return BayesSummary(self, prob)

    def summary_table(self, prob: float = 0.95) -> pd.DataFrame:
        """The table of :meth:`summary` (index: lme4's parameter names)."""
        check_arguments(locals())
        low, high = _interval_labels(prob)
        rows = []
        for p in self._params:
            s = summarize_draws(p.values, prob)
            rows.append(
                {
                    "mean": s["mean"],
                    "sd": s["sd"],
                    low: s["lower"],
                    high: s["upper"],
                    "mcse": s["mcse"],
                    "ess_bulk": s["ess_bulk"],
                    "ess_tail": s["ess_tail"],
                    "r_hat": s["r_hat"],
                }
            )
        return pd.DataFrame(rows, index=pd.Index([p.name for p in self._params], name="parameter"))

    @argument_kinds(effects=TextList())
    def hdi(self, prob: float = 0.95, effects: Sequence[str] | str = EFFECTS) -> pd.DataFrame:
        """Tidy posterior means, SDs and ``prob`` highest-density intervals.

        Parameters
        ----------
        prob : float
            Interval probability (0.95: the "95 % HDI").
        effects : sequence of str
            Any of ``"fixed"`` (fixed effects), ``"ran_pars"`` (SDs,
            correlations, sigma), ``"ran_vals"`` (each level's deviation
            ``b``) and ``"ran_coefs"`` (each level's coefficient ``beta + b``,
            e.g. a player's ability), as broom.mixed names them.

        Returns
        -------
        DataFrame
            Columns ``effect``, ``group``, ``level``, ``term``, ``mean``,
            ``sd``, ``lower``, ``upper``.
        """
        check_arguments(locals())
        wanted = (effects,) if isinstance(effects, str) else tuple(effects)
        bad = [e for e in wanted if e not in EFFECTS]
        if bad:
            raise MixedModelsError(f"unknown effects {bad}; choose from {list(EFFECTS)}")
        frames = []
        for effect in EFFECTS:
            if effect not in wanted:
                continue
            if effect in ("fixed", "ran_pars"):
                chosen = [p for p in self._params if p.effect == effect]
                if chosen:
                    values = np.stack([self._flat(p.values) for p in chosen], axis=-1)
                    frames.append(_tidy(values, effect, [(p.group, None, p.term) for p in chosen], prob))
            else:
                frames += self._group_intervals(effect, prob)
        columns = ["effect", "group", "level", "term", "mean", "sd", "lower", "upper"]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)

    def _group_intervals(self, effect: str, prob: float) -> list[pd.DataFrame]:
        beta = self._flat(self.draws["beta"])
        frames = []
        for term, b in zip(self.terms, self.draws["b"]):
            values = self._flat(b).copy()
            if effect == "ran_coefs":
                for c, col in enumerate(term.column_names):
                    if col in self.fixef_names:
                        values[:, :, c] += beta[:, self.fixef_names.index(col)][:, None]
            labels = [(term.group, level, col) for level in term.levels for col in term.column_names]
            frames.append(_tidy(values.reshape(values.shape[0], -1), effect, labels, prob))
        return frames

    # --- diagnostics ----------------------------------------------------------------
    @cached_property
    def diagnostics(self) -> dict[str, Any]:
        """Divergent transitions, tree-depth hits, largest R-hat (and which parameter), smallest bulk ESS."""
        names = [p.name for p in self._params]
        values = [p.values for p in self._params]
        for gname, term, b in zip(self.model.group_names, self.terms, self.draws["b"]):
            for j, level in enumerate(term.levels):
                for c, col in enumerate(term.column_names):
                    names.append(f"b[{col}|{gname}:{level}]")
                    values.append(b[..., j, c])
        rhats = np.array([rhat(v) for v in values])
        worst = int(np.nanargmax(rhats)) if np.any(np.isfinite(rhats)) else None
        stats = self.stats or {}
        depth = self.settings.max_tree_depth if self.settings is not None else None
        table = self.summary_table() if not self.prior_only else None
        return {
            "divergences": int(np.sum(stats["diverging"])) if stats else 0,
            "max_tree_depth_hits": int(np.sum(stats["tree_depth"] >= depth)) if stats and depth else 0,
            "max_r_hat": float(rhats[worst]) if worst is not None else np.nan,
            "max_r_hat_parameter": names[worst] if worst is not None else None,
            "n_r_hat_above_1.01": int(np.sum(rhats > 1.01)),
            "min_ess_bulk": float(table["ess_bulk"].min()) if table is not None else np.nan,
        }

    # --- ArviZ -------------------------------------------------------------------------
    @cached_property
    def idata(self):
        """The draws as ArviZ ``InferenceData`` (posterior or prior, sample stats, log-likelihood, observed data)."""
        return self.to_idata()

    @argument_kinds(log_likelihood=Flag(allow_none=True))
    def to_idata(self, log_likelihood: bool | None = None):
        """ArviZ ``InferenceData``; ``log_likelihood=None`` includes it unless it would exceed 50 million values."""
        check_arguments(locals())
        from .idata import to_inference_data

        if check_bool(log_likelihood, "log_likelihood", allow_none=True) is None:
            log_likelihood = self.nchains * self.ndraws * self.nobs <= _LOGLIK_LIMIT
        return to_inference_data(self, log_likelihood=log_likelihood and not self.prior_only)

    def log_likelihood(self) -> np.ndarray:
        """Pointwise log-likelihood ``(chains, draws, nobs)`` (for LOO and WAIC)."""
        eta = self._eta(None, True, np.arange(self.nchains * self.ndraws), None)
        sigma = self._flat(self.draws["sigma"]) if self.draws["sigma"] is not None else None
        ll = pointwise_loglik(self.model, eta, sigma)
        return ll.reshape(self.nchains, self.ndraws, -1)

    # --- prediction ------------------------------------------------------------------------
    def _select(self, ndraws: int | None, rng: np.random.Generator) -> np.ndarray:
        total = self.nchains * self.ndraws
        if ndraws is None or ndraws >= total:
            return np.arange(total)
        if ndraws < 1:
            raise MixedModelsError(f"ndraws must be at least 1, got {ndraws}")
        return np.sort(rng.choice(total, size=int(ndraws), replace=False))

    def _eta(self, newdata: pd.DataFrame | None, use_re: bool, idx: np.ndarray, rng, offset: Any = None) -> np.ndarray:
        from .predict import new_design

        beta = self._flat(self.draws["beta"])[idx]
        x, offs, z, refs, b = new_design(self, newdata, check_bool(use_re, "use_re"), idx, rng, offset)
        return linear_predictor_draws(beta, b, x, z, refs, offs)

    def posterior_epred(
        self,
        newdata: pd.DataFrame | None = None,
        use_re: bool = True,
        *,
        ndraws: int | None = None,
        seed: Any = None,
        offset: Any = None,
    ) -> pd.DataFrame:
        """Draws of the expected response ``g^-1(eta)``: rows are draws, columns the data rows.

        A level of a grouping factor not seen in the fit gets new effects drawn
        from the estimated population distribution, per draw.
        """
        check_arguments(locals())
        rng = np.random.default_rng(seed)
        idx = self._select(ndraws, rng)
        mu = inverse_link(self.model.spec.link, self._eta(newdata, use_re, idx, rng, offset))
        return _draw_frame(mu, self, newdata)

    def predict(self, newdata: pd.DataFrame | None = None, use_re: bool = True, **kwargs: Any) -> pd.Series:
        """Posterior mean of the expected response for the fitted rows or ``newdata``."""
        check_arguments(locals())
        return self.posterior_epred(newdata, use_re, **kwargs).mean(axis=0).rename("predicted")

    @argument_kinds(trials=PerRow(allow_none=True))
    def posterior_predict(
        self,
        newdata: pd.DataFrame | None = None,
        use_re: bool = True,
        *,
        ndraws: int | None = None,
        seed: Any = None,
        trials: Any = None,
        weights: Any = None,
        offset: Any = None,
    ) -> pd.DataFrame:
        """Draws from the posterior predictive distribution (the prior predictive for ``prior_only`` fits).

        Parameters
        ----------
        newdata : DataFrame, optional
            Rows to predict (default: the rows used in the fit).
        use_re : bool
            Include the group effects (True) or predict at the population
            level (False, lme4's ``re.form = NA``).  New levels get effects
            drawn from ``N(0, Sigma)`` of each draw.
        ndraws : int, optional
            Use a random subset of this many draws (default all).
        seed : int, optional
        trials : int or array-like, optional
            Binomial trials for ``newdata`` rows when the response columns are
            not in ``newdata`` (default 1).
        weights : array-like, optional
            Gaussian prior weights for ``newdata`` rows (residual variance ``sigma^2 / w``).

        Returns
        -------
        DataFrame
            One row per draw, one column per data row: responses on the
            response's scale (Gaussian values; binomial successes for
            ``cbind`` responses, else proportions; Poisson counts).
        """
        check_arguments(locals())
        from .predict import simulate_response

        rng = np.random.default_rng(seed)
        idx = self._select(ndraws, rng)
        eta = self._eta(newdata, use_re, idx, rng, offset)
        sigma = self._flat(self.draws["sigma"])[idx] if self.draws["sigma"] is not None else None
        values = simulate_response(self, eta, sigma, newdata, rng, trials, weights)
        return _draw_frame(values, self, newdata)

    # --- priors -------------------------------------------------------------------------------
    def prior_summary(self) -> pd.DataFrame:
        """The prior of every parameter, and whether it was given or a default."""
        pr = self.model.priors
        rows = []
        for name, prior in zip(self.fixef_names, pr.fixef):
            note = " (predictors centred)" if name == "(Intercept)" and self.model.spec.center_index >= 0 else ""
            rows.append((name, "fixef", str(prior) + note, name in pr.user))
        for gname, term, sds, cor in zip(self.model.group_names, self.terms, pr.sd, pr.cor):
            for col, prior in zip(term.column_names, sds):
                key = f"sd_{col}|{gname}"
                rows.append((key, "sd", str(prior), key in pr.user))
            if cor is not None:
                rows.append((f"cor|{gname}", "cor", str(cor), f"cor|{gname}" in pr.user))
        if pr.sigma is not None:
            rows.append(("sigma", "sigma", str(pr.sigma), "sigma" in pr.user))
        frame = pd.DataFrame(rows, columns=["parameter", "class", "prior", "user"])
        frame["source"] = np.where(frame.pop("user"), "user", "default")
        return frame

    def __repr__(self) -> str:
        what = "prior draws" if self.prior_only else "posterior draws"
        return f"<BayesResults {self.formula!r} ({self.family.name}): {self.nchains} chains x {self.ndraws} {what}>"


def _interval_labels(prob: float) -> tuple[str, str]:
    tail = (1.0 - prob) / 2.0 * 100.0
    return f"hdi_{tail:g}%", f"hdi_{100.0 - tail:g}%"


def _tidy(values: np.ndarray, effect: str, labels: list[tuple], prob: float) -> pd.DataFrame:
    """Rows of the tidy HDI table from draws ``(S, K)`` and ``(group, level, term)`` labels."""
    bounds = _hdi(values, prob).reshape(-1, 2)
    return pd.DataFrame(
        {
            "effect": effect,
            "group": [g for g, _, _ in labels],
            "level": [lv for _, lv, _ in labels],
            "term": [t for _, _, t in labels],
            "mean": values.mean(axis=0),
            "sd": values.std(axis=0, ddof=1) if values.shape[0] > 1 else np.nan,
            "lower": bounds[:, 0],
            "upper": bounds[:, 1],
        }
    )


def _draw_frame(values: np.ndarray, result: BayesResults, newdata: pd.DataFrame | None) -> pd.DataFrame:
    index = result.model.inputs.row_index if newdata is None else newdata.index
    if values.shape[1] != len(index):
        raise DataError("internal: predictions do not match the rows")  # pragma: no cover
    return pd.DataFrame(values, index=pd.RangeIndex(values.shape[0], name="draw"), columns=index)

"""The Bayesian mixed model: the same model matrices as lmer/glmer, plus priors.

For fixed effects ``beta``, random-effects terms ``k = 1..K`` with ``q_k``
columns ``Z_k`` and ``J_k`` levels, the model is

    eta_i = x_i' beta + offset_i + sum_k z_ki' b_k[l_k(i)]
    b_kj  = diag(s_k) L_k u_kj,   u_kj ~ N(0, I_qk)        (non-centred)
    L_k   ~ LKJCholesky(eta),  s_kc ~ prior of the SD,  beta_j ~ prior of the coefficient
    y_i   ~ Normal(mu_i, sigma^2 / w_i)   or  Binomial(m_i, mu_i)  or  Poisson(mu_i),  mu_i = g^-1(eta_i)

so ``b_kj ~ N(0, Sigma_k)`` with ``Sigma_k = diag(s_k) L_k L_k' diag(s_k)``.

A term whose levels' data pin down their coefficients -- many observations per level, or the
no-pooling model as taught, ``(1 | player)`` with ``sd = Fixed(1000)`` -- is sampled centred
instead: the level coefficients ``gamma_kj = beta[match] + b_kj`` themselves (``beta[match]``
the fixed effects of the same columns, e.g. the intercept), with
``b_kj = gamma_kj - beta[match] ~ N(0, Sigma_k)``; :mod:`.parametrization` says which and why.
When X has an intercept, the other columns are centred at their means for
sampling (``beta`` is reported on the original scale) and the intercept's
prior applies to the intercept at the predictors' means, as in rstanarm and
brms.

:class:`BayesModel` holds the numbers; :mod:`mixedmodels.bayes.density`
turns them into the JAX log density; this module also draws from the prior
and evaluates linear predictors and log-likelihoods for stored draws with NumPy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd
from scipy import special

from ..errors import ModelSpecError
from .priors import LKJ, Fixed, Prior, as_prior_spec, check_prior, column_scale, default_priors
from .priors import response_scale
from .parametrization import check_parametrization, choose_parametrization, column_matches

__all__ = ["BayesModel", "ModelSpec", "PriorGroup", "TermSpec", "ResolvedPriors", "group_names"]

SUPPORTED_FAMILIES = ("gaussian", "binomial", "poisson")


# --------------------------------------------------------------------------- static description
@dataclass(frozen=True)
class PriorGroup:
    """Entries ``index`` of a parameter vector sharing a prior kind; ``free`` slices the sampled vector."""

    kind: str
    support: str
    index: tuple[int, ...]
    free: tuple[int, int]


@dataclass(frozen=True)
class TermSpec:
    """One random-effects term's structure.

    ``centred``: the term's group coefficients are sampled directly (see :mod:`.parametrization`),
    as ``gamma_j = b_j + beta[match]``; ``match`` gives, per column, the fixed effect it deviates
    from (-1 for none).
    """

    nlevels: int
    ncols: int
    sd_groups: tuple[PriorGroup, ...]
    nfree_sd: int
    centred: bool = False
    match: tuple[int, ...] = ()

    @property
    def correlated(self) -> bool:
        return self.ncols > 1


@dataclass(frozen=True)
class ModelSpec:
    """Everything about a model that changes the compiled sampler (hashable)."""

    family: str
    link: str
    nfixef: int
    beta_groups: tuple[PriorGroup, ...]
    nfree_beta: int
    center_index: int
    terms: tuple[TermSpec, ...]
    sigma_group: PriorGroup | None
    likelihood: bool = True


def group_names(terms) -> list[str]:
    """lme4's names of the terms' grouping factors: Subject, Subject.1, ... for repeats."""
    seen: dict[str, int] = {}
    out = []
    for term in terms:
        count = seen.get(term.group, 0)
        out.append(term.group if count == 0 else f"{term.group}.{count}")
        seen[term.group] = count + 1
    return out


# --------------------------------------------------------------------------- priors
@dataclass(frozen=True)
class ResolvedPriors:
    """The prior of every parameter, after defaults filled the gaps."""

    fixef: tuple[Prior, ...]
    sd: tuple[tuple[Prior, ...], ...]
    cor: tuple[LKJ | None, ...]
    sigma: Prior | None
    user: frozenset[str] = field(default_factory=frozenset)


def _lookup(mapping: Mapping[Any, Any], key: Any, used: set) -> Any:
    if key in mapping:
        used.add(key)
        return mapping[key]
    return None


def _resolve_fixef(given: Any, names: tuple[str, ...], defaults: dict[str, Prior], user: set[str]) -> tuple:
    if given is None:
        return tuple(defaults[n] for n in names)
    if isinstance(given, Prior):
        user.update(names)
        return tuple(check_prior(given, "fixef", f"fixed effect {n!r}") for n in names)
    if not isinstance(given, Mapping):
        raise ModelSpecError(f"priors['fixef'] must be a prior or a dict by coefficient name, got {given!r}")
    unknown = [k for k in given if k not in names]
    if unknown:
        raise ModelSpecError(
            f"priors['fixef'] names {unknown}, which are not fixed effects; the model's are {list(names)}"
        )
    user.update(given)
    return tuple(check_prior(given[n], "fixef", f"fixed effect {n!r}") if n in given else defaults[n] for n in names)


def _resolve_sd(given: Any, terms, gnames: list[str], defaults: list, user: set[str]) -> tuple:
    if given is not None and not isinstance(given, (Prior, Mapping)):
        raise ModelSpecError(f"priors['sd'] must be a prior or a dict by group (or (group, column)), got {given!r}")
    used: set = set()
    out = []
    for k, term in enumerate(terms):
        row = []
        for c, col in enumerate(term.column_names):
            where = f"the SD of {col!r} in {term.group!r}"
            chosen = given if isinstance(given, Prior) else None
            if isinstance(given, Mapping):
                chosen = _lookup(given, (term.group, col), used) or _lookup(given, term.group, used)
            if chosen is None:
                row.append(defaults[k][c])
            else:
                row.append(check_prior(chosen, "sd", where))
                user.add(f"sd_{col}|{gnames[k]}")
        out.append(tuple(row))
    if isinstance(given, Mapping):
        unknown = [k for k in given if k not in used]
        if unknown:
            valid = sorted({t.group for t in terms}) + [(t.group, c) for t in terms for c in t.column_names]
            raise ModelSpecError(f"priors['sd'] keys {unknown} match no random effect; use one of {valid}")
    return tuple(out)


def _resolve_cor(given: Any, terms, gnames: list[str], user: set[str]) -> tuple:
    if given is not None and not isinstance(given, (Prior, Mapping)):
        raise ModelSpecError(f"priors['cor'] must be LKJ(eta) or a dict by group, got {given!r}")
    used: set = set()
    out = []
    for k, term in enumerate(terms):
        if term.ncols < 2:
            out.append(None)
            continue
        chosen = given if isinstance(given, Prior) else None
        if isinstance(given, Mapping):
            chosen = _lookup(given, term.group, used)
        out.append(LKJ(1.0) if chosen is None else check_prior(chosen, "cor", f"the correlations in {term.group!r}"))
        if chosen is not None:
            user.add(f"cor|{gnames[k]}")
    if isinstance(given, Mapping):
        unknown = [k for k in given if k not in used]
        if unknown:
            valid = sorted({t.group for t in terms if t.ncols > 1})
            raise ModelSpecError(
                f"priors['cor'] keys {unknown} name no correlated random-effects term; use one of {valid}"
            )
    return tuple(out)


def resolve_priors(
    priors: Mapping[str, Any] | None, defaults: dict, names: tuple[str, ...], terms, family: str
) -> ResolvedPriors:
    """Merge the user's ``priors=`` with the defaults, validating names and supports."""
    given = as_prior_spec(priors)
    if not terms and ({"sd", "cor"} & set(given)):
        extra = sorted({"sd", "cor"} & set(given))
        raise ModelSpecError(
            f"priors {extra} were given but the model has no random-effects terms (no group SDs or "
            "correlations to put them on); drop them, or add a term such as (1 | group)"
        )
    user: set[str] = set()
    gnames = group_names(terms)
    fixef = _resolve_fixef(given.get("fixef"), names, defaults["fixef"], user)
    sd = _resolve_sd(given.get("sd"), terms, gnames, defaults["sd"], user)
    cor = _resolve_cor(given.get("cor"), terms, gnames, user)
    sigma = defaults["sigma"]
    if "sigma" in given:
        if family != "gaussian":
            raise ModelSpecError(f"the {family} family has no residual SD; remove 'sigma' from priors")
        sigma = check_prior(given["sigma"], "sigma", "the residual SD sigma")
        user.add("sigma")
    return ResolvedPriors(fixef, sd, cor, sigma, frozenset(user))


def _groups(priors: tuple[Prior, ...]) -> tuple[tuple[PriorGroup, ...], int]:
    """Group a vector's priors by (kind, support); free (sampled) entries get consecutive slots."""
    order: dict[tuple[str, str], list[int]] = {}
    for j, prior in enumerate(priors):
        order.setdefault((prior.kind, prior.support), []).append(j)
    groups, start = [], 0
    for (kind, support), index in order.items():
        size = 0 if support == "point" else len(index)
        groups.append(PriorGroup(kind, support, tuple(index), (start, start + size)))
        start += size
    return tuple(groups), start


def _group_params(priors: tuple[Prior, ...], groups: tuple[PriorGroup, ...]) -> tuple[np.ndarray, ...]:
    return tuple(np.array([priors[j].params() for j in g.index], dtype=float).reshape(len(g.index), -1) for g in groups)


def _constants(priors: tuple[Prior, ...]) -> np.ndarray:
    return np.array([p.value if isinstance(p, Fixed) else 0.0 for p in priors], dtype=float)


# --------------------------------------------------------------------------- the response
def _response_arrays(family, inputs) -> tuple[dict[str, np.ndarray], np.ndarray, bool]:
    """Likelihood data per family, the response on the mean scale, and whether it is cbind-like."""
    n = inputs.nobs
    if family.name == "gaussian":
        y = np.asarray(inputs.y, dtype=float)
        w = np.ones(n) if inputs.weights is None else np.asarray(inputs.weights, dtype=float)
        return {"y": y, "w": w}, y, False
    response = family.response(inputs.y, inputs.weights, inputs.formula.response)
    y, wt, m = (np.asarray(a, dtype=float) for a in (response.y, response.weights, response.trials))
    if family.name == "binomial":
        k = np.round(m * y)
        mr = np.round(m)
        ratio = np.divide(wt, m, out=np.zeros_like(wt), where=m > 0)
        lchoose = special.gammaln(mr + 1) - special.gammaln(k + 1) - special.gammaln(mr - k + 1)
        data = {"k": k, "trials": mr, "w": ratio, "lconst": lchoose}
        return data, y, np.asarray(inputs.y).ndim == 2
    return {"y": y, "w": wt, "lconst": -special.gammaln(y + 1)}, y, False


def _intercept_location(family, y_mean_scale: np.ndarray, weights: np.ndarray) -> float:
    """``g(ybar)``: the link of the (weighted) mean response, kept finite."""
    total = np.sum(weights)
    ybar = float(np.sum(weights * y_mean_scale) / total) if total > 0 else float(np.mean(y_mean_scale))
    if family.name == "binomial":
        ybar = min(max(ybar, 0.01), 0.99)
    elif family.name == "poisson":
        ybar = max(ybar, 0.01)
    with np.errstate(all="ignore"):
        value = float(np.asarray(family.link.link(np.array([ybar])))[0])
    return value if np.isfinite(value) else 0.0


# --------------------------------------------------------------------------- the model
@dataclass(frozen=True, eq=False)
class BayesModel:
    """A mixed model with priors, ready to sample.

    Attributes
    ----------
    inputs : ModelInputs
        The model frame and matrices shared with lmer/glmer.
    family : Family
    priors : ResolvedPriors
    spec : ModelSpec
        The hashable structure that the compiled sampler depends on.
    data : dict
        NumPy arrays the log density reads (centred X, response, prior parameters).
    fixef_names : tuple of str
    x_center : ndarray
        Column means subtracted from X for sampling (0 for the intercept and
        for uncentred models).
    scales : dict
        ``s_y``, per-column ``s_x`` and ``s_z`` and ``g(ybar)`` (see mixedmodels.bayes.priors).
    cbind : bool
        The binomial response was ``cbind(successes, failures)``.
    """

    inputs: Any
    family: Any
    priors: ResolvedPriors
    spec: ModelSpec
    data: dict
    fixef_names: tuple[str, ...]
    x_center: np.ndarray
    scales: dict
    cbind: bool = False

    @classmethod
    def build(
        cls,
        inputs,
        family,
        priors: Mapping[str, Any] | None = None,
        *,
        center: bool = True,
        parametrization: str = "auto",
    ) -> "BayesModel":
        """Assemble the model from lmer/glmer inputs, a family and the ``priors=`` argument.

        ``parametrization``: ``"auto"``, ``"centred"`` or ``"noncentred"`` group effects
        (see :mod:`mixedmodels.bayes.parametrization`).
        """
        how = check_parametrization(parametrization)
        if family.name not in SUPPORTED_FAMILIES:
            raise ModelSpecError(
                f"mm.bayes fits the gaussian, binomial and poisson families; {family.name!r} is not available yet"
            )
        for term in inputs.terms:
            if not term.structure.is_default():
                raise ModelSpecError(
                    f"mm.bayes models unstructured covariances; {term} has a {term.structure.name}() "
                    "structure (fit it with mm.lmer or mm.glmer)"
                )
        x = np.asarray(inputs.fixed.matrix, dtype=float)
        names = tuple(inputs.fixed.column_names)
        lik, y_mean, cbind = _response_arrays(family, inputs)
        scales = {
            "s_y": response_scale(y_mean, family.name),
            "s_x": np.array([column_scale(x[:, j]) for j in range(x.shape[1])]),
            "s_z": [np.array([column_scale(t.z[:, c]) for c in range(t.ncols)]) for t in inputs.terms],
            "location": _intercept_location(
                family, y_mean, lik["w"] if family.name != "binomial" else lik["trials"] * lik["w"]
            ),
        }
        defaults = default_priors(
            x, names, [(t.group, t.column_names, t.z) for t in inputs.terms], y_mean, family.name, scales["location"]
        )
        resolved = resolve_priors(priors, defaults, names, inputs.terms, family.name)
        ci = (
            names.index("(Intercept)")
            if center and "(Intercept)" in names and np.all(x[:, names.index("(Intercept)")] == 1)
            else -1
        )
        x_center = np.zeros(len(names))
        if ci >= 0:
            x_center = x.mean(axis=0)
            x_center[ci] = 0.0
        centred = choose_parametrization(inputs, family, resolved.sd, how, scales["s_y"])
        spec, data = _spec_and_data(inputs, family, resolved, x - x_center, x_center, ci, lik, centred)
        return cls(inputs, family, resolved, spec, data, names, x_center, scales, cbind)

    # --- facts -----------------------------------------------------------------
    @property
    def terms(self):
        return self.inputs.terms

    @property
    def nobs(self) -> int:
        return self.inputs.nobs

    @property
    def group_names(self) -> list[str]:
        return group_names(self.terms)

    @property
    def has_sigma(self) -> bool:
        return self.family.name == "gaussian"

    def without_likelihood(self) -> "BayesModel":
        from dataclasses import replace

        return replace(self, spec=replace(self.spec, likelihood=False))

    # --- starting values ---------------------------------------------------------
    def initial_values(self, rng: np.random.Generator, jitter: float = 1.0) -> dict:
        """Unconstrained starting values near a sensible point, jittered by ``jitter``."""
        spec, s = self.spec, self.scales
        beta = np.zeros(spec.nfree_beta)
        for g in spec.beta_groups:
            if g.support == "point":
                continue
            for slot, j in zip(range(*g.free), g.index):
                centre = s["location"] if j == spec.center_index else 0.0
                scale = (s["s_y"] if j == spec.center_index else s["s_y"] / s["s_x"][j]) * 0.25
                beta[slot] = (
                    centre + jitter * scale * rng.uniform(-1, 1) if g.support == "real" else jitter * rng.uniform(-1, 1)
                )
        beta_full = self._beta_start(beta)
        terms = []
        for k, ts in enumerate(spec.terms):
            sd = np.zeros(ts.nfree_sd)
            for g in ts.sd_groups:
                for slot, c in zip(range(*g.free), g.index):
                    start = np.log(0.5 * s["s_y"] / s["s_z"][k][c]) if g.support == "positive" else 0.0
                    sd[slot] = start + jitter * 0.5 * rng.uniform(-1, 1)
            ncor = ts.ncols * (ts.ncols - 1) // 2
            u = jitter * 0.5 * rng.uniform(-1, 1, size=(ts.nlevels, ts.ncols))
            if ts.centred:  # the level coefficients: near the population's, spread like the data
                centre = np.array([beta_full[j] if j >= 0 else 0.0 for j in ts.match])
                u = centre + u * (s["s_y"] / s["s_z"][k])
            terms.append({"u": u, "sd": sd, "cor": jitter * 0.5 * rng.uniform(-1, 1, size=ncor)})
        sigma = np.zeros(0 if spec.sigma_group is None or spec.sigma_group.support == "point" else 1)
        if sigma.size:
            start = np.log(s["s_y"]) if spec.sigma_group.support == "positive" else 0.0
            sigma[0] = start + jitter * 0.5 * rng.uniform(-1, 1)
        return {"beta": beta, "terms": tuple(terms), "sigma": sigma}

    def _beta_start(self, free: np.ndarray) -> np.ndarray:
        """Every fixed effect (centred scale) at the start: the free ones' values, the fixed ones' constants."""
        spec = self.spec
        full = np.array(self.data["beta_const"], dtype=float)
        for g in spec.beta_groups:
            if g.support == "real":
                full[list(g.index)] = free[g.free[0] : g.free[1]]
        return full

    # --- prior draws (exact, no MCMC) ---------------------------------------------
    def prior_draws(self, rng: np.random.Generator, chains: int, draws: int) -> dict:
        """Independent draws from the prior, shaped like the sampler's output ``(chains, draws, ...)``."""
        size = (chains, draws)
        pr = self.priors
        beta_c = np.stack([p.sample(rng, size) for p in pr.fixef], axis=-1) if pr.fixef else np.zeros(size + (0,))
        out: dict[str, Any] = {"beta": self._uncenter(beta_c), "sd": [], "cor": [], "b": []}
        for k, term in enumerate(self.terms):
            sd = np.stack([p.sample(rng, size) for p in pr.sd[k]], axis=-1)
            q = term.ncols
            if q > 1:
                chol = pr.cor[k].sample_cholesky(rng, q, chains * draws).reshape(size + (q, q))
                out["cor"].append(chol @ np.swapaxes(chol, -1, -2))
            else:
                chol = np.ones(size + (1, 1))
                out["cor"].append(None)
            u = rng.normal(size=size + (term.nlevels, q))
            scale = sd[..., :, None] * chol
            out["sd"].append(sd)
            out["b"].append(np.einsum("cdjq,cdpq->cdjp", u, scale))
        out["sigma"] = pr.sigma.sample(rng, size) if self.has_sigma else None
        return out

    def _uncenter(self, beta_c: np.ndarray) -> np.ndarray:
        ci = self.spec.center_index
        if ci < 0:
            return beta_c
        beta = beta_c.copy()
        beta[..., ci] -= beta_c @ self.x_center
        return beta


def _spec_and_data(
    inputs, family, pr: ResolvedPriors, xc: np.ndarray, x_center: np.ndarray, ci: int, lik: dict, centred: list[bool]
) -> tuple[ModelSpec, dict]:
    beta_groups, nfree_beta = _groups(pr.fixef)
    term_specs, term_data = [], []
    names = list(inputs.fixed.column_names)
    x = np.asarray(inputs.fixed.matrix, dtype=float)
    for k, term in enumerate(inputs.terms):
        sd_groups, nfree_sd = _groups(pr.sd[k])
        match = column_matches(term, names, x) if centred[k] else ()
        term_specs.append(TermSpec(term.nlevels, term.ncols, sd_groups, nfree_sd, centred[k], match))
        term_data.append(
            {
                "z": np.ascontiguousarray(term.z, dtype=float),
                "refs": np.asarray(term.refs, dtype=np.int32),
                "sd_const": _constants(pr.sd[k]),
                "sd_prior": _group_params(pr.sd[k], sd_groups),
                "lkj": np.array(pr.cor[k].eta if pr.cor[k] is not None else 1.0),
            }
        )
    sigma_group = None
    data: dict[str, Any] = {}
    if family.name == "gaussian":
        sigma_group = _groups((pr.sigma,))[0][0]
        data["sigma_const"] = np.array(pr.sigma.value if isinstance(pr.sigma, Fixed) else 0.0)
        data["sigma_prior"] = np.array(pr.sigma.params(), dtype=float).reshape(1, -1)
    offset = inputs.offset if inputs.offset is not None else np.zeros(inputs.nobs)
    data.update(
        {
            "X": np.ascontiguousarray(xc, dtype=float),
            "center": np.asarray(x_center, dtype=float),
            "offset": np.asarray(offset, dtype=float),
            "beta_const": _constants(pr.fixef),
            "beta_prior": _group_params(pr.fixef, beta_groups),
            "terms": tuple(term_data),
            **{key: np.asarray(value, dtype=float) for key, value in lik.items()},
        }
    )
    spec = ModelSpec(
        family.name, family.link.name, len(pr.fixef), beta_groups, nfree_beta, ci, tuple(term_specs), sigma_group
    )
    return spec, data


# --------------------------------------------------------------------------- draws -> predictions
def linear_predictor_draws(
    beta: np.ndarray, b: list, x: np.ndarray, z: list, refs: list, offset: np.ndarray | None
) -> np.ndarray:
    """``eta`` for every draw: ``(S, n)`` from ``beta (S, p)``, ``b[k] (S, J_k, q_k)`` and row data.

    A row whose level index is -1 (a new level) must have been given draws in
    ``b`` by the caller; rows with index -2 (missing level) get NaN.
    """
    eta = beta @ x.T
    for bk, zk, rk in zip(b, z, refs):
        known = rk >= 0
        contribution = np.zeros_like(eta)
        if np.any(known):
            contribution[:, known] = np.einsum("nq,snq->sn", zk[known], bk[:, rk[known], :])
        contribution[:, rk == -2] = np.nan
        eta = eta + contribution
    return eta if offset is None else eta + offset


def inverse_link(link: str, eta: np.ndarray) -> np.ndarray:
    """``g^-1(eta)`` with NumPy, clamped into the family's range as R does."""
    from ..families import LINKS

    return np.asarray(LINKS[link].inverse(eta), dtype=float)


def pointwise_loglik(model: BayesModel, eta: np.ndarray, sigma: np.ndarray | None) -> np.ndarray:
    """Log-likelihood of each observation for each draw, ``(S, n)``, with NumPy."""
    d, fam = model.data, model.spec.family
    mu = inverse_link(model.spec.link, eta)
    if fam == "gaussian":
        w = d["w"]
        sd = sigma[:, None] / np.sqrt(np.where(w > 0, w, 1.0))
        ll = -0.5 * ((d["y"] - mu) / sd) ** 2 - np.log(sd) - 0.5 * np.log(2 * np.pi)
        return np.where(w > 0, ll, 0.0)
    if fam == "binomial":
        ll = special.xlogy(d["k"], mu) + special.xlogy(d["trials"] - d["k"], 1.0 - mu) + d["lconst"]
        return d["w"] * ll
    return d["w"] * (special.xlogy(d["y"], mu) - mu + d["lconst"])


def draws_table(values: np.ndarray, names: list[str]) -> pd.DataFrame:
    """A ``(chains, draws, K)`` array as a frame with a (chain, draw) row index."""
    chains, draws = values.shape[:2]
    index = pd.MultiIndex.from_product([range(chains), range(draws)], names=["chain", "draw"])
    return pd.DataFrame(values.reshape(chains * draws, -1), index=index, columns=names)

"""The log posterior density of a :class:`~mixedmodels.bayes.model.BayesModel` in JAX.

The sampler works on an unconstrained vector: SDs and sigma through
``log`` (or a scaled logit for ``Uniform(a, b)`` priors), correlation
matrices through NumPyro's ``CorrCholeskyTransform`` (the Cholesky factor
``L`` from ``K (K - 1) / 2`` reals), with the log-Jacobians added to

    log p(theta | y) = sum_i log p(y_i | eta_i) + log p(beta) + sum_k [log p(s_k) + log LKJ(L_k) - |u_k|^2 / 2]
                       + log p(sigma) + const.

For a term sampled centred (fixed, wide SDs; see :mod:`.model`) the term's part is the normal
density of ``b_k = gamma_k - beta[match]`` instead of ``-|u_k|^2 / 2``.

Everything here is a pure function of ``(params, data)`` with the model's
:class:`~mixedmodels.bayes.model.ModelSpec` as a static argument, so one
compiled sampler serves every data set of the same shape.
"""

from __future__ import annotations

import math

import numpy as np

from ._backend import backend

__all__ = ["log_density", "constrained", "prior_logpdf", "pointwise_loglik_jax"]

_LOG_2PI = math.log(2.0 * math.pi)
_LOG_PI = math.log(math.pi)
_EPS = float(np.finfo(float).eps)


def _student_t(x, df, loc, scale):
    B = backend()
    jnp, gammaln = B.jnp, B.jsp.gammaln
    z = (x - loc) / scale
    return (
        gammaln((df + 1) / 2)
        - gammaln(df / 2)
        - 0.5 * jnp.log(df * math.pi)
        - jnp.log(scale)
        - (df + 1) / 2 * jnp.log1p(z * z / df)
    )


def prior_logpdf(kind: str, x, params):
    """Sum of the log densities of ``x`` (1-d) under prior ``kind``; ``params`` is ``(len(x), nparams)``."""
    B = backend()
    jnp, gammaln = B.jnp, B.jsp.gammaln
    p = [params[:, i] for i in range(params.shape[1])]
    if kind == "normal":
        z = (x - p[0]) / p[1]
        value = -0.5 * z * z - jnp.log(p[1]) - 0.5 * _LOG_2PI
    elif kind == "student_t":
        value = _student_t(x, p[0], p[1], p[2])
    elif kind == "cauchy":
        z = (x - p[0]) / p[1]
        value = -_LOG_PI - jnp.log(p[1]) - jnp.log1p(z * z)
    elif kind == "flat":
        value = jnp.zeros_like(x)
    elif kind == "half_normal":
        z = x / p[0]
        value = math.log(2.0) - 0.5 * z * z - jnp.log(p[0]) - 0.5 * _LOG_2PI
    elif kind == "half_cauchy":
        z = x / p[0]
        value = math.log(2.0) - _LOG_PI - jnp.log(p[0]) - jnp.log1p(z * z)
    elif kind == "half_student_t":
        value = math.log(2.0) + _student_t(x, p[0], 0.0, p[1])
    elif kind == "exponential":
        value = jnp.log(p[0]) - p[0] * x
    elif kind == "gamma":
        value = p[0] * jnp.log(p[1]) - gammaln(p[0]) + (p[0] - 1) * jnp.log(x) - p[1] * x
    elif kind == "inverse_gamma":
        value = p[0] * jnp.log(p[1]) - gammaln(p[0]) - (p[0] + 1) * jnp.log(x) - p[1] / x
    elif kind == "uniform":
        value = -jnp.log(p[1] - p[0]) * jnp.ones_like(x)
    else:  # pragma: no cover - priors.py defines the kinds
        raise ValueError(f"unknown prior kind {kind!r}")
    return jnp.sum(value)


def _transform(support: str, u, params):
    """Constrained value and log |Jacobian| for an unconstrained ``u``."""
    B = backend()
    jnp = B.jnp
    if support == "real":
        return u, 0.0
    if support == "positive":
        return jnp.exp(u), jnp.sum(u)
    lower, upper = params[:, 0], params[:, 1]  # interval: Uniform(lower, upper)
    softplus = B.jax.nn.softplus
    x = lower + (upper - lower) * B.jax.nn.sigmoid(u)
    return x, jnp.sum(jnp.log(upper - lower) - softplus(-u) - softplus(u))


def _vector(u, const, groups, params):
    """A parameter vector from its sampled entries and constants, plus log prior and log-Jacobian."""
    jnp = backend().jnp
    x, lp = jnp.asarray(const), 0.0
    for g, prm in zip(groups, params):
        if g.support == "point":
            continue
        xg, jac = _transform(g.support, u[g.free[0] : g.free[1]], prm)
        x = x.at[np.asarray(g.index)].set(xg)
        lp = lp + jac + prior_logpdf(g.kind, xg, prm)
    return x, lp


def _lkj_logpdf(chol, eta):
    jnp = backend().jnp
    k = chol.shape[-1]
    powers = k - np.arange(2, k + 1) + 2.0 * eta - 2.0
    return jnp.sum(powers * jnp.log(jnp.diagonal(chol)[1:]))


def _assemble(params, data, spec):
    """Constrained parameters, random effects, linear predictor and the log prior (with Jacobians)."""
    B = backend()
    jnp = B.jnp
    beta_c, lp = _vector(params["beta"], data["beta_const"], spec.beta_groups, data["beta_prior"])
    eta = data["X"] @ beta_c + data["offset"]
    out = {"beta_c": beta_c, "sd": [], "chol": [], "b": []}
    for ts, tp, td in zip(spec.terms, params["terms"], data["terms"]):
        sd, lp_sd = _vector(tp["sd"], td["sd_const"], ts.sd_groups, td["sd_prior"])
        lp = lp + lp_sd
        if ts.correlated:
            chol = B.corr_cholesky(tp["cor"])
            lp = lp + B.corr_cholesky.log_abs_det_jacobian(tp["cor"], chol) + _lkj_logpdf(chol, td["lkj"])
        else:
            chol = jnp.ones((1, 1))
        b, lp_b = (
            _centred_effects(tp["u"], beta_c, sd, chol, ts) if ts.centred else _scaled_effects(tp["u"], sd, chol, ts)
        )
        lp = lp + lp_b
        eta = eta + jnp.sum(td["z"] * b[td["refs"]], axis=1)
        out["sd"].append(sd)
        out["chol"].append(chol)
        out["b"].append(b)
    sigma = None
    if spec.sigma_group is not None:
        sigma_vec, lp_sigma = _vector(
            params["sigma"], data["sigma_const"][None], (spec.sigma_group,), (data["sigma_prior"],)
        )
        sigma = sigma_vec[0]
        lp = lp + lp_sigma
    out["sigma"] = sigma
    return out, eta, lp


def _scaled_effects(u, sd, chol, ts):
    """Non-centred: ``b = u (diag(s) L)'`` with ``u ~ N(0, I)``."""
    jnp = backend().jnp
    b = u @ (sd[:, None] * chol).T if ts.correlated else u * sd
    return b, -0.5 * jnp.sum(u * u)


def _centred_effects(gamma, beta_c, sd, chol, ts):
    """Centred: the level coefficients ``gamma`` are sampled; ``b = gamma - beta[match] ~ N(0, Sigma)``.

    ``log N(b | 0, diag(s) L L' diag(s)) = -|L^-1 (b / s)|^2 / 2 - J sum_c (log s_c + log L_cc)``
    plus a constant, for the ``J`` levels.
    """
    B = backend()
    jnp = B.jnp
    shift = jnp.stack([beta_c[j] if j >= 0 else jnp.zeros(()) for j in ts.match])
    b = gamma - shift
    scaled = b / sd
    log_det = ts.nlevels * jnp.sum(jnp.log(sd))
    if not ts.correlated:
        return b, -0.5 * jnp.sum(scaled * scaled) - log_det
    u = B.jax.scipy.linalg.solve_triangular(chol, scaled.T, lower=True)
    return b, -0.5 * jnp.sum(u * u) - log_det - ts.nlevels * jnp.sum(jnp.log(jnp.diagonal(chol)))


def _binomial_logs(link: str, eta):
    """``log mu`` and ``log(1 - mu)``, stable for the logit and probit links."""
    B = backend()
    jnp = B.jnp
    if link == "logit":
        return -B.jax.nn.softplus(-eta), -B.jax.nn.softplus(eta)
    if link == "probit":
        return B.jsp.log_ndtr(eta), B.jsp.log_ndtr(-eta)
    mu = jnp.clip(_inverse_link(link, eta), _EPS, 1.0 - _EPS)
    return jnp.log(mu), jnp.log1p(-mu)


def _inverse_link(link: str, eta):
    B = backend()
    jnp = B.jnp
    if link == "identity":
        return eta
    if link == "log":
        return jnp.exp(jnp.minimum(eta, 700.0))
    if link == "sqrt":
        return eta * eta
    if link == "inverse":
        return 1.0 / eta
    if link == "logit":
        return B.jax.nn.sigmoid(eta)
    if link == "probit":
        return B.jsp.ndtr(eta)
    if link == "cloglog":
        return -jnp.expm1(-jnp.exp(jnp.minimum(eta, 700.0)))
    if link == "cauchit":
        return 0.5 + jnp.arctan(eta) / math.pi
    raise ValueError(f"link {link!r} is not available in mm.bayes")  # pragma: no cover


def pointwise_loglik_jax(spec, data, eta, sigma):
    """Log-likelihood of each observation given the linear predictor (and sigma)."""
    jnp = backend().jnp
    w = data["w"]
    if spec.family == "gaussian":
        mu = _inverse_link(spec.link, eta)
        safe_w = jnp.where(w > 0, w, 1.0)
        resid = (data["y"] - mu) * jnp.sqrt(safe_w) / sigma
        ll = -0.5 * resid * resid - jnp.log(sigma) + 0.5 * jnp.log(safe_w) - 0.5 * _LOG_2PI
        return jnp.where(w > 0, ll, 0.0)
    if spec.family == "binomial":
        log_mu, log_1m = _binomial_logs(spec.link, eta)
        k, m = data["k"], data["trials"]
        ll = jnp.where(k > 0, k * log_mu, 0.0) + jnp.where(m - k > 0, (m - k) * log_1m, 0.0) + data["lconst"]
        return w * ll
    if spec.link == "log":
        log_mu, mu = eta, jnp.exp(jnp.minimum(eta, 700.0))
    else:
        mu = jnp.maximum(_inverse_link(spec.link, eta), _EPS)
        log_mu = jnp.log(mu)
    y = data["y"]
    return w * (jnp.where(y > 0, y * log_mu, 0.0) - mu + data["lconst"])


def log_density(params, data, spec):
    """The unnormalised log posterior (log prior only when ``spec.likelihood`` is False)."""
    jnp = backend().jnp
    parts, eta, lp = _assemble(params, data, spec)
    if spec.likelihood:
        lp = lp + jnp.sum(pointwise_loglik_jax(spec, data, eta, parts["sigma"]))
    return lp


def constrained(params, data, spec) -> dict:
    """The reported quantities of one draw: beta (original scale), SDs, correlations, random effects, sigma."""
    jnp = backend().jnp
    parts, _, _ = _assemble(params, data, spec)
    beta = parts["beta_c"]
    if spec.center_index >= 0:
        beta = beta.at[spec.center_index].add(-jnp.dot(data["center"], beta))
    out = {"beta": beta, "sd": tuple(parts["sd"]), "b": tuple(parts["b"])}
    out["cor"] = tuple(c @ c.T for c in parts["chol"])
    if parts["sigma"] is not None:
        out["sigma"] = parts["sigma"]
    return out

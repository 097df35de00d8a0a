"""Denominator degrees of freedom and p-values for fixed effects (lmerTest, pbkrtest).

Satterthwaite
-------------
lmerTest's method.  The variance parameters are ``phi = (theta, sigma)``.  The
deviance as a function of ``phi`` (beta profiled out; for REML fits the REML
criterion) is

    d(theta, sigma) = log|L_theta|^2 [+ log|R_X|^2] + r^2(theta) / sigma^2 + n' log(2 pi sigma^2)

with ``n' = n - p`` for REML and ``n`` for ML.  Its Hessian ``H`` at the
optimum gives the asymptotic covariance ``A = 2 H^-1`` of ``phi``.  The
covariance of beta is ``C(phi) = sigma^2 (R_X' R_X)^-1(theta)``.  For a
contrast ``l' beta`` with ``v = l' C l`` and gradient ``g_i = l' (dC/dphi_i) l``

    df = 2 v^2 / (g' A g).

The theta parts of ``H`` and ``dC/dphi`` are Richardson-extrapolated central
differences of the blocked Cholesky factor (lmerTest uses numDeriv the same
way); the sigma parts are analytic.

Kenward-Roger
-------------
pbkrtest's method, see :mod:`mixedmodels.inference.kenward_roger`: it adjusts
the covariance of beta (so the standard errors change) as well as the df.
"""

from __future__ import annotations

import time
import warnings
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.linalg import lapack
from tqdm.auto import tqdm

from ..errors import ConvergenceWarning, MixedModelsError
from ..fitted import Fit, MixedFit, is_generalized, is_mixed
from ..tables import r_table
from . import _numderiv
from .kenward_roger import KenwardRoger, compute_kenward_roger


__all__ = [
    "coef_table",
    "normalize_ddf",
    "satterthwaite",
    "satterthwaite_df",
    "kenward_roger",
    "contrast_se_df",
    "contrast_matrix",
    "residual_df",
    "Satterthwaite",
    "KenwardRoger",
]

_ALIASES = {
    "satterthwaite": "satterthwaite",
    "satterth": "satterthwaite",
    "kenward-roger": "kenward-roger",
    "kenward_roger": "kenward-roger",
    "kenwardroger": "kenward-roger",
    "kenward roger": "kenward-roger",
    "kr": "kenward-roger",
}

_EIGEN_TOL = 1e-8
_PROGRESS_SECONDS = 5.0  # show a progress bar when the derivatives should take longer

_CACHE: "weakref.WeakKeyDictionary[Any, dict[str, Any]]" = weakref.WeakKeyDictionary()


def normalize_ddf(ddf: str | None) -> str | None:
    """Canonical method name: None, ``"satterthwaite"`` or ``"kenward-roger"`` (case-insensitive aliases)."""
    if ddf is None:
        return None
    key = str(ddf).strip().lower() if isinstance(ddf, str) else None
    if key in ("none", "lme4", ""):
        return None
    if key not in _ALIASES:
        raise MixedModelsError(f"unknown ddf {ddf!r}; use None, 'satterthwaite' or 'kenward-roger' (alias 'KR')")
    return _ALIASES[key]


def _cached(result: Fit, key: str, compute):
    """Per-result cache of expensive building blocks (results are immutable)."""
    store = _CACHE.setdefault(result, {})
    if key not in store:
        store[key] = compute(result)
    return store[key]


# --- Satterthwaite ---------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Satterthwaite:
    """Satterthwaite building blocks of a fit (lmerTest's ``vcov_varpar`` and ``Jac_list``).

    Attributes
    ----------
    varpar : ndarray
        ``(theta..., sigma)`` at the optimum.
    vcov_varpar : ndarray
        ``A = 2 H^-1``: asymptotic covariance of ``varpar`` (eigen pseudo-inverse over
        the positive eigenvalues of H, as lmerTest).
    jacobian : ndarray (len(varpar), p, p)
        ``dC/dvarpar_i`` where ``C`` is the covariance of beta.
    vcov : ndarray (p, p)
        ``C`` at the optimum.
    hessian : ndarray
        ``H``, the Hessian of the deviance in ``varpar``.
    """

    varpar: np.ndarray
    vcov_varpar: np.ndarray
    jacobian: np.ndarray
    vcov: np.ndarray
    hessian: np.ndarray

    def df(self, L: np.ndarray) -> np.ndarray:
        """Satterthwaite df of each row of ``L`` as a one-dimensional contrast."""
        rows = np.atleast_2d(np.asarray(L, dtype=float))
        var = np.einsum("ij,jk,ik->i", rows, self.vcov, rows)
        grad = np.einsum("ij,rjk,ik->ir", rows, self.jacobian, rows)
        denom = np.einsum("ir,rs,is->i", grad, self.vcov_varpar, grad)
        with np.errstate(divide="ignore", invalid="ignore"):
            return 2.0 * var**2 / denom


def _unscaled_vcov(factor) -> np.ndarray:
    """``(R_X' R_X)^-1`` from the X block of the Cholesky factor."""
    lx, _ = factor.fixed_factor()
    inv, info = lapack.dtrtri(lx, lower=1)  # (solve_triangular costs ms per call on tiny matrices)
    if info != 0:
        return np.full(lx.shape, np.nan)
    return inv.T @ inv


def _pwrss(model, factor) -> float:
    """Penalized weighted RSS from the residuals, ``sum w r^2 + |u|^2``.

    The corner of the Cholesky factor holds it too, but after cancellation
    against ``y'y`` (noise ~ 1e-11 for sleepstudy); second differences need
    the accurate value.  A model that computes it itself (a fit on Dask,
    whose rows are not in memory) does so through ``penalized_rss``.
    """
    own = getattr(model, "penalized_rss", None)
    if callable(own):
        return float(own(factor))
    inputs = model.inputs
    beta, spherical = factor.solve()
    eta = inputs.fixed.matrix @ beta
    for term, u, layout in zip(inputs.terms, spherical, model.crossprods.terms):
        modes = u @ layout.lam(factor.theta).T
        eta = eta + np.einsum("ij,ij->i", term.z, modes[term.refs])
    y = inputs.y - inputs.offset if inputs.offset is not None else inputs.y
    resid = y - eta
    wrss = resid @ (resid * inputs.weights) if inputs.weights is not None else resid @ resid
    return float(wrss + sum(float(np.sum(v * v)) for v in spherical))


class _ThetaPieces:
    """``log|L|^2 [+ log|R_X|^2]``, ``r^2`` and ``(R_X'R_X)^-1`` at theta, cached; a progress bar when slow."""

    def __init__(self, model, evaluations: int):
        self.model, self.cp = model, model.crossprods
        self.cache: dict[bytes, tuple[float, float, np.ndarray]] = {}
        self.evaluations = evaluations
        self.bar = None

    def __call__(self, theta: np.ndarray) -> tuple[float, float, np.ndarray]:
        key = theta.tobytes()
        if key not in self.cache:
            started = time.perf_counter()
            self.cache[key] = self._compute(theta)
            self._progress(time.perf_counter() - started)
        return self.cache[key]

    def _compute(self, theta: np.ndarray) -> tuple[float, float, np.ndarray]:
        cp, p = self.cp, self.cp.nfixef
        factor = cp.factorize(theta)
        if not factor.ok:
            return np.nan, np.nan, np.full((p, p), np.nan)
        logdet = factor.logdet_re() + (factor.logdet_x() if self.model.REML else 0.0)
        return logdet, _pwrss(self.model, factor), _unscaled_vcov(factor)

    def _progress(self, seconds: float) -> None:
        if self.bar is None and len(self.cache) == 1 and seconds * self.evaluations > _PROGRESS_SECONDS:
            self.bar = tqdm(total=self.evaluations, desc="Satterthwaite derivatives", leave=False)
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _compute_satterthwaite(result: MixedFit) -> Satterthwaite:
    model = result.model
    p, sigma = model.nfixef, float(result.sigma)
    n_eff = model.n_likelihood - (p if model.REML else 0)
    theta = np.asarray(result.theta, dtype=float)
    k = theta.size
    pieces = _ThetaPieces(model, _numderiv.evaluations(k))
    try:
        h_theta = _numderiv.hessian(lambda t: pieces(t)[0] + pieces(t)[1] / sigma**2, theta)
        jac = _numderiv.jacobian(lambda t: np.concatenate([[pieces(t)[1]], pieces(t)[2].ravel()]), theta)
    finally:
        pieces.close()
    _, pwrss, unscaled = pieces(theta)
    hess = np.empty((k + 1, k + 1))
    hess[:k, :k] = h_theta
    hess[:k, k] = hess[k, :k] = -2.0 * jac[0] / sigma**3  # d2/dtheta dsigma of r^2 / sigma^2
    hess[k, k] = 6.0 * pwrss / sigma**4 - 2.0 * n_eff / sigma**2
    jacobian = np.empty((k + 1, p, p))
    jacobian[:k] = sigma**2 * np.moveaxis(jac[1:].reshape(p, p, k), -1, 0)
    jacobian[k] = 2.0 * sigma * unscaled
    return Satterthwaite(
        varpar=np.append(theta, sigma),
        vcov_varpar=2.0 * _positive_inverse(hess),
        jacobian=jacobian,
        vcov=sigma**2 * unscaled,
        hessian=hess,
    )


def _positive_inverse(hess: np.ndarray) -> np.ndarray:
    """Inverse over the positive eigenvalues; warn about negative or zero ones as lmerTest."""
    values, vectors = np.linalg.eigh((hess + hess.T) / 2.0)
    neg = values < -_EIGEN_TOL
    zero = np.abs(values) <= _EIGEN_TOL
    if neg.any():
        listed = " ".join(f"{v:.1e}" for v in values[neg])
        warnings.warn(
            f"Model failed to converge with {int(neg.sum())} negative eigenvalue(s) of the "
            f"deviance Hessian: {listed}; Satterthwaite df may be unreliable",
            ConvergenceWarning,
            stacklevel=4,
        )
    if zero.any():
        listed = " ".join(f"{v:.1e}" for v in values[zero])
        warnings.warn(
            f"Model may not have converged with {int(zero.sum())} eigenvalue(s) of the deviance "
            f"Hessian close to zero: {listed}",
            ConvergenceWarning,
            stacklevel=4,
        )
    pos = values > _EIGEN_TOL
    return (vectors[:, pos] / values[pos]) @ vectors[:, pos].T


def _require_lmm(result: Fit, method: str) -> None:
    if not is_mixed(result) or is_generalized(result):
        kind = "generalized models" if is_generalized(result) else "models without random effects"
        raise MixedModelsError(
            f"{method} degrees of freedom are for linear mixed models (lmer fits), not {kind}; call without ddf"
        )
    if getattr(result.model, "residual", None) is not None:
        raise MixedModelsError(
            f"{method} degrees of freedom are not available for a model with a residual structure (weights=var_ident() "
            "or correlation=): their derivatives would need its parameters too; call without ddf"
        )


def satterthwaite(result: MixedFit) -> Satterthwaite:
    """Satterthwaite building blocks of an lmer fit (computed once per fit and cached)."""
    _require_lmm(result, "Satterthwaite")
    return _cached(result, "satterthwaite", _compute_satterthwaite)


def satterthwaite_df(result: MixedFit, L: Any) -> np.ndarray:
    """Satterthwaite df of the contrasts ``L beta`` (one per row of ``L``; a vector is one contrast).

    ``L`` may be an array ``(k, p)`` or a DataFrame with the fixed-effect names as columns.
    """
    return satterthwaite(result).df(contrast_matrix(result, L))


def kenward_roger(result: MixedFit) -> KenwardRoger:
    """Kenward-Roger adjusted covariance and building blocks of a REML lmer fit (cached).

    ``kenward_roger(m).vcov_adjusted`` is pbkrtest's ``vcovAdj(m)``;
    ``.df(L)`` the df of one-dimensional contrasts (pbkrtest's ``Lb_ddf``);
    ``.adjustment(L)`` the df and F scaling of a multi-row hypothesis.
    """
    _require_lmm(result, "Kenward-Roger")
    return _cached(result, "kenward-roger", compute_kenward_roger)


def contrast_matrix(result: Fit, L: Any) -> np.ndarray:
    """``L`` as a float array (k, p): a vector, rows, or a DataFrame with the fixed-effect names as columns."""
    names = list(result.fixef.index)
    if isinstance(L, pd.DataFrame):
        missing = [n for n in names if n not in L.columns]
        if missing:
            raise MixedModelsError(f"contrast matrix lacks columns for fixed effects {missing}")
        L = L.loc[:, names].to_numpy(dtype=float)
    matrix = np.atleast_2d(np.asarray(L, dtype=float))
    if matrix.shape[1] != len(names):
        raise MixedModelsError(
            f"contrast matrix has {matrix.shape[1]} columns but the model has {len(names)} "
            f"fixed effects ({', '.join(names)})"
        )
    return matrix


def contrast_se_df(result: Fit, L: Any, ddf: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Standard errors and df of the contrasts ``L beta`` under a ddf method.

    Mixed models: Satterthwaite or Kenward-Roger (with the adjusted covariance).
    Models without random effects: the residual df.  GLMMs and ``ddf=None``: ``inf``
    (asymptotic normal tests).
    """
    L = contrast_matrix(result, L)
    method = normalize_ddf(ddf)
    if method == "kenward-roger" and is_mixed(result) and not is_generalized(result):
        kr = kenward_roger(result)
        return np.sqrt(np.einsum("ij,jk,ik->i", L, kr.vcov_adjusted, L)), kr.df(L)
    se = np.sqrt(np.einsum("ij,jk,ik->i", L, result.vcov.to_numpy(), L))
    if not is_mixed(result):
        asymptotic = is_generalized(result) and not _has_dispersion(result)
        return se, np.full(len(L), np.inf if asymptotic else residual_df(result))
    if method == "satterthwaite" and not is_generalized(result):
        return se, satterthwaite(result).df(L)
    return se, np.full(len(L), np.inf)


def residual_df(result: Fit) -> float:
    """Residual df of a model without random effects (``n - p``, or its ``df_residual``)."""
    for name in ("df_residual", "df_resid"):
        value = getattr(result, name, None)
        if value is not None and not callable(value):
            return float(value)
    return float(result.nobs - len(result.fixef))


# --- the coefficient table -----------------------------------------------------------------


def _has_dispersion(result: Fit) -> bool:
    """Whether the family has an estimated scale (Gamma, gaussian, inverse.gaussian)."""
    family = getattr(result, "family", None)
    flag = getattr(family, "has_dispersion", None)
    if flag is not None:
        return bool(flag)
    name = str(getattr(family, "name", family)).lower()
    return name in ("gamma", "gaussian", "inverse.gaussian", "inverse_gaussian")


def _glmm_stat_name(result: Fit) -> str:
    """lme4 prints "t value" for families with an estimated scale (Gamma, gaussian), else "z value"."""
    return "t value" if _has_dispersion(result) else "z value"


def coef_table(result: Fit, ddf: str | None = None) -> pd.DataFrame:
    """Fixed-effects coefficient table, as lme4's or lmerTest's ``summary``.

    ============================  ===============================================================
    ``ddf=None`` (lmer)           Estimate, Std. Error, t value (lme4: no p-values)
    ``"satterthwaite"``           Estimate, Std. Error, df, t value, Pr(>|t|)  (lmerTest)
    ``"kenward-roger"`` / "KR"    the same with pbkrtest's adjusted Std. Error and df
    GLMM (has ``family``)         Estimate, Std. Error, z value, Pr(>|z|) (normal p-values)
    lm (no random effects)        Estimate, Std. Error, t value, Pr(>|t|) on the residual df
                                  (exact; ``ddf`` is ignored), as R's ``summary.lm``
    ============================  ===============================================================

    ``t = Estimate / Std. Error`` and ``Pr(>|t|) = 2 P(T_df > |t|)``.  The
    table is an :class:`~mixedmodels.tables.RTable`: a DataFrame that prints
    as R prints ``coef(summary(m))``.
    """
    return r_table(_coef_table(result, ddf), layout="matrix")


def _coef_table(result: Any, ddf: str | None) -> pd.DataFrame:
    """The coefficient table of :func:`coef_table` as a plain DataFrame."""
    method = normalize_ddf(ddf)
    est = result.fixef.to_numpy(dtype=float)
    names = list(result.fixef.index)
    if is_generalized(result) and is_mixed(result):
        if method is not None:
            raise MixedModelsError("ddf applies to linear mixed models; GLMM tests are Wald z tests (call without ddf)")
        return _wald_table(est, result.se.to_numpy(dtype=float), names, _glmm_stat_name(result), np.inf)
    if not is_mixed(result):  # lm / glm: R's summary.lm / summary.glm
        df = np.inf if is_generalized(result) and not _has_dispersion(result) else residual_df(result)
        stat = "z value" if np.isinf(df) else "t value"
        return _wald_table(est, result.se.to_numpy(dtype=float), names, stat, df)
    if method is None:
        se = result.se.to_numpy(dtype=float)
        return pd.DataFrame({"Estimate": est, "Std. Error": se, "t value": est / se}, index=names)
    se, df = contrast_se_df(result, np.eye(len(est)), method)
    t = est / se
    return pd.DataFrame(
        {"Estimate": est, "Std. Error": se, "df": df, "t value": t, "Pr(>|t|)": 2.0 * stats.t.sf(np.abs(t), df)},
        index=names,
    )


def _wald_table(est: np.ndarray, se: np.ndarray, names: list[str], stat: str, df: float) -> pd.DataFrame:
    """Estimate, Std. Error, statistic and its p-value (normal when df is infinite, as lme4 for GLMMs)."""
    value = est / se
    p_name = "Pr(>|z|)" if np.isinf(df) else "Pr(>|t|)"
    p = 2.0 * (stats.norm.sf(np.abs(value)) if np.isinf(df) else stats.t.sf(np.abs(value), df))
    return pd.DataFrame({"Estimate": est, "Std. Error": se, stat: value, p_name: p}, index=names)

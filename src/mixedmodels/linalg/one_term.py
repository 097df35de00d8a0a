"""The compiled fit of a GLMM with one scalar random-effects term (lme4's two stages, in numba).

For a model with one term ``(1 | g)`` (or ``(0 + x | g)``), a binomial
(logit, probit, cloglog), Poisson (log) or negative binomial with a known
theta (log) response and the Laplace approximation, :func:`fit_one_term`
runs the whole optimization in the compiled loops of
:mod:`._one_term_kernels`:

1. stage 1 (``nAGQ = 0``, as lme4): theta minimizing the Laplace formula at
   the beta and modes that minimize the penalized deviance together, by a
   safeguarded secant search on the criterion's analytic derivative, to a
   step of 1e-2 of theta (a start: stage 2 converges from there);
2. stage 2 (``nAGQ = 1``): Newton steps on the Laplace deviance over
   (theta, beta) from stage 1's optimum, with the analytic gradient and, for
   the canonical links (binomial logit, Poisson log), the exact Hessian; for
   the others the gradient's central differences (steps 1e-4 of theta and of
   stage 1's standard errors); until the Newton decrement is below 1e-14;
3. the covariance of beta: the beta block of ``2 H^-1`` at the optimum
   (lme4's ``use.hessian``; the Hessian is the last Newton step's), and the
   conditional means there, in the same compiled call.

It answers None where it does not apply or does not succeed (no numba, a
theta below 1e-3 in stage 1 or 1e-4 at the end -- a singular fit whose
boundary the general path handles --, a failed PIRLS or a Hessian that is not
positive definite): the caller then takes the general path
(:func:`mixedmodels.glmm.fit.fit_glmm`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from . import _one_term_kernels as kernels

__all__ = ["COMPILED_NEWTON", "COMPILED_SEARCH", "OneTermFit", "fit_one_term", "one_term_applies", "one_term_compiled"]

COMPILED_SEARCH = "secant search (compiled)"  # stage 1's optimizer, as its log names it
COMPILED_NEWTON = "Newton (compiled)"  # stage 2's

_SINGULAR = 1e-4  # a final scaled theta below this: the general path's boundary handling decides
_STEP = 1e-4  # the Hessian's difference steps, in units of theta and of stage 1's SEs of beta


@dataclass(frozen=True)
class OneTermFit:
    """What the compiled fit found: stage 1's theta and beta, the optimum, the Hessian there.

    ``theta1``, ``theta`` are in the data's units; ``grad`` and ``hess`` are over
    (scaled theta, beta); ``evaluations`` counts stage 1's criterion evaluations, stage 2's
    deviance-and-gradient evaluations and the Hessians' gradient evaluations (an exact Hessian counts one).
    """

    theta1: np.ndarray
    beta1: np.ndarray
    value1: float
    theta: np.ndarray
    beta: np.ndarray
    u: np.ndarray
    mu: np.ndarray
    value: float
    grad: np.ndarray
    hess: np.ndarray
    vcov: np.ndarray
    evaluations: tuple[int, int, int]
    seconds: tuple[float, float]
    theta0: np.ndarray  # the model's theta_start, where stage 1 began (the optimizer log's initial theta)
    scale: float  # the term's column scale: scaled theta = theta * scale (the model's theta_scales[0])


@lru_cache(maxsize=1)
def _compiled() -> dict | None:
    return kernels.compiled()


def one_term_compiled() -> bool:
    """Whether the compiled kernels are there (numba installed, ``MIXEDMODELS_NO_NUMBA`` not set)."""
    return _compiled() is not None


def one_term_applies(model, nAGQ: int, optimizer: str) -> bool:
    """Whether :func:`fit_one_term` is for this model and fit (it may still answer None)."""
    terms = model.inputs.terms
    if nAGQ != 1 or optimizer not in ("auto", "bfgs") or len(terms) != 1 or terms[0].ncols != 1:
        return False
    if not model.layouts[0].structure.is_default() or getattr(model, "laplace", "expected") != "expected":
        return False
    if not getattr(model, "rows_in_memory", True):
        return False
    family = model.family
    return kernels.FAMILIES.get(family.name, -1) >= 0 and (family.name, family.link.name) in _SUPPORTED


_SUPPORTED = {
    ("binomial", "logit"),
    ("binomial", "probit"),
    ("binomial", "cloglog"),
    ("poisson", "log"),
    ("Negative Binomial", "log"),  # a known theta (glmer_nb estimates it jointly: not this path)
}


def _arrays(model) -> tuple:
    """The kernels' data: y, prior weights, saturated kernel, scaled z, levels, X, offset; the family's codes;
    the response's constant, the number of levels and the term's column scale.

    The scale is the model's ``theta_scales[0]`` by construction: that is the term's ``scale_theta`` of a
    one, ``1.0 * scales[0]`` for the one scalar term of the default structure (or 1 without scales), so
    the cached property is not formed for this fit.  z divided by the scale and the offset's zeros are
    new contiguous arrays already; the zeros have one entry per response row.
    """
    term, lay, response = model.inputs.terms[0], model.layouts[0], model.response
    scale = float(lay.scales[0]) if lay.scales is not None else 1.0
    z = np.asarray(term.z, dtype=float)[:, 0] / scale
    offset = model.inputs.offset
    y = np.ascontiguousarray(response.y)
    offset = np.zeros(y.size) if offset is None else np.ascontiguousarray(offset, dtype=float)
    xmat = np.ascontiguousarray(model.inputs.fixed.matrix, dtype=float)
    family = response.family
    nbtheta = float(getattr(family, "theta", 1.0))  # the negative binomial's; unused by the others
    codes = (kernels.FAMILIES[family.name], kernels.LINKS[family.link.name], nbtheta)
    refs = np.ascontiguousarray(term.refs, dtype=np.intp)
    weights, saturated = np.ascontiguousarray(response.weights), np.ascontiguousarray(response.saturated)
    data = (y, weights, saturated, z, refs, xmat, offset)
    return data, codes, float(response.constant), term.nlevels, scale


def fit_one_term(model) -> OneTermFit | None:
    """Both stages and the Hessian at the optimum in compiled loops; None where not possible (see the module)."""
    kern = _compiled()
    if kern is None:
        return None
    data, (fam, link, nbtheta), const, q, scale = _arrays(model)
    y, wt, sat, z, refs, xmat, offset = data
    p = xmat.shape[1]
    # stage 1 starts as the general path's PIRLS does: eta from the family's starting means (u = 0, beta by least
    # squares: the normal equations in the kernel, where numpy's lstsq cost ~0.09 ms cold)
    beta, target = np.zeros(p), model.eta_start() - offset
    if p and not kern["least_squares"](xmat, target, beta):
        beta = np.linalg.lstsq(xmat, target, rcond=None)[0]
    u, cov, counts = np.zeros(q), np.zeros((p, p)), np.zeros(3, dtype=np.int64)
    start = time.perf_counter()
    # the model's theta_start by construction: the default structure's start for one column is lme4's identity
    # factor, [1.0] (one_term_applies takes no other; a test compares them), without its look-up per term
    theta0 = np.ones(1)
    x0 = scale  # (theta0[0] * scale)
    x1, f1 = kern["stage1"](x0, beta, u, y, wt, sat, z, refs, xmat, offset, fam, link, nbtheta, const, cov, counts)
    middle = time.perf_counter()
    if not x1 > 0.0:
        return None
    beta1 = beta.copy()
    point = np.concatenate([[x1], beta])
    steps = _STEP * np.concatenate([[x1], np.sqrt(np.maximum(cov.diagonal(), 1e-300))])  # (np.diag's numbers)
    hess, grad, vcov, mu = np.empty((p + 1, p + 1)), np.empty(p + 1), np.empty((p, p)), np.empty(y.size)
    value = kern["stage2"](
        point, u, steps, y, wt, sat, z, refs, xmat, offset, fam, link, nbtheta, const, hess, grad, counts, vcov, mu
    )
    if not np.isfinite(value) or point[0] < _SINGULAR:
        return None
    return OneTermFit(
        np.array([x1 / scale]),
        beta1,
        float(f1),
        np.array([point[0] / scale]),
        point[1:].copy(),
        u,
        mu,
        float(value),
        grad,
        hess,
        vcov,
        (int(counts[0]), int(counts[1]), int(counts[2])),
        (middle - start, time.perf_counter() - middle),
        theta0,
        scale,
    )

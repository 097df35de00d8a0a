"""The results of the compiled fit of a GLMM with one scalar term (:mod:`mixedmodels.linalg.one_term`)."""

from __future__ import annotations

import time

import numpy as np

from ..fitted import GeneralizedMixedModel
from ..linalg.one_term import COMPILED_NEWTON, COMPILED_SEARCH, OneTermFit
from ..lmm.results import SINGULAR_TOLERANCE
from ..optim import OptimizerSettings, OptInfo
from .checks import GRADIENT_TOLERANCE, gradient_message, warn_fit
from .results import GlmerResults

__all__ = ["compiled_results"]


def compiled_results(model: GeneralizedMixedModel, fast: OneTermFit, settings: OptimizerSettings, start: float):
    """The results of :func:`.linalg.one_term.fit_one_term` (one scalar term), with the same log and checks
    as the general path's: both stages in one optimizer log, lme4's gradient check at the optimum.  The
    joint factor (conditional variances, prediction SEs) is formed on first use."""
    evals1, evals2, hessian_evals = fast.evaluations
    # d(scaled theta, beta) / d(theta, beta) is (scale, 1, ..., 1) for the one scalar term: the gradient times
    # it is the gradient with its first entry scaled (x * 1.0 is x: the same numbers as the product)
    grad = fast.grad.copy()
    grad[0] *= fast.scale
    # (the check passes whenever the gradient itself is below its tolerance: no Hessian scaling needed)
    largest = np.maximum.reduce(np.abs(grad))  # (its .max(), without the method's Python wrapper)
    message = None if largest <= GRADIENT_TOLERANCE else _gradient_message(fast, grad)
    messages = [message] if message else []
    info = OptInfo(
        COMPILED_NEWTON,
        np.concatenate([fast.theta0, fast.beta1]),
        np.concatenate([fast.theta, fast.beta]),
        fast.value,
        evals1 + evals2,
        time.perf_counter() - start,
        1,
        f"stage 1 ({COMPILED_SEARCH}): theta {fast.theta1[0]:.6g}; stage 2: Newton decrement below 1e-14",
        settings,
        tuple(messages),
        geval=evals1 + evals2 + hessian_evals,
    )
    result = GlmerResults._from_modes(model, fast.theta, fast.beta, fast.u, fast.mu, fast.value, info, fast.vcov)
    # is_singular read off theta: the one scalar term of the default structure has the lower bound 0
    singular = bool(fast.theta[0] < SINGULAR_TOLERANCE)
    if messages or singular:  # (nothing to warn about otherwise)
        warn_fit(result, messages, 6, singular=singular)
    return result


def _gradient_message(fast: OneTermFit, grad: np.ndarray) -> str | None:
    """lme4's gradient check with the Hessian over (theta, beta), where the gradient is above the tolerance."""
    scales = np.ones(grad.size)
    scales[0] = fast.scale
    return gradient_message(grad, fast.hess * np.outer(scales, scales))

"""lme4's checks after a GLMM fit: the gradient at the optimum (``checkConv``) and the warnings."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
from scipy.linalg import cho_factor, solve_triangular

from ..errors import ConvergenceWarning, SingularFitWarning

if TYPE_CHECKING:
    from .results import GlmerResults

__all__ = ["GRADIENT_TOLERANCE", "gradient_message", "warn_fit"]

GRADIENT_TOLERANCE = 2e-3  # lme4's checkConv tolerance on the (scaled) gradient


def gradient_message(grad: np.ndarray, hess: np.ndarray) -> str | None:
    """lme4's checkConv: min(|scaled gradient|, |gradient|) must stay below 0.002."""
    try:
        upper = cho_factor(hess, lower=False)[0]
        scaled = solve_triangular(np.triu(upper), grad)
        worst = np.minimum(np.abs(scaled), np.abs(grad))
    except np.linalg.LinAlgError:
        worst = np.abs(grad)
    if worst.size == 0 or np.max(worst) <= GRADIENT_TOLERANCE:
        return None
    k = int(np.argmax(worst))
    return f"Model failed to converge with max|grad| = {worst[k]:.6g} (tol = {GRADIENT_TOLERANCE:g}, component {k + 1})"


def warn_fit(result: GlmerResults, messages: list[str], stacklevel: int, singular: bool | None = None) -> None:
    """lme4's warnings: the convergence messages, a singular fit (``singular``: ``result.is_singular``, when
    the caller knows it already)."""
    for message in messages:
        warnings.warn(message, ConvergenceWarning, stacklevel=stacklevel)
    if result.is_singular if singular is None else singular:
        warnings.warn(
            "boundary (singular) fit: see help(mm.GlmerResults.is_singular)", SingularFitWarning, stacklevel=stacklevel
        )

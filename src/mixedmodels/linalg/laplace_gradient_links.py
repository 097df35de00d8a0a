"""Gradient of a GLMM's Laplace deviance for a non-canonical link (probit, cloglog, the negative binomial's log).

The deviance is :mod:`.laplace_gradient`'s,

    f(phi) = dev(eta*) + ||u*||^2 + log det M,     M = Lambda' Z' W Z Lambda + I,

with lme4's weights in M: the expected information ``W = wt mu_eta^2 / V(mu)``
(PIRLS's Fisher-scoring weights).  Per observation, with ``d1 = mu_eta``,
``d2 = d mu_eta / d eta`` and ``V' = dV/dmu``:

* the score ``s = d (dev/2) / d eta = -wt (y - mu) d1 / V``;
* its derivative, the observed information
  ``O = ds / d eta = wt [d1^2 / V - (y - mu) (d2 / V - d1^2 V' / V^2)]``;
* ``dW / d eta = wt d1 (2 d2 / V - d1^2 V' / V^2)``.

For a canonical link ``d1 = V``, ``d2 = V V'``, so ``O = W`` and
``dW/deta = wt V V'``: :mod:`.laplace_gradient`'s case.  Here they differ,
and each enters where it belongs:

* the first two terms change by their explicit derivative (envelope
  theorem, PIRLS solves the score equation whatever its weights):
  ``2 s' a_phi`` with ``a_phi = d eta / d phi`` at fixed u;
* the modes move by the derivative of the mode equation
  ``Lambda' Z' s + u = 0``, whose Jacobian in u is the *observed*
  ``M_O = Lambda' Z' O Z Lambda + I``: ``M_O du = -(Lambda' Z' O a_phi + b_phi)``
  (``b_phi = E_t Z_t' s`` for term t's lambda); ``M_O`` is positive definite
  at the modes (the penalized deviance's Hessian in u at its minimum) though
  single ``O_i`` may be negative;
* ``d log det M = tr(M^-1 dM)`` with the *expected* ``M``: the explicit part
  for lambda_t, ``2 sum_i W_i z_ti v_ti``, and ``sum_i dW_i/deta d eta_i h_i``
  with ``d eta = a_phi + Z Lambda du`` and the leverages
  ``h_i = (Z Lambda M^-1 Lambda' Z')_ii``.

So the entries of ``M^-1`` are :mod:`.laplace_gradient`'s (from W), and one
more factorization, of ``M_O``, solves for the modes' derivatives.

A family parameter (the negative binomial's theta, as ``log theta``) enters
at fixed eta through ``V``: with ``V_k = dV / d log theta``,
``ds/dk = wt (y - mu) d1 V_k / V^2``, ``dW/dk = -wt d1^2 V_k / V^2`` and the
explicit ``-2 sum wt d log p(y | mu) / dk``; then
``M_O du_k = -Lambda' Z' ds/dk`` and
``df/dk = -2 sum wt dlogp/dk + sum_i h_i (dW_i/dk + dW_i/deta (Z Lambda du_k)_i)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from scipy.linalg import cho_factor, cho_solve

from .laplace_gradient import LaplaceGradient, _BlockedInverse, _diagonal_solve, _Parts, _schur_complement

__all__ = ["LinkLaplaceGradient"]

# families whose -2 log L is the deviance plus a constant in mu (as the Laplace formula above assumes)
_FAMILIES = ("binomial", "poisson", "Negative Binomial")


@dataclass(frozen=True)
class _Weights:
    """Per observation: the score, the expected and observed information, and dW/deta."""

    score: np.ndarray
    expected: np.ndarray
    observed: np.ndarray
    slope: np.ndarray

    @classmethod
    def at(cls, response, eta: np.ndarray, mu: np.ndarray) -> "_Weights":
        family, wt = response.family, response.weights
        d1 = family.link.mu_eta(eta)
        d2 = family.link.mu_eta2(eta, mu, d1)
        var, dvar = family.variance(mu), family.variance_deriv(mu)
        resid = response.y - mu
        curve = d2 / var - d1 * d1 * dvar / (var * var)  # d/deta (d1 / V)
        expected = wt * d1 * d1 / var
        return cls(-wt * resid * d1 / var, expected, expected - wt * resid * curve, wt * d1 * (d2 / var + curve))


@dataclass(frozen=True, eq=False)
class LinkLaplaceGradient(LaplaceGradient):
    """:class:`.laplace_gradient.LaplaceGradient` for a non-canonical link (see the module docstring).

    Same calls (``gradient(lams, eta, mu, u, modes)``, :meth:`profiled`), plus
    :meth:`with_family_parameter` for the negative binomial's ``log theta``.
    """

    @classmethod
    def build(
        cls, refs, z, nlevels, x: np.ndarray, response, permutation: np.ndarray | None = None, system=None
    ) -> "LinkLaplaceGradient | None":
        """None for a canonical link (:class:`.laplace_gradient.LaplaceGradient` is that one), for a family whose
        ``-2 log L`` is not the deviance plus a constant (Gamma, inverse Gaussian, Gaussian), and where
        :meth:`.laplace_gradient.LaplaceGradient.build` would give none."""
        if getattr(response, "natural", True) or response.family.name not in _FAMILIES:
            return None
        return cls._assemble(refs, z, nlevels, x, response, permutation, system)

    def with_family_parameter(
        self, response, lams: np.ndarray, eta: np.ndarray, mu: np.ndarray, u: np.ndarray, modes: list | None = None
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """Gradients over the scaled lambdas, beta and ``log theta`` of the negative binomial ``response``
        (the same model at another theta: this gradient's response is replaced by it).

        With a list ``modes``, also appends ``du / d(lambda, beta, log theta)`` (model's order of u).
        """
        parts, extra = self._parts_with(response, lams, eta, mu, u, family_parameter=True)
        assert extra is not None
        if modes is not None:
            modes.append(self._model_order(np.column_stack([parts.du, extra[1]])))
        ntheta = len(self.z)
        return parts.gradient[:ntheta], parts.gradient[ntheta:], extra[0]

    def _parts(self, lams: np.ndarray, eta: np.ndarray, mu: np.ndarray, u: np.ndarray) -> _Parts:
        return self._parts_with(self.response, lams, eta, mu, u)[0]

    def _parts_with(self, response, lams, eta, mu, u, family_parameter: bool = False) -> tuple[_Parts, tuple | None]:
        """The gradient over (lambda, beta), and over log theta with ``family_parameter``
        (its value and ``du / d log theta`` in this gradient's order of u)."""
        if self.permutation is not None:
            u = u[self.permutation]
        w = _Weights.at(response, eta, mu)
        c = [lam * z for lam, z in zip(lams, self.z)]
        v, leverage, solve = self._rows_and_solver(lams, w, c)
        us = [u[self.offsets[t] : self.offsets[t + 1]] for t in range(len(self.z))]
        explicit = np.column_stack([z * ut[refs] for z, ut, refs in zip(self.z, us, self.refs)] + [self.x])
        rhs = self._lambda_zt(lams, w.observed[:, None] * explicit)
        for t, (z, refs) in enumerate(zip(self.z, self.refs)):
            rhs[self.offsets[t] : self.offsets[t + 1], t] += np.bincount(
                refs, weights=z * w.score, minlength=self.nlevels[t]
            )
        extra_rhs = self._family_rhs(response, lams, mu, w) if family_parameter else None
        du_all = -solve(rhs if extra_rhs is None else np.column_stack([rhs, extra_rhs[0]]))
        du = du_all[:, : rhs.shape[1]]
        weighted = w.slope * leverage
        through_modes = self._lambda_zt(lams, weighted[:, None])[:, 0]
        gradient = (2.0 * w.score + weighted) @ explicit + through_modes @ du
        for t, z in enumerate(self.z):
            gradient[t] += 2.0 * np.sum(w.expected * z * v[t])
        parts = _Parts(gradient, du, rhs, explicit, w.observed)
        if extra_rhs is None:
            return parts, None
        du_k = du_all[:, -1]
        return parts, (extra_rhs[1] + leverage @ extra_rhs[2] + through_modes @ du_k, du_k)

    def _family_rhs(self, response, lams, mu: np.ndarray, w: _Weights) -> tuple[np.ndarray, float, np.ndarray]:
        """For log theta: ``Lambda' Z' ds/dk``, the explicit ``d(-2 log L)/dk`` and ``dW/dk`` (module docstring)."""
        family, wt = response.family, response.weights
        dlogp, dvar = family.log_theta_derivatives(response.y, mu)
        var = family.variance(mu)
        ds = -w.score * dvar / var  # wt (y - mu) d1 dV / V^2
        dw = -w.expected * dvar / var
        return self._lambda_zt(lams, ds[:, None])[:, 0], float(-2.0 * (wt @ dlogp)), dw

    def _rows_and_solver(self, lams: np.ndarray, w: _Weights, c: list):
        """``v_t`` and the leverages from the expected ``M``, and ``M_O^-1`` as a function.

        ``M_O`` is positive definite at modes PIRLS converged to (the penalized deviance's
        Hessian at its minimum); where it is not (PIRLS stopped short), the modes' derivatives
        and so the gradient are NaN, which stops BFGS there rather than misleading it.
        """
        system: Any = self.system
        if system is not None:
            v, leverage, _ = self._sparse_rows(lams, w.expected, c)
            vals = system.weighted_factor(lams, w.observed)
            if vals is None:
                return v, leverage, _not_positive_definite
            return v, leverage, lambda rhs: system.solve_with(vals, rhs)
        if len(c) == 1:  # M and M_O diagonal
            v, leverage, _ = self._diagonal_rows(w.expected, c)
            observed = self._diagonal(w.observed, c)
            return v, leverage, _not_positive_definite if np.any(observed <= 0) else _diagonal_solve(observed)
        v, leverage = self._solved_rows(self._inverse(w.expected, c), c)
        try:
            return v, leverage, self._inverse(w.observed, c, _BlockedSolver).solve
        except np.linalg.LinAlgError:
            return v, leverage, _not_positive_definite


def _not_positive_definite(rhs: np.ndarray) -> np.ndarray:
    return np.full(rhs.shape, np.nan)


@dataclass(frozen=True, eq=False)
class _BlockedSolver(_BlockedInverse):
    """Solves with ``M_O = [[D, B'], [B, R]]`` by its Schur complement's Cholesky factor (held in ``rest``):
    no entries of the inverse, which only the expected ``M`` needs.  Raises ``LinAlgError`` unless
    ``M_O`` is positive definite."""

    @classmethod
    def compute(cls, diagonal: np.ndarray, b, r: np.ndarray) -> "_BlockedSolver":
        if np.any(diagonal <= 0):
            raise np.linalg.LinAlgError("Lambda' Z' O Z Lambda + I is not positive definite")
        scaled, schur = _schur_complement(diagonal, b, r)
        factor = cho_factor(schur, lower=True, check_finite=False) if schur.size else None
        return cls(diagonal, scaled, b, np.empty(0), np.empty(0), factor)  # type: ignore[arg-type]

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """``M_O^-1 rhs`` (first-term rows first)."""
        q1 = self.diagonal.size
        b: Any = self.b
        scaled: Any = self.scaled
        first, second = rhs[:q1], rhs[q1:]
        rest = second if self.rest is None else cho_solve(self.rest, second - scaled @ first, check_finite=False)
        return np.vstack([(first - b.T @ rest) / self.diagonal[:, None], rest])

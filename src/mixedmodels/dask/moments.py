"""Central moments summed over partitions, and the states of ``scale()`` and ``poly()`` made from them.

For values ``x_1..x_n`` split across partitions, :class:`Moments` keeps ``n``,
the mean ``m`` and the central power sums ``S_j = sum (x_i - m)^j`` up to an
order ``r``.  Two parts combine exactly (in exact arithmetic) by moving each
part's sums to the joint mean with the binomial theorem,

    sum (x - m)^j = sum_i C(j, i) (m_a - m)^(j - i) S_i(a),

which is the one-pass, numerically stable way (Chan, Golub and LeVeque 1979,
generalized to higher orders) to get what a single pass over all rows gives.

``scale(x)`` needs ``m`` and ``S_2`` (formulaic's state: the mean and
``sqrt(S_2 / (n - ddof))``).  ``poly(x, d)`` needs the recurrence
coefficients of the monic orthogonal polynomials for the empirical measure of
``x`` (formulaic's three-term recurrence): ``alpha_k = <x P_k, P_k> / <P_k, P_k>``
and ``norms2_k = <P_k, P_k>``; every inner product of polynomials in
``t = x - m`` is a combination of the ``S_j``, ``j <= 2d``.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb

import numpy as np

__all__ = ["Moments", "scale_state", "poly_state"]


@dataclass(frozen=True)
class Moments:
    """Count, mean and central power sums ``sums[j] = sum (x - mean)^j`` (``sums[0] = n``)."""

    n: int
    mean: float
    sums: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray, order: int) -> "Moments":
        """The moments of some values (non-finite ones make the result non-finite, as they would in memory)."""
        x = np.asarray(values, dtype=float).ravel()
        if x.size == 0:
            return cls(0, 0.0, np.zeros(order + 1))
        mean = float(np.mean(x))
        t = x - mean
        sums = np.empty(order + 1)
        power = np.ones_like(t)
        for j in range(order + 1):
            sums[j] = float(np.sum(power))
            power = power * t
        sums[0] = x.size
        return cls(x.size, mean, sums)

    def combine(self, other: "Moments") -> "Moments":
        """The moments of both parts' values together."""
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        mean = (self.n * self.mean + other.n * other.mean) / n
        return Moments(n, mean, _shifted(self, self.mean - mean) + _shifted(other, other.mean - mean))


def _shifted(part: Moments, delta: float) -> np.ndarray:
    """``sum (x - m')^j`` for ``m' = part.mean - delta``, from the part's own central sums."""
    order = part.sums.size - 1
    out = np.zeros(order + 1)
    for j in range(order + 1):
        out[j] = sum(comb(j, i) * delta ** (j - i) * part.sums[i] for i in range(j + 1))
    return out


def scale_state(moments: Moments, center: bool = True, scale: bool = True, ddof: float = 1) -> dict:
    """formulaic's state of ``scale(x, center, scale, ddof)`` for values with these moments."""
    state: dict = {"ddof": ddof, "center": np.float64(moments.mean) if center else None}
    if scale:
        # about the mean when centering, else about 0: sum x^2 = S_2 + n m^2
        squares = moments.sums[2] if center else moments.sums[2] + moments.n * moments.mean**2
        state["scale"] = np.float64(np.sqrt(squares / (moments.n - ddof)))
    else:
        state["scale"] = None
    return state


def poly_state(moments: Moments, degree: int) -> dict:
    """formulaic's state of ``poly(x, degree)``: ``alpha`` (k < degree) and ``norms2`` (k <= degree)."""
    sums, mean = moments.sums, moments.mean

    def inner(p: np.ndarray, q: np.ndarray) -> float:
        return float(sum(p[i] * q[j] * sums[i + j] for i in range(p.size) for j in range(q.size)))

    t = np.array([0.0, 1.0])  # the polynomial t = x - mean
    previous, current = np.zeros(1), np.ones(1)
    alpha, norms2 = {}, {0: np.float64(inner(current, current))}
    for k in range(degree):
        tp = np.convolve(t, current)
        alpha[k] = np.float64(mean + inner(tp, current) / norms2[k])
        nxt = tp + (mean - alpha[k]) * np.pad(current, (0, 1))
        if k >= 1:
            nxt = nxt - (norms2[k] / norms2[k - 1]) * np.pad(previous, (0, nxt.size - previous.size))
        previous, current = current, nxt
        norms2[k + 1] = np.float64(inner(current, current))
    return {"alpha": alpha, "norms2": norms2}

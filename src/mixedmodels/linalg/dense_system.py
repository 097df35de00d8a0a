"""The whole penalized system of a small linear mixed model as one dense matrix.

For sleepstudy (18 subjects x 2 columns), Penicillin or Pastes the blocked
factorization (:mod:`.blocked`) spends its time in the per-call overhead of
some thirty numpy calls on tiny arrays, not in arithmetic.  When the system
has at most ``MAX_SIZE`` rows, this module instead forms

    Omega = Lambda~' A Lambda~ + I~      (N x N, N = q + p + 1)

with two matrix products and factors it with one LAPACK call; the objective
reads off the same diagonals as the blocked factor (``L`` is the same matrix:
the blocked factor is the Cholesky factor of this Omega, in the same order).

The gradient (see :mod:`.gradient` for the derivation) is, with ``P`` the
inverse of Omega's leading block (all but y for REML; the random effects for
ML) padded with zeros, ``z = L^-T e_N`` (so that ``d log r^2 = z' dOmega z``)
and ``M = P + dof z z'``,

    d f / d theta_k = tr(M dOmega / d theta_k) = 2 tr(M Lambda~' A Lambda~_k)
                    = 2 sum over the positions (i, j) of theta_k in Lambda~ of (M Lambda~' A)_{j,i}.

The Hessian follows from ``d log det Omega_S = tr(P_S dOmega)`` and
``d^2 log det Omega_S = -tr(P_S Omega_l P_S Omega_k) + tr(P_S Omega_kl)``, with
``Omega_k = Lambda~_k' A Lambda~ + Lambda~' A Lambda~_k`` and
``Omega_kl = Lambda~_k' A Lambda~_l + Lambda~_l' A Lambda~_k``; the residual
part ``log r^2 = -log (Omega^-1)_NN`` without subtracting two large numbers:

    d^2 log r^2 / dk dl = -2 (Omega_l z)' Omega^-1 (Omega_k z) + z' Omega_kl z + (z' Omega_k z)(z' Omega_l z).

Everything is in the units of the scaled columns (the optimizer's theta).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.linalg import lapack

from ..design.covariance import lower_triangle

__all__ = ["DenseSystem", "DenseFactor", "MAX_SIZE"]

# Systems up to this many rows are factored dense: at N = 64 a factorization
# and a gradient cost ~25 and ~40 us (one thread), below the blocked path's
# numpy overhead; the dense flops grow as N^3.
MAX_SIZE = 64


@dataclass(frozen=True, eq=False)
class DenseFactor:
    """Cholesky factor of the dense Omega at one scaled theta, with the pieces of the objective."""

    scaled: np.ndarray
    lam: np.ndarray
    lower: np.ndarray
    nre: int
    nfixef: int
    ok: bool

    def logdet_re(self) -> float:
        return 2.0 * float(np.log(np.diagonal(self.lower)[: self.nre]).sum())

    def logdet_x(self) -> float:
        return 2.0 * float(np.log(np.diagonal(self.lower)[self.nre : self.nre + self.nfixef]).sum())

    def pwrss(self) -> float:
        return float(self.lower[-1, -1] ** 2)


@dataclass(frozen=True, eq=False)
class DenseSystem:
    """``A = [Z X y]'[Z X y]`` as one dense matrix and where theta goes in ``Lambda~``.

    Attributes
    ----------
    a : ndarray (N, N)
        The cross-products, random effects in block order, then X, then y.
    base : ndarray (N, N)
        ``Lambda~`` with theta's entries zero (identity on the X and y rows).
    rows, cols, index : ndarray
        Position ``(rows[e], cols[e])`` of ``Lambda~`` holds ``theta[index[e]]`` (scaled).
    nre, nfixef, ntheta : int
    """

    a: np.ndarray
    base: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    index: np.ndarray
    nre: int
    nfixef: int
    ntheta: int

    @classmethod
    def build(cls, cp: Any) -> "DenseSystem | None":
        """The dense system of a :class:`.blocked.BlockedCrossProducts` (typed Any: that module imports this
        one), or None when it would have more than ``MAX_SIZE`` rows or a structured term (its lambda
        is not the lower triangle of theta)."""
        q1 = cp.first.size
        size = q1 + cp.a22.shape[0]
        if size > MAX_SIZE or not cp.unstructured:
            return None
        a = np.zeros((size, size))
        k1 = cp.first.ncols
        starts = np.arange(cp.first.nlevels)[:, None, None] * k1  # the diagonal blocks, in one assignment
        a[starts + np.arange(k1)[:, None], starts + np.arange(k1)] = cp.a11
        a21 = cp.a21 if isinstance(cp.a21, np.ndarray) else cp.a21.toarray()
        a[q1:, :q1] = a21
        a[:q1, q1:] = a21.T
        a[q1:, q1:] = cp.a22
        rows, cols, index, offset = [], [], [], 0
        for term in cp.terms:
            r, c = lower_triangle(term.ncols)
            levels = offset + np.arange(term.nlevels)[:, None] * term.ncols
            rows.append((levels + r).ravel())
            cols.append((levels + c).ravel())
            index.append(np.tile(term.theta_start + np.arange(r.size), term.nlevels))
            offset += term.size
        nre = offset
        base = np.zeros((size, size))
        base[np.arange(nre, size), np.arange(nre, size)] = 1.0
        return cls(
            a, base, np.concatenate(rows), np.concatenate(cols), np.concatenate(index), nre, cp.nfixef, cp.ntheta
        )

    def with_response(self, cp: Any) -> "DenseSystem":
        """The same system with the y row and column of ``cp`` (blocks that differ only there)."""
        a = self.a.copy()
        q1 = cp.first.size
        last = cp.a21[-1] if isinstance(cp.a21, np.ndarray) else cp.a21[[-1], :].toarray().ravel()
        a[-1, :q1] = a[:q1, -1] = last
        a[-1, q1:] = a[q1:, -1] = cp.a22[-1]
        system = DenseSystem(a, self.base, self.rows, self.cols, self.index, self.nre, self.nfixef, self.ntheta)
        if "_pair_cache" in self.__dict__:  # theta's positions are random-effects rows: the y row is not among them
            object.__setattr__(system, "_pair_cache", self.__dict__["_pair_cache"])
        return system

    def lam(self, scaled: np.ndarray) -> np.ndarray:
        """``Lambda~`` for a scaled theta."""
        lam = self.base.copy()
        lam[self.rows, self.cols] = scaled[self.index]
        return lam

    def factor(self, scaled: np.ndarray) -> DenseFactor:
        """Cholesky factor of ``Lambda~' A Lambda~ + I~`` at a scaled theta."""
        scaled = np.asarray(scaled, dtype=float)
        lam = self.lam(scaled)
        omega = lam.T @ self.a @ lam
        diagonal = np.arange(self.nre)
        omega[diagonal, diagonal] += 1.0
        lower, info = lapack.dpotrf(omega, lower=1, clean=1, overwrite_a=1)
        return DenseFactor(scaled, lam, lower, self.nre, self.nfixef, info == 0)

    def gradient(self, factor: DenseFactor, REML: bool, nobs: int) -> np.ndarray:
        """Gradient of the REML criterion (or deviance) at the factor's scaled theta."""
        if not factor.ok:
            return np.full(self.ntheta, np.nan)
        size = self.a.shape[0]
        nlead = size - 1 if REML else self.nre
        dof = nobs - (self.nfixef if REML else 0)
        inverse, info = lapack.dtrtri(factor.lower, lower=1)
        if info != 0:
            return np.full(self.ntheta, np.nan)
        lead = inverse[:nlead, :nlead]
        weights = np.zeros((size, size))
        weights[:nlead, :nlead] = lead.T @ lead
        z = inverse[-1]
        weights += dof * np.outer(z, z)
        product = weights @ factor.lam.T @ self.a
        return 2.0 * np.bincount(self.index, weights=product[self.cols, self.rows], minlength=self.ntheta)

    def derivatives(self, factor: DenseFactor, REML: bool, nobs: int) -> tuple[np.ndarray, np.ndarray]:
        """Gradient and Hessian of the REML criterion (or deviance) at the factor's scaled theta."""
        k = self.ntheta
        if not factor.ok:
            return np.full(k, np.nan), np.full((k, k), np.nan)
        size = self.a.shape[0]
        nlead = size - 1 if REML else self.nre
        dof = nobs - (self.nfixef if REML else 0)
        inverse, info = lapack.dtrtri(factor.lower, lower=1)
        if info != 0:
            return np.full(k, np.nan), np.full((k, k), np.nan)
        lead = np.zeros((size, size))
        lead[:nlead, :nlead] = inverse[:nlead, :nlead].T @ inverse[:nlead, :nlead]
        full = inverse.T @ inverse
        z = inverse[-1]
        omega_k = self._first_derivatives(factor.lam)  # (k, N, N)
        times_lead = lead @ omega_k  # P Omega_k, stacked
        omega_z = omega_k @ z  # (k, N)
        residual_gradient = omega_z @ z
        gradient = np.einsum("kii->k", times_lead) + dof * residual_gradient
        cross_a, cross_p, cross_z = self._second_derivative_pieces(lead, z)
        hessian = -np.einsum("lij,kji->kl", times_lead, times_lead) + 2.0 * cross_p
        residual = -2.0 * omega_z @ full @ omega_z.T + 2.0 * cross_z + np.outer(residual_gradient, residual_gradient)
        hessian += dof * residual
        return gradient, (hessian + hessian.T) / 2.0

    def _first_derivatives(self, lam: np.ndarray) -> np.ndarray:
        """``Omega_k = C_k + C_k'`` with ``C_k' = Lambda~_k' A Lambda~``: row ``cols_e`` of ``C_k'`` is row ``rows_e`` of ``A Lambda~``."""
        size = self.a.shape[0]
        a_lam = self.a @ lam
        transposed = np.zeros((self.ntheta, size, size))
        transposed[self.index, self.cols] = a_lam[self.rows]
        return transposed + np.swapaxes(transposed, 1, 2)

    def _second_derivative_pieces(self, lead: np.ndarray, z: np.ndarray):
        """``tr(P Lambda~_k' A Lambda~_l)`` and ``z' Lambda~_k' A Lambda~_l z`` summed over theta's positions.

        ``Lambda~_k' A Lambda~_l = sum_{e in k, f in l} A[rows_e, rows_f] E_{cols_e, cols_f}``.
        """
        a_pairs, cols_flat, indicator = self._pairs()
        p_pairs = a_pairs * lead.reshape(-1)[cols_flat]  # lead[cols_e, cols_f]: P is symmetric
        zc = z[self.cols]
        z_pairs = a_pairs * np.outer(zc, zc)
        return a_pairs, indicator @ p_pairs @ indicator.T, indicator @ z_pairs @ indicator.T

    def _pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``A[rows_e, rows_f]`` for every pair of theta's positions, the flat positions ``(cols_e, cols_f)``,
        and the positions-to-theta indicator (all fixed for a system: found once)."""
        cached = self.__dict__.get("_pair_cache")
        if cached is None:
            size = self.a.shape[0]
            indicator = np.zeros((self.ntheta, self.index.size))
            indicator[self.index, np.arange(self.index.size)] = 1.0
            cols_flat = self.cols[:, None] * size + self.cols[None, :]
            cached = (self.a[np.ix_(self.rows, self.rows)], cols_flat, indicator)
            object.__setattr__(self, "_pair_cache", cached)
        return cached

    def _indicator(self) -> np.ndarray:
        return self._pairs()[2]

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

from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np
from scipy.linalg import lapack

from ..design.covariance import lower_triangle
from ._dense_kernels import compiled

__all__ = ["DenseSystem", "DenseFactor", "MAX_SIZE", "MAX_SIZE_STRUCTURED", "dense_crossproducts"]

# Systems up to this many rows are factored dense: at N = 64 a factorization
# and a gradient cost ~25 and ~40 us (one thread), below the blocked path's
# numpy overhead; the dense flops grow as N^3.
MAX_SIZE = 64
# Structured terms have no Newton step (whose Hessian grows as N^2 per theta pair) and pay more per
# blocked evaluation (their lambda per level): their dense systems go further, with one BLAS thread.
MAX_SIZE_STRUCTURED = 128


@dataclass(frozen=True, eq=False)
class DenseFactor:
    """Cholesky factor of the dense Omega at one scaled theta, with the pieces of the objective."""

    scaled: np.ndarray
    lam: np.ndarray
    lower: np.ndarray
    nre: int
    nfixef: int
    ok: bool
    a: np.ndarray | None = None
    b: np.ndarray | None = None  # A Lambda~, kept by the compiled path for the derivatives
    pieces: tuple[float, float, float] | None = None  # the compiled path's logdet_re, logdet_x, pwrss

    # the diagonal's sums by np.add.reduce: ndarray.sum's and np.diagonal's arithmetic without their Python wrappers
    def logdet_re(self) -> float:
        if self.pieces is not None:
            return self.pieces[0]
        return 2.0 * float(np.add.reduce(np.log(self.lower.diagonal()[: self.nre])))

    def logdet_x(self) -> float:
        if self.pieces is not None:
            return self.pieces[1]
        return 2.0 * float(np.add.reduce(np.log(self.lower.diagonal()[self.nre : self.nre + self.nfixef])))

    def pwrss(self) -> float:
        if self.pieces is not None:
            return self.pieces[2]
        return float(self.lower[-1, -1] ** 2)


def dense_crossproducts(cp: Any) -> np.ndarray:
    """The blocks ``a11``, ``a21``, ``a22`` of a :class:`.blocked.BlockedCrossProducts` as one dense matrix."""
    q1 = cp.first.size
    size = q1 + cp.a22.shape[0]
    a = np.zeros((size, size))
    k1 = cp.first.ncols
    starts = np.arange(cp.first.nlevels)[:, None, None] * k1  # the diagonal blocks, in one assignment
    a[starts + np.arange(k1)[:, None], starts + np.arange(k1)] = cp.a11
    a21 = cp.a21 if isinstance(cp.a21, np.ndarray) else cp.a21.toarray()
    a[q1:, :q1] = a21
    a[:q1, q1:] = a21.T
    a[q1:, q1:] = cp.a22
    return a


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
        Position ``(rows[e], cols[e])`` of ``Lambda~`` holds entry ``index[e]`` of the terms' lambdas'
        lower triangles, one after the other (for unstructured terms: ``theta[index[e]]``, scaled).
    nre, nfixef, ntheta : int
    terms : tuple of TermLayout
        Empty when every term is unstructured (the entries are theta); else every term's layout, whose
        structure makes its lambda (and ``d lambda / d theta``) from theta.
    """

    a: np.ndarray
    base: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    index: np.ndarray
    nre: int
    nfixef: int
    ntheta: int
    terms: tuple = ()

    @classmethod
    def build(cls, cp: Any, a: np.ndarray | None = None) -> "DenseSystem | None":
        """The dense system of a :class:`.blocked.BlockedCrossProducts` (typed Any: that module imports this
        one), or None when it would have more than ``MAX_SIZE`` rows or a structured term without
        ``d lambda / d theta``.  ``a`` is ``dense_crossproducts(cp)`` when the caller has it already."""
        q1 = cp.first.size
        size = q1 + cp.a22.shape[0]
        limit = MAX_SIZE if cp.unstructured else MAX_SIZE_STRUCTURED
        if size > limit or not all(t.structure.has_derivative for t in cp.terms):
            return None
        a = dense_crossproducts(cp) if a is None else a
        rows, cols, index, offset, entries = [], [], [], 0, 0
        for term in cp.terms:
            r, c = lower_triangle(term.ncols)
            levels = offset + np.arange(term.nlevels)[:, None] * term.ncols
            rows.append((levels + r).ravel())
            cols.append((levels + c).ravel())
            index.append(entries + np.arange(term.nlevels * r.size) % r.size)  # np.tile's, cheaper
            offset, entries = offset + term.size, entries + r.size
        nre = offset
        base = np.zeros((size, size))
        base[np.arange(nre, size), np.arange(nre, size)] = 1.0
        terms = () if cp.unstructured else tuple(cp.terms)
        return cls(
            a, base, np.concatenate(rows), np.concatenate(cols), np.concatenate(index), nre, cp.nfixef, cp.ntheta, terms
        )

    def with_response(self, cp: Any) -> "DenseSystem":
        """The same system with the y row and column of ``cp`` (blocks that differ only there)."""
        a = self.a.copy()
        q1 = cp.first.size
        last = cp.a21[-1] if isinstance(cp.a21, np.ndarray) else cp.a21[[-1], :].toarray().ravel()
        a[-1, :q1] = a[:q1, -1] = last
        a[-1, q1:] = a[q1:, -1] = cp.a22[-1]
        system = replace(self, a=a)
        if "_pair_cache" in self.__dict__:  # theta's positions are random-effects rows: the y row is not among them
            object.__setattr__(system, "_pair_cache", self.__dict__["_pair_cache"])
        return system

    @property
    def structured(self) -> bool:
        """Whether a term is structured (its lambda's entries are functions of theta, not theta itself)."""
        return bool(self.terms)

    def _entries(self, scaled: np.ndarray) -> np.ndarray:
        """The terms' lambdas' lower triangles, one after the other (theta itself when unstructured)."""
        if not self.terms:
            return scaled
        parts = []
        for term in self.terms:
            lam = term.structure.lam(scaled[term.theta_start : term.theta_stop], term.ncols)
            parts.append(lam[lower_triangle(term.ncols)])
        return np.concatenate(parts)

    def _entry_jacobian(self, scaled: np.ndarray) -> np.ndarray:
        """``d entries / d theta`` (entries x ntheta): each structure's ``d lambda / d theta`` on its lower triangle."""
        offset = 0
        out = np.zeros((self.index.max() + 1, self.ntheta))
        for term in self.terms:
            rows, cols = lower_triangle(term.ncols)
            dlam = term.structure.dlam(scaled[term.theta_start : term.theta_stop], term.ncols)
            out[offset : offset + rows.size, term.theta_start : term.theta_stop] = dlam[:, rows, cols].T
            offset += rows.size
        return out

    def lam(self, scaled: np.ndarray) -> np.ndarray:
        """``Lambda~`` for a scaled theta."""
        lam = self.base.copy()
        lam[self.rows, self.cols] = self._entries(scaled)[self.index]
        return lam

    def factor(self, scaled: np.ndarray, a: np.ndarray | None = None, exact_lapack: bool = False) -> DenseFactor:
        """Cholesky factor of ``Lambda~' A Lambda~ + I~`` at a scaled theta (with ``a`` in place of ``A``: a
        residual structure's cross-products at its parameters).  Compiled (:mod:`._dense_kernels`) where numba
        is available, unless ``exact_lapack``: then numpy's products and LAPACK's Cholesky, as without numba (the
        results' factor, so that a fit reports the same criterion, beta and sigma at the same theta either way)."""
        scaled = np.asarray(scaled, dtype=float)
        kernel = compiled("dense_factor") if a is None and not exact_lapack else None
        if kernel is not None:  # one compiled call (see ._dense_kernels); the numpy path's results to rounding
            entries = self._entries(scaled)
            lam, lower, b, pieces, info = kernel(
                self.a, self.rows, self.cols, self.index, entries, self.nre, self.nfixef
            )
            return DenseFactor(scaled, lam, lower, self.nre, self.nfixef, info == 0, None, b, tuple(pieces.tolist()))
        lam = self.lam(scaled)
        omega = lam.T @ (self.a if a is None else a) @ lam
        size = omega.shape[0]
        omega.reshape(-1)[: self.nre * (size + 1) : size + 1] += 1.0  # the random effects' diagonal (a view)
        lower, info = lapack.dpotrf(omega, lower=1, clean=1, overwrite_a=1)
        return DenseFactor(scaled, lam, lower, self.nre, self.nfixef, info == 0, a)

    def _weights(self, factor: DenseFactor, REML: bool, nobs: int) -> np.ndarray | None:
        """``M = P + dof z z'`` with ``df = tr(M dOmega)`` (see the module docstring); None if L is singular."""
        size = self.a.shape[0]
        nlead = size - 1 if REML else self.nre
        dof = nobs - (self.nfixef if REML else 0)
        inverse, info = lapack.dtrtri(factor.lower, lower=1)
        if info != 0:
            return None
        lead = inverse[:nlead, :nlead]
        weights = np.zeros((size, size))
        weights[:nlead, :nlead] = lead.T @ lead
        z = inverse[-1]
        weights += dof * np.outer(z, z)
        return weights

    def gradient(self, factor: DenseFactor, REML: bool, nobs: int) -> np.ndarray:
        """Gradient of the REML criterion (or deviance) at the factor's scaled theta.

        For structured terms, the chain rule through each structure's ``d lambda / d theta``.
        """
        weights = self._weights(factor, REML, nobs) if factor.ok else None
        if weights is None:
            return np.full(self.ntheta, np.nan)
        return self._theta_gradient(factor, weights)

    def _theta_gradient(self, factor: DenseFactor, weights: np.ndarray) -> np.ndarray:
        a = self.a if factor.a is None else factor.a
        product = weights @ factor.lam.T @ a
        nentries = int(self.index.max()) + 1
        entries = 2.0 * np.bincount(self.index, weights=product[self.cols, self.rows], minlength=nentries)
        return entries @ self._entry_jacobian(factor.scaled) if self.terms else entries

    def piece_gradient(
        self, factor: DenseFactor, REML: bool, nobs: int, pieces: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The gradient over the scaled theta and over the coefficients ``c`` of ``A = sum_k c_k A_k``.

        ``pieces`` holds ``A_k`` flattened, one row each; ``df / dc_k = tr(M Lambda~' A_k Lambda~)
        = sum(A_k * (Lambda~ M Lambda~'))``: one matrix-vector product for all pieces.
        """
        weights = self._weights(factor, REML, nobs) if factor.ok else None
        if weights is None:
            return np.full(self.ntheta, np.nan), np.full(pieces.shape[0], np.nan)
        sandwich = factor.lam @ weights @ factor.lam.T
        return self._theta_gradient(factor, weights), pieces @ sandwich.reshape(-1)

    def derivatives(self, factor: DenseFactor, REML: bool, nobs: int) -> tuple[np.ndarray, np.ndarray]:
        """Gradient and Hessian of the REML criterion (or deviance) at the factor's scaled theta.

        Unstructured terms only (a structure's second derivatives are not available).  With
        ``B = A Lambda~``, ``Omega_k = C_k + C_k'`` where ``C_k = B' E_k`` and ``E_k`` holds ones at theta_k's
        positions ``(rows_e, cols_e)`` of ``Lambda~``, every trace is a sum over pairs of positions
        (``Q = P B'``, ``R = B P B'``):

            tr(P Omega_k)                = 2 sum_{e in k} Q[cols_e, rows_e]
            tr(P Omega_l P Omega_k)      = 2 sum_{e in l, f in k} (Q[cols_f, rows_e] Q[cols_e, rows_f]
                                                                   + P[cols_e, cols_f] R[rows_e, rows_f])
            tr(P Omega_kl)               = 2 sum_{e in k, f in l} P[cols_e, cols_f] A[rows_e, rows_f]
            Omega_k z                    = B' w_k + v_k,  w_k = sum_{e in k} z[cols_e] e_{rows_e},
                                                          v_k = sum_{e in k} (B z)[rows_e] e_{cols_e}

        so no ``N x N`` matrix per parameter is formed (a handful of ``N x N`` products, then gathers of the
        positions' pairs).
        """
        if self.terms:
            raise ValueError("the exact Hessian needs unstructured terms")
        k = self.ntheta
        if not factor.ok:
            return np.full(k, np.nan), np.full((k, k), np.nan)
        size = self.a.shape[0]
        nlead = size - 1 if REML else self.nre
        dof = nobs - (self.nfixef if REML else 0)
        kernel = compiled("dense_derivatives") if factor.b is not None else None
        if kernel is not None:
            gradient, hessian, info = kernel(
                self.a, factor.b, factor.lower, self.rows, self.cols, self.index, k, nlead, float(dof)
            )
            return (gradient, hessian) if info == 0 else (np.full(k, np.nan), np.full((k, k), np.nan))
        inverse, info = lapack.dtrtri(factor.lower, lower=1)
        if info != 0:
            return np.full(k, np.nan), np.full((k, k), np.nan)
        lead = np.zeros((size, size))
        lead[:nlead, :nlead] = inverse[:nlead, :nlead].T @ inverse[:nlead, :nlead]
        z = inverse[-1]
        b = self.a @ factor.lam
        q = lead @ b.T
        r = b @ q
        bz = b @ z
        a_pairs, cols_flat, indicator, cross_flat, rows_flat = self._pairs()
        zc, bzr = z[self.cols], bz[self.rows]
        residual_gradient = indicator @ (2.0 * zc * bzr)
        gradient = indicator @ (2.0 * q.reshape(-1)[self.cols * size + self.rows]) + dof * residual_gradient
        x = q.reshape(-1)[cross_flat]  # Q[cols_f, rows_e]
        pairs = np.subtract(a_pairs, r.reshape(-1)[rows_flat])
        pairs *= lead.reshape(-1)[cols_flat]
        pairs -= x * x.T
        weighted = indicator * zc  # z' Omega_kl z / 2 = sum_{e in k, f in l} z[cols_e] A[rows_e, rows_f] z[cols_f]
        hessian = 2.0 * (indicator @ pairs @ indicator.T + dof * (weighted @ a_pairs @ weighted.T))
        w = np.zeros((k, size))
        w[self.index, self.rows] = zc
        omega_z = w @ b
        omega_z[self.index, self.cols] += bzr
        u = omega_z @ inverse.T  # (Omega_k z)' Omega^-1 (Omega_l z) = u_k . u_l
        hessian += dof * (np.outer(residual_gradient, residual_gradient) - 2.0 * u @ u.T)
        return gradient, (hessian + hessian.T) / 2.0

    def newton_loop(self, REML: bool, nobs: int, n: float, log_weights: float) -> Callable | None:
        """:func:`mixedmodels.optim.minimize_newton`'s compiled loop on this system (``loop``), for the criterion
        ``log det L_re^2 + n (1 + log 2 pi + log(pwrss / n)) [+ log det L_x^2] - log_weights``; None without
        numba or with structured terms."""
        kernel = compiled("dense_newton") if not self.terms else None
        if kernel is None:
            return None
        layout, criterion = self._criterion(REML, nobs, n, log_weights)

        def loop(x0: np.ndarray, f0: float | None, rules: np.ndarray, codes: np.ndarray) -> tuple:
            f0 = np.nan if f0 is None else float(f0)
            return kernel(self.a, self.rows, self.cols, self.index, layout, criterion, x0, f0, rules, codes)

        return loop

    def values(self, REML: bool, nobs: int, n: float, log_weights: float) -> Callable | None:
        """The criterion of :meth:`newton_loop` at each of a list of scaled thetas, in one compiled call (the
        start candidates'); None without numba or with structured terms."""
        kernel = compiled("dense_values") if not self.terms else None
        if kernel is None:
            return None
        layout, criterion = self._criterion(REML, nobs, n, log_weights)

        def values(points: list[np.ndarray]) -> list[float]:
            return kernel(self.a, self.rows, self.cols, self.index, layout, criterion, np.array(points)).tolist()

        return values

    def _criterion(self, REML: bool, nobs: int, n: float, log_weights: float) -> tuple[np.ndarray, np.ndarray]:
        """The compiled kernels' ``layout`` and ``objective`` arrays (see ``._dense_kernels.dense_newton``)."""
        layout = np.array([self.ntheta, self.nre, self.nfixef, self.a.shape[0] - 1 if REML else self.nre])
        criterion = np.array([nobs - (self.nfixef if REML else 0), n, log_weights, float(REML)], dtype=float)
        return layout, criterion

    def _pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``A[rows_e, rows_f]`` for every pair of theta's positions, the flat positions ``(cols_e, cols_f)``,
        the positions-to-theta indicator, and the flat positions ``(cols_e, rows_f)`` and ``(rows_e, rows_f)``
        (all fixed for a system: found once)."""
        cached = self.__dict__.get("_pair_cache")
        if cached is None:
            size = self.a.shape[0]
            indicator = np.zeros((self.ntheta, self.index.size))
            indicator[self.index, np.arange(self.index.size)] = 1.0
            cols_flat = self.cols[:, None] * size + self.cols[None, :]
            cross_flat = self.cols[:, None] * size + self.rows[None, :]
            rows_flat = self.rows[:, None] * size + self.rows[None, :]
            cached = (self.a[np.ix_(self.rows, self.rows)], cols_flat, indicator, cross_flat, rows_flat)
            object.__setattr__(self, "_pair_cache", cached)
        return cached

    def _indicator(self) -> np.ndarray:
        return self._pairs()[2]

"""The rest block held and factored sparsely, for crossed designs whose dense rest block would not fit.

A crossed design ``(1 | a) + (1 | b)`` with 20,000 levels of each on 50,000
rows has a rest block of 20,002 rows: 3.2 GB dense, six copies at a fit's
peak.  Yet after the big term's levels are eliminated, each level of ``b``
is joined only to the few levels of ``b`` it shares a level of ``a`` with:
the block ``M = Lambda' (A22 - A21 W A21') Lambda + I_re`` has ~150,000
non-zeros, and its Cholesky factor, in a fill-reducing order, ~10 million
(CHOLMOD-class; lme4 holds its whole factor the same way).

Here the block is split into its random-effects part and the few fixed
rows (X's columns and y)::

    M = [ M_re  M_rf ]      M_re   sparse (nre x nre)
        [ M_fr  M_ff ]      M_rf   dense, nre x (p + 1)

``M_re`` is factored sparsely; the fixed rows are eliminated through it:
``G = M_re^-1 M_rf`` (p + 1 solves) and ``S = M_ff - M_fr G``, whose dense
Cholesky factor ``[[L_X, 0], [c_y', r]]`` is exactly the X and y rows of the
dense path's factor.  So ``log det L_theta^2 = log det L11^2 + log det M_re``,
``log det R_X^2 = 2 sum log diag L_X``, the penalized residual sum of squares
is ``r^2``, ``beta`` solves ``L_X' beta = c_y``, and the rest terms' spherical
random effects are ``G_y - G_X beta``.

The sparse factorization is SuperLU's (scipy) with diagonal pivots
(``diag_pivot_thresh=0``: a symmetric positive definite matrix needs no
pivoting, and the LU factors are then ``L D^(1/2)`` and ``D^(1/2) L'`` of
the Cholesky factor, so ``log det M_re`` is the sum of ``log U_ii``).  The
fill-reducing order (SuperLU's multiple minimum degree on ``M_re + M_re'``)
is computed at the first factorization and kept: later ones permute the
block symmetrically and ask for no reordering.  scipy alone: no new
dependency.

In that order most of the factor is one dense front at the end (the
20,000 x 20,000 design: 4,213 rows holding 8.9 of 10.0 million entries),
which SuperLU factors slowly.  With numba, a front of at least
``_MIN_ROOT`` rows is split off: the block is ``[[A, B], [B', C]]`` with A
(the sparse part, 66,000 entries in its factor) factored by SuperLU,
``C - B' A^-1 B`` formed with compiled multi-column solves and factored by
LAPACK (``_RootFactor``): 3.8 s per factorization instead of 12 s.

What this path does not give: the dense factor ``l22`` (conditional
variances, hat values and the inference that refactors in the original
order need its inverse, which would be dense) -- those raise a
:class:`~mixedmodels.errors.MixedModelsError` that says so.

The path is chosen only when the dense rest block would need more than
:data:`mixedmodels.design.size.SPARSE_REST_MIN_BYTES` (2 GB): every model
that fits densely stays on its dense path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.linalg import cho_solve, lapack, solve_triangular

from ..design import size as _size
from ..errors import MixedModelsError
from . import _sparse_kernels
from .modes import spherical_modes

__all__ = ["SparseRest", "SparseFactorization", "use_sparse_rest", "sparse_gram"]

_SYMMETRIC = {"SymmetricMode": True}
# A dense trailing front of at least this many rows is factored by LAPACK (with numba's solves): SuperLU
# is ~3x slower on it (20,000 x 20,000 levels: 12 s against 3.8 s per factorization on a loaded machine).
_MIN_ROOT = 500
_CHUNK = 256  # columns of B solved at once while the front's Schur complement is formed


def use_sparse_rest(m: int) -> bool:
    """Whether a rest block of ``m`` rows is held sparsely (its dense ``m x m`` doubles above the limit)."""
    return 8.0 * m * m > _size.SPARSE_REST_MIN_BYTES


def sparse_gram(rest_re: list[sp.csc_array], xy: np.ndarray) -> sp.csc_array:
    """``[Z_rest X y]' [Z_rest X y]`` as a sparse matrix (the X and y columns are dense columns in it)."""
    rest = sp.hstack(rest_re + [sp.csc_array(xy)], format="csc")
    gram = sp.csc_array(rest.T @ rest)
    gram.sort_indices()
    return gram


def _rest_lambda(terms: tuple[Any, ...], theta: np.ndarray, nfixed: int) -> sp.csr_array:
    """Block-diagonal ``Lambda`` of the rest terms (one ``lam`` per level), then the identity for X and y."""
    blocks = [sp.kron(sp.eye_array(t.nlevels), sp.csr_array(t.scaled_lam(theta)), format="csr") for t in terms]
    return sp.csr_array(sp.block_diag(blocks + [sp.eye_array(nfixed)], format="csr"))


@dataclass(frozen=True, eq=False)
class SparseRest:
    """The sparse rest block's fixed parts and its fill-reducing order (found at the first factorization).

    Attributes
    ----------
    nre : int
        Rows of the rest terms' random effects (they come first).
    order : dict
        ``{"perm": ndarray}`` once the first factorization has chosen the
        order: ``M_re[perm][:, perm]`` is factored without reordering.
    """

    nre: int
    order: dict = field(default_factory=dict, repr=False)

    def factorize(self, cp: Any, theta: np.ndarray, l11: np.ndarray, weights: np.ndarray) -> "SparseFactorization":
        """The factor at theta, given the big term's per-level factors ``l11`` and weights ``W_l``."""
        nre = self.nre
        updated = sp.csc_array(cp.a22 - _rank_update_sparse(cp.a21, weights))
        lam = _rest_lambda(cp.rest_terms, theta, updated.shape[0] - nre)
        mat = sp.csc_array(lam.T @ updated @ lam)
        m_re = sp.csc_array(mat[:nre, :nre] + sp.eye_array(nre))
        m_rf = mat[:nre, nre:].toarray()
        m_ff = mat[nre:, nre:].toarray()
        del updated, mat
        failed = SparseFactorization(cp, theta, l11, np.nan, np.empty((nre, 0)), np.empty((0, 0)), False)
        lu = self._factor_re(m_re)
        if lu is None:
            return failed
        g = lu.solve(m_rf)
        schur = m_ff - m_rf.T @ g
        try:
            lower = np.linalg.cholesky(0.5 * (schur + schur.T))
        except np.linalg.LinAlgError:  # X rank deficient (or y in its span)
            return failed
        return SparseFactorization(cp, theta, l11, lu.logdet(), g, lower, True)

    def _factor_re(self, m_re: sp.csc_array) -> "_OrderedLU | _RootFactor | None":
        """The factor of ``M_re`` in the kept order (chosen now on the first call), or None if not positive definite."""
        perm = self.order.get("perm")
        try:
            if perm is None:
                lu = spla.splu(m_re, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options=_SYMMETRIC)
                if not np.array_equal(lu.perm_r, lu.perm_c):
                    return None  # a pivot left the diagonal: not positive definite
                inverse = np.empty_like(lu.perm_c)
                inverse[lu.perm_c] = np.arange(lu.perm_c.size)
                self.order["perm"] = inverse  # row k of the ordered block is row inverse[k]
                self.order["split"], self.order["kernel"] = _root_split(lu)
                return _OrderedLU.checked(lu, None)
            permuted = sp.csc_array(m_re[perm][:, perm])
            if self.order["split"] is not None:
                return _RootFactor.build(permuted, self.order["split"], perm, self.order["kernel"])
            lu = spla.splu(permuted, permc_spec="NATURAL", diag_pivot_thresh=0.0, options=_SYMMETRIC)
        except RuntimeError:  # SuperLU: "Factor is exactly singular"
            return None
        return _OrderedLU.checked(lu, perm)


def _root_split(lu: Any) -> tuple[int | None, Any]:
    """Where the factor's dense trailing front begins, when it is large enough to hand to LAPACK (and numba is there).

    In a minimum-degree order of a crossed design most of the factor is one
    dense front at the end (20,000 x 20,000 levels: 4,213 rows holding 8.9 of
    its 10.0 million entries), which SuperLU factors slowly.  Returns the
    split and the compiled solve, or ``(None, None)``.
    """
    kernel = _sparse_kernels.compiled("lu_solve_columns")
    if kernel is None:
        return None, None
    counts = np.diff(lu.L.indptr)  # entries per column of L, diagonal included
    n = counts.size
    dense = counts == n - np.arange(n)
    root = n - int(np.flatnonzero(~dense)[-1]) - 1 if not dense.all() else n
    if root < _MIN_ROOT or root == n:
        return None, None
    return n - root, kernel


@dataclass(frozen=True, eq=False)
class _OrderedLU:
    """A SuperLU factor of ``M_re`` (``perm`` None) or of ``M_re[perm][:, perm]``, solving in the original order."""

    lu: Any
    perm: np.ndarray | None
    pivots: np.ndarray

    @classmethod
    def checked(cls, lu: Any, perm: np.ndarray | None) -> "_OrderedLU | None":
        pivots = lu.U.diagonal()  # U is copied out of SuperLU: read its diagonal once
        return cls(lu, perm, pivots) if np.all(pivots > 0) else None

    def logdet(self) -> float:
        """``log det M_re``: U's diagonal holds the pivots ``d_i = L_ii^2`` of the Cholesky factor."""
        return float(np.log(self.pivots).sum())

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        if self.perm is None:
            return self.lu.solve(rhs)
        out = np.empty_like(rhs)
        out[self.perm] = self.lu.solve(np.ascontiguousarray(rhs[self.perm]))
        return out


@dataclass(frozen=True, eq=False)
class _RootFactor:
    """``M_re`` in the kept order as ``[[A, B], [B', C]]``: SuperLU for the sparse A, LAPACK for the dense front.

    ``S = C - B' A^-1 B`` is formed in column chunks (compiled solves with A's
    factors, a sparse product with B') and factored by ``dpotrf``; then
    ``log det M_re = log det A + log det S`` and solves go through the blocks.
    """

    perm: np.ndarray
    lower: sp.csc_array
    upper: sp.csc_array
    pivots: np.ndarray
    b: sp.csc_array
    bt: sp.csr_array
    root: np.ndarray
    kernel: Any

    @classmethod
    def build(cls, permuted: sp.csc_array, split: int, perm: np.ndarray, kernel: Any) -> "_RootFactor | None":
        lu = spla.splu(
            sp.csc_array(permuted[:split, :split]), permc_spec="NATURAL", diag_pivot_thresh=0.0, options=_SYMMETRIC
        )
        lower, upper = sp.csc_array(lu.L), sp.csc_array(lu.U)
        pivots = upper.diagonal()
        if not np.all(pivots > 0):
            return None
        b = sp.csc_array(permuted[:split, split:])
        bt = sp.csr_array(b.T)
        schur = np.ascontiguousarray(permuted[split:, split:].toarray())
        for start in range(0, schur.shape[0], _CHUNK):
            cols = slice(start, start + _CHUNK)
            x = np.ascontiguousarray(b[:, cols].toarray())
            kernel(lower.indptr, lower.indices, lower.data, upper.indptr, upper.indices, upper.data, x)
            schur[:, cols] -= bt @ x
        # schur.T is a Fortran-ordered view of the symmetric S: LAPACK factors it in place as U'U
        root, info = lapack.dpotrf(schur.T, lower=0, clean=0, overwrite_a=1)
        if info != 0:
            return None
        return cls(perm, lower, upper, pivots, b, bt, root, kernel)

    def logdet(self) -> float:
        return float(np.log(self.pivots).sum() + 2.0 * np.log(self.root.diagonal()).sum())

    def _a_solve(self, rhs: np.ndarray) -> np.ndarray:
        x = np.array(rhs, dtype=float, order="C", copy=True)
        self.kernel(
            self.lower.indptr,
            self.lower.indices,
            self.lower.data,
            self.upper.indptr,
            self.upper.indices,
            self.upper.data,
            x,
        )
        return x

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """``M_re^-1 rhs`` (rhs ``(nre, r)``, original order) by block elimination."""
        y = rhs[self.perm]
        split = self.pivots.size
        x1 = self._a_solve(y[:split])
        x2 = cho_solve((self.root, False), y[split:] - self.bt @ x1, check_finite=False)
        x1 = self._a_solve(y[:split] - self.b @ x2)
        out = np.empty_like(y)
        out[self.perm] = np.vstack([x1, x2])
        return out


def _rank_update_sparse(a21: sp.csr_array, weights: np.ndarray) -> sp.csr_array:
    """``A21 W A21'`` for block-diagonal W, kept sparse."""
    q = weights.shape[0]
    if weights.ndim == 1 or weights.shape[1] == 1:
        wmat = sp.diags_array(weights.reshape(-1))
    else:
        k = weights.shape[1]
        wmat = sp.bsr_array((weights, np.arange(q), np.arange(q + 1)), shape=(q * k, q * k))
    return sp.csr_array(a21 @ wmat @ a21.T)


@dataclass(frozen=True, eq=False)
class SparseFactorization:
    """The blocked factor with a sparsely factored rest block: the objective's pieces and the solutions.

    Same reading methods as :class:`.blocked.Factorization` (``logdet_re``,
    ``logdet_x``, ``pwrss``, ``solve``, ``fixed_factor``); the dense ``l22``
    is not formed.
    """

    crossprods: Any
    theta: np.ndarray
    l11: np.ndarray
    logdet_rest: float
    g: np.ndarray
    schur_factor: np.ndarray
    ok: bool
    order: None = None

    @property
    def l22(self) -> np.ndarray:
        raise _dense_needed("the dense rest factor l22")

    def in_original_order(self) -> "SparseFactorization":
        raise _dense_needed("this computation (conditional variances, hat values, refactoring in the original order)")

    def logdet_re(self) -> float:
        diag11 = self.l11 if self.l11.ndim == 1 else self.l11.diagonal(0, 1, 2)
        return 2.0 * float(np.log(diag11).sum()) + self.logdet_rest

    def logdet_x(self) -> float:
        p = self.crossprods.nfixef
        return 2.0 * float(np.log(self.schur_factor.diagonal()[:p]).sum())

    def pwrss(self) -> float:
        return float(self.schur_factor[-1, -1] ** 2)

    def fixed_factor(self) -> tuple[np.ndarray, np.ndarray]:
        p = self.crossprods.nfixef
        return np.tril(self.schur_factor[:p, :p]), self.schur_factor[-1, :p].copy()

    def solve(self) -> tuple[np.ndarray, list[np.ndarray]]:
        """Fixed effects beta and spherical random effects u (one (q, k) array per term)."""
        lx, cy = self.fixed_factor()
        beta = solve_triangular(lx, cy, lower=True, trans="T") if lx.size else np.empty(0)
        u_rest = self.g[:, -1] - self.g[:, :-1] @ beta
        return beta, spherical_modes(self.crossprods, self.theta, self.l11, u_rest, beta)


def _dense_needed(what: str) -> MixedModelsError:
    return MixedModelsError(
        f"{what} needs the dense factor of the rest block, which this model does not form: its rest block is "
        "factored sparsely because the dense one would not fit in memory (see mixedmodels.linalg.sparse_rest); "
        "the estimates, the random effects' conditional modes, vcov() and the log-likelihood are available"
    )

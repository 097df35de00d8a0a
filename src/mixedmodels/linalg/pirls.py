"""Penalized iteratively reweighted least squares (PIRLS) on the blocked Cholesky factor.

For a GLMM with relative covariance factor ``Lambda(theta)`` the conditional
modes ``u`` of the spherical random effects (and, for ``nAGQ=0``, the fixed
effects ``beta``) minimize the penalized deviance (Bates et al. 2015, lme4's
PIRLS; MixedModels.jl's ``pirls!``)

    pdev(u) = sum_i d_i(y_i, mu_i) + ||u||^2,    mu = g^-1(offset + X beta + Z Lambda u).

Each iteration computes the working weights ``w_i = wt_i mu_eta_i^2 / V(mu_i)``
and working response, re-forms the blocks of ``[Z X z]' W [Z X z]`` and solves
the penalized weighted least-squares problem with the same blocked Cholesky
factor the linear mixed model uses (:class:`~mixedmodels.linalg.blocked.Factorization`),
halving the step while the penalized deviance does not decrease.

The sparsity of every block is fixed by the grouping factors, so
:class:`ReweightedBlocks` works out once where each observation's products
land; a reweighting is then a single ``bincount`` plus one sparse-times-dense
product, with no model matrix rebuilt.  When every term is scalar, the
iterations use :class:`~mixedmodels.linalg.pirls_scalar.ScalarSystem` instead
(the same factor, without the general blocked code's per-call overhead); the
results still get the blocked factor (:meth:`Pirls.blocked_factor`).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Callable, Sequence

import numpy as np
import scipy.sparse as sp

from ..design.covariance import UNSTRUCTURED, lower_triangle
from .blocked import BlockedCrossProducts, Factorization, TermLayout, _column_scales
from . import _pirls_kernels
from .pirls_scalar import ScalarFactor, ScalarSystem, SparseFactor, SparseScalarSystem, small_dense

__all__ = ["ReweightedBlocks", "PirlsResult", "Pirls"]

# Above this many entries the first-to-rest block is kept sparse (as blocked.py does).
_DENSE_LIMIT = 50_000
# Non-canonical links: Fisher scoring (lme4's steps, which decide which mode is reached
# when there are several) until the steps are this small, then Newton steps.
_NEWTON_FROM = 1e-2
# A factor computed before a last step shorter than this is the factor at the modes.
_REUSE_FACTOR = 1e-13


@dataclass(frozen=True, eq=False)
class _Term:
    refs: np.ndarray
    z: np.ndarray
    layout: TermLayout
    offset: int  # first column of this term in Z (and row in the rest block, minus the first term)


_triangle = lru_cache(maxsize=None)(lower_triangle)


class _Layout(TermLayout):
    """A :class:`TermLayout` whose ``lam`` reuses the cached triangle indices (it is called every iteration).

    As in :meth:`BlockedCrossProducts.build`, the term's columns are divided
    by their root-mean-square ``scales`` before any product is formed, so the
    blocks hold ``Z diag(1/scales)`` and the factorization uses ``scaled_lam``.
    """

    def lam(self, theta: np.ndarray) -> np.ndarray:
        if self.structure is not UNSTRUCTURED:
            return super().lam(theta)
        k = self.ncols
        if k == 1:
            return np.array([[theta[self.theta_start]]])
        lam = np.zeros((k, k))
        lam[_triangle(k)] = theta[self.theta_start : self.theta_stop]
        return lam


def _layouts(terms: Sequence) -> list[TermLayout]:
    out, start = [], 0
    for term in terms:
        structure = getattr(term, "structure", UNSTRUCTURED)
        scales = structure.column_scales(_column_scales(np.asarray(term.z, dtype=float)))
        out.append(_Layout(term.nlevels, term.z.shape[1], start, scales, structure))
        start = out[-1].theta_stop
    return out


@dataclass(frozen=True, eq=False)
class _Scatter:
    """One column pair's products: observation i adds ``w_i coef_i`` at ``dest_i`` of a block."""

    block: int  # 0: A11 (per-level k1 x k1), 1: random-effects rows of A21, 2: random-effects part of A22
    dest: np.ndarray
    coef: np.ndarray | None  # z_a z_b per observation; None when all ones (intercepts)


def _column_pairs(a: _Term, b: _Term) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(Z column of a, Z column of b, z_a z_b) per observation, for every column pair of two terms."""
    out = []
    for i in range(a.layout.ncols):
        for j in range(b.layout.ncols):
            rows = a.offset + a.refs * a.layout.ncols + i
            cols = b.offset + b.refs * b.layout.ncols + j
            out.append((rows, cols, a.z[:, i] * b.z[:, j]))
    return out


def _scatter(block: int, dest: np.ndarray, coef: np.ndarray) -> _Scatter:
    return _Scatter(block, np.ascontiguousarray(dest, dtype=np.intp), None if np.all(coef == 1.0) else coef)


def _scatter_matrix(scatters: list[_Scatter], sizes: tuple[int, int, int], n: int) -> sp.csr_array:
    """All scatters as one sparse matrix: entry (buffer position, observation) = z_a z_b.

    A sparse matrix-vector product gathers along rows, which is faster than
    ``bincount``'s scattered writes (rows of sorted data hit the same bin in a row).
    """
    starts = np.concatenate([[0], np.cumsum(sizes)])
    rows = np.concatenate([sc.dest + starts[sc.block] for sc in scatters])
    cols = np.concatenate([np.arange(n)] * len(scatters))
    vals = np.concatenate([np.ones(n) if sc.coef is None else sc.coef for sc in scatters])
    return sp.csr_array(sp.coo_array((vals, (rows, cols)), shape=(int(starts[-1]), n)))


@dataclass(frozen=True, eq=False)
class _Pattern:
    """The products' pattern of :class:`ReweightedBlocks`: Z, Z' and where each observation's products go."""

    z: sp.csr_array
    zt: sp.csr_array
    scatter: sp.csr_array
    sizes: tuple[int, int, int]
    a21_pattern: tuple[np.ndarray, np.ndarray] | None

    @classmethod
    def build(cls, terms: Sequence, layouts: Sequence[TermLayout]) -> "_Pattern":
        offsets = np.concatenate([[0], np.cumsum([lay.size for lay in layouts])])
        parts = [
            _Term(t.refs, np.asarray(t.z, dtype=float) / lay.scales, lay, int(o))
            for t, lay, o in zip(terms, layouts, offsets)
        ]
        first, rest = parts[0], parts[1:]
        q1k1, k1 = first.layout.size, first.layout.ncols
        m_re = int(offsets[-1] - q1k1)
        # A11: level l, columns (a, b) -> l k1^2 + a k1 + b
        scatters = [_scatter(0, rows * k1 + (cols % k1), coef) for rows, cols, coef in _column_pairs(first, first)]
        pairs21 = [pair for t in rest for pair in _column_pairs(t, first)]
        dests21 = [(rows - q1k1) * q1k1 + cols for rows, cols, _ in pairs21]
        size21, pattern = m_re * q1k1, None
        if pairs21 and (m_re + 1) * q1k1 > _DENSE_LIMIT:
            keys = np.unique(np.concatenate(dests21))
            dests21 = [np.searchsorted(keys, d) for d in dests21]
            indptr = np.concatenate([[0], np.cumsum(np.bincount(keys // q1k1, minlength=m_re))])
            size21, pattern = keys.size, ((keys % q1k1).astype(np.int32), indptr.astype(np.int64))
        scatters += [_scatter(1, d, coef) for d, (_, _, coef) in zip(dests21, pairs21)]
        scatters += [
            _scatter(2, (rows - q1k1) * m_re + (cols - q1k1), coef)
            for a in rest
            for b in rest
            for rows, cols, coef in _column_pairs(a, b)
        ]
        zmat = cls._model_matrix(parts, int(offsets[-1]))
        sizes = (first.layout.nlevels * k1 * k1, size21, m_re * m_re)
        return cls(zmat, sp.csr_array(zmat.T), _scatter_matrix(scatters, sizes, first.refs.size), sizes, pattern)

    @staticmethod
    def _model_matrix(parts: list[_Term], q: int) -> sp.csr_array:
        rows, cols, vals = [], [], []
        for t in parts:
            k = t.layout.ncols
            rows.append(np.repeat(np.arange(t.refs.size), k))
            cols.append((t.offset + t.refs[:, None] * k + np.arange(k)).ravel())
            vals.append(t.z.ravel())
        coo = sp.coo_array(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(parts[0].refs.size, q)
        )
        return sp.csr_array(coo)


@dataclass(frozen=True, eq=False)
class ReweightedBlocks:
    """Where each observation's products land in the blocks of ``[Z X y]' W [Z X y]``.

    Built once per model (its pattern on first use); :meth:`blocks` then gives the
    :class:`~mixedmodels.linalg.blocked.BlockedCrossProducts` for any weights
    ``w`` and dense columns ``xy`` (``[X z]`` or just ``[z]``) without
    rebuilding a model matrix: the random-effects blocks are one sparse
    matrix-vector product ``S w`` (S holds, for every observation, where its
    products ``z_a z_b`` go), the products with the dense columns one
    sparse-times-dense product with ``Z'``.  ``A21``'s random-effects rows are dense
    (``m_re x q1 k1``) or, above 50,000 entries, the data of a CSR matrix
    whose pattern is fixed here.
    """

    layouts: tuple[TermLayout, ...]
    nobs: int
    terms: tuple  # the random-effects terms (``refs``, ``z``, ``nlevels``) in block order

    @classmethod
    def build(cls, terms: Sequence) -> "ReweightedBlocks":
        """From random-effects terms (``refs``, ``z``, ``nlevels``) in block order: the layouts now, the
        products' pattern on first use (:attr:`z`, :attr:`scatter`; a compiled one-term fit,
        :mod:`.one_term`, never needs it: ~0.4 ms of a cbpp fit)."""
        layouts = tuple(_layouts(terms))
        return cls(layouts, int(np.asarray(terms[0].refs).size), tuple(terms))

    @cached_property
    def _pattern(self) -> "_Pattern":
        return _Pattern.build(self.terms, self.layouts)

    @property
    def z(self) -> sp.csr_array:
        """n x q, all terms (columns scaled), level-major within each term."""
        return self._pattern.z

    @property
    def zt(self) -> sp.csr_array:
        return self._pattern.zt

    @property
    def scatter(self) -> sp.csr_array:
        """(A11 + A21 + A22 buffer entries) x n: the buffers are ``scatter @ w``."""
        return self._pattern.scatter

    @property
    def sizes(self) -> tuple[int, int, int]:
        """Lengths of the A11, A21 (random-effects rows) and A22 (random-effects part) buffers."""
        return self._pattern.sizes

    @property
    def a21_pattern(self) -> tuple[np.ndarray, np.ndarray] | None:
        """CSR (indices, indptr) of A21's random-effects rows, when sparse."""
        return self._pattern.a21_pattern

    @property
    def first(self) -> TermLayout:
        return self.layouts[0]

    @property
    def nre_rest(self) -> int:
        return sum(lay.size for lay in self.layouts[1:])

    def blocks(self, w: np.ndarray, xy: np.ndarray) -> BlockedCrossProducts:
        """The blocks of ``[Z xy]' diag(w) [Z xy]`` (``xy``'s last column plays y's part)."""
        wxy = xy * w[:, None]
        return self.assemble(w, self.zt @ wxy, xy.T @ wxy)

    def assemble(self, w: np.ndarray, ztwxy: np.ndarray, gram: np.ndarray) -> BlockedCrossProducts:
        """The blocks, given ``Z' W xy`` (q x c) and ``xy' W xy`` (c x c) computed by the caller."""
        q1k1, m_re = self.first.size, self.nre_rest
        k1 = self.first.ncols
        buf = self._scatter_blocks(w)
        c = gram.shape[0]
        m = m_re + c
        a22 = np.empty((m, m))
        a22[m_re:, m_re:] = gram
        # The working response's own diagonal only yields the penalized residual sum of squares,
        # which PIRLS never uses; it is 0 at a perfect fit, where it would fail the Cholesky.
        a22[-1, -1] += 1.0
        if m_re:
            a22[:m_re, :m_re] = buf[2].reshape(m_re, m_re)
            a22[:m_re, m_re:] = ztwxy[q1k1:]
            a22[m_re:, :m_re] = ztwxy[q1k1:].T
        a21 = self._a21(buf[1], ztwxy[:q1k1], m_re, c)
        return BlockedCrossProducts(
            terms=self.layouts,
            a11=buf[0].reshape(self.first.nlevels, k1, k1),
            a21=a21,
            a22=a22,
            nfixef=c - 1,
            nobs=self.nobs,
        )

    def _scatter_blocks(self, w: np.ndarray) -> list[np.ndarray]:
        """The random-effects parts of A11, A21 and A22 for weights w (flat buffers)."""
        buf = self.scatter @ w
        a, b, _ = self.sizes
        return [buf[:a], buf[a : a + b], buf[a + b :]]

    def _a21(self, re_part: np.ndarray, first_xy: np.ndarray, m_re: int, c: int) -> np.ndarray | sp.csr_array:
        q1k1 = self.first.size
        if self.a21_pattern is None:
            a21 = np.empty((m_re + c, q1k1))
            a21[:m_re] = re_part.reshape(m_re, q1k1)
            a21[m_re:] = first_xy.T
            return a21
        indices, indptr = self.a21_pattern
        data = np.concatenate([re_part, first_xy.T.ravel()])
        full_indices = np.concatenate([indices, np.tile(np.arange(q1k1, dtype=np.int32), c)])
        full_indptr = np.concatenate([indptr, indptr[-1] + q1k1 * np.arange(1, c + 1)])
        return sp.csr_array((data, full_indices, full_indptr), shape=(m_re + c, q1k1))


@dataclass(frozen=True, eq=False)
class PirlsResult:
    """The converged state of one PIRLS run.

    Attributes
    ----------
    u : ndarray
        Spherical random effects, stacked as the columns of Z.
    beta : ndarray
        Fixed effects (updated only by :meth:`Pirls.joint`).
    eta, mu : ndarray
        Linear predictor and mean at the modes.
    dev : float
        Sum of the squared deviance residuals.
    factor : Factorization
        Blocked Cholesky factor with the working weights at the modes.
    iterations : int
    converged : bool
    """

    u: np.ndarray
    beta: np.ndarray
    eta: np.ndarray
    mu: np.ndarray
    dev: float
    factor: Factorization
    iterations: int
    converged: bool
    theta: np.ndarray | None = None  # the covariance parameters the modes are for

    @property
    def ussq(self) -> float:
        return float(self.u @ self.u)

    @property
    def pdev(self) -> float:
        return self.dev + self.ussq


def _scalar_system(
    refs: list[np.ndarray], zs: list[np.ndarray], nlevels: list[int], x: np.ndarray, zt: sp.csr_array
) -> ScalarSystem | SparseScalarSystem:
    """The compiled sparse LDL' system where it is worth it (numba installed, a large dense rest
    block, little fill), else numpy's.  Both give the same numbers to rounding.

    The dense system's cost per iteration is the rank update ``q1 m^2`` and the Cholesky
    ``m^3 / 3`` of the rest block, in BLAS and LAPACK, plus ~20 us of numpy calls.  Below
    ``_COMPILE_FROM`` of those flops it stays: a fit then spends little in PIRLS's linear
    algebra, and importing numba and loading the kernels (~0.3 s and ~90 MB, once per
    process) would cost a one-off fit more than it saves (cbpp: 34 ms first fit, ~16 ms after).
    LDL's loops do about one multiply-add per ns, ~8x fewer than BLAS, so the sparse system
    needs ``8 x`` fewer flops.  (VerbAgg: ~0.19 M LDL flops against 0.18 M dense, so dense;
    grouseticks: 1,700 against 13 M.)
    """
    dense = ScalarSystem(refs, zs, nlevels, x, zt)
    dense_flops = dense.q1 * dense.m_re**2 + dense.m_re**3 / 3
    if dense_flops < _COMPILE_FROM:
        return dense
    kernels = {name: _pirls_kernels.compiled(name) for name in _SPARSE_KERNELS}
    if any(k is None for k in kernels.values()):
        return dense
    budget = (dense_flops + _NUMPY_OVERHEAD) / _SPARSE_SLOWDOWN
    fill = np.bincount(dense.e21.cols, minlength=dense.q1).astype(float)  # first term's columns of L
    if fill @ fill > budget:
        return dense
    sparse = SparseScalarSystem(refs, zs, nlevels, np.ascontiguousarray(x, dtype=float), kernels)
    return sparse if sparse.ldl_flops() <= budget else dense


_SPARSE_KERNELS = tuple(name for name in _pirls_kernels.__all__ if name != "compiled")  # every kernel
_SPARSE_SLOWDOWN = 8.0  # flops of LDL's indexed loops per flop of BLAS, in time
_NUMPY_OVERHEAD = 20_000.0  # the dense system's fixed cost per iteration, in flops
_COMPILE_FROM = 1e6  # dense flops per iteration from which compiling is worth numba's import


class Pirls:
    """PIRLS iterations for one model: response, X, offset and the blocks plan.

    Steps are Newton steps: for canonical links the PIRLS (Fisher scoring)
    weights are the observed information; for other links the iterations
    take lme4's Fisher-scoring steps until the steps are small, then use the
    observed information where it is positive, which turns the linear
    convergence of the last steps into quadratic convergence.  The factor returned (whose
    ``log det`` enters the Laplace approximation) always uses lme4's expected
    weights at the final modes.

    Parameters
    ----------
    response : GlmResponse
    x : ndarray (n, p)
    offset : ndarray (n,)
    plan : ReweightedBlocks
    tol : float
        Convergence when the largest change of u (and beta) in a step is below ``tol``.
    maxit : int
    """

    def __init__(
        self,
        response,
        x: np.ndarray,
        offset: np.ndarray,
        plan: ReweightedBlocks,
        tol: float = 1e-10,
        maxit: int = 200,
        terms: Sequence | None = None,
    ):
        self.response = response
        self.link = response.family.link
        self.family = response.family
        self.x = x
        self.offset = offset
        self.plan = plan
        self.tol = tol
        self.maxit = maxit
        self._scalar = all(lay.ncols == 1 for lay in plan.layouts)
        self._term_of_column = np.repeat(np.arange(len(plan.layouts)), [lay.size for lay in plan.layouts])
        self._x_products: tuple[np.ndarray, sp.csr_array] | None = None
        self._theta_starts = np.array([lay.theta_start for lay in plan.layouts], dtype=np.intp)
        self._scales = np.array([lay.scales[0] for lay in plan.layouts]) if self._scalar else None
        # all-scalar terms: the PIRLS step's own linear algebra (see pirls_scalar); else the blocked factor
        self._system = None
        if self._scalar and terms is not None:
            zs = [np.asarray(t.z, dtype=float)[:, 0] / lay.scales[0] for t, lay in zip(terms, plan.layouts)]
            self._system = _scalar_system(
                [np.asarray(t.refs) for t in terms], zs, [lay.nlevels for lay in plan.layouts], x, plan.zt
            )
        compiled = isinstance(self._system, SparseScalarSystem) or (
            isinstance(self._system, ScalarSystem) and self._system.compiled
        )
        self._re_predictor = self._system.linear_predictor if compiled else self._dense_or_sparse_predictor()

    def _dense_or_sparse_predictor(self) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """``(base, Lambda u) -> base + Z Lambda u``, Z dense when small (:func:`.pirls_scalar.small_dense`)."""
        z = small_dense(self.plan.z)
        return lambda base, lam_u: base + z @ lam_u

    def with_response(self, response) -> "Pirls":
        """The same iterations for another response of the same rows (a family with another parameter,
        e.g. the negative binomial's theta); everything precomputed from X, Z and the offset is shared."""
        other = copy.copy(self)
        other.response, other.family, other.link = response, response.family, response.family.link
        return other

    def _fixed_products(self) -> tuple[np.ndarray, sp.csr_array]:
        """Per-observation products ``x_i x_i'`` (n x p^2) and the matrix giving ``Z' W X`` from w.

        The scalar system's own (:meth:`.pirls_scalar.ScalarSystem.joint_gathers`: the same
        matrices, entry for entry and in the same order) where PIRLS has one, else built here.
        """
        if self._x_products is None and isinstance(self._system, ScalarSystem):
            self._x_products = self._system.joint_gathers()
        if self._x_products is None:
            x, z = self.x, self.plan.z.tocoo()
            n, p = x.shape
            xx = (x[:, :, None] * x[:, None, :]).reshape(n, p * p)
            rows = (z.col[:, None] * p + np.arange(p)).ravel()
            cols = np.repeat(z.row, p)
            vals = (z.data[:, None] * x[z.row]).ravel()
            zx = sp.csr_array(sp.coo_array((vals, (rows, cols)), shape=(z.shape[1] * p, n)))
            self._x_products = (np.ascontiguousarray(xx.T), zx)
        return self._x_products

    def _joint_blocks(self, w: np.ndarray, zw: np.ndarray) -> BlockedCrossProducts:
        """Blocks of ``[Z X z]' W [Z X z]`` from the precomputed fixed-effects products."""
        p = self.x.shape[1]
        wz = w * zw
        ztwxy = np.empty((self.plan.zt.shape[0], p + 1))
        if isinstance(self._system, ScalarSystem) and self._system.compiled:  # the same sums, in one pass
            xx = self._system.x_products()
            _, ztwxy[:, p], ztwxy[:, :p] = self._system.weighted_sums(w, zw, True)
        else:
            xx, zx = self._fixed_products()
            ztwxy[:, :p] = (zx @ w).reshape(ztwxy.shape[0], p)  # (also without fixed effects)
            ztwxy[:, p] = self.plan.zt @ wz
        xwz = self.x.T @ wz
        gram = np.empty((p + 1, p + 1))
        gram[:p, :p] = (xx @ w).reshape(p, p)
        gram[:p, p] = gram[p, :p] = xwz
        gram[p, p] = zw @ wz
        return self.plan.assemble(w, ztwxy, gram)

    # --- pieces -------------------------------------------------------------------
    def lambda_op(self, theta: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """``u -> Lambda(theta) u`` in the units of the scaled columns of ``plan.z``."""
        if self._scalar:
            scale = self._scalar_lams(theta)[self._term_of_column]
            return lambda u: scale * u
        lams = [lay.scaled_lam(theta) for lay in self.plan.layouts]

        def apply(u: np.ndarray) -> np.ndarray:
            out, start = np.empty_like(u), 0
            for lay, lam in zip(self.plan.layouts, lams):
                block = u[start : start + lay.size]
                out[start : start + lay.size] = (block.reshape(-1, lay.ncols) @ lam.T).ravel()
                start += lay.size
            return out

        return apply

    def _scalar_lams(self, theta: np.ndarray) -> np.ndarray:
        """Each scalar term's lambda in the units of its scaled column."""
        return theta[self._theta_starts] * self._scales

    def lambda_u(self, u: np.ndarray, theta: np.ndarray) -> np.ndarray:
        return self.lambda_op(theta)(u)

    def _evaluate(self, eta: np.ndarray) -> tuple[np.ndarray, float]:
        """Mean and deviance at eta (deviance inf where the mean is invalid)."""
        if not self.link.valid_eta(eta):
            return eta, np.inf
        mu = self.link.inverse(eta)
        if not self.response.always_valid and not self.family.valid_mu(mu):
            return mu, np.inf
        dev = self.response.deviance(mu)
        return mu, dev if math.isfinite(dev) else np.inf

    @staticmethod
    def _stack(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([p.ravel() for p in parts]) if parts else np.empty(0)

    # --- iterations -----------------------------------------------------------------
    def modes(self, theta: np.ndarray, beta: np.ndarray, u0: np.ndarray, tol: float | None = None) -> PirlsResult:
        """Conditional modes u for fixed theta and beta (nAGQ >= 1), starting from u0 (``tol`` as in
        :meth:`joint`: a caller that needs only the modes, not the factor at them)."""
        fixed = self.x @ beta + self.offset
        return self._iterate(theta, fixed, beta, u0, joint=False, tol=tol)

    def joint(
        self,
        theta: np.ndarray,
        beta0: np.ndarray | None,
        u0: np.ndarray | None,
        eta0: np.ndarray | None = None,
        tol: float | None = None,
    ) -> PirlsResult:
        """Modes u and fixed effects beta together (nAGQ = 0).

        Starts from ``(beta0, u0)``, or, when those are None or give an
        invalid mean, from the linear predictor ``eta0`` (R's ``etastart``).
        A ``tol`` looser than the model's ends the iterations at a step that
        small and keeps the factor from before it (for a canonical link): the
        criterion is then off by about ``tol`` times the number of random
        effects, enough for a search that only gives the next stage its start.
        """
        return self._iterate(theta, self.offset, beta0, u0, joint=True, eta0=eta0, tol=tol)

    def _eta(self, base: np.ndarray, lam, u: np.ndarray, beta: np.ndarray | None, joint: bool) -> np.ndarray:
        eta = self._re_predictor(base, lam(u))
        return eta + self.x @ beta if joint else eta

    def _step_system(self, theta: np.ndarray):
        """The factorization for one theta: ``(w, zw, joint) -> factor`` with ``ok`` and ``solve()``."""
        if self._system is not None:
            state = self._system.at(self._scalar_lams(theta))
            if isinstance(self._system, SparseScalarSystem):
                return lambda w, zw, joint, solve=True: self._system.factorize(state, w, zw, joint, solve)
            return lambda w, zw, joint, solve=True: self._system.factorize(state, w, zw, joint)

        def blocked(w, zw, joint, solve=True):
            return (self._joint_blocks(w, zw) if joint else self.plan.blocks(w, zw[:, None])).factorize(theta)

        return blocked

    def _solution(self, factor) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(factor, (ScalarFactor, SparseFactor)):
            return factor.solve()
        new_beta, new_u = factor.solve()
        return new_beta, self._stack(new_u)

    def _iterate(
        self, theta, base, beta, u, joint: bool, eta0: np.ndarray | None = None, tol: float | None = None
    ) -> PirlsResult:
        tol, reuse = (self.tol, _REUSE_FACTOR) if tol is None else (tol, tol)
        lam = self.lambda_op(theta)
        system = self._step_system(theta)
        newton = not self.family.canonical
        eta, mu, dev, u, beta = self._start(base, lam, u, beta, joint, eta0)
        pdev = np.inf if u is None else dev + u @ u
        # a warm start (modes from a nearby solution) is within Newton's reach: no Fisher steps first
        change = 0.0 if newton and u is not None and u.any() else np.inf
        converged, it = False, 0
        for it in range(1, self.maxit + 1):
            polish = newton and not converged and change < _NEWTON_FROM
            w, resid = self.response.working_weights(eta, mu, observed=polish)
            zw = (eta - base) + resid
            factor = system(w, zw, joint, solve=not converged)
            if converged or not factor.ok:
                break
            new_beta, new_u = self._solution(factor)
            if u is None:  # start from eta0: move towards the first solution until the mean is valid
                eta, mu, dev, u, beta, pdev = self._first_step(base, lam, eta, new_beta, new_u)
                continue
            du, dbeta = new_u - u, (new_beta - beta if joint else None)
            size = self._step_size(du, dbeta)
            if not newton and size < reuse:
                converged = True  # a step below rounding: u is the mode, and this factor is its own
                break
            u, beta, eta, mu, dev, pdev, change, step = self._halving(base, lam, u, beta, du, dbeta, size, pdev, joint)
            if change < tol:
                converged = True
                if not newton and change < reuse:  # this factor's weights are the modes' own
                    break
                # one more pass for the factor at the modes (with lme4's weights after Newton steps)
            elif step < 1e-10:
                break
        if u is None:
            u, beta = np.zeros(self.plan.z.shape[1]), np.zeros(self.x.shape[1])
        converged = converged and bool(np.isfinite(dev))
        return PirlsResult(
            u=u, beta=beta, eta=eta, mu=mu, dev=dev, factor=factor, iterations=it, converged=converged, theta=theta
        )

    def _start(self, base, lam, u, beta, joint, eta0):
        """The starting state: from (beta, u) if its mean is valid, else u = 0, else eta0 (joint only).

        A warm start from another theta can put the mean outside the family's
        range (e.g. a negative mean with the inverse link).
        """
        if joint and beta is None:
            u = None
        if u is not None:
            eta = self._eta(base, lam, u, beta, joint)
            mu, dev = self._evaluate(eta)
            if np.isfinite(dev):
                return eta, mu, dev, u, beta
            u = np.zeros_like(u)
            eta = self._eta(base, lam, u, beta, joint)
            mu, dev = self._evaluate(eta)
            if np.isfinite(dev) or not joint or eta0 is None:
                return eta, mu, dev, u, beta
        mu, dev = self._evaluate(eta0)
        return eta0, mu, dev, None, None

    def _first_step(self, base, lam, eta, new_beta, new_u):
        """From a linear predictor with no coefficients: accept the solution if valid, else move halfway."""
        target = self._eta(base, lam, new_u, new_beta, True)
        mu, dev = self._evaluate(target)
        if np.isfinite(dev):
            return target, mu, dev, new_u, new_beta, dev + new_u @ new_u
        step = 0.5
        while step > 1e-10:
            trial = eta + step * (target - eta)
            mu, dev = self._evaluate(trial)
            if np.isfinite(dev):
                return trial, mu, dev, None, None, np.inf
            step *= 0.5
        mu, dev = self._evaluate(eta)
        return eta, mu, dev, None, None, np.inf

    @staticmethod
    def _step_size(du: np.ndarray, dbeta: np.ndarray | None) -> float:
        """The largest absolute change (0 for empty steps)."""
        size = float(np.abs(du).max()) if du.size else 0.0
        return size if dbeta is None or not dbeta.size else max(size, float(np.abs(dbeta).max()))

    def _halving(self, base, lam, u, beta, du, dbeta, size, pdev, joint):
        """Step ``(du, dbeta)`` (largest change ``size``) towards the new solution, halving while the
        penalized deviance does not decrease."""
        step = 1.0
        while True:
            u_try = u + du if step == 1.0 else u + step * du  # (1.0 * du is du: the same numbers)
            beta_try = (beta + dbeta if step == 1.0 else beta + step * dbeta) if joint else beta
            eta_try = self._eta(base, lam, u_try, beta_try, joint)
            mu_try, dev_try = self._evaluate(eta_try)
            pdev_try = dev_try + float(u_try @ u_try)
            if math.isfinite(pdev_try) and pdev_try <= pdev + 1e-10 * (1.0 + abs(pdev)):
                break
            if step < 1e-10:
                if not math.isfinite(pdev_try):  # no valid point along the step: stay
                    return (
                        u,
                        beta,
                        self._eta(base, lam, u, beta, joint),
                        *self._evaluate_pair(base, lam, u, beta, joint),
                        pdev,
                        0.0,
                        0.0,
                    )
                break
            step *= 0.5
        change = step * size
        return u_try, beta_try, eta_try, mu_try, dev_try, pdev_try, change, step

    def _evaluate_pair(self, base, lam, u, beta, joint):
        return self._evaluate(self._eta(base, lam, u, beta, joint))

    def blocked_factor(self, theta: np.ndarray, res: PirlsResult) -> Factorization:
        """The blocked factor of the random-effects system at a PIRLS solution's (expected) weights.

        What the results need (conditional variances read its blocks); the
        iterations themselves may have used :class:`ScalarSystem`'s factor.
        """
        w, resid = self.response.working_weights(res.eta, res.mu)
        base = res.eta - self.plan.z @ self.lambda_u(res.u, theta)
        return self.plan.blocks(w, ((res.eta - base) + resid)[:, None]).factorize(theta)

    def observed_factor(self, theta: np.ndarray, res: PirlsResult) -> Factorization:
        """The factor of ``Lambda' Z' W Z Lambda + I`` with the observed information as ``W`` at the modes.

        Its log-determinant is the one of the Laplace approximation with the
        exact Hessian of the joint log-density in ``u`` (glmmTMB's); for a
        canonical link it equals the expected-information one.  No response
        column (the y row is zero), so only the random-effects part is used.
        """
        w = self.response.observed_weights(res.eta, res.mu)
        return self.plan.blocks(w, np.zeros((w.size, 1))).factorize(theta)

    def joint_factor(self, theta: np.ndarray, res: PirlsResult) -> Factorization:
        """The factor of the full system ``[Z X z]`` at a PIRLS solution's (expected) weights; gives R_X."""
        w, resid = self.response.working_weights(res.eta, res.mu)
        return self._joint_blocks(w, (res.eta - self.offset) + resid).factorize(theta)

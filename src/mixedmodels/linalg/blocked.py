"""Blocked cross-products of ``[Z X y]`` and their Cholesky factor for a given theta.

The penalized least-squares problem of a linear mixed model (Bates et al.
2015, sections 3.2-3.6) needs the Cholesky factor ``L`` of

    [ Lambda' Z'Z Lambda + I   Lambda' Z'X   Lambda' Z'y ]
    [ X'Z Lambda               X'X           X'y         ]
    [ y'Z Lambda               y'X           y'y         ]

Following MixedModels.jl, the cross-products ``A = [Z X y]'[Z X y]`` are built
once, in blocks, and every evaluation only rescales them by ``Lambda(theta)``
and refactors.  Nothing here touches arrays of length n after construction.

Block layout
------------
The random-effects terms are sorted by decreasing number of levels.  The first
("big") term's block of ``Z'Z`` is block diagonal (one ``k x k`` block per
level) and stays so in ``L``; everything after it -- the other terms' random
effects, then the columns of X, then y -- forms one dense "rest" block of size
``m``.  Writing ``W = Lambda_1 (Lambda_1' A11 Lambda_1 + I)^-1 Lambda_1'``:

    L11 L11' = Lambda_1' A11 Lambda_1 + I            (per level, k x k)
    L22 L22' = D' (A22 - A21 W A21') D + I_re        (dense, m x m)

where ``D`` applies the other terms' ``Lambda`` to their rows and leaves the
X and y rows alone, and ``I_re`` adds 1 on the other terms' diagonal only.
The objective is read off the diagonals of ``L11`` and ``L22``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import Callable

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack, solve_triangular

from ..design.covariance import UNSTRUCTURED, CovarianceStructure
from . import small
from .rank_update import ScalarRankUpdate, VectorRankUpdate
from .reordered_rest import ReorderedRest
from .modes import spherical_modes
from .sparse_rest import SparseFactorization, SparseRest, sparse_gram, use_sparse_rest

__all__ = ["TermLayout", "BlockedCrossProducts", "Factorization", "term_layouts"]

# Below this many entries the first-to-rest cross-product is stored dense.
_DENSE_LIMIT = 50_000
# Systems with at most this many rows (random effects, X and y; the dense system's size) and
# data of at most this many entries of [Z X y] are built from one dense product.
_SMALL_SYSTEM = 64
_SMALL_SYSTEM_ENTRIES = 2_000_000
# From this many non-zeros in A21, a big term with k > 1 columns gets the
# compiled rank update: below it, importing numba and loading the kernel
# (~0.4 s per process; ~1 s to compile it the first time) costs a fit more
# than the kernel saves (crossed_100k, 200k non-zeros: 22 -> 3 ms per evaluation).
_COMPILED_UPDATE_MIN_NNZ = 50_000
# From this many levels, a 2-column big term's per-level factors and solves use
# the closed forms of .small (LAPACK's arithmetic; 7x faster at 10,000 levels, but slower
# than np.linalg's batched calls on a handful of levels).
_CLOSED_FORM_MIN_LEVELS = 64


@dataclass(frozen=True, eq=False)
class TermLayout:
    """Where a random-effects term sits: its levels, columns and theta slice, and its structure.

    ``scales`` (one per column, or None for 1) is how much the term's columns
    were divided by before the cross-products were formed, so that every
    column has unit root-mean-square.  Dividing ``z_j`` by ``s_j`` and
    multiplying row j of ``lambda`` by ``s_j`` leaves the model unchanged, and
    keeps theta on a scale where the optimizer's steps make sense whatever
    the units of the predictors (x * 1e-6 gives the same fit).  The
    ``structure`` (:mod:`mixedmodels.design.covariance`) makes ``lambda`` from
    theta and says how theta changes with the scales.
    """

    nlevels: int
    ncols: int
    theta_start: int
    scales: np.ndarray | None = None
    structure: CovarianceStructure = UNSTRUCTURED
    # derived once here: a fit read them some twenty times (each a property call)
    size: int = field(init=False, repr=False)
    theta_stop: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", self.nlevels * self.ncols)
        object.__setattr__(self, "theta_stop", self.theta_start + self.structure.ntheta(self.ncols))

    def lam(self, theta: np.ndarray) -> np.ndarray:
        """This term's ``k x k`` relative covariance factor."""
        return self.structure.lam(theta[self.theta_start : self.theta_stop], self.ncols)

    def dlam(self, theta: np.ndarray) -> np.ndarray:
        """``d lam / d theta_i`` for this term's theta elements, shape ``(ntheta, k, k)`` (see ``structure.has_derivative``)."""
        return self.structure.dlam(theta[self.theta_start : self.theta_stop], self.ncols)

    def scaled_lam(self, theta: np.ndarray) -> np.ndarray:
        """The factor that goes with the scaled columns: ``diag(scales) @ lam``."""
        lam = self.lam(theta)
        return lam if self.scales is None else lam * self.scales[:, None]

    def scale_theta(self, theta: np.ndarray, inverse: bool = False) -> np.ndarray:
        """This term's theta slice in scaled units (or back, with ``inverse``)."""
        part = theta[self.theta_start : self.theta_stop]
        if self.scales is None:
            return part.copy()
        factors = self.structure.scale_factors(self.scales)
        return part / factors if inverse else part * factors


@dataclass(frozen=True, eq=False)
class ThetaVectors:
    """Per theta element of a set of terms (read-only arrays, made once per blocks): what every fit reads.

    Each was a concatenation of per-term pieces on every read (some fifty
    Python calls a sleepstudy fit).

    Attributes
    ----------
    lower, upper : ndarray
        Each structure's bounds (``upper`` is ``inf`` but for correlations of ``cs`` and ``ar1`` terms).
    upper_or_none : ndarray or None
        ``upper``, or None when no element has an upper bound (what the optimizers take).
    start : ndarray
        lme4's start (each structure's ``initial``).
    scale : ndarray
        Theta in the scaled columns' units is theta times this (each structure's ``scale_factors``
        of its term's ``scales``; 1 for a term without).
    """

    lower: np.ndarray
    upper: np.ndarray
    upper_or_none: np.ndarray | None
    start: np.ndarray
    scale: np.ndarray

    @classmethod
    def of(cls, terms: tuple[TermLayout, ...]) -> "ThetaVectors":
        lowers, uppers, starts, scales = [], [], [], []
        for t in terms:
            lower, upper, start = _structure_vectors(t.structure, t.ncols)
            lowers.append(lower)
            uppers.append(upper)
            starts.append(start)
            scales.append(np.ones(lower.size) if t.scales is None else t.structure.scale_factors(t.scales))
        vectors = [np.concatenate(parts) for parts in (lowers, uppers, starts, scales)]
        for vector in vectors:
            vector.flags.writeable = False
        lower, upper, start, scale = vectors
        bounded = not np.logical_and.reduce(np.isinf(upper))  # np.all's reduction, without its wrapper
        return cls(lower, upper, upper if bounded else None, start, scale)


def _structure_vectors(structure: CovarianceStructure, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A structure's ``lower``, ``upper`` and ``initial`` for ``k`` columns: fixed for the pair, so looked up
    (:func:`_cached_structure_vectors`) where the structure is hashable (the package's frozen ones are)."""
    try:
        return _cached_structure_vectors(structure, k)
    except TypeError:  # a structure that cannot be a key
        return structure.lower(k), structure.upper(k), structure.initial(k)


@lru_cache(maxsize=64)
def _cached_structure_vectors(structure: CovarianceStructure, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    vectors = (structure.lower(k), structure.upper(k), structure.initial(k))
    for vector in vectors:
        vector.flags.writeable = False
    return vectors


def _term_matrix(refs: np.ndarray, z: np.ndarray, nlevels: int) -> sp.csc_array:
    """The sparse ``n x (nlevels * k)`` model matrix of one term."""
    n, k = z.shape
    cols = (refs[:, None] * k + np.arange(k)).ravel()
    rows = np.repeat(np.arange(n), k)
    return sp.csc_array((z.ravel(), (rows, cols)), shape=(n, nlevels * k))


def _diagonal_blocks(refs: np.ndarray, z: np.ndarray, nlevels: int) -> np.ndarray:
    """Per-level ``z'z`` blocks of a term, shape ``(nlevels, k, k)``."""
    k = z.shape[1]
    blocks = np.empty((nlevels, k, k))
    for a in range(k):
        for b in range(a + 1):
            blocks[:, a, b] = blocks[:, b, a] = np.bincount(refs, weights=z[:, a] * z[:, b], minlength=nlevels)
    return blocks


@dataclass(frozen=True, eq=False)
class BlockedCrossProducts:
    """The blocks of ``A = [Z X y]' [Z X y]`` (rows already scaled by sqrt(weights)).

    Attributes
    ----------
    terms : tuple of TermLayout
        First the big term, then the others in the order of the rest block.
    a11 : ndarray (q1, k1, k1)
        Per-level blocks of ``Z1' Z1``.
    a21 : ndarray or scipy sparse CSR, shape (m, q1 * k1)
        ``[Z_rest X y]' Z1``.
    a22 : ndarray (m, m), or scipy sparse CSC when the dense one would not fit
        ``[Z_rest X y]' [Z_rest X y]``; sparse only on the sparse rest path
        (:mod:`.sparse_rest`, see :attr:`sparse_rest`).
    nfixef : int
        Number of columns of X.
    nobs : int
        Number of observations.
    plan_rank_update : bool
        Precompute the rank update's pieces (see :mod:`.rank_update`) on
        first use.  Worth it when the blocks are factored many times;
        PIRLS, which rebuilds them at every step, leaves it off.
    """

    terms: tuple[TermLayout, ...]
    a11: np.ndarray
    a21: np.ndarray | sp.csr_array
    a22: np.ndarray
    nfixef: int
    nobs: int
    plan_rank_update: bool = False

    @cached_property
    def sparse_rest(self) -> SparseRest | None:
        """The sparse rest block's factorization (:mod:`.sparse_rest`) when ``a22`` is held sparsely, else None."""
        return SparseRest(self.nre_rest) if sp.issparse(self.a22) else None

    @classmethod
    def build(
        cls,
        refs: list[np.ndarray],
        zs: list[np.ndarray],
        nlevels: list[int],
        xy: np.ndarray,
        structures: list[CovarianceStructure] | None = None,
        layouts: tuple[TermLayout, ...] | None = None,
        allow_sparse: bool = True,
    ) -> "BlockedCrossProducts":
        """Build the blocks from per-term level indices and columns, and ``[X y]``.

        The terms must already be in block order (largest first).  Each
        term's columns are divided by their root-mean-square (as its
        ``structure`` wants them: one common scale for ``ar1``), unless
        ``layouts`` are given: then their scales are used, so that blocks of
        several row subsets add up (:mod:`.weighted_blocks`).  A rest block
        too large to hold densely is held sparsely (:mod:`.sparse_rest`)
        unless ``allow_sparse`` is False (blocks that are added up).
        """
        if layouts is None:
            layouts = term_layouts(zs, nlevels, structures)
        zs = [z / lay.scales for z, lay in zip(zs, layouts)]
        size = sum(t.size for t in layouts) + xy.shape[1]
        small = size <= _SMALL_SYSTEM and xy.shape[0] * size <= _SMALL_SYSTEM_ENTRIES
        if small and (size - layouts[0].size) * layouts[0].size <= _DENSE_LIMIT:  # A21 would be held dense anyway
            return cls._build_dense(tuple(layouts), refs, zs, xy, size - xy.shape[1])
        z1 = _term_matrix(refs[0], zs[0], nlevels[0])
        rest_re = [_term_matrix(r, z, q) for r, z, q in zip(refs[1:], zs[1:], nlevels[1:])]
        rest = sp.hstack(rest_re + [sp.csc_array(xy)], format="csc") if rest_re else sp.csc_array(xy)
        a21 = sp.csr_array((rest.T @ z1))
        if a21.shape[0] * a21.shape[1] <= _DENSE_LIMIT:
            a21 = a21.toarray()
        hold_sparse = allow_sparse and bool(rest_re) and use_sparse_rest(rest.shape[1])  # the dense block would not fit
        a22 = sparse_gram(rest_re, xy) if hold_sparse else _dense_gram(rest_re, xy)
        a11 = _diagonal_blocks(refs[0], zs[0], nlevels[0])
        return cls(tuple(layouts), a11, a21, a22, xy.shape[1] - 1, xy.shape[0], plan_rank_update=True)

    @classmethod
    def _build_dense(
        cls, layouts: tuple, refs: list[np.ndarray], zs: list[np.ndarray], xy: np.ndarray, q: int
    ) -> "BlockedCrossProducts":
        """The blocks of a small system from one dense ``[Z X y]`` (one product; no sparse matrices built);
        ``q`` random effects in all."""
        n = xy.shape[0]
        full = np.zeros((n, q + xy.shape[1]))
        offset = 0
        for layout, r, z in zip(layouts, refs, zs):
            columns = offset + r[:, None] * layout.ncols + np.arange(layout.ncols)
            full[np.arange(n)[:, None], columns] = z
            offset += layout.size
        full[:, q:] = xy
        gram = full.T @ full
        q1, k1 = layouts[0].size, layouts[0].ncols
        starts = np.arange(0, q1, k1)[:, None, None]  # the first term's diagonal blocks, in one fancy index
        block = (starts + np.arange(k1)[:, None], starts + np.arange(k1))
        a11, a21 = gram[block], np.ascontiguousarray(gram[q1:, :q1])
        cp = cls(layouts, a11, a21, np.ascontiguousarray(gram[q1:, q1:]), xy.shape[1] - 1, n, True)
        # The product is already the dense A of dense_system (dense_crossproducts' matrix, the same
        # entries): the first term's off-diagonal blocks exact zeros, the upper right A21'.
        gram[:q1, :q1] = 0.0
        gram[block] = a11
        gram[:q1, q1:] = a21.T
        cp.__dict__["_dense_matrix"] = gram
        return cp

    @classmethod
    def from_sums(
        cls,
        nlevels: list[int],
        ncols: list[int],
        a11: np.ndarray,
        a21: np.ndarray | sp.sparray,
        a22: np.ndarray,
        nfixef: int,
        nobs: int,
        scales: list[np.ndarray] | None = None,
        plan_rank_update: bool = True,
        structures: list[CovarianceStructure] | None = None,
        prescaled: bool = False,
    ) -> "BlockedCrossProducts":
        """The blocks from products of the columns as they are, summed over parts of the rows.

        What :meth:`build` makes, for sums formed elsewhere (e.g. per
        partition of a dask DataFrame): ``a11`` (q1, k1, k1), ``a21``
        (m, q1 k1, dense or sparse) and ``a22`` (m, m) hold the products of the
        terms' columns without the unit-RMS scaling (rows already multiplied
        by sqrt(weights)).  The scales are read off the diagonals (the sum of
        ``z_j^2`` over the rows is the sum over levels of the diagonal entry),
        made into each term's ``structure``'s scales as :func:`term_layouts`
        makes them (one common scale for ``ar1``), and applied here;
        :meth:`build` applies them before the products, which changes only
        rounding.  ``scales`` (one array per term) uses given scales instead
        (as PIRLS does: those of the unweighted columns); ``structures`` (one
        per term, default unstructured) as in :meth:`build`;
        ``plan_rank_update`` as the attribute.  ``prescaled``: the sums are
        of the columns already divided by the given ``scales`` (PIRLS on
        Dask divides them once, in the persisted partitions), so the blocks
        are used as they are.
        """
        if prescaled and scales is None:
            raise ValueError("prescaled sums need the scales they were divided by")
        structures = list(structures) if structures is not None else [UNSTRUCTURED] * len(nlevels)
        layouts, start = [], 0
        for q, k, structure in zip(nlevels, ncols, structures, strict=True):
            layouts.append(TermLayout(q, k, start, structure=structure))
            start = layouts[-1].theta_stop
        first, rest = layouts[0], layouts[1:]

        def term_scales(i: int, squares: np.ndarray) -> np.ndarray:
            if scales is not None:
                return np.asarray(scales[i], dtype=float)
            return layouts[i].structure.column_scales(_scales_from_squares(squares, nobs))

        s1 = term_scales(0, np.einsum("qjj->j", a11))
        diagonal, offset, rest_scales = np.diagonal(a22), 0, []
        for i, lay in enumerate(rest, start=1):
            rest_scales.append(
                term_scales(i, diagonal[offset : offset + lay.size].reshape(lay.nlevels, lay.ncols).sum(axis=0))
            )
            offset += lay.size
        layouts = [replace(first, scales=s1)] + [replace(lay, scales=s) for lay, s in zip(rest, rest_scales)]
        if prescaled:
            return cls(tuple(layouts), a11, a21, a22, int(nfixef), int(nobs), plan_rank_update=plan_rank_update)
        row_scale = np.ones(a22.shape[0])
        row_scale[:offset] = (
            np.concatenate([np.tile(s, lay.nlevels) for lay, s in zip(rest, rest_scales)]) if rest else []
        )
        column_scale = np.tile(s1, first.nlevels)
        a11 = a11 / (s1[:, None] * s1[None, :])
        a22 = a22 / np.outer(row_scale, row_scale)
        if isinstance(a21, np.ndarray):
            a21 = a21 / np.outer(row_scale, column_scale)
        else:
            a21 = _scaled_csr(sp.csr_array(a21), 1.0 / row_scale, 1.0 / column_scale)
            if a21.shape[0] * a21.shape[1] <= _DENSE_LIMIT:
                a21 = a21.toarray()
        return cls(tuple(layouts), a11, a21, a22, int(nfixef), int(nobs), plan_rank_update=plan_rank_update)

    @cached_property
    def rank_update_plan(self) -> ScalarRankUpdate | VectorRankUpdate | None:
        """Precomputed pieces of ``A21 W A21'`` when ``A21`` is sparse (else None).

        A scalar big term always gets one; a term with k > 1 columns gets the
        compiled per-level update when ``A21`` is large enough and numba is
        installed.  Derived from ``a21`` and ``a11`` on first use, so a copy
        with other blocks (``dataclasses.replace``) derives its own.
        """
        if not self.plan_rank_update or isinstance(self.a21, np.ndarray):
            return None
        if self.first.ncols == 1:
            if self.reordered_rest is not None:  # numba is loaded: the level-by-level kernel, no grouped build
                return VectorRankUpdate.build(self.a21, 1)
            return ScalarRankUpdate.build(self.a21, self.a11[:, 0, 0])
        if self.a21.nnz < _COMPILED_UPDATE_MIN_NNZ:
            return None
        return VectorRankUpdate.build(self.a21, self.first.ncols)

    @cached_property
    def reordered_rest(self) -> ReorderedRest | None:
        """The rest block in a fill-reducing order for a supernodal factorization, where that pays (else None).

        Only for a scalar big term with scalar rest terms; see :mod:`.reordered_rest`.
        """
        if not self.plan_rank_update or isinstance(self.a21, np.ndarray) or self.first.ncols > 1:
            return None
        if self.sparse_rest is not None:
            return None
        if any(t.ncols > 1 for t in self.rest_terms):
            return None
        return ReorderedRest.build(self.a21, self.a22, [t.size for t in self.rest_terms])

    @cached_property
    def dense_system(self):
        """The whole system as one dense matrix when it is small (:mod:`.dense_system`), else None."""
        from .dense_system import DenseSystem

        # A's matrix when it is made already (build's product, or dense_system_from's): let go of it here
        return DenseSystem.build(self, self.__dict__.pop("_dense_matrix", None))

    def dense_system_from(self, dense_matrix: Callable[[], np.ndarray]):
        """:attr:`dense_system`, made (if not made already) with ``dense_matrix()`` as its matrix: the caller's
        own ``dense_crossproducts(self)``, formed otherwise (a residual structure's dense pieces at its
        parameters), instead of from the blocks once more."""
        if "dense_system" not in self.__dict__:
            self.__dict__["_dense_matrix"] = dense_matrix()
        return self.dense_system

    def without_rows(
        self, refs: list[np.ndarray], zs: list[np.ndarray], xy: np.ndarray, nrows: int
    ) -> "BlockedCrossProducts":
        """These blocks less the cross-products of some of their rows: the blocks of the data without them.

        The rows are given as :meth:`build` takes them (levels and columns per
        term in block order, ``[X y]``, all already multiplied by sqrt(weights));
        ``nrows`` is how many of them had non-zero weight (``nobs`` drops by that).
        The layouts (and their column scales) are kept, so theta means the same.
        Deleting rows costs their own number, not a new pass over the data.
        """
        removed = _blocks_of(self.terms, refs, zs, xy)
        a21 = self.a21 - removed.a21
        if isinstance(self.a21, np.ndarray):
            a21 = np.asarray(a21)
        else:
            a21 = sp.csr_array(a21)
        return replace(
            self, a11=self.a11 - removed.a11, a21=a21, a22=self.a22 - removed.a22, nobs=self.nobs - int(nrows)
        )

    def with_response(self, a21: np.ndarray | sp.csr_array, a22: np.ndarray) -> "BlockedCrossProducts":
        """A copy whose blocks differ only in the y row (another response, as in a parametric bootstrap).

        The reordered structure's analysis and the dense system carry over
        (the y row is dense in them anyway); everything derived from the
        values is derived anew.
        """
        copy = replace(self, a21=a21, a22=a22)
        analysed = self.__dict__.get("reordered_rest")
        if analysed is not None:
            copy.__dict__["reordered_rest"] = analysed.with_blocks(a21, a22)
        dense = self.__dict__.get("dense_system")
        if dense is not None:
            copy.__dict__["dense_system"] = dense.with_response(copy)
        return copy

    @property
    def first(self) -> TermLayout:
        return self.terms[0]

    @property
    def rest_terms(self) -> tuple[TermLayout, ...]:
        return self.terms[1:]

    @cached_property
    def unstructured(self) -> bool:
        """Whether every term is unstructured (theta is the lower triangle of each lambda).

        The batched refits (:mod:`.blocked_batch`) and Newton's exact Hessian
        (:mod:`.dense_system`) assume it; the gradient (:mod:`.gradient`,
        :mod:`.dense_system`) takes other structures through their ``d lambda / d theta``.
        """
        return all(t.structure.is_default() for t in self.terms)

    @cached_property
    def theta_vectors(self) -> ThetaVectors:
        """Theta's bounds, lme4's start and the scaling to the scaled columns' units, made once (read-only)."""
        return ThetaVectors.of(self.terms)

    @cached_property
    def nre_rest(self) -> int:
        """Number of random effects in the rest block."""
        return sum(t.size for t in self.rest_terms)

    @property
    def ntheta(self) -> int:
        return self.terms[-1].theta_stop

    def to_scaled_theta(self, theta: np.ndarray) -> np.ndarray:
        """Theta in the units of the scaled columns (what the optimizer works on): each term's
        :meth:`TermLayout.scale_theta`, in one product (times 1 for a term without scales)."""
        return np.asarray(theta, dtype=float) * self.theta_vectors.scale

    def from_scaled_theta(self, scaled: np.ndarray) -> np.ndarray:
        """Theta in the units of the data from its scaled version."""
        return np.asarray(scaled, dtype=float) / self.theta_vectors.scale

    def factorize(self, theta: np.ndarray) -> "Factorization":
        """Cholesky factor of the penalized system for this theta."""
        if self.sparse_rest is not None:
            return self._sparse_factor(np.asarray(theta, dtype=float))  # type: ignore[return-value]
        return Factorization.compute(self, np.asarray(theta, dtype=float))

    def _sparse_factor(self, theta: np.ndarray) -> SparseFactorization:
        """The factor with the rest block factored sparsely (:mod:`.sparse_rest`)."""
        assert self.sparse_rest is not None
        lam1 = self.first.scaled_lam(theta)
        l11 = _first_block_factor(self.a11, lam1)
        return self.sparse_rest.factorize(self, theta, l11, _first_block_weights(l11, lam1))

    def objective_factor(self, theta: np.ndarray) -> "Factorization":
        """The cheapest factor that gives the objective: reordered and supernodal where that pays.

        Its log-determinants, ``pwrss`` and :meth:`Factorization.solve` are
        those of :meth:`factorize`; its ``l22`` is in another order (see
        :attr:`Factorization.order`).
        """
        theta = np.asarray(theta, dtype=float)
        if self.sparse_rest is not None:
            return self._sparse_factor(theta)  # type: ignore[return-value]
        if self.reordered_rest is None:
            return Factorization.compute(self, theta)
        return Factorization.compute_reordered(self, theta)


@dataclass(frozen=True)
class _Blocks:
    a11: np.ndarray
    a21: np.ndarray | sp.csr_array
    a22: np.ndarray


def _blocks_of(
    layouts: tuple[TermLayout, ...], refs: list[np.ndarray], zs: list[np.ndarray], xy: np.ndarray
) -> _Blocks:
    """``A11``, ``A21`` and ``A22`` of some rows with the given layouts' levels and column scales."""
    scaled = [z / (lay.scales if lay.scales is not None else 1.0) for z, lay in zip(zs, layouts)]
    z1 = _term_matrix(refs[0], scaled[0], layouts[0].nlevels)
    rest_re = [_term_matrix(r, z, lay.nlevels) for r, z, lay in zip(refs[1:], scaled[1:], layouts[1:])]
    rest = sp.hstack(rest_re + [sp.csc_array(xy)], format="csc") if rest_re else sp.csc_array(xy)
    a21 = sp.csr_array(rest.T @ z1)
    return _Blocks(_diagonal_blocks(refs[0], scaled[0], layouts[0].nlevels), a21, _dense_gram(rest_re, xy))


def _scaled_csr(a: sp.csr_array, row_factor: np.ndarray, column_factor: np.ndarray) -> sp.csr_array:
    """``diag(row_factor) @ a @ diag(column_factor)`` with one new array of values (the pattern is shared).

    Each value is ``(a_ij r_i) c_j``, the products scipy's two sparse products
    form; the 40M non-zeros of a crossed design's A21 made two more copies
    of the matrix that way.
    """
    data = a.data.astype(float, copy=True)
    indptr, indices = a.indptr, a.indices
    for i in np.flatnonzero(np.diff(indptr)):  # row by row: no temporary the size of the values
        row = slice(indptr[i], indptr[i + 1])
        data[row] *= row_factor[i]
        data[row] *= column_factor[indices[row]]
    if not np.all(data):  # the products drop zeros; eliminating them rewrites the pattern, so on a copy of it
        out = sp.csr_array((data, a.indices.copy(), indptr.copy()), shape=a.shape)
        out.eliminate_zeros()
        return out
    return sp.csr_array((data, a.indices, indptr), shape=a.shape)


def _column_scales(z: np.ndarray) -> np.ndarray:
    """Root-mean-square of each column (1 for all-zero columns)."""
    # np.mean's own arithmetic (add.reduce, then divide by n) without its Python wrapper
    rms = np.sqrt(np.add.reduce(z * z, axis=0) / z.shape[0]) if z.shape[0] else np.ones(z.shape[1])
    return np.where(rms > 0, rms, 1.0)


def term_layouts(
    zs: list[np.ndarray], nlevels: list[int], structures: list[CovarianceStructure] | None = None
) -> tuple[TermLayout, ...]:
    """The layouts of terms in block order: theta slices, structures, and the columns' scales."""
    structures = structures or [UNSTRUCTURED] * len(zs)
    layouts, start = [], 0
    for z, q, structure in zip(zs, nlevels, structures):
        scales = structure.column_scales(_column_scales(z))
        layouts.append(TermLayout(q, z.shape[1], start, scales, structure))
        start = layouts[-1].theta_stop
    return tuple(layouts)


def _scales_from_squares(squares: np.ndarray, nobs: int) -> np.ndarray:
    """Root-mean-square of each column from its sum of squares (1 for all-zero columns), as :func:`_column_scales`."""
    rms = np.sqrt(np.asarray(squares, dtype=float) / nobs)
    return np.where(rms > 0, rms, 1.0)


def _dense_gram(rest_re: list[sp.csc_array], xy: np.ndarray) -> np.ndarray:
    """``[Z_rest X y]' [Z_rest X y]`` as a dense matrix, without densifying Z."""
    if not rest_re:
        return xy.T @ xy
    z = sp.hstack(rest_re, format="csc")
    zz = (z.T @ z).toarray()
    zxy = np.asarray(z.T @ xy)
    return np.block([[zz, zxy], [zxy.T, xy.T @ xy]])


def _scale_rest(mat: np.ndarray, terms: tuple[TermLayout, ...], theta: np.ndarray, side: str) -> None:
    """Apply each rest term's ``Lambda'`` to its rows (side="rows") or ``Lambda`` to its columns, in place."""
    offset = 0
    for term in terms:
        block = slice(offset, offset + term.size)
        lam = term.scaled_lam(theta)
        if side == "rows":
            if term.ncols == 1:
                mat[block, :] *= lam[0, 0]
            else:
                part = mat[block, :].reshape(term.nlevels, term.ncols, -1)
                mat[block, :] = np.einsum("ji,qjm->qim", lam, part).reshape(term.size, -1)
        else:
            if term.ncols == 1:
                mat[:, block] *= lam[0, 0]
            else:
                part = mat[:, block].reshape(-1, term.nlevels, term.ncols)
                mat[:, block] = np.einsum("mqj,ji->mqi", part, lam).reshape(-1, term.size)
        offset += term.size


def _symmetrize_from_lower(mat: np.ndarray) -> None:
    """Copy the strict lower triangle of a square matrix onto its upper triangle, in place."""
    upper = np.triu_indices(mat.shape[0], 1)
    mat[upper] = mat.T[upper]


def _first_block_factor(a11: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Per-level Cholesky factors of ``lam' A11_l lam + I``, shape ``(q, k, k)``."""
    k = lam.shape[0]
    if k == 1:
        return np.sqrt(a11[:, 0, 0] * lam[0, 0] ** 2 + 1.0)
    if k == 2 and a11.shape[0] >= _CLOSED_FORM_MIN_LEVELS:
        return small.first_block_factor_2x2(a11, lam)
    scaled = np.einsum("ji,qjl,lm->qim", lam, a11, lam) + np.eye(k)
    return np.linalg.cholesky(scaled)


def _first_block_roots(l11: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """``g_l = L11_l^-1 lam'`` per level, shape ``(q, k, k)``: ``W_l = g_l' g_l``."""
    if l11.ndim == 1:
        return (lam[0, 0] / l11).reshape(-1, 1, 1)
    if lam.shape[0] == 2 and l11.shape[0] >= _CLOSED_FORM_MIN_LEVELS:
        return small.first_block_roots_2x2(l11, lam)
    return np.linalg.solve(l11, np.broadcast_to(lam.T, l11.shape))


def _first_block_weights(l11: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """``W_l = lam (L11_l L11_l')^-1 lam'`` per level, shape ``(q, k, k)``."""
    k = lam.shape[0]
    if k == 1:
        return (lam[0, 0] / l11) ** 2
    if k == 2 and l11.shape[0] >= _CLOSED_FORM_MIN_LEVELS:
        return small.first_block_weights_2x2(l11, lam)
    g = _first_block_roots(l11, lam)
    return np.einsum("qji,qjm->qim", g, g)


def _updated_rest(cp: BlockedCrossProducts, l11: np.ndarray, lam: np.ndarray) -> tuple[np.ndarray, bool]:
    """``A22 - A21 W A21'`` and whether only its lower triangle was formed."""
    plan = cp.rank_update_plan
    if isinstance(plan, VectorRankUpdate):
        return plan.subtract_from(cp.a22, _first_block_roots(l11, lam)), True
    weights = _first_block_weights(l11, lam)
    if plan is not None:
        return plan.subtract_from(cp.a22, weights), True
    rest = _rank_update(cp.a21, weights)
    return np.subtract(cp.a22, rest, out=rest), False


def _rank_update(a21: np.ndarray | sp.csr_array, weights: np.ndarray) -> np.ndarray:
    """``A21 W A21'`` for block-diagonal W, as a dense ``m x m`` matrix."""
    q = weights.shape[0]
    if isinstance(a21, np.ndarray):
        m = a21.shape[0]
        if weights.ndim == 1 or weights.shape[1] == 1:
            return (a21 * weights.reshape(-1)) @ a21.T
        k = weights.shape[1]
        part = a21.reshape(m, q, k)
        return np.einsum("mqi,qij,nqj->mn", part, weights, part)
    if weights.ndim == 1 or weights.shape[1] == 1:
        wmat = sp.diags_array(weights.reshape(-1))
    else:
        k = weights.shape[1]
        wmat = sp.bsr_array((weights, np.arange(q), np.arange(q + 1)), shape=(q * k, q * k))
    return (a21 @ wmat @ a21.T).toarray()


@dataclass(frozen=True, eq=False)
class Factorization:
    """Blocked Cholesky factor ``L`` of the penalized system at one theta.

    Attributes
    ----------
    theta : ndarray
    l11 : ndarray
        Per-level factors of the big term, shape ``(q1,)`` for a scalar term
        (the diagonal of L11) or ``(q1, k1, k1)``.
    l22 : ndarray (m, m)
        Dense lower-triangular factor of the rest block (other terms, X, y);
        the raw output (upper triangle not cleared: the block's values after
        LAPACK, undefined after the supernodal factorization) is kept in ``_l22``.
    ok : bool
        False when the rest block was not positive definite (X rank deficient).
    order : ndarray or None
        None, or the order of the rest block's random-effects rows in ``l22``
        (row k is original row ``order[k]``; the X and y rows stay last) when
        the factor came from :meth:`BlockedCrossProducts.objective_factor`.
    """

    crossprods: BlockedCrossProducts
    theta: np.ndarray
    l11: np.ndarray
    _l22: np.ndarray
    ok: bool
    order: np.ndarray | None = None
    unscaled_rest: np.ndarray | None = None

    @classmethod
    def compute(cls, cp: BlockedCrossProducts, theta: np.ndarray, keep_unscaled: bool = False) -> "Factorization":
        """The factor in the original order; ``keep_unscaled`` also keeps ``A22 - A21 W A21'``
        (symmetric, before the rest terms' lambdas are applied), which the gradient reads."""
        lam1 = cp.first.scaled_lam(theta)
        l11 = _first_block_factor(cp.a11, lam1)
        rest, lower_only = _updated_rest(cp, l11, lam1)
        if lower_only and (keep_unscaled or any(t.ncols > 1 for t in cp.rest_terms)):
            _symmetrize_from_lower(rest)  # vector terms' scaling mixes rows within a level
        unscaled = rest.copy() if keep_unscaled else None
        _scale_rest(rest, cp.rest_terms, theta, "rows")
        _scale_rest(rest, cp.rest_terms, theta, "cols")
        nre = cp.nre_rest
        rest[np.arange(nre), np.arange(nre)] += 1.0
        # Only rest's lower triangle is reliable. rest.T is a Fortran-ordered view
        # whose upper triangle is that lower triangle: LAPACK factors it in place
        # as U'U, and U' = L is then the lower triangle of the C-ordered array.
        upper, info = lapack.dpotrf(rest.T, lower=0, clean=0, overwrite_a=1)
        return cls(cp, theta, l11, upper.T, info == 0, unscaled_rest=unscaled)

    @classmethod
    def compute_reordered(cls, cp: BlockedCrossProducts, theta: np.ndarray) -> "Factorization":
        """The factor with the rest block in :attr:`BlockedCrossProducts.reordered_rest`'s order."""
        reordered = cp.reordered_rest
        lam1 = cp.first.scaled_lam(theta)
        l11 = _first_block_factor(cp.a11, lam1)
        scales = np.array([t.scaled_lam(theta)[0, 0] for t in cp.rest_terms])
        rest = reordered.assemble(_first_block_roots(l11, lam1), scales)
        ok = reordered.factor(rest)
        return cls(cp, theta, l11, rest, ok, reordered.cholesky.order[: cp.nre_rest])

    def fixed_factor(self) -> tuple[np.ndarray, np.ndarray]:
        """The X block of the factor, ``L_X`` (lower triangular, p x p), and the y row beside it.

        ``L_X L_X' = X' V^-1 X / sigma^2`` and ``L_X' beta = c_y``: cheap
        (p-sized copies), unlike ``l22``.
        """
        nre, p = self.crossprods.nre_rest, self.crossprods.nfixef
        return np.tril(self._l22[nre : nre + p, nre : nre + p]), self._l22[-1, nre : nre + p].copy()

    def in_original_order(self) -> "Factorization":
        """This factor, or for a reordered one the same theta's factor in the original order (one more factorization)."""
        return self if self.order is None else Factorization.compute(self.crossprods, self.theta)

    @cached_property
    def l22(self) -> np.ndarray:
        """The dense lower-triangular factor of the rest block (upper triangle zero), in the original order."""
        if self.order is not None:
            raise ValueError("this factor is reordered (objective_factor): take l22 from in_original_order()")
        return np.tril(self._l22)

    # --- pieces of the objective -------------------------------------------------
    def logdet_re(self) -> float:
        """``log det(L_theta)^2``: twice the log-diagonal of the random-effects part."""
        diag11 = self.l11 if self.l11.ndim == 1 else self.l11.diagonal(0, 1, 2)
        nre = self.crossprods.nre_rest
        return 2.0 * float(np.log(diag11).sum() + np.log(self._l22.diagonal()[:nre]).sum())

    def logdet_x(self) -> float:
        """``log det(R_X)^2``, the REML correction."""
        nre, p = self.crossprods.nre_rest, self.crossprods.nfixef
        return 2.0 * float(np.log(self._l22.diagonal()[nre : nre + p]).sum())

    def pwrss(self) -> float:
        """Penalized weighted residual sum of squares, ``r^2``."""
        return float(self._l22[-1, -1] ** 2)

    # --- solutions (after the fit; these may touch q-sized arrays) ---------------
    def solve(self) -> tuple[np.ndarray, list[np.ndarray]]:
        """Fixed effects beta and spherical random effects u (one (q, k) array per term)."""
        cp = self.crossprods
        nre = cp.nre_rest
        # check_finite=False: the strict upper triangle is not part of the factor (and undefined when reordered)
        x_rest = solve_triangular(self._l22[:-1, :-1], self._l22[-1, :-1], lower=True, trans="T", check_finite=False)
        if self.order is not None:
            x_rest[self.order] = x_rest[:nre].copy()
        beta = x_rest[nre:]
        return beta, spherical_modes(cp, self.theta, self.l11, x_rest[:nre], beta)

"""PIRLS's penalized least-squares step when every random-effects term has one column.

Scalar terms (``(1 | g)``, ``(0 + x | g)``) are what most GLMMs have, and a
PIRLS fit solves tens of thousands of small systems

    [ Lambda' Z'WZ Lambda + I   Lambda' Z'WX ] [u   ]   [ Lambda' Z'W z ]
    [ X'WZ Lambda               X'WX         ] [beta] = [ X'W z         ]

(the X rows only for the ``nAGQ = 0`` criterion), each with new weights
``W``.  The general blocked code (:mod:`.blocked`, built for linear mixed
models whose blocks never change) spent most of a GLMM fit in scipy.sparse
constructors and per-call dispatch: ~1 ms per iteration on grouseticks,
~0.2 ms on VerbAgg.  Here everything that does not depend on the weights is
worked out once per model:

* every entry of the first term's diagonal, of its cross-products with the
  other terms (``A21``) and of the other terms' own cross-products
  (``A22``) is a weighted sum over observations: one sparse matrix-vector
  product gives them all;
* the rank update ``A21 D1^-1 A21'`` is a dense product when ``A21`` is
  small, else a single ``bincount`` over the pairs of non-zeros that share a
  first-term level (found once);
* theta enters only as per-entry products ``lambda_r lambda_s``, computed
  once per PIRLS run, not per iteration.

The factor is the same as the blocked one (first term diagonal, dense rest
block factored by LAPACK), so the Laplace deviance agrees to rounding.

With numba, :class:`SparseScalarSystem` factors the same system as one
sparse matrix by compiled ``L D L'`` when that has little fill (terms nested
in each other after an observation-level one, as on grouseticks, where the
dense rest block has 185 rows and the sparse factor ~3 entries a column).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

__all__ = ["ScalarSystem", "ScalarFactor", "SparseScalarSystem", "SparseFactor", "small_dense"]

# A21 (rest rows x first-term levels) is handled dense below this many entries
_DENSE_LIMIT = 50_000
# A sparse matrix with at most this many entries (zeros included) is held dense: its product with a
# vector then costs ~10 us less (scipy.sparse's dispatch), more than the dense product's extra flops
_SMALL_DENSE = 20_000


def small_dense(matrix):
    """``matrix`` as a dense array when it has at most ``_SMALL_DENSE`` entries, else as it is.

    PIRLS multiplies by Z' and by the gather matrix a few times an iteration; for a small model
    (cbpp: 15 x 56) scipy.sparse's per-call overhead is most of the product's time.
    """
    rows, cols = matrix.shape
    return matrix.toarray() if rows * cols <= _SMALL_DENSE else matrix


@dataclass(frozen=True, eq=False)
class _Entries:
    """Distinct block positions and, per position, which observations add to it (the gather matrix rows)."""

    rows: np.ndarray
    cols: np.ndarray


def _distinct(rows: np.ndarray, cols: np.ndarray, nrows: int) -> tuple[_Entries, np.ndarray]:
    """Distinct (row, col) positions, sorted by column then row, and each input's position index."""
    keys, inverse = np.unique(cols.astype(np.int64) * nrows + rows, return_inverse=True)
    return _Entries(keys % nrows, keys // nrows), inverse.ravel()


def _lower_pairs(entries: _Entries, sizes: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, dict, np.ndarray]:
    """Pairs (a, b) of A21 entries in the same column with row_a >= row_b: indices, flat destination
    in an m x m block for each m in ``sizes``, column.

    ``A21 D^-1 A21'`` is the sum over these of ``a21_a a21_b / d_col`` at (row_a, row_b).
    """
    counts = np.bincount(entries.cols)
    starts = np.concatenate([[0], np.cumsum(counts)])
    firsts, seconds = [], []
    for k in np.unique(counts[counts > 0]):
        cols = np.flatnonzero(counts == k)
        tri_i, tri_j = np.tril_indices(k)
        firsts.append((starts[cols][:, None] + tri_i).ravel())
        seconds.append((starts[cols][:, None] + tri_j).ravel())
    first = np.concatenate(firsts) if firsts else np.empty(0, np.intp)
    second = np.concatenate(seconds) if seconds else np.empty(0, np.intp)
    # entries are sorted by row within a column, so row[first] >= row[second]
    dest = {m: entries.rows[first] * m + entries.rows[second] for m in sizes}
    return first, second, dest, entries.cols[first]


def _diagonal_lead_size(e21: _Entries, e22: _Entries, nlevels: list[int], dense21: bool) -> int:
    """Levels of the second term when its block of the rest stays diagonal, else 0.

    It does when no first-term level meets two of its levels (A21's column
    has at most one non-zero there) and no observation pairs two of them
    (A22 is diagonal there): e.g. an observation-level term first, then a
    term nested in the next one.  Only worth it for large sparse rests.
    """
    if dense21 or len(nlevels) < 3:
        return 0
    q2 = nlevels[1]
    lead = e21.rows < q2
    if np.any(np.bincount(e21.cols[lead]) > 1):
        return 0
    in_block = (e22.rows < q2) & (e22.cols < q2)
    return q2 if np.all(e22.rows[in_block] == e22.cols[in_block]) else 0


# The compiled row sums (:func:`._pirls_kernels.row_sums`, the same numbers as scipy's products) replace
# scipy's products from this many gathered entries per iteration (observations x (blocks + terms x (p + 1)))
# once numba is imported (VerbAgg: 129,000, ~0.1 ms an iteration less).  Importing numba and loading the
# kernels costs ~0.3-0.5 s and ~110 MB once per process, more than a one-off fit of such a model saves, so
# below ``_COMPILED_ALWAYS`` entries (~60 iterations saving ~1 ns an entry) the import is not made for them
_COMPILED_SUMS_FROM = 50_000
_COMPILED_ALWAYS = 5_000_000


def _compiled_pays(entries: int) -> bool:
    """Whether compiled loops over ``entries`` per call pay: numba already imported, or a model this large."""
    return entries >= _COMPILED_ALWAYS or (entries >= _COMPILED_SUMS_FROM and "numba" in sys.modules)


def _compiled_sums(blocks, refs, x) -> Callable | None:
    """The compiled :func:`._pirls_kernels.row_sums` where it pays (:func:`_compiled_pays`), else None."""
    if not _compiled_pays(refs[0].size * (blocks + len(refs) * (x.shape[1] + 1))):
        return None
    from . import _pirls_kernels

    return _pirls_kernels.compiled("row_sums")


def _csr_parts(matrix: sp.csr_array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A CSR matrix's row pointers, column indices and values."""
    return matrix.indptr, matrix.indices, matrix.data


def _z_rows(refs: list[np.ndarray], z: list[np.ndarray], nlevels: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Z's non-zeros per observation: its column of each term (n x terms) and the values."""
    offsets = np.concatenate([[0], np.cumsum(nlevels)[:-1]])
    rows = np.column_stack([o + r for o, r in zip(offsets, refs)]).astype(np.int64)
    return np.ascontiguousarray(rows), np.ascontiguousarray(np.column_stack(z), dtype=float)


class ScalarSystem:
    """The weight-independent layout of PIRLS's system for scalar terms (built once per model).

    Parameters
    ----------
    refs, z : per term, level index and (scaled) column per observation, in block order
    nlevels : per term
    x : ndarray (n, p)
    zt : sparse (q, n), ``Z'`` with the scaled columns
    """

    def __init__(
        self, refs: list[np.ndarray], z: list[np.ndarray], nlevels: list[int], x: np.ndarray, zt: sp.csr_array
    ):
        n = refs[0].size
        self.q1, self.m_re, self.p, self.zt, self.x = nlevels[0], int(sum(nlevels[1:])), x.shape[1], small_dense(zt), x
        self.nlevels = list(nlevels)
        offsets = np.concatenate([[0], np.cumsum(nlevels[1:])]).astype(np.int64)
        rows_rest = [offsets[t - 1] + refs[t] for t in range(1, len(refs))]
        self.e21, inv21 = _distinct(
            np.concatenate(rows_rest) if rows_rest else np.empty(0, np.int64),
            np.tile(refs[0], len(rows_rest)),
            max(self.m_re, 1),
        )
        pairs = [(t, s) for t in range(1, len(refs)) for s in range(1, t + 1)]
        self.e22, inv22 = _distinct(
            np.concatenate([rows_rest[t - 1] for t, s in pairs]) if pairs else np.empty(0, np.int64),
            np.concatenate([rows_rest[s - 1] for t, s in pairs]) if pairs else np.empty(0, np.int64),
            max(self.m_re, 1),
        )
        n21, n22 = self.e21.rows.size, self.e22.rows.size
        gather_rows = np.concatenate([refs[0], self.q1 + inv21, self.q1 + n21 + inv22]).astype(np.int64)
        gather_vals = np.concatenate(
            [z[0] * z[0]] + [z[t] * z[0] for t in range(1, len(refs))] + [z[t] * z[s] for t, s in pairs]
        )
        blocks = 1 + len(rows_rest) + len(pairs)
        gather_cols = np.tile(np.arange(n), blocks)
        gather = sp.csr_array((gather_vals, (gather_rows, gather_cols)), shape=(self.q1 + n21 + n22, n))
        self.gather = small_dense(gather)
        self._sums = _compiled_sums(blocks, refs, x)
        # the compiled row sums read the CSR matrices whose products they replace (the same sums in the same order)
        self._rows = (*_csr_parts(gather), *_csr_parts(zt)) if self._sums is not None else ()
        self._sizes = (self.q1 + n21 + n22, int(sum(nlevels)))
        self._slices = (slice(0, self.q1), slice(self.q1, self.q1 + n21), slice(self.q1 + n21, self.q1 + n21 + n22))
        # which term each rest row belongs to (for lambda products), and the column scale per stacked u
        self.term_of_rest = np.repeat(np.arange(1, len(refs)), nlevels[1:]).astype(np.intp)
        self.term_of_u = np.repeat(np.arange(len(refs)), nlevels).astype(np.intp)
        self.dense21 = (self.m_re + self.p) * self.q1 <= _DENSE_LIMIT
        self.grid21 = n21 == self.m_re * self.q1
        if not self.dense21 and n21:
            self.pairs = _lower_pairs(self.e21, (self.m_re, self.m_re + self.p))
        self.nd = _diagonal_lead_size(self.e21, self.e22, nlevels, self.dense21)
        self._joint_gathers: tuple[np.ndarray, sp.csr_array] | None = None
        self._x_products: np.ndarray | None = None
        self._per_observation = _z_rows(refs, z, nlevels) if self._sums is not None else ()
        self._z = z
        self._refs = refs

    @property
    def compiled(self) -> bool:
        """Whether the weighted sums are the compiled pass (:meth:`weighted_sums`)."""
        return self._sums is not None

    def linear_predictor(self, base: np.ndarray, lam_u: np.ndarray) -> np.ndarray:
        """``base + Z Lambda u`` (given ``Lambda u``) by the compiled loop (only where :attr:`compiled`),
        adding as scipy's CSR product does."""
        from . import _pirls_kernels

        out = np.empty(base.size)
        _pirls_kernels.compiled("linear_predictor")(*self._per_observation, lam_u, base, out)
        return out

    def weighted_sums(
        self, w: np.ndarray, zw: np.ndarray, joint: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The gathered sums for weights w (the first term's diagonal, A21's and A22's entries), ``Z' W zw``
        and (``joint``) ``Z' W X`` (q x p): compiled row sums where set up (no per-call dispatch, no
        temporaries), else scipy's sparse products; the same numbers either way."""
        if self._sums is not None:
            p = self.p if joint else 0
            g, ztwz, ztwx = np.empty(self._sizes[0]), np.empty(self._sizes[1]), np.empty((self._sizes[1], p))
            self._sums(*self._rows, self.x, w, zw, p, g, ztwz, ztwx)
            return g, ztwz, ztwx if joint else None
        ztwx = (self.joint_gathers()[1] @ w).reshape(self._sizes[1], self.p) if joint else None
        return self.gather @ w, self.zt @ (w * zw), ztwx

    def x_products(self) -> np.ndarray:
        """``x_i x_i'`` per observation (p^2 x n: row ``a p + b`` holds ``x_a x_b``), on first use."""
        if self._x_products is None:
            xt = np.ascontiguousarray(self.x.T)
            p = self.p
            xx = np.empty((p * p, xt.shape[1]))  # (a transposed copy of the n x p^2 products took ~1 ms)
            for a in range(p):
                np.multiply(xt[a], xt, out=xx[a * p : (a + 1) * p])
            self._x_products = xx
        return self._x_products

    def joint_gathers(self) -> tuple[np.ndarray, sp.csr_array]:
        """``x_i x_i'`` per observation (p^2 x n) and the gather matrix of ``Z'WX`` (q p x n), on first use."""
        if self._joint_gathers is None:
            x, n, p = self.x, self.x.shape[0], self.p
            offsets = np.concatenate([[0], np.cumsum(self.nlevels)])
            rows = np.concatenate(
                [((offsets[t] + r)[:, None] * p + np.arange(p)).ravel() for t, r in enumerate(self._refs)]
            )
            vals = np.concatenate([(zc[:, None] * x).ravel() for zc in self._z])
            cols = np.tile(np.repeat(np.arange(n), p), len(self._refs))
            self._joint_gathers = (self.x_products(), sp.csr_array((vals, (rows, cols)), shape=(offsets[-1] * p, n)))
        return self._joint_gathers

    def at(self, lams: np.ndarray) -> "_ThetaState":
        """Per-run quantities for one theta (``lams``: each term's scaled lambda)."""
        rest = lams[self.term_of_rest]
        return _ThetaState(
            lams[0],
            lams[self.term_of_u],
            rest[self.e21.rows] * lams[0] if self.e21.rows.size else np.empty(0),
            rest[self.e22.rows] * rest[self.e22.cols] if self.e22.rows.size else np.empty(0),
        )

    def factorize(self, state: "_ThetaState", w: np.ndarray, zw: np.ndarray, joint: bool) -> "ScalarFactor":
        """Factor the system for weights ``w`` and working response ``zw`` and solve it."""
        g, ztwz, ztwx = self.weighted_sums(w, zw, joint)
        d1 = state.lam1**2 * g[self._slices[0]] + 1.0
        a21 = g[self._slices[1]] * state.coef21
        rz = state.lamu * ztwz
        rz1, rz2 = rz[: self.q1], rz[self.q1 :]
        if joint:
            xx = (self.x_products() @ w).reshape(self.p, self.p)
            wz = self.x.T @ (w * zw)
            zxw = ztwx * state.lamu[:, None]  # (also without fixed effects)
            rz2 = np.concatenate([rz2, wz])
        m = self.m_re + (self.p if joint else 0)
        if self.dense21:
            build = self._dense_rest
        else:
            build = self._sparse_rest
        s, a21_apply, a21t_apply = build(state, g, d1, a21, m, joint, xx if joint else None, zxw if joint else None)
        return ScalarFactor.compute(d1, s, self.m_re, rz1, rz2 - a21_apply(rz1 / d1), a21t_apply, joint, self.nd)

    def _dense_rest(self, state, g, d1, a21, m, joint, xx, zxw):
        """Rest block and A21 products with A21 held dense, transposed (q1 x m: one row per first-term level)."""
        m_re = self.m_re
        if self.grid21 and not joint:  # every (level, rest row) pair occurs: a21 is A21' in row-major order
            at = a21.reshape(self.q1, m_re)
        else:
            at = np.empty((self.q1, m)) if self.grid21 else np.zeros((self.q1, m))
            if self.grid21:
                at[:, :m_re] = a21.reshape(self.q1, m_re)
            else:
                at[self.e21.cols, self.e21.rows] = a21
            if joint:
                at[:, m_re:] = zxw[: self.q1]
        s = at.T @ (at / d1[:, None])
        np.negative(s, out=s)
        if self.e22.rows.size:
            s[self.e22.rows, self.e22.cols] += g[self._slices[2]] * state.coef22
        if m_re:  # the identity on the random-effects rows, through a strided view of the (C-ordered) product
            s.reshape(-1)[: m_re * (m + 1) : m + 1] += 1.0
        if joint:
            s[m_re:, :m_re] += zxw[self.q1 :].T
            s[m_re:, m_re:] += xx
        return s, lambda v: v @ at, lambda v: at @ v

    def _sparse_rest(self, state, g, d1, a21, m, joint, xx, zxw):
        """Rest block with A21's random-effects rows sparse: the rank update is one bincount over pairs."""
        first, second, dest, col = self.pairs
        lower = np.zeros(m * m)
        if self.e22.rows.size:
            lower[self.e22.rows * m + self.e22.cols] = g[self._slices[2]] * state.coef22
        lower -= np.bincount(dest[m], weights=a21[first] * a21[second] / d1[col], minlength=m * m)
        s = lower.reshape(m, m)
        idx = np.arange(self.m_re)
        s[idx, idx] += 1.0
        rows, cols, q1, m_re = self.e21.rows, self.e21.cols, self.q1, self.m_re

        def apply(v):  # A21 v (rest rows)
            out = np.bincount(rows, weights=a21 * v[cols], minlength=m_re)
            return np.concatenate([out, ax @ v]) if joint else out

        def apply_t(v):  # A21' v
            out = np.bincount(cols, weights=a21 * v[rows], minlength=q1)
            return out + ax.T @ v[m_re:] if joint else out

        if joint:
            ax = zxw[:q1].T  # X rows of A21 (p x q1), dense
            scaled = ax / d1
            p = self.p
            cross = np.bincount(
                (rows[:, None] * p + np.arange(p)).ravel(),
                weights=(a21[:, None] * scaled.T[cols]).ravel(),
                minlength=m_re * p,
            ).reshape(m_re, p)
            s[m_re:, :m_re] = zxw[q1:].T - cross.T
            s[m_re:, m_re:] = xx - scaled @ ax.T
        return s, apply, apply_t


@dataclass(frozen=True, eq=False)
class _ThetaState:
    lam1: float
    lamu: np.ndarray  # scaled lambda per stacked u
    coef21: np.ndarray
    coef22: np.ndarray


def _diagonal_lead(s: np.ndarray, c: np.ndarray, nd: int):
    """Eliminate a leading block of ``s`` known to be diagonal: its root, the scaled off-diagonal
    block ``L_RD``, and the reduced lower block with its right-hand side (a cheap first Cholesky step)."""
    root = np.sqrt(np.diagonal(s)[:nd])
    lrd = s[nd:, :nd] / root
    yd = c[:nd] / root
    reduced = s[nd:, nd:] - lrd @ lrd.T
    return root, lrd, yd, reduced, c[nd:] - lrd @ yd


@dataclass(frozen=True, eq=False)
class ScalarFactor:
    """The factor of one PIRLS system and its solution.

    ``l11`` is the first term's diagonal factor (``sqrt(d1)``); the rest
    block's factor is a diagonal lead (``root``, for a rest term whose block
    stays diagonal, e.g. broods nested in locations) and LAPACK's ``U`` of
    what remains (``U'U``).
    """

    l11: np.ndarray
    root: np.ndarray
    upper: np.ndarray
    m_re: int
    ok: bool
    u: np.ndarray | None
    beta: np.ndarray | None

    @classmethod
    def compute(cls, d1, s, m_re, rz1, c2, a21t_apply, joint: bool, nd: int = 0) -> "ScalarFactor":
        l11 = np.sqrt(d1)
        if s.shape[0] == 0:
            return cls(l11, np.empty(0), s, m_re, True, rz1 / d1, np.empty(0))
        root, lrd, yd, s, c = _diagonal_lead(s, c2, nd) if nd else (c2[:0], None, None, s, c2)
        # s's lower triangle is complete; s.T (Fortran order) has it as its upper triangle
        upper, info = lapack.dpotrf(s.T, lower=0, clean=0, overwrite_a=1)
        if info != 0 or (nd and not np.all(root > 0)):
            return cls(l11, root, upper, m_re, False, None, None)
        x2, _ = lapack.dpotrs(upper, c, lower=0)
        if nd:
            x2 = np.concatenate([(yd - lrd.T @ x2) / root, x2])
        u1 = (rz1 - a21t_apply(x2)) / d1
        u = np.concatenate([u1, x2[:m_re]])
        return cls(l11, root, upper, m_re, True, u, x2[m_re:] if joint else np.empty(0))

    def logdet_re(self) -> float:
        """``log det(L_theta)^2``: the first term's diagonal and the rest's random-effects rows."""
        diag = np.diagonal(self.upper)[: self.m_re - self.root.size]
        return 2.0 * float(np.sum(np.log(self.l11)) + np.sum(np.log(self.root)) + np.sum(np.log(diag)))

    def solve(self) -> tuple[np.ndarray, np.ndarray]:
        """Fixed effects (empty unless joint) and the stacked spherical random effects."""
        return self.beta, self.u


class SparseScalarSystem:
    """PIRLS's system for scalar terms with a sparse random-effects block, by compiled LDL'.

    Observation i adds ``w_i v_i v_i'`` to the random-effects block, ``v_i``
    holding ``z_ti`` at its level's column of each term; theta scales entry
    (r, c) by ``lambda_r lambda_c``.  So its upper-triangular pattern, the
    entry each observation's products ``v_ir v_ic`` add to, the pattern of
    L (elimination tree, then one symbolic pass of LDL) and the updates each
    column of L makes are worked out here once, and an iteration is three
    compiled calls (:mod:`._pirls_kernels`): the values, ``L D L'`` of the
    random-effects block (no fill where the terms nest, e.g. grouseticks'
    broods in locations), and the solve, whose X rows (``nAGQ = 0``) form a
    small dense Schur complement.

    Parameters as :class:`ScalarSystem`, and ``kernels``: the compiled
    ``ldl_symbolic``, ``ldl_numeric``, ``assemble``, ``ldl_mapped``, ``block_solve``
    and ``linear_predictor``.
    """

    def __init__(
        self,
        refs: list[np.ndarray],
        z: list[np.ndarray],
        nlevels: list[int],
        x: np.ndarray,
        kernels: dict[str, Callable],
    ):
        nobs = refs[0].size
        self.q1, self.nre, self.p, self.x, self._kernels = nlevels[0], int(sum(nlevels)), x.shape[1], x, kernels
        self._term_of_u = np.repeat(np.arange(len(nlevels)), nlevels)
        size = self.nre
        offsets = np.concatenate([[0], np.cumsum(nlevels)[:-1]])
        cols = np.column_stack([o + r for o, r in zip(offsets, refs)]).astype(np.int64)
        vals = np.column_stack(z)
        self._rows = (np.ascontiguousarray(cols), np.ascontiguousarray(vals, dtype=float))
        lo, hi = np.triu_indices(cols.shape[1])  # cols increase along a row: (lo, hi) is an upper entry
        keys = (cols[:, hi] * size + cols[:, lo]).ravel()
        diag = np.arange(size, dtype=np.int64) * (size + 1)
        unique, inverse = np.unique(np.concatenate([diag, keys]), return_inverse=True)
        self.column_of, self.ai = (unique // size).astype(np.int64), (unique % size).astype(np.int64)
        self.ap = np.searchsorted(self.column_of, np.arange(size + 1)).astype(np.int64)
        self._entries = np.ascontiguousarray(inverse.ravel()[size:].reshape(nobs, lo.size), dtype=np.int64)
        self._pair_vals = np.ascontiguousarray(vals[:, hi] * vals[:, lo], dtype=float)
        self.shift = (self.column_of == self.ai).astype(float)
        self.lp, self.parent = np.empty(size + 1, np.int64), np.empty(size, np.int64)
        kernels["ldl_symbolic"](
            self.ap, self.ai, self.lp, self.parent, np.empty(size, np.int64), np.empty(size, np.int64)
        )
        self.li = self._pattern()
        self._lnz = np.diff(self.lp)
        self._amap, self._pairs = _update_maps(self.ap, self.ai, self.column_of, self.lp, self.li)

    def _pattern(self) -> np.ndarray:
        """Row indices of L, column by column: what :func:`ldl_numeric` writes for any values (here I)."""
        size, nnz = self.nre, int(self.lp[-1])
        li, ints = np.empty(nnz, np.int64), [np.empty(size, np.int64) for _ in range(3)]
        self._kernels["ldl_numeric"](
            self.ap,
            self.ai,
            self.shift.copy(),
            self.lp,
            self.parent,
            ints[0],
            li,
            np.empty(nnz),
            np.empty(size),
            np.zeros(size),
            ints[1],
            ints[2],
        )
        return li

    def ldl_flops(self) -> float:
        """Multiply-adds of one factorization (the sum of squared column counts of L)."""
        counts = np.diff(self.lp).astype(float)
        return float(counts @ counts)

    def at(self, lams: np.ndarray) -> "_SparseState":
        """Per-run quantities for one theta (``lams``: each term's scaled lambda) and the workspace."""
        return _SparseState(lams[self._term_of_u], np.empty(self.ai.size))

    def linear_predictor(self, base: np.ndarray, lam_u: np.ndarray) -> np.ndarray:
        """``base + Z Lambda u`` (given ``Lambda u``), without scipy's per-call overhead."""
        out = np.empty(base.size)
        self._kernels["linear_predictor"](*self._rows, lam_u, base, out)
        return out

    def _assemble_and_factor(
        self, p: int, state: "_SparseState", w: np.ndarray, zw: np.ndarray, x: np.ndarray, y, s, vals: np.ndarray
    ) -> float:
        """Assemble the system for weights ``w`` (into ``state.ax``, ``y``, ``s``; ``p`` fixed-effects
        columns of ``x``) and factor it into ``vals``; the log-determinant (NaN: not positive definite)."""
        k = self._kernels
        args = (self._entries, self._pair_vals, *self._rows, self.column_of, self.ai, self.shift, state.lam)
        k["assemble"](p, *args, w, zw, x, state.ax, y, s)
        return k["ldl_mapped"](self._amap, state.ax, *self._pairs, self.lp, vals)

    def factorize(
        self, state: "_SparseState", w: np.ndarray, zw: np.ndarray, joint: bool, solve: bool = True
    ) -> "SparseFactor":
        """Assemble, factor and solve for weights ``w`` and working response ``zw``.

        ``solve=False``: just the random-effects factor, for the log-determinant at the modes
        (PIRLS's last pass; the fixed-effects rows' Schur complement, positive definite one
        step of below 1e-10 earlier, is not re-checked).
        """
        p, k = (self.p if joint else 0), self._kernels
        y, s = np.empty((self.nre, p + 1)), np.empty((p, p + 1))
        nnz = self.li.size
        vals, u, beta = np.empty(nnz + self.nre), np.empty(self.nre), np.empty(p)
        logdet = self._assemble_and_factor(p, state, w, zw, self.x, y, s, vals)
        d = vals[nnz:]
        if not solve:
            return SparseFactor(d, self.q1, float(logdet), None, None)
        if np.isnan(logdet) or not k["block_solve"](self.lp, self._lnz, self.li, vals[:nnz], d, y, s, u, beta):
            return SparseFactor(d, self.q1, np.nan, u, beta)
        return SparseFactor(d, self.q1, float(logdet), u, beta)

    # --- what the Laplace gradient reads (:mod:`.laplace_gradient`) ---------------------------
    def weighted_factor(self, lams: np.ndarray, w: np.ndarray) -> np.ndarray | None:
        """``L D L'`` of ``Lambda' Z' W Z Lambda + I`` for weights ``w`` in :func:`._pirls_kernels.ldl_mapped`'s
        layout (L's entries, then D), or None when it is not positive definite."""
        state = self.at(lams)
        vals = np.empty(self.li.size + self.nre)
        zw, x0 = np.zeros(w.size), np.empty((w.size, 0))
        y, s = np.empty((self.nre, 1)), np.empty((0, 1))
        logdet = self._assemble_and_factor(0, state, w, zw, x0, y, s, vals)
        return None if np.isnan(logdet) else vals

    def inverse_on_pattern(self, vals: np.ndarray) -> np.ndarray:
        """The entries of the inverse on the factor's pattern (same layout), by Takahashi's recurrences."""
        out = np.empty_like(vals)
        self._kernels["selected_inverse"](self.lp, self.li, vals, out)
        return out

    def solve_with(self, vals: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """``(L D L')^-1 rhs`` for a factor from :meth:`weighted_factor` (rhs: nre x k)."""
        out = np.array(rhs, dtype=float, order="C")
        self._kernels["ldl_solve"](self.lp, self.li, vals, out)
        return out

    def observation_entries(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per observation, where each pair of its terms' entries sits in the factor's layout
        (n x pairs), and the pairs' terms ``(lo, hi)`` (upper-triangle order)."""
        lo, hi = np.triu_indices(self._rows[0].shape[1])
        return self._amap[self._entries], lo, hi


def _update_maps(ap, ai, column_of, lp, li) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Where :func:`._pirls_kernels.ldl_mapped` puts each matrix entry, and its pairs per column of L.

    Positions: L's entries in CSC order, then the n pivots.  A pair is two entries of one
    column of L (rows r1 <= r2); its target is L's (r2, r1), or pivot r1 when r1 = r2.
    """
    n, nnz = lp.size - 1, int(lp[-1])
    keys = np.repeat(np.arange(n, dtype=np.int64), np.diff(lp)) * n + li  # (column, row) of L, sorted

    def position(rows, cols):  # rows <= cols: pivot, or L's entry (cols, rows) in column rows
        return np.where(rows == cols, nnz + rows, np.searchsorted(keys, rows * n + cols))

    counts = np.diff(lp)
    parts = [(np.empty(0, np.int64),) * 3]
    for c in np.unique(counts[counts > 0]):
        columns = np.flatnonzero(counts == c)
        hi, lo = np.tril_indices(c)
        parts.append(
            (np.repeat(columns, lo.size), (lp[columns][:, None] + lo).ravel(), (lp[columns][:, None] + hi).ravel())
        )
    column, first, second = (np.concatenate(v).astype(np.int64) for v in zip(*parts))
    order = np.argsort(column, kind="stable")
    column, first, second = column[order], first[order], second[order]
    pair_ptr = np.searchsorted(column, np.arange(n + 1)).astype(np.int64)
    target = position(li[first], li[second])
    return position(ai, column_of).astype(np.int64), (pair_ptr, first, second, target.astype(np.int64))


@dataclass(frozen=True, eq=False)
class _SparseState:
    """One PIRLS run's scale per column of Z (``lam``) and the buffer of the matrix's entries."""

    lam: np.ndarray
    ax: np.ndarray


@dataclass(frozen=True, eq=False)
class SparseFactor:
    """One :class:`SparseScalarSystem` factorization: ``D`` of ``L D L'``, ``log det`` of the
    random-effects block (nan when the system is not positive definite) and the solution."""

    d: np.ndarray
    q1: int
    logdet: float
    u: np.ndarray | None  # None when only factored
    beta: np.ndarray | None

    @property
    def ok(self) -> bool:
        return not math.isnan(self.logdet)

    @property
    def l11(self) -> np.ndarray:
        """The first term's diagonal of the Cholesky factor (its columns are never updated: sqrt(D))."""
        return np.sqrt(self.d[: self.q1])

    def logdet_re(self) -> float:
        return self.logdet

    def solve(self) -> tuple[np.ndarray, np.ndarray]:
        return self.beta, self.u

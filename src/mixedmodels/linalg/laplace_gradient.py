"""Gradient of a GLMM's Laplace deviance over (theta, beta), for scalar (or diagonal) terms and a canonical link.

The Laplace deviance at the conditional modes ``u*`` (PIRLS) is

    f(theta, beta) = dev(eta*) + ||u*||^2 + log det M,     M = Lambda' Z' W Z Lambda + I,
    eta = X beta + Z Lambda u + offset,

with ``W`` the working weights at ``eta*``.  For logit-binomial and
log-Poisson (canonical links) ``s = d dev / d eta / 2 = -wt (y - mu)``,
``ds / d eta = W = wt V(mu)`` and ``dW / d eta = wt V'(mu) V(mu)``.  For a
parameter phi (a term's scaled lambda, or a fixed effect) with explicit
``a_phi = d eta / d phi`` at fixed u (``Z_t u_t`` or ``X_j``):

* the first two terms, minimized over u, change by their explicit
  derivative only (envelope theorem): ``2 s' a_phi``;
* ``u*`` moves with phi: differentiating the mode equation
  ``Lambda' Z' s + u = 0`` gives ``M du = -(Lambda' Z' W a_phi + b_phi)``
  with ``b_phi = E_t Z_t' s`` for the lambda of term t (0 for beta), and
  ``d eta = a_phi + Z Lambda du``;
* ``d log det M = tr(M^-1 dM)``: an explicit part for lambda_t,
  ``2 sum_i W_i z_ti v_ti`` with ``v_i = M^-1 (Z Lambda)_i'`` read at term
  t's index of observation i, and the weights' part
  ``sum_i dW_i/deta d eta_i h_i`` with the leverages ``h_i = (Z Lambda M^-1 Lambda' Z')_ii``.

M is factored as the blocked systems are: the first term's diagonal ``D``,
the first-to-rest block ``B`` and the rest block, whose Schur complement is
inverted densely; the entries of ``M^-1`` every observation needs (its first
term's diagonal, first-to-rest and rest-to-rest entries) follow from those.
Where PIRLS factors M as a sparse ``L D L'``
(:class:`.pirls_scalar.SparseScalarSystem`: grouseticks, whose dense rest
block has 185 rows and its sparse factor ~3 entries a column), the gradient
uses that factor instead: the entries of ``M^-1`` an observation needs are on
the pattern of M, so Takahashi's recurrences give them on L's pattern
(:func:`._pirls_kernels.selected_inverse`), and the modes' derivatives are
sparse triangular solves.
All of theta's derivatives are with respect to the scaled lambdas.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.linalg import lapack

from .pirls_scalar import _SMALL_DENSE, _compiled_pays, small_dense

__all__ = ["LaplaceGradient"]

# B (rest random effects x first-term levels) is held dense up to this many entries
MAX_DENSE_ENTRIES = 4_000_000


@dataclass(frozen=True, eq=False)
class LaplaceGradient:
    """What the gradient needs from a model: per term its level indices and scaled column, X and the response.

    Build with :meth:`build`, which returns None where this gradient does not apply.
    """

    refs: tuple
    z: tuple
    nlevels: tuple
    offsets: np.ndarray  # first index of each term in u
    x: np.ndarray
    response: object
    permutation: np.ndarray | None = None  # the model's index of each u here (None: the same order)
    system: object = None  # PIRLS's SparseScalarSystem, whose sparse factor replaces the blocked inverse

    @classmethod
    def build(
        cls, refs, z, nlevels, x: np.ndarray, response, permutation: np.ndarray | None = None, system=None
    ) -> "LaplaceGradient | None":
        """None unless the link is canonical (logit-binomial, log-Poisson) and B is small enough to hold dense
        (or a sparse ``system`` is given).

        ``permutation`` (``u_here = u_model[permutation]``) lets scalar terms stand for the columns
        of a diagonal term (one scalar term per column, all on its grouping factor), whose modes
        the model keeps level by level.  ``system``: PIRLS's
        :class:`.pirls_scalar.SparseScalarSystem` for the same terms in the same order (then no
        permutation), whose sparse ``L D L'`` the gradient uses.
        """
        if not getattr(response, "natural", False):
            return None
        return cls._assemble(refs, z, nlevels, x, response, permutation, system)

    @classmethod
    def _assemble(cls, refs, z, nlevels, x: np.ndarray, response, permutation, system):
        """The gradient for a family :meth:`build` accepted, or None where B is too large to hold dense
        (without a sparse ``system``) or a sparse ``system`` comes with a permutation."""
        if system is not None and permutation is not None:
            return None
        rest = int(sum(nlevels[1:]))
        if system is None and rest * nlevels[0] > MAX_DENSE_ENTRIES:
            return None
        offsets = np.concatenate([[0], np.cumsum(nlevels)]).astype(np.intp)
        return cls(
            tuple(np.asarray(r) for r in refs),
            tuple(np.asarray(c, dtype=float) for c in z),
            tuple(nlevels),
            offsets,
            x,
            response,
            permutation,
            system,
        )

    def __call__(
        self, lams: np.ndarray, eta: np.ndarray, mu: np.ndarray, u: np.ndarray, modes: list | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Gradients over the scaled lambdas (one per term) and over beta, at a PIRLS solution.

        With a list ``modes``, also appends ``du / d(lambda, beta)`` (q x (terms + p)): how the
        modes move, a first-order start for PIRLS at nearby parameters.
        """
        parts = self._parts(lams, eta, mu, u)
        if modes is not None:
            modes.append(self._model_order(parts.du))
        ntheta = len(self.z)
        return parts.gradient[:ntheta], parts.gradient[ntheta:]

    def profiled(
        self, lams: np.ndarray, eta: np.ndarray, mu: np.ndarray, u: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The gradient of the ``nAGQ = 0`` criterion over the scaled lambdas, at a joint PIRLS solution.

        There beta minimizes the penalized deviance with u, so ``f_0(lambda) = f(lambda,
        beta*(lambda))`` and ``df_0 = df/dlambda + df/dbeta dbeta*/dlambda``.  Differentiating
        the joint mode equations (``X' s = 0`` with the mode equation) gives, with
        ``B = Lambda' Z' W X`` and ``S = X'WX - B' M^-1 B`` (its Schur complement),

            dbeta*/dlambda_t = -S^-1 (X' W a_t - B' M^-1 r_t),    du*/dlambda_t = du_t - M^-1 B dbeta*/dlambda_t,

        ``M du_t = -r_t`` being the modes' derivative at fixed beta (:meth:`__call__`).  Returns the
        gradient, ``dbeta*/dlambda`` (p x terms) and ``du*/dlambda`` (q x terms, the model's order of u).
        """
        parts = self._parts(lams, eta, mu, u)
        ntheta = len(self.z)
        du_lam, du_beta = parts.du[:, :ntheta], parts.du[:, ntheta:]  # du_beta = -M^-1 B
        b = parts.rhs[:, ntheta:]
        schur = self.x.T @ (parts.weights[:, None] * self.x) + b.T @ du_beta
        cross = self.x.T @ (parts.weights[:, None] * parts.explicit[:, :ntheta]) + b.T @ du_lam
        dbeta = -np.linalg.solve(schur, cross)
        gradient = parts.gradient[:ntheta] + parts.gradient[ntheta:] @ dbeta
        return gradient, dbeta, self._model_order(du_lam + du_beta @ dbeta)

    def _model_order(self, du: np.ndarray) -> np.ndarray:
        """Rows of a matrix over u in the model's order of u."""
        if self.permutation is None:
            return du
        in_model_order = np.empty_like(du)
        in_model_order[self.permutation] = du
        return in_model_order

    def _parts(self, lams: np.ndarray, eta: np.ndarray, mu: np.ndarray, u: np.ndarray) -> "_Parts":
        """The gradient over (lambda, beta) and what it is made of (see the module's docstring)."""
        if self.permutation is not None:
            u = u[self.permutation]
        r = self.response
        var = r.family.variance(mu)
        weights = r.weights * var
        slope = r.weights * r.family.variance_deriv(mu) * var  # dW / d eta
        score = -r.weights * (r.y - mu)
        c = [lam * z for lam, z in zip(lams, self.z)]
        if self.system is not None:
            v, leverage, solve = self._sparse_rows(lams, weights, c)
        elif len(c) == 1:
            v, leverage, solve = self._diagonal_rows(weights, c)
        else:
            inverse = self._inverse(weights, c)
            v, leverage = self._solved_rows(inverse, c)
            solve = inverse.solve
        ntheta = len(self.z)
        explicit = np.empty((self.x.shape[0], ntheta + self.x.shape[1]))
        for t, (z, refs) in enumerate(zip(self.z, self.refs)):
            np.multiply(z, u[self.offsets[t] : self.offsets[t + 1]].take(refs), out=explicit[:, t])
        explicit[:, ntheta:] = self.x
        rhs = self._lambda_zt(lams, explicit, weights)
        for t, (z, refs) in enumerate(zip(self.z, self.refs)):
            rhs[self.offsets[t] : self.offsets[t + 1], t] += np.bincount(
                refs, weights=z * score, minlength=self.nlevels[t]
            )
        du = -solve(rhs)
        # (slope h)' d eta with d eta = explicit + Z Lambda du: the second part as (Lambda' Z' slope h)' du
        weighted = slope * leverage
        gradient = (2.0 * score + weighted) @ explicit + self._lambda_zt(lams, np.ones((weighted.size, 1)), weighted)[
            :, 0
        ] @ du
        for t, (z, refs) in enumerate(zip(self.z, self.refs)):
            gradient[t] += 2.0 * np.sum(weights * z * v[t])
        return _Parts(gradient, du, rhs, explicit, weights)

    # --- M and the entries of its inverse ------------------------------------------------
    def _inverse(self, weights: np.ndarray, c: list, kind: "type[_BlockedInverse] | None" = None) -> "_BlockedInverse":
        q1, refs0 = self.nlevels[0], self.refs[0]
        diagonal = 1.0 + np.bincount(refs0, weights=weights * c[0] ** 2, minlength=q1)
        layout = self._layout()
        m_re = layout.m_re
        rest = np.eye(m_re)
        for (t, s), flat in layout.rest_pairs.items():
            block = np.bincount(flat, weights=weights * c[t] * c[s], minlength=m_re * m_re).reshape(m_re, m_re)
            rest += block if s == t else block + block.T
        values = np.concatenate([weights * c[t] * c[0] for t in range(1, len(c))]) if m_re else np.empty(0)
        if layout.dense:
            cross = np.bincount(layout.cross_flat, weights=values, minlength=m_re * q1).reshape(m_re, q1)
        else:
            cross = layout.cross_pattern.copy()
            cross.data = np.bincount(layout.cross_entry, weights=values, minlength=cross.nnz)
        return (kind or _BlockedInverse).compute(diagonal, cross, rest)

    def _diagonal(self, weights: np.ndarray, c: list) -> np.ndarray:
        """M's diagonal for one scalar term (M is diagonal then): ``1 + sum_i w_i c_i^2`` per level."""
        return 1.0 + np.bincount(self.refs[0], weights=weights * c[0] ** 2, minlength=self.nlevels[0])

    def _diagonal_rows(self, weights: np.ndarray, c: list) -> tuple[list, np.ndarray, Callable]:
        """``v``, the leverages and ``M^-1`` as a function for one scalar term, where M is diagonal.

        The same numbers as :meth:`_inverse` and :meth:`_solved_rows` with an empty rest block (its
        terms add exact zeros), without their ~30 us of empty-block calls a gradient (cbpp, Owls).
        """
        diagonal = self._diagonal(weights, c)
        v0 = (1.0 / diagonal).take(self.refs[0]) * c[0]
        return [v0], c[0] * v0, _diagonal_solve(diagonal)

    def _layout(self) -> "_Layout":
        """Where every observation's products land in B and the rest block (found once)."""
        cached = self.__dict__.get("_blocks")
        if cached is None:
            cached = _Layout.build(self.refs, self.nlevels, self.offsets)
            object.__setattr__(self, "_blocks", cached)
        return cached

    def _solved_rows(self, inverse: "_BlockedInverse", c: list) -> tuple[list, np.ndarray]:
        """``v_t`` (per term, per observation) and the leverages ``h = sum_t c_t v_t``.

        Each observation's entries of ``(M^-1)_21`` and ``(M^-1)_22`` are read by flat positions
        found once (:meth:`_Layout.build`), one ``take`` per pair of terms.
        """
        layout = self._layout()
        cross, rest = inverse.cross.ravel(), inverse.rest.ravel()
        crosses = [cross.take(flat) for flat in layout.cross_rows]  # (M^-1)_{t, first} per observation
        v0 = inverse.first_diagonal.take(self.refs[0]) * c[0]
        for t, entries in enumerate(crosses, start=1):
            v0 += entries * c[t]
        v = [v0]
        for t, entries in enumerate(crosses, start=1):
            vt = entries * c[0]
            for s in range(1, len(c)):
                vt += rest.take(layout.rest_pairs[(t, s) if s <= t else (s, t)]) * c[s]
            v.append(vt)
        leverage = sum(ct * vt for ct, vt in zip(c, v))
        return v, leverage

    def _sparse_rows(self, lams: np.ndarray, weights: np.ndarray, c: list):
        """``v_t``, the leverages and ``M^-1`` as a function, from the sparse system's ``L D L'`` of M.

        Observation i's entries of ``M^-1`` (every pair of its terms' levels) are on M's pattern:
        one gather from the selected inverse gives them all.
        """
        system = self.system
        vals = system.weighted_factor(lams, weights)
        if vals is None:
            raise np.linalg.LinAlgError("Lambda' Z' W Z Lambda + I is not positive definite")
        entries = system.inverse_on_pattern(vals)[self._observation_entries()[0]]  # n x pairs
        _, lo, hi = self._observation_entries()
        v = [np.zeros(weights.size) for _ in c]
        for k, (a, b) in enumerate(zip(lo, hi)):
            v[a] += entries[:, k] * c[b]
            if a != b:
                v[b] += entries[:, k] * c[a]
        leverage = sum(ct * vt for ct, vt in zip(c, v))
        return v, leverage, lambda rhs: system.solve_with(vals, rhs)

    def _observation_entries(self) -> tuple:
        cached = self.__dict__.get("_entries")
        if cached is None:
            cached = self.system.observation_entries()
            object.__setattr__(self, "_entries", cached)
        return cached

    # --- products with Z Lambda -------------------------------------------------------------
    def _lambda_zt(self, lams: np.ndarray, columns: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """``Lambda' Z' W columns`` (q x k; ``W = diag(weights)``, I when None), by one sparse product per
        term, or one compiled pass over the observations for a large model (the same sums in the same order)."""
        kernel = self._compiled_columns()
        if kernel is not None and weights is not None:
            out = np.empty((int(self.offsets[-1]), columns.shape[1]))
            kernel(*self._z_rows(), weights, columns, out)
            for t in range(len(self.z)):
                out[self.offsets[t] : self.offsets[t + 1]] *= lams[t]
            return out
        if weights is not None:
            columns = weights[:, None] * columns
        out = np.empty((int(self.offsets[-1]), columns.shape[1]))
        for t, zt in enumerate(self._transposed()):
            out[self.offsets[t] : self.offsets[t + 1]] = lams[t] * (zt @ columns)
        return out

    def _compiled_columns(self):
        """:func:`._pirls_kernels.weighted_columns` compiled where it pays (:func:`.pirls_scalar._compiled_pays`
        over the products' multiply-adds), else None."""
        if "_columns_kernel" not in self.__dict__:
            kernel = None
            small = any(q * self.x.shape[0] <= _SMALL_DENSE for q in self.nlevels)  # a dense Z_t' adds in BLAS's order
            if _compiled_pays(self.x.shape[0] * len(self.z) * (self.x.shape[1] + len(self.z))) and not small:
                from . import _pirls_kernels

                kernel = _pirls_kernels.compiled("weighted_columns")
            object.__setattr__(self, "_columns_kernel", kernel)
        return self.__dict__["_columns_kernel"]

    def _z_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Z's non-zeros per observation: its column of each term (n x terms) and the values."""
        cached = self.__dict__.get("_rows")
        if cached is None:
            rows = np.column_stack([o + r for o, r in zip(self.offsets[:-1], self.refs)]).astype(np.int64)
            cached = (np.ascontiguousarray(rows), np.ascontiguousarray(np.column_stack(self.z), dtype=float))
            object.__setattr__(self, "_rows", cached)
        return cached

    def _transposed(self) -> list:
        """Each term's ``Z_t'`` (levels x n) as a sparse matrix, built on first use."""
        cached = self.__dict__.get("_zt")
        if cached is None:
            import scipy.sparse as sp

            n = self.x.shape[0]
            cached = [
                small_dense(sp.csr_array((z, (refs, np.arange(n))), shape=(q, n)))
                for z, refs, q in zip(self.z, self.refs, self.nlevels)
            ]
            object.__setattr__(self, "_zt", cached)
        return cached


@dataclass(frozen=True, eq=False)
class _Parts:
    """The gradient over (lambda, beta) and the pieces :meth:`LaplaceGradient.profiled` reuses."""

    gradient: np.ndarray
    du: np.ndarray  # d u / d (lambda, beta) at fixed beta (rows in this gradient's order of u)
    rhs: np.ndarray  # the mode equation's right-hand sides: r_t, then B = Lambda' Z' W X
    explicit: np.ndarray  # d eta / d (lambda, beta) at fixed u
    weights: np.ndarray


# B is held dense when it has at most this many entries or is at least this dense
_DENSE_B_ENTRIES = 10_000
_DENSE_B_SHARE = 0.1


@dataclass(frozen=True, eq=False)
class _Layout:
    """Flat positions of the observations' products in B (dense, or the data of a fixed CSR pattern)
    and in the rest block, per pair of rest terms."""

    m_re: int
    dense: bool
    cross_flat: np.ndarray | None
    cross_pattern: object
    cross_entry: np.ndarray | None
    rest_pairs: dict
    cross_rows: tuple  # per rest term, each observation's flat position in a dense m_re x q1 block

    @classmethod
    def build(cls, refs, nlevels, offsets) -> "_Layout":
        import scipy.sparse as sp

        q1 = nlevels[0]
        m_re = int(offsets[-1] - q1)
        index = [offsets[t] - q1 + refs[t] for t in range(1, len(refs))]
        rest_pairs = {(t, s): index[t - 1] * m_re + index[s - 1] for t in range(1, len(refs)) for s in range(1, t + 1)}
        rows = np.concatenate(index) if index else np.empty(0, dtype=np.intp)
        cols = np.tile(refs[0], len(index))
        flat = rows * q1 + cols
        cross_rows = tuple(rows_t * q1 + refs[0] for rows_t in index)  # in the dense (M^-1)_21
        unique, entry = np.unique(flat, return_inverse=True)
        dense = m_re * q1 <= _DENSE_B_ENTRIES or unique.size >= _DENSE_B_SHARE * m_re * q1
        if dense:
            return cls(m_re, True, flat, None, None, rest_pairs, cross_rows)
        pattern = sp.csr_array((np.zeros(unique.size), (unique // q1, unique % q1)), shape=(m_re, q1))
        pattern.sort_indices()  # unique flat positions are row-major: CSR order already
        return cls(m_re, False, None, pattern, entry.ravel(), rest_pairs, cross_rows)


def _diagonal_solve(diagonal: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """``rhs -> D^-1 rhs`` for a diagonal M (one scalar term)."""
    return lambda rhs: rhs / diagonal[:, None]


def _schur_complement(diagonal: np.ndarray, b, r: np.ndarray) -> tuple[object, np.ndarray]:
    """``(B D^-1, R - B D^-1 B')`` of ``[[D, B'], [B, R]]`` with ``D`` diagonal; ``B`` dense or sparse
    (then ``B D^-1`` is sparse on B's pattern)."""
    if isinstance(b, np.ndarray):
        scaled = b / diagonal
        return scaled, r - scaled @ b.T
    scaled = b.copy()
    scaled.data = scaled.data / diagonal[scaled.indices]
    return scaled, r - (scaled @ b.T).toarray()


@dataclass(frozen=True, eq=False)
class _BlockedInverse:
    """``M^-1`` of ``M = [[D, B'], [B, R]]`` (D diagonal, B dense or sparse): its first block's diagonal,
    ``(M^-1)_21`` (dense) and ``(M^-1)_22``."""

    diagonal: np.ndarray
    scaled: object  # B D^-1 (dense, or sparse as B)
    b: object
    first_diagonal: np.ndarray
    cross: np.ndarray
    rest: np.ndarray

    @classmethod
    def compute(cls, diagonal: np.ndarray, b, r: np.ndarray) -> "_BlockedInverse":
        scaled, schur = _schur_complement(diagonal, b, r)
        if schur.size:  # LAPACK directly: numpy's wrappers cost ~0.1 ms a call more at VerbAgg's 24 x 24
            lower, info = lapack.dpotrf(schur, lower=1, clean=1)
            if info == 0:
                lower, info = lapack.dtrtri(lower, lower=1)
            if info != 0:
                raise np.linalg.LinAlgError("Lambda' Z' W Z Lambda + I is not positive definite")
            rest = lower.T @ lower
        else:
            rest = schur
        cross = -np.asarray(scaled.T @ rest).T  # -(M^-1)_22 B D^-1, dense m_re x q1
        if isinstance(b, np.ndarray):
            first_diagonal = 1.0 / diagonal - np.einsum("rl,rl->l", scaled, cross)
        else:
            coo = scaled.tocoo()
            first_diagonal = 1.0 / diagonal - np.bincount(
                coo.col, weights=coo.data * cross[coo.row, coo.col], minlength=diagonal.size
            )
        return cls(diagonal, scaled, b, first_diagonal, cross, rest)

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """``M^-1 rhs`` (first-term rows first)."""
        q1 = self.diagonal.size
        first, second = rhs[:q1], rhs[q1:]
        rest = self.rest @ (second - self.scaled @ first)
        return np.vstack([(first - self.b.T @ rest) / self.diagonal[:, None], rest])

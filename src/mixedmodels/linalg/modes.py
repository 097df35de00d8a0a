"""The spherical random effects u from the rest block's solution: the big term's by its per-level factors.

Shared by the dense factor (:class:`.blocked.Factorization`) and the sparse
one (:class:`.sparse_rest.SparseFactorization`): once the rest terms'
``u_rest`` and ``beta`` are known, the big term's levels are independent,

    u1_l = (L11_l L11_l')^-1 lam1' (c_l - A21_l' [Lambda_rest u_rest; beta]),

with ``c_l`` the big term's part of ``Z1' y`` (the y row of A21).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from . import _level_kernels

__all__ = ["spherical_modes"]


def spherical_modes(
    cp: Any, theta: np.ndarray, l11: np.ndarray, u_rest_flat: np.ndarray, beta: np.ndarray
) -> list[np.ndarray]:
    """Spherical random effects per term ((q, k) arrays, block order) given the rest terms' and beta."""
    u_rest = _split_terms(u_rest_flat, cp.rest_terms)
    b_and_beta = np.concatenate([_spherical_to_b(u_rest, cp.rest_terms, theta), beta])
    resid = _last_row(cp.a21) - _all_but_last_row_product(cp.a21, b_and_beta)
    rhs = np.asarray(resid).reshape(cp.first.nlevels, cp.first.ncols)
    return [_first_block_solve(l11, cp.first.scaled_lam(theta), rhs), *u_rest]


def _first_block_solve(l11: np.ndarray, lam: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``(L11 L11')^-1 lam' rhs_l`` per level of the big term."""
    if l11.ndim == 3 and l11.shape[1] == 2:
        kernel = _level_kernels.compiled_if_loaded("solve_2x2")
        if kernel is not None:
            out = np.empty((l11.shape[0], 2))
            kernel(np.ascontiguousarray(l11), np.ascontiguousarray(lam, dtype=float), np.ascontiguousarray(rhs), out)
            return out
    t = rhs @ lam  # rows: lam' rhs_l
    if l11.ndim == 1:
        return t / l11[:, None] ** 2
    w = np.linalg.solve(l11, t[:, :, None])
    return np.linalg.solve(np.swapaxes(l11, 1, 2), w)[:, :, 0]


def _last_row(mat: np.ndarray | sp.csr_array) -> np.ndarray:
    """The y row of a (possibly sparse) block, as a dense vector."""
    if isinstance(mat, np.ndarray):
        return mat[-1]
    return mat[[-1], :].toarray().ravel()


def _all_but_last_row_product(mat: np.ndarray | sp.csr_array, v: np.ndarray) -> np.ndarray:
    """``mat[:-1].T @ v`` without copying a sparse ``mat``'s rows (slicing a CSR copies them: ~0.5 GB for the
    A21 of a crossed design with 40M non-zeros); the last row meets a zero, which adds exactly nothing."""
    if isinstance(mat, np.ndarray):
        return mat[:-1].T @ v
    return mat.T @ np.append(v, 0.0)


def _split_terms(u: np.ndarray, terms: tuple[Any, ...]) -> list[np.ndarray]:
    """Split a stacked random-effects vector into one (q, k) array per term."""
    out, offset = [], 0
    for term in terms:
        out.append(u[offset : offset + term.size].reshape(term.nlevels, term.ncols))
        offset += term.size
    return out


def _spherical_to_b(us: list[np.ndarray], terms: tuple[Any, ...], theta: np.ndarray) -> np.ndarray:
    """Stacked ``b = Lambda u`` for the given terms, in the units of the scaled columns."""
    parts = [u @ term.scaled_lam(theta).T for u, term in zip(us, terms)]
    return np.concatenate([p.ravel() for p in parts]) if parts else np.empty(0)

"""Conditional covariances of the spherical random effects, ``(L_theta L_theta')^-1``.

lme4's ``ranef(m, condVar = TRUE)`` reports ``sigma^2 Lambda (L_theta L_theta')^-1 Lambda'``
per level, where ``L_theta`` is the random-effects part of the Cholesky factor.
With ``L_theta = [[L11, 0], [L21, L22]]`` the inverse is
``[[L11^-1, 0], [-L22^-1 L21 L11^-1, L22^-1]]`` and the diagonal blocks of
``L_theta^-T L_theta^-1`` follow from the columns of those two pieces.
Only called on request (it touches q-sized dense arrays).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.linalg import solve_triangular

from .blocked import Factorization, _scale_rest

__all__ = ["conditional_variances"]


def _first_block_inverse(l11: np.ndarray) -> np.ndarray:
    """``(L11_l L11_l')^-1`` per level, shape (q, k, k)."""
    if l11.ndim == 1:
        return (1.0 / l11**2)[:, None, None]
    inv = np.linalg.inv(l11)
    return np.einsum("qji,qjk->qik", inv, inv)


def _column_block_grams(mat: np.ndarray, k: int) -> np.ndarray:
    """``M[:, block]' M[:, block]`` for consecutive column blocks of width k, shape (q, k, k)."""
    blocks = mat.reshape(mat.shape[0], -1, k)
    return np.einsum("mqi,mqj->qij", blocks, blocks)


def conditional_variances(factor: Factorization) -> list[np.ndarray]:
    """Diagonal blocks of ``(L_theta L_theta')^-1``, one (levels, k, k) array per term.

    These are conditional covariances of the spherical random effects u, which
    do not depend on how the columns were scaled; ``b = Lambda u``.
    """
    factor = factor.in_original_order()
    cp = factor.crossprods
    first, nre = cp.first, cp.nre_rest
    m_inv = _first_block_inverse(factor.l11)
    if nre == 0:
        return [m_inv]
    lam1 = first.scaled_lam(factor.theta)
    # T = A21r Lambda_1 M^-1 (rest random-effect rows only), then D2 and L22r^-1 on the left
    weights = np.einsum("ij,qjk->qik", lam1, m_inv)
    a21r = cp.a21[:nre]
    if isinstance(a21r, np.ndarray):
        part = a21r.reshape(nre, first.nlevels, first.ncols)
        t = np.einsum("mqi,qij->mqj", part, weights).reshape(nre, -1)
    else:
        wmat = sp.bsr_array(
            (weights, np.arange(first.nlevels), np.arange(first.nlevels + 1)), shape=(first.size, first.size)
        )
        t = (a21r @ wmat).toarray()
    _scale_rest(t, cp.rest_terms, factor.theta, "rows")
    l22r = factor.l22[:nre, :nre]
    g = solve_triangular(l22r, t, lower=True)
    out = [m_inv + _column_block_grams(g, first.ncols)]
    h = solve_triangular(l22r, np.eye(nre), lower=True)
    offset = 0
    for term in cp.rest_terms:
        out.append(_column_block_grams(h[:, offset : offset + term.size], term.ncols))
        offset += term.size
    return out

"""Kenward-Roger adjusted covariance of beta and denominator degrees of freedom.

Kenward & Roger (1997, Biometrics 53, 983-997), in the linear
parameterisation pbkrtest uses: the marginal covariance of y is

    Sigma = sum_r s_r G_r,   G_r = Z_t (I_levels (x) E_r) Z_t'  (one per element of
                                   each term's covariance matrix),
                              G_res = W^-1                       (the residual variance),

with ``E_r`` the symmetric indicator of element ``(i, j)``.  With
``Phi = (X' Sigma^-1 X)^-1`` (the usual ``vcov``),

    P_r  = -X' Sigma^-1 G_r Sigma^-1 X
    Q_rs =  X' Sigma^-1 G_r Sigma^-1 G_s Sigma^-1 X
    I_rs =  1/2 tr(Sigma^-1 G_r Sigma^-1 G_s) - tr(Phi Q_rs) + 1/2 tr(Phi P_r Phi P_s)

(the expected REML information), ``W = I^-1`` and the adjusted covariance is

    Phi_A = Phi + 2 Phi [ sum_rs W_rs (Q_rs - P_r Phi P_s) ] Phi.

For a hypothesis ``L beta = 0`` of rank ``l``, with ``Theta = L'(L Phi L')^-1 L``,
``A1 = sum W_rs tr(Theta Phi P_r Phi) tr(Theta Phi P_s Phi)`` and
``A2 = sum W_rs tr(Theta Phi P_r Phi Theta Phi P_s Phi)``, the denominator df
``m`` and F scaling ``lambda`` follow the paper's equations (see
:meth:`KenwardRoger.adjustment`).

Everything is computed in the space of the q random effects, never with
n x n matrices: ``Sigma^-1`` enters only through ``Z' Sigma^-1 Z``,
``Z' Sigma^-1 X`` and ``X' Sigma^-1 X`` (Woodbury), and
``Sigma^-1 W^-1 = (I - Sigma^-1 Z G Z') / sigma^2`` handles the residual
parameter.  The cost is a few dense q x q matrices, so q is limited.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy import linalg

from ..design.covariance import lower_triangle
from ..errors import MixedModelsError
from ..fitted import MixedFit


__all__ = ["KenwardRoger", "compute_kenward_roger", "MAX_RANDOM_EFFECTS"]

# Dense q x q work arrays: 3000 random effects take about 70 MB each.
MAX_RANDOM_EFFECTS = 3000


@dataclass(frozen=True, eq=False)
class KenwardRoger:
    """Kenward-Roger building blocks of a REML fit.

    Attributes
    ----------
    vcov : ndarray (p, p)
        Unadjusted covariance ``Phi`` of the fixed effects.
    vcov_adjusted : ndarray (p, p)
        Adjusted covariance ``Phi_A`` (pbkrtest's ``vcovAdj``).
    P : ndarray (m, p, p)
        ``P_r`` for the m variance parameters.
    W : ndarray (m, m)
        Inverse expected information of the variance parameters.
    """

    vcov: np.ndarray
    vcov_adjusted: np.ndarray
    P: np.ndarray
    W: np.ndarray

    def adjustment(self, L: np.ndarray) -> tuple[float, float]:
        """Denominator df ``m`` and F scaling ``lambda`` for the hypothesis ``L beta = 0``.

        ``L`` is ``(l, p)`` of full row rank (or a single row).
        """
        L = np.atleast_2d(np.asarray(L, dtype=float))
        rank = L.shape[0]
        phi = self.vcov
        theta = L.T @ np.linalg.solve(L @ phi @ L.T, L)
        m_r = np.einsum("ij,jk,rkl,lm->rim", theta, phi, self.P, phi)  # Theta Phi P_r Phi
        traces = np.einsum("rii->r", m_r)
        a1 = float(traces @ self.W @ traces)
        a2 = float(np.einsum("rs,rij,sji->", self.W, m_r, m_r))
        return _kr_df_and_scale(a1, a2, rank)

    def df(self, L: np.ndarray) -> np.ndarray:
        """Kenward-Roger df of each row of ``L`` as a one-dimensional contrast."""
        rows = np.atleast_2d(np.asarray(L, dtype=float))
        return np.array([self.adjustment(row[None, :])[0] for row in rows])


def _kr_df_and_scale(a1: float, a2: float, q: int) -> tuple[float, float]:
    """Kenward & Roger's (1997) eqs: df ``m`` and scaling ``lambda`` from A1, A2 and rank q."""
    if not a2 > 1e-12 * max(abs(a1), 1.0):
        return np.inf, 1.0  # no variance-parameter uncertainty: the large-sample limit
    b = (a1 + 6.0 * a2) / (2.0 * q)
    g = ((q + 1.0) * a1 - (q + 4.0) * a2) / ((q + 2.0) * a2)
    denom = 3.0 * q + 2.0 * (1.0 - g)
    c1, c2, c3 = g / denom, (q - g) / denom, (q + 2.0 - g) / denom
    e_star = 1.0 / (1.0 - a2 / q)
    v0, v1, v2 = 1.0 + c1 * b, 1.0 - c2 * b, 1.0 - c3 * b
    v0 = 0.0 if abs(v0) < 1e-10 else v0
    ratio = 0.0 if (1.0 - a2 / q) == 0 and v1 == 0 else (1.0 - a2 / q) / v1
    rho = ratio**2 * v0 / v2 / q
    m = 4.0 + (q + 2.0) / (q * rho - 1.0)
    scale = 1.0 if abs(m - 4.0) < 1e-2 else m / (e_star * (m - 2.0))
    return float(m), float(scale)


# --- the building blocks -------------------------------------------------------------


@dataclass(frozen=True)
class _Block:
    """Position of one random-effects term among the q random effects."""

    start: int
    nlevels: int
    ncols: int
    theta_start: int

    @property
    def size(self) -> int:
        return self.nlevels * self.ncols

    @property
    def rows(self) -> slice:
        return slice(self.start, self.start + self.size)


def _random_design(result: MixedFit) -> tuple[sp.csc_array, list[_Block]]:
    """Sparse Z (n x q), columns level-major within each term, and the term positions."""
    mats, blocks, start, tstart = [], [], 0, 0
    for term in result.terms:
        n, k = term.z.shape
        cols = (term.refs[:, None] * k + np.arange(k)).ravel()
        rows = np.repeat(np.arange(n), k)
        mats.append(sp.csc_array((term.z.ravel(), (rows, cols)), shape=(n, term.nlevels * k)))
        blocks.append(_Block(start, term.nlevels, k, tstart))
        start += term.nlevels * k
        tstart += term.ntheta
    return sp.hstack(mats, format="csc"), blocks


def _lambda(result: MixedFit, blocks: list[_Block]) -> sp.csr_array:
    """Block-diagonal relative covariance factor Lambda (q x q)."""
    parts = [
        sp.kron(sp.eye(b.nlevels), layout.lam(result.theta)) for b, layout in zip(blocks, result.model.crossprods.terms)
    ]
    return sp.csr_array(sp.block_diag(parts, format="csr"))


def _indicators(k: int) -> list[np.ndarray]:
    """Symmetric indicators E_ij of a k x k covariance, in lme4's theta order."""
    out = []
    for i, j in zip(*lower_triangle(k)):
        e = np.zeros((k, k))
        e[i, j] = e[j, i] = 1.0
        out.append(e)
    return out


def _check_structures(result: MixedFit) -> None:
    """Kenward-Roger needs a covariance linear in its parameters: unstructured or ``diag`` terms, no residual structure."""
    for term in result.terms:
        if term.structure.name not in ("us", "diag"):
            raise MixedModelsError(
                f"Kenward-Roger's method needs covariances linear in their parameters; {term} has a "
                f"{term.structure.name}() structure: use ddf='satterthwaite'"
            )
    if getattr(result.model, "residual", None) is not None:
        raise MixedModelsError(
            "Kenward-Roger's method is not available with a residual structure (weights= or "
            "correlation=); use ddf='satterthwaite'"
        )


def _check_size(result: MixedFit, q: int) -> None:
    if not result.REML:
        raise MixedModelsError(
            "Kenward-Roger's method is only available for REML fits; refit with REML=True or use ddf='satterthwaite'"
        )
    if q > MAX_RANDOM_EFFECTS:
        raise MixedModelsError(
            f"Kenward-Roger needs dense {q} x {q} matrices for this model's {q} random effects "
            f"(limit {MAX_RANDOM_EFFECTS}); use ddf='satterthwaite' instead"
        )


class _Sandwiches:
    """``Z' Sigma^-1 Z``, ``Z' Sigma^-1 X``, ``X' Sigma^-1 X`` and ``G = sigma^2 Lambda Lambda'``."""

    def __init__(self, result: MixedFit, use_weights: bool = True):
        _check_structures(result)
        inputs = result.model.inputs
        self.diagonal_only = [t.structure.name == "diag" for t in result.terms]
        z, self.blocks = _random_design(result)
        self.n = inputs.nobs
        w = inputs.weights if inputs.weights is not None and use_weights else np.ones(self.n)
        if np.any(w <= 0):
            raise MixedModelsError("Kenward-Roger needs positive prior weights; drop rows with zero weight")
        _check_size(result, z.shape[1])
        x = inputs.fixed.matrix
        self.sigma2 = result.sigma**2
        lam = _lambda(result, self.blocks)
        wz = sp.csc_array(z.multiply(w[:, None]))
        a = (z.T @ wz).toarray()
        zwx = np.asarray(wz.T @ x)
        xwx = x.T @ (w[:, None] * x)
        a_lam = np.asarray((lam.T @ a).T)  # A Lambda
        m = np.asarray(lam.T @ a_lam) + np.eye(a.shape[0])  # Lambda' A Lambda + I
        chol = linalg.cho_factor(m, lower=True)
        lzx = np.asarray(lam.T @ zwx)
        self.s_zz = (a - a_lam @ linalg.cho_solve(chol, a_lam.T)) / self.sigma2
        self.s_zx = (zwx - a_lam @ linalg.cho_solve(chol, lzx)) / self.sigma2
        self.s_xx = (xwx - lzx.T @ linalg.cho_solve(chol, lzx)) / self.sigma2
        self.g = sp.csr_array(lam @ lam.T) * self.sigma2


def _random_parameters(sw: _Sandwiches) -> list[tuple[_Block, np.ndarray]]:
    """(term block, k x k indicator) for every covariance element, in lme4's order (the variances only for ``diag`` terms)."""
    return [
        (b, e)
        for b, diagonal in zip(sw.blocks, sw.diagonal_only)
        for e in _indicators(b.ncols)
        if not diagonal or np.count_nonzero(e) == 1
    ]


def _apply_d(block: _Block, e: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """Rows ``block`` of ``D_r @ mat`` with ``D_r = I_levels (x) E`` (all other rows are 0)."""
    part = mat[block.rows].reshape(block.nlevels, block.ncols, -1)
    return np.einsum("ij,ljc->lic", e, part).reshape(block.size, -1)


def compute_kenward_roger(result: MixedFit, use_weights: bool = True) -> KenwardRoger:
    """Compute the Kenward-Roger adjusted covariance and building blocks of a REML fit.

    The residual block of ``Sigma`` is ``sigma^2 W^-1`` for prior weights ``W``.
    pbkrtest (0.5.2) uses ``sigma^2 I`` whatever the weights; ``use_weights=False``
    reproduces its numbers for weighted fits.
    """
    sw = _Sandwiches(result, use_weights)
    s2, s_zz, s_zx = sw.sigma2, sw.s_zz, sw.s_zx
    params = _random_parameters(sw)
    gs = np.asarray(sw.g @ s_zz)  # G S_ZZ
    gsx = np.asarray(sw.g @ s_zx)  # G S_ZX
    y = [_apply_d(b, e, s_zx) for b, e in params]  # rows of D_r S_ZX
    bmat = [_apply_d(b, e, s_zz) for b, e in params]  # rows of D_r S_ZZ
    t = [s_zz[:, b.rows] @ yr for (b, _), yr in zip(params, y)]  # S_ZZ D_r S_ZX
    m = len(params) + 1
    p_list = [-(s_zx[b.rows].T @ yr) for (b, _), yr in zip(params, y)]
    p_list.append(-(sw.s_xx - s_zx.T @ gsx) / s2)
    q = np.empty((m, m), dtype=object)
    trace = np.empty((m, m))
    for r, (br, _) in enumerate(params):
        for s, (bs, _) in enumerate(params):
            q[r, s] = y[r].T @ t[s][br.rows]
            trace[r, s] = np.sum(bmat[r][:, bs.rows] * bmat[s][:, br.rows].T)
        q[m - 1, r] = (s_zx[br.rows].T @ y[r] - gsx.T @ t[r]) / s2
        q[r, m - 1] = q[m - 1, r].T
        trace[r, m - 1] = trace[m - 1, r] = (np.trace(bmat[r][:, br.rows]) - np.sum(bmat[r] * gs[:, br.rows].T)) / s2
    q[m - 1, m - 1] = (sw.s_xx - 2.0 * s_zx.T @ gsx + gsx.T @ s_zz @ gsx) / s2**2
    trace[m - 1, m - 1] = (sw.n - 2.0 * np.trace(gs) + np.sum(gs * gs.T)) / s2**2
    phi = result.vcov.to_numpy()
    return _assemble(phi, np.array(p_list), q, trace)


def _assemble(phi: np.ndarray, p: np.ndarray, q: np.ndarray, trace: np.ndarray) -> KenwardRoger:
    """Information matrix, W and the adjusted covariance from P_r, Q_rs and the traces."""
    m = p.shape[0]
    info2 = np.empty((m, m))  # twice the expected information
    for r in range(m):
        for s in range(r, m):
            info2[r, s] = info2[s, r] = (
                trace[r, s] - 2.0 * np.sum(phi * q[r, s].T) + np.sum((phi @ p[r]) * (phi @ p[s]).T)
            )
    smallest = np.min(np.abs(np.linalg.eigvalsh(info2)))
    w = 2.0 * (np.linalg.inv(info2) if smallest > 1e-10 else np.linalg.pinv(info2))
    w = (w + w.T) / 2.0
    u = np.zeros_like(phi)
    for r in range(m):
        for s in range(m):
            u += w[r, s] * (q[r, s] - p[r] @ phi @ p[s])
    adjusted = phi + 2.0 * phi @ u @ phi
    return KenwardRoger(phi, (adjusted + adjusted.T) / 2.0, p, w)

"""Refitting a linear mixed model to new responses: one (lme4's ``refit``) or many at once.

Only the y row of the blocks ``A = [Z X y]'[Z X y]`` depends on the response:
``Z'y``, ``X'y`` and ``y'y``.  :class:`ResponseRows` computes them for one
response or for a matrix of responses (one sparse product for all), and a
refit reuses the model's design, cross-products, symbolic analysis and the
previous optimum as its start.

:func:`fit_many` fits one model to every column of a response matrix.  When
the model's first-to-rest block is held dense, the fits run together as one
batched BFGS iteration (:mod:`.linalg.blocked_batch`), with lme4's boundary
rule and convergence checks applied to each; the rare fit that does not
finish there, and every fit of a larger model, is refitted on its own.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..convergence import (
    BOUNDARY_TOLERANCE,
    GRADIENT_TOLERANCE,
    HESSIAN_TOLERANCE,
    MAX_NOBS_FOR_CHECKS,
    check_convergence,
)
from ..design.covariance import lower_triangle
from ..errors import ConvergenceWarning, MixedModelsError
from ..linalg.blocked_batch import BATCH_ENTRIES, BlockedBatch, bfgs_batch
from ..fitted import MixedFit
from ..optim import QUASI_NEWTON, OptInfo, OptimizerSettings, snap_rows_to_zero_bounds

# The model is typed Any here: its module imports the results, whose m.refit() reaches this module
# (through inference.bootstrap), so importing it even for type checking would close a cycle.
LinearMixedModel = Any

__all__ = ["ResponseRows", "ManyFits", "fit_many", "refit_lmm"]

_OFF_THE_BOUND = 0.05  # a start's zero diagonal is moved here (the moment start's floor)


class ResponseRows:
    """``Z'y``, ``X'y`` and ``y'y`` of a model for any response, in the order of its blocks.

    Z's columns are divided by the model's column scales and every row is
    multiplied by the square root of its prior weight, as in
    :meth:`.linalg.BlockedCrossProducts.build`; the offset is subtracted from y.
    """

    def __init__(self, model: LinearMixedModel) -> None:
        inputs, cp = model.inputs, model.crossprods
        self.model = model
        if getattr(model, "residual", None) is not None:  # blocks stored in pieces: rebuilt for each response
            self.exact = False
            return
        if cp.sparse_rest is not None:  # a sparse rest block: rebuilt for each response (its order found anew)
            self.exact = False
            return
        sqrtw = None if inputs.weights is None else np.sqrt(inputs.weights)
        blocks = []
        for term, layout in zip(inputs.terms, cp.terms):
            z = term.z / (layout.scales if layout.scales is not None else 1.0)
            if sqrtw is not None:
                z = z * sqrtw[:, None]
            n, k = z.shape
            cols = (term.refs[:, None] * k + np.arange(k)).ravel()
            blocks.append(sp.csr_array((z.ravel(), (np.repeat(np.arange(n), k), cols)), shape=(n, term.nlevels * k)))
        self.zt = sp.csr_array(sp.hstack(blocks, format="csr").T)
        self.xt = np.ascontiguousarray((inputs.fixed.matrix * (sqrtw[:, None] if sqrtw is not None else 1.0)).T)
        self.sqrtw, self.offset = sqrtw, inputs.offset
        self.q1 = cp.first.size
        # never trust the layout blindly: the original response must give the model's own blocks
        a21, a22 = self.blocks(inputs.y)
        self.exact = _same_rows(a21, cp.a21) and np.allclose(a22, cp.a22, rtol=1e-10, atol=1e-8 * np.abs(cp.a22).max())

    def _weighted(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=float)
        if self.offset is not None:
            y = y - (self.offset if y.ndim == 1 else self.offset[:, None])
        if self.sqrtw is not None:
            y = y * (self.sqrtw if y.ndim == 1 else self.sqrtw[:, None])
        return y

    def rows(self, responses: np.ndarray) -> np.ndarray:
        """The y rows ``[Z'y, X'y, y'y]`` (B x N) of the responses in the columns of an (n, B) array."""
        yw = self._weighted(responses)
        return np.vstack([np.asarray(self.zt @ yw), self.xt @ yw, np.einsum("ib,ib->b", yw, yw)[None]]).T

    def blocks(self, y: np.ndarray, row: np.ndarray | None = None) -> tuple[Any, np.ndarray]:
        """``a21`` and ``a22`` of the model with response ``y`` (only their y rows differ; ``row`` if known)."""
        row = self.rows(np.asarray(y, dtype=float)[:, None])[0] if row is None else row
        cp = self.model.crossprods
        a22 = cp.a22.copy()
        a22[-1, :] = a22[:, -1] = row[self.q1 :]
        return _with_last_row(cp.a21, row[: self.q1]), a22

    def model_for(self, y: np.ndarray, row: np.ndarray | None = None) -> LinearMixedModel:
        """The model with response ``y``: new y rows (``row``, if already computed), everything else shared."""
        model = self.model
        inputs = replace(model.inputs, y=np.asarray(y, dtype=float))
        if not self.exact:
            return model.rebuild(inputs=inputs)  # keeps a residual structure, started at its estimates
        a21, a22 = self.blocks(y, row)
        return replace(model, inputs=inputs, crossprods=model.crossprods.with_response(a21, a22))


def _same_rows(a: Any, b: Any) -> bool:
    if a.shape != b.shape:
        return False
    row_a = a[[-1], :].toarray().ravel() if sp.issparse(a) else np.asarray(a)[-1]
    row_b = b[[-1], :].toarray().ravel() if sp.issparse(b) else np.asarray(b)[-1]
    scale = max(float(np.abs(row_b).max(initial=0.0)), 1.0)
    return bool(np.allclose(row_a, row_b, rtol=1e-10, atol=1e-10 * scale))


def _with_last_row(a21: Any, row: np.ndarray) -> Any:
    """``a21`` with its last (y) row replaced; a sparse one keeps its pattern when the row is full there."""
    if isinstance(a21, np.ndarray):
        out = a21.copy()
        out[-1] = row
        return out
    csr = sp.csr_array(a21)
    start, stop = csr.indptr[-2], csr.indptr[-1]
    if stop - start == csr.shape[1]:  # the y row is stored complete: swap its values
        data = csr.data.copy()
        data[start:stop] = row[csr.indices[start:stop]]
        return sp.csr_array((data, csr.indices, csr.indptr), shape=csr.shape)
    return sp.csr_array(sp.vstack([csr[:-1], sp.csr_array(row[None, :])], format="csr"))


def refit_lmm(result: MixedFit, y: np.ndarray, rows: ResponseRows | None = None) -> MixedFit:
    """The model of ``result`` fitted to ``y``, from ``result``'s theta (lme4's ``refit``)."""
    rows = rows or ResponseRows(result.model)
    return rows.model_for(y).fit(start=result.theta)


# --- many responses at once -----------------------------------------------------------------
@dataclass
class ManyFits:
    """Fits of one model to the columns of a response matrix.

    Attributes
    ----------
    theta : ndarray (B, ntheta)
        Estimates in the units of the data (NaN where the fit failed).
    objective : ndarray (B,)
        REML criterion or deviance.
    beta, se : ndarray (B, p)
        Fixed effects and their standard errors.
    sigma : ndarray (B,)
    singular : ndarray of bool (B,)
    messages : list of tuple of str
        Convergence messages of each fit (lme4's checks, or the optimizer's).
    failures : list of str or None
        The error of each fit that failed, else None.
    infos : list of OptInfo
        Each fit's optimizer log (None where it failed).
    y_rows : ndarray (B, N) or None
        The responses' y rows of the blocks, when computed (batched fits).
    """

    theta: np.ndarray
    objective: np.ndarray
    beta: np.ndarray
    se: np.ndarray
    sigma: np.ndarray
    singular: np.ndarray
    messages: list
    failures: list
    infos: list
    y_rows: np.ndarray | None = None

    def result(self, model: LinearMixedModel, rows: ResponseRows, responses: np.ndarray, j: int) -> MixedFit:
        """The full results object of fit ``j`` (its blocks and one factorization at its theta)."""
        row = None if self.y_rows is None else self.y_rows[j]
        model = rows.model_for(responses[:, j], row)
        if self.y_rows is None:  # fitted one by one: the model's own results
            return model.results_from(self.infos[j])
        # the batch's estimates; the factorization is formed if the caller asks for it
        return model.results_from_estimates(self.infos[j], self.beta[j], self.sigma[j], self.objective[j])


def fit_many(
    model: LinearMixedModel,
    responses: np.ndarray,
    start: np.ndarray,
    rows: ResponseRows | None = None,
    settings: OptimizerSettings | None = None,
    checks: bool = True,
) -> ManyFits:
    """Fit ``model`` to every column of ``responses`` (n x B), each from ``start`` (theta, units of the data).

    Batched (:mod:`.linalg.blocked_batch`) when the model's ``A21`` is held
    dense and the optimizer is left to choose; otherwise one fit after another.
    ``checks=False`` skips lme4's convergence checks of the batched fits
    (their gradients and Hessians), for callers that ignore the warnings.
    """
    rows = rows or ResponseRows(model)
    settings = settings or OptimizerSettings()
    responses = np.asarray(responses, dtype=float)
    cp = model.crossprods
    if not (BlockedBatch.supports(cp) and rows.exact and settings.optimizer == "auto"):
        return _one_by_one(model, rows, responses, start, settings)
    chunk = max(1, BATCH_ENTRIES // (cp.a21.size + cp.a22.size))
    x0 = cp.to_scaled_theta(np.asarray(start, dtype=float))
    # A diagonal at exactly zero (a singular start) is a stationary point the gradient cannot leave:
    # start such coordinates a little inside, from where BFGS goes to the bound or away from it.
    x0 = np.where((model.theta_lower == 0) & (x0 == 0), _OFF_THE_BOUND, x0)
    inverse_hessian = _start_inverse_hessian(model, rows, x0)
    parts = [
        _batched(model, rows, responses[:, first : first + chunk], start, x0, inverse_hessian, settings, checks)
        for first in range(0, responses.shape[1], chunk)
    ]
    return _concatenate(parts)


def _start_inverse_hessian(model, rows: ResponseRows, x0: np.ndarray) -> np.ndarray:
    """BFGS's first inverse Hessian: the model's own at the start (central differences of the gradient),
    with each eigenvalue's magnitude floored so that it is positive definite."""
    single = BlockedBatch.from_rows(
        model.crossprods, rows.rows(model.inputs.y[:, None]), model.REML, model._log_weights()
    )
    hessian = _hessians(single, x0[None])[0]
    values, vectors = np.linalg.eigh(hessian)
    floor = 1e-6 * max(float(np.abs(values).max()), 1e-12)
    return (vectors / np.maximum(np.abs(values), floor)) @ vectors.T


def _hessians(batch: BlockedBatch, x: np.ndarray, delta: float = 1e-4) -> np.ndarray:
    """Central differences of the batched gradient at every row of ``x`` (symmetrized), as lme4's checks take them."""
    size, k = x.shape
    columns = []
    for i in range(k):
        step = np.zeros(k)
        step[i] = delta
        plus = batch.gradient(batch.factor(x + step))
        minus = batch.gradient(batch.factor(x - step))
        columns.append((plus - minus) / (2 * delta))
    hessian = np.stack(columns, axis=1)
    return (hessian + np.swapaxes(hessian, 1, 2)) / 2.0


def _one_by_one(model, rows: ResponseRows, responses: np.ndarray, start: np.ndarray, settings) -> ManyFits:
    out = _empty(model, responses.shape[1])
    for j in range(responses.shape[1]):
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                fit = rows.model_for(responses[:, j]).fit(settings=settings, start=start)
        except (MixedModelsError, np.linalg.LinAlgError, FloatingPointError, ValueError) as exc:
            out.failures[j] = f"{type(exc).__name__}: {exc}"
            continue
        _store(out, j, fit, tuple(str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)))
    return out


def _empty(model, count: int) -> ManyFits:
    ntheta, p = model.crossprods.ntheta, model.nfixef
    nan = np.full
    return ManyFits(
        nan((count, ntheta), np.nan),
        nan(count, np.nan),
        nan((count, p), np.nan),
        nan((count, p), np.nan),
        nan(count, np.nan),
        np.zeros(count, dtype=bool),
        [()] * count,
        [None] * count,
        [None] * count,
    )


def _store(out: ManyFits, j: int, fit: MixedFit, messages: tuple) -> None:
    out.theta[j], out.objective[j], out.beta[j] = fit.theta, fit.objective, fit.beta
    out.se[j], out.sigma[j], out.singular[j] = fit.se.to_numpy(), fit.sigma, fit.is_singular
    out.messages[j], out.infos[j] = messages, fit.optinfo


def _concatenate(parts: list[ManyFits]) -> ManyFits:
    if len(parts) == 1:
        return parts[0]
    rows = None if any(p.y_rows is None for p in parts) else np.concatenate([p.y_rows for p in parts])
    return ManyFits(
        *(
            np.concatenate([getattr(p, name) for p in parts])
            for name in ("theta", "objective", "beta", "se", "sigma", "singular")
        ),
        sum((p.messages for p in parts), []),
        sum((p.failures for p in parts), []),
        sum((p.infos for p in parts), []),
        rows,
    )


def _batched(
    model,
    rows: ResponseRows,
    responses: np.ndarray,
    start: np.ndarray,
    x0: np.ndarray,
    inverse_hessian: np.ndarray,
    settings: OptimizerSettings,
    checks: bool = True,
) -> ManyFits:
    """The batched BFGS fits, lme4's boundary rule and checks per fit; the rest refitted one by one."""
    y_rows = rows.rows(responses)
    batch = BlockedBatch.from_rows(model.crossprods, y_rows, model.REML, model._log_weights())
    fits = bfgs_batch(batch, x0, inverse_hessian, settings.ftol_abs, settings.maxeval)
    x = _canonical(model, fits.x)
    x, values = snap_rows_to_zero_bounds(
        lambda rows, points: batch.subset(rows).factor(points).value, x, fits.f, model.theta_lower, settings
    )
    ok = (fits.code == 1) & np.isfinite(values)
    out = _empty(model, responses.shape[1])
    out.y_rows = y_rows
    which = np.flatnonzero(ok)
    if which.size:
        final = batch.subset(which)
        state = final.factor(x[which])
        _fill_estimates(out, final, state, model, which)
        checked = checks and model.nobs <= MAX_NOBS_FOR_CHECKS
        checks = _checks(final, state, x[which], model.theta_lower) if checked else None
        start = np.asarray(start, dtype=float)
        for position, j in enumerate(which):
            gradient, hessian, messages = checks[position] if checks is not None else (None, None, ())
            out.messages[j] = messages
            out.infos[j] = OptInfo(
                QUASI_NEWTON + " (batched)",
                start.copy(),
                out.theta[j].copy(),
                float(values[j]),
                int(fits.feval[j]),
                0.0,
                1,
                "success",
                settings,
                messages,
                gradient,
                hessian,
                int(fits.geval[j]),
            )
    if not ok.all():
        redo = np.flatnonzero(~ok)
        again = _one_by_one(model, rows, responses[:, redo], start, settings)
        for position, j in enumerate(redo):
            for name in ("theta", "objective", "beta", "se", "sigma", "singular"):
                getattr(out, name)[j] = getattr(again, name)[position]
            out.messages[j], out.failures[j], out.infos[j] = (
                again.messages[position],
                again.failures[position],
                again.infos[position],
            )
    return out


def _checks(batch: BlockedBatch, state, x: np.ndarray, lower: np.ndarray) -> list:
    """lme4's convergence checks of every fit: (gradient, Hessian, messages) over its interior parameters.

    The gradients and the central-difference Hessians are computed for the
    whole batch; fits whose parameters are all interior (the usual case) are
    checked together, the others one by one by :func:`.convergence.check_convergence`.
    """
    gradients, hessians = batch.gradient(state), _hessians(batch, x)
    interior = x - lower[None, :] > BOUNDARY_TOLERANCE
    out = [None] * x.shape[0]
    finite = np.isfinite(hessians).all(axis=(1, 2)) & np.isfinite(gradients).all(axis=1)
    full = np.flatnonzero(interior.all(axis=1) & finite)
    if full.size:
        values = np.linalg.eigvalsh(hessians[full])
        for position, j in enumerate(full):
            out[j] = (gradients[j], hessians[j], _messages(gradients[j], hessians[j], values[position]))
    for j in np.flatnonzero(~(interior.all(axis=1) & finite)):
        check = check_convergence(None, x[j], lower, derivatives=(gradients[j], hessians[j]))
        out[j] = (check.gradient, check.hessian, check.messages)
    return out


def _messages(gradient: np.ndarray, hessian: np.ndarray, eigenvalues: np.ndarray) -> tuple:
    """lme4's messages for one fit whose eigenvalues are known; the full check only when one could warn."""
    largest = float(eigenvalues.max())
    clean = (
        eigenvalues.min() > HESSIAN_TOLERANCE * max(largest, 0.0)
        and eigenvalues.min() > 0
        and float(np.abs(gradient).max(initial=0.0)) <= GRADIENT_TOLERANCE
    )
    if clean:  # positive definite, well conditioned, and min(|scaled|, |gradient|) <= |gradient| is small
        return ()
    return check_convergence(
        None, np.ones(gradient.size), np.zeros(gradient.size), derivatives=(gradient, hessian)
    ).messages


def _canonical(model, x: np.ndarray) -> np.ndarray:
    """Every row's lambda with non-negative diagonal (column signs flipped), as ``canonical_theta``."""
    x = x.copy()
    for layout in model.layouts:
        k, start = layout.ncols, layout.theta_start
        r, c = lower_triangle(k)
        for column in range(k):
            diagonal = start + int(np.flatnonzero((r == column) & (c == column))[0])
            signs = np.where(x[:, diagonal] < 0, -1.0, 1.0)
            members = start + np.flatnonzero(c == column)
            x[:, members] *= signs[:, None]
    return x


def _fill_estimates(out: ManyFits, batch: BlockedBatch, state, model, which: np.ndarray) -> None:
    """theta, objective, beta, SEs, sigma and singularity of the fits ``which``, from their factors."""
    cp = model.crossprods
    nre, p = cp.nre_rest, model.nfixef
    l22 = state.l22
    lx, cy = l22[:, nre : nre + p, nre : nre + p], l22[:, -1, nre : nre + p]
    beta = np.linalg.solve(np.swapaxes(lx, 1, 2), cy[:, :, None])[:, :, 0]
    inverse = np.linalg.solve(lx, np.broadcast_to(np.eye(p), lx.shape))
    vcov_unscaled = np.swapaxes(inverse, 1, 2) @ inverse
    dof = model.n_likelihood - (p if model.REML else 0)
    sigma = np.abs(l22[:, -1, -1]) / np.sqrt(dof)
    theta = np.array([cp.from_scaled_theta(row) for row in state.x])
    out.theta[which], out.objective[which], out.beta[which] = theta, state.value, beta
    out.se[which] = sigma[:, None] * np.sqrt(np.diagonal(vcov_unscaled, axis1=1, axis2=2))
    out.sigma[which] = sigma
    out.singular[which] = np.any(theta[:, model.theta_lower == 0] < BOUNDARY_TOLERANCE, axis=1)

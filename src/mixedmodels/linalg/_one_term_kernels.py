"""Compiled loops for a GLMM with one scalar random-effects term: the whole fit in numba.

With one scalar term ``(1 | g)`` (or ``(0 + x | g)``) the random-effects block
``Lambda' Z' W Z Lambda + I`` is diagonal: each level's mode solves its own
one-dimensional problem, and everything PIRLS, the Laplace deviance and its
gradient need are sums over the rows of each level.  On arrays of 15-60
entries (cbpp) numpy's per-call cost is most of a fit's time; these loops do
the same arithmetic without it.

Notation (``x`` is theta in the units of the scaled column ``z``; level ``j``
of row ``i`` is ``g_i``; ``eta_i = fixed_i + x z_i u_j``):

* per row: the mean ``mu``, squared deviance residual, score
  ``r = wt (y - mu) mu' / V``, expected weight ``w = wt mu'^2 / V`` (lme4's
  PIRLS weight), observed weight ``o = -dr/deta`` and ``dw = dw/deta``;
* the penalized deviance ``P = sum dev + ||u||^2``; the modes make its
  half-gradient ``S_j = u_j - x sum_j r z`` zero, with half-Hessian
  ``h_j = 1 + x^2 sum_j o z^2``;
* the Laplace deviance ``F = P + const + sum_j log d_j``, ``d_j = 1 + x^2 sum_j w z^2``;
  its total derivative adds to the partial derivative of ``P`` (the modes'
  own derivative is zero there) the derivative of ``log d_j`` through ``w(eta)``,
  with ``d u / d(x, beta) = -h^-1 dS/d(x, beta)`` (implicit function theorem).

Stage 1 (``nAGQ = 0``) minimizes ``F`` with beta and u found together by
Newton steps on ``P`` (a ``p x p`` Schur complement of the diagonal block).

Family codes: 0 binomial, 1 Poisson, 2 negative binomial with a known
``nbtheta`` (variance ``mu + mu^2 / nbtheta``; the other families ignore it);
link codes: 0 logit, 1 probit, 2 cloglog, 3 log.  Each kernel is a plain-Python function; :func:`compiled`
compiles them (None without numba or with ``MIXEDMODELS_NO_NUMBA=1``).
"""

from __future__ import annotations

import math

import numpy as np

from .jit import jit

__all__ = ["compiled", "FAMILIES", "LINKS"]

FAMILIES = {"binomial": 0, "poisson": 1, "Negative Binomial": 2}
LINKS = {"logit": 0, "probit": 1, "cloglog": 2, "log": 3}
_EPS = float(np.finfo(float).eps)
_PROBIT_BOUND = 8.125890664701906  # -qnorm(eps), as families._PROBIT_BOUND
_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)
# Stage 2 keeps its Hessian over Newton steps shorter than this (units of theta and of stage 1's SEs):
# the steps then converge linearly at a rate of the Hessian's relative change; the Hessian is formed again
# at the optimum in any case (cbpp: 3 -> 2 Hessians of 10 gradients each)
_REUSE = 0.5
# Stage 2 stops at a Newton decrement g' H^-1 g below this: the deviance is then within half of it of the
# optimum (the general path's BFGS and Newton polish end ~1e-13 from it on cbpp); the gradient's rounding
# (~1e-7 on cbpp's cloglog fit) puts a floor of ~2e-15 under it
_DECREMENT = 1e-14


def _row(eta, y, wt, sat, fam, link, nbtheta):
    """``(mu, dev, r, w, o, dw)`` of one row at eta (see the module's notation)."""
    if fam == 0 and link == 0:  # canonical: mu' = V(mu), o = w (as PIRLS's natural case), no divisions
        mu = 1.0 / (1.0 + math.exp(-min(max(eta, -30.0), 30.0)))
        var = mu * (1.0 - mu)
        kernel = (y * math.log(mu) if y != 0.0 else 0.0) + ((1.0 - y) * math.log1p(-mu) if y != 1.0 else 0.0)
        w = wt * var
        return mu, 2.0 * wt * (sat - kernel), wt * (y - mu), w, w, w * (1.0 - 2.0 * mu)
    if fam == 1 and link == 3:
        mu = max(math.exp(min(eta, 700.0)), _EPS)
        kernel = (y * math.log(mu) if y != 0.0 else 0.0) - mu
        w = wt * mu
        return mu, 2.0 * wt * (sat - kernel), wt * (y - mu), w, w, w
    if link == 1:
        mu = 0.5 * math.erfc(-min(max(eta, -_PROBIT_BOUND), _PROBIT_BOUND) / _SQRT2)
        m1 = max(math.exp(-0.5 * min(eta * eta, 1e300)) / _SQRT2PI, _EPS)
        m2 = -eta * m1
    elif link == 2:
        e = math.exp(min(eta, 700.0))
        mu = min(max(-math.expm1(-e), _EPS), 1.0 - _EPS)
        m1 = max(e * math.exp(-e), _EPS)
        m2 = m1 * (1.0 - e)
    else:
        mu = max(math.exp(min(eta, 700.0)), _EPS)
        m1 = mu
        m2 = mu
    if fam == 0:
        var, dvar = mu * (1.0 - mu), 1.0 - 2.0 * mu
        kernel = (y * math.log(mu) if y != 0.0 else 0.0) + ((1.0 - y) * math.log1p(-mu) if y != 1.0 else 0.0)
    elif fam == 2:  # as families.NegativeBinomial's kernel, xlogy(y, mu) - (y + theta) log(mu + theta)
        var, dvar = mu + mu * mu / nbtheta, 1.0 + 2.0 * mu / nbtheta
        kernel = (y * math.log(mu) if y != 0.0 else 0.0) - (y + nbtheta) * math.log(mu + nbtheta)
    else:
        var, dvar = mu, 1.0
        kernel = (y * math.log(mu) if y != 0.0 else 0.0) - mu
    inv = 1.0 / var
    dev = 2.0 * wt * (sat - kernel)
    w = wt * m1 * m1 * inv
    r = wt * (y - mu) * m1 * inv
    curve = m2 * inv - m1 * m1 * dvar * inv * inv
    o = w - wt * (y - mu) * curve
    dw = wt * m1 * inv * (2.0 * m2 - m1 * m1 * dvar * inv)
    return mu, dev, r, w, o, dw


def _newton_weight(w, o):
    """The weight of a Newton step: the observed information where clearly positive, else lme4's."""
    return o if o > 1e-3 * w else w


def _level_sums(x, fixed, u, y, wt, sat, z, g, fam, link, nbtheta, pen, score, hess):
    """Per level: ``pen = sum dev + u^2``, ``score = S_j``, ``hess = h_j`` (Newton weights) at the modes u."""
    for j in range(u.size):
        pen[j] = u[j] * u[j]
        score[j] = u[j]
        hess[j] = 1.0
    for i in range(y.size):
        j = g[i]
        _, dev, r, w, o, _ = _row(fixed[i] + x * z[i] * u[j], y[i], wt[i], sat[i], fam, link, nbtheta)
        pen[j] += dev
        score[j] -= x * r * z[i]
        hess[j] += x * x * _newton_weight(w, o) * z[i] * z[i]


def _modes(x, fixed, u, y, wt, sat, z, g, fam, link, nbtheta, tol, maxit):
    """The conditional modes at (x, fixed): Newton steps level by level, a level's step halved while its
    penalized deviance rises (one pass over the rows an iteration: the sums at the new modes are the next
    step's); the last step (below ``tol``) is taken too.  Returns the iterations, -1 if not converged."""
    q = u.size
    pen, score, hess = np.empty(q), np.empty(q), np.empty(q)
    old, old_pen, step = np.empty(q), np.empty(q), np.empty(q)
    _level_sums(x, fixed, u, y, wt, sat, z, g, fam, link, nbtheta, pen, score, hess)
    for it in range(maxit):
        size = 0.0
        for j in range(q):
            step[j] = -score[j] / hess[j]
            size = max(size, abs(step[j]))
        if not math.isfinite(size):
            return -1
        if size < tol:
            for j in range(q):
                u[j] += step[j]
            return it + 1
        old[:] = u
        old_pen[:] = pen
        u += step
        for _ in range(40):
            _level_sums(x, fixed, u, y, wt, sat, z, g, fam, link, nbtheta, pen, score, hess)
            rising = False
            for j in range(q):
                if not pen[j] <= old_pen[j] + 1e-10 * (1.0 + abs(old_pen[j])):
                    rising = True
                    step[j] *= 0.5
                    u[j] = old[j] + step[j]
            if not rising:
                break
    return -1


def _laplace_parts(x, fixed, u, y, wt, sat, z, g, xmat, fam, link, nbtheta, lev):
    """One pass at the modes: the deviance and per-level sums into ``lev`` (q x (5 + p)):
    ``u^2 + dev``, ``sum r z``, ``sum o z^2``, ``sum w z^2``, unused, ``sum o z X_k``."""
    p = xmat.shape[1]
    lev[:, :] = 0.0
    for j in range(u.size):
        lev[j, 0] = u[j] * u[j]
    for i in range(y.size):
        j = g[i]
        _, dev, r, w, o, _ = _row(fixed[i] + x * z[i] * u[j], y[i], wt[i], sat[i], fam, link, nbtheta)
        lev[j, 0] += dev
        lev[j, 1] += r * z[i]
        lev[j, 2] += o * z[i] * z[i]
        lev[j, 3] += w * z[i] * z[i]
        for k in range(p):
            lev[j, 5 + k] += o * z[i] * xmat[i, k]


def laplace(x, beta, u, y, wt, sat, z, g, xmat, off, fam, link, nbtheta, const, tol, maxit, grad, dudp):
    """The Laplace deviance at (x, beta) with the modes found from ``u`` (updated), its gradient over
    (x, beta) into ``grad`` (size 1 + p) and the modes' derivatives into ``dudp`` (q x (1 + p): PIRLS's
    start nearby by a first-order prediction).  inf where PIRLS fails."""
    n, p, q = y.size, xmat.shape[1], u.size
    fixed = off.copy()
    for i in range(n):
        for k in range(p):
            fixed[i] += xmat[i, k] * beta[k]
    if _modes(x, fixed, u, y, wt, sat, z, g, fam, link, nbtheta, tol, maxit) < 0:
        return np.inf
    lev = np.empty((q, 5 + p))
    _laplace_parts(x, fixed, u, y, wt, sat, z, g, xmat, fam, link, nbtheta, lev)
    value = const
    grad[:] = 0.0
    for j in range(q):
        d = 1.0 + x * x * lev[j, 3]
        h = 1.0 + x * x * lev[j, 2]
        value += lev[j, 0] + math.log(d)
        grad[0] += 2.0 * x * lev[j, 3] / d
        lev[j, 3] = d
        lev[j, 4] = (lev[j, 1] - x * u[j] * lev[j, 2]) / h  # du_j / dx
        dudp[j, 0] = lev[j, 4]
        for k in range(p):
            lev[j, 5 + k] = -x * lev[j, 5 + k] / h  # du_j / dbeta_k
            dudp[j, 1 + k] = lev[j, 5 + k]
    for i in range(n):
        j = g[i]
        _, _, r, _, _, dw = _row(fixed[i] + x * z[i] * u[j], y[i], wt[i], sat[i], fam, link, nbtheta)
        c = x * x * z[i] * z[i] * dw / lev[j, 3]
        grad[0] += -2.0 * r * z[i] * u[j] + c * z[i] * (u[j] + x * lev[j, 4])
        for k in range(p):
            grad[1 + k] += -2.0 * r * xmat[i, k] + c * (xmat[i, k] + x * z[i] * lev[j, 5 + k])
    return value


def _joint_sums(x, off, beta, u, y, wt, sat, z, g, xmat, fam, link, nbtheta, exact, lev, hbb, sb, rows, sbu):
    """Penalized deviance of (beta, u) and the Newton system's pieces.

    ``lev`` (q x (5 + p)): ``S_j``, ``h_j``, ``sum w z^2``, ``sum r z``, ``sum o z^2``, ``C_jk = x sum o z X_k``;
    ``hbb = sum o X X'``, ``sb = -sum r X``, ``sbu = sum o z u X`` (stage 1's derivative); ``rows`` (n x 2)
    each row's ``r`` and ``dw``.  Newton weights (``exact`` False) or the observed ones.
    """
    p = xmat.shape[1]
    lev[:, :] = 0.0
    hbb[:, :] = 0.0
    sb[:] = 0.0
    sbu[:] = 0.0
    pen = 0.0
    for j in range(u.size):
        lev[j, 0] = u[j]
        lev[j, 1] = 1.0
        pen += u[j] * u[j]
    for i in range(y.size):
        j = g[i]
        eta = off[i] + x * z[i] * u[j]
        for k in range(p):
            eta += xmat[i, k] * beta[k]
        _, dev, r, w, o, dw = _row(eta, y[i], wt[i], sat[i], fam, link, nbtheta)
        rows[i, 0] = r
        rows[i, 1] = dw
        wn = o if exact else _newton_weight(w, o)
        ozu = o * z[i] * u[j]
        pen += dev
        lev[j, 0] -= x * r * z[i]
        lev[j, 1] += x * x * wn * z[i] * z[i]
        lev[j, 2] += w * z[i] * z[i]
        lev[j, 3] += r * z[i]
        lev[j, 4] += o * z[i] * z[i]
        for k in range(p):
            lev[j, 5 + k] += x * wn * z[i] * xmat[i, k]
            sb[k] -= r * xmat[i, k]
            sbu[k] += ozu * xmat[i, k]
            for m in range(k + 1):
                hbb[k, m] += wn * xmat[i, k] * xmat[i, m]
    for k in range(p):
        for m in range(k):
            hbb[m, k] = hbb[k, m]
    return pen


def _cholesky_solve(a, b):
    """Solve ``a s = b`` (a small, symmetric positive definite; overwritten by its factor); False if it is not."""
    p = a.shape[0]
    for k in range(p):
        s = a[k, k]
        for m in range(k):
            s -= a[k, m] * a[k, m]
        if not s > 0.0:
            return False
        a[k, k] = math.sqrt(s)
        for i in range(k + 1, p):
            t = a[i, k]
            for m in range(k):
                t -= a[i, m] * a[k, m]
            a[i, k] = t / a[k, k]
    _substitute(a, b)
    return True


def least_squares(xmat, r, beta):
    """``beta = (X'X)^-1 X' r`` by the normal equations' Cholesky factor (X has full column rank: the design
    checked it); False, beta unset, if ``X'X`` is not numerically positive definite."""
    n, p = xmat.shape
    a = np.zeros((p, p))
    b = np.zeros(p)
    for i in range(n):
        for k in range(p):
            xik = xmat[i, k]
            b[k] += xik * r[i]
            for m in range(k + 1):
                a[k, m] += xik * xmat[i, m]
    if not _cholesky_solve(a, b):
        return False
    beta[:] = b
    return True


def _substitute(factor, b):
    """``b <- (L L')^-1 b`` in place, ``L`` the lower triangle of ``factor``: forward, then back substitution."""
    p = factor.shape[0]
    for k in range(p):
        t = b[k]
        for m in range(k):
            t -= factor[k, m] * b[m]
        b[k] = t / factor[k, k]
    for k in range(p - 1, -1, -1):
        t = b[k]
        for m in range(k + 1, p):
            t -= factor[m, k] * b[m]
        b[k] = t / factor[k, k]


def _schur_step(lev, hbb, rhs_u, rhs_b, du, db, schur):
    """``[du; db] = -H^-1 [rhs_u; rhs_b]`` for ``H = [diag(h), C; C', hbb]`` (h, C in ``lev``);
    ``schur`` gets ``hbb - C' h^-1 C`` (then its factor).  False if that is not positive definite."""
    q, p = lev.shape[0], hbb.shape[0]
    schur[:, :] = hbb
    for k in range(p):
        db[k] = -rhs_b[k]
    for j in range(q):
        h = lev[j, 1]
        for k in range(p):
            c = lev[j, 5 + k] / h
            db[k] += c * rhs_u[j]
            for m in range(p):
                schur[k, m] -= c * lev[j, 5 + m]
    if not _cholesky_solve(schur, db):
        return False
    for j in range(q):
        t = rhs_u[j]
        for k in range(p):
            t += lev[j, 5 + k] * db[k]
        du[j] = -t / lev[j, 1]
    return True


def _joint_modes(x, beta, u, y, wt, sat, z, g, xmat, off, fam, link, nbtheta, tol, maxit):
    """beta and u together minimizing the penalized deviance at x (Newton steps, halved while it
    rises; the last step, below ``tol``, taken too).  Returns the iterations, -1 if not converged.
    A trial point's sums are the next step's (one pass over the rows a trial)."""
    q, p, n = u.size, xmat.shape[1], y.size
    lev, hbb, sb, schur = np.empty((q, 5 + p)), np.empty((p, p)), np.empty(p), np.empty((p, p))
    du, db, tu, tb, sbu, rows = np.empty(q), np.empty(p), np.empty(q), np.empty(p), np.empty(p), np.empty((n, 2))
    pen = _joint_sums(x, off, beta, u, y, wt, sat, z, g, xmat, fam, link, nbtheta, False, lev, hbb, sb, rows, sbu)
    for it in range(maxit):
        if not _schur_step(lev, hbb, lev[:, 0].copy(), sb, du, db, schur):
            return -1
        size = max(np.max(np.abs(du)) if q else 0.0, np.max(np.abs(db)) if p else 0.0)
        if not math.isfinite(size):
            return -1
        if size < tol:
            u += du
            beta += db
            return it + 1
        t = 1.0
        for _ in range(40):
            tu[:] = u + t * du
            tb[:] = beta + t * db
            trial = _joint_sums(
                x, off, tb, tu, y, wt, sat, z, g, xmat, fam, link, nbtheta, False, lev, hbb, sb, rows, sbu
            )
            if trial <= pen + 1e-10 * (1.0 + abs(pen)):
                break
            t *= 0.5
        u[:] = tu
        beta[:] = tb
        pen = trial
    return -1


def profiled(x, beta, u, y, wt, sat, z, g, xmat, off, fam, link, nbtheta, const, tol, maxit, cov, du, db):
    """Stage 1's criterion (``nAGQ = 0``) at x, beta and u found together from the given ones (updated),
    and its derivative in x; ``cov`` gets the inverse of the beta block's Schur complement (the RX
    covariance of beta), ``du``, ``db`` the derivatives of the modes and beta in x.  ``(inf, nan)``
    where PIRLS fails."""
    q, p, n = u.size, xmat.shape[1], y.size
    if _joint_modes(x, beta, u, y, wt, sat, z, g, xmat, off, fam, link, nbtheta, tol, maxit) < 0:
        return np.inf, np.nan
    lev, hbb, sb, schur = np.empty((q, 5 + p)), np.empty((p, p)), np.empty(p), np.empty((p, p))
    dsb, rows = np.empty(p), np.empty((n, 2))
    pen = _joint_sums(x, off, beta, u, y, wt, sat, z, g, xmat, fam, link, nbtheta, True, lev, hbb, sb, rows, dsb)
    value, dx = pen + const, 0.0
    dsu = np.empty(q)
    for j in range(q):
        d = 1.0 + x * x * lev[j, 2]
        value += math.log(d)
        dx += 2.0 * x * lev[j, 2] / d
        dsu[j] = -lev[j, 3] + x * u[j] * lev[j, 4]
    if not _schur_step(lev, hbb, dsu, dsb, du, db, schur):
        return np.inf, np.nan
    _covariance(schur, cov)
    for i in range(n):
        j = g[i]
        deta = z[i] * (u[j] + x * du[j])
        for k in range(p):
            deta += xmat[i, k] * db[k]
        r, dw = rows[i, 0], rows[i, 1]
        dx += -2.0 * r * z[i] * u[j] + x * x * z[i] * z[i] * dw / (1.0 + x * x * lev[j, 2]) * deta
    return value, dx


def _covariance(factor, cov):
    """``cov = (L L')^-1`` from the lower Cholesky factor in ``factor``."""
    p = factor.shape[0]
    e = np.empty(p)
    for c in range(p):
        e[:] = 0.0
        e[c] = 1.0
        _substitute(factor, e)
        cov[:, c] = e


def stage1(x, beta, u, y, wt, sat, z, g, xmat, off, fam, link, nbtheta, const, cov, counts):
    """Minimize stage 1's criterion over x >= 0 from x (a safeguarded secant search on its
    derivative, bracketing the root); beta, u and ``cov`` as at the last point.  Stops when a step
    is below 1e-2 of x (stage 2 refines it).  Returns (x, criterion); x = -1 where it fails or
    x falls below 1e-3 (a singular fit: the caller takes the general path)."""
    du, db = np.empty(u.size), np.empty(beta.size)
    f, dx = profiled(x, beta, u, y, wt, sat, z, g, xmat, off, fam, link, nbtheta, const, 1e-10, 200, cov, du, db)
    counts[0] += 1
    lo, hi = 0.0, np.inf
    x_old, d_old = np.nan, np.nan
    for _ in range(60):
        if not (math.isfinite(f) and math.isfinite(dx)):
            return -1.0, f
        if dx < 0.0:
            lo = x
        else:
            hi = x
        new = np.nan
        if math.isfinite(x_old) and dx != d_old:
            slope = (dx - d_old) / (x - x_old)
            if slope > 0.0:
                new = x - dx / slope
        if not (lo < new < hi):
            new = 2.0 * x if hi == np.inf else 0.5 * (lo + hi)
        x_old, d_old = x, dx
        x = new
        if abs(x - x_old) < 0.5 * x_old:  # PIRLS from the first-order prediction of beta and the modes
            u += (x - x_old) * du
            beta += (x - x_old) * db
        f, dx = profiled(x, beta, u, y, wt, sat, z, g, xmat, off, fam, link, nbtheta, const, 1e-10, 200, cov, du, db)
        counts[0] += 1
        if abs(x - x_old) < 1e-2 * x:  # (stage 2's Newton steps take it from there)
            return (x, f) if x > 1e-3 and math.isfinite(f) else (-1.0, f)
        if hi < 1e-3 or lo > 1e3:
            return -1.0, f
    return -1.0, f


def _canonical(fam, link):
    """Whether the link is the family's canonical one (binomial logit, Poisson log): ``o = w``."""
    return (fam == 0 and link == 0) or (fam == 1 and link == 3)


def _hessian_sums(
    x, beta, u, y, wt, sat, z, g, xmat, off, fam, link, nbtheta, dudp, t1, v1, t2, v2, o2, w2, z3, rz, hp
):
    """:func:`_exact_hessian`'s pass over the rows: per level ``T_a``, ``sum dw z^2 D_a eta``,
    ``sum dw z D_a eta D_b eta``, ``sum d2w z^2 D_a eta D_b eta``, ``O_j``, ``sum w z^2``,
    ``sum dw z^3``, ``R_j``; and ``hp += 2 sum o e_a D_b eta``."""
    n, p, d = y.size, xmat.shape[1], xmat.shape[1] + 1
    e, de = np.empty(d), np.empty(d)
    for i in range(n):
        j, zi = g[i], z[i]
        eta = off[i] + x * zi * u[j]
        for k in range(p):
            eta += xmat[i, k] * beta[k]
        mu, _, r, w, o, dw = _row(eta, y[i], wt[i], sat[i], fam, link, nbtheta)
        # d2w = d(dw)/deta: logit w = wt mu (1 - mu), dw = w (1 - 2 mu); log w = dw = d2w = wt mu
        d2w = dw * (1.0 - 2.0 * mu) - 2.0 * w * mu * (1.0 - mu) if fam == 0 else dw
        e[0] = zi * u[j]
        for k in range(p):
            e[1 + k] = xmat[i, k]
        for a in range(d):
            de[a] = e[a] + x * zi * dudp[j, a]
        o2[j] += o * zi * zi
        w2[j] += w * zi * zi
        z3[j] += dw * zi * zi * zi
        rz[j] += r * zi
        for a in range(d):
            t1[j, a] += o * zi * de[a]
            v1[j, a] += dw * zi * zi * de[a]
            for b in range(d):
                t2[j, a, b] += dw * zi * de[a] * de[b]  # do/deta = dw/deta (canonical)
                v2[j, a, b] += d2w * zi * zi * de[a] * de[b]
                hp[a, b] += 2.0 * o * e[a] * de[b]


def _exact_hessian(x, beta, u, y, wt, sat, z, g, xmat, off, fam, link, nbtheta, dudp, hess):
    """The Laplace deviance's Hessian over (x, beta) at the modes u, for a canonical link (``o = w``).

    With ``D_a eta_i = e_ia + x z_i u_a`` (``e_i0 = z_i u_j``, ``e_ik = X_ik``; ``u_a`` the modes'
    derivatives ``dudp``) it adds the penalized deviance's part ``2 sum o e_a D_b eta - 2 [a = 0] sum_j
    R_j u_b`` (``R_j = sum r z``) and the log-determinants' ``D_ab d_j / d_j - D_a d_j D_b d_j / d_j^2``
    (``d_j = 1 + x^2 sum w z^2``), with the modes' second derivatives from differentiating the modes'
    condition twice: ``h_j u_ab = -([a = 0] T_b + [b = 0] T_a + x sum dw z D_a eta D_b eta +
    x O_j ([b = 0] u_a + [a = 0] u_b))``, ``T_a = sum o z D_a eta``, ``O_j = sum o z^2``.
    """
    q, d = u.size, beta.size + 1
    t1, v1 = np.zeros((q, d)), np.zeros((q, d))
    t2, v2 = np.zeros((q, d, d)), np.zeros((q, d, d))
    o2, w2, z3, rz = np.zeros(q), np.zeros(q), np.zeros(q), np.zeros(q)
    hess[:, :] = 0.0
    _hessian_sums(
        x, beta, u, y, wt, sat, z, g, xmat, off, fam, link, nbtheta, dudp, t1, v1, t2, v2, o2, w2, z3, rz, hess
    )
    big = np.empty(d)
    for j in range(q):
        h = 1.0 + x * x * o2[j]
        dj = 1.0 + x * x * w2[j]
        for a in range(d):
            big[a] = x * x * v1[j, a]
        big[0] += 2.0 * x * w2[j]
        for a in range(d):
            for b in range(d):
                first = x * o2[j] * ((dudp[j, a] if b == 0 else 0.0) + (dudp[j, b] if a == 0 else 0.0))
                uab = -((t1[j, b] if a == 0 else 0.0) + (t1[j, a] if b == 0 else 0.0) + x * t2[j, a, b] + first) / h
                ddab = x * x * v2[j, a, b] + x * x * z3[j] * (
                    (dudp[j, a] if b == 0 else 0.0) + (dudp[j, b] if a == 0 else 0.0) + x * uab
                )
                if a == 0:
                    ddab += 2.0 * x * v1[j, b]
                    hess[a, b] -= 2.0 * rz[j] * dudp[j, b]
                if b == 0:
                    ddab += 2.0 * x * v1[j, a]
                if a == 0 and b == 0:
                    ddab += 2.0 * w2[j]
                hess[a, b] += ddab / dj - big[a] * big[b] / (dj * dj)
    for a in range(d):
        for b in range(a):
            hess[a, b] = hess[b, a] = 0.5 * (hess[a, b] + hess[b, a])


def _hessian(p_all, u, dudp, steps, y, wt, sat, z, g, xmat, off, fam, link, nbtheta, const, hess):
    """Central differences of the Laplace gradient over (x, beta) (steps ``steps``; PIRLS starting from
    the modes' first-order prediction ``u + dudp step``), symmetrized; False where a point fails."""
    d = p_all.size
    gp, gm, pt, ut, scratch = np.empty(d), np.empty(d), np.empty(d), np.empty(u.size), np.empty((u.size, d))
    for k in range(d):
        for sign in (1.0, -1.0):
            pt[:] = p_all
            pt[k] += sign * steps[k]
            ut[:] = u + (sign * steps[k]) * dudp[:, k]
            v = laplace(
                pt[0],
                pt[1:],
                ut,
                y,
                wt,
                sat,
                z,
                g,
                xmat,
                off,
                fam,
                link,
                nbtheta,
                const,
                1e-10,
                200,
                gp if sign > 0 else gm,
                scratch,
            )
            if not math.isfinite(v):
                return False
        for m in range(d):
            hess[m, k] = (gp[m] - gm[m]) / (2.0 * steps[k])
    for k in range(d):
        for m in range(k):
            hess[k, m] = hess[m, k] = 0.5 * (hess[k, m] + hess[m, k])
    return True


def _newton(p_all, u, steps, y, wt, sat, z, g, xmat, off, fam, link, nbtheta, const, hess, grad, counts):
    """Newton steps on the Laplace deviance over (x, beta) until the Newton decrement is below ``_DECREMENT``.

    For a canonical link the Hessian is exact (:func:`_exact_hessian`, one pass over the rows) and formed
    at every point; otherwise it is by differences of the analytic gradient (:func:`_hessian`), formed again
    only after a step longer than ``_REUSE`` (in units of the steps / 1e-4) and at the end.  Either way
    ``hess`` is the Hessian at the returned point (as ``grad``); steps backtrack on the deviance, and as the deviance
    is even in x a step across 0 is mirrored.  Returns the deviance, inf where it fails.
    """
    d, q = p_all.size, u.size
    dudp, dudt = np.empty((q, d)), np.empty((q, d))
    f = laplace(p_all[0], p_all[1:], u, y, wt, sat, z, g, xmat, off, fam, link, nbtheta, const, 1e-10, 200, grad, dudp)
    counts[1] += 1
    pt, ut, gt, fac, step = np.empty(d), np.empty(q), np.empty(d), np.empty((d, d)), np.empty(d)
    have, fresh, decrement = False, False, np.inf  # a Hessian to step with; whether it is the one at p_all
    exact = _canonical(fam, link)  # the exact Hessian (one pass), formed at every point; else differences
    for _ in range(40):
        if not math.isfinite(f):
            return np.inf
        if not have:
            if exact:
                _exact_hessian(p_all[0], p_all[1:], u, y, wt, sat, z, g, xmat, off, fam, link, nbtheta, dudp, hess)
                counts[2] += 1
            elif _hessian(p_all, u, dudp, steps, y, wt, sat, z, g, xmat, off, fam, link, nbtheta, const, hess):
                counts[2] += 2 * d
            else:
                return np.inf
            have, fresh = True, True
        fac[:, :] = hess
        step[:] = -grad
        if not _cholesky_solve(fac, step):
            return np.inf
        decrement = -(grad @ step)
        if decrement < _DECREMENT:
            if fresh:
                return f
            have = False
            continue
        t, accepted = 1.0, False
        for _ in range(30 if decrement > 1e-10 else 2):  # (at the deviance's rounding halving is no help)
            pt[:] = p_all + t * step
            ut[:] = u + dudp @ (t * step)
            if pt[0] < 0.0:
                pt[0] = -pt[0]
                ut[:] = -ut
            ft = laplace(
                pt[0], pt[1:], ut, y, wt, sat, z, g, xmat, off, fam, link, nbtheta, const, 1e-10, 200, gt, dudt
            )
            counts[1] += 1
            if ft <= f - 1e-4 * t * decrement:
                accepted = True
                break
            t *= 0.5
        if not accepted:  # no decrease along the step: at the optimum to rounding, if the Hessian is its own
            if decrement >= 1e-10:
                return np.inf
            if fresh:
                return f
            have = False
            continue
        long_step = np.max(np.abs(t * step) / steps) * 1e-4 > _REUSE
        p_all[:], u[:], grad[:], dudp[:, :], f = pt, ut, gt, dudt, ft
        fresh = False
        have = not (long_step or exact)
    return f if have and fresh and decrement < 1e-10 else np.inf


def stage2(p_all, u, steps, y, wt, sat, z, g, xmat, off, fam, link, nbtheta, const, hess, grad, counts, vcov, mu):
    """Stage 2 (:func:`_newton`), then at its optimum the covariance of beta, the beta block of ``2 H^-1``
    (lme4's ``use.hessian``), into ``vcov`` and the means into ``mu``.  Returns the deviance, inf where the
    Newton steps fail or the Hessian is not positive definite."""
    f = _newton(p_all, u, steps, y, wt, sat, z, g, xmat, off, fam, link, nbtheta, const, hess, grad, counts)
    d, p = p_all.size, xmat.shape[1]
    if not math.isfinite(f):
        return np.inf
    factor, inv = hess.copy(), np.empty((d, d))
    if not _cholesky_solve(factor, np.zeros(d)):
        return np.inf
    _covariance(factor, inv)
    for a in range(p):
        for b in range(p):
            vcov[a, b] = inv[1 + a, 1 + b] + inv[1 + b, 1 + a]
    for i in range(y.size):
        eta = off[i] + p_all[0] * z[i] * u[g[i]]
        for k in range(p):
            eta += xmat[i, k] * p_all[1 + k]
        mu[i] = _row(eta, y[i], wt[i], sat[i], fam, link, nbtheta)[0]
    return f


_ORDER = (
    "_row",
    "_newton_weight",
    "_level_sums",
    "_modes",
    "_laplace_parts",
    "laplace",
    "_joint_sums",
    "_substitute",
    "_cholesky_solve",
    "least_squares",
    "_schur_step",
    "_joint_modes",
    "_covariance",
    "profiled",
    "stage1",
    "_canonical",
    "_hessian_sums",
    "_exact_hessian",
    "_hessian",
    "_newton",
    "stage2",
)
_PLAIN = {name: globals()[name] for name in _ORDER}


def compiled() -> dict | None:
    """The compiled kernels by name (each calls the others' compiled versions), or None without numba."""
    kernels = {}
    for name in _ORDER:
        kernel = jit(_PLAIN[name])
        if kernel is None:
            return None
        kernels[name] = kernel
    globals().update(kernels)
    return kernels

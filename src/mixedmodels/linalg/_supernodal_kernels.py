"""The compiled numeric phase of :mod:`.supernodal`: LAPACK/BLAS called from numba.

Imported only when numba is installed and allowed (see :func:`._kernels.jit`).
The dense work of each supernode goes to the same OpenBLAS that numpy and
scipy use, through the function pointers scipy exports in
``scipy.linalg.cython_blas`` / ``cython_lapack``; the loops that gather a
supernode's rows and scatter its update are compiled.

Storage convention: the matrix is a dense C-ordered ``m x m`` array whose
lower triangle holds A.  Read column-major, that is ``A' = A`` with its
*upper* triangle filled, so LAPACK factors ``A = U'U`` with ``uplo="U"`` and
``U'`` is the lower-triangular factor of the C-ordered array.
"""

from __future__ import annotations

import llvmlite.binding as llvm
import numba
import numpy as np
from numba import types
from numba.extending import get_cython_function_address

__all__ = ["supernodal_cholesky", "supernodal_inverse"]


def _external(module: str, name: str, nargs: int) -> types.ExternalFunction:
    """scipy's exported ``name`` as a function numba links by symbol name (so the kernel can be cached on disk)."""
    symbol = f"mixedmodels_{name}"
    llvm.add_symbol(symbol, get_cython_function_address(module, name))
    return types.ExternalFunction(symbol, types.void(*[types.voidptr] * nargs))


_dpotrf = _external("scipy.linalg.cython_lapack", "dpotrf", 5)
_dtrsm = _external("scipy.linalg.cython_blas", "dtrsm", 11)
_dsyrk = _external("scipy.linalg.cython_blas", "dsyrk", 10)
_dtrtri = _external("scipy.linalg.cython_lapack", "dtrtri", 6)
_dlauum = _external("scipy.linalg.cython_lapack", "dlauum", 5)
_dsymm = _external("scipy.linalg.cython_blas", "dsymm", 12)
_dgemm = _external("scipy.linalg.cython_blas", "dgemm", 13)


def _supernodal_cholesky(flat, m, starts, rowptr, rows, panel, update):  # pragma: no cover - compiled
    """Factor the C-ordered ``m x m`` matrix ``flat`` (raveled) in place, supernode by supernode.

    Supernode ``s`` owns columns ``starts[s]:starts[s+1]`` and the rows
    ``rows[rowptr[s]:rowptr[s+1]]`` below them (sorted).  ``panel`` and
    ``update`` are workspaces of at least ``max(w * n)`` and ``max(n * n)``
    doubles.  Returns 0, or ``1 +`` the first column whose pivot was not
    positive (the matrix is not positive definite).
    """
    upper = np.array([ord("U")], np.int8)
    left = np.array([ord("L")], np.int8)
    trans = np.array([ord("T")], np.int8)
    nontrans = np.array([ord("N")], np.int8)
    one = np.array([1.0])
    zero = np.array([0.0])
    lda = np.array([m], np.int32)
    width = np.zeros(1, np.int32)
    count = np.zeros(1, np.int32)
    info = np.zeros(1, np.int32)
    for s in range(starts.shape[0] - 1):
        a, b = starts[s], starts[s + 1]
        w = b - a
        width[0] = w
        diagonal = flat[a * m + a :]
        _dpotrf(upper.ctypes, width.ctypes, diagonal.ctypes, lda.ctypes, info.ctypes)
        if info[0] != 0:
            return a + info[0]
        below = rows[rowptr[s] : rowptr[s + 1]]
        n = below.shape[0]
        if n == 0:
            continue
        count[0] = n
        for k in range(n):  # gather: column k of the w x n panel is row below[k], columns a:b
            source = below[k] * m + a
            for i in range(w):
                panel[k * w + i] = flat[source + i]
        _dtrsm(
            left.ctypes,
            upper.ctypes,
            trans.ctypes,
            nontrans.ctypes,
            width.ctypes,
            count.ctypes,
            one.ctypes,
            diagonal.ctypes,
            lda.ctypes,
            panel.ctypes,
            width.ctypes,
        )
        for k in range(n):
            target = below[k] * m + a
            for i in range(w):
                flat[target + i] = panel[k * w + i]
        _dsyrk(
            upper.ctypes,
            trans.ctypes,
            count.ctypes,
            width.ctypes,
            one.ctypes,
            panel.ctypes,
            width.ctypes,
            zero.ctypes,
            update.ctypes,
            count.ctypes,
        )
        for k2 in range(n):  # A[below, below] -= panel' panel, lower triangle (row below[k2])
            row = below[k2] * m
            for k1 in range(k2 + 1):
                flat[row + below[k1]] -= update[k2 * n + k1]
    return 0


try:
    supernodal_cholesky = numba.njit(cache=True, nogil=True)(_supernodal_cholesky)
except RuntimeError:  # no writable cache location: compile in memory for this process
    supernodal_cholesky = numba.njit(cache=False, nogil=True)(_supernodal_cholesky)


def _supernodal_inverse(flat, m, starts, rowptr, rows, diag, panel, prr, pdr):  # pragma: no cover - compiled
    """Overwrite the factor ``L`` in ``flat`` with ``P = (L L')^-1`` on L's supernodal pattern.

    Takahashi's recurrences, supernode by supernode from the last: with the
    supernode's diagonal block ``L_D``, the rows below it ``L_R`` and
    ``T = L_R L_D^-1``,

        P_RD = -P_RR T,     P_DD = L_D^-T L_D^-1 - P_DR T,

    where ``P_RR`` (the rows below, a clique of the pattern) is already
    known.  Storage as :func:`_supernodal_cholesky` (C-ordered, lower
    triangle; read as Fortran, ``U = L'`` in the upper triangle).  Workspaces:
    ``diag`` ``max(w*w)``, ``panel`` and ``pdr`` ``max(w*n)``, ``prr``
    ``max(n*n)`` doubles.  Returns 0, or ``1 +`` a column with a zero pivot.
    """
    upper = np.array([ord("U")], np.int8)
    right = np.array([ord("R")], np.int8)
    left = np.array([ord("L")], np.int8)
    trans = np.array([ord("T")], np.int8)
    nontrans = np.array([ord("N")], np.int8)
    one = np.array([1.0])
    minus_one = np.array([-1.0])
    zero = np.array([0.0])
    lda = np.array([m], np.int32)
    width = np.zeros(1, np.int32)
    count = np.zeros(1, np.int32)
    info = np.zeros(1, np.int32)
    for s in range(starts.shape[0] - 2, -1, -1):
        a, b = starts[s], starts[s + 1]
        w = b - a
        width[0] = w
        for j in range(w):  # U (upper, Fortran w x w) = L_D'
            for i in range(j + 1):
                diag[j * w + i] = flat[(a + j) * m + a + i]
        below = rows[rowptr[s] : rowptr[s + 1]]
        n = below.shape[0]
        count[0] = n
        if n > 0:
            for k in range(n):  # panel (Fortran w x n) = L_R'
                source = below[k] * m + a
                for i in range(w):
                    panel[k * w + i] = flat[source + i]
            # panel <- U^-1 L_R' = T'
            _dtrsm(
                left.ctypes,
                upper.ctypes,
                nontrans.ctypes,
                nontrans.ctypes,
                width.ctypes,
                count.ctypes,
                one.ctypes,
                flat[a * m + a :].ctypes,
                lda.ctypes,
                panel.ctypes,
                width.ctypes,
            )
            for k2 in range(n):  # prr (Fortran n x n, upper) = P_RR
                row = below[k2] * m
                for k1 in range(k2 + 1):
                    prr[k2 * n + k1] = flat[row + below[k1]]
            # pdr = -T' P_RR = P_DR (w x n)
            _dsymm(
                right.ctypes,
                upper.ctypes,
                width.ctypes,
                count.ctypes,
                minus_one.ctypes,
                prr.ctypes,
                count.ctypes,
                panel.ctypes,
                width.ctypes,
                zero.ctypes,
                pdr.ctypes,
                width.ctypes,
            )
        _dtrtri(upper.ctypes, nontrans.ctypes, width.ctypes, diag.ctypes, width.ctypes, info.ctypes)
        if info[0] != 0:
            return a + info[0]
        _dlauum(upper.ctypes, width.ctypes, diag.ctypes, width.ctypes, info.ctypes)  # U^-1 U^-T = L_D^-T L_D^-1
        if n > 0:
            # P_DD = L_D^-T L_D^-1 - P_DR T
            _dgemm(
                nontrans.ctypes,
                trans.ctypes,
                width.ctypes,
                width.ctypes,
                count.ctypes,
                minus_one.ctypes,
                pdr.ctypes,
                width.ctypes,
                panel.ctypes,
                width.ctypes,
                one.ctypes,
                diag.ctypes,
                width.ctypes,
            )
            for k in range(n):
                target = below[k] * m + a
                for i in range(w):
                    flat[target + i] = pdr[k * w + i]
        for j in range(w):
            for i in range(j + 1):
                flat[(a + j) * m + a + i] = diag[j * w + i]
    return 0


try:
    supernodal_inverse = numba.njit(cache=True, nogil=True)(_supernodal_inverse)
except RuntimeError:  # no writable cache location: compile in memory for this process
    supernodal_inverse = numba.njit(cache=False, nogil=True)(_supernodal_inverse)

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

__all__ = ["supernodal_cholesky"]


def _external(module: str, name: str, nargs: int) -> types.ExternalFunction:
    """scipy's exported ``name`` as a function numba links by symbol name (so the kernel can be cached on disk)."""
    symbol = f"mixedmodels_{name}"
    llvm.add_symbol(symbol, get_cython_function_address(module, name))
    return types.ExternalFunction(symbol, types.void(*[types.voidptr] * nargs))


_dpotrf = _external("scipy.linalg.cython_lapack", "dpotrf", 5)
_dtrsm = _external("scipy.linalg.cython_blas", "dtrsm", 11)
_dsyrk = _external("scipy.linalg.cython_blas", "dsyrk", 10)


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
        diagonal = flat[a * m + a:]
        _dpotrf(upper.ctypes, width.ctypes, diagonal.ctypes, lda.ctypes, info.ctypes)
        if info[0] != 0:
            return a + info[0]
        below = rows[rowptr[s]:rowptr[s + 1]]
        n = below.shape[0]
        if n == 0:
            continue
        count[0] = n
        for k in range(n):  # gather: column k of the w x n panel is row below[k], columns a:b
            source = below[k] * m + a
            for i in range(w):
                panel[k * w + i] = flat[source + i]
        _dtrsm(left.ctypes, upper.ctypes, trans.ctypes, nontrans.ctypes, width.ctypes, count.ctypes,
               one.ctypes, diagonal.ctypes, lda.ctypes, panel.ctypes, width.ctypes)
        for k in range(n):
            target = below[k] * m + a
            for i in range(w):
                flat[target + i] = panel[k * w + i]
        _dsyrk(upper.ctypes, trans.ctypes, count.ctypes, width.ctypes, one.ctypes, panel.ctypes,
               width.ctypes, zero.ctypes, update.ctypes, count.ctypes)
        for k2 in range(n):  # A[below, below] -= panel' panel, lower triangle (row below[k2])
            row = below[k2] * m
            for k1 in range(k2 + 1):
                flat[row + below[k1]] -= update[k2 * n + k1]
    return 0


try:
    supernodal_cholesky = numba.njit(cache=True, nogil=True)(_supernodal_cholesky)
except RuntimeError:  # no writable cache location: compile in memory for this process
    supernodal_cholesky = numba.njit(cache=False, nogil=True)(_supernodal_cholesky)

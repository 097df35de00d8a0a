"""Small dense triangular helpers that avoid BLAS-3 thread start-up.

``scipy.linalg.solve_triangular`` calls LAPACK's ``trtrs`` -> BLAS ``trsm``,
which wakes OpenBLAS's thread pool: on a busy machine that costs milliseconds
per call even for a 2 x 2 matrix.  ``trtri`` on small matrices stays unblocked.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import lapack

__all__ = ["triangular_inverse"]


def triangular_inverse(mat: np.ndarray, lower: bool = True) -> np.ndarray:
    """Inverse of a triangular matrix (the other triangle of ``mat`` is ignored)."""
    tri = np.tril(mat) if lower else np.triu(mat)
    if tri.shape[0] == 0:
        return tri.copy()
    inverse, info = lapack.dtrtri(tri, lower=int(lower))
    if info != 0:
        raise np.linalg.LinAlgError(f"triangular matrix is singular (dtrtri info {info})")
    return np.tril(inverse) if lower else np.triu(inverse)

"""How many BLAS threads a fit uses.

OpenBLAS starts its thread pool for a Cholesky factor above ~128 x 128.  On a
2-core machine that is already busy (other fits, other programs) the threads
spin against each other: a 300 x 300 factorization then costs ~13 ms instead
of ~0.2 ms.  Fits whose dense blocks are small therefore run with one BLAS
thread; large blocks (InstEval's 1,159 x 1,159) keep the pool, where it pays.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from threadpoolctl import threadpool_limits

__all__ = ["blas_threads_for", "SMALL_BLOCK"]

SMALL_BLOCK = 600  # dense blocks below this size are factored with one thread


@contextmanager
def blas_threads_for(block_size: int) -> Iterator[None]:
    """Limit BLAS to one thread while fitting a model whose largest dense block is small."""
    if block_size >= SMALL_BLOCK:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield

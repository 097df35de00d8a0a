"""How many BLAS threads a fit uses.

OpenBLAS starts its thread pool for a Cholesky factor above ~128 x 128.  On a
2-core machine that is already busy (other fits, other programs) the threads
spin against each other: a 300 x 300 factorization then costs ~13 ms instead
of ~0.2 ms, and InstEval's 1,159 x 1,159 block 147 ms instead of 28 ms (load
average 7; measured 2026-11-22).  The pool gains at most a factor of two on
an idle machine, and loses five to fifty on a busy one, so fits use one BLAS
thread unless their dense block is very large.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from threadpoolctl import threadpool_limits

__all__ = ["blas_threads_for", "SMALL_BLOCK"]

SMALL_BLOCK = 4000  # dense blocks below this size are factored with one thread


@contextmanager
def blas_threads_for(block_size: int) -> Iterator[None]:
    """Limit BLAS to one thread while fitting a model whose largest dense block is small."""
    if block_size >= SMALL_BLOCK:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield

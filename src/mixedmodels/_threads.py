"""How many BLAS threads a fit uses.

OpenBLAS starts its thread pool for a Cholesky factor above ~128 x 128.  On a
2-core machine that is already busy (other fits, other programs) the threads
spin against each other: a 300 x 300 factorization then costs ~13 ms instead
of ~0.2 ms, and InstEval's 1,159 x 1,159 block 147 ms instead of 28 ms (load
average 7; measured 2026-11-22).  The pool gains at most a factor of two on
an idle machine, and loses five to fifty on a busy one, so fits use one BLAS
thread unless their dense block is very large.  Blocks too small for OpenBLAS
to thread need no limit, which saves the limit's own cost (~0.1 ms).
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from functools import lru_cache
from typing import ContextManager, Iterator

__all__ = ["blas_threads_for", "design_threads_for", "one_blas_thread", "THREADED_BLOCK", "SMALL_BLOCK", "SMALL_DESIGN"]

THREADED_BLOCK = 128  # OpenBLAS factors smaller blocks in the calling thread anyway
SMALL_BLOCK = 4000  # dense blocks below this size are factored with one thread
# OpenBLAS runs a product in the calling thread below 64^3 = 262,144 multiply-adds (its SMP_THRESHOLD_MIN,
# 65,536, times GEMM_MULTITHREAD_THRESHOLD, 4): a design of fewer rows than this, with fewer columns than rows,
# has no product that large
SMALL_DESIGN = 64


@lru_cache(maxsize=1)
def _controller():
    """One controller for the process: finding the BLAS libraries costs ~2 ms per look."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@lru_cache(maxsize=1)
def _blas_libraries() -> tuple:
    """The process's BLAS libraries' thread controls (found once, as the controller is)."""
    return tuple(_controller().select(user_api="blas").lib_controllers)


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the body with one BLAS thread.

    What ``threadpoolctl``'s ``limit`` does, without its summary of every library before and after
    (~0.1 ms cold, twice per small GLMM fit): each BLAS library's thread count is read, set to one
    where it is not, and restored on exit.
    """
    changed = []
    for library in _blas_libraries():
        threads = library.get_num_threads()
        if threads != 1:
            library.set_num_threads(1)
            if threads is not None:
                changed.append((library, threads))
    try:
        yield
    finally:
        for library, threads in changed:
            library.set_num_threads(threads)


def design_threads_for(nrows: int) -> ContextManager[None]:
    """One BLAS thread while a GLMM's design is built from ``nrows`` rows (its products of n rows woke
    OpenBLAS's pool: VerbAgg), none below ``SMALL_DESIGN`` rows, whose products OpenBLAS does not thread.

    The limit's own cost is ~0.04-0.09 ms of a 1.7 ms fit (cbpp, 56 rows, cold).  A design with as many
    columns as rows is refused after it is built (it cannot estimate them); its products may be threaded.
    """
    return one_blas_thread() if nrows >= SMALL_DESIGN else nullcontext()


def blas_threads_for(block_size: int) -> ContextManager[None]:
    """One BLAS thread while fitting a model whose largest dense block is of moderate size."""
    if THREADED_BLOCK <= block_size < SMALL_BLOCK:
        return one_blas_thread()
    return nullcontext()

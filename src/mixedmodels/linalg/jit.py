"""The package's one rule for compiling a loop with numba: :func:`jit`.

numba is optional (the ``fast`` extra).  A kernel is a plain-Python function
that numba compiles on first use, cached on disk so that later processes
load it; without numba, or with ``MIXEDMODELS_NO_NUMBA=1``, :func:`jit`
gives None and the caller takes its numpy/scipy path.  Public so that the
compiled loops outside :mod:`mixedmodels.linalg` (the Dask partitions' sums)
follow the same rule.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Callable

__all__ = ["jit"]


@lru_cache(maxsize=None)
def jit(kernel: Callable) -> Callable | None:
    """The numba-compiled ``kernel`` (cached on disk), or None without numba or with ``MIXEDMODELS_NO_NUMBA=1``."""
    if os.environ.get("MIXEDMODELS_NO_NUMBA", "") not in ("", "0"):
        return None
    try:
        import numba
    except ImportError:
        return None
    try:
        return numba.njit(cache=True, nogil=True)(kernel)
    except RuntimeError:  # no writable cache location: compile in memory for this process
        return numba.njit(cache=False, nogil=True)(kernel)

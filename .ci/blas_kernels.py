"""Print the kernel of every BLAS library numpy and scipy load (e.g. "openblas:SkylakeX")."""

import numpy  # noqa: F401  (loads numpy's BLAS)
import scipy.linalg  # noqa: F401  (loads scipy's, which may be another copy)
from threadpoolctl import threadpool_info

print(" ".join(sorted({f"{lib['internal_api']}:{lib.get('architecture') or '?'}" for lib in threadpool_info()})))

"""Measure candidate kernels for the rank update ``A21 W A21'`` against the package's own.

    python benchmarks/prototypes/rank_update_kernels.py insteval crossed_100k crossed_1m nested_500k

A prototype for the core engineer, not package code.  For each case it builds
the model's blocks, takes ``W`` at a theta near the start, and times:

- the package (``Factorization.compute``'s rank update as the checkout has it:
  the precomputed plan when there is one, else ``blocked._rank_update``);
- a sparse "SYRK" loop (one outer product per level of the big term, only the
  lower triangle, straight into the dense result), compiled with numba when
  numba is installed (``pip install numba``: MixedModels.jl's ``rankUpdate!``
  for a sparse ``A21``; works for any number of columns per level).

The loop needs every level's k columns to share one row pattern, which holds
when the term's columns are non-zero on the same rows (checked).
"""

from __future__ import annotations

import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent.parent / "src"))

import cases as _cases  # noqa: E402


def syrk_levels(indptr, indices, data, g, k, out):
    """``out`` (m x m, C order): lower triangle += sum_l A_l W_l A_l' with ``W_l = g_l' g_l``.

    ``A`` is CSC with k columns per level sharing one (sorted) row pattern.
    """
    q = g.shape[0]
    for lev in range(q):
        c0 = lev * k
        start = indptr[c0]
        n = indptr[c0 + 1] - start
        rows = indices[start : start + n]
        bl = np.zeros((n, k))
        for a in range(k):
            s = indptr[c0 + a]
            for p in range(n):
                for b in range(k):
                    bl[p, b] += data[s + p] * g[lev, b, a]
        for b in range(k):
            for p in range(n):
                vp = bl[p, b]
                if vp != 0.0:
                    rp = rows[p]
                    for s2 in range(p + 1):
                        out[rp, rows[s2]] += vp * bl[s2, b]
    return out


try:
    import numba

    syrk_levels = numba.njit(cache=False)(syrk_levels)
    COMPILED = True
except ImportError:
    COMPILED = False


def _median_ms(func, n: int = 5) -> tuple[float, object]:
    times, result = [], None
    for _ in range(n):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times), result


def measure(name: str) -> None:
    import mixedmodels as mm
    from mixedmodels.linalg import blocked

    case = _cases.CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = mm.LinearMixedModel.from_formula(case.formula, _cases.load(case))
    cp = model.crossprods
    theta = model.theta_start * 0.7
    k = cp.first.ncols
    lam = cp.first.scaled_lam(theta)
    l11 = blocked._first_block_factor(cp.a11, lam)
    weights = blocked._first_block_weights(l11, lam)
    plan = getattr(cp, "rank_update_plan", None)
    g = (lam[0, 0] / l11).reshape(-1, 1, 1) if k == 1 else np.linalg.solve(l11, np.broadcast_to(lam.T, l11.shape))
    if plan is None:
        package = lambda: blocked._rank_update(cp.a21, weights)  # noqa: E731
    else:  # the plans subtract from A22 (lower triangle only); give back the update itself
        factors = weights if k == 1 else g
        package = lambda: np.tril(cp.a22 - plan.subtract_from(cp.a22, factors))  # noqa: E731
    t_pkg, ref = _median_ms(package)
    a = sp.csc_array(cp.a21)
    a.sort_indices()
    m = a.shape[0]
    ip = a.indptr
    shared = all(
        np.array_equal(a.indices[ip[lev * k] : ip[lev * k + 1]], a.indices[ip[lev * k + j] : ip[lev * k + j + 1]])
        for lev in range(cp.first.nlevels)
        for j in range(1, k)
    )
    print(
        f"{name}: A21 {a.shape}, nnz {a.nnz:,}, k={k}, shared row pattern: {shared}; "
        f"package ({'plan' if plan is not None else '_rank_update'}) {t_pkg:.1f} ms",
        flush=True,
    )
    if not shared:
        return
    if not COMPILED and a.nnz > 200_000:
        print("  (numba not installed: the pure-Python loop would take minutes; skipped)")
        return
    run = lambda: syrk_levels(a.indptr, a.indices, a.data, g, k, np.zeros((m, m)))  # noqa: E731
    run()  # compile
    t_loop, low = _median_ms(run)
    ref_low = np.tril(ref)
    err = np.abs(low - ref_low).max() / np.abs(ref_low).max()
    print(f"  sparse SYRK loop ({'numba' if COMPILED else 'Python'}): {t_loop:.1f} ms; max rel. difference {err:.1e}")


if __name__ == "__main__":
    for case_name in sys.argv[1:] or ["insteval", "crossed_100k"]:
        measure(case_name)

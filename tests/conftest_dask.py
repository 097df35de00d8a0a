"""Shared helpers of the Dask tests: schedulers, data split into partitions, and the comparison with in-memory fits.

The comparison's tolerances are the issue's (#17), and why they hold:

* objective within 1e-10 relative, SEs, theta and conditional modes within
  1e-5 relative, beta within 1e-6 of its SE: partition sums change only the
  last bits of the cross-products, so the optimizer may stop a hair
  elsewhere (its tolerances, ftol_abs 1e-8 on the criterion, are far
  wider than these changes), never further than these;
* glmer fits stop where BOBYQA's stage-2 tolerance lets them (xtol_abs 1e-5
  in units of the SEs) and their SEs come from a finite-difference Hessian
  whose steps follow stage 1's loosely converged end: an in-memory fit of
  the same rows in another order already differs by up to 4e-6 SE in beta
  and 3e-4 in the SEs (measured on VerbAgg), so glmer is held to beta within
  1e-5 SE and SEs within 1e-3, and everything else as lmer.

Conditional modes are compared relative to the largest mode of their term
(a mode near zero has no meaningful relative error).
"""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd

dask = __import__("pytest").importorskip("dask")
import dask.dataframe as dd  # noqa: E402

SCHEDULERS = ("sync", "cluster")


@contextlib.contextmanager
def on(scheduler: str, client=None):
    """Run dask computations on the synchronous local scheduler or on the test LocalCluster."""
    if scheduler == "sync":
        with dask.config.set(scheduler="sync"):
            yield
        return
    with client.as_current(), dask.config.set(scheduler="dask.distributed"):
        yield


def partitioned(df: pd.DataFrame, sizes: list[int]):
    """A dask DataFrame whose partitions are consecutive runs of ``df``'s rows of the given sizes (0: empty)."""
    if sum(sizes) != len(df):
        raise ValueError("sizes must add up to the rows")
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    parts = [dask.delayed(df.iloc[a:b].copy(), traverse=False) for a, b in zip(bounds[:-1], bounds[1:])]
    return dd.from_delayed(parts, meta=df.iloc[:0], verify_meta=False)


def relative(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a / b - 1.0)))


def assert_same_fit(fit, memory, beta_se: float = 1e-6, se: float = 1e-5, rel: float = 1e-5) -> None:
    """The fit on Dask gives the in-memory answers within the tolerances of the module docstring."""
    assert list(fit.fixef.index) == list(memory.fixef.index)
    assert abs(fit.objective / memory.objective - 1.0) <= 1e-10
    assert np.max(np.abs((fit.fixef - memory.fixef) / memory.se)) <= beta_se
    assert relative(fit.se, memory.se) <= se
    assert relative(fit.theta, memory.theta) <= rel
    assert fit.nobs == memory.nobs and fit.ngroups == memory.ngroups
    for group, frame in memory.ranef(condvar=True).items():  # conditional modes and their SDs
        ours = fit.ranef(condvar=True)[group]
        assert list(ours.index) == list(frame.index) and list(ours.columns) == list(frame.columns)
        scale = np.max(np.abs(frame.to_numpy()), axis=0)
        assert np.all(np.max(np.abs(ours.to_numpy() - frame.to_numpy()), axis=0) <= rel * scale)
    for group, frame in memory.coef().items():
        scale = np.max(np.abs(frame.to_numpy()), axis=0)
        assert np.all(np.max(np.abs(fit.coef()[group].to_numpy() - frame.to_numpy()), axis=0) <= rel * scale)
    ours, theirs = fit.varcorr, memory.varcorr
    assert ours[["grp", "var1", "var2"]].equals(theirs[["grp", "var1", "var2"]])
    assert np.allclose(ours["sdcor"], theirs["sdcor"], rtol=rel, atol=rel)  # correlations near 0: absolute

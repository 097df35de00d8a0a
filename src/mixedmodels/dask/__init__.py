"""Mixed models on Dask: data larger than memory, and clusters.

``mm.lmer(formula, ddf)`` and ``mm.glmer(formula, ddf, family)`` with a dask
DataFrame (or a path or glob of Parquet files) fit the same model as in
memory without bringing the rows to the client.  A linear mixed model only
needs the blocked cross-products ``A = [Z X y]'[Z X y]``, whose size depends
on the numbers of levels, not of rows:

1. :mod:`.metadata` (pass 1): levels of the grouping factors and the
   categorical predictors, the state of ``scale()``/``center()``/``poly()``,
   the rows dropped for missing values, as Dask reductions;
2. :mod:`.plan` turns them into an :class:`~.plan.EncodingPlan` that any
   partition can apply on its own (global level codes, model-matrix specs
   with the global transform state); :mod:`.encode` applies it;
3. :mod:`.crossprods` (pass 2): each partition's contribution to the blocks,
   summed by a tree reduction on the workers (:mod:`.reduction`);
4. :mod:`.lmm` (``lmer``) runs the in-memory optimizer on the reduced blocks and
   returns :class:`~.results.DaskLmerResults` (an ``LmerResults``); row-level
   outputs are lazy Dask Series (:mod:`.lazy`).

``glmer`` (:mod:`.glmm`, :mod:`.pirls`) persists the encoded partitions on
the workers and makes one pass over them per PIRLS iteration.

Nothing here imports dask until a Dask fit is asked for; :func:`is_dask_input`
recognises a dask collection by its type's module.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["is_dask_input", "is_dask_collection", "lmer", "glmer"]


def is_dask_collection(data: Any) -> bool:
    """True for a dask collection (DataFrame, Series, ...), without importing dask."""
    module = type(data).__module__ or ""
    return module.split(".")[0] == "dask" and hasattr(data, "__dask_graph__")


def is_dask_input(data: Any) -> bool:
    """True for data that are fitted on Dask: a dask collection, or a path / glob string (Parquet)."""
    return is_dask_collection(data) or isinstance(data, (str, os.PathLike))


_ENTRY_POINTS = {"lmer": "lmm", "glmer": "glmm"}


def __getattr__(name: str) -> Any:
    if name in _ENTRY_POINTS:
        import importlib

        return getattr(importlib.import_module(f".{_ENTRY_POINTS[name]}", __name__), name)
    raise AttributeError(f"module 'mixedmodels.dask' has no attribute {name!r}")

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

Nothing here imports dask until a Dask fit is asked for;
:func:`~mixedmodels.design.tables.is_dask_input` recognises a dask collection
by its type's module.  ``mm.lmer`` and ``mm.glmer`` send such data here
(a deferred import of this package's ``lmer``/``glmer``, which are resolved
on first use, as ``mm.*`` are).
"""

from __future__ import annotations

from typing import Any

from ..design.tables import is_dask_collection, is_dask_input

__all__ = ["is_dask_input", "is_dask_collection", "lmer", "glmer"]

_ENTRY_POINTS = {"lmer": "lmm", "glmer": "glmm"}


def __getattr__(name: str) -> Any:
    if name in _ENTRY_POINTS:
        import importlib

        return getattr(importlib.import_module(f".{_ENTRY_POINTS[name]}", __name__), name)
    raise AttributeError(f"module 'mixedmodels.dask' has no attribute {name!r}")

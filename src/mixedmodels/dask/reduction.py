"""One pass over the partitions: a function per partition, then a tree reduction on the workers.

``map_reduce(parts, summarize, shared, combine)`` builds the task graph

    summarize(part_1, shared)  ...  summarize(part_P, shared)
          \\______ combine (8 at a time) ______/
                       ...
                      root

and computes the root with whatever scheduler is active (a
``distributed.Client``, or dask's local threaded / synchronous scheduler),
so only the partial results travel and only the root reaches the client.
``shared`` (the plan, level tables) enters the graph once, not once per task.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any, Callable, Sequence

__all__ = ["map_reduce", "tree_reduce", "shared", "SPLIT_EVERY"]

SPLIT_EVERY = 8  # partial results combined per task


def shared(value: Any, what: str = "shared") -> Any:
    """``value`` as one node of the graph that many tasks depend on (not tokenized: it may be large)."""
    import dask

    return dask.delayed(value, name=f"mixedmodels-{what}-{uuid.uuid4().hex}", traverse=False)


def _combine_all(combine: Callable[[Any, Any], Any], combine_many: Callable[[list], Any] | None, *items: Any) -> Any:
    if combine_many is not None:
        return combine_many(list(items))
    return functools.reduce(combine, items)


def tree_reduce(
    items: Sequence[Any],
    combine: Callable[[Any, Any], Any],
    split_every: int = SPLIT_EVERY,
    combine_many: Callable[[list], Any] | None = None,
    below_root: bool = False,
) -> Any:
    """The delayed combination of delayed items, ``split_every`` at a time.

    ``combine_many``, when given, combines a task's items at once (the same
    result as ``combine`` pairwise, in less memory: see :func:`.crossprods.sum_sparse`).
    ``below_root``: the list of at most ``split_every`` delayed partial sums the root would combine, instead.
    """
    import dask

    level = list(items)
    if not level:
        raise ValueError("nothing to reduce")
    while len(level) > (split_every if below_root else 1):
        level = [
            dask.delayed(_combine_all, pure=False)(combine, combine_many, *level[i : i + split_every])
            for i in range(0, len(level), split_every)
        ]
    return level if below_root else level[0]


def map_reduce(
    parts: Sequence[Any],
    summarize: Callable[..., Any],
    shared_value: Any,
    combine: Callable[[Any, Any], Any],
    *extra: Any,
    combine_many: Callable[[list], Any] | None = None,
    root: Callable[[list], Any] | None = None,
) -> Any:
    """``combine`` over ``summarize(part, shared_value, *extra)`` for every partition, computed
    (``combine_many``: as in :func:`tree_reduce`).

    ``root``, when given, makes the last sum instead of the tree's root: it gets the partial sums the root
    would combine, persisted where they were computed (see :func:`.pieces.summed_in_pieces`).
    """
    import dask

    node = shared(shared_value, getattr(summarize, "__name__", "pass"))
    mapped = [dask.delayed(summarize, pure=False)(part, node, *extra) for part in parts]
    if root is not None:
        tops = dask.persist(*tree_reduce(mapped, combine, combine_many=combine_many, below_root=True))
        return root(list(tops))
    (total,) = dask.compute(tree_reduce(mapped, combine, combine_many=combine_many))
    return total

"""What lmerTest's F tests per term need of the rows of a fit on Dask: one pass for type III, none for type I.

:func:`mixedmodels.inference.ftests.term_hypotheses` reads the rows through
three methods (see :class:`~mixedmodels.inference.ftests.FrameColumns`, the
in-memory version): the design of a formula part, the R of a QR
decomposition of some designs' columns side by side, and ``X'X``.  Here the
designs are built on the plan's stand-in frame with the whole data's levels
and transform states, the R factor is summed over the partitions as a
tall-skinny QR (each partition's R, stacked and factored again in a tree),
and ``X'X`` is pass 2's.  The R of ``[X_trt, X, 1, X_rd]`` has as many
columns as those designs together, so a pass moves a few small matrices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from ..design.fixed import DesignMatrix
from .crossprods import stack_qr
from .encode import complete_rows
from .plan import global_design
from .reduction import map_reduce

__all__ = ["DaskColumns"]


@dataclass(frozen=True, eq=False)
class _RJob:
    designs: tuple[DesignMatrix, ...]
    complete: tuple[str, ...]


def _r_partition(frame, job: _RJob) -> np.ndarray:
    """The R of a QR of one partition's complete rows of the designs' columns (the function the workers run)."""
    kept = complete_rows(frame, job.complete)
    ncols = sum(len(d.column_names) for d in job.designs)
    if len(kept) == 0:
        return np.zeros((0, ncols))
    return np.linalg.qr(np.column_stack([d.for_newdata(kept) for d in job.designs]), mode="r")


class DaskColumns:
    """The fit's rows as lmerTest's hypotheses read them (the methods of ``FrameColumns``), on Dask.

    ``on_pass`` is called once per pass made (the model counts its passes).
    """

    def __init__(self, inputs, on_pass: Callable[[], None] = lambda: None):
        self.inputs, self.on_pass = inputs, on_pass

    def design(self, rhs: str, contrasts: Mapping[str, str] | None = None) -> DesignMatrix:
        return global_design(rhs, self.inputs.plan, contrasts)

    def r_factor(self, designs: list[DesignMatrix]) -> np.ndarray:
        """One pass: the R of a QR of the designs' columns over every complete row (tall-skinny QR)."""
        plan = self.inputs.plan
        job = _RJob(tuple(designs), plan.complete_columns)
        r = map_reduce(self.inputs.source.partitions(plan.read_columns), _r_partition, job, stack_qr)
        self.on_pass()
        return r

    def fixed_crossproduct(self) -> np.ndarray:
        return self.inputs.fixed_gram

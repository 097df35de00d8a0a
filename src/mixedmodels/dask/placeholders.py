"""Stand-ins for the row-level arrays of a fit on Dask, which stay on the workers.

A fit on Dask reuses the in-memory model and results classes, whose inputs
hold the model frame, ``y``, ``X``, ``Z``, weights and offset as arrays of
length n.  Those rows are never brought to the client: in their place sits a
:class:`RowsOnWorkers`, which knows its shape (so ``term.ncols`` works) and
raises :class:`~mixedmodels.errors.NotOnDaskError` for anything else.  So any
code that would need the rows in memory (Kenward-Roger, parametric bootstrap,
emmeans' reference grid, plots of the data, ...) stops with a message saying
so, instead of computing something wrong.
"""

from __future__ import annotations

from typing import Any, NoReturn

from ..errors import NotOnDaskError

__all__ = ["RowsOnWorkers", "refuse"]


def refuse(what: str) -> NoReturn:
    """Raise the error for something that needs the rows of a fit on Dask in memory."""
    raise NotOnDaskError(
        f"this needs {what} in memory, and a fit on Dask keeps the rows of the data on the workers; "
        "fit the data in memory (mm.lmer(formula, ddf.compute())) if they fit there"
    )


class RowsOnWorkers:
    """A row-level array or frame of a fit on Dask: has ``shape`` and ``ndim``, refuses everything else.

    Parameters
    ----------
    what : str
        What it stands for (``"the response"``, ``"the model frame"``), for the message.
    shape : tuple of int
        The shape the in-memory array would have.
    """

    __slots__ = ("what", "shape")

    def __init__(self, what: str, shape: tuple[int, ...]):
        self.what = what
        self.shape = tuple(int(s) for s in shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"<{self.what} of shape {self.shape}: on the Dask workers>"

    def __getstate__(self) -> tuple[str, tuple[int, ...]]:
        return self.what, self.shape

    def __setstate__(self, state: tuple[str, tuple[int, ...]]) -> None:
        self.what, self.shape = state

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        refuse(f"{self.what} (.{name})")

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        refuse(self.what)

    def __array_ufunc__(self, *args: Any, **kwargs: Any) -> NoReturn:
        refuse(self.what)

    def __array_function__(self, *args: Any, **kwargs: Any) -> NoReturn:
        refuse(self.what)

    __array__ = __getitem__ = __setitem__ = __iter__ = __len__ = __contains__ = _refuse
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _refuse
    __truediv__ = __rtruediv__ = __matmul__ = __rmatmul__ = __pow__ = __neg__ = _refuse
    __lt__ = __le__ = __gt__ = __ge__ = __bool__ = __float__ = __int__ = _refuse

"""Checks of argument types shared by the public functions.

A flag read by truthiness turns a typo into a different model (``REML="no"``
is truthy, so it fits REML); every boolean parameter goes through
:func:`check_bool` instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import MixedModelsError

__all__ = ["check_bool"]


def check_bool(value: Any, name: str, *, allow_none: bool = False) -> bool | None:
    """``value`` as a bool if it is one (``bool`` or ``numpy.bool_``), else a MixedModelsError naming ``name``.

    With ``allow_none`` a None (meaning "choose for me") is passed through.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if value is None and allow_none:
        return None
    allowed = "True, False or None" if allow_none else "True or False"
    raise MixedModelsError(f"{name} must be {allowed}, not {value!r} ({type(value).__name__})")

"""Model frames and model matrices (formula text -> numbers), R's conventions.

Names are imported lazily so that ``import mixedmodels.design`` does not pull
in formulaic:

* :mod:`.frame` -- ``required_variables``, ``model_frame``, ``ModelFrame``;
* :mod:`.fixed` -- ``build_design``, ``DesignMatrix`` (with R's contrasts, :mod:`.contrasts`);
* :mod:`.response` -- ``build_response``;
* :mod:`.checks` -- ``drop_aliased_columns``, ``check_scale``;
* :mod:`.values` -- how column values enter formulas (doubles, level labels);
* :mod:`.transforms` -- the functions formulas call (R's ``ns``/``bs`` from :mod:`.splines`,
  ``factor``, ``as.numeric``, ``poly``, ``scale``, ``offset`` ...);
* :mod:`.random` and :mod:`.covariance` -- random-effects terms, theta and Lambda;
* :mod:`.inputs` -- lme4's ``lFormula`` stage: everything a model is made of.

The data are checked once, when the model frame is made (:func:`~.frame.model_frame`);
the builders trust a :class:`~.frame.ModelFrame` and check only a plain DataFrame.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "required_variables": "frame",
    "model_frame": "frame",
    "ModelFrame": "frame",
    "build_design": "fixed",
    "build_response": "response",
    "DesignMatrix": "fixed",
    "drop_aliased_columns": "checks",
    "check_scale": "checks",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mixedmodels.design' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

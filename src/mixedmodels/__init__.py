"""mixedmodels: multilevel (mixed-effects) models with lme4's language and answers.

>>> import mixedmodels as mm
>>> df = mm.datasets.load("sleepstudy")
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", df)
>>> print(m.summary())

Heavy modules are imported lazily, so ``import mixedmodels`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import (
    ConvergenceWarning,
    DataError,
    FormulaError,
    MixedModelsError,
    MixedModelsWarning,
    ModelSpecError,
    NotOnDaskError,
    RankDeficiencyWarning,
    ScaleWarning,
    SingularFitWarning,
)

__version__ = "0.1.0"

# public name -> module that defines it (imported on first use)
_LAZY = {
    "lmer": "mixedmodels.lmm",
    "LinearMixedModel": "mixedmodels.lmm",
    "LmerResults": "mixedmodels.results",
    "OptimizerSettings": "mixedmodels.optim",
    "glmer": "mixedmodels.glmm",
    "GeneralizedLinearMixedModel": "mixedmodels.glmm",
    "GlmerResults": "mixedmodels.glmm_results",
    "families": "mixedmodels.families",
    "lm": "mixedmodels.linear_models",
    "glm": "mixedmodels.linear_models",
    "anova": "mixedmodels.inference.compare",
    "ranova": "mixedmodels.inference.compare",
    "bootstrap": "mixedmodels.inference.bootstrap",
    "emmeans": "mixedmodels.inference.emmeans",
    "contrast": "mixedmodels.inference.emmeans",
    "compare_pooling": "mixedmodels.pooling",
    "plots": "mixedmodels.plots",
    "simulate_design": "mixedmodels.simulation",
    "power": "mixedmodels.simulation",
    "datasets": "mixedmodels.datasets",
    "bayes": "mixedmodels.bayes",
    "priors": "mixedmodels.priors",
    "explore": "mixedmodels.explore",
    "dask": "mixedmodels.dask",
}

__all__ = [
    "__version__",
    "MixedModelsError",
    "FormulaError",
    "DataError",
    "ModelSpecError",
    "NotOnDaskError",
    "MixedModelsWarning",
    "SingularFitWarning",
    "ConvergenceWarning",
    "RankDeficiencyWarning",
    "ScaleWarning",
    *_LAZY,
]


# public names that are modules themselves (mm.datasets.load, mm.families.Binomial, ...)
_LAZY_MODULES = {"datasets", "families", "plots", "bayes", "priors", "explore", "dask"}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'mixedmodels' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if name in _LAZY_MODULES else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

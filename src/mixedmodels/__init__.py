"""mixedmodels: multilevel (mixed-effects) models with lme4's language and answers.

>>> import mixedmodels as mm
>>> df = mm.datasets.load("sleepstudy")
>>> m = mm.lmer("Reaction ~ Days + (Days | Subject)", df)
>>> print(m.summary())

Heavy modules are imported lazily, so ``import mixedmodels`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    ConvergenceWarning,
    DataError,
    FormulaError,
    MixedModelsError,
    MixedModelsWarning,
    ModelSpecError,
    RankDeficiencyWarning,
    ScaleWarning,
    SingularFitWarning,
)

from ._version import __version__

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
}

__all__ = [
    "__version__",
    "MixedModelsError",
    "FormulaError",
    "DataError",
    "ModelSpecError",
    "MixedModelsWarning",
    "SingularFitWarning",
    "ConvergenceWarning",
    "RankDeficiencyWarning",
    "ScaleWarning",
    *_LAZY,
]


if TYPE_CHECKING:  # what type checkers and editors see (``x as x``: a re-export);
    # at run time _LAZY imports each name on first use
    from . import bayes as bayes, datasets as datasets, explore as explore
    from . import families as families, plots as plots, priors as priors
    from .glmm import GeneralizedLinearMixedModel as GeneralizedLinearMixedModel, glmer as glmer
    from .glmm_results import GlmerResults as GlmerResults
    from .inference.bootstrap import bootstrap as bootstrap
    from .inference.compare import anova as anova, ranova as ranova
    from .inference.emmeans import contrast as contrast, emmeans as emmeans
    from .linear_models import glm as glm, lm as lm
    from .lmm import LinearMixedModel as LinearMixedModel, lmer as lmer
    from .optim import OptimizerSettings as OptimizerSettings
    from .pooling import compare_pooling as compare_pooling
    from .powersim import power as power
    from .results import LmerResults as LmerResults
    from .simulation import simulate_design as simulate_design

# public names that are modules themselves (mm.datasets.load, mm.families.Binomial, ...)
_LAZY_MODULES = {"datasets", "families", "plots", "bayes", "priors", "explore"}


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
